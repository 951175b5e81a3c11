"""``zhie import``: a checkpoint folder (Hugging Face, ModelScope, PaddleNLP UIE) into a zhie model folder.

detect the layout -> convert (declarative key maps, ``zhie.models.formats``) -> torch.onnx.export (opset 17,
TorchScript exporter as ``zhie.models.export``) -> fuse, and INT8 as the bundled models are (or keep float32)
-> write config.json (labels, tokeniser, specials, provenance) into a temporary folder -> parity check
(``zhie.convert.parity``) -> rename into place. Nothing is left at ``out`` unless the check passed.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from pathlib import Path

from ..models.bundle import file_sha256
from ..models.formats import Converted, ImportError_, detect

TASKS = ("ner", "sentiment", "extract")
FORMAT_VERSION = 2


def require_torch() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ModuleNotFoundError as e:
        raise ImportError_(f"importing a checkpoint needs torch and transformers ({e.name} is not installed): "
                           "pip install 'zhie[train]'") from None


def export_graph(conv: Converted, path: Path) -> None:
    import torch

    with torch.no_grad():
        torch.onnx.export(conv.module, conv.dummy_inputs, str(path), input_names=list(conv.input_names),
                          output_names=[conv.output_name], dynamic_axes=conv.dynamic_axes, opset_version=17, dynamo=False)


def _write_folder(folder: Path, conv: Converted, config: dict, graph: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, p in conv.files.items():
        shutil.copyfile(p, folder / name)
    if graph != folder / "model.onnx":
        shutil.copyfile(graph, folder / "model.onnx")
    (folder / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def import_model(src: str | Path, task: str, out: str | Path, fmt: str = "auto", precision: str = "int8",
                 labels: list[str] | None = None, check: str | Path | None = None, name: str | None = None,
                 log=print) -> dict:
    """Import ``src`` as a ``task`` model into the new folder ``out``; returns the written config.
    Every user-facing failure is an :class:`ImportError_` naming the file or key."""
    from .. import __version__
    from . import parity

    src, out = Path(src).expanduser(), Path(out).expanduser()
    if task not in TASKS:
        raise ImportError_(f"--task {task!r}: one of {list(TASKS)}")
    if precision not in ("int8", "fp32"):
        raise ImportError_(f"--precision {precision!r}: int8 or fp32")
    if not src.is_dir():
        raise ImportError_(f"{src} is not a folder: give the downloaded checkpoint's folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportError_(f"{out} already exists and is not empty: choose a new --out or remove it")
    check_texts = parity.read_check_texts(check) if check else []
    require_torch()
    f, match = detect(src, task, fmt)
    log(f"format {f.name}: {'; '.join(match.reasons)}")
    conv = f.convert(src, task, labels)
    from ..models.export import fuse, optimize_and_quantize

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise ImportError_(f"cannot write beside {out}: {e}") from None
    try:
        work = tmp / "work"
        work.mkdir()
        float_path = work / "model.float.onnx"
        export_graph(conv, float_path)
        fused = fuse(float_path, conv.num_heads, conv.hidden)
        config = {"format_version": FORMAT_VERSION, "name": name or out.name, **conv.config, "onnx": "model.onnx"}
        config.setdefault("vocab", "vocab.txt")
        files = {}
        for p in conv.source_files:
            rel = p.relative_to(src) if p.is_relative_to(src) else Path(p.name)
            files[str(rel)] = file_sha256(p)
        config["source"] = {
            "path": str(src.resolve()), "format": f.name, "files": files,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "zhie_version": __version__,
        }
        # the float32 check always runs, on the fused float32 graph, and must pass
        float_dir = work / "float"
        _write_folder(float_dir, conv, config, fused)
        config["source"]["tokenizer_fingerprint"] = parity.fingerprint(config, float_dir) if "tokenizer" in config else None
        report = {"float32": parity.check(conv, float_dir, check_texts, strict=True)}
        log(f"float32: largest logit difference {report['float32']['max_logit_diff']:.3g}, decoded "
            f"{json.dumps(report['float32'].get('decoded'), ensure_ascii=False)}")
        final = tmp / "model"
        if precision == "fp32":
            config["quantization"] = "none (float32, fused)"
            _write_folder(final, conv, config, fused)
        else:
            int8 = work / "model.int8.onnx"
            optimize_and_quantize(float_path, int8, conv.num_heads, conv.hidden)
            config["quantization"] = "dynamic INT8, per-channel weights (MatMul, Gather)"
            _write_folder(final, conv, config, int8)
            report["int8"] = parity.check(conv, final, check_texts, strict=False)
            log(f"int8: largest logit difference {report['int8']['max_logit_diff']:.3g}, decoded "
                f"{json.dumps(report['int8'].get('decoded'), ensure_ascii=False)}")
        config["check"] = report
        (final / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        final.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {out}")
    return config
