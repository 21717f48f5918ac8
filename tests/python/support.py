"""Helpers of the Python tests (ctest label python): daemons and `muond launch` runs with their
own job name and socket directory, bounded in time, and torn down whatever happens.

The environment comes from ctest (tests/CMakeLists.txt): MUOND (the binary), MPIEXEC,
PYTHONPATH (client/python), MUOND_CLIENT_LIB, OMPI_ALLOW_RUN_AS_ROOT*.
"""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "client/python/examples"
LAYOUTS = ROOT / "tests/data/layouts"
MUOND = os.environ.get("MUOND", str(ROOT / "build/launcher/muond"))
MPIEXEC = os.environ.get("MPIEXEC", "mpiexec")
PYTHON = sys.executable
sys.path.insert(0, str(EXAMPLES))


class Scratch:
    """A private directory (removed at the end) with its own sockets directory."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="muond-py-")
        self.path = pathlib.Path(self._dir.name)
        self.sockets = self.path / "sockets"
        self._jobs = 0

    def job_env(self, **extra):
        """An environment whose daemon and trainers find each other and no one else."""
        self._jobs += 1
        env = dict(os.environ, MUOND_SOCKET_DIR=str(self.sockets),
                   MUOND_JOB=f"pytest-{os.getpid()}-{self._jobs}", MUOND_LOG="warn")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def close(self):
        self._dir.cleanup()


def launch(scratch, ranks, layout, command, *run_options, timeout=240, env=None,
           log_dir=None):
    """`muond launch -n RANKS --layout LAYOUT [run options] -- COMMAND...`, to its end (killed
    after `timeout` s, which fails the test): the CompletedProcess, output captured."""
    cmd = [MUOND, "launch", "-n", str(ranks), "--layout", str(layout)]
    if log_dir:
        cmd += ["--log-dir", str(log_dir)]
    cmd += [*map(str, run_options), "--", *map(str, command)]
    return subprocess.run(cmd, env=env or scratch.job_env(), capture_output=True, text=True,
                          timeout=timeout)


@contextlib.contextmanager
def daemon(scratch, layout, ranks=1, *run_options, env=None):
    """`mpiexec -n RANKS muond run --layout LAYOUT` in the background; yields (env, process)
    once every rank listens (within 60 s), and stops it (SIGTERM, then SIGKILL) at the end."""
    env = env or scratch.job_env()
    cmd = [MPIEXEC, "-n", str(ranks), "--oversubscribe", MUOND, "run", "--layout", str(layout),
           "--trainer-timeout", "30", *map(str, run_options)]
    log = open(scratch.path / f"daemon-{env['MUOND_JOB']}.log", "w+")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for_sockets(env, ranks, proc, log)
        yield env, proc
    finally:
        stop(proc)
        log.close()


def wait_for_sockets(env, ranks, proc, log, timeout=60.0):
    sockets = pathlib.Path(env["MUOND_SOCKET_DIR"])
    deadline = time.monotonic() + timeout
    for rank in range(ranks):
        path = sockets / f"{env['MUOND_JOB']}.rank{rank}.sock"
        while not path.is_socket():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"the daemon did not listen on {path}: {log.read()}")
            time.sleep(0.05)


def stop(proc, grace=20.0):
    """SIGTERM to the daemon's session, SIGKILL if it is still there after `grace` s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)


def children(pid):
    """The pids whose parent is pid (from /proc): mpiexec's ranks."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def digits_layout(scratch, name, method="polar-express", gradient_mode="local", **kwargs):
    """The digits CNN's layout (client/python/examples/digits.py), written into scratch."""
    import digits
    import muond
    path = scratch.path / f"{name}.json"
    muond.layout_from_model(digits.make_model(), path, method=method,
                            gradient_mode=gradient_mode, **kwargs)
    return path


def digits_initial():
    """The digits CNN's initial weights (every trainer builds the same)."""
    import digits
    return digits.make_model().state_dict()


class TestCase(unittest.TestCase):
    """A test case with a scratch directory."""

    def setUp(self):
        self.scratch = Scratch()
        self.addCleanup(self.scratch.close)

    def assertLaunched(self, done, what):
        if done.returncode != 0:
            self.fail(f"{what}: muond launch exited with {done.returncode}\nstdout:\n"
                      f"{done.stdout}\nstderr:\n{done.stderr}")


def main():
    unittest.main(verbosity=2)
