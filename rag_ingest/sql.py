"""The data in SQL dumps: an ``INSERT ... VALUES`` statement's rows and a PostgreSQL
``COPY ... FROM stdin`` block's lines, read as a table's rows under a header naming
the table and its columns (from its ``CREATE TABLE`` when the statement names none),
so every chunk of a long one says what its values are. Split as code, a mysqldump
line of 5,000 rows was cut at spaces inside values, and no chunk after the first named
its table.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass


def _row(escapes: bool) -> re.Pattern[str]:
    """A row: its tuple, the comma or semicolon after it (none: the statement ends
    there), and the white space up to the next. ``escapes``: a backslash escapes the
    character after it in a string (MySQL), else it is a character (standard SQL,
    PostgreSQL's 'C:\\'). A doubled quote ('it''s') reads as two strings side by side,
    which a row may hold as well as one; a value may be a call with its own
    parentheses, three levels down (ST_GeomFromText('POINT(1 2)'), NOW(), SQLite's
    replace('a\nb','\n',char(10)))."""
    if escapes:
        string, quoted = r"'(?:[^'\\]++|\\.)*+'", r'"(?:[^"\\]++|\\.)*+"'
    else:
        string, quoted = r"'[^']*+'", r'"[^"]*+"'
    inner = rf"\((?:{string}|[^'()]++)*+\)"
    for _ in range(2):
        inner = rf"\((?:{string}|[^'()]++|{inner})*+\)"
    return re.compile(
        rf"(\((?:{string}|{quoted}|[^'\"()]++|{inner})*+\))[ \t]*+([,;]?)\s*+", re.DOTALL
    )


# Tried in turn: a PostgreSQL string ending in a backslash ('C:\\') stopped the row.
_ROWS = (_row(escapes=True), _row(escapes=False))
_NAME = r"(?:`[^`\n]+`|\"[^\"\n]+\"|\[[^\]\n]+\]|[\w$]+)"
_TABLE_NAME = rf"{_NAME}(?:\s*\.\s*{_NAME})*"
_INSERT = re.compile(
    rf"^[ \t]*(?P<head>(?:INSERT|REPLACE)\s+(?:(?:IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY)\s+)*"
    rf"INTO\s+(?P<table>{_TABLE_NAME})\s*(?P<columns>\([^()]*\))?\s*VALUES)\s*(?=\()",
    re.MULTILINE | re.IGNORECASE,
)
_COPY = re.compile(
    rf"^(?P<head>COPY\s+(?P<table>{_TABLE_NAME})\s*(?P<columns>\([^()]*\))?\s+FROM\s+stdin\b"
    r"[^\n]*)\n",
    re.MULTILINE | re.IGNORECASE,
)
_COPY_END = re.compile(r"^\\\.[ \t]*$", re.MULTILINE)
_CREATE = re.compile(
    rf"^[ \t]*CREATE\s+(?:(?:GLOBAL|LOCAL|TEMPORARY|TEMP|UNLOGGED)\s+)*TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>{_TABLE_NAME})\s*\(",
    re.MULTILINE | re.IGNORECASE,
)
_COLUMN = re.compile(rf"\s*({_NAME})(?:\s+\S|\s*$)")  # a type, or none (SQLite)
# A CREATE TABLE body's parts that are not columns.
_CONSTRAINTS = frozenset(
    {"primary", "key", "unique", "constraint", "index", "foreign", "check", "fulltext"}
    | {"spatial", "exclude", "like", "period"}
)
_BODY_LIMIT = 65_536  # characters: a longer CREATE TABLE body is not read for columns
HEADS = re.compile(r"^[ \t]*(?:INSERT|REPLACE|COPY)\b", re.MULTILINE | re.IGNORECASE)


@dataclass
class Statement:
    """A statement's rows: where it starts and ends in the text, the header its rows'
    chunks go under, and each row with its offset."""

    start: int
    end: int
    header: str
    rows: list[tuple[int, str]]


def table_key(name: str) -> str:
    """A table's name without its schema or quotes, lower-cased: ``"public"."Orders"``
    and `orders` are one table."""
    last = re.findall(_NAME, name)[-1] if name else ""
    return last.strip('`"[]').lower()


def columns(text: str) -> dict[str, str]:
    """Every table a ``CREATE TABLE`` in ``text`` defines, by :func:`table_key`, with its
    column list as an INSERT names it: ``(`id`, `name`)``. The last definition wins."""
    found: dict[str, str] = {}
    for match in _CREATE.finditer(text):
        body = _body(text, match.end())
        if body is None:
            continue
        names = []
        for part in _top_level(body):
            column = _COLUMN.match(part)
            if column and column.group(1).strip('`"[]').lower() not in _CONSTRAINTS:
                names.append(column.group(1))
        if names:
            found[table_key(match.group("table"))] = "(" + ", ".join(names) + ")"
    return found


def _unquoted(text: str, start: int, end: int) -> Iterator[tuple[int, str, int]]:
    """Each character of ``text[start:end]`` outside quotes, with its offset and the
    depth of parentheses after it (from 0)."""
    depth, quote = 0, ""
    for i in range(start, end):
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        else:
            depth += (char == "(") - (char == ")")
            yield i, char, depth


def _body(text: str, start: int) -> str | None:
    """The text inside a parenthesis opened just before ``start``, to its match."""
    for i, _, depth in _unquoted(text, start, min(len(text), start + _BODY_LIMIT)):
        if depth < 0:
            return text[start:i]
    return None


def _top_level(body: str) -> Iterator[str]:
    """``body``'s parts between commas outside parentheses and quotes."""
    begin = 0
    for i, char, depth in _unquoted(body, 0, len(body)):
        if char == "," and not depth:
            yield body[begin:i]
            begin = i + 1
    yield body[begin:]


def _insert_header(insert: re.Match[str], known: dict[str, str]) -> str:
    head = " ".join(insert.group("head").split())
    listed = known.get(table_key(insert.group("table")))
    if insert.group("columns") or not listed:
        return head
    # The column list goes before VALUES, as mysqldump --complete-insert puts it.
    return f"{head[: -len('VALUES')]}{listed} {head[-len('VALUES') :]}"


def _copy_header(copy: re.Match[str], known: dict[str, str]) -> str:
    listed = known.get(table_key(copy.group("table")))
    if copy.group("columns") or not listed:
        return " ".join(copy.group("head").split())
    return f"COPY {copy.group('table')} {listed} FROM stdin;"


def _rows(text: str, at: int, stop: int | None = None) -> Iterator[tuple[int, str, int]]:
    """An INSERT's rows from ``at``: each row's start, its text, and where the next
    would start; the last is the statement's (or the first past ``stop``)."""
    while True:
        row = _ROWS[0].match(text, at) or _ROWS[1].match(text, at)
        if row is None:
            return
        yield row.start(), row.group(1) + row.group(2), row.end()
        at = row.end()
        if row.group(2) != "," or (stop is not None and row.start() >= stop):
            return


def statement_at(text: str, start: int, known: dict[str, str]) -> Statement | None:
    """The INSERT or COPY statement whose head starts at ``start``, with its rows; None
    when none starts there."""
    insert = _INSERT.match(text, start)
    if insert is not None:
        rows: list[tuple[int, str]] = []
        end = insert.end()
        for begin, row, after in _rows(text, end):
            rows.append((begin, row))
            end = after
        return Statement(start, end, _insert_header(insert, known), rows) if rows else None
    copy = _COPY.match(text, start)
    if copy is None:
        return None
    finish = _COPY_END.search(text, copy.end())
    end = finish.start() if finish else len(text)
    rows = []
    at = copy.end()
    for line in text[at:end].splitlines(keepends=True):
        if line.strip():
            rows.append((at, line.rstrip("\r\n")))
        at += len(line)
    if not rows:
        return None
    return Statement(start, finish.end() if finish else end, _copy_header(copy, known), rows)


def statements(text: str, known: dict[str, str]) -> Iterator[Statement]:
    """The INSERT statements and COPY blocks in ``text``, in order; those one after
    another under the same header as one (SQLite's ``.dump`` and ``pg_dump --inserts``
    write a statement a row)."""
    at = 0
    pending: Statement | None = None
    while True:
        head = HEADS.search(text, at)
        found = statement_at(text, head.start(), known) if head is not None else None
        if head is not None and found is None:
            at = head.end()
            continue
        if (
            pending is not None
            and found is not None
            and found.header == pending.header
            and not text[pending.end : found.start].strip()
        ):
            pending.rows += found.rows
            pending.end = found.end
        else:
            if pending is not None:
                yield pending
            pending = found
        if head is None or found is None:
            return
        at = max(found.end, head.end())


def row_cuts(text: str, cuts: list[int], known: dict[str, str]) -> list[tuple[int, str] | None]:
    """For each of ``cuts`` (line starts, in order) that falls among a statement's rows,
    the first row's start at or past it and the statement's header, for a run cut there
    to begin with; else None. One pass: a statement spanning many cuts is read once."""
    heads = [match.start() for match in HEADS.finditer(text)]
    ends = [match.start() for match in _COPY_END.finditer(text)]
    found: list[tuple[int, str] | None] = []
    reading: tuple[int, int] = (-1, 0)  # an INSERT's head, and where its rows were read to
    for cut in cuts:
        i = bisect.bisect_right(heads, cut - 1) - 1
        found.append(None)
        if i < 0:
            continue
        copy = _COPY.match(text, heads[i])
        if copy is not None:
            j = bisect.bisect_left(ends, copy.end())
            if j == len(ends) or ends[j] >= cut:  # not ended before the cut
                found[-1] = (cut, _copy_header(copy, known))  # a line start
            continue
        insert = _INSERT.match(text, heads[i])
        if insert is None:
            continue
        at = reading[1] if reading[0] == heads[i] else insert.end()
        for begin, _, _ in _rows(text, at, stop=cut):
            at = begin
            if begin >= cut:
                found[-1] = (begin, _insert_header(insert, known))
                break
        reading = (heads[i], at)
    return found
