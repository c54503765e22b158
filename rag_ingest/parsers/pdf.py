"""PDF: pymupdf4llm Markdown per page, then plain PyMuPDF text. AGPL-3.0 (extra 'pdf')."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import itertools
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from rag_ingest.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    MissingExtraError,
)
from rag_ingest.ocr import OcrOptions, letters, no_onnxruntime_telemetry
from rag_ingest.parsers.alt_text import alt_text, first_of_running
from rag_ingest.parsers.archive import attach
from rag_ingest.parsers.base import (
    UNREAD_SCANS,
    Image,
    ParsedDocument,
    Segment,
    after_text,
    comment_line,
    spans,
)
from rag_ingest.parsers.markdown_tables import is_label, without_empty_rows_and_columns

__all__ = [
    "PDF_LOCK",
    "SplitPlan",
    "drop_running_lines",
    "merge_ranges",
    "no_text_error",
    "page_ranges",
    "parse_pdf",
    "read_pages",
    "split_plan",
]

# PyMuPDF is not thread-safe: in thread mode every PDF parse holds this lock
# (LangChain's PyMuPDF4LLM loader does the same). Worker processes parse freely.
# Reentrant: a PDF attached to a PDF is parsed while its parent is open.
PDF_LOCK = threading.RLock()
# Read with a PDF's pages (see :func:`parse_pdf`): an attached file's bytes and name, and
# the PDF's warnings to add to; its parse, or None (no text, or it could not be read).
ReadAttached = Callable[[bytes, str, list[str]], ParsedDocument | None]
_mode_set: str | None = None
# Set in the parser pool's worker processes only, processes of ours alone: there
# PyMuPDF's Rect equality is made faster (:func:`_faster_rect_equality`).
in_worker = False


def _import(mode: str) -> tuple[Any, Any]:
    global _mode_set
    no_onnxruntime_telemetry()  # PyMuPDF imports its layout models' onnxruntime if installed
    try:
        import pymupdf
        import pymupdf4llm
    except ImportError as exc:
        raise MissingExtraError("PDF parsing (PyMuPDF, AGPL-3.0)", "pdf") from exc
    if in_worker:
        _faster_rect_equality(pymupdf.Rect)
    if _mode_set != mode:
        pymupdf4llm.use_layout(mode == "layout")
        _mode_set = mode
    return pymupdf, pymupdf4llm


# PyMuPDF 2.0's and 2.1's ``Rect.__eq__`` as written, to know it by its code (no docstring:
# that would be one of its constants).
def _known_rect_eq(self: Any, rect: Any) -> bool:
    if not hasattr(rect, "__len__"):
        return False
    return len(rect) == 4 and not (self - rect)


def _faster_rect_equality(rect_class: Any) -> None:
    """``rect_class.__eq__`` (PyMuPDF's ``Rect``) replaced, for two Rects, by one of the
    same result that makes no Rect: all four differences 0, as ``not (self - rect)`` is.
    pymupdf4llm's column detection compares Rects millions of times on pages of many
    small blocks: texlive's hyperref.pdf, 30 pages, 13.2 s of CPU, 7.3 s with it, the
    same Markdown. Left as it is unless its code is the one known (a later PyMuPDF may
    compare otherwise), and never in the caller's process (thread mode)."""
    current = rect_class.__eq__
    known = _known_rect_eq.__code__
    code = getattr(current, "__code__", None)
    if code is None or (code.co_code, code.co_consts, code.co_names) != (
        known.co_code,
        known.co_consts,
        known.co_names,
    ):
        return  # already replaced, or not the code we know

    def __eq__(self: Any, rect: Any) -> bool:
        if type(rect) is not type(self):
            return bool(current(self, rect))
        d = (self.x0 - rect.x0, self.y0 - rect.y0, self.x1 - rect.x1, self.y1 - rect.y1)
        return bool(max(d) == min(d) == 0)

    rect_class.__eq__ = __eq__


def parse_pdf(
    path: str,
    name: str,
    mode: str = "tables",
    max_images: int = 0,
    min_image_bytes: int = 2048,
    pages: range | None = None,
    headers: Any = None,
    drop_running: bool = True,
    ocr: OcrOptions | None = None,
    read_attached: ReadAttached | None = None,
    max_attached: int = 512 * 1024 * 1024,
    file_type: str = "pdf",
) -> ParsedDocument:
    """The PDF as Markdown, a segment per page. With ``pages``, only those (0-based) pages,
    and no error when they hold no text: one range of a split document (see
    :func:`split_plan`), its ``headers`` computed over the whole document, its running
    lines left for :func:`merge_ranges` to judge over every page. With ``ocr``, scanned
    pages (see :func:`_scanned`) are listed in ``scans``, to be read by
    :func:`read_pages`; running lines and the want of text are then judged after.

    With ``read_attached``, the files attached to the PDF (see :func:`_attached`) follow
    its pages, read by it, at most ``max_attached`` bytes of them; a range reads them
    when it holds the last page."""
    with PDF_LOCK:
        parsed = _parse(
            path, name, mode, max_images, min_image_bytes, pages, headers, ocr,
            read_attached, max_attached, file_type,
        )  # fmt: skip
    if pages is None and not parsed.scans:
        if drop_running:
            parsed.segments = drop_running_lines(parsed.segments, parsed.scanned)
        if not parsed.segments and not parsed.images:  # a scan, maybe stamped 'Page 3'
            raise no_text_error(name, ocr)
    return parsed


@dataclass
class SplitPlan:
    """A PDF long enough to parse in page ranges on several workers at once."""

    pages: int
    headers: Any  # pymupdf4llm's IdentifyHeaders over every page (picklable), or None
    warnings: list[str] = field(default_factory=list)


def split_plan(path: str, name: str, mode: str, min_pages: int) -> SplitPlan | None:
    """A :class:`SplitPlan` for a PDF of at least ``2 * min_pages`` pages, else None.

    The heading sizes come from the whole document, once (~1 ms a page, measured), so
    that every range marks the same font sizes as the same heading levels."""
    with PDF_LOCK:
        pymupdf, pymupdf4llm = _import(mode)
        with _open(pymupdf, path, name) as doc:
            if doc.page_count < 2 * min_pages:
                return None
            headers = None if mode == "layout" else pymupdf4llm.IdentifyHeaders(doc)
            return SplitPlan(doc.page_count, headers)


def page_ranges(pages: int, parts: int) -> list[range]:
    """``pages`` cut into ``parts`` contiguous ranges of (nearly) equal length."""
    cuts = [round(i * pages / parts) for i in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def merge_ranges(
    name: str,
    parts: list[ParsedDocument],
    max_images: int,
    drop_running: bool = True,
    ocr: OcrOptions | None = None,
) -> ParsedDocument:
    """One document from its ranges' parses, in page order (``ocr``: the ranges' OCR
    options, for the error of no text)."""
    segments = [s for part in parts for s in part.segments]
    scans = [n for part in parts for n in part.scans]
    scanned = [n for part in parts for n in part.scanned]
    if drop_running and not scans:
        segments = drop_running_lines(segments, scanned)
    warnings = list(dict.fromkeys(w for part in parts for w in part.warnings))
    parsers = list(dict.fromkeys(part.parser for part in parts))
    images: list[Image] = []
    seen: set[bytes] = set()
    for image in (i for part in parts for i in part.images):
        if image.data not in seen and len(images) < max_images:  # a logo on every page
            seen.add(image.data)
            images.append(image)
    if not segments and not images and not scans:
        raise no_text_error(name, ocr)
    return ParsedDocument(
        "pdf",
        segments,
        parser="+".join(parsers),
        pages=parts[0].pages,
        warnings=warnings,
        images=images,
        scans=scans,
        scanned=scanned,
        members={k: v for part in parts for k, v in part.members.items()},
    )


# Lines looked at for running headers and footers: this many at each end of a page.
_EDGE_LINES = 3
_DIGITS = re.compile(r"\d+")


def _running_key(line: str) -> str | None:
    """A line as compared across pages (digits alike: 'Page 3 of 12'), or None for a
    line never taken as a running one: a heading (a chapter's title at the top of its
    page) or a table row (a table's header repeated on each page it spans)."""
    line = " ".join(line.split())
    if not line or len(line) > 160 or line.startswith(("#", "|")):
        return None
    return _DIGITS.sub("0", line).casefold()


def _block_size(lines: list[str], i: int) -> int:
    """Lines in the run of non-blank lines holding line ``i``."""
    start = end = i
    while start > 0 and lines[start - 1].strip():
        start -= 1
    while end + 1 < len(lines) and lines[end + 1].strip():
        end += 1
    return end - start + 1


def drop_running_lines(segments: list[Segment], scanned: Collection[int] = ()) -> list[Segment]:
    """The pages without their running headers and footers: a line among the first or
    last few of a page, in a block of at most two lines, that recurs, digits aside, at an
    end of at least 3 pages and 40% of them, and is not all there is on half of them or
    more (a page in ``scanned`` aside: its stamp is not its text, its image is). Left in,
    'ACME - Confidential' and 'Page 7 of 90' sat inside every paragraph that crossed a
    page, and in every chunk's vector. The files attached after the pages
    (``Segment.member``) are left as they are."""
    attached = [s for s in segments if s.member is not None]
    if attached:
        pages_only = [s for s in segments if s.member is None]
        return drop_running_lines(pages_only, scanned) + attached
    if len(segments) < 3:
        return segments
    pages: list[tuple[list[str], dict[int, str]]] = []  # lines, and keys of edge lines
    found: Counter[str] = Counter()
    for segment in segments:
        lines = segment.text.split("\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        near = set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:])
        # Only a block of one or two lines: a paragraph's first line repeats too, when
        # pages hold the same form or letter.
        keys = {
            i: key
            for i in near
            if _block_size(lines, i) <= 2 and (key := _running_key(lines[i])) is not None
        }
        pages.append((lines, keys))
        found.update(set(keys.values()))
    least = max(3, 0.4 * len(segments))
    running = {key for key, count in found.items() if count >= least}
    # A line that is all its page holds, on half of the pages it is on or more, is the pages'
    # text (a deck's one title a slide, qpdf's "Potato 7" test pages), not a header over
    # it: dropped, such a document had been refused as one without text.
    alone: Counter[str] = Counter()
    for segment, (lines, keys) in zip(segments, pages, strict=True):
        if segment.page in scanned:
            continue
        if not any(line.strip() and keys.get(i) not in running for i, line in enumerate(lines)):
            alone.update(key for key in set(keys.values()) if key in running)
    running = {key for key in running if 2 * alone[key] < found[key]}
    if not running:
        return segments
    kept: list[Segment] = []
    for segment, (lines, keys) in zip(segments, pages, strict=True):
        drop = {i for i, key in keys.items() if key in running}
        text = "\n".join(line for i, line in enumerate(lines) if i not in drop)
        if text.strip():
            kept.append(dataclasses.replace(segment, text=text))
    return kept


def no_text_error(name: str, ocr: OcrOptions | None, scanned: int = 0) -> EmptyDocumentError:
    """A PDF with no text: after OCR read its ``scanned`` pages, with OCR on and no page
    that looks scanned, or saying how to have scans read."""
    # Each said as it is: sphinx's image-only test PDFs, read by OCR and found blank, had
    # said OCR was off.
    if scanned:
        return EmptyDocumentError(
            f"{name}: no extractable text, and OCR found none on its {scanned} scanned page(s)"
        )
    if ocr is not None:
        return EmptyDocumentError(
            f"{name}: no extractable text, and no page looks scanned (a page-sized image, "
            "or text drawn as outlines) for OCR to read"
        )
    # The words a document left unread for want of OCR says (UNREAD_SCANS): a mail
    # holding this PDF is read again once OCR is on.
    return EmptyDocumentError(
        f"{name}: no extractable text: its pages, scans maybe, {UNREAD_SCANS} "
        "(pip install 'rag-ingest[ocr]')"
    )


def _images(doc: Any, limit: int, min_bytes: int, pages: range) -> list[Image]:
    found: list[Image] = []
    seen: set[int] = set()
    for index in pages:
        for info in doc[index].get_images(full=True):
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
                found.append(Image(data, f"image/{extracted.get('ext', 'png')}", page=index + 1))
    return found


_FORMATS = {"pdf": "PDF", "xps": "XPS document", "mobi": "MOBI e-book"}


def _ends_whole(path: str) -> bool:
    """Whether the file's last KiB (past trailing NULs and white space, as some writers
    pad it, up to ``_TAIL`` bytes) holds ``%%EOF``, where readers look for a PDF's end:
    a cut file's does not."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _TAIL))
        tail = f.read()
    return b"%%EOF" in tail.rstrip(b"\0 \t\r\n")[-1024:]


_TAIL = 64 * 1024


def _open(pymupdf: Any, path: str, name: str, file_type: str = "pdf") -> Any:
    """The open document (a PDF, or an XPS, which MuPDF reads as it reads a PDF), or the
    typed error: unreadable, encrypted, or cut short and repaired."""
    try:
        doc = pymupdf.open(path, filetype=file_type)
    except Exception as exc:  # PyMuPDF raises FileDataError, RuntimeError, ValueError...
        # PyMuPDF names the path: a download's or an archive's scratch file, not the source.
        why = str(exc).replace(f"file '{path}'", "the file").replace(f"'{path}'", "the file")
        raise CorruptDocumentError(f"{name}: not a readable {_FORMATS[file_type]} ({why})") from exc
    if doc.needs_pass:
        doc.close()
        raise EncryptedDocumentError(f"{name}: the {_FORMATS[file_type]} is password-protected")
    if doc.is_repaired and not _ends_whole(path):
        doc.close()
        # MuPDF rebuilt a truncated file: what it recovered is partial. One that still
        # ends as a PDF does (wrong offsets in its cross-reference table, as hand-written
        # and some tools' PDFs have) is read, with a warning (:func:`_parse`).
        raise CorruptDocumentError(
            f"{name}: the PDF is damaged (cut short? MuPDF had to repair it)"
        )
    try:
        pages = doc.page_count
    except RuntimeError:  # MuPDF's "Invalid number of pages": a damaged page tree
        pages = 0
    if not pages:
        doc.close()
        # Its page tree damaged (one flipped byte in a /Count): it had been "no extractable
        # text: its pages, scans maybe, not read", as if OCR would find some.
        raise CorruptDocumentError(f"{name}: the {_FORMATS[file_type]} has no pages (damaged?)")
    return doc


def _parse(
    path: str,
    name: str,
    mode: str,
    max_images: int,
    min_image_bytes: int,
    pages: range | None,
    headers: Any,
    ocr: OcrOptions | None = None,
    read_attached: ReadAttached | None = None,
    max_attached: int = 0,
    file_type: str = "pdf",
) -> ParsedDocument:
    pymupdf, pymupdf4llm = _import(mode)
    with _open(pymupdf, path, name, file_type) as doc:
        wanted = pages if pages is not None else range(doc.page_count)
        warnings: list[str] = []
        parser = f"pymupdf4llm-{mode}"
        if doc.is_repaired:  # each range says it; merge_ranges keeps it once
            warnings.append("the PDF is damaged (MuPDF repaired it): some text may be missing")
        fields = _forms(pymupdf, doc, wanted)
        comments = _comments(doc, wanted)  # before pymupdf4llm bakes them away
        pictures = _figure_alts(doc, wanted)  # before pymupdf4llm drops the structure tree
        attaching = doc.is_pdf and read_attached is not None and wanted.stop >= doc.page_count
        annotated = _annotated(pymupdf, doc) if attaching else []
        try:
            with _merged_cells_once(pymupdf):
                segments = _markdown_pages(pymupdf4llm, doc, mode, wanted, headers)
        except Exception as exc:  # a pymupdf4llm bug must not lose the document
            warnings.append(f"pymupdf4llm failed ({type(exc).__name__}: {exc}); plain text used")
            parser = "pymupdf-text"
            try:
                segments = [Segment(doc[i].get_text(), page=i + 1) for i in wanted]
            except Exception as exc2:
                raise CorruptDocumentError(f"{name}: no text could be extracted ({exc2})") from exc2
        if parser != "pymupdf-text":
            segments = [_hyphen_kept(doc, s) for s in segments]
        segments = [
            dataclasses.replace(s, text=_one_blank_line(_without_leaders(_links_joined(s.text))))
            for s in segments
        ]
        # A page of glyphs with no Unicode meaning says nothing: a scan for OCR to read,
        # its own text left out (pdf.js's complex_ttf_font.pdf had been stored as chunks
        # of "��� **��** ���").
        unreadable = {s.page for s in segments if _unreadable(s.text)}
        segments = [
            dataclasses.replace(s, text="") if s.page in unreadable else s for s in segments
        ]
        if any(fields.values()):
            segments = _after_pages(segments, fields, "Form fields:")
        if any(comments.values()):
            segments = _after_pages(segments, comments, "Comments:")
        own = {s.page: s.text for s in segments}
        scanned = [
            i + 1 for i in wanted if i + 1 in unreadable or _scanned(doc[i], own.get(i + 1, ""))
        ]
        scans = scanned if ocr is not None else []
        if ocr is None and scanned:  # said, not silent (a PDF of scans only fails, saying so)
            warnings.append(f"{len(scanned)} scanned page(s) ({spans(scanned)}) {UNREAD_SCANS}")
        # After the scanned pages are told: a scan's alternative text is not its text.
        # One the page's text holds already (a caption written out again) is left out.
        pictures = {n: [a for a in alts if a not in own.get(n, "")] for n, alts in pictures.items()}
        if any(pictures.values()):
            segments = _after_pages(segments, pictures, "Pictures:")
        page_count = doc.page_count
        images = _images(doc, max_images, min_image_bytes, wanted) if max_images else []
        segments = [s for s in segments if s.text.strip()]
        members: dict[str, tuple[str, str | None]] = {}
        if attaching:
            assert read_attached is not None
            for filename, data in _attached(doc, annotated, max_attached, warnings):
                got = read_attached(data, filename, warnings)
                if got is not None:
                    attach(segments, members, got, filename, f"## Attachment: {filename}", warnings)
    return ParsedDocument(
        file_type,
        segments,
        parser=parser,
        pages=page_count,
        warnings=warnings,
        images=images,
        scans=scans,
        scanned=scanned,
        members=members,
    )


# An e-invoice's own content again, as XML for machines (ZUGFeRD, Factur-X, XRechnung,
# Order-X): read, it doubled the invoice's chunks in tags.
_INVOICE_XML = frozenset({"factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "order-x.xml"})


def _attached(
    doc: Any, annotated: list[tuple[str, int]], budget: int, warnings: list[str]
) -> Iterator[tuple[str, bytes]]:
    """The files attached to the PDF, ``(name, bytes)`` one at a time: its embedded files
    (a portfolio's, whose cover page may say nothing else), then those of its file
    attachment annotations (``annotated``: see :func:`_annotated`). The same file twice
    is given once; one past what is left of ``budget`` bytes, or one MuPDF cannot
    extract, is a warning."""
    seen: set[tuple[str, bytes]] = set()

    def take(name: str, size: int, get: Callable[[], bytes]) -> tuple[str, bytes] | None:
        nonlocal budget
        name = PurePosixPath(name.replace("\\", "/")).name or "attachment"
        if name.casefold() in _INVOICE_XML:
            warnings.append(f"attachment {name}: the e-invoice's XML (the PDF's own content)")
            return None
        if size > budget:
            warnings.append(f"attachment {name}: {size} bytes, past the {budget} left to read")
            return None
        try:
            data = get()
            if data is None:  # what the name tree or annotation points to is no stream
                raise ValueError("not a stream")
        except Exception as exc:  # MuPDF's errors on a broken stream
            warnings.append(f"attachment {name}: could not be extracted ({exc})")
            return None
        key = (name, hashlib.sha256(data).digest())
        if len(data) > budget or key in seen:
            if key not in seen:
                warnings.append(f"attachment {name}: {len(data)} bytes, past the {budget} left")
            return None
        seen.add(key)
        budget -= len(data)
        return name, data

    try:
        count = doc.embfile_count()
    except Exception:  # a broken name tree: the pages are read all the same
        count = 0
    for i in range(count):
        try:
            info = doc.embfile_info(i)
        except Exception as exc:  # a broken file specification
            warnings.append(f"attached file {i + 1}: could not be read ({exc})")
            continue
        name = info.get("ufilename") or info.get("filename") or info.get("name") or ""
        got = take(name, max(0, info.get("size") or 0), functools.partial(doc.embfile_get, i))
        if got is not None:
            yield got
    for name, xref in annotated:
        size = doc.xref_get_key(xref, "Params/Size")[1]  # "null" when it says none
        got = take(
            name, int(size) if size.isdigit() else 0, functools.partial(doc.xref_stream, xref)
        )
        if got is not None:
            yield got


def _annotated(pymupdf: Any, doc: Any) -> list[tuple[str, int]]:
    """The files of the PDF's file attachment annotations, page by page: each one's name
    and the xref of its stream, found before pymupdf4llm bakes the annotations into
    their pages (after, they were gone; the streams stay)."""
    found = []
    try:
        for number in range(doc.page_count):
            # The page's own dictionary first: loading every page of a long PDF costs more.
            if doc.xref_get_key(doc.page_xref(number), "Annots")[0] == "null":
                continue
            page = doc[number]  # held: an annotation of a page let go reads nothing
            for annot in page.annots(types=[pymupdf.PDF_ANNOT_FILE_ATTACHMENT]):
                kind, ref = doc.xref_get_key(annot.xref, "FS/EF/F")
                if kind == "xref":
                    found.append((annot.file_info.get("filename") or "", int(ref.split()[0])))
    except Exception:  # MuPDF's errors on a broken annotation: the pages are read all the same
        pass
    return found


def _forms(pymupdf: Any, doc: Any, wanted: range) -> dict[int, list[str]]:
    """The filled fields of each page of ``wanted`` (see :func:`_form_fields`); none when
    MuPDF cannot read the form: its pages' text is read all the same."""
    try:
        return {i + 1: _form_fields(pymupdf, doc[i]) for i in wanted} if doc.is_form_pdf else {}
    except Exception:  # MuPDF's errors on a broken form (a bad page tree, a bad DA string)
        return {}


# Annotations whose comment is not drawn on the page: a sticky note, and a comment on a
# highlight, a box, a line or an insertion mark. A free-text box's is drawn, and read as
# page text once pymupdf4llm bakes it in; a file attachment's is its file (_attached).
_COMMENTED = frozenset(
    {"Text", "Highlight", "Underline", "StrikeOut", "Squiggly", "Square", "Circle",
     "Polygon", "PolyLine", "Line", "Ink", "Caret"}
)  # fmt: skip


def _comments(doc: Any, wanted: range) -> dict[int, list[str]]:
    """The comments on each page of ``wanted`` (``Comment (Ann): text``, a reply
    ``Reply (Bob): text``), each said once a page; none when MuPDF cannot read them.
    pymupdf4llm leaves them out (a reviewer's "figures from the Q3 audit" was lost)."""
    found: dict[int, list[str]] = {}
    try:
        if not doc.is_pdf or not doc.has_annots():
            return {}
        for index in wanted:
            lines: list[str] = []
            for annot in doc[index].annots():
                if annot.type[1] not in _COMMENTED:
                    continue
                text = " ".join((annot.info.get("content") or "").split())
                who = annot.info.get("title") or ""
                said = "Reply" if annot.irt_xref else "Comment"
                line = comment_line(said, who, "", text)
                if text and line not in lines:
                    lines.append(line)
            found[index + 1] = lines
    except Exception:  # MuPDF's errors on a broken annotation: the pages are read all the same
        return found
    return found


# A tagged PDF's structure elements that stand for a picture and may carry its /Alt.
_FIGURES = frozenset({"/Figure", "/Formula"})
# At most this many structure elements are looked at (an annual report's tree: ~28,000,
# 0.5 s).
_MAX_STRUCTURE = 50_000
_REFERENCE = re.compile(r"(\d+) \d+ R")
_INLINE_DICT = re.compile(r"<<.*?>>", re.DOTALL)
_ROLE = re.compile(r"/([^\s/<>\[\]()]+)\s*/([^\s/<>\[\]()]+)")


def _figure_alts(doc: Any, wanted: range) -> dict[int, list[str]]:
    """The alternative text of each page's figures and formulas (a tagged PDF's ``/Alt``,
    as Word, InDesign and Acrobat write an accessible PDF's), in the structure tree's
    order, each once a page; none an editor wrote itself (see :func:`alt_text`).
    pymupdf4llm reads none (it drops the tree): a chart's "The line graph shows five
    year performance ..." was lost."""
    found: dict[int, list[str]] = {}
    try:
        if not doc.is_pdf:
            return found
        kind, value = doc.xref_get_key(doc.pdf_catalog(), "StructTreeRoot")
        if kind != "xref":
            return found
        root = int(value.split()[0])
        kind, value = doc.xref_get_key(root, "RoleMap")
        roles = dict(_ROLE.findall(value)) if kind == "dict" else {}
        numbers = {doc.page_xref(i): i + 1 for i in wanted}
        stack, seen = [root], set[int]()
        while stack and len(seen) < _MAX_STRUCTURE:
            xref = stack.pop()
            if xref in seen:
                continue
            seen.add(xref)
            kind, kids = doc.xref_get_key(xref, "K")
            _, role = doc.xref_get_key(xref, "S")
            if f"/{roles.get(role[1:], role[1:])}" in _FIGURES:
                kind_alt, alt = doc.xref_get_key(xref, "Alt")
                number = numbers.get(_structure_page(doc, xref, kids))
                if kind_alt == "string" and number is not None:
                    text = alt_text(None, alt)
                    if text and text not in found.setdefault(number, []):
                        found[number].append(text)
            if kind == "xref":
                stack.append(int(kids.split()[0]))
            elif kind == "array":
                refs = _REFERENCE.findall(_INLINE_DICT.sub("", kids))
                stack.extend(int(r) for r in reversed(refs))  # in document order
    except Exception:  # MuPDF's errors on a broken tree: the pages are read all the same
        pass
    pages = sorted(found)
    return dict(zip(pages, first_of_running([found[n] for n in pages]), strict=True))


def _structure_page(doc: Any, xref: int, kids: str) -> int:
    """The page object a structure element is on: its own ``/Pg``, else its marked
    content's (``<</Type/MCR/Pg ...>>`` among its kids), else its nearest ancestor's."""
    kind, value = doc.xref_get_key(xref, "Pg")
    if kind == "xref":
        return int(value.split()[0])
    marked = re.search(r"/Pg\s*(\d+) \d+ R", kids)
    if marked:
        return int(marked[1])
    for _ in range(64):
        kind, value = doc.xref_get_key(xref, "P")
        if kind != "xref":
            break
        xref = int(value.split()[0])
        kind, value = doc.xref_get_key(xref, "Pg")
        if kind == "xref":
            return int(value.split()[0])
    return 0


def _form_fields(pymupdf: Any, page: Any) -> list[str]:
    """A page's filled form fields, ``label: value`` each, its widgets then taken off the
    page (in memory): their shown values had come out as page text away from their
    labels, in the box's font size (a name as a heading, a tick as "### 3")."""
    widgets = list(page.widgets())
    if not widgets:
        return []
    found = []
    for widget in widgets:
        kind = widget.field_type
        if kind in (pymupdf.PDF_WIDGET_TYPE_CHECKBOX, pymupdf.PDF_WIDGET_TYPE_RADIOBUTTON):
            value = "yes" if widget.field_value not in (None, "", "Off", False) else "no"
        elif kind in (
            pymupdf.PDF_WIDGET_TYPE_TEXT,
            pymupdf.PDF_WIDGET_TYPE_COMBOBOX,
            pymupdf.PDF_WIDGET_TYPE_LISTBOX,
        ):
            value = " ".join(str(widget.field_value or "").split())
        else:
            continue  # a button or a signature: no value to read
        found.append((widget.rect, widget.field_label, widget.field_name, value))
    for widget in widgets:
        page.delete_widget(widget)
    words = page.get_text("words")
    return [
        f"{label or _label_beside(words, rect) or name or 'field'}: {value}"
        for rect, label, name, value in found
        if value and value != "no"
    ]


def _label_beside(words: list[Any], rect: Any) -> str:
    """The words just left of a field's box on its line: its label as printed."""
    middle = (rect.y0 + rect.y1) / 2
    line = sorted(
        (w for w in words if w[1] <= middle <= w[3] and w[2] <= rect.x0 + 2), key=lambda w: w[0]
    )
    label: list[Any] = []
    for word in reversed(line):
        if len(label) == 8 or (label and label[0][0] - word[2] > 20):
            break  # a gap wide enough to be another column
        label.insert(0, word)
    return " ".join(w[4] for w in label).rstrip(":")


def _after_pages(
    segments: list[Segment], found: dict[int, list[str]], heading: str
) -> list[Segment]:
    """Each page's text with what was ``found`` on it (its filled fields, its comments)
    listed after it, under ``heading``."""
    pages = {s.page: s for s in segments}
    for number, filled in found.items():
        if filled:
            own = pages.get(number)
            if own is not None and own.text.strip():
                pages[number] = dataclasses.replace(own, text=after_text(own.text, filled, heading))
            else:
                pages[number] = Segment(after_text("", filled, heading), page=number)
    return [pages[n] for n in sorted(pages, key=lambda n: n or 0)]


# A contents line's dot leaders before its page number (pymupdf4llm puts italics round
# them, '4.1 Schema functions _. . . . . . ._ 8', or, set in a monospaced font, a code
# span: 'Chapter 1 `........ 2`', TCPDF's).
_LEADERS = re.compile(
    r"[ \t]*[_`]?(?:[ \t]*\.){4,}[ \t]*_?[ \t]*(\d+|[ivxlcdm]+)\**`?[ \t]*$", re.M
)
_SPACED_DOTS = re.compile(r"(?: \.){4,}")  # one run into the next entry on its line


def _without_leaders(text: str) -> str:
    """A contents page's lines without their dot leaders: 30-90 tokens of dots a line,
    which made every contents chunk alike to an embedder."""
    return _SPACED_DOTS.sub(" …", _LEADERS.sub(r" … \1", text))


# A link pymupdf4llm wrote a line at a time, its URL after each line's words: a wrapped
# link's words parted, and its URL said again on every line (pandoc's test documents
# LibreOffice saved as PDF: twice the tokens of the same DOCX).
_SPLIT_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]+)\)[ \t]*\n[ \t]*\[([^\]\n]*)\]\(\2\)")


def _links_joined(text: str) -> str:
    """``text`` with each link split over lines one link, its words joined by a space."""
    while "](" in text:
        joined = _SPLIT_LINK.sub(lambda m: f"[{m[1]} {m[3]}]({m[2]})", text)
        if joined == text:
            break
        text = joined  # each pass joins pairs: a link over 8 lines takes 3
    return text


_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")  # two or more blank lines
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)")


def _one_blank_line(text: str) -> str:
    """``text`` with each run of blank lines as one, outside code fences. pymupdf4llm
    wrote from none to three more between two paragraphs of one page of zlib's
    ``crc-doc.1.0.pdf``, differently from one run to the next (4 texts in 12 parses of
    it), so its chunks' text, IDs and stored vectors changed on every re-ingest;
    Markdown reads any number as one."""
    if "```" not in text and "~~~" not in text:
        return _BLANK_LINES.sub("\n\n", text)
    kept: list[str] = []
    fenced = blank = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and not line.strip():
            if blank:
                continue
            blank = True
            kept.append("")
            continue
        blank = False
        kept.append(line)
    return "\n".join(kept)


_ENDS_IN_WORD = re.compile(r"([^\W\d_]+)\s*$")


def _hyphen_kept(doc: Any, segment: Segment) -> Segment:
    """``segment`` with the hyphen its page ends in: pymupdf4llm drops a line-end hyphen
    (it joins the word with the next line's), so a word cut across a page break came
    out as two ('pay' 'ment'); chunking joins it when it has its hyphen."""
    found = _ENDS_IN_WORD.search(segment.text[-200:])
    if found is None or segment.page is None:
        return segment
    # Among the page's last lines: a running footer may come after it.
    last = "\n".join(doc[segment.page - 1].get_text().rstrip().splitlines()[-4:])
    if re.search(rf"\b{re.escape(found.group(1))}-[ \t]*$", last, re.MULTILINE):
        return dataclasses.replace(segment, text=segment.text.rstrip() + "-")
    return segment


def _markdown_pages(
    pymupdf4llm: Any, doc: Any, mode: str, wanted: range, headers: Any
) -> list[Segment]:
    """pymupdf4llm Markdown, one segment per page of ``wanted``.

    In "tables" mode, table detection (~80% of the time per page, measured) only runs
    on pages that have vector graphics: pymupdf4llm's table finder works from drawn
    lines, so a page without drawings cannot yield a table, and its Markdown is the
    same without the search (checked equal on text-only and ruled-table pages). Nor
    does such a page need pymupdf4llm's background colour, which only sorts out drawn
    fills (four pixmaps a page, 16% of the corpus's PDF time), or its second look for
    drawings. In "fast" mode every page is read so, its drawings ignored: with them,
    pymupdf4llm left out the text inside a drawn grid (a table's cells were lost).
    """
    if mode == "layout":
        # Its own OCR off: scans are read by ours (batched, time-limited, chunks marked
        # ocr), and looking for an OCR engine printed messages on every call.
        chunks = pymupdf4llm.to_markdown(
            doc, pages=list(wanted), page_chunks=True, show_progress=False, use_ocr=False
        )
        return [
            Segment(str(c.get("text", "")), page=_page_number(c, wanted.start + i))
            for i, c in enumerate(chunks)
        ]
    ruled = [i for i in wanted if mode == "tables" and doc[i].get_drawings()]
    drawn = set(ruled)
    plain = [i for i in wanted if i not in drawn]
    header_info = headers or pymupdf4llm.IdentifyHeaders(doc)  # once, not once per call

    def markdown(pages: list[int], options: dict[str, Any]) -> list[str]:
        """Each page's Markdown; read again without images when pymupdf4llm fails on
        one (an image MuPDF cannot decode, 'Failed to read JPX header', had left the
        whole PDF to plain text)."""
        try:
            chunks = pymupdf4llm.to_markdown(
                doc,
                pages=pages,
                page_chunks=True,
                show_progress=False,
                hdr_info=header_info,
                **options,
            )
        except Exception:
            if options.get("ignore_images"):
                raise
            return markdown(pages, {**options, "ignore_images": True})
        return [_MARK.sub("", str(chunk.get("text", ""))) for chunk in chunks]

    by_page: dict[int, str] = {}
    text_only = {"table_strategy": None, "detect_bg_color": False, "ignore_graphics": True}
    for subset, options in ((ruled, {}), (plain, text_only)):
        if subset:
            by_page.update(
                (index + 1, text)
                for index, text in zip(subset, markdown(subset, options), strict=True)
            )
    for index in wanted:
        number = index + 1
        text = by_page.get(number, "")
        page = doc[index]
        found = letters(text)
        # Where pymupdf4llm can lose text: over a picture, in a drawing it read, or all of
        # a page set turned. Its plain text costs ~0.5 ms a page, 5% of a simple page's
        # parse: not spent on the others.
        if not (index in drawn or found < _SCAN_LETTERS or page.get_images()):
            continue
        whole = letters(page.get_text())
        if not _lost(whole, found):
            continue
        # Without its drawings and images: pymupdf4llm skips the text it finds over
        # either, taking it for part of a picture.
        (again,) = markdown([index], {**text_only, "ignore_images": True})
        if (more := letters(again)) > found:
            text, found = again, more
        if _lost(whole, found) and _takes_alpha(pymupdf4llm) and _drawn_through(page):
            # Text MuPDF reports as transparent, but shown: drawn as a clip or filled
            # with a pattern (a gradient title). Invisible text (render mode 3, a hidden
            # prompt) makes the page keep skipping it.
            (again,) = markdown([index], {**text_only, "ignore_images": True, "ignore_alpha": True})
            if (more := letters(again)) > found:
                text, found = again, more
        if _lost(whole, found):
            text = f"{text.rstrip()}\n\n{_rotated_text(page)}".strip()
        by_page[number] = text
    return [Segment(text, page=number) for number, text in sorted(by_page.items())]


@contextlib.contextmanager
def _merged_cells_once(pymupdf: Any) -> Iterator[None]:
    """While pymupdf4llm writes a page: PyMuPDF's table Markdown with a merged cell's text
    once, where the cell starts, no made-up names for a header's empty cells, and no
    empty rows or columns.

    Its default copies a merged cell's text into every row and column it spans, and
    names an empty header cell ``ColN``. A form laid out as a grid came out many times
    its size: the IRS's 1040 in pdf.js's tests, 9,226 characters as pdftotext reads it,
    went past 200,000. Scoped (a nested parse restores in turn), the caller's own
    PyMuPDF calls keep the default. A PyMuPDF without this table class is left as it is:
    an error here would leave the whole PDF to plain text."""
    table = getattr(getattr(pymupdf, "table", None), "Table", None)
    given = getattr(table, "to_markdown", None)
    if table is None or given is None:
        yield
        return

    def to_markdown(self: Any, clean: bool = False, fill_empty: bool = True) -> str:
        markdown = _labels_down(self, given(self, clean=clean, fill_empty=False))
        return without_empty_rows_and_columns(_unnamed_columns(markdown))

    table.to_markdown = to_markdown
    try:
        yield
    finally:
        table.to_markdown = given


def _labels_down(table: Any, markdown: str) -> str:
    """PyMuPDF's Markdown of ``table`` (written with ``fill_empty=False``) with each short
    label merged over rows written in each row it spans; left as it is where its lines
    do not match the table's rows cell for cell (a ``|`` in a cell), or where PyMuPDF's
    table is not as read here: an error there would leave the whole PDF to plain text."""
    try:
        return _with_labels(table, markdown)
    except Exception:  # a later PyMuPDF's rows or boxes, another shape
        return markdown


def _with_labels(table: Any, markdown: str) -> str:
    lines = markdown.split("\n")
    first = 0 if table.header.external else 1  # the table row of the first body line
    rows = table.rows
    written: list[list[str]] = []
    above: dict[int, int] = {}  # column -> the last body row with a cell of its own there
    for k, line in enumerate(lines[2:]):
        if not line and all(not rest for rest in lines[2 + k :]):
            break  # the line break it ends with
        r = k + first
        cells = line[1:-1].split("|")
        if not line.startswith("|") or r >= len(rows) or len(cells) != len(rows[r].cells):
            return markdown
        middle = (rows[r].bbox[1] + rows[r].bbox[3]) / 2
        for c, box in enumerate(rows[r].cells):
            if box is not None:
                above[c] = r
                continue
            start = above.get(c)
            if start is None or rows[start].cells[c][3] <= middle:
                continue  # covered from its left
            label = written[start - first][c]
            if is_label(label) and "<br>" not in label:
                cells[c] = label
        written.append(cells)
    body = ["|" + "|".join(cells) + "|" for cells in written]
    return "\n".join([*lines[:2], *body, *lines[2 + len(written) :]])


def _unnamed_columns(markdown: str) -> str:
    """A Markdown table whose header's ``ColN`` cells (PyMuPDF's names for the N-th
    column's empty header) are empty again."""
    head, newline, rest = markdown.partition("\n")
    cells = head.split("|")
    named = [
        "" if 0 < i < len(cells) - 1 and cell == f"Col{i}" else cell for i, cell in enumerate(cells)
    ]
    return "|".join(named) + newline + rest


# pymupdf4llm's marks for text on a coloured background, and over a rule (MuPDF's
# underline: a box, a table's rule, a root's bar too): tags in every chunk, no meaning.
_MARK = re.compile(r"</?(?:mark|u)>")
# A page whose Markdown has this many letters fewer than its plain text, and less than
# this share of them, lost text (see :func:`_lost`).
_LOST_LETTERS = 50
_LOST_SHARE = 0.8


def _lost(whole: int, found: int) -> bool:
    """Whether pymupdf4llm's Markdown of a page, ``found`` letters of its plain text's
    ``whole``, left out much of it, or all of a little: text it took for part of a
    picture or a drawing (a table's coloured cells: colortbl's German manual lost a whole
    page) and text not set horizontally (a page typeset turned, or a turned label alone:
    pdfminer's ``issue-449-vertical.pdf`` had failed as having no text), which it skips
    by design."""
    return found < _LOST_SHARE * whole and (whole - found >= _LOST_LETTERS or found == 0)


@functools.cache
def _takes_alpha(pymupdf4llm: Any) -> bool:
    """Whether this pymupdf4llm's ``to_markdown`` (its legacy reader's: the public one
    passes its options on) takes ``ignore_alpha`` (2.0's reads transparent text with
    it); an option it does not know would fail every page."""
    reader = getattr(getattr(pymupdf4llm, "helpers", None), "pymupdf_rag", None)
    to_markdown = getattr(reader, "to_markdown", None)
    return to_markdown is not None and "ignore_alpha" in inspect.signature(to_markdown).parameters


# MuPDF's character flag for text drawn as a clipping path (render modes 4-7, and text
# filled with a pattern, which MuPDF paints through the text as a clip).
_CLIPPED = 64


def _drawn_through(page: Any) -> bool:
    """Whether a page has text MuPDF reports as transparent (alpha 0), all of it drawn
    as a clip or through a pattern, none of it invisible (render mode 3, or filled at
    opacity 0: no clip flag)."""
    through = False
    for block in page.get_text("dict")["blocks"]:
        for line in block.get("lines", ()):
            for span in line["spans"]:
                if span["alpha"] == 0 and span["text"].strip():
                    if not span.get("char_flags", 0) & _CLIPPED:
                        return False
                    through = True
    return through


def _rotated_text(page: Any) -> str:
    """The lines of ``page`` not set horizontally, a paragraph a block. A block of
    vertical writing (a column of Japanese set top to bottom, where MuPDF makes each
    glyph a line) is one run of text: it had been a character a line."""
    blocks = []
    for block in page.get_text("dict")["blocks"]:
        turned = [line for line in block.get("lines", ()) if abs(1 - line["dir"][0]) > 1e-3]
        lines = ["".join(span["text"] for span in line["spans"]).strip() for line in turned]
        if any(lines):
            vertical = all(line.get("wmode") == 1 for line in turned)
            blocks.append(("" if vertical else "\n").join(line for line in lines if line))
    return "\n\n".join(blocks)


def _page_number(page: dict[str, Any], index: int) -> int:
    meta = page.get("metadata") or {}
    number = meta.get("page") or meta.get("page_number")
    return int(number) if number else index + 1


# A page with fewer letters than this over an image covering this share of it is a scan
# (a scanned page stamped 'Page 3', or with an OCR layer a scanner left half empty).
_SCAN_LETTERS = 100
_SCAN_COVER = 0.3


def _unreadable(text: str) -> bool:
    """Whether most of a page's characters have no Unicode meaning: a font without a
    ToUnicode map extracts as U+FFFD."""
    return text.count("\ufffd") > letters(text)


def _scanned(page: Any, text: str) -> bool:
    """Whether a page's text must come from its image: next to no text over a large
    image or drawn as outlines, or text most of whose characters have no Unicode
    meaning (a font without a ToUnicode map extracts as U+FFFD)."""
    if _unreadable(text):
        return True
    found = letters(text)
    if found >= _SCAN_LETTERS:
        return False
    area = abs(page.rect)
    covered = 0.0
    for info in page.get_image_info():
        box = page.rect & info["bbox"]  # the part on the page
        covered += abs(box) if not box.is_empty else 0.0
    return bool(area > 0 and covered / area >= _SCAN_COVER) or _outlined(page, found)


# Text converted to outlines (a poster's, a print-ready advert's, a chart's labels) is
# filled paths, a glyph or a word each: this many glyph-sized ones on a page of next to
# no text, and this many times its letters, are text for OCR to read (ocrmypdf's
# vector.pdf). Fewer may be a chart's markers beside its own labels, which OCR would
# read worse than the page gives them.
_OUTLINE_GLYPHS = 20
_OUTLINES_PER_LETTER = 4


def _outlined(page: Any, found: int) -> bool:
    """Whether a page with ``found`` letters of its own draws text as outlines:
    glyph-sized filled paths (smaller than a twelfth of the page's height and a third of
    its width), rectangles aside (boxes, rules, a barcode's bars)."""
    rect = page.rect
    least = max(_OUTLINE_GLYPHS, _OUTLINES_PER_LETTER * found)

    def glyph_sized(box: Any) -> bool:
        x0, y0, x1, y1 = box
        return bool(0 < y1 - y0 <= rect.height / 12 and 0 < x1 - x0 <= rect.width / 3)

    try:
        # The log of what the page draws is cheap; its paths' shapes only if it may tell.
        log = page.get_bboxlog()
        if sum(kind == "fill-path" and glyph_sized(box) for kind, box in log) < least:
            return False
        glyphs = 0
        for path in page.get_cdrawings():
            if "f" in path.get("type", "") and glyph_sized(path["rect"]):
                glyphs += any(item[0] not in ("re", "qu") for item in path["items"])
    except Exception:  # a page MuPDF cannot draw must not fail the document's text
        return False
    return glyphs >= least


def read_pages(path: str, name: str, numbers: list[int], ocr: OcrOptions) -> list[Segment]:
    """Pages ``numbers`` (1-based) of a PDF (or an XPS: MuPDF goes by its content) read by
    OCR from their rendered image."""
    from rag_ingest.ocr import Lie, layout, recognize

    read = []
    lie = Lie()
    for at in range(0, len(numbers), _RENDER_AHEAD):
        group = numbers[at : at + _RENDER_AHEAD]
        with PDF_LOCK:  # rendering only: recognition needs no PyMuPDF
            pymupdf, _ = _import(_mode_set or "tables")
            with _open(pymupdf, path, name) as doc:
                pixels = [_pixels(pymupdf, doc[number - 1], ocr) for number in group]
        for number, image in zip(group, pixels, strict=True):
            text = layout(recognize(image, ocr.threads, lie))
            read.append(Segment(text, page=number, ocr=True))
    return read


# Pages rendered at a time for OCR (~6 MB each at 150 dpi).
_RENDER_AHEAD = 8


def _pixels(pymupdf: Any, page: Any, ocr: OcrOptions) -> Any:
    """The page rendered for OCR, as an RGB array (no larger than ``ocr.max_side``)."""
    import numpy as np

    longest = max(page.rect.width, page.rect.height, 1.0)
    dpi = max(36, min(ocr.dpi, int(ocr.max_side * 72 / longest)))
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, 3)
