#!/usr/bin/env bash
# Sentiment v2: continue v1 (recipes/sentiment.sh) on a mixture of the review corpora (ChnSentiCorp again,
# online_shopping, waimai, shopping, NLPCC 2014). CPU, 2 cores: about an hour (not run yet).
# Seeds fixed; DATASETS points at the corpora.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/sentiment-v1}
RUN=${RUN:-runs/sentiment-v2}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --init "$INIT" --max-len 160 \
    --sources chnsenticorp online_shopping:6000 waimai:3000 shopping:4000 nlpcc2014:3000 \
    --epochs 1.0 --lr-encoder 5e-5 --lr-head 5e-4 --batch-tokens 4096 --seed 13 --threads 2
.venv/bin/zhie export sentiment --run "$RUN" --out src/zhie/models/bundled/sentiment --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
