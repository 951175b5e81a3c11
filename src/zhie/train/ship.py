"""Bring a training run back from a device machine in pieces (issue 22): one device call returns at most 8 files
of 16 MiB each, 64 MiB together, and a run's float32 ``model.pt`` is about 98 MB.

    python -m zhie.train.ship --split-run RUN --out DIR [--part-mib 15] [--name NER]   # there: DIR/NAME.part00 ...
    python -m zhie.train.ship --calls DIR                                               # there: DIR/calls.txt
    python -m zhie.train.ship --join DIR [DIR ...] --out RUN [--name NAME]              # here: RUN, a run folder

``--split-run`` writes the run as one uncompressed tar cut into ``NAME.part00``, ``NAME.part01``, ... of at most
``--part-mib`` MiB each, and ``NAME.manifest.json`` (the SHA-256 and size of the whole and of every part, and of
every file inside). The tar holds the run's ``model.pt`` with its floating-point weights in float16 (about
47 MiB for 24.4 M parameters; tensors that are not floating point, and any beyond float16's range, as they
were; everything else the checkpoint holds unchanged) and every other file at the top of the run folder
(``vocab.txt``, ``config.json``, ``calibration.json``, a lexicon, ``distil.json``, ``log.jsonl``) except
``resume.pt`` (the optimiser state). ``NAME`` is the run's task by default, so the students of several tasks
split into one flat folder without their files colliding.

``--calls DIR``: which of DIR's manifests and parts go back in which device call, first fit in the order the
manifests were written (a run's manifest before its parts), at most 8 files and 64 MiB a call, the first call
keeping 3 files and 2 MiB for what the training call returns besides (``gpu-train.log``, ``summary.json``,
``calls.txt``): ``DIR/calls.txt``, one line per call, ``N FILE FILE ...``.

``--join`` reads the manifest (``NAME.manifest.json``: the only one, or the one ``--name`` names) and its parts
from the folders given, searched with their subfolders (the folders the device calls' files came back in),
refuses any part whose size or SHA-256 is not the manifest's, and writes the run folder: ``model.pt`` with the
weights back in their own dtype (float32: the float16 values widened, so they equal the originals rounded to
float16) and the other files, so ``torch.load`` on a CPU, ``zhie export TASK --run RUN`` and ``--init RUN``
read it as any run. The checkpoint records ``shipped``: the dtype it travelled in, the tar's SHA-256, the source
path. ``cat NAME.part* | tar -xf -`` gives the float16 run without Python.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import tarfile
import time
from pathlib import Path

from ..models.bundle import file_sha256

PART_MIB = 15.0  # under the 16 MiB a returned file may have
CALL_FILES, CALL_MIB, FILE_MIB = 8, 64, 16  # what one device call returns from $OUT
FIRST_CALL_OTHERS = ("gpu-train.log", "summary.json", "calls.txt")  # what the training call returns besides the parts
FIRST_CALL_RESERVE_MIB = 2.0  # kept in the first call for those
CALLS = "calls.txt"
SKIPPED = ("resume.pt",)  # the optimiser state: three times the weights, and not needed to export or go on from
SHIP_KEY = "_ship"  # in the shipped (float16) checkpoint: what the join widens back
FLOAT16_MAX = 65504.0
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_name(name: str) -> str:
    return f"{name}.manifest.json"


class _Parts:
    """A write-only file that cuts what is written into ``DIR/NAME.partNN`` of at most ``limit`` bytes."""

    def __init__(self, folder: Path, name: str, limit: int):
        self.folder, self.name, self.limit = folder, name, limit
        self.parts: list[dict] = []
        self.whole = hashlib.sha256()
        self.size = 0
        self._f = None
        self._h = None
        self._n = 0

    def _open(self) -> None:
        path = self.folder / f"{self.name}.part{len(self.parts):02d}"
        self._f, self._h, self._n = open(path, "wb"), hashlib.sha256(), 0
        self.parts.append({"file": path.name})

    def _close_part(self) -> None:
        self._f.close()
        self.parts[-1].update(bytes=self._n, sha256=self._h.hexdigest())
        self._f = None

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        self.whole.update(data)
        self.size += len(data)
        pos = 0
        while pos < len(data):
            if self._f is None or self._n == self.limit:
                if self._f is not None:
                    self._close_part()
                self._open()
            take = min(self.limit - self._n, len(data) - pos)
            self._f.write(data[pos:pos + take])
            self._h.update(data[pos:pos + take])
            self._n += take
            pos += take
        return len(data)

    def close(self) -> None:
        if self._f is not None:
            self._close_part()


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0  # the same run ships the same bytes
    return info


def float16_state(state: dict) -> tuple[dict, dict, list[str]]:
    """(the checkpoint with its floating-point weights in float16, {key: original dtype}, keys kept as they were
    because a value is beyond float16's range)."""
    import torch

    weights, widened, kept = {}, {}, []
    for k, v in state["model"].items():
        if not torch.is_tensor(v) or not v.is_floating_point() or v.dtype == torch.float16:
            weights[k] = v
            continue
        finite = v[torch.isfinite(v)]
        if finite.numel() and float(finite.abs().max()) > FLOAT16_MAX:
            weights[k] = v
            kept.append(k)
            continue
        weights[k] = v.to(torch.float16)
        widened[k] = str(v.dtype).removeprefix("torch.")
    return {**state, "model": weights, SHIP_KEY: {"widen": widened, "kept": kept}}, widened, kept


def split_run(run: str | Path, out: str | Path, name: str | None = None, part_mib: float = PART_MIB) -> dict:
    """Write ``out/NAME.partNN`` and ``out/NAME.manifest.json`` for the run folder ``run``; returns the manifest."""
    import torch

    t0 = time.time()
    run, out = Path(run), Path(out)
    if not (run / "model.pt").is_file():
        raise SystemExit(f"--split-run {run}: not a run folder (no model.pt)")
    limit = int(part_mib * 2**20)
    if not 0 < limit <= FILE_MIB * 2**20:
        raise SystemExit(f"--part-mib {part_mib}: must be above 0 and at most {FILE_MIB} (what a returned file may have)")
    state = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state:
        raise SystemExit(f"--split-run {run}: model.pt is not a zhie training checkpoint (no 'model' weights)")
    name = name or state.get("kind", "ner")
    if not NAME_RE.match(name):
        raise SystemExit(f"--name {name!r}: letters, digits, '_' and '-' only")
    shipped, widened, kept = float16_state(state)
    buf = io.BytesIO()
    torch.save(shipped, buf)
    model_bytes = buf.getvalue()
    del shipped, buf
    others = sorted(p for p in run.iterdir() if p.is_file() and p.name != "model.pt" and p.name not in SKIPPED
                    and not p.name.endswith(".tmp"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{name}.part*"):  # a previous split of the same name: its parts would be stale
        old.unlink()
    files = [{"path": "model.pt", "bytes": len(model_bytes), "sha256": _sha256(model_bytes)}]
    parts = _Parts(out, name, limit)
    try:
        with tarfile.open(fileobj=parts, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo("model.pt", len(model_bytes)), io.BytesIO(model_bytes))
            for p in others:
                data = p.read_bytes()
                tar.addfile(_tarinfo(p.name, len(data)), io.BytesIO(data))
                files.append({"path": p.name, "bytes": len(data), "sha256": _sha256(data)})
    finally:
        parts.close()
    params = sum(v.numel() for v in state["model"].values() if hasattr(v, "numel"))
    manifest = {"format": "zhie-ship 1", "name": name, "kind": state.get("kind", "ner"), "source": str(run.resolve()),
                "bytes": parts.size, "mib": round(parts.size / 2**20, 2), "sha256": parts.whole.hexdigest(),
                "part_mib": part_mib, "parts": parts.parts, "files": files, "parameters": params,
                "dtype": "float16", "widen_to": sorted(set(widened.values())), "kept_dtype": kept,
                "skipped": [p.name for p in run.iterdir() if p.name in SKIPPED or p.is_dir()],
                "seconds": round(time.time() - t0, 1)}
    tmp = out / (manifest_name(name) + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out / manifest_name(name))
    return manifest


def plan_calls(items: list[tuple[str, int]], first_others: int = len(FIRST_CALL_OTHERS),
               first_reserve: int = int(FIRST_CALL_RESERVE_MIB * 2**20)) -> list[list[str]]:
    """Files (name, bytes) into device calls, first fit in order: at most :data:`CALL_FILES` files and
    :data:`CALL_MIB` MiB a call, the first keeping ``first_others`` files and ``first_reserve`` bytes."""
    calls: list[list] = []  # [names, files left, bytes left]
    for name, size in items:
        if size > FILE_MIB * 2**20:
            raise SystemExit(f"{name}: {size / 2**20:.1f} MiB, over the {FILE_MIB} MiB a returned file may have")
        for c in calls:
            if c[1] >= 1 and c[2] >= size:
                break
        else:
            first = not calls
            c = [[], CALL_FILES - (first_others if first else 0), CALL_MIB * 2**20 - (first_reserve if first else 0)]
            calls.append(c)
        c[0].append(name)
        c[1] -= 1
        c[2] -= size
    return [c[0] for c in calls]


def manifests_in(folder: Path) -> list[dict]:
    """The manifests in ``folder``, in the order they were written."""
    found = []
    for p in folder.glob("*.manifest.json"):
        found.append((p.stat().st_mtime_ns, p.name, json.loads(p.read_text(encoding="utf-8"))))
    return [m for _, _, m in sorted(found, key=lambda t: (t[0], t[1]))]


def write_calls(folder: str | Path, names: list[str] | None = None) -> list[list[str]]:
    """Plan the calls for the manifests (of ``names``, in that order; default every one, in the order written)
    in ``folder`` and write ``folder/calls.txt``; returns the calls."""
    folder = Path(folder)
    ms = manifests_in(folder)
    if names is not None:
        by = {m["name"]: m for m in ms}
        ms = [by[n] for n in names]
    items = []
    for m in ms:
        items.append((manifest_name(m["name"]), (folder / manifest_name(m["name"])).stat().st_size))
        items += [(p["file"], p["bytes"]) for p in m["parts"]]
    calls = plan_calls(items)
    sizes = dict(items)
    lines = [f"# {len(calls)} device call(s) bring back {', '.join(m['name'] for m in ms)} from {folder.resolve()}",
             f"# (at most {CALL_FILES} files and {CALL_MIB} MiB a call). Line 'N FILE ...': the files of call N.",
             f"# Call 1 is the training call; it also returns {', '.join(FIRST_CALL_OTHERS)}:",
             f"#   ...; cd {folder.resolve()} && cp {CALLS} $(sed -n 's/^1 //p' {CALLS}) $OUT/",
             "# Call N > 1, made at once (the machine stays warm 30 s):",
             f"#   cd {folder.resolve()} && cp $(sed -n 's/^N //p' {CALLS}) $OUT/",
             "# Here: python -m zhie.train.ship --join FILES_AT_1 FILES_AT_2 ... --name NAME --out RUN"]
    for i, c in enumerate(calls, 1):
        lines.append(f"# call {i}: {len(c)} file(s), {sum(sizes[f] for f in c) / 2**20:.1f} MiB")
        lines.append(f"{i} " + " ".join(c))
    tmp = folder / (CALLS + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(folder / CALLS)
    return calls


def describe_calls(folder: str | Path, calls: list[list[str]]) -> list[str]:
    """The lines to print for the device user: each call's command and files."""
    folder = Path(folder).resolve()
    out = []
    for i, c in enumerate(calls, 1):
        mib = sum((folder / f).stat().st_size for f in c) / 2**20
        if i == 1:
            cmd = f"(the training call) ...; cd {folder} && cp {CALLS} $(sed -n 's/^1 //p' {CALLS}) $OUT/"
        else:
            cmd = f"cd {folder} && cp {' '.join(c)} $OUT/"
        out.append(f"call {i}: {cmd}    [{len(c)} file(s), {mib:.1f} MiB: {' '.join(c)}]")
    return out


def _find(dirs: list[Path], file: str) -> list[Path]:
    found = []
    for d in dirs:
        found += sorted(p for p in [d / file, *d.rglob(file)] if p.is_file())
    return list(dict.fromkeys(found))


def join(dirs: list[str | Path], out: str | Path, name: str | None = None) -> Path:
    """Check the parts against their manifest and write the run folder ``out``; returns it."""
    import torch

    dirs, out = [Path(d) for d in dirs], Path(out)
    for d in dirs:
        if not d.is_dir():
            raise SystemExit(f"--join {d}: no such folder")
    found: dict[str, tuple[Path, dict]] = {}
    for d in dirs:
        for p in sorted(d.rglob("*.manifest.json")):
            m = json.loads(p.read_text(encoding="utf-8"))
            if m.get("format") != "zhie-ship 1":
                raise SystemExit(f"{p}: not a zhie.train.ship manifest")
            found.setdefault(m["name"], (p, m))
    if name is None:
        if len(found) != 1:
            raise SystemExit(f"--join: {'no manifest (NAME.manifest.json)' if not found else 'several runs: ' + ', '.join(sorted(found))}"
                             f" in {', '.join(map(str, dirs))}" + ("; choose one with --name" if found else ""))
        name = next(iter(found))
    if name not in found:
        raise SystemExit(f"--join: no {manifest_name(name)} in {', '.join(map(str, dirs))}"
                         + (f" (there: {', '.join(sorted(found))})" if found else ""))
    mpath, m = found[name]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"--out {out}: exists and is not empty; a join writes a new run folder")
    chunks, missing, bad = [], [], []
    for part in m["parts"]:
        cands = _find(dirs, part["file"])
        good = None
        for c in cands:
            data = c.read_bytes()
            if len(data) == part["bytes"] and _sha256(data) == part["sha256"]:
                good = data
                break
        if good is not None:
            chunks.append(good)
        elif not cands:
            missing.append(part["file"])
        else:
            c = cands[0]
            bad.append(f"{c}: {c.stat().st_size} bytes, SHA-256 {file_sha256(c)[:16]}..., where {mpath.name} says "
                       f"{part['bytes']} bytes, {part['sha256'][:16]}...")
    if missing or bad:
        msg = [f"--join {name}: {len(m['parts']) - len(missing) - len(bad)} of {len(m['parts'])} parts check out"]
        if bad:
            msg.append("corrupted or incomplete (fetch these again; calls.txt names their call): " + "; ".join(bad))
        if missing:
            msg.append(f"missing from {', '.join(map(str, dirs))}: {' '.join(missing)}")
        raise SystemExit("\n  ".join(msg))
    whole = b"".join(chunks)
    del chunks
    if len(whole) != m["bytes"] or _sha256(whole) != m["sha256"]:
        raise SystemExit(f"--join {name}: every part checks out but the whole does not ({_sha256(whole)[:16]}..., "
                         f"{mpath.name} says {m['sha256'][:16]}...): the manifest does not belong to these parts")
    expected = {f["path"]: f for f in m["files"]}
    members = {}
    with tarfile.open(fileobj=io.BytesIO(whole), mode="r:") as tar:
        for info in tar.getmembers():
            if not info.isfile() or "/" in info.name or "\\" in info.name or info.name in ("", ".", ".."):
                raise SystemExit(f"--join {name}: unexpected tar member {info.name!r}")
            data = tar.extractfile(info).read()
            if info.name not in expected or _sha256(data) != expected[info.name]["sha256"]:
                raise SystemExit(f"--join {name}: tar member {info.name} is not the manifest's")
            members[info.name] = data
    del whole
    if set(members) != set(expected):
        raise SystemExit(f"--join {name}: the tar lacks {sorted(set(expected) - set(members))}")
    state = torch.load(io.BytesIO(members.pop("model.pt")), map_location="cpu", weights_only=False)
    info = state.pop(SHIP_KEY, {"widen": {}})
    for k, dtype in info["widen"].items():
        state["model"][k] = state["model"][k].to(getattr(torch, dtype))
    state["shipped"] = {"dtype": "float16", "sha256": m["sha256"], "source": m["source"]}
    tmp = out.parent / f".{out.name}.joining"
    if tmp.exists():
        for p in tmp.iterdir():
            p.unlink()
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp / "model.pt")
    for fname, data in members.items():
        (tmp / fname).write_bytes(data)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m zhie.train.ship", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--split-run", metavar="RUN", help="a run folder to split into --out")
    g.add_argument("--join", nargs="+", metavar="DIR", help="folders holding a manifest and its parts (subfolders searched)")
    g.add_argument("--calls", metavar="DIR", help="a folder of splits: write DIR/calls.txt (which files go in which call)")
    p.add_argument("--out", default="", help="--split-run: the folder of the parts; --join: the run folder to write")
    p.add_argument("--part-mib", type=float, default=PART_MIB, help=f"--split-run: MiB a part at most (default {PART_MIB:g})")
    p.add_argument("--name", default=None, help="--split-run: the parts' name (default: the run's task); "
                                                "--join: which manifest, where the folders hold several")
    a = p.parse_args(argv)
    if a.calls:
        folder = Path(a.calls)
        calls = write_calls(folder)
        print(f"{folder / CALLS}: {len(calls)} call(s)")
        print("\n".join(describe_calls(folder, calls)))
        return
    if not a.out:
        p.error("--out is needed")
    if a.split_run:
        m = split_run(a.split_run, a.out, a.name, a.part_mib)
        print(f"{a.split_run} -> {Path(a.out) / manifest_name(m['name'])}: {len(m['parts'])} part(s), {m['mib']:.2f} MiB "
              f"(float16, {m['parameters']} parameters; {', '.join(f['path'] for f in m['files'])}) in {m['seconds']:.1f} s")
        for part in m["parts"]:
            print(f"  {part['file']}  {part['bytes'] / 2**20:6.2f} MiB  {part['sha256']}")
        return
    t0 = time.time()
    run = join(a.join, a.out, a.name)
    print(f"joined {run} in {time.time() - t0:.1f} s: {', '.join(sorted(x.name for x in run.iterdir()))}")


if __name__ == "__main__":
    main()
