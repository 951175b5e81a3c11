#!/usr/bin/env bash
# Schema extractor e2, a trial (issue 22): e1's release of CLUENER's 游戏 and 电影 inside a fuller mixture.
# e1 (docs/experiments/recipes/extract-e1.sh) trained the two names in a CLUENER-weighted pass (CLUENER 4,000 of
# 9,300; the other sources at about 40 % of v7's sample) and bought CLUENER 2.9 points, but lost 3.6 on the
# handwritten file and 2.7 on the still-held-out event group: the guess was that the other sources' names were
# asked too seldom. e2 keeps them at 70 % of v7's sample (about 1.75 times e1's) and CLUENER at 3,500, from v7
# read back from its folder, with e1's held-out list, synonyms, augmentation, lead-ins and rates, seed 31.
# Old random split (v7's); the CLUENER file is every CLUENER dev record with its ten types. 18,200 examples,
# about 50 minutes at two threads; scored served (INT8) only.
#
# Bar, written before training (2026-12-02), e1's unchanged: e2 replaces the bundled v7 only if, served (INT8,
# smoothed as v7):
#  1. the CLUENER file (all ten types) >= 0.542 (v7 0.512 + 0.03, measured by e1's recipe last session);
#  2. the dev file (1,999 lines) >= 0.551 (v7 0.556, less 0.005);
#  3. the names still held out: per_group "relation" >= 0.479 and "event" >= 0.688 on the training-side held-out
#     file (v7 0.499 / 0.708, less 0.02);
#  4. handwritten >= 0.627 (v7 0.637, less 0.01), reviews >= 0.641 (0.651, less 0.01);
#  5. on the brief's example: 华为Mate60 Pro, 麒麟9000S and 6999元, and one 属性词 -> 情感词 pair.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/extract-e2}
THREADS=${THREADS:-2}
BUNDLED=src/zhie/models/bundled/extract
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200 \
  --train-held-out data/eval/extract-train-held-out.jsonl --whole cluener=data/eval/extract-cluener.jsonl
[ -d runs/extract-v7-read ] || .venv/bin/zhie train import-bundle "$BUNDLED" --out runs/extract-v7-read
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/extract-v7-read \
  --held-out 毕业院校 主演 董事长 裁员人数 --augment 0.5 --merge-extra 1 --lead-ins 0.5 \
  --sources msra:1050 weibo:1050 cluener:3500 literature:1050 duie:2800 sanwen:700 finre:700 duee:2100 cote:700 aste:1400 apc:3150 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 2e-5 --lr-head 2e-4 --seed 31 --threads "$THREADS" --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle-sq" \
  --smooth 0.75 --smooth-data "$DATASETS" --smooth-format uie
echo "== e2"
for f in data/eval/extract-cluener.jsonl data/eval/extract-dev.jsonl data/eval/extract-train-held-out.jsonl evals/extract-handwritten.jsonl evals/extract-reviews.jsonl; do
  .venv/bin/zhie eval extract --model "$RUN/bundle-sq" --data "$f" --threads "$THREADS"
done
.venv/bin/zhie extract --model "$RUN/bundle-sq" --schema '{"产品名称": null, "芯片型号": null, "功能": null, "价格": null, "属性词": {"情感词": null}}' \
  '华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。'
# Result (2026-12-02, runs/extract-e2.log; docs/experiments/extract.md), served: the CLUENER file 0.5375 (v7 0.512,
# e1 0.541; 游戏 0.371, 电影 0.395), dev file 0.557, still-held-out groups relation 0.503 and event 0.681 (v7 0.708),
# handwritten 0.640 (v7 0.637, e1 0.601), reviews 0.679 (0.651), the brief's example as v7. 381 steps, about
# 4,500 s at two threads beside NER b1. Bar missed (CLUENER 0.5375 < 0.542, event 0.681 < 0.688): not bundled.
