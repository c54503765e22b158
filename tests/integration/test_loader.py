"""The LangChain loader inside LangChain flows, sync and async."""

from __future__ import annotations

import asyncio
import gzip
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag_ingest.errors import EncryptedDocumentError
from rag_ingest.loader import RagIngestLoader
from rag_ingest.models import HashEmbeddings
from rag_ingest.parsers.pool import KeptPool, ParserPool, kept_pool
from rag_ingest.settings import Settings
from rag_ingest.staging import sweep
from rag_ingest.testing import SeaweedS3
from tests import docs
from tests.conftest import long_documents, until_parsing

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loader_bucket(seaweed: SeaweedS3) -> str:
    client = seaweed.client()
    client.create_bucket(Bucket="loader")
    corpus = docs.corpus()
    for name in ("reports/annual.pdf", "reports/long.pdf", "docs/deck.pptx", "code/app.py"):
        client.put_object(Bucket="loader", Key=name, Body=corpus[name])
    client.put_object(
        Bucket="loader", Key="bad/locked.pdf", Body=docs.pdf_bytes(["x"], encrypt=True)
    )
    # Keys, by their folder's name: never loaded when a listing finds them.
    secret = b"[default]\naws_secret_access_key=CANARY-AWS\n"
    client.put_object(Bucket="loader", Key="home/.aws/credentials", Body=secret)
    return "loader"


def settings(seaweed: SeaweedS3, **parts: Any) -> Settings:
    return Settings.model_validate(
        {
            "s3": seaweed.settings_dict(),
            "progress": False,
            "parse": {"mode": "thread"},
            "chunk": {"chunk_tokens": 128, "overlap_tokens": 16, "whole_document_tokens": 64},
            **parts,
        }
    )


def test_is_a_base_loader_with_native_async() -> None:
    assert issubclass(RagIngestLoader, BaseLoader)
    assert RagIngestLoader.alazy_load is not BaseLoader.alazy_load
    with pytest.raises(ValueError):
        RagIngestLoader("s3://b/k", mode="sentences")  # type: ignore[arg-type]


def test_chunks_pages_and_documents_sync(seaweed: SeaweedS3, loader_bucket: str) -> None:
    chunks = RagIngestLoader(f"s3://{loader_bucket}/reports/", settings=settings(seaweed)).load()
    assert len(chunks) > 4
    assert {d.metadata["filename"] for d in chunks} == {"annual.pdf", "long.pdf"}
    assert all("page_start" in d.metadata and "chunk_index" in d.metadata for d in chunks)

    pages = RagIngestLoader(
        f"s3://{loader_bucket}/reports/annual.pdf", mode="pages", settings=settings(seaweed)
    ).load()
    assert [d.metadata["page"] for d in pages] == [1, 2]
    assert "CANARY-PDF-PAGE-TWO" in pages[1].page_content
    assert (
        pages[0].metadata["source"] == "s3://loader/reports/annual.pdf"
        and pages[0].metadata["version"]
    )

    whole = RagIngestLoader(
        [f"s3://{loader_bucket}/docs/deck.pptx", f"s3://{loader_bucket}/code/app.py"],
        mode="document",
        settings=settings(seaweed),
    ).load()
    assert [d.metadata["file_type"] for d in whole] == ["pptx", "code"]
    assert whole[1].metadata["language"] == "python"
    # A chunk's start_index/end_index slice it out of its document's text.
    long_pdf = f"s3://{loader_bucket}/reports/long.pdf"
    text = RagIngestLoader(long_pdf, mode="document", settings=settings(seaweed)).load()
    pieces = [d for d in chunks if d.metadata["filename"] == "long.pdf"]
    assert len(pieces) > 4
    for d in pieces:
        start, end = d.metadata["start_index"], d.metadata["end_index"]
        assert text[0].page_content[start:end] == d.page_content


async def test_alazy_load_async(seaweed: SeaweedS3, loader_bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "notes.md"
    local.write_bytes(b"# Notes\n\nCANARY-LOCAL local file.\n")
    loader = RagIngestLoader(
        [str(local), f"s3://{loader_bucket}/code/app.py"], settings=settings(seaweed)
    )
    got = [d async for d in loader.alazy_load()]
    assert [d.metadata["filename"] for d in got] == ["notes.md", "app.py"]
    assert got[0].metadata["source"].startswith("file://")
    assert (await loader.aload())[1].page_content == got[1].page_content


async def test_a_download_is_removed_off_the_callers_loop(
    seaweed: SeaweedS3,
    loader_bucket: str,
    tmp_path: Path,
    unlinks: Callable[[Path], list[tuple[Path, int]]],
) -> None:
    import threading

    removed = unlinks(tmp_path)
    loader = RagIngestLoader(
        f"s3://{loader_bucket}/code/app.py", settings=settings(seaweed, temp_dir=str(tmp_path))
    )
    assert {d.metadata["filename"] async for d in loader.alazy_load()} == {"app.py"}
    assert removed and all(ident != threading.get_ident() for _, ident in removed)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_a_load_stages_in_its_own_directory_and_removes_a_dead_ones(
    seaweed: SeaweedS3, loader_bucket: str, tmp_path: Path
) -> None:
    # What a load SIGKILLed mid-download leaves: its directory, its lock free.
    dead = tmp_path / "rag-ingest-run-dead"
    dead.mkdir()
    (dead / ".lock").write_text("")
    (dead / "rag-ingest-x.part").write_bytes(b"\0" * 4096)
    loader = RagIngestLoader(
        f"s3://{loader_bucket}/code/app.py", settings=settings(seaweed, temp_dir=str(tmp_path))
    )
    staged: list[Path] = []
    async for doc in loader.alazy_load():
        staged += tmp_path.glob("rag-ingest-run-*")
        assert doc.metadata["filename"] == "app.py"
    assert [p.name for p in staged] != ["rag-ingest-run-dead"] and len(staged) == 1
    assert list(tmp_path.iterdir()) == []


def test_what_a_killed_loaders_workers_staged_goes_at_the_next_start(tmp_path: Path) -> None:
    corpus, temp = tmp_path / "corpus", tmp_path / "temp"
    corpus.mkdir()
    long_documents(corpus, 40)
    script = (
        "import sys\n"
        "from rag_ingest import RagIngestLoader, Settings\n"
        "s = Settings.model_validate({'progress': False, 'temp_dir': sys.argv[2],"
        " 'parse': {'mode': 'process', 'workers': 1}})\n"
        "RagIngestLoader(sys.argv[1], settings=s).load()\n"
    )
    command = [sys.executable, "-c", script, str(corpus), str(temp)]
    process = until_parsing(command, dict(os.environ), temp)
    process.send_signal(signal.SIGKILL)  # no clean-up runs: the OOM killer's way
    process.wait()
    assert list(temp.glob("rag-ingest-run-*/rag-ingest-parse-*"))
    # The next start's sweep removes its directory, parse scratch and all (again while
    # its orphaned worker, until it sees its parent gone, may still write there).
    deadline = time.monotonic() + 60
    while list(temp.iterdir()) and time.monotonic() < deadline:
        sweep(temp)
        time.sleep(0.1)
    assert list(temp.iterdir()) == []


def test_error_policy(seaweed: SeaweedS3, loader_bucket: str) -> None:
    loader = RagIngestLoader(f"s3://{loader_bucket}/", mode="document", settings=settings(seaweed))
    loaded = loader.load()
    assert len(loaded) == 4  # not the credentials
    assert [(e.source, e.error_type) for e in loader.errors] == [
        ("s3://loader/bad/locked.pdf", "EncryptedDocumentError")
    ]
    named = RagIngestLoader(
        f"s3://{loader_bucket}/home/.aws/credentials", settings=settings(seaweed)
    )
    assert named.load() == []
    assert [e.error_type for e in named.errors] == ["NoTextFormatError"]
    with pytest.raises(EncryptedDocumentError):
        RagIngestLoader(
            f"s3://{loader_bucket}/bad/", on_error="raise", settings=settings(seaweed)
        ).load()


def test_load_and_split_and_index(seaweed: SeaweedS3, loader_bucket: str) -> None:
    loader = RagIngestLoader(
        f"s3://{loader_bucket}/reports/long.pdf", mode="pages", settings=settings(seaweed)
    )
    split = loader.load_and_split(RecursiveCharacterTextSplitter(chunk_size=300, chunk_overlap=0))
    assert len(split) > 4 and all(len(d.page_content) <= 300 for d in split)

    store = InMemoryVectorStore(HashEmbeddings())
    records = InMemoryRecordManager("loader-test")
    records.create_schema()
    chunks = RagIngestLoader(f"s3://{loader_bucket}/reports/", settings=settings(seaweed))
    first = index(
        chunks, records, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert first["num_added"] > 4
    second = index(
        chunks, records, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert second["num_added"] == 0 and second["num_skipped"] == first["num_added"]


class WindowedEmbeddings(HashEmbeddings):
    """An embedder that reads 100 tokens of each text, as MiniLM reads 256."""

    max_input_tokens = 100


def test_chunks_fit_the_embedder_they_will_be_indexed_with(tmp_path: Path) -> None:
    text = tmp_path / "long.txt"
    text.write_text(" ".join(f"Mile {i}: the river runs past mill {i}." for i in range(300)))
    plain = Settings.model_validate({"progress": False, "parse": {"mode": "thread"}})
    unfitted = RagIngestLoader(text, settings=plain).load()
    fitted = RagIngestLoader(text, settings=plain, embeddings=WindowedEmbeddings()).load()
    cap = int((100 - 2) * 0.75)
    assert max(d.metadata["token_count"] for d in unfitted) > cap
    assert all(d.metadata["token_count"] <= cap for d in fitted)
    assert len(fitted) > len(unfitted)


def test_a_source_read_with_warnings_has_them_logged_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The processor's results carry a parse's warnings; the loader had dropped them."""
    import json

    lines = [json.dumps({"id": n, "title": f"CANARY-W-{n}"}) for n in range(20)]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([*lines, '{"id": 20, "ti']))
    clean = tmp_path / "clean.md"
    clean.write_text("# Clean\n\nNothing to say about it.\n")
    # How a file was read is a note, logged at INFO: nothing wrong with it.
    packed = tmp_path / "changelog.gz"
    packed.write_bytes(gzip.compress(b"CANARY-GZ fixed the build.\n"))
    plain = Settings.model_validate({"progress": False, "parse": {"mode": "thread"}})
    said = "1 line(s) not a JSON object, kept as written"
    for mode in ("chunks", "pages"):
        caplog.clear()
        caplog.set_level(logging.INFO, logger="rag_ingest")
        loader = RagIngestLoader([cut, clean, packed], settings=plain, mode=mode)  # type: ignore[arg-type]
        assert any("CANARY-W-19" in d.page_content for d in loader.load())
        assert loader.warnings == {cut.as_uri(): [said]}, mode  # by source, as chunks name it
        assert loader.notes == {packed.as_uri(): ["decompressed from gzip"]}, mode
        levels = {r.getMessage(): r.levelname for r in caplog.records}
        assert levels[f"{cut.as_uri()}: {said}"] == "WARNING"
        assert levels[f"{packed.as_uri()}: decompressed from gzip"] == "INFO"


def test_an_expired_presigned_url_is_renewed_by_the_loader(
    seaweed: SeaweedS3, loader_bucket: str
) -> None:
    import time

    client = seaweed.client()
    key = "code/app.py"

    def presign(seconds: int) -> str:
        return str(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": loader_bucket, "Key": key}, ExpiresIn=seconds
            )
        )

    short = presign(1)
    time.sleep(2.1)
    loader = RagIngestLoader(short, settings=settings(seaweed), on_error="skip")
    assert loader.load() == [] and loader.errors[0].error_type == "S3PresignedExpiredError"
    asked: list[str] = []
    renewing = RagIngestLoader(
        short,
        settings=settings(seaweed),
        on_error="raise",
        renew_url=lambda url: asked.append(url) or presign(600),
    )
    assert renewing.load() and asked == [short]


def test_loading_again_into_a_store_upserts_rather_than_duplicates(
    seaweed: SeaweedS3, loader_bucket: str, tmp_path: Path
) -> None:
    # Each Document carries an id naming its source, version, place and text: the usual
    # vectorstore.add_documents(loader.load()) run twice (a notebook cell run again)
    # had stored every chunk twice.
    from langchain_chroma import Chroma

    client = seaweed.client()
    client.put_object(Bucket="loader", Key="ids/notes.md", Body=b"# Notes\n\nCANARY-ONE.\n")
    local = tmp_path / "local.md"
    sections = "".join(
        f"## Part {n}\n\n" + f"Part {n} says its own plain words, one after another. " * 9 + "\n\n"
        for n in range(6)
    )
    local.write_text("# Local\n\n" + sections)
    # One file in two places: the same text twice (a code file is chunked as it is).
    twice = tmp_path / "twice.zip"
    same = b"def same():\n    return 1\n"
    twice.write_bytes(docs.zip_bytes({"a/same.py": same, "b/same.py": same}))
    sources = [f"s3://{loader_bucket}/ids/notes.md", str(local), str(twice)]
    loads: dict[str, list[Any]] = {}
    for mode in ("chunks", "pages", "document"):
        first, again = (
            RagIngestLoader(sources, mode=mode, settings=settings(seaweed)).load()  # type: ignore[arg-type]
            for _ in range(2)
        )
        ids = [d.id for d in first]
        assert all(ids) and len(set(ids)) == len(ids) and ids == [d.id for d in again], mode
        loads[mode] = first
    copies = [d for d in loads["chunks"] if d.page_content == same.decode()]
    assert len(copies) == 2 and copies[0].id != copies[1].id
    first = loads["chunks"]
    assert len(first) > 3
    stores = [
        InMemoryVectorStore(embedding=HashEmbeddings()),
        Chroma(collection_name=f"ids-{tmp_path.name}"[:60], embedding_function=HashEmbeddings()),
    ]
    for store in stores:
        store.add_documents(first)
        store.add_documents(first)
        hits = store.similarity_search("CANARY-ONE", k=len(first) + 5)
        assert len(hits) == len(first), type(store).__name__
    # A changed file: a paragraph put in at the top moves every chunk, yet each chunk
    # whose text is unchanged keeps its id, so adding the new load duplicates none.
    local.write_text("# Local\n\n## New\n\nCANARY-NEW section first.\n\n" + sections)
    settled = RagIngestLoader(str(local), settings=settings(seaweed)).load()
    before = {d.page_content: d.id for d in first if d.metadata["filename"] == "local.md"}
    kept = [d for d in settled if d.page_content in before]
    assert len(kept) >= 4 and all(d.id == before[d.page_content] for d in kept)
    assert len(kept) < len(settled)
    assert [d.metadata["chunk_index"] for d in kept] != [  # they moved
        next(f for f in first if f.id == d.id).metadata["chunk_index"] for d in kept
    ]
    store = stores[0]
    store.add_documents(settled)
    assert len(store.store) == len(first) + len(settled) - len(kept)


@pytest.fixture
def no_kept_pool() -> Iterator[KeptPool]:
    kept_pool.close()
    yield kept_pool
    kept_pool.close()


def _process_settings(tmp_path: Path, keep: float, **parse: Any) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "temp_dir": str(tmp_path),
            "parse": {"mode": "process", "workers": 1, "keep_workers": keep, **parse},
        }
    )


def _worker_pid(pool: ParserPool) -> int:
    return asyncio.run(pool.run("pid", os.getpid))


def _children() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid}


def test_a_loads_workers_are_kept_for_the_next_load_with_its_settings(
    tmp_path: Path, no_kept_pool: KeptPool
) -> None:
    source = tmp_path / "app.py"
    source.write_text("def area(r):\n    return 3.14 * r * r\n")
    kept = _process_settings(tmp_path, 30)
    first = RagIngestLoader(source, settings=kept).load()
    pool = no_kept_pool.pool
    assert pool is not None
    pid = _worker_pid(pool)
    # A notebook's next cell: the same worker reads it, started no second time.
    again = RagIngestLoader(source, settings=kept).load()
    assert no_kept_pool.pool is pool and _worker_pid(pool) == pid
    assert [d.page_content for d in again] == [d.page_content for d in first]
    # Other parse settings: the idle pool is closed, its worker gone, and a new one kept.
    RagIngestLoader(source, settings=_process_settings(tmp_path, 30, timeout=60)).load()
    assert no_kept_pool.pool is not pool and no_kept_pool.pool is not None
    assert pid not in _children()


def test_kept_workers_close_when_idle_past_keep_workers(
    tmp_path: Path, no_kept_pool: KeptPool
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("Kept workers close after a while.")
    RagIngestLoader(source, settings=_process_settings(tmp_path, 0.5)).load()
    pool = no_kept_pool.pool
    assert pool is not None
    pid = _worker_pid(pool)
    deadline = time.monotonic() + 30
    while (no_kept_pool.pool is not None or pid in _children()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert no_kept_pool.pool is None and pid not in _children()
    # keep_workers=0: nothing is kept, and the load's worker is closed with it.
    before = _children()
    RagIngestLoader(source, settings=_process_settings(tmp_path, 0)).load()
    assert no_kept_pool.pool is None and _children() <= before


async def test_loads_at_once_share_the_kept_pool_and_others_get_their_own(
    tmp_path: Path, no_kept_pool: KeptPool
) -> None:
    for i in range(6):
        (tmp_path / f"s{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    sources = sorted(tmp_path.glob("*.py"))
    kept = _process_settings(tmp_path, 30)

    async def load(settings: Settings) -> list[str]:
        return [
            d.page_content async for d in RagIngestLoader(sources, settings=settings).alazy_load()
        ]

    shared = await asyncio.gather(load(kept), load(kept))
    assert shared[0] == shared[1] and len(shared[0]) == 6
    pool = no_kept_pool.pool
    assert pool is not None
    pid = await pool.run("pid", os.getpid)
    # One with other settings while the kept pool is in use: a pool of its own, closed
    # at its end; the kept one is left as it was.
    other = _process_settings(tmp_path, 30, timeout=60)
    mixed = await asyncio.gather(load(kept), load(other))
    assert mixed[0] == mixed[1] == shared[0]
    assert no_kept_pool.pool is pool and await pool.run("pid", os.getpid) == pid
    assert _children() == {pid}
