#!/usr/bin/env python3
"""Polar Express in PyTorch, as the paper describes it, timed against muond on the same GPU.

The reference follows Amsel, Persson, Musco and Gower (2025), "The Polar Express": normalize
X = G / (1.01 ||G||_F), then for each step's quintic p(x) = a x + b x^3 + c x^5 apply
X <- a X + (b A + c A^2) X with A = X X^T (on the short side), in bf16 with the GEMMs
accumulating in fp32. The coefficients are muond's own schedule (`muond coeffs`, the same
greedy minimax recurrence and safety), so both sides run the same polynomials: equal
accuracy by construction, which the script also checks (max |sigma - 1| of both results).

Both sides draw a Gaussian test matrix of each shape (each from its own generator: same
distribution, not the same entries), and both report max |sigma - 1| of their result.

Timing: CUDA events around the median of --runs calls after --warmup calls, torch.compile
off (the paper's implementation is eager PyTorch). muond's time comes from
`muond bench kernels --backend cuda --dtype bf16 --json` run on the same shapes.

Prints one row per shape: ms (torch), ms (muond), speed ratio muond/torch (target >= 1.5).
"""
import argparse
import json
import statistics
import subprocess
import sys


def coefficients(muond, iters):
    out = subprocess.run([muond, "coeffs", "--iters", str(iters)], check=True,
                         capture_output=True, text=True).stdout
    return [tuple(float(v) for v in line.split()) for line in out.strip().splitlines()]


def polar_express(torch, g, coeffs, safety=1.01):
    x = g.to(torch.bfloat16)
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.mT
    x = x / (x.norm() * safety + 1e-7)
    for a, b, c in coeffs:
        s = x @ x.mT
        poly = b * s + c * (s @ s)
        x = a * x + poly @ x
    return x if wide else x.mT


def median_ms(torch, fn, runs, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def muond_ms(muond, shapes, iters, runs, warmup):
    cmd = [muond, "bench", "kernels", "--backend", "cuda", "--dtype", "bf16", "--json",
           "--method", "polar-express", "--iters", str(iters), "--runs", str(runs),
           "--warmup", str(warmup), "--shape", ",".join(shapes)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {f"{r['rows']}x{r['cols']}": r for r in rows}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--muond", default="build/launcher/muond")
    p.add_argument("--shape", default="4096x4096,1024x4096,768x768,768x3072,3072x768")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIPPED: PyTorch is not installed (pip install torch)")
        return 77
    if not torch.cuda.is_available():
        print("SKIPPED: PyTorch sees no GPU")
        return 77
    shapes = args.shape.split(",")
    coeffs = coefficients(args.muond, args.iters)
    ours = muond_ms(args.muond, shapes, args.iters, args.runs, args.warmup)
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, T = {args.iters}, bf16")
    print(f"{'shape':>11} {'torch ms':>10} {'muond ms':>10} {'speedup':>8} "
          f"{'torch max|s-1|':>15} {'muond max|s-1|':>15}")
    for shape in shapes:
        m, n = (int(v) for v in shape.split("x"))
        gen = torch.Generator(device="cuda").manual_seed(1)
        g = torch.randn(m, n, device="cuda", generator=gen)
        ms = median_ms(torch, lambda: polar_express(torch, g, coeffs), args.runs, args.warmup)
        q = polar_express(torch, g, coeffs).double()
        err = (torch.linalg.svdvals(q) - 1).abs().max().item()
        row = ours[shape]
        print(f"{shape:>11} {ms:10.3f} {row['median_ms']:10.3f} {ms / row['median_ms']:8.2f} "
              f"{err:15.3e} {row.get('max_sigma_error', float('nan')):15.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
