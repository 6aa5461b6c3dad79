#!/usr/bin/env python3
"""End-to-end checks of `lightboat bench` (../shared/DESIGN.md, issue 4): the JSON fields and
their sanity on tiny fixture models, bytes per token against an independent reading of the GGUF
tensor directory, and one-line errors with the documented exit codes for bad input.

Usage: bench_test.py LIGHTBOAT_BINARY SHARED_DIR [SANITIZED]
SANITIZED (ON/OFF, CMake's LIGHTBOAT_SANITIZE): under AddressSanitizer the long prompt test is
skipped (a Debug + ASan forward pass is ~50x slower) and peak RSS, inflated by ASan's shadow
memory and quarantine, is not compared with the bandwidth buffer.
Timing figures are only checked for sanity (positive, ordered): the suite runs beside other
tests, so speed and the degraded flag are not asserted.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

BIN, SHARED = sys.argv[1], sys.argv[2]
SANITIZED = len(sys.argv) > 3 and sys.argv[3].upper() in ("ON", "1", "TRUE", "YES")
FIX = os.path.join(SHARED, "fixtures")
STORIES = os.path.join(FIX, "stories260K", "stories260K-Q8_0.gguf")
failures = []

# ggml type id -> (elements per block, bytes per block), for the types the fixtures hold.
BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
          12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_tensors(path):
    """The tensor directory of a GGUF v2/v3 file: [(name, ne, type, n_bytes)]."""
    with open(path, "rb") as f:
        data = f.read(1 << 22)  # the directory of the fixtures fits in 4 MiB
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    def skip_value(t):
        nonlocal pos
        if t == 8:
            string()
        elif t == 9:
            et, count = take("I"), take("Q")
            if et in SCALAR_SIZES:
                pos += SCALAR_SIZES[et] * count
            else:
                for _ in range(count):
                    skip_value(et)
        else:
            pos += SCALAR_SIZES[t]

    assert data[:4] == b"GGUF", path
    pos = 4
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    for _ in range(n_kv):
        string()
        skip_value(take("I"))
    out = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("Q") for _ in range(take("I"))]
        ttype = take("I")
        take("Q")  # offset
        n = 1
        for d in ne:
            n *= d
        be, bb = BLOCKS[ttype]
        out.append((name, ne, ttype, n // be * bb, n))
    return out


def expected_bytes_per_token(path):
    tensors = gguf_tensors(path)
    tied = not any(t[0] == "output.weight" for t in tensors)
    total = 0
    for name, ne, _t, n_bytes, _n in tensors:
        if name == "token_embd.weight" and not tied:
            total += n_bytes // ne[1]
        else:
            total += n_bytes
    return total, tied


def run(args, timeout=300, env=None):
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, cond, detail=""):
    if not cond:
        failures.append("%s %s" % (name, detail))


def expect_error(name, args, code, needle, env=None):
    rc, _out, err = run(args, env=env)
    lines = [l for l in err.splitlines() if l.strip()]
    if rc != code or len(lines) != 1 or needle not in err:
        failures.append("%s: rc=%d (want %d), stderr=%r (want one line containing %r)" % (name, rc, code, err, needle))


def bench_json(name, args):
    rc, out, err = run(["bench"] + args + ["--json"])
    if rc != 0:
        failures.append("%s: rc=%d stderr=%r" % (name, rc, err))
        return None
    try:
        return json.loads(out)
    except ValueError as e:
        failures.append("%s: stdout is not one JSON object (%s): %r" % (name, e, out[:300]))
        return None


def check_report(name, j, path, tests, threads=None):
    want_bpt, tied = expected_bytes_per_token(path)
    tensors = gguf_tensors(path)
    check(name + " model", j["model"] == path, j["model"])
    check(name + " file_bytes", j["file_bytes"] == os.path.getsize(path), j["file_bytes"])
    check(name + " params", j["params"] == sum(t[4] for t in tensors), j["params"])
    check(name + " bytes per token", j["weight_bytes_per_token"] == want_bpt,
          "%d != %d (tied=%s)" % (j["weight_bytes_per_token"], want_bpt, tied))
    check(name + " bandwidth", j["bandwidth_gbps"] > 0 and j["bandwidth_gbps"] >= j["bandwidth_median_gbps"] > 0,
          (j["bandwidth_gbps"], j["bandwidth_median_gbps"]))
    check(name + " bandwidth after the tests", j["bandwidth_after_gbps"] > 0, j["bandwidth_after_gbps"])
    # the best read is the faster of the two patterns' best reads
    check(name + " bandwidth patterns",
          j["bandwidth_linear_gbps"] > 0 and j["bandwidth_runs_gbps"] > 0
          and j["bandwidth_gbps"] == max(j["bandwidth_linear_gbps"], j["bandwidth_runs_gbps"]),
          (j["bandwidth_gbps"], j["bandwidth_linear_gbps"], j["bandwidth_runs_gbps"]))
    check(name + " threads", j["threads"] >= 1 and (threads is None or j["threads"] == threads), j["threads"])
    check(name + " load", j["load_ms"] > 0, j["load_ms"])
    check(name + " rss", j["peak_rss_bytes"] > 0, j["peak_rss_bytes"])
    if j.get("peak_rss_reset") and not SANITIZED:
        # The bandwidth buffer was freed and the peak mark reset: a tiny model stays far below it.
        check(name + " rss excludes the bandwidth buffer", j["peak_rss_bytes"] < j["bandwidth_buffer_bytes"],
              (j["peak_rss_bytes"], j["bandwidth_buffer_bytes"]))
    check(name + " test names", [t["name"] for t in j["tests"]] == [n for n, _r in tests],
          [t["name"] for t in j["tests"]])
    for t, (tname, reps) in zip(j["tests"], tests):
        check(name + " " + tname + " reps", t["reps"] == reps and len(t["samples_tps"]) == reps, t)
        check(name + " " + tname + " n_tokens", t["n_tokens"] == int(tname[2:]), t)
        check(name + " " + tname + " rates", 0 < t["min_tps"] <= t["median_tps"] <= t["max_tps"], t)
    tg = [t for t in j["tests"] if t["kind"] == "tg"]
    roofline = j["bandwidth_gbps"] * 1e9 / want_bpt
    check(name + " roofline", abs(j["roofline_tps"] - roofline) <= 1e-6 * roofline, (j["roofline_tps"], roofline))
    if tg:
        frac = tg[0]["median_tps"] / roofline
        check(name + " roofline fraction", abs(j["roofline_fraction"] - frac) <= 1e-6 * frac, (j["roofline_fraction"], frac))
    else:
        check(name + " no roofline fraction", j["roofline_fraction"] is None, j["roofline_fraction"])
    check(name + " degraded flag", isinstance(j["degraded"], bool), j["degraded"])
    spin = j["spin"]
    check(name + " spin checks", [c["at"] for c in spin["checks"]] == ["before"] + ["after " + n for n, _r in tests],
          spin["checks"])
    for c in spin["checks"]:
        check(name + " spin per thread", len(c["ms"]) == len(c["cpu_ms"]) == len(c["cpu"]) == j["threads"] and
              all(m > 0 for m in c["ms"]), c)
    check(name + " spin ratios", spin["max_spread"] >= 1 and spin["worst_vs_best"] >= 1 and spin["after_before_ratio"] > 0
          and spin["vs_solo"] > 0,
          spin)
    before, after = j["bandwidth_gbps"], j["bandwidth_after_gbps"]
    bw_apart = max(before, after) / min(before, after) > spin["threshold"]  # the two bandwidth readings
    over = (max(spin["max_spread"], spin["worst_vs_best"], spin["after_before_ratio"]) > spin["threshold"] or
            spin["vs_solo"] > spin["solo_threshold"] or bw_apart)
    check(name + " degraded reason names the bandwidth", bw_apart == ("read bandwidth" in j["degraded_reason"]),
          (j["degraded_reason"], before, after))
    check(name + " degraded agrees with the ratios", j["degraded"] == over and (j["degraded_reason"] != "") == over,
          (j["degraded"], j["degraded_reason"], spin))
    return tied


with tempfile.TemporaryDirectory() as tmp:
    missing = os.path.join(tmp, "none.gguf")
    expect_error("missing model", ["bench", "-m", missing, "--bw-mib", "8"], 3, "none.gguf")
    if not os.path.isfile(STORIES):
        print("*** SKIPPED bench model checks: %s absent ***" % STORIES)
    else:
        small = ["--bw-mib", "64", "--bw-passes", "2"]
        j = bench_json("stories", ["-m", STORIES, "-p", "16", "-n", "8", "-r", "1"] + small)
        if j:
            check_report("stories", j, STORIES, [("pp16", 1), ("tg8", 1)])
            check("stories type", j["type"] == "Q8_0", j["type"])
            check("stories auto context", j["n_ctx"] == 256, j["n_ctx"])
        # --profile: per matmul shape, calls and bytes that add up to the forward passes timed.
        j = bench_json("stories --profile", ["-m", STORIES, "-p", "16", "-n", "8", "-r", "2", "--profile"] + small)
        if j:
            for t in j["tests"]:
                lines = t.get("matmul_profile", [])
                check("profile %s has lines" % t["name"], len(lines) > 0, t)
                check("profile %s shares" % t["name"],
                      all(l["share"] > 0 and l["seconds"] > 0 and l["weight_gbps"] > 0 for l in lines) and
                      sum(l["share"] for l in lines) <= 1.0 + 1e-9, lines)
                want_tokens = 1 if t["kind"] == "tg" else t["n_tokens"]
                # Every matrix but the output runs on all tokens; the output on the last one (pp).
                check("profile %s tokens" % t["name"],
                      all(l["tokens"] in (want_tokens, 1) for l in lines), lines)
            tg = [t for t in j["tests"] if t["kind"] == "tg"][0]
            per_token = sum(l["weight_bytes"] * l["calls"] for l in tg["matmul_profile"]) / (tg["reps"] * tg["n_tokens"])
            check("profile tg bytes per token", 0.9 * j["weight_bytes_per_token"] <= per_token <= j["weight_bytes_per_token"],
                  (per_token, j["weight_bytes_per_token"]))
        # With -d the untimed prefill before each tg run is left out: only one-token calls.
        j = bench_json("stories --profile -d", ["-m", STORIES, "-p", "none", "-n", "4", "-d", "20", "-r", "2",
                                                "--profile"] + small)
        if j:
            lines = j["tests"][0].get("matmul_profile", [])
            check("profile -d lines", len(lines) > 0 and all(l["tokens"] == 1 for l in lines), lines)
            check("profile -d shares", sum(l["share"] for l in lines) <= 1.0 + 1e-9, lines)
        rc, out, err = run(["bench", "-m", STORIES, "-p", "none", "-n", "4", "-r", "1", "--profile"] + small)
        check("profile text", rc == 0 and "matmuls of tg4" in out and "| types | rows x cols |" in out, (rc, out, err))
        j = bench_json("stories -t 1 -r 3", ["-m", STORIES, "-p", "4,12", "-n", "2,5", "-r", "3", "-t", "1"] + small)
        if j:
            check_report("stories -t 1", j, STORIES, [("pp4", 3), ("pp12", 3), ("tg2", 3), ("tg5", 3)], threads=1)
        if not SANITIZED:
            # A prompt longer than the model's training context (512): the context is sized to fit.
            j = bench_json("stories pp600", ["-m", STORIES, "-p", "600", "-n", "none", "-r", "1"] + small)
            if j:
                check_report("stories pp600", j, STORIES, [("pp600", 1)])
                check("stories pp600 context", j["n_ctx"] == 768, j["n_ctx"])
        for fname, want_tied in [("tiny-llama3-Q8_0.gguf", True), ("tiny-llama-Q4_K_M.gguf", False)]:
            path = os.path.join(FIX, "arch", fname)
            if not os.path.isfile(path):
                failures.append("fixture missing: " + path)
                continue
            j = bench_json(fname, ["-m", path, "-p", "8", "-n", "4", "-r", "1"] + small)
            if j:
                tied = check_report(fname, j, path, [("pp8", 1), ("tg4", 1)])
                check(fname + " tied", tied == want_tied, tied)
        check("Q4_K_M type", j is not None and j["type"] == "Q4_K_M", j and j["type"])

        rc, out, err = run(["bench", "-m", STORIES, "-p", "8", "-n", "4", "-r", "1"] + small)
        check("text mode rc", rc == 0, (rc, err))
        for needle in ["| model |", "| pp8 |", "| tg4 |", "read bandwidth:", "of the roofline", "peak RSS", "CPU probe"]:
            check("text mode has " + needle, needle in out, out)

        if not SANITIZED:
            # scripts/perf_table.sh end to end, without the idle pauses and on tiny sizes.
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "perf_table.sh")
            env = dict(os.environ, LIGHTBOAT=BIN, IDLE="0", THREADS="1 2", PP="8", TG="4", REPS="1", CTX="256",
                       BW_MIB="16", OUT=os.path.join(tmp, "perf"))
            p = subprocess.run(["bash", script, STORIES], capture_output=True, timeout=300, env=env)
            table = p.stdout.decode("utf-8", "replace")
            rows = [l for l in table.splitlines() if l.startswith("| stories260K | Q8_0 |")]
            check("perf_table rc", p.returncode == 0, p.stderr.decode("utf-8", "replace")[-2000:])
            check("perf_table header", "| pp8 tok/s | tg4 tok/s | tg % of roofline |" in table, table)
            check("perf_table rows", len(rows) == 2 and "| 1 |" in rows[0] and "| 2 |" in rows[1], table)

            # A run the bench flags degraded is measured again (RETRIES times at most): a stand-in
            # for lightboat whose odd-numbered runs say degraded, then one whose runs all do.
            fake = os.path.join(tmp, "fake_lightboat")
            with open(fake, "w") as f:
                f.write("""#!/usr/bin/env python3
import json, os, sys
counter = os.environ["FAKE_COUNTER"]
n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(n))
degraded = os.environ["FAKE_MODE"] == "always" or (os.environ["FAKE_MODE"] == "odd" and n % 2 == 1)
print(json.dumps({"tests": [{"median_tps": 100.0 + n, "min_tps": 99.0, "max_tps": 200.0}], "degraded": degraded,
                  "degraded_reason": "probe %d slow" % n if degraded else "", "file_bytes": 5e6, "type": "Q8_0",
                  "roofline_fraction": 0.5, "roofline_tps": 204.0, "bandwidth_gbps": 10.0, "peak_rss_bytes": 1e8,
                  "load_ms": 10.0}))
""")
            os.chmod(fake, 0o755)
            for mode, retries, want_runs, want_notes in [
                ("odd", "2", 4, ["pp measured again after 1 degraded run", "tg measured again after 1 degraded run"]),
                ("always", "1", 4, ["pp measured again after 1 degraded run", "pp degraded: probe 2 slow",
                                    "tg measured again after 1 degraded run", "tg degraded: probe 4 slow"]),
            ]:
                counter = os.path.join(tmp, "counter-" + mode)
                env = dict(os.environ, LIGHTBOAT=fake, IDLE="0", THREADS="1", RETRIES=retries, OUT=os.path.join(tmp, "p-" + mode),
                           FAKE_COUNTER=counter, FAKE_MODE=mode)
                p = subprocess.run(["bash", script, STORIES], capture_output=True, timeout=60, env=env)
                table = p.stdout.decode("utf-8", "replace")
                rows = [l for l in table.splitlines() if l.startswith("| stories260K | Q8_0 |")]
                check("perf_table retries rc " + mode, p.returncode == 0, p.stderr.decode("utf-8", "replace")[-2000:])
                check("perf_table retries runs " + mode, open(counter).read() == str(want_runs), open(counter).read())
                check("perf_table retries row " + mode, len(rows) == 1, table)
                for needle in want_notes:
                    check("perf_table retries note " + mode + ": " + needle, rows and needle in rows[0], table)
                # the table keeps the last run of each cell: pp is run 2, tg run 4
                check("perf_table retries keeps the last " + mode, rows and "| 102.0 (99.0–200.0) | 104.0 (99.0–200.0) |" in rows[0],
                      table)

            # LLAMA_BENCH: a stand-in for llama-bench beside each run (pp samples 50, 51, 60; tg 20,
            # 25, 30), or one that fails. The ratios: pp 101 / 51; tg 25 / lightboat's roofline 204.
            fake_llama = os.path.join(tmp, "fake_llama_bench")
            with open(fake_llama, "w") as f:
                f.write("""#!/usr/bin/env python3
import json, os, sys
a = sys.argv
if os.environ.get("FAKE_LLAMA_FAIL"):
    sys.exit(3)
want = ["-m", "-t", "-r", "-p", "-n", "-o"]
assert all(w in a for w in want) and a[a.index("-o") + 1] == "json", a
pp = a[a.index("-n") + 1] == "0"
print(json.dumps([{"n_prompt": int(a[a.index("-p") + 1]), "n_gen": int(a[a.index("-n") + 1]),
                   "samples_ts": [50.0, 60.0, 51.0] if pp else [30.0, 20.0, 25.0]}]))
""")
            os.chmod(fake_llama, 0o755)
            for fail, threads, want_cells in [
                ("", "1 2", ["| 51.0 (50.0–60.0) | 1.98× | 25.0 (20.0–30.0) | 12% |"]),
                ("1", "1", ["|  |  |  |  |", "llama.cpp pp: exit status 3", "llama.cpp tg: exit status 3"]),
            ]:
                counter = os.path.join(tmp, "counter-llama" + fail)
                env = dict(os.environ, LIGHTBOAT=fake, LLAMA_BENCH=fake_llama, IDLE="0", THREADS=threads,
                           OUT=os.path.join(tmp, "p-llama" + fail), FAKE_COUNTER=counter, FAKE_MODE="never",
                           FAKE_LLAMA_FAIL=fail)
                p = subprocess.run(["bash", script, STORIES], capture_output=True, timeout=60, env=env)
                table, log = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
                rows = [l for l in table.splitlines() if l.startswith("| stories260K | Q8_0 |")]
                check("perf_table llama rc " + fail, p.returncode == 0, log[-2000:])
                check("perf_table llama header " + fail, "| load s | llama.cpp pp512 tok/s | pp ÷ llama.cpp | "
                      "llama.cpp tg64 tok/s | llama.cpp tg % of roofline | notes |" in table, table)
                for needle in want_cells:
                    check("perf_table llama row " + fail + ": " + needle, rows and needle in rows[0], table)
                if not fail:
                    # row 0: lightboat first; row 1 (2 threads): llama.cpp first
                    order = [l.split("then ")[1].split(" with")[0] + " t" + l.split(" with ")[1][0]
                             for l in log.splitlines() if l.startswith("perf_table: [")]
                    check("perf_table llama order", order == ["pp t1", "llama.cpp's pp t1", "tg t1", "llama.cpp's tg t1",
                                                              "llama.cpp's pp t2", "pp t2", "llama.cpp's tg t2", "tg t2"],
                          order)
            env = dict(os.environ, LIGHTBOAT=fake, LLAMA_BENCH=os.path.join(tmp, "no-such-llama-bench"), IDLE="0")
            p = subprocess.run(["bash", script, STORIES], capture_output=True, timeout=60, env=env)
            check("perf_table llama missing", p.returncode == 2 and b"LLAMA_BENCH" in p.stderr, (p.returncode, p.stderr))

        for name, extra, code, needle in [
            ("-p word", ["-p", "abc"], 2, "-p"),
            ("-p zero", ["-p", "0"], 2, "-p"),
            ("-p negative", ["-p", "-5"], 2, "-p"),
            ("-p empty item", ["-p", "16,,32"], 2, "-p"),
            ("-p huge", ["-p", "99999999999"], 2, "-p"),
            ("-n zero", ["-n", "0"], 2, "-n"),
            ("-n word", ["-n", "x8"], 2, "-n"),
            ("nothing to measure", ["-p", "none", "-n", "none"], 2, "nothing"),
            ("context too small", ["-p", "64", "-c", "32"], 2, "-c 32"),
            ("zero repetitions", ["-r", "0"], 2, "-r"),
            ("zero bandwidth buffer", ["--bw-mib", "0"], 2, "--bw-mib"),
            ("bad threads", ["-t", "-2"], 2, "-t"),
        ]:
            bw = [] if "--bw-mib" in extra else ["--bw-mib", "8"]
            expect_error(name, ["bench", "-m", STORIES] + bw + extra, code, needle)
        no_default = dict(os.environ, LIGHTBOAT_DEFAULT_MODEL=os.path.join(STORIES, "absent.gguf"))
        expect_error("no model flag, no built-in model", ["bench", "-p", "8", "--bw-mib", "8"], 3, "-m",
                     env=no_default)

for f in failures:
    print("FAIL:", f)
print("bench_cli: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
