"""muond.torch: a torch.optim.Optimizer whose step is muond's.

    model = Net()
    opt = muond.torch.Optimizer(model)            # connects to this trainer's muond rank
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()           # gradients land in shared memory
        opt.step()                                # the daemon updates the weights in place
        sched.step()

Zero copy (local gradient mode, or one rank): every parameter's .data and .grad are views
of the memory the daemon shares with this trainer, so backward() accumulates gradients
where the daemon reads them and the updated weights are the model's weights; step() copies
no parameter bytes (`bytes_copied` counts any copy the optimizer had to make, e.g. after
user code replaced a .grad tensor, and warns once).

Hyper-parameters: param_groups hold 'lr', 'weight_decay' and 'momentum' (Muon's beta for
matrix methods, AdamW's beta1 for adamw), one group per distinct set in the daemon's layout
('kind' says which); every step() sends their current values, so torch's LR schedulers
(LambdaLR, CosineAnnealingLR, OneCycleLR with its momentum cycling, warmup chains) work
unchanged. The optimizer state itself (momentum, AdamW moments) lives in the daemon:
state_dict() carries the groups and the step count, and names the daemon's checkpoints
(`--checkpoint-dir`, `--resume`) as the way to keep and restore the rest.

Sharded gradient mode with several ranks: each trainer's region holds only its rows, so the
model's parameters stay private tensors; step() averages the gradients over the trainers
with torch.distributed (init_distributed() sets it up), hands in this rank's rows and
gathers the updated rows back. That path copies (it is what sharding costs); the zero-copy
path is local mode.
"""

import os
import time
import warnings
import weakref
from datetime import timedelta

import torch
import torch.distributed as dist

from . import client as _client
from ._errors import LayoutMismatchError, MuondError, ParameterError
from .layout import _layout_shape

__all__ = ["Optimizer", "init_distributed"]


def init_distributed(backend="gloo", timeout=120.0):
    """torch.distributed among the trainers of this job (needed by sharded gradient mode on
    several ranks): rank and world size from muond launch (MUOND_RANK, MUOND_RANKS), srun or
    torchrun's variables; a file store in muond launch's private run directory, else env://
    (MASTER_ADDR, MASTER_PORT)."""
    if dist.is_initialized():
        return
    rank = _client.resolve_rank()
    world = next((int(os.environ[v]) for v in ("MUOND_RANKS", "WORLD_SIZE", "SLURM_NTASKS")
                  if os.environ.get(v)), None)
    if world is None:
        raise MuondError("init_distributed: no world size (run under `muond launch`, srun, or "
                         "set WORLD_SIZE)")
    run_dir = os.environ.get("MUOND_RUN_DIR")
    init = f"file://{run_dir}/torch-distributed-store" if run_dir else "env://"
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout))


def _check_tensor(name, param):
    if param.dtype != torch.float32:
        raise ParameterError(f"parameter '{name}' is {param.dtype}: muond shares float32 "
                             f"weights and gradients (convert the model with model.float())")
    if param.device.type != "cpu":
        raise ParameterError(f"parameter '{name}' is on {param.device}: the Python client "
                             f"shares host memory (keep the model on the CPU)")
    if not param.is_contiguous():
        raise ParameterError(f"parameter '{name}' is not contiguous (stride {param.stride()} "
                             f"for shape {tuple(param.shape)}): make it so with "
                             f"param.data = param.data.contiguous() before creating the "
                             f"optimizer")


def _all_named_parameters(model):
    from .layout import named_parameters_untied  # refuses tied parameters, naming both
    trainable = named_parameters_untied(model)
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    return trainable, dict(frozen)


def _match(named, infos):
    """[(param, info)] in layout order, from _all_named_parameters' result; every
    disagreement names the parameter and shapes."""
    trainable, frozen = named
    in_model = dict(trainable)
    pairs = []
    for info in infos:
        if info.name in frozen:
            raise LayoutMismatchError(f"parameter '{info.name}' is in the daemon's layout but "
                                      f"frozen in the model (requires_grad=False)")
        if info.name not in in_model:
            raise LayoutMismatchError(
                f"parameter '{info.name}' (shape {list(info.shape)}) is in the daemon's layout "
                f"but not in the model (was the layout written for another model?)")
        param = in_model.pop(info.name)
        if _layout_shape(param.shape) != list(info.shape):
            raise LayoutMismatchError(
                f"parameter '{info.name}': the model's shape is {list(param.shape)}, the "
                f"daemon's layout says {list(info.shape)}")
        _check_tensor(info.name, param)
        pairs.append((param, info))
    if in_model:
        name, param = next(iter(in_model.items()))
        raise LayoutMismatchError(
            f"parameter '{name}' (shape {list(param.shape)}) is in the model but not in the "
            f"daemon's layout ({len(in_model)} such parameter(s); regenerate the layout with "
            f"muond.layout_from_model)")
    return pairs


def _groups(pairs, overrides):
    """One group per distinct (kind, lr, weight_decay, momentum), in layout order."""
    groups = {}
    for param, info in pairs:
        kind = "muon" if info.is_matrix else "adamw"
        mine = overrides[kind]
        values = tuple(info_value if mine[key] is None else float(mine[key])
                       for key, info_value in (("lr", info.lr),
                                               ("weight_decay", info.weight_decay),
                                               ("momentum", info.momentum)))
        group = groups.setdefault((kind,) + values, {
            "params": [], "names": [], "indices": [], "kind": kind, "lr": values[0],
            "weight_decay": values[1], "momentum": values[2]})
        group["params"].append(param)
        group["names"].append(info.name)
        group["indices"].append(info.index)
    return list(groups.values())


def _close_client(client):
    client.close()


class Optimizer(torch.optim.Optimizer):
    """The optimizer of `model`, stepped by its muond rank.

    Optimizer(model, *, lr=None, weight_decay=None, momentum=None, adamw_lr=None,
              adamw_weight_decay=None, adamw_momentum=None, rank=None, layout=None,
              digest=None, socket=None, timeout=60.0, warn=True)

    The model's trainable parameters must be exactly the daemon's layout (names and shapes),
    float32, contiguous, on the CPU and untied. lr, weight_decay, momentum set the starting
    values of every matrix parameter (None: the layout's), the adamw_ ones those of every
    AdamW parameter. rank, layout/digest, socket and timeout say which daemon to connect to
    (defaults from the environment `muond launch` sets). warn: issue a StepWarning when a
    step fell back or skipped a parameter (the details are in `last_result` either way).

    At connection, a fresh daemon (no step done) takes the model's initial weights; a
    resumed one (`--resume`) gives the model its weights instead.
    """

    def __init__(self, model, *, lr=None, weight_decay=None, momentum=None, adamw_lr=None,
                 adamw_weight_decay=None, adamw_momentum=None, rank=None, layout=None,
                 digest=None, socket=None, timeout=60.0, warn=True):
        named = _all_named_parameters(model)  # tied parameters are refused before connecting
        self._client = _client.Client(rank=rank, digest=digest, layout=layout, socket=socket,
                                      timeout=timeout)
        self._finalizer = weakref.finalize(self, _close_client, self._client)
        try:
            pairs = _match(named, self._client.params)
            groups = _groups(pairs, {
                "muon": {"lr": lr, "weight_decay": weight_decay, "momentum": momentum},
                "adamw": {"lr": adamw_lr, "weight_decay": adamw_weight_decay,
                          "momentum": adamw_momentum}})
            first = groups[0]
            super().__init__(groups, {k: first[k] for k in ("lr", "weight_decay", "momentum")})
            self._pairs = pairs
            self._whole = all(info.whole for _, info in pairs)
            if not self._whole:
                self._check_distributed()
            self._bind()
        except BaseException:
            self.close()
            raise
        self.warn = warn
        self.bytes_copied = 0          # parameter bytes copied by step() (0 on the zero-copy path)
        self.python_seconds = 0.0      # time step() spent in Python (the client's own share)
        self.daemon_seconds = 0.0      # time step() waited for the daemon
        self._sent = {}                # per group: the hyper-parameters last sent
        self._rebind_warned = False

    # ---- construction ------------------------------------------------------------------

    def add_param_group(self, param_group):
        if getattr(self, "_pairs", None) is not None:
            raise MuondError("muond's parameters are fixed by the daemon's layout; a group "
                             "cannot be added after construction")
        super().add_param_group(param_group)

    def _check_distributed(self):
        ranks = self._client.ranks
        if not dist.is_available() or not dist.is_initialized():
            raise MuondError(
                f"sharded gradient mode on {ranks} ranks: this trainer's region holds only its "
                f"rows, so the optimizer averages gradients and gathers weights with "
                f"torch.distributed; call muond.torch.init_distributed() first, or use a "
                f"layout with gradient_mode local")
        if dist.get_world_size() != ranks or dist.get_rank() != self._client.rank:
            raise MuondError(f"torch.distributed has rank {dist.get_rank()} of "
                             f"{dist.get_world_size()}; muond has rank {self._client.rank} of "
                             f"{ranks}: they must be the same")

    @torch.no_grad()
    def _bind(self):
        """Whole regions: the parameters become views of the shared memory. A fresh daemon
        takes the model's weights; a resumed one gives them."""
        fresh = self._client.steps_done == 0
        if not self._whole:
            self._sharded_bind(fresh)
            return
        self._views = []
        for param, info in self._pairs:
            w = torch.from_numpy(info.weights).view(param.shape)
            g = torch.from_numpy(info.grads).view(param.shape)
            if fresh:
                w.copy_(param.data)
            g.zero_()
            param.data = w
            param.grad = g
            self._views.append((param, w, g))

    # ---- the step ------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure=None):
        """Sends this step's hyper-parameters and gradients' readiness to the daemon, waits
        for the update, and returns closure's loss (if a closure was given)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        start = time.perf_counter()
        if self._whole:
            self._reattach()
        else:
            self._sharded_hand_in()
        self._send_hyper()
        asked = time.perf_counter()
        self.last_result = self._client.step(warn=self.warn)
        answered = time.perf_counter()
        if not self._whole:
            self._sharded_gather()
        done = time.perf_counter()
        self.python_seconds += (asked - start) + (done - answered)
        self.daemon_seconds += answered - asked
        return loss

    def _reattach(self):
        """Gradients and weights must still be the shared views; code that replaced them
        (p.grad = ..., p.data = ...) costs a copy, counted and warned about once."""
        for param, w, g in self._views:
            if param.grad is None:
                g.zero_()  # no gradient reached it this step
                param.grad = g
            elif param.grad.data_ptr() != g.data_ptr():
                g.copy_(param.grad)
                param.grad = g
                self._copied(g, "a .grad")
            if param.data.data_ptr() != w.data_ptr():
                w.copy_(param.data)
                param.data = w
                self._copied(w, "a .data")

    def _copied(self, tensor, what):
        self.bytes_copied += tensor.numel() * tensor.element_size()
        if not self._rebind_warned:
            self._rebind_warned = True
            warnings.warn(f"muond: {what} tensor was replaced, so step() copied it back into "
                          f"shared memory (zero copy needs the tensors muond gave; zero "
                          f"gradients with optimizer.zero_grad())", RuntimeWarning, stacklevel=4)

    def _send_hyper(self):
        for i, group in enumerate(self.param_groups):
            values = (float(group["lr"]), float(group["weight_decay"]), float(group["momentum"]))
            if self._sent.get(i) == values:
                continue
            for index, name in zip(group["indices"], group["names"]):
                try:
                    self._client.set_hyper(index, *values)
                except ValueError as e:
                    raise ValueError(f"param_groups[{i}] ({group['kind']}): {e}") from None
            self._sent[i] = values

    # ---- sharded mode on several ranks -----------------------------------------------------

    def _rows(self, info, rank):
        ranks = self._client.ranks
        return (rank * info.rows) // ranks, ((rank + 1) * info.rows) // ranks

    def _sharded_bind(self, fresh):
        # Every rank's rows of every parameter, and how many floats that is per rank: fixed by
        # the layout, so worked out once for the gathers of every step.
        ranks = self._client.ranks
        self._rank_rows = [[self._rows(info, r) for _, info in self._pairs] for r in range(ranks)]
        self._rank_floats = [sum((end - begin) * info.cols
                                 for (begin, end), (_, info) in zip(rows, self._pairs))
                             for rows in self._rank_rows]
        if fresh:
            for param, info in self._pairs:
                rows = param.data.reshape(info.rows, info.cols)[info.row_begin:info.row_end]
                torch.from_numpy(info.weights).copy_(rows)
        else:
            self._sharded_gather()

    def _sharded_hand_in(self):
        """The trainers' mean gradient (one all-reduce), of which this rank hands in its rows."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p, _ in self._pairs]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self._client.ranks
        offset = 0
        for param, info in self._pairs:
            n = info.rows * info.cols
            rows = flat[offset:offset + n].view(info.rows, info.cols)[info.row_begin:info.row_end]
            torch.from_numpy(info.grads).copy_(rows)
            offset += n
        self.bytes_copied += flat.numel() * 4

    def _sharded_gather(self):
        """Every rank's updated rows into every trainer's parameters (one all-gather)."""
        sizes = self._rank_floats
        mine = torch.zeros(max(sizes))
        mine[:sizes[self._client.rank]] = torch.cat(
            [torch.from_numpy(info.weights).reshape(-1) for _, info in self._pairs])
        gathered = [torch.empty_like(mine) for _ in sizes]
        dist.all_gather(gathered, mine)
        for rows, flat in zip(self._rank_rows, gathered):
            offset = 0
            for (begin, end), (param, info) in zip(rows, self._pairs):
                n = (end - begin) * info.cols
                param.data.view(info.rows, info.cols)[begin:end] = \
                    flat[offset:offset + n].view(end - begin, info.cols)
                offset += n
        self.bytes_copied += sum(sizes) * 4

    # ---- the rest of torch.optim.Optimizer's interface ------------------------------------

    def zero_grad(self, set_to_none=False):
        """Zeroes the gradients in place. set_to_none is ignored on purpose: the gradients
        are muond's shared memory, and a None gradient would make backward() allocate a new
        tensor (and step() copy it)."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.zero_()

    def state_dict(self):
        """The param groups (hyper-parameters, scheduler fields) and the step count. The
        optimizer state (momentum, AdamW moments) is the daemon's: checkpoint it with
        `muond run --checkpoint-dir DIR` (`muond launch` passes the option on) and continue
        with `--resume DIR`; load_state_dict checks that the daemon is at the same step."""
        state = super().state_dict()
        state["muond"] = {
            "steps_done": self._client.steps_done, "ranks": self._client.ranks,
            "optimizer_state": "kept by the muond daemon: checkpoint it with --checkpoint-dir "
                               "and restore it with --resume"}
        return state

    def load_state_dict(self, state_dict):
        """Restores the param groups; refuses a state dict from another step than the
        daemon's (resume the daemon from its checkpoint of that step first)."""
        state_dict = dict(state_dict)
        saved = state_dict.pop("muond", None)
        if saved is not None and saved["steps_done"] != self._client.steps_done:
            raise MuondError(
                f"this state dict was saved after step {saved['steps_done']}, but the daemon "
                f"is at step {self._client.steps_done}: the optimizer state lives in the "
                f"daemon, so start it with --resume CHECKPOINT_DIR (its checkpoint of step "
                f"{saved['steps_done']}) before loading")
        super().load_state_dict(state_dict)
        self._sent = {}

    @property
    def steps_done(self):
        return self._client.steps_done

    @property
    def client(self):
        return self._client

    def close(self):
        """Says BYE. The parameters get private copies of their weights first, so that the
        model stays usable once the shared memory is gone."""
        client = getattr(self, "_client", None)
        if client is None or client.closed:
            return
        with torch.no_grad():
            for param, _, _ in getattr(self, "_views", []):
                param.data = param.data.clone()
                param.grad = None
        client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
