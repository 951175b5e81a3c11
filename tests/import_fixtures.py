"""Tiny checkpoints in the layouts ``zhie import`` reads, built with the real classes and exact key names.

Hugging Face folders are written by ``save_pretrained`` of the transformers classes; ModelScope folders are
``torch.save``d state dicts with exactly the keys the original classes hold, beside their configuration.json
and config.json (../shared/docs/checkpoint-layouts.md sections 1 and 3). Weights are random, with heads
scaled up so that decoding finds entities of several types.

``FIXTURES`` maps every registered format name to a builder; tests/test_import_hf.py fails when a format is
registered without one.
"""

from __future__ import annotations

import json
from pathlib import Path

CJK = ("张三李四王五北京上海浙江省温岭市华为公司银行分行的服务很好不同意说在买了一部花元年月日今天访问餐厅太差菜也凉再来"
       "质量物流快五星评和都错球星姚明出生于身高米测试中国人民大学小红书我想工作天文")
LATIN = ["ip", "##hone", "##ad", "apple", "mac", "##book", "pro", "ceo", "nba", "yao", "ming", "test", "caf", "##e", "na",
         "##ive", "a", "b", "c", "##b", "##c", "x", "1", "2", "3", "5", "7", "9", "15", "##0", "##1", "##2", "##3", "##5",
         "##6", "##9", "20", "##23", "799", "##9"]
PUNCT = list("，。：“”！（）,.:!()～、；？")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocab() -> list[str]:
    seen, out = set(), []
    for t in SPECIALS + list(dict.fromkeys(CJK)) + LATIN + PUNCT:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def write_tokenizer(d: Path, lowercase: bool = True) -> None:
    """vocab.txt, then tokenizer_config.json as transformers' BertTokenizer saves it."""
    from transformers import BertTokenizer

    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(vocab()) + "\n", encoding="utf-8")
    BertTokenizer.from_pretrained(str(d), do_lower_case=lowercase).save_pretrained(str(d))


def small_config(cls_name: str = "BertConfig", **kw):
    import transformers

    base = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=len(vocab()),
                max_position_embeddings=512)
    return getattr(transformers, cls_name)(**{**base, **kw})


def _scale_head(linear, seed: int, scale: float = 3.0) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=g) * scale / linear.weight.shape[1] ** 0.5)
        linear.bias.copy_(torch.randn(linear.bias.shape, generator=g) * 0.5)


def _id2label(labels):
    return {i: lab for i, lab in enumerate(labels)}, {lab: i for i, lab in enumerate(labels)}


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
# UER's CLUENER style: lowercase types, BIOES-like prefixes, [PAD] appended last
CLUENER = ["O", "B-address", "I-address", "E-address", "S-address", "B-name", "I-name", "E-name", "S-name",
           "B-company", "I-company", "E-company", "S-company", "[PAD]"]
BMES = ["O", "B-PER", "M-PER", "E-PER", "S-PER", "B-LOC", "M-LOC", "E-LOC", "S-LOC"]


def hf_token_classifier(d: Path, labels=BIO, arch: str = "BertForTokenClassification", seed: int = 1) -> Path:
    import torch
    import transformers

    torch.manual_seed(seed)
    id2label, label2id = _id2label(labels)
    cfg_cls = "ErnieConfig" if arch.startswith("Ernie") else "BertConfig"
    extra = {"use_task_id": True} if cfg_cls == "ErnieConfig" else {}
    model = getattr(transformers, arch)(small_config(cfg_cls, id2label=id2label, label2id=label2id, **extra))
    _scale_head(model.classifier, seed)
    if cfg_cls == "ErnieConfig":  # task-type rows that matter: type 0 must be the one baked in
        with torch.no_grad():
            model.ernie.embeddings.task_type_embeddings.weight.normal_(0, 0.5)
    model.save_pretrained(str(d))
    write_tokenizer(d)
    return d


def hf_sequence_classifier(d: Path, labels=("负面", "正面"), arch: str = "BertForSequenceClassification", seed: int = 2) -> Path:
    import torch
    import transformers

    torch.manual_seed(seed)
    id2label, label2id = _id2label(list(labels))
    cfg_cls = "ErnieConfig" if arch.startswith("Ernie") else "BertConfig"
    model = getattr(transformers, arch)(small_config(cfg_cls, id2label=id2label, label2id=label2id))
    _scale_head(model.classifier, seed, 2.0)
    model.save_pretrained(str(d))
    write_tokenizer(d)
    return d


def _encoder_state(seed: int, pooler: bool = True, gamma_beta: bool = False) -> tuple[dict, dict]:
    """(state of an HF BertModel as AutoModel builds it, its config dict)."""
    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    cfg = small_config()
    bert = BertModel(cfg, add_pooling_layer=pooler)
    sd = bert.state_dict()
    if gamma_beta:  # TF-era LayerNorm names, renamed by ModelScope on load
        sd = {(k[:-6] + "gamma" if k.endswith("LayerNorm.weight") else k[:-4] + "beta" if k.endswith("LayerNorm.bias") else k): v
              for k, v in sd.items()}
    return sd, cfg.to_dict()


def _head_tensors(n: int, hidden: int, seed: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "linear.weight": torch.randn(n, hidden, generator=g) * 3.0 / hidden ** 0.5,
        "linear.bias": torch.randn(n, generator=g) * 0.5,
        "crf.start_transitions": torch.randn(n, generator=g),
        "crf.end_transitions": torch.randn(n, generator=g),
        "crf.transitions": torch.randn(n, n, generator=g),
    }


def modelscope_raner(d: Path, labels=BIO, head_prefix: bool = False, gamma_beta: bool = False, seed: int = 3,
                     label_place: str = "config", split_words: bool = False) -> Path:
    """The legacy TransformerCRF layout (encoder. / linear. / crf.) or, with ``head_prefix``, a current
    ModelForTokenClassificationWithCRF save (head.linear. / head.crf.)."""
    import torch

    d.mkdir(parents=True, exist_ok=True)
    enc, cfg = _encoder_state(seed, pooler=True, gamma_beta=gamma_beta)
    state = {"encoder." + k: v for k, v in enc.items()}
    for k, v in _head_tensors(len(labels), 32, seed).items():
        state[("head." + k) if head_prefix else k] = v
    torch.save(state, d / "pytorch_model.bin")
    id2label, label2id = _id2label(list(labels))
    conf = {"framework": "pytorch", "task": "named-entity-recognition", "model": {"type": "transformer-crf"},
            "pipeline": {"type": "named-entity-recognition"},
            "preprocessor": {"type": "sequence-labeling-tokenizer", **({"is_split_into_words": True} if split_words else {})}}
    cfg = {**cfg, "model_type": "bert"}
    if label_place == "config":
        cfg.update(id2label={str(i): lab for i, lab in id2label.items()}, label2id=label2id)
    elif label_place == "label_mapping":
        (d / "label_mapping.json").write_text(json.dumps(label2id, ensure_ascii=False), encoding="utf-8")
    elif label_place == "configuration":
        conf["model"]["id2label"] = {str(i): lab for i, lab in id2label.items()}
    (d / "configuration.json").write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    (d / "config.json").write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
    write_tokenizer(d)
    return d


def adaseq_raner(d: Path, labels=CLUENER[:-1], seed: int = 4) -> Path:
    """AdaSeq's SequenceLabelingModel: embedder.transformer_model.* + linear + crf, labels in configuration.json."""
    import torch

    d.mkdir(parents=True, exist_ok=True)
    enc, cfg = _encoder_state(seed, pooler=False)
    state = {"embedder.transformer_model." + k: v for k, v in enc.items()}
    state.update(_head_tensors(len(labels), 32, seed))
    torch.save(state, d / "pytorch_model.bin")
    id2label, label2id = _id2label(list(labels))
    conf = {"framework": "pytorch", "task": "named-entity-recognition", "plugins": ["adaseq"],
            "model": {"type": "sequence-labeling-model", "embedder": {"model_name_or_path": "bert"},
                      "id_to_label": {str(i): lab for i, lab in id2label.items()}, "use_crf": True},
            "pipeline": {"type": "sequence-labeling-pipeline"},
            "preprocessor": {"type": "sequence-labeling-preprocessor", "label_to_id": label2id}}
    (d / "configuration.json").write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    (d / "config.json").write_text(json.dumps({**cfg, "model_type": "bert"}), encoding="utf-8")
    write_tokenizer(d)
    return d


def modelscope_structbert(d: Path, labels=("负面", "正面"), head_prefix: bool = False, seed: int = 5) -> Path:
    """SbertForSequenceClassification as saved: bert.* (with pooler) + classifier.*, config.json model_type
    structbert (with StructBERT's own training-only fields)."""
    import torch

    d.mkdir(parents=True, exist_ok=True)
    enc, cfg = _encoder_state(seed, pooler=True)
    state = {"bert." + k: v for k, v in enc.items()}
    g = torch.Generator().manual_seed(seed)
    pre = "head." if head_prefix else ""
    state[pre + "classifier.weight"] = torch.randn(len(labels), 32, generator=g) * 2.0 / 32 ** 0.5
    state[pre + "classifier.bias"] = torch.randn(len(labels), generator=g) * 0.3
    torch.save(state, d / "pytorch_model.bin")
    id2label, label2id = _id2label(list(labels))
    keep = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "hidden_act",
            "max_position_embeddings", "type_vocab_size", "initializer_range", "hidden_dropout_prob",
            "attention_probs_dropout_prob")
    scfg = {k: cfg[k] for k in keep}
    scfg.update(model_type="structbert", adv_grad_factor=5e-5, adv_bias_factor=5e-5, smoothing=0.0, emb_size=32,
                id2label={str(i): lab for i, lab in id2label.items()}, label2id=label2id)
    conf = {"framework": "pytorch", "task": "text-classification", "model": {"type": "structbert"},
            "pipeline": {"type": "sentiment-classification"}, "preprocessor": {"type": "sen-cls-tokenizer"}}
    (d / "configuration.json").write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    (d / "config.json").write_text(json.dumps(scfg, ensure_ascii=False), encoding="utf-8")
    write_tokenizer(d)
    return d


def paddle_uie(d: Path) -> Path:
    """PaddleNLP UIE in uie_pytorch's layout: the UIE tests' own builder (tests/test_import_uie.py)."""
    from test_import_uie import write_uie_pytorch

    write_uie_pytorch(d)
    return d


# one builder per registered format: (builder, task) -- the coverage test reads this
FIXTURES = {
    "hf": (hf_token_classifier, "ner"),
    "modelscope": (modelscope_raner, "ner"),
    "paddle-uie": (paddle_uie, "extract"),
}
