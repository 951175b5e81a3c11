"""zhie batch --engine ray: the same bytes as the local engine (a local Ray on this machine's cores)."""

import json
import subprocess
import sys

import pytest

from test_batch import corpus, write_jsonl

pytest.importorskip("ray.data", reason="the ray extra is not installed (pip install 'zhie[ray]')")


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", corpus(60), {7: "[]", 33: '{"id": 7, "text": null}'})
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        # ray: plan segments of 5 of its 9 batches, so two Dataset runs follow one another
        done = subprocess.run([sys.executable, "-m", "zhie.cli", "batch", "--task", "sentiment", "--input", str(inp),
                               "--output", str(out), "--batch-chars", "600", "--engine", engine, "--workers", "2", "--quiet",
                               "--ray-segment-batches", "5"],
                              capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout.splitlines()[-1])
        assert summary["engine"] == engine and summary["lines"] == 62
        outs[engine] = out.read_bytes()
    assert outs["ray"] == outs["local"]
    assert outs["ray"].count(b'"error"') == 2
