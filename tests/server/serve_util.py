"""Helpers of the server's end-to-end tests: start `lightboat serve` on a free loopback port,
talk to it with curl and with raw HTTP, read its metrics."""
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time


class Serve:
    """A running `lightboat serve` (port 0: the kernel picks one; read back from its stderr)."""

    def __init__(self, binary, model, *args, env=None, key=None):
        full_env = dict(os.environ)
        full_env.pop("LIGHTBOAT_API_KEY", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "-t", "1"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env)
        self.stderr = []
        self.port = None
        ready = threading.Event()

        def pump():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                self.stderr.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        if self.port is None:
            raise RuntimeError("serve did not start: " + "".join(self.stderr))
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while time.time() < deadline:  # ready = model warm
            if self.request("GET", "/ready", headers={"Authorization": "Bearer " + key} if key else None)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("serve never became ready")

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict (lower-case), body text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def metrics(self, headers=None):
        """{'name{labels}': value} of GET /metrics."""
        status, _h, text = self.request("GET", "/metrics", headers=headers)
        assert status == 200, text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def curl(serve, path, body=None, headers=(), method=None, timeout=120):
    """(status, body text) through the curl program; body is JSON-encoded unless bytes/str."""
    args = ["curl", "-sS", "-N", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    if method:
        args += ["-X", method]
    for h in headers:
        args += ["-H", h]
    stdin = None
    if body is not None:
        stdin = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    p = subprocess.run(args + [serve.base + path], input=stdin, capture_output=True, timeout=timeout + 10)
    text = p.stdout.decode("utf-8", "replace")
    text, _, code = text.rpartition("\n")
    return int(code or 0), text


def sse_events(text):
    """The data payloads of an SSE stream, in order."""
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]
