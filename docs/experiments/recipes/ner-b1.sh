#!/usr/bin/env bash
# NER b1, a trial (issue 22): character-bigram embeddings, the second NER lever (until now untried). Every
# character reads the vector of the bigram it ends and of the one it begins (zhie.text.bigrams): the 60,000 most
# frequent bigrams of the training side (seen at least twice; rarer ones, most names among them, read the zero
# vector), 32 numbers each, trained with the encoder as an embedding; 64 inputs per character beside the
# encoder's 384 into the BiLSTM, their columns starting at zero. The export ships the table (bigrams.npz, float16)
# and the served tagger looks the vectors up per window. Everything else is l1's and j1's
# (docs/experiments/recipes/ner-l1.sh, ner-j1.sh: v6 read back from its folder, 0.6 epoch of v6's mixture, seed
# 26, lr 3e-5 / 6e-4), so b1 against them is bigrams against LAC and jieba. The dev split is the old random one,
# the only one v6 was not trained on; seen/unseen against each corpus's training side.
#
# Bar, written before training (2026-12-02), l1's and j1's: b1 replaces v6 only if, served,
#   - MSRA old-split dev F1 >= 0.926 (v6 0.9275),
#   - unseen-mention F1 above v6's: MSRA >= 0.775 (v6 0.767), Weibo >= 0.48 (v6 0.462),
#   - Weibo dev F1 >= 0.574 (v6 0.564), CLUENER old-split dev F1 >= 0.715 (v6 0.720),
#   - and its cost holds: zhie bench per character at most 25 % slower than v6 side by side, the server with
#     all three models at most 300 MB idle.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/ner-b1}
THREADS=${THREADS:-2}
[ -d runs/ner-v6-read ] || .venv/bin/zhie train import-bundle ner --out runs/ner-v6-read
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/ner-v6-read --lstm 192 \
  --extra weibo cluener --epochs 0.6 --features bigram --bigram-vocab 60000 --bigram-dim 32 \
  --lr-encoder 3e-5 --lr-head 6e-4 --warmup 0.02 --batch-tokens 1600 --seed 26 --threads "$THREADS" --save-every 200
DEV_SPLIT=random bash recipes/ner-check.sh "$RUN" "$RUN/bundle"
# Result (2026-12-02, runs/ner-b1.log; docs/experiments/ner.md), served: MSRA old-split dev F1 0.9305 (v6 0.9275;
# float32 0.9292), unseen P / R 0.736 / 0.815, F1 0.7735 (v6 0.767); Weibo dev 0.550 (0.564), unseen F1 0.444 (0.462);
# CLUENER old split 0.719 (0.720), unseen 0.592. 1,004 steps, 5,385 s at one thread beside extract e2. Bar missed
# (MSRA unseen 0.7735 < 0.775, Weibo 0.550 < 0.574, Weibo unseen 0.444 < 0.48): not bundled; cost not measured.
