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
#   LLAMA_BENCH llama.cpp's llama-bench: when set, every lightboat run has a llama-bench run of the
#              same test on the same file and thread count beside it, after the same idle pause,
#              the two engines' order alternating from row to row, and the table gains llama.cpp's
#              figures and the ratios of the issue (pp ÷ llama.cpp; llama.cpp's tg as % of the
#              roofline that lightboat's run measured) (default: none)
#   LLAMA_ARGS more llama-bench options for every run (default: none)
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
LLAMA_BENCH=${LLAMA_BENCH:-}
read -r -a llama_args <<<"${LLAMA_ARGS:-}"
OUT=${OUT:-$(mktemp -d /tmp/lightboat-perf.XXXXXX)}
mkdir -p "$OUT"

if [[ ! -x "$LIGHTBOAT" ]]; then
  echo "perf_table: $LIGHTBOAT is not built (run scripts/build.sh or set LIGHTBOAT)" >&2
  exit 2
fi
if [[ -n "$LLAMA_BENCH" && ! -x "$LLAMA_BENCH" ]]; then
  echo "perf_table: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2
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

# One llama-bench run of the same test after the same idle pause: its JSON (or, when it fails,
# its exit status and stderr) goes to $OUT/<n>-llama-<kind>-t<threads>.json, indexed in llama.tsv.
llama() {  # llama MODEL THREADS KIND
  local model=$1 threads=$2 kind=$3 out rc=0
  run=$((run + 1))
  out=$(printf '%s/%03d-llama-%s-t%s.json' "$OUT" "$run" "$kind" "$threads")
  echo "perf_table: [$run] idle ${IDLE}s, then llama.cpp's $kind with $threads thread(s): $model" >&2
  sleep "$IDLE"
  local sizes=(-p "$PP" -n 0)
  [[ $kind == tg ]] && sizes=(-p 0 -n "$TG")
  "$LLAMA_BENCH" -m "$model" -t "$threads" -r "$REPS" "${sizes[@]}" -o json "${llama_args[@]}" >"$out" 2>"$out.err" ||
    rc=$?
  [[ $rc -ne 0 ]] && echo "perf_table: [$run] llama-bench failed (exit status $rc): $(tail -c 300 "$out.err")" >&2
  printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$threads" "$kind" "$out" "$rc" >>"$OUT/llama.tsv"
}

# Lightboat's run and, with LLAMA_BENCH, llama.cpp's: lightboat first on even rows, second on odd
# ones, so neither engine always takes the first burst after the pause.
both() {  # both ROW MODEL THREADS KIND ARGS...
  local row=$1 model=$2 threads=$3 kind=$4
  shift 4
  if [[ -n "$LLAMA_BENCH" && $((row % 2)) -eq 1 ]]; then llama "$model" "$threads" "$kind"; fi
  bench "$model" "$threads" "$kind" "$@"
  if [[ -n "$LLAMA_BENCH" && $((row % 2)) -eq 0 ]]; then llama "$model" "$threads" "$kind"; fi
}

: >"$OUT/index.tsv"
: >"$OUT/llama.tsv"
row=0
for model in "${models[@]}"; do
  for t in $THREADS; do
    both "$row" "$model" "$t" pp -p "$PP" -n none
    both "$row" "$model" "$t" tg -p none -n "$TG"
    row=$((row + 1))
  done
done
echo "perf_table: raw JSON in $OUT" >&2

python3 - "$OUT/index.tsv" "$PP" "$TG" "$OUT/llama.tsv" <<'EOF'
import json, os, statistics, sys

index, pp, tg, llama_index = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
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

# llama-bench's runs: (model, threads, kind) -> its JSON object, or the exit status when it failed
llama = {}
for line in open(llama_index):
    model, threads, kind, path, rc = line.rstrip("\n").split("\t")
    result = int(rc)
    if result == 0:
        try:
            result = json.load(open(path))[0]
        except (ValueError, IndexError, KeyError):
            result = "unreadable output"
    llama[(model, int(threads), kind)] = result


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


def llama_cells(key, g, notes):
    """llama.cpp's pp and tg (median, min–max), pp ÷ llama.cpp's, llama.cpp's tg % of the roofline."""
    cells = {}
    for kind in ("pp", "tg"):
        j = llama.get(key + (kind,))
        if isinstance(j, dict) and j.get("samples_ts"):
            s = j["samples_ts"]
            cells[kind] = statistics.median(s)
            cells[kind + "_text"] = "%.1f (%.1f–%.1f)" % (statistics.median(s), min(s), max(s))
        else:
            cells[kind + "_text"] = ""
            notes.append("llama.cpp %s: %s" % (kind, "exit status %d" % j if isinstance(j, int) else j or "no run"))
    ratio = "%.2f×" % (rows[key]["pp"]["tests"][0]["median_tps"] / cells["pp"]) if "pp" in cells else ""
    roof = "%.0f%%" % (100 * cells["tg"] / g["roofline_tps"]) if "tg" in cells and g.get("roofline_tps") else ""
    return [cells["pp_text"], ratio, cells["tg_text"], roof]


with_llama = bool(llama)
header = ("| model shape | type | file MB | threads | pp%s tok/s | tg%s tok/s | tg %% of roofline | read GB/s | "
          "peak RSS MB | load s |" % (pp, tg))
rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
if with_llama:
    header += " llama.cpp pp%s tok/s | pp ÷ llama.cpp | llama.cpp tg%s tok/s | llama.cpp tg %% of roofline |" % (pp, tg)
    rule += "---:|---:|---:|---:|"
print(header + " notes |")
print(rule + "---|")
for key in order:
    r = rows[key]
    p, g = r["pp"], r["tg"]
    notes = []
    extra = llama_cells(key, g, notes) if with_llama else []
    for kind, j in (("pp", p), ("tg", g)):
        n = r[kind + "_set_aside"]
        if n:
            notes.append("%s measured again after %d degraded run%s" % (kind, n, "" if n == 1 else "s"))
        if j["degraded"]:
            notes.append("%s degraded: %s" % (kind, j["degraded_reason"]))
    mb = g["file_bytes"] / 1e6
    print("| %s | %s | %s | %d | %s | %s | %.0f%% | %.1f | %.0f | %.2f |%s %s |" % (
        shape(key[0], g["type"]), g["type"], ("%.0f" if mb >= 10 else "%.2f") % mb, key[1], rate(p), rate(g),
        100 * g["roofline_fraction"], g["bandwidth_gbps"], g["peak_rss_bytes"] / 1e6, g["load_ms"] / 1e3,
        "".join(" %s |" % c for c in extra), "; ".join(notes)))
EOF
