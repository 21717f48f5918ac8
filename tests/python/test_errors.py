"""The errors a PyTorch user will hit, each an exception that names the thing: no daemon, a
model the layout does not describe (missing, extra, reshaped parameters), parameters that are
not float32 or not contiguous, tied parameters, a daemon that stopped mid-run, a second
trainer on a rank, a learning rate out of range."""

import os
import signal
import time

import torch

import muond
import muond.torch
import support
from support import TestCase


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


class Errors(TestCase):
    def setUp(self):
        super().setUp()
        self.layout = self.scratch.path / "mlp.json"
        muond.layout_from_model(mlp(), self.layout)

    def connect(self, model, env, **kwargs):
        os.environ.update(MUOND_SOCKET_DIR=env["MUOND_SOCKET_DIR"], MUOND_JOB=env["MUOND_JOB"])
        return muond.torch.Optimizer(model, layout=self.layout, rank=0, timeout=10, **kwargs)

    def expect_refusal(self, model, error, text):
        with support.daemon(self.scratch, self.layout) as (env, _):
            with self.assertRaises(error) as e:
                self.connect(model, env)
        self.assertIn(text, str(e.exception))
        return str(e.exception)

    def test_no_daemon(self):
        env = self.scratch.job_env()
        start = time.monotonic()
        with self.assertRaises(muond.DaemonUnavailableError) as e:
            os.environ.update(MUOND_SOCKET_DIR=env["MUOND_SOCKET_DIR"], MUOND_JOB=env["MUOND_JOB"])
            muond.torch.Optimizer(mlp(), layout=self.layout, rank=0, timeout=1.0)
        self.assertLess(time.monotonic() - start, 10)
        message = str(e.exception)
        self.assertIn(f"{env['MUOND_SOCKET_DIR']}/{env['MUOND_JOB']}.rank0.sock", message)
        self.assertIn("after 1 s", message)
        self.assertIn("muond launch -n N", message)

    def test_missing_parameter(self):
        model = mlp()
        model[2] = torch.nn.Linear(8, 3, bias=False)
        self.expect_refusal(model, muond.LayoutMismatchError,
                            "parameter '2.bias' (shape [3]) is in the daemon's layout but not "
                            "in the model")

    def test_extra_parameter(self):
        model = torch.nn.Sequential(*mlp(), torch.nn.Linear(3, 3))
        self.expect_refusal(model, muond.LayoutMismatchError,
                            "parameter '3.weight' (shape [3, 3]) is in the model but not in "
                            "the daemon's layout")

    def test_reshaped_parameter(self):
        model = mlp()
        model[2] = torch.nn.Linear(8, 4)
        self.expect_refusal(model, muond.LayoutMismatchError,
                            "parameter '2.weight': the model's shape is [4, 8], the daemon's "
                            "layout says [3, 8]")

    def test_not_float32(self):
        self.expect_refusal(mlp().double(), muond.ParameterError,
                            "parameter '0.weight' is torch.float64: muond shares float32")

    def test_not_contiguous(self):
        layout = self.scratch.path / "square.json"
        model = torch.nn.Sequential(torch.nn.Linear(4, 4))
        muond.layout_from_model(model, layout)
        self.layout = layout
        model[0].weight.data = model[0].weight.data.t()  # same shape, transposed strides
        self.expect_refusal(model, muond.ParameterError, "parameter '0.weight' is not contiguous")

    def test_tied_parameters(self):
        model = mlp()
        model.tied = torch.nn.Linear(6, 8)
        model.tied.weight = model[0].weight
        with self.assertRaises(muond.ParameterError) as e:  # refused before connecting
            muond.torch.Optimizer(model, layout=self.layout, rank=0, timeout=1)
        self.assertIn("'tied.weight' is the same tensor as '0.weight'", str(e.exception))

    def test_second_trainer_on_a_rank(self):
        with support.daemon(self.scratch, self.layout) as (env, _):
            first = self.connect(mlp(), env)
            with self.assertRaises(muond.DaemonUnavailableError) as e:
                self.connect(mlp(), env)
            first.close()
        self.assertIn("rank 0 already serves a trainer", str(e.exception))

    def test_daemon_stopped_mid_run(self):
        model = mlp()
        with support.daemon(self.scratch, self.layout) as (env, daemon):
            opt = self.connect(model, env)
            x = torch.ones(4, 6)
            for _ in range(2):
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()
            os.kill(support.children(daemon.pid)[0], signal.SIGTERM)  # the rank; it stops
            # after the last complete step and tells the trainer so
            deadline = time.monotonic() + 30  # mpiexec forwards it; the ranks agree on it
            with self.assertRaises(muond.StepFailedError) as e:
                while time.monotonic() < deadline:
                    opt.zero_grad()
                    model(x).sum().backward()
                    opt.step()
            opt.close()
        self.assertRegex(str(e.exception), "muond stopped on SIGTERM before step ([0-9]+); the "
                                           "weights are those after step [0-9]+")

    def test_rate_out_of_range(self):
        with support.daemon(self.scratch, self.layout) as (env, _):
            opt = self.connect(mlp(), env)
            opt.param_groups[0]["lr"] = -1.0
            with self.assertRaises(ValueError) as e:
                opt.step()
            opt.close()
        self.assertIn("param_groups[0] (muon): parameter '0.weight': lr -1 is outside [0, 1000]",
                      str(e.exception))


if __name__ == "__main__":
    support.main()
