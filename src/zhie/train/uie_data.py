"""Training data for the schema extractor: every corpus in ../shared/datasets/ie and ner turned into
(prompt, text, spans) examples, UIE style.

- entity types are written as natural Chinese prompts ("人物", "组织机构", "书名", ...);
- a nested node is prompted as "<parent span>的<child>" ("邪少兵王的作者" → 冰火未央; "味道的观点词");
- events: "<event type>触发词" finds triggers, "<trigger>的<role>" their arguments;
- negatives: prompts of types absent from the text, with no span, so the model learns to return
  nothing;
- augmentation (training only, ``augment > 0``): a type is asked under a synonym some of the time
  (:data:`SYNONYMS`), and extra flat types widen the vocabulary of names the model sees: DuIE's
  object types and predicates asked without their subject, DuEE's argument roles asked without
  their trigger. The dev eval files never use them, so dev figures stay comparable.

Type names listed in :data:`HELD_OUT` never appear in training, so the dev figures on them
measure how the extractor does on names it has not seen.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..text.types import Doc
from .data import read_ner
from .data import split_dev as _split_dev


@dataclass
class UieExample:
    prompt: str
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) code points of text
    source: str = ""

    def check(self) -> "UieExample":
        for s, e in self.spans:
            if not 0 <= s < e <= len(self.text):
                raise ValueError(f"{self.source}: span {s}:{e} outside a text of {len(self.text)}")
        return self


@dataclass
class Record:
    """One annotated text as a nested result: {type: [(start, end, {child type: [...]}), ...]}."""

    text: str
    result: dict
    source: str
    types: list[str]  # every top-level type this corpus annotates exhaustively (for negatives)
    extra: dict = field(default_factory=dict)  # training-only flat types (augmentation), same shape as result


MSRA = {"PER": "人物", "LOC": "地点", "ORG": "组织机构"}
WEIBO = {"PER.NAM": "人名", "LOC.NAM": "地名", "GPE.NAM": "行政区", "ORG.NAM": "组织机构", "PER.NOM": "人物称谓",
         "LOC.NOM": "地点指代", "ORG.NOM": "机构指代"}
CLUENER = {"address": "地址", "book": "书名", "company": "公司", "game": "游戏", "government": "政府机构",
           "movie": "电影", "name": "人名", "organization": "组织机构", "position": "职位", "scene": "景点"}
LITERATURE = {"Person": "人物", "Location": "地点", "Organization": "组织", "Thing": "物品", "Time": "时间",
              "Metric": "数量", "Abstract": "抽象概念"}
SANWEN = {"Create": "创作", "Use": "使用", "Near": "邻近", "Social": "社会关系", "Located": "位于", "Ownership": "拥有",
          "General-Special": "类属", "Family": "亲属", "Part-Whole": "组成部分"}

# never trained on: the dev figures on these measure generalisation to unseen type names
HELD_OUT = {"游戏", "电影", "毕业院校", "主演", "董事长", "裁员人数"}

# other natural names for the corpora's types, asked in their place some of the time (augment > 0).
# None is a held-out name or a near-synonym of one, nor a type name of the "unseen" lines of
# evals/extract-handwritten.jsonl (日期, 品牌, 价格, 产品名称, ... stay unseen). 情感词 (the brief's
# name) is here as a synonym of 观点词, so it no longer counts as unseen.
SYNONYMS = {
    "人物": ["人名", "姓名", "人"], "人名": ["人物", "姓名", "名字"], "地点": ["地名", "地方", "位置"],
    "地名": ["地点", "地方"], "组织机构": ["机构", "组织", "单位"], "组织": ["组织机构", "机构"],
    "行政区": ["行政区划", "省市"], "人物称谓": ["称谓", "人称"], "地址": ["详细地址", "住址"],
    "书名": ["书籍", "图书", "著作"], "公司": ["企业", "公司名称", "企业名称"], "政府机构": ["政府部门", "官方机构"],
    "职位": ["职务", "头衔"], "景点": ["旅游景点", "景区"], "时间": ["时间点", "时候"], "数量": ["数值", "数目"],
    "物品": ["东西", "物体"], "评价对象": ["评论对象", "话题"], "属性词": ["方面词", "评价属性", "属性"],
    "观点词": ["情感词", "评价词", "意见词"], "作者": ["作家", "撰写者"], "歌手": ["演唱者"], "导演": ["执导者"],
    "妻子": ["老婆", "夫人"], "丈夫": ["老公"], "父亲": ["爸爸"], "母亲": ["妈妈"], "成立日期": ["成立时间", "创立时间"],
    "上映时间": ["上映日期"], "创始人": ["创办人"], "简称": ["缩写"], "作词": ["词作者"], "作曲": ["曲作者"],
    "死者": ["遇难者"], "发布产品": ["新产品"], "发布方": ["发布者"],
    # CLUENER's works, asked only by a run that trains them (--held-out without them, extract e1)
    "游戏": ["游戏名", "游戏名称"], "电影": ["电影名", "影片"],
}
# families of type names, for `zhie eval extract`'s per_group figures: how the extractor does on each
# kind of name, and the unit in which names can be held out together for a zero-shot figure. A line of
# an eval file may set its own ("groups": {type name: group}). Under a parent span every name is
# "relation" (an opinion word under its aspect stays "opinion"); a trigger (…触发词) and the roles
# under it are "event"; a top-level name in neither is "other" (literature's 物品 and 抽象概念, 职位, ...).
NAME_GROUPS = {
    **dict.fromkeys(["人物", "人名", "姓名", "人", "名字", "人物称谓", "称谓", "人称", "艺人", "运动员", "选手", "作者",
                     "作家", "歌手", "导演", "主演", "董事长", "创始人", "妻子", "丈夫", "父亲", "母亲", "死者", "娱乐人物",
                     "历史人物"], "person"),
    **dict.fromkeys(["地点", "地名", "地方", "位置", "行政区", "行政区划", "省市", "地址", "详细地址", "住址", "景点", "旅游景点",
                     "景区", "地点指代", "出发地", "目的地", "仓库", "展会"], "place"),
    **dict.fromkeys(["组织机构", "机构", "组织", "单位", "公司", "企业", "公司名称", "企业名称", "政府机构", "政府部门",
                     "官方机构", "机构指代", "球队", "法院", "平台", "电商平台", "厂商", "品牌", "工作单位", "毕业院校",
                     "发布方", "学校"], "organisation"),
    **dict.fromkeys(["书名", "书籍", "图书", "著作", "电影", "游戏", "新歌", "影视作品", "歌曲", "图书作品", "文学作品",
                     "电视综艺"], "work"),
    **dict.fromkeys(["产品名称", "商品", "车型", "手机型号", "处理器型号", "芯片型号", "芯片", "服装", "菜品", "食材", "药物",
                     "发布产品", "新产品", "前端框架", "编程语言"], "product"),
    "主体": "relation",  # SanWen's and FinRE's relation subjects, asked before their relations
    **dict.fromkeys(["时间", "时间点", "时候", "日期", "成立日期", "成立时间", "创立时间", "上映时间", "上映日期", "数量",
                     "数值", "数目", "价格", "金额", "比分", "涨幅", "成绩", "气温", "烹饪时长", "裁员人数", "订单号",
                     "航班号", "股票代码"], "time_number"),
    **dict.fromkeys(["评价对象", "评论对象", "话题", "属性词", "方面词", "评价属性", "属性", "观点词", "情感词", "评价词",
                     "意见词", "功能"], "opinion"),
}


def name_group(path: tuple[str, ...] | list[str], groups: dict | None = None) -> str:
    """The family (:data:`NAME_GROUPS`) of the last type name of a path of types; ``groups`` (an eval
    line's own) comes first."""
    leaf = path[-1]
    if groups and leaf in groups:
        return str(groups[leaf])
    if leaf.endswith("触发词") or any(p.endswith("触发词") for p in path[:-1]):
        return "event"
    group = NAME_GROUPS.get(leaf, "other")
    return group if len(path) == 1 or group == "opinion" else "relation"


DUIE_OBJECT = {"Date": "时间", "Number": "数值"}  # DuIE's English object types as Chinese names ("Text" is left out)


def _add(result: dict, typ: str, s: int, e: int, children: dict | None = None) -> dict:
    """Add span [s, e) of ``typ`` (merging with an equal one) and its children; returns its children dict."""
    spans = result.setdefault(typ, [])
    target = next((sp[2] for sp in spans if sp[0] == s and sp[1] == e), None)
    if target is None:
        target = {}
        spans.append((s, e, target))
    for k, v in (children or {}).items():
        for c in v:
            _add(target, k, c[0], c[1], c[2] if len(c) > 2 else None)
    return target


def ner_records(docs: Iterable[Doc], names: dict[str, str], source: str) -> list[Record]:
    out = []
    for d in docs:
        r: dict = {}
        for ent in d.entities:
            if ent.type in names:
                _add(r, names[ent.type], ent.start, ent.end)
        out.append(Record(d.text, r, source, sorted(set(names.values()))))
    return out


def _find_all(text: str, s: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(s), text)] if s else []


def _jsonl(path: Path):
    """The JSON object of each non-blank line."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def duie_records(path: Path) -> list[Record]:
    out = []
    for d in _jsonl(path):
        text, r, extra = d["text"], {}, {}
        for spo in d.get("spo_list", []):
            subj, obj = spo["subject"], spo["object"].get("@value", "")
            si, oi = _find_all(text, subj), _find_all(text, obj)
            if not si or not oi:
                continue
            s0 = si[0]
            o0 = min(oi, key=lambda o: abs(o - s0))  # the mention nearest the subject
            _add(r, spo["subject_type"], s0, s0 + len(subj), {spo["predicate"]: [(o0, o0 + len(obj))]})
            if spo["predicate"] not in HELD_OUT:
                otype = spo["object_type"].get("@value", "")
                otype = DUIE_OBJECT.get(otype, otype)
                if otype and otype != "Text":
                    _add(extra, otype, o0, o0 + len(obj))
                _add(extra, spo["predicate"], o0, o0 + len(obj))
        if r:
            out.append(Record(text, r, "duie", [], extra))  # types not exhaustive: no negatives at the top
    return out


def pair_records(path: Path, names: dict[str, str] | None, source: str) -> list[Record]:
    """SanWen / FinRE: ``head\\ttail\\trelation\\tsentence`` → "<head>的<relation>" → tail."""
    by_text: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or parts[2] == "unknown":
            continue
        head, tail, rel, text = parts
        rel = names.get(rel, rel) if names else rel
        hi, ti = _find_all(text, head), _find_all(text, tail)
        if not hi or not ti:
            continue
        h0 = hi[0]
        t0 = min(ti, key=lambda t: abs(t - h0))
        r = by_text.setdefault(text, {})
        _add(r, "主体", h0, h0 + len(head), {rel: [(t0, t0 + len(tail))]})
    return [Record(t, r, source, []) for t, r in by_text.items()]


def duee_records(path: Path) -> list[Record]:
    out = []
    for d in _jsonl(path):
        text, r, extra = d["text"], {}, {}
        for ev in d.get("event_list", []):
            s = ev["trigger_start_index"]
            kids: dict = {}
            for a in ev.get("arguments", []):
                b = a["argument_start_index"]
                if text[b : b + len(a["argument"])] == a["argument"]:
                    kids.setdefault(a["role"], []).append((b, b + len(a["argument"])))
                    if a["role"] not in HELD_OUT:
                        _add(extra, a["role"], b, b + len(a["argument"]))
            if text[s : s + len(ev["trigger"])] == ev["trigger"]:
                name = ev["event_type"].split("-")[-1] + "触发词"
                _add(r, name, s, s + len(ev["trigger"]), kids)
        if r:
            out.append(Record(text, r, "duee", [], extra))
    return out


def cote_records(path: Path) -> list[Record]:
    out = []
    for d in _jsonl(path):
        text, ot = d["s"], d["ot"]
        i = text.find(ot)
        if i >= 0:
            out.append(Record(text, {"评价对象": [(i, i + len(ot), {})]}, "cote", ["评价对象"]))
    return out


def aste_records(path: Path) -> list[Record]:
    """``c h a r s####[((a0, a1), (o0, o1), 'POS'), ...]`` over space-separated tokens, ends inclusive."""
    out = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if "####" not in line:
            continue
        left, right = line.split("####", 1)
        toks = left.split(" ")
        starts, pos = [], 0
        for t in toks:
            starts.append(pos)
            pos += len(t)
        text = "".join(toks)
        r: dict = {}
        for (a0, a1), (o0, o1), _pol in ast.literal_eval(right.strip()):
            a = (starts[a0], starts[a1] + len(toks[a1]))
            o = (starts[o0], starts[o1] + len(toks[o1]))
            _add(r, "属性词", *a, {"观点词": [o]})
        out.append(Record(text, r, "aste", ["属性词"]))
    return out


APC_DOMAINS = ("phone", "camera", "notebook", "car", "mooc")  # hair's aspects are whole clauses: left out
# domains whose reviews are short clauses ("$T$ 很 清 晰"): the words right after the aspect are its opinion
APC_OPINION_DOMAINS = ("phone", "camera", "notebook", "car")
_CLAUSE_END = re.compile(r"[，。！？,.!?;；、:：~～…\s（）()]")
# a tail starting with these continues the aspect ("和材质都不错") or is no opinion ("我感觉...")
_NOT_OPINION_START = tuple("和与及跟或的了之等是让使被把对在给为从我你他她它")
_PARTICLES = "哦啊呀啦吧呢嘛哈"


def apc_opinion(right: str, max_len: int = 5) -> tuple[int, int] | None:
    """The opinion of an aspect in a short product-review clause, from the text right after the
    aspect: its first clause, up to ``max_len`` characters, without trailing particles. None where
    that clause is empty, longer, or starts like no opinion does. Offsets into ``right``."""
    m = _CLAUSE_END.search(right)
    tail = right[: m.start()] if m else right
    end = len(tail)
    while end > 1 and tail[end - 1] in _PARTICLES:
        end -= 1
    tail = tail[:end]
    if not tail or len(tail) > max_len or tail.startswith(_NOT_OPINION_START) or "之" in tail or "我" in tail:
        return None
    return 0, end


def apc_records(folder: Path, domains: Iterable[str] = APC_DOMAINS,
                opinion_domains: Iterable[str] = APC_OPINION_DOMAINS) -> list[Record]:
    """Aspect polarity files (``$T$`` sentence, aspect, polarity; three lines an example, characters
    separated by spaces): each sentence's aspects as 属性词 spans, the lines of one sentence
    merged. Product reviews (phones, cameras, laptops, cars) where ASTE only has restaurants. In
    ``opinion_domains`` an aspect followed by a short clause (``信号 不错``) also gets that clause as
    its 观点词 (:func:`apc_opinion`); an aspect without one gets no nested prompt, not an empty one."""
    out = []
    opinion_domains = set(opinion_domains)
    for dom in domains:
        path = folder / f"{dom}.train.txt"
        if not path.exists():
            continue
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        by: dict[str, dict] = {}
        for i in range(0, len(lines) - 2, 3):
            toks, aspect = lines[i].split(" "), "".join(lines[i + 1].split(" "))
            if toks.count("$T$") != 1 or not aspect:
                continue
            k = toks.index("$T$")
            left, right = "".join(toks[:k]), "".join(toks[k + 1:])
            text = left + aspect + right
            a = len(left) + len(aspect)
            op = apc_opinion(right) if dom in opinion_domains else None
            kids = {"观点词": [(a + op[0], a + op[1])]} if op else None
            _add(by.setdefault(text, {}), "属性词", len(left), a, kids)
        out.extend(Record(text, r, "apc", ["属性词"]) for text, r in by.items())
    return out


def _shifted(result: dict, at: int, by: int) -> dict:
    """``result`` with every offset at or after ``at`` moved by ``by``."""
    mv = lambda x: x + by if x >= at else x
    return {k: [(mv(s), mv(e), _shifted(kids, at, by)) for s, e, kids in v] for k, v in result.items()}


def join_clauses(records: list[Record], *, max_chars: int = 24, most: int = 4, seed: int = 13) -> list[Record]:
    """Runs of consecutive short records (APC's clauses of one review come one after another) joined
    into one text with "，" or "、", up to ``most`` at a time, so that a text holds several aspects
    and opinions, as a review does ("信号强、拍照清晰"). Longer records pass through alone."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(records):
        n = rng.randint(1, most)  # drawn for every run, so the joins stay those extract v6 trained on
        if len(records[i].text) > max_chars:
            n = 1
        run = [records[i]]
        while len(run) < n and i + len(run) < len(records) and len(records[i + len(run)].text) <= max_chars:
            run.append(records[i + len(run)])
        i += len(run)
        if len(run) == 1:
            out.append(run[0])
            continue
        sep = rng.choice("，，、")
        text, result = "", {}
        for r in run:
            if text:
                text += sep
            for typ, spans in _shifted(r.result, 0, len(text)).items():
                for s, e, kids in spans:
                    _add(result, typ, s, e, kids)
            text += r.text
        out.append(Record(text, result, run[0].source, run[0].types))
    return out


# Words a reviewer puts before an aspect ("感觉信号不错", "用了半年，电池不行"). APC's clauses always start
# with their aspect, so a model trained on them alone learns "an aspect opens a clause" and misses one
# behind a lead-in. None of these holds an aspect, and none occurs in evals/extract-*.jsonl or in the
# product brief's example (a test checks both), so those stay a fair test of the augmentation.
LEAD_INS = ("感觉", "我觉得", "个人感觉", "总的来说", "说实话", "用了一段时间，", "实际用下来", "朋友都说", "大家都说",
            "不得不说", "总体而言", "试了一下，", "老实讲", "整体上", "就我而言", "用了三个月，", "跟上一代比，",
            "买回来发现", "网上都说", "另外", "而且", "同事说", "家里人都说", "第一次用，", "用了半年，", "坦白讲",
            "客观地说", "拿到手发现", "比起以前那台，", "平心而论", "据说", "看评测说", "目前来看", "相比之下")


def lead_ins(records: list[Record], p: float, *, seed: int = 13) -> list[Record]:
    """Training-only augmentation: each aspect that opens a clause (at the text's start or after "，"
    or "、") gets one of :data:`LEAD_INS` put before it with probability ``p``; spans move with their
    words. Records without 属性词 pass through unchanged."""
    rng = random.Random(seed)
    out = []
    for r in records:
        opens = sorted({s for s, _, _ in r.result.get("属性词", []) if s == 0 or r.text[s - 1] in "，、"})
        text, result = r.text, r.result
        for s in reversed(opens):  # from the back, so earlier offsets stay valid
            if rng.random() < p:
                lead = rng.choice(LEAD_INS)
                text, result = text[:s] + lead + text[s:], _shifted(result, s, len(lead))
        out.append(r if text == r.text else Record(text, result, r.source, r.types, r.extra))
    return out


def literature_records(folder: Path) -> list[Record]:
    out = []
    for ann in sorted(folder.glob("*.ann")):
        text = ann.with_suffix(".txt").read_text(encoding="utf-8")
        ents, rels = {}, []
        for line in ann.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if line.startswith("T") and len(parts) >= 3:
                typ, *rng = parts[1].split(" ")
                if ";" in " ".join(rng):
                    continue  # discontinuous mention
                s, e = int(rng[0]), int(rng[1])
                if text[s:e] == parts[2]:
                    ents[parts[0]] = (typ.split("-")[0], s, e)
            elif line.startswith("R") and len(parts) >= 2:
                rel, a1, a2 = parts[1].split(" ")[:3]
                rels.append((rel, a1.split(":")[1], a2.split(":")[1]))
        # one record per sentence-sized piece keeps examples short
        for lo, hi in _pieces(text, 200):
            r: dict = {}
            for tid, (typ, s, e) in ents.items():
                if lo <= s and e <= hi and typ in LITERATURE:
                    _add(r, LITERATURE[typ], s - lo, e - lo)
            for rel, a, b in rels:
                if a in ents and b in ents:
                    (ta, sa, ea), (_, sb, eb) = ents[a], ents[b]
                    if lo <= min(sa, sb) and max(ea, eb) <= hi and ta in LITERATURE:
                        _add(r, LITERATURE[ta], sa - lo, ea - lo, {rel: [(sb - lo, eb - lo)]})
            if r:
                out.append(Record(text[lo:hi], r, "literature", sorted(set(LITERATURE.values()))))
    return out


def _pieces(text: str, size: int) -> list[tuple[int, int]]:
    out, lo = [], 0
    while lo < len(text):
        hi = min(len(text), lo + size)
        if hi < len(text):
            cut = max(text.rfind(p, lo, hi) for p in "。！？\n")
            hi = cut + 1 if cut > lo else hi
        out.append((lo, hi))
        lo = hi
    return out


def load_records(datasets: str | Path, dev_fraction: float = 0.05, seed: int = 13,
                 dev_split: str = "contiguous") -> tuple[list[Record], list[Record]]:
    """(train, dev) records of every source; dev is carved per source with a fixed seed (the NER
    dev splits are the same as the NER model's): contiguous blocks of each file, or with ``dev_split``
    "random" the single records every extractor before issue 22 was trained and scored on."""
    root = Path(datasets)

    def split_dev(items, fraction, seed):
        return _split_dev(items, fraction, seed, dev_split)

    sources: dict[str, tuple[list, list]] = {}
    msra = read_ner(root / "ner/msra/train.bio", "bio")
    tr, dv = split_dev(msra, dev_fraction, seed)
    sources["msra"] = (ner_records(tr, MSRA, "msra"), ner_records(dv, MSRA, "msra"))
    sources["weibo"] = (ner_records(read_ner(root / "ner/weibo/train.conll", "weibo"), WEIBO, "weibo"),
                        ner_records(read_ner(root / "ner/weibo/dev.conll", "weibo"), WEIBO, "weibo"))
    tr, dv = split_dev(read_ner(root / "ner/cluener/train.json", "cluener"), dev_fraction, seed)
    sources["cluener"] = (ner_records(tr, CLUENER, "cluener"), ner_records(dv, CLUENER, "cluener"))
    sources["duie"] = split_dev(duie_records(root / "ie/duie/train_5000.json"), dev_fraction, seed)
    sources["sanwen"] = (pair_records(root / "ie/sanwen/train.txt", SANWEN, "sanwen"), pair_records(root / "ie/sanwen/valid.txt", SANWEN, "sanwen"))
    sources["finre"] = (pair_records(root / "ie/finre/train.txt", None, "finre"), pair_records(root / "ie/finre/valid.txt", None, "finre"))
    sources["duee"] = split_dev(duee_records(root / "ie/duee/train_1000.json"), dev_fraction, seed)
    sources["cote"] = split_dev(cote_records(root / "ie/cote/baidu_train.txt"), dev_fraction, seed)
    sources["aste"] = (aste_records(root / "ie/absa/aste/train.txt"), aste_records(root / "ie/absa/aste/dev.txt"))
    tr, dv = split_dev(apc_records(root / "ie/absa/apc"), dev_fraction, seed)  # split first, then join
    sources["apc"] = (join_clauses(tr, seed=seed), join_clauses(dv, seed=seed))
    sources["literature"] = (literature_records(root / "ie/literature/training"), literature_records(root / "ie/literature/validation"))
    train = [r for t, _ in sources.values() for r in t]
    dev = [r for _, d in sources.values() for r in d]
    return train, dev


def examples(records: Iterable[Record], *, negatives: int = 1, seed: int = 13, held_out: set[str] = HELD_OUT,
             keep_held_out: bool = False, augment: float = 0.0, merge_extra: bool = False) -> list[UieExample]:
    """Flatten records into prompt examples: each type at the top, each nested node under each
    parent span, plus up to ``negatives`` absent types per record (from the types its corpus
    annotates exhaustively, else from the other types of the corpus). With ``augment`` > 0, each
    type is asked under one of its :data:`SYNONYMS` with that probability, and the records' extra
    flat types are added: as types of their own, or, with ``merge_extra``, also merged into a
    top-level type of the same name (DuIE's 人物 then covers the people that are objects of a
    relation as well as those that are subjects; extract v2 was trained without the merge)."""
    rng = random.Random(seed)

    def name(typ: str) -> str:
        alts = SYNONYMS.get(typ)
        return rng.choice(alts) if alts and augment > 0 and rng.random() < augment else typ

    records = list(records)
    pool: dict[str, list[str]] = {}
    for r in records:
        pool.setdefault(r.source, [])
        pool[r.source].extend(k for k in r.result if k not in pool[r.source])
    out: list[UieExample] = []

    def walk(text: str, prefix: str, result: dict, source: str) -> None:
        for typ, spans in result.items():
            if typ in held_out and not keep_held_out:
                continue
            out.append(UieExample(prefix + name(typ), text, sorted({(s, e) for s, e, _ in spans}), source).check())
            for s, e, kids in spans:
                if kids:
                    walk(text, text[s:e] + "的", kids, source)

    for r in records:
        result = r.result
        if augment > 0 and merge_extra:
            result = {k: v + [x for x in r.extra.get(k, []) if not any(x[:2] == y[:2] for y in v)] for k, v in result.items()}
        walk(r.text, "", result, r.source)
        if augment > 0:
            walk(r.text, "", {k: v for k, v in r.extra.items() if k not in r.result}, r.source)
        absent = [t for t in (r.types or pool[r.source]) if t not in r.result and (keep_held_out or t not in held_out)]
        for t in rng.sample(absent, min(negatives, len(absent))):
            out.append(UieExample(name(t), r.text, [], r.source))
    return out


def eval_lines(records: Iterable[Record], limit_per_source: int = 200, seed: int = 13) -> list[dict]:
    """``zhie eval extract`` lines: {"text", "schema", "expected"} with expected in the API's shape."""
    by: dict[str, list[Record]] = {}
    for r in records:
        by.setdefault(r.source, []).append(r)
    out = []
    for source, rs in by.items():
        rng = random.Random(seed)
        rs = rs[:]
        rng.shuffle(rs)
        for r in rs[:limit_per_source]:
            schema = _schema_of(r)
            out.append({"source": source, "text": r.text, "schema": schema, "expected": _expected(r.text, r.result)})
    return out


def _schema_of(r: Record) -> dict:
    def node(result: dict) -> dict:
        d: dict = {}
        for typ, spans in result.items():
            kids: dict = {}
            for _, _, k in spans:
                for kk, vv in node(k).items():
                    kids[kk] = kids.get(kk) or vv
            d[typ] = kids or None
        return d

    schema = node(r.result)
    for t in r.types:
        schema.setdefault(t, None)  # absent types stay in the schema: predicting them is an error
    return schema


def _expected(text: str, result: dict) -> dict:
    def conv(res: dict) -> dict:
        out = {}
        for typ, spans in res.items():
            out[typ] = []
            for s, e, kids in sorted(spans, key=lambda x: (x[0], x[1])):
                d = {"text": text[s:e], "start": s, "end": e, "probability": 1.0}
                if kids:
                    d["relations"] = conv(kids)
                out[typ].append(d)
        return out

    return conv(result)


def main(argv: list[str] | None = None) -> None:
    """Write ``zhie eval extract`` files from the dev splits: one with every source, one with only
    the held-out type names (records that have them); with ``--train-held-out``, also the training
    side's records that have held-out names (the model reads those texts under other prompts, never
    under these names: a larger sample of unseen names than the dev side's)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m zhie.train.uie_data", description=main.__doc__)
    p.add_argument("--datasets", default="../shared/datasets")
    p.add_argument("--out", default="data/eval/extract-dev.jsonl")
    p.add_argument("--per-source", type=int, default=200)
    p.add_argument("--train-held-out", default="", help="also write this file from the training side (300 lines a source)")
    p.add_argument("--dev-split", default="contiguous", choices=["contiguous", "random"],
                   help="contiguous blocks (the dev protocol), or the old random split, to compare with figures measured on it")
    p.add_argument("--whole", action="append", default=[], metavar="SOURCE=FILE",
                   help="also write every dev record of SOURCE to FILE (e.g. cluener=data/eval/extract-cluener.jsonl: "
                        "its ten types on each line, as an independent CLUENER evaluation asks them)")
    a = p.parse_args(argv)
    train, dev = load_records(a.datasets, dev_split=a.dev_split)

    def write(path: Path, lines: list[dict]) -> None:
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = eval_lines(dev, a.per_source)
    write(out, lines)

    def has_held(result: dict) -> bool:
        return any(k in HELD_OUT or any(has_held(kids) for _, _, kids in v) for k, v in result.items())

    held = eval_lines([r for r in dev if has_held(r.result)], a.per_source)
    hp = out.with_name(out.stem + "-held-out.jsonl")
    write(hp, held)
    print(f"{len(lines)} lines -> {out}; {len(held)} with held-out type names -> {hp}")
    for spec in a.whole:
        source, _, path = spec.partition("=")
        whole = eval_lines([r for r in dev if r.source == source], limit_per_source=len(dev))
        if not whole or not path:
            raise SystemExit(f"--whole {spec!r}: SOURCE=FILE with a source of the dev records")
        write(Path(path), whole)
        print(f"{len(whole)} {source} dev lines -> {path}")
    if a.train_held_out:
        th = eval_lines([r for r in train if has_held(r.result)], 300)
        write(Path(a.train_held_out), th)
        print(f"{len(th)} training-side lines with held-out type names -> {a.train_held_out}")


if __name__ == "__main__":
    main()
