#!/usr/bin/env python3
"""`lightboat classify` through the CLI: JSON shape, ranking, several texts at once, errors.

Usage: classify_test.py LIGHTBOAT_BINARY SHARED_DIR
"""
import json
import os
import subprocess
import sys

BIN, SHARED = sys.argv[1], sys.argv[2]
MODEL = os.path.join(SHARED, "fixtures", "stories260K", "stories260K-F32.gguf")
if not os.path.isfile(MODEL):
    print("*** SKIPPED: %s absent: classify checks did NOT run ***" % MODEL)
    sys.exit(77)
failures = []


def run(args):
    p = subprocess.run([BIN, "classify", "-m", MODEL] + args, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


rc, out, err = run(["--labels", " there was, the dog, quantum", "--template", "{text}", "--json",
                    "Once upon a time,", "The little", "Lily wanted to"])
if rc != 0:
    failures.append("classify exit %d: %s" % (rc, err))
else:
    results = json.loads(out)["results"]
    if [r["text"] for r in results] != ["Once upon a time,", "The little", "Lily wanted to"]:
        failures.append("texts out of order: %s" % out)
    first = results[0]
    if first["label"] != " there was":
        failures.append("'Once upon a time,' should continue with ' there was': %s" % first)
    for r in results:
        total = sum(s["probability"] for s in r["scores"])
        if abs(total - 1.0) > 1e-6 or any(s["logprob"] >= 0 for s in r["scores"]):
            failures.append("bad scores: %s" % r)
for args, code in ((["--labels", "a,,b", "x"], 2), (["--labels", "a", "--template", "no placeholder", "x"], 2)):
    rc, _, err = run(args)
    if rc != code or len(err.strip().splitlines()) != 1:
        failures.append("%s: rc %d (want %d), stderr %r" % (args, rc, code, err))
for f in failures:
    print("FAIL", f)
print("classify: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
