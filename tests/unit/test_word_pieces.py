"""A Word 97-2003 file's text from its piece table, when msdoc2docx refuses the file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rag_ingest.errors import CorruptDocumentError
from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.word_pieces import word_text
from tests import docs

MAIN = (
    "Minutes\r"
    'See \x13 HYPERLINK "https://example.com/a" \x14the site\x15 for\x0bthe agenda.\r'
    "Nested \x13 IF \x13 DATE \x14ignored\x15 \x14 kept \x13 PAGE \x142\x15\x15 field.\r"
    "Symbol \x13 SYMBOL 183 \x15after, twice \x13 A \x14one\x14two\x15 done.\r"
    "Cell A\x07Cell\tB\x07\x07"
    "Page\x0cbreak, column\x0ebreak; non\x1ebreaking, op\x1ftional.\x01\x08\r"
)
EIGHT_BIT = "Café \u2013 naïve \u201cquotes\u201d.\r"  # in cp1252, not Latin-1
FOOTNOTE, HEADER, COMMENT, BOX = "A footnote.\r", "CANARY-HEADER\r", "CANARY-COMMENT\r", "Boxed.\r"
WORDS = (
    "Minutes\n\n"
    "See the site for\nthe agenda.\n\n"
    "Nested kept 2 field.\n\n"
    "Symbol after, twice onetwo done.\n\n"
    "Cell A\n\nCell B\n\n"
    "Page\n\nbreak, column\n\nbreak; non-breaking, optional.\n\n"
    "Café \u2013 naïve \u201cquotes\u201d.\n\n"
    "A footnote.\n\n"
    "Boxed."
)


def _streams(encrypted: bool = False) -> tuple[bytes, bytes]:
    # The main text over two pieces, one UTF-16 and one 8-bit (as Word saves Western
    # text), then a footnote, a header, a comment and a text box, each a story of its own.
    pieces = [(MAIN, False), (EIGHT_BIT + FOOTNOTE, True), (HEADER + COMMENT + BOX, False)]
    stories = {
        3: len(MAIN + EIGHT_BIT),
        4: len(FOOTNOTE),
        5: len(HEADER),
        7: len(COMMENT),
        9: len(BOX),
    }
    return docs.word97_streams(pieces, stories, encrypted=encrypted)


def test_the_text_is_read_from_the_piece_table() -> None:
    # Fields give their result, not their code; Word's marks become paragraphs and
    # lines; headers, footers and comments are left out, as they are from a DOCX.
    assert word_text(*_streams()) == WORDS
    assert word_text(*_streams(encrypted=True)) == ""
    word_document, table = _streams()
    assert word_text(b"\0\0" + word_document[2:], table) == ""  # not a Word 97 FIB
    with pytest.raises(ValueError, match="no piece table"):
        word_text(word_document, table[:16] + b"\x03" + table[17:])


def test_a_doc_msdoc2docx_refuses_is_read_from_its_piece_table(tmp_path: Path) -> None:
    # A third of the .doc files LibreOffice saved from its own templates failed in
    # msdoc2docx's checks (a section table with two sections at one place), their text
    # all there. These streams have no section table at all.
    word_document, table = _streams()
    path = tmp_path / "minutes.doc"
    path.write_bytes(docs.cfb_bytes({"WordDocument": word_document, "1Table": table}))
    parsed = parse_file(str(path), "minutes.doc", ParseOptions())
    assert (parsed.file_type, parsed.parser, parsed.text) == ("doc", "word-pieces", WORDS)
    [warning] = parsed.warnings
    assert warning.startswith("minutes.doc: not a readable Word 97-2003 .doc file (")
    assert warning.endswith("): its text read alone, without headings, lists or tables")

    # No text there either, a piece table of no pieces, or none: the converter's error
    # stands.
    empty = docs.word97_streams([("\r", False)], {3: 1})
    no_pieces = table[:22] + struct.pack("<I", 4) + table[26:]
    no_table = table[:21] + b"\x03" + table[22:]
    for word, pieces in (empty, (word_document, no_pieces), (word_document, no_table)):
        path.write_bytes(docs.cfb_bytes({"WordDocument": word, "1Table": pieces}))
        with pytest.raises(CorruptDocumentError, match=r"not a readable Word 97-2003 \.doc file"):
            parse_file(str(path), "minutes.doc", ParseOptions())
