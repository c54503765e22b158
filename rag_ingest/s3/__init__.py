"""Tier 1: the S3 transport (async core on httpx, sync twin)."""

from rag_ingest.s3.client import AsyncS3Client
from rag_ingest.s3.objects import DownloadResult, ObjectInfo
from rag_ingest.s3.retry import RetryPolicy
from rag_ingest.s3.sync import S3Client
from rag_ingest.s3.uri import DirectURL, S3Location, parse_address

__all__ = [
    "AsyncS3Client",
    "DirectURL",
    "DownloadResult",
    "ObjectInfo",
    "RetryPolicy",
    "S3Client",
    "S3Location",
    "parse_address",
]
