"""Schema-extractor training data from the shared corpora: exact offsets, nesting, negatives, held-out names."""

import json

import pytest
from conftest import BRIEF_TEXT, HANDWRITTEN, REPO

from zhie.tasks.schema import parse_schema, result_from_json, result_tuples
from zhie.train import uie_data as U

pytestmark = pytest.mark.datasets


@pytest.fixture(scope="module")
def records(datasets):
    ie = datasets / "ie"
    return {
        "duie": U.duie_records(ie / "duie/train_5000.json"),
        "sanwen": U.pair_records(ie / "sanwen/valid.txt", U.SANWEN, "sanwen"),
        "finre": U.pair_records(ie / "finre/valid.txt", None, "finre"),
        "duee": U.duee_records(ie / "duee/train_1000.json"),
        "cote": U.cote_records(ie / "cote/baidu_train.txt"),
        "aste": U.aste_records(ie / "absa/aste/dev.txt"),
        "apc": U.apc_records(ie / "absa/apc", ["phone", "mooc"]),
        "literature": U.literature_records(ie / "literature/validation"),
        "weibo": U.ner_records(U.read_ner(datasets / "ner/weibo/dev.conll", "weibo"), U.WEIBO, "weibo"),
    }


def _walk(text, result):
    for typ, spans in result.items():
        for s, e, kids in spans:
            yield typ, s, e
            yield from _walk(text, kids)


def test_every_source_gives_records_with_spans_inside_the_text(records):
    for source, rs in records.items():
        assert len(rs) > 40, source
        for r in rs:
            for _, s, e in _walk(r.text, r.result):
                assert 0 <= s < e <= len(r.text), (source, r.text, s, e)


def test_relations_nest_under_their_subject(records):
    r = next(r for r in records["duie"] if r.text.startswith("《邪少兵王》"))
    (s, e, kids), = r.result["图书作品"]
    assert r.text[s:e] == "邪少兵王"
    (os_, oe, _), = kids["作者"]
    assert r.text[os_:oe] == "冰火未央"
    ex = U.examples([r], negatives=0)
    assert [(x.prompt, [x.text[a:b] for a, b in x.spans]) for x in ex] == [("图书作品", ["邪少兵王"]), ("邪少兵王的作者", ["冰火未央"])]


def test_aste_token_indices_become_character_offsets(records):
    r = records["aste"][2]  # 食 物 不 用 多 说 了 不 错 的 价 格 也 适 中 。
    got = {(r.text[s:e], r.text[a:b]) for s, e, kids in r.result["属性词"] for a, b, _ in kids["观点词"]}
    assert got == {("食物", "不用多说了不错的"), ("价格", "也适中")}  # ends are inclusive token indices


def test_apc_aspects_of_one_sentence_merge_into_one_record(records):
    rs = records["apc"]
    assert len({r.text for r in rs}) == len(rs)  # a sentence with two aspect lines is one record
    r = next(r for r in rs if r.text == "图标很靓哦")  # "$T$ 很 靓 哦" / "图 标"
    assert [r.text[s:e] for s, e, _ in r.result["属性词"]] == ["图标"]
    two = [r for r in rs if len(r.result["属性词"]) > 1]  # mooc lines often share a sentence
    assert two and all(len({(s, e) for s, e, _ in r.result["属性词"]}) == len(r.result["属性词"]) for r in two)


def test_apc_opinion_is_the_short_clause_after_the_aspect():
    cut = lambda right: (lambda o: o and right[o[0]:o[1]])(U.apc_opinion(right))
    assert cut("很清晰") == "很清晰"
    assert cut("很靓哦") == "很靓"  # trailing particles are not part of the opinion
    assert cut("强，但是电池不行") == "强"  # only the first clause
    assert cut("和材质都不错") is None  # continues the aspect
    assert cut("我感觉不合理") is None
    assert cut("表现得非常非常出色") is None  # too long to trust
    assert cut("，不错") is None and cut("") is None


def test_apc_product_clauses_nest_opinions_and_mooc_does_not(records):
    rs = records["apc"]
    r = next(r for r in rs if r.text == "图标很靓哦")
    (s, e, kids), = r.result["属性词"]
    assert r.text[s:e] == "图标" and [r.text[a:b] for a, b, _ in kids["观点词"]] == ["很靓"]
    mooc = [r for r in rs if len(r.text) > 60]  # MOOC comments run on without punctuation
    assert mooc and not any(kids for r in mooc for _, _, kids in r.result["属性词"])
    ex = U.examples([r], negatives=0)
    assert [(x.prompt, [x.text[a:b] for a, b in x.spans]) for x in ex] == [("属性词", ["图标"]), ("图标的观点词", ["很靓"])]


def test_joined_clauses_keep_every_span_on_its_words(records):
    rs = records["apc"][:400]
    joined = U.join_clauses(rs, seed=5)
    assert len(joined) < len(rs)  # short clauses were joined
    before = sorted((r.text[s:e], tuple(r.text[a:b] for a, b, _ in kids.get("观点词", []))) for r in rs for s, e, kids in r.result["属性词"])
    after = sorted((r.text[s:e], tuple(r.text[a:b] for a, b, _ in kids.get("观点词", []))) for r in joined for s, e, kids in r.result["属性词"])
    assert after == before  # no aspect or opinion lost, moved or invented
    many = [r for r in joined if len(r.result["属性词"]) > 1 and ("，" in r.text or "、" in r.text)]
    assert many
    assert all(len(r.text) <= 4 * 24 + 3 for r in joined if r.text not in {x.text for x in rs})


def test_lead_ins_move_spans_with_their_words(records):
    rs = U.join_clauses(records["apc"][:400], seed=5)
    led = U.lead_ins(rs, 0.5, seed=3)
    assert len(led) == len(rs)
    pairs = lambda rr: sorted((r.text[s:e], tuple(r.text[a:b] for a, b, _ in kids.get("观点词", [])))
                              for r in rr for s, e, kids in r.result["属性词"])
    assert pairs(led) == pairs(rs)  # every aspect and opinion still on its words
    changed = [(a, b) for a, b in zip(rs, led) if a.text != b.text]
    assert 0.2 * len(rs) < len(changed) < len(rs)
    # b is a with lead-ins put in, and only before aspects that open a clause of a
    def is_led(a, b):
        opens = sorted({s for s, _, _ in a.result["属性词"] if s == 0 or a.text[s - 1] in "，、"})

        def fits(k, i, j):  # a[i:] against b[j:], lead-ins allowed at opens[k:]
            if k == len(opens):
                return a.text[i:] == b.text[j:]
            p = opens[k]
            j2 = j + p - i
            if b.text[j:j2] != a.text[i:p]:
                return False
            return fits(k + 1, p, j2) or any(b.text.startswith(w, j2) and fits(k + 1, p, j2 + len(w)) for w in U.LEAD_INS)

        return fits(0, 0, 0)

    assert all(is_led(a, b) for a, b in changed)
    assert U.lead_ins(rs, 0.0) == rs


def test_lead_ins_are_not_taken_from_the_eval_files():
    texts = [json.loads(line)["text"] for f in ("extract-handwritten.jsonl", "extract-reviews.jsonl")
             for line in (REPO / "evals" / f).read_text(encoding="utf-8").splitlines()]
    texts.append(BRIEF_TEXT)
    assert [w for w in U.LEAD_INS if any(w.rstrip("，") in t for t in texts)] == []


def test_events_prompt_triggers_then_roles(records):
    ex = U.examples(records["duee"], negatives=0, held_out=set())
    assert any(x.prompt.endswith("触发词") and x.spans for x in ex)
    assert any("的" in x.prompt and x.spans for x in ex)


def test_negatives_and_held_out_names(records):
    rs = records["weibo"]
    ex = U.examples(rs, negatives=1)
    neg = [x for x in ex if not x.spans]
    assert neg and all(x.prompt in U.WEIBO.values() for x in neg)
    every = U.examples(records["duie"], negatives=1)
    assert not [x for x in every if x.prompt.split("的")[-1] in U.HELD_OUT]
    kept = U.examples(records["duie"], negatives=0, keep_held_out=True)
    assert any(x.prompt.endswith("的主演") for x in kept)


def test_eval_lines_are_in_the_api_shape_with_exact_offsets(records):
    lines = U.eval_lines([r for rs in records.values() for r in rs], limit_per_source=20)
    assert {x["source"] for x in lines} == set(records)
    for x in lines:
        schema = parse_schema(x["schema"])
        exp = result_from_json(x["expected"])
        for path, s, e in result_tuples(exp):
            assert 0 <= s < e <= len(x["text"])
        assert set(x["expected"]) <= {n.name for n in schema.roots}
        for typ, spans in x["expected"].items():
            for sp in spans:
                assert x["text"][sp["start"]:sp["end"]] == sp["text"]


def test_augmented_names_keep_the_spans_and_never_leak_held_out_names(records):
    plain = U.examples(records["duie"], negatives=1)
    aug = U.examples(records["duie"], negatives=1, augment=0.5)
    assert U.examples(records["duie"], negatives=1, augment=0.0) == plain  # v1's data is reproducible
    # flat object types and predicates are added: the same object span asked without its subject
    r = next(r for r in records["duie"] if r.text.startswith("《邪少兵王》"))
    flat = {(x.prompt, tuple(x.text[a:b] for a, b in x.spans)) for x in U.examples([r], negatives=0, augment=1.0)}
    assert ("作家", ("冰火未央",)) in flat or ("撰写者", ("冰火未央",)) in flat  # 作者 always under a synonym at 1.0
    assert ("人名", ("冰火未央",)) in flat or ("姓名", ("冰火未央",)) in flat or ("人", ("冰火未央",)) in flat
    names = {x.prompt.split("的")[-1] for x in aug}
    assert len(names) > len({x.prompt.split("的")[-1] for x in plain})
    assert not names & U.HELD_OUT
    for alts in U.SYNONYMS.values():
        assert not set(alts) & U.HELD_OUT
    # the spans of a synonym prompt are the canonical type's spans
    for x in aug:
        for a, b in x.spans:
            assert 0 <= a < b <= len(x.text)
    roles = {x.prompt for x in U.examples(records["duee"], negatives=0, augment=0.5) if "的" not in x.prompt}
    assert "时间" in roles or "时间点" in roles or "时候" in roles  # DuEE roles asked flat
    assert "裁员人数" not in roles


def test_handwritten_unseen_names_are_never_trained_on(records):
    """The "unseen" lines of evals/extract-handwritten.jsonl ask only for names no training prompt uses."""
    trained = set(U.SYNONYMS) | {a for alts in U.SYNONYMS.values() for a in alts}
    for d in (U.MSRA, U.WEIBO, U.CLUENER, U.LITERATURE, U.SANWEN, U.DUIE_OBJECT):
        trained |= set(d.values())
    for rs in records.values():
        for aug in (0.0, 1.0):
            trained |= {x.prompt.split("的")[-1] for x in U.examples(rs, negatives=1, augment=aug, keep_held_out=True)}
    unseen = {k for line in HANDWRITTEN.read_text(encoding="utf-8").splitlines() if (x := json.loads(line))["source"] == "unseen"
              for k in x["schema"]}
    assert len(unseen) > 30 and not unseen & trained, unseen & trained


def test_merge_extra_adds_relation_objects_to_a_top_level_type_of_the_same_name(records):
    # a DuIE text whose subject is a 人物 and whose object is another 人物
    r = next(r for r in records["duie"] if "人物" in r.result and any(
        (s, e) not in {(a, b) for a, b, _ in r.result["人物"]} for s, e, _ in r.extra.get("人物", [])))
    top = lambda ex: next(x for x in ex if x.prompt == "人物")  # noqa: E731
    plain = set(top(U.examples([r], negatives=0, augment=1e-9)).spans)
    merged = set(top(U.examples([r], negatives=0, augment=1e-9, merge_extra=True)).spans)
    assert plain < merged and merged - plain <= {(s, e) for s, e, _ in r.extra["人物"]}


def test_quant_probe_feeds_the_extractor_prompted_inputs_from_the_training_side(datasets):
    """What chooses the extractor's float32 products must look like what it serves: [BOS] prompt [EOS] text [EOS]."""
    from zhie.models.bundle import load_bundle
    from zhie.text.vocab import BOS, EOS
    from zhie.train.quant_sensitivity import uie_inputs

    vocab = load_bundle("extract", task="extract").vocab
    seqs = uie_inputs(str(datasets), vocab, sample=60, seed=13)
    assert len(seqs) == 60
    for s in seqs:
        assert s[0] == BOS and s[-1] == EOS and len(s) <= 256
        assert 2 <= list(s).index(EOS) < len(s) - 1  # a prompt of at least one character, then the text
    assert len({tuple(s[:list(s).index(EOS)]) for s in seqs}) > 5  # many different prompts, not one


def test_held_out_names_can_be_released_for_training_never_added(datasets):
    """``zhie train extract --held-out``: by default CLUENER's 游戏 and 电影 are never asked; a run that releases
    them trains them (under their synonyms too); a name outside uie_data.HELD_OUT cannot be held out."""
    from zhie.train.extract import ExtractTrainConfig, build_examples

    records = U.load_records(str(datasets), seed=13, dev_split="random")
    base = dict(datasets=str(datasets), sources=["cluener:3000"], augment=0.5, seed=3)
    asked = lambda cfg: {x.prompt for x in build_examples(cfg, records)[0]}  # noqa: E731
    default = asked(ExtractTrainConfig(**base))
    assert not default & {"游戏", "电影", "游戏名", "游戏名称", "电影名", "影片"}
    kept = sorted(U.HELD_OUT - {"游戏", "电影"})
    released = asked(ExtractTrainConfig(**base, held_out=kept))
    assert {"游戏", "电影"} <= released and released & {"游戏名", "游戏名称"} and released & {"电影名", "影片"}
    with pytest.raises(SystemExit, match="only names of uie_data.HELD_OUT"):
        build_examples(ExtractTrainConfig(**base, held_out=[*kept, "公司"]), records)
