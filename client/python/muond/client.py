"""The trainer's connection to its muond rank, over libmuond-client, with numpy views of the
shared weights and gradients (no torch needed here; muond.torch builds on this)."""

import ctypes
import dataclasses
import os
import warnings

import numpy as np

from . import _lib
from ._errors import (DaemonUnavailableError, MuondError, StepFailedError, StepWarning)
from ._tools import layout_digest

_EVENT_WORDS = {
    _lib.EVENT_FALLBACK_CERTIFICATE: "solved exactly (the certificate failed)",
    _lib.EVENT_FALLBACK_NONFINITE: "solved exactly (the fast result was not finite)",
    _lib.EVENT_FALLBACK_FORCED: "solved exactly (fallback forced)",
    _lib.EVENT_SKIPPED_NONFINITE: "skipped (NaN/Inf gradient)",
    _lib.EVENT_SKIPPED_UNSOLVED: "skipped (the exact fallback failed too)",
}
_SKIPS = (_lib.EVENT_SKIPPED_NONFINITE, _lib.EVENT_SKIPPED_UNSOLVED)


@dataclasses.dataclass
class ParamInfo:
    """One parameter as the daemon holds it for this rank."""
    index: int
    name: str
    shape: tuple            # the layout's shape (before flattening)
    rows: int               # the flattened matrix: rows x cols
    cols: int
    row_begin: int          # the rows this rank's region holds
    row_end: int
    method: str             # "polar-express", "ns5", "gram", "shampoo" or "adamw"
    lr: float               # the layout's values
    weight_decay: float
    momentum: float         # Muon's beta, or AdamW's beta1
    weights: np.ndarray     # (row_end - row_begin) x cols float32, in shared memory
    grads: np.ndarray

    @property
    def is_matrix(self):
        return self.method != "adamw"

    @property
    def whole(self):
        """Whether this rank's region holds every row (local mode, or a single rank)."""
        return self.row_begin == 0 and self.row_end == self.rows


@dataclasses.dataclass
class StepResult:
    """What the daemon said of a step."""
    step: int
    status: int              # 0 applied, 1 applied but some parameters skipped, 2 failed
    fallbacks: int           # matrices solved by the exact fallback
    message: str
    fallback_params: list    # names of the parameters solved exactly
    skipped: list            # names of the parameters not updated this step
    events: list             # (name, what happened) for every listed event
    events_total: int        # may exceed len(events): DONE lists the first 32


def _shared_array(address, rows, cols):
    """A float32 array over memory the library mapped (no copy)."""
    count = rows * cols
    if count == 0:
        return np.empty((rows, cols), dtype=np.float32)
    buf = (ctypes.c_float * count).from_address(address)
    return np.frombuffer(buf, dtype=np.float32, count=count).reshape(rows, cols)


def resolve_rank(rank=None):
    """The muond rank this trainer belongs to: the argument, $MUOND_RANK (muond launch), the
    launcher's rank (srun, mpiexec), else 0."""
    if rank is not None:
        return int(rank)
    if os.environ.get("MUOND_RANK"):
        return int(os.environ["MUOND_RANK"])
    env_rank = _lib.lib().muond_env_rank()
    return env_rank if env_rank >= 0 else 0


def resolve_digest(digest=None, layout=None):
    """The layout digest to present: the argument, $MUOND_LAYOUT_DIGEST, or the digest of the
    layout file given (or $MUOND_LAYOUT)."""
    if digest:
        return int(digest, 16) if isinstance(digest, str) else int(digest)
    if os.environ.get("MUOND_LAYOUT_DIGEST"):
        return int(os.environ["MUOND_LAYOUT_DIGEST"], 16)
    layout = layout or os.environ.get("MUOND_LAYOUT")
    if layout:
        return layout_digest(layout)
    raise MuondError("no layout digest: pass layout= (the layout file) or digest=, or set "
                     "MUOND_LAYOUT_DIGEST (`muond check --layout F --print-digest` prints it; "
                     "`muond launch` sets it)")


def socket_path(rank):
    buf = ctypes.create_string_buffer(512)
    if _lib.lib().muond_default_socket_path(rank, buf, len(buf)) != _lib.OK:
        raise MuondError("the socket path is too long (set MUOND_SOCKET_DIR to a shorter one)")
    return buf.value.decode()


class Client:
    """A connection to this trainer's muond rank.

    Client(rank=None, digest=None, layout=None, socket=None, timeout=60.0) connects (waiting up
    to `timeout` seconds for a daemon that is still starting) and describes every parameter
    (`params`, `param(name)`), whose `weights` and `grads` are numpy views of the shared
    memory. Write gradients (and, before the first step, initial weights) between steps;
    `step()` applies them and returns when the weights are updated. `close()` says BYE.
    """

    def __init__(self, rank=None, digest=None, layout=None, socket=None, timeout=60.0):
        self._lib = _lib.lib()
        self._handle = ctypes.c_void_p()
        self.rank = resolve_rank(rank)
        self.socket = socket or socket_path(self.rank)
        options = _lib.ClientOptions(self.socket.encode(), self.rank,
                                     resolve_digest(digest, layout), max(1, int(timeout * 1000)))
        err = ctypes.create_string_buffer(1024)
        status = self._lib.muond_connect(ctypes.byref(options), ctypes.byref(self._handle), err,
                                         len(err))
        if status != _lib.OK:
            raise self._connect_error(status, err.value.decode(errors="replace"), timeout)
        self.ranks = self._lib.muond_ranks(self._handle)
        self.local = bool(self._lib.muond_local_gradients(self._handle))
        if self._lib.muond_on_device(self._handle):
            self.close()
            raise MuondError("this daemon shares GPU memory (--trainer-memory device); the "
                             "Python client supports host memory only")
        self.params = [self._describe(i) for i in range(self._lib.muond_param_count(self._handle))]
        self._by_name = {p.name: p for p in self.params}
        self.last_result = None

    def _connect_error(self, status, message, timeout):
        if status in (_lib.ERR_IO, _lib.ERR_TIMEOUT) and "cannot connect" in message:
            return DaemonUnavailableError(
                f"no muond daemon for rank {self.rank} at {self.socket} after {timeout:g} s "
                f"({message}). Start one with `muond launch -n N --layout F -- python3 "
                f"train.py`, or `mpiexec -n N muond run --layout F` beside the trainers (the "
                f"same MUOND_JOB and MUOND_SOCKET_DIR)")
        if status == _lib.ERR_REFUSED:
            return DaemonUnavailableError(f"rank {self.rank} ({self.socket}): {message}")
        return MuondError(f"rank {self.rank} ({self.socket}): {message}")

    def _describe(self, index):
        p = _lib.Param()
        self._check(self._lib.muond_param_at(self._handle, index, ctypes.byref(p)))
        held = p.row_end - p.row_begin
        return ParamInfo(index=index, name=p.name.decode(), shape=tuple(p.dims[:p.ndim]),
                         rows=p.rows, cols=p.cols, row_begin=p.row_begin, row_end=p.row_end,
                         method=p.method.decode(), lr=p.lr, weight_decay=p.weight_decay,
                         momentum=p.momentum, weights=_shared_array(p.weights, held, p.cols),
                         grads=_shared_array(p.grads, held, p.cols))

    def _check(self, status, what="muond"):
        if status != _lib.OK:
            raise MuondError(f"{what}: {self._lib.muond_client_error(self._handle).decode()}")

    @property
    def closed(self):
        return not self._handle

    @property
    def steps_done(self):
        return self._lib.muond_steps_done(self._handle)

    def param(self, name):
        try:
            return self._by_name[name]
        except KeyError:
            raise MuondError(f"the layout has no parameter named '{name}'") from None

    def set_hyper(self, index, lr, weight_decay, momentum):
        """The learning rate, weight decay and momentum parameter `index` is stepped with from
        the next step on (the daemon checks that every rank's trainer sends the same)."""
        status = self._lib.muond_set_hyper(self._handle, index, lr, weight_decay, momentum)
        if status != _lib.OK:
            raise ValueError(self._lib.muond_client_error(self._handle).decode())

    def step(self, warn=True):
        """Applies the gradients in shared memory and returns a StepResult once the weights are
        updated. A failed step raises StepFailedError with the daemon's message; skipped
        parameters and exact fallbacks are reported (and, with warn, warned about)."""
        if self.closed:
            raise MuondError("this client is closed")
        r = _lib.StepResult()
        status = self._lib.muond_step(self._handle, ctypes.byref(r))
        if status != _lib.OK:
            message = self._lib.muond_client_error(self._handle).decode(errors="replace")
            if status == _lib.ERR_IO:
                message = (f"the daemon went away ({message}): it stopped or crashed without "
                           f"answering; its log says why (muond launch keeps it)")
            raise StepFailedError(f"rank {self.rank}, step {self.steps_done + 1}: {message}")
        self.last_result = self._result(r)
        if warn:
            # One text per (parameter, what happened): Python's default filter then says each
            # once instead of every step; last_result has every step's events.
            for name, what in self.last_result.events:
                warnings.warn(f"muond: {name} {what}; each step's events are in last_result",
                              StepWarning, stacklevel=3)
        return self.last_result

    def _result(self, r):
        events = [(self.params[e.param].name, e.kind) for e in r.events[:r.event_count]]
        return StepResult(step=r.step, status=r.status, fallbacks=r.fallbacks,
                          message=r.message.decode(errors="replace"),
                          fallback_params=[n for n, k in events if k not in _SKIPS],
                          skipped=[n for n, k in events if k in _SKIPS],
                          events=[(n, _EVENT_WORDS[k]) for n, k in events],
                          events_total=r.events_total)

    def close(self):
        """Says BYE (the daemon ends when every trainer has) and unmaps the shared memory:
        the views in `params` must not be used afterwards."""
        if self._handle:
            self._lib.muond_close(ctypes.byref(self._handle))
            self._handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
