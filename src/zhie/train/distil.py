"""Distil an ensemble of runs of one task into one student (issue 22).

The members are K runs of one task trained by one recipe with other seeds (other data orders and samples:
``recipes/gpu-train.sh``). Before the student's first step, every member reads the student's own training
examples once (batched, no dropout, on the training device) and their outputs are averaged and kept in memory
as float16; the student then trains on the gold labels and these soft targets together, with ``w`` =
``--soft-weight``:

- NER: each member's per-token tag marginals under its own CRF (forward-backward, :func:`crf_log_marginals`),
  averaged; the loss is ``(1 - w)`` × the CRF's negative log-likelihood of the gold tags + ``w`` × the
  cross-entropy of the averaged marginals against the student's own CRF marginals, summed over a sentence's
  positions as the likelihood is, averaged over the batch;
- sentiment: the members' class probabilities, averaged; ``(1 - w)`` × cross-entropy with the gold label +
  ``w`` × cross-entropy with the averaged probabilities;
- extract: the members' start and end probabilities (sigmoids), averaged; ``(1 - w)`` × binary cross-entropy
  with the gold pointers + ``w`` × binary cross-entropy with the averaged ones, over the text positions.

``w`` = 0 is ordinary training (the student's weights end as a run of the trainer alone would, bit for bit);
the training itself is the task's own (``train_ner``, ``train_sentiment``, ``train_extract``: the same data,
encoding, batches and schedule), given one of the classes below.

    python -m zhie.train.distil ner --members runs/a runs/b runs/c --soft-weight 0.5 \\
        --out runs/ner-student --datasets ../shared/datasets --extra weibo cluener   # + any zhie train ner flag
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("zhie.train")


def crf_log_marginals(crf, em, mask):
    """log P(tag at t = k | sentence) under ``crf`` (a ``modeling.TorchCRF``, its BIO penalties included) for
    emissions ``em`` (B, T, K) and a prefix ``mask`` (B, T) bool with ``mask[:, 0]`` True: forward-backward in
    log space, differentiable. Positions past a row's length hold finite values that mean nothing."""
    import torch

    B, T, K = em.shape
    trans = crf.transitions + crf.trans_pen
    alpha = [crf.start + crf.start_pen + em[:, 0]]
    for t in range(1, T):
        nxt = torch.logsumexp(alpha[-1].unsqueeze(2) + trans[None], dim=1) + em[:, t]
        alpha.append(torch.where(mask[:, t : t + 1], nxt, alpha[-1]))  # carried past the end: alpha[-1] is the last real one
    end = crf.end[None].expand(B, K)
    beta = [end]
    for t in range(T - 2, -1, -1):
        b = torch.logsumexp(trans[None] + (em[:, t + 1] + beta[0])[:, None, :], dim=2)
        beta.insert(0, torch.where(mask[:, t + 1 : t + 2], b, end))  # a row's last real position: the end scores
    alpha_t, beta_t = torch.stack(alpha, 1), torch.stack(beta, 1)
    logz = torch.logsumexp(alpha[-1] + crf.end[None], dim=1)
    return alpha_t + beta_t - logz[:, None, None]


def padded(rows: list[np.ndarray], T: int) -> np.ndarray:
    """Ragged (L_i, ...) arrays as one (B, T, ...) float32 array, zeros past each row's length."""
    out = np.zeros((len(rows), T) + rows[0].shape[1:], dtype=np.float32)
    for r, a in enumerate(rows):
        out[r, : len(a)] = a
    return out


class Distil:
    """The members of one task, their averaged outputs over a student's training examples, and the mixed loss."""

    kind = ""

    def __init__(self, members: list[str | Path], soft_weight: float = 0.5, batch_tokens: int = 16384):
        if len(members) < 1:
            raise ValueError("distillation needs at least one member run")
        if not 0.0 <= soft_weight <= 1.0:
            raise ValueError(f"soft weight {soft_weight}: expected 0..1")
        self.members = [Path(m) for m in members]
        self.weight = soft_weight
        self.batch_tokens = batch_tokens
        self.targets: list[np.ndarray] = []  # one float16 array per training example
        self.labels: list[str] = []
        self.seconds = 0.0
        self._checked = False

    def provenance(self) -> dict:
        """What a student's ``model.pt`` records beside its weights."""
        return {"distilled_from": [str(m) for m in self.members], "soft_weight": self.weight}

    def load_members(self, vocab, device) -> list:
        import torch

        from .export import load_run

        models = []
        with torch.random.fork_rng(devices=[]):  # building a model draws initial weights: the student's random stream is left as it was
            for run in self.members:
                model, v, kind, _ = load_run(run)
                if kind != self.kind:
                    raise SystemExit(f"distil {self.kind}: member {run} is a {kind} run")
                if v.tokens != vocab.tokens:
                    raise SystemExit(f"distil {self.kind}: member {run} has another vocabulary than the student")
                if models and list(model.labels) != list(models[0].labels):
                    raise SystemExit(f"distil {self.kind}: member {run} has labels {model.labels}, not {models[0].labels}")
                models.append(model.to(device).eval())
        self.labels = list(models[0].labels)
        return models

    def prepare(self, examples: list, vocab, device, out: Path | None = None, split: bool = False) -> None:
        """The members' averaged outputs over ``examples`` (the student's, as its trainer encoded them), once."""
        import torch

        from .loop import autocast, length_batches

        t0 = time.time()
        models = self.load_members(vocab, device)
        self.targets = [None] * len(examples)  # type: ignore[list-item]
        lengths = self.lengths(examples, split)
        with torch.no_grad(), autocast(device):
            for idx in length_batches(lengths, self.batch_tokens, random.Random(0)):
                mean = sum(self.member_output(m, examples, idx, device, split) for m in models) / len(models)
                mean = mean.float().cpu().numpy()
                for r, i in enumerate(idx):
                    self.targets[i] = mean[r, : self.target_length(examples[i], split)].astype(np.float16)
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
        self.seconds = time.time() - t0
        log.info("distil %s: %d members' outputs over %d training examples in %.1fs", self.kind, len(self.members),
                 len(examples), self.seconds)
        if out is not None:
            (Path(out) / "distil.json").write_text(json.dumps({
                **self.provenance(), "kind": self.kind, "examples": len(examples), "teacher_seconds": round(self.seconds, 1),
                "loss": self.__doc__.split("\n")[0] if self.__doc__ else ""}, indent=1, ensure_ascii=False), encoding="utf-8")

    def lengths(self, examples: list, split: bool) -> list[int]:
        return [len(x[0]) for x in examples]

    def target_length(self, example, split: bool) -> int:
        return len(example[0])

    def soft(self, idx: list[int], T: int, device):
        import torch

        return torch.from_numpy(padded([self.targets[i] for i in idx], T)).to(device)

    def check(self, model) -> None:
        if not self._checked:
            if list(model.labels) != self.labels:
                raise SystemExit(f"distil {self.kind}: the student's labels {model.labels} are not the members' {self.labels}")
            if not self.targets:
                raise RuntimeError("Distil.prepare was not called")
            self._checked = True

    def member_output(self, model, examples, idx, device, split):
        raise NotImplementedError

    def loss(self, model, gold, output, mask, idx):
        raise NotImplementedError


class NerDistil(Distil):
    """(1 - w) CRF NLL(gold) + w CE(mean member CRF marginals, student CRF marginals), summed over positions."""

    kind = "ner"

    def member_output(self, model, examples, idx, device, split):
        from .ner import collate

        ids, _, mask = (t.to(device) for t in collate(examples, idx))
        return crf_log_marginals(model.crf, model(ids, mask.long()).float(), mask).exp()

    def loss(self, model, gold, em, mask, idx):
        self.check(model)
        if self.weight == 0.0:
            return gold
        q = self.soft(idx, em.shape[1], em.device)
        logp = crf_log_marginals(model.crf, em.float(), mask)
        soft = (-(q * logp).sum(-1) * mask).sum(1).mean()
        return (1.0 - self.weight) * gold + self.weight * soft


class SentimentDistil(Distil):
    """(1 - w) CE(gold) + w CE(mean member probabilities)."""

    kind = "sentiment"

    def target_length(self, example, split: bool) -> int:
        return len(self.labels)

    def member_output(self, model, examples, idx, device, split):
        import torch

        from .sentiment import collate

        ids, mask, _ = (t.to(device) for t in collate(examples, idx))
        return torch.softmax(model(ids, mask).float(), dim=-1)

    def soft(self, idx, T, device):
        import torch

        return torch.from_numpy(np.stack([self.targets[i] for i in idx]).astype(np.float32)).to(device)

    def loss(self, model, gold, logits, mask, idx):
        import torch

        self.check(model)
        if self.weight == 0.0:
            return gold
        q = self.soft(idx, 0, logits.device)
        soft = -(q * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
        return (1.0 - self.weight) * gold + self.weight * soft


class ExtractDistil(Distil):
    """(1 - w) BCE(gold pointers) + w BCE(mean member start/end probabilities), over the text positions."""

    kind = "extract"

    def lengths(self, examples, split):
        return [len(x[0]) + len(x[1]) for x in examples] if split else [len(x[0]) for x in examples]

    def target_length(self, example, split):
        return len(example[1]) if split else len(example[0])  # the pointers cover the text ids (split) or the whole input

    def member_output(self, model, examples, idx, device, split):
        import torch

        from .extract import collate, collate_split

        if split:
            *inputs, _, _ = (t.to(device) for t in collate_split(examples, idx))
        else:
            ids, mask, _, _ = (t.to(device) for t in collate(examples, idx))
            inputs = [ids, mask]
        return torch.sigmoid(model(*inputs).float())

    def loss(self, model, gold, pointers, lm, idx):
        import torch

        self.check(model)
        if self.weight == 0.0:
            return gold
        q = self.soft(idx, pointers.shape[1], pointers.device)
        soft = torch.nn.functional.binary_cross_entropy_with_logits(pointers.float(), q, reduction="none").sum(-1)
        soft = (soft * lm).sum() / lm.sum().clamp(min=1.0)
        return (1.0 - self.weight) * gold + self.weight * soft


DISTILS = {"ner": NerDistil, "sentiment": SentimentDistil, "extract": ExtractDistil}


def train_student(kind: str, cfg, members: list[str | Path], soft_weight: float = 0.5, batch_tokens: int = 16384,
                  chosen: list | None = None) -> Path:
    """Train ``cfg`` (the task's config) as the student of ``members``; ``chosen``: extract's prompt examples,
    when the caller has built them (``extract.build_examples``)."""
    distil = DISTILS[kind](members, soft_weight, batch_tokens)
    if kind == "ner":
        from .ner import train_ner

        return train_ner(cfg, distil=distil)
    if kind == "sentiment":
        from .sentiment import train_sentiment

        return train_sentiment(cfg, distil=distil)
    from .extract import train_extract

    return train_extract(cfg, chosen, distil=distil)


def task_config(kind: str, flags: list[str]):
    """The task's config dataclass from ``zhie train KIND`` flags."""
    from .loop import config_parser

    if kind == "ner":
        from .ner import NerTrainConfig as cls

        choices = {"extra": ["weibo", "cluener"]}
    elif kind == "sentiment":
        from .sentiment import SentimentTrainConfig as cls

        choices = {"sources": None}
    else:
        from .extract import PARSER_CHOICES as choices
        from .extract import ExtractTrainConfig as cls
    args = config_parser(cls, f"zhie train {kind}", None, choices).parse_args(flags)
    if kind == "sentiment" and not args.sources:
        args.sources = ["chnsenticorp"]
    return cls(**vars(args))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m zhie.train.distil", description=__doc__.split("\n\n")[0],
                                epilog="Every other flag goes to the task's trainer (zhie train KIND --help).")
    p.add_argument("kind", choices=sorted(DISTILS))
    p.add_argument("--members", nargs="+", required=True, help="the member runs (same task, vocabulary and labels)")
    p.add_argument("--soft-weight", type=float, default=0.5, help="w: the soft targets' share of the loss (0: gold only)")
    p.add_argument("--teacher-batch-tokens", type=int, default=16384, help="token budget of the members' batches")
    a, rest = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    print(train_student(a.kind, task_config(a.kind, rest), a.members, a.soft_weight, a.teacher_batch_tokens))


if __name__ == "__main__":
    main()
