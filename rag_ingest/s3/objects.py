"""The values the S3 client hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = ["DownloadResult", "ObjectInfo"]


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD or a listing says about an object."""

    bucket: str | None
    key: str | None
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    content_type: str | None = None
    version_id: str | None = None
    checksums: dict[str, str] = field(default_factory=dict, compare=False)
    source: str = ""
    filename: str | None = field(default=None, compare=False)  # a URL's Content-Disposition

    @property
    def uri(self) -> str:
        """``s3://bucket/key`` when known, else the (redacted) source URL."""
        if self.bucket is not None and self.key is not None:
            return f"s3://{self.bucket}/{self.key}"
        return self.source


@dataclass
class DownloadResult:
    """A finished, verified download."""

    path: Path
    info: ObjectInfo
    bytes: int
    parts: int
    attempts: int
    retries: int
    seconds: float
    checksum: str | None = None
    """The check that passed (``"sha256"``, ``"md5-etag"``, ...); None if none was offered."""
