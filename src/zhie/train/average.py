"""Average the weights of runs of one task (a "model soup", WiSE-FT style): ``python -m
zhie.train.average --runs runs/extract-v3 runs/extract-v4 --weights 0.5 0.5 --out runs/extract-v3v4``.

Runs that share an initialisation (one continued from the other) average into a model that often
keeps what each learnt: a continued run that gains a new domain and forgets some of the old one is
pulled back towards it. The output is a run folder (``model.pt``, ``config.json``, ``vocab.txt``
from the first run) that ``zhie export`` and ``zhie eval`` take like any other."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def average(runs: list[Path], weights: list[float], out: Path) -> Path:
    import torch

    if len(runs) != len(weights) or len(runs) < 2:
        raise ValueError("give two or more runs and one weight for each")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights sum to {sum(weights)}, not 1")
    states = [torch.load(r / "model.pt", map_location="cpu", weights_only=False) for r in runs]
    first = states[0]
    for r, s in zip(runs[1:], states[1:]):
        if s.get("kind") != first.get("kind") or s.get("labels") != first.get("labels") or s["model"].keys() != first["model"].keys():
            raise ValueError(f"{r} is not the same task and architecture as {runs[0]}")
        if (r / "vocab.txt").read_bytes() != (runs[0] / "vocab.txt").read_bytes():
            raise ValueError(f"{r} has another vocabulary than {runs[0]}")
    merged = {}
    for k, v in first["model"].items():
        if v.is_floating_point():
            merged[k] = sum(w * s["model"][k].float() for w, s in zip(weights, states)).to(v.dtype)
        else:
            merged[k] = v
    out.mkdir(parents=True, exist_ok=True)
    torch.save({**first, "model": merged, "step": 0, "averaged": [str(r) for r in runs], "weights": weights}, out / "model.pt")
    shutil.copy(runs[0] / "vocab.txt", out / "vocab.txt")
    cfg = json.loads((runs[0] / "config.json").read_text(encoding="utf-8"))
    cfg.update(out=str(out), averaged={str(r): w for r, w in zip(runs, weights)})
    (out / "config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m zhie.train.average", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True)
    p.add_argument("--weights", nargs="+", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    print(average(a.runs, a.weights, a.out))


if __name__ == "__main__":
    main()
