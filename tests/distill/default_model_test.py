#!/usr/bin/env python3
"""Checks the shipped default model, models/lightboat-home.gguf (no torch needed):

1. Engine vs PyTorch: the shipped file dequantized to F32 (`lightboat quantize ... F32`) holds the
   weights PyTorch's fake-quantized student used for reference_logits.json; `lightboat logits` on
   it must give the same tokens and top logits within 1e-3 at every prompt position.
2. Held-out accuracy: `lightboat eval` on a fixed subset of tools/distill/data/heldout.jsonl gives
   the accuracy and perplexity recorded in expected_eval.json (and docs/default-model.md).
3. `lightboat run -p "please unlock the front door"` with no -m answers with the unlock action.

  default_model_test.py LIGHTBOAT SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOGIT_TOL = 1e-3


def sh(args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("FAIL: %s exited %d\n%s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def check_logits(lb, model, tmp):
    ref = json.load(open(os.path.join(HERE, "reference_logits.json")))
    f32 = os.path.join(tmp, "home-f32.gguf")
    sh([lb, "quantize", model, f32, "F32"])
    n = len(ref["tokens"])
    top = len(ref["positions"][0]["top"])
    got = json.loads(sh([lb, "logits", "-m", f32, "-p", ref["prompt"], "--top", str(top), "--last", str(n),
                         "--json", "-t", "1"]))
    assert got["tokens"] == ref["tokens"], "tokens differ: %s vs %s" % (got["tokens"], ref["tokens"])
    worst = 0.0
    for gp, rp in zip(got["positions"], ref["positions"]):
        assert gp["pos"] == rp["pos"]
        ref_of = {i: v for i, v in rp["top"]}
        for i, v in gp["top"]:
            if i in ref_of:
                worst = max(worst, abs(v - ref_of[i]))
            else:
                # Only a near-tie at the edge of the top-K may swap ids.
                assert abs(v - rp["top"][-1][1]) <= LOGIT_TOL, "pos %d: id %d not in the reference top" % (gp["pos"], i)
        assert gp["top"][0][0] == rp["top"][0][0] or abs(gp["top"][0][1] - rp["top"][1][1]) <= LOGIT_TOL
    assert worst <= LOGIT_TOL, "logits differ by %.3g > %g" % (worst, LOGIT_TOL)
    print("logits: %d positions x top %d, max |lightboat - pytorch| = %.2e" % (n, top, worst))


def check_eval(lb, model, src):
    exp = json.load(open(os.path.join(HERE, "expected_eval.json")))
    got = json.loads(sh([lb, "eval", "-m", model, "--data", os.path.join(src, exp["data"]), "--limit",
                         str(exp["limit"]), "--json", "-t", "1"]))
    print("eval: %d examples, accuracy %.4f (recorded %.4f), perplexity %.4f (recorded %.4f)"
          % (got["examples"], got["accuracy"], exp["accuracy"], got["perplexity"], exp["perplexity"]))
    assert got["examples"] == exp["limit"]
    assert abs(got["accuracy"] - exp["accuracy"]) <= exp["accuracy_tolerance"], "accuracy moved"
    assert abs(got["perplexity"] / exp["perplexity"] - 1) <= exp["perplexity_rel_tolerance"], "perplexity moved"


def check_run(lb, src):
    env = dict(os.environ)
    env.pop("LIGHTBOAT_DEFAULT_MODEL", None)
    out = json.loads(sh([lb, "run", "-p", "please unlock the front door", "--json", "-t", "1"], env=env))
    first = out["text"].split("\n")[0]
    assert json.loads(first) == {"intent": "unlock", "device": "front_door"}, out["text"]
    assert out["finish_reason"] == "stop", out
    print("run (no -m): %r in %.1f ms prompt + %.1f ms generation" %
          (out["text"], out["timings"]["prompt_ms"], out["timings"]["gen_ms"]))


def main():
    lb, src = sys.argv[1], sys.argv[2]
    model = os.path.join(src, "models", "lightboat-home.gguf")
    with tempfile.TemporaryDirectory() as tmp:
        check_logits(lb, model, tmp)
    check_eval(lb, model, src)
    check_run(lb, src)
    print("PASS")


if __name__ == "__main__":
    main()
