#!/usr/bin/python3
"""A small CNN on scikit-learn's handwritten digits (1,797 8x8 images that python3-sklearn
ships), trained through muond by N trainers in local gradient mode, or in-process by torch's
AdamW or a plain-torch Muon (torch_muon.py) for comparison.

    muond launch -n 4 --from-model client/python/examples/digits.py:make_model [--method ns5] \\
        -- python3 client/python/examples/digits.py [--steps 300] [--csv out/digits.csv]
    python3 client/python/examples/digits.py --optimizer adamw [--csv ...]
    python3 client/python/examples/digits.py --sweep          (the learning-rate sweep)

The split is fixed (360 test images, the rest for training; --eval validation holds out 287
training images instead, for the sweep). Every step draws one global batch (--batch, 128)
from a seeded stream; under muond each of the N trainers takes its 1/N of it and muond
averages their gradients, so all runs see the same data in the same order. The learning
rate follows a warmup + cosine schedule (torch's LambdaLR) whatever the optimizer. Rank 0
(or the single process) evaluates every --eval-every steps and writes the CSV
(step,train_loss,eval_loss,eval_accuracy) and a summary line.
"""

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

TEST_IMAGES = 360
VALIDATION_IMAGES = 287
SPLIT_SEED = 1234

# The sweep's grids (README: PyTorch): muond's matrix learning rate per method, and AdamW's.
SWEEP_MUON_LR = (0.01, 0.02, 0.05, 0.1)
SWEEP_ADAMW_LR = (1e-3, 3e-3, 1e-2, 3e-2)
# What the sweep chose (best validation accuracy, then loss), the defaults below.
BEST = {"polar-express": 0.02, "ns5": 0.01, "shampoo": 0.05, "adamw": 1e-2}


class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 4 * 4, 64)
        self.fc2 = torch.nn.Linear(64, 10)  # the head (AdamW in the Muon recipe)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def make_model(seed=0):
    """The model every trainer builds: the same seed, so the replicas start equal."""
    torch.manual_seed(seed)
    return DigitsCNN()


def load_data(split):
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    held, train = order[:TEST_IMAGES], order[TEST_IMAGES:]
    if split == "validation":
        held, train = train[-VALIDATION_IMAGES:], train[:-VALIDATION_IMAGES]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return (x[train], y[train]), (x[held], y[held])


def batch_stream(n, batch, steps, seed):
    """The global batch of every step: epoch-wise shuffles from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    need = batch * steps
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n) + 1)])
    return order[:need].view(steps, batch)


def schedule(steps, warmup):
    """Linear warmup, then cosine to 10% of the peak (a LambdaLR factor)."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
    return factor


@torch.no_grad()
def evaluate(model, data):
    x, y = data
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def shard_gradients(model, x, y, shards):
    """The mean over `shards` equal slices of the batch of each slice's gradient: what muond
    computes from that many trainers (each slice's mean loss, then the mean over slices)."""
    params = [p for p in model.parameters()]
    total = [torch.zeros_like(p) for p in params]
    loss = None
    for xs, ys in zip(x.chunk(shards), y.chunk(shards)):
        model.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(xs), ys)
        loss.backward()
        for t, p in zip(total, params):
            t.add_(p.grad)
    for t, p in zip(total, params):
        p.grad.copy_(t.mul_(1.0 / shards))
    return loss.item()


def make_optimizer(args, model):
    if args.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=args.adamw_lr or BEST["adamw"],
                                 betas=(0.9, 0.95), weight_decay=args.weight_decay), "AdamW"
    if args.optimizer == "torch-muon":
        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        from torch_muon import TorchMuon
        matrices = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "fc2.weight"]
        others = [p for n, p in model.named_parameters() if p.dim() < 2 or n == "fc2.weight"]
        return TorchMuon(matrices, others, lr=args.lr or BEST["ns5"],
                         adamw_lr=args.adamw_lr or BEST["adamw"],
                         weight_decay=args.weight_decay), "Muon (torch)"
    import muond.torch
    opt = muond.torch.Optimizer(model, weight_decay=args.weight_decay)
    method = next(p.method for p in opt.client.params if p.is_matrix)
    for group in opt.param_groups:  # before the scheduler records them as its base rates
        group["lr"] = (args.lr or BEST[method]) if group["kind"] == "muon" else \
            (args.adamw_lr or BEST["adamw"])
    return opt, f"muond {method}, {opt.client.ranks} ranks"


def train(args):
    torch.set_num_threads(args.threads)
    train_data, eval_data = load_data(args.eval)
    model = make_model(args.seed)
    opt, label = make_optimizer(args, model)
    under_muond = args.optimizer == "muond"
    rank = opt.client.rank if under_muond else 0
    ranks = opt.client.ranks if under_muond else 1
    lr_schedule = None
    if args.schedule == "cosine":
        lr_schedule = torch.optim.lr_scheduler.LambdaLR(opt, schedule(args.steps, args.warmup))
    batches = batch_stream(len(train_data[1]), args.batch, args.steps, args.seed)
    rows, step_seconds, fallbacks = [], 0.0, 0
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        idx = batches[step - 1].chunk(ranks)[rank]
        x, y = train_data[0][idx], train_data[1][idx]
        if under_muond or args.shards == 1:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            loss = loss.item()
        else:
            loss = shard_gradients(model, x, y, args.shards)
        opt.step()
        if under_muond:
            fallbacks += opt.last_result.fallbacks
        if lr_schedule:
            lr_schedule.step()
        step_seconds += time.perf_counter() - start
        if rank == 0 and (step % args.eval_every == 0 or step == args.steps or step == 1):
            rows.append((step, loss) + evaluate(model, eval_data))
            if not args.quiet:
                print(f"step {step:4d}  train {loss:.4f}  {args.eval} loss {rows[-1][2]:.4f}  "
                      f"accuracy {rows[-1][3]:.2%}", flush=True)
    return finish(args, opt, model, label, rows, step_seconds, fallbacks)


def finish(args, opt, model, label, rows, step_seconds, fallbacks):
    summary = {"optimizer": label, "steps": args.steps, "eval": args.eval,
               "loss": rows[-1][2] if rows else None, "accuracy": rows[-1][3] if rows else None,
               "ms_per_step": 1e3 * step_seconds / args.steps}
    if args.optimizer == "muond":
        summary["python_share"] = opt.python_seconds / step_seconds
        summary["daemon_share"] = opt.daemon_seconds / step_seconds
        summary["bytes_copied"] = opt.bytes_copied
        summary["rank"] = opt.client.rank
        summary["fallbacks"] = fallbacks
    if rows:
        if args.csv:
            with open(args.csv, "w") as f:
                f.write("step,train_loss,eval_loss,eval_accuracy\n")
                f.writelines(f"{s},{tl:.6f},{el:.6f},{acc:.6f}\n" for s, tl, el, acc in rows)
        if args.save_weights:
            torch.save({k: v.detach().clone() for k, v in model.state_dict().items()},
                       args.save_weights)
        print(json.dumps(summary) if args.json else
              f"digits: {label}: {args.eval} accuracy {summary['accuracy']:.2%}, loss "
              f"{summary['loss']:.4f} after {args.steps} steps "
              f"({summary['ms_per_step']:.1f} ms/step)", flush=True)
    if args.optimizer == "muond":
        opt.close()
    return summary


def sweep(args):
    """Validation accuracy over the learning-rate grids: AdamW in-process, then muond's two
    methods (4 ranks), their AdamW parameters at AdamW's best rate."""
    here = pathlib.Path(__file__).resolve()
    muond = os.environ.get("MUOND", str(here.parents[3] / "build/launcher/muond"))
    common = [sys.executable, str(here), "--eval", "validation", "--json", "--quiet",
              "--steps", str(args.steps)]
    results = []
    for lr in SWEEP_ADAMW_LR:
        out = subprocess.run(common + ["--optimizer", "adamw", "--adamw-lr", str(lr)],
                             check=True, capture_output=True, text=True).stdout
        results.append(("adamw", lr, json.loads(out.strip().splitlines()[-1])))
    best_adamw = max((r for r in results), key=lambda r: (r[2]["accuracy"], -r[2]["loss"]))[1]
    for method in ("polar-express", "ns5", "shampoo"):
        for lr in SWEEP_MUON_LR:
            cmd = [muond, "launch", "-n", str(args.ranks), "--from-model",
                   f"{here}:make_model", "--method", method, "--"] + common + \
                  ["--lr", str(lr), "--adamw-lr", str(best_adamw)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results.append((method, lr, json.loads(out.strip().splitlines()[-1])))
    print(f"{'optimizer':<14} {'lr':>8} {'val accuracy':>13} {'val loss':>9}")
    for name, lr, r in results:
        print(f"{name:<14} {lr:>8g} {r['accuracy']:>13.2%} {r['loss']:>9.4f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizer", choices=("muond", "adamw", "torch-muon"), default="muond")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=128, help="global batch (all trainers)")
    p.add_argument("--lr", type=float, help="matrix learning rate (muond, torch-muon)")
    p.add_argument("--adamw-lr", type=float, help="AdamW's rate (and muond's AdamW params')")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--eval", choices=("test", "validation"), default="test")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--shards", type=int, default=1,
                   help="in-process: average the gradients of this many batch slices, as that "
                        "many muond trainers would")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--csv", help="rank 0: write step,train_loss,eval_loss,eval_accuracy")
    p.add_argument("--save-weights", help="rank 0: torch.save the final weights")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-evaluation lines")
    p.add_argument("--sweep", action="store_true", help="run the learning-rate sweep")
    p.add_argument("--ranks", type=int, default=4, help="--sweep: muond ranks")
    args = p.parse_args()
    if args.sweep:
        sweep(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
