#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. Release build (warnings as errors) and every ctest, including the llama.cpp conformance
#      check through the CLI contract (../shared/check/conformance.py);
#   2. the GGUF reader, tokenizer and model tests again under AddressSanitizer + UBSan;
#   3. the kernels cross-compiled for aarch64 (NEON + dotprod) and their tests under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLIGHTBOAT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
# Benchmarks are not tests: the sanitizer build skips them.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLIGHTBOAT_WERROR=ON -DLIGHTBOAT_SANITIZE=ON -DLIGHTBOAT_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== Release suite =="
ctest --test-dir build --output-on-failure -j"$jobs"
echo "== AddressSanitizer + UBSan suite =="
ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
echo "== aarch64 kernels (NEON) under qemu-user =="
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  cmake -S cmake/kernels_only -B build-arm64 -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" >/dev/null
  cmake --build build-arm64 -j"$jobs"
  ctest --test-dir build-arm64 --output-on-failure -j"$jobs"
else
  echo "SKIPPED: g++-aarch64-linux-gnu or qemu-user missing (scripts/setup.sh installs them)"
fi
