"""A loader's kept parser pool: leased by loads with its settings, closed when idle."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from rag_ingest.parsers.base import ParseOptions
from rag_ingest.parsers.pool import KeptPool, ParserPool
from rag_ingest.settings import ParseSettings


def _parse(keep: float, **more: object) -> ParseSettings:
    return ParseSettings.model_validate({"mode": "thread", "keep_workers": keep, **more})


def test_a_pool_in_use_by_two_loads_waits_for_both() -> None:
    kept = KeptPool()
    settings, options = _parse(0.05), ParseOptions()
    pool, stale = kept.lease(settings, options, "cl100k_base")
    again, _ = kept.lease(settings, options, "cl100k_base")
    assert again is pool and stale is None
    kept.release(pool)
    time.sleep(0.5)  # far past keep_workers: the other load still holds it
    assert kept.pool is pool
    kept.release(again)
    deadline = time.monotonic() + 10
    while kept.pool is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert kept.pool is None


def test_a_lease_restarts_the_idle_wait() -> None:
    kept = KeptPool()
    settings, options = _parse(2.0), ParseOptions()
    pool, _ = kept.lease(settings, options, "cl100k_base")
    kept.release(pool)
    time.sleep(1.0)
    assert kept.lease(settings, options, "cl100k_base")[0] is pool
    kept.release(pool)
    time.sleep(1.5)  # 2.5 s after the first release, 1.5 s after the second
    assert kept.pool is pool
    kept.close()


def test_other_settings_replace_an_idle_pool_and_not_a_busy_one() -> None:
    kept = KeptPool()
    options = ParseOptions()
    pool, _ = kept.lease(_parse(30), options, "cl100k_base")
    # keep_workers itself is no reason for new workers.
    assert kept.lease(_parse(5), options, "cl100k_base")[0] is pool
    busy_other, stale = kept.lease(_parse(30, timeout=60), options, "cl100k_base")
    assert busy_other is not pool and stale is None and kept.pool is pool
    kept.release(busy_other)
    kept.release(pool)
    kept.release(pool)
    replacing, stale = kept.lease(_parse(30, timeout=60), options, "cl100k_base")
    assert stale is pool and kept.pool is replacing
    assert kept.lease(_parse(30), ParseOptions(max_images=4), "o200k_base")[0] is not replacing
    kept.close()
    assert kept.pool is None


def test_the_last_lease_says_how_long_the_pool_waits() -> None:
    kept = KeptPool()
    options = ParseOptions()
    pool, _ = kept.lease(_parse(30), options, "cl100k_base")
    kept.release(pool)
    assert kept.lease(_parse(0.05), options, "cl100k_base")[0] is pool
    kept.release(pool)
    deadline = time.monotonic() + 10
    while kept.pool is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert kept.pool is None


def test_threads_that_share_a_pool_start_its_workers_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two loads on two threads may share a kept pool: a second set of workers, started
    # beside the first, would never be closed.
    made: list[object] = []
    real = concurrent.futures.ThreadPoolExecutor

    class Slow(real):  # type: ignore[valid-type, misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            time.sleep(0.05)  # between the pool's check and its set
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Slow)
    pool = ParserPool(_parse(30), ParseOptions())
    barrier = threading.Barrier(8)
    got: list[object] = []

    def start() -> None:
        barrier.wait()
        got.append(pool._pool())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and {id(g) for g in got} == {id(made[0])}
    pool.close()
