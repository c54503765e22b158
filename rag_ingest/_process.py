"""Helpers for the helper processes we start (SeaweedFS, Chroma): find, start, stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["find_executable", "port_free", "start_tied", "stop_process_group"]


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 now. Bound as servers
    bind (``SO_REUSEADDR``, as tokio and Go set it): the closed connections of a server
    just gone, in TIME_WAIT, do not hold the port; a listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def find_executable(name: str) -> str | None:
    """``name`` next to this Python first (a venv's console scripts), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


# Runs in the child before it becomes the server: Linux's PR_SET_PDEATHSIG sends it
# SIGTERM when its parent dies, so a parent killed outright (a Jupyter kernel restart,
# SIGKILL, the OOM killer) leaves no server writing to a store the next process opens.
# The signal follows the *thread* that started the child: start servers from a thread
# that lives as long as they do (the caller's, or an executor's).
_TIED = """
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent already gone")
os.execv(sys.argv[2], sys.argv[2:])
"""


def start_tied(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``Popen(args)`` in a new session, ended with us on Linux (see ``_TIED``)."""
    if sys.platform.startswith("linux"):
        args = [sys.executable, "-I", "-c", _TIED, str(os.getpid()), *args]
    return subprocess.Popen(args, start_new_session=True, **kwargs)


def stop_process_group(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group started with ``start_new_session``; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
