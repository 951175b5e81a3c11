#!/usr/bin/env bash
# Schema extractor v4: extract v3 (docs/experiments/recipes/extract-v3.sh) trained on for one more short pass that adds
# product-review aspects (the APC files: phones, cameras, laptops, cars, MOOCs; uie_data.apc_records) as
# 属性词, with a smaller replay of the other corpora (seed 15: another sample) so they are not forgotten.
# Augmented names and merged DuIE objects as in v3, at 3e-5 / 3e-4. About 30 minutes on 2 CPU cores.
# Not bundled (MODELS.md: it gains product aspects and loses unseen names), so it exports into the run folder.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/extract-v3}
RUN=${RUN:-runs/extract-v4}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --augment 0.5 --merge-extra 1 \
  --sources msra:1000 weibo:1000 cluener:1500 literature:1000 duie:2500 sanwen:600 finre:600 duee:2000 cote:800 aste:2000 apc:5200 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 3e-5 --lr-head 3e-4 --seed 15 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle" --check-data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model "$RUN/bundle" --data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model "$RUN/bundle" --data data/eval/extract-dev-held-out.jsonl
.venv/bin/zhie eval extract --model "$RUN/bundle" --data evals/extract-handwritten.jsonl
# the weight averages of v3 and v4 in MODELS.md (then export and eval them like v4):
# .venv/bin/python -m zhie.train.average --runs runs/extract-v3 "$RUN" --weights 0.5 0.5 --out runs/extract-v34
