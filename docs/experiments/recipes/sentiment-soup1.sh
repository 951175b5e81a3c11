#!/usr/bin/env bash
# Sentiment soup1, a trial (issue 22). Each continuation of the chain n3 -> r1 -> r2 -> r3 raised the review sets
# (NLPCC carved 0.772 -> 0.787 -> 0.796 -> 0.800) and lowered ChnSentiCorp unseen (0.911 -> 0.910 -> 0.908 -> 0.904).
# soup1 averages the weights of the bundled n3 (read back from its folder) and r3, half and half (a "model soup",
# WiSE-FT style: Wortsman et al. 2022), which often keeps the gains of a fine-tune while losing less of what the
# start knew. No training; the temperature is left at 1 (accuracy does not depend on it).
#
# Bar, written before measuring (2026-12-02), the same as r2's and r3's, against n3: served,
#   - mean accuracy over the five review dev sets >= 0.8798, NLPCC carved dev >= 0.802,
#   - ChnSentiCorp unseen dev >= 0.907, SMP2020-EWECT usual neutral F1 >= 0.80, virus dev >= 0.70.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/sentiment-soup1}
[ -d runs/sentiment-n3-read ] || .venv/bin/zhie train import-bundle sentiment --out runs/sentiment-n3-read
.venv/bin/python -m zhie.train.average --runs runs/sentiment-r3 runs/sentiment-n3-read --weights 0.5 0.5 --out "$RUN"
KEEP='layer\.4/output/dense/MatMul$|layer\.0/intermediate/dense/MatMul$|layer\.0/output/dense/MatMul$|layer\.4/intermediate/dense/MatMul$'
.venv/bin/zhie export sentiment --run "$RUN" --out "$RUN/bundle" --keep-float "$KEEP" --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
bash recipes/sentiment-dev.sh "$RUN/bundle"
# Result (2026-12-02, runs/sentiment-soup1.log; docs/experiments/sentiment.md), served: ChnSentiCorp unseen 0.905,
# NLPCC carved 0.789, shopping 0.942, waimai 0.814, online_shopping 0.917 (mean 0.873); usual neutral F1 0.827,
# virus 0.737. Bar missed (NLPCC, mean, ChnSentiCorp): not bundled.
