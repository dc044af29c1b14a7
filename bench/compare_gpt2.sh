#!/bin/sh
# GPT-2-small inference (random weights, batch 1): tcat with fp32 weights, tcat with bf16-stored
# weights (bench/gpt2_decode.cpp) and the PyTorch peer ../shared/bench/peers/torch_gpt2.py in one run,
# same thread count: prefill of 128 tokens (all logits / last logits only) and greedy decoding of
# 128 tokens with a KV cache. The memory read bandwidth (../shared/bench/peers/membw.c) is measured
# before and after the runs; the higher figure sets the decode limit: weight bytes read per step
# (every parameter but the position table; the tied table once, as the output projection) / bandwidth.
#
# usage: bench/compare_gpt2.sh [threads=2] [reps=5]
# Environment: TCAT_BUILD_DIR (default build; configured with -DTCAT_BUILD_BENCH=ON),
#   TCAT_PEERS (default ../shared/bench/peers), TCAT_MEMBW_MIB (buffer of the bandwidth probe, 2048).
# Needs Debian's python3-torch and libopenblas0-openmp, and gcc with OpenMP for the bandwidth probe.
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
REPS=${2:-5}
BUILD=${TCAT_BUILD_DIR:-build}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
[ -x "$BUILD/bench/gpt2_decode" ] || cmake --build "$BUILD" --target gpt2_decode
# The probe's own build line: -Ofast lets gcc vectorise its float sum (at -O2 it is add-latency bound).
[ -x "$BUILD/bench/membw" ] || gcc -Ofast -march=native -fopenmp "$PEERS/membw.c" -o "$BUILD/bench/membw"

membw() { OMP_NUM_THREADS="$THREADS" "$BUILD/bench/membw" "${TCAT_MEMBW_MIB:-2048}"; }
tcat_run() { OMP_NUM_THREADS="$THREADS" "$BUILD/bench/gpt2_decode" --threads "$THREADS" --reps "$REPS" --weights "$1"; }

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, reps $REPS"
MEMBW_BEFORE=$(membw)
TORCH=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
  /usr/bin/python3 "$PEERS/torch_gpt2.py" --threads "$THREADS" --reps "$REPS")
F32=$(tcat_run f32)
BF16=$(tcat_run bf16)
MEMBW_AFTER=$(membw)

/usr/bin/python3 - "$MEMBW_BEFORE" "$MEMBW_AFTER" "$TORCH" "$F32" "$BF16" <<'PY'
import json, re, sys

bws = [float(re.search(r"best_read_GBps=([0-9.]+)", s).group(1)) for s in sys.argv[1:3]]
torch, f32, bf16 = (json.loads(s) for s in sys.argv[3:6])
print(f"bandwidth: {bws[0]:.1f} GB/s before, {bws[1]:.1f} GB/s after; the limit uses {max(bws):.1f}")
gbps = max(bws)
print(f"torch:     {json.dumps(torch)}")
print(f"tcat f32:  {json.dumps(f32)}")
print(f"tcat bf16: {json.dumps(bf16)}")
print(f"\n{'':10} {'prefill all tok/s':>18} {'x torch':>8} {'prefill last tok/s':>19} {'x torch':>8} "
      f"{'decode tok/s':>13} {'x torch':>8} {'% of limit':>11}")
f32_bytes = f32["step_weight_bytes"]
for name, r, step_bytes in [("torch", torch, f32_bytes), ("tcat f32", f32, f32_bytes),
                            ("tcat bf16", bf16, bf16["step_weight_bytes"])]:
    limit = gbps * 1e9 / step_bytes
    print(f"{name:10} {r['prefill_all_logits_tok_s']:18.1f} "
          f"{r['prefill_all_logits_tok_s'] / torch['prefill_all_logits_tok_s']:7.2f}x "
          f"{r['prefill_last_logits_tok_s']:19.1f} "
          f"{r['prefill_last_logits_tok_s'] / torch['prefill_last_logits_tok_s']:7.2f}x "
          f"{r['decode_tok_s']:13.1f} {r['decode_tok_s'] / torch['decode_tok_s']:7.2f}x "
          f"{100 * r['decode_tok_s'] / limit:10.0f}%")
print(f"\ndecode limit: fp32 {f32_bytes / 1e6:.1f} MB per step -> {gbps * 1e9 / f32_bytes:.1f} tok/s; "
      f"bf16 {bf16['step_weight_bytes'] / 1e6:.1f} MB -> {gbps * 1e9 / bf16['step_weight_bytes']:.1f} tok/s")
print(f"bf16-weight decode / fp32 decode: {bf16['decode_tok_s'] / f32['decode_tok_s']:.2f}x")
PY
