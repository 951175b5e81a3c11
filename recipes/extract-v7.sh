#!/usr/bin/env bash
# Schema extractor v7: v6 (its float32 run, runs/extract-v6) trained on for one pass of v6's mixture (another
# sample, seed 19) in which half the product-review aspects that open a clause get a lead-in before them
# (uie_data.lead_ins, --lead-ins 0.5: "感觉信号不错", "用了半年，电池不行"). APC's clauses always start with
# their aspect; v6 learnt that, and finds 信号 in "信号强、拍照清晰" (float32 p 0.97) but not in
# "用户普遍反馈信号强" (0.22), which is how the brief's example and real reviews put it. The lead-ins
# hold no aspect and none occurs in the eval files or the brief (tests/test_uie_data.py checks). The dev
# file is unchanged (the augmentation is training-side only). About 45 minutes on 2 CPU cores.
# Exported with activation smoothing (--smooth 0.75), as MODELS.md proposes after v6.
# Decided before training: v7's smoothed export replaces the bundled v6 only if, served (INT8, this machine,
# default threshold 0.5), all of:
#  1. on the brief's example it returns 产品名称 华为Mate60 Pro, 芯片型号 麒麟9000S and 价格 6999元, and at least
#     one 属性词 -> 情感词 pair (信号 -> 强, 拍照 -> 清晰, or 电池续航 / 续航 -> 下降明显), and no 属性词 span
#     that holds "，", "、" or "。";
#  2. the dev file (1,999 lines) >= 0.535 (v6 bundled 0.538, less 0.003);
#  3. unseen names: the training-side file (607 lines, 899 held-out tuples) >= 0.346 (v6 bundled 0.356, less
#     0.01), and the dev-side held-out file (232 tuples) >= 0.276 (0.296, less 0.02);
#  4. the handwritten file >= 0.610 (0.620, less 0.01) and the reviews file > 0.446.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
INIT=${INIT:-runs/extract-v6}
RUN=${RUN:-runs/extract-v7}
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200 \
  --train-held-out data/eval/extract-train-held-out.jsonl
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init "$INIT" --augment 0.5 --merge-extra 1 --lead-ins 0.5 \
  --sources msra:1500 weibo:1500 cluener:2500 literature:1500 duie:4000 sanwen:1000 finre:1000 duee:3000 cote:1000 aste:2000 apc:4500 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 2e-5 --lr-head 2e-4 --seed 19 --threads 2 --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle-sq" --check-data data/eval/extract-dev.jsonl \
  --smooth 0.75 --smooth-data "$DATASETS" --smooth-format uie
for f in data/eval/extract-train-held-out.jsonl data/eval/extract-dev-held-out.jsonl evals/extract-handwritten.jsonl evals/extract-reviews.jsonl; do
  .venv/bin/zhie eval extract --model "$RUN/bundle-sq" --data "$f"
done
.venv/bin/zhie extract --model "$RUN/bundle-sq" --schema '{"产品名称": null, "芯片型号": null, "功能": null, "价格": null, "属性词": {"情感词": null}}' \
  '华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。'
# Result (2026-11-29, this Intel Xeon, MODELS.md): every condition held. Brief: 华为Mate60 Pro, 麒麟9000S, 6999元 and
# 拍照 -> 清晰 (also an over-long 用户普遍反馈信号 -> 强、拍照清晰); dev 0.556; unseen names 0.374 (training side) and
# 0.312 (dev side); handwritten 0.637; reviews 0.651. bundle-sq is bundled as extract v7.
cp "$RUN/bundle-sq/"* src/zhie/models/bundled/extract/
