"""Helpers for the helper processes we start (SeaweedFS, Chroma): find them, stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["find_executable", "stop_process_group"]


def find_executable(name: str) -> str | None:
    """``name`` next to this Python first (a venv's console scripts), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


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
