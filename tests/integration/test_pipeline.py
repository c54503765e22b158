"""The DocumentProcessor end to end: local S3 server -> worker processes -> real Chroma."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.errors import (
    ConfigurationError,
    DiskFullError,
    QueueFullError,
    S3NotFoundError,
    SessionRequiredError,
)
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor, IngestReport
from rag_ingest.s3 import AsyncS3Client
from rag_ingest.settings import Settings
from rag_ingest.sources import Upload
from rag_ingest.testing import SeaweedS3
from tests import docs
from tests.conftest import IN_PROCESS_STORE, run_apart

pytestmark = pytest.mark.integration


class CountingEmbeddings(HashEmbeddings):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return super().embed_documents(texts)


def make_settings(seaweed: SeaweedS3, tmp_path: Path, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "s3": seaweed.settings_dict(),
        "progress": False,
        "retry": {"base_delay": 0.0},
        "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
        "models": {"embedder": "hash"},
        # Both limits, as by default (the CPU time's the lower): a test's timeout is 300 s.
        "parse": {"mode": "process", "workers": 2, "cpu_timeout": 60, "timeout": 180},
        "chunk": {"chunk_tokens": 128, "overlap_tokens": 16, "whole_document_tokens": 64},
        "temp_dir": str(tmp_path / "tmp"),
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return Settings.model_validate(data)


@pytest.fixture(scope="module")
def corpus_bucket(seaweed: SeaweedS3) -> str:
    client = seaweed.client()
    client.create_bucket(Bucket="corpus")
    for name, data in docs.corpus().items():
        client.put_object(Bucket="corpus", Key=name, Body=data)
    return "corpus"


def text_files(folder: Path, prefix: str, count: int, body: str) -> Path:
    """``count`` distinct text files ``{prefix}NN.txt`` in ``folder``."""
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"{prefix}{i:02d}.txt").write_text(f"{prefix} {i}. {body}")
    return folder


def by_name(report: IngestReport) -> dict[str, Any]:
    return {r.filename: r for r in report.results}


async def test_corpus_from_s3_into_chroma(
    seaweed: SeaweedS3, corpus_bucket: str, tmp_path: Path
) -> None:
    events: list[str] = []
    embeddings = CountingEmbeddings()
    async with DocumentProcessor(
        # Chroma served by its private child, as by default.
        make_settings(seaweed, tmp_path, store={"embedded_mode": "server"}),
        embeddings=embeddings,
        on_event=lambda e: events.append(e.stage),
    ) as p:
        report = await p.process_many(f"s3://{corpus_bucket}/", session_id="alpha", user_id="u1")
        results = by_name(report)
        assert report.totals["listed"] == len(docs.corpus())
        assert report.totals["failed"] == 0, [
            (r.filename, r.message) for r in report.results if not r.success
        ]
        assert results["long.pdf"].total_chunks > 4 and results["long.pdf"].chunked
        assert results["readme.md"].total_chunks == 1 and results["readme.md"].chunked is False
        assert results["app.py"].is_code_file and results["app.py"].language == "python"
        assert results["annual.pdf"].pages == 2 and results["annual.pdf"].etag
        assert all(
            r.embedder == "tests.integration.test_pipeline.CountingEmbeddings"
            for r in report.results
        )
        assert {
            "queued",
            "downloading",
            "parsing",
            "chunking",
            "embedding",
            "storing",
            "done",
        } <= set(events)

        for canary, filename in [
            ("CANARY-PDF-PAGE-TWO costs fell", "annual.pdf"),
            ("CANARY-DOCX new hires get a laptop", "handbook.docx"),
            ("CANARY-PPTX ship in Q3", "deck.pptx"),
            ("CANARY-DOC revenue grew 12%", "memo.doc"),
            ("CANARY-PPT-NOTES mention the hiring plan", "strategy.ppt"),
            ("CANARY-VSDX core router", "network.vsdx"),
            ("CANARY-MHTML saved pages are read whole", "saved.mhtml"),
            ("CANARY-XLSX widgets", "sheet.xlsx"),
            ("CANARY-HTML hello web", "page.html"),
            ("CANARY-ODT keep the manual dry", "manual.odt"),
            ("CANARY-ODP slides from Impress", "talk.odp"),
            ("CANARY-ODG rack A holds the core router", "floor.odg"),
            ("CANARY-EPUB chapters read in order", "guide.epub"),
            ("CANARY-GZ disk full", "app.log.1.gz"),
            ("CANARY-MD run pip install", "readme.md"),
            ("CANARY-GO entry point", "main.go"),
            ("CANARY-LATIN1 café crème brûlée", "latin1.txt"),
            ("CANARY-UTF16 café naïve", "utf16.txt"),
            ("CANARY-SCAN the supplier repairs pumps", "contract.pdf"),
            ("CANARY-PNG paid in full by card", "receipt.png"),
            ("CANARY-ZIP badges wait at reception", "wiki.zip"),
            ("CANARY-ZIPPDF book trains", "wiki.zip"),
            ("CANARY-PDFATTACH the board approved the budget", "board.pdf"),
            ("CANARY-XPS balance carried forward", "statement.xps"),
            ("CANARY-VTT release ships on Friday", "standup.vtt"),
            ("CANARY-ICS bring the launch", "invite.ics"),
            ("CANARY-EMBEDDED north region", "figures.docx"),
        ]:
            hits = await p.query(canary, session_id="alpha", k=1)
            doc = hits[0][0]
            assert doc.metadata["filename"] == filename, canary
            assert canary.split()[0] in doc.page_content
        hit = (await p.query("CANARY-PDF-PAGE-TWO costs fell", session_id="alpha", k=1))[0][0]
        meta = hit.metadata
        assert meta["page_start"] == meta["page_end"] == 2 or meta["page_end"] == 2
        for field in (
            "source",
            "bucket",
            "key",
            "version",
            "filename",
            "file_type",
            "chunk_index",
            "token_count",
            "content_hash",
            "session_id",
            "user_id",
            "ingested_at",
        ):
            assert field in meta, field
        assert meta["source"] == "s3://corpus/reports/annual.pdf" and meta["user_id"] == "u1"
        assert meta["file_type"] == "pdf"
        # Scans are read by OCR (in the worker processes), and their chunks say so.
        assert results["contract.pdf"].parser == "pymupdf4llm-tables+ocr"
        assert results["receipt.png"].file_type == "image"
        scan = (await p.query("CANARY-SCAN the supplier", session_id="alpha", k=1))[0][0]
        assert scan.metadata["ocr"] is True and scan.metadata["page_start"] == 1
        assert "ocr" not in meta
        # A zip's files are read one by one, each under its path (in a worker process).
        assert results["wiki.zip"].file_type == "archive"
        zipped = (await p.query("CANARY-ZIPPDF book trains", session_id="alpha", k=1))[0][0]
        assert zipped.page_content.startswith("# wiki/policy.pdf\n\n")
        assert zipped.metadata["archive_member"] == "wiki/policy.pdf"
        # A PDF's attached files, each chunked as a file of its type; an XPS as a PDF.
        attached = (await p.query("CANARY-PDFATTACH the board", session_id="alpha", k=1))[0][0]
        assert attached.metadata["attachment"] == "minutes.docx"
        assert attached.metadata["file_type"] == "docx"
        assert attached.metadata["heading_path"].startswith("Attachment: minutes.docx")
        assert results["statement.xps"].file_type == "xps" and results["statement.xps"].pages == 1
        table = (await p.query("CANARY-EMBEDDED north", session_id="alpha", k=1))[0][0]
        assert table.metadata["attachment"] == "Microsoft_Excel_Worksheet.xlsx"
        assert table.metadata["file_type"] == "xlsx"
        event = (await p.query("CANARY-ICS bring the launch", session_id="alpha", k=1))[0][0]
        assert event.page_content.startswith("## Launch review\nWhen: 2026-12-01 09:00 (UTC)")
        assert event.metadata["file_type"] == "calendar"
        said = (await p.query("CANARY-VTT release ships", session_id="alpha", k=1))[0][0]
        assert said.page_content.startswith("Alice: The CANARY-VTT release ships on Friday")
        assert (said.metadata["time_start"], said.metadata["time_end"]) == (1.0, 9.0)
        # Word and PowerPoint 97-2003, read through DOCX and PPTX (in a worker process).
        assert results["memo.doc"].parser == "msdoc2docx+docling-docx"
        slide = (await p.query("CANARY-PPT-NOTES mention", session_id="alpha", k=1))[0][0]
        assert slide.metadata["file_type"] == "ppt" and slide.metadata["page_start"] <= 2
        assert slide.page_content.startswith("# Strategy 2027")
        code = (await p.query("CANARY-GO entry point", session_id="alpha", k=1))[0][0]
        assert code.metadata["language"] == "go" and code.metadata["file_type"] == "code"
    assert not any((tmp_path / "tmp").iterdir())  # every temp download removed


async def test_reingest_change_and_interrupt(seaweed: SeaweedS3, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="versions")
    long_text = docs.corpus()["text/notes.txt"]
    client.put_object(Bucket="versions", Key="notes.txt", Body=long_text)
    client.put_object(Bucket="versions", Key="other.md", Body=b"# Other\n\nCANARY-OTHER stays.\n")
    settings = make_settings(seaweed, tmp_path)

    embeddings = CountingEmbeddings()
    async with DocumentProcessor(settings, embeddings=embeddings) as p:
        first = await p.process_many("s3://versions/", session_id="s")
        assert first.totals["ingested"] == 2
        ids_v1 = p.store.ids_for("s")
        assert ids_v1 is not None and len(ids_v1) == first.totals["chunks"]

        # Unchanged: skipped before download, zero embedding calls.
        embedded = embeddings.texts
        again = await p.process_many("s3://versions/", session_id="s")
        assert again.totals["skipped"] == 2 and embeddings.texts == embedded
        assert again.totals["bytes"] == 0
        assert p.store.ids_for("s") == ids_v1

        # Changed: the old chunks of that object are replaced, nothing stale left.
        client.put_object(
            Bucket="versions", Key="notes.txt", Body=long_text.replace(b"topic", b"subject")
        )
        changed = await p.process_many("s3://versions/", session_id="s")
        assert by_name(changed)["notes.txt"].status == "ingested"
        assert by_name(changed)["other.md"].status == "skipped"
        ids_v2 = p.store.ids_for("s")
        notes_v2 = p.store.ids_for("s", "s3://versions/notes.txt")
        other = p.store.ids_for("s", "s3://versions/other.md")
        assert ids_v2 == notes_v2 | other
        assert not (notes_v2 & ids_v1)  # every old notes chunk is gone
        assert other <= ids_v1

    # Interrupted: the store write lands, the process dies before the ledger row.
    client.put_object(
        Bucket="versions", Key="notes.txt", Body=long_text.replace(b"topic", b"theme")
    )
    async with DocumentProcessor(settings, embeddings=CountingEmbeddings()) as p:
        original = p.ledger.record

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("power cut")

        p.ledger.record = crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await p.process_document("s3://versions/notes.txt", session_id="s")
        p.ledger.record = original  # type: ignore[method-assign]
    async with DocumentProcessor(settings, embeddings=CountingEmbeddings()) as p:
        rerun = await p.process_many("s3://versions/", session_id="s")
        assert by_name(rerun)["notes.txt"].status == "ingested"
        after = p.store.ids_for("s")
        notes_v3 = p.store.ids_for("s", "s3://versions/notes.txt")
    # The same as a clean ingest of v3 into a fresh store: nothing lost, nothing duplicated.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    async with DocumentProcessor(
        make_settings(seaweed, fresh), embeddings=CountingEmbeddings()
    ) as p:
        await p.process_many("s3://versions/", session_id="s")
        assert p.store.ids_for("s") == after
        assert p.store.ids_for("s", "s3://versions/notes.txt") == notes_v3


async def test_interrupted_then_changed_again_leaves_no_orphans(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """Crash after the store write (no ledger row), then the object changes again."""
    client = seaweed.client()
    client.create_bucket(Bucket="orphans")
    text = docs.corpus()["text/notes.txt"]
    client.put_object(Bucket="orphans", Key="notes.txt", Body=text)
    settings = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
        await p.process_many("s3://orphans/", session_id="o")  # v1, complete
        client.put_object(Bucket="orphans", Key="notes.txt", Body=text.replace(b"topic", b"area"))

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("power cut")

        original, p.ledger.record = p.ledger.record, crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await p.process_document("s3://orphans/notes.txt", session_id="o")  # v2 written
        p.ledger.record = original  # type: ignore[method-assign]
        client.put_object(Bucket="orphans", Key="notes.txt", Body=text.replace(b"topic", b"field"))
        assert (await p.process_document("s3://orphans/notes.txt", session_id="o")).success
        after = p.store.ids_for("o")
        assert p.ledger.pending("o", "s3://orphans/notes.txt") == set()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    async with DocumentProcessor(make_settings(seaweed, fresh), embeddings=HashEmbeddings()) as p:
        await p.process_many("s3://orphans/", session_id="o")
        assert p.store.ids_for("o") == after  # no v1 or v2 chunk survived


class RecordingEmbeddings(HashEmbeddings):
    """Hash vectors, keeping every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen += texts
        return super().embed_documents(texts)


def sectioned(changed: int | None = None, sections: int = 8) -> bytes:
    """A Markdown file of ``sections`` sections, a chunk or two each; ``changed`` reworded."""
    parts = []
    for i in range(sections):
        word = "revised" if i == changed else "original"
        body = " ".join(f"Section {i} sentence {j} holds {word} detail." for j in range(18))
        parts.append(f"## Part {i}\n\n{body}\n")
    return "\n".join(parts).encode()


def guide(tmp_path: Path) -> Path:
    """``docs/guide.md``: :func:`sectioned` as first written."""
    doc = tmp_path / "docs" / "guide.md"
    doc.parent.mkdir()
    doc.write_bytes(sectioned())
    return doc


def stored_vectors(p: DocumentProcessor, session: str) -> dict[str, list[float]]:
    """The store's chunk texts of ``session`` and their vectors."""
    assert p.store is not None
    got = p.store.vectorstore._collection.get(
        where={"session_id": session}, include=["documents", "embeddings"]
    )
    return {t: list(v) for t, v in zip(got["documents"], got["embeddings"], strict=True)}


async def test_a_changed_source_embeds_only_its_changed_chunks(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    doc = guide(tmp_path)
    embeddings = RecordingEmbeddings()
    settings = make_settings(seaweed, tmp_path)
    hashed = HashEmbeddings()

    def check_vectors(p: DocumentProcessor) -> None:
        # Each chunk's vector is its own text's: reused ones were not shuffled.
        for text, vector in stored_vectors(p, "s").items():
            assert vector == pytest.approx(hashed.embed_documents([text])[0], abs=1e-6)

    async with DocumentProcessor(settings, embeddings=embeddings) as p:
        first = await p.process_document(doc, session_id="s")
        assert first.success and first.total_chunks >= 8 and first.reused_vectors == 0
        assert len(embeddings.seen) == first.total_chunks

        # One section reworded: only the chunks whose text is new are embedded.
        doc.write_bytes(sectioned(changed=3))
        before = set(stored_vectors(p, "s"))
        embeddings.seen.clear()
        second = await p.process_document(doc, session_id="s")
        after = set(stored_vectors(p, "s"))
        assert second.success and second.total_chunks == len(after)
        assert set(embeddings.seen) == after - before and embeddings.seen
        assert all("revised" in t for t in embeddings.seen)
        assert (
            second.reused_vectors
            == len(after & before)
            == second.total_chunks - len(embeddings.seen)
        )
        check_vectors(p)

        # New caller metadata changes every chunk's fields, no chunk's text.
        embeddings.seen.clear()
        tagged = await p.process_document(doc, session_id="s", metadata={"team": "docs"})
        assert tagged.status == "ingested" and embeddings.seen == []
        assert tagged.reused_vectors == tagged.total_chunks
        check_vectors(p)

        # A write that landed before a crash cut its ledger row off: re-run, it is reused.
        doc.write_bytes(sectioned(changed=5))

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("power cut")

        original, p.ledger.record = p.ledger.record, crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await p.process_document(doc, session_id="s", metadata={"team": "docs"})
        p.ledger.record = original  # type: ignore[method-assign]
        embeddings.seen.clear()
        rerun = await p.process_document(doc, session_id="s", metadata={"team": "docs"})
        assert rerun.success and embeddings.seen == []
        ids = p.store.ids_for("s")
        check_vectors(p)

    # Switched off: every chunk of a changed source is embedded again.
    off = make_settings(seaweed, tmp_path, models={"reuse_vectors": False})
    doc.write_bytes(sectioned(changed=6))
    embeddings.seen.clear()
    async with DocumentProcessor(off, embeddings=embeddings) as p:
        result = await p.process_document(doc, session_id="s", metadata={"team": "docs"})
        assert result.reused_vectors == 0 and len(embeddings.seen) == result.total_chunks

    # The same chunk IDs as a fresh ingest of that version.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    doc.write_bytes(sectioned(changed=5))
    async with DocumentProcessor(make_settings(seaweed, fresh), embeddings=embeddings) as p:
        await p.process_document(doc, session_id="s", metadata={"team": "docs"})
        assert p.store.ids_for("s") == ids


async def test_a_document_another_session_holds_is_not_embedded_again(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    handbook = sectioned()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "handbook.md").write_bytes(handbook)
    (folder / "copy-of-handbook.md").write_bytes(handbook)
    embeddings = RecordingEmbeddings()
    hashed = HashEmbeddings()
    async with DocumentProcessor(make_settings(seaweed, tmp_path), embeddings=embeddings) as p:
        a = await p.process_document(folder / "handbook.md", session_id="a")
        assert a.success and len(embeddings.seen) == a.total_chunks
        embeddings.seen.clear()
        # The same file in another session, and the same bytes under another name.
        b = await p.process_document(folder / "handbook.md", session_id="b", user_id="u2")
        c = await p.process_document(folder / "copy-of-handbook.md", session_id="a")
        assert embeddings.seen == []
        assert b.reused_vectors == c.reused_vectors == a.total_chunks
        # Each session's chunks are its own, with their own vectors.
        await p.delete_session("a")
        assert stored_vectors(p, "a") == {}
        kept = stored_vectors(p, "b")
        assert len(kept) == a.total_chunks
        for text, vector in kept.items():
            assert vector == pytest.approx(hashed.embed_documents([text])[0], abs=1e-6)
        assert [
            d.metadata["session_id"] for d, _ in await p.query("Section 3", session_id="b")
        ] == ["b"] * 4

    # Off: nothing is looked up, everything embedded.
    off = make_settings(seaweed, tmp_path, models={"reuse_vectors": False})
    async with DocumentProcessor(off, embeddings=embeddings) as p:
        d = await p.process_document(folder / "handbook.md", session_id="d")
        assert d.reused_vectors == 0 and len(embeddings.seen) == d.total_chunks


async def test_copies_of_an_s3_object_are_parsed_once_each_stored_under_its_key(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="copies")
    shot = b"# Shot\n\nCANARY-COPY the capture window shows packets.\n"
    for key, body in (
        ("en/shot.md", shot),
        ("fr/shot.md", shot),
        ("de/shot.md", shot.replace(b"packets", b"Pakete")),
    ):
        client.put_object(Bucket="copies", Key=key, Body=body)
    async with DocumentProcessor(make_settings(seaweed, tmp_path)) as p:
        report = await p.process_many("s3://copies/", session_id="s")
        results = {r.source.removeprefix("s3://copies/"): r for r in report.results}
        assert {r.status for r in results.values()} == {"ingested"}
        notes = {n: r.notes for n, r in results.items()}
        assert notes["de/shot.md"] == []
        first, copy = sorted(["en/shot.md", "fr/shot.md"], key=lambda n: bool(notes[n]))
        assert (notes[first], notes[copy]) == (
            [],
            [f"parsed once for the same bytes at s3://copies/{first}"],
        ), notes
        hits = await p.query("CANARY-COPY capture window", session_id="s", k=10)
        assert sorted((d.metadata["bucket"], d.metadata["key"]) for d, _ in hits) == [
            ("copies", "de/shot.md"),
            ("copies", "en/shot.md"),
            ("copies", "fr/shot.md"),
        ]
        assert all(d.metadata["source"] == f"s3://copies/{d.metadata['key']}" for d, _ in hits)


async def test_chunks_are_embedded_under_their_file_and_section_when_asked(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    from rag_ingest.chunking import embed_text
    from rag_ingest.tokens import count_tokens

    doc = guide(tmp_path)
    embeddings = RecordingEmbeddings()
    hashed = HashEmbeddings()
    plain = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(plain, embeddings=embeddings) as p:
        off = p.fingerprint
        assert (await p.process_document(doc, session_id="s")).success
    assert not any(t.startswith("guide.md") for t in embeddings.seen)

    on = make_settings(seaweed, tmp_path, chunk={"embed_header": True})
    embeddings.seen.clear()
    async with DocumentProcessor(on, embeddings=embeddings) as p:
        assert p.fingerprint != off
        # Switched on, an unchanged source is embedded again, under its headers.
        first = await p.process_document(doc, session_id="s")
        assert first.status == "ingested" and first.reused_vectors == 0
        assert len(embeddings.seen) == first.total_chunks
        assert all(t.startswith("guide.md > Part ") for t in embeddings.seen)
        got = p.store.vectorstore._collection.get(
            where={"session_id": "s"}, include=["documents", "metadatas", "embeddings"]
        )
        read = {embed_text(t, m) for t, m in zip(got["documents"], got["metadatas"], strict=True)}
        assert read == set(embeddings.seen)  # the store keeps the chunk's own text
        # What it used counts the headers' tokens too.
        assert first.usage == {
            "embedded_chunks": first.total_chunks,
            "embedded_tokens": sum(count_tokens(t) for t in embeddings.seen),
        }
        for text, meta, vector in zip(
            got["documents"], got["metadatas"], got["embeddings"], strict=True
        ):
            assert not text.startswith("guide.md")
            header = f"guide.md > {meta['heading_path']}\n\n"
            assert list(vector) == pytest.approx(hashed.embed_documents([header + text])[0])
        continued = [
            t
            for t, m in zip(got["documents"], got["metadatas"], strict=True)
            if m["heading_path"] == "Part 3" and not t.startswith("## Part 3")
        ]
        assert continued  # a chunk of section 3 after its heading

        # A renamed section: its chunks are embedded again, the one whose text is the
        # same included (its header is not); the rest keep their vectors.
        doc.write_bytes(sectioned().replace(b"## Part 3", b"## Chapter 3"))
        embeddings.seen.clear()
        renamed = await p.process_document(doc, session_id="s")
        assert renamed.success and embeddings.seen
        assert all(t.startswith("guide.md > Chapter 3\n\n") for t in embeddings.seen)
        assert any(t.endswith(continued[0]) for t in embeddings.seen)
        assert renamed.reused_vectors == renamed.total_chunks - len(embeddings.seen)

        # The same bytes under another name are embedded under that name.
        (doc.parent / "copy.md").write_bytes(doc.read_bytes())
        embeddings.seen.clear()
        copy = await p.process_document(doc.parent / "copy.md", session_id="s")
        assert copy.reused_vectors == 0 and len(embeddings.seen) == copy.total_chunks
        assert all(t.startswith("copy.md > ") for t in embeddings.seen)

    # Off again: no vector embedded under a header is taken for the plain text.
    embeddings.seen.clear()
    async with DocumentProcessor(plain, embeddings=embeddings) as p:
        again = await p.process_document(doc, session_id="s")
        assert again.status == "ingested" and again.reused_vectors == 0
        assert len(embeddings.seen) == again.total_chunks
        assert not any(t.startswith("guide.md") for t in embeddings.seen)

    # A store whose metadata is not read back cannot tell one kind from the other.
    from langchain_core.vectorstores import InMemoryVectorStore

    memory = InMemoryVectorStore(HashEmbeddings())
    with pytest.raises(ConfigurationError, match="embed_header"):
        async with DocumentProcessor(on, vectorstore=memory):
            pass


class BrokenAfter(RecordingEmbeddings):
    """Embeds ``good`` calls, then refuses every one (a bad request: not retried)."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.good <= 0:
            raise ValueError("400 Bad Request: quota for this key is used up")
        self.good -= 1
        return super().embed_documents(texts)


async def test_an_embedding_that_fails_midway_keeps_what_it_paid_for(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    doc = guide(tmp_path)
    settings = make_settings(seaweed, tmp_path, models={"batch_size": 4})
    broken = BrokenAfter(good=2)
    async with DocumentProcessor(settings, embeddings=broken) as p:
        failed = await p.process_document(doc, session_id="s")
        assert failed.status == "failed" and failed.error_type == "ModelError"
        assert not failed.transient  # a bad request stays one
        assert len(broken.seen) == 8 and failed.total_chunks == 0
        assert any("8 of" in w and "vectors are kept" in w for w in failed.warnings)
        assert failed.usage["embedded_chunks"] == 8  # paid for, though it failed
        assert failed.usage["embedding_failed_calls"] == 1  # refused, not tried again
        assert p.ledger.model_use("s") == failed.usage  # kept with its failure
        assert p.store.ids_for("s") == set()  # all or nothing still

        # The next attempt embeds only what the first did not.
        working = RecordingEmbeddings()
        p._runner.embeddings = working
        again = await p.process_document(doc, session_id="s")
        assert again.success and again.reused_vectors == 8
        assert len(working.seen) == again.total_chunks - 8
        assert again.usage["embedded_chunks"] == again.total_chunks - 8
        # The source's cost, both attempts: each chunk embedded once, one call refused.
        assert p.ledger.model_use("s", again.source) == {
            "embedded_chunks": again.total_chunks,
            "embedded_tokens": failed.usage["embedded_tokens"] + again.usage["embedded_tokens"],
            "embedding_failed_calls": 1,
        }
        assert not set(working.seen) & set(broken.seen)
        hashed = HashEmbeddings()
        for text, vector in stored_vectors(p, "s").items():
            assert vector == pytest.approx(hashed.embed_documents([text])[0], abs=1e-6)
        assert p.ledger.kept_vectors("s", again.source) == {}  # dropped once it landed

        # A session deleted after a failure leaves nothing kept behind.
        doc.write_bytes(sectioned(changed=2))  # no twin to take from
        p._runner.embeddings = BrokenAfter(good=1)
        other = await p.process_document(doc, session_id="t")
        assert other.status == "failed" and p.ledger.kept_vectors("t", other.source)
        await p.delete_session("t")
        assert p.ledger.kept_vectors("t", other.source) == {}


async def test_a_changed_file_in_an_archive_is_the_only_one_embedded(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    files = {
        f"wiki/page{i}.md": sectioned(sections=2).replace(b"Section", f"Page{i}".encode())
        for i in range(6)
    }
    archive = tmp_path / "wiki.zip"
    archive.write_bytes(docs.zip_bytes(files))
    embeddings = RecordingEmbeddings()
    async with DocumentProcessor(make_settings(seaweed, tmp_path), embeddings=embeddings) as p:
        first = await p.process_document(archive, session_id="s")
        assert first.success and len(embeddings.seen) == first.total_chunks
        files["wiki/page4.md"] = files["wiki/page4.md"].replace(b"original", b"changed")
        archive.write_bytes(docs.zip_bytes(files))
        embeddings.seen.clear()
        second = await p.process_document(archive, session_id="s")
        assert second.success and embeddings.seen
        assert all("Page4" in t and "changed" in t for t in embeddings.seen)
        assert second.reused_vectors == second.total_chunks - len(embeddings.seen)


async def test_a_mailbox_that_grew_reads_and_embeds_only_its_new_messages(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    def letters(count: int) -> bytes:
        head = "From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n"
        body = "Letter {0} tells CANARY-{0} of its topic. " * 40
        return "".join(
            f"{head}Subject: Letter {i}\n\n{body.format(i)}\n\n" for i in range(count)
        ).encode()

    box = tmp_path / "list.mbox"
    box.write_bytes(letters(4))
    embeddings = RecordingEmbeddings()
    settings = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(settings, embeddings=embeddings) as p:
        first = await p.process_document(box, session_id="s")
        assert first.success and first.total_chunks > 4
        kept = Path(p._archive_cache("s", first.source) or "")
        assert kept.is_file()
        box.write_bytes(letters(6))
        embeddings.seen.clear()
        second = await p.process_document(box, session_id="s")
        assert second.success and embeddings.seen
        assert all("CANARY-4" in t or "CANARY-5" in t for t in embeddings.seen)
        assert second.reused_vectors == second.total_chunks - len(embeddings.seen)
        assert p.store is not None
        got = p.store.vectorstore.get(where={"session_id": "s"}, include=["metadatas"])
        ids = sorted(got["ids"])
        await p.delete_session("s")
        assert not kept.exists()
    # The chunks a fresh ingest of the grown mailbox stores, the same IDs.
    fresh = make_settings(seaweed, tmp_path, parse={"archive_cache": False})
    fresh = fresh.model_copy(
        update={"store": fresh.store.model_copy(update={"persist_dir": tmp_path / "fresh"})}
    )
    async with DocumentProcessor(fresh, embeddings=HashEmbeddings()) as q:
        assert (await q.process_document(box, session_id="s")).success
        assert q.store is not None
        assert sorted(q.store.vectorstore.get(where={"session_id": "s"})["ids"]) == ids


@pytest.mark.parametrize("mode", ["process", "thread"])  # the archive in parts, or whole
async def test_a_changed_archive_parses_only_its_changed_files(
    seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    log = tmp_path / "parsed.log"
    monkeypatch.setenv("RAG_INGEST_TEST_PARSE_LOG", str(log))  # the workers inherit it
    files = {
        f"notes/n{i}.note": f"Note {i} says CANARY-{i} in plain words.\n".encode() * 20
        for i in range(6)
    }
    files["notes/logo.png"] = docs.photo(64, 64, "PNG")  # no text
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    files["report.pdf"] = docs.pdf_bytes(  # pages: several segments, each with its number
        [f"{w.title()} section CANARY-{w.upper()}. " + f"{w} " * 90 for w in words[:3]]
    )
    archive = tmp_path / "export.zip"
    archive.write_bytes(docs.zip_bytes(files))
    settings = make_settings(seaweed, tmp_path, parse={"mode": mode})

    def processor(settings: Settings) -> DocumentProcessor:
        made = DocumentProcessor(settings, embeddings=HashEmbeddings())
        made.register_parser(".note", "tests.hostile_parsers:logged_note")
        return made

    def parsed_names() -> list[str]:
        names = sorted(log.read_text().split()) if log.exists() else []
        log.unlink(missing_ok=True)
        return names

    def stored(p: DocumentProcessor, session: str) -> list[tuple[str, str]]:
        assert p.store is not None
        got = p.store.vectorstore.get(
            where={"session_id": session}, include=["documents", "metadatas"]
        )
        keep = ("archive_member", "chunk_index", "start_index", "end_index", "page_end")
        return sorted(
            (text, json.dumps({k: m.get(k) for k in keep}, sort_keys=True))
            for text, m in zip(got["documents"], got["metadatas"], strict=True)
        )

    async with processor(settings) as p:
        first = await p.process_document(archive, session_id="s")
        assert first.status == "ingested" and len(parsed_names()) == 6
        files["notes/n3.note"] = b"Note 3 now says CANARY-CHANGED instead.\n" * 20
        archive.write_bytes(docs.zip_bytes(files))
        second = await p.process_document(archive, session_id="s")
        assert second.status == "ingested" and parsed_names() == ["n3.note"]
        # The same chunks as the archive parsed afresh, in a store of its own.
        fresh = make_settings(seaweed, tmp_path, parse={"mode": mode, "archive_cache": False})
        fresh = fresh.model_copy(
            update={"store": fresh.store.model_copy(update={"persist_dir": tmp_path / "fresh"})}
        )
        async with processor(fresh) as q:
            assert (await q.process_document(archive, session_id="s")).status == "ingested"
            assert len(parsed_names()) == 6
            assert stored(p, "s") == stored(q, "s")
        texts = " ".join(text for text, _ in stored(p, "s"))
        assert "CANARY-CHANGED" in texts and "CANARY-CHARLIE" in texts
        pages = [json.loads(m)["page_end"] for _, m in stored(p, "s") if "report.pdf" in m]
        assert set(pages) == {1, 2, 3}  # a remembered PDF keeps its page numbers
        # Another session has a cache of its own; a deleted session's is removed.
        other = await p.process_document(archive, session_id="t")
        assert other.status == "ingested" and len(parsed_names()) == 6
        cache = Path(p._archive_cache("t") or "")
        assert cache.is_dir() and any(cache.iterdir())
        await p.delete_session("t")
        assert not cache.exists() and Path(p._archive_cache("s") or "").is_dir()
        # A pruned archive's is removed too.
        folder = tmp_path / "exports"
        folder.mkdir()
        (folder / "export.zip").write_bytes(archive.read_bytes())
        listed = await p.process_many(str(folder), session_id="u", prune=True)
        assert listed.totals["ingested"] == 1
        kept = Path(p._archive_cache("u", listed.results[0].source) or "")
        assert kept.is_file()
        (folder / "export.zip").unlink()
        (folder / "other.md").write_text("# Other\n\nA note.\n")
        pruned = await p.process_many(str(folder), session_id="u", prune=True)
        assert len(pruned.pruned) == 1 and not kept.exists()


async def test_a_presigned_url_that_expired_in_the_queue_is_renewed(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="presigned")
    client.put_object(Bucket="presigned", Key="memo.md", Body=b"# Memo\n\nCANARY-RENEWED.\n")

    def presign(seconds: int) -> str:
        return str(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": "presigned", "Key": "memo.md"}, ExpiresIn=seconds
            )
        )

    short = presign(1)
    await asyncio.sleep(2.1)
    asked: list[str] = []

    def renew(url: str) -> str:
        asked.append(url)
        return presign(600)

    settings = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
        failed = await p.process_document(short, session_id="s")
        assert failed.error_type == "S3PresignedExpiredError"
    async with DocumentProcessor(settings, embeddings=HashEmbeddings(), renew_url=renew) as p:
        result = await p.process_document(short, session_id="s")
        assert result.status == "ingested", result.message
        assert asked == [short]
        hits = await p.query("CANARY-RENEWED", session_id="s", k=1)
        assert "CANARY-RENEWED" in hits[0][0].page_content
        assert "X-Amz-Signature" not in hits[0][0].metadata["source"]


async def test_sources_that_are_not_there_each_fail_typed(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """Each is a HEAD answered 404 with no body. The second such answer in a process had
    spun the processor's event loop for ever (aiohttp's shared empty body), and the
    caller's process with it: it runs in a thread of its own, to fail, not hang."""
    client = seaweed.client()
    client.create_bucket(Bucket="gaps")
    client.put_object(Bucket="gaps", Key="here.md", Body=b"# Here\n\nCANARY here\n")
    sources = [f"s3://gaps/gone-{i}.md" for i in range(3)] + ["s3://gaps/here.md"]
    settings = make_settings(seaweed, tmp_path, parse={"mode": "thread"})

    async def ingest() -> IngestReport:
        async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
            return await p.process_many(sources, session_id="g")

    reports = await asyncio.to_thread(run_apart, ingest(), 90)
    assert reports, "the ingest never ended"
    outcomes = {r.source: (r.status, r.error_type) for r in reports[0].results}
    assert outcomes == {
        **{s: ("failed", "S3NotFoundError") for s in sources[:3]},
        "s3://gaps/here.md": ("ingested", None),
    }


async def test_hostile_files_fail_typed_while_the_batch_goes_on(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="hostile")
    good = docs.corpus()
    pdf = docs.pdf_bytes([f"page {i} " + "words " * 300 for i in range(5)])
    files = {
        "good/annual.pdf": good["reports/annual.pdf"],
        "good/readme.md": good["docs/readme.md"],
        "good/app.py": good["code/app.py"],
        "bad/corrupt.pdf": b"%PDF-1.7\n" + b"\x13garbage" * 500,
        "bad/truncated.pdf": pdf[: len(pdf) // 2],
        "bad/encrypted.pdf": docs.pdf_bytes(["secret"], encrypt=True),
        "bad/bomb.docx": docs.zip_bomb_docx(),
        "bad/cut.docx": good["docs/handbook.docx"][:3000],
        "bad/locked.doc": docs.legacy_office("locked.doc"),
        "bad/binary.txt": bytes(range(256)) * 40,
        "bad/crash.crash": b"x",
        "bad/hang.hang": b"x",
        "bad/hog.hog": b"x",
        "bad/deep.deep": b"x",
    }
    for name, data in files.items():
        client.put_object(Bucket="hostile", Key=name, Body=data)
    settings = make_settings(seaweed, tmp_path, parse={"timeout": 5})
    processor = DocumentProcessor(settings, embeddings=HashEmbeddings())
    processor.register_parser(".crash", "tests.hostile_parsers:crash")
    processor.register_parser(".hang", "tests.hostile_parsers:hang")
    processor.register_parser(".hog", "tests.hostile_parsers:blow_up")
    processor.register_parser(".deep", "tests.hostile_parsers:recurse")
    async with processor as p:
        report = await p.process_many("s3://hostile/", session_id="h")
    results = {r.filename: r for r in report.results}
    expected = {
        "corrupt.pdf": "CorruptDocumentError",
        "truncated.pdf": "CorruptDocumentError",
        "encrypted.pdf": "EncryptedDocumentError",
        "bomb.docx": "ZipBombError",
        "cut.docx": "CorruptDocumentError",
        "locked.doc": "EncryptedDocumentError",
        "binary.txt": "BinaryContentError",
        "crash.crash": "ParserCrashedError",
        "hang.hang": "ParserTimeoutError",
        "hog.hog": "ParserMemoryError",
        "deep.deep": "CorruptDocumentError",  # not "parser failed": a typed failure
    }
    for name, error in expected.items():
        assert results[name].status == "failed" and results[name].error_type == error, (
            name,
            results[name].error_type,
            results[name].message,
        )
    assert "(parse.timeout)" in (results["hang.hang"].message or "")  # names the setting
    assert "died (SIGABRT: a native library aborted" in (results["crash.crash"].message or "")
    assert "nests too deeply to read" in (results["deep.deep"].message or "")
    for name in ("annual.pdf", "readme.md", "app.py"):
        assert results[name].status == "ingested", results[name].message
    assert report.totals == {
        "listed": 14,
        "ingested": 3,
        "planned": 0,
        "skipped": 0,
        "failed": 11,
        "chunks": report.totals["chunks"],
        "tokens": report.totals["tokens"],
        "bytes": report.totals["bytes"],
        "reused_vectors": 0,
        "reused_answers": 0,
        "pruned": 0,
    }


async def test_sessions_are_isolated_and_deleted_exactly(
    seaweed: SeaweedS3, corpus_bucket: str, tmp_path: Path
) -> None:
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        await p.process_document(f"s3://{corpus_bucket}/docs/readme.md", session_id="one")
        await p.process_document(f"s3://{corpus_bucket}/web/page.html", session_id="two")
        hits = await p.query("CANARY-MD run pip install", session_id="two", k=10)
        assert hits and all(d.metadata["session_id"] == "two" for d, _ in hits)
        retrieved = await p.as_retriever(session_id="two", k=10).ainvoke(
            "CANARY-MD run pip install"
        )
        assert retrieved and {d.metadata["session_id"] for d in retrieved} == {"two"}
        with pytest.raises(SessionRequiredError):
            p.as_retriever(session_id="")
        with pytest.raises(SessionRequiredError):
            await p.query("anything", session_id="")
        two_before = p.store.ids_for("two")
        removed = await p.delete_session("one")
        assert removed == 1
        assert p.store.ids_for("one") == set() and p.ledger.session_rows("one") == []
        assert p.store.ids_for("two") == two_before and len(p.ledger.session_rows("two")) == 1


async def test_sessions_are_listed_and_old_ones_expire(seaweed: SeaweedS3, tmp_path: Path) -> None:
    import datetime

    files = text_files(tmp_path / "files", "f", 3, "Words and more words. " * 40)
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert p.store is not None and p.ledger is not None
        used = {}
        for session in ("old", "fresh"):
            report = await p.process_many(files, session_id=session)
            used[session] = report.usage
        # "old" was last ingested 40 days ago: every one of its ledger rows says so.
        long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=40)
        with p.ledger.transaction():
            for table in ("sources", "activity"):
                p.ledger._db.execute(
                    f"UPDATE {table} SET updated_at = ? WHERE session_id = 'old'",
                    (long_ago.isoformat(),),
                )
        listed = {info.session_id: info for info in await p.sessions()}
        assert set(listed) == {"old", "fresh"} and listed["fresh"].sources == 3
        assert listed["old"].chunks == len(p.store.ids_for("old")) > 0
        assert listed["old"].last_ingested == long_ago and listed["old"].failed == 0
        # What each session's model calls cost: "fresh" took the vectors of "old"'s twins.
        assert listed["old"].usage == used["old"] and used["old"]["embedded_chunks"] > 0
        assert listed["fresh"].usage == used["fresh"] == {}
        # One session's, or one source's, without listing every session.
        assert await p.session_usage("old") == used["old"]
        first = next(iter(p.ledger.session_rows("old")))
        assert await p.session_usage("old", first.source) == first.usage != {}
        assert await p.session_usage("never") == {}
        with pytest.raises(SessionRequiredError):
            await p.session_usage("")

        fresh = p.store.ids_for("fresh")
        with pytest.raises(ConfigurationError):
            await p.expire_sessions(datetime.timedelta(0))
        # A session in use (documents in flight) is kept, however old its rows.
        busy = p.submit(files / "f00.txt", session_id="old")
        assert await p.expire_sessions(datetime.timedelta(days=30)) == {}
        assert (await busy).status == "skipped"
        with p.ledger.transaction():
            for table in ("sources", "activity"):
                p.ledger._db.execute(
                    f"UPDATE {table} SET updated_at = ? WHERE session_id = 'old'",
                    (long_ago.isoformat(),),
                )
        assert await p.expire_sessions(datetime.timedelta(days=30)) == {"old": listed["old"].chunks}
        assert p.store.ids_for("old") == set() and p.ledger.session_rows("old") == []
        assert p.store.ids_for("fresh") == fresh
        assert [info.session_id for info in await p.sessions()] == ["fresh"]


async def test_a_session_cut_off_before_its_first_row_is_listed_and_expires(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """Its only document's write landed and a crash cut its row off: the store holds its
    chunks, the ledger pending IDs alone. It was never listed, so it never expired."""
    import datetime

    files = text_files(tmp_path / "files", "c", 1, "Words and more words. " * 40)
    settings = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
        assert p.ledger is not None

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("power cut")

        p.ledger.record = crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await p.process_document(files / "c00.txt", session_id="cut")
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:  # restarted
        assert p.store is not None and p.ledger is not None
        held = p.store.ids_for("cut")
        assert held and p.ledger.session_rows("cut") == []
        (info,) = await p.sessions()
        assert (info.session_id, info.sources, info.chunks) == ("cut", 0, 0)
        assert info.pending == len(held)
        now = datetime.datetime.now(datetime.UTC)
        assert now - info.last_ingested < datetime.timedelta(minutes=5)
        assert await p.expire_sessions(datetime.timedelta(days=30)) == {}
        with p.ledger.transaction():  # as a month later
            p.ledger._db.execute(
                "UPDATE activity SET updated_at = ?",
                ((now - datetime.timedelta(days=40)).isoformat(),),
            )
        assert await p.expire_sessions(datetime.timedelta(days=30)) == {"cut": len(held)}
        assert p.store.ids_for("cut") == set() and await p.sessions() == []
        # A ledger from before the activity table: a session of pending IDs alone is as
        # old as can be.
        p.ledger.add_pending("old", "s3://b/k", ["a"])
        with p.ledger.transaction():
            p.ledger._db.execute("DELETE FROM activity")
        (info,) = await p.sessions()
        assert info.session_id == "old" and info.last_ingested.year == 1970


async def test_an_interrupt_the_caller_keeps_does_not_hold_its_session_in_use(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """A notebook keeps the last exception, and its traceback the frames it went through:
    the session's work was kept alive in one, so expire_sessions saw it in flight."""
    import datetime

    files = text_files(tmp_path / "files", "k", 1, "Words and more words. " * 40)
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert p.store is not None and p.ledger is not None

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("stopped")

        original, p.ledger.record = p.ledger.record, crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt) as kept:
            await p.process_document(files / "k00.txt", session_id="kept")
        p.ledger.record = original  # type: ignore[method-assign]
        with p.ledger.transaction():  # as a month later
            p.ledger._db.execute("UPDATE activity SET updated_at = '2020-01-01T00:00:00+00:00'")
        held = len(p.store.ids_for("kept") or ())
        assert held and await p.expire_sessions(datetime.timedelta(days=30)) == {"kept": held}
        assert kept.value.__traceback__ is not None  # still kept


async def test_deleting_a_session_mid_ingest_leaves_nothing_of_it(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    files = text_files(tmp_path / "files", "f", 40, "Words and more words. " * 800)
    ingested = asyncio.Event()

    def on_result(result: Any) -> None:
        if result.status == "ingested":
            ingested.set()

    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert p.store is not None and p.ledger is not None
        await p.process_document(files / "f00.txt", session_id="kept")
        kept = p.store.ids_for("kept")
        batch = asyncio.ensure_future(p.process_many(files, session_id="s", on_result=on_result))
        queued = p.submit(files / "f01.txt", session_id="s")
        await asyncio.wait_for(ingested.wait(), 60)
        await p.delete_session("s")
        assert p.store.ids_for("s") == set() and p.ledger.session_rows("s") == []
        report = await batch
        deleted = [r for r in report.results if r.error_type == "SessionDeletedError"]
        assert report.listed == 40 and deleted
        assert report.count("ingested") + len(deleted) == 40
        assert (await queued).error_type in ("SessionDeletedError", None)
        await asyncio.sleep(1.5)  # past the store writer's linger
        assert p.store.ids_for("s") == set() and p.ledger.session_rows("s") == []
        # Nor what its stopped documents' calls cost, though each writes it as it stops.
        assert await p.session_usage("s") == {}
        assert p.store.ids_for("kept") == kept
        # The session is usable again: a new run ingests everything.
        again = await p.process_many(files, session_id="s")
        assert again.count("ingested") == 40
        assert len(p.ledger.session_rows("s")) == 40


async def test_verify_finds_and_repairs_what_the_ledger_and_store_disagree_on(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a", "b", "c"):
        (files / f"{name}.txt").write_text(f"{name} document. " + "Words and more words. " * 300)
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert p.store is not None and p.ledger is not None
        collection = p.store._collection
        first = await p.process_many(files, session_id="s")
        assert first.count("ingested") == 3
        clean = await p.verify_session("s")
        assert clean.consistent and clean.sources == 3 and clean.stored == clean.recorded > 3

        # A chunk no ledger row records, and a recorded chunk the store lost.
        b = (files / "b.txt").resolve().as_uri()
        lost = sorted(p.store.ids_for("s", b) or set())[0]
        collection.delete(ids=[lost])
        collection.upsert(
            ids=["orphan"],
            embeddings=[HashEmbeddings().embed_query("orphan")],
            metadatas=[{"session_id": "s", "source": "gone"}],
            documents=["orphan"],
        )
        found = await p.verify_session("s")
        assert not found.consistent and found.orphans == ["orphan"] and found.missing == {b: 1}
        assert p.store.ids_for("s") and "orphan" in (p.store.ids_for("s") or set())

        repaired = await p.verify_session("s", repair=True)
        assert repaired.repaired and "orphan" not in (p.store.ids_for("s") or set())
        row = p.ledger.get("s", b)
        assert (
            row is not None and row.status == "failed" and row.error_type == "StoreMismatchError"
        ), row

        again = await p.process_many(files, session_id="s")
        assert sorted(r.status for r in again.results) == ["ingested", "skipped", "skipped"]
        assert by_name(again)["b.txt"].status == "ingested"
        final = await p.verify_session("s")
        assert final.consistent and final.stored == clean.stored

        # Mid-ingest, verify waits for the documents in flight: no false differences,
        # even with a wide gap between its reading the store and reading the ledger.
        ids_for = p.store.ids_for

        def slow_ids_for(*args: Any) -> Any:
            found = ids_for(*args)
            time.sleep(0.3)
            return found

        p.store.ids_for = slow_ids_for  # type: ignore[method-assign]
        text_files(files, "more", 30, "Other words. " * 400)
        ingested = asyncio.Event()
        batch = asyncio.ensure_future(
            p.process_many(
                files,
                session_id="t",
                on_result=lambda r: ingested.set() if r.status == "ingested" else None,
            )
        )
        await asyncio.wait_for(ingested.wait(), 60)
        during = await p.verify_session("t")
        assert during.consistent and during.sources >= 1
        assert (await batch).count("ingested") == 33
        assert (await p.verify_session("t")).consistent


async def test_prune_waits_for_a_complete_listing(seaweed: SeaweedS3, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="prunes")
    for key in ("a.md", "b.md"):
        client.put_object(Bucket="prunes", Key=key, Body=f"# {key}\n\nCANARY {key}\n".encode())
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert p.store is not None
        await p.process_many("s3://prunes/", session_id="s")
        before = p.store.ids_for("s")
        b_ids = p.store.ids_for("s", "s3://prunes/b.md")
        assert before and b_ids
        client.delete_object(Bucket="prunes", Key="b.md")
        # The second prefix cannot be listed: nothing may be pruned on a partial listing.
        with pytest.raises(S3NotFoundError):
            await p.process_many(
                ["s3://prunes/", "s3://no-such-bucket/"], session_id="s", prune=True
            )
        assert p.store.ids_for("s") == before
        report = await p.process_many("s3://prunes/", session_id="s", prune=True)
        assert report.pruned == ["s3://prunes/b.md"]
        assert p.store.ids_for("s") == before - b_ids


async def test_submission_queue_applies_backpressure(
    seaweed: SeaweedS3, corpus_bucket: str, tmp_path: Path
) -> None:
    settings = make_settings(seaweed, tmp_path, pipeline={"queue_size": 2, "in_flight": 1})
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
        futures = [p.submit(f"s3://{corpus_bucket}/docs/readme.md", session_id="q")]
        futures.append(p.submit(f"s3://{corpus_bucket}/web/page.html", session_id="q"))
        with pytest.raises(QueueFullError):  # fails fast, nothing waits
            p.submit(f"s3://{corpus_bucket}/code/app.py", session_id="q")
        results = await asyncio.gather(*futures)
        assert [r.status for r in results] == ["ingested", "ingested"]
        # Drained: the queue accepts work again.
        assert (await p.submit(f"s3://{corpus_bucket}/code/app.py", session_id="q")).success


async def test_cancellation_cleans_temp_files(seaweed: SeaweedS3, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="cancel")
    client.put_object(Bucket="cancel", Key="big.txt", Body=b"word " * (8 * 1024 * 1024))
    settings = make_settings(
        seaweed,
        tmp_path,
        transfer={"part_size": 1024 * 1024, "multipart_threshold": 1024 * 1024, "concurrency": 1},
    )
    async with DocumentProcessor(settings, embeddings=HashEmbeddings()) as p:
        task = asyncio.ensure_future(p.process_many("s3://cancel/", session_id="c"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any((tmp_path / "tmp").iterdir()):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not any((tmp_path / "tmp").iterdir())


class _Summaries:
    """A stand-in chat model (any Runnable with ainvoke works)."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def ainvoke(self, prompt: str) -> str:
        if self.fail:
            raise ValueError("model refused")  # not transient: no retry
        return "SUMMARY: " + prompt.split("\n\n", 1)[1][:40]


@pytest.mark.parametrize("fail", [False, True])
async def test_summaries_optional_and_failure_tolerant(
    seaweed: SeaweedS3, corpus_bucket: str, tmp_path: Path, fail: bool
) -> None:
    seen: list[Any] = []
    settings = make_settings(seaweed, tmp_path, parse={"mode": "thread"})
    async with DocumentProcessor(
        settings, embeddings=HashEmbeddings(), summarizer=_Summaries(fail), on_event=seen.append
    ) as p:
        subscriber = p.events.subscribe()
        first = asyncio.ensure_future(subscriber.__anext__())
        result = await p.process_document(f"s3://{corpus_bucket}/docs/readme.md", session_id="sum")
        assert (await first).stage == "queued"
        await subscriber.aclose()
        assert result.status == "ingested" and result.success
        hit = (await p.query("CANARY-MD", session_id="sum", k=1))[0][0]
    stages = [e.stage for e in seen]
    assert "summarizing" in stages and stages[-1] == "done" and seen[-1].message == "ingested"
    if fail:
        assert result.summary is None and any("summary failed" in w for w in result.warnings)
        assert "summary" not in hit.metadata
    else:
        assert result.summary and result.summary.startswith("SUMMARY:")
        assert hit.metadata["summary"] == result.summary


def _figure(seaweed: SeaweedS3, bucket: str) -> str:
    """A PDF with a text page and a picture on page 2, in its own bucket."""
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="fig.pdf", Body=docs.pdf_with_image("CANARY-TEXT page."))
    return f"s3://{bucket}/fig.pdf"


class _Vision:
    """A stand-in multimodal chat model: checks it got an image, names its colour."""

    def __init__(self, down: bool = False, says: str = "") -> None:
        self.images = 0
        self.down = down
        self.says = says  # more it reads out of the picture

    async def ainvoke(self, messages: list[Any]) -> Any:
        from langchain_core.messages import AIMessage

        parts = messages[0].content
        assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
        self.images += 1
        if self.down:
            raise ValueError("the vision model is down")
        return AIMessage(
            content="A noisy square of coloured pixels, labelled CANARY-FIGURE." + self.says
        )


async def test_images_are_described_as_chunks_with_their_page(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    figure = _figure(seaweed, "images")
    # A screenshot of a terminal: the model reads out the key in it, which is masked.
    vision = _Vision(says=" The terminal shows AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986.")
    settings = make_settings(seaweed, tmp_path, parse={"mode": "thread"})
    async with DocumentProcessor(
        settings, embeddings=HashEmbeddings(), image_describer=vision
    ) as p:
        result = await p.process_document(figure, session_id="img")
        assert result.status == "ingested" and vision.images == 1
        hit = (await p.query("CANARY-FIGURE coloured pixels", session_id="img", k=1))[0][0]
    assert hit.page_content.startswith("[Image on page 2]")
    assert hit.page_content.endswith("AWS_ACCESS_KEY_ID=AKIA****************.")
    said = "the descriptions of its images: AWS access key ID (1) (chunk.mask_credentials)"
    assert f"credentials masked in {said}" in result.warnings
    assert hit.metadata["page_start"] == hit.metadata["page_end"] == 2
    assert hit.metadata["content_type"] == "image_description"
    assert hit.metadata["chunk_count"] == result.total_chunks


async def test_an_image_description_that_failed_is_tried_again_on_the_next_run(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    figure = _figure(seaweed, "images2")
    vision = _Vision(down=True)
    settings = make_settings(
        seaweed, tmp_path, parse={"mode": "thread"}, models={"max_attempts": 1}
    )
    async with DocumentProcessor(
        settings, embeddings=HashEmbeddings(), image_describer=vision
    ) as p:
        first = await p.process_document(figure, session_id="img")
        assert first.status == "ingested" and vision.images == 1
        vision.down = False
        second = await p.process_document(figure, session_id="img")
        assert second.status == "ingested" and second.total_chunks == first.total_chunks + 1
        third = await p.process_document(figure, session_id="img")
        assert third.status == "skipped" and vision.images == 2


def test_real_default_embedder(seaweed: SeaweedS3, corpus_bucket: str, tmp_path: Path) -> None:
    """all-MiniLM-L6-v2, offline, through the sync twin: meaning, not just words; and
    with the default chunk sizes every chunk fits the 256 word pieces the model reads."""
    from rag_ingest.models import load_embeddings
    from rag_ingest.pipeline import SyncDocumentProcessor
    from rag_ingest.settings import ChunkSettings

    long_text = tmp_path / "long.txt"
    long_text.write_text(
        "\n\n".join(
            f"Paragraph {i}: the warehouse team audits inventory levels, reconciles "
            "supplier invoices, rotates perishable stock and reports shrinkage to finance "
            "before the monthly close." * 2
            for i in range(40)
        )
    )
    defaults = ChunkSettings().model_dump()
    settings = make_settings(seaweed, tmp_path, models={"embedder": "minilm"}, chunk=defaults)
    with SyncDocumentProcessor(settings) as p:
        assert p.processor.embedder_name == "minilm"
        report = p.process_many(
            [
                f"s3://{corpus_bucket}/docs/handbook.docx",
                f"s3://{corpus_bucket}/docs/deck.pptx",
                f"s3://{corpus_bucket}/code/app.py",
                str(long_text),
            ],
            session_id="m",
        )
        assert report.totals["ingested"] == 4 and {r.embedder for r in report.results} == {"minilm"}
        assert not any(r.warnings for r in report.results)
        hits = p.query("What equipment do newly hired employees receive?", session_id="m", k=1)
        assert hits[0][0].metadata["filename"] == "handbook.docx"
        assert p.processor.store is not None
        stored = p.processor.store.vectorstore.get(where={"session_id": "m"})
    model = load_embeddings("minilm")
    long_chunks = [
        t
        for t, m in zip(stored["documents"], stored["metadatas"], strict=True)
        if m["filename"] == "long.txt"
    ]
    assert len(long_chunks) > 5
    counts = model.count_tokens(stored["documents"])  # type: ignore[attr-defined]
    assert max(counts) <= model.max_input_tokens == 256  # type: ignore[attr-defined]
    assert not any("embed_truncated" in m for m in stored["metadatas"])


def test_loading_minilm_draws_no_bar_and_keeps_the_callers_setting(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as transformers_logging

    from rag_ingest.models import MiniLMEmbeddings

    assert transformers_logging.is_progress_bar_enabled()
    assert MiniLMEmbeddings().model is not None  # loaded on first use
    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled() and not are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()
    try:
        preloaded = MiniLMEmbeddings()
        preloaded.load()  # pipeline.preload: loaded before any embedding
        assert preloaded._model is not None
        assert not transformers_logging.is_progress_bar_enabled()
        assert are_progress_bars_disabled()
    finally:
        transformers_logging.enable_progress_bar()


def test_minilm_loads_its_model_on_first_embedding() -> None:
    from rag_ingest.models import MiniLMEmbeddings

    model = MiniLMEmbeddings()
    texts = ["The warehouse team audits inventory levels.", "naïve café, déjà vu", "x " * 300]
    counts = model.count_tokens(texts)
    # Sizing chunks needs the tokenizer alone: a delete or a verify never loads torch.
    assert model._model is None and model.max_input_tokens == 256
    assert len(model.embed_query("hello")) == 384 and model._model is not None
    assert counts == [len(model.model.tokenizer(t)["input_ids"]) for t in texts]
    assert counts[2] == 302  # counted whole: the model would read 256 of them


def test_minilm_computes_in_the_precision_it_is_given() -> None:
    """bfloat16 runs the transformer under bfloat16 autocast, queries too; float32 not.
    Their vectors agree (cosine at least 0.9999), and "auto" follows the CPU's flags."""
    import numpy as np
    import torch

    from rag_ingest.models import MiniLMEmbeddings, cpu_computes_bf16

    texts = ["The warehouse team audits inventory levels.", "naïve café, déjà vu"]
    vectors = {}
    for precision in ("float32", "bfloat16"):
        model = MiniLMEmbeddings(precision=precision)
        autocast: list[bool] = []
        model.model[0].register_forward_hook(
            lambda *_, seen=autocast: seen.append(torch.is_autocast_enabled("cpu"))
        )
        vectors[precision] = np.array([*model.embed_documents(texts), model.embed_query("x")])
        assert autocast == [precision == "bfloat16"] * 2, precision
    cosines = (vectors["float32"] * vectors["bfloat16"]).sum(axis=1)
    assert cosines.min() > 0.9999
    assert np.allclose(np.linalg.norm(vectors["bfloat16"], axis=1), 1.0, atol=1e-3)
    chosen = MiniLMEmbeddings(precision="auto").precision
    assert chosen == ("bfloat16" if cpu_computes_bf16() else "float32")
    assert cpu_computes_bf16("flags\t\t: fpu sse avx2 amx_bf16 amx_tile\n")
    assert cpu_computes_bf16("flags\t: fpu avx512f avx512_bf16\n")
    assert not cpu_computes_bf16("flags\t\t: fpu sse avx2 avx512f\n")
    with pytest.raises(ConfigurationError, match="precision"):
        MiniLMEmbeddings(precision="float16")


async def test_minilm_runs_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent async calls share one thread (torch grows a malloc arena per thread)."""
    import threading

    from rag_ingest.models import load_embeddings

    model = load_embeddings("minilm")
    threads: set[int] = set()

    def record(texts: list[str]) -> list[list[float]]:
        threads.add(threading.get_ident())
        threading.Event().wait(0.02)  # long enough for the calls to overlap
        return [[0.0] * 384 for _ in texts]

    monkeypatch.setattr(model, "embed_documents", record)
    await asyncio.gather(*(model.aembed_documents(["x"]) for _ in range(8)))
    await model.aembed_query("y")
    assert len(threads) == 1 and threading.get_ident() not in threads


class WindowedEmbeddings(HashEmbeddings):
    """A hash embedder that declares a 64-token input window and counts like a model."""

    max_input_tokens = 64

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [999 if "OVERFLOW" in t else len(t.split()) for t in texts]


@pytest.mark.parametrize("fit", [True, False])
async def test_chunks_fit_the_embedders_window_or_are_flagged(
    seaweed: SeaweedS3, tmp_path: Path, fit: bool
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text(
        "\n\n".join(f"Note {i}: " + "words that fill the chunk nicely. " * 12 for i in range(20))
        + "\n\nOVERFLOW the last note."
    )
    settings = make_settings(
        seaweed, tmp_path, parse={"mode": "thread"}, chunk={"fit_embedder": fit}
    )
    async with DocumentProcessor(settings, embeddings=WindowedEmbeddings()) as p:
        result = await p.process_document(str(text), session_id="w")
        assert p.store is not None
        stored = p.store.vectorstore.get(where={"session_id": "w"})
    assert result.status == "ingested"
    sizes = [m["token_count"] for m in stored["metadatas"]]
    # make_settings chunks at 128 tokens; a 64-token window fits (64 - 2) * 0.75 = 46.
    assert max(sizes) <= 46 if fit else max(sizes) > 46
    flagged = [
        d
        for d, m in zip(stored["documents"], stored["metadatas"], strict=True)
        if m.get("embed_truncated")
    ]
    if fit:  # only the chunk that really overflows
        assert flagged and all("OVERFLOW" in d for d in flagged)
    else:  # unfitted 128-token chunks overflow a 64-token window: flagged, not hidden
        assert any("OVERFLOW" not in d for d in flagged)
    assert any("exceed the embedder's 64-token input" in w for w in result.warnings)


async def test_a_store_batch_never_holds_the_whole_pipeline(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """A batch takes at most half the documents in flight, so the rest keep moving."""
    folder = text_files(tmp_path / "notes", "note", 12, "words and more words. " * 20)
    settings = make_settings(
        seaweed,
        tmp_path,
        parse={"mode": "thread", "workers": 2},
        pipeline={"in_flight": 4, "store_batch_docs": 32, "store_linger": 30.0},
    )
    async with DocumentProcessor(settings) as p:
        report = await p.process_many(str(folder), session_id="waves")
        assert p._writer is not None
        batches = list(p._writer.batches)
    assert report.totals["ingested"] == 12
    assert sum(batches) == 12 and max(batches) <= 2, batches


async def test_media_under_a_prefix_is_skipped_without_a_download(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="media")
    client.put_object(Bucket="media", Key="talks/clip.mp4", Body=b"\x00" * (3 * 1024 * 1024))
    client.put_object(Bucket="media", Key="talks/notes.md", Body=b"# Notes\n\ncanary KOALA\n")
    # A home directory backed up under the prefix: its keys are said by their folder.
    secret = b"[default]\naws_secret_access_key=CANARY-AWS\n"
    client.put_object(Bucket="media", Key="talks/home/.aws/credentials", Body=secret)
    settings = make_settings(seaweed, tmp_path, parse={"mode": "thread", "workers": 1})
    async with DocumentProcessor(settings) as p:
        report = await p.process_many("s3://media/talks/", session_id="m")
    results = by_name(report)
    assert results["notes.md"].status == "ingested"
    clip = results["clip.mp4"]
    assert (clip.status, clip.message) == ("skipped", "a video (.mp4): no text to index")
    assert clip.bytes == 0 and "download" not in clip.seconds  # never fetched
    keys = results["credentials"]
    assert (keys.status, keys.message) == (
        "skipped",
        "stored credentials (credentials): no text to index",
    )
    assert keys.bytes == 0 and "download" not in keys.seconds
    assert report.totals["bytes"] < 1024
    # Named directly it fails, by its folders too, before any download.
    async with DocumentProcessor(settings) as p:
        named = await p.process_document("s3://media/talks/home/.aws/credentials", session_id="m")
    assert (named.status, named.error_type) == ("failed", "NoTextFormatError")
    assert named.bytes == 0 and "download" not in named.seconds


async def test_a_summary_that_failed_is_tried_again_on_the_next_run(tmp_path: Path) -> None:
    from langchain_core.runnables import RunnableLambda

    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\nThe budget grows by four percent next year.\n")
    down = {"now": True}

    def answer(prompt: Any) -> str:
        if down["now"]:
            raise ValueError("the model is down")
        return "The budget grows 4%."

    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash", "max_attempts": 1},
            "parse": {"mode": "thread", "workers": 1},
        }
    )
    async with DocumentProcessor(settings, summarizer=RunnableLambda(answer)) as p:
        first = await p.process_document(doc, session_id="s")
        assert first.status == "ingested" and first.summary is None
        assert any("tried again on the next run" in w for w in first.warnings)
        planned = (await p.process_many([doc], session_id="s", dry_run=True)).results[0]
        assert planned.message == (
            "would be ingested: its summary or an image description is to be tried again"
        )
        down["now"] = False
        second = await p.process_document(doc, session_id="s")
        assert second.status == "ingested" and second.summary == "The budget grows 4%."
        (hit, _), *_ = await p.query("budget", session_id="s")
        assert hit.metadata["summary"] == "The budget grows 4%."
        third = await p.process_document(doc, session_id="s")
        assert third.status == "skipped"  # complete now: unchanged


def _local(tmp_path: Path, **models: Any) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash", "max_attempts": 1, **models},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


# Past one window of 256 tokens: summarized from one (a map call and a reduce call), and
# said so.
_NARROW = {"summary_context_tokens": 256, "summary_max_windows": 1}


def _fleet_report(tmp_path: Path) -> tuple[Path, str]:
    """A Markdown report of 150 paragraphs, and its body."""
    report = tmp_path / "report.md"
    body = "\n\n".join(f"Paragraph {i}: the fleet logs fuel and hours." for i in range(150))
    report.write_text(f"# Fleet\n\n{body}\n")
    return report, body


def _kept_answers(p: DocumentProcessor) -> set[tuple[str, str]]:
    """(session, file name) of each answer the ledger keeps."""
    assert p.ledger is not None
    rows = p.ledger._db.execute("SELECT session_id, source FROM answers").fetchall()
    return {(session, Path(source).name) for session, source in rows}


async def test_a_stopped_document_s_model_calls_are_counted_once(tmp_path: Path) -> None:
    """Stopped midway, a document writes no row, but what its calls cost is kept: the
    session's cost would miss calls that were paid for."""
    from langchain_core.runnables import RunnableLambda

    asked: list[str] = []
    hang_at, hanging = {2}, asyncio.Event()

    async def answer(prompt: Any) -> str:
        asked.append(str(prompt))
        if len(asked) in hang_at:
            hanging.set()
            await asyncio.sleep(60)  # the reduce call hangs: the caller gives up
        return f"Summary {len(asked)}."

    report, body = _fleet_report(tmp_path)
    async with DocumentProcessor(
        _local(tmp_path, timeout=120, **_NARROW), summarizer=RunnableLambda(answer)
    ) as p:
        assert p.ledger is not None
        task = asyncio.ensure_future(p.process_document(report, session_id="a"))
        await asyncio.wait_for(hanging.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert p.ledger.session_rows("a") == []  # no row: it was never ingested nor failed
        # The map call answered; the reduce call was stopped, as a failed call is.
        assert await p.session_usage("a") == {"summary_calls": 1, "summary_failed_calls": 1}
        done = await p.process_document(report, session_id="a")
        assert done.status == "ingested" and done.usage["summary_calls"] == 2 == len(asked) - 2
        used = await p.session_usage("a")
        assert (used["summary_calls"], used["summary_failed_calls"]) == (3, 1)
        assert used["embedded_chunks"] == done.usage["embedded_chunks"] > 0
        # Stopped by its session's delete: written as it stops, then deleted with it.
        hanging.clear()
        hang_at.add(len(asked) + 2)
        other = tmp_path / "other.md"
        other.write_text(f"# Trucks\n\n{body.replace('fleet', 'depot')}\n")
        task = asyncio.ensure_future(p.process_document(other, session_id="c"))
        await asyncio.wait_for(hanging.wait(), 30)
        await p.delete_session("c")
        assert (await task).error_type == "SessionDeletedError"
        assert await p.session_usage("c") == {}

        # Stopped once its write is queued, the write (and its cost) still goes in once.
        assert p._writer is not None
        committing, real = threading.Event(), p._writer._commit

        def held(writes: Any) -> None:
            committing.wait(30)
            real(writes)

        p._writer._commit = held  # type: ignore[method-assign]
        notes = tmp_path / "notes.md"
        notes.write_text("# Notes\n\nThe depot opens at six.\n")
        task = asyncio.ensure_future(p.process_document(notes, session_id="b"))
        while not p._writer._committing:
            await asyncio.sleep(0.01)
        task.cancel()
        committing.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await p._writer.settle("b")  # the batch being committed is waited for
        (row,) = p.ledger.session_rows("b")
        assert row.status == "ingested"
        assert row.usage["embedded_chunks"] == len(row.chunk_ids) == 1
        assert row.usage["summary_calls"] == 1


async def test_closing_waits_for_a_commit_in_flight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store and ledger were closed under a batch still committing in its thread:
    Chroma's client failed the write with EBADF, and it was retried against them."""
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe depot opens at six. CANARY-DEPOT\n")
    committing = threading.Event()
    p = DocumentProcessor(_local(tmp_path))
    try:
        await p.start()
        assert p._writer is not None
        real = p._writer._commit

        def held(writes: Any) -> None:
            committing.wait(30)
            time.sleep(0.2)  # still committing when the close begins
            real(writes)

        p._writer._commit = held  # type: ignore[method-assign]
        task = asyncio.ensure_future(p.process_document(notes, session_id="s"))
        while not p._writer._committing:
            await asyncio.sleep(0.01)
        task.cancel()
        committing.set()
    finally:
        await p.aclose()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    async with DocumentProcessor(_local(tmp_path)) as again:
        assert again.ledger is not None
        (row,) = again.ledger.session_rows("s")
        assert row.status == "ingested" and len(row.chunk_ids) == 1
        (hit, _), *_ = await again.query("CANARY-DEPOT", session_id="s")
        assert "CANARY-DEPOT" in hit.page_content


async def test_a_summary_is_kept_and_serves_the_same_text_again(tmp_path: Path) -> None:
    from langchain_core.runnables import RunnableLambda

    asked: list[str] = []

    def answer(prompt: Any) -> str:
        asked.append(str(prompt))
        return f"Summary {len(asked)}."

    report, body = _fleet_report(tmp_path)
    async with DocumentProcessor(
        _local(tmp_path, **_NARROW), summarizer=RunnableLambda(answer)
    ) as p:
        first = await p.process_document(report, session_id="a")
        calls = len(asked)
        assert first.status == "ingested" and calls == 2 and first.reused_answers == 0
        # One map call and one reduce call; a RunnableLambda reports no tokens.
        assert first.usage == {
            "summary_calls": 2,
            "embedded_chunks": first.total_chunks,
            "embedded_tokens": first.usage["embedded_tokens"],
        }
        assert first.usage["embedded_tokens"] >= first.token_count
        note = next(w for w in first.warnings if w.startswith("summary from 1 of"))
        again = await p.process_document(report, session_id="a", reingest=True)
        assert again.status == "ingested" and len(asked) == calls
        assert again.reused_answers == 1 and again.summary == first.summary
        assert again.usage == {}  # its summary kept, its vectors stored
        assert note in again.warnings
        (hit, _), *_ = await p.query("fleet fuel", session_id="a")
        assert hit.metadata["summary"] == first.summary
        # The same text under another name, in another session: no call either.
        twin = tmp_path / "copy.md"
        twin.write_bytes(report.read_bytes())
        other = await p.process_document(twin, session_id="b")
        assert other.summary == first.summary and len(asked) == calls
        # A source's own kept answer comes first (a model may answer the same question
        # differently), and is not written again; another's, kept earlier, is passed by.
        assert p.ledger is not None
        db, kept = p.ledger._db, p.ledger.keep_answer
        (own,) = db.execute("SELECT * FROM answers WHERE session_id = 'a'").fetchall()
        db.execute("DELETE FROM answers WHERE session_id = 'a'")
        db.execute("UPDATE answers SET answer = ?", (json.dumps({"text": "Another."}),))
        db.execute("INSERT INTO answers VALUES (?, ?, ?, ?)", own)
        written: list[str] = []
        p.ledger.keep_answer = lambda *a: written.append(a[1]) or kept(*a)  # type: ignore[method-assign]
        again = await p.process_document(report, session_id="a", reingest=True)
        assert again.summary == first.summary and written == [] and len(asked) == calls
        other = await p.process_document(twin, session_id="b", reingest=True)
        assert other.summary == "Another." and written == []
        p.ledger.keep_answer = kept  # type: ignore[method-assign]
        report.write_text(f"# Fleet\n\n{body}\n\nParagraph 150: two trucks were sold.\n")
        changed = await p.process_document(report, session_id="a")
        assert changed.summary == "Summary 4." and len(asked) == calls + 2
        # The changed text's summary replaced the old one; the twin keeps its own.
        assert _kept_answers(p) == {("a", "report.md"), ("b", "copy.md")}
        await p.delete_session("b")
        assert _kept_answers(p) == {("a", "report.md")}
        # A kept answer that is not what was written is asked for again.
        assert p.ledger is not None
        p.ledger._db.execute("UPDATE answers SET answer = '{\"notes\": []}'")
        mended = await p.process_document(report, session_id="a", reingest=True)
        assert mended.reused_answers == 0 and mended.summary == "Summary 6."
    async with DocumentProcessor(
        _local(tmp_path, reuse_answers=False, **_NARROW), summarizer=RunnableLambda(answer)
    ) as p:
        fresh = await p.process_document(report, session_id="a", reingest=True)
        assert fresh.reused_answers == 0 and len(asked) == calls + 6


class _Sizes:
    """A stand-in multimodal model that names a picture by its size in bytes."""

    def __init__(self, says: str = "", delay: float = 0.0) -> None:
        self.calls = 0
        self.down = False
        self.says = says
        self.delay = delay

    async def ainvoke(self, messages: list[Any]) -> Any:
        import base64

        from langchain_core.messages import AIMessage

        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.down:
            raise ValueError("the vision model is down")
        url = messages[0].content[1]["image_url"]["url"]
        size = len(base64.b64decode(url.split(",", 1)[1]))
        return AIMessage(
            content=f"A CANARY-PICTURE of {size} bytes.{self.says}",
            usage_metadata={"input_tokens": 800, "output_tokens": 20, "total_tokens": 820},
        )


async def test_a_picture_is_described_once_and_kept_for_the_next_ingest(tmp_path: Path) -> None:
    logo, chart = docs.photo(), docs.photo(300, 200)
    deck = tmp_path / "deck.docx"
    deck.write_bytes(docs.docx_with_pictures(["Plans CANARY-DECK", logo, "More", logo, chart]))
    # The model reads a key out of each picture: masked before the answer is kept.
    vision = _Sizes(says=" It reads AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986.")
    masked = (
        "credentials masked in the descriptions of its images: AWS access key ID (3) "
        "(chunk.mask_credentials)"
    )
    async with DocumentProcessor(_local(tmp_path), image_describer=vision) as p:
        first = await p.process_document(deck, session_id="a")
        # The logo, twice in the document, is described once.
        assert first.status == "ingested" and vision.calls == 2 and first.reused_answers == 0
        assert masked in first.warnings
        assert first.usage["image_calls"] == 2
        assert first.usage["image_input_tokens"] == 1600
        assert first.usage["image_output_tokens"] == 40
        # Its text edited, its pictures not: they are not described again.
        deck.write_bytes(
            docs.docx_with_pictures(["Plans CANARY-DECK v2", logo, "More", logo, chart])
        )
        second = await p.process_document(deck, session_id="a")
        assert second.status == "ingested" and vision.calls == 2
        assert second.reused_answers == 2 and masked in second.warnings
        # Only the changed text is embedded; no picture is asked for.
        assert "image_calls" not in second.usage
        assert 0 < second.usage["embedded_chunks"] < second.total_chunks
        assert second.total_chunks == first.total_chunks
        hits = await p.query("CANARY-PICTURE bytes", session_id="a", k=5)
        described = {d.page_content for d, _ in hits if "CANARY-PICTURE" in d.page_content}
        assert len(described) == 2 and all(
            d.startswith("[Image on the document] A CANARY-PICTURE of ")
            and d.endswith(" bytes. It reads AWS_ACCESS_KEY_ID=AKIA****************.")
            for d in described
        )
        assert p.ledger is not None
        kept = p.ledger._db.execute("SELECT answer FROM answers").fetchall()
        assert len(kept) == 2 and not any("AKIA2E0A8F3B244C9986" in a for (a,) in kept)
        # A new chart: only it is described, and the old one's answer is dropped.
        deck.write_bytes(
            docs.docx_with_pictures(["Plans", logo, "More", logo, docs.photo(200, 100)])
        )
        third = await p.process_document(deck, session_id="a")
        assert vision.calls == 3 and third.reused_answers == 1
        assert len(p.ledger._db.execute("SELECT key FROM answers").fetchall()) == 2
        # A picture that fails is said once, with how often the document shows it.
        vision.down = True
        deck.write_bytes(
            docs.docx_with_pictures(["Plans", docs.photo(160, 120), "x", docs.photo(160, 120)])
        )
        fourth = await p.process_document(deck, session_id="a")
        assert fourth.status == "ingested" and vision.calls == 4
        assert fourth.usage["image_failed_calls"] == 1  # a ValueError: not tried again
        assert "image on the document (and 1 more of the same picture): " in "\n".join(
            fourth.warnings
        )


async def test_documents_in_flight_showing_one_picture_ask_for_it_once(tmp_path: Path) -> None:
    logo = docs.photo()
    folder = tmp_path / "decks"
    folder.mkdir()
    for n in range(3):
        (folder / f"deck{n}.docx").write_bytes(docs.docx_with_pictures([f"Deck {n}", logo]))
    # A slow model: the other decks reach the picture while the first one's is asked.
    vision = _Sizes(delay=1.0)
    async with DocumentProcessor(_local(tmp_path), image_describer=vision) as p:
        report = await p.process_many([folder], session_id="a")
    assert report.totals["ingested"] == 3 and vision.calls == 1
    assert report.totals["reused_answers"] == 2


async def test_a_collection_refuses_an_embedder_other_than_its_own(tmp_path: Path) -> None:
    from rag_ingest.errors import ConfigurationError

    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nThe canary is IBIS.\n")

    def settings(collection: str = "rag_ingest") -> Settings:
        return Settings.model_validate(
            {
                "progress": False,
                "store": {"persist_dir": str(tmp_path / "store"), "collection": collection},
                "parse": {"mode": "thread", "workers": 1},
            }
        )

    async with DocumentProcessor(settings(), embeddings=HashEmbeddings()) as p:
        assert (await p.process_document(doc, session_id="s")).status == "ingested"
    # Same dimension, another model: its queries would search hash vectors in silence.
    async with DocumentProcessor(settings(), embeddings=CountingEmbeddings()) as p:
        with pytest.raises(ConfigurationError, match="holds vectors from the embedder 'hash'"):
            await p.process_document(doc, session_id="s")
        with pytest.raises(ConfigurationError, match="'hash'"):
            await p.process_many([doc], session_id="s")
        with pytest.raises(ConfigurationError, match="'hash'"):
            await p.query("IBIS", session_id="s")
        with pytest.raises(ConfigurationError, match="'hash'"):
            p.as_retriever(session_id="s")
        assert (await p.verify_session("s")).consistent  # no vectors compared: allowed
        assert await p.delete_session("s") == 1
    async with DocumentProcessor(settings("other"), embeddings=CountingEmbeddings()) as p:
        assert (await p.process_document(doc, session_id="s")).status == "ingested"
    async with DocumentProcessor(settings(), embeddings=HashEmbeddings()) as p:
        assert (await p.process_document(doc, session_id="t")).status == "ingested"


async def test_a_batch_larger_than_the_staging_disk_waits_for_room(
    seaweed: SeaweedS3, tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    """Downloads in flight filled a small temp disk, and ENOSPC failed them as a bare
    OSError ("[Errno 28]", logged with a traceback). They now wait for staged files to
    go; only a file that does not fit with nothing else staged fails, as DiskFullError."""
    staging = small_disk(3 * 2**19)  # 1.5 MiB (small files: their chunking took 25 s)
    client = seaweed.client()
    client.create_bucket(Bucket="fulldisk")
    for i in range(6):  # 0.54 MB each: two fit at once, four downloads try
        client.put_object(
            Bucket="fulldisk", Key=f"big{i}.txt", Body=f"canary {i}\n".encode() * 60_000
        )
    client.put_object(Bucket="fulldisk", Key="huge.txt", Body=b"larger than the disk\n" * 100_000)
    settings = make_settings(seaweed, tmp_path, temp_dir=str(staging), pipeline={"downloads": 4})
    async with DocumentProcessor(settings) as processor:
        report = await processor.process_many(["s3://fulldisk/"], session_id="s")
        hits = await processor.query("canary 5", session_id="s", k=1)
    results = by_name(report)
    assert {name: r.status for name, r in results.items()} == {
        **{f"big{i}.txt": "ingested" for i in range(6)},
        "huge.txt": "failed",
    }
    assert results["huge.txt"].error_type == "DiskFullError"
    assert f"no space left in {staging}" in (results["huge.txt"].message or "")
    assert hits and hits[0][0].metadata["filename"] == "big5.txt"
    assert list(staging.iterdir()) == []
    mine = staging / "mine"  # a caller's own destination: no advice about temp_dir
    mine.mkdir()
    async with AsyncS3Client(settings) as s3:
        with pytest.raises(DiskFullError, match="free some space there"):
            await s3.download("s3://fulldisk/huge.txt", mine / "huge.txt")
    assert list(mine.iterdir()) == []


async def test_a_download_waits_for_a_staged_upload_to_go_on_a_full_disk(
    seaweed: SeaweedS3, tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    """An upload's spooled file counted for nothing: a download that found the staging
    disk full while only uploads were staged failed at once with DiskFullError."""
    staging = small_disk(6 * 2**20)
    client = seaweed.client()
    client.create_bucket(Bucket="uploadfull")
    client.put_object(Bucket="uploadfull", Key="big.txt", Body=b"canary download\n" * 250_000)
    settings = make_settings(seaweed, tmp_path, temp_dir=str(staging))
    processor = DocumentProcessor(settings)
    processor.register_parser(".slow", "tests.hostile_parsers:slow_text")
    async with processor as p:
        held = asyncio.ensure_future(
            p.process_document(Upload(b"canary upload\n" * 230_000, "held.slow"), session_id="s")
        )
        while not any(staging.iterdir()):  # the upload's 3.2 MB are on the disk
            await asyncio.sleep(0.01)
        download = await p.process_document("s3://uploadfull/big.txt", session_id="s")
        upload = await held
    assert (upload.status, download.status) == ("ingested", "ingested"), download.message
    assert list(staging.iterdir()) == []


async def test_a_very_long_document_is_summarized_from_a_spread_of_windows(
    tmp_path: Path,
) -> None:
    from langchain_core.runnables import RunnableLambda

    doc = tmp_path / "manual.txt"
    doc.write_text("\n\n".join(f"Part {i}. " + "the pump needs oil " * 60 for i in range(40)))
    prompts: list[str] = []

    def answer(prompt: Any) -> str:
        prompts.append(str(prompt))
        return "About pumps."

    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {
                "embedder": "hash",
                "summary_context_tokens": 1000,
                "summary_max_windows": 3,
            },
            "parse": {"mode": "thread", "workers": 1},
        }
    )
    async with DocumentProcessor(settings, summarizer=RunnableLambda(answer)) as p:
        result = await p.process_document(doc, session_id="s")
    assert result.status == "ingested" and result.summary == "About pumps."
    assert len(prompts) == 3 + 1  # three windows, then one reduce
    assert any(w.startswith("summary from 3 of ") for w in result.warnings), result.warnings


async def test_staged_files_are_removed_off_the_event_loop(
    seaweed: SeaweedS3,
    corpus_bucket: str,
    tmp_path: Path,
    unlinks: Callable[[Path], list[tuple[Path, int]]],
) -> None:
    """An unlink on a busy disk stalled the loop 36 ms in the ingest benchmark: a
    download's and an upload's staged files go on the I/O threads."""
    import threading

    staging = tmp_path / "tmp"
    removed = unlinks(staging)
    settings = make_settings(seaweed, tmp_path, parse={"mode": "thread"})
    async with DocumentProcessor(settings) as p:
        downloaded = await p.process_document(
            f"s3://{corpus_bucket}/docs/readme.md", session_id="s"
        )
        uploaded = await p.process_document(
            Upload(b"# Notes\n\nCANARY upload.\n", "notes.md"), session_id="s"
        )
    assert downloaded.status == uploaded.status == "ingested"
    assert len({path for path, _ in removed}) >= 2  # the download's file and the upload's
    assert all(ident != threading.get_ident() for _, ident in removed)
    assert [p for p in staging.rglob("*") if p.is_file()] == []


async def test_a_blog_page_is_ingested_without_the_chrome_guessed(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """parse.html_chrome = "guess" reaches the parser workers, and turning it back off
    re-ingests the page with its chrome."""
    page = tmp_path / "blog.html"
    page.write_text(docs.blog_page())

    async def texts(p: DocumentProcessor) -> str:
        got = p.store.vectorstore._collection.get(where={"session_id": "s"})
        return " ".join(got["documents"])

    guess = make_settings(seaweed, tmp_path, parse={"html_chrome": "guess"})
    async with DocumentProcessor(guess, embeddings=HashEmbeddings()) as p:
        assert (await p.process_document(page, session_id="s")).status == "ingested"
        text = await texts(p)
        assert docs.BLOG_ARTICLE[2] in text and "All rights reserved" not in text, text
    async with DocumentProcessor(
        make_settings(seaweed, tmp_path), embeddings=HashEmbeddings()
    ) as p:
        assert (await p.process_document(page, session_id="s")).status == "ingested"
        text = await texts(p)
        assert docs.BLOG_ARTICLE[2] in text and "All rights reserved" in text, text


async def test_turning_attachments_off_re_ingests_without_them(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """The processor's fingerprint names the parse settings that change a document's text
    when they are off their defaults: turned off, an unchanged PDF had been skipped, its
    attachment's chunks left in the store."""
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(
        docs.pdf_with_attachments(
            docs.pdf_bytes(["CANARY-PAGE the report itself, page one."]),
            {"notes.md": b"# Notes\n\nCANARY-ATTACHED notes that came with it."},
        )
    )

    async def chunks(p: DocumentProcessor) -> list[str]:
        got = p.store.vectorstore._collection.get(where={"session_id": "s"})
        return sorted(str(m.get("attachment")) for m in got["metadatas"])

    on = make_settings(seaweed, tmp_path)
    async with DocumentProcessor(on, embeddings=HashEmbeddings()) as p:
        default = p.fingerprint
        # As the last release made it: ledger rows written by it stay current.
        before = json.dumps(
            {
                "chunk": p._chunk_settings.model_dump(
                    mode="json", exclude={"embed_header", "mask_credentials"}
                ),
                "pdf": p.settings.parse.pdf_mode,
                "embedder": p.embedder_name,
                "summaries": False,
                "images": False,
                "plugins": [],
            },
            sort_keys=True,
        )
        assert default == hashlib.sha256(before.encode()).hexdigest()[:16]
        assert (await p.process_document(pdf, session_id="s")).status == "ingested"
        assert await chunks(p) == ["None", "notes.md"]
        assert (await p.process_document(pdf, session_id="s")).status == "skipped"
    off = make_settings(seaweed, tmp_path, parse={"attachments": False})
    async with DocumentProcessor(off, embeddings=HashEmbeddings()) as p:
        assert p.fingerprint != default
        assert (await p.process_document(pdf, session_id="s")).status == "ingested"
        assert await chunks(p) == ["None"]
    # Back on its default, the fingerprint is the one ledgers were written with.
    explicit = make_settings(seaweed, tmp_path, parse={"attachments": True})
    async with DocumentProcessor(explicit, embeddings=HashEmbeddings()) as p:
        assert p.fingerprint == default
    changed = {"pdf_drop_running_lines": False, "ocr_pictures": False, "ocr_dpi": 200}
    changed |= {"xlsx_stream_size": 0, "markup_fast_size": 0, "html_chrome": "guess"}
    for setting, value in changed.items():
        kept = make_settings(seaweed, tmp_path, parse={setting: value})
        async with DocumentProcessor(kept, embeddings=HashEmbeddings()) as p:
            assert p.fingerprint != default, setting
