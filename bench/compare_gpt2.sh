#!/bin/sh
# GPT-2-small inference (random weights, batch 1): tcat with fp32 weights, tcat with bf16-stored
# weights (bench/gpt2_decode.cpp) and the PyTorch peer ../shared/bench/peers/torch_gpt2.py, same
# thread count: prefill of 128 tokens (all logits / last logits only) and greedy decoding of 128
# tokens with a KV cache. A shared machine's speed drifts by tens of percent within minutes, so the
# comparison runs in rounds: each round runs torch, then tcat, and every figure below is the median
# over rounds of that round's ratio. Inside tcat's run, fp32 and bf16 decoding alternate, and the
# memory read bandwidth probe (../shared/bench/peers/membw.c) runs before each fp32+bf16 pair: the
# decode limit of a pair is its probe's GB/s / weight bytes read per step (every parameter but the
# position table; the tied table once, as the output projection).
#
# usage: bench/compare_gpt2.sh [threads=2] [reps=5] [rounds=3]
#   reps: prefill calls per engine and round (decode pairs: max(1, reps / 2))
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
REPS=${2:-5}
ROUNDS=${3:-3}
BUILD=${TCAT_BUILD_DIR:-build}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
[ -x "$BUILD/bench/gpt2_decode" ] || cmake --build "$BUILD" --target gpt2_decode
# The probe's own build line: -Ofast lets gcc vectorise its float sum (at -O2 it is add-latency bound).
[ -x "$BUILD/bench/membw" ] || gcc -Ofast -march=native -fopenmp "$PEERS/membw.c" -o "$BUILD/bench/membw"

MEMBW="OMP_NUM_THREADS=$THREADS $BUILD/bench/membw ${TCAT_MEMBW_MIB:-2048}"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, reps $REPS, rounds $ROUNDS"
RESULTS=""
for round in $(seq "$ROUNDS"); do
  TORCH=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    /usr/bin/python3 "$PEERS/torch_gpt2.py" --threads "$THREADS" --reps "$REPS")
  TCAT=$(OMP_NUM_THREADS="$THREADS" "$BUILD/bench/gpt2_decode" --threads "$THREADS" --reps "$REPS" \
    --weights f32,bf16 --membw "$MEMBW")
  RESULTS="$RESULTS$TORCH
$TCAT
"
done

/usr/bin/python3 - "$ROUNDS" "$RESULTS" <<'PY'
import json, statistics, sys

rounds = int(sys.argv[1])
lines = [json.loads(line) for line in sys.argv[2].splitlines() if line.strip()]
assert len(lines) == 4 * rounds, f"expected 4 result lines per round, got {len(lines)}"
med = statistics.median
table = {"torch": [], "tcat f32": [], "tcat bf16": []}
paired = []
for r in range(rounds):
    torch, f32, bf16, pair = lines[4 * r: 4 * r + 4]
    print(f"round {r + 1}:\n  torch:     {json.dumps(torch)}\n  tcat f32:  {json.dumps(f32)}\n"
          f"  tcat bf16: {json.dumps(bf16)}\n  {json.dumps(pair)}")
    table["torch"].append((torch, torch))
    table["tcat f32"].append((f32, torch))
    table["tcat bf16"].append((bf16, torch))
    paired.append(pair["bf16_over_f32_decode_paired"])

print(f"\nmedians over {rounds} rounds (tok/s; x torch = median of the per-round ratios)")
print(f"{'':10} {'prefill all tok/s':>18} {'x torch':>8} {'prefill last tok/s':>19} {'x torch':>8} "
      f"{'decode tok/s':>13} {'x torch':>8} {'% of limit':>11}")
fields = [("prefill_all_logits_tok_s", 18), ("prefill_last_logits_tok_s", 19), ("decode_tok_s", 13)]
for name, runs in table.items():
    row = f"{name:10}"
    for field, width in fields:
        row += f" {med(r[field] for r, _ in runs):{width}.1f} {med(r[field] / t[field] for r, t in runs):7.2f}x"
    if name != "torch":
        row += f" {100 * med(r['decode_share_of_limit'] for r, _ in runs):10.0f}%"
    print(row)
gbps = [r["membw_GBps_median"] for r, _ in table["tcat f32"]]
f32_bytes, bf16_bytes = lines[1]["step_weight_bytes"], lines[2]["step_weight_bytes"]
print(f"\nbandwidth probe (median per round): {', '.join(f'{g:.1f}' for g in gbps)} GB/s; at the median "
      f"{med(gbps):.1f} GB/s the decode limit is fp32 {f32_bytes / 1e6:.1f} MB per step -> "
      f"{med(gbps) * 1e9 / f32_bytes:.1f} tok/s, bf16 {bf16_bytes / 1e6:.1f} MB -> {med(gbps) * 1e9 / bf16_bytes:.1f} tok/s")
print("% of limit: median over rounds of the median over pairs of (decode speed / that pair's limit)")
print(f"bf16-weight decode / fp32 decode: {med(paired):.2f}x (median over rounds of the paired median; rounds: "
      f"{', '.join(f'{x:.2f}' for x in paired)})")
PY
