"""An S3 client that runs on its own event-loop thread, awaited from the caller's loop.

Measured in the ingest benchmark: most of the caller's loop stalls over 10 ms sat
inside the transfer itself: a ``send`` that wakes a local server (which then
takes the core), page-cache writes, temp-file creation, hashing. On a private
loop those stall only the transfer thread, while the caller's loop (a web
server's) keeps serving. Each call crosses threads once; progress callbacks are
marshalled back to the caller's loop, at most one per ``progress_interval``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from rag_ingest._sync import LoopThread, next_item
from rag_ingest.progress import ProgressCallback
from rag_ingest.s3.client import AsyncS3Client
from rag_ingest.s3.objects import DownloadResult, ObjectInfo
from rag_ingest.s3.uri import Target
from rag_ingest.settings import Settings

__all__ = ["OffLoopS3Client"]

T = TypeVar("T")


class OffLoopS3Client:
    """The part of :class:`AsyncS3Client` the pipeline uses, run on a private loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        progress_interval: float = 0.1,
        renew_url: Callable[[str], str] | None = None,
    ) -> None:
        self._thread = LoopThread(name="rag-ingest-s3")
        self._progress_interval = progress_interval

        async def make() -> AsyncS3Client:
            return AsyncS3Client(settings, renew_url=renew_url)

        self.client: AsyncS3Client = self._thread.run(make())
        self.settings = settings

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop; a cancelled caller cancels it and waits for it.

        Waiting matters: the transfer removes its temp file as it unwinds, and a
        caller that was cancelled must not see the file outlive it.
        """
        caller, remote = asyncio.get_running_loop(), self._thread.loop
        ended: asyncio.Future[asyncio.Task[T]] = caller.create_future()
        started: list[asyncio.Task[T]] = []

        def settle(task: asyncio.Task[T]) -> None:  # on the caller's loop
            if not ended.done():
                ended.set_result(task)

        def start() -> None:  # on the private loop
            task = remote.create_task(coro)
            started.append(task)
            task.add_done_callback(
                lambda t: caller.is_closed() or caller.call_soon_threadsafe(settle, t)
            )

        remote.call_soon_threadsafe(start)
        try:
            task = await asyncio.shield(ended)
        except asyncio.CancelledError:
            # FIFO: start() has run by the time this does.
            remote.call_soon_threadsafe(lambda: started[0].cancel())
            await ended
            raise
        return task.result()

    def parse(self, address: str | Target) -> Target:
        return self.client.parse(address)

    async def head(self, address: str | Target) -> ObjectInfo:
        return await self._call(self.client.head(address))

    async def download_to_temp(
        self,
        address: str | Target,
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
        max_size: int | None = None,
    ) -> DownloadResult:
        relay = None
        if progress is not None:
            relay = _Relay(progress, asyncio.get_running_loop(), self._progress_interval)
        result = await self._call(
            self.client.download_to_temp(
                address, progress=relay, show_progress=show_progress, max_size=max_size
            )
        )
        if relay is not None:
            relay.flush()
        return result

    async def list(self, address: str, **kwargs: Any) -> AsyncIterator[ObjectInfo]:
        iterator = self.client.list(address, **kwargs).__aiter__()
        try:
            while True:
                ok, item = await self._call(next_item(iterator))
                if not ok:
                    return
                assert item is not None
                yield item
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await self._call(close())

    async def aclose(self) -> None:
        try:
            await self._call(self.client.aclose())
        finally:
            await asyncio.to_thread(self._thread.close)


class _Relay:
    """Calls ``callback(done, total)`` on ``loop``: the latest value, at most every ``interval``."""

    def __init__(
        self, callback: ProgressCallback, loop: asyncio.AbstractEventLoop, interval: float
    ) -> None:
        self._callback = callback
        self._loop = loop
        self._interval = interval
        self._last = 0.0
        self._latest: tuple[int, int | None] | None = None
        self._sent: tuple[int, int | None] | None = None

    def __call__(self, done: int, total: int | None) -> None:  # on the transfer thread
        self._latest = (done, total)
        now = time.monotonic()
        if now - self._last >= self._interval or (total is not None and done >= total):
            self._last, self._sent = now, (done, total)
            self._loop.call_soon_threadsafe(self._callback, done, total)

    def flush(self) -> None:  # on the caller's loop, after the transfer
        if self._latest is not None and self._latest != self._sent:
            self._callback(*self._latest)
