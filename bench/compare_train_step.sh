#!/bin/sh
# Encoder-decoder training step: tcat (bench/transformer_train_step) and PyTorch
# (bench/torch_seq2seq_train.py) in one run, on the SAME model shape and batch, same thread count.
# Both are post-norm Transformers with one tied embedding table, sinusoidal positions, dropout on
# embeddings / residual branches / FFN hidden layer, label smoothing 0.1 and Adam (0.9, 0.98, 1e-9);
# random ids, no padding. Shapes:
#   multi30k: tcat's shipped translation model (src/train/translation.cpp, preset multi30k-base):
#             d 128, 4 heads, d_ff 256, 4+4 layers, vocab 8000, ReLU, dropout 0.3;
#             batch 128 x 32 source + 32 target tokens (4096 target tokens, the preset's max_tokens)
#   base:     Transformer base: d 512, 8 heads, d_ff 2048, 6+6 layers, vocab 32000, ReLU, dropout 0.1;
#             batch 32 x 32 + 32 tokens
# Prints per shape and precision the two JSON lines, then target tokens/s of both and the ratios.
#
# usage: bench/compare_train_step.sh [threads=2] [steps=5] [shape=all|multi30k|base] [precision=fp32|bf16|both]
#   bf16 = CPU autocast in PyTorch, bf16 GEMM operands with fp32 master weights in tcat. Without
#   AVX512-BF16/AMX PyTorch's bf16 step takes minutes (Transformer base), so it is not run by default.
# Environment: TCAT_BUILD_DIR (default build; configured with -DTCAT_BUILD_BENCH=ON).
# Needs Debian's python3-torch and libopenblas0-openmp (apt-get install python3-torch libopenblas0-openmp).
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-5}
SHAPES=${3:-all}
PRECISION=${4:-fp32}
BUILD=${TCAT_BUILD_DIR:-build}
[ -x "$BUILD/bench/transformer_train_step" ] || cmake --build "$BUILD" --target transformer_train_step

case "$SHAPES" in
  all) SHAPES="multi30k base" ;;
  multi30k | base) ;;
  *) echo "unknown shape '$SHAPES' (all, multi30k, base)" >&2; exit 2 ;;
esac
case "$PRECISION" in
  both) PRECISION="fp32 bf16" ;;
  fp32 | bf16) ;;
  *) echo "unknown precision '$PRECISION' (fp32, bf16, both)" >&2; exit 2 ;;
esac

shape_flags() {
  case "$1" in
    multi30k) echo "--d-model 128 --heads 4 --d-ff 256 --layers 4 --vocab 8000 --activation relu --dropout 0.3
                    --batch 128 --src-len 32 --tgt-len 32" ;;
    base) echo "--d-model 512 --heads 8 --d-ff 2048 --layers 6 --vocab 32000 --activation relu --dropout 0.1
                --batch 32 --src-len 32 --tgt-len 32" ;;
  esac
}
precision_flag() { if [ "$1" = bf16 ]; then echo "--bf16"; fi; }

torch_run() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    /usr/bin/python3 bench/torch_seq2seq_train.py --threads "$THREADS" --steps "$STEPS" --warmup 2 "$@"
}
tcat_run() {
  OMP_NUM_THREADS="$THREADS" "$BUILD/bench/transformer_train_step" --threads "$THREADS" --steps "$STEPS" --warmup 2 "$@"
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, $STEPS timed steps"
for shape in $SHAPES; do
  for precision in $PRECISION; do
    # shellcheck disable=SC2046 # the flag lists are meant to split into words
    T=$(torch_run $(shape_flags "$shape") $(precision_flag "$precision"))
    # shellcheck disable=SC2046
    C=$(tcat_run $(shape_flags "$shape") $(precision_flag "$precision"))
    echo "== $shape $precision"
    echo "torch: $T"
    echo "tcat:  $C"
    /usr/bin/python3 - "$T" "$C" <<'PY'
import json, sys
torch, tcat = (json.loads(a) for a in sys.argv[1:])
print(f"target tok/s: tcat {tcat['tgt_tok_s']:.0f}, torch {torch['tgt_tok_s']:.0f}; "
      f"tcat / torch throughput {tcat['tgt_tok_s'] / torch['tgt_tok_s']:.2f}x "
      f"(step {tcat['step_ms_median']:.0f} ms vs {torch['step_ms_median']:.0f} ms)")
if torch["params"] != tcat["params"]:
    print(f"parameter counts differ: tcat {tcat['params']}, torch {torch['params']}")
PY
  done
done
