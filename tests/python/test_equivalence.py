"""muond's ns5 (Jordan's coefficients, fp32) against Muon written in plain torch from its
published algorithm (client/python/examples/torch_muon.py: momentum, Nesterov, NS5, the
spectral scale rule; AdamW for biases and the head), on the digits CNN for 20 steps with the
same data, the same schedule (warmup + cosine) and the same hyper-parameters, at 1 and 4
ranks (the reference averages the gradients of the 4 batch slices the trainers take).

Tolerance: 5e-6 absolute on every weight (the largest are ~0.5). Both sides compute the same
fp32 arithmetic in another order: GEMM blocking (OpenBLAS in muond, torch's own kernels), the
gradient sum (Open MPI's all-reduce against a sequential sum), NS5's five iterations. That
leaves a few ulps per step: 2.8e-7 measured after 20 steps at 4 ranks, 3e-8 after one step.
A real difference in the algorithm is orders of magnitude larger: a scheduler that missed the
AdamW group moved the biases by 1e-3 after one step and the weights by 1e-2 after 20."""

import json

import torch

import support
from support import EXAMPLES, PYTHON, TestCase

STEPS = 20
HYPER = ["--steps", str(STEPS), "--lr", "0.02", "--adamw-lr", "1e-3", "--json", "--quiet"]
TOLERANCE = 5e-6


class Equivalence(TestCase):
    def compare(self, ranks):
        layout = support.digits_layout(self.scratch, "digits-ns5", method="ns5")
        mine, ref = self.scratch.path / "muond.pt", self.scratch.path / "torch.pt"
        done = support.launch(self.scratch, ranks, layout,
                              [PYTHON, EXAMPLES / "digits.py", *HYPER, "--save-weights", mine])
        self.assertLaunched(done, f"digits with muond ns5 on {ranks} ranks")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["fallbacks"], 0, "the comparison is of the fast path")
        support.subprocess.run([PYTHON, EXAMPLES / "digits.py", "--optimizer", "torch-muon",
                                "--shards", str(ranks), *HYPER, "--save-weights", ref],
                               check=True, capture_output=True, timeout=300)
        a, b = torch.load(mine), torch.load(ref)
        self.assertEqual(sorted(a), sorted(b))
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        print(f"{ranks} rank(s): largest weight difference after {STEPS} steps: {worst:.3g}")
        self.assertLess(worst, TOLERANCE)
        moved = min((a[k] - support.digits_initial()[k]).abs().max().item() for k in a)
        self.assertGreater(moved, 100 * TOLERANCE, "every weight moved well past the tolerance")

    def test_one_rank(self):
        self.compare(1)

    def test_four_ranks(self):
        self.compare(4)


if __name__ == "__main__":
    support.main()
