"""A session filter in each store's form selects what our own check selects."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest.filters import check_where, matches
from rag_ingest.models import HashEmbeddings
from rag_ingest.vectorstores import adapter_for, session_filter

RECORDS: list[dict[str, Any]] = [
    {"session_id": "one", "file_type": "pdf", "page_start": 1, "score": 0.5, "ocr": True},
    {"session_id": "one", "file_type": "pdf", "page_start": 4, "score": 1.5},
    {"session_id": "one", "file_type": "markdown", "heading_path": "Intro", "score": 2.0},
    {"session_id": "one", "file_type": "code", "language": "python", "line_start": 10},
    {"session_id": "one", "file_type": "code", "language": "go", "line_start": 3},
    {"session_id": "two", "file_type": "pdf", "page_start": 1, "score": 0.5},
    {"session_id": "two", "file_type": "markdown", "heading_path": "Intro"},
]

WHERES: list[dict[str, Any]] = [
    {"file_type": "pdf"},
    {"file_type": {"$ne": "pdf"}},
    # A chunk without the field passes $ne and $nin (as in Chroma), not $gt.
    {"page_start": {"$ne": 1}},
    {"language": {"$nin": ["go"]}},
    {"$and": [{"session_id": "one"}, {"ocr": {"$ne": True}}]},
    {"page_start": {"$gte": 2}},
    {"page_start": {"$gt": 0, "$lt": 4}},
    {"score": 0.5},
    {"score": {"$lte": 1.5}},
    {"ocr": True},
    {"file_type": {"$in": ["code", "markdown"]}},
    {"file_type": {"$nin": ["code", "markdown"]}},
    {"line_start": {"$in": [3, 99]}},
    {"score": {"$in": [0.5, 2.0]}},
    {"ocr": {"$in": [True]}},
    {"$or": [{"language": "go"}, {"heading_path": "Intro"}]},
    {"$and": [{"file_type": "code"}, {"line_start": {"$gt": 5}}]},
    {"$or": [{"file_type": "pdf", "page_start": 4}, {"language": "python"}]},
    {"session_id": "two"},
]


def _documents() -> list[Document]:
    return [Document(f"record {i}", metadata=dict(r, n=i)) for i, r in enumerate(RECORDS)]


def _qdrant() -> Any:
    pytest.importorskip("langchain_qdrant")
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient
    from qdrant_client import models as qmodels

    client = QdrantClient(":memory:")
    size = len(HashEmbeddings().embed_query("x"))
    params = qmodels.VectorParams(size=size, distance=qmodels.Distance.COSINE)
    client.create_collection("c", vectors_config=params)
    store = QdrantVectorStore(client=client, collection_name="c", embedding=HashEmbeddings())
    store.add_documents(
        _documents(), ids=[f"00000000-0000-4000-8000-{i:012d}" for i in range(len(RECORDS))]
    )
    return store


def _faiss() -> Any:
    pytest.importorskip("faiss")
    with warnings.catch_warnings():  # langchain-community says it is being sunset
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    return FAISS.from_documents(_documents(), HashEmbeddings())


def _chroma() -> Any:
    from langchain_chroma import Chroma

    store = Chroma(collection_name=f"f-{uuid.uuid4().hex}", embedding_function=HashEmbeddings())
    store.add_documents(_documents(), ids=[str(i) for i in range(len(RECORDS))])
    return store


def _milvus(directory: Path) -> Any:
    pytest.importorskip("langchain_milvus")
    from langchain_milvus import Milvus

    store = Milvus(
        embedding_function=HashEmbeddings(),
        connection_args={"uri": str(directory / "milvus.db")},  # Milvus Lite, in process
        enable_dynamic_field=True,
    )
    store.add_documents(_documents(), ids=[str(i) for i in range(len(RECORDS))])
    return store


def _in_memory() -> Any:
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    store.add_documents(_documents())
    return store


STORES = {
    "qdrant": _qdrant,
    "faiss": _faiss,
    "chroma": _chroma,
    "in-memory": _in_memory,
}


@pytest.mark.parametrize("kind", [*STORES, "milvus", "pgvector", "pgvectorstore"])
@pytest.mark.parametrize("where", WHERES, ids=[str(w) for w in WHERES])
def test_each_store_gets_the_same_chunks_as_our_own_check(
    where: dict[str, Any], kind: str, request: pytest.FixtureRequest
) -> None:
    if kind.startswith("pgvector"):  # a real Postgres, started once for the session
        store = request.getfixturevalue(kind)()
        # An ID is a key of the whole table, across collections: each store's own.
        store.add_documents(_documents(), ids=[str(uuid.uuid4()) for _ in RECORDS])
    elif kind == "milvus":
        store = _milvus(request.getfixturevalue("tmp_path"))
    else:
        store = STORES[kind]()
    expected = {i for i, r in enumerate(RECORDS) if r["session_id"] == "one" and matches(r, where)}
    keep = session_filter(store, "one", check_where(where))
    key = adapter_for(store).filter_kwarg  # Milvus: expr
    found = store.similarity_search("record", k=len(RECORDS), **{key: keep})
    assert {d.metadata["n"] for d in found} == expected
