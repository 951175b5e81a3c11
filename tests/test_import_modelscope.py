"""zhie import of ModelScope checkpoints (RaNER transformer-crf, AdaSeq sequence-labeling-model, StructBERT
sentiment) from torch.save'd state dicts with exactly the original keys: float32 import served through
zhie's task classes answers as the original architecture (rebuilt here from the checkpoint's own keys)
does; the CRF's own scores reach zhie's decoder; bad folders give clear errors naming the file or key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import import_fixtures as F  # noqa: E402

from zhie.convert import parity  # noqa: E402
from zhie.models.formats import ImportError_  # noqa: E402
from zhie.convert.importer import import_model  # noqa: E402

MIXED = [
    "2023年5月，张三在北京的华为公司买了一部iPhone 15 Pro，花了7999元。",
    "李四说：“ＡＢＣ银行１２３号分行的服务😀很好”，王五不同意。",
    "浙江省温岭市的café naïve测试：Apple公司CEO今天访问上海。",
    "质量很好，物流也快👍，五星好评！iPad和MacBook都不错。",
]


def quiet(*_):
    pass


def original_emissions(src: Path, base: str):
    """TransformerCRF as the legacy class holds it: ``encoder`` (AutoModel -> BertModel from config.json),
    ``linear``, ``crf``; head keys with or without the current ``head.`` prefix."""
    from transformers import BertConfig, BertModel

    state = torch.load(src / "pytorch_model.bin", map_location="cpu")
    state = {(k[5:] if k.startswith("head.") else k): v for k, v in state.items()}
    state = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v for k, v in state.items()}
    cfg = json.loads((src / "config.json").read_text())
    bert = BertModel(BertConfig(**{k: v for k, v in cfg.items() if k != "model_type"}),
                     add_pooling_layer=any(k.startswith(base + "pooler.") for k in state))
    bert.load_state_dict({k[len(base):]: v for k, v in state.items() if k.startswith(base)})
    bert.eval()
    crf = (state["crf.start_transitions"], state["crf.end_transitions"], state["crf.transitions"])

    def run(ids):
        with torch.no_grad():
            h = bert(input_ids=torch.tensor([ids])).last_hidden_state[0]
            return (h @ state["linear.weight"].T + state["linear.bias"]).numpy()

    return run, crf


def original_entities(src: Path, texts, labels, scheme, base="encoder.", split="bert"):
    from transformers import BertTokenizer

    run, crf = original_emissions(src, base)
    tok = BertTokenizer.from_pretrained(str(src))
    out = []
    for t in texts:
        enc = parity.reference_encode(tok, t, split)
        em = run([tok.cls_token_id, *enc.ids.tolist(), tok.sep_token_id])[1:-1]
        out.append(set(parity.decode_ner(em, enc, labels, scheme, crf)))
    return out


def served(folder: Path, texts):
    from zhie.tasks.ner import NerTagger

    res = NerTagger.load(str(folder)).predict(texts)
    for t, ents in zip(texts, res):
        assert all(t[e.start : e.end] == e.text for e in ents)
    return [{(e.type, e.start, e.end) for e in ents} for ents in res]


@pytest.fixture(scope="module")
def raner(tmp_path_factory):
    d = tmp_path_factory.mktemp("raner")
    src = F.modelscope_raner(d / "src")
    cfg = import_model(src, "ner", d / "out", precision="fp32", log=quiet)
    return src, d / "out", cfg


def test_raner_crf_scores_reach_the_decoder(raner):
    src, out, cfg = raner
    state = torch.load(src / "pytorch_model.bin")
    assert cfg["source"]["format"] == "modelscope" and cfg["labels"] == F.BIO and cfg["scheme"] == "bio"
    # transitions[from][to], as CRF._compute_score reads them; the original decodes with its own scores only
    assert cfg["crf"]["transitions"] == state["crf.transitions"].tolist()
    assert cfg["crf"]["start"] == state["crf.start_transitions"].tolist() and cfg["constrain"] is False
    assert set(cfg["source"]["files"]) == {"configuration.json", "config.json", "pytorch_model.bin", "vocab.txt",
                                           "tokenizer_config.json"}
    f32 = cfg["check"]["float32"]
    assert f32["ok"] and f32["decoded"]["runtime"]["entity_f1"] == 1.0 and f32["max_logit_diff"] < 1e-4
    ref = original_entities(src, MIXED, F.BIO, "bio")
    assert sum(map(len, ref)) >= 8
    assert served(out, MIXED) == ref


def test_current_layout_head_prefix_gamma_beta_label_mapping(tmp_path):
    """A current ModelScope save (head.linear / head.crf), TF-era gamma/beta, and label_mapping.json, which
    wins over config.json's id2label (parse_label_mapping's order)."""
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    src = F.modelscope_raner(tmp_path / "src", labels=labels, head_prefix=True, gamma_beta=True, seed=12,
                             label_place="label_mapping")
    cfg_path = src / "config.json"
    c = json.loads(cfg_path.read_text())
    c["id2label"] = {str(i): lab for i, lab in enumerate(F.BIO)}  # a different order: must lose
    cfg_path.write_text(json.dumps(c))
    cfg = import_model(src, "ner", tmp_path / "out", precision="fp32", log=quiet)
    assert cfg["labels"] == labels and "label_mapping.json" in cfg["source"]["files"]
    assert served(tmp_path / "out", MIXED) == original_entities(src, MIXED, labels, "bio")


def test_labels_in_configuration_json(tmp_path):
    src = F.modelscope_raner(tmp_path / "src", labels=F.BMES, seed=13, label_place="configuration")
    cfg = import_model(src, "ner", tmp_path / "out", precision="fp32", log=quiet)
    assert cfg["source_labels"] == F.BMES and cfg["scheme"] == "bioes"
    assert served(tmp_path / "out", MIXED) == original_entities(src, MIXED, cfg["labels"], "bioes")


def test_adaseq_layout_int8_reported(tmp_path):
    labels = F.CLUENER[:-1]
    src = F.adaseq_raner(tmp_path / "src", labels=labels)
    cfg = import_model(src, "ner", tmp_path / "out", log=quiet)
    assert cfg["labels"] == labels and cfg["scheme"] == "bioes" and cfg["constrain"] is False
    assert cfg["check"]["float32"]["decoded"]["runtime"]["entity_f1"] == 1.0
    i8 = cfg["check"]["int8"]
    assert i8["precision"] == "int8" and 0.0 <= i8["decoded"]["runtime"]["entity_f1"] <= 1.0
    # what INT8 changes is reported, measured against the original's decoding
    ref = original_entities(src, MIXED, labels, "bioes", base="embedder.transformer_model.")
    got = served(tmp_path / "out", MIXED)
    assert parity._f1(ref, got) == pytest.approx(i8["decoded"]["runtime"]["entity_f1"], abs=0.2)


def test_split_into_words_tokenisation(tmp_path):
    """preprocessor.is_split_into_words: every character encoded alone (config tokenizer split 'chars')."""
    from zhie.models.formats import modelscope

    src = F.modelscope_raner(tmp_path / "src", seed=14, split_words=True)
    conv = modelscope.convert(src, "ner")
    assert conv.config["tokenizer"]["split"] == "chars"
    enc = parity.reference_encode(conv.ref_tokenizer, "买iPhone", "chars")
    assert enc.word_start.tolist() == [True] * 7 and enc.offsets.tolist()[1] == [1, 2]  # each character its own word


def test_split_into_words_import(tmp_path):  # a space alone is one [UNK], as ModelScope's _tokenize_text_by_words has it
    src = F.modelscope_raner(tmp_path / "src", seed=14, split_words=True)
    cfg = import_model(src, "ner", tmp_path / "out", precision="fp32", log=quiet)
    assert served(tmp_path / "out", MIXED) == original_entities(src, MIXED, cfg["labels"], "bio", split="chars")


def test_structbert_sentiment(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from zhie.tasks.sentiment import SentimentClassifier

    src = F.modelscope_structbert(tmp_path / "src", head_prefix=True)
    cfg = import_model(src, "sentiment", tmp_path / "out", precision="fp32", log=quiet)
    assert cfg["labels"] == ["negative", "positive"] and cfg["source_labels"] == ["负面", "正面"]
    # SbertForSequenceClassification = BERT (bert.*, pooler) + classifier on the pooled [CLS]
    fields = json.loads((src / "config.json").read_text())
    model = BertForSequenceClassification(BertConfig(**{k: v for k, v in fields.items() if k != "model_type"})).eval()
    state = {k.removeprefix("head."): v for k, v in torch.load(src / "pytorch_model.bin").items()}
    model.load_state_dict(state)
    tok = BertTokenizer.from_pretrained(str(src))
    clf = SentimentClassifier.load(str(tmp_path / "out"))
    for t, r in zip(MIXED, clf.predict(MIXED)):
        with torch.no_grad():
            p = torch.softmax(model(**tok(t, return_tensors="pt")).logits[0], -1).tolist()
        assert abs(r.scores["negative"] - p[0]) < 1e-3 and abs(r.scores["positive"] - p[1]) < 1e-3


def test_structbert_int8_reported(tmp_path):
    src = F.modelscope_structbert(tmp_path / "src", labels=("消极", "中性", "积极"), seed=15)
    cfg = import_model(src, "sentiment", tmp_path / "out", log=quiet)
    assert cfg["labels"] == ["negative", "neutral", "positive"]
    i8 = cfg["check"]["int8"]["decoded"]
    assert 0 <= i8["runtime"]["label_agreement"] <= 1 and i8["runtime"]["max_prob_diff"] < 0.5


@pytest.fixture
def raner_copy(raner, tmp_path):
    src, _, _ = raner
    d = tmp_path / "src"
    shutil.copytree(src, d)
    return d


def test_raner_missing_crf_key(raner_copy, tmp_path):
    state = torch.load(raner_copy / "pytorch_model.bin")
    del state["crf.transitions"]
    torch.save(state, raner_copy / "pytorch_model.bin")
    with pytest.raises(ImportError_, match=r"pytorch_model\.bin: 1 required key\(s\) missing: crf\.transitions"):
        import_model(raner_copy, "ner", tmp_path / "out", log=quiet)


def test_raner_label_count_and_extra_keys(raner_copy, tmp_path):
    c = json.loads((raner_copy / "config.json").read_text())
    c["id2label"] = {"0": "O", "1": "B-PER", "2": "I-PER"}
    del c["label2id"]  # read before id2label (parse_label_mapping's order)
    (raner_copy / "config.json").write_text(json.dumps(c))
    with pytest.raises(ImportError_, match=r"config\.json id2label: 3 labels but the model's head has 7"):
        import_model(raner_copy, "ner", tmp_path / "o1", log=quiet)
    state = torch.load(raner_copy / "pytorch_model.bin")
    state["encoder.encoder.layer.0.attention.self.relative_key.weight"] = torch.zeros(2)
    torch.save(state, raner_copy / "pytorch_model.bin")
    with pytest.raises(ImportError_, match=r"'encoder\.encoder\.layer\.0\.attention\.self\.relative_key\.weight'"):
        import_model(raner_copy, "ner", tmp_path / "o2", log=quiet)


def test_missing_config_and_unknown_type(raner_copy, tmp_path):
    (raner_copy / "config.json").unlink()
    with pytest.raises(ImportError_, match=r"config\.json is missing"):
        import_model(raner_copy, "ner", tmp_path / "o1", log=quiet)
    conf = json.loads((raner_copy / "configuration.json").read_text())
    conf["model"]["type"] = "lstm-crf"
    (raner_copy / "configuration.json").write_text(json.dumps(conf))
    with pytest.raises(ImportError_, match=r"modelscope: configuration\.json task 'named-entity-recognition' / model\.type 'lstm-crf'"):
        import_model(raner_copy, "ner", tmp_path / "o2", log=quiet)
    (raner_copy / "configuration.json").write_text("{not json")
    with pytest.raises(ImportError_, match=r"configuration\.json is not readable JSON"):
        import_model(raner_copy, "ner", tmp_path / "o3", fmt="modelscope", log=quiet)
