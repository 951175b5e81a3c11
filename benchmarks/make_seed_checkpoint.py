"""Build the checkpoint of ``zhie bench --baseline seed``: a bert-base-sized Chinese NER model with random weights.

A Hugging Face ``BertForTokenClassification`` folder as a user downloads one (``config.json``,
``model.safetensors``, ``vocab.txt``): ``BertConfig()`` defaults (12 layers, hidden 768, 12 heads, 512 positions)
with bert-base-chinese's 21,128-row vocabulary and a BIO label set. The weights are random (the benchmark
measures speed and memory, not accuracy); the classifier is scaled up so that decoding finds entities of every
type, as a trained model does, rather than near-uniform scores. ``--hidden 32 --layers 2`` builds the tiny model
of the CI test of the wiring (tests/test_bench_seed.py).

The vocabulary has bert-base-chinese's layout: ``[PAD]``, ``[unused1..99]``, ``[UNK] [CLS] [SEP] [MASK]``, then
punctuation, digits and digit wordpieces, Latin letters and wordpieces, and CJK characters from U+4E00 on to
fill 21,128 rows, so the runtime's tokenisation costs what it costs on the real vocabulary: CJK characters one
piece each, Latin words and numbers split into several, the rest ``[UNK]``.

    .venv/bin/python benchmarks/make_seed_checkpoint.py runs/seed-bert-base
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

VOCAB_SIZE = 21128  # bert-base-chinese, chinese-roberta-wwm-ext, RaNER's and StructBERT's encoders
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]  # MSRA's types in BIO, as RaNER's msra model
LATIN_PIECES = ["the", "and", "of", "to", "in", "is", "for", "on", "with", "as", "at", "by", "from", "new", "china",
                "beijing", "shanghai", "apple", "ip", "mac", "pro", "max", "nba", "ceo", "app", "com", "www", "http",
                "##hone", "##ad", "##book", "##ing", "##ed", "##er", "##es", "##ly", "##ion", "##s", "##tion", "##al",
                "##ic", "##an", "##en", "##on", "##in", "##ar", "##or", "##le", "##ma", "##na", "##ng"]
FULLWIDTH_PUNCT = list("，。、；：？！“”‘’（）《》【】—…·～￥％")


def vocab(size: int = VOCAB_SIZE) -> list[str]:
    """``size`` distinct tokens in bert-base-chinese's layout (see the module docstring)."""
    head = ["[PAD]", *(f"[unused{i}]" for i in range(1, 100)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    head += list(string.punctuation) + FULLWIDTH_PUNCT
    head += list(string.digits) + [f"##{d}" for d in string.digits] + [str(n) for n in range(10, 100)]
    head += ["##" + str(n) for n in range(10, 100)] + [str(y) for y in range(1990, 2031)]
    head += list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase] + LATIN_PIECES
    head = list(dict.fromkeys(head))
    if size < len(head) + 1:
        raise SystemExit(f"--vocab-size {size}: at least {len(head) + 1} (the special, Latin and digit rows)")
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + size - len(head))]
    if ord(cjk[-1]) > 0x9FFF:
        raise SystemExit(f"--vocab-size {size}: more rows than the CJK block U+4E00..U+9FFF fills")
    return head + cjk


def build(out: Path, hidden: int = 768, layers: int = 12, heads: int = 12, intermediate: int | None = None,
          vocab_size: int = VOCAB_SIZE, seed: int = 0) -> Path:
    """Write the folder; returns it. ``out`` must not exist or be empty."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} already exists and is not empty")
    torch.manual_seed(seed)
    id2label = dict(enumerate(LABELS))
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=intermediate or 4 * hidden, id2label=id2label,
                     label2id={v: k for k, v in id2label.items()})
    model = BertForTokenClassification(cfg).eval()
    with torch.no_grad():  # entity-shaped scores: logits of a few units, O favoured, as a trained head gives
        w = model.classifier.weight
        w.copy_(torch.randn(w.shape) * 3.0 / hidden ** 0.5)
        model.classifier.bias.copy_(torch.tensor([2.0] + [0.0] * (len(LABELS) - 1)))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for extra in ("generation_config.json",):
        (out / extra).unlink(missing_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab(vocab_size)) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the folder to write (must not exist, or be empty)")
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=None, help="attention heads (default: hidden / 64, at least 1)")
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    heads = a.heads or max(1, a.hidden // 64)
    out = build(Path(a.out), a.hidden, a.layers, heads, vocab_size=a.vocab_size, seed=a.seed)
    files = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
    print(json.dumps({"out": str(out), "files": files, "labels": LABELS}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
