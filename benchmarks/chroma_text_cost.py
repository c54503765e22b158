"""What Chroma's CPU for a store write goes to: upsert the ingest benchmark's number of
chunks (580, ~1.5 KB of text and 21 metadata keys each, 384-dimension vectors) into an
in-process persistent collection and into a private ``chroma run`` server (the
processor's default; its process's CPU), with and without their text, and with a
``Schema`` that deletes the ``#document`` full-text index; and the cost of a full-text index (SQLite
FTS5, trigram tokenizer, as Chroma's) of that text alone.

    python benchmarks/chroma_text_cost.py [--chunks 580]

Prints the process CPU seconds each write took. It explains the Chroma column of the
ingest benchmark's CPU table (see README, "2 workers vs 1").
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import sqlite3
import string
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_METADATA = {
    "source": "s3://bench/corpus/doc_001.pdf",
    "bucket": "bench",
    "key": "corpus/doc_001.pdf",
    "etag": "abc123def456",
    "filename": "doc_001.pdf",
    "file_type": "pdf",
    "page_start": 1,
    "page_end": 2,
    "heading_path": "Intro > Scope",
    "token_count": 370,
    "content_hash": "e3b0c44298fc1c149afbf4c8996fb924",
    "session_id": "bench",
    "user_id": "u1",
    "ingested_at": "2026-12-05T11:00:00Z",
    "start_index": 100,
    "end_index": 2000,
    "chunk_count": 3,
    "chunked": True,
    "parser": "pymupdf4llm",
    "source_version": "abc",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _words(rng: random.Random, count: int) -> str:
    letters = string.ascii_lowercase
    return " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(count)
    )


def _server_cpu(pid: int) -> float:
    """A process's CPU seconds so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _upserted(batches: list[dict[str, Any]], *, server: bool, fts: bool) -> float:
    """CPU seconds Chroma took to upsert ``batches`` into a new collection (a ``Schema``
    deleting the ``#document`` full-text index unless ``fts``): this process's, in
    process; else a private ``chroma run`` server's (the processor's default store)."""
    import chromadb
    from chromadb import FtsIndexConfig, Schema

    from rag_ingest.chroma_server import LocalChromaServer

    options: dict[str, Any] = {}
    if not fts:
        options["schema"] = Schema().delete_index(FtsIndexConfig(), key="#document")
    with tempfile.TemporaryDirectory() as path:
        local = LocalChromaServer(Path(path)) if server else None
        cpu: Callable[[], float] = _cpu
        if local is not None:
            local.start()
            assert local.process is not None
            client: Any = chromadb.HttpClient(host="127.0.0.1", port=local.port)
            cpu = functools.partial(_server_cpu, local.process.pid)
        else:
            client = chromadb.PersistentClient(path=path)
        try:
            collection = client.get_or_create_collection("cost", embedding_function=None, **options)
            start = cpu()
            for batch in batches:
                collection.upsert(**batch)
            time.sleep(0.5 if local else 0)  # a server's work after it answers
            return cpu() - start
        finally:
            if local is not None:
                local.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=580)
    count = parser.parse_args().chunks

    import chromadb

    rng = random.Random(1)
    # Prose (this repository's README, ~1.6 KB a chunk, as the benchmark's chunks are
    # long), and random letters, whose every trigram is new to the index.
    prose = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    texts = {
        "prose": [prose[i * 1600 % (len(prose) - 1600) :][:1600] for i in range(count)],
        "random words": [_words(rng, 280) for _ in range(count)],
    }
    vectors = [[rng.random() for _ in range(384)] for _ in range(count)]
    print(f"chromadb {chromadb.__version__}, {count} chunks, batches of 100")
    runs = [
        (where, kind, label, with_text, schema)
        for where in ("in-process", "server")
        for kind in texts
        for label, with_text, schema in (
            ("text and metadata", True, False),
            ("text and metadata, Schema without #document FTS", True, True),
            ("metadata only", False, False),
        )
        if with_text or kind == "prose"
    ]
    for where, kind, label, with_text, schema in runs:
        batches = [
            {
                "ids": [f"{label}-{i}" for i in range(at, min(count, at + 100))],
                "embeddings": vectors[at : at + 100],
                "metadatas": [
                    dict(_METADATA, chunk_index=i) for i in range(at, min(count, at + 100))
                ],
                **({"documents": texts[kind][at : at + 100]} if with_text else {}),
            }
            for at in range(0, count, 100)
        ]
        seconds = _upserted(batches, server=where == "server", fts=not schema)
        print(f"{where}, {label}{f' ({kind})' if with_text else ''}: {seconds:.2f} s CPU")
    # Chroma keeps a document's text in an FTS5 table with the trigram tokenizer: that
    # index alone, for the same text, in SQLite with nothing else.
    with tempfile.TemporaryDirectory() as path:
        database = sqlite3.connect(f"{path}/fts.sqlite3")
        database.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='trigram')")
        start = _cpu()
        for at in range(0, count, 100):
            with database:
                database.executemany(
                    "INSERT INTO t VALUES (?)", [(t,) for t in texts["prose"][at : at + 100]]
                )
        print(f"SQLite FTS5 trigram index of the prose alone: {_cpu() - start:.2f} s CPU")
        database.close()


if __name__ == "__main__":
    main()
