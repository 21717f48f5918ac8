"""Layouts from PyTorch models: `layout_from_model(model, ...)` writes the layout JSON the
daemon runs (shard/layout.h) from a torch.nn.Module, by the common Muon recipe:

* hidden weights with 2 to 4 dimensions (linear, conv: flattened to out x in*kh*kw by the
  daemon) get the matrix method (polar-express by default);
* embeddings, the output head, biases, norms and any other 1-D (or 0-D) parameter get adamw;
* `overrides` changes any of it by name pattern (fnmatch), with per-parameter lr and
  weight decay.

Tied (shared) parameters are refused: muond updates each parameter once, from one gradient.
The result is validated by the same code the daemon runs (`muond check`), which can also
print the owner plan for a number of ranks.

`python3 -m muond layout` writes a layout from a model factory (`muond launch --from-model`):

    python3 -m muond layout MODULE:FN|FILE.py:FN --out layout.json [--method M]
                            [--schedule fixed|adaptive] [--gradient-mode local|sharded]
                            [--ranks N] [--print-plan]
"""

import argparse
import fnmatch
import importlib
import importlib.util
import json
import os
import pathlib
import sys
import tempfile

from ._errors import MuondError, ParameterError
from ._tools import run_muond

MATRIX_METHODS = ("polar-express", "ns5", "gram", "shampoo")
METHODS = MATRIX_METHODS + ("adamw",)
_OVERRIDE_KEYS = {"method", "lr", "weight_decay", "fallback", "schedule"}
SCHEDULES = ("fixed", "adaptive")
_EMBEDDING_TYPES = ("Embedding", "EmbeddingBag")


def named_parameters_untied(model):
    """(name, parameter) of every parameter the optimizer updates (requires_grad), in
    registration order; a parameter registered under two names (tied weights) is refused,
    naming both."""
    first_name, out = {}, []
    for module_name, module in model.named_modules():
        for leaf, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            if id(param) in first_name:
                raise ParameterError(
                    f"'{name}' is the same tensor as '{first_name[id(param)]}' (tied "
                    f"parameters): muond shards and updates every parameter once, from one "
                    f"gradient; untie them (e.g. clone the weight) or leave one out of the model")
            first_name[id(param)] = name
            if param.requires_grad:
                out.append((name, param))
    return out


def _owners(model):
    """Parameter name -> the class name of the module that holds it."""
    return {f"{m}.{leaf}" if m else leaf: type(module).__name__
            for m, module in model.named_modules()
            for leaf, _ in module.named_parameters(recurse=False)}


def _default_head(model):
    """The output head: the weight of the last Linear module in registration order (a
    classifier's or language model's final projection). Pass head= to choose another."""
    last = None
    for name, module in model.named_modules():
        if type(module).__name__ == "Linear":
            last = f"{name}.weight" if name else "weight"
    return [last] if last else []


def _layout_shape(shape):
    """The layout's shape: 1 to 4 dimensions. A scalar is [1]; more than 4 dimensions
    flatten to [out, rest] as the daemon would."""
    shape = list(shape)
    if not shape:
        return [1]
    if len(shape) > 4:
        rest = 1
        for d in shape[1:]:
            rest *= d
        return [shape[0], rest]
    return shape


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _base_method(name, param, owner, method, heads, embeddings):
    if owner in _EMBEDDING_TYPES:
        return embeddings
    if _matches(name, heads):
        return "adamw"
    return method if 2 <= param.dim() <= 4 else "adamw"


def _apply_overrides(name, entry, overrides):
    for pattern, change in overrides.items():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        unknown = set(change) - _OVERRIDE_KEYS
        if unknown:
            raise MuondError(f"overrides['{pattern}']: unknown key(s) {sorted(unknown)} "
                             f"(allowed: {sorted(_OVERRIDE_KEYS)})")
        entry.update(change)


def _check_entry(entry):
    name, method = entry["name"], entry["method"]
    if method not in METHODS:
        raise MuondError(f"parameter '{name}': method '{method}' is not one of "
                         f"{', '.join(METHODS)}")
    if method in MATRIX_METHODS and len(entry["shape"]) < 2:
        raise MuondError(f"parameter '{name}' has shape {entry['shape']}: the matrix method "
                         f"'{method}' needs at least 2 dimensions (use adamw)")
    for key in ("lr", "weight_decay"):
        if key in entry and not (isinstance(entry[key], (int, float)) and entry[key] >= 0):
            raise MuondError(f"parameter '{name}': {key} {entry[key]!r} must be a number >= 0")


def _optimizer_section(lr, weight_decay, momentum, adamw_lr, adamw_weight_decay, adamw_betas,
                       extra):
    section = dict(extra or {})
    for key, value in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)):
        if value is not None:
            section[key] = value
    adamw = dict(section.get("adamw", {}))
    for key, value in (("lr", adamw_lr), ("weight_decay", adamw_weight_decay)):
        if value is not None:
            adamw[key] = value
    if adamw_betas is not None:
        adamw["beta1"], adamw["beta2"] = adamw_betas
    if adamw:
        section["adamw"] = adamw
    return section


def layout_from_model(model, path=None, *, method="polar-express", schedule=None,
                      gradient_mode="local",
                      lr=None, weight_decay=None, momentum=None, adamw_lr=None,
                      adamw_weight_decay=None, adamw_betas=None, optimizer=None, head=None,
                      embeddings="adamw", overrides=None, exchange=None, name=None,
                      validate=True, ranks=None, print_plan=False):
    """The layout of `model` as a dict, written to `path` (JSON) when given.

    method: the matrix method of hidden weights (polar-express, ns5, gram, shampoo);
    schedule: fixed or adaptive Polar Express schedules (optimizer.polar_express.schedule; None: the
    daemon's default, fixed); gradient_mode:
    local (DDP-style trainers: muond averages their gradients) or sharded; lr, weight_decay,
    momentum: the matrix methods' defaults; adamw_lr, adamw_weight_decay, adamw_betas: AdamW's;
    optimizer: further keys of the layout's "optimizer" section (e.g. {"polar_express":
    {"iters": 5}}); head: name patterns of the output head (default: the last Linear's weight;
    [] for none); embeddings: the method of embedding tables (adamw); overrides: {pattern:
    {"method", "lr", "weight_decay", "fallback", "schedule"}} applied in order; validate: check the result
    with `muond check` (the daemon's own validation); ranks and print_plan: print the owner
    plan for that many ranks.
    """
    if method not in MATRIX_METHODS:
        raise MuondError(f"method '{method}' is not a matrix method ({', '.join(MATRIX_METHODS)})")
    if schedule is not None and schedule not in SCHEDULES:
        raise MuondError(f"schedule '{schedule}' is not one of {', '.join(SCHEDULES)}")
    if embeddings not in METHODS:
        raise MuondError(f"embeddings='{embeddings}' is not one of {', '.join(METHODS)}")
    if gradient_mode not in ("local", "sharded"):
        raise MuondError(f"gradient_mode '{gradient_mode}' is not local or sharded")
    heads = _default_head(model) if head is None else ([head] if isinstance(head, str) else head)
    owners = _owners(model)
    params = []
    for pname, param in named_parameters_untied(model):
        entry = {"name": pname, "shape": _layout_shape(param.shape),
                 "method": _base_method(pname, param, owners.get(pname), method, heads,
                                        embeddings)}
        _apply_overrides(pname, entry, overrides or {})
        _check_entry(entry)
        params.append(entry)
    if not params:
        raise MuondError("the model has no trainable parameters")
    section = _optimizer_section(lr, weight_decay, momentum, adamw_lr, adamw_weight_decay,
                                 adamw_betas, optimizer)
    if schedule is not None:
        section["polar_express"] = dict(section.get("polar_express", {}), schedule=schedule)
    layout = {"name": name or type(model).__name__.lower(), "gradient_mode": gradient_mode,
              "optimizer": section, "parameters": params}
    if exchange:
        layout["exchange"] = dict(exchange)
    if path is not None:
        write_layout(layout, path)
    if validate or print_plan:
        plan = check_layout(path if path is not None else layout, ranks=ranks)
        if print_plan:
            print(plan, end="")
    return layout


def write_layout(layout, path):
    path = pathlib.Path(path)
    path.write_text(json.dumps(layout, indent=1) + "\n")
    return path


def check_layout(layout, ranks=None):
    """Validates a layout (dict or path) with `muond check`; returns its report (the owner
    plan when ranks is given). Raises MuondError naming the parameter and field at fault."""
    if isinstance(layout, (str, os.PathLike)):
        args = ["check", "--layout", str(layout)]
        return run_muond(*args, *(["--ranks", ranks] if ranks else []))
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="muond-layout-") as f:
        json.dump(layout, f)
        f.flush()
        return check_layout(f.name, ranks)


def load_factory(spec):
    """MODULE:FN or FILE.py:FN -> the function (the current directory is importable)."""
    target, sep, fn = spec.rpartition(":")
    if not sep or not target or not fn:
        raise MuondError(f"--from-model '{spec}': expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py"):
        file = pathlib.Path(target)
        if not file.is_file():
            raise MuondError(f"--from-model '{spec}': no file {target}")
        module_spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(file.resolve().parent))
        module_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name != target.split(".")[0] and e.name != target:
                raise  # the module itself imports something missing: its own traceback
            raise MuondError(f"--from-model '{spec}': no module '{target}' (importable from "
                             f"the current directory or PYTHONPATH)") from None
    try:
        return getattr(module, fn)
    except AttributeError:
        raise MuondError(f"--from-model '{spec}': {target} has no function '{fn}'") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m muond layout",
        description="Writes a muond layout from a model factory: FN() returns a "
                    "torch.nn.Module (laid out with layout_from_model and the options below) "
                    "or a layout dict.")
    parser.add_argument("factory", help="MODULE:FN or FILE.py:FN")
    parser.add_argument("--out", required=True, help="the layout file to write")
    parser.add_argument("--method", default="polar-express", choices=MATRIX_METHODS)
    parser.add_argument("--schedule", choices=SCHEDULES,
                        help="Polar Express schedules: fixed (the default) or adaptive")
    parser.add_argument("--gradient-mode", default="local", choices=("local", "sharded"))
    parser.add_argument("--ranks", type=int, help="print the owner plan for this many ranks")
    parser.add_argument("--print-plan", action="store_true")
    args = parser.parse_args(argv)
    try:
        made = load_factory(args.factory)()
        if isinstance(made, dict):
            write_layout(made, args.out)
            check_layout(args.out)
        else:
            layout_from_model(made, args.out, method=args.method, schedule=args.schedule,
                              gradient_mode=args.gradient_mode, ranks=args.ranks,
                              print_plan=args.print_plan)
    except MuondError as e:
        print(f"python3 -m muond layout: {e}", file=sys.stderr)
        return 2
    return 0

