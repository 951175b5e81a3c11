#!/usr/bin/env bash
# Sentiment v3: v1 (recipes/sentiment.sh) trained on for a second epoch of ChnSentiCorp alone (another
# shuffle, seed 14) at half v1's learning rates: the "more epochs" run (v2s, the review mixture, measured
# 0.894 float32 and was not bundled). CPU, 2 cores: about 25 minutes. DATASETS points at the corpora.
# --exclude-dev 0: trained with the ChnSentiCorp train texts that are also in its dev file, as bundled (MODELS.md)
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/sentiment-v1}
RUN=${RUN:-runs/sentiment-v3}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --init "$INIT" --sources chnsenticorp --max-len 160 \
    --epochs 1.0 --lr-encoder 5e-5 --lr-head 5e-4 --batch-tokens 4096 --seed 14 --threads 2 --exclude-dev 0
.venv/bin/zhie export sentiment --run "$RUN" --out src/zhie/models/bundled/sentiment --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
.venv/bin/zhie eval sentiment --model src/zhie/models/bundled/sentiment --data "$DATASETS/sentiment/chnsenticorp/dev.tsv" --format tsv
