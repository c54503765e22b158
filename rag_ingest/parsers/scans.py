"""The OCR phase of a parse: a document's scanned pages (a PDF's, an image's frames,
the pictures inside an office document) read in batches, each a task of its own under
the parse time limit, then merged in."""

from __future__ import annotations

import dataclasses
import re

from rag_ingest.errors import EmptyDocumentError, NoTextFormatError
from rag_ingest.ocr import letters
from rag_ingest.parsers.base import ParsedDocument, ParseOptions, Segment, spans
from rag_ingest.parsers.pictures import MARKER

__all__ = ["BATCH_PAGES", "batches", "finish", "read_scans"]

# Pages per OCR task: a dense page takes ~2.8 s on one core (measured), so a batch stays
# well inside parse.cpu_timeout's default 120 s, and a long scan spreads over every worker.
BATCH_PAGES = 8
# Fewer letters than this in a whole image is a photo's stray sign, not a document.
_MIN_IMAGE_LETTERS = 16


def batches(numbers: list[int], workers: int) -> list[list[int]]:
    """``numbers`` in contiguous batches of at most :data:`BATCH_PAGES`, at least one
    per worker when there are enough pages."""
    size = max(1, min(BATCH_PAGES, -(-len(numbers) // max(1, workers))))
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


def read_scans(
    path: str,
    name: str,
    file_type: str,
    numbers: list[int],
    options: ParseOptions,
    pictures: list[bytes] | None = None,
) -> list[Segment]:
    """Pages (or frames) ``numbers`` of a PDF (or an image) read by OCR; or, given
    ``pictures``, those pictures (``numbers``' of a document)."""
    assert options.ocr is not None  # a parse lists scans only when OCR reads them
    if pictures is not None:
        from rag_ingest.parsers.image import read_pictures

        return read_pictures(numbers, pictures, options.ocr)
    if file_type == "image":
        from rag_ingest.parsers.image import read_frames

        return read_frames(path, name, numbers, options.ocr)
    from rag_ingest.parsers.pdf import read_pages

    return read_pages(path, name, numbers, options.ocr)


def finish(
    name: str, parsed: ParsedDocument, read: list[Segment], options: ParseOptions
) -> ParsedDocument:
    """``parsed`` with its scans' text: a PDF page's where OCR found more letters than
    the page's own text; then a PDF's running lines dropped, and the want of any text an
    error, as for a PDF with none to scan. An office document's pictures go where their
    markers stand."""
    if parsed.pictures:
        return _with_pictures(name, parsed, read)
    if parsed.file_type == "image":
        parsed.segments = [s for s in read if s.text.strip()]
        parsed.scans = []
        if sum(letters(s.text) for s in parsed.segments) < _MIN_IMAGE_LETTERS:
            raise NoTextFormatError(f"{name}: an image in which OCR found no text")
        return parsed
    from rag_ingest.parsers.pdf import drop_running_lines, no_text_error

    attached = [s for s in parsed.segments if s.member is not None]  # after the pages
    by_page = {s.page: s for s in parsed.segments if s.member is None}
    used = []
    for segment in read:
        own = by_page.get(segment.page)
        if letters(segment.text) > letters(own.text if own else ""):
            by_page[segment.page] = segment
            used.append(segment.page)
    parsed.segments = [by_page[n] for n in sorted(by_page, key=lambda n: n or 0)] + attached
    parsed.scans = []
    if used:
        parsed.parser += "+ocr"
        parsed.warnings.append(f"{len(used)} scanned page(s) read by OCR: {spans(used)}")
    if options.pdf_drop_running_lines:
        parsed.segments = drop_running_lines(parsed.segments, parsed.scanned)
    if not parsed.segments and not parsed.images:
        raise no_text_error(name, options.ocr, len(read))
    return parsed


def _with_pictures(name: str, parsed: ParsedDocument, read: list[Segment]) -> ParsedDocument:
    """``parsed`` with each picture's text in a segment of its own where its marker
    stands (the text around it in segments on the same page); a picture with fewer than
    16 letters (a logo, a photo) leaves nothing."""
    texts = {s.page: s.text.strip() for s in read if letters(s.text) >= _MIN_IMAGE_LETTERS}
    segments: list[Segment] = []
    for segment in parsed.segments:
        parts = MARKER.split(_in_table_cells(segment.text, texts))
        joined = False  # whether the text before goes on (no picture text came between)
        for i, part in enumerate(parts):
            if i % 2 and int(part) in texts:
                segments.append(dataclasses.replace(segment, text=texts[int(part)], ocr=True))
                joined = False
            elif not i % 2 and part.strip():
                # The blank next to a marker goes with it (a Markdown picture's " ").
                part = part.lstrip(" ") if i else part
                part = part.rstrip(" ") if i < len(parts) - 1 else part
                if joined:
                    segments[-1].text += "\n\n" + part.strip("\n")
                else:
                    segments.append(dataclasses.replace(segment, text=part.strip("\n")))
                joined = True
    parsed.segments = segments
    parsed.pictures = []
    parsed.scans = []
    if texts:
        parsed.parser += "+ocr"
        parsed.warnings.append(f"{len(texts)} picture(s) read by OCR")
    if not segments and not parsed.images:
        raise EmptyDocumentError(f"{name}: no text, and OCR found none in its pictures")
    return parsed


_TABLE_ROW = re.compile(r"^[ \t]*\|.*$", re.MULTILINE)


def _in_table_cells(text: str, texts: dict[int | None, str]) -> str:
    """``text`` with a picture in a Markdown table's cell read into its cell, on one
    line: a segment of its own there cut the row, and the table, in two."""

    def cell(row: re.Match[str]) -> str:
        return MARKER.sub(
            lambda m: " ".join(texts.get(int(m[1]), "").split()).replace("|", "\\|"), row[0]
        )

    return _TABLE_ROW.sub(cell, text) if MARKER.search(text) else text
