"""`zhie bench --baseline seed` wiring on a tiny checkpoint (hidden 32): the checkpoint builder, the seed
stack's app (first-piece labels, offsets, long text), and one end-to-end run with few requests. The speed
figures themselves are benchmarks/results/seed.md's, never asserted here."""

import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("flask")

ROOT = Path(__file__).resolve().parents[1]
MIXED = "2023年5月，张三在北京的华为公司买了一部iPhone 15 Pro，花了7999元。"


def _builder():
    spec = importlib.util.spec_from_file_location("make_seed_checkpoint", ROOT / "benchmarks" / "make_seed_checkpoint.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_seed(tmp_path_factory):
    return _builder().build(tmp_path_factory.mktemp("seed") / "ckpt", hidden=32, layers=1, heads=2)


def test_vocab_has_bert_base_chinese_layout():
    v = _builder().vocab()
    assert len(v) == 21128 == len(set(v))
    assert [v[0], v[1], v[99], v[100], v[101], v[102], v[103]] == ["[PAD]", "[unused1]", "[unused99]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"张", "北", "京", "a", "##z", "7", "##9", "，"} <= set(v) and v[-1] == "麑"


def test_builder_writes_a_hugging_face_folder(tiny_seed):
    import json

    assert {p.name for p in tiny_seed.iterdir()} == {"config.json", "model.safetensors", "vocab.txt"}
    cfg = json.loads((tiny_seed / "config.json").read_text())
    assert cfg["architectures"] == ["BertForTokenClassification"] and cfg["vocab_size"] == 21128
    assert cfg["hidden_size"] == 32 and set(cfg["id2label"].values()) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}
    with pytest.raises(SystemExit, match="not empty"):
        _builder().build(tiny_seed, hidden=32, layers=1, heads=2)


def test_chunk_entities_follows_bio():
    from zhie.bench.seed_app import chunk_entities

    text = "abcdefg"
    labels = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "I-PER"]
    spans = [(i, i + 1) for i in range(7)]
    got = [(e["type"], e["start"], e["end"], e["text"]) for e in chunk_entities(labels, spans, text)]
    assert got == [("PER", 0, 2, "ab"), ("LOC", 3, 5, "de"), ("ORG", 5, 6, "f"), ("PER", 6, 7, "g")]


def test_seed_app_labels_words_by_their_first_piece(tiny_seed):
    import torch

    from zhie.bench.seed_app import create_app

    app = create_app(tiny_seed)
    client = app.test_client()
    r = client.post("/ner", json={"text": MIXED})
    assert r.status_code == 200
    ents = r.get_json()["entities"]
    assert ents, "the scaled head finds entities"
    words = {(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+|\d+|\S", MIXED)}
    for e in ents:
        assert MIXED[e["start"] : e["end"]] == e["text"]
        assert any(s == e["start"] for s, _ in words) and any(t == e["end"] for _, t in words), e  # whole words only
    assert client.post("/ner", json={"text": ""}).status_code == 400
    assert client.get("/health").status_code == 200

    from zhie.bench.seed_app import SeedNer

    ner = SeedNer(tiny_seed)
    # the labels are the argmax of each word's first piece (quantised model, as served)
    enc = ner.tokenizer(MIXED, return_offsets_mapping=True, return_tensors="pt")
    with torch.inference_mode():
        pred = ner.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1)[0]
    first = {}
    for t, w in enumerate(enc.word_ids()):
        if w is not None and w not in first:
            first[w] = (ner.labels[int(pred[t])], int(enc["offset_mapping"][0, t, 0]))
    starts = {start: lab for lab, start in first.values()}
    for e in ner(MIXED):
        assert starts[e["start"]][2:] == e["type"] and starts[e["start"]] != "O"
    long = MIXED * 40  # over 512 tokens: cut into pieces without overlap, all of it labelled
    far = [e for e in ner(long) if e["start"] > len(MIXED) * 20]
    assert far and all(long[e["start"] : e["end"]] == e["text"] for e in far)


def test_seed_baseline_needs_a_model_folder(tmp_path, capsys):
    from zhie.cli import main

    assert main(["bench", "--baseline", "seed", "--out", str(tmp_path / "s.md")]) == 2
    assert "--model DIR is required" in capsys.readouterr().err
    assert main(["bench", "--baseline", "seed", "--model", str(tmp_path), "--out", str(tmp_path / "s.md")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "s.md").exists()


def test_bench_seed_end_to_end_on_a_tiny_checkpoint(tiny_seed, tmp_path, capsys):
    pytest.importorskip("gunicorn")
    pytest.importorskip("aiohttp")
    from zhie.cli import main

    out = tmp_path / "seed.md"
    rc = main(["bench", "--baseline", "seed", "--model", str(tiny_seed), "--datasets", "", "--sentences", "4",
               "--requests", "4", "--out", str(out)])
    assert rc == 0
    md = out.read_text(encoding="utf-8")
    for row in ("| zhie (imported, INT8) |", "| seed stack (transformers + torch INT8, gunicorn -w 2) |"):
        cells = next(line for line in md.splitlines() if line.startswith(row)).split("|")[2:-1]
        assert len(cells) == 10 and all(float(c) > 0 for c in cells), cells  # every figure measured
    assert "Machine:" in md and "Command: `zhie bench --baseline seed --model" in md and "Date:" in md
    assert "hidden 32" in md and "cold cache" in md
    f1 = float(re.search(r"against the seed stack on the \d+ benchmark sentences \(type, start, end\): (\d\.\d{3})", md).group(1))
    assert 0 <= f1 <= 1
    ratios = capsys.readouterr().out.strip().splitlines()
    assert len(ratios) == 7 and ratios[0].startswith("throughput c=32 zhie/seed:")
    assert all(re.search(r": \d+\.\d\dx?$", r) for r in ratios), ratios


def test_a_prebuilt_zhie_model_must_come_from_the_same_checkpoint(tmp_path):
    import json

    from zhie.bench.seed import check_imported

    src, other, z = tmp_path / "ckpt", tmp_path / "other", tmp_path / "z"
    for d in (src, other, z):
        d.mkdir()
    (z / "config.json").write_text(json.dumps({"source": {"path": str(src.resolve()), "format": "hf"}}))
    check_imported(z, src)
    with pytest.raises(SystemExit, match="was imported from .* not from --model"):
        check_imported(z, other)
    with pytest.raises(SystemExit, match="config.json cannot be read"):
        check_imported(other, src)
