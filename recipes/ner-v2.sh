#!/usr/bin/env bash
# NER v2: continue the v1 run (recipes/ner.sh) for one more epoch on MSRA plus Weibo and CLUENER
# (their types mapped to PER/LOC/ORG), at a lower learning rate. CPU, 2 cores: 100 minutes (6,023 s for 1,672 steps).
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/ner-msra-v1}
RUN=${RUN:-runs/ner-v2}
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --extra weibo cluener --epochs 1.0 \
  --lr-encoder 8e-5 --lr-head 1.5e-3 --warmup 0.02 --batch-tokens 1600 --seed 13 --threads 2
.venv/bin/zhie export ner --run "$RUN" --out src/zhie/models/bundled/ner --check-data "$DATASETS/ner/msra/train.bio" --check-split random
.venv/bin/zhie eval ner --model src/zhie/models/bundled/ner --data "$DATASETS/ner/msra/train.bio" --format bio --dev-split random
