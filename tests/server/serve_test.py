#!/usr/bin/env python3
"""End-to-end checks of `lightboat serve` on loopback, with curl and raw HTTP clients.

Usage: serve_test.py LIGHTBOAT_BINARY SHARED_DIR
Covers: chat completions (JSON and SSE, [DONE]), completions, models, health/ready, Bearer auth,
the non-loopback refusal, malformed input of many kinds (4xx, server keeps serving), 8 concurrent
streams, a full queue (429 + Retry-After), an impossible deadline (504), a client killed
mid-stream (cancelled, its sequence freed), promtool on /metrics, SIGTERM (drain, exit 0).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Serve, curl, sse_events  # noqa: E402

BIN, SHARED = sys.argv[1], sys.argv[2]
MODEL = os.path.join(SHARED, "fixtures", "stories260K", "stories260K-Q8_0.gguf")
results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL: %s %s" % (name, detail))


def chat_body(**extra):
    body = {"model": "stories260K-Q8_0", "messages": [{"role": "user", "content": "Tell me a story."}],
            "max_tokens": 24, "temperature": 0}
    body.update(extra)
    return body


def error_shape_ok(text):
    try:
        e = json.loads(text)["error"]
        return all(isinstance(e.get(k), str) for k in ("message", "type", "code"))
    except (ValueError, KeyError, TypeError):
        return False


def basic(s):
    code, text = curl(s, "/health")
    check("health", code == 200 and json.loads(text)["status"] == "ok", text)
    code, text = curl(s, "/ready")
    check("ready", code == 200, text)
    code, text = curl(s, "/v1/models")
    check("models", code == 200 and json.loads(text)["data"][0]["id"] == "stories260K-Q8_0", text)
    code, text = curl(s, "/v1/models/stories260K-Q8_0")
    check("model by id", code == 200 and json.loads(text)["object"] == "model", text)

    code, text = curl(s, "/v1/chat/completions", chat_body())
    j = json.loads(text)
    full = j["choices"][0]["message"]["content"]
    check("chat", code == 200 and j["object"] == "chat.completion" and full, text)
    check("chat usage", j["usage"]["completion_tokens"] == 24 and j["usage"]["prompt_tokens"] > 10, text)
    check("chat finish length", j["choices"][0]["finish_reason"] == "length", text)

    code, text = curl(s, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}))
    events = sse_events(text)
    check("stream ends with [DONE]", code == 200 and events and events[-1] == "[DONE]", text[-300:])
    chunks = [json.loads(e) for e in events[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    check("stream text = non-stream text (greedy)", streamed == full, "%r vs %r" % (streamed, full))
    check("stream first chunk has the role", chunks[0]["choices"][0]["delta"].get("role") == "assistant")
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    check("stream finish chunk", len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "length")
    check("stream usage chunk", chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 24)
    check("stream chunk object", all(c["object"] == "chat.completion.chunk" for c in chunks))

    code, text = curl(s, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0})
    j = json.loads(text)
    check("completion", code == 200 and j["object"] == "text_completion" and
          j["choices"][0]["text"].startswith(", there was a little girl named Lily."), text)
    code, text = curl(s, "/v1/completions",
                      {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "stop": ["girl"]})
    j = json.loads(text)
    check("stop string", code == 200 and j["choices"][0]["text"] == ", there was a little " and
          j["choices"][0]["finish_reason"] == "stop", text)
    code, text = curl(s, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 8, "stream": True})
    events = sse_events(text)
    check("completion stream", code == 200 and events[-1] == "[DONE]" and
          json.loads(events[0])["object"] == "text_completion", text[-300:])
    same = [json.loads(curl(s, "/v1/completions", {"prompt": "Once", "max_tokens": 12, "temperature": 1.0,
                                                  "seed": 7})[1])["choices"][0]["text"] for _ in range(2)]
    check("seeded sampling repeats", same[0] == same[1], repr(same))


def malformed(s):
    m = '"messages":[{"role":"user","content":"hi"}]'
    bodies = [
        (b"", 400), (b"{", 400), (b"null", 400), (b"[]", 400), (b'"x"', 400), (b"\xff\xfe\x00", 400),
        (b"[" * 5000 + b"]" * 5000, 400), (b"{}", 400), (b'{"messages":{}}', 400),
        (b'{"messages":[{"role":"user","content":"hi"}],"model":"nope"}', 404),
        (('{%s,"temperature":-1}' % m).encode(), 400), (('{%s,"max_tokens":"ten"}' % m).encode(), 400),
        (('{%s,"max_tokens":99999999}' % m).encode(), 400), (('{%s,"top_p":7}' % m).encode(), 400),
        (('{%s,"stop":{"a":1}}' % m).encode(), 400), (('{%s,"priority":"vip"}' % m).encode(), 400),
        (('{%s,"deadline_ms":-5}' % m).encode(), 400), (('{%s,"logprobs":1}' % m).encode(), 400),
        (('{%s,"n":3}' % m).encode(), 400), (b'{"messages":[{"role":"user","content":"' + b"a" * 70000 + b'"}]}', 400),
    ]
    for body, want in bodies:
        code, text = curl(s, "/v1/chat/completions", body)
        check("malformed %r -> %d" % (body[:40], want), code == want and error_shape_ok(text), "%d %s" % (code, text))
    code, text = curl(s, "/v1/completions", {"prompt": 42})
    check("completion bad prompt", code == 400 and json.loads(text)["error"]["param"] == "prompt", text)
    code, text = curl(s, "/v1/embeddings", {"input": 5})
    check("embeddings bad input -> 400", code == 400 and json.loads(text)["error"]["param"] == "input", text)
    code, text = curl(s, "/v1/chat/completions", method="GET")
    check("wrong method -> 405", code == 405 and error_shape_ok(text), text)
    code, text = curl(s, "/nowhere")
    check("unknown route -> 404", code == 404 and error_shape_ok(text), text)
    code, text = curl(s, "/v1/chat/completions", b"x" * (2 << 20))
    check("body over the limit -> 413", code == 413 and error_shape_ok(text), "%d %s" % (code, text[:200]))
    # Not HTTP at all, and a connection dropped in the middle of a request.
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
        reply = c.recv(4096)
        check("garbage bytes -> 400", reply.startswith(b"HTTP/1.1 400"), repr(reply[:80]))
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"mess")
    code, text = curl(s, "/v1/chat/completions", chat_body(max_tokens=4))
    check("still serving after bad input", code == 200, text)


def concurrent_streams(s):
    procs = [subprocess.Popen(["curl", "-sS", "-N", "--max-time", "120", "-H", "Content-Type: application/json",
                               "-d", json.dumps(chat_body(stream=True, max_tokens=40, temperature=0.8, seed=i)),
                               s.base + "/v1/chat/completions"], stdout=subprocess.PIPE) for i in range(8)]
    outs = [p.communicate(timeout=150)[0].decode("utf-8", "replace") for p in procs]
    done = [sse_events(o)[-1:] == ["[DONE]"] for o in outs]
    check("8 concurrent streams end with [DONE]", all(done), repr(done))


def deadline(s):
    code, text = curl(s, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 100, "deadline_ms": 1})
    ok = code == 504 and json.loads(text)["error"]["code"] == "deadline_exceeded"
    check("impossible deadline refused at once -> 504 deadline_exceeded", ok, "%d %s" % (code, text))
    code, text = curl(s, "/v1/completions", {"prompt": "Once", "max_tokens": 4, "deadline_ms": 60000,
                                            "priority": "high"})
    check("feasible deadline served", code == 200, text)


def auth():
    env = {"LIGHTBOAT_API_KEY": "env-key"}
    with Serve(BIN, MODEL, "--api-key", "k1", "--api-key", "k2", "--cors-origin", "https://app.example", env=env,
               key="k1") as s:
        code, _ = curl(s, "/health")
        check("auth: health needs no key", code == 200)
        code, headers, _ = s.request("OPTIONS", "/v1/chat/completions", headers={"Origin": "https://app.example"})
        check("cors: preflight without a key", code == 204 and
              headers.get("access-control-allow-origin") == "https://app.example" and
              "Authorization" in headers.get("access-control-allow-headers", ""), repr(headers))
        code, headers, _ = s.request("GET", "/health")
        check("cors: origin on responses", headers.get("access-control-allow-origin") == "https://app.example")
        code, text = curl(s, "/v1/models")
        check("auth: 401 without key", code == 401 and json.loads(text)["error"]["type"] == "authentication_error",
              text)
        code, _ = curl(s, "/v1/models", headers=["Authorization: Bearer wrong"])
        check("auth: 401 with a wrong key", code == 401)
        code, _ = curl(s, "/metrics")
        check("auth: metrics need the key", code == 401)
        for key in ("k1", "k2", "env-key"):
            code, _ = curl(s, "/v1/models", headers=["Authorization: Bearer " + key])
            check("auth: key %s accepted" % key, code == 200)
        code, _ = curl(s, "/v1/chat/completions", chat_body(max_tokens=2), headers=["Authorization: Bearer k2"])
        check("auth: chat with key", code == 200)
        check("auth: exit 0", s.stop() == 0)
    p = subprocess.run([BIN, "serve", "-m", MODEL, "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                       timeout=60, env={k: v for k, v in os.environ.items() if k != "LIGHTBOAT_API_KEY"})
    check("non-loopback without a key refused", p.returncode == 2 and b"--insecure-no-auth" in p.stderr, p.stderr)


def overload():
    # One running, one queued per class: a burst of 16 gets 429s with Retry-After; the rest finish.
    with Serve(BIN, MODEL, "--max-running", "1", "--max-queue", "1", "-c", "1024", "--max-tokens-limit", "1000") as s:
        statuses, retry = [], []
        barrier = threading.Barrier(16)

        def one():
            barrier.wait()
            code, headers, text = s.request("POST", "/v1/completions",
                                            {"prompt": "Once upon a time", "max_tokens": 300})
            statuses.append(code)
            if code == 429:
                retry.append((headers.get("retry-after"), json.loads(text)["error"]["code"]))

        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("burst: some 429", statuses.count(429) >= 1, repr(statuses))
        check("burst: the rest 200", all(c in (200, 429) for c in statuses) and statuses.count(200) >= 1,
              repr(statuses))
        check("429 has Retry-After and queue_full",
              all(r and r.isdigit() and int(r) >= 1 and c == "queue_full" for r, c in retry), repr(retry))
        m = s.metrics()
        check("metrics count refusals", m['lightboat_refusals_total{priority="normal",reason="overloaded"}'] ==
              statuses.count(429), repr(m))
        rc = s.stop()
        check("overload: exit 0", rc == 0, "rc=%r stderr=%s" % (rc, "".join(s.stderr)))


def killed_client():
    # A long generation (the context stretched to 2048 tokens) whose curl is killed mid-stream.
    with Serve(BIN, MODEL, "-c", "2048", "--max-tokens-limit", "2000") as s:
        p = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "-d",
                              json.dumps({"prompt": "Once upon a time", "max_tokens": 2000, "stream": True}),
                              s.base + "/v1/completions"], stdout=subprocess.PIPE)
        first = p.stdout.readline()
        check("killed client: streaming started", first.startswith(b"data: "), repr(first))
        m = s.metrics()
        check("killed client: running while streaming", m["lightboat_requests_running"] == 1, repr(m))
        p.kill()
        p.wait()
        deadline = time.time() + 10
        while time.time() < deadline:
            m = s.metrics()
            if m["lightboat_requests_running"] == 0 and m["lightboat_requests_in_flight"] == 0:
                break
            time.sleep(0.02)
        check("killed client: running back to 0", m["lightboat_requests_running"] == 0, repr(m))
        check("killed client: cancelled", m['inference_requests_total{status="cancelled"}'] == 1, repr(m))
        check("killed client: KV pages freed", m['lightboat_kv_cache_pages{state="used"}'] == 0, repr(m))
        check("killed client: fewer tokens than asked", m["lightboat_generated_tokens_total"] < 2000, repr(m))

        # SIGTERM with a stream in flight: it finishes within the grace period, then exit 0.
        p = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "-d",
                              json.dumps({"prompt": "Once", "max_tokens": 300, "stream": True}),
                              s.base + "/v1/completions"], stdout=subprocess.PIPE)
        p.stdout.readline()
        rc = s.stop(signal.SIGTERM)
        out = p.communicate(timeout=60)[0].decode()
        check("SIGTERM: in-flight stream completes", sse_events(out)[-1:] == ["[DONE]"], out[-200:])
        check("SIGTERM: exit 0", rc == 0, "rc=%r" % rc)

    with Serve(BIN, MODEL, "-c", "2048", "--max-tokens-limit", "2000", "--shutdown-grace-ms", "0") as s:
        p = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "-d",
                              json.dumps({"prompt": "Once", "max_tokens": 2000, "stream": True}),
                              s.base + "/v1/completions"], stdout=subprocess.PIPE)
        p.stdout.readline()
        rc = s.stop(signal.SIGINT)
        out = p.communicate(timeout=60)[0].decode()
        last = sse_events(out)[-1:]
        check("no grace: the stream ends with a server_shutdown event",
              last and '"server_shutdown"' in last[0], out[-300:])
        check("SIGINT: exit 0", rc == 0, "rc=%r" % rc)


def deadline_mid_stream():
    # A deadline that the admission estimate (rates measured on the short warm-up) allows but that
    # a long answer overruns, as attention grows with the context: the stream ends with an error
    # event. Timing-dependent, so the budget is searched and an inconclusive run is a loud skip.
    with Serve(BIN, MODEL, "-c", "2048", "--max-tokens-limit", "2000") as s:
        for budget in (200, 400, 800, 1600, 3200):
            code, text = curl(s, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 1900,
                                                    "deadline_ms": budget, "stream": True})
            if code == 200:
                break
        events = sse_events(text)
        if code != 200 or events[-1:] == ["[DONE]"]:
            print("*** SKIPPED deadline-mid-stream check: every budget was refused or met (last: %d ms, %d) ***"
                  % (budget, code))
            return
        check("deadline mid-stream: ends with a deadline_exceeded event",
              json.loads(events[-1])["error"]["code"] == "deadline_exceeded", text[-300:])
        m = s.metrics()
        check("deadline miss counted", m['lightboat_deadline_misses_total{priority="normal"}'] == 1)


def promtool(s):
    status, _h, text = s.request("GET", "/metrics")
    check("metrics 200", status == 200)
    for name in ("inference_latency_ms_bucket", "inference_requests_total", "model_memory_bytes",
                 "lightboat_time_to_first_token_seconds", "lightboat_inter_token_latency_seconds",
                 "lightboat_queue_wait_seconds", "lightboat_kv_cache_pages", "lightboat_deadline_misses_total",
                 "lightboat_refusals_total", "lightboat_requests_in_flight", "lightboat_generated_tokens_total"):
        check("metrics has " + name, name in text)
    check("latency buckets", all('le="%s"' % b in text for b in ("50", "100", "200", "500", "1000", "+Inf")))
    tool = shutil.which("promtool")
    if not tool:
        print("*** SKIPPED promtool check metrics: promtool not installed (scripts/setup.sh installs prometheus) ***")
        return
    # promtool (2.42, Debian 12) exits 1 for a format error and 3 for lint findings; it has no
    # per-rule switch. The product spec's name inference_latency_ms trips exactly one lint rule
    # ("metric names should not contain abbreviated units"), which no HELP/TYPE text can satisfy,
    # so: (1) without that one family the exposition must pass clean (exit 0); (2) the whole
    # exposition must parse and its only finding must be that exact line. The same histogram is
    # also exported in base units as inference_latency_seconds, which passes.
    def promtool_run(data):
        p = subprocess.run([tool, "check", "metrics"], input=data.encode(), capture_output=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).decode()

    rest = "\n".join(l for l in text.splitlines() if "inference_latency_ms" not in l) + "\n"
    rc, out = promtool_run(rest)
    check("promtool check metrics: clean without inference_latency_ms", rc == 0, "rc=%d %s" % (rc, out))
    rc, out = promtool_run(text)
    findings = [l.strip() for l in out.splitlines() if l.strip()]
    check("promtool check metrics: the only finding is the mandated name's unit",
          rc == 3 and findings == ["inference_latency_ms metric names should not contain abbreviated units"],
          "rc=%d %s" % (rc, out))
    check("inference_latency_seconds mirrors the ms histogram",
          'inference_latency_seconds_bucket{model="stories260K-Q8_0",quantization="Q8_0",le="0.05"}' in text, text)


def main():
    if not os.path.exists(MODEL):
        print("*** SKIPPED server end-to-end tests: %s absent ***" % MODEL)
        return 0
    if not shutil.which("curl"):
        print("FAIL: curl is not installed")
        return 1
    with Serve(BIN, MODEL) as s:
        code, headers, _ = s.request("GET", "/health")
        check("cors off by default", "access-control-allow-origin" not in headers, repr(headers))
        basic(s)
        malformed(s)
        concurrent_streams(s)
        deadline(s)
        promtool(s)
        m = s.metrics()
        check("in flight back to 0", m["lightboat_requests_in_flight"] == 0, repr(m))
        check("invalid requests counted", m['inference_requests_total{status="invalid"}'] >= 10, repr(m))
        check("exit 0 on SIGTERM", s.stop() == 0)
    auth()
    overload()
    killed_client()
    deadline_mid_stream()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
