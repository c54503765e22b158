"""Helpers for tests, benchmarks and the demo: a real S3 server on loopback."""

from rag_ingest.testing.seaweedfs import SeaweedS3, find_weed

__all__ = ["SeaweedS3", "find_weed"]
