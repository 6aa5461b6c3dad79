#!/usr/bin/env python3
"""End-to-end: several models in one `lightboat serve` (issue 8, items 5-7).

Three stories260K fixtures (F32, Q8_0, Q4_0) are pulled into a temporary store ($LIGHTBOAT_HOME)
from a loopback http.server, then:
  A. memory budget: a budget that fits any two of the three; requests round-robin across all
     three succeed, the metrics count evictions, and the models' memory never went above the
     budget (the manager's peak, and every scrape's sum of model_memory_bytes);
  B. hot update under load: clients send requests without pause while the tag story:live is
     re-pointed twice, once to a good version (`lightboat tag`), once to a broken (truncated)
     blob written into the store by hand; zero failed requests, every response carries exactly
     one version (system_fingerprint, the same in every chunk of a stream), the broken version
     is rolled back (GET /v1/models shows the error and the old version);
  C. POST /v1/models/{id}/reload: fails (500) while the tag names the broken blob and the old
     version keeps serving; succeeds (200, the new version) once the tag is good again;
  D. an unknown model is a 404 naming it; a path-like model name is refused; over the WebSocket,
     models that load on first use, an unknown model, a cancel while the model loads;
  E. keep_alive (Ollama's rules): a request's "keep_alive": 0 unloads its model right after the
     response (GET /v1/models, model_expirations_total), "-1" keeps it, a bad value is a 400
     naming the field on every endpoint, --model-keep-alive NAME=DURATION beats --keep-alive;
     and `lightboat models --json` shows which tags the running server has loaded (its record
     in <store>/run/), and none once it stopped.

Usage: multi_model_test.py LIGHTBOAT_BINARY SHARED_DIR
"""
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Serve, sse_events  # noqa: E402

BIN, SHARED = sys.argv[1], sys.argv[2]
FIXTURES = os.path.join(SHARED, "fixtures", "stories260K")
QUANTS = {"f32": "F32", "q8": "Q8_0", "q4": "Q4_0"}
failures = []
passed = 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(name)
        print("FAIL %s: %s" % (name, str(detail)[:600]))


def completion(s, model, stream=False, max_tokens=6):
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 0,
            "stream": stream}
    return s.request("POST", "/v1/completions", body=body)


def models(s):
    status, _h, text = s.request("GET", "/v1/models")
    assert status == 200, text
    return {m["id"]: m for m in json.loads(text)["data"]}


def wait_for(what, cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    check(what, False, "timed out")
    return None


def lb(env, *args):
    p = subprocess.run([BIN] + list(args), env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)
    return p


def clean_stop(s, what):
    rc = s.stop()
    time.sleep(0.1)  # the stderr pump reads the last lines
    reports = [l for l in s.stderr if "Sanitizer" in l or "runtime error" in l]
    check(what + ": exit 0", rc == 0, rc)
    check(what + ": no sanitizer report", not reports, reports[:5])


class RawWs:
    """The smallest WebSocket client for the test (no library is installed): text frames only."""

    def __init__(self, port):
        import base64
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head, head
        self.buf = b""

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            if b0 & 0x0F == 1:
                return json.loads(payload)

    def close(self):
        self.sock.close()


def websocket_models(s):
    """Generations over the WebSocket naming models that are not loaded (they load off the I/O
    thread), an unknown one, and a cancel that may arrive while the model loads."""
    ws = RawWs(s.port)
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0}
    ws.send(dict(chat, type="generate", id="a", model="story:q8"))
    ws.send(dict(chat, type="generate", id="b", model="nope:x"))
    ws.send(dict(chat, type="generate", id="c", model="story:q4"))
    ws.send({"type": "cancel", "id": "c"})
    ends, errors, tokens = {}, {}, 0
    while len(ends) + len(errors) < 3:
        m = ws.recv()
        if m["type"] == "token":
            tokens += 1
        elif m["type"] == "done":
            check("ws: one end per id", m["id"] not in ends and m["id"] not in errors, m)
            ends[m["id"]] = m["finish_reason"]
        elif m["type"] == "error":
            if m["id"] == "c" and m.get("code") == "unknown_id":  # the cancel came after c ended
                continue
            errors[m["id"]] = m
    ws.close()
    check("ws: a model loaded on first use answers", ends.get("a") in ("length", "stop") and tokens > 0, (ends, tokens))
    check("ws: unknown model is an error naming it", errors.get("b", {}).get("code") == "model_not_found" and
          "nope:x" in errors["b"]["message"], errors)
    check("ws: a cancel while its model loads ends it once", ends.get("c") in ("cancelled", "length", "stop"),
          (ends, errors))


def loaded_tags(env):
    """{tag: [pids]} of `lightboat models --json` for the tags some live server has loaded."""
    out = json.loads(lb(env, "models", "--json").stdout)
    return {m["model"]: m["loaded_by"] for m in out["models"] if m["loaded"]}


def keep_alive_test(env, home):
    with Serve(BIN, "story:q8", "--keep-alive", "-1", "--model-keep-alive", "story:f32=0", env=env) as s:
        pid = s.proc.pid
        check("models: the default model shows loaded by the server",
              wait_for("record written", lambda: loaded_tags(env).get("story:q8") == [pid]), loaded_tags(env))
        check("models: a model not loaded shows not loaded", "story:q4" not in loaded_tags(env), loaded_tags(env))

        def ask(path, model, keep_alive):
            if path == "/v1/embeddings":
                body = {"model": model, "input": "Once upon a time"}
            elif path == "/v1/classify":
                body = {"model": model, "input": "Once upon a time", "labels": ["a", "b"]}
            else:
                body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
            if keep_alive is not None:
                body["keep_alive"] = keep_alive
            return s.request("POST", path, body=body)

        expirations = lambda: s.metrics().get("model_expirations_total", 0)  # noqa: E731
        status, _h, text = completion(s, "story:q4")
        check("story:q4 loads on first use", status == 200, text)
        check("models: a model loaded by a request shows loaded", loaded_tags(env).get("story:q4") == [pid],
              loaded_tags(env))
        status, _h, text = s.request("POST", "/v1/completions", body={
            "model": "story:q4", "prompt": "Once", "max_tokens": 3, "keep_alive": 0})
        check("keep_alive 0: the response is served", status == 200, text)
        t0 = time.time()
        gone = wait_for("keep_alive 0 unloads", lambda: models(s)["story:q4"]["state"] == "unloaded", timeout=5)
        check("keep_alive 0: unloaded shortly after the response", gone and time.time() - t0 < 2,
              time.time() - t0)
        check("keep_alive 0: counted in model_expirations_total", expirations() == 1, expirations())
        check("keep_alive 0: the latest value sticks", models(s)["story:q4"]["keep_alive"] == "0s",
              models(s)["story:q4"])
        # The record follows the unload (written once the engine has stopped): shortly after.
        check("models: an unloaded model shows not loaded",
              wait_for("record updated", lambda: "story:q4" not in loaded_tags(env), timeout=5), loaded_tags(env))

        status, _h, text = ask("/v1/chat/completions", "story:q4", "-1")
        check('keep_alive "-1": served', status == 200, text)
        time.sleep(1.0)
        info = models(s)["story:q4"]
        check('keep_alive "-1": still loaded', info["state"] == "ready" and info["keep_alive"] == "forever" and
              info["expires_at"] is None, info)
        status, _h, text = ask("/v1/embeddings", "story:q8", "30s")
        check('keep_alive "30s" on embeddings: served', status == 200, text)
        info = wait_for("expires_at shown", lambda: (lambda i: i if i["expires_at"] else None)(models(s)["story:q8"]))
        if info:
            check("expires_at: about 30 s from the end of the request", 25 < info["expires_at"] - time.time() <= 31 and
                  info["keep_alive"] == "30s", info)

        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/classify"):
            for bad in ("5 minutes", "abc", True, [1], {"s": 1}):
                if path == "/v1/completions":
                    status, _h, text = s.request("POST", path, body={"model": "story:q4", "prompt": "x",
                                                                     "keep_alive": bad})
                else:
                    status, _h, text = ask(path, "story:q4", bad)
                err = json.loads(text).get("error", {}) if text.startswith("{") else {}
                check("bad keep_alive %r on %s: 400 naming the field" % (bad, path),
                      status == 400 and err.get("param") == "keep_alive", (status, text))
        check("bad keep_alive values change nothing", models(s)["story:q4"]["state"] == "ready")

        status, _h, text = ask("/v1/classify", "story:f32", None)
        check("--model-keep-alive story:f32=0: served", status == 200, text)
        gone = wait_for("--model-keep-alive 0 unloads", lambda: models(s)["story:f32"]["state"] == "unloaded",
                        timeout=5)
        check("--model-keep-alive beats --keep-alive -1", gone and models(s)["story:q8"]["state"] == "ready",
              models(s))
        check("expirations: two", expirations() == 2, expirations())
        record = os.path.join(home, "run", "serve-%d.json" % pid)
        check("the server's record exists", os.path.exists(record), os.listdir(os.path.join(home, "run")))
        clean_stop(s, "keep-alive server")
    check("models: nothing loaded once the server stopped", loaded_tags(env) == {}, loaded_tags(env))
    check("the record is removed on a clean exit", not os.path.exists(record), os.listdir(os.path.join(home, "run")))
    # A server killed without its cleanup: its record is ignored and removed by the next reader.
    with Serve(BIN, "story:q8", env=env) as s:
        pid = s.proc.pid
        wait_for("record written", lambda: loaded_tags(env).get("story:q8") == [pid])
        s.proc.kill()
        s.proc.wait()
    check("models: a killed server's record is ignored", loaded_tags(env) == {}, loaded_tags(env))
    check("a killed server's record is removed", not os.path.exists(os.path.join(home, "run", "serve-%d.json" % pid)),
          os.listdir(os.path.join(home, "run")))


def fingerprint(version):
    return version[:23]


def write_broken_version(home, ref):
    """Points name:tag at a truncated GGUF blob, written straight into the store (a pull would
    refuse it): what a corrupted upload or a bad disk would leave for the server to load."""
    with open(os.path.join(FIXTURES, "stories260K-Q8_0.gguf"), "rb") as f:
        data = f.read(4096)
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(home, "blobs", "sha256-" + hexd), "wb") as f:
        f.write(data)
    name, tag = ref.split(":")
    manifest = {"schema": 1, "name": name, "tag": tag, "digest": "sha256:" + hexd, "size": len(data),
                "architecture": "llama", "quantization": "Q8_0", "source": "", "created": "2026-11-26T00:00:00Z"}
    path = os.path.join(home, "manifests", name, tag + ".json")
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(manifest) + "\n")
    os.replace(path + ".tmp", path)  # atomic, as the store does it
    return "sha256:" + hexd


def budget_test(env, digests):
    # The models' sizes (weights + KV pool), measured with no budget.
    with Serve(BIN, "story:q8", "-m", "story:f32", "-m", "story:q4", env=env) as s:
        sizes = wait_for("all three loaded", lambda: (lambda m: {k: m[k]["memory_bytes"] for k in m}
                                                       if all(m["story:" + q]["loaded"] for q in QUANTS) else None)(models(s)))
        clean_stop(s, "sizing server")
    sizes = {k: v for k, v in sizes.items() if k.startswith("story:") and k != "story:live"}
    total = sum(sizes.values())
    budget = total - min(sizes.values()) // 2  # any two fit (at most total - smallest), three do not
    print("model sizes (bytes): %s; budget %d" % (sizes, budget))
    with Serve(BIN, "story:q8", "--memory-budget", str(budget), env=env) as s:
        order = ["story:f32", "story:q8", "story:q4"]
        codes, sums = [], []
        for i in range(18):
            model = order[i % 3]
            status, _h, text = completion(s, model)
            codes.append(status)
            if status == 200:
                body = json.loads(text)
                check("fingerprint of %s" % model, body["system_fingerprint"] == fingerprint(digests[model]), text)
            m = s.metrics()
            sums.append(sum(v for k, v in m.items() if k.startswith("model_memory_bytes{")))
        check("round-robin over three models under a two-model budget: all 200", codes == [200] * 18, codes)
        m = s.metrics()
        check("evictions counted", m.get("model_evictions_total", 0) >= 10, m.get("model_evictions_total"))
        check("budget reported", m.get("lightboat_models_memory_budget_bytes") == budget)
        peak = m.get("lightboat_models_memory_peak_bytes", -1)
        check("peak memory within the budget", 0 < peak <= budget, (peak, budget))
        check("every scrape within the budget", max(sums) <= budget, (max(sums), budget))
        check("loads counted per model", all(m.get('model_loads_total{model="%s"}' % k, 0) >= 5 for k in order),
              {k: v for k, v in m.items() if k.startswith("model_loads_total")})
        loaded = [k for k, v in models(s).items() if v["loaded"]]
        check("at most two loaded", len(loaded) <= 2, loaded)
        print("budget: %d requests ok, evictions %d, peak %d of %d bytes" %
              (codes.count(200), m["model_evictions_total"], peak, budget))
        clean_stop(s, "budget server")


def hot_update_test(env, home, digests):
    lb(env, "tag", "story:q8", "story:live")
    with Serve(BIN, "story:live", "--refresh-s", "1", env=env) as s:
        stop = threading.Event()
        results = []  # (status, [fingerprints], stream)
        lock = threading.Lock()

        def client(stream):
            while not stop.is_set():
                status, _h, text = completion(s, "story:live", stream=stream)
                if stream:
                    fps = [json.loads(e)["system_fingerprint"] for e in sse_events(text) if e != "[DONE]"]
                    ok = status == 200 and sse_events(text)[-1:] == ["[DONE]"] and "error" not in text
                else:
                    fps = [json.loads(text).get("system_fingerprint")] if status == 200 else []
                    ok = status == 200
                with lock:
                    results.append((ok, status, fps, stream, text if not ok else ""))

        threads = [threading.Thread(target=client, args=(st,)) for st in (False, True, True)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        lb(env, "tag", "story:q4", "story:live")  # a good new version
        wait_for("switched to the good version",
                 lambda: models(s)["story:live"]["version"] == digests["story:q4"])
        time.sleep(1.0)
        broken = write_broken_version(home, "story:live")
        info = wait_for("broken version rolled back", lambda: (lambda m: m if "error" in m else None)(
            models(s)["story:live"]))
        failed_at_rollback = s.metrics().get('model_reloads_total{result="failed"}', 0)
        time.sleep(2.2)  # two refresh periods: the broken version is not loaded again
        stop.set()
        for t in threads:
            t.join()
        failed = [r for r in results if not r[0]]
        check("zero failed requests during two hot updates", not failed, failed[:3])
        good = {fingerprint(digests["story:q8"]), fingerprint(digests["story:q4"])}
        single = all(len(set(r[2])) == 1 and r[2][0] in good for r in results if r[0])
        check("every response from exactly one version", single,
              [r[2] for r in results if r[0] and (len(set(r[2])) != 1 or r[2][0] not in good)][:3])
        seen = {r[2][0] for r in results if r[0] and r[2]}
        check("responses from both good versions", seen == good, seen)
        if info:
            check("rolled back: the old version serves", info["version"] == digests["story:q4"], info)
            check("rolled back: the error is shown", "previous version kept" in info["error"], info)
            check("rolled back: the failed version is named", info.get("failed_version") == broken, info)
            check("rolled back: state ready", info["state"] == "ready", info)
        m = s.metrics()
        check("a failed version is not retried by the refresh",
              m.get('model_reloads_total{result="failed"}') == failed_at_rollback == 1,
              (failed_at_rollback, m.get('model_reloads_total{result="failed"}')))
        check("reloads counted", m.get('model_reloads_total{result="ok"}', 0) >= 1 and
              m.get('model_reloads_total{result="failed"}', 0) >= 1,
              {k: v for k, v in m.items() if k.startswith("model_reloads_total")})
        print("hot update: %d requests (%d streamed), 0 failed expected, %d failed; versions seen %s" %
              (len(results), sum(1 for r in results if r[3]), len(failed), sorted(seen)))

        # C. POST /v1/models/{id}/reload
        status, _h, text = s.request("POST", "/v1/models/story:live/reload")
        check("reload onto a broken version: 500 reload_failed", status == 500 and
              json.loads(text)["error"]["code"] == "reload_failed", (status, text))
        status, _h, text = completion(s, "story:live")
        check("after the failed reload the old version serves", status == 200 and
              json.loads(text)["system_fingerprint"] == fingerprint(digests["story:q4"]), text)
        lb(env, "tag", "story:f32", "story:live")
        status, _h, text = s.request("POST", "/v1/models/story:live/reload")
        check("reload: 200 with the new version", status == 200 and
              json.loads(text)["version"] == digests["story:f32"], (status, text))
        status, _h, text = completion(s, "story:live")
        check("after the reload the new version serves", status == 200 and
              json.loads(text)["system_fingerprint"] == fingerprint(digests["story:f32"]), text)
        status, _h, text = s.request("GET", "/v1/models/story:live/reload")
        check("reload is POST only", status == 405, status)
        status, _h, text = s.request("POST", "/v1/models/nope:x/reload")
        check("reload of an unknown model: 404", status == 404, (status, text))

        websocket_models(s)

        # D. unknown and path-like names
        status, _h, text = completion(s, "nope:x")
        check("unknown model: 404 naming it", status == 404 and "nope:x" in text and
              json.loads(text)["error"]["code"] == "model_not_found", (status, text))
        for bad in ("/etc/passwd", "../../x.gguf", os.path.join(FIXTURES, "stories260K-Q8_0.gguf"), "x/y"):
            status, _h, text = completion(s, bad)
            check("path-like model %r refused" % bad, status == 404 and "never a path" in text, (status, text))
        status, _h, text = s.request("GET", "/v1/models/nope:x")
        check("GET unknown model: 404", status == 404, status)
        listed = models(s)
        check("store models listed", all("story:" + q in listed for q in QUANTS), sorted(listed))
        check("not loaded store model shows unloaded", listed["story:f32"]["state"] == "unloaded" and
              listed["story:f32"]["version"] == digests["story:f32"], listed["story:f32"])
        check("ready", s.request("GET", "/ready")[0] == 200)
        if shutil.which("promtool"):
            _st, _h, text = s.request("GET", "/metrics")
            p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            problems = [l for l in (p.stdout + p.stderr).splitlines() if l.strip() and "inference_latency_ms" not in l]
            check("promtool accepts the per-model metrics", not problems, problems)
        clean_stop(s, "hot-update server")


def main():
    home = tempfile.mkdtemp(prefix="lightboat_multi_")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=FIXTURES)

    class Quiet(handler.func):
        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=FIXTURES))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    env = dict(os.environ, LIGHTBOAT_HOME=home)
    try:
        url = "http://127.0.0.1:%d/" % httpd.server_address[1]
        digests = {}
        for q, fname in QUANTS.items():
            lb(env, "pull", "-q", url + "stories260K-%s.gguf" % fname, "--name", "story:" + q)
            with open(os.path.join(FIXTURES, "stories260K-%s.gguf" % fname), "rb") as f:
                digests["story:" + q] = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        # One failed pull (404), then the store's pull counters as /metrics reports them.
        p = subprocess.run([BIN, "pull", "-q", url + "absent.gguf"], env=env, capture_output=True, timeout=60)
        check("a pull of a missing file fails (exit 3)", p.returncode == 3, p.stderr)
        pulled = sum(os.path.getsize(os.path.join(FIXTURES, "stories260K-%s.gguf" % f)) for f in QUANTS.values())
        with Serve(BIN, "story:q8", env=env) as s:
            m = s.metrics()
            check("pull counters: 3 ok", m.get('lightboat_store_pulls_total{result="ok"}') == 3, m)
            check("pull counters: 1 failed", m.get('lightboat_store_pulls_total{result="failed"}') == 1, m)
            check("pull bytes", m.get("lightboat_store_pull_bytes_total") == pulled,
                  (m.get("lightboat_store_pull_bytes_total"), pulled))
            clean_stop(s, "pull-metrics server")
        t0 = time.time()
        keep_alive_test(env, home)
        print("keep-alive part %.1f s" % (time.time() - t0))
        t0 = time.time()
        budget_test(env, digests)
        t1 = time.time()
        hot_update_test(env, home, digests)
        print("budget part %.1f s, hot-update part %.1f s" % (t1 - t0, time.time() - t1))
    finally:
        httpd.shutdown()
        shutil.rmtree(home, ignore_errors=True)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
