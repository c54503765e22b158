"""Excel 2003 XML workbooks (SpreadsheetML, ``<?mso-application progid="Excel.Sheet"?>``):
Excel's "XML Spreadsheet 2003", which reporting tools and scripts still export as
"Excel". Each worksheet is one table of its rows, as a workbook's sheets are read
(parsers/workbook.py); read as text, one had been its styles and tags.

Streamed: each row is dropped once read, so a large export is never held whole.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from rag_ingest.parsers.base import ParsedDocument, Segment, lost_in_mending, streamed_xml
from rag_ingest.parsers.workbook import MAX_COLUMNS, empty_sheets, sheet_lines, sheet_segment

__all__ = ["parse_spreadsheetml"]

_SS = "{urn:schemas-microsoft-com:office:spreadsheet}"
_WORKSHEET, _ROW, _CELL, _DATA = (f"{_SS}{tag}" for tag in ("Worksheet", "Row", "Cell", "Data"))
_NAME, _INDEX, _MERGE, _TYPE = (f"{_SS}{a}" for a in ("Name", "Index", "MergeAcross", "Type"))


def parse_spreadsheetml(path: str, name: str) -> ParsedDocument:
    """Each worksheet as ``# Sheet: name`` and its rows (a page each, by position)."""
    (segments, sheets), warnings = streamed_xml(path, name, _sheets)
    if not segments:
        raise lost_in_mending(name, warnings) or empty_sheets(name)
    return ParsedDocument(
        "spreadsheetml", segments, parser="spreadsheetml", pages=sheets, warnings=warnings
    )


def _sheets(events: Iterator[tuple[str, Any]]) -> tuple[list[Segment], int]:
    """The worksheets' segments, and how many worksheets there are."""
    segments: list[Segment] = []
    rows: list[list[Any]] = []
    sheets = 0
    _, root = next(events)  # the workbook (detect() knows it by its root)
    for event, element in events:
        if event == "start":
            if element.tag == _WORKSHEET:
                sheets += 1
                rows = []
            continue
        if element.tag == _ROW:
            rows.append(_row(element))
            element.clear()
        elif element.tag == _WORKSHEET:
            lines = sheet_lines(rows)
            if lines:
                title = element.get(_NAME) or f"Sheet{sheets}"
                segments.append(sheet_segment(title, lines, sheets))
            element.clear()
            root.clear()  # the sheets read so far
    return segments, sheets


def _row(row: ElementTree.Element) -> list[Any]:
    """A row's values by column: a cell's ss:Index places it, a merged cell covers the
    columns after it."""
    values: list[Any] = []
    for cell in row.iter(_CELL):
        index = cell.get(_INDEX, "")
        column = int(index) - 1 if index.isdigit() else len(values)
        if not 0 <= column < MAX_COLUMNS:
            continue
        values.extend([None] * (column - len(values)))
        data = cell.find(_DATA)
        values.append(None if data is None else _value(data))
        merged = cell.get(_MERGE, "")
        if merged.isdigit():
            values.extend([None] * min(int(merged), MAX_COLUMNS - len(values)))
    return values


def _value(data: ElementTree.Element) -> Any:
    """A cell's value: a number, a date, or its text (rich text's runs joined)."""
    text = "".join(data.itertext())
    kind = data.get(_TYPE)
    try:
        if kind == "Number":
            return float(text)
        if kind == "DateTime":
            return datetime.datetime.fromisoformat(text)
    except ValueError:
        pass
    return text
