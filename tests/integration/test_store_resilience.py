"""The store survives its server: a private Chroma server that is killed or hangs is
restarted and the call retried; a remote one's transient failures are retried; a
bad request is not. Nothing is lost and nothing doubled."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag_ingest.chroma_server import LocalChromaServer
from rag_ingest.errors import StoreError
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from rag_ingest.store import ChunkStore, Ledger, store_transient

pytestmark = pytest.mark.integration


def settings(tmp_path: Path, **store: Any) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **store},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


def docs(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"d{i}.md"
        path.write_text(f"# Doc {i}\n\nThe canary of document {i} is CANARY{i}.\n")
        paths.append(path)
    return paths


def server_of(p: DocumentProcessor) -> Any:
    assert p.store is not None
    server = p.store._server
    assert server is not None and server.process is not None
    return server


async def test_a_killed_chroma_server_is_restarted_for_writes_and_reads(tmp_path: Path) -> None:
    d0, d1 = docs(tmp_path, 2)
    async with DocumentProcessor(settings(tmp_path)) as p:
        assert (await p.process_document(d0, session_id="s")).status == "ingested"
        server = server_of(p)
        port, first = server.port, server.process.pid

        os.killpg(first, signal.SIGKILL)  # the OOM killer, a crash
        server.process.wait()
        written = await p.process_document(d1, session_id="s")
        assert written.status == "ingested", written.message
        second = server.process.pid
        assert second != first and server.port == port

        def kill() -> None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()

        kill()
        hits = await p.query("CANARY0", session_id="s", k=5)  # a read revives it too
        assert {d.metadata["filename"] for d, _ in hits} == {"d0.md", "d1.md"}
        kill()
        retrieved = await p.as_retriever(session_id="s", k=5).ainvoke("CANARY1")
        assert {d.metadata["filename"] for d in retrieved} == {"d0.md", "d1.md"}

        report = await p.verify_session("s")
        assert report.consistent and report.stored == 2


async def test_an_idle_processor_restarts_its_exited_chroma_server(tmp_path: Path) -> None:
    """With no store call to notice it (the processes that joined the server wait on
    this one), the watchdog restarts it on its port."""
    async with DocumentProcessor(settings(tmp_path)) as p:
        await p.process_document(docs(tmp_path, 1)[0], session_id="s")
        server = server_of(p)
        port, first = server.port, server.process.pid
        os.killpg(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            process = server.process
            if process is not None and process.pid != first and server._answers(1.0):
                break
            await asyncio.sleep(0.2)
        assert server.process is not None and server.process.pid != first
        assert server.port == port and server._answers(1.0)


@pytest.mark.parametrize("pidfd", [True, False])
def test_the_watchdog_sees_an_exit_at_once_and_waits_otherwise(
    monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    """Asleep on the child's pidfd, or (without one) checked each second."""
    from rag_ingest.chroma_server import _exits_within

    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open")
    stop = threading.Event()
    short = subprocess.Popen(["sleep", "0.3"])
    started = time.monotonic()
    assert _exits_within(short, 10, stop)
    assert time.monotonic() - started < (2 if pidfd else 3.5)
    long = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        assert not _exits_within(long, 1.5, stop)
        assert 1.4 < time.monotonic() - started < 5
    finally:
        long.kill()
        long.wait()


async def test_a_server_whose_port_was_taken_comes_back_on_another(tmp_path: Path) -> None:
    """Its port taken while it was down, the server is restarted on another, recorded
    for the directory's joiners, and this store's client follows it. Before, every
    store call failed until the processor was started again."""
    d0, d1 = docs(tmp_path, 2)
    async with DocumentProcessor(settings(tmp_path, timeout=3)) as p:
        assert (await p.process_document(d0, session_id="s")).status == "ingested"
        server = server_of(p)
        port, process = server.port, server.process
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with server._reviving:  # the watchdog waits
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            squatter.bind(("127.0.0.1", port))
            squatter.listen()  # connections open, then wait: the call times out
        with squatter:
            written = await p.process_document(d1, session_id="s")
            assert written.status == "ingested", written.message
            assert server.port != port
        recorded = (tmp_path / "store" / "chroma" / ".rag-ingest-server").read_text().split()
        assert recorded == [str(os.getpid()), str(server.port)]
        hits = await p.query("CANARY0", session_id="s", k=5)
        assert {d.metadata["filename"] for d, _ in hits} == {"d0.md", "d1.md"}


async def test_a_hung_chroma_server_is_killed_and_restarted(tmp_path: Path) -> None:
    d0, d1 = docs(tmp_path, 2)
    async with DocumentProcessor(settings(tmp_path, timeout=1.5)) as p:
        assert (await p.process_document(d0, session_id="s")).status == "ingested"
        server = server_of(p)
        hung = server.process
        os.kill(hung.pid, signal.SIGSTOP)  # accepts connections, never answers
        try:
            started = time.monotonic()
            result = await p.process_document(d1, session_id="s")
            took = time.monotonic() - started
        finally:
            if hung.poll() is None:
                os.killpg(hung.pid, signal.SIGKILL)
        assert result.status == "ingested", result.message
        assert hung.poll() is not None and server.process is not hung
        assert took < 30  # without a time limit the write would wait forever
        assert (await p.verify_session("s")).stored == 2


async def test_the_private_chroma_server_is_not_reached_through_a_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that refuses: a call to our loopback server routed through it fails.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        (d0,) = docs(tmp_path, 1)
        async with DocumentProcessor(settings(tmp_path, timeout=10)) as p:
            result = await p.process_document(d0, session_id="s")
            assert result.status == "ingested", result.message
            hits = await p.query("CANARY0", session_id="s")
            assert [d.metadata["filename"] for d, _ in hits] == ["d0.md"]


async def test_a_chroma_url_on_loopback_is_not_reached_through_a_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = LocalChromaServer(tmp_path / "served")
    served.start()
    try:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
            monkeypatch.delenv("NO_PROXY", raising=False)
            (d0,) = docs(tmp_path, 1)
            cfg = settings(tmp_path, chroma_url=served.url.replace("127.0.0.1", "localhost"))
            async with DocumentProcessor(cfg) as p:
                result = await p.process_document(d0, session_id="s")
                assert result.status == "ingested", result.message
                assert len(await p.query("CANARY0", session_id="s")) == 1
    finally:
        served.stop()


def test_only_our_thread_s_chromadb_client_ignores_the_environment_s_proxy() -> None:
    import chromadb.api.fastapi as fastapi

    from rag_ingest.chroma_server import proxies_ignored_by_chromadb

    made: dict[str, bool] = {}

    def make(name: str) -> None:
        with fastapi.httpx.Client() as client:
            made[name] = client._trust_env

    with proxies_ignored_by_chromadb():
        make("ours")
        other = threading.Thread(target=make, args=("another thread's",))
        other.start()
        other.join()
    make("after")
    assert made == {"ours": False, "another thread's": True, "after": True}


def test_a_starting_chroma_server_is_polled_with_one_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.Client] = []
    polls: list[str] = []
    init, send = httpx.Client.__init__, httpx.Client.send

    def counted_init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    def counted_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
        polls.append(request.url.path)
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counted_init)
    monkeypatch.setattr(httpx.Client, "send", counted_send)
    server = LocalChromaServer(tmp_path / "chroma")
    server.start()
    try:
        assert len(polls) > 1  # it was asked again while it came up
        # a client (and its SSL context, ~10 ms of CPU) per poll took CPU from the server
        assert len(made) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("binding", [True, False], ids=["binding", "script"])
def test_the_chroma_server_runs_without_chromadb_s_python_package_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binding: bool
) -> None:
    """chromadb's ``chroma`` script imports chromadb (numpy, pydantic, ...) before it
    calls the Rust server: 0.6 s of CPU a start. Its binding is run alone; the script
    only where the binding cannot be found."""
    from rag_ingest import chroma_server

    if not binding:
        find_spec = chroma_server.importlib.util.find_spec
        monkeypatch.setattr(
            chroma_server.importlib.util,
            "find_spec",
            lambda name, *a: None if name == "chromadb_rust_bindings" else find_spec(name, *a),
        )
    server = LocalChromaServer(tmp_path / "chroma")
    server.start()
    try:
        assert server.process is not None
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        libraries = {line.rsplit("/", 1)[-1] for line in maps.splitlines() if ".so" in line}
        assert any(name.startswith("chromadb_rust_bindings") for name in libraries)
        numpy = any(name.startswith("_multiarray_umath") for name in libraries)
        assert numpy is not binding
        assert httpx.get(f"{server.url}/api/v2/heartbeat", timeout=5).status_code == 200
    finally:
        server.stop()


async def test_a_store_that_stays_down_fails_each_document_once(tmp_path: Path) -> None:
    paths = docs(tmp_path, 3)
    cfg = settings(tmp_path, max_attempts=2)
    async with DocumentProcessor(cfg) as p:
        server = server_of(p)
        server.stop()  # gone for good: nothing to restart
        report = await p.process_many(paths, session_id="s")
    assert report.totals["failed"] == 3
    assert {r.error_type for r in report.results} == {"StoreError"}


async def test_an_unreachable_chroma_url_is_a_store_error_naming_it(tmp_path: Path) -> None:
    cfg = settings(tmp_path, chroma_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9"):
        async with DocumentProcessor(cfg):
            pass


class TokenProxy:
    """A proxy that wants a token, in front of a Chroma server (an ingress doing auth)."""

    def __init__(self, upstream: str, token: str) -> None:
        import http.server
        import threading

        self.seen: list[str | None] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                given = self.headers.get("X-Chroma-Token")
                proxy.seen.append(given)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # As Chroma's own token auth: the heartbeat is open, the API is not.
                if given != token and not self.path.endswith("/heartbeat"):
                    status, headers, content = 401, {}, b'{"error":"Unauthorized"}'
                else:
                    answer = httpx.request(
                        self.command,
                        upstream + self.path,
                        content=body,
                        headers={"Content-Type": self.headers.get("Content-Type", "")},
                    )
                    status, content = answer.status_code, answer.content
                    headers = {"Content-Type": answer.headers.get("content-type", "")}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_chroma_server_behind_a_token_gets_it_and_never_shows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag_ingest.chroma_server import LocalChromaServer
    from rag_ingest.errors import ConfigurationError

    chroma = LocalChromaServer(tmp_path / "remote")
    chroma.start()
    proxy = TokenProxy(chroma.url, "s3cr3t-token")
    try:
        good = settings(
            tmp_path, chroma_url=proxy.url, chroma_headers={"X-Chroma-Token": "s3cr3t-token"}
        )
        async with DocumentProcessor(good) as p:
            result = await p.process_document(docs(tmp_path, 1)[0], session_id="s")
            hits = await p.query("CANARY0", session_id="s", k=1)
        assert result.status == "ingested" and hits
        assert set(proxy.seen) == {"s3cr3t-token"}
        no_token = settings(tmp_path, chroma_url=proxy.url)
        assert "s3cr3t-token" not in repr(good) + caplog.text

        bad = settings(tmp_path, chroma_url=proxy.url, chroma_headers={"X-Chroma-Token": "nope"})
        for refused in (bad, no_token):
            with pytest.raises(StoreError, match=r"(401|Unauthorized).*chroma_headers"):
                async with DocumentProcessor(refused):
                    pass
        for url in (f"http://u:s3cr3t@127.0.0.1:{chroma.port}", f"{chroma.url}/chroma"):
            with pytest.raises(ConfigurationError, match="chroma_headers") as info:
                async with DocumentProcessor(settings(tmp_path, chroma_url=url)):
                    pass
            assert "s3cr3t" not in str(info.value)
    finally:
        proxy.close()
        chroma.stop()


class FlakyCollection:
    """A Chroma collection that fails its first ``failures`` calls with ``error``."""

    def __init__(self, error: BaseException, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0
        self.rows: dict[str, str] = {}

    def get(self, **_: Any) -> dict[str, Any]:
        return {"ids": [], "documents": [], "embeddings": None, "metadatas": []}

    def upsert(self, *, ids: list[str], documents: list[str], **_: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.rows.update(zip(ids, documents, strict=True))


def flaky_store(error: BaseException, failures: int) -> tuple[ChunkStore, FlakyCollection]:
    from langchain_core.vectorstores import InMemoryVectorStore

    from rag_ingest.models import HashEmbeddings

    collection = FlakyCollection(error, failures)
    store = ChunkStore(InMemoryVectorStore(HashEmbeddings()), collection=collection, max_attempts=3)
    return store, collection


def test_transient_store_failures_are_retried_and_bad_requests_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chromadb.errors import InternalError, InvalidArgumentError, RateLimitError
    from tenacity import wait_none

    monkeypatch.setattr("rag_ingest.store.model_call_policy", _no_wait(wait_none()))
    for error in (
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("quiet"),
        httpx.RemoteProtocolError("reset"),
        InternalError("compaction"),
        RateLimitError("slow down"),
    ):
        assert store_transient(error)
        store, collection = flaky_store(error, 2)
        store.upsert(["a"], ["text"], [{"session_id": "s"}], [[0.0]])
        assert collection.calls == 3 and collection.rows == {"a": "text"}

    assert not store_transient(InvalidArgumentError("bad where"))
    store, collection = flaky_store(InvalidArgumentError("bad"), 5)
    with pytest.raises(StoreError, match="InvalidArgumentError"):
        store.upsert(["a"], ["text"], [{"session_id": "s"}], [[0.0]])
    assert collection.calls == 1

    store, collection = flaky_store(httpx.ConnectError("refused"), 5)
    with pytest.raises(StoreError, match="ConnectError"):
        store.upsert(["a"], ["text"], [{"session_id": "s"}], [[0.0]])
    assert collection.calls == 3  # max_attempts, then the error


def _no_wait(wait: Any) -> Any:
    from rag_ingest.models import model_call_policy

    return lambda attempts: model_call_policy(attempts) | {"wait": wait}


async def test_each_collection_keeps_its_own_ledger(tmp_path: Path) -> None:
    # `--collection trial` over the same directory: before, the one ledger said
    # "unchanged" and the new collection stayed empty.
    paths = docs(tmp_path, 2)
    async with DocumentProcessor(settings(tmp_path)) as p:
        assert {r.status for r in (await p.process_many(paths, session_id="s")).results} == {
            "ingested"
        }
    async with DocumentProcessor(settings(tmp_path, collection="trial")) as p:
        trial = await p.process_many(paths, session_id="s")
        assert [r.status for r in trial.results] == ["ingested"] * 2
        assert (await p.query("CANARY1", session_id="s", k=1))[0][0].metadata["filename"]
        assert await p.delete_session("s") == 2
    async with DocumentProcessor(settings(tmp_path)) as p:
        # The first collection's record and chunks are untouched by the other's delete.
        again = await p.process_many(paths, session_id="s")
        assert [r.status for r in again.results] == ["skipped"] * 2
        assert len(await p.query("canary", session_id="s", k=5)) == 2


async def test_a_store_that_lost_its_chunks_gets_them_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    paths = docs(tmp_path, 3)
    async with DocumentProcessor(settings(tmp_path)) as p:
        await p.process_many(paths, session_id="s")
    shutil.rmtree(tmp_path / "store" / "chroma")  # a reset server, a wiped directory
    async with DocumentProcessor(settings(tmp_path)) as p:
        again = await p.process_many(paths, session_id="s")
        assert [r.status for r in again.results] == ["ingested"] * 3
        assert len(await p.query("canary", session_id="s", k=5)) == 3
    assert "the store holds 0 chunks and the ledger records 3" in caplog.text
    async with DocumentProcessor(settings(tmp_path)) as p:
        assert p._confirm_skips is False  # in step again: skips cost no store reads
        third = await p.process_many(paths, session_id="s")
        assert [r.status for r in third.results] == ["skipped"] * 3


async def test_a_nearly_full_store_disk_stops_writes_until_there_is_room(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    """Filled to the last byte, Chroma failed writes with "database or disk is full" and
    then stopped answering: every later call timed out (120 s, four attempts), a 3,000-file
    run did not end. The ledger failed with a bare sqlite3 OperationalError. Now writes
    stop at store.min_free_mb, fail fast and typed, and the next run with room finishes."""
    disk = small_disk(100 * 2**20)
    config = settings(tmp_path, persist_dir=str(disk / "store"), min_free_mb=40)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = docs(tmp_path / "a", 3), docs(tmp_path / "b", 3)
    async with DocumentProcessor(config) as p:
        assert (await p.process_many(first, session_id="s")).count("ingested") == 3
        filler = disk / "filler"
        room = shutil.disk_usage(disk).free - 30 * 2**20
        subprocess.run(["fallocate", "-l", str(room), str(filler)], check=True)
        started = time.monotonic()
        report = await p.process_many(second, session_id="s")
        assert time.monotonic() - started < 30
        assert [r.error_type for r in report.results] == ["StoreError"] * 3
        assert "under store.min_free_mb=40" in (report.results[0].message or "")
        filler.unlink()
        again = await p.process_many(second, session_id="s")
        assert again.count("ingested") == 3
        check = await p.verify_session("s")
    assert check.consistent and check.sources == 6 and check.stored == check.recorded == 6


def test_a_ledger_write_on_a_full_disk_is_a_store_error(
    small_disk: Callable[[int], Path],
) -> None:
    """Raw, each document failed with "OperationalError: database or disk is full" and a
    logged traceback, naming neither the ledger nor the remedy."""
    disk = small_disk(4 * 2**20)
    ledger = Ledger(disk / "ledger.sqlite3")
    try:
        subprocess.run(["fallocate", "-l", str(shutil.disk_usage(disk).free), str(disk / "x")])
        with pytest.raises(StoreError) as refused:
            for i in range(1000):  # past the pages SQLite already holds on disk
                ledger.record(
                    session_id="s",
                    source=f"file:///d{i}.md",
                    version="v",
                    size=1,
                    status="ingested",
                    chunk_ids=[f"{i:064d}"] * 20,
                    fingerprint="f",
                )
        message = str(refused.value)
        assert f"the ledger {disk / 'ledger.sqlite3'}" in message
        assert "database or disk is full" in message
        assert "set store.persist_dir to a disk with room" in message
    finally:
        ledger.close()
