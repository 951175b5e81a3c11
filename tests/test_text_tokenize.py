"""zhie.text.tokenize: WordPiece as BertTokenizerFast does it, offsets exact on any Unicode input, and
windows over words of unequal token cost."""

from __future__ import annotations

import bisect
import functools
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhie.text.tokenize import CharTokenizer, WordPieceTokenizer, fingerprint, load_specials, load_tokenizer
from zhie.text.vocab import CharVocab
from zhie.text.windows import make_windows_at

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "华", "为", "起", "售", "价", "元", "，", "。", "在", "商", "场",
         "ip", "##hone", "##15", "mate", "##60", "pro", "6", "##9", "##99", "1", "##5", "a", "##b", "##c", "abc",
         "cafe", "ca", "##fe", "!", "😀", "x", "##y", "e", "##e"]

TEXTS = [
    "华为Mate60 Pro起售价6999元，iPhone15在ＡＢＣ商场😀",
    "café CAFÉ cafe\u0301 e\u0301e",  # precomposed and combining accents
    "x\u200by\u00adx\tab\r\n华\x00为",  # zero-width, soft hyphen, control characters, tabs
    "𠀀𠀁华\U0001F600😀😀",  # characters beyond the BMP
    "ｉｐｈｏｎｅ１５！",  # full-width letters and digits
    "   ",
    "",
]


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("wp") / "vocab.txt"
    p.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("lowercase,strip", [(True, None), (False, None), (True, False)])
def test_wordpiece_matches_bert_tokenizer_fast(vocab_file, lowercase, strip):
    transformers = pytest.importorskip("transformers")
    # transformers 5: the tokenizers-backed BertTokenizer takes the vocabulary file as ``vocab``
    ref = transformers.BertTokenizer(vocab=str(vocab_file), do_lower_case=lowercase, strip_accents=strip)
    ours = WordPieceTokenizer(vocab_file, lowercase=lowercase, strip_accents=strip)
    for text in TEXTS:
        want = ref(text, add_special_tokens=False, return_offsets_mapping=True)
        got = ours.encode(text)
        assert got.ids.tolist() == want["input_ids"], text
        assert [tuple(o) for o in got.offsets.tolist()] == [tuple(o) for o in want["offset_mapping"]], text


def test_latin_words_split_into_pieces_and_word_starts_mark_the_first(vocab_file):
    tok = WordPieceTokenizer(vocab_file)
    enc = tok.encode("iPhone15在商场")
    pieces = [VOCAB[i] for i in enc.ids]
    assert pieces == ["ip", "##hone", "##15", "在", "商", "场"]
    assert enc.word_start.tolist() == [True, False, False, True, True, True]
    assert enc.offsets.tolist() == [[0, 2], [2, 6], [6, 8], [8, 9], [9, 10], [10, 11]]


def test_unknown_characters_are_unk_with_exact_offsets(vocab_file):
    tok = WordPieceTokenizer(vocab_file)
    text = "华龘为"
    enc = tok.encode(text)
    assert enc.ids.tolist() == [VOCAB.index("华"), VOCAB.index("[UNK]"), VOCAB.index("为")]
    assert [text[a:b] for a, b in enc.offsets.tolist()] == ["华", "龘", "为"]


def test_lone_surrogates_do_not_crash_and_keep_offsets(vocab_file):
    tok = WordPieceTokenizer(vocab_file)
    text = "华\ud800为"  # valid in a Python string (JSON "\\ud800"), not in UTF-8: read as U+FFFD, which BERT drops
    enc = tok.encode(text)
    assert [text[a:b] for a, b in enc.offsets.tolist()] == ["华", "为"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("华为起售价元，。在商场ipPhoneIPHONE15690abcABCé\u0301ｉｐ１😀𠀀 \t\n\u200bx龘")) | st.characters(),
               max_size=60))
def test_wordpiece_offsets_are_exact_on_any_text(text):
    tok = _tokenizer()
    enc = tok.encode(text)
    prev_end = 0
    for (a, b), i, ws in zip(enc.offsets.tolist(), enc.ids.tolist(), enc.word_start.tolist()):
        assert 0 <= prev_end <= a < b <= len(text)
        prev_end = b
        piece = VOCAB[i]
        if piece != "[UNK]":  # the piece is what the normaliser makes of exactly that slice
            norm = tok._tok.normalizer.normalize_str(text[a:b])
            assert norm == piece.removeprefix("##"), (text, a, b, piece)
            assert ws == (not piece.startswith("##"))


@functools.lru_cache(maxsize=1)
def _tokenizer() -> WordPieceTokenizer:
    p = Path(tempfile.mkdtemp()) / "vocab.txt"
    p.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return WordPieceTokenizer(p)


def test_split_chars_encodes_every_character_alone(vocab_file):
    tok = WordPieceTokenizer(vocab_file, split="chars")
    enc = tok.encode("ab 华\u200b")
    # "b" alone is only "##b" in the vocabulary; a space or a zero-width character encodes to nothing: [UNK]
    assert [VOCAB[i] for i in enc.ids] == ["a", "[UNK]", "[UNK]", "华", "[UNK]"]
    assert enc.offsets.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert enc.word_start.all()


def test_char_tokenizer_is_one_token_per_code_point():
    tok = CharTokenizer(CharVocab(["<s>", "<pad>", "</s>", "<unk>", "华", "a"]))
    text = "华Ａ😀a"
    enc = tok.encode(text)
    assert enc.ids.tolist() == [4, 3, 3, 5]  # full-width Ａ normalises to A, which this vocabulary lacks
    assert enc.offsets.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert tok.one_per_char and enc.word_start.all()


def test_load_tokenizer_from_config(vocab_file, tmp_path):
    (tmp_path / "vocab.txt").write_text(vocab_file.read_text(encoding="utf-8"), encoding="utf-8")
    tok = load_tokenizer({"tokenizer": {"kind": "wordpiece", "vocab": "vocab.txt", "lowercase": True}}, tmp_path)
    assert isinstance(tok, WordPieceTokenizer)
    assert fingerprint(tok) == fingerprint(WordPieceTokenizer(vocab_file))
    assert fingerprint(tok) != fingerprint(WordPieceTokenizer(vocab_file, lowercase=False))
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        load_tokenizer({"tokenizer": {"kind": "bpe"}}, tmp_path)
    with pytest.raises(ValueError, match="unknown tokenizer keys"):
        load_tokenizer({"tokenizer": {"kind": "wordpiece", "casing": 1}}, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_tokenizer({"tokenizer": {"kind": "wordpiece", "vocab": "nope.txt"}}, tmp_path)
    s = load_specials({"specials": {"cls": 2, "sep": 3, "pad": 0}})
    assert (s.cls, s.sep, s.pad) == (2, 3, 0)


def _old_make_windows_at(n, size, overlap, breaks):
    """The char-only window builder as it was before windows learnt unit costs (kept here as the
    reference the cost-free path must reproduce exactly)."""
    from zhie.text.windows import Window

    if n <= size:
        return [Window(0, n, 0, n)]
    min_step = max(1, (size - overlap) // 2)
    starts = [0]
    while starts[-1] + size < n:
        s, e = starts[-1], starts[-1] + size
        lo, hi = s + min_step, e - overlap
        j = bisect.bisect_right(breaks, hi) - 1
        nxt = breaks[j] if j >= 0 and breaks[j] >= lo else hi
        starts.append(min(nxt, n - size) if nxt + size > n and n - size > s else nxt)
    out = []
    for i, st_ in enumerate(starts):
        e = min(n, st_ + size)
        own_s = 0 if i == 0 else out[-1].own_end
        own_e = n if i == len(starts) - 1 else (starts[i + 1] + e) // 2
        out.append(Window(st_, e, own_s, own_e))
    return out


def test_unit_cost_windows_reproduce_char_windows_exactly():
    rng = random.Random(7)
    for _ in range(3000):
        n, size = rng.randint(0, 300), rng.randint(1, 50)
        ov = rng.randint(0, size - 1)
        br = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 20)))) if n > 1 else []
        want = _old_make_windows_at(n, size, ov, br)
        assert make_windows_at(n, size, ov, br) == want
        assert make_windows_at(n, size, ov, br, cum=list(range(n + 1))) == want


def test_windows_over_words_of_several_tokens_stay_within_the_token_budget():
    rng = random.Random(11)
    for _ in range(3000):
        n, size = rng.randint(0, 200), rng.randint(1, 40)
        ov = rng.randint(0, size - 1)
        cum = np.concatenate([[0], np.cumsum([rng.choice([1, 1, 1, 2, 3, 9, 60]) for _ in range(n)])]).tolist()
        br = sorted({rng.randint(1, n - 1) for _ in range(rng.randint(0, 12))}) if n > 1 else []
        wins = make_windows_at(n, size, ov, br, cum=cum)
        assert wins[0].own_start == 0 and wins[-1].own_end == n
        for w, nxt in zip(wins, wins[1:]):
            assert w.own_end == nxt.own_start and nxt.start > w.start
        for w in wins:
            assert w.start <= w.own_start <= w.own_end <= w.end
            assert cum[w.end] - cum[w.start] <= size or w.end - w.start == 1  # one over-long word alone
