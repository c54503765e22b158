"""The DocumentProcessor: sources in, session-tagged chunks in a vector store out.

Three tiers, each stage behind its own semaphore, stages overlapping across
documents::

    locate (HEAD / listing) -> download (tier 1, async httpx)
      -> parse + chunk (tier 2, worker processes) -> summarize, embed (tier 3)
      -> upsert, delete stale (store first) -> ledger row (second) -> one result

Every input ends in exactly one result: ``ingested``, ``skipped`` (unchanged
since the ledger's record) or ``failed`` with a typed error. A per-document
failure never raises out of :meth:`DocumentProcessor.process_document`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import hashlib
import json
import logging
import math
import os
import shutil
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from rag_ingest._memory import Trimmer
from rag_ingest._redact import redact
from rag_ingest._tasks import finish_though_cancelled
from rag_ingest.errors import (
    ConfigurationError,
    DiskFullError,
    DocumentError,
    ModelError,
    QueueFullError,
    RagIngestError,
    StoreError,
    nothing_to_index,
)
from rag_ingest.ledger import CLAIM_TTL, SESSION_CLAIM, claim_owner
from rag_ingest.parse_memo import ParseMemo
from rag_ingest.parsers.base import UNREAD_SCANS, split_notes
from rag_ingest.parsers.sniff import no_text
from rag_ingest.progress import EventHub, IngestEvent, call_logged
from rag_ingest.s3.objects import DownloadResult, ObjectInfo
from rag_ingest.s3.uri import DirectURL, S3Location
from rag_ingest.settings import ParseSettings, Settings
from rag_ingest.sources import (
    Source,
    Upload,
    check_allowed,
    check_not_secret,
    expand_sources,
    listed_by,
    make_source,
    narrowed,
    not_a_file,
    one_named,
    spool,
    unique_sources,
    unlink_off_loop,
)
from rag_ingest.staging import StagingArea
from rag_ingest.store import (
    ChunkStore,
    Ledger,
    LedgerRow,
    SessionInfo,
    VerifyReport,
    check_room,
    chroma_collection,
    chunk_ids,
    compare,
    open_ledger,
    require_session,
)
from rag_ingest.tokens import vocabulary_dir
from rag_ingest.writer import BatchWriter, ChunkWrite

if TYPE_CHECKING:
    from rag_ingest.models import Vectors

__all__ = ["DocumentProcessor", "IngestReport", "IngestResult", "SyncDocumentProcessor"]

logger = logging.getLogger("rag_ingest.pipeline")
T = TypeVar("T")
_CODE_TYPES = {"code"}


@dataclass
class IngestResult:
    """The one outcome of one source."""

    source: str
    status: str  # ingested | skipped | failed; planned in a dry run
    success: bool
    session_id: str = ""
    filename: str = ""
    file_type: str | None = None
    is_code_file: bool = False
    language: str | None = None
    total_chunks: int = 0
    token_count: int = 0
    chunked: bool | None = None
    summary: str | None = None
    error_type: str | None = None
    message: str | None = None
    attempts: int = 0
    bytes: int = 0
    etag: str | None = None
    pages: int | None = None
    parser: str | None = None
    embedder: str | None = None
    reused_vectors: int = 0  # chunks whose stored vectors were kept, not embedded again
    reused_answers: int = 0  # summaries and image descriptions kept, not asked for again
    # What its model calls used (answers paid for, kept ones not counted): summary_ and
    # image_ calls, input_tokens and output_tokens (those the model reports), and the
    # chunks embedded and their tokens (embedded_chunks, embedded_tokens); calls that
    # failed, timed out or were cancelled, tried again or not (summary_, image_,
    # embedding_failed_calls).
    usage: dict[str, int] = field(default_factory=dict)
    # A failure that may pass (throttled, timed out, a store or disk that was full or
    # down, an object that changed while read): the same source may ingest later.
    transient: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # How it was read, nothing wrong with it: decompressed from gzip, its type told by its
    # content under an unknown extension.
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# What ``process_many(keep_results=...)`` holds in ``IngestReport.results``.
KEEP_RESULTS = ("all", "failed", "none")
# The sums ``IngestReport.totals`` gives, each from the results' field of that name.
_SUMMED = {
    "chunks": "total_chunks",
    "tokens": "token_count",
    "bytes": "bytes",
    "reused_vectors": "reused_vectors",
    "reused_answers": "reused_answers",
}


@dataclass
class IngestReport:
    """A batch: the results it keeps (``keep``: every one, or only the failed, or none)
    and totals of every one."""

    session_id: str
    started_at: str
    finished_at: str = ""
    listed: int = 0
    results: list[IngestResult] = field(default_factory=list)
    # Sources removed by ``prune=True``: ingested before, no longer listed (with
    # ``dry_run``, those that would be).
    pruned: list[str] = field(default_factory=list)
    dry_run: bool = False
    callback_errors: int = 0  # exceptions raised by the on_result callback (logged once)
    keep: str = "all"
    # The results :meth:`add` did not keep, counted: statuses, sums and model use.
    _unkept: Counter[str] = field(default_factory=Counter, repr=False)
    _unkept_usage: Counter[str] = field(default_factory=Counter, repr=False)

    def add(self, result: IngestResult) -> None:
        """Count ``result``, and keep it in ``results`` if ``keep`` says so: a run of a
        million sources need not hold a million results to give their totals."""
        if self.keep == "all" or (self.keep == "failed" and result.status == "failed"):
            self.results.append(result)
            return
        self._unkept[result.status] += 1
        for name, attribute in _SUMMED.items():
            self._unkept[name] += getattr(result, attribute)
        self._unkept_usage.update(result.usage)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status) + self._unkept[status]

    @property
    def totals(self) -> dict[str, int]:
        sums = {
            name: sum(getattr(r, attribute) for r in self.results) + self._unkept[name]
            for name, attribute in _SUMMED.items()
        }
        return {
            "listed": self.listed,
            "ingested": self.count("ingested"),
            "planned": self.count("planned"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            **sums,
            "pruned": len(self.pruned),
        }

    @property
    def usage(self) -> dict[str, int]:
        """What every document's model calls used, summed (see ``IngestResult.usage``)."""
        total: Counter[str] = Counter(self._unkept_usage)
        for r in self.results:
            total.update(r.usage)
        return dict(total)


class _Slot:
    """A document's place among those :meth:`DocumentProcessor.process_many` has in
    flight, lent while it waits for another process's claim on its source, so the run
    goes on to sources no one holds (two processes given one listing had one ingest it
    all while the other waited on it, document by document)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self.held = True

    def lend(self) -> None:
        if self.held:
            self.held = False
            self._slots.release()

    async def reclaim(self) -> None:
        if not self.held:
            await self._slots.acquire()  # cancelled: not acquired, and not held
            self.held = True


# The slot of the process_many document the current task works on, if any.
_SLOT: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("_SLOT", default=None)


@dataclass
class _Job:
    """One document on its way: what was asked, and what its stages learn."""

    src: Source
    session: str
    user_id: str | None
    extra: dict[str, Any]
    result: IngestResult
    seconds: dict[str, float] = field(default_factory=dict)
    version: str | None = None  # ETag, S3 version or content hash, once located
    size: int = 0
    fingerprint: str = ""
    previous: LedgerRow | None = None  # the ledger's row for this source, if any
    reusable: list[str] = field(default_factory=list)  # stored chunks that may serve its own
    own_vectors: set[str] = field(default_factory=set)  # its IDs whose vector was read from them
    kept: dict[str, Vectors] = field(default_factory=dict)  # a failed attempt's vectors
    answers: list[str] = field(default_factory=list)  # keys of the model answers it used
    incomplete: bool = False  # a summary or image description failed: try again next run
    unread_scans: bool = False  # scans or pictures left unread: read again once OCR is on
    dry_run: bool = False  # located and checked only: nothing downloaded or written
    usage_written: bool = False  # its usage is with the store writer, to be kept with it
    reingest: bool = False  # read again though unchanged (new parsers, new masking)

    def unchanged(self, reads_scans: bool) -> bool:
        """The ledger holds this very version, ingested under the same settings (and, if
        it left scans or pictures unread, OCR still does not read them: ``reads_scans``)."""
        row = self.previous
        return (
            not self.reingest
            and row is not None
            and row.status == "ingested"
            and self.version is not None
            and row.version == self.version
            and (
                row.fingerprint == self.fingerprint
                or (not reads_scans and row.fingerprint == self.fingerprint + _UNREAD)
            )
        )

    @property
    def ledger_fingerprint(self) -> str:
        """The fingerprint its ledger row gets: never "unchanged" while a summary or
        description is missing (a model outage must not lose them for good), nor once
        OCR can read the scans or pictures this ingest could not."""
        unread = _UNREAD if self.unread_scans else ""
        return self.fingerprint + unread + (_INCOMPLETE if self.incomplete else "")


_UNREAD = ":unread-scans"
_INCOMPLETE = ":incomplete"


class _Once:
    """Calls ``fn`` the first time it is called, never again."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn: Callable[[], None] | None = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()


class _SessionWork:
    """What callers started for one session: ``delete_session`` voids all of it.

    Held by every call that ingests for the session (``process_many`` holds it for
    sources it has not listed yet, ``submit`` for queued ones); the processor keeps
    only a weak reference, so it lives as long as that work.
    """

    __slots__ = ("__weakref__", "deleted", "tasks")

    def __init__(self) -> None:
        self.deleted = False
        self.tasks: set[asyncio.Task[IngestResult | BaseException]] = set()


class DocumentProcessor:
    """Ingests documents for sessions. ``async with DocumentProcessor(...) as p:``.

    Inject what does I/O: ``embeddings`` (any LangChain ``Embeddings``; default: a
    given ``vectorstore``'s own, else by name from ``settings.models.embedder``),
    ``vectorstore`` (any LangChain ``VectorStore``; default Chroma), ``summarizer``
    (any chat model or Runnable; None disables summaries), ``s3`` (an
    :class:`AsyncS3Client`). ``parsers``: ``{".ext": "module:function"}``, as
    :meth:`register_parser` takes them (the way to give them to
    :class:`SyncDocumentProcessor`, which starts at once). ``renew_url``: a function
    (run in a thread) that gives a fresh presigned URL for one that has expired, e.g.
    queued too long; without it such a source fails with ``S3PresignedExpiredError``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embeddings: Any = None,
        vectorstore: Any = None,
        summarizer: Any = None,
        image_describer: Any = None,
        s3: Any = None,
        on_event: Callable[[IngestEvent], None] | None = None,
        progress: bool | None = None,
        parsers: dict[str, str] | None = None,
        renew_url: Callable[[str], str] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._renew_url = renew_url
        for extension, spec in (parsers or {}).items():
            self.register_parser(extension, spec)
        self._embeddings_arg = embeddings
        self._vectorstore_arg = vectorstore
        self._summarizer_arg = summarizer
        self._describer_arg = image_describer
        self._s3_arg = s3
        self._own_s3 = s3 is None
        self._show = self.settings.progress if progress is None else progress
        self._on_event = on_event
        self._fresh()

    def _fresh(self) -> None:
        """The state of one run, from start() to aclose(), made anew after each: a
        closed processor starts again (a web app's lifespan runs once per test client,
        each on a new event loop; a notebook cell runs ``async with`` again)."""
        self._s3 = self._s3_arg
        self.events = EventHub(bar=self._show)
        if self._on_event is not None:
            self.events.add_callback(self._on_event)
        p = self.settings.pipeline
        self._io = ThreadPoolExecutor(p.io_threads, thread_name_prefix="rag-ingest-io")
        self._store_thread: ThreadPoolExecutor | None = None
        self._source_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._gates: dict[str, asyncio.Semaphore] = {}
        # One turn per model question at a time: documents in flight that show the same
        # logo wait for the first one's answer instead of each asking for it.
        self._asking: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._sessions: weakref.WeakValueDictionary[str, _SessionWork] = (
            weakref.WeakValueDictionary()
        )
        # Sessions being deleted or verified: their new documents wait until it is done.
        self._exclusive: dict[str, asyncio.Event] = {}
        self._started = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop start() ran on
        self._queue: asyncio.Queue[Any] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.store: ChunkStore | None = None
        self.ledger: Ledger | None = None
        self._pool: Any = None
        self._staging: StagingArea | None = None
        self._reads_scans = False  # OCR reads scanned pages (set on start)
        self._runner: Any = None
        self._summarizer: Any = None
        self._describer: Any = None
        self.embedder_name: str | None = None
        # The chunk sizes in force: the settings', fitted to the embedder's window.
        self._chunk_settings = self.settings.chunk
        self._window: tuple[int, Callable[[list[str]], list[int]]] | None = None
        self._writer: BatchWriter | None = None
        self._confirm_skips = False  # check "unchanged" against the store too
        # Documents past the skip check that have not reached the store writer yet.
        self._approaching = 0
        # Downloads of ours on the staging disk (writing, or waiting to be parsed), and
        # an event set (then replaced) each time one is removed: see _staged_download.
        self._staged = 0
        self._staging_freed = asyncio.Event()
        # Documents in this processor's hands (see _return_memory).
        self._active = 0
        # When each session's last search was noted in the ledger (see _note_search).
        self._searches_noted: dict[str, float] = {}
        # Whether other processes may share the ledger (see _claimed), and this
        # processor's name in its claims.
        self._shares_ledger = False
        self._claims = False  # sources claimed in the ledger (see _start)
        self._owner = claim_owner()
        self._trimmer = Trimmer() if self.settings.parse.trim_memory else None

    async def __aenter__(self) -> DocumentProcessor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load the embedder, open the store and ledger, start the parser pool.

        If any step fails, what the earlier steps started (a Chroma server, threads) is
        stopped before the error propagates: ``async with`` never calls ``__aexit__``
        for a failed ``__aenter__``.
        """
        if self._closed:
            raise RuntimeError("this processor is closing")
        if self._started:
            if self._loop is asyncio.get_running_loop():
                return
            await self._leave_ended_loop()
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise

    def _store_may_lack_chunks(self) -> bool:
        """Whether "unchanged in the ledger" must be checked against the store. A caller's
        store may be in memory (a notebook's kernel restarted: empty, while the ledger
        on disk remembers); ours is checked when it holds fewer chunks than the ledger
        records (its directory or server was reset)."""
        assert self.store is not None and self.ledger is not None
        stored = self.store.count()
        if stored is None:
            return True
        recorded = self.ledger.recorded_chunks()
        if stored < recorded:
            logger.warning(
                "the store holds %d chunks and the ledger records %d: sources the ledger "
                "calls unchanged are checked against the store, and ingested again if it "
                "lacks their chunks",
                stored,
                recorded,
            )
            return True
        return False

    async def _unchanged(self, job: _Job, say: bool = True) -> bool:
        """The ledger holds this version, and (when in doubt) so does the store; ``say``:
        warn on the result when the store had lost its chunks."""
        if not job.unchanged(self._reads_scans):
            return False
        if not self._confirm_skips:
            return True
        assert self.store is not None and job.previous is not None
        ids = job.previous.chunk_ids
        if await self._in_store(self.store.holds, ids) is False:
            if say:
                job.result.warnings.append("ingested again: the store had lost its chunks")
            return False
        return True

    async def _leave_ended_loop(self) -> None:
        """Started under an event loop that has ended (a script's second ``asyncio.run``,
        a test's new loop, without ``aclose()`` between): its tasks, the store writer
        among them, died with it. Close what it left and start afresh on this loop."""
        if self._loop is not None and self._loop.is_running():
            raise RuntimeError(
                "this processor runs on another event loop: use one processor per loop "
                "(or SyncDocumentProcessor from threads)"
            )
        logger.info("the event loop this processor started on has ended; starting again")
        await self.aclose()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        p = s.pipeline
        from langchain_core.vectorstores import VectorStore

        from rag_ingest.models import (
            EmbeddingRunner,
            Summarizer,
            embedder_name,
            load_embeddings,
            load_object,
        )
        from rag_ingest.parsers.base import ParseOptions
        from rag_ingest.parsers.pool import ParserPool

        # Every document is counted in tokens: a vocabulary that cannot be had fails the
        # start, not each document (in a worker, as a pool that broke at start-up).
        await self._in_io(vocabulary_dir, s.chunk.encoding, s.staging_dir)
        # Downloads, uploads and parse scratch under a directory of this run's, which the
        # next start removes should this process be killed before it can.
        self._staging = await self._in_io(StagingArea, s.staging_dir)
        staged = s.model_copy(update={"temp_dir": self._staging.path})
        embeddings = self._embeddings_arg
        store = self._vectorstore_arg
        if store is None and s.store.vectorstore:
            store = await self._in_io(load_object, s.store.vectorstore, "vector store")
            if not isinstance(store, VectorStore):
                raise ConfigurationError(
                    f"vector store {s.store.vectorstore!r} is a {type(store).__name__}, "
                    "not a LangChain VectorStore"
                )
            self._vectorstore_arg = store  # a restart on a new loop keeps the same store
        own = None if store is None else getattr(store, "embeddings", None)
        if store is not None and own is None and chroma_collection(store) is not None:
            raise ConfigurationError(
                "the Chroma store has no embedding_function: its queries would use Chroma's "
                "default model, which downloads one; give it the embeddings to use"
            )
        if embeddings is not None and own is not None and embeddings is not own:
            raise ConfigurationError(
                "embeddings= is not the vector store's own embeddings: the store embeds "
                "queries with its own, so chunks and queries would come from different "
                "models; pass the same object, or leave embeddings= out"
            )
        if s.chunk.embed_header and store is not None and chroma_collection(store) is None:
            raise ConfigurationError(
                "chunk.embed_header works with a Chroma store only (ours, or a caller's): "
                "another store's metadata is not read back to tell the vectors embedded "
                "under a header from those embedded without"
            )
        if embeddings is None:
            embeddings = own
        if embeddings is None and store is None:
            embeddings = await self._in_io(
                functools.partial(
                    load_embeddings, s.models.embedder, minilm_precision=s.models.minilm_precision
                )
            )
        # None: a store that embeds on its own, with a model it does not name.
        self.embedder_name = (
            embedder_name(embeddings)
            if embeddings is not None
            else f"{type(store).__module__}.{type(store).__qualname__} (the store's own)"
        )
        window, counter = (
            getattr(embeddings, "max_input_tokens", None),
            getattr(embeddings, "count_tokens", None),
        )
        if isinstance(window, int) and window > 0:
            if s.chunk.fit_embedder:
                from rag_ingest.chunking import fit_to_window

                self._chunk_settings = fit_to_window(s.chunk, window)
            if callable(counter):
                self._window = (window, counter)
        if store is not None:
            self.store = ChunkStore.wrap(
                store, batch_size=s.models.batch_size, max_attempts=s.models.max_attempts
            )
        else:
            self.store = await self._in_io(ChunkStore.chroma, s.store, embeddings)
        self.ledger = await self._in_io(open_ledger, s.store, store)
        # A Chroma server's or a caller's store may have other processes writing to it
        # with this same ledger file (a backend's workers on one persist_dir), and so
        # may our own directory when served (its other processes join the server); in
        # process, it is one process's (its lock refuses a second).
        self._shares_ledger = (
            store is not None or s.store.chroma_url is not None or self.store.shares_directory
        )
        # Named at start, in the process that runs it: one made at import and started in
        # each of gunicorn's forked workers (--preload) had the parent's PID and token in
        # every worker, whose claims then held nothing against each other.
        self._owner = claim_owner()
        # With quotas, a document's hold is kept on its claim, and let go in the
        # transaction that records its row: held in the process instead, a count made
        # between its write and its release took the document twice and refused one
        # that fit (4 of 5 ingested, once, on a loaded CI machine).
        self._claims = self._shares_ledger or any(
            limit is not None
            for limit in (p.session_max_documents, p.session_max_chunks, p.session_max_bytes)
        )
        if self._claims:
            await self._in_io(self.ledger.drop_dead_claims)
        self._confirm_skips = await self._in_store(self._store_may_lack_chunks)
        if not self.store.computes_own_vectors:
            self._runner = EmbeddingRunner(
                embeddings, s.models, concurrency=p.embeddings, max_batch=self.store.max_batch
            )
        if self._summarizer_arg is None and s.models.summarizer:
            self._summarizer_arg = await self._in_io(load_object, s.models.summarizer, "summarizer")
        if self._describer_arg is None and s.models.image_describer:
            self._describer_arg = await self._in_io(
                load_object, s.models.image_describer, "image describer"
            )
        if self._summarizer_arg is not None:
            from rag_ingest.tokens import count_tokens

            self._summarizer = Summarizer(
                self._summarizer_arg,
                s.models,
                count_tokens=lambda t: count_tokens(t, s.chunk.encoding),
                concurrency=p.summaries,
            )
        if self._describer_arg is not None:
            from rag_ingest.models import ImageDescriber

            self._describer = ImageDescriber(self._describer_arg, s.models)
        options = ParseOptions.of(
            s.parse,
            max_images=s.models.max_images if self._describer is not None else 0,
            plugins=tuple(sorted(self._plugins.items())),
            temp_dir=str(self._staging.path),
        )
        self._pool = ParserPool(s.parse, options, s.chunk.encoding)
        self._memo = ParseMemo()
        self._reads_scans = options.ocr is not None
        writers = p.store_writers if self.store.concurrent_writes else 1
        self._store_thread = ThreadPoolExecutor(writers, thread_name_prefix="rag-ingest-store")
        self._writer = BatchWriter(
            self.store,
            self.ledger,
            self._in_store,
            # A batch holding every document in flight would stop downloads and parsing
            # until it commits (measured: a bulk run drained in waves of in_flight, each
            # of 2 workers busy 69% of the time, 80% with half); half leaves the other
            # half moving while a batch fills.
            max_docs=min(p.store_batch_docs, max(1, p.in_flight // 2)),
            max_chunks=self.store.max_batch,
            linger=p.store_linger,
            approaching=lambda: self._approaching,
            check_room=functools.partial(check_room, s.store.persist_dir, s.store.min_free_mb),
        )
        self._staged, self._staging_freed = 0, asyncio.Event()
        self._gates = {
            "download": asyncio.Semaphore(p.downloads),
            "parse": asyncio.Semaphore(p.parses or self._pool.slots),
            "images": asyncio.Semaphore(p.images),
            "store": asyncio.Semaphore(writers),
        }
        if self._s3 is None:
            if p.s3_thread:
                from rag_ingest.s3.offloop import OffLoopS3Client

                self._s3 = await asyncio.to_thread(
                    functools.partial(OffLoopS3Client, staged, renew_url=self._renew_url)
                )
            else:
                from rag_ingest.s3.client import AsyncS3Client

                self._s3 = AsyncS3Client(staged, renew_url=self._renew_url)
        if p.preload:
            load = getattr(embeddings, "load", None) if self._runner is not None else None
            await asyncio.gather(
                self._pool.warm(), self._in_io(load) if callable(load) else asyncio.sleep(0)
            )
        await asyncio.to_thread(_start_threads, self._io, p.io_threads)
        await asyncio.to_thread(_start_threads, self._store_thread, writers)
        if p.freeze_gc:
            # Full collections over the ~1M objects that imports (langchain, chromadb,
            # pydantic) leave behind took 60-97 ms each (measured): loop stalls. Objects
            # alive now are start-up state; exclude them from every later collection.
            gc.freeze()
        self._started = True

    _plugins: dict[str, str] = {}  # noqa: RUF012 - replaced, never mutated

    def register_parser(self, extension: str, spec: str) -> None:
        """Parse files ending in ``extension`` with ``"module:function"`` (importable in workers;
        ``"__main__:function"`` makes the workers import the script, which then needs its
        ``if __name__ == "__main__":`` guard).

        The function takes ``(path, name, options)`` and returns a ``ParsedDocument``.
        Call before the first document.
        """
        if getattr(self, "_started", False):
            raise RuntimeError("register parsers before the processor starts")
        extension = extension.lower()
        if not extension.startswith("."):
            extension = "." + extension  # "svg" means ".svg", as a file's suffix reads
        if ":" not in spec:
            raise ConfigurationError(f"a parser is named 'module:function', not {spec!r}")
        self._plugins = {**self._plugins, extension: spec}

    async def aclose(self) -> None:
        """Stop workers, the parser pool and the store threads; cancel queued work. The
        processor can be started again afterwards."""
        if self._closed:
            return
        ended = self._loop is not None and self._loop is not asyncio.get_running_loop()
        if ended:
            if self._loop is not None and self._loop.is_running():
                raise RuntimeError("close the processor on the event loop it runs on")
            # Its tasks, the queue workers' and the store writer's, died with its loop.
            self._workers, self._queue, self._writer = [], None, None
        self._closed = True
        try:
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            if self._writer is not None:
                await self._writer.aclose()
            if self._pool is not None:
                await asyncio.to_thread(self._pool.close)
            if self._own_s3 and self._s3 is not None:
                # A client bound to an ended loop may fail to close: drop it then.
                with contextlib.suppress(*((Exception,) if ended else ())):
                    await self._s3.aclose()
            if self.ledger is not None:
                self.ledger.close()
            if self.store is not None:
                await asyncio.to_thread(self.store.close)
            self.events.close()
        finally:
            self._io.shutdown(wait=False, cancel_futures=True)
            if self._store_thread is not None:
                self._store_thread.shutdown(wait=True)
            if self._staging is not None:
                self._staging.close()  # after the pool and the client that wrote there
            self._fresh()

    async def _in_io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, lambda: fn(*args))

    async def _in_store(self, fn: Callable[..., T], *args: Any) -> T:
        # Store and ledger calls run on their own threads: one for an in-process store
        # (the single writer Chroma needs), ``store_writers`` for a Chroma server.
        executor = self._store_thread or self._io
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: fn(*args))

    def _fingerprint_of(self, job: _Job) -> str:
        """The settings' fingerprint, and the caller's fields every chunk carries: a
        source ingested again with other ``metadata=`` or ``user_id`` is not unchanged
        (its chunks would keep the old values). Without either, the settings' own, so
        ledger rows written before stay valid."""
        if not job.extra and job.user_id is None:
            return self.fingerprint
        material = json.dumps(
            {"settings": self.fingerprint, "metadata": job.extra, "user_id": job.user_id},
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """What, besides the bytes, decides the chunks: a change means re-ingest."""
        s = self.settings
        # Parse settings that change what a document's text is, each only when off its
        # default: ledgers written before it was counted stay current.
        parse = {
            key: getattr(s.parse, key)
            for key in (
                "attachments",
                "pdf_drop_running_lines",
                "ocr_pictures",
                "ocr_dpi",  # what OCR reads of a page
                "xlsx_stream_size",  # which reader a workbook gets
                "markup_fast_size",  # and an HTML page or Markdown file
                "markdown_fast_size",  # and a Markdown file below that
                "html_chrome",  # what of a page is left out
            )
            if getattr(s.parse, key) != ParseSettings.model_fields[key].default
        }
        material = json.dumps(
            {
                # embed_header only when on, mask_credentials when off: ledgers written
                # before either was counted stay current.
                "chunk": self._chunk_settings.model_dump(
                    mode="json",
                    exclude={
                        key
                        for key, default in (("embed_header", False), ("mask_credentials", True))
                        if getattr(self._chunk_settings, key) == default
                    },
                ),
                "pdf": s.parse.pdf_mode,
                "embedder": self.embedder_name,
                "summaries": self._summarizer is not None,
                "images": self._describer is not None,
                "plugins": sorted(self._plugins.items()),
                **({"parse": parse} if parse else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    # -- sources -----------------------------------------------------------------------

    def _emit(self, result: IngestResult, stage: str, **kwargs: Any) -> None:
        self.events.emit(
            IngestEvent(source=result.source, stage=stage, session_id=result.session_id, **kwargs)
        )

    # -- one document --------------------------------------------------------------------

    async def process_document(
        self,
        source: str | os.PathLike[str] | ObjectInfo | Upload,
        *,
        session_id: str,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        allowed_sources: Sequence[str] | None = None,
        reingest: bool = False,
    ) -> IngestResult:
        """Ingest one source (a path, ``s3://`` or https URL, or an :class:`Upload`) for a
        session. Never raises for a per-document failure. ``allowed_sources`` narrows
        ``pipeline.allowed_sources`` for this call (one tenant's prefix). ``reingest``:
        read it again even if unchanged (see :meth:`process_many`)."""
        session = require_session(session_id)
        extra = _caller_metadata(metadata)
        allowed = narrowed(self.settings.pipeline.allowed_sources, allowed_sources)
        await self.start()
        assert self.store is not None
        self.store.check_embedder()
        return await self._process(
            source,
            session,
            user_id,
            extra,
            self._work_for(session),
            allowed=allowed,
            reingest=reingest,
        )

    def _work_for(self, session: str) -> _SessionWork:
        work = self._sessions.get(session)
        if work is None:
            work = self._sessions[session] = _SessionWork()
        return work

    async def _process(
        self,
        source: str | os.PathLike[str] | ObjectInfo | Upload | Source,
        session: str,
        user_id: str | None,
        extra: dict[str, Any],
        work: _SessionWork,
        *,
        allowed: list[str] | None,
        dry_run: bool = False,
        reingest: bool = False,
    ) -> IngestResult:
        started = time.perf_counter()
        try:
            src = make_source(self._s3, source)
            check_allowed(src, allowed)
        except RagIngestError as exc:
            uri = (
                source.uri
                if isinstance(source, (ObjectInfo, Source))
                else source.source_id
                if isinstance(source, Upload)
                else os.fspath(source)
            )
            failed = IngestResult(
                source=redact(str(uri)), status="failed", success=False, session_id=session
            )
            if isinstance(source, Source):
                failed.filename = source.name
            return self._failed(Source(uri=failed.source), exc, {}, started, failed)
        while (busy := self._exclusive.get(session)) is not None:
            await busy.wait()
        result = IngestResult(source=src.key, status="failed", success=False, session_id=session)
        result.filename = src.name
        result.embedder = self.embedder_name
        job = _Job(src, session, user_id, extra, result, dry_run=dry_run, reingest=reingest)
        if work.deleted:
            return self._voided(job, started)
        # Its own task, so delete_session can stop it without cancelling the caller.
        attempt = asyncio.ensure_future(self._attempt_in_task(job, started))
        work.tasks.add(attempt)
        self._active += 1
        try:
            outcome = await attempt
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if work.deleted and attempt.cancelled() and not (task and task.cancelling()):
                return self._voided(job, started)
            raise
        finally:
            self._active -= 1
            self._return_memory()
            work.tasks.discard(attempt)
            # An exception's traceback keeps this frame (a notebook keeps the last one):
            # holding the session's work, weakly kept, it would look in flight for good.
            del work

    def _return_memory(self) -> None:
        """Hand what documents freed back to the system, off the event loop: when the
        last document in hand is done, or every so often while they keep coming. A
        long-lived processor's resident size otherwise kept each pass's peak."""
        trimmer = self._trimmer
        idle = self._active == 0
        if trimmer is not None and not self._closed and trimmer.due(idle=idle):
            with contextlib.suppress(RuntimeError):  # the pool shut down as it closed
                self._io.submit(trimmer.trim, idle=idle)

    def _voided(self, job: _Job, started: float) -> IngestResult:
        from rag_ingest.errors import SessionDeletedError

        error = SessionDeletedError(
            f"{job.result.source}: session {job.session!r} was deleted while this document "
            "was in flight; nothing of it is kept"
        )
        return self._failed(job.src, error, job.seconds, started, job.result)

    async def _attempt_in_task(self, job: _Job, started: float) -> IngestResult | BaseException:
        """:meth:`_attempt`, returning a KeyboardInterrupt or SystemExit for the caller to
        raise: raised in a task, asyncio would let it out of the event loop instead."""
        try:
            return await self._attempt(job, started)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return exc

    async def _attempt(self, job: _Job, started: float) -> IngestResult:
        """One document, start to finish; a failure is its result (noted in the ledger)."""
        src, session, result, seconds = job.src, job.session, job.result, job.seconds
        self._emit(result, "queued")
        try:
            # One attempt at a source of a session at a time: the same source named twice,
            # or submitted again while in flight, waits, then finds it done and is skipped
            # (before, both were downloaded, parsed and embedded, and both counted).
            lock = self._source_locks.setdefault((session, result.source), asyncio.Lock())
            async with lock:
                if not await self._unchanged_unclaimed(job):
                    claimed = (
                        contextlib.nullcontext()
                        if job.dry_run
                        else self._claimed(session, result.source, seconds)
                    )
                    async with claimed:
                        if src.upload is None:
                            await self._ingest(job)
                        else:
                            await self._ingest_upload(job)
        except asyncio.CancelledError:
            if self.ledger is not None and not job.usage_written and any(result.usage.values()):
                # Paid for, though stopped (a client gone, a processor closed): no row of
                # its own will carry the cost, so it is added now.
                await self._write_through_cancel(
                    functools.partial(
                        self.ledger.add_model_use,
                        session_id=session,
                        source=result.source,
                        model_use=result.usage,
                    )
                )
            raise
        except Exception as exc:
            failed = self._failed(src, exc, seconds, started, result)
            if self.ledger is not None and isinstance(exc, RagIngestError) and not job.dry_run:
                await self._write_through_cancel(
                    functools.partial(
                        self.ledger.record_failure_keeping_chunks,
                        session_id=session,
                        source=result.source,
                        error_type=type(exc).__name__,
                        message=str(exc),
                        model_use=result.usage,  # paid for, though it failed
                    )
                )
            return failed
        seconds["total"] = time.perf_counter() - started
        result.seconds = seconds
        self._emit(result, "done", message=result.status)
        return result

    async def _unchanged_unclaimed(self, job: _Job) -> bool:
        """A listed object the ledger holds at its listed version: skipped without the
        claim a source's ingest takes against the other processes sharing the ledger
        (two ledger writes a source: half a re-run's CPU). Reading is enough: another
        process writes a source's row after its chunks (store first, ledger second), so
        a row at this version means it is stored. Anything else (a local file, whose
        version is its hash; a new, changed, failed or unlisted source; a session
        another process is deleting) is decided again, under the claim."""
        src, result = job.src, job.result
        if (
            not self._claims
            or job.dry_run
            or job.reingest
            or src.upload is not None
            or src.path is not None
            or src.info is None
            or not (version := src.info.version_id or src.info.etag)
            or self._listed_without_text(src) is not None
        ):
            return False
        try:
            check_not_secret(src)
        except DocumentError:
            return False  # fails under the claim, as before
        assert self.ledger is not None
        result.etag = job.version = version
        job.size = src.info.size
        job.seconds["locate"] = 0.0  # the listing's
        job.fingerprint = self._fingerprint_of(job)
        job.previous = await self._in_store(
            self.ledger.row_unless_session_held, job.session, result.source, self._owner
        )
        if not await self._unchanged(job, say=False):  # said under the claim
            return False
        self._skip_unchanged(job)
        return True

    def _listed_without_text(self, src: Source) -> str | None:
        """What a listed file's name says it is when that has no text to index (an image,
        a binary; see :func:`no_text`), unless a registered parser takes its extension."""
        if not src.listed or PurePosixPath(src.name).suffix.lower() in self._plugins:
            return None
        return no_text(src.named_under, images=self._pool.options.reads_images)

    # A claim's life unless renewed (it is, every third of it), and the longest pause
    # between tries at one another process holds; class attributes, so tests can shorten
    # them.
    _claim_ttl = CLAIM_TTL
    _claim_poll = 0.5

    @contextlib.asynccontextmanager
    async def _claimed(
        self, session: str, source: str, waited: dict[str, float] | None = None
    ) -> AsyncIterator[None]:
        """``source`` of ``session`` (``SESSION_CLAIM``: the whole session) held against
        the other processes sharing this ledger: while one ingests a source, another given
        it waits, then reads the ledger and skips it as unchanged (each had downloaded,
        parsed, embedded and paid for it). ``waited`` gets the seconds waited, if any, as
        ``claim_wait``."""
        if not self._claims:
            yield
            return
        assert self.ledger is not None
        ledger = self.ledger
        claim = functools.partial(ledger.claim, session, source, self._owner, self._claim_ttl)
        release = functools.partial(ledger.release_claim, session, source, self._owner)

        async def let_go() -> None:
            with contextlib.suppress(Exception):  # a claim left lapses by itself
                await finish_though_cancelled(self._in_io(release))

        slot = _SLOT.get() if source != SESSION_CLAIM else None
        started, pauses, said = time.perf_counter(), self._claim_pauses(), False
        try:
            # Each try runs to its end though cancelled: a claim the thread took as we
            # were cancelled is let go below, or the other processes would wait out its
            # minute.
            while (holder := await finish_though_cancelled(self._in_io(claim))) is not None:
                if not said:
                    what = source or f"session {session!r}"
                    logger.info("%s: held by another process (%s): waiting", what, holder)
                    said = True
                if waited is not None:
                    waited["claim_wait"] = time.perf_counter() - started
                if slot is not None:
                    slot.lend()  # the run goes on with sources no one holds meanwhile
                await asyncio.sleep(next(pauses))
            if slot is not None:
                await slot.reclaim()  # among the in-flight again before any work
        except BaseException:
            await let_go()
            raise
        keeper = asyncio.ensure_future(self._keep_claim(session, source))
        try:
            yield
        finally:
            keeper.cancel()
            await let_go()

    def _claim_pauses(self) -> Iterator[float]:
        """The pauses between tries at what another process holds: from 50 ms, doubling
        up to ``_claim_poll``."""
        pause = 0.05
        while True:
            yield pause
            pause = min(pause * 2, self._claim_poll)

    async def _keep_claim(self, session: str, source: str) -> None:
        """Renew a claim while its document is in hand (a long parse or embedding)."""
        assert self.ledger is not None
        renew = functools.partial(
            self.ledger.renew_claim, session, source, self._owner, self._claim_ttl
        )
        while True:
            await asyncio.sleep(self._claim_ttl / 3)
            try:
                kept = await self._in_io(renew)
            except StoreError as exc:  # the next renewal may do; the claim lasts till then
                logger.warning("%s: its claim could not be renewed: %s", source, exc)
                continue
            if not kept:
                logger.warning(
                    "%s: its claim lapsed (this process stalled past %.0f s): another "
                    "process may be ingesting it too",
                    source,
                    self._claim_ttl,
                )
                return

    async def _write_through_cancel(self, record: Callable[[], None]) -> None:
        """A ledger write that a failure or cancellation makes: not abandoned when this
        task is cancelled (a delete_session that stopped the document must not find its
        row written after the delete); a failed write is let go."""
        with contextlib.suppress(Exception):
            await finish_though_cancelled(self._in_store(record))

    def _failed(
        self,
        src: Source,
        exc: BaseException,
        seconds: dict[str, float],
        started: float,
        result: IngestResult | None = None,
    ) -> IngestResult:
        result = result or IngestResult(source=src.uri, status="failed", success=False)
        result.status, result.success = "failed", False
        result.error_type = type(exc).__name__
        result.transient = transient(exc)
        result.message = (
            str(exc) if isinstance(exc, RagIngestError) else f"{type(exc).__name__}: {exc}"
        )
        if not isinstance(exc, RagIngestError):
            logger.exception("unexpected error ingesting %s", result.source)
        seconds["total"] = time.perf_counter() - started
        result.seconds = seconds
        self._emit(result, "failed", message=result.message)
        return result

    async def _ingest_upload(self, job: _Job) -> None:
        """An upload is written to a temp file first, then ingested as a local file."""
        src = job.src
        assert src.upload is not None
        t = time.perf_counter()
        assert self._staging is not None
        src.path = await spool(
            src.upload,
            self._staging.path,
            self._in_io,
            max_size=self.settings.limits.max_object_size,
        )
        job.seconds["upload"] = time.perf_counter() - t
        self._staged += 1  # on the staging disk until ingested: a download waits for it
        try:
            await self._ingest(job)
        finally:
            try:
                await unlink_off_loop(src.path, self._io)
            finally:  # cancelled meanwhile: the unlink goes on, the staging room is freed
                src.path = None
                self._unstage()

    async def _ingest(self, job: _Job) -> None:
        """The stages for one document; fills ``job.result`` or raises."""
        assert self.ledger is not None and self.store is not None and self._s3 is not None
        src, result, seconds = job.src, job.result, job.seconds
        if (what := self._listed_without_text(src)) is not None:
            await self._skip_no_text(job, what)
            return
        check_not_secret(src)  # named directly: by its folders too
        # Locate: version (ETag, or content hash for local files) before any download.
        t = time.perf_counter()
        version: str | None
        if src.path is not None:
            if src.path.is_dir():
                raise DocumentError(
                    f"{src.path}: a directory (process_many walks directories; "
                    "process_document and submit take one file)"
                )
            if not src.path.is_file():
                raise DocumentError(not_a_file(src))
            version = await self._in_io(_file_digest, src.path)
            size = src.path.stat().st_size
        else:
            if src.info is None:
                src.info = await self._s3.head(src.target)
                result.filename = src.name  # a URL's Content-Disposition may name it
            version = src.info.version_id or src.info.etag
            size = src.info.size
        result.etag = job.version = version
        job.size = size
        seconds["locate"] = time.perf_counter() - t

        job.fingerprint = self._fingerprint_of(job)
        await self._in_store(self._read_ledger, job)
        if await self._unchanged(job):
            self._skip_unchanged(job)
            return
        if job.dry_run:
            await self._plan(job)
            return
        if size == 0:
            await self._nothing_to_index(job, "empty (0 bytes): nothing to index")
            return
        await self._reserve_quota(job, None)  # a full session: refused before download
        self._approaching += 1
        arrived = _Once(self._arrive)
        try:
            await self._ingest_new(job, arrived)
        finally:
            arrived()  # failed on the way, or already counted at the writer

    async def _plan(self, job: _Job) -> None:
        """A dry run's outcome for a source that a run would not skip: ``planned``, with
        why (new, changed, ...) and its size in ``bytes`` (to download, not downloaded);
        an empty one ``skipped``, and one its session has no room for ``failed``."""
        result, row = job.result, job.previous
        if job.size == 0:
            result.status, result.success = "skipped", True
            result.message = "empty (0 bytes): nothing to index"
            return
        await self._reserve_quota(job, None)
        if row is None:
            why = "new"
        elif row.status == "failed":
            why = f"failed last time ({row.error_type})"
        elif row.version != job.version:
            why = "changed since its last ingest"
        elif row.fingerprint in {job.fingerprint + s + _INCOMPLETE for s in ("", _UNREAD)}:
            why = "its summary or an image description is to be tried again"
        elif row.fingerprint == job.fingerprint + _UNREAD:
            why = "OCR now reads the scans or pictures it had left unread"
        elif row.fingerprint != job.fingerprint:
            why = "ingested under other settings, metadata or user id"
        elif job.reingest:
            why = "a re-ingest was asked for (reingest)"
        else:
            why = "the store lacks its chunks"
        result.status, result.success = "planned", True
        result.message = f"would be ingested: {why}"
        result.bytes = max(job.size, 0)

    async def _nothing_to_index(
        self, job: _Job, why: str, arrived: Callable[[], None] | None = None
    ) -> None:
        """Skipped, not failed: an empty or blank file (an ``__init__.py``), or a binary in
        a walked tree. Still written, so an earlier version's chunks are removed and the
        next run skips the source unread."""
        await self._store(job, [], [], [], None, arrived)
        job.result.status, job.result.success, job.result.message = "skipped", True, why

    async def _skip_no_text(self, job: _Job, what: str) -> None:
        """A listed image, video, binary, ...: skipped unread, not failed (a docs tree's
        logos would fail every run). Named on its own, it fails with the reason."""
        assert self.ledger is not None
        job.previous = await self._in_store(self.ledger.get, job.session, job.result.source)
        if job.previous is not None and job.previous.chunk_ids and not job.dry_run:
            job.fingerprint = self._fingerprint_of(job)
            await self._store(job, [], [], [], None)  # what an earlier version left
        job.result.status, job.result.success = "skipped", True
        job.result.message = f"{what}: no text to index"

    async def _staged_download(
        self, target: S3Location | DirectURL, progress: Callable[[int, int | None], None]
    ) -> DownloadResult:
        """Download to the staging dir. On a full disk, wait while other documents' files
        are staged (each goes once parsed) and try again: a batch larger than the disk
        fails only a file that does not fit with nothing else staged."""
        assert self._s3 is not None
        while True:
            self._staged += 1
            try:
                result: DownloadResult = await self._s3.download_to_temp(
                    target, progress=progress, show_progress=False
                )
                return result
            except DiskFullError:
                self._unstage()
                if self._staged == 0:
                    raise
                logger.info("%s: the staging disk is full; waiting for a staged file", target)
                await self._staging_freed.wait()
            except BaseException:
                self._unstage()
                raise

    def _unstage(self) -> None:
        self._staged -= 1
        self._staging_freed.set()
        self._staging_freed = asyncio.Event()

    @staticmethod
    def _skip_unchanged(job: _Job, how: str = "") -> None:
        assert job.previous is not None
        job.result.status, job.result.success = "skipped", True
        job.result.total_chunks = len(job.previous.chunk_ids)
        job.result.message = "unchanged since the last ingest" + how

    def _arrive(self) -> None:
        self._approaching -= 1

    async def _ingest_new(self, job: _Job, arrived: Callable[[], None]) -> None:
        """Download, parse, chunk, embed and store a source the ledger does not have."""
        assert self.store is not None and self._s3 is not None and self._writer is not None
        assert self.ledger is not None
        src, result, seconds = job.src, job.result, job.seconds
        key, session = result.source, job.session
        # Download (tier 1).
        temp: Path | None = None
        s3_etag: str | None = None  # the content's identity, with no hash of it (parse_memo.py)
        nothing: str | None = None
        if src.path is not None:
            path = src.path
            result.bytes = job.size
        else:
            async with self._stage(seconds, "download", "download"):
                known = job.size if job.size >= 0 else None  # a chunked web page: unknown
                self._emit(result, "downloading", bytes_done=0, bytes_total=known)

                def on_bytes(done: int, total: int | None) -> None:
                    self._emit(result, "downloading", bytes_done=done, bytes_total=total)

                assert src.target is not None  # neither a local path nor an upload
                download = await self._staged_download(src.target, on_bytes)
                if isinstance(src.target, S3Location):  # a version ID names no content
                    s3_etag = download.info.etag
            temp = path = download.path
        try:
            if src.path is None:
                result.bytes = download.bytes
                result.attempts = download.attempts
                listed_version = src.info.version_id if src.info else None
                if download.info.etag and job.version != download.info.etag and not listed_version:
                    # changed since listing: index what we got
                    job.version = result.etag = download.info.etag
                if job.version is None:
                    # A web server that sends no ETag: the content is the version, so an
                    # unchanged page is still not embedded again.
                    job.version = result.etag = await self._in_io(_file_digest, path)
                    if await self._unchanged(job):
                        self._skip_unchanged(job, " (same content)")
                        return
                    if self.settings.models.reuse_vectors:  # a twin, now its version is known
                        twin = await self._in_store(self.ledger.twin, session, key, job.version)
                        job.reusable = sorted({*job.reusable, *twin})
            base = self._base_metadata(job)
            memo = ParseMemo.key(job.version, s3_etag, result.bytes, src.name, job.extra)
            hit = None
            # Parse and chunk (tier 2, worker processes), or take the parse of the same
            # bytes (parse_memo.py); a copy waits here, holding no parse slot.
            async with self._memo.turn(memo):
                try:
                    # A re-ingest asks for a fresh parse (new parsers, new masking).
                    hit = None if job.reingest else self._memo.get(memo, base)
                    if hit is not None:
                        parsed, plan = hit.parsed, hit.plan
                    else:
                        async with self._stage(seconds, "parse_chunk", "parse"):
                            self._emit(result, "parsing")
                            try:
                                parsed, plan = await self._pool.parse_and_chunk(
                                    str(path),
                                    src.name,
                                    self._chunk_settings,
                                    base,
                                    member_cache=self._archive_cache(session, key),
                                )
                            except DocumentError as exc:
                                self._memo.put_failure(memo, exc)
                                raise
                        self._memo.put(memo, key, parsed, plan, base)
                except DocumentError as exc:
                    if not nothing_to_index(exc, src.listed):
                        raise
                    nothing = str(exc).removeprefix(f"{src.name}: ")
            if nothing is not None:
                await self._nothing_to_index(job, nothing, arrived)
                return
            self._emit(result, "chunking")
            result.file_type = parsed.file_type
            result.is_code_file = parsed.file_type in _CODE_TYPES
            result.language = parsed.language
            result.pages = parsed.pages
            result.parser = parsed.parser
            warnings, notes = split_notes(parsed.warnings + plan.warnings)
            # after what was said before the parse (a store that had lost its chunks)
            result.warnings += warnings
            result.notes += notes
            if hit is not None:
                result.notes.append(f"parsed once for the same bytes at {hit.first}")
            job.unread_scans = any(UNREAD_SCANS in w for w in parsed.warnings)
            result.chunked = plan.chunked
            result.token_count = plan.token_count
            if parsed.images and self._describer is not None:
                t = time.perf_counter()
                failed = await self._describe_images(job, parsed.images, plan, base)
                job.incomplete = job.incomplete or failed > 0
                seconds["images"] = time.perf_counter() - t
            if not plan.chunks:
                from rag_ingest.errors import EmptyDocumentError

                raise EmptyDocumentError(f"{src.name}: no chunks after validation")
        finally:
            if temp is not None:
                try:
                    await unlink_off_loop(temp, self._io)
                finally:
                    temp = None
                    self._unstage()

        texts = [c.text for c in plan.chunks]
        metadatas = [c.metadata for c in plan.chunks]
        ids = chunk_ids(
            session, key, (m["content_hash"] for m in metadatas), self.store.id_namespace
        )

        # A session's quota is checked before any model is paid for this document.
        # Held on its claim until its row is written, or its claim is let go.
        await self._reserve_quota(job, len(ids))
        # Summarize (tier 3, optional): a failure leaves the document ingested.
        if self._summarizer is not None:
            t = time.perf_counter()
            self._emit(result, "summarizing")
            try:
                result.summary = await self._summarize(job, "\n\n".join(texts))
            except RagIngestError as exc:
                job.incomplete = True
                result.warnings.append(f"summary failed (tried again on the next run): {exc}")
                logger.warning("summary failed for %s: %s", key, exc)
            if result.summary:
                for m in metadatas:
                    m["summary"] = result.summary[:2000]
            seconds["summary"] = time.perf_counter() - t

        # Embed (tier 3): all of a document's vectors, or none of its chunks land.
        t = time.perf_counter()
        vectors: Vectors | None = None
        read = texts  # what the embedder reads
        cost = [int(m.get("token_count", 0)) for m in metadatas]  # its tokens
        if self._chunk_settings.embed_header and not self.store.computes_own_vectors:
            from rag_ingest.chunking import embed_text
            from rag_ingest.tokens import count_tokens

            read = [embed_text(x, m) for x, m in zip(texts, metadatas, strict=True)]
            # Each header's own tokens, counted once a document (its chunks share a
            # few): a header ends in a blank line, which no token crosses.
            headers: dict[str, int] = {}
            for i, m in enumerate(metadatas):
                m["embed_header"] = True  # its vector is of the header and the text
                header = read[i][: len(read[i]) - len(texts[i])]
                if header not in headers:
                    headers[header] = count_tokens(header, self._chunk_settings.encoding)
                cost[i] += headers[header]
        if self._window is not None:
            await self._flag_truncated(read, metadatas, result)
        if not self.store.computes_own_vectors:
            self._emit(result, "embedding")
            vectors = await self._embed(job, read, metadatas, cost, ids)
        else:  # the caller's store embeds every chunk it is given
            self._count_embedded(job, cost)
        seconds["embed"] = time.perf_counter() - t

        self._emit(result, "storing")
        await self._store(job, ids, texts, metadatas, vectors, arrived)
        result.status, result.success = "ingested", True
        result.total_chunks = len(ids)

    async def _embed(
        self,
        job: _Job,
        texts: list[str],
        metadatas: list[dict[str, Any]],
        cost: list[int],
        ids: list[str],
    ) -> Vectors:
        """Vectors for ``texts`` (what the embedder reads: the chunks' text, under their
        header with ``chunk.embed_header``; ``cost``, their tokens): a chunk whose text
        (and header) the store already holds for this source (its last ingest's chunks,
        or those an interrupted write left) or for a twin of it (the same version in
        another session, or under another name), or that a failed attempt embedded,
        keeps that vector, and only the rest go to the embedder. A changed page of a long
        PDF, a changed file in an archive, new ``metadata=``, a summary tried again or a
        handbook every session uploads cost the embedding of what is new. If a batch
        fails, those before it are kept."""
        import numpy as np

        assert self.store is not None and self.ledger is not None
        headers = self._chunk_settings.embed_header
        if headers:  # a vector is reused for the same header and text only
            from rag_ingest.chunking import content_hash

            keys = [content_hash(x) for x in texts]
        else:
            keys = [m["content_hash"] for m in metadatas]
        known = job.kept
        if job.reusable:
            origins: dict[str, str] = {}
            stored = await self._in_store(
                self.store.vectors_by_hash, job.reusable, headers, origins
            )
            known = {**known, **stored}
            job.own_vectors = {i for i, key in zip(ids, keys, strict=True) if origins.get(key) == i}
        todo = [i for i, key in enumerate(keys) if key not in known]
        done: list[Vectors] = []
        try:
            fresh: Vectors = await self._runner.embed(
                [texts[i] for i in todo], done, job.result.usage
            )
        except Exception:
            paid = sum(len(batch) for batch in done)
            self._count_embedded(job, [cost[i] for i in todo[:paid]])
            if done and self.settings.models.reuse_vectors:
                await self._keep_vectors(job, [keys[i] for i in todo], done)
            raise
        self._count_embedded(job, [cost[i] for i in todo])
        if not known:
            return fresh
        width = len(next(iter(known.values())))
        if len(fresh) and fresh.shape[1] != width:
            raise ModelError(
                f"{self._runner.name} returned {fresh.shape[1]}-dimension vectors, and this "
                f"source's stored ones have {width}"
            )
        vectors = np.empty((len(texts), width), dtype=np.float32)
        for row, i in enumerate(todo):
            vectors[i] = fresh[row]
        for i, key in enumerate(keys):
            if key in known:
                vectors[i] = known[key]
        job.result.reused_vectors = len(texts) - len(todo)
        return vectors

    @staticmethod
    def _count_embedded(job: _Job, cost: list[int]) -> None:
        """Count chunks sent to the embedder, and their tokens (``cost``, a chunk's), in
        the result's usage."""
        from rag_ingest.models import add_usage

        if cost:
            add_usage(job.result.usage, "embedded_chunks", len(cost))
            add_usage(job.result.usage, "embedded_tokens", sum(cost))

    def _read_ledger(self, job: _Job) -> None:
        """Fill ``job.previous``, the source's ledger row, and what may serve its chunks'
        vectors (see :meth:`_embed`): ``job.reusable``, the IDs of stored chunks (its
        row's, those noted before a write that never reached its row, a twin's:
        :meth:`Ledger.twin`), and ``job.kept``, the vectors a failed attempt kept. One
        trip to the store's thread; the last two are left empty for a source the row
        says is unchanged (most of a re-run), and in a dry run."""
        assert self.ledger is not None
        session, source = job.session, job.result.source
        job.previous = self.ledger.get(session, source)
        if (
            not self.settings.models.reuse_vectors
            or job.dry_run
            or job.unchanged(self._reads_scans)
        ):
            return
        ids = self.ledger.pending(session, source)
        if job.previous is not None:
            ids.update(job.previous.chunk_ids)
        if job.version is not None:
            ids.update(self.ledger.twin(session, source, job.version))
        job.reusable = sorted(ids)
        job.kept = self.ledger.kept_vectors(session, source)

    async def _keep_vectors(self, job: _Job, hashes: list[str], done: list[Vectors]) -> None:
        """Keep the vectors of the batches embedded before one failed past its retries:
        the next attempt pays for the rest only (a 429 storm at batch 90 of 100 of a
        paid API no longer costs the first 89 twice)."""
        assert self.ledger is not None
        from rag_ingest.models import concat_vectors

        vectors = concat_vectors(done)
        try:
            await self._in_store(
                self.ledger.keep_vectors, job.session, job.result.source, hashes, vectors
            )
        except RagIngestError as exc:
            logger.warning("could not keep the vectors embedded so far: %s", exc)
            return
        job.result.warnings.append(
            f"{len(vectors)} of {len(hashes)} chunks were embedded before the failure; "
            "their vectors are kept, and the next attempt embeds the rest"
        )

    async def _reserve_quota(self, job: _Job, chunks: int | None) -> None:
        """Hold room for this document in its session's quota (``pipeline.session_max_*``),
        counting the documents in flight; :class:`QuotaExceededError` when it would not
        fit. The hold is on its claim: the transaction that writes its row, or the
        claim's release, lets it go. With ``chunks`` None (before download, its chunks
        unknown), the documents and bytes alone are checked and nothing is held: a
        session already full, or one this document's size would overfill, refuses it
        unread."""
        p = self.settings.pipeline
        if (
            p.session_max_documents is None
            and p.session_max_bytes is None
            and (chunks is None or p.session_max_chunks is None)
        ):
            return
        assert self.ledger is not None
        session, source = job.session, job.result.source
        # Its bytes as read once downloaded (what the ledger keeps), as listed before.
        size = job.result.bytes or max(job.size, 0)
        check = functools.partial(self._check_quota, job, size, chunks)
        if job.dry_run:  # nothing held: a dry run's documents are not in flight
            check(*await self._in_store(self.ledger.usage, session, source))
            return
        # Held in the ledger, on this document's claim (quotas set, sources are claimed),
        # so every process sharing it counts what every other has in flight, checked
        # and held in one transaction (each process counting its own had two admit a
        # session's last document). The hold goes with the ledger row its write
        # records, or with the claim.
        assert self._claims
        reserve = functools.partial(
            self.ledger.reserve, session, source, self._owner, check, chunks, size
        )
        await self._in_store(reserve)

    def _check_quota(
        self,
        job: _Job,
        size: int,
        chunks: int | None,
        documents: int,
        stored: int,
        stored_bytes: int,
    ) -> None:
        """:class:`QuotaExceededError` if the document does not fit beside the session's
        ``documents``, ``stored`` chunks and ``stored_bytes`` (those in flight included)."""
        p = self.settings.pipeline
        why = None
        if p.session_max_documents is not None and documents + 1 > p.session_max_documents:
            why = (
                f"it holds {documents} documents (in flight included) of its "
                f"{p.session_max_documents} (pipeline.session_max_documents)"
            )
        elif p.session_max_bytes is not None and stored_bytes + size > p.session_max_bytes:
            why = (
                f"it holds {stored_bytes} bytes of documents (in flight included) of its "
                f"{p.session_max_bytes} (pipeline.session_max_bytes), and this document "
                f"has {size}"
            )
        elif (
            chunks is not None
            and p.session_max_chunks is not None
            and stored + chunks > p.session_max_chunks
        ):
            why = (
                f"it holds {stored} chunks (in flight included) of its {p.session_max_chunks} "
                f"(pipeline.session_max_chunks), and this document has {chunks}"
            )
        if why is not None:
            from rag_ingest.errors import QuotaExceededError

            raise QuotaExceededError(
                f"{job.result.filename or job.result.source}: session {job.session!r} is "
                f"full: {why}; delete some of its documents, or raise the quota"
            )

    async def _store(
        self,
        job: _Job,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: Vectors | None,
        arrived: Callable[[], None] | None = None,
    ) -> None:
        """Store first, ledger second (a replay is an idempotent upsert), batched with
        other documents. The source's chunks from an earlier version that ``ids`` lacks
        are deleted. Runs inside the source's turn (see :meth:`_attempt`)."""
        assert self._writer is not None
        write = ChunkWrite(
            session_id=job.session,
            source=job.result.source,
            version=job.version,
            size=job.result.bytes,
            fingerprint=job.ledger_fingerprint,
            ids=ids,
            texts=texts,
            metadatas=metadatas,
            vectors=vectors,
            answers=job.answers,
            usage=job.result.usage,
            own_vectors=job.own_vectors,
        )
        if arrived is not None:
            arrived()
        job.usage_written = True  # queued, the write happens though this task is cancelled
        job.seconds["store_wait"], job.seconds["store"] = await self._writer.write(write)

    async def _flag_truncated(
        self, texts: list[str], metadatas: list[dict[str, Any]], result: IngestResult
    ) -> None:
        """Mark chunks longer than the embedder reads (their ends are not embedded)."""
        assert self._window is not None
        window, counter = self._window
        counts = await self._in_io(counter, texts)
        over = [m for m, n in zip(metadatas, counts, strict=True) if n > window]
        for m in over:
            m["embed_truncated"] = True
        if over:
            result.warnings.append(
                f"{len(over)} of {len(texts)} chunks exceed the embedder's {window}-token "
                "input: only their beginnings are embedded"
            )

    @contextlib.asynccontextmanager
    async def _stage(self, seconds: dict[str, float], name: str, gate: str) -> AsyncIterator[None]:
        """Time a stage behind its semaphore: ``name`` is the work, ``name_wait`` the queue."""
        queued = time.perf_counter()
        async with self._gates[gate]:
            started = time.perf_counter()
            seconds[f"{name}_wait"] = started - queued
            try:
                yield
            finally:
                seconds[name] = time.perf_counter() - started

    async def _answer(
        self, job: _Job, key: str, ask: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """A model's answer to what ``key`` names: one the ledger kept (this source's
        own first, so its text stays as it was, else any other's asked the same of the
        same model), else ``ask``'s, kept at once so that an answer paid for outlives a
        failure later in the document. Documents in flight asking the same wait for
        the first. Raises what ``ask`` raises."""
        assert self.ledger is not None
        if not self.settings.models.reuse_answers:
            return await ask()
        session, source = job.session, job.result.source
        turn = self._asking.setdefault(key, asyncio.Lock())
        async with turn:
            answer: dict[str, Any] | None = None
            kept = await self._in_store(self.ledger.answer, key, session, source)
            if kept is not None:
                with contextlib.suppress(ValueError):
                    answer = json.loads(kept[0])
            own = False
            if isinstance(answer, dict) and isinstance(answer.get("text"), str):
                job.result.reused_answers += 1
                own = kept is not None and kept[1]
            else:
                answer = await ask()
            job.answers.append(key)
            if not own:  # this source's row holds it already
                try:
                    await self._in_store(
                        self.ledger.keep_answer, session, source, key, json.dumps(answer)
                    )
                except RagIngestError as exc:
                    logger.warning("could not keep a model's answer: %s", exc)
        return answer

    async def _summarize(self, job: _Job, text: str) -> str:
        """The document's summary (kept, or asked for); what the summarizer notes about
        it (windows left out) goes to the result's warnings."""

        async def ask() -> dict[str, Any]:
            notes: list[str] = []
            summary = await self._summarizer.summarize(text, notes=notes, usage=job.result.usage)
            return {"text": summary, "notes": notes}

        answer = await self._answer(job, self._summarizer.key(text), ask)
        job.result.warnings += [str(note) for note in answer.get("notes", [])]
        return str(answer["text"])

    async def _describe_images(
        self, job: _Job, images: list[Any], plan: Any, base: dict[str, Any]
    ) -> int:
        """One chunk per described image, with its page; a failed description is a
        warning. A picture shown more than once (a logo on every slide) is described
        once. Returns how many images failed."""
        from rag_ingest.chunking import Chunk, content_hash
        from rag_ingest.credentials import mask_credentials, masked_warning
        from rag_ingest.tokens import count_tokens

        result = job.result
        mask = self._chunk_settings.mask_credentials
        keys = [self._describer.key(image.data, image.mime, mask) for image in images]
        first: dict[str, Any] = {}  # each picture's first showing
        for key, image in zip(keys, images, strict=True):
            first.setdefault(key, image)

        def shown_on(image: Any) -> str:
            return f"page {image.page}" if image.page else "the document"

        async def ask(image: Any) -> dict[str, Any]:
            async with self._gates["images"]:
                text: str = await self._describer.describe(image.data, image.mime, result.usage)
            found: dict[str, int] = {}
            if mask and text:
                # A picture of a terminal or a config is read out by the model, keys and
                # all: masked before it is kept.
                text, counts = mask_credentials(text)
                found = dict(counts)
            return {"text": text, "masked": found}

        async def describe(key: str, image: Any) -> dict[str, Any] | None:
            try:
                return await self._answer(job, key, lambda: ask(image))
            except RagIngestError as exc:
                more = keys.count(key) - 1
                also = f" (and {more} more of the same picture)" if more else ""
                result.warnings.append(f"image on {shown_on(image)}{also}: {exc}")
                return None

        self._emit(result, "describing images")
        done = await asyncio.gather(*(describe(k, image) for k, image in first.items()))
        answers = dict(zip(first, done, strict=True))
        found: Counter[str] = Counter()
        seen = {c.metadata["content_hash"] for c in plan.chunks}
        failed = 0
        for image, key in zip(images, keys, strict=True):
            answer = answers[key]
            if answer is None:
                failed += 1
                continue
            found.update(answer.get("masked") or {})
            description = answer["text"]
            if not description:
                continue
            text = f"[Image on {shown_on(image)}] {description}"
            digest = content_hash(text)
            if digest in seen:
                continue
            seen.add(digest)
            metadata = dict(base)
            metadata.update(
                chunk_index=len(plan.chunks),
                token_count=count_tokens(text, self.settings.chunk.encoding),
                content_hash=digest,
                chunk_strategy="image",
                chunked=plan.chunked,
                content_type="image_description",
            )
            if image.page:
                metadata["page_start"] = metadata["page_end"] = image.page
            plan.chunks.append(Chunk(text, metadata))
        if found:
            result.warnings.append(masked_warning(found, "the descriptions of its images"))
        for chunk in plan.chunks:
            chunk.metadata["chunk_count"] = len(plan.chunks)
        return failed

    def _base_metadata(self, job: _Job) -> dict[str, Any]:
        src = job.src
        meta = dict(job.extra)
        meta.update(
            source=job.result.source,
            filename=src.name,
            session_id=job.session,
            ingested_at=datetime.now(UTC).isoformat(),
        )
        if isinstance(src.target, S3Location):
            meta["bucket"] = src.target.bucket
            meta["key"] = src.target.key
        elif isinstance(src.target, DirectURL):
            if src.target.bucket:
                meta["bucket"] = src.target.bucket
            if src.target.key:
                meta["key"] = src.target.key
        if job.version:
            meta["version"] = job.version
        if job.user_id:
            meta["user_id"] = job.user_id
        return meta

    # -- many documents ----------------------------------------------------------------

    async def process_many(
        self,
        sources: str | os.PathLike[str] | Upload | Iterable[Any],
        *,
        session_id: str,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        on_result: Callable[[IngestResult], None] | None = None,
        prune: bool = False,
        allowed_sources: Sequence[str] | None = None,
        dry_run: bool = False,
        reingest: bool = False,
        keep_results: Literal["all", "failed", "none"] = "all",
    ) -> IngestReport:
        """Ingest many sources (or an ``s3://`` prefix, or a directory) concurrently.

        At most ``pipeline.in_flight`` documents are in the pipeline at once, and
        the listing is consumed lazily. Failures are collected in the report, never
        raised.

        ``keep_results``: which results the report holds, ``"all"``, ``"failed"`` or
        ``"none"``; its totals count every one. Each result held is 1-2 KB (more with
        warnings): for a run of many thousands of sources, keep the failed and take each
        result as it comes with ``on_result``, and memory stays flat as the corpus grows.

        ``prune=True``: once every listed source is done, the session's sources
        that these prefixes and directories (with the same globs) listed before and
        no longer do are removed, chunks and ledger rows (``report.pruned``). A
        listing that fails raises before anything is pruned.

        ``allowed_sources`` narrows ``pipeline.allowed_sources`` for this call, as in
        :meth:`process_document`; a prefix or directory outside is not listed.

        ``dry_run=True``: list and locate only (a HEAD where a listing gives no version,
        a hash of each local file), then stop: each source that a run would ingest is
        ``planned``, saying why, its size in ``bytes``; the unchanged are ``skipped``;
        ``report.pruned`` names what ``prune`` would remove. Nothing is downloaded,
        parsed, embedded, written or pruned, and the ledger is not touched.

        ``reingest=True``: read every source again, unchanged ones too (after an upgrade
        that parses or masks better): each one's chunks are replaced, as a changed
        source's are, and the vectors of chunks whose text is the same are reused, not
        embedded again (``models.reuse_vectors``).
        """
        session = require_session(session_id)
        if keep_results not in KEEP_RESULTS:
            raise ConfigurationError(
                f"keep_results={keep_results!r}: one of {', '.join(KEEP_RESULTS)}"
            )
        named: str | os.PathLike[str] | Iterable[Any] = (
            [sources] if isinstance(sources, Upload) else sources
        )
        if prune and not isinstance(named, (str, os.PathLike)):
            named = list(named)  # read twice: to list, then to scope the pruning
        extra = _caller_metadata(metadata)
        allowed = narrowed(self.settings.pipeline.allowed_sources, allowed_sources)
        await self.start()
        assert self.store is not None
        self.store.check_embedder()
        work = self._work_for(session)  # held: a delete voids sources not yet listed too
        report = IngestReport(
            session_id=session,
            started_at=datetime.now(UTC).isoformat(),
            dry_run=dry_run,
            keep=keep_results,
        )
        seen: set[str] = set()  # every source done, for the pruning
        self.events.start_bar(None)
        slots = asyncio.Semaphore(self.settings.pipeline.in_flight)
        tasks: set[asyncio.Task[None]] = set()

        async def one(item: Any) -> None:
            slot = _Slot(slots)
            _SLOT.set(slot)  # this task's context, and its document's attempt task's
            try:
                result = await self._process(
                    item,
                    session,
                    user_id,
                    extra,
                    work,
                    allowed=allowed,
                    dry_run=dry_run,
                    reingest=reingest,
                )
                report.add(result)
                if prune:
                    seen.add(result.source)
                if on_result is not None:
                    report.callback_errors = call_logged(
                        on_result, result, report.callback_errors, "on_result"
                    )
            finally:
                slot.lend()  # given back, unless it is lent already

        try:
            own = [self.settings.store.persist_dir, self.settings.temp_dir]
            skip = [d for d in own if d is not None]
            listing = expand_sources(self._s3, named, include, exclude, skip, allowed)
            single = one_named(named)
            async for item in unique_sources(self._s3, listing, single=single):
                await slots.acquire()
                report.listed += 1
                task = asyncio.ensure_future(one(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
            if prune and not work.deleted:
                listed = listed_by(named, include, exclude, skip, allowed)
                report.pruned = await self._prune(session, listed, seen, dry_run=dry_run)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        report.finished_at = datetime.now(UTC).isoformat()
        return report

    async def _prune(
        self, session: str, listed: Callable[[str], bool], seen: set[str], *, dry_run: bool
    ) -> list[str]:
        """Remove the session's sources that ``listed`` covers and ``seen`` lacks (with
        ``dry_run``, only name them)."""
        assert self.store is not None and self.ledger is not None
        rows = await self._in_store(self.ledger.session_rows, session)
        # Off the loop: for a directory, each test reads paths and .gitignore files.
        gone = await self._in_io(
            lambda: sorted(r.source for r in rows if r.source not in seen and listed(r.source))
        )
        if dry_run:
            return gone
        for source in gone:
            lock = self._source_locks.setdefault((session, source), asyncio.Lock())
            # Claimed as an ingest would: not pruned under another process ingesting it.
            async with lock, self._claimed(session, source), self._gates["store"]:
                row = await self._in_store(self.ledger.get, session, source)
                ids = set(row.chunk_ids) if row else set()
                ids |= await self._in_store(self.ledger.pending, session, source)
                stored = await self._in_store(self.store.ids_for, session, source)
                ids |= stored or set()
                # Store first, ledger second: a crash in between prunes it again next run.
                await self._in_store(self.store.delete, sorted(ids))
                await self._in_store(self.ledger.delete_source, session, source)
                cache = self._archive_cache(session, source)
                if cache is not None:
                    await self._in_io(functools.partial(Path(cache).unlink, missing_ok=True))
            logger.info("pruned %s (%d chunks): no longer listed", source, len(ids))
        return gone

    # -- a bounded submission queue (for web backends) ------------------------------------

    def submit(
        self,
        source: str | os.PathLike[str] | ObjectInfo | Upload,
        *,
        session_id: str,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        allowed_sources: Sequence[str] | None = None,
        reingest: bool = False,
    ) -> asyncio.Future[IngestResult]:
        """Queue one source and return a future result; :class:`QueueFullError` when full.

        Call from a running loop after :meth:`start`. The queue is bounded by
        ``pipeline.queue_size``; a web backend turns QueueFullError into a 503.
        ``reingest``: read it again even if unchanged (see :meth:`process_many`).
        """
        session = require_session(session_id)
        extra = _caller_metadata(metadata)
        allowed = narrowed(self.settings.pipeline.allowed_sources, allowed_sources)
        if not self._started or self._closed:
            raise RuntimeError("start() the processor before submit()")
        if self._loop is not asyncio.get_running_loop():
            raise RuntimeError(
                "the processor was started on another event loop: await start() on this one"
            )
        assert self.store is not None
        self.store.check_embedder()
        if self._queue is None:
            self._queue = asyncio.Queue(self.settings.pipeline.queue_size)
            self._workers = [
                asyncio.ensure_future(self._queue_worker())
                for _ in range(self.settings.pipeline.in_flight)
            ]
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        try:
            work = self._work_for(session)
            self._queue.put_nowait(
                (source, session, user_id, extra, work, allowed, reingest, future)
            )
        except asyncio.QueueFull:
            raise QueueFullError(
                f"{self._queue.maxsize} documents already queued; try again later"
            ) from None
        return future

    async def _queue_worker(self) -> None:
        assert self._queue is not None
        while True:
            source, session, user, extra, work, allowed, again, future = await self._queue.get()
            try:
                if not future.cancelled():
                    result = await self._process(
                        source, session, user, extra, work, allowed=allowed, reingest=again
                    )
                    if not future.cancelled():
                        future.set_result(result)
            except asyncio.CancelledError:
                if not future.done():
                    future.cancel()
                raise
            except BaseException as exc:  # pragma: no cover - process_document does not raise
                if not future.done():
                    future.set_exception(exc)
            finally:
                self._queue.task_done()
                # Waiting for the next item, hold nothing of this one: its session's work
                # (weakly kept) would look in flight to expire_sessions.
                del source, work, future

    # -- sessions ----------------------------------------------------------------------

    async def query(
        self, text: str, *, session_id: str, k: int = 4, where: dict[str, Any] | None = None
    ) -> list[tuple[Any, float]]:
        """Top ``k`` chunks of one session (never another session's); ``where``, a
        metadata filter in Chroma's form (``{"file_type": "pdf"}``, ``$in``, ``$and``,
        ...), narrows within the session."""
        session = require_session(session_id)
        if not (self._started and self._loop is not None and self._loop.is_running()):
            # A search needs no loop-bound state: a tool on a worker thread may query
            # through its own asyncio.run while the app's loop runs the processor.
            await self.start()
        store = self.store
        assert store is not None
        hits = await self._in_store(lambda: store.query(text, session_id=session, k=k, where=where))
        self._note_search(session)
        return hits

    def as_retriever(
        self, *, session_id: str, k: int = 4, where: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """A LangChain retriever over one session's chunks only (call after start());
        ``where`` narrows within the session, as in :meth:`query`."""
        if self.store is None:
            raise RuntimeError("start() the processor first")
        return self.store.as_retriever(
            session_id=session_id, k=k, where=where, on_search=self._note_search, **kwargs
        )

    # Seconds between two notes of one session's searches in the ledger.
    _search_note_every = 60.0

    def _note_search(self, session: str) -> None:
        """Note a search of ``session`` in the ledger, so retention (``expire_sessions``)
        keeps a session in use: once a minute a session at most, on an I/O thread, not
        waited for (a retriever may search from any thread)."""
        ledger, now = self.ledger, time.monotonic()
        if ledger is None or now - self._searches_noted.get(session, -math.inf) < (
            self._search_note_every
        ):
            return
        if len(self._searches_noted) > 10_000:  # a backend of many sessions: the stale go
            cutoff = now - self._search_note_every
            self._searches_noted = {s: t for s, t in self._searches_noted.items() if t > cutoff}
        self._searches_noted[session] = now
        try:
            noted = self._io.submit(ledger.note_query, session)
        except RuntimeError:  # closed meanwhile
            return
        noted.add_done_callback(_log_unnoted)

    async def delete_session(self, session_id: str) -> int:
        """Remove exactly this session's chunks and ledger rows; returns chunks removed.

        Its documents in flight are stopped first (their results fail with
        :class:`SessionDeletedError`), and so are those its callers have queued or
        not listed yet: nothing of the session lands after the delete. Documents
        for it started after this call wait for the delete, then proceed.
        """
        session = require_session(session_id)
        await self.start()
        assert self.store is not None and self.ledger is not None
        async with self._session_alone(session, stop=True), self._gates["store"]:
            rows = await self._in_store(self.ledger.session_rows, session)
            known = [i for row in rows for i in row.chunk_ids]
            known += await self._in_store(self.ledger.session_pending, session)
            removed = await self._in_store(self.store.delete_session, session, known)
            await self._in_store(self.ledger.delete_session, session)
            cache = self._archive_cache(session)
            if cache is not None:
                await self._in_io(functools.partial(shutil.rmtree, cache, ignore_errors=True))
        return removed

    def _archive_cache(self, session: str, source: str | None = None) -> str | None:
        """Where a source's archive files or mailbox messages are remembered as parsed
        (parse.archive_cache), next to the ledger: a directory per session, a file per
        source (``source`` None: the session's directory)."""
        if not self.settings.parse.archive_cache or self.ledger is None:
            return None

        def name(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:32]

        where = self.ledger.path.with_suffix(".archive-cache") / name(session)
        return str(where if source is None else where / f"{name(source)}.json")

    async def sessions(self) -> list[SessionInfo]:
        """Every session the ledger holds: its sources, chunks, failures, last ingest and
        what its model calls cost."""
        await self.start()
        assert self.ledger is not None
        return await self._in_store(self.ledger.sessions)

    async def session_usage(self, session_id: str, source: str | None = None) -> dict[str, int]:
        """What one session's model calls cost (see ``IngestResult.usage``), summed over
        every ingest of each source it holds, failed attempts' paid calls included; of
        one ``source`` (as its results name it) when given. Empty for a session the
        ledger does not hold."""
        session = require_session(session_id)
        await self.start()
        assert self.ledger is not None
        return await self._in_store(self.ledger.model_use, session, source)

    async def expire_sessions(self, older_than: timedelta) -> dict[str, int]:
        """Delete every session last used more than ``older_than`` ago, as
        :meth:`delete_session` does; returns session -> chunks removed. Used: ingested
        into (its newest ledger entry: a skipped, unchanged source does not count) or
        searched (:meth:`query`, a retriever; noted once a minute at most). A session
        with documents in flight is in use and kept."""
        if older_than <= timedelta(0):
            raise ConfigurationError(f"older_than must be positive, not {older_than}")
        cutoff = datetime.now(UTC) - older_than
        removed: dict[str, int] = {}
        for info in await self.sessions():
            if info.last_used < cutoff and info.session_id not in self._sessions:
                removed[info.session_id] = await self.delete_session(info.session_id)
        return removed

    async def verify_session(self, session_id: str, *, repair: bool = False) -> VerifyReport:
        """Compare the session's ledger with its store; with ``repair``, make them agree.

        Orphans (chunks in the store that no ledger row records: a write whose
        ledger row was lost) are deleted. A source whose recorded chunks are missing
        from the store is marked failed, so the next run over it ingests it again.
        Documents of the session in flight are waited for, and new ones held, until
        done. A store that cannot list a session's IDs but has ``get_by_ids`` is checked
        for the IDs the ledger knows of (``report.listed`` False): an orphan that no
        ledger row or pending write ever named is not seen there.
        """
        session = require_session(session_id)
        await self.start()
        assert self.store is not None and self.ledger is not None
        store, ledger = self.store, self.ledger
        async with self._session_alone(session, stop=False), self._gates["store"]:
            report = await self._in_store(compare, store, ledger, session)
            if repair and not report.consistent:
                await self._in_store(store.delete, report.orphans)
                for source, lacking in report.missing.items():
                    mark = functools.partial(
                        ledger.record_failure_keeping_chunks,
                        session_id=session,
                        source=source,
                        error_type="StoreMismatchError",
                        message=f"verify: {lacking} of its chunks were missing from the store",
                    )
                    await self._in_store(mark)
                report.repaired = True
        return report

    @contextlib.asynccontextmanager
    async def _session_alone(self, session: str, *, stop: bool) -> AsyncIterator[None]:
        """Run with nothing of the session in flight; its new documents wait till the end.

        ``stop``: its documents in flight, queued or not yet listed are voided
        (:class:`SessionDeletedError`) and their pending writes dropped; otherwise
        those in flight are waited for.
        """
        assert self._writer is not None
        while (other := self._exclusive.get(session)) is not None:
            await other.wait()
        done = self._exclusive[session] = asyncio.Event()
        try:
            if stop:
                work = self._sessions.pop(session, None)
                if work is not None:
                    work.deleted = True
                    for task in work.tasks:
                        task.cancel()
            else:
                work = self._sessions.get(session)
            if work is not None:
                await asyncio.gather(*list(work.tasks), return_exceptions=True)
            if stop:
                await self._writer.settle(session)
            # Other processes sharing the ledger: their new documents of the session wait
            # for this claim, and those they have in hand are waited for (a delete that
            # went first had their chunks land after it).
            async with self._claimed(session, SESSION_CLAIM):
                await self._others_done(session)
                yield
        finally:
            del self._exclusive[session]
            done.set()

    async def _others_done(self, session: str) -> None:
        """Wait until no other process sharing the ledger has a document of ``session``
        in hand (each renews its claim while it does; a gone one's lapses)."""
        if not self._shares_ledger:
            return
        assert self.ledger is not None
        others = functools.partial(self.ledger.claimants, session, self._owner)
        if busy := await self._in_io(others):
            logger.info(
                "session %r: waiting for the documents of it other processes have in hand (%s)",
                session,
                ", ".join(busy),
            )
        pauses = self._claim_pauses()
        while busy:
            await asyncio.sleep(next(pauses))
            busy = await self._in_io(others)


def _log_unnoted(noted: Any) -> None:
    if not noted.cancelled() and (exc := noted.exception()) is not None:
        logger.warning("a search could not be noted in the ledger: %s", exc)


def transient(exc: BaseException) -> bool:
    """Whether a document's failure may pass with time, nothing else changed: S3
    throttling, timeouts and broken connections, an object that changed while it was
    read or arrived damaged, a model call that failed on a timeout, rate limit or
    server error, a vector store or disk that refused a write. Not: a document that
    is broken, encrypted, too large or of no known type, a missing object, refused
    credentials, a full quota or a parser that timed out or crashed on it."""
    from rag_ingest.errors import (
        DiskFullError,
        ModelError,
        S3Error,
        S3IntegrityError,
        S3ObjectChangedError,
    )

    if isinstance(exc, S3Error):
        return exc.retryable or isinstance(exc, (S3ObjectChangedError, S3IntegrityError))
    if isinstance(exc, ModelError):
        from rag_ingest.models import is_transient

        cause = exc.__cause__
        return exc.retryable or (cause is not None and is_transient(cause))
    if isinstance(exc, StoreError):
        # A value the store refuses to keep (a lone surrogate in a name: "str is not valid
        # UTF-8") is refused again on every run: not "may pass".
        return not isinstance(exc.__cause__, TypeError)
    return isinstance(exc, DiskFullError)


def _caller_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The caller's extra chunk metadata: flat scalars (None values left out), or refused.

    Silently dropping a list or a dict would lose what the caller meant to filter on.
    """
    kept: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
            raise ConfigurationError(
                f"metadata[{key!r}] is {type(value).__name__}: chunk metadata values must "
                "be str, int, float or bool (flat, as Chroma and most stores take them)"
            )
        # What Chroma refuses at write time (after the parse and the embedding calls) or
        # drops without a word (NaN, infinity): refused here, before any work.
        problem = None
        if not key or key.startswith(("#", "$")) or key == "chroma:document":
            problem = "is a name Chroma reserves or refuses (empty, '#...', '$...')"
        elif not _utf8(key) or (isinstance(value, str) and not _utf8(value)):
            problem = "is not valid UTF-8 (a lone surrogate)"
        elif isinstance(value, float) and not math.isfinite(value):
            problem = "is NaN or infinite, which Chroma drops"
        elif (
            isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63
        ):
            problem = "is outside the 64-bit integer range"
        if problem is not None:
            raise ConfigurationError(f"metadata[{key!r}]: {problem}")
        kept[key] = value
    return kept


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _start_threads(executor: ThreadPoolExecutor, count: int) -> None:
    """Start ``executor``'s ``count`` threads now, not one by one on the loop: it starts
    one on a submit that finds none idle, and ``Thread.start()`` waits for the new
    thread to run, which stalled the event loop ~25 ms on a busy machine (measured in
    the ingest benchmark)."""
    barrier = threading.Barrier(count + 1)
    for _ in range(count):
        executor.submit(barrier.wait, 10.0)
    with contextlib.suppress(threading.BrokenBarrierError):  # starved: they start later
        barrier.wait(10.0)


class SyncDocumentProcessor:
    """The blocking twin of :class:`DocumentProcessor`, for scripts and notebooks.

    Runs the async processor on a private loop thread, so it also works inside
    Jupyter, where a loop is already running.
    """

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        from rag_ingest._sync import LoopThread

        self._loop = LoopThread("rag-ingest-processor")
        try:
            self.processor = DocumentProcessor(settings, **kwargs)
            self._loop.run(self.processor.start())
        except BaseException:
            self._loop.close()  # a failed start leaves no loop thread behind
            raise

    def __enter__(self) -> SyncDocumentProcessor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop._closed:
            self._loop.run(self.processor.aclose())
            self._loop.close()

    def process_document(
        self,
        source: str | os.PathLike[str] | ObjectInfo | Upload,
        *,
        session_id: str,
        **kwargs: Any,
    ) -> IngestResult:
        return self._loop.run(
            self.processor.process_document(source, session_id=session_id, **kwargs)
        )

    def process_many(
        self, sources: str | os.PathLike[str] | Iterable[Any], *, session_id: str, **kwargs: Any
    ) -> IngestReport:
        return self._loop.run(self.processor.process_many(sources, session_id=session_id, **kwargs))

    def query(
        self, text: str, *, session_id: str, k: int = 4, where: dict[str, Any] | None = None
    ) -> list[tuple[Any, float]]:
        return self._loop.run(self.processor.query(text, session_id=session_id, k=k, where=where))

    def as_retriever(
        self, *, session_id: str, k: int = 4, where: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """A LangChain retriever over one session's chunks only."""
        return self.processor.as_retriever(session_id=session_id, k=k, where=where, **kwargs)

    def delete_session(self, session_id: str) -> int:
        return self._loop.run(self.processor.delete_session(session_id))

    def verify_session(self, session_id: str, *, repair: bool = False) -> VerifyReport:
        return self._loop.run(self.processor.verify_session(session_id, repair=repair))

    def sessions(self) -> list[SessionInfo]:
        return self._loop.run(self.processor.sessions())

    def session_usage(self, session_id: str, source: str | None = None) -> dict[str, int]:
        return self._loop.run(self.processor.session_usage(session_id, source))

    def expire_sessions(self, older_than: timedelta) -> dict[str, int]:
        return self._loop.run(self.processor.expire_sessions(older_than))
