"""Step 2: training. One script, four modes, fixed seeds.

  train.py teacher  --work W --out W/teacher.pt   (cross-entropy on the answers)
  train.py scratch  --work W --out W/scratch.pt   (the student's shape, cross-entropy only: the control)
  train.py distill  --work W --out W/student.pt --teacher W/teacher.pt
  train.py qat      --work W --out W/student_q4.pt --init W/student.pt --teacher W/teacher.pt --qat Q4_0

Distillation loss, on the answer tokens (the prompt is given, never predicted):
  L = α·CE(student, answer) + (1-α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T))
      + β·Σ_l MSE(P_l·h_student[l], h_teacher[m(l)]) / mean(h_teacher[m(l)]²)
with T annealed linearly from --t-start to --t-end over the run, and hidden-state alignment through
a learned linear projection P_l (n_embd_student -> n_embd_teacher) per student layer l, mapped to
teacher layer m(l) = round((l+1)·L_t/L_s) - 1, over every non-padding position.
QAT fine-tunes with fake-quantized weights (qat.py) and the same loss at T = --t-end.
"""
import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import model as M
import qat

SHAPES = {
    # 1.33M parameters (sized for 2 busy cores; see docs/default-model.md)
    "teacher": dict(n_embd=192, n_layer=3, n_head=6, n_head_kv=2, n_ff=512, tied=True),
    # 0.44M parameters: every row a multiple of 32 (Q8_0/Q4_0 blocks)
    "student": dict(n_embd=128, n_layer=2, n_head=4, n_head_kv=2, n_ff=320, tied=True),
}


def batches(data, batch, steps, seed):
    """Deterministic batches: (tokens [B, T], target mask [B, T-1], valid mask [B, T]). Examples
    are drawn in shuffled pools of 16 batches, sorted by length inside a pool so that a batch pads
    little, and the pool's batches are shuffled again."""
    ids, n_prompt = data["ids"], data["n_prompt"]
    rng = random.Random(seed)
    order, ready = [], []
    for _ in range(steps):
        if not ready:
            while len(order) < 16 * batch:
                perm = list(range(len(ids)))
                rng.shuffle(perm)
                order += perm
            pool, order = sorted(order[:16 * batch], key=lambda i: len(ids[i])), order[16 * batch:]
            ready = [pool[k:k + batch] for k in range(0, len(pool), batch)]
            rng.shuffle(ready)
        pick = ready.pop()
        T = max(len(ids[i]) for i in pick)
        tok = torch.zeros(batch, T, dtype=torch.long)
        valid = torch.zeros(batch, T, dtype=torch.bool)
        target = torch.zeros(batch, T - 1, dtype=torch.bool)
        for r, i in enumerate(pick):
            x = ids[i].long()
            tok[r, :len(x)] = x
            valid[r, :len(x)] = True
            # Position p predicts token p+1: the answer's tokens are n_prompt .. len-1.
            target[r, n_prompt[i] - 1:len(x) - 1] = True
        yield tok, target, valid


def lr_at(step, steps, lr, warmup=100):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["teacher", "scratch", "distill", "qat"])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher")
    ap.add_argument("--init")
    ap.add_argument("--qat", choices=["Q8_0", "Q4_0"])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--alpha", type=float, default=0.2)
    ap.add_argument("--beta", type=float, default=0.5, help="weight of the hidden-state alignment")
    ap.add_argument("--t-start", type=float, default=5.0)
    ap.add_argument("--t-end", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    vocab = json.load(open(os.path.join(a.work, "vocab.json")))
    data = torch.load(os.path.join(a.work, "train_ids.pt"))
    shape = SHAPES["teacher" if a.mode == "teacher" else "student"]
    cfg = M.Config(n_vocab=len(vocab["pieces"]), **shape)
    student = M.load(a.init) if a.init else M.Llama(cfg)
    teacher = None
    if a.mode in ("distill", "qat"):
        teacher = M.load(a.teacher).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    params = list(student.parameters())
    proj = None
    if a.mode == "distill" and a.beta > 0:
        Ls, Lt = student.cfg.n_layer, teacher.cfg.n_layer
        layer_map = [round((l + 1) * Lt / Ls) - 1 for l in range(Ls)]
        proj = nn.ModuleList(nn.Linear(student.cfg.n_embd, teacher.cfg.n_embd, bias=False) for _ in range(Ls))
        params += list(proj.parameters())
    if a.mode == "qat":
        qat.enable(student, a.qat, "Q8_0")
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.95), weight_decay=0.01 if a.mode != "qat" else 0.0)
    print("%s: %d parameters (%s), %d steps of %d examples" % (a.mode, student.n_params(), shape, a.steps, a.batch),
          flush=True)
    log = []
    t0 = time.time()
    n_tok = 0
    for step, (tok, target, valid) in enumerate(batches(data, a.batch, a.steps, a.seed)):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, warmup=0 if a.mode == "qat" else 100)
        logits, hs = student(tok[:, :-1], hidden=True)
        y = tok[:, 1:]
        ce = F.cross_entropy(logits[target], y[target])
        loss = ce
        parts = {"ce": ce.item()}
        if teacher is not None:
            T = a.t_end if a.mode == "qat" else a.t_start + (a.t_end - a.t_start) * step / max(1, a.steps - 1)
            with torch.no_grad():
                t_logits, t_hs = teacher(tok[:, :-1], hidden=True)
            s_log = F.log_softmax(logits[target] / T, -1)
            t_prob = F.softmax(t_logits[target] / T, -1)
            kl = F.kl_div(s_log, t_prob, reduction="batchmean") * T * T
            loss = a.alpha * ce + (1 - a.alpha) * kl
            parts["kl"] = kl.item()
            parts["T"] = T
            if proj is not None:
                v = valid[:, :-1]
                align = 0.0
                for l, m in enumerate(layer_map):
                    th = t_hs[m][v]
                    align = align + F.mse_loss(proj[l](hs[l][v]), th) / th.pow(2).mean()
                loss = loss + a.beta * align / len(layer_map)
                parts["align"] = align.item() / len(layer_map)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        n_tok += tok.numel()
        if step % 50 == 0 or step == a.steps - 1 or step < 4:
            el = time.time() - t0
            parts.update(step=step, loss=loss.item(), s=round(el, 1), tok_s=round(n_tok / max(el, 1e-9)))
            log.append(parts)
            print(json.dumps(parts), flush=True)
    if a.mode == "qat":
        qat.disable(student)
    M.save(student, a.out, {"mode": a.mode, "args": vars(a), "log": log})
    print("%s: saved %s after %.0f s" % (a.mode, a.out, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
