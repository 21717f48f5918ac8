#!/usr/bin/env python3
"""Polar Express in numpy, as the paper states the algorithm: the CPU peer of `muond bench
kernels` (which runs this script once per shape, in the same run, and prints the ratio).

Amsel, Persson, Musco and Gower (2025), "The Polar Express": X = G / (1.01 ||G||_F + 1e-7),
transposed to the wide side, then per step's quintic p(x) = a x + b x^3 + c x^5
    A = X X^T,  B = b A + c A A,  X = a X + B X
(three GEMMs: 2 s^2 l + 2 s^3 + 2 s^2 l flops against muond's s^2 l + s^3 + 2 s^2 l, which
uses SYRK for the two symmetric products and folds a I into B). The coefficients are muond's
own schedule (`muond coeffs`: the same greedy minimax recurrence and safety factor), so both
sides run the same polynomials, and both results' max |sigma - 1| is reported.

numpy calls the same OpenBLAS as muond (Debian's libblas.so.3 alternative), with the core
muond chose (OPENBLAS_CORETYPE is inherited) and the thread count given by --threads (set
before numpy loads). Prints one JSON object: shape, dtype, T, median ms, max |sigma - 1|; with
--serve it first times one call per request (muond's way of pairing its runs with these).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--muond", required=True, help="the muond binary (for its coefficients)")
    p.add_argument("--shape", required=True, help="ROWSxCOLS")
    p.add_argument("--iters", type=int, default=5, help="polynomial steps T")
    p.add_argument("--runs", type=int, default=7, help="timed runs (the median is reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--seed", type=int, default=1, help="seed of the Gaussian test matrix")
    p.add_argument("--threads", type=int, default=1, help="OpenBLAS threads")
    p.add_argument("--dtype", choices=["fp32", "fp64"], default="fp32")
    p.add_argument("--serve", action="store_true",
                   help='time one call per "run" line on stdin (see serve())')
    return p.parse_args()


def coefficients(muond, iters):
    out = subprocess.run([muond, "coeffs", "--iters", str(iters)], check=True,
                         capture_output=True, text=True).stdout
    return [tuple(float(v) for v in line.split()) for line in out.strip().splitlines()]


def polar_express(np, g, coeffs):
    wide = g.shape[0] <= g.shape[1]
    x = g if wide else g.T
    x = x / (np.linalg.norm(x) * 1.01 + 1e-7)
    for a, b, c in coeffs:
        s = x @ x.T
        poly = b * s + c * (s @ s)
        x = a * x + poly @ x
    return x if wide else x.T


def serve(np, g, coeffs):
    """One call per "run" line, its time in ms on a line; "quit": the accuracy, as JSON.

    muond bench kernels alternates its own runs with these, so that both see the same
    moments of a noisy machine and their ratio is taken pair by pair."""
    q = polar_express(np, g, coeffs)  # also the warm-up's last result
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        q = polar_express(np, g, coeffs)
        print(f"{1e3 * (time.perf_counter() - start):.6f}", flush=True)
    return q


def main():
    args = parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # read when numpy loads OpenBLAS
    import numpy as np

    try:
        rows, cols = (int(v) for v in args.shape.lower().split("x"))
    except ValueError:
        sys.exit(f"polar_express_numpy.py: --shape {args.shape!r} is not ROWSxCOLS")
    dtype = np.float32 if args.dtype == "fp32" else np.float64
    coeffs = coefficients(args.muond, args.iters)
    g = np.random.default_rng(args.seed).standard_normal((rows, cols)).astype(dtype)
    for _ in range(args.warmup):
        polar_express(np, g, coeffs)
    times = []
    if args.serve:
        q = serve(np, g, coeffs)
    else:
        for _ in range(args.runs):
            start = time.perf_counter()
            q = polar_express(np, g, coeffs)
            times.append(1e3 * (time.perf_counter() - start))
    sigma = np.linalg.svd(q.astype(np.float64), compute_uv=False)
    print(json.dumps({"rows": rows, "cols": cols, "dtype": args.dtype, "iters": len(coeffs),
                      "median_ms": statistics.median(times) if times else None,
                      "max_sigma_error": float(np.max(np.abs(sigma - 1.0)))}), flush=True)


if __name__ == "__main__":
    main()
