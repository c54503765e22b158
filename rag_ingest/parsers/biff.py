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

__all__ = ["xls_comments", "xls_number_formats"]

_BOF, _EOF, _BOUNDSHEET, _FILEPASS = 0x0809, 0x000A, 0x0085, 0x002F
_NOTE, _OBJ, _TXO, _CONTINUE = 0x001C, 0x005D, 0x01B6, 0x003C
_FORMAT, _XF = 0x041E, 0x00E0
# A number's cell records: (row, column, XF index) first; MULRK holds a row's run of
# them, an XF index and a number each, after its first column.
_NUMBER, _RK, _FORMULA, _MULRK = 0x0203, 0x027E, 0x0006, 0x00BD
# What olefile raises on a damaged compound file (found by fuzzing LibreOffice's .xls).
_OLE_ERRORS = (OSError, ValueError, EOFError, IndexError, OverflowError, struct.error)
_NOTE_TEXT = struct.pack("<HH", _TXO, 18)  # a note's TXO header: 18 bytes, no formula


def _workbook(path: str) -> bytes:
    """The ``Workbook`` stream (BIFF8); empty for Excel 5's "Book" or a damaged file."""
    try:
        import olefile

        with olefile.OleFileIO(path) as ole:
            if not ole.exists("Workbook"):
                return b""  # Excel 5's "Book": stored otherwise
            return bytes(ole.openstream("Workbook").read())
    except (ImportError, *_OLE_ERRORS):
        return b""


def xls_number_formats(path: str) -> dict[int, dict[int, dict[int, str]]]:
    """The number formats of each sheet's number cells (its position, 1-based, as
    calamine numbers its sheets; a cell by its row, then its column, 0-based), those not
    General; none for a workbook that is encrypted, older than Excel 97 or damaged past
    where its sheets are listed. Its FORMAT records name formats, its XF records give
    each cell style one, and each number's cell record names its style."""
    from rag_ingest.parsers.number_formats import BUILTIN, reformats

    stream = _workbook(path)
    formats: dict[int, str] = dict(BUILTIN)
    styles: list[int] = []
    sheets: list[int] = []
    try:
        for kind, data in _records(stream, 0):
            if kind == _FILEPASS:
                return {}  # encrypted: the records after it are not readable
            if kind == _FORMAT and len(data) >= 5:
                number, count = struct.unpack_from("<HH", data)
                formats[number] = _string(data, 4, count, 5)
            elif kind == _XF and len(data) >= 4:
                styles.append(struct.unpack_from("<H", data, 2)[0])
            elif kind == _BOUNDSHEET and len(data) >= 4:
                sheets.append(struct.unpack_from("<I", data)[0])
            elif kind == _EOF:
                break
    except (struct.error, IndexError):
        return {}
    named = [formats.get(number, "General") for number in styles]
    kept = {i for i, fmt in enumerate(named) if reformats(fmt)}
    found: dict[int, dict[int, dict[int, str]]] = {}
    if not kept:
        return found
    for position, at in enumerate(sheets, start=1):
        cells: dict[int, dict[int, str]] = {}
        for kind, data in _sheet(stream, at):
            if kind in (_NUMBER, _RK, _FORMULA) and len(data) >= 6:
                row, column, style = struct.unpack_from("<HHH", data)
                if style in kept:
                    cells.setdefault(row, {})[column] = named[style]
            elif kind == _MULRK and len(data) >= 6:
                row, first = struct.unpack_from("<HH", data)
                for k in range((len(data) - 6) // 6):
                    (style,) = struct.unpack_from("<H", data, 4 + 6 * k)
                    if style in kept:
                        cells.setdefault(row, {})[first + k] = named[style]
        if cells:
            found[position] = cells
    return found


def xls_comments(path: str) -> list[tuple[int, str, list[str]]]:
    """Each commented sheet's position (1-based, in the workbook's order, as calamine
    numbers its sheets), name and comment lines; none for a workbook that is encrypted,
    older than Excel 97 or damaged past where its sheets are listed."""
    stream = _workbook(path)
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


def _sheet(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """The records of the sheet whose substream starts at ``at``, to its own end (an
    embedded chart's substream nests in it)."""
    depth = 0
    for kind, data in _records(stream, at):
        if kind == _BOF:
            depth += 1
        elif kind == _EOF:
            depth -= 1
            if depth <= 0:
                return
        yield kind, data


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
    records = _sheet(stream, at)
    lines = []
    for kind, data in records:
        if kind == _OBJ and len(data) >= 8:
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
