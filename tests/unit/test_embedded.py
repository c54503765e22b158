"""Objects embedded in DOCX, PPTX and XLSX files, and in Word and Excel 97-2003 files,
read after the document's own text."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import EmptyDocumentError
from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.settings import ChunkSettings
from tests import docs

OPTIONS = ParseOptions()
SHEET = docs.xlsx_bytes([["region", "sales"], ["CANARY-EMBEDDED-NORTH", 12]])


def _parse(tmp_path: Path, name: str, data: bytes, options: ParseOptions = OPTIONS) -> object:
    path = tmp_path / name
    path.write_bytes(data)
    return parse_file(str(path), name, options)


def test_objects_in_a_word_report_are_read_after_its_text(tmp_path: Path) -> None:
    """An Excel table embedded in a Word report showed as its preview picture, or not at
    all: its figures were not indexed."""
    pdf = docs.pdf_bytes(["CANARY-OLE-PDF terms and conditions"])
    legacy = docs.xls_bytes([["item", "qty"], ["CANARY-OLE-XLS bolts", 40]])
    packaged = docs.cfb_bytes({"Package": docs.docx_bytes("Memo", {"Note": "CANARY-PACKAGE"})})
    data = docs.with_embedded(
        docs.docx_bytes("Report", {"Figures": "The table is embedded below."}),
        "word/document.xml",
        [
            ("Microsoft_Excel_Worksheet.xlsx", SHEET, False),
            (
                "oleObject1.bin",
                docs.cfb_bytes({"\x01Ole10Native": docs.ole10native("terms.pdf", pdf)}),
                True,
            ),
            ("oleObject2.bin", legacy, True),  # an Excel 97-2003 workbook
            ("oleObject3.bin", packaged, True),  # a package wrapped in OLE
        ],
        linked="file:///C:/Users/me/elsewhere.xlsx",  # linked, not embedded: not followed
    )
    parsed = _parse(tmp_path, "report.docx", data)
    assert [s.member for s in parsed.segments] == [  # type: ignore[attr-defined]
        None,
        "Microsoft_Excel_Worksheet.xlsx",
        "terms.pdf",
        "oleObject2",
        "oleObject3",
    ]
    assert parsed.members == {  # type: ignore[attr-defined]
        "Microsoft_Excel_Worksheet.xlsx": ("xlsx", None),
        "terms.pdf": ("pdf", None),
        "oleObject2": ("xls", None),
        "oleObject3": ("docx", None),
    }
    text = parsed.text  # type: ignore[attr-defined]
    assert "## Embedded: Microsoft_Excel_Worksheet.xlsx\n\n### Sheet: Sheet" in text
    for canary in ("CANARY-EMBEDDED-NORTH", "CANARY-OLE-PDF", "CANARY-OLE-XLS", "CANARY-PACKAGE"):
        assert canary in text
    assert parsed.warnings == []  # type: ignore[attr-defined]
    chunks = chunk_document(parsed, ChunkSettings(), {}).chunks  # type: ignore[arg-type]
    assert [(c.metadata.get("attachment"), c.metadata["file_type"]) for c in chunks] == [
        (None, "docx"),
        ("Microsoft_Excel_Worksheet.xlsx", "xlsx"),
        ("terms.pdf", "pdf"),
        ("oleObject2", "xls"),
        ("oleObject3", "docx"),
    ]
    # Not read when attachments are not.
    off = _parse(tmp_path, "off.docx", data, ParseOptions(attachments=False))
    assert [s.member for s in off.segments] == [None]  # type: ignore[attr-defined]


def test_a_slide_s_object_says_its_slide_and_a_chart_s_workbook_is_left_to_its_chart(
    tmp_path: Path,
) -> None:
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    deck = Presentation()
    for title in ("Intro", "Numbers"):
        deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = title
    chart = CategoryChartData()
    chart.categories = ["Q1", "Q2"]
    chart.add_series("CANARY-CHART revenue", (4.1, 4.6))
    deck.slides[1].shapes.add_chart(
        XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(2), Inches(6), Inches(4), chart
    )
    out = io.BytesIO()
    deck.save(out)
    # The chart's own workbook sits in ppt/embeddings too, related from the chart.
    assert any(n.startswith("ppt/embeddings/") for n in zipfile.ZipFile(out).namelist())
    data = docs.with_embedded(
        out.getvalue(), "ppt/slides/slide2.xml", [("Budget.xlsx", SHEET, False)]
    )
    parsed = _parse(tmp_path, "deck.pptx", data)
    assert [(s.member, s.page) for s in parsed.segments] == [  # type: ignore[attr-defined]
        (None, 1),
        (None, 2),
        ("Budget.xlsx", 1),
    ]
    assert parsed.segments[-1].text.startswith("## Embedded on slide 2: Budget.xlsx")  # type: ignore[attr-defined]
    assert parsed.text.count("CANARY-CHART") == 1  # the chart's table, not its workbook too  # type: ignore[attr-defined]


def test_a_document_that_is_only_an_object_is_read_by_it(tmp_path: Path) -> None:
    from docx import Document

    empty = io.BytesIO()
    Document().save(empty)
    data = docs.with_embedded(empty.getvalue(), "word/document.xml", [("Sheet.xlsx", SHEET, False)])
    parsed = _parse(tmp_path, "only.docx", data)
    assert [s.member for s in parsed.segments] == ["Sheet.xlsx"]  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="nothing to index"):
        _parse(tmp_path, "e.docx", empty.getvalue())


def test_an_object_that_cannot_be_read_is_a_warning(tmp_path: Path) -> None:
    pdf = docs.pdf_bytes(["x"])
    cut = docs.ole10native("terms.pdf", pdf)[:-100]  # says more data than it holds
    broken = docs.cfb_bytes({"\x01Ole10Native": cut})
    unlabelled = docs.ole10native("scan.pdf", docs.pdf_bytes(["CANARY-UNLABELLED"]), label="")
    data = docs.with_embedded(
        docs.docx_bytes("Report", {"A": "CANARY-TEXT stays."}),
        "word/document.xml",
        [
            ("oleObject1.bin", broken, True),
            ("Broken.xlsx", SHEET[:300], False),
            ("oleObject2.bin", docs.cfb_bytes({"\x01Ole10Native": unlabelled}), True),
        ],
    )
    parsed = _parse(tmp_path, "r.docx", data)
    assert "CANARY-TEXT stays." in parsed.text  # type: ignore[attr-defined]
    # Without a label, the file is named by the path it was put in from.
    assert parsed.members["scan.pdf"] == ("pdf", None)  # type: ignore[attr-defined]
    warnings = parsed.warnings  # type: ignore[attr-defined]
    assert len(warnings) == 2
    # The stream cut short is not unwrapped: the object is tried as it is, and fails.
    assert warnings[0].startswith("attachment oleObject1: ")
    assert warnings[1].startswith("attachment Broken.xlsx: CorruptDocumentError: ")


def test_empty_error_stays_when_there_is_no_object(tmp_path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.add_picture(io.BytesIO(docs.photo(fmt="PNG")))
    out = io.BytesIO()
    doc.save(out)
    with pytest.raises(EmptyDocumentError, match="no text besides its pictures"):
        _parse(tmp_path, "photo.docx", out.getvalue())


def test_without_olefile_packages_are_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "olefile", None)  # import olefile raises ImportError
    ole = docs.cfb_bytes({"\x01Ole10Native": docs.ole10native("t.pdf", docs.pdf_bytes(["x"]))})
    data = docs.with_embedded(
        docs.docx_bytes("Report", {"A": "Text."}),
        "word/document.xml",
        [("Sheet.xlsx", SHEET, False), ("oleObject1.bin", ole, True)],
    )
    parsed = _parse(tmp_path, "r.docx", data)
    assert "CANARY-EMBEDDED-NORTH" in parsed.text  # type: ignore[attr-defined]
    assert [w.split(":")[0] for w in parsed.warnings] == ["attachment oleObject1"]  # type: ignore[attr-defined]


@contextlib.contextmanager
def olefile_stream(data: bytes) -> Iterator[bytes]:
    """The Workbook stream of an Excel 97-2003 file."""
    import olefile

    with olefile.OleFileIO(data) as ole:
        yield ole.openstream("Workbook").read()


def _with_storages(data: bytes, storages: dict[str, Any]) -> bytes:
    """A compound file ``data`` with ``storages`` added at its top."""
    import olefile

    from rag_ingest.parsers.compound import storage_tree

    with olefile.OleFileIO(data) as ole:
        tree = storage_tree(ole, [])
    return docs.cfb_bytes({**tree, **storages})


def test_objects_in_word_and_excel_97_files_are_read_after_their_text(tmp_path: Path) -> None:
    """A Word 97-2003 document keeps an object as a storage under ObjectPool, a workbook
    as a top-level MBD storage: their content had been lost (oletools' test files)."""
    text = docs.ole10native("terms.txt", b"CANARY-OLE-TXT terms and conditions")
    with olefile_stream(docs.xls_bytes([["item", "qty"], ["CANARY-OLE-XLS bolts", 40]])) as book:
        workbook = {"Workbook": book, "\x01CompObj": b"\x01\x00\xfe\xff" + bytes(24)}
    memo = _with_storages(
        docs.legacy_office("memo.doc"),
        {"ObjectPool": {"_1577691246": {"\x01Ole10Native": text}, "_1577691300": workbook}},
    )
    parsed = _parse(tmp_path, "memo.doc", memo)
    assert parsed.members == {  # type: ignore[attr-defined]
        "terms.txt": ("text", None),
        "_1577691300": ("xls", None),
    }
    members = [s.member for s in parsed.segments]  # type: ignore[attr-defined]
    assert members == [None, "terms.txt", "_1577691300"]
    assert "CANARY-OLE-TXT" in parsed.segments[1].text  # type: ignore[attr-defined]
    assert "| CANARY-OLE-XLS bolts | 40 |" in parsed.segments[2].text  # type: ignore[attr-defined]
    stock = _with_storages(
        docs.xls_bytes([["item", "count"], ["helmet", 4]]),
        {"MBD0001A2B3": {"\x01Ole10Native": text}, "_VBA_PROJECT_CUR": {"VBA": {"x": b"v"}}},
    )
    parsed = _parse(tmp_path, "stock.xls", stock)
    assert parsed.members == {"terms.txt": ("text", None)}  # type: ignore[attr-defined]
    assert parsed.text.startswith("# Sheet: Legacy")  # type: ignore[attr-defined]
    # A workbook whose sheets are empty is read for its object.
    empty = _with_storages(docs.xls_bytes([]), {"MBD0001A2B3": {"\x01Ole10Native": text}})
    assert "CANARY-OLE-TXT" in _parse(tmp_path, "empty.xls", empty).text  # type: ignore[attr-defined]


def test_objects_in_a_powerpoint_97_deck_are_read_after_its_text(tmp_path: Path) -> None:
    """A .ppt keeps an object as a compound file in an ExOleObjStg record (0x1011) of its
    stream, zlib-compressed (instance 1) or not: its content had been lost."""
    import struct
    import zlib

    import olefile

    from rag_ingest.parsers.compound import storage_tree

    def record(data: bytes, compressed: bool = True) -> bytes:
        body = struct.pack("<I", len(data)) + zlib.compress(data) if compressed else data
        return struct.pack("<HHI", 0x10 if compressed else 0, 0x1011, len(body)) + body

    text = docs.ole10native("terms.txt", b"CANARY-PPT-OBJECT terms and conditions")
    book = docs.xls_bytes([["item", "qty"], ["CANARY-PPT-XLS bolts", 40]])
    macros = docs.cfb_bytes({"VBA": {"_VBA_PROJECT": b"\xcc\x61", "dir": b"d"}})
    with olefile.OleFileIO(docs.legacy_office("deck.ppt")) as ole:
        tree = storage_tree(ole, [])
    tree["PowerPoint Document"] += (
        record(docs.cfb_bytes({"\x01Ole10Native": text}))
        + record(macros)  # a macro project: left out
        + struct.pack("<HHII", 0x10, 0x1011, 8, 100) + b"\xff" * 4  # damaged: passed over
        + record(book, compressed=False)
    )  # fmt: skip
    parsed = _parse(tmp_path, "deck.ppt", docs.cfb_bytes(tree))
    assert parsed.members == {  # type: ignore[attr-defined]
        "terms.txt": ("text", None),
        "oleObject3": ("xls", None),
    }
    plain = _parse(tmp_path, "plain.ppt", docs.legacy_office("deck.ppt"))
    assert parsed.warnings == plain.warnings  # type: ignore[attr-defined]
    segments = parsed.segments  # type: ignore[attr-defined]
    assert "CANARY-PPT-OBJECT" in segments[-2].text and "CANARY-PPT-XLS" in segments[-1].text
    # Unpacking past the unzipped-size limit: a warning, the deck's text still read.
    with olefile.OleFileIO(docs.legacy_office("deck.ppt")) as ole:
        tree = storage_tree(ole, [])
    large = docs.ole10native("large.txt", b"CANARY-LARGE words\n" * 100_000)
    tree["PowerPoint Document"] += record(docs.cfb_bytes({"\x01Ole10Native": large}))
    limited = ParseOptions(max_unzipped_size=1 << 20)
    parsed = _parse(tmp_path, "large.ppt", docs.cfb_bytes(tree), limited)
    assert parsed.members == {}  # type: ignore[attr-defined]
    assert "past 1,048,576" in parsed.warnings[-1]  # type: ignore[attr-defined]
    assert "CANARY-LARGE" not in parsed.text  # type: ignore[attr-defined]


def _ole1(class_name: str, native: bytes, format_id: int = 2) -> bytes:
    """An OLE 1 object ([MS-OLEDS] 2.2.4), as RTF's \\objdata holds one in hex."""
    import struct

    def counted(text: str) -> bytes:
        data = text.encode("cp1252") + b"\0"
        return struct.pack("<I", len(data)) + data

    head = struct.pack("<II", 0x0501, format_id) + counted(class_name) + counted("") * 2
    return head + struct.pack("<I", len(native)) + native


def test_objects_in_an_rtf_file_are_read_after_its_text(tmp_path: Path) -> None:
    """Word writes an object into RTF as an OLE 1 object in hex (\\objdata), its preview
    picture as the \\result: the object's content had been lost."""
    text = docs.ole10native("terms.txt", b"CANARY-RTF-OBJECT terms and conditions")
    book = docs.xls_bytes([["item", "qty"], ["CANARY-RTF-XLS bolts", 40]])

    def rtf_object(data: bytes, hex_width: int = 64) -> str:
        lines = [data.hex()[at : at + hex_width] for at in range(0, len(data) * 2, hex_width)]
        return (
            "{\\object\\objemb{\\*\\objclass Package}\\objw100\\objh100{\\*\\objdata\n"
            + "\n".join(lines)
            + "}{\\result{\\pict\\wmetafile8\\picw10\\pich10 0100090000}}}"
        )

    objects = (
        rtf_object(_ole1("Package", text[4:]))  # laid out as an Ole10Native stream's
        + rtf_object(b"\x01\x05\x00")  # damaged: passed over
        + rtf_object(_ole1("Excel.Sheet.8", book))
        + rtf_object(_ole1("Excel.Sheet.8", book, format_id=1))  # linked: not followed
    )
    document = "{\\rtf1\\ansi CANARY-RTF-TEXT before.\\par " + objects + "\\par After.}"
    parsed = _parse(tmp_path, "memo.rtf", document.encode())
    assert parsed.members == {  # type: ignore[attr-defined]
        "terms.txt": ("text", None),
        "object3": ("xls", None),
    }
    assert parsed.warnings == []  # type: ignore[attr-defined]
    segments = parsed.segments  # type: ignore[attr-defined]
    assert "CANARY-RTF-TEXT" in segments[0].text and "After." in segments[0].text
    assert "CANARY-RTF-OBJECT" in segments[1].text and "CANARY-RTF-XLS" in segments[2].text
    # An RTF of one object and no text of its own is read for it.
    alone = "{\\rtf1\\ansi " + rtf_object(_ole1("Package", text[4:])) + "}"
    parsed = _parse(tmp_path, "alone.rtf", alone.encode())
    assert "CANARY-RTF-OBJECT" in parsed.text  # type: ignore[attr-defined]


def _with_ole_object(package: bytes, anchor: str, data: bytes) -> bytes:
    """An OpenDocument ``package`` with an OLE object (``Object 1``, ``data``) framed
    after the first ``anchor`` in its content.xml."""
    frame = (
        '<draw:frame><draw:object-ole xlink:href="./Object 1" xlink:type="simple"/></draw:frame>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            member = source.read(info)
            if info.filename == "content.xml":
                text = member.decode()
                at = text.index(anchor) + len(anchor)
                member = (text[:at] + frame + text[at:]).encode()
            target.writestr(info, member)
        target.writestr("Object 1", data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def test_ole_objects_in_opendocument_files_are_read_after_their_text(tmp_path: Path) -> None:
    """Office saves an object into ODF as a compound file in the package
    (``draw:object-ole``): oletools' ODT, ODP and ODS had lost their text file. Here a
    workbook, an Excel 97-2003 object."""
    book = docs.xls_bytes([["item", "qty"], ["CANARY-ODF-OBJECT bolts", 40]])
    deck = docs.odp_bytes([("Agenda", "one", ""), ("Figures", "two", "")])
    files = {
        "memo.odt": (docs.odt_bytes(), "<office:text>", None),
        "deck.odp": (deck, '<draw:page draw:name="p2">', 2),  # on the second slide
        "stock.ods": (docs.ods_bytes([["item", "count"], ["helmet", 4]]), "<text:p>", None),
    }
    for name, (package, anchor, slide) in files.items():
        parsed = _parse(tmp_path, name, _with_ole_object(package, anchor, book))
        assert parsed.members == {"Object 1": ("xls", None)}, name  # type: ignore[attr-defined]
        where = f" on slide {slide}" if slide else ""
        last = parsed.segments[-1].text  # type: ignore[attr-defined]
        assert last.startswith(f"## Embedded{where}: Object 1"), name
        assert "CANARY-ODF-OBJECT bolts" in last, name
    # An object whose compressed data is damaged: a warning; the document is still read.
    package = _with_ole_object(docs.odt_bytes(), "<office:text>", book)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        member = archive.getinfo("Object 1")
    at = member.header_offset + 30 + len(member.filename) + len(member.extra) + 40
    damaged = package[:at] + bytes(64) + package[at + 64 :]
    parsed = _parse(tmp_path, "damaged.odt", damaged)
    assert parsed.members == {}  # type: ignore[attr-defined]
    assert "CANARY-ODT" in parsed.text  # type: ignore[attr-defined]
    assert "its embedded objects could not be read" in parsed.warnings[-1]  # type: ignore[attr-defined]
