"""zhie batch: readers, batching, output lines, the resumable writer, and the results against the API's."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from zhie.batch.io import InputError, detect_format, open_reader
from zhie.batch.job import JobError, JobSpec, Output, Predictor, batches, render

PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "周婷"]
PLACES = ["北京", "上海", "深圳", "杭州", "成都", "武汉", "西安", "南京"]
ORGS = ["北京大学", "华为公司", "联合国", "清华大学", "阿里巴巴", "中国银行"]


def corpus(n: int) -> list[str]:
    """n different sentences of varying length (some long enough to need several NER windows)."""
    out = []
    for i in range(n):
        p, q, o = PEOPLE[i % 8], PLACES[(i * 3) % 8], ORGS[(i * 5) % 6]
        s = f"{p}昨天在{q}会见了来自{o}的代表，双方就第{i}项合作交换了意见。"
        out.append(s * (1 + (i % 7 == 0) * 6))
    return out


def write_jsonl(path: Path, texts: list[str], extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps({"id": f"doc-{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts)]
    for at, raw in sorted((extra_lines or {}).items()):
        lines.insert(at, raw)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spec_for(inp: Path, out: Path, **kw) -> JobSpec:
    return JobSpec(task=kw.pop("task", "ner"), input=str(inp), output=str(out), format=detect_format(inp, kw.pop("format", None)), **kw)


# -- readers --------------------------------------------------------------------------------------
def test_jsonl_reader_gives_each_bad_line_its_error(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes('{"id": 1, "text": "北京"}\nnot json\n\n[1, 2]\n{"id": 2}\n{"id": 3, "text": 5}\n'.encode()
                  + b'{"text": "\xff\xfe"}\n' + '{"text": "末行\u2028同一行"}'.encode())
    recs = list(open_reader(p, "jsonl"))
    assert [r.line for r in recs] == list(range(1, 9))
    assert recs[0].text == "北京" and recs[0].id == 1 and recs[0].error is None
    codes = [r.error["code"] if r.error else None for r in recs]
    assert codes == [None, "invalid_json", "invalid_json", "invalid_json", "missing_field", "invalid_field", "invalid_utf8", None]
    assert "line 3 is an empty line" in recs[2].error["message"]
    assert recs[4].id == 2 and "'text'" in recs[4].error["message"]
    assert recs[7].text == "末行\u2028同一行"  # only \n ends a line, and a last line without one counts


def test_every_reader_resumes_from_any_cursor(tmp_path):
    texts = ["第一行", "含,逗号的\"引号\"", "跨\n两行", "", "最后"]
    (tmp_path / "a.txt").write_text("\ufeff" + "\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    write_jsonl(tmp_path / "a.jsonl", texts)
    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, t in enumerate(texts):
            w.writerow([f"r{i}", t])
    fmts = ["txt", "jsonl", "csv"]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": [f"r{i}" for i in range(5)], "text": texts}), tmp_path / "a.parquet", row_group_size=2)
        fmts.append("parquet")
    except ImportError:
        pass
    for fmt in fmts:
        recs = list(open_reader(tmp_path / f"a.{fmt}", fmt))
        assert len(recs) == 5, fmt
        if fmt != "txt":
            assert [r.text for r in recs] == texts, fmt
            assert recs[1].id in ("doc-1", "r1")
        else:
            assert recs[0].text == "第一行"  # BOM dropped
        for k in range(5):
            tail = list(open_reader(tmp_path / f"a.{fmt}", fmt, start=recs[k].cursor, line0=recs[k].line))
            assert [(r.line, r.text, r.id) for r in tail] == [(r.line, r.text, r.id) for r in recs[k + 1:]], (fmt, k)


def test_whole_file_problems_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_reader(tmp_path / "missing.jsonl", "jsonl")
    (tmp_path / "x.csv").write_text("id,body\n1,北京\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'text' column.*id, body"):
        open_reader(tmp_path / "x.csv", "csv")
    with pytest.raises(InputError, match="--format"):
        detect_format(tmp_path / "x.data", None)


# -- batching and lines ---------------------------------------------------------------------------
def test_batches_are_cut_by_characters_and_restart_identically_at_any_boundary(tmp_path):
    texts = corpus(60)
    inp = write_jsonl(tmp_path / "in.jsonl", texts, {10: "oops", 30: '{"id": "x"}'})
    spec = spec_for(inp, tmp_path / "out.jsonl", batch_chars=400)
    full = list(batches(spec.records(), spec))
    assert sum(len(b.records) for b in full) == 62
    for b in full:
        assert b.chars == sum(map(len, b.texts))
        assert b.chars <= 400 or len(b.texts) == 1
    for k, b in enumerate(full):  # a resumed run starts at a batch boundary: the rest is the same batches
        rest = list(batches(spec.records(b.end, b.records[-1].line), spec, b.end, b.records[-1].line))
        assert [[r.line for r in x.records] for x in rest] == [[r.line for r in x.records] for x in full[k + 1:]]


def test_text_over_the_limit_is_an_error_line_worded_like_the_api(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", ["短句。", "长" * 50])
    spec = spec_for(inp, tmp_path / "o.jsonl", max_text_chars=20)
    recs = list(spec.records())
    assert recs[1].text is None and recs[1].error == {
        "code": "text_too_long", "message": "text has 50 characters; the limit is 20 per text (ZHIE_MAX_TEXT_CHARS)"}


@pytest.fixture(scope="module")
def ner_predictor(tmp_path_factory):
    d = tmp_path_factory.mktemp("p")
    inp = write_jsonl(d / "in.jsonl", ["x"])
    return Predictor(spec_for(inp, d / "o.jsonl"), threads=1)


def test_output_lines_embed_the_api_json_and_keep_going_after_errors(tmp_path, ner_predictor):
    from conftest import EXAMPLE, EXAMPLE_ENTITIES

    inp = write_jsonl(tmp_path / "in.jsonl", [EXAMPLE, "今天天气不错。"], {1: "{bad"})
    spec = spec_for(inp, tmp_path / "o.jsonl")
    (b,) = list(batches(spec.records(), spec))
    lines = [json.loads(x) for x in render(b, ner_predictor.run(b.texts)).splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3]
    assert [x["id"] for x in lines] == ["doc-0", None, "doc-1"]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in lines[0]["result"]["entities"]] == EXAMPLE_ENTITIES
    assert lines[1]["error"]["code"] == "invalid_json" and "result" not in lines[1]
    assert lines[2]["result"] == {"entities": []}


def test_one_text_per_call_gives_exactly_the_api_answer_to_that_text(tmp_path):
    """--batch-chars 1: every result is byte for byte what POST /v1/ner {"text"} answers (the models
    quantise activations per call, so texts grouped into one call move in the 4th decimal)."""
    from fastapi.testclient import TestClient

    from zhie.server.app import create_app
    from zhie.server.settings import Settings

    texts = corpus(12) + ["😀李白出生于碎叶城。", ""]
    inp = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "zhie.cli", "batch", "--task", "sentiment", "--input", str(inp), "--output",
                           str(out), "--batch-chars", "1", "--workers", "0", "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(texts)
    with TestClient(create_app(Settings(extract_model="", threads=1))) as client:
        for t, line in zip(texts, lines):
            r = client.post("/v1/sentiment", json={"text": t})
            assert r.status_code == 200
            assert line == '{"line":%d,"id":"doc-%d","result":%s}' % (texts.index(t) + 1, texts.index(t), r.content.decode())


# -- the writer -----------------------------------------------------------------------------------
def test_resume_drops_a_torn_tail_and_refuses_another_job(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", corpus(5))
    out = tmp_path / "o.jsonl"
    spec = spec_for(inp, out, task="sentiment")
    o = Output(spec, commit_s=0)
    o.write(2, 40, 30, '{"line":1}\n{"line":2}\n', 0)
    o.f.write(b'{"line":3,"id":"do')  # written after the last commit: a kill mid-write
    o.f.flush()
    o2 = Output(spec, resume=True)
    assert (o2.state.lines, o2.state.cursor) == (2, 40)
    assert out.read_bytes() == b'{"line":1}\n{"line":2}\n'
    o2.f.close()
    with pytest.raises(JobError, match="exists: pass --resume"):
        Output(spec)
    with pytest.raises(JobError, match="batch_chars differ"):
        Output(spec_for(inp, out, task="sentiment", batch_chars=99), resume=True)
    (tmp_path / "o.jsonl.progress").unlink()
    with pytest.raises(JobError, match="not known"):
        Output(spec, resume=True)


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "zhie.cli", "batch", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_errors_name_the_problem_without_a_traceback(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", ["北京"])
    for args, msg in [
        (["--task", "ner", "--input", tmp_path / "nope.jsonl", "--output", tmp_path / "o"], "no such file"),
        (["--task", "extract", "--input", inp, "--output", tmp_path / "o", "--schema", "{bad"], "--schema is not JSON"),
        (["--task", "extract", "--input", inp, "--output", tmp_path / "o", "--schema", '{"": null}'], "--schema: schema."),
        (["--task", "extract", "--input", inp, "--output", tmp_path / "o"], "needs --schema"),
        (["--task", "ner", "--input", inp, "--output", inp], "is the input file"),
    ]:
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert msg in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_extract_and_summary(tmp_path):
    from conftest import BRIEF_SCHEMA, BRIEF_TEXT

    inp = tmp_path / "in.txt"
    inp.write_text(BRIEF_TEXT + "\n外卖送得很快，就是包装有点简陋。\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    done = run_cli("--task", "extract", "--schema", json.dumps(BRIEF_SCHEMA, ensure_ascii=False), "--input", inp,
                   "--output", out, "--workers", "0")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["lines"] == 2 and summary["errors"] == 0 and summary["chars_per_s"] > 0
    assert "chars/s" in done.stderr and "2 lines" in done.stderr
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["id"] is None and first["result"]["价格"][0]["text"] == "6999元"
    again = run_cli("--task", "extract", "--schema", json.dumps(BRIEF_SCHEMA, ensure_ascii=False), "--input", inp,
                    "--output", out, "--resume", "--workers", "0")
    assert again.returncode == 0 and "already complete" in again.stderr
