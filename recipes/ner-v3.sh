#!/usr/bin/env bash
# NER v3 (bundled until 2026-11-22; v4, recipes/ner-v4.sh, is v3's encoder under a new head): continue v2 (recipes/ner-v2.sh) for 0.8 of an epoch more on MSRA plus Weibo and CLUENER
# (mapped to PER/LOC/ORG) with another shuffle (seed 15) at a lower learning rate. CPU, 2 cores: 5,410 s
# (1,338 steps; the first hour shared the CPU with other work, about 2.7 s/step alone).
# Export: INT8 with the four products the sensitivity search picks kept in float32 (MODELS.md); the
# all-INT8 export of the same run is recipes/ner-check.sh's export with --keep-float left out. It exports
# beside the run now, so that it does not overwrite the bundled v4 (OUT=src/zhie/models/bundled/ner did).
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/ner-v2}
RUN=${RUN:-runs/ner-v3}
OUT=${OUT:-runs/ner-v3-served}
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --extra weibo cluener --epochs 0.8 \
  --lr-encoder 5e-5 --lr-head 1e-3 --warmup 0.02 --batch-tokens 1600 --seed 15 --threads 2 --save-every 200
bash recipes/ner-check.sh "$RUN" "$OUT"
