#!/usr/bin/env python3
"""End-to-end checks of the lightboat CLI contract (../shared/DESIGN.md) and its error handling.

Usage: cli_test.py LIGHTBOAT_BINARY SHARED_DIR
Each bad input must give exactly one line on stderr and the documented non-zero exit code,
never a crash (a negative return code) or a hang.
"""
import json
import os
import subprocess
import sys
import tempfile

BIN, SHARED = sys.argv[1], sys.argv[2]
STORIES = os.path.join(SHARED, "fixtures", "stories260K")
failures = []


def run(args, timeout=60, env=None):
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def expect_error(name, args, code, needle, env=None):
    rc, _out, err = run(args, env=env)
    lines = [l for l in err.splitlines() if l.strip()]
    if rc != code or len(lines) != 1 or needle not in err:
        failures.append("%s: rc=%d (want %d), stderr=%r (want one line containing %r)" % (name, rc, code, err, needle))


def check(name, cond, detail=""):
    if not cond:
        failures.append("%s %s" % (name, detail))


with tempfile.TemporaryDirectory() as tmp:
    expect_error("unknown flag", ["run", "--bogus"], 2, "--bogus")
    expect_error("no sub-command", [], 2, "error")
    expect_error("missing model", ["run", "-m", os.path.join(tmp, "none.gguf"), "-p", "x"], 3, "none.gguf")
    garbage = os.path.join(tmp, "garbage.gguf")
    with open(garbage, "wb") as f:
        f.write(b"NOTAGGUF" + b"\0" * 100)
    expect_error("not a gguf", ["run", "-m", garbage, "-p", "x"], 4, "garbage.gguf")
    expect_error("directory as model", ["logits", "-m", tmp, "-p", "x"], 1, tmp)
    expect_error("bad thread count", ["run", "-m", garbage, "-p", "x", "-t", "-3"], 2, "-t")

    if not os.path.isdir(STORIES):
        print("*** SKIPPED model checks: %s absent ***" % STORIES)
    else:
        f32 = os.path.join(STORIES, "stories260K-F32.gguf")
        with open(f32, "rb") as f:
            head = f.read(200000)
        truncated = os.path.join(tmp, "truncated.gguf")
        with open(truncated, "wb") as f:
            f.write(head)
        expect_error("truncated gguf", ["run", "-m", truncated, "-p", "x"], 4, "truncated.gguf")
        # Without -m the built-in default model is used; when it is missing, the error says where
        # it looked and how to name a model instead.
        no_default = dict(os.environ, LIGHTBOAT_DEFAULT_MODEL=os.path.join(tmp, "absent.gguf"))
        expect_error("no model flag, no default model", ["run", "-p", "x"], 3, "absent.gguf", env=no_default)
        expect_error("no model flag message", ["run", "-p", "x"], 3, "-m FILE.gguf", env=no_default)
        expect_error("context too small", ["run", "-m", f32, "-p", "Once upon a time", "-c", "2"], 2, "context")
        expect_error("bad temperature", ["run", "-m", f32, "-p", "x", "--temp", "-1"], 2, "temperature")

        rc, out, _ = run(["tokenize", "-m", f32, "--json", "Once upon a time"])
        check("tokenize json", rc == 0 and json.loads(out)["tokens"] == [1, 403, 407, 261, 378], out)
        rc, out, _ = run(["tokenize", "-m", f32, "--no-bos", "--json", "Once upon a time"])
        check("tokenize --no-bos", rc == 0 and json.loads(out)["tokens"] == [403, 407, 261, 378], out)
        empty = os.path.join(tmp, "empty.txt")
        open(empty, "wb").close()
        rc, out, _ = run(["tokenize", "-m", f32, "--no-bos", "--json", "-f", empty])
        check("tokenize empty file", rc == 0 and json.loads(out)["tokens"] == [], out)

        rc, out, err = run(["run", "-m", f32, "-p", "Once upon a time", "-n", "16", "--temp", "0"])
        check("run streams text", rc == 0 and len(out.strip()) > 0 and "tok/s" in err, out + err)
        texts = []
        for seed in ("7", "7", "8"):
            rc, out, _ = run(["run", "-m", f32, "-p", "Once upon a time", "-n", "24", "--temp", "1.0",
                              "--seed", seed, "--json"])
            check("seeded run exit", rc == 0, out)
            texts.append(json.loads(out)["tokens"] if rc == 0 else None)
        check("same seed, same tokens", texts[0] == texts[1], str(texts))
        check("other seed, other tokens", texts[0] != texts[2], str(texts))
        rc, out, _ = run(["run", "-m", f32, "-p", "Once upon a time", "-n", "32", "--temp", "0", "--json",
                          "--stop", "Lily"])
        j = json.loads(out) if rc == 0 else {}
        check("stop string", rc == 0 and "Lily" not in j.get("text", "Lily") and j.get("finish_reason") == "stop", out)
        for mode in ([], ["--no-mmap"]):
            rc, out, _ = run(["logits", "-m", f32, "-p", "Once upon a time", "--top", "3", "--last", "2", "--json"] + mode)
            j = json.loads(out) if rc == 0 else {}
            check("logits json %s" % mode, rc == 0 and [p["pos"] for p in j["positions"]] == [3, 4]
                  and len(j["positions"][0]["top"]) == 3, out)

for f in failures:
    print("FAIL", f)
print("cli: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
