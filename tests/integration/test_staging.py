"""What a killed process staged is removed by the next one to start; a live one's is
kept (``rag_ingest/staging.py``)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from rag_ingest import DocumentProcessor
from rag_ingest.errors import ConfigurationError
from rag_ingest.settings import Settings
from rag_ingest.staging import StagingArea, sweep
from tests.conftest import IN_PROCESS_STORE, ingest_until_parsing

pytestmark = pytest.mark.integration


def settings(tmp_path: Path, store: str) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / store), **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
            "temp_dir": str(tmp_path / "temp"),
        }
    )


def test_sweep_removes_the_directories_of_ended_processes_only(tmp_path: Path) -> None:
    live = StagingArea(tmp_path)
    (live.path / "download.part").write_bytes(b"x")
    dead = tmp_path / "rag-ingest-run-dead"
    (dead / "rag-ingest-parse-1").mkdir(parents=True)
    (dead / ".lock").write_text("")  # its process ended: nobody holds the lock
    newborn = tmp_path / "rag-ingest-run-newborn"  # made this moment, no lock yet
    newborn.mkdir()
    orphan = tmp_path / "rag-ingest-run-orphan"  # no lock, and old
    orphan.mkdir()
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    other = tmp_path / "someone-elses"
    other.mkdir()
    try:
        assert sweep(tmp_path) == 2
        assert not dead.exists() and not orphan.exists()
        assert (live.path / "download.part").exists() and newborn.exists() and other.exists()
    finally:
        live.close()
    assert not live.path.exists()


def test_a_directory_is_locked_before_a_sweep_can_see_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processors starting together (gunicorn's workers): the other's sweep runs
    # between our making the directory and locking it. Made and locked under the name
    # a sweep looks for, it was taken for a dead process's and removed.
    real, swept = fcntl.flock, []

    def flock_after_a_sweep(handle: Any, flags: int) -> None:
        if not swept:
            swept.append(sweep(tmp_path))
        real(handle, flags)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    area = StagingArea(tmp_path)
    monkeypatch.setattr(fcntl, "flock", real)
    try:
        assert swept == [0] and area.path.is_dir()
        assert sweep(tmp_path) == 0 and area.path.is_dir()
    finally:
        area.close()


def test_staging_works_unlocked_where_the_filesystem_has_no_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # NFS without its lock daemon, some FUSE mounts: flock fails with ENOLCK, and a
    # processor whose temp_dir was there could not start at all.
    import errno

    def no_locks(*args: Any) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    first = StagingArea(tmp_path)
    assert "on a filesystem without locks (No locks available)" in caplog.text
    second = StagingArea(tmp_path)  # its sweep cannot tell the first's live: kept
    assert first.path.is_dir() and second.path.is_dir()
    first.close()
    second.close()
    assert list(tmp_path.iterdir()) == []

    def broken(*args: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(fcntl, "flock", broken)
    with pytest.raises(ConfigurationError, match="I/O error"):
        StagingArea(tmp_path)  # any other failure still fails the start, naming temp_dir
    assert list(tmp_path.iterdir()) == []  # and leaves nothing (its lock file was open)


async def test_a_second_processor_keeps_a_running_ones_staging(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nText of A.\n")
    async with DocumentProcessor(settings(tmp_path, "one")) as first:
        assert first._staging is not None
        mine = first._staging.path
        async with DocumentProcessor(settings(tmp_path, "two")) as second:
            assert (await second.process_document(doc, session_id="s")).status == "ingested"
            assert mine.is_dir()
        assert (await first.process_document(doc, session_id="s")).status == "ingested"
    assert list((tmp_path / "temp").iterdir()) == []


def test_what_a_killed_ingest_staged_goes_at_the_next_start(tmp_path: Path) -> None:
    process, command, env = ingest_until_parsing(
        tmp_path, 40, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    process.send_signal(signal.SIGKILL)  # no clean-up runs: the OOM killer's way
    process.wait()
    temp = tmp_path / "temp"
    (left,) = temp.glob("rag-ingest-run-*")
    assert list(left.glob("rag-ingest-parse-*"))
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "40 listed: 40 ingested" in run.stdout
    assert list(temp.iterdir()) == []


async def test_a_staging_directory_that_cannot_be_written_names_the_setting(
    tmp_path: Path, blocked: Path
) -> None:
    cfg = settings(tmp_path, "store").model_copy(update={"temp_dir": blocked / "temp"})
    with pytest.raises(ConfigurationError, match="set temp_dir"):
        async with DocumentProcessor(cfg):
            pass
