#!/usr/bin/env bash
# Schema extractor v5: extract v2 (recipes/extract-v2.sh) trained on for one pass of v3's mixture
# (docs/experiments/recipes/extract-v3.sh) with product-review aspects mixed in (the APC files as 属性词, apc:3000), instead
# of v4's short APC pass on top of v3 (MODELS.md: v4 gained product aspects and forgot unseen names).
# Seed 16 (another sample), augmented names and merged DuIE objects as in v3, at 3e-5 / 3e-4.
# About 45 minutes on 2 CPU cores. Exported into the run folder with the extractor's four sensitive
# products kept in float32 (runs/qs-extract-v3.log), then bundled (MODELS.md: chosen on float32 and
# mixed-precision figures against v3's).
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/extract-v2}
RUN=${RUN:-runs/extract-v5}
KEEP='layer\.4/output/dense/MatMul$|layer\.0/intermediate/dense/MatMul$|layer\.0/attention/output/dense/MatMul$|layer\.0/output/dense/MatMul$'
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --augment 0.5 --merge-extra 1 \
  --sources msra:1500 weibo:1500 cluener:2500 literature:1500 duie:4000 sanwen:1000 finre:1000 duee:3000 cote:1000 aste:2000 apc:3000 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 3e-5 --lr-head 3e-4 --seed 16 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle" --check-data data/eval/extract-dev.jsonl --keep-float "$KEEP"
.venv/bin/zhie eval extract --model "$RUN/bundle" --data data/eval/extract-dev.jsonl
.venv/bin/zhie eval extract --model "$RUN/bundle" --data data/eval/extract-dev-held-out.jsonl
.venv/bin/zhie eval extract --model "$RUN/bundle" --data evals/extract-handwritten.jsonl
cp "$RUN/bundle/"* src/zhie/models/bundled/extract/
