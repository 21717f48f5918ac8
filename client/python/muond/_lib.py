"""ctypes bindings of libmuond-client (client/muond_client.h): the structs and functions the
Python package uses, declared once. Nothing here copies parameter bytes: the library maps the
daemon's shared memory, and the package views it in place."""

import ctypes
import ctypes.util
import os
import pathlib

from ._errors import MuondError

# Mirrors of muond_client.h (keep in step with it; tests/python/test_api.py checks the sizes
# the library reports against these).
STEP_EVENTS_MAX = 32
STATUS_NAMES = ["ok", "invalid argument", "i/o error", "protocol error", "refused",
                "timed out", "out of memory", "step failed"]
OK, ERR_INVALID, ERR_IO, ERR_PROTOCOL, ERR_REFUSED, ERR_TIMEOUT, ERR_NOMEM, ERR_STEP = range(8)


class ClientOptions(ctypes.Structure):
    _fields_ = [("socket_path", ctypes.c_char_p),
                ("rank", ctypes.c_int),
                ("layout_digest", ctypes.c_uint64),
                ("timeout_ms", ctypes.c_int)]


class Param(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p),
                ("weights", ctypes.c_void_p),
                ("grads", ctypes.c_void_p),
                ("rows", ctypes.c_int64), ("cols", ctypes.c_int64),
                ("row_begin", ctypes.c_int64), ("row_end", ctypes.c_int64),
                ("on_device", ctypes.c_int),
                ("ndim", ctypes.c_int),
                ("dims", ctypes.c_int64 * 4),
                ("method", ctypes.c_char_p),
                ("lr", ctypes.c_double), ("weight_decay", ctypes.c_double),
                ("momentum", ctypes.c_double)]


class StepEvent(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("param", ctypes.c_int)]


class StepResult(ctypes.Structure):
    _fields_ = [("step", ctypes.c_int64),
                ("status", ctypes.c_int),
                ("fallbacks", ctypes.c_int),
                ("message", ctypes.c_char * 512),
                ("events_total", ctypes.c_int),
                ("event_count", ctypes.c_int),
                ("events", StepEvent * STEP_EVENTS_MAX)]


# muond_step_event_kind_t
EVENT_FALLBACK_CERTIFICATE = 1
EVENT_FALLBACK_NONFINITE = 2
EVENT_FALLBACK_FORCED = 3
EVENT_SKIPPED_NONFINITE = 4
EVENT_SKIPPED_UNSOLVED = 5

_SIGNATURES = {
    "muond_connect": (ctypes.c_int, [ctypes.POINTER(ClientOptions), ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.c_char_p, ctypes.c_size_t]),
    "muond_param_count": (ctypes.c_int, [ctypes.c_void_p]),
    "muond_param_at": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Param)]),
    "muond_set_hyper": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_double,
                                       ctypes.c_double, ctypes.c_double]),
    "muond_step": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(StepResult)]),
    "muond_steps_done": (ctypes.c_int64, [ctypes.c_void_p]),
    "muond_rank": (ctypes.c_int, [ctypes.c_void_p]),
    "muond_ranks": (ctypes.c_int, [ctypes.c_void_p]),
    "muond_local_gradients": (ctypes.c_int, [ctypes.c_void_p]),
    "muond_on_device": (ctypes.c_int, [ctypes.c_void_p]),
    "muond_close": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p)]),
    "muond_client_error": (ctypes.c_char_p, [ctypes.c_void_p]),
    "muond_env_rank": (ctypes.c_int, []),
    "muond_default_socket_path": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
}

_SONAME = "libmuond-client.so.1"  # the protocol-3 ABI (client/CMakeLists.txt: SOVERSION)


def _candidates():
    """Where the library may be, in order: $MUOND_CLIENT_LIB, the build tree this package sits
    in (client/python/muond -> <repo>/build*/client), then the system's search path."""
    env = os.environ.get("MUOND_CLIENT_LIB")
    if env:
        yield pathlib.Path(env)
        return
    repo = pathlib.Path(__file__).resolve().parents[3]
    for build in sorted(repo.glob("build*/client")):
        if "sanitize" not in build.parent.name and "fuzz" not in build.parent.name:
            yield build / _SONAME
    found = ctypes.util.find_library("muond-client")
    yield pathlib.Path(found or _SONAME)


_lib = None


def lib():
    """The loaded library (loaded on first use, so that importing muond never fails)."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        if path.is_absolute() and not path.exists():
            tried.append(str(path))
            continue
        try:
            handle = ctypes.CDLL(str(path))
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = handle
        return _lib
    raise MuondError("cannot load libmuond-client; tried: " + "; ".join(tried) +
                     ". Build muond (cmake --build build) or set MUOND_CLIENT_LIB to the "
                     "library's path")


def library_path():
    """The file the library was loaded from (for messages and tests)."""
    handle = lib()
    return handle._name
