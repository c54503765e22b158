"""What we start is stopped: servers after a failed start or a SIGKILL, connections on close."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from tests.conftest import process_alive

_START_AND_WAIT = """
import sys, time
from pathlib import Path
from rag_ingest.chroma_server import LocalChromaServer
server = LocalChromaServer(Path(sys.argv[1]))
server.start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_chroma_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    # What a Jupyter kernel restart does: SIGKILL, no cleanup. A Chroma server left
    # behind would keep writing to the store the next kernel opens.
    with subprocess.Popen(
        [sys.executable, "-c", _START_AND_WAIT, str(tmp_path / "chroma")],
        stdout=subprocess.PIPE,
        text=True,
    ) as owner:
        try:
            assert owner.stdout is not None
            chroma = int(owner.stdout.readline())
            assert process_alive(chroma)
            owner.send_signal(signal.SIGKILL)
            owner.wait(timeout=10)
            assert _gone_within(chroma, 20), "the Chroma server outlived its owner"
        finally:
            owner.kill()


async def test_a_failed_start_stops_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.model_validate(
        {"progress": False, "store": {"persist_dir": str(tmp_path)}, "models": {"embedder": "hash"}}
    )
    started: list[int] = []
    from rag_ingest import chroma_server

    real_start = chroma_server.LocalChromaServer.start

    def recording_start(self: chroma_server.LocalChromaServer, timeout: float = 60.0) -> None:
        real_start(self, timeout)
        assert self.process is not None
        started.append(self.process.pid)

    def broken_pool(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the parser pool could not start")

    monkeypatch.setattr(chroma_server.LocalChromaServer, "start", recording_start)
    monkeypatch.setattr("rag_ingest.parsers.pool.ParserPool.__init__", broken_pool)
    with pytest.raises(RuntimeError, match="parser pool"):
        async with DocumentProcessor(settings):
            pass
    assert started and _gone_within(started[0], 20)


def test_closing_the_store_closes_its_chroma_connections(tmp_path: Path) -> None:
    from rag_ingest.models import HashEmbeddings
    from rag_ingest.settings import StoreSettings
    from rag_ingest.store import ChunkStore

    store = ChunkStore.chroma(StoreSettings(persist_dir=tmp_path), HashEmbeddings())
    store.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def _docs_and_settings(
    tmp_path: Path, n: int, mode: str = "process"
) -> tuple[list[Path], Settings]:
    """``n`` small Markdown files, and settings for a processor over them (hash
    embeddings, one parser worker, a store under ``tmp_path``)."""
    docs = []
    for i in range(n):
        doc = tmp_path / f"d{i}.md"
        doc.write_text(f"# Doc {i}\n\ncanary number {i}\n")
        docs.append(doc)
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "models": {"embedder": "hash"},
            "parse": {"mode": mode, "workers": 1},
        }
    )
    return docs, settings


def test_a_closed_processor_starts_again_on_a_new_loop(tmp_path: Path) -> None:
    """A web app's module-level processor under its lifespan: each test client runs
    ``async with processor`` on a new event loop, after the last one closed it."""
    import asyncio

    docs, settings = _docs_and_settings(tmp_path, 3)
    seen: list[str] = []
    processor = DocumentProcessor(settings, on_event=lambda e: seen.append(e.stage))

    async def lifespan(i: int) -> tuple[str, int, str]:
        async with processor:
            result = await processor.process_document(docs[i], session_id="app")
            queued = await processor.submit(docs[i], session_id="app")
            hits = await processor.query("canary", session_id="app", k=10)
        return result.status, len(hits), queued.status

    for i in range(3):
        assert asyncio.run(lifespan(i)) == ("ingested", i + 1, "skipped")
    assert seen.count("done") == 6  # the callback given once serves every run


def test_a_processor_left_open_starts_again_on_the_next_loop(tmp_path: Path) -> None:
    """A script's module-level processor, never closed, used by two ``asyncio.run``
    calls: the first loop's end killed its store writer, and every document of the
    second failed with "the store writer has stopped"."""
    import asyncio

    docs, settings = _docs_and_settings(tmp_path, 3)
    processor = DocumentProcessor(settings)

    async def ingest(i: int) -> tuple[str, int]:
        result = await processor.process_document(docs[i], session_id="script")
        assert result.status == "ingested", result.message
        queued = await processor.submit(docs[i], session_id="script")
        assert queued.status == "skipped"
        return result.status, len(await processor.query("canary", session_id="script", k=9))

    def children() -> int:
        tasks = f"/proc/{os.getpid()}/task"
        found: set[str] = set()
        for task in os.listdir(tasks):
            try:
                with open(f"{tasks}/{task}/children") as listing:
                    pids = listing.read().split()
            except FileNotFoundError:
                continue  # a thread that ended since the listing (its children pass on)
            found.update(pid for pid in pids if process_alive(int(pid)))
        return len(found)

    assert asyncio.run(ingest(0)) == ("ingested", 1)
    after_first = children()
    for i in (1, 2):
        assert asyncio.run(ingest(i)) == ("ingested", i + 1)
        assert children() <= after_first  # the ended run's server and workers are gone

    async def submit_elsewhere() -> None:
        await processor.submit(docs[0], session_id="script")

    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(submit_elsewhere())
    asyncio.run(processor.aclose())


def test_a_search_from_a_thread_of_its_own_works_while_the_app_loop_runs(
    tmp_path: Path,
) -> None:
    """A LangChain tool on a worker thread runs ``asyncio.run(processor.query(...))``
    while the app's loop, which started the processor, keeps running."""
    import asyncio
    import threading

    (doc,), settings = _docs_and_settings(tmp_path, 1, mode="thread")
    processor = DocumentProcessor(settings)
    found: list[int] = []

    async def app() -> None:
        async with processor:
            await processor.process_document(doc, session_id="s")
            tool = threading.Thread(
                target=lambda: found.append(
                    len(asyncio.run(processor.query("canary", session_id="s")))
                )
            )
            tool.start()
            while tool.is_alive():
                await asyncio.sleep(0.05)
            # Ingesting goes on, on the app's loop, after the tool's loop ended.
            again = await processor.process_document(doc, session_id="s")
            assert again.status == "skipped"

    asyncio.run(app())
    assert found == [1]


async def test_start_starts_every_io_and_store_thread(tmp_path: Path) -> None:
    """Started one by one on first use, each ``Thread.start()`` waited on the event loop
    for the new thread to run (~25 ms stalls on a busy machine)."""
    import threading

    earlier = set(threading.enumerate())  # other tests' threads may end meanwhile

    def new(prefix: str) -> int:
        return sum(t.name.startswith(prefix) for t in set(threading.enumerate()) - earlier)

    _, settings = _docs_and_settings(tmp_path, 0, mode="thread")
    async with DocumentProcessor(settings) as processor:
        writers = settings.pipeline.store_writers if processor.store.concurrent_writes else 1
        assert new("rag-ingest-io") == settings.pipeline.io_threads
        assert new("rag-ingest-store") == writers
