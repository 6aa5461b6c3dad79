#!/usr/bin/env python3
"""`lightboat quantize` and `make_model` through their command lines.

quantize: output equal to llama-quantize's file, exit codes, no partial or stray output on
failure. make_model: deterministic files that load and generate with `lightboat run`, also after
quantizing.

usage: tools_cli_test.py LIGHTBOAT MAKE_MODEL SHARED_DIR
"""
import filecmp
import json
import os
import subprocess
import sys
import tempfile

LIGHTBOAT, MAKE_MODEL, SHARED = sys.argv[1], sys.argv[2], sys.argv[3]
FIXTURES = os.path.join(SHARED, "fixtures")
failures = []


def run(*args):
    return subprocess.run(list(args), capture_output=True, timeout=300)


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def quantize_tests(tmp):
    if not os.path.isdir(FIXTURES):
        print("*** SKIPPED: fixtures not found at %s: llama-quantize comparisons did NOT run ***" % FIXTURES)
        return
    src = os.path.join(FIXTURES, "arch", "tiny-llama-F32.gguf")
    out = os.path.join(tmp, "q.gguf")
    r = run(LIGHTBOAT, "quantize", src, out, "q4_k_m", "-t", "2")
    expect(r.returncode == 0 and r.stdout == b"", "quantize Q4_K_M exits 0 with nothing on stdout")
    expect(filecmp.cmp(out, os.path.join(FIXTURES, "arch", "tiny-llama-Q4_K_M.gguf"), shallow=False),
           "quantize Q4_K_M equals llama-quantize's file byte for byte")
    stories = os.path.join(FIXTURES, "stories260K", "stories260K-F32.gguf")
    r = run(LIGHTBOAT, "quantize", stories, out, "Q8_0", "--tensor-type", "ffn_down=f16")
    expect(r.returncode == 0 and filecmp.cmp(out, os.path.join(FIXTURES, "stories260K", "stories260K-Q8_0.gguf"),
                                             shallow=False),
           "quantize --tensor-type ffn_down=f16 Q8_0 equals llama-quantize's stories260K-Q8_0")

    # Failures: the right exit code, a message, and OUT untouched (no partial file, no .tmp).
    with open(out, "wb") as f:
        f.write(b"old")
    cases = [
        ((src, out, "Q3_K"), 2, "unsupported type"),
        ((os.path.join(FIXTURES, "README.md"), out, "Q8_0"), 4, "input that is not GGUF"),
        ((os.path.join(tmp, "absent.gguf"), out, "Q8_0"), 3, "missing input"),
        ((stories, out, "Q8_0"), 2, "a row length no type fits (172 columns, Q8_0)"),
        ((src, out, "Q8_0", "--tensor-type", "attn=q9_9"), 2, "a bad --tensor-type"),
        ((src, src, "Q8_0"), 2, "output = input"),
    ]
    for args, code, what in cases:
        r = run(LIGHTBOAT, "quantize", *args)
        expect(r.returncode == code and b"error" in r.stderr,
               "%s: exit %d (got %d: %s)" % (what, code, r.returncode, r.stderr.decode(errors="replace").strip()))
    expect(open(out, "rb").read() == b"old" and not os.path.exists(out + ".tmp"),
           "failed runs leave OUT as it was and no OUT.tmp")


def generate(model):
    r = run(LIGHTBOAT, "run", "-m", model, "-p", "Once upon a time", "-n", "8", "--temp", "0", "--json")
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["tokens"]


def make_model_tests(tmp):
    tiny = ["--n-layer", "2", "--n-embd", "256", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "512",
            "--n-vocab", "600"]
    a, b = os.path.join(tmp, "a.gguf"), os.path.join(tmp, "b.gguf")
    r1 = run(MAKE_MODEL, "--preset", "llama-3.2-1b", *tiny, "-t", "1", "-o", a)
    r2 = run(MAKE_MODEL, "--preset", "llama-3.2-1b", *tiny, "-t", "2", "-o", b)
    expect(r1.returncode == 0 and r2.returncode == 0, "make_model writes a small llama-3.2-1b-layout model")
    expect(filecmp.cmp(a, b, shallow=False), "make_model output does not depend on the thread count")
    r = run(MAKE_MODEL, "--preset", "llama-3.2-1b", *tiny, "--seed", "7", "-o", b)
    expect(r.returncode == 0 and not filecmp.cmp(a, b, shallow=False), "another --seed gives other weights")
    tokens = generate(a)
    expect(tokens is not None and 1 <= len(tokens) <= 8, "lightboat run generates from it (greedy): %s" % tokens)
    expect(generate(a) == tokens, "greedy generation is repeatable")
    for t in ["Q8_0", "Q4_0", "Q4_K_M"]:
        q = os.path.join(tmp, "a-%s.gguf" % t)
        r = run(LIGHTBOAT, "quantize", a, q, t)
        got = generate(q) if r.returncode == 0 else None
        expect(got is not None and len(got) >= 1, "quantized to %s, it runs: %s" % (t, got))
    r = run(MAKE_MODEL, "--preset", "smollm2-135m", "--n-layer", "1", "--n-embd", "64", "--n-head", "2",
            "--n-head-kv", "1", "--n-ff", "96", "--n-vocab", "300", "--type", "BF16", "--untied", "-o", b)
    expect(r.returncode == 0 and generate(b) is not None, "an untied BF16 smollm2-layout model runs")
    r = run(MAKE_MODEL, "--preset", "nope", "-o", b)
    expect(r.returncode == 2 and b"unknown preset" in r.stderr, "make_model: an unknown preset is a usage error")
    r = run(MAKE_MODEL, "--n-head", "7", "-o", b)
    expect(r.returncode == 2, "make_model: heads that do not divide n_embd are a usage error")


with tempfile.TemporaryDirectory() as tmp:
    quantize_tests(tmp)
    make_model_tests(tmp)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
