"""Checkpoint formats zhie imports: a registry of small declarative converters.

Each format module registers one :class:`Format` with :func:`register`. ``detect(path)`` asks every
format's ``sniff``; zero or several matches is an :class:`ImportError_` that lists every candidate and
its reasons. Formats import torch lazily: this package is importable without the ``train`` extra, but
converting needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class ImportError_(ValueError):
    """A clear, user-facing import error: names the file or key at fault. Never shown with a traceback."""


@dataclass
class Match:
    format: str
    task: str | None  # the task the folder says it is for, when it says one
    reasons: list[str] = field(default_factory=list)
    ok: bool = True  # False: the format looked and declined; ``reasons`` says why (shown when nothing matches)


@dataclass
class Converted:
    """What a format hands to the importer.

    ``module``: a torch module whose ``forward(*inputs)`` takes the graph inputs named in ``input_names``
    (in that order) and returns the graph's first output as docs/model-folder.md specifies (emission or
    pointer *logits*, classifier logits). It is built from the source weights and is what gets exported.
    ``reference``: the original architecture in torch (the class the checkpoint was saved from, or a
    faithful rebuild of it), called with the same inputs, for the parity check; may be ``module`` itself
    when the exported module *is* the original class.
    ``config``: the zhie config.json fields this format decides (task, labels, scheme, crf, tokenizer,
    specials, max_positions, extraction fields); the importer adds name, source, check.
    ``files``: tokeniser files to copy into the output folder, as {name in output: source path}.
    ``consumed``/``ignored``: source state-dict keys mapped / deliberately dropped (the importer fails on
    any key in neither).
    """

    module: object
    reference: object
    input_names: list[str]
    dynamic_axes: dict
    dummy_inputs: tuple
    config: dict
    files: dict[str, Path]
    num_heads: int
    hidden: int
    # what the parity check and the provenance need (defaults keep a format that only fills the above valid)
    output_name: str = "scores"  # the graph's first output: "emissions" (ner), "logits" (sentiment), "pointers"
    ref_tokenizer: object = None  # the original's tokeniser (a transformers tokenizer), for the token-id check
    ref_crf: tuple | None = None  # (start, end, transitions[from][to]) read from the reference module itself
    source_files: list[Path] = field(default_factory=list)  # every source file read (hashed into ``source``)
    consumed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    parity_inputs: list[tuple] = field(default_factory=list)  # extract: graph inputs built from real texts
    # extract: whose decoding rules the reference answers by, "uie" (Taskflow) or "siamese" (SiameseUiePipeline);
    # the import's check (zhie.convert.uie_check) decodes ``reference`` by them
    pointer_rules: str | None = None


@dataclass
class Format:
    name: str  # "hf", "modelscope", "paddle-uie", ...
    tasks: tuple[str, ...]
    sniff: Callable[[Path], Match | None]
    convert: Callable[..., Converted]  # convert(src: Path, task: str, labels: list[str] | None) -> Converted


REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    if fmt.name in REGISTRY:
        raise ValueError(f"format {fmt.name!r} registered twice")
    REGISTRY[fmt.name] = fmt
    return fmt


def detect(src: Path, task: str | None = None, fmt: str = "auto") -> tuple[Format, Match]:
    """The one format that reads ``src`` (for ``task`` when given). ``fmt`` other than "auto" is obeyed: the
    format must still recognise the folder. Zero or several matches: an error listing every candidate."""
    load_all()
    if fmt != "auto":
        if fmt not in REGISTRY:
            raise ImportError_(f"unknown --format {fmt!r}: one of {sorted(REGISTRY)}")
        candidates = {fmt: REGISTRY[fmt]}
    else:
        candidates = dict(REGISTRY)
    found: list[tuple[Format, Match]] = []
    declined: list[str] = []
    for name, f in candidates.items():
        if task is not None and task not in f.tasks:
            declined.append(f"{name}: does not import task {task!r} (only {', '.join(f.tasks)})")
            continue
        m = f.sniff(src)
        if m is None or not m.ok:
            declined.append(f"{name}: " + ("; ".join(m.reasons) if m is not None and m.reasons else "not its layout"))
        elif task is not None and m.task is not None and m.task != task:
            declined.append(f"{name}: the folder holds a {m.task!r} model, not {task!r} ({'; '.join(m.reasons)})")
        else:
            found.append((f, m))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ImportError_(f"{src}: no checkpoint format recognises this folder" + (f" for task {task!r}" if task else "")
                           + " -- " + " | ".join(declined))
    listed = " | ".join(f"{f.name}: {'; '.join(m.reasons)}" for f, m in found)
    raise ImportError_(f"{src}: several formats match ({listed}); choose one with --format")


FORMAT_MODULES = ("hf", "modelscope", "paddle_uie")


def load_all() -> None:
    """Import every format module (each registers itself); a module not written yet is skipped."""
    import importlib

    for mod in FORMAT_MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


# -- reading source files with errors that name them -------------------------------------------------
def read_json(path: Path) -> dict:
    import json

    if not path.is_file():
        raise ImportError_(f"{path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ImportError_(f"{path} is not readable JSON: {e}") from None
    if not isinstance(data, dict):
        raise ImportError_(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def weight_files(src: Path) -> list[Path]:
    """The checkpoint's weight files: model.safetensors, pytorch_model.bin, or the shards an index names."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (src / index).is_file():
            names = sorted(set(read_json(src / index).get("weight_map", {}).values()))
            if not names:
                raise ImportError_(f"{src / index} has no weight_map")
            missing = [n for n in names if not (src / n).is_file()]
            if missing:
                raise ImportError_(f"{src / index} names shards that are missing: {missing}")
            return [src / n for n in names]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (src / name).is_file():
            return [src / name]
    raise ImportError_(f"{src}: no weights (model.safetensors or pytorch_model.bin) in the folder")


def load_state(files: list[Path]) -> dict:
    """Every tensor of the weight files, by key (float32)."""
    import torch

    state: dict = {}
    for f in files:
        try:
            if f.suffix == ".safetensors":
                from safetensors.torch import load_file

                part = load_file(str(f))
            else:
                part = torch.load(str(f), map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file: name it
            raise ImportError_(f"{f} is not a readable checkpoint: {type(e).__name__}: {e}") from None
        if isinstance(part, dict) and "state_dict" in part and isinstance(part["state_dict"], dict):
            part = part["state_dict"]
        if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
            raise ImportError_(f"{f} is not a state dict of tensors")
        state.update({k: v.float() if v.is_floating_point() else v for k, v in part.items()})
    return state
