"""The sync twin of :class:`AsyncS3Client`: same methods, no ``await``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from rag_ingest._sync import LoopThread
from rag_ingest.progress import ProgressCallback
from rag_ingest.s3.client import AsyncS3Client
from rag_ingest.s3.objects import DownloadResult, ObjectInfo
from rag_ingest.s3.uri import Target
from rag_ingest.settings import Settings

__all__ = ["S3Client"]


class S3Client:
    """Blocking S3 client for scripts and notebooks; see :class:`AsyncS3Client` for docs."""

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        self._loop = LoopThread()
        self._async = AsyncS3Client(settings, **kwargs)

    def __repr__(self) -> str:
        return f"S3Client({self._async!r})"

    def __enter__(self) -> S3Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop._closed:
            self._loop.run(self._async.aclose())
            self._loop.close()

    def head(self, address: str | Target) -> ObjectInfo:
        return self._loop.run(self._async.head(address))

    def list(
        self,
        prefix: str | Target,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_count: int | None = None,
    ) -> Iterator[ObjectInfo]:
        return self._loop.iterate(
            self._async.list(prefix, include=include, exclude=exclude, max_count=max_count)
        )

    def read(self, address: str | Target) -> bytes:
        return self._loop.run(self._async.read(address))

    def download(
        self,
        address: str | Target,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> DownloadResult:
        return self._loop.run(
            self._async.download(address, dest, progress=progress, show_progress=show_progress)
        )

    def download_to_temp(
        self,
        address: str | Target,
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> DownloadResult:
        return self._loop.run(
            self._async.download_to_temp(address, progress=progress, show_progress=show_progress)
        )

    @contextlib.contextmanager
    def fetch(
        self, address: str | Target, *, progress: ProgressCallback | None = None
    ) -> Iterator[DownloadResult]:
        """``with s3.fetch(uri) as result:`` a temp download removed on exit."""
        result = self._loop.run(
            self._async.download_to_temp(address, progress=progress, show_progress=False)
        )
        try:
            yield result
        finally:
            result.path.unlink(missing_ok=True)
