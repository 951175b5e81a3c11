"""Tokenisers behind one interface: ids, exact code-point offsets into the caller's string, word starts.

- :class:`CharTokenizer`: zhie's own models, one token per code point (``CharVocab`` after zhie's
  length-keeping normalisation), so token ``i`` is character ``i``.
- :class:`WordPieceTokenizer`: BERT WordPiece from a folder's ``vocab.txt`` through the ``tokenizers``
  library (BertNormalizer + BertPreTokenizer + WordPiece, exactly what ``BertTokenizerFast`` builds):
  lower-casing, accent stripping, CJK characters one token each, Latin words and digits in several
  pieces, ``[UNK]`` for what the vocabulary lacks. The library's offsets already point into the
  original string whatever its normaliser did (full-width letters, combining marks, removed control
  characters); Python strings are code points, so they are code-point offsets.

``word_start`` marks the first piece of each pre-tokenised word: a token classifier labels a word by
its first piece and its span covers all of its pieces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .normalize import normalize
from .vocab import BOS, EOS, PAD, CharVocab

# ids of this string identify a tokeniser: it mixes CJK, ASCII words and digits, full-width forms,
# an emoji, a combining accent and a rare ideograph (llama.cpp's converter fingerprints the same way)
FINGERPRINT_TEXT = "华为Mate60 Pro起售价6999元，iPhone15在ＡＢＣ商场😀 café 𠀀。"


@dataclass(frozen=True, slots=True)
class Encoding:
    ids: np.ndarray  # int64 (n,)
    offsets: np.ndarray  # int64 (n, 2): [start, end) code points of the caller's string
    word_start: np.ndarray  # bool (n,)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True, slots=True)
class Specials:
    cls: int = BOS
    sep: int = EOS
    pad: int = PAD


def _fix_surrogates(text: str) -> str:
    """Lone surrogates (valid in a Python string, not in UTF-8) become U+FFFD, one for one."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


class CharTokenizer:
    kind = "char"
    one_per_char = True  # token i is code point i

    def __init__(self, vocab: CharVocab):
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.vocab)

    def ids(self, text: str) -> np.ndarray:
        return self.vocab.encode(normalize(text), normalized=True)

    def encode(self, text: str) -> Encoding:
        ids = self.ids(text)
        n = len(ids)
        ar = np.arange(n, dtype=np.int64)
        return Encoding(ids, np.stack([ar, ar + 1], axis=1) if n else np.zeros((0, 2), np.int64), np.ones(n, bool))


class WordPieceTokenizer:
    kind = "wordpiece"
    one_per_char = False

    def __init__(self, vocab_path: str | Path, *, lowercase: bool = True, strip_accents: bool | None = None,
                 chinese_chars: bool = True, clean_text: bool = True, unk: str = "[UNK]",
                 max_chars_per_word: int = 100, split: str = "bert"):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        vocab_path = Path(vocab_path)
        tokens = vocab_path.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab: dict[str, int] = {}
        for i, t in enumerate(tokens):  # a repeated line: the last id wins, as in BertTokenizer's load_vocab
            self.vocab[t] = i
        if unk not in self.vocab:
            raise ValueError(f"{vocab_path}: the unknown token {unk!r} is not in the vocabulary")
        tok = Tokenizer(models.WordPiece(self.vocab, unk_token=unk, max_input_chars_per_word=max_chars_per_word))
        tok.normalizer = normalizers.BertNormalizer(clean_text=clean_text, handle_chinese_chars=chinese_chars,
                                                    strip_accents=strip_accents, lowercase=lowercase)
        if split == "bert":
            tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        elif split == "chars":  # every character alone (ModelScope's is_split_into_words, CKIP): see _encode_chars
            tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        else:
            raise ValueError(f"tokenizer split {split!r}: expected 'bert' or 'chars'")
        self._tok = tok
        self.unk_id = self.vocab[unk]
        self.split = split
        self._char_ids: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def token_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def encode(self, text: str) -> Encoding:
        if self.split == "chars":
            return self._encode_chars(_fix_surrogates(text))
        return self._convert(self._tok.encode(_fix_surrogates(text), add_special_tokens=False))

    def _encode_chars(self, text: str) -> Encoding:
        """Each code point encoded alone, as ModelScope's ``_tokenize_text_by_words`` does: what encodes to
        nothing (a space, a control character) is one ``[UNK]``; the first piece of a character starts a word."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        ws: list[bool] = []
        for i, ch in enumerate(text):
            pieces = self._char_ids.get(ch)
            if pieces is None:
                pieces = self._tok.encode(ch, add_special_tokens=False).ids or [self.unk_id]
                if len(self._char_ids) < 65536:
                    self._char_ids[ch] = pieces
            ids += pieces
            offsets += [(i, i + 1)] * len(pieces)
            ws += [True] + [False] * (len(pieces) - 1)
        n = len(ids)
        return Encoding(np.asarray(ids, np.int64), np.asarray(offsets, np.int64).reshape(n, 2), np.asarray(ws, bool))

    def ids(self, text: str) -> np.ndarray:
        return self.encode(text).ids

    @staticmethod
    def _convert(enc) -> Encoding:
        n = len(enc.ids)
        ids = np.asarray(enc.ids, dtype=np.int64)
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(n, 2)
        words = enc.word_ids
        ws = np.ones(n, dtype=bool)
        for i in range(1, n):
            ws[i] = words[i] != words[i - 1]
        return Encoding(ids, offsets, ws)


def load_tokenizer(config: dict, folder: str | Path) -> CharTokenizer | WordPieceTokenizer:
    """The tokeniser a model folder's ``config.json`` describes (docs/model-folder.md)."""
    folder = Path(folder)
    spec = dict(config.get("tokenizer") or {"kind": "char"})
    kind = spec.pop("kind", "char")
    vocab = folder / spec.pop("vocab", config.get("vocab", "vocab.txt"))
    if not vocab.is_file():
        raise FileNotFoundError(f"{vocab} is missing")
    if kind == "char":
        return CharTokenizer(CharVocab.load(vocab))
    if kind == "wordpiece":
        known = {"lowercase", "strip_accents", "chinese_chars", "clean_text", "unk", "max_chars_per_word", "split"}
        extra = set(spec) - known
        if extra:
            raise ValueError(f"{folder / 'config.json'}: unknown tokenizer keys {sorted(extra)}")
        return WordPieceTokenizer(vocab, **spec)
    raise ValueError(f"{folder / 'config.json'}: unknown tokenizer kind {kind!r} (expected 'char' or 'wordpiece')")


def load_specials(config: dict) -> Specials:
    s = config.get("specials") or {}
    return Specials(int(s.get("cls", BOS)), int(s.get("sep", EOS)), int(s.get("pad", PAD)))


def fingerprint(tokenizer) -> str:
    """sha256 of the ids of :data:`FINGERPRINT_TEXT`, and of their offsets: changes when tokenisation does."""
    enc = tokenizer.encode(FINGERPRINT_TEXT)
    h = hashlib.sha256(enc.ids.astype("<i8").tobytes() + enc.offsets.astype("<i8").tobytes())
    return h.hexdigest()[:16]
