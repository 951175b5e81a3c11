"""Cache a trained NER run's encoder output (last hidden states, float16) for every character of
the NER training and dev sets, so heads on top of a frozen encoder (lexicon features, a BiLSTM)
can be trained and compared in minutes instead of hours.

    zhie train ner-cache --run runs/ner-v3 --out runs/ner-v3-cache
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from ..text.tags import bio_labels
from ..text.types import ENTITY_TYPES
from .ner import NerTrainConfig, chunks, load_corpora

log = logging.getLogger("zhie.train")


def cache_split(model, vocab, pieces, out: Path, batch_tokens: int = 4096) -> None:
    import torch

    from ..text.normalize import normalize
    from ..text.vocab import BOS, EOS, PAD

    labels = bio_labels(ENTITY_TYPES)
    index = {lab: i for i, lab in enumerate(labels)}
    texts = [t for t, _ in pieces]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    hidden = np.lib.format.open_memmap(out.with_suffix(".hidden.npy"), mode="w+", dtype=np.float16,
                                       shape=(int(offsets[-1]), model.bert.config.hidden_size))
    tags = np.concatenate([[index[t] for t in tg] for _, tg in pieces]).astype(np.int8)
    order = np.argsort(lengths, kind="stable")
    t0, done = time.time(), 0
    i = 0
    with torch.inference_mode():
        while i < len(order):
            T = int(lengths[order[i]]) + 2
            n = max(1, batch_tokens // T)
            idx = order[i : i + n]
            T = int(lengths[idx].max()) + 2
            ids = np.full((len(idx), T), PAD, dtype=np.int64)
            mask = np.zeros((len(idx), T), dtype=np.int64)
            for r, k in enumerate(idx):
                x = vocab.encode(normalize(texts[k]), normalized=True)
                ids[r, 0], ids[r, 1 : len(x) + 1], ids[r, len(x) + 1] = BOS, x, EOS
                mask[r, : len(x) + 2] = 1
            h = model.hidden(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
            for r, k in enumerate(idx):
                hidden[offsets[k] : offsets[k + 1]] = h[r, 1 : lengths[k] + 1]
            i += len(idx)
            done += len(idx)
            if done % 2000 < len(idx):
                log.info("%s: %d/%d pieces, %.0f s", out.name, done, len(order), time.time() - t0)
    hidden.flush()
    np.save(out.with_suffix(".tags.npy"), tags)
    np.save(out.with_suffix(".offsets.npy"), offsets)
    out.with_suffix(".texts.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")


def main(argv=None) -> None:
    import torch

    from .export import load_trained

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--datasets", default="../shared/datasets")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-len", type=int, default=126)
    p.add_argument("--dev-split", default="contiguous", choices=["contiguous", "random"],
                   help="dev splits left out of the training cache (zhie.train.data.split_dev); random: as v4 was trained")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    model, vocab, kind = load_trained(Path(args.run))
    if kind != "ner":
        raise SystemExit(f"{args.run} is a {kind} run, not ner")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, devs = load_corpora(NerTrainConfig(datasets=args.datasets, extra=["weibo", "cluener"], dev_split=args.dev_split))
    for name, docs in [*devs.items(), ("train", train)]:
        pieces = list(chunks(docs, args.max_len))
        log.info("%s: %d docs, %d pieces, %d chars", name, len(docs), len(pieces), sum(len(t) for t, _ in pieces))
        cache_split(model, vocab, pieces, out / name)


if __name__ == "__main__":
    main()
