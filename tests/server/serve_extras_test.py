#!/usr/bin/env python3
"""End-to-end checks of `lightboat serve`'s embeddings, classification and logprobs, and of a
high-priority request's time to first token while low-priority requests flood the server.

Usage: serve_extras_test.py LIGHTBOAT_BINARY SHARED_DIR
"""
import base64
import json
import math
import os
import statistics
import struct
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
        print("FAIL: %s %s" % (name, str(detail)[:2000]))


def param_of(text):
    try:
        return json.loads(text)["error"]["param"]
    except (ValueError, KeyError, TypeError):
        return None


def embeddings(s):
    code, text = curl(s, "/v1/embeddings", {"model": "stories260K-Q8_0", "input": "Once upon a time"})
    j = json.loads(text)
    check("embeddings 200", code == 200 and j["object"] == "list" and j["model"] == "stories260K-Q8_0", text)
    one = j["data"][0]["embedding"]
    check("embedding shape", j["data"][0]["object"] == "embedding" and j["data"][0]["index"] == 0 and
          len(one) == 64, len(one))
    check("embedding is L2-normalised", abs(math.sqrt(sum(x * x for x in one)) - 1) < 1e-4)
    check("embeddings usage", j["usage"]["prompt_tokens"] > 0 and j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"],
          j["usage"])
    code, text = curl(s, "/v1/embeddings", {"input": ["The cat sat", "Lily", "Once upon a time"]})
    j = json.loads(text)
    check("batched embeddings", code == 200 and [d["index"] for d in j["data"]] == [0, 1, 2], text[:300])
    batched = j["data"][2]["embedding"]
    check("batched == alone", max(abs(a - b) for a, b in zip(batched, one)) < 1e-5)
    check("different texts differ", max(abs(a - b) for a, b in zip(j["data"][0]["embedding"], one)) > 1e-3)
    code, text = curl(s, "/v1/embeddings", {"input": "Once upon a time", "encoding_format": "base64"})
    raw = base64.b64decode(json.loads(text)["data"][0]["embedding"])
    decoded = struct.unpack("<%df" % (len(raw) // 4), raw)
    check("base64 embeddings decode to the floats", len(decoded) == 64 and
          max(abs(a - b) for a, b in zip(decoded, one)) < 1e-6)
    for body, param in (({"input": []}, "input"), ({"input": [""]}, "input[0]"), ({"input": "x" * 70000}, "input"),
                        ({"input": ["a"] * 65}, "input"), ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
                        ({}, "input")):
        code, text = curl(s, "/v1/embeddings", body)
        check("embeddings bad %s -> 400" % param, code == 400 and param_of(text) == param, "%d %s" % (code, text))


def classify(s):
    code, text = curl(s, "/v1/classify", {"input": ["The little girl was very", "The dog ran to the"],
                                          "labels": ["happy", "sad", "park"], "priority": "high"})
    j = json.loads(text)
    check("classify 200", code == 200 and j["object"] == "list" and len(j["data"]) == 2, text)
    for d in j["data"]:
        probs = [x["probability"] for x in d["scores"]]
        best = max(d["scores"], key=lambda x: x["logprob"])["label"]
        check("classify scores", [x["label"] for x in d["scores"]] == ["happy", "sad", "park"] and
              abs(sum(probs) - 1) < 1e-6 and all(x["logprob"] < 0 for x in d["scores"]), d)
        check("classify best label", d["label"] == best, d)
    check("classify usage", j["usage"]["prompt_tokens"] > 0, j)
    code, text = curl(s, "/v1/classify", {"input": "Lily was", "labels": ["happy", "sad"],
                                          "template": "Story: {text}\nMood:"})
    check("classify with a template", code == 200 and json.loads(text)["data"][0]["label"] in ("happy", "sad"), text)
    for body, param in (({"input": "x", "labels": []}, "labels"), ({"input": "x"}, "labels"),
                        ({"input": "x", "labels": ["l%d" % i for i in range(65)]}, "labels"),
                        ({"input": ["x"] * 65, "labels": ["a"]}, "input"),
                        ({"input": "x" * 70000, "labels": ["a"]}, "input"),
                        ({"input": "x", "labels": ["a", ""]}, "labels[1]"),
                        ({"input": "x", "labels": ["a"], "template": "no slot"}, "template"),
                        ({"input": "x", "labels": ["a"], "priority": "vip"}, "priority")):
        code, text = curl(s, "/v1/classify", body)
        check("classify bad %s -> 400" % param, code == 400 and param_of(text) == param, "%d %s" % (code, text))
    code, text = curl(s, "/v1/classify", {"input": "x", "labels": ["a"], "model": "nope"})
    check("classify unknown model -> 404", code == 404, text)


def logprobs(s):
    msgs = [{"role": "user", "content": "Tell me a story."}]
    code, text = curl(s, "/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0,
                                                  "logprobs": True, "top_logprobs": 3})
    j = json.loads(text)
    lp = j["choices"][0]["logprobs"]["content"] if code == 200 else []
    check("chat logprobs: one entry per token", code == 200 and len(lp) == j["usage"]["completion_tokens"], text)
    check("chat logprobs: text", "".join(e["token"] for e in lp) == j["choices"][0]["message"]["content"])
    check("chat logprobs: shapes", all(len(e["top_logprobs"]) == 3 and e["logprob"] <= 0 and
                                       bytes(e["bytes"]).decode("utf-8", "replace") == e["token"] for e in lp), lp[:2])
    check("chat logprobs: greedy picks the top", all(e["token"] == e["top_logprobs"][0]["token"] and
                                                     abs(e["logprob"] - e["top_logprobs"][0]["logprob"]) < 1e-6
                                                     for e in lp), lp[:2])
    code, text = curl(s, "/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0,
                                                  "logprobs": True, "top_logprobs": 3, "stream": True})
    chunks = [json.loads(e) for e in sse_events(text)[:-1]]
    streamed = [e for c in chunks if c["choices"] and c["choices"][0].get("logprobs")
                for e in c["choices"][0]["logprobs"]["content"]]
    check("streamed chat logprobs == plain", [(e["token"], round(e["logprob"], 5)) for e in streamed] ==
          [(e["token"], round(e["logprob"], 5)) for e in lp], streamed[:3])
    code, text = curl(s, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0,
                                             "logprobs": 2})
    j = json.loads(text)
    c = j["choices"][0]["logprobs"] if code == 200 else {}
    check("completion logprobs", code == 200 and "".join(c["tokens"]) == j["choices"][0]["text"] and
          len(c["token_logprobs"]) == 10 and all(len(t) <= 2 for t in c["top_logprobs"]) and c["text_offset"][0] == 0,
          text)
    code, text = curl(s, "/v1/chat/completions", {"messages": msgs, "logprobs": True, "top_logprobs": 21})
    check("top_logprobs 21 -> 400", code == 400 and param_of(text) == "top_logprobs", text)
    code, text = curl(s, "/v1/completions", {"prompt": "x", "logprobs": -1})
    check("completion logprobs -1 -> 400", code == 400 and param_of(text) == "logprobs", text)


def ttft_ms(s, priority):
    code, _h, text = s.request("POST", "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 1,
                                                           "priority": priority})
    assert code == 200, text
    return json.loads(text)["timings"]["ttft_ms"]


def priority_flood():
    # A flood of low-priority generations; high-priority requests' time to first token (measured
    # by the server from arrival) against the same requests on the idle server.
    with Serve(BIN, MODEL, "-c", "1024", "--max-tokens-limit", "1000", "--max-queue", "64") as s:
        idle = [ttft_ms(s, "high") for _ in range(7)]
        flood_codes = []

        def low():
            code, _h, _t = s.request("POST", "/v1/completions", {"prompt": "Once upon a time, in a land far away,",
                                                                 "max_tokens": 300, "priority": "low"}, timeout=300)
            flood_codes.append(code)

        threads = [threading.Thread(target=low) for _ in range(32)]
        for t in threads:
            t.start()
        deadline = time.time() + 20
        while s.metrics()["lightboat_requests_running"] < 4 and time.time() < deadline:
            time.sleep(0.01)
        m = s.metrics()
        loaded = [ttft_ms(s, "high") for _ in range(7)]
        for t in threads:
            t.join()
        ratio = statistics.median(loaded) / max(statistics.median(idle), 1e-3)
        print("TTFT high priority (ms): idle median %.2f max %.2f; under a 32-request low-priority flood "
              "(%d running, %d queued when measured) median %.2f max %.2f; ratio of medians %.2f"
              % (statistics.median(idle), max(idle), m["lightboat_requests_running"], m["lightboat_requests_queued"],
                 statistics.median(loaded), max(loaded), ratio))
        check("flood: every low-priority request completed", flood_codes.count(200) == 32, flood_codes)
        # A step of this tiny model is ~1 ms, so the ratio is noisy on a shared machine: the bound
        # is absolute (a high request must not wait for the flood to drain, which takes seconds).
        check("flood: high priority is not queued behind the flood", max(loaded) < 250, loaded)


def main():
    if not os.path.exists(MODEL):
        print("*** SKIPPED server extras tests: %s absent ***" % MODEL)
        return 0
    with Serve(BIN, MODEL) as s:
        embeddings(s)
        classify(s)
        logprobs(s)
        m = s.metrics()
        check("in flight back to 0", m["lightboat_requests_in_flight"] == 0, m)
        check("KV pages released", m['lightboat_kv_cache_pages{state="used"}'] == 0, m)
        check("exit 0 on SIGTERM", s.stop() == 0)
    priority_flood()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
