#!/usr/bin/env bash
# NER v4 (bundled since 2026-11-22): v3's encoder (recipes/ner-v3.sh), frozen, under a new head: a BiLSTM of
# 192 units per direction between the encoder and the CRF, trained on the encoder's cached output for two
# epochs of the same mixture (MSRA, Weibo and CLUENER mapped to PER/LOC/ORG; dev splits left out), seed 13,
# lr 2e-3 one-cycle. CPU, 2 cores: the cache about 20 minutes (forward passes only, 1.9 GB in runs/), the
# head about 8 minutes per epoch on 2 threads (15 under load). The same tool measured lexicon features from
# jieba's dictionary on the same cache (MODELS.md): `--lexicon runs/lexicon-all.tsv` (from `python -m
# zhie.train.lexicon --out runs/lexicon-all.tsv`); they added 0.1 F1 on MSRA dev, so v4 has none.
# Export: the four float32 products of v3 (the encoder is v3's); the BiLSTM stays float32 (3.7 MB).
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
ENCODER=${ENCODER:-runs/ner-v3}
CACHE=${CACHE:-runs/ner-v3-cache}
RUN=${RUN:-runs/ner-v4}
OUT=${OUT:-src/zhie/models/bundled/ner}
.venv/bin/zhie train ner-cache --run "$ENCODER" --out "$CACHE" --datasets "$DATASETS" --dev-split random --threads 2
.venv/bin/zhie train ner-head --cache "$CACHE" --run "$ENCODER" --out "$RUN-head" --lstm 192 --epochs 2 --lr 2e-3 \
  --seed 13 --threads 2 --write-run "$RUN"
bash recipes/ner-check.sh "$RUN" "$OUT"
