"""Train a new tagging head on a frozen NER encoder's cached output (``zhie.train.ner_cache``):
lexicon features and/or a BiLSTM between the encoder and the CRF. Minutes per run on 2 cores, so
head designs can be compared on the same encoder before any is trained end to end.

    zhie train ner-head --cache runs/ner-v3-cache --run runs/ner-v3 --out runs/nh-lstm \
        --lstm 192 --epochs 2 --write-run runs/ner-v4      (recipes/ner-v4.sh)

``--run``: the run whose encoder made the cache; its own head is scored on the same cached dev
sets first (the reference), and a chosen head is written back as a full model with
``--write-run``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np

from ..tasks.crf import CRF
from ..tasks.scoring import score_entities
from ..text.lexicon import CATEGORIES, Lexicon
from ..text.tags import bio_labels, bio_to_spans
from ..text.types import ENTITY_TYPES, Entity

log = logging.getLogger("zhie.train")
LABELS = bio_labels(ENTITY_TYPES)


class Split:
    def __init__(self, base: Path, lexicon: Lexicon | None):
        self.hidden = np.load(base.with_suffix(".hidden.npy"), mmap_mode="r")
        self.tags = np.load(base.with_suffix(".tags.npy"))
        self.offsets = np.load(base.with_suffix(".offsets.npy"))
        self.texts = base.with_suffix(".texts.txt").read_text(encoding="utf-8").split("\n")[: len(self.offsets) - 1]
        self.lex = None
        if lexicon is not None:
            from ..text.normalize import normalize

            self.lex = np.concatenate([lexicon.features(normalize(t)) for t in self.texts]).astype(np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def batch(self, idx):
        import torch

        T = max(self.length(i) for i in idx)
        H = self.hidden.shape[1]
        h = np.zeros((len(idx), T, H), dtype=np.float32)
        y = np.zeros((len(idx), T), dtype=np.int64)
        m = np.zeros((len(idx), T), dtype=bool)
        lx = np.zeros((len(idx), T, self.lex.shape[1] if self.lex is not None else 0), dtype=np.float32)
        for r, i in enumerate(idx):
            a, b = self.offsets[i], self.offsets[i + 1]
            h[r, : b - a] = self.hidden[a:b]
            y[r, : b - a] = self.tags[a:b]
            m[r, : b - a] = True
            if self.lex is not None:
                lx[r, : b - a] = self.lex[a:b]
        return torch.from_numpy(h), torch.from_numpy(lx), torch.from_numpy(y), torch.from_numpy(m)


def make_head(hidden: int, lex_dim: int, lstm: int, dropout: float):
    """The tagging head of ``CharTagger`` without its encoder: same attribute names, same emissions,
    so a trained head drops into a full model (``--write-run``)."""
    from torch import nn

    from .modeling import BiLSTM, CharTagger, TorchCRF

    class StackHead(nn.Module):
        emissions = CharTagger.emissions

        def __init__(self):
            super().__init__()
            self.lex_dim, self.lstm_size = lex_dim, lstm
            self.dropout = nn.Dropout(dropout)
            self.lstm = BiLSTM(hidden + lex_dim, lstm) if lstm else None
            self.head = nn.Linear(2 * lstm if lstm else hidden + lex_dim, len(LABELS))
            self.crf = TorchCRF(LABELS)

        def forward(self, h, lx, mask):
            return self.emissions(h, mask.long(), lx)

    return StackHead()


def batches(split: Split, batch_tokens: int, rng: random.Random | None):
    order = sorted(range(len(split)), key=lambda i: (split.length(i), rng.random() if rng else 0))
    groups, cur = [], []
    for i in order:
        if cur and split.length(i) * (len(cur) + 1) > batch_tokens:
            groups.append(cur)
            cur = []
        cur.append(i)
    if cur:
        groups.append(cur)
    if rng:
        rng.shuffle(groups)
    return groups


def entity_f1(split: Split, emit, crf: CRF, batch_tokens: int = 8192) -> dict:
    """Micro precision, recall and F1 of the Viterbi paths over ``emit``'s emissions (``score_entities``)."""
    def entities(tags) -> list[Entity]:
        return [Entity(t, "", s, e, 0.0) for t, s, e in bio_to_spans([LABELS[k] for k in tags])]

    gold, pred = [], []
    for idx in batches(split, batch_tokens, None):
        em, lengths = emit(idx)
        paths = crf.viterbi(em, lengths)
        for r, i in enumerate(idx):
            a, b = split.offsets[i], split.offsets[i + 1]
            gold.append(entities(split.tags[a:b]))
            pred.append(entities(paths[r, : b - a]))
    scores = score_entities(gold, pred)
    return {k: scores[k] for k in ("precision", "recall", "f1")}


def write_run(encoder_run: Path, head, out: Path, lexicon: Lexicon | None, lexicon_path: Path | None) -> None:
    """``encoder_run``'s encoder under ``head``, saved as a run folder that ``zhie export`` reads."""
    import shutil

    from .export import load_run
    from .loop import save_checkpoint
    from .modeling import CharTagger

    encoder, _, _, state = load_run(encoder_run)
    model = CharTagger(encoder.bert, LABELS, lex_dim=head.lex_dim, lstm=head.lstm_size)
    model.load_state_dict({**encoder.bert.state_dict(prefix="bert."), **head.state_dict()})
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(encoder_run / "vocab.txt", out / "vocab.txt")
    extra = {"kind": "ner", "head_config": model.head_config(), "encoder_from": str(encoder_run)}
    if lexicon is not None and lexicon_path is not None:
        shutil.copy(lexicon_path, out / "lexicon.tsv")
        extra["lexicon"] = {"file": "lexicon.tsv", "categories": list(lexicon.categories)}
    save_checkpoint(model, out / "model.pt", int(state.get("step") or 0), **extra)
    log.info("wrote %s: encoder of %s with the new head %s", out, encoder_run, model.head_config())


def main(argv=None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cache", required=True)
    p.add_argument("--run", required=True, help="the run whose encoder made the cache")
    p.add_argument("--out", required=True)
    p.add_argument("--lexicon", default="", help="lexicon file (word<TAB>category); empty: no lexicon features")
    p.add_argument("--categories", default=",".join(CATEGORIES))
    p.add_argument("--lstm", type=int, default=0, help="BiLSTM size per direction; 0: linear head")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=0, help="first N training pieces only (quick trials)")
    p.add_argument("--init-head", default="", help="start from a saved head.pt (with --epochs 0: score it, write it)")
    p.add_argument("--write-run", default="", help="also write the encoder with this head as a run folder (zhie export ner --run)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cats = tuple(args.categories.split(","))
    lexicon = Lexicon.load(args.lexicon, cats) if args.lexicon else None
    cache = Path(args.cache)
    t0 = time.time()
    devs = {name: Split(cache / name, lexicon) for name in ("msra", "weibo", "cluener")}
    train = Split(cache / "train", lexicon)
    log.info("loaded cache in %.0f s: train %d pieces", time.time() - t0, len(train))

    # reference: the run's own head on the same cached dev pieces
    state = torch.load(Path(args.run) / "model.pt", map_location="cpu", weights_only=False)["model"]
    W, bvec = state["head.weight"].numpy(), state["head.bias"].numpy()
    ref_crf = CRF(LABELS, state["crf.transitions"].numpy(), state["crf.start"].numpy(), state["crf.end"].numpy())

    def ref_emit(split):
        def emit(idx):
            h, _, _, m = split.batch(idx)
            return h.numpy() @ W.T + bvec, m.sum(1).numpy()
        return emit

    results = {"reference": {k: entity_f1(s, ref_emit(s), ref_crf) for k, s in devs.items()}}
    log.info("reference head: %s", results["reference"])

    lex_dim = lexicon.dim if lexicon else 0
    head = make_head(train.hidden.shape[1], lex_dim, args.lstm, args.dropout)
    if not args.lstm:  # start the linear head from the run's own, lexicon columns at zero
        with torch.no_grad():
            head.head.weight.zero_()
            head.head.weight[:, : W.shape[1]] = torch.from_numpy(W)
            head.head.bias.copy_(torch.from_numpy(bvec))
    with torch.no_grad():
        for name in ("transitions", "start", "end"):
            getattr(head.crf, name).copy_(state[f"crf.{name}"])

    def head_emit(split):
        def emit(idx):
            h, lx, _, m = split.batch(idx)
            with torch.no_grad():
                return head(h, lx, m).numpy(), m.sum(1).numpy()
        return emit

    if args.init_head:
        head.load_state_dict(torch.load(args.init_head, map_location="cpu", weights_only=False)["head"])
        head.eval()
        crf = CRF(LABELS, head.crf.transitions.detach().numpy(), head.crf.start.detach().numpy(), head.crf.end.detach().numpy())
        results["init_head"] = {name: entity_f1(s, head_emit(s), crf) for name, s in devs.items()}
        log.info("%s: %s", args.init_head, results["init_head"])
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
    train_idx = list(range(len(train)))
    if args.train_limit:
        rng.shuffle(train_idx)
        train_idx = train_idx[: args.train_limit]
    groups_all = batches(train, args.batch_tokens, rng)  # (draws from rng: kept so runs reproduce)
    keep = set(train_idx)
    total_steps = args.epochs * sum(1 for g in groups_all if g[0] in keep)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(1, total_steps), pct_start=0.05)

    step = 0
    for epoch in range(args.epochs):
        head.train()
        groups = [g for g in batches(train, args.batch_tokens, rng) if g[0] in keep]
        t0, total = time.time(), 0.0
        for k, g in enumerate(groups):
            h, lx, y, m = train.batch(g)
            loss = head.crf.nll(head(h, lx, m), y, m)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 5.0)
            opt.step()
            if step < total_steps:
                sched.step()
            step += 1
            total += loss.item()
            if k % 200 == 0:
                log.info("epoch %d step %d/%d loss %.3f (%.0f s)", epoch, k, len(groups), total / (k + 1), time.time() - t0)
        head.eval()
        crf = CRF(LABELS, head.crf.transitions.detach().numpy(), head.crf.start.detach().numpy(), head.crf.end.detach().numpy())
        res = {name: entity_f1(s, head_emit(s), crf) for name, s in devs.items()}
        results[f"epoch{epoch + 1}"] = res
        log.info("epoch %d (%.0f s): %s", epoch + 1, time.time() - t0, res)
        torch.save({"head": head.state_dict(), "args": vars(args), "epoch": epoch + 1}, out / "head.pt")
    results["args"] = vars(args)
    if args.write_run:
        write_run(Path(args.run), head, Path(args.write_run), lexicon, Path(args.lexicon) if args.lexicon else None)
    (out / ("results.json" if args.epochs else "results-scored.json")).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
