#!/usr/bin/env bash
# The mixed sentiment dev (issue 22) for a model folder: five review sets (ChnSentiCorp dev texts its train
# file lacks, NLPCC 2014 / waimai / online_shopping dev sides carved as contiguous blocks and never trained
# on (written shuffled, seed 13; online_shopping's first 1,000 of 2,581 read), shopping dev's first 1,000 with
# its inverted labels) and SMP2020-EWECT usual and virus dev (neutral).
#   bash recipes/sentiment-dev.sh src/zhie/models/bundled/sentiment
set -euo pipefail
MODEL=${1:?usage: sentiment-dev.sh MODEL_DIR [SET ...]}
shift
ONLY=" $* "
DATASETS=${DATASETS:-../shared/datasets}
S=$DATASETS/sentiment
.venv/bin/python -m zhie.train.sentiment_data --dev "$S/chnsenticorp/dev.tsv" --train "$S/chnsenticorp/train.tsv" \
    --out data/eval/chnsenticorp-dev-unseen.tsv
for c in nlpcc2014 waimai online_shopping; do
    .venv/bin/python -m zhie.train.sentiment_data --carve $c --datasets "$DATASETS" --out data/eval/$c-dev.tsv
done
ev() {  # the sets named after MODEL, or all of them
    [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]] || return 0
    echo "== $1"; shift; .venv/bin/zhie eval sentiment --model "$MODEL" "$@"
}
ev chnsenticorp-unseen --data data/eval/chnsenticorp-dev-unseen.tsv --format tsv
ev nlpcc2014 --data data/eval/nlpcc2014-dev.tsv --format tsv
ev shopping --data "$S/shopping/dev.tsv" --format tsv-inverted --limit 1000
ev waimai --data data/eval/waimai-dev.tsv --format tsv
ev online_shopping --data data/eval/online_shopping-dev.tsv --format tsv --limit 1000
ev smp2020-usual --data "$S/smp2020_ewect/usual/dev.tsv" --format smp
ev smp2020-virus --data "$S/smp2020_ewect/virus/dev.tsv" --format smp
