"""Hugging Face BERT-family classifiers: ``BertFor{Token,Sequence}Classification`` (also RoBERTa-wwm and UER
checkpoints, which are BERT architecture) and ``ErnieFor...`` (task-type embeddings, 0 inside the graph).

Reads ``config.json`` (``architectures``, sizes, ``id2label``), the weights (``model.safetensors``,
``pytorch_model.bin`` or their shards), ``vocab.txt`` and ``tokenizer_config.json``. The parity reference is
the architecture class itself, loaded by transformers from the same folder.
"""

from __future__ import annotations

from pathlib import Path

from . import Converted, Format, ImportError_, Match, load_state, read_json, register, weight_files
from .bert_keys import HeadSlot, KeyMap, bert_config_from, build_encoder, map_keys
from .common import apply_user_labels, labels_from_map, max_positions, ner_scheme, reference_tokenizer, sentiment_labels, wordpiece

# architecture -> (task, encoder prefix)
ARCHITECTURES = {
    "BertForTokenClassification": ("ner", "bert."),
    "BertForSequenceClassification": ("sentiment", "bert."),
    "ErnieForTokenClassification": ("ner", "ernie."),
    "ErnieForSequenceClassification": ("sentiment", "ernie."),
}


def _architecture(cfg: dict) -> str | None:
    archs = cfg.get("architectures") or []
    return archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None


def sniff(src: Path) -> Match:
    path = src / "config.json"
    if not path.is_file():
        return Match("hf", None, ["no config.json"], ok=False)
    try:
        cfg = read_json(path)
    except ImportError_ as e:
        return Match("hf", None, [str(e)], ok=False)
    arch = _architecture(cfg)
    if arch is None:
        return Match("hf", None, ["config.json names no architectures"], ok=False)
    if arch not in ARCHITECTURES:
        return Match("hf", None, [f"config.json architectures {arch!r} is not one of {sorted(ARCHITECTURES)}"], ok=False)
    return Match("hf", ARCHITECTURES[arch][0], [f"config.json architectures {arch!r}"])


class ClassifierReference:
    """The transformers class called as the graph is: (input_ids, attention_mask) -> logits."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def convert(src: Path, task: str, labels: list[str] | None = None) -> Converted:
    import torch
    import transformers

    from .heads import SequenceScores, TokenScores, dummy_inputs, io_spec

    cfg_path = src / "config.json"
    cfg = read_json(cfg_path)
    arch = _architecture(cfg)
    if arch not in ARCHITECTURES:
        raise ImportError_(f"{cfg_path}: architectures {arch!r} is not supported (supported: {sorted(ARCHITECTURES)})")
    arch_task, prefix = ARCHITECTURES[arch]
    if arch_task != task:
        raise ImportError_(f"{cfg_path}: {arch} is a {arch_task!r} model, not {task!r}")
    files = weight_files(src)
    state = load_state(files)
    keymap = KeyMap(heads=(HeadSlot("weight", ("classifier.weight",)), HeadSlot("bias", ("classifier.bias",), required=False)),
                    pooler=task == "sentiment", prefixes=(prefix,))
    try:
        layers = int(cfg["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        raise ImportError_(f"{cfg_path}: num_hidden_layers is missing or not a number") from None
    mapped = map_keys(state, keymap, files[0], layers=layers)
    bcfg = bert_config_from(cfg, mapped, cfg_path, ernie=prefix == "ernie.")
    encoder = build_encoder(bcfg, mapped, files[0])
    n = int(mapped.head["weight"].shape[0])
    found = labels_from_map(cfg["id2label"], f"{cfg_path} id2label", True) if isinstance(cfg.get("id2label"), dict) else None
    names = apply_user_labels(found, labels, n, f"{cfg_path} id2label")
    tok, specials, copy, tok_read = wordpiece(src)
    config: dict = {"task": task, "max_positions": max_positions(bcfg.max_position_embeddings), "tokenizer": tok,
                    "specials": specials}
    if task == "ner":
        runtime_labels, scheme = ner_scheme(names, f"{cfg_path} id2label" if labels is None else "--labels")
        config.update(labels=runtime_labels, scheme=scheme)
        if runtime_labels != names:
            config["source_labels"] = names
        module = TokenScores(encoder, mapped.head["weight"], mapped.head.get("bias"))
    else:
        mapped_labels, source = sentiment_labels(names)
        config["labels"] = mapped_labels
        if source:
            config["source_labels"] = source
        module = SequenceScores(encoder, mapped.head["weight"], mapped.head.get("bias"))
    module.eval()
    try:
        ref = getattr(transformers, arch).from_pretrained(str(src), local_files_only=True, dtype=torch.float32,
                                                          attn_implementation="eager")
    except Exception as e:  # noqa: BLE001 - the reference must load, or the check cannot run: name the folder
        raise ImportError_(f"{src}: transformers cannot load {arch} from the folder: {type(e).__name__}: {e}") from None
    ref.eval()
    names_in, out, axes = io_spec(task)
    return Converted(
        module=module, reference=ClassifierReference(ref), input_names=names_in, dynamic_axes=axes,
        dummy_inputs=dummy_inputs(specials, bcfg.vocab_size), config=config, files=copy,
        num_heads=bcfg.num_attention_heads, hidden=bcfg.hidden_size, output_name=out,
        ref_tokenizer=reference_tokenizer(src), source_files=[cfg_path, *files, *tok_read],
        consumed=mapped.consumed, ignored=mapped.ignored,
    )


FORMAT = register(Format(name="hf", tasks=("ner", "sentiment"), sniff=sniff, convert=convert))
