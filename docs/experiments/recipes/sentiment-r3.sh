#!/usr/bin/env bash
# Sentiment r3, a trial (issue 22). r2 (docs/experiments/recipes/sentiment-r2.sh: r1 + 13,000 reviews, NLPCC 6,000 of them, lr 5e-5)
# missed its bar narrowly: NLPCC carved dev 0.796 (bar 0.802), mean of the five review sets 0.8783 (bar 0.8798),
# ChnSentiCorp unseen 0.908. r3 continues r2 for one more pass with the whole NLPCC 2014 train side (9,000; the
# carved 1,000 never trained on), ChnSentiCorp 3,000, online_shopping 1,500, waimai 1,000, shopping 500,
# SMP2020-EWECT usual 600 and virus 600 (16,200 examples), another seed (27) and a lower rate (3e-5 / 6e-4),
# texts cut to 160 characters.
#
# Bar, written before training (2026-12-01), the same as r2's, against the bundled n3: served,
#   - mean accuracy over the five review dev sets >= n3's + 1 point (n3 0.8698: >= 0.8798),
#   - NLPCC carved dev >= 0.802 (n3 0.772),
#   - ChnSentiCorp unseen dev >= 0.907, SMP2020-EWECT usual neutral F1 >= 0.80, virus dev >= 0.70.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/sentiment-r2}
RUN=${RUN:-runs/sentiment-r3}
THREADS=${THREADS:-2}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --init "$INIT" \
    --sources nlpcc2014:9000 chnsenticorp:3000 online_shopping:1500 waimai:1000 shopping:500 smp2020:600 smp2020_virus:600 \
    --max-len 160 --epochs 1.0 --lr-encoder 3e-5 --lr-head 6e-4 --batch-tokens 4096 --seed 27 --threads "$THREADS"
KEEP='layer\.4/output/dense/MatMul$|layer\.0/intermediate/dense/MatMul$|layer\.0/output/dense/MatMul$|layer\.4/intermediate/dense/MatMul$'
.venv/bin/zhie export sentiment --run "$RUN" --out "$RUN/bundle" --keep-float "$KEEP" --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
bash recipes/sentiment-dev.sh "$RUN/bundle"
# Result (2026-12-02, runs/sentiment-r3.log; docs/experiments/sentiment.md), served: ChnSentiCorp unseen 0.904
# (n3 0.911), NLPCC carved 0.800 (0.772), shopping 0.958 (0.942), waimai 0.825 (0.807), online_shopping 0.929
# (0.917): mean 0.8831 against 0.8698 (+1.3); usual neutral F1 0.822 (0.819), virus 0.728 (0.735); ChnSentiCorp
# dev 0.905 served, 0.897 float32 (0.913). Bar missed (NLPCC 0.800 < 0.802, ChnSentiCorp unseen 0.904 < 0.907): not bundled.
