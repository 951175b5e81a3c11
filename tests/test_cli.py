"""The command line, run as a user runs it (subprocess, real bundled model)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE, EXAMPLE_ENTITIES

ZHIE = [sys.executable, "-m", "zhie.cli"]


def run(*args, stdin=None, check=True):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.run([*ZHIE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"zhie {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def last_json(p):
    return json.loads(p.stdout.strip().splitlines()[-1])


def _spans(obj):
    return [(e["type"], e["text"], e["start"], e["end"]) for e in obj["entities"]]


def test_cli_ner_text_argument():
    assert _spans(last_json(run("ner", EXAMPLE))) == EXAMPLE_ENTITIES


def test_cli_ner_stdin_lines():
    p = run("ner", "-", "--lines", stdin=f"{EXAMPLE}\n😀{EXAMPLE}\n")
    lines = [json.loads(x) for x in p.stdout.strip().splitlines()]
    assert _spans(lines[0]) == EXAMPLE_ENTITIES
    assert _spans(lines[1]) == [(t, s, a + 1, b + 1) for t, s, a, b in EXAMPLE_ENTITIES]


def test_cli_ner_missing_model_is_a_clear_error(tmp_path):
    p = run("ner", EXAMPLE, "--model", str(tmp_path / "nope"), check=False)
    assert p.returncode != 0 and "no model at" in p.stderr


def test_cli_import_bundle_of_a_missing_folder_is_a_clear_error(tmp_path):
    p = run("train", "import-bundle", str(tmp_path / "nosuch"), "--out", str(tmp_path / "run"), check=False)
    assert p.returncode != 0 and "no model at" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, message", [([], "--smooth needs --smooth-data"), (["--smooth-data", "x"], "run/vocab.txt")])
@pytest.mark.parametrize("alpha", ["0.75", "1.5"])
def test_cli_export_smooth_is_checked_before_any_work(tmp_path, extra, message, alpha):
    p = run("export", "extract", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--smooth", alpha, *extra,
            check=False)
    want = "must be in (0, 1]" if alpha == "1.5" else message
    assert p.returncode != 0 and "Traceback" not in p.stderr and want in p.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cmd", [["extract", "--schema", '["人物"]', "张三"], ["eval", "extract", "--data", "x.jsonl"]])
def test_cli_extract_threshold_out_of_range_is_a_clear_error(cmd):
    p = run(*cmd, "--threshold", "1.5", check=False)
    assert p.returncode == 2 and "--threshold: 1.5 is not between 0 and 1" in p.stderr


# One small labelled file per format, all holding the example sentence with its gold entities.
def _bio_lines(tag_scheme):
    tags = ["O"] * len(EXAMPLE)
    for t, _, a, b in EXAMPLE_ENTITIES:
        for i in range(a, b):
            if tag_scheme == "bio":
                tags[i] = ("B-" if i == a else "I-") + t
            else:
                tags[i] = ("S-" if b - a == 1 else "B-" if i == a else "E-" if i == b - 1 else "M-") + t
    return tags


@pytest.fixture()
def labelled(tmp_path):
    files = {}
    p = tmp_path / "s.bio"
    p.write_text("".join(f"{c}\t{t}\n" for c, t in zip(EXAMPLE, _bio_lines("bio"))) + "\n", encoding="utf-8")
    files["bio"] = p
    p = tmp_path / "s.bmes"
    p.write_text("".join(f"{c} {t}\n" for c, t in zip(EXAMPLE, _bio_lines("bmes"))) + "\n", encoding="utf-8")
    files["bmes"] = p
    weibo_types = {"ORG": "ORG.NAM", "PER": "PER.NAM", "LOC": "GPE.NAM"}
    tags = [t if t == "O" else t[:2] + weibo_types[t[2:]] for t in _bio_lines("bio")]
    p = tmp_path / "s.conll"
    p.write_text("".join(f"{c}{i % 2}\t{t}\n" for i, (c, t) in enumerate(zip(EXAMPLE, tags))) + "\n", encoding="utf-8")
    files["weibo"] = p
    cl_types = {"ORG": "company", "PER": "name", "LOC": "address"}
    label = {}
    for t, s, a, b in EXAMPLE_ENTITIES:
        label.setdefault(cl_types[t], {}).setdefault(s, []).append([a, b - 1])
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"text": EXAMPLE, "label": label}, ensure_ascii=False) + "\n", encoding="utf-8")
    files["cluener"] = p
    return files


@pytest.mark.parametrize(
    "fmt, mapping",
    [
        ("bio", None),
        ("bmes", None),
        ("weibo", "GPE.NAM=LOC,PER.NAM=PER,ORG.NAM=ORG"),
        ("cluener", "name=PER,address=LOC,company=ORG"),
    ],
)
def test_cli_eval_ner_all_formats(labelled, fmt, mapping):
    args = ["eval", "ner", "--data", str(labelled[fmt]), "--format", fmt]
    if mapping:
        args += ["--map", mapping]
    r = last_json(run(*args))
    assert set(r) >= {"precision", "recall", "f1", "per_type", "sentences", "seconds"}
    assert r["sentences"] == 1
    assert r["f1"] == 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0
    assert set(r["per_type"]) == {"PER", "LOC", "ORG"}


def test_cli_eval_map_restricts_scoring_to_named_types(labelled):
    # only PER is named: the model's ORG and LOC predictions must not count as false positives
    r = last_json(run("eval", "ner", "--data", str(labelled["weibo"]), "--format", "weibo", "--map", "PER.NAM=PER"))
    assert set(r["per_type"]) == {"PER"}
    assert r["per_type"]["PER"]["support"] == 2
    assert r["precision"] == 1.0 and r["recall"] == 1.0


def test_cli_eval_bad_map_is_an_error(labelled):
    p = run("eval", "ner", "--data", str(labelled["bio"]), "--format", "bio", "--map", "PER", check=False)
    assert p.returncode != 0 and "--map" in p.stderr


@pytest.mark.datasets
def test_cli_eval_msra_dev_split_accuracy(datasets):
    # the bundled model was trained before the contiguous dev protocol: only the old random split is unseen by it
    r = last_json(run("eval", "ner", "--data", str(datasets / "ner/msra/train.bio"), "--format", "bio", "--dev-split", "random",
                      "--limit", "600"))
    assert r["sentences"] == 600
    assert r["f1"] >= 0.85, r  # the whole dev split scores 0.897 (INT8); these first 600 sentences are harder
