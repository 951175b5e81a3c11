"""What the two pointer-network formats (PaddleNLP UIE, ModelScope SiameseUIE) share: the folder's WordPiece
tokeniser settings, its special ids, the additive attention mask and the texts the parity check reads.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import ImportError_

# mixed Chinese / Latin / digits / full-width / emoji: what the import's parity check always reads
PARITY_TEXTS = (
    "2023年9月，华为在深圳发布了Mate60 Pro，起售价6999元。",
    "张伟教授昨天在北京大学作了关于iPhone15和5G的报告😀。",
    "ＡＢＣ公司的李娜说：“这家餐厅的服务很好，价格也不贵。”",
)
PARITY_PROMPTS = ("人物", "地点", "组织机构", "时间")

MASK_BIAS = -10000.0  # added to the attention scores of padding (Paddle ERNIE and ModelScope both use -1e4)


def read_vocab(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise ImportError_(f"{path} is missing (the WordPiece vocabulary)")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ImportError_(f"{path} is not a readable UTF-8 vocabulary: {e}") from None
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, t in enumerate(lines):
        vocab[t.rstrip("\r")] = i
    return vocab


def wordpiece_config(src: Path) -> tuple[dict, dict, dict[str, int]]:
    """(tokenizer block, specials block, vocab) for ``src``: BERT WordPiece from its ``vocab.txt`` with the
    casing ``tokenizer_config.json`` states (BertTokenizer's defaults when the file is absent: lower-cased,
    Chinese characters split, accents stripped with the lower-casing)."""
    vocab = read_vocab(src / "vocab.txt")
    tc: dict = {}
    if (src / "tokenizer_config.json").is_file():
        try:
            tc = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ImportError_(f"{src / 'tokenizer_config.json'} is not readable JSON: {e}") from None
        if not isinstance(tc, dict):
            raise ImportError_(f"{src / 'tokenizer_config.json'}: expected a JSON object")
    names = {k: tc.get(f"{k}_token", d) for k, d in (("cls", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("unk", "[UNK]"))}
    for k, t in names.items():
        if not isinstance(t, str):  # transformers' AddedToken form
            t = t.get("content") if isinstance(t, dict) else None
            names[k] = t
        if names[k] not in vocab:
            raise ImportError_(f"{src / 'vocab.txt'}: the {k} token {names[k]!r} is not in the vocabulary")
    tokenizer = {
        "kind": "wordpiece",
        "vocab": "vocab.txt",
        "lowercase": bool(tc.get("do_lower_case", True)),
        "strip_accents": tc.get("strip_accents"),
        "chinese_chars": bool(tc.get("tokenize_chinese_chars", True)),
        "clean_text": True,
        "unk": names["unk"],
        "max_chars_per_word": 100,
        "split": "bert",
    }
    specials = {"cls": vocab[names["cls"]], "sep": vocab[names["sep"]], "pad": vocab[names["pad"]]}
    return tokenizer, specials, vocab


def hf_tokenizer(src: Path, tokenizer: dict):
    """The tokeniser the originals run: ``BertTokenizerFast.from_pretrained(folder)`` (uie_pytorch's predictor;
    ModelScope's ``AutoTokenizer(use_fast=True)`` resolves to it for a BERT folder), with the casing read
    above: the reference side of the import's token check. (transformers 5 takes the vocabulary as
    ``vocab=``; a ``vocab_file=`` argument is silently ignored and every token becomes [UNK].)"""
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(str(src), local_files_only=True, do_lower_case=tokenizer["lowercase"],
                                            strip_accents=tokenizer["strip_accents"],
                                            tokenize_chinese_chars=tokenizer["chinese_chars"], unk_token=tokenizer["unk"])
    if len(tok.get_vocab()) < 10:
        raise ImportError_(f"{src / 'vocab.txt'}: the reference tokeniser loaded only {len(tok.get_vocab())} tokens")
    return tok


def extended_mask(mask):
    """(batch, seq) 0/1 -> (batch, 1, 1, seq) additive attention bias."""
    import torch

    return (1.0 - mask[:, None, None, :].to(torch.float32)) * MASK_BIAS
