"""The exceptions rag_ingest raises, all rooted at :class:`RagIngestError`.

::

    RagIngestError
    ├── ConfigurationError          bad settings or a bad argument
    ├── MissingExtraError           an optional dependency is not installed (also ImportError)
    ├── TokenizerUnavailableError   no local tiktoken vocabulary (we never download one)
    ├── QueueFullError              the submission queue is full: back off (HTTP 503)
    ├── SessionRequiredError        a query or delete without a session id
    ├── SessionDeletedError         the session was deleted while its document was in flight
    ├── QuotaExceededError          the document would take its session past its quota
    ├── DiskFullError               no room on the disk a download or upload is written to
    ├── DocumentError               one document cannot be ingested
    │   ├── UnsupportedFileTypeError    no parser for this content
    │   │   └── NoTextFormatError       an image, archive, executable, ...: no text in it
    │   ├── DocumentTooLargeError       an upload past limits.max_object_size
    │   ├── EncryptedDocumentError      password-protected
    │   ├── CorruptDocumentError        unreadable, truncated or repaired
    │   ├── ZipBombError                an archive that expands past the limits
    │   ├── BinaryContentError          binary data where text was expected
    │   ├── ParserTimeoutError          the parser ran past its wall-clock limit
    │   ├── ParserCrashedError          the parser's worker process died
    │   ├── ParserMemoryError           the parser went past its memory limit
    │   └── EmptyDocumentError          no text to index
    │       └── BlankDocumentError      nothing but whitespace or NULs (skipped, as empty)
    ├── ModelError                  an embedding or summary call failed past its retries
    ├── StoreError                  the vector store or the ledger refused a write
    ├── UnsafeSourceError           a URL we refuse to fetch (scheme, host, redirect)
    └── S3Error                     anything S3 answered or failed to answer
        ├── S3ArchivedObjectError   in Glacier or Deep Archive: restore it first
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

import errno
import shutil
from pathlib import Path
from typing import Any

from rag_ingest._redact import redact

__all__ = [
    "BinaryContentError",
    "BlankDocumentError",
    "ConfigurationError",
    "CorruptDocumentError",
    "DiskFullError",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "MissingExtraError",
    "ModelError",
    "NoTextFormatError",
    "ParserCrashedError",
    "ParserMemoryError",
    "ParserTimeoutError",
    "QueueFullError",
    "RagIngestError",
    "S3ArchivedObjectError",
    "S3AuthError",
    "S3Error",
    "S3IntegrityError",
    "S3NotFoundError",
    "S3ObjectChangedError",
    "S3ObjectTooLargeError",
    "S3PresignedExpiredError",
    "S3RateLimitError",
    "S3TimeoutError",
    "SessionDeletedError",
    "SessionRequiredError",
    "StoreError",
    "TokenizerUnavailableError",
    "UnsafeSourceError",
    "UnsupportedFileTypeError",
    "ZipBombError",
]


class RagIngestError(Exception):
    """Base of every error rag_ingest raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigurationError(RagIngestError, ValueError):
    """Settings or arguments that cannot work."""


_STORE_SETTING = "store.persist_dir (the CLI's --persist-dir)"


def unwritable(
    directory: Path, exc: BaseException, what: str = "store", setting: str = _STORE_SETTING
) -> ConfigurationError:
    """A directory of ours this process cannot make or write (a read-only working
    directory, where the default ``rag_ingest_data`` goes), naming the setting that
    moves it: raw, it was a traceback ending in "PermissionError: 'rag_ingest_data'"."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return ConfigurationError(
        f"cannot write the {what} directory {directory} ({why}): set {setting} to a "
        "directory this process can write"
    )


class MissingExtraError(RagIngestError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, what: str, extra: str) -> None:
        self.what = what
        self.extra = extra
        super().__init__(f"{what} needs an optional dependency: pip install 'rag-ingest[{extra}]'")

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a parser worker, it is pickled back to the parent: rebuilt from its
        # message alone, as exceptions are, it failed there (two arguments wanted).
        return (type(self), (self.what, self.extra), self.__dict__)


class TokenizerUnavailableError(RagIngestError):
    """No local tiktoken vocabulary could be found (we never download one)."""


class QueueFullError(RagIngestError):
    """The bounded submission queue is full: retry later (a web backend's 503)."""


class SessionRequiredError(RagIngestError, ValueError):
    """A session-scoped operation was called without a session id."""


class SessionDeletedError(RagIngestError):
    """``delete_session`` ran while this document was in flight: nothing of it is kept."""


class QuotaExceededError(RagIngestError):
    """The document would take its session past ``pipeline.session_max_documents`` or
    ``session_max_chunks``: nothing of it is stored (a web backend's 413 or 429)."""


class DiskFullError(RagIngestError, OSError):
    """No space (or quota) left on the disk a download or an upload is written to."""


_STAGING_ADVICE = "free some space, or set temp_dir to a disk with room"


def free_space(directory: Path) -> str:
    """For a message: "12.3 MiB free" on ``directory``'s disk."""
    try:
        return f"{shutil.disk_usage(directory).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def disk_full(
    exc: BaseException, directory: Path, what: str, advice: str = _STAGING_ADVICE
) -> DiskFullError | None:
    """``exc`` as a :class:`DiskFullError` naming ``what`` and the free space, if it is
    an ENOSPC or EDQUOT (raw, it reads "[Errno 28]" with no hint of which disk)."""
    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    error = DiskFullError(
        f"no space left in {directory} ({free_space(directory)}) for {what}: {advice}"
    )
    error.errno = exc.errno
    return error


class DocumentError(RagIngestError):
    """One document cannot be ingested; the batch carries on."""


class UnsupportedFileTypeError(DocumentError):
    """No parser handles this content (or its content does not match its name)."""


class DocumentTooLargeError(DocumentError):
    """An upload larger than ``limits.max_object_size``; nothing of it is kept."""


class NoTextFormatError(UnsupportedFileTypeError):
    """A format with no text to index (an image, audio, video, archive, executable,
    database or other binary), by its name or its bytes. Listed by a directory walk or
    a prefix, such a file is skipped; named on its own, it fails."""


class EncryptedDocumentError(DocumentError):
    """The document is password-protected."""


class CorruptDocumentError(DocumentError):
    """The document is unreadable, truncated, or was silently repaired by the parser."""


class ZipBombError(DocumentError):
    """An OOXML archive whose expanded size or ratio is over the limits."""


class BinaryContentError(DocumentError):
    """Binary data where text or source code was expected."""


class ParserTimeoutError(DocumentError, TimeoutError):
    """The parser ran past the per-document wall-clock limit; its worker was killed."""


class ParserCrashedError(DocumentError):
    """The parser's worker process died (segfault, abort); the pool carries on."""


class ParserMemoryError(DocumentError, MemoryError):
    """The parser went past the per-document memory limit."""


class EmptyDocumentError(DocumentError):
    """The document has no text to index."""


class BlankDocumentError(EmptyDocumentError):
    """Nothing is written in the document: a file of whitespace only (an ``__init__.py``
    of one newline) or of NUL bytes (allocated, never written), or a document with no
    text and no pictures (a DOCX template, a deck of no slides, a workbook of empty
    sheets, a page of scripts and styles). The processor skips it as it skips an empty
    file. A document whose pictures may hold its text (a scan) is an
    :class:`EmptyDocumentError` instead."""


def nothing_to_index(exc: BaseException, listed: bool) -> bool:
    """Whether ``exc`` means a file to skip rather than fail: a blank document, always; a
    format with no text, when a directory walk or a prefix listing found it."""
    return isinstance(exc, BlankDocumentError) or (listed and isinstance(exc, NoTextFormatError))


class ModelError(RagIngestError):
    """An embedding or summary call failed after its timeout and retries."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class StoreError(RagIngestError):
    """The vector store or the ledger refused a write."""


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
    """A presigned URL is past its expiry. Never retried: ask for a fresh URL, or give
    the client (or processor, or loader) a ``renew_url`` function that makes one."""


class S3NotFoundError(S3Error, FileNotFoundError):
    """The bucket or the key does not exist."""


class S3RateLimitError(S3Error):
    """The server throttled us and kept doing so past the retry budget."""

    retryable = True


class S3TimeoutError(S3Error, TimeoutError):
    """A connect or read timeout, a stalled body, or a transfer below the minimum rate."""

    retryable = True


class S3ArchivedObjectError(S3Error):
    """The object is in an archive storage class (Glacier Flexible Retrieval, Deep
    Archive, an Intelligent-Tiering archive tier): S3 answers 403 InvalidObjectState
    until it is restored."""


class S3IntegrityError(S3Error):
    """The bytes received are not the object: size, checksum or range mismatch."""


class S3ObjectChangedError(S3Error):
    """The object changed during the download (ETag mismatch, 412 on If-Match)."""


class S3ObjectTooLargeError(S3Error):
    """The object is larger than the configured maximum."""
