"""Scanned pages and image files read by OCR (RapidOCR, the 'ocr' extra)."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag_ingest import ocr
from rag_ingest.chunking import chunk_document
from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    MissingExtraError,
    NoTextFormatError,
)
from rag_ingest.ocr import TextBox, layout
from rag_ingest.parsers import parse_file
from rag_ingest.parsers.base import UNREAD_SCANS, ParseOptions, Segment, ocr_options
from rag_ingest.parsers.flat import packaged
from rag_ingest.parsers.sniff import no_text
from rag_ingest.settings import ChunkSettings, ParseSettings
from tests import docs

OCR = ParseOptions.of(ParseSettings(ocr="on"))
NO_OCR = ParseOptions.of(ParseSettings(ocr="off"))


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _words(text: str) -> list[str]:
    return text.split()


def _rendered(lines: list[str], *, step: float = 16, turns: int = 0) -> Any:
    """``lines`` of 10 pt text, ``step`` points apart, rendered at 150 dpi as an RGB
    array, turned ``turns`` quarter turns (as ``numpy.rot90``)."""
    import numpy as np
    import pymupdf

    page = pymupdf.open().new_page()
    for i, line in enumerate(lines):
        page.insert_text((60, 72 + step * i), line, fontsize=10)
    pix = page.get_pixmap(dpi=150)
    upright = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    return np.ascontiguousarray(np.rot90(upright, turns))


def _counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The recogniser's passes from now on, each as the shape of the image it read."""
    reads: list[Any] = []
    read = ocr._read

    def counted(pixels: Any, threads: int) -> tuple[list[TextBox], float]:
        reads.append(pixels.shape)
        return read(pixels, threads)

    monkeypatch.setattr(ocr, "_read", counted)
    return reads


def test_a_scanned_pdf_is_read_by_ocr_and_its_chunks_say_so(tmp_path: Path) -> None:
    pages = [
        "Quarterly report\nRevenue grew by 12 percent in the third quarter. CANARY-SCAN-ONE",
        "Customers asked for faster ingestion of scanned invoices. CANARY-SCAN-TWO",
    ]
    path = _file(tmp_path, "scan.pdf", docs.scanned_pdf(pages))
    parsed = parse_file(path, "scan.pdf", OCR)
    assert parsed.parser.endswith("+ocr")
    assert parsed.warnings == ["2 scanned page(s) read by OCR: 1-2"]
    assert [(s.page, s.ocr) for s in parsed.segments] == [(1, True), (2, True)]
    for page, segment in zip(pages, parsed.segments, strict=True):
        assert _words(segment.text) == _words(page)  # every word, spaces and all
    plan = chunk_document(parsed, ChunkSettings(), {})
    assert plan.chunks and all(c.metadata["ocr"] is True for c in plan.chunks)

    # Without OCR the scan has no text, and the error says how to read it.
    with pytest.raises(EmptyDocumentError, match=r"rag-ingest\[ocr\]"):
        parse_file(path, "scan.pdf", NO_OCR)


def test_layout_mode_leaves_scans_to_our_ocr_and_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "scan.pdf", docs.scanned_pdf(["Layout scan CANARY-LAYOUT here."]))
    parsed = parse_file(path, "scan.pdf", ParseOptions.of(ParseSettings(pdf_mode="layout")))
    assert parsed.parser == "pymupdf4llm-layout+ocr" and parsed.segments[0].ocr
    assert parsed.text == "Layout scan CANARY-LAYOUT here."
    out, err = capfd.readouterr()
    assert "OCR" not in out + err, out + err


def test_only_scanned_pages_are_read_and_a_stamp_does_not_hide_a_scan(tmp_path: Path) -> None:
    import pymupdf

    scan = pymupdf.open("pdf", docs.scanned_pdf(["Scanned annex CANARY-ANNEX signed by both."]))
    doc = pymupdf.open("pdf", docs.pdf_bytes(["Typed cover page CANARY-COVER with its own text."]))
    doc.insert_pdf(scan)
    parsed = parse_file(_file(tmp_path, "mixed.pdf", doc.tobytes()), "mixed.pdf", OCR)
    assert [(s.page, s.ocr) for s in parsed.segments] == [(1, False), (2, True)]
    assert parsed.warnings == ["1 scanned page(s) read by OCR: 2"]
    assert "CANARY-ANNEX signed by both." in parsed.segments[1].text
    small = ChunkSettings(
        whole_document_tokens=0, chunk_tokens=16, overlap_tokens=0, min_chunk_tokens=0
    )
    plan = chunk_document(parsed, small, {})
    cover = [c for c in plan.chunks if "CANARY-COVER" in c.text]
    assert cover and "ocr" not in cover[0].metadata

    # Without OCR the cover is read and the scanned page left unread is said, not lost
    # in silence (the pipeline reads the document again once OCR is on).
    parsed = parse_file(str(tmp_path / "mixed.pdf"), "mixed.pdf", NO_OCR)
    assert [s.page for s in parsed.segments] == [1] and not parsed.scans
    assert parsed.warnings == [f"1 scanned page(s) (2) {UNREAD_SCANS}"]

    # A scanner's page stamp is text, but too little to be the page's.
    stamped = docs.scanned_pdf(["Minutes of the meeting CANARY-STAMPED"], stamp="Exhibit A page")
    parsed = parse_file(_file(tmp_path, "stamped.pdf", stamped), "stamped.pdf", OCR)
    assert parsed.segments[0].ocr and "CANARY-STAMPED" in parsed.segments[0].text


def test_a_page_of_unmapped_glyphs_is_read_from_its_image(tmp_path: Path) -> None:
    import pymupdf

    from rag_ingest.parsers.pdf import _scanned

    page = pymupdf.open("pdf", docs.pdf_bytes(["Plain text page with enough letters. " * 5]))[0]
    assert not _scanned(page, page.get_text())
    # A font without a ToUnicode map extracts as U+FFFD: the page's text says nothing.
    assert _scanned(page, "\ufffd" * 200 + " 12 ")
    assert not _scanned(page, "tiny")  # little text, but no image: nothing to read


def test_a_page_of_text_drawn_as_outlines_is_read_by_ocr(tmp_path: Path) -> None:
    """A poster's or an advert's text converted to outlines is paths with no font: it
    had failed as having no text and no scanned page (ocrmypdf's vector.pdf)."""
    lines = "Spring poster CANARY-OUTLINE\nThe open day starts at noon in the main hall."
    path = _file(tmp_path, "poster.pdf", docs.outlined_pdf([lines], footer="Page 1"))
    parsed = parse_file(path, "poster.pdf", OCR)
    assert parsed.warnings == ["1 scanned page(s) read by OCR: 1"]
    assert parsed.segments[0].ocr
    assert _words(parsed.text) == [*_words(lines), "Page", "1"]
    # Without OCR the page number alone is read, and the page left unread is said.
    parsed = parse_file(path, "poster.pdf", NO_OCR)
    assert parsed.text.strip() == "Page 1"
    assert parsed.warnings == [f"1 scanned page(s) (1) {UNREAD_SCANS}"]


def test_only_many_glyph_shaped_paths_on_a_page_of_little_text_are_outlined_text() -> None:
    import pymupdf

    from rag_ingest.parsers.pdf import _outlined

    drawn = pymupdf.open("pdf", docs.outlined_pdf(["Drawn CANARY letters here"]))
    page = drawn[0]  # the document held: a page outliving it reads nothing
    glyphs = len(page.get_cdrawings())
    assert 20 <= glyphs < 40
    assert _outlined(page, found=0)
    # Beside 10 letters of the page's own, these few may be a chart's markers.
    assert not _outlined(page, found=10)
    few = pymupdf.open("pdf", docs.outlined_pdf(["Drawn"]))
    assert not _outlined(few[0], found=0)

    class Undrawable:
        rect = page.rect

        def get_bboxlog(self) -> list[Any]:
            raise RuntimeError("code=2: cannot draw")

    assert not _outlined(Undrawable(), found=0)
    # Boxes are not glyphs, however many: a form's, a barcode's bars.
    doc = pymupdf.open()
    boxes = doc.new_page()
    for i in range(60):
        boxes.draw_rect(pymupdf.Rect(72 + i * 7, 100, 76 + i * 7, 130), fill=(0, 0, 0))
    assert not _outlined(boxes, found=0)
    # Glyph-sized: a drawing's tall or wide paths are not text. (A new page makes the
    # document's earlier Page objects void.)
    for tall in (True, False):
        page = doc.new_page()
        for i in range(30):
            at = pymupdf.Rect(72 + i * 15, 100, 82 + i * 15, 300)
            wide = pymupdf.Rect(72, 100 + i * 15, 400, 110 + i * 15)
            page.draw_oval(at if tall else wide, fill=(0.5, 0.5, 0.5))
        assert not _outlined(page, found=0)


def test_a_page_of_unmapped_glyphs_is_left_out_unless_ocr_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest.parsers import pdf

    # Its glyphs' text, U+FFFD and Markdown marks, had been stored as chunks (pdf.js's
    # complex_ttf_font.pdf: "��� **��** ���").
    given = pdf._markdown_pages

    def unmapped(*args: Any) -> list[Segment]:
        glyphs = "\ufffd\ufffd **\ufffd** \ufffd\ufffd 12"
        return [replace(s, text=glyphs) if s.page == 1 else s for s in given(*args)]

    monkeypatch.setattr(pdf, "_markdown_pages", unmapped)
    two = _file(tmp_path, "two.pdf", docs.pdf_bytes(["CANARY-GLYPHS one", "CANARY-READ two"]))
    parsed = parse_file(two, "two.pdf", NO_OCR)
    assert [s.page for s in parsed.segments] == [2] and "\ufffd" not in parsed.text
    assert parsed.warnings == [f"1 scanned page(s) (1) {UNREAD_SCANS}"]
    one = _file(tmp_path, "one.pdf", docs.pdf_bytes(["CANARY-GLYPHS one"]))
    with pytest.raises(EmptyDocumentError, match="not read"):
        parse_file(one, "one.pdf", NO_OCR)
    # With OCR, the page is read from its image.
    parsed = parse_file(one, "one.pdf", OCR)
    assert parsed.segments[0].ocr and "CANARY-GLYPHS" in parsed.text


def test_layout_reads_columns_in_turn_tables_by_rows_and_mends_hyphens() -> None:
    def line(x: float, y: float, text: str, h: float = 20.0, w: float | None = None) -> TextBox:
        return TextBox(x, y, x + (w if w is not None else 10 * len(text)), y + h, text)

    boxes = [
        line(100, 40, "Annual Review", h=34),
        # Two columns of prose, their lines side by side.
        line(50, 120, "left column one is long enough"),
        line(500, 121, "right column one is long too"),
        line(50, 150, "left column two is a bit inges-"),
        line(500, 150, "right column two is also long"),
        line(50, 180, "tion of text CANARY-"),
        line(500, 181, "right column three ends here"),
        line(50, 210, "SCAN goes on"),
        # A table: short cells, read row by row.
        line(50, 300, "Region"),
        line(300, 300, "Cost"),
        line(50, 330, "eu-west"),
        line(300, 331, "4,100"),
    ]
    assert layout(boxes).split("\n\n") == [
        "## Annual Review",
        "left column one is long enough\nleft column two is a bit ingestion\n"
        "of text CANARY-SCAN\ngoes on",
        "right column one is long too\nright column two is also long\nright column three ends here",
        "Region | Cost\neu-west | 4,100",
    ]
    assert layout([]) == ""
    # A heading set large spaces its words by more than twice the body's line: a heading,
    # not two cells (a scanned chapter's "Chapter | III").
    heading = [line(100, 0, "Chapter", h=120, w=380), line(560, 8, "III", h=115, w=120)]
    body = [line(100, 200 + 30 * i, f"body line {i} of the chapter's text") for i in range(4)]
    assert layout(heading + body).startswith("## Chapter III\n\nbody line 0")
    # Large cells far apart are still cells; a large label beside small text too.
    large = [line(50, 0, "Region", h=40, w=120), line(400, 2, "Cost", h=40, w=80)]
    assert layout(large + body).startswith("Region | Cost\n")
    label = [line(50, 0, "BAIONA", h=60, w=200), line(310, 20, "Main roads", h=20)]
    assert layout(label + body).startswith("BAIONA | Main roads\n")
    # Boxes a little taller than the page's lines are body text, measured by the page:
    # by their own height, two columns' lines had been joined into one.
    pair = [line(50, 400, "left words here", h=24, w=150), line(245, 401, "right words", h=24)]
    assert "left words here | right words" in layout(body + pair)


def test_a_rendered_two_column_page_comes_out_in_reading_order() -> None:
    import numpy as np
    import pymupdf

    page = pymupdf.open().new_page()
    left = ["Storage costs fell sharply", "during the year CANARY-LEFT"]
    right = ["Network latency improved", "after the move CANARY-RIGHT"]
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        page.insert_text((50, 110 + 14 * i), a, fontsize=10)
        page.insert_text((310, 110 + 14 * i), b, fontsize=10)
    pix = page.get_pixmap(dpi=150)
    pixels = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    assert layout(ocr.recognize(pixels)).split("\n\n") == ["\n".join(left), "\n".join(right)]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "GIF"])
def test_image_files_are_read_as_scans(tmp_path: Path, fmt: str) -> None:
    name = f"receipt.{fmt.lower()}"
    data = docs.scan_image(["Receipt 0042", "CANARY-IMAGE paid in full by card"], fmt)
    parsed = parse_file(_file(tmp_path, name, data), name, OCR)
    assert parsed.file_type == "image" and parsed.parser == "rapidocr"
    assert parsed.text == "Receipt 0042\nCANARY-IMAGE paid in full by card"
    assert parsed.segments[0].ocr and parsed.segments[0].page is None
    # Named for what it is not, the content routes it.
    if fmt == "PNG":
        assert parse_file(_file(tmp_path, "x.txt", data), "x.txt", OCR).file_type == "image"


def test_a_palette_png_with_transparency_is_read_without_pillow_s_warning(
    tmp_path: Path,
) -> None:
    """An icon-like PNG (a palette, its transparency one byte an entry), as found under
    /usr/share/doc: Pillow's UserWarning came out on the CLI's output, mid-table."""
    from PIL import Image

    data = docs.scan_image(["Receipt 0042", "CANARY-IMAGE paid in full by card"], "PNG")
    with Image.open(io.BytesIO(data)) as scan:
        palette = scan.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=bytes([255] * 14 + [128, 0]))
    with Image.open(io.BytesIO(out.getvalue())) as saved:
        assert saved.mode == "P" and isinstance(saved.info["transparency"], bytes)
    parsed = parse_file(_file(tmp_path, "icon.png", out.getvalue()), "icon.png", OCR)
    assert parsed.text == "Receipt 0042\nCANARY-IMAGE paid in full by card"


def test_a_tiff_s_frames_are_its_pages(tmp_path: Path) -> None:
    data = docs.scan_image(["Fax page CANARY-FAX"], "TIFF", frames=3)
    parsed = parse_file(_file(tmp_path, "fax.tif", data), "fax.tif", OCR)
    assert parsed.pages == 3
    assert [(s.page, s.text) for s in parsed.segments] == [
        (n, f"Fax page CANARY-FAX {n}") for n in (1, 2, 3)
    ]


def test_images_without_text_broken_or_huge_end_in_their_errors(tmp_path: Path) -> None:
    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(photo, "JPEG")
    with pytest.raises(NoTextFormatError, match="OCR found no text"):
        parse_file(_file(tmp_path, "sky.jpg", photo.getvalue()), "sky.jpg", OCR)
    png = docs.scan_image(["Receipt CANARY"])
    with pytest.raises(CorruptDocumentError, match="not a readable image"):
        parse_file(_file(tmp_path, "cut.png", png[: len(png) // 2]), "cut.png", OCR)
    # 20,000 x 20,000 pixels: past Pillow's decompression-bomb limit (a few KB of PNG).
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")
    with pytest.raises(DocumentTooLargeError):
        parse_file(_file(tmp_path, "bomb.png", bomb.getvalue()), "bomb.png", OCR)


def test_a_pdf_with_no_text_says_what_ocr_did(tmp_path: Path) -> None:
    """Sphinx's image-only test PDFs, read by OCR and found blank, had said OCR was off."""
    blank_scans = _file(tmp_path, "blank.pdf", docs.scanned_pdf(["", ""]))
    with pytest.raises(EmptyDocumentError, match=r"OCR found none on its 2 scanned page\(s\)$"):
        parse_file(blank_scans, "blank.pdf", OCR)
    # Stamped, their stamps alone are not their text.
    stamped = _file(tmp_path, "s.pdf", docs.scanned_pdf(["", "", ""], stamp="Exhibit A -"))
    with pytest.raises(EmptyDocumentError, match=r"OCR found none on its 3 scanned page\(s\)$"):
        parse_file(stamped, "s.pdf", OCR)
    with pytest.raises(EmptyDocumentError, match=re.escape(UNREAD_SCANS)):
        parse_file(blank_scans, "blank.pdf", NO_OCR)
    empty = _file(tmp_path, "empty.pdf", docs.pdf_bytes(["", ""]))
    with pytest.raises(EmptyDocumentError, match="no page looks scanned") as raised:
        parse_file(empty, "empty.pdf", OCR)
    assert UNREAD_SCANS not in str(raised.value)  # not read again when OCR is on


def test_without_ocr_for_images_they_stay_formats_with_no_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = docs.scan_image(["Receipt CANARY"])
    no_images = ParseOptions.of(ParseSettings(ocr="on", ocr_images=False))
    for options in (NO_OCR, no_images):
        with pytest.raises(NoTextFormatError, match="PNG image"):
            parse_file(_file(tmp_path, "r.png", data), "r.png", options)
    assert no_text("scans/r.png") == "an image (.png)"
    assert no_text("scans/r.png", images=True) is None
    assert no_text("scans/r.heic", images=True) == "an image (.heic)"  # Pillow cannot read it

    # "auto" follows the extra; "on" without it refuses to start.
    monkeypatch.setattr(ocr, "available", lambda: False)
    assert ocr_options(ParseSettings()) is None
    with pytest.raises(MissingExtraError, match=r"rag-ingest\[ocr\]"):
        ocr_options(ParseSettings(ocr="on"))
    monkeypatch.undo()
    assert ocr_options(ParseSettings()) is not None
    assert ocr_options(ParseSettings(ocr="off")) is None


def test_upright_lines_are_read_as_they_are() -> None:
    # RapidOCR's 0/180-degree line classifier turned some of these lines over and read
    # them as noise ('Revs r  rs   n r   d   r les.'): it is off.
    import numpy as np
    import pymupdf

    lines = [
        "Revenue grew by 12 percent in the third quarter, driven by storage and network sales.",
        "The board approved the budget on 3 March 2026 after a long discussion of risks.",
        "Customers asked for faster ingestion of scanned invoices and signed contracts.",
        "Section 4.2: the vendor shall deliver all goods within thirty (30) days of the order.",
    ]
    page = pymupdf.open().new_page()
    for i, line in enumerate(lines):
        page.insert_text((72, 72 + 17.6 * i), line, fontname="helv", fontsize=11)
    pix = page.get_pixmap(dpi=150)
    pixels = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    assert [b.text for b in ocr.recognize(pixels)] == lines


def test_a_page_of_many_separate_lines_keeps_them_in_order() -> None:
    # Each line a block of its own: cut by cut, deeper than Python's recursion limit.
    boxes = [TextBox(0, 40 * i, 300, 40 * i + 20, f"line {i}") for i in range(1500)]
    assert layout(boxes).split("\n\n") == [f"line {i}" for i in range(1500)]


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_page_scanned_upside_down_or_sideways_is_read_the_right_way_up(
    turns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        "Revenue grew by 12 percent in the third quarter, driven by storage sales.",
        "The board approved the budget on 3 March 2026 CANARY-TURNED.",
    ]
    turned = _rendered(lines, turns=turns)
    reads = _counted_reads(monkeypatch)
    assert layout(ocr.recognize(turned)) == "\n".join(lines)
    # Once a turn reads well, the other is not tried: a sideways page turned back by a
    # quarter turn is read twice, not three times (ocrmypdf's cardinal.pdf, 4 pages each
    # turned another way, took 53 s).
    assert len(reads) == {1: 3, 2: 2, 3: 2}[turns]


@pytest.mark.parametrize("degrees", [1.5, -2.0, 3.0])
def test_a_page_scanned_a_little_askew_is_read_line_by_line(degrees: float) -> None:
    """Upright, the boxes of lines slanted 1.5 degrees overlapped the next line's and two
    lines were read as one, out of order (ocrmypdf's skew.pdf); a slanted page of two
    columns was read across them, a line of each in turn."""
    import numpy as np
    from PIL import Image

    lines = [
        "The quarterly report shows that revenue grew by twelve percent in the",
        "third quarter, driven by storage sales in the northern region, while",
        "costs stayed flat. The board approved the budget on 3 March 2026 and",
        "asked for a review of the cloud contracts before the end of the year.",
        "CANARY-SKEWED closes the paragraph on its own short line.",
    ]
    image = Image.fromarray(_rendered(lines, step=12))
    turned = image.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    assert layout(ocr.recognize(np.ascontiguousarray(np.asarray(turned)))) == "\n".join(lines)


def test_a_page_s_slant_is_its_long_lines_and_only_a_slight_one() -> None:
    import math

    from rag_ingest.ocr import _skew

    def line(y: float, degrees: float, width: float = 600) -> list[tuple[float, float]]:
        dx, dy = width * math.cos(math.radians(degrees)), width * math.sin(math.radians(degrees))
        return [(50, y), (50 + dx, y + dy), (50 + dx, y + dy + 20), (50, y + 20)]

    assert math.degrees(_skew([line(100, 2), line(140, 2.2), line(180, 1.8)])) == pytest.approx(2)
    assert math.degrees(_skew([line(100, -3), line(140, -3)])) == pytest.approx(-3)
    assert _skew([line(100, 0.4), line(140, 0.4)]) == 0  # level enough: left as it is
    assert _skew([line(100, 40), line(140, 40)]) == 0  # a stamp's angle, not a slant
    # A short box's top edge says little: a word, a digit.
    assert _skew([line(100, 5, width=120), line(140, 5, width=120)]) == 0
    # Most lines decide: a slanted stamp across an upright page does not turn it.
    assert _skew([line(100, 0), line(140, 0), line(180, 0), line(300, 12)]) == 0
    assert _skew([]) == 0


def test_a_scan_s_pages_are_read_first_the_way_the_page_before_lay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack fed upside down: each page had been read upright, in vain, then turned."""
    reads = _counted_reads(monkeypatch)
    lines = [
        "Page one of the minutes: the board met on 3 March CANARY-LIE-ONE.",
        "Page two of the minutes: the budget was approved CANARY-LIE-TWO.",
        "Page three of the minutes, scanned the right way up CANARY-LIE-THREE.",
    ]
    lie = ocr.Lie()
    texts = [layout(ocr.recognize(_rendered(lines[:1], turns=2), lie=lie))]
    assert (len(reads), lie.turns) == (2, 2)  # upright in vain, then turned over
    texts.append(layout(ocr.recognize(_rendered(lines[1:2], turns=2), lie=lie)))
    assert len(reads) == 3  # turned over first, and read well
    # A page that lies otherwise is still read the right way up, and said so.
    texts.append(layout(ocr.recognize(_rendered(lines[2:]), lie=lie)))
    assert (len(reads), lie.turns) == (5, 0)
    assert texts == lines


def test_only_lines_of_words_standing_tall_mean_a_sideways_page() -> None:
    from rag_ingest.ocr import _sideways

    digits = [TextBox(60, 100 + 40 * i, 73, 122 + 40 * i, str(i)) for i in range(6)]
    line = TextBox(60, 400, 330, 429, "Six numbered rows above.")
    assert not _sideways([*digits, line])  # a column of digits on an upright page
    turned = [TextBox(100 + 40 * i, 60, 129, 600, "a line of text turned") for i in range(3)]
    assert _sideways([*turned, line])
    assert not _sideways([])


def test_a_scanned_pdf_keeps_its_attachments_and_their_scans_are_read(tmp_path: Path) -> None:
    """A scan's pages are merged with its OCR by page number: an attached file's pages
    (the notes' and the receipt's, both of no page) had taken each other's place."""
    scan = docs.scanned_pdf(["Expense report March", "Total due 42 euros CANARY-SCANPAGE"])
    data = docs.pdf_with_attachments(
        scan,
        {
            "notes.md": b"# Notes\n\nCANARY-NOTES approved",
            "receipt.png": docs.scan_image(["Receipt 0042", "CANARY-RECEIPT paid by card"]),
            "team.jpg": docs.photo(),
        },
    )
    parsed = parse_file(_file(tmp_path, "expenses.pdf", data), "expenses.pdf", OCR)
    assert [(s.member, s.page, s.ocr) for s in parsed.segments] == [
        (None, 1, True),
        (None, 2, True),
        ("notes.md", None, False),
        ("receipt.png", None, True),
    ]
    assert "CANARY-SCANPAGE" in parsed.segments[1].text
    assert "CANARY-RECEIPT" in parsed.segments[3].text
    assert parsed.warnings == ["2 scanned page(s) read by OCR: 1-2"]  # the photo: nothing
    without = parse_file(_file(tmp_path, "e.pdf", data), "e.pdf", NO_OCR)
    assert [s.member for s in without.segments] == ["notes.md"]
    assert without.warnings == [
        f"2 scanned page(s) (1-2) {UNREAD_SCANS}",
        f"attachment receipt.png: an image, {UNREAD_SCANS}",
        f"attachment team.jpg: an image, {UNREAD_SCANS}",
    ]


def test_a_scanned_xps_page_is_read_by_ocr(tmp_path: Path) -> None:
    scan = docs.scan_image(["Delivery note 0042", "CANARY-XPSSCAN two pallets received"])
    data = docs.xps_bytes([[("Cover sheet of the delivery", 12)], scan])
    parsed = parse_file(_file(tmp_path, "note.xps", data), "note.xps", OCR)
    assert [(s.page, s.ocr) for s in parsed.segments] == [(1, False), (2, True)]
    assert "CANARY-XPSSCAN two pallets received" in parsed.segments[1].text
    assert parsed.warnings == ["1 scanned page(s) read by OCR: 2"]


def test_an_emailed_scan_is_read_and_a_photo_passed_over(tmp_path: Path) -> None:
    from email.message import EmailMessage

    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(photo, "JPEG")
    mail = EmailMessage()
    mail["Subject"] = "Expenses"
    mail.set_content("Receipt attached.")
    receipt = docs.scan_image(["Receipt 0042", "CANARY-MAILSCAN paid by card"])
    mail.add_attachment(receipt, maintype="image", subtype="png", filename="receipt.png")
    mail.add_attachment(photo.getvalue(), maintype="image", subtype="jpeg", filename="team.jpg")
    path = _file(tmp_path, "mail.eml", bytes(mail))
    parsed = parse_file(path, "mail.eml", OCR)
    assert parsed.text.endswith(
        "Receipt attached.\n\n## Attachment: receipt.png\n\n"
        "Receipt 0042\nCANARY-MAILSCAN paid by card"
    )
    assert parsed.warnings == []  # the photo has no text: nothing to say about it
    assert "CANARY-MAILSCAN" not in parse_file(path, "mail.eml", NO_OCR).text


def test_pictures_inside_a_docx_are_read_where_they_sit(tmp_path: Path) -> None:
    scan = docs.scan_image(["Signed delivery note 118", "CANARY-PICTURE received in full"])
    icon = docs.scan_image(["CANARY-ICON"])  # text, but shrunk below 100x100 pixels
    from PIL import Image

    before = "Before the scan, the report sets out the terms of the delivery in detail."
    between = "Between the pictures, a note says the goods were checked on arrival."
    after = "After the pictures, the report ends with the names of both signatories."
    small = io.BytesIO()
    Image.open(io.BytesIO(icon)).resize((90, 90)).save(small, "PNG")
    parts: list[str | bytes] = [
        before,
        scan,
        between,
        docs.photo(),
        small.getvalue(),
        after,
    ]
    path = _file(tmp_path, "report.docx", docs.docx_with_pictures(parts))

    # The parse lists the scan and the photo, not the icon, a marker where each sits.
    listed = parse_file(path, "report.docx", OCR, defer_scans=True)
    assert listed.scans == [1, 2] and len(listed.pictures) == 2

    parsed = parse_file(path, "report.docx", OCR)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        (before, False),
        ("Signed delivery note 118\nCANARY-PICTURE received in full", True),
        (f"{between}\n\n{after}", False),  # the photo has no text, the icon is not read
    ]
    assert parsed.parser == "docling-docx+ocr"
    assert parsed.warnings == ["1 picture(s) read by OCR"]
    small_chunks = ChunkSettings(
        chunk_tokens=16, overlap_tokens=0, whole_document_tokens=0, min_chunk_tokens=0
    )
    plan = chunk_document(parsed, small_chunks, {})
    # Only the picture's chunks are marked.
    picture = parsed.segments[1].text
    marked = [(c.text in picture, c.metadata.get("ocr")) for c in plan.chunks]
    assert set(marked) == {(True, True), (False, None)}

    # Without OCR, or with pictures off, the text is the document's own, no marker left.
    pictures_off = ParseOptions.of(ParseSettings(ocr="on", ocr_pictures=False))
    for options in (NO_OCR, pictures_off):
        parsed = parse_file(path, "report.docx", options)
        assert parsed.text == f"{before}\n\n{between}\n\n{after}"
        # Without OCR, the pictures it would read (the scan and the photo, not the icon)
        # are said unread: the document is read again once OCR is on. Off by choice, not.
        unread = [f"2 picture(s) {UNREAD_SCANS}"] if options is NO_OCR else []
        assert parsed.warnings == unread


def test_a_picture_in_a_table_cell_is_read_into_its_cell(tmp_path: Path) -> None:
    from docx import Document
    from docx.shared import Inches

    scan = docs.scan_image(["Signed delivery note 118", "CANARY-PICTURE | in full"])
    doc = Document()
    doc.add_paragraph("Deliveries received this week, with their signed notes.")
    table = doc.add_table(rows=3, cols=3)
    for row, cells in enumerate(
        [("Item", "Note", "Qty"), ("Bolts", scan, "40"), ("Nuts", docs.photo(), "12")]
    ):
        for column, value in enumerate(cells):
            if isinstance(value, str):
                table.cell(row, column).text = value
            else:
                run = table.cell(row, column).paragraphs[0].add_run()
                run.add_picture(io.BytesIO(value), width=Inches(3))
    doc.add_paragraph("After the table, the report ends here with the names.")
    buf = io.BytesIO()
    doc.save(buf)
    path = _file(tmp_path, "deliveries.docx", buf.getvalue())

    # One segment: the table whole, the scan's lines in its cell, the photo's cell empty.
    parsed = parse_file(path, "deliveries.docx", OCR)
    assert len(parsed.segments) == 1
    lines = [line for line in parsed.text.splitlines() if line.startswith("|")]
    rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines]
    assert [len(r) for r in rows] == [3] * 4
    assert " ".join(rows[2][1].split()) == ("Signed delivery note 118 CANARY-PICTURE \\| in full")
    assert rows[3][1].strip() == ""
    settings = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    plan = chunk_document(parsed, settings, {})
    assert any("| Bolts | Signed delivery note 118" in c.text for c in plan.chunks)


def test_a_table_of_pictures_alone_is_read(tmp_path: Path) -> None:
    """Tables with no text in any cell are left out, but not one whose cells hold
    pictures: their text is OCR's."""
    from docx import Document
    from docx.shared import Inches

    doc = Document()
    doc.add_paragraph("Scanned receipts.")
    run = doc.add_table(rows=1, cols=2).cell(0, 0).paragraphs[0].add_run()
    run.add_picture(io.BytesIO(docs.scan_image(["CANARY-RECEIPT 4711 paid"])), width=Inches(3))
    buf = io.BytesIO()
    doc.save(buf)
    parsed = parse_file(_file(tmp_path, "receipts.docx", buf.getvalue()), "receipts.docx", OCR)
    assert "CANARY-RECEIPT 4711 paid" in parsed.text


def test_a_slide_s_screenshot_is_read_on_its_slide(tmp_path: Path) -> None:
    # A screenshot's large line stays a line: the deck's headings are its own.
    shot = docs.text_image(
        [
            ("Gateway status", 20),
            ("", 12),
            ("Error 504 Gateway Timeout", 9),
            ("CANARY-SLIDEPIC retry later", 9),
        ]
    )
    path = _file(tmp_path, "deck.pptx", docs.pptx_with_picture("What users saw", shot))
    parsed = parse_file(path, "deck.pptx", OCR)
    assert [(s.page, s.ocr) for s in parsed.segments] == [(1, False), (2, False), (2, True)]
    assert parsed.segments[2].text == (
        "Gateway status\n\nError 504 Gateway Timeout\nCANARY-SLIDEPIC retry later"
    )
    assert parsed.segments[1].text == "# What users saw"


@pytest.mark.filterwarnings("ignore:Skipping external image reference")  # docling's, on the link
def test_a_docx_that_is_only_a_photo_has_no_text(tmp_path: Path) -> None:
    path = _file(tmp_path, "photo.docx", docs.docx_with_pictures([docs.photo()]))
    with pytest.raises(EmptyDocumentError):
        parse_file(path, "photo.docx", OCR)
    with pytest.raises(EmptyDocumentError, match="no text besides its pictures"):
        parse_file(path, "photo.docx", NO_OCR)
    # Icons alone hold nothing to index, nor a picture linked, not in the file: skipped,
    # not failed (mammoth's tiny-picture.docx and external-picture.docx).
    icons = docs.docx_with_pictures([docs.photo(10, 10, "PNG"), docs.photo(300, 12, "PNG")])
    linked = docs._repacked(
        docs.docx_with_pictures([docs.photo(300, 200, "PNG")]),
        {
            "word/_rels/document.xml.rels": lambda text: text.replace(
                'Target="media/image1.png"',
                'Target="https://example.com/photo.png" TargetMode="External"',
            )
        },
        {},
    )
    for data in (icons, linked):
        for options in (OCR, NO_OCR):
            with pytest.raises(BlankDocumentError, match="pictures too small to hold text or link"):
                parse_file(_file(tmp_path, "icon.docx", data), "icon.docx", options)


def test_a_picture_in_a_page_header_is_not_read(tmp_path: Path) -> None:
    from docx import Document
    from docx.shared import Inches

    # docling leaves a DOCX's page headers out of the text: a letterhead's logo is not
    # worth a recognition, and its text would have nowhere to go.
    letter = Document()
    logo = docs.scan_image(["ACME letterhead CANARY-HEADER"])
    letter.sections[0].header.paragraphs[0].add_run().add_picture(io.BytesIO(logo), width=Inches(2))
    letter.add_paragraph("Body text of the letter.")
    path = tmp_path / "letter.docx"
    letter.save(str(path))
    parsed = parse_file(str(path), "letter.docx", OCR, defer_scans=True)
    assert (parsed.scans, parsed.pictures) == ([], [])
    assert parsed.text == "Body text of the letter."


def test_pictures_past_the_limit_are_left_and_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest.parsers import pictures as found

    monkeypatch.setattr(found, "MAX_PICTURES", 2)
    scans = [docs.scan_image([f"Page {n}"]) for n in range(3)]
    path = _file(tmp_path, "many.docx", docs.docx_with_pictures(["Three pastes.", *scans]))
    parsed = parse_file(path, "many.docx", OCR, defer_scans=True)
    assert parsed.scans == [1, 2] and len(parsed.pictures) == 2
    assert parsed.warnings == [
        "1 picture(s) past the first 2 not read (at most 2 or 256 MiB a document)"
    ]

    # Past the bytes a document's pictures may hold, the rest are left too.
    monkeypatch.setattr(found, "MAX_PICTURES", 200)
    monkeypatch.setattr(found, "MAX_PICTURE_BYTES", len(parsed.pictures[0]) + 1)
    parsed = parse_file(path, "many.docx", OCR, defer_scans=True)
    assert parsed.scans == [1] and len(parsed.pictures) == 1
    assert parsed.warnings[0].startswith("2 picture(s) past the first 1 not read")


def test_pictures_in_opendocument_text_and_slides_are_read(tmp_path: Path) -> None:
    scan = docs.scan_image(["Minutes of the site visit", "CANARY-ODFPIC all valves closed"])

    def frame(href: str) -> str:
        return f'<draw:frame><draw:image xlink:href="{href}"/></draw:frame>'

    members = {"Pictures/scan.png": scan, "Pictures/photo.jpg": docs.photo()}
    # A scan, a photo (no text), a link to a file outside the archive, the scan again.
    body = (
        f"<text:p>The visit went well.{frame('Pictures/scan.png')}</text:p>"
        f"<text:p>{frame('Pictures/photo.jpg')}{frame('../outside.png')}</text:p>"
        f"<text:p>Signed off.{frame('./Pictures/scan.png')}</text:p>"
    )
    odt = _file(tmp_path, "visit.odt", docs.odf_bytes("text", body, members=members))
    listed = parse_file(odt, "visit.odt", OCR, defer_scans=True)
    assert listed.scans == [1, 2] and len(listed.pictures) == 2  # the scan read once
    parsed = parse_file(odt, "visit.odt", OCR)
    text = "Minutes of the site visit\nCANARY-ODFPIC all valves closed"
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("The visit went well.", False),
        (text, True),
        ("Signed off.", False),
        (text, True),
    ]
    assert parse_file(odt, "visit.odt", NO_OCR).text == "The visit went well.\n\nSigned off."

    slides = (
        '<draw:page draw:name="p1"><draw:frame presentation:class="title"><draw:text-box>'
        f"<text:p>Site photos</text:p></draw:text-box></draw:frame>{frame('Pictures/scan.png')}"
        "</draw:page>"
    )
    odp = _file(tmp_path, "site.odp", docs.odf_bytes("presentation", slides, members=members))
    parsed = parse_file(odp, "site.odp", OCR)
    assert [(s.text, s.page, s.ocr) for s in parsed.segments] == [
        ("# Site photos", 1, False),
        (text, 1, True),
    ]


def test_pictures_in_a_flat_opendocument_file_are_read(tmp_path: Path) -> None:
    # A .fodt holds its pictures as base64 in the XML (office:binary-data).
    scan = docs.scan_image(["Minutes of the site visit", "CANARY-FLATPIC all valves closed"])
    inline = base64.encodebytes(scan).decode()  # in lines, as LibreOffice writes it
    body = (
        "<text:p>The visit went well.<draw:frame><draw:image><office:binary-data>"
        f"{inline}</office:binary-data></draw:image></draw:frame></text:p>"
        "<text:p>Signed off.</text:p>"
    )
    path = _file(tmp_path, "visit.fodt", docs.flat_odf_bytes("text", body))
    parsed = parse_file(path, "visit.fodt", OCR)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("The visit went well.", False),
        ("Minutes of the site visit\nCANARY-FLATPIC all valves closed", True),
        ("Signed off.", False),
    ]
    listed = parse_file(path, "visit.fodt", OCR, defer_scans=True)
    assert listed.scans == [1] and listed.pictures == [scan]
    with packaged(path, "visit.fodt", "fodt", None) as package, zipfile.ZipFile(package) as z:
        # The picture is a file of the package, no longer base64 in its text.
        assert z.read("Pictures/1.png") == scan and b"binary-data" not in z.read("content.xml")
    unread = parse_file(path, "visit.fodt", NO_OCR)
    assert unread.text == "The visit went well.\n\nSigned off."
    assert unread.warnings == ["1 picture(s) not read: OCR is off, or its extra is not installed"]


def test_pictures_in_a_flat_opc_document_are_read(tmp_path: Path) -> None:
    # Word's "Word XML Document" holds its pictures as base64 parts (pkg:binaryData).
    scan = docs.scan_image(["Minutes of the site visit", "CANARY-OPCPIC all valves closed"])
    docx = docs.docx_with_pictures(["The visit went well.", scan, "Signed off."])
    path = _file(tmp_path, "visit.xml", docs.flat_opc_bytes(docx))
    parsed = parse_file(path, "visit.xml", OCR)
    packaged = parse_file(_file(tmp_path, "visit.docx", docx), "visit.docx", OCR)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        (s.text, s.ocr) for s in packaged.segments
    ]
    assert "CANARY-OPCPIC all valves closed" in parsed.text
    unread = parse_file(path, "visit.xml", NO_OCR)
    assert unread.warnings == ["1 picture(s) not read: OCR is off, or its extra is not installed"]


def test_pictures_in_a_word_2003_xml_document_are_read(tmp_path: Path) -> None:
    # Word 2003 XML holds a picture as base64 in the paragraph (w:pict/w:binData).
    scan = docs.scan_image(["Minutes of the site visit", "CANARY-WMLPIC all valves closed"])
    picture = (
        '<w:r><w:pict><w:binData w:name="wordml://02000001.png">'
        f"{base64.encodebytes(scan).decode()}</w:binData><v:shape><v:imagedata "
        'src="wordml://02000001.png"/></v:shape></w:pict></w:r>'
    )
    document = (
        '<?xml version="1.0"?><w:wordDocument xmlns:w="http://schemas.microsoft.com/office/'
        'word/2003/wordml" xmlns:v="urn:schemas-microsoft-com:vml"><w:body>'
        "<w:p><w:r><w:t>The visit went well.</w:t></w:r></w:p>"
        f"<w:p>{picture}</w:p><w:p><w:r><w:t>Signed off.</w:t></w:r></w:p>"
        "</w:body></w:wordDocument>"
    )
    path = _file(tmp_path, "visit.xml", document.encode())
    parsed = parse_file(path, "visit.xml", OCR)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("The visit went well.", False),
        ("Minutes of the site visit\nCANARY-WMLPIC all valves closed", True),
        ("Signed off.", False),
    ]
    unread = parse_file(path, "visit.xml", NO_OCR)
    assert unread.text == "The visit went well.\n\nSigned off."
    assert unread.warnings == ["1 picture(s) not read: OCR is off, or its extra is not installed"]
    described = parse_file(path, "visit.xml", ParseOptions(max_images=1, min_image_bytes=10))
    assert [(i.data, i.mime) for i in described.images] == [(scan, "image/png")]
    only = document.replace("<w:t>The visit went well.</w:t>", "").replace(
        "<w:t>Signed off.</w:t>", ""
    )
    with pytest.raises(EmptyDocumentError, match="no text besides its pictures") as caught:
        parse_file(_file(tmp_path, "only.xml", only.encode()), "only.xml", NO_OCR)
    assert not isinstance(caught.value, BlankDocumentError)  # a failure: OCR may read it


def test_pictures_in_rtf_are_read_where_they_sit(tmp_path: Path) -> None:
    # Word writes a picture as PNG or JPEG in hex ({\*\shppict{\pict\pngblip ...}}),
    # then again as a WMF for old readers ({\nonshppict ...}); striprtf dropped both.
    scan = docs.scan_image(["Minutes of the site visit", "CANARY-RTFPIC all valves closed"])
    jpeg = docs.scan_image(["Second page", "CANARY-RTFJPEG signed"], fmt="JPEG")
    hexed = "\n".join(scan.hex()[i : i + 128] for i in range(0, len(scan.hex()), 128))
    wmf = "{\\nonshppict{\\pict\\wmetafile8\\picw100 0100090000}}"
    rtf = (
        (
            "{\\rtf1\\ansi The visit went well.\\par "
            "{\\*\\shppict{\\pict{\\*\\picprop{\\sp{\\sn wzName}{\\sv Scan 1}}}"
            f"\\picw400\\pich300\\pngblip{{\\*\\blipuid 0123abcd}}\n{hexed}}}}}{wmf}"
            "\\par Then signed.\\par "
            f"{{\\pict\\jpegblip\\bin{len(jpeg)} "
        ).encode()
        + jpeg
        + b"}\\par Signed off.\\par}"
    )
    path = _file(tmp_path, "visit.rtf", rtf)
    parsed = parse_file(path, "visit.rtf", OCR)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("The visit went well.", False),
        ("Minutes of the site visit\nCANARY-RTFPIC all valves closed", True),
        ("Then signed.", False),
        ("Second page\nCANARY-RTFJPEG signed", True),
        ("Signed off.", False),
    ]
    unread = parse_file(path, "visit.rtf", NO_OCR)
    assert unread.text == "The visit went well.\n\nThen signed.\n\nSigned off."
    assert unread.warnings == ["2 picture(s) not read: OCR is off, or its extra is not installed"]
    described = parse_file(path, "visit.rtf", ParseOptions(max_images=1, min_image_bytes=10))
    assert [(i.data, i.mime) for i in described.images] == [(scan, "image/png")]

    # A text box's picture (a shape's "pib" property) is read where the shape sits.
    framed = (
        "{\\rtf1 Framed:\\par{\\shp{\\*\\shpinst{\\sp{\\sn pib}{\\sv "
        f"{{\\pict\\pngblip {scan.hex()}}}}}}}}}}}Done.\\par}}"
    ).encode()
    parsed = parse_file(_file(tmp_path, "framed.rtf", framed), "framed.rtf", OCR)
    assert [s.ocr for s in parsed.segments] == [False, True, False]
    # Pictures too small to hold text, and no text: nothing to index (a picture's WMF
    # copy is no other picture).
    icon = docs.photo(16, 16, fmt="PNG").hex()
    with pytest.raises(BlankDocumentError, match="pictures too small to hold text"):
        tiny = f"{{\\rtf1 {{\\*\\shppict{{\\pict\\pngblip {icon}}}}}{wmf}}}".encode()
        parse_file(_file(tmp_path, "icon.rtf", tiny), "icon.rtf", OCR)
    # A picture OCR cannot read, and no text: its text may be in it, a failure that says so.
    drawn = b"{\\rtf1 {\\pict\\emfblip 0100} {\\pict\\wmetafile8 0100}}"
    with pytest.raises(EmptyDocumentError, match=r"besides its pictures \(EMF, WMF: not read"):
        parse_file(_file(tmp_path, "drawn.rtf", drawn), "drawn.rtf", OCR)


def test_an_epub_s_pictures_are_read_and_kept_to_describe(tmp_path: Path) -> None:
    scan = docs.scan_image(["Plate 4 shows the old mill", "CANARY-EPUBPIC built in 1820"])
    chapter = (
        'The plate follows.</p><img src="../images/plate%204.png" alt="Plate 4"/>'
        '<img src="https://example.com/remote.png"/><p>After the plate.'
    )
    book = docs.epub_bytes(
        [("Plates", chapter)], members={"images/plate 4.png": scan, "images/unused.png": scan}
    )
    path = _file(tmp_path, "mill.epub", book)
    parsed = parse_file(path, "mill.epub", ParseOptions.of(ParseSettings(ocr="on"), max_images=5))
    text = "Plate 4 shows the old mill\nCANARY-EPUBPIC built in 1820"
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("# CANARY-BOOK Field Guide\n\n# Plates\n\nThe plate follows.\n\nPlate 4", False),
        (text, True),
        ("After the plate.", False),
    ]
    assert parsed.file_type == "epub" and parsed.parser == "docling-epub+ocr"
    # The picture is kept to describe too (the one the book does not show is not).
    assert [(i.mime, i.data) for i in parsed.images] == [("image/png", scan)]
    without = parse_file(path, "mill.epub", NO_OCR)
    assert "CANARY-EPUBPIC" not in without.text and without.images == []
    assert "\U000f0000" not in without.text


def test_opendocument_pictures_are_kept_to_describe(tmp_path: Path) -> None:
    png = docs.photo(fmt="PNG")
    slides = "".join(
        f'<draw:page draw:name="p{n}"><draw:frame presentation:class="title"><draw:text-box>'
        f"<text:p>Slide {n}</text:p></draw:text-box></draw:frame>"
        f'<draw:frame><draw:image xlink:href="Pictures/{n}.png"/></draw:frame></draw:page>'
        for n in (1, 2)
    )
    members = {"Pictures/1.png": png, "Pictures/2.png": png}
    path = _file(tmp_path, "deck.odp", docs.odf_bytes("presentation", slides, members=members))
    parsed = parse_file(path, "deck.odp", ParseOptions(max_images=5, min_image_bytes=100))
    assert [(i.page, i.mime) for i in parsed.images] == [(1, "image/png"), (2, "image/png")]
    assert parse_file(path, "deck.odp", ParseOptions()).images == []


def test_a_picture_on_a_sheet_is_read_on_its_sheet(tmp_path: Path) -> None:
    import openpyxl
    from openpyxl.drawing.image import Image as SheetImage

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["region", "cost"])
    sheet.append(["north", 42])
    notes = docs.scan_image(["Chart notes CANARY-SHEETPIC", "costs fell in spring"])
    sheet.add_image(SheetImage(io.BytesIO(notes)), "D2")
    path = tmp_path / "costs.xlsx"
    book.save(path)
    parsed = parse_file(
        str(path), "costs.xlsx", ParseOptions.of(ParseSettings(ocr="on"), max_images=3)
    )
    assert [(s.page, s.ocr) for s in parsed.segments] == [(1, False), (1, True)]
    assert parsed.segments[1].text == "Chart notes CANARY-SHEETPIC\ncosts fell in spring"
    assert len(parsed.images) == 1  # and kept to describe


def test_an_html_page_s_embedded_pictures_are_read(tmp_path: Path) -> None:
    import base64

    scan = docs.scan_image(["Org chart CANARY-HTMLPIC", "support reports to operations"])
    inline = base64.b64encode(scan).decode()
    tiny = docs.photo(24, 24, "PNG")
    icon = base64.b64encode(tiny).decode()
    # No charset declared: the page's own UTF-8 must still read as UTF-8.
    page = (
        "<html><body><h1>Team</h1><p>The chart, café équipe:</p>"
        f'<p><img alt="chart" src="data:image/png;base64,{inline}"></p>'
        f'<p><img src="https://example.com/remote.png"><img src="data:image/png;base64,{icon}">'
        " The end.</p></body></html>"
    )
    path = _file(tmp_path, "team.html", page.encode())
    options = ParseOptions.of(ParseSettings(ocr="on"), max_images=5, min_image_bytes=100)
    parsed = parse_file(path, "team.html", options)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("# Team\n\nThe chart, café équipe:", False),
        ("Org chart CANARY-HTMLPIC\nsupport reports to operations", True),
        ("chart\n\nThe end.", False),  # its alt text kept
    ]
    assert [i.data for i in parsed.images] == [scan, tiny]  # to describe
    plain = parse_file(path, "team.html", NO_OCR)
    assert plain.text == "# Team\n\nThe chart, café équipe:\n\nchart\n\nThe end."
    assert plain.images == []
    # The chart is said unread (the page is read again once OCR is on); the icon is too
    # small to hold text, and the remote picture is read by no one.
    assert plain.warnings == [f"1 picture(s) {UNREAD_SCANS}"]
    assert parsed.warnings == ["1 picture(s) read by OCR"]


def test_a_marker_in_html_changes_no_encoding_guess() -> None:
    from rag_ingest.parsers.office import parse_html
    from rag_ingest.parsers.pictures import marker, with_markers

    # A short page, no charset declared: a marker's raw UTF-8 bytes made it read as
    # windows-1256, the marker garbled and the picture's text lost.
    page = b'<html><body><p>The chart:</p><p><img alt="chart" src="x.png"></p></body></html>'
    marked = with_markers(page, lambda link: marker(1) if link == "x.png" else "")
    assert parse_html(marked, "x.html", 0, 0).text == f"The chart:\n\n{marker(1)}\n\nchart"


def test_a_markdown_file_s_embedded_pictures_are_read(tmp_path: Path) -> None:
    import base64

    scan = docs.scan_image(["Whiteboard photo CANARY-MDPIC", "ship the beta on Friday"])
    inline = base64.b64encode(scan).decode()
    page = f"# Retro\n\nThe board:\n\n![board](data:image/png;base64,{inline})\n\nDone.\n"
    path = _file(tmp_path, "retro.md", page.encode())
    options = ParseOptions.of(ParseSettings(ocr="on"), max_images=5, min_image_bytes=100)
    parsed = parse_file(path, "retro.md", options)
    assert [(s.text, s.ocr) for s in parsed.segments] == [
        ("# Retro\n\nThe board:\n\nboard", False),
        ("Whiteboard photo CANARY-MDPIC\nship the beta on Friday", True),
        ("Done.", False),
    ]
    assert [(i.mime, i.data) for i in parsed.images] == [("image/png", scan)]
    plain = parse_file(path, "retro.md", NO_OCR)
    assert plain.text == "# Retro\n\nThe board:\n\nboard\n\nDone."
    assert plain.warnings == [f"1 picture(s) {UNREAD_SCANS}"]
