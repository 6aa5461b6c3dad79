"""Step 3: dump a checkpoint for distill_export (the C++ tool that writes the GGUF through
Lightboat's own writer), and reference logits for the engine check.

  export.py dump CKPT.pt --work W --out PREFIX --name NAME
      -> PREFIX.json (hyper-parameters, vocabulary, chat template, tensor directory)
         PREFIX.bin  (the tensors, fp32 little-endian, back to back)
  export.py reference CKPT.pt --work W --prompt TEXT --out REF.json [--top 8] [--fake Q8_0|Q4_0]
      -> PyTorch's tokens and top logits at every prompt position (what `lightboat logits` prints)

Tensor names and layouts are llama.cpp's: a [out, in] PyTorch weight is a GGUF tensor of
ne = [in, out] with the same bytes (ne[0] innermost).
"""
import argparse
import json

import numpy as np
import torch

import model as M
import qat
import tok


def tensors_of(m):
    c = m.cfg
    yield "token_embd.weight", m.embed.weight
    for il, b in enumerate(m.blocks):
        p = "blk.%d." % il
        yield p + "attn_norm.weight", b.attn_norm.weight
        yield p + "attn_q.weight", b.wq.weight
        yield p + "attn_k.weight", b.wk.weight
        yield p + "attn_v.weight", b.wv.weight
        yield p + "attn_output.weight", b.wo.weight
        yield p + "ffn_norm.weight", b.ffn_norm.weight
        yield p + "ffn_gate.weight", b.w_gate.weight
        yield p + "ffn_up.weight", b.w_up.weight
        yield p + "ffn_down.weight", b.w_down.weight
    yield "output_norm.weight", m.norm.weight
    if not c.tied:
        yield "output.weight", m.out.weight


def dump(a):
    m = M.load(a.ckpt)
    vocab = json.load(open(a.work + "/vocab.json"))
    c = m.cfg
    directory, offset = [], 0
    with open(a.out + ".bin", "wb") as f:
        for name, w in tensors_of(m):
            arr = w.detach().float().numpy().astype("<f4")
            f.write(arr.tobytes())
            directory.append({"name": name, "ne": list(reversed(arr.shape)), "offset": offset})
            offset += arr.nbytes
    head = {"name": a.name, "hparams": c.to_dict(), "tokens": vocab["pieces"], "scores": vocab["scores"],
            "types": vocab["types"], "bos": 1, "eos": vocab["pieces"].index(tok.IM_END), "unk": 0,
            "chat_template": tok.CHAT_TEMPLATE, "tensors": directory}
    json.dump(head, open(a.out + ".json", "w"))
    print("dump: %s.{json,bin}: %d tensors, %d parameters" % (a.out, len(directory), offset // 4))


def reference(a):
    torch.set_num_threads(1)
    m = M.load(a.ckpt).eval()
    if a.fake:
        qat.enable(m, a.fake, "Q8_0")
    vocab = json.load(open(a.work + "/vocab.json"))
    enc = tok.Encoder(vocab["pieces"], vocab["scores"], vocab["types"])
    ids = enc.encode(a.prompt)  # BOS + the text (no special tokens in it)
    with torch.no_grad():
        logits = m(torch.tensor([ids]))[0].double().numpy()  # [T, V]
    positions = []
    for p in range(len(ids)):
        row = logits[p]
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:a.top]
        positions.append({"pos": p, "top": [[i, float(row[i])] for i in order],
                          "sum": float(row.sum()), "sumsq": float((row * row).sum())})
    out = {"prompt": a.prompt, "tokens": ids, "fake_quant": a.fake or "", "positions": positions}
    json.dump(out, open(a.out, "w"), indent=1)
    print("reference: %d tokens -> %s" % (len(ids), a.out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["dump", "reference"])
    ap.add_argument("ckpt")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="lightboat-home")
    ap.add_argument("--prompt", default="please unlock the front door")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--fake", choices=["Q8_0", "Q4_0"])
    a = ap.parse_args()
    dump(a) if a.what == "dump" else reference(a)


if __name__ == "__main__":
    main()
