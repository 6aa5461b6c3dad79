#!/usr/bin/env python3
"""End-to-end checks of `lightboat info` and `lightboat run --chat` on the shared fixtures.

Usage: chat_info_test.py LIGHTBOAT_BINARY SHARED_DIR
"""
import json
import os
import subprocess
import sys

BIN, SHARED = sys.argv[1], sys.argv[2]
FIX = os.path.join(SHARED, "fixtures")
failures = []


def run(args, stdin=b"", timeout=120, env=None):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, cond, detail=""):
    if not cond:
        failures.append("%s %s" % (name, detail))


def info_json(path):
    rc, out, err = run(["info", "--json", path])
    check("info --json %s exit" % os.path.basename(path), rc == 0, err)
    return json.loads(out) if rc == 0 else {}


if not os.path.isdir(FIX):
    print("*** SKIPPED: fixtures absent at %s ***" % FIX)
    sys.exit(0)

stories = os.path.join(FIX, "stories260K", "stories260K-F32.gguf")

# --- info ---
j = info_json(stories)
check("info arch", j.get("architecture") == "llama", j)
check("info params", j.get("parameters") == 292800, j)  # sum of tensor elements
check("info tensor types", j.get("tensor_types") == {"F32": {"count": 48, "bytes": 1171200}}, j)
check("info shape", (j.get("context_length"), j.get("embedding_length"), j.get("block_count"), j.get("head_count"),
                     j.get("head_count_kv")) == (128, 64, 5, 8, 4), j)
check("info file size", j.get("file_size") == os.path.getsize(stories), j)
check("info tokenizer", j.get("tokenizer", {}).get("model") == "llama" and j["tokenizer"].get("vocab_size") == 512, j)
check("info no chat template", j.get("chat_template", {}).get("present") is False, j)

q = info_json(os.path.join(FIX, "arch", "tiny-qwen2-Q8_0.gguf"))
check("info qwen2", q.get("architecture") == "qwen2" and "Q8_0" in q.get("tensor_types", {})
      and q.get("tokenizer", {}).get("vocab_size") == 512, q)

phi = info_json(os.path.join(FIX, "tokenizer", "ggml-vocab-phi-3.gguf"))
ct = phi.get("chat_template", {})
check("info phi-3 chat template", ct.get("present") and ct.get("family") == "phi3" and ct.get("renders")
      and ct.get("system_role") is False, phi)
check("info vocab-only file", phi.get("parameters") == 0 and phi.get("tensors") == 0, phi)

rc, out, err = run(["info", stories])
check("info text", rc == 0 and "architecture" in out and "292.80 K" in out and "F32 48" in out, out + err)
rc, out, err = run(["info", "-m", os.path.join(FIX, "arch", "tiny-gemma2-Q4_0.gguf")])
check("info -m", rc == 0 and "gemma2" in out and "Q4_0" in out, out + err)
rc, _, err = run(["info", os.path.join(FIX, "no-such.gguf")])
check("info missing file", rc == 3 and "no-such.gguf" in err, err)
rc, out, err = run(["info"])
check("info without a model describes the built-in one", rc == 0 and "llama" in out, out + err)
no_default = dict(os.environ, LIGHTBOAT_DEFAULT_MODEL=os.path.join(FIX, "absent.gguf"))
rc, _, err = run(["info"], env=no_default)
check("info without a model or a built-in one", rc == 3 and "absent.gguf" in err and "-m" in err, err)

# --- run --chat ---
common = ["-m", stories, "--temp", "0", "-n", "16", "-c", "512", "-t", "2"]
rc, out, err = run(["run", "--chat"] + common, stdin=b"Once upon a time\nThe cat sat\n\nLily went home\n")
check("chat exit 0 at EOF", rc == 0, err)
check("chat warns about ChatML", "no chat template" in err and "ChatML" in err, err)
turns = [l for l in err.splitlines() if l.startswith("turn ")]
check("chat answered three turns (blank line skipped)", len(turns) == 3, err)
check("chat answers on stdout", len(out.strip()) > 0 and out.count("\n") >= 3, repr(out))
cached = [int(l.split("(")[1].split()[0]) for l in turns]
check("chat reuses the KV cache", len(cached) == 3 and cached[0] == 0 and cached[1] > 0 and cached[2] > cached[1],
      err)

# The first answer is what a plain run gives on the ChatML-formatted prompt.
rc1, plain, err1 = run(["run", "-p", "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n"] + common)
check("chat turn 1 = plain run on the formatted prompt", rc1 == 0 and out.startswith(plain), repr(out) + repr(plain))

# -p is the first user turn; --system adds the system message (the prompt grows with it).
rc, out_p, err = run(["run", "--chat", "-p", "Once upon a time", "--system", "Tell a story."] + common, stdin=b"")
turns_p = [l for l in err.splitlines() if l.startswith("turn ")]
check("chat -p --system", rc == 0 and len(turns_p) == 1 and len(out_p.strip()) > 0, err)
n_with_system = int(turns_p[0].split("prompt ")[1].split()[0]) if turns_p else 0
n_without = int(turns[0].split("prompt ")[1].split()[0]) if turns else 0
check("chat --system is in the prompt", n_with_system > n_without, err)

rc, _, err = run(["run", "--system", "x", "-m", stories, "-p", "x"])
check("--system needs --chat", rc == 2, err)
rc, _, err = run(["run", "--chat", "--json", "-m", stories])
check("--chat excludes --json", rc == 2, err)
# A conversation that outgrows the context is a clear error, not a crash.
rc, _, err = run(["run", "--chat", "-m", stories, "--temp", "0", "-n", "4"], stdin=b"x " * 300 + b"\n")
check("chat context overflow", rc == 2 and "context" in err, err)

for f in failures:
    print("FAIL", f)
print("cli chat/info: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
