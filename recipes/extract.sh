#!/usr/bin/env bash
# The schema extractor (zhie/models/bundled/extract): eval files from the dev splits, train on the mixture
# of every IE and NER corpus (zhie.train.extract defaults), export to INT8 ONNX, evaluate float and INT8.
# CPU, 2 cores: hours (a GPU cuts it to minutes); seeds are fixed; DATASETS points at the shared corpora.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/extract-v1}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --epochs 1.0 --seed 13 --threads 2
.venv/bin/zhie export extract --run "$RUN" --out src/zhie/models/bundled/extract --check-data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev-held-out.jsonl
