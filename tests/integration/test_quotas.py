"""Per-session quotas: documents, chunks and bytes a session may hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from tests.conftest import IN_PROCESS_STORE

pytestmark = pytest.mark.integration


@pytest.fixture(params=["own ledger", "shared ledger"], autouse=True)
def ledger_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test with the processor's own ledger, and again as if other processes
    shared it (a Chroma server's workers): quotas are then held on the ledger's claims
    (``Ledger.reserve``), not counted in the process."""
    if request.param == "shared ledger":
        start = DocumentProcessor._start

        async def sharing(self: DocumentProcessor) -> None:
            await start(self)
            self._shares_ledger = True

        monkeypatch.setattr(DocumentProcessor, "_start", sharing)


def settings(tmp_path: Path, **pipeline: int) -> Settings:
    """Hash embeddings, parsing in a thread, local files."""
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
            "pipeline": pipeline,
        }
    )


def counting_parses(p: DocumentProcessor) -> list[str]:
    """The names of the files ``p``'s parser pool is given from now on."""
    assert p._pool is not None
    parse = p._pool.parse_and_chunk
    parsed: list[str] = []

    async def counted(path: str, name: str, *args: object, **kwargs: object) -> object:
        parsed.append(name)
        return await parse(path, name, *args, **kwargs)  # type: ignore[arg-type]

    p._pool.parse_and_chunk = counted  # type: ignore[method-assign]
    return parsed


def notes(tmp_path: Path, count: int, paragraphs: int = 1, name: str = "note") -> list[str]:
    """``count`` text files of ``paragraphs`` paragraphs (3 chunks each, measured)."""
    paths = []
    for n in range(count):
        path = tmp_path / f"{name}{n}.txt"
        text = "\n\n".join(
            f"Note {n} part {p}: " + " ".join(f"word{n}x{p}x{w}" for w in range(200))
            for p in range(paragraphs)
        )
        path.write_text(text)
        paths.append(str(path))
    return paths


async def test_documents_past_the_quota_fail_the_rest_are_kept(tmp_path: Path) -> None:
    files = notes(tmp_path, 8)
    async with DocumentProcessor(settings(tmp_path, session_max_documents=5)) as p:
        # Eight at once: the check counts the documents in flight, so exactly five fit.
        report = await p.process_many(files, session_id="team")
        statuses = sorted(r.status for r in report.results)
        assert statuses == ["failed"] * 3 + ["ingested"] * 5
        refused = [r for r in report.results if r.status == "failed"]
        assert {r.error_type for r in refused} == {"QuotaExceededError"}
        assert "session 'team' is full" in refused[0].message
        assert "of its 5 (pipeline.session_max_documents)" in refused[0].message
        assert p.ledger is not None
        size = Path(files[0]).stat().st_size  # each note's: their names differ by a digit
        assert p.ledger.usage("team", besides="") == (5, 15, 5 * size)

        # The session now full, a new document is refused before it is read or parsed.
        parsed = counting_parses(p)
        (late,) = notes(tmp_path, 1, name="late")
        refused_early = await p.process_document(late, session_id="team")
        assert refused_early.error_type == "QuotaExceededError" and parsed == []
        assert "parse_chunk" not in refused_early.seconds

        # Another session has a quota of its own.
        other = await p.process_many(files[:2], session_id="other")
        assert [r.status for r in other.results] == ["ingested"] * 2

        # A source the session holds, re-ingested after a change, replaces itself.
        kept = next(r.source for r in report.results if r.status == "ingested")
        changed = Path(kept.removeprefix("file://"))
        changed.write_text(changed.read_text() + "\n\nAn added paragraph.")
        again = await p.process_document(str(changed), session_id="team")
        assert again.status == "ingested"

        # Room made by a delete is room again: the refused are retried and fit.
        await p.delete_session("team")
        retried = await p.process_many(files, session_id="team")
        assert sorted(r.status for r in retried.results).count("ingested") == 5


async def test_a_document_written_is_counted_once_till_its_ingest_ends(tmp_path: Path) -> None:
    """A count made between a document's write and the end of its ingest took it twice,
    by its row and by its hold, and refused one that fit (in CI, once: 4 of 5)."""
    first, second = notes(tmp_path, 2)
    async with DocumentProcessor(settings(tmp_path, session_max_documents=2)) as p:
        store, written = p._store, asyncio.Event()

        async def slow_to_end(job: Any, *args: Any) -> None:
            await store(job, *args)
            if job.result.source.endswith("/note0.txt"):
                written.set()
                await asyncio.sleep(1.0)

        p._store = slow_to_end  # type: ignore[method-assign]
        one = asyncio.ensure_future(p.process_document(first, session_id="s"))
        await written.wait()
        other = await p.process_document(second, session_id="s")
        assert other.status == "ingested", other.message
        assert (await one).status == "ingested"


async def test_chunks_past_the_quota_fail_before_any_embedding(tmp_path: Path) -> None:
    (small,) = notes(tmp_path, 1, paragraphs=1, name="small")
    (large,) = notes(tmp_path, 1, paragraphs=3, name="large")
    async with DocumentProcessor(settings(tmp_path, session_max_chunks=10)) as p:
        first = await p.process_document(small, session_id="s")
        assert (first.status, first.total_chunks) == ("ingested", 3)
        calls = 0
        assert p._runner is not None
        embed = p._runner.embed

        async def counted(texts: list[str], *args: object) -> object:
            nonlocal calls
            calls += 1
            return await embed(texts, *args)  # type: ignore[arg-type]

        p._runner.embed = counted  # type: ignore[method-assign]
        second = await p.process_document(large, session_id="s")
        assert second.status == "failed" and second.error_type == "QuotaExceededError"
        assert "it holds 3 chunks (in flight included) of its 10" in second.message
        assert "this document has 9" in second.message
        assert calls == 0  # refused before it was embedded
        # The same document again, in its own session's place, still fits: it replaces
        # its own chunks rather than adding to them.
        again = await p.process_document(small, session_id="s")
        assert again.status in ("ingested", "skipped")


async def test_bytes_past_the_quota_fail_before_they_are_read(tmp_path: Path) -> None:
    files = notes(tmp_path, 6)
    size = Path(files[0]).stat().st_size  # each note's: their names differ by a digit
    quota = 3 * size + size // 2
    async with DocumentProcessor(settings(tmp_path, session_max_bytes=quota)) as p:
        # Six at once: the check counts the bytes in flight, so exactly three fit.
        report = await p.process_many(files, session_id="team")
        assert sorted(r.status for r in report.results) == ["failed"] * 3 + ["ingested"] * 3
        refused = [r for r in report.results if r.status == "failed"]
        assert {r.error_type for r in refused} == {"QuotaExceededError"}
        assert (
            f"it holds {3 * size} bytes of documents (in flight included) of its {quota} "
            f"(pipeline.session_max_bytes), and this document has {size}"
        ) in refused[0].message
        assert p.ledger is not None and p.ledger.usage("team", besides="") == (3, 9, 3 * size)

        # One more that its size would take past the quota is refused unread.
        parsed = counting_parses(p)
        (late,) = notes(tmp_path, 1, name="late")
        refused_early = await p.process_document(late, session_id="team")
        assert refused_early.error_type == "QuotaExceededError" and parsed == []
        assert "parse_chunk" not in refused_early.seconds

        # A source it holds, grown by less than the room left, replaces its own bytes.
        kept = Path(next(r.source for r in report.results if r.success).removeprefix("file://"))
        kept.write_text(kept.read_text() + " An added sentence.")
        again = await p.process_document(str(kept), session_id="team")
        assert again.status == "ingested" and parsed == [kept.name]
        # A document larger than the whole quota, in a session of its own: refused unread.
        (whole,) = notes(tmp_path, 1, paragraphs=4, name="whole")
        too_big = await p.process_document(whole, session_id="empty")
        assert too_big.error_type == "QuotaExceededError" and parsed == [kept.name]
        assert "it holds 0 bytes" in too_big.message


async def test_no_quota_counts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with DocumentProcessor(settings(tmp_path)) as p:
        assert p.ledger is not None

        def usage(*args: object) -> None:
            pytest.fail("read a session's usage with no quota set")

        monkeypatch.setattr(p.ledger, "usage", usage)
        report = await p.process_many(notes(tmp_path, 3), session_id="s")
        assert [r.status for r in report.results] == ["ingested"] * 3
