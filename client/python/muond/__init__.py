"""muond for PyTorch trainers (and numpy ones): the Python side of libmuond-client.

    import muond
    layout = muond.layout_from_model(model, "layout.json")      # the daemon's layout
    opt = muond.torch.Optimizer(model)                           # a torch.optim.Optimizer

`muond.client.Client` is the connection itself, with numpy views of the shared weights and
gradients; it needs no torch. `import muond` never imports torch: `muond.torch` does.
"""

from ._errors import (DaemonUnavailableError, LayoutMismatchError, MuondError, ParameterError,
                      StepFailedError, StepWarning)
from .client import Client, ParamInfo, StepResult
from .layout import check_layout, layout_from_model, named_parameters_untied, write_layout

__version__ = "0.1.0"

__all__ = ["Client", "ParamInfo", "StepResult", "layout_from_model", "check_layout",
           "write_layout", "named_parameters_untied", "MuondError", "DaemonUnavailableError",
           "LayoutMismatchError", "ParameterError", "StepFailedError", "StepWarning"]


def __getattr__(name):
    # `muond.torch` on first use, so that numpy-only trainers never import torch.
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'muond' has no attribute '{name}'")
