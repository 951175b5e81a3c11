"""The decoded part of the import's parity check for the two pointer-network formats.

On the check texts and a small built-in schema (three types, one of them with a child), the reference
model (``uie_reference``) is decoded by the original's own rules, and the same texts are served by zhie's
extractor from the written folder; the report gives the span F1 between the two (1.0 required in float32).

- UIE, Taskflow's rules: ``[CLS] prompt [SEP] text [SEP]``, start and end probability > 0.5 each, ``get_span``
  (each end keeps the nearest start at or before it), probability start x end, child prompts
  ``dbc2sbc(span + "的" + child)``.
- SiameseUIE, SiameseUiePipeline's rules: text ``[CLS] text [SEP]`` and hints ``"{type}: "`` /
  ``"{type}: {span}, {child}: "``, head and tail logits > 0.5, every head to the first tail at or after it.

Both originals also let a start or end fall on ``[CLS]``/``[SEP]`` (Taskflow maps them to offset 0,
SiameseUIE's ``get_entities`` scans every position); zhie's contract scores text tokens only, so such spans
are counted apart (``special_token_spans``) and left out of the comparison. Texts longer than one of zhie's
windows are skipped here (the originals cut long text their own way). Needs torch.
"""

from __future__ import annotations

from typing import Callable

CHECK_SCHEMA = {"人物": {"职称": None}, "地点": None, "组织机构": None}
ONE_WINDOW = 200  # zhie's default window (text tokens): longer texts are windowed differently from the originals


def _dbc2sbc(s: str) -> str:
    out = []
    for ch in s:
        code = 0x20 if ord(ch) == 0x3000 else ord(ch) - 0xFEE0
        out.append(chr(code) if 0x21 <= code <= 0x7E else ch)
    return "".join(out)


def _get_span(starts: list[int], ends: list[int]) -> set[tuple[int, int]]:
    """PaddleNLP utils/tools.py::get_span on sorted index lists."""
    sp = ep = 0
    couple: dict[int, int] = {}
    while sp < len(starts) and ep < len(ends):
        s, e = starts[sp], ends[ep]
        if s == e:
            couple[e] = s
            sp += 1
            ep += 1
        elif s < e:
            couple[e] = s
            sp += 1
        else:
            ep += 1
    return {(s, e) for e, s in couple.items()}


def _served(folder, texts: list[str], schema: dict) -> list[set]:
    from ..tasks.extract import SchemaExtractor
    from ..tasks.schema import parse_schema

    ex = SchemaExtractor.load(str(folder), threads=1)
    out = []
    for res in ex.predict(texts, parse_schema(schema)):
        got = set()
        for t, spans in res.items():
            for sp in spans:
                got.add((t, sp.start, sp.end))
                for c, kids in sp.relations.items():
                    got |= {(f"{t}/{c}", k.start, k.end, sp.start, sp.end) for k in kids}
        out.append(got)
    return out


def _report(ref: list[set], got: list[set], special: int, skipped: int) -> dict:
    tp = sum(len(a & b) for a, b in zip(ref, got))
    n_ref, n_got = sum(map(len, ref)), sum(map(len, got))
    f1 = 1.0 if n_ref == n_got == 0 else 2 * tp / (n_ref + n_got)
    return {"schema": CHECK_SCHEMA, "texts": len(ref), "texts_skipped_long": skipped, "reference_spans": n_ref,
            "served_spans": n_got, "span_f1": round(f1, 4), "special_token_spans": special, "ok": f1 == 1.0}


def uie_decoded_check(reference, tok) -> Callable:
    """decoded_check(folder, texts) for a UIE import: Taskflow's decoding of ``reference`` against zhie."""
    import torch

    def check(folder, texts: list[str]) -> dict:
        special = [0]

        @torch.no_grad()
        def predict(prompt: str, text: str) -> list[tuple[int, int]]:
            enc = tok(_dbc2sbc(prompt), text, return_offsets_mapping=True, return_tensors="pt", truncation=True,
                      max_length=512)
            p = torch.sigmoid(reference(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]))[0]
            types = enc["token_type_ids"][0].tolist()
            offsets = enc["offset_mapping"][0].tolist()
            n = len(types)
            starts = [i for i in range(n) if p[i, 0] > 0.5]
            ends = [i for i in range(n) if p[i, 1] > 0.5]
            first = types.index(1)
            out = []
            for s, e in sorted(_get_span(starts, ends)):
                if s < first and e >= first and s != 0 and s != first - 1:
                    continue  # starts in the prompt, ends in the text: Taskflow drops it
                if e < first:
                    continue  # inside the prompt: Taskflow's classification answers
                if s in (0, first - 1) or e == n - 1:
                    special[0] += 1  # on [CLS] / [SEP]
                    continue
                out.append((offsets[s][0], offsets[e][1]))
            return out

        return _run(folder, texts, tok, predict, special, prompt_of=lambda t, span, c: span + "的" + c)

    return check


def siamese_decoded_check(reference, tok) -> Callable:
    """decoded_check(folder, texts) for a SiameseUIE import: the pipeline's decoding of ``reference`` against zhie."""
    import torch

    def check(folder, texts: list[str]) -> dict:
        special = [0]

        @torch.no_grad()
        def predict(hint: str, text: str) -> list[tuple[int, int]]:
            t = tok([text], return_offsets_mapping=True, return_tensors="pt")
            h = tok([hint], truncation=True, max_length=128, return_tensors="pt")
            z = torch.zeros(1, dtype=torch.long)
            y = reference(h["input_ids"], h["attention_mask"], t["input_ids"], t["attention_mask"], z, z)[0]
            offsets = t["offset_mapping"][0].tolist()
            n = len(offsets)
            out = []
            for ph in [j for j in range(n) if y[j, 0] > 0.5]:
                for pt in range(ph, n):
                    if y[pt, 1] > 0.5:
                        if ph == 0 or pt == n - 1:
                            special[0] += 1
                        else:
                            out.append((offsets[ph][0], offsets[pt][1]))
                        break
            return out

        return _run(folder, texts, tok, predict, special, root=lambda t: f"{t}: ",
                    prompt_of=lambda t, span, c: f"{t}: {span}, {c}: ")

    return check


def _run(folder, texts, tok, predict, special, prompt_of, root=lambda t: t) -> dict:
    keep = [t for t in texts if len(tok(t, add_special_tokens=False)["input_ids"]) <= ONE_WINDOW]
    ref = []
    for text in keep:
        want = set()
        for t, children in CHECK_SCHEMA.items():
            for s, e in set(predict(root(t), text)):
                want.add((t, s, e))
                for c in children or {}:
                    want |= {(f"{t}/{c}", a, b, s, e) for a, b in predict(prompt_of(t, text[s:e], c), text)}
        ref.append(want)
    return _report(ref, _served(folder, keep, CHECK_SCHEMA), special[0], len(texts) - len(keep))


def decoded_check(conv, folder, texts: list[str]) -> dict:
    """The decoded check of a pointer-network import, by the rules its format names (``conv.pointer_rules``)."""
    rules = {"uie": uie_decoded_check, "siamese": siamese_decoded_check}
    if conv.pointer_rules not in rules:
        raise ValueError(f"no decoding rules {conv.pointer_rules!r} (expected one of {sorted(rules)})")
    return rules[conv.pointer_rules](conv.reference, conv.ref_tokenizer)(folder, texts)
