"""Import direction (server, batch, convert → tasks → runtime/models → text) and a torch-free serving path."""

import ast
import subprocess
import sys
from pathlib import Path

import zhie

PKG = Path(zhie.__file__).parent
ALLOWED = {
    "text": {"text"},
    "models": {"models", "text"},
    "runtime": {"runtime", "text"},
    "tasks": {"tasks", "models", "runtime", "text"},
    "server": {"server", "tasks", "models", "runtime", "text"},
    "batch": {"batch", "tasks", "models", "runtime", "text"},
    "convert": {"convert", "tasks", "models", "runtime", "text"},
    "train": {"train", "tasks", "models", "runtime", "text"},
}


def _zhie_imports(path: Path):
    rel = path.relative_to(PKG).with_suffix("").parts
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("zhie"):
                target = node.module.split(".")[1:]
            else:
                continue
            yield target[0] if target else ""
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("zhie."):
                    yield a.name.split(".")[1]


def test_imports_flow_one_way():
    bad = []
    for path in PKG.rglob("*.py"):
        layer = path.relative_to(PKG).parts[0]
        if layer not in ALLOWED:
            continue
        for target in _zhie_imports(path):
            if target and target != "__init__" and target not in ALLOWED[layer] and target in ALLOWED:
                bad.append(f"{path.relative_to(PKG)} imports zhie.{target}")
    assert not bad, bad


def test_serving_path_never_imports_torch():
    code = (
        "import sys, zhie.cli, zhie.server.app, zhie.tasks.ner\n"
        "from zhie.tasks.ner import NerTagger\n"
        "NerTagger.load('ner').predict(['北京'])\n"
        "bad = [m for m in ('torch', 'transformers', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
