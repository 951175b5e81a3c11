"""Would one shared encoder do? A linear sentiment probe on frozen encoders.

Issue 3 asks to prefer one encoder with task heads if it is as accurate. The three bundled models
were fine-tuned apart. This measures what sentiment would keep if it read another model's encoder:
the encoder of each model folder (read back by ``zhie.train.from_bundle``), frozen, mean-pooled over
the text as the sentiment model pools, and a logistic-regression head trained on ChnSentiCorp train
(dev texts dropped, as the bundled model was trained), scored on ChnSentiCorp dev (all 1,200 and the
862 its train file does not repeat). The sentiment model's own encoder under the same probe is the
reference: it separates what the frozen probe loses from what the other encoder lacks.

    python -m zhie.train.shared_probe --models sentiment ner extract [--datasets ../shared/datasets]
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


def pooled(bundle: str, texts: list[str], max_len: int = 160, batch_tokens: int = 8192) -> np.ndarray:
    """Mean-pooled last-layer states (len(texts), H) of a model folder's encoder, texts cut to ``max_len``."""
    import torch

    from ..models.bundle import resolve
    from ..text.vocab import BOS, EOS, PAD
    from .from_bundle import load_bundle_model
    from .loop import length_batches

    model, vocab, _, _ = load_bundle_model(resolve(bundle))
    seqs = [np.concatenate([[BOS], vocab.encode(t)[:max_len], [EOS]]) for t in texts]
    out = np.zeros((len(seqs), model.bert.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for idx in length_batches([len(s) for s in seqs], batch_tokens, random.Random(0)):
            T = max(len(seqs[i]) for i in idx)
            ids = np.full((len(idx), T), PAD, dtype=np.int64)
            mask = np.zeros((len(idx), T), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : len(seqs[i])], mask[r, : len(seqs[i])] = seqs[i], 1
            h = model.bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).float()
            out[idx] = ((h * m).sum(1) / m.sum(1)).numpy()
    return out


def fit_probe(x: np.ndarray, y: np.ndarray, epochs: int = 300, weight_decay: float = 1e-3, seed: int = 13):
    """A logistic-regression head (full-batch Adam on standardised features); returns a predict function."""
    import torch

    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    X, Y = torch.from_numpy((x - mu) / sd), torch.from_numpy(y)
    head = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(X), Y).backward()
        opt.step()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy((z - mu) / sd)).argmax(1).numpy()

    return predict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zhie.train.shared_probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["sentiment", "ner", "extract"], help="model folders or bundled names")
    p.add_argument("--datasets", default="../shared/datasets")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    from .sentiment_data import read_sentiment

    torch.set_num_threads(args.threads)
    root = Path(args.datasets) / "sentiment" / "chnsenticorp"
    dev = read_sentiment(root / "dev.tsv", "tsv")
    train_pairs = read_sentiment(root / "train.tsv", "tsv")
    dev_texts = {t.strip() for t, _ in dev}
    train = [(t, lab) for t, lab in train_pairs if t.strip() not in dev_texts]
    seen = {t.strip() for t, _ in train_pairs}
    unseen = np.array([t.strip() not in seen for t, _ in dev])
    labels = sorted({lab for _, lab in train})
    ytr = np.array([labels.index(lab) for _, lab in train])
    ydev = np.array([labels.index(lab) for _, lab in dev])
    results = {}
    for m in args.models:
        t0 = time.time()
        xtr, xdev = pooled(m, [t for t, _ in train]), pooled(m, [t for t, _ in dev])
        pred = fit_probe(xtr, ytr)(xdev)
        ok = pred == ydev
        results[m] = {"accuracy": round(float(ok.mean()), 4), "accuracy_unseen": round(float(ok[unseen].mean()), 4),
                      "seconds": round(time.time() - t0, 1)}
        log.info("%s: %s", m, results[m])
    print(json.dumps({"train": len(train), "dev": len(dev), "dev_unseen": int(unseen.sum()), "probe": results},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
