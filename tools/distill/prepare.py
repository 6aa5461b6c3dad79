"""Step 1: the corpus, the held-out set and the tokenizer.

  prepare.py --out WORK [--n-train 60000] [--vocab 768]

Writes WORK/train.jsonl, WORK/spm.model, WORK/vocab.json, WORK/train_ids.pt (token ids and the
prompt length of every training example) and data/heldout.jsonl beside this script (committed:
the evaluation set `lightboat eval` reads).
"""
import argparse
import json
import os

import torch

import corpus
import tok

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-train", type=int, default=60000)
    ap.add_argument("--n-heldout", type=int, default=300)
    ap.add_argument("--vocab", type=int, default=768)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    train = corpus.train_set(a.n_train, a.seed)
    heldout = corpus.heldout_set(a.n_heldout, a.seed + 1)
    with open(os.path.join(a.out, "train.jsonl"), "w") as f:
        for e in train:
            f.write(json.dumps(e) + "\n")
    os.makedirs(os.path.join(HERE, "data"), exist_ok=True)
    with open(os.path.join(HERE, "data", "heldout.jsonl"), "w") as f:
        for e in heldout:
            f.write(json.dumps({"prompt": e["prompt"], "answer": e["answer"]}) + "\n")

    # SentencePiece reads one sentence per line: the user texts and both answer lines, apart.
    sentences = os.path.join(a.out, "sentences.txt")
    with open(sentences, "w") as f:
        for e in train:
            f.write(e["prompt"] + "\n")
            f.write(e["answer"] + "\n")  # JSON line, newline, spoken line: two sentences
        # The chat template's role names, often enough to become whole pieces.
        f.write("user\nassistant\n" * 2000)
    prefix = os.path.join(a.out, "spm")
    tok.train(sentences, prefix, a.vocab)
    pieces, scores, types = tok.vocab_of(prefix + ".model")
    tok.save_vocab(os.path.join(a.out, "vocab.json"), pieces, scores, types)
    enc = tok.Encoder(pieces, scores, types)
    ids, n_prompt = [], []
    for e in train:
        x, n = tok.example_ids(enc, e)
        ids.append(torch.tensor(x, dtype=torch.int16))
        n_prompt.append(n)
    lens = [len(x) for x in ids]
    torch.save({"ids": ids, "n_prompt": n_prompt}, os.path.join(a.out, "train_ids.pt"))
    print("prepare: %d train, %d held-out examples; vocab %d; tokens/example mean %.1f max %d"
          % (len(train), len(heldout), len(pieces), sum(lens) / len(lens), max(lens)))
    print("example:", [pieces[i] for i in ids[0].tolist()])


if __name__ == "__main__":
    main()
