"""The GPU training path (issue 22), behind ``recipes/gpu-train.sh``: K members per task from the pretrained
encoder, each task's ensemble distilled into a student (``zhie.train.distil``), within a time budget.

    python -m zhie.train.gpu_train --data UNPACKED --out OUT [--smoke] [--device cuda] [--seeds 13 14 15]

``--data``: a pack unpacked by ``python -m zhie.train.pack --unpack`` (``datasets/`` and ``encoder/``). All
stages run in this one process (the data and the CUDA context are made once). Order: the first member of
every task, then the second of every task, ..., then the students; a stage starts only if the budget allows
it (a member's time is estimated from the task's last member, a student's as 1.5 of it; the members of later
rounds leave room for the students they make possible), and the stages left out are named. ``OUT/summary.json`` (rewritten
after every stage) holds each stage's wall time, status and run folder:

    OUT/ner/member-13, OUT/ner/member-14, ..., OUT/ner/student, OUT/sentiment/..., OUT/extract/...

Each run folder is what ``zhie train`` writes (``model.pt``, ``vocab.txt``, ``config.json``; on the CPU
after a GPU run), so ``zhie export ner|sentiment|extract --run OUT/ner/student`` works on a CPU machine.

Each student, once trained, is split for the way back (``zhie.train.ship``: float16, parts of 15 MiB) into the
flat folder ``OUT/ship`` (``ner.manifest.json``, ``ner.part00``, ...; the members are not), and
``OUT/ship/calls.txt`` says which of its files go back in which device call; the last lines printed give each
call's command (docs/training.md, GPU training).

``--smoke``: the same stages on the CPU with a few steps each (tiny data caps, two seeds): what CI runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import time
import traceback
from pathlib import Path

from .loop import RESUME_FILE, TrainingStopped

log = logging.getLogger("zhie.train")

TASKS = ("ner", "sentiment", "extract")
SHIP_DIR = "ship"  # under OUT: the students split for the way back (zhie.train.ship)
STUDENT_FACTOR = 1.5  # a student's time against a member's: the members' pass over its data, the marginals

# flags of each task's trainer (zhie train TASK) on one GPU: larger token budgets than the CPU recipes and
# learning rates raised with them; more epochs come from --ner-epochs etc. Anything here can be overridden
# with --ner-flags "..." (later flags win).
GPU_FLAGS = {
    "ner": "--extra weibo cluener --batch-tokens 16384 --lr-encoder 2e-4 --lr-head 3e-3 --warmup 0.06 --log-every 100",
    "sentiment": "--sources chnsenticorp:4000 nlpcc2014:3500 online_shopping:1500 waimai:800 shopping:800 smp2020:700 "
                 "smp2020_virus:700 --max-len 160 --batch-tokens 8192 --lr-encoder 1.5e-4 --lr-head 1e-3 --log-every 50",
    "extract": "--batch-tokens 12288 --lr-encoder 2e-4 --lr-head 2e-3 --log-every 100",
}
# the smoke mode: a few steps per stage on the CPU (the real encoder, the packed files, tiny caps)
SMOKE_FLAGS = {
    "ner": "--extra weibo cluener --max-train-sentences 12 --max-len 40 --batch-tokens 256 --log-every 1",
    "sentiment": "--sources chnsenticorp:10 --max-len 40 --batch-tokens 256 --calibration-limit 16 --log-every 1",
    "extract": "--max-examples 8 --max-len 48 --batch-tokens 256 --log-every 1",
}
EPOCHS = {"ner": 3.0, "sentiment": 2.0, "extract": 2.0}


def build_config(task: str, flags: str, data: Path, out: Path, seed: int, device: str, epochs: float, threads: int):
    from .distil import task_config

    fixed = ["--datasets", str(data / "datasets"), "--encoder", str(data / "encoder"), "--out", str(out),
             "--seed", str(seed), "--device", device, "--epochs", str(epochs), "--threads", str(threads),
             "--checkpoint-minutes", "1000"]  # a resume.pt at the end only: a stage is minutes long
    return task_config(task, shlex.split(flags) + fixed)


class Plan:
    """The stages, their times and the budget."""

    def __init__(self, out: Path, budget: float, started: float, meta: dict):
        self.out, self.budget, self.started = out, budget, started
        self.stages: list[dict] = []
        self.meta = meta
        self.ship: dict = {}  # task -> what zhie.train.ship made of its student
        self.calls: list[list[str]] = []

    def elapsed(self) -> float:
        return time.time() - self.started

    def member_time(self, task: str) -> float | None:
        done = [s["seconds"] for s in self.stages if s["task"] == task and s["role"] == "member" and s["status"] == "done"]
        return done[-1] if done else None

    def members(self, task: str) -> list[str]:
        return [s["run"] for s in self.stages if s["task"] == task and s["role"] == "member" and s["status"] == "done"]

    def record(self, **stage) -> None:
        self.stages.append(stage)
        self.write()
        left = self.budget - self.elapsed()
        if stage["status"] == "done":
            print(f"[gpu-train] {stage['name']}: {stage['seconds']:.1f} s (elapsed {self.elapsed():.0f} s, "
                  f"{left:.0f} s of the {self.budget:.0f} s budget left)", flush=True)
        else:
            print(f"[gpu-train] {stage['name']}: {stage['status']}", flush=True)

    def write(self) -> None:
        summary = {**self.meta, "budget_seconds": self.budget, "elapsed_seconds": round(self.elapsed(), 1),
                   "stages": self.stages,
                   "students": {s["task"]: s["run"] for s in self.stages if s["role"] == "student" and s["status"] == "done"},
                   "ship": {"dir": str(self.out / SHIP_DIR), "students": self.ship, "calls": self.calls}}
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.out / "summary.json")


def run(a) -> int:
    import torch

    data, out = Path(a.data), Path(a.out)
    device = "cpu" if a.smoke and not a.device else (a.device or "cuda")
    flags = SMOKE_FLAGS if a.smoke else GPU_FLAGS
    epochs = {"ner": a.ner_epochs, "sentiment": a.sentiment_epochs, "extract": a.extract_epochs}
    if a.smoke:
        epochs = {t: 1.0 for t in TASKS}
    extra = {"ner": a.ner_flags, "sentiment": a.sentiment_flags, "extract": a.extract_flags}
    seeds = a.seeds or ([13, 14] if a.smoke else [13, 14, 15])
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    plan = Plan(out, a.budget, a.started or time.time(),
                {"device": device, "gpu": gpu, "torch": torch.__version__, "smoke": bool(a.smoke), "seeds": seeds,
                 "student_seed": a.student_seed, "soft_weight": a.soft_weight, "epochs": epochs,
                 "flags": {t: f"{flags[t]} {extra[t]}".strip() for t in a.tasks}, "data": str(data)})
    if a.unpack_seconds is not None:
        plan.stages.append({"name": "unpack", "task": "", "role": "unpack", "status": "done", "seconds": a.unpack_seconds,
                            "run": str(data)})
    records = {}  # extract: the corpora read once, every stage's examples sampled from them

    def train(task: str, seed: int, run_dir: Path, members: list[str] | None) -> None:
        from .distil import train_student

        cfg = build_config(task, f"{flags[task]} {extra[task]}", data, run_dir, seed, device, epochs[task], a.threads)
        chosen = None
        if task == "extract":
            from .extract import build_examples
            from .uie_data import load_records

            key = (cfg.datasets, cfg.dev_split)
            if key not in records:
                records[key] = load_records(cfg.datasets, seed=13, dev_split=cfg.dev_split)
            chosen, _ = build_examples(cfg, records[key])
        if members is None:
            if task == "ner":
                from .ner import train_ner

                train_ner(cfg)
            elif task == "sentiment":
                from .sentiment import train_sentiment

                train_sentiment(cfg)
            else:
                from .extract import train_extract

                train_extract(cfg, chosen)
        else:
            train_student(task, cfg, members, a.soft_weight, a.teacher_batch_tokens, chosen)

    def stage(name: str, task: str, role: str, seed: int, run_dir: Path, members: list[str] | None = None) -> None:
        t0 = time.time()
        try:
            train(task, seed, run_dir, members)
        except TrainingStopped as e:  # SIGTERM / Ctrl-C (a timeout): its state saved, and no other stage starts
            stopped.append(str(e))
            plan.record(name=name, task=task, role=role, seed=seed, run=str(run_dir), status=f"stopped: {e}",
                        seconds=round(time.time() - t0, 1))
            return
        except (Exception, SystemExit) as e:  # noqa: BLE001 - one stage's failure is recorded; the other tasks go on
            traceback.print_exc()
            plan.record(name=name, task=task, role=role, seed=seed, run=str(run_dir), status=f"failed: {e!r}"[:500],
                        seconds=round(time.time() - t0, 1))
            return
        finally:
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        (run_dir / RESUME_FILE).unlink(missing_ok=True)  # a finished run's optimiser state (3x its weights): not needed
        plan.record(name=name, task=task, role=role, seed=seed, run=str(run_dir), status="done",
                    seconds=round(time.time() - t0, 1), **({"members": members} if members else {}))
        if role == "student":
            ship(task, run_dir)

    def ship(task: str, run_dir: Path) -> None:
        """Split a finished student into OUT/ship and plan the calls again (so a run cut off later still has
        the calls of the students it finished)."""
        from .ship import split_run, write_calls

        t0 = time.time()
        try:
            m = split_run(run_dir, out / SHIP_DIR, name=task)
            plan.ship[task] = {"status": "done", "manifest": f"{task}.manifest.json", "parts": [p["file"] for p in m["parts"]],
                               "mib": m["mib"], "sha256": m["sha256"], "seconds": round(time.time() - t0, 1)}
            plan.calls = write_calls(out / SHIP_DIR, [t for t, v in plan.ship.items() if v["status"] == "done"])
            print(f"[gpu-train] {task} student shipped: {len(m['parts'])} part(s), {m['mib']:.1f} MiB in float16, "
                  f"in {out / SHIP_DIR} ({time.time() - t0:.1f} s)", flush=True)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the other students are still shipped
            traceback.print_exc()
            plan.ship[task] = {"status": f"failed: {e!r}"[:500], "seconds": round(time.time() - t0, 1)}
            print(f"[gpu-train] {task} student: shipping failed: {e!r}", flush=True)
        plan.write()

    stopped: list[str] = []

    def skip(name: str, task: str, role: str, seed: int, why: str) -> None:
        plan.record(name=name, task=task, role=role, seed=seed, run="", status=f"skipped: {why}", seconds=0.0)

    def reserve(adding: str) -> float:
        """The expected time of the students to come: of every task with two members, counting one more for ``adding``."""
        return sum(STUDENT_FACTOR * (plan.member_time(t) or 0.0) for t in a.tasks
                   if len(plan.members(t)) + (t == adding) >= 2)

    for seed in seeds:
        for task in a.tasks:
            name = f"{task} member seed {seed}"
            est = plan.member_time(task)  # None for a task's first member: it runs while any budget is left
            left = plan.budget - plan.elapsed()
            if stopped:
                skip(name, task, "member", seed, "the run was stopped by a signal")
                continue
            if left <= 0:
                skip(name, task, "member", seed, f"the {plan.budget:.0f} s budget is spent")
                continue
            if est is not None and est + reserve(task) > left:
                skip(name, task, "member", seed, f"would exceed the budget: about {est:.0f} s, and {reserve(task):.0f} s "
                                                 f"kept for the students, with {left:.0f} s left")
                continue
            stage(name, task, "member", seed, out / task / f"member-{seed}")
    for task in a.tasks:
        name = f"{task} student seed {a.student_seed}"
        members = plan.members(task)
        if stopped:
            skip(name, task, "student", a.student_seed, "the run was stopped by a signal")
            continue
        if len(members) < 2:
            skip(name, task, "student", a.student_seed, f"{len(members)} member run(s): an ensemble needs two")
            continue
        est = STUDENT_FACTOR * (plan.member_time(task) or 0.0)
        left = plan.budget - plan.elapsed()
        if est > left:
            skip(name, task, "student", a.student_seed, f"would exceed the budget: about {est:.0f} s with {left:.0f} s left")
            continue
        stage(name, task, "student", a.student_seed, out / task / "student", members)
    plan.write()
    print(f"[gpu-train] total {plan.elapsed():.1f} s; summary {out / 'summary.json'}", flush=True)
    for s in plan.stages:
        print(f"[gpu-train]   {s['name']:<34} {s['seconds']:>7.1f} s  {s['status']}", flush=True)
    if plan.calls:
        from .ship import describe_calls

        done = [t for t, v in plan.ship.items() if v["status"] == "done"]
        print(f"[gpu-train] the students ({', '.join(done)}) go back in {len(plan.calls)} device call(s), "
              f"{out / SHIP_DIR / 'calls.txt'}; each later call made at once, while the machine is warm:", flush=True)
        for line in describe_calls(out / SHIP_DIR, plan.calls):
            print(f"[gpu-train]   {line}", flush=True)
        print(f"[gpu-train] then here: python -m zhie.train.ship --join CALL1_FILES CALL2_FILES ... --name TASK "
              f"--out runs/TASK-gpu; zhie export TASK --run runs/TASK-gpu --out models/TASK-gpu", flush=True)
    failed = any(s["status"].startswith(("failed", "stopped")) for s in plan.stages)
    return 1 if failed or any(v["status"] != "done" for v in plan.ship.values()) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zhie.train.gpu_train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="an unpacked pack: DATA/datasets and DATA/encoder")
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true", help="CPU, two seeds, a few steps per stage (CI)")
    p.add_argument("--device", default="", help="cuda (default) or cpu; --smoke: cpu")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="one member per seed (default 13 14 15; smoke 13 14)")
    p.add_argument("--student-seed", type=int, default=7)
    p.add_argument("--soft-weight", type=float, default=0.5, help="the soft targets' share of a student's loss")
    p.add_argument("--teacher-batch-tokens", type=int, default=32768)
    p.add_argument("--ner-epochs", type=float, default=EPOCHS["ner"])
    p.add_argument("--sentiment-epochs", type=float, default=EPOCHS["sentiment"])
    p.add_argument("--extract-epochs", type=float, default=EPOCHS["extract"])
    p.add_argument("--ner-flags", default="", help="more zhie train ner flags (after the recipe's: they win)")
    p.add_argument("--sentiment-flags", default="")
    p.add_argument("--extract-flags", default="")
    p.add_argument("--budget", type=float, default=540.0, help="seconds, counted from --started (default: now)")
    p.add_argument("--started", type=float, default=0.0, help="the recipe's start (Unix time), so unpacking counts")
    p.add_argument("--unpack-seconds", type=float, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run(a)


if __name__ == "__main__":
    raise SystemExit(main())
