"""The batch writer: group commit across documents, per-document failure, no idle wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rag_ingest.store import ChunkStore, Ledger
from rag_ingest.writer import BatchWriter, ChunkWrite


@pytest.fixture(autouse=True)
def _ledgers_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Ledger a test opens is closed after it: Python 3.13 warns of an unclosed
    SQLite connection when it is collected, in whichever test that happens to be."""
    made: list[Ledger] = []

    class Closed(Ledger):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            made.append(self)

    monkeypatch.setitem(globals(), "Ledger", Closed)
    yield
    for ledger in made:
        ledger.close()


class FakeStore:
    """Records upsert calls; refuses any chunk whose text contains 'POISON'."""

    computes_own_vectors = False
    max_batch = 1000

    def __init__(self) -> None:
        self.upserts: list[list[str]] = []
        self.rows: dict[str, str] = {}
        self.deleted: list[str] = []

    def upsert(
        self, ids: list[str], texts: list[str], metadatas: Any, vectors: Any, **_: Any
    ) -> None:
        assert vectors is not None and len(vectors) == len(ids) == len(texts)
        if any("POISON" in t for t in texts):
            raise ValueError("bad chunk")
        self.upserts.append(list(ids))
        self.rows.update(zip(ids, texts, strict=True))

    def delete(self, ids: list[str]) -> None:
        self.deleted += ids
        for i in ids:
            self.rows.pop(i, None)


def chunks(source: str, *texts: str, session: str = "s") -> ChunkWrite:
    ids = [f"{source}#{i}-{t}" for i, t in enumerate(texts)]
    return ChunkWrite(
        session_id=session,
        source=source,
        version="v1",
        size=1,
        fingerprint="f",
        ids=ids,
        texts=list(texts),
        metadatas=[{} for _ in texts],
        vectors=[[0.0] for _ in texts],
    )


def make(tmp_path: Path, store: FakeStore, approaching: list[int], **kw: Any) -> BatchWriter:
    async def in_thread(fn: Any) -> Any:
        return await asyncio.to_thread(fn)

    options = {"max_docs": 32, "max_chunks": 1000, "linger": 5.0} | kw
    return BatchWriter(
        cast(ChunkStore, store),
        Ledger(tmp_path / "ledger.sqlite3"),
        in_thread,
        approaching=lambda: approaching[0],
        **options,
    )


async def test_documents_on_their_way_are_written_in_one_call(tmp_path: Path) -> None:
    store = FakeStore()
    approaching = [5]
    writer = make(tmp_path, store, approaching)

    async def arrive(i: int) -> tuple[float, float]:
        await asyncio.sleep(0.02 * i)
        approaching[0] -= 1
        return await writer.write(chunks(f"doc{i}", "a", "b"))

    await asyncio.gather(*(arrive(i) for i in range(5)))
    await writer.aclose()
    assert list(writer.batches) == [5] and len(store.upserts) == 1
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    for i in range(5):
        row = ledger.get("s", f"doc{i}")
        assert row is not None and row.status == "ingested" and len(row.chunk_ids) == 2
        assert ledger.pending("s", f"doc{i}") == set()


async def test_a_lone_document_is_written_at_once(tmp_path: Path) -> None:
    store = FakeStore()
    writer = make(tmp_path, store, [0], linger=30.0)
    started = time.monotonic()
    waited, _ = await writer.write(chunks("solo", "a"))
    await writer.aclose()
    assert time.monotonic() - started < 5.0 and waited < 5.0
    assert list(writer.batches) == [1]


async def test_the_batch_is_cut_at_max_docs_and_max_chunks(tmp_path: Path) -> None:
    store = FakeStore()
    approaching = [0]
    writer = make(tmp_path, store, approaching, max_docs=2, max_chunks=3, linger=0.0)
    # Queue everything before the writer runs: it must split by both limits.
    writes = [chunks("a", "1"), chunks("b", "1"), chunks("c", "1", "2"), chunks("d", "1", "2")]
    await asyncio.gather(*(writer.write(w) for w in writes))
    await writer.aclose()
    assert list(writer.batches) == [2, 1, 1]  # a+b (max_docs), c, d (c+d is over max_chunks)
    assert all(len(ids) <= 3 for ids in store.upserts)
    assert len(store.rows) == 6


async def test_one_bad_document_fails_alone(tmp_path: Path) -> None:
    store = FakeStore()
    approaching = [3]
    writer = make(tmp_path, store, approaching)

    async def arrive(w: ChunkWrite) -> Any:
        approaching[0] -= 1
        return await writer.write(w)

    results = await asyncio.gather(
        arrive(chunks("good1", "x")),
        arrive(chunks("bad", "POISON")),
        arrive(chunks("good2", "y")),
        return_exceptions=True,
    )
    await writer.aclose()
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    good1, bad = ledger.get("s", "good1"), ledger.get("s", "bad")
    assert good1 is not None and good1.status == "ingested"
    assert bad is None  # never recorded as ingested
    assert set(store.rows) == {"good1#0-x", "good2#0-y"}


async def test_a_changed_document_loses_its_old_chunks(tmp_path: Path) -> None:
    store = FakeStore()
    writer = make(tmp_path, store, [0])
    await writer.write(chunks("doc", "old1", "old2"))
    await writer.write(chunks("doc", "new"))
    await writer.aclose()
    assert set(store.rows) == {"doc#0-new"}
    assert sorted(store.deleted) == ["doc#0-old1", "doc#1-old2"]


async def test_closing_fails_what_is_still_queued(tmp_path: Path) -> None:
    store = FakeStore()
    approaching = [2]  # the writer lingers for a document that never comes
    writer = make(tmp_path, store, approaching)
    approaching[0] -= 1
    task = asyncio.ensure_future(writer.write(chunks("waiting", "a")))
    await asyncio.sleep(0.05)
    await writer.aclose()
    with pytest.raises((RuntimeError, asyncio.CancelledError)):
        await task


async def test_settle_drops_a_sessions_queued_writes_and_waits_for_its_batch(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def slow_thread(fn: Any) -> Any:
        result = await asyncio.to_thread(fn)
        await release.wait()  # the commit is done but not yet reported
        return result

    writer = BatchWriter(
        cast(ChunkStore, store),
        Ledger(tmp_path / "ledger.sqlite3"),
        slow_thread,
        max_docs=1,
        max_chunks=100,
        linger=0.0,
        approaching=lambda: 0,
    )
    first = asyncio.ensure_future(writer.write(chunks("a1", "x", session="a")))
    await asyncio.sleep(0.2)  # a1 is being committed
    queued_a = asyncio.ensure_future(writer.write(chunks("a2", "y", session="a")))
    queued_b = asyncio.ensure_future(writer.write(chunks("b1", "z", session="b")))
    await asyncio.sleep(0)
    settling = asyncio.ensure_future(writer.settle("a"))
    await asyncio.sleep(0.2)
    assert not settling.done()  # a1's batch still holds session a
    loop.call_later(0.1, release.set)
    await asyncio.wait_for(settling, 5)
    await asyncio.wait_for(asyncio.gather(first, queued_b), 5)
    assert queued_a.cancelled()
    await writer.aclose()
    assert set(store.rows) == {"a1#0-x", "b1#0-z"}


async def test_a_store_that_is_down_fails_the_batch_without_a_write_per_document(
    tmp_path: Path,
) -> None:
    import httpx

    from rag_ingest.errors import StoreError

    class DownStore(FakeStore):
        def upsert(
            self, ids: list[str], texts: list[str], metadatas: Any, vectors: Any, **_: Any
        ) -> None:
            self.upserts.append(list(ids))
            try:
                raise httpx.ConnectError("refused")  # what is left after the store's retries
            except httpx.ConnectError as exc:
                raise StoreError("vector store write failed") from exc

    store = DownStore()
    approaching = [4]
    writer = make(tmp_path, store, approaching)

    async def arrive(i: int) -> Any:
        approaching[0] -= 1
        return await writer.write(chunks(f"doc{i}", "x"))

    results = await asyncio.gather(*(arrive(i) for i in range(4)), return_exceptions=True)
    await writer.aclose()
    assert all(isinstance(r, StoreError) for r in results)
    # One batch write, retried inside the store already; not one more per document.
    assert len(store.upserts) == 1 and len(store.upserts[0]) == 4


async def test_a_source_keeps_the_answers_its_last_ingest_used_and_loses_them_with_it(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    writer = make(tmp_path, store, [0])
    ledger = writer._ledger
    for session, source, key in [
        ("s", "a", "summary-v1"),
        ("s", "a", "logo"),
        ("s", "b", "logo"),
        ("t", "a", "summary-v1"),
    ]:
        ledger.keep_answer(session, source, key, f'{{"text": "{key}"}}')
    ledger.keep_answer("s", "c", "logo", '{"text": "the same logo, told otherwise"}')
    assert ledger.answer("logo", "s", "c") == ('{"text": "the same logo, told otherwise"}', True)
    assert ledger.answer("logo", "s", "b") == ('{"text": "logo"}', True)
    elsewhere = ledger.answer("logo", "t", "a")  # another source's
    assert elsewhere is not None and elsewhere[1] is False
    assert ledger.answer("none", "s", "a") is None
    ledger.delete_source("s", "c")

    # A failed attempt keeps what it paid for; a landed one keeps only what it used.
    ledger.record_failure_keeping_chunks(session_id="s", source="a", error_type="E", message="m")
    write = chunks("a", "x")
    write.answers = ["logo"]
    await writer.write(write)
    await writer.aclose()

    def kept() -> set[tuple[str, str, str]]:
        rows = ledger._db.execute("SELECT session_id, source, key FROM answers").fetchall()
        return {tuple(r) for r in rows}

    assert kept() == {("s", "a", "logo"), ("s", "b", "logo"), ("t", "a", "summary-v1")}
    ledger.delete_source("s", "a")
    assert kept() == {("s", "b", "logo"), ("t", "a", "summary-v1")}
    ledger.delete_session("t")
    assert kept() == {("s", "b", "logo")}


async def test_what_a_source_s_model_calls_cost_adds_up_and_goes_with_it(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    writer = make(tmp_path, store, [0])
    ledger = writer._ledger
    # A failed attempt's cost is kept with its failure; a landed one's adds to it.
    paid = {"embedded_chunks": 4, "embedded_tokens": 400, "embedding_failed_calls": 1}
    ledger.record_failure_keeping_chunks(
        session_id="s", source="a", error_type="E", message="m", model_use=paid
    )
    write = chunks("a", "x")
    write.usage = {"embedded_chunks": 2, "embedded_tokens": 200, "summary_calls": 1}
    await writer.write(write)
    other = chunks("b", "y")
    other.usage = {"embedded_chunks": 1, "embedded_tokens": 50, "image_calls": 0}
    await writer.write(other)
    await writer.aclose()
    ledger.record(
        session_id="t", source="a", version="1", size=1, status="ingested",
        chunk_ids=[], fingerprint=None, model_use={"summary_calls": 3},
    )  # fmt: skip

    assert ledger.model_use("s", "a") == {
        "embedded_chunks": 6,
        "embedded_tokens": 600,
        "embedding_failed_calls": 1,
        "summary_calls": 1,
    }
    whole = {"embedded_chunks": 7, "embedded_tokens": 650, "embedding_failed_calls": 1}
    assert ledger.model_use("s") == {**whole, "summary_calls": 1}
    listed = {info.session_id: info.usage for info in ledger.sessions()}
    assert listed == {"s": {**whole, "summary_calls": 1}, "t": {"summary_calls": 3}}
    # Gone with its source, or its session.
    ledger.delete_source("s", "a")
    assert ledger.model_use("s") == {"embedded_chunks": 1, "embedded_tokens": 50}
    ledger.delete_session("s")
    assert ledger.model_use("s") == {} and ledger.model_use("t") == {"summary_calls": 3}
    # A document stopped before its first row leaves its cost alone: still listed.
    ledger.add_model_use(session_id="u", source="c", model_use={"summary_calls": 2})
    ledger.keep_answer("v", "d", "key", "An answer.")
    ledger.keep_vectors("w", "e", ["hash"], [[0.5, 0.5]])
    listed_now = {info.session_id: info for info in ledger.sessions()}
    assert set(listed_now) == {"t", "u", "v", "w"} and listed_now["u"].sources == 0
    assert listed_now["u"].usage == {"summary_calls": 2} and listed_now["v"].usage == {}
    # Each when it was written, not "unknown" (the epoch, a ledger older than that).
    assert all(info.last_ingested.year > 1970 for info in listed_now.values())
    for session in "uvw":
        ledger.delete_session(session)
    assert [info.session_id for info in ledger.sessions()] == ["t"]
    assert ledger._db.execute("SELECT session_id FROM activity").fetchall() == [("t",)]
