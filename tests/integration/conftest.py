from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.errors import free_space
from rag_ingest.testing import SeaweedS3


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """One real S3 server (SigV4 enforced) for the whole session, stopped at the end.

    Its files are in memory where /dev/shm has room: the session stores a 1 GiB object,
    and on a disk that falls under 1% free weed stops taking writes.
    """
    with SeaweedS3(prefer_memory=True) as server:
        yield server


@pytest.fixture
def unlinks(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], list[tuple[Path, int]]]:
    """``unlinks(directory)``: a list that records each ``Path.unlink`` of a file under
    ``directory`` from then on, with the thread that ran it."""

    def watch(directory: Path) -> list[tuple[Path, int]]:
        seen: list[tuple[Path, int]] = []
        unlink = Path.unlink

        def record(self: Path, missing_ok: bool = False) -> None:
            if directory in self.parents:
                seen.append((self, threading.get_ident()))
            unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", record)
        return seen

    return watch


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(size)``: a fresh tmpfs of ``size`` bytes, unmounted after the test
    (skipped where mounting is not permitted). A real full disk: ENOSPC as the kernel
    gives it, and free space as weed and ``shutil.disk_usage`` read it."""
    mounts: list[Path] = []

    def make(size: int) -> Path:
        mount = tmp_path / f"disk{len(mounts)}"
        mount.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
        mounts.append(mount)
        return mount

    try:
        yield make
    finally:
        for mount in mounts:
            subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used the S3 server reports the server's volume counts, its
    disk's free space and the tail of its log.

    The server's files are removed when the session ends, so a 500 from it in CI is
    otherwise undiagnosable.
    """
    report = yield
    server = getattr(item, "funcargs", {}).get("seaweed")
    if report.failed and isinstance(server, SeaweedS3):
        try:
            volumes = str(server.volume_status())
        except Exception as exc:  # the server may be what broke
            volumes = f"unavailable: {exc!r}"
        report.sections.append(("SeaweedFS volumes", volumes))
        disk = f"{server.data_dir}: {free_space(server.data_dir)}"
        report.sections.append(("SeaweedFS disk", disk))
        report.sections.append(("SeaweedFS log (tail)", server.log_tail(6000)))
    return report
