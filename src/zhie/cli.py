"""zhie command line: serve | ner | sentiment | eval | train | export | bench."""

from __future__ import annotations

import argparse
import json
import os
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
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as e:
        print(f"zhie serve: {e}", file=sys.stderr)
        return 2
    from .models.bundle import bundled_models, load_bundle
    from .runtime.session import prepacked_model

    # fail here, with a clear message, rather than inside every worker
    names = [settings.ner_model]
    if settings.sentiment_model and (settings.sentiment_model != "sentiment" or "sentiment" in bundled_models()):
        names.append(settings.sentiment_model)
    try:
        bundles = [load_bundle(n) for n in names]
    except (OSError, ValueError) as e:
        print(f"zhie serve: {e}", file=sys.stderr)
        return 2
    if settings.device == "cpu":  # once, before the workers start: they memory-map the same weights
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(bundles)) as pool:  # a first start on a machine packs both at once
            list(pool.map(prepacked_model, [b.onnx_path for b in bundles]))
    os.environ.update(settings.to_env())  # worker processes read the same settings
    if settings.workers > 1:
        _fork_workers()
    uvicorn.run(
        "zhie.server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


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
    from .train.check import eval_tagger
    from .train.data import map_types, parse_map, read_ner, split_dev

    mapping = parse_map(args.map)
    docs = read_ner(args.data, args.format)
    if args.dev_split:
        docs = split_dev(docs, args.dev_fraction, args.seed)[1]
    docs = map_types(docs, mapping)
    if args.limit:
        docs = docs[: args.limit]
    tagger = NerTagger.load(args.model, threads=args.threads or None)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done}/{total}", end="", file=sys.stderr)

    types = sorted(set(mapping.values())) if mapping else None
    r = eval_tagger(tagger, docs, args.batch, types, progress)
    result = {**{k: r[k] for k in ("precision", "recall", "f1", "per_type", "sentences", "seconds")},
              "model": str(tagger.bundle.path), "data": str(args.data)}
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
        report = check_export(out, Path(args.run) / "export" / "float_bundle", args.check_data, fmt)
        print(_jdump(report))
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
    s.add_argument("--device", choices=["cpu", "cuda"], default=None)
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
    en.add_argument("--dev-split", action="store_true", help="score only the dev split carved from a training file (5%%, seed 13)")
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
    x.set_defaults(func=cmd_export)
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
