"""zhie command line: serve | ner | sentiment | eval | train | export | bench."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


def _input_texts(args) -> list[str]:
    """TEXT, or with '-' standard input: one text, or one per line with --lines."""
    if args.text != "-":
        return [args.text]
    data = sys.stdin.read()
    return data.splitlines() if args.lines else [data]


def _unit(v: str) -> float:
    """argparse type: a probability strictly between 0 and 1."""
    x = float(v)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not between 0 and 1")
    return x


def _jdump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


# -- serve --------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    import uvicorn

    from .server.settings import Settings

    overrides = {k: getattr(args, k) for k in ("host", "port", "workers", "threads", "ner_model", "device", "max_text_chars",
                                               "max_request_chars", "max_batch_items", "window", "overlap", "sentiment_model", "analyze_max_chars",
                                               "batch_chars", "batch_wait_ms", "max_queue", "request_timeout_s", "model_concurrency")}
    overrides.update({k: getattr(args, k, None) for k in ("gpu_failures", "gpu_deadline_s", "gpu_cooldown_s")})
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as e:
        print(f"zhie serve: {e}", file=sys.stderr)
        return 2
    from .server.gpu import DeviceUnavailable, resolve_device

    try:  # --device cuda without a usable GPU: refuse to start, naming what is missing
        device, why = resolve_device(settings.device)
    except DeviceUnavailable as e:
        print(f"zhie serve: {e}", file=sys.stderr)
        return 2
    if settings.device == "auto":
        print(f"zhie serve: --device auto: serving on {device} ({why.removeprefix('auto: ')})", file=sys.stderr)
    from .models.bundle import bundled_models, load_bundle
    from .runtime.session import prepacked_model
    from .server.lifecycle import uvicorn_options

    # fail here, with a clear message, rather than inside every worker
    names = [settings.ner_model]
    if settings.sentiment_model and (settings.sentiment_model != "sentiment" or "sentiment" in bundled_models()):
        names.append(settings.sentiment_model)
    try:
        bundles = [load_bundle(n) for n in names]
    except (OSError, ValueError) as e:
        print(f"zhie serve: {e}", file=sys.stderr)
        return 2
    if device == "cpu":  # once, before the workers start: they memory-map the same weights
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(bundles)) as pool:  # a first start on a machine packs both at once
            list(pool.map(prepacked_model, [b.onnx_path for b in bundles]))
    os.environ.update(settings.to_env())  # worker processes read the same settings
    if settings.workers > 1:
        _fork_workers()
        _close_listener_on_exit()
    # uvicorn re-raises the signal that stopped it once it is done; a drained stop is a clean exit (0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        "zhie.server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        **uvicorn_options(settings),  # drain time, connection limits and timeouts: zhie.server.lifecycle
    )
    return 0


def _close_listener_on_exit() -> None:
    """Under --workers N the parent holds the listening socket too: on SIGTERM it closes its copy
    before telling the workers to drain, so that once they close theirs new connections are refused
    at once instead of waiting in the kernel's queue for a process that will never accept them."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    terminate_all = Multiprocess.terminate_all

    def close_then_terminate(self) -> None:
        for sock in self.sockets:
            sock.close()
        terminate_all(self)

    Multiprocess.terminate_all = close_then_terminate  # uvicorn has no public hook for this


def _fork_workers() -> None:
    """Workers forked from a parent that has already imported the serving code (numpy, ONNX Runtime,
    FastAPI, pydantic, zhie): those pages stay shared copy-on-write, where uvicorn's default spawned
    workers would each import their own copy (about 60 MB a worker). Models still load in each
    worker after the fork (ONNX Runtime thread pools do not survive a fork); their weights are shared
    through the memory-mapped model cache. Linux only; elsewhere uvicorn spawns as usual."""
    import gc
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform != "linux":
        return
    import uvicorn._subprocess as sub

    from .server import app  # noqa: F401  (import in the parent, share with every worker)

    sub.spawn = multiprocessing.get_context("fork")  # uvicorn has no public switch for this
    gc.freeze()  # keep the parent's objects out of the children's garbage collections (fewer pages copied)


# -- ner ------------------------------------------------------------------------------------------
def cmd_ner(args) -> int:
    from .tasks.ner import NerOptions, NerTagger

    tagger = NerTagger.load(args.model, threads=args.threads or None, options=NerOptions(window=args.window, overlap=args.overlap))
    texts = _input_texts(args)
    results = tagger.predict(texts)
    for ents in results:
        print(_jdump({"entities": [e.to_dict() for e in ents]}))
    return 0


def cmd_sentiment(args) -> int:
    from .tasks.sentiment import SentimentClassifier

    clf = SentimentClassifier.load(args.model, threads=args.threads or None)
    texts = _input_texts(args)
    for r in clf.predict(texts):
        print(_jdump(r.to_dict()))
    return 0


def cmd_extract(args) -> int:
    from .tasks.extract import ExtractOptions, SchemaExtractor
    from .tasks.schema import SchemaError, parse_schema, result_to_json

    try:
        schema = parse_schema(json.loads(args.schema))
    except json.JSONDecodeError as e:
        print(f"zhie extract: --schema is not JSON: {e}", file=sys.stderr)
        return 2
    except SchemaError as e:
        print(f"zhie extract: {e}", file=sys.stderr)
        return 2
    x = SchemaExtractor.load(args.model, threads=args.threads or None, options=ExtractOptions(threshold=args.threshold))
    for r in x.predict(_input_texts(args), schema):
        print(_jdump(result_to_json(r)))
    return 0


# -- eval -----------------------------------------------------------------------------------------
def cmd_eval_extract(args) -> int:
    from .tasks.extract import ExtractOptions, SchemaExtractor
    from .train.check import eval_extractor, read_extract_eval

    try:
        lines = read_extract_eval(args.data)
    except ValueError as e:
        print(f"zhie eval extract: {e}", file=sys.stderr)
        return 2
    if args.limit:
        lines = lines[: args.limit]
    x = SchemaExtractor.load(args.model, threads=args.threads or None, options=ExtractOptions(threshold=args.threshold))
    held = set(x.bundle.config.get("held_out_types", []))
    r = eval_extractor(x, lines, held or None)
    r.update(model=str(x.bundle.path), data=str(args.data))
    print(_jdump(r))
    return 0


def cmd_eval_ner(args) -> int:
    from .tasks.ner import NerTagger
    from .train.check import eval_tagger, mention_forms
    from .train.data import map_types, parse_map, read_ner, split_dev

    mapping = parse_map(args.map)
    same = False
    try:
        docs = read_ner(args.data, args.format)
        rest = []
        if args.dev_split:
            rest, docs = split_dev(docs, args.dev_fraction, args.seed, args.dev_split)
        docs = map_types(docs, mapping)
        seen = None
        if args.seen_in:
            # the scored file itself: its training side only (the rest of the split), never the scored sentences
            same = Path(args.seen_in).resolve() == Path(args.data).resolve()
            if same and not args.dev_split:
                print("zhie eval ner: --seen-in is the scored file itself; add --dev-split to score its dev split "
                      "against its training side", file=sys.stderr)
                return 2
            train = rest if same else read_ner(args.seen_in, args.seen_format or args.format)
            seen = mention_forms(map_types(train, mapping))
    except ValueError as e:
        print(f"zhie eval ner: {e}", file=sys.stderr)
        return 2
    if args.limit:
        docs = docs[: args.limit]
    tagger = NerTagger.load(args.model, threads=args.threads or None)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done}/{total}", end="", file=sys.stderr)

    types = sorted(set(mapping.values())) if mapping else None
    r = eval_tagger(tagger, docs, args.batch, types, progress, seen)
    keys = ("precision", "recall", "f1", "per_type") + (("seen", "unseen", "seen_share") if seen is not None else ())
    result = {**{k: r[k] for k in keys + ("sentences", "seconds")}, "model": str(tagger.bundle.path), "data": str(args.data)}
    if args.dev_split:
        result["split"] = f"dev ({args.dev_fraction:.0%}, seed {args.seed}, {args.dev_split})"
    if seen is not None:
        result["seen_in"] = str(args.seen_in) + (" (the training side of the split)" if same else "")
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(_jdump(result))
    return 0


def cmd_eval_sentiment(args) -> int:
    from .tasks.sentiment import SentimentClassifier
    from .train.check import eval_classifier
    from .train.sentiment_data import read_sentiment

    pairs = read_sentiment(args.data, args.format)
    if args.limit:
        pairs = pairs[: args.limit]
    clf = SentimentClassifier.load(args.model, threads=args.threads or None)
    known = set(clf.labels)
    unknown = sorted({lab for _, lab in pairs} - known)
    if unknown:
        print(f"zhie eval sentiment: labels {unknown} in {args.data} are not predicted by this model ({sorted(known)})", file=sys.stderr)
    r = eval_classifier(clf, pairs, args.batch)
    result = {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "per_label": r["per_label"], "ece": r["ece"], "examples": r["examples"],
              "seconds": r["seconds"], "model": str(clf.bundle.path), "data": str(args.data)}
    print(_jdump(result))
    return 0


# -- import ---------------------------------------------------------------------------------------
def cmd_import(args) -> int:
    """A downloaded checkpoint folder (Hugging Face, ModelScope, PaddleNLP UIE) into a zhie model folder."""
    from .models.formats import ImportError_

    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    if labels is not None and (not all(labels) or len(set(labels)) != len(labels)):
        print(f"zhie import: --labels {args.labels!r}: names must be non-empty and distinct", file=sys.stderr)
        return 2
    try:
        from .convert.importer import import_model

        import_model(args.src, args.task, args.out, fmt=args.format, precision=args.precision, labels=labels, check=args.check,
                     log=lambda msg: print(msg, file=sys.stderr))
    except ImportError_ as e:
        print(f"zhie import: {e}", file=sys.stderr)
        return 2
    return 0


# -- train / export -------------------------------------------------------------------------------
def cmd_train(args, rest: list[str]) -> int:
    if args.command == "bench":
        from .bench.run import main as bench

        return bench(rest)
    if args.task == "ner":
        from .train.ner import main
    elif args.task == "ner-cache":  # a trained NER encoder's output, cached for head training
        from .train.ner_cache import main
    elif args.task == "ner-head":  # a new tagging head (BiLSTM, lexicon features) on that cache
        from .train.ner_head import main
    elif args.task == "extract":
        from .train.extract import main
    elif args.task == "import-bundle":  # a model folder back into a run, to train on from what ships
        from .train.from_bundle import main
    else:
        from .train.sentiment import main
    main(rest)
    return 0


def cmd_export(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("zhie").setLevel(logging.INFO)
    from .train.export import export_run

    calibration = None
    if args.smooth is not None and not 0 < args.smooth <= 1:
        raise SystemExit(f"--smooth ALPHA must be in (0, 1], got {args.smooth}")
    if args.smooth:
        from .train.quant_sensitivity import model_inputs

        if not args.smooth_data:
            raise SystemExit("--smooth needs --smooth-data: inputs to calibrate on (extract: the datasets folder)")
        fmt = args.smooth_format or {"ner": "bio", "sentiment": "lines", "extract": "uie"}[args.task]
        calibration = model_inputs(Path(args.run), args.smooth_data, fmt, args.smooth_sample, 13)
    out = export_run(args.run, args.out, name=args.name or args.task, reduce_range=args.reduce_range,
                     keep_float=args.keep_float, smooth=args.smooth, calibration=calibration)
    if args.check_data:
        from .train.check import check_export

        fmt = args.check_format or {"ner": "bio", "sentiment": "tsv", "extract": "jsonl"}[args.task]
        report = check_export(out, Path(args.run) / "export" / "float_bundle", args.check_data, fmt, args.check_split)
        print(_jdump(report))
    if args.fp16:  # the GPU model, from the run's float32 graph of the same weights
        from .models.fp16 import export_fp16

        export_fp16(out, Path(args.run) / "export" / "model.fused.onnx")
    return 0


def cmd_export_fp16(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("zhie").setLevel(logging.INFO)
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("zhie export-fp16: needs the onnx package (pip install 'zhie[gpu]' or the train extra)", file=sys.stderr)
        return 2
    from .models.fp16 import export_fp16

    from .models.bundle import ModelNotFound

    try:
        out = export_fp16(args.folder, args.source, kind="int8" if args.int8_exact else "fp16")
    except (ModelNotFound, FileNotFoundError) as e:
        print(f"zhie export-fp16: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a file that is not ONNX, a graph of another shape
        print(f"zhie export-fp16: {args.source or args.folder}: cannot make an fp16 model: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(_jdump({"int8x" if args.int8_exact else "fp16": str(out), "bytes": out.stat().st_size}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .train.data import NER_FORMATS
    from .train.sentiment_data import SENTIMENT_FORMATS  # the readers' own lists (no torch behind them)

    p = argparse.ArgumentParser(prog="zhie", description="Chinese information extraction on ONNX Runtime")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="start the HTTP service (API, docs at /docs)")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--workers", type=int, default=None, help="processes (default 1)")
    s.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per worker (default cores / workers)")
    s.add_argument("--ner-model", default=None, help="bundled model name or a model folder")
    s.add_argument("--sentiment-model", default=None, help="bundled model name or a model folder ('' turns it off)")
    s.add_argument("--analyze-max-chars", type=int, default=None, help="limit of the drop-in /analyze route (default 512)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="cpu (default): INT8 on the CPU; cuda: fp16 on the GPU (needs onnxruntime-gpu, docs/gpu.md), "
                        "refusing to start without one; auto: cuda when a GPU is usable, else cpu")
    s.add_argument("--gpu-failures", type=int, default=None, help="GPU failures in a row that move a task to the CPU (default 3)")
    s.add_argument("--gpu-deadline-s", type=float, default=None, help="a GPU model call running longer counts as a failure (default 10)")
    s.add_argument("--gpu-cooldown-s", type=float, default=None, help="seconds on the CPU before the GPU is probed again (default 30)")
    s.add_argument("--max-text-chars", type=int, default=None)
    s.add_argument("--max-request-chars", type=int, default=None)
    s.add_argument("--max-batch-items", type=int, default=None)
    s.add_argument("--window", type=int, default=None, help="characters per NER window (default 128)")
    s.add_argument("--overlap", type=int, default=None, help="characters shared by neighbouring windows (default 32)")
    s.add_argument("--batch-chars", type=int, default=None, help="characters per grouped model call (default 16384)")
    s.add_argument("--batch-wait-ms", type=float, default=None, help="wait for more requests before a model call (default 0)")
    s.add_argument("--max-queue", type=int, default=None, help="texts waiting before 503 (default 2048)")
    s.add_argument("--model-concurrency", type=int, default=None, help="model calls in flight at once (default cores / workers)")
    s.add_argument("--request-timeout-s", type=float, default=None, help="503 after waiting this long (default 120)")
    s.set_defaults(func=cmd_serve)

    def text_command(name: str, help: str, func) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("text")
        c.add_argument("--model", default=name)
        c.add_argument("--lines", action="store_true", help="with '-': one text per input line, one JSON line each")
        c.add_argument("--threads", type=int, default=0)
        c.set_defaults(func=func)
        return c

    n = text_command("ner", "named entities of TEXT (or '-' for stdin) as JSON", cmd_ner)
    n.add_argument("--window", type=int, default=128)
    n.add_argument("--overlap", type=int, default=32)
    text_command("sentiment", "sentiment of TEXT (or '-' for stdin) as JSON", cmd_sentiment)
    xt = text_command("extract", "schema-driven extraction from TEXT (or '-' for stdin) as JSON (Taskflow shape)", cmd_extract)
    xt.add_argument("--schema", required=True, help='JSON, e.g. \'{"产品名称": null, "属性词": {"情感词": null}}\' or \'["人物", "地点"]\'')
    xt.add_argument("--threshold", type=_unit, default=None, help="probability a span's start and end must each pass (default: the model's, 0.5)")

    e = sub.add_parser("eval", help="score a model on a labelled file")
    esub = e.add_subparsers(dest="task", required=True)
    en = esub.add_parser("ner", help="entity-level exact-match P/R/F1")
    en.add_argument("--data", required=True)
    en.add_argument("--format", required=True, choices=NER_FORMATS)
    en.add_argument("--map", default=None, help="rename gold types, e.g. GPE.NAM=LOC,PER.NAM=PER; scoring then covers only the target types")
    en.add_argument("--model", default="ner")
    en.add_argument("--dev-split", nargs="?", const="contiguous", default=None, choices=["contiguous", "random"],
                    help="score only the dev split carved from a training file (5%%, seed 13): contiguous blocks of "
                         "sentences (the default), or 'random' single sentences, the old split, to compare with figures measured on it")
    en.add_argument("--seen-in", default=None, metavar="FILE",
                    help="also score mentions seen / unseen in this training file (its gold mentions' surface forms, after "
                         "--map); the scored file itself with --dev-split: its training side")
    en.add_argument("--seen-format", default=None, choices=NER_FORMATS, help="format of --seen-in (default: --format)")
    en.add_argument("--dev-fraction", type=float, default=0.05)
    en.add_argument("--seed", type=int, default=13)
    en.add_argument("--limit", type=int, default=0)
    en.add_argument("--batch", type=int, default=64)
    en.add_argument("--threads", type=int, default=0)
    en.set_defaults(func=cmd_eval_ner)

    es = esub.add_parser("sentiment", help="accuracy and macro F1 of a sentiment model")
    es.add_argument("--data", required=True)
    es.add_argument("--format", required=True, choices=SENTIMENT_FORMATS,
                    help="tsv: label 1 positive / 0 negative; tsv-inverted: 0 positive (the shared shopping corpus)")
    es.add_argument("--model", default="sentiment")
    es.add_argument("--limit", type=int, default=0)
    es.add_argument("--batch", type=int, default=64)
    es.add_argument("--threads", type=int, default=0)
    es.set_defaults(func=cmd_eval_sentiment)

    ee = esub.add_parser("extract", help="micro P/R/F1 over (path of types, start, end) of a schema extractor")
    ee.add_argument("--data", required=True, help='JSON lines {"text", "schema", "expected"} (expected in the API result shape)')
    ee.add_argument("--model", default="extract")
    ee.add_argument("--limit", type=int, default=0)
    ee.add_argument("--threads", type=int, default=0)
    ee.add_argument("--threshold", type=_unit, default=None, help="span probability threshold (default: the model's)")
    ee.set_defaults(func=cmd_eval_extract)

    t = sub.add_parser("train", add_help=False, help="train a model (needs the 'train' extra); flags after the task go to the trainer")
    t.add_argument("task", choices=["ner", "ner-cache", "ner-head", "sentiment", "extract", "import-bundle"])
    t.set_defaults(func=cmd_train, passthrough=True)

    b = sub.add_parser("bench", add_help=False, help="side-by-side serving benchmark against a torch + gunicorn baseline "
                       "(needs the 'train' and 'bench' extras); see zhie bench --help")
    b.set_defaults(func=cmd_train, passthrough=True)

    x = sub.add_parser("export", help="export a training run to an INT8 ONNX model folder")
    x.add_argument("task", choices=["ner", "sentiment", "extract"])
    x.add_argument("--run", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--name", default=None)
    x.add_argument("--check-data", default=None, help="NER: training file whose dev split checks INT8 against float; sentiment: a dev file")
    x.add_argument("--check-format", default=None, help="bio (NER) / tsv (sentiment) by default")
    x.add_argument("--check-split", default="contiguous", choices=["contiguous", "random"],
                   help="NER: the dev split of --check-data (contiguous blocks; random: the split of runs trained before issue 22)")
    x.add_argument("--reduce-range", action="store_true", help="INT8 weights in a 7-bit range (measured no better; MODELS.md)")
    x.add_argument("--keep-float", default=None, metavar="REGEX",
                   help="leave the MatMul nodes whose name matches REGEX in float32 (python -m zhie.train.quant_sensitivity "
                        "ranks them)")
    x.add_argument("--smooth", type=float, default=None, metavar="ALPHA",
                   help="smooth activation outliers into the weights before INT8 (SmoothQuant scales; 0.75 measured best "
                        "on the extractor, MODELS.md)")
    x.add_argument("--smooth-data", default=None, help="inputs to calibrate the smoothing on (extract: the datasets folder)")
    x.add_argument("--smooth-format", default=None, help="bio (NER), lines (sentiment), uie (extract) by default")
    x.add_argument("--smooth-sample", type=int, default=100, help="how many inputs to calibrate on")
    x.add_argument("--fp16", action="store_true", help="also write the GPU model, model.fp16.onnx, from the run's float32 graph")
    f16 = sub.add_parser("export-fp16", help="write a model folder's GPU model (model.fp16.onnx) beside its INT8 one")
    f16.add_argument("folder", help="a model folder (config.json, model.onnx, vocab.txt)")
    f16.add_argument("--from", dest="source", default=None, metavar="FLOAT.onnx",
                     help="a float32 graph of the same weights (a run's export/model.fused.onnx); default: the folder's "
                          "INT8 model, dequantised")
    f16.add_argument("--int8-exact", action="store_true",
                     help="write model.int8x.onnx instead: the INT8 model's arithmetic in float32 ops, for "
                          "ZHIE_GPU_MODEL=int8 (the CPU model's answers on the GPU)")
    f16.set_defaults(func=cmd_export_fp16)
    x.set_defaults(func=cmd_export)

    im = sub.add_parser("import", help="convert a Hugging Face / ModelScope / PaddleNLP checkpoint folder into a zhie model "
                        "folder (needs the 'train' extra; docs/import.md)")
    im.add_argument("src", help="the downloaded checkpoint folder")
    im.add_argument("--task", required=True, choices=["ner", "sentiment", "extract"])
    im.add_argument("--out", required=True, help="the model folder to write (must not exist, or be empty)")
    im.add_argument("--format", default="auto", choices=["auto", "hf", "modelscope", "paddle-uie"])
    im.add_argument("--precision", default="int8", choices=["int8", "fp32"], help="int8 (default) as the bundled models; fp32 keeps float weights")
    im.add_argument("--labels", default=None, metavar="A,B,...", help="label names in the head's order (for generic LABEL_k)")
    im.add_argument("--check", default=None, metavar="TEXTS.jsonl", help='more texts ({"text": ...} lines) for the parity check')
    im.set_defaults(func=cmd_import)

    from .batch.cli import add_parser as add_batch_parser  # zhie batch: files of texts, resumable, local or Ray

    add_batch_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return cmd_train(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from .models.bundle import ModelNotFound

    try:
        return args.func(args)
    except (ModelNotFound, FileNotFoundError) as e:
        print(f"zhie {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
