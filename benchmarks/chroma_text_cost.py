"""What Chroma's CPU for a store write goes to: upsert the ingest benchmark's number of
chunks (580, ~1.5 KB of text and 21 metadata keys each, 384-dimension vectors) into an
in-process persistent collection, with and without their text, and with a ``Schema``
that deletes the ``#document`` full-text index; and the cost of a full-text index (SQLite
FTS5, trigram tokenizer, as Chroma's) of that text alone.

    python benchmarks/chroma_text_cost.py [--chunks 580]

Prints the process CPU seconds each write took. It explains the Chroma column of the
ingest benchmark's CPU table (see README, "2 workers vs 1").
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import sqlite3
import string
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=580)
    count = parser.parse_args().chunks

    import chromadb
    from chromadb import FtsIndexConfig, Schema

    rng = random.Random(1)
    texts = [_words(rng, 280) for _ in range(count)]
    vectors = [[rng.random() for _ in range(384)] for _ in range(count)]
    print(f"chromadb {chromadb.__version__}, {count} chunks, batches of 100")
    for label, with_text, schema in (
        ("text and metadata", True, None),
        ("text and metadata, Schema without #document FTS", True, "no-fts"),
        ("metadata only", False, None),
    ):
        with tempfile.TemporaryDirectory() as path:
            options: dict[str, Any] = {}
            if schema:
                options["schema"] = Schema().delete_index(FtsIndexConfig(), key="#document")
            collection = chromadb.PersistentClient(path=path).get_or_create_collection(
                "cost", embedding_function=None, **options
            )
            ids = [hashlib.sha1(f"{label}{i}".encode()).hexdigest() for i in range(count)]
            start = _cpu()
            for at in range(0, count, 100):
                batch: dict[str, Any] = {
                    "ids": ids[at : at + 100],
                    "embeddings": vectors[at : at + 100],
                    "metadatas": [
                        dict(_METADATA, chunk_index=i) for i in range(at, min(count, at + 100))
                    ],
                }
                if with_text:
                    batch["documents"] = texts[at : at + 100]
                collection.upsert(**batch)
            print(f"{label}: {_cpu() - start:.2f} s CPU")
    # Chroma keeps a document's text in an FTS5 table with the trigram tokenizer: that
    # index alone, for the same text, in SQLite with nothing else.
    with tempfile.TemporaryDirectory() as path:
        database = sqlite3.connect(f"{path}/fts.sqlite3")
        database.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='trigram')")
        start = _cpu()
        for at in range(0, count, 100):
            with database:
                database.executemany(
                    "INSERT INTO t VALUES (?)", [(t,) for t in texts[at : at + 100]]
                )
        print(f"SQLite FTS5 trigram index of the text alone: {_cpu() - start:.2f} s CPU")
        database.close()


if __name__ == "__main__":
    main()
