"""Uploads: bytes or an open file under their own name (a web backend's file upload)
become a session's document with that name, kept once, replaced when a new version
comes, and leave no temp file behind."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag_ingest import ConfigurationError, RagIngestLoader, Upload
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from tests import docs
from tests.conftest import IN_PROCESS_STORE

pytestmark = pytest.mark.integration


class CountingEmbeddings(HashEmbeddings):
    calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        CountingEmbeddings.calls += 1
        return super().embed_documents(texts)


class AsyncFile:
    """What Starlette's ``UploadFile`` offers: async read and seek."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    async def read(self, size: int = -1) -> bytes:
        return self._f.read(size)

    async def seek(self, offset: int) -> int:
        return self._f.seek(offset)


def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "temp_dir": str(tmp_path / "staging"),
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


def ids_of(p: DocumentProcessor, source: str) -> set[str]:
    assert p.store is not None
    found = p.store.ids_for("chat", source)
    assert found is not None
    return found


async def test_an_upload_is_named_kept_once_and_replaced_by_a_new_version(
    tmp_path: Path,
) -> None:
    pdf = docs.pdf_bytes(["Quarterly canary PELICAN on page one", "page two ORCHID"])
    async with DocumentProcessor(settings(tmp_path), embeddings=CountingEmbeddings()) as p:
        # A browser may send a path; the name is what is kept.
        first = await p.process_document(
            Upload(io.BytesIO(pdf), "C:\\Users\\ann\\Q3 report.pdf"), session_id="chat"
        )
        assert first.status == "ingested", first.message
        assert first.filename == "Q3 report.pdf" and first.file_type == "pdf"
        assert first.source == "upload://Q3%20report.pdf"
        assert first.seconds["upload"] >= 0
        old = ids_of(p, first.source)
        assert len(old) == first.total_chunks > 0
        hits = await p.query("PELICAN", session_id="chat", k=1)
        meta = hits[0][0].metadata
        assert meta["filename"] == "Q3 report.pdf" and meta["page_start"] == 1

        calls = CountingEmbeddings.calls
        again = await p.process_document(Upload(pdf, "Q3 report.pdf"), session_id="chat")
        assert again.status == "skipped" and CountingEmbeddings.calls == calls

        new_pdf = docs.pdf_bytes(["Quarterly canary HERON replaces the old one"])
        upload = Upload(AsyncFile(new_pdf), "Q3 report.pdf")
        changed = await p.submit(upload, session_id="chat")
        assert changed.status == "ingested", changed.message
        repeated = await p.submit(upload, session_id="chat")  # read from the start again
        assert repeated.status == "skipped", repeated.message
        new = ids_of(p, first.source)
        assert new and not new & old  # nothing of the old version is left
        texts = [d.page_content for d, _ in await p.query("canary", session_id="chat", k=10)]
        assert any("HERON" in t for t in texts) and not any("PELICAN" in t for t in texts)
    assert os.listdir(tmp_path / "staging") == []


async def test_the_same_file_object_given_again_is_read_again_not_found_empty(
    tmp_path: Path,
) -> None:
    with tempfile.SpooledTemporaryFile() as spooled:  # what FastAPI's UploadFile.file is
        spooled.write(b"# Notes\n\nThe canary is WALRUS.\n")
        spooled.seek(0)
        upload = Upload(spooled, "notes.md")
        async with DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings()) as p:
            first = await p.process_document(upload, session_id="chat")
            second = await p.process_document(upload, session_id="chat")
            assert first.status == "ingested" and first.file_type == "markdown"
            # Read to its end by the first call: without going back, the second would
            # be an empty file, and an empty file removes the document's chunks.
            assert second.status == "skipped" and second.total_chunks == first.total_chunks
            assert len(ids_of(p, upload.source_id)) == first.total_chunks


async def test_own_identities_keep_same_named_uploads_apart(tmp_path: Path) -> None:
    async with DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings()) as p:
        report = await p.process_many(
            [
                Upload(b"Alice's notes: OTTER", "notes.txt", source_id="upload://alice/notes"),
                Upload(b"Bob's notes: BADGER", "notes.txt", source_id="upload://bob/notes"),
                Upload(b"dup of Bob's", "notes.txt", source_id="upload://bob/notes"),
            ],
            session_id="chat",
        )
        # Each identity once: a second, different upload under Bob's is refused, not dropped.
        assert report.totals["ingested"] == 2 and report.totals["failed"] == 1
        assert [r.error_type for r in report.results if r.status == "failed"] == [
            "ConfigurationError"
        ]
        hits = await p.query("notes", session_id="chat", k=5)
        assert {d.metadata["source"] for d, _ in hits} == {
            "upload://alice/notes",
            "upload://bob/notes",
        }
        assert {d.metadata["filename"] for d, _ in hits} == {"notes.txt"}


async def test_a_text_mode_file_fails_that_upload_with_the_reason(tmp_path: Path) -> None:
    text = tmp_path / "a.md"
    text.write_text("# words\n")
    async with DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings()) as p:
        with open(text) as f:  # text mode: a caller's mistake, on purpose
            result = await p.process_document(Upload(f, "a.md"), session_id="chat")
    assert result.status == "failed" and result.error_type == "ConfigurationError"
    assert "binary mode" in (result.message or "")
    assert os.listdir(tmp_path / "staging") == []


def test_bad_uploads_are_refused_when_made() -> None:
    for data, name in [("text", "a.txt"), (b"x", ""), (b"x", "a/.."), (b"x", 5)]:
        with pytest.raises(ConfigurationError):
            Upload(data, name)
    for source_id in (" ", "s3://bucket/a.txt", "file:///tmp/a.txt", "HTTPS://host/a"):
        with pytest.raises(ConfigurationError):
            Upload(b"x", "a.txt", source_id=source_id)
    assert Upload(b"x", "../../etc/passwd").filename == "passwd"
    assert "secret" not in repr(Upload(b"secret bytes", "a.txt"))


def test_the_loader_takes_uploads(tmp_path: Path) -> None:
    s = Settings.model_validate(
        {"progress": False, "temp_dir": str(tmp_path), "parse": {"mode": "thread"}}
    )
    pdf = docs.pdf_bytes(["first page FALCON", "second page EAGLE"])
    loaded: list[Any] = RagIngestLoader(
        Upload(pdf, "birds.pdf"), mode="pages", settings=s, on_error="raise"
    ).load()
    assert [d.metadata["page"] for d in loaded] == [1, 2]
    assert {d.metadata["filename"] for d in loaded} == {"birds.pdf"}
    assert {d.metadata["source"] for d in loaded} == {"upload://birds.pdf"}
    assert "FALCON" in loaded[0].page_content
    assert os.listdir(tmp_path) == []


async def test_a_stream_read_once_is_refused_again_not_taken_as_empty(tmp_path: Path) -> None:
    read, write = os.pipe()  # what standard input is: no way back
    os.write(write, b"# Piped\n\nThe canary is GECKO.\n")
    os.close(write)
    with open(read, "rb") as pipe:
        upload = Upload(pipe, "piped.md")
        async with DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings()) as p:
            first = await p.process_document(upload, session_id="chat")
            again = await p.process_document(upload, session_id="chat")
            assert first.status == "ingested"
            assert again.status == "failed" and again.error_type == "ConfigurationError"
            assert "read already" in (again.message or "")
            # The document is still there: 0 bytes would have removed its chunks.
            assert len(ids_of(p, upload.source_id)) == first.total_chunks


@pytest.mark.parametrize("kind", ["bytes", "file", "async"])
async def test_an_upload_over_the_size_limit_fails_and_keeps_nothing(
    tmp_path: Path, kind: str
) -> None:
    # A web backend's client must not fill the disk: the limit objects have holds here.
    s = Settings.model_validate(
        {**settings(tmp_path).model_dump(), "limits": {"max_object_size": 3 * 1024 * 1024}}
    )
    big = b"word " * (800 * 1024)  # 4 MB, so past the limit in the spool's 4th block
    data: Any = {"bytes": big, "file": io.BytesIO(big), "async": AsyncFile(big)}[kind]
    async with DocumentProcessor(s, embeddings=HashEmbeddings()) as p:
        too_big = await p.process_document(Upload(data, "big.txt"), session_id="chat")
        fits = await p.process_document(Upload(big[:1000], "small.txt"), session_id="chat")
    assert too_big.status == "failed" and too_big.error_type == "DocumentTooLargeError"
    assert "max_object_size" in (too_big.message or "")
    assert fits.status == "ingested"
    assert os.listdir(tmp_path / "staging") == []
    loader = RagIngestLoader(Upload(big, "big.txt"), settings=s, on_error="skip")
    assert loader.load() == [] and "DocumentTooLargeError" in str(loader.errors)
    assert os.listdir(tmp_path / "staging") == []


async def test_two_uploads_with_one_name_in_a_batch_are_not_one(tmp_path: Path) -> None:
    # Two files named notes.md from two folders, one request: before, the second was
    # taken for the first ("each source once") and dropped without a word.
    first = Upload(b"# Notes\n\nThe canary is HERON.\n", "notes.md")
    second = Upload(b"# Notes\n\nThe canary is IBIS.\n", "notes.md")
    async with DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings()) as p:
        report = await p.process_many([first, second, first], session_id="chat")
        kept = await p.process_many(
            [Upload(second.data, "notes.md", source_id="upload://b/notes.md")], session_id="chat"
        )
    assert sorted((r.status, r.error_type) for r in report.results) == [
        ("failed", "ConfigurationError"),
        ("ingested", None),
    ]
    refused = next(r for r in report.results if r.status == "failed")
    assert "source_id" in (refused.message or "") and refused.filename == "notes.md"
    assert report.listed == 2  # the same upload object named twice is still one
    assert kept.results[0].status == "ingested"
    loader = RagIngestLoader([first, second], settings=settings(tmp_path))
    assert len(loader.load()) == 1 and "same identity" in str(loader.errors)


async def test_an_upload_larger_than_the_staging_disk_fails_disk_full(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    staging = small_disk(2**20)
    config = settings(tmp_path).model_copy(update={"temp_dir": staging})
    async with DocumentProcessor(config, embeddings=HashEmbeddings()) as p:
        result = await p.process_document(Upload(b"a line\n" * 2**18, "big.txt"), session_id="s")
    assert result.error_type == "DiskFullError"
    assert f"no space left in {staging}" in (result.message or "")
    assert "the upload big.txt" in (result.message or "")
    assert list(staging.iterdir()) == []
