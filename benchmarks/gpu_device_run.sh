#!/usr/bin/env bash
# benchmarks/gpu.py on a GPU machine, as ONE command (docs/gpu.md).
#
#   bash benchmarks/gpu_device_run.sh --prepare [--with-ort]   # here, with PyPI: wheels into .gpu-wheels/ (git-ignored)
#   bash benchmarks/gpu_device_run.sh [gpu.py options]         # there: install, check the GPU, measure, write results
#
# There it uses, in this order: an onnxruntime that already has the CUDA provider; the wheels in
# .gpu-wheels/ (carried with the working tree: name .gpu-wheels in the device tool's carry); PyPI where
# it can be reached. zhie's serving packages come the same way where the machine lacks them. The results
# go to benchmarks/results/gpu.md (and $OUT/gpu.md where $OUT is set, with the servers' logs beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${ZHIE_GPU_WHEELS:-.gpu-wheels}
PY=${PYTHON:-python3}
ORT_GPU="onnxruntime-gpu==1.31.1"
SERVING=(fastapi==0.165.0 fastapi-offline==1.7.7 starlette==1.10.0 uvicorn==0.54.0 pydantic==2.14.3 pydantic-core==2.50.4
         typing-inspection==0.4.5 annotated-types==0.8.0 prometheus-client==0.26.0 nvidia-ml-py==13.615.71)

if [[ "${1:-}" == "--prepare" ]]; then
  grep -qxF "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
  pkgs=("${SERVING[@]}")
  [[ "${2:-}" == "--with-ort" ]] && pkgs+=("$ORT_GPU")
  # the lent H200's python3 is CPython 3.12 on x86-64 (KINDS.md); ZHIE_GPU_PY overrides
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${ZHIE_GPU_PY:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$WHEELS" "${pkgs[@]}"
  du -sh "$WHEELS"
  echo "carry $WHEELS with the run; a device call carries 64 MiB with the working tree (onnxruntime-gpu alone is about 255 MB)"
  exit 0
fi

SITE=${ZHIE_GPU_SITE:-/tmp/zhie-gpu-site}
mkdir -p "$SITE"
export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
has_cuda() { "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; }
install() {  # wheels carried, else PyPI
  local found=()
  for p in "$@"; do
    n=$(echo "${p%%==*}" | tr '-' '_')
    f=$(ls "$WHEELS"/${n}-*.whl "$WHEELS"/$(echo "$n" | tr '[:upper:]' '[:lower:]')-*.whl 2>/dev/null | head -1 || true)
    [[ -n "$f" ]] && found+=("$f")
  done
  if [[ ${#found[@]} -eq $# ]]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${found[@]}"
  else
    echo "not all of $* are in $WHEELS: trying PyPI" >&2
    "$PY" -m pip install -q --no-deps --no-compile --upgrade --target "$SITE" "$@"
  fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: no GPU visible" >&2
missing=()
for p in "${SERVING[@]}"; do
  mod=$(echo "${p%%==*}" | tr '-' '_' | sed 's/^nvidia_ml_py$/pynvml/; s/^prometheus_client$/prometheus_client/; s/^pydantic_core$/pydantic_core/')
  "$PY" -c "import $mod" 2>/dev/null || missing+=("$p")
done
[[ ${#missing[@]} -gt 0 ]] && install "${missing[@]}"
if ! has_cuda; then
  install "$ORT_GPU"
  has_cuda || { echo "onnxruntime with the CUDA provider could not be installed (carry $ORT_GPU in $WHEELS)" >&2; exit 3; }
fi
"$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.__file__, o.get_available_providers())"

# the GPU models of the bundled folders, made into the model cache before the clock starts (a fresh machine
# would otherwise make them during the first startup)
export ZHIE_CACHE_DIR=${ZHIE_CACHE_DIR:-/tmp/zhie-cache} ZHIE_BENCH_LOGS=${ZHIE_BENCH_LOGS:-/tmp/zhie-gpu-bench}
"$PY" - <<'PYEOF'
import time
from zhie.models.bundle import bundled_models, load_bundle
from zhie.models.fp16 import fp16_model_for
from zhie.runtime.session import default_cache_dir
for name in bundled_models():
    for kind in ("fp16", "int8"):
        t0 = time.perf_counter()
        path, why = fp16_model_for(load_bundle(name), default_cache_dir(), kind)
        print(f"{name} {kind}: {path} ({time.perf_counter() - t0:.1f} s){' ' + why if why else ''}", flush=True)
PYEOF

set +e
PYTHONUNBUFFERED=1 timeout "${ZHIE_GPU_BENCH_TIMEOUT:-420}" "$PY" benchmarks/gpu.py --device cuda "$@"
rc=$?
for kind in fp16 int8; do  # parity on the GPU: the evals/ files travel; ../shared/datasets does not (rows say so)
  PYTHONUNBUFFERED=1 timeout 60 "$PY" benchmarks/fp16_parity.py --device cuda --gpu-model $kind --limit 300 \
    --out benchmarks/results/gpu_parity_$kind.md > /dev/null
done
set -e
if [[ -n "${OUT:-}" ]]; then
  for f in gpu.md gpu_parity_fp16.md gpu_parity_int8.md; do
    cp "benchmarks/results/$f" "$OUT/$f" 2>/dev/null || true
  done
  cp "$ZHIE_BENCH_LOGS"/*.log "$OUT/" 2>/dev/null || true
fi
exit $rc
