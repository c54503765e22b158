"""A picture's alternative text, read where the picture stands (DOCX, PPTX, ODF)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.alt_text import alt_text, word_alt_texts
from tests import docs

OPTIONS = ParseOptions()
_DECORATIVE = (
    '<a:extLst xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
    '<a:ext uri="{C183D7F6-B498-43B3-948B-1728B52AA6E4}">'
    '<adec:decorative xmlns:adec="http://schemas.microsoft.com/office/drawing/2017/decorative"'
    ' val="1"/></a:ext></a:extLst>'
)


@pytest.mark.parametrize(
    ("title", "description", "expected"),
    [
        (None, "Sales by region, 2023", "Sales by region, 2023"),
        ("Sales", "Sales by region, 2023", "Sales by region, 2023"),  # one holds the other
        ("Four colours", "Red, green, blue, black", "Four colours: Red, green, blue, black"),
        ("", "  A dog\non a  beach ", "A dog on a beach"),
        # Office's own: its generated note's paragraph, in any language, is dropped.
        (None, "A dog on a beach\n\nDescription automatically generated", "A dog on a beach"),
        (None, "Ein Hund\n\nAutomatisch generierte Beschreibung", "Ein Hund"),
        (None, "Automatic gearbox, cut away", "Automatic gearbox, cut away"),
        # What Word 2003's converter, Word 2007-2010 and other tools wrote by themselves.
        (None, "Description: Wave design", "Wave design"),
        (None, "Description: C:\\Users\\ann\\photo (2).JPG", ""),
        (None, "IMGs\\football.jpg", ""),
        (None, "Ian H. 2.JPG", ""),
        (None, "The dialog, saved as settings.png", "The dialog, saved as settings.png"),
        (None, "http://example.com/lion.png?size=2", ""),
        (None, "\\\\server\\share\\scan", ""),
        (None, "Graphic 1", ""),
        ("OLE-object", "chart", ""),
        (None, "Grafik 12", ""),
        (None, "Inserted picture RelID:1", ""),
        (None, "Chart of sales", "Chart of sales"),
        (None, None, ""),
    ],
)
def test_alt_text_keeps_what_an_author_wrote(
    title: str | None, description: str | None, expected: str
) -> None:
    assert alt_text(title, description) == expected


def test_alt_text_leaves_out_what_the_picture_shows_itself() -> None:
    # A text frame described by its own text (LibreOffice's PageBackground.odt).
    assert alt_text("top left", "UI fill none", shown="UI fill none") == "top left"


def _picture_run(paragraph: Any, alt: str, *, extra: str = "") -> None:
    """A picture inline in ``paragraph`` whose drawing's description is ``alt``."""
    from docx.shared import Inches
    from lxml import etree

    shape = paragraph.add_run().add_picture(io.BytesIO(docs.photo(40, 30)), width=Inches(0.5))
    shape._inline.docPr.set("descr", alt)
    if extra:
        shape._inline.docPr.append(etree.fromstring(extra))


def test_a_docx_pictures_alt_text_is_read_where_it_stands(tmp_path: Path) -> None:
    # docling reads no picture's description: a report's charts said nothing.
    from docx import Document

    doc = Document()
    doc.add_heading("Report", 1)
    paragraph = doc.add_paragraph("Sales rose")
    _picture_run(paragraph, "CANARY-CHART north doubled")
    paragraph.add_run(" in March.")
    _picture_run(doc.add_paragraph(), "CANARY-LOGO company logo", extra=_DECORATIVE)
    _picture_run(doc.add_paragraph(), "C:\\Users\\ann\\Pictures\\IMG_0001.JPG")
    _picture_run(doc.add_paragraph(), "A dog\n\nDescription automatically generated")
    doc.add_paragraph("The end.")
    buf = io.BytesIO()
    doc.save(buf)
    parsed = parse_file(str(docs_file(tmp_path, "r.docx", buf.getvalue())), "r.docx", OPTIONS)
    assert parsed.text == (
        "## Report\n\nSales rose CANARY-CHART north doubled in March.\n\nA dog\n\nThe end."
    )


def docs_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


_PART = (
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    ' xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"'
    ' xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"'
    ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    ' xmlns:v="urn:schemas-microsoft-com:vml"><w:body><w:p>{}</w:p></w:body></w:document>'
)


def _runs(part: bytes) -> list[str]:
    from lxml import etree

    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    root = etree.fromstring(part)
    return ["".join(t.text or "" for t in r.findall(f"{w}t")) for r in root.iter(f"{w}r")]


def test_a_drawing_and_its_vml_fallback_are_one_alt_text() -> None:
    # Word writes a shape as a DrawingML choice and a VML fallback, each described; the
    # picture inside a drawing repeats its drawing's description.
    run = (
        '<w:r><w:t>Map</w:t><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
        '<wp:anchor><wp:docPr id="1" name="Shape 1" title="Roads" descr="CANARY route map"/>'
        '<pic:pic><pic:nvPicPr><pic:cNvPr id="0" name="map.png" descr="CANARY route map"/>'
        "</pic:nvPicPr></pic:pic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict>"
        '<v:shape alt="CANARY route map"/></w:pict></mc:Fallback></mc:AlternateContent></w:r>'
    )
    assert _runs(word_alt_texts(_PART.format(run).encode())) == ["Map", " Roads: CANARY route map"]


def test_a_decorative_drawing_hides_its_pictures_alt_text() -> None:
    run = (
        '<w:r><w:drawing><wp:inline><wp:docPr id="1" name="Group 1">'
        f"{_DECORATIVE}</wp:docPr><pic:pic><pic:nvPicPr>"
        '<pic:cNvPr id="0" name="x" descr="CANARY border"/></pic:nvPicPr></pic:pic>'
        '</wp:inline></w:drawing></w:r><w:r><w:drawing><wp:inline><wp:docPr id="2" name="P"'
        ' hidden="1" descr="CANARY hidden"/></wp:inline></w:drawing></w:r>'
    )
    part = _PART.format(run).encode()
    assert word_alt_texts(part) == part


def test_a_vml_pictures_alt_text_is_read() -> None:
    run = '<w:r><w:pict><v:shape alt="CANARY old chart"/></w:pict></w:r><w:r><w:t>after</w:t></w:r>'
    assert _runs(word_alt_texts(_PART.format(run).encode())) == ["", "CANARY old chart ", "after"]


def test_a_slides_pictures_alt_text_is_read_beside_it(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Results"
    image = docs.photo(80, 60)
    for top, alt, extra in (
        (4, "CANARY-LOW second chart", {}),
        (2, "CANARY-HIGH revenue by quarter", {}),
        (3, "CANARY-HIDDEN", {"hidden": "1"}),
        (5, "photo.png", {}),
    ):
        picture = slide.shapes.add_picture(io.BytesIO(image), Inches(1), Inches(top), Inches(2))
        picture._element.nvPicPr.cNvPr.set("descr", alt)
        for name, value in extra.items():
            picture._element.nvPicPr.cNvPr.set(name, value)
    second = prs.slides.add_slide(prs.slide_layouts[6])
    picture = second.shapes.add_picture(io.BytesIO(image), Inches(1), Inches(1), Inches(2))
    picture._element.nvPicPr.cNvPr.set("descr", "CANARY-DECORATIVE")
    from lxml import etree

    picture._element.nvPicPr.cNvPr.append(etree.fromstring(_DECORATIVE))
    buf = io.BytesIO()
    prs.save(buf)
    parsed = parse_file(str(docs_file(tmp_path, "d.pptx", buf.getvalue())), "d.pptx", OPTIONS)
    text = parsed.text
    assert "CANARY-HIGH revenue by quarter" in text
    assert text.index("Results") < text.index("CANARY-HIGH") < text.index("CANARY-LOW")
    assert "CANARY-HIDDEN" not in text and "CANARY-DECORATIVE" not in text
    assert "photo.png" not in text
    assert text.count("CANARY-HIGH") == 1


def test_an_odf_frames_and_shapes_alt_text_is_read(tmp_path: Path) -> None:
    # svg:title is LibreOffice's alternative text, svg:desc its description. Shapes'
    # had been read run together with their text ("RectangleRectangle Description").
    body = (
        "<text:p>Before the map."
        '<draw:frame draw:name="Image1"><draw:image xlink:href="Pictures/1.png"/>'
        "<svg:title>CANARY-MAP</svg:title><svg:desc>Roads north of the river</svg:desc>"
        "</draw:frame></text:p>"
        '<text:p><draw:frame draw:name="Text1"><draw:text-box><text:p>Boxed words</text:p>'
        "</draw:text-box><svg:title>CANARY-FRAME</svg:title><svg:desc>Boxed words</svg:desc>"
        "</draw:frame></text:p>"
        '<text:p><draw:frame draw:name="Object1"><draw:object xlink:href="./Object 1"/>'
        "<svg:desc>Formule</svg:desc></draw:frame></text:p>"
        "<text:p>Shape: <draw:custom-shape><svg:title>CANARY-SHAPE</svg:title>"
        "<text:p>Inside</text:p></draw:custom-shape> after.</text:p>"
        '<draw:frame text:anchor-type="page"><draw:image xlink:href="Pictures/1.png"/>'
        "<svg:desc>CANARY-PAGE</svg:desc></draw:frame>"
    )
    data = docs.odf_bytes("text", body, members={"Pictures/1.png": docs.photo(40, 30, "PNG")})
    parsed = parse_file(str(docs_file(tmp_path, "a.odt", data)), "a.odt", OPTIONS)
    assert parsed.text == (
        "Before the map.\n\nCANARY-MAP: Roads north of the river\n\nBoxed words\n\n"
        "CANARY-FRAME\n\nShape: Inside after.\n\nCANARY-SHAPE\n\nCANARY-PAGE"
    )


def test_a_sheets_pictures_alt_text_follows_its_rows(tmp_path: Path) -> None:
    # openpyxl and calamine read none of a sheet's drawing; openpyxl itself writes
    # "Picture" for every picture, which says nothing.
    import openpyxl
    from openpyxl.drawing.image import Image

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"] = "Total"
    for cell in ("C3", "C9"):
        sheet.add_image(Image(io.BytesIO(docs.photo(40, 30, "PNG"))), cell)
    buf = io.BytesIO()
    book.save(buf)
    data = docs._repacked(
        buf.getvalue(),
        {
            "xl/drawings/drawing1.xml": lambda text: text.replace(
                'descr="Picture"', 'descr="CANARY-XLSX sales by month"', 1
            )
        },
        {},
    )
    text = parse_file(str(docs_file(tmp_path, "b.xlsx", data)), "b.xlsx", OPTIONS).text
    assert text.index("Total") < text.index("Picture: CANARY-XLSX sales by month")
    assert text.count("Picture:") == 1


def test_an_ods_sheets_pictures_alt_text_follows_its_rows(tmp_path: Path) -> None:
    frame = (
        '<draw:frame draw:name="{name}"><draw:image xlink:href="Pictures/1.png"/>'
        "<svg:title>{title}</svg:title></draw:frame>"
    )
    body = (
        '<table:table table:name="Sales"><table:shapes>'
        + frame.format(name="Image1", title="CANARY-ODS-PAGE map")
        + "</table:shapes><table:table-row>"
        + '<table:table-cell office:value-type="string"><text:p>Total</text:p>'
        + frame.format(name="Image2", title="CANARY-ODS-CELL logo")
        + "</table:table-cell></table:table-row></table:table>"
    )
    data = docs.odf_bytes(
        "spreadsheet", body, members={"Pictures/1.png": docs.photo(40, 30, "PNG")}
    )
    text = parse_file(str(docs_file(tmp_path, "s.ods", data)), "s.ods", OPTIONS).text
    assert text.index("Total") < text.index("Picture: CANARY-ODS-PAGE map")
    assert "Picture: CANARY-ODS-CELL logo" in text


def test_a_logos_alt_text_on_every_slide_is_read_on_the_first(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    image = docs.photo(80, 60)
    for number in range(1, 5):
        slide = prs.slides.add_slide(prs.slide_layouts[5])
        slide.shapes.title.text = f"Slide CANARY-{number}"
        logo = slide.shapes.add_picture(io.BytesIO(image), Inches(8), Inches(6), Inches(1))
        logo._element.nvPicPr.cNvPr.set("descr", "CANARY-LOGO Acme")
        # On two slides only (twice on one, read once there): read on both.
        for top in (2, 4) if number == 2 else (2,) if number == 3 else ():
            chart = slide.shapes.add_picture(io.BytesIO(image), Inches(1), Inches(top), Inches(1))
            chart._element.nvPicPr.cNvPr.set("descr", "CANARY-CHART sales")
    buf = io.BytesIO()
    prs.save(buf)
    parsed = parse_file(str(docs_file(tmp_path, "l.pptx", buf.getvalue())), "l.pptx", OPTIONS)
    text = parsed.text
    assert text.count("CANARY-LOGO Acme") == 1
    assert text.index("CANARY-1") < text.index("CANARY-LOGO") < text.index("CANARY-2")
    assert text.count("CANARY-CHART sales") == 2
