"""One parity routine for imported models, used by ``zhie import`` and by the tests.

On built-in texts (Chinese, Latin words, digits, emoji, full-width forms) plus the user's ``--check`` file it
runs the original architecture in torch beside the exported ONNX graph and compares, in this order:

1. token ids: the original's tokeniser (transformers, from the source folder) against the tokeniser zhie
   serves (``zhie.text.tokenize.load_tokenizer`` on the written folder);
2. scores: the graph on a padded batch against the reference run one text at a time, padding masked out;
   the largest absolute difference;
3. decoded results. ``graph``: this module's own reference decoding (issue 21 rule 3, written here in torch
   from the rules, not from zhie's decoders) of the reference scores with the reference model's CRF, against
   the same decoding of the graph's scores with the CRF *as written into config.json*. ``runtime``: the
   reference decoding against zhie's real decoders (``NerTagger`` / ``SentimentClassifier``) serving the
   folder.

A float32 graph must agree exactly (``ParityError``); an INT8 graph's agreement is reported and only gross
breakage (NaN, wrong shape) fails. Needs torch (the ``train`` extra).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..models.formats import Converted, ImportError_
from ..runtime.session import cpu_model

BUILTIN_TEXTS = (
    "2023年5月，张三在北京的华为公司买了一部iPhone 15 Pro，花了7999元。",
    "李四说：“ＡＢＣ银行１２３号分行的服务😀很好”，王五不同意。",
    "浙江省温岭市的café naïve测试：Apple公司CEO库克今天访华。",
    "这家餐厅的服务太差了，菜也凉了，再也不来了！",
    "质量很好，物流也快👍，五星好评！iPad和MacBook都不错。",
    "ＮＢＡ球星姚明（Yao Ming）出生于上海，身高2.26米。",
)
FINGERPRINT_TEXT = "我想在apple工作1314151天～ iPhone 15 Pro，ＡＢＣ１２３ café 😀 naïve 中文，test"

FLOAT_RTOL = 2e-3  # float32 graph vs torch: |diff| <= FLOAT_RTOL * max(1, max |reference score|)
PROB_ATOL = 1e-3  # sentiment probabilities, float32


class ParityError(ImportError_):
    """The exported float32 graph does not answer as the original does."""


# -- texts ------------------------------------------------------------------------------------------------
def read_check_texts(path: str | Path) -> list[str]:
    """``--check`` file: JSON lines ``{"text": ...}``; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"--check file {path} is missing")
    texts = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ImportError_(f"--check file {path} is not readable UTF-8: {e}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ImportError_(f"{path}:{i}: not JSON: {e}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise ImportError_(f'{path}:{i}: expected {{"text": "..."}}')
        texts.append(obj["text"])
    if not texts:
        raise ImportError_(f"--check file {path} has no texts")
    return texts


# -- tokenisers -------------------------------------------------------------------------------------------
class _Enc:
    def __init__(self, ids, offsets, word_start):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        self.word_start = np.asarray(word_start, dtype=bool)


class StandInTokenizer:
    """The ``tokenizers`` library's BertWordPieceTokenizer on the folder's vocab.txt with the config's
    settings: what the check uses while ``zhie.text.tokenize`` does not exist yet."""

    def __init__(self, config: dict, folder: Path):
        from tokenizers import BertWordPieceTokenizer

        t = config["tokenizer"]
        self.split = t.get("split", "bert")
        self.tok = BertWordPieceTokenizer(str(folder / t.get("vocab", "vocab.txt")), unk_token=t.get("unk", "[UNK]"),
                                          clean_text=t.get("clean_text", True), handle_chinese_chars=t.get("chinese_chars", True),
                                          strip_accents=t.get("strip_accents"), lowercase=t.get("lowercase", True))
        self.unk = config["specials"].get("unk", self.tok.token_to_id(t.get("unk", "[UNK]")))

    def encode(self, text: str) -> _Enc:
        if self.split == "chars":
            ids, offs, starts = [], [], []
            for i, ch in enumerate(text):
                piece = self.tok.encode(ch, add_special_tokens=False).ids or [self.unk]
                ids += piece
                offs += [(i, i + 1)] * len(piece)
                starts += [True] + [False] * (len(piece) - 1)
            return _Enc(ids, offs, starts)
        e = self.tok.encode(text, add_special_tokens=False)
        words = e.word_ids
        starts = [k == 0 or words[k] != words[k - 1] for k in range(len(words))]
        return _Enc(e.ids, e.offsets, starts)


def served_tokenizer(config: dict, folder: Path):
    """(tokeniser zhie serves the folder with, its name)."""
    try:
        from ..text.tokenize import load_tokenizer
    except ModuleNotFoundError:
        return StandInTokenizer(config, folder), "stand-in: tokenizers.BertWordPieceTokenizer (zhie.text.tokenize absent)"
    return load_tokenizer(config, folder), "zhie.text.tokenize"


def reference_encode(tok, text: str, split: str) -> _Enc:
    """The original's tokenisation (transformers tokenizer from the source folder), specials left out.
    ``split == 'chars'``: ModelScope's is_split_into_words path: each character alone, [UNK] when empty."""
    if split == "chars":
        ids, offs, starts = [], [], []
        for i, ch in enumerate(text):
            piece = tok.encode(ch, add_special_tokens=False) or [tok.unk_token_id]
            ids += piece
            offs += [(i, i + 1)] * len(piece)
            starts += [True] + [False] * (len(piece) - 1)
        return _Enc(ids, offs, starts)
    e = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    words = e.word_ids()
    starts = [k == 0 or words[k] != words[k - 1] for k in range(len(words))]
    return _Enc(e["input_ids"], e["offset_mapping"], starts)


def fingerprint(config: dict, folder: Path) -> str:
    """The served tokeniser's fingerprint (``zhie.text.tokenize.fingerprint``: a hash of the ids and offsets
    of a fixed mixed-script string)."""
    try:
        from ..text.tokenize import fingerprint as fp
    except ModuleNotFoundError:  # before the runtime reads tokenisers: the ids themselves
        tok, _ = served_tokenizer(config, folder)
        return "ids:" + ",".join(str(int(i)) for i in tok.encode(FINGERPRINT_TEXT).ids)
    return fp(served_tokenizer(config, folder)[0])


# -- reference decoding (issue 21 rule 3), torch -----------------------------------------------------------
def _prefix(label: str) -> tuple[str, str]:
    if len(label) > 2 and label[1] == "-" and label[0] in "BIESM":
        return ("I" if label[0] == "M" else label[0]), label[2:]
    return "O", ""  # O, and bracketed specials such as UER's [PAD]


def allowed_transitions(labels: list[str], scheme: str):
    """(allowed[from, to], allowed_start, allowed_end) as torch bool tensors for BIO or BIOES."""
    import torch

    K = len(labels)
    pre = [_prefix(lab) for lab in labels]
    allowed = torch.ones(K, K, dtype=torch.bool)
    start = torch.ones(K, dtype=torch.bool)
    end = torch.ones(K, dtype=torch.bool)
    for j, (p, t) in enumerate(pre):
        if scheme == "bio":
            if p == "I":
                start[j] = False
                for i, (q, u) in enumerate(pre):
                    allowed[i, j] = q in ("B", "I") and u == t
        else:
            inside = p in ("I", "E")
            start[j] = not inside
            end[j] = p not in ("B", "I")
            for i, (q, u) in enumerate(pre):
                if q in ("B", "I"):  # an open entity continues with I or E of its own type
                    allowed[i, j] = inside and u == t
                else:
                    allowed[i, j] = not inside
    return allowed, start, end


def viterbi(em, start, end, trans) -> list[int]:
    """Best path of a linear-chain CRF: score = start[y0] + sum em[t, yt] + sum trans[y(t-1), yt] + end[yn]."""
    import torch

    n = em.shape[0]
    if n == 0:
        return []
    score = start + em[0]
    back = []
    for t in range(1, n):
        best, arg = (score[:, None] + trans).max(dim=0)
        back.append(arg)
        score = best + em[t]
    score = score + end
    cur = int(score.argmax())
    path = [cur]
    for arg in reversed(back):
        cur = int(arg[cur])
        path.append(cur)
    return path[::-1]


def chunk(tags: list[str], scheme: str) -> list[tuple[str, int, int]]:
    """Well-formed entities over word positions: O closes an entity (ModelScope's chunker would not), a B
    opens one, an I (or M) continues one of its own type or else opens one; BIOES: E ends one (alone: a
    one-word entity), S is one word."""
    spans: list[tuple[str, int, int]] = []
    cur: list | None = None
    for i, tag in enumerate(tags):
        p, t = _prefix(tag)
        if p in ("I", "E") and cur is not None and cur[0] == t:
            cur[2] = i + 1
            if p == "E" and scheme == "bioes":
                spans.append(tuple(cur))
                cur = None
            continue
        if cur is not None:
            spans.append(tuple(cur))
            cur = None
        if p == "S" or (p == "E" and scheme == "bioes"):
            spans.append((t, i, i + 1))
        elif p in ("B", "I", "E"):
            cur = [t, i, i + 1]
    if cur is not None:
        spans.append(tuple(cur))
    return spans


def decode_ner(em, enc: _Enc, labels: list[str], scheme: str, crf) -> list[tuple[str, int, int]]:
    """Entities (type, start, end in code points) from text-token emissions (T, K): the first piece of each
    word labels the word and the span covers all its pieces. ``crf``: (start, end, transitions[from][to])
    for Viterbi with the model's own scores; None: Viterbi over log-softmax within the scheme's transitions."""
    import torch

    em = torch.as_tensor(np.asarray(em), dtype=torch.float64)
    firsts = [i for i, s in enumerate(enc.word_start) if s]
    if not firsts:
        return []
    e = em[firsts]
    if crf is not None:
        s, f, tr = (torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in crf)
    else:
        e = torch.log_softmax(e, dim=-1)
        allowed, st, en = allowed_transitions(labels, scheme)
        neg = torch.tensor(-1e9, dtype=torch.float64)
        zero = torch.tensor(0.0, dtype=torch.float64)
        tr, s, f = torch.where(allowed, zero, neg), torch.where(st, zero, neg), torch.where(en, zero, neg)
    tags = [labels[k] for k in viterbi(e, s, f, tr)]
    bounds = firsts[1:] + [len(enc.word_start)]
    out = []
    for typ, a, b in chunk(tags, scheme):
        out.append((typ, int(enc.offsets[firsts[a]][0]), int(enc.offsets[bounds[b - 1] - 1][1])))
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


# -- scores ----------------------------------------------------------------------------------------------
def _frame(ids: np.ndarray, specials: dict, max_positions: int) -> np.ndarray:
    body = ids[: max_positions - 2]
    return np.concatenate([[specials["cls"]], body, [specials["sep"]]]).astype(np.int64)


def reference_scores(conv: Converted, framed: list[np.ndarray]) -> list[np.ndarray]:
    import torch

    out = []
    with torch.no_grad():
        for ids in framed:
            x = torch.as_tensor(ids)[None]
            out.append(conv.reference(x, torch.ones_like(x)).float().numpy()[0])
    return out


def graph_scores(onnx_path: Path, framed: list[np.ndarray], pad: int) -> list[np.ndarray]:
    """The graph on one padded batch; each row cut back to its own length (NER) or kept (sentiment)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(cpu_model(onnx_path), providers=["CPUExecutionProvider"])
    T = max(len(x) for x in framed)
    ids = np.full((len(framed), T), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, x in enumerate(framed):
        ids[r, : len(x)] = x
        mask[r, : len(x)] = 1
    feeds = {"input_ids": ids, "attention_mask": mask}
    names = [i.name for i in sess.get_inputs()]
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    y = sess.run(None, {k: feeds[k] for k in names})[0]
    return [y[r, : len(x)] if y.ndim == 3 else y[r] for r, x in enumerate(framed)]


# -- the check ---------------------------------------------------------------------------------------------
def _f1(ref: list[set], got: list[set]) -> float:
    tp = sum(len(a & b) for a, b in zip(ref, got))
    n_ref, n_got = sum(map(len, ref)), sum(map(len, got))
    if n_ref == n_got == 0:
        return 1.0
    return 2 * tp / (n_ref + n_got)


def check(conv: Converted, folder: Path, texts: list[str] | None = None, *, strict: bool = True,
          onnx_path: Path | None = None) -> dict:
    """Compare the reference (``conv``) with the model folder ``folder`` (config.json, vocab, graph).
    ``strict``: the folder's graph is float32; any disagreement raises :class:`ParityError`. Otherwise
    (INT8) the report says how far it is and only NaN or a wrong shape raises."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    onnx_path = onnx_path or folder / config.get("onnx", "model.onnx")
    task = config["task"]
    texts = list(BUILTIN_TEXTS) + [t for t in (texts or []) if t not in BUILTIN_TEXTS]
    texts = [t for t in texts if t]
    if task == "extract":
        return _check_extract(conv, folder, onnx_path, texts, strict)
    tok, tok_name = served_tokenizer(config, folder)
    split = config["tokenizer"].get("split", "bert")
    specials, maxp = config["specials"], int(config.get("max_positions", 512))
    report: dict = {"texts": len(texts), "tokenizer": tok_name, "precision": "float32" if strict else "int8"}
    errors: list[str] = []

    ref_enc = [reference_encode(conv.ref_tokenizer, t, split) for t in texts]
    got_enc = [tok.encode(t) for t in texts]
    bad = [i for i, (a, b) in enumerate(zip(ref_enc, got_enc)) if not np.array_equal(a.ids, b.ids)]
    report["token_ids_equal"] = not bad
    if bad:
        i = bad[0]
        errors.append(f"token ids differ on {len(bad)} text(s), first {texts[i]!r}: original {ref_enc[i].ids[:24].tolist()} "
                      f"vs zhie {np.asarray(got_enc[i].ids)[:24].tolist()}")
    bad_off = [i for i, (a, b) in enumerate(zip(ref_enc, got_enc))
               if not bad and not np.array_equal(a.offsets, np.asarray(b.offsets).reshape(-1, 2))]
    if bad_off:
        errors.append(f"token offsets differ on {len(bad_off)} text(s), first {texts[bad_off[0]]!r}")

    framed = [_frame(e.ids, specials, maxp) for e in ref_enc]
    ref = reference_scores(conv, framed)
    got = graph_scores(onnx_path, framed, specials["pad"])
    shapes_ok = all(a.shape == b.shape for a, b in zip(ref, got))
    finite = all(np.isfinite(b).all() for b in got)
    if not shapes_ok:
        errors.append(f"graph output shape {got[0].shape} differs from the reference's {ref[0].shape}")
    if not finite:
        errors.append("the graph's scores are not finite (NaN or inf)")
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got)) if shapes_ok else math.inf
    scale = max(1.0, max(float(np.abs(a).max()) for a in ref))
    report["max_logit_diff"] = round(diff, 7)
    report["max_abs_logit"] = round(scale, 4)
    if strict and diff > FLOAT_RTOL * scale:
        errors.append(f"largest score difference {diff:.3g} is above {FLOAT_RTOL * scale:.3g}")
    gross = not (shapes_ok and finite)

    labels = config["labels"]
    if task == "ner" and not gross:
        scheme = config.get("scheme", "bio")
        crf_cfg = config.get("crf")
        ref_crf = conv.ref_crf
        if (crf_cfg is None) != (ref_crf is None):
            errors.append("config.json's crf does not match the reference model's (one has a CRF, the other not)")
        cfg_crf = (crf_cfg["start"], crf_cfg["end"], crf_cfg["transitions"]) if crf_cfg else None
        # rows cut to the text tokens the window holds (framing specials dropped)
        ref_ents, graph_ents = [], []
        for e, a, b, fr in zip(ref_enc, ref, got, framed):
            n = len(fr) - 2
            cut = _Enc(e.ids[:n], e.offsets[:n], e.word_start[:n])
            ref_ents.append(set(decode_ner(a[1 : n + 1], cut, labels, scheme, ref_crf)))
            graph_ents.append(set(decode_ner(b[1 : n + 1], cut, labels, scheme, cfg_crf)))
        report["entities"] = sum(map(len, ref_ents))
        g = _f1(ref_ents, graph_ents)
        report["decoded"] = {"graph": {"entity_f1": round(g, 4)}}
        if strict and g < 1.0:
            errors.append(f"decoded entities of the graph differ from the original's (F1 {g:.4f})")
        report["decoded"]["runtime"] = _runtime_ner(folder, onnx_path, texts, ref_ents, ref_enc, framed, strict, errors)
    elif task == "sentiment" and not gross:
        pr, pg = [softmax(a) for a in ref], [softmax(b) for b in got]
        agree = float(np.mean([int(a.argmax()) == int(b.argmax()) for a, b in zip(pr, pg)]))
        gap = max(float(np.abs(a - b).max()) for a, b in zip(pr, pg))
        report["decoded"] = {"graph": {"label_agreement": round(agree, 4), "max_prob_diff": round(gap, 6)}}
        if strict and (agree < 1.0 or gap > PROB_ATOL):
            errors.append(f"graph probabilities differ from the original's (agreement {agree:.3f}, largest gap {gap:.2g})")
        report["decoded"]["runtime"] = _runtime_sentiment(folder, texts, pr, labels, ref_enc, framed, strict, errors)
    report["ok"] = not errors
    if errors:
        report["errors"] = errors
    if errors and (strict or gross):
        raise ParityError(f"{folder}: parity check failed ({report['precision']}): " + "; ".join(errors))
    return report


def _runtime_ner(folder, onnx_path, texts, ref_ents, ref_enc, framed, strict, errors) -> dict:
    from ..tasks.ner import NerOptions, NerTagger

    # one window of the model's full length, as the reference reads each text
    maxp = int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("max_positions", 512))
    tagger = NerTagger.load(str(folder), options=NerOptions(window=maxp - 2, overlap=min(32, maxp // 4)))
    # the reference read each text in one window: compare on the texts that fit one
    keep = [i for i, (e, f) in enumerate(zip(ref_enc, framed)) if len(f) - 2 == len(e.ids)]
    got = tagger.predict([texts[i] for i in keep])
    got_sets, bad_offsets = [], 0
    for i, ents in zip(keep, got):
        got_sets.append({(x.type, x.start, x.end) for x in ents})
        bad_offsets += sum(texts[i][x.start : x.end] != x.text for x in ents)
    f1 = _f1([ref_ents[i] for i in keep], got_sets)
    out = {"entity_f1": round(f1, 4), "texts": len(keep), "offset_errors": bad_offsets}
    if bad_offsets:
        errors.append(f"{bad_offsets} served entities whose text is not text[start:end]")
    if strict and f1 < 1.0:
        errors.append(f"entities served by zhie differ from the original's decoding (F1 {f1:.4f})")
    return out


def _runtime_sentiment(folder, texts, ref_probs, labels, ref_enc, framed, strict, errors) -> dict:
    from ..tasks.sentiment import SentimentClassifier, SentimentOptions

    maxp = int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("max_positions", 512))
    clf = SentimentClassifier.load(str(folder), options=SentimentOptions(window=maxp - 2))
    keep = [i for i, (e, f) in enumerate(zip(ref_enc, framed)) if len(f) - 2 == len(e.ids)]
    res = clf.predict([texts[i] for i in keep])
    gap, agree = 0.0, 0
    for i, r in zip(keep, res):
        p = ref_probs[i]
        gap = max(gap, max(abs(float(r.scores[lab]) - float(p[k])) for k, lab in enumerate(labels)))
        agree += r.label == labels[int(p.argmax())]
    a = agree / max(1, len(keep))
    out = {"label_agreement": round(a, 4), "max_prob_diff": round(gap, 6), "texts": len(keep)}
    # served scores are rounded to 4 decimals
    if strict and (a < 1.0 or gap > PROB_ATOL + 5e-5):
        errors.append(f"sentiment served by zhie differs from the original's (agreement {a:.3f}, largest gap {gap:.2g})")
    return out


def _check_extract(conv: Converted, folder: Path, onnx_path: Path, texts: list[str], strict: bool) -> dict:
    """Extraction graphs: the reference and the graph on the format's inputs built from real texts
    (``parity_inputs``; the export's dummy inputs when it gives none), then the format's own decoded check."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(cpu_model(onnx_path), providers=["CPUExecutionProvider"])
    errors: list[str] = []
    diff, scale, gross = 0.0, 1.0, False
    for inputs in conv.parity_inputs or [conv.dummy_inputs]:
        with torch.no_grad():
            a = conv.reference(*inputs)
        a = (a[0] if isinstance(a, (tuple, list)) else a).float().numpy()
        feeds = {n: x.numpy() for n, x in zip(conv.input_names, inputs)}
        b = sess.run(None, feeds)[0]
        if a.shape != b.shape or not np.isfinite(b).all():
            gross = True
            errors.append(f"graph output {b.shape} (finite: {bool(np.isfinite(b).all())}) vs reference {a.shape}")
            continue
        diff = max(diff, float(np.abs(a - b).max()))
        scale = max(scale, float(np.abs(a).max()))
    report: dict = {"texts": len(texts), "precision": "float32" if strict else "int8", "max_logit_diff": round(diff, 7)}
    if strict and diff > FLOAT_RTOL * scale:
        errors.append(f"largest score difference {diff:.3g} is above {FLOAT_RTOL * scale:.3g}")
    if conv.pointer_rules is not None and not gross:
        from .uie_check import decoded_check

        report["decoded"] = decoded_check(conv, folder, texts)
        if strict and report["decoded"].get("ok") is False:
            errors.append(f"decoded results differ: {report['decoded']}")
    report["ok"] = not errors
    if errors:
        report["errors"] = errors
    if errors and (strict or gross):
        raise ParityError(f"{folder}: parity check failed ({report['precision']}): " + "; ".join(errors))
    return report
