"""rag_ingest: S3 and local documents into session-tagged chunks in a vector store.

The public API is this module's ``__all__``. Names are imported on first use so
that ``import rag_ingest`` stays fast (no httpx, botocore or parsers loaded).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncS3Client": "rag_ingest.s3.client",
    "ConfigurationError": "rag_ingest.errors",
    "DownloadResult": "rag_ingest.s3.objects",
    "ObjectInfo": "rag_ingest.s3.objects",
    "RagIngestError": "rag_ingest.errors",
    "RetryPolicy": "rag_ingest.s3.retry",
    "S3AuthError": "rag_ingest.errors",
    "S3Client": "rag_ingest.s3.sync",
    "S3Error": "rag_ingest.errors",
    "S3IntegrityError": "rag_ingest.errors",
    "S3NotFoundError": "rag_ingest.errors",
    "S3ObjectChangedError": "rag_ingest.errors",
    "S3ObjectTooLargeError": "rag_ingest.errors",
    "S3PresignedExpiredError": "rag_ingest.errors",
    "S3RateLimitError": "rag_ingest.errors",
    "S3TimeoutError": "rag_ingest.errors",
    "Settings": "rag_ingest.settings",
    "UnsafeSourceError": "rag_ingest.errors",
}

__all__ = [
    "AsyncS3Client",
    "ConfigurationError",
    "DownloadResult",
    "ObjectInfo",
    "RagIngestError",
    "RetryPolicy",
    "S3AuthError",
    "S3Client",
    "S3Error",
    "S3IntegrityError",
    "S3NotFoundError",
    "S3ObjectChangedError",
    "S3ObjectTooLargeError",
    "S3PresignedExpiredError",
    "S3RateLimitError",
    "S3TimeoutError",
    "Settings",
    "UnsafeSourceError",
]

if TYPE_CHECKING:
    from rag_ingest.errors import (
        ConfigurationError,
        RagIngestError,
        S3AuthError,
        S3Error,
        S3IntegrityError,
        S3NotFoundError,
        S3ObjectChangedError,
        S3ObjectTooLargeError,
        S3PresignedExpiredError,
        S3RateLimitError,
        S3TimeoutError,
        UnsafeSourceError,
    )
    from rag_ingest.s3.client import AsyncS3Client
    from rag_ingest.s3.objects import DownloadResult, ObjectInfo
    from rag_ingest.s3.retry import RetryPolicy
    from rag_ingest.s3.sync import S3Client
    from rag_ingest.settings import Settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag_ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
