"""Fake quantization of weights with GGUF's block-32 formats, for quantization-aware training.

Per block of 32 consecutive values of a row (the layout `lightboat quantize` writes):
  Q8_0: d = max|x| / 127, q = round(x / d) in [-127, 127], x' = d·q.
  Q4_0: m = the value of largest magnitude (with its sign), d = m / -8,
        q = min(15, trunc(x / d + 8.5)), x' = d·(q - 8).
The scale divides in fp32 and is stored as fp16, so the dequantized value uses the fp16 scale
(as the engine's reference quantizer, src/kernels/reference/quants_32.cpp, does). The straight-through estimator passes the
gradient of x' to x unchanged (x' = x + (fake(x) - x).detach()).
"""
import torch
import torch.nn.functional as F


def _blocks(w):
    assert w.shape[-1] % 32 == 0, "row length %d is not a multiple of 32" % w.shape[-1]
    return w.reshape(-1, 32)


def fake_q8_0(w):
    b = _blocks(w)
    amax = b.abs().amax(dim=1, keepdim=True)
    d = amax / 127.0
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(b * inv).clamp(-127, 127)
    return (q * d.half().float()).reshape(w.shape)


def fake_q4_0(w):
    b = _blocks(w)
    idx = b.abs().argmax(dim=1, keepdim=True)
    m = torch.gather(b, 1, idx)
    d = m / -8.0
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    q = torch.trunc(b * inv + 8.5).clamp(0, 15)
    return ((q - 8.0) * d.half().float()).reshape(w.shape)


FAKE = {"Q8_0": fake_q8_0, "Q4_0": fake_q4_0}


def ste(w, fn):
    return w + (fn(w.detach()) - w).detach()


def enable(model, matrix_type, embed_type=None):
    """Fake-quantizes every matrix as `lightboat quantize ... TYPE` stores it: layer matrices in
    matrix_type; the (tied) token embedding in embed_type (Q8_0 for a Q4_0 file: the mixture gives
    it Q6_K, whose 256-blocks do not fit a 128-wide row, so it falls back to Q8_0)."""
    mf = FAKE[matrix_type]
    ef = FAKE[embed_type or matrix_type]
    model.lin = lambda layer, x: F.linear(x, ste(layer.weight, mf))
    model.embed_weight = lambda: ste(model.embed.weight, ef)


def disable(model):
    from model import plain_linear
    model.lin = plain_linear
    model.embed_weight = lambda: model.embed.weight
