#!/usr/bin/env python3
"""End-to-end tests of the model store CLI against a loopback HTTP server this test starts.

Usage: pull_test.py LIGHTBOAT_BINARY SHARED_DIR
The server (http.server with Range support) has knobs to drop connections after N bytes, flip a
byte, answer an error status, ignore Range, and slow down; it counts the bytes it sends, so a
resumed pull can be shown to fetch no byte twice beyond one block. Fixtures from
SHARED_DIR/fixtures are copied into a temp dir at test time; without them the test skips loudly
(exit 77).
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

BIN, SHARED = sys.argv[1], sys.argv[2]
FIX = os.path.join(SHARED, "fixtures")
BLOCK = 16 * 1024  # bytes the server writes at a time
failures = []


def check(name, cond, detail=""):
    print("%s %s" % ("ok  " if cond else "FAIL", name), flush=True)
    if not cond:
        failures.append("%s: %s" % (name, detail))


class Knobs:
    def __init__(self):
        self.reset()

    def reset(self):
        self.delay = 0.0          # seconds slept after each block
        self.drop_after = None    # close the connection after this many body bytes of a response ...
        self.drops_left = 0       # ... this many times
        self.corrupt_at = None    # flip the byte at this file offset
        self.status = {}          # path -> forced HTTP status
        self.ignore_range = False # answer 200 with the whole file to a Range request
        self.hold = False         # stop sending: responses in progress end (connection closed)
        self.sent = {}            # path -> body bytes written
        self.requests = []        # (path, Range header or None, status)
        self.lock = threading.Lock()


KNOBS = Knobs()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        k = KNOBS
        name = self.path.lstrip("/").split("?")[0]
        path = os.path.join(self.root, name)
        rng = self.headers.get("Range")
        if name in k.status:
            return self.reply_error(k.status[name], rng)
        if not os.path.isfile(path):
            return self.reply_error(404, rng)
        size = os.path.getsize(path)
        start, status = 0, 200
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and not k.ignore_range:
            start = int(m.group(1))
            if start >= size:
                with k.lock:
                    k.requests.append((name, rng, 416))
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        with k.lock:
            k.requests.append((name, rng, status))
        self.send_response(status)
        self.send_header("Content-Length", str(size - start))
        self.send_header("ETag", '"v1-%d"' % size)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            pos, sent_here = start, 0
            while pos < size:
                if k.hold:
                    self.close_connection = True
                    return
                chunk = bytearray(f.read(min(BLOCK, size - pos)))
                if k.corrupt_at is not None and pos <= k.corrupt_at < pos + len(chunk):
                    chunk[k.corrupt_at - pos] ^= 0x55
                with k.lock:
                    drop = k.drop_after is not None and k.drops_left > 0 and sent_here + len(chunk) > k.drop_after
                    if drop:
                        k.drops_left -= 1
                        chunk = chunk[: k.drop_after - sent_here]
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                with k.lock:
                    k.sent[name] = k.sent.get(name, 0) + len(chunk)
                if drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                pos += len(chunk)
                sent_here += len(chunk)
                if k.delay:
                    time.sleep(k.delay)

    def reply_error(self, code, rng):
        with KNOBS.lock:
            KNOBS.requests.append((self.path, rng, code))
        body = b"error\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run(args, home, timeout=120):
    env = dict(os.environ, LIGHTBOAT_HOME=home)
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def store_files(home, sub):
    d = os.path.join(home, sub)
    out = []
    for root, _dirs, files in os.walk(d):
        out += [os.path.relpath(os.path.join(root, f), d) for f in files]
    return sorted(out)


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def main():
    if not os.path.isdir(FIX):
        print("*** SKIPPED store end-to-end tests: fixtures not found at %s ***" % FIX)
        return 77
    tmp = tempfile.mkdtemp(prefix="lb-pull-test-")
    served = os.path.join(tmp, "served")
    os.makedirs(served)
    for f in ["tiny-llama-Q4_0.gguf", "tiny-llama-F32.gguf", "tiny-llama3-Q8_0.gguf"]:
        shutil.copy(os.path.join(FIX, "arch", f), served)
    shutil.copy(os.path.join(FIX, "stories260K", "stories260K-F32.gguf"), served)
    with open(os.path.join(served, "tiny-llama-Q4_0.gguf"), "rb") as f:
        head = f.read(500000)
    with open(os.path.join(served, "truncated-Q4_0.gguf"), "wb") as f:
        f.write(head)
    Handler.root = served
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d/" % srv.server_address[1]
    try:
        tests(tmp, served, base)
    finally:
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAILED: " + f)
    print("store e2e: %d failure(s)" % len(failures))
    return 1 if failures else 0


def tests(tmp, served, base):
    q4 = os.path.join(served, "tiny-llama-Q4_0.gguf")
    f32 = os.path.join(served, "tiny-llama-F32.gguf")
    q4_sha, f32_sha = sha(q4), sha(f32)
    n = [0]

    def fresh_home():
        n[0] += 1
        KNOBS.reset()
        return os.path.join(tmp, "home%d" % n[0])

    # 1. A full pull: default name from the file name, verified blob, manifest, no partial left.
    home = fresh_home()
    rc, out, err = run(["pull", base + "tiny-llama-Q4_0.gguf", "--sha256", q4_sha.upper()], home)
    check("full pull", rc == 0 and ("pulled tiny-llama:q4_0 sha256:" + q4_sha) in out, (rc, out, err))
    check("full pull: blob is the file", store_files(home, "blobs") == ["sha256-" + q4_sha] and
          sha(os.path.join(home, "blobs", "sha256-" + q4_sha)) == q4_sha, store_files(home, "blobs"))
    check("full pull: no partial left", not [f for f in store_files(home, "partial") if f.endswith(".part")],
          store_files(home, "partial"))
    check("full pull: plain progress lines off a tty", "pulling tiny-llama:q4_0:" in err and "100%" in err, err)
    rc, out, err = run(["models", "--json"], home)
    models = json.loads(out)["models"] if rc == 0 else []
    check("models --json", len(models) == 1 and models[0]["model"] == "tiny-llama:q4_0" and
          models[0]["architecture"] == "llama" and models[0]["quantization"] == "Q4_0" and
          models[0]["size"] == os.path.getsize(q4) and models[0]["source"] == base + "tiny-llama-Q4_0.gguf", out)
    rc2, out2, _ = run(["pull", base + "tiny-llama-Q4_0.gguf", "--sha256", q4_sha, "--name", "again"], home)
    check("pull of a digest already there downloads nothing", rc2 == 0 and "already in the store" in out2 and
          KNOBS.sent.get("tiny-llama-Q4_0.gguf", 0) == os.path.getsize(q4), (out2, KNOBS.sent))

    # 2. models / show / tag / rm, and store names wherever a model is taken.
    rc, out, err = run(["models"], home)
    check("models table", rc == 0 and "NAME:TAG" in out and "again:latest" in out and q4_sha[:12] in out, out + err)
    rc, out, err = run(["tag", "tiny-llama:q4_0", "tl:stable"], home)
    check("tag", rc == 0 and "tagged tl:stable" in out, out + err)
    rc, out, err = run(["show", "tl:stable"], home)
    check("show (manifest + info)", rc == 0 and q4_sha in out and "architecture" in out and "llama" in out, out + err)
    rc, out, err = run(["show", "tl:stable", "--json"], home)
    check("show --json", rc == 0 and json.loads(out)["digest"] == "sha256:" + q4_sha, out + err)
    rc, out, err = run(["info", "tl:stable", "--json"], home)
    check("info NAME:TAG", rc == 0 and json.loads(out)["architecture"] == "llama", out + err)
    rc, out, err = run(["rm", "tl:stable", "again"], home)
    check("rm keeps a blob another tag names", rc == 0 and out.count("kept") == 2 and
          store_files(home, "blobs") == ["sha256-" + q4_sha], out + err)
    rc, out, err = run(["rm", "tiny-llama:q4_0"], home)
    check("rm of the last tag deletes the blob", rc == 0 and "deleted" in out and store_files(home, "blobs") == [],
          out + err)
    rc, out, err = run(["rm", "tiny-llama:q4_0"], home)
    check("rm of a missing tag: exit 3", rc == 3 and "tiny-llama:q4_0" in err and len(err.splitlines()) == 1, err)
    rc, out, err = run(["show", "Bad/Name"], home)
    check("a malformed name: exit 2", rc == 2 and "not a model name" in err, err)

    st = os.path.join(served, "stories260K-F32.gguf")
    rc, out, err = run(["pull", base + "stories260K-F32.gguf", "-q"], home)
    check("pull stories260K", rc == 0 and "stories260k:f32" in out, out + err)
    args = ["-p", "Once upon a time", "-n", "12", "--temp", "0"]
    rc1, by_path, e1 = run(["run", "-m", st] + args, home)
    rc2, by_name, e2 = run(["run", "-m", "stories260k:f32"] + args, home)
    check("run -m NAME:TAG = run -m FILE", rc1 == 0 and rc2 == 0 and by_name == by_path and by_name.strip(),
          (by_path, by_name, e1, e2))
    rc, out, err = run(["tokenize", "-m", "stories260k:f32", "--json", "hello"], home)
    check("tokenize -m NAME:TAG", rc == 0 and json.loads(out)["tokens"], out + err)
    rc, out, err = run(["run", "-m", "nosuch:model", "-p", "x"], home)
    check("a missing store name: exit 3 naming it and pull", rc == 3 and "nosuch:model" in err and
          "lightboat pull" in err and len(err.splitlines()) == 1, err)

    # 3. A pull killed (SIGKILL) half-way, then resumed: no byte fetched twice beyond one block.
    home = fresh_home()
    KNOBS.delay = 0.01
    size = os.path.getsize(f32)
    env = dict(os.environ, LIGHTBOAT_HOME=home)
    p = subprocess.Popen([BIN, "pull", base + "tiny-llama-F32.gguf"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    part_dir = os.path.join(home, "partial")

    def part_size():
        parts = [f for f in store_files(home, "partial") if f.endswith(".part")]
        return os.path.getsize(os.path.join(part_dir, parts[0])) if parts else 0

    got_half = wait_for(lambda: part_size() > size * 0.4, 60)
    # The server stops sending just before the kill: a killed process's sockets stay open until
    # its address space is torn down (tens of ms for an ASan build), and bytes the server writes
    # meanwhile were never received, so they would not measure what the client kept.
    KNOBS.hold = True
    time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.1)
    KNOBS.hold = False
    sent_before, kept = KNOBS.sent.get("tiny-llama-F32.gguf", 0), part_size()
    check("killed pull left a partial file, no blob", got_half and 0 < kept < size and
          store_files(home, "blobs") == [] and store_files(home, "manifests") == [], (kept, size))
    KNOBS.delay = 0.0
    rc, out, err = run(["pull", base + "tiny-llama-F32.gguf", "--sha256", f32_sha], home)
    total_sent = KNOBS.sent.get("tiny-llama-F32.gguf", 0)
    ranges = [r for (name, r, s) in KNOBS.requests if name == "tiny-llama-F32.gguf"]
    check("resumed pull succeeds", rc == 0 and "resuming at" in err and f32_sha in out, (rc, out, err))
    check("resume asked for the rest with Range", ranges[-1] == "bytes=%d-" % kept, ranges)
    check("no byte downloaded twice beyond one block", total_sent - size <= BLOCK,
          "sent %d for a %d-byte file (%d before the kill, %d kept)" % (total_sent, size, sent_before, kept))
    print("    resume: %d bytes sent before the kill, %d kept on disk, %d sent in all for %d (%d duplicated)" %
          (sent_before, kept, total_sent, size, total_sent - size))

    # 4. Dropped connections: retried with back-off, resuming each time.
    home = fresh_home()
    KNOBS.drop_after, KNOBS.drops_left = 300000, 2
    rc, out, err = run(["pull", base + "tiny-llama-F32.gguf", "--retry-delay-ms", "50"], home)
    ranges = [r for (name, r, s) in KNOBS.requests if name == "tiny-llama-F32.gguf"]
    check("dropped connection: retried and resumed", rc == 0 and f32_sha in out and "retry 1/5" in err and
          ranges == [None, "bytes=300000-", "bytes=600000-"], (rc, out, err, ranges))
    check("dropped connection: nothing fetched twice", KNOBS.sent.get("tiny-llama-F32.gguf") == size, KNOBS.sent)

    # 5. A server that ignores Range (200 to a resume) restarts from zero and still verifies.
    home = fresh_home()
    KNOBS.drop_after, KNOBS.drops_left, KNOBS.ignore_range = 300000, 1, True
    rc, out, err = run(["pull", base + "tiny-llama-F32.gguf", "--retry-delay-ms", "50", "--sha256", f32_sha], home)
    check("200 to a range request: restart from zero", rc == 0 and f32_sha in out, (rc, out, err))

    # 6. Exhausted retries on 503: a clear error, exit 1, the partial kept for later.
    home = fresh_home()
    KNOBS.status["tiny-llama-Q4_0.gguf"] = 503
    rc, out, err = run(["pull", base + "tiny-llama-Q4_0.gguf", "--retries", "2", "--retry-delay-ms", "20"], home)
    lines = [l for l in err.splitlines() if l.startswith("lightboat: error")]
    check("503 retried then fails", rc == 1 and "failed after 2 retries" in err and "HTTP 503" in err and
          len(lines) == 1 and len(KNOBS.requests) == 3, (rc, err, KNOBS.requests))

    # 7. 404 and 403: one clear line, exit 3 and 1, nothing admitted.
    home = fresh_home()
    rc, out, err = run(["pull", base + "missing-Q4_0.gguf"], home)
    check("404: exit 3, one line", rc == 3 and "HTTP 404" in err and len(err.splitlines()) == 1, (rc, err))
    KNOBS.status["tiny-llama-Q4_0.gguf"] = 403
    rc, out, err = run(["pull", base + "tiny-llama-Q4_0.gguf"], home)
    check("403: exit 1, one line", rc == 1 and "HTTP 403" in err and len(err.splitlines()) == 1, (rc, err))
    rc, out, err = run(["pull", "http://127.0.0.1:1/x.gguf", "--retries", "0"], home)
    check("connection refused: exit 1, one line", rc == 1 and len(err.splitlines()) == 1, (rc, err))
    rc, out, err = run(["pull", "http://no-such-host.invalid/x.gguf"], home)
    check("DNS failure: exit 1, one line", rc == 1 and "resolve" in err and len(err.splitlines()) == 1, (rc, err))
    check("errors admitted nothing", store_files(home, "blobs") == [] and store_files(home, "manifests") == [])

    # 8. A corrupted byte: digest mismatch, the partial deleted, nothing admitted.
    home = fresh_home()
    KNOBS.corrupt_at = 400000
    rc, out, err = run(["pull", base + "tiny-llama-Q4_0.gguf", "--sha256", q4_sha], home)
    check("corrupted byte: digest mismatch, exit 4", rc == 4 and "SHA-256 mismatch" in err and q4_sha in err, err)
    check("corrupted byte: nothing admitted, partial deleted", store_files(home, "blobs") == [] and
          store_files(home, "manifests") == [] and not [f for f in store_files(home, "partial") if f.endswith(".part")],
          store_files(home, "partial"))

    # 9. A truncated GGUF: rejected before admission.
    home = fresh_home()
    rc, out, err = run(["pull", base + "truncated-Q4_0.gguf"], home)
    errors = [l for l in err.splitlines() if l.startswith("lightboat: error")]
    check("truncated GGUF rejected, exit 4", rc == 4 and len(errors) == 1 and "not a valid GGUF" in errors[0] and
          "ends past the end of the file" in errors[0], err)
    check("truncated GGUF: nothing admitted", store_files(home, "blobs") == [] and store_files(home, "manifests") == [])

    # 10. Two concurrent pulls of one URL: one blob, the bytes fetched once.
    home = fresh_home()
    KNOBS.delay = 0.005
    env = dict(os.environ, LIGHTBOAT_HOME=home)
    procs = [subprocess.Popen([BIN, "pull", base + "tiny-llama-F32.gguf", "--name", "c%d" % i], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    rcs = [p.returncode for p in procs]
    check("concurrent pulls both succeed", rcs == [0, 0], (rcs, outs))
    check("concurrent pulls: one blob", store_files(home, "blobs") == ["sha256-" + f32_sha], store_files(home, "blobs"))
    check("concurrent pulls: two tags", sorted(store_files(home, "manifests")) == ["c0/latest.json", "c1/latest.json"],
          store_files(home, "manifests"))
    check("concurrent pulls: bytes fetched once", KNOBS.sent.get("tiny-llama-F32.gguf") == size, KNOBS.sent)


if __name__ == "__main__":
    sys.exit(main())
