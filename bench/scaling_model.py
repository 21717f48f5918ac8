#!/usr/bin/env python3
"""muond model: predicts each phase of muond's optimizer step from the layout, the owner plan,
kernel times per shape and a network (nodes x ranks per node, intra- and inter-node bandwidth
and latency), and carries it to cluster scale.

  muond model --layout L [--gpus 8,16,...] [--gpu h100|h200] [--design D] [--json]
      the step, its phases and the optimizer's overhead against forward-backward on 8..1024
      GPUs for a layout file or a built-in family (gpt2-small, 1b, 7b), every exchange design
  muond model --validate FILE.jsonl
      each measured phase of `muond bench scaling --json-out FILE.jsonl` beside the prediction

The parts of the model (docs/scaling.md says why each is what it is):
  * owner plan: muond's own (shard/plan.c): matrices by FLOPs, costliest first, each to the
    least-loaded rank; waves cut at the owner's byte budget; rows split rows*r/R.
  * compute: per owner, the sum over its matrices of the kernel time of that shape (measured
    by `muond bench kernels`, or FLOPs / (peak x efficiency(shape)) for a stated GPU); ranks
    that share cores (the namespace cluster: every rank on one host) run at the slowdown that
    bench scaling measured for the count still computing, which drops as owners finish.
  * exchange, per wave and direction (gather to the owners, scatter back): per node link,
    max(bytes out, bytes in) / link rate; per rank, intra-node bytes / intra rate; plus alpha
    per message over the busiest rank's peers (the owner's incast counts every sender); plus
    packing every byte a rank sends or receives. The owners' imbalance is waited out at the
    verdict agreement, inside compute (bench step's fallback phase on the least-loaded rank).
  * local mode: each matrix summed to its owner and broadcast back, in the rounds of Open
    MPI's libnbc (chain or Rabenseifner reduce, linear or binomial broadcast).
  * momentum, apply: elements of the rank's shards times a cost per element (fitted at one
    node on the namespace cluster; memory traffic / HBM bandwidth on a GPU).
"""
import argparse
import json
import math
import sys

import numpy as np

# ---- layouts ----------------------------------------------------------------------------

DTYPE_BYTES = {"fp32": 4, "bf16": 2}
DEFAULT_PE_ITERS = 8  # shard/layout.h MU_LAYOUT_DEFAULT_PE_ITERS
DEFAULT_WAVE_BUDGET = 1024 << 20


class Layout:
    def __init__(self, name, matrices, vector_elements, mode="sharded", exchange_dtype="fp32",
                 wave_budget=DEFAULT_WAVE_BUDGET, vector_count=0):
        self.name = name
        self.matrices = matrices  # [(name, rows, cols, method, iters)]
        self.vector_elements = vector_elements  # AdamW parameters' elements
        self.vector_count = vector_count  # AdamW parameters
        self.mode = mode
        self.es = DTYPE_BYTES[exchange_dtype]
        self.wave_budget = wave_budget

    def parameters(self):
        return sum(r * c for _, r, c, _, _ in self.matrices) + self.vector_elements


def load_layout(path):
    with open(path) as f:
        spec = json.load(f)
    opt = spec.get("optimizer", {})
    iters = opt.get("polar_express", {}).get("iters", DEFAULT_PE_ITERS)
    matrices, vectors, count = [], 0, 0
    for p in spec["parameters"]:
        shape = p["shape"]
        elements = math.prod(shape)
        if p.get("method", "polar-express") == "adamw" or len(shape) != 2:
            vectors += elements
            count += 1
            continue
        matrices.append((p["name"], shape[0], shape[1], p.get("method", "polar-express"),
                         p.get("iters", iters)))
    exchange = spec.get("exchange", {})
    budget = int(exchange.get("wave_budget_mib", DEFAULT_WAVE_BUDGET >> 20) * 1048576)
    return Layout(spec.get("name", path), matrices, vectors, spec.get("gradient_mode", "sharded"),
                  exchange.get("dtype", "fp32"), budget, count)


def gpt_blocks(name, width, blocks, vocab=0, context=0, iters=5):
    """GPT-2-style blocks: attention in/out projections and the 4x MLP, biases and norms."""
    matrices, vectors = [], vocab * width + context * width
    for b in range(blocks):
        for part, rows, cols in (("attn.c_attn", width, 3 * width), ("attn.c_proj", width, width),
                                 ("mlp.c_fc", width, 4 * width), ("mlp.c_proj", 4 * width, width)):
            matrices.append((f"h.{b}.{part}.weight", rows, cols, "polar-express", iters))
        vectors += 4 * width + 3 * width + width + 4 * width + width  # norms and biases
    return Layout(name, matrices, vectors)


# The families the extrapolation uses: GPT-2-small (124M), and GPT-style 1B and 7B layouts
# (12 L d^2 in the blocks; 7B at d = 4096, 32 blocks, as Llama-2-7B's width and depth).
FAMILIES = {
    "gpt2-small": lambda: gpt_blocks("gpt2-small", 768, 12, vocab=50257, context=1024),
    "1b": lambda: gpt_blocks("1b", 2048, 20, vocab=50257),
    "7b": lambda: gpt_blocks("7b", 4096, 32, vocab=32000),
}


def layout_from(text):
    return FAMILIES[text]() if text in FAMILIES else load_layout(text)


# ---- the owner plan (shard/plan.c) --------------------------------------------------------


def poly_flops(rows, cols, iters):
    """Grouped FLOPs of a polynomial iteration (kernels/poly_iter.c)."""
    s, l = min(rows, cols), max(rows, cols)
    return iters * (3.0 * s * s * l + s ** 3)


def shard_rows(rows, ranks):
    r = np.arange(ranks + 1, dtype=np.int64)
    bounds = rows * r // ranks
    return bounds[1:] - bounds[:-1]


def owner_plan(layout, ranks):
    """(owners per matrix index, waves as lists of matrix indices), as shard/plan.c."""
    order = sorted(range(len(layout.matrices)),
                   key=lambda i: (-poly_flops(*layout.matrices[i][1:3], layout.matrices[i][4]), i))
    load = [0.0] * ranks
    owners = [0] * len(layout.matrices)
    for i in order:
        best = min(range(ranks), key=lambda r: (load[r], r))
        owners[i] = best
        _, rows, cols, _, iters = layout.matrices[i]
        load[best] += poly_flops(rows, cols, iters)
    waves, held = [], None
    for i in order:
        _, rows, cols, _, _ = layout.matrices[i]
        owner_bytes = 2 * 4 * rows * cols
        if held is None or held[owners[i]] + owner_bytes > layout.wave_budget:
            waves.append([])
            held = [0] * ranks
        waves[-1].append(i)
        held[owners[i]] += owner_bytes
    return owners, waves


# ---- machines -----------------------------------------------------------------------------


class Machine:
    """nodes x per_node ranks. link_Bps: one node's link (nic_per_rank False: the namespace
    cluster's veth) or each rank's NIC (True: a GPU cluster). kernel_ms(rows, cols, iters)."""

    def __init__(self, nodes, per_node, link_Bps, link_alpha, intra_Bps, intra_alpha,
                 kernel_ms, momentum_ns, apply_ns, nic_per_rank=False, cores=None, copy_ns=0.0,
                 memory_streams=None, sharing=None):
        self.nodes, self.per_node = nodes, per_node
        self.ranks = nodes * per_node
        self.link_Bps, self.link_alpha = link_Bps, link_alpha
        self.intra_Bps, self.intra_alpha = intra_Bps, intra_alpha
        self.kernel_ms = kernel_ms
        self.momentum_ns, self.apply_ns = momentum_ns, apply_ns
        self.nic_per_rank = nic_per_rank
        self.cores = cores  # None: a core (or GPU) per rank
        self.copy_ns = copy_ns  # per byte a rank packs or unpacks in the exchange
        self.memory_streams = memory_streams  # None: memory bandwidth per rank (a GPU's HBM)
        self.sharing = sharing  # {ranks at once: measured compute slowdown}, or None

    def node_of(self):
        return np.arange(self.ranks) // self.per_node

    def compute_slowdown(self, active):
        """How much slower a rank computes while `active` ranks compute at once: measured by
        bench scaling for some counts (interpolated between them), else active over cores
        where ranks share a host, else not at all."""
        if active <= 1:
            return 1.0
        if self.sharing:
            counts = sorted(self.sharing)
            return float(np.interp(active, counts, [self.sharing[k] for k in counts]))
        return max(1.0, active / self.cores) if self.cores else 1.0

    def finish_times(self, work):
        """When each rank's compute (work: its time alone) ends, as ranks that share cores
        run: all at the slowdown of the count still busy, which drops as owners finish."""
        work = np.asarray(work, dtype=float)
        left, done, now = work.copy(), np.zeros_like(work), 0.0
        busy = left > 0
        while busy.any():
            rate = 1.0 / self.compute_slowdown(int(busy.sum()))
            step = left[busy].min() / rate
            now += step
            left[busy] -= step * rate
            finished = busy & (left <= 1e-12 * work.max())
            done[finished], busy = now, busy & ~finished
        return done

    def memory_slowdown(self):
        """Ranks that share one host's memory bandwidth: as many full-speed streams as the host
        sustains (measured by bench scaling), the rest wait."""
        if not self.memory_streams:
            return 1.0
        return max(1.0, self.ranks / self.memory_streams)


# A GPU's rate on the orthogonalization's GEMMs: a stated efficiency of the dense bf16 peak
# that grows with the smallest side (small GEMMs do not fill an H100), not a measurement.
GPUS = {
    # name: (bf16 dense peak FLOP/s, HBM bytes/s)
    "h100": (989e12, 3.35e12),
    "h200": (989e12, 4.8e12),
}


def gpu_kernel_ms(gpu):
    peak = GPUS[gpu][0]

    def ms(rows, cols, iters):
        s = min(rows, cols)
        efficiency = 0.7 * s / (s + 512.0)
        return 1e3 * poly_flops(rows, cols, iters) / (peak * efficiency)

    return ms


def gpu_machine(gpus, gpu="h100", per_node=8, inter_gbit=400.0):
    """NVLink within a node (about 450 GB/s each way, 5 us per message as NCCL's p2p), a
    400 Gbit/s NIC per GPU between nodes (about 80% achieved, 10 us per message); packing
    reads and writes every byte once in HBM. Stated, not measured: no GPU cluster here."""
    per_node = min(per_node, gpus)
    hbm = GPUS[gpu][1]
    return Machine(gpus // per_node, per_node, 0.8 * inter_gbit * 1e9 / 8, 10e-6, 450e9, 5e-6,
                   gpu_kernel_ms(gpu), momentum_ns=16 / hbm * 1e9, apply_ns=12 / hbm * 1e9,
                   nic_per_rank=True, copy_ns=2 / hbm * 1e9)


# ---- the exchange -------------------------------------------------------------------------


def direction_seconds(X, m):
    """One all-to-all whose bytes rank r -> q are X[r, q] (the diagonal is a local copy)."""
    node = m.node_of()
    off = node[:, None] != node[None, :]
    same = ~off & ~np.eye(m.ranks, dtype=bool)
    out_inter, in_inter = (X * off).sum(1), (X * off).sum(0)
    out_intra, in_intra = (X * same).sum(1), (X * same).sum(0)
    if m.nic_per_rank:
        link = np.maximum(out_inter, in_inter).max() / m.link_Bps
    else:
        tx = np.bincount(node, weights=out_inter, minlength=m.nodes)
        rx = np.bincount(node, weights=in_inter, minlength=m.nodes)
        link = max(tx.max(), rx.max()) / m.link_Bps
    intra = np.maximum(out_intra, in_intra).max() / m.intra_Bps
    sent = X > 0
    msgs_inter = np.maximum((sent & off).sum(1), (sent & off).sum(0))
    msgs_intra = np.maximum((sent & same).sum(1), (sent & same).sum(0))
    alpha = (msgs_inter * m.link_alpha + msgs_intra * m.intra_alpha).max()
    return max(link, intra) + alpha


def gather_matrix(layout, owners, wave, m):
    X = np.zeros((m.ranks, m.ranks))
    for i in wave:
        _, rows, cols, _, _ = layout.matrices[i]
        X[:, owners[i]] += shard_rows(rows, m.ranks) * cols * layout.es
    return X


def two_stage(X, m):
    """Node-aware: (a, i) -> (b, j) goes (a, i) -> (a, j) in the node, then (a, j) -> (b, j)
    across nodes (rail-aligned: every local rank uses its own NIC)."""
    g, n = m.per_node, m.nodes
    X4 = X.reshape(n, g, n, g)  # [a, i, b, j]
    stage1 = np.zeros((n, g, n, g))
    for a in range(n):
        stage1[a, :, a, :] = X4[a].sum(axis=1)  # to (a, j): everything bound for local j anywhere
    stage2 = np.zeros((n, g, n, g))
    per_rail = X4.sum(axis=1)  # [a, b, j]
    for j in range(g):
        stage2[:, j, :, j] = per_rail[:, :, j]
    for a in range(n):
        stage2[a, :, a, :] = 0  # already delivered in stage 1
    flat = (n * g, n * g)
    return direction_seconds(stage1.reshape(flat), m) + direction_seconds(stage2.reshape(flat), m)


def exchange_seconds(layout, owners, waves, m, design):
    total = 0.0
    for wave in waves:
        X = gather_matrix(layout, owners, wave, m)
        # Packing and unpacking (and the segment checksums): every byte a rank sends or
        # receives, its own included, once each way.
        handled = np.maximum(X.sum(1) + X.sum(0), 0).max()
        total += 2 * handled * m.copy_ns * 1e-9 * m.memory_slowdown()
        if design == "hierarchical" and 1 < m.nodes < m.ranks:
            # Two more passes over the rank's bytes each way: packed for the node stage,
            # repacked (or placed) for the rail stage.
            total += two_stage(X, m) + two_stage(X.T.copy(), m)
            total += 2 * 2 * handled * m.copy_ns * 1e-9 * m.memory_slowdown()
        else:
            total += direction_seconds(X, m) + direction_seconds(X.T.copy(), m)
    return total


# Local mode's collectives are MPI_Ireduce and MPI_Ibcast, which Open MPI 4.1 runs in its
# libnbc component (coll_libnbc, priority 10; tuned serves only the blocking ones). Its
# choices for muond's case (a float sum, one matrix at a time, at least a value per rank):
#   ireduce: 2 ranks: a chain (the whole vector to the root, in segments); 3 or more:
#            Rabenseifner (reduce-scatter by recursive halving, then a binomial gather);
#   ibcast:  up to 4 ranks linear (the root sends the whole vector to each); more: binomial.
# Each is a sequence of rounds, and each round below is an all-to-all of its own.


def relative(ranks, root):
    """Rank of relative rank v (as libnbc numbers them from the root)."""
    return lambda v: (v + root) % ranks


def reduce_rounds(ranks, root, nbytes):
    """The rounds of libnbc's ireduce as (sender, receiver, bytes) lists."""
    at = relative(ranks, root)
    if ranks == 2:
        return [[(at(1), at(0), nbytes)]]
    pof2 = 1 << (ranks.bit_length() - 1)
    extra = ranks - pof2
    rounds = []
    if extra:  # the first 2*extra ranks fold in pairs: one of each pair drops out
        rounds.append([(at(2 * i), at(2 * i + 1), nbytes) for i in range(extra)])
    members = [at(2 * i + 1) for i in range(extra)] + [at(v) for v in range(2 * extra, ranks)]
    levels = pof2.bit_length() - 1
    for k in range(levels):  # reduce-scatter: halves, then quarters, ... with each partner
        part = nbytes / 2 ** (k + 1)
        rounds.append([(members[v], members[v ^ (1 << k)], part) for v in range(pof2)])
    distance = pof2 // 2
    while distance:  # gather to members[0]: half the holders send, and the blocks double
        rounds.append([(members[v], members[v - distance], nbytes / (2 * distance))
                       for v in range(distance, 2 * distance)])
        distance //= 2
    if members[0] != root:
        rounds.append([(members[0], root, nbytes)])
    return rounds


def bcast_rounds(ranks, root, nbytes):
    """The rounds of libnbc's ibcast: linear up to 4 ranks, binomial beyond."""
    at = relative(ranks, root)
    if ranks <= 4:
        return [[(root, at(v), nbytes) for v in range(1, ranks)]]
    rounds, reach = [], 1
    while reach < ranks:
        rounds.append([(at(v), at(v + reach), nbytes) for v in range(reach) if v + reach < ranks])
        reach *= 2
    return rounds


def rounds_seconds(rounds, m):
    total = 0.0
    for edges in rounds:
        X = np.zeros((m.ranks, m.ranks))
        for src, dst, nbytes in edges:
            X[src, dst] += nbytes
        total += direction_seconds(X, m)
    return total


def local_mode_seconds(layout, owners, m):
    """Local mode: each matrix in turn summed to its owner and broadcast back, one collective
    after the other, as libnbc runs them."""
    if m.ranks == 1:
        return 0.0
    total = 0.0
    for i, (_, rows, cols, _, _) in enumerate(layout.matrices):
        nbytes = rows * cols * 4
        total += rounds_seconds(reduce_rounds(m.ranks, owners[i], nbytes), m)
        total += rounds_seconds(bcast_rounds(m.ranks, owners[i], nbytes), m)
    return total


def ring_allgather_seconds(layout, m):
    """Moonlight-style reduce-scatter + all-gather: the gradient reduce-scatter is AdamW's as
    well (not counted); every matrix is all-gathered to every rank (ring: (R-1)/R of it in,
    R-1 latencies) and orthogonalized there."""
    b = sum(r * c for _, r, c, _, _ in layout.matrices) * layout.es
    rate = m.link_Bps if m.nodes > 1 else m.intra_Bps
    alpha = m.link_alpha if m.nodes > 1 else m.intra_alpha
    return (m.ranks - 1) / m.ranks * b / rate + (m.ranks - 1) * alpha


# ---- a step -------------------------------------------------------------------------------


def predict(layout, m, design="flat", certificate=0.02):
    """Phases in ms. design: flat | hierarchical (sharded mode) | rs-ag; local mode by layout."""
    owners, waves = owner_plan(layout, m.ranks)
    per_matrix = [m.kernel_ms(r, c, it) * (1 + certificate) for _, r, c, _, it in layout.matrices]
    rank_ms = np.zeros(m.ranks)
    for i, t in enumerate(per_matrix):
        rank_ms[owners[i]] += t
    rank_ms = m.finish_times(rank_ms)
    # Every rank waits for the slowest owner at the verdict agreement, inside compute; bench
    # step's fallback phase (the agreement, rechecks and fallback solves) is that wait on the
    # least-loaded rank, as no matrix falls back here.
    compute, wait = rank_ms.max(), rank_ms.max() - rank_ms.min()
    if design == "rs-ag":
        compute, wait = m.finish_times([sum(per_matrix)] * m.ranks).max(), 0.0
        exchange = 1e3 * ring_allgather_seconds(layout, m)
    elif layout.mode == "local":
        exchange = 1e3 * local_mode_seconds(layout, owners, m)
    else:
        exchange = 1e3 * exchange_seconds(layout, owners, waves, m, design)
    if layout.mode == "local":
        elements = layout.parameters()  # replicated: every rank updates everything
    else:
        elements = sum(shard_rows(r, m.ranks)[0] * c for _, r, c, _, _ in layout.matrices) + \
            layout.vector_elements / m.ranks
    momentum = elements * m.momentum_ns * 1e-6 * m.memory_slowdown()
    if layout.mode == "local" and m.ranks > 1:  # an allreduce per AdamW parameter
        levels = math.ceil(math.log2(m.ranks))
        alpha = m.link_alpha if m.nodes > 1 else m.intra_alpha
        momentum += 1e3 * layout.vector_count * 2 * levels * alpha
    apply = elements * m.apply_ns * 1e-6 * m.memory_slowdown()
    total = momentum + exchange + compute + apply
    return {"momentum_ms": momentum, "exchange_ms": exchange, "compute_ms": compute,
            "fallback_ms": wait, "apply_ms": apply, "total_ms": total, "waves": len(waves)}


# ---- forward-backward, for the overhead ---------------------------------------------------

# Global batch per step in tokens (fixed as the job grows: strong scaling of data parallelism)
# and the model FLOP utilization stated for forward-backward; 6 FLOPs per parameter per token.
TOKENS = {"gpt2-small": 512 * 1024, "1b": 1024 * 2048, "7b": 1024 * 4096}
MFU = 0.40


def forward_backward_ms(layout, gpus, gpu):
    tokens = TOKENS.get(layout.name, 1024 * 2048)
    return 1e3 * 6 * layout.parameters() * tokens / (gpus * GPUS[gpu][0] * MFU)


def adamw_ms(layout, gpus, gpu):
    """AdamW on a ZeRO-1 shard: about 28 bytes of HBM traffic per element."""
    return 1e3 * layout.parameters() / gpus * 28 / GPUS[gpu][1]


def extrapolate(layout, gpu_counts, gpu, per_node, inter_gbit):
    rows = []
    for gpus in gpu_counts:
        m = gpu_machine(gpus, gpu, per_node, inter_gbit)
        fb = forward_backward_ms(layout, gpus, gpu)
        row = {"layout": layout.name, "gpus": gpus, "nodes": m.nodes, "gpu": gpu,
               "forward_backward_ms": fb, "adamw_ms": adamw_ms(layout, gpus, gpu)}
        for design in ("flat", "hierarchical", "rs-ag"):
            p = predict(layout, m, design)
            row[design] = p
        best = min(("flat", "hierarchical"), key=lambda d: row[d]["total_ms"])
        step = row[best]["total_ms"]
        row["best_design"] = best
        row["overhead_percent"] = 100 * step / fb
        row["throughput_vs_adamw"] = (fb + row["adamw_ms"]) / (fb + step)
        row["connections_per_rank_flat"] = gpus - 1
        row["connections_per_rank_hierarchical"] = (m.per_node - 1) + (m.nodes - 1)
        rows.append(row)
    return rows


def print_extrapolation(rows):
    print(f"# muond model: {rows[0]['layout']} on {rows[0]['gpu'].upper()} (8 per node, NVLink "
          "in a node, 400 Gbit/s per GPU between nodes); optimizer step in ms by exchange design")
    print(f"{'GPUs':>5} {'fwd-bwd':>9} {'flat':>9} {'2-stage':>9} {'rs+ag':>9} {'compute':>8} "
          f"{'overhead':>8} {'vs AdamW':>8} {'peers flat/2-st':>15}")
    for r in rows:
        print(f"{r['gpus']:>5} {r['forward_backward_ms']:>9.2f} {r['flat']['total_ms']:>9.2f} "
              f"{r['hierarchical']['total_ms']:>9.2f} {r['rs-ag']['total_ms']:>9.2f} "
              f"{r[r['best_design']]['compute_ms']:>8.2f} {r['overhead_percent']:>7.1f}% "
              f"{100 * (r['throughput_vs_adamw'] - 1):>+7.1f}% "
              f"{r['connections_per_rank_flat']:>7}/{r['connections_per_rank_hierarchical']:<7}")


# ---- validation against bench scaling -----------------------------------------------------

PHASES = ("momentum_ms", "exchange_ms", "compute_ms", "fallback_ms", "apply_ms", "total_ms")


def namespace_machine(point, fit):
    """The namespace cluster of a bench scaling point: one veth per node at the shaped rate,
    shared memory within a node, every rank on this host's cores; bench kernels' time per
    shape times the step's own factor over it (fitted at one node)."""
    kernels = {(k["rows"], k["cols"], k["iters"]): k["median_ms"] for k in point["kernels"]}
    alpha = point.get("link_alpha") or NAMESPACE_ALPHA
    return Machine(point["nodes"], point["ranks"] // point["nodes"], point["link_gbit"] * 1e9 / 8,
                   alpha, NAMESPACE_SHM_BPS, NAMESPACE_ALPHA,
                   lambda r, c, it: kernels[(r, c, it)] * fit["compute_factor"],
                   fit["momentum_ns"], fit["apply_ns"], cores=point["cores"], copy_ns=fit["copy_ns"],
                   memory_streams=point.get("memory_streams"),
                   # bench scaling's slowdown per count of ranks at once (JSON keys are text)
                   sharing={int(k): f for k, f in point["compute_sharing"].items()}
                   if point.get("compute_sharing") else None)


# For the namespace cluster where bench scaling did not measure it: a message over TCP and a
# veth costs about 50 us; shared memory moves about 4 GB/s per rank pair. (bench scaling
# measures the latency of one exchange across two nodes and records it as link_alpha.)
NAMESPACE_ALPHA = 50e-6
NAMESPACE_SHM_BPS = 4e9


def elements_of(layout, ranks):
    if layout.mode == "local":
        return layout.parameters()
    return sum(shard_rows(r, ranks)[0] * c for _, r, c, _, _ in layout.matrices) + \
        layout.vector_elements / ranks


def calibrate(points):
    """From each family's one-node point (scaling and mode), the only fitted numbers: the cost
    per element of momentum and apply, per byte of the exchange's packing, and the step's
    compute over bench kernels' (the certificate, cold caches). Points of more nodes are then
    predictions from these, bench kernels, the plan and the shaped link."""
    fits = {}
    for p in points:
        if p["nodes"] != 1 or (p["scaling"], p["mode"]) in fits or p.get("exchange", "flat") != "flat":
            continue
        layout = load_layout(p["layout_path"])
        m = namespace_machine(p, {"compute_factor": 1.0, "momentum_ns": 0.0, "apply_ns": 0.0,
                                  "copy_ns": 0.0})
        e = elements_of(layout, p["ranks"])
        bare = predict(layout, m, certificate=0.0)
        owners, waves = owner_plan(layout, m.ranks)
        handled = sum(2 * (X.sum(1) + X.sum(0)).max()
                      for X in (gather_matrix(layout, owners, w, m) for w in waves))
        slow = m.memory_slowdown()
        fits[(p["scaling"], p["mode"])] = {
            "momentum_ns": 1e6 * p["momentum_ms"] / e / slow,
            "apply_ns": 1e6 * p["apply_ms"] / e / slow,
            "compute_factor": p["compute_ms"] / bare["compute_ms"],
            "copy_ns": 1e6 * max(p["exchange_ms"] - bare["exchange_ms"], 0.0) / handled / slow
            if layout.mode == "sharded" and handled else 0.0}
    # At one node the sharded and the local step run the same kernels on the same matrices:
    # one factor per family, from both modes' points (each is one noisy measurement).
    for kind in {k for k, _ in fits}:
        same = [f for (k, _), f in fits.items() if k == kind]
        factor = float(np.mean([f["compute_factor"] for f in same]))
        for f in same:
            f["compute_factor"] = factor
    return fits


def validate(points):
    fits = calibrate(points)
    rows = []
    for p in points:
        if (p["scaling"], p["mode"]) not in fits:
            continue
        layout = load_layout(p["layout_path"])
        m = namespace_machine(p, fits[(p["scaling"], p["mode"])])
        design = p.get("exchange", "flat")
        pred = predict(layout, m, design, certificate=0.0)  # the fitted factor holds it
        # Below a millisecond both ways, a phase is nothing here: no relative error.
        errors = {k: (pred[k] - p[k]) / p[k] if max(p[k], pred[k]) >= 1.0 else 0.0 for k in PHASES}
        rows.append({"scaling": p["scaling"], "layout": layout.name, "mode": layout.mode,
                     "exchange": design,
                     "nodes": p["nodes"], "ranks": p["ranks"], "measured": {k: p[k] for k in PHASES},
                     "predicted": {k: pred[k] for k in PHASES}, "error": errors,
                     "spread": p.get("spread", {k: 0.0 for k in PHASES})})
    return rows


# The phases the validation is judged on: the two that make the step, and the step itself.
# Momentum, apply and the agreement wait (bench step's fallback) are a few percent of a step
# here and are printed, not judged.
JUDGED = ("exchange_ms", "compute_ms", "total_ms")


def print_validation(rows):
    print("# muond model --validate: measured/predicted ms and predicted/measured - 1")
    print(f"{'scaling':<8} {'layout':<16} {'mode':<7} {'exchange':<12} {'nodes':>5} {'ranks':>5} " +
          " ".join(f"{k[:-3]:>20}" for k in PHASES))
    for r in rows:
        cells = [f"{r['measured'][k]:8.1f}/{r['predicted'][k]:<7.1f}{100 * r['error'][k]:+4.0f}%"
                 for k in PHASES]
        print(f"{r['scaling']:<8} {r['layout']:<16} {r['mode']:<7} {r['exchange']:<12} "
              f"{r['nodes']:>5} {r['ranks']:>5} " + " ".join(f"{c:>20}" for c in cells))
    worst, noise = {}, {}
    for r in rows:
        for k in JUDGED:
            key = (r["nodes"], k)
            worst[key] = max(worst.get(key, 0.0), abs(r["error"][k]))
            noise[key] = max(noise.get(key, 0.0), r["spread"][k])
    for nodes in sorted({r["nodes"] for r in rows}):
        parts = ", ".join(f"{k[:-3]} {100 * worst[(nodes, k)]:.0f}%" for k in JUDGED)
        spread = ", ".join(f"{k[:-3]} {100 * noise[(nodes, k)]:.0f}%" for k in JUDGED)
        print(f"largest |error| at {nodes} node(s): {parts}; largest spread over rounds: {spread}")
    return max(worst.values(), default=0.0)


def emit(rows, as_json, print_table):
    """Rows as JSON lines, or the table print_table makes of them."""
    if as_json:
        for r in rows:
            print(json.dumps(r))
    else:
        print_table(rows)


def usage_error(message):
    """A bad option or file: the message and exit status 2, as muond's C commands do."""
    print(f"muond model: {message}", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(prog="muond model", description=__doc__.split("\n\n")[0])
    ap.add_argument("--layout", default="gpt2-small",
                    help="a layout file or a family: " + ", ".join(FAMILIES) + " (default gpt2-small)")
    ap.add_argument("--gpus", default="8,16,32,64,128,256,512,1024",
                    help="GPU counts (comma-separated; default 8..1024)")
    ap.add_argument("--gpu", choices=sorted(GPUS), default="h100")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--inter-gbit", type=float, default=400.0, help="NIC rate per GPU (Gbit/s)")
    ap.add_argument("--validate", metavar="FILE.jsonl",
                    help="compare with the measurements of muond bench scaling --json-out")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    a = ap.parse_args()
    if a.validate:
        try:
            with open(a.validate) as f:
                points = [json.loads(line) for line in f if '"point"' in line]
        except (OSError, ValueError) as e:
            usage_error(f"--validate: cannot read {a.validate}: {e}")
        if not points:
            usage_error(f"--validate: {a.validate} holds no bench scaling points")
        emit(validate(points), a.json, print_validation)
        return 0
    try:
        gpu_counts = [int(x) for x in a.gpus.split(",")]
    except ValueError:
        usage_error(f"--gpus: '{a.gpus}' is not a comma-separated list of counts")
    if a.gpus_per_node < 1 or any(g < 1 or (g > a.gpus_per_node and g % a.gpus_per_node)
                                  for g in gpu_counts):
        usage_error(f"--gpus: every count must be positive, and a multiple of --gpus-per-node "
                    f"({a.gpus_per_node}) once it exceeds it")
    try:
        layout = layout_from(a.layout)
    except (OSError, ValueError, KeyError) as e:
        usage_error(f"--layout {a.layout}: not a layout file or a family ({', '.join(FAMILIES)}): {e}")
    emit(extrapolate(layout, gpu_counts, a.gpu, a.gpus_per_node, a.inter_gbit), a.json,
         print_extrapolation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
