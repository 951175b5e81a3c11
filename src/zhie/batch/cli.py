"""``zhie batch``: a file of texts through one task, resumable, on this machine or on Ray."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .io import FORMATS, InputError, detect_format
from .job import JobError, JobSpec, Output, ProgressBar

HELP = "run a task over a file of texts (JSONL, CSV, Parquet, text lines): one JSON line per input line, resumable"


def add_parser(sub) -> argparse.ArgumentParser:
    b = sub.add_parser("batch", help=HELP, description=HELP + ". Defaults for the limits and NER windows come from the "
                       "server's ZHIE_* variables (ZHIE_BATCH_CHARS, ZHIE_MAX_TEXT_CHARS, ZHIE_WINDOW, ZHIE_OVERLAP).")
    b.add_argument("--task", required=True, choices=["ner", "sentiment", "extract"])
    b.add_argument("--schema", default=None, help="extract: the schema, JSON (as /v1/extract takes it)")
    b.add_argument("--threshold", type=float, default=None, help="extract: span probability threshold (default: the model's)")
    b.add_argument("--input", required=True)
    b.add_argument("--output", required=True, help="JSON lines; its progress record is OUTPUT.progress")
    b.add_argument("--format", choices=FORMATS, default=None, help="input format (default: from the file name)")
    b.add_argument("--text-field", default="text", help="JSONL field / CSV or Parquet column of the text (default text)")
    b.add_argument("--id-field", default="id", help="field copied to each output line's id, if the input has it (default id)")
    b.add_argument("--resume", action="store_true", help="continue the run that wrote OUTPUT (same arguments); starts one if there is none")
    b.add_argument("--overwrite", action="store_true", help="start again even though OUTPUT exists")
    b.add_argument("--engine", choices=["local", "ray"], default="local")
    b.add_argument("--ray-address", default=None, help="an existing Ray cluster (ray://host:10001, or 'auto'); default: start a local Ray")
    b.add_argument("--ray-segment-batches", type=int, default=2048,
                   help="batches per Ray Data run (default 2048); the next segment is planned while one runs")
    b.add_argument("--workers", type=int, default=None,
                   help="model processes (local) or Ray actors (default: all cores / --threads)")
    b.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per worker or actor (default 1)")
    b.add_argument("--model", default="", help="bundled model name or a model folder (default: the task's bundled model)")
    b.add_argument("--batch-chars", type=int, default=None,
                   help="characters per model call (default ZHIE_BATCH_CHARS or 16384; 1: one text per call, each "
                        "result then equals the API's answer to that text sent alone)")
    b.add_argument("--max-text-chars", type=int, default=None, help="longer texts get a text_too_long error (default ZHIE_MAX_TEXT_CHARS or 1000000)")
    b.add_argument("--commit-s", type=float, default=1.0,
                   help="seconds between commits (fsync of the output, then of its progress record; default 1; 0: every batch)")
    b.add_argument("--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    b.set_defaults(func=cmd_batch)
    return b


def _env_int(name: str, default: int) -> int:
    import os

    v = os.environ.get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise JobError(f"{name}={v!r}: expected an integer") from None


def cmd_batch(args) -> int:
    try:
        return _run(args)
    except (JobError, InputError) as e:
        print(f"zhie batch: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from .local import cores

    schema = None
    if args.schema is not None:
        try:
            schema = json.loads(args.schema)
        except json.JSONDecodeError as e:
            raise JobError(f"--schema is not JSON: {e}") from None
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise JobError(f"--threshold {args.threshold}: must be between 0 and 1")
    if args.threads < 1:
        raise JobError("--threads must be at least 1")
    workers = args.workers if args.workers is not None else max(1, cores() // args.threads)
    if workers < (1 if args.engine == "ray" else 0):
        raise JobError("--workers must be at least 1 (0: the model in this process, local engine only)")
    if args.ray_address and args.engine != "ray":
        raise JobError("--ray-address is for --engine ray")
    if not args.quiet:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise JobError("the progress bar needs tqdm: pip install 'zhie[batch]' (or pass --quiet)") from None
    if not Path(args.input).is_file():
        raise JobError(f"--input {args.input}: no such file")
    spec = JobSpec(
        task=args.task, input=args.input, output=args.output, format=detect_format(args.input, args.format),
        text_field=args.text_field, id_field=args.id_field or None, schema=schema, threshold=args.threshold,
        model=args.model, window=_env_int("ZHIE_WINDOW", 128), overlap=_env_int("ZHIE_OVERLAP", 32),
        batch_chars=args.batch_chars or _env_int("ZHIE_BATCH_CHARS", 16384),
        max_text_chars=args.max_text_chars or _env_int("ZHIE_MAX_TEXT_CHARS", 1_000_000),
    )
    if spec.task == "extract":
        spec.parsed_schema()  # a bad schema fails here, before anything is read or loaded
    from ..models.bundle import ModelNotFound

    try:
        out = Output(spec, resume=args.resume, overwrite=args.overwrite, commit_s=max(0.0, args.commit_s))
    except (ModelNotFound, FileNotFoundError) as e:
        raise JobError(str(e)) from None
    st = out.state
    if st.complete:
        out.f.close()
        print(f"zhie batch: {spec.output} is already complete ({st.lines:,} lines, {st.errors:,} errors)", file=sys.stderr)
        print(json.dumps({"lines": st.lines, "errors": st.errors, "complete": True, "output": spec.output}))
        return 0
    bar = ProgressBar(spec, st, enabled=not args.quiet)
    lines0, errors0 = st.lines, st.errors
    t0 = time.perf_counter()

    def sink(lines: int, end: int, chars: int, text: str, errors: int) -> None:
        out.write(lines, end, chars, text, errors)
        bar.update(end, chars)

    try:
        if args.engine == "ray":
            from .ray_engine import run_ray

            try:
                run_ray(spec, st.cursor, st.lines, workers, args.threads, sink, args.ray_address, max(1, args.ray_segment_batches))
            except (JobError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - a cluster's failure is a message, the committed output stays
                msg = str(e).strip().splitlines()[-1] if str(e).strip() else ""
                raise JobError(f"the Ray run failed ({type(e).__name__}: {msg[:500]}); the {st.lines:,} lines committed "
                               "are kept: rerun with --resume") from None
        else:
            from .local import run_local

            run_local(spec, st.cursor, st.lines, workers, args.threads, sink)
    except KeyboardInterrupt:
        out.close()
        bar.close()
        print(f"\nzhie batch: interrupted after {st.lines:,} lines; rerun with --resume to continue", file=sys.stderr)
        return 130
    except BaseException:
        out.close()  # keep what is complete
        bar.close()
        raise
    out.finish()
    bar.close()
    t1 = time.perf_counter()
    dt = t1 - t0
    summary = {"lines": st.lines - lines0, "errors": st.errors - errors0, "seconds": round(dt, 2), "chars": bar.chars,
               "chars_per_s": round(bar.chars / dt if dt > 0 else 0.0, 1), "engine": args.engine, "workers": workers,
               "threads": args.threads, "total_lines": st.lines, "resumed_from_line": lines0, "output": spec.output}
    print(f"zhie batch: {summary['lines']:,} lines ({summary['errors']:,} errors) in {dt:.1f} s, "
          f"{summary['chars_per_s']:,.0f} chars/s ({args.engine}, "
          + (f"{workers} x {args.threads} threads)" if workers else f"in-process, {args.threads} threads)")
          + (f", resumed at line {lines0 + 1:,}" if lines0 else "") + f" -> {spec.output}", file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False))
    return 0
