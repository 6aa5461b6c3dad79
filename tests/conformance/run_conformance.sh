#!/usr/bin/env bash
# Runs ../shared/check/conformance.py (llama.cpp's reference outputs, through the CLI contract)
# on the given reference files, or on every tokenizer vector file but bert-bge (WordPiece is out
# of scope). Exit 77 (ctest: skipped) with a loud message when ../shared is absent.
set -euo pipefail
bin=$1 shared=$2 what=$3
if [ ! -f "$shared/check/conformance.py" ]; then
  echo "*** SKIPPED: $shared/check/conformance.py not found: llama.cpp conformance did NOT run ***"
  exit 77
fi
case "$what" in
  tokenizers) args=$(ls "$shared"/fixtures/tokenizer/*.inp | grep -v bert-bge) ;;
  *) args="$shared/fixtures/$what/reference.json" ;;
esac
# shellcheck disable=SC2086
exec python3 "$shared/check/conformance.py" --bin "$bin" $args
