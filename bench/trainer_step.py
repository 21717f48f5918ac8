#!/usr/bin/python3
"""muond bench trainer: the wall time of one training step of the digits CNN
(client/python/examples/digits.py: forward, backward, optimizer step over the global batch)
with muond on N ranks against in-process torch AdamW and the in-process plain-torch Muon
(torch_muon.py), all in one session, alternating, --repeat times each (the median is shown).

Also measured in the muond runs: the Python client's own share of a step (the time
muond.torch.Optimizer.step spends in Python, outside the wait for the daemon, over the whole
step; target <= 5%), the share spent waiting for the daemon, and the parameter bytes step()
copied (0: .data and .grad are the shared memory; the check that they are is in
tests/python/trainers.py).

Usage: muond bench trainer [--ranks 4] [--steps 300] [--repeat 3] [--json]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve()
DIGITS = HERE.parents[1] / "client/python/examples/digits.py"


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def configurations(muond, ranks, steps):
    common = [sys.executable, str(DIGITS), "--json", "--quiet", "--steps", str(steps),
              "--eval-every", str(steps)]
    launch = [muond, "launch", "-n", str(ranks), "--from-model", f"{DIGITS}:make_model"]
    return {
        f"muond polar-express ({ranks} ranks)": launch + ["--"] + common,
        f"muond ns5 ({ranks} ranks)": launch + ["--method", "ns5", "--"] + common,
        "torch AdamW (in-process)": common + ["--optimizer", "adamw"],
        "torch Muon (in-process)": common + ["--optimizer", "torch-muon"],
    }


def main():
    p = argparse.ArgumentParser(prog="muond bench trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = p.parse_args()
    muond = os.environ.get("MUOND", "muond")
    configs = configurations(muond, args.ranks, args.steps)
    results = {name: [] for name in configs}
    for r in range(args.repeat):
        for name, cmd in configs.items():
            results[name].append(run(cmd))
            print(f"bench trainer: run {r + 1}/{args.repeat}: {name}: "
                  f"{results[name][-1]['ms_per_step']:.2f} ms/step", file=sys.stderr)
    adamw = statistics.median(x["ms_per_step"] for x in results["torch AdamW (in-process)"])
    rows = []
    for name, runs in results.items():
        ms = statistics.median(x["ms_per_step"] for x in runs)
        row = {"config": name, "ms_per_step": ms, "vs_adamw": ms / adamw,
               "test_accuracy": statistics.median(x["accuracy"] for x in runs)}
        if "python_share" in runs[0]:
            row["python_share"] = statistics.median(x["python_share"] for x in runs)
            row["daemon_share"] = statistics.median(x["daemon_share"] for x in runs)
            row["bytes_copied"] = max(x["bytes_copied"] for x in runs)
            row["fallbacks_per_step"] = statistics.median(x["fallbacks"] for x in runs) / args.steps
        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"digits CNN, global batch 128, {args.steps} steps, median of {args.repeat} "
          f"(ms/step excludes evaluation)")
    print(f"{'configuration':<30} {'ms/step':>8} {'vs AdamW':>9} {'client share':>13} "
          f"{'in muond':>9} {'bytes copied':>13} {'fallbacks/step':>15} {'test acc':>9}")
    for row in rows:
        share = f"{100 * row['python_share']:.2f}%" if "python_share" in row else "-"
        waiting = f"{100 * row['daemon_share']:.1f}%" if "daemon_share" in row else "-"
        copied = str(row["bytes_copied"]) if "bytes_copied" in row else "-"
        falls = f"{row['fallbacks_per_step']:.2f}" if "fallbacks_per_step" in row else "-"
        print(f"{row['config']:<30} {row['ms_per_step']:>8.2f} {row['vs_adamw']:>8.2f}x "
              f"{share:>13} {waiting:>9} {copied:>13} {falls:>15} "
              f"{100 * row['test_accuracy']:>8.2f}%")


if __name__ == "__main__":
    main()
