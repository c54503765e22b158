"""A private Chroma server on loopback, owning one persist directory.

Chroma's embedded client holds the GIL while it writes (measured: up to 100 ms
per upsert), which stalls the event loop of whoever embeds it. Running the
same embedded store as a child ``chroma run`` process keeps every write off our
interpreter, and makes that process the single writer Chroma needs. A lock file
(:class:`StoreLock`, taken in-process mode too) stops two of our processes, or two
processors in one, from writing the same directory at once.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx

from rag_ingest._process import find_executable, start_tied, stop_process_group
from rag_ingest.errors import MissingExtraError, StoreError

__all__ = ["LocalChromaServer", "StoreLock"]

_held_here: set[Path] = set()  # directories a StoreLock of this process holds


class StoreLock:
    """The one writer of an embedded store directory: an exclusive ``flock``, held until
    :meth:`release` (or the process ends, however it ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        if self.path in _held_here:
            raise StoreError(
                f"another DocumentProcessor in this process is using {self.path}: close() "
                "it first (in a notebook, a cell that made one ran again), or use that one"
            )
        handle = open(self.path / ".rag-ingest.lock", "w")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(
                f"another process is writing to {self.path}; Chroma allows one writer: "
                "use a Chroma server (store.chroma_url) to share a store"
            ) from None
        self._handle: IO[str] | None = handle
        _held_here.add(self.path)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            _held_here.discard(self.path)
            handle.close()


def _find_chroma() -> str:
    found = find_executable("chroma")
    if found is None:
        raise MissingExtraError("the embedded Chroma server ('chroma' command)", "chroma")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalChromaServer:
    """``chroma run --path DIR`` on 127.0.0.1 until :meth:`stop`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: StoreLock | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self._lock = StoreLock(self.path)
        executable = _find_chroma()
        for _ in range(3):
            self.port = _free_port()
            log = open(self.path / "chroma-server.log", "ab")  # noqa: SIM115
            try:
                self.process = start_tied(
                    [
                        executable,
                        "run",
                        "--path",
                        str(self.path),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                )
            finally:
                log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            self._kill()  # the port was taken, or it did not come up: try another
        self.stop()
        raise StoreError(
            f"the local Chroma server did not start (see {self.path}/chroma-server.log)"
        )

    def _kill(self) -> None:
        process, self.process = self.process, None
        stop_process_group(process)

    def stop(self) -> None:
        self._kill()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
