"""The LangChain document loader: S3, https and local sources to ``Document``s.

``alazy_load`` is native async (tier 1 downloads, tier 2 parser workers), not
LangChain's default thread wrapper; ``lazy_load`` is its sync twin and works
in scripts and in Jupyter. Nothing is embedded or stored here: compose with
``load_and_split``, ``index()`` or a vector store as usual, or use
:class:`~rag_ingest.DocumentProcessor` to ingest into a session.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from rag_ingest.chunking import chunk_ids, content_hash
from rag_ingest.errors import ConfigurationError, RagIngestError, nothing_to_index
from rag_ingest.parsers.base import split_notes
from rag_ingest.parsers.sniff import no_text
from rag_ingest.settings import Settings
from rag_ingest.sources import (
    Source,
    Upload,
    check_allowed,
    check_not_secret,
    expand_sources,
    make_source,
    one_named,
    spool,
    unique_sources,
    unlink_off_loop,
)
from rag_ingest.staging import StagingArea

__all__ = ["LoadError", "RagIngestLoader"]

logger = logging.getLogger("rag_ingest.pipeline")
Mode = Literal["chunks", "pages", "document"]


class LoadError:
    """A source that could not be loaded (kept in ``loader.errors`` under ``on_error="skip"``)."""

    def __init__(self, source: str, error: BaseException) -> None:
        self.source = source
        self.error = error
        self.error_type = type(error).__name__

    def __repr__(self) -> str:
        return f"LoadError({self.source!r}, {self.error_type}: {self.error})"


class RagIngestLoader(BaseLoader):
    """Load documents from ``s3://`` objects or prefixes, https/presigned URLs, local files
    or directories (or a list of them).

    ``mode``: ``"chunks"`` (default; token-sized, provenance in metadata), ``"pages"``
    (one Document per PDF page or slide, one per file otherwise) or ``"document"``.
    ``on_error``: ``"skip"`` (default; failures are logged and kept in ``errors``) or
    ``"raise"``; a source read with warnings has them logged and kept in ``warnings``.
    ``embeddings``: the embedder the chunks will be indexed with; one that declares its
    input window (``max_input_tokens``, as MiniLM does) gets chunks sized to fit it
    (``settings.chunk.fit_embedder``), as the ``DocumentProcessor`` does.
    ``renew_url``: gives a fresh presigned URL for an expired one (see
    :class:`~rag_ingest.s3.AsyncS3Client`).
    A load's parser workers wait ``settings.parse.keep_workers`` seconds (60) for the next
    load with the same parse settings (a notebook's next cell), which then starts none.
    """

    def __init__(
        self,
        sources: str | os.PathLike[str] | Upload | Sequence[str | os.PathLike[str] | Upload],
        *,
        mode: Mode = "chunks",
        settings: Settings | None = None,
        on_error: Literal["skip", "raise"] = "skip",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        embeddings: Any = None,
        renew_url: Callable[[str], str] | None = None,
    ) -> None:
        if mode not in ("chunks", "pages", "document"):
            raise ConfigurationError(f"mode must be chunks, pages or document, not {mode!r}")
        if on_error not in ("skip", "raise"):
            raise ConfigurationError(f"on_error must be skip or raise, not {on_error!r}")
        self.sources: list[Any] = (
            [sources] if isinstance(sources, (str, os.PathLike, Upload)) else list(sources)
        )
        self.mode = mode
        self.settings = settings or Settings()
        self.on_error = on_error
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.metadata = dict(metadata or {})
        self.renew_url = renew_url
        self.errors: list[LoadError] = []
        # Each source read with warnings (pages left unread without OCR, lines left out):
        # logged, and kept here by source, as the processor's results keep them; and
        # with notes of how it was read (decompressed, its type told by its content),
        # logged at INFO.
        self.warnings: dict[str, list[str]] = {}
        self.notes: dict[str, list[str]] = {}
        # The chunk sizes in force: the settings', fitted to the embedder's window.
        self.chunk_settings = self.settings.chunk
        window = getattr(embeddings, "max_input_tokens", None)
        if isinstance(window, int) and window > 0 and self.chunk_settings.fit_embedder:
            from rag_ingest.chunking import fit_to_window

            self.chunk_settings = fit_to_window(self.chunk_settings, window)

    def __repr__(self) -> str:
        return f"RagIngestLoader({len(self.sources)} sources, mode={self.mode!r})"

    # -- async core ----------------------------------------------------------------

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Documents in source order; up to ``pipeline.in_flight`` sources in progress."""
        from rag_ingest.parsers.base import ParseOptions
        from rag_ingest.parsers.pool import kept_pool
        from rag_ingest.s3.client import AsyncS3Client

        s = self.settings
        options = ParseOptions.of(s.parse, temp_dir=str(s.staging_dir))
        # Workers kept from the last load with these settings (parse.keep_workers).
        pool, stale = kept_pool.lease(s.parse, options, s.chunk.encoding)
        if stale is not None:
            await asyncio.to_thread(stale.close)
        window: collections.deque[asyncio.Task[list[Document]]] = collections.deque()
        self.errors = []
        self.warnings = {}
        self.notes = {}
        staging: StagingArea | None = None
        try:
            # Downloads, uploads and parse scratch staged where the next start removes
            # them, should this process be killed.
            staging = await asyncio.to_thread(StagingArea, s.staging_dir)
            staged = s.model_copy(update={"temp_dir": staging.path})
            async with AsyncS3Client(staged, renew_url=self.renew_url) as s3:
                try:
                    skip = [s.temp_dir] if s.temp_dir is not None else []
                    listing = expand_sources(
                        s3,
                        self.sources,
                        self.include,
                        self.exclude,
                        skip,
                        s.pipeline.allowed_sources,
                    )
                    single = one_named(self.sources)
                    async for item in unique_sources(s3, listing, single=single):
                        load = self._load_one(s3, pool, item, str(staging.path))
                        window.append(asyncio.ensure_future(load))
                        if len(window) >= s.pipeline.in_flight:
                            for doc in await window.popleft():
                                yield doc
                    while window:
                        for doc in await window.popleft():
                            yield doc
                finally:
                    for task in window:
                        task.cancel()
                    await asyncio.gather(*window, return_exceptions=True)
        finally:
            await asyncio.to_thread(kept_pool.release, pool)
            if staging is not None:
                await asyncio.to_thread(staging.close)

    async def _load_one(self, s3: Any, pool: Any, item: Any, staged: str) -> list[Document]:
        source: Source | None = None
        temp: Path | None = None
        try:
            source = make_source(s3, item)
            check_allowed(source, self.settings.pipeline.allowed_sources)
            images = pool.options.reads_images
            if source.listed and no_text(source.named_under, images=images) is not None:
                return []  # an image or archive in a walked tree: nothing to load, no error
            check_not_secret(source)  # named directly: by its folders too
            if source.upload is not None:
                temp = path = await spool(
                    source.upload,
                    s3.settings.staging_dir,
                    max_size=self.settings.limits.max_object_size,
                )
                version = None
            elif source.path is not None:
                path = source.path
                version = None
            else:
                result = await s3.download_to_temp(source.target, show_progress=False)
                temp = path = result.path
                source.info = result.info  # a URL's Content-Disposition may name it
                version = result.info.version_id or result.info.etag
            base = dict(self.metadata)
            base.update(source=source.key, filename=source.name)
            if version:
                base["version"] = version

            # Each Document's id names its source and text (and which copy of that text),
            # so adding a load to a store again (add_documents, from_documents) upserts
            # rather than duplicates, and a changed source's unchanged chunks keep their
            # ids wherever they move: only changed text is new, its old form left behind.
            def named(pieces: list[tuple[str, dict[str, Any]]]) -> list[Document]:
                digests = [m.get("content_hash") or content_hash(t) for t, m in pieces]
                keys = chunk_ids("", source.key, digests)
                return [
                    Document(page_content=t, metadata=m, id=k)
                    for (t, m), k in zip(pieces, keys, strict=True)
                ]

            if self.mode == "chunks":
                parsed, plan = await pool.parse_and_chunk(
                    str(path), source.name, self.chunk_settings, base, scratch_under=staged
                )
                self._warned(source.key, parsed.warnings + plan.warnings)
                return named([(c.text, c.metadata) for c in plan.chunks])
            parsed = await pool.parse(str(path), source.name, scratch_under=staged)
            if self.chunk_settings.mask_credentials:
                _mask_segments(parsed)
            self._warned(source.key, parsed.warnings)
            base.update(file_type=parsed.file_type)
            if parsed.language:
                base["language"] = parsed.language
            if self.mode == "document":
                return named([(parsed.text, base)])
            pieces = []
            for segment in parsed.segments:
                meta = dict(base)
                if segment.page is not None:
                    meta["page"] = segment.page
                pieces.append((segment.text, meta))
            return named(pieces)
        except RagIngestError as exc:
            name = source.key if source is not None else str(item)
            if nothing_to_index(exc, source is not None and source.listed):
                return []  # an __init__.py of one newline, a binary in a walked tree
            if self.on_error == "raise":
                raise
            logger.warning("skipping %s: %s: %s", name, type(exc).__name__, exc)
            self.errors.append(LoadError(name, exc))
            return []
        finally:
            if temp is not None:
                await unlink_off_loop(temp)

    def _warned(self, source: str, told: list[str]) -> None:
        warnings, notes = split_notes(told)
        if warnings:
            self.warnings[source] = warnings
            for warning in warnings:
                logger.warning("%s: %s", source, warning)
        if notes:
            self.notes[source] = notes
            for note in notes:
                logger.info("%s: %s", source, note)

    # -- sync twin --------------------------------------------------------------------

    def lazy_load(self) -> Iterator[Document]:
        """The sync twin of :meth:`alazy_load` (a private loop thread; fine in Jupyter)."""
        from rag_ingest._sync import LoopThread

        loop = LoopThread("rag-ingest-loader")
        try:
            yield from loop.iterate(self.alazy_load())
        finally:
            loop.close()


def _mask_segments(parsed: Any) -> None:
    """A document's own text (``mode="document"`` or ``"pages"``) with its credentials
    masked, as chunks have them (see :mod:`rag_ingest.credentials`)."""
    from rag_ingest.credentials import mask_all, masked_warning

    texts, found = mask_all([segment.text for segment in parsed.segments])
    for segment, text in zip(parsed.segments, texts, strict=True):
        segment.text = text
    if found:
        parsed.warnings.append(masked_warning(found))
