#!/bin/sh
# GPT-2-small inference (random weights, batch 1): tcat with fp32 weights, tcat with bf16-stored
# weights (bench/gpt2_decode.cpp) and the PyTorch peer ../shared/bench/peers/torch_gpt2.py in one run,
# same thread count: prefill of 128 tokens (all logits / last logits only) and greedy decoding of
# 128 tokens with a KV cache. tcat's fp32 and bf16 decoding runs alternate in one process, and the
# memory read bandwidth probe (../shared/bench/peers/membw.c) runs before each such round: the
# decode limit of a round is its probe's GB/s / weight bytes read per step (every parameter but the
# position table; the tied table once, as the output projection). Reported: medians over rounds of
# speed / limit and of bf16 speed / fp32 speed, so a shared machine's drift hits both sides alike.
#
# usage: bench/compare_gpt2.sh [threads=2] [reps=5]   (decode rounds: max(1, reps / 2))
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
REPS=${2:-5}
BUILD=${TCAT_BUILD_DIR:-build}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
[ -x "$BUILD/bench/gpt2_decode" ] || cmake --build "$BUILD" --target gpt2_decode
# The probe's own build line: -Ofast lets gcc vectorise its float sum (at -O2 it is add-latency bound).
[ -x "$BUILD/bench/membw" ] || gcc -Ofast -march=native -fopenmp "$PEERS/membw.c" -o "$BUILD/bench/membw"

MEMBW="OMP_NUM_THREADS=$THREADS $BUILD/bench/membw ${TCAT_MEMBW_MIB:-2048}"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, reps $REPS"
TORCH=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
  /usr/bin/python3 "$PEERS/torch_gpt2.py" --threads "$THREADS" --reps "$REPS")
TCAT=$(OMP_NUM_THREADS="$THREADS" "$BUILD/bench/gpt2_decode" --threads "$THREADS" --reps "$REPS" \
  --weights f32,bf16 --membw "$MEMBW")

/usr/bin/python3 - "$TORCH" "$TCAT" <<'PY'
import json, sys

torch = json.loads(sys.argv[1])
f32, bf16, paired = (json.loads(line) for line in sys.argv[2].splitlines())
gbps = f32["membw_GBps_median"]
print(f"torch:     {json.dumps(torch)}")
print(f"tcat f32:  {json.dumps(f32)}")
print(f"tcat bf16: {json.dumps(bf16)}")
print(f"\n{'':10} {'prefill all tok/s':>18} {'x torch':>8} {'prefill last tok/s':>19} {'x torch':>8} "
      f"{'decode tok/s':>13} {'x torch':>8} {'% of limit':>11}")
f32_bytes = f32["step_weight_bytes"]
for name, r in [("torch", torch), ("tcat f32", f32), ("tcat bf16", bf16)]:
    # torch ran outside the probed rounds: its share is against the median probe reading.
    share = r.get("decode_share_of_limit", r["decode_tok_s"] / (gbps * 1e9 / f32_bytes))
    print(f"{name:10} {r['prefill_all_logits_tok_s']:18.1f} "
          f"{r['prefill_all_logits_tok_s'] / torch['prefill_all_logits_tok_s']:7.2f}x "
          f"{r['prefill_last_logits_tok_s']:19.1f} "
          f"{r['prefill_last_logits_tok_s'] / torch['prefill_last_logits_tok_s']:7.2f}x "
          f"{r['decode_tok_s']:13.1f} {r['decode_tok_s'] / torch['decode_tok_s']:7.2f}x "
          f"{100 * share:10.0f}%")
print(f"\nbandwidth probe: median {gbps:.1f} GB/s over {paired['rounds']} rounds; decode limit at that rate: "
      f"fp32 {f32_bytes / 1e6:.1f} MB per step -> {gbps * 1e9 / f32_bytes:.1f} tok/s; "
      f"bf16 {bf16['step_weight_bytes'] / 1e6:.1f} MB -> {gbps * 1e9 / bf16['step_weight_bytes']:.1f} tok/s")
print(f"% of limit (tcat): median over rounds of (decode speed / that round's limit)")
print(f"bf16-weight decode / fp32 decode: {paired['bf16_over_f32_decode_paired']:.2f}x (median of paired rounds; "
      f"ratio of medians {bf16['decode_tok_s'] / f32['decode_tok_s']:.2f}x)")
PY
