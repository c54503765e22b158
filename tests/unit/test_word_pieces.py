"""A Word 97-2003 file's text from its piece table, when msdoc2docx refuses the file;
a Word 6.0 or 95 file's, which it does not read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rag_ingest.errors import CorruptDocumentError, UnsupportedFileTypeError
from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.word_pieces import old_word_text, word_text
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


OLD_STORIES = [
    'Report\rSee \x13 HYPERLINK "https://example.com" \x14the site\x15.\r'
    "Caf\u00e9 \u2013 CANARY-W6\r",
    "A footnote.\r",
    "CANARY-HEADER\r",
    "",
    "CANARY-COMMENT\r",
    "An endnote.\r",
    "Boxed.\r",
]
OLD_WORDS = (
    "Report\n\nSee the site.\n\nCaf\u00e9 \u2013 CANARY-W6\n\nA footnote.\n\nAn endnote.\n\nBoxed."
)


def test_a_word_6_or_95_document_is_read_from_its_text(tmp_path: Path) -> None:
    # msdoc2docx reads Word 97 and later only: a Word 6.0 or 95 file (LibreOffice's
    # tdf59896.doc, a ClarisWorks read-me) had been refused, "save it as DOCX". Its text
    # is read, as Word 97's is from its piece table: headers and comments left out.
    stream = docs.word6_stream(OLD_STORIES)
    assert old_word_text(stream) == OLD_WORDS
    path = tmp_path / "readme.doc"
    path.write_bytes(docs.cfb_bytes({"WordDocument": stream}))
    parsed = parse_file(str(path), "readme.doc", ParseOptions())
    assert (parsed.file_type, parsed.parser, parsed.text) == ("doc", "word6-text", OLD_WORDS)
    assert parsed.warnings == [
        "readme.doc: a Word 6.0 or 95 document: its text read alone, without headings, "
        "lists or tables"
    ]
    # Fast-saved: its text in pieces out of order, a piece table putting them back.
    spans = [(0, 7), (7, 40), (40, sum(map(len, OLD_STORIES)))]
    assert old_word_text(docs.word6_stream(OLD_STORIES, pieces=spans)) == OLD_WORDS


@pytest.mark.parametrize(
    ("text", "fib", "encoding"),
    [
        ("\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", {"lid": 0x0419}, "cp1251"),
        ("\u017dlu\u0165ou\u010dk\u00fd k\u016f\u0148", {"lid": 0x0405}, "cp1250"),
        ("\u50b3\u7d71\u4e2d\u6587", {"lid": 0x0404}, "cp950"),
        ("\u7b80\u4f53\u4e2d\u6587", {"lid": 0x0804}, "cp936"),
        ("\u0394\u03b5\u03bb\u03c4\u03af\u03bf", {"lid": 0x0409, "charset": 161}, "cp1253"),
        ("Caf\u00e9 \u00fcber", {"lid": 0x0409, "charset": 256}, "mac_roman"),
    ],
)
def test_a_word_6_documents_code_page_is_its_fibs(
    text: str, fib: dict[str, int], encoding: str
) -> None:
    # Word 6 text is 8-bit in the code page of the FIB's charset, else of its language.
    stream = docs.word6_stream([f"{text}\r"], encoding=encoding, **fib)
    assert old_word_text(stream) == text


# Russian: "Kompaniya Askat predlagaet so sklada v Moskve", "Chetyre balla i sem let"
RUSSIAN = (
    "\u041a\u043e\u043c\u043f\u0430\u043d\u0438\u044f \u0410\u0441\u043a\u0430\u0442 "
    "\u043f\u0440\u0435\u0434\u043b\u0430\u0433\u0430\u0435\u0442 \u0441\u043e "
    "\u0441\u043a\u043b\u0430\u0434\u0430 \u0432 \u041c\u043e\u0441\u043a\u0432\u0435"
)
RUSSIAN_LINE = (
    "\u0427\u0435\u0442\u044b\u0440\u0435 \u0431\u0430\u043b\u043b\u0430 \u0438 "
    "\u0441\u0435\u043c\u044c \u043b\u0435\u0442\r"
)


def test_a_word_6_documents_code_page_may_be_its_fonts() -> None:
    # A document whose FIB names English, its text in fonts made for another code page
    # ("Times New Roman Cyr", a "CE" font): Apache POI's Bug49933.doc, Bug60942b.doc
    # and 52117.doc had been read as "Êîìïàíèÿ Àñêàò", Bug60936.doc as "pøed". The code
    # page that reads the text most as a language writes it is taken.
    plain = ((0, "Times New Roman"), (2, "Symbol"), (0, "Arial"))
    for text, encoding, fonts in (
        (
            RUSSIAN,
            "cp1251",
            ((204, "Times New Roman Cyr"),),
        ),
        ("4 skóre a před 7 lety, přesuň kurzor", "cp1250", ((0, "inherit"), (238, "inherit"))),
        # A French text stays in the FIB's code page beside fonts for two others.
        (
            "Société générale : réunion de février à Genève",
            "cp1252",
            ((128, "MS Mincho"), (204, "Arial Cyr")),
        ),
    ):
        stream = docs.word6_stream([f"{text}\r"], encoding=encoding, fonts=plain + fonts)
        assert old_word_text(stream) == text
    # The paragraphs beyond ASCII are compared, however far into the text.
    english = "The quick brown fox jumps over the lazy dog.\r" * 1000
    russian = RUSSIAN_LINE
    stream = docs.word6_stream(
        [english + russian], encoding="cp1251", fonts=(*plain, (204, "Roboto"))
    )
    assert old_word_text(stream).endswith("dog.\n\n" + russian[:-1])
    # A FIB naming its charset is taken at its word.
    greek = "Δελτίο τύπου"
    stream = docs.word6_stream(
        [f"{greek}\r"], encoding="cp1253", charset=161, fonts=((204, "Arial Cyr"),)
    )
    assert old_word_text(stream) == greek


def test_a_word_6_document_that_cannot_be_read_is_still_refused(tmp_path: Path) -> None:
    stream = docs.word6_stream(OLD_STORIES)
    encrypted = stream[:0x0A] + b"\x00\x01" + stream[0x0C:]
    far_east = b"\x97\xa6" + stream[2:]  # Word 6's Far East editions' text is not 8-bit
    assert old_word_text(encrypted) == old_word_text(far_east) == ""
    inside = stream[:0x18] + struct.pack("<I", 200) + stream[0x1C:]
    with pytest.raises(ValueError, match="inside the FIB"):
        old_word_text(inside)
    path = tmp_path / "locked.doc"
    path.write_bytes(docs.cfb_bytes({"WordDocument": encrypted}))
    with pytest.raises(UnsupportedFileTypeError, match="older than Word 97"):
        parse_file(str(path), "locked.doc", ParseOptions())
    # A Far East edition's is refused as older than Word 97 (Apache POI's Bug51944.doc
    # had failed as "not a readable Word 97-2003 .doc file").
    path = tmp_path / "fax.doc"
    path.write_bytes(docs.cfb_bytes({"WordDocument": far_east}))
    with pytest.raises(
        UnsupportedFileTypeError, match=r"^fax\.doc: a Word document older than Word 97"
    ):
        parse_file(str(path), "fax.doc", ParseOptions())
