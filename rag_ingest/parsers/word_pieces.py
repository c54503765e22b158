"""A Word 97-2003 file's text from its piece table (MS-DOC 2.4.1), for when msdoc2docx
refuses the file: it checks every structure, and a third of the ``.doc`` files
LibreOffice saved from its own templates broke one of its rules (a section table with
two sections at one place, a property list one byte short), their text all readable.

A Word 6.0 or 95 file (which msdoc2docx does not read) has its text the same way, in
its ``WordDocument`` stream alone: from its FIB's first text byte, or through its piece
table when it was fast-saved, 8-bit in the code page its FIB names, or one its fonts
are made for (the layout as LibreOffice's ``ww8scan.cxx`` reads it; the fonts' code
pages as Apache POI's ``HWPFOldDocument`` guesses them).

The text comes without headings, lists or tables' layout: paragraphs, a table's cells
each a paragraph, a field's result (not its code), then the footnotes, endnotes and
text boxes. Headers, footers and comments are left out, as they are from a DOCX.
"""

from __future__ import annotations

import struct

from rag_ingest.parsers.text import misfit

__all__ = ["old_word_text", "word_text"]

_WORD_IDENT = 0xA5EC
_COMPLEX, _ENCRYPTED, _TABLE_1 = 0x0004, 0x0100, 0x0200
_CLX = 33  # fcClx's pair in FibRgFcLcb97
# The stories, in the order they follow each other (their ccp* counts in the FIB, from
# FibRgLw97's fourth in Word 97), and whether read: main text, footnotes, headers and
# footers, macros (none since Word 6), comments, endnotes, text boxes (header text boxes
# come last: not read).
_READ = (True, True, False, False, False, True, True)
_COUNTS_97 = 3
# Word 6.0 and 95: their wIdent (the Far East editions' differ, with text not 8-bit:
# not read), nFibs, and where the FIB keeps the counts, the piece table's place and the
# font table's (STTBFFN).
_OLD_IDENTS, _OLD_FIBS = (0xA5DC, 0xA5EC), range(101, 106)
_OLD_COUNTS, _OLD_CLX, _OLD_FONTS = 0x34, 0x160, 0xD0
# What of a text is compared when its fonts name more code pages than one: its
# paragraphs beyond ASCII, up to this many characters.
_SAMPLE = 20_000
_SMALLEST_FIB = 326  # Word 2's: text starting inside it is a damaged offset
# A Word 6 file's code page: by its FIB's charset (0 for "Windows, by its language",
# 256 for the Mac's), else by its language's primary ID (lid & 0x3FF), else cp1252; a
# font's charset (a byte: ANSI's 0, the default 1, Symbol's 2, the Mac's 77 and OEM's
# 255 name no code page of their own) by the same table.
_CHARSETS = {256: "mac_roman", 128: "cp932", 129: "cp949", 134: "cp936", 136: "cp950",
             161: "cp1253", 162: "cp1254", 163: "cp1258", 177: "cp1255", 178: "cp1256",
             186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250"}  # fmt: skip
_LANGUAGES = {
    **dict.fromkeys((0x01, 0x20, 0x29), "cp1256"),  # Arabic, Urdu, Farsi
    **dict.fromkeys((0x02, 0x19, 0x22, 0x23, 0x2F, 0x44, 0x50), "cp1251"),
    **dict.fromkeys((0x05, 0x0E, 0x15, 0x18, 0x1A, 0x1B, 0x1C, 0x24), "cp1250"),
    0x08: "cp1253", 0x0D: "cp1255", 0x11: "cp932", 0x12: "cp949", 0x1E: "cp874",
    **dict.fromkeys((0x1F, 0x2C), "cp1254"),
    **dict.fromkeys((0x25, 0x26, 0x27), "cp1257"),
    0x2A: "cp1258",
}  # fmt: skip
# Chinese: Simplified in the PRC and Singapore, Traditional elsewhere; Serbian Cyrillic.
_LOCALES = {0x0804: "cp936", 0x1004: "cp936", 0x0404: "cp950", 0x0C04: "cp950",
            0x1404: "cp950", 0x0C1A: "cp1251"}  # fmt: skip
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
    return _stories(word_document, pieces, counts[_COUNTS_97 : _COUNTS_97 + len(_READ)])


def old_word_text(word_document: bytes) -> str:
    """The text of a Word 6.0 or 95 file from its ``WordDocument`` stream; "" for an
    encrypted file or one of another version. Raises ValueError, IndexError or
    struct.error on a file too damaged to read."""
    ident, n_fib = struct.unpack_from("<HH", word_document, 0)
    flags = table_flags(word_document)
    if ident not in _OLD_IDENTS or n_fib not in _OLD_FIBS or flags & _ENCRYPTED:
        return ""
    lid = struct.unpack_from("<H", word_document, 6)[0]
    charset = struct.unpack_from("<H", word_document, 0x14)[0]
    counts = struct.unpack_from(f"<{len(_READ)}i", word_document, _OLD_COUNTS)
    if flags & _COMPLEX:  # fast-saved: its pieces in any order, the last edits appended
        fc_clx, lcb_clx = struct.unpack_from("<II", word_document, _OLD_CLX)
        pieces = _pieces(word_document[fc_clx : fc_clx + lcb_clx], eight_bit=True)
    else:
        fc_min = struct.unpack_from("<I", word_document, 0x18)[0]
        if fc_min < _SMALLEST_FIB:
            raise ValueError(f"text at byte {fc_min}, inside the FIB")
        pieces = [(0, sum(max(count, 0) for count in counts), fc_min, True)]
    encoding = _CHARSETS.get(charset) or _LOCALES.get(lid) or _LANGUAGES.get(lid & 0x3FF)
    encodings = [encoding or "cp1252"]
    if not charset:  # "by its language": a Russian text in an English document's fonts
        encodings += [page for page in _font_code_pages(word_document) if page not in encodings]
    reads = [_stories(word_document, pieces, counts, page) for page in encodings]
    # Each run's font (its character properties) is not read: the code page that reads
    # the text most as a language writes it is taken for all of it.
    return min(reads, key=_misread) if len(set(reads)) > 1 else reads[0]


def _font_code_pages(word_document: bytes) -> list[str]:
    """The code pages a Word 6.0 or 95 document's fonts are made for, in its font
    table's order: each entry its size less one, then its charset at byte 4."""
    at, size = struct.unpack_from("<II", word_document, _OLD_FONTS)
    end, at = min(at + size, len(word_document)), at + 2
    pages: list[str] = []
    while at + 6 <= end:
        page = _CHARSETS.get(word_document[at + 4])
        if page and page not in pages:
            pages.append(page)
        at += word_document[at] + 1
    return pages


def _misread(text: str) -> int:
    """How far a reading of a text is from what a language writes (:func:`misfit`), in
    its paragraphs beyond ASCII: an English document's Russian page is looked at, even
    past the first ``_SAMPLE`` characters."""
    return misfit("\n".join(p for p in text.split("\n\n") if not p.isascii())[:_SAMPLE])


def _stories(
    stream: bytes,
    pieces: list[tuple[int, int, int, bool]],
    counts: tuple[int, ...],
    encoding: str = "cp1252",
) -> str:
    """The stories :data:`_READ` names, one after another in the CPs, as text."""
    parts: list[str] = []
    start = 0
    for count, read in zip(counts, _READ, strict=False):
        count = max(count, 0)
        if read and count:
            parts.append(_clean(_characters(stream, pieces, start, start + count, encoding)))
        start += count
    return "\n\n".join(part for part in parts if part)


def table_flags(word_document: bytes) -> int:
    """The FIB's flags (which table stream, encryption)."""
    return int(struct.unpack_from("<H", word_document, 0x0A)[0])


def table_stream(word_document: bytes) -> str:
    """The name of the table stream the FIB says holds the piece table."""
    return "1Table" if table_flags(word_document) & _TABLE_1 else "0Table"


def _pieces(clx: bytes, eight_bit: bool = False) -> list[tuple[int, int, int, bool]]:
    """The piece table: each piece's first and last CP, its offset in the WordDocument
    stream and whether it is 8-bit text rather than UTF-16 (``eight_bit``: Word 6's,
    whose offsets are plain, all 8-bit)."""
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
        if eight_bit:
            pieces.append((cps[i], cps[i + 1], fc, True))
            continue
        compressed = bool(fc & 0x40000000)
        offset = (fc & 0x3FFFFFFF) // 2 if compressed else fc & 0x3FFFFFFF
        pieces.append((cps[i], cps[i + 1], offset, compressed))
    return pieces


def _characters(
    stream: bytes,
    pieces: list[tuple[int, int, int, bool]],
    start: int,
    end: int,
    encoding: str = "cp1252",
) -> str:
    """The characters from CP ``start`` to ``end`` (8-bit ones in ``encoding``)."""
    out = []
    for first, last, offset, compressed in pieces:
        lo, hi = max(first, start), min(last, end)
        if lo >= hi:
            continue
        if compressed:
            at = offset + lo - first
            out.append(stream[at : at + hi - lo].decode(encoding, "replace"))
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
