#!/usr/bin/env bash
# NER l2, a trial (issue 22): l1 (docs/experiments/recipes/ner-l1.sh, v6 + 0.6 epoch with LAC features) uses its LAC inputs a little
# (zeroing them costs 0.1 F1 on MSRA and 2.2 on Weibo dev, unseen Weibo recall 0.455 -> 0.420) but missed its bar;
# the new input columns started at zero and the head's rate was v6's. l2 continues l1 for 0.4 epoch of the same
# mixture with a higher head rate (1e-3; the encoder's stays 3e-5), seed 27, so the head can lean on LAC more.
# Resumable: `--resume runs/ner-l2` goes on from its last checkpoint (every 5 minutes).
#
# Bar, written before training (2026-12-02), l1's: l2 replaces v6 only if, served,
#   - MSRA old-split dev F1 >= 0.926, unseen-mention F1 MSRA >= 0.775 and Weibo >= 0.48,
#   - Weibo dev F1 >= 0.574, CLUENER old-split dev F1 >= 0.715,
#   - zhie bench per character at most 25 % slower than v6 side by side, all three models at most 300 MB idle.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/ner-l2}
THREADS=${THREADS:-2}
.venv/bin/zhie train ner --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/ner-l1 --lstm 192 \
  --extra weibo cluener --epochs 0.4 --features lac \
  --lr-encoder 3e-5 --lr-head 1e-3 --warmup 0.02 --batch-tokens 1600 --seed 27 --threads "$THREADS" --save-every 200
DEV_SPLIT=random bash recipes/ner-check.sh "$RUN" "$RUN/bundle"
# Result (2026-12-02, runs/ner-l2.log; docs/experiments/ner.md), served: MSRA old-split dev F1 0.9300 (v6 0.9275;
# float32 0.9291), unseen P / R 0.733 / 0.820, F1 0.774 (v6 0.767); Weibo dev 0.565 (0.564), unseen F1 0.464 (0.462);
# CLUENER old split 0.721 (0.720). 669 steps, 2,508 s at one thread beside the clean-clone CI. Bar missed (MSRA
# unseen 0.774 < 0.775, Weibo 0.565 < 0.574, Weibo unseen 0.464 < 0.48): not bundled.
