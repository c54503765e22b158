"""Progress reporting: plain callbacks and tqdm bars (``tqdm.auto``, so notebooks get widgets)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STAGES",
    "ByteProgress",
    "EventHub",
    "IngestEvent",
    "ProgressCallback",
    "Subscription",
    "call_logged",
    "tail",
]

logger = logging.getLogger("rag_ingest.progress")


def tail(text: str, width: int) -> str:
    """The end of ``text`` in ``width`` characters, "…" marking a cut (a source's end
    names it; a bare cut reads as another path, "g_ingest/docs/a.pdf")."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def call_logged(callback: Callable[[Any], object], value: Any, failures: int, what: str) -> int:
    """``callback(value)``, where a raise is the caller's bug, not the document's: it is
    counted and logged (the first time, with its traceback). Returns the failures."""
    try:
        callback(value)
    except Exception:
        failures += 1
        if failures == 1:
            logger.exception("%s raised; ingestion goes on", what)
    return failures


ProgressCallback = Callable[[int, "int | None"], None]
"""Called with ``(bytes_done, total_bytes_or_None)``."""


class ByteProgress:
    """Bytes done for one transfer, aggregated across parts and rewound on retry.

    Feeds an optional callback and an optional tqdm bar; silent when neither is on.
    """

    def __init__(
        self,
        *,
        callback: ProgressCallback | None = None,
        bar: bool = False,
        description: str = "",
        total: int | None = None,
    ) -> None:
        self.done = 0
        self.total = total
        self._callback = callback
        self._lock = threading.Lock()
        self._bar: Any = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=tail(description, 40),
                leave=False,
            )

    def set_total(self, total: int) -> None:
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()
        self._emit()

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
        self._emit()

    def rewind(self, n: int) -> None:
        """Take back ``n`` bytes that were discarded and will be fetched again."""
        if n:
            self.advance(-n)

    def _emit(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


STAGES = (
    "queued",
    "downloading",
    "parsing",
    "chunking",
    "describing images",
    "summarizing",
    "embedding",
    "storing",
    "done",  # message: "ingested" or "skipped"
    "failed",  # message: the error
)


@dataclass(frozen=True)
class IngestEvent:
    """One step of one document: ``stage`` is one of :data:`STAGES`."""

    source: str
    stage: str
    session_id: str = ""  # whose document: a backend streams each session its own
    bytes_done: int | None = None
    bytes_total: int | None = None
    message: str | None = None
    at: float = field(default_factory=time.time)


class Subscription:
    """``async for event in hub.subscribe():``; ``aclose()`` stops listening."""

    def __init__(self, hub: EventHub, queue: asyncio.Queue[IngestEvent | None]) -> None:
        self._hub = hub
        self._queue = queue

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> IngestEvent:
        event = await self._queue.get()
        if event is None:
            self._hub._unsubscribe(self._queue)
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._hub._unsubscribe(self._queue)


class EventHub:
    """Fans events out to callbacks, async subscribers (bounded) and a tqdm bar."""

    def __init__(self, *, bar: bool = False, subscriber_buffer: int = 10_000) -> None:
        self._callbacks: list[Callable[[IngestEvent], None]] = []
        self.callback_errors = 0  # exceptions raised by on_event callbacks (logged once)
        self._queues: list[tuple[asyncio.Queue[IngestEvent | None], str | None]] = []
        self._buffer = subscriber_buffer
        self._bar_wanted = bar
        self._bar: Any = None
        self.dropped = 0

    def add_callback(self, callback: Callable[[IngestEvent], None]) -> None:
        self._callbacks.append(callback)

    def subscribe(self, session_id: str | None = None) -> Subscription:
        """Events from now on, until :meth:`close` (registered at once, before any await),
        of one session's documents when ``session_id`` is given; a slow reader loses the
        oldest events past the buffer."""
        queue: asyncio.Queue[IngestEvent | None] = asyncio.Queue(self._buffer)
        self._queues.append((queue, session_id))
        return Subscription(self, queue)

    def _unsubscribe(self, queue: asyncio.Queue[IngestEvent | None]) -> None:
        self._queues = [entry for entry in self._queues if entry[0] is not queue]

    def start_bar(self, total: int | None, description: str = "documents") -> None:
        if self._bar_wanted and self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="doc", desc=description)

    def emit(self, event: IngestEvent) -> None:
        for callback in self._callbacks:
            self.callback_errors = call_logged(
                callback, event, self.callback_errors, "an on_event callback"
            )
        for queue, session in self._queues:
            if session is not None and session != event.session_id:
                continue
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)
        if self._bar is not None and event.stage in ("done", "failed"):
            self._bar.update(1)

    def close(self) -> None:
        for queue, _ in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
