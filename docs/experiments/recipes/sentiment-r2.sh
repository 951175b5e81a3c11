#!/usr/bin/env bash
# Sentiment r2, a trial (issue 22). r1 (docs/experiments/recipes/sentiment-r1.sh: n3 + one low-rate pass of 12,000 mixed reviews)
# missed its bar: NLPCC carved dev 0.772 -> 0.787 (+1.5, bar +3), mean of the five review sets +0.55 (bar +1),
# ChnSentiCorp unseen 0.9095, neutral and virus kept. r2 continues r1 with NLPCC-style product reviews the
# larger share and a higher rate: NLPCC 2014 6,000 (of its 9,000-review train side), ChnSentiCorp 3,000,
# online_shopping 1,500, waimai 800, shopping 500, SMP2020-EWECT usual 600 and virus 600 (13,000 examples),
# seed 25, lr 5e-5 / 1e-3, one pass, texts cut to 160 characters; carved dev sides never trained on.
#
# Bar, written before training (2026-12-01), r1's against the bundled n3: served,
#   - mean accuracy over the five review dev sets >= n3's + 1 point (n3 0.8698: >= 0.8798),
#   - NLPCC carved dev >= 0.802 (n3 0.772),
#   - ChnSentiCorp unseen dev >= 0.907, SMP2020-EWECT usual neutral F1 >= 0.80, virus dev >= 0.70.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/sentiment-r1}
RUN=${RUN:-runs/sentiment-r2}
THREADS=${THREADS:-2}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --init "$INIT" \
    --sources nlpcc2014:6000 chnsenticorp:3000 online_shopping:1500 waimai:800 shopping:500 smp2020:600 smp2020_virus:600 \
    --max-len 160 --epochs 1.0 --lr-encoder 5e-5 --lr-head 1e-3 --batch-tokens 4096 --seed 25 --threads "$THREADS"
KEEP='layer\.4/output/dense/MatMul$|layer\.0/intermediate/dense/MatMul$|layer\.0/output/dense/MatMul$|layer\.4/intermediate/dense/MatMul$'
.venv/bin/zhie export sentiment --run "$RUN" --out "$RUN/bundle" --keep-float "$KEEP" --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
bash recipes/sentiment-dev.sh "$RUN/bundle"
# Result (2026-12-01, runs/sentiment-r2.log; docs/experiments/sentiment.md), served: ChnSentiCorp unseen 0.908
# (n3 0.911), NLPCC carved 0.796 (0.772), shopping 0.953 (0.942), waimai 0.814 (0.807), online_shopping 0.920
# (0.917): mean 0.8783 against 0.8698 (+0.85); usual neutral F1 0.832 (0.819), virus 0.730 (0.735); ChnSentiCorp
# dev 0.909 (0.913). Bar missed (NLPCC 0.796 < 0.802, mean +0.85 < +1): not bundled.
