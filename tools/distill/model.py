"""A Llama model in PyTorch with exactly the forward pass Lightboat runs for general.architecture
"llama" (src/model/llama.cpp, transformer.cpp):

  x = embed(tokens); per layer: x += Wo·attn(rope(Wq·rms(x)), rope(Wk·rms(x)), Wv·rms(x));
  x += Wdown·(silu(Wgate·rms(x)) * Wup·rms(x)); logits = Wout·rms(x)  (Wout = embed when tied)

RoPE pairs are adjacent, (x[2i], x[2i+1]) rotated by pos·base^(-2i/head_dim) (ggml's "normal"
mode, what llama.cpp uses for the llama architecture with GGUF-layout Q/K), so the weights are
exported as they are, with no head permutation. GQA: consecutive query heads share a KV head.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    n_vocab: int = 768
    n_embd: int = 128
    n_layer: int = 3
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 352
    n_ctx: int = 128
    rope_base: float = 10000.0
    rms_eps: float = 1e-5
    tied: bool = True

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg):
    hd = cfg.n_embd // cfg.n_head
    inv = cfg.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # [hd/2]
    ang = torch.arange(cfg.n_ctx, dtype=torch.float64)[:, None] * inv[None, :]  # [ctx, hd/2]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B, H, T, hd]; rotates adjacent pairs."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    r0 = x0 * cos - x1 * sin
    r1 = x0 * sin + x1 * cos
    return torch.stack((r0, r1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, hd = cfg.n_embd, cfg.n_embd // cfg.n_head
        self.cfg = cfg
        self.attn_norm = RMSNorm(d, cfg.rms_eps)
        self.wq = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.wk = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.wv = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.wo = nn.Linear(cfg.n_head * hd, d, bias=False)
        self.ffn_norm = RMSNorm(d, cfg.rms_eps)
        self.w_gate = nn.Linear(d, cfg.n_ff, bias=False)
        self.w_up = nn.Linear(d, cfg.n_ff, bias=False)
        self.w_down = nn.Linear(cfg.n_ff, d, bias=False)

    def forward(self, x, cos, sin, lin):
        c = self.cfg
        B, T, _ = x.shape
        hd = c.n_embd // c.n_head
        h = self.attn_norm(x)
        q = lin(self.wq, h).view(B, T, c.n_head, hd).transpose(1, 2)
        k = lin(self.wk, h).view(B, T, c.n_head_kv, hd).transpose(1, 2)
        v = lin(self.wv, h).view(B, T, c.n_head_kv, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = c.n_head // c.n_head_kv
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, c.n_head * hd)
        x = x + lin(self.wo, o)
        h = self.ffn_norm(x)
        x = x + lin(self.w_down, F.silu(lin(self.w_gate, h)) * lin(self.w_up, h))
        return x


def plain_linear(layer, x):
    return layer(x)


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_vocab, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.out = None if cfg.tied else nn.Linear(cfg.n_embd, cfg.n_vocab, bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        # Quantization-aware training swaps these for fake-quantizing versions (qat.py).
        self.lin = plain_linear
        self.embed_weight = lambda: self.embed.weight
        self.reset()

    def reset(self):
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, std)
                if name.endswith(("wo.weight", "w_down.weight")):
                    p.data.mul_(1.0 / math.sqrt(2 * self.cfg.n_layer))

    def forward(self, tokens, hidden=False):
        """tokens [B, T] -> logits [B, T, V] (and the residual stream after each layer)."""
        T = tokens.shape[1]
        w = self.embed_weight()
        x = F.embedding(tokens, w)
        cos, sin = self.cos[:T], self.sin[:T]
        states = []
        for b in self.blocks:
            x = b(x, cos, sin, self.lin)
            states.append(x)
        x = self.norm(x)
        logits = x @ w.t() if self.out is None else self.lin(self.out, x)
        return (logits, states) if hidden else logits

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


def load(path):
    ck = torch.load(path, map_location="cpu")
    m = Llama(Config(**ck["config"]))
    m.load_state_dict(ck["state"])
    return m


def save(model, path, extra=None):
    torch.save({"config": model.cfg.to_dict(), "state": model.state_dict(), **(extra or {})}, path)
