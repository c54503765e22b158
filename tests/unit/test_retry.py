from __future__ import annotations

import pytest

from rag_ingest.errors import S3Error, S3NotFoundError, S3RateLimitError, S3TimeoutError
from rag_ingest.s3.retry import RetryPolicy, RetryStats, is_retryable
from rag_ingest.settings import RetrySettings


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(RetrySettings(base_delay=0.1, max_delay=1.0))
    for attempt in range(1, 8):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # really jittered across the range


def test_retry_after_is_honoured_within_the_cap() -> None:
    policy = RetryPolicy(RetrySettings(base_delay=0.0, max_delay=2.0))
    assert policy.backoff(1, retry_after=1.5) == 1.5
    assert policy.backoff(1, retry_after=60) == 2.0


def test_classification() -> None:
    assert is_retryable(S3RateLimitError("x"))
    assert is_retryable(S3TimeoutError("x"))
    assert is_retryable(S3Error("x", retryable=True))
    assert not is_retryable(S3Error("x"))
    assert not is_retryable(S3NotFoundError("x"))
    assert not is_retryable(ValueError("x"))


async def test_attempt_cap_then_last_error() -> None:
    policy = RetryPolicy(RetrySettings(base_delay=0, max_attempts=3))
    stats = RetryStats()
    calls = 0

    async def always_throttled() -> None:
        nonlocal calls
        calls += 1
        raise S3RateLimitError(f"throttled {calls}")

    with pytest.raises(S3RateLimitError, match="throttled 3"):
        await policy.run(always_throttled, stats=stats)
    assert calls == 3 and stats.attempts == 3 and stats.retries == 2


async def test_not_retried_errors_fail_at_once() -> None:
    policy = RetryPolicy(RetrySettings(base_delay=0, max_attempts=5))
    calls = 0

    async def missing() -> None:
        nonlocal calls
        calls += 1
        raise S3NotFoundError("gone")

    with pytest.raises(S3NotFoundError):
        await policy.run(missing)
    assert calls == 1


async def test_deadline_stops_before_sleeping_past_it() -> None:
    policy = RetryPolicy(RetrySettings(base_delay=0, max_delay=5, max_attempts=50, deadline=0.5))
    calls = 0

    async def slow_down() -> None:
        nonlocal calls
        calls += 1
        raise S3RateLimitError("slow down", retry_after=5)

    with pytest.raises(S3RateLimitError):
        await policy.run(slow_down)
    assert calls == 1  # the next sleep (5 s) would pass the 0.5 s deadline
