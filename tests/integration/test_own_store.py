"""A caller's own vector store: its embeddings, its filter form, sessions kept apart."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest import models
from rag_ingest.chunking import content_hash
from rag_ingest.errors import ConfigurationError
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor, SyncDocumentProcessor
from rag_ingest.settings import ModelSettings, Settings

pytestmark = pytest.mark.integration


class RateLimited(Exception):
    status_code = 429


class FlakyEmbeddings(HashEmbeddings):
    """Refuses its first call with a 429, as a provider under load does."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == 1:
            raise RateLimited("slow down")
        return super().embed_documents(texts)


class FilterIgnoringStore(InMemoryVectorStore):
    """A store whose searches drop the filter they are given."""

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> Any:
        kwargs.pop("filter", None)
        return super().similarity_search_with_score(query, k=k, **kwargs)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        kwargs.pop("filter", None)
        return super().similarity_search(query, k=k, **kwargs)


def settings(tmp_path: Path) -> Settings:
    # The configured embedder is MiniLM: a store with its own embeddings must not load it.
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "models": {"embedder": "minilm"},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    texts = {
        "birds.txt": "The canary sings in the coal mine at dawn. " * 12,
        "zebras.md": "# Savanna\n\nZebras graze beside the river all afternoon. " * 12,
        "other.txt": "The canary of another session sings a different song. " * 12,
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    return {name: str(tmp_path / name) for name in texts}


@pytest.fixture
def no_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError(f"loaded the configured embedder {name!r}")

    monkeypatch.setattr(models, "load_embeddings", refuse)


def ids_of(store: InMemoryVectorStore, session: str) -> set[str]:
    return {i for i, row in store.store.items() if row["metadata"]["session_id"] == session}


def qdrant_store(embeddings: Any = None) -> Any:
    """langchain-qdrant's store on Qdrant's in-process local mode (no server)."""
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient
    from qdrant_client import models as qmodels

    client = QdrantClient(":memory:")
    size = len(HashEmbeddings().embed_query("x"))
    params = qmodels.VectorParams(size=size, distance=qmodels.Distance.COSINE)
    client.create_collection("chunks", vectors_config=params)
    return QdrantVectorStore(
        client=client, collection_name="chunks", embedding=embeddings or HashEmbeddings()
    )


def faiss_store(embeddings: Any = None) -> Any:
    """langchain-community's FAISS store, empty."""
    import faiss

    with warnings.catch_warnings():  # langchain-community says it is being sunset
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.docstore.in_memory import InMemoryDocstore
        from langchain_community.vectorstores import FAISS
    index = faiss.IndexFlatL2(len(HashEmbeddings().embed_query("x")))
    return FAISS(embeddings or HashEmbeddings(), index, InMemoryDocstore(), {})


def pg_rows(store: Any) -> list[Any]:
    """(id, text, metadata, vector as text) of each row of a PGVector store's collection,
    or a PGVectorStore's table, read by SQL."""
    import sqlalchemy

    if hasattr(store, "get_table_name"):  # PGVectorStore: its own table
        table = store.get_table_name()
        sql = sqlalchemy.text(
            f'SELECT langchain_id, content, langchain_metadata, embedding::text FROM "{table}"'
        )
        engine = sqlalchemy.create_engine(store.test_sql_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(sql))
        finally:
            engine.dispose()
    sql = sqlalchemy.text(
        "SELECT e.id, e.document, e.cmetadata, e.embedding::text FROM langchain_pg_embedding e "
        "JOIN langchain_pg_collection c ON c.uuid = e.collection_id WHERE c.name = :name"
    )
    with store._engine.connect() as connection:
        return list(connection.execute(sql, {"name": store.collection_name}))


def milvus_rows(store: Any) -> list[dict[str, Any]]:
    """Every row of a Milvus store's collection, all fields, read by its client."""
    return list(store.client.query(store.collection_name, filter='pk != ""', output_fields=["*"]))


def is_postgres(store: Any) -> bool:
    return type(store).__module__.startswith("langchain_postgres")


def milvus_store(directory: Path, embeddings: Any = None, **options: Any) -> Any:
    """langchain-milvus's store on Milvus Lite (a file, in process)."""
    from langchain_milvus import Milvus

    options.setdefault("enable_dynamic_field", True)
    return Milvus(
        embedding_function=embeddings or HashEmbeddings(),
        connection_args={"uri": str(directory / "milvus.db")},
        **options,
    )


def make_store(kind: str, request: pytest.FixtureRequest, embeddings: Any = None) -> Any:
    if kind.startswith("pgvector"):  # a real Postgres, started once for the session
        return request.getfixturevalue(kind)(embeddings)
    if kind == "milvus":
        return milvus_store(request.getfixturevalue("tmp_path"), embeddings)
    return {"qdrant": qdrant_store, "faiss": faiss_store}[kind](embeddings)


def stored_ids(store: Any, session: str) -> set[str]:
    """The IDs a Qdrant, FAISS, Milvus or Postgres store holds for ``session``."""
    if type(store).__module__.startswith("langchain_milvus"):
        return {r["pk"] for r in milvus_rows(store) if r.get("session_id") == session}
    if is_postgres(store):
        return {str(r[0]) for r in pg_rows(store) if r[2]["session_id"] == session}
    if hasattr(store, "docstore"):
        rows = store.docstore._dict.items()
        return {i for i, d in rows if d.metadata["session_id"] == session}
    points, _ = store.client.scroll("chunks", limit=10_000, with_payload=True)
    return {str(p.id) for p in points if p.payload["metadata"]["session_id"] == session}


async def ingest(p: DocumentProcessor, files: dict[str, str]) -> None:
    one = await p.process_many([files["birds.txt"], files["zebras.md"]], session_id="one")
    two = await p.process_many([files["other.txt"]], session_id="two")
    assert [r.status for r in one.results + two.results] == ["ingested"] * 3


async def test_an_in_memory_store_uses_its_own_embeddings_and_keeps_sessions_apart(
    tmp_path: Path, files: dict[str, str], no_minilm: None
) -> None:
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        assert p.embedder_name == "hash"
        await ingest(p, files)
        one, two = ids_of(store, "one"), ids_of(store, "two")
        assert one and two

        hits = await p.query("canary sings", session_id="one", k=10)
        assert hits and {d.id for d, _ in hits} <= one
        retriever = p.as_retriever(session_id="one", k=10)
        found = await retriever.ainvoke("canary sings")
        assert found and {d.id for d in found} <= one
        # A filter given at invoke time does not widen the session.
        widened = retriever.invoke("canary sings", filter=lambda doc: True)
        assert widened and {d.id for d in widened} <= one

        assert await p.delete_session("one") == len(one)
        assert set(store.store) == two


def test_the_sync_twin_gives_a_session_retriever(tmp_path: Path, files: dict[str, str]) -> None:
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    with SyncDocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        p.process_many([files["birds.txt"]], session_id="one")
        p.process_many([files["other.txt"]], session_id="two")
        found = p.as_retriever(session_id="one", k=10).invoke("canary sings")
    assert found and {d.id for d in found} == ids_of(store, "one")


async def test_a_store_that_ignores_the_filter_never_returns_another_session(
    tmp_path: Path, files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    store = FilterIgnoringStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        await ingest(p, files)
        two = ids_of(store, "two")
        with caplog.at_level(logging.WARNING, logger="rag_ingest.store"):
            hits = await p.query("canary sings", session_id="one", k=10)
            found = await p.as_retriever(session_id="one", k=10).ainvoke("canary sings")
        assert hits and not {d.id for d, _ in hits} & two
        assert found and not {d.id for d in found} & two
        assert "other sessions" in caplog.text


async def test_a_store_that_embeds_itself_is_retried_on_a_rate_limit(
    tmp_path: Path, files: dict[str, str]
) -> None:
    embeddings = FlakyEmbeddings()
    store = InMemoryVectorStore(embedding=embeddings)
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        result = await p.process_document(files["birds.txt"], session_id="one")
    assert result.status == "ingested", result.message
    assert embeddings.calls >= 2 and ids_of(store, "one")
    # The store embeds every chunk it is given.
    assert result.usage["embedded_chunks"] == result.total_chunks


async def test_a_callers_chroma_gets_our_vectors_and_exact_session_ids(
    tmp_path: Path, files: dict[str, str], no_minilm: None
) -> None:
    import chromadb
    from langchain_chroma import Chroma

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    embeddings = FlakyEmbeddings()
    store = Chroma(client=client, collection_name="mine", embedding_function=embeddings)
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        assert p.embedder_name.endswith("FlakyEmbeddings")
        await ingest(p, files)  # the 429 is retried by our timed model call
        assert p.store is not None
        stored = p.store.ids_for("one")  # read from Chroma, not the ledger
        assert stored is not None and len(stored) == 2
        Path(files["birds.txt"]).write_text("Changed: the canary flew away. " * 12)
        again = await p.process_many([files["birds.txt"]], session_id="one")
        assert again.results[0].status == "ingested"
        after = p.store.ids_for("one")
        assert after is not None and len(after) == 2 and len(after & stored) == 1
        hits = await p.query("canary flew away", session_id="one", k=1)
        assert "flew away" in hits[0][0].page_content
    client.close()


async def test_a_store_and_embeddings_that_disagree_are_refused(tmp_path: Path) -> None:
    import chromadb
    from langchain_chroma import Chroma

    store = InMemoryVectorStore(embedding=HashEmbeddings())
    with pytest.raises(ConfigurationError, match="own embeddings"):
        await DocumentProcessor(
            settings(tmp_path), vectorstore=store, embeddings=HashEmbeddings()
        ).start()
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    bare = Chroma(client=client, collection_name="bare")  # would download Chroma's model
    with pytest.raises(ConfigurationError, match="no embedding_function"):
        await DocumentProcessor(settings(tmp_path), vectorstore=bare).start()
    client.close()


@pytest.mark.parametrize("kind", ["qdrant", "faiss", "milvus", "pgvector", "pgvectorstore"])
async def test_a_qdrant_faiss_or_pgvector_store_takes_our_ids_and_keeps_sessions_apart(
    tmp_path: Path,
    files: dict[str, str],
    no_minilm: None,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # Qdrant takes only UUIDs (or integers) as point IDs, and its own Filter, not a dict:
    # before, every write failed ("not a valid UUID") and every query too. FAISS takes
    # $neq, not $ne, in a dict: it is given a function of the metadata.
    store = make_store(kind, request)
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        await ingest(p, files)
        one, two = stored_ids(store, "one"), stored_ids(store, "two")
        assert one and two
        recorded = {i for r in p.ledger.session_rows("one") for i in r.chunk_ids}
        assert recorded == one
        # A re-run finds them there (by get_by_ids; Milvus has none: by get_pks):
        # unchanged, skipped.
        again = await p.process_many([files["birds.txt"], files["zebras.md"]], session_id="one")
        assert [r.status for r in again.results] == ["skipped"] * 2
        # A chunk the store lost is found missing, and its source ingested again.
        birds = next(r for r in p.ledger.session_rows("one") if r.source.endswith("birds.txt"))
        store.delete(ids=birds.chunk_ids[:1])
        again = await p.process_many([files["birds.txt"], files["zebras.md"]], session_id="one")
        assert {r.filename: r.status for r in again.results} == {
            "birds.txt": "ingested",
            "zebras.md": "skipped",
        }
        assert stored_ids(store, "one") == one
        # New metadata: the same chunks under the same IDs, replaced (FAISS had refused
        # "ids that already exist").
        tagged = await p.process_document(
            files["birds.txt"], session_id="one", metadata={"team": "birds"}
        )
        assert tagged.status == "ingested", tagged.message
        assert stored_ids(store, "one") == one
        hits = await p.query("canary", session_id="one", k=10, where={"team": "birds"})
        assert hits and {d.metadata["filename"] for d, _ in hits} == {"birds.txt"}
        hits = await p.query("canary sings", session_id="one", k=10)
        assert hits and {d.metadata["session_id"] for d, _ in hits} == {"one"}
        found = await p.as_retriever(session_id="one", k=10).ainvoke("canary")
        assert found and {d.metadata["filename"] for d in found} == {"birds.txt", "zebras.md"}
        other = {"file_type": {"$ne": "markdown"}}
        hits = await p.query("canary sings", session_id="one", k=10, where=other)
        assert hits and {d.metadata["filename"] for d, _ in hits} == {"birds.txt"}
        # A changed file's chunks are replaced, with nothing of the old version left.
        Path(files["zebras.md"]).write_text("# Savanna\n\nThe herd moved north at dusk.\n")
        changed = await p.process_document(files["zebras.md"], session_id="one")
        assert changed.status == "ingested"
        now = {i for r in p.ledger.session_rows("one") for i in r.chunk_ids}
        assert stored_ids(store, "one") == now and now != recorded
        hits = await p.query("zebras graze", session_id="one", k=10)
        assert not any("Zebras graze" in d.page_content for d, _ in hits)
        checked = await p.verify_session("one")
        assert checked.consistent and checked.listed  # listed by the store, not the ledger
        assert await p.delete_session("one") == len(now)
        assert stored_ids(store, "one") == set() and stored_ids(store, "two") == two


def stored_vectors(store: Any) -> dict[str, list[float]]:
    """Each text a Qdrant, FAISS, Milvus or Postgres store holds, with its stored vector."""
    if type(store).__module__.startswith("langchain_milvus"):
        return {r["text"]: list(r["vector"]) for r in milvus_rows(store)}
    if is_postgres(store):
        return {r[1]: json.loads(r[3]) for r in pg_rows(store)}
    if hasattr(store, "docstore"):
        return {
            store.docstore.search(doc_id).page_content: store.index.reconstruct(row).tolist()
            for row, doc_id in store.index_to_docstore_id.items()
        }
    points, _ = store.client.scroll("chunks", limit=10_000, with_payload=True, with_vectors=True)
    return {p.payload["page_content"]: p.vector for p in points}


@pytest.mark.parametrize("kind", ["faiss", "qdrant", "milvus", "pgvector", "pgvectorstore"])
async def test_a_faiss_qdrant_or_pgvector_store_gets_vectors_from_our_timed_retried_calls(
    tmp_path: Path,
    files: dict[str, str],
    no_minilm: None,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # FAISS and PGVector (add_embeddings, each its own signature) and Qdrant in dense
    # mode (its points written with our vectors) take vectors: their embedding calls
    # are ours, each under models.timeout and retried. Inside their own add_documents a
    # hung call had no limit.
    class HangsOnce(HashEmbeddings):
        calls = 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            type(self).calls += 1
            if type(self).calls == 1:
                time.sleep(2.0)  # past models.timeout: cut short and tried again
            return super().embed_documents(texts)

    store = make_store(kind, request, HangsOnce())
    timed = settings(tmp_path).model_copy(
        update={"models": ModelSettings(embedder="minilm", timeout=0.5, max_attempts=3)}
    )
    async with DocumentProcessor(timed, vectorstore=store) as p:
        result = await p.process_document(files["birds.txt"], session_id="one")
        assert result.status == "ingested" and HangsOnce.calls == 2
        assert result.embedder == p.embedder_name
        # Its vectors are reused as Chroma's are: new metadata, the file in another
        # session; nothing is embedded again.
        tagged = await p.process_document(
            files["birds.txt"], session_id="one", metadata={"team": "birds"}
        )
        twin = await p.process_document(files["birds.txt"], session_id="two")
        for again in (tagged, twin):
            assert again.status == "ingested"
            assert again.reused_vectors == again.total_chunks == result.total_chunks
        assert HangsOnce.calls == 2
        # Each stored vector is its own text's.
        reference = HashEmbeddings()
        assert len(stored_ids(store, "one") | stored_ids(store, "two")) == 2 * result.total_chunks
        vectors = stored_vectors(store)
        assert len(vectors) == result.total_chunks
        for text, vector in vectors.items():
            assert vector == pytest.approx(reference.embed_query(text), abs=1e-6)
        hits = await p.query("canary sings", session_id="two", k=1)
        assert hits and hits[0][0].metadata["filename"] == "birds.txt"


@pytest.mark.parametrize(
    "kind",
    [
        "chroma",
        "in-memory",
        "filter-ignoring",
        "qdrant",
        "faiss",
        "milvus",
        "pgvector",
        "pgvectorstore",
    ],
)
async def test_a_filter_narrows_within_the_session_and_never_beyond(
    tmp_path: Path, files: dict[str, str], kind: str, request: pytest.FixtureRequest
) -> None:
    stores: dict[str, Any] = {
        "in-memory": lambda: InMemoryVectorStore(embedding=HashEmbeddings()),
        "filter-ignoring": lambda: FilterIgnoringStore(embedding=HashEmbeddings()),
        "qdrant": qdrant_store,
        "faiss": faiss_store,
        "pgvector": lambda: make_store("pgvector", request),
        "milvus": lambda: make_store("milvus", request),
        "pgvectorstore": lambda: make_store("pgvectorstore", request),
    }
    store = stores[kind]() if kind in stores else None
    processor = (
        DocumentProcessor(settings(tmp_path), vectorstore=store)
        if store is not None
        else DocumentProcessor(settings(tmp_path), embeddings=HashEmbeddings())
    )
    async with processor as p:
        await ingest(p, files)
        markdown = {"file_type": "markdown"}
        hits = await p.query("canary sings", session_id="one", k=10, where=markdown)
        assert hits and {d.metadata["filename"] for d, _ in hits} == {"zebras.md"}
        if kind != "filter-ignoring":
            # The store applies it: the best match of the filter, not a best match dropped.
            best = await p.query("canary sings", session_id="one", k=1, where=markdown)
            assert [d.metadata["filename"] for d, _ in best] == ["zebras.md"]
        either = {"filename": {"$in": ["birds.txt", "other.txt"]}}
        hits = await p.query("canary sings", session_id="one", k=10, where=either)
        assert {d.metadata["filename"] for d, _ in hits} == {"birds.txt"}  # not two's
        # Several fields, and several operators on one field, in one dict (Chroma takes
        # one of each per dict: the filter is rewritten as an $and).
        several = {"file_type": "markdown", "chunk_index": {"$gte": 0, "$lt": 100}}
        hits = await p.query("canary sings", session_id="one", k=10, where=several)
        assert {d.metadata["filename"] for d, _ in hits} == {"zebras.md"}
        # A filter naming another session finds nothing: it narrows, it never widens.
        assert await p.query("canary", session_id="one", k=10, where={"session_id": "two"}) == []
        for retriever in (
            p.as_retriever(session_id="one", k=10, where=markdown),
            p.as_retriever(session_id="one", search_kwargs={"k": 10, "filter": markdown}),
        ):
            found = await retriever.ainvoke("canary sings")
            assert found and {d.metadata["filename"] for d in found} == {"zebras.md"}
        with pytest.raises(ConfigurationError, match="unknown operator"):
            await p.query("x", session_id="one", where={"filename": {"$regex": ".*"}})
        with pytest.raises(ConfigurationError, match="narrows its session"):
            p.as_retriever(session_id="one", search_kwargs={"filter": lambda doc: True})
        for k in (0, -1, 2.5, "3", True):
            with pytest.raises(ConfigurationError, match="how many chunks"):
                await p.query("x", session_id="one", k=k)  # type: ignore[arg-type]
            with pytest.raises(ConfigurationError, match="how many chunks"):
                p.as_retriever(session_id="one", search_kwargs={"k": k})


async def test_an_in_memory_store_made_anew_gets_its_documents_again(
    tmp_path: Path, files: dict[str, str]
) -> None:
    # A notebook's kernel restarted: the store in memory is empty, the ledger on disk
    # remembers. Before, every document was "unchanged" and the new store stayed empty.
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        await ingest(p, files)
        again = await p.process_document(files["birds.txt"], session_id="one")
        assert again.status == "skipped"  # the store holds it: still a skip
    first = ids_of(store, "one")
    fresh = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings(tmp_path), vectorstore=fresh) as p:
        await ingest(p, files)
        assert ids_of(fresh, "one") == first
        hits = await p.query("canary sings", session_id="one", k=3)
        assert hits


@pytest.fixture
def unlisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory store as one that cannot list a session's IDs (most LangChain
    stores: no adapter of ours lists theirs)."""
    from rag_ingest.vectorstores import InMemoryAdapter

    monkeypatch.setattr(InMemoryAdapter, "ids_for", lambda self, session, source: None)


async def test_verify_checks_a_store_that_cannot_list_ids_by_what_the_ledger_knows(
    tmp_path: Path, files: dict[str, str], unlisted: None
) -> None:
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        await ingest(p, files)
        clean = await p.verify_session("one")
        assert clean.consistent and not clean.listed
        assert clean.stored == clean.recorded == len(ids_of(store, "one"))

        # A chunk lost from the store: its source is missing one.
        rows = {Path(r.source).name: r for r in p.ledger.session_rows("one")}
        source, lost = rows["birds.txt"].source, rows["birds.txt"].chunk_ids[0]
        store.delete([lost])
        # A write that landed before a crash cut its ledger row off: the new version's
        # chunks are orphans, and the old ones it replaced are missing.
        Path(files["zebras.md"]).write_text("# Savanna\n\nThe herd moved north at dusk.\n")

        def crash(**kwargs: Any) -> None:
            raise KeyboardInterrupt("power cut")

        original, p.ledger.record = p.ledger.record, crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await p.process_document(files["zebras.md"], session_id="one")
        p.ledger.record = original  # type: ignore[method-assign]
        written = ids_of(store, "one") - {
            i for r in p.ledger.session_rows("one") for i in r.chunk_ids
        }
        assert written

        found = await p.verify_session("one")
        zebras = rows["zebras.md"]
        assert found.missing == {source: 1, zebras.source: len(zebras.chunk_ids)}
        assert set(found.orphans) == written
        repaired = await p.verify_session("one", repair=True)
        assert repaired.repaired and not (ids_of(store, "one") & written)
        assert p.ledger.get("one", source).status == "failed"
        # The next run ingests again what was missing or changed.
        rerun = await p.process_many([files["birds.txt"], files["zebras.md"]], session_id="one")
        assert [r.status for r in rerun.results] == ["ingested"] * 2
        assert (await p.verify_session("one")).consistent
        assert (await p.verify_session("two")).consistent


async def test_verify_refuses_a_store_that_can_neither_list_nor_get(
    tmp_path: Path, files: dict[str, str], unlisted: None
) -> None:
    class Opaque(InMemoryVectorStore):
        def get_by_ids(self, ids: Any) -> list[Document]:
            raise NotImplementedError

    async with DocumentProcessor(
        settings(tmp_path), vectorstore=Opaque(embedding=HashEmbeddings())
    ) as p:
        await ingest(p, files)
        with pytest.raises(ConfigurationError, match="lists a session's chunk IDs"):
            await p.verify_session("one")


@pytest.mark.parametrize(
    "kind", ["in-memory", "faiss", "qdrant", "milvus", "pgvector", "pgvectorstore"]
)
async def test_a_store_that_lists_a_session_has_every_orphan_found_and_deleted(
    tmp_path: Path,
    files: dict[str, str],
    no_minilm: None,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # A chunk no ledger row ever named (a lost or replaced ledger file, a write from
    # elsewhere): found by listing the session in the store, removed by a repair and by
    # delete_session. Before, only Chroma could list; these were checked by the IDs
    # the ledger knew of, and such an orphan stayed forever.
    store = (
        InMemoryVectorStore(embedding=HashEmbeddings())
        if kind == "in-memory"
        else make_store(kind, request)
    )

    def held(session: str) -> set[str]:
        return ids_of(store, session) if kind == "in-memory" else stored_ids(store, session)

    stray = "00000000-0000-8000-8000-00000000000{}"
    async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
        await ingest(p, files)
        ours, two = held("one"), held("two")
        for n in (1, 2):
            store.add_texts(["stray"], metadatas=[{"session_id": "one"}], ids=[stray.format(n)])
        found = await p.verify_session("one")
        assert found.listed and found.orphans == [stray.format(1), stray.format(2)]
        assert not found.missing and found.stored == len(ours) + 2
        assert held("one") == ours | {stray.format(1), stray.format(2)}
        repaired = await p.verify_session("one", repair=True)
        assert repaired.repaired and held("one") == ours
        store.add_texts(["stray"], metadatas=[{"session_id": "one"}], ids=[stray.format(3)])
        assert await p.delete_session("one") == len(ours) + 1
        assert held("one") == set() and held("two") == two
        assert (await p.verify_session("two")).consistent


def test_a_faiss_index_that_keeps_no_vectors_has_none_to_reuse() -> None:
    # IVF and PQ indexes cannot give a row's vector back (reconstruct raises): nothing is
    # reused, and the document is embedded as usual rather than failed.
    from rag_ingest.store import ChunkStore

    store = faiss_store()
    store.add_texts(["The canary sings."], ids=["x"])
    wrapped = ChunkStore.wrap(store, batch_size=8, max_attempts=1)
    assert set(wrapped.vectors_by_hash(["x"])) == {content_hash("The canary sings.")}

    class KeepsNoVectors:
        def reconstruct(self, row: int) -> Any:
            raise RuntimeError("direct map not initialized")

    store.index = KeepsNoVectors()
    assert wrapped.vectors_by_hash(["x"]) == {}


async def test_a_milvus_store_without_dynamic_fields_is_refused_at_start(tmp_path: Path) -> None:
    # Its fields would be fixed by the first chunk's metadata: a chunk of another file
    # type (a PDF's page numbers, code's language) would fail to insert.
    store = milvus_store(tmp_path, enable_dynamic_field=False)
    with pytest.raises(ConfigurationError, match="enable_dynamic_field=True"):
        await DocumentProcessor(settings(tmp_path), vectorstore=store).start()


async def test_an_async_mode_pgvector_is_refused_at_start_saying_what_to_give(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # It refuses every sync call: before, every document failed, each with the store's
    # "This method must be called without async_mode".
    store = request.getfixturevalue("pgvector")(async_mode=True)
    with pytest.raises(ConfigurationError, match="async_mode=False"):
        await DocumentProcessor(settings(tmp_path), vectorstore=store).start()


async def test_a_pgvectorstore_without_get_is_refused_at_start_saying_what_to_upgrade(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # langchain-postgres before 0.0.17: every document failed on its first read ("no
    # attribute 'get'").
    store = make_store("pgvectorstore", request)
    monkeypatch.delattr(type(store), "get")
    with pytest.raises(ConfigurationError, match=r"langchain-postgres to 0\.0\.17"):
        await DocumentProcessor(settings(tmp_path), vectorstore=store).start()


async def test_two_pgvector_collections_in_one_database_each_hold_their_chunks(
    tmp_path: Path, files: dict[str, str], no_minilm: None, request: pytest.FixtureRequest
) -> None:
    # PGVector keeps every collection in one table keyed by ID, and its upsert of an ID
    # another collection holds updates that row in place: the same chunk IDs written to
    # a second collection landed in the first, and the second stayed empty, reported
    # ingested. A PGVector collection's IDs are its own.
    first, second = make_store("pgvector", request), make_store("pgvector", request)
    held: list[set[str]] = []
    for store in (first, second):
        async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
            await ingest(p, files)
            assert (await p.verify_session("one")).consistent
            hits = await p.query("canary sings", session_id="one", k=1)
            assert hits and hits[0][0].metadata["filename"] == "birds.txt"
        held.append(stored_ids(store, "one"))
    assert held[0] and held[1] and not held[0] & held[1]
    assert len(held[0]) == len(held[1])


async def test_each_qdrant_collection_has_its_own_ledger(
    tmp_path: Path, files: dict[str, str], no_minilm: None
) -> None:
    # One ledger per store class, shared by its collections, took a source's version
    # and chunk IDs from whichever collection was written last: a file changed and
    # ingested into B, then into A, left A's old chunks there for good.
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import models as qmodels

    from rag_ingest.store import ledger_path

    shared = qdrant_store()
    size = len(HashEmbeddings().embed_query("x"))
    params = qmodels.VectorParams(size=size, distance=qmodels.Distance.COSINE)
    shared.client.create_collection("other", vectors_config=params)
    a = shared
    b = QdrantVectorStore(client=shared.client, collection_name="other", embedding=HashEmbeddings())
    assert ledger_path(settings(tmp_path).store, a) != ledger_path(settings(tmp_path).store, b)
    for store in (a, b):
        async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
            await ingest(p, files)
    Path(files["zebras.md"]).write_text("# Savanna\n\nThe herd moved north at dusk.\n")
    for store in (b, a):
        async with DocumentProcessor(settings(tmp_path), vectorstore=store) as p:
            changed = await p.process_document(files["zebras.md"], session_id="one")
            assert changed.status == "ingested"
            recorded = {i for r in p.ledger.session_rows("one") for i in r.chunk_ids}
            assert (await p.verify_session("one")).consistent
        points, _ = store.client.scroll(store.collection_name, limit=1000, with_payload=True)
        held = {str(x.id) for x in points if x.payload["metadata"]["session_id"] == "one"}
        assert held == recorded  # nothing of the old version left in either


async def test_a_collections_ledger_starts_from_the_one_its_store_class_shared(
    tmp_path: Path, files: dict[str, str], no_minilm: None
) -> None:
    # Upgrading keeps what the shared ledger knew: unchanged files stay skipped.
    from rag_ingest import ledger as ledger_module

    qdrant = qdrant_store()
    s = settings(tmp_path)
    async with DocumentProcessor(s, vectorstore=qdrant) as p:
        await ingest(p, files)
    kind = type(qdrant)
    old = ledger_module._named_ledger(
        s.store, f"{kind.__module__}.{kind.__qualname__}", kind.__name__
    )
    own = ledger_module.ledger_path(s.store, qdrant)
    assert own != old and own.is_file() and not old.exists()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{own}{suffix}").exists():
            Path(f"{own}{suffix}").rename(f"{old}{suffix}")
    async with DocumentProcessor(s, vectorstore=qdrant) as p:
        again = await p.process_many([files["birds.txt"], files["zebras.md"]], session_id="one")
        assert [r.status for r in again.results] == ["skipped"] * 2
    assert own.is_file() and old.is_file()
