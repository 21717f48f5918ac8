#!/usr/bin/python3
"""A tiny character-level transformer (2 layers, d = 128, 4 heads, causal) on a real text that
Debian ships: the word list of `wamerican` (/usr/share/dict/american-english, ~100k words),
words joined by newlines. A fixed 10% of the words (seeded shuffle) is held out; the
held-out loss is the mean next-character cross entropy on it (nats/char).

Attention and MLP weights are matrices (Polar Express under muond), embeddings, norms and
the output head AdamW: muond.layout_from_model's defaults.

    muond launch -n 4 --from-model client/python/examples/char_transformer.py:make_model \\
        -- python3 client/python/examples/char_transformer.py [--steps 600] [--csv F]
    python3 client/python/examples/char_transformer.py --optimizer adamw [--csv F]
"""

import argparse
import json
import math
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

WORDS = pathlib.Path("/usr/share/dict/american-english")
HELD_OUT = 0.10
SPLIT_SEED = 1234
CONTEXT = 64
D_MODEL, HEADS, LAYERS = 128, 4, 2


def vocabulary():
    """Lowercase letters, the apostrophe and newline: the words that use other characters
    (accents, capitals are lowercased) are dropped."""
    return ["\n", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def load_text():
    if not WORDS.exists():
        sys.exit(f"char_transformer: {WORDS} is missing (apt-get install wamerican)")
    chars = set(vocabulary())
    words = [w.lower() for w in WORDS.read_text(encoding="utf-8").split()]
    words = [w for w in words if set(w) <= chars]
    order = torch.randperm(len(words), generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = int(len(words) * HELD_OUT)
    index = {c: i for i, c in enumerate(vocabulary())}

    def encode(ids):
        text = "\n".join(words[i] for i in ids.tolist()) + "\n"
        return torch.tensor([index[c] for c in text], dtype=torch.long)
    return encode(order[cut:]), encode(order[:cut])


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(D_MODEL)
        self.qkv = torch.nn.Linear(D_MODEL, 3 * D_MODEL)
        self.proj = torch.nn.Linear(D_MODEL, D_MODEL)
        self.ln2 = torch.nn.LayerNorm(D_MODEL)
        self.fc = torch.nn.Linear(D_MODEL, 4 * D_MODEL)
        self.out = torch.nn.Linear(4 * D_MODEL, D_MODEL)
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def attention(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, HEADS, D_MODEL // HEADS).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_MODEL // HEADS) + self.mask[:t, :t]
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, D_MODEL))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class CharTransformer(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, D_MODEL)
        self.position = torch.nn.Embedding(CONTEXT, D_MODEL)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = torch.nn.LayerNorm(D_MODEL)
        self.head = torch.nn.Linear(D_MODEL, vocab)

    def forward(self, ids):
        x = self.embed(ids) + self.position(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def make_model(seed=0):
    torch.manual_seed(seed)
    return CharTransformer(len(vocabulary()))


def windows(data, starts):
    idx = starts[:, None] + torch.arange(CONTEXT + 1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def held_out_loss(model, data, count=256):
    starts = torch.linspace(0, len(data) - CONTEXT - 2, count).long()
    x, y = windows(data, starts)
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()


def make_optimizer(args, model):
    if args.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=args.adamw_lr, betas=(0.9, 0.95),
                                 weight_decay=0.0), "AdamW"
    import muond.torch
    opt = muond.torch.Optimizer(model)
    for group in opt.param_groups:
        group["lr"] = args.lr if group["kind"] == "muon" else args.adamw_lr
    method = next(p.method for p in opt.client.params if p.is_matrix)
    return opt, f"muond {method}, {opt.client.ranks} ranks"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizer", choices=("muond", "adamw"), default="muond")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=32, help="global batch of windows")
    p.add_argument("--lr", type=float, default=0.02, help="the matrices' rate (muond)")
    p.add_argument("--adamw-lr", type=float, default=3e-3)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", help="rank 0: step,train_loss,held_out_loss")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    train, held = load_text()
    model = make_model(args.seed)
    opt, label = make_optimizer(args, model)
    rank, ranks = (opt.client.rank, opt.client.ranks) if args.optimizer == "muond" else (0, 1)
    warmup = 20
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    g = torch.Generator().manual_seed(args.seed)
    rows, seconds = [], 0.0
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        starts = torch.randint(0, len(train) - CONTEXT - 2, (args.batch,), generator=g)
        x, y = windows(train, starts.chunk(ranks)[rank])
        opt.zero_grad()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        sched.step()
        seconds += time.perf_counter() - start
        if rank == 0 and (step % args.eval_every == 0 or step == args.steps):
            rows.append((step, loss.item(), held_out_loss(model, held)))
            print(f"step {step:4d}  train {rows[-1][1]:.4f}  held-out {rows[-1][2]:.4f}",
                  flush=True)
    if rank == 0:
        if args.csv:
            with open(args.csv, "w") as f:
                f.write("step,train_loss,held_out_loss\n")
                f.writelines(f"{s},{a:.6f},{b:.6f}\n" for s, a, b in rows)
        summary = {"optimizer": label, "steps": args.steps, "held_out_loss": rows[-1][2],
                   "ms_per_step": 1e3 * seconds / args.steps}
        print(json.dumps(summary) if args.json else
              f"char_transformer: {label}: held-out loss {rows[-1][2]:.4f} nats/char after "
              f"{args.steps} steps ({summary['ms_per_step']:.0f} ms/step)")
    if args.optimizer == "muond":
        opt.close()


if __name__ == "__main__":
    main()
