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
    "BinaryContentError": "rag_ingest.errors",
    "BlankDocumentError": "rag_ingest.errors",
    "ChunkStore": "rag_ingest.store",
    "ConfigurationError": "rag_ingest.errors",
    "CorruptDocumentError": "rag_ingest.errors",
    "DiskFullError": "rag_ingest.errors",
    "DocumentError": "rag_ingest.errors",
    "DocumentTooLargeError": "rag_ingest.errors",
    "DocumentProcessor": "rag_ingest.pipeline",
    "DownloadResult": "rag_ingest.s3.objects",
    "EmptyDocumentError": "rag_ingest.errors",
    "EncryptedDocumentError": "rag_ingest.errors",
    "HashEmbeddings": "rag_ingest.models",
    "IngestEvent": "rag_ingest.progress",
    "IngestReport": "rag_ingest.pipeline",
    "IngestResult": "rag_ingest.pipeline",
    "MiniLMEmbeddings": "rag_ingest.models",
    "MissingExtraError": "rag_ingest.errors",
    "ModelError": "rag_ingest.errors",
    "NoTextFormatError": "rag_ingest.errors",
    "ObjectInfo": "rag_ingest.s3.objects",
    "ParserCrashedError": "rag_ingest.errors",
    "ParserMemoryError": "rag_ingest.errors",
    "ParserTimeoutError": "rag_ingest.errors",
    "QueueFullError": "rag_ingest.errors",
    "RagIngestError": "rag_ingest.errors",
    "RagIngestLoader": "rag_ingest.loader",
    "RetryPolicy": "rag_ingest.s3.retry",
    "S3ArchivedObjectError": "rag_ingest.errors",
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
    "SessionDeletedError": "rag_ingest.errors",
    "QuotaExceededError": "rag_ingest.errors",
    "SessionInfo": "rag_ingest.ledger",
    "SessionRequiredError": "rag_ingest.errors",
    "Settings": "rag_ingest.settings",
    "StoreError": "rag_ingest.errors",
    "SyncDocumentProcessor": "rag_ingest.pipeline",
    "TokenizerUnavailableError": "rag_ingest.errors",
    "UnsafeSourceError": "rag_ingest.errors",
    "UnsupportedFileTypeError": "rag_ingest.errors",
    "Upload": "rag_ingest.sources",
    "VerifyReport": "rag_ingest.store",
    "ZipBombError": "rag_ingest.errors",
    "load_embeddings": "rag_ingest.models",
}

__all__ = [
    "AsyncS3Client",
    "BinaryContentError",
    "BlankDocumentError",
    "ChunkStore",
    "ConfigurationError",
    "CorruptDocumentError",
    "DiskFullError",
    "DocumentError",
    "DocumentProcessor",
    "DocumentTooLargeError",
    "DownloadResult",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "HashEmbeddings",
    "IngestEvent",
    "IngestReport",
    "IngestResult",
    "MiniLMEmbeddings",
    "MissingExtraError",
    "ModelError",
    "NoTextFormatError",
    "ObjectInfo",
    "ParserCrashedError",
    "ParserMemoryError",
    "ParserTimeoutError",
    "QueueFullError",
    "QuotaExceededError",
    "RagIngestError",
    "RagIngestLoader",
    "RetryPolicy",
    "S3ArchivedObjectError",
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
    "SessionDeletedError",
    "SessionInfo",
    "SessionRequiredError",
    "Settings",
    "StoreError",
    "SyncDocumentProcessor",
    "TokenizerUnavailableError",
    "UnsafeSourceError",
    "UnsupportedFileTypeError",
    "Upload",
    "VerifyReport",
    "ZipBombError",
    "load_embeddings",
]

if TYPE_CHECKING:
    from rag_ingest.errors import (
        BinaryContentError,
        BlankDocumentError,
        ConfigurationError,
        CorruptDocumentError,
        DiskFullError,
        DocumentError,
        DocumentTooLargeError,
        EmptyDocumentError,
        EncryptedDocumentError,
        MissingExtraError,
        ModelError,
        NoTextFormatError,
        ParserCrashedError,
        ParserMemoryError,
        ParserTimeoutError,
        QueueFullError,
        QuotaExceededError,
        RagIngestError,
        S3ArchivedObjectError,
        S3AuthError,
        S3Error,
        S3IntegrityError,
        S3NotFoundError,
        S3ObjectChangedError,
        S3ObjectTooLargeError,
        S3PresignedExpiredError,
        S3RateLimitError,
        S3TimeoutError,
        SessionDeletedError,
        SessionRequiredError,
        StoreError,
        TokenizerUnavailableError,
        UnsafeSourceError,
        UnsupportedFileTypeError,
        ZipBombError,
    )
    from rag_ingest.ledger import (
        SessionInfo,
    )
    from rag_ingest.loader import (
        RagIngestLoader,
    )
    from rag_ingest.models import (
        HashEmbeddings,
        MiniLMEmbeddings,
        load_embeddings,
    )
    from rag_ingest.pipeline import (
        DocumentProcessor,
        IngestReport,
        IngestResult,
        SyncDocumentProcessor,
    )
    from rag_ingest.progress import (
        IngestEvent,
    )
    from rag_ingest.s3.client import (
        AsyncS3Client,
    )
    from rag_ingest.s3.objects import (
        DownloadResult,
        ObjectInfo,
    )
    from rag_ingest.s3.retry import (
        RetryPolicy,
    )
    from rag_ingest.s3.sync import (
        S3Client,
    )
    from rag_ingest.settings import (
        Settings,
    )
    from rag_ingest.sources import (
        Upload,
    )
    from rag_ingest.store import (
        ChunkStore,
        VerifyReport,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag_ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
