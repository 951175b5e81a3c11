#!/usr/bin/env bash
# Reproduce the bundled sentiment model (zhie/models/bundled/sentiment): train, calibrate, export to INT8 ONNX, evaluate.
# CPU, 2 cores: about 30 minutes. Seeds are fixed; DATASETS points at the shared corpora.
# --exclude-dev 0: trained with the ChnSentiCorp train texts that are also in its dev file, as bundled (MODELS.md)
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/sentiment-v1}
.venv/bin/zhie train sentiment --datasets "$DATASETS" --out "$RUN" --sources chnsenticorp --max-len 160 \
    --epochs 1.0 --lr-encoder 1e-4 --lr-head 1e-3 --batch-tokens 4096 --seed 13 --threads 2 --exclude-dev 0
.venv/bin/zhie export sentiment --run "$RUN" --out src/zhie/models/bundled/sentiment --check-data "$DATASETS/sentiment/chnsenticorp/dev.tsv"
.venv/bin/zhie eval sentiment --model src/zhie/models/bundled/sentiment --data "$DATASETS/sentiment/chnsenticorp/dev.tsv" --format tsv
