"""The exceptions rag_ingest raises, all rooted at :class:`RagIngestError`.

::

    RagIngestError
    ├── ConfigurationError          bad settings or a bad argument
    ├── UnsafeSourceError           a URL we refuse to fetch (scheme, host, redirect)
    └── S3Error                     anything S3 answered or failed to answer
        ├── S3AuthError             no credentials, 401/403, bad signature
        │   └── S3PresignedExpiredError   a presigned URL past its expiry (never retried)
        ├── S3NotFoundError         NoSuchKey, NoSuchBucket, 404 (also a FileNotFoundError)
        ├── S3RateLimitError        throttled (429, SlowDown, ...) past the retry budget
        ├── S3TimeoutError          connect/read timeout, a stall or a too-slow transfer
        ├── S3IntegrityError        wrong size, checksum, Content-Range, or a 200 to a Range
        ├── S3ObjectChangedError    the object changed between parts (412 on If-Match)
        └── S3ObjectTooLargeError   the object exceeds the configured maximum size

Third-party errors (httpx, botocore) are translated at one boundary, the S3
client, with ``raise ... from exc``. Messages name the bucket and key and never
carry a credential, an Authorization header or a presigned signature.
"""

from __future__ import annotations

from rag_ingest._redact import redact

__all__ = [
    "ConfigurationError",
    "RagIngestError",
    "S3AuthError",
    "S3Error",
    "S3IntegrityError",
    "S3NotFoundError",
    "S3ObjectChangedError",
    "S3ObjectTooLargeError",
    "S3PresignedExpiredError",
    "S3RateLimitError",
    "S3TimeoutError",
    "UnsafeSourceError",
]


class RagIngestError(Exception):
    """Base of every error rag_ingest raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigurationError(RagIngestError, ValueError):
    """Settings or arguments that cannot work."""


class UnsafeSourceError(RagIngestError):
    """A source we refuse to fetch: bad scheme, private address, cross-host redirect."""


class S3Error(RagIngestError):
    """An S3 operation failed.

    ``retryable`` says whether the retry policy may try again; ``retry_after``
    is the server's hint in seconds (``Retry-After`` / ``x-amz-retry-after``).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable
        where = f"s3://{bucket}/{key}" if bucket else (key or "")
        details = ", ".join(
            part
            for part in (
                f"status {status}" if status is not None else "",
                f"code {code}" if code else "",
                f"request id {request_id}" if request_id else "",
            )
            if part
        )
        text = message
        if where:
            text = f"{text} [{where}]"
        if details:
            text = f"{text} ({details})"
        super().__init__(text)


class S3AuthError(S3Error):
    """No usable credentials, or the server refused them (401/403)."""


class S3PresignedExpiredError(S3AuthError):
    """A presigned URL is past its expiry. Never retried: ask for a fresh URL."""


class S3NotFoundError(S3Error, FileNotFoundError):
    """The bucket or the key does not exist."""


class S3RateLimitError(S3Error):
    """The server throttled us and kept doing so past the retry budget."""

    retryable = True


class S3TimeoutError(S3Error, TimeoutError):
    """A connect or read timeout, a stalled body, or a transfer below the minimum rate."""

    retryable = True


class S3IntegrityError(S3Error):
    """The bytes received are not the object: size, checksum or range mismatch."""


class S3ObjectChangedError(S3Error):
    """The object changed during the download (ETag mismatch, 412 on If-Match)."""


class S3ObjectTooLargeError(S3Error):
    """The object is larger than the configured maximum."""
