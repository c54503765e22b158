"""What a caller's own LangChain vector store needs of us, store by store.

Every store is written with ``add_documents(ids=...)`` and ``delete(ids)`` unless
its adapter knows better. An adapter says, for its store:

- the form of the session filter it takes, and under which search keyword (a
  callable, a Qdrant ``Filter``, PGVector's and PGVectorStore's dict, a Milvus
  expression under ``expr``, or Chroma's dict, which most LangChain stores take);
- whether it takes vectors we computed (then its embedding calls are ours: timed,
  retried, and reused where the store already holds the text), and how to read
  them back;
- whether it can list a session's chunk IDs (then ``verify`` finds every orphan,
  and a deleted session leaves none);
- whether it refuses an ID it holds rather than replacing it, whether its IDs are
  keys across collections (then ours name the collection), and whether its async
  search works as it was made.

Chroma is not here: the store module writes our own and a caller's Chroma
through its raw collection.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from rag_ingest.filters import chroma_where, matches, milvus_expr, pgvector_where, qdrant_filter
from rag_ingest.models import Vectors

__all__ = ["StoreAdapter", "adapter_for", "session_filter"]


def _session_matches(session_id: str, where: dict[str, Any] | None) -> Any:
    return lambda metadata: (
        metadata.get("session_id") == session_id and (where is None or matches(metadata, where))
    )


def _session_where(session_id: str, source: str | None) -> dict[str, Any]:
    """A session's chunks (of one source, if given), in Chroma's where form."""
    where: dict[str, Any] = {"session_id": session_id}
    return where if source is None else {"$and": [where, {"source": source}]}


def _vector(values: Any) -> Vectors:
    import numpy as np

    return np.asarray(values, dtype=np.float32)


class StoreAdapter:
    """A LangChain store we know nothing special of: Chroma's dict filter, its own
    embeddings on add, no listing. A store with ``add_embeddings(text_embeddings,
    metadatas, ids)`` is given our vectors."""

    def __init__(self, vectorstore: VectorStore) -> None:
        self.vectorstore = vectorstore

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        clause = {"session_id": session_id}
        return {"$and": [clause, chroma_where(where)]} if where else clause

    @property
    def takes_vectors(self) -> bool:
        vs = self.vectorstore
        add = getattr(vs, "add_embeddings", None)
        if not callable(add) or getattr(vs, "embeddings", None) is None:
            return False
        try:
            parameters = inspect.signature(add).parameters
        except (TypeError, ValueError):
            return False
        return {"text_embeddings", "metadatas", "ids"} <= set(parameters)

    def add_vectors(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: Vectors
    ) -> None:
        """Write chunks with our vectors (only where :attr:`takes_vectors`)."""
        pairs = list(zip(texts, vectors.tolist(), strict=True))
        self.vectorstore.add_embeddings(pairs, metadatas=metadatas, ids=ids)  # type: ignore[attr-defined]

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        """(text, stored vector) of those of ``ids`` the store holds; none where its
        vectors cannot be read back."""
        return []

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        """A session's (and source's) chunk IDs as stored; None if the store cannot
        list them."""
        return None

    @property
    def replaces_held_ids(self) -> bool:
        """False for a store whose ``add`` refuses an ID it already holds."""
        return True

    @property
    def searches_async(self) -> bool:
        """False for a store whose async search does not work as it was made."""
        return True

    @property
    def id_namespace(self) -> str:
        """Non-empty for a store whose IDs are keys across its collections."""
        return ""

    def unusable(self) -> str | None:
        """Why the store cannot be written as it was made, if it cannot."""
        return None

    @property
    def filter_kwarg(self) -> str:
        """The search keyword its filter goes under."""
        return "filter"

    def present(self, ids: list[str]) -> set[str] | None:
        """Those of ``ids`` the store holds, where it has its own way to tell; None to
        ask ``get_by_ids``."""
        return None


class InMemoryAdapter(StoreAdapter):
    """``langchain_core``'s ``InMemoryVectorStore``: a callable filter, its ``store``
    dict listed."""

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        keep = _session_matches(session_id, where)
        return lambda doc: keep(doc.metadata)

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        records = getattr(self.vectorstore, "store", None)
        if not isinstance(records, dict):
            return None
        where = _session_where(session_id, source)
        return {
            str(key)
            for key, record in list(records.items())
            if matches(record.get("metadata") or {}, where)
        }


class FaissAdapter(StoreAdapter):
    """langchain-community's FAISS: a callable filter (its dict form spells ``$ne`` as
    ``$neq``), our vectors through ``add_embeddings``, read back by
    ``index.reconstruct``; it refuses to add an ID it holds."""

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        return _session_matches(session_id, where)

    @property
    def replaces_held_ids(self) -> bool:
        return False

    def _docs(self) -> Any:
        vs: Any = self.vectorstore
        if not all(hasattr(vs, a) for a in ("index", "index_to_docstore_id", "docstore")):
            return None
        return vs

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        vs = self._docs()
        if vs is None:
            return []
        rows = {doc_id: row for row, doc_id in vs.index_to_docstore_id.items()}
        found: list[tuple[str, Vectors]] = []
        for doc_id in ids:
            row, doc = rows.get(doc_id), vs.docstore.search(doc_id)
            if row is None or not isinstance(doc, Document):
                continue
            try:
                vector = vs.index.reconstruct(int(row))
            except Exception:  # an index that keeps no vectors (IVF, PQ): none to reuse
                return []
            found.append((doc.page_content, _vector(vector)))
        return found

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        vs = self._docs()
        if vs is None:
            return None
        where = _session_where(session_id, source)
        found: set[str] = set()
        for doc_id in list(vs.index_to_docstore_id.values()):
            doc = vs.docstore.search(doc_id)
            if isinstance(doc, Document) and matches(doc.metadata, where):
                found.add(str(doc_id))
        return found


class QdrantAdapter(StoreAdapter):
    """langchain-qdrant's ``QdrantVectorStore``: a Qdrant ``Filter`` on its metadata
    payload; in dense mode our vectors written as its points (the payload it builds
    itself) and read back with ``retrieve``; a session's points listed by ``scroll``."""

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        vs: Any = self.vectorstore
        return qdrant_filter(super().session_filter(session_id, where), vs.metadata_payload_key)

    @property
    def takes_vectors(self) -> bool:
        vs: Any = self.vectorstore
        # Sparse and hybrid modes need the store's sparse model as well: those embed on add.
        mode = getattr(getattr(vs, "retrieval_mode", None), "value", None)
        return mode == "dense" and getattr(vs, "embeddings", None) is not None

    def add_vectors(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: Vectors
    ) -> None:
        from qdrant_client import models

        vs: Any = self.vectorstore
        payloads = vs._build_payloads(
            texts, metadatas, vs.content_payload_key, vs.metadata_payload_key
        )
        points = [
            models.PointStruct(id=i, vector={vs.vector_name: v}, payload=p)
            for i, v, p in zip(ids, vectors.tolist(), payloads, strict=True)
        ]
        vs.client.upsert(collection_name=vs.collection_name, points=points)

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        vs: Any = self.vectorstore
        points = vs.client.retrieve(
            vs.collection_name, ids, with_payload=[vs.content_payload_key], with_vectors=True
        )
        found: list[tuple[str, Vectors]] = []
        for point in points:
            vector = point.vector
            if isinstance(vector, dict):  # named vectors
                vector = vector.get(vs.vector_name)
            text = (point.payload or {}).get(vs.content_payload_key)
            if isinstance(text, str) and isinstance(vector, list):
                found.append((text, _vector(vector)))
        return found

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        vs: Any = self.vectorstore
        selector = qdrant_filter(_session_where(session_id, source), vs.metadata_payload_key)
        found: set[str] = set()
        offset = None
        while True:
            points, offset = vs.client.scroll(
                vs.collection_name,
                scroll_filter=selector,
                limit=1000,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            found.update(str(p.id) for p in points)
            if offset is None:
                return found


class _PostgresAdapter(StoreAdapter):
    """What langchain-postgres's two stores share: its dict filter (with ``$in`` as
    ``$eq`` clauses) and ``add_embeddings(texts, embeddings, metadatas, ids)``, an
    upsert."""

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        return pgvector_where(super().session_filter(session_id, where))

    def add_vectors(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: Vectors
    ) -> None:
        vs: Any = self.vectorstore
        vs.add_embeddings(texts=texts, embeddings=vectors.tolist(), metadatas=metadatas, ids=ids)


class PGVectorAdapter(_PostgresAdapter):
    """langchain-postgres's ``PGVector`` in sync mode with JSONB metadata (its default):
    a session's IDs and stored vectors read through its own SQLAlchemy session and
    filter clause."""

    def _usable(self) -> bool:
        vs: Any = self.vectorstore
        return not getattr(vs, "async_mode", True) and getattr(vs, "use_jsonb", False)

    @property
    def searches_async(self) -> bool:
        # Its async methods assert an async engine: in sync mode they all fail.
        return bool(getattr(self.vectorstore, "async_mode", False))

    def unusable(self) -> str | None:
        if not getattr(self.vectorstore, "async_mode", False):
            return None
        return (
            "this PGVector was made with async_mode=True, and refuses every sync call; the "
            "processor writes and reads the store from its own threads: give it a PGVector "
            "of the same collection made with a sync connection (async_mode=False). Yours "
            "can still serve your own async queries."
        )

    @property
    def id_namespace(self) -> str:
        # All collections share one table keyed by ID, and an upsert of an ID another
        # collection holds updates that row where it is: the write would land there.
        return f"pgvector:{self.vectorstore.collection_name}"  # type: ignore[attr-defined]

    @property
    def takes_vectors(self) -> bool:
        return self._usable() and getattr(self.vectorstore, "embeddings", None) is not None

    def _select(self, columns: list[Any], where: Any) -> list[Any]:
        from sqlalchemy import select

        vs: Any = self.vectorstore
        with vs._make_sync_session() as session:
            collection = vs.get_collection(session)
            if collection is None:
                return []
            stmt = select(*columns).where(vs.EmbeddingStore.collection_id == collection.uuid)
            return list(session.execute(stmt.where(where)).all())

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        if not self._usable():
            return []
        table: Any = self.vectorstore.EmbeddingStore  # type: ignore[attr-defined]
        rows = self._select([table.document, table.embedding], table.id.in_(ids))
        return [(text, _vector(vector)) for text, vector in rows if text is not None]

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        if not self._usable():
            return None
        vs: Any = self.vectorstore
        clause = vs._create_filter_clause(pgvector_where(_session_where(session_id, source)))
        rows = self._select([vs.EmbeddingStore.id], clause)
        return {str(row[0]) for row in rows}


class PGVectorStoreAdapter(_PostgresAdapter):
    """langchain-postgres's newer ``PGVectorStore`` (a table per store): a session's IDs
    and stored vectors read by its Chroma-like ``get``."""

    def unusable(self) -> str | None:
        if callable(getattr(self.vectorstore, "get", None)):
            return None
        # Found by a lowest-versions run: every document had failed on its first read.
        return (
            "this PGVectorStore has no get() (langchain-postgres before 0.0.17), by which "
            "a session's chunks are listed and its stored vectors reused: upgrade "
            "langchain-postgres to 0.0.17 or later"
        )

    @property
    def takes_vectors(self) -> bool:
        return getattr(self.vectorstore, "embeddings", None) is not None

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        vs: Any = self.vectorstore
        got = vs.get(ids=ids, include=["documents", "embeddings"])
        pairs = zip(got.get("documents") or [], got.get("embeddings") or [], strict=True)
        # Its driver may give a vector back as pgvector's text form, "[0.1,-0.2,...]".
        return [
            (text, _vector(json.loads(vector) if isinstance(vector, str) else vector))
            for text, vector in pairs
            if text is not None
        ]

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        vs: Any = self.vectorstore
        where = pgvector_where(_session_where(session_id, source))
        return {str(i) for i in vs.get(where=where, include=[])["ids"]}


class MilvusAdapter(StoreAdapter):
    """langchain-milvus's ``Milvus`` with dynamic fields or a JSON metadata field (chunks
    of different types carry different fields): a boolean expression under ``expr``;
    our vectors through its ``add_embeddings``; IDs it holds told and listed by
    ``get_pks``, and deleted before they are written again, as its insert does not
    replace a row with the same key."""

    def _field(self, key: str) -> str:
        holder = getattr(self.vectorstore, "_metadata_field", None)
        return f"{holder}[{json.dumps(key)}]" if holder else key

    def session_filter(self, session_id: str, where: dict[str, Any] | None) -> Any:
        return milvus_expr(super().session_filter(session_id, where), self._field)

    @property
    def filter_kwarg(self) -> str:
        return "expr"

    def unusable(self) -> str | None:
        vs: Any = self.vectorstore
        if getattr(vs, "enable_dynamic_field", False) or getattr(vs, "_metadata_field", None):
            return None
        return (
            "this Milvus store has neither enable_dynamic_field=True nor a metadata_field: "
            "its fields are fixed by the first chunk's metadata, and a chunk of another file "
            "type (other fields) fails to insert; make it with enable_dynamic_field=True"
        )

    @property
    def takes_vectors(self) -> bool:
        vs: Any = self.vectorstore
        return getattr(vs, "embeddings", None) is not None and not getattr(
            vs, "_is_multi_vector", True
        )

    def add_vectors(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: Vectors
    ) -> None:
        vs: Any = self.vectorstore
        vs.add_embeddings(texts, vectors.tolist(), metadatas, ids=ids)

    @property
    def replaces_held_ids(self) -> bool:
        return False

    def _keys(self, ids: list[str]) -> str:
        vs: Any = self.vectorstore
        return f"{vs._primary_field} in {json.dumps(ids)}"

    def _written(self) -> bool:
        """Whether the collection exists: langchain-milvus makes it on the first write."""
        return getattr(self.vectorstore, "col", None) is not None

    def present(self, ids: list[str]) -> set[str] | None:
        if not self._written():
            return set()
        found = self.vectorstore.get_pks(self._keys(ids))  # type: ignore[attr-defined]
        return {str(i) for i in found or []}

    def vectors_by_text(self, ids: list[str]) -> list[tuple[str, Vectors]]:
        vs: Any = self.vectorstore
        if not self._written() or not isinstance(vs._vector_field, str):
            return []
        fields = [vs._text_field, vs._vector_field]
        rows = vs.client.query(vs.collection_name, filter=self._keys(ids), output_fields=fields)
        return [(r[vs._text_field], _vector(r[vs._vector_field])) for r in rows]

    def ids_for(self, session_id: str, source: str | None) -> set[str] | None:
        vs: Any = self.vectorstore
        if not self._written():
            return set()
        # An iterator, not get_pks: a Milvus server caps one query's results at 16,384.
        pages = vs.client.query_iterator(
            vs.collection_name,
            batch_size=4096,
            filter=milvus_expr(_session_where(session_id, source), self._field),
            output_fields=[vs._primary_field],
        )
        found: set[str] = set()
        try:
            while page := pages.next():
                found.update(str(row[vs._primary_field]) for row in page)
        finally:
            pages.close()
        return found


def adapter_for(vectorstore: VectorStore) -> StoreAdapter:
    """The adapter for a caller's store (by its class, not by importing its package)."""
    if isinstance(vectorstore, InMemoryVectorStore):
        return InMemoryAdapter(vectorstore)
    module = type(vectorstore).__module__
    if module.startswith("langchain_community.vectorstores.faiss"):
        return FaissAdapter(vectorstore)
    if module.startswith("langchain_qdrant"):
        return QdrantAdapter(vectorstore)
    if module == "langchain_postgres.vectorstores":
        return PGVectorAdapter(vectorstore)
    if module == "langchain_postgres.v2.vectorstores":
        return PGVectorStoreAdapter(vectorstore)
    if module.startswith("langchain_milvus"):
        return MilvusAdapter(vectorstore)
    return StoreAdapter(vectorstore)


def session_filter(
    vectorstore: VectorStore, session_id: str, where: dict[str, Any] | None = None
) -> Any:
    """The store's own form of "this session only" (narrowed by ``where``, if given)."""
    return adapter_for(vectorstore).session_filter(session_id, where)
