#!/bin/sh
# Translation decoding: tcat (bench/translate_decode) against a PyTorch eager peer
# (bench/torch_translate.py) in one run, same plan, same model shape (opus-mt-en-de: 6+6 layers,
# d 512, 8 heads, d_ff 2048, swish, vocab 58101, random fp32 weights), same thread count, for
# (batch 32, beam 1), (32, 4), (1, 1) and (1, 4). Plan: bench/data/translation_inputs.json
# (bench/translation_plan.py; batch 32 = 512 sentences, 8928 target tokens; batch 1 = 64 sentences,
# 1081 target tokens; every output length forced). The memory read bandwidth probe
# (../shared/bench/peers/membw.c) runs before every 16 batches of tcat's timed passes (batch 1: four
# times a pass): batch-1 greedy is reported as the median over passes of the time the pass's tokens
# need at the bandwidth each probe read for its quarter / the time taken (every decoder step reads all
# decoder weights and the output projection). Batch 32 beam 4 is bound by arithmetic instead:
# its FLOPs per pass over the time give tcat's GFLOP/s, set against this machine's sgemm rate
# (../shared/bench/peers/gemm_check.py, same run). tcat runs twice: with fp32 weights (the
# like-for-like comparison) and with int8 weights (--weights int8: 7-bit weights, 8-bit activations,
# int8 products; its BLEU cost is in RESULTS.md).
#
# Prints: the CPU; the bandwidth; per configuration the torch and tcat JSON lines, the tcat/torch
# throughput ratio, and the HF transformers / CTranslate2 figures of RESULTS-translation.md for the
# same thread count (context only: measured on another CPU, an AVX-512 AMD Zen 5). CTranslate2 on
# this machine: bench/compare_ct2.sh.
#
# usage: bench/compare_translate.sh [threads=2] [runs=3] [max_batches=0]
#   max_batches N > 0 times only the first N batches of each plan (a quick check of the script;
#   its numbers are not comparable with full-plan figures). Run on an otherwise idle machine.
# Environment: TCAT_BUILD_DIR (default build; configured with -DTCAT_BUILD_BENCH=ON),
#   TCAT_PEERS (default ../shared/bench/peers), TCAT_MEMBW_MIB (buffer of the bandwidth probe, 2048).
# Needs Debian's python3-torch and libopenblas0-openmp (torch reaches OpenBLAS only through
# LD_LIBRARY_PATH), and gcc with OpenMP for the bandwidth probe.
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
RUNS=${2:-3}
MAX_BATCHES=${3:-0}
BUILD=${TCAT_BUILD_DIR:-build}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
INPUTS=bench/data/translation_inputs.json
[ -x "$BUILD/bench/translate_decode" ] || cmake --build "$BUILD" --target translate_decode
# The probe's own build line: -Ofast lets gcc vectorise its float sum (at -O2 it is add-latency bound).
[ -x "$BUILD/bench/membw" ] || gcc -Ofast -march=native -fopenmp "$PEERS/membw.c" -o "$BUILD/bench/membw"

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, runs $RUNS"
MEMBW="OMP_NUM_THREADS=$THREADS $BUILD/bench/membw ${TCAT_MEMBW_MIB:-2048}"

torch_run() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    /usr/bin/python3 bench/torch_translate.py "$THREADS" "$1" "$2" "$RUNS" --inputs "$INPUTS" \
    --max-batches "$MAX_BATCHES"
}
# sgemm rate of this machine (first line of the peers' gemm_check.py): the bound of batch 32 beam 4.
SGEMM=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" /usr/bin/python3 "$PEERS/gemm_check.py" "$THREADS")
SGEMM=$(echo "$SGEMM" | head -1)
TORCH=$(torch_run 32 1; torch_run 32 4; torch_run 1 1; torch_run 1 4)
TCAT=$(for weights in f32 int8; do
  OMP_NUM_THREADS="$THREADS" "$BUILD/bench/translate_decode" --inputs "$INPUTS" --threads "$THREADS" \
    --runs "$RUNS" --max-batches "$MAX_BATCHES" --membw "$MEMBW" --membw-every 16 --weights $weights
done)

/usr/bin/python3 - "$THREADS" "$MAX_BATCHES" "$INPUTS" "$SGEMM" "$TORCH" "$TCAT" <<'PY'
import json, re, statistics, sys

threads, max_batches, inputs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sgemm_gflops = float(re.search(r"GFLOP/s ([0-9.]+)", sys.argv[4]).group(1))
key = lambda r: (r["batch"], r["beam"])
torch = {key(r): r for r in map(json.loads, sys.argv[5].splitlines())}
tcat_runs = [json.loads(line) for line in sys.argv[6].splitlines()]
tcat = {key(r): r for r in tcat_runs if r["weights"] == "f32"}
tcat_int8 = {key(r): r for r in tcat_runs if r["weights"] == "int8"}

# RESULTS-translation.md (2026-11-25, AMD EPYC Zen 5 with AVX-512, full plan, median of 3):
# target tokens/s of HF transformers 4.36.2 (torch 1.13.1) and CTranslate2 4.8.1 fp32.
PEER_TOK_S = {
    2: {(32, 1): (558.2, 912.4), (32, 4): (176.0, 407.2), (1, 1): (48.6, 65.9), (1, 4): (26.8, 44.3)},
    1: {(32, 1): (288.8, 527.6), (32, 4): (108.9, 250.4), (1, 1): (28.3, 34.6), (1, 4): (25.5, 32.0)},
}
ZEN5_MEMBW = {1: 19.1, 2: 25.7}

if max_batches:
    print(f"NOTE: only the first {max_batches} batches of each plan were timed: a check of the script, "
          "not comparable with the full-plan figures below")
for config in [(32, 1), (32, 4), (1, 1), (1, 4)]:
    t, c = torch[config], tcat[config]
    print(f"\n== batch {config[0]}, beam {config[1]}: {c['sentences']} sentences, {c['target_tokens']} target tokens")
    print(f"torch: {json.dumps(t)}")
    print(f"tcat:  {json.dumps(c)}")
    print(f"tcat / torch throughput: {c['tok_per_s'] / t['tok_per_s']:.2f}x "
          f"({c['tok_per_s']:.1f} vs {t['tok_per_s']:.1f} target tok/s)")
    q = tcat_int8[config]
    print(f"tcat int8: {json.dumps(q)}")
    print(f"tcat int8 / torch: {q['tok_per_s'] / t['tok_per_s']:.2f}x, int8 / fp32: {q['tok_per_s'] / c['tok_per_s']:.2f}x "
          f"({q['tok_per_s']:.1f} target tok/s)")
    if threads in PEER_TOK_S:
        hf, ct2 = PEER_TOK_S[threads][config]
        print(f"context, other CPU (Zen 5, AVX-512), {threads} thr: "
              f"HF transformers {hf} tok/s, CTranslate2 {ct2} tok/s")

d, d_ff, layers, vocab = 512, 2048, 6, 58101
linear = lambda n_in, n_out: n_in * n_out + n_out
# Batch-1 greedy reads every decoder weight and the output projection once per step:
# self-attention q, k, v, o; cross-attention q, o; FFN; 3 LayerNorms.
per_layer = 4 * linear(d, d) + 2 * linear(d, d) + linear(d, d_ff) + linear(d_ff, d) + 3 * 2 * d
step_bytes = 4 * (layers * per_layer + vocab * d)
greedy1 = tcat[(1, 1)]
# Each pass is a row of segments [seconds, tokens, GB/s], the probe run just before the segment: a
# pass's share of the limit = the time its tokens need at each segment's bandwidth / the time taken.
limit_seconds = lambda segment: segment[1] * step_bytes / (segment[2] * 1e9)
shares = [sum(map(limit_seconds, p)) / sum(seg[0] for seg in p) for p in greedy1["segments"]]
segment_shares = [limit_seconds(seg) / seg[0] for p in greedy1["segments"] for seg in p]
probes = [seg[2] for p in greedy1["segments"] for seg in p]
gbps = statistics.median(probes)
ceiling = gbps * 1e9 / step_bytes
print(f"\nbandwidth limit, batch 1 greedy: {step_bytes / 1e6:.1f} MB of fp32 weights per decoder step "
      f"(6 decoder layers without the cross-attention K/V, which are computed once, + the 58101 x 512 output "
      f"projection); the probe ran {len(greedy1['segments'][0])} times a pass, before each stretch of 16 sentences: "
      f"{', '.join(f'{g:.1f}' for g in probes)} GB/s "
      f"(median {gbps:.1f} GB/s = {step_bytes / gbps / 1e6:.2f} ms per step, at most {ceiling:.1f} tok/s)")
print(f"tcat batch 1 greedy: {greedy1['tok_per_s']:.1f} tok/s ({greedy1['ms_per_step']:.2f} ms per step, encoder "
      f"time included) = {100 * statistics.median(shares):.0f}% of the limit (median over passes of the time the "
      f"pass's tokens need at its segments' bandwidths / the time taken; passes "
      f"{', '.join(f'{100 * x:.0f}%' for x in shares)}; segments {100 * min(segment_shares):.0f}-"
      f"{100 * max(segment_shares):.0f}%)")
if threads in ZEN5_MEMBW:
    hf, ct2 = PEER_TOK_S[threads][(1, 1)]
    zen5_ceiling = ZEN5_MEMBW[threads] * 1e9 / step_bytes
    print(f"context: on the Zen 5 ({ZEN5_MEMBW[threads]} GB/s with {threads} thr, limit {zen5_ceiling:.0f} tok/s) "
          f"CTranslate2 reached {100 * ct2 / zen5_ceiling:.0f}% and HF {100 * hf / zen5_ceiling:.0f}%")

# Batch 32 beam 4 is bound by arithmetic: every beam row of every step multiplies through the decoder
# and the 58101 x 512 output projection. Multiply-adds of the full plan (attention scores and
# LayerNorms left out: under 1%): decoder rows x steps, encoder and cross-attention K/V per padded
# source token.
plan = json.load(open(inputs))
dec_flops_per_row_step = 2 * (layers * (6 * d * d + 2 * d * d_ff) + vocab * d)
enc_flops_per_token = 2 * layers * (4 * d * d + 2 * d * d_ff + 2 * d * d)
flops = 0
for chunk in plan["plans"]["32"][:max_batches or None]:
    width = max(plan["src_lens"][r] for r in chunk["rows"])
    flops += len(chunk["rows"]) * (4 * chunk["target_len"] * dec_flops_per_row_step + width * enc_flops_per_token)
beam4, beam4_int8 = tcat[(32, 4)], tcat_int8[(32, 4)]
tcat_gflops = flops / beam4["median_s"] / 1e9
int8_gflops = flops / beam4_int8["median_s"] / 1e9
print(f"\nbatch 32 beam 4: {flops / 1e12:.2f} TFLOP per pass; tcat {tcat_gflops:.0f} GFLOP/s = "
      f"{100 * tcat_gflops / sgemm_gflops:.0f}% of this machine's sgemm 1024^3 ({sgemm_gflops:.0f} GFLOP/s, "
      f"torch/OpenBLAS, same run); tcat int8 {int8_gflops:.0f} (multiply-adds per second x 2) = "
      f"{100 * int8_gflops / sgemm_gflops:.0f}% of it")
PY
