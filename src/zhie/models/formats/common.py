"""What the BERT-family formats share: label lists and schemes, the WordPiece tokeniser block, specials.

No torch here (the tokeniser reference is loaded lazily through transformers)."""

from __future__ import annotations

import re
from pathlib import Path

from . import ImportError_, read_json

GENERIC = re.compile(r"^LABEL_\d+$")
OUTSIDE_LIKE = re.compile(r"^(\[[^\]]+\]|<[^>]+>)$")  # UER's [PAD], <pad>, [CLS]...: read as outside
TAG = re.compile(r"^([BIESM])-(.+)$")


# -- labels -----------------------------------------------------------------------------------------
def labels_from_map(mapping: dict, where: str, id_to_label: bool) -> list[str]:
    """A label list in id order from ``{id: label}`` (``id_to_label``) or ``{label: id}``; ids cast with int()."""
    pairs = []
    try:
        for k, v in mapping.items():
            pairs.append((int(k), str(v)) if id_to_label else (int(v), str(k)))
    except (TypeError, ValueError):
        raise ImportError_(f"{where}: label ids must be integers") from None
    pairs.sort()
    ids = [i for i, _ in pairs]
    if ids != list(range(len(ids))):
        raise ImportError_(f"{where}: label ids {ids} are not 0..{len(ids) - 1}")
    return [lab for _, lab in pairs]


def is_generic(labels: list[str]) -> bool:
    return all(GENERIC.match(lab) for lab in labels)


def apply_user_labels(found: list[str] | None, user: list[str] | None, n: int, where: str) -> list[str]:
    """The label list: ``--labels`` when given (it must name all ``n`` classes), else the checkpoint's own,
    which must not be transformers' generic LABEL_k."""
    if user is not None:
        if len(user) != n:
            raise ImportError_(f"--labels names {len(user)} labels but the model's head has {n} outputs")
        return list(user)
    if found is None:
        raise ImportError_(f"{where}: no label names found; give them in the head's order with --labels A,B,...")
    if len(found) != n:
        raise ImportError_(f"{where}: {len(found)} labels but the model's head has {n} outputs")
    if is_generic(found):
        raise ImportError_(f"{where}: the labels are transformers' generic {found[0]}..{found[-1]}; give their names in "
                           "order with --labels A,B,...")
    return found


def ner_scheme(labels: list[str], where: str) -> tuple[list[str], str]:
    """(labels as the runtime reads them, scheme). BIO, BIOES, or BMES (M- becomes I-); any type names;
    bracketed labels such as UER's ``[PAD]`` are outside. Anything else is an error naming the label."""
    out: list[str] = []
    prefixes: dict[str, set[str]] = {}
    if "O" not in labels:
        raise ImportError_(f"{where}: no 'O' label in {labels}: not a BIO / BIOES / BMES tag set")
    if len(set(labels)) != len(labels):
        raise ImportError_(f"{where}: labels repeat: {labels}")
    for lab in labels:
        if lab == "O" or OUTSIDE_LIKE.match(lab):
            out.append(lab)
            continue
        m = TAG.match(lab)
        if not m:
            raise ImportError_(f"{where}: label {lab!r} is not O, B-/I-/E-/S-/M- plus a type, or a bracketed special "
                               "such as [PAD]: unknown label scheme")
        p, typ = m.groups()
        prefixes.setdefault(typ, set()).add(p)
        out.append(("I-" + typ) if p == "M" else lab)
    used = set().union(*prefixes.values()) if prefixes else set()
    if not prefixes:
        raise ImportError_(f"{where}: no entity labels in {labels}")
    for typ, ps in prefixes.items():
        if "M" in ps and "I" in ps:
            raise ImportError_(f"{where}: type {typ!r} has both M- and I- labels: unknown label scheme")
        if "B" not in ps and "S" not in ps:
            raise ImportError_(f"{where}: type {typ!r} has no B- (or S-) label: unknown label scheme")
    if len(set(out)) != len(out):
        raise ImportError_(f"{where}: labels repeat once M- is read as I-: {labels}")
    return out, ("bioes" if used & {"E", "S", "M"} else "bio")


SENTIMENT_NAMES = {
    "negative": ("负面", "negative", "neg", "消极", "差评", "负向"),
    "positive": ("正面", "positive", "pos", "积极", "好评", "正向"),
    "neutral": ("中性", "neutral", "neu", "中立"),
}


def sentiment_labels(labels: list[str]) -> tuple[list[str], list[str] | None]:
    """(labels, source_labels): names mapped to negative/positive(/neutral) when every one of them maps to a
    different class; otherwise the names unchanged and no source_labels."""
    lookup = {alias.lower(): canon for canon, aliases in SENTIMENT_NAMES.items() for alias in aliases}
    mapped = []
    for lab in labels:
        key = lab.strip().lower()
        key = re.sub(r"\s*\(.*\)$", "", key)  # UER's "negative (stars 1, 2 and 3)"
        mapped.append(lookup.get(key))
    if None in mapped or len(set(mapped)) != len(mapped):
        return list(labels), None
    if mapped == list(labels):
        return mapped, None
    return mapped, list(labels)


# -- tokeniser --------------------------------------------------------------------------------------
def read_vocab(path: Path) -> list[str]:
    if not path.is_file():
        raise ImportError_(f"{path} is missing: a WordPiece vocab.txt is needed")
    try:
        tokens = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ImportError_(f"{path} is not readable UTF-8 text: {e}") from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [t.rstrip("\r") for t in tokens]
    if len(tokens) < 5:
        raise ImportError_(f"{path}: {len(tokens)} entries is not a WordPiece vocabulary")
    return tokens


def _token_name(v, default: str) -> str:
    if isinstance(v, dict):  # {"content": "[CLS]", ...} (AddedToken as saved)
        v = v.get("content")
    return v if isinstance(v, str) and v else default


def wordpiece(src: Path, split: str = "bert") -> tuple[dict, dict, dict, list[Path]]:
    """(tokenizer block, specials, files to copy, source files read) for the folder's BERT WordPiece tokeniser.

    Casing, accents and Chinese-character splitting come from tokenizer_config.json (transformers'
    BertTokenizer defaults when absent: lowercase, accents stripped with lowercasing, CJK split)."""
    vocab_path = src / "vocab.txt"
    vocab = read_vocab(vocab_path)
    read = [vocab_path]
    tc: dict = {}
    if (src / "tokenizer_config.json").is_file():
        tc = read_json(src / "tokenizer_config.json")
        read.append(src / "tokenizer_config.json")
    stm: dict = {}
    if (src / "special_tokens_map.json").is_file():
        stm = read_json(src / "special_tokens_map.json")
        read.append(src / "special_tokens_map.json")
    for k in ("do_lower_case", "tokenize_chinese_chars"):
        if k in tc and not isinstance(tc[k], bool):
            raise ImportError_(f"{src / 'tokenizer_config.json'}: {k} must be true or false, got {tc[k]!r}")
    if tc.get("strip_accents") not in (None, True, False):
        raise ImportError_(f"{src / 'tokenizer_config.json'}: strip_accents must be true, false or null")
    names = {r: _token_name(stm.get(f"{r}_token", tc.get(f"{r}_token")), f"[{r.upper()}]") for r in ("cls", "sep", "pad", "unk")}
    index: dict[str, int] = {}
    for i, t in enumerate(vocab):
        index.setdefault(t, i)
    missing = [n for n in names.values() if n not in index]
    if missing:
        raise ImportError_(f"{vocab_path}: the special tokens {missing} are not in the vocabulary")
    block = {
        "kind": "wordpiece", "vocab": "vocab.txt", "lowercase": bool(tc.get("do_lower_case", True)),
        "strip_accents": tc.get("strip_accents"), "chinese_chars": bool(tc.get("tokenize_chinese_chars", True)),
        "clean_text": True, "unk": names["unk"], "max_chars_per_word": 100, "split": split,
    }
    specials = {"cls": index[names["cls"]], "sep": index[names["sep"]], "pad": index[names["pad"]], "unk": index[names["unk"]]}
    return block, specials, {"vocab.txt": vocab_path}, read


def reference_tokenizer(src: Path):
    """The original's tokeniser as transformers loads it from the folder (never from a hub)."""
    from transformers import BertTokenizer

    try:
        return BertTokenizer.from_pretrained(str(src), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any failure of the reference tokeniser names the folder
        raise ImportError_(f"{src}: transformers cannot read the tokeniser files: {type(e).__name__}: {e}") from None


def max_positions(n: int) -> int:
    return min(512, int(n))
