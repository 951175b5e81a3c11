#!/usr/bin/env bash
# NER j1, a trial (issue 22): jieba's dictionary as per-character features trained with the encoder (the issue's
# first knowledge lever; until now measured only on a frozen encoder, on the old split: "within noise",
# docs/experiments/ner.md). For every character, whether a jieba 0.42.1 word of two or more characters
# (337,465; nr/nrt/nrfg -> PER, ns -> LOC, nt -> ORG, any other word -> WORD) begins, continues or ends there:
# 12 inputs beside the encoder's 384 into the BiLSTM (zhie.text.lexicon; the word list ships with the model).
# Everything else is l1's (docs/experiments/recipes/ner-l1.sh), so j1 against l1 is jieba against LAC: v6 read
# back from its folder, the new input columns starting at zero, 0.6 epoch of v6's mixture, seed 26,
# lr 3e-5 / 6e-4. The dev split is the old random one, the only one v6 was not trained on; seen/unseen against
# each corpus's training side.
#
# Bar, written before training (2026-12-02): j1 replaces v6 only if, served,
#   - MSRA old-split dev F1 >= 0.926 (v6 0.9275),
#   - unseen-mention F1 above v6's: MSRA >= 0.775 (v6 0.767), Weibo >= 0.48 (v6 0.462),
#   - Weibo dev F1 >= 0.574 (v6 0.564), CLUENER old-split dev F1 >= 0.715 (v6 0.720),
#   - and its cost holds: zhie bench per character at most 25 % slower than v6 side by side, the server with
#     all three models at most 300 MB idle (the word list was measured at 61 MB a process on 2026-11-29).
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/ner-j1}
THREADS=${THREADS:-2}
[ -d runs/ner-v6-read ] || .venv/bin/zhie train import-bundle ner --out runs/ner-v6-read
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/ner-v6-read --lstm 192 \
  --extra weibo cluener --epochs 0.6 --features jieba \
  --lr-encoder 3e-5 --lr-head 6e-4 --warmup 0.02 --batch-tokens 1600 --seed 26 --threads "$THREADS" --save-every 200
DEV_SPLIT=random bash recipes/ner-check.sh "$RUN" "$RUN/bundle"
# Result (2026-12-02, runs/ner-j1.log; docs/experiments/ner.md), served: MSRA old-split dev F1 0.9303 (v6 0.9275;
# float32 0.9284), unseen P / R 0.739 / 0.809, F1 0.772 (v6 0.767); Weibo dev 0.545 (0.564), unseen F1 0.426 (0.462);
# CLUENER old split 0.725 (0.720). The server with all three models 273 MB idle (v6 208). Bar missed (MSRA unseen
# 0.772 < 0.775, Weibo 0.545 < 0.574, Weibo unseen 0.426 < 0.48): not bundled.
