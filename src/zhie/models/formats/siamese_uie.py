"""ModelScope SiameseUIE (``nlp_structbert_siamese-uie_chinese-base``) -> zhie's split extractor graph.

The ModelScope format calls :func:`sniff` and :func:`convert_siamese` for a folder whose
``configuration.json`` names the task ``siamese-uie`` (../shared/docs/checkpoint-layouts.md section 2).

The checkpoint is ``SiameseUieModel``'s state dict: ``plm.*`` a BertModel holding layers 0..L-7,
``crossattention.layer.0-5`` the last six layers (a ``BertEncoder``), ``head_clsf`` and ``tail_clsf``
(Linear(H, 1)); ``config.json`` a BERT config with ``num_hidden_layers`` = L (12). Here the layers are put
back in order (crossattention layer i is encoder layer L-6+i), the encoder is loaded strictly into a
transformers ``BertModel`` and the split graph is exported (docs/model-folder.md, extract split):
``prompt_ids``/``prompt_mask`` (``[CLS] hint [SEP]``), ``text_ids``/``text_mask`` (``[CLS] text [SEP]``),
``pair_prompt``/``pair_text`` -> ``pointers`` (pairs, text_len, 2), the head and tail logits.

Decoding as the pipeline: a start and an end logit must each pass 0.5 (probability 0.6225), every start
takes the first end at or after it (``pairing: every_start``), hints ``"{type}: "`` and, a level down,
``"{parent type}: {parent span}, {type}: "`` (``prompt: siamese``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from . import Converted, ImportError_, Match, read_json, weight_files
from .uie_common import MAX_POSITIONS, PARITY_PROMPTS, PARITY_TEXTS, hf_tokenizer, wordpiece_for

TASKS = ("siamese-uie", "siamese_uie")
CROSS_LAYERS = 6  # SiameseUieModel.set_crossattention_layer(num_hidden_layers=6)
LOGIT_THRESHOLD = 0.5  # SiameseUiePipeline.threshold, compared with raw logits
HINT_MAX = 128  # the pipeline's hint_max_len (tokens, specials included)


def sniff(src: Path) -> Match | None:
    """A ModelScope SiameseUIE folder: ``configuration.json`` task ``siamese-uie``. Returns a Match for the
    ``modelscope`` format (task extract), or None when the folder is not one."""
    if not (src / "configuration.json").is_file():
        return None
    try:
        conf = read_json(src / "configuration.json")
    except ImportError_:
        return None
    task = conf.get("task")
    if task not in TASKS:
        return None
    reasons = [f"configuration.json task {task!r}"]
    model = conf.get("model") if isinstance(conf.get("model"), dict) else {}
    if model.get("type") not in (None, "bert"):
        return Match("modelscope", "extract", reasons + [f"model.type {model.get('type')!r} is not bert"], ok=False)
    try:
        files = weight_files(src)
        cfg = read_json(src / "config.json")
    except ImportError_ as e:
        return Match("modelscope", "extract", reasons + [str(e)], ok=False)
    reasons.append(f"config.json model_type {cfg.get('model_type')!r}, weights {[f.name for f in files]}")
    return Match("modelscope", "extract", reasons)


def _original_keys(state: dict) -> dict:
    """The checkpoint as ModelScope's loader reads it: LayerNorm gamma/beta renamed, the position-id buffer dropped."""
    out = {}
    for k, v in state.items():
        if k.endswith("embeddings.position_ids"):
            continue
        out[re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k))] = v
    return out


def convert_siamese(src: Path, labels: list[str] | None = None) -> Converted:
    from . import load_state
    from .bert_keys import HeadSlot, KeyMap, bert_config_from, build_encoder, map_keys
    from .uie_modules import SplitPointers
    from .uie_reference import SiameseUieReference

    if labels:
        raise ImportError_("--labels does not apply to SiameseUIE: its types are named in each request's schema")
    fields = read_json(src / "config.json")
    n_layers = fields.get("num_hidden_layers")
    if not isinstance(n_layers, int) or n_layers <= CROSS_LAYERS:
        raise ImportError_(f"{src / 'config.json'}: num_hidden_layers {n_layers!r}: SiameseUIE moves the last "
                           f"{CROSS_LAYERS} of them into crossattention, so it needs more than {CROSS_LAYERS}")
    split = n_layers - CROSS_LAYERS
    files = weight_files(src)
    wfile = files[0]
    state = load_state(files)

    # crossattention layer i is encoder layer split + i: one ordered 12-layer BERT under plm.
    renamed, cross = {}, set()
    rx_cross = re.compile(r"^crossattention\.layer\.(\d+)\.(.+)$")
    rx_plm = re.compile(r"^plm\.encoder\.layer\.(\d+)\.")
    for k, v in state.items():
        m = rx_cross.match(k)
        if m:
            i = int(m.group(1))
            if i >= CROSS_LAYERS:
                raise ImportError_(f"{wfile}: {k!r}: crossattention has {CROSS_LAYERS} layers (0-{CROSS_LAYERS - 1})")
            cross.add(i)
            renamed[f"plm.encoder.layer.{split + i}.{m.group(2)}"] = v
            continue
        m = rx_plm.match(k)
        if m and int(m.group(1)) >= split:
            raise ImportError_(f"{wfile}: {k!r}: SiameseUieModel keeps layers 0-{split - 1} in plm and the last "
                               f"{CROSS_LAYERS} under crossattention.layer.*")
        if k.startswith("crossattention."):
            raise ImportError_(f"{wfile}: {k!r} is not a crossattention layer weight")
        renamed[k] = v
    if not cross:
        raise ImportError_(f"{wfile}: no crossattention.layer.* keys: this is not a SiameseUieModel state dict")
    keymap = KeyMap(heads=tuple(HeadSlot(f"{h}.{p}", (f"{h}_clsf.{p}",)) for h in ("head", "tail") for p in ("weight", "bias")),
                    pooler=False, prefixes=("plm.",))
    mapped = map_keys(renamed, keymap, wfile, layers=n_layers)
    config = bert_config_from(fields, mapped, wfile)
    for h in ("head", "tail"):
        w = mapped.head[f"{h}.weight"]
        if tuple(w.shape) != (1, config.hidden_size):
            raise ImportError_(f"{wfile}: {h}_clsf.weight has shape {tuple(w.shape)}, expected (1, {config.hidden_size})")
    if config.type_vocab_size < 2:
        raise ImportError_(f"{wfile}: the hint reads token type 1 but the token-type table has {config.type_vocab_size} row(s)")
    encoder = build_encoder(config, mapped, wfile)
    module = SplitPointers(encoder, split, (mapped.head["head.weight"], mapped.head["head.bias"]),
                           (mapped.head["tail.weight"], mapped.head["tail.bias"])).eval()

    reference = SiameseUieReference(config)
    missing, unexpected = reference.load_state_dict(_original_keys(state), strict=False)
    missing = [k for k in missing if not k.startswith("plm.pooler.")]
    if missing or unexpected:
        raise ImportError_(f"{wfile}: the checkpoint does not load into SiameseUieModel: missing {missing[:6]}, "
                           f"unexpected {unexpected[:6]}")
    reference.eval()

    tokenizer, specials, max_positions = wordpiece_for(src, config)
    zconf = {
        "format_version": 2, "task": "extract", "max_positions": max_positions, "tokenizer": tokenizer,
        "specials": specials, "split": split, "threshold": 1.0 / (1.0 + math.exp(-LOGIT_THRESHOLD)),
        "pairing": "every_start", "prompt": "siamese", "max_prompt": 64, "max_span": max_positions,
    }
    tok = hf_tokenizer(src, tokenizer)
    hints = [f"{p}: " for p in PARITY_PROMPTS] + [f"{PARITY_PROMPTS[0]}: 张伟, {PARITY_PROMPTS[2]}: "]
    parity = [split_inputs(tok, hints[:2], list(PARITY_TEXTS)), split_inputs(tok, hints[2:], list(PARITY_TEXTS[1:2]))]
    names = ["prompt_ids", "prompt_mask", "text_ids", "text_mask", "pair_prompt", "pair_text"]
    axes = {"prompt_ids": {0: "prompts", 1: "prompt_len"}, "prompt_mask": {0: "prompts", 1: "prompt_len"},
            "text_ids": {0: "texts", 1: "text_len"}, "text_mask": {0: "texts", 1: "text_len"},
            "pair_prompt": {0: "pairs"}, "pair_text": {0: "pairs"}, "pointers": {0: "pairs", 1: "text_len"}}
    read = [src / "configuration.json", src / "config.json", *files, src / "vocab.txt"]
    read += [src / n for n in ("tokenizer_config.json", "special_tokens_map.json") if (src / n).is_file()]
    return Converted(
        module=module, reference=reference, input_names=names, dynamic_axes=axes, dummy_inputs=parity[0],
        config=zconf, files={"vocab.txt": src / "vocab.txt"}, num_heads=config.num_attention_heads,
        hidden=config.hidden_size, output_name="pointers", ref_tokenizer=tok, source_files=read,
        consumed=mapped.consumed, ignored=mapped.ignored, parity_inputs=parity,
        pointer_rules="siamese",
    )


def split_inputs(tok, hints: list[str], texts: list[str]) -> tuple:
    """The split graph's inputs for every (hint, text) pair: hints padded together with the pipeline's
    ``hint_max_len`` truncation, texts ``[CLS] text [SEP]``."""
    import torch

    h = tok(hints, padding=True, truncation=True, max_length=HINT_MAX, return_tensors="pt")
    t = tok(texts, padding=True, truncation=True, max_length=MAX_POSITIONS - HINT_MAX, return_tensors="pt")
    pp = torch.tensor([i for i in range(len(hints)) for _ in texts], dtype=torch.long)
    pt = torch.tensor([j for _ in hints for j in range(len(texts))], dtype=torch.long)
    return h["input_ids"].long(), h["attention_mask"].long(), t["input_ids"].long(), t["attention_mask"].long(), pp, pt
