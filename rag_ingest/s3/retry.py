"""The one retry policy for S3 calls, declared here and nowhere else.

Retried: 500, 502, 503, 504, 429, throttling codes (SlowDown, ...), RequestTimeout,
connection errors, resets, read timeouts and too-slow transfers. Never retried:
400, 403, 404, 412, an expired presigned URL. Backoff is exponential with full
jitter; ``Retry-After`` / ``x-amz-retry-after`` is honoured up to ``max_delay``.
Attempts and total time are both capped; giving up raises the last error.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from rag_ingest.errors import S3Error
from rag_ingest.settings import RetrySettings


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asks us to wait: ``x-amz-retry-after`` (ms), or ``Retry-After``
    in seconds or as an HTTP date; None when it does not say (or says it badly)."""
    amz = headers.get("x-amz-retry-after")
    if amz:
        with contextlib.suppress(ValueError):
            return max(0.0, int(amz) / 1000.0)  # milliseconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = http_date(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, (parsed - datetime.now(UTC)).total_seconds())


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header's value, or None when absent or unreadable."""
    if not value:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return email.utils.parsedate_to_datetime(value)
    return None


__all__ = [
    "RETRYABLE_STATUS",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "RetryPolicy",
    "RetryStats",
    "is_retryable",
]

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "InternalError"})


def is_retryable(exc: BaseException) -> bool:
    """Whether the policy may try ``exc`` again (only our own classified errors are)."""
    return isinstance(exc, S3Error) and exc.retryable


@dataclass
class RetryStats:
    """Attempts made, for reports: one per request sent, retries included."""

    attempts: int = 0
    retries: int = 0


class RetryPolicy:
    """Run an async callable under the declared policy."""

    def __init__(self, settings: RetrySettings | None = None) -> None:
        self.settings = settings or RetrySettings()

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"RetryPolicy(max_attempts={s.max_attempts}, base_delay={s.base_delay}, "
            f"max_delay={s.max_delay}, deadline={s.deadline})"
        )

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        s = self.settings
        ceiling = min(s.max_delay, s.base_delay * (2 ** (attempt - 1)))
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.max_delay))
        return delay

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return self.backoff(state.attempt_number, retry_after)

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        stats: RetryStats | None = None,
        on_retry: Callable[[BaseException, int], None] | None = None,
    ) -> T:
        """Call ``fn`` until it succeeds, fails for good, or the caps are reached."""

        def before_sleep(state: RetryCallState) -> None:
            if stats is not None:
                stats.retries += 1
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    on_retry(exc, state.attempt_number)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts)
            | stop_before_delay(self.settings.deadline),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=before_sleep,
        )
        async for attempt in retrying:
            with attempt:
                if stats is not None:
                    stats.attempts += 1
                return await fn()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
