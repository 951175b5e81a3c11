"""`zhie bench` end to end on a tiny run: both servers start, answer, and the report has every figure."""

import re
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("gunicorn")
pytest.importorskip("flask")


@pytest.mark.slow
@pytest.mark.datasets
def test_bench_runs_both_servers_and_reports_ratios(tmp_path, tiny_ner_run, capsys):
    from zhie.cli import main

    out = tmp_path / "serving.md"
    rc = main(["bench", "--baseline-run", str(tiny_ner_run), "--sentences", "8", "--requests", "8",
               "--lengths", "100", "1000", "--no-lac", "--out", str(out)])
    assert rc == 0
    md = out.read_text(encoding="utf-8")
    for row in ("| zhie |", "| baseline (torch + gunicorn) |"):
        cells = next(line for line in md.splitlines() if line.startswith(row)).split("|")[2:-1]
        assert len(cells) == 8 and all(float(c) > 0 for c in cells), cells  # every figure measured
    assert re.search(r"^\| 1,000 \| [\d.]+ \| \d+ \| [\d.]+ \| \d+ \|$", md, re.M)
    assert "Machine:" in md and "Command: `zhie bench" in md and "Date:" in md
    ratios = capsys.readouterr().out.strip().splitlines()
    assert ratios[0].startswith("throughput c=32 zhie/baseline:") and len(ratios) == 6
    ner_only = next(line for line in md.splitlines() if line.startswith("| zhie, NER only |")).split("|")[2:-1]
    assert float(ner_only[0]) > 0 and float(ner_only[2]) > 0  # idle memory and startup of the like-for-like server
    assert any(r.startswith("memory (PSS, idle) zhie NER only/baseline:") for r in ratios)


def test_bench_without_a_training_run_says_how_to_get_one(tmp_path, capsys):
    from zhie.cli import main

    assert main(["bench", "--baseline-run", str(tmp_path / "nothing")]) == 2
    assert "recipes/ner.sh" in capsys.readouterr().err
