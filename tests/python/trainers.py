"""Trainers the Python tests run under `muond launch`: python3 trainers.py SCENARIO OUT_DIR.
Each checks what it can see itself (an assertion fails the trainer, so the launch, so the
test) and rank 0 writes what the test compares to OUT_DIR/SCENARIO.json (weights to .pt)."""

import json
import os
import pathlib
import sys
import warnings

import torch

import muond
import muond.torch


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                               torch.nn.ReLU(), torch.nn.Linear(8, 3))


def batch(rank, step):
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(16, 6, generator=g), torch.randn(16, 3, generator=g)


def train_step(model, opt, rank, step):
    opt.zero_grad()
    x, y = batch(rank, step)
    ((model(x) - y) ** 2).mean().backward()
    opt.step()


def api(out):
    """Zero copy, groups, zero_grad, state_dict, step events, a replaced .grad, close."""
    model = mlp()
    opt = muond.torch.Optimizer(model)
    rank = opt.client.rank
    for p, info in opt._pairs:
        assert p.data.data_ptr() == info.weights.ctypes.data, f"{info.name}: weights not shared"
        assert p.grad.data_ptr() == info.grads.ctypes.data, f"{info.name}: grads not shared"
    kinds = sorted(g["kind"] for g in opt.param_groups)
    assert set(opt.defaults) == {"lr", "weight_decay", "momentum"}, opt.defaults
    for step in range(1, 7):
        train_step(model, opt, rank, step)
    assert opt.bytes_copied == 0, f"the zero-copy path copied {opt.bytes_copied} bytes"
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    assert all(not info.grads.any() for info in opt.client.params), "shared grads not zeroed"
    state = opt.state_dict()
    assert state["muond"]["steps_done"] == 6, state["muond"]
    stale = dict(state, muond=dict(state["muond"], steps_done=2))
    try:
        opt.load_state_dict(stale)
        raise AssertionError("a state dict of step 2 was loaded at step 6")
    except muond.MuondError as e:
        refused = str(e)
    state["param_groups"][0]["lr"] = 0.0125
    opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.0125
    events = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in (7, 8):  # the daemon plants nan-grad at 7 and illcond at 8 (see the test)
            train_step(model, opt, rank, step)
            events[step] = {"skipped": opt.last_result.skipped,
                            "fallback": opt.last_result.fallback_params,
                            "status": opt.last_result.status}
    step_warnings = [str(w.message) for w in caught if w.category is muond.StepWarning]
    model[0].weight.grad = torch.zeros_like(model[0].weight)  # user code replacing a .grad
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_step(model, opt, rank, 9)
    copied = opt.bytes_copied
    rebind_warnings = [str(w.message) for w in caught if w.category is RuntimeWarning]
    shared = model[0].weight.data_ptr()
    opt.close()
    assert model[0].weight.data_ptr() != shared and model(torch.ones(1, 6)).shape == (1, 3)
    if rank == 0:
        write(out, "api", kinds=kinds, refused=refused, events=events, copied=copied,
              step_warnings=step_warnings, rebind_warnings=rebind_warnings)


def constant_gradient_model():
    torch.manual_seed(3)
    return torch.nn.Linear(4, 6)


def schedules(out):
    """Gradients that never change: Muon's update is then -lr scale polar(G) and AdamW's
    -lr G / (|G| + eps) at every step, so the change of the weights divided by the rate the
    scheduler set must stay the same whatever the scheduler does."""
    model = constant_gradient_model()
    g = torch.Generator().manual_seed(4)
    cw, cb = torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    opt = muond.torch.Optimizer(model, lr=0.02, adamw_lr=0.01)
    kinds = {g["kind"]: g for g in opt.param_groups}
    assert set(kinds) == {"muon", "adamw"}, kinds

    def step():
        before = (model.weight.detach().clone(), model.bias.detach().clone())
        rates = (kinds["muon"]["lr"], kinds["adamw"]["lr"])
        opt.zero_grad()
        ((model.weight * cw).sum() + (model.bias * cb).sum()).backward()
        opt.step()
        dw = (model.weight.detach() - before[0]).abs().sum().item()
        db = (model.bias.detach() - before[1]).abs().sum().item()
        return dw, db, rates

    results = {}
    for name, make in [
        ("StepLR", lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)),
        ("LambdaLR", lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 4)),
        ("CosineAnnealingLR", lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)),
        ("OneCycleLR", lambda: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[0.03, 0.01], total_steps=8, cycle_momentum=True)),
    ]:
        for group, lr in zip(opt.param_groups, (0.02, 0.01)):
            group.pop("initial_lr", None)
            group["lr"] = lr
        sched = make()
        rows = []
        for _ in range(4):
            rows.append(step())
            sched.step()
        results[name] = rows
    momentum = kinds["muon"]["momentum"]
    opt.close()
    if opt.client.rank == 0:
        write(out, "schedules", results=results, momentum_after_one_cycle=momentum)


def sharded(out):
    """The digits-like MLP for 12 steps in sharded or local mode (the layout says which);
    sharded mode on several ranks averages gradients and gathers rows with torch.distributed."""
    model = mlp()
    layout_mode = json.loads(pathlib.Path(os.environ["MUOND_LAYOUT"]).read_text())
    if layout_mode["gradient_mode"] == "sharded" and int(os.environ["MUOND_RANKS"]) > 1:
        muond.torch.init_distributed()
    opt = muond.torch.Optimizer(model)
    for step in range(1, 13):
        train_step(model, opt, opt.client.rank, step)
    rank, whole, copied = opt.client.rank, opt._whole, opt.bytes_copied
    opt.close()
    if rank == 0:
        name = f"sharded-{layout_mode['gradient_mode']}"
        torch.save(model.state_dict(), pathlib.Path(out) / f"{name}.pt")
        write(out, name, whole=whole, copied=copied)


def sharded_without_distributed(out):
    try:
        muond.torch.Optimizer(mlp())
        raise AssertionError("sharded mode on several ranks started without torch.distributed")
    except muond.MuondError as e:
        if muond.client.resolve_rank() == 0:
            write(out, "sharded_without_distributed", error=str(e))


def write(out, name, **values):
    (pathlib.Path(out) / f"{name}.json").write_text(json.dumps(values))


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"api": api, "schedules": schedules, "sharded": sharded,
     "sharded_without_distributed": sharded_without_distributed}[sys.argv[1]](sys.argv[2])
