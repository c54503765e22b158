"""Word 2003 XML documents (WordprocessingML 2003, ``<w:wordDocument>``): Word's "XML
Document" of Office 2003, still written by mail-merge and reporting tools. Read here as
Markdown from their XML, as OpenDocument text is (parsers/opendoc.py): headings (by
their style's name or outline level), lists (numbered as their definitions say), tables,
footnotes inline, text boxes after their paragraph, pictures (base64 in ``w:binData``)
by OCR. Comments, deleted text and field codes are left out. Read as text, one had been
its styles and tags.
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from xml.etree import ElementTree

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import (
    ParsedDocument,
    ParseOptions,
    Segment,
    after_text,
    comment_line,
    lost_in_mending,
    markdown_table,
    xml_file_root,
)
from rag_ingest.parsers.pictures import HeldPictures
from rag_ingest.parsers.symbol_fonts import run_text, sym_text, word_slots

__all__ = ["parse_wordml"]

_W = "{http://schemas.microsoft.com/office/word/2003/wordml}"
_AML = "{http://schemas.microsoft.com/aml/2001/core}"
_VAL, _TYPE = f"{_W}val", f"{_W}type"
# Only w:t elements are read: field codes (w:instrText) and deleted text (w:delText)
# are not. A comment's paragraphs are left out too.
_COMMENT = "Word.Comment"  # an aml:annotation's type
_LISTED = f"{_W}pPr/{_W}listPr"
# Number formats (w:nfc) that mark an item without a number: a bullet, none.
_UNNUMBERED = frozenset({"23", "255"})
# A heading style's name: Word's "heading 1", LibreOffice's "Heading_20_1".
_HEADING = re.compile(r"heading[ _]*(?:20_)?(\d)$", re.IGNORECASE)


def parse_wordml(path: str, name: str, options: ParseOptions | None = None) -> ParsedDocument:
    """One segment of Markdown, its pictures read as ``options`` say (by OCR where they
    sit, kept to describe, or said unread)."""
    warnings: list[str] = []
    root = xml_file_root(path, name, warnings)
    body = root.find(f"{_W}body")
    if body is None:
        raise lost_in_mending(name, warnings) or CorruptDocumentError(
            f"{name}: not a Word 2003 XML document"
        )
    pictures = HeldPictures(options or ParseOptions())
    writer = _Writer(_heading_levels(root), _Numbering(root), pictures)
    try:
        text = "\n\n".join(writer.blocks(body))
        if text:
            text = after_text(text, writer.comments)
    except RecursionError:
        raise CorruptDocumentError(f"{name}: its XML nests too deeply to read") from None
    if not text and not pictures.images:
        if lost := lost_in_mending(name, warnings):
            raise lost
        if pictures.held:
            raise EmptyDocumentError(f"{name}: no text besides its pictures")
        raise BlankDocumentError(f"{name}: no text and no pictures: nothing to index")
    parsed = ParsedDocument("wordml", [Segment(text)] if text else [], "wordml", warnings=warnings)
    return pictures.into(parsed)


def _heading_levels(root: ElementTree.Element) -> dict[str, int]:
    """Paragraph style ID -> heading level, by the style's name or outline level."""
    levels = {}
    for style in root.iter(f"{_W}style"):
        named = style.find(f"{_W}name")
        found = _HEADING.search(named.get(_VAL, "") if named is not None else "")
        outline = style.find(f"{_W}pPr/{_W}outlineLvl")
        level = int(found[1]) if found else None
        if level is None and outline is not None and outline.get(_VAL, "").isdigit():
            level = int(outline.get(_VAL, "")) + 1
        if level and 1 <= level <= 6:
            levels[style.get(f"{_W}styleId", "")] = level
    return levels


def _value(element: ElementTree.Element | None, default: str) -> str:
    return element.get(_VAL, default) if element is not None else default


def _find(tag: str, *places: ElementTree.Element | None) -> ElementTree.Element | None:
    """``tag`` in the first of ``places`` that has it (a paragraph's own, then its style's)."""
    for place in places:
        found = place.find(tag) if place is not None else None
        if found is not None:
            return found
    return None


def _number(element: ElementTree.Element | None, default: int) -> int:
    """An element's ``w:val`` as a whole number, ``default`` for none."""
    value = element.get(_VAL, "") if element is not None else ""
    return int(value) if value.isdigit() else default


class _Numbering:
    """Lists' item labels: a list (``w:ilfo``) takes each level's number format and
    start from its definition (``w:listDef``) and counts its items across the
    document, as Word does, a level's count starting again under a new item above."""

    def __init__(self, root: ElementTree.Element) -> None:
        formats: dict[str, dict[int, tuple[str, int]]] = {}
        for definition in root.iter(f"{_W}listDef"):
            formats[definition.get(f"{_W}listDefId", "")] = {
                int(level.get(f"{_W}ilvl", "0")): (
                    _value(level.find(f"{_W}nfc"), "0"),
                    _number(level.find(f"{_W}start"), 1),
                )
                for level in definition.findall(f"{_W}lvl")
                if level.get(f"{_W}ilvl", "0").isdigit()
            }
        self.lists = {
            listed.get(f"{_W}ilfo", ""): formats.get(_value(listed.find(f"{_W}ilst"), ""), {})
            for listed in root.iter(f"{_W}list")
        }
        # A paragraph style that makes its paragraphs items ("List Number"), by its listPr.
        self.styled: dict[str, ElementTree.Element] = {}
        for style in root.iter(f"{_W}style"):
            listed = style.find(_LISTED)
            if listed is not None:
                self.styled[style.get(f"{_W}styleId", "")] = listed
        self.counts: dict[str, list[int | None]] = {}
        self.indents = [0]  # where each level's text starts, in the list last written

    def label(self, paragraph: ElementTree.Element) -> str | None:
        """The item's indent and label (``"   2. "``), None if not a list item."""
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        styled = self.styled.get(_value(style, ""))
        listed = paragraph.find(_LISTED)
        ilfo = _value(_find(f"{_W}ilfo", listed, styled), "")
        if (listed is None and styled is None) or ilfo == "0":  # ilfo 0: numbering off
            return None
        depth = min(_number(_find(f"{_W}ilvl", listed, styled), 0), 8)
        number_format, start = self.lists.get(ilfo, {}).get(depth, ("23", 1))
        counts = self.counts.setdefault(ilfo, [])
        counts[depth + 1 :] = []
        counts += [None] * (depth + 1 - len(counts))
        count = counts[depth]
        counts[depth] = count = start if count is None else count + 1
        lead = "- " if number_format in _UNNUMBERED else f"{count}. "
        self.indents[depth + 1 :] = []
        while len(self.indents) <= depth:
            self.indents.append(self.indents[-1] + 2)
        indent = self.indents[depth]
        self.indents.append(indent + len(lead))
        return " " * indent + lead


class _Writer:
    def __init__(
        self, levels: dict[str, int], numbering: _Numbering, pictures: HeldPictures
    ) -> None:
        self.levels = levels
        self.numbering = numbering
        self.pictures = pictures
        self.comments: list[str] = []  # listed after the text, as a DOCX's are

    def blocks(self, container: ElementTree.Element) -> list[str]:
        """The Markdown blocks of a body, a section, a cell or a text box."""
        out: list[str] = []
        listing = False  # the last block is a list: its next item joins it
        for element in container:
            if element.tag == f"{_W}p":
                after: list[str] = []
                line, item = self._paragraph(element, after)
                if item and listing and not after:
                    out[-1] += f"\n{line}"
                    continue
                out += [b for b in (line, *after) if b]
                listing = item and not after
            elif element.tag == f"{_W}tbl":
                out.append(self._table(element))
                listing = False
            elif element.tag not in (f"{_W}sectPr", f"{_AML}annotation"):
                out += self.blocks(element)  # wx:sect, wx:sub-section, w:sdt...
                listing = False
        return [b for b in out if b]

    def _paragraph(self, paragraph: ElementTree.Element, after: list[str]) -> tuple[str, bool]:
        """A paragraph's Markdown ("" for none), and whether it is a list item."""
        lines = self._inline(paragraph, after).split("\n")
        text = "\n".join(" ".join(line.split()) for line in lines).strip()
        if not text:
            return "", False
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        outline = paragraph.find(f"{_W}pPr/{_W}outlineLvl")
        level = self.levels.get(style.get(_VAL, "") if style is not None else "")
        if outline is not None and outline.get(_VAL, "").isdigit():
            level = int(outline.get(_VAL, "")) + 1
        if level and level <= 6:
            return f"{'#' * level} {' '.join(text.split())}", False
        label = self.numbering.label(paragraph)
        if label is None:
            return text, False
        return label + text.replace("\n", "\n" + " " * len(label)), True

    def _inline(self, element: ElementTree.Element, after: list[str]) -> str:
        """A paragraph's text; text boxes in it go to ``after``. A run's text set in a
        symbol font, and a ``w:sym``, as the characters they show."""
        parts: list[str] = []
        slots = word_slots(element, _W, "h-ansi") if element.tag == f"{_W}r" else (None, None)
        for child in element:
            tag = child.tag
            if tag == f"{_W}t":
                parts.append(run_text(child.text or "", slots))
            elif tag == f"{_W}sym":
                parts.append(sym_text(child.get(f"{_W}font"), child.get(f"{_W}char")))
            elif tag == f"{_W}tab":
                parts.append(" ")
            elif tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
            elif tag in (f"{_W}footnote", f"{_W}endnote"):
                note = " ".join(" ".join(self.blocks(child)).split())
                parts.append(f" (note: {note})" if note else "")
            elif tag == f"{_W}txbxContent":
                after += self.blocks(child)
            elif tag == f"{_W}binData":
                after.append(self._picture(child))
            elif tag == f"{_AML}annotation" and child.get(_TYPE) == _COMMENT:
                content = child.find(f"{_AML}content")
                blocks = self.blocks(child if content is None else content)
                said = " ".join(" ".join(blocks).split())
                if said:
                    who = child.get(f"{_AML}author", "")
                    self.comments.append(comment_line("Comment", who, "", said))
            else:
                parts.append(self._inline(child, after))
        return "".join(parts)

    def _picture(self, data: ElementTree.Element) -> str:
        """The OCR marker for a picture held in base64 ("" for none), its own block."""
        try:
            blob = binascii.a2b_base64(data.text or "")
        except (binascii.Error, ValueError):
            return ""
        # By the name's last part: "wordml://02000001.png" is a URL to Python 3.13's
        # guess_type, whose scheme it does not know (no type; 3.11 said image/png).
        name = data.get(f"{_W}name", "").rsplit("/", 1)[-1]
        mime = mimetypes.guess_type(name)[0] or ""
        return self.pictures.marker(self.pictures.keep(blob, mime))

    def _table(self, table: ElementTree.Element) -> str:
        """A Markdown table; a table in a cell is its cells' text there."""
        grid = []
        for row in table.findall(f"{_W}tr"):
            cells = [self._cell(cell).replace("|", "\\|") for cell in row.findall(f"{_W}tc")]
            if any(cells):
                grid.append(cells)
        return markdown_table(grid)

    def _cell(self, cell: ElementTree.Element) -> str:
        """A cell's text on one line."""
        parts = []
        for element in cell:
            if element.tag == f"{_W}tbl":
                rows = element.findall(f"{_W}tr")
                parts += [self._cell(c) for row in rows for c in row.findall(f"{_W}tc")]
            elif element.tag == f"{_W}p":
                after: list[str] = []
                parts += [self._paragraph(element, after)[0], *after]
        return " ".join(" ".join(parts).split())
