#!/usr/bin/env python3
"""The official openai npm package and the ws package against `lightboat serve` (js/clients.mjs).

Usage: js_clients_test.py LIGHTBOAT_BINARY SHARED_DIR WORK_DIR
The npm packages are installed with `npm ci` from js/package-lock.json into WORK_DIR (a build
folder; reused while the lock file is unchanged). A failed install fails the test: it is never
skipped silently.
"""
import filecmp
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Serve  # noqa: E402

BIN, SHARED, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = os.path.join(SHARED, "fixtures", "stories260K", "stories260K-Q8_0.gguf")
JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def install():
    os.makedirs(WORK, exist_ok=True)
    for f in ("package.json", "package-lock.json", "clients.mjs"):
        shutil.copy(os.path.join(JS, f), os.path.join(WORK, f))
    stamp = os.path.join(WORK, "node_modules", ".lightboat-lock")
    if os.path.exists(stamp) and filecmp.cmp(stamp, os.path.join(JS, "package-lock.json"), shallow=False):
        return
    npm = shutil.which("npm")
    if not npm:
        print("FAIL: npm is not installed (scripts/setup.sh installs node and npm)")
        sys.exit(1)
    p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WORK, capture_output=True, timeout=240)
    if p.returncode != 0:
        print("FAIL: npm ci failed:\n" + (p.stdout + p.stderr).decode("utf-8", "replace"))
        sys.exit(1)
    shutil.copy(os.path.join(JS, "package-lock.json"), stamp)


def main():
    if not os.path.exists(MODEL):
        print("*** SKIPPED server JS client tests: %s absent ***" % MODEL)
        return 0
    install()
    with Serve(BIN, MODEL, "--api-key", "test-key", "-c", "2048", "--max-tokens-limit", "2000", key="test-key") as s:
        p = subprocess.run(["node", os.path.join(WORK, "clients.mjs"), s.base, "test-key"], capture_output=True,
                           timeout=180)
        sys.stdout.write((p.stdout + p.stderr).decode("utf-8", "replace"))
        rc = s.stop()
        if rc != 0:
            print("FAIL: serve exited with %r" % rc)
            return 1
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
