"""PaddleNLP UIE (uie-base / medium / mini / micro / nano) -> zhie's joint extractor graph.

Two layouts of the same model (../shared/docs/checkpoint-layouts.md section 4):

- **PyTorch** (``HUSTAI/uie_pytorch``'s ``convert.py`` writes it): ``config.json`` with ``architectures:
  ["UIE"]``, ``pytorch_model.bin`` holding ``encoder.*`` (an ERNIE 3.0 model, task-type embeddings when
  ``use_task_id``, LayerNorm tensors named ``gamma``/``beta``), ``linear_start.*``, ``linear_end.*``.
- **Paddle** (what Taskflow downloads): ``model_config.json`` with ``init_class: UIE`` (arguments at the top or
  in ``init_args[0]``), ``model_state.pdparams``. The pickle is read without paddle, by an unpickler that
  admits numpy arrays only. Keys are mapped as uie_pytorch's ``build_params_map`` maps them (prefix
  ``encoder.`` in the old model_zoo class, ``ernie.`` in ``paddlenlp.transformers.UIE``); every Paddle
  Linear weight is stored [in, out] and is transposed; the ``[PAD]`` row of the word embeddings is zeroed
  (a Paddle ``padding_idx`` embedding reads zeros there), as uie_pytorch's converter does.

The graph (docs/model-folder.md, extract joint): ``input_ids`` = ``[CLS] prompt [SEP] text [SEP]``,
``attention_mask``, ``token_type_ids`` (0 up to the first ``[SEP]``, 1 after) -> ``pointers`` (batch, seq, 2),
the start and end logits before Taskflow's sigmoid; positions 0..T-1 and task type 0 are inside.
Decoding follows Taskflow: probabilities above 0.5, ``get_span`` pairing, probability start x end,
relation prompts ``{span}的{child}`` (config ``prompt: "uie"``, ``pairing: "nearest_start"``).
"""

from __future__ import annotations

import importlib
import io
import pickle
import re
from pathlib import Path

from . import Converted, Format, ImportError_, Match, read_json, register, weight_files
from .uie_common import MAX_POSITIONS, PARITY_PROMPTS, PARITY_TEXTS, hf_tokenizer, wordpiece_for

NAME = "paddle-uie"
SIZES = {(12, 768): "uie-base", (6, 768): "uie-medium", (6, 384): "uie-mini", (4, 384): "uie-micro", (4, 312): "uie-nano"}
UNSUPPORTED = {"UIEM": "uie-m (ERNIE-M, multilingual)", "UIEX": "uie-x (ERNIE-Layout, documents)"}

# Paddle key -> uie_pytorch key (uie_pytorch:convert.py::build_params_map, with the ``ernie.`` prefix of
# paddlenlp.transformers.UIE beside model_zoo's ``encoder.``); True: a Linear weight stored [in, out]
_E = r"^(?:encoder|ernie)\."
PADDLE_RULES: tuple[tuple[str, str, bool], ...] = (
    (_E + r"embeddings\.(word|position|token_type|task_type)_embeddings\.weight$", "encoder.embeddings.{0}_embeddings.weight", False),
    (_E + r"embeddings\.layer_norm\.(weight|bias)$", "encoder.embeddings.LayerNorm.{0}", False),
    (_E + r"encoder\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$", "encoder.encoder.layer.{0}.attention.self.query.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$", "encoder.encoder.layer.{0}.attention.self.key.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$", "encoder.encoder.layer.{0}.attention.self.value.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)$", "encoder.encoder.layer.{0}.attention.output.dense.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.norm1\.(weight|bias)$", "encoder.encoder.layer.{0}.attention.output.LayerNorm.{1}", False),
    (_E + r"encoder\.layers\.(\d+)\.linear1\.(weight|bias)$", "encoder.encoder.layer.{0}.intermediate.dense.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.linear2\.(weight|bias)$", "encoder.encoder.layer.{0}.output.dense.{1}", True),
    (_E + r"encoder\.layers\.(\d+)\.norm2\.(weight|bias)$", "encoder.encoder.layer.{0}.output.LayerNorm.{1}", False),
    (_E + r"pooler\.dense\.(weight|bias)$", "encoder.pooler.dense.{0}", True),
    (r"^linear_(start|end)\.(weight|bias)$", "linear_{0}.{1}", True),
)
PADDLE_DROPPED = (r"^StructuredToParameterName@@$", r"^UnpackBigParamInfor@@$")


# -- reading a .pdparams without paddle --------------------------------------------------------------------
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}


class _NumpyOnly(pickle.Unpickler):
    """Admits numpy arrays, dtypes and ordered dicts; any other global (code) is refused."""

    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is not a numpy array")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return getattr(importlib.import_module(module), name)


def read_pdparams(path: Path) -> dict:
    """{name: numpy array} of a Paddle ``model_state.pdparams`` (``paddle.save`` of a state dict: a pickle of
    numpy arrays; a tensor saved as ``(name, array)`` is read as its array)."""
    import numpy as np

    try:
        data = _NumpyOnly(io.BytesIO(path.read_bytes())).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise ImportError_(f"{path} is not a readable Paddle state dict (a pickle of numpy arrays): "
                           f"{type(e).__name__}: {e}") from None
    if not isinstance(data, dict):
        raise ImportError_(f"{path}: expected a state dict, got {type(data).__name__}")
    out = {}
    for k, v in data.items():
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], np.ndarray):
            v = v[1]
        out[str(k)] = v
    return out


def paddle_to_torch_names(params: dict, file: Path) -> tuple[dict, list[str]]:
    """uie_pytorch's conversion of Paddle's keys: (state dict of float32 torch tensors, dropped keys)."""
    import numpy as np
    import torch

    rules = [(re.compile(rx), tpl, tr) for rx, tpl, tr in PADDLE_RULES]
    drops = [re.compile(rx) for rx in PADDLE_DROPPED]
    prefixes = {k.split(".", 1)[0] for k in params if k.startswith(("encoder.", "ernie."))}
    if len(prefixes) > 1:
        raise ImportError_(f"{file}: the encoder is under both 'encoder.' and 'ernie.'; one checkpoint has one")
    state, dropped, unknown = {}, [], []
    for k, v in params.items():
        if any(rx.search(k) for rx in drops):
            dropped.append(k)
            continue
        for rx, tpl, tr in rules:
            m = rx.match(k)
            if m:
                break
        else:
            unknown.append(k)
            continue
        if not isinstance(v, np.ndarray):
            raise ImportError_(f"{file}: {k!r} is a {type(v).__name__}, not an array")
        a = np.asarray(v, dtype=np.float32)
        if tr and k.endswith(".weight"):
            if a.ndim != 2:
                raise ImportError_(f"{file}: {k!r} should be a matrix, it has shape {a.shape}")
            a = a.T
        state[tpl.format(*m.groups())] = torch.from_numpy(np.ascontiguousarray(a))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise ImportError_(f"{file}: {len(unknown)} key(s) neither mapped nor dropped: {shown}")
    return state, dropped


# -- detection ---------------------------------------------------------------------------------------------
def _paddle_class(mc: dict) -> str | None:
    if isinstance(mc.get("init_class"), str):
        return mc["init_class"]
    arch = mc.get("architectures")
    if isinstance(arch, list) and arch and isinstance(arch[0], str):
        return arch[0]
    return None


def sniff(src: Path) -> Match | None:
    try:
        if (src / "config.json").is_file():
            cfg = read_json(src / "config.json")
            arch = cfg.get("architectures") or []
            if isinstance(arch, list) and "UIE" in arch:
                try:
                    files = [f.name for f in weight_files(src)]
                except ImportError_ as e:
                    return Match(NAME, "extract", [f"config.json architectures {arch}", str(e)], ok=False)
                return Match(NAME, "extract", [f"config.json architectures {arch} (uie_pytorch)", f"weights {files}"])
            for c, what in UNSUPPORTED.items():
                if c in arch:
                    return Match(NAME, "extract", [f"config.json architectures {arch}: {what} is not supported"], ok=False)
        if (src / "model_state.pdparams").is_file() and (src / "model_config.json").is_file():
            cls = _paddle_class(read_json(src / "model_config.json"))
            if cls == "UIE":
                return Match(NAME, "extract", ["model_config.json init_class UIE", "model_state.pdparams (Paddle)"])
            if cls in UNSUPPORTED:
                return Match(NAME, "extract", [f"model_config.json init_class {cls}: {UNSUPPORTED[cls]} is not supported"],
                             ok=False)
            return Match(NAME, "extract", [f"model_config.json init_class {cls!r} is not UIE"], ok=False)
    except ImportError_ as e:
        return Match(NAME, None, [str(e)], ok=False)
    return None


# -- conversion --------------------------------------------------------------------------------------------
def _load(src: Path) -> tuple[dict, dict, str, Path, list[Path], list[str], int]:
    """(config fields, uie_pytorch-named state, layout, weights file, files read, dropped keys, task id)."""
    from . import load_state

    if (src / "config.json").is_file() and "UIE" in (read_json(src / "config.json").get("architectures") or []):
        fields = read_json(src / "config.json")
        files = weight_files(src)
        return fields, load_state(files), "pytorch", files[0], [src / "config.json", *files], [], 0
    mc_path, wpath = src / "model_config.json", src / "model_state.pdparams"
    mc = read_json(mc_path)
    cls = _paddle_class(mc)
    if cls != "UIE":
        raise ImportError_(f"{mc_path}: init_class {cls!r} " + (f"({UNSUPPORTED[cls]}) is not supported" if cls in UNSUPPORTED
                                                                 else "is not UIE"))
    fields = mc
    if isinstance(mc.get("init_args"), list) and mc["init_args"]:
        fields = mc["init_args"][0]
        if not isinstance(fields, dict):
            raise ImportError_(f"{mc_path}: init_args[0] is not an object")
    fields = dict(fields)
    if "sent_type_vocab_size" in fields:
        fields["type_vocab_size"] = fields["sent_type_vocab_size"]
    fields["layer_norm_eps"] = 1e-12  # ErniePretrainedModel.init_weights sets every LayerNorm's epsilon to 1e-12
    if not wpath.is_file():
        raise ImportError_(f"{wpath} is missing")
    state, dropped = paddle_to_torch_names(read_pdparams(wpath), wpath)
    word = state.get("encoder.embeddings.word_embeddings.weight")
    if word is not None:
        word[int(fields.get("pad_token_id", 0) or 0)] = 0.0  # Paddle's padding_idx row reads as zeros
    task_id = int(fields.get("task_id", 0) or 0)
    return fields, state, "paddle", wpath, [mc_path, wpath], dropped, task_id


def convert(src: Path, task: str = "extract", labels: list[str] | None = None) -> Converted:
    from transformers import ErnieConfig

    from .bert_keys import TASK_TYPE, HeadSlot, KeyMap, bert_config_from, build_encoder, map_keys
    from .uie_modules import JointPointers
    from .uie_reference import UieReference

    if task != "extract":
        raise ImportError_(f"{src}: a UIE checkpoint is an extraction model (--task extract), not {task!r}")
    if labels:
        raise ImportError_("--labels does not apply to UIE: its types are named in each request's schema")
    fields, state, layout, wfile, read, dropped, task_id = _load(src)
    keymap = KeyMap(heads=tuple(HeadSlot(f"{h}.{p}", (f"linear_{h}.{p}",)) for h in ("start", "end") for p in ("weight", "bias")),
                    pooler=False, prefixes=("encoder.",))
    n_layers = fields.get("num_hidden_layers")
    mapped = map_keys(state, keymap, wfile, layers=int(n_layers) if isinstance(n_layers, int) else None)
    use_task_id = fields.get("use_task_id")
    if use_task_id is True and not mapped.task_type:
        raise ImportError_(f"{wfile}: the config says use_task_id but encoder.embeddings.task_type_embeddings.weight is missing")
    if use_task_id is False and mapped.task_type:
        raise ImportError_(f"{wfile}: task_type_embeddings is present but the config says use_task_id false")
    config = bert_config_from(fields, mapped, wfile, ernie=True)  # a BertConfig: build_encoder folds the task type in
    task_rows = int(mapped.encoder[TASK_TYPE].shape[0]) if mapped.task_type else 0
    if mapped.task_type and not 0 <= task_id < task_rows:
        raise ImportError_(f"{src}: task_id {task_id} is outside the task-type table ({task_rows} rows)")
    for h in ("start", "end"):
        w = mapped.head[f"{h}.weight"]
        if tuple(w.shape) != (1, config.hidden_size):
            raise ImportError_(f"{wfile}: linear_{h}.weight has shape {tuple(w.shape)}, expected (1, {config.hidden_size})")
    if task_id:  # build_encoder folds row 0 of the task-type table into every token-type row: put task_id there
        mapped.encoder[TASK_TYPE] = mapped.encoder[TASK_TYPE][task_id : task_id + 1]
    encoder = build_encoder(config, mapped, wfile)
    module = JointPointers(encoder, (mapped.head["start.weight"], mapped.head["start.bias"]),
                           (mapped.head["end.weight"], mapped.head["end.bias"])).eval()

    # the reference: uie_pytorch's UIE (an ErnieModel with its task-type table) loading the checkpoint's own keys
    # (gamma/beta renamed as HF's loader does)
    ernie = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "transformers_version")}
    ernie.update(use_task_id=mapped.task_type, task_type_vocab_size=task_rows or 3)
    reference = UieReference(ErnieConfig(**ernie), task_id=task_id)
    ref_state = {re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k)): v for k, v in state.items()
                 if not k.endswith("embeddings.position_ids")}
    missing, unexpected = reference.load_state_dict(ref_state, strict=False)
    missing = [k for k in missing if not k.endswith("pooler.dense.weight") and not k.endswith("pooler.dense.bias")]
    if missing or unexpected:
        raise ImportError_(f"{wfile}: the checkpoint does not load into uie_pytorch's UIE: missing {missing[:6]}, "
                           f"unexpected {unexpected[:6]}")
    reference.eval()

    tokenizer, specials, max_positions = wordpiece_for(src, config)
    size = SIZES.get((config.num_hidden_layers, config.hidden_size), f"uie ({config.num_hidden_layers}L-{config.hidden_size}H)")
    zconf = {
        "format_version": 2, "task": "extract", "max_positions": max_positions, "tokenizer": tokenizer,
        "specials": specials, "split": 0, "threshold": 0.5, "pairing": "nearest_start", "prompt": "uie",
        "max_prompt": 64, "max_span": max_positions, "architecture": size,
    }
    tok = hf_tokenizer(src, tokenizer)
    parity = [joint_inputs(tok, [(p, t) for t in PARITY_TEXTS for p in PARITY_PROMPTS[:2]]),
              joint_inputs(tok, [(PARITY_PROMPTS[2], PARITY_TEXTS[2])])]
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["pointers"] = {0: "batch", 1: "seq"}
    return Converted(
        module=module, reference=reference, input_names=names, dynamic_axes=axes, dummy_inputs=parity[0],
        config=zconf, files={"vocab.txt": src / "vocab.txt"}, num_heads=config.num_attention_heads,
        hidden=config.hidden_size, output_name="pointers", ref_tokenizer=tok,
        source_files=read + [src / "vocab.txt"] + ([src / "tokenizer_config.json"] if (src / "tokenizer_config.json").is_file() else []),
        consumed=mapped.consumed, ignored=mapped.ignored + dropped, parity_inputs=parity,
        pointer_rules="uie",
    )


def joint_inputs(tok, pairs: list[tuple[str, str]]) -> tuple:
    """(input_ids, attention_mask, token_type_ids) for (prompt, text) pairs, as uie_pytorch's predictor encodes
    them (``BertTokenizerFast(prompts, texts, padding='longest')``)."""
    import torch

    enc = tok([p for p, _ in pairs], [t for _, t in pairs], padding="longest", truncation=True,
              max_length=MAX_POSITIONS, return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long(), enc["token_type_ids"].long()


FORMAT = register(Format(name=NAME, tasks=("extract",), sniff=sniff, convert=convert))
