"""Shared by the benchmark scripts: peak memory and running one measurement in a child."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

MiB = 1024 * 1024


def hwm() -> int:
    """This process's peak resident set size so far (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run_child(script: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a fresh interpreter; return its last JSON line."""
    proc = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
