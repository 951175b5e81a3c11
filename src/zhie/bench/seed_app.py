"""The seed services' stack, for ``zhie bench --baseline seed``: a Hugging Face token-classification folder
served as the services zhie replaces serve it. Not part of zhie's product.

transformers ``AutoModelForTokenClassification`` + ``AutoTokenizer`` (the fast WordPiece tokeniser) from the
folder ``ZHIE_SEED_MODEL``, torch's dynamic INT8 quantisation of the Linear layers
(``torch.ao.quantization.quantize_dynamic``), Flask behind gunicorn (``--preload``, sync workers). A request
is tokenised (texts past 512 tokens cut into 512-token pieces without overlap, as the originals do), run
through the model in batches of 8 pieces, each word labelled by the argmax of its first piece (ModelScope's
label mask, Hugging Face's ``first`` aggregation), and the word labels chunked into entities (``B-X``/``I-X``
of one type; an ``I-X`` that follows no ``X`` starts an entity, as the originals' chunkers do), with
code-point offsets into the request's text.

torch with ``--preload`` hangs in forked workers when its intra-op thread pool was started in the master, so
the model is loaded with one torch thread (set before any torch work), as its users do.

    ZHIE_SEED_MODEL=runs/seed-bert-base gunicorn --preload -w 2 -b 127.0.0.1:8100 zhie.bench.seed_app:app
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from flask import Flask

torch.set_num_threads(int(os.environ.get("ZHIE_BASELINE_THREADS", "1")))
torch.set_num_interop_threads(1)

MAX_TOKENS = 512
BATCH = 8


def chunk_entities(labels: list[str], spans: list[tuple[int, int]], text: str) -> list[dict]:
    """Word labels (BIO) and the words' character spans -> entities ``{type, start, end, text}``."""
    out: list[dict] = []
    cur: dict | None = None
    for lab, (s, e) in zip(labels, spans):
        tag, _, typ = lab.partition("-")
        if tag == "I" and cur is not None and cur["type"] == typ:
            cur["end"] = e
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        if tag in ("B", "I") and typ:
            cur = {"type": typ, "start": s, "end": e}
    if cur is not None:
        out.append(cur)
    for ent in out:
        ent["text"] = text[ent["start"] : ent["end"]]
    return out


class SeedNer:
    def __init__(self, folder: str | Path):
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").exists():
            raise SystemExit(f"ZHIE_SEED_MODEL={folder}: no config.json (a Hugging Face token-classification folder)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
        self.model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @torch.inference_mode()
    def __call__(self, text: str) -> list[dict]:
        enc = self.tokenizer(text, truncation=True, max_length=MAX_TOKENS, return_overflowing_tokens=True, stride=0,
                             return_offsets_mapping=True, padding=True, return_tensors="pt")
        n = enc["input_ids"].shape[0]
        labels: list[str] = []
        spans: list[tuple[int, int]] = []
        for b in range(0, n, BATCH):
            batch = {k: enc[k][b : b + BATCH] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            pred = self.model(**batch).logits.argmax(-1)
            for r in range(pred.shape[0]):
                words = enc.word_ids(b + r)
                offsets = enc["offset_mapping"][b + r].tolist()
                prev = None
                for t, w in enumerate(words):
                    if w is None:
                        continue
                    if w != prev:  # a word's first piece gives its label; its span grows over its pieces
                        labels.append(self.labels[int(pred[r, t])])
                        spans.append(tuple(offsets[t]))
                    else:
                        spans[-1] = (spans[-1][0], offsets[t][1])
                    prev = w
        return chunk_entities(labels, spans, text)


def create_app(folder: str | Path | None = None) -> Flask:
    from .flask_ner import flask_ner_app

    return flask_ner_app(SeedNer(folder or os.environ["ZHIE_SEED_MODEL"]), "zhie-seed-baseline")


app = create_app() if os.environ.get("ZHIE_SEED_MODEL") else None
