"""OpenDocument text and slides (.odt, .odp) and EPUB books.

ODF is XML in a zip: its headings, paragraphs, lists and tables map to Markdown here,
with the standard library (no extra to install). Tracked deletions, comments, indexes
(a table of contents repeats the headings) and slide footers are left out; an embedded
chart is its data table, a formula its source. An EPUB's
chapters are XHTML: joined in reading order, they go through the HTML parser (docling).
"""

from __future__ import annotations

import dataclasses
import functools
import html
import mimetypes
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import unquote
from xml.etree import ElementTree

from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
)
from rag_ingest.parsers.alt_text import alt_text
from rag_ingest.parsers.base import (
    XML_ERRORS,
    ZIP_ERRORS,
    ParsedDocument,
    Segment,
    after_text,
    comment_line,
    lost_in_mending,
    markdown_table,
    qualified,
    recovered_xml,
)
from rag_ingest.parsers.pictures import PictureSource, with_markers

__all__ = [
    "parse_epub",
    "parse_opendocument",
    "placed_objects",
    "read_xml",
    "ods_shown_numbers",
    "sheet_charts",
    "sheet_comments",
]

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "opf": "http://www.idpf.org/2007/opf",
    "container": "urn:oasis:names:tc:opendocument:xmlns:container",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "xlink": "http://www.w3.org/1999/xlink",
    "chart": "urn:oasis:names:tc:opendocument:xmlns:chart:1.0",
    "officeooo": "http://openoffice.org/2009/office",
    # ODF's own SVG-compatible namespace, not the W3C's.
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
}


_q = functools.partial(qualified, _NS)


_H, _P, _LIST, _TABLE = _q("text:h"), _q("text:p"), _q("text:list"), _q("table:table")
_ROW, _ANNOTATION = _q("table:table-row"), _q("office:annotation")
_ANNOTATION_END = _q("office:annotation-end")
_RUBY_TEXT = _q("text:ruby-text")
_CHANGE_START, _CHANGE_END = _q("text:change-start"), _q("text:change-end")
_CHANGE_ID = _q("text:change-id")
# A slide's comment, as LibreOffice Impress writes one (ODF 1.2 has none).
_SLIDE_ANNOTATION = _q("officeooo:annotation")
_CELLS = (_q("table:table-cell"), _q("table:covered-table-cell"))
# A sheet's drawn shapes that hold their own text (a text box's frame holds a text-box).
_SHAPES = {
    _q(f"draw:{shape}")
    for shape in (
        "text-box",
        "custom-shape",
        "rect",
        "ellipse",
        "circle",
        "polygon",
        "polyline",
        "path",
        "regular-polygon",
        "caption",
        "line",
        "connector",
    )
}
_SHAPE_NEEDLES = (b"<draw:text-box", b"<draw:custom-shape", b"<draw:rect", b"<draw:ellipse")
_SPACE, _TAB, _BREAK = _q("text:s"), _q("text:tab"), _q("text:line-break")
_NOTE, _NOTE_BODY, _FRAME = _q("text:note"), _q("text:note-body"), _q("draw:frame")
_IMAGE, _HREF, _OBJECT = _q("draw:image"), _q("xlink:href"), _q("draw:object")
_ROW, _CELL, _COVERED = (
    _q("table:table-row"),
    _q("table:table-cell"),
    _q("table:covered-table-cell"),
)
_ROW_GROUPS = {_q(f"table:{g}") for g in ("table-header-rows", "table-rows", "table-row-group")}
_CLASS = _q("presentation:class")
# Not the document's words: deleted text kept for change tracking, comments, indexes
# (a table of contents repeats every heading with its page), declarations and forms.
_SKIPPED = {
    _q("text:tracked-changes"),
    _q("office:annotation"),
    _SLIDE_ANNOTATION,
    _q("text:note-citation"),
    *(
        _q(f"text:{index}")
        for index in (
            "table-of-content",
            "alphabetical-index",
            "illustration-index",
            "table-index",
            "object-index",
            "user-index",
            "bibliography",
            "sequence-decls",
            "variable-decls",
            "user-field-decls",
        )
    ),
    _q("office:forms"),
    _q("draw:page-thumbnail"),
    _q("presentation:notes"),  # a slide's notes are read on their own
    # A frame's or shape's alternative text, read through alt_text (see _alt).
    _q("svg:title"),
    _q("svg:desc"),
}
# Slide placeholders repeated on every slide from the master.
_RUNNING_CLASSES = {"footer", "header", "date-time", "page-number"}


_WHITESPACE = re.compile(r"[ \t\r\n]+")


def _count(element: ElementTree.Element, attribute: str, cap: int) -> int:
    """A count attribute (spaces, a heading level, repeated cells), 1 when absent or
    malformed, at most ``cap``: a hostile ``text:c="1000000000"`` is not a 1 GB string."""
    value = element.get(_q(attribute), "1") or "1"
    return min(max(int(value), 1), cap) if value.isdigit() else 1


class _Writer:
    """ODF body XML to Markdown blocks. ``titles``: the paragraph styles that are the
    Title style (a document's title is a styled paragraph, not a heading);
    ``numbered``: list style -> its levels (from 1) that number their items;
    ``picture``: the marker to write for a picture, by its link (for OCR; it may keep the
    picture to describe too)."""

    def __init__(
        self,
        titles: frozenset[str] = frozenset(),
        numbered: dict[str, frozenset[int]] | None = None,
        picture: Callable[[str], str] | None = None,
        embedded: Callable[[str], str] | None = None,
        deleted: frozenset[str] = frozenset(),
    ) -> None:
        self.titles = titles
        self.numbered = numbered or {}
        self.picture = picture
        self.embedded = embedded
        self.deleted = deleted
        self._deleting = False  # between the marks of a deletion (see _deletions)

    def blocks(self, *elements: ElementTree.Element) -> list[str]:
        """The Markdown blocks of ``elements``."""
        out: list[str] = []
        for element in elements:
            self._block(element, out)
        return out

    def flat(self, elements: list[ElementTree.Element]) -> str:
        """The text of ``elements`` on one line."""
        return " ".join(" ".join(self.blocks(*elements)).split())

    def _inline(self, element: ElementTree.Element, after: list[str]) -> str:
        """A paragraph's text; frames anchored in it (text boxes) go to ``after``."""
        # In ODF, runs of whitespace in the XML are one space; text:s, text:tab and
        # text:line-break are the document's own spacing.
        parts = [] if self._deleting else [_WHITESPACE.sub(" ", element.text or "")]
        for child in element:
            tag = child.tag
            if tag in (_CHANGE_START, _CHANGE_END):
                if child.get(_CHANGE_ID) in self.deleted:
                    self._deleting = tag == _CHANGE_START
            elif tag == _SPACE:
                parts.append(" " * _count(child, "text:c", 100))
            elif tag == _TAB:
                parts.append("\t")
            elif tag == _BREAK:
                parts.append("\n")
            elif tag == _NOTE:  # (in a deletion, its paragraphs read as no text too)
                text = self.flat(child.findall(_NOTE_BODY))
                lead = "" if not parts or parts[-1].endswith(" ") else " "
                parts.append(f"{lead}(note: {text})" if text else "")
            elif tag == _FRAME:
                blocks = self.blocks(*child)
                after.extend(blocks)
                after.extend(_alt(child, " ".join(blocks)))
            elif tag == _RUBY_TEXT:  # a reading over the words before it: 漢字(かんじ)
                reading = self._inline(child, after).strip()
                parts.append(f"({reading})" if reading else "")
            elif tag not in _SKIPPED:
                parts.append(self._inline(child, after))
                after.extend(_alt(child, parts[-1]))
            if not self._deleting:
                parts.append(_WHITESPACE.sub(" ", child.tail or ""))
        return "".join(parts)

    def _block(self, element: ElementTree.Element, out: list[str]) -> None:
        tag = element.tag
        if tag in _SKIPPED or element.get(_CLASS) in _RUNNING_CLASSES:
            return
        if tag in (_H, _P):
            after: list[str] = []
            text = "\n".join(line.strip() for line in self._inline(element, after).split("\n"))
            text = text.strip()
            if text and tag == _H:
                level = _count(element, "text:outline-level", 6)
                text = f"{'#' * level} {' '.join(text.split())}"
            elif text and element.get(_q("text:style-name")) in self.titles:
                text = f"# {' '.join(text.split())}"
            if text:
                out.append(text)
            out.extend(after)
        elif tag == _LIST:
            lines = list(self._list_lines(element, 0))
            if lines:
                out.append("\n".join(lines))
        elif tag == _TABLE:
            table = self.table(element)
            if table:
                out.append(table)
        elif tag == _IMAGE:
            found = self.picture(element.get(_HREF, "")) if self.picture else ""
            if found:
                out.append(found)
        elif tag == _OBJECT:
            found = self.embedded(element.get(_HREF, "")) if self.embedded else ""
            if found:
                out.append(found)
        elif element.get(_CLASS) == "title":  # a slide's title frame
            title = self.flat(list(element))
            if title:
                out.append(f"# {title}")
        else:
            start = len(out)
            for child in element:  # sections, frames, text boxes, shapes
                self._block(child, out)
            out.extend(_alt(element, " ".join(out[start:])))

    def _list_lines(
        self, element: ElementTree.Element, depth: int, style: str | None = None, indent: str = ""
    ) -> Iterator[str]:
        # A nested list without a style of its own takes its parent's, one level down,
        # and is indented under its item's text.
        style = element.get(_q("text:style-name")) or style
        numbered = depth + 1 in self.numbered.get(style or "", ())
        for number, item in enumerate(element, start=1):
            lead = f"{number}. " if numbered else "- "
            first = True
            headed = False
            for child in item:
                if child.tag == _LIST:
                    inner = indent + " " * len(lead)
                    yield from self._list_lines(child, depth + 1, style, inner)
                    continue
                if child.tag == _H or headed:
                    # A heading numbered as a list item (a Word document's numbered
                    # headings, as LibreOffice keeps them): a heading, not "1. # Scope",
                    # which no reader of Markdown takes for one, and what follows it in
                    # the item its text. Its number is left out: each heading is a list
                    # of its own, continuing the count.
                    yield from self.blocks(child)
                    headed = True
                    continue
                for text in self.blocks(child):
                    for n, line in enumerate(text.splitlines()):
                        yield f"{indent}{lead if first and n == 0 else ' ' * len(lead)}{line}"
                    first = False

    def table(self, table: ElementTree.Element, missing: str = "") -> str:
        """A Markdown table; empty rows and trailing empty columns (filler, repeated
        thousands of times) are dropped; a cell whose text is ``missing`` is empty (a
        chart's table says "NaN" for no value)."""
        grid: list[list[str]] = []
        for row in _rows(table):
            cells: list[str] = []
            for cell in row:
                if cell.tag not in (_CELL, _COVERED):
                    continue
                text = self.flat(list(cell)).replace("|", "\\|")
                text = "" if text == missing else text
                repeat = _count(cell, "table:number-columns-repeated", 64 if text else 1024)
                cells.extend([text] * repeat)
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                grid.append(cells)
        return markdown_table(grid)


def _deletions(body: ElementTree.Element) -> frozenset[str]:
    """The IDs of a text's tracked deletions. A deletion's text is in its region, left
    out with it; but LibreOffice writes some into a flat ``.fodt`` in the body, between
    marks (``text:change-start``, ``text:change-end``) naming the deletion, and that
    deleted text had been read as the document's."""
    return frozenset(
        region.get(_q("text:id"), "")
        for region in body.iter(_q("text:changed-region"))
        if region.find(_q("text:deletion")) is not None
    )


def _rows(table: ElementTree.Element) -> Iterator[ElementTree.Element]:
    for child in table:
        if child.tag == _ROW:
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)


def _numbered_lists(*roots: ElementTree.Element) -> dict[str, frozenset[int]]:
    """List style -> the levels it numbers (a number format, not a bullet)."""
    numbered: dict[str, frozenset[int]] = {}
    for root in roots:
        for style in root.iter(_q("text:list-style")):
            numbered[style.get(_q("style:name")) or ""] = frozenset(
                _count(level, "text:level", 10)
                for level in style.iter(_q("text:list-level-style-number"))
                if level.get(_q("style:num-format"))
            )
    return numbered


def _alt(element: ElementTree.Element, shown: str) -> list[str]:
    """A frame's or shape's alternative text (its ``svg:title`` and ``svg:desc``), as a
    block of its own; none when it has none, or only what LibreOffice wrote itself, or
    only the text it shows. An embedded object's one-word description is the name of
    its type, which LibreOffice writes in its user's language ("Formel", "fórmula")."""
    title, description = (element.find(_q(f"svg:{tag}")) for tag in ("title", "desc"))
    if title is None and description is None:
        return []
    texts = ["".join(e.itertext()) if e is not None else "" for e in (title, description)]
    objects = (element.find(_OBJECT), element.find(_q("draw:object-ole")))
    if any(o is not None for o in objects) and len(texts[1].split()) < 2:
        texts[1] = ""
    text = alt_text(texts[0], texts[1], shown=shown)
    return [text] if text else []


def _title_styles(*roots: ElementTree.Element) -> frozenset[str]:
    """The paragraph styles that are, or derive from, a Title style (LibreOffice's
    "Title", docutils' "rststyle-title")."""
    parents: dict[str, str] = {}
    for root in roots:
        for style in root.iter(_q("style:style")):
            name = style.get(_q("style:name")) or ""
            parents[name] = style.get(_q("style:parent-style-name")) or ""

    def is_title(name: str, hops: int = 0) -> bool:
        if name.lower().rsplit("-", 1)[-1] == "title":
            return True
        parent = parents.get(name, "")
        return bool(parent) and hops < 8 and is_title(parent, hops + 1)

    return frozenset(name for name in parents if is_title(name))


def read_xml(
    archive: zipfile.ZipFile, member: str, name: str, warnings: list[str] | None = None
) -> ElementTree.Element:
    """A package's XML part, parsed; a missing one a CorruptDocumentError, and a broken
    one too, unless ``warnings`` are taken: then it is mended, said there."""
    try:
        data = archive.read(member)
    except KeyError:
        raise CorruptDocumentError(f"{name}: no {member} in the archive") from None
    try:
        return ElementTree.fromstring(data)
    except XML_ERRORS as exc:
        if warnings is None:
            raise CorruptDocumentError(f"{name}: {member} is not well-formed XML ({exc})") from exc
        data, warning = recovered_xml(data, name, exc, part=member)
    warnings.append(warning)
    return ElementTree.fromstring(data)


def _dc_title(root: ElementTree.Element) -> str | None:
    """The Dublin Core title (an ODF's meta.xml, an EPUB's package), on one line."""
    title = root.find(f".//{_q('dc:title')}")
    text = " ".join((title.text or "").split()) if title is not None else ""
    return text or None


def _odf_title(archive: zipfile.ZipFile) -> str | None:
    try:
        meta = ElementTree.fromstring(archive.read("meta.xml"))
    except (KeyError, *XML_ERRORS):
        return None
    return _dc_title(meta)


def parse_opendocument(
    path: str,
    name: str,
    kind: str,
    ocr_pictures: bool = False,
    max_images: int = 0,
    min_image_bytes: int = 2048,
) -> ParsedDocument:
    """An OpenDocument text (``odt``: one segment), presentation (``odp``: a segment per
    slide, its speaker notes after it) or drawing (``odg``: a segment per page); with
    ``ocr_pictures``, its pictures listed in ``scans`` to be read by OCR, a marker in the
    text where each sits; up to ``max_images`` of them kept to describe."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = _member(archive, "META-INF/manifest.xml")
            if content_encrypted(manifest):
                raise EncryptedDocumentError(
                    f"{name}: password-protected (an encrypted OpenDocument file): save a "
                    "copy without a password"
                )
            if _styles_only(archive, manifest):
                raise BlankDocumentError(
                    f"{name}: styles only, no content (a template of page styles): nothing to index"
                )
            mended: list[str] = []
            content = read_xml(archive, "content.xml", name, mended)
            title = _odf_title(archive)
            try:
                styles = ElementTree.fromstring(_member(archive, "styles.xml") or b"<x/>")
            except XML_ERRORS:
                styles = ElementTree.Element("x")  # the text is readable without it
            body = content.find(_q("office:body"))
            if body is None:
                raise lost_in_mending(name, mended) or CorruptDocumentError(
                    f"{name}: content.xml has no office:body"
                )
            pictures = _pictures(archive, ocr_pictures, max_images, min_image_bytes)

            def picture(href: str) -> str:
                return pictures(posixpath.normpath(unquote(href).removeprefix("./")))

            def embedded(href: str) -> str:
                folder = posixpath.normpath(unquote(href).removeprefix("./"))
                return _embedded(_member(archive, f"{folder}/content.xml"), writer)

            try:
                numbered = _numbered_lists(styles, content)
                writer = _Writer(
                    _title_styles(styles, content),
                    numbered,
                    picture if pictures.wanted else None,
                    embedded,
                    _deletions(body),
                )
                try:
                    parsed = _opendocument(body, name, kind, title, writer, pictures)
                except (BlankDocumentError, EmptyDocumentError) as exc:
                    if (lost := lost_in_mending(name, mended)) is None:
                        raise
                    raise lost from exc
                parsed.warnings += mended
                return pictures.into(parsed)
            except RecursionError:
                raise CorruptDocumentError(f"{name}: its XML nests too deeply to read") from None
    except ZIP_ERRORS as exc:  # a member's data broken too
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc


_MATHML = "http://www.w3.org/1998/Math/MathML"
# A chart's kind, as its class names it: chart:bar is a "Bar chart".
_CHART_KINDS = {"bar": "Bar", "line": "Line", "area": "Area", "circle": "Pie", "ring": "Donut",
                "scatter": "Scatter", "radar": "Radar", "filled-radar": "Radar",
                "bubble": "Bubble", "stock": "Stock", "gantt": "Gantt"}  # fmt: skip


def _embedded(content: bytes, writer: _Writer) -> str:
    """An object an ODF file embeds (its own content.xml): a chart as its kind and title,
    then the table of its data, as docling writes a PPTX's chart; a formula as its
    source in LibreOffice Math's notation (``$E = m c^2$``), else its MathML's symbols;
    "" for another object or none."""
    try:
        root = ElementTree.fromstring(content) if content else None
    except XML_ERRORS:
        return ""
    if root is not None and root.tag == f"{{{_MATHML}}}math":
        annotation = root.find(f".//{{{_MATHML}}}annotation")
        source = annotation.text if annotation is not None else " ".join(root.itertext())
        return f"${' '.join((source or '').split())}$" if (source or "").strip() else ""
    chart = root.find(f".//{_q('chart:chart')}") if root is not None else None
    if chart is None:
        return ""
    kind = chart.get(_q("chart:class"), "").rpartition(":")[2]
    title = chart.find(_q("chart:title"))
    said = f"{_CHART_KINDS.get(kind, 'A')} chart"
    if title is not None and (text := writer.flat(list(title))):
        said += f": {text}"
    table = chart.find(f".//{_q('table:table')}")
    data = writer.table(table, missing="NaN") if table is not None else ""
    return f"{said}\n\n{data}" if data else said


def placed_objects(content: IO[bytes], tag: str, unit: str) -> Iterator[tuple[int, str]]:
    """Each ``tag`` element's link (``xlink:href``) in a ``content.xml``, in document
    order, with the number of the ``unit`` it sits in (``draw:page``, a slide;
    ``table:table``, a sheet; 0 before any): read streaming, each element dropped once
    read. XML errors are the caller's: what was found before one has been given."""
    number = 0
    for event, element in ElementTree.iterparse(content, events=("start", "end")):
        if event == "start":
            number += element.tag == _q(unit)
            continue
        if element.tag == _q(tag):
            yield number, element.get(_q("xlink:href"), "")
        element.clear()


def sheet_charts(path: str) -> Iterator[tuple[int, str]]:
    """The charts (and formulas) an OpenDocument spreadsheet embeds, each with the number
    of the sheet it sits on: calamine reads a sheet's cells, not the objects over them,
    and a chart's title had been lost. ``content.xml`` is read streaming, and only when
    the package holds an object (its own ``content.xml`` in a folder): calamine has read
    it once already."""
    writer = _Writer()
    with zipfile.ZipFile(path) as archive:
        if not any(n.endswith("/content.xml") for n in archive.namelist()):
            return
        try:
            with archive.open("content.xml") as content:
                found = list(placed_objects(content, "draw:object", "table:table"))
        except (KeyError, *XML_ERRORS, *ZIP_ERRORS):
            return  # its cells' reader said what is wrong
        for number, href in found:
            folder = posixpath.normpath(unquote(href).removeprefix("./"))
            try:
                text = _embedded(_member(archive, f"{folder}/content.xml"), writer)
            except ZIP_ERRORS:
                continue  # a damaged object: the sheet's cells are still read
            if text:
                yield number, text


def sheet_comments(path: str) -> list[tuple[int, str, list[str]]]:
    """The comments on an OpenDocument spreadsheet's cells (``office:annotation``) and
    the text of the shapes drawn on its sheets, which calamine does not read: each such
    sheet's number, name and lines (``Comment on B4 (Ann): text``, ``Text box: text``,
    a picture's alternative text ``Picture: text``),
    as an XLSX's are read (parsers/ooxml_comments.py). ``content.xml`` is parsed only
    when it holds either (found streaming)."""
    from rag_ingest.parsers.workbook import column_letters

    found: list[tuple[int, str, list[str]]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            needles = (b"<office:annotation", b"<svg:title", b"<svg:desc", *_SHAPE_NEEDLES)
            if not _holds(archive, "content.xml", *needles):
                return []
            with archive.open("content.xml") as content:
                sheet = row = column = 0
                next_row = next_column = 1
                in_cell = False  # calamine reads a cell's shapes' text as its own
                for event, element in ElementTree.iterparse(content, events=("start", "end")):
                    tag = element.tag
                    if event == "start":
                        if tag == _TABLE:
                            sheet, next_row = sheet + 1, 1
                            found.append((sheet, element.get(_q("table:name"), ""), []))
                        elif tag == _ROW:
                            row, next_column = next_row, 1
                        elif tag in _CELLS:
                            column, in_cell = next_column, True
                        continue
                    if tag in _CELLS:
                        next_column, in_cell = column + _repeated(element, "columns"), False
                    elif tag == _ROW:
                        next_row = row + _repeated(element, "rows")
                        element.clear()  # its cells, read
                    elif tag in _SHAPES and found and not in_cell:
                        if text := _shape_text(element):
                            found[-1][2].append(f"Text box: {text}")
                    elif tag == _FRAME and found:  # a picture's, in a cell or not
                        shown = " ".join(_shape_text(c) for c in element if c.tag in _SHAPES)
                        found[-1][2].extend(f"Picture: {alt}" for alt in _alt(element, shown))
                    elif tag == _ANNOTATION and found:
                        text = " ".join(
                            " ".join("".join(p.itertext()).split()) for p in element.iter(_P)
                        ).strip()
                        who = element.findtext(_q("dc:creator")) or ""
                        if text:
                            ref = f"Comment on {column_letters(column)}{row}"
                            found[-1][2].append(comment_line(ref, who, "", text))
    except (KeyError, *XML_ERRORS, *ZIP_ERRORS):
        pass  # its cells' reader said what is wrong; the comments found so far are kept
    return [sheet for sheet in found if sheet[2]]


# The value types whose number means little without how it is shown.
_SHOWN_TYPES = frozenset({"percentage", "currency"})
_VALUE_TYPE = _q("office:value-type")
_MAX_ROWS_REPEATED = 1024  # a repeated row's shown cells copied to this many rows


def ods_shown_numbers(path: str) -> dict[int, dict[int, dict[int, str]]]:
    """An ODS's percentages and amounts as its cells show them: the text LibreOffice
    writes in each ("8.03%", "1.234,50 €"), which calamine does not give, by sheet
    position, row and column (0-based). ``content.xml`` is parsed only when it holds
    such a cell (found streaming), and then by lxml through table, row and cell tags
    only (12 MB of content: 0.09 s, where ElementTree's events for every element took
    3.9 s). A file that cannot be read leaves them to their values."""
    from lxml import etree

    from rag_ingest.parsers.workbook import MAX_COLUMNS

    found: dict[int, dict[int, dict[int, str]]] = {}
    cells: dict[int, dict[int, str]] = {}
    sheet = row = column = 0
    try:
        with zipfile.ZipFile(path) as archive:
            needles = [b'value-type="%s"' % kind.encode() for kind in sorted(_SHOWN_TYPES)]
            if not _holds(archive, "content.xml", *needles):
                return found
            with archive.open("content.xml") as content:
                walked = (_TABLE, _ROW, *_CELLS)
                for event, element in etree.iterparse(
                    content, events=("start", "end"), tag=walked, huge_tree=True
                ):
                    tag = element.tag
                    if event == "start":
                        if tag == _TABLE:
                            sheet, row, cells = sheet + 1, 0, {}
                        elif tag == _ROW:
                            column = 0
                        continue
                    if tag in _CELLS:
                        repeat = _repeated(element, "columns")
                        if element.get(_VALUE_TYPE) in _SHOWN_TYPES:
                            text = " ".join(
                                "".join(p.itertext()).strip() for p in element.iter(_P)
                            ).strip()
                            for k in range(min(repeat, MAX_COLUMNS) if text else 0):
                                cells.setdefault(row, {})[column + k] = text
                        column += repeat
                        element.clear()
                    elif tag == _ROW:
                        repeat = _repeated(element, "rows")
                        for k in range(1, min(repeat, _MAX_ROWS_REPEATED) if row in cells else 1):
                            cells[row + k] = dict(cells[row])
                        row += repeat
                        element.clear()
                    elif tag == _TABLE and cells:
                        found[sheet] = cells
    except (KeyError, *ZIP_ERRORS, etree.XMLSyntaxError):
        return found
    return found


def _repeated(element: ElementTree.Element, what: str) -> int:
    """How many rows or columns a row or cell stands for (a run of empty ones is one)."""
    count = element.get(_q(f"table:number-{what}-repeated"), "1")
    return int(count) if count.isdigit() and int(count) > 0 else 1


def _holds(archive: zipfile.ZipFile, member: str, *needles: bytes) -> bool:
    """Whether ``member`` holds any of ``needles``: read streaming, never whole."""
    tail = b""
    keep = max(len(needle) for needle in needles)
    with archive.open(member) as part:
        while chunk := part.read(1 << 20):
            if any(needle in tail + chunk for needle in needles):
                return True
            tail = chunk[-keep:]
    return False


def _shape_text(shape: ElementTree.Element) -> str:
    """A drawn shape's own paragraphs (its lists' too), on one line; not a comment's."""
    paragraphs = []
    stack = list(reversed(shape))
    while stack:
        element = stack.pop()
        if element.tag in (_P, _H):
            paragraphs.append(" ".join("".join(element.itertext()).split()))
        elif element.tag not in _SHAPES and element.tag != _ANNOTATION:
            stack.extend(reversed(element))
    return " ".join(p for p in paragraphs if p)


def _opendocument(
    body: ElementTree.Element,
    name: str,
    kind: str,
    title: str | None,
    writer: _Writer,
    pictures: PictureSource,
) -> ParsedDocument:
    segments: list[Segment] = []
    pages = None
    if kind in ("odp", "odg"):  # a drawing's pages are a presentation's slides
        slides = list(body.iter(_q("draw:page")))
        for number, slide in enumerate(slides, start=1):
            pictures.page = number
            text = "\n\n".join(writer.blocks(*slide))
            said = writer.flat(slide.findall(f"{_q('presentation:notes')}/*"))
            if said:
                text = f"{text}\n\nSpeaker notes: {said}".lstrip()
            text = after_text(text, _text_comments(slide, (_SLIDE_ANNOTATION, _ANNOTATION)))
            if text:
                segments.append(Segment(text, page=number))
        pages = len(slides)
    else:
        text = "\n\n".join(writer.blocks(*body))
        if text and title and title not in text[:1000]:
            text = f"# {title}\n\n{text}"
        if kind == "odt":
            text = after_text(text, _text_comments(body))
        if text:
            segments.append(Segment(text))
    if not segments and not pictures.images:
        if next(body.iter(_q("draw:image")), None) is not None:
            raise EmptyDocumentError(f"{name}: no text besides its pictures")
        raise BlankDocumentError(f"{name}: no text and no pictures: nothing to index")
    return ParsedDocument(kind, segments, parser=f"odf-{kind}", pages=pages)


def _text_comments(body: ElementTree.Element, tags: tuple[str, ...] = (_ANNOTATION,)) -> list[str]:
    """A text document's or a slide's comments (``tags``: ``office:annotation``, and
    Impress's), ``Comment (Ann) on "the text it marks": text`` each, in document order:
    left out of its text (inline, they broke its sentences), they are listed after it,
    as a DOCX's are. The marked text is read when the comment's end is in the same
    paragraph, as LibreOffice writes a comment on a passage within one."""
    lines = []
    for parent in body.iter():
        children = list(parent)
        for at, note in enumerate(children):
            if note.tag not in tags:
                continue
            said = " ".join(
                " ".join("".join(p.itertext()).split()) for p in note if p.tag in (_P, _LIST)
            ).strip()
            if not said:
                continue
            who = note.findtext(_q("dc:creator")) or ""
            marked: list[str] = []  # none for a point, or a passage past its paragraph
            if name := note.get(_q("office:name")):
                passage = [note.tail or ""]
                for sibling in children[at + 1 :]:
                    if sibling.tag == _ANNOTATION_END and sibling.get(_q("office:name")) == name:
                        marked = passage
                        break
                    passage += [*sibling.itertext(), sibling.tail or ""]
            lines.append(comment_line("Comment", who, "".join(marked), said))
    return lines


def _pictures(
    archive: zipfile.ZipFile, ocr: bool, max_images: int, min_image_bytes: int
) -> PictureSource:
    """The pictures of an ODF or EPUB archive, by their paths in it."""

    def load(member: str) -> tuple[bytes, str | None]:
        return _member(archive, member), mimetypes.guess_type(member)[0]

    return PictureSource(load, ocr, max_images, min_image_bytes)


def _styles_only(archive: zipfile.ZipFile, manifest: bytes) -> bool:
    """Whether the package has no ``content.xml`` and its manifest lists none: a template
    LibreOffice saves of styles alone (its own ``Default.ott``), not a damaged file."""
    names = set(archive.namelist())
    listed = b'full-path="content.xml"' in manifest
    return "content.xml" not in names and "styles.xml" in names and bool(manifest) and not listed


# A manifest's entry for content.xml, and the encryption data it holds when encrypted.
_CONTENT_ENTRY = re.compile(
    rb"<manifest:file-entry\b[^>]*?manifest:full-path=\"content\.xml\"[^>]*?(?:/>|>(.*?)"
    rb"</manifest:file-entry>)",
    re.DOTALL,
)


def content_encrypted(manifest: bytes) -> bool:
    """Whether an OpenDocument manifest says the document's content is encrypted (a
    password on the file), not only a macro library's (a password on its Basic code:
    LibreOffice's fdo68983.odt had been refused as password-protected)."""
    entry = _CONTENT_ENTRY.search(manifest)
    return entry is not None and b"encryption-data" in (entry[1] or b"")


def _member(archive: zipfile.ZipFile, member: str) -> bytes:
    try:
        return archive.read(member)
    except KeyError:
        return b""


_BODY = re.compile(rb"<body[^>]*>(.*)</body\s*>", re.IGNORECASE | re.DOTALL)
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
# Fonts an EPUB obfuscates (IDPF, Adobe) are listed in encryption.xml; anything else
# there is DRM over the text.
_FONT = re.compile(r"\.(?:otf|ttf|woff2?)$", re.IGNORECASE)


def _chapters(archive: zipfile.ZipFile, name: str) -> tuple[list[str], str | None]:
    """The spine's XHTML members in reading order, and the book's title."""
    container = read_xml(archive, "META-INF/container.xml", name)
    rootfile = container.find(f".//{_q('container:rootfile')}")
    opf_path = rootfile.get("full-path") if rootfile is not None else None
    if not opf_path:
        raise CorruptDocumentError(f"{name}: META-INF/container.xml names no package file")
    opf = read_xml(archive, opf_path, name)
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): item
        for item in opf.iter(_q("opf:item"))
        if "nav" not in (item.get("properties") or "").split()  # the table of contents
    }
    chapters = []
    for ref in opf.iter(_q("opf:itemref")):
        item = manifest.get(ref.get("idref"))
        if item is not None and "html" in (item.get("media-type") or ""):
            href = unquote(item.get("href") or "")  # a URL: "chapter%201.xhtml"
            chapters.append(posixpath.normpath(posixpath.join(base, href)))
    return chapters, _dc_title(opf)


def _encrypted_text(archive: zipfile.ZipFile) -> bool:
    listing = _member(archive, "META-INF/encryption.xml")
    if not listing:
        return False
    try:
        root = ElementTree.fromstring(listing)
    except XML_ERRORS:
        return True
    uris = [e.get("URI") or "" for e in root.iter() if e.tag.endswith("CipherReference")]
    return any(not _FONT.search(uri) for uri in uris)


def parse_epub(
    path: str, name: str, max_images: int, min_image_bytes: int, ocr_pictures: bool = False
) -> ParsedDocument:
    """An EPUB book: its chapters' bodies in spine order, one HTML page for docling;
    its pictures (docling does not load an HTML page's) read by OCR where they sit, with
    ``ocr_pictures``, and up to ``max_images`` kept to describe."""
    from rag_ingest.parsers.office import parse_html

    try:
        with zipfile.ZipFile(path) as archive:
            if _encrypted_text(archive):
                raise EncryptedDocumentError(
                    f"{name}: its text is encrypted (DRM): only DRM-free EPUBs can be read"
                )
            chapters, title = _chapters(archive, name)
            pictures = _pictures(archive, ocr_pictures, max_images, min_image_bytes)
            bodies = []
            for number, member in enumerate(chapters, 1):
                xhtml = _member(archive, member)
                if xhtml[:2] in (b"\xff\xfe", b"\xfe\xff"):  # XHTML may be UTF-16
                    xhtml = xhtml.decode("utf-16", errors="replace").encode()
                found = _BODY.search(xhtml)
                body = found.group(1) if found else _XML_DECLARATION.sub(b"", xhtml)
                if pictures.wanted:
                    folder = posixpath.dirname(member)

                    def picture(link: str, folder: str = folder) -> str:
                        # A URL or a data: URI names no file in the book: no marker.
                        return pictures(posixpath.normpath(posixpath.join(folder, unquote(link))))

                    body = with_markers(body, picture)
                # Where the chapter ends, to split docling's Markdown by chapter.
                bodies.append(body + f"<p>&#{_CHAPTER};{number}&#{_CHAPTER + 1};</p>".encode())
    except ZIP_ERRORS as exc:  # a member's data broken too
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc
    head = f"<title>{html.escape(title)}</title>" if title else ""
    start = f'<html><head><meta charset="utf-8">{head}</head><body>'.encode()
    page = b"".join([start, *bodies, b"</body></html>"])
    try:
        parsed = parse_html(page, name, 0, min_image_bytes)
    except EmptyDocumentError:
        if not pictures.images:
            raise
        parsed = ParsedDocument("html", [], parser="docling-html")
    parsed = dataclasses.replace(
        parsed,
        file_type="epub",
        parser="docling-epub",
        segments=_by_chapter(parsed.segments),
        pages=len(chapters),
    )
    return pictures.into(parsed)


# A chapter's end: U+F0002, its number, U+F0003 (the supplementary private-use plane,
# which docling's HTML reader keeps, as it does the pictures' markers).
_CHAPTER = 0xF0002
_CHAPTER_MARK = re.compile(f"\\s*{chr(_CHAPTER)}(\\d+){chr(_CHAPTER + 1)}\\s*")


def _by_chapter(segments: list[Segment]) -> list[Segment]:
    """The book's text a segment per chapter, its page the chapter's place in the
    spine (a chunk says which chapters it spans), the book's title with the first. An
    empty chapter (a cover picture, a blank page) leaves no segment."""
    parts = _CHAPTER_MARK.split("\n\n".join(s.text for s in segments))
    out: list[Segment] = []
    for text, number in zip(parts[0::2], parts[1::2], strict=False):
        if text.strip():
            out.append(Segment(text.strip(), page=int(number)))
    rest = parts[-1].strip()  # after the last mark: none is lost
    if rest:
        out.append(Segment(rest, page=out[-1].page if out else None))
    return out
