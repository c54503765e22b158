"""A Word 97-2003 file's text from its piece table (MS-DOC 2.4.1), for when msdoc2docx
refuses the file: it checks every structure, and a third of the ``.doc`` files
LibreOffice saved from its own templates broke one of its rules (a section table with
two sections at one place, a property list one byte short), their text all readable.

The text comes without headings, lists or tables' layout: paragraphs, a table's cells
each a paragraph, a field's result (not its code), then the footnotes, endnotes and
text boxes. Headers, footers and comments are left out, as they are from a DOCX.
"""

from __future__ import annotations

import struct

__all__ = ["word_text"]

_WORD_IDENT = 0xA5EC
_ENCRYPTED, _TABLE_1 = 0x0100, 0x0200
_CLX = 33  # fcClx's pair in FibRgFcLcb97
# The stories, in the order they follow each other, by their ccp* counts' places in
# FibRgLw97, and whether read: main text, footnotes, headers and footers, comments,
# endnotes, text boxes (header text boxes come last: not read).
_STORIES = ((3, True), (4, True), (5, False), (7, False), (8, True), (9, True))
# Word's marks in the text: a cell's end (a row's end too, after its last cell: told
# apart only by the paragraphs' properties, so each cell is a paragraph), a page or
# column break (a paragraph's end), a line break, a non-breaking and an optional hyphen.
# Other control characters anchor pictures, objects and notes: left out.
_MARKS = {
    **dict.fromkeys(range(0x20), None),
    0x0D: "\r", 0x07: "\r", 0x0C: "\r", 0x0E: "\r", 0x0B: "\n", 0x1E: "-", 0x09: " ",
}  # fmt: skip


def word_text(word_document: bytes, table: bytes) -> str:
    """The text of a Word 97 (or later) file from its ``WordDocument`` stream and its
    table stream (``1Table`` or ``0Table``, as :func:`table_stream` says); "" for an
    encrypted file or one of Word 95 or before. Raises ValueError, IndexError or
    struct.error on a file too damaged to read."""
    ident, flags = struct.unpack_from("<H", word_document, 0)[0], table_flags(word_document)
    if ident != _WORD_IDENT or flags & _ENCRYPTED:
        return ""
    csw = struct.unpack_from("<H", word_document, 32)[0]
    lw_at = 34 + 2 * csw + 2
    cslw = struct.unpack_from("<H", word_document, lw_at - 2)[0]
    counts = struct.unpack_from(f"<{cslw}i", word_document, lw_at)
    fc_at = lw_at + 4 * cslw + 2
    fc_clx, lcb_clx = struct.unpack_from("<II", word_document, fc_at + 8 * _CLX)
    pieces = _pieces(table[fc_clx : fc_clx + lcb_clx])
    parts: list[str] = []
    start = 0
    for place, read in _STORIES:
        count = max(counts[place], 0) if place < len(counts) else 0
        if read and count:
            parts.append(_clean(_characters(word_document, pieces, start, start + count)))
        start += count
    return "\n\n".join(part for part in parts if part)


def table_flags(word_document: bytes) -> int:
    """The FIB's flags (which table stream, encryption)."""
    return int(struct.unpack_from("<H", word_document, 0x0A)[0])


def table_stream(word_document: bytes) -> str:
    """The name of the table stream the FIB says holds the piece table."""
    return "1Table" if table_flags(word_document) & _TABLE_1 else "0Table"


def _pieces(clx: bytes) -> list[tuple[int, int, int, bool]]:
    """The piece table: each piece's first and last CP, its offset in the WordDocument
    stream and whether it is 8-bit (cp1252) text rather than UTF-16."""
    at = 0
    while at < len(clx) and clx[at] == 1:  # Prc: formatting of the pieces, skipped
        at += 3 + struct.unpack_from("<h", clx, at + 1)[0]
    if at >= len(clx) or clx[at] != 2:
        raise ValueError("no piece table")
    size = struct.unpack_from("<I", clx, at + 1)[0]
    plc = clx[at + 5 : at + 5 + size]
    n = (len(plc) - 4) // 12
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    pieces = []
    for i in range(n):
        fc = struct.unpack_from("<I", plc, 4 * (n + 1) + 8 * i + 2)[0]
        compressed = bool(fc & 0x40000000)
        offset = (fc & 0x3FFFFFFF) // 2 if compressed else fc & 0x3FFFFFFF
        pieces.append((cps[i], cps[i + 1], offset, compressed))
    return pieces


def _characters(
    stream: bytes, pieces: list[tuple[int, int, int, bool]], start: int, end: int
) -> str:
    """The characters from CP ``start`` to ``end``."""
    out = []
    for first, last, offset, compressed in pieces:
        lo, hi = max(first, start), min(last, end)
        if lo >= hi:
            continue
        if compressed:
            at = offset + lo - first
            out.append(stream[at : at + hi - lo].decode("cp1252", "replace"))
        else:
            at = offset + 2 * (lo - first)
            out.append(stream[at : at + 2 * (hi - lo)].decode("utf-16-le", "replace"))
    return "".join(out)


def _clean(text: str) -> str:
    """Paragraphs of plain text from Word's marks: a field's result kept, its code not."""
    kept = []
    fields: list[bool] = []  # per open field: whether past its separator (its result)
    in_code = 0  # open fields not past their separator: while any, nothing is kept
    for char in text:
        if char == "\x13":
            fields.append(False)
            in_code += 1
        elif char == "\x14" and fields and not fields[-1]:
            fields[-1] = True
            in_code -= 1
        elif char == "\x15" and fields:
            in_code -= not fields.pop()
        elif not in_code:
            kept.append(char)
    text = "".join(kept).translate(_MARKS)
    paragraphs = (
        "\n".join(" ".join(line.split()) for line in p.split("\n")) for p in text.split("\r")
    )
    return "\n\n".join(p.strip() for p in paragraphs if p.strip())
