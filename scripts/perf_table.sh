#!/usr/bin/env bash
# The performance table of docs/performance.md, measured by `lightboat bench` on this machine.
#
#   scripts/perf_table.sh [MODEL.gguf ...]
#
# Without arguments it measures every build/models/*.gguf (scripts/make_models.sh writes there
# random-weight files with the exact shapes of SmolLM2-135M and Llama-3.2-1B in Q4_0, Q8_0,
# Q4_K_M and F16); MODELS_DIR names another folder.
# For each model and each thread count it runs pp and tg as SEPARATE bench invocations, each after
# the machine idled (shared vCPUs run at full speed only in bursts after idling), and prints one
# markdown table on stdout; progress goes to stderr and the raw JSON of every run is kept.
#
# Settings (environment):
#   LIGHTBOAT  the binary                 (default: build/lightboat of this checkout)
#   IDLE       seconds of idle before each run (default: 20)
#   THREADS    thread counts to measure   (default: "1 2")
#   PP / TG    prompt and generation sizes (default: 512 / 64)
#   REPS       timed repetitions per test (default: 3; one warm-up precedes them)
#   CTX        context allocated, as in the issue's RSS target (default: 4096)
#   BW_MIB     MiB read by the bandwidth measurement (default: 1024)
#   ARGS       more `lightboat bench` options for every run, e.g. ARGS=--no-mmap (default: none)
#   RETRIES    times a run the bench flags degraded is measured again, after the idle pause; the
#              table keeps the last run and its notes count the ones set aside (default: 2)
#   OUT        folder for the raw JSON    (default: a new folder under /tmp)
#   MODELS_DIR where to look without arguments (default: build/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

LIGHTBOAT=${LIGHTBOAT:-$root/build/lightboat}
IDLE=${IDLE:-20}
THREADS=${THREADS:-"1 2"}
PP=${PP:-512}
TG=${TG:-64}
REPS=${REPS:-3}
CTX=${CTX:-4096}
BW_MIB=${BW_MIB:-1024}
RETRIES=${RETRIES:-2}
read -r -a extra_args <<<"${ARGS:-}"
OUT=${OUT:-$(mktemp -d /tmp/lightboat-perf.XXXXXX)}
mkdir -p "$OUT"

if [[ ! -x "$LIGHTBOAT" ]]; then
  echo "perf_table: $LIGHTBOAT is not built (run scripts/build.sh or set LIGHTBOAT)" >&2
  exit 2
fi
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  shopt -s nullglob
  models_dir=${MODELS_DIR:-$root/build/models}
  models=("$models_dir"/*.gguf)
  shopt -u nullglob
  if [[ ${#models[@]} -eq 0 ]]; then
    echo "perf_table: no models given and none in $models_dir (run scripts/make_models.sh first)" >&2
    exit 2
  fi
fi

# One bench invocation after the idle pause; its JSON goes to $OUT/<n>-<kind>-t<threads>.json.
# A run flagged degraded is run again (RETRIES times at most); every JSON is kept, the index names
# the last and the number of degraded runs set aside before it.
run=0
bench() {  # bench MODEL THREADS KIND ARGS...
  local model=$1 threads=$2 kind=$3
  shift 3
  local out set_aside=0
  while true; do
    run=$((run + 1))
    out=$(printf '%s/%03d-%s-t%s.json' "$OUT" "$run" "$kind" "$threads")
    echo "perf_table: [$run] idle ${IDLE}s, then $kind with $threads thread(s): $model" >&2
    sleep "$IDLE"
    "$LIGHTBOAT" bench -m "$model" -t "$threads" -c "$CTX" -r "$REPS" --bw-mib "$BW_MIB" --json "${extra_args[@]}" "$@" >"$out"
    if [[ $set_aside -ge $RETRIES ]] ||
      ! python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["degraded"] else 1)' "$out"; then
      break
    fi
    set_aside=$((set_aside + 1))
    echo "perf_table: [$run] was degraded: measured again" >&2
  done
  printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$threads" "$kind" "$out" "$set_aside" >>"$OUT/index.tsv"
}

: >"$OUT/index.tsv"
for model in "${models[@]}"; do
  for t in $THREADS; do
    bench "$model" "$t" pp -p "$PP" -n none
    bench "$model" "$t" tg -p none -n "$TG"
  done
done
echo "perf_table: raw JSON in $OUT" >&2

python3 - "$OUT/index.tsv" "$PP" "$TG" <<'EOF'
import json, os, sys

index, pp, tg = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}  # (model, threads) -> {"pp": json, "tg": json, "pp_set_aside": n, "tg_set_aside": n}
order = []
for line in open(index):
    model, threads, kind, path, set_aside = line.rstrip("\n").split("\t")
    key = (model, int(threads))
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][kind] = json.load(open(path))
    rows[key][kind + "_set_aside"] = int(set_aside)


def rate(j):
    t = j["tests"][0]
    return "%.1f (%.1f–%.1f)" % (t["median_tps"], t["min_tps"], t["max_tps"])


def shape(model, type_name):
    stem = os.path.basename(model)
    stem = stem[:-5] if stem.endswith(".gguf") else stem
    for sep in ("-", ".", "_"):
        if stem.endswith(sep + type_name):
            return stem[: -len(type_name) - 1]
    return stem


print("| model shape | type | file MB | threads | pp%s tok/s | tg%s tok/s | tg %% of roofline | read GB/s | "
      "peak RSS MB | load s | notes |" % (pp, tg))
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for key in order:
    r = rows[key]
    p, g = r["pp"], r["tg"]
    notes = []
    for kind, j in (("pp", p), ("tg", g)):
        n = r[kind + "_set_aside"]
        if n:
            notes.append("%s measured again after %d degraded run%s" % (kind, n, "" if n == 1 else "s"))
        if j["degraded"]:
            notes.append("%s degraded: %s" % (kind, j["degraded_reason"]))
    mb = g["file_bytes"] / 1e6
    print("| %s | %s | %s | %d | %s | %s | %.0f%% | %.1f | %.0f | %.2f | %s |" % (
        shape(key[0], g["type"]), g["type"], ("%.0f" if mb >= 10 else "%.2f") % mb, key[1], rate(p), rate(g),
        100 * g["roofline_fraction"], g["bandwidth_gbps"], g["peak_rss_bytes"] / 1e6, g["load_ms"] / 1e3,
        "; ".join(notes)))
EOF
