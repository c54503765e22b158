"""Processes on one store directory (``persist_dir``, no ``chroma_url``): the first
serves it as a private Chroma server, and the others join that server and its ledger
(a backend's workers, two notebooks). Before, every process after the first failed at
start ("another process is writing to ...")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.chroma_server import LocalChromaServer, StoreBusyError, StoreLock
from rag_ingest.pipeline import SyncDocumentProcessor
from rag_ingest.settings import Settings

pytestmark = pytest.mark.integration


def settings_for(store: Path, **more: object) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(store), **more},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


def write_docs(root: Path, n: int) -> list[Path]:
    root.mkdir(exist_ok=True)
    docs = []
    for i in range(n):
        doc = root / f"doc{i:02d}.md"
        doc.write_text(f"# Doc {i}\n\n" + f"Document {i} says CANARY{i}. " * (20 + 60 * (i % 3)))
        docs.append(doc)
    return docs


def test_processes_on_one_store_directory_share_its_server_and_ledger(tmp_path: Path) -> None:
    """Three `rag-ingest ingest` processes at once on one corpus and one persist_dir:
    each source ingested by one of them, each chunk embedded and stored once."""
    corpus = tmp_path / "corpus"
    write_docs(corpus, 24)
    store = tmp_path / "store"
    env = {**os.environ, "RAG_INGEST_MODELS__EMBEDDER": "hash", "RAG_INGEST_PARSE__WORKERS": "1"}
    runs = []
    for worker in "abc":
        report = tmp_path / f"report-{worker}.json"
        command = [sys.executable, "-m", "rag_ingest.cli", "ingest", str(corpus),
                   "--session", "s", "--persist-dir", str(store), "--report", str(report),
                   "--no-progress"]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        runs.append((process, report))
    ingested, embedded = [], 0
    for process, report in runs:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out
        done = json.loads(report.read_text())
        assert done["totals"]["failed"] == 0
        ingested += [d["filename"] for d in done["documents"] if d["status"] == "ingested"]
        embedded += done["usage"].get("embedded_chunks", 0)
    assert sorted(ingested) == sorted(p.name for p in corpus.iterdir())  # each once
    with SyncDocumentProcessor(settings_for(store)) as p:
        assert p.processor.store is not None and p.processor.store._collection is not None
        assert p.processor.store._collection.count() == embedded  # each chunk stored once
        (session,) = p.sessions()
        assert session.chunks == embedded and session.sources == 24


OWNER = textwrap.dedent(
    """
    import sys
    from rag_ingest.pipeline import SyncDocumentProcessor
    from rag_ingest.settings import Settings
    store = {"persist_dir": sys.argv[1], "timeout": float(sys.argv[3]) if sys.argv[3:] else 120.0}
    s = Settings.model_validate({"progress": False, "models": {"embedder": "hash"},
        "parse": {"mode": "thread", "workers": 1}, "store": store})
    with SyncDocumentProcessor(s) as p:
        print(p.process_many([sys.argv[2]], session_id="s").totals["ingested"], flush=True)
        sys.stdin.readline()
    """
)


def test_a_joiner_serves_the_directory_once_its_owner_is_killed(tmp_path: Path) -> None:
    first, second, third = write_docs(tmp_path / "docs", 3)
    store = tmp_path / "store"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(store), str(first)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "1"
        with SyncDocumentProcessor(settings_for(store)) as p:
            server = p.processor.store._server  # type: ignore[union-attr]
            assert server is not None and server.joined and server.process is None
            port = server.port
            report = p.process_many([first, second], session_id="s")
            assert [r.status for r in report.results] == ["skipped", "ingested"]  # one ledger
            # The CLI's in-process store, beside the served one, joins it too.
            found = subprocess.run(
                [sys.executable, "-m", "rag_ingest.cli", "query", "CANARY1", "--session", "s",
                 "--persist-dir", str(store), "--embeddings", "hash", "--json"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert found.returncode == 0, found.stdout + found.stderr
            assert "doc01.md" in found.stdout

            owner.send_signal(signal.SIGKILL)  # its server ends with it
            owner.wait(30)
            report = p.process_many([third], session_id="s")
            assert report.totals["ingested"] == 1, report.results[0].message
            assert not server.joined and server.process is not None  # it serves it now
            assert server.port == port  # where any other joiner looks for it
            hits = p.query("CANARY", session_id="s", k=10)
            assert {d.metadata["filename"] for d, _ in hits} == {"doc00.md", "doc01.md", "doc02.md"}
    finally:
        owner.kill()
        owner.communicate(timeout=30)  # its pipes closed too


def server_of_directory(store: Path) -> int:
    """The PID of the ``chroma run`` serving ``store``."""
    where = str(store / "chroma").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if "run" in (a.decode(errors="replace") for a in args) and where in args:
                    return int(entry.name)
    raise AssertionError(f"no Chroma server serves {store}")


@contextlib.contextmanager
def joined_to_an_idle_owner(
    tmp_path: Path, owner_timeout: float = 2
) -> Iterator[tuple[subprocess.Popen[str], SyncDocumentProcessor, Any, Path]]:
    """An owner process that ingested doc00 and then idles, and a processor here joined
    to its server (store.timeout 2); with the joiner's server object and doc01."""
    first, second = write_docs(tmp_path / "docs", 2)
    store = tmp_path / "store"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(store), str(first), str(owner_timeout)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "1"
        with SyncDocumentProcessor(settings_for(store, timeout=2)) as p:
            server = p.processor.store._server  # type: ignore[union-attr]
            assert server is not None and server.joined
            yield owner, p, server, second
    finally:
        owner.kill()
        owner.communicate(timeout=30)


def ingests_and_finds_both(p: SyncDocumentProcessor, second: Path) -> None:
    report = p.process_many([second], session_id="s")
    assert report.totals["ingested"] == 1, report.results[0].message
    hits = p.query("CANARY", session_id="s", k=10)
    assert {d.metadata["filename"] for d, _ in hits} == {"doc00.md", "doc01.md"}


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_an_idle_owner_restarts_its_server_for_its_joiners(tmp_path: Path, fault: str) -> None:
    """A joiner's call cannot restart the owner's server (the directory's lock is the
    owner's): an owner that makes no store call meanwhile (an idle backend worker) has
    its watchdog restart it on its port. Before, the joiner waited a minute a retry for
    an owner that never served the directory again."""
    served = 0
    try:
        # The owner's store.timeout 1: its heartbeat every 6 s.
        with joined_to_an_idle_owner(tmp_path, owner_timeout=1) as (owner, p, server, second):
            port = server.port
            served = server_of_directory(tmp_path / "store")
            os.kill(served, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
            started = time.monotonic()
            ingests_and_finds_both(p, second)
            assert time.monotonic() - started < 30
            assert server.joined and server.port == port  # the owner serves it again
            assert server_of_directory(tmp_path / "store") != served
            assert owner.poll() is None
    finally:
        if served:
            with contextlib.suppress(ProcessLookupError):
                os.kill(served, signal.SIGKILL)


def squat(port: int) -> socket.socket:
    """A listener on ``port`` that never answers: what took the server's port while it
    was down (connections to it open, and then wait)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 5
    while True:
        try:
            sock.bind(("127.0.0.1", port))
            break
        except OSError:  # the killed server's socket not yet closed
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    sock.listen()
    return sock


def test_joiners_follow_their_owner_s_server_to_another_port(tmp_path: Path) -> None:
    """The owner's server exits and its port is taken meanwhile: the owner serves the
    directory on another port, and a joiner's client follows it there. Before, the
    joiner had to be started again."""
    with joined_to_an_idle_owner(tmp_path) as (owner, p, server, second):
        port = server.port
        os.kill(owner.pid, signal.SIGSTOP)  # so its watchdog cannot win the port back
        try:
            os.kill(server_of_directory(tmp_path / "store"), signal.SIGKILL)
            squatter = squat(port)
        finally:
            os.kill(owner.pid, signal.SIGCONT)
        with squatter:
            ingests_and_finds_both(p, second)
            assert server.joined and server.port != port
            recorded = (tmp_path / "store" / "chroma" / ".rag-ingest-server").read_text()
            assert recorded.split() == [str(owner.pid), str(server.port)]


def test_a_joiner_takes_over_on_another_port_if_its_owner_s_was_taken(tmp_path: Path) -> None:
    with joined_to_an_idle_owner(tmp_path) as (owner, p, server, second):
        port = server.port
        owner.send_signal(signal.SIGKILL)  # its server ends with it
        owner.wait(30)
        with squat(port):
            ingests_and_finds_both(p, second)
            assert not server.joined and server.process is not None
            assert server.port != port


def test_a_record_of_an_owner_gone_is_not_joined(tmp_path: Path) -> None:
    """The directory's record names a port that another directory's server now has: the
    lock's holder is not the process it names, so nothing is joined (its writes would
    have gone to the other store)."""
    other = LocalChromaServer(tmp_path / "other")
    other.start()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.readline()",
         str(tmp_path / "store" / ".rag-ingest.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        (tmp_path / "store").mkdir(exist_ok=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (tmp_path / "store" / ".rag-ingest-server").write_text(f"{os.getpid()} {other.port}\n")
        with pytest.raises(StoreBusyError, match="serves no Chroma server this process can"):
            LocalChromaServer(tmp_path / "store").start(timeout=1.0)
        # Named by the holder itself, it is joined.
        (tmp_path / "store" / ".rag-ingest-server").write_text(f"{holder.pid} {other.port}\n")
        joined = LocalChromaServer(tmp_path / "store")
        joined.start(timeout=1.0)
        assert joined.joined and joined.port == other.port
    finally:
        holder.kill()
        holder.communicate(timeout=30)
        other.stop()
    # The lock free again: the next one owns the directory.
    lock = StoreLock(tmp_path / "store")
    lock.release()


def test_an_owner_does_not_serve_on_a_recorded_port_another_server_has(tmp_path: Path) -> None:
    """The directory's last port is tried first (where joiners look), unless another
    server listens there: launched onto it, ours would fail to bind while that one
    answered its heartbeat, taken for ours."""
    other = LocalChromaServer(tmp_path / "other")
    other.start()
    try:
        (tmp_path / "store").mkdir()
        (tmp_path / "store" / ".rag-ingest-server").write_text(f"1 {other.port}\n")
        ours = LocalChromaServer(tmp_path / "store")
        ours.start()
        try:
            assert not ours.joined and ours.process is not None
            assert ours.port != other.port
            recorded = (tmp_path / "store" / ".rag-ingest-server").read_text().split()
            assert recorded == [str(os.getpid()), str(ours.port)]
        finally:
            ours.stop()
        # Free again, its last port is taken back.
        again = LocalChromaServer(tmp_path / "store")
        again.start()
        assert again.port == ours.port
        again.stop()
    finally:
        other.stop()
