"""muond.torch.Optimizer under `muond launch`: zero copy, param groups, zero_grad, state_dict,
step events as attributes and warnings; learning-rate schedulers whose rates reach the
daemon (a halved rate halves the update, measured); sharded gradient mode."""

import json

import torch

import muond
import support
from support import PYTHON, TestCase

TRAINERS = support.pathlib.Path(__file__).parent / "trainers.py"


def mlp_layout(scratch, name, **kwargs):
    import trainers
    path = scratch.path / f"{name}.json"
    muond.layout_from_model(trainers.mlp(), path, **kwargs)
    return path


class Optimizer(TestCase):
    def run_trainers(self, scenario, ranks, layout, *run_options, result=None):
        done = support.launch(self.scratch, ranks, layout,
                              [PYTHON, TRAINERS, scenario, self.scratch.path], *run_options)
        self.assertLaunched(done, scenario)
        return json.loads((self.scratch.path / f"{result or scenario}.json").read_text())

    def test_api(self):
        layout = mlp_layout(self.scratch, "mlp")
        r = self.run_trainers("api", 2, layout,
                              "--inject", "nan-grad:param=2.weight:step=7,"
                                          "illcond:param=0.weight:step=8")
        self.assertEqual(r["kinds"], ["adamw", "muon"])
        self.assertIn("saved after step 2, but the daemon is at step 6", r["refused"])
        self.assertIn("--resume", r["refused"])
        self.assertEqual(r["events"]["7"], {"skipped": ["2.weight"], "fallback": [], "status": 1})
        self.assertEqual(r["events"]["8"]["fallback"], ["0.weight"])
        self.assertEqual(r["events"]["8"]["skipped"], [])
        self.assertTrue(any("2.weight skipped (NaN/Inf gradient)" in w
                            for w in r["step_warnings"]), r["step_warnings"])
        self.assertTrue(any("0.weight solved exactly" in w for w in r["step_warnings"]))
        self.assertEqual(r["copied"], 4 * 8 * 6)  # only the replaced 8x6 gradient was copied
        self.assertEqual(len(r["rebind_warnings"]), 1)

    def test_schedulers_reach_the_daemon(self):
        import trainers
        layout = self.scratch.path / "constant.json"
        muond.layout_from_model(trainers.constant_gradient_model(), layout, head=[])
        r = self.run_trainers("schedules", 2, layout)["results"]
        # A rate halved at every step halves every update, of both kinds (measured).
        step_lr = r["StepLR"]
        for k in range(1, 4):
            self.assertAlmostEqual(step_lr[k][0] / step_lr[k - 1][0], 0.5, delta=1e-3)
            self.assertAlmostEqual(step_lr[k][1] / step_lr[k - 1][1], 0.5, delta=1e-3)
        # Any schedule: the update per unit of rate stays the same. (OneCycleLR also cycles
        # AdamW's beta1, which changes AdamW's update; Muon's direction does not change.)
        for name, rows in r.items():
            muon = [dw / lr for dw, _, (lr, _) in rows]
            self.assertLess(max(muon) / min(muon) - 1, 1e-3, f"{name}: {rows}")
            if name != "OneCycleLR":
                adamw = [db / lr for _, db, (_, lr) in rows]
                self.assertLess(max(adamw) / min(adamw) - 1, 1e-3, f"{name}: {rows}")
        rates = [row[2][0] for row in r["LambdaLR"]]
        self.assertEqual(rates, [0.02 * (s + 1) / 4 for s in range(4)])

    def test_sharded_mode(self):
        """Sharded mode on 4 ranks (torch.distributed averages and gathers) ends where local
        mode ends; on one rank it is zero copy; without torch.distributed it says what to do."""
        sharded = mlp_layout(self.scratch, "sharded", gradient_mode="sharded")
        local = mlp_layout(self.scratch, "local")
        r_sharded = self.run_trainers("sharded", 4, sharded, result="sharded-sharded")
        self.assertFalse(r_sharded["whole"])
        self.run_trainers("sharded", 4, local, result="sharded-local")
        a = torch.load(self.scratch.path / "sharded-sharded.pt")
        b = torch.load(self.scratch.path / "sharded-local.pt")
        for name in a:
            # Both average the same four gradients, in another order (gloo's all-reduce, the
            # daemon's MPI one): an fp32 ulp or two per step (1.6e-7 measured after 12 steps
            # of weights of size ~0.3), far below what a wrong row or rank would give (~1e-2).
            self.assertLess((a[name] - b[name]).abs().max().item(), 1e-5, name)
        one = self.run_trainers("sharded", 1, sharded, result="sharded-sharded")
        self.assertTrue(one["whole"])
        self.assertEqual(one["copied"], 0)
        e = self.run_trainers("sharded_without_distributed", 2, sharded)["error"]
        self.assertIn("sharded gradient mode on 2 ranks", e)
        self.assertIn("muond.torch.init_distributed()", e)


if __name__ == "__main__":
    support.main()
