"""Processors sharing one ledger (a caller's store, or a Chroma server, with one
persist_dir) claim a source before ingesting it: the others wait, then skip it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest.ledger import SESSION_CLAIM, Ledger, _this_host, claim_owner
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from rag_ingest.testing import SeaweedS3

pytestmark = pytest.mark.integration


class CountingEmbeddings(HashEmbeddings):
    """Hash vectors; counts the texts embedded, and takes ``delay`` seconds a call."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.texts = 0
        self.delay = delay
        self._count = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._count:
            self.texts += len(texts)
        time.sleep(self.delay)
        return super().embed_documents(texts)


def settings_for(tmp_path: Path, **pipeline: object) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "parse": {"mode": "thread", "workers": 1},
            "chunk": {"chunk_tokens": 64, "overlap_tokens": 0},
            "pipeline": pipeline,
        }
    )


def write_docs(tmp_path: Path, n: int) -> list[Path]:
    docs = []
    for i in range(n):
        doc = tmp_path / f"doc{i}.md"
        doc.write_text(f"# Doc {i}\n\n" + f"Document {i} says CANARY{i}. " * 80)
        docs.append(doc)
    return docs


async def test_two_processors_on_one_ledger_ingest_each_source_once(tmp_path: Path) -> None:
    docs = write_docs(tmp_path, 6)
    embeddings = CountingEmbeddings()
    store = InMemoryVectorStore(embedding=embeddings)
    settings = settings_for(tmp_path)
    async with (
        DocumentProcessor(settings, vectorstore=store) as a,
        DocumentProcessor(settings, vectorstore=store) as b,
    ):
        first, second = await asyncio.gather(
            a.process_many(docs, session_id="s"), b.process_many(docs, session_id="s")
        )
    theirs = {r.source: r for r in second.results}
    for one in first.results:
        other = theirs[one.source]
        assert {one.status, other.status} == {"ingested", "skipped"}, one.source
        assert one.total_chunks == other.total_chunks > 1
    chunks = sum(r.total_chunks for r in first.results)
    assert embeddings.texts == chunks == len(store.store)  # each chunk embedded once


async def test_a_claim_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """A claim whose holder stops renewing it (a process stalled, or gone on another
    host) is waited out, then taken over."""
    doc = write_docs(tmp_path, 1)[0]
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        other = Ledger(p.ledger.path)
        assert other.claim("s", doc.as_uri(), claim_owner(), ttl=2.0) is None
        result = await p.process_document(doc, session_id="s")
    assert result.status == "ingested"
    assert 1.0 <= result.seconds["claim_wait"] < 5.0


async def test_an_unchanged_listed_object_is_skipped_without_a_claim(
    seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each unchanged object of a re-run was claimed and let go, two ledger writes, half
    the re-run's CPU: the ledger is read alone. A changed object is claimed, and a
    session another process holds whole (deleting it) is waited for, as before."""
    client = seaweed.client()
    bucket = f"claims-{time.time_ns()}"
    client.create_bucket(Bucket=bucket)
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"docs/d{i}.md", Body=f"# D{i}\n\nText {i}.".encode())
    settings = settings_for(tmp_path).model_copy(
        update={"s3": Settings.model_validate({"s3": seaweed.settings_dict()}).s3}
    )
    claimed: list[str] = []
    claim = Ledger.claim

    def counted(self: Ledger, session: str, source: str, *args: object) -> str | None:
        claimed.append(source)
        return claim(self, session, source, *args)  # type: ignore[arg-type]

    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        prefix = f"s3://{bucket}/docs/"
        assert (await p.process_many(prefix, session_id="s")).count("ingested") == 3
        monkeypatch.setattr(Ledger, "claim", counted)
        client.put_object(Bucket=bucket, Key="docs/d1.md", Body=b"# D1\n\nChanged.")
        again = await p.process_many(prefix, session_id="s")
        assert sorted((r.source, r.status) for r in again.results) == [
            (f"{prefix}d0.md", "skipped"),
            (f"{prefix}d1.md", "ingested"),
            (f"{prefix}d2.md", "skipped"),
        ]
        assert claimed == [f"{prefix}d1.md"]

        deleting = Ledger(p.ledger.path)
        assert deleting.claim("s", SESSION_CLAIM, claim_owner(), 1.5) is None
        claimed.clear()
        started = time.perf_counter()
        held = await p.process_many(prefix, session_id="s")
        assert held.count("skipped") == 3 and len(claimed) >= 3  # waited, under claims
        assert time.perf_counter() - started >= 1.0


async def test_a_claim_of_a_process_killed_outright_is_not_waited_for(tmp_path: Path) -> None:
    doc = write_docs(tmp_path, 1)[0]
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        owner = f"{_this_host()}:{killed.pid}:0badc0de"
        assert Ledger(p.ledger.path).claim("s", doc.as_uri(), owner) is None  # for 60 s
        killed.kill()
        killed.wait()
        result = await p.process_document(doc, session_id="s")
    assert result.status == "ingested" and "claim_wait" not in result.seconds


async def test_a_processor_starting_drops_claims_that_hold_nothing(tmp_path: Path) -> None:
    """A backend whose workers are killed now and then kept each one's claims."""
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        path = p.ledger.path
    ledger = Ledger(path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          text=True, capture_output=True, check=True)  # fmt: skip
    assert ledger.claim("s", "a", f"{_this_host()}:{int(gone.stdout)}:0badc0de") is None
    assert ledger.claim("s", "b", claim_owner()) is None
    async with DocumentProcessor(settings, vectorstore=store):
        rows = ledger._db.execute("SELECT source FROM claims").fetchall()
    assert rows == [("b",)]


async def test_a_long_document_keeps_its_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DocumentProcessor, "_claim_ttl", 0.6)  # renewed every 0.2 s
    doc = write_docs(tmp_path, 1)[0]
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=CountingEmbeddings(delay=2.0))
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        other, rival = Ledger(p.ledger.path), claim_owner()
        task = asyncio.ensure_future(p.process_document(doc, session_id="s"))
        await asyncio.sleep(1.5)  # embedding: its claim 0.6 s long, 1.5 s ago
        assert other.claim("s", doc.as_uri(), rival) == p._owner
        result = await task
        assert result.status == "ingested"
        assert other.claim("s", doc.as_uri(), rival) is None  # released when done


async def test_a_session_deleted_while_another_processor_ingests_it_stays_deleted(
    tmp_path: Path,
) -> None:
    """The delete waits for the document the other processor has in hand, so its chunks
    do not land after the delete; a document of the session given to the other while the
    delete runs waits for it."""
    slow, later = write_docs(tmp_path, 2)
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=CountingEmbeddings(delay=1.5))
    async with (
        DocumentProcessor(settings, vectorstore=store) as ingester,
        DocumentProcessor(settings, vectorstore=store) as deleter,
    ):
        first = asyncio.ensure_future(ingester.process_document(slow, session_id="s"))
        await asyncio.sleep(0.5)  # embedding
        deleting = asyncio.ensure_future(deleter.delete_session("s"))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(ingester.process_document(later, session_id="s"))
        removed = await deleting
        assert (await first).status == "ingested"  # done before the delete went on
        assert removed == (await first).total_chunks > 0
        result = await second
        assert result.status == "ingested" and result.seconds["claim_wait"] > 0.5
        assert {row["metadata"]["filename"] for row in store.store.values()} == {later.name}
        assert [r.source for r in await deleter._in_store(deleter.ledger.session_rows, "s")] == [
            later.as_uri()
        ]


async def test_a_source_another_process_is_ingesting_is_not_pruned_under_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    kept, gone = write_docs(folder, 2)
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        await p.process_many(folder, session_id="s")
        gone.unlink()
        # Another process has it in hand (named again, say) for 1.5 s more.
        Ledger(p.ledger.path).claim("s", gone.as_uri(), claim_owner(), ttl=1.5)
        started = time.perf_counter()
        report = await p.process_many(folder, session_id="s", prune=True)
        waited = time.perf_counter() - started
    assert report.pruned == [gone.as_uri()]
    assert waited >= 1.0
    assert {row["metadata"]["filename"] for row in store.store.values()} == {kept.name}


async def test_a_session_quota_holds_across_processors_sharing_a_ledger(tmp_path: Path) -> None:
    """Room for one document, two processors given one each at once: one is refused.
    Each had counted only its own documents in flight, and both were ingested."""
    first, second = write_docs(tmp_path, 2)
    settings = settings_for(tmp_path, session_max_documents=1)
    store = InMemoryVectorStore(embedding=CountingEmbeddings(delay=1.0))
    async with (
        DocumentProcessor(settings, vectorstore=store) as a,
        DocumentProcessor(settings, vectorstore=store) as b,
    ):
        results = await asyncio.gather(
            a.process_document(first, session_id="s"), b.process_document(second, session_id="s")
        )
    assert sorted(r.status for r in results) == ["failed", "ingested"]
    refused = next(r for r in results if r.status == "failed")
    assert refused.error_type == "QuotaExceededError"
    assert "1 documents (in flight included) of its 1" in (refused.message or "")
    assert len({row["metadata"]["filename"] for row in store.store.values()}) == 1


async def test_a_document_cancelled_while_claiming_leaves_no_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled as its claim was being written (the thread goes on and takes it): the
    claim is let go, not left for the other processes to wait out for a minute."""
    doc = write_docs(tmp_path, 1)[0]
    claim = Ledger.claim
    taking = threading.Event()

    def slow_claim(self: Ledger, *args: object, **kwargs: object) -> str | None:
        got = claim(self, *args, **kwargs)  # type: ignore[arg-type]
        taking.set()
        time.sleep(0.5)
        return got

    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings, vectorstore=store) as p:
        assert p.ledger is not None
        other = Ledger(p.ledger.path)
        monkeypatch.setattr(Ledger, "claim", slow_claim)
        task = asyncio.ensure_future(p.process_document(doc, session_id="s"))
        await asyncio.to_thread(taking.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        monkeypatch.setattr(Ledger, "claim", claim)
        assert other.claim("s", doc.as_uri(), claim_owner()) is None


def test_a_processor_made_before_a_fork_claims_as_the_forked_process(tmp_path: Path) -> None:
    """gunicorn --preload: the app (and its processor) made once, each worker forked
    from it and starting the processor in its lifespan: each claims under its own PID."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from langchain_core.vectorstores import InMemoryVectorStore
        from rag_ingest.models import HashEmbeddings
        from rag_ingest.pipeline import DocumentProcessor
        from rag_ingest.settings import Settings

        settings = Settings.model_validate({{
            "progress": False, "store": {{"persist_dir": {str(tmp_path / "store")!r}}},
            "parse": {{"mode": "thread", "workers": 1}},
        }})
        processor = DocumentProcessor(
            settings, vectorstore=InMemoryVectorStore(embedding=HashEmbeddings())
        )

        async def owner():
            async with processor:
                return processor._owner

        child = os.fork()
        if child == 0:
            print("worker", os.getpid(), asyncio.run(owner()), flush=True)
            os._exit(0)
        os.waitpid(child, 0)
        print("parent", os.getpid(), processor._owner, flush=True)
        """
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    worker, parent = (line.split() for line in ran.stdout.splitlines())
    (role, worker_pid, worker_owner), (_, parent_pid, parent_owner) = worker, parent
    assert role == "worker"
    assert worker_owner.split(":")[-2] == worker_pid != parent_pid
    assert worker_owner != parent_owner


async def test_processors_given_one_listing_share_its_work(tmp_path: Path) -> None:
    """A document whose source another process holds lends its place among the run's
    documents in flight while it waits: the run goes on with sources no one holds. Each
    had waited in its place, and one processor ingested all 12 while the other waited."""
    docs = write_docs(tmp_path, 12)
    settings = settings_for(tmp_path, in_flight=2)
    store = InMemoryVectorStore(embedding=CountingEmbeddings(delay=0.2))
    async with (
        DocumentProcessor(settings, vectorstore=store) as a,
        DocumentProcessor(settings, vectorstore=store) as b,
    ):
        first, second = await asyncio.gather(
            a.process_many(docs, session_id="s"), b.process_many(docs, session_id="s")
        )
    ingested = [r.totals["ingested"] for r in (first, second)]
    assert sum(ingested) == 12 and min(ingested) >= 2, ingested
    assert all(r.status in ("ingested", "skipped") for r in first.results + second.results)
