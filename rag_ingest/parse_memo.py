"""Identical files parsed once: a document whose bytes, name and caller metadata are
those of one this processor parsed shortly before takes that parse and its chunks.

A localized documentation tree holds each screenshot once per language, and a bucket
its copies under other keys: each was parsed again, and a picture read by OCR again
(the packages of the Debian handbook, live manual and Ubuntu packaging guide, 5,165
files: 1,083 of their 1,462 images were copies). The chunks are the same text, so
their vectors were already reused (``models.reuse_vectors``); now the parse is too.

Only a version that is the content's own identity is a key: a content hash, or an S3
ETag with its size (an ETag from a web server may be a counter or a date). Archives and
mailboxes are parsed each time: their parse reads and writes a cache of their files
kept per source (``parse.archive_cache``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag_ingest.errors import (
    DocumentError,
    ParserCrashedError,
    ParserMemoryError,
    ParserTimeoutError,
)

if TYPE_CHECKING:
    from rag_ingest.chunking import ChunkPlan
    from rag_ingest.parsers.base import ParsedDocument

# No value a chunk's metadata holds (None may be one).
_NONE = object()
# Parsed each time: their parse keeps a cache of their files per source.
_OWN_CACHE = frozenset({"archive", "mbox"})
# What an entry costs beside its pickle's and key's lengths (their objects, the dict's
# node), so a memo of many small parses keeps to its bound too: 2,000 pickles of 1.6 KB
# and their keys held 3.49 MB (tracemalloc), where only the pickles' 3.18 MB was counted.
_ENTRY = 200
# Failures that may not come again (a busy machine, a worker lost): not kept.
_TRANSIENT = (ParserTimeoutError, ParserCrashedError, ParserMemoryError)


@dataclass(frozen=True)
class Hit:
    """A parse taken from the memo: fresh copies, with this source's metadata."""

    parsed: ParsedDocument
    plan: ChunkPlan
    first: str  # the source it was parsed for


class ParseMemo:
    """The last parses of one processor, pickled (each use gets its own copy), at most
    ``max_bytes`` of them and ``max_entry`` bytes each."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entry: int = 4 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    @staticmethod
    def key(
        version: str | None, s3_etag: str | None, size: int, name: str, extra: dict[str, Any]
    ) -> str | None:
        """The memo's key for a document: its ``version`` when that is a content hash,
        else its ``s3_etag`` (an S3 object's); None when neither names its content."""
        content = version if version and version.startswith("sha256:") else s3_etag
        if not content:
            return None
        metadata = json.dumps(extra, sort_keys=True, default=repr)
        return json.dumps([content, size, name, metadata])

    @contextlib.asynccontextmanager
    async def turn(self, key: str | None) -> AsyncIterator[None]:
        """Held while a document with ``key`` is parsed or taken from the memo: a copy
        waits for the first's parse instead of parsing beside it."""
        if key is None:
            yield
            return
        lock, users = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[key]
            if users == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, users - 1)

    def get(self, key: str | None, base: dict[str, Any]) -> Hit | None:
        """The parse kept for ``key``, its chunks' metadata this source's ``base``; a
        failure kept is raised again."""
        data = self._entries.get(key) if key is not None else None
        if data is None:
            return None
        self._entries.move_to_end(key)  # type: ignore[arg-type]  # not None: found
        kept = pickle.loads(data)
        if isinstance(kept, BaseException):
            raise kept
        parsed, plan, first, first_base = kept
        # The chunker wrote each chunk's metadata over the first source's base: where a
        # chunk holds that base's value (or none), this source's base takes its place.
        for chunk in plan.chunks:
            metadata = chunk.metadata
            for name, value in base.items():
                if name not in metadata or metadata[name] == first_base.get(name, _NONE):
                    metadata[name] = value
            for name in first_base.keys() - base.keys():
                if metadata.get(name, _NONE) == first_base[name]:
                    del metadata[name]
        return Hit(parsed, plan, first)

    def put(
        self,
        key: str | None,
        source: str,
        parsed: ParsedDocument,
        plan: ChunkPlan,
        base: dict[str, Any],
    ) -> None:
        """Keep a parse (not an archive's or a mailbox's) for the next copy; ``base``: the
        metadata it was chunked under (``DocumentProcessor._base_metadata``)."""
        if key is None or parsed.file_type in _OWN_CACHE:
            return
        # Told from its text and pictures before it is pickled (on the event loop): a
        # long document is never pickled only to be found too large.
        held = sum(len(s.text) for s in parsed.segments) + sum(len(c.text) for c in plan.chunks)
        held += sum(len(i.data) for i in parsed.images) + sum(len(p) for p in parsed.pictures)
        if held <= self.max_entry:
            self._keep(key, (parsed, plan, source, base))

    def put_failure(self, key: str | None, exc: DocumentError) -> None:
        """Keep a document's failure (not one that may not come again) for its copies."""
        if key is not None and not isinstance(exc, _TRANSIENT):
            self._keep(key, exc)

    def _keep(self, key: str, value: Any) -> None:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a caller's parser's unpicklable result: parsed each time
            return
        if len(data) > self.max_entry:
            return
        if (old := self._entries.pop(key, None)) is not None:
            self._size -= _cost(key, old)
        self._size += _cost(key, data)
        self._entries[key] = data
        while self._size > self.max_bytes:
            self._size -= _cost(*self._entries.popitem(last=False))


def _cost(key: str, data: bytes) -> int:
    return len(key) + len(data) + _ENTRY
