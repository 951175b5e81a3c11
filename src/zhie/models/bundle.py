"""Model bundles: a folder with ``model.onnx``, ``config.json`` and ``vocab.txt`` (docs/model-folder.md).

Bundled models ship inside the package under ``zhie/models/bundled/<name>``; a user's own
model is any folder of the same layout (``zhie export`` writes one from a training run, ``zhie import``
one from a Hugging Face, ModelScope or PaddleNLP checkpoint).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..text.tokenize import CharTokenizer, Specials, WordPieceTokenizer, load_specials, load_tokenizer
from ..text.vocab import CharVocab

BUNDLED_DIR = Path(__file__).parent / "bundled"
FORMAT_VERSION = 2


class ModelNotFound(FileNotFoundError):
    pass


@dataclass
class ModelBundle:
    path: Path
    config: dict
    tokenizer: CharTokenizer | WordPieceTokenizer
    specials: Specials

    @property
    def vocab(self) -> CharVocab:
        """The char vocabulary of a zhie-trained model (training and export code reads it)."""
        if not isinstance(self.tokenizer, CharTokenizer):
            raise TypeError(f"{self.path} has a {self.tokenizer.kind} tokenizer, not a char vocabulary")
        return self.tokenizer.vocab

    @property
    def max_positions(self) -> int:
        return int(self.config.get("max_positions", 512))

    @property
    def source(self) -> dict:
        """Where an imported model came from (``format``, ``path``, hashes); bundled models: zhie's own."""
        return self.config.get("source") or {"format": "zhie"}

    @property
    def onnx_path(self) -> Path:
        return self.path / self.config.get("onnx", "model.onnx")

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def name(self) -> str:
        return self.config.get("name", self.path.name)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MB blocks (provenance of imports, keys of GPU model caches)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundled_models() -> list[str]:
    if not BUNDLED_DIR.exists():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "config.json").exists())


def resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if (p / "config.json").exists():
        return p
    b = BUNDLED_DIR / str(name_or_path)
    if (b / "config.json").exists():
        return b
    raise ModelNotFound(
        f"no model at {name_or_path!r}: give a folder with config.json, model.onnx and vocab.txt, "
        f"or one of the bundled models {bundled_models()}"
    )


def load_bundle(name_or_path: str | Path, task: str | None = None) -> ModelBundle:
    path = resolve(name_or_path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if config.get("format_version", 1) > FORMAT_VERSION:
        raise ValueError(f"{path}: model format {config['format_version']} is newer than this zhie supports")
    if task is not None and config.get("task") != task:
        raise ValueError(f"{path} is a {config.get('task')!r} model, not {task!r}")
    try:
        tokenizer = load_tokenizer(config, path)
    except FileNotFoundError as e:
        raise ModelNotFound(str(e)) from None
    bundle = ModelBundle(path, config, tokenizer, load_specials(config))
    if not bundle.onnx_path.exists():
        raise ModelNotFound(f"{bundle.onnx_path} is missing")
    return bundle
