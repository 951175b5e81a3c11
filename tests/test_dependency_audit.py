"""pip-audit over every dependency pyproject.toml pins (serving and the extras): fails on a known
vulnerability that has a fixed release; skips, saying why, when the vulnerability service cannot
be reached or knows none of the pins (it never passes without having audited)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"


def pinned() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    name = project["name"]
    pins = set()
    for r in reqs:
        r = re.sub(r"\s+", "", r.split(";")[0])
        if re.fullmatch(re.escape(name) + r"(\[[^\]]*\])?", r):
            continue  # an extra that pulls in other extras of this project
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([A-Za-z0-9_.+\-]+)", r)
        assert m, f"pyproject.toml: pin every dependency with == ({r})"
        pins.add(f"{m.group(1)}=={m.group(3)}")  # extras add packages that are pinned on their own
    return sorted(pins)


def test_every_dependency_is_pinned():
    assert len(pinned()) > 10


@pytest.mark.skipif(not PIP_AUDIT.exists() and shutil.which("pip-audit") is None,
                    reason="pip-audit is not installed (pip install -e '.[dev]')")
def test_no_known_vulnerability_with_a_fix_in_the_pins(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("\n".join(pinned()) + "\n")
    exe = str(PIP_AUDIT) if PIP_AUDIT.exists() else shutil.which("pip-audit")
    run = subprocess.run([exe, "-r", str(req), "--no-deps", "--disable-pip", "-f", "json", "--progress-spinner", "off",
                          "--timeout", "20"], capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the vulnerability service could not be reached: {last[:300]}")
    deps = report["dependencies"]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    if not audited:
        pytest.skip(f"the vulnerability service audited none of the {len(deps)} pins "
                    f"(e.g. {skipped[0]['skip_reason'] if skipped else 'empty report'})")
    if skipped:
        warnings.warn(f"not audited: {', '.join(d['name'] for d in skipped)}", stacklevel=1)
    fixable = [f"{d['name']}=={d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions'])})"
               for d in audited for v in d.get("vulns", []) if v.get("fix_versions")]
    assert not fixable, "known vulnerabilities with a fix available:\n" + "\n".join(fixable)
