"""Uniform Office Format 1.0 (GB/T 20916-2007): China's standard for office documents,
one XML file each, ``.uot`` text, ``.uos`` spreadsheets and ``.uop`` presentations, as
LibreOffice, WPS Office and Yozo Office write them. Read as text, a file had been its
markup: a page of text came out as 24,000 tokens of styles and tags.

Text: paragraphs in order, headings by their outline level, tables as Markdown, a
footnote where it is cited ``(note: ...)``, a text box where it is anchored, comments
listed after the text. A spreadsheet: each sheet's rows, as a workbook's are read. A
presentation: each slide's text boxes in order (a title placeholder as its heading), then
its speaker notes; not the placeholders for its footer, date or number.
"""

from __future__ import annotations

import functools
from xml.etree import ElementTree

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, UnsupportedFileTypeError
from rag_ingest.parsers.base import (
    ParsedDocument,
    Segment,
    after_text,
    comment_line,
    lost_in_mending,
    markdown_table,
    qualified,
    xml_file_root,
)

__all__ = ["parse_uof"]

_NS = {
    "uof": "http://schemas.uof.org/cn/2003/uof",
    "字": "http://schemas.uof.org/cn/2003/uof-wordproc",
    "表": "http://schemas.uof.org/cn/2003/uof-spreadsheet",
    "演": "http://schemas.uof.org/cn/2003/uof-slideshow",
    "图": "http://schemas.uof.org/cn/2003/graph",
}


_q = functools.partial(qualified, _NS)


_PARAGRAPH, _RUN_TEXT, _TABLE = _q("字:段落"), _q("字:文本串"), _q("字:文字表")
_NOTES = (_q("字:脚注"), _q("字:尾注"))
# A slide's graphic, and a text's (in its 字:锚点), by reference to the object set.
_ANCHOR, _GRAPHIC_REF = _q("uof:锚点"), _q("uof:图形引用")
_PLACED, _PLACED_REF = _q("字:图形"), _q("字:图形引用")
# Not the text: a field's code (its result follows it).
_SKIPPED = {_q("字:域代码")}
_BREAKS = {_q("字:换行符"): "\n", _q("字:制表符"): "\t", _q("字:空格符"): " "}
_KINDS = {"vnd.uof.text": "uot", "vnd.uof.spreadsheet": "uos", "vnd.uof.presentation": "uop"}
# Slide placeholders repeated from the master on every slide.
_RUNNING = {"footer", "header", "date", "number"}


def parse_uof(path: str, name: str) -> ParsedDocument:
    warnings: list[str] = []
    root = xml_file_root(path, name, warnings)
    if root.tag != _q("uof:UOF"):
        raise CorruptDocumentError(f"{name}: not a Uniform Office Format document")
    mimetype = root.get(_q("uof:mimetype"), "")
    kind = _KINDS.get(mimetype)
    if kind is None:
        raise UnsupportedFileTypeError(
            f"{name}: a Uniform Office Format document of type {mimetype!r}, not one known"
        )
    graphics = {
        g.get(_q("图:标识符"), ""): g for g in root.iterfind(f"{_q('uof:对象集')}/{_q('图:图形')}")
    }
    writer = _Writer(graphics)
    pages = None
    if kind == "uot":
        segments = [Segment(writer.text_document(root))]
    elif kind == "uos":
        segments = _sheets(root, writer)
    else:
        slides = list(root.iter(_q("演:幻灯片")))
        segments = [Segment(writer.slide(s), page=n) for n, s in enumerate(slides, start=1)]
        pages = len(slides)
    segments = [s for s in segments if s.text.strip()]
    if not segments:
        raise lost_in_mending(name, warnings) or BlankDocumentError(
            f"{name}: a Uniform Office Format document with no text: nothing to index"
        )
    return ParsedDocument(kind, segments, parser="uof", pages=pages, warnings=warnings)


class _Writer:
    def __init__(self, graphics: dict[str, ElementTree.Element]) -> None:
        self.graphics = graphics

    def text_document(self, root: ElementTree.Element) -> str:
        blocks: list[str] = []
        title = " ".join((root.findtext(f"{_q('uof:元数据')}/{_q('uof:标题')}") or "").split())
        words = root.find(_q("uof:文字处理"))
        if words is None:
            return ""
        body = words.find(_q("字:主体"))
        for element in body if body is not None else ():
            if element.tag == _PARAGRAPH:
                blocks.append(self.paragraph(element, heading=True))
            elif element.tag == _TABLE:
                blocks.append(self.table(element))
        text = "\n\n".join(b for b in blocks if b.strip())
        if title and title not in text[:1000]:
            text = f"# {title}\n\n{text}"
        comments = [
            comment_line("Comment", "", "", said)
            for note in words.iter(_q("字:批注"))
            if (said := " ".join(self.paragraph(p) for p in note.iter(_PARAGRAPH)).strip())
        ]
        return after_text(text, comments)

    def paragraph(self, paragraph: ElementTree.Element, *, heading: bool = False) -> str:
        """A paragraph's text on one line (its line breaks kept), a heading marked by
        its outline level when ``heading``."""
        parts: list[str] = []
        boxes: list[str] = []
        self.inline(paragraph, parts, boxes)
        text = "\n".join(" ".join(line.split()) for line in "".join(parts).split("\n"))
        text = text.strip()
        level = paragraph.findtext(f"{_q('字:段落属性')}/{_q('字:大纲级别')}") if heading else None
        if text and level and level.strip().isdigit() and 0 < int(level) <= 6:
            text = f"{'#' * int(level)} {text}"
        return "\n\n".join([text, *boxes]) if boxes else text

    def inline(self, element: ElementTree.Element, parts: list[str], boxes: list[str]) -> None:
        for child in element:
            if child.tag in _SKIPPED:
                continue
            if child.tag == _RUN_TEXT:
                parts.append(child.text or "")
            elif child.tag in _BREAKS:
                parts.append(_BREAKS[child.tag])
            elif child.tag in _NOTES:
                note = " ".join(self.paragraph(p) for p in child.iter(_PARAGRAPH)).strip()
                if note:
                    parts.append(f" (note: {' '.join(note.split())})")
            elif child.tag == _PLACED:
                boxes.append(self.graphic(child.get(_PLACED_REF, "")))
            else:
                self.inline(child, parts, boxes)

    def graphic(self, reference: str) -> str:
        """The text of the graphic (a text box) ``reference`` names."""
        graphic = self.graphics.get(reference)
        content = graphic.find(_q("图:文本内容")) if graphic is not None else None
        if content is None:
            return ""
        return "\n\n".join(t for p in content.iter(_PARAGRAPH) if (t := self.paragraph(p)))

    def table(self, table: ElementTree.Element) -> str:
        grid = [
            [
                " ".join(self.paragraph(p) for p in cell.iter(_PARAGRAPH)).replace("|", "\\|")
                for cell in row.iter(_q("字:单元格"))
            ]
            for row in table.iter(_q("字:行"))
        ]
        return markdown_table([[" ".join(c.split()) for c in row] for row in grid if any(row)])

    def slide(self, slide: ElementTree.Element) -> str:
        """A slide's text boxes in order, then its speaker notes."""
        blocks = []
        for anchor in slide.findall(_ANCHOR):
            placeholder = anchor.get(_q("uof:占位符"), "")
            text = self.graphic(anchor.get(_GRAPHIC_REF, ""))
            if placeholder in _RUNNING or not text:
                continue
            blocks.append(f"# {' '.join(text.split())}" if placeholder == "title" else text)
        text = "\n\n".join(blocks)
        notes = slide.find(_q("演:幻灯片备注"))
        said = "\n".join(
            t
            for a in (notes.findall(_ANCHOR) if notes is not None else ())
            if (t := self.graphic(a.get(_GRAPHIC_REF, "")))
        )
        if said:
            text = f"{text}\n\nSpeaker notes: {' '.join(said.split())}".lstrip()
        return text


def _sheets(root: ElementTree.Element, writer: _Writer) -> list[Segment]:
    """Each sheet's rows under its name, numbered by its position."""
    from rag_ingest.parsers.workbook import sheet_lines, sheet_segment

    segments = []
    for number, sheet in enumerate(root.iter(_q("表:工作表")), start=1):
        rows: list[list[str]] = []
        for row in sheet.iter(_q("表:行")):
            cells: list[str] = []
            for cell in row.findall(_q("表:单元格")):
                column = cell.get(_q("表:列号"), "")
                if column.isdigit() and 0 < int(column) <= 16_384:
                    cells += [""] * (int(column) - 1 - len(cells))  # the cells it skips
                data = cell.find(_q("表:数据"))
                parts: list[str] = []
                if data is not None:
                    writer.inline(data, parts, [])
                cells.append(" ".join("".join(parts).split()))
            rows.append(cells)
        lines = sheet_lines(rows)
        if lines:
            segments.append(sheet_segment(sheet.get(_q("表:名称"), ""), lines, number))
    return segments
