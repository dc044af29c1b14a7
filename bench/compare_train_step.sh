#!/bin/sh
# Transformer-base training step: tcat and PyTorch (torch_transformer_train.py) in one run, same
# shapes and thread count; prints both JSON lines and the ratios. Needs Debian's python3-torch and
# libopenblas0-openmp (apt-get install python3-torch libopenblas0-openmp).
# usage: bench/compare_train_step.sh [threads] [steps]
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-5}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
[ -x build/bench/transformer_train_step ] || cmake --build build --target transformer_train_step

torch_run() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    /usr/bin/python3 "$PEERS/torch_transformer_train.py" --threads "$THREADS" --steps "$STEPS" --warmup 2 "$@"
}
tcat_run() { OMP_NUM_THREADS="$THREADS" build/bench/transformer_train_step --threads "$THREADS" --steps "$STEPS" "$@"; }

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
T32=$(torch_run); echo "torch fp32: $T32"
C32=$(tcat_run); echo "tcat  fp32: $C32"
T16=$(torch_run --bf16); echo "torch bf16: $T16"
C16=$(tcat_run --bf16); echo "tcat  bf16: $C16"
/usr/bin/python3 - "$T32" "$C32" "$T16" "$C16" <<'PY'
import json, sys
t32, c32, t16, c16 = (json.loads(a)["step_ms_median"] for a in sys.argv[1:])
print(f"tcat fp32 step / torch fp32 step: {c32 / t32:.3f}  (target <= 1)")
print(f"tcat bf16 step / torch fp32 step: {c16 / t32:.3f}  (target <= 0.5)")
print(f"tcat bf16 step / torch bf16 step: {c16 / t16:.3f}  (target < 1)")
PY
