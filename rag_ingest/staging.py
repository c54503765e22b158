"""A processor's own staging directory, and what dead processes left in theirs.

Downloads, uploads and each document's parse scratch go under ``rag-ingest-run-*`` in
the staging directory (``temp_dir``, else the system's), locked with ``flock`` while
its processor runs. A process killed outright (SIGKILL, the OOM killer, a container's
hard stop) cannot remove its own: a staged download of gigabytes stayed until the next
reboot. The next processor to start removes every such directory whose lock is free,
that is, whose process is gone; a live one's (another processor's, another container's
sharing the directory) is locked and kept. On a filesystem without locks, staging works
unlocked and nothing is swept there (a live process's directory cannot be told apart).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

from rag_ingest.errors import unwritable

__all__ = ["StagingArea", "sweep"]

logger = logging.getLogger("rag_ingest.pipeline")

PREFIX = "rag-ingest-run-"
_UNBORN = ".rag-ingest-new-"  # made and locked under this name, then renamed: see below
_LOCK = ".lock"
# A directory of the prefix without a lock file is no processor's (each is locked
# before it takes the name), but may be one being removed this moment.
_NEWBORN = 60.0
# flock's errors on a filesystem without locks (NFS without its lock daemon, some FUSE
# mounts): staging works there unlocked, and a sweep leaves every directory alone.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})


class StagingArea:
    """``rag-ingest-run-*`` under ``base``, this process's, locked until :meth:`close`."""

    def __init__(self, base: Path) -> None:
        self._lock: IO[str] | None = None
        unborn = None
        try:
            base.mkdir(parents=True, exist_ok=True)
            removed = sweep(base)
            # Locked before it takes the name a sweep looks for: made and locked under
            # that name, another process's sweep could take it for a dead one's between
            # the two steps, and remove it (processors starting together, gunicorn's).
            unborn = Path(tempfile.mkdtemp(prefix=_UNBORN, dir=base))
            self._lock = open(unborn / _LOCK, "w")  # noqa: SIM115 - held until close()
            self._take_lock(base)
            self.path = base / (PREFIX + unborn.name.removeprefix(_UNBORN))
            unborn.rename(self.path)
        except OSError as exc:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            if unborn is not None:
                shutil.rmtree(unborn, ignore_errors=True)
            raise unwritable(base, exc, "staging", "temp_dir") from exc
        if removed:
            logger.info("removed %d staging directories of processes that ended", removed)

    def _take_lock(self, base: Path) -> None:
        assert self._lock is not None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            logger.warning(
                "the staging directory %s is on a filesystem without locks (%s): what a "
                "killed process staged there is not removed by the next start",
                base,
                exc.strerror,
            )

    def close(self) -> None:
        """Remove the directory and all it holds."""
        lock, self._lock = self._lock, None
        if lock is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            lock.close()


def sweep(base: Path) -> int:
    """Remove the staging directories under ``base`` whose process is gone; how many."""
    removed = 0
    for path in base.glob(PREFIX + "*"):
        try:
            if not path.is_dir() or path.is_symlink():
                continue
            try:
                handle = open(path / _LOCK)  # noqa: SIM115 - closed below
            except FileNotFoundError:
                if time.time() - path.stat().st_mtime < _NEWBORN:
                    continue
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process runs
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError as exc:  # another user's, or gone meanwhile: not ours to mind
            logger.debug("staging directory %s left alone: %s", path, exc)
    return removed
