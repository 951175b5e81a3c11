"""zhie batch --resume after SIGKILL: a real process killed at several points, finished by reruns,
writes exactly the bytes of one uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil

from test_batch import corpus, write_jsonl


def _progress_lines(out) -> int:
    try:
        return json.loads(open(str(out) + ".progress", encoding="utf-8").read())["state"]["lines"]
    except (OSError, ValueError, KeyError):
        return -1


def _cmd(inp, out, *extra):
    return [sys.executable, "-m", "zhie.cli", "batch", "--task", "ner", "--input", str(inp), "--output", str(out),
            "--batch-chars", "300", "--commit-s", "0", "--quiet", *extra]


def _start_and_kill(cmd, out, when) -> tuple[int, list[int]]:
    """Start ``cmd``, SIGKILL it once ``when(lines committed)`` holds (or it ends); returns (its exit
    status, the pids of its children at the kill)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children: list[int] = []
    deadline = time.monotonic() + 240
    while p.poll() is None and time.monotonic() < deadline:
        if when(_progress_lines(out)):
            try:
                children = [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
            except psutil.Error:
                pass
            p.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    p.wait(60)
    return p.returncode, children


def test_sigkill_at_several_points_then_resume_is_byte_identical(tmp_path):
    texts = corpus(150)
    inp = write_jsonl(tmp_path / "in.jsonl", texts, {40: "{not json", 100: '{"id": "no-text"}'})
    ref = tmp_path / "ref.jsonl"
    done = subprocess.run(_cmd(inp, ref, "--workers", "0"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = ref.read_bytes()
    assert expected.count(b"\n") == 152

    out = tmp_path / "out.jsonl"
    t0 = time.monotonic()
    # 1: killed while starting (before the model answered anything)
    rc, _ = _start_and_kill(_cmd(inp, out, "--workers", "1"), out, lambda n: time.monotonic() - t0 > 0.8)
    assert rc == -signal.SIGKILL
    # 2, 3: killed part-way, with worker processes running; each rerun resumes
    kills = 1
    for threshold in (10, 70):
        rc, children = _start_and_kill(_cmd(inp, out, "--resume", "--workers", "1"), out, lambda n, t=threshold: n >= t)
        if rc == -signal.SIGKILL:
            kills += 1
            assert 0 < _progress_lines(out) < 152
            time.sleep(0.5)
            assert not [c for c in children if psutil.pid_exists(c) and psutil.Process(c).status() != psutil.STATUS_ZOMBIE], \
                "model workers outlived the killed run"
    assert kills >= 2
    # a torn tail on top: bytes written after the last commit
    with open(out, "ab") as f:
        f.write(b'{"line":999,"id":"tor')
    done = subprocess.run(_cmd(inp, out, "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["total_lines"] == 152 and summary["resumed_from_line"] > 0
    assert out.read_bytes() == expected
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["line"] for x in lines] == list(range(1, 153))
    assert lines[40]["error"]["code"] == "invalid_json" and lines[100]["id"] == "no-text"
    assert [x["id"] for x in lines if "result" in x] == [f"doc-{i}" for i in range(150)]
    assert os.path.exists(str(out) + ".progress")
