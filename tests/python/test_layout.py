"""muond.layout_from_model: the Muon recipe on the examples and on conv, embedding, 5-D and tied
models; overrides; validation by `muond check` (the daemon's own checks); the owner plan; and
`import muond` without torch."""

import contextlib
import io
import json
import subprocess

import torch

import support
from support import PYTHON, TestCase

import muond


def methods(layout):
    return {p["name"]: p["method"] for p in layout["parameters"]}


class Layouts(TestCase):
    def test_digits_cnn(self):
        import digits
        layout = muond.layout_from_model(digits.make_model(), self.scratch.path / "d.json")
        self.assertEqual(methods(layout), {
            "conv1.weight": "polar-express", "conv1.bias": "adamw",
            "conv2.weight": "polar-express", "conv2.bias": "adamw",
            "fc1.weight": "polar-express", "fc1.bias": "adamw",
            "fc2.weight": "adamw", "fc2.bias": "adamw"})  # fc2 is the head
        shapes = {p["name"]: p["shape"] for p in layout["parameters"]}
        self.assertEqual(shapes["conv2.weight"], [32, 16, 3, 3])  # the daemon flattens it
        self.assertEqual(layout["gradient_mode"], "local")
        on_disk = json.loads((self.scratch.path / "d.json").read_text())
        self.assertEqual(on_disk, layout)

    def test_char_transformer(self):
        import char_transformer
        layout = muond.layout_from_model(char_transformer.make_model())
        m = methods(layout)
        for block in ("blocks.0", "blocks.1"):
            for matrix in ("qkv", "proj", "fc", "out"):
                self.assertEqual(m[f"{block}.{matrix}.weight"], "polar-express")
                self.assertEqual(m[f"{block}.{matrix}.bias"], "adamw")
            self.assertEqual(m[f"{block}.ln1.weight"], "adamw")
        for name in ("embed.weight", "position.weight", "head.weight", "ln.weight"):
            self.assertEqual(m[name], "adamw", name)

    def test_overrides_and_settings(self):
        model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 16),
                                    torch.nn.Linear(16, 8))
        layout = muond.layout_from_model(
            model, method="ns5", embeddings="polar-express", head=[], lr=0.05,
            adamw_lr=1e-3, adamw_betas=(0.8, 0.99), gradient_mode="sharded",
            overrides={"1.*": {"lr": 0.01, "weight_decay": 0.1}, "2.weight": {"method": "gram"}})
        m = methods(layout)
        self.assertEqual(m["0.weight"], "polar-express")  # embeddings="polar-express"
        self.assertEqual(m["1.weight"], "ns5")
        self.assertEqual(m["2.weight"], "gram")           # head=[]: no head; overridden
        first = layout["parameters"][1]
        self.assertEqual((first["lr"], first["weight_decay"]), (0.01, 0.1))
        self.assertEqual(layout["parameters"][2].get("lr"), 0.01)  # 1.bias matches 1.*
        self.assertEqual(layout["optimizer"]["lr"], 0.05)
        self.assertEqual(layout["optimizer"]["adamw"], {"lr": 1e-3, "beta1": 0.8, "beta2": 0.99})
        self.assertEqual(layout["gradient_mode"], "sharded")
        adaptive = muond.layout_from_model(model, schedule="adaptive",
                                           optimizer={"polar_express": {"iters": 6}},
                                           overrides={"2.weight": {"method": "gram",
                                                                   "schedule": "fixed"}})
        self.assertEqual(adaptive["optimizer"]["polar_express"],
                         {"iters": 6, "schedule": "adaptive"})
        self.assertEqual(adaptive["parameters"][3]["schedule"], "fixed")
        with self.assertRaisesRegex(muond.MuondError, "schedule 'fast'"):
            muond.layout_from_model(model, schedule="fast")

    def test_shapes_beyond_four_dimensions_and_scalars(self):
        model = torch.nn.Module()
        model.conv = torch.nn.Conv3d(2, 4, 3)
        model.scale = torch.nn.Parameter(torch.ones(()))
        layout = muond.layout_from_model(model, head=[])
        shapes = {p["name"]: p["shape"] for p in layout["parameters"]}
        self.assertEqual(shapes["conv.weight"], [4, 2 * 27])  # layouts hold 1 to 4 dimensions
        self.assertEqual(methods(layout)["conv.weight"], "adamw")  # the recipe: 2 to 4 only
        self.assertEqual(shapes["scale"], [1])
        self.assertEqual(methods(layout)["scale"], "adamw")

    def test_tied_parameters_are_refused_naming_both(self):
        model = torch.nn.Module()
        model.embed = torch.nn.Embedding(20, 8)
        model.head = torch.nn.Linear(8, 20, bias=False)
        model.head.weight = model.embed.weight
        with self.assertRaises(muond.ParameterError) as e:
            muond.layout_from_model(model)
        self.assertIn("'head.weight' is the same tensor as 'embed.weight'", str(e.exception))

    def test_frozen_parameters_are_left_out(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        model[0].weight.requires_grad_(False)
        self.assertNotIn("0.weight", methods(muond.layout_from_model(model)))

    def test_bad_choices_name_the_parameter(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4))
        with self.assertRaisesRegex(muond.MuondError, "parameter '0.bias' has shape \\[4\\]: "
                                                      "the matrix method 'ns5' needs"):
            muond.layout_from_model(model, overrides={"0.bias": {"method": "ns5"}})
        with self.assertRaisesRegex(muond.MuondError, "unknown key"):
            muond.layout_from_model(model, overrides={"*": {"momentum": 0.9}})
        with self.assertRaisesRegex(muond.MuondError, "not a matrix method"):
            muond.layout_from_model(model, method="adamw")

    def test_the_daemon_s_validation_runs(self):
        """What only muond check knows (the layout's ranges) is reported with its field."""
        model = torch.nn.Sequential(torch.nn.Linear(4, 4))
        with self.assertRaisesRegex(muond.MuondError, "parameters\\[0\\] \\(\"0.weight\"\\): lr: "
                                                      "0 is outside \\(0, 1000\\]"):
            muond.layout_from_model(model, overrides={"0.weight": {"lr": 0}})

    def test_owner_plan_on_request(self):
        import digits
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            muond.layout_from_model(digits.make_model(), ranks=4, print_plan=True)
        self.assertIn("plan for 4 rank(s)", out.getvalue())
        self.assertIn("imbalance", out.getvalue())

    def test_layout_module_writes_from_a_factory(self):
        out = self.scratch.path / "f.json"
        spec = f"{support.EXAMPLES}/digits.py:make_model"
        subprocess.run([PYTHON, "-m", "muond", "layout", spec, "--out", out, "--method", "ns5"],
                       check=True, timeout=120)
        self.assertEqual(methods(json.loads(out.read_text()))["fc1.weight"], "ns5")
        subprocess.run([PYTHON, "-m", "muond", "layout", spec, "--out", out, "--schedule",
                        "adaptive"], check=True, timeout=120)
        self.assertEqual(json.loads(out.read_text())["optimizer"]["polar_express"],
                         {"schedule": "adaptive"})
        bad = subprocess.run([PYTHON, "-m", "muond", "layout", "no_such_module.py:make",
                              "--out", out], capture_output=True, text=True, timeout=120)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("no file no_such_module.py", bad.stderr)
        bad = subprocess.run([PYTHON, "-m", "muond", "layout", "no_such_module:make", "--out",
                              out], capture_output=True, text=True, timeout=120)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("no module 'no_such_module'", bad.stderr)

    def test_import_without_torch(self):
        """numpy-only trainers: `import muond` and its Client need no torch."""
        code = ("import sys; sys.modules['torch'] = None\n"
                "import muond; from muond.client import Client\n"
                "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
                "print('ok')")
        done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.stdout.strip(), "ok", done.stderr)


if __name__ == "__main__":
    support.main()
