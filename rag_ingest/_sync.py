"""Sync twins of async code, for scripts and for Jupyter (where a loop already runs).

Coroutines run on a private event loop in a daemon thread, so a sync call works
whether or not the calling thread already runs a loop, without nest_asyncio, and
async resources (connection pools) stay bound to one loop across calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["LoopThread", "next_item"]

T = TypeVar("T")


async def next_item(iterator: AsyncIterator[T]) -> tuple[bool, T | None]:
    """``(True, item)``, or ``(False, None)`` at the end: one step that can cross loops."""
    try:
        return True, await iterator.__anext__()
    except StopAsyncIteration:
        return False, None


async def _shutdown() -> None:
    """What ``asyncio.run`` does before it closes its loop: cancel the tasks still
    running and let them unwind, finish async generators, then one more turn so that
    transports closed on the way call ``connection_lost`` and release their sockets."""
    me = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
    await asyncio.sleep(0)


class LoopThread:
    """An event loop running forever on its own thread until :meth:`close`."""

    def __init__(self, name: str = "rag-ingest-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for it; Ctrl-C cancels it."""
        if self._closed:
            coro.close()
            raise RuntimeError("this sync facade is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a sync twin was called from its own loop thread; use the async API")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from sync code, one item at a time."""
        iterator = agen.__aiter__()
        try:
            while True:
                ok, item = self.run(next_item(iterator))
                if not ok:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None and not self._closed:
                self.run(close())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A loop stopped with work pending leaves it pending for good: a download still
        # unwinding from a cancel would keep its connection open until garbage collection.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
