"""Training that survives being stopped (issue 22): a run stopped by a signal or a step limit and
resumed from its ``resume.pt`` ends with the weights of an unbroken run, bit for bit."""

from __future__ import annotations

import json
import os
import random
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from zhie.text.tags import bio_labels  # noqa: E402
from zhie.text.types import ENTITY_TYPES  # noqa: E402
from zhie.text.vocab import CharVocab  # noqa: E402
from zhie.train import loop  # noqa: E402
from zhie.train.encoder import bert_config  # noqa: E402
from zhie.train.modeling import CharTagger  # noqa: E402

LABELS = bio_labels(ENTITY_TYPES)


def tiny_bert(vocab_size: int):
    from transformers import BertModel

    return BertModel(bert_config(vocab_size, 16, 1, 2, 32, 1e-12, 130), add_pooling_layer=False)


def tiny_model(seed: int = 0) -> CharTagger:
    torch.manual_seed(seed)
    return CharTagger(tiny_bert(40), LABELS, lstm=4)


def tiny_data(n: int = 48):
    r = np.random.default_rng(3)
    out = []
    for _ in range(n):
        T = int(r.integers(4, 20))
        out.append((r.integers(4, 40, T), r.integers(0, len(LABELS), T)))
    return out


def train(model, data, out, **kw):
    """Two epochs of ``data``; dropout is on, so the torch RNG's state matters as much as the data order."""
    from zhie.train.ner import collate

    examples = [(np.asarray(x, dtype=np.int64), np.asarray([0] + list(y[1:-1]) + [0])) for x, y in data]
    hook = kw.pop("hook", None)

    def step_loss(idx):
        if hook:
            hook()
        ids, tags, mask = collate(examples, idx)
        return model.crf.nll(model(ids, mask.long()), tags, mask)

    out.mkdir(parents=True, exist_ok=True)
    loop.fit(model, [len(x) for x, _ in examples], step_loss, out, epochs=2.0, batch_tokens=120, lr_encoder=1e-3,
             lr_head=1e-2, warmup=0.2, weight_decay=0.01, seed=5, log_every=1000, save_every=1000,
             extra_state={"kind": "ner"}, **kw)
    return model


def same_weights(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    torch.set_num_threads(1)
    return train(tiny_model(), tiny_data(), tmp_path_factory.mktemp("unbroken"))


def perturb() -> None:
    """A fresh process's RNGs: the resumed run must restore them, not rely on them."""
    random.seed(999)
    np.random.seed(999)
    torch.manual_seed(999)


def test_stopped_by_a_step_limit_and_resumed_ends_with_the_same_weights(unbroken, tmp_path):
    torch.set_num_threads(1)
    with pytest.raises(loop.TrainingStopped, match="--resume"):
        train(tiny_model(), tiny_data(), tmp_path, max_steps=7)
    assert (tmp_path / loop.RESUME_FILE).exists() and (tmp_path / "model.pt").exists()
    state = torch.load(tmp_path / loop.RESUME_FILE, weights_only=False)
    assert state["step"] == 7 and 0 < state["pos"] and state["total"] > 7
    perturb()
    resumed = train(tiny_model(seed=1), tiny_data(), tmp_path, resume=True)  # other initial weights: all come from the state
    same_weights(resumed, unbroken)
    assert torch.load(tmp_path / loop.RESUME_FILE, weights_only=False)["step"] == state["total"]
    # a finished run resumed again does nothing
    again = train(tiny_model(seed=2), tiny_data(), tmp_path, resume=True)
    assert not torch.equal(again.head.weight, unbroken.head.weight)


def test_stopped_by_sigterm_twice_and_resumed_ends_with_the_same_weights(unbroken, tmp_path):
    torch.set_num_threads(1)
    calls = [0]

    def kill_at(n):
        def hook():
            calls[0] += 1
            if calls[0] == n:  # a real signal, delivered to this process in the middle of a step
                os.kill(os.getpid(), signal.SIGTERM)
        return hook

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(loop.TrainingStopped, match="signal"):
        train(tiny_model(), tiny_data(), tmp_path, hook=kill_at(4))
    assert signal.getsignal(signal.SIGTERM) == before  # the run's handler is gone with it
    assert torch.load(tmp_path / loop.RESUME_FILE, weights_only=False)["step"] == 4
    perturb()
    calls[0] = 0
    with pytest.raises(loop.TrainingStopped):  # stopped again, across the epoch boundary this time
        train(tiny_model(seed=1), tiny_data(), tmp_path, resume=True, hook=kill_at(6))
    perturb()
    same_weights(train(tiny_model(seed=1), tiny_data(), tmp_path, resume=True), unbroken)


def test_periodic_checkpoints_resume_exactly_too(unbroken, tmp_path):
    torch.set_num_threads(1)
    train(tiny_model(), tiny_data(), tmp_path, checkpoint_minutes=0.0)  # a resume.pt after every step
    same_weights(torch_model_from(tmp_path), unbroken)


def torch_model_from(run):
    m = tiny_model(seed=3)
    m.load_state_dict(torch.load(run / loop.RESUME_FILE, weights_only=False)["model"])
    return m


def test_resume_refuses_other_data_and_missing_state(tmp_path):
    torch.set_num_threads(1)
    with pytest.raises(SystemExit, match="no resume.pt"):
        train(tiny_model(), tiny_data(), tmp_path, resume=True)
    with pytest.raises(loop.TrainingStopped):
        train(tiny_model(), tiny_data(), tmp_path, max_steps=2)
    with pytest.raises(SystemExit, match="data or schedule differ"):
        train(tiny_model(), tiny_data(40), tmp_path, resume=True)


def test_resume_config_keeps_the_run_settings(tmp_path):
    from zhie.train.ner import NerTrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**NerTrainConfig().__dict__, "epochs": 3.0, "seed": 21, "out": "elsewhere"}))
    args = {**NerTrainConfig().__dict__, "resume": str(run), "threads": 2, "max_steps": 10}
    cfg = loop.resume_config(NerTrainConfig, args)
    assert (cfg.epochs, cfg.seed, cfg.out, cfg.threads, cfg.max_steps, cfg.resume) == (3.0, 21, str(run), 2, 10, str(run))
    with pytest.raises(SystemExit, match="--lr-head"):
        loop.resume_config(NerTrainConfig, {**args, "lr_head": 1.0})
    assert loop.resume_config(NerTrainConfig, {**args, "seed": 21}).seed == 21  # the same value is no clash
    with pytest.raises(SystemExit, match="not a run folder"):
        loop.resume_config(NerTrainConfig, {**args, "resume": str(tmp_path)})


@pytest.mark.datasets
def test_zhie_train_ner_stopped_and_resumed_from_the_command_line(datasets, tmp_path, monkeypatch):
    """The trainer end to end (MSRA sentences, a tiny encoder in place of e5): --max-steps, then --resume."""
    import zhie.train.ner as ner

    def tiny_encoder(_datasets, out, _encoder=""):
        vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>"] + [chr(c) for c in range(0x4E00, 0x4E00 + 36)])
        vocab.save(out / "vocab.txt")
        return tiny_bert(len(vocab)), vocab

    monkeypatch.setattr(ner, "prepare_encoder", tiny_encoder)
    torch.set_num_threads(1)
    flags = ["--datasets", str(datasets), "--max-train-sentences", "24", "--batch-tokens", "400", "--epochs", "1.5",
             "--lstm", "4", "--log-every", "1000", "--threads", "1"]
    ner.main(flags + ["--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="--resume"):
        ner.main(flags + ["--out", str(tmp_path / "b"), "--max-steps", "3"])
    with pytest.raises(SystemExit, match="differ"):
        ner.main(["--resume", str(tmp_path / "b"), "--epochs", "2.0"])
    ner.main(["--resume", str(tmp_path / "b"), "--threads", "1"])
    a = torch.load(tmp_path / "a/model.pt", weights_only=False)
    b = torch.load(tmp_path / "b/model.pt", weights_only=False)
    assert a["step"] == b["step"] > 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
