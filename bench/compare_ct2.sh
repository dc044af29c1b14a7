#!/bin/sh
# Translation decoding: tcat (bench/translate_decode) against CTranslate2 on this machine
# (bench/ct2/translate.cpp, built with bench/ct2/build.sh), same plan (bench/data/translation_inputs.json,
# every output length forced), same model shape (opus-mt-en-de, random fp32 weights), same threads.
# The machine's speed drifts by tens of percent between minutes, so the engines alternate pass by pass:
# each round runs, per configuration (batch x beam), one full pass of every engine, in reverse order on
# every other round, and each ratio is taken within a round; the figures are medians over rounds.
# Engines: CTranslate2 fp32 with OpenBLAS and with oneDNN (the faster of the two in a round is the fp32
# peer), CTranslate2 int8 (oneDNN, int8_float32), tcat fp32 and tcat int8 (--weights int8).
#
# usage: bench/compare_ct2.sh [threads=2] [rounds=3] [configs="32x1 32x4 1x1 1x4"]
# Environment: TCAT_BUILD_DIR (default build; configured with -DTCAT_BUILD_BENCH=ON), TCAT_CT2 (default
#   build/ct2: what bench/ct2/build.sh wrote). Run on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
THREADS=${1:-2}
ROUNDS=${2:-3}
CONFIGS=${3:-"32x1 32x4 1x1 1x4"}
BUILD=${TCAT_BUILD_DIR:-build}
CT2=${TCAT_CT2:-build/ct2}
INPUTS=bench/data/translation_inputs.json
for f in "$CT2/ct2_translate-openblas" "$CT2/ct2_translate-dnnl" "$CT2/model/model.bin"; do
  [ -e "$f" ] || { echo "$0: $f is missing: run bench/ct2/build.sh CT2_SOURCE first" >&2; exit 1; }
done
[ -x "$BUILD/bench/translate_decode" ] || cmake --build "$BUILD" --target translate_decode

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, rounds $ROUNDS"
# engine NAME BATCH BEAM: one full pass, one JSON line.
engine() {
  case $1 in
    ct2-openblas-f32) cmd="$CT2/ct2_translate-openblas --model $CT2/model --compute-type float32" ;;
    ct2-dnnl-f32) cmd="$CT2/ct2_translate-dnnl --model $CT2/model --compute-type float32" ;;
    ct2-dnnl-int8) cmd="$CT2/ct2_translate-dnnl --model $CT2/model --compute-type int8" ;;
    tcat-f32) cmd="$BUILD/bench/translate_decode --weights f32" ;;
    tcat-int8) cmd="$BUILD/bench/translate_decode --weights int8" ;;
  esac
  # shellcheck disable=SC2086
  OMP_NUM_THREADS="$THREADS" $cmd --inputs "$INPUTS" --threads "$THREADS" --runs 1 --batch "$2" --beam "$3"
}
ENGINES="ct2-openblas-f32 ct2-dnnl-f32 ct2-dnnl-int8 tcat-f32 tcat-int8"
REVERSED="tcat-int8 tcat-f32 ct2-dnnl-int8 ct2-dnnl-f32 ct2-openblas-f32"
LINES=$(for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order=$ENGINES; else order=$REVERSED; fi
  for config in $CONFIGS; do
    for name in $order; do
      line="$round $name $(engine "$name" "${config%x*}" "${config#*x}")"
      echo "$line" >&2  # progress
      echo "$line"
    done
  done
done)

/usr/bin/python3 - "$LINES" <<'PY'
import json, statistics, sys

runs = {}  # (batch, beam) -> round -> engine -> tok/s
for line in sys.argv[1].splitlines():
    round_, name, payload = line.split(" ", 2)
    r = json.loads(payload)
    runs.setdefault((r["batch"], r["beam"]), {}).setdefault(int(round_), {})[name] = r["tok_per_s"]

print("target tokens/s per round; ratios within each round, median over rounds")
for (batch, beam), rounds in runs.items():
    print(f"\n== batch {batch}, beam {beam}")
    ratios = {"tcat fp32 / CT2 fp32": [], "tcat int8 / CT2 int8": [], "tcat int8 / CT2 fp32": []}
    for n, e in sorted(rounds.items()):
        ct2_f32 = max(e["ct2-openblas-f32"], e["ct2-dnnl-f32"])
        ratios["tcat fp32 / CT2 fp32"].append(e["tcat-f32"] / ct2_f32)
        ratios["tcat int8 / CT2 int8"].append(e["tcat-int8"] / e["ct2-dnnl-int8"])
        ratios["tcat int8 / CT2 fp32"].append(e["tcat-int8"] / ct2_f32)
        print(f"round {n}: CT2 fp32 OpenBLAS {e['ct2-openblas-f32']:.1f}, oneDNN {e['ct2-dnnl-f32']:.1f}; "
              f"CT2 int8 {e['ct2-dnnl-int8']:.1f}; tcat fp32 {e['tcat-f32']:.1f}, int8 {e['tcat-int8']:.1f}")
    for label, values in ratios.items():
        print(f"{label}: {statistics.median(values):.2f}x (rounds {', '.join(f'{v:.2f}' for v in values)})")
PY
