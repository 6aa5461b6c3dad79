#!/usr/bin/env bash
# Runs ../shared/check/conformance.py (llama.cpp's reference outputs, through the CLI contract)
# on the given reference files, or on every tokenizer vector file but bert-bge (WordPiece is out
# of scope). Exit 77 (ctest: skipped) with a loud message when ../shared is absent. A fourth
# argument names a kernel table (LIGHTBOAT_ISA) to run them with, skipped where the CPU lacks it.
set -euo pipefail
bin=$1 shared=$2 what=$3 isa=${4:-}
if [ ! -f "$shared/check/conformance.py" ]; then
  echo "*** SKIPPED: $shared/check/conformance.py not found: llama.cpp conformance did NOT run ***"
  exit 77
fi
if [ -n "$isa" ]; then
  if ! probe=$(LIGHTBOAT_ISA=$isa "$bin" logits -m "$shared/fixtures/stories260K/stories260K-Q4_0.gguf" -p a 2>&1); then
    if grep -q "does not support it" <<<"$probe"; then
      echo "*** SKIPPED: this CPU does not run the $isa kernels: conformance with them did NOT run ***"
      exit 77
    fi
    echo "$probe" >&2
    exit 1
  fi
  export LIGHTBOAT_ISA=$isa
fi
case "$what" in
  tokenizers) args=$(ls "$shared"/fixtures/tokenizer/*.inp | grep -v bert-bge) ;;
  *) args="$shared/fixtures/$what/reference.json" ;;
esac
# shellcheck disable=SC2086
exec python3 "$shared/check/conformance.py" --bin "$bin" $args
