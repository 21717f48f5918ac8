"""The muond binary, for what only it knows: a layout's digest and its validation (the same
code the daemon runs), found as $MUOND, next to this package in a build tree, or on PATH."""

import os
import pathlib
import shutil
import subprocess

from ._errors import MuondError


def muond_binary():
    env = os.environ.get("MUOND")
    if env:
        return env
    repo = pathlib.Path(__file__).resolve().parents[3]
    for build in sorted(repo.glob("build*/launcher/muond")):
        if "sanitize" not in build.parent.parent.name and os.access(build, os.X_OK):
            return str(build)
    found = shutil.which("muond")
    if found:
        return found
    raise MuondError("cannot find the muond binary: build it (cmake --build build), put it on "
                     "PATH or set MUOND to its path")


def run_muond(*args):
    """Runs `muond ARGS...`; returns its stdout, or raises with its stderr."""
    cmd = [muond_binary(), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise MuondError(f"{' '.join(cmd)} failed (status {done.returncode}): "
                         f"{done.stderr.strip()}")
    return done.stdout


def layout_digest(path):
    """The digest trainers prove their layout with (muond check --print-digest)."""
    return int(run_muond("check", "--layout", path, "--print-digest").strip(), 16)
