"""A private Chroma server on loopback, owning one persist directory.

Chroma's embedded client holds the GIL while it writes (measured: up to 100 ms
per upsert), which stalls the event loop of whoever embeds it. Running the
same embedded store as a child ``chroma run`` process keeps every write off our
interpreter, and makes that process the single writer Chroma needs. A lock file
(:class:`StoreLock`, taken in-process mode too) stops two of our processes, or two
processors in one, from writing the same directory at once. A server that exits
or stops answering (an OOM kill, a crash, a hang) is restarted on its port by
:meth:`LocalChromaServer.revive`, so the clients made for it work again: before a
store call is retried, and by the owner's watchdog thread while it makes none (the
processes that joined its server wait on it).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from rag_ingest._process import find_executable, port_free, start_tied, stop_process_group
from rag_ingest.errors import MissingExtraError, StoreError, unwritable

__all__ = [
    "LocalChromaServer",
    "StoreBusyError",
    "StoreLock",
    "proxies_ignored_by_chromadb",
    "record_owner",
]

logger = logging.getLogger("rag_ingest.store")

_held_here: set[Path] = set()  # directories a StoreLock of this process holds
_LOCK = ".rag-ingest.lock"  # the file in a store directory its StoreLock locks


class StoreBusyError(StoreError):
    """Another process holds the store directory (:class:`StoreLock`)."""


class StoreLock:
    """The one writer of an embedded store directory: an exclusive ``flock``, held until
    :meth:`release` (or the process ends, however it ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable(self.path, exc) from exc
        if self.path in _held_here:
            raise StoreError(
                f"another DocumentProcessor in this process is using {self.path}: close() "
                "it first (in a notebook, a cell that made one ran again), or use that one"
            )
        try:
            handle = open(self.path / _LOCK, "w")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise unwritable(self.path, exc) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreBusyError(
                f"another process is writing to {self.path}; Chroma allows one writer: "
                "use a Chroma server (store.chroma_url) to share a store"
            ) from None
        except OSError as exc:  # a filesystem without locks (NFS without lockd, FUSE)
            handle.close()
            raise StoreError(
                f"cannot lock the store directory {self.path} ({exc.strerror}): the "
                "embedded store needs a filesystem with locks (a local disk), or use a "
                "Chroma server (store.chroma_url)"
            ) from exc
        self._handle: IO[str] | None = handle
        _held_here.add(self.path)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            _held_here.discard(self.path)
            handle.close()


def _lock_holders(lock_file: Path) -> set[int]:
    """The PIDs holding a ``flock`` on ``lock_file``, as ``/proc/locks`` lists them
    (empty where it cannot be read, or names none: another PID namespace's holder)."""
    try:
        inode = os.stat(lock_file).st_ino
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    holders = set()
    for line in lines:
        # "5: FLOCK  ADVISORY  WRITE 18632 fe:00:2146502 0 EOF"; a waiter's has "->".
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            with contextlib.suppress(ValueError):
                holders.add(int(fields[4]))
    holders.discard(0)
    return holders


# `chroma run` is chromadb's Rust server behind a script that imports chromadb first: it
# answered 0.7 s after its launch, 0.6 s of that CPU. Its Rust binding alone, which the
# script calls with the same arguments, answered in 0.07 s (measured).
_RUN_BINDING = """\
import sys, chromadb_rust_bindings
try:
    chromadb_rust_bindings.cli(["chroma", *sys.argv[1:]])
except KeyboardInterrupt:
    pass
"""


def _chroma_command() -> list[str]:
    """The command that runs chromadb's server: its Rust binding if importable, else the
    ``chroma`` script."""
    if importlib.util.find_spec("chromadb_rust_bindings") is not None:
        return [sys.executable, "-c", _RUN_BINDING]
    found = find_executable("chroma")
    if found is None:
        raise MissingExtraError("the embedded Chroma server ('chroma' command)", "chroma")
    return [found]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _heartbeat_client() -> httpx.Client:
    """A client for our own loopback server: no proxy from the environment may carry
    the call elsewhere."""
    return httpx.Client(trust_env=False)


class _HttpxIgnoringProxies:
    """The httpx module, but a ``Client`` made on ``thread`` ignores the environment's
    proxy settings (one another thread makes meanwhile is httpx's own)."""

    def __init__(self, thread: int) -> None:
        self._thread = thread

    def Client(self, *args: Any, **kwargs: Any) -> httpx.Client:  # httpx's name: chromadb calls it
        if threading.get_ident() == self._thread:
            kwargs["trust_env"] = False
        return httpx.Client(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(httpx, name)


_patching = threading.Lock()


@contextmanager
def proxies_ignored_by_chromadb() -> Iterator[None]:
    """While chromadb's HTTP client for a server on loopback (ours, or a ``chroma_url``
    there) is made, its httpx session ignores HTTP_PROXY and the like. chromadb (1.5.9)
    makes ``httpx.Client()`` with ``trust_env`` on and has no setting for it, and httpx
    sends loopback through a proxy unless NO_PROXY names it: behind a corporate proxy,
    the default store failed to open. The client's constructor already calls the server,
    so its session cannot be replaced after it; the module's name is swapped for the
    constructor's time instead, and only a client made on this thread is changed."""
    import chromadb.api.fastapi as fastapi

    with _patching:
        real = getattr(fastapi, "httpx", None)
        if real is not httpx:  # a chromadb that makes its session otherwise: as it does
            yield
            return
        shim = _HttpxIgnoringProxies(threading.get_ident())
        setattr(fastapi, "httpx", shim)  # noqa: B010 - a module's name
        try:
            yield
        finally:
            setattr(fastapi, "httpx", real)  # noqa: B010


_SERVED = ".rag-ingest-server"  # "PID PORT": the directory's server and its owner


def _exits_within(process: subprocess.Popen[bytes], seconds: float, stop: threading.Event) -> bool:
    """Whether ``process`` has exited, or exits within ``seconds``: asleep on its pidfd
    (Linux), else checked each second; ``stop`` set ends the wait early elsewhere."""
    if process.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd here, or the process already reaped
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline:
            if stop.wait(1.0):
                break
    else:
        try:
            select.select([pidfd], [], [], seconds)  # stop() kills it: that wakes us too
        finally:
            os.close(pidfd)
    return process.poll() is not None


def record_owner(path: Path, port: int) -> None:
    """Record this process as the store directory's owner, serving it on ``port`` (0:
    Chroma in this process, which no other can join)."""
    record = path / f"{_SERVED}.{os.getpid()}"
    record.write_text(f"{os.getpid()} {port}\n")
    record.replace(path / _SERVED)


class LocalChromaServer:
    """``chroma run --path DIR`` on 127.0.0.1 until :meth:`stop`; or, when another
    process owns the directory and serves it so, that process's server, joined: a
    backend's workers (``uvicorn --workers 4``) or two notebooks on one ``persist_dir``
    share one store, where the second had failed at start. A joiner whose owner exits
    takes the directory over and serves it on the same port, so every other joiner's
    client works again; a server that exits or hangs under a live owner is restarted by
    the owner's watchdog. On another port (its own taken meanwhile), every client
    follows it (:attr:`moved`)."""

    def __init__(self, path: Path, *, answer_within: float = 5.0) -> None:
        self.path = path
        self.answer_within = answer_within  # seconds a live server has to answer revive()
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.joined = False  # serving is another process's
        self._lock: StoreLock | None = None
        self._reviving = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        # Called with the new port when the directory is served on another (its port was
        # taken while its server was down): the clients made for the old one follow.
        self.moved: list[Callable[[int], None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self._stopping.clear()
        try:
            self._lock = StoreLock(self.path)
        except StoreBusyError:
            self.join(timeout)
            return
        record = self._record()  # the port it was last served on, if any
        self._serve(timeout, record[1] if record else None)

    def join(self, timeout: float = 60.0) -> None:
        """Use the server of the process that holds the directory; :class:`StoreBusyError`
        when it serves none (Chroma in its own process), or one this process cannot
        reach or tell is that directory's (another PID namespace's)."""
        # An owner starting writes its port once its server answers (0.1-0.7 s).
        port = self._owners_answering_port(min(timeout, 10.0))
        if not port:  # none answers, or its Chroma runs in its own process
            raise StoreBusyError(
                f"another process is writing to {self.path.resolve()}, and serves no "
                "Chroma server this process can join (Chroma allows one writer): use a "
                "Chroma server (store.chroma_url) to share a store"
            )
        self.port, self.joined = port, True
        logger.info("joined the Chroma server of %s on port %d", self.path, port)

    def _owners_answering_port(self, seconds: float) -> int | None:
        """The port the process holding the directory's lock serves it on, once its
        server answers there (waiting up to ``seconds``); 0 at once when that process
        runs Chroma in itself; None if none answers in time."""
        deadline = time.monotonic() + seconds
        # One client for the wait: a client a poll cost ~45 ms of CPU (its SSL context).
        with _heartbeat_client() as client:
            while True:
                port = self._owners_port()
                if port == 0 or (
                    port is not None and self._answers(self.answer_within, client, port)
                ):
                    return port
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.1)

    def _record(self) -> tuple[int, int] | None:
        """The directory's record (see :func:`record_owner`): its owner's PID and port."""
        try:
            pid, port = (int(x) for x in (self.path / _SERVED).read_text().split())
        except (OSError, ValueError):
            return None
        return pid, port

    def _owners_port(self) -> int | None:
        """The port the process holding the directory's lock serves it on: its record's
        PID must be that holder's (a record left by an owner gone could name a port
        another server now has)."""
        record = self._record()
        if record is None:
            return None
        pid, port = record
        return port if pid in _lock_holders(self.path / _LOCK) else None

    def _serve(self, timeout: float, port: int | None) -> None:
        """Launch the server, on ``port`` first (where the directory's joiners look for
        it), and record it; the lock is this process's."""
        if not self._launch_anywhere(timeout, port):
            self.stop()
            raise StoreError(
                f"the local Chroma server did not start (see {self.path}/chroma-server.log)"
            )

    def _launch_anywhere(self, timeout: float, port: int | None) -> bool:
        """Launch the server on ``port`` if it is free, else on another, and record
        it; False if it came up on none."""
        command = _chroma_command()
        for attempt in range(3):
            # The last port only if free: launched onto another Chroma server's, ours
            # would fail to bind while that one answered the heartbeat, taken for ours.
            self.port = port if attempt == 0 and port and port_free(port) else _free_port()
            if self._launch(command, timeout):
                record_owner(self.path, self.port)
                self._watch()
                return True
            # the port was taken, or it did not come up: try another
        return False

    def _move(self, old: int) -> None:
        """Tell the clients made for port ``old`` that the server is on :attr:`port`."""
        if self.port != old:
            logger.warning(
                "the Chroma server of %s is now on port %d (port %d was taken while it was down)",
                self.path,
                self.port,
                old,
            )
            for follow in self.moved:
                follow(self.port)

    def _launch(self, command: list[str], timeout: float) -> bool:
        """Start ``chroma run`` on :attr:`port`; True once it answers, else killed."""
        log = open(self.path / "chroma-server.log", "ab")  # noqa: SIM115
        try:
            self.process = start_tied(
                [
                    *command,
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
        # One client for the whole wait: each httpx.get made a client and its SSL context
        # (CA bundle loaded), ~10 ms of CPU a poll, taken from the starting server's cores.
        with _heartbeat_client() as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._answers(1.0, client):
                    return True
                time.sleep(0.02)
        self._kill()
        return False

    def _answers(
        self, timeout: float, client: httpx.Client | None = None, port: int | None = None
    ) -> bool:
        """Whether the server on :attr:`port` (or ``port``) answers its heartbeat."""
        if client is None:
            with _heartbeat_client() as own:
                return self._answers(timeout, own, port)
        url = f"http://127.0.0.1:{port or self.port}/api/v2/heartbeat"
        try:
            return client.get(url, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def revive(self, timeout: float = 60.0) -> None:
        """Restart the server on its port if it has exited or stops answering (an OOM
        kill, a crash, a hang); a no-op while it answers. Called before a store call is
        retried: the clients made for this port then work again (on another port, its own
        taken meanwhile, they follow it through :attr:`moved`)."""
        with self._reviving:  # the store's threads fail together; one restart does
            if self.joined:
                self._take_over(timeout)
                return
            if self._lock is None:
                raise StoreError("the local Chroma server was stopped")
            process = self.process
            if process is not None and process.poll() is None and self._answers(self.answer_within):
                return
            code = None if process is None else process.poll()
            logger.warning(
                "the local Chroma server %s; restarting it on port %d (see %s)",
                "is not answering" if code is None else f"exited with code {code}",
                self.port,
                self.path / "chroma-server.log",
            )
            self._kill(timeout=2.0)  # a hung server may not heed SIGTERM
            old = self.port
            if not self._launch_anywhere(timeout, old):
                self.port = old
                raise StoreError(
                    f"the local Chroma server stopped and did not restart "
                    f"(see {self.path}/chroma-server.log)"
                )
            self._move(old)

    def _take_over(self, timeout: float) -> None:
        """A joined server that stops answering: its owner's exit ended it (or it hangs).
        The first joiner to take the directory's lock serves it again on its port; the
        others wait for that server (or the owner's watchdog restarts it), and follow it
        to another port if its own was taken meanwhile."""
        if self._answers(self.answer_within):
            return
        try:
            lock = StoreLock(self.path)
        except StoreBusyError:
            self._await_owner(timeout)
            return
        logger.warning(
            "the Chroma server of %s on port %d is gone (its owner exited?): serving it "
            "from this process",
            self.path,
            self.port,
        )
        self._lock, self.joined = lock, False
        old = self.port
        self._serve(timeout, old)
        self._move(old)

    def _await_owner(self, timeout: float) -> None:
        """Wait for the directory's owner to serve it again (its watchdog restarts a
        server that exited or hangs), and follow it to its port."""
        port = self._owners_answering_port(timeout)
        if port == 0:
            raise StoreError(
                f"the store directory {self.path} is now a process's running Chroma in "
                "itself: start this processor again"
            ) from None
        if port is None:
            raise StoreError(
                f"the Chroma server of {self.path} on port {self.port} stopped answering, "
                "and its owner did not serve it again"
            ) from None
        old, self.port = self.port, port
        self._move(old)

    def _watch(self) -> None:
        """Start the owner's watchdog (once): joiners' calls cannot restart the server
        (the directory's lock is the owner's), so an owner that makes no store call for a
        while (an idle backend worker) restarts it all the same."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watching, name="rag-ingest-chroma-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watching(self) -> None:
        # Asleep until the server exits (its pidfd) or a heartbeat is due, which revive()
        # confirms before it kills anything: each wake-up of an idle thread cost ~0.5 ms
        # of CPU here, a heartbeat after a quiet spell 5-15 ms (measured), so neither is
        # frequent.
        every = pause = max(2.0, 6 * self.answer_within)
        client: httpx.Client | None = None  # one, made at the first heartbeat (~45 ms of CPU)
        try:
            while not self._stopping.is_set():
                process = self.process
                if process is not None and not _exits_within(process, every, self._stopping):
                    if self._stopping.is_set():
                        break
                    client = client or _heartbeat_client()
                    if self._answers(self.answer_within, client):
                        continue
                if self._stopping.is_set():
                    break
                try:
                    self.revive()  # waits for one a store call's retry has under way
                    pause = every
                except StoreError as exc:
                    if self._stopping.is_set() or self.joined:
                        break
                    logger.warning("the local Chroma server could not be restarted: %s", exc)
                    self._stopping.wait(pause)
                    pause = min(2 * pause, 60.0)
        finally:
            if client is not None:
                client.close()

    def _kill(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        stop_process_group(process, timeout=timeout)

    def stop(self) -> None:
        self._stopping.set()
        with self._reviving:
            self._kill()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=30)
