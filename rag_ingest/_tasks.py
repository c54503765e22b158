"""asyncio plumbing shared by the tiers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["finish_though_cancelled", "gather_or_cancel"]

T = TypeVar("T")


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """Every result in order; the first failure (or our cancellation) cancels the rest,
    waits for them to unwind, and raises: none is left running behind the caller."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def finish_though_cancelled(aw: Awaitable[T]) -> T:
    """``aw``'s result, run to its end even if we are cancelled meanwhile (a write that
    must land, or be over, before the caller goes on): then waited for, and the
    cancellation raised after. A KeyboardInterrupt or SystemExit it raises reaches the
    caller: raised in a task, asyncio would let it out of the event loop instead."""

    async def carried() -> T | BaseException:
        try:
            return await aw
        except (KeyboardInterrupt, SystemExit) as exc:
            return exc

    task = asyncio.ensure_future(carried())
    try:
        done = await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.gather(task, return_exceptions=True)
        raise
    if isinstance(done, BaseException):
        raise done
    return done
