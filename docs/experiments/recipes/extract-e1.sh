#!/usr/bin/env bash
# Schema extractor e1, a trial (issue 22): train CLUENER's 游戏 and 电影. Every extractor so far held them out
# (uie_data.HELD_OUT) to measure unseen names, but an independent CLUENER evaluation asks all ten of its types,
# and on the held-out file v7 scores 0.31 on them against 0.55 for the work names it was trained on
# (MODELS.md). e1 releases the two (--held-out keeps 毕业院校, 主演, 董事长, 裁员人数 unseen, so the relation
# and event groups still give a zero-shot figure, as do the handwritten file's unseen lines), asks them under
# synonyms too (游戏名, 游戏名称; 电影名, 影片), and weights CLUENER up: v7 read back from its folder, one pass of
# 9,300 examples (CLUENER 4,000; the other sources at about 40 % of v7's sample), v7's augmentation, lead-ins and
# rates, seed 29. Old random split (v7's); the CLUENER file is every CLUENER dev record with its ten types.
# The first attempt (15,500 examples) started from a wrong read-back of v7 (the smoothing scales left in its
# weights, fixed in zhie.train.from_bundle the same day) and collapsed; it measured nothing, and the bar below
# is unchanged. The export is scored served (INT8) only, to fit the session.
#
# Bar, written before training (2026-12-02): e1 replaces the bundled v7 only if, served (INT8, smoothed as v7):
#  1. the CLUENER file (all ten types) >= v7 + 0.03, v7 measured by this recipe in the same session;
#  2. the dev file (1,999 lines) >= 0.551 (v7 0.556, less 0.005);
#  3. the names still held out: per_group "relation" and "event" on the training-side held-out file no lower
#     than v7's less 0.02 (measured here);
#  4. handwritten >= 0.627 (v7 0.637, less 0.01), reviews >= 0.641 (0.651, less 0.01);
#  5. on the brief's example: 华为Mate60 Pro, 麒麟9000S and 6999元, and one 属性词 -> 情感词 pair.
set -euo pipefail
DATASETS=${DATASETS:-../shared/datasets}
RUN=${RUN:-runs/extract-e1}
THREADS=${THREADS:-2}
BUNDLED=src/zhie/models/bundled/extract
.venv/bin/python -m zhie.train.uie_data --datasets "$DATASETS" --dev-split random --out data/eval/extract-dev.jsonl --per-source 200 \
  --train-held-out data/eval/extract-train-held-out.jsonl --whole cluener=data/eval/extract-cluener.jsonl
if [ "${BASELINE:-1}" = 1 ]; then  # BASELINE=0: v7's figures were printed by an earlier call
  echo "== v7 (bundled) on the CLUENER file and the training-side held-out file"
  .venv/bin/zhie eval extract --model "$BUNDLED" --data data/eval/extract-cluener.jsonl --threads "$THREADS"
  .venv/bin/zhie eval extract --model "$BUNDLED" --data data/eval/extract-train-held-out.jsonl --threads "$THREADS"
fi
[ -d runs/extract-v7-read ] || .venv/bin/zhie train import-bundle "$BUNDLED" --out runs/extract-v7-read
.venv/bin/zhie train extract --datasets "$DATASETS" --out "$RUN" --dev-split random --init runs/extract-v7-read \
  --held-out 毕业院校 主演 董事长 裁员人数 --augment 0.5 --merge-extra 1 --lead-ins 0.5 \
  --sources msra:400 weibo:400 cluener:4000 literature:400 duie:1000 sanwen:250 finre:250 duee:750 cote:250 aste:500 apc:1100 \
  --epochs 1.0 --batch-tokens 3072 --lr-encoder 2e-5 --lr-head 2e-4 --seed 29 --threads "$THREADS" --save-every 200
.venv/bin/zhie export extract --run "$RUN" --out "$RUN/bundle-sq" \
  --smooth 0.75 --smooth-data "$DATASETS" --smooth-format uie
echo "== e1"
for f in data/eval/extract-cluener.jsonl data/eval/extract-dev.jsonl data/eval/extract-train-held-out.jsonl evals/extract-handwritten.jsonl evals/extract-reviews.jsonl; do
  .venv/bin/zhie eval extract --model "$RUN/bundle-sq" --data "$f" --threads "$THREADS"
done
.venv/bin/zhie extract --model "$RUN/bundle-sq" --schema '{"产品名称": null, "芯片型号": null, "功能": null, "价格": null, "属性词": {"情感词": null}}' \
  '华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，但部分用户抱怨系统更新后电池续航下降明显。'
# Result (2026-12-02, runs/extract-e1.log; docs/experiments/extract.md), served: the CLUENER file 0.541 (v7 0.512;
# 游戏 0.052 -> 0.369), dev file 0.557 (0.556), still-held-out groups relation 0.493 (0.499) and event 0.681 (0.708),
# handwritten 0.601 (0.637), reviews 0.654 (0.651), the brief's example as v7. Bar missed (CLUENER 0.541 < 0.542,
# event 0.681 < 0.688, handwritten 0.601 < 0.627): not bundled.
