#!/usr/bin/env bash
# The schema extractor (zhie/models/bundled/extract): eval files from the dev splits, train on a mixture
# of every IE and NER corpus (capped per source so one epoch fits about 80 minutes on 2 CPU cores), the
# encoder taken from the NER v2 run (recipes/ner-v2.sh), export to INT8 ONNX, evaluate INT8.
# Seeds are fixed; DATASETS points at the shared corpora.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/ner-v2}
RUN=${RUN:-runs/extract-v1}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" \
  --sources msra:5000 weibo cluener:5000 literature:2500 duie:5000 sanwen:4000 finre:4000 duee cote:3000 aste:5000 \
  --epochs 1.0 --batch-tokens 3072 --seed 13 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out src/zhie/models/bundled/extract --check-data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data data/eval/extract-dev-held-out.jsonl
.venv/bin/zhie eval extract --model src/zhie/models/bundled/extract --data evals/extract-handwritten.jsonl
