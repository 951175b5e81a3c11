"""zhie import of the two pointer-network extractors: PaddleNLP UIE (uie_pytorch and Paddle layouts) and
ModelScope SiameseUIE, on tiny checkpoints written here with the originals' exact keys and config files.

The float32 import must answer as the original architecture does, decoded by the original's rules written
independently below (Taskflow's ``get_span`` / ``get_id_and_prob`` / ``_convert_ids_to_results``;
SiameseUiePipeline's ``get_entities`` and hints): same spans, same offsets. INT8 agreement is reported.
"""

from __future__ import annotations

import json
import math
import pickle
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from zhie.models.formats import ImportError_  # noqa: E402

# -- a vocabulary with CJK characters, Latin wordpieces and digits; toy annotations -------------------------
TEXTS = [
    "2023年9月，华为在深圳发布了Mate60 Pro，起售价6999元。",
    "张伟教授昨天在北京大学作了关于iPhone15和5G的报告😀。",
    "ＡＢＣ公司的李娜说：这家餐厅的服务很好，价格也不贵。",
    "李白出生于碎叶城，王五和赵六在上海的复旦大学读书。",
    "浙江省温岭市的café测试：Apple公司CEO库克今天访华。",
]
SCHEMA_TYPES = ["人物", "地点", "组织机构"]
CHILD = "职称"
ANNOT = {  # what the tiny models are trained to find: the answers then depend on the prompt
    "人物": ["张伟", "李娜", "李白", "王五", "赵六", "库克"],
    "地点": ["深圳", "北京", "碎叶城", "上海", "浙江省温岭市"],
    "组织机构": ["华为", "北京大学", "ＡＢＣ公司", "复旦大学", "Apple公司"],
}
TITLES = {"张伟": ["教授"], "库克": ["CEO"]}
LATIN = ["ip", "##hone", "##15", "mate", "##60", "pro", "5", "##g", "apple", "ceo", "caf", "##e", "a", "##b", "##c",
         "20", "##23", "69", "##99", "1", "2", "3", "9", "the", "##s"]
PUNCT = list("，。：；、！？（）“”,.:;!?()-")


def write_vocab(path):
    chars = sorted({c for t in TEXTS + SCHEMA_TYPES + [CHILD, "的"] for c in t if "\u4e00" <= c <= "\u9fff"})
    chars += list("我你他她们是不了有在和")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PUNCT + LATIN + sorted(set(chars))
    seen, out = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            out.append(t)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return out


def hf_tok(folder):
    """The originals' tokeniser: BertTokenizerFast from the folder (uie_pytorch; ModelScope's AutoTokenizer)."""
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    assert tok.convert_tokens_to_ids("华") != tok.unk_token_id
    return tok


def _targets(offsets, text, spans, first):
    """0/1 start and end targets over a sequence whose text tokens begin at index ``first``."""
    start, end = torch.zeros(len(offsets)), torch.zeros(len(offsets))
    for span in spans:
        a = 0
        while (a := text.find(span, a)) >= 0:
            b = a + len(span)
            for i in range(first, len(offsets)):
                if offsets[i][0] == a and offsets[i][1] > offsets[i][0]:
                    start[i] = 1
                if offsets[i][1] == b and offsets[i][1] > offsets[i][0]:
                    end[i] = 1
            a = b
    return start, end


def _examples():
    """(prompt kind, type or parent, text, gold spans): every type on every text, and the child under
    every person (most have no title)."""
    out = []
    for text in TEXTS:
        for t in SCHEMA_TYPES:
            out.append(("root", t, text, [s for s in ANNOT[t] if s in text]))
        for p in ANNOT["人物"]:
            if p in text:
                out.append(("child", p, text, [s for s in TITLES.get(p, []) if s in text]))
    return out


def _train(model, batches, steps, lr=3e-3):
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and the CI machine is shared
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(steps):
            opt.zero_grad()
            loss = sum(model.loss(*b) for b in batches) / len(batches)
            loss.backward()
            opt.step()
        model.eval()
    finally:
        torch.set_num_threads(threads)
    return float(loss.detach())


# -- uie_pytorch layout ------------------------------------------------------------------------------------
def ernie_fields(vocab_size):
    """model_config.json's init_args[0] of an ERNIE 3.0 model, tiny (the real uie-base: 768/12/12/2048/4/3/40000)."""
    return {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32,
            "initializer_range": 0.02, "max_position_embeddings": 2048, "num_attention_heads": 4, "num_hidden_layers": 2,
            "task_type_vocab_size": 3, "type_vocab_size": 4, "use_task_id": True, "vocab_size": vocab_size,
            "pad_token_id": 0}


class OriginalUIE(torch.nn.Module):
    """uie_pytorch's UIE (model.py), written here: ``encoder`` an ERNIE model, ``linear_start``/``linear_end``,
    sigmoid; BCE on the probabilities as its finetune.py trains it."""

    def __init__(self, cfg):
        from copy import deepcopy

        from transformers import ErnieModel

        super().__init__()
        cfg = deepcopy(cfg)
        cfg._attn_implementation = "eager"
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        self.encoder = ErnieModel(cfg)
        self.linear_start = torch.nn.Linear(cfg.hidden_size, 1)
        self.linear_end = torch.nn.Linear(cfg.hidden_size, 1)

    def forward(self, input_ids, token_type_ids, attention_mask):
        seq = self.encoder(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)[0]
        return (torch.sigmoid(self.linear_start(seq).squeeze(-1)), torch.sigmoid(self.linear_end(seq).squeeze(-1)))

    def loss(self, enc, start, end):
        sp, ep = self(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        m = enc["attention_mask"].float()
        bce = torch.nn.functional.binary_cross_entropy
        return (bce(sp, start, weight=m) + bce(ep, end, weight=m)) / 2


def build_uie_original(folder, steps=250):
    """uie_pytorch's UIE trained a little on the toy annotations (prompts ``{type}`` and ``{span}的职称``).
    Returns (ernie config, the trained model, its state dict in the original key names)."""
    from transformers import ErnieConfig

    torch.manual_seed(0)
    vocab = write_vocab(folder / "vocab.txt")
    tok = hf_tok(folder)
    f = ernie_fields(len(vocab))
    cfg = ErnieConfig(**f, intermediate_size=4 * f["hidden_size"], layer_norm_eps=1e-12)
    model = OriginalUIE(cfg)
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight[0] = 0.0  # convert.py: "Fix: embedding error"
    prompts, texts, starts, ends = [], [], [], []
    for kind, t, text, gold in _examples():
        prompts.append(t if kind == "root" else f"{t}的{CHILD}")
        texts.append(text)
    enc = tok(prompts, texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
    for r, (kind, t, text, gold) in enumerate(_examples()):
        first = enc["token_type_ids"][r].tolist().index(1)
        s, e = _targets(enc["offset_mapping"][r].tolist(), text, gold, first)
        starts.append(s)
        ends.append(e)
    feats = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    _train(model, [(feats, torch.stack(starts), torch.stack(ends))], steps)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return cfg, model, state


def write_uie_pytorch(folder):
    """A folder as uie_pytorch's convert.py writes it: config.json, pytorch_model.bin (LayerNorm gamma/beta),
    vocab.txt, special_tokens_map.json, tokenizer_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, **specials,
                                                              "tokenizer_class": "BertTokenizer"}), encoding="utf-8")
    cfg, model, state = build_uie_original(folder)
    config = ernie_fields(cfg.vocab_size)
    config["architectures"] = ["UIE"]
    config["layer_norm_eps"] = 1e-12
    config["intermediate_size"] = 4 * config["hidden_size"]
    (folder / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    saved = {}
    for k, v in state.items():
        k = re.sub(r"LayerNorm\.weight$", "LayerNorm.gamma", re.sub(r"LayerNorm\.bias$", "LayerNorm.beta", k))
        saved[k] = v
    torch.save(saved, folder / "pytorch_model.bin")
    return cfg, model, state


def write_uie_paddle(folder, state, vocab_size, prefix="ernie."):
    """The same weights as Taskflow's Paddle files: model_state.pdparams (a pickle of numpy arrays, Paddle names,
    Linear weights [in, out]), model_config.json (init_class UIE, arguments in init_args[0])."""
    folder.mkdir(parents=True, exist_ok=True)
    write_vocab(folder / "vocab.txt")
    names = {
        r"encoder\.embeddings\.(\w+)_embeddings\.weight": "embeddings.{0}_embeddings.weight",
        r"encoder\.embeddings\.LayerNorm\.(weight|bias)": "embeddings.layer_norm.{0}",
        r"encoder\.encoder\.layer\.(\d+)\.attention\.self\.query\.(\w+)": "encoder.layers.{0}.self_attn.q_proj.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.attention\.self\.key\.(\w+)": "encoder.layers.{0}.self_attn.k_proj.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.attention\.self\.value\.(\w+)": "encoder.layers.{0}.self_attn.v_proj.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(\w+)": "encoder.layers.{0}.self_attn.out_proj.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(\w+)": "encoder.layers.{0}.norm1.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.intermediate\.dense\.(\w+)": "encoder.layers.{0}.linear1.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.output\.dense\.(\w+)": "encoder.layers.{0}.linear2.{1}",
        r"encoder\.encoder\.layer\.(\d+)\.output\.LayerNorm\.(\w+)": "encoder.layers.{0}.norm2.{1}",
        r"encoder\.pooler\.dense\.(\w+)": "pooler.dense.{0}",
    }
    params, table = {}, {}
    for k, v in state.items():
        a = v.numpy().astype(np.float32).copy()
        if k.startswith("linear_"):
            name = k
        else:
            for rx, tpl in names.items():
                m = re.fullmatch(rx, k)
                if m:
                    name = prefix + tpl.format(*m.groups())
                    break
            else:
                raise AssertionError(k)
        linear = name.endswith("weight") and ("_proj" in name or "linear" in name or "pooler" in name)
        if linear:
            a = a.T.copy()  # Paddle stores Linear weights [in, out]
        if name.endswith("word_embeddings.weight"):
            a[0] = 0.5  # Paddle's padding_idx row is ignored there (reads as zeros)
        params[name] = a
        table[name] = f"param_{len(table)}"
    params["StructuredToParameterName@@"] = table
    with open(folder / "model_state.pdparams", "wb") as f:
        pickle.dump(params, f, protocol=4)
    init = dict(ernie_fields(vocab_size), init_class="ErnieModel")
    (folder / "model_config.json").write_text(json.dumps({"init_args": [init], "init_class": "UIE"}), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "ErnieTokenizer"}),
                                                  encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                                                "cls_token": "[CLS]", "mask_token": "[MASK]"}), encoding="utf-8")


# -- Taskflow's decoding (PaddleNLP utils/tools.py, taskflow/utils.py, information_extraction.py) -----------
def get_bool_ids_greater_than(probs, limit=0.5):
    return [(i, float(p)) for i, p in enumerate(probs) if p > limit]


def get_span(start_ids, end_ids):
    start_ids = sorted(start_ids, key=lambda x: x[0])
    end_ids = sorted(end_ids, key=lambda x: x[0])
    sp = ep = 0
    couple = {}
    while sp < len(start_ids) and ep < len(end_ids):
        s, e = start_ids[sp][0], end_ids[ep][0]
        if s == e:
            couple[end_ids[ep]] = start_ids[sp]
            sp += 1
            ep += 1
        elif s < e:
            couple[end_ids[ep]] = start_ids[sp]
            sp += 1
        else:
            ep += 1
    return {(couple[e], e) for e in couple}


def get_id_and_prob(span_set, offset_mapping):
    offset_mapping = [list(x) for x in offset_mapping]
    prompt_end = offset_mapping[1:].index([0, 0])
    bias = offset_mapping[prompt_end][1] + 1
    for i in range(1, prompt_end + 1):
        offset_mapping[i][0] -= bias
        offset_mapping[i][1] -= bias
    ids, probs = [], []
    for start, end in span_set:
        probs.append(start[1] * end[1])
        ids.append((offset_mapping[start[0]][0], offset_mapping[end[0]][1]))
    return ids, probs


def dbc2sbc(s):
    """Taskflow's full-width -> ASCII folding of a prompt (U+3000 stays: its image 0x20 is outside the range)."""
    out = ""
    for ch in s:
        code = 0x0020 if ord(ch) == 0x3000 else ord(ch) - 0xFEE0
        out += chr(code) if 0x21 <= code <= 0x7E else ch
    return out


SCHEMA = {"人物": {CHILD: None}, "地点": None, "组织机构": None}


def taskflow_extract(model, tok, text, schema):
    """UIETask._multi_stage_predict on one short text (no split: max_seq_len 512) for a two-level schema:
    {type: [(start, end, prob, {child: [(start, end, prob)]})]}; answers lying inside the prompt (Taskflow's
    classification path) are collected apart."""
    inside_prompt = []

    @torch.no_grad()
    def predict(prompt):
        enc = tok(dbc2sbc(prompt), text, return_offsets_mapping=True, return_tensors="pt")
        sp, epr = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        spans = get_span(get_bool_ids_greater_than(sp[0].tolist()), get_bool_ids_greater_than(epr[0].tolist()))
        ids, probs = get_id_and_prob(spans, enc["offset_mapping"][0].tolist())
        out = []
        for (s, e), p in zip(ids, probs):
            if s < 0 and e >= 0:
                continue
            if e < 0:
                inside_prompt.append((prompt, s, e))
                continue
            out.append((s, e, p))
        return sorted(out)

    result = {}
    for t, children in schema.items():
        found = []
        for s, e, p in predict(t):
            rel = {c: predict(text[s:e] + "的" + c) for c in (children or {})}
            found.append((s, e, p, rel))
        result[t] = found
    return result, inside_prompt


# -- SiameseUIE layout -------------------------------------------------------------------------------------
class OriginalSiamese(torch.nn.Module):
    """SiameseUieModel, written here from modelscope's siamese_uie.py with transformers' BertModel: a 12-layer
    BertModel whose layers 6-11 move under ``crossattention``; circle loss as its forward trains it."""

    def __init__(self, cfg):
        from copy import deepcopy

        from transformers import BertModel
        from transformers.models.bert.modeling_bert import BertEncoder

        super().__init__()
        cfg = deepcopy(cfg)
        cfg._attn_implementation = "eager"
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        self.plm = BertModel(cfg, add_pooling_layer=True)
        cross = deepcopy(cfg)
        cross.num_hidden_layers = 6
        self.crossattention = BertEncoder(cross)
        self.crossattention.layer = self.plm.encoder.layer[6:]
        self.plm.encoder.layer = self.plm.encoder.layer[:6]
        self.head_clsf = torch.nn.Linear(cfg.hidden_size, 1)
        self.tail_clsf = torch.nn.Linear(cfg.hidden_size, 1)

    def text_output(self, ids, mask):
        return self.plm(ids, attention_mask=mask)[0]

    def fast_inference(self, seq, mask, hint_ids, hint_mask):
        pos = torch.arange(hint_ids.size(1)).expand((1, -1)) + seq.size(1)
        hint = self.plm(hint_ids, attention_mask=hint_mask, token_type_ids=torch.ones_like(hint_mask), position_ids=pos)[0]
        cat = torch.cat([seq, hint], dim=1)
        m = torch.cat([mask, hint_mask], dim=1)[:, None, None, :].float()
        h = self.crossattention(hidden_states=cat, attention_mask=(1.0 - m) * torch.finfo(torch.float32).min)[0]
        h = h[:, : seq.size(1)]
        return (self.head_clsf(h).squeeze(-1) + (1 - mask) * -10000, self.tail_clsf(h).squeeze(-1) + (1 - mask) * -10000)

    @staticmethod
    def circle_loss(y_pred, y_true):
        y_pred = (1 - 2 * y_true) * y_pred
        neg = torch.cat([y_pred - y_true * 1e12, torch.zeros_like(y_pred[:, :1])], dim=-1)
        pos = torch.cat([y_pred - (1 - y_true) * 1e12, torch.zeros_like(y_pred[:, :1])], dim=-1)
        return (torch.logsumexp(neg, dim=-1) + torch.logsumexp(pos, dim=-1)).mean()

    def loss(self, ids, mask, hint_ids, hint_mask, head, tail):
        h, t = self.fast_inference(self.text_output(ids, mask), mask, hint_ids, hint_mask)
        return self.circle_loss(h, head) + self.circle_loss(t, tail)


def build_siamese_original(folder, steps=60):
    """SiameseUieModel trained a little on the toy annotations (hints ``{type}: `` and ``人物: {span}, 职称: ``).
    Returns (bert config, the trained model, its state dict: plm.*, crossattention.layer.0-5.*, head/tail_clsf)."""
    from transformers import BertConfig

    torch.manual_seed(0)
    vocab = write_vocab(folder / "vocab.txt")
    tok = hf_tok(folder)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=12, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=512, type_vocab_size=2)
    model = OriginalSiamese(cfg)
    batches = []
    for text in TEXTS:  # one text per batch, its hints together (the pipeline pads one level's hints together)
        t = tok([text], return_offsets_mapping=True, return_tensors="pt")
        exs = [e for e in _examples() if e[2] == text]
        hints = [f"{x}: " if kind == "root" else f"人物: {x}, {CHILD}: " for kind, x, _, _ in exs]
        h = tok(hints, padding=True, return_tensors="pt")
        heads, tails = zip(*(_targets(t["offset_mapping"][0].tolist(), text, gold, 1) for _, _, _, gold in exs))
        n = len(hints)
        batches.append((t["input_ids"].expand(n, -1), t["attention_mask"].expand(n, -1), h["input_ids"],
                        h["attention_mask"], torch.stack(heads), torch.stack(tails)))
    _train(model, batches, steps)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["plm.embeddings.position_ids"] = torch.arange(512)[None]  # a buffer transformers < 4.31 saved
    return cfg, model, state


def write_siamese(folder):
    folder.mkdir(parents=True, exist_ok=True)
    cfg, model, state = build_siamese_original(folder)
    c = cfg.to_dict()
    c.update(model_type="bert", architectures=["SiameseUieModel"], num_hidden_layers=12)
    (folder / "config.json").write_text(json.dumps(c, indent=2), encoding="utf-8")
    (folder / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": "siamese-uie", "model": {"type": "bert"},
        "pipeline": {"type": "siamese-uie"}, "preprocessor": {"type": "siamese-uie-preprocessor"}}), encoding="utf-8")
    torch.save(state, folder / "pytorch_model.bin")
    return cfg, model, state


def siamese_extract(model, tok, text, schema):
    """SiameseUiePipeline on one short text (one window) for a two-level schema: {type: [(start, end,
    {child: [(start, end)]})]}, spans by get_entities (logits > 0.5 at every position of ``[CLS] text [SEP]``,
    every head to the first tail at or after it), hints ``{type}: `` and ``{type}: {span}, {child}: ``."""
    t = tok([text], return_offsets_mapping=True)
    ids = torch.tensor(t["input_ids"])
    mask = torch.tensor(t["attention_mask"])
    offsets = t["offset_mapping"][0]

    @torch.no_grad()
    def level(hints):
        seq = model.text_output(ids, mask)
        h = tok(hints, padding=True, truncation=True, max_length=128)
        out = []
        for i in range(len(hints)):
            head, tail = model.fast_inference(seq, mask, torch.tensor([h["input_ids"][i]]), torch.tensor([h["attention_mask"][i]]))
            head, tail = head[0].tolist(), tail[0].tolist()
            ents = []
            for ph in [j for j in range(len(head)) if head[j] > 0.5]:
                for pt in range(ph, len(tail)):
                    if tail[pt] > 0.5:
                        ents.append((offsets[ph][0], offsets[pt][1]))
                        break
            out.append(sorted(ents))
        return out

    result = {}
    types = list(schema)
    for st, ents in zip(types, level([f"{st}: " for st in types])):
        found = []
        for s, e in ents:
            children = list(schema[st] or {})
            rel = dict(zip(children, level([f"{st}: {text[s:e]}, {c}: " for c in children]))) if children else {}
            found.append((s, e, rel))
        result[st] = found
    return result


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uie_src(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uie") / "uie-tiny"
    cfg, model, state = write_uie_pytorch(folder)
    return folder, cfg, model, state


@pytest.fixture(scope="module")
def paddle_src(tmp_path_factory, uie_src):
    _, cfg, _, state = uie_src
    folder = tmp_path_factory.mktemp("uie-paddle") / "uie-tiny"
    write_uie_paddle(folder, state, cfg.vocab_size)
    return folder


@pytest.fixture(scope="module")
def siamese_src(tmp_path_factory):
    folder = tmp_path_factory.mktemp("siamese") / "siamese-tiny"
    cfg, model, state = write_siamese(folder)
    return folder, cfg, model, state


def logits_vs_onnx(conv, tmp_path):
    """(largest |reference - module|, largest |reference - onnxruntime|) over the format's parity inputs."""
    import onnxruntime as ort

    from zhie.convert.importer import export_graph

    path = tmp_path / "g.onnx"
    export_graph(conv, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    d_mod = d_ort = 0.0
    for inputs in conv.parity_inputs:
        with torch.no_grad():
            ref = conv.reference(*inputs).numpy()
            mod = conv.module(*inputs).numpy()
        got = sess.run(None, {n: x.numpy() for n, x in zip(conv.input_names, inputs)})[0]
        assert ref.shape == got.shape
        d_mod = max(d_mod, float(np.abs(ref - mod).max()))
        d_ort = max(d_ort, float(np.abs(ref - got).max()))
    return d_mod, d_ort


# -- tests: conversion and logits --------------------------------------------------------------------------
def test_uie_pytorch_layout_is_detected_and_matches_uie_pytorch(uie_src, tmp_path):
    from zhie.models.formats import detect
    from zhie.models.formats.paddle_uie import convert

    src, cfg, orig, _ = uie_src
    fmt, match = detect(src, "extract")
    assert fmt.name == "paddle-uie" and match.task == "extract"
    conv = convert(src, "extract")
    assert conv.config["split"] == 0 and conv.config["pairing"] == "nearest_start" and conv.config["prompt"] == "uie"
    assert conv.config["tokenizer"]["lowercase"] is True and conv.config["specials"] == {"cls": 2, "sep": 3, "pad": 0, "unk": 1}
    d_mod, d_ort = logits_vs_onnx(conv, tmp_path)
    assert d_mod < 1e-4 and d_ort < 1e-4, (d_mod, d_ort)
    # the format's reference (uie_pytorch's UIE over the checkpoint's own keys) is the model that was saved
    for ids, mask, types in conv.parity_inputs:
        with torch.no_grad():
            sp, ep = orig(ids, types, mask)
            ref = torch.sigmoid(conv.reference(ids, mask, types))
        m = mask.bool()
        assert torch.allclose(sp[m], ref[..., 0][m], atol=1e-5) and torch.allclose(ep[m], ref[..., 1][m], atol=1e-5)


def test_uie_paddle_layout_reads_pdparams_without_paddle_and_transposes(uie_src, paddle_src, tmp_path):
    import onnxruntime as ort

    from zhie.models.formats import detect
    from zhie.models.formats.paddle_uie import convert
    from zhie.convert.importer import export_graph

    _, _, orig, _ = uie_src
    fmt, match = detect(paddle_src, "extract")
    assert fmt.name == "paddle-uie" and "Paddle" in " ".join(match.reasons)
    conv = convert(paddle_src, "extract")
    export_graph(conv, tmp_path / "pd.onnx")
    sess = ort.InferenceSession(str(tmp_path / "pd.onnx"), providers=["CPUExecutionProvider"])
    for ids, mask, types in conv.parity_inputs:
        with torch.no_grad():
            sp, ep = orig(ids, types, mask)  # the torch model the Paddle file was written from
        got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})[0]
        m = mask.bool().numpy()
        assert np.abs(torch.logit(sp.double()).numpy()[m] - got[..., 0][m]).max() < 1e-3
        assert np.abs(torch.logit(ep.double()).numpy()[m] - got[..., 1][m]).max() < 1e-3


def test_uie_paddle_model_zoo_prefix_and_mixed_prefixes(uie_src, tmp_path):
    """The old model_zoo UIE keeps the encoder under ``encoder.``; a file with both prefixes is refused."""
    from zhie.models.formats.paddle_uie import convert

    _, cfg, orig, state = uie_src
    write_uie_paddle(tmp_path / "zoo", state, cfg.vocab_size, prefix="encoder.")
    conv = convert(tmp_path / "zoo", "extract")
    for ids, mask, types in conv.parity_inputs:
        with torch.no_grad():
            sp, _ = orig(ids, types, mask)
            got = conv.module(ids, mask, types)[..., 0]
        m = mask.bool()
        assert float((torch.logit(sp.double())[m] - got.double()[m]).abs().max()) < 1e-3
    params = pickle.loads((tmp_path / "zoo" / "model_state.pdparams").read_bytes())
    params["ernie.pooler.dense.bias"] = params["encoder.pooler.dense.bias"]
    (tmp_path / "zoo" / "model_state.pdparams").write_bytes(pickle.dumps(params, protocol=4))
    with pytest.raises(ImportError_, match="both 'encoder.' and 'ernie.'"):
        convert(tmp_path / "zoo", "extract")


def test_paddle_pickle_with_code_in_it_is_refused(tmp_path):
    from zhie.models.formats.paddle_uie import read_pdparams

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "model_state.pdparams").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ImportError_, match="builtins.print"):
        read_pdparams(tmp_path / "model_state.pdparams")


def test_siamese_uie_split_graph_matches_siamese_uie_model(siamese_src, tmp_path):
    from zhie.models.formats.siamese_uie import convert_siamese, sniff

    src, _, orig, _ = siamese_src
    m = sniff(src)
    assert m is not None and m.ok and m.format == "modelscope" and m.task == "extract"
    conv = convert_siamese(src, None)
    assert conv.config["split"] == 6 and conv.config["pairing"] == "every_start" and conv.config["prompt"] == "siamese"
    assert abs(conv.config["threshold"] - 1 / (1 + math.exp(-0.5))) < 1e-9
    with torch.no_grad():  # the exported module against the reference (the import tests check the ONNX graph)
        for inputs in conv.parity_inputs:
            assert float((conv.module(*inputs) - conv.reference(*inputs)).abs().max()) < 1e-4
    # the format's reference answers as the model that was saved
    p_ids, p_mask, t_ids, t_mask, pp, pt = conv.parity_inputs[0]
    with torch.no_grad():
        ref = conv.reference(*conv.parity_inputs[0])
        for r in range(len(pp)):
            n = int(t_mask[pt[r]].sum())
            ids, am = t_ids[pt[r] : pt[r] + 1, :n], t_mask[pt[r] : pt[r] + 1, :n]
            h, t = orig.fast_inference(orig.text_output(ids, am), am, p_ids[pp[r] : pp[r] + 1], p_mask[pp[r] : pp[r] + 1])
            assert torch.allclose(ref[r, :n, 0], h[0], atol=1e-4) and torch.allclose(ref[r, :n, 1], t[0], atol=1e-4)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("crossattention.layer.3.output.dense.weight"), "crossattention.layer.3.output.dense.weight|missing"),
    (lambda s: s.__setitem__("plm.encoder.layer.7.output.dense.bias", torch.zeros(32)), "plm.encoder.layer.7"),
    (lambda s: s.__setitem__("extra_head.weight", torch.zeros(2)), "extra_head.weight"),
])
def test_siamese_uie_bad_state_dict_is_a_clear_error(siamese_src, tmp_path, damage, message):
    import shutil

    from zhie.models.formats.siamese_uie import convert_siamese

    src = tmp_path / "siamese"
    shutil.copytree(siamese_src[0], src)
    state = dict(siamese_src[3])
    damage(state)
    torch.save(state, src / "pytorch_model.bin")
    with pytest.raises(ImportError_, match=message):
        convert_siamese(src, None)


def test_uie_errors_name_the_file(uie_src, tmp_path):
    import shutil

    from zhie.models.formats.paddle_uie import convert, sniff

    src = tmp_path / "uie"
    shutil.copytree(uie_src[0], src)
    with pytest.raises(ImportError_, match="extraction model"):
        convert(src, "ner")
    state = torch.load(src / "pytorch_model.bin", weights_only=True)
    state.pop("linear_end.bias")
    torch.save(state, src / "pytorch_model.bin")
    with pytest.raises(ImportError_, match="linear_end.bias"):
        convert(src, "extract")
    uiem = tmp_path / "uiem"
    uiem.mkdir()
    (uiem / "model_state.pdparams").write_bytes(pickle.dumps({}))
    (uiem / "model_config.json").write_text(json.dumps({"init_args": [{}], "init_class": "UIEM"}))
    m = sniff(uiem)
    assert m is not None and not m.ok and "uie-m" in m.reasons[0]


# -- tests: imported, served by zhie's extractor, against the originals' decoding --------------------------
def _served(folder, texts, schema):
    """{type: [(start, end, prob, {child: [(start, end, prob)]})]} per text, from zhie's extractor on ``folder``."""
    from zhie.tasks.extract import SchemaExtractor
    from zhie.tasks.schema import parse_schema

    ex = SchemaExtractor.load(str(folder), threads=1)
    out = []
    for text, res in zip(texts, ex.predict(texts, parse_schema(schema))):
        for spans in res.values():
            for sp in spans:
                assert text[sp.start : sp.end] == sp.text  # offsets are exact code points
        out.append({t: [(sp.start, sp.end, sp.probability,
                         {c: [(x.start, x.end, x.probability) for x in sp.relations.get(c, [])] for c in (schema[t] or {})})
                        for sp in res.get(t, [])] for t in schema})
    return out


def _tuples(results, with_prob=False):
    """Flat set of (text index, type, start, end[, parent start, parent end]) for F1 and equality."""
    out = set()
    for d, res in enumerate(results):
        for t, spans in res.items():
            for sp in spans:
                s, e, rel = sp[0], sp[1], sp[-1]
                out.add((d, t, s, e))
                for c, kids in rel.items():
                    for k in kids:
                        out.add((d, f"{t}/{c}", k[0], k[1], s, e))
    return out


def _f1(a, b):
    return 1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b))


def _import(src, out, precision):
    from zhie.convert.importer import import_model

    return import_model(src, "extract", out, precision=precision, log=lambda *a: None)


@pytest.mark.slow  # three imports (export, fuse, check; one INT8) of a model trained in the fixture
def test_uie_import_serves_taskflow_answers(uie_src, paddle_src, tmp_path):
    src, _, orig, _ = uie_src
    tok = hf_tok(src)
    want, inside = zip(*(taskflow_extract(orig, tok, t, SCHEMA) for t in TEXTS))
    assert not any(inside), inside  # no answer inside a prompt: every Taskflow span is a text span
    ref = _tuples(want)
    assert len(ref) >= 10 and any("/" in x[1] for x in ref), ref  # the fixture answers, one level down too
    for name, folder in (("pytorch", src), ("paddle", paddle_src)):
        cfg = _import(folder, tmp_path / f"{name}-fp32", "fp32")
        assert cfg["source"]["format"] == "paddle-uie" and cfg["check"]["float32"]["max_logit_diff"] < 1e-3
        dec = cfg["check"]["float32"]["decoded"]  # the import's own decoded check ran and agreed
        assert dec["ok"] and dec["span_f1"] == 1.0 and dec["texts"] >= 3, dec
        print(f"\nUIE {name} float32: logit difference {cfg['check']['float32']['max_logit_diff']:.3g}, "
              f"{len(ref)} reference spans, import check {dec['reference_spans']} spans F1 {dec['span_f1']}")
        got = _served(tmp_path / f"{name}-fp32", TEXTS, SCHEMA)
        assert _tuples(got) == ref, (name, sorted(_tuples(got) ^ ref))
        for g, w in zip(got, want):  # probability = start x end, as Taskflow
            for t in SCHEMA:
                for a, b in zip(g[t], w[t]):
                    assert abs(a[2] - b[2]) < 1e-4
    cfg = _import(src, tmp_path / "int8", "int8")
    f1 = _f1(_tuples(_served(tmp_path / "int8", TEXTS, SCHEMA)), ref)
    print(f"\nUIE INT8: served F1 {f1:.3f} against Taskflow's decoding of the float model; "
          f"logit difference {cfg['check']['int8']['max_logit_diff']:.3g}; import check {cfg['check']['int8']['decoded']}")


@pytest.mark.slow  # two imports of a 12-layer model, one INT8
def test_siamese_import_serves_the_pipeline_answers(siamese_src, tmp_path):
    src, _, orig, _ = siamese_src
    tok = hf_tok(src)
    want = [siamese_extract(orig, tok, t, SCHEMA) for t in TEXTS]
    ref = _tuples(want)
    assert len(ref) >= 10 and any("/" in x[1] for x in ref), ref
    starts = [s for d in want for spans in d.values() for s, _, _ in spans]
    assert len(starts) != len(set(starts)) or any(  # overlapping spans: every start kept (pairing every_start)
        a[0] < b[0] < a[1] for d in want for spans in d.values() for a in spans for b in spans), want
    cfg = _import(src, tmp_path / "fp32", "fp32")
    assert cfg["source"]["format"] == "modelscope" and cfg["split"] == 6
    dec = cfg["check"]["float32"]["decoded"]
    assert dec["ok"] and dec["span_f1"] == 1.0 and dec["texts"] >= 3, dec
    print(f"\nSiameseUIE float32: logit difference {cfg['check']['float32']['max_logit_diff']:.3g}, "
          f"{len(ref)} reference spans, import check {dec['reference_spans']} spans F1 {dec['span_f1']}")
    got = _served(tmp_path / "fp32", TEXTS, SCHEMA)
    assert _tuples(got) == ref, sorted(_tuples(got) ^ ref)
    cfg = _import(src, tmp_path / "int8", "int8")
    f1 = _f1(_tuples(_served(tmp_path / "int8", TEXTS, SCHEMA)), ref)
    print(f"\nSiameseUIE INT8: served F1 {f1:.3f} against the pipeline's decoding of the float model; "
          f"logit difference {cfg['check']['int8']['max_logit_diff']:.3g}; import check {cfg['check']['int8']['decoded']}")
