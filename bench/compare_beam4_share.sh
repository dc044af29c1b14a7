#!/bin/sh
# Batch 32 beam 4 translation against CTranslate2, which cannot run here: each round measures this
# machine's sgemm rate (../shared/bench/peers/gemm_check.py, sgemm 1024^3 through torch/OpenBLAS)
# and right after it times one full batch-32 beam-4 pass of tcat (bench/translate_decode, the plan
# of compare_translate.sh) with fp32 weights and one with int8 weights. A pass's FLOPs over its time,
# as a share of the sgemm rate of its own round, set against CTranslate2's share of its machine's
# sgemm rate (RESULTS-translation.md: 185 of 222 GFLOP/s on the Zen 5), give tcat / CTranslate2 at
# equal efficiency. Alternating keeps the machine's drift (tens of percent between minutes) out of
# the ratio, which a single sgemm measurement per run (compare_translate.sh) does not.
#
# usage: bench/compare_beam4_share.sh [rounds=5] [threads=2]
# Environment: TCAT_BUILD_DIR (default build; -DTCAT_BUILD_BENCH=ON), TCAT_PEERS (default ../shared/bench/peers).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
THREADS=${2:-2}
BUILD=${TCAT_BUILD_DIR:-build}
PEERS=${TCAT_PEERS:-../shared/bench/peers}
[ -x "$BUILD/bench/translate_decode" ] || cmake --build "$BUILD" --target translate_decode
LINES=$(for round in $(seq "$ROUNDS"); do
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" /usr/bin/python3 "$PEERS/gemm_check.py" "$THREADS" \
    2>/dev/null | head -1
  for weights in f32 int8; do
    OMP_NUM_THREADS="$THREADS" "$BUILD/bench/translate_decode" --batch 32 --beam 4 --runs 1 --threads "$THREADS" \
      --weights $weights
  done
done)

/usr/bin/python3 - "$LINES" <<'PY'
import json, re, statistics, sys

# Multiply-adds x 2 of one full pass (compare_translate.sh derives it from the plan): 4.05 TFLOP.
FLOPS = 4.05e12
CT2_SHARE = 185 / 222  # CTranslate2 fp32 on the Zen 5: its GFLOP/s over that machine's sgemm rate
rounds = []
for line in sys.argv[1].splitlines():
    if "sgemm" in line:
        rounds.append({"sgemm": float(re.search(r"GFLOP/s ([0-9.]+)", line).group(1))})
    elif line.startswith("{"):
        r = json.loads(line)
        rounds[-1][r["weights"]] = r["median_s"]
ratios = {"f32": [], "int8": []}
for i, r in enumerate(rounds, 1):
    parts = [f"round {i}: sgemm {r['sgemm']:.0f} GFLOP/s"]
    for w in ("f32", "int8"):
        gflops = FLOPS / r[w] / 1e9
        share = gflops / r["sgemm"]
        ratios[w].append(share / CT2_SHARE)
        parts.append(f"{w} {r[w]:.1f} s = {gflops:.0f} GFLOP/s = {100 * share:.0f}% -> {share / CT2_SHARE:.2f}x CT2")
    print("; ".join(parts))
for w in ("f32", "int8"):
    print(f"tcat {w} / CTranslate2 fp32 at equal sgemm shares: median {statistics.median(ratios[w]):.2f}x "
          f"(rounds {', '.join(f'{x:.2f}' for x in ratios[w])})")
PY
