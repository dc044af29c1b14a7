#!/bin/sh
# BLEU of an EN->DE model on the three Multi30k test sets (beam search, sacreBLEU-compatible BLEU).
# usage: scripts/eval_multi30k.sh MODEL [extra tcat translate options, e.g. --beam 1]
# Translations are written to MODEL-eval/<set>.hyp.de (or $TCAT_EVAL_DIR if set).
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 MODEL [translate options]" >&2; exit 2; }
MODEL=$1
shift
OUT=${TCAT_EVAL_DIR:-$(echo "$MODEL" | sed 's:/*$::')-eval}
mkdir -p "$OUT"
for SET in test_2016_flickr test_2017_flickr test_2017_mscoco; do
  build/tcat -q translate -m "$MODEL" "$@" < "data/multi30k/$SET.en" > "$OUT/$SET.hyp.de"
  printf '%s: ' "$SET"
  build/tcat bleu "data/multi30k/$SET.de" "$OUT/$SET.hyp.de" | head -1
done
build/tcat bleu data/multi30k/test_2016_flickr.de "$OUT/test_2016_flickr.hyp.de" | tail -1
