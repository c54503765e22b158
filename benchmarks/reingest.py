"""A changed document ingested again: what it costs to embed it again.

Three changes, each to a document already in the store:

- ``pdf-page``: the middle page of a ``--pages``-page PDF (default 40) reworded;
- ``zip-file``: the middle one of ``--notes`` Markdown notes (default 30) in a zip
  changed;
- ``mailbox-grew``: a mailbox of ``--messages`` messages (default 300) with 10 more
  (a mailing list's archive, a folder synced each night);
- ``metadata``: the same PDF, unchanged, ingested again with a new caller field
  (``metadata={"team": ...}``), as a backend does when it tags a document;
- ``session``: the same PDF, unchanged, ingested into a second session (a handbook
  every chat session uploads). LangChain has no sessions: its chunks carry a
  ``session_id`` field, one record manager for all.

Each is run three ways, every run with its own fresh store, the first version ingested
and then the second one timed:

- ``rag_ingest``: ``DocumentProcessor`` with ``models.reuse_vectors`` (the default): a
  chunk whose text the source's stored chunks hold keeps its vector;
- ``rag_ingest-no-reuse``: the same with ``reuse_vectors=False`` (every chunk of a
  changed source embedded again, as before);
- ``langchain-index``: LangChain's record-manager indexing, what a LangChain user
  writes to avoid re-embedding: ``langchain_core.indexing.index`` (cleanup
  ``incremental``, an ``InMemoryRecordManager``) into Chroma (in-process), the PDF
  loaded per page by pymupdf4llm, the zip extracted and each note loaded, the mailbox
  read by Python's ``mailbox`` module a message a document (subject and plain body,
  its source the mailbox and Message-ID), all split by
  ``RecursiveCharacterTextSplitter`` at rag_ingest's chunk size fitted to the embedder.
  ``index()``'s default ``batch_size`` is 100, and its incremental cleanup runs per
  batch: a source of more chunks than a batch has those past the first batch deleted
  and embedded again on every run (langchain-ai/langchain#32612, open);
- ``langchain-index-10k``: the same with ``batch_size=10_000``, the workaround.

Printed: seconds for the second version, chunks embedded (each side's own count:
``IngestResult.reused_vectors``, ``index()``'s ``num_added``), the embedder, and ratios.

    python benchmarks/reingest.py [--embedder minilm|hash] [--pages 40] [--notes 30]
        [--messages 300] [--changes pdf-page zip-file mailbox-grew metadata session]
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import baseline_store
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from tests import docs

CHANGES = ("pdf-page", "zip-file", "mailbox-grew", "metadata", "session")
RUNS = ("rag_ingest", "rag_ingest-no-reuse", "langchain-index", "langchain-index-10k")


def pdf_version(pages: int, changed: int | None) -> bytes:
    texts = []
    for i in range(pages):
        word = "revised" if i == changed else "original"
        text = docs.LONG_PROSE[(i % 10) * 2500 : (i % 10 + 1) * 2500]
        texts.append(f"Page {i} of the {word} report.\n{text.replace('topic', f'item {i}')}")
    return docs.pdf_bytes(texts)


def zip_version(notes: int, changed: int | None) -> bytes:
    files = {}
    for i in range(notes):
        word = "revised" if i == changed else "original"
        body = docs.LONG_PROSE[:1800].replace("topic", f"note {i} {word} point")
        files[f"wiki/note{i:02d}.md"] = f"# Note {i}\n\n## Context\n\n{body}\n".encode()
    return docs.zip_bytes(files)


def mailbox_version(messages: int) -> bytes:
    out = []
    for i in range(messages):
        body = docs.LONG_PROSE[(i % 10) * 1500 : (i % 10 + 1) * 1500]
        out.append(
            f"From list@example.com Mon Jan  1 00:00:00 2024\nFrom: Member {i % 7} "
            f"<m{i % 7}@example.com>\nSubject: Thread {i}\nMessage-ID: <{i}@example.com>\n\n"
            f"{body.replace('topic', f'thread {i} point')}\n\n"
        )
    return "".join(out).encode()


def versions(change: str, args: argparse.Namespace) -> tuple[str, bytes, bytes]:
    """The file name, its first version and its second (the same bytes for metadata)."""
    if change == "pdf-page":
        return "report.pdf", pdf_version(args.pages, None), pdf_version(args.pages, args.pages // 2)
    if change == "zip-file":
        return "wiki.zip", zip_version(args.notes, None), zip_version(args.notes, args.notes // 2)
    if change == "mailbox-grew":
        return "list.mbox", mailbox_version(args.messages), mailbox_version(args.messages + 10)
    same = pdf_version(args.pages, None)  # metadata, session
    return "report.pdf", same, same


async def rag_ingest(
    change: str, args: argparse.Namespace, reuse: bool, tmp: Path
) -> dict[str, Any]:
    name, first, second = versions(change, args)
    path = tmp / name
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp / "store")},
            "models": {"embedder": args.embedder, "reuse_vectors": reuse},
            "parse": {"mode": "process", "workers": 2},
            "pipeline": {"preload": True},  # the workers' start-up outside the timing
            "temp_dir": str(tmp),
        }
    )
    async with DocumentProcessor(settings) as p:
        path.write_bytes(first)
        r1 = await p.process_document(path, session_id="s")
        assert r1.success, r1.message
        path.write_bytes(second)
        extra = {"team": "docs"} if change == "metadata" else None
        session = "t" if change == "session" else "s"
        start = time.perf_counter()
        r2 = await p.process_document(path, session_id=session, metadata=extra)
        seconds = time.perf_counter() - start
        assert r2.status == "ingested", r2.message
    return {
        "seconds": seconds,
        "chunks": r2.total_chunks,
        "embedded": r2.total_chunks - r2.reused_vectors,
        "embedder": r2.embedder,
    }


def langchain_index(
    change: str, args: argparse.Namespace, tmp: Path, batch_size: int
) -> dict[str, Any]:
    import pymupdf4llm
    from langchain_core.documents import Document
    from langchain_core.indexing import InMemoryRecordManager, index

    pymupdf4llm.use_layout(False)
    name, first, second = versions(change, args)
    vectorstore, splitter = baseline_store(str(tmp / "store"), args.embedder)
    records = InMemoryRecordManager(namespace="baseline")
    records.create_schema()

    def load(data: bytes, extra: dict[str, str]) -> list[Document]:
        path = tmp / name
        path.write_bytes(data)
        if name.endswith(".pdf"):
            pages = pymupdf4llm.to_markdown(str(path), page_chunks=True, show_progress=False)
            return [
                Document(p["text"], metadata={"source": name, "page": i, **extra})
                for i, p in enumerate(pages)
            ]
        if name.endswith(".mbox"):
            messages = []
            for message in mailbox.mbox(path, factory=None, create=False):
                text = f"{message['Subject']}\n\n{message.get_payload()}"
                source = f"{name}/{message['Message-ID']}"
                messages.append(Document(text, metadata={"source": source, **extra}))
            return messages
        out = tmp / "unzipped"
        with zipfile.ZipFile(path) as archive:
            archive.extractall(out)
        loaded = []
        for root, _, files in os.walk(out):
            for file in sorted(files):
                member = os.path.relpath(os.path.join(root, file), out)
                loaded.append(
                    Document(
                        Path(root, file).read_text(),
                        metadata={"source": f"{name}/{member}", **extra},
                    )
                )
        return loaded

    def ingest(data: bytes, extra: dict[str, str]) -> dict[str, int]:
        chunks = splitter.split_documents(load(data, extra))
        stats = index(
            chunks,
            records,
            vectorstore,
            cleanup="incremental",
            source_id_key="source",
            key_encoder="sha256",
            batch_size=batch_size,
        )
        return {"added": stats["num_added"], "chunks": len(chunks)}

    ingest(first, {"session_id": "s"})
    extra = {"session_id": "t" if change == "session" else "s"}
    if change == "metadata":
        extra["team"] = "docs"
    start = time.perf_counter()
    stats = ingest(second, extra)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "chunks": stats["chunks"],
        "embedded": stats["added"],
        "embedder": type(vectorstore.embeddings).__name__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hash"))
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--notes", type=int, default=30)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--changes", nargs="+", choices=CHANGES, default=list(CHANGES))
    args = parser.parse_args()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; embedder {args.embedder}; the second version's "
        "ingest timed\n"
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for change in args.changes:
        for run in RUNS:
            with tempfile.TemporaryDirectory() as tmp:
                if run.startswith("langchain-index"):
                    batch = 100 if run == "langchain-index" else 10_000
                    rows[change, run] = langchain_index(change, args, Path(tmp), batch)
                else:
                    reuse = run == "rag_ingest"
                    rows[change, run] = asyncio.run(rag_ingest(change, args, reuse, Path(tmp)))
    print("| change | run | seconds | chunks | embedded | embedder |\n|---|---|---|---|---|---|")
    for (change, run), row in rows.items():
        print(
            f"| {change} | {run} | {row['seconds']:.2f} | {row['chunks']} | "
            f"{row['embedded']} | {row['embedder']} |"
        )
    print()
    for change in args.changes:
        ours = rows[change, "rag_ingest"]["seconds"]
        print(
            f"{change}: rag_ingest vs no reuse "
            f"{rows[change, 'rag_ingest-no-reuse']['seconds'] / ours:.2f}x, "
            f"vs langchain-index {rows[change, 'langchain-index']['seconds'] / ours:.2f}x, "
            f"vs langchain-index-10k {rows[change, 'langchain-index-10k']['seconds'] / ours:.2f}x"
        )


if __name__ == "__main__":
    main()
