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


@pytest.mark.slow
def test_bench_memory_only_and_a_cold_cache_costs_no_memory(tmp_path, capsys, monkeypatch):
    """`zhie bench --memory-only`, the quick check of the serving memory after a model change. Run twice on a
    fresh model cache: the first start packs the models (in a child process) and must idle no larger than
    the second; packed in the serving process, glibc kept the freed heap and it idled about 90 MB larger."""
    import json

    from zhie.cli import main

    monkeypatch.setenv("ZHIE_CACHE_DIR", str(tmp_path / "cache"))
    runs = []
    for _ in range(2):
        assert main(["bench", "--memory-only", "--datasets", "", "--sentences", "4", "--requests", "4",
                     "--out", str(tmp_path / "serving.md")]) == 0
        runs.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert not (tmp_path / "serving.md").exists()  # a check, not a results file
    cold, warm = (r["all_models"]["pss_idle_mb"] for r in runs)
    assert 0 < runs[1]["ner_only"]["pss_idle_mb"] < warm and cold < warm + 25, runs
