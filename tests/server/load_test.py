#!/usr/bin/env python3
"""Load test of `lightboat serve` with wrk on loopback: zero errors other than intended 429s, and
no memory growth (the server's RSS from /proc at the start, middle and end of the run).

Usage: load_test.py LIGHTBOAT_BINARY MODEL [--duration S] [--connections N] [--threads T]
CI runs a 10 s version (label slow); the figures in the README come from --duration 150.
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Serve  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("--duration", type=int, default=150)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--serve-threads", default="1", help="compute threads of the server (-t)")
    ap.add_argument("--max-growth-kib", type=int, default=8192, help="allowed RSS growth, middle to end")
    a = ap.parse_args()
    if not os.path.exists(a.model):
        print("*** SKIPPED load test: %s absent ***" % a.model)
        return 0
    wrk = subprocess.run(["which", "wrk"], capture_output=True).stdout.decode().strip()
    if not wrk:
        print("FAIL: wrk is not installed (scripts/setup.sh installs it)")
        return 1
    # A small queue, so that the load also exercises 429s.
    with Serve(a.binary, a.model, "--max-queue", "8", "-c", "256") as s:
        pid = s.proc.pid
        # Warm-up: allocator pools, thread stacks and buffers reach their steady size.
        subprocess.run([wrk, "-t1", "-c4", "-d3s", "-s", os.path.join(HERE, "wrk_completions.lua"), s.base],
                       capture_output=True, timeout=60)
        samples = [("start", rss_kib(pid))]

        def middle():
            time.sleep(a.duration / 2)
            samples.append(("middle", rss_kib(pid)))

        t = threading.Thread(target=middle)
        t.start()
        load = os.getloadavg()
        p = subprocess.run([wrk, "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--latency",
                            "-s", os.path.join(HERE, "wrk_completions.lua"), s.base],
                           capture_output=True, timeout=a.duration + 120)
        t.join()
        samples.append(("end", rss_kib(pid)))
        load_end = os.getloadavg()
        out = p.stdout.decode()
        print(out)
        m = s.metrics()
        rc = s.stop()

    statuses = {int(k): int(v) for k, v in re.findall(r"status (\d+): (\d+)", out)}
    socket_errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = sum(n for code, n in statuses.items() if code not in (200, 429))
    print("RSS KiB: " + ", ".join("%s %d" % kv for kv in samples))
    print("statuses: %r; socket errors: %s; requests/s: %s; load average at start %.2f, at end %.2f" %
          (statuses, socket_errors.group(1) if socket_errors else "none", rps.group(1) if rps else "?",
           load[0], load_end[0]))
    print("server: %d ok, %d overloaded, %d generated tokens" %
          (m['inference_requests_total{status="ok"}'], m['inference_requests_total{status="overloaded"}'],
           m["lightboat_generated_tokens_total"]))
    failed = []
    if p.returncode != 0:
        failed.append("wrk exited %d: %s" % (p.returncode, p.stderr.decode()))
    if errors:
        failed.append("%d responses other than 200/429" % errors)
    if socket_errors:
        failed.append("socket errors: " + socket_errors.group(1))
    if statuses.get(200, 0) == 0:
        failed.append("no successful request")
    if non2xx and int(non2xx.group(1)) != statuses.get(429, 0):
        failed.append("non-2xx responses (%s) are not all 429s" % non2xx.group(1))
    growth = samples[-1][1] - samples[1][1]
    if growth > a.max_growth_kib:
        failed.append("RSS grew by %d KiB from the middle to the end" % growth)
    if rc != 0:
        failed.append("serve exited with %r" % rc)
    for f in failed:
        print("FAIL: " + f)
    print("load test: %s" % ("FAILED" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
