"""What every zhie training run shares: seeding, the encoder, length-bucketed batches, the
two-learning-rate optimiser with warm-up and linear decay, logging and checkpoints."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger("zhie.train")


def seed_everything(seed: int, threads: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


def prepare_encoder(datasets: str | Path, out: Path):
    """The pretrained e5 encoder as a float32 BERT over the pruned character vocabulary."""
    from .encoder import build_bert, read_e5
    from .vocab import build_vocab

    ckpt = read_e5()
    vocab = build_vocab(ckpt, Path(datasets))
    vocab.save(out / "vocab.txt")
    return build_bert(ckpt, vocab.tokens), vocab


def init_from(model, vocab, run: Path, kind: str | None = None) -> None:
    """Start from the weights of an earlier run, or of a model folder such as a bundled model (read back from its
    ONNX graph by ``zhie.train.from_bundle``); its vocabulary must be this run's. When ``kind`` is given and the
    run saved another kind, only its encoder is taken (an extractor from an NER run)."""
    import torch

    from ..text.vocab import CharVocab

    if CharVocab.load(run / "vocab.txt").tokens != vocab.tokens:
        raise SystemExit(f"--init {run}: its vocabulary differs from this run's (different datasets?)")
    if (run / "model.pt").exists():
        state = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    elif (run / "config.json").exists():  # a model folder (bundled or exported): its weights read back from ONNX
        from .from_bundle import load_bundle_model

        m, _, bundle_kind, _ = load_bundle_model(run)
        state = {"model": m.state_dict(), "labels": m.labels, "kind": bundle_kind, "step": "bundle",
                 "head_config": m.head_config()}
    else:
        raise SystemExit(f"--init {run}: neither a run (model.pt) nor a model folder (config.json, model.onnx)")
    weights = state["model"]
    encoder_only = kind is not None and state.get("kind") != kind
    old_labels, new_labels = list(state.get("labels") or []), list(getattr(model, "labels", []))
    grow = not encoder_only and old_labels != new_labels and new_labels[: len(old_labels)] == old_labels and old_labels
    if grow:  # a head over more labels (sentiment + neutral): the known rows are kept, the new ones start fresh
        fresh = model.state_dict()
        for name in ("head.weight", "head.bias"):
            fresh[name][: len(old_labels)] = weights[name]
            weights = {**weights, name: fresh[name]}
        log.info("head grown from %s to %s", old_labels, new_labels)
    elif not encoder_only and old_labels and old_labels != new_labels:
        raise SystemExit(f"--init {run}: its labels {old_labels} are not a prefix of this run's {new_labels}")
    if encoder_only:
        weights = {k: v for k, v in weights.items() if k.startswith("bert.")}
        missing = [k for k in model.state_dict() if k.startswith("bert.") and k not in weights]
        if missing:
            raise SystemExit(f"--init {run}: its encoder lacks {missing[:3]}")
        model.load_state_dict(weights, strict=False)
    else:
        try:
            model.load_state_dict(weights)
        except RuntimeError as e:  # another head shape (an NER BiLSTM without --lstm, ...)
            raise SystemExit(f"--init {run}: its weights do not fit this run's model: its head {state.get('head_config')}, "
                             f"this run's {model.head_config()} (for NER, set --lstm to match)\n{str(e)[:300]}") from None
    log.info("initialised %s from %s (step %s)", "the encoder" if encoder_only else "all weights", run, state.get("step"))


def length_batches(lengths: Sequence[int], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Groups of similar length whose padded size stays within ``batch_tokens``, in random order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    groups, cur, cur_max = [], [], 0
    for i in order:
        n = lengths[i]
        if cur and max(cur_max, n) * (len(cur) + 1) > batch_tokens:
            groups.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        groups.append(cur)
    rng.shuffle(groups)
    return groups


def save_checkpoint(model, path: Path, step: int, **extra) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "labels": model.labels, "bert_config": model.bert.config.to_dict(),
                "step": step, **extra}, tmp)
    tmp.replace(path)


def fit(model, lengths: Sequence[int], step_loss: Callable[[list[int]], "object"], out: Path, *, epochs: float,
        batch_tokens: int, lr_encoder: float, lr_head: float, warmup: float, weight_decay: float, seed: int,
        log_every: int = 50, save_every: int = 300, extra_state: dict | None = None) -> None:
    """Train ``model``: ``step_loss(indices)`` returns the loss of one batch of example indices."""
    import torch

    rng = random.Random(seed)
    steps_per_epoch = len(length_batches(lengths, batch_tokens, random.Random(0)))
    total = max(1, int(math.ceil(steps_per_epoch * epochs)))
    enc = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    head = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    opt = torch.optim.AdamW([{"params": enc, "lr": lr_encoder}, {"params": head, "lr": lr_head, "weight_decay": 0.0}],
                            weight_decay=weight_decay)
    warm = max(1, int(total * warmup))

    def schedule(s: int) -> float:
        return (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    step, t0, run_loss = 0, time.time(), 0.0
    model.train()
    while step < total:
        for idx in length_batches(lengths, batch_tokens, rng):
            loss = step_loss(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item()
            if step % log_every == 0:
                el = time.time() - t0
                log.info("step %d/%d loss %.4f %.1fs elapsed, eta %.0fs", step, total, run_loss / log_every, el, el / step * (total - step))
                with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, "loss": round(run_loss / log_every, 5), "seconds": round(el, 1)}) + "\n")
                run_loss = 0.0
            if step % save_every == 0:
                save_checkpoint(model, out / "model.pt", step, **(extra_state or {}))
            if step >= total:
                break
    save_checkpoint(model, out / "model.pt", step, **(extra_state or {}))
    log.info("training done in %.0fs", time.time() - t0)


def config_parser(cls, prog: str, doc: str | None, choices: dict[str, list[str]] | None = None):
    """argparse over a config dataclass: every field becomes ``--field-name``."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=doc)
    for f in cls.__dataclass_fields__.values():
        flag = "--" + f.name.replace("_", "-")
        if choices and f.name in choices:  # a list field; None: any values
            default = f.default_factory() if callable(f.default_factory) else []  # type: ignore[misc]
            p.add_argument(flag, nargs="*", default=default, choices=choices[f.name])
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return p
