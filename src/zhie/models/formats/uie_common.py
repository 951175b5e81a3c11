"""What the two pointer-network formats (PaddleNLP UIE, ModelScope SiameseUIE) share: the folder's WordPiece
tokeniser settings, its special ids, the additive attention mask and the texts the parity check reads.

Nothing here imports torch at module level.
"""

from __future__ import annotations

from pathlib import Path

from . import ImportError_

MAX_POSITIONS = 512  # Taskflow's max_seq_len and SiameseUIE's BERT positions (the ERNIE table has 2048 rows)

# mixed Chinese / Latin / digits / full-width / emoji: what the import's parity check always reads
PARITY_TEXTS = (
    "2023年9月，华为在深圳发布了Mate60 Pro，起售价6999元。",
    "张伟教授昨天在北京大学作了关于iPhone15和5G的报告😀。",
    "ＡＢＣ公司的李娜说：“这家餐厅的服务很好，价格也不贵。”",
)
PARITY_PROMPTS = ("人物", "地点", "组织机构", "时间")

MASK_BIAS = -10000.0  # added to the attention scores of padding (Paddle ERNIE and ModelScope both use -1e4)


def wordpiece_for(src: Path, config) -> tuple[dict, dict, int]:
    """(tokenizer block, specials, max_positions) of a pointer-network folder: its WordPiece tokeniser read as
    the BERT formats read theirs, checked against the encoder's embedding rows and positions."""
    from .common import read_vocab, wordpiece

    tokenizer, specials, _, _ = wordpiece(src)
    n_vocab = len(read_vocab(src / "vocab.txt"))
    if n_vocab > config.vocab_size:
        raise ImportError_(f"{src / 'vocab.txt'} has {n_vocab} entries but the embeddings only {config.vocab_size} rows")
    return tokenizer, specials, min(MAX_POSITIONS, config.max_position_embeddings)


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
