"""DOCX, PPTX, XLSX, HTML and Markdown through docling's format backends (no torch)."""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import mimetypes
import os
import posixpath
import re
import unicodedata
import urllib.parse
import zipfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path, PurePath
from typing import Any
from xml.etree import ElementTree

from rag_ingest.errors import (
    BinaryContentError,
    BlankDocumentError,
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    MissingExtraError,
    ZipBombError,
)
from rag_ingest.parsers.alt_chunks import (
    AltChunk,
    ReadPart,
    into_cells,
    put_back,
    read_all,
    taken_out,
)
from rag_ingest.parsers.alt_text import slide_alt_texts, word_alt_texts
from rag_ingest.parsers.base import (
    CONTENT_TYPES,
    MARKDOWN_HEADING,
    XML_ERRORS,
    ZIP_ERRORS,
    Image,
    ParsedDocument,
    Segment,
    after_text,
    comment_line,
    part_types,
    recovered_xml,
    stored_copy,
    without_model_packages,
)
from rag_ingest.parsers.boilerplate import drop_guessed_chrome
from rag_ingest.parsers.docling_text import (
    as_written,
    glue_html_runs,
    glue_word_runs,
    keep_typography,
    runs_joined,
)
from rag_ingest.parsers.embedded import source_part
from rag_ingest.parsers.markdown_tables import is_label, without_empty_rows_and_columns
from rag_ingest.parsers.pictures import (
    Pictures,
    PictureSource,
    data_uri,
    none_to_read,
    with_markers,
)
from rag_ingest.parsers.symbol_fonts import slide_symbols, word_symbols
from rag_ingest.parsers.text import decode_text
from rag_ingest.parsers.workbook import measure_sheets, parse_rows
from rag_ingest.parsers.xml_parts import tree, written

__all__ = ["check_zip", "decoded_html", "headed", "html_title", "parse_html", "parse_office"]


def check_zip(path: str, name: str, max_size: int, max_ratio: float) -> None:
    """Refuse a zip package (OOXML, OpenDocument, EPUB...) whose members expand past the
    limits, or are encrypted, before parsing."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                if info.flag_bits & 0x41:  # encrypted, or strongly (zipfile reads neither)
                    # Had failed untyped: "NotImplementedError: strong encryption".
                    raise EncryptedDocumentError(
                        f"{name}: its part {info.filename!r} is encrypted (zip encryption)"
                    )
                total += info.file_size
                if total > max_size:
                    raise ZipBombError(f"{name}: expands past {max_size} bytes")
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > 1024 * 1024 and ratio > max_ratio:
                    raise ZipBombError(
                        f"{name}: member {info.filename!r} is compressed {ratio:.0f}:1"
                    )
    except zipfile.BadZipFile as exc:
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc


# docling's backends made faster where they spend time on what we do not read (see
# _font_check_first and _slide_numbers_only); tests turn it off to compare.
_SPEEDUPS = True


def _backend(kind: str) -> tuple[Any, Any]:
    backend: Any
    try:
        # A worker's first document of a type imports its backend: torch hidden.
        with without_model_packages():
            from docling.datamodel.base_models import InputFormat
            from docling.datamodel.document import InputDocument  # noqa: F401 - imported shielded

            if kind == "docx":
                from docling.backend.msword_backend import MsWordDocumentBackend as backend

                if _SPEEDUPS:
                    _font_check_first(backend)
                glue_word_runs(backend)
            elif kind == "pptx":
                from docling.backend.mspowerpoint_backend import (
                    MsPowerpointDocumentBackend as backend,
                )

                if _SPEEDUPS:
                    _slide_numbers_only(backend)
            elif kind == "xlsx":
                from docling.backend.msexcel_backend import MsExcelDocumentBackend as backend

                _numbers_as_shown(backend)
            elif kind == "html":
                from docling.backend.html_backend import HTMLDocumentBackend as backend

                keep_typography(backend)
                glue_html_runs(backend)
            else:
                from docling.backend.md_backend import MarkdownDocumentBackend as backend
    except ImportError as exc:
        raise MissingExtraError(f"{kind} parsing (docling)", "office") from exc
    formats = {
        "docx": InputFormat.DOCX,
        "pptx": InputFormat.PPTX,
        "xlsx": InputFormat.XLSX,
        "html": InputFormat.HTML,
        "markdown": InputFormat.MD,
    }
    return backend, formats[kind]


def _font_check_first(backend: Any) -> None:
    """Let docling's test for code in a monospaced font look at the fonts first.

    ``_is_code_by_font`` says "code" only when most of a paragraph's text is set in a
    monospaced font, but runs its text tests (regular expressions and a language guess
    over the whole paragraph) before it looks at the fonts: 70% of the parse of a DOCX
    of long prose paragraphs, 23% of one of 500-character ones. A paragraph whose style
    font and run fonts are all proportional cannot pass, so it is answered "no" at
    once; every other paragraph gets docling's own test. The same text as docling's
    own on every DOCX found here; a docling without these names is left as it is.
    """
    import inspect

    check = getattr(backend, "_is_code_by_font", None)
    if check is None or getattr(check, "_fonts_first", False):
        return
    needed = ("_effective_style_font", "_MONOSPACE_FONTS")
    if not all(hasattr(backend, name) for name in needed) or list(
        inspect.signature(check).parameters
    ) != ["self", "paragraph", "style"]:
        return

    @functools.wraps(check)
    def fonts_first(self: Any, paragraph: Any, style: Any) -> bool:
        mono = self._MONOSPACE_FONTS
        if self._effective_style_font(style) not in mono:
            fonts = paragraph._p.xpath(".//w:rFonts/@w:ascii")
            if not any(str(f).strip().lower() in mono for f in fonts):
                return False
        return bool(check(self, paragraph, style))

    fonts_first._fonts_first = True  # type: ignore[attr-defined]
    backend._is_code_by_font = fonts_first


def _numbers_as_shown(backend: Any) -> None:
    """Have docling read a workbook's numbers as its cells show them (their number
    format, parsers/number_formats.py): "8.03%", not 0.0802990325417766. docling reads
    each cell's value with ``str()``; the cells are given their shown text before it
    converts the workbook. A docling without ``_convert_workbook`` is left as it is."""
    convert = getattr(backend, "_convert_workbook", None)
    if convert is None or getattr(convert, "_numbers_shown", False):
        return
    from openpyxl.styles.numbers import BUILTIN_FORMATS

    from rag_ingest.parsers.number_formats import BUILTIN, shown

    @functools.wraps(convert)
    def as_shown(self: Any, doc: Any) -> Any:
        for sheet in getattr(self.workbook, "worksheets", ()):
            for cell in getattr(sheet, "_cells", {}).values():
                value = cell._value
                if cell.data_type == "n" and type(value) in (int, float):
                    fmt, number = cell.number_format, cell._style.numFmtId
                    if BUILTIN_FORMATS.get(number) == fmt:  # not the file's own
                        fmt = BUILTIN.get(number, fmt)
                    text = shown(value, fmt)
                    if text is not None:  # openpyxl's setter would take "= 75%" for a formula
                        cell._value, cell.data_type = text, "s"
        return convert(self, doc)

    as_shown._numbers_shown = True  # type: ignore[attr-defined]
    backend._convert_workbook = as_shown


def _slide_numbers_only(backend: Any) -> None:
    """Give PPTX items their slide number without the box of their shape.

    docling's ``_generate_prov`` reads each shape's left, top, width and height twice,
    and python-pptx finds a placeholder's by searching its layout's and master's shapes
    each time: 65% of the parse of an 80-slide deck of title-and-body slides. Only the
    slide number (``page_no``) is read from it here; the box is left empty (0, 0, 1,
    1). The same text, pages and pictures as docling's own on every deck found here; a
    docling whose method has other parameters is left as it is.
    """
    import inspect

    make = getattr(backend, "_generate_prov", None)
    if make is None or getattr(make, "_slide_only", False):
        return
    if list(inspect.signature(make).parameters) != [
        "self",
        "shape",
        "slide_ind",
        "text",
        "slide_size",
    ]:
        return
    # The very classes docling's method makes them with.
    names = make.__globals__
    if not all(n in names for n in ("BoundingBox", "CoordOrigin", "ProvenanceItem")):
        return
    item = names["ProvenanceItem"]
    empty = names["BoundingBox"](l=0, t=0, r=1, b=1, coord_origin=names["CoordOrigin"].TOPLEFT)

    @functools.wraps(make)
    def slide_only(
        self: Any, shape: Any, slide_ind: int, text: str = "", slide_size: Any = None
    ) -> Any:
        return item(page_no=slide_ind + 1, charspan=(0, len(text)), bbox=empty)

    slide_only._slide_only = True  # type: ignore[attr-defined]
    backend._generate_prov = slide_only


def _pictures(doc: Any, limit: int, min_bytes: int) -> list[Image]:
    found: list[Image] = []
    for picture in getattr(doc, "pictures", [])[:limit]:
        try:
            pil = picture.get_image(doc)
        except Exception:  # a picture docling cannot render costs that picture only
            continue
        if pil is None:
            continue
        buffer = BytesIO()
        pil.save(buffer, format="PNG")
        data = buffer.getvalue()
        page = picture.prov[0].page_no if getattr(picture, "prov", None) else None
        if len(data) >= min_bytes:
            found.append(Image(data, "image/png", page=page))
    return found


def _picture_size(picture: Any) -> tuple[float, float] | None:
    image = getattr(picture, "image", None)  # None: linked, not in the file
    return None if image is None else (image.size.width, image.size.height)


def _ocr_pictures(doc: Any) -> tuple[dict[str, str], Pictures]:
    """The pictures to read by OCR, and a marker for each by its item's reference."""
    markers: dict[str, str] = {}
    pictures = Pictures()
    for picture in getattr(doc, "pictures", []):
        image = getattr(picture, "image", None)
        if image is None:
            continue  # an HTML page's picture: a link docling does not fetch

        def read(picture: Any = picture) -> bytes | None:
            uri = str(picture.image.uri)
            if uri.startswith("data:") and ";base64," in uri:
                return base64.b64decode(uri.partition(",")[2])  # the PNG docling encoded
            try:
                pil = picture.get_image(doc)
            except Exception:  # a picture docling cannot render costs that picture only
                return None
            if pil is None:
                return None
            buffer = BytesIO()
            pil.save(buffer, format="PNG")
            return buffer.getvalue()

        found = pictures.add(image.size.width, image.size.height, read)
        if found:
            markers[picture.self_ref] = found
    return markers, pictures


def _serializer(doc: Any, markers: dict[str, str], page: int | None = None) -> Any:
    """docling's Markdown serializer as ``export_to_markdown(**_PLAIN)`` makes it (of one
    page, or all), a picture to read by OCR written as its marker."""
    from docling_core.transforms.serializer.common import create_ser_result
    from docling_core.transforms.serializer.markdown import (
        MarkdownDocSerializer,
        MarkdownParams,
        MarkdownPictureSerializer,
    )

    class Markers(MarkdownPictureSerializer):
        def _serialize_image_part(self, item: Any, *args: Any, **kwargs: Any) -> Any:
            return create_ser_result(text=markers.get(item.self_ref, ""), span_source=item)

    params = MarkdownParams(**_PLAIN, pages={page} if page is not None else None)
    return MarkdownDocSerializer(
        doc=doc,
        params=params,
        picture_serializer=Markers(),
        text_serializer=_code_fences(),
        inline_serializer=_inline_runs(),
        table_serializer=_merged_cells_once(),
    )


@functools.cache
def _merged_cells_once() -> Any:
    """docling's table serializer, a merged cell written once, where it starts, and no
    empty rows or columns. docling writes a merged cell's text in every row and column it
    spans: a form laid out as a table came out several times its length. A header cell
    over a row of headers below it is still written over each column it spans, naming
    stacked headers' columns whole ("Q1 - Sales", "Q1 - Units")."""
    from docling_core.transforms.serializer.markdown import MarkdownTableSerializer

    class MergedCellsOnce(MarkdownTableSerializer):
        def serialize(self, *, item: Any, **kwargs: Any) -> Any:
            result = super().serialize(item=_spans_once(item), **kwargs)
            # docling escapes a cell's "|" as the HTML entity, which Markdown shows as
            # "|" but a chunk holds as "&#124;" (a page's "Home | About" menu): GFM's
            # own escape instead.
            text = result.text.replace("&#124;", "\\|")
            return result.model_copy(update={"text": without_empty_rows_and_columns(text)})

    return MergedCellsOnce()


def _spans_once(table: Any) -> Any:
    """``table`` (a docling ``TableItem``) with each merged cell written once, where it
    starts, the rest of its span left empty; but a header cell over other headers,
    written over each column it spans, and a label spanning rows, written in each."""
    cells = table.data.table_cells
    # Each column's lowest header cell's first row: one pass, not one over every header
    # cell for each merged one (a table of thousands of header cells).
    lowest: dict[int, int] = {}
    for cell in cells:
        if cell.column_header:
            for column in range(cell.start_col_offset_idx, cell.end_col_offset_idx):
                lowest[column] = max(lowest.get(column, -1), cell.start_row_offset_idx)

    def over_headers(cell: Any) -> bool:
        return cell.column_header and any(
            lowest[column] >= cell.end_row_offset_idx
            for column in range(cell.start_col_offset_idx, cell.end_col_offset_idx)
        )

    def once(cell: Any) -> Any:
        rows = cell.end_row_offset_idx - cell.start_row_offset_idx
        columns = cell.end_col_offset_idx - cell.start_col_offset_idx
        if (rows == 1 and columns == 1) or over_headers(cell):
            return cell
        label = not cell.column_header and is_label(cell.text)
        last_row = cell.end_row_offset_idx if label else cell.start_row_offset_idx + 1
        return cell.model_copy(
            update={
                "row_span": last_row - cell.start_row_offset_idx,
                "col_span": 1,
                "end_row_offset_idx": last_row,
                "end_col_offset_idx": cell.start_col_offset_idx + 1,
            }
        )

    written = [once(cell) for cell in cells]
    if all(new is old for new, old in zip(written, cells, strict=True)):
        return table
    return table.model_copy(update={"data": table.data.model_copy(update={"table_cells": written})})


# A run that starts with punctuation closing a sentence or clause ("<a>docs</a>, or") or
# with a contraction ("<b>Python</b>'s"), and one that ends with an opening bracket: no
# space between them and their neighbour.
_CLOSES = re.compile(r"[.,;:!?)\]}]+(?:\s|$)|['\u2019](?:s|d|ll|re|ve|t|m)\b")
_OPENS = re.compile(r"[(\[{]$")


@functools.cache
def _inline_runs() -> Any:
    """docling's inline serializer, without the space it put before punctuation: it
    joins a paragraph's runs (a link, bold text, the words after them) with a space
    each, so ``See <a>the docs</a>, or <b>bold</b>.`` became ``See [the docs](...) ,
    or **bold** .``."""
    from docling_core.transforms.serializer.common import create_ser_result
    from docling_core.transforms.serializer.markdown import MarkdownInlineSerializer

    class InlineRuns(MarkdownInlineSerializer):
        def serialize(  # type: ignore[override]
            self,
            *,
            item: Any,
            doc_serializer: Any,
            doc: Any,
            list_level: int = 0,
            visited: set[str] | None = None,
            **kwargs: Any,
        ) -> Any:
            parts = doc_serializer.get_parts(
                item=item,
                list_level=list_level,
                is_inline_scope=True,
                visited=visited if visited is not None else set(),
                **kwargs,
            )
            text = ""
            for part in parts:
                if not part.text:
                    continue
                if text and not _CLOSES.match(part.text) and not _OPENS.search(text):
                    text += " "
                text += part.text
            return create_ser_result(text=text, span_source=parts)

    return InlineRuns()


@functools.cache
def _code_fences() -> Any:
    """docling's text serializer, a code block's fence naming its language (docling
    knows it, from the fence or by detection, and wrote a bare ```)."""
    from docling_core.transforms.serializer.common import create_ser_result
    from docling_core.transforms.serializer.markdown import MarkdownTextSerializer
    from docling_core.types.doc.items.code import CodeItem

    class CodeFences(MarkdownTextSerializer):
        def serialize(self, *, item: Any, **kwargs: Any) -> Any:
            result = super().serialize(item=item, **kwargs)
            language = getattr(item, "code_language", None)
            name = str(getattr(language, "value", "")).lower()
            fence = re.match(r"`{3,}\n", result.text)
            if isinstance(item, CodeItem) and fence and name and name != "unknown":
                text = f"{fence.group()[:-1]}{name}\n{result.text[fence.end() :]}"
                return create_ser_result(text=text, span_source=item)
            return result

    return CodeFences()


# python-docx and python-pptx open a document's or a deck's own content type only: a
# macro-enabled document (.docm), a template (.dotx, .dotm, .potx) or a slide show
# (.ppsx) holds the same parts under another, and was refused as "not a Word file".
_MAIN_TYPES = {
    "docx": (
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        re.compile(
            rb"application/vnd\.(?:ms-word\.(?:document\.macroEnabled|template\."
            rb"macroEnabledTemplate)|openxmlformats-officedocument\.wordprocessingml\."
            rb"template)\.main\+xml"
        ),
    ),
    "pptx": (
        b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        re.compile(
            rb"application/vnd\.(?:ms-powerpoint\.(?:slideshow|template)\.macroEnabled|"
            rb"openxmlformats-officedocument\.presentationml\.(?:slideshow|template))"
            rb"\.main\+xml"
        ),
    ),
}


# XML comments and processing instructions (not the declaration): docling's DOCX walk
# asks every child of a body, cell or header for its tag name, and a comment's "tag" is
# a function, so a document holding one (hand-written or generated) failed whole.
_MARKUP_ASIDE = re.compile(rb"<!--.*?-->|<\?(?!xml\s).*?\?>", re.DOTALL)
# Wrappers whose runs or paragraphs python-docx, under docling, does not read (it reads a
# run only as a paragraph's child, a paragraph only as the body's or a cell's), taken
# off: tracked changes' insertions and moves to a place, as Word shows the document
# with its changes (a table cell's inserted text and a moved paragraph were lost:
# LibreOffice's TC-table-converttotable.docx was skipped as blank); a bidirectional
# embedding or override (w:dir, w:bdo: LibreOffice's tdf119143.docx, Arabic, lost the
# words in one and all after it); custom XML around paragraphs or runs (w:customXml:
# its paragraphs were lost; its properties stay, holding no text). Deletions and moves
# from a place are left wrapped, so not read; their marks on a paragraph or row
# (<w:ins/> in its properties) go too.
_ACCEPTED = re.compile(rb"</?w:(?:ins|moveTo|dir|bdo|customXml)\b[^>]*>")
# The parts docling walks: the body, headers and footers.
_WALKED_PART = re.compile(r"word/(?:document|header\d*|footer\d*)\.xml")


def _prepared(data: bytes, kind: str) -> bytes:
    """``data`` as docling's readers can take it: its main part typed as a plain DOCX's or
    PPTX's (see ``_MAIN_TYPES``); a DOCX's footnotes and endnotes put in its text where
    they are cited, its SmartArt diagrams' text where they are drawn, its tracked
    changes accepted (``_ACCEPTED``); its title style's
    ID made ``Title`` (see :func:`_localized_title`); its XML comments taken out. The
    package is written again (unpacked) only if any of these applies."""
    main, variant = _MAIN_TYPES[kind]
    with zipfile.ZipFile(BytesIO(data)) as archive:
        names = set(archive.namelist())
        changed: dict[str, bytes] = {}
        types = archive.read("[Content_Types].xml")
        if variant.search(types):
            changed["[Content_Types].xml"] = variant.sub(main, types)
        notes = names & {"word/footnotes.xml", "word/endnotes.xml"}
        diagrams = any(n.startswith("word/diagrams/") for n in names)
        title = None
        if kind == "docx" and "word/styles.xml" in names:
            styles = archive.read("word/styles.xml")
            title = _localized_title(styles)
            if title is not None:
                changed["word/styles.xml"] = _title_renamed(styles, title)
        slides = {
            part: archive.read(part)
            for part in sorted(
                (n for n in names if kind == "pptx" and _SLIDE_PART.fullmatch(n)),
                key=_slide_number,
            )
        }
        prepared = []
        for xml in slides.values():
            rewritten = _chosen(xml) if b"AlternateContent" in xml else xml
            if _MATH_LETTER.search(rewritten):
                rewritten = _plain_math_letters(rewritten)
            prepared.append(slide_symbols(rewritten))
        # In slide order: a running alternative text is read on its first slide only.
        for (part, xml), rewritten in zip(slides.items(), slide_alt_texts(prepared), strict=True):
            if rewritten != xml:
                changed[part] = rewritten
        for part in names if kind == "pptx" else ():
            if _NOTES_PART.fullmatch(part):
                xml = archive.read(part)
                rewritten = slide_symbols(xml)
                if rewritten != xml:
                    changed[part] = rewritten
        for part in names if kind == "docx" else ():
            if not _WALKED_PART.fullmatch(part):
                continue
            xml = archive.read(part)
            rewritten = word_symbols(_ACCEPTED.sub(b"", _MARKUP_ASIDE.sub(b"", xml)))
            rewritten = word_alt_texts(rewritten)
            if b"<w:tbl" in rewritten and b"<w:sdt" in rewritten:
                rewritten = _rows_unwrapped(rewritten)
            if b"<w:tbl" in rewritten and _GRIDLESS.search(rewritten):
                rewritten = _gridded(rewritten)
            if part == "word/document.xml":
                rewritten = _with_notes(rewritten, archive, names) if notes else rewritten
                rewritten = _with_diagrams(rewritten, archive) if diagrams else rewritten
                rewritten = _title_renamed(rewritten, title) if title else rewritten
            if b"lockedCanvas" in rewritten:
                rewritten = _CANVAS_DRAWING.sub(_canvas_text, rewritten)
            if b"<w:ruby>" in rewritten:
                rewritten = _RUBY_RUN.sub(_ruby_runs, rewritten)
            if b"<w:ffData>" in rewritten:
                rewritten = _form_fields(rewritten)
            if _DROP_CAP.search(rewritten):
                rewritten = _drop_caps_joined(rewritten)
            if _MATH_LETTER.search(rewritten):
                rewritten = _plain_math_letters(rewritten)
            if rewritten != xml:
                changed[part] = rewritten
        return stored_copy(archive, changed) if changed else data


# A style's ID and name, in a DOCX's word/styles.xml.
STYLE_ID_NAME = re.compile(rb'<w:style\b[^>]*\bw:styleId="([^"]*)"[^>]*>\s*<w:name w:val="([^"]*)"')
# Where a style ID is used: a paragraph's or run's style, and one style's link to another.
_STYLE_USE = rb'(<w:(?:pStyle|rStyle|basedOn|next|link)\b[^>]*?\bw:val="|\bw:styleId=")%s(")'


def _localized_title(styles: bytes) -> bytes | None:
    """The ID of the built-in Title style when it is not ``Title``: Word names its styles'
    IDs in the language it runs in ("Titel", "Titre", "Título") while their names stay
    English, and docling knows a title by the ID alone (headings it knows by either):
    a German report's title was a plain paragraph."""
    ids = dict(STYLE_ID_NAME.findall(styles))
    if b"Title" in ids:
        return None
    return next((i for i, name in ids.items() if name.lower() == b"title"), None)


def _title_renamed(xml: bytes, title: bytes) -> bytes:
    return re.sub(_STYLE_USE % re.escape(title), rb"\1Title\2", xml)


# A run drawing a SmartArt diagram: <w:r>...<dgm:relIds ... r:dm="rId5" .../>...</w:r>.
_DIAGRAM_RUN = re.compile(
    rb"<w:r\b[^>]*>(?:(?!</w:r>).)*?<(?:\w+:)?relIds\b[^>]*?\b\w+:dm=\"([^\"]+)\""
    rb"(?:(?!</w:r>).)*?</w:r>",
    re.DOTALL,
)


# A table without its grid (no <w:tblGrid>, or one of no columns), as generators write
# one and Word opens: python-docx counts a table's columns by its grid, so docling read
# its cells as none (LibreOffice's tdf109306.docx and sdt-around-float-table.docx were
# skipped as blank). A table's properties, if any, are followed by its grid, else by a
# row.
_GRIDLESS = re.compile(
    rb"<w:tblGrid\s*/>|<w:tblGrid>\s*</w:tblGrid>|(?:</w:tblPr>|<w:tbl>)\s*<w:tr\b"
)


def _gridded(part: bytes) -> bytes:
    """A DOCX part with a grid given to each table without one: as many columns as its
    widest row spans (the empty columns a row's ``gridAfter`` leaves are no text)."""
    from lxml import etree

    root = etree.fromstring(part, etree.XMLParser(resolve_entities=False, huge_tree=True))
    for table in root.iter(f"{_W}tbl"):
        grid = table.find(f"{_W}tblGrid")
        if grid is not None and grid.find(f"{_W}gridCol") is not None:
            continue
        spans = [
            sum(_w_val(cell.find(f"{_W}tcPr/{_W}gridSpan"), 1) for cell in _cells(row))
            + _w_val(row.find(f"{_W}trPr/{_W}gridBefore"), 0)
            for row in table.iter(f"{_W}tr")
            if next(row.iterancestors(f"{_W}tbl")) is table
        ]
        if grid is None:
            grid = etree.Element(f"{_W}tblGrid")
            properties = table.find(f"{_W}tblPr")
            table.insert(0 if properties is None else table.index(properties) + 1, grid)
        for _ in range(max(spans, default=0)):
            etree.SubElement(grid, f"{_W}gridCol")
    return written(root)


def _rows_unwrapped(part: bytes) -> bytes:
    """A DOCX part with each content control around table rows (Word's repeating
    sections, a form's rows) replaced by its rows: python-docx reads a table's rows only
    as its children, so docling lost them. ``part`` as it is when it has none."""
    from lxml import etree

    root = etree.fromstring(part, etree.XMLParser(resolve_entities=False, huge_tree=True))
    wrapped = [e for e in root.iter(f"{_W}sdt") if e.getparent().tag == f"{_W}tbl"]
    if not wrapped:
        return part
    while wrapped:
        control = wrapped.pop()
        for child in _spliced(control, control.find(f"{_W}sdtContent")):
            if child.tag == f"{_W}sdt":  # a repeating section's item, its rows inside
                wrapped.append(child)
    return written(root)


# A drop cap: a paragraph of its own, framed, holding a paragraph's first letter(s).
_DROP_CAP = re.compile(rb'<w:framePr\b[^>]*\bw:dropCap="(?:drop|margin)"')


def _drop_caps_joined(part: bytes) -> bytes:
    """A DOCX part with each drop cap put back at the start of the paragraph it begins:
    Word keeps the big letter as a paragraph of its own, and "Drop cap." was read as
    "D" and "rop cap.", a paragraph apart, the word lost to a search."""
    root = tree(part)
    if root is None:
        return part
    joined = False
    for frame in list(root.iter(f"{_W}framePr")):
        if frame.get(f"{_W}dropCap") not in ("drop", "margin"):
            continue
        cap = frame.getparent().getparent()
        following = cap.getnext()
        if cap.tag != f"{_W}p" or following is None or following.tag != f"{_W}p":
            continue
        properties = following.find(f"{_W}pPr")
        at = 0 if properties is None else following.index(properties) + 1
        for child in [c for c in cap if c.tag != f"{_W}pPr"]:
            following.insert(at, child)
            at += 1
        cap.getparent().remove(cap)
        joined = True
    return written(root) if joined else part


# A deck's slides, whose shapes python-pptx reads only as children of their shape tree.
_SLIDE_PART = re.compile(r"ppt/slides/slide(\d+)\.xml")


def _slide_number(part: str) -> int:
    """A slide part's number (``slide7.xml``: 7), which PowerPoint gives in slide order
    until slides are moved."""
    found = _SLIDE_PART.fullmatch(part)
    return int(found[1]) if found else 0


_NOTES_PART = re.compile(r"ppt/notesSlides/notesSlide\d+\.xml")
# An equation's text, and a letter in it written as Unicode's mathematical alphanumerics
# (U+1D400-U+1D7FF, and U+210E, the italic h), in UTF-8.
_MATH_TEXT = re.compile(rb"(<m:t\b[^>]*>)([^<]*)(</m:t>)")
_MATH_LETTER = re.compile(rb"\xf0\x9d[\x90-\x9f][\x80-\xbf]|\xe2\x84\x8e")


def _plain_math_letters(part: bytes) -> bytes:
    """A part whose equations' letters are written as the letters they are: PowerPoint
    writes them as mathematical italics (U+1D44E for a), and docling's LaTeX for those lost
    its braces (a² + b² = c² came out ``\\mathit{a^{2}+ \\mathit{b^{2}= \\mathit{c^{2}``)."""

    def letter(found: re.Match[bytes]) -> bytes:
        return unicodedata.normalize("NFKC", found[0].decode()).encode()

    def plain(found: re.Match[bytes]) -> bytes:
        return found[1] + _MATH_LETTER.sub(letter, found[2]) + found[3]

    return _MATH_TEXT.sub(plain, part)


_COMPATIBILITY = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"


def _chosen(part: bytes) -> bytes:
    """A slide with each ``mc:AlternateContent`` replaced by its first choice's shapes
    (PowerPoint wraps a shape holding an equation, or another newer feature, so; its
    fallback, for readers that know no such feature, is often a picture of it): python-
    pptx reads neither, so such a shape's text was lost."""
    from lxml import etree

    root = etree.fromstring(part, etree.XMLParser(resolve_entities=False, huge_tree=True))
    alternatives = list(root.iter(f"{_COMPATIBILITY}AlternateContent"))
    for alternative in reversed(alternatives):  # the innermost first
        if alternative.getparent() is not None:
            _spliced(alternative, alternative.find(f"{_COMPATIBILITY}Choice"))
    if not alternatives:
        return part
    return written(root)


def _spliced(element: Any, inner: Any) -> list[Any]:
    """``element`` replaced in its parent by ``inner``'s children (none when ``inner``
    is None); those children."""
    parent = element.getparent()
    at = parent.index(element)
    parent.remove(element)
    children = [] if inner is None else list(inner)
    for offset, child in enumerate(children):
        parent.insert(at + offset, child)
    return children


def _cells(row: Any) -> list[Any]:
    """A table row's cells, those in a content control too, not a nested table's."""
    return [cell for cell in row.iter(f"{_W}tc") if next(cell.iterancestors(f"{_W}tr")) is row]


def _w_val(element: Any, default: int) -> int:
    """An element's ``w:val`` as a number; ``default`` when there is none or it is not one."""
    value = None if element is None else element.get(f"{_W}val")
    return int(value) if value is not None and value.isdigit() else default


def _with_diagrams(document: bytes, archive: zipfile.ZipFile) -> bytes:
    """``document`` with each SmartArt diagram's run replaced by the diagram's text, a
    Markdown list, one item a line (docling reads none of a diagram)."""
    from rag_ingest.parsers.embedded import relationship_target, relationships
    from rag_ingest.parsers.smartart import DIAGRAM_DATA, diagram_markdown

    targets = {
        link.get(b"Id", b""): relationship_target("word/document.xml", link.get(b"Target", b""))
        for link in relationships(archive, "word/document.xml")
        if link.get(b"Type") == DIAGRAM_DATA.encode()
    }

    def drawn(match: re.Match[bytes]) -> bytes:
        try:
            text = diagram_markdown(archive.read(targets[match[1]]))
        except KeyError:
            return match[0]
        if not text:
            return match[0]
        lines = (
            f'<w:t xml:space="preserve">{html.escape(line, quote=False)}</w:t>'
            for line in text.split("\n")
        )
        return ("<w:r>" + "<w:br/>".join(lines) + "</w:r>").encode()

    return _DIAGRAM_RUN.sub(drawn, document)


# A drawing of a locked canvas (Word 2007's drawing canvas; a DrawingML group whose
# shapes hold their text as a:t): docling takes it for a picture, so its text was lost
# (LibreOffice's fdo76249.docx, a title in a canvas in a text box, failed as holding none).
# The innermost drawing: the canvas may sit in a text box in an outer drawing.
_CANVAS_DRAWING = re.compile(
    rb"<w:drawing>(?:(?!</w:drawing>|<w:drawing>).)*?<(?:\w+:)?lockedCanvas\b(.*?)"
    rb"</(?:\w+:)?lockedCanvas>(?:(?!</w:drawing>).)*?</w:drawing>",
    re.DOTALL,
)
_DRAWN_PARAGRAPH = re.compile(rb"<a:p\b[^>]*>(.*?)</a:p>", re.DOTALL)
_DRAWN_TEXT = re.compile(rb"<a:t>([^<]*)</a:t>|<a:t\s*/>")


def _canvas_text(match: re.Match[bytes]) -> bytes:
    """A canvas's drawing as its shapes' text in its run, a line a paragraph (their text
    is escaped already)."""
    lines = [
        b"".join(_DRAWN_TEXT.findall(paragraph)).strip()
        for paragraph in _DRAWN_PARAGRAPH.findall(match[1])
    ]
    text = b"<w:br/>".join(
        b'<w:t xml:space="preserve">' + line + b"</w:t>" for line in lines if line
    )
    return text or match[0]


# A legacy form field's data (Word's FORMCHECKBOX and FORMDROPDOWN): what it shows is
# not in the document's text, only its state here; a FORMTEXT's value is its result text.
_FORM_FIELD = re.compile(
    rb'(<w:fldChar\b[^>]*\bw:fldCharType="begin"[^>]*>\s*<w:ffData>)(.*?)(</w:ffData>\s*</w:fldChar>)',
    re.DOTALL,
)
_FORM_VALUE = re.compile(
    rb'<w:(checked|default|result|listEntry)\b(?:[^>]*?\bw:val="([^"]*)")?[^>]*/?>'
)
_OFF = {b"0", b"false", b"off"}
_FIELD_END = re.compile(rb'\bw:fldCharType="end"')
_FIELD_RESULT = re.compile(rb'\bw:fldCharType="separate".*?<w:t(?:\s[^>]*)?>[^<]', re.DOTALL)


def _form_fields(part: bytes) -> bytes:
    """``part`` with what Word shows for each legacy form field put after its start: a
    check box's state (☒ or ☐), a drop-down's chosen entry. docling read neither (a
    form's answers were lost: "yes  no", "This  when ..."). A field whose result holds
    text already (LibreOffice writes a drop-down's choice so) is left as it is."""

    def shown(match: re.Match[bytes]) -> bytes:
        end = _FIELD_END.search(part, match.end())
        result = part[match.end() : end.start() if end else len(part)]
        return match[0] if _FIELD_RESULT.search(result) else _form_field_value(match)

    return _FORM_FIELD.sub(shown, part)


def _form_field_value(match: re.Match[bytes]) -> bytes:
    """A legacy form field's start (see :func:`_form_fields`) with what it shows after it."""
    data = match[2]
    values = _FORM_VALUE.findall(data)
    if b"<w:checkBox" in data:
        checked = next((v for tag, v in values if tag == b"checked"), None)
        default = next((v for tag, v in values if tag == b"default"), b"0")
        state = checked not in _OFF if checked is not None else default not in _OFF
        shown = "\u2612" if state else "\u2610"
    elif b"<w:ddList" in data:
        entries = [
            html.unescape(v.decode("utf-8", "replace")) for t, v in values if t == b"listEntry"
        ]
        chosen = next((v for t, v in values if t in (b"result", b"default")), b"0")
        index = int(chosen) if chosen.isdigit() else 0
        shown = entries[index] if index < len(entries) else (entries[0] if entries else "")
    else:
        return match[0]
    text = html.escape(shown, quote=False).encode()
    return match[0] + b'<w:t xml:space="preserve">' + text + b"</w:t>"


# A run of ruby text (furigana: a reading set over the words it glosses), its reading
# (w:rt) and its base (w:rubyBase) runs of their own: python-docx reads runs only as a
# paragraph's children, so the words were lost, not only their reading.
_RUBY_RUN = re.compile(
    rb"<w:r\b[^>]*>(?:(?!</w:r>|<w:r\b).)*?<w:ruby>(.*?)</w:ruby>\s*</w:r>", re.DOTALL
)
_RUBY_TEXT = re.compile(rb"<w:rt>(.*?)</w:rt>", re.DOTALL)
_RUBY_BASE = re.compile(rb"<w:rubyBase>(.*?)</w:rubyBase>", re.DOTALL)
_RUN_TEXT = re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>")


def _ruby_runs(match: re.Match[bytes]) -> bytes:
    """A ruby's run as its base's runs, its reading after them in parentheses, as plain
    text gives furigana: 漢字(かんじ)."""
    base = _RUBY_BASE.search(match[1])
    reading = _RUBY_TEXT.search(match[1])
    said = b"".join(_RUN_TEXT.findall(reading[1])).strip() if reading else b""
    gloss = b'<w:r><w:t xml:space="preserve">(' + said + b")</w:t></w:r>" if said else b""
    return (base[1] if base else b"") + gloss


# A run holding a note's reference mark: <w:r>...<w:footnoteReference w:id="2"/></w:r>.
_NOTE_REFERENCE = re.compile(
    rb"<w:r\b[^>]*>(?:(?!</w:r>).)*?<w:(foot|end)noteReference\b[^>]*?w:id=\"(-?\d+)\""
    rb"(?:(?!</w:r>).)*?</w:r>",
    re.DOTALL,
)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_NOTE_TEXT = {f"{_W}t", f"{_W}tab", f"{_W}br"}  # a note's text, its tabs and breaks as spaces


def _with_notes(document: bytes, archive: zipfile.ZipFile, names: set[str]) -> bytes:
    """``document`` (word/document.xml) with each footnote and endnote reference replaced
    by the note's text, "(note: ...)", as an OpenDocument text's notes are read: docling
    reads neither part, and a contract's or a paper's notes are often what is asked."""
    if b"noteReference" not in document:
        return document

    notes: dict[tuple[bytes, bytes], str] = {}
    for kind in (b"foot", b"end"):
        member = f"word/{kind.decode()}notes.xml"
        if member not in names:
            continue
        try:
            root = ElementTree.fromstring(word_alt_texts(word_symbols(archive.read(member))))
        except XML_ERRORS:
            continue  # the notes are lost, the text is read
        for note in root.findall(f"{_W}{kind.decode()}note"):
            paragraphs = [
                "".join(
                    (e.text or "") if e.tag == f"{_W}t" else " "
                    for e in p.iter()
                    if e.tag in _NOTE_TEXT
                )
                for p in note.iter(f"{_W}p")
            ]
            text = " ".join(" ".join(paragraphs).split())
            if text:
                notes[kind, note.get(f"{_W}id", "").encode()] = text

    def cite(match: re.Match[bytes]) -> bytes:
        text = notes.get((match[1], match[2]))  # the separators' are empty
        if text is None:
            return match[0]
        escaped = html.escape(f" (note: {text})", quote=False).encode()
        return b'<w:r><w:t xml:space="preserve">' + escaped + b"</w:t></w:r>"

    return _NOTE_REFERENCE.sub(cite, document)


def _slide_extras(deck: Any) -> tuple[dict[int, str], dict[int, str]]:
    """Each slide's speaker notes, and its SmartArt diagrams' text as Markdown lists, by
    slide number (docling's pages), where it has any: docling's PPTX backend leaves both
    out, and a deck's notes often carry the talk, its diagrams the process or the
    structure it shows. ``deck``: python-pptx's presentation (docling's own)."""
    from rag_ingest.parsers.smartart import DIAGRAM_DATA, diagram_markdown

    notes: dict[int, str] = {}
    diagrams: dict[int, str] = {}
    for number, slide in enumerate(deck.slides, start=1):
        if slide.has_notes_slide:
            text = _notes_text(slide.notes_slide)
            if text:
                notes[number] = text
        # In the order the slide's relationships list them: a diagram's shape may sit
        # in a group, which python-pptx's shape list does not open.
        drawn = [
            diagram_markdown(rel.target_part.blob)
            for rel in slide.part.rels.values()
            if rel.reltype == DIAGRAM_DATA and not rel.is_external
        ]
        if any(drawn):
            diagrams[number] = "\n\n".join(d for d in drawn if d)
    return notes, diagrams


def _notes_text(page: Any) -> str:
    """A notes page's text: its notes placeholder's, or, with none, its text boxes' (as
    LibreOffice writes notes it holds in a plain frame; python-pptx gives no frame, and
    the deck failed on it). The placeholders for the slide number, date and footer are
    not the notes."""
    frame = page.notes_text_frame
    if frame is not None:
        return str(frame.text or "").strip()
    boxes = (s.text_frame.text for s in page.shapes if s.has_text_frame and not s.is_placeholder)
    return "\n".join(t.strip() for t in boxes if t.strip())


def _presentation(data: bytes) -> Any:
    from pptx import Presentation

    return Presentation(BytesIO(data))


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def html_title(data: bytes) -> str | None:
    """A page's ``<title>``: docling's HTML backend leaves the head out, and a page's
    title is often the one line that says what it is about."""
    head = data[:65536]
    found = _TITLE.search(head)
    if found is None:
        return None
    raw = found.group(1)
    # In the page's declared charset, as docling reads its body (a windows-1252 page's
    # "Café" was "Caf\ufffd"); undeclared: UTF-8, else the legacy default.
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(head, is_html=True)
    text = None
    for encoding in (declared, "utf-8", "windows-1252"):
        if encoding:
            try:
                text = raw.decode(encoding)
                break
            except (LookupError, UnicodeDecodeError):
                continue
    if text is None:
        text = raw.decode("utf-8", errors="replace")
    title = " ".join(html.unescape(text).split())
    return title or None


def decoded_html(data: bytes) -> tuple[str, str]:
    """A page's text, and its charset: the one its BOM or ``<meta>`` declares, else the
    one a text file would be read in."""
    from bs4.dammit import EncodingDetector

    data, marked = EncodingDetector.strip_byte_order_mark(data)
    declared = marked or EncodingDetector.find_declared_encoding(data[:65536], is_html=True)
    if declared:
        try:
            return data.decode(declared), declared.lower()
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: as if none
    text, charset, _ = decode_text(data, "")
    return text, charset


_FRONT_MATTER = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(---|\+\+\+)[ \t]*\r?\n(.*?)\r?\n(?:\1|\.\.\.)[ \t]*(?:\r?\n|\Z)",
    re.DOTALL,
)


def _front_matter(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Split a Markdown file's YAML (``---``) or TOML (``+++``) front matter from its body.

    Docs sites (Jekyll, Hugo, Docusaurus, MkDocs) start pages with it; left in, the
    closing ``---`` made the block a heading, so every chunk's ``heading_path`` was
    the block's ``title: ... tags: ...`` text. A block that does not parse as a mapping
    is not front matter (a rule and a paragraph), and stays.
    """
    found = _FRONT_MATTER.match(data[:65536])
    if found is None:
        return data, {}
    block = found.group(2).decode("utf-8", errors="replace")
    try:
        if found.group(1) == b"---":
            import yaml

            fields = yaml.safe_load(block)
        else:
            import tomllib

            fields = tomllib.loads(block)
    except Exception:  # not YAML or TOML after all
        return data, {}
    if not isinstance(fields, dict):
        return data, {}
    return data[found.end() :], fields


_MDX_MODULE = re.compile(rb"^(?:import\s.+\sfrom\s|import\s+['\"]|export\s)")


def _lines_dropped(data: bytes, drop: Callable[[bytes], object]) -> bytes:
    """A Markdown file without the lines ``drop`` picks; code blocks keep theirs."""
    kept, fenced = [], False
    for line in data.splitlines(keepends=True):
        if line.lstrip().startswith((b"```", b"~~~")):
            fenced = not fenced
        if fenced or not drop(line):
            kept.append(line)
    return b"".join(kept)


def _without_mdx_modules(data: bytes) -> bytes:
    """An MDX page without its top-level ``import``/``export`` lines (the JSX docling
    reads as HTML, keeping its text)."""
    return _lines_dropped(data, _MDX_MODULE.match)


# A line of linked pictures only: [![Build Status](https://.../badge.svg)](https://...)
_LINKED_PICTURES = re.compile(rb"^[ \t]*(?:\[!\[[^\]\n]*\]\([^)\n]*\)\]\([^)\n]*\)[ \t]*)+\r?\n?$")
_PICTURE_LINK = re.compile(rb"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)")


def _badge_line(line: bytes) -> bool:
    """A README's line of status badges (build, version, licence, chat): each a linked
    SVG or a badge service's picture, its alt text and tracking link noise in the first
    chunk ('[Join the chat at https://gitter.im/...](https://gitter.im/...?utm_source=
    badge&utm_medium=badge...)')."""
    if not _LINKED_PICTURES.match(line):
        return False
    urls = [u.lower() for u in _PICTURE_LINK.findall(line)]
    return bool(urls) and all(b".svg" in u or b"badge" in u or b"shields.io" in u for u in urls)


# What sets a page's name apart from its site's in a title ("Ownership - The Rust Book",
# "File system | Node.js v20 Documentation", "Install :: Guide").
_TITLE_PARTS = re.compile(r"\s+(?:[-|\u2013\u2014\u00b7\u2022\u00bb:/~]|::)\s+")


def headed(text: str, title: str | None, description: str | None = None) -> str:
    """``text`` with its description, then its title as a heading, atop it, unless it
    has them near its top already. A text opening with a heading that is a part of the
    title ("# Ownership" under "Ownership - The Rust Book") is headed by the title alone:
    both had been written, one heading above the other, in each page's first chunk."""
    if title and not titled(text, title):
        stripped = text.lstrip()
        opening = MARKDOWN_HEADING.match(stripped)
        if opening and _normal_title(opening[2]) in map(_normal_title, _TITLE_PARTS.split(title)):
            text = stripped[opening.end() :].lstrip("\n")
    if description and description not in text[:2000]:
        text = f"{description}\n\n{text}"
    if title and not titled(text, title):
        text = f"# {title}\n\n{text}"
    return text


def _normal_title(text: str) -> str:
    return " ".join(text.split()).casefold()


def titled(text: str, title: str) -> bool:
    """Whether ``text`` has ``title`` as a heading near its top already, or its first
    heading names it as whole words ('# npm-view @11.19.1' for 'npm-view', '# Error code
    E0271' for 'E0271'; not '# Installing' for 'Install'). Looked for in any text, a
    title that is one of the page's words was taken as said: 10 of 80 npm docs pages
    lost theirs ('Scripts')."""
    headings = [_normal_title(m[2]) for m in MARKDOWN_HEADING.finditer(text[:2000])]
    wanted = _normal_title(title)
    return wanted in headings or bool(
        headings and re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", headings[0])
    )


def _front_text(fields: dict[str, Any]) -> tuple[str | None, str | None]:
    """Front matter's title and description: what says what the page is about."""
    picked = []
    for key in ("title", "description"):
        value = fields.get(key)
        picked.append(" ".join(value.split()) or None if isinstance(value, str) else None)
    return picked[0], picked[1]


# Text for chunks, not Markdown for a renderer: docling's defaults write `max\_retries`,
# `AT&amp;T` and `a &lt; b`, and an `<!-- image -->` line for every picture.
_PLAIN: dict[str, Any] = {
    "escape_underscores": False,
    "escape_html": False,
    "image_placeholder": "",
}


def _drop_relative_links(doc: Any) -> None:
    """Keep a link's text, not its target, unless the target is a full URL: in the HTML
    pages under /usr/share/doc, 21% of the tokens were link targets, two thirds of
    them relative (``index.html``, ``#_Toc123``) and meaningless in a chunk. A
    ``javascript:`` or ``data:`` target goes too: docling's serializer drops it itself,
    but logs a warning for each, which went to the worker's stderr."""
    from docling_core.transforms.serializer.common import hyperlink_uri, is_safe_hyperlink

    for item in (*doc.texts, *doc.groups):
        link = getattr(item, "hyperlink", None)
        if isinstance(link, PurePath) or (
            link is not None and not is_safe_hyperlink(hyperlink_uri(link))
        ):
            item.hyperlink = None


def _drop_empty_tables(doc: Any) -> None:
    """Drop the tables with no text in any cell and nothing inside them (a form's blank
    grid, a spacer): each was a Markdown table of bars and dashes, chunked and embedded
    as if it said something. A caption stays, as a paragraph. A picture in a cell is a
    child of its table (its text is OCR's, read later)."""
    empty = [
        table
        for table in doc.tables
        if not table.children and not any(cell.text.strip() for cell in table.data.table_cells)
    ]
    if empty:
        doc.delete_items(node_items=empty)


_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_TABLE_PARTS = ("thead", "tbody", "tfoot", "tr", "td", "th", "caption")


# How deep a page's elements may nest for docling's HTML reader, which recurses: a page
# of unclosed tags (1,500 lines each opening a <font> and a <b>) failed whole.
_MAX_NESTING = 256


def _flattened(soup: Any) -> int:
    """Unwrap the elements of ``soup`` nested past :data:`_MAX_NESTING` (their text and
    childless elements, a ``<br>``, an ``<img>``, kept where they were), and say how
    many were."""
    import copy

    from bs4 import Tag

    unwrapped = 0
    stack: list[tuple[Any, int]] = [(soup, 0)]
    while stack:  # not recursive: the tree is deeper than Python's stack
        node, depth = stack.pop()
        if depth < _MAX_NESTING:
            stack += [(c, depth + 1) for c in node.contents if isinstance(c, Tag)]
            continue
        # Rebuilt from copies of what is kept: bs4's unwrap() walks a tag's subtree and
        # its ancestors, and one per element took 261 s for 100,000 nested <div>s.
        kept, deep = [], 0
        for item in node.descendants:  # in document order, not recursive
            if not isinstance(item, Tag):
                kept.append(type(item)(str(item)))
            elif item.contents:
                deep += 1
            else:
                kept.append(copy.copy(item))
        if deep:
            node.clear()
            node.extend(kept)
            unwrapped += deep
    return unwrapped


def _plain_preformatted(soup: Any) -> None:
    """Each ``<pre>`` as its text alone, a highlighter's language kept as a class.
    docling reads every run of markup in one (a Pygments ``<span>``, a gtk-doc link) as
    a piece of its own and joins them with spaces: Sphinx's ``def f(x):`` and its
    indented body came out as one line, ``def f ( x ): return x + 1``."""
    for pre in soup.find_all("pre"):
        if not pre.find(True):
            continue  # text alone already: docling keeps its lines
        classes = set(pre.get("class") or [])
        for code in pre.find_all("code"):
            classes.update(code.get("class") or [])
        for ancestor in list(pre.parents)[:2]:  # Sphinx: div.highlight-python > div > pre
            for name in ancestor.get("class") or []:
                if name.startswith("highlight-"):
                    classes.add("language-" + name.removeprefix("highlight-"))
        for br in pre.find_all("br"):
            br.replace_with("\n")
        for line in pre.find_all(["div", "p", "li", "tr"]):
            # A highlighter that gives each line an element of its own, with no newline.
            after = line.next_sibling
            if not line.get_text().endswith("\n") and not (
                isinstance(after, str) and after.startswith("\n")
            ):
                line.append("\n")
        text = pre.get_text()
        pre.clear()
        pre.string = text
        if classes:
            pre["class"] = sorted(classes)


def _unwrap_layout_tables(soup: Any) -> None:
    """Turn tables used for page layout into plain blocks, in docling's parsed page.

    Old sites and generated docs lay out a whole page in a table: docling made it one
    Markdown table, the page's headings, lists and paragraphs flattened into a cell
    under a header row of logos. A table is layout when it says so (``role=
    "presentation"``), holds a heading, or holds another table."""
    for table in soup.find_all("table"):
        nested = table.find("table") is not None
        heading = any(h.find_parent("table") is table for h in table.find_all(_HEADINGS))
        if nested or heading or table.get("role") in ("presentation", "none"):
            for part in table.find_all(_TABLE_PARTS):
                if part.find_parent("table") is table:  # a nested table's are its own
                    part.name = "div"
            table.name = "div"


# <meta http-equiv="refresh" content="0; url=next.html">: how rustdoc, Javadoc, Jekyll
# and the redirect plugins of Sphinx and MkDocs leave a page that moved (a third of the
# Rust manuals' pages installed here). Its words, "Redirecting to next.html...", are
# not the page's.
_REFRESH = re.compile(r"\s*(\d+)[^;,\s]*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]*)", re.IGNORECASE)
_REDIRECT_SECONDS = 10  # a page shown longer than this before it moves is read
_REDIRECT_TEXT = 1000  # characters: a page with more text of its own is read
_NOT_SHOWN = ("script", "style", "noscript", "template", "head", "title")


def _redirect(soup: Any) -> str | None:
    """Where a page that only sends its reader on points: a refresh to a URL within
    ``_REDIRECT_SECONDS`` and under ``_REDIRECT_TEXT`` characters of text; else None."""
    from bs4 import Comment

    for meta in soup.find_all("meta"):
        if str(meta.get("http-equiv", "")).strip().lower() != "refresh":
            continue
        found = _REFRESH.match(str(meta.get("content", "")))
        if found is None or not found.group(2).strip():
            continue  # a page that reloads itself
        if int(found.group(1)) > _REDIRECT_SECONDS:
            continue
        length = 0
        for string in soup.find_all(string=True):
            if isinstance(string, Comment) or string.find_parent(_NOT_SHOWN) is not None:
                continue
            length += len(string.strip())
            if length >= _REDIRECT_TEXT:
                return None
        return found.group(2).strip()
    return None


_CHROME_ROLES = ("navigation", "banner", "contentinfo", "search")
# The navigation documentation generators write without a <nav> or a role: DocBook's
# "Prev | Up | Next" tables, Texinfo's "Next: ..., Previous: ..., Up: ..." lines,
# Javadoc's (before 9) and Doxygen's bars, Sphinx's related links. Each had been the
# first or last chunk of every page of such a manual (valgrind's, libffi's, libxslt's).
GENERATOR_CHROME = (
    "div.navheader", "div.navfooter", 'table[summary^="Navigation"]',  # DocBook
    "div.header", "div.nav-panel",  # Texinfo 6, 7
    "div.topNav", "div.bottomNav", "div.subNav", "div.skipNav",  # Javadoc
    "div#nav-path", "div.navpath",  # Doxygen
    "div.related",  # Sphinx
    # Publican's (DocBook; Debian's handbook, Fedora's and Red Hat's old guides): its
    # Prev/Up/Home/Next lists, the logo links over them and a brand's banner before
    # them. html-to-markdown (past parse.markup_fast_size) knows no :has() and drops
    # the lists only.
    "ul.docnav", "p#title:has(> a.left)", "div#banner:has(+ p#title)",
)  # fmt: skip


def _drop_page_chrome(soup: Any, keep_main: bool = True) -> None:
    """Remove a page's chrome, as HTML5 marks it: all but its one ``<main>`` (or
    ``role="main"``) when it has one with text (``keep_main``); every ``<nav>``, a
    ``<header>`` outside an article or section (there it holds the article's title or
    byline), elements with a landmark role for them, and documentation generators'
    navigation (``GENERATOR_CHROME``). (docling leaves footers and ``hidden`` elements
    out.)"""
    if keep_main:
        _keep_main(soup)
    for tag in soup.find_all(["nav", "header"]):
        if tag.decomposed:
            continue
        if tag.name == "header" and tag.find_parent(["article", "main", "section"]):
            continue
        tag.decompose()
    for tag in soup.find_all(attrs={"role": True}):
        if not tag.decomposed and tag.get("role") in _CHROME_ROLES:
            tag.decompose()
    for tag in soup.select(", ".join(GENERATOR_CHROME)):
        if not tag.decomposed:
            tag.decompose()


def _keep_main(soup: Any) -> None:
    """Of a page's body, only its main content when markup says which. What lies outside
    it and outside the landmarks dropped anyway is chrome no markup marks: on the Rust
    manuals installed here, 25-203 characters a page (skip links; mdBook's help pop-up
    and theme list, 89 tokens), on Node.js's a skip link, in the page's first chunk."""
    mains = soup.find_all("main") or soup.find_all(attrs={"role": "main"})
    if len(mains) != 1 or not mains[0].get_text(strip=True):
        return  # none, or several (invalid HTML, joined pages): nothing says which
    body = soup.body or soup
    node = mains[0]
    while node is not body and node.parent is not None:
        for sibling in list(node.parent.children):
            if sibling is not node:
                sibling.extract()
        node = node.parent


def _markdown_by_page(doc: Any, markers: dict[str, str]) -> dict[int, str]:
    """Each page's Markdown as ``doc.export_to_markdown(page_no=n)`` gives it, in one pass
    over the document: that call walks the whole document each time, so a 500-slide deck
    took 91 s (0.2 s here). A top-level item (a slide, a sheet) spanning pages takes the
    exact, slow way."""
    serializer = _serializer(doc, markers)
    parts: dict[int, list[str]] = {}
    for child in doc.body.children:
        node = child.resolve(doc)
        on = {
            item.prov[0].page_no
            for item, _ in doc.iterate_items(root=node)
            if getattr(item, "prov", None)  # content items have a provenance, groups none
        }
        if len(on) > 1:
            return {
                n: runs_joined(_serializer(doc, markers, n).serialize().text)
                for n in sorted(doc.pages)
            }
        text = runs_joined(serializer.serialize(item=node).text) if on else ""
        if text:
            parts.setdefault(on.pop(), []).append(text)
    return {n: "\n\n".join(parts.get(n, [])) for n in sorted(doc.pages)}


def parse_office(
    path: str,
    name: str,
    kind: str,
    *,
    max_unzipped_size: int,
    max_zip_ratio: float,
    xlsx_stream_size: int = 4 * 1024 * 1024,
    markup_fast_size: int = 4 * 1024 * 1024,
    markdown_fast_size: int = 256 * 1024,
    html_chrome: str = "markup",
    max_images: int = 0,
    min_image_bytes: int = 2048,
    ocr_pictures: bool = False,
    read_part: ReadPart | None = None,
) -> ParsedDocument:
    """A docling-read document; with ``ocr_pictures``, its pictures are listed in
    ``scans`` to be read by OCR, a marker in the text where each sits. ``read_part``
    reads a DOCX's alt chunks (see parsers/alt_chunks.py); without it they are left out.
    ``html_chrome``: what of a page's chrome is left out (``parse.html_chrome``)."""
    if kind in ("docx", "pptx", "xlsx"):
        check_zip(path, name, max_unzipped_size, max_zip_ratio)
    if kind == "xlsx" and measure_sheets(path, name) > xlsx_stream_size:
        why = f"its sheets expand past parse.xlsx_stream_size ({xlsx_stream_size} B)"
        return parse_rows(path, name, why=why)
    size = os.path.getsize(path)
    # docling reads Markdown ~3x slower a MB than HTML (its HTML blocks go through its
    # HTML reader): the lower bar of the two.
    bar, setting = min(
        (markdown_fast_size, "markdown_fast_size"), (markup_fast_size, "markup_fast_size")
    )
    if kind == "markdown" and size > bar:
        why = f"past parse.{setting} ({bar} B): read as its Markdown source, not by docling"
        return _markdown_source(path, name, why)
    if kind == "html" and size > markup_fast_size:
        why = f"past parse.markup_fast_size ({markup_fast_size} B)"
        from rag_ingest.parsers.large_html import parse_large_html

        parsed = parse_large_html(path, name, why)
        if html_chrome == "guess":
            parsed.warnings.append(
                "its chrome left out only as its markup marks it: parse.html_chrome = "
                "'guess' applies to pages docling reads"
            )
        return parsed
    docling = functools.partial(
        _parse_docling,
        path,
        name,
        kind,
        max_images,
        min_image_bytes,
        ocr_pictures,
        read_part=read_part,
        chrome=html_chrome,
    )
    try:
        return docling()
    except CorruptDocumentError as exc:
        if kind == "markdown" and isinstance(exc.__cause__, RecursionError):
            why = "nested too deeply for docling: read as its Markdown source"
            return _markdown_source(path, name, why)
        if kind in ("docx", "pptx", "xlsx") and _malformed(exc):
            mended, said = _mended_package(path, name)
            if said:
                try:
                    parsed = docling(data=mended)
                except CorruptDocumentError:
                    pass
                except (BlankDocumentError, EmptyDocumentError):
                    # Nothing to index once its XML is mended: what it lacks was lost, as
                    # exc says. Its links mended only, it is what it holds.
                    if not any(" is not well-formed XML (" in warning for warning in said):
                        raise
                else:
                    parsed.warnings += said
                    return parsed
        if kind != "xlsx":
            raise
        # openpyxl, under docling, refuses workbooks Excel opens (a chart sheet without
        # a drawing): their values are still worth having.
        try:
            return parse_rows(path, name, why=str(exc).removeprefix(f"{name}: "))
        except (CorruptDocumentError, EmptyDocumentError):
            raise exc from None


def _docx_comments(document: Any) -> list[str]:
    """A DOCX's comments, ``Comment (Ann) on "the text it marks": text`` each, in their
    part's order: docling loads them and writes none out (pandoc's ``comments.docx``),
    and a reviewer's "this clause changed in v3" was lost. They are listed after the
    document, as a PDF's and a workbook's are: inline, they would break its sentences."""
    comments = list(getattr(document, "comments", None) or ())
    if not comments:
        return []
    marked: dict[str, list[str]] = {}
    open_ids: set[str] = set()
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    spaces = (f"{w}p", f"{w}tab", f"{w}br")  # words across them kept apart
    tags = (f"{w}commentRangeStart", f"{w}commentRangeEnd", f"{w}t", *spaces)
    for element in document.element.body.iter(*tags):
        if element.tag == f"{w}t" or element.tag in spaces:
            said = " " if element.tag in spaces else element.text or ""
            for marking in open_ids:
                marked.setdefault(marking, []).append(said)
        elif element.tag == f"{w}commentRangeStart":
            open_ids.add(element.get(f"{w}id", ""))
        else:
            open_ids.discard(element.get(f"{w}id", ""))
    replies = _docx_replies(document)
    lines = []
    for comment in comments:
        if not (text := " ".join((comment.text or "").split())):
            continue
        last = comment.paragraphs[-1]._p if comment.paragraphs else None
        if last is not None and last.get(f"{_W14}paraId") in replies:
            lines.append(comment_line("Reply", comment.author or "", "", text))
        else:
            passage = "".join(marked.get(str(comment.comment_id), []))
            lines.append(comment_line("Comment", comment.author or "", passage, text))
    return lines


_W14 = "{http://schemas.microsoft.com/office/word/2010/wordml}"
_W15 = "{http://schemas.microsoft.com/office/word/2012/wordml}"


def _docx_replies(document: Any) -> set[str]:
    """The IDs (``w14:paraId`` of their last paragraph) of a DOCX's comments that reply
    to another, as Word 2013 and later mark them in ``word/commentsExtended.xml``; a
    reply marks the same passage as its comment, not quoted again."""
    for rel in document.part.rels.values():
        if rel.is_external or not rel.reltype.endswith("/commentsExtended"):
            continue
        try:
            root = ElementTree.fromstring(rel.target_part.blob)
        except XML_ERRORS:
            return set()  # the comments are read, none as a reply
        return {
            e.get(f"{_W15}paraId", "")
            for e in root.iter(f"{_W15}commentEx")
            if e.get(f"{_W15}paraIdParent")
        }
    return set()


def _malformed(error: BaseException) -> bool:
    """Whether ``error`` came of a part that is not well-formed XML, or of a part a
    relationship names that the package lacks or gives no content type (Word opens
    both: LibreOffice's test documents have 15 such)."""
    from lxml import etree

    while error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, KeyError):
        # python-docx's and openpyxl's words, and python-pptx's
        missing = ('"There is no item named ', '"no content type for ', '"no content-type for ')
        return str(error).startswith(missing)
    return isinstance(error, (etree.XMLSyntaxError, ElementTree.ParseError))


def _mended_package(path: str, name: str) -> tuple[bytes, list[str]]:
    """An OOXML package with each XML part that is not well formed mended, as Word and
    Excel offer to (see :func:`recovered_xml`), and what was mended (nothing, when a part
    cannot be read); its size checked already (``check_zip``)."""
    from lxml import etree

    said: list[str] = []
    out = BytesIO()
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(out, "w") as copy:
        parts = {info.filename for info in archive.infolist()}
        linked: dict[str, str] = {}  # a part -> the type of a relationship to it
        dangling: dict[str, set[str]] = {}  # a part -> the Ids of its links to none
        for info in archive.infolist():
            if info.filename.endswith(".rels"):
                with contextlib.suppress(etree.XMLSyntaxError, *ZIP_ERRORS):
                    for part, link in _links(archive.read(info), info.filename):
                        linked[part] = link.get("Type", "")
                        if part not in parts:
                            source = source_part(info.filename)
                            dangling.setdefault(source, set()).add(link.get("Id", ""))
        for info in archive.infolist():
            try:
                member = archive.read(info)
            except ZIP_ERRORS:
                return b"", []  # a part's data damaged (a bad CRC): no mending mends that
            if info.filename.endswith((".xml", ".rels")):
                try:
                    etree.fromstring(member, etree.XMLParser(resolve_entities=False))
                except etree.XMLSyntaxError as exc:
                    with contextlib.suppress(CorruptDocumentError):
                        member, warning = recovered_xml(member, name, exc, part=info.filename)
                        said.append(warning)
                with contextlib.suppress(etree.XMLSyntaxError):
                    if info.filename.endswith(".rels"):
                        member = _linked(member, info.filename, parts, said)
                    elif info.filename == "[Content_Types].xml":
                        member = _typed(member, linked, parts, said)
                    elif info.filename in dangling:
                        member = _unreferenced(member, dangling[info.filename])
            info.compress_type = zipfile.ZIP_STORED
            copy.writestr(info, member)
    return out.getvalue(), said


_PACKAGE_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _linked(member: bytes, rels: str, parts: set[str], said: list[str]) -> bytes:
    """A relationships part without the links to parts the package lacks (a header, a
    picture, the numbering Word dropped)."""
    from lxml import etree

    root = etree.fromstring(member, etree.XMLParser(resolve_entities=False))
    gone = [(part, link) for part, link in _links(root, rels) if part not in parts]
    for part, link in gone:
        said.append(f"{rels} links to {part!r}, which is not in the package: left out")
        root.remove(link)
    if not gone:
        return member
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _links(rels: Any, name: str) -> list[tuple[str, Any]]:
    """The parts a relationships part (its bytes, or its root) links to inside the
    package, each with its ``Relationship`` element."""
    from lxml import etree

    if isinstance(rels, bytes):
        rels = etree.fromstring(rels, etree.XMLParser(resolve_entities=False))
    base = posixpath.dirname(source_part(name))
    links = []
    for link in rels.iter(f"{_PACKAGE_RELATIONSHIPS}Relationship"):
        target = urllib.parse.unquote(link.get("Target", ""))
        if link.get("TargetMode") != "External" and target:
            joined = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
            links.append((posixpath.normpath(joined), link))
    return links


def _unreferenced(member: bytes, ids: set[str]) -> bytes:
    """A part without its elements that name a relationship of ``ids`` (``r:id``): a
    section's header, a deck's slide, a workbook's sheet the package lacks."""
    from lxml import etree

    root = etree.fromstring(member, etree.XMLParser(resolve_entities=False))
    named = [e for e in root.iter() if e.get(f"{{{_RELATIONSHIPS}}}id") in ids]
    for element in named:
        if (parent := element.getparent()) is not None:
            parent.remove(element)
    if not named:
        return member
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _typed(member: bytes, linked: dict[str, str], parts: set[str], said: list[str]) -> bytes:
    """``[Content_Types].xml`` with a type for each linked part it gives none: that of
    another part linked the same way (a footer's, where one footer of three was typed),
    else by the part's extension."""
    from lxml import etree

    root = etree.fromstring(member, etree.XMLParser(resolve_entities=False))
    typed = part_types(root)
    by_link = {linked[part]: kind for part in linked if (kind := typed(part)) is not None}
    untyped = sorted(part for part in linked if part in parts and typed(part) is None)
    for part in untyped:
        guessed = (
            by_link.get(linked[part]) or mimetypes.guess_type(part)[0] or "application/octet-stream"
        )
        etree.SubElement(root, f"{CONTENT_TYPES}Override", PartName=f"/{part}", ContentType=guessed)
        said.append(f"{part!r} has no content type: taken as {guessed}")
    if not untyped:
        return member
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def parse_html(
    data: bytes,
    name: str,
    max_images: int,
    min_image_bytes: int,
    *,
    joined: bool = True,
    ocr_pictures: bool = False,
    chrome: str = "markup",
) -> ParsedDocument:
    """An HTML page held in memory: ``joined``, several pages made one (an EPUB's
    chapters: one chapter's ``<main>`` is not the book's); else one page, as a file, its
    chrome left out as ``chrome`` says (``parse.html_chrome``)."""
    return _parse_docling(
        "",
        name,
        "html",
        max_images,
        min_image_bytes,
        ocr_pictures,
        data=data,
        joined=joined,
        chrome=chrome,
    )


# Raised by our own checks inside the docling call: passed on as they are.
_OWN_ERRORS = (
    BinaryContentError,
    BlankDocumentError,
    CorruptDocumentError,
    MissingExtraError,
    ZipBombError,
)


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _without_comments(text: str) -> str:
    """Markdown without its HTML comments (a page's generator notes: Node.js's API docs
    hold ``<!-- YAML added: v0.3.4 -->`` under each heading), as docling's path leaves
    them out; a comment shown in a fenced code block stays."""
    if "<!--" not in text:
        return text
    from rag_ingest.chunking import in_code_fence

    fenced = in_code_fence(text)

    def kept(found: re.Match[str]) -> str:
        return found[0] if fenced(found.start()) else ""

    return re.sub(r"\n{3,}", "\n\n", _HTML_COMMENT.sub(kept, text))


def _markdown_source(path: str, name: str, why: str) -> ParsedDocument:
    """A Markdown file read as its source, not by docling (Markdown is written to be read
    as it is): its front matter's title and description atop, as docling's path puts
    them, its HTML comments left out; ``why``, a warning."""
    from rag_ingest.parsers.text import parse_text

    parsed = parse_text(path, name)
    parsed.file_type, parsed.parser = "markdown", parsed.parser.replace("text", "markdown-source")
    # Front matter is looked for in the first 64 KiB: only those are encoded to find it
    # (a file past markup_fast_size was encoded whole, and decoded back, for that).
    whole = _without_comments(parsed.segments[0].text)
    body, front = _front_matter(whole[:65536].encode("utf-8", "surrogatepass"))
    if front:
        whole = headed(body.decode("utf-8", "surrogatepass") + whole[65536:], *_front_text(front))
    parsed.segments[0].text = whole
    parsed.warnings.append(why)
    return parsed


def _parse_docling(
    path: str,
    name: str,
    kind: str,
    max_images: int,
    min_image_bytes: int,
    ocr_pictures: bool,
    *,
    data: bytes | None = None,
    joined: bool = False,
    read_part: ReadPart | None = None,
    chrome: str = "markup",
) -> ParsedDocument:
    backend, fmt = _backend(kind)
    unguessed = False  # parse.html_chrome = "guess" and trafilatura gave no text
    alt_chunks: list[AltChunk] = []
    try:
        from docling.datamodel.document import InputDocument

        # A stream plus the real name: the temp file's suffix is not the format's, and
        # some readers (openpyxl) judge a file by its extension.
        data = Path(path).read_bytes() if data is None else data
        if kind == "docx":
            data, alt_chunks = taken_out(data)
        if kind in _MAIN_TYPES:
            data = _prepared(data, kind)
        front: dict[str, Any] = {}
        decoded: tuple[str, list[str]] = ("utf-8", [])
        if kind == "markdown":
            # Decoded as a text file is: docling reads what is not UTF-8 as cp1252, so a
            # GBK README came out as mojibake, in silence, and a Shift-JIS one failed.
            text, charset, said = decode_text(data, name)
            data, decoded = text.encode("utf-8", errors="replace"), (charset, said)
            data, front = _front_matter(data)
            if name.lower().endswith(".mdx"):
                data = _without_mdx_modules(data)
            data = _lines_dropped(data, _badge_line)
        # An HTML page's or a Markdown file's data: URI pictures (docling leaves them unread).
        page = data  # as written: what trafilatura reads (parse.html_chrome = "guess")
        embedded = None
        if kind in ("html", "markdown") and (ocr_pictures or max_images):
            embedded = PictureSource(data_uri, ocr_pictures, max_images, min_image_bytes)
            data = with_markers(data, embedded, markdown=kind == "markdown")
        stream = BytesIO(data)
        source = InputDocument(
            path_or_stream=stream, format=fmt, backend=backend, filename=PurePath(name).name
        )
        if not source.valid:
            rejection = getattr(source, "_rejection", None)
            cause = getattr(rejection, "original_error", None)
            if cause is None and getattr(source, "page_count", None) == 0:
                if kind == "xlsx":
                    # A workbook has a sheet at least: its sheets' parts are lost (a
                    # damaged copy had been skipped as "no slides: nothing to index").
                    raise CorruptDocumentError(f"{name}: no sheet of this xlsx could be read")
                # docling refuses a deck of no slides as "0 pages": nothing is in it.
                what = "no slides" if kind == "pptx" else "no pages"
                raise BlankDocumentError(f"{name}: {what}: nothing to index")
            if type(cause).__name__ == "ArchiveLimitError":
                raise ZipBombError(f"{name}: {cause}")  # docling's own limits on an archive
            # docling's message names only the file's hash; the reader's error says why.
            while cause is not None and cause.__cause__ is not None:
                cause = cause.__cause__
            why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            refusal = getattr(rejection, "message", None)  # docling's own (a limit)
            if not why and refusal:
                why = f" ({refusal})"
            chained = cause if isinstance(cause, BaseException) else None
            raise CorruptDocumentError(
                f"{name}: docling could not open this {kind}{why}"
            ) from chained
        converter: Any = source._backend
        flattened = 0
        if kind == "html" and getattr(converter, "soup", None) is not None:
            moved = None if joined else _redirect(converter.soup)
            if moved is not None:
                raise BlankDocumentError(f"{name}: a redirect to {moved[:200]}: nothing to index")
            flattened = _flattened(converter.soup)
            _plain_preformatted(converter.soup)
            _unwrap_layout_tables(converter.soup)
            _drop_page_chrome(converter.soup, keep_main=not joined)
            if chrome == "guess" and not joined:
                unguessed = drop_guessed_chrome(converter.soup, page) is None
            # docling's default takes all before the first heading for furniture, left
            # out: a page's lead paragraph, an EPUB's opening pages. The page's chrome
            # is dropped by its markup instead.
            converter.options.infer_furniture = False
        if kind == "docx" and not max_images and hasattr(converter, "display_drawingml_warning"):
            # docling renders a drawing (a chart, a shape) to an image through LibreOffice
            # when it finds one installed: an soffice process per document (up to 60 s
            # each) for pictures nobody asked to describe, and without one a warning on
            # stderr telling the user to install it. The drawing's text is read anyway.
            converter.docx_to_pdf_converter_init = True
            converter.display_drawingml_warning = False
        formulas = _formulas_shown(converter.workbook, data) if kind == "xlsx" else 0
        written = as_written.set(True)
        try:
            doc = converter.convert()
        finally:
            as_written.reset(written)
        _drop_relative_links(doc)
        _drop_empty_tables(doc)
        notes: dict[int, str] = {}
        diagrams: dict[int, str] = {}
        if kind == "pptx":
            # The deck as docling's backend opened it: not parsed from the bytes again.
            notes, diagrams = _slide_extras(
                getattr(converter, "pptx_obj", None) or _presentation(data)
            )
        # docling numbers a workbook's sheets as pages, in order, and names them nowhere
        # in its Markdown: a chunk of rows would not say which sheet it came from.
        sheets = list(converter.workbook.sheetnames) if kind == "xlsx" else []
    except _OWN_ERRORS:
        raise
    except ImportError as exc:
        raise MissingExtraError(f"{kind} parsing (docling)", "office") from exc
    except MemoryError:
        raise  # the worker's memory limit (ParserMemoryError), not a corrupt file
    except Exception as exc:  # docling and its readers raise anything on bad input
        raise CorruptDocumentError(f"{name}: {kind} could not be parsed ({exc})") from exc
    segments: list[Segment] = []
    chunk_warnings: list[str] = []
    chunk_bodies = read_all(alt_chunks, read_part, chunk_warnings) if alt_chunks else {}
    for marker in into_cells(doc, chunk_bodies) if chunk_bodies else ():
        del chunk_bodies[marker]
    pages = len(doc.pages) if getattr(doc, "pages", None) else None
    markers, pictures = _ocr_pictures(doc) if ocr_pictures else ({}, Pictures())
    if kind in ("pptx", "xlsx") and pages:
        for number, text in _markdown_by_page(doc, markers).items():
            if number in diagrams:
                text = f"{text.rstrip()}\n\n{diagrams[number]}".lstrip()
            if number in notes:
                text = f"{text.rstrip()}\n\nSpeaker notes: {notes[number]}".lstrip()
            if text.strip() and 0 < number <= len(sheets):
                text = f"# Sheet: {sheets[number - 1]}\n\n{text}"
            if text.strip():
                segments.append(Segment(text, page=int(number)))
    else:
        try:
            text = runs_joined(_serializer(doc, markers).serialize().text)
        except RecursionError as exc:  # docling's serializer recurses into nested items
            raise CorruptDocumentError(f"{name}: {kind} nested too deeply ({exc})") from exc
        title, description = html_title(data) if kind == "html" else None, None
        if front:
            title, description = _front_text(front)
        if chunk_bodies:
            text = put_back(text, chunk_bodies)
        if kind == "docx":
            text = after_text(text, _docx_comments(getattr(converter, "docx_obj", None)))
        segments.append(Segment(headed(text, title, description)))
    segments = [s for s in segments if s.text.strip()]
    images = _pictures(doc, max_images, min_image_bytes) if max_images else []
    if not segments and not images and not (embedded and embedded.images):
        pictured = getattr(doc, "pictures", None)
        if pictured and not none_to_read(map(_picture_size, pictured)):
            raise EmptyDocumentError(f"{name}: no text besides its pictures")
        what = "pictures too small to hold text or linked" if pictured else "no pictures"
        raise BlankDocumentError(f"{name}: no text and {what}: nothing to index")
    charset, said = decoded
    parser = f"docling-{kind}"
    if charset not in ("utf-8", "utf-8-bom"):
        parser += f"[{charset}]"  # as a text file's parser says it
    parsed = ParsedDocument(kind, segments, parser=parser, pages=pages, images=images)
    parsed.warnings += said + chunk_warnings
    if flattened:
        parsed.warnings.append(
            f"{flattened} element(s) nested past {_MAX_NESTING} levels (unclosed tags) "
            "unwrapped: their text kept, not their structure"
        )
    if unguessed:
        parsed.warnings.append(
            "trafilatura gave no main text for this page (parse.html_chrome = 'guess'): "
            "read whole, its chrome left out only as its markup marks it"
        )
    if formulas:
        parsed.warnings.append(
            f"{formulas} formula cell(s) have no saved value (the workbook was written by a "
            "program, never saved by a spreadsheet app): their formulas are shown instead"
        )
    return embedded.into(parsed) if embedded else pictures.into(parsed)


# A formula cell with no value saved beside it: <c r="D2"><f>B2*C2</f><v></v></c>, or a
# shared formula's <f t="shared" si="0"/> alone.
_FORMULA_WITHOUT_VALUE = re.compile(rb"(?:</f>|<f\b[^>]*/>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


def _formulas_shown(workbook: Any, data: bytes) -> int:
    """Put a formula's text (``=B2*C2``) in each cell of docling's workbook that has a
    formula and no saved value, and say how many. openpyxl writes formulas without their
    values, and Excel computes them on opening: read for their values only, a generated
    report's totals came out as empty cells."""
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.cell.cell import MergedCell

    with zipfile.ZipFile(BytesIO(data)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        if not any(_FORMULA_WITHOUT_VALUE.search(archive.read(n)) for n in sheets):
            return 0
    formulas = load_workbook(BytesIO(data), data_only=False)
    shown = 0
    for title in workbook.sheetnames:
        if title not in formulas.sheetnames or not hasattr(formulas[title], "iter_rows"):
            continue  # a chart sheet
        target = workbook[title]
        for row in formulas[title].iter_rows():
            for cell in row:
                if cell.data_type != "f":
                    continue
                text = getattr(cell.value, "text", cell.value)  # an array formula's
                into = target.cell(row=cell.row, column=cell.column)
                # A merged range's other cells hold nothing and take nothing.
                if (
                    into.value is None
                    and isinstance(text, str)
                    and not isinstance(into, MergedCell)
                ):
                    into.value = text if text.startswith("=") else f"={text}"
                    shown += 1
    return shown
