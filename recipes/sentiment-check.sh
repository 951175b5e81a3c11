#!/usr/bin/env bash
# The checks every sentiment run gets (used by the sentiment-n* recipes): export to INT8 with float32/INT8
# figures on ChnSentiCorp dev, then the served model on the dev texts ChnSentiCorp's train file does not
# hold, the shopping reviews (never trained on; labels inverted), and SMP2020-EWECT usual and virus dev.
#   bash recipes/sentiment-check.sh runs/sentiment-n1
set -euo pipefail
RUN=${1:?usage: sentiment-check.sh RUN}
DATASETS=${DATASETS:-../shared/datasets}
.venv/bin/zhie export sentiment --run "$RUN" --out "$RUN/bundle" --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
.venv/bin/python -m zhie.train.sentiment_data --dev "$DATASETS/sentiment/chnsenticorp/dev.tsv" \
    --train "$DATASETS/sentiment/chnsenticorp/train.tsv" --out data/eval/chnsenticorp-dev-unseen.tsv
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data data/eval/chnsenticorp-dev-unseen.tsv --format tsv
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data "$DATASETS/sentiment/shopping/dev.tsv" --format tsv-inverted --limit 1000
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data "$DATASETS/sentiment/smp2020_ewect/usual/dev.tsv" --format smp
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data "$DATASETS/sentiment/smp2020_ewect/virus/dev.tsv" --format smp
