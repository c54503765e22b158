"""PDF: pymupdf4llm Markdown per page, then plain PyMuPDF text. AGPL-3.0 (extra 'pdf')."""

from __future__ import annotations

import threading
from typing import Any

from rag_ingest.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    MissingExtraError,
)
from rag_ingest.parsers.base import Image, ParsedDocument, Segment

__all__ = ["PDF_LOCK", "parse_pdf"]

# PyMuPDF is not thread-safe: in thread mode every PDF parse holds this lock
# (LangChain's PyMuPDF4LLM loader does the same). Worker processes parse freely.
PDF_LOCK = threading.Lock()
_mode_set: str | None = None


def _import(mode: str) -> tuple[Any, Any]:
    global _mode_set
    try:
        import pymupdf
        import pymupdf4llm
    except ImportError as exc:
        raise MissingExtraError("PDF parsing (PyMuPDF, AGPL-3.0)", "pdf") from exc
    if _mode_set != mode:
        pymupdf4llm.use_layout(mode == "layout")
        _mode_set = mode
    return pymupdf, pymupdf4llm


def parse_pdf(
    path: str, name: str, mode: str = "tables", max_images: int = 0, min_image_bytes: int = 2048
) -> ParsedDocument:
    with PDF_LOCK:
        return _parse(path, name, mode, max_images, min_image_bytes)


def _images(doc: Any, limit: int, min_bytes: int) -> list[Image]:
    found: list[Image] = []
    seen: set[int] = set()
    for number, page in enumerate(doc, start=1):
        for info in page.get_images(full=True):
            xref = info[0]
            if xref in seen or len(found) >= limit:
                continue
            seen.add(xref)
            try:
                extracted = doc.extract_image(xref)
            except Exception:  # a broken image stream costs that image only
                continue
            data = extracted.get("image", b"")
            if len(data) >= min_bytes:
                found.append(Image(data, f"image/{extracted.get('ext', 'png')}", page=number))
    return found


def _parse(
    path: str, name: str, mode: str, max_images: int, min_image_bytes: int
) -> ParsedDocument:
    pymupdf, pymupdf4llm = _import(mode)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises FileDataError, RuntimeError, ValueError...
        raise CorruptDocumentError(f"{name}: not a readable PDF ({exc})") from exc
    with doc:
        if doc.needs_pass:
            raise EncryptedDocumentError(f"{name}: the PDF is password-protected")
        if doc.is_repaired:
            # MuPDF rebuilt a damaged (often truncated) file: what it recovered is partial.
            raise CorruptDocumentError(f"{name}: the PDF is damaged (MuPDF had to repair it)")
        warnings: list[str] = []
        parser = f"pymupdf4llm-{mode}"
        try:
            segments = _markdown_pages(pymupdf4llm, doc, mode)
        except Exception as exc:  # a pymupdf4llm bug must not lose the document
            warnings.append(f"pymupdf4llm failed ({type(exc).__name__}: {exc}); plain text used")
            parser = "pymupdf-text"
            try:
                segments = [Segment(page.get_text(), page=i + 1) for i, page in enumerate(doc)]
            except Exception as exc2:
                raise CorruptDocumentError(f"{name}: no text could be extracted ({exc2})") from exc2
        page_count = doc.page_count
        images = _images(doc, max_images, min_image_bytes) if max_images else []
    segments = [s for s in segments if s.text.strip()]
    if not segments and not images:
        raise EmptyDocumentError(f"{name}: no extractable text (scanned PDF? OCR is not enabled)")
    return ParsedDocument(
        "pdf", segments, parser=parser, pages=page_count, warnings=warnings, images=images
    )


def _markdown_pages(pymupdf4llm: Any, doc: Any, mode: str) -> list[Segment]:
    """pymupdf4llm Markdown, one segment per page.

    In "tables" mode, table detection (~80% of the time per page, measured) only runs
    on pages that have vector graphics: pymupdf4llm's table finder works from drawn
    lines, so a page without drawings cannot yield a table, and its Markdown is the
    same without the search (checked equal on text-only and ruled-table pages).
    """
    if mode == "layout":
        chunks = pymupdf4llm.to_markdown(doc, page_chunks=True, show_progress=False)
        return [
            Segment(str(c.get("text", "")), page=_page_number(c, i)) for i, c in enumerate(chunks)
        ]
    ruled = [i for i, page in enumerate(doc) if mode == "tables" and page.get_drawings()]
    plain = [i for i in range(doc.page_count) if i not in set(ruled)]
    header_info = pymupdf4llm.IdentifyHeaders(doc)  # once, not once per call
    by_page: dict[int, str] = {}
    for pages, options in ((ruled, {}), (plain, {"table_strategy": None})):
        if not pages:
            continue
        chunks = pymupdf4llm.to_markdown(
            doc, pages=pages, page_chunks=True, show_progress=False, hdr_info=header_info, **options
        )
        for index, chunk in zip(pages, chunks, strict=True):
            by_page[_page_number(chunk, index)] = str(chunk.get("text", ""))
    return [Segment(text, page=number) for number, text in sorted(by_page.items())]


def _page_number(page: dict[str, Any], index: int) -> int:
    meta = page.get("metadata") or {}
    number = meta.get("page") or meta.get("page_number")
    return int(number) if number else index + 1
