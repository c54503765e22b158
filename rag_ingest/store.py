"""Vector-store writes: deterministic IDs, session tags, replace-on-change.

The default store is Chroma (embedded persistent client, or a server by URL),
written with ``collection.upsert`` and our own vectors (``update`` for a chunk it holds
with the same text and vector): Chroma's ``add`` ignores an existing ID, so it is never
used. A caller's ``langchain_chroma.Chroma`` is written the same way. Any other
LangChain ``VectorStore`` works through ``add_documents(ids=...)`` (it embeds with its
own embeddings, in batches, each retried on a transient error) and ``delete(ids)``,
unless its adapter (:mod:`rag_ingest.vectorstores`) knows better: FAISS, Qdrant,
Milvus, PGVector and PGVectorStore take our vectors.

Session scope does not trust the store with it: queries and retrievers pass the
store its session filter, in its own form, and then drop any chunk of another
session that comes back anyway.

Writes come from one process (Chroma's persistent client is not safe across
processes): the pipeline's event loop calls these methods through one I/O thread
at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception

from rag_ingest.chunking import chunk_id, chunk_ids
from rag_ingest.errors import (
    ConfigurationError,
    MissingExtraError,
    SessionRequiredError,
    StoreError,
)
from rag_ingest.filters import check_where, matches
from rag_ingest.ledger import (
    Ledger,
    LedgerRow,
    SessionInfo,
    check_room,
    ledger_path,
    open_ledger,
)
from rag_ingest.models import Vectors, is_transient, model_call_policy
from rag_ingest.settings import StoreSettings
from rag_ingest.vectorstores import adapter_for

__all__ = [
    "ChunkStore",
    "Ledger",
    "LedgerRow",
    "SessionInfo",
    "SessionRetriever",
    "VerifyReport",
    "check_room",
    "chunk_id",
    "chunk_ids",
    "chroma_collection",
    "compare",
    "ledger_path",
    "open_ledger",
    "require_session",
]

logger = logging.getLogger("rag_ingest.store")


_EMBEDDER_KEY = "rag_ingest:embedder"  # collection metadata: whose vectors it holds


def require_session(session_id: str | None) -> str:
    """A session id, or :class:`SessionRequiredError`: never an unfiltered query."""
    if not session_id or not str(session_id).strip():
        raise SessionRequiredError("a session_id is required (queries are never unfiltered)")
    return str(session_id)


def store_transient(exc: BaseException) -> bool:
    """A store failure worth another attempt: the connection lost, a timeout, a 429 or
    5xx (Chroma's own errors carry their status as ``code()``); never a bad request."""
    code = getattr(exc, "code", None)
    if callable(code) and type(exc).__module__.startswith("chromadb"):
        try:
            status = int(code())
        except Exception:
            status = 0
        if status:
            return status == 429 or status >= 500
    return is_transient(exc)


def _store_policy(attempts: int) -> dict[str, Any]:
    return model_call_policy(attempts) | {"retry": retry_if_exception(store_transient)}


def _bound_requests(client: Any, seconds: float) -> None:
    """Give a chromadb ``HttpClient`` a time limit per request: it sends with none
    (httpx ``timeout=None``, chromadb 1.5.9), so a server that goes quiet would hang
    the store's threads, and with them every write, forever."""
    import httpx

    sessions = [
        getattr(getattr(holder, "_server", None), "_session", None)
        for holder in (client, getattr(client, "_admin_client", None))
    ]
    if not any(isinstance(s, httpx.Client) for s in sessions):
        logger.warning("cannot set a time limit on this chromadb client's requests")
    for session in sessions:
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(seconds, connect=min(seconds, 10.0))


def _repoint(client: Any, port: int) -> None:
    """Send a chromadb ``HttpClient``'s requests (its admin client's too) to ``port`` on
    the same host from now on: our directory's server moved there (see
    :attr:`LocalChromaServer.moved`). Its collections call through the same object."""
    for holder in (client, getattr(client, "_admin_client", None)):
        api: Any = getattr(holder, "_server", None)
        url = getattr(api, "_api_url", None)
        if isinstance(url, str):
            parts = urlsplit(url)
            api._api_url = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))
        else:
            logger.warning("cannot point this chromadb client at port %d", port)


def _probe(
    url: str, timeout: float, headers: dict[str, str] | None = None, *, trust_env: bool = True
) -> None:
    """A Chroma server's heartbeat, or :class:`StoreError` naming the URL: chromadb's
    client would wait on a quiet server with no limit while it is being made."""
    import httpx

    from rag_ingest._redact import redact

    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, headers=headers, trust_env=trust_env) as http:
            http.get(f"{base}/api/v2/heartbeat").raise_for_status()
            # What chromadb's client asks first: a refused token is told here, before it
            # makes a client whose failed constructor would leave its connection open.
            identity = http.get(f"{base}/api/v2/auth/identity")
        if identity.status_code in (401, 403):
            raise StoreError(_refused(url, f"{identity.status_code} {identity.reason_phrase}"))
    except httpx.HTTPError as exc:
        raise StoreError(
            f"the Chroma server at {redact(url)} did not answer its heartbeat: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _refused(url: str, why: str) -> str:
    from rag_ingest._redact import redact

    return (
        f"the Chroma server at {redact(url)} refused the client: {redact(why)} (a token it "
        "wants goes in store.chroma_headers)"
    )


def chroma_collection(vectorstore: Any) -> Any:
    """The raw collection behind a ``langchain_chroma.Chroma``, else None."""
    module = sys.modules.get("langchain_chroma")  # made a Chroma: already imported
    if module is None or not isinstance(vectorstore, module.Chroma):
        return None
    return vectorstore._collection


def _check_k(k: Any) -> None:
    """How many chunks to return: a whole number from 1, or :class:`ConfigurationError`
    (not the store's error, after a round trip)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError(f"k is how many chunks to return: an int from 1, not {k!r}")


def _of_session(
    docs: list[Any],
    session_id: str,
    get: Callable[[Any], Document],
    where: dict[str, Any] | None = None,
) -> list[Any]:
    kept = [
        d
        for d in docs
        if get(d).metadata.get("session_id") == session_id
        and (where is None or matches(get(d).metadata, where))
    ]
    if len(kept) < len(docs):
        logger.warning(
            "the vector store returned %d chunks of other sessions (or outside the filter) "
            "despite the filter; they were dropped",
            len(docs) - len(kept),
        )
    return kept


class SessionRetriever(VectorStoreRetriever):
    """A vector-store retriever that returns one session's chunks only.

    The store gets the session filter, and whatever it returns is checked again:
    a store that ignores the filter, or a caller's ``filter=`` at invoke time,
    never yields another session's chunks.
    """

    session_id: str
    where: dict[str, Any] | None = None
    store: Any = None  # the ChunkStore whose retries (and server restarts) searches get
    filter_key: str = "filter"  # the search keyword the store's filter goes under
    # Told the session after each search (the processor notes its use for retention).
    on_search: Any = None

    def _session_only(self, kwargs: dict[str, Any]) -> None:
        """The session filter over any the caller gave at invoke time."""
        kwargs.pop("filter", None)
        kwargs[self.filter_key] = self.search_kwargs[self.filter_key]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        self._session_only(kwargs)
        search = super()._get_relevant_documents
        if self.store is None:
            docs = search(query, run_manager=run_manager, **kwargs)
        else:
            docs = self.store.call(search, query, run_manager=run_manager, **kwargs)
        if self.on_search is not None:
            self.on_search(self.session_id)
        return _of_session(docs, self.session_id, lambda d: d, self.where)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.store is not None and not self.store.searches_async:
            # A store whose async search refuses its sync mode (PGVector without an
            # async engine): its sync search, off the loop.
            return await asyncio.to_thread(
                self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
            )
        self._session_only(kwargs)
        search = super()._aget_relevant_documents

        def make() -> Any:
            return search(query, run_manager=run_manager, **kwargs)

        docs = await (make() if self.store is None else self.store.acall(make))
        if self.on_search is not None:
            self.on_search(self.session_id)
        return _of_session(docs, self.session_id, lambda d: d, self.where)


_READ_ROWS = 1000  # of Chroma's records, with their vectors, a read


def _held(metadata: dict[str, Any], key: str, value: Any) -> bool:
    """Whether a record's stored ``metadata`` holds ``value`` under ``key`` already (of
    its type too: ``True == 1`` in Python, not in a stored filter; None: not held)."""
    held = metadata.get(key)
    return type(held) is type(value) and held == value


class ChunkStore:
    """Session-scoped writes and queries over a vector store."""

    def __init__(
        self,
        vectorstore: VectorStore,
        *,
        collection: Any = None,
        server: Any = None,
        client: Any = None,
        lock: Any = None,
        concurrent_writes: bool = False,
        batch_size: int = 64,
        max_attempts: int = 1,
    ) -> None:
        self.vectorstore = vectorstore
        # A store that embeds on add: texts per add_documents call, attempts per call.
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        # A Chroma server (ours or remote) takes concurrent requests; an in-process client
        # or an unknown VectorStore gets one call at a time.
        self.concurrent_writes = concurrent_writes
        self._server = server  # a LocalChromaServer we own, stopped by close()
        self._client = client  # a Chroma client we made, closed by close()
        self._dir_lock = lock  # the embedded directory's StoreLock (in-process), if ours
        self._collection = collection  # the raw Chroma collection, when Chroma
        # A caller's store: its filter form, whether it takes our vectors rather than
        # embed on add, whether it lists a session's IDs (rag_ingest.vectorstores).
        self._adapter = adapter_for(vectorstore)
        self._takes_vectors = collection is None and self._adapter.takes_vectors
        self.max_batch = 5000
        if collection is not None:
            client = getattr(vectorstore, "_client", None)
            getter = getattr(client, "get_max_batch_size", None)
            if getter is not None:
                self.max_batch = int(getter())
        self._lock: Any = contextlib.nullcontext() if concurrent_writes else threading.Lock()
        # Set when our collection was made with another embedder: writes and queries are
        # refused (deletes, listing and verify are not: they do not compare vectors).
        self.foreign_embedder: str | None = None

    @classmethod
    def wrap(cls, vectorstore: VectorStore, *, batch_size: int, max_attempts: int) -> ChunkStore:
        """A caller's store: Chroma through its collection, any other through its API;
        :class:`ConfigurationError` for one that cannot be written as it was made."""
        store = cls(
            vectorstore,
            collection=chroma_collection(vectorstore),
            batch_size=batch_size,
            max_attempts=max_attempts,
        )
        why = store._adapter.unusable()
        if why is not None:
            raise ConfigurationError(why)
        return store

    @classmethod
    def chroma(cls, settings: StoreSettings, embeddings: Embeddings) -> ChunkStore:
        """Our Chroma collection (embedded, or a server by URL). It records the embedder
        it is made with; opened with another, :attr:`foreign_embedder` says so."""
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings
            from langchain_chroma import Chroma
        except ImportError as exc:
            raise MissingExtraError("the Chroma store", "chroma") from exc
        client_settings = ChromaSettings(anonymized_telemetry=False)
        server = None
        lock = None  # in-process: the directory's writer lock, held until close()
        chroma_url = settings.chroma_url
        if chroma_url is None:
            from rag_ingest.chroma_server import LocalChromaServer, StoreBusyError, StoreLock

            where = settings.persist_dir / "chroma"
            served = LocalChromaServer(where, answer_within=min(5.0, settings.timeout))
            if settings.embedded_mode == "server":
                served.start()  # its own, or the server of the process that owns it
                server = served
            else:
                try:
                    lock = StoreLock(where)
                except StoreBusyError:
                    served.join()  # a backend serving it: `rag-ingest query` beside it
                    server = served
            if server is not None:
                chroma_url = server.url
        if chroma_url:
            url = urlsplit(chroma_url)
            headers = {k: v.get_secret_value() for k, v in settings.chroma_headers.items()}
            from rag_ingest.s3.proxy import is_loopback

            # Loopback (ours is on 127.0.0.1) is reached directly, as S3 is: a proxy set for
            # the internet cannot reach this machine's. Another host's proxy, if the
            # environment sets one, is the user's.
            local = is_loopback(url.hostname or "")
            if server is None:  # ours answered its heartbeat as it started
                if url.username or url.password or url.path.strip("/") or url.query:
                    raise ConfigurationError(
                        "store.chroma_url is scheme://host:port only (chromadb's client "
                        "drops a path, a query and credentials): give a token in "
                        "store.chroma_headers"
                    )
                _probe(chroma_url, settings.timeout, headers, trust_env=not local)
            if local:
                from rag_ingest.chroma_server import proxies_ignored_by_chromadb

                loopback: Any = proxies_ignored_by_chromadb()
            else:
                loopback = contextlib.nullcontext()
            try:
                with loopback:
                    client: Any = chromadb.HttpClient(
                        host=url.hostname or "localhost",
                        port=url.port or (443 if url.scheme == "https" else 8000),
                        ssl=url.scheme == "https",
                        headers=headers or None,
                        settings=client_settings,
                        tenant=settings.chroma_tenant,
                        database=settings.chroma_database,
                    )
            except Exception as exc:
                if server is not None:
                    server.stop()
                # A 401 from a server whose heartbeat is open: a bad or missing token.
                raise StoreError(_refused(chroma_url, f"{type(exc).__name__}: {exc}")) from exc
            _bound_requests(client, settings.timeout)
            if server is not None:
                server.moved.append(functools.partial(_repoint, client))
        else:
            from rag_ingest.chroma_server import record_owner

            assert lock is not None
            try:
                record_owner(lock.path, 0)
                client = chromadb.PersistentClient(
                    path=str(settings.persist_dir / "chroma"), settings=client_settings
                )
            except BaseException:
                lock.release()
                raise
        from rag_ingest.models import embedder_identity

        identity = embedder_identity(embeddings)
        try:
            store = Chroma(
                client=client,
                collection_name=settings.collection,
                embedding_function=embeddings,
                collection_metadata={"hnsw:space": "cosine", _EMBEDDER_KEY: identity},
            )
        except Exception as exc:
            client.close()
            if server is not None:
                server.stop()
            if lock is not None:
                lock.release()
            if chroma_url and server is None:
                raise StoreError(_refused(chroma_url, f"{type(exc).__name__}: {exc}")) from exc
            raise
        made = cls(
            store,
            collection=store._collection,
            server=server,
            client=client,
            lock=lock,
            concurrent_writes=bool(chroma_url),
            max_attempts=settings.max_attempts,
        )
        recorded = (store._collection.metadata or {}).get(_EMBEDDER_KEY)
        if recorded is not None and recorded != identity:
            made.foreign_embedder = (
                f"the collection {settings.collection!r} holds vectors from the embedder "
                f"{recorded!r}, and this processor embeds with {identity!r}: its chunks and "
                "queries would not be comparable. Use the same embedder (the CLI's "
                "--embeddings), or another collection (store.collection) for this one"
            )
        return made

    def close(self) -> None:
        """Close the Chroma client and stop the local Chroma server, if this store made them."""
        client, self._client = self._client, None
        try:
            if client is not None:
                client.close()  # SQLite handles (in-process)
                # chromadb's close() leaves an HttpClient's httpx pools (its own and its
                # admin client's) open (1.5.9): sockets would linger until collected.
                for holder in (client, getattr(client, "_admin_client", None)):
                    session = getattr(getattr(holder, "_server", None), "_session", None)
                    if session is not None:
                        session.close()
        finally:
            if self._server is not None:
                self._server.stop()
                self._server = None
            lock, self._dir_lock = self._dir_lock, None
            if lock is not None:
                lock.release()

    def check_embedder(self) -> None:
        """:class:`ConfigurationError` if the collection's vectors come from another
        embedder (see :attr:`foreign_embedder`)."""
        if self.foreign_embedder is not None:
            raise ConfigurationError(self.foreign_embedder)

    @property
    def id_namespace(self) -> str:
        """What sets this store's chunk IDs apart from another collection's, where one
        ID is a key across collections (PGVector's one table); else empty."""
        return "" if self._collection is not None else self._adapter.id_namespace

    @property
    def searches_async(self) -> bool:
        """Whether the store's own async search works (else retrievers run its sync
        search in a thread)."""
        return self._collection is not None or self._adapter.searches_async

    @property
    def shares_directory(self) -> bool:
        """Whether other processes may write this embedded store directory too: it is
        served by a Chroma server on it, this process's or one it joined."""
        return self._server is not None

    @property
    def computes_own_vectors(self) -> bool:
        """False for Chroma and stores that take vectors (we pass them); True for stores
        that embed on add."""
        return self._collection is None and not self._takes_vectors

    # -- writes --------------------------------------------------------------------

    def upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: Vectors | None,
        maybe_held: Collection[str] | None = None,
        own_vectors: Collection[str] = (),
    ) -> None:
        """Write chunks, each replacing any the store holds under its ID. ``maybe_held``:
        the IDs it may hold already (the ledger's for these sources), the only ones
        Chroma is asked for; None, every one. ``own_vectors``: IDs whose vector was read
        from their own record (``vectors_by_hash``'s ``origins``): Chroma is not asked
        for those vectors again, only for their text and metadata."""
        self.check_embedder()
        held: set[str] = set()
        if self._collection is None and not self._adapter.replaces_held_ids:
            # An ID written before (new metadata, a replayed write) is taken out first:
            # FAISS refuses to add it again, and a Milvus server would keep both rows.
            held = self.present(ids) or set()
        with self._lock:
            try:
                if self._collection is not None:
                    assert vectors is not None
                    for i in range(0, len(ids), self.max_batch):
                        j = i + self.max_batch
                        self._chroma_write(
                            ids[i:j],
                            texts[i:j],
                            metadatas[i:j],
                            vectors[i:j],
                            maybe_held,
                            own_vectors,
                        )
                else:
                    docs = [
                        Document(page_content=t, metadata=m)
                        for t, m in zip(texts, metadatas, strict=True)
                    ]
                    if held:
                        self.call(self.vectorstore.delete, [i for i in ids if i in held])
                    for i in range(0, len(ids), self.batch_size):
                        j = i + self.batch_size
                        if vectors is not None and self._takes_vectors:
                            self.call(
                                self._adapter.add_vectors,
                                ids[i:j],
                                texts[i:j],
                                metadatas[i:j],
                                vectors[i:j],
                            )
                        else:
                            self.call(self.vectorstore.add_documents, docs[i:j], ids=ids[i:j])
            except Exception as exc:
                raise StoreError(f"vector store write failed: {type(exc).__name__}: {exc}") from exc

    def _chroma_write(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: Vectors,
        maybe_held: Collection[str] | None,
        own_vectors: Collection[str] = (),
    ) -> None:
        """One batch into Chroma, each record as given. Chroma merges a written
        record's metadata into what it held: a key the new chunk lacks (a ``metadata=``
        field dropped, a summary no longer made) is written as None, which removes it.
        A record it holds with the same text and vector has its metadata updated alone:
        an upsert re-indexes the vector (measured: 8.9 s for 5,000 held chunks, against
        0.4 s for their metadata and 2.4 s to add them new)."""
        import numpy as np

        assert self._collection is not None
        vectors = np.asarray(vectors, dtype=np.float32)
        asked = ids if maybe_held is None else [i for i in ids if i in maybe_held]
        # A first ingest's chunks are new: nothing is read back for them. A vector read
        # from its own record moments ago is not read again (a 12,097-chunk re-ingest
        # read each twice); its record is, in case it went since.
        own = set(own_vectors).intersection(asked)
        rows = [
            *self._chroma_rows([i for i in asked if i in own], self.call, vectors=False),
            *self._chroma_rows([i for i in asked if i not in own], self.call),
        ]
        before = {row_id: (text, vector, metadata or {}) for row_id, text, vector, metadata in rows}
        written: list[int] = []
        kept: list[int] = []
        replaced: list[dict[str, Any]] = []
        for n, (written_id, metadata) in enumerate(zip(ids, metadatas, strict=True)):
            same = False
            if (old := before.get(written_id)) is not None:
                text, vector, old_metadata = old
                metadata = {**metadata, **{k: None for k in old_metadata if k not in metadata}}
                same = text == texts[n] and (
                    written_id in own
                    or (
                        vector is not None
                        and np.array_equal(np.asarray(vector, dtype=np.float32), vectors[n])
                    )
                )
                if same:
                    # Only what changed: Chroma keeps the keys an update leaves out, and
                    # its time goes by the keys written (1,800 chunks' new version and
                    # ingested_at: 0.09 s, against 0.34 s for all of their 21 keys,
                    # measured in-process).
                    metadata = {k: v for k, v in metadata.items() if not _held(old_metadata, k, v)}
            replaced.append(metadata)
            if same and not metadata:
                continue  # held as it is
            (kept if same else written).append(n)
        if written:
            self.call(
                self._collection.upsert,
                ids=[ids[n] for n in written],
                embeddings=vectors[written],
                metadatas=[replaced[n] for n in written],
                documents=[texts[n] for n in written],
            )
        if kept:
            self.call(
                self._collection.update,
                ids=[ids[n] for n in kept],
                metadatas=[replaced[n] for n in kept],
            )

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call, retried on a transient failure: writes are upserts and deletes
        by ID, so a replay is harmless. Our own Chroma server, if it has exited or hangs,
        is restarted before the next attempt."""
        retrying = Retrying(**_store_policy(self.max_attempts), before_sleep=self._before_retry)
        return retrying(fn, *args, **kwargs)

    async def acall(self, make: Callable[[], Any]) -> Any:
        """:meth:`call` for a coroutine: ``make()`` starts one attempt."""
        retrying = AsyncRetrying(
            **_store_policy(self.max_attempts), before_sleep=self._abefore_retry
        )
        async for attempt in retrying:
            with attempt:
                return await make()
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "vector store call failed (attempt %d of %d), retrying: %s: %s",
            state.attempt_number,
            self.max_attempts,
            type(error).__name__,
            error,
        )
        if self._server is not None:
            self._server.revive()

    async def _abefore_retry(self, state: RetryCallState) -> None:
        await asyncio.to_thread(self._before_retry, state)

    def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        with self._lock:
            try:
                if self._collection is not None:
                    for i in range(0, len(ids), self.max_batch):
                        self.call(self._collection.delete, ids=ids[i : i + self.max_batch])
                else:
                    self.call(self.vectorstore.delete, ids=ids)
            except Exception as exc:
                raise StoreError(f"vector store delete failed: {exc}") from exc

    def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One store read, retried; a failure is a :class:`StoreError` (a store that does
        not offer the call still raises ``NotImplementedError``)."""
        with self._lock:
            try:
                return self.call(fn, *args, **kwargs)
            except NotImplementedError:
                raise
            except Exception as exc:
                raise StoreError(f"vector store read failed: {type(exc).__name__}: {exc}") from exc

    def present(self, ids: list[str]) -> set[str] | None:
        """Those of ``ids`` the store holds; None when it cannot tell (a store without
        ``get_by_ids``)."""
        found: set[str] = set()
        if self._collection is not None:
            for i in range(0, len(ids), self.max_batch):
                batch = ids[i : i + self.max_batch]
                found.update(self._read(self._collection.get, ids=batch, include=[])["ids"])
            return found
        for i in range(0, len(ids), self.batch_size):
            told = self._read(self._adapter.present, ids[i : i + self.batch_size])
            if told is not None:  # the store's own way (Milvus has no get_by_ids)
                found.update(told)
                continue
            try:
                docs = self._read(self.vectorstore.get_by_ids, ids[i : i + self.batch_size])
            except NotImplementedError:
                return None
            # langchain-qdrant leaves Document.id unset and puts the point's ID in "_id".
            found.update(str(d.id or d.metadata.get("_id") or "") for d in docs)
        found.discard("")
        return found

    def holds(self, ids: list[str]) -> bool | None:
        """Whether the store holds every one of ``ids``; None when it cannot tell."""
        found = self.present(ids)
        return None if found is None else found >= set(ids)

    def vectors_by_hash(
        self, ids: list[str], headers: bool = False, origins: dict[str, str] | None = None
    ) -> dict[str, Vectors]:
        """The stored vectors of those of ``ids`` the store holds, keyed by the SHA-256
        of their text as stored (hashed here, not read from their metadata); with
        ``headers``, of what was embedded (:func:`~rag_ingest.chunking.embed_text` of
        their text and stored metadata: a renamed section's chunk is embedded again).
        Only vectors embedded as asked are returned: with ``headers``, those of chunks
        marked ``embed_header``, else those of chunks not marked. Empty for a store that
        embeds on its own (its vectors are not ours to read), and with ``headers`` for
        a caller's store other than Chroma. ``origins``, if given, is told the ID each
        of Chroma's vectors was read from (for :meth:`upsert`'s ``own_vectors``)."""
        if not ids:
            return {}
        if self._collection is None:
            return self._adapter_vectors(ids) if self._takes_vectors and not headers else {}
        import numpy as np

        from rag_ingest.chunking import content_hash, embed_text

        found: dict[str, Vectors] = {}
        for i in range(0, len(ids), self.max_batch):
            rows = self._chroma_rows(ids[i : i + self.max_batch], self._read)
            for row_id, text, vector, meta in rows:
                meta = dict(meta or {})
                if text is None or vector is None or bool(meta.get("embed_header")) != headers:
                    continue
                key = content_hash(embed_text(text, meta) if headers else text)
                found[key] = np.asarray(vector, dtype=np.float32)
                if origins is not None:
                    origins[key] = row_id
        return found

    def _chroma_rows(
        self, ids: list[str], read: Callable[..., Any], vectors: bool = True
    ) -> list[tuple[str, str | None, Any, dict[str, Any] | None]]:
        """(ID, text, vector, metadata) of each of ``ids`` Chroma holds, at most
        ``max_batch`` of them, got by ``read`` (:meth:`call` inside the write lock,
        :meth:`_read` outside it); without ``vectors``, each vector None, not read."""
        assert self._collection is not None
        include = (
            ["documents", "embeddings", "metadatas"] if vectors else ["documents", "metadatas"]
        )
        rows: list[tuple[str, str | None, Any, dict[str, Any] | None]] = []
        # In reads of _READ_ROWS: one of 5,000 rows raised an in-process client's peak
        # memory by 136 MB (12,000 rows of 384 dimensions: 0.94 s in reads of 5,000,
        # 0.77 s and no rise in reads of 1,000).
        for i in range(0, len(ids), _READ_ROWS):
            asked = ids[i : i + _READ_ROWS]
            got = read(self._collection.get, ids=asked, include=include)
            none = [None] * len(got["ids"])
            held = got.get("embeddings")
            rows += zip(
                got["ids"],
                got.get("documents") or none,
                none if held is None else held,
                got.get("metadatas") or none,
                strict=True,
            )
        return rows

    def _adapter_vectors(self, ids: list[str]) -> dict[str, Vectors]:
        """:meth:`vectors_by_hash` for a caller's store that takes our vectors."""
        from rag_ingest.chunking import content_hash

        found: dict[str, Vectors] = {}
        for i in range(0, len(ids), self.batch_size):
            pairs = self._read(self._adapter.vectors_by_text, ids[i : i + self.batch_size])
            found.update((content_hash(text), vector) for text, vector in pairs)
        return found

    def count(self) -> int | None:
        """Chunks in our collection, all sessions; None for a caller's store."""
        if self._collection is None:
            return None
        return int(self._read(self._collection.count))

    def ids_for(self, session_id: str, source: str | None = None) -> set[str] | None:
        """IDs stored for a session (and source); None when the store cannot tell."""
        if self._collection is None:
            listed: set[str] | None
            listed = self._read(self._adapter.ids_for, require_session(session_id), source)
            return listed
        where: dict[str, Any] = {"session_id": require_session(session_id)}
        if source is not None:
            where = {"$and": [where, {"source": source}]}
        return set(self._read(self._collection.get, where=where, include=[])["ids"])

    def delete_session(self, session_id: str, known_ids: list[str]) -> int:
        """Remove exactly one session's chunks; returns how many were removed."""
        ids = self.ids_for(session_id)
        if ids is None:
            ids = set(known_ids)
        self.delete(sorted(ids))
        return len(ids)

    # -- reads ---------------------------------------------------------------------

    def query(
        self, text: str, *, session_id: str, k: int = 4, where: dict[str, Any] | None = None
    ) -> list[tuple[Document, float]]:
        """Top ``k`` chunks of one session only, with relevance scores; ``where`` (a
        metadata filter in Chroma's form) narrows within the session, never beyond it."""
        session = require_session(session_id)
        where = check_where(where) if where is not None else None
        _check_k(k)
        self.check_embedder()
        try:
            hits = self.call(
                self.vectorstore.similarity_search_with_score,
                text,
                k=k,
                **{self._adapter.filter_kwarg: self._adapter.session_filter(session, where)},
            )
        except Exception as exc:
            raise StoreError(f"vector store query failed: {type(exc).__name__}: {exc}") from exc
        return _of_session(hits, session, lambda hit: hit[0], where)

    def as_retriever(
        self,
        *,
        session_id: str,
        k: int = 4,
        where: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SessionRetriever:
        """A LangChain retriever that only ever sees one session's chunks; ``where`` (or
        a dict ``search_kwargs["filter"]``) narrows within the session."""
        session = require_session(session_id)
        search_kwargs = dict(kwargs.pop("search_kwargs", None) or {})
        given = search_kwargs.pop("filter", None)
        if given is not None:
            if where is not None or not isinstance(given, dict):
                raise ConfigurationError(
                    "a retriever's filter narrows its session: give one metadata dict, as "
                    "where= or search_kwargs['filter']"
                )
            where = given
        where = check_where(where) if where is not None else None
        search_kwargs.setdefault("k", k)
        _check_k(search_kwargs["k"])
        self.check_embedder()
        key = self._adapter.filter_kwarg
        if key in search_kwargs:
            raise ConfigurationError(
                f"a retriever's filter narrows its session: give a metadata dict as where=, "
                f"not search_kwargs[{key!r}]"
            )
        search_kwargs[key] = self._adapter.session_filter(session, where)
        tags = kwargs.pop("tags", None) or self.vectorstore._get_retriever_tags()
        return SessionRetriever(
            vectorstore=self.vectorstore,
            session_id=session,
            where=where,
            search_kwargs=search_kwargs,
            tags=tags,
            store=self,
            filter_key=key,
            **kwargs,
        )


@dataclass
class VerifyReport:
    """One session's ledger against its store: what each holds, and where they differ."""

    session_id: str
    sources: int  # ledger rows
    recorded: int  # chunk IDs the ledger records
    stored: int  # chunk IDs the store holds for the session
    orphans: list[str]  # in the store, recorded by no ledger row
    missing: dict[str, int]  # source -> how many of its recorded chunks the store lacks
    repaired: bool = False
    # False for a store that cannot list a session's IDs (one with only get_by_ids):
    # ``stored`` and ``orphans`` then count only the IDs the ledger knows of (recorded,
    # or noted before a write), and an orphan no ledger row ever named is not seen.
    listed: bool = True

    @property
    def consistent(self) -> bool:
        return not self.orphans and not self.missing


def compare(store: ChunkStore, ledger: Ledger, session_id: str) -> VerifyReport:
    """Compare a session's ledger rows with the chunk IDs its store holds: all of them
    where the store lists a session's IDs (Chroma), else those the ledger knows of,
    looked up by ``get_by_ids``."""
    rows = ledger.session_rows(session_id)
    stored = store.ids_for(session_id)
    listed = stored is not None
    if stored is None:
        known = {i for row in rows for i in row.chunk_ids}
        known.update(ledger.session_pending(session_id))
        stored = store.present(sorted(known))
        if stored is None:
            raise ConfigurationError(
                "verify needs a store that lists a session's chunk IDs (Chroma) or "
                f"offers get_by_ids; {type(store.vectorstore).__name__} does neither"
            )
    recorded: set[str] = set()
    missing: dict[str, int] = {}
    for row in rows:
        recorded.update(row.chunk_ids)
        lacking = len(set(row.chunk_ids) - stored)
        if lacking:
            missing[row.source] = lacking
    return VerifyReport(
        session_id=session_id,
        sources=len(rows),
        recorded=len(recorded),
        stored=len(stored),
        orphans=sorted(stored - recorded),
        missing=missing,
        listed=listed,
    )
