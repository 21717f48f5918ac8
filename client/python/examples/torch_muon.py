"""Muon in plain PyTorch, written from its published algorithm (Keller Jordan et al., "Muon: An
optimizer for hidden layers in neural networks", 2024), as the in-process reference that
muond is compared against (client/python/examples/digits.py, tests/python, bench/):

    buf = momentum * buf + g                       (heavy-ball momentum)
    u   = g + momentum * buf                       (Nesterov) or buf
    X   = u / (||u||_F + 1e-7), on the short side (transposed when rows > cols)
    5 x:  A = X X^T;  B = b A + c A^2;  X = a X + B X      (a, b, c) = (3.4445, -4.7750, 2.0315)
    p  -= lr * sqrt(max(1, rows / cols)) * X       (after decoupled weight decay p *= 1 - lr wd)

for matrices (conv kernels flattened to out x in*kh*kw), and AdamW for the rest (the formula
torch.optim.AdamW computes). It shares no code with muond.
"""

import torch

NS5_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(g, steps=5):
    a, b, c = NS5_COEFFICIENTS
    x = g
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * (s @ s)) @ x
    return x.T if tall else x


class TorchMuon(torch.optim.Optimizer):
    """Muon for the parameters in `matrices`, AdamW for `others`: two param groups (kind
    "muon" and "adamw"), so that an LR scheduler drives both."""

    def __init__(self, matrices, others, lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0,
                 adamw_lr=3e-4, adamw_betas=(0.9, 0.95), adamw_eps=1e-8, adamw_weight_decay=0.0,
                 ns_steps=5):
        groups = [{"params": list(matrices), "kind": "muon", "lr": lr, "momentum": momentum,
                   "weight_decay": weight_decay}]
        others = list(others)
        if others:
            groups.append({"params": others, "kind": "adamw", "lr": adamw_lr,
                           "betas": adamw_betas, "eps": adamw_eps,
                           "weight_decay": adamw_weight_decay})
        super().__init__(groups, dict(nesterov=nesterov, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    (self._muon if group["kind"] == "muon" else self._adamw)(group, p)

    def _muon(self, group, p):
        buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
        buf.mul_(group["momentum"]).add_(p.grad)
        u = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
        o = newton_schulz5(u.reshape(len(u), -1), group["ns_steps"])
        o *= max(1.0, o.size(0) / o.size(1)) ** 0.5
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(o.view_as(p), alpha=-group["lr"])

    def _adamw(self, group, p):
        """AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW computes it."""
        state = self.state[p]
        if not state:
            state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        beta1, beta2 = group["betas"]
        state["step"] += 1
        state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
        state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        p.mul_(1 - group["lr"] * group["weight_decay"])
        correction1 = 1 - beta1 ** state["step"]
        correction2 = 1 - beta2 ** state["step"]
        denominator = (state["v"].sqrt() / correction2 ** 0.5).add_(group["eps"])
        p.addcdiv_(state["m"], denominator, value=-group["lr"] / correction1)
