"""zhie import of Hugging Face checkpoints (tiny models built with the real transformers classes): float32
import served through zhie's task classes answers as the original architecture does, INT8 agreement is
reported, bad input gives one clear error. Also the shared parts: parity's reference decoding, detection,
the CLI, and the coverage of every registered format by a fixture."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import import_fixtures as F  # noqa: E402

from zhie.convert import parity  # noqa: E402
from zhie.models.formats import REGISTRY, ImportError_, load_all  # noqa: E402
from zhie.convert.importer import import_model  # noqa: E402

MIXED = [
    "2023年5月，张三在北京的华为公司买了一部iPhone 15 Pro，花了7999元。",
    "李四说：“ＡＢＣ银行１２３号分行的服务😀很好”，王五不同意。",
    "NBA球星姚明（Yao Ming）出生于上海，测试café naïve。",
    "我想在apple工作1314151天～ iPad和MacBook都不错",
]


def quiet(*_):
    pass


def reference_entities(src: Path, texts, labels, scheme, crf=None, arch="BertForTokenClassification"):
    """The original architecture in torch on the original tokeniser, decoded by parity's rule-3 decoder."""
    import torch
    import transformers

    model = getattr(transformers, arch).from_pretrained(str(src)).eval()
    tok = transformers.BertTokenizer.from_pretrained(str(src))
    out = []
    for t in texts:
        enc = parity.reference_encode(tok, t, "bert")
        ids = torch.tensor([[tok.cls_token_id, *enc.ids.tolist(), tok.sep_token_id]])
        with torch.no_grad():
            em = model(input_ids=ids).logits[0, 1:-1].numpy()
        out.append(set(parity.decode_ner(em, enc, labels, scheme, crf)))
    return out


def served_entities(folder: Path, texts):
    from zhie.tasks.ner import NerTagger

    tagger = NerTagger.load(str(folder))
    res = tagger.predict(texts)
    for t, ents in zip(texts, res):
        for e in ents:
            assert t[e.start : e.end] == e.text  # offsets exact in the caller's string
    return [{(e.type, e.start, e.end) for e in ents} for ents in res]


@pytest.fixture(scope="module")
def hf_bio(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf")
    src = F.hf_token_classifier(d / "src")
    cfg = import_model(src, "ner", d / "out", precision="fp32", log=quiet)
    return src, d / "out", cfg


def test_bert_token_classifier_fp32_serves_the_original(hf_bio):
    src, out, cfg = hf_bio
    assert cfg["labels"] == F.BIO and cfg["scheme"] == "bio" and "crf" not in cfg
    assert cfg["tokenizer"]["kind"] == "wordpiece" and cfg["tokenizer"]["lowercase"] is True
    vocab = F.vocab()
    assert cfg["specials"] == {"cls": vocab.index("[CLS]"), "sep": vocab.index("[SEP]"), "pad": vocab.index("[PAD]"),
                               "unk": vocab.index("[UNK]")}
    assert cfg["max_positions"] == 512
    src_files = cfg["source"]["files"]
    assert set(src_files) == {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}
    assert cfg["source"]["format"] == "hf" and len(src_files["model.safetensors"]) == 64
    f32 = cfg["check"]["float32"]
    assert f32["ok"] and f32["token_ids_equal"] and f32["max_logit_diff"] < 1e-4
    assert f32["decoded"]["graph"]["entity_f1"] == 1.0 and f32["decoded"]["runtime"]["entity_f1"] == 1.0
    assert "int8" not in cfg["check"]
    on_disk = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert on_disk["check"] == cfg["check"] and sorted(p.name for p in out.iterdir()) == ["config.json", "model.onnx", "vocab.txt"]
    ref = reference_entities(src, MIXED, F.BIO, "bio")
    got = served_entities(out, MIXED)
    assert sum(map(len, ref)) >= 8  # the head finds entities of several kinds
    assert got == ref


def test_latin_words_are_one_entity_word(hf_bio):
    """A word split into pieces (iphone -> ip ##hone) is labelled by its first piece and spans all pieces."""
    src, out, _ = hf_bio
    from zhie.text.tokenize import load_tokenizer

    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    enc = load_tokenizer(cfg, out).encode("买iPhone")
    vocab = F.vocab()
    assert [vocab[i] for i in enc.ids] == ["买", "ip", "##hone"] and enc.word_start.tolist() == [True, True, False]
    assert enc.offsets.tolist() == [[0, 1], [1, 3], [3, 7]]
    for ents in served_entities(out, ["iPhone iPhone iPhone买iPhone"]):
        for _, s, e in ents:
            assert (s, e) != (1, 3)  # never a span ending inside a word


def test_cased_tokenizer_config_is_followed(tmp_path):
    """tokenizer_config.json do_lower_case false reaches the served tokeniser: same ids as the original's."""
    from zhie.models.formats import hf
    from zhie.text.tokenize import load_tokenizer

    src = F.hf_token_classifier(tmp_path / "src")
    F.write_tokenizer(src, lowercase=False)
    conv = hf.convert(src, "ner")
    assert conv.config["tokenizer"]["lowercase"] is False
    tok = load_tokenizer(conv.config, src)
    for t in MIXED:
        assert parity.reference_encode(conv.ref_tokenizer, t, "bert").ids.tolist() == tok.encode(t).ids.tolist()
    unk = F.vocab().index("[UNK]")
    assert tok.encode("iPhone").ids.tolist() == [unk] and tok.encode("iphone").ids.tolist() != [unk]


def test_uer_cluener_labels_with_pad_int8_reported(tmp_path):
    """UER's CLUENER layout: lowercase types, B/I/E/S, a trailing [PAD] label (outside); INT8 agreement reported."""
    src = F.hf_token_classifier(tmp_path / "src", labels=F.CLUENER, seed=7)
    cfg = import_model(src, "ner", tmp_path / "out", log=quiet)  # int8 is the default
    assert cfg["labels"] == F.CLUENER and cfg["scheme"] == "bioes"
    chk = cfg["check"]
    assert chk["float32"]["ok"] and chk["float32"]["decoded"]["runtime"]["entity_f1"] == 1.0
    i8 = chk["int8"]
    assert i8["precision"] == "int8" and np.isfinite(i8["max_logit_diff"]) and 0 <= i8["decoded"]["graph"]["entity_f1"] <= 1
    assert "INT8" in cfg["quantization"]
    ref = reference_entities(src, MIXED, F.CLUENER, "bioes")
    assert any(typ == "name" for ents in ref for typ, _, _ in ents) or sum(map(len, ref)) > 0
    assert all(t != "[PAD]" for ents in ref for t, _, _ in ents)


def test_ernie_bmes_task_type_baked_in(tmp_path):
    """ErnieForTokenClassification with task-type embeddings (0 inside the graph) and BMES labels (M- read as I-)."""
    src = F.hf_token_classifier(tmp_path / "src", labels=F.BMES, arch="ErnieForTokenClassification", seed=8)
    cfg = import_model(src, "ner", tmp_path / "out", precision="fp32", log=quiet)
    assert cfg["scheme"] == "bioes" and cfg["source_labels"] == F.BMES
    assert cfg["labels"] == [lab.replace("M-", "I-") for lab in F.BMES]
    import onnx

    g = onnx.load(str(tmp_path / "out" / "model.onnx"))
    assert [i.name for i in g.graph.input] == ["input_ids", "attention_mask"]
    assert cfg["check"]["float32"]["decoded"]["runtime"]["entity_f1"] == 1.0
    ref = reference_entities(src, MIXED, cfg["labels"], "bioes", arch="ErnieForTokenClassification")
    assert served_entities(tmp_path / "out", MIXED) == ref


def test_sequence_classifier_probabilities(tmp_path):
    import torch
    import transformers

    from zhie.tasks.sentiment import SentimentClassifier

    src = F.hf_sequence_classifier(tmp_path / "src", labels=("negative (stars 1, 2 and 3)", "positive (stars 4 and 5)"))
    cfg = import_model(src, "sentiment", tmp_path / "out", precision="fp32", log=quiet)
    assert cfg["labels"] == ["negative", "positive"]
    assert cfg["source_labels"] == ["negative (stars 1, 2 and 3)", "positive (stars 4 and 5)"]
    model = transformers.BertForSequenceClassification.from_pretrained(str(src)).eval()
    tok = transformers.BertTokenizer.from_pretrained(str(src))
    clf = SentimentClassifier.load(str(tmp_path / "out"))
    for text, r in zip(MIXED, clf.predict(MIXED)):
        with torch.no_grad():
            p = torch.softmax(model(**tok(text, return_tensors="pt")).logits[0], -1).numpy()
        assert abs(r.scores["negative"] - p[0]) < 1e-3 and abs(r.scores["positive"] - p[1]) < 1e-3
        assert r.label == ["negative", "positive"][int(p.argmax())]


def test_generic_labels_need_labels_flag(tmp_path):
    src = F.hf_token_classifier(tmp_path / "src", labels=[f"LABEL_{i}" for i in range(5)], seed=9)
    with pytest.raises(ImportError_, match=r"config\.json id2label.*--labels"):
        import_model(src, "ner", tmp_path / "out", precision="fp32", log=quiet)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ImportError_, match="--labels names 3 labels but the model's head has 5"):
        import_model(src, "ner", tmp_path / "out", labels=["O", "B-X", "I-X"], log=quiet)
    cfg = import_model(src, "ner", tmp_path / "out", precision="fp32", labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
                       log=quiet)
    assert cfg["labels"] == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"] and cfg["check"]["float32"]["ok"]


@pytest.mark.parametrize("labels,match", [
    (["O", "PER", "LOC"], r"label 'PER' .*unknown label scheme"),
    (["O", "X-PER", "B-PER"], r"label 'X-PER'"),
    (["B-PER", "I-PER"], r"no 'O' label"),
    (["O", "I-PER", "I-LOC"], r"type 'PER' has no B-"),
])
def test_bad_label_scheme(tmp_path, labels, match):
    src = F.hf_token_classifier(tmp_path / "src", labels=labels)
    with pytest.raises(ImportError_, match=match) as e:
        import_model(src, "ner", tmp_path / "out", log=quiet)
    assert "config.json id2label" in str(e.value)


def test_missing_and_broken_files(tmp_path, hf_bio):
    import shutil

    src, _, _ = hf_bio
    d = tmp_path / "src"
    shutil.copytree(src, d)
    (d / "vocab.txt").unlink()
    with pytest.raises(ImportError_, match=r"vocab\.txt is missing"):
        import_model(d, "ner", tmp_path / "o1", log=quiet)
    shutil.copyfile(src / "vocab.txt", d / "vocab.txt")
    (d / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ImportError_, match=r"model\.safetensors is not a readable checkpoint"):
        import_model(d, "ner", tmp_path / "o2", log=quiet)
    (d / "model.safetensors").unlink()
    with pytest.raises(ImportError_, match=r"no weights \(model\.safetensors or pytorch_model\.bin\)"):
        import_model(d, "ner", tmp_path / "o3", log=quiet)
    with pytest.raises(ImportError_, match="is not a folder"):
        import_model(tmp_path / "nowhere", "ner", tmp_path / "o4", log=quiet)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ImportError_, match="already exists and is not empty"):
        import_model(src, "ner", tmp_path / "full", log=quiet)
    with pytest.raises(ImportError_, match=r"holds a 'ner' model, not 'sentiment'"):
        import_model(src, "sentiment", tmp_path / "o5", fmt="hf", log=quiet)


def test_unknown_architecture_lists_candidates(tmp_path, hf_bio):
    import shutil

    src, _, _ = hf_bio
    d = tmp_path / "src"
    shutil.copytree(src, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["RobertaForTokenClassification"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ImportError_) as e:
        import_model(d, "ner", tmp_path / "out", log=quiet)
    msg = str(e.value)
    assert "no checkpoint format recognises" in msg and "'RobertaForTokenClassification' is not one of" in msg
    assert "modelscope: no configuration.json" in msg


def test_unmapped_and_missing_keys_are_named(tmp_path, hf_bio):
    import shutil

    from safetensors.torch import load_file, save_file

    src, _, _ = hf_bio
    d = tmp_path / "src"
    shutil.copytree(src, d)
    state = load_file(str(src / "model.safetensors"))
    extra = dict(state, **{"bert.encoder.layer.0.attention.self.rotary.weight": state["classifier.bias"].clone()})
    save_file(extra, str(d / "model.safetensors"))
    with pytest.raises(ImportError_, match=r"neither mapped nor dropped: 'bert\.encoder\.layer\.0\.attention\.self\.rotary\.weight'"):
        import_model(d, "ner", tmp_path / "o1", log=quiet)
    less = {k: v for k, v in state.items() if k != "bert.encoder.layer.1.output.dense.weight"}
    save_file(less, str(d / "model.safetensors"))
    with pytest.raises(ImportError_, match=r"required key\(s\) missing: bert\.encoder\.layer\.1\.output\.dense\.weight"):
        import_model(d, "ner", tmp_path / "o2", log=quiet)
    less = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    save_file(less, str(d / "model.safetensors"))
    with pytest.raises(ImportError_, match=r"classifier\.weight \(head slot weight\)"):
        import_model(d, "ner", tmp_path / "o3", log=quiet)
    dropped = dict(state, **{"cls.predictions.bias": state["classifier.bias"].clone()})  # an MLM head is dropped
    save_file(dropped, str(d / "model.safetensors"))
    from zhie.models.formats import hf

    conv = hf.convert(d, "ner")
    assert "cls.predictions.bias" in conv.ignored and "classifier.weight" in conv.consumed


def test_check_file(tmp_path, hf_bio):
    src, _, _ = hf_bio
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": 1}\n', encoding="utf-8")
    with pytest.raises(ImportError_, match=r"bad\.jsonl:2: expected"):
        import_model(src, "ner", tmp_path / "o1", check=bad, log=quiet)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "上海的ＡＢＣ公司CEO说：iPhone很好👍"}, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = import_model(src, "ner", tmp_path / "o2", check=good, precision="fp32", log=quiet)
    assert cfg["check"]["float32"]["texts"] == len(parity.BUILTIN_TEXTS) + 1


def test_parity_fails_on_a_broken_graph(hf_bio, tmp_path):
    """The check cannot pass on a graph that does not answer as the original: swap in another model's graph."""
    import shutil

    from zhie.models.formats import hf

    src, out, _ = hf_bio
    other = F.hf_token_classifier(tmp_path / "other", seed=11)
    conv = hf.convert(src, "ner")
    wrong = hf.convert(other, "ner")
    folder = tmp_path / "folder"
    shutil.copytree(out, folder)
    parity.check(conv, folder, strict=True)  # the right reference passes
    with pytest.raises(parity.ParityError, match="largest score difference"):
        parity.check(wrong, folder, strict=True)
    rep = parity.check(wrong, folder, strict=False)  # INT8-style: reported, not fatal (only gross breakage is)
    assert rep["max_logit_diff"] > 0.1 and rep["decoded"]["graph"]["entity_f1"] < 1.0


# -- the reference decoding itself -------------------------------------------------------------------
def _score(path, em, start, end, trans):
    s = start[path[0]] + end[path[-1]] + sum(em[t, k] for t, k in enumerate(path))
    return s + sum(trans[a, b] for a, b in zip(path, path[1:]))


def test_viterbi_is_the_best_path():
    import torch

    rng = np.random.default_rng(0)
    for n, k in [(1, 3), (4, 3), (5, 4)]:
        em, st, en, tr = rng.normal(size=(n, k)), rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k))
        best = max(itertools.product(range(k), repeat=n), key=lambda p: _score(p, em, st, en, tr))
        got = parity.viterbi(*(torch.tensor(x) for x in (em, st, en, tr)))
        assert tuple(got) == best


def test_scheme_transitions_and_chunks():
    labels = ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B", "[PAD]"]
    allowed, start, end = parity.allowed_transitions(labels, "bioes")
    ok = lambda a, b: bool(allowed[labels.index(a), labels.index(b)])  # noqa: E731
    assert ok("B-A", "I-A") and ok("B-A", "E-A") and not ok("B-A", "O") and not ok("B-A", "E-B")
    assert ok("E-A", "B-B") and ok("[PAD]", "S-A") and not ok("O", "I-A") and not ok("S-A", "E-A")
    assert not start[labels.index("I-A")] and not end[labels.index("B-A")] and end[labels.index("S-B")]
    bio = ["O", "B-A", "I-A"]
    a2, s2, _ = parity.allowed_transitions(bio, "bio")
    assert not s2[2] and not a2[0, 2] and a2[1, 2]
    # O closes an entity: ModelScope would merge B-X O I-X, zhie does not
    assert parity.chunk(["B-A", "O", "I-A"], "bio") == [("A", 0, 1), ("A", 2, 3)]
    assert parity.chunk(["B-A", "I-A", "B-A", "I-B"], "bio") == [("A", 0, 2), ("A", 2, 3), ("B", 3, 4)]
    assert parity.chunk(["B-A", "I-A", "E-A", "S-B", "E-A", "[PAD]"], "bioes") == [("A", 0, 3), ("B", 3, 4), ("A", 4, 5)]
    assert parity.chunk(["B-A", "I-A"], "bioes") == [("A", 0, 2)]


def test_decode_spans_cover_word_pieces():
    enc = parity._Enc([7, 8, 9, 10], [(0, 1), (1, 3), (3, 7), (7, 8)], [True, True, False, True])
    em = np.full((4, 3), -5.0)
    em[0, 1], em[1, 1], em[2, 0], em[3, 2] = 5, 5, 5, 5  # word 0: B-A, word 1 (2 pieces): B-A, word 2: I-A
    assert parity.decode_ner(em, enc, ["O", "B-A", "I-A"], "bio", None) == [("A", 0, 1), ("A", 1, 8)]


# -- detection, CLI, coverage -------------------------------------------------------------------------------
def test_every_registered_format_has_a_fixture(tmp_path):
    """Optimum's test_all_models_tested: a format registered without a tiny checkpoint fails here. Each
    fixture's own tests import it (tests/test_import_*.py); this one detects the cheap ones."""
    load_all()
    assert set(REGISTRY) <= set(F.FIXTURES), f"formats without a test fixture: {sorted(set(REGISTRY) - set(F.FIXTURES))}"
    from zhie.models.formats import detect

    for name in ("hf", "modelscope"):
        build, task = F.FIXTURES[name]
        fmt, match = detect(build(tmp_path / name), task)
        assert fmt.name == name and match.task == task


def test_cli_import_errors_are_one_line(tmp_path, capsys):
    from zhie.cli import main

    rc = main(["import", str(tmp_path / "missing"), "--task", "ner", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("zhie import: ") and err.count("\n") == 1 and "Traceback" not in err
    rc = main(["import", str(tmp_path), "--task", "ner", "--out", str(tmp_path / "o"), "--labels", "O,,B-X"])
    assert rc == 2 and "--labels" in capsys.readouterr().err


def test_cli_without_torch_says_which_extra(tmp_path, hf_bio, capsys, monkeypatch):
    from zhie.cli import main

    src, _, _ = hf_bio
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import torch now fails as if not installed
    rc = main(["import", str(src), "--task", "ner", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'zhie[train]'" in err and "Traceback" not in err


def test_cli_import_writes_a_folder(tmp_path, hf_bio, capsys):
    from zhie.cli import main

    src, _, _ = hf_bio
    rc = main(["import", str(src), "--task", "ner", "--out", str(tmp_path / "m"), "--precision", "fp32", "--format", "hf"])
    assert rc == 0 and (tmp_path / "m" / "model.onnx").is_file()
    err = capsys.readouterr().err
    assert "largest logit difference" in err and "format hf" in err
    rc = main(["import", str(src), "--task", "ner", "--out", str(tmp_path / "m2"), "--format", "modelscope"])
    assert rc == 2 and "modelscope: no configuration.json" in capsys.readouterr().err


def test_imported_folders_served_over_http_answer_as_the_originals(hf_bio, tmp_path):
    """The acceptance path: imported float32 folders behind `zhie serve`'s app, over HTTP: the entities of the
    original architecture (offsets exact), the sentiment probabilities within 1e-3, and /readyz saying what
    is served."""
    import torch
    import transformers
    from fastapi.testclient import TestClient

    from zhie.server.app import create_app
    from zhie.server.settings import Settings

    src, out, _ = hf_bio
    s_src = F.hf_sequence_classifier(tmp_path / "s-src")
    import_model(s_src, "sentiment", tmp_path / "s-out", precision="fp32", log=quiet)
    app = create_app(Settings(ner_model=str(out), sentiment_model=str(tmp_path / "s-out"), extract_model="", threads=1))
    with TestClient(app, raise_server_exceptions=False) as c:
        ready = c.get("/readyz").json()
        assert ready["served"]["ner"]["format"] == "hf" and ready["served"]["ner"]["types"] == ["LOC", "ORG", "PER"]
        assert ready["served"]["sentiment"]["labels"] == ["negative", "positive"]
        assert str(tmp_path) not in json.dumps(ready)  # the checkpoint folder's name, never its path
        r = c.post("/v1/ner", json={"texts": MIXED})
        assert r.status_code == 200
        got = [{(e["type"], e["start"], e["end"]) for e in body["entities"]} for body in r.json()]
        for t, body in zip(MIXED, r.json()):
            assert all(t[e["start"] : e["end"]] == e["text"] for e in body["entities"])
        assert got == reference_entities(src, MIXED, F.BIO, "bio")
        r = c.post("/v1/sentiment", json={"texts": MIXED})
        assert r.status_code == 200
        model = transformers.BertForSequenceClassification.from_pretrained(str(s_src)).eval()
        tok = transformers.BertTokenizer.from_pretrained(str(s_src))
        with torch.no_grad():
            for t, body in zip(MIXED, r.json()):
                p = torch.softmax(model(**tok(t, return_tensors="pt")).logits[0], -1).tolist()
                assert abs(body["scores"]["negative"] - p[0]) < 1e-3 and abs(body["scores"]["positive"] - p[1]) < 1e-3
