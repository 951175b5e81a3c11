"""Train the bundled NER model: char encoder + CRF, from the pretrained e5 encoder.

Reproduce the bundled model with the command in ``recipes/ner.sh``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..text.normalize import normalize
from ..text.tags import bio_labels, spans_to_bio
from ..text.types import ENTITY_TYPES, Doc
from ..text.vocab import BOS, EOS, PAD, CharVocab
from .data import map_types, read_ner, split_dev

log = logging.getLogger("zhie.train")

WEIBO_MAP = {"PER.NAM": "PER", "LOC.NAM": "LOC", "GPE.NAM": "LOC", "ORG.NAM": "ORG"}
CLUENER_MAP = {"name": "PER", "address": "LOC", "company": "ORG", "government": "ORG", "organization": "ORG"}


@dataclass
class NerTrainConfig:
    datasets: str = "../shared/datasets"
    out: str = "runs/ner"
    seed: int = 13
    epochs: float = 1.0
    batch_tokens: int = 1600
    lr_encoder: float = 1e-4
    lr_head: float = 3e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    dev_fraction: float = 0.05
    extra: list[str] = field(default_factory=list)  # "weibo", "cluener": mapped into PER/LOC/ORG
    max_train_sentences: int = 0  # 0: all
    threads: int = 0
    log_every: int = 50
    save_every: int = 300
    max_len: int = 126


def load_corpora(cfg: NerTrainConfig) -> tuple[list[Doc], dict[str, list[Doc]]]:
    root = Path(cfg.datasets)
    msra = read_ner(root / "ner/msra/train.bio", "bio")
    train, dev = split_dev(msra, cfg.dev_fraction, cfg.seed)
    devs = {"msra": dev}
    if "weibo" in cfg.extra:
        train += map_types(read_ner(root / "ner/weibo/train.conll", "weibo"), WEIBO_MAP)
        devs["weibo"] = map_types(read_ner(root / "ner/weibo/dev.conll", "weibo"), WEIBO_MAP)
    if "cluener" in cfg.extra:
        cl = map_types(read_ner(root / "ner/cluener/train.json", "cluener"), CLUENER_MAP)
        cl_train, cl_dev = split_dev(cl, cfg.dev_fraction, cfg.seed)
        train += cl_train
        devs["cluener"] = cl_dev
    return train, devs


def encode_docs(docs: list[Doc], vocab: CharVocab, labels: list[str], max_len: int):
    index = {lab: i for i, lab in enumerate(labels)}
    out = []
    for d in docs:
        ids = vocab.encode(d.text)
        tags = [index[t] for t in spans_to_bio(len(d.text), [e.key() for e in d.entities])]
        for s in range(0, max(len(ids), 1), max_len):
            chunk = ids[s : s + max_len]
            if len(chunk) == 0:
                continue
            out.append((np.concatenate([[BOS], chunk, [EOS]]), np.asarray([0] + tags[s : s + max_len] + [0])))
    return out


def batches(examples, batch_tokens: int, rng: random.Random):
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    groups, cur, cur_max = [], [], 0
    for i in order:
        n = len(examples[i][0])
        if cur and max(cur_max, n) * (len(cur) + 1) > batch_tokens:
            groups.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        groups.append(cur)
    rng.shuffle(groups)
    return groups


def collate(examples, idx):
    import torch

    T = max(len(examples[i][0]) for i in idx)
    ids = np.full((len(idx), T), PAD, dtype=np.int64)
    tags = np.zeros((len(idx), T), dtype=np.int64)
    mask = np.zeros((len(idx), T), dtype=bool)
    for r, i in enumerate(idx):
        x, y = examples[i]
        ids[r, : len(x)] = x
        tags[r, : len(y)] = y
        mask[r, : len(x)] = True
    return torch.from_numpy(ids), torch.from_numpy(tags), torch.from_numpy(mask)


def save_checkpoint(model, path: Path, step: int) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "labels": model.labels, "bert_config": model.bert.config.to_dict(), "step": step}, tmp)
    tmp.replace(path)


def train_ner(cfg: NerTrainConfig) -> Path:
    import torch

    from .encoder import build_bert, read_e5
    from .modeling import CharTagger
    from .vocab import build_vocab

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, ensure_ascii=False))

    ckpt = read_e5()
    vocab = build_vocab(ckpt, Path(cfg.datasets))
    vocab.save(out / "vocab.txt")
    labels = bio_labels(ENTITY_TYPES)
    bert = build_bert(ckpt, vocab.tokens)
    del ckpt
    model = CharTagger(bert, labels)

    train_docs, devs = load_corpora(cfg)
    if cfg.max_train_sentences:
        random.Random(cfg.seed).shuffle(train_docs)
        train_docs = train_docs[: cfg.max_train_sentences]
    examples = encode_docs(train_docs, vocab, labels, cfg.max_len)
    log.info("train examples %d, vocab %d, dev sets %s", len(examples), len(vocab), {k: len(v) for k, v in devs.items()})

    rng = random.Random(cfg.seed)
    steps_per_epoch = len(batches(examples, cfg.batch_tokens, random.Random(0)))
    total = max(1, int(math.ceil(steps_per_epoch * cfg.epochs)))
    enc_params = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    head_params = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg.lr_encoder}, {"params": head_params, "lr": cfg.lr_head, "weight_decay": 0.0}],
        weight_decay=cfg.weight_decay,
    )
    warm = max(1, int(total * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)) if s >= warm else (s + 1) / warm
    )
    step, t0, run_loss = 0, time.time(), 0.0
    model.train()
    while step < total:
        for idx in batches(examples, cfg.batch_tokens, rng):
            ids, tags, mask = collate(examples, idx)
            em = model(ids, mask.long())
            loss = model.crf.nll(em, tags, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item()
            if step % cfg.log_every == 0:
                el = time.time() - t0
                log.info("step %d/%d loss %.4f %.1fs elapsed, eta %.0fs", step, total, run_loss / cfg.log_every, el, el / step * (total - step))
                with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, "loss": round(run_loss / cfg.log_every, 5), "seconds": round(el, 1)}) + "\n")
                run_loss = 0.0
            if step % cfg.save_every == 0:
                save_checkpoint(model, out / "model.pt", step)
            if step >= total:
                break
    save_checkpoint(model, out / "model.pt", step)
    log.info("training done in %.0fs", time.time() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="zhie train ner", description=__doc__)
    for f in NerTrainConfig.__dataclass_fields__.values():
        if f.name == "extra":
            p.add_argument("--extra", nargs="*", default=[], choices=["weibo", "cluener"])
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train_ner(NerTrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
