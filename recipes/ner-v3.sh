#!/usr/bin/env bash
# NER v3 (trial): continue v2 (recipes/ner-v2.sh) for 0.8 of an epoch more on MSRA plus Weibo and CLUENER
# (mapped to PER/LOC/ORG) with another shuffle (seed 15) at a lower learning rate. CPU, 2 cores: about 80 minutes.
# Exports into the run folder; MODELS.md says whether it replaced the bundled model.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/ner-v2}
RUN=${RUN:-runs/ner-v3}
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --init "$INIT" --extra weibo cluener --epochs 0.8 \
  --lr-encoder 5e-5 --lr-head 1e-3 --warmup 0.02 --batch-tokens 1600 --seed 15 --threads 2 --save-every 200
.venv/bin/zhie export ner --run "$RUN" --out "$RUN/bundle" --check-data "$DATASETS/ner/msra/train.bio"
.venv/bin/zhie eval ner --model "$RUN/bundle" --data "$DATASETS/ner/weibo/dev.conll" --format weibo \
  --map PER.NAM=PER,LOC.NAM=LOC,GPE.NAM=LOC,ORG.NAM=ORG
.venv/bin/zhie eval ner --model "$RUN/bundle" --data "$DATASETS/ner/cluener/train.json" --format cluener \
  --map name=PER,address=LOC,company=ORG,government=ORG,organization=ORG --dev-split
