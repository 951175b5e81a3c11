"""ModelScope checkpoints: RaNER (``transformer-crf``, and AdaSeq's ``sequence-labeling-model``), StructBERT
sentiment, SiameseUIE (``zhie.models.formats.siamese_uie``).

Reads ``configuration.json`` (``task``, ``model.type``, ``preprocessor``, label maps), ``config.json`` (the
encoder's sizes; ``model_type`` bert or structbert), ``pytorch_model.bin``, ``vocab.txt`` and
``tokenizer_config.json``; ``label_mapping.json`` when present. ../shared/docs/checkpoint-layouts.md
sections 1 and 3 give the source of each fact. The parity references rebuild the original classes
(ModelScope itself is not a dependency): the same module tree and attribute names, loaded strictly from
the checkpoint's own keys, independently of the key map the export uses.
"""

from __future__ import annotations

from pathlib import Path

from . import Converted, Format, ImportError_, Match, load_state, read_json, register, weight_files
from .bert_keys import HeadSlot, KeyMap, bert_config_from, build_encoder, map_keys
from .common import (apply_user_labels, labels_from_map, max_positions, ner_scheme, reference_tokenizer, sentiment_labels,
                     wordpiece)

CRF_TYPES = ("transformer-crf", "tcrf")  # Models.tcrf (legacy and current ModelScope)
ADASEQ_TYPES = ("sequence-labeling-model",)
SENTIMENT_TASKS = ("sentiment-classification", "text-classification", "sentence-similarity")
SIAMESE = ("siamese-uie",)


def _kind(src: Path) -> tuple[str | None, str | None, list[str]]:
    """(kind, task, reasons): kind is raner, adaseq, structbert, siamese or None."""
    conf_path = src / "configuration.json"
    if not conf_path.is_file():
        return None, None, ["no configuration.json"]
    try:
        conf = read_json(conf_path)
    except ImportError_ as e:
        return None, None, [str(e)]
    model = conf.get("model") if isinstance(conf.get("model"), dict) else {}
    task, mtype = conf.get("task"), model.get("type")
    if task in SIAMESE or mtype in SIAMESE:
        return "siamese", "extract", [f"configuration.json task {task!r}"]
    if mtype in CRF_TYPES:
        return "raner", "ner", [f"configuration.json model.type {mtype!r}"]
    if mtype in ADASEQ_TYPES:
        return "adaseq", "ner", [f"configuration.json model.type {mtype!r} (AdaSeq)"]
    mt = None
    if (src / "config.json").is_file():
        try:
            mt = read_json(src / "config.json").get("model_type")
        except ImportError_:
            pass
    if mt == "structbert" and (task in SENTIMENT_TASKS or mtype in ("structbert", "text-classification")):
        return "structbert", "sentiment", [f"configuration.json task {task!r}, config.json model_type 'structbert'"]
    return None, None, [f"configuration.json task {task!r} / model.type {mtype!r} (config.json model_type {mt!r}) is "
                        "none of RaNER transformer-crf, AdaSeq sequence-labeling-model, StructBERT sentiment, siamese-uie"]


def sniff(src: Path) -> Match:
    kind, task, reasons = _kind(src)
    return Match("modelscope", task, reasons, ok=kind is not None)


# -- labels -----------------------------------------------------------------------------------------
def label_mapping(src: Path, conf: dict, cfg: dict, adaseq: bool = False) -> tuple[list[str] | None, str]:
    """The label list in ModelScope's lookup order (``modelscope/utils/hub.py::parse_label_mapping``):
    label_mapping.json, then configuration.json model.label2id / model.id2label / preprocessor.label2id /
    preprocessor.id2label, then config.json label2id / id2label. AdaSeq's own model.id_to_label /
    preprocessor.label_to_id come first for its models. Returns (labels or None, where they were read)."""
    if (src / "label_mapping.json").is_file():
        m = read_json(src / "label_mapping.json")
        return labels_from_map(m, str(src / "label_mapping.json"), False), str(src / "label_mapping.json")
    model = conf.get("model") if isinstance(conf.get("model"), dict) else {}
    pre = conf.get("preprocessor") if isinstance(conf.get("preprocessor"), dict) else {}
    conf_path = src / "configuration.json"
    order = [(model, "model", "label2id", False), (model, "model", "id2label", True),
             (pre, "preprocessor", "label2id", False), (pre, "preprocessor", "id2label", True)]
    if adaseq:
        order = [(model, "model", "id_to_label", True), (pre, "preprocessor", "label_to_id", False)] + order
    for block, name, key, inverse in order:
        if isinstance(block.get(key), dict) and block[key]:
            where = f"{conf_path} {name}.{key}"
            return labels_from_map(block[key], where, inverse), where
    for key, inverse in (("label2id", False), ("id2label", True)):
        if isinstance(cfg.get(key), dict) and cfg[key]:
            where = f"{src / 'config.json'} {key}"
            return labels_from_map(cfg[key], where, inverse), where
    return None, f"{src} (label_mapping.json, configuration.json, config.json)"


def _split_into_words(conf: dict, src: Path) -> bool:
    """ModelScope's is_split_into_words: the preprocessor block (its 'val' part at inference), then the
    tokenizer's init kwargs."""
    pre = conf.get("preprocessor") if isinstance(conf.get("preprocessor"), dict) else {}
    for block in (pre.get("val") if isinstance(pre.get("val"), dict) else {}, pre):
        if "is_split_into_words" in block:
            return bool(block["is_split_into_words"])
    if (src / "tokenizer_config.json").is_file():
        return bool(read_json(src / "tokenizer_config.json").get("is_split_into_words", False))
    return False


# -- the references: the original module trees, loaded from the checkpoint's own keys --------------------
def _reference_state(state: dict, head_names: tuple[str, ...]) -> dict:
    """The state dict as ModelScope's loader hands it to the legacy class: gamma/beta renamed, the current
    class's ``head.`` prefix taken off its head keys, the old position_ids buffer left out."""
    out = {}
    for k, v in state.items():
        if k.endswith("position_ids"):
            continue
        if k.endswith(".gamma"):
            k = k[:-5] + "weight"
        elif k.endswith(".beta"):
            k = k[:-4] + "bias"
        for h in head_names:
            if k.startswith("head." + h + "."):
                k = k[len("head."):]
        out[k] = v
    return out


def _hf_config(cfg: dict, **extra):
    from transformers import BertConfig

    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures", "transformers_version")}
    fields.setdefault("layer_norm_eps", 1e-12)
    c = BertConfig(**{**fields, **extra})
    c._attn_implementation = "eager"
    return c


def _load_reference(module, state: dict, file: Path):
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ImportError_(f"{file}: the checkpoint does not load into the original architecture: "
                           f"{' '.join(str(e).splitlines()[:3])}") from None
    return module.eval()


def _crf_reference(n: int):
    import torch
    from torch import nn

    class CRF(nn.Module):  # modelscope/models/nlp/heads/crf_head.py::CRF (parameters only; decoding is in parity)
        def __init__(self, num_tags: int):
            super().__init__()
            self.start_transitions = nn.Parameter(torch.empty(num_tags))
            self.end_transitions = nn.Parameter(torch.empty(num_tags))
            self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))

    return CRF(n)


def raner_reference(cfg: dict, state: dict, n: int, file: Path, adaseq: bool):
    """TransformerCRF (``encoder`` = AutoModel, ``linear``, ``crf``) or AdaSeq's SequenceLabelingModel
    (``embedder.transformer_model``, ``linear``, ``crf``): forward gives the emissions."""
    from torch import nn
    from transformers import BertModel

    sd = _reference_state(state, ("linear", "crf"))
    base = "embedder.transformer_model." if adaseq else "encoder."
    pooler = any(k.startswith(base + "pooler.") for k in sd)
    has_crf = any(k.startswith("crf.") for k in sd)

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            bert = BertModel(_hf_config(cfg), add_pooling_layer=pooler)
            if adaseq:
                self.embedder = nn.Module()
                self.embedder.transformer_model = bert
            else:
                self.encoder = bert
            self.linear = nn.Linear(bert.config.hidden_size, n)
            if has_crf:
                self.crf = _crf_reference(n)
            self.bert = [bert]  # not a submodule: the same encoder, reachable without the family's path

        def forward(self, input_ids, attention_mask):
            h = self.bert[0](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.linear(h)

    return _load_reference(Reference(), sd, file)


def structbert_reference(cfg: dict, state: dict, n: int, prefix: str, file: Path):
    """SbertForSequenceClassification: ``bert`` (SbertModel = BERT), dropout, ``classifier`` on the pooler."""
    from transformers import BertForSequenceClassification

    sd = {}
    for k, v in _reference_state(state, ("classifier",)).items():
        sd[("bert." + k[len(prefix):]) if k.startswith(prefix) else k] = v
    model = BertForSequenceClassification(_hf_config(cfg, num_labels=n))
    return _load_reference(model, sd, file)


class _Logits:
    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


# -- convert --------------------------------------------------------------------------------------------
def convert(src: Path, task: str, labels: list[str] | None = None) -> Converted:
    kind, found_task, reasons = _kind(src)
    if kind is None:
        raise ImportError_(f"{src}: not a ModelScope checkpoint zhie reads: {'; '.join(reasons)}")
    if found_task != task:
        raise ImportError_(f"{src / 'configuration.json'}: {'; '.join(reasons)} is a {found_task!r} model, not {task!r}")
    if kind == "siamese":
        from .siamese_uie import convert_siamese  # written beside the Paddle UIE importer

        return convert_siamese(src, labels)
    import torch  # noqa: F401  (the train extra; the importer checks for it first)

    from .heads import SequenceScores, TokenScores, dummy_inputs, io_spec

    conf_path, cfg_path = src / "configuration.json", src / "config.json"
    conf = read_json(conf_path)
    if not cfg_path.is_file():
        raise ImportError_(f"{cfg_path} is missing: it gives the encoder's sizes (num_attention_heads, layers)")
    cfg = read_json(cfg_path)
    files = weight_files(src)
    state = load_state(files)
    try:
        layers = int(cfg["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        raise ImportError_(f"{cfg_path}: num_hidden_layers is missing or not a number") from None
    tok, specials, copy, tok_read = wordpiece(src, split="chars" if _split_into_words(conf, src) else "bert")
    config: dict = {"task": task, "tokenizer": tok, "specials": specials}
    ref_crf = None
    if kind in ("raner", "adaseq"):
        adaseq = kind == "adaseq"
        h = (lambda name: (name,)) if adaseq else (lambda name: (name, "head." + name))
        crf_required = not adaseq  # AdaSeq's use_crf=False models have no CRF
        keymap = KeyMap(heads=(
            HeadSlot("linear.weight", h("linear.weight")), HeadSlot("linear.bias", h("linear.bias"), required=False),
            HeadSlot("start", h("crf.start_transitions"), required=crf_required),
            HeadSlot("end", h("crf.end_transitions"), required=crf_required),
            HeadSlot("transitions", h("crf.transitions"), required=crf_required),
        ), pooler=False, prefixes=("embedder.transformer_model.",) if adaseq else ("encoder.",))
        mapped = map_keys(state, keymap, files[0], layers=layers)
        crf_parts = [k for k in ("start", "end", "transitions") if k in mapped.head]
        if crf_parts and len(crf_parts) != 3:
            raise ImportError_(f"{files[0]}: the CRF is incomplete (has only {crf_parts})")
        n = int(mapped.head["linear.weight"].shape[0])
        found, where = label_mapping(src, conf, cfg, adaseq=adaseq)
        names = apply_user_labels(found, labels, n, where)
        runtime_labels, scheme = ner_scheme(names, where if labels is None else "--labels")
        config.update(labels=runtime_labels, scheme=scheme)
        if runtime_labels != names:
            config["source_labels"] = names
        if crf_parts:
            trans = mapped.head["transitions"]
            if tuple(trans.shape) != (n, n) or tuple(mapped.head["start"].shape) != (n,) or tuple(mapped.head["end"].shape) != (n,):
                raise ImportError_(f"{files[0]}: CRF shapes {tuple(trans.shape)} / {tuple(mapped.head['start'].shape)} do not "
                                   f"match the {n} labels")
            config["crf"] = {"transitions": trans.tolist(), "start": mapped.head["start"].tolist(),
                             "end": mapped.head["end"].tolist()}  # transitions[from][to], as CRF._compute_score reads them
            config["constrain"] = False  # the original decodes with its own scores only
        bcfg = bert_config_from(cfg, mapped, cfg_path)
        module = TokenScores(build_encoder(bcfg, mapped, files[0]), mapped.head["linear.weight"], mapped.head.get("linear.bias"))
        ref_module = raner_reference(cfg, state, n, files[0], adaseq)
        reference = ref_module
        if crf_parts:
            c = ref_module.crf
            ref_crf = (c.start_transitions.detach(), c.end_transitions.detach(), c.transitions.detach())
    else:  # structbert sentiment
        base = str(cfg.get("base_model_prefix") or "bert") + "."
        keymap = KeyMap(heads=(HeadSlot("weight", ("classifier.weight", "head.classifier.weight")),
                               HeadSlot("bias", ("classifier.bias", "head.classifier.bias"), required=False)),
                        pooler=True, prefixes=(base,))
        mapped = map_keys(state, keymap, files[0], layers=layers)
        n = int(mapped.head["weight"].shape[0])
        found, where = label_mapping(src, conf, cfg)
        names = apply_user_labels(found, labels, n, where)
        mapped_labels, source = sentiment_labels(names)
        config["labels"] = mapped_labels
        if source:
            config["source_labels"] = source
        bcfg = bert_config_from(cfg, mapped, cfg_path)
        module = SequenceScores(build_encoder(bcfg, mapped, files[0]), mapped.head["weight"], mapped.head.get("bias"))
        reference = _Logits(structbert_reference(cfg, state, n, base, files[0]))
    module.eval()
    config["max_positions"] = max_positions(bcfg.max_position_embeddings)
    names_in, out, axes = io_spec(task)
    return Converted(
        module=module, reference=reference, input_names=names_in, dynamic_axes=axes,
        dummy_inputs=dummy_inputs(specials, bcfg.vocab_size), config=config, files=copy,
        num_heads=bcfg.num_attention_heads, hidden=bcfg.hidden_size, output_name=out,
        ref_tokenizer=reference_tokenizer(src), ref_crf=ref_crf,
        source_files=[conf_path, cfg_path, *files, *tok_read] + ([src / "label_mapping.json"] if (src / "label_mapping.json").is_file() else []),
        consumed=mapped.consumed, ignored=mapped.ignored,
    )


FORMAT = register(Format(name="modelscope", tasks=("ner", "sentiment", "extract"), sniff=sniff, convert=convert))
