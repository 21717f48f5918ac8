"""The exceptions and warnings of the muond package. Every message names the thing at fault
(the parameter, the socket path, the rank) and, where there is one, the fix."""


class MuondError(RuntimeError):
    """Anything muond refused or could not do."""


class DaemonUnavailableError(MuondError, ConnectionError):
    """No daemon answered on the rank's socket, or it refused this trainer (another trainer
    holds the rank, another layout, another user)."""


class LayoutMismatchError(MuondError, ValueError):
    """The model and the daemon's layout disagree: a parameter missing on one side, or shaped
    differently."""


class ParameterError(MuondError, TypeError):
    """A parameter muond cannot share: not float32, not contiguous, or tied to another."""


class StepFailedError(MuondError):
    """The daemon failed the step or stopped (its message says why); no update was applied
    in part."""


class StepWarning(UserWarning):
    """A step that did more than the fast path: a matrix solved exactly by the fallback, or a
    parameter skipped (NaN/Inf gradient)."""
