"""The comments (notes) on an Excel 97-2003 workbook's cells, which calamine does not
read: a reviewer's "figures from the Q3 audit" on a total was lost from an ``.xls``, as
it had been from an XLSX.

A note is three records in its sheet's substream of the ``Workbook`` stream (BIFF8,
[MS-XLS]): an ``OBJ`` of type Note with an id, a ``TXO`` whose text follows in
``CONTINUE`` records, and at the sheet's end a ``NOTE`` naming the cell, the author and
the object's id. Each is a line after its sheet's rows, as an XLSX's are:
``Comment on B4 (Ann): text``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from rag_ingest.parsers.base import comment_line, without_author
from rag_ingest.parsers.workbook import column_letters

__all__ = ["xls_comments"]

_BOF, _EOF, _BOUNDSHEET, _FILEPASS = 0x0809, 0x000A, 0x0085, 0x002F
_NOTE, _OBJ, _TXO, _CONTINUE = 0x001C, 0x005D, 0x01B6, 0x003C
# What olefile raises on a damaged compound file (found by fuzzing LibreOffice's .xls).
_OLE_ERRORS = (OSError, ValueError, EOFError, IndexError, OverflowError, struct.error)
_NOTE_TEXT = struct.pack("<HH", _TXO, 18)  # a note's TXO header: 18 bytes, no formula


def xls_comments(path: str) -> list[tuple[int, str, list[str]]]:
    """Each commented sheet's position (1-based, in the workbook's order, as calamine
    numbers its sheets), name and comment lines; none for a workbook that is encrypted,
    older than Excel 97 or damaged past where its sheets are listed."""
    try:
        import olefile

        with olefile.OleFileIO(path) as ole:
            if not ole.exists("Workbook"):
                return []  # Excel 5's "Book": its notes are stored otherwise
            stream = ole.openstream("Workbook").read()
    except (ImportError, *_OLE_ERRORS):
        return []
    if _NOTE_TEXT not in stream:
        return []  # no note's text: the sheets' records are not walked (0.23 s for 10 MB)
    found = []
    try:
        sheets = _sheets(stream)
        for position, (name, at) in enumerate(sheets, start=1):
            lines = _notes(stream, at)
            if lines:
                found.append((position, name, lines))
    except (struct.error, IndexError, UnicodeDecodeError):  # cut short: what was read
        return found
    return found


def _records(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """The records from ``at``: (type, data); none cut short."""
    while at + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, at)
        if at + 4 + length > len(stream):
            return
        yield kind, stream[at + 4 : at + 4 + length]
        at += 4 + length


def _sheets(stream: bytes) -> list[tuple[str, int]]:
    """Each sheet's name and its substream's offset, from the workbook's globals."""
    sheets = []
    for kind, data in _records(stream, 0):
        if kind == _FILEPASS:
            return []  # encrypted: the records after it are not readable
        if kind == _BOUNDSHEET:
            (offset,) = struct.unpack_from("<I", data)
            name = _string(data, 7, data[6], 8)
            sheets.append((name, offset))
        elif kind == _EOF:
            break
    return sheets


def _notes(stream: bytes, at: int) -> list[str]:
    """The comment lines of the sheet whose substream starts at ``at``."""
    texts: dict[int, str] = {}  # by object id: a note's, or a text box's (no NOTE names it)
    text_object: int | None = None
    depth = 0
    records = _records(stream, at)
    lines = []
    for kind, data in records:
        if kind == _BOF:
            depth += 1  # an embedded chart's substream nests in its sheet's
        elif kind == _EOF:
            depth -= 1
            if depth <= 0:
                break
        elif kind == _OBJ and len(data) >= 8:
            (text_object,) = struct.unpack_from("<H", data, 6)  # its common data's id
        elif kind == _TXO and text_object is not None and len(data) >= 12:
            (count,) = struct.unpack_from("<H", data, 10)
            texts[text_object] = _continued_text(records, count)
            text_object = None
        elif kind == _NOTE and len(data) >= 11:
            row, column, _, object_id = struct.unpack_from("<HHHH", data)
            (length,) = struct.unpack_from("<H", data, 8)
            author = _string(data, 10, length, 11)
            text = without_author(" ".join(texts.get(object_id, "").split()), author)
            if text:
                cell = f"{column_letters(column + 1)}{row + 1}"
                lines.append(comment_line(f"Comment on {cell}", author, "", text))
    return lines


def _continued_text(records: Iterator[tuple[int, bytes]], count: int) -> str:
    """A ``TXO``'s ``count`` characters, from the ``CONTINUE`` records after it: each
    opens with a byte saying whether its characters are 8-bit or UTF-16."""
    parts: list[str] = []
    left = count
    while left > 0:
        kind, data = next(records, (0, b""))
        if kind != _CONTINUE or not data:
            break
        text = _string(data, 0, left, 1)
        parts.append(text)
        left -= len(text)
    return "".join(parts)


def _string(data: bytes, flags: int, count: int, at: int) -> str:
    """``count`` characters from ``at``, UTF-16 when the byte at ``flags`` has its low
    bit set (Latin-1 otherwise), as far as ``data`` goes."""
    if data[flags] & 1:
        raw = data[at : at + 2 * count]
        return raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="replace")
    return data[at : at + count].decode("latin-1")
