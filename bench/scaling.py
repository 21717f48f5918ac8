#!/usr/bin/env python3
"""muond bench scaling: strong and weak scaling of muond's optimizer step on 1..N Slurm nodes
of this machine (slurm/local-cluster --nodes N: network namespaces, tbf-shaped links), for
the sharded and the local-mode step, with the model's prediction of every point beside it.

Each point is `srun -N n -n n*P muond bench step --json` on the first n nodes: the phases
(slowest rank, median of the timed steps, then the median over --repeats rounds, which run
every point in turn so that the host's drift reaches all of them; the spread over the rounds
is printed as the point's noise), each node's payload to other nodes (what the owner
plan must move) and the bytes its veth carried (the host side's counters, over every step of
the run, start-up included), the link rate achieved in the exchange phase against the shaped
rate, and the efficiency: strong T(1) R(1) / (T(n) R(n)), weak T(1) / T(n).

Three families of layouts, written to OUT/layouts:
  strong    GPT-2 blocks (width 768), the same model on every node count
  weak      --blocks-per-node GPT-2 blocks per node: the model grows with the nodes
  exchange  tall, thin matrices (cheap to orthogonalize, heavy to move): exchange scaling
This host's cores are shared by every node: compute scales only while ranks <= cores (the
table says so); beyond, the exchange rows are the scaling measurement.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling_model  # noqa: E402  (beside this file)

MUOND = os.environ.get("MUOND", "muond")
SOURCE = os.environ.get("MUOND_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POINT_TIMEOUT_S = 600  # one point; the longest measured here took about 60 s
PHASES = ("momentum_ms", "exchange_ms", "compute_ms", "fallback_ms", "apply_ms", "total_ms")


def fail(message, status=1):
    print(f"muond bench scaling: {message}", file=sys.stderr)
    sys.exit(status)


def usage_error(message):
    fail(message, 2)


def progress(message):
    print(f"[bench scaling] {message}", file=sys.stderr, flush=True)


# ---- layouts ----------------------------------------------------------------------------


def gpt_layout(name, blocks, mode, iters):
    params = []
    for b in range(blocks):
        for part, rows, cols in (("attn.c_attn", 768, 2304), ("attn.c_proj", 768, 768),
                                 ("mlp.c_fc", 768, 3072), ("mlp.c_proj", 3072, 768)):
            params.append({"name": f"h.{b}.{part}.weight", "shape": [rows, cols],
                           "method": "polar-express"})
            params.append({"name": f"h.{b}.{part}.bias", "shape": [cols], "method": "adamw"})
    return {"name": name, "gradient_mode": mode, "optimizer": {"polar_express": {"iters": iters}},
            "parameters": params}


def exchange_layout(mode, iters):
    params = [{"name": f"thin.{i}", "shape": [64, 16384], "method": "polar-express"} for i in range(16)]
    return {"name": "exchange-bound", "gradient_mode": mode,
            "optimizer": {"polar_express": {"iters": iters}}, "parameters": params}


def write_layout(out, spec):
    path = os.path.join(out, "layouts", f"{spec['name']}-{spec['gradient_mode']}.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    return path


# ---- the cluster ------------------------------------------------------------------------


class Cluster:
    def __init__(self, directory, nodes, link_gbit, port, own):
        self.dir, self.own = directory, own
        self.script = os.path.join(SOURCE, "slurm", "local-cluster")
        if own:
            progress(f"bringing up {nodes} namespace nodes at {link_gbit} Gbit/s in {directory}")
            r = subprocess.run([self.script, "up", "--dir", directory, "--nodes", str(nodes),
                                "--link-gbit", str(link_gbit), "--port", str(port)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"slurm/local-cluster up failed:\n{r.stderr.strip()}")
        try:
            with open(os.path.join(directory, "nodes")) as f:
                self.nodes = [line.split() for line in f if line.strip()]
        except OSError:
            fail(f"{directory} holds no multi-node cluster (slurm/local-cluster up --nodes N)")
        self.env = dict(os.environ, SLURM_CONF=os.path.join(directory, "slurm.conf"), MUOND_LOG="warn")
        self.link_gbit = self.shaped_rate()

    def shaped_rate(self):
        r = subprocess.run(["tc", "qdisc", "show", "dev", self.nodes[0][2]], capture_output=True, text=True)
        for word, value in zip(r.stdout.split(), r.stdout.split()[1:]):
            if word == "rate":
                scale = {"Gbit": 1.0, "Mbit": 1e-3, "Kbit": 1e-6}
                for unit, factor in scale.items():
                    if value.endswith(unit):
                        return float(value[:-len(unit)]) * factor
        return None

    def counters(self):
        """Per node (tx, rx) as the node sees them: its veth's host side counts the reverse."""
        out = []
        for _, _, veth, _ in self.nodes:
            base = f"/sys/class/net/{veth}/statistics"
            with open(f"{base}/rx_bytes") as f:
                tx = int(f.read())
            with open(f"{base}/tx_bytes") as f:
                rx = int(f.read())
            out.append((tx, rx))
        return out

    def down(self):
        if self.own:
            subprocess.run([self.script, "down", "--dir", self.dir], capture_output=True)


# ---- one point ----------------------------------------------------------------------------


def bench_step(cluster, layout_path, nodes, ranks, steps, warmup, exchange="flat"):
    names = ",".join(n[0] for n in cluster.nodes[:nodes])
    cmd = ["srun", "-N", str(nodes), "-n", str(ranks), "-w", names, "--overcommit", "--mpi=pmix",
           MUOND, "bench", "step", "--layout", layout_path, "--json", "--steps", str(steps),
           "--warmup", str(warmup), "--exchange", exchange]
    for attempt in (1, 2):
        before = cluster.counters()
        started = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env,
                               timeout=POINT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # Seen once: 8 ranks on 2 cores never finished Open MPI's start-up.
            r = subprocess.CompletedProcess(cmd, 124, "", f"no result within {POINT_TIMEOUT_S} s")
        if r.returncode == 0:
            break
        # Seen once in about 60 runs of 8 ranks on 2 cores: Open MPI's shared-memory start-up
        # crashed (ENOENT on a peer's segment). One retry, said aloud; a second failure stops.
        if attempt == 2:
            fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()[-2000:]}")
        progress(f"the point failed ({r.returncode}); running it once more. Its stderr ends:\n"
                 f"{r.stderr.strip()[-600:]}")
    after = cluster.counters()
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    phases = next(x for x in lines if "total_ms" in x)
    payload = {x["node"]: x for x in lines if "link_payload_tx" in x}
    run_steps = steps + warmup
    links = []
    for k in range(nodes):
        wire_tx = (after[k][0] - before[k][0]) / run_steps
        wire_rx = (after[k][1] - before[k][1]) / run_steps
        p = payload.get(k, {"link_payload_tx": 0, "link_payload_rx": 0})
        links.append({"node": k, "payload_tx": p["link_payload_tx"], "payload_rx": p["link_payload_rx"],
                      "wire_tx": wire_tx, "wire_rx": wire_rx})
    return phases, links, time.time() - started


def kernel_table(layout_paths):
    """bench kernels' time per shape, one thread, as each rank's step runs them."""
    shapes = set()
    for path in layout_paths:
        layout = scaling_model.load_layout(path)
        shapes |= {(r, c, it) for _, r, c, _, it in layout.matrices}
    table = []
    for rows, cols, iters in sorted(shapes):
        progress(f"bench kernels {rows}x{cols}, {iters} steps")
        table.append({"rows": rows, "cols": cols, "iters": iters,
                      "median_ms": kernel_ms(rows, cols, iters)})
    return table


def copy_seconds(mib, repeats, barrier=None, results=None, index=0):
    """Mean time of a MIB MiB copy (after the barrier: every process copies at once)."""
    import numpy as np

    a = np.ones(mib << 18, dtype=np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)  # touch the pages first
    if barrier is not None:
        barrier.wait()
    t = time.perf_counter()
    for _ in range(repeats):
        np.copyto(b, a)
    seconds = (time.perf_counter() - t) / repeats
    if results is not None:
        results[index] = seconds
    return seconds


def memory_streams(cores, mib=128, repeats=8):
    """How many processes this host's memory serves at full speed: one process's copy time
    against that of `cores` processes copying as much each, at once."""
    import multiprocessing as mp

    one = copy_seconds(mib, repeats)
    barrier, results = mp.Barrier(cores), mp.Array("d", cores)
    workers = [mp.Process(target=copy_seconds, args=(mib, repeats, barrier, results, i))
               for i in range(cores)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    together = max(results)
    if together <= 0:
        fail("the memory probe's processes did not finish")
    return min(float(cores), max(1.0, cores * one / together))


def kernel_ms(rows, cols, iters, runs=5):
    r = subprocess.run([MUOND, "bench", "kernels", "--shape", f"{rows}x{cols}", "--method",
                        "polar-express", "--iters", str(iters), "--json", "--peer", "none",
                        "--runs", str(runs)], capture_output=True, text=True,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1", MUOND_LOG="warn"))
    if r.returncode != 0:
        fail(f"bench kernels {rows}x{cols} failed:\n{r.stderr.strip()}")
    return next(json.loads(line) for line in r.stdout.splitlines() if '"median_ms"' in line)["median_ms"]


def compute_sharing(rank_counts, shape):
    """For each rank count K: how much slower one kernel runs while K of them run at once on
    this host (the ranks of every node share its cores): K concurrent bench kernels."""
    from concurrent.futures import ThreadPoolExecutor

    alone = kernel_ms(*shape)
    factors = {}
    for k in sorted(set(rank_counts)):
        with ThreadPoolExecutor(k) as pool:
            times = list(pool.map(lambda _: kernel_ms(*shape), range(k)))
        factors[k] = max(1.0, max(times) / alone)
    return factors


def latency_probe(cluster, out, steps=20):
    """Seconds per message across nodes: the exchange of one 8x8 matrix between two nodes
    (one message each way per step; its bytes are nothing at any rate)."""
    spec = {"name": "latency-probe", "gradient_mode": "sharded",
            "parameters": [{"name": "probe", "shape": [8, 8], "method": "polar-express"}]}
    path = write_layout(out, spec)
    phases, _, _ = bench_step(cluster, path, 2, 2, steps, 2)
    return phases["exchange_ms"] / 2 / 1e3


def point_record(kind, layout_path, spec, nodes, ranks, phases, links, cluster, host, kernels,
                 exchange):
    exchange_s = phases["exchange_ms"] / 1e3
    busiest = max((max(x["wire_tx"], x["wire_rx"]) for x in links), default=0.0)
    payload = sum(x["payload_tx"] for x in links)
    wire = sum(x["wire_tx"] for x in links)
    rec = {"scaling": kind, "layout": spec["name"], "layout_path": layout_path,
           "mode": spec["gradient_mode"], "nodes": nodes, "ranks": ranks, "cores": os.cpu_count(),
           "memory_streams": host["memory_streams"], "link_alpha": cluster.alpha,
           "compute_sharing": host["sharing"],
           "link_gbit": cluster.link_gbit, "links": links, "kernels": kernels, "exchange": exchange}
    rec.update({k: phases[k] for k in PHASES})
    rec["wire_over_payload"] = wire / payload if payload else None
    rec["achieved_gbit"] = 8 * busiest / exchange_s / 1e9 if nodes > 1 and exchange_s > 0 else None
    return rec


def host_probes(kernels, rank_counts):
    """This host's state now: memory streams at full speed, and the compute slowdown of K
    kernels at once for each rank count (the largest shape)."""
    streams = memory_streams(os.cpu_count())
    progress(f"memory: {streams:.2f} of {os.cpu_count()} processes copy at full speed at once")
    largest = max(kernels, key=lambda k: k["rows"] * k["cols"])
    sharing = compute_sharing(rank_counts, (largest["rows"], largest["cols"], largest["iters"]))
    progress("compute: one kernel among K at once runs " + ", ".join(
        f"{f:.2f}x slower at K={k}" for k, f in sorted(sharing.items())))
    return {"memory_streams": streams, "sharing": sharing}


def measure_round(cluster, plan, a, round_index, kernels):
    """Every point of the plan once, after the host's probes: one round. Rounds interleave the
    points, so that the host's drift over the run reaches every point alike."""
    host = host_probes(kernels, range(1, 1 + max(n for _, _, _, n, _ in plan) * a.ranks_per_node))
    records = []
    for i, (kind, spec, path, n, exchange) in enumerate(plan):
        ranks = n * a.ranks_per_node
        progress(f"round {round_index + 1}/{a.repeats}, point {i + 1}/{len(plan)}: {kind} "
                 f"{spec['gradient_mode']} {spec['name']} on {n} node(s), {ranks} rank(s), "
                 f"{exchange} exchange")
        phases, links, _ = bench_step(cluster, path, n, ranks, a.steps, a.warmup, exchange)
        records.append(point_record(kind, path, spec, n, ranks, phases, links, cluster, host,
                                    kernels, exchange))
    return records


def median_point(runs, index):
    """One point over the rounds: the median of every phase and probe, the wire bytes' mean,
    and the spread (max - min) / median of every phase, which is this host's noise on it."""
    point = dict(runs[0], point=index, rounds=len(runs))
    for key in PHASES + ("memory_streams", "achieved_gbit", "wire_over_payload"):
        values = [r[key] for r in runs if r[key] is not None]
        point[key] = float(statistics.median(values)) if values else None
    point["spread"] = {k: (max(r[k] for r in runs) - min(r[k] for r in runs)) / point[k]
                       if point[k] > 0 else 0.0 for k in PHASES}
    point["compute_sharing"] = {k: float(statistics.median(r["compute_sharing"][k] for r in runs))
                                for k in runs[0]["compute_sharing"]}
    for k, link in enumerate(point["links"]):
        point["links"][k] = dict(link, **{w: statistics.fmean(r["links"][k][w] for r in runs)
                                          for w in ("wire_tx", "wire_rx")})
    return point


def efficiency(p, points):
    """Against the family's first point (its fewest nodes): strong T(1) R(1) / (T(n) R(n)),
    weak T(1) / T(n)."""
    first = next(b for b in points if b["scaling"] == p["scaling"] and b["mode"] == p["mode"]
                 and b["exchange"] == p["exchange"])
    if p["scaling"] == "weak":
        return first["total_ms"] / p["total_ms"]
    return first["total_ms"] * first["ranks"] / (p["total_ms"] * p["ranks"])


# ---- output -------------------------------------------------------------------------------


def print_table(points, cores):
    rounds = points[0]["rounds"]
    print(f"# muond bench scaling: phases in ms (slowest rank, median of the steps, median of {rounds} "
          f"rounds); noise: the total's (max - min) / median over the rounds; payload and wire in MiB "
          f"per step per node link (the busiest node); this host has {cores} cores shared by every node")
    header = (f"{'scaling':<8} {'mode':<7} {'exchange':<12} {'layout':<16} {'nodes':>5} {'ranks':>5} "
              + " ".join(f"{k[:-3]:>9}" for k in PHASES)
              + f" {'eff':>6} {'noise':>6} {'payload':>8} {'wire':>8} {'Gbit/s':>7}  note")
    print(header)
    for p in points:
        busiest = max(p["links"], key=lambda x: max(x["wire_tx"], x["wire_rx"]))
        payload = max(busiest["payload_tx"], busiest["payload_rx"]) / 1048576
        wire = max(busiest["wire_tx"], busiest["wire_rx"]) / 1048576
        rate = f"{p['achieved_gbit']:.2f}" if p["achieved_gbit"] else "-"
        note = "compute shares cores" if p["ranks"] > cores else ""
        print(f"{p['scaling']:<8} {p['mode']:<7} {p['exchange']:<12} {p['layout']:<16} {p['nodes']:>5} {p['ranks']:>5} "
              + " ".join(f"{p[k]:>9.1f}" for k in PHASES)
              + f" {p['efficiency']:>6.2f} {100 * p['spread']['total_ms']:>5.0f}% {payload:>8.2f} {wire:>8.2f} {rate:>7}  {note}")


def plot(points, out, png):
    """One panel per family measured; a data file per family and mode (OUT/scaling-*.dat)."""
    panels = []
    for kind in ("strong", "weak", "exchange"):
        series = []
        for mode, exchange in (("sharded", "flat"), ("sharded", "hierarchical"), ("local", "flat")):
            rows = [p for p in points if p["scaling"] == kind and p["mode"] == mode
                    and p["exchange"] == exchange]
            if not rows:
                continue
            label = mode if exchange == "flat" else f"{mode} {exchange}"
            data = os.path.join(out, f"scaling-{kind}-{mode}-{exchange}.dat")
            with open(data, "w") as f:
                f.write("# nodes total_ms exchange_ms compute_ms efficiency\n")
                for p in rows:
                    f.write(f"{p['nodes']} {p['total_ms']} {p['exchange_ms']} {p['compute_ms']} "
                            f"{p['efficiency']}\n")
            series.append(f"'{data}' using 1:2 with linespoints lw 2 title '{label} total', "
                          f"'{data}' using 1:3 with linespoints title '{label} exchange'")
        if series:
            panels.append(f"set title '{kind}'\nplot " + ", ".join(series) + "\n")
    first = points[0]
    script = (f"set terminal pngcairo size {500 * len(panels)},460 noenhanced\n"
              f"set output '{png}'\n"
              f"set multiplot layout 1,{len(panels)} title 'muond bench scaling: "
              f"{first['link_gbit']} Gbit/s namespace nodes, {first['cores']} shared cores'\n"
              "set xlabel 'nodes'\nset ylabel 'ms per step (slowest rank)'\n"
              "set logscale x 2\nset xtics (1, 2, 4, 8, 16)\nset key top left\n"
              + "".join(panels) + "unset multiplot\n")
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"gnuplot failed: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(prog="muond bench scaling", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--nodes", default="1,2,4", help="node counts (default 1,2,4)")
    ap.add_argument("--ranks-per-node", type=int, default=1)
    ap.add_argument("--link-gbit", type=float, default=2.0, help="shaped link rate of a cluster this "
                    "command brings up (default 2)")
    ap.add_argument("--cluster", metavar="DIR", help="use the running cluster in DIR instead of "
                    "bringing one up (and down) in OUT/cluster")
    ap.add_argument("--port", type=int, default=28817, help="its Slurm ports (default 28817)")
    ap.add_argument("--scaling", default="strong,weak,exchange", help="which families (default all)")
    ap.add_argument("--modes", default="sharded,local", help="gradient modes (default both)")
    ap.add_argument("--exchanges", default="flat", help="the sharded step's all-to-all: flat, "
                    "hierarchical or both, comma-separated (default flat)")
    ap.add_argument("--strong-blocks", type=int, default=2, help="GPT-2 blocks of the strong layout")
    ap.add_argument("--blocks-per-node", type=int, default=1, help="GPT-2 blocks per node (weak)")
    ap.add_argument("--iters", type=int, default=5, help="Polar Express steps (default 5)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per point (default 5)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="rounds over every point, interleaved; "
                    "each phase is the median over rounds, its spread the host's noise (default 3)")
    ap.add_argument("--out", default="out/scaling", help="where layouts, JSON lines, plot go")
    ap.add_argument("--no-model", action="store_true", help="skip the model's validation table")
    a = ap.parse_args()
    try:
        node_counts = sorted({int(x) for x in a.nodes.split(",")})
    except ValueError:
        usage_error(f"--nodes: '{a.nodes}' is not a comma-separated list of counts")
    kinds = [k for k in a.scaling.split(",") if k]
    modes = [m for m in a.modes.split(",") if m]
    if not set(kinds) <= {"strong", "weak", "exchange"}:
        usage_error(f"--scaling: '{a.scaling}' names a family other than strong, weak, exchange")
    if not set(modes) <= {"sharded", "local"}:
        usage_error(f"--modes: '{a.modes}' names a mode other than sharded, local")
    exchanges = [e for e in a.exchanges.split(",") if e]
    if not exchanges or not set(exchanges) <= {"flat", "hierarchical"}:
        usage_error(f"--exchanges: '{a.exchanges}' names an exchange other than flat, hierarchical")
    if node_counts[0] < 1 or a.ranks_per_node < 1 or a.steps < 5 or a.repeats < 1:
        usage_error("--nodes, --ranks-per-node and --repeats must be positive, --steps at least 5")
    if a.cluster is None and os.geteuid() != 0:
        usage_error("namespace nodes need root (or pass --cluster DIR of a running cluster)")
    out = os.path.abspath(a.out)
    os.makedirs(os.path.join(out, "layouts"), exist_ok=True)
    cluster_dir = os.path.abspath(a.cluster) if a.cluster else os.path.join(out, "cluster")
    cluster = Cluster(cluster_dir, max(node_counts), a.link_gbit, a.port, own=a.cluster is None)
    try:
        if len(cluster.nodes) < max(node_counts):
            fail(f"the cluster in {cluster_dir} has {len(cluster.nodes)} nodes, --nodes asks for {max(node_counts)}")
        plan = []
        for kind in kinds:
            for mode in modes:
                for n in node_counts:
                    if kind == "strong":
                        spec = gpt_layout(f"gpt2-{a.strong_blocks}blocks", a.strong_blocks, mode, a.iters)
                    elif kind == "weak":
                        blocks = a.blocks_per_node * n
                        spec = gpt_layout(f"gpt2-{blocks}blocks", blocks, mode, a.iters)
                    else:
                        spec = exchange_layout(mode, a.iters)
                    for exchange in (exchanges if mode == "sharded" else ["flat"]):
                        plan.append((kind, spec, write_layout(out, spec), n, exchange))
        kernels = kernel_table(sorted({p[2] for p in plan}))
        cluster.alpha = latency_probe(cluster, out) if len(cluster.nodes) > 1 else None
        if cluster.alpha:
            progress(f"latency: {1e6 * cluster.alpha:.0f} us per message between two nodes")
        rounds = []
        for round_index in range(a.repeats):
            rounds.append(measure_round(cluster, plan, a, round_index, kernels))
        points = [median_point(list(runs), i) for i, runs in enumerate(zip(*rounds))]
        for p in points:
            p["efficiency"] = efficiency(p, points)
        with open(os.path.join(out, "scaling.jsonl"), "w") as f:
            for p in points:
                f.write(json.dumps(p) + "\n")
        print_table(points, os.cpu_count())
        plot(points, out, os.path.join(out, "scaling.png"))
        print(f"JSON lines: {out}/scaling.jsonl; plot: {out}/scaling.png")
        if not a.no_model:
            print()
            rows = scaling_model.validate(points)
            scaling_model.print_validation(rows)
            with open(os.path.join(out, "validation.jsonl"), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
