#!/usr/bin/env bash
# Schema extractor v2: extract v1 (recipes/extract.sh) trained on for one more pass with augmented type
# names (zhie.train.uie_data.SYNONYMS asked half of the time, plus DuIE object types and predicates and
# DuEE argument roles asked flat: 343 distinct names instead of 160), at half the learning rate. The
# mixture leans to the sources with many names. About 60 minutes on 2 CPU cores. Held-out names stay out.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/extract-v1}
RUN=${RUN:-runs/extract-v2}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --augment 0.5 \
  --sources msra:2500 weibo cluener:3500 literature:2000 duie:6000 sanwen:1500 finre:2000 duee cote:1500 aste:3000 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 5e-5 --lr-head 5e-4 --seed 13 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out src/zhie/models/bundled/extract --check-data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev-held-out.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data evals/extract-handwritten.jsonl
