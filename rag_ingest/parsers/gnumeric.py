"""Gnumeric workbooks (``.gnumeric``: gzip-compressed XML, ``<gnm:Workbook>``), as GNOME's
spreadsheet saves them. Each sheet is one table of its rows, as a workbook's sheets are
read (parsers/workbook.py), its cell comments after it; read as text, one had been its
styles and tags.

A formula's cell holds its expression, not its value (Gnumeric computes it on opening):
left out, as an empty cell. Streamed: each cell is dropped once read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from rag_ingest.parsers.base import (
    ParsedDocument,
    Segment,
    comment_line,
    lost_in_mending,
    streamed_xml,
)
from rag_ingest.parsers.workbook import MAX_COLUMNS, empty_sheets, sheet_lines, sheet_segment

__all__ = ["parse_gnumeric"]

_GNM = "{http://www.gnumeric.org/v10.dtd}"
_SHEET, _CELL, _COMMENT, _NAME = (f"{_GNM}{t}" for t in ("Sheet", "Cell", "CellComment", "Name"))
# Gnumeric's value types: 20 a boolean, 40 a number, 60 a string (10 empty, 30 an error,
# 70 a range, 80 an array: left out).
_NUMBER, _TEXT, _BOOLEAN = "40", "60", "20"
# The last row Gnumeric allows (its last column is Excel's): a cell placed past either
# (hostile) is not read.
_MAX_ROWS = 16_777_216


def parse_gnumeric(path: str, name: str) -> ParsedDocument:
    """Each sheet as ``# Sheet: name`` and its rows (a page each, by position)."""
    (segments, sheets), warnings = streamed_xml(path, name, _sheets)
    if not segments:
        raise lost_in_mending(name, warnings) or empty_sheets(name)
    return ParsedDocument("gnumeric", segments, parser="gnumeric", pages=sheets, warnings=warnings)


def _sheets(events: Iterator[tuple[str, Any]]) -> tuple[list[Segment], int]:
    """The sheets' segments, and how many sheets there are."""
    segments: list[Segment] = []
    cells: dict[int, dict[int, Any]] = {}
    comments: list[str] = []
    sheets = 0
    for event, element in events:
        if event == "start":
            if element.tag == _SHEET:
                sheets += 1
                cells, comments = {}, []
            continue
        if element.tag == _CELL:
            _place(element, cells)
            element.clear()
        elif element.tag == _COMMENT and (text := element.get("Text", "").strip()):
            comments.append(
                comment_line(f"Comment on {element.get('ObjectBound', '?')}", "", "", text)
            )
        elif element.tag == _SHEET:
            lines = sheet_lines(_rows(cells)) + comments
            if lines:
                title = element.findtext(_NAME) or f"Sheet{sheets}"
                segments.append(sheet_segment(title, lines, sheets))
            element.clear()
    return segments, sheets


def _place(cell: ElementTree.Element, cells: dict[int, dict[int, Any]]) -> None:
    """Put a cell's value in ``cells`` (row -> column -> value), if it has one."""
    row, column = cell.get("Row", ""), cell.get("Col", "")
    if not (row.isdigit() and column.isdigit()):
        return
    if int(row) >= _MAX_ROWS or int(column) >= MAX_COLUMNS:
        return
    kind, text = cell.get("ValueType"), cell.text or ""
    value: Any = None
    if kind == _TEXT:
        value = text
    elif kind == _NUMBER:
        try:
            value = float(text)
        except ValueError:
            value = text
    elif kind == _BOOLEAN:
        value = text.upper() == "TRUE"
    if value is not None:
        cells.setdefault(int(row), {})[int(column)] = value


def _rows(cells: dict[int, dict[int, Any]]) -> list[list[Any]]:
    """The rows that hold a value, in order, each its values by column."""
    rows = []
    for number in sorted(cells):
        row = cells[number]
        values: list[Any] = [None] * (max(row) + 1)
        for column, value in row.items():
            values[column] = value
        rows.append(values)
    return rows
