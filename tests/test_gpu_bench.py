"""benchmarks/gpu.py: its dry run (CPU, a few requests of each step) writes the whole results file."""

import importlib.util
import json

from conftest import REPO

_spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu.py")
gpu_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_bench)


def test_percentiles_and_batches():
    xs = [float(x) for x in range(1, 101)]
    assert gpu_bench.pct(xs, 50) in (50.0, 51.0) and gpu_bench.pct(xs, 95) == 95.0 and gpu_bench.pct(xs, 100) == 100.0
    b = gpu_bench.batches(["a", "b", "c"], 4, 2)
    assert [len(x) for x in b] == [4, 4] and b[0] == ["a", "b", "c", "a"]


def test_the_example_is_the_guide_s():
    text, schema = gpu_bench.brief()
    assert text.startswith("华为Mate60 Pro搭载自研麒麟9000S芯片") and schema == {
        "产品名称": None, "芯片型号": None, "功能": None, "价格": None, "属性词": {"情感词": None}}
    assert len(gpu_bench.eval_texts()) >= 50


def test_dry_run_writes_every_figure(tmp_path):
    out = tmp_path / "gpu.md"
    assert gpu_bench.main(["--dry-run", "--out", str(out), "--seconds", "0.5", "--requests", "3"]) == 0
    md = out.read_text(encoding="utf-8")
    assert "DRY RUN (CPU, not GPU figures)" in md and "not a measurement to quote" in md
    assert 'tasks on: {"ner": "cpu", "sentiment": "cpu", "extract": "cpu"}' in md
    assert "GPU fallbacks during the run: 0; non-200 answers: 0" in md
    for row in ("| mean latency, 3 sequential requests |", "| p50 |", "| p95 |", "| peak device memory |",
                "| requests/s at 3 concurrent |", "| startup (to /readyz 200, all three models) |",
                "| extractions/s batched (example schema) |", "| NER at batch |", "| sentiment at batch |"):
        assert row in md, row
    answer = json.loads(md.split("The example's answer (zhie (cpu)): `", 1)[1].split("`", 1)[0])
    assert isinstance(answer, dict) and set(answer) <= {"产品名称", "芯片型号", "功能", "价格", "属性词"}
