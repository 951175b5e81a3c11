#!/usr/bin/env bash
# Schema extractor e3, a trial (issue 22): e2 with CLUENER and DuEE asked more often.
# e2 (docs/experiments/recipes/extract-e2.sh: v7 read back, CLUENER's 游戏 and 电影 released, the other sources at 70 %
# of v7's sample, CLUENER 3,500) missed two parts of its bar narrowly: the CLUENER file 0.5375 (bar 0.542) and the
# still-held-out event group 0.681 (bar 0.688; one tuple of 23), while it beat v7 on the handwritten file, reviews
# and CLUENER by 2.6 points. e3 asks CLUENER 4,500 times (e2 3,500) and DuEE 2,800 (e2 2,100, the event source
# nearest the held-out event names), the rest as e2: 19,900 examples, seed 33.
#
# Bar, written before training (2026-12-02), e2's unchanged: e3 replaces the bundled v7 only if, served (INT8,
# smoothed as v7):
#  1. the CLUENER file (all ten types) >= 0.542 (v7 0.512 + 0.03);
#  2. the dev file (1,999 lines) >= 0.551 (v7 0.556, less 0.005);
#  3. the names still held out: per_group "relation" >= 0.479 and "event" >= 0.688 on the training-side held-out
#     file (v7 0.499 / 0.708, less 0.02);
#  4. handwritten >= 0.627 (v7 0.637, less 0.01), reviews >= 0.641 (0.651, less 0.01);
#  5. on the brief's example: 华为Mate60 Pro, 麒麟9000S and 6999元, and one 属性词 -> 情感词 pair.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/extract-e3}
THREADS=${THREADS:-2}
BUNDLED=src/zhie/models/bundled/extract
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200 \
  --train-held-out data/eval/extract-train-held-out.jsonl --whole cluener=data/eval/extract-cluener.jsonl
[ -d runs/extract-v7-read ] || .venv/bin/zhie train import-bundle "$BUNDLED" --out runs/extract-v7-read
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/extract-v7-read \
  --held-out 毕业院校 主演 董事长 裁员人数 --augment 0.5 --merge-extra 1 --lead-ins 0.5 \
  --sources msra:1050 weibo:1050 cluener:4500 literature:1050 duie:2800 sanwen:700 finre:700 duee:2800 cote:700 aste:1400 apc:3150 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 2e-5 --lr-head 2e-4 --seed 33 --threads "$THREADS" --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle-sq" \
  --smooth 0.75 --smooth-data "$DATASETS" --smooth-format uie
echo "== e3"
for f in data/eval/extract-cluener.jsonl data/eval/extract-dev.jsonl data/eval/extract-train-held-out.jsonl evals/extract-handwritten.jsonl evals/extract-reviews.jsonl; do
  .venv/bin/zhie eval extract --model "$RUN/bundle-sq" --data "$f" --threads "$THREADS"
done
.venv/bin/zhie extract --model "$RUN/bundle-sq" --schema '{"产品名称": null, "芯片型号": null, "功能": null, "价格": null, "属性词": {"情感词": null}}' \
  '华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。'
# Result (2026-12-02, runs/extract-e3.log; docs/experiments/extract.md), served: the CLUENER file 0.5411 (v7 0.512,
# e2 0.5375; 游戏 0.395, 电影 0.413), dev file 0.557, still-held-out groups relation 0.510 and event 0.681 (v7 0.708),
# handwritten 0.613 (v7 0.637), reviews 0.679 (0.651); the brief's example lost 麒麟9000S (自研麒麟9000S芯片 answered
# as 产品名称). 409 steps, about 4,800 s at two threads beside sentiment d1 and CI. Bar missed (CLUENER 0.5411 <
# 0.542, event 0.681 < 0.688, handwritten 0.613 < 0.627, the brief): not bundled.
