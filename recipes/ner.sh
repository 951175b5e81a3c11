#!/usr/bin/env bash
# Reproduce the bundled NER model (zhie/models/bundled/ner): train, export to INT8 ONNX, evaluate.
# CPU, 2 cores: about 1 hour. Seeds are fixed; DATASETS points at the shared corpora.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/ner-msra-v1}
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --epochs 1.0 --lr-encoder 1.5e-4 --lr-head 3e-3 --batch-tokens 1600 --seed 13 --threads 2
.venv/bin/zhie export ner --run "$RUN" --out src/zhie/models/bundled/ner --check-data "$DATASETS/ner/msra/train.bio" --check-split random
.venv/bin/zhie eval ner --model src/zhie/models/bundled/ner --data "$DATASETS/ner/msra/train.bio" --format bio --dev-split random
