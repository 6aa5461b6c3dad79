"""Checks that tok.Encoder (the ids the models were trained on) equals Lightboat's tokenizer on the
chat-formatted held-out examples: `lightboat tokenize` on each prompt + answer.

  tokcheck.py LIGHTBOAT MODEL.gguf VOCAB.json HELDOUT.jsonl
"""
import json
import subprocess
import sys
import tempfile

import tok


def main():
    lb, model, vocab_path, data = sys.argv[1:5]
    v = json.load(open(vocab_path))
    enc = tok.Encoder(v["pieces"], v["scores"], v["types"])
    n = 0
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        for line in open(data):
            ex = json.loads(line)
            text = tok.prompt_text(ex["prompt"]) + ex["answer"] + tok.IM_END
            f.seek(0)
            f.truncate()
            f.write(text)
            f.flush()
            got = json.loads(subprocess.run([lb, "tokenize", "-m", model, "--json", "-f", f.name],
                                            capture_output=True, text=True, check=True).stdout)["tokens"]
            want = enc.encode(text)
            assert got == want, "tokenization differs on %r:\n lightboat %s\n python    %s" % (text, got, want)
            n += 1
            if n == 100:
                break
    print("tokcheck: %d chat texts tokenize identically in Python and Lightboat" % n)


if __name__ == "__main__":
    main()
