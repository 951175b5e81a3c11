#!/usr/bin/env bash
# Sentiment v4 (trial): v3 (recipes/sentiment-v3.sh) on a short mixture pass: ChnSentiCorp again plus
# out-of-domain reviews (food delivery, shopping read with its inverted labels, ten product categories),
# seed 15, lr 3e-5 / 3e-4; texts of the ChnSentiCorp dev file dropped from training (--exclude-dev, the
# default). About 18 minutes on 2 CPU cores. Exports into the run folder.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/sentiment-v3}
RUN=${RUN:-runs/sentiment-v4}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --init "$INIT" --max-len 160 \
    --sources chnsenticorp:2400 waimai:1500 shopping:1500 online_shopping:1500 \
    --epochs 1.0 --lr-encoder 3e-5 --lr-head 3e-4 --batch-tokens 4096 --seed 15 --threads 2
.venv/bin/zhie export sentiment --run "$RUN" --out "$RUN/bundle" --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data "$DATASETS/sentiment/shopping/dev.tsv" --format tsv-inverted --limit 1000
# ChnSentiCorp dev without the texts that are also in its train file
.venv/bin/python -m zhie.train.sentiment_data --dev "$DATASETS/sentiment/chnsenticorp/dev.tsv" \
    --train "$DATASETS/sentiment/chnsenticorp/train.tsv" --out data/eval/chnsenticorp-dev-unseen.tsv
.venv/bin/zhie eval sentiment --model "$RUN/bundle" --data data/eval/chnsenticorp-dev-unseen.tsv --format tsv
