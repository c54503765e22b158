from __future__ import annotations

import dataclasses
import datetime
import gzip
import io
import itertools
import random
import re
import struct
import sys
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import (
    BinaryContentError,
    BlankDocumentError,
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    MissingExtraError,
    NoTextFormatError,
    UnsupportedFileTypeError,
    ZipBombError,
)
from rag_ingest.parsers import ParseOptions, detect, parse_file
from rag_ingest.parsers.alt_chunks import AltChunk, put_back, read_all
from rag_ingest.parsers.base import UNREAD_SCANS, ParsedDocument, Segment, split_notes
from rag_ingest.parsers.decrypt import DEFAULT_PASSWORD_NOTE
from rag_ingest.parsers.flat import packaged
from rag_ingest.parsers.office import _drop_caps_joined
from rag_ingest.parsers.pdf import merge_ranges
from rag_ingest.parsers.sniff import no_text
from rag_ingest.settings import ChunkSettings, ParseSettings
from tests import docs

OPTIONS = ParseOptions()
_OCR = ParseOptions.of(ParseSettings(ocr="on"))


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(data)
    return str(path)


# A file mended into nothing to read: damaged, as its parser said.
_LOST = r": not well-formed XML \(.*\): nothing left once mended$"


def _mended_as(tmp_path: Path, data: bytes, name: str, expected: str, why: str) -> None:
    """``data``, XML that is not well formed (``why``), read as ``expected``, mended, with
    a warning saying so."""
    parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
    assert parsed.text == expected
    assert [w.split(" (")[0] for w in parsed.warnings] == ["not well-formed XML"]
    assert why in parsed.warnings[0] and parsed.warnings[0].endswith("what is broken left out")


def _read_as(
    tmp_path: Path, data: bytes, kind: str, expected: str, *names: str
) -> list[ParsedDocument]:
    """``data`` under each of ``names``: known as ``kind`` (its file type and parser
    too) and read as ``expected``; the parses, for their warnings."""
    parses = []
    for name in names:
        path = _file(tmp_path, name, data)
        assert detect(path, name).kind == kind, name
        parsed = parse_file(path, name, OPTIONS)
        assert (parsed.file_type, parsed.parser, parsed.text) == (kind, kind, expected), name
        parses.append(parsed)
    return parses


@pytest.mark.parametrize(
    ("name", "kind", "canary"),
    [
        ("reports/annual.pdf", "pdf", "CANARY-PDF-PAGE-TWO"),
        ("docs/handbook.docx", "docx", "CANARY-DOCX"),
        ("docs/deck.pptx", "pptx", "CANARY-PPTX"),
        ("docs/memo.doc", "doc", "CANARY-DOC revenue"),
        ("docs/strategy.ppt", "ppt", "CANARY-PPT cut"),
        ("docs/network.vsdx", "vsdx", "CANARY-VSDX core router"),
        ("web/saved.mhtml", "mhtml", "CANARY-MHTML saved pages are read whole"),
        ("docs/sheet.xlsx", "xlsx", "CANARY-XLSX"),
        ("web/page.html", "html", "CANARY-HTML"),
        ("docs/manual.odt", "odt", "CANARY-ODT"),
        ("docs/talk.odp", "odp", "CANARY-ODP"),
        ("docs/floor.odg", "odg", "CANARY-ODG rack A"),
        ("docs/guide.epub", "epub", "CANARY-EPUB"),
        ("docs/readme.md", "markdown", "CANARY-MD"),
        ("code/app.py", "code", "CANARY-PY"),
        ("code/main.go", "code", "CANARY-GO"),
        ("text/utf16.txt", "text", "CANARY-UTF16 caf\u00e9 na\u00efve"),
        ("text/latin1.txt", "text", "CANARY-LATIN1 caf\u00e9 cr\u00e8me br\u00fbl\u00e9e"),
    ],
)
def test_each_type_parses_with_its_canary(
    tmp_path: Path, name: str, kind: str, canary: str
) -> None:
    data = docs.corpus()[name]
    parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
    assert parsed.file_type == kind
    assert canary in parsed.text


def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    parsed = parse_file(
        _file(tmp_path, "a.pdf", docs.corpus()["reports/annual.pdf"]), "a.pdf", OPTIONS
    )
    pages = {s.page: s.text for s in parsed.segments}
    assert "CANARY-PDF-PAGE-ONE" in pages[1] and "CANARY-PDF-PAGE-TWO" in pages[2]
    assert parsed.parser == "pymupdf4llm-tables" and parsed.pages == 2
    fast = parse_file(
        _file(tmp_path, "b.pdf", docs.corpus()["reports/annual.pdf"]),
        "b.pdf",
        ParseOptions(pdf_mode="fast"),
    )
    assert fast.parser == "pymupdf4llm-fast" and "CANARY-PDF-PAGE-TWO" in fast.text


def test_running_headers_and_footers_are_dropped(tmp_path: Path) -> None:
    from rag_ingest.settings import ParseSettings

    path = _file(tmp_path, "r.pdf", docs.pdf_with_running_lines(pages=6))
    parsed = parse_file(path, "r.pdf", OPTIONS)
    assert [s.page for s in parsed.segments] == [1, 2, 3, 4, 5, 6]
    for number, segment in enumerate(parsed.segments, start=1):
        assert "Confidential" not in segment.text and " of 6" not in segment.text
        # Headings (alike but for their digits) and the body stay; so does a line on 2 pages.
        assert f"# Chapter {number}\n" in segment.text and f"CANARY-{number}." in segment.text
        assert ("Draft figures" in segment.text) == (number <= 2)
        assert segment.text.count("Revenue grew") == 5  # a paragraph's first line repeats too
    kept = parse_file(path, "r.pdf", ParseOptions.of(ParseSettings(pdf_drop_running_lines=False)))
    assert all("ACME Corp - Confidential" in s.text for s in kept.segments)
    assert "Page 6 of 6" in kept.segments[-1].text
    # A scan whose only text is a page stamp has no text, as a scan without one.
    stamped = docs.scanned_pdf([f"Minutes, part {n}" for n in range(1, 5)], stamp="Exhibit A -")
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        parse_file(_file(tmp_path, "scan.pdf", stamped), "scan.pdf", OPTIONS)
    # But pages whose one line is all they hold, alike but for a number, are that text
    # (qpdf's test files, "Potato 0" to "Potato 29", had been refused as without text).
    lines = [f"CANARY-POTATO {n}" for n in range(1, 5)]
    parsed = parse_file(_file(tmp_path, "p.pdf", docs.pdf_bytes(lines)), "p.pdf", OPTIONS)
    assert [s.text.strip() for s in parsed.segments] == lines
    # So too when a long PDF's ranges were read apart (merge_ranges).
    ranges = [
        ParsedDocument("pdf", [Segment(line, page=n)], "p", scanned=[n] if stamp else [])
        for stamp in (False, True)
        for n, line in enumerate(lines, start=1)
    ]
    merged = merge_ranges("p.pdf", ranges[:4], max_images=0)
    assert [s.text for s in merged.segments] == lines
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        merge_ranges("p.pdf", ranges[4:], max_images=0)
    for part in ranges[4:]:
        part.scans = part.scanned  # to be read by OCR, which judges them after
    assert merge_ranges("p.pdf", ranges[4:], max_images=0).scanned == [1, 2, 3, 4]
    # Pages holding only their footer, under half of them: it is still a running line.
    bodies = ["Alpha", "", "Gamma", "Delta", "", "Zeta"]
    mixed = [f"{body}\n\nPage {n} of 6" for n, body in enumerate(bodies, start=1)]
    parsed = parse_file(_file(tmp_path, "m.pdf", docs.pdf_bytes(mixed)), "m.pdf", OPTIONS)
    assert [s.text.strip() for s in parsed.segments] == [b for b in bodies if b]


def test_pptx_slides_are_pages(tmp_path: Path) -> None:
    parsed = parse_file(
        _file(tmp_path, "d.pptx", docs.corpus()["docs/deck.pptx"]), "d.pptx", OPTIONS
    )
    assert [s.page for s in parsed.segments] == [1, 2]
    assert "CANARY-PPTX" in parsed.segments[1].text


def _rich_deck() -> bytes:
    """Slides with bullets, a table, a picture and speaker notes."""
    import io

    from PIL import Image as PILImage
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for i in range(3):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {i} CANARY-{i}"
        slide.placeholders[1].text = f"first point {i}\nsecond point {i}"
        slide.notes_slide.notes_text_frame.text = f"notes {i}"
    table = deck.slides[1].shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1))
    for r, c, text in ((0, 0, "region"), (0, 1, "sales"), (1, 0, "north"), (1, 1, "42")):
        table.table.cell(r, c).text = text
    png = io.BytesIO()
    PILImage.new("RGB", (64, 64), (200, 30, 30)).save(png, "PNG")
    png.seek(0)
    deck.slides[2].shapes.add_picture(png, Inches(5), Inches(5))
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def test_slides_and_sheets_are_docling_s_own_page_markdown_from_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docling_core.types.doc import DoclingDocument

    from rag_ingest.parsers import office

    files = {"rich.pptx": _rich_deck(), "orders.xlsx": docs.orders_xlsx_bytes()}
    calls: list[object] = []
    export = DoclingDocument.export_to_markdown

    def counted(self: DoclingDocument, *args: object, **kwargs: object) -> str:
        calls.append(kwargs.get("page_no"))
        return export(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DoclingDocument, "export_to_markdown", counted)
    one_pass = {n: parse_file(_file(tmp_path, n, d), n, OPTIONS).segments for n, d in files.items()}
    assert "| north    |      42 |" in one_pass["rich.pptx"][1].text
    # docling's export_to_markdown(page_no=n) walks the whole document for each page:
    # 500 slides took 91 s. It is not called at all now.
    assert calls == []
    monkeypatch.setattr(
        office,
        "_markdown_by_page",
        lambda doc, markers: {
            n: doc.export_to_markdown(page_no=n, **office._PLAIN) for n in sorted(doc.pages)
        },
    )
    for name, data in files.items():
        reference = parse_file(_file(tmp_path, name, data), name, OPTIONS).segments
        # docling's own tables write a cell's "|" as "&#124;"; ours as Markdown's "\|".
        escaped = [dataclasses.replace(s, text=s.text.replace("&#124;", "\\|")) for s in reference]
        assert escaped == one_pass[name]
    assert calls == [1, 2, 3, 1, 2]  # the reference: per page, as before
    assert "fragile \\| glass" in one_pass["orders.xlsx"][0].text


def test_a_top_level_item_across_pages_is_split_by_page_as_docling_does() -> None:
    from docling_core.types.doc import (
        BoundingBox,
        DocItemLabel,
        DoclingDocument,
        GroupLabel,
        ProvenanceItem,
        Size,
    )

    from rag_ingest.parsers.office import _markdown_by_page

    doc = DoclingDocument(name="x")
    for n in (1, 2, 3):
        doc.add_page(page_no=n, size=Size(width=100, height=100))

    def at(page: int) -> ProvenanceItem:
        return ProvenanceItem(page_no=page, bbox=BoundingBox(l=0, t=0, r=1, b=1), charspan=(0, 1))

    doc.add_text(label=DocItemLabel.TEXT, text="alone on one", prov=at(1))
    group = doc.add_group(label=GroupLabel.SECTION, name="across")
    doc.add_text(label=DocItemLabel.TEXT, text="first half", prov=at(2), parent=group)
    doc.add_text(label=DocItemLabel.TEXT, text="second half", prov=at(3), parent=group)
    assert _markdown_by_page(doc, {}) == {1: "alone on one", 2: "first half", 3: "second half"}


def test_code_language_from_extension(tmp_path: Path) -> None:
    parsed = parse_file(
        _file(tmp_path, "index.ts", docs.corpus()["code/index.ts"]), "index.ts", OPTIONS
    )
    assert parsed.file_type == "code" and parsed.language == "ts"


def test_a_contents_page_loses_its_dot_leaders(tmp_path: Path) -> None:
    # libtasn1's manual: 2,151 of its 21,138 tokens were the dots of its contents page.
    dots = " ." * 30
    contents = (
        f"Contents\n1 Introduction{dots} 3\n2 CANARY-TOC Usage{dots} 12\n"
        f"Index{dots[:20]} 40 Function Index{dots[:20]} 41"
    )
    pdf = docs.pdf_bytes([contents, "Introduction\nCANARY-BODY the library parses it. . . ."])
    text = parse_file(_file(tmp_path, "m.pdf", pdf), "m.pdf", OPTIONS).text
    assert "1 Introduction … 3" in text and "2 CANARY-TOC Usage … 12" in text
    assert "Index … 40 Function Index … 41" in text
    assert ". . . . ." not in text.split("CANARY-BODY")[0]
    assert "CANARY-BODY the library parses it. . . ." in text  # prose: no page number
    # Set in a monospaced font, pymupdf4llm writes them as a code span (TCPDF's).
    from rag_ingest.parsers.pdf import _without_leaders

    assert _without_leaders("**Chapter 1** `" + "." * 40 + " 2`") == "**Chapter 1** … 2"


def test_a_pdf_page_of_a_few_turned_words_alone_is_read(tmp_path: Path) -> None:
    # Too few letters to count as much text lost, but all of the page's: pdfminer's
    # issue-449-vertical.pdf ("Test Vertical Layout", turned) failed as having no text.
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 300), "CANARY-TURNED label", rotate=90)
    parsed = parse_file(_file(tmp_path, "v.pdf", doc.tobytes()), "v.pdf", OPTIONS)
    assert parsed.text == "CANARY-TURNED label"


def test_a_pdf_column_of_vertical_writing_is_read_as_one_run() -> None:
    from rag_ingest.parsers.pdf import _rotated_text

    # MuPDF makes each glyph of vertical writing (Japanese set top to bottom) a line of
    # its own: pdf.js's issue6387.pdf read a character a line.
    def line(text: str, wmode: int, direction: tuple[float, float]) -> dict[str, object]:
        return {"dir": direction, "wmode": wmode, "spans": [{"text": text}]}

    class Page:
        def get_text(self, kind: str) -> dict[str, object]:
            column = [line(c, 1, (0.0, 1.0)) for c in "あのイーハトーヴォ"]
            turned = [line("CANARY-UP", 0, (0.0, -1.0)), line("second", 0, (0.0, -1.0))]
            flat = [line("horizontal", 0, (1.0, 0.0))]
            return {"blocks": [{"lines": column}, {"lines": turned + flat}]}

    assert _rotated_text(Page()) == "あのイーハトーヴォ\n\nCANARY-UP\nsecond"


def test_a_pdf_page_s_runs_of_blank_lines_are_one_outside_code_fences(tmp_path: Path) -> None:
    # pymupdf4llm wrote a varying number of them between two paragraphs of one page of
    # zlib's crc-doc.1.0.pdf from one run to the next, and so changed its chunks' IDs.
    page = "Title\n\n\n\n\nFirst CANARY.\n\n\n\nSecond.\n```\n\n\ncode\n```"
    pdf = docs.pdf_bytes([page, "Appendix\n\n\n\nLast CANARY."])
    first, second = parse_file(_file(tmp_path, "b.pdf", pdf), "b.pdf", OPTIONS).segments
    assert first.text == "Title\n\nFirst CANARY.\n\nSecond.\n```\n\n\ncode\n```\n"
    assert second.text == "Appendix\n\nLast CANARY.\n\n"


def test_text_pymupdf4llm_leaves_out_of_a_page_is_read(tmp_path: Path) -> None:
    """colortbl's German manual lost a whole page (a table of coloured cells, taken for a
    drawing), lscape's every page (text set turned): both failed as having no text."""
    striped = parse_file(
        _file(tmp_path, "s.pdf", docs.pdf_with_lost_text("striped")), "s.pdf", OPTIONS
    )
    assert striped.text.startswith("Quarterly figures, CANARY-INTRO, as agreed.")
    assert all(f"cell R{r}C{c} value" in striped.text for r in range(12) for c in range(3))
    turned = parse_file(
        _file(tmp_path, "t.pdf", docs.pdf_with_lost_text("turned")), "t.pdf", OPTIONS
    )
    assert turned.text == "Quarterly figures, CANARY-INTRO, as agreed.\n\n" + "\n\n".join(
        f"turned line {n} CANARY-TURN{n} with words" for n in range(10)
    )
    marked = parse_file(
        _file(tmp_path, "m.pdf", docs.pdf_with_lost_text("highlight")), "m.pdf", OPTIONS
    )
    # Text over a picture, taken for part of it.
    pictured = parse_file(
        _file(tmp_path, "p.pdf", docs.pdf_with_lost_text("pictured")), "p.pdf", OPTIONS
    )
    assert all(f"line {n} CANARY-OVER{n}." in pictured.text for n in range(8))
    # A page MuPDF fails on (an image it cannot decode): the pages read without images, as
    # Markdown all the same, not the whole PDF as plain text.
    jpx = parse_file(_file(tmp_path, "j.pdf", docs.pdf_with_lost_text("jpx")), "j.pdf", OPTIONS)
    assert jpx.parser == "pymupdf4llm-tables" and jpx.warnings == []
    assert [s.page for s in jpx.segments] == [1, 2, 3]
    assert "CANARY-JPX" in jpx.segments[1].text and "CANARY-LAST" in jpx.segments[2].text
    # No <mark> or <u> tags round them (MuPDF takes a rule under a line, or a box, for an
    # underline: texlive's ltxcmds.pdf had 303 pairs); and a margin's short vertical
    # stamp is not worth the words.
    assert marked.text == (
        "Quarterly figures, CANARY-INTRO, as agreed.\n\nA highlighted line, CANARY-MARK.\n\n"
        "An underlined term, CANARY-UNDER.\n\n"
    )


def test_a_mobi_e_book_is_read_as_mupdf_lays_it_out(tmp_path: Path) -> None:
    """A Kindle book had been skipped as "binary data (.mobi)"; MuPDF reads MOBI."""
    book = docs.mobi_bytes(
        b"<html><body><h1>Chapter One</h1><p>The CANARY-MOBI paragraph.</p>"
        b"<p>Second paragraph.</p></body></html>"
    )
    for name in ("novel.mobi", "novel.azw", "novel"):  # by content too
        parsed = parse_file(_file(tmp_path, name, book), name, OPTIONS)
        assert (parsed.file_type, parsed.parser, parsed.pages) == ("mobi", "pymupdf4llm-tables", 1)
        assert (
            parsed.text == "# **Chapter One**\n\nThe CANARY-MOBI paragraph.\nSecond paragraph.\n\n"
        )
    damaged = book[:60] + b"BOOKMOBI" + bytes(200)
    with pytest.raises(CorruptDocumentError, match=r"^bad\.mobi: not a readable MOBI e-book"):
        parse_file(_file(tmp_path, "bad.mobi", damaged), "bad.mobi", OPTIONS)


_FB2 = """<?xml version="1.0" encoding="windows-1251"?>
<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"
  xmlns:l="http://www.w3.org/1999/xlink">
 <description><title-info>
  <author><first-name>Лев</first-name><last-name>Толстой</last-name></author>
  <author><nickname>CANARY-NICK</nickname></author>
  <book-title>Война и мир</book-title>
  <annotation><p>Роман-эпопея.</p></annotation>
  <date value="1869-01-01">1869</date>
 </title-info></description>
 <body>
  <title><p>Том первый</p></title>
  <epigraph><p>Quoted words.</p><text-author>Someone</text-author></epigraph>
  <section>
   <title><p>Часть первая</p></title>
   <section>
    <title><p>I</p></title>
    <p>— Eh bien, mon prince. <emphasis>CANARY-FB2</emphasis> Genes<a l:href="#n1">[1]</a>.</p>
    <subtitle>Scene two</subtitle>
    <poem><stanza><title><p>CANARY-STANZA</p></title><subtitle>Refrain</subtitle>
     <v>First verse,</v><v>second verse.</v></stanza><date>May 1868</date></poem>
    <cite><p>A citation.</p></cite>
    <table><tr><th>Year</th><td>1869</td></tr><tr><td/></tr></table>
   </section>
  </section>
 </body>
 <body name="notes"><section id="n1"><title><p>1</p></title><p>Genoa.</p></section></body>
 <binary id="cover.jpg" content-type="image/jpeg">/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD</binary>
</FictionBook>
"""


def test_a_fictionbook_is_read_as_its_text_not_its_xml(tmp_path: Path) -> None:
    """It had been XML read as text: its tags and its pictures' base64 were chunks."""
    data = _FB2.encode("windows-1251")
    for name in ("war.fb2", "war.xml", "war"):  # by content too
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("fb2", "fictionbook"), name
        assert parsed.text == (
            "# Война и мир\n\nBy Лев Толстой, CANARY-NICK\n\nDate: 1869\n\n"
            "Роман-эпопея.\n\n"
            "# Том первый\n\n"
            "> Quoted words.\n\n> Someone\n\n## Часть первая\n\n### I\n\n"
            "— Eh bien, mon prince. CANARY-FB2 Genes[1].\n\n**Scene two**\n\n"
            "CANARY-STANZA\n\nRefrain\n\nFirst verse,\nsecond verse.\n\nMay 1868\n\n"
            "> A citation.\n\nYear | 1869\n\n"
            "## Notes\n\n### 1\n\nGenoa."
        )
    blank = _FB2.split("<body>")[0] + "<body><section/></body></FictionBook>"
    with pytest.raises(BlankDocumentError):
        parse_file(_file(tmp_path, "b.fb2", blank.encode("windows-1251")), "b.fb2", OPTIONS)
    # Cut short: read as far as it goes, said; cut before its body, damaged.
    cut = data[: data.index(b"<subtitle>Scene two")]
    mended = parse_file(_file(tmp_path, "m.fb2", cut), "m.fb2", OPTIONS)
    assert mended.text.endswith("CANARY-FB2 Genes[1].") and "Scene" not in mended.text
    assert [w.split(" (")[0] for w in mended.warnings] == ["not well-formed XML"]
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "c.fb2", data[:300]), "c.fb2", OPTIONS)
    # A prefix never declared (fuzzing found it failing untyped, then failing as damaged:
    # lxml's mending keeps it unbound): declared, read as LibreOffice opens such a file.
    unbound = data.replace(b"<subtitle>Scene two", b"<x:subtitle>Scene two", 1)
    read = parse_file(_file(tmp_path, "u.fb2", unbound), "u.fb2", OPTIONS)
    assert read.text == parse_file(_file(tmp_path, "w.fb2", data), "w.fb2", OPTIONS).text
    assert [w.split(" (")[1].split(":")[0] for w in read.warnings] == ["unbound prefix"]
    # One expat cannot read even so (a prefix bound in a tag's name and its attribute
    # both, the attribute twice): damaged.
    twice = data.replace(b"<subtitle>Scene two", b'<x:subtitle y:a="1" y:a="2">Scene two', 1)
    with pytest.raises(CorruptDocumentError):
        parse_file(_file(tmp_path, "t.fb2", twice), "t.fb2", OPTIONS)


def test_encrypted_pdf_is_typed(tmp_path: Path) -> None:
    data = docs.pdf_bytes(["secret"], encrypt=True)
    with pytest.raises(EncryptedDocumentError):
        parse_file(_file(tmp_path, "e.pdf", data), "e.pdf", OPTIONS)


def test_a_password_protected_office_file_is_typed_not_called_legacy(tmp_path: Path) -> None:
    data = docs.encrypted_docx_bytes()
    for name in ("locked.docx", "locked"):  # by its content, whatever it is called
        with pytest.raises(EncryptedDocumentError, match="password-protected"):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)


def test_an_office_file_under_offices_default_password_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Excel encrypts a workbook "protected from changes" with a password it knows and
    # opens it without asking (oletools' test files): it had failed as password-protected,
    # an .xls as damaged ("Cannot detect file format").
    staging = tmp_path / "staging"
    staging.mkdir()
    options = ParseOptions(temp_dir=str(staging))
    rows: list[list[object]] = [["item", "count"], ["CANARY-XLS", 4]]
    files = {
        "memo.docx": (docs.encrypted_docx_bytes, "CANARY-LOCKED"),
        "stock.xls": (lambda password: docs.encrypted_xls_bytes(rows, password), "CANARY-XLS"),
    }
    for name, (make, canary) in files.items():
        parsed = parse_file(_file(tmp_path, name, make("VelvetSweatshop")), name, options)
        assert canary in parsed.text, name
        assert parsed.warnings[-1] == f"{name}: {DEFAULT_PASSWORD_NOTE}", name
        assert list(staging.iterdir()) == [], name  # the decrypted copy removed
        # Another password: password-protected, the .xls too (not "damaged").
        with pytest.raises(EncryptedDocumentError, match="password-protected"):
            parse_file(_file(tmp_path, name, make("secret")), name, options)
        assert list(staging.iterdir()) == [], name
    # Without msoffcrypto-tool (extra office): password-protected, as before.
    monkeypatch.setitem(sys.modules, "msoffcrypto", None)
    with pytest.raises(EncryptedDocumentError, match="password-protected"):
        memo = _file(tmp_path, "memo.docx", docs.encrypted_docx_bytes("VelvetSweatshop"))
        parse_file(memo, "memo.docx", options)


def test_truncated_pdf_is_not_a_clean_parse(tmp_path: Path) -> None:
    data = docs.pdf_bytes([f"page {i} " + "text " * 200 for i in range(6)])
    for cut in (0.5, 0.8, 0.95):
        truncated = data[: int(len(data) * cut)]
        with pytest.raises(CorruptDocumentError):
            parse_file(_file(tmp_path, "t.pdf", truncated), "t.pdf", OPTIONS)


def test_the_faster_rect_equality_gives_pymupdfs_answer() -> None:
    import math

    import pymupdf

    from rag_ingest.parsers.pdf import _faster_rect_equality, _known_rect_eq

    # PyMuPDF's own is the code known (2.0's and 2.1's); a later PyMuPDF's other code is
    # left alone (see the end), and this test has nothing to check.
    if pymupdf.Rect.__eq__.__code__.co_code != _known_rect_eq.__code__.co_code:
        pytest.skip(f"PyMuPDF {pymupdf.__version__}'s Rect.__eq__ is not the code known")

    class Mine(pymupdf.Rect):  # replaced on a subclass: the test's process keeps its own
        pass

    _faster_rect_equality(Mine)
    assert Mine.__eq__ is not pymupdf.Rect.__eq__
    values = [0.0, -0.0, 1.0, 1.0 + 1e-12, 1e300, -1e300, math.inf, -math.inf, math.nan]
    rng = random.Random(7)
    rects = [Mine(*(rng.choice(values) for _ in range(4))) for _ in range(400)]
    rects += [Mine(1, 2, 3, 4), Mine(1, 2, 3, 4), Mine(1, 2, 3, 4.000001), Mine()]
    others: list[Any] = [(1, 2, 3, 4), [0, 0, 0, 0], pymupdf.IRect(1, 2, 3, 4), None, 3, "ab"]
    for a in rects:
        for b in [*rects[::7], rects[-4], *others]:
            try:
                expected: Any = _known_rect_eq(a, b)
            except Exception as exc:  # its answer to a value no Rect is: the same error
                expected = type(exc)
            try:
                got: Any = a == b
            except Exception as exc:
                got = type(exc)
            assert got == expected, (a, b)
    assert Mine(1, 2, 3, 4) == Mine(1, 2, 3, 4) and Mine(1, 2, 3, 4) != Mine(1, 2, 3, 5)

    class Other(pymupdf.Rect):
        def __eq__(self, rect: object) -> bool:  # not the code known
            return True

    kept = Other.__eq__
    _faster_rect_equality(Other)
    assert Other.__eq__ is kept


def test_a_whole_pdf_muPDF_repairs_is_read_with_a_warning(tmp_path: Path) -> None:
    # Wrong offsets in its cross-reference table (a hand-written PDF, pypdf's toy.pdf),
    # and NULs after its end (pypdf's selenium-pypdf-issue-177.pdf): MuPDF repairs it,
    # and its text is all there. It had failed as "damaged".
    data = docs.pdf_bytes(["CANARY-REPAIRED the whole page"])
    start = data.rindex(b"startxref")
    offsets = data[:start] + re.sub(rb"\d+", b"9", data[start:], count=1)
    for name, damaged in (("offsets.pdf", offsets), ("padded.pdf", offsets + b"\0" * 20_000)):
        parsed = parse_file(_file(tmp_path, name, damaged), name, OPTIONS)
        assert "CANARY-REPAIRED the whole page" in parsed.text
        assert parsed.warnings == [
            "the PDF is damaged (MuPDF repaired it): some text may be missing"
        ]
    # Cut short, with NULs after: it still fails.
    cut = offsets[: len(offsets) - 40] + b"\0" * 100
    with pytest.raises(CorruptDocumentError, match=r"cut short\? MuPDF had to repair it"):
        parse_file(_file(tmp_path, "cut.pdf", cut), "cut.pdf", OPTIONS)


def test_a_docx_comments_are_listed_after_its_text_with_what_they_mark(tmp_path: Path) -> None:
    # docling loads a DOCX's comments and writes none out (pandoc's comments.docx): a
    # reviewer's "changed in v3" was lost. Listed after the text, as a PDF's are.
    import docx

    document = docx.Document()
    paragraph = document.add_paragraph("The term is ")
    marked = paragraph.add_run("CANARY-MARKED three years")
    paragraph.add_run(" from signing.")
    document.add_comment(marked, text="CANARY-COMMENT changed\nin v3", author="Ann Lee")
    first = document.add_paragraph("Second paragraph.").runs[0]
    last = document.add_paragraph("Third " + "word " * 30).runs[0]
    document.add_comment([first, last], text="CANARY-SPAN across two", author="Bob")
    document.add_comment(document.add_paragraph("Fourth.").runs[0], text="", author="Cy")
    document.save(saved := io.BytesIO())
    parsed = parse_file(_file(tmp_path, "c.docx", saved.getvalue()), "c.docx", OPTIONS)
    text, comments = parsed.text.split("\n\nComments:\n")
    assert text.startswith("The term is CANARY-MARKED three years from signing.")
    assert comments.split("\n") == [
        '- Comment (Ann Lee) on "CANARY-MARKED three years": CANARY-COMMENT changed in v3',
        # Across paragraphs, a space between them; a long passage cut (80 characters).
        '- Comment (Bob) on "Second paragraph. Third'
        + " word" * 11
        + '\u2026": CANARY-SPAN across two',
    ]  # an empty comment left out
    plain = docs.docx_bytes("Plan", {"Scope": "CANARY-PLAIN"})
    assert "Comments:" not in parse_file(_file(tmp_path, "p.docx", plain), "p.docx", OPTIONS).text

    # A reply, as Word 2013 and later mark one (commentsExtended: its last paragraph's
    # paraId, and its parent's), on the same passage: said a reply, the passage not again.
    document = docx.Document()
    marked = document.add_paragraph("Term: ").add_run("CANARY-MARKED three years")
    document.add_comment(marked, text="CANARY-ASK is this right?", author="Ann Lee")
    document.add_comment(marked, text="CANARY-ANSWER yes", author="Bob Roe")
    document.save(saved := io.BytesIO())
    w15 = "http://schemas.microsoft.com/office/word/2012/wordml"
    extended = (
        f'<w15:commentsEx xmlns:w15="{w15}"><w15:commentEx w15:paraId="0A000001"/>'
        '<w15:commentEx w15:paraId="0A000002" w15:paraIdParent="0A000001"/></w15:commentsEx>'
    )

    def identified(text: str) -> str:  # each comment's paragraph given its paraId
        return re.sub(
            r'(<w:comment w:id="(\d)"[^>]*>)<w:p>',
            lambda m: f'{m[1]}<w:p w14:paraId="0A00000{int(m[2]) + 1}">',
            text,
        )

    extended_type = "http://schemas.microsoft.com/office/2011/relationships/commentsExtended"
    replied = docs._repacked(
        saved.getvalue(),
        {
            "word/comments.xml": identified,
            "word/_rels/document.xml.rels": _linked(("rX", extended_type, "commentsExtended.xml")),
        },
        {"word/commentsExtended.xml": extended},
    )
    parsed = parse_file(_file(tmp_path, "r.docx", replied), "r.docx", OPTIONS)
    assert parsed.text.split("\n\nComments:\n")[1].split("\n") == [
        '- Comment (Ann Lee) on "CANARY-MARKED three years": CANARY-ASK is this right?',
        "- Reply (Bob Roe): CANARY-ANSWER yes",
    ]


def test_a_pdf_link_wrapped_over_lines_is_one_link(tmp_path: Path) -> None:
    # pymupdf4llm writes a link a line at a time, its URL after each line's words: the
    # wrapped link's words parted, its URL said again on every line.
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    lines = ("Read CANARY-START of the", "wrapped link text", "its end", "after.")
    url = "https://example.com/a/long/path?q=1#part"
    for n, line in enumerate(lines):
        page.insert_text((72, 72 + 14 * n), line)
        target = url + ("x" if n == 3 else "")  # another link, on the next line
        width = pymupdf.get_text_length(line, fontsize=11)  # pymupdf4llm links a span it covers
        area = pymupdf.Rect(72, 62 + 14 * n, 72 + width, 74 + 14 * n)
        page.insert_link({"kind": pymupdf.LINK_URI, "from": area, "uri": target})
    path = tmp_path / "l.pdf"
    doc.save(path)
    text = parse_file(str(path), "l.pdf", OPTIONS).text
    assert text.strip() == (
        f"[Read CANARY-START of the wrapped link text its end]({url})\n[after.]({url}x)"
    )


def test_a_pdfs_comments_are_read_after_their_pages_text(tmp_path: Path) -> None:
    # pymupdf4llm leaves out what is not drawn: a sticky note's or a highlight's comment,
    # a reviewer's "figures from the Q3 audit", was lost (pdf.js's test PDFs hold some).
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Quarterly figures CANARY-PAGE")
    note = page.add_text_annot((300, 72), "CANARY-NOTE from the Q3 audit")
    note.set_info(title="Ann")
    note.update()
    marked = page.add_highlight_annot(pymupdf.Rect(72, 60, 200, 80))
    marked.set_info(content="CANARY-HIGHLIGHT check this", title="Bob")
    marked.update()
    page.add_freetext_annot(pymupdf.Rect(72, 300, 300, 340), "CANARY-FREETEXT shown").update()
    reply = page.add_text_annot((320, 72), "CANARY-REPLY agreed")
    reply.set_info(title="Cy")
    reply.set_irt_xref(note.xref)
    reply.update()
    again = page.add_text_annot((340, 72), "CANARY-NOTE from the Q3 audit")  # said once
    again.set_info(title="Ann")
    again.update()
    doc.new_page().add_text_annot((100, 100), "CANARY-ALONE on a blank page").update()
    parsed = parse_file(_file(tmp_path, "n.pdf", doc.tobytes()), "n.pdf", OPTIONS)
    assert [(s.text, s.page) for s in parsed.segments] == [
        (
            "Quarterly figures CANARY-PAGE\n\nCANARY-FREETEXT shown\n\n"  # drawn: once
            "Comments:\n- Comment (Ann): CANARY-NOTE from the Q3 audit\n"
            "- Comment (Bob): CANARY-HIGHLIGHT check this\n- Reply (Cy): CANARY-REPLY agreed",
            1,
        ),
        ("Comments:\n- Comment: CANARY-ALONE on a blank page", 2),
    ]


def _tagged_pdf() -> bytes:
    """Three pages, and a structure tree of figures with alternative text, as Word's
    "Save as PDF" writes an accessible one: roles, pages given four ways."""
    import pymupdf

    doc = pymupdf.open()
    for text in ("Sales CANARY-PAGE-ONE", "Costs CANARY-PAGE-TWO", "Logo drawn here"):
        doc.new_page().insert_text((72, 72), text)
    pages = [doc.page_xref(i) for i in range(3)]
    xrefs = [doc.get_new_xref() for _ in range(13)]
    root, part, own, inherited, marked, mapped, named, shown, prose, again = xrefs[:10]

    def element(xref: int, body: str) -> None:
        doc.update_object(xref, f"<</Type/StructElem/P {part} 0 R{body}>>")

    doc.update_object(
        root,
        f"<</Type/StructTreeRoot/K {part} 0 R/RoleMap<</Chart/Figure/Caption/P>>>>",
    )
    kids = " ".join(f"{x} 0 R" for x in xrefs[2:])
    doc.update_object(part, f"<</Type/StructElem/S/Sect/P {root} 0 R/Pg {pages[1]} 0 R/K[{kids}]>>")
    element(own, f"/S/Figure/Pg {pages[0]} 0 R/Alt(CANARY-FIGURE bars rise in March)/K 0")
    element(inherited, "/S/Figure/Alt(CANARY-INHERITED pie of costs)")  # the section's page
    element(
        marked,
        f"/S/Formula/Alt(CANARY-FORMULA e = mc2)/K[<</Type/MCR/Pg {pages[2]} 0 R/MCID 0>>]",
    )
    element(mapped, f"/S/Chart/Pg {pages[0]} 0 R/Alt(CANARY-MAPPED line of growth)")
    element(named, f"/S/Figure/Pg {pages[0]} 0 R/Alt(C:\\\\charts\\\\q1.png)")
    element(shown, f"/S/Figure/Pg {pages[0]} 0 R/Alt(Sales CANARY-PAGE-ONE)")
    element(prose, f"/S/P/Pg {pages[0]} 0 R/Alt(CANARY-PROSE not a picture)")
    element(again, f"/S/Figure/Pg {pages[0]} 0 R/Alt(CANARY-FIGURE bars rise in March)")
    for logo, page in zip(xrefs[10:], pages, strict=True):
        element(logo, f"/S/Figure/Pg {page} 0 R/Alt(CANARY-LOGO of the company)")
    doc.xref_set_key(doc.pdf_catalog(), "StructTreeRoot", f"{root} 0 R")
    return bytes(doc.tobytes())


def test_a_tagged_pdfs_figures_alternative_text_is_read_after_their_pages_text(
    tmp_path: Path,
) -> None:
    # pymupdf4llm drops the structure tree: an accessible PDF's chart descriptions ("The
    # line graph shows five year performance ...", PyMuPDF's test_3725.pdf) were lost.
    parsed = parse_file(_file(tmp_path, "t.pdf", _tagged_pdf()), "t.pdf", OPTIONS)
    logo = "- CANARY-LOGO of the company"  # on every page: said on the first only
    assert [(s.text, s.page) for s in parsed.segments] == [
        (
            "Sales CANARY-PAGE-ONE\n\nPictures:\n- CANARY-FIGURE bars rise in March\n"
            f"- CANARY-MAPPED line of growth\n{logo}",
            1,
        ),
        ("Costs CANARY-PAGE-TWO\n\nPictures:\n- CANARY-INHERITED pie of costs", 2),
        ("Logo drawn here\n\nPictures:\n- CANARY-FORMULA e = mc2", 3),
    ]


def test_corrupt_pdf_is_typed(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocumentError):
        parse_file(_file(tmp_path, "c.pdf", b"%PDF-1.7\n" + b"\x13garbage" * 500), "c.pdf", OPTIONS)
    # Its page tree damaged, MuPDF finds no page and repairs nothing: it had been "no
    # extractable text: its pages, scans maybe, not read", as if OCR would help.
    pageless = docs.pdf_bytes(["CANARY one"]).replace(b"/Count 1", b"/Count 0")
    with pytest.raises(CorruptDocumentError, match=r"^p\.pdf: the PDF has no pages"):
        parse_file(_file(tmp_path, "p.pdf", pageless), "p.pdf", OPTIONS)
    # A count MuPDF refuses to read ("Invalid number of pages"; poppler's 67295-0 in
    # pdf.js's tests): it had failed untyped.
    for count in (b"-1", b"9999999999"):
        refused = docs.pdf_bytes(["CANARY one"]).replace(b"/Count 1", b"/Count " + count)
        with pytest.raises(CorruptDocumentError, match=r"^r\.pdf: the PDF has no pages"):
            parse_file(_file(tmp_path, "r.pdf", refused), "r.pdf", OPTIONS)
    # Its "%" flipped: it had been "content does not match its .pdf extension", or read
    # as text. Known by "PDF-" near its start, or by its "%%EOF".
    cut = b"\x12" + pageless[1 : len(pageless) // 2]  # its end lost too
    for damaged in (cut, b"\x00\x00\x00" + pageless[5:]):
        with pytest.raises(CorruptDocumentError, match=r"damaged \.pdf file: its header"):
            parse_file(_file(tmp_path, "h.pdf", damaged), "h.pdf", OPTIONS)


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    with pytest.raises(ZipBombError):
        parse_file(_file(tmp_path, "bomb.docx", docs.zip_bomb_docx()), "bomb.docx", OPTIONS)


def test_binary_content_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BinaryContentError):
        parse_file(_file(tmp_path, "b.txt", bytes(range(256)) * 50), "b.txt", OPTIONS)
    # Control bytes without a NUL: binary too, past a few.
    with pytest.raises(BinaryContentError, match="control bytes"):
        parse_file(_file(tmp_path, "c.txt", bytes(range(1, 32)) * 20), "c.txt", OPTIONS)


def test_overstruck_text_and_a_few_keystrokes_are_text(tmp_path: Path) -> None:
    """A manual page nroff printed to a file (bold and underline as backspaces, a tenth
    of its bytes) and vim's urm.vim (5 control bytes in 96) had been refused as
    binary."""
    page = (
        b"LS(1)          User Commands          LS(1)\n\nN\bNA\bAM\bME\bE\n"
        b"       ls - list CANARY-MAN directory contents\n\nS\bSY\bYN\bNO\bOP\bPS\bSI\bIS\bS\n"
        b"       l\bls\bs [_\bO_\bP_\bT_\bI_\bO_\bN]...\n"
    )
    parsed = parse_file(_file(tmp_path, "ls.txt", page), "ls.txt", OPTIONS)
    assert parsed.text == (
        "LS(1)          User Commands          LS(1)\n\nNAME\n"
        "       ls - list CANARY-MAN directory contents\n\nSYNOPSIS\n       ls [OPTION]...\n"
    )
    macros = (
        b'map * 1G/INIT\x16\rj"iT@i1G/INIT\x16\rdG\n'
        b"map g 1G/^[(as;.]\x16\ri\x16\r>,\x16\x1bmkkmw@k\n"
    )
    parsed = parse_file(_file(tmp_path, "urm.vim", macros), "urm.vim", OPTIONS)
    assert parsed.text.startswith("map * 1G/INIT\x16\nj") and parsed.language == "vim"


def test_a_log_padded_with_nul_blocks_is_read_without_them(tmp_path: Path) -> None:
    """A log whose machine stopped mid-write keeps the blocks it had allocated as NULs,
    then is written on: refused whole as binary, its lines lost."""
    before = b"".join(
        b"2026-12-02T10:00:%02d app started CANARY-BEFORE-%d\n" % (i, i) for i in range(20)
    )
    after = b"2026-12-02T10:05:00 app restarted CANARY-AFTER\n"
    data = before + bytes(4096) + after + bytes(1024)
    parsed = parse_file(_file(tmp_path, "app.log", data), "app.log", OPTIONS)
    assert parsed.text == (before + after).decode()
    assert parsed.warnings == ["5,120 NUL bytes of padding left out"]
    # Past the first 64 KiB too: the text has no NUL left in it.
    late = before * 200 + bytes(64) + after
    assert "\x00" not in parse_file(_file(tmp_path, "late.log", late), "late.log", OPTIONS).text


def test_a_csv_whose_fields_end_in_nul_is_read_without_them(tmp_path: Path) -> None:
    """A program writing its C strings whole leaves a NUL before each separator
    (LibreOffice's tdf57841.csv): refused as binary, its rows lost."""
    data = b"item\x00;cost\x00\r\nCANARY-DESK\x00;1200\x00\r\nchair\x00;80\x00\r\n"
    parsed = parse_file(_file(tmp_path, "l.csv", data), "l.csv", OPTIONS)
    assert (
        parsed.text
        == parse_file(_file(tmp_path, "c.csv", data.replace(b"\x00", b"")), "c.csv", OPTIONS).text
    )
    assert "CANARY-DESK" in parsed.text
    assert parsed.warnings == ["6 NUL bytes ending fields left out"]
    # One NUL anywhere else: binary, as it was.
    with pytest.raises(BinaryContentError):
        parse_file(_file(tmp_path, "b.csv", data + b"x\x00y"), "b.csv", OPTIONS)


def test_a_tab_separated_txt_with_a_header_is_a_table(tmp_path: Path) -> None:
    """Excel saves "Text (Tab delimited)" and "Unicode Text" as .txt: read as prose, its
    later chunks were rows of values without their column names."""
    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    rows = "".join(f"A-{i}\tcustomer {i}\tleft at the door, CANARY-{i}\r\n" for i in range(300))
    export = ("order\tcustomer\tnote\r\n" + rows).encode("utf-16")
    parsed = parse_file(_file(tmp_path, "export.txt", export), "export.txt", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("csv", "text[utf-16-le-bom]")
    chunks = chunk_document(parsed, ChunkSettings(), {}).chunks
    assert len(chunks) > 3 and all(c.text.startswith("order\tcustomer\tnote\n") for c in chunks)
    # Not a log of tab-separated fields (no header), nor one named .log, nor prose with
    # a tab here and there or none, nor a table of five lines or fewer, nor one whose
    # first line is numbers.
    log = "".join(f"2026-12-03 10:00:{i % 60:02d}\tINFO\tworker {i} done\n" for i in range(300))
    prose = "".join(f"Para {i}\thas one tab" + "\tor two" * (i % 2) + "\n" for i in range(50))
    for name, text in (
        ("app.txt", log),
        ("app.log", "order\tcustomer\tnote\n" + rows),
        ("notes.txt", prose),
        ("few.txt", "order\tcustomer\n" + "A-1\tann\n" * 3),
        ("plain.txt", "Notes\n" + "".join(f"step {i} done\n" for i in range(20))),
        ("numbers.txt", "1\t2\t3\n" + "".join(f"A-{i}\tx y\tz\n" for i in range(20))),
    ):
        assert parse_file(_file(tmp_path, name, text.encode()), name, OPTIONS).file_type == "text"


def test_unicode_without_a_bom_is_read_and_binary_with_nuls_is_not(tmp_path: Path) -> None:
    """UTF-16 and UTF-32 text without a BOM (SQL Server's ``bcp -w``, .NET encoders
    without a preamble) was refused as binary for its NULs."""
    from rag_ingest.parsers.text import decode_text

    text = "Name\tCity\n" + "".join(f"Zoë {i}\tKöln CANARY-{i} \U0001f600\n" for i in range(4000))
    for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        name = f"{encoding}.tsv"
        parsed = parse_file(_file(tmp_path, name, text.encode(encoding)), name, OPTIONS)
        assert (parsed.text, parsed.parser) == (text, f"text[{encoding}]")
    # Past the 64 KiB looked at, a pair cut at its end. Chinese with its numbers and tabs
    # (an eighth of its characters) is read; a few bytes with a NUL are not text.
    assert len(text.encode("utf-16-le")) > 65536
    cut = ("x" * 99 + "\n") * 327 + "y" * 67 + "\U0001f600 CANARY-CUT\n"
    assert cut.encode("utf-16-le")[65534:65536] == "\U0001f600".encode("utf-16-le")[:2]
    assert (
        parse_file(_file(tmp_path, "cut.txt", cut.encode("utf-16-le")), "cut.txt", OPTIONS).text
        == cut
    )
    chinese = "".join(f"订单\t北京市朝阳区{i % 10}号\n" for i in range(500))
    path = _file(tmp_path, "zh.tsv", chinese.encode("utf-16-le"))
    assert parse_file(path, "zh.tsv", OPTIONS).text == chinese
    # Prose in scripts written without spaces has only its line breaks' NULs (2%).
    for lang, prose in (
        ("zh", "这是一个关于季度报告的文档。收入增长了百分之四。成本保持稳定。\n"),
        ("ja", "これは四半期報告書に関する文書です。収益は四パーセント増加しました。\n"),
        ("th", "เอกสารนี้เกี่ยวกับรายงานรายไตรมาสรายได้เพิ่มขึ้นสี่เปอร์เซ็นต์\n"),
    ):
        for encoding in ("utf-16-le", "utf-16-be"):
            name = f"{lang}-{encoding}.txt"
            data = (prose * 30).encode(encoding)
            parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
            assert (parsed.text, parsed.parser) == (prose * 30, f"text[{encoding}]")
    # "一" (U+4E00) has a NUL byte: a Chinese export with it in every line's month, or
    # prose full of it, is still text.
    for lang, prose in (
        ("months", "".join(f"{i},{i}号,北京,一月,退款\n" for i in range(1, 200))),
        ("counts", "第一章 一年一度的一次会议\uff0c一共一百一十一人\uff0c一致同意。\n" * 30),
    ):
        for encoding in ("utf-16-le", "utf-16-be"):
            name = f"{lang}-{encoding}.csv"
            parsed = decode_text(prose.encode(encoding), name)
            assert parsed[:2] == (prose, encoding)
    # Its 64 KiB looked at ending inside an emoji's pair of surrogates.
    zh = ("这是关于季度报告的文档。\n" * 2800).encode("utf-16-le")
    data = zh[:65534] + "\U0001f600".encode("utf-16-le") + zh[65534:]
    assert "\U0001f600" in parse_file(_file(tmp_path, "cut.txt", data), "cut.txt", OPTIONS).text
    # Not so 16-bit data: random (it meets surrogates), or letters of a spaced script
    # run together with no space.
    noise = random.Random(7).randbytes(6000)
    letters = "".join(chr(0x100 + i % 128) for i in range(3000)) + "\n"
    for name, data in (("noise.txt", noise), ("run.txt", letters.encode("utf-16-le"))):
        with pytest.raises(BinaryContentError):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)
    with pytest.raises(BinaryContentError):
        parse_file(_file(tmp_path, "fuzz.ics", b"BeGIN:\x00\n"), "fuzz.ics", OPTIONS)
    # Audio of 8-bit samples in 16-bit frames has the NULs, not the text.
    frames = bytes(b for i in range(20000) for b in (0x80 + (i * 7) % 120, 0))
    with pytest.raises(BinaryContentError):
        parse_file(_file(tmp_path, "sound.txt", frames), "sound.txt", OPTIONS)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("__init__.py", b"\n"),
        ("empty.txt", b""),
        ("bom.md", b"\xef\xbb\xbf  \r\n\t\n"),
        ("page.html", b" \n" * 100_000),  # past the first block read
        ("scan.pdf", b"\n\n"),
    ],
)
def test_a_blank_file_is_blank_whatever_its_name(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(BlankDocumentError, match="whitespace only"):
        parse_file(_file(tmp_path, name, data), name, OPTIONS)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("syslog", bytes(4096)),  # a log's block allocated, its machine stopped
        ("app.log", bytes(40)),
        ("page.html", bytes(67)),
        ("notes.md", bytes(70_000) + b"\n" + bytes(2_000_000)),  # past the first block read
        ("report.pdf", bytes(1024)),
    ],
    ids=["syslog", "log", "html", "md", "pdf"],
)
def test_a_file_of_nul_bytes_is_blank_not_binary(tmp_path: Path, name: str, data: bytes) -> None:
    # Had failed: "binary content (NUL bytes), not text" or "no chunks after validation".
    with pytest.raises(BlankDocumentError, match=r"blank \(NUL bytes only, never written\)"):
        parse_file(_file(tmp_path, name, data), name, OPTIONS)


def test_text_after_a_long_blank_run_is_read(tmp_path: Path) -> None:
    data = b" " * 200_000 + b"CANARY-LATE"  # beyond the first 64 KiB read
    assert "CANARY-LATE" in parse_file(_file(tmp_path, "late.txt", data), "late.txt", OPTIONS).text
    padded = _file(tmp_path, "b.log", bytes(200_000) + b"CANARY-AFTER-PADDING\n")
    assert "CANARY-AFTER-PADDING" in parse_file(padded, "b.log", OPTIONS).text


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("store.sqlite3-wal", b"7\x7f\x06\x82" + bytes(300), "binary data (.sqlite3-wal)"),
        ("blob", bytes(range(256)) * 4, "binary data (no extension)"),
        ("libfoo.so.1", b"\x7fELF" + bytes(300), "an executable (ELF)"),
        # Compiled code under its source's extension: Guile's objects are .go.
        ("klondike.go", b"\x7fELF" + bytes(300), "an executable (ELF), compiled code"),
        ("cover.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
        # PostScript is text, but a program: read as text, its operators became chunks.
        ("manual", b"%!PS-Adobe-3.0\n/Times-Roman findfont 12 scalefont setfont\n", "PostScript"),
        ("manual.ps", b"%!PS-Adobe-3.0\n72 720 moveto (Hello) show\n", "PostScript"),
        # Thunderbird's index beside a mailbox: text, but row ids and hex.
        (
            "Inbox.msf",
            b'// <!-- <mdb:mork:z v="1.4"/> -->\n< <(a=c)> // (f=iso-8859-1)\n',
            "a mail client's index (.msf)",
        ),
        ("archive.pst", b"!BDN" + bytes(600), "an Outlook data file: export its mail"),
    ],
)
def test_binary_content_under_a_name_that_claims_no_text_type_has_no_text(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    with pytest.raises(
        NoTextFormatError, match=f"^{re.escape(name)}: {re.escape(said)}.*no text to index$"
    ):
        parse_file(_file(tmp_path, name, data), name, OPTIONS)


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("notes.txt", b"\x1f\x8b" + bytes(300), "a gzip archive"),
        ("main.go", b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),  # not compiled code
    ],
)
def test_a_known_format_under_a_text_name_is_a_mistake_reported(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    with pytest.raises(
        UnsupportedFileTypeError, match=f"^{re.escape(name)}: {re.escape(said)}"
    ) as caught:
        parse_file(_file(tmp_path, name, data), name, OPTIONS)
    assert not isinstance(caught.value, NoTextFormatError)


def test_a_text_part_is_read_as_a_whole_read_reads_it(tmp_path: Path) -> None:
    # A long log's parts (parsers.pool): NUL padding left out and counted, even in a
    # part of nothing else (a hole a crash left), where a whole read has text beside it.
    from rag_ingest.parsers.text import TextPlan, read_text_part, text_warnings

    head = b"2026-12-03 CANARY-HEAD caf\xc3\xa9\r\n" * 10
    hole = b"\x00" * 4096 + b"\n"
    path = _file(tmp_path, "app.log", head + hole + b"CANARY-TAIL\n")
    cuts = [0, len(head), len(head) + len(hole), len(head) + len(hole) + 12]
    plan = TextPlan(path, "text", None, list(itertools.pairwise(cuts)), bom=False)
    parts = [read_text_part(plan, "app.log", i) for i in range(3)]
    whole = parse_file(path, "app.log", OPTIONS)
    assert "".join(p.text for p in parts) == whole.text and parts[1].text == "\n"
    assert text_warnings(plan, parts) == whole.warnings == ["4,096 NUL bytes of padding left out"]
    assert [p.lines for p in parts] == [10, 1, 1]
    # A NUL outside a run of padding is binary, as in a whole read; bytes that are not
    # UTF-8 replaced and counted (a whole read guesses a code page over the whole file).
    _file(tmp_path, "app.log", head + b"x\x00y\n" + hole)
    with pytest.raises(BinaryContentError):
        read_text_part(plan, "app.log", 1)
    _file(tmp_path, "app.log", head + b"caf\xe9 \xff\n")
    odd = TextPlan(path, "text", None, [(len(head), len(head) + 7)], bom=False)
    part = read_text_part(odd, "app.log", 0)
    assert part.text == "caf\ufffd \ufffd\n" and part.replaced == 2
    assert text_warnings(odd, [part]) == ["2 undecodable bytes replaced with U+FFFD"]


def test_a_pdf_after_text_junk_is_a_pdf_but_not_one_inside_binary(tmp_path: Path) -> None:
    pdf = docs.pdf_bytes(["CANARY-PDF page one"])
    # A response's header saved with it: readers skip such junk before "%PDF-".
    saved = b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\r\n" + pdf
    parsed = parse_file(_file(tmp_path, "saved", saved), "saved", OPTIONS)
    assert parsed.file_type == "pdf" and "CANARY-PDF" in parsed.text
    # A Windows metafile (Office's icons) holds a PDF at byte 164: it had been read as a
    # damaged PDF. It is an image.
    emf = b"\x01\x00\x00\x00l" + bytes(35) + b" EMF" + bytes(120) + pdf
    assert emf.index(b"%PDF-") == 164
    with pytest.raises(NoTextFormatError, match=r"an image \(\.emf\)"):
        parse_file(_file(tmp_path, "icon.emf", emf), "icon.emf", OPTIONS)
    assert detect(_file(tmp_path, "icon", emf), "icon").kind != "pdf"


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        # A PDF library's module names the header near its top.
        ("sniffer.py", b'"""Sniff."""\nMAGIC = b"%PDF-1.7"\n\n\ndef f(d):\n    return d\n', "code"),
        # A page on the format shows the header at the start of a line.
        ("pdf.md", b"# The PDF format\n\nIts first line:\n\n```\n%PDF-1.7\n```\n", "markdown"),
        ("notes", b"Notes: a header such as %PDF-1.4 opens each one.\n", "text"),  # mid-line
    ],
    ids=["code", "markdown", "text"],
)
def test_a_text_naming_a_pdf_s_header_is_not_a_pdf(
    tmp_path: Path, name: str, data: bytes, kind: str
) -> None:
    # Each had failed: "not a readable PDF (Failed to open the file as type pdf.)".
    parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
    assert parsed.file_type == kind and "%PDF-1." in parsed.text
    # A PDF under a text's name is still one: its header opens the file.
    pdf = docs.pdf_bytes(["CANARY-PDF misnamed"])
    misnamed = parse_file(_file(tmp_path, "x" + name, pdf), "x" + name, OPTIONS)
    assert misnamed.file_type == "pdf" and "CANARY-PDF" in misnamed.text


def test_a_document_of_a_format_with_no_reader_fails_as_such(tmp_path: Path) -> None:
    # LibreOffice's 34 Lotus Word Pro test files had been skipped as "binary data (.lwp):
    # no text to index": their text is there, unread, and a skip hid them among files
    # that hold none.
    body = bytes(range(256)) * 8
    for name, data, what, formats in (
        ("memo.lwp", b"WordPro\x00" + body, "a Lotus Word Pro document", "DOCX, ODT or PDF"),
        ("memo.wpd", b"\xffWPC" + body, "a WordPerfect document", "DOCX, ODT or PDF"),
        ("budget.wk1", b"\x00\x00\x02\x00" + body, "a Lotus 1-2-3 spreadsheet", "XLSX, ODS or CSV"),
        ("budget.qpw", body, "a Quattro Pro spreadsheet", "XLSX, ODS or CSV"),
    ):
        said = f"^{name}: {what}, a format not read here: save it as {formats}$"
        with pytest.raises(UnsupportedFileTypeError, match=said):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)
    with pytest.raises(NoTextFormatError, match=r"binary data \(\.xyz\): no text to index"):
        parse_file(_file(tmp_path, "blob.xyz", body), "blob.xyz", OPTIONS)
    # StarOffice 3-5's, by the stream holding their content (libextractor's
    # starwriter40.sdw had been "a compound (OLE) file holding no Word ... document").
    for name, stream, what, formats in (
        ("letter.sdw", "StarWriterDocument", "a StarWriter document", "DOCX, ODT or PDF"),
        ("budget", "StarCalcDocument", "a StarCalc spreadsheet", "XLSX, ODS or CSV"),
        ("talk.sdd", "StarDrawDocument3", "a StarDraw or StarImpress document", "ODP or PDF"),
    ):
        data = docs.cfb_bytes({"SfxDocumentInfo": body, stream: body})
        said = (
            f"^{name}: {what} \\(StarOffice 3-5\\), a format not read here: save it as {formats}$"
        )
        with pytest.raises(UnsupportedFileTypeError, match=said):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)
    # PowerPoint 4.0's, by its "PP40" stream, named .ppt or not (Apache POI's
    # pp40only.ppt had failed as a damaged file: "required stream is missing").
    data = docs.cfb_bytes({"\x05SummaryInformation": body, "PP40": body})
    for name in ("talk.ppt", "talk"):
        said = (
            f"^{name}: a PowerPoint 4.0 presentation, older than PowerPoint 97, a format not "
            "read here: save it as PPTX or PDF$"
        )
        with pytest.raises(UnsupportedFileTypeError, match=said):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)


def test_keys_certificates_and_stored_passwords_are_never_read(tmp_path: Path) -> None:
    # Read as text, a private key's armour lines had been a chunk of their own.
    pem = b"-----BEGIN PRIVATE KEY-----\n" + b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 20
    pem += b"-----END PRIVATE KEY-----\n"
    for name, said in (
        ("tls.pem", "a key, certificate or keystore (.pem)"),
        (
            "server.key",
            "a private key, or a Keynote presentation (export it as PPTX or PDF) (.key)",
        ),
        ("plan.pages", "an Apple iWork document (export it as DOCX, XLSX or PDF) (.pages)"),
        ("ca.crt.gz", "a key, certificate or keystore (.crt)"),
        ("id_ed25519", "an SSH private key (id_ed25519)"),
        ("home/.netrc", "stored passwords (.netrc)"),
        ("app/.env", "an environment file, which may hold secrets (.env)"),
        ("app/.env.production", "an environment file, which may hold secrets (.env.production)"),
        ("deploy/db.env", "an environment file, which may hold secrets (db.env)"),
        ("home/.aws/credentials", "stored credentials (credentials)"),
        ("home/.docker/config.json", "stored credentials (config.json)"),
        ("home/.s3cfg", "stored credentials (.s3cfg)"),
        ("infra/prod.tfstate", "Terraform state, which holds secrets (.tfstate)"),
    ):
        assert no_text(name) == said, name
        with pytest.raises(NoTextFormatError, match=re.escape(said)):
            parse_file(_file(tmp_path, PurePosixPath(name).name, pem), name, OPTIONS)
    # Its public half and a file that only mentions keys are text.
    assert no_text("id_ed25519.pub") is None and no_text("keys.md") is None
    # By content, whatever the name: a certificate by its hash (/etc/ssl/certs), a key
    # saved as text. A guide that shows one is read.
    cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    for name, data, said in (
        ("3bde41ac.0", cert, "certificate"),
        ("key.txt", pem, "private key"),
        ("deploy", b"\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", "openssh private key"),
    ):
        with pytest.raises(NoTextFormatError, match=rf"a key or certificate \({said}\)"):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)
    guide = b"How to read it:\n\n" + cert
    assert "How to read it" in parse_file(_file(tmp_path, "g.txt", guide), "g.txt", OPTIONS).text
    shown = parse_file(_file(tmp_path, "g.md", cert + b"\n# Notes\n\nCANARY\n"), "g.md", OPTIONS)
    assert "CANARY" in shown.text  # Markdown by its name is read
    # A dotenv template and files only named like secrets' are text.
    for name in (
        ".env.example",
        "app/.env.sample",
        "example.env",
        "environment.md",
        "credentials",
        "src/config.json",
        "docs/aws/credentials.md",
        ".envoy.yaml",
    ):
        assert no_text(name) is None, name


@pytest.mark.parametrize(
    ("name", "data"),
    [("b.txt", bytes(range(256)) * 50), ("notes.txt", b"\x1f\x8b\x08\x00" + bytes(64))],
)
def test_binary_content_under_a_text_name_is_an_error_not_a_format(
    tmp_path: Path, name: str, data: bytes
) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_file(_file(tmp_path, name, data), name, OPTIONS)
    assert not isinstance(caught.value, NoTextFormatError)


def test_a_compressed_file_is_read_as_the_file_inside(tmp_path: Path) -> None:
    import bz2
    import gzip
    import lzma

    import zstandard

    def zstd(data: bytes, frames: int = 1) -> bytes:
        cut = len(data) // frames  # concatenated frames, as pzstd and zstd -T write
        parts = [data[i * cut : (i + 1) * cut if i < frames - 1 else None] for i in range(frames)]
        return b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)

    unpack = tmp_path / "unpack"
    unpack.mkdir()
    options = ParseOptions(temp_dir=str(unpack))
    log = b"2026-11-30 12:00:01 ERROR CANARY-GZ disk full on /var\n" * 50
    table = b"sku,qty\nCANARY-BZ2,4\n"
    changelog = gzip.compress(b"pkg (1.0) CANARY-NOEXT\n")
    guide = lzma.compress(b"# Guide\n\nCANARY-XZ here.\n")
    notes = {"a.md": b"# A\n\nCANARY-TZST\n"}

    def alone(data: bytes) -> bytes:  # xz's predecessor, as `lzma` and 7-Zip write it
        return lzma.compress(data, format=lzma.FORMAT_ALONE)

    sized = bytearray(alone(log))
    sized[5:13] = len(log).to_bytes(8, "little")  # its size written, not "unknown"

    for name, data, kind, canary, packed in (
        ("app.log.1.gz", gzip.compress(log), "text", "CANARY-GZ", "gzip"),
        ("changelog.gz", changelog, "text", "CANARY-NOEXT", "gzip"),
        ("stock.csv.bz2", bz2.compress(table), "csv", "CANARY-BZ2", "bzip2"),
        ("guide.md.xz", guide, "markdown", "CANARY-XZ", "xz"),
        ("app.log.zst", zstd(log, frames=3), "text", "CANARY-GZ", "zstd"),
        ("notes.tar.zst", zstd(docs.tar_bytes(notes)), "archive", "CANARY-TZST", "zstd"),
        ("guide.md.lzma", alone(b"# Guide\n\nCANARY-ALONE\n"), "markdown", "CANARY-ALONE", "lzma"),
        ("app.log.lzma", bytes(sized), "text", "CANARY-GZ", "lzma"),
        ("notes.tar.lzma", alone(docs.tar_bytes(notes)), "archive", "CANARY-TZST", "lzma"),
        # Named for nothing it is: the bytes say gzip.
        ("blob", gzip.compress(b"CANARY-NAMELESS text\n"), "text", "CANARY-NAMELESS", "gzip"),
    ):
        parsed = parse_file(_file(tmp_path, name, data), name, options)
        assert (parsed.file_type, canary in parsed.text) == (kind, True), name
        assert f"decompressed from {packed}" in parsed.warnings
    # Every frame of a zstd file (pzstd and zstd -T write several), not only the first.
    frames = parse_file(str(tmp_path / "app.log.zst"), "app.log.zst", options).text
    assert frames.count("CANARY-GZ") == 50
    assert no_text("app.log.1.gz") is None and no_text("logo.png.gz") == "an image (.png)"
    # Text that starts like a magic number is text.
    note = b"BZh, Bozhena's notes on CANARY-NOTBZ2\n"
    assert "CANARY-NOTBZ2" in parse_file(_file(tmp_path, "n.txt", note), "n.txt", options).text
    assert no_text("release.tar.gz") is None and no_text("x.tgz") is None  # archives are read
    assert no_text("app.jar") == "an archive (.jar)" and no_text("dump.jsonl.zst") is None
    # Compound files that hold no document, by their names: CMake's Visual Studio macro
    # templates had failed a walk of /usr/share as unreadable compound files.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024)
    # Python 2's optimized bytecode had failed a walk of its library as binary content.
    assert no_text("install.pyo") == "a binary (.pyo)"
    assert no_text("_speedups.pyd") == "a binary (.pyd)"
    for name in ("CMakeVSMacros1.vsmacros", "setup.msi"):
        with pytest.raises(NoTextFormatError, match="an installer or a binary"):
            parse_file(_file(tmp_path, name, ole), name, options)
    with pytest.raises(UnsupportedFileTypeError, match="compound") as raised:
        parse_file(_file(tmp_path, "drawing.vsd", ole), "drawing.vsd", options)
    assert type(raised.value) is UnsupportedFileTypeError  # a drawing: not read, failed

    bomb = gzip.compress(b"a" * 5000)
    for name, data, error, said in (
        ("twice.gz", gzip.compress(gzip.compress(b"x")), NoTextFormatError, "compressed twice"),
        ("cut.log.gz", gzip.compress(log)[:-30], CorruptDocumentError, "truncated or corrupt"),
        ("bomb.txt.gz", bomb, ZipBombError, "decompresses past 1000 bytes"),
        # zstandard's own reader took a cut stream for an empty file.
        ("cut.log.zst", zstd(log)[:-10], CorruptDocumentError, "truncated or corrupt zstd"),
        ("bad.log.zst", zstd(log)[:40] + bytes(200), CorruptDocumentError, "corrupt zstd"),
        # Its magic number damaged: skipped as "binary data (.gz)", a format of no text.
        ("flip.log.gz", b"\xb1" + gzip.compress(log)[1:], CorruptDocumentError, "named .gz but"),
        (
            "method.log.gz",
            b"\x1f\x8b\xd3" + gzip.compress(log)[3:],
            CorruptDocumentError,
            "a gzip archive that cannot be read",
        ),
        ("bomb.txt.zst", zstd(bytes(1 << 24)), ZipBombError, "decompresses past 1000 bytes"),
        ("cut.log.lzma", alone(log)[:-30], CorruptDocumentError, "truncated or corrupt lzma"),
        ("bomb.txt.lzma", alone(b"a" * 5000), ZipBombError, "decompresses past 1000 bytes"),
    ):
        limit = 1000 if error is ZipBombError else 1 << 20
        if name.endswith(".zst"):
            limit = 1000 if error is ZipBombError else 1 << 30
        limited = ParseOptions(temp_dir=str(unpack), max_unzipped_size=limit)
        with pytest.raises(error, match=said):
            parse_file(_file(tmp_path, name, data), name, limited)
    assert list(unpack.iterdir()) == []  # every decompressed file removed, failed or not
    # Text named .gz (a download an HTTP client decompressed, its name kept) is read.
    plain = parse_file(_file(tmp_path, "app.log.gz", log), "app.log.gz", options)
    assert plain.text.count("CANARY-GZ") == 50


def test_a_zstd_bomb_is_stopped_with_bounded_memory(tmp_path: Path) -> None:
    import io
    import tracemalloc

    import zstandard

    # 1 GiB of zeros in ~32 KiB: read whole, one decompress call made the whole GiB.
    packed = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(packed, closefd=False) as writer:
        for _ in range(1024):
            writer.write(bytes(1 << 20))
    assert len(packed.getvalue()) < 1 << 16
    path = _file(tmp_path, "bomb.log.zst", packed.getvalue())
    options = ParseOptions(temp_dir=str(tmp_path), max_unzipped_size=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ZipBombError, match="decompresses past"):
            parse_file(path, "bomb.log.zst", options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 384 << 20, peak


def test_a_full_temp_disk_while_decompressing_names_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import gzip

    from rag_ingest.errors import DiskFullError
    from rag_ingest.parsers import compressed

    def full(path: str, name: str, what: str, limit: int, out: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(compressed, "_decompress", full)
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    path = _file(tmp_path, "app.log.gz", gzip.compress(b"log line\n"))
    with pytest.raises(
        DiskFullError, match=f"no space left in {unpack} .* decompressing app.log.gz"
    ):
        parse_file(path, "app.log.gz", ParseOptions(temp_dir=str(unpack)))
    assert list(unpack.iterdir()) == []


def test_content_wins_over_a_lying_extension(tmp_path: Path) -> None:
    pdf = docs.corpus()["reports/annual.pdf"]
    kind = detect(_file(tmp_path, "report.txt", pdf), "report.txt")
    assert kind.kind == "pdf" and kind.note
    parsed = parse_file(_file(tmp_path, "report.txt", pdf), "report.txt", OPTIONS)
    assert parsed.file_type == "pdf" and any("is pdf" in w for w in parsed.warnings)
    html = b"<!DOCTYPE html><html><body><p>CANARY-FAKEPDF</p></body></html>"
    parsed = parse_file(_file(tmp_path, "fake.pdf", html), "fake.pdf", OPTIONS)
    assert parsed.file_type == "html" and "CANARY-FAKEPDF" in parsed.text
    with pytest.raises(UnsupportedFileTypeError):
        parse_file(_file(tmp_path, "fake.docx", b"\x00\x01binary" * 100), "fake.docx", OPTIONS)


def test_xhtml_opening_with_an_xml_declaration_is_html_under_any_name(tmp_path: Path) -> None:
    """Tesseract's hOCR output (page.hocr) had been read as text, its markup and all."""
    hocr = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        b'    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        b"<head><title></title><meta name='ocr-system' content='tesseract 5.0.0' /></head>\n"
        b"<body><div class='ocr_page' title='bbox 0 0 2550 3300'>"
        b"<span class='ocr_line' title='bbox 10 10 900 60'>"
        b"<span class='ocrx_word' title='bbox 10 10 200 60; x_wconf 96'>CANARY-HOCR</span> "
        b"<span class='ocrx_word' title='bbox 220 10 400 60; x_wconf 95'>scanned</span> "
        b"<span class='ocrx_word' title='bbox 420 10 600 60; x_wconf 95'>words</span>"
        b"</span></div></body></html>\n"
    )
    for name in ("page.hocr", "page"):
        assert detect(_file(tmp_path, name, hocr), name).kind == "html"
        parsed = parse_file(_file(tmp_path, name, hocr), name, OPTIONS)
        assert parsed.file_type == "html" and parsed.text == "CANARY-HOCR scanned words"
    # Another XML root in the XHTML namespace is not a page.
    other = hocr.replace(b"<html xmlns", b"<div xmlns").replace(b"</html>", b"</div>")
    assert detect(_file(tmp_path, "part.xml", other), "part.xml").kind != "html"


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "PNG image: images are read only by OCR"),
        ("scan.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "JPEG image"),
        ("drawing.vsd", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "no Word, PowerPoint"),
        ("notes.txt", b"7z\xbc\xaf\x27\x1c" + bytes(64), "7z archive"),
        ("manual.txt", b"%!PS-Adobe-3.0\n72 720 moveto\n", "PostScript"),
        ("pic.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(64), "WebP image"),
    ],
)
def test_known_binary_formats_are_refused_by_name(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    with pytest.raises(UnsupportedFileTypeError, match=f"^{name}: .*{said}"):
        parse_file(_file(tmp_path, name, data), name, OPTIONS)


def test_a_notebook_becomes_markdown_without_its_images(tmp_path: Path) -> None:
    import base64

    picture = base64.b64encode(bytes(range(256)) * 200).decode()
    notebook = docs.notebook_bytes(
        docs.markdown_cell("# Study\n", "CANARY-NB intro"),
        docs.code_cell(
            "print('CANARY-CODE')",
            {"output_type": "stream", "name": "stdout", "text": ["CANARY-OUT\n"]},
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": picture, "text/plain": ["<Figure 1>"]},
            },
            {"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": []},
        ),
    )
    path = _file(tmp_path, "study.ipynb", notebook)
    parsed = parse_file(path, "study.ipynb", OPTIONS)
    assert parsed.file_type == "notebook" and parsed.language == "python"
    assert parsed.text == (
        "# Study\nCANARY-NB intro\n\n```python\nprint('CANARY-CODE')\n```\n\n"
        "```output\nCANARY-OUT\n<Figure 1>\nKeyError: 'x'\n```"
    )
    with pytest.raises(CorruptDocumentError, match="invalid JSON"):
        parse_file(_file(tmp_path, "bad.ipynb", b"{not json"), "bad.ipynb", OPTIONS)


def test_a_notebook_committed_with_merge_conflicts_is_read_as_one_side(tmp_path: Path) -> None:
    import json

    def notebook(source: str, count: int) -> str:
        cells = [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Study\n", "CANARY-NB"]},
            {"cell_type": "code", "metadata": {}, "execution_count": count,
             "source": [source], "outputs": []},
        ]  # fmt: skip
        return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells},
                          indent=1) + "\n"  # fmt: skip

    def conflicted(ours: str, theirs: str, base: str = "") -> bytes:
        # As git writes them: the lines that differ between markers, the rest once.
        mine, other = ours.splitlines(keepends=True), theirs.splitlines(keepends=True)
        out = []
        for a, b in zip(mine, other, strict=True):
            if a == b:
                out.append(a)
            else:
                out += ["<<<<<<< HEAD\n", a, *([f"||||||| base\n{base}"] if base else []),
                        "=======\n", b, ">>>>>>> feature\n"]  # fmt: skip
        return "".join(out).encode()

    ours, theirs = notebook("print('CANARY-OURS')", 3), notebook("print('CANARY-THEIRS')", 7)
    for base in ("", '   "source": ["print(1)"],\n'):
        data = conflicted(ours, theirs, base)
        parsed = parse_file(_file(tmp_path, "study.ipynb", data), "study.ipynb", OPTIONS)
        assert "CANARY-OURS" in parsed.text and "CANARY-THEIRS" not in parsed.text
        assert "CANARY-NB" in parsed.text
        assert parsed.warnings == [
            "2 merge conflict(s) in it: read as the first ('<<<<<<<') side of each"
        ]
    # The first side not JSON (a comma lost): the second.
    broken = ours.replace('"execution_count": 3,', '"execution_count": 3')
    data = conflicted(broken, theirs)
    parsed = parse_file(_file(tmp_path, "study.ipynb", data), "study.ipynb", OPTIONS)
    assert "CANARY-THEIRS" in parsed.text
    assert parsed.warnings == [
        "2 merge conflict(s) in it: read as the second ('>>>>>>>') side of each"
    ]
    # Neither side JSON: corrupt, as without markers.
    data = conflicted(broken, theirs.replace('"execution_count": 7,', '"execution_count": 7'))
    with pytest.raises(CorruptDocumentError, match="invalid JSON"):
        parse_file(_file(tmp_path, "study.ipynb", data), "study.ipynb", OPTIONS)


def test_a_page_of_unclosed_tags_is_read_whole(tmp_path: Path) -> None:
    """An old page opening a <font> and a <b> on every line and closing none nests 3,000
    deep: docling's reader recursed past Python's limit and the page failed whole."""
    import re

    page = "<html><body>" + "".join(
        f"<font face=arial><b>Line {i} CANARY-{i}<br>\n" for i in range(1500)
    )
    parsed = parse_file(_file(tmp_path, "old.html", page.encode()), "old.html", OPTIONS)
    assert sorted(map(int, re.findall(r"CANARY-(\d+)", parsed.text))) == list(range(1500))
    assert parsed.warnings == [
        "2746 element(s) nested past 256 levels (unclosed tags) unwrapped: their text kept, "
        "not their structure"
    ]


@pytest.mark.timeout(60)
def test_a_page_nested_100_000_deep_is_read_in_seconds(tmp_path: Path) -> None:
    # Unwrapped one element at a time (bs4 walks a tag's subtree and its ancestors for
    # each), 100,000 nested <div>s took 261 s: past parse.timeout, the page failed.
    page = "<div>" * 100_000 + "CANARY-TOP<br>CANARY-NEXT <b>bold</b>" + "</div>" * 100_000
    parsed = parse_file(_file(tmp_path, "deep.html", page.encode()), "deep.html", OPTIONS)
    assert parsed.text == "CANARY-TOP  \nCANARY-NEXT bold"  # the <br> kept where it was
    assert parsed.warnings == [
        "99745 element(s) nested past 256 levels (unclosed tags) unwrapped: their text kept, "
        "not their structure"
    ]


def test_files_nested_past_their_parsers_depth_end_typed_or_read_as_text(tmp_path: Path) -> None:
    """Python's JSON parser and docling's serializer recurse: a file nested some
    thousands deep raised an untyped RecursionError."""
    deep = "[" * 5000 + '"CANARY-DEEP"' + "]" * 5000
    parsed = parse_file(_file(tmp_path, "deep.json", deep.encode()), "deep.json", OPTIONS)
    assert parsed.file_type == "text" and "CANARY-DEEP" in parsed.text
    notebook = '{"cells": [], "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5001
    # Python 3.13's json reads it (and finds no cells); 3.11's stops at its recursion limit.
    error, said = (
        (CorruptDocumentError, "not a notebook")
        if sys.version_info < (3, 13)
        else (BlankDocumentError, "a notebook without text")
    )
    with pytest.raises(error, match=said):
        parse_file(_file(tmp_path, "deep.ipynb", notebook.encode()), "deep.ipynb", OPTIONS)
    # Markdown is written to be read as it is: its source, with a warning.
    lists = "# Deep\n\n" + "".join("  " * i + f"- item {i}\n" for i in range(300)) + "CANARY-MD\n"
    parsed = parse_file(_file(tmp_path, "deep.md", lists.encode()), "deep.md", OPTIONS)
    assert parsed.file_type == "markdown" and parsed.text.rstrip("\n") == lists.rstrip("\n")
    assert parsed.warnings == ["nested too deeply for docling: read as its Markdown source"]


def test_an_email_becomes_its_headers_attachment_names_and_body(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Quarterly numbers"
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Date"] = "Mon, 30 Nov 2026 10:00:00 +0000"
    message.set_content("Hi Bob,\n\nCANARY-BODY revenue grew 18 percent.\n")
    message.add_alternative("<p>CANARY-BODY in HTML</p>", subtype="html")
    message.add_attachment(
        bytes(range(256)) * 4000, maintype="application", subtype="pdf", filename="report.pdf"
    )
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n" + bytes(5000), maintype="image", subtype="png", filename="chart.png"
    )
    path = _file(tmp_path, "mail.eml", bytes(message))
    parsed = parse_file(path, "mail.eml", ParseOptions(max_images=5))
    assert parsed.file_type == "email"
    assert parsed.text == (
        "# Quarterly numbers\n\nFrom: Alice <alice@example.com>\nTo: bob@example.com\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\nAttachments: report.pdf, chart.png\n\n"
        "Hi Bob,\n\nCANARY-BODY revenue grew 18 percent."
    )  # the plain part, and no base64 of the 1 MB attachment
    assert [i.mime for i in parsed.images] == ["image/png"]
    assert parse_file(path, "mail.eml", OPTIONS).images == []

    assert parsed.warnings and "attachment report.pdf" in parsed.warnings[0]  # not a PDF

    # Attachments a parser reads come after the body, each under its name.
    mail = EmailMessage()
    mail["Subject"] = "Contract and minutes"
    mail.set_content("See attached.")
    mail.add_attachment(
        docs.pdf_bytes(["CANARY-PDF-ATTACHMENT terms", "Annex\nCANARY-PDF-PAGE2 prices"]),
        maintype="application",
        subtype="pdf",
        filename="contract.pdf",
    )
    rows = "sku,qty\n" + "".join(f"CANARY-SKU-{i},{i}\n" for i in range(400))
    mail.add_attachment(rows.encode(), maintype="text", subtype="csv", filename="stock.csv")
    mail.add_attachment(
        docs.docx_bytes("Minutes", {"Decisions": "CANARY-DOCX-ATTACHMENT approved"}),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="minutes.docx",
    )
    mail.add_attachment(docs.zip_bytes({"notes.txt": b"CANARY-ZIP-ATTACHMENT notes"}),
                        maintype="application", subtype="zip", filename="notes.zip")  # fmt: skip
    mail.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(100), maintype="image", subtype="png",
                        filename="photo.png")  # fmt: skip
    mail.add_attachment(b"\r\n", maintype="text", subtype="plain", filename="blank.txt")
    forwarded = EmailMessage()
    forwarded["Subject"] = "Inner"
    forwarded.set_content("CANARY-FORWARDED body")
    mail.add_attachment(bytes(forwarded), maintype="application", subtype="octet-stream",
                        filename="inner.eml")  # fmt: skip
    parsed = parse_file(_file(tmp_path, "m.eml", bytes(mail)), "m.eml", OPTIONS)
    text = parsed.text
    assert text.index("See attached.") < text.index("## Attachment: contract.pdf")
    assert "CANARY-PDF-ATTACHMENT" in text and "CANARY-DOCX-ATTACHMENT" in text
    assert "## Attachment: inner.eml" in text and "CANARY-FORWARDED" in text
    assert "## Attachment: notes.zip" in text and "CANARY-ZIP-ATTACHMENT" in text
    # Each attachment is chunked apart from the mail, and its chunks name it.
    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    plan = chunk_document(parsed, ChunkSettings(), {})
    named = {c.metadata.get("attachment"): c.text for c in plan.chunks}
    assert set(named) == {None, "contract.pdf", "minutes.docx", "stock.csv", "notes.zip",
                          "inner.eml"}  # fmt: skip
    assert "See attached." in named[None] and "CANARY" not in named[None]
    assert named["contract.pdf"].startswith("## Attachment: contract.pdf")
    # Each as a file of its type: the PDF with its pages, the CSV by rows under its header,
    # the DOCX's own headings under the attachment's.
    page2 = next(c for c in plan.chunks if "CANARY-PDF-PAGE2" in c.text)
    assert (page2.metadata["file_type"], page2.metadata["page_end"]) == ("pdf", 2)
    stock = [c for c in plan.chunks if c.metadata.get("attachment") == "stock.csv"]
    assert len(stock) > 1 and all(c.text.startswith("sku,qty\n") for c in stock)
    assert {c.metadata["file_type"] for c in stock} == {"csv"}
    assert "## Attachment: minutes.docx\n\n### " in text
    assert "photo.png" in text and "## Attachment: photo.png" not in text
    # A photo in a mail is listed, not an error; left unread for want of OCR, said so.
    assert parsed.warnings == [f"1 image attachment(s) {UNREAD_SCANS}"]

    html_only = EmailMessage()
    html_only["Subject"] = "Notice"
    html_only.set_content(
        "<html><head><style>p {}</style></head><body><h1>Title</h1>"
        "<p>CANARY-HTML &amp; more</p><script>track()</script></body></html>",
        subtype="html",
    )
    path = _file(tmp_path, "notice.eml", bytes(html_only))
    assert parse_file(path, "notice.eml", OPTIONS).text == ("# Notice\n\nTitle\nCANARY-HTML & more")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    with pytest.raises(UnsupportedFileTypeError, match="without an Outlook message's"):
        parse_file(_file(tmp_path, "old.msg", ole), "old.msg", OPTIONS)
    with pytest.raises(CorruptDocumentError, match=r"not a readable Word 97-2003 \.doc"):
        parse_file(_file(tmp_path, "old.doc", ole), "old.doc", OPTIONS)
    # A damaged directory that leads olefile round in a loop (found by fuzzing): typed.
    looped = Path(__file__).parent.parent / "fixtures" / "msg" / "looped-directory.msg"
    with pytest.raises(CorruptDocumentError, match=r"message \(its directory loops\)"):
        parse_file(str(looped), "looped.msg", OPTIONS)


def test_a_message_forwarded_as_an_attachment_is_read_with_its_attachments(
    tmp_path: Path,
) -> None:
    from email.message import EmailMessage

    # A message/rfc822 part was listed as "message/rfc822" and its text lost.
    inner = EmailMessage()
    inner["Subject"] = "Original thread"
    inner["From"] = "a@example.com"
    inner.set_content("CANARY-INNER the original text.")
    inner.add_attachment(b"CANARY-DEEP notes", maintype="text", subtype="plain",
                         filename="notes.txt")  # fmt: skip
    untitled = EmailMessage()
    untitled.set_content("CANARY-UNTITLED")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: Original thread"
    outer.set_content("See below.")
    outer.add_attachment(inner)
    outer.add_attachment(untitled)
    parsed = parse_file(_file(tmp_path, "fwd.eml", bytes(outer)), "fwd.eml", OPTIONS)
    assert "Attachments: Original thread.eml, attached message.eml\n" in parsed.text
    assert parsed.members == {"Original thread.eml": ("email", None),
                              "attached message.eml": ("email", None)}  # fmt: skip
    assert "## Attachment: Original thread.eml\n\n### Original thread" in parsed.text
    assert "CANARY-INNER" in parsed.text and "CANARY-UNTITLED" in parsed.text
    # The forwarded message's own attachments are read too (they had been listed only).
    assert "Attachments: notes.txt" in parsed.text and "CANARY-DEEP notes" in parsed.text
    assert parsed.warnings == []
    # Three messages down; past them, listed and said to be.
    chain = inner
    for n in range(4):
        wrapper = EmailMessage()
        wrapper["Subject"] = f"Fwd {n}"
        wrapper.set_content(f"CANARY-LEVEL-{n}")
        wrapper.add_attachment(chain)
        chain = wrapper
    parsed = parse_file(_file(tmp_path, "chain.eml", bytes(chain)), "chain.eml", OPTIONS)
    assert all(f"CANARY-LEVEL-{n}" in parsed.text for n in range(4))
    assert "CANARY-INNER" not in parsed.text  # the fourth message down: listed
    assert parsed.warnings == [
        "Fwd 2.eml: Fwd 1.eml: Fwd 0.eml: 1 attachment(s) listed, not read: attached too "
        "many messages down"
    ]


def test_an_attachment_s_warnings_are_its_document_s(tmp_path: Path) -> None:
    """A scanned PDF attached to a mail had its unread pages unsaid: the mail was not
    read again once OCR was on (the pipeline goes by the warning)."""
    import pymupdf

    from rag_ingest.parsers.base import UNREAD_SCANS

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "CANARY-SCAN-TEXT page one of the invoice")
    scan = doc.new_page()
    picture = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 600, 800), 0)
    picture.clear_with(200)
    scan.insert_image(scan.rect, pixmap=picture)
    mail = EmailMessage()
    mail["Subject"] = "Invoice"
    mail.set_content("The signed invoice is attached.")
    mail.add_attachment(doc.tobytes(), maintype="application", subtype="pdf",
                        filename="invoice.pdf")  # fmt: skip
    parsed = parse_file(_file(tmp_path, "mail.eml", bytes(mail)), "mail.eml", OPTIONS)
    assert "CANARY-SCAN-TEXT" in parsed.text
    assert parsed.warnings == [f"invoice.pdf: 1 scanned page(s) (2) {UNREAD_SCANS}"]


def test_a_header_pythons_parser_fails_on_is_kept_as_its_text(tmp_path: Path) -> None:
    # notmuch's test mails (lkml): Python's address parser raised AttributeError on this
    # To line, and the whole message failed as "parser failed".
    mail = (
        "From: Ann Lee <ann@example.com>\n"
        "To: unlisted-recipients:; (no To-header on input)\n"
        "Cc: Bo <bo@example.com>\n"
        "Subject: Cache index objects\n\n"
        "CANARY-LKML define superblock-level cache index objects.\n"
    )
    parsed = parse_file(_file(tmp_path, "m.eml", mail.encode()), "m.eml", OPTIONS)
    assert parsed.text == (
        "# Cache index objects\n\nFrom: Ann Lee <ann@example.com>\n"
        "To: unlisted-recipients:; (no To-header on input)\nCc: Bo <bo@example.com>\n\n"
        "CANARY-LKML define superblock-level cache index objects."
    )


def test_a_mail_whose_body_is_encrypted_says_so(tmp_path: Path) -> None:
    # PGP/MIME and S/MIME (notmuch's test mails): only the headers can be read; a list
    # of "application/octet-stream" attachments had been all that showed it.
    head = "From: ann@example.com\nTo: bo@example.com\nSubject: CANARY-SEALED\n"
    pgp = (
        head + 'Content-Type: multipart/encrypted; boundary="b";\n'
        ' protocol="application/pgp-encrypted"\n\n--b\nContent-Type: '
        "application/pgp-encrypted\n\nVersion: 1\n--b\nContent-Type: application/octet-stream"
        "\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n-----END PGP MESSAGE-----\n--b--\n"
    )
    smime = (
        head + 'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"'
        "\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n"
    )
    signed = (
        head + 'Content-Type: multipart/signed; boundary="s"; protocol="application/pgp-'
        'signature"\n\n--s\nContent-Type: text/plain\n\nCANARY-SIGNED body.\n--s\n'
        "Content-Type: application/pgp-signature\n\nsig\n--s--\n"
    )
    said = {
        "pgp.eml": "PGP/MIME encryption (application/pgp-encrypted)",
        "smime.eml": "S/MIME (enveloped-data)",
    }
    for name, mail in (("pgp.eml", pgp), ("smime.eml", smime)):
        parsed = parse_file(_file(tmp_path, name, mail.encode()), name, OPTIONS)
        assert parsed.text.startswith("# CANARY-SEALED"), name
        assert f"{name}: its body is in {said[name]}, which is not read" in parsed.warnings[0]
    parsed = parse_file(_file(tmp_path, "s.eml", signed.encode()), "s.eml", OPTIONS)
    assert "CANARY-SIGNED body." in parsed.text
    assert not any("which is not read" in w for w in parsed.warnings)
    # A sealed mail forwarded as an attachment: the forward's own body is read, unsaid.
    forward = (
        "From: bo@example.com\nSubject: Fwd\nContent-Type: multipart/mixed; boundary=f\n\n"
        "--f\nContent-Type: text/plain\n\nCANARY-FORWARD see below.\n--f\n"
        "Content-Type: message/rfc822\n\n" + pgp + "\n--f--\n"
    )
    parsed = parse_file(_file(tmp_path, "f.eml", forward.encode()), "f.eml", OPTIONS)
    assert "CANARY-FORWARD see below." in parsed.text
    assert not any("f.eml: its body is in" in w for w in parsed.warnings)
    # A list's footer beside a sealed body (multipart/mixed): said.
    footed = (
        head + "Content-Type: multipart/mixed; boundary=m\n\n--m\n"
        'Content-Type: multipart/encrypted; boundary="b"; protocol="application/pgp-encrypted"'
        "\n\n--b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--b\n"
        "Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nhQEMA\n"
        "-----END PGP MESSAGE-----\n--b--\n--m\nContent-Type: text/plain\n\nList footer.\n--m--\n"
    )
    parsed = parse_file(_file(tmp_path, "m.eml", footed.encode()), "m.eml", OPTIONS)
    assert any("m.eml: its body is in PGP/MIME" in w for w in parsed.warnings)


def test_a_mail_whose_header_lost_its_boundary_is_split_at_its_body_s(tmp_path: Path) -> None:
    """Python's parser leaves a multipart whose header no longer names its boundary (a
    byte lost in it, a mangled Content-Type) one undivided string: the whole mail, body
    and attachments, was read as having no text (BlankDocumentError)."""
    mail = EmailMessage()
    mail["Subject"] = "Minutes"
    mail["From"] = "alice@example.com"
    mail.set_content("CANARY-BROKEN-BODY the plain text.")
    mail.add_alternative("<p>CANARY-BROKEN-BODY in HTML</p>", subtype="html")
    mail.add_attachment(b"sku,qty\nCANARY-BROKEN-CSV,4\n", maintype="text", subtype="csv",
                        filename="stock.csv")  # fmt: skip
    data = bytes(mail)
    boundary = mail.get_boundary()
    assert boundary is not None
    whole = parse_file(_file(tmp_path, "w.eml", data), "w.eml", OPTIONS)
    assert "CANARY-BROKEN-BODY the plain text." in whole.text and "<p>" not in whole.text
    assert "CANARY-BROKEN-CSV" in whole.text and whole.members == {"stock.csv": ("csv", None)}
    for broken in (
        data.replace(f'boundary="{boundary}"'.encode(), b'boundary="lost"', 1),
        data.replace(b"Content-Type: multipart/mixed", b"Content-Type: <ultipart/mixed", 1),
    ):
        parsed = parse_file(_file(tmp_path, "m.eml", broken), "m.eml", OPTIONS)
        assert (parsed.text, parsed.members) == (whole.text, whole.members)
        assert f"its parts were found by the boundary its body uses ('{boundary}')" in (
            parsed.warnings
        )
        assert "m.eml: " not in parsed.warnings  # a defect with no words is named
    lost = data.replace(f'boundary="{boundary}"'.encode(), b'boundary="lost"', 1)
    named = parse_file(_file(tmp_path, "m.eml", lost), "m.eml", OPTIONS).warnings
    assert "m.eml: StartBoundaryNotFoundDefect" in named
    # A header allowed once, there twice (a bounce's two To lines), is kept as found.
    twice = lost.replace(b"From: alice", b"To: bob@example.com\nTo: carol@example.com\nFrom: alice")
    parsed = parse_file(_file(tmp_path, "t.eml", twice), "t.eml", OPTIONS)
    assert parsed.text.replace("To: bob@example.com, carol@example.com\n", "") == whole.text
    # Nested: the alternative's own header broken, the mixed one whole.
    inner = mail.get_payload()[0].get_boundary()
    nested = data.replace(f'boundary="{inner}"'.encode(), b'boundary="lost"', 1)
    parsed = parse_file(_file(tmp_path, "n.eml", nested), "n.eml", OPTIONS)
    assert (parsed.text, parsed.members) == (whole.text, whole.members)
    # A plain-text mail quoting a MIME body is read as written, not split.
    quoted = EmailMessage()
    quoted["Subject"] = "How MIME looks"
    quoted.set_content(f"See:\n--{boundary}\nContent-Type: text/plain\n\nCANARY-QUOTED\n")
    parsed = parse_file(_file(tmp_path, "q.eml", bytes(quoted)), "q.eml", OPTIONS)
    assert f"--{boundary}\nContent-Type: text/plain" in parsed.text and parsed.warnings == []


def test_a_mail_that_is_a_forwarded_message_or_a_multipart_without_parts_keeps_its_text(
    tmp_path: Path,
) -> None:
    """Both were BlankDocumentError: a mail whose whole body is a forwarded message
    (GroupWise forwards so; ``message/rfc822``), and a multipart whose body has no part
    its header finds, nor a boundary line to mend it by (the body one string)."""
    forward = (
        b"From: alice@example.com\nTo: bob@example.com\nSubject: Fwd: Minutes\n"
        b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
        b"From: carol@example.com\nSubject: Minutes\nContent-Type: text/plain\n\n"
        b"CANARY-FORWARDED the minutes.\n"
    )
    parsed = parse_file(_file(tmp_path, "f.eml", forward), "f.eml", OPTIONS)
    assert parsed.text.startswith("# Fwd: Minutes\n\nFrom: alice@example.com")
    assert "Attachments: Minutes.eml" in parsed.text
    assert "CANARY-FORWARDED the minutes." in parsed.text
    assert parsed.members == {"Minutes.eml": ("email", None)}
    head = b"From: alice@example.com\nSubject: Notes\nMIME-Version: 1.0\n"
    for content_type, defect in (
        (b'multipart/mixed; boundary="BOUNDARY"', "StartBoundaryNotFoundDefect"),
        (b"multipart/alternative;", "NoBoundaryInMultipartDefect"),
    ):
        data = head + b"Content-Type: " + content_type + b"\n\nCANARY-UNSPLIT body text.\n"
        parsed = parse_file(_file(tmp_path, "u.eml", data), "u.eml", OPTIONS)
        assert parsed.text.endswith("\n\nCANARY-UNSPLIT body text.")
        assert "Attachments" not in parsed.text and parsed.members == {}
        assert f"u.eml: {defect}" in parsed.warnings
    # The whole mail one attachment, as a scanner sends its PDF: read, not left out.
    single = EmailMessage()
    single["Subject"] = "Scan"
    single.set_content(docs.pdf_bytes(["CANARY-SINGLE-PDF page one"]), maintype="application",
                       subtype="pdf", filename="scan.pdf")  # fmt: skip
    notes = EmailMessage()
    notes["Subject"] = "Notes"
    notes.set_content("CANARY-SINGLE-TXT the notes.", disposition="attachment",
                      filename="notes.txt")  # fmt: skip
    for mail, member in ((single, "scan.pdf"), (notes, "notes.txt")):
        parsed = parse_file(_file(tmp_path, "s.eml", bytes(mail)), "s.eml", OPTIONS)
        assert f"Attachments: {member}" in parsed.text and "CANARY-SINGLE-" in parsed.text
        assert list(parsed.members) == [member]
    # A one-part mail of a type with no text is not read as its encoded bytes.
    raw = EmailMessage()
    raw["Subject"] = "Raw"
    raw.set_content(b"\x00\x01" * 200, maintype="application", subtype="octet-stream")
    parsed = parse_file(_file(tmp_path, "r.eml", bytes(raw)), "r.eml", OPTIONS)
    assert parsed.text == "# Raw\n\nAttachments: application/octet-stream"


def _mail_with_a_csv(subject: str, body: str, region: bytes) -> EmailMessage:
    """Alice's mail with ``body``, and a q3.csv attached whose one region is ``region``."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = "alice@example.com"
    mail.set_content(body)
    mail.add_attachment(b"region,total\n" + region + b",12\n", maintype="text",
                        subtype="csv", filename="q3.csv")  # fmt: skip
    return mail


_SAVED_AS: dict[str, Callable[[bytes], bytes]] = {
    "bom": lambda data: b"\xef\xbb\xbf" + data,
    "blank line": lambda data: b"\r\n" + data,
    "bom and blank lines": lambda data: b"\xef\xbb\xbf\n \n" + data,
    "utf-16": lambda data: data.decode("ascii").encode("utf-16"),  # PowerShell's ">"
}


@pytest.mark.parametrize("saved_as", sorted(_SAVED_AS))
def test_a_mail_or_saved_page_after_a_bom_or_blank_lines_keeps_its_headers(
    tmp_path: Path, saved_as: str
) -> None:
    # As some Windows tools and exports save them: every header had been taken for body,
    # and the mail failed as "not an e-mail message (no headers)", the page as "no HTML
    # page among its MIME parts".
    save = _SAVED_AS[saved_as]
    mail = _mail_with_a_csv("Budget", "CANARY-BOM the budget is attached.", b"CANARY-BOM-CSV")
    parsed = parse_file(_file(tmp_path, "budget.eml", save(bytes(mail))), "budget.eml", OPTIONS)
    assert (parsed.file_type, parsed.warnings) == ("email", [])
    assert parsed.text.startswith("# Budget\n\nFrom: alice@example.com")
    assert "CANARY-BOM the budget" in parsed.text and "CANARY-BOM-CSV" in parsed.text
    page = "<html><body><main><h1>Saved</h1><p>CANARY-BOM-MHT words here.</p></main></body></html>"
    data = save(bytes(_mhtml(page)))
    parsed = parse_file(_file(tmp_path, "saved.mhtml", data), "saved.mhtml", OPTIONS)
    assert parsed.file_type == "mhtml" and "CANARY-BOM-MHT words" in parsed.text


def test_a_mail_whose_first_header_is_damaged_is_read_as_text(tmp_path: Path) -> None:
    # A byte lost in a bad copy: no header at its start, so no headers at all. Its text
    # is still the mail's; it had failed as "not an e-mail message (no headers)".
    data = b"Fr\nom: alice@example.com\r\nSubject: Budget\r\n\r\nCANARY-DAMAGED body text.\r\n"
    parsed = parse_file(_file(tmp_path, "budget.eml", data), "budget.eml", OPTIONS)
    assert parsed.file_type == "text" and "CANARY-DAMAGED body text." in parsed.text
    assert parsed.warnings == ["budget.eml: no e-mail headers at its start: read as text"]


def test_an_apple_mail_emlx_is_read_as_the_email_it_holds(tmp_path: Path) -> None:
    """Apple Mail keeps each message as ``.emlx``: its length, the message, then a
    property list of its flags. It had been read as text, headers, plist and all."""
    mail = _mail_with_a_csv(
        "Quarterly numbers", "CANARY-EMLX the numbers are attached.", b"CANARY-EMLX-CSV"
    )
    message = bytes(mail)
    plist = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
        b"\t<key>flags</key>\n\t<integer>8590195713</integer>\n</dict>\n</plist>\n"
    )
    data = b"%d        \n" % len(message) + message + plist
    parsed = parse_file(_file(tmp_path, "1234.emlx", data), "1234.emlx", OPTIONS)
    assert (parsed.file_type, parsed.parser, parsed.warnings) == ("email", "emlx", [])
    assert parsed.text.startswith("# Quarterly numbers\n\nFrom: alice@example.com")
    assert "CANARY-EMLX the numbers" in parsed.text and "CANARY-EMLX-CSV" in parsed.text
    assert "plist" not in parsed.text and "8590195713" not in parsed.text
    assert parsed.members == {"q3.csv": ("csv", None)}
    # A one-part message would take the plist as the end of its body.
    plain = EmailMessage()
    plain["Subject"] = "Lunch"
    plain.set_content("CANARY-EMLX-PLAIN at noon.")
    data = b"%d\n" % len(bytes(plain)) + bytes(plain) + plist
    parsed_plain = parse_file(_file(tmp_path, "9.emlx", data), "9.emlx", OPTIONS)
    assert parsed_plain.text == "# Lunch\n\nCANARY-EMLX-PLAIN at noon."
    # Without its length line, the whole file is the message.
    bare = parse_file(_file(tmp_path, "5.partial.emlx", message), "5.partial.emlx", OPTIONS)
    assert (bare.text, bare.members) == (parsed.text, parsed.members)


def test_an_exchange_msgs_addresses_and_a_signed_msgs_content_are_read(tmp_path: Path) -> None:
    # As Outlook saves a message from Exchange: the sender's and recipients' addresses
    # are /O=... paths, the SMTP ones only in the headers it was received with. They
    # had been read as names alone ("From: Jo Bloggs", as Email-Outlook-Message's
    # charset.msg, which msgconvert reads with their addresses).
    exchange = "/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=JO"
    tree = docs.msg_tree("Budget", "CANARY-EX body", sender=("Jo Bloggs", exchange),
                         to=[("Team list", exchange)])  # fmt: skip
    tree["__substg1.0_5D01001F"] = exchange.encode("utf-16-le")
    tree["__recip_version1.0_#00000000"]["__substg1.0_39FE001F"] = b""  # type: ignore[index]
    headers = (
        "Received: from mail.example.org by mx.example.org\r\nFrom: Jo Bloggs <jo@example.org>"
        "\r\nTo: Team <team@example.org>,\r\n Al <al@example.org>\r\nSubject: Budget\r\n"
    )
    tree["__substg1.0_007D001F"] = headers.encode("utf-16-le")
    parsed = parse_file(_file(tmp_path, "ex.msg", docs.cfb_bytes(tree)), "ex.msg", OPTIONS)
    assert parsed.text == (
        "# Budget\n\nFrom: Jo Bloggs <jo@example.org>\n"
        "To: Team <team@example.org>, Al <al@example.org>\n\nCANARY-EX body"
    )
    # A sender's SMTP address of its own is kept (the headers' From may be a list's).
    mailed = docs.msg_tree("Budget", "CANARY-EX body", to=[("Bo", "bo@example.com")])
    mailed["__substg1.0_007D001F"] = headers.encode("utf-16-le")
    parsed = parse_file(_file(tmp_path, "ex.msg", docs.cfb_bytes(mailed)), "ex.msg", OPTIONS)
    assert parsed.text.startswith(
        "# Budget\n\nFrom: Ann Lee <ann@example.com>\nTo: Bo <bo@example.com>\n"
    )
    # Without such headers, the names as before.
    del tree["__substg1.0_007D001F"]
    parsed = parse_file(_file(tmp_path, "ex.msg", docs.cfb_bytes(tree)), "ex.msg", OPTIONS)
    assert parsed.text.startswith('# Budget\n\nFrom: "Jo Bloggs"\nTo: "Team list"\n')

    # A signed message (IPM.Note.SMIME.MultipartSigned) keeps its MIME form in one
    # attachment, multipart/signed: its attached files are only in there. It had been
    # read as an attachment of text: its MIME headers and parts, base64 and signature.
    signed = (
        b'Content-Type: multipart/signed; protocol="application/pgp-signature";\r\n'
        b' boundary="outer"\r\n\r\n--outer\r\nContent-Type: multipart/mixed; boundary="in"'
        b"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nCANARY-SIGNED body\r\n--in\r\n"
        b'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="q.csv"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").b64encode(b"region,revenue\nnorth,CANARY-SIGNED-CSV\n")
        + b"\r\n--in--\r\n--outer\r\nContent-Type: application/pgp-signature\r\n\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\nCANARY-SIGNATURE\r\n-----END PGP SIGNATURE-----"
        b"\r\n--outer--\r\n"
    )
    for body in (None, "CANARY-SIGNED body"):  # Outlook keeps the body apart too, or not
        data = docs.msg_bytes(
            "Signed", body, attachments={"attachment": (signed, "multipart/signed")}
        )
        parsed = parse_file(_file(tmp_path, "s.msg", data), "s.msg", OPTIONS)
        assert parsed.text.startswith(
            "# Signed\n\nFrom: Ann Lee <ann@example.com>\nAttachments: q.csv\n\n"
            "CANARY-SIGNED body\n\n"
        )
        assert parsed.members == {"q.csv": ("csv", None)}
        assert "CANARY-SIGNED-CSV" in parsed.text
        assert "CANARY-SIGNATURE" not in parsed.text and "Content-Type" not in parsed.text
    # One whose MIME form has no parts is an attachment as any other.
    broken = b'Content-Type: multipart/signed; boundary="outer"\r\n\r\nCANARY-BROKEN\r\n'
    data = docs.msg_bytes(
        "Signed", "body", attachments={"attachment": (broken, "multipart/signed")}
    )
    parsed = parse_file(_file(tmp_path, "b.msg", data), "b.msg", OPTIONS)
    assert "body" in parsed.text and "CANARY-BROKEN" in parsed.text


def test_an_outlook_msg_is_read_as_the_email_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from email.message import EmailMessage

    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    # Refused before ("save it as .eml"): Outlook's own format, a compound file.
    forwarded = docs.msg_tree(
        "Old thread", "CANARY-FWD the first отчёт.", embedded=True, string8=1251
    )
    data = docs.msg_bytes(
        "Quarterly numbers",
        "CANARY-BODY Revenue grew.\n\nSee attached.",
        to=[("Bo Chen", "bo@example.com"), ("Dee", "dee@example.com")],
        cc=[("Cy", "cy@example.com")],
        bcc=[("Hidden", "hidden@example.com")],  # not in what was sent
        sent=datetime.datetime(2026, 3, 4, 9, 30, tzinfo=datetime.UTC),
        attachments={
            "numbers.csv": b"region,revenue\nnorth,10\nsouth,CANARY-CSV\n",
            # MIME tags the e-mail writer refuses (an .eml attached by value, a broken
            # tag): each file is still read, by its name.
            "notes.txt": (b"CANARY-TAGGED notes", "text/plain\r\nX-Odd: 1"),
            "kept.eml": (b"Subject: Kept\r\n\r\nCANARY-KEPT mail\r\n", "message/rfc822"),
        },
        forwarded=forwarded,
    )
    for name in ("numbers.msg", "saved-mail"):  # by its bytes, whatever its name
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("email", "outlook-msg")
        assert parsed.text.startswith(
            "# Quarterly numbers\n\nFrom: Ann Lee <ann@example.com>\n"
            "To: Bo Chen <bo@example.com>, Dee <dee@example.com>\nCc: Cy <cy@example.com>\n"
            "Date: Wed, 04 Mar 2026 09:30:00 +0000\n"
            "Attachments: numbers.csv, notes.txt, kept.eml, Old thread.eml\n\n"
            "CANARY-BODY Revenue grew."
        )
        # Its attachments are read as an .eml's are: a forwarded message as an e-mail.
        assert parsed.members == {
            "numbers.csv": ("csv", None),
            "notes.txt": ("text", None),
            "kept.eml": ("email", None),
            "Old thread.eml": ("email", None),
        }
        assert "CANARY-TAGGED" in parsed.text and "CANARY-KEPT" in parsed.text
        assert "## Attachment: Old thread.eml\n\n### Old thread" in parsed.text
        assert "CANARY-FWD the first отчёт." in parsed.text and "CANARY-CSV" in parsed.text
    plan = chunk_document(parsed, ChunkSettings(), {})
    assert {c.metadata.get("attachment") for c in plan.chunks} == {
        None,
        "numbers.csv",
        "notes.txt",
        "kept.eml",
        "Old thread.eml",
    }
    # No plain body: its HTML body, as text; no recipients stored: none said.
    html = docs.msg_bytes("Notice", None, html="<html><body><h1>Title</h1><p>CANARY-HTML "
                          "&amp; more</p><script>track()</script></body></html>")  # fmt: skip
    parsed = parse_file(_file(tmp_path, "notice.msg", html), "notice.msg", OPTIONS)
    assert parsed.text == (
        "# Notice\n\nFrom: Ann Lee <ann@example.com>\n\nTitle\nCANARY-HTML & more"
    )
    # An .msg attached to an e-mail is read with its attachments, as an attached .eml is.
    holder = EmailMessage()
    holder["Subject"] = "Fwd: numbers"
    holder.set_content("See the attached message.")
    holder.add_attachment(data, maintype="application", subtype="vnd.ms-outlook",
                          filename="numbers.msg")  # fmt: skip
    parsed = parse_file(_file(tmp_path, "holder.eml", bytes(holder)), "holder.eml", OPTIONS)
    assert parsed.members == {"numbers.msg": ("email", None)}
    assert "CANARY-BODY" in parsed.text
    assert "Attachments: numbers.csv, notes.txt, kept.eml, Old thread.eml" in parsed.text
    assert "CANARY-CSV" in parsed.text  # its own attachments read too
    # Only an RTF body (compressed, as Outlook keeps it): its text; a broken one, none.
    from compressed_rtf import compress

    rtf = (b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Calibri;}}\\f0\\fs22 "
           b"CANARY-RTF caf\\'e9 body.\\par Second line.\\par}")  # fmt: skip
    only_rtf = docs.msg_bytes("Rich", None, rtf=compress(rtf, compressed=True))
    parsed = parse_file(_file(tmp_path, "rich.msg", only_rtf), "rich.msg", OPTIONS)
    assert parsed.text.endswith("\n\nCANARY-RTF café body.\nSecond line.")
    broken = docs.msg_bytes("Rich", None, rtf=compress(rtf, compressed=True)[:-4] + b"\0" * 4)
    with pytest.raises(BlankDocumentError):
        parse_file(_file(tmp_path, "broken.msg", broken), "broken.msg", OPTIONS)
    # A message with nothing written in it has no text to index.
    with pytest.raises(BlankDocumentError):
        parse_file(_file(tmp_path, "blank.msg", docs.msg_bytes("", None)), "blank.msg", OPTIONS)
    # A Tcl message catalogue named .msg is text, as it was.
    tcl = b'namespace eval ::tk {\n    ::msgcat::mcset de "&Abort" "&Abbrechen"\n}\n'
    assert parse_file(_file(tmp_path, "de.msg", tcl), "de.msg", OPTIONS).file_type == "text"
    monkeypatch.setitem(sys.modules, "olefile", None)
    with pytest.raises(MissingExtraError, match=r"rag-ingest\[office\]"):
        parse_file(_file(tmp_path, "numbers.msg", data), "numbers.msg", OPTIONS)


def test_a_mailbox_is_read_message_by_message(tmp_path: Path) -> None:
    # An mbox (Thunderbird's folders, Google Takeout's mail) had been read as one text:
    # its headers, base64 attachments and every message run together.
    import mailbox
    from email.message import EmailMessage

    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    box_path = tmp_path / "Inbox"  # Thunderbird's folders have no extension
    box = mailbox.mbox(str(box_path))
    first = EmailMessage()
    first["Subject"] = "Build failure on main"
    first["From"] = "ci@example.com"
    first.set_content("CANARY-FIRST the build broke.\n" + "The runner ran out of disk. " * 200)
    rows = "host,status\n" + "".join(f"CANARY-HOST-{i},down\n" for i in range(300))
    first.add_attachment(rows.encode(), maintype="text", subtype="csv", filename="hosts.csv")
    second = EmailMessage()
    second["Subject"] = "Re: Build failure on main"
    second.set_content("<p>CANARY-SECOND fixed &amp; merged</p>", subtype="html")
    second.add_attachment(docs.scan_image(["Disk usage 100%"]), maintype="image",
                          subtype="png", filename="df.png")  # fmt: skip
    blank = EmailMessage()
    blank["Subject"] = "(nothing)"
    for message in (first, blank, second):
        box.add(message)
    box.close()
    parsed = parse_file(str(box_path), "Inbox", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("mbox", "mbox")
    # Said first, where no cut of a long list of warnings can drop it.
    assert parsed.warnings == [f"scans or images in 1 message(s) {UNREAD_SCANS}"]
    plan = chunk_document(parsed, ChunkSettings(), {})
    members = [c.metadata.get("archive_member") for c in plan.chunks]
    assert set(members) == {
        "message 1: Build failure on main",
        "message 1: Build failure on main/hosts.csv",
        "message 3: Re: Build failure on main",
    }  # the message with no text passed over
    assert members == sorted(members, key=members.index)  # each one's chunks together
    by_member = {}
    for chunk in plan.chunks:
        by_member.setdefault(chunk.metadata["archive_member"], []).append(chunk)
    firsts = by_member["message 1: Build failure on main"]
    assert len(firsts) > 1 and firsts[0].text.startswith("# Build failure on main\n")
    assert all(c.metadata["heading_path"] == "Build failure on main" for c in firsts)
    assert {c.metadata["file_type"] for c in firsts} == {"email"}
    hosts = by_member["message 1: Build failure on main/hosts.csv"]
    assert len(hosts) > 1 and all(c.text.startswith("host,status\n") for c in hosts)
    assert {c.metadata["file_type"] for c in hosts} == {"csv"}
    (reply,) = by_member["message 3: Re: Build failure on main"]
    assert "CANARY-SECOND fixed & merged" in reply.text and "CANARY-FIRST" not in reply.text
    # Named .mbox, or with no name, it is a mailbox; a single .eml keeps its envelope.
    data = box_path.read_bytes()
    assert parse_file(_file(tmp_path, "a.mbox", data), "a.mbox", OPTIONS).file_type == "mbox"
    single = _file(tmp_path, "one.eml", data[: data.index(b"\nFrom ", 10) + 1])
    assert parse_file(single, "one.eml", OPTIONS).file_type == "email"
    # Named .mbox without a mailbox's first line: its text, or refused as binary.
    notes = parse_file(_file(tmp_path, "notes.mbox", b"CANARY notes\n"), "notes.mbox", OPTIONS)
    assert (notes.file_type, notes.text.strip()) == ("text", "CANARY notes")
    with pytest.raises(BinaryContentError):
        parse_file(_file(tmp_path, "b.mbox", bytes(range(256)) * 40), "b.mbox", OPTIONS)
    nothing = mailbox.mbox(str(tmp_path / "nothing.mbox"))
    nothing.add(blank)
    nothing.close()
    with pytest.raises(BlankDocumentError, match="mailbox without text"):
        parse_file(str(tmp_path / "nothing.mbox"), "nothing.mbox", OPTIONS)


def test_a_mailbox_s_messages_are_found_as_python_s_mailbox_module_finds_them(
    tmp_path: Path,
) -> None:
    """A mailbox is read by where its messages lie (a temporary file a message, and
    mailbox's table of contents, were most of a big one's time; and a long one is read in
    parts): each message's bytes are mailbox's, whatever lies between them."""
    import mailbox

    from rag_ingest.parsers.mail import message_bytes, message_spans

    data = (
        b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody one\n"
        b">From here on, quoted.\n\n"
        b"From b@example.com Mon Jan  1 00:00:01 2024\nSubject: two\n\nno blank line after\n"
        b"From c@example.com Mon Jan  1 00:00:02 2024\r\nSubject: three\r\n\r\ncrlf\r\n\r\n"
        b"From d@example.com Mon Jan  1 00:00:03 2024\nSubject: four\n\n\n\nblank lines\n\n\n"
        b"From e@example.com Mon Jan  1 00:00:04 2024\nSubject: five\n\nfive\n"
        b"From f@example.com Mon Jan  1 00:00:05 2024"  # a From line alone, no line end
    )
    path = _file(tmp_path, "box.mbox", data)
    box = mailbox.mbox(path, create=False)
    expected = [box.get_bytes(key) for key in box.iterkeys()]
    box.close()
    spans = message_spans(path, "box.mbox")
    with open(path, "rb") as f:
        assert [message_bytes(f, span) for span in spans] == expected
    assert len(expected) == 6 and expected[-1] == b""
    parsed = parse_file(path, "box.mbox", OPTIONS)
    subjects = ["one", "two", "three", "four", "five"]
    assert list(parsed.members) == [f"message {n}: {s}" for n, s in enumerate(subjects, 1)]
    with pytest.raises(CorruptDocumentError, match="not a readable mailbox"):
        message_spans(_file(tmp_path, "empty.mbox", b""), "empty.mbox")


def test_an_email_s_attachments_are_written_under_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = "Notes"
    mail.set_content("See attached.")
    mail.add_attachment(b"CANARY-ATTACHED notes", maintype="text", subtype="plain",
                        filename="notes.txt")  # fmt: skip
    path = _file(tmp_path, "m.eml", bytes(mail))
    # The system temp is gone (a read-only or full /tmp): temp_dir is where it may write.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    staging = tmp_path / "staging"
    staging.mkdir()
    parsed = parse_file(path, "m.eml", ParseOptions(temp_dir=str(staging)))
    assert "CANARY-ATTACHED" in parsed.text and parsed.warnings == []
    assert list(staging.iterdir()) == []  # its scratch removed


def test_an_email_s_gzipped_attachment_is_read_as_the_file_inside(tmp_path: Path) -> None:
    """A nightly report mailed as ``export.csv.gz``, a crash mailed as ``app.log.gz``:
    each failed as "a gzip archive that cannot be read: damaged?", its rows lost; in a
    mailbox's message too."""
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = "Nightly export"
    mail.set_content("Attached: last night's export and the log.")
    for filename, data in (
        ("export.csv.gz", b"sku,qty\nCANARY-SKU-1,4\nCANARY-SKU-2,7\n"),
        ("app.log.gz", b"2026-12-04T02:00:00 export done CANARY-LOG\n"),
    ):
        mail.add_attachment(gzip.compress(data), maintype="application", subtype="gzip",
                            filename=filename)  # fmt: skip
    parsed = parse_file(_file(tmp_path, "m.eml", bytes(mail)), "m.eml", OPTIONS)
    assert "CANARY-SKU-2" in parsed.text and "CANARY-LOG" in parsed.text
    assert parsed.members == {"export.csv.gz": ("csv", None), "app.log.gz": ("text", None)}
    assert parsed.warnings == [
        "export.csv.gz: decompressed from gzip",
        "app.log.gz: decompressed from gzip",
    ]
    box = b"From a@b Mon Jan  1 00:00:00 2024\n" + bytes(mail) + b"\n"
    parsed = parse_file(_file(tmp_path, "list.mbox", box), "list.mbox", OPTIONS)
    assert "CANARY-SKU-2" in parsed.text and "CANARY-LOG" in parsed.text


def test_a_mailbox_s_warnings_are_each_under_its_message(tmp_path: Path) -> None:
    """ "attachment bad.pdf: CorruptDocumentError" said not which of a mailbox's
    messages it was of; a message's warnings past five, and a mailbox's past twenty,
    were dropped uncounted, notes of how a file was read before what went wrong."""
    from email.message import EmailMessage

    from rag_ingest.parsers.archive import write_member_cache

    def letter(i: int, logs: int, bad: bool) -> bytes:
        mail = EmailMessage()
        mail["Subject"] = f"Nightly {i}"
        mail.set_content(f"CANARY-{i}")
        for j in range(logs):
            mail.add_attachment(gzip.compress(b"log %d\n" % j), maintype="application",
                                subtype="gzip", filename=f"app{j}.log.gz")  # fmt: skip
        if bad:
            mail.add_attachment(b"%PDF-1.4 cut", maintype="application", subtype="pdf",
                                filename=f"bad{i}.pdf")  # fmt: skip
        return b"From a@b Mon Jan  1 00:00:00 2024\n" + bytes(mail) + b"\n"

    letters = [
        letter(0, 6, True),
        *(letter(i, 1, False) for i in range(1, 21)),
        letter(21, 1, True),
    ]
    bad = "CorruptDocumentError: bad{0}.pdf: not a readable PDF (Failed to open the file as type"
    bad += " pdf.)"
    cache = tmp_path / "cache.json"
    options = ParseOptions(member_cache=str(cache))
    parsed = parse_file(_file(tmp_path, "list.mbox", b"".join(letters)), "list.mbox", options)
    assert parsed.warnings[:4] == [
        f"message 1: Nightly 0: attachment bad0.pdf: {bad.format(0)}",
        "message 1: Nightly 0: and 3 more warnings",
        f"message 22: Nightly 21: attachment bad21.pdf: {bad.format(21)}",
        "message 1: Nightly 0: app0.log.gz: decompressed from gzip",
    ]
    # 27: the first message's 5 (the rest counted), 20 others' one each, the last's 2.
    assert len(parsed.warnings) == 20 and parsed.warnings[-1] == "and 8 more warnings"
    # Taken from the cache with the first message gone: each under its new number.
    write_member_cache(str(cache), options, parsed.cache)
    again = parse_file(_file(tmp_path, "list.mbox", b"".join(letters[1:])), "list.mbox", options)
    assert again.unchanged_members == 21
    assert again.warnings[0] == f"message 21: Nightly 21: attachment bad21.pdf: {bad.format(21)}"
    assert again.warnings[1] == "message 1: Nightly 1: app0.log.gz: decompressed from gzip"


def test_slides_keep_their_speaker_notes_on_their_page(tmp_path: Path) -> None:
    import io

    from pptx import Presentation

    deck = Presentation()
    for title, notes in (("Roadmap", ""), ("Budget", "CANARY-NOTES: mention the 4.2M.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    parsed = parse_file(_file(tmp_path, "deck.pptx", out.getvalue()), "deck.pptx", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, "# Roadmap"),
        (2, "# Budget\n\nSpeaker notes: CANARY-NOTES: mention the 4.2M."),
    ]
    # Notes in a text box, no notes placeholder, as LibreOffice writes notes it held in a
    # plain frame: python-pptx gives no notes frame, and the deck had failed on it.
    boxed = docs._repacked(
        out.getvalue(),
        {
            "ppt/notesSlides/notesSlide1.xml": lambda t: re.sub(
                r'<p:ph type="body"[^>]*/>', "", t.replace("CANARY-NOTES", "CANARY-BOX")
            ).replace(  # the slide number's placeholder, its number shown: not the notes
                'type="sldNum" idx="5" sz="quarter"/></p:nvPr></p:nvSpPr><p:spPr/>',
                'type="sldNum" idx="5" sz="quarter"/></p:nvPr></p:nvSpPr><p:spPr/><p:txBody>'
                '<a:bodyPr/><a:p><a:fld id="{1}" type="slidenum"><a:t>2</a:t></a:fld></a:p>'
                "</p:txBody>",
            )
        },
        {},
    )
    parsed = parse_file(_file(tmp_path, "box.pptx", boxed), "box.pptx", OPTIONS)
    assert parsed.segments[1].text == "# Budget\n\nSpeaker notes: CANARY-BOX: mention the 4.2M."


_P = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
_P188 = (
    'xmlns:p188="http://schemas.microsoft.com/office/powerpoint/2018/8/main" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
)
_MODERN = "http://schemas.microsoft.com/office/2018/10/relationships"


def _modern_body(*paragraphs: str) -> str:
    runs = "".join(f"<a:p><a:r><a:t>{p}</a:t></a:r></a:p>" for p in paragraphs)
    return f"<p188:txBody><a:bodyPr/>{runs}</p188:txBody>"


def _linked(*entries: tuple[str, str, str]) -> Callable[[str], str]:
    """An edit of a relationships part adding ``entries``: (Id, full type, target)."""
    links = "".join(f'<Relationship Id="{i}" Type="{k}" Target="{t}"/>' for i, k, t in entries)
    return lambda text: text.replace("</Relationships>", f"{links}</Relationships>")


def _commented_deck(deck: bytes, slide: int, comments: str, *, modern: bool) -> bytes:
    """``deck`` with the ``comments`` part (PowerPoint's or its modern one) on ``slide``,
    and both kinds of author list: Ann Lee and Bob Roe."""
    legacy_authors = (
        f'<p:cmAuthorLst {_P}><p:cmAuthor id="0" name="Ann Lee" initials="AL" lastIdx="2" '
        'clrIdx="0"/><p:cmAuthor id="1" name="Bob Roe" initials="BR" lastIdx="1" clrIdx="1"/>'
        "</p:cmAuthorLst>"
    )
    modern_authors = (
        f'<p188:authorLst {_P188}><p188:author id="{{A1}}" name="Ann Lee" initials="AL" '
        'userId="ann" providerId="None"/><p188:author id="{B2}" name="Bob Roe" '
        'initials="BR" userId="bob" providerId="None"/></p188:authorLst>'
    )
    part = f"ppt/comments/{'modernComment_1' if modern else 'comment1'}.xml"
    kind = f"{_MODERN}/comments" if modern else f"{docs._RELATIONSHIPS}/comments"

    return docs._repacked(
        deck,
        {
            f"ppt/slides/_rels/slide{slide}.xml.rels": _linked(("rC", kind, f"../{part[4:]}")),
            "ppt/_rels/presentation.xml.rels": _linked(
                ("rCA", f"{docs._RELATIONSHIPS}/commentAuthors", "commentAuthors.xml"),
                ("rMA", f"{_MODERN}/authors", "authors.xml"),
            ),
        },
        {
            part: comments,
            "ppt/commentAuthors.xml": legacy_authors,
            "ppt/authors.xml": modern_authors,
        },
    )


def test_a_slides_comments_and_replies_follow_its_text_and_notes(tmp_path: Path) -> None:
    """docling reads no comment of a deck: a reviewer's "these figures are last year's"
    on a slide was lost, and a deck of comments alone skipped as blank."""
    import io

    from pptx import Presentation

    deck = Presentation()
    for title in ("Roadmap", "Budget"):
        deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = title
    deck.slides[0].notes_slide.notes_text_frame.text = "CANARY-NOTES say it slowly"
    deck.save(out := io.BytesIO())
    # PowerPoint's own: a comment, an empty one, and a reply naming its parent.
    legacy = (
        f'<p:cmLst {_P} xmlns:p15="http://schemas.microsoft.com/office/powerpoint/2012/main">'
        '<p:cm authorId="0" idx="1"><p:pos x="10" y="10"/><p:text>CANARY-LEGACY these '
        "figures are\nlast year&apos;s</p:text></p:cm>"
        '<p:cm authorId="0" idx="2"><p:pos x="0" y="0"/><p:text> </p:text></p:cm>'
        '<p:cm authorId="1" idx="1"><p:pos x="10" y="10"/><p:text>CANARY-FIXED</p:text>'
        '<p:extLst><p:ext uri="{C676402C-5697-4E1C-873F-D02D1690AC5C}"><p15:threadingInfo>'
        '<p15:parentCm authorId="0" idx="1"/></p15:threadingInfo></p:ext></p:extLst></p:cm>'
        "</p:cmLst>"
    )
    parsed = parse_file(
        _file(tmp_path, "l.pptx", _commented_deck(out.getvalue(), 2, legacy, modern=False)),
        "l.pptx",
        OPTIONS,
    )
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, "# Roadmap\n\nSpeaker notes: CANARY-NOTES say it slowly"),
        (
            2,
            "# Budget\n\nComments:\n- Comment (Ann Lee): CANARY-LEGACY these figures are "
            "last year's\n- Reply (Bob Roe): CANARY-FIXED",
        ),
    ]
    # Microsoft 365's: its replies written before its own text, an unknown author.
    modern = (
        f'<p188:cmLst {_P188}><p188:cm id="{{C1}}" authorId="{{A1}}"><p188:unknownAnchor/>'
        '<p188:replyLst><p188:reply id="{R1}" authorId="{B2}">'
        f"{_modern_body('CANARY-MREPLY', 'done')}</p188:reply></p188:replyLst>"
        f"{_modern_body('CANARY-MODERN check', 'the date')}</p188:cm>"
        f'<p188:cm id="{{C2}}" authorId="{{Z9}}">{_modern_body("CANARY-NOBODY")}</p188:cm>'
        "</p188:cmLst>"
    )
    parsed = parse_file(
        _file(tmp_path, "m.pptx", _commented_deck(out.getvalue(), 1, modern, modern=True)),
        "m.pptx",
        OPTIONS,
    )
    assert parsed.segments[0].text == (
        "# Roadmap\n\nSpeaker notes: CANARY-NOTES say it slowly\n\nComments:\n"
        "- Comment (Ann Lee): CANARY-MODERN check the date\n- Reply (Bob Roe): CANARY-MREPLY "
        "done\n- Comment: CANARY-NOBODY"
    )
    assert parsed.segments[1].text == "# Budget"
    # A deck of comments alone: read, not skipped as blank.
    blank = _commented_deck(docs.empty_office("blank-slide"), 1, legacy, modern=False)
    parsed = parse_file(_file(tmp_path, "b.pptx", blank), "b.pptx", OPTIONS)
    assert (parsed.parser, parsed.segments[0].page) == ("pptx-comments", 1)
    assert parsed.text.startswith("Comments:\n- Comment (Ann Lee): CANARY-LEGACY")
    # A part its links name missing: no comments, and no error (the slides' reader judges).
    from rag_ingest.parsers.ooxml_comments import pptx_comments

    rels = "ppt/slides/_rels/slide1.xml.rels"
    lost = docs._repacked(blank, {rels: lambda t: t.replace("comment1.xml", "gone.xml")}, {})
    assert pptx_comments(_file(tmp_path, "g.pptx", lost)) == []


def test_each_sheet_is_a_page_named_by_its_sheet(tmp_path: Path) -> None:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Revenue"
    book.active.append(["quarter", "eur"])
    book.active.append(["Q3", 4200000])
    book.create_sheet("Costs").append(["item", "eur"])
    book["Costs"].append(["rent", 3000])
    out = io.BytesIO()
    book.save(out)
    parsed = parse_file(_file(tmp_path, "book.xlsx", out.getvalue()), "book.xlsx", OPTIONS)
    assert [(s.page, s.text.split("\n")[0]) for s in parsed.segments] == [
        (1, "# Sheet: Revenue"),
        (2, "# Sheet: Costs"),
    ]
    assert "rent" in parsed.segments[1].text and "rent" not in parsed.segments[0].text


def test_a_formula_with_no_saved_value_shows_its_formula(tmp_path: Path) -> None:
    import io
    import re
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["item", "qty", "price", "total"])
    for i in range(3):
        sheet.append([f"widget {i}", i + 1, 2.5, f"=B{i + 2}*C{i + 2}"])
    sheet.append(["sum", None, None, "=SUM(D2:D4)"])
    sheet.merge_cells("A6:D6")
    sheet["A6"] = "=CONCAT(A2, A3)"
    book.create_sheet("Plain").append(["CANARY-PLAIN", 1])
    out = io.BytesIO()
    book.save(out)  # openpyxl saves formulas, not their values: Excel computes them
    path = _file(tmp_path, "report.xlsx", out.getvalue())
    parsed = parse_file(path, "report.xlsx", OPTIONS)
    rows = [" ".join(line.split()) for line in parsed.segments[0].text.splitlines()]
    assert "| widget 2 | 3 | 2.5 | =B4*C4 |" in rows
    assert "| sum | | | =SUM(D2:D4) |" in rows
    assert any("=CONCAT(A2, A3)" in row for row in rows)
    assert parsed.warnings == [
        "5 formula cell(s) have no saved value (the workbook was written by a program, "
        "never saved by a spreadsheet app): their formulas are shown instead"
    ]

    # Saved by a spreadsheet app, a formula's value is there: it is shown, not the formula
    # (the sum and the merged cell left without theirs).
    saved = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as src, zipfile.ZipFile(saved, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"(<f>B\d\*C\d</f>)<v\s*/?>(</v>)?", rb"\1<v>7.5</v>", data)
            dst.writestr(item, data)
    parsed = parse_file(_file(tmp_path, "saved.xlsx", saved.getvalue()), "saved.xlsx", OPTIONS)
    assert "7.5" in parsed.text and "=B4*C4" not in parsed.text and "=SUM(D2:D4)" in parsed.text
    assert parsed.warnings[0].startswith("2 formula cell(s) have no saved value")


def _workbook(tmp_path: Path, *, chart_sheet: bool = False) -> str:
    return _file(tmp_path, "orders.xlsx", docs.orders_xlsx_bytes(chart_sheet=chart_sheet))


def test_a_large_html_or_markdown_file_is_read_without_docling(tmp_path: Path) -> None:
    """docling reads HTML and Markdown at ~0.3 MB/s: a file past ~38 MB outlasts
    parse.timeout. Past parse.markup_fast_size, html-to-markdown reads a page (4 MB:
    12.6 s -> 0.4 s), and Markdown is read as its source."""
    from rag_ingest.settings import ParseSettings

    page = (
        '<html><head><meta charset="windows-1252"><title>Caf\xe9 guide</title>'
        "<script>var CANARY_SCRIPT = 1;</script></head><body>"
        '<nav><a href="/">Home</a> CANARY-NAV</nav>'
        "<h2>Opening hours</h2><p>Open daily, CANARY-BODY. See "
        '<a href="hours.html#late">late hours</a> or <a href="https://example.org/x">the map</a>'
        '.</p><img src="front.jpg" alt="front"><table><tr><th>day</th><th>open</th></tr>'
        "<tr><td>Mon</td><td>8-18</td></tr></table>"
        '<pre><code class="language-python">print("menu")</code></pre></body></html>'
    ).encode("cp1252")
    path = _file(tmp_path, "cafe.html", page)
    assert parse_file(path, "cafe.html", OPTIONS).parser == "docling-html"  # small
    parsed = parse_file(path, "cafe.html", ParseOptions(markup_fast_size=100))
    assert (parsed.file_type, parsed.parser) == ("html", "html-to-markdown[windows-1252]")
    text = parsed.text
    assert text.startswith("# Café guide\n\n## Opening hours\n\nOpen daily, CANARY-BODY.")
    # A relative link's text without its target; a full URL kept, as docling's path does.
    assert "See late hours or [the map](https://example.org/x)." in text
    assert "| day | open |" in text and "| Mon | 8-18 |" in text
    assert '```python\nprint("menu")\n```' in text
    assert "CANARY_SCRIPT" not in text and "CANARY-NAV" not in text and "front.jpg" not in text
    assert parsed.warnings == [
        "past parse.markup_fast_size (100 B): read by html-to-markdown, not docling",
        "1 picture(s) not read: the page is read without them",
    ]
    # A page titled already keeps its one heading; a page of nothing is blank.
    titled = b"<html><head><title>Hours</title></head><body><h1>Hours</h1><p>x</p></body></html>"
    path = _file(tmp_path, "hours.html", titled)
    assert parse_file(path, "hours.html", ParseOptions(markup_fast_size=0)).text == "# Hours\n\nx"
    with pytest.raises(BlankDocumentError):
        blank = _file(tmp_path, "blank.html", b"<html><body><script>x()</script></body></html>")
        parse_file(blank, "blank.html", ParseOptions(markup_fast_size=0))
    assert ParseOptions.of(ParseSettings(markup_fast_size=0)).markup_fast_size == 0
    # html-to-markdown loses text past ~1,000 levels of nesting: a page of unclosed tags
    # kept 510 of 2,000 lines, a word 2,000 <div>s deep was lost. Such a page is read as
    # its text, every word kept.
    unclosed = "".join(f"<font><b>line {i} CANARY-{i}\n" for i in range(2000))
    deep = "<div>" * 2000 + "CANARY-DEEP" + "</div>" * 2000
    for name, body in (("old.html", unclosed), ("deep.html", deep)):
        page = (
            f"<html><head><title>Old</title><style>p {{}}</style></head><body>{body}</body></html>"
        )
        parsed = parse_file(
            _file(tmp_path, name, page.encode()), name, ParseOptions(markup_fast_size=0)
        )
        assert parsed.parser == "html-text" and "p {}" not in parsed.text
        assert parsed.text.startswith("# Old\n\n")
        assert len(re.findall(r"CANARY-\w+", parsed.text)) == (2000 if body == unclosed else 1)
        assert parsed.warnings[1].startswith("html-to-markdown kept ")
    assert (
        "\nline 7 CANARY-7\n"
        in parse_file(
            _file(tmp_path, "old.html", unclosed.replace("\n", "<br>").encode()),
            "old.html",
            ParseOptions(markup_fast_size=0),
        ).text
    )
    # Markdown, as slow in docling, is read as its source, its front matter as docling's
    # path reads it.
    notes = (
        "---\ntitle: Release notes\ndescription: What changed, CANARY-DESC\n---\n"
        "## 2.0\n\n| change | ticket |\n|---|---|\n| faster | T-1 |\n"
    )
    path = _file(tmp_path, "notes.md", notes.encode())
    assert parse_file(path, "notes.md", OPTIONS).parser == "docling-markdown"  # small
    parsed = parse_file(path, "notes.md", ParseOptions(markup_fast_size=100))
    assert (parsed.file_type, parsed.parser) == ("markdown", "markdown-source[utf-8]")
    assert parsed.text == (
        "# Release notes\n\nWhat changed, CANARY-DESC\n\n"
        "## 2.0\n\n| change | ticket |\n|---|---|\n| faster | T-1 |\n"
    )
    assert parsed.warnings == [
        "past parse.markup_fast_size (100 B): read as its Markdown source, not by docling"
    ]


def test_markdown_past_its_own_bar_is_read_as_its_source_without_its_comments(
    tmp_path: Path,
) -> None:
    """docling read real Markdown at 8-36 s a MB (Node.js's 0.8 MB changelogs ~20 s), so
    Markdown has a lower bar than HTML: parse.markdown_fast_size, or markup_fast_size
    when that is lower. Its HTML comments are left out, as docling's path leaves them,
    except where a code block shows one."""
    page = (
        "# http\n\n<!--introduced_in=v0.10.0-->\n\n<!-- source_link=lib/http.js -->\n\n"
        "The CANARY-HTTP module.\n\n## Class: `http.Agent`\n\n<!-- YAML\nadded: v0.3.4\n-->\n\n"
        "An agent pools sockets.\n\n```html\n<!-- a comment a page shows -->\n```\n\n"
        "~~~\n<!-- in a tilde fence too -->\n~~~\n\nEnd.<!-- trailing -->\n"
    )
    path = _file(tmp_path, "http.md", page.encode())
    assert parse_file(path, "http.md", OPTIONS).parser == "docling-markdown"  # under 256 KiB
    for options, said in (
        (ParseOptions(markdown_fast_size=100), "markdown_fast_size (100 B)"),
        (ParseOptions(markdown_fast_size=200, markup_fast_size=150), "markup_fast_size (150 B)"),
        (ParseOptions.of(ParseSettings(markdown_fast_size=0)), "markdown_fast_size (0 B)"),
    ):
        parsed = parse_file(path, "http.md", options)
        assert parsed.parser == "markdown-source[utf-8]"
        assert parsed.warnings == [
            f"past parse.{said}: read as its Markdown source, not by docling"
        ]
        assert parsed.text == (
            "# http\n\nThe CANARY-HTTP module.\n\n## Class: `http.Agent`\n\n"
            "An agent pools sockets.\n\n```html\n<!-- a comment a page shows -->\n```\n\n"
            "~~~\n<!-- in a tilde fence too -->\n~~~\n\nEnd.\n"
        )
    # An unclosed fence runs to the end: a comment after it is the block's.
    path = _file(tmp_path, "cut.md", b"# Cut\n\n<!-- gone -->\n\n```\n<!-- kept -->\n")
    cut = parse_file(path, "cut.md", ParseOptions(markdown_fast_size=0)).text
    assert cut == "# Cut\n\n```\n<!-- kept -->\n"


def test_a_large_workbook_is_read_as_rows_one_table_per_sheet(tmp_path: Path) -> None:
    path = _workbook(tmp_path)
    small = parse_file(path, "orders.xlsx", OPTIONS)
    assert small.parser == "docling-xlsx" and not small.warnings
    parsed = parse_file(path, "orders.xlsx", ParseOptions(xlsx_stream_size=1000))
    assert parsed.parser == "calamine-rows" and parsed.pages == 2
    assert [(s.page, s.text) for s in parsed.segments] == [
        (
            1,
            "# Sheet: Orders\n\n"
            "Orders export, CANARY-TITLE\n\n"
            "| order | placed | qty | price | note |\n"
            "|---|---|---|---|---|\n"
            "| A-1 | 2024-01-02 | 3 | 1.5 | fragile \\| glass |\n"
            "| A-2 | 2024-01-03T09:30:00 | 4 | 2.25 | line break |\n"
            "| A-3 |  | 7 |  |  |",
        ),
        (2, "# Sheet: Stock\n\n| sku | on hand |\n|---|---|\n| CANARY-SKU | 12 |"),
    ]
    assert "parse.xlsx_stream_size (1000 B)" in parsed.warnings[0]
    # Chunked as docling's tables are: rows under the header, the sheet as heading.
    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    plan = chunk_document(parsed, ChunkSettings(whole_document_tokens=0), {})
    stock = [c for c in plan.chunks if "CANARY-SKU" in c.text]
    # The sheet's heading joins its table's first rows rather than standing alone.
    assert stock[0].text.startswith("# Sheet: Stock\n\n| sku | on hand |\n|---|---|\n")
    assert stock[0].metadata["page_start"] == 2
    assert stock[0].metadata["heading_path"] == "Sheet: Stock"


def test_a_workbook_docling_cannot_open_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # openpyxl (under docling) fails on a chart sheet with no drawing; calamine reads it.
    parsed = parse_file(_workbook(tmp_path, chart_sheet=True), "orders.xlsx", OPTIONS)
    assert "CANARY-SKU" in parsed.text and "CANARY-TITLE" in parsed.text
    assert [s.page for s in parsed.segments] == [1, 2]

    from rag_ingest.parsers import office

    def fails(*args: object, **kwargs: object) -> None:
        raise CorruptDocumentError("orders.xlsx: docling could not open this xlsx (KeyError)")

    monkeypatch.setattr(office, "_parse_docling", fails)
    parsed = parse_file(_workbook(tmp_path), "orders.xlsx", OPTIONS)
    assert parsed.parser == "calamine-rows" and "CANARY-SKU" in parsed.text
    assert parsed.warnings[0].startswith(
        "orders.xlsx: docling could not open this xlsx (KeyError); read as rows by calamine"
    )
    # What neither reads keeps docling's error.
    broken = _file(tmp_path, "broken.xlsx", docs.corpus()["docs/handbook.docx"])
    with pytest.raises(CorruptDocumentError, match="docling could not open"):
        parse_file(broken, "broken.xlsx", OPTIONS)


def test_a_cells_16_bit_string_read_as_8_bit_is_read_as_its_text() -> None:
    # calamine read Apache POI's ex41187-19267.xls's strings as "H\x00i\x00 \x00E...".
    from rag_ingest.parsers.workbook import sheet_lines

    rows = [["H\x00i\x00 \x00E\x00x\x00c\x00e\x00l\x00!\x00", "a\x00b", "x", 1.5]]
    assert sheet_lines(rows)[0] == "| Hi Excel! | a\x00b | x | 1.5 |"


def test_legacy_binary_and_opendocument_workbooks_are_read_as_rows(tmp_path: Path) -> None:
    import datetime

    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    when = datetime.date(2024, 1, 2)
    xls = docs.xls_bytes([["Legacy CANARY-XLS"], [], ["item", "qty", "when"], ["bolt", 12, when]])
    ods = docs.ods_bytes([["item", "qty"], ["CANARY-ODS nuts", 7]])
    legacy = "# Sheet: Legacy\n\nLegacy CANARY-XLS\n\n| item | qty | when |\n|---|---|---|\n"
    calc = "# Sheet: Calc\n\n| item | qty |\n|---|---|\n| CANARY-ODS nuts | 7 |"
    # By content too: a workbook saved without its extension.
    for name, data, kind, text in (
        ("old.xls", xls, "xls", legacy + "| bolt | 12 | 2024-01-02 |"),
        ("old", xls, "xls", legacy + "| bolt | 12 | 2024-01-02 |"),
        ("calc.ods", ods, "ods", calc),
        ("calc", ods, "ods", calc),
        ("saved-as.xlsx", xls, "xls", legacy + "| bolt | 12 | 2024-01-02 |"),  # the name lies
        ("saved-as.xls", ods, "ods", calc),
    ):
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == (kind, "calamine-rows")
        assert [w for w in parsed.warnings if "named" not in w] == []
        assert parsed.text == text
        plan = chunk_document(parsed, ChunkSettings(whole_document_tokens=0), {})
        assert plan.strategy == "markdown"  # as XLSX: rows under their header
    # A compound file named .xls with no workbook stream found: calamine says what is wrong.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    with pytest.raises(CorruptDocumentError, match=r"^old\.xls: "):
        parse_file(_file(tmp_path, "old.xls", ole), "old.xls", OPTIONS)


def test_a_pretty_printed_spreadsheet_is_read(tmp_path: Path) -> None:
    """calamine took the whitespace between a row's cells for content and failed; KOffice
    and scripts write ODS so."""
    ods = docs.ods_bytes([["item", "qty"], ["CANARY-ODS nuts", 7]])
    pretty = docs._repacked(
        ods,
        {
            "content.xml": lambda text: (
                re.sub(r"(<table:table-(?:row|cell)\b)", r"\n  \1", text)
                .replace("</table:table-row>", "\n </table:table-row>")
                .replace("</table:table-cell>", "</table:table-cell>\n")
                .replace("<text:p>", "\n   <text:p>")
            )
        },
        {},
    )
    parsed = parse_file(_file(tmp_path, "calc.ods", pretty), "calc.ods", OPTIONS)
    assert parsed.text == "# Sheet: Calc\n\n| item | qty |\n|---|---|\n| CANARY-ODS nuts | 7 |"
    # A workbook that is broken otherwise still fails, with calamine's reason.
    broken = docs._repacked(pretty, {"content.xml": lambda text: text[: len(text) // 2]}, {})
    with pytest.raises(CorruptDocumentError, match=r"^cut\.ods: ods could not be opened \("):
        parse_file(_file(tmp_path, "cut.ods", broken), "cut.ods", OPTIONS)


def _sun_bytes(kind: str, body: str, manifest: str = "") -> bytes:
    """An OpenOffice.org 1.x document of ``kind`` (writer, calc, impress) whose body is
    ``body``, as OpenOffice.org 1.1 saves one; its manifest's entries after its own
    ``manifest``, none when not given."""
    ns = " ".join(
        f'xmlns:{p}="http://openoffice.org/2000/{u}"'
        for p, u in (("office", "office"), ("text", "text"), ("table", "table"),
                     ("draw", "drawing"), ("style", "style"), ("presentation", "presentation"))
    )  # fmt: skip
    classes = {"writer": "text", "calc": "spreadsheet", "impress": "presentation"}
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE office:document-content PUBLIC '
        '"-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "office.dtd">'
        f'<office:document-content {ns} xmlns:svg="http://www.w3.org/2000/svg" '
        f'office:class="{classes[kind]}" office:version="1.0"><office:automatic-styles/>'
        f"<office:body>{body}</office:body></office:document-content>"
    )
    listed = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"http://openoffice.org/2001/manifest"><manifest:file-entry manifest:media-type='
        f'"application/vnd.sun.xml.{kind}" manifest:full-path="/"/>{manifest}'
        "</manifest:manifest>"
    )
    return docs.zip_bytes(
        {
            "mimetype": f"application/vnd.sun.xml.{kind}".encode(),
            "content.xml": content.encode(),
            "styles.xml": f'<office:document-styles {ns} office:version="1.0"/>'.encode(),
            # (calamine knows a spreadsheet by its manifest: the converted file has one)
            **({"META-INF/manifest.xml": listed.encode()} if manifest else {}),
        }
    )


def test_an_openoffice_1_document_is_read_as_the_opendocument_it_became(tmp_path: Path) -> None:
    # OpenOffice.org 1.x files (.sxw, .sxc, .sxi) had been read as zip archives, part by
    # part: their settings and styles indexed, their text as XML records.
    writer = (
        '<text:h text:style-name="Heading 1" text:level="2">CANARY-SXW title</text:h>'
        '<text:p>Body text.<office:annotation office:author="Ann"><text:p>CANARY-NOTE'
        "</text:p></office:annotation></text:p><text:ordered-list><text:list-item><text:p>"
        "first</text:p></text:list-item></text:ordered-list><text:unordered-list>"
        "<text:list-item><text:p>second</text:p></text:list-item></text:unordered-list>"
    )
    calc = (
        '<table:table table:name="Budget"><table:table-row><table:table-cell '
        'table:value-type="string"><text:p>Item</text:p></table:table-cell><table:table-cell '
        'table:value-type="string"><text:p>Cost</text:p></table:table-cell></table:table-row>'
        '<table:table-row><table:table-cell table:value-type="string"><text:p>CANARY-DESK'
        '</text:p></table:table-cell><table:table-cell table:value-type="float" '
        'table:value="1200"><text:p>1,200</text:p></table:table-cell></table:table-row>'
        "</table:table>"
    )
    impress = (
        '<draw:page draw:name="page1"><draw:text-box presentation:class="title">'
        "<text:p>CANARY-SLIDE title</text:p></draw:text-box><draw:text-box><text:p>A point"
        "</text:p></draw:text-box></draw:page>"
    )
    expected = {
        "w.sxw": ("odt", "## CANARY-SXW title\n\nBody text.\n\n- first\n\n- second\n\n"
                         "Comments:\n- Comment (Ann): CANARY-NOTE"),
        "c.sxc": ("ods", "# Sheet: Budget\n\n| Item | Cost |\n|---|---|\n| CANARY-DESK | 1200 |"),
        "i.sxi": ("odp", "# CANARY-SLIDE title\n\nA point"),
    }  # fmt: skip
    for (name, kind), body in zip(
        (("w.sxw", "writer"), ("c.sxc", "calc"), ("i.sxi", "impress")),
        (writer, calc, impress),
        strict=True,
    ):
        parsed = parse_file(_file(tmp_path, name, _sun_bytes(kind, body)), name, OPTIONS)
        assert (parsed.file_type, parsed.text) == expected[name], name
        assert split_notes(parsed.warnings) == (
            [],
            ["OpenOffice.org 1.x: read as the OpenDocument file it became"],
        )
    # Password-protected, as its manifest says: typed, as an OpenDocument file's.
    file_entry = (
        '<manifest:file-entry manifest:media-type="text/xml" manifest:full-path="content.xml">'
        "<manifest:encryption-data/></manifest:file-entry>"
    )
    locked = _sun_bytes("writer", "<text:p>secret</text:p>", manifest=file_entry)
    with pytest.raises(EncryptedDocumentError, match="encrypted OpenDocument"):
        parse_file(_file(tmp_path, "l.sxw", locked), "l.sxw", OPTIONS)


def test_an_ods_sheets_shapes_are_read_after_its_rows(tmp_path: Path) -> None:
    # calamine reads a sheet's cells, not what is drawn over them: LibreOffice's
    # two-col-shape.ods (a shape of Lorem ipsum) and text_box_hyperlink.ods were skipped
    # as blank.
    # Anchored to a cell: calamine reads its text as the cell's.
    box = "<draw:frame><draw:text-box><text:p>CANARY-FRAMED</text:p></draw:text-box></draw:frame>"
    body = (
        '<table:table table:name="Calc"><table:shapes><draw:custom-shape><text:p>'
        "CANARY-SHAPE</text:p><text:p/><draw:enhanced-geometry/></draw:custom-shape>"
        "<draw:g><draw:rect><text:p>grouped</text:p></draw:rect><draw:line/></draw:g>"
        "<draw:frame><draw:text-box><text:p>boxed</text:p><text:list><text:list-item><text:p>"
        "listed  item</text:p></text:list-item></text:list></draw:text-box></draw:frame>"
        "</table:shapes><table:table-row>"
        f'<table:table-cell office:value-type="string"><text:p>item</text:p>{box}'
        "<office:annotation><text:p>CANARY-NOTE</text:p></office:annotation>"
        "</table:table-cell></table:table-row></table:table>"
    )
    for name, build in (("s.ods", docs.odf_bytes), ("s.fods", docs.flat_odf_bytes)):
        parsed = parse_file(_file(tmp_path, name, build("spreadsheet", body)), name, OPTIONS)
        assert parsed.text == (
            "# Sheet: Calc\n\nitem CANARY-FRAMED\n\nText box: CANARY-SHAPE\n"
            "Text box: grouped\nText box: boxed listed item\nComment on A1: CANARY-NOTE"
        ), name
    from rag_ingest.parsers.opendoc import _holds

    cut = zipfile.ZipFile(
        io.BytesIO(docs.zip_bytes({"c.xml": b" " * ((1 << 20) - 5) + b"<draw:rect>"}))
    )
    assert _holds(cut, "c.xml", b"<office:annotation", b"<draw:rect")


def test_an_opendocument_file_with_a_password_on_its_macros_alone_is_read(
    tmp_path: Path,
) -> None:
    # A password on a Basic library encrypts that library, not the document: LibreOffice's
    # fdo68983.odt had been refused as password-protected, and tdf131296_new.ods (calamine
    # refuses its manifest) as "could not be opened".
    library = (
        '<manifest:file-entry manifest:full-path="Basic/Library1/Module1.xml" '
        'manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type='
        '"SHA1/1K" manifest:checksum="x"/></manifest:file-entry></manifest:manifest>'
    )

    def macros(package: bytes) -> bytes:
        return docs._repacked(
            package,
            {"META-INF/manifest.xml": lambda t: t.replace("</manifest:manifest>", library)},
            {"Basic/Library1/Module1.xml": b"\x93encrypted"},
        )

    sheet = (
        '<table:table table:name="S"><table:table-row><table:table-cell office:value-type='
        '"string"><text:p>CANARY-SHEET</text:p></table:table-cell></table:table-row>'
        "</table:table>"
    )
    for name, kind, body, expected in (
        ("m.odt", "text", "<text:p>CANARY-TEXT</text:p>", "CANARY-TEXT"),
        ("m.ods", "spreadsheet", sheet, "# Sheet: S\n\nCANARY-SHEET"),
    ):
        data = macros(docs.odf_bytes(kind, body))
        assert parse_file(_file(tmp_path, name, data), name, OPTIONS).text == expected, name
        # Its content encrypted: password-protected, said so for a spreadsheet too (it
        # had been "ods could not be opened").
        locked = macros(docs.odf_bytes(kind, body, encrypted=True))
        with pytest.raises(EncryptedDocumentError, match="encrypted OpenDocument"):
            parse_file(_file(tmp_path, f"l-{name}", locked), f"l-{name}", OPTIONS)


def test_an_ods_sheets_cell_comments_are_read_after_its_rows(tmp_path: Path) -> None:
    # calamine reads a sheet's cells, not their comments (office:annotation): a note on
    # a figure was lost, and a sheet of comments alone skipped as blank.
    def noted(text: str, author: str | None = None) -> str:
        creator = (
            f"<dc:creator>{author}</dc:creator><dc:date>2026-01-02</dc:date>" if author else ""
        )
        paragraphs = f"<text:p>{text}</text:p><text:p>more</text:p>"
        return f"<office:annotation>{creator}{paragraphs}</office:annotation>"

    body = (
        '<table:table table:name="Calc"><table:table-row>'
        '<table:table-cell table:number-columns-repeated="2"/>'  # A1:B1, empty
        f'<table:table-cell office:value-type="string">{noted("CANARY-NOTE check", "Ann")}'
        "<text:p>item</text:p></table:table-cell>"
        '<table:table-cell office:value-type="float" office:value="4"><text:p>4</text:p>'
        "</table:table-cell></table:table-row>"
        '<table:table-row table:number-rows-repeated="3"><table:table-cell/></table:table-row>'
        "<table:table-row><table:covered-table-cell/>"  # under a merged cell: B5 next
        f"<table:table-cell>{noted('CANARY-ROW5')}</table:table-cell></table:table-row>"
        '</table:table><table:table table:name="Plain"><table:table-row><table:table-cell '
        'office:value-type="string"><text:p>x</text:p></table:table-cell><table:table-cell '
        'office:value-type="string"><text:p>y</text:p></table:table-cell></table:table-row>'
        '</table:table><table:table table:name="Only"><table:table-row><table:table-cell>'
        f"{noted('CANARY-ALONE', 'Bob')}</table:table-cell></table:table-row></table:table>"
    )
    for name, build in (("n.ods", docs.odf_bytes), ("n.fods", docs.flat_odf_bytes)):
        parsed = parse_file(_file(tmp_path, name, build("spreadsheet", body)), name, OPTIONS)
        assert [(s.text, s.page) for s in parsed.segments] == [
            (
                "# Sheet: Calc\n\n| item | 4 |\n|---|---|\n\n"
                "Comment on C1 (Ann): CANARY-NOTE check more\nComment on B5: CANARY-ROW5 more",
                1,
            ),
            ("# Sheet: Plain\n\n| x | y |\n|---|---|", 2),
            ("# Sheet: Only\n\nComment on A1 (Bob): CANARY-ALONE more", 3),
        ], name
    # content.xml is looked through in parts for a comment: one cut between two is seen.
    from rag_ingest.parsers.opendoc import _holds

    cut = zipfile.ZipFile(
        io.BytesIO(docs.zip_bytes({"c.xml": b" " * ((1 << 20) - 5) + b"<office:x>"}))
    )
    assert _holds(cut, "c.xml", b"<office:x") and not _holds(cut, "c.xml", b"<office:y")
    # A workbook of comments alone: read, not skipped as blank.
    alone = (
        '<table:table table:name="Notes"><table:table-row><table:table-cell>'
        f"{noted('CANARY-ONLY', 'Ann')}</table:table-cell></table:table-row></table:table>"
    )
    parsed = parse_file(
        _file(tmp_path, "a.ods", docs.odf_bytes("spreadsheet", alone)), "a.ods", OPTIONS
    )
    assert (parsed.text, parsed.parser) == (
        "# Sheet: Notes\n\nComment on A1 (Ann): CANARY-ONLY more",
        "ods-comments",
    )


def test_an_ods_chart_is_read_after_its_sheet_s_rows(tmp_path: Path) -> None:
    # calamine reads a sheet's cells, not the objects over them: an ODS chart's title had
    # been lost (the last session left it); an ODT's and an ODP's were read already.
    import io
    import zipfile

    frame = (
        '<table:shapes><draw:frame><draw:object xlink:href="./Object {}"/></draw:frame>'
        "</table:shapes>"
    )
    chart = docs.odf_chart("CANARY-ODS-CHART helmets sold", [("2025", "4"), ("2026", "CANARY-7")])
    plain = docs.ods_bytes([["item", "count"], ["helmet", 4]])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            member = source.read(info)
            if info.filename == "content.xml":
                text = member.decode().replace(
                    'table:name="Calc">', 'table:name="Calc">' + frame.format(1)
                )
                empty = f'<table:table table:name="Charts">{frame.format(2)}</table:table>'
                member = text.replace("</table:table>", "</table:table>" + empty).encode()
            target.writestr(info, member)
        target.writestr("Object 1/content.xml", chart)
        target.writestr("Object 2/content.xml", chart.replace("helmets sold", "on its own sheet"))
    parsed = parse_file(_file(tmp_path, "sold.ods", out.getvalue()), "sold.ods", OPTIONS)
    first, second = parsed.segments
    assert first.page == 1 and first.text.startswith("# Sheet: Calc\n\n| item | count |")
    assert "\n\nBar chart: CANARY-ODS-CHART helmets sold\n\n" in first.text
    assert "CANARY-7" in first.text
    assert second.page == 2 and second.text.startswith(
        "Bar chart: CANARY-ODS-CHART on its own sheet"
    )


def test_a_gnumeric_workbook_is_read_as_rows(tmp_path: Path) -> None:
    # Gnumeric's own format (gzipped XML): read as text, it had been its styles and tags.
    import gzip

    def cell(row: int, column: int, text: str, kind: str | None = "60") -> str:
        value_type = f' ValueType="{kind}"' if kind else ""
        return f'<gnm:Cell Row="{row}" Col="{column}"{value_type}>{text}</gnm:Cell>'

    cells = (
        cell(0, 0, "Budget CANARY-GNUMERIC")
        + cell(2, 0, "Item") + cell(2, 1, "Cost") + cell(2, 2, "Approved")
        + cell(3, 0, "Desks") + cell(3, 1, "1200", "40") + cell(3, 2, "TRUE", "20")
        + cell(4, 0, "Chairs") + cell(4, 1, "=B4/2", None)  # a formula: its value unsaved
        + cell(4, 2, "#DIV/0!", "30")  # an error: left out
        + cell(99999999999, 0, "CANARY-FAR")  # past Gnumeric's last row: hostile
    )  # fmt: skip
    workbook = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gnm:Workbook '
        'xmlns:gnm="http://www.gnumeric.org/v10.dtd"><gnm:Names><gnm:Name><gnm:name>x'
        "</gnm:name></gnm:Name></gnm:Names><gnm:Sheets>"
        f"<gnm:Sheet><gnm:Name>Budget</gnm:Name><gnm:Cells>{cells}</gnm:Cells><gnm:Objects>"
        '<gnm:CellComment ObjectBound="B4" Author="Ann" Text="CANARY-COMMENT half price"/>'
        "</gnm:Objects></gnm:Sheet>"
        "<gnm:Sheet><gnm:Name>Empty</gnm:Name><gnm:Cells/></gnm:Sheet>"
        "</gnm:Sheets></gnm:Workbook>"
    )
    expected = (
        "# Sheet: Budget\n\nBudget CANARY-GNUMERIC\n\n"
        "| Item | Cost | Approved |\n|---|---|---|\n| Desks | 1200 | True |\n| Chairs |  |  |\n"
        "Comment on B4: CANARY-COMMENT half price"
    )
    _read_as(tmp_path, workbook.encode(), "gnumeric", expected, "budget.xml", "budget")
    saved = _file(tmp_path, "budget.gnumeric", gzip.compress(workbook.encode()))
    parsed = parse_file(saved, "budget.gnumeric", OPTIONS)
    assert (parsed.file_type, parsed.text, parsed.pages) == ("gnumeric", expected, 2)
    # Cut short: read as far as it goes, said; cut before a cell, damaged.
    _mended_as(tmp_path, workbook.encode()[:-60], "cut.xml", expected, "unclosed token")
    head = workbook.encode()[: workbook.index("<gnm:Cells>")]
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "head.xml", head), "head.xml", OPTIONS)
    empty = workbook.replace(cells, "").replace("CANARY-COMMENT half price", "")
    with pytest.raises(BlankDocumentError, match="every sheet is empty"):
        parse_file(_file(tmp_path, "empty.xml", empty.encode()), "empty.xml", OPTIONS)


def test_an_excel_2003_xml_workbook_is_read_as_rows(tmp_path: Path) -> None:
    # SpreadsheetML, as Excel's "XML Spreadsheet 2003" and reporting tools export it:
    # read as text, it had been its styles and tags.
    def cell(data: str, kind: str = "String", attrs: str = "") -> str:
        return f'<Cell{attrs}><Data ss:Type="{kind}">{data}</Data></Cell>'

    sales = (
        "<Row>" + cell("Q3 sales by region") + "</Row><Row/>"
        "<Row>" + cell("Region") + cell("Units") + cell("Shipped") + "</Row>"
        "<Row>" + cell("North") + cell("120.0", "Number")
        + cell("2026-03-01T00:00:00.000", "DateTime") + "</Row>"
        # A cell placed by its index, one merged across two columns, rich text.
        '<Row ss:Index="9">' + cell("South", attrs=' ss:MergeAcross="1"')
        + cell("CANARY-AFTER-MERGE") + "</Row>"
        "<Row>" + cell("East") + cell("7.5", "Number", ' ss:Index="2"')
        + '<Cell><ss:Data ss:Type="String" xmlns="http://www.w3.org/TR/REC-html40">'
        "<B>CANARY-RICH</B> late</ss:Data></Cell>"
        + cell("far", attrs=' ss:Index="1000000000"') + "</Row>"
    )  # fmt: skip
    workbook = (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">'
        '<Styles><Style ss:ID="Default"><Font ss:FontName="Arial"/></Style></Styles>'
        f'<Worksheet ss:Name="Sales"><Table>{sales}</Table></Worksheet>'
        '<Worksheet ss:Name="Empty"><Table/></Worksheet>'
        '<Worksheet ss:Name="Notes"><Table><Row>'
        + cell("CANARY-NOTES two")
        + cell("values")
        + "</Row></Table></Worksheet></Workbook>"
    )
    expected = (
        "# Sheet: Sales\n\nQ3 sales by region\n\n"
        "| Region | Units | Shipped |\n|---|---|---|\n"
        "| North | 120 | 2026-03-01 |\n| South |  | CANARY-AFTER-MERGE |\n"
        "| East | 7.5 | CANARY-RICH late |"
    )
    for name in ("sales.xml", "sales"):  # by its content
        path = _file(tmp_path, name, workbook.encode())
        parsed = parse_file(path, name, OPTIONS)
        assert (parsed.file_type, parsed.parser, parsed.pages) == (
            "spreadsheetml",
            "spreadsheetml",
            3,
        )
        assert [(s.text, s.page) for s in parsed.segments] == [
            (expected, 1),
            ("# Sheet: Notes\n\n| CANARY-NOTES two | values |\n|---|---|", 3),
        ]
        assert parsed.warnings == []  # named .xml, as it should be: no note

    # Without Office's processing instruction, by its root's namespace (a prefix too).
    bare = workbook.replace('<?mso-application progid="Excel.Sheet"?>', "")
    bare_path = _file(tmp_path, "bare.xml", bare.encode())
    assert detect(bare_path, "bare.xml").kind == "spreadsheetml"
    assert parse_file(bare_path, "bare.xml", OPTIONS).segments[0].text == expected
    prefixed = (
        '<ss:Workbook xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">'
        '<ss:Worksheet ss:Name="P"><ss:Table><ss:Row><ss:Cell><ss:Data ss:Type="String">'
        'CANARY-PREFIXED</ss:Data></ss:Cell><ss:Cell><ss:Data ss:Type="Number">2</ss:Data>'
        "</ss:Cell></ss:Row></ss:Table></ss:Worksheet></ss:Workbook>"
    )
    parsed = parse_file(_file(tmp_path, "p.xml", prefixed.encode()), "p.xml", OPTIONS)
    assert parsed.text == "# Sheet: P\n\n| CANARY-PREFIXED | 2 |\n|---|---|"
    # LibreOffice's own (tests/fixtures/office2003/README.md): the same rows as its ODS.
    fixture = Path(__file__).parent.parent / "fixtures" / "office2003" / "stock.xml"
    stock = parse_file(str(fixture), "stock.xml", OPTIONS)
    assert stock.text == (
        "# Sheet: Calc\n\n| item | count |\n|---|---|\n| helmet | 4 |\n| boots | 7 |"
    )
    empty = workbook.replace(sales, "").replace("CANARY-NOTES two", "").replace("values", "")
    with pytest.raises(BlankDocumentError, match="every sheet is empty"):
        parse_file(_file(tmp_path, "e.xml", empty.encode()), "e.xml", OPTIONS)
    # Cut short: read as far as it goes, said; cut before a row, damaged.
    notes = "# Sheet: Notes\n\nCANARY-NOTES two"
    cut = workbook.encode()[: workbook.index("values")]
    _mended_as(tmp_path, cut, "cut.xml", f"{expected}\n\n{notes}", "no element found")
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "head.xml", cut[:200]), "head.xml", OPTIONS)
    # A workbook further down another document (an XSLT stylesheet that writes one):
    # that document, read as XML.
    xslt = (
        b'<?xml version="1.0"?><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/'
        b'1999/XSL/Transform"><xsl:template match="/"><Workbook xmlns="urn:schemas-microsoft-'
        b'com:office:spreadsheet"><xsl:value-of select="CANARY-XSLT"/></Workbook>'
        b"</xsl:template></xsl:stylesheet>"
    )
    for name in ("report.xsl", "report.xml"):
        assert detect(_file(tmp_path, name, xslt), name).kind == "text", name


def test_a_word_2003_xml_document_is_read_as_markdown(tmp_path: Path) -> None:
    # WordprocessingML 2003 (Word's "XML Document" of Office 2003): read as text, it had
    # been its styles and tags.
    def p(text: str, style: str = "", extra: str = "") -> str:
        props = f'<w:pStyle w:val="{style}"/>' if style else ""
        return f"<w:p><w:pPr>{props}{extra}</w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"

    def cell(text: str) -> str:
        return f"<w:tc>{p(text)}</w:tc>"

    item = '<w:listPr><w:ilvl w:val="{}"/><w:ilfo w:val="1"/></w:listPr>'
    body = (
        p("Field manual", "Heading1")
        + "<w:p><w:r><w:t>CANARY-WML wear</w:t></w:r><w:r><w:tab/><w:t>gloves</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>'
        '<w:r><w:footnote><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t>CANARY-NOTE since 2019'
        "</w:t></w:r></w:p></w:footnote></w:r>"
        '<aml:annotation w:type="Word.Deletion"><aml:content><w:r><w:delText>CANARY-DELETED'
        "</w:delText></w:r></aml:content></aml:annotation>"
        '<aml:annotation w:type="Word.Insertion"><aml:content><w:r><w:t> always</w:t></w:r>'
        "</aml:content></aml:annotation>"
        '<w:r><aml:annotation w:type="Word.Comment" aml:author="Ann Lee"><aml:content>'
        + p("CANARY-COMMENT")
        + "</aml:content></aml:annotation></w:r><w:r><w:br/><w:t>New line.</w:t></w:r></w:p>"
        + p("Kit", "Outline2")
        + p("helmet", extra=item.format(0)) + p("chin strap", extra=item.format(1))
        + p("boots", extra=item.format(0))
        + '<w:p><w:r><w:t>See box.</w:t></w:r><w:r><w:pict><v:shape><v:textbox><w:txbxContent>'
        + p("CANARY-BOX aside") + "</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
        + p("laces", extra=item.format(0))
        + "<w:tbl><w:tr>" + cell("size") + cell("count") + "</w:tr><w:tr>" + cell("L | XL")
        + "<w:tc><w:tbl><w:tr>" + cell("4") + cell("spare") + "</w:tr></w:tbl></w:tc></w:tr>"
        "</w:tbl>"
        + p("socks", extra=item.format(0))
        + p("CANARY-OUTLINE", extra='<w:outlineLvl w:val="2"/>')
        + p("Closing.", extra='<w:outlineLvl w:val="9"/>')
    )  # fmt: skip
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<?mso-application progid="Word.Document"?><w:wordDocument xmlns:w="http://schemas.'
        'microsoft.com/office/word/2003/wordml" xmlns:wx="http://schemas.microsoft.com/office/'
        'word/2003/auxHint" xmlns:aml="http://schemas.microsoft.com/aml/2001/core" '
        'xmlns:v="urn:schemas-microsoft-com:vml"><w:styles>'
        '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Outline2"><w:name w:val="Kit title"/><w:pPr>'
        '<w:outlineLvl w:val="1"/></w:pPr></w:style></w:styles>'
        f"<w:body><wx:sect>{body}<w:sectPr/></wx:sect></w:body></w:wordDocument>"
    )
    expected = (
        "# Field manual\n\n"
        "CANARY-WML wear gloves (note: CANARY-NOTE since 2019) always\nNew line.\n\n"
        "## Kit\n\n"
        "- helmet\n  - chin strap\n- boots\n\n"
        "See box.\n\nCANARY-BOX aside\n\n- laces\n\n"
        "| size | count |\n|---|---|\n| L \\| XL | 4 spare |\n\n"
        "- socks\n\n"
        "### CANARY-OUTLINE\n\n"
        "Closing.\n\n"
        "Comments:\n- Comment (Ann Lee): CANARY-COMMENT"  # after the text, not in it
    )
    # By its root, whatever its name.
    names = ("manual.xml", "manual.doc", "manual")
    _read_as(tmp_path, document.encode(), "wordml", expected, *names)
    assert parse_file(_file(tmp_path, "m.xml", document.encode()), "m.xml", OPTIONS).warnings == []
    # LibreOffice's own (tests/fixtures/office2003/README.md): the text of its ODT.
    fixture = Path(__file__).parent.parent / "fixtures" / "office2003" / "field-manual.xml"
    saved = parse_file(str(fixture), "field-manual.xml", OPTIONS).text
    assert "# Safety\n\nCANARY-ODT wear gloves at all times (note: CANARY-FOOTNOTE" in saved
    assert "- helmet\n  - chin strap\n- boots" in saved and "| L \\| XL |" in saved
    assert saved.endswith("| L \\| XL |\n\nComments:\n- Comment: CANARY-COMMENT fix this")
    # Cut short: read as far as it goes, said; cut before the body, damaged.
    cut = document.encode()[: document.index("CANARY-OUTLINE")]
    comments = expected[expected.index("\n\nComments:") :]
    read = expected[: expected.index("\n\n### CANARY")] + comments
    _mended_as(tmp_path, cut, "cut.xml", read, "no el")
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "head.xml", cut[: cut.index(b"<w:body")]), "h.xml", OPTIONS)
    bare = cut[: cut.index(b"<wx:sect>")]  # its body begun, nothing in it yet
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "bare.xml", bare), "bare.xml", OPTIONS)
    blank = document.replace(body, "")
    with pytest.raises(BlankDocumentError, match="no text and no pictures"):
        parse_file(_file(tmp_path, "b.xml", blank.encode()), "b.xml", OPTIONS)
    # No body: damaged, said so.
    bodiless = '<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml">'
    bodiless += "<w:docPr/></w:wordDocument>"
    with pytest.raises(CorruptDocumentError, match="not a Word 2003 XML document"):
        parse_file(_file(tmp_path, "n.xml", bodiless.encode()), "n.xml", OPTIONS)


def test_a_word_2003_xml_documents_symbol_font_text_is_read_as_shown(tmp_path: Path) -> None:
    # As in a DOCX (see the symbol-font DOCX test): Word 2003 XML names a run's font for
    # characters past ASCII w:h-ansi, not w:hAnsi.
    def run(text: str, fonts: str = "") -> str:
        properties = f"<w:rPr><w:rFonts {fonts}/></w:rPr>" if fonts else ""
        return f"<w:r>{properties}<w:t>{text}</w:t></w:r>"

    body = (
        run("Size 5 ") + run("m", 'w:ascii="Symbol" w:h-ansi="Symbol"') + run("m, angle ")
        + run("\uf061", 'w:ascii="Arial" w:h-ansi="Symbol"') + run(" of 30 ")
        + '<w:r><w:sym w:font="Symbol" w:char="F0B1"/></w:r>' + run(" 2 ")
        + '<w:r><w:sym w:font="Wingdings" w:char="F0FE"/><w:sym w:font="Marlett" '
        'w:char="F061"/><w:sym w:font="Symbol" w:char="zz"/></w:r>' + run(" done")
    )  # fmt: skip
    document = (
        '<?xml version="1.0"?><?mso-application progid="Word.Document"?><w:wordDocument '
        'xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml"><w:body><w:p>'
        f"{body}</w:p></w:body></w:wordDocument>"
    )
    _read_as(
        tmp_path,
        document.encode(),
        "wordml",
        "Size 5 \u03bcm, angle \u03b1 of 30 \u00b1 2 \u2611 done",
        "s.xml",
    )


def test_word_xml_files_word_saved_are_read_as_their_docx_is() -> None:
    # tests/fixtures/word-saved/README.md: a Flat OPC and a Word 2003 XML document, as
    # Word saved them (the other tests' are built to the formats, or LibreOffice's).
    folder = Path(__file__).parent.parent / "fixtures" / "word-saved"
    body = (
        "Test\n\nThis is a harmless test document.\n\nIt contains neither macros nor dde "
        "links nor embedded viruses nor links to evil web pages. Not even a single insult. "
        "Boring!\n\nJust to make things slightly interesting, however, we add some "
        "ünicöde-ßtringß and different text sizes, colors and fonts"
    )
    # docling heads a Heading 1 "##" (its "#" is a Title's); ours, as ODT's, "#".
    for name, kind, heading in (
        ("harmless-clean.xml", "docx", "## "),
        ("harmless-clean-2003.xml", "wordml", "# "),
    ):
        parsed = parse_file(str(folder / name), name, OPTIONS)
        assert (parsed.file_type, parsed.text, parsed.warnings) == (kind, heading + body, []), name


def test_a_word_2003_xml_list_is_numbered_as_its_definition_says(tmp_path: Path) -> None:
    # Word writes each list's levels in w:lists (w:nfc 0 decimal, 4 lower letter, 23 a
    # bullet) and a paragraph names its list (w:ilfo) and level: all had been bullets.
    def item(text: str, ilfo: str = "", level: int = 0, style: str = "") -> str:
        props = f'<w:pStyle w:val="{style}"/>' if style else ""
        if ilfo:
            props += f'<w:listPr><w:ilvl w:val="{level}"/><w:ilfo w:val="{ilfo}"/></w:listPr>'
        return f"<w:p><w:pPr>{props}</w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"

    def level(ilvl: int, nfc: int, start: int = 1) -> str:
        return f'<w:lvl w:ilvl="{ilvl}"><w:start w:val="{start}"/><w:nfc w:val="{nfc}"/></w:lvl>'

    lists = (
        '<w:lists><w:listDef w:listDefId="0">' + level(0, 0) + level(1, 4) + level(2, 23)
        + '</w:listDef><w:listDef w:listDefId="1">' + level(0, 0, start=7) + "</w:listDef>"
        '<w:list w:ilfo="1"><w:ilst w:val="0"/></w:list>'
        '<w:list w:ilfo="2"><w:ilst w:val="1"/></w:list></w:lists>'
    )  # fmt: skip
    body = (
        item("Open the case.", "1") + item("CANARY-NESTED first", "1", 1)
        + item("CANARY-BULLET", "1", 2) + item("then", "1", 1)
        + item("Lift the lid.</w:t><w:br/><w:t>Gently.", "1")
        + item("An aside between steps.")
        + item("Close it.", "1") + item("again", "1", 1)
        + item("Seventh rule.", "2") + item("Eighth rule.", style="ListRule")
        + item("Numbering taken off.", "0")
    )  # fmt: skip
    document = (
        '<?xml version="1.0" encoding="UTF-8"?><w:wordDocument xmlns:w="http://schemas.'
        f'microsoft.com/office/word/2003/wordml">{lists}<w:styles>'
        '<w:style w:type="paragraph" w:styleId="ListRule"><w:name w:val="List Number"/><w:pPr>'
        '<w:listPr><w:ilfo w:val="2"/></w:listPr></w:pPr></w:style></w:styles>'
        f"<w:body>{body}</w:body></w:wordDocument>"
    )
    # A list goes on counting past a paragraph between its items, as Word numbers it;
    # a level under a new item above starts again; a style can make its paragraphs items;
    # an item's next line stays in it.
    expected = (
        "1. Open the case.\n   1. CANARY-NESTED first\n      - CANARY-BULLET\n   2. then\n"
        "2. Lift the lid.\n   Gently.\n\nAn aside between steps.\n\n3. Close it.\n   1. again\n"
        "7. Seventh rule.\n8. Eighth rule.\n\nNumbering taken off."
    )
    assert (
        parse_file(_file(tmp_path, "steps.xml", document.encode()), "steps.xml", OPTIONS).text
        == expected
    )


def test_a_binary_workbook_is_told_from_xlsx_by_its_parts(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.bin", b"\x83\x01\x00")
        archive.writestr("xl/worksheets/sheet1.bin", b"\x81\x01\x00")
    for name in ("book.xlsb", "book.xlsx", "book"):
        assert detect(_file(tmp_path, name, buf.getvalue()), name).kind == "xlsb"


def test_a_password_protected_legacy_workbook_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import python_calamine

    def locked(source: object) -> None:
        raise python_calamine.PasswordError("Workbook is password protected")

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", locked)
    data = docs.xls_bytes([["a", "b"], ["c", "d"]])
    with pytest.raises(EncryptedDocumentError, match=r"locked\.xls: password-protected"):
        parse_file(_file(tmp_path, "locked.xls", data), "locked.xls", OPTIONS)


def test_an_xlsx_workbooks_cell_comments_are_read_after_their_sheets_rows(tmp_path: Path) -> None:
    # Neither docling nor calamine reads them: a reviewer's note on a total was lost,
    # and a sheet of comments alone skipped as blank.
    import openpyxl
    from openpyxl.comments import Comment

    book = openpyxl.Workbook()
    book.active.title = "Plain"
    book.active.append(["a", "b"])
    budget = book.create_sheet("Budget")
    budget.append(["Item", "Cost"])
    budget.append(["Desks", 1200])
    budget["B2"].comment = Comment("Ann:\nCANARY-NOTE from the Q3 audit", "Ann")  # Excel's way
    budget["A1"].comment = Comment("CANARY-PLAIN says Bob", "Bob")
    book.create_sheet("Notes")["C3"].comment = Comment("CANARY-ALONE", "Ann")
    book.save(saved := io.BytesIO())
    # As Excel writes a note: runs, the author's name bold in the first; a phonetic
    # reading (rPh) is not the text.
    runs = (
        "<r><rPr><b/></rPr><t>Ann:</t></r><r><t xml:space='preserve'>\nCANARY-NOTE from</t>"
        "</r><rPh sb='0' eb='1'><t>FURIGANA</t></rPh><r><t> the Q3 audit</t></r>"
    )
    out = io.BytesIO(
        docs._repacked(
            saved.getvalue(),
            {
                "xl/comments/comment1.xml": lambda t: t.replace(
                    "<t>Ann:\nCANARY-NOTE from the Q3 audit</t>", runs
                )
            },
            {},
        )
    )
    parsed = parse_file(_file(tmp_path, "c.xlsx", out.getvalue()), "c.xlsx", OPTIONS)
    assert [s.page for s in parsed.segments] == [1, 2, 3]
    assert parsed.segments[1].text.endswith(
        "| Desks  |   1200 |\n\nComment on A1 (Bob): CANARY-PLAIN says Bob\n"
        "Comment on B2 (Ann): CANARY-NOTE from the Q3 audit"
    )
    assert parsed.segments[2].text == "# Sheet: Notes\n\nComment on C3 (Ann): CANARY-ALONE"
    assert "Comment" not in parsed.segments[0].text
    rows = parse_file(
        _file(tmp_path, "c.xlsx", out.getvalue()), "c.xlsx", ParseOptions(xlsx_stream_size=0)
    )
    assert rows.parser == "calamine-rows" and rows.segments[2].text == parsed.segments[2].text
    assert rows.segments[1].text.endswith("Comment on B2 (Ann): CANARY-NOTE from the Q3 audit")

    # Threaded comments and their replies (Excel 365), by their authors' names; the
    # note Excel writes again for older versions is not read twice.
    ns = 'xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"'
    thread = (
        f'<ThreadedComments {ns}><threadedComment ref="B2" personId="{{P1}}" id="{{C1}}">'
        "<text>CANARY-THREAD is this final?</text></threadedComment>"
        '<threadedComment ref="B2" personId="{P2}" id="{C2}" parentId="{C1}">'
        "<text>CANARY-REPLY not yet</text></threadedComment></ThreadedComments>"
    )
    people = (
        f'<personList {ns}><person displayName="Ann Lee" id="{{P1}}"/>'
        '<person displayName="Bob Roe" id="{P2}"/></personList>'
    )
    threaded = docs._repacked(
        out.getvalue(),
        {
            "xl/comments/comment1.xml": lambda t: t.replace(
                "CANARY-NOTE", "[Threaded comment] Your version"
            )
        },
        {"xl/threadedComments/threadedComment1.xml": thread, "xl/persons/person.xml": people},
        relations={
            "xl/worksheets/_rels/sheet2.xml.rels": [
                ("rT", "threadedComment", "../threadedComments/threadedComment1.xml")
            ],
            "xl/_rels/workbook.xml.rels": [("rP", "person", "persons/person.xml")],
        },
    )
    parsed = parse_file(_file(tmp_path, "t.xlsx", threaded), "t.xlsx", OPTIONS)
    assert parsed.segments[1].text.endswith(
        "| Desks  |   1200 |\n\nComment on B2 (Ann Lee): CANARY-THREAD is this final?\n"
        "Reply on B2 (Bob Roe): CANARY-REPLY not yet"
    )
    assert "Threaded comment" not in parsed.text

    # A part its links name missing: no comments, and no error (the rows' reader judges).
    from rag_ingest.parsers.ooxml_comments import xlsx_comments

    lost = docs._repacked(
        threaded, {"_rels/.rels": lambda t: t.replace("xl/workbook", "xl/no")}, {}
    )
    assert xlsx_comments(_file(tmp_path, "l.xlsx", lost)) == []
    # A workbook of comments alone: read, not skipped as blank.
    alone = openpyxl.Workbook()
    alone.active["B2"].comment = Comment("CANARY-ONLY", "Ann")
    alone.save(out := io.BytesIO())
    parsed = parse_file(_file(tmp_path, "a.xlsx", out.getvalue()), "a.xlsx", OPTIONS)
    assert (parsed.text, parsed.parser) == (
        "# Sheet: Sheet\n\nComment on B2 (Ann): CANARY-ONLY",
        "xlsx-comments",
    )


def test_an_xlsx_sheets_text_boxes_are_read_after_its_rows(tmp_path: Path) -> None:
    # openpyxl, under docling, and calamine leave a sheet's shapes out: LibreOffice's
    # tdf140489.xlsx lost its "Tip: Enter your starting amount ..." box, and
    # bnc762542.xlsx, of text boxes alone, was skipped as blank.
    xdr = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
    drawn = "http://schemas.openxmlformats.org/drawingml/2006/main"

    def shape(*paragraphs: str) -> str:
        body = "".join(f"<a:p><a:r><a:t>{p}</a:t></a:r><a:r><a:t/></a:r></a:p>" for p in paragraphs)
        return (
            '<xdr:sp><xdr:nvSpPr><xdr:cNvPr id="2" name="TextBox 1"/><xdr:cNvSpPr txBox="1"/>'
            f"</xdr:nvSpPr><xdr:spPr/><xdr:txBody><a:bodyPr/>{body}</xdr:txBody></xdr:sp>"
        )

    cell = "<xdr:col>0</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>0</xdr:row>"
    cell += "<xdr:rowOff>0</xdr:rowOff>"
    anchor = (
        f"<xdr:twoCellAnchor><xdr:from>{cell}</xdr:from><xdr:to>{cell}</xdr:to>"
        "{}<xdr:clientData/></xdr:twoCellAnchor>"
    )
    drawing = (
        f'<xdr:wsDr xmlns:xdr="{xdr}" xmlns:a="{drawn}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        + anchor.format(shape("CANARY-TIP", "", "Enter  your amount"))
        + anchor.format(f"<xdr:grpSp>{shape('CANARY-GROUPED')}<xdr:pic/></xdr:grpSp>")
        + anchor.format(
            f'<mc:AlternateContent><mc:Choice Requires="a14">{shape("CANARY-CHOICE")}'
            f"</mc:Choice><mc:Fallback>{shape('CANARY-CHOICE')}</mc:Fallback>"
            "</mc:AlternateContent>"
        )
        + anchor.format('<xdr:sp><xdr:nvSpPr><xdr:cNvPr id="3" name="Box"/></xdr:nvSpPr></xdr:sp>')
        + "</xdr:wsDr>"
    )
    book = docs._repacked(
        docs.xlsx_bytes([["Item", "Cost"], ["Desks", 1200]]),
        {},
        {
            "xl/drawings/drawing1.xml": drawing,
            "xl/worksheets/_rels/sheet1.xml.rels": (
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                'relationships"><Relationship Id="rId9" Type="http://schemas.openxmlformats.org/'
                'officeDocument/2006/relationships/drawing" Target="../drawings/drawing1.xml"/>'
                "</Relationships>"
            ),
        },
        types={
            "xl/drawings/drawing1.xml": "application/vnd.openxmlformats-officedocument.drawing+xml"
        },
    )
    parsed = parse_file(_file(tmp_path, "b.xlsx", book), "b.xlsx", OPTIONS)
    # Its table padded as docling writes it, or not as calamine does: openpyxl, under
    # docling, warns of the drawing, which fails it over to calamine where warnings are
    # errors (as in these tests).
    assert re.sub(" +", " ", parsed.text).endswith(
        "| Desks | 1200 |\n\nText box: CANARY-TIP Enter your amount\n"
        "Text box: CANARY-GROUPED\nText box: CANARY-CHOICE"
    )


def test_an_xls_workbooks_comments_follow_their_sheets_rows(tmp_path: Path) -> None:
    """calamine reads no comment of an .xls: LibreOffice wrote this one from the ODS
    beside it (tests/fixtures/libreoffice/README.md)."""
    from rag_ingest.parsers.biff import xls_comments

    fixture = Path(__file__).parent.parent / "fixtures" / "libreoffice" / "budget.xls"
    parsed = parse_file(str(fixture), "budget.xls", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (
            1,
            "# Sheet: Budget\n\n| item | cost |\n|---|---|\n| desks | 1200 |\n\n"
            "Comment on B2 (Ann Lee): CANARY-XLS-NOTE from the Q3 audit",
        ),
        # A sheet of a comment alone, in UTF-16 (its name in 8 bits), two paragraphs.
        (
            2,
            "# Sheet: Notes\n\nComment on C3 (Bob Ro\u00e9): CANARY-ALONE caf\u00e9 \u20ac5 "
            "second line",
        ),
    ]
    data = fixture.read_bytes()
    # Cut short, or past where its sheets are listed: what is read, and no error.
    import olefile

    with olefile.OleFileIO(str(fixture)) as ole:
        stream = ole.openstream("Workbook").read()
    from rag_ingest.parsers import biff

    assert [len(biff._notes(stream[:n], 1236)) for n in (2067 + 4 + 12, 2067 + 4 + 19)] == [0, 1]
    assert biff._sheets(stream[:1030]) == [("Budget", 1236)]  # the second's name cut
    assert xls_comments(_file(tmp_path, "x.xls", data[: len(data) // 2])) == []
    assert xls_comments(_file(tmp_path, "t.xls", b"not an OLE file")) == []
    # Damage olefile raises other errors for (found by fuzzing): no comments, no error.
    assert xls_comments(_file(tmp_path, "v.xls", data[:33] + b"J" + data[34:])) == []  # ValueError
    assert xls_comments(_file(tmp_path, "o.xls", data[:32] + b"]" + data[33:])) == []  # Overflow
    # An encrypted workbook's records past FILEPASS are not read as notes.
    filepass = struct.pack("<HH", 0x002F, 0)
    assert biff._sheets(filepass + stream) == []

    # As Excel writes them: the text after the author's name, in two CONTINUE records
    # (8-bit, then UTF-16); a text box's TXO (an OBJ of another type) is no note; an
    # embedded chart's substream (BOF ... EOF) nests in the sheet's.
    def record(kind: int, data: bytes) -> bytes:
        return struct.pack("<HH", kind, len(data)) + data

    def obj(kind: int, ident: int) -> bytes:
        return record(0x5D, struct.pack("<HHHHH", 0x15, 0x12, kind, ident, 0) + bytes(12))

    def txo(text: bytes, count: int) -> bytes:
        return record(0x1B6, bytes(10) + struct.pack("<HH", count, 0) + bytes(6)) + text

    chart = record(0x809, bytes(16)) + record(0x1C, bytes(8)) + record(0x0A, b"")
    sheet = (
        record(0x809, bytes(16))
        + obj(0x06, 1)  # a text box
        + txo(record(0x3C, b"\0CANARY-BOX"), 10)
        + chart
        + obj(0x19, 2)
        + txo(
            record(0x3C, b"\0Ann:\nCANARY-EXCEL ")
            + record(0x3C, b"\1" + "d\u00e9".encode("utf-16-le")),
            20,
        )
        + record(0x1C, struct.pack("<HHHHHB", 3, 27, 0, 2, 3, 0) + b"Ann\0")
        + record(0x1C, struct.pack("<HHHHHB", 4, 0, 0, 9, 3, 0) + b"Cy\0\0")  # no text
        + record(0x0A, b"")
        + record(0x1C, struct.pack("<HHHHHB", 0, 0, 0, 2, 3, 0) + b"Bob\0")  # past the sheet
    )
    assert biff._notes(sheet, 0) == ["Comment on AB4 (Ann): CANARY-EXCEL d\u00e9"]


def test_a_stray_value_far_from_the_data_is_refused_before_any_reader_runs(
    tmp_path: Path,
) -> None:
    import io

    import openpyxl

    from rag_ingest.errors import DocumentTooLargeError

    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active["XFD1048576"] = "stray"  # docling: 22 s, 2.4 GB; calamine: a 512 GB alloc
    out = io.BytesIO()
    book.save(out)
    path = _file(tmp_path, "far.xlsx", out.getvalue())
    for options in (OPTIONS, ParseOptions(xlsx_stream_size=0)):
        with pytest.raises(DocumentTooLargeError, match=r"spans A1:XFD1048576, 17,179,869,184"):
            parse_file(path, "far.xlsx", options)
    # A dimension spanning more than the cells written (libxlsxwriter's takes in a
    # comment's cell, as its comment03.xlsx shows): the cells decide.
    book = openpyxl.Workbook()
    book.active.append(["CANARY-NEAR", "b"])
    book.save(out := io.BytesIO())
    wide = docs._repacked(
        out.getvalue(),
        {
            "xl/worksheets/sheet1.xml": lambda t: re.sub(
                r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', t
            )
        },
        {},
    )
    assert "CANARY-NEAR" in parse_file(_file(tmp_path, "w.xlsx", wide), "w.xlsx", OPTIONS).text
    # The cells' span is read in parts: a cell's tag cut between two is still seen.
    from rag_ingest.parsers.workbook import _cells_span

    head = b'<sheetData><row r="1"><c r="A1"><v>1</v></c></row>'
    row = b'<row r="1048576">'
    pad = b" " * ((1 << 20) - len(head) - len(row) - 3)  # the first read ends in "<c "
    far = row + b'<c r="XFD1048576"><v>2</v></c></row></sheetData>'
    assert _cells_span(io.BytesIO(head + pad + far)) == ("A1:XFD1048576", 17_179_869_184)
    assert _cells_span(io.BytesIO(b"<sheetData/>")) == ("", 0)
    # A tall sheet under the limit is not refused.
    from rag_ingest.parsers.workbook import measure_sheets

    book = openpyxl.Workbook()
    for r in range(3000):
        book.active.append([r] * 10)
    book.active["J30000"] = "last"  # 300,000 cells, under the limit
    book.save(tmp_path / "tall.xlsx")
    assert measure_sheets(str(tmp_path / "tall.xlsx"), "tall.xlsx") > 0


def test_running_out_of_memory_is_not_reported_as_a_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker turns a MemoryError into ParserMemoryError; wrapped as "could not be
    # parsed", it tried calamine next and then failed as an unpicklable exception.
    from docling.backend.msexcel_backend import MsExcelDocumentBackend

    def exhausted(self: object) -> None:
        raise MemoryError

    monkeypatch.setattr(MsExcelDocumentBackend, "convert", exhausted)
    with pytest.raises(MemoryError) as raised:
        parse_file(_workbook(tmp_path), "orders.xlsx", OPTIONS)
    assert not isinstance(raised.value, DocumentError)
    import python_calamine

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", exhausted)
    with pytest.raises(MemoryError) as raised:
        parse_file(_workbook(tmp_path), "orders.xlsx", ParseOptions(xlsx_stream_size=0))
    assert not isinstance(raised.value, DocumentError)


def test_docling_archive_limits_are_a_zip_bomb_error_with_its_reason(tmp_path: Path) -> None:
    import os
    import zipfile

    # One member past docling's own 128 MiB limit, under ours (512 MiB, ratio 200).
    path = tmp_path / "big.docx"
    body = os.urandom(65 * 1024 * 1024).hex()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", f"<w:document><w:t>{body}</w:t></w:document>")
    del body
    with pytest.raises(ZipBombError, match=r"big\.docx: .*limit"):
        parse_file(str(path), "big.docx", OPTIONS)


def test_a_web_page_keeps_its_title(tmp_path: Path) -> None:
    page = (
        b"<html><head><title>CANARY-TITLE Pricing &amp; plans</title></head>"
        b"<body><p>Starter costs 9 euros.</p></body></html>"
    )
    parsed = parse_file(_file(tmp_path, "p.html", page), "p.html", OPTIONS)
    assert parsed.text == "# CANARY-TITLE Pricing & plans\n\nStarter costs 9 euros."
    # A title the page already shows as its heading is not said twice.
    same = b"<html><head><title>FAQ</title></head><body><h1>FAQ</h1><p>Yes.</p></body></html>"
    parsed = parse_file(_file(tmp_path, "q.html", same), "q.html", OPTIONS)
    assert parsed.text == "# FAQ\n\nYes."
    # Nor a heading that is its part of a title naming the site too: the page is headed
    # by the title alone (both had been written, one above the other).
    for separator in (" - ", " | ", " \u2014 ", " :: "):
        title = f"What is Ownership?{separator}The Rust Book".encode()
        sited = b"<html><head><title>" + title + b"</title></head><body>"
        sited += b"<h1>What Is  Ownership?</h1><p>Each value has an owner.</p></body></html>"
        parsed = parse_file(_file(tmp_path, "o.html", sited), "o.html", OPTIONS)
        assert parsed.text == f"# {title.decode()}\n\nEach value has an owner.", parsed.text
    # A heading that is not a part of it, or does not open the page, stays under it.
    for body, text in (
        (b"<h1>Installing</h1><p>Run it.</p>", "# Guide | Acme\n\n# Installing\n\nRun it."),
        (b"<p>Run it.</p><h2>Guide</h2><p>Then.</p>", "# Guide | Acme\n\nRun it.\n\n## Guide"),
    ):
        page = b"<html><head><title>Guide | Acme</title></head><body>" + body + b"</body></html>"
        parsed = parse_file(_file(tmp_path, "g.html", page), "g.html", OPTIONS)
        assert parsed.text.startswith(text), parsed.text
    # In the charset the page declares, as its body is read.
    for declaration in (
        '<meta charset="windows-1252">',
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
        "",  # undeclared and not UTF-8: the legacy default
    ):
        legacy = f"<html><head>{declaration}<title>Caf\u00e9 cr\u00e8me</title></head>"
        legacy += "<body><p>Men\u00fc du jour.</p></body></html>"
        data = legacy.encode("latin-1" if "8859" in declaration else "cp1252")
        parsed = parse_file(_file(tmp_path, "c.html", data), "c.html", OPTIONS)
        assert parsed.text.startswith("# Caf\u00e9 cr\u00e8me\n\n"), parsed.text


def test_office_text_is_the_words_not_markdown_escapes(tmp_path: Path) -> None:
    """docling writes Markdown for a renderer by default: ``max\\_retries``, ``AT&amp;T``,
    ``a &lt; b`` and an ``<!-- image -->`` line. A chunk holds the words as written."""
    words = "Set max_retries to 3 when a < b && c > d at AT&T."
    html_page = (
        "<html><body><h1>Retry_policy</h1><p>Set max_retries to 3 when a &lt; b &amp;&amp; "
        'c &gt; d at AT&amp;T.</p><img src="arch.png" alt="arch"><p>End.</p></body></html>'
    )
    markdown = f"# Retry_policy\n\n{words}\n\n![arch](arch.png)\n\nEnd.\n"
    files = {
        "p.html": html_page.encode(),
        "p.md": markdown.encode(),
        "p.docx": docs.docx_bytes("Retry_policy", {"Limits": words}),
        "p.pptx": docs.pptx_bytes([("Retry_policy", words)]),
    }
    for name, data in files.items():
        text = parse_file(_file(tmp_path, name, data), name, OPTIONS).text
        assert words in text and "Retry_policy" in text, (name, text)
        assert "\\_" not in text and "&amp;" not in text and "&lt;" not in text, (name, text)
        assert "<!--" not in text, (name, text)


def test_no_space_is_put_between_a_link_or_bold_run_and_the_punctuation_after_it(
    tmp_path: Path,
) -> None:
    """docling joins a paragraph's runs with a space each: "[the docs](...) , or"."""
    page = (
        b'<html><body><p>See <a href="https://example.org/docs">the docs</a>, or '
        b'<b>Python</b>\'s <i>guide</i>. Then (<a href="/faq">this</a>)!</p>'
        b"<p>Quoi ? Un <b>mot</b> 'cit\xc3\xa9' ici.</p></body></html>"
    )
    text = parse_file(_file(tmp_path, "p.html", page), "p.html", OPTIONS).text
    assert "See [the docs](https://example.org/docs), or **Python**'s *guide*. Then (this)!" in (
        text
    ), text
    # A space inside one run is the author's, and one before an opening quote stays.
    assert "Quoi ? Un **mot** 'cit\u00e9' ici." in text, text
    data = docs.docx_runs([("Call ", ""), ("retry()", "bold"), (", then stop.", "")])
    text = parse_file(_file(tmp_path, "p.docx", data), "p.docx", OPTIONS).text
    assert "Call **retry()**, then stop." in text, text


def test_an_opendocument_text_is_its_words_as_markdown(tmp_path: Path) -> None:
    parsed = parse_file(_file(tmp_path, "m.odt", docs.odt_bytes()), "m.odt", OPTIONS)
    assert parsed.file_type == "odt" and parsed.parser == "odf-odt"
    assert parsed.text == (
        "# Field manual\n\n"
        "# Safety\n\n"
        "CANARY-ODT wear gloves  at all times (note: CANARY-FOOTNOTE since 2019).\n"
        "New line.\n\n"
        "## Kit\n\n"
        "- helmet\n  - chin strap\n- boots\n\n"
        "1. check straps\n   - twice\n2. sign\n\n"  # numbered by its list style
        "See box.\n\n"
        "CANARY-BOX aside\n\n"
        "| size | count |\n|---|---|\n| L \\| XL | 4 |\n\n"
        "Comments:\n- Comment: CANARY-COMMENT fix this"  # after the text, not in it
    )
    # Not the document's text: a tracked deletion, the table of contents.
    assert "CANARY-DELETED" not in parsed.text and "Safety\t3" not in parsed.text

    # A comment's author and the passage it marks (within its paragraph, as LibreOffice
    # writes one); one past its paragraph, or a point, marks none.
    def comment(name: str | None, text: str) -> str:
        named = f' office:name="{name}"' if name else ""
        return (
            f"<office:annotation{named}><dc:creator>Ann Lee</dc:creator>"
            f"<dc:date>2026-01-02</dc:date><text:p>{text}</text:p></office:annotation>"
        )

    body = (
        f"<text:p>The term is {comment('a1', 'CANARY-C1 changed in v3')}"
        "<text:span>CANARY-MARKED three</text:span> years"
        '<office:annotation-end office:name="a1"/> from signing.</text:p>'
        f"<text:p>Point{comment(None, 'CANARY-C2 a point')} here and "
        f"{comment('a3', 'CANARY-C3 across')}on</text:p>"
        '<text:p>next<office:annotation-end office:name="a3"/></text:p>'
    )
    noted = parse_file(_file(tmp_path, "n.odt", docs.odf_bytes("text", body)), "n.odt", OPTIONS)
    assert noted.text == (
        "The term is CANARY-MARKED three years from signing.\n\nPoint here and on\n\nnext\n\n"
        'Comments:\n- Comment (Ann Lee) on "CANARY-MARKED three years": CANARY-C1 changed in v3\n'
        "- Comment (Ann Lee): CANARY-C2 a point\n- Comment (Ann Lee): CANARY-C3 across"
    )

    # Headings numbered as list items, as LibreOffice keeps a Word document's numbered
    # headings: headings, not "1. # Scope", which no reader of Markdown takes for one.
    numbered = (
        '<text:list><text:list-item><text:h text:outline-level="1">CANARY-SCOPE</text:h>'
        "</text:list-item></text:list><text:p>Text.</text:p>"
        '<text:list><text:list-item><text:list><text:list-item><text:h text:outline-level="2">'
        "Terms</text:h><text:p>CANARY-ITEM</text:p></text:list-item></text:list>"
        "</text:list-item></text:list>"
    )
    headed = parse_file(
        _file(tmp_path, "h.odt", docs.odf_bytes("text", numbered)), "h.odt", OPTIONS
    )
    assert headed.text == "# CANARY-SCOPE\n\nText.\n\n## Terms\nCANARY-ITEM"

    # A deletion whose text is in the body between marks, as LibreOffice writes some
    # into a flat .fodt: left out, across paragraphs, a note opening one too (that had
    # failed untyped, IndexError: LibreOffice's tdf85610.fodt); an insertion's text kept.
    regions = (
        '<text:tracked-changes><text:changed-region text:id="d1"><text:deletion>'
        "<office:change-info/></text:deletion></text:changed-region>"
        '<text:changed-region text:id="i1"><text:insertion><office:change-info/>'
        "</text:insertion></text:changed-region></text:tracked-changes>"
    )
    marked = (
        f'{regions}<text:p>Keep <text:change-start text:change-id="i1"/>CANARY-INSERTED'
        '<text:change-end text:change-id="i1"/> and <text:change-start text:change-id="d1"/>'
        "CANARY-GONE<text:span>gone</text:span> too</text:p><text:p><text:note><text:note-body>"
        "<text:p>CANARY-NOTE-GONE</text:p></text:note-body></text:note>CANARY-GONE-2</text:p>"
        '<text:p>also gone<text:change-end text:change-id="d1"/>back.</text:p>'
    )
    for name, data in (
        ("t.odt", docs.odf_bytes("text", marked)),
        ("t.fodt", docs.flat_odf_bytes("text", marked)),
    ):
        text = parse_file(_file(tmp_path, name, data), name, OPTIONS).text
        assert text == "Keep CANARY-INSERTED and\n\nback."

    locked = docs.odf_bytes("text", "<text:p>secret</text:p>", encrypted=True)
    with pytest.raises(EncryptedDocumentError, match="encrypted OpenDocument"):
        parse_file(_file(tmp_path, "l.odt", locked), "l.odt", OPTIONS)
    # Hostile counts and nesting: bounded, or a typed error, not a 1 GB string or a crash.
    hostile = (
        '<text:h text:outline-level="x">Odd</text:h>'
        '<text:p>a<text:s text:c="1000000000"/>b</text:p>'
    )
    odd = docs.odf_bytes("text", hostile)
    assert parse_file(_file(tmp_path, "o.odt", odd), "o.odt", OPTIONS).text == (
        "# Odd\n\na" + " " * 100 + "b"
    )
    spans = "<text:span>" * 5000 + "x" + "</text:span>" * 5000
    deep = docs.odf_bytes("text", f"<text:p>{spans}</text:p>")
    with pytest.raises(CorruptDocumentError, match="nests too deeply"):
        parse_file(_file(tmp_path, "d.odt", deep), "d.odt", OPTIONS)
    with pytest.raises(EmptyDocumentError):
        parse_file(
            _file(tmp_path, "e.odt", docs.odf_bytes("text", "<text:p> </text:p>")), "e.odt", OPTIONS
        )


def test_opendocument_slides_are_pages_with_their_notes_and_no_footer(tmp_path: Path) -> None:
    deck = docs.odp_bytes(
        [("Plan", "ship CANARY-ONE", "mention risk"), ("Budget", "CANARY-TWO", "")]
    )
    parsed = parse_file(_file(tmp_path, "d.odp", deck), "d.odp", OPTIONS)
    assert parsed.pages == 2
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, "# Plan\n\n- ship CANARY-ONE\n\nSpeaker notes: mention risk"),
        (2, "# Budget\n\n- CANARY-TWO"),
    ]


def test_an_epub_is_its_chapters_in_reading_order(tmp_path: Path) -> None:
    book = docs.epub_bytes([("One", "CANARY-FIRST max_retries"), ("Two", "CANARY-SECOND a &lt; b")])
    parsed = parse_file(_file(tmp_path, "b.epub", book), "b.epub", OPTIONS)
    assert parsed.file_type == "epub"
    # The spine lists chapter two first; the navigation document is not text.
    assert parsed.text == (
        "# CANARY-BOOK Field Guide\n\n# Two\n\nCANARY-SECOND a < b\n\n"
        "# One\n\nCANARY-FIRST max_retries"
    )
    # A chapter is a page: its place in the reading order, which a chunk's pages say.
    assert [s.page for s in parsed.segments] == [1, 2] and parsed.pages == 2
    assert parsed.segments[1].text == "# One\n\nCANARY-FIRST max_retries"
    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    small = ChunkSettings(chunk_tokens=16, overlap_tokens=0, whole_document_tokens=0)
    plan = chunk_document(parsed, small, {})
    first = next(c for c in plan.chunks if "CANARY-FIRST" in c.text)
    assert first.metadata["page_start"] == first.metadata["page_end"] == 2
    drm = docs.epub_bytes([("One", "x")], drm=True)
    with pytest.raises(EncryptedDocumentError, match="DRM"):
        parse_file(_file(tmp_path, "d.epub", drm), "d.epub", OPTIONS)
    # Named for what it is not, it is routed by its mimetype member.
    assert detect(_file(tmp_path, "b.zip", book), "b.zip").kind == "epub"
    assert detect(_file(tmp_path, "m.bin", docs.odt_bytes()), "m.bin").kind == "odt"


def test_an_opendocument_or_epub_without_its_mimetype_is_known_by_its_manifest(
    tmp_path: Path,
) -> None:
    # A damaged copy (a byte gone in "mimetype", or the member lost) had been refused as
    # "a zip or tar archive, not a .odt file": its manifest or container says what it is.
    import zipfile

    def without_mimetype(data: bytes, mimetype: bytes | None) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                if info.filename != "mimetype":
                    dst.writestr(info, src.read(info))
                elif mimetype is not None:
                    dst.writestr(info, mimetype)
        return out.getvalue()

    deck = docs.odp_bytes([("Plan", "ship CANARY-ODP", "")])
    book = docs.epub_bytes([("One", "CANARY-EPUB first")])
    for name, data, kind, canary in (
        ("m.odt", docs.odt_bytes(), "odt", "CANARY-ODT"),
        ("d.odp", deck, "odp", "CANARY-ODP"),
        ("b.epub", book, "epub", "CANARY-EPUB"),
    ):
        for mimetype in (None, b"application/v&d.oasis.opendocument", b"app=ica&<on/e"):
            damaged = _file(tmp_path, name, without_mimetype(data, mimetype))
            assert detect(damaged, name).kind == kind, (name, mimetype)
            assert canary in parse_file(damaged, name, OPTIONS).text
    # A zip of other files: a manifest whose own entry is of no OpenDocument type (an
    # embedded object's is not the file's), a container with no package document.
    manifest = (
        b'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/x"/>'
        b'<manifest:file-entry manifest:full-path="Object 1/" '
        b'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    )
    for files in (
        {"content.xml": b"<x/>", "META-INF/manifest.xml": manifest},
        {"META-INF/container.xml": b"<container/>", "a.txt": b"CANARY"},
    ):
        assert detect(_file(tmp_path, "o.zip", docs.zip_bytes(files)), "o.zip").kind == "archive"


def test_an_opendocument_master_or_web_document_is_text_and_a_base_file_is_not(
    tmp_path: Path,
) -> None:
    # They had been read as zips of XML files: LibreOffice's biblio.odb gave its
    # settings.xml and content.xml, namespaces and all.
    body = "<text:h text:outline-level='1'>Plan</text:h><text:p>CANARY-MASTER text</text:p>"
    for mime, name in (
        ("text-master", "book.odm"),
        ("text-master-template", "book"),
        ("text-web", "page.oth"),
    ):
        path = _file(tmp_path, name, docs.odf_bytes("text", body, mime=mime))
        assert detect(path, name).kind == "odt", name
        parsed = parse_file(path, name, OPTIONS)
        assert parsed.file_type == "odt" and "CANARY-MASTER text" in parsed.text
    # Passed over by its name, as a .jar is (the walk, uploads and archives ask no_text).
    said = "a LibreOffice Base database (export its tables as CSV) (.odb)"
    assert no_text("biblio.odb") == no_text("Biblio.ODB") == said


def test_a_flat_opendocument_file_is_read_as_its_package(tmp_path: Path) -> None:
    # .fodt, .fods, .fodp: the package's parts in one XML document, as LibreOffice saves
    # for version control. They had been read as text, every tag and style a chunk.
    package = parse_file(_file(tmp_path, "m.odt", docs.odt_bytes()), "m.odt", OPTIONS)
    flat = docs.odt_bytes(flat=True)
    for name in ("m.fodt", "m.xml", "m"):  # by its root, whatever its name
        path = _file(tmp_path, name, flat)
        assert detect(path, name).kind == "fodt", name
        parsed = parse_file(path, name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("odt", "odf-odt"), name
        assert parsed.text == package.text, name
        assert "CANARY-DELETED" not in parsed.text and "<text:" not in parsed.text
    rows = [["item", "count"], ["helmet", 4], ["boots", 7]]
    sheet_path = _file(tmp_path, "s.fods", docs.ods_bytes(rows, flat=True))
    sheet = parse_file(sheet_path, "s.fods", OPTIONS)
    assert sheet.file_type == "ods" and sheet.text == (
        "# Sheet: Calc\n\n| item | count |\n|---|---|\n| helmet | 4 |\n| boots | 7 |"
    )
    slides = [("Roadmap", "CANARY-SLIDE ship it", "say CANARY-NOTES"), ("Risks", "late", "none")]
    deck_path = _file(tmp_path, "d.fodp", docs.odp_bytes(slides, flat=True))
    deck = parse_file(deck_path, "d.fodp", OPTIONS)
    odp = parse_file(_file(tmp_path, "d.odp", docs.odp_bytes(slides)), "d.odp", OPTIONS)
    assert deck.file_type == "odp" and deck.pages == 2
    assert [s.text for s in deck.segments] == [s.text for s in odp.segments]
    assert "Speaker notes: say CANARY-NOTES" in deck.text and "ACME confidential" not in deck.text

    # Its named styles (a Title paragraph through a style of the author's) and its
    # metadata (a title not in the text) count as the package's styles.xml and meta.xml.
    body = '<text:p text:style-name="P9">Annual report</text:p><text:p>Sales grew.</text:p>'
    titled = docs.flat_odf_bytes(
        "text",
        body,
        styles='<style:style style:name="P9" style:parent-style-name="Cover"/>',
        office_styles='<style:style style:name="Cover" style:parent-style-name="Title"/>',
        meta="<dc:title>CANARY-META Acme 2026</dc:title>",
    )
    parsed = parse_file(_file(tmp_path, "r.fodt", titled), "r.fodt", OPTIONS)
    assert parsed.text == "# CANARY-META Acme 2026\n\n# Annual report\n\nSales grew."

    # A chart held whole in the file is read as a package's "Object 1" is.
    chart = docs.odf_chart("CANARY-CHART units", [("2019", "25"), ("2020", "NaN")])
    body = f"<text:p>Before.<draw:frame><draw:object>{chart}</draw:object></draw:frame></text:p>"
    with_chart = docs.flat_odf_bytes("text", f"{body}<text:p>After.</text:p>")
    parsed = parse_file(_file(tmp_path, "c.fodt", with_chart), "c.fodt", OPTIONS)
    assert parsed.text == (
        "Before.\n\nBar chart: CANARY-CHART units\n\n"
        "|  | Units |\n|---|---|\n| 2019 | 25 |\n| 2020 |  |\n\nAfter."
    )

    # The package is a temporary file, removed after.
    temp = tmp_path / "temp"
    temp.mkdir()
    in_temp = dataclasses.replace(OPTIONS, temp_dir=str(temp))
    assert parse_file(_file(tmp_path, "t.fodt", flat), "t.fodt", in_temp).text == package.text
    assert list(temp.iterdir()) == []

    # Not a flat OpenDocument file, or not XML at all: damaged, said so.
    content = flat.replace(b"<office:document ", b"<office:document-content ")
    content = content.replace(b"</office:document>", b"</office:document-content>")
    with pytest.raises(CorruptDocumentError, match="not a flat OpenDocument file"):
        parse_file(_file(tmp_path, "x.fodt", content), "x.fodt", OPTIONS)
    # Cut short: read as far as it goes, said; cut before its body, damaged.
    _mended_as(tmp_path, flat[:-200], "y.fodt", package.text, "unclosed token")
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(
            _file(tmp_path, "h.fodt", flat[: flat.index(b"<office:body")]), "h.fodt", OPTIONS
        )
    spans = "<text:span>" * 5000 + "x" + "</text:span>" * 5000
    deep = docs.flat_odf_bytes("text", f"<text:p>{spans}</text:p>")
    with pytest.raises(CorruptDocumentError, match="nests too deeply"):
        parse_file(_file(tmp_path, "z.fodt", deep), "z.fodt", OPTIONS)


def test_a_flat_opc_package_is_read_as_the_docx_or_pptx_it_stands_for(tmp_path: Path) -> None:
    # Word's "Word XML Document" and PowerPoint's "XML Presentation": the package's parts
    # in one XML file (pkg:package), as Office add-ins and document generators write too.
    # They had been read as text, every part's XML a chunk.
    docx = docs.docx_bytes("Plan", {"Scope": "CANARY-OPC scope text.", "Risks": "none"})
    package = parse_file(_file(tmp_path, "plan.docx", docx), "plan.docx", OPTIONS)
    for name, data in (
        ("plan.xml", docs.flat_opc_bytes(docx)),
        ("plan", docs.flat_opc_bytes(docx)),
        ("bare.xml", docs.flat_opc_bytes(docx, progid=None)),  # known by its parts
    ):
        path = _file(tmp_path, name, data)
        assert detect(path, name).kind == "docx-xml", name
        parsed = parse_file(path, name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("docx", "docling-docx"), name
        assert parsed.text == package.text and "CANARY-OPC scope text." in parsed.text, name
        assert parsed.warnings == [], name
    # Office's processing instruction names it when no part's name comes early.
    padding = (
        b'<pkg:part pkg:name="/customXml/item1.xml" pkg:contentType="application/xml">'
        b"<pkg:xmlData><x>" + b"padding " * 1500 + b"</x></pkg:xmlData></pkg:part>"
    )
    late = docs.flat_opc_bytes(docx).replace(b'2006/xmlPackage">', b'2006/xmlPackage">' + padding)
    path = _file(tmp_path, "late.xml", late)
    assert detect(path, "late.xml").kind == "docx-xml"
    assert parse_file(path, "late.xml", OPTIONS).text == package.text
    pptx = docs.pptx_bytes([("Roadmap", "CANARY-OPC-SLIDE ship it"), ("Risks", "late")])
    deck = parse_file(_file(tmp_path, "d.pptx", pptx), "d.pptx", OPTIONS)
    flat = docs.flat_opc_bytes(pptx, progid="PowerPoint.Show")
    parsed = parse_file(_file(tmp_path, "d.xml", flat), "d.xml", OPTIONS)
    assert parsed.file_type == "pptx" and parsed.pages == 2
    assert [s.text for s in parsed.segments] == [s.text for s in deck.segments]

    # A part named outside the package, or twice, is left out; the rest is read.
    extra = (
        b'<pkg:part pkg:name="/../../escape.xml" pkg:contentType="application/xml">'
        b"<pkg:xmlData><x>CANARY-ESCAPE</x></pkg:xmlData></pkg:part>"
        b'<pkg:part pkg:name="/word/document.xml" pkg:contentType="application/xml">'
        b"<pkg:xmlData><x>CANARY-TWICE</x></pkg:xmlData></pkg:part></pkg:package>"
    )
    hostile = docs.flat_opc_bytes(docx).replace(b"</pkg:package>", extra)
    path = _file(tmp_path, "h.xml", hostile)
    assert parse_file(path, "h.xml", OPTIONS).text == package.text
    with packaged(path, "h.xml", "docx-xml", None) as written, zipfile.ZipFile(written) as z:
        assert not [n for n in z.namelist() if ".." in n or "escape" in n]
        assert b"CANARY-TWICE" not in z.read("word/document.xml")
    # A package further down another document: that document, read as XML.
    nested = b'<doc><pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage"'
    nested += b'><pkg:part pkg:name="/word/document.xml"/></pkg:package></doc>'
    assert detect(_file(tmp_path, "n.xml", nested), "n.xml").kind == "text"


def test_flat_opendocument_files_libreoffice_wrote_are_read_as_its_packages(
    tmp_path: Path,
) -> None:
    # LibreOffice 7.4's own .fodt, .fods and .fodp (tests/fixtures/odf/README.md).
    fixtures = Path(__file__).parent.parent / "fixtures" / "odf"

    def parsed(name: str) -> ParsedDocument:
        data = (fixtures / name).read_bytes()
        if name.endswith(".gz"):
            data, name = gzip.decompress(data), name.removesuffix(".gz")
        return parse_file(_file(tmp_path, name, data), name, OPTIONS)

    text = parsed("field-manual.fodt.gz")
    assert text.file_type == "odt" and text.segments
    assert [s.text for s in text.segments] == [s.text for s in parsed("field-manual.odt").segments]
    assert "# Safety" in text.text and "CANARY-ODT wear gloves" in text.text
    assert "(note: CANARY-FOOTNOTE since 2019)" in text.text and "| L \\| XL |" in text.text
    sheet = parsed("stock.fods.gz")
    assert sheet.text == (
        "# Sheet: Calc\n\n| item | count |\n|---|---|\n| helmet | 4 |\n| boots | 7 |"
    )
    deck = parsed("deck.fodp.gz")
    assert deck.file_type == "odp" and deck.pages == 2
    assert "CANARY-SLIDE ship it" in deck.text and "Speaker notes: say CANARY-NOTES" in deck.text
    # A chart LibreOffice wrote, packaged and flat: its data as a table.
    charted = (
        "# Sales\n\nBar chart: CANARY-SERIES Units\n\n"
        "|  | CANARY-SERIES Units |\n|---|---|\n| 2016 | 25 |\n| 2017 | 15 |"
    )
    assert parsed("chart.odp").text == parsed("chart.fodp.gz").text == charted


def test_an_opendocument_file_s_charts_and_formulas_are_read(tmp_path: Path) -> None:
    # A chart is an object of its own in the package ("Object 1/content.xml"): its data
    # had been lost, where a PPTX's chart is read (docling: its kind, then its table);
    # so had a formula's source.
    chart = docs.odf_chart("Quarterly units", [("Q1", "25"), ("Q2", "NaN"), ("Q3", "CANARY-40")])
    content = f'<?xml version="1.0"?>{chart}'.replace(
        "office:document ", "office:document-content "
    )
    content = content.replace("</office:document>", "</office:document-content>")
    slide = (
        '<draw:page draw:name="p1"><draw:frame presentation:class="title"><draw:text-box>'
        "<text:p>Sales</text:p></draw:text-box></draw:frame><draw:frame><draw:object "
        'xlink:href="./Object 1"/></draw:frame><draw:frame><draw:object xlink:href="./Object 2"/>'
        '</draw:frame><draw:frame><draw:object xlink:href="./Missing"/></draw:frame>'
        '<draw:frame><draw:object xlink:href="./Object 3"/></draw:frame>'
        '<draw:frame><draw:object xlink:href="./Object 4"/></draw:frame></draw:page>'
    )
    formula = (
        '<?xml version="1.0"?><math:math xmlns:math="http://www.w3.org/1998/Math/MathML">'
        "<math:semantics><math:mrow><math:mi>E</math:mi><math:mo>=</math:mo></math:mrow>"
        '<math:annotation encoding="StarMath 5.0">E = m c^2</math:annotation>'
        "</math:semantics></math:math>"
    )
    bare = '<math xmlns="http://www.w3.org/1998/Math/MathML"><mi>x</mi><mo>+</mo><mn>1</mn></math>'
    members = {
        "Object 1/content.xml": content.encode(),
        "Object 2/content.xml": formula.encode(),  # a formula: its source
        "Object 3/content.xml": b"<office:document-content",  # broken: passed over
        "Object 4/content.xml": bare.encode(),  # a formula without its source
    }
    deck = docs.odf_bytes("presentation", slide, members=members)
    parsed = parse_file(_file(tmp_path, "s.odp", deck), "s.odp", OPTIONS)
    assert parsed.text == (
        "# Sales\n\nBar chart: Quarterly units\n\n"
        "|  | Units |\n|---|---|\n| Q1 | 25 |\n| Q2 |  |\n| Q3 | CANARY-40 |\n\n"
        "$E = m c^2$\n\n$x + 1$"
    )


def test_an_opendocument_template_of_styles_alone_is_blank_not_damaged(tmp_path: Path) -> None:
    # LibreOffice's own Default.ott, Modern.ott and Simple.ott: styles.xml and meta.xml,
    # no content.xml, and a manifest that lists none. They had failed as damaged.
    styles = b"<office:document-styles/>"

    def repacked(data: bytes, listed: bool) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                member = src.read(info)
                if info.filename == "META-INF/manifest.xml" and not listed:
                    member = re.sub(rb"<manifest:file-entry[^>]*content\.xml.*?</manifest:"
                                    rb"file-entry>", b"", member)  # fmt: skip
                if info.filename != "content.xml":
                    dst.writestr(info, member)
            dst.writestr("styles.xml", styles)
        return out.getvalue()

    template = repacked(docs.odt_bytes(), listed=False)
    assert b"content.xml" not in template
    for name in ("Default.ott", "Default.odt", "Default"):
        path = _file(tmp_path, name, template)
        with pytest.raises(BlankDocumentError, match="styles only, no content"):
            parse_file(path, name, OPTIONS)
    # Its manifest lists a content.xml that is not there: damaged.
    lost = _file(tmp_path, "lost.odt", repacked(docs.odt_bytes(), listed=True))
    with pytest.raises(CorruptDocumentError, match=r"no content\.xml in the archive"):
        parse_file(lost, "lost.odt", OPTIONS)


def test_a_page_keeps_its_text_before_the_first_heading_and_drops_its_chrome(
    tmp_path: Path,
) -> None:
    page = (
        "<html><head><title>Guide</title></head><body>"
        "<header><a href='/'>ACME</a> SITE-BANNER</header>"
        "<nav><ul><li><a href='/a'>NAV-LINK-A</a></li><li>NAV-LINK-B</li></ul></nav>"
        "<div class='lead'>CANARY-LEAD the page's first paragraph.</div>"
        "<article><header><h1>Install</h1><p>CANARY-BYLINE by Ann</p></header>"
        "<p>CANARY-BODY run the installer.</p></article>"
        "<div role='navigation'>ROLE-NAV</div><div role='search'>SEARCH-BOX</div>"
        "<footer>SITE-FOOTER copyright</footer></body></html>"
    )
    text = parse_file(_file(tmp_path, "g.html", page.encode()), "g.html", OPTIONS).text
    # docling took all before the first heading for furniture, and left it out.
    assert text == (
        "# Guide\n\nCANARY-LEAD the page's first paragraph.\n\n# Install\n\n"
        "CANARY-BYLINE by Ann\n\nCANARY-BODY run the installer."
    )
    # A page past parse.markup_fast_size, read by html-to-markdown, drops the same.
    large = ParseOptions(markup_fast_size=0)
    text = parse_file(_file(tmp_path, "g.html", page.encode()), "g.html", large).text
    assert re.findall(r"CANARY-\w+", text) == ["CANARY-LEAD", "CANARY-BYLINE", "CANARY-BODY"]
    assert not re.search(r"SITE-|NAV-|SEARCH-", text), text


def test_documentation_generators_navigation_is_dropped(tmp_path: Path) -> None:
    # Without a <nav> or a role: each had been the first or last chunk of every page of
    # such a manual (valgrind's DocBook, libffi's Texinfo).
    page = (
        "<html><head><title>Cachegrind</title></head><body>"
        '<div class="navheader"><table summary="Navigation header"><tr><td>DOCBOOK-PREV</td>'
        "<td>Up</td></tr></table></div>"
        '<div class="header"><p>TEXINFO-NEXT: Type Example, Previous: Sizes, Up: Types</p></div>'
        '<div class="topNav">JAVADOC-OVERVIEW Package Class</div>'
        '<div id="nav-path" class="navpath"><ul><li>DOXYGEN-PATH</li></ul></div>'
        '<div class="related"><ul><li>SPHINX-INDEX</li></ul></div>'
        "<h1>Cachegrind</h1><p>CANARY-BODY simulates caches.</p>"
        '<h2><a class="header" href="#use">Use</a></h2><p>CANARY-USE run it.</p>'
        '<table summary="Navigation footer"><tr><td>DOCBOOK-NEXT</td></tr></table>'
        "</body></html>"
    )
    for options in (OPTIONS, ParseOptions(markup_fast_size=0)):
        text = parse_file(_file(tmp_path, "cg.html", page.encode()), "cg.html", options).text
        assert re.findall(r"CANARY-\w+", text) == ["CANARY-BODY", "CANARY-USE"], text
        assert not re.search(r"DOCBOOK|TEXINFO|JAVADOC|DOXYGEN|SPHINX", text), text
        assert "Use" in text  # an mdBook heading's anchor is class "header" too: kept


def test_publicans_navigation_logos_and_banner_are_dropped(tmp_path: Path) -> None:
    # Every page of Debian's handbook (3,302 in 21 languages) began "[Download the ebook]
    # ... Product Site Documentation Site - **Prev** ... - **Next**" and ended likewise.
    page = (
        "<html><head><title>16.2. Debian's Future</title></head><body>"
        '<div id="banner"><a href="http://x/get/"><span>BANNER-EBOOK</span></a></div>'
        '<p id="title"><a class="left" href="http://x"><img alt="LOGO-PRODUCT" src="l.png"/>'
        '</a><a class="right" href="index.html"><img alt="LOGO-DOCS" src="r.png"/></a></p>'
        '<ul class="docnav top"><li class="previous"><a href="c.html"><strong>NAV-PREV</strong>'
        "</a></li><li class='home'>NAV-BOOK</li></ul>"
        '<div class="section"><h2 class="title">16.2. Debian\'s Future</h2>'
        '<div class="para">CANARY-BODY new distributions will come.</div></div>'
        '<ul class="docnav"><li class="next"><a href="n.html"><strong>NAV-NEXT</strong>'
        "16.3. Future of this Book</a></li></ul></body></html>"
    )
    text = parse_file(_file(tmp_path, "p.html", page.encode()), "p.html", OPTIONS).text
    assert re.findall(r"[A-Z]+-[A-Z]+", text) == ["CANARY-BODY"], text
    # A page's own banner or title paragraph, not Publican's, is kept.
    own = page.replace('<p id="title">', '<p id="heading">').replace("</p><ul", "</p><p>x</p><ul")
    text = parse_file(_file(tmp_path, "o.html", own.encode()), "o.html", OPTIONS).text
    assert "BANNER-EBOOK" in text and "CANARY-BODY" in text and "NAV-" not in text
    # html-to-markdown (a page past parse.markup_fast_size) drops the lists.
    large = ParseOptions(markup_fast_size=0)
    text = parse_file(_file(tmp_path, "p.html", page.encode()), "p.html", large).text
    assert "CANARY-BODY" in text and "NAV-" not in text


def test_a_page_with_a_main_element_is_read_for_it_alone(tmp_path: Path) -> None:
    # As an mdBook or rustdoc page: a help pop-up, a theme list and a skip link outside
    # <main>, none of them marked as chrome.
    page = (
        "<html><head><title>E0271</title></head><body>"
        "<div id='help'><h2>Keyboard shortcuts</h2><p>HELP-POPUP press S to search</p></div>"
        "<a href='#content'>SKIP-LINK to main content</a>"
        "<div class='page'><ul id='themes'><li>THEME-LIGHT</li><li>THEME-COAL</li></ul>"
        "<div id='content'><main><h1>Error code E0271</h1>"
        "<p>CANARY-MAIN a type mismatched an associated type.</p>"
        "</main></div><p>AFTER-MAIN previous chapter</p></div></body></html>"
    )
    text = parse_file(_file(tmp_path, "e.html", page.encode()), "e.html", OPTIONS).text
    assert text == "# Error code E0271\n\nCANARY-MAIN a type mismatched an associated type."
    # Read by html-to-markdown (past parse.markup_fast_size), the same.
    large = ParseOptions(markup_fast_size=0)
    text = parse_file(_file(tmp_path, "e.html", page.encode()), "e.html", large).text
    assert text == "# Error code E0271\n\nCANARY-MAIN a type mismatched an associated type."
    # role="main" where there is no <main> (its <div>s inside counted to find its end);
    # two <main>s say nothing, so all is kept.
    roled = page.replace("<main>", "<div role='main'><div>x</div>").replace("</main>", "</div>")
    two = page.replace("<p>AFTER-MAIN", "<main><p>AFTER-MAIN").replace(
        "chapter</p>", "chapter</p></main>"
    )
    for options in (OPTIONS, large):
        text = parse_file(_file(tmp_path, "r.html", roled.encode()), "r.html", options).text
        assert "CANARY-MAIN" in text and "HELP-POPUP" not in text and "THEME-COAL" not in text
        assert "AFTER-MAIN" not in text
        text = parse_file(_file(tmp_path, "t.html", two.encode()), "t.html", options).text
        assert "HELP-POPUP" in text and "CANARY-MAIN" in text and "AFTER-MAIN" in text
    # Found with no tree, a stray close would end it early: with more text after it than
    # in it, the page is kept whole.
    stray = roled.replace("<h1>", "</div><h1>")
    text = parse_file(_file(tmp_path, "s.html", stray.encode()), "s.html", large).text
    assert "CANARY-MAIN" in text and "HELP-POPUP" in text
    # A book's chapters are read as one page: one chapter's <main> is not the book's.
    book = docs.epub_bytes(
        [("One", "CANARY-CH1 first"), ("Two", "x</p><main><p>CANARY-CH2 main</p></main><p>y")]
    )
    text = parse_file(_file(tmp_path, "b.epub", book), "b.epub", OPTIONS).text
    assert "CANARY-CH1" in text and "CANARY-CH2" in text


def test_a_page_that_only_redirects_is_skipped_as_blank(tmp_path: Path) -> None:
    # rustdoc's (a third of the Rust manuals' pages), Jekyll's redirect_from and the
    # Sphinx and MkDocs redirect plugins' stubs: "Redirecting to ..." is not the page's.
    stubs = {
        "rustdoc.html": '<meta http-equiv="refresh" content="0;URL=macro.m.html">'
        "<title>Redirection</title><body><p>Redirecting to "
        '<a href="macro.m.html">macro.m.html</a>...</p>'
        '<script>location.replace("macro.m.html" + location.search);</script>',
        "jekyll.html": "<!DOCTYPE html><html lang='en-US'><meta charset='utf-8'>"
        "<title>Redirecting&hellip;</title><link rel='canonical' href='/new/'>"
        "<meta http-equiv='REFRESH' content=\"0; url='/new/'\"><h1>Redirecting&hellip;</h1>"
        "<a href='/new/'>Click here if you are not redirected.</a></html>",
        "later.html": '<meta http-equiv="refresh" content="5 ; URL=https://example.org/b">'
        "<p>This page has moved. You will be sent on in 5 seconds.</p>",
    }
    for name, page in stubs.items():
        with pytest.raises(BlankDocumentError, match=r"a redirect to (macro\.m\.html|/new/|https)"):
            parse_file(_file(tmp_path, name, page.encode()), name, OPTIONS)
    # A page that reloads itself (no URL), waits long, or has text of its own is read.
    body = "<h1>News</h1><p>CANARY-OWN " + "word " * 250 + "</p>"
    kept = {
        "reload.html": '<meta http-equiv="refresh" content="0"><p>CANARY-OWN scores</p>',
        "slow.html": '<meta http-equiv="refresh" content="30;url=b.html"><p>CANARY-OWN x</p>',
        "long.html": f'<meta http-equiv="refresh" content="0;url=b.html">{body}',
    }
    for name, page in kept.items():
        assert "CANARY-OWN" in parse_file(_file(tmp_path, name, page.encode()), name, OPTIONS).text
    # Script, style and comments are not the page's own text: still a stub.
    script = f"<script>{'var x = 1; ' * 200}</script><!-- {'generated ' * 200} -->"
    stub = stubs["rustdoc.html"] + script
    with pytest.raises(BlankDocumentError):
        parse_file(_file(tmp_path, "s.html", stub.encode()), "s.html", OPTIONS)


def test_highlighted_code_keeps_its_lines_and_indentation(tmp_path: Path) -> None:
    # Sphinx (Pygments spans), mdBook (spans in a code element) and gtk-doc (links):
    # docling read each span as a piece and joined them with spaces, on one line.
    page = (
        "<html><body><h1>API</h1><p>Intro.</p>"
        '<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span>'
        '<span class="k">def</span> <span class="nf">f</span><span class="p">(</span>'
        '<span class="n">x</span><span class="p">):</span>\n    <span class="k">return</span>'
        ' <span class="n">x</span> <span class="o">+</span> <span class="mi">1</span>\n'
        "</pre></div></div>"
        '<div class="highlight-yaml notranslate"><div class="highlight"><pre>'
        '<span class="nt">retries</span><span class="p">:</span> <span class="l">3</span>'
        "</pre></div></div>"
        '<pre><code class="language-rust"><span class="k">fn</span> main() {\n    '
        '<span class="n">println!</span>("hi");<br>}</code></pre>'
        '<pre><code><div class="line">fn one() {</div><div class="line">    CANARY_LINES</div>'
        '<div class="line">}</div></code></pre>'
        '<pre class="synopsis">int          <a href="x.html#cmp">CANARY_strcmp</a>  '
        "(<em><code>const char *a</code></em>,\n              const char *b);</pre>"
        "</body></html>"
    )
    text = parse_file(_file(tmp_path, "api.html", page.encode()), "api.html", OPTIONS).text
    assert "```python\ndef f(x):\n    return x + 1\n```" in text
    assert "```yaml\nretries: 3\n```" in text  # Sphinx names it on the wrapper only
    assert '```rust\nfn main() {\n    println!("hi");\n}\n```' in text
    assert (
        "```\nint          CANARY_strcmp  (const char *a,\n              const char *b);\n```"
        in text
    )
    assert "fn one() {\n    CANARY_LINES\n}\n```" in text  # a line an element


def test_a_page_laid_out_in_a_table_keeps_its_headings_and_data_tables(tmp_path: Path) -> None:
    page = (
        "<html><body><table width='100%'><tr><td><img src='logo.png' alt='Logo'></td>"
        "<td><h1>Guide</h1></td></tr><tr><td>Menu</td><td><h2>Install</h2>"
        "<p>CANARY-LAYOUT run the installer.</p><ul><li>step one</li></ul>"
        "<table><tr><th>os</th><th>size</th></tr><tr><td>linux</td><td>4 MB</td></tr></table>"
        "</td></tr></table>"
        "<table role='presentation'><tr><td>CANARY-ROLE footer text</td></tr></table>"
        "<table><tr><th>plan</th><th>price</th></tr><tr><td>pro</td><td>9</td></tr></table>"
        "</body></html>"
    )
    text = parse_file(_file(tmp_path, "g.html", page.encode()), "g.html", OPTIONS).text
    assert "# Guide" in text and "## Install" in text, text
    assert "CANARY-LAYOUT run the installer.\n\n- step one" in text
    assert "| os    | size   |" in text and "| linux | 4 MB   |" in text  # data: still tables
    assert "| plan   |   price |" in text
    assert "CANARY-ROLE footer text" in text and "| CANARY-ROLE" not in text


def test_links_keep_their_text_and_only_full_urls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page = (
        '<html><body><p>See <a href="install.html">the install guide</a>, '
        '<a href="#faq">the FAQ</a> and <a href="https://example.com/dl">CANARY-DL</a>. '
        '<a href="javascript:go()">Go</a>, <a href="data:text/html,x">CANARY-DATA</a>.'
        "</p></body></html>"
    )
    markdown = (
        "# Docs\n\nSee [the install guide](install.md) and [CANARY-DL](https://example.com/dl).\n"
    )
    for name, data in (("p.html", page), ("p.md", markdown)):
        text = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS).text
        assert "See the install guide" in text and "install.html" not in text, text
        assert "install.md" not in text and "#faq" not in text
        assert "[CANARY-DL](https://example.com/dl)" in text
    # A script or data link keeps its text, and nothing is logged for it (docling's
    # warning for each went to the worker's stderr).
    text = parse_file(_file(tmp_path, "p.html", page.encode()), "p.html", OPTIONS).text
    assert "Go" in text and "CANARY-DATA" in text and "javascript" not in text
    assert not [r for r in caplog.records if "unsafe scheme" in r.getMessage()]


def test_a_docx_drawing_is_read_for_its_text_without_rendering_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from docling.backend import msword_backend

    rendered: list[str] = []

    def libreoffice_found() -> object:  # as docling's lookup answers with soffice on PATH
        rendered.append("soffice")
        return lambda *args, **kwargs: None

    monkeypatch.setattr(msword_backend, "get_docx_to_pdf_converter", libreoffice_found)
    data = docs.docx_with_text_box("CANARY-BOX callout")
    with caplog.at_level("WARNING"):
        parsed = parse_file(_file(tmp_path, "box.docx", data), "box.docx", OPTIONS)
    assert parsed.text == "Before the box.\n\nCANARY-BOX callout\n\nAfter the box."
    assert rendered == [] and "LibreOffice" not in caplog.text


def test_a_docx_locked_canvas_is_read_for_its_text(tmp_path: Path) -> None:
    # LibreOffice's fdo76249.docx (a title in Word 2007's drawing canvas, in a text box)
    # failed as holding no text: docling takes a canvas for a picture.
    canvas = (
        '</w:t><w:drawing><wp:inline><wp:extent cx="1" cy="1"/><wp:docPr id="2" '
        'name="Canvas"/><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/'
        'drawingml/2006/lockedCanvas"><lc:lockedCanvas xmlns:lc="http://schemas.openxmlformats'
        '.org/drawingml/2006/lockedCanvas"><a:sp><a:txSp><a:txBody><a:bodyPr/><a:p><a:r><a:t>'
        "CANARY-CANVAS</a:t></a:r></a:p><a:p><a:r><a:t/></a:r></a:p><a:p><a:r><a:t>second"
        "</a:t></a:r><a:r><a:t> line</a:t></a:r></a:p></a:txBody></a:txSp></a:sp>"
        "</lc:lockedCanvas></a:graphicData></a:graphic></wp:inline></w:drawing><w:t>"
    )
    data = docs.docx_with_text_box("In the box: " + canvas)
    parsed = parse_file(_file(tmp_path, "c.docx", data), "c.docx", OPTIONS)
    assert parsed.text == (
        "Before the box.\n\nIn the box: CANARY-CANVAS  \nsecond line\n\nAfter the box."
    )


def test_scripts_queries_and_build_files_are_code_with_their_language(tmp_path: Path) -> None:
    files = {
        "deploy.sh": (b"#!/bin/sh\nset -e\necho CANARY-SH\n", "shell"),
        "report.sql": (b"SELECT region, sum(amount) FROM sales GROUP BY region;\n", "sql"),
        "Dockerfile": (b"FROM python:3.11\nRUN pip install rag-ingest\n", "dockerfile"),
        "Makefile": (b"test:\n\tpytest\n", "make"),
        "main.tf": (b'resource "aws_s3_bucket" "docs" {}\n', "hcl"),
        "App.vue": (
            b"<template><h1>{{ title }}</h1></template>\n<script>export default {}</script>\n",
            "vue",
        ),
        "Card.svelte": (b"<script>export let name;</script>\n<p>Hello {name}</p>\n", "svelte"),
        # Other names of known languages: had been prose ("unknown extension .cu").
        "fast.pyx": (b"cdef int twice(int x):\n    return 2 * x\n", "python"),
        "kernel.cu": (b"__global__ void add(float *a) { a[0] += 1; }\n", "cpp"),
        "config.mts": (b"export const port: number = 8080;\n", "ts"),
        "build.gradle": (b"plugins { id 'java' }\n", "groovy"),
        "prod.tfvars": (b'region = "eu-west-1"\n', "hcl"),
        "Gemfile": (b"source 'https://rubygems.org'\ngem 'rails'\n", "ruby"),
        # Style sheets and build scripts: had been "unknown extension; treated as text".
        "site.css": (b".nav a:hover {\n  color: red;\n}\n", "css"),
        "theme.scss": (b".card {\n  &:hover { color: $accent; }\n}\n", "css"),
        "CMakeLists.txt": (b"cmake_minimum_required(VERSION 3.20)\nproject(x)\n", "cmake"),
        "Find.cmake": (b"function(find_thing)\nendfunction()\n", "cmake"),
        "build.bat": (b"@echo off\r\nset X=1\r\n", "batch"),
        "plugin.vim": (b"function! s:Go()\n  echo 1\nendfunction\n", "vim"),
        "sum.awk": (b"{ s += $1 } END { print s }\n", "awk"),
        "solver.f90": (b"subroutine solve(n)\n  integer :: n\nend subroutine\n", "fortran"),
        "solver.f": (b"      SUBROUTINE SOLVE(N)\n      END\n", "fortran"),
        # ".m" by its lines: Objective-C, MATLAB or Mathematica.
        "Store.m": (b'#import "Store.h"\n@implementation Store\n@end\n', "objective-c"),
        "stats.m": (b"function m = stats(x)\n  m = mean(x);\nend\n", "matlab"),
        "Plot.m": (b'(* A package. *)\nBeginPackage["Plot`"]\n', "mathematica"),
        "Bridge.mm": (b"#import <Foundation/Foundation.h>\nclass A {};\n", "objective-c"),
    }
    for name, (data, language) in files.items():
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.language) == ("code", language), name
        assert not parsed.warnings, name
    # A known binary format whose name starts like a project's document is not text.
    with pytest.raises(NoTextFormatError, match=r"a binary \(\.bin\)"):
        detect(_file(tmp_path, "license.bin", bytes(range(256))), "license.bin")
    for name in ("settings.yaml", "data.json", "notes.txt"):
        kind = detect(_file(tmp_path, name, b"key: value\n"), name)
        assert kind.kind == "text", name
    # A project's own documents by their names, and XML and properties files by other
    # extensions: text, with no "unknown extension" said.
    plain = {
        "LICENSE": (b"MIT License\n\nCopyright (c) 2026 CANARY\n", None),
        "AUTHORS": (b"Ann <ann@example.org>\n", None),
        "README.Debian": (b"Notes on the Debian package.\n", None),
        "LICENSE-APACHE": (b"Apache License\n", None),
        "COPYING.LIB": (b"GNU LESSER GENERAL PUBLIC LICENSE\n", None),
        "app.properties": (b"server.port=8080\n", None),
        "App.csproj": (b'<Project Sdk="Microsoft.NET.Sdk"><PropertyGroup/></Project>\n', "xml"),
        "schema.xsd": (b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n', "xml"),
        "route.gpx": (b'<gpx version="1.1"><trk><name>CANARY</name></trk></gpx>\n', "xml"),
    }
    for name, (data, language) in plain.items():
        kind = detect(_file(tmp_path, name, data), name)
        assert (kind.kind, kind.language, kind.note, kind.guessed) == (
            "text",
            language,
            None,
            False,
        ), name
    # A .msg that is not Outlook's (Tcl's message catalogs): text, said so.
    catalog = b'namespace eval ::tcl::clock {\n    ::msgcat::mcset ru DATE_FORMAT "%d.%m.%Y"\n}\n'
    kind = detect(_file(tmp_path, "ru.msg", catalog), "ru.msg")
    assert (kind.kind, kind.note) == ("text", "named .msg but not an Outlook message: read as text")
    # A binary one that is no compound file: skipped as binary data, as before.
    with pytest.raises(NoTextFormatError, match=r"binary data \(\.msg\)"):
        parse_file(_file(tmp_path, "x.msg", bytes(range(256)) * 4), "x.msg", OPTIONS)


def test_rtf_is_read_as_its_text(tmp_path: Path) -> None:
    rtf = (
        rb"{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}\f0\fs24 "
        rb"CANARY-RTF {\b bold} caf\'e9 costs \u8364? 5.\par Second paragraph.}"
    )
    parsed = parse_file(_file(tmp_path, "memo.rtf", rtf), "memo.rtf", OPTIONS)
    assert parsed.file_type == "rtf"
    assert parsed.text == "CANARY-RTF bold caf\u00e9 costs \u20ac 5.\nSecond paragraph."
    # Word saves RTF under .doc too: routed by its content.
    parsed = parse_file(_file(tmp_path, "old.doc", rtf), "old.doc", OPTIONS)
    assert parsed.file_type == "rtf" and "fonttbl" not in parsed.text
    # After a UTF-8 BOM, as some generators write it: the BOM is not text ("ï»¿"). Saved
    # as UTF-16 (PowerShell's ">"): its characters, not its bytes.
    for saved in (b"\xef\xbb\xbf" + rtf, rtf.decode("ascii").encode("utf-16")):
        parsed = parse_file(_file(tmp_path, "saved.rtf", saved), "saved.rtf", OPTIONS)
        assert parsed.text == "CANARY-RTF bold caf\u00e9 costs \u20ac 5.\nSecond paragraph."


def test_rtf_text_boxes_are_read_where_their_shapes_sit(tmp_path: Path) -> None:
    # Word and LibreOffice write a frame or a text box as a shape whose text is in an
    # ignorable destination (\*\shpinst): a business card LibreOffice saved as RTF had
    # been read as no text at all.
    def shape(text: str, picture: bytes = b"") -> bytes:
        return (
            rb"{\shp{\*\shpinst\shpleft0\shpright2000{\sp{\sn shapeType}{\sv 202}}"
            + picture
            + rb"{\shptxt\pard\plain{\loch "
            + text.encode()
            + rb"}\par\pard}}}"
        )

    grouped = (
        rb"{\shpgrp{\*\shpinst{\sp{\sn groupLeft}{\sv 0}}"
        + shape("Left box")
        + (shape("Right box") + rb"}}")
    )
    rtf = (
        rb"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}\f0 Card:\par "
        + shape("CANARY-SHAPE Ann Smith")
        + rb" Phone 555 0100.\par "
        + grouped
        + rb"Done.\par}"
    )
    parsed = parse_file(_file(tmp_path, "card.rtf", rtf), "card.rtf", OPTIONS)
    assert parsed.text == (
        "Card:\nCANARY-SHAPE Ann Smith\n Phone 555 0100.\nLeft box\nRight box\nDone."
    )
    # A shape's properties are not its text; a shape with none (a line) adds nothing.
    line = rb"{\shp{\*\shpinst{\sp{\sn shapeType}{\sv 20}}}}"
    lined = parse_file(
        _file(tmp_path, "l.rtf", rb"{\rtf1 A.\par " + line + rb"B.\par}"), "l.rtf", OPTIONS
    )
    assert lined.text == "A.\nB."


def test_rtf_footnotes_and_endnotes_are_read_where_they_are_cited(tmp_path: Path) -> None:
    """A note is a destination striprtf passes over: a contract's "within two working
    days" in a footnote was lost. Read "(note: ...)" as a DOCX's and an ODT's are."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "libreoffice"
    said = parse_file(str(fixtures / "noted.rtf"), "noted.rtf", OPTIONS).text
    assert said == (
        "Wear gloves (note: CANARY-FOOTNOTE since 2019) at all times.\n"
        "Check straps (note: CANARY-ENDNOTE see the annex second paragraph) twice."
    )
    # As Word writes one (not marked ignorable), its mark a \chftn; an empty one unsaid.
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252 Term{\super\chftn}{\footnote\pard\plain{\super\chftn} "
        rb"CANARY-WORD two working days, caf\'e9.}: net 30{\footnote \chftn}.\par}"
    )
    parsed = parse_file(_file(tmp_path, "w.rtf", rtf), "w.rtf", OPTIONS)
    assert parsed.text == "Term (note: CANARY-WORD two working days, caf\u00e9.): net 30."


def test_rtf_equations_are_read_as_their_runs_text(tmp_path: Path) -> None:
    # Word writes an equation's runs inside ignorable destinations ({\*\moMath}) that
    # striprtf passes over: LibreOffice's math-*.rtf files were skipped as blank.
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f34\froman\fcharset0 Cambria Math;}{\f35\froman"
        rb"\fcharset161 Cambria Math Greek;}} Area: {\mmath{\*\moMathPara{\*\moMath{\i{\mr"
        rb"\mscr0\msty2 CANARY-A}}{\mr =}{\i\f35 {\mr \'f0}}{\msSup{\msSupPr{\mctrlPr\f35 }}"
        rb"{\me{\mr r\'e9}}{\msup{\mr 2}}}}}} here.\par {\mmath{\*\moMathPara{\*\moMath{\mf{\mnum"
        rb"{\mr caf\'e9}}{\mden{\mr b}}}}}}\par}"
    )
    parsed = parse_file(_file(tmp_path, "m.rtf", rtf), "m.rtf", OPTIONS)
    # A run in a font of another charset (Word's Greek letters) read in that charset: the
    # Greek font's \'f0 is π, not the code page's ð; a font chosen in a group that is not
    # a run's (the superscript's properties) is not the next run's.
    assert parsed.text == "Area: CANARY-A = \u03c0 r\u00e9 2 here.\ncaf\u00e9 b"


def test_rtf_symbol_font_text_is_read_as_the_characters_it_shows(tmp_path: Path) -> None:
    # Word 97-2003 wrote a symbol as its code in Symbol ({\f3 m} for mu, \'b1 for the
    # plus-minus) or as a private-use \uN with a fallback; striprtf read the letters
    # typed ("5 mm") and the private-use characters.
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman\fcharset0 Times New Roman;}"
        rb"{\f3\froman\fcharset2 Symbol{\*\panose 05050102010706020507};}{\f5\fnil\fcharset2 "
        rb"Wingdings;}{\f6\fnil\fcharset2 Wingdings 2;}{\f7\fnil\fcharset2 Wingdings 3;}}"
        rb"\pard Size 5 {\f3 m}m, angle {\f3\u61537\'61} of 30 {\f3 \'b1} 2, "
        rb"{\f3\uc2\u61538\'62\'62 beta} {\f3\u945\'7f b}{\f3\u945}{\f3 m}{\f3 \'7bx\'7d}.\par "
        rb"{\f5 \'fe \'fd} Yes {\f5 \'a8} No {\f5 \'e7}next {\f6 P\'a3T} {\f7 P}.\par "
        rb"{\field{\*\fldinst SYMBOL 112 \\f \"Symbol\" \\s 12}{\fldrslt{\f3\fs24 p}}} and "
        rb"{\f3 p\plain p} {\mmath{\*\moMathPara{\*\moMath{\mr A}{\mr =}{\f3 {\mr p}}}}}"
        rb"\par {\f3 {\*\xdata\bin1 {}m} end\par}"
    )
    parsed = parse_file(_file(tmp_path, "s.rtf", rtf), "s.rtf", OPTIONS)
    assert parsed.text == (
        "Size 5 \u03bcm, angle \u03b1 of 30 \u00b1 2, \u03b2 \u03b2\u03b5\u03c4\u03b1 "
        "\u03b1 \u03b2\u03b1\u03bc{\u03be}.\n"
        "\u2611 \u2612 Yes \u25fb No next \U0001f5f8\u25a1\u2612 P.\n"
        "\u03c0 and \u03c0p A = \u03c0\n end"  # the \bin's { read as a group: \u03b5\u03bd\u03b4
    )
    # A document whose default font is Symbol (\deff) chooses it without a \f.
    rtf = rb"{\rtf1\ansi\deff1{\fonttbl{\f0 Times;}{\f1\fcharset2 Symbol;}}\pard m {\f0 m}\par}"
    assert parse_file(_file(tmp_path, "d.rtf", rtf), "d.rtf", OPTIONS).text == "\u03bc m"


def test_rtf_tables_are_markdown_tables(tmp_path: Path) -> None:
    """striprtf wrote a row as "a|b|", and a cell of two paragraphs across lines."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "libreoffice"
    rtf = parse_file(str(fixtures / "tabled.rtf"), "tabled.rtf", OPTIONS).text
    assert rtf == parse_file(str(fixtures / "tabled.fodt"), "tabled.fodt", OPTIONS).text
    assert rtf == (
        "Prices:\n\n| item | price |\n|---|---|\n| CANARY-DESK oak and steel | 1200 \\| 1300 |"
        "\n\nSizes:\n\n| size | width | depth |\n|---|---|---|\n| L | 160 | 80 |\n\n"
        "Delivery in CANARY-WEEKS three weeks."
    )
    # As Word writes a row (its properties again before \row); two tables with nothing
    # between them are one, as Word shows them; blank paragraphs in a run are one.
    row = rb"\trowd\cellx1000\cellx2000\pard\intbl %s\cell %s\cell\trowd\cellx1000\cellx2000\row "
    word = (
        rb"{\rtf1\ansi Head\par\par\par "
        + row % (b"a", b"b")
        + row % (b"c", b"CANARY-C")
        + rb"\pard\trowd\cellx500\pard\intbl x\cell\row\pard\par "
        + row % (b"CANARY-NEXT", b"table")
        + rb"\pard Tail\par\par\par\par End\par"
        # Broken: a row of no cells, a cell in no row, a row never ended.
        + rb"\trowd\row Stray\cell bits\trowd\par}"
    )
    parsed = parse_file(_file(tmp_path, "w.rtf", word), "w.rtf", OPTIONS)
    assert parsed.text == (
        "Head\n\n| a | b |\n|---|---|\n| c | CANARY-C |\n| x |  |\n\n"
        "| CANARY-NEXT | table |\n|---|---|\n\nTail\n\nEnd\nStray bits"
    )
    # Chunked as Markdown: a long table's rows under its header in every chunk.
    rows = b"".join(row % (b"CANARY-ROW %d" % n, b"word " * 20) for n in range(60))
    long = parse_file(
        _file(tmp_path, "l.rtf", rb"{\rtf1\ansi " + row % (b"Name", b"Note") + rows + b"}"),
        "l.rtf",
        OPTIONS,
    )
    chunks = chunk_document(long, ChunkSettings(chunk_tokens=200), {}).chunks
    assert len(chunks) > 3
    assert all(c.text.startswith("| Name | Note |\n|---|---|\n| CANARY-ROW") for c in chunks)


@pytest.mark.timeout(60)
def test_rtf_rows_never_ended_are_read_in_one_pass(tmp_path: Path) -> None:
    # 100,000 row starts and cells with no row end: a pattern matching each start to the
    # next end had scanned to the file's end from every start (over 5 minutes for
    # 200,000; now about a second).
    rtf = b"{\\rtf1\\ansi " + b"\\trowd x\\cell " * 100_000 + b"}"
    parsed = parse_file(_file(tmp_path, "r.rtf", rtf), "r.rtf", OPTIONS)
    assert parsed.text.split() == ["x"] * 100_000


def test_rtf_comments_follow_the_text_with_their_authors_and_passages(tmp_path: Path) -> None:
    """Comments are an ignorable destination (``\\*\\annotation``): striprtf passed over
    them, and a reviewer's note was lost."""

    # As Word writes them: initials, then the name; the passage between range marks.
    def comment(ref: bytes, who: bytes, text: bytes, initials: bytes = b"AL") -> bytes:
        return (
            rb"{\*\atnid " + initials + rb"}{\*\atnauthor " + who + rb"}\chatn "
            rb"{\*\annotation{\*\atnref " + ref + rb"}{\*\atndate 1}\pard\plain "
            rb"{\field{\*\fldinst PAGE}}" + text + rb"}"
        )

    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Arial;}}\f0 Totals: "
        rb"{\*\atrfstart 7}CANARY-MARKED 4.2M{\*\atrfend 7}"
        + comment(b"7", rb"Ann L\'e9e", rb"CANARY-NOTE from the\par Q3 audit, caf\'e9")
        + rb" and more.\par Point"
        + comment(b"9", b"", b"CANARY-POINT check", initials=b"BR")
        + comment(b"10", b"Bob", rb"\par  ")
        + rb" here.{\*\atrfend 11}\par}"
    )
    parsed = parse_file(_file(tmp_path, "r.rtf", rtf), "r.rtf", OPTIONS)
    assert parsed.text == (
        "Totals: CANARY-MARKED 4.2M and more.\nPoint here.\n\nComments:\n"
        '- Comment (Ann L\u00e9e) on "CANARY-MARKED 4.2M": CANARY-NOTE from the Q3 audit, '
        "caf\u00e9\n- Comment (BR): CANARY-POINT check"
    )
    # A file of a comment alone is read, not skipped as blank.
    alone = rb"{\rtf1\ansi " + comment(b"1", b"Ann", b"CANARY-ALONE") + rb"}"
    parsed = parse_file(_file(tmp_path, "a.rtf", alone), "a.rtf", OPTIONS)
    assert parsed.text == "Comments:\n- Comment (Ann): CANARY-ALONE"


def test_uniform_office_format_documents_are_read_as_their_odf_originals(
    tmp_path: Path,
) -> None:
    """China's GB/T 20916 (UOF 1.0), as LibreOffice wrote it from the ODF fixtures: read
    as text, a page had been 24,000 tokens of its markup."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "libreoffice"

    def xml(name: str) -> str:
        return gzip.decompress((fixtures / f"{name}.gz").read_bytes()).decode()

    def read(name: str, text: str) -> ParsedDocument:
        return parse_file(_file(tmp_path, name, text.encode()), name, OPTIONS)

    manual = read("m.uot", xml("field-manual.uot"))
    assert (manual.file_type, manual.parser) == ("uot", "uof")
    assert manual.text == (
        "CANARY-DELETED\n\nField manual\n\n# Safety\n\n"
        "CANARY-ODT wear gloves at all times (note: CANARY-FOOTNOTE since 2019).\nNew line."
        "\n\n## Kit\n\nhelmet\n\nchin strap\n\nboots\n\ncheck straps\n\ntwice\n\nsign"
        "\n\nSee box.\n\nCANARY-BOX aside\n\n| size |\n|---|\n| L \\| XL |\n\n"
        "Comments:\n- Comment: CANARY-COMMENT fix this"
    )
    # Its title from its metadata; words kept apart by a tab or a space element.
    edited = (
        xml("field-manual.uot")
        .replace('<uof:标题 uof:locID="u0002"/>', "<uof:标题>CANARY-TITLE</uof:标题>")
        .replace(
            ">at all times</字:文本串>",
            ">at</字:文本串><字:制表符/><字:文本串>all</字:文本串>"
            '<字:空格符 字:个数="1"/><字:文本串>times</字:文本串>',
        )
    )
    edited_text = read("t.uot", edited).text
    assert edited_text.startswith("# CANARY-TITLE\n\nCANARY-DELETED")
    assert "gloves at all times (note:" in edited_text
    # The ODT's text is the same, but for its lists' marks (the UOF's are in its styles).
    odt = parse_file(str(Path(fixtures.parent, "odf", "field-manual.odt")), "m.odt", OPTIONS)

    def unmarked(text: str) -> str:
        return " ".join(re.sub(r"^\s*(?:-|\d\.) ", "", text, flags=re.M).split())

    assert unmarked(odt.text) == unmarked(manual.text)
    sheets = xml("stock.uos")
    assert [(s.page, s.text) for s in read("s.uos", sheets).segments] == [
        (1, "# Sheet: Calc\n\n| item | count |\n|---|---|\n| helmet | 4 |\n| boots | 7 |")
    ]
    # A cell placed by its column number, the ones before it empty.
    placed = sheets.replace("<表:单元格 ", '<表:单元格 表:列号="3" ', 1)
    assert (
        read("p.uos", placed).segments[0].text.startswith("# Sheet: Calc\n\n|  |  | item | count |")
    )
    deck = xml("deck.uop")
    slides = [
        (1, "Roadmap\n\nCANARY-SLIDE ship it\n\nSpeaker notes: say CANARY-NOTES"),
        (2, "Risks\n\nlate\n\nSpeaker notes: none"),
    ]  # "ACME confidential", the master's footer on each, left out
    assert [(s.page, s.text) for s in read("d.uop", deck).segments] == slides
    assert "ACME confidential" in deck
    # A title placeholder heads its slide; known by its content under another name.
    titled = deck.replace(
        'uof:图形引用="gr3_0" uof:随动方式="movesize" uof:占位符=""',
        ('uof:图形引用="gr3_0" uof:随动方式="movesize" uof:占位符="title"'),
    )
    parsed = read("d.xml", titled)
    assert (parsed.file_type, parsed.segments[0].text[:10]) == ("uop", "# Roadmap\n")
    # Of a type not known, or with nothing in it.
    with pytest.raises(UnsupportedFileTypeError, match=r"'vnd\.uof\.chart'"):
        read(
            "c.uof.xml",
            deck.replace('uof:mimetype="vnd.uof.presentation"', 'uof:mimetype="vnd.uof.chart"'),
        )
    empty = '<uof:UOF xmlns:uof="http://schemas.uof.org/cn/2003/uof" uof:mimetype="vnd.uof.text"/>'
    with pytest.raises(BlankDocumentError, match="no text"):
        read("e.uot", empty)
    # Named so and not one; or cut short before its body.
    with pytest.raises(CorruptDocumentError, match="not a Uniform Office Format document"):
        read("n.uot", "<notes><p>hi</p></notes>")
    with pytest.raises(CorruptDocumentError, match="nothing left once mended"):
        read("cut.uot", xml("field-manual.uot")[:3000])


def test_a_ppt_slides_footer_date_and_number_are_left_out(tmp_path: Path) -> None:
    """ppt2pptx writes them as text boxes on every slide, an automatic date as the day
    of the conversion: each slide's text had ended "12/05/2026 CANARY-FOOTER ACME
    confidential 1", and changed from day to day. A PPTX's placeholders for them are left
    out by docling."""
    fixture = Path(__file__).parent.parent / "fixtures" / "libreoffice" / "footed.ppt.gz"
    deck = _file(tmp_path, "f.ppt", gzip.decompress(fixture.read_bytes()))
    parsed = parse_file(deck, "f.ppt", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, "CANARY-SLIDE quarterly numbers"),
        (2, "Second slide"),
    ]


def test_comments_libreoffice_wrote_are_listed_after_their_text(tmp_path: Path) -> None:
    """RTF, PPTX, ODP and PPT files LibreOffice wrote (tests/fixtures/libreoffice/README.md)."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "libreoffice"

    def read(name: str) -> list[tuple[int | None, str]]:
        path = str(fixtures / name)
        return [(s.page, s.text) for s in parse_file(path, name, OPTIONS).segments]

    assert read("reviewed.rtf") == [
        (
            None,
            "Before the marked passage after.\nPoint here.\n\nComments:\n"
            '- Comment (Ann L\u00e9e) on "the marked passage": CANARY-RANGE check this figure '
            "second para\n- Comment (Bob Roe): CANARY-POINT \u00e9 note",
        )
    ]
    slides = [
        (
            1,
            "CANARY-SLIDE quarterly numbers\n\nComments:\n"
            "- Comment (Ann Lee): CANARY-SLIDE-COMMENT these are last year's",
        ),
        (2, "Second slide\n\nComments:\n- Comment (Bob Roe): CANARY-SECOND add the source"),
    ]
    assert read("reviewed.pptx") == slides
    assert read("reviewed.odp") == read("reviewed.fodp") == slides
    # PowerPoint 97-2003: ppt2pptx leaves the comments out; they are read from the deck.
    deck = gzip.decompress((fixtures / "reviewed.ppt.gz").read_bytes())
    parsed = parse_file(_file(tmp_path, "r.ppt", deck), "r.ppt", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == slides
    # Bytes that look like a comment's header and hold no comment are passed over.
    atom = struct.pack("<HHI", 0, 0x2EE1, 0x1C)
    assert deck.count(atom) == 2
    fake = deck.replace(atom, struct.pack("<HHI", 0, 0x2EE2, 0x1C), 1)
    parsed = parse_file(_file(tmp_path, "f.ppt", fake), "f.ppt", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, slides[0][1].split("\n\n")[0]),
        slides[1],
    ]
    from rag_ingest.parsers.legacy import ppt_comments

    assert ppt_comments(_file(tmp_path, "n.ppt", b"not a deck")) == []
    # Damage met on the second slide: the first slide's comments kept, and no error.
    import rag_ingest.parsers.legacy as legacy

    real, calls = legacy._records, []

    def damaged(stream: bytes, start: int, end: int) -> Any:
        calls.append(start)
        if len(calls) > 3:  # the document, its slide list, the first comment
            raise struct.error("cut short")
        return real(stream, start, end)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(legacy, "_records", damaged)
        kept = ppt_comments(_file(tmp_path, "k.ppt", deck))
    assert [(n, lines[0].split("\n")[1][:24]) for n, _, lines in kept] == [
        (1, "- Comment (Ann Lee): CAN")
    ]


def test_a_docbook_document_is_read_as_markdown(tmp_path: Path) -> None:
    # GNOME's and KDE's manuals, and many a project's documentation: read as text, it
    # had been its tags.
    book = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE book PUBLIC "-//OASIS//DTD DocBook XML V4.5//EN"
  "http://www.oasis-open.org/docbook/xml/4.5/docbookx.dtd" [
<!ENTITY app "<application>Backupper</application>">
]>
<book>
  <bookinfo><title>&app; Manual</title>
    <abstract><para>CANARY-ABSTRACT how to keep &app; backups.</para></abstract>
    <legalnotice><para>CANARY-LEGAL permission is granted</para></legalnotice>
    <copyright><year>2026</year><holder>ACME</holder></copyright>
  </bookinfo>
  <chapter><title>Getting started</title>
    <para>Install &kappname; first<indexterm><primary>CANARY-INDEX</primary></indexterm>,
      then choose <menuchoice><guimenu>File</guimenu><guimenuitem>Back up</guimenuitem>
      </menuchoice> or press <keycombo><keycap>Ctrl</keycap><keycap>B</keycap></keycombo>.
      <footnote><para>CANARY-FOOT since 2.0</para></footnote></para>
    <remark>CANARY-REMARK fix wording</remark>
    <note><para>Stop the database first.</para></note>
    <para>Pick a target:<itemizedlist><listitem><para>tape</para></listitem></itemizedlist>
    </para>
    <sect1><title>Options</title>
      <variablelist><varlistentry><term><option>--all</option></term>
        <listitem><para>Back up every volume.</para></listitem></varlistentry></variablelist>
      <procedure><title>Restore a file</title>
        <step><para>Open the archive.</para></step><step><para>Pick the file.</para></step>
      </procedure>
      <itemizedlist><listitem><para>fast</para></listitem><listitem><para>safe</para>
        </listitem></itemizedlist>
      <programlisting>backup --all \\
    --to /mnt</programlisting>
      <table><title>Limits</title><tgroup cols="2"><thead><row><entry>What</entry>
        <entry>Most</entry></row></thead><tbody><row><entry>Files | dirs</entry>
        <entry>10000</entry></row></tbody></tgroup></table>
      <screenshot><screeninfo>CANARY-SCREENINFO</screeninfo><mediaobject><textobject>
        <phrase>The main window</phrase></textobject></mediaobject></screenshot>
    </sect1>
  </chapter>
</book>"""
    expected = (
        "# Backupper Manual\n\n"
        "CANARY-ABSTRACT how to keep Backupper backups.\n\n"
        "## Getting started\n\n"
        "Install kappname first, then choose File > Back up or press Ctrl+B. "
        "(note: CANARY-FOOT since 2.0)\n\n"
        "Note: Stop the database first.\n\n"
        "Pick a target:\n\n- tape\n\n"
        "### Options\n\n"
        "- **--all**: Back up every volume.\n\n"
        "**Restore a file**\n\n"
        "1. Open the archive.\n2. Pick the file.\n\n"
        "- fast\n- safe\n\n"
        "```\nbackup --all \\\n    --to /mnt\n```\n\n"
        "**Limits**\n\n"
        "| What | Most |\n|---|---|\n| Files \\| dirs | 10000 |\n\n"
        "The main window"
    )
    names = ("manual.docbook", "manual.xml", "manual")
    for parsed in _read_as(tmp_path, book.encode(), "docbook", expected, *names):
        assert parsed.warnings == []
    # A manual page (refentry): its name and section, then what it is for.
    manual = (
        '<!DOCTYPE refentry PUBLIC "-//OASIS//DTD DocBook XML V4.1.2//EN" "docbookx.dtd">'
        "<refentry><refentryinfo><date>2026</date></refentryinfo><refmeta><refentrytitle>"
        "csv2ods</refentrytitle><manvolnum>1</manvolnum></refmeta><refnamediv><refname>"
        "csv2ods</refname><refpurpose>Create a spreadsheet from CSV</refpurpose></refnamediv>"
        "<refsynopsisdiv><title>Synopsis</title><cmdsynopsis><command>csv2ods</command>"
        "\n  <arg choice='plain'>-i "
        "<replaceable>file.csv</replaceable></arg></cmdsynopsis></refsynopsisdiv>"
        "<refsect1><title>Options</title><variablelist><varlistentry><term>-i</term>"
        "<listitem><para>Input.</para></listitem></varlistentry><varlistentry><term>-o</term>"
        "<listitem><para>Output.</para></listitem></varlistentry></variablelist></refsect1>"
        "</refentry>"
    )
    parsed = parse_file(_file(tmp_path, "csv2ods.docbook", manual.encode()), "c.docbook", OPTIONS)
    assert parsed.text == (
        "# csv2ods(1)\n\ncsv2ods \u2014 Create a spreadsheet from CSV\n\n"
        "## Synopsis\n\n```\ncsv2ods -i file.csv\n```\n\n"
        "## Options\n\n- **-i**: Input.\n- **-o**: Output."
    )
    # DocBook 5: by its namespace, titles in <info> too.
    five = (
        '<?xml version="1.0"?><article xmlns="http://docbook.org/ns/docbook" version="5.0">'
        "<info><title>CANARY-FIVE</title></info><section><title>Part</title>"
        "<para>Text.</para></section></article>"
    )
    parsed = parse_file(_file(tmp_path, "a.dbk", five.encode()), "a.dbk", OPTIONS)
    assert parsed.text == "# CANARY-FIVE\n\n## Part\n\nText."
    # Not well formed (a bare "&" typed in; cut short): read mended, said.
    raw = book.replace("Stop the database first.", "Stop the database & first.")
    _mended_as(tmp_path, raw.encode(), "raw.xml", expected, "not well-formed (invalid token)")
    cut = book.encode()[: book.index("<sect1>")]
    _mended_as(tmp_path, cut, "cut.xml", expected[: expected.index("\n\n### Options")], "no el")
    with pytest.raises(CorruptDocumentError, match=_LOST):
        parse_file(_file(tmp_path, "h.xml", cut[: cut.index(b"<bookinfo>")]), "h.xml", OPTIONS)
    # A DocBook DOCTYPE quoted further down another document does not make it DocBook.
    quoted = b'<catalog><!-- use <!DOCTYPE book PUBLIC "-//OASIS//DTD DocBook XML V4.5//EN"> -->'
    quoted += b"<entry>x</entry></catalog>"
    assert detect(_file(tmp_path, "catalog.xml", quoted), "catalog.xml").kind == "text"


def test_a_mallard_page_is_read_as_markdown(tmp_path: Path) -> None:
    # GNOME's help pages: 896 of gnome-calculator's had been read as text, tags and all.
    page = """<page xmlns="http://projectmallard.org/1.0/" type="topic" id="keys">
  <info><link type="guide" xref="index#ui"/><credit type="editor"><name>CANARY-CREDIT</name>
    </credit><desc>CANARY-DESC</desc></info>
  <title>Using the Keyboard</title>
  <p>Press <keyseq><key>Ctrl</key>number</keyseq> or choose
    <guiseq><gui>Edit</gui><gui>Copy</gui></guiseq>.</p>
  <steps><item><p>Open the menu.</p></item><item><p>Pick a mode.</p></item></steps>
  <terms><item><title><gui>Basic</gui></title><p>Plain sums.</p></item></terms>
  <table><tr><td><p>\u00d7</p></td><td><p><key>*</key></p></td></tr>
    <tr><td><p>\u221a</p></td><td><p><keyseq><key>Ctrl</key><key>R</key></keyseq></p></td></tr>
  </table>
  <note style="tip"><p>CANARY-TIP use the numpad.</p></note>
  <code mime="text/x-shellscript">gnome-calculator --solve 1+1</code>
  <media type="image" src="figures/main.png"/>
  <links type="seealso"><title>CANARY-LINKS</title></links>
  <section id="more"><title>More keys</title><p>See <link xref="index">the index</link>.</p>
  </section>
</page>"""
    expected = (
        "# Using the Keyboard\n\n"
        "Press Ctrl+number or choose Edit > Copy.\n\n"
        "1. Open the menu.\n2. Pick a mode.\n\n"
        "- **Basic**: Plain sums.\n\n"
        "| \u00d7 | * |\n|---|---|\n| \u221a | Ctrl+R |\n\n"
        "Note: CANARY-TIP use the numpad.\n\n"
        "```\ngnome-calculator --solve 1+1\n```\n\n"
        "## More keys\n\nSee the index."
    )
    names = ("keys.page", "keys.xml", "keys")
    for parsed in _read_as(tmp_path, page.encode(), "mallard", expected, *names):
        assert parsed.warnings == []


def test_undecodable_bytes_are_replaced_and_reported(tmp_path: Path) -> None:
    data = b"CANARY-MIXED valid text " * 20 + b"\xff\xfe\xfa bad " + b"more text " * 20
    parsed = parse_file(_file(tmp_path, "m.txt", data), "m.txt", OPTIONS)
    assert "CANARY-MIXED" in parsed.text


def test_images_are_extracted_only_when_asked(tmp_path: Path) -> None:
    pdf = _file(tmp_path, "fig.pdf", docs.pdf_with_image("text"))
    assert parse_file(pdf, "fig.pdf", OPTIONS).images == []
    images = parse_file(pdf, "fig.pdf", ParseOptions(max_images=5)).images
    assert [(i.page, i.mime) for i in images] == [(2, "image/png")]

    import io

    import pymupdf
    from docx import Document

    png = pymupdf.Pixmap(pymupdf.csRGB, 64, 64, bytes(range(256)) * 48, False).tobytes("png")
    doc = Document()
    doc.add_paragraph("CANARY-PICTURE below")
    doc.add_picture(io.BytesIO(png))
    buf = io.BytesIO()
    doc.save(buf)
    docx = _file(tmp_path, "pic.docx", buf.getvalue())
    parsed = parse_file(docx, "pic.docx", ParseOptions(max_images=5, min_image_bytes=100))
    assert len(parsed.images) == 1 and parsed.images[0].mime == "image/png"
    assert parsed.images[0].data.startswith(b"\x89PNG")


def test_tables_mode_finds_ruled_tables_and_matches_pymupdf4llm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymupdf
    import pymupdf4llm

    from rag_ingest.parsers.pdf import _one_blank_line

    calls: list[dict[str, object]] = []
    convert = pymupdf4llm.to_markdown

    def recorded(doc: object, **options: object) -> object:
        calls.append(options)
        return convert(doc, **options)

    for data in (docs.pdf_with_table(), docs.corpus()["reports/long.pdf"]):
        path = _file(tmp_path, "t.pdf", data)
        calls.clear()
        with monkeypatch.context() as patch:
            patch.setattr(pymupdf4llm, "to_markdown", recorded)
            parsed = parse_file(path, "t.pdf", ParseOptions(pdf_mode="tables"))
        ours = [s.text for s in parsed.segments]
        # Pages without drawings skip the table search, the background colour and the
        # second look for drawings; pages with them get pymupdf4llm's defaults.
        for options in calls:
            skipped = {"table_strategy": None, "detect_bg_color": False, "ignore_graphics": True}
            assert skipped.items() <= options.items() or not skipped.keys() & options.keys()
        pymupdf4llm.use_layout(False)
        with pymupdf.open(path) as doc:
            theirs = [
                c["text"]
                for c in pymupdf4llm.to_markdown(doc, page_chunks=True, show_progress=False)
            ]
        # The same Markdown, page by page (runs of blank lines as one).
        assert ours == [_one_blank_line(t) for t in theirs if t.strip()]
    # Fast mode reads every page so: the text inside a drawn grid was lost with drawings.
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(pymupdf4llm, "to_markdown", recorded)
        parse_file(_file(tmp_path, "r.pdf", docs.pdf_with_table()), "r.pdf",
                   ParseOptions(pdf_mode="fast"))  # fmt: skip
    assert calls and all(options.get("ignore_graphics") is True for options in calls)
    ruled = _file(tmp_path, "r.pdf", docs.pdf_with_table())
    assert "|r1c0|r1c1|r1c2|" in parse_file(ruled, "r.pdf", ParseOptions(pdf_mode="tables")).text
    fast = parse_file(ruled, "r.pdf", ParseOptions(pdf_mode="fast")).text
    assert "|r1c0|" not in fast and "r1c0" in fast  # its cells as text


def test_a_pdf_table_s_merged_cell_is_written_once_and_no_column_is_named_for_it(
    tmp_path: Path,
) -> None:
    import pymupdf

    # PyMuPDF's default wrote a merged cell's text in every column it spans, and named an
    # empty header cell "Col2": a form laid out as a grid (the IRS's 1040 in pdf.js's
    # tests) came out over 20 times its length.
    given = pymupdf.table.Table.to_markdown
    path = _file(tmp_path, "m.pdf", docs.pdf_with_merged_cells())
    text = parse_file(path, "m.pdf", ParseOptions(pdf_mode="tables")).text
    assert text.count("CANARY-MERGED") == 1
    assert "|Item||Total|" in text and "Col2" not in text
    assert "|CANARY-MERGED across the row|||" in text and "|r2c0|r2c1|r2c2|" in text
    assert "||||" not in text  # the empty row, left out
    # Scoped: the caller's own PyMuPDF keeps its default.
    assert pymupdf.table.Table.to_markdown is given
    # A label merged over rows is written in each, as in docling's tables; a long text
    # merged over rows, once.
    doc = pymupdf.open()
    page = doc.new_page()
    long = "CANARY-TALL notes, more than a label"

    def cell(rows: tuple[int, int], column: int, text: str) -> None:
        x, y = 72 + column * 150, 80 + rows[0] * 20
        page.draw_rect(pymupdf.Rect(x, y, x + 150, 100 + rows[1] * 20), color=(0, 0, 0))
        page.insert_text((x + 3, y + 14), text, fontsize=6)

    for column, name in enumerate(("Region", "Q", "Notes")):
        cell((0, 0), column, name)
    cell((1, 3), 0, "CANARY-LABEL")
    cell((1, 3), 2, long + ", and longer")
    for row in (1, 2, 3):
        cell((row, row), 1, f"q{row}")
    # A cell merged over columns is not a label over rows: the one after it stays empty.
    x, y = 72, 160
    page.draw_rect(pymupdf.Rect(x, y, x + 300, y + 20), color=(0, 0, 0))
    page.insert_text((x + 3, y + 14), "CANARY-WIDE", fontsize=6)
    cell((4, 4), 2, "x")
    path = _file(tmp_path, "v.pdf", bytes(doc.tobytes()))
    rows = parse_file(path, "v.pdf", ParseOptions(pdf_mode="tables")).text.splitlines()
    assert "|CANARY-LABEL|q1|" + long + ", and longer|" in rows, rows
    assert "|CANARY-LABEL|q2||" in rows and "|CANARY-LABEL|q3||" in rows
    assert "|CANARY-WIDE||x|" in rows
    # PyMuPDF's table read otherwise (a later release): its Markdown as it is, not an
    # error that would leave the whole PDF to plain text.
    from rag_ingest.parsers.pdf import _labels_down

    assert _labels_down(object(), "|a|\n|---|\n|b|\n") == "|a|\n|---|\n|b|\n"
    from rag_ingest.parsers.pdf import _merged_cells_once

    with _merged_cells_once(object()):  # a PyMuPDF without its table class: no patch
        pass


def test_pdf_text_drawn_as_a_clip_is_read_and_invisible_text_is_not(tmp_path: Path) -> None:
    import pymupdf

    # Text drawn as a clipping path or filled with a pattern (a gradient title) is shown,
    # but MuPDF reports it as transparent and pymupdf4llm skipped it: pdf.js's
    # text_clip_cff_cid.pdf and pattern_text_embedded_font.pdf failed as without text.
    def pdf(*lines: tuple[str, int]) -> str:
        doc = pymupdf.open()
        page = doc.new_page()
        for n, (text, mode) in enumerate(lines):
            page.insert_text((72, 72 + 30 * n), text, fontsize=11, render_mode=mode)
        return _file(tmp_path, "c.pdf", bytes(doc.tobytes()))

    title = "CANARY-TITLE drawn through its gradient, more than fifty letters long"
    assert title in parse_file(pdf((title, 7)), "c.pdf", OPTIONS).text
    assert title in parse_file(pdf(("Page one", 0), (title, 7)), "c.pdf", OPTIONS).text
    # Invisible text (render mode 3: a hidden prompt) beside shown text is not read, and
    # a page holding some keeps skipping its clipped text too.
    hidden = parse_file(pdf(("Page one", 0), (title, 3)), "c.pdf", OPTIONS).text
    assert hidden.strip() == "Page one"
    both = pdf(("Page one", 0), (title, 7), ("CANARY-HIDDEN", 3))
    assert parse_file(both, "c.pdf", OPTIONS).text.strip() == "Page one"


def test_a_docx_table_s_merged_body_cell_is_written_once_a_stacked_header_whole(
    tmp_path: Path,
) -> None:
    from docx import Document

    # docling wrote a merged cell's text in every row and column it spans.
    # A grid's empty rows and columns (a form's spacers) are left out.
    document = Document()
    table = document.add_table(rows=5, cols=4)
    table.cell(0, 0).text, table.cell(0, 1).text, table.cell(0, 2).text = "Region", "Q", "N"
    table.cell(1, 0).merge(table.cell(1, 2)).text = "CANARY-WIDE notes across the row"
    # A label merged over rows is written in each, so that each row says what it is about.
    table.cell(2, 0).merge(table.cell(3, 0)).text = "CANARY-LABEL"
    long = "CANARY-TALL notes, more than a label's forty characters"
    table.cell(2, 2).merge(table.cell(3, 2)).text = long
    table.cell(2, 1).text, table.cell(3, 1).text = "q2", "q3"
    buffer = io.BytesIO()
    document.save(buffer)
    text = parse_file(_file(tmp_path, "m.docx", buffer.getvalue()), "m.docx", OPTIONS).text
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()]
    assert rows[0] == ["Region", "Q", "N"] and len(rows) == 5, text  # header, rule, 3 rows
    assert ["CANARY-WIDE notes across the row", "", ""] in rows
    assert ["CANARY-LABEL", "q2", long] in rows and ["CANARY-LABEL", "q3", ""] in rows
    # A header cell over a row of headers is written over each of its columns, so that
    # the columns below are named whole.
    page = (
        b"<html><body><table><tr><th rowspan=2>Region</th><th colspan=2>CANARY-Q1</th></tr>"
        b"<tr><th>Sales</th><th>Units</th></tr><tr><td>North</td><td>10</td><td>20</td></tr>"
        b"</table></body></html>"
    )
    html = parse_file(_file(tmp_path, "s.html", page), "s.html", OPTIONS).text
    assert html.count("CANARY-Q1") == 2, html


def test_a_pipe_in_a_table_cell_is_escaped_as_markdown_not_as_an_html_entity(
    tmp_path: Path,
) -> None:
    """docling wrote a cell's "|" as "&#124;": a page's menu, "Home | About", came into
    its chunks as "Home &#124; About"."""
    from docx import Document

    document = Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Menu", "Links"
    table.cell(1, 0).text, table.cell(1, 1).text = "Home | About | CANARY-PIPE", "x"
    buffer = io.BytesIO()
    document.save(buffer)
    text = parse_file(_file(tmp_path, "p.docx", buffer.getvalue()), "p.docx", OPTIONS).text
    assert "&#124;" not in text and "| Home \\| About \\| CANARY-PIPE | x" in text, text


def test_a_readme_s_badges_are_left_out(tmp_path: Path) -> None:
    readme = (
        "# tool\n\n"
        "[![Build Status](https://travis-ci.org/o/tool.svg?branch=main)](https://travis-ci.org/o/tool)"
        " [![PyPI](https://img.shields.io/pypi/v/tool)](https://pypi.org/project/tool)\n"
        "[![Chat](https://badges.gitter.im/Join.svg)](https://gitter.im/o?utm_source=badge)\n\n"
        "CANARY-INTRO tool does one thing.\n\n"
        "[![CANARY-SHOT screenshot](docs/shot.png)](docs/shot.png)\n\n"
        "```markdown\n[![CANARY-EXAMPLE](https://img.shields.io/x.svg)](https://x)\n```\n"
    )
    path = _file(tmp_path, "README.md", readme.encode())
    text = parse_file(path, "README.md", OPTIONS).text
    assert "Build Status" not in text and "PyPI" not in text and "gitter" not in text
    assert text.startswith("# tool\n\nCANARY-INTRO tool does one thing.")
    assert "CANARY-SHOT" in text  # a linked picture that is no badge
    assert "[![CANARY-EXAMPLE](https://img.shields.io/x.svg)](https://x)" in text  # code


def test_markdown_not_in_utf_8_is_read_in_its_own_encoding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docling reads Markdown that is not UTF-8 as cp1252: a GBK README came out as
    mojibake with no word said, and a Shift-JIS one, or UTF-8 with a stray byte, failed
    as corrupt."""
    for text, encoding, read_as in (
        ("# 安装说明\n\n本项目使用 Python 编写。请先安装依赖然后运行测试。\n", "gbk", "gb18030"),
        (
            "# 概要\n\nこのプロジェクトは文書を取り込みます。設定を確認してください。\n",
            "shift_jis",
            "cp932",
        ),
    ):
        data = text.encode(encoding)
        parsed = parse_file(_file(tmp_path, f"{encoding}.md", data), f"{encoding}.md", OPTIONS)
        assert parsed.text == text.strip() and parsed.warnings == []
        assert parsed.parser == f"docling-markdown[{read_as}]"  # as a text file's says it
    # A stray byte in UTF-8 (0x90, no cp1252 character) is replaced, and said; front
    # matter and headings read as before.
    data = "---\ntitle: Café\n---\n\n## Naïve\n\nCANARY-STRAY 東京".encode() + b"\x90 end\n"
    parsed = parse_file(_file(tmp_path, "stray.md", data), "stray.md", OPTIONS)
    assert parsed.text == "# Café\n\n## Naïve\n\nCANARY-STRAY 東京\ufffd end"
    assert parsed.warnings == ["1 undecodable bytes replaced with U+FFFD"]
    assert parse_file(_file(tmp_path, "u.md", b"# Plain\n"), "u.md", OPTIONS).parser == (
        "docling-markdown"
    )
    assert "not UTF-8" not in caplog.text  # docling's guess (cp1252), never made


def test_markdown_front_matter_is_the_title_not_a_heading_of_its_fields(tmp_path: Path) -> None:
    page = (
        b"---\ntitle: Install guide\ndescription: How to install CANARY-FM\n"
        b"tags: [setup, cli]\ndate: 2024-05-01\n---\n\n# Installing\n\nRun pip install.\n"
    )
    parsed = parse_file(_file(tmp_path, "install.md", page), "install.md", OPTIONS)
    assert parsed.text.startswith("# Install guide\n\nHow to install CANARY-FM\n\n# Installing")
    assert "tags" not in parsed.text and "2024" not in parsed.text
    # The heading that is its part of the title gives way to it, under the description.
    sited = b"---\ntitle: Installing | Guide\ndescription: CANARY-FM\n---\n# Installing\n\nRun.\n"
    parsed = parse_file(_file(tmp_path, "i.md", sited), "i.md", OPTIONS)
    assert parsed.text == "# Installing | Guide\n\nCANARY-FM\n\nRun.", parsed.text
    hugo = b'+++\ntitle = "Hugo page"\ndraft = false\n+++\nBody text.\n'
    parsed = parse_file(_file(tmp_path, "h.md", hugo), "h.md", OPTIONS)
    assert parsed.text == "# Hugo page\n\nBody text."
    # A title that is one of the page's words, or begins a longer one, is still given
    # (npm's 'Scripts' and 'Install' pages lost theirs); one the first heading names is not.
    for title, body, head in (
        (
            "Scripts",
            "### Description\n\nThe scripts run in order.\n\n### Life Cycle Scripts\n",
            "# Scripts\n\n###",
        ),
        ("Install", "### Installing Node\n\nRun it.\n", "# Install\n\n###"),
        ("npm-view", "# npm-view @11.19\n\nView it.\n", "# npm-view @11.19"),
        ("Types", "# The library\n\n## Types\n\nIt has types.\n", "# The library\n\n## Types"),
    ):
        page = f"---\ntitle: {title}\n---\n{body}".encode()
        parsed = parse_file(_file(tmp_path, "t.md", page), "t.md", OPTIONS)
        assert parsed.text.startswith(head), parsed.text
    # A rule, a paragraph, a rule: not front matter, kept as it is.
    ruled = b"---\nJust a paragraph between rules.\n---\n\nMore.\n"
    parsed = parse_file(_file(tmp_path, "r.md", ruled), "r.md", OPTIONS)
    assert "Just a paragraph between rules." in parsed.text

    # MDX (Docusaurus): Markdown without its module lines; JSX keeps its text.
    mdx = (
        b'---\ntitle: Tabs page\n---\nimport Tabs from "@theme/Tabs";\nexport const x = 1;\n\n'
        b'# Setup\n\n<Tabs><TabItem value="a">CANARY-TAB</TabItem></Tabs>\n\n'
        b'```js\nimport y from "z";\n```\n'
    )
    parsed = parse_file(_file(tmp_path, "p.mdx", mdx), "p.mdx", OPTIONS)
    assert parsed.file_type == "markdown" and parsed.text.startswith("# Tabs page\n\n# Setup")
    assert "@theme" not in parsed.text and "export const" not in parsed.text
    assert "CANARY-TAB" in parsed.text and 'import y from "z";' in parsed.text


def test_code_blocks_keep_their_language(tmp_path: Path) -> None:
    guide = b'# Guide\n\n```python\nprint("hi")\n```\n\n```bash\nls -la\n```\n'
    parsed = parse_file(_file(tmp_path, "g.md", guide), "g.md", OPTIONS)
    assert parsed.text == '# Guide\n\n```python\nprint("hi")\n```\n\n```bash\nls -la\n```'
    page = (
        b'<html><body><pre><code class="language-go">fmt.Println(1)</code></pre>'
        b"<pre>a plain block</pre></body></html>"
    )
    parsed = parse_file(_file(tmp_path, "p.html", page), "p.html", OPTIONS)
    assert parsed.text == "```go\nfmt.Println(1)\n```\n\n```\na plain block\n```"


def test_encoded_data_in_text_is_left_out(tmp_path: Path) -> None:
    import base64
    import random

    blob = base64.b64encode(random.Random(7).randbytes(3000)).decode()
    pem = "\n".join(blob[i : i + 64] for i in range(0, 1280, 64))
    rule = "-" * 300
    url = "https://example.com/" + "docs/" * 60
    text = (
        f"config notes CANARY-TXT\ntoken = '{blob}'\n{rule}\n{url}\n"
        f"-----BEGIN CERTIFICATE-----\n{pem}\n-----END CERTIFICATE-----\nthe end\n"
    )
    parsed = parse_file(_file(tmp_path, "notes.txt", text.encode()), "notes.txt", OPTIONS)
    assert parsed.text == (
        f"config notes CANARY-TXT\ntoken = '[encoded data, 4,000 characters]'\n{rule}\n{url}\n"
        "-----BEGIN CERTIFICATE-----\n[encoded data, 1,299 characters]"
        + "\n" * 20  # its 19 line breaks kept: the lines after it keep their numbers
        + "-----END CERTIFICATE-----\nthe end\n"
    )
    assert parsed.text.count("\n") == text.count("\n")
    assert parsed.warnings == ["5,299 characters of encoded (base64 or hex) data left out"]


def test_encoded_data_is_looked_for_only_where_it_can_be_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over the whole of a 150 MB log the expressions took 9.7 s of its 10 s parse: they
    now run only on the lines with a run of 60 or more of base64's characters (with the
    line after, a PEM block's last): the same text, the same count, as over it all."""
    import base64
    import random

    from rag_ingest.parsers.text import _dropped, drop_encoded

    blob = base64.b64encode(random.Random(3).randbytes(700)).decode()
    pem = "\n".join(blob[i : i + 64] for i in range(0, len(blob), 64))  # a short last line
    assert len(pem.rsplit("\n", 1)[1]) < 60
    hexed = random.Random(4).randbytes(200).hex()
    texts = [
        f"{pem}\nat the start",
        f"a log line\n{pem}",  # at the end, no line break after
        f"key: {blob}",
        f"2026-12-03 INFO hash {'ab12' * 16} sha\n{'-' * 80}\nplain\n{pem}\n\nnext {hexed}",
        f"X'{hexed}' and 0x{hexed}\n\\x{hexed}\n",
        f"{'é' * 300}\nline\n{pem}\n",  # not ASCII: its blocks with a run whole
        f"{pem}\n{'é' * 30}\n{pem}\n{'é' * 30}\n{blob}\n",
        "nothing long here\n" * 50,
    ]
    from rag_ingest.parsers import text as text_module

    # Looked through in blocks of lines (a copy or two of each, not of the whole).
    for block in (8 * 1024 * 1024, 100, 1):
        monkeypatch.setattr(text_module, "_BLOCK", block)
        for text in texts:
            assert drop_encoded(text) == _dropped(text), (block, text[:80])
    assert drop_encoded(texts[0])[1] == len(pem)
    assert drop_encoded(texts[-1]) == (texts[-1], 0)


def test_binary_data_written_as_hex_is_left_out(tmp_path: Path) -> None:
    # A dump's BLOBs: MySQL's 0x... and X'...', PostgreSQL's bytea \x... in COPY.
    png = "89504E470D0A1A0A" * 64  # 512 bytes
    text = (
        f"INSERT INTO files VALUES (1,'logo.png',_binary 0x{png},'CANARY-A'),"
        f"(2,'b.png',X'{png}','CANARY-B');\n"
        f"COPY public.files (id, data) FROM stdin;\n3\t\\x{png.lower()}\tCANARY-C\n\\.\n"
        "short hex stays: 0xDEADBEEF, x'00ff', \\x41\n"
    )
    parsed = parse_file(_file(tmp_path, "files.sql", text.encode()), "files.sql", OPTIONS)
    stub = "[binary data, 512 bytes]"
    assert parsed.text == (
        f"INSERT INTO files VALUES (1,'logo.png',_binary {stub},'CANARY-A'),"
        f"(2,'b.png',{stub},'CANARY-B');\n"
        f"COPY public.files (id, data) FROM stdin;\n3\t{stub}\tCANARY-C\n\\.\n"
        "short hex stays: 0xDEADBEEF, x'00ff', \\x41\n"
    )
    assert parsed.warnings == ["3,079 characters of encoded (base64 or hex) data left out"]


def test_json_records_become_a_block_each(tmp_path: Path) -> None:
    import json

    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings

    tickets = [
        {
            "id": f"T-{n}",
            "title": f"Ticket {n} CANARY-REC-{n}",
            "user": {"name": "Ann", "team": {"name": "ops", "site": "Lyon"}},
            "tags": ["urgent", "printer"],
            "comments": [{"by": "Bo", "text": "the toner was replaced and the jam cleared"}],
            "body": "## Steps\n\n1. print\n# jams",
            "closed": n % 2 == 0,
            "score": None,
        }
        for n in range(60)
    ]
    export = {"total": 60, "page": 1, "items": tickets}
    files = {
        "export.json": json.dumps(export, indent=2),
        "tickets.jsonl": "\n".join(json.dumps(t) for t in tickets) + "\n",
    }
    for name, data in files.items():
        parsed = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS)
        where = "items" if name == "export.json" else ""
        assert (parsed.file_type, parsed.parser) == ("json", "json-records[utf-8]")
        first = (
            f"## {where}[0]\nid: T-0\ntitle: Ticket 0 CANARY-REC-0\nuser.name: Ann\n"
            "user.team.name: ops\nuser.team.site: Lyon\ntags: urgent, printer\n"
            "comments[0].by: Bo\ncomments[0].text: the toner was replaced and the jam cleared\n"
            "body: ## Steps\n\n  1. print\n  # jams\nclosed: true\nscore: null"
        )
        assert first in parsed.text
        assert parsed.text.startswith("total: 60\npage: 1\n\n" if where else f"## {where}[0]")
        plan = chunk_document(parsed, ChunkSettings(), {})
        assert len(plan.chunks) > 3
        # A chunk holds whole records, each under its heading; none is split.
        for chunk in plan.chunks:
            body = chunk.text.removeprefix("total: 60\npage: 1\n\n")
            assert body.startswith(f"## {where}["), chunk.text[:80]
            records = sum(line.startswith("## ") for line in body.split("\n"))
            assert body.count("\nid: T-") == records == body.count("\nscore: null")
        # A value's Markdown stays the value's: no chunk's path names "Steps" or "jams".
        assert plan.chunks[1].metadata["heading_path"].startswith(f"{where}[")
        assert all("]" in c.metadata["heading_path"] for c in plan.chunks[1:])


def test_records_further_down_and_json_by_other_names_are_records(tmp_path: Path) -> None:
    """A search engine's hits (``hits.hits``), a GraphQL answer's nodes, a browser's HTTP
    archive (``.har``: ``log.entries``) and a GeoJSON map's features were text: as one
    minified line, chunked whole in one task (a 97 MB GeoJSON file outlasted
    parse.timeout, a 70 MB ``data.items`` export took 44.7 s: now 48.9 s and 22.2 s)."""
    import json

    rows = [{"id": n, "title": f"CANARY-DEEP-{n}", "body": "word " * 20} for n in range(30)]
    files = {
        "search.json": (
            {"took": 3, "hits": {"total": 30, "hits": rows}},
            "hits.hits",
            "took: 3\nhits.total: 30\n\n",
        ),
        "answer.json": (
            {"data": {"repository": {"name": "r", "issues": {"nodes": rows}}}},
            "data.repository.issues.nodes",
            "data.repository.name: r\n\n",
        ),
        "session.har": (
            {"log": {"version": "1.2", "entries": rows}},
            "log.entries",
            "log.version: 1.2\n\n",
        ),
        "map.geojson": (
            {"type": "FeatureCollection", "features": rows},
            "features",
            "type: FeatureCollection\n\n",
        ),
        # A key on the way names what the records belong to: kept.
        "waiters.yaml": (
            {"version": 2, "waiters": {"Ready": {"delay": 15, "acceptors": rows}}},
            "waiters.Ready.acceptors",
            "version: 2\nwaiters.Ready.delay: 15\n\n",
        ),
    }
    for name, (value, where, rest) in files.items():
        data = json.dumps(value, separators=(",", ":"))  # YAML reads JSON as well
        parsed = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS)
        kind = "yaml" if name.endswith(".yaml") else "json"
        assert (parsed.file_type, parsed.parser) == (kind, f"{kind}-records[utf-8]"), name
        assert parsed.text.startswith(f"{rest}## {where}[0]\nid: 0\n"), name
        assert f"\n\n## {where}[29]\nid: 29\ntitle: CANARY-DEEP-29\nbody: word" in parsed.text
    # Not most of it, or more than three levels down: text, as before.
    for value in (
        {"schema": {"notes": "word " * 300}, "data": {"items": rows}},
        {"a": {"b": {"c": {"d": {"items": rows}}}}},
    ):
        data = json.dumps(value)
        parsed = parse_file(_file(tmp_path, "other.json", data.encode()), "other.json", OPTIONS)
        assert (parsed.file_type, parsed.text) == ("text", data)


def test_json_records_under_a_name_that_says_nothing_are_records(tmp_path: Path) -> None:
    """A Hadoop job's ``part-00000`` and a Kinesis Firehose delivery (objects one after
    another, nothing between them) have no extension: they were text, their records'
    lines run together."""
    import json

    rows = [{"id": n, "event": f"CANARY-FH-{n}", "user": {"name": "ann"}} for n in range(12)]
    files = {
        "part-00000": "\n\n" + "\n".join(json.dumps(r) for r in rows) + "\n",
        "PUT-S3-stream-1-2026-12-03-08-10-00-0f6a": "\ufeff" + "".join(map(json.dumps, rows)),
        "events.json": "\n".join(json.dumps(r, indent=1) for r in rows),  # pretty, no commas
    }
    for name, data in files.items():
        parsed = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS)
        assert (parsed.file_type, parsed.parser[:18]) == ("json", "json-records[utf-8"), name
        assert parsed.text.startswith("## [0]\nid: 0\nevent: CANARY-FH-0\nuser.name: ann\n\n")
        assert parsed.text.endswith("## [11]\nid: 11\nevent: CANARY-FH-11\nuser.name: ann")
        said = [] if name.endswith(".json") else ["unknown extension (none); JSON records"]
        assert parsed.warnings == said
    # Text that only begins as JSON does, or one value: text, as before.
    for data in (
        "{{ greeting }}, {{ name }}!\n",
        '{"id": 1} and more',
        '{"id": 1}\n',
        '{"id": 1} 7 {"id": 2}',
    ):
        parsed = parse_file(_file(tmp_path, "template", data.encode()), "template", OPTIONS)
        assert (parsed.file_type, parsed.text) == ("text", data)
        assert parsed.warnings == ["unknown extension (none); treated as text"]


def test_a_json_lines_export_cut_short_is_still_its_records(tmp_path: Path) -> None:
    """Its last line cut short (an export still being written, a download cut off): one
    line not JSON made the whole file plain text, its records' blocks and key paths lost."""
    import json

    lines = [json.dumps({"id": n, "title": f"CANARY-LINE-{n}"}) for n in range(20)]
    data = "\n".join([*lines[:5], "# exported by tool 2.1", *lines[5:], '{"id": 20, "ti'])
    parsed = parse_file(_file(tmp_path, "cut.jsonl", data.encode()), "cut.jsonl", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("json", "json-records[utf-8]")
    assert parsed.warnings == ["2 line(s) not a JSON object, kept as written"]
    assert parsed.text.startswith("## [0]\nid: 0\ntitle: CANARY-LINE-0\n\n## [1]")
    assert "## [5]\n# exported by tool 2.1\n\n## [6]\nid: 5\n" in parsed.text
    assert parsed.text.endswith('## [20]\nid: 19\ntitle: CANARY-LINE-19\n\n## [21]\n{"id": 20, "ti')
    # Past one line in ten not objects, it is no JSON Lines file: plain text, as before.
    data = "\n".join([*lines[:8], "x", "y"])
    assert parse_file(_file(tmp_path, "m.jsonl", data.encode()), "m.jsonl", OPTIONS).parser == (
        "text[utf-8]"
    )


def test_json_that_is_not_records_stays_text(tmp_path: Path) -> None:
    config = '{\n  "name": "app",\n  "scripts": {"build": "tsc"},\n  "files": ["a", "b"]\n}\n'
    for name, data in (
        ("package.json", config),
        ("broken.json", '[{"id": 1}, {"id": 2'),
        ("numbers.json", '[1, 2, {"id": 3}, 4]'),
        # An OpenAPI spec: a short list of objects (its tags) beside the bulk of it.
        (
            "openapi.json",
            '{"tags": [{"name": "a"}, {"name": "b"}], "paths": {"/pets": {"get": '
            '{"summary": "List all pets in the store, with paging and filters"}}}}',
        ),
        ("mixed.jsonl", '{"id": 1}\nnot json\n'),
    ):
        parsed = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS)
        assert (parsed.file_type, parsed.text) == ("text", data)


def test_yaml_records_become_a_block_each(tmp_path: Path) -> None:
    manifests = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        "  template:\n    spec:\n      containers:\n        - name: app\n"
        "          image: CANARY-YAML/nginx:1.25\n          ports: [80, 443]\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  created: 2026-01-05\n"
    )
    tasks = "- name: Install nginx\n  apt: {name: nginx, state: present}\n- name: Start it\n"
    compose = "services:\n  web:\n    image: nginx\n"
    anchored = "items:\n  - {name: web, tier: &t front}\n  - {name: cache, tier: *t}\n"
    parsed = parse_file(_file(tmp_path, "k8s.yaml", manifests.encode()), "k8s.yaml", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("yaml", "yaml-records[utf-8]")
    assert parsed.text == (
        "## [0]\napiVersion: apps/v1\nkind: Deployment\nmetadata.name: web\n"
        "spec.template.spec.containers[0].name: app\n"
        "spec.template.spec.containers[0].image: CANARY-YAML/nginx:1.25\n"
        "spec.template.spec.containers[0].ports: 80, 443\n\n"
        "## [1]\napiVersion: v1\nkind: Service\nmetadata.name: web\nmetadata.created: 2026-01-05"
    )
    parsed = parse_file(_file(tmp_path, "tasks.yml", tasks.encode()), "tasks.yml", OPTIONS)
    assert parsed.text == (
        "## [0]\nname: Install nginx\napt.name: nginx\napt.state: present\n\n## [1]\nname: Start it"
    )
    # A config, and anchors and aliases (an alias bomb expands to billions of nodes),
    # stay text.
    for name, data in (("compose.yaml", compose), ("anchored.yaml", anchored)):
        parsed = parse_file(_file(tmp_path, name, data.encode()), name, OPTIONS)
        assert (parsed.file_type, parsed.text) == ("text", data)


def test_docx_code_found_by_font_is_the_same_with_the_font_check_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from docx import Document
    from docx.enum.style import WD_STYLE_TYPE

    from rag_ingest.parsers import office
    from rag_ingest.parsers.office import _backend

    doc = Document()
    code_style = doc.styles.add_style("Listing Text", WD_STYLE_TYPE.PARAGRAPH)
    code_style.font.name = "Courier New"
    doc.add_heading("Setup", 1)
    doc.add_paragraph("Call print(x) to show it; the prose stays prose in Calibri.")
    doc.add_paragraph().add_run("def area(r):  return 3.14 * r * r").font.name = "Courier New"
    doc.add_paragraph("x = load(path)", style="Listing Text")
    doc.add_paragraph("Plain words in a monospaced style", style="Listing Text")
    mixed = doc.add_paragraph()
    mixed.add_run("run(job) in ").font.name = "Consolas"
    mixed.add_run("a proportional tail that is most of the text of this line")
    buf = io.BytesIO()
    doc.save(buf)
    path = _file(tmp_path, "code.docx", buf.getvalue())

    backend, _ = _backend("docx")
    fast = parse_file(path, "code.docx", OPTIONS).text
    assert backend._is_code_by_font._fonts_first  # installed
    monkeypatch.setattr(office, "_SPEEDUPS", False)
    monkeypatch.setattr(backend, "_is_code_by_font", backend._is_code_by_font.__wrapped__)
    assert parse_file(path, "code.docx", OPTIONS).text == fast
    assert not hasattr(backend._is_code_by_font, "_fonts_first")  # docling's own ran
    assert "```python\ndef area(r):  return 3.14 * r * r\n" in fast
    assert "x = load(path)\n```" in fast  # the styled line joins the block above
    assert "\n\nCall print(x) to show it" in fast
    assert "\n\nPlain words in a monospaced style\n\nrun(job) in a proportional" in fast


def test_pptx_slides_pictures_and_notes_are_the_same_without_shape_boxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from rag_ingest.parsers import office
    from rag_ingest.parsers.office import _backend

    path = _file(tmp_path, "rich.pptx", _rich_deck())
    options = replace(OPTIONS, max_images=5, min_image_bytes=0)
    backend, _ = _backend("pptx")
    fast = parse_file(path, "rich.pptx", options)
    assert backend._generate_prov._slide_only  # installed
    monkeypatch.setattr(office, "_SPEEDUPS", False)
    monkeypatch.setattr(backend, "_generate_prov", backend._generate_prov.__wrapped__)
    full = parse_file(path, "rich.pptx", options)
    assert not hasattr(backend._generate_prov, "_slide_only")  # docling's own ran
    assert fast.text == full.text
    assert [(s.page, s.text) for s in fast.segments] == [(s.page, s.text) for s in full.segments]
    assert [i.page for i in fast.images] == [i.page for i in full.images] == [3]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.docx", lambda: docs.empty_office("docx")),
        ("empty.pptx", lambda: docs.empty_office("pptx")),
        ("blank-slide.pptx", lambda: docs.empty_office("blank-slide")),
        ("empty.xlsx", lambda: docs.empty_office("xlsx")),
        ("empty.xls", lambda: docs.xls_bytes([])),
        ("empty.odt", lambda: docs.odf_bytes("text", "<text:p> </text:p>")),
        (
            "app.html",
            lambda: (
                b"<html><head><script>run()</script><style>p{}</style></head>"
                b"<body onload='run()'></body></html>"
            ),
        ),
        (
            "empty.ipynb",
            lambda: b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        ),
        ("empty.eml", lambda: b"Subject: \r\nFrom: a@example.com\r\n\r\n\r\n"),
        ("empty.rtf", lambda: rb"{\rtf1\ansi {\fonttbl{\f0 Arial;}} \par }"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_document_with_nothing_written_in_it_is_blank(
    tmp_path: Path, name: str, data: object
) -> None:
    # A template, a deck of no slides, a page of scripts: nothing to index, skipped as a
    # blank file is (BlankDocumentError), not failed as unreadable.
    assert callable(data)
    with pytest.raises(BlankDocumentError, match="nothing to index"):
        parse_file(_file(tmp_path, name, data()), name, OPTIONS)


def test_a_refusal_of_docling_s_own_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docling refuses some files by its own policy (a page limit), with a message and no
    # cause: the error gives its message, not a bare "could not open".
    from types import SimpleNamespace

    import docling.datamodel.document as document

    class Refused:
        def __init__(self, **_: object) -> None:
            self.valid = False
            self.page_count = 7
            self._rejection = SimpleNamespace(
                message="CANARY-LIMIT 7 pages, over max_num_pages", original_error=None
            )

    monkeypatch.setattr(document, "InputDocument", Refused)
    path = _file(tmp_path, "r.docx", docs.docx_bytes("Title", {"A": "text"}))
    with pytest.raises(CorruptDocumentError, match=r"open this docx \(CANARY-LIMIT 7 pages"):
        parse_file(path, "r.docx", OPTIONS)


def test_a_document_of_pictures_only_is_empty_not_blank(tmp_path: Path) -> None:
    # Its pictures may hold its text (a scan pasted into a DOCX): a failure that says
    # so, for a run with OCR to read, not a skip.
    picture = docs.photo(fmt="PNG")
    odt = docs.odf_bytes(
        "text",
        '<text:p><draw:frame><draw:image xlink:href="Pictures/1.png"/></draw:frame></text:p>',
        members={"Pictures/1.png": picture},
    )
    rtf = rb"{\rtf1\ansi {\pict\pngblip " + picture.hex().encode() + rb"} \par }"
    for name, data in (
        ("scan.docx", docs.docx_with_pictures([picture])),
        ("scan.odt", odt),
        ("scan.rtf", rtf),
    ):
        with pytest.raises(EmptyDocumentError, match="besides its pictures") as caught:
            parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert not isinstance(caught.value, BlankDocumentError), name


def test_a_word_97_document_is_read_through_the_docx_it_converts_to(tmp_path: Path) -> None:
    data = docs.legacy_office("memo.doc")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = ParseOptions(max_images=4, min_image_bytes=100, temp_dir=str(scratch))
    parsed = parse_file(_file(tmp_path, "memo.doc", data), "memo.doc", options)
    assert (parsed.file_type, parsed.parser) == ("doc", "msdoc2docx+docling-docx")
    # Its Title style is the title (msdoc2docx numbers the styles; docling knows a
    # title by its style's ID), then headings, a list and a table, as from a DOCX.
    assert parsed.text.startswith(
        "# Quarterly memo\n\n## Revenue\n\nCANARY-DOC revenue grew 12% to 4.2 million"
    )
    assert "- renewals came early\n- two new regions opened" in parsed.text
    assert "### Costs\n\n| Region   |   Q1 |   Q2 |" in parsed.text
    assert "Caf\u00e9 cr\u00e8me na\u00efve \u6771\u4eac" in parsed.text
    assert parsed.text.endswith("## Outlook\n\nCANARY-DOC-OUTLOOK hiring resumes in spring.")
    # Its picture is kept to describe and, without OCR, said unread (320x120 pixels):
    # counted in the DOCX it converts to, so the memo is read again once OCR is on.
    assert len(parsed.images) == 1 and parsed.warnings == [f"1 picture(s) {UNREAD_SCANS}"]
    assert list(scratch.iterdir()) == []  # the converted DOCX is removed
    # With OCR it is read (a framed box: no words found), nothing said unread.
    listed = parse_file(_file(tmp_path, "memo.doc", data), "memo.doc", _OCR, defer_scans=True)
    assert listed.scans == [1] and listed.warnings == []
    plan = chunk_document(
        parsed, ChunkSettings(whole_document_tokens=0, chunk_tokens=32, overlap_tokens=0), {}
    )
    assert plan.strategy == "markdown"
    outlook = [c for c in plan.chunks if "CANARY-DOC-OUTLOOK" in c.text]
    assert outlook[0].metadata["heading_path"] == "Quarterly memo > Outlook"
    # Known by its content, whatever its name.
    named = parse_file(_file(tmp_path, "memo.docx", data), "memo.docx", OPTIONS)
    assert named.file_type == "doc" and "named .docx but is doc" in named.warnings
    for name in ("memo", "memo.dot"):
        assert detect(_file(tmp_path, name, data), name).kind == "doc"


def test_a_powerpoint_97_deck_is_read_slide_by_slide_under_its_titles(tmp_path: Path) -> None:
    data = docs.legacy_office("deck.ppt")
    options = ParseOptions(max_images=4, min_image_bytes=100)
    parsed = parse_file(_file(tmp_path, "deck.ppt", data), "deck.ppt", options)
    assert (parsed.file_type, parsed.parser, parsed.pages) == ("ppt", "ppt2pptx+docling-pptx", 4)
    assert [s.page for s in parsed.segments] == [1, 2, 3, 4]
    # ppt2pptx writes each placeholder as a text box: the titles come from the .ppt.
    assert parsed.segments[0].text == "# Strategy 2027\n\nPlanning offsite"
    assert parsed.segments[1].text == (
        "# Goals\n\n- Grow revenue\n- CANARY-PPT cut cloud costs by a fifth\n\n"
        "Speaker notes: CANARY-PPT-NOTES mention the hiring plan."
    )
    assert parsed.segments[2].text.startswith("# Numbers\n\n| Metric   | Value   |")
    assert parsed.segments[3].text == "A free text box on a blank slide"  # no title there
    assert [image.page for image in parsed.images] == [4]
    assert parsed.warnings == [f"1 picture(s) {UNREAD_SCANS}"]  # for want of OCR
    plan = chunk_document(parsed, ChunkSettings(whole_document_tokens=0), {})
    table = [c for c in plan.chunks if c.text.startswith("| Metric")]
    assert table[0].metadata["heading_path"] == "Numbers" and table[0].metadata["page_start"] == 3
    # A slide without a title is under none: not under the slide before it.
    blank = [c for c in plan.chunks if c.text.startswith("A free text box")]
    assert "heading_path" not in blank[0].metadata
    for name in ("deck.pptx", "deck.pps", "deck"):
        assert detect(_file(tmp_path, name, data), name).kind == "ppt"


def _ppt_record(
    kind: int, payload: bytes = b"", instance: int = 0, container: bool = False
) -> bytes:
    head = instance << 4 | (0xF if container else 0)
    return struct.pack("<HHI", head, kind, len(payload)) + payload


def _ppt_text(text_type: int, text: str) -> bytes:
    return _ppt_record(0x0F9F, struct.pack("<I", text_type)) + _ppt_record(
        0x0FA0, text.encode("utf-16-le")
    )


def test_slide_titles_come_from_the_outline_text_and_the_latest_edit(tmp_path: Path) -> None:
    """A deck as PowerPoint saves one: placeholders' text in the document's slide list,
    and an incremental save that appended a new version of slide 2 after the first."""
    from rag_ingest.parsers.legacy import _ppt_titles

    def persist(first: int, *offsets: int) -> bytes:
        entry = struct.pack("<I", first | len(offsets) << 20)
        return _ppt_record(0x1772, entry + struct.pack(f"<{len(offsets)}I", *offsets))

    def user_edit(last: int, directory: int) -> bytes:
        payload = struct.pack("<IHBBIIIIHH", 2, 0, 0, 3, last, directory, 1, 4, 1, 0)
        return _ppt_record(0x0FF5, payload)

    def slide(*texts: bytes) -> bytes:
        return _ppt_record(
            0x03EE, _ppt_record(0x040C, b"".join(texts), container=True), container=True
        )

    slide_list = _ppt_record(
        0x0FF0,
        _ppt_record(0x03F3, struct.pack("<5I", 2, 0, 0, 0, 0))
        + _ppt_text(1, "Body first")
        + _ppt_text(0, "Outline\vtitle")
        + _ppt_record(0x03F3, struct.pack("<5I", 3, 0, 0, 0, 0))
        + _ppt_text(1, "no title in the outline"),
        container=True,
    )
    stream = _ppt_record(0x03E8, slide_list, container=True)
    offsets = [0]
    for part in (slide(_ppt_text(0, "Shape title")), slide(_ppt_text(0, "Old title"))):
        offsets.append(len(stream))
        stream += part
    first_directory = len(stream)
    stream += persist(1, *offsets)
    first_edit = len(stream)
    stream += user_edit(0, first_directory)
    new_slide = len(stream)
    stream += slide(_ppt_text(4, "Other text"), _ppt_text(6, "New title"))
    second_directory = len(stream)
    stream += persist(3, new_slide)
    second_edit = len(stream)
    stream += user_edit(first_edit, second_directory)
    current = struct.pack("<HHIIII", 0, 0x0FF6, 20, 20, 0xE391C05F, second_edit) + bytes(16)
    path = tmp_path / "deck.ppt"
    path.write_bytes(docs.cfb_bytes({"PowerPoint Document": stream, "Current User": current}))
    assert _ppt_titles(str(path)) == ["Outline title", "New title"]


def test_a_password_protected_word_or_powerpoint_97_file_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = _file(tmp_path, "locked.doc", docs.legacy_office("locked.doc"))
    with pytest.raises(EncryptedDocumentError, match=r"^locked\.doc: password-protected \(Word"):
        parse_file(locked, "locked.doc", OPTIONS)
    # LibreOffice writes no encrypted .ppt: ppt2pptx's refusal of one is given here.
    import ppt2pptx
    from ppt2pptx.errors import EncryptedPresentationError

    def refuse(*args: object, **kwargs: object) -> None:
        raise EncryptedPresentationError("encrypted presentations require a password")

    monkeypatch.setattr(ppt2pptx, "convert", refuse)
    deck = _file(tmp_path, "deck.ppt", docs.legacy_office("deck.ppt"))
    with pytest.raises(EncryptedDocumentError, match=r"^deck\.ppt: password-protected \(Power"):
        parse_file(deck, "deck.ppt", OPTIONS)


@pytest.mark.parametrize(("name", "what"), [("memo.doc", "Word"), ("deck.ppt", "PowerPoint")])
def test_a_truncated_word_or_powerpoint_97_file_is_corrupt(
    tmp_path: Path, name: str, what: str
) -> None:
    data = docs.legacy_office(name)
    cut = _file(tmp_path, name, data[: len(data) * 2 // 3])  # its directory, at the end, lost
    with pytest.raises(CorruptDocumentError, match=rf"^{name}: not a readable {what} 97-2003"):
        parse_file(cut, name, OPTIONS)


def test_a_word_document_older_than_word_97_is_said_so(tmp_path: Path) -> None:
    # LibreOffice's tests hold Word for Windows 1.x-2.0 documents saved bare, and Word 6.0
    # and 95 documents in a compound file: refused as misnamed, and as "not a readable
    # Word 97-2003 .doc file (WordDocument FIB has wIdent 0xA5DC ...)".
    older = r"^w\.doc: a Word document older than Word 97, outside the Word 97-2003 format"
    for bare in (b"\x9b\xa5", b"\xdb\xa5", b"\xdc\xa5"):
        head = bare + b"\x21\x00" + bytes(60)
        with pytest.raises(UnsupportedFileTypeError, match=older):
            parse_file(_file(tmp_path, "w.doc", head), "w.doc", OPTIONS)
    for fib in (b"\xdc\xa5\x65\x00", b"\xec\xa5\x68\x00"):  # Word 6.0, Word 95
        word = docs.cfb_bytes({"WordDocument": fib + bytes(1020), "1Table": bytes(512)})
        with pytest.raises(UnsupportedFileTypeError, match=older):
            parse_file(_file(tmp_path, "w.doc", word), "w.doc", OPTIONS)
    # A Word 97 one damaged is still damaged.
    word = docs.cfb_bytes({"WordDocument": b"\xec\xa5\xc1\x00" + bytes(1020)})
    with pytest.raises(CorruptDocumentError, match=r"not a readable Word 97-2003 \.doc file"):
        parse_file(_file(tmp_path, "w.doc", word), "w.doc", OPTIONS)


def test_word_97_without_the_office_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "doc2docx", None)  # import fails
    memo = _file(tmp_path, "memo.doc", docs.legacy_office("memo.doc"))
    with pytest.raises(MissingExtraError, match=r"msdoc2docx.*rag-ingest\[office\]"):
        parse_file(memo, "memo.doc", OPTIONS)


def test_a_compound_file_is_known_by_its_top_level_stream(tmp_path: Path) -> None:
    """An embedded object's streams sit in a storage of their own: a workbook holding
    a Word document is a workbook, a document holding a workbook a document."""
    cases = {
        "word": ({"WordDocument": b"w" * 64, "1Table": b"t"}, "doc"),
        "deck": ({"PowerPoint Document": b"p" * 64, "Current User": b"u"}, "ppt"),
        "book": ({"Workbook": b"x" * 64, "MBD0001": {"WordDocument": b"w" * 64}}, "xls"),
        "memo": ({"WordDocument": b"w", "ObjectPool": {"_1": {"Workbook": b"x"}}}, "doc"),
    }
    for name, (tree, kind) in cases.items():
        assert detect(_file(tmp_path, name, docs.cfb_bytes(tree)), name).kind == kind, name
    visio = _file(tmp_path, "plan.vsd", docs.cfb_bytes({"VisioDocument": b"v" * 64}))
    with pytest.raises(UnsupportedFileTypeError, match="holding no Word, PowerPoint, Excel"):
        parse_file(visio, "plan.vsd", OPTIONS)


def test_a_compound_files_directory_is_followed_along_its_chain(tmp_path: Path) -> None:
    # A directory that grew after the streams were written is not in one run of sectors:
    # oletools' Word template (directory in sectors 17, 18, 31, 47) had been "a compound
    # file holding no Word document", its WordDocument entry read from another sector.
    tree = {name: b"x" * 64 for name in ("\x01CompObj", "Data", "1Table", "\x05Summary")}
    tree["WordDocument"] = b"w" * 64  # the fifth entry: in the directory's second sector
    for name, apart in (("contiguous.dot", False), ("grown.dot", True)):
        data = docs.cfb_bytes(tree, directory_apart=apart)
        assert detect(_file(tmp_path, name, data), name).kind == "doc", name


def test_a_rust_readers_panic_is_a_damaged_file_not_an_untyped_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by fuzzing: calamine panics on some damaged .xls files ("slice index starts at
    # 2560 but ends at 2088"); pyo3's PanicException derives from BaseException, which
    # no parser's "except Exception" catches.
    import python_calamine

    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})

    def panics(*_: object) -> None:
        raise panic("assertion `left == right` failed\n  left: 3\n right: 0")

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", panics)
    book = _file(tmp_path, "stock.xls", docs.xls_bytes([["item", "count"], ["helmet", 4]]))
    message = r"^stock.xls: its reader failed on it \(assertion `left == right` failed left: 3"
    with pytest.raises(CorruptDocumentError, match=message):
        parse_file(book, "stock.xls", OPTIONS)
    # Any other BaseException goes on as it is: an interrupt is not a damaged file.
    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        parse_file(book, "stock.xls", OPTIONS)


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def test_a_compound_file_with_a_damaged_sector_size_is_damaged_not_a_memory_error(
    tmp_path: Path,
) -> None:
    # Found by fuzzing: a sector shift of 38 had made the directory read ask for 1 TiB.
    data = bytearray(docs.legacy_office("memo.doc"))
    data[30:32] = (38).to_bytes(2, "little")
    with pytest.raises(DocumentError):
        parse_file(_file(tmp_path, "memo.doc", bytes(data)), "memo.doc", OPTIONS)


def test_a_slide_is_headed_only_by_a_title_its_text_opens_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag_ingest.parsers import legacy
    from rag_ingest.parsers.base import ParsedDocument, Segment

    titles = ["Agenda", "Two line title", None, "Late"]
    monkeypatch.setattr(legacy, "_ppt_titles", lambda path: titles)
    parsed = ParsedDocument(
        "ppt",
        [
            Segment("Agenda\n\n- one", page=1),
            Segment("Two line\ntitle\n\nbody", page=2),  # a line break inside the title
            Segment("No title here", page=3),
            Segment("A text box above\n\nLate", page=4),  # its title is not its first text
            Segment("Past the titles", page=5),
        ],
        parser="ppt2pptx+docling-pptx",
    )
    legacy._titles_as_headings(parsed, "deck.ppt")
    assert [s.text for s in parsed.segments] == [
        "# Agenda\n\n- one",
        "# Two line title\n\nbody",
        "No title here",
        "A text box above\n\nLate",
        "Past the titles",
    ]


def test_converted_styles_take_the_ids_word_gives_their_names(tmp_path: Path) -> None:
    from rag_ingest.parsers.legacy import _name_styles

    styles = (
        '<w:styles xmlns:w="w">'
        '<w:style w:type="paragraph" w:styleId="DocStyle0"><w:name w:val="Normal"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="DocStyle60"><w:name w:val="title"/>'
        '<w:basedOn w:val="DocStyle0"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="DocStyle1"><w:name w:val="Heading 1"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="DocStyle2"><w:name w:val="Heading-1"/></w:style>'
        "</w:styles>"
    )
    body = '<w:p><w:pPr><w:pStyle w:val="DocStyle60"/><w:jc w:val="left"/></w:pPr></w:p>'
    path = tmp_path / "converted.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/styles.xml", styles)
        archive.writestr("word/document.xml", body)
        archive.writestr("docProps/app.xml", 'w:val="DocStyle1"')  # not Word's XML: untouched
    _name_styles(str(path))
    with zipfile.ZipFile(path) as archive:
        renamed, text, props = (archive.read(n).decode() for n in archive.namelist())
    assert 'w:styleId="Title"' in renamed and '<w:basedOn w:val="Normal"/>' in renamed
    assert 'w:styleId="Heading1"' in renamed
    assert 'w:styleId="DocStyle2"' in renamed  # "Heading1" is taken: its number stays
    assert text == '<w:p><w:pPr><w:pStyle w:val="Title"/><w:jc w:val="left"/></w:pPr></w:p>'
    assert props == 'w:val="DocStyle1"'


def _retyped(data: bytes, main: str, variant: str) -> bytes:
    """An OOXML package with its main part's content type ``variant`` instead of ``main``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as package, zipfile.ZipFile(out, "w") as copy:
        for info in package.infolist():
            member = package.read(info)
            if info.filename == "[Content_Types].xml":
                assert main.encode() in member
                member = member.replace(main.encode(), variant.encode())
            copy.writestr(info, member)
    return out.getvalue()


_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_SLIDES = "application/vnd.openxmlformats-officedocument.presentationml"
_PACKAGES = {
    "docx": ("docs/handbook.docx", f"{_WORD}.document.main+xml", "CANARY-DOCX"),
    "pptx": ("docs/deck.pptx", f"{_SLIDES}.presentation.main+xml", "CANARY-PPTX"),
}


@pytest.mark.parametrize(
    ("name", "kind", "variant"),
    [
        ("macros.docm", "docx", "application/vnd.ms-word.document.macroEnabled.main+xml"),
        ("letter.dotx", "docx", f"{_WORD}.template.main+xml"),
        ("letter.dotm", "docx", "application/vnd.ms-word.template.macroEnabledTemplate.main+xml"),
        ("talk.ppsx", "pptx", f"{_SLIDES}.slideshow.main+xml"),
        ("talk.ppsm", "pptx", "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml"),
        ("theme.potx", "pptx", f"{_SLIDES}.template.main+xml"),
        ("theme.potm", "pptx", "application/vnd.ms-powerpoint.template.macroEnabled.main+xml"),
        ("macros.pptm", "pptx", "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"),
    ],
)
def test_macro_enabled_template_and_slide_show_packages_are_read(
    tmp_path: Path, name: str, kind: str, variant: str
) -> None:
    """python-docx and python-pptx open only a plain document's or deck's content type:
    a .docm, .dotx or .ppsx was "not a Word file" (a CorruptDocumentError)."""
    source, main, canary = _PACKAGES[kind]
    data = _retyped(docs.corpus()[source], main, variant)
    for named in (name, "unnamed"):
        parsed = parse_file(_file(tmp_path, named, data), named, OPTIONS)
        assert (parsed.file_type, parsed.warnings) == (kind, [])
        assert canary in parsed.text


def test_a_visio_drawing_is_read_page_by_page(tmp_path: Path) -> None:
    data = (Path(__file__).parent.parent / "fixtures" / "visio" / "media.vsdx").read_bytes()
    parsed = parse_file(_file(tmp_path, "media.vsdx", data), "media.vsdx", OPTIONS)
    assert (parsed.file_type, parsed.parser, parsed.pages) == ("vsdx", "visio-xml", 1)
    assert parsed.segments[0].text == (
        "# Page-1\n\nRECTANGLE\nmy_property_label: property value\n"
        "my_second_property_label: another value\n\nCONNECTED_SHAPE\n\nSTRAIGHT_CONNECTOR\n\n"
        "CURVED_CONNECTOR\n\nCIRCLE\n\nLINE"
    )
    for name in ("media", "media.zip"):  # by content: not an archive of XML files
        assert detect(_file(tmp_path, name, data), name).kind == "vsdx"


def test_visio_pages_come_in_their_listed_order_with_grouped_shapes(tmp_path: Path) -> None:
    group = (
        "<Shape ID='5' Type='Group'><Text>Data centre</Text><Shapes>"
        "<Shape ID='6'><Text>web<cp IX='0'/> server\u2028two</Text><Section N='Property'>"
        "<Row N='Owner'><Cell N='Value' V=''/><Cell N='Label' V='Owner'/></Row>"
        "<Row N='Rack'><Cell N='Value' V='R12'/></Row></Section></Shape>"
        "<Shape ID='7'><Text>Uptime: <fld IX='0'>99.9%</fld></Text></Shape>"
        "</Shapes></Shape>"
    )
    data = docs.vsdx_bytes(
        [
            ("Overview", "page2.xml", "<Shape ID='1'><Text>CANARY first page</Text></Shape>"),
            ("Racks", "page1.xml", group + "<Shape ID='9'><Text>  </Text></Shape>"),
            ("Empty", "page3.xml", "<Shape ID='1'/>"),
        ]
    )
    parsed = parse_file(_file(tmp_path, "site.vsdx", data), "site.vsdx", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, "# Overview\n\nCANARY first page"),
        (2, "# Racks\n\nData centre\n\nweb server two\nRack: R12\n\nUptime: 99.9%"),
    ]
    assert parsed.pages == 3
    # Without its page list, the pages come by their parts' numbers.
    unlisted = docs.vsdx_bytes(
        [
            ("A", "page10.xml", "<Shape ID='1'><Text>ten</Text></Shape>"),
            ("B", "page2.xml", "<Shape ID='1'><Text>two</Text></Shape>"),
        ],
        listed=False,
    )
    parsed = parse_file(_file(tmp_path, "bare.vsdx", unlisted), "bare.vsdx", OPTIONS)
    assert [s.text for s in parsed.segments] == ["# Page-2\n\ntwo", "# Page-10\n\nten"]


def test_a_visio_drawing_without_text_or_well_formed_pages_fails_typed(tmp_path: Path) -> None:
    blank = docs.vsdx_bytes([("Page-1", "page1.xml", "<Shape ID='1'/>")])
    with pytest.raises(EmptyDocumentError, match=r"^blank\.vsdx: no text in its shapes"):
        parse_file(_file(tmp_path, "blank.vsdx", blank), "blank.vsdx", OPTIONS)
    # A page not well formed: mended, said; one mended into no text, damaged.
    pages = [("Page-1", "page1.xml", "<Shape ID='1'><Text>open")]
    broken = docs.vsdx_bytes([*pages, ("Page-2", "page2.xml", "<Shape ID='1'/>")])
    parsed = parse_file(_file(tmp_path, "broken.vsdx", broken), "broken.vsdx", OPTIONS)
    assert parsed.text == "# Page-1\n\nopen"
    [warning] = parsed.warnings
    assert warning.startswith("visio/pages/page1.xml is not well-formed XML (mismatched tag")
    assert warning.endswith(": read as a recovering parser mends it, what is broken left out")
    cut = docs.vsdx_bytes([("Page-1", "page1.xml", "<Shape ID='1'><Te")])
    with pytest.raises(
        CorruptDocumentError, match=r"page1\.xml is not well-formed XML .*left once"
    ):
        parse_file(_file(tmp_path, "cut.vsdx", cut), "cut.vsdx", OPTIONS)
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blank)) as package, zipfile.ZipFile(bomb, "w") as copy:
        for info in package.infolist():
            copy.writestr(info, package.read(info), zipfile.ZIP_DEFLATED)
        copy.writestr("visio/media/pad.bin", bytes(8 * 1024 * 1024), zipfile.ZIP_DEFLATED)
    with pytest.raises(ZipBombError, match=r"^bomb\.vsdx: member 'visio/media/pad\.bin'"):
        parse_file(_file(tmp_path, "bomb.vsdx", bomb.getvalue()), "bomb.vsdx", OPTIONS)


def test_an_svg_drawing_is_read_for_the_words_it_shows(tmp_path: Path) -> None:
    """SVG files were skipped by name as images: a diagram's labels were never found."""
    drawing = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xhtml">
  <title>Order flow</title>
  <style>.box { fill: CANARY-STYLE; }</style>
  <script>alert("CANARY-SCRIPT")</script>
  <metadata>CANARY-METADATA</metadata>
  <g><title>node1</title><path d="M0 0 L10 10"/>
    <g><text x="1">Checkout <tspan font-weight="bold">CANARY-TSPAN</tspan></text></g>
  </g>
  <switch>
    <foreignObject><x:div><x:div>Payment<x:br/>gateway</x:div></x:div></foreignObject>
    <text>Payment gateway</text>
  </switch>
  <foreignObject><x:p>CANARY-HTML label</x:p></foreignObject>
  <text><textPath href="#p">along a path</textPath></text>
  <text>Caf\xc3\xa9 \xe2\x86\x92 r\xc3\xa9sum\xc3\xa9</text>
  <text x="5">Inks<tspan fill="red">cape</tspan> e=mc<tspan dy="-4">2</tspan></text>
  <text><tspan x="5" y="1">first line</tspan><tspan y="9">second</tspan></text>
  <text transform="translate(92.78 1197.61)">Re<tspan x="261.94" y="0">qu</tspan><tspan
    x="519.5px,600px" y="0">ests</tspan> <tspan x="800" y="0">CANARY-KERNED</tspan></text>
  <text x="10" y="5">back<tspan x="10">at the margin</tspan><tspan x="90" dy="9">down</tspan
    ><tspan x="60" y="5">again</tspan><tspan x="200" y="40">lower</tspan><tspan x="260" y="40"
    >case</tspan></text>
  <text>wide<tspan x="50%">centred</tspan></text>
</svg>"""
    parsed = parse_file(_file(tmp_path, "flow.svg", drawing), "flow.svg", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("svg", "svg-xml")
    assert parsed.text == (
        "# Order flow\n\nCheckout CANARY-TSPAN\nPayment gateway\nCANARY-HTML label\n"
        "along a path\n"
        "Caf\u00e9 \u2192 r\u00e9sum\u00e9\n"
        # A part is run into the words around it, as drawn, unless placed on its own line.
        "Inkscape e=mc2\n"
        "first line second\n"
        # Pieces of words placed further along their line (Illustrator's kerning runs)
        # are run together; a piece placed back at the margin, or a line down, is not.
        "Requests CANARY-KERNED\n"
        "back at the margin down again lowercase\n"
        "wide centred"
    )
    # Gzipped (.svgz), and one that is not gzipped after all.
    for name, data in (("flow.svgz", gzip.compress(drawing)), ("plain.svgz", drawing)):
        svgz = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (svgz.file_type, svgz.parser, svgz.text) == ("svg", "svg-xml", parsed.text)
    # No words (an icon, text drawn as paths): skipped, as images were.
    icon = b'<svg xmlns="http://www.w3.org/2000/svg"><title>lock</title><path d="M0"/></svg>'
    with pytest.raises(BlankDocumentError, match=r"^icon\.svg: no words in the drawing"):
        parse_file(_file(tmp_path, "icon.svg", icon), "icon.svg", OPTIONS)
    # Not well formed: browsers show it, and it is read as far as it can be mended, said.
    # An HTML entity it never defines is the character HTML means.
    cut = drawing[: drawing.index(b"<text>Payment gateway")]
    hand_edited = (
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>Caf&eacute;&nbsp;menu</text>'
        b"<text>CANARY-R&D team</text><text>&bogus; last</text></svg>"
    )
    for name, data, text in (
        ("cut.svg", cut, "# Order flow\n\nCheckout CANARY-TSPAN\nPayment gateway"),
        ("edited.svg", hand_edited, "Caf\u00e9\u00a0menu\nCANARY-R&D team\nlast"),
    ):
        mended = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert mended.text.replace("\u00a0", " ") == text.replace("\u00a0", " ")
        assert mended.text.split()[:3] == text.split()[:3]  # the no-break space kept
        assert [w.split(" (")[0] for w in mended.warnings] == ["not well-formed XML"]
    for name, data, said in (
        # Cut before any words: nothing left once mended, not a blank drawing.
        ("cut.svg", drawing[:300], r"^cut\.svg: not well-formed XML .*nothing left once mended"),
        ("graph.svg", b"<graph><text>x</text></graph>", "its root is <graph>"),
        (
            "bomb.svg",
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(
                f'<!ENTITY {c} "{("&" + p + ";") * 10}">'.encode()
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + b"]><svg><text>&i;</text></svg>",
            r"amplification factor .*nothing left once mended",
        ),
    ):
        with pytest.raises(CorruptDocumentError, match=said):
            parse_file(_file(tmp_path, name, data), name, OPTIONS)


def _mhtml(page: str, charset: str = "utf-8", **headers: str) -> EmailMessage:
    """A saved page: an MHTML message whose first part is ``page`` (quoted-printable)."""
    message = EmailMessage()
    message["From"] = "<Saved by Blink>"
    message["Subject"] = "Saved page"
    message.set_content(page, subtype="html", charset=charset, cte="quoted-printable")
    for header, value in headers.items():
        message[header.replace("_", "-")] = value
    message.make_related()
    return message


def test_a_saved_web_page_is_read_as_its_html(tmp_path: Path) -> None:
    long = "word " * 40
    page = (
        "<html><head><title>Team handbook</title></head><body><nav>Home | Jobs</nav><main>"
        f"<h1>Team handbook</h1><p>CANARY-MHT caf\u00e9 {long}end</p><h2>Travel</h2>"
        "<p>Book trains.</p></main></body></html>"
    )
    data = bytes(_mhtml(page, Snapshot_Content_Location="https://example.com/handbook"))
    assert b"=\n" in data and b"caf=C3=A9" in data  # soft line breaks, encoded bytes
    for name in ("handbook.mhtml", "handbook.mht"):
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("mhtml", "mhtml+docling-html")
        assert parsed.text == (
            f"# Team handbook\n\nCANARY-MHT caf\u00e9 {long}end\n\n## Travel\n\nBook trains."
        )


def test_a_saved_page_whose_header_lost_its_boundary_is_still_its_page(tmp_path: Path) -> None:
    """As a mail's (its multipart split at the boundary its body uses): it had failed as
    "no HTML page among its MIME parts" (43 of 60 damaged copies of a small saved page
    had; 35 still do, most with their page part's own header damaged)."""
    saved = bytes(_mhtml("<html><body><p>CANARY-MHT-LOST the page itself</p></body></html>"))
    found = re.search(rb'boundary="([^"]+)"', saved)
    assert found is not None
    boundary = found[1].decode()
    data = saved.replace(found[0], b'boundary="gone"', 1)
    parsed = parse_file(_file(tmp_path, "lost.mht", data), "lost.mht", OPTIONS)
    assert parsed.text == "CANARY-MHT-LOST the page itself"
    assert parsed.warnings[0] == (
        f"its parts were found by the boundary its body uses ({boundary!r})"
    )


def test_a_saved_page_cut_short_is_corrupt_or_read_with_a_warning(tmp_path: Path) -> None:
    # Cut in its page part's header, it had been skipped as "no text and no pictures".
    saved = bytes(_mhtml("<html><body><p>CANARY-MHT-CUT the page itself</p></body></html>"))
    header = saved[: saved.index(b"quoted-printable") + 5]
    with pytest.raises(CorruptDocumentError, match=r"cut short \(its closing boundary"):
        parse_file(_file(tmp_path, "cut.mhtml", header), "cut.mhtml", OPTIONS)
    # Cut after its page: read, and said.
    body = saved[: saved.rindex(b"--")]
    parsed = parse_file(_file(tmp_path, "end.mhtml", body), "end.mhtml", OPTIONS)
    assert "CANARY-MHT-CUT" in parsed.text
    assert parsed.warnings == ["cut short (its closing boundary is missing): its end may be lost"]
    assert not parse_file(_file(tmp_path, "whole.mhtml", saved), "whole.mhtml", OPTIONS).warnings


def test_a_saved_page_is_read_in_its_parts_charset_and_from_its_start_part(
    tmp_path: Path,
) -> None:
    # A charset the MIME header gives and the HTML does not (KOI8-R is no guess's).
    koi8 = _mhtml(
        "<html><body><p>\u041f\u0440\u0438\u0432\u0435\u0442 CANARY</p></body></html>", "koi8-r"
    )
    parsed = parse_file(_file(tmp_path, "ru.mht", bytes(koi8)), "ru.mht", OPTIONS)
    assert parsed.text == "\u041f\u0440\u0438\u0432\u0435\u0442 CANARY"
    # multipart/related names its page as "start": a frame before it is not the page.
    message = _mhtml("<html><body><p>a frame</p></body></html>")
    page = EmailMessage()
    page.set_content("<html><body><p>CANARY the page</p></body></html>", subtype="html")
    page["Content-ID"] = "<page@x>"
    message.attach(page)
    message.set_param("start", "<page@x>")
    parsed = parse_file(_file(tmp_path, "s.mht", bytes(message)), "s.mht", OPTIONS)
    assert parsed.text == "CANARY the page"
    no_page = EmailMessage()
    no_page.set_content("just text")
    with pytest.raises(CorruptDocumentError, match=r"^t\.mht: no HTML page"):
        parse_file(_file(tmp_path, "t.mht", bytes(no_page)), "t.mht", OPTIONS)


def test_a_saved_pages_pictures_are_its_other_parts(tmp_path: Path) -> None:
    """Word's "single file web page": the page at a file URL, its pictures beside it."""
    message = _mhtml(
        '<html><head><meta http-equiv=Content-Type content="text/html; charset=windows-1252">'
        '</head><body><p>Caf\u00e9 CANARY</p><img src="Doc_files/image001.png">'
        '<img src=cid:logo><img src="Doc_files/image002.png">'
        '<img src="https://elsewhere.example/x.png"></body></html>',
        "windows-1252",
    )
    message.get_payload()[0]["Content-Location"] = "file:///C:/Users/me/Doc.htm"
    box, circle = docs.photo(120, 90, "PNG"), docs.photo(90, 120, "PNG")
    message.add_related(
        box,
        maintype="image",
        subtype="png",
        headers=["Content-Location: file:///C:/Users/me/Doc_files/image001.png"],
    )
    message.add_related(circle, maintype="image", subtype="png", cid="<logo>")
    wide = docs.photo(160, 40, "PNG")  # its location relative to the page's
    message.add_related(
        wide, maintype="image", subtype="png", headers=["Content-Location: Doc_files/image002.png"]
    )
    path = _file(tmp_path, "Doc.mht", bytes(message))
    parsed = parse_file(path, "Doc.mht", ParseOptions(max_images=4, min_image_bytes=10))
    assert parsed.text.startswith("Caf\u00e9 CANARY")
    assert sorted(image.data for image in parsed.images) == sorted([box, circle, wide])
    # Without OCR, the pictures on the page it would read are said unread: the box and
    # the circle, not the strip too small to hold text (160x40), nor a picture elsewhere.
    assert parsed.warnings == [f"2 picture(s) {UNREAD_SCANS}"]
    plain = parse_file(path, "Doc.mht", OPTIONS)
    assert plain.images == [] and plain.warnings == parsed.warnings
    assert parse_file(path, "Doc.mht", _OCR, defer_scans=True).warnings == []


@pytest.mark.parametrize(
    ("wrapped", "expected"),
    [
        ('<w:p>{before}<w:dir w:val="ltr">{inside}</w:dir>{after}</w:p>', "before CANARY-IN after"),
        ('<w:p>{before}<w:bdo w:val="rtl">{inside}</w:bdo>{after}</w:p>', "before CANARY-IN after"),
        (
            '<w:customXml w:uri="urn:x" w:element="clause"><w:customXmlPr><w:attr w:name="id" '
            'w:val="7"/></w:customXmlPr><w:p>{inside}</w:p></w:customXml><w:p>{after}</w:p>',
            "CANARY-IN\n\nafter",
        ),
    ],
)
def test_a_docx_paragraph_or_run_wrapper_docling_skips_is_read(
    tmp_path: Path, wrapped: str, expected: str
) -> None:
    # A bidirectional embedding (w:dir) and override (w:bdo), and custom XML around
    # paragraphs: python-docx reads a run only as a paragraph's child, a paragraph only
    # as the body's or a cell's (LibreOffice's tdf119143.docx, Arabic, lost the words in
    # a w:dir and all after it).
    def run(text: str) -> str:
        return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'

    body = wrapped.format(before=run("before "), inside=run("CANARY-IN"), after=run(" after"))
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", body + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "w.docx", data), "w.docx", OPTIONS)
    assert parsed.text == f"# Plan\n\n## Scope\n\nCANARY-BEFORE\n\n{expected}"


def test_ruby_text_is_read_as_its_base_then_its_reading(tmp_path: Path) -> None:
    # Furigana over Japanese words: a DOCX's base words were lost with their reading
    # (python-docx reads runs only as a paragraph's children), and an ODT's reading ran
    # into them ("漢字かんじ"; LibreOffice's ruby.fodt).
    def run(text: str) -> str:
        return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'

    ruby = (
        f'<w:p>{run("CANARY-RUBY ")}<w:r><w:rPr><w:sz w:val="21"/></w:rPr><w:ruby><w:rubyPr>'
        f'<w:rubyAlign w:val="distributeSpace"/></w:rubyPr><w:rt>{run("かんじ")}</w:rt>'
        f"<w:rubyBase>{run('漢')}{run('字')}</w:rubyBase></w:ruby></w:r>{run(' and')}"
        f"<w:r><w:ruby><w:rt/><w:rubyBase>{run('仮名')}</w:rubyBase></w:ruby></w:r></w:p>"
    )
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", ruby + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "r.docx", data), "r.docx", OPTIONS)
    assert parsed.text.endswith("CANARY-BEFORE\n\nCANARY-RUBY 漢字(かんじ) and仮名")
    odt = (
        "<text:p>CANARY-RUBY <text:ruby><text:ruby-base>漢字</text:ruby-base><text:ruby-text>"
        "かんじ</text:ruby-text></text:ruby> and<text:ruby><text:ruby-base>仮名</text:ruby-base>"
        "<text:ruby-text/></text:ruby></text:p>"
    )
    for name, build in (("r.odt", docs.odf_bytes), ("r.fodt", docs.flat_odf_bytes)):
        text = parse_file(_file(tmp_path, name, build("text", odt)), name, OPTIONS).text
        assert text == "CANARY-RUBY 漢字(かんじ) and仮名", name


def test_a_docx_tables_rows_in_content_controls_are_read(tmp_path: Path) -> None:
    # A repeating section (Word 2013's content control around table rows, one more
    # inside it for each item) and a plain one: python-docx reads a table's rows only
    # as its children, so docling lost every row in one.
    def row(*cells: str) -> str:
        tcs = "".join(f"<w:tc><w:p><w:r><w:t>{c}</w:t></w:r></w:p></w:tc>" for c in cells)
        return f"<w:tr>{tcs}</w:tr>"

    def control(inner: str) -> str:
        properties = '<w:sdtPr><w:id w:val="1"/></w:sdtPr>'
        return f"<w:sdt>{properties}<w:sdtContent>{inner}</w:sdtContent></w:sdt>"

    table = (
        '<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid><w:gridCol '
        'w:w="3000"/><w:gridCol w:w="3000"/></w:tblGrid>'
        + row("Item", "Cost")
        + control(control(row("CANARY-DESK", "1200")) + control(row("chair", "80")))
        + control(row("lamp", "30"))
        + "</w:tbl><w:p/>"
    )
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", table + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "t.docx", data), "t.docx", OPTIONS)
    assert parsed.text.endswith(
        "CANARY-BEFORE\n\n| Item        |   Cost |\n|-------------|--------|\n"
        "| CANARY-DESK |   1200 |\n| chair       |     80 |\n| lamp        |     30 |"
    )


def test_a_docx_is_read_with_its_tracked_changes_accepted(tmp_path: Path) -> None:
    # LibreOffice's TC-table-converttotable.docx (a table typed under tracked changes)
    # was skipped as blank, and a moved paragraph was read nowhere: python-docx reads a
    # run only as a paragraph's child.
    change = 'w:id="{}" w:author="Ann" w:date="2021-06-04T12:57:00Z"'
    cell = (
        '<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid>'
        '<w:gridCol w:w="3000"/><w:gridCol w:w="3000"/></w:tblGrid><w:tr><w:trPr>'
        f"<w:ins {change.format(1)}/></w:trPr><w:tc><w:p><w:ins {change.format(2)}><w:r>"
        "<w:t>CANARY-CELL</w:t></w:r></w:ins></w:p></w:tc><w:tc><w:p><w:r><w:t>kept</w:t>"
        "</w:r></w:p></w:tc></w:tr></w:tbl><w:p/>"
    )
    moved = (
        f"<w:p><w:moveTo {change.format(3)}><w:r><w:t>CANARY-MOVED here</w:t></w:r>"
        f"</w:moveTo></w:p><w:p><w:moveFrom {change.format(4)}><w:r><w:t>CANARY-MOVED "
        f"there</w:t></w:r></w:moveFrom></w:p><w:p><w:del {change.format(5)}><w:r>"
        "<w:delText>CANARY-DELETED</w:delText></w:r></w:del></w:p>"
    )
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", cell + moved + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "plan.docx", data), "plan.docx", OPTIONS)
    assert parsed.text.endswith(
        "CANARY-BEFORE\n\n| CANARY-CELL   | kept   |\n|---------------|--------|\n\n"
        "CANARY-MOVED here"
    )


def _row(*cells: str, span: int = 1) -> str:
    """A DOCX table row of ``cells``, the first spanning ``span`` grid columns."""
    first = f'<w:tcPr><w:gridSpan w:val="{span}"/></w:tcPr>' if span > 1 else ""
    tcs = "".join(
        f"<w:tc>{first * (i == 0)}<w:p><w:r><w:t>{c}</w:t></w:r></w:p></w:tc>"
        for i, c in enumerate(cells)
    )
    return f"<w:tr>{tcs}</w:tr>"


_TABLE_PROPERTIES = '<w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr>'


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            f"{_TABLE_PROPERTIES}<w:tblGrid/>{_row('CANARY-A1', 'B1')}",
            "| CANARY-A1   | B1   |\n|-------------|------|",
        ),
        (
            f"{_TABLE_PROPERTIES}{_row('CANARY-C1', 'D1')}{_row('F2', 'G2', span=2)}",
            # F2 spans two columns: written once (it was written in both).
            "| CANARY-C1   | D1   |    |\n|-------------|------|----|\n| F2          |      | G2 |",
        ),
        (_row("CANARY-H1"), "CANARY-H1"),
        (
            _TABLE_PROPERTIES
            + _row("CANARY-J1", "K1").replace(
                "<w:tr>", '<w:tr><w:trPr><w:gridBefore w:val="1"/></w:trPr>'
            )
            + _row("L2", "M2"),
            "|    | CANARY-J1   | K1   |\n|----|-------------|------|\n| L2 | M2          |      |",
        ),
    ],
)
def test_a_docx_table_without_its_grid_is_read(tmp_path: Path, table: str, expected: str) -> None:
    # LibreOffice's tdf109306.docx (an empty <w:tblGrid/>), sdt-around-float-table.docx
    # (none) and tdf111550.docx (no properties either) were skipped as blank: python-docx
    # counts a table's columns by its grid, so docling read no cells.
    tables = f"<w:tbl>{table}</w:tbl><w:p/>"
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", tables + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "plan.docx", data), "plan.docx", OPTIONS)
    assert parsed.text.endswith(f"CANARY-BEFORE\n\n{expected}")


def test_a_docx_alt_chunks_are_read_where_they_stand_as_the_files_they_are(
    tmp_path: Path,
) -> None:
    # Word shows an alt chunk's file (a DOCX, an HTML page, RTF, text) where the element
    # stands. LibreOffice's alt-chunk.docx failed whole: python-docx read its chunk, a
    # DOCX typed as a document's main part, as XML ("Start tag expected").
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    inner = docs._repacked(  # with a chunk of its own, damaged
        docs.docx_bytes("Inner", {"Part": "CANARY-DOCX"}),
        {"word/document.xml": lambda t: t.replace("<w:sectPr", '<w:altChunk r:id="C"/><w:sectPr')},
        {"word/deep.docx": b"PK\x03\x04 not a package"},
        {"word/_rels/document.xml.rels": [("C", "aFChunk", "deep.docx")]},
        {"word/deep.docx": main},
    )
    page = (
        "<html><body><h2>Web part</h2><p>CANARY-HTML</p><table><tr><th>k</th><th>v</th></tr>"
        "<tr><td>a</td><td>1</td></tr></table></body></html>"
    )
    chunks = {
        "word/afchunk.docx": (inner, main),
        "word/chunk2.htm": (page.encode(), "text/html"),
        "word/chunk3": (rb"{\rtf1\ansi CANARY-RTF\par}", "application/rtf"),
        "word/chunk4.txt": (b"CANARY-TEXT\nsecond line\n", "text/plain"),
        "word/cell": (b"<p>CANARY-IN | CELL</p><p>two</p>", "text/html"),
        "word/broken.docx": (b"PK\x03\x04 not a package", main),
        "word/afchunk.mht": (  # as Word saves HTML it is given
            b'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="B"\r\n\r\n'
            b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>CANARY-MHT"
            b"</p></body></html>\r\n--B--\r\n",
            "message/rfc822",
        ),
    }
    ids = {part: f"AltChunkId{i}" for i, part in enumerate(chunks)}

    def alt(part: str) -> str:
        properties = "<w:altChunkPr><w:matchSrc/></w:altChunkPr>"
        return f'<w:altChunk r:id="{ids[part]}">{properties}</w:altChunk>'

    cell = (
        '<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid><w:gridCol '
        'w:w="3000"/><w:gridCol w:w="3000"/></w:tblGrid><w:tr><w:tc><w:p><w:r><w:t>key'
        "</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>value</w:t></w:r></w:p></w:tc></w:tr>"
        f"<w:tr><w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc><w:tc>{alt('word/cell')}"
        f"<w:p/></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>y</w:t></w:r></w:p></w:tc><w:tc>"
        f"{alt('word/chunk4.txt')}</w:tc></w:tr></w:tbl><w:p/>"
    )
    body = (
        alt("word/afchunk.docx")
        + alt("word/chunk2.htm")
        + '<w:p><w:r><w:t>CANARY-BETWEEN</w:t></w:r></w:p><w:altChunk r:id="AltChunkId9"/>'
        + alt("word/chunk3")
        + alt("word/broken.docx")
        + cell
        + alt("word/chunk4.txt")
        + alt("word/afchunk.mht")
    )
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", body + "<w:sectPr")},
        {part: content for part, (content, _) in chunks.items()},
        {"word/_rels/document.xml.rels": [(ids[p], "aFChunk", p[5:]) for p in chunks]},
        {part: kind for part, (_, kind) in chunks.items()},
    )
    parsed = parse_file(_file(tmp_path, "plan.docx", data), "plan.docx", OPTIONS)
    assert parsed.text == (
        "# Plan\n\n## Scope\n\nCANARY-BEFORE\n\n# Inner\n\n## Part\n\nCANARY-DOCX\n\n"
        "## Web part\n\nCANARY-HTML\n\n| k   |   v |\n|-----|-----|\n| a   |   1 |\n\n"
        "CANARY-BETWEEN\n\nCANARY-RTF\n\n| key   | value                     |\n"
        "|-------|---------------------------|\n| x     | CANARY-IN \\| CELL two |\n"
        "| y     | CANARY-TEXT second line   |\n\n"
        "CANARY-TEXT\nsecond line\n\nCANARY-MHT"
    )
    damaged = "a damaged .docx file: its zip directory cannot be read (truncated?)"
    assert parsed.warnings == [
        f"alt chunk afchunk.docx: alt chunk deep.docx: CorruptDocumentError: deep.docx: {damaged}",
        f"alt chunk broken.docx: CorruptDocumentError: broken.docx: {damaged}",
    ]
    # A chunk whose marker the reader passed over is put at the end, not lost.
    text = put_back("# Plan\n\nbody", {"RagIngestAltChunk0n0": "CANARY-LATE"})
    assert text == "# Plan\n\nbody\n\nCANARY-LATE"
    # With no reader for them (a DOCX a .doc became), chunks are said to be unread.
    said: list[str] = []
    assert read_all([AltChunk("RagIngestAltChunk0n0", "a.htm", b"<p>x</p>")], None, said) == {
        "RagIngestAltChunk0n0": ""
    }
    assert said == ["alt chunk a.htm: not read"]


def test_a_docx_alt_chunks_own_chunks_are_read_five_levels_down(tmp_path: Path) -> None:
    # Each level a whole document read again: chunks nested a hundred deep had ended in
    # Python's recursion limit, failing the deepest with a warning of 2,000 characters.
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    data = docs.docx_bytes("Leaf", {"S": "CANARY-LEAF"})
    for level in range(7):
        data = docs._repacked(
            docs.docx_bytes(f"L{level}", {"S": f"CANARY-LEVEL-{level}"}),
            {
                "word/document.xml": lambda t: t.replace(
                    "<w:sectPr", '<w:altChunk r:id="C"/><w:sectPr'
                )
            },
            {"word/c.docx": data},
            {"word/_rels/document.xml.rels": [("C", "aFChunk", "c.docx")]},
            {"word/c.docx": main},
        )
    parsed = parse_file(_file(tmp_path, "n.docx", data), "n.docx", OPTIONS)
    read = [level for level in range(7) if f"CANARY-LEVEL-{level}" in parsed.text]
    assert read == [1, 2, 3, 4, 5, 6] and "CANARY-LEAF" not in parsed.text
    assert parsed.warnings == ["alt chunk c.docx: " * 6 + "nested past 5 alt chunks: not read"]
    # The depth is the document's own: the next document in the worker reads as deep.
    assert parse_file(_file(tmp_path, "m.docx", data), "m.docx", OPTIONS).text == parsed.text


def _symbol_run(text: str, fonts: str) -> str:
    return f"</w:t></w:r><w:r><w:rPr><w:rFonts {fonts}/></w:rPr><w:t>{text}</w:t></w:r>" + (
        '<w:r><w:t xml:space="preserve">'
    )


def _sym(font: str, code: str) -> str:
    return (
        f'</w:t></w:r><w:r><w:sym w:font="{font}" w:char="{code}"/></w:r>'
        '<w:r><w:t xml:space="preserve">'
    )


def _form_field(data: str, kind: str, result: str = "") -> str:
    return (
        '</w:t></w:r><w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="f"/>'
        f'{data}</w:ffData></w:fldChar></w:r><w:r><w:instrText xml:space="preserve"> {kind} '
        '</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'{result}<w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:t xml:space="preserve">'
    )


def test_a_docx_legacy_form_fields_are_read_as_word_shows_them(tmp_path: Path) -> None:
    # A FORMCHECKBOX or FORMDROPDOWN keeps its state in its field's data, not as text:
    # a filled form's answers were lost ("yes  no"; LibreOffice's tdf92472.docx).
    def box(default: str, checked: str = "") -> str:
        return _form_field(
            f'<w:checkBox><w:sizeAuto/><w:default w:val="{default}"/>{checked}</w:checkBox>',
            "FORMCHECKBOX",
        )

    entries = (
        '<w:listEntry w:val="Ann &amp; Bo"/><w:listEntry w:val="Cy"/><w:listEntry w:val="Dee"/>'
    )
    tokens = {
        "[[TICKED]]": box("0", "<w:checked/>"),
        "[[BYDEFAULT]]": box("1"),
        "[[UNTICKED]]": box("1", '<w:checked w:val="0"/>'),
        "[[EMPTY]]": box("0"),
        "[[CHOSEN]]": _form_field(
            f'<w:ddList><w:result w:val="2"/>{entries}</w:ddList>', "FORMDROPDOWN"
        ),
        "[[FIRST]]": _form_field(f"<w:ddList>{entries}</w:ddList>", "FORMDROPDOWN"),
        "[[STALE]]": _form_field(  # its choice past its entries (one removed since)
            f'<w:ddList><w:result w:val="7"/>{entries}</w:ddList>', "FORMDROPDOWN"
        ),
        "[[NONE]]": _form_field("<w:ddList/>", "FORMDROPDOWN"),
        "[[SHOWN]]": _form_field(  # LibreOffice writes the choice as its result too
            f"<w:ddList>{entries}</w:ddList>", "FORMDROPDOWN", "<w:r><w:t>Cy</w:t></w:r>"
        ),
        "[[TYPED]]": _form_field(
            "<w:textInput/>", "FORMTEXT", "<w:r><w:t>CANARY-TYPED</w:t></w:r>"
        ),
    }

    def fields(text: str) -> str:
        for token, field in tokens.items():
            text = text.replace(token, field)
        return text

    data = docs._repacked(
        docs.docx_bytes(
            "Form",
            {
                "Answers": "[[TICKED]] yes [[BYDEFAULT]] also [[UNTICKED]] no [[EMPTY]] none; "
                "owner [[CHOSEN]], then [[FIRST]], [[STALE]][[NONE]], [[SHOWN]]; name [[TYPED]]."
            },
        ),
        {"word/document.xml": fields},
        {},
    )
    parsed = parse_file(_file(tmp_path, "f.docx", data), "f.docx", OPTIONS)
    assert parsed.text == (
        "# Form\n\n## Answers\n\n\u2612 yes \u2612 also \u2610 no \u2610 none; "
        "owner Dee, then Ann & Bo, Ann & Bo, Cy; name CANARY-TYPED."
    )


def test_a_docx_drop_cap_is_read_as_its_paragraphs_first_letter(tmp_path: Path) -> None:
    # Word keeps a drop cap as a framed paragraph of its own: "Once" had been read as
    # "O" and "nce upon a time.", a paragraph apart (pandoc's drop_cap.docx).
    def cap(letter: str, kind: str) -> str:
        return (
            f'<w:p><w:pPr><w:framePr w:dropCap="{kind}" w:lines="3" w:wrap="around"/></w:pPr>'
            f"<w:r><w:t>{letter}</w:t></w:r></w:p>"
        )

    body = (
        cap("O", "drop")
        + '<w:p><w:pPr><w:jc w:val="both"/></w:pPr><w:r><w:t>nce upon a time.</w:t></w:r></w:p>'
        + cap("T", "margin")
        + "<w:p><w:r><w:t>he end.</w:t></w:r></w:p>"
        + '<w:p><w:pPr><w:framePr w:wrap="around"/></w:pPr><w:r><w:t>Framed</w:t></w:r></w:p>'
        + "<w:p><w:r><w:t>words.</w:t></w:r></w:p>"
        + cap("Z", "drop")
    )
    data = docs._repacked(
        docs.docx_bytes("Story", {"Tale": "[[BODY]]"}),
        {
            "word/document.xml": lambda text: re.sub(
                r"<w:p>(?:(?!<w:p>).)*?\[\[BODY\]\].*?</w:p>", body, text
            )
        },
        {},
    )
    parsed = parse_file(_file(tmp_path, "s.docx", data), "s.docx", OPTIONS)
    assert parsed.text == (
        "# Story\n\n## Tale\n\nOnce upon a time.\n\nThe end.\n\nFramed\n\nwords.\n\nZ"
    )
    # The letter goes after the paragraph's properties, which stay first, as the schema
    # has them; the drop cap's own paragraph is gone.
    part = _drop_caps_joined(f'<w:body xmlns:w="{docs._WML}">{body}</w:body>'.encode()).decode()
    assert part.count("<w:p>") == 5
    assert '<w:p><w:pPr><w:jc w:val="both"/></w:pPr><w:r><w:t>O</w:t></w:r>' in part


def test_a_docx_symbol_font_text_is_read_as_the_characters_it_shows(tmp_path: Path) -> None:
    # Word keeps a symbol font's characters as its codes: "m" set in Symbol shows μ, a
    # w:sym names one by code (F0B1, ±; Wingdings' F0FE, a ticked box), and pasted text
    # is private-use (U+F061, alpha). Read as written: "5 mm", a private-use character, and
    # no ± or box at all (docling drops w:sym).
    symbol = 'w:ascii="Symbol" w:hAnsi="Symbol"'
    tokens = {
        "[[MU]]": _symbol_run("m", symbol),
        "[[ALPHA]]": _symbol_run("\uf061", 'w:ascii="Times New Roman" w:hAnsi="Symbol"'),
        "[[PLUSMINUS]]": _sym("Symbol", "F0B1"),
        "[[TICKED]]": _sym("Wingdings", "F0FE"),
        "[[EMPTY]]": _sym("wingdings", "00A8"),
        "[[PICTURE]]": _sym("Wingdings", "F0E7"),  # an arrow Unicode has no character for
        "[[THEMED]]": _symbol_run("m", 'w:ascii="Symbol" w:asciiTheme="minorHAnsi"'),
        "[[ACCENT]]": _symbol_run("\u00e9", symbol),
        "[[BOXES]]": _symbol_run("R\uf0a3", 'w:ascii="Wingdings 2" w:hAnsi="Wingdings 2"'),
        "[[OTHER]]": _symbol_run("P", 'w:ascii="Wingdings 3" w:hAnsi="Wingdings 3"'),
    }
    data = docs.docx_with_notes(
        [
            "Size 5 [[MU]]m, angle [[ALPHA]] of 30 [[PLUSMINUS]] 2.",
            "[[TICKED]] Yes [[EMPTY]] No [[PICTURE]]next",
            "kept [[THEMED]] [[ACCENT]] [[BOXES]] [[OTHER]][[fn2]]",
        ],
        {"fn2": ["Ratio p"]},
    )

    def symbols(text: str) -> str:
        for token, run in tokens.items():
            text = text.replace(token, run)
        return text

    data = docs._repacked(
        data,
        {
            "word/document.xml": symbols,
            "word/footnotes.xml": lambda text: text.replace(
                "<w:t>Ratio p",
                f'<w:t xml:space="preserve">Ratio </w:t></w:r><w:r><w:rPr><w:rFonts {symbol}/>'
                "</w:rPr><w:t>p",
            ),
        },
        {},
    )
    parsed = parse_file(_file(tmp_path, "s.docx", data), "s.docx", OPTIONS)
    assert parsed.text == (
        "Size 5 \u03bcm, angle \u03b1 of 30 \u00b1 2.\n\n"
        "\u2611 Yes \u25fb No next\n\n"
        "kept m \u00e9 \u2611\u25a1 P (note: Ratio \u03c0)"
    )
    # A part whose only symbol font is Wingdings 2 (a form's boxes, Word's usual ones).
    form = docs._repacked(
        docs.docx_bytes("Form", {"Q": "Agree [[X]]"}),
        {"word/document.xml": lambda text: text.replace("[[X]]", _sym("Wingdings 2", "F054"))},
        {},
    )
    parsed = parse_file(_file(tmp_path, "f.docx", form), "f.docx", OPTIONS)
    assert parsed.text.endswith("Agree \u2612")


def test_a_slides_symbol_font_text_is_read_as_the_characters_it_shows(tmp_path: Path) -> None:
    # A run's letters in its a:latin font, its private-use characters in its a:sym font.
    from pptx import Presentation

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Checks"
    body = slide.placeholders[1].text_frame.paragraphs[0]
    body.add_run().text = "Angle "
    run = body.add_run()
    run.text = "a\uf0fc"
    run.font.name = "Symbol"
    sym = run.font._rPr.makeelement(
        "{http://schemas.openxmlformats.org/drawingml/2006/main}sym", {"typeface": "Wingdings"}
    )
    run.font._rPr.append(sym)
    body.add_run().text = " done"
    notes = slide.notes_slide.notes_text_frame.paragraphs[0]
    notes.add_run().text = "Say "
    run = notes.add_run()
    run.text = "p"
    run.font.name = "Symbol"
    buf = io.BytesIO()
    prs.save(buf)
    parsed = parse_file(_file(tmp_path, "s.pptx", buf.getvalue()), "s.pptx", OPTIONS)
    assert "Angle \u03b1\u2713 done" in parsed.text
    assert "Say \u03c0" in parsed.text


def test_a_docx_equations_letters_are_read_as_letters(tmp_path: Path) -> None:
    # Word keeps a typed equation's letters plain, but one pasted from PowerPoint holds
    # mathematical italics (U+1D44E for a; U+210E for h), which came out as
    # "\mathit{E=\mathit{h" in docling's LaTeX, unclosed.
    equation = (
        '<w:p><m:oMathPara xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/'
        'math"><m:oMath><m:r><m:t>\U0001d438=\u210e\U0001d708</m:t></m:r></m:oMath>'
        "</m:oMathPara></w:p>"
    )
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {"word/document.xml": lambda text: text.replace("<w:sectPr", equation + "<w:sectPr")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "e.docx", data), "e.docx", OPTIONS)
    assert parsed.text.endswith("CANARY-BEFORE\n\n$$E=h \\nu$$")


def test_a_docx_holding_xml_comments_is_read(tmp_path: Path) -> None:
    """python-docx's own test files hold XML comments in their body: docling's walk
    failed on them ("Invalid input tag")."""
    data = docs._repacked(
        docs.docx_bytes("Plan", {"Scope": "CANARY-BEFORE"}),
        {
            "word/document.xml": lambda text: text.replace(
                "<w:body>", "<w:body><!-- a table with <w:gridBefore> --><?generator x?>"
            ).replace(
                "CANARY-BEFORE</w:t>",
                "CANARY-BEFORE</w:t></w:r><!-- between\nruns --><w:r><w:t> CANARY-AFTER</w:t>",
            )
        },
        {},
    )
    parsed = parse_file(_file(tmp_path, "plan.docx", data), "plan.docx", OPTIONS)
    assert parsed.text == "# Plan\n\n## Scope\n\nCANARY-BEFORE CANARY-AFTER"
    # docling walks the headers and footers too.
    from docx import Document

    document = Document()
    document.add_paragraph("CANARY-BODY")
    document.sections[0].header.paragraphs[0].text = "Page head"
    buffer = io.BytesIO()
    document.save(buffer)
    data = docs._repacked(
        buffer.getvalue(),
        {"word/header1.xml": lambda text: text.replace("<w:p>", "<!-- head --><w:p>", 1)},
        {},
    )
    parsed = parse_file(_file(tmp_path, "headed.docx", data), "headed.docx", OPTIONS)
    assert parsed.text == "CANARY-BODY"


def test_tables_with_no_text_in_any_cell_are_left_out(tmp_path: Path) -> None:
    """A form's blank grid was a Markdown table of bars and dashes, chunked and embedded."""
    from docx import Document

    document = Document()
    document.add_paragraph("CANARY-FORM")
    document.add_table(rows=3, cols=3)
    filled = document.add_table(rows=2, cols=2)
    filled.cell(0, 0).text = "Name"
    filled.cell(1, 1).text = "Ada"
    buffer = io.BytesIO()
    document.save(buffer)
    parsed = parse_file(_file(tmp_path, "form.docx", buffer.getvalue()), "form.docx", OPTIONS)
    assert parsed.text == "CANARY-FORM\n\n| Name   |     |\n|--------|-----|\n|        | Ada |"
    html = (
        b"<p>CANARY-PAGE</p><table><caption>Sign here</caption><tr><td> </td><td></td></tr>"
        b"<tr><td></td></tr></table>"
    )
    parsed = parse_file(_file(tmp_path, "page.html", html), "page.html", OPTIONS)
    assert parsed.text == "CANARY-PAGE\n\nSign here"
    blank = io.BytesIO()
    document = Document()
    document.add_table(rows=2, cols=2)
    document.save(blank)
    with pytest.raises(BlankDocumentError):
        parse_file(_file(tmp_path, "blank.docx", blank.getvalue()), "blank.docx", OPTIONS)


def test_docx_footnotes_and_endnotes_are_read_where_they_are_cited(tmp_path: Path) -> None:
    """As an OpenDocument text's notes are: docling reads neither notes part."""
    data = docs.docx_with_notes(
        [
            "The supplier repairs pumps[[fn2]].",
            "Payment[[en2]] terms apply[[fn3]].",
            "A mark with no note[[fn9]] & more.",
        ],
        {
            "fn2": ["CANARY-FOOTNOTE within two working days."],
            "fn3": ["Net 30 <days>", "unless agreed."],
            "en2": ["CANARY-ENDNOTE in euros."],
        },
    )
    parsed = parse_file(_file(tmp_path, "contract.docx", data), "contract.docx", OPTIONS)
    assert parsed.text == (
        "The supplier repairs pumps (note: CANARY-FOOTNOTE within two working days.).\n\n"
        "Payment (note: CANARY-ENDNOTE in euros.) terms apply (note: Net 30 <days> unless "
        "agreed.).\n\nA mark with no note & more."
    )
    # Notes that cannot be read leave the text as it was read before.
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as package, zipfile.ZipFile(broken, "w") as copy:
        for info in package.infolist():
            notes = info.filename == "word/footnotes.xml"
            copy.writestr(info, b"<w:footnotes" if notes else package.read(info))
    parsed = parse_file(_file(tmp_path, "b.docx", broken.getvalue()), "b.docx", OPTIONS)
    assert parsed.text.startswith(
        "The supplier repairs pumps.\n\nPayment (note: CANARY-ENDNOTE in euros.) terms apply."
    )


_PROCESS = [
    ("Plan", [("Scope", []), ("Budget & staff\nby quarter", [])]),
    ("Build", []),
    ("Ship", [("CANARY-SMARTART release", [])]),
]
_PROCESS_LIST = (
    "- Plan\n  - Scope\n  - Budget & staff / by quarter\n- Build\n- Ship\n"
    "  - CANARY-SMARTART release"
)


def test_a_slides_smartart_diagram_is_read_as_a_nested_list(tmp_path: Path) -> None:
    """docling reads none of a diagram: a process's steps were lost."""
    parsed = parse_file(
        _file(tmp_path, "d.pptx", docs.pptx_with_diagram(_PROCESS)), "d.pptx", OPTIONS
    )
    assert [s.text for s in parsed.segments] == [
        f"# Delivery process\n\n{_PROCESS_LIST}\n\nSpeaker notes: Walk through the steps."
    ]
    # A slide holding the diagram alone has no text of docling's: it is kept all the same.
    alone = docs.pptx_with_diagram(_PROCESS, titled=False)
    parsed = parse_file(_file(tmp_path, "a.pptx", alone), "a.pptx", OPTIONS)
    assert [(s.page, s.text) for s in parsed.segments] == [
        (1, f"{_PROCESS_LIST}\n\nSpeaker notes: Walk through the steps.")
    ]


def test_a_documents_smartart_diagram_is_read_where_it_is_drawn(tmp_path: Path) -> None:
    parsed = parse_file(
        _file(tmp_path, "d.docx", docs.docx_with_diagram(_PROCESS)), "d.docx", OPTIONS
    )
    lines = _PROCESS_LIST.replace("\n", "  \n")  # docling's line breaks
    assert parsed.text == (f"The process has three steps.\n\n{lines}\n\nEach step has an owner.")


def test_smartart_points_no_connection_reaches_and_loops_are_read_once() -> None:
    from rag_ingest.parsers.smartart import diagram_markdown

    dgm = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"

    def point(key: str, text: str) -> str:
        body = f"<dgm:t><a:p><a:r><a:t>{text}</a:t></a:r></a:p></dgm:t>"
        return f'<dgm:pt modelId="{key}">{body}</dgm:pt>'

    model = (
        f'<dgm:dataModel xmlns:dgm="{dgm}" xmlns:a="{a}"><dgm:ptLst>'
        '<dgm:pt modelId="0" type="doc"/>'
        + point("1", "one")
        + point("2", "two")
        + point("3", "loose")
        + '</dgm:ptLst><dgm:cxnLst><dgm:cxn srcId="0" destId="1" srcOrd="0"/>'
        '<dgm:cxn srcId="1" destId="2" srcOrd="0"/><dgm:cxn srcId="2" destId="1" srcOrd="0"/>'
        '<dgm:cxn type="presOf" srcId="1" destId="3" srcOrd="1"/></dgm:cxnLst></dgm:dataModel>'
    )
    assert diagram_markdown(model.encode()) == "- one\n  - two\n- loose"
    assert diagram_markdown(b"<dgm:dataModel") == ""


def test_an_opendocument_drawing_is_read_page_by_page(tmp_path: Path) -> None:
    """It had been read as a zip of XML files: styles.xml, content.xml and all."""
    body = (
        '<draw:page draw:name="Layout"><draw:frame><draw:text-box><text:p>CANARY-ODG rack A'
        "</text:p></draw:text-box></draw:frame><draw:custom-shape><text:p>core router</text:p>"
        "</draw:custom-shape><draw:connector><text:p>10 Gb/s</text:p></draw:connector>"
        '</draw:page><draw:page draw:name="p2"><draw:rect><text:p>page two</text:p>'
        "</draw:rect></draw:page>"
    )
    data = docs.odf_bytes("drawing", body, mime="graphics")
    for name in ("floor.odg", "floor"):
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser, parsed.pages) == ("odg", "odf-odg", 2)
        assert [(s.page, s.text) for s in parsed.segments] == [
            (1, "CANARY-ODG rack A\n\ncore router\n\n10 Gb/s"),
            (2, "page two"),
        ]
    template = docs.odf_bytes("drawing", body, mime="graphics-template")
    assert detect(_file(tmp_path, "t.otg", template), "t.otg").kind == "odg"


def test_a_message_saved_without_eml_is_read_as_one_by_its_headers(tmp_path: Path) -> None:
    """Maildir names its files "1700000000.M1P2.host:2,S": they had been read as text,
    headers and MIME parts and all."""
    message = (
        b"Return-Path: <ann@example.org>\r\nReceived: from mx.example.org by mail;\r\n"
        b" Wed, 2 Dec 2026 10:00:00 +0000\r\nFrom: Ann <ann@example.org>\r\n"
        b"To: team@example.org\r\nSubject: CANARY-MAILDIR standup moved\r\n"
        b"Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\r\nThe standup moves to 10:30.\r\n"
    )
    name = "cur/1700000000.M1P2.mailhost:2,S"
    parsed = parse_file(_file(tmp_path, name, message), name, OPTIONS)
    assert parsed.file_type == "email" and parsed.text.startswith(
        "# CANARY-MAILDIR standup moved\n\nFrom: Ann <ann@example.org>"
    )
    assert parsed.text.endswith("The standup moves to 10:30.")
    assert "an e-mail message by its headers" in parsed.warnings[-1]
    # Header-like lines that are not a message's stay text: no sender, or no blank line.
    for other in (
        b"name: app\nversion: 1\nfrom: base\n\nrest\n",  # a sender, nothing else a mail has
        b"Title: Notes\nAuthor: me\nDate: today\n\nBody\n",  # a date, no sender
        b"From: Ann\nTo: Bob\nSubject: hi\nthen text at once\n",  # no blank line after them
    ):
        assert detect(_file(tmp_path, "NOTES", other), "NOTES").kind == "text"
    assert detect(_file(tmp_path, "m.txt", message), "m.txt").kind == "text"  # named text


def _with_winmail(body: str, data: bytes, name: str = "winmail.dat") -> bytes:
    message = EmailMessage()
    message["From"] = "Sue <sue@library.example>"
    message["Subject"] = "Y2K problem"
    message.set_content(body)
    message.add_attachment(data, maintype="application", subtype="ms-tnef", filename=name)
    return bytes(message)


def test_attachments_outlook_wrapped_in_winmail_dat_are_read(tmp_path: Path) -> None:
    """A winmail.dat (TNEF) had been one attachment of no known type: the files in it,
    and an RTF mail's body, were lost."""
    data = _with_winmail("See the report attached.", docs.tnef("missing-filenames"))
    parsed = parse_file(_file(tmp_path, "m.eml", data), "m.eml", OPTIONS)
    assert "Attachments: generpts.src, TechlibDEC99.doc, TechlibDEC99-JAN00.doc, " in parsed.text
    report = [s for s in parsed.segments if s.member == "generpts.src"]
    assert report and report[0].text.startswith("*PROC CIRREQ01")
    # Word 97 documents of nothing but pictures: each a warning, the mail read.
    assert sum("no text besides its pictures" in w for w in parsed.warnings) == 3
    # The body kept only in the winmail.dat, as compressed RTF.
    data = _with_winmail("", docs.tnef("rtf"))
    parsed = parse_file(_file(tmp_path, "r.eml", data), "r.eml", OPTIONS)
    assert "aafgag'alga'kgk" in parsed.text and "Greg Allen" in parsed.text
    # A broken one is a warning; the mail and its other text are read.
    data = _with_winmail("Body text.", bytes(40))  # no TNEF signature
    parsed = parse_file(_file(tmp_path, "b.eml", data), "b.eml", OPTIONS)
    assert parsed.text.endswith("Body text.")
    assert (
        parsed.warnings
        == [
            w
            for w in parsed.warnings
            if w.startswith("attachment winmail.dat: CorruptDocumentError")
        ]
        and parsed.warnings
    )


def test_a_winmail_dat_alone_is_read_as_the_mail_it_holds(tmp_path: Path) -> None:
    data = docs.tnef("umlaut")
    for name in ("winmail.dat", "attachment"):
        parsed = parse_file(_file(tmp_path, name, data), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("email", "tnef")
        assert parsed.text.startswith(
            "# (no subject)\n\nAttachments: TBZ PARIV GmbH.jpg, image003.jpg, "
            "UmlautAnhang-\u00e4\u00fc\u00f6.txt\n\nTEST \u00e4\u00f6\u00fc +-*/~"
        )
        attached = [s for s in parsed.segments if s.member == "UmlautAnhang-\u00e4\u00fc\u00f6.txt"]
        assert attached[0].text == "TEST \u00e4\u00f6\u00fc +-*/~"  # 14 bytes of cp1252
    # tnefparse reads what a cut stream holds: here, nothing.
    with pytest.raises(BlankDocumentError, match=r"^cut\.dat: an e-mail without text"):
        parse_file(_file(tmp_path, "cut.dat", data[:30]), "cut.dat", OPTIONS)


def test_winmail_dat_without_the_office_extra_is_a_warning_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tnefparse", None)
    data = _with_winmail("Body text.", docs.tnef("rtf"))
    parsed = parse_file(_file(tmp_path, "m.eml", data), "m.eml", OPTIONS)
    assert parsed.text.endswith("Body text.")
    assert "MissingExtraError" in parsed.warnings[0] and "rag-ingest[office]" in parsed.warnings[0]


def test_a_long_text_charset_normalizer_finds_too_messy_is_still_read_in_its_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vim's Russian tutors (KOI8-R, cp1251; 36 KB) scored past charset_normalizer's 20%
    chaos in every page, for their last lines (English names, rules of tildes), and had
    been read as cp1252: mojibake. So it is made to find them here."""
    import charset_normalizer

    real = charset_normalizer.from_bytes
    asked: list[float] = []
    messy: set[bytes] = set()  # the files' bytes, not those of a reading tried
    hopeless: set[bytes] = set()  # read in no page, even loosely

    def as_on_vims_tutor(data: bytes, threshold: float = 0.2, **kwargs: Any) -> Any:
        asked.append(threshold)
        if (data in messy and threshold <= 0.2) or data in hopeless:
            return []
        return real(data, threshold=threshold, **kwargs)

    monkeypatch.setattr(charset_normalizer, "from_bytes", as_on_vims_tutor)
    russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. CANARY\n" * 80
    for encoding in ("koi8_r", "cp1251"):
        messy.add(data := russian.encode(encoding))
        parsed = parse_file(_file(tmp_path, "tutor.ru", data), "tutor.ru", OPTIONS)
        assert parsed.text == russian and asked[-1] == 0.5
        assert split_notes(parsed.warnings)[0] == []
    # Italian's few accents, each with the letter after it, read as Shift JIS with a
    # fault in a hundred characters: not a CJK text, too few of its bytes beyond ASCII.
    italian = (
        "Il comando per cancellare una parola si batte all'inizio della parola stessa, "
        "con il cursore sulla linea marcata qui sotto; poi batta :wq per salvare il file "
        "e uscire dall'editor, e ripeta i passi se la lezione non fosse chiara. Questa "
        "lezione è finita. CANARY\n"
    ) * 40
    messy.add(data := italian.encode("cp1252"))
    parsed = parse_file(_file(tmp_path, "tutor.it", data), "tutor.it", OPTIONS)
    assert parsed.text == italian and parsed.parser == "text[cp1252]"
    # Read in no page even so: cp1252, said so, not "too short".
    hopeless.add(data := italian.replace("è", "é").encode("cp1252"))
    parsed = parse_file(_file(tmp_path, "tutor.it2", data), "tutor.it2", OPTIONS)
    assert parsed.text == italian.replace("è", "é") and parsed.parser == "text[cp1252]"
    assert split_notes(parsed.warnings)[0] == ["could not tell its encoding: read as cp1252"]
    # Nor is a short KOI8 text Shift JIS's half-width katakana, though it alone reads it
    # without a fault.
    hopeless.add(data := "Привет мир, CANARY".encode("koi8_r"))
    parsed = parse_file(_file(tmp_path, "hi.txt", data), "hi.txt", OPTIONS)
    assert parsed.parser == "text[cp1252]"
    # A short one is not guessed at so loosely.
    asked.clear()
    messy.add(data := russian[:60].encode("koi8_r"))
    parse_file(_file(tmp_path, "s.txt", data), "s.txt", OPTIONS)
    assert 0.5 not in asked


def test_a_cjk_text_with_a_few_sequences_its_codec_lacks_is_read_in_it(tmp_path: Path) -> None:
    """vim's Big5 tutor holds 45 sequences Big5 lacks: charset_normalizer offered no
    reading, and it had been read as UTF-8 with 7,381 bytes replaced."""
    line = "歡迎閱讀《VIM 教程》。vim 是一個具有很多命令的功能非常強大的編輯器。CANARY\n"
    data = (line.encode("big5") * 5 + b"\x8f\xfe\xa8\xd3\n") * 16
    parsed = parse_file(_file(tmp_path, "tutor.zh.big5", data), "tutor.zh.big5", OPTIONS)
    assert parsed.text.count(line.strip()) == 80 and parsed.parser == "text[cp950]"
    assert split_notes(parsed.warnings)[0] == ["32 undecodable bytes replaced with U+FFFD"]
    # Past its first MiB (what it is judged by), read whole all the same.
    long = data * 180 + "結尾 CANARY-TAIL\n".encode("big5")
    parsed = parse_file(_file(tmp_path, "long.big5", long), "long.big5", OPTIONS)
    assert parsed.parser == "text[cp950]" and parsed.text.endswith("結尾 CANARY-TAIL\n")
    assert split_notes(parsed.warnings)[0] == ["5760 undecodable bytes replaced with U+FFFD"]
    # Korean in EUC-KR: GBK reads every pair without a fault, as nonsense ideographs
    # (charset_normalizer's own loose guess was GB18030): the reading taken is the one
    # charset_normalizer finds calm once the faults are out.
    korean = (
        "빔 길잡이에 오신 것을 환영합니다. 빔은 이 길잡이에서 다 설명할 수 없을 만큼 많은 "
        "명령을 가진 매우 강력한 편집기입니다. CANARY\n"
    )
    data = (korean.encode("euc_kr") * 5 + b"\xc9\x41\n") * 12
    parsed = parse_file(_file(tmp_path, "tutor.ko", data), "tutor.ko", OPTIONS)
    assert parsed.text.count(korean.strip()) == 60 and parsed.parser == "text[cp949]"
    # Too short for charset_normalizer, symbols among the words (as CPython's cp949 and
    # Johab samples, read as UTF-8 with 176 and 150 bytes replaced): the one encoding
    # that reads it without a fault.
    for encoding, line in (
        ("cp949", "겨울 숲 CANARY ㉠㉡ 「빛」 ⓐⓑ ※ 사랑해요 ♡♡ ㅋㅋㅋ 行복\n"),
        ("johab", "겨울 숲 CANARY ㉠㉡ 「빛」 ⓐⓑ ※ 똠방 펲시 ♡♡ ㅋㅋㅋ 行복\n"),
    ):
        data = (line * 2).encode(encoding)
        parsed = parse_file(_file(tmp_path, "sample.txt", data), "sample.txt", OPTIONS)
        assert parsed.text == line * 2 and parsed.parser == f"text[{encoding}]", encoding


def test_text_too_short_for_a_guess_or_tied_with_a_rare_code_page_reads_as_written(
    tmp_path: Path,
) -> None:
    short = "TEST \u00e4\u00f6\u00fc +-*/~".encode("cp1252")  # charset_normalizer: no guess
    parsed = parse_file(_file(tmp_path, "s.txt", short), "s.txt", OPTIONS)
    assert parsed.text == "TEST \u00e4\u00f6\u00fc +-*/~"
    assert parsed.warnings == ["too short to tell its encoding: read as cp1252"]
    # hp_roman8 tied without chaos, a point more coherent: it read "äöü" as "ð—■".
    longer = "TEST \u00e4\u00f6\u00fc +-*/~ and some more words in a longer line of text to detect"
    parsed = parse_file(_file(tmp_path, "l.txt", longer.encode("cp1252")), "l.txt", OPTIONS)
    assert parsed.text == longer


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Zažółć gęślą jaźń. Dzień dobry!\n", "iso8859_2"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Zažółć gęślą jaźń. Dzień dobry!\n", "cp1250"),
        (
            "Grüße aus München: don\u2019t miss the col·lecció \u2013 it\u2019s “great”.\n" * 3,
            "cp1252",
        ),
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.\n", "koi8_r"),
        # Read calmest by Mac Cyrillic (rare) and Greek cp1253 (common) at half its
        # coherence: it had been Greek.
        (
            "Съешь же ещё этих мягких французских булок, да выпей чаю. \u0412 чащах юга жил бы "
            "цитрус? Да, но фальшивый экземпляр!\n",
            "mac_cyrillic",
        ),
        # Mac Cyrillic alone reads it without chaos: no common code page is looked for
        # (koi8_r, a little less calm, is all letters too).
        ("Привет! Как дела? Сегодня хорошая погода, мы пойдём гулять в парк.\n", "mac_cyrillic"),
        # Tied with cp1250, which has no byte of 0x80-0x9F here: "ą" for "š" had been read.
        (
            "Praha je hlavní a zároveň největší město České republiky. Žije zde přes milion "
            "obyvatel. Město leží na řece Vltavě a je známé svými historickými památkami, "
            "mosty a kostely.\n",
            "iso8859_2",
        ),
        (
            "Pijamal\u0131 hasta ya\u011f\u0131z şoföre çabucak güvendi. İstanbul büyük bir "
            "şehir.\n",
            "cp1254",
        ),
        # Polish without š or ž, read calmer by charset_normalizer as cp1250: "gę¶l±".
        (
            "Sprawozdanie kwartalne zostało opublikowane. Zażółć gęślą jaźń. Łódź, Kraków.\n",
            "iso8859_2",
        ),
        # Short KOI8, offered by charset_normalizer as Shift JIS (cp932) alone: "ﾋﾗﾁﾒﾔﾁﾌﾁ".
        ("Итоги квартала, отчёт, план.\n", "koi8_r"),
        ("Звіт про продажі за квартал. Дякуємо!\n", "koi8_u"),
        # 7-bit: it had passed as UTF-8, its text the escapes' ASCII.
        ("第三四半期の売上報告書が公開されました。ｶﾀｶﾅ\n", "iso2022_jp_ext"),
        # Shifted by SO and SI: it had been refused as binary for its control bytes.
        ("분기 매출 보고서가 게시되었습니다. 감사합니다.\n", "iso2022_kr"),
    ],
)
def test_legacy_code_pages_are_read_as_written(tmp_path: Path, text: str, encoding: str) -> None:
    """ISO-8859-2 Polish and Czech had been read as ISO-8859-10, calmer by
    charset_normalizer's measure and all letters: "Pøíliđ ūluŧoučký"."""
    data = (text * 2).encode(encoding)
    parsed = parse_file(_file(tmp_path, "t.txt", data), "t.txt", OPTIONS)
    assert parsed.text == text * 2


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        # One line each, as vim's tutors write them; read before as the page after "->".
        ("  1. Přesuň kurzor na první řádek označený --->.\n", "cp1250"),  # -> cp1252
        (
            "---> 'vim' és l'editor vim, i 'tutor' és el fitxer que voleu editar.\n",
            "cp1252",
        ),  # Big5
        ("El informe se publicó. Gracias, España y Mónica, ¿sí?\n", "cp1252"),  # -> cp1250
        ("A jelentés megjelent. Köszönöm, Győr és Pécs.\n", "cp1250"),  # -> cp1252
        ("Ketvirčio ataskaita paskelbta. Iš viso: 1200 eurų. Ačiū už dėmesį.\n", "cp1257"),
        ("Ceturkšņa pārskats ir publicēts. Paldies, Rīga un Daugavpils.\n", "cp1257"),  # cp1258
        ('     globalt på linjen, altså ændre alle forekomster af "dett" på linjen.\n', "cp1252"),
        ("       O editor de texto Vim - de Sérgio Luiz Araújo da Silva et al.\n", "cp1252"),
        ('  bu dosyan\u0131n bir kopyas\u0131n\u0131 al\u0131n (eğer "vimtutor"\n', "cp1254"),
        ("Kvartali müügiaruanne on avaldatud. Tänan, Tallinn ja Tõrva, šokolaad.\n", "cp1257"),
        # Kept: Russian words in English, Thai's combining vowels.
        (
            "\tLearning the Vi Editor, \u0430\u0432\u0442\u043e\u0440: Linda Lamb,\n"
            "\t\t\u0438\u0437\u0434\u0430\u0442\u0435\u043b\u044c: O'Reilly\n",
            "cp1251",
        ),
        ("รายงานยอดขายไตรมาสที่สามได้รับการเผยแพร่แล้ว รวม 1200 บาท ขอบคุณ\n", "cp874"),
    ],
)
def test_a_short_text_is_read_in_the_page_its_language_fits(text: str, encoding: str) -> None:
    """charset_normalizer's guess on a line or two was often another page of the same
    family: of excerpts of vim's tutors (1, 3 and 10 lines in 23 languages and their
    legacy pages), 221 in 839 were read wrong; 52 now, none of ten lines."""
    from rag_ingest.parsers.text import decode_text

    decoded, read_as, _ = decode_text(text.encode(encoding), "t.txt")
    assert (decoded, read_as) == (text, encoding)


def test_a_character_table_is_not_read_as_lone_cyrillic_letters() -> None:
    """A keymap (a key, a tab, a letter a line) read in KOI8 is all Cyrillic letters,
    one a word: no word of theirs beside them says it is not Russian."""
    from rag_ingest.parsers.text import decode_text

    table = '" Croatian keymap\nlet b:keymap_name = "hr"\nloadkeymap\n' + "".join(
        f"{key}\t{letter}\n" for key, letter in zip("[{]};:'\"", "šŠđĐčČćĆ", strict=True)
    )
    decoded, read_as, _ = decode_text(table.encode("cp1250"), "hr.vim")
    assert decoded == table and read_as in ("cp1250", "iso8859_2")


def test_how_far_a_reading_is_from_a_language() -> None:
    from rag_ingest.parsers.text import misfit

    # Lone Cyrillic letters among ASCII words (a keymap read as KOI8): each counts;
    # Russian's one-letter words, by words of their own, do not.
    assert misfit("map [ \u0448\nmap { \u0428\nmap ] \u0434\n") == 3
    assert (
        misfit("\u041e\u043d \u0432 \u0434\u043e\u043c\u0435 \u0438 \u0441\u0430\u0434\u0443.") == 0
    )
    # A spacing accent or a fraction by a letter, where another page has a letter.
    assert misfit("di pi\u00a8: tra\u00beenja") == 2 and misfit("di pi\u00f9: 10 m \u00bd") == 0
    # Letters of one word in two scripts; a small letter then a capital beyond ASCII.
    assert misfit("h\u91ba word") == 1 and misfit("\u0440\u0415\u042e\u0411 text") == 1
    # Letters outside the alphabet that fits best (Czech read as cp1252: ø ò).
    assert misfit("Pøesuò kurzor") == 1 and misfit("Přesuň kurzor") == 0  # Danish has ø


_KEYS = (  # key, then the letter it types; last, ˝ and a cedilla
    "[š {Š ]đ }Đ ;č :Č 'ć \"Ć \\ž |Ž /- ?_ ¬< ®> â{ î} ć[ ç] ń\\ ÷| ±~ ö@ ł^ ĺ€ í§ Ű÷ Ü¤ §ß µ° "
    "˝\u00b8 ·`"
)
_MENU = ("File", "파일"), ("Open", "열기"), ("Close", "닫기"), ("Save", "저장"), ("Edit", "편집")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        # A keyboard's table of letters fits no one alphabet; read as cp1252 it fits
        # one better by a little, not wholly: kept as charset_normalizer read it.
        (
            '" Croatian keyboard, Alt keys too\nlet b:keymap_name = "hr"\nloadkeymap\n'
            + "".join(f"{p[0]}\t{p[1:]}\n" for p in _KEYS.split()),
            "cp1250",
        ),
        # Korean words of two letters in a menu's: not a Latin text's accents read in
        # pairs, though cp1251 reads them a little better than as words out of place.
        ("".join(f"menutrans &{en}\t{ko}(&{en[0]})\n" for en, ko in _MENU), "euc_kr"),
        # Japanese comments in code.
        (
            "x = 1  # \u6ce8\u610f\ny = 2  # \u65e5\u672c\u8a9e\u306e\u30b3\u30e1\u30f3\u30c8\n",
            "cp932",
        ),
    ],
)
def test_a_reading_is_taken_over_only_by_one_that_fits_wholly(text: str, encoding: str) -> None:
    from rag_ingest.parsers.text import decode_text

    assert decode_text(text.encode(encoding), "t.txt")[0] == text


def test_a_cyrillic_reading_is_not_traded_for_another_on_a_tie() -> None:
    """Mac Cyrillic's small letters are KOI8's capitals: KOI8's all-capitals reading
    fits as well by letters alone (chardet's Mac Cyrillic sample had become KOI8)."""
    from rag_ingest.parsers.text import _better_fit

    text = (
        "\u043d\u043e\u0432\u043e\u0441\u0442\u0438 \u0434\u043d\u044f: \u043c\u044b "
        "\u043f\u0438\u0448\u0435\u043c \u043e \u043f\u043e\u0433\u043e\u0434\u0435\n"
    )
    assert _better_fit(text.encode("mac_cyrillic"), text, "mac_cyrillic") is None


def test_thai_vowel_and_tone_marks_are_part_of_their_words() -> None:
    from rag_ingest.parsers.text import decode_text

    text = (  # chardet's Thai sample, short, in HTML: it had become cp1251
        "<html>\n<body>\n\u0e23\u0e2b\u0e31\u0e2a\u0e2a\u0e33\u0e2b\u0e23\u0e31\u0e1a"
        "\u0e2d\u0e31\u0e01\u0e02\u0e23\u0e30\u0e44\u0e17\u0e22\u0e17\u0e35\u0e48\u0e43"
        "\u0e0a\u0e49\u0e01\u0e31\u0e1a\u0e04\u0e2d\u0e21\u0e1e\u0e34\u0e27\u0e40\u0e15"
        "\u0e2d\u0e23\u0e4c\n</body>\n</html>\n"
    )
    assert decode_text(text.encode("tis_620"), "t.html")[0] == text


def test_a_reading_with_control_characters_is_never_taken() -> None:
    import re

    from rag_ingest.parsers.text import _better_fit

    # Bytes no Windows page reads: an ISO page's reading of them is C1 controls.
    data = b"caf\xe9 \x81\x90\x98 text"
    fit = _better_fit(data, data.decode("mac_roman"), "mac_roman")
    assert fit is None or not re.search("[\x80-\x9f]", fit[0])


class _Match:
    """A charset_normalizer match, as decode_text reads one."""

    def __init__(self, data: bytes, encoding: str, chaos: float, coherence: float) -> None:
        self.encoding, self.percent_chaos, self.percent_coherence = encoding, chaos, coherence
        self._text = data.decode(encoding)

    def __str__(self) -> str:
        return self._text


@pytest.mark.parametrize(
    ("text", "source", "read_as"),
    [
        # Czech: ISO-8859-2's š ž at 0xB9 0xBE, no byte of 0x80-0x9F, where cp1250 has them.
        ("Šel jsem do školy, život je krásný a žlutý.\n", "iso8859_2", "iso8859_2"),
        # German with guillemets: the same bytes as ISO-8859-2's Ť ť, and no š ž.
        ("Der Bär sagt: «Grüß Gott» zu allen in München.\n", "latin-1", "cp1250"),
        # Polish in cp1250: its ś at 0x9C says cp1250.
        ("Zażółć gęślą jaźń, powiedział śmiało.\n", "cp1250", "cp1250"),
    ],
)
def test_cp1250_gives_way_to_iso_8859_2_only_for_its_letters(
    monkeypatch: pytest.MonkeyPatch, text: str, source: str, read_as: str
) -> None:
    """charset_normalizer ties the two on such texts (vim's Bavarian tutor; chardet's
    Czech ones) and lists cp1250 first."""
    import charset_normalizer

    from rag_ingest.parsers.text import decode_text

    data = text.encode(source)
    tied = [_Match(data, "cp1250", 0.0, 60.0), _Match(data, "iso8859_2", 0.0, 60.0)]
    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda _: tied)
    decoded, encoding, _ = decode_text(data, "t.txt")
    assert encoding == read_as and decoded == data.decode(read_as)


def test_symbols_inside_words_are_counted_but_not_their_punctuation() -> None:
    from rag_ingest.parsers.text import _symbols_in_words

    # cp1250's reading of ISO-8859-2 "gęślą": '¶' and '±' where 'ś' and 'ą' were.
    assert _symbols_in_words("gę¶l±a ja¼ń") == 2
    assert _symbols_in_words("don\u2019t col·lecció x\u2013y co\u00adop ±5 a ± b") == 0


@pytest.mark.parametrize(
    "text",
    [
        # Half-width katakana in Shift JIS (old systems' names): not KOI8.
        "ﾔﾏﾀﾞ ﾀﾛｳ ｶﾌﾞｼｷｶﾞｲｼｬ ﾄｳｷｮｳ\n",
        "ﾔﾏﾀﾞ ﾀﾛｳ 東京都 ｶﾌﾞｼｷｶﾞｲｼｬ\n",
    ],
)
def test_shift_jis_katakana_stay_katakana(tmp_path: Path, text: str) -> None:
    data = (text * 3).encode("shift_jis")
    parsed = parse_file(_file(tmp_path, "k.txt", data), "k.txt", OPTIONS)
    assert parsed.text == text * 3


def _form_pdf() -> bytes:
    """A filled form as PyMuPDF writes one: a text field right of its printed label, a
    ticked and an unticked box, an empty field, a list choice, a field with a tooltip
    label of its own; a second page of fields alone."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Application form", fontsize=16)

    def field(
        page: Any, kind: int, name: str, rect: tuple[float, ...], value: Any, **more: Any
    ) -> None:
        widget = pymupdf.Widget()
        widget.field_type, widget.field_name, widget.rect = kind, name, pymupdf.Rect(*rect)
        for attribute, setting in more.items():
            setattr(widget, attribute, setting)
        widget.field_value = value
        page.add_widget(widget)

    for y, label in (
        (110, "Applicant name:"),
        (140, "Approved:"),
        (170, "Urgent:"),
        (200, "Notes:"),
    ):
        page.insert_text((72, y), label)
    page.insert_text((72, 230), "Land:")  # printed, but the field names its own label
    page.insert_text((20, 110), "A1")  # a column of its own, left of the label
    field(page, pymupdf.PDF_WIDGET_TYPE_TEXT, "f1_01", (180, 98, 400, 116), "CANARY-FORM Jane Doe")
    field(page, pymupdf.PDF_WIDGET_TYPE_CHECKBOX, "ok", (180, 128, 195, 143), True)
    field(page, pymupdf.PDF_WIDGET_TYPE_CHECKBOX, "urgent", (180, 158, 195, 173), False)
    field(page, pymupdf.PDF_WIDGET_TYPE_TEXT, "notes", (180, 188, 400, 206), "")
    field(
        page,
        pymupdf.PDF_WIDGET_TYPE_COMBOBOX,
        "country",
        (180, 218, 400, 236),
        "Norway",
        choice_values=["Norway", "Sweden"],
        field_label="Country of residence",
    )
    second = doc.new_page()
    field(second, pymupdf.PDF_WIDGET_TYPE_TEXT, "signed_by", (72, 72, 300, 90), "CANARY-SIGNER")
    return doc.tobytes()


def test_a_pdf_forms_filled_fields_are_read_under_their_labels(tmp_path: Path) -> None:
    """A field's shown value had come out as page text away from its label, in the box's
    font size (the name as a heading, a tick as "### 3"); one without an appearance was
    lost."""
    parsed = parse_file(_file(tmp_path, "form.pdf", _form_pdf()), "form.pdf", OPTIONS)
    first, second = parsed.segments
    assert first.text.endswith(
        "Form fields:\n- Applicant name: CANARY-FORM Jane Doe\n- Approved: yes\n"
        "- Country of residence: Norway"
    )
    assert first.text.count("CANARY-FORM") == 1 and "### 3" not in first.text
    assert second.text == "Form fields:\n- signed_by: CANARY-SIGNER" and second.page == 2


def _broken_member(package: bytes, member: str) -> bytes:
    """``package`` with ``member``'s deflated data overwritten: zlib fails on it (before
    any CRC check)."""
    data = bytearray(package)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo(member)
        assert info.compress_type == zipfile.ZIP_DEFLATED
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    data[start : start + info.compress_size] = b"\xff" * info.compress_size
    return bytes(data)


def test_a_drawing_or_opendocument_whose_member_will_not_inflate_is_corrupt(
    tmp_path: Path,
) -> None:
    """zlib's own error had escaped untyped (found by mutating files at random)."""
    drawing = docs.vsdx_bytes([("P", "page1.xml", "<Shape ID='1'><Text>x</Text></Shape>")])
    for name, data, member in (
        ("d.vsdx", drawing, "visio/pages/page1.xml"),
        ("m.odt", docs.corpus()["docs/manual.odt"], "content.xml"),
    ):
        path = _file(tmp_path, name, _broken_member(data, member))
        with pytest.raises(CorruptDocumentError, match=rf"^{re.escape(name)}: "):
            parse_file(path, name, OPTIONS)


def test_an_ooxml_package_whose_relationships_will_not_inflate_is_read_or_corrupt(
    tmp_path: Path,
) -> None:
    """The Strict Open XML check reads ``_rels/.rels`` first, and zlib's error there had
    escaped it untyped for every DOCX, PPTX and XLSX (found by mutating files at random):
    the package's own reader now judges it."""
    for name, data in (
        ("w.docx", docs.docx_bytes("Title", {"Part": "CANARY-DOCX"})),
        ("p.pptx", docs.pptx_bytes([("Title", "CANARY-PPTX")])),
    ):
        path = _file(tmp_path, name, _broken_member(data, "_rels/.rels"))
        with pytest.raises(CorruptDocumentError, match=rf"^{re.escape(name)}: "):
            parse_file(path, name, OPTIONS)
    # openpyxl finds the workbook by its own rules, without the package's relationships.
    book = docs.xlsx_bytes([["item"], ["CANARY-XLSX"]])
    path = _file(tmp_path, "b.xlsx", _broken_member(book, "_rels/.rels"))
    assert "CANARY-XLSX" in parse_file(path, "b.xlsx", OPTIONS).text


def test_a_form_mupdf_cannot_read_leaves_the_pages_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymupdf

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("could not convert string to float: 'Î'")  # a bad DA string

    monkeypatch.setattr(pymupdf.Page, "widgets", broken)
    parsed = parse_file(_file(tmp_path, "form.pdf", _form_pdf()), "form.pdf", OPTIONS)
    assert "Applicant name:" in parsed.text and "Form fields" not in parsed.text


def _stored_zip(files: dict[str, bytes]) -> bytearray:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return bytearray(out.getvalue())


def test_zips_zipfile_cannot_open_fail_typed_or_lose_only_their_member(tmp_path: Path) -> None:
    """Found by mutating files at random: each of these had escaped untyped, or been
    called password-protected."""
    files = {"a.md": b"# A\n\nalpha text here", "b.md": b"# B\n\nCANARY beta text"}
    # A compression method zipfile lacks (Deflate64, as Windows writes large files):
    # NotImplementedError is a RuntimeError, which had read as "password-protected".
    data = _stored_zip(files)
    struct.pack_into("<H", data, data.find(b"PK\x03\x04") + 8, 9)
    struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 10, 9)
    parsed = parse_file(_file(tmp_path, "d64.zip", bytes(data)), "d64.zip", OPTIONS)
    assert [s.member for s in parsed.segments] == ["b.md"]
    assert parsed.warnings == [
        "a.md: UnsupportedFileTypeError: a member zipfile cannot unpack "
        "(That compression method is not supported)"
    ]
    # A version zipfile does not know, in the central directory.
    data = _stored_zip(files)
    struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 6, 217)
    with pytest.raises(CorruptDocumentError, match=r"not a readable archive \(zip file version"):
        parse_file(_file(tmp_path, "v.zip", bytes(data)), "v.zip", OPTIONS)
    # A central directory said to start past where it does: members at negative offsets
    # (EINVAL from the seek), each a corrupt member; none read fails the archive (it had
    # been "none with text", a format with no text, skipped unread when listed).
    data = _stored_zip(files)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 16, struct.unpack_from("<I", data, end + 16)[0] + 100)
    with pytest.raises(
        CorruptDocumentError, match=r"none read: 2 could not be \(a\.md: CorruptDocumentError"
    ):
        parse_file(_file(tmp_path, "n.zip", bytes(data)), "n.zip", OPTIONS)


def test_a_workbook_or_opendocument_with_a_member_that_will_not_inflate_fails_typed(
    tmp_path: Path,
) -> None:
    book = _broken_member(docs.xlsx_bytes([["a", "b"], [1, 2]]), "xl/worksheets/sheet1.xml")
    with pytest.raises(CorruptDocumentError, match=r"^b\.xlsx: not a readable archive"):
        parse_file(_file(tmp_path, "b.xlsx", book), "b.xlsx", OPTIONS)
    # Its "mimetype" deflated and broken, and no manifest: a damaged OpenDocument file.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", b"application/vnd.oasis.opendocument.text" * 4)
        archive.writestr("content.xml", b"<x/>")
    odt = _broken_member(out.getvalue(), "mimetype")
    with pytest.raises(CorruptDocumentError, match=r"^m\.odt: a damaged \.odt file: the parts"):
        parse_file(_file(tmp_path, "m.odt", odt), "m.odt", OPTIONS)


def test_a_pdf_s_attached_files_are_read_after_its_pages(tmp_path: Path) -> None:
    """Embedded files and file attachment annotations had been lost: a report's data
    attached as XLSX, a PDF attached to a PDF."""
    inner = docs.pdf_bytes(["CANARY-INNER first page", "CANARY-INNER second page"])
    data = docs.pdf_with_attachments(
        docs.pdf_bytes(["CANARY-COVER the report itself"]),
        {
            "figures.xlsx": docs.xlsx_bytes([["region", "sales"], ["CANARY-NORTH", 12]]),
            "annex.pdf": inner,
            "again.pdf": inner,  # the same bytes under another name: a file of its own
            "factur-x.xml": b"<rsm:CrossIndustryInvoice>CANARY-XML</rsm:CrossIndustryInvoice>",
            "logo.png": docs.photo(fmt="PNG"),
        },
        {"errata.md": b"# Errata\n\nCANARY-ERRATA page 3 is wrong", "annex.pdf": inner},
    )
    parsed = parse_file(_file(tmp_path, "report.pdf", data), "report.pdf", OPTIONS)
    assert [(s.member, s.page) for s in parsed.segments] == [
        (None, 1),
        ("figures.xlsx", 1),  # its sheet
        ("annex.pdf", 1),
        ("annex.pdf", 2),
        ("again.pdf", 1),
        ("again.pdf", 2),
        ("errata.md", None),  # the annotation's copy of annex.pdf is given once
    ]
    assert parsed.members == {
        "figures.xlsx": ("xlsx", None),
        "annex.pdf": ("pdf", None),
        "again.pdf": ("pdf", None),
        "errata.md": ("markdown", None),
    }
    attached = parsed.segments[2]
    assert (
        attached.text.startswith("## Attachment: annex.pdf\n\n") and "CANARY-INNER" in attached.text
    )
    assert "CANARY-NORTH" in parsed.segments[1].text
    assert parsed.segments[-1].text.startswith("## Attachment: errata.md\n\n### Errata\n\n")
    assert "CANARY-XML" not in parsed.text
    assert parsed.warnings == [
        "attachment factur-x.xml: the e-invoice's XML (the PDF's own content)",
        f"attachment logo.png: an image, {UNREAD_SCANS}",
    ]
    chunks = chunk_document(parsed, ChunkSettings(), {"filename": "report.pdf"}).chunks
    where = [(c.metadata.get("attachment"), c.metadata.get("page_start")) for c in chunks]
    assert where == [
        (None, 1),
        ("figures.xlsx", 1),
        ("annex.pdf", 1),
        ("again.pdf", 1),
        ("errata.md", None),
    ]
    assert [c.metadata["file_type"] for c in chunks] == ["pdf", "xlsx", "pdf", "pdf", "markdown"]


def test_a_portfolio_with_a_blank_cover_is_read_by_its_files(tmp_path: Path) -> None:
    """A PDF portfolio's cover page often says nothing: its files are the document."""
    data = docs.pdf_with_attachments(
        docs.pdf_bytes([""]),
        {"memo.docx": docs.docx_bytes("Memo", {"Budget": "CANARY-MEMO spend less"})},
    )
    path = _file(tmp_path, "portfolio.pdf", data)
    parsed = parse_file(path, "portfolio.pdf", OPTIONS)
    assert [s.member for s in parsed.segments] == ["memo.docx"]
    assert "CANARY-MEMO" in parsed.text and parsed.file_type == "pdf"
    off = ParseOptions(attachments=False)
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        parse_file(path, "portfolio.pdf", off)


def test_a_pdf_s_attachments_are_read_one_level_down_within_the_size_limit(
    tmp_path: Path,
) -> None:
    nested = docs.pdf_with_attachments(
        docs.pdf_bytes(["CANARY-MIDDLE"]), {"deepest.md": b"# Deep\n\nCANARY-DEEPEST"}
    )
    broken = docs.pdf_bytes(["x"])[:200]
    data = docs.pdf_with_attachments(
        docs.pdf_bytes(["CANARY-TOP"]),
        {"middle.pdf": nested, "broken.pdf": broken, "big.md": b"CANARY-BIG " * 1000},
    )
    path = _file(tmp_path, "top.pdf", data)
    parsed = parse_file(path, "top.pdf", ParseOptions(max_unzipped_size=len(nested) + 5000))
    assert "CANARY-MIDDLE" in parsed.text and "CANARY-DEEPEST" not in parsed.text
    assert "CANARY-BIG" not in parsed.text
    assert parsed.warnings[0].startswith("attachment broken.pdf: CorruptDocumentError: ")
    assert re.fullmatch(
        r"attachment big\.md: 11000 bytes, past the \d+ left to read", parsed.warnings[1]
    )
    assert len(parsed.warnings) == 2


def test_a_pdf_s_running_lines_are_judged_without_its_attachments(tmp_path: Path) -> None:
    """ "Draft figures" ends two of the report's four pages and two of its annex's three:
    judged over both, it was a running line (4 of 7 pages) and dropped from each."""
    data = docs.pdf_with_attachments(
        docs.pdf_with_running_lines(4), {"annex.pdf": docs.pdf_with_running_lines(3)}
    )
    parsed = parse_file(_file(tmp_path, "r.pdf", data), "r.pdf", OPTIONS)
    own = "".join(s.text for s in parsed.segments if s.member is None)
    annex = "".join(s.text for s in parsed.segments if s.member == "annex.pdf")
    assert own.count("CANARY-") == 4 and annex.count("CANARY-") == 3
    assert own.count("Draft figures") == 2 and annex.count("Draft figures") == 2
    assert "ACME Corp" not in own + annex


def _localized(package: bytes, title_id: str) -> bytes:
    """``package`` as Word writes it in another language: the Title style's ID (and
    its character style's) translated, its name left English."""

    def styles(text: str) -> str:
        text = text.replace('w:styleId="Title"', f'w:styleId="{title_id}"')
        text = text.replace('w:styleId="TitleChar"', f'w:styleId="{title_id}Zchn"')
        return text.replace('<w:link w:val="TitleChar"/>', f'<w:link w:val="{title_id}Zchn"/>')

    def document(text: str) -> str:
        return text.replace('<w:pStyle w:val="Title"/>', f'<w:pStyle w:val="{title_id}"/>')

    return docs._repacked(package, {"word/styles.xml": styles, "word/document.xml": document}, {})


@pytest.mark.parametrize("title_id", ["Titel", "Titre", "Título"])
def test_a_title_style_with_a_translated_id_is_still_the_title(
    tmp_path: Path, title_id: str
) -> None:
    """docling knows a title by its style's ID alone: a German report's title was a
    plain paragraph (headings it knows by their English names)."""
    package = _localized(docs.docx_bytes("Jahresbericht", {"Einleitung": "Text."}), title_id)
    assert f'w:styleId="{title_id}"'.encode() in zipfile.ZipFile(io.BytesIO(package)).read(
        "word/styles.xml"
    )
    parsed = parse_file(_file(tmp_path, "de.docx", package), "de.docx", OPTIONS)
    assert parsed.text.startswith("# Jahresbericht\n\n## Einleitung\n\nText.")


def test_a_style_already_called_title_keeps_its_id(tmp_path: Path) -> None:
    # A document whose "Title" ID is taken by another style: no two styles of one ID.
    package = _localized(docs.docx_bytes("Jahresbericht", {"Einleitung": "Text."}), "Titel")

    def styles(text: str) -> str:
        other = '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Other"/></w:style>'
        return text.replace("</w:styles>", f"{other}</w:styles>")

    package = docs._repacked(package, {"word/styles.xml": styles}, {})
    parsed = parse_file(_file(tmp_path, "de.docx", package), "de.docx", OPTIONS)
    assert parsed.text.startswith("Jahresbericht\n\n## Einleitung")


_XPS_PAGES = [
    [("Quarterly Report", 28), ("CANARY-XPS revenue grew in the", 12)],
    [("north of the country.", 12), ("Outlook", 20), ("Second page CANARY-XPS-TWO.", 12)],
]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("report.xps", {}),
        ("report.oxps", {"open_xps": True}),
        ("report", {"pieces": True}),  # no name to go by; its pages in pieces
    ],
)
def test_an_xps_document_is_read_page_by_page(
    tmp_path: Path, name: str, options: dict[str, bool]
) -> None:
    """Read as a zip of XML files, an XPS printout was its [Content_Types].xml, page
    markup and an embedded font, each a chunk; MuPDF reads it as it reads a PDF."""
    path = _file(tmp_path, name, docs.xps_bytes(_XPS_PAGES, **options))
    assert detect(path, name).kind == "xps"
    parsed = parse_file(path, name, OPTIONS)
    assert parsed.file_type == "xps" and parsed.pages == 2
    assert [(s.page, " ".join(s.text.split())) for s in parsed.segments] == [
        (1, "# Quarterly Report CANARY-XPS revenue grew in the"),
        (2, "north of the country. ## Outlook Second page CANARY-XPS-TWO."),
    ]
    (chunk,) = chunk_document(parsed, ChunkSettings(), {}).chunks
    # A sentence a page break cut is joined across it, as a PDF's is.
    assert "grew in the north of the country." in chunk.text
    assert (chunk.metadata["page_start"], chunk.metadata["page_end"]) == (1, 2)
    assert chunk.metadata["file_type"] == "xps"


def _without(package: bytes, member: str) -> bytes:
    """A zip without one of its members, as a damaged copy lost it."""
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as kept:
        for info in source.infolist():
            if info.filename != member:
                kept.writestr(info, source.read(info))
    return out.getvalue()


def test_an_xps_or_visio_file_without_its_content_types_is_read(tmp_path: Path) -> None:
    # A damaged copy that lost [Content_Types].xml had been refused as "a zip or tar
    # archive, not a .xps file"; MuPDF and the Visio reader need no such part.
    xps = _without(docs.xps_bytes(_XPS_PAGES), "[Content_Types].xml")
    parsed = parse_file(_file(tmp_path, "s.xps", xps), "s.xps", OPTIONS)
    assert parsed.file_type == "xps" and "CANARY-XPS-TWO" in parsed.text
    visio = (Path(__file__).parent.parent / "fixtures" / "visio" / "media.vsdx").read_bytes()
    visio = _without(visio, "[Content_Types].xml")
    parsed = parse_file(_file(tmp_path, "m.vsdx", visio), "m.vsdx", OPTIONS)
    assert parsed.parser == "visio-xml" and "CIRCLE" in parsed.text
    # A zip of files that holds a page's markup is still an archive.
    loose = docs.zip_bytes({"notes/1.fpage": b"<FixedPage/>", "readme.txt": b"CANARY"})
    assert detect(_file(tmp_path, "x.zip", loose), "x.zip").kind == "archive"


def test_a_package_with_damaged_first_bytes_or_no_parts_is_said_so(tmp_path: Path) -> None:
    # Its first local header's mark flipped ("pK"), its directory intact: it had been
    # "content does not match its .odt extension", as if misnamed.
    odt = b"p" + docs.odt_bytes()[1:]
    with pytest.raises(CorruptDocumentError, match=r"damaged \.odt file: its first bytes"):
        parse_file(_file(tmp_path, "t.odt", odt), "t.odt", OPTIONS)
    notes = b"PK\x8c" + docs.zip_bytes({"a.md": b"# A\n"})[3:]
    with pytest.raises(CorruptDocumentError, match=r"damaged \.zip file"):
        parse_file(_file(tmp_path, "n.zip", notes), "n.zip", OPTIONS)
    # A compound file (.doc) whose signature lost a byte (its byte-order mark too), or
    # its whole signature, its header's byte-order mark kept: damaged, not misnamed
    # (found by fuzzing).
    memo = docs.legacy_office("memo.doc")
    flipped = memo[:4] + b"\xb3" + memo[5:28] + b"\x00\x00" + memo[30:]
    for damaged in (flipped, bytes(8) + memo[8:]):
        with pytest.raises(CorruptDocumentError, match=r"damaged \.doc file: its first bytes"):
            parse_file(_file(tmp_path, "m.doc", damaged), "m.doc", OPTIONS)
    # An empty zip: an archive of nothing to index (skipped), a document broken.
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(BlankDocumentError, match="an empty zip archive"):
        parse_file(_file(tmp_path, "e.zip", empty.getvalue()), "e.zip", OPTIONS)
    with pytest.raises(CorruptDocumentError, match=r"damaged \.docx file: an empty zip"):
        parse_file(_file(tmp_path, "e.docx", empty.getvalue()), "e.docx", OPTIONS)
    # Its parts there but not the one that says what they are: damaged, not misnamed.
    lost = _without(docs.docx_bytes("T", {"A": "CANARY"}), "[Content_Types].xml")
    with pytest.raises(CorruptDocumentError, match=r"its \[Content_Types\]\.xml is missing"):
        parse_file(_file(tmp_path, "l.docx", lost), "l.docx", OPTIONS)
    lost = _without(_without(docs.odt_bytes(), "mimetype"), "META-INF/manifest.xml")
    with pytest.raises(CorruptDocumentError, match=r"\(its mimetype, its manifest\) are missing"):
        parse_file(_file(tmp_path, "l.odt", lost), "l.odt", OPTIONS)
    lost = _without(docs.xps_bytes(_XPS_PAGES), "Documents/1/Pages/1.fpage")
    lost = _without(lost, "Documents/1/Pages/2.fpage")
    with pytest.raises(CorruptDocumentError, match=r"damaged \.xps file: its pages are missing"):
        parse_file(_file(tmp_path, "l.xps", lost), "l.xps", OPTIONS)
    # A workbook whose one sheet's part is lost had been skipped as "no slides".
    book = _without(docs.xlsx_bytes([["a", "CANARY"]]), "xl/worksheets/sheet1.xml")
    with pytest.raises(CorruptDocumentError, match="no sheet of this xlsx could be read"):
        parse_file(_file(tmp_path, "l.xlsx", book), "l.xlsx", OPTIONS)
    book = docs.epub_bytes([("One", "CANARY")])
    lost = _without(_without(book, "mimetype"), "META-INF/container.xml")
    with pytest.raises(CorruptDocumentError, match=r"\(its mimetype, its container\) are missing"):
        parse_file(_file(tmp_path, "l.epub", lost), "l.epub", OPTIONS)
    # Its directory's first name length damaged: the name runs on over the others.
    odt = bytearray(docs.odt_bytes())
    entry, end = odt.index(b"PK\x01\x02"), odt.rindex(b"PK\x05\x06")
    struct.pack_into("<H", odt, entry + 28, end - (entry + 46))
    with pytest.raises(CorruptDocumentError, match="its zip directory is damaged"):
        parse_file(_file(tmp_path, "d.odt", bytes(odt)), "d.odt", OPTIONS)
    # A member's name flagged UTF-8 that is not (oss-fuzz's ofz4825-1.docx): it had
    # failed untyped (UnicodeDecodeError).
    named = docs._repacked(docs.docx_bytes("P", {"S": "CANARY"}), {}, {"word/\u00e9.xml": "<a/>"})
    named = named.replace("\u00e9.xml".encode(), b"\x90\xa9.xml")
    with pytest.raises(CorruptDocumentError, match="its zip directory cannot be read"):
        parse_file(_file(tmp_path, "n.docx", named), "n.docx", OPTIONS)
    # A binary file named for one that is no zip at all is still misnamed.
    with pytest.raises(UnsupportedFileTypeError, match=r"does not match its \.docx"):
        parse_file(_file(tmp_path, "b.docx", bytes(range(256))), "b.docx", OPTIONS)


@pytest.mark.parametrize(
    ("kind", "part", "package", "body"),
    [
        ("docx", "word/document.xml", lambda: docs.docx_bytes("P", {"S": "CANARY-M R"}), "w:body"),
        ("pptx", "ppt/slides/slide1.xml", lambda: docs.pptx_bytes([("P", "CANARY-M R")]), "p:cSld"),
        (
            "xlsx",
            "xl/worksheets/sheet1.xml",
            lambda: docs.xlsx_bytes([["CANARY-M R"]]),
            "sheetData",
        ),
    ],
)
def test_an_office_part_not_well_formed_is_read_mended(
    tmp_path: Path, kind: str, part: str, package: Callable[[], bytes], body: str
) -> None:
    # As Word and Excel open one, mended: pandoc's normalize.docx ("<w:i/ >") and a
    # generator's bare "&" had failed whole.
    broken = docs._repacked(
        package(), {part: lambda t: t.replace("CANARY-M R", "CANARY-M & R")}, {}
    )
    parsed = parse_file(_file(tmp_path, f"b.{kind}", broken), f"b.{kind}", OPTIONS)
    assert "CANARY-M R" in " ".join(parsed.text.split())
    [warning] = parsed.warnings
    assert warning.startswith(f"{part} is not well-formed XML (")
    assert warning.endswith(": read as a recovering parser mends it, what is broken left out")
    # Cut short, mended into nothing to read: damaged, as docling's reader said.
    cut = docs._repacked(package(), {part: lambda t: t[: t.index(f"<{body}>") + len(body) + 2]}, {})
    with pytest.raises(CorruptDocumentError, match=r"(XMLSyntaxError|ParseError): "):
        parse_file(_file(tmp_path, f"c.{kind}", cut), f"c.{kind}", OPTIONS)


@pytest.mark.parametrize("kind", ["docx", "xlsx"])
def test_an_office_part_not_well_formed_beside_a_damaged_one_fails_typed(
    tmp_path: Path, kind: str
) -> None:
    # LibreOffice's forcepoint-group-range-1.xls (an XLSX) had failed untyped
    # ("BadZipFile: Bad CRC-32"): the mending read a part whose data is damaged.
    part, package = (
        ("word/document.xml", docs.docx_bytes("P", {"S": "CANARY-M R"}))
        if kind == "docx"
        else ("xl/worksheets/sheet1.xml", docs.xlsx_bytes([["CANARY-M R"]]))
    )
    broken = docs._repacked(package, {part: lambda t: t.replace("M R", "M & R<")}, {})
    out = io.BytesIO(broken)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(zipfile.ZipInfo("customXml/item9.xml"), b"<a>CRC-CANARY</a>")
    damaged = out.getvalue().replace(b">CRC-CANARY<", b">CRC-CANARZ<")
    with pytest.raises(CorruptDocumentError, match=r"could not open this (docx|xlsx) \("):
        parse_file(_file(tmp_path, f"d.{kind}", damaged), f"d.{kind}", OPTIONS)


def _strict(package: bytes) -> bytes:
    """A transitional OOXML package as Office saves it in Strict Open XML: its
    vocabularies' names under purl.oclc.org (the packaging's own, OPC's, unchanged)."""
    named = re.compile(
        r"http://schemas\.openxmlformats\.org/"
        r"(officeDocument|drawingml|wordprocessingml|spreadsheetml|presentationml)/2006/"
    )
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        parts = [n for n in archive.namelist() if n.endswith((".xml", ".rels"))]

    def strict(text: str) -> str:
        return named.sub(r"http://purl.oclc.org/ooxml/\1/", text)

    return docs._repacked(package, dict.fromkeys(parts, strict), {})


@pytest.mark.parametrize(
    ("kind", "package"),
    [
        ("docx", lambda: docs.docx_bytes("P", {"S": "CANARY-STRICT words"})),
        ("pptx", lambda: docs.pptx_bytes([("P", "CANARY-STRICT words")])),
        ("xlsx", lambda: docs.xlsx_bytes([["a", "b"], ["CANARY-STRICT", "words"]])),
    ],
)
def test_a_strict_open_xml_package_is_read_as_its_transitional_form(
    tmp_path: Path, kind: str, package: Callable[[], bytes]
) -> None:
    # LibreOffice's strict_ooxml.pptx had failed ("no relationship of type
    # .../officeDocument"), a Strict workbook had fallen back to calamine, and a Strict
    # document's diagrams had not been read.
    plain = package()
    strict = _strict(plain)
    with zipfile.ZipFile(io.BytesIO(strict)) as archive:
        relations = archive.read("_rels/.rels")
    assert b"purl.oclc.org/ooxml/officeDocument/relationships/officeDocument" in relations
    read = parse_file(_file(tmp_path, f"p.{kind}", plain), f"p.{kind}", OPTIONS)
    parsed = parse_file(_file(tmp_path, f"s.{kind}", strict), f"s.{kind}", OPTIONS)
    assert (parsed.text, parsed.parser) == (read.text, read.parser)
    assert "CANARY-STRICT" in parsed.text
    assert split_notes(parsed.warnings) == ([], ["Strict Open XML: read as its transitional form"])
    assert split_notes(read.warnings) == ([], [])
    # A part whose data is damaged (a bad CRC): damaged, not an untyped BadZipFile.
    out = io.BytesIO(strict)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(zipfile.ZipInfo("customXml/item9.xml"), b"<a>CRC-CANARY</a>")
    damaged = out.getvalue().replace(b">CRC-CANARY<", b">CRC-CANARZ<")
    with pytest.raises(CorruptDocumentError, match=r"part 'customXml/item9\.xml' is damaged"):
        parse_file(_file(tmp_path, f"d.{kind}", damaged), f"d.{kind}", OPTIONS)


@pytest.mark.parametrize("missing", [True, False])
def test_an_office_package_missing_linked_parts_or_their_types_is_read(
    tmp_path: Path, missing: bool
) -> None:
    # 11 of LibreOffice's test documents that Word opens had failed "docling could not
    # open this docx" (KeyError): a header, a picture or the numbering linked but not in
    # the package, or a footer or picture given no content type.
    footer = f'<w:ftr xmlns:w="{docs._WML}"><w:p><w:r><w:t>FOOT</w:t></w:r></w:p></w:ftr>'
    footers = (
        '<w:headerReference w:type="default" r:id="rId91"/>'
        * missing
        + '<w:footerReference w:type="default" r:id="rId93"/>'
        '<w:footerReference w:type="first" r:id="rId94"/><w:pgSz'
    )
    # A link out of the package is no missing part.
    external = (
        '<Relationship Id="rId99" TargetMode="External" Target="https://example.com/x" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"/>'
    )
    plain = docs.docx_bytes("P", {"S": "CANARY-LINKED words"})
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        parts = [*archive.namelist(), "word/footer8.xml"]

    def typed(text: str) -> str:
        # As bnc875718.docx: every part typed by name, but one footer of two.
        text = text.replace('<Default Extension="xml" ContentType="application/xml"/>', "")
        footer_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"
        named = "".join(
            f'<Override PartName="/{part}" ContentType="{kind}"/>'
            for part in parts
            for kind in [footer_type if "footer" in part else "application/xml"]
            if part.endswith(".xml")
            and f'PartName="/{part}"' not in text
            and "Content_" not in part
        )
        return text.replace("</Types>", f"{named}</Types>")

    docx = docs._repacked(
        plain,
        {
            "word/document.xml": lambda t: t.replace("<w:pgSz", footers),
            "[Content_Types].xml": typed,
            "_rels/.rels": lambda t: t.replace("</Relationships>", f"{external}</Relationships>"),
        },
        {"word/footer8.xml": footer, "word/footer9.xml": footer},
        relations={
            "word/_rels/document.xml.rels": [
                *[("rId91", "header", "header1.xml"), ("rId92", "image", "media/gone.png")]
                * missing,
                ("rId93", "footer", "footer8.xml"),
                ("rId94", "footer", "footer9.xml"),
            ]
        },
    )
    parsed = parse_file(_file(tmp_path, "l.docx", docx), "l.docx", OPTIONS)
    assert "CANARY-LINKED words" in parsed.text
    assert parsed.warnings == [
        "'word/footer9.xml' has no content type: taken as "
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml",
        *[
            "word/_rels/document.xml.rels links to 'word/header1.xml', which is not in the "
            "package: left out",
            "word/_rels/document.xml.rels links to 'word/media/gone.png', which is not in the "
            "package: left out",
        ]
        * missing,
    ]


def test_a_slides_shape_in_alternate_content_is_read_once(tmp_path: Path) -> None:
    # PowerPoint wraps a shape holding an equation (or another newer feature) in
    # mc:AlternateContent, a picture of it often the fallback: python-pptx reads neither,
    # so its text was lost. The equation itself (a14:m) is docling's to read, as LaTeX,
    # its letters as letters: PowerPoint writes them as mathematical italics, whose LaTeX
    # lost its braces ("\mathit{E=\mathit{m\mathit{c^{2}").
    def box(text: str, number: int, more: str = "") -> str:
        return (
            f'<p:sp><p:nvSpPr><p:cNvPr id="{number}" name="TextBox {number}"/><p:cNvSpPr '
            'txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr><a:xfrm><a:off x="0" y="9000000"/>'
            '<a:ext cx="100" cy="100"/></a:xfrm></p:spPr><p:txBody><a:bodyPr/><a:p><a:r>'
            f"<a:t>{text}</a:t></a:r></a:p>{more}</p:txBody></p:sp>"
        )

    equation = (
        '<a:p><a14:m><m:oMathPara xmlns:m="http://schemas.openxmlformats.org/officeDocument/'
        '2006/math"><m:oMath><m:r><m:t>\U0001d438=\U0001d45a</m:t></m:r><m:sSup><m:e><m:r>'
        "<m:t>\U0001d450</m:t></m:r>"
        "</m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath></m:oMathPara>"
        "</a14:m></a:p>"
    )
    alternative = (
        '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-'
        'compatibility/2006"><mc:Choice xmlns:a14="http://schemas.microsoft.com/office/'
        f'drawing/2010/main" Requires="a14">{box("CANARY-CHOICE words", 90, equation)}'
        f"</mc:Choice><mc:Fallback>{box('CANARY-FALLBACK', 91)}</mc:Fallback>"
        "</mc:AlternateContent>"
    )
    deck = docs._repacked(
        docs.pptx_bytes([("Title", "CANARY-BODY")]),
        {"ppt/slides/slide1.xml": lambda t: t.replace("</p:spTree>", alternative + "</p:spTree>")},
        {},
    )
    parsed = parse_file(_file(tmp_path, "a.pptx", deck), "a.pptx", OPTIONS)
    assert parsed.text == "# Title\n\n- CANARY-BODY\n\nCANARY-CHOICE words\n\n$$E=mc^{2}$$"


def test_a_deck_with_a_linked_part_given_no_content_type_is_read(tmp_path: Path) -> None:
    # LibreOffice's bnc591147.pptx: python-pptx's "no content-type for partname
    # '/ppt/media/audio.mp3'" had failed the deck.
    deck = docs._repacked(
        docs.pptx_bytes([("T", "CANARY-AUDIO words")]),
        {},
        {"ppt/media/sound.mp3": b"ID3 sound"},
        relations={"ppt/slides/_rels/slide1.xml.rels": [("rId90", "audio", "../media/sound.mp3")]},
    )
    parsed = parse_file(_file(tmp_path, "a.pptx", deck), "a.pptx", OPTIONS)
    assert "CANARY-AUDIO words" in parsed.text
    assert parsed.warnings == ["'ppt/media/sound.mp3' has no content type: taken as audio/mpeg"]


@pytest.mark.parametrize("encoding", ["UTF-9", "shift_jis"])
def test_an_xml_part_declaring_an_encoding_expat_cannot_use_is_corrupt(
    tmp_path: Path, encoding: str
) -> None:
    # A fuzzed ODG's content.xml declared "UTF-9": it had failed untyped (LookupError;
    # a multi-byte encoding is expat's ValueError).
    def declared(text: str) -> str:
        body = re.sub(r"^<\?xml[^>]*\?>", "", text)
        return f'<?xml version="1.0" encoding="{encoding}"?>{body}'

    # Read as lxml's recovering parser reads it (as UTF-8, or in the encoding named),
    # said.
    odt = docs._repacked(docs.odt_bytes(), {"content.xml": declared}, {})
    parsed = parse_file(_file(tmp_path, "d.odt", odt), "d.odt", OPTIONS)
    plain = parse_file(_file(tmp_path, "p.odt", docs.odt_bytes()), "p.odt", OPTIONS)
    assert parsed.text == plain.text and "CANARY-ODT" in parsed.text
    assert [w.split(" (")[0] for w in parsed.warnings] == ["content.xml is not well-formed XML"]
    # Cut short into nothing to read, or before its body: damaged.
    for end in ("<office:text>", "<office:body>"):
        cut = docs._repacked(
            docs.odt_bytes(), {"content.xml": lambda t, end=end: t[: t.index(end)]}, {}
        )
        with pytest.raises(CorruptDocumentError, match=r"content\.xml is not well-formed .*once"):
            parse_file(_file(tmp_path, "c.odt", cut), "c.odt", OPTIONS)


@pytest.mark.parametrize(("flag", "kind"), [(0x1, "epub"), (0x40, "epub"), (0x40, "docx")])
def test_a_zip_package_with_an_encrypted_part_is_encrypted(
    tmp_path: Path, flag: int, kind: str
) -> None:
    # A part flagged for strong encryption (bit 6; a fuzzed EPUB had it) had failed
    # untyped: "parser failed: NotImplementedError: strong encryption (flag bit 6)".
    package = docs.epub_bytes([("One", "CANARY")]) if kind == "epub" else docs.docx_bytes("T", {})
    part = (
        "word/document.xml"
        if kind == "docx"
        else next(n for n in zipfile.ZipFile(io.BytesIO(package)).namelist() if n.endswith(".opf"))
    )
    flagged = bytearray(package)
    # Its flags in its local header (byte 6; its name at 30) and its directory entry
    # (byte 8; its name at 46).
    for mark, at, named in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        found = -1
        while (found := package.find(mark, found + 1)) >= 0:
            if package[found + named : found + named + len(part)] == part.encode():
                flagged[found + at] |= flag
    name = f"f.{kind}"
    with pytest.raises(EncryptedDocumentError, match=r"is encrypted \(zip encryption\)"):
        parse_file(_file(tmp_path, name, bytes(flagged)), name, OPTIONS)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("m.odt", lambda: docs.odt_bytes()),
        ("m.odp", lambda: docs.odp_bytes([("Title", "CANARY body", "notes")])),
        ("m.vsdx", lambda: docs.vsdx_bytes([("Page", "CANARY shape", "x")])),
        ("m.epub", lambda: docs.epub_bytes([("One", "CANARY")])),
        ("m.docx", lambda: docs.docx_bytes("T", {"A": "CANARY"})),
    ],
)
def test_a_part_whose_compression_method_is_damaged_is_corrupt(
    tmp_path: Path, name: str, make: Callable[[], bytes]
) -> None:
    # A fuzzed ODT's last part named a method zipfile lacks: it had failed untyped
    # ("parser failed: NotImplementedError: That compression method is not supported").
    package = bytearray(make())
    for mark, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # its header, its entry
        found = package.rfind(mark)
        package[found + at : found + at + 2] = struct.pack("<H", 77)
    with pytest.raises(CorruptDocumentError, match="compression method is not supported"):
        parse_file(_file(tmp_path, name, bytes(package)), name, OPTIONS)


def test_a_broken_or_bombed_xps_fails_typed(tmp_path: Path) -> None:
    package = docs.xps_bytes(_XPS_PAGES)
    broken = docs._repacked(package, {"Documents/1/Pages/1.fpage": lambda t: t[:40]}, {})
    with pytest.raises(CorruptDocumentError, match=r"^b\.xps: "):
        parse_file(_file(tmp_path, "b.xps", broken), "b.xps", OPTIONS)
    bomb = docs._repacked(package, {}, {"Resources/pad.bin": "0" * 2_000_000})
    with pytest.raises(ZipBombError):
        parse_file(_file(tmp_path, "z.xps", bomb), "z.xps", OPTIONS)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("cut.docx", lambda: docs.docx_bytes("T", {"A": "B"})),
        ("cut.xlsx", lambda: docs.xlsx_bytes([["a", "b"]])),
        ("cut.odt", docs.odt_bytes),
        ("cut.xps", lambda: docs.xps_bytes(_XPS_PAGES)),
    ],
)
def test_a_zip_based_document_cut_short_is_corrupt(
    tmp_path: Path, name: str, make: Callable[[], bytes]
) -> None:
    """Its zip directory lost with its end, it had been "a zip or tar archive, not a
    .docx file", as if someone had named an archive .docx."""
    data = make()
    path = _file(tmp_path, name, data[: len(data) // 2])
    with pytest.raises(CorruptDocumentError, match=r"zip directory cannot be read \(truncated\?\)"):
        parse_file(path, name, OPTIONS)


def test_an_attachment_that_is_no_stream_is_a_warning(tmp_path: Path) -> None:
    """Found by mutating files at random: a file attachment pointing to an object that is
    no stream had escaped as a TypeError."""
    import pymupdf

    doc = pymupdf.open(
        "pdf", docs.pdf_with_attachments(docs.pdf_bytes(["CANARY-PAGE"]), {}, {"e.txt": b"x"})
    )
    annot = doc[0].first_annot
    doc.xref_set_key(annot.xref, "FS/EF/F", f"{doc.page_xref(0)} 0 R")  # the page
    assert doc.xref_get_key(annot.xref, "FS/EF/F") == ("xref", f"{doc.page_xref(0)} 0 R")
    path = _file(tmp_path, "p.pdf", doc.tobytes())
    parsed = parse_file(path, "p.pdf", OPTIONS)
    assert "CANARY-PAGE" in parsed.text
    assert parsed.warnings == ["attachment e.txt: could not be extracted (not a stream)"]


def test_xml_records_become_a_block_each(tmp_path: Path) -> None:
    from rag_ingest.chunking import chunk_document
    from rag_ingest.settings import ChunkSettings, FileConfig

    items = "".join(
        f"<item><title>Post {i}</title><dc:creator>ann</dc:creator><category>a</category>"
        f"<category>b</category><description>&lt;p&gt;CANARY-{i} body&lt;/p&gt;</description>"
        "</item>\n"
        for i in range(40)
    )
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Dev blog</title>\n'
        f"{items}</channel></rss>\n"
    )
    parsed = parse_file(_file(tmp_path, "feed.rss", feed.encode()), "feed.rss", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("xml", "xml-records[utf-8]")
    # What is beside the records, on the way down to them too, first; then each item
    # under its heading, its HTML unescaped, a repeated element's values on one line.
    assert parsed.text.startswith(
        "version: 2.0\ntitle: Dev blog\n\n## item[0]\ntitle: Post 0\ncreator: ann\n"
        "category: a, b\ndescription: <p>CANARY-0 body</p>\n\n## item[1]\n"
    )
    plan = chunk_document(parsed, ChunkSettings(), {})
    found = [int(n) for c in plan.chunks for n in re.findall(r"CANARY-(\d+) ", c.text)]
    assert found == list(range(40)) and plan.chunks[-1].metadata["heading_path"].startswith("item[")
    # Chunked as JSON's records are, unless an entry of XML's own says otherwise.
    assert {c.metadata["chunk_strategy"] for c in plan.chunks} == {"markdown"}
    defaults = ChunkSettings().file_configs
    own = ChunkSettings(file_configs={**defaults, "xml": FileConfig(strategy="prose")})
    assert {c.metadata["chunk_strategy"] for c in chunk_document(parsed, own, {}).chunks} == {
        "prose"
    }
    # A data dump's rows, their values in attributes.
    rows = "".join(f'  <row Id="{i}" Body="&lt;b&gt;q{i}&lt;/b&gt;" />\n' for i in range(5))
    parsed = parse_file(
        _file(tmp_path, "Posts.xml", f"<posts>\n{rows}</posts>".encode()), "Posts.xml", OPTIONS
    )
    assert parsed.text.split("\n\n")[:2] == [
        "## row[0]\nId: 0\nBody: <b>q0</b>",
        "## row[1]\nId: 1\nBody: <b>q1</b>",
    ]
    # Not records, read as text as before: a config of unlike elements, prose with
    # inline markup (its words between elements), explaining comments, a broken file,
    # one item, and an entity bomb (expat refuses it).
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><l><i n="1">&i;</i><i n="2">&i;</i></l>'
    )
    for text in (
        "<project><groupId>g</groupId><artifactId>a</artifactId><version>1</version></project>",
        "<doc><p>Some <b>bold</b> words and <i>more</i> words.</p><p>Two <b>b</b> c.</p></doc>",
        "<list><!-- Each entry below is read by the loader at start; keep them sorted -->"
        '<e n="1"/><e n="2"/></list>',
        "<project><deps>"
        + "".join(f'<dep group="org.example" name="lib{i}"/>' for i in range(4))
        + "</deps><about><text>"
        + "A library of many parts. " * 4
        + "</text><url>https://example.org</url></about></project>",
        "<list><e>1</e><e>2</e>",
        "<feed><entry><title>only one</title></entry></feed>",
        bomb,
        # An external entity is not fetched: the file is refused as XML, read as text.
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><i a="1">&x;</i><i a="2"/></r>',
        # Nested past any record (it had failed untyped: "parser failed: RecursionError").
        "<r>" + "<a>" * 5000 + "x" + "</a>" * 5000 + "</r>",
    ):
        parsed = parse_file(_file(tmp_path, "c.xml", text.encode()), "c.xml", OPTIONS)
        assert (parsed.file_type, parsed.language) == ("text", "xml"), text[:40]
        assert "root:" not in parsed.text


def test_a_large_xml_dump_s_records_are_read_as_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest.parsers import records

    monkeypatch.setattr(records, "_MAX_XML", 1000)  # past it: read as a stream
    pages = "".join(
        f"<page><title>Page {i}</title><revision><text>CANARY-{i} body &amp; more</text>"
        "</revision></page>\n"
        for i in range(50)
    )
    dump = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
        f"<siteinfo><sitename>Wiki</sitename></siteinfo>\n{pages}</mediawiki>\n"
    )
    parsed = parse_file(_file(tmp_path, "dump.xml", dump.encode()), "dump.xml", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("xml", "xml-records[utf-8]")
    blocks = parsed.text.split("\n\n")
    assert blocks[:3] == [
        "version: 0.10\nsitename: Wiki",
        "## page[0]\ntitle: Page 0\nrevision.text: CANARY-0 body & more",
        "## page[1]\ntitle: Page 1\nrevision.text: CANARY-1 body & more",
    ]
    assert len(blocks) == 51
    # As for a smaller file: prose, comments and broken XML stay text.
    for text in (
        "<doc>" + "<p>Some <b>bold</b> words.</p>" * 60 + "</doc>",
        "<list><!-- " + "why " * 100 + "-->" + '<e n="1"/>' * 100 + "</list>",
        "<list>" + '<e n="1"/>' * 200,
        "<r>" + '<e n="1"/>' * 60 + "<notes>" + "word " * 100 + "</notes></r>",  # not most
        "<list>" + ("<e>" + "<a>" * 5000 + "</a>" * 5000 + "</e>") * 2 + "</list>",  # too deep
    ):
        parsed = parse_file(_file(tmp_path, "big.xml", text.encode()), "big.xml", OPTIONS)
        assert (parsed.file_type, parsed.language) == ("text", "xml"), text[:30]


def test_a_parquet_file_is_a_table_of_its_rows_under_its_column_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    import pyarrow
    import pyarrow.parquet as parquet

    from rag_ingest.chunking import chunk_document, join_plans, line_runs
    from rag_ingest.errors import CorruptDocumentError, MissingExtraError
    from rag_ingest.parsers.data import read_rows, table_plan
    from rag_ingest.settings import ChunkSettings, FileConfig

    table = pyarrow.table(
        {
            "id": list(range(300)),
            # Semicolons in every title: sniffed, they could pass for the delimiter.
            "title": [f"Doc {i}; part; two" for i in range(300)],
            "body": [f'CANARY-{i} says "hi", then\na new line' for i in range(300)],
            "tags": [["a", "b"]] * 300,
            "at": [datetime.datetime(2026, 1, 2, 3, 4)] * 300,
            "blob": [b"\x00\x01\x02"] * 300,
            "score": [None if i % 7 == 0 else i / 4 for i in range(300)],
        }
    )
    path = tmp_path / "shard.parquet"
    parquet.write_table(table, path, row_group_size=64)
    header = ["id", "title", "body", "tags", "at", "blob", "score"]
    for name in ("shard.parquet", "shard-00001"):  # by its name, or by its bytes
        unnamed = tmp_path / name
        unnamed.write_bytes(path.read_bytes())
        parsed = parse_file(str(unnamed), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("csv", "parquet")
    first = next(csv.reader(io.StringIO(parsed.text.split("\n1,")[0])))
    assert first == header
    rows = list(csv.reader(io.StringIO(parsed.text)))[1:]
    assert rows[0] == [
        "0", "Doc 0; part; two", 'CANARY-0 says "hi", then\na new line', '["a", "b"]',
        "2026-01-02T03:04:00", "[binary data, 3 bytes]", "",
    ]  # fmt: skip
    settings = ChunkSettings(
        file_configs={"csv": FileConfig(strategy="table", chunk_tokens=128, overlap_tokens=0)},
        whole_document_tokens=0,
    )

    def records(plan: Any) -> list[int]:
        found = []
        for chunk in plan.chunks:
            head, *got = csv.reader(io.StringIO(chunk.text))
            assert head == header
            found += [int(row[0]) for row in got if row[2].startswith(f"CANARY-{row[0]} ")]
        return found

    assert records(chunk_document(parsed, settings, {})) == list(range(300))
    # In runs, each read with the file's dialect and columns.
    runs = line_runs(parsed, settings, len(parsed.text) // 4 + 1)
    assert len(runs) == 4
    plans = [chunk_document(run, settings, {}) for run, _, _ in runs]
    assert records(join_plans(plans, [(o, n) for _, o, n in runs])) == list(range(300))
    # A long one is read in parts of its rows (parsers.pool): their texts joined are the
    # whole's, the first beginning with the header, the others told it.
    assert table_plan(str(path), "shard.parquet", "parquet", len(parsed.text) * 2) is None
    plan = table_plan(str(path), "shard.parquet", "parquet", len(parsed.text) // 7)
    assert plan is not None and len(plan.parts) > 2
    parts = [read_rows(plan, "shard.parquet", i) for i in range(len(plan.parts))]
    assert "".join(part.text for part in parts) == parsed.text
    assert [p.csv_form and (p.csv_form.header, p.csv_form.body > 0) for p in parts] == [
        (header, True)
    ] + [(header, False)] * (len(parts) - 1)
    # Numbers under columns named by numbers (pandas' default names): the names are the
    # header still, not a first row of data, in one task or in runs.
    numbers = tmp_path / "numbers.parquet"
    parquet.write_table(
        pyarrow.table({"0": list(range(2000)), "1": [i * 2 for i in range(2000)]}), numbers
    )
    parsed = parse_file(str(numbers), "numbers.parquet", OPTIONS)
    for chunks in (
        chunk_document(parsed, settings, {}).chunks,
        [c for run, _, _ in line_runs(parsed, settings, len(parsed.text) // 3 + 1)
         for c in chunk_document(run, settings, {}).chunks],
    ):  # fmt: skip
        assert len(chunks) > 3 and all(c.text.startswith("0,1\n") for c in chunks)
    # Broken, or without pyarrow: said so.
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(CorruptDocumentError, match="not a readable Parquet file"):
        parse_file(str(broken), "broken.parquet", OPTIONS)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match=r"rag-ingest\[data\]"):
        parse_file(str(path), "shard.parquet", OPTIONS)


def test_orc_files_are_tables_as_parquet_is(tmp_path: Path) -> None:
    import csv

    import pyarrow
    import pyarrow.orc as orc

    from rag_ingest.errors import CorruptDocumentError
    from rag_ingest.parsers.data import read_rows, table_plan

    table = pyarrow.table(
        {"id": list(range(3000)), "text": [f'CANARY-{i}, "quoted"; x' for i in range(3000)]}
    )
    orc.write_table(table, tmp_path / "t.orc", stripe_size=4096)
    assert orc.ORCFile(tmp_path / "t.orc").nstripes > 2
    (tmp_path / "unnamed").write_bytes((tmp_path / "t.orc").read_bytes())
    for name in ("t.orc", "unnamed"):
        parsed = parse_file(str(tmp_path / name), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("csv", "orc"), name
        rows = list(csv.reader(io.StringIO(parsed.text)))
        assert rows == [["id", "text"]] + [
            [str(i), f'CANARY-{i}, "quoted"; x'] for i in range(3000)
        ]
    plan = table_plan(str(tmp_path / "t.orc"), "t.orc", "orc", len(parsed.text) // 5)
    assert plan is not None and len(plan.parts) > 3
    texts = [read_rows(plan, "t.orc", i).text for i in range(len(plan.parts))]
    assert "".join(texts) == parsed.text
    # A text that begins as an ORC file does is still text; a damaged ORC file is said so.
    (tmp_path / "notes").write_bytes(b"ORCHESTRA rehearsal notes, CANARY-ORC\n")
    assert parse_file(str(tmp_path / "notes"), "notes", OPTIONS).file_type == "text"
    broken = tmp_path / "broken.orc"
    broken.write_bytes((tmp_path / "t.orc").read_bytes()[:-40])
    with pytest.raises(CorruptDocumentError, match="not a readable ORC file"):
        parse_file(str(broken), "broken.orc", OPTIONS)


def test_avro_files_are_tables_of_their_records_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kafka Connect sink's Avro objects were refused as binary data."""
    import csv

    import fastavro

    from rag_ingest.errors import CorruptDocumentError, MissingExtraError
    from rag_ingest.parsers.data import read_rows, table_plan

    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Event",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "text", "type": "string"},
                {"name": "user", "type": {"type": "map", "values": "string"}},
                {
                    "name": "at",
                    "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
                },
                {"name": "blob", "type": "bytes"},
            ],
        }
    )
    when = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC)
    records = [
        {"id": i, "text": f'CANARY-{i}, "quoted"; x', "user": {"name": "ann"},
         "at": when if i % 2 else None, "blob": b"\x00\x01"}
        for i in range(200)
    ]  # fmt: skip
    whole = None
    for codec in ("null", "deflate", "snappy"):
        path = tmp_path / f"{codec}.avro"
        with path.open("wb") as f:
            fastavro.writer(f, schema, records, codec=codec, sync_interval=512)
        for name in (path.name, "unnamed"):  # by its name, or by its bytes
            (tmp_path / name).write_bytes(path.read_bytes())
            parsed = parse_file(str(tmp_path / name), name, OPTIONS)
            assert (parsed.file_type, parsed.parser) == ("csv", "avro"), (codec, name)
            rows = list(csv.reader(io.StringIO(parsed.text)))
            assert rows[0] == ["id", "text", "user", "at", "blob"]
            assert rows[1:3] == [
                ["0", 'CANARY-0, "quoted"; x', '{"name": "ann"}', "", "[binary data, 2 bytes]"],
                ["1", 'CANARY-1, "quoted"; x', '{"name": "ann"}', "2026-01-02T03:04:00+00:00",
                 "[binary data, 2 bytes]"],
            ]  # fmt: skip
            assert len(rows) == 201 and parsed.csv_form is not None
            whole = whole or parsed.text
            assert parsed.text == whole
    # In parts of its rows, read block by block: their texts joined are the whole's.
    path = tmp_path / "deflate.avro"
    plan = table_plan(str(path), path.name, "avro", len(whole) // 5)
    assert plan is not None and len(plan.parts) > 3
    assert "".join(read_rows(plan, path.name, i).text for i in range(len(plan.parts))) == whole
    # Records of another type: one column.
    with (tmp_path / "lines.avro").open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema("string"), ["CANARY-A", "CANARY-B"])
    assert parse_file(str(tmp_path / "lines.avro"), "lines.avro", OPTIONS).text == (
        "value\nCANARY-A\nCANARY-B\n"
    )
    # A record of one field named so is still a record.
    one = {"type": "record", "name": "R", "fields": [{"name": "value", "type": "string"}]}
    with (tmp_path / "one.avro").open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema(one), [{"value": "CANARY-A"}, {"value": "B"}])
    assert parse_file(str(tmp_path / "one.avro"), "one.avro", OPTIONS).text == (
        "value\nCANARY-A\nB\n"
    )
    # Damaged, or without fastavro: said so.
    data = path.read_bytes()
    damaged = [data[:20], data[: len(data) // 2], data[:-5], b"Obj\x01" + bytes(range(256))]
    damaged += [data[:at] + bytes(8) + data[at + 8 :] for at in (405, 1532)]  # bad blocks
    for broken in damaged:
        (tmp_path / "broken.avro").write_bytes(broken)
        with pytest.raises(CorruptDocumentError, match="not a readable Avro file"):
            parse_file(str(tmp_path / "broken.avro"), "broken.avro", OPTIONS)
    monkeypatch.setitem(sys.modules, "fastavro", None)
    with pytest.raises(MissingExtraError, match=r"rag-ingest\[data\]"):
        parse_file(str(path), path.name, OPTIONS)


def test_arrow_and_feather_files_are_tables_as_parquet_is(tmp_path: Path) -> None:
    import csv

    import pyarrow
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    from rag_ingest.errors import CorruptDocumentError

    table = pyarrow.table(
        {"id": list(range(50)), "text": [f'CANARY-{i}, "quoted"; x' for i in range(50)]}
    )
    feather.write_feather(table, tmp_path / "a.feather")
    with ipc.new_file(tmp_path / "file.arrow", table.schema) as writer:
        writer.write_table(table, max_chunksize=16)
    # A dataset's save_to_disk: the stream format, no mark but its name.
    with ipc.new_stream(tmp_path / "data-00000-of-00001.arrow", table.schema) as writer:
        writer.write_table(table, max_chunksize=16)
    (tmp_path / "unnamed").write_bytes((tmp_path / "a.feather").read_bytes())
    for name in ("a.feather", "file.arrow", "data-00000-of-00001.arrow", "unnamed"):
        parsed = parse_file(str(tmp_path / name), name, OPTIONS)
        assert (parsed.file_type, parsed.parser) == ("csv", "arrow"), name
        rows = list(csv.reader(io.StringIO(parsed.text)))
        assert rows == [["id", "text"]] + [[str(i), f'CANARY-{i}, "quoted"; x'] for i in range(50)]
        assert parsed.csv_form is not None and parsed.csv_form.header == ["id", "text"]
    broken = tmp_path / "broken.arrow"
    broken.write_bytes(b"ARROW1\x00\x00" + bytes(range(256)))
    with pytest.raises(CorruptDocumentError, match="not a readable Arrow file"):
        parse_file(str(broken), "broken.arrow", OPTIONS)


def test_how_a_file_was_read_is_a_note_apart_from_its_warnings(tmp_path: Path) -> None:
    """/usr/share/doc here: 1,837 of 4,073 sources came "with warnings", and the ten the
    summary showed were all "decompressed from gzip" or "unknown extension": how each
    was read, nothing wrong with it, burying the one whose chunks had a password masked."""
    log = b"2026-12-02T10:00:00 app started CANARY-LOG\n"
    mail = b"From: Ann <ann@example.org>\nTo: team@example.org\nSubject: CANARY\n\nHello.\n"
    made = {
        "changelog.gz": gzip.compress(b"Version 1.2 fixed the CANARY.\n"),
        "Apache-2.0": b"Apache License, Version 2.0, CANARY\n",
        "adduser.local": b"#!/bin/sh\n# CANARY: run after adduser.\n",
        "part-00000": b'{"id": 1, "event": "CANARY"}\n{"id": 2, "event": "CANARY"}\n',
        "1700000000.M1P2.host:2,S": mail,
        "app.log.gz": gzip.compress(log + bytes(4096) + log),
        "report.pdf": b"<!DOCTYPE html><html><body><p>CANARY login page</p></body></html>",
        "ru.msg": b'namespace eval ::tcl::clock {\n    ::msgcat::mcset ru CANARY "%d.%m.%Y"\n}\n',
    }
    told = {}
    for name, data in made.items():
        told[name] = split_notes(parse_file(_file(tmp_path, name, data), name, OPTIONS).warnings)
    assert told == {
        "changelog.gz": ([], ["decompressed from gzip"]),
        "Apache-2.0": ([], ["unknown extension .0; treated as text"]),
        "adduser.local": ([], ["unknown extension .local; treated as text"]),
        "part-00000": ([], ["unknown extension (none); JSON records"]),
        "1700000000.M1P2.host:2,S": (
            [],
            ["unknown extension .host:2,s; an e-mail message by its headers"],
        ),
        # Something wrong, and how it was read.
        "app.log.gz": (["4,096 NUL bytes of padding left out"], ["decompressed from gzip"]),
        # A name that lies is worth a look: a "report" that is a saved login page.
        "report.pdf": (["named .pdf but is html"], []),
        # Tcl's message catalogs: a .msg of text, read as a name unknown is.
        "ru.msg": ([], ["named .msg but not an Outlook message: read as text"]),
    }
    # Under an archive's or a mail's file name, as their warnings carry them; the words
    # within a longer warning are not a note.
    assert split_notes(
        [
            "logs/app.log.gz: decompressed from gzip",
            "message 2: Re: logs/old log: unknown extension .d 2; treated as text",
            "logs/x.gz: decompressed from gzip, then failed: EOFError",
        ]
    ) == (
        ["logs/x.gz: decompressed from gzip, then failed: EOFError"],
        [
            "logs/app.log.gz: decompressed from gzip",
            "message 2: Re: logs/old log: unknown extension .d 2; treated as text",
        ],
    )


_MAN_PAGE = r""".\" Generated by help2man; a comment.
.de Sp
.if t .sp .5v
..
.ig \" -*- nroff -*-
Copyright text that is not shown.
..
.am URL
.  ad l
.  .
.if \n[.g] \{\
.  LINKSTYLE blue R < >
.\}
.TH LS "1" "September 2022" "GNU coreutils 9.1" "User Commands"
.SH NAME
ls \- list directory contents
.SH SYNOPSIS
.B ls
[\fI\,OPTION\/\fR]... [\fI\,FILE\/\fR]...
.SH DESCRIPTION
.PP
List information about the FILEs \(em CANARY-MAN sorted by name.
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries starting with .
.TP
.BR \-l " (ell)"
use a long listing format
.SS "Exit status:"
.nf
  0  if OK,
  2  if serious trouble.
.fi
.SH "SEE ALSO"
.BR dir (1),
.BR vdir (1)
"""

_MDOC_PAGE = r""".\" $OpenBSD: example.1 $
.Dd $Mdocdate: November 28 2022 $
.Dt SSH 1
.Os
.Sh NAME
.Nm ssh
.Nd OpenSSH remote login client
.Sh SYNOPSIS
.Nm ssh
.Op Fl 46Aa
.Op Fl B Ar bind_interface
.Sh DESCRIPTION
.Nm
connects to the given
.Ar destination ,
as
.Xr ssh_config 5
says, CANARY-MDOC.
"""


def test_a_manual_page_is_its_text_under_its_sections(tmp_path: Path) -> None:
    """/usr/share/man's pages (roff: ls.1.gz, OpenSSH's mdoc ssh.1.gz) were read as text,
    each chunk its macros and escapes: ``.TH``, ``.SH``, ``\\fB\\-a\\fR``."""
    page = gzip.compress(_MAN_PAGE.encode())
    parsed = parse_file(_file(tmp_path, "ls.1.gz", page), "ls.1.gz", OPTIONS)
    assert (parsed.file_type, parsed.parser) == ("man", "roff[utf-8]")
    assert parsed.text == (
        "# LS(1)\n\n## NAME\n\nls - list directory contents\n\n## SYNOPSIS\n\nls\n"
        "[OPTION]... [FILE]...\n\n## DESCRIPTION\n\n"
        "List information about the FILEs \u2014 CANARY-MAN sorted by name.\n\n"
        "**-a, --all**\n\ndo not ignore entries starting with .\n\n**-l (ell)**\n\n"
        "use a long listing format\n\n### Exit status:\n\n  0  if OK,\n  2  if serious "
        "trouble.\n\n## SEE ALSO\n\ndir(1),\nvdir(1)"
    )
    assert parsed.warnings == ["decompressed from gzip"]  # a note of how it was read
    plan = chunk_document(parsed, ChunkSettings(chunk_tokens=48, overlap_tokens=0), {})
    paths = {c.metadata.get("heading_path") for c in plan.chunks if "CANARY-MAN" in c.text}
    assert paths == {"LS(1) > DESCRIPTION"}
    parsed = parse_file(_file(tmp_path, "ssh.1", _MDOC_PAGE.encode()), "ssh.1", OPTIONS)
    assert parsed.file_type == "man" and parsed.text == (
        "# ssh(1)\n\n## NAME\n\nssh\n\u2014 OpenSSH remote login client\n\n## SYNOPSIS\n\n"
        "ssh\n[-46Aa]\n[-B bind_interface]\n\n## DESCRIPTION\n\nssh\nconnects to the given\n"
        "destination,\nas\nssh_config(5)\nsays, CANARY-MDOC."
    )
    # groff's synopsis macros, and mdoc's function type: their words kept.
    synopsis = b".TH TAR 1\n.SH SYNOPSIS\n.SY tar\n.OP -c\n.YS\n.SH LIBRARY\n.Ft int\n"
    parsed = parse_file(_file(tmp_path, "tar.1", synopsis), "tar.1", OPTIONS)
    assert parsed.text == "# TAR(1)\n\n## SYNOPSIS\n\ntar\n-c\n\n## LIBRARY\n\nint"
    # A tbl table (ascii(7) has one): a Markdown table, not its format line over its rows.
    table = (
        b".TH T 7\n.SH TABLE\n.TS\ntab(:);\nl l.\nName:Meaning\n_\na|b:T{\na long\n"
        b"cell\nT}\nx:y\n.TE\nafter\n"
    )
    parsed = parse_file(_file(tmp_path, "t.7", table), "t.7", OPTIONS)
    assert parsed.text == (
        "# T(7)\n\n## TABLE\n\n| Name | Meaning |\n| --- | --- |\n| a\\|b | a long cell |\n"
        "| x | y |\n\nafter"
    )
    # A page that only points to another (a link among the pages): nothing to index.
    link = _file(tmp_path, "init.1", b".so man1/systemd.1\n")
    with pytest.raises(BlankDocumentError, match=r"only points to man1/systemd\.1"):
        parse_file(link, "init.1", OPTIONS)
    # A rotated log is not a page, nor text that merely opens with a dot.
    for name, data in (("app.log.1", b"2026-12-04 started\n"), ("notes", b".hidden files\n")):
        assert parse_file(_file(tmp_path, name, data), name, OPTIONS).file_type == "text"


def test_a_source_map_and_minified_code_are_no_text_to_index(tmp_path: Path) -> None:
    """Read as text, the source maps of a node_modules of eight packages were 26% of its
    chunks and 39% of its tokens: VLQ mappings, and the sources beside them again."""
    source_map = b'{"version":3,"file":"app.min.js","sources":["app.js"],"mappings":"AAAA,SAASA"}'
    for name in ("app.min.js.map", "style.css.map", "index.d.ts.map", "app.js.map.gz"):
        assert no_text(name) == "a source map (the code it maps is read on its own) (.map)"
    # Minified code, by its name, likewise; its source is read.
    for name in ("jquery.min.js", "bootstrap-min.css", "vendor/chart.umd.min.mjs"):
        assert no_text(name).startswith("minified code")  # type: ignore[union-attr]
    assert no_text("jquery.js") is None and no_text("admin.js") is None
    with pytest.raises(NoTextFormatError, match="a source map"):
        parse_file(_file(tmp_path, "bundle.map", source_map), "bundle.map", OPTIONS)
    # Another .map (MapServer's, a linker's) is read as it was.
    mapfile = b"MAP\n  NAME CANARY-MAPSERVER\n  EXTENT -180 -90 180 90\nEND\n"
    assert no_text("world.map") is None
    parsed = parse_file(_file(tmp_path, "world.map", mapfile), "world.map", OPTIONS)
    assert "CANARY-MAPSERVER" in parsed.text
