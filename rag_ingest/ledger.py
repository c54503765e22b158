"""The ledger: each session's sources and their outcomes, in SQLite beside the store.

It records what was ingested (version, size, status, error, chunk IDs), what each
session's model calls cost, the vectors and answers kept for reuse, and the chunk IDs
of writes begun. The store is written first and the ledger second, so a replay is an
idempotent upsert. Apart from the store's module, so reading it (``rag-ingest status``)
loads neither LangChain nor a vector store.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_ingest.errors import StoreError, free_space, unwritable
from rag_ingest.settings import StoreSettings

if TYPE_CHECKING:
    from rag_ingest.models import Vectors

__all__ = [
    "CLAIM_TTL",
    "Ledger",
    "LedgerRow",
    "SESSION_CLAIM",
    "SessionInfo",
    "check_room",
    "claim_owner",
    "ledger_path",
    "open_ledger",
]

logger = logging.getLogger("rag_ingest.ledger")

# Seconds a claim on a source holds unless renewed (a third of this apart): a claimant on
# another host that died holds its sources this long; one on this host is seen gone by
# its PID at once.
CLAIM_TTL = 60.0
# The source of a claim on a whole session (a delete or a verify): no source is "".
SESSION_CLAIM = ""
# Seconds a write waits for another process's transaction on the same ledger file.
_BUSY_TIMEOUT = 30.0


@functools.cache
def _this_host() -> str:
    """This machine and PID namespace: a PID means one process only within both (two
    containers on one host have the same hostname with host networking, not the same
    PID namespace)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}#{namespace}"


def claim_owner() -> str:
    """A processor's name in the claims table: its host, PID and a token of its own."""
    return f"{_this_host()}:{os.getpid()}:{secrets.token_hex(4)}"


def _holds(owner: str, expires_at: float, now: float) -> bool:
    """Whether a claim still holds: not past its expiry, and its process may still run."""
    return expires_at > now and _claimant_alive(owner)


def _claimant_alive(owner: str) -> bool:
    """Whether the process behind a claim may still run: on another host (or of a form
    not ours) it is taken to, and its claim's expiry decides."""
    host, pid, _ = [*owner.rsplit(":", 2), "", ""][:3]
    if host != _this_host() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process, alive
        return True
    return True


def ledger_path(settings: StoreSettings, vectorstore: Any = None) -> Path:
    """Where the ledger of one store lives: a ledger says what one collection holds, so
    another collection, Chroma server or caller's store gets its own file. (One ledger
    for all took "unchanged" from one collection's record and skipped every document
    of an empty one.) Our default collection keeps the original ``ledger.sqlite3``."""
    if vectorstore is None:
        where, name = settings.chroma_url or "embedded", settings.collection
        if where == "embedded" and name == StoreSettings.model_fields["collection"].default:
            return settings.persist_dir / "ledger.sqlite3"
    else:
        kind = type(vectorstore)
        where = f"{kind.__module__}.{kind.__qualname__}"
        name = _store_name(vectorstore)
    return _named_ledger(settings, where, name)


def _named_ledger(settings: StoreSettings, where: str, name: str) -> Path:
    digest = hashlib.sha256(f"{where}\x1f{name}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]
    return settings.persist_dir / f"ledger-{slug}-{digest}.sqlite3"


def _store_name(vectorstore: Any) -> str:
    """A caller's store's collection (or index) name where it has one, else its class's."""
    from rag_ingest.store import chroma_collection  # a caller's store: langchain is loaded

    collection = chroma_collection(vectorstore)
    if collection is not None:
        return str(collection.name)
    for attribute in ("collection_name", "index_name"):  # Qdrant, PGVector, Milvus; ES
        value = getattr(vectorstore, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(vectorstore).__name__


def open_ledger(settings: StoreSettings, vectorstore: Any = None) -> Ledger:
    """The ledger of one store (:func:`ledger_path`). A caller's Qdrant, PGVector or
    other named collection had one ledger per store class, shared by all its
    collections, before: its first opening starts from a copy of that one. (The copy's
    rows for other collections are harmless: a caller's store is asked whether it holds
    a source's chunks before the source is skipped.)"""
    path = ledger_path(settings, vectorstore)
    if vectorstore is not None and not path.exists():
        kind = type(vectorstore)
        shared = _named_ledger(settings, f"{kind.__module__}.{kind.__qualname__}", kind.__name__)
        if shared != path and shared.is_file():
            with contextlib.closing(sqlite3.connect(str(shared))) as source:
                with contextlib.closing(sqlite3.connect(str(path))) as copy:
                    source.backup(copy)
            logger.info("the ledger of %s starts from a copy of %s", path.name, shared.name)
    return Ledger(path)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the ledger holds it."""

    session_id: str
    sources: int
    chunks: int
    failed: int  # sources whose last attempt failed
    # Its newest ledger entry (an ingest, a change, a failure, a write begun), UTC.
    last_ingested: datetime
    # What its model calls cost (as IngestResult.usage), summed over every ingest of the
    # sources it holds; a deleted source's cost goes with it.
    usage: dict[str, int] = field(default_factory=dict)
    # Chunk IDs written, or about to be, by attempts not yet at their row: one in
    # progress, or one cut off (a crash, a kill), which a re-run of its source, ``verify
    # --repair`` or a delete removes. A session whose first documents were all cut off
    # has these and no source.
    pending: int = 0
    # When it was last searched (``query``, a retriever), UTC, to the minute; None: not
    # since the ledger began keeping it.
    last_queried: datetime | None = None

    @property
    def last_used(self) -> datetime:
        """Its last ingest or search, whichever is later: what retention goes by."""
        if self.last_queried is None:
            return self.last_ingested
        return max(self.last_ingested, self.last_queried)


@dataclass
class LedgerRow:
    session_id: str
    source: str
    version: str | None
    size: int | None
    status: str
    error_type: str | None
    message: str | None
    chunk_ids: list[str]
    fingerprint: str | None
    updated_at: str
    # What its ingests' model calls cost, summed (as IngestResult.usage); filled by
    # Ledger.session_rows.
    usage: dict[str, int] = field(default_factory=dict)


# The columns _ledger_row reads, in its order.
_SELECT_ROW = (
    "SELECT session_id, source, version, size, status, error_type, message, "
    "chunk_ids, fingerprint, updated_at FROM sources"
)


def _model_use_by(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """``(owner, name, amount)`` rows of the ledger's model_use as each owner's (a
    session's, a source's) amounts by name."""
    grouped: dict[str, dict[str, int]] = {}
    for owner, name, amount in rows:
        grouped.setdefault(owner, {})[name] = int(amount)
    return grouped


def _ledger_row(row: tuple[Any, ...]) -> LedgerRow:
    return LedgerRow(
        session_id=row[0],
        source=row[1],
        version=row[2],
        size=row[3],
        status=row[4],
        error_type=row[5],
        message=row[6],
        chunk_ids=json.loads(row[7]),
        fingerprint=row[8],
        updated_at=row[9],
    )


_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, which typeshed lacks


def check_room(directory: Path, min_free_mb: int) -> None:
    """Raise :class:`StoreError` while ``directory``'s disk has under ``min_free_mb`` free.

    Checked before each store write: filled to the last byte, Chroma failed writes with
    "database or disk is full" and then stopped answering (every later call timed out
    after ``store.timeout``, four attempts each), and the ledger could not record.
    """
    if min_free_mb <= 0:
        return
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return  # not created yet: the write will say what is wrong
    if free < min_free_mb * 2**20:
        raise StoreError(
            f"the store's disk is nearly full: {directory} has {free_space(directory)}, "
            f"under store.min_free_mb={min_free_mb}; free some space, and the next run "
            "ingests what this one could not"
        )


class Ledger:
    """One row per (session, source): its version, outcome and chunk IDs (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Processes sharing this file (one persist_dir, a Chroma server) wait for each
            # other's writes rather than fail at Python's default 5 s.
            self._db = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS sources (
                    session_id TEXT NOT NULL, source TEXT NOT NULL, version TEXT, size INTEGER,
                    status TEXT NOT NULL, error_type TEXT, message TEXT,
                    chunk_ids TEXT NOT NULL, fingerprint TEXT, updated_at TEXT NOT NULL,
                    PRIMARY KEY (session_id, source))"""
            )
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, OSError) or re.search(r"unable to open|readonly", str(exc)):
                raise unwritable(path.parent.resolve(), exc) from exc
            raise
        # IDs written to the store whose ledger row is not final yet: after a crash they
        # are the only record of chunks that a later version must delete.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS pending (
                session_id TEXT NOT NULL, source TEXT NOT NULL, chunk_ids TEXT NOT NULL,
                PRIMARY KEY (session_id, source))"""
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS sources_by_version ON sources (version)")
        # Vectors a failed embedding had already paid for (the batches before the one
        # that failed past its retries), by text hash: the next attempt starts there.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS kept_vectors (
                session_id TEXT NOT NULL, source TEXT NOT NULL, content_hash TEXT NOT NULL,
                vector BLOB NOT NULL, PRIMARY KEY (session_id, source, content_hash))"""
        )
        # Summaries and image descriptions, by what was asked of which model (see
        # models.answer_key), each kept with the sources that use it: any session's
        # serves the same question, and a source's go with it.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS answers (
                session_id TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL,
                answer TEXT NOT NULL, PRIMARY KEY (session_id, source, key))"""
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_by_key ON answers (key)")
        # What each source's ingests have cost, summed over them (IngestResult.usage: a
        # count by name): a session's model calls and tokens, for what it holds.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS model_use (
                session_id TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
                amount INTEGER NOT NULL, PRIMARY KEY (session_id, source, name))"""
        )
        # When each session last wrote a row of the tables above: a session can hold
        # pending IDs, kept vectors or answers, or model use before any source row (its
        # first documents stopped or cut off), and is listed, and expires, all the same.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS activity (
                session_id TEXT PRIMARY KEY, updated_at TEXT NOT NULL)"""
        )
        # When each session was last searched: retention (expire_sessions) keeps a session
        # in use though nothing was ingested into it for a while.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queried (session_id TEXT PRIMARY KEY, at TEXT NOT NULL)"
        )
        # Which process is ingesting a source of a session now, for processes sharing this
        # ledger (see claim): not a session's data, so no session lists or deletes it.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS claims (
                session_id TEXT NOT NULL, source TEXT NOT NULL, owner TEXT NOT NULL,
                expires_at REAL NOT NULL, reserved INTEGER NOT NULL DEFAULT 0,
                chunks INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (session_id, source))"""
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for every write inside (a nested call joins the outer one). A write
        SQLite refuses (a full disk, a read-only file) is a :class:`StoreError`."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            try:
                # IMMEDIATE: the write lock at once. A deferred transaction that read
                # first and then wrote failed at once ("database is locked") when another
                # process sharing the file wrote meanwhile, the busy timeout unused.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._refused(exc) from exc

    def _refused(self, exc: sqlite3.Error) -> StoreError:
        """Raw, a full disk failed each document with "OperationalError: database or disk
        is full" and a logged traceback, naming neither the file nor the remedy."""
        advice = ""
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            advice = ": free some space, or set store.persist_dir to a disk with room"
        free = free_space(self.path.parent)
        return StoreError(f"the ledger {self.path} ({free}) refused a write: {exc}{advice}")

    def _touch(self, session_id: str) -> None:
        """Note the session's activity now (inside a transaction)."""
        self._db.execute(
            "INSERT INTO activity VALUES (?, ?) ON CONFLICT (session_id) "
            "DO UPDATE SET updated_at = excluded.updated_at",
            (session_id, datetime.now(UTC).isoformat()),
        )

    def get(self, session_id: str, source: str) -> LedgerRow | None:
        with self._lock:
            row = self._db.execute(
                f"{_SELECT_ROW} WHERE session_id = ? AND source = ?",
                (session_id, source),
            ).fetchone()
        return None if row is None else _ledger_row(row)

    def row_unless_session_held(self, session_id: str, source: str, owner: str) -> LedgerRow | None:
        """The source's row, read without claiming it (see :meth:`claim`); None while
        another process holds the session whole (deleting or verifying it), as an ingest
        would wait for it to finish."""
        with self._lock:  # re-entered by get()
            held = self._db.execute(
                "SELECT owner, expires_at FROM claims WHERE session_id = ? AND source = ?",
                (session_id, SESSION_CLAIM),
            ).fetchall()
            now = time.time()
            if any(h != owner and _holds(h, expires_at, now) for h, expires_at in held):
                return None
            return self.get(session_id, source)

    def pending(self, session_id: str, source: str) -> set[str]:
        """Chunk IDs written by an attempt that never reached its final ledger row."""
        with self._lock:
            row = self._db.execute(
                "SELECT chunk_ids FROM pending WHERE session_id = ? AND source = ?",
                (session_id, source),
            ).fetchone()
        return set(json.loads(row[0])) if row else set()

    def twin(self, session_id: str, source: str, version: str) -> list[str]:
        """The chunk IDs of another source ingested at ``version``: the same object in
        another session, or (a version that is a content hash or an MD5 ETag) the same
        bytes under another name. Their vectors may serve this one's chunks."""
        with self._lock:
            row = self._db.execute(
                "SELECT chunk_ids FROM sources WHERE version = ? AND status = 'ingested' "
                "AND chunk_ids != '[]' AND NOT (session_id = ? AND source = ?) LIMIT 1",
                (version, session_id, source),
            ).fetchone()
        return json.loads(row[0]) if row else []

    def keep_vectors(
        self, session_id: str, source: str, hashes: list[str], vectors: Vectors
    ) -> None:
        """Keep a source's chunks' vectors for its next attempt: ``vectors`` are those
        of the first of ``hashes`` (the batches done before one failed)."""
        import numpy as np

        rows = np.asarray(vectors, dtype=np.float32)
        done = hashes[: len(rows)]
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO kept_vectors VALUES (?, ?, ?, ?)",
                [(session_id, source, h, r.tobytes()) for h, r in zip(done, rows, strict=True)],
            )
            self._touch(session_id)

    def kept_vectors(self, session_id: str, source: str) -> dict[str, Vectors]:
        """What :meth:`keep_vectors` kept for this source, by text hash."""
        import numpy as np

        with self._lock:
            rows = self._db.execute(
                "SELECT content_hash, vector FROM kept_vectors WHERE session_id = ? AND source = ?",
                (session_id, source),
            ).fetchall()
        return {h: np.frombuffer(blob, dtype=np.float32) for h, blob in rows}

    def answer(self, key: str, session_id: str, source: str) -> tuple[str, bool] | None:
        """A model answer kept under ``key``, and whether it is this source's own (taken
        first) rather than another's; None when none is kept."""
        with self._lock:
            row = self._db.execute(
                "SELECT answer, session_id = ? AND source = ? AS own FROM answers "
                "WHERE key = ? ORDER BY own DESC LIMIT 1",
                (session_id, source, key),
            ).fetchone()
        return None if row is None else (str(row[0]), bool(row[1]))

    def keep_answer(self, session_id: str, source: str, key: str, answer: str) -> None:
        """Keep a model answer with the source that used it (at once: an answer paid
        for outlives a failure later in the document)."""
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                (session_id, source, key, answer),
            )
            self._touch(session_id)

    def add_pending(self, session_id: str, source: str, chunk_ids: list[str]) -> None:
        """Note IDs about to be written to the store (before the write)."""
        with self.transaction():
            merged = sorted(self.pending(session_id, source) | set(chunk_ids))
            self._db.execute(
                "INSERT INTO pending VALUES (?, ?, ?) ON CONFLICT (session_id, source) "
                "DO UPDATE SET chunk_ids = excluded.chunk_ids",
                (session_id, source, json.dumps(merged)),
            )
            self._touch(session_id)

    def record(
        self,
        *,
        session_id: str,
        source: str,
        version: str | None,
        size: int | None,
        status: str,
        chunk_ids: list[str],
        fingerprint: str | None,
        error_type: str | None = None,
        message: str | None = None,
        answers: Collection[str] = (),
        model_use: Mapping[str, int] | None = None,
    ) -> None:
        """A source's outcome, and what its model calls cost (``model_use``, added to
        what its earlier ingests did). Once ingested, its kept vectors and pending IDs
        are dropped, and so are its kept answers but ``answers`` (the keys this ingest
        used)."""
        now = datetime.now(UTC).isoformat()
        with self.transaction():
            self.add_model_use(session_id=session_id, source=source, model_use=model_use)
            # What its claim held of the session's quota is in its row now (see reserve).
            self._db.execute(
                "UPDATE claims SET reserved = 0 WHERE session_id = ? AND source = ?",
                (session_id, source),
            )
            if status == "ingested":
                for table in ("pending", "kept_vectors"):
                    self._db.execute(
                        f"DELETE FROM {table} WHERE session_id = ? AND source = ?",
                        (session_id, source),
                    )
                self._db.execute(
                    "DELETE FROM answers WHERE session_id = ? AND source = ? "
                    "AND key NOT IN (SELECT value FROM json_each(?))",
                    (session_id, source, json.dumps(list(answers))),
                )
            self._db.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id, source) DO UPDATE SET version = excluded.version, "
                "size = excluded.size, status = excluded.status, "
                "error_type = excluded.error_type, message = excluded.message, "
                "chunk_ids = excluded.chunk_ids, fingerprint = excluded.fingerprint, "
                "updated_at = excluded.updated_at",
                (
                    session_id,
                    source,
                    version,
                    size,
                    status,
                    error_type,
                    message,
                    json.dumps(chunk_ids),
                    fingerprint,
                    now,
                ),
            )

    def add_model_use(
        self, *, session_id: str, source: str, model_use: Mapping[str, int] | None
    ) -> None:
        """Add to what a source's model calls cost, its row left as it is (a document
        stopped midway has none to write)."""
        used = [(session_id, source, k, int(v)) for k, v in (model_use or {}).items() if v]
        if not used:
            return
        with self.transaction():
            self._db.executemany(
                "INSERT INTO model_use VALUES (?, ?, ?, ?) ON CONFLICT "
                "(session_id, source, name) DO UPDATE SET amount = amount + excluded.amount",
                used,
            )
            self._touch(session_id)

    def record_failure_keeping_chunks(
        self,
        *,
        session_id: str,
        source: str,
        error_type: str,
        message: str,
        model_use: Mapping[str, int] | None = None,
    ) -> None:
        """A failed re-ingest: note the error, keep the previous version's chunk IDs."""
        previous = self.get(session_id, source)
        self.record(
            session_id=session_id,
            source=source,
            version=previous.version if previous else None,
            size=previous.size if previous else None,
            status="failed",
            chunk_ids=previous.chunk_ids if previous else [],
            fingerprint=None,  # never "unchanged": the next run tries again
            error_type=error_type,
            message=message,
            model_use=model_use,
        )

    def usage(self, session_id: str, besides: str) -> tuple[int, int, int]:
        """The documents (sources with chunks), chunks and bytes (the documents' sizes) a
        session holds, ``besides``'s own left out (a new version replaces them)."""
        with self._lock:
            documents, chunks, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_array_length(chunk_ids)), 0), "
                "COALESCE(SUM(size), 0) FROM sources "
                "WHERE session_id = ? AND source != ? AND json_array_length(chunk_ids) > 0",
                (session_id, besides),
            ).fetchone()
        return int(documents), int(chunks), int(size)

    def recorded_chunks(self) -> int:
        """Chunk IDs its rows record, all sessions: what the store should hold."""
        with self._lock:
            (total,) = self._db.execute(
                "SELECT COALESCE(SUM(json_array_length(chunk_ids)), 0) FROM sources"
            ).fetchone()
        return int(total)

    def sessions(self) -> list[SessionInfo]:
        """Every session the ledger holds anything of, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id, COUNT(*), COALESCE(SUM(json_array_length(chunk_ids)), 0), "
                "SUM(status = 'failed'), MAX(updated_at) FROM sources GROUP BY session_id"
            ).fetchall()
            pending = dict(
                self._db.execute(
                    "SELECT session_id, SUM(json_array_length(chunk_ids)) FROM pending "
                    "GROUP BY session_id"
                ).fetchall()
            )
            others = self._db.execute(
                "SELECT session_id FROM kept_vectors UNION SELECT session_id FROM answers "
                "UNION SELECT session_id FROM model_use"
            ).fetchall()
            active = dict(self._db.execute("SELECT session_id, updated_at FROM activity"))
            queried = dict(self._db.execute("SELECT session_id, at FROM queried"))
            used = _model_use_by(
                self._db.execute(
                    "SELECT session_id, name, SUM(amount) FROM model_use GROUP BY session_id, name"
                )
            )
        # A session with no source row in a ledger older than the activity table: when
        # it last wrote is not known, so it is as old as can be (expire_sessions takes it).
        unknown = datetime.fromtimestamp(0, UTC).isoformat()
        held: dict[str, tuple[int, int, int, str]] = {row[0]: row[1:] for row in rows}
        for session in [*(s for (s,) in others), *pending]:
            held.setdefault(session, (0, 0, 0, unknown))
        listed = []
        for session in sorted(held):
            sources, chunks, failed, last = held[session]
            last = max(last, active.get(session, last), key=datetime.fromisoformat)
            listed.append(
                SessionInfo(
                    session,
                    sources,
                    chunks,
                    failed,
                    datetime.fromisoformat(last),
                    used.get(session, {}),
                    pending.get(session, 0),
                    datetime.fromisoformat(queried[session]) if session in queried else None,
                )
            )
        return listed

    def model_use(self, session_id: str, source: str | None = None) -> dict[str, int]:
        """What a session's model calls cost (see ``IngestResult.usage``), summed over
        the ingests of each source it holds; of one ``source`` only when given."""
        where, params = "session_id = ?", [session_id]
        if source is not None:
            where, params = where + " AND source = ?", [session_id, source]
        with self._lock:
            rows = self._db.execute(
                f"SELECT name, SUM(amount) FROM model_use WHERE {where} GROUP BY name", params
            ).fetchall()
        return {name: int(amount) for name, amount in rows}

    def session_rows(self, session_id: str) -> list[LedgerRow]:
        """Each source of a session, with what its model calls cost."""
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT_ROW} WHERE session_id = ?",
                (session_id,),
            ).fetchall()
            used = _model_use_by(
                self._db.execute(
                    "SELECT source, name, amount FROM model_use WHERE session_id = ?",
                    (session_id,),
                )
            )
        listed = [_ledger_row(r) for r in rows]
        for row in listed:
            row.usage = used.get(row.source, {})
        return listed

    def session_pending(self, session_id: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT chunk_ids FROM pending WHERE session_id = ?", (session_id,)
            ).fetchall()
        return [i for (ids,) in rows for i in json.loads(ids)]

    def delete_source(self, session_id: str, source: str) -> None:
        """Forget one source of a session: its row, pending IDs, kept vectors, answers and
        what it cost."""
        with self.transaction():
            for table in ("pending", "kept_vectors", "answers", "model_use", "sources"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE session_id = ? AND source = ?",
                    (session_id, source),
                )

    def note_query(self, session_id: str) -> None:
        """Note that the session was searched now, if the ledger holds anything of it (a
        search of a session never ingested into leaves nothing behind)."""
        now = datetime.now(UTC).isoformat()
        with self.transaction():
            self._db.execute(
                "INSERT INTO queried SELECT ?, ? WHERE EXISTS "
                "(SELECT 1 FROM activity WHERE session_id = ?) OR EXISTS "
                "(SELECT 1 FROM sources WHERE session_id = ?) "
                "ON CONFLICT (session_id) DO UPDATE SET at = excluded.at",
                (session_id, now, session_id, session_id),
            )

    def delete_session(self, session_id: str) -> int:
        with self.transaction():
            tables = ("pending", "kept_vectors", "answers", "model_use", "activity", "queried")
            for table in tables:
                self._db.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
            cursor = self._db.execute("DELETE FROM sources WHERE session_id = ?", (session_id,))
        return cursor.rowcount

    def claim(self, session_id: str, source: str, owner: str, ttl: float = CLAIM_TTL) -> str | None:
        """Take a source of a session (:data:`SESSION_CLAIM`: the whole session) for
        ``owner`` for ``ttl`` seconds: None, or the owner that holds it or its session.
        Processes sharing this ledger ingest a source one at a time, and none while
        another deletes or verifies its session. A claim not renewed in time, or whose
        process on this host is gone, is taken over (``owner``'s own is renewed)."""
        now = time.time()
        with self.transaction():
            held = self._db.execute(
                "SELECT owner, expires_at FROM claims WHERE session_id = ? AND source IN (?, ?)",
                (session_id, source, SESSION_CLAIM),
            ).fetchall()
            for holder, expires_at in held:
                if holder != owner and _holds(holder, expires_at, now):
                    return str(holder)
            self._db.execute(
                "INSERT OR REPLACE INTO claims (session_id, source, owner, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, source, owner, now + ttl),
            )
        return None

    def reserve(
        self,
        session_id: str,
        source: str,
        owner: str,
        check: Callable[[int, int, int], None],
        chunks: int | None,
        size: int,
    ) -> None:
        """A session's quota, across the processes sharing this ledger: ``check`` is
        given the documents, chunks and bytes the session holds (``source``'s own aside)
        plus those every process holds for its documents in flight, and raises to refuse;
        then, with ``chunks`` given, ``owner``'s claim on ``source`` holds them, until
        :meth:`record` writes its row or the claim is released. One transaction: two
        processes cannot both take a session's last room."""
        with self.transaction():
            documents, stored, stored_bytes = self.usage(session_id, source)
            now = time.time()
            for holder, expires_at, held_chunks, held_bytes in self._db.execute(
                "SELECT owner, expires_at, chunks, bytes FROM claims WHERE session_id = ? "
                "AND source NOT IN (?, ?) AND reserved = 1",
                (session_id, source, SESSION_CLAIM),
            ).fetchall():
                if _holds(holder, expires_at, now):
                    documents, stored = documents + 1, stored + held_chunks
                    stored_bytes += held_bytes
            check(documents, stored, stored_bytes)
            if chunks is not None:
                self._db.execute(
                    "UPDATE claims SET reserved = 1, chunks = ?, bytes = ? "
                    "WHERE session_id = ? AND source = ? AND owner = ?",
                    (chunks, size, session_id, source, owner),
                )

    def claimants(self, session_id: str, owner: str) -> list[str]:
        """The owners of the live claims on the session's sources, ``owner`` aside: the
        other processes with a document of it in hand."""
        with self._lock:
            rows = self._db.execute(
                "SELECT owner, expires_at FROM claims WHERE session_id = ? AND source != ? "
                "AND owner != ?",
                (session_id, SESSION_CLAIM, owner),
            ).fetchall()
        now = time.time()
        return sorted(
            {str(holder) for holder, expires_at in rows if _holds(holder, expires_at, now)}
        )

    def renew_claim(self, session_id: str, source: str, owner: str, ttl: float = CLAIM_TTL) -> bool:
        """Extend ``owner``'s claim by ``ttl`` from now; False if it is no longer its."""
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE claims SET expires_at = ? "
                "WHERE session_id = ? AND source = ? AND owner = ?",
                (time.time() + ttl, session_id, source, owner),
            )
        return cursor.rowcount == 1

    def release_claim(self, session_id: str, source: str, owner: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM claims WHERE session_id = ? AND source = ? AND owner = ?",
                (session_id, source, owner),
            )

    def drop_dead_claims(self, ttl: float = CLAIM_TTL) -> int:
        """Delete the claims that hold nothing and will not again: of a process on this
        host that is gone, or not renewed for ``ttl`` past their expiry (a process
        killed while it held them). Their rows were never read as claims, but a backend
        whose workers are killed now and then kept each. Returns how many."""
        now = time.time()
        with self.transaction():
            rows = self._db.execute("SELECT rowid, owner, expires_at FROM claims").fetchall()
            dead = [
                (rowid,)
                for rowid, owner, expires_at in rows
                if expires_at < now - ttl or not _claimant_alive(owner)
            ]
            self._db.executemany("DELETE FROM claims WHERE rowid = ?", dead)
        return len(dead)

    def close(self) -> None:
        with self._lock:
            self._db.close()
