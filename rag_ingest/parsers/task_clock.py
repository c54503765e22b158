"""How much of its worker's CPU time a parser worker's task has used, for
``parse.cpu_timeout``.

Workers run at ``parse.worker_nice`` (15): on a machine whose cores other work holds (a
local LLM answering, a build), each gets a few percent of a core (0.15 s of a worker's
work took 4.3 s beside a busy loop on each core, measured), and a parse of a few seconds'
work ran past a wall-clock limit and failed the document. A spinning hang uses a CPU the
whole time; a worker kept waiting for one does not. (A first try left out the waits the
worker's main thread showed in Linux's schedstat; under load not every wait showed
there, so it stopped starved tasks anyway.)

Each worker claims a slot of a table shared with its pool's parent. At a task's start it
writes the task's token, the time, and its process's CPU time so far (all its threads:
an OCR batch's onnxruntime threads count); the parent reads the worker's CPU time since
then (psutil).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import Any

import psutil

# A slot: the worker's pid, the running task's token (0: none), its start (monotonic,
# one clock for every process), and the worker's CPU time then (seconds).
_FIELDS = 4
_PID, _TOKEN, _START, _CPU = range(_FIELDS)

_table: Any = None  # a worker's: its pool's table
_slot = -1  # a worker's: its slot in it
_self: psutil.Process | None = None  # a worker's own
_tokens = itertools.count(1)


def new_table(context: Any, workers: int) -> tuple[Any, Any]:
    """A pool's table (and the lock its workers claim slots under), passed to each worker
    at its start. Four slots a worker: a dead one's is taken again, unless its pid went to
    another process meanwhile; a worker with none is stopped by the wall clock alone
    (``parse.timeout``)."""
    return context.Array("d", 4 * workers * _FIELDS, lock=False), context.Lock()


def cpu_time(process: psutil.Process) -> float | None:
    """Seconds of CPU ``process`` has used, its threads', user and system; None once it
    is gone."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def claim(table: Any, lock: Any) -> None:
    """In a worker at its start: take a free slot, or one whose worker is gone."""
    global _table, _slot, _self
    pid = os.getpid()
    with lock:
        for slot in range(len(table) // _FIELDS):
            held = int(table[slot * _FIELDS + _PID])
            if held and held != pid and psutil.pid_exists(held):  # a dead one's pid: ours?
                continue
            table[slot * _FIELDS + _TOKEN] = 0
            table[slot * _FIELDS + _PID] = pid
            _table, _slot, _self = table, slot, psutil.Process()
            return
    # No slot (pids reused by other processes): this worker's tasks go by the wall clock.


def next_token() -> float:
    """A token for a task, unique in this process (exact as a double up to 2**53)."""
    return float(next(_tokens))


@contextlib.contextmanager
def started(token: float) -> Any:
    """In a worker, around a task: its start written to the worker's slot."""
    if _table is None or _self is None or not token:
        yield
        return
    base = _slot * _FIELDS
    _table[base + _START] = time.monotonic()
    _table[base + _CPU] = cpu_time(_self) or 0.0
    _table[base + _TOKEN] = token  # last: a reader that finds the token finds the rest
    try:
        yield
    finally:
        _table[base + _TOKEN] = 0


def used(table: Any, token: float) -> tuple[float, float] | None:
    """Seconds the task ``token`` has run by the wall clock, and of its worker's CPU time;
    None while it has not started (queued), in a worker without a slot, or once ended."""
    for base in range(0, len(table), _FIELDS):
        if table[base + _TOKEN] == token:
            pid, start, before = (float(table[base + i]) for i in (_PID, _START, _CPU))
            if table[base + _TOKEN] != token:
                return None  # it ended as it was read
            try:
                now = cpu_time(psutil.Process(int(pid)))
            except psutil.Error:
                return None
            if now is None or table[base + _TOKEN] != token:
                return None  # its worker ended, or it did, as the CPU time was read
            return time.monotonic() - start, max(0.0, now - before)
    return None
