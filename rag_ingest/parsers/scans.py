"""The OCR phase of a parse: a document's scanned pages (a PDF's, an image's frames)
read in batches, each a task of its own under the parse time limit, then merged in."""

from __future__ import annotations

from rag_ingest.errors import NoTextFormatError
from rag_ingest.ocr import letters
from rag_ingest.parsers.base import ParsedDocument, ParseOptions, Segment

__all__ = ["BATCH_PAGES", "batches", "finish", "read_scans"]

# Pages per OCR task: a dense page takes ~2.8 s on one core (measured), so a batch stays
# well inside parse.timeout's default 120 s, and a long scan spreads over every worker.
BATCH_PAGES = 8
# Fewer letters than this in a whole image is a photo's stray sign, not a document.
_MIN_IMAGE_LETTERS = 16


def batches(numbers: list[int], workers: int) -> list[list[int]]:
    """``numbers`` in contiguous batches of at most :data:`BATCH_PAGES`, at least one
    per worker when there are enough pages."""
    size = max(1, min(BATCH_PAGES, -(-len(numbers) // max(1, workers))))
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


def read_scans(
    path: str, name: str, file_type: str, numbers: list[int], options: ParseOptions
) -> list[Segment]:
    """Pages (or frames) ``numbers`` of a PDF (or an image) read by OCR."""
    assert options.ocr is not None  # a parse lists scans only when OCR reads them
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
    error, as for a PDF with none to scan."""
    if parsed.file_type == "image":
        parsed.segments = [s for s in read if s.text.strip()]
        parsed.scans = []
        if sum(letters(s.text) for s in parsed.segments) < _MIN_IMAGE_LETTERS:
            raise NoTextFormatError(f"{name}: an image in which OCR found no text")
        return parsed
    from rag_ingest.parsers.pdf import drop_running_lines, no_text_error

    by_page = {s.page: s for s in parsed.segments}
    used = []
    for segment in read:
        own = by_page.get(segment.page)
        if letters(segment.text) > letters(own.text if own else ""):
            by_page[segment.page] = segment
            used.append(segment.page)
    parsed.segments = [by_page[n] for n in sorted(by_page, key=lambda n: n or 0)]
    parsed.scans = []
    if used:
        parsed.parser += "+ocr"
        parsed.warnings.append(f"{len(used)} scanned page(s) read by OCR: {_spans(used)}")
    if options.pdf_drop_running_lines:
        parsed.segments = drop_running_lines(parsed.segments)
    if not parsed.segments and not parsed.images:
        raise no_text_error(name, parsed.parser)
    return parsed


def _spans(numbers: list[int | None]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    spans: list[list[int]] = []
    for n in (n for n in numbers if n is not None):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
