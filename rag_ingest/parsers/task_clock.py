"""How long a parser worker's task has run, the time it waited for a CPU left out.

Workers run at ``parse.worker_nice`` (15): on a machine whose cores other work holds (a
local LLM answering, a build), each gets a few percent of a core (0.15 s of a worker's
work took 4.3 s beside a busy loop on each core, measured), and a parse of a few seconds'
work ran past ``parse.timeout`` by the wall clock and failed the document. The time
limit is there to stop hangs, and a worker kept waiting for a CPU is not hung.

Each worker claims a slot of a table shared with its pool's parent. At a task's start it
writes the task's token, the time, and how long its main thread had waited for a CPU so
far (Linux's ``/proc/<pid>/schedstat``); the parent reads the wait since then. Where
there is no schedstat the wait is 0: the plain wall clock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import Any

# A slot: the worker's pid, the running task's token (0: none), its start (monotonic,
# one clock for every process), and the worker's wait for a CPU then (seconds).
_FIELDS = 4
_PID, _TOKEN, _START, _WAITED = range(_FIELDS)

_table: Any = None  # a worker's: its pool's table
_slot = -1  # a worker's: its slot in it
_tokens = itertools.count(1)


def new_table(context: Any, workers: int) -> tuple[Any, Any]:
    """A pool's table (and the lock its workers claim slots under), passed to each worker
    at its start. Four slots a worker: a dead one's is taken again, unless its pid went to
    another process meanwhile; a worker with none is stopped by pebble's wall clock alone
    (10 times the limit)."""
    return context.Array("d", 4 * workers * _FIELDS, lock=False), context.Lock()


def waited(pid: int | str = "self") -> float:
    """Seconds the main thread of process ``pid`` has waited runnable for a CPU (0 where
    the kernel does not say)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def claim(table: Any, lock: Any) -> None:
    """In a worker at its start: take a free slot, or one whose worker is gone."""
    global _table, _slot
    pid = os.getpid()
    with lock:
        for slot in range(len(table) // _FIELDS):
            held = int(table[slot * _FIELDS + _PID])
            if held and held != pid and _alive(held):  # a dead worker's pid may be ours
                continue
            table[slot * _FIELDS + _TOKEN] = 0
            table[slot * _FIELDS + _PID] = pid
            _table, _slot = table, slot
            return
    # No slot (pids reused by other processes): this worker's tasks go by the wall clock.


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def next_token() -> float:
    """A token for a task, unique in this process (exact as a double up to 2**53)."""
    return float(next(_tokens))


@contextlib.contextmanager
def started(token: float) -> Any:
    """In a worker, around a task: its start written to the worker's slot."""
    if _table is None or not token:
        yield
        return
    base = _slot * _FIELDS
    _table[base + _START] = time.monotonic()
    _table[base + _WAITED] = waited()
    _table[base + _TOKEN] = token  # last: a reader that finds the token finds the rest
    try:
        yield
    finally:
        _table[base + _TOKEN] = 0


def ran(table: Any, token: float) -> float | None:
    """Seconds the task ``token`` has run in its worker, its waits for a CPU left out;
    None while it has not started (queued), or in a worker without a slot."""
    for base in range(0, len(table), _FIELDS):
        if table[base + _TOKEN] == token:
            pid, start, before = (float(table[base + i]) for i in (_PID, _START, _WAITED))
            if table[base + _TOKEN] != token:
                return None  # it ended as it was read
            since = time.monotonic() - start
            return since - min(since, max(0.0, waited(int(pid)) - before))
    return None
