#!/usr/bin/env bash
# Writes the random-weight benchmark models (real layouts, no download; see tools/make_model):
#   <dir>/smollm2-135m-{F16,Q8_0,Q4_0,Q4_K_M}.gguf   (~271 / 145 / 92 / ~100 MB)
#   <dir>/llama-3.2-1b-{F16,Q8_0,Q4_0,Q4_K_M}.gguf   (~2.5 GB / 1.3 GB / 771 MB / 808 MB)
# The F16 file comes from make_model, the others from `lightboat quantize` of it.
#
#   scripts/make_models.sh [DIR]      DIR defaults to build/models (inside the git-ignored build/)
# Environment: BUILD_DIR (default build), PRESETS (default "smollm2-135m llama-3.2-1b"),
# TYPES (default "Q8_0 Q4_0 Q4_K_M"), FORCE=1 to rewrite files that exist, THREADS (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/models}
build=${BUILD_DIR:-build}
presets=${PRESETS:-smollm2-135m llama-3.2-1b}
types=${TYPES:-Q8_0 Q4_0 Q4_K_M}
threads=${THREADS:-0}

if [[ ! -x "$build/lightboat" || ! -x "$build/make_model" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target lightboat make_model
fi
mkdir -p "$out"
for preset in $presets; do
  f16="$out/$preset-F16.gguf"
  if [[ ! -f "$f16" || "${FORCE:-0}" == 1 ]]; then
    "$build/make_model" --preset "$preset" --type F16 -t "$threads" -o "$f16"
  fi
  for t in $types; do
    q="$out/$preset-$t.gguf"
    if [[ ! -f "$q" || "${FORCE:-0}" == 1 ]]; then
      "$build/lightboat" quantize "$f16" "$q" "$t" -t "$threads"
    fi
  done
done
ls -l "$out"
