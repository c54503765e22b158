"""Freed memory handed back to the system (parse.trim_memory)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag_ingest import _memory
from rag_ingest._memory import Trimmer, can_trim
from rag_ingest.parsers import pool
from rag_ingest.pipeline import SyncDocumentProcessor
from rag_ingest.settings import Settings
from tests.conftest import IN_PROCESS_STORE

glibc = pytest.mark.skipif(not can_trim(), reason="malloc_trim is glibc's")

# Many small blocks (malloc's, not mmap's, which are returned as they are freed), every
# 50th kept: freed, they stay resident in glibc's heap until trimmed.
_PEAK = "xs = [b'x' * (600 + i % 3000) for i in range(150_000)]\nkept = xs[::50]\ndel xs\n"


def _numbers_printed(script: str) -> list[int]:
    """What ``script``, run by a Python of its own, prints: whole numbers."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [int(word) for word in done.stdout.split()]


@glibc
def test_a_trim_hands_what_was_freed_back(tmp_path: Path) -> None:
    # In a process of its own: this one's heap depends on the tests before it.
    script = (
        "from rag_ingest._memory import Trimmer, resident\n"
        "trimmer = Trimmer()\n"
        f"{_PEAK}"
        "before = resident()\n"
        "assert trimmer.trim(idle=True)\n"
        "print(before >> 20, resident() >> 20)\n"
    )
    before, after = _numbers_printed(script)
    assert before - after > 150, (before, after)  # ~240 MiB freed of the peak


@glibc
def test_an_idle_trim_waits_for_growth_and_a_busy_one_for_its_interval() -> None:
    trimmer = Trimmer(idle_growth=64 << 20, busy_interval=3600)
    assert trimmer.trim(idle=True)
    assert not trimmer.due(idle=True)  # nothing grew since
    assert not trimmer.due(idle=False)  # the last trim was just now
    grown = bytearray(96 << 20)  # resident: written through
    grown[::4096] = b"x" * len(grown[::4096])
    assert trimmer.due(idle=True)
    del grown
    assert Trimmer(busy_interval=0).due(idle=False)


def test_without_glibc_nothing_is_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_malloc_trim", lambda: None)
    trimmer = Trimmer(idle_growth=0, busy_interval=0)
    assert not trimmer.due(idle=True) and not trimmer.due(idle=False)
    assert not trimmer.trim(idle=True) and trimmer.trims == 0


@glibc
def test_a_trim_already_running_makes_another_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    entered, leave = threading.Event(), threading.Event()

    def slow_trim(pad: int) -> int:
        entered.set()
        leave.wait(10)
        return 1

    monkeypatch.setattr(_memory, "_malloc_trim", lambda: slow_trim)
    trimmer = Trimmer()
    first = threading.Thread(target=trimmer.trim, kwargs={"idle": True})
    first.start()
    assert entered.wait(10)
    assert not trimmer.trim(idle=False)
    leave.set()
    first.join()
    assert trimmer.trims == 1


@glibc
def test_an_idle_worker_hands_back_what_its_task_freed() -> None:
    # A parser worker as its pool starts it, then a task's peak freed: a second idle,
    # its trim thread returns it. Without parse.trim_memory, it stays resident.
    def run(trim: bool) -> tuple[int, int, int]:
        script = (
            "import time\n"
            "from rag_ingest.parsers import pool\n"
            "from rag_ingest.parsers.base import ParseOptions\n"
            "from rag_ingest._memory import resident\n"
            f"pool._worker_init(8 << 30, 0, ParseOptions(), 'cl100k_base', False, {trim})\n"
            f"{_PEAK}"
            "pool._last_task = time.monotonic()\n"
            "before = resident()\n"
            "deadline = time.monotonic() + 4\n"
            "while time.monotonic() < deadline and not (pool._trimmer and pool._trimmer.trims):\n"
            "    time.sleep(0.05)\n"
            "print(before >> 20, resident() >> 20, pool._trimmer.trims if pool._trimmer else 0)\n"
        )
        before, after, trims = _numbers_printed(script)
        return before, after, trims

    before, after, trims = run(True)
    assert trims == 1 and before - after > 150, (before, after)
    before, after, trims = run(False)
    assert trims == 0 and before - after < 50, (before, after)


@glibc
def test_a_worker_never_idle_trims_before_a_task_every_so_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trimmer = Trimmer(busy_interval=3600)
    monkeypatch.setattr(pool, "_trimmer", trimmer)
    task = pickle.dumps((len, ("abc",)))
    assert pool._call_in_worker("a.txt", task) == 3
    assert trimmer.trims == 0  # not due: its interval has not passed
    trimmer.busy_interval = 0
    assert pool._call_in_worker("a.txt", task) == 3
    assert trimmer.trims == 1


class _AlwaysDue(Trimmer):
    """Due at every document: when it is asked, and how, is the processor's."""

    def due(self, *, idle: bool) -> bool:
        return True


@pytest.mark.integration
@glibc
@pytest.mark.parametrize("trim", [True, False])
def test_a_processor_trims_when_its_last_document_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trim: bool
) -> None:
    made: list[Trimmer] = []
    asked: list[bool] = []  # idle, for each trim the processor ran

    def trimmer() -> Trimmer:
        made.append(_AlwaysDue())
        return made[-1]

    def noted(self: Trimmer, *, idle: bool) -> bool:
        asked.append(idle)
        return real_trim(self, idle=idle)

    real_trim = Trimmer.trim
    monkeypatch.setattr("rag_ingest.pipeline.Trimmer", trimmer)
    monkeypatch.setattr(Trimmer, "trim", noted)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"note{i}.md").write_text(f"# Note {i}\n\nCanary line {i}.\n")
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1, "trim_memory": trim},
        }
    )
    with SyncDocumentProcessor(settings) as processor:
        report = processor.process_many([str(corpus)], session_id="s")
        assert report.count("ingested") == 6
        deadline = time.monotonic() + 10
        while trim and True not in asked and time.monotonic() < deadline:
            time.sleep(0.02)  # the trims run on the processor's I/O threads
    if not trim:
        assert made == [] and asked == []
        return
    assert True in asked  # the last document done: nothing in hand
    assert False in asked  # documents still in hand: the busy trims
    assert sum(t.trims for t in made) >= 1
