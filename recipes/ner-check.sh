#!/usr/bin/env bash
# Export and checks of an NER run (used by recipes/ner-v3.sh and ner-v4.sh): INT8 with the four products
# the sensitivity search picks kept in float32 (MODELS.md), float32/INT8 figures on the MSRA dev split, then
# the exported model on Weibo dev and the CLUENER dev split, both mapped to PER/LOC/ORG.
#   bash recipes/ner-check.sh RUN OUT
# DEV_SPLIT: the carved dev splits the run left out. random for every run of the bundled chain (v1-v6, trained
# before issue 22); a run trained under the contiguous dev protocol: DEV_SPLIT=contiguous. Seen/unseen figures
# are against the training side of each corpus.
# Which products to keep in float32 (measured on v2's export and training sentences; prints the expression last):
#   .venv/bin/python -m zhie.train.quant_sensitivity --run runs/ner-v2 --data "$DATASETS/ner/msra/train.bio" --format bio --layers 2
set -euo pipefail
RUN=${1:?usage: ner-check.sh RUN OUT}
OUT=${2:?usage: ner-check.sh RUN OUT}
DATASETS=${DATASETS:-../shared/datasets}
DEV_SPLIT=${DEV_SPLIT:-random}
.venv/bin/zhie export ner --run "$RUN" --out "$OUT" --check-data "$DATASETS/ner/msra/train.bio" --check-split "$DEV_SPLIT" \
  --keep-float 'layer\.4/output/dense/MatMul$|layer\.0/intermediate/dense/MatMul$|layer\.0/output/dense/MatMul$|layer\.4/intermediate/dense/MatMul$'
.venv/bin/zhie eval ner --model "$OUT" --data "$DATASETS/ner/msra/train.bio" --format bio --dev-split "$DEV_SPLIT" \
  --seen-in "$DATASETS/ner/msra/train.bio"
.venv/bin/zhie eval ner --model "$OUT" --data "$DATASETS/ner/weibo/dev.conll" --format weibo \
  --map PER.NAM=PER,LOC.NAM=LOC,GPE.NAM=LOC,ORG.NAM=ORG --seen-in "$DATASETS/ner/weibo/train.conll"
.venv/bin/zhie eval ner --model "$OUT" --data "$DATASETS/ner/cluener/train.json" --format cluener \
  --map name=PER,address=LOC,company=ORG,government=ORG,organization=ORG --dev-split "$DEV_SPLIT" \
  --seen-in "$DATASETS/ner/cluener/train.json"
