"""Markdown tables as parsers write them, without the rows and columns that hold nothing,
and which merged cells are labels to write in each row they span.

A form or an invoice laid out as a grid (LibreOffice's 1C invoice test file: 33 columns,
most of them there only to place a merged cell) is written as a table whose rows and
columns are mostly empty cells: tokens in every chunk, and no meaning.
"""

from __future__ import annotations

import re

__all__ = ["TABLE_RULE", "is_label", "without_empty_rows_and_columns"]

# The line under a Markdown table's header: |---|:---:|
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$")


# A merged cell this short is a label ("France", "2023"), written in each row it spans so
# that a chunk of the rows still says what each row is about.
_LABEL = 40


def is_label(text: str) -> bool:
    """Whether a merged cell's ``text`` is a label: one line of at most 40 characters,
    a letter or digit among them (":.," from a scan's specks is none)."""
    text = text.strip()
    return len(text) <= _LABEL and "\n" not in text and any(c.isalnum() for c in text)


# A cell's edge: a "|" not escaped ("\\|", as our own readers write one in a cell).
_EDGE = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str] | None:
    line = line.strip()
    if len(line) < 2 or not line.startswith("|") or not line.endswith("|"):
        return None
    return _EDGE.split(line[1:-1])


def without_empty_rows_and_columns(text: str) -> str:
    """``text`` with each of its Markdown tables' all-empty body rows and all-empty
    columns left out; a table with nothing in it, whole. A table whose rows do not all
    have its header's number of cells (a ``|`` not escaped in a cell) is left as it is."""
    if "|" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]) and _cells(lines[i]):
            end = i + 2
            while end < len(lines) and _cells(lines[end]) is not None:
                end += 1
            out.extend(_tidied(lines[i:end]))
            i = end
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def _tidied(table: list[str]) -> list[str]:
    rows = [_cells(line) for line in table]
    width = len(rows[0] or ())
    if any(row is None or len(row) != width for row in rows):
        return table
    head, rule, *body = (row for row in rows if row is not None)
    body = [row for row in body if any(cell.strip() for cell in row)]
    kept = [c for c in range(width) if head[c].strip() or any(row[c].strip() for row in body)]
    if not kept:
        return []
    if len(kept) == width and len(body) == len(rows) - 2:
        return table
    return ["|" + "|".join(row[c] for c in kept) + "|" for row in (head, rule, *body)]
