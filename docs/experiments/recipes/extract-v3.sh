#!/usr/bin/env bash
# Schema extractor v3: extract v2 (recipes/extract-v2.sh) trained on for a shorter third pass, another
# sample of the corpora (seed 14), augmented names as in v2 and DuIE's relation objects merged into the
# top-level type of the same name (--merge-extra 1: DuIE's 人物 prompt then covers every person in the
# text), at 3e-5 / 3e-4. About 36 minutes on 2 CPU cores. Held-out names stay out.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/extract-v2}
RUN=${RUN:-runs/extract-v3}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --augment 0.5 --merge-extra 1 \
  --sources msra:1500 weibo:1500 cluener:2500 literature:1500 duie:4000 sanwen:1000 finre:1000 duee:3000 cote:1000 aste:2000 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 3e-5 --lr-head 3e-4 --seed 14 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out src/zhie/models/bundled/extract --check-data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev-held-out.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data evals/extract-handwritten.jsonl
