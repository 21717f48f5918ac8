#!/usr/bin/env python3
"""Two cheap preconditioners, measured before muond keeps them: Turbo-Muon's AOL rescaling
(Boissin et al. 2025) for Polar Express, and a restart of the Gram route after its first
steps (Dao et al. 2026). Runs in fp32 numpy with muond's own schedules (`muond coeffs`) on
the recorded momenta (tests/data/momenta) and on the spike over a bulk at 2e-4 that pushes
the fp32 Gram route past its precision; every result is measured exactly in fp64 against the
SVD of G:

  descent = <Q, G> / (||Q||_2 ||G||_*)      the steepest-descent efficiency per unit step
  reach   = <Q, U_r V_r^T> / (r ||Q||_2)     how far, on average, G's directions are reached
  ||Q||_2                                   overshoot (the certificate's limit is 1.05)

AOL: with A = X X^T on the short side, D = diag(sum_j |A_ij|)^(-1/2) gives ||D X||_2 <= 1
(Prach and Lampert 2022), usually much closer to 1 than X / ||X||_F, so Polar Express from
D X needs fewer steps. Turbo-Muon forms D from the Gram matrix of the first step, so it costs
no extra pass. But the result is polar(D X), not polar(X): D reweights G's rows.

Gram restart: the coupled Gram iteration (kernels/gram.c) carries R_k = Z_k A Z_k, whose
fp32 rounding the polynomials amplify; after `--restart-after` steps, X_k = Z_k X_0 is formed
and the iteration restarts from R = X_k X_k^T, Z = I, with the rest of the schedule.

Prints one row per matrix and variant, then the means. No timing: the question is whether
the same quality comes in fewer steps (AOL) or better quality in the same steps (restart).
"""
import argparse
import glob
import os
import pathlib
import subprocess

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def schedule(muond, lower, iters):
    out = subprocess.run([muond, "coeffs", "--lower", repr(lower), "--iters", str(iters)],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(map(float, row.split())) for row in out.strip().splitlines()]


def wide(g):
    return g if g.shape[0] <= g.shape[1] else g.T


def polar_express(x, steps):
    for a, b, c in steps:
        A = x @ x.T
        x = a * x + (b * A + c * (A @ A)) @ x
    return x


def aol(x):
    """D X with D = diag(sum_j |X X^T|_ij)^(-1/2): ||D X||_2 <= 1."""
    d = np.abs(x @ x.T).sum(axis=1)
    d = np.where(d > 0, d, 1).astype(x.dtype)
    return x / np.sqrt(d)[:, None]


def gram_route(x, steps, restart_after=None):
    s = x.shape[0]
    eye = np.eye(s, dtype=x.dtype)
    r, z = x @ x.T, eye.copy()
    for t, (a, b, c) in enumerate(steps):
        if restart_after is not None and t == restart_after:
            xt = z @ x
            r, z, x = xt @ xt.T, eye.copy(), xt
        p = a * eye + b * r + c * (r @ r)
        z = p @ z
        r = p @ r @ p
        r = 0.5 * (r + r.T)
    return z @ x


def measures(g, q):
    u, sigma, vt = np.linalg.svd(g, full_matrices=False)
    rank = int((sigma > sigma[0] * max(g.shape) * np.finfo(np.float32).eps).sum())
    norm = np.linalg.norm(q, 2)
    polar = u[:, :rank] @ vt[:rank]
    return (float((q * g).sum() / (norm * sigma.sum())),
            float((q * polar).sum() / (rank * norm)), float(norm))


def spike_over_bulk(rows, cols, bulk, seed):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((rows, min(rows, cols))))
    v, _ = np.linalg.qr(rng.standard_normal((cols, min(rows, cols))))
    r = min(rows, cols)
    sigma = bulk * (1 - 0.5 * np.arange(r) / r)
    sigma[0] = 1
    return (u * sigma) @ v.T


def matrices(folder):
    for path in sorted(glob.glob(os.path.join(folder, "*.npy"))):
        yield pathlib.Path(path).stem, np.load(path).astype(np.float64)
    yield "spike over bulk at 2e-4", spike_over_bulk(96, 64, 2e-4, 7)


def variants(muond, iters, restart_after):
    fixed = {t: schedule(muond, 1e-3, t) for t in (iters - 2, iters - 1, iters)}

    def from_frobenius(g, steps):
        x = wide(g).astype(np.float32)
        return polar_express(x / np.float32(1.01 * np.linalg.norm(x)), steps)

    def from_aol(g, steps):
        return polar_express(aol(wide(g).astype(np.float32)) / np.float32(1.01), steps)

    def gram(g, restart):
        x = wide(g).astype(np.float32)
        return gram_route(x / np.float32(1.01 * np.linalg.norm(x)), fixed[iters], restart)

    yield f"polar-express T={iters}", lambda g: from_frobenius(g, fixed[iters])
    for t in (iters - 1, iters - 2):
        yield f"polar-express T={t}", lambda g, t=t: from_frobenius(g, fixed[t])
        yield f"AOL + polar-express T={t}", lambda g, t=t: from_aol(g, fixed[t])
    yield f"gram T={iters}", lambda g: gram(g, None)
    yield f"gram T={iters}, restart after {restart_after}", lambda g: gram(g, restart_after)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--muond", default=os.environ.get(
        "MUOND", str(HERE.parent / "build/launcher/muond")), help="the muond binary")
    p.add_argument("--dir", default=str(HERE.parent / "tests/data/momenta"),
                   help="folder of .npy matrices")
    p.add_argument("--iters", type=int, default=8, help="the fixed schedule's T")
    p.add_argument("--restart-after", type=int, default=3, help="Gram restart's step")
    args = p.parse_args()
    rows = {}
    print(f"{'matrix':<34} {'variant':<32} {'descent':>8} {'reach':>8} {'||Q||_2':>8}")
    for name, g in matrices(args.dir):
        for label, run in variants(args.muond, args.iters, args.restart_after):
            q = run(g).astype(np.float64)
            d, r, n = measures(g, q.T if g.shape[0] > g.shape[1] else q)
            rows.setdefault(label, []).append((d, r, n))
            print(f"{name[:34]:<34} {label:<32} {d:8.5f} {r:8.5f} {n:8.4f}")
    print("# means over the matrices (and the largest ||Q||_2):")
    for label, values in rows.items():
        v = np.array(values)
        print(f"# {label:<40} descent {v[:, 0].mean():.5f}  reach {v[:, 1].mean():.5f}  "
              f"max ||Q||_2 {v[:, 2].max():.4f}")


if __name__ == "__main__":
    main()
