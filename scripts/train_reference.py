#!/usr/bin/env python3
"""An independent PyTorch implementation of learn-stream's training step, for `scripts/bench-train.sh`.

Same towers as the defaults (pre-LN causal transformer, d_model 128, 4 heads, 2 layers, FFN 4x, erf-GELU, out 64,
L2-normalised; the item tower is the same module on one item in its own position slot, no dropout on candidates),
same whitened MiniLM-width content, same synthetic catalogue shape and sequences as `benches/training.rs`, same
recipe (all-positions targets; the online step supervises the last `recent` positions; softmax over the whole
catalogue (`--negatives all`) or over the batch's targets + N uniform draws with the logQ correction
(`--negatives mixed`); logits = 20 x cosine; AdamW lr 1e-3, wd 0.01; global clip 1.0). CPU, 2 threads.

    python3 scripts/train_reference.py online 4385 [--batch 64] [--steps 10] [--negatives all|mixed] [--samples 1024]
    python3 scripts/train_reference.py offline 20000 [--batch 512] [--steps 5]

Prints one JSON line with the fields the Rust benchmark prints.
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

D_MODEL, HEADS, LAYERS, OUT_DIM, MAX_LEN, DROPOUT = 128, 4, 2, 64, 50, 0.3
CONTENT_DIM, CLUSTERS, OFFLINE_MAX_LEN, RECENT, SCALE = 384, 50, 16, 5, 20.0


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D_MODEL, eps=1e-6)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.norm2 = nn.LayerNorm(D_MODEL, eps=1e-6)
        self.up = nn.Linear(D_MODEL, 4 * D_MODEL)
        self.down = nn.Linear(4 * D_MODEL, D_MODEL)

    def forward(self, x, train):
        b, l, d = x.shape
        p = DROPOUT if train else 0.0
        q, k, v = self.qkv(self.norm1(x)).view(b, l, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + F.dropout(self.proj(ctx.transpose(1, 2).reshape(b, l, d)), p, train)
        return x + F.dropout(self.down(F.gelu(self.up(self.norm2(x)))), p, train)


class Tower(nn.Module):
    def __init__(self):
        super().__init__()
        self.adapter = nn.Linear(CONTENT_DIM, D_MODEL)
        self.positions = nn.Embedding(MAX_LEN + 1, D_MODEL)
        self.input_norm = nn.LayerNorm(D_MODEL, eps=1e-6)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.final_norm = nn.LayerNorm(D_MODEL, eps=1e-6)
        self.out = nn.Linear(D_MODEL, OUT_DIM)

    def forward(self, content, positions, train):
        x = F.dropout(self.input_norm(self.adapter(content) + self.positions(positions)), DROPOUT if train else 0.0, train)
        for block in self.blocks:
            x = block(x, train)
        return F.normalize(self.out(self.final_norm(x)), dim=-1)

    def users(self, content):  # (b, l, dim) -> (b, l, out)
        return self.forward(content, torch.arange(content.shape[1]), True)

    def items(self, content):  # (n, dim) -> (n, out), the item slot, no dropout on candidates
        return self.forward(content[:, None, :], torch.tensor([MAX_LEN]), False)[:, 0]


def gauss(rng, n):
    return rng.standard_normal(n).astype(np.float32)


def catalogue(items, rng):
    centres = gauss(rng, CLUSTERS * CONTENT_DIM).reshape(CLUSTERS, CONTENT_DIM)
    rows = centres[np.arange(items) % CLUSTERS] + 0.7 * gauss(rng, items * CONTENT_DIM).reshape(items, CONTENT_DIM)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def whiten(table):
    """normalise((x - mu) W), W = L^-T for C + eps I = L L^T (learn-stream's `towers.whiten`)."""
    rows = table[:: max(1, math.ceil(len(table) / 20000))].astype(np.float64)
    mu = rows.mean(0)
    cov = np.cov(rows - mu, rowvar=False, bias=True)
    d = cov.shape[0]
    cov += np.eye(d) * np.trace(cov) / d * max(1.0, d / len(rows))
    w = np.linalg.inv(np.linalg.cholesky(cov)).T
    out = (table - mu) @ w
    return torch.from_numpy((out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32))


def sequence(items, length, rng):
    cluster = rng.integers(0, min(CLUSTERS, items))
    per = math.ceil(items / CLUSTERS)
    return (rng.integers(0, per, length) * CLUSTERS + cluster) % items


def loss_over(anchors, tower, content, targets, args, rng, items):
    if args.negatives == "all":
        candidates = tower.items(content)
        logits = anchors @ candidates.T * SCALE
        return F.cross_entropy(logits, targets)
    # Mixed: the batch's targets + uniform draws, logQ-corrected (uniform shares here).
    drawn = torch.from_numpy(rng.integers(0, items, args.samples))
    columns, inverse = torch.unique(torch.cat([targets, drawn]), return_inverse=True)
    candidates = tower.items(content[columns])
    log_q = math.log(len(targets) / items + args.samples / items)
    logits = anchors @ candidates.T * SCALE - log_q
    return F.cross_entropy(logits, inverse[: len(targets)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["online", "offline"])
    ap.add_argument("items", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--negatives", choices=["all", "mixed"], default="all")
    ap.add_argument("--samples", type=int, default=1024)
    args = ap.parse_args()
    online = args.mode == "online"
    batch = args.batch or (64 if online else 512)
    steps = args.steps or (10 if online else 5)
    torch.set_num_threads(2)
    torch.manual_seed(42)
    rng = np.random.default_rng(7)
    content = whiten(catalogue(args.items, rng))
    tower = Tower()
    optimizer = torch.optim.AdamW(tower.parameters(), lr=1e-3, weight_decay=0.01)
    times, pairs = [], []
    for _ in range(steps + 1):
        if online:
            seqs = np.stack([sequence(args.items, MAX_LEN + RECENT, rng) for _ in range(batch)])
            window = torch.from_numpy(seqs[:, -(MAX_LEN + 1):])
            history, targets = window[:, :-1], window[:, 1:]
            positions = torch.arange(MAX_LEN - RECENT, MAX_LEN)
        else:
            lens = rng.integers(2, OFFLINE_MAX_LEN + 1, batch)
            seqs = [sequence(args.items, n, rng) for n in lens]
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if online:
            out = tower.users(content[history])
            anchors = out[:, positions].reshape(-1, OUT_DIM)
            targets = targets[:, positions].reshape(-1)
        else:
            length = max(len(s) for s in seqs) - 1
            ids = torch.zeros(batch, length, dtype=torch.long)
            rows, cols, target = [], [], []
            for b, s in enumerate(seqs):
                ids[b, : len(s) - 1] = torch.from_numpy(s[:-1])
                rows += [b] * (len(s) - 1)
                cols += list(range(len(s) - 1))
                target += list(s[1:])
            out = tower.users(content[ids])
            anchors = out[torch.tensor(rows), torch.tensor(cols)]
            targets = torch.tensor(target)
        loss = loss_over(anchors, tower, content, targets, args, rng, args.items)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tower.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - started)
        pairs.append(len(targets))
    steady = sorted(times[1:])
    median = steady[len(steady) // 2]
    print(json.dumps({
        "impl": "pytorch " + torch.__version__, "mode": args.mode, "items": args.items, "batch": batch,
        "steps": len(steady), "first_step_s": round(times[0], 4), "step_s": round(median, 4),
        "steps_per_s": round(1 / median, 3), "pairs_per_s": round(sum(pairs[1:]) / sum(times[1:]), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
