#!/usr/bin/env bash
# The engine table of docs/performance.md ("Engine: concurrency, priorities, prefix cache"):
# runs bench/engine_bench (the public engine API) on each model and prints markdown tables.
#
#   scripts/engine_bench.sh [MODEL.gguf ...]
#
# Without arguments: build/models/smollm2-135m-Q8_0.gguf and build/models/llama-3.2-1b-Q4_0.gguf
# when present (scripts/make_models.sh writes them). Progress and per-run lines go to stderr, the
# raw JSON of every model is kept (the folder is printed on stderr).
#
# Settings (environment):
#   ENGINE_BENCH the binary                   (default: build/bench/engine_bench of this checkout)
#   THREADS      compute threads              (default: 2)
#   REPS         repetitions of each measurement, medians reported (default: 3)
#   IDLE         seconds of idle before each measured run (default: 20)
#   ARGS         extra engine_bench options, e.g. "--step-tokens 64 --max-running 8"
#   OUT          folder for the raw JSON      (default: a new folder under /tmp)
#   MODELS_DIR   where the default models are (default: build/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

ENGINE_BENCH=${ENGINE_BENCH:-$root/build/bench/engine_bench}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
IDLE=${IDLE:-20}
ARGS=${ARGS:-}
OUT=${OUT:-$(mktemp -d /tmp/lightboat-engine.XXXXXX)}
mkdir -p "$OUT"

if [[ ! -x "$ENGINE_BENCH" ]]; then
  echo "engine_bench.sh: $ENGINE_BENCH is not built (cmake --build build --target engine_bench)" >&2
  exit 2
fi
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  models_dir=${MODELS_DIR:-$root/build/models}
  for m in smollm2-135m-Q8_0 llama-3.2-1b-Q4_0; do
    [[ -f "$models_dir/$m.gguf" ]] && models+=("$models_dir/$m.gguf")
  done
  if [[ ${#models[@]} -eq 0 ]]; then
    echo "engine_bench.sh: no models given and none in $models_dir (run scripts/make_models.sh first)" >&2
    exit 2
  fi
fi

n=0
for model in "${models[@]}"; do
  n=$((n + 1))
  out=$(printf '%s/%02d.json' "$OUT" "$n")
  echo "engine_bench.sh: [$n/${#models[@]}] $model (reps $REPS, idle ${IDLE}s before each run)" >&2
  # shellcheck disable=SC2086  # ARGS is a list of options
  "$ENGINE_BENCH" -m "$model" -t "$THREADS" --reps "$REPS" --idle "$IDLE" --json $ARGS >"$out"
done
echo "engine_bench.sh: raw JSON in $OUT" >&2

python3 - "$OUT"/*.json <<'EOF'
import json, os, sys

runs = [json.load(open(p)) for p in sys.argv[1:]]
for j in runs:
    print("%s: %s, %d threads, n_ctx %d, step_tokens %d, max_running %d, KV pool %.0f MB, %d runs after %d s idle each\n"
          % (os.path.basename(j["file"]), j["type"], j["threads"], j["n_ctx"], j["step_tokens"], j["max_running"],
             j["kv_cache_bytes"] / 1e6, j["reps"], j["idle_s"]))


def mm(s, fmt="%.1f"):
    return (fmt + " (" + fmt + "–" + fmt + ")") % (s["median"], s["min"], s["max"])


def name(j):
    stem = os.path.basename(j["file"])
    return stem[:-5] if stem.endswith(".gguf") else stem


print("CPU share: CPU time of the process ÷ (wall time × threads) during a run; about 0.5 with 2 threads means the "
      "machine gave them one core between them.\n")
streams = [p["streams"] for p in runs[0]["concurrency"] or []]
if streams:
    print("Aggregate generation tokens/s (greedy, distinct prompts, %d tokens each; wall time from the first "
          "submit to the last completion; median (min–max) of %d runs):\n" % (runs[0]["tokens"], runs[0]["reps"]))
    print("| model | threads | " + " | ".join("%d stream%s" % (s, "" if s == 1 else "s") for s in streams) +
          " | %d÷1 | steady decode tok/s at %d | CPU share 1 / %d | stopped early |" % (streams[-1], streams[-1], streams[-1]))
    print("|---|---:|" + "---:|" * len(streams) + "---:|---:|---:|---:|")
    for j in runs:
        c = j["concurrency"]
        early = sum(p["stopped_early"] for p in c)
        total = sum(p["requests"] for p in c)
        print("| %s | %d | %s | %.2f× | %s | %.2f / %.2f | %d of %d |" % (
            name(j), j["threads"], " | ".join(mm(p["tokens_per_s"]) for p in c), c[-1]["speedup"],
            mm(c[-1]["decode_tokens_per_s"]), c[0]["cpu_share"]["median"], c[-1]["cpu_share"]["median"], early, total))

if runs[0]["priority"]:
    print("\nHigh-priority time to first token while low-priority requests flood the queue (ms; p99 = max of "
          "the high requests submitted while lows were pending):\n")
    print("| model | unloaded p50 | loaded p50 | loaded p99 | p99÷unloaded | lows completed | low completion p50 s | "
          "low completion max s | CPU share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for j in runs:
        p = j["priority"]
        sec = lambda s: {k: s[k] / 1e3 for k in ("median", "min", "max")}
        print("| %s | %s | %s | %s | %s | %d of %d | %s | %s | %.2f |" % (
            name(j), mm(p["unloaded_ttft_ms_p50"], "%.0f"), mm(p["loaded_ttft_ms_p50"], "%.0f"),
            mm(p["loaded_ttft_ms_p99"], "%.0f"), mm(p["p99_over_unloaded"], "%.2f"), p["lows_completed"], p["lows"],
            mm(sec(p["low_total_ms_p50"])), mm(sec(p["low_total_ms_max"])), p["cpu_share"]["median"]))

if runs[0]["prefix"]:
    print("\nPrefix cache: the same system prompt twice, another question each time (TTFT ms):\n")
    print("| model | prompt tokens | cached in 2nd | 1st TTFT | 2nd TTFT | 2nd÷1st |")
    print("|---|---:|---:|---:|---:|---:|")
    for j in runs:
        p = j["prefix"]
        s = p["second_over_first"]
        print("| %s | %d | %d | %s | %s | %.1f%% (%.1f–%.1f%%) |" % (
            name(j), p["prompt_tokens"], p["cached_prompt_tokens"], mm(p["first_ttft_ms"], "%.0f"),
            mm(p["second_ttft_ms"], "%.0f"), 100 * s["median"], 100 * s["min"], 100 * s["max"]))
EOF
