"""One declarative key map for a BERT encoder, shared by every format that holds one.

Source spellings are data: the prefixes the checkpoints put before the encoder, the head slots each format
fills, the keys dropped on purpose. :func:`map_keys` fails on any source key that is neither mapped nor
dropped (llama.cpp's "Can not map tensor") and on any required slot left empty (CTranslate2's
``validate``), each error naming the file and the keys. The result loads strictly into a
``transformers`` ``BertModel`` / ``ErnieModel``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import ImportError_

# where each checkpoint family puts the encoder (the prefix before ``embeddings.word_embeddings.weight``)
ENCODER_PREFIXES = (
    "bert.",  # HF BertFor*, ModelScope SbertFor* / ModelForTextClassification (base_model_prefix 'bert')
    "ernie.",  # HF ErnieFor*
    "encoder.",  # ModelScope TransformerCRF / ModelForTokenClassificationWithCRF (RaNER)
    "embedder.transformer_model.",  # AdaSeq SequenceLabelingModel
    "",  # a bare BertModel
)

EMBEDDINGS = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
              "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias")
TOKEN_TYPE = "embeddings.token_type_embeddings.weight"
TASK_TYPE = "embeddings.task_type_embeddings.weight"  # ERNIE 3.0 (use_task_id)
LAYER = tuple(
    f"{m}.{p}"
    for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")
    for p in ("weight", "bias")
)
POOLER = ("pooler.dense.weight", "pooler.dense.bias")

# dropped whatever the format: buffers old transformers saved, pre-training heads
ALWAYS_DROPPED = (
    r"embeddings\.position_ids$",  # a buffer (saved by transformers < 4.31)
    r"^cls\.predictions\.",  # masked-LM head
    r"^cls\.seq_relationship\.",  # next-sentence head
    r"^lm_head\.",
)


@dataclass(frozen=True)
class HeadSlot:
    target: str  # the slot's name in the converted head
    sources: tuple[str, ...]  # source spellings, in the order they are tried (exactly one may be present)
    required: bool = True


@dataclass(frozen=True)
class KeyMap:
    heads: tuple[HeadSlot, ...]
    pooler: bool  # the head reads the pooler (sequence classifiers); otherwise the pooler is dropped
    prefixes: tuple[str, ...] = ENCODER_PREFIXES
    drop: tuple[str, ...] = ()  # more regular expressions of keys dropped on purpose


@dataclass
class Mapped:
    prefix: str
    encoder: dict  # canonical BertModel key -> tensor
    head: dict  # HeadSlot.target -> tensor
    consumed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    layers: int = 0
    task_type: bool = False
    token_type: bool = True


def _normalise(key: str) -> str:
    """Old TF-converted checkpoints call LayerNorm's weight/bias gamma/beta (ModelScope renames on load)."""
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


def find_prefix(keys, prefixes=ENCODER_PREFIXES) -> str | None:
    keys = set(keys)
    for p in prefixes:
        if p + "embeddings.word_embeddings.weight" in keys:
            return p
    return None


def map_keys(state: dict, keymap: KeyMap, file: Path | str, layers: int | None = None) -> Mapped:
    """Split ``state`` into the encoder's canonical keys and the head's slots, or fail naming the keys.

    ``layers``: the number of encoder layers the config declares (checked against the keys); None: read
    from the keys."""
    norm: dict[str, str] = {}
    for k in state:
        n = _normalise(k)
        if n in norm.values():
            raise ImportError_(f"{file}: key {k!r} duplicates another spelling of {n!r}")
        norm[k] = n
    prefix = find_prefix(norm.values(), keymap.prefixes)
    if prefix is None:
        raise ImportError_(f"{file}: no BERT encoder found (no key ending in embeddings.word_embeddings.weight under any "
                           f"of the prefixes {[p for p in keymap.prefixes if p]})")
    head_of: dict[str, HeadSlot] = {s: h for h in keymap.heads for s in h.sources}
    drops = [re.compile(p) for p in ALWAYS_DROPPED + keymap.drop]
    layer_rx = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
    mapped = Mapped(prefix=prefix, encoder={}, head={})
    unknown: list[str] = []
    seen_layers: set[int] = set()
    head_src: dict[str, str] = {}
    for k, n in norm.items():
        if n in head_of:
            slot = head_of[n]
            if slot.target in mapped.head:
                raise ImportError_(f"{file}: both {head_src[slot.target]!r} and {k!r} fill the head slot {slot.target!r}")
            mapped.head[slot.target] = state[k]
            head_src[slot.target] = k
            mapped.consumed.append(k)
            continue
        if any(rx.search(n) for rx in drops):
            mapped.ignored.append(k)
            continue
        if not n.startswith(prefix):
            unknown.append(k)
            continue
        c = n[len(prefix):]
        m = layer_rx.match(c)
        if c in EMBEDDINGS or c == TOKEN_TYPE or c == TASK_TYPE or (m and m.group(2) in LAYER) or (c in POOLER and keymap.pooler):
            mapped.encoder[c] = state[k]
            mapped.consumed.append(k)
            if m:
                seen_layers.add(int(m.group(1)))
        elif c in POOLER:
            mapped.ignored.append(k)  # a token classifier does not read the pooler
        else:
            unknown.append(k)
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise ImportError_(f"{file}: {len(unknown)} key(s) neither mapped nor dropped: {shown}")
    n_layers = layers if layers is not None else (max(seen_layers) + 1 if seen_layers else 0)
    extra = sorted(i for i in seen_layers if i >= n_layers)
    if extra:
        raise ImportError_(f"{file}: encoder layers {extra} are beyond the {n_layers} the config declares")
    required = list(EMBEDDINGS) + [f"encoder.layer.{i}.{s}" for i in range(n_layers) for s in LAYER]
    if keymap.pooler:
        required += list(POOLER)
    missing = [prefix + r for r in required if r not in mapped.encoder]
    missing += [f"{h.sources[0]} (head slot {h.target})" for h in keymap.heads if h.required and h.target not in mapped.head]
    if n_layers == 0:
        missing.append(f"{prefix}encoder.layer.0.* (no encoder layers)")
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise ImportError_(f"{file}: {len(missing)} required key(s) missing: {shown}")
    mapped.layers = n_layers
    mapped.task_type = TASK_TYPE in mapped.encoder
    mapped.token_type = TOKEN_TYPE in mapped.encoder
    return mapped


def bert_config_from(fields: dict, mapped: Mapped, file: Path | str, ernie: bool = False):
    """A ``transformers`` BertConfig from an HF-style config dict (also ModelScope's ``structbert`` one: same
    field names, ``layer_norm_eps`` 1e-12 when absent), checked against the weights. ``ernie``: the
    checkpoint may hold task-type embeddings (folded in by :func:`build_encoder`)."""
    from transformers import BertConfig

    word = mapped.encoder["embeddings.word_embeddings.weight"]
    pos = mapped.encoder["embeddings.position_embeddings.weight"]
    hidden = int(word.shape[1])
    try:
        heads = int(fields["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        raise ImportError_(f"{file}: num_attention_heads is missing or not a number") from None
    act = fields.get("hidden_act", "gelu")
    if act not in ("gelu", "relu", "gelu_new", "gelu_python", "tanh", "silu", "swish"):
        raise ImportError_(f"{file}: hidden_act {act!r} is not supported")
    ptype = fields.get("position_embedding_type", "absolute")
    if ptype != "absolute":
        raise ImportError_(f"{file}: position_embedding_type {ptype!r} is not supported (absolute only)")
    if hidden % heads:
        raise ImportError_(f"{file}: hidden size {hidden} is not a multiple of num_attention_heads {heads}")
    declared = fields.get("hidden_size")
    if declared is not None and int(declared) != hidden:
        raise ImportError_(f"{file}: hidden_size {declared} but the weights have {hidden}")
    kw = dict(
        vocab_size=int(word.shape[0]), hidden_size=hidden, num_hidden_layers=mapped.layers, num_attention_heads=heads,
        intermediate_size=int(mapped.encoder["encoder.layer.0.intermediate.dense.weight"].shape[0]), hidden_act=act,
        max_position_embeddings=int(pos.shape[0]), layer_norm_eps=float(fields.get("layer_norm_eps", 1e-12)),
        type_vocab_size=int(mapped.encoder[TOKEN_TYPE].shape[0]) if mapped.token_type else 1,
        pad_token_id=int(fields.get("pad_token_id", 0) or 0), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    if mapped.task_type and not ernie:
        raise ImportError_(f"{file}: {mapped.prefix}{TASK_TYPE} is an ERNIE key in a BERT checkpoint")
    return BertConfig(**kw)


def build_encoder(config, mapped: Mapped, file: Path | str):
    """A ``transformers`` BertModel with the mapped weights loaded strictly.

    ERNIE is BERT plus a task-type embedding added to every position; zhie always runs it with task type 0,
    so that row is folded into every token-type row (exact) and the graph is a plain BERT one, which
    onnxruntime's BERT fusion handles (it drops the extra embedding of an ERNIE graph: measured 9.5 on the
    logits of a tiny ERNIE, against 1e-6 unfused)."""
    import torch
    from transformers import BertModel

    config._attn_implementation = "eager"
    model = BertModel(config, add_pooling_layer="pooler.dense.weight" in mapped.encoder)
    sd = dict(mapped.encoder)
    if not mapped.token_type:  # no token-type table: token type 0 adds nothing
        sd[TOKEN_TYPE] = torch.zeros_like(model.embeddings.token_type_embeddings.weight)
    if mapped.task_type:
        task = sd.pop(TASK_TYPE)
        if task.shape[1:] != sd[TOKEN_TYPE].shape[1:]:
            raise ImportError_(f"{file}: {mapped.prefix}{TASK_TYPE} has shape {tuple(task.shape)}, not (*, hidden)")
        sd[TOKEN_TYPE] = sd[TOKEN_TYPE] + task[0][None, :]
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ImportError_(f"{file}: the encoder weights do not fit the config: {' '.join(first[:3])}") from None
    return model.eval()
