from __future__ import annotations

from pathlib import Path

import pytest

from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.number_formats import shown

ACCOUNTING = '_("$"* #,##0.00_);_("$"* \\(#,##0.00\\);_("$"* "-"??_);_(@_)'


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (0.0802990325417766, "0.00%", "8.03%"),  # Apache POI's 12843-1.xls
        (0.5, "0%", "50%"),
        (0.25, "0%;[Red]-0%", "25%"),
        (8253465, "#,##0", "8,253,465"),
        (1e6, "#,##0.00", "1,000,000.00"),
        (1234.5, '"$"#,##0.00', "$1,234.50"),
        (-1234.5, '"$"#,##0.00', "-$1,234.50"),  # one section: its minus before it all
        (-0.0, '"$"#,##0.00', "$0.00"),  # a formula's -0.0 had read "$-0.00"
        (1234.5, "[$€-407] #,##0.00", "€ 1,234.50"),
        (-1234.5, "#,##0.00_);[Red](#,##0.00)", "(1,234.50)"),  # the negative's section
        (1234.5, ACCOUNTING, "$1,234.50"),
        (-1234.5, ACCOUNTING, "$(1,234.50)"),
        (0, ACCOUNTING, "$-"),  # a zero with no "0" to hold its place: no digit
        (1234567, '#,##0,"K"', "1,235K"),  # a trailing comma scales by a thousand
        (2.25, "0.0", "2.3"),  # half away from zero, as Excel rounds
        # Excel shows 15 significant digits: a float a hair under the half rounds up.
        (13.684999999999997, "0.00", "13.69"),
        (347.99232604148267, "0.000000000000000", "347.992326041483000"),
        # A negative section with no sign of its own (shown in red): the sign is kept.
        (-2.4697723375626537, "#,##0.00000000;[Red]#,##0.00000000", "-2.46977234"),
        (7, "000", "007"),
        (0.5, "#.##", ".5"),
        (0.123456, "0.0#", "0.12"),
        (0.1, "0.0#", "0.1"),
        (3, '0" kg"', "3 kg"),
        (3, "0\\ \\k\\g", "3 kg"),
        # Past the default decimal context's 28 digits, which had failed the parse.
        (1e20, "0.00000000000000", "100000000000000000000.00000000000000"),
        (1e300, "#,##0", f"1{',000' * 100}"),
    ],
)
def test_a_number_is_read_as_its_format_shows_it(value: float, fmt: str, text: str) -> None:
    assert shown(value, fmt) == text


@pytest.mark.parametrize(
    "fmt",
    [
        "General",
        "@",
        "mm-dd-yy",  # dates and times: their readers give dates
        "[h]:mm",
        "0.00E+00",  # scientific
        "# ?/?",  # a fraction
        "000-00-0000",  # digits in two places
        "[>10]0;0.0",  # a condition
        '0.00;-0.00;"zero"',  # for a zero, text alone: the value says more
        "0." + "0" * 400,  # more decimals than digits can be shown
    ],
)
def test_a_format_not_of_numbers_leaves_the_bare_value(fmt: str) -> None:
    assert shown(15 if "[>" in fmt else 0 if "zero" in fmt else 1234.5, fmt) is None


def test_an_xlsx_workbooks_numbers_are_read_as_shown(tmp_path: Path) -> None:
    # Read as bare values, a percentage had lost its meaning: "usage 0.5" for 50%.
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Region", "Usage", "Revenue", "Units", "Code"])
    sheet.append(["North", 0.0802990325417766, 8253465, 12, 7])
    sheet.append(["South", 0.5, -1234.5, 3.25, 42])
    for row in (2, 3):
        sheet.cell(row, 2).number_format = "0.00%"
        sheet.cell(row, 3).number_format = '"$"#,##0.00'
        sheet.cell(row, 5).number_format = "000"
    sheet["C4"] = -1234.5
    # Excel's built-in accounting format, by its number: openpyxl's string for it lacks
    # its semicolons, so its sections ran into one.
    from openpyxl.styles.numbers import BUILTIN_FORMATS

    sheet["C4"].number_format = BUILTIN_FORMATS[44]
    sheet["A4"] = "Margin"
    sheet["B4"] = 0.75  # shown as text that looks like a formula: still text
    sheet["B4"].number_format = '"=" 0%'
    book.save(tmp_path / "sales.xlsx")
    text = parse_file(str(tmp_path / "sales.xlsx"), "sales.xlsx", ParseOptions()).text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    assert rows[0] == ["Region", "Usage", "Revenue", "Units", "Code"]
    assert rows[2] == ["North", "8.03%", "$8,253,465.00", "12", "007"]
    assert rows[3] == ["South", "50.00%", "-$1,234.50", "3.25", "042"]
    assert rows[4][:3] == ["Margin", "= 75%", "$(1,234.50)"]


def test_an_xls_workbooks_numbers_are_read_as_shown(tmp_path: Path) -> None:
    # calamine gives values alone: Apache POI's 12843-1.xls read 0.0802990325417766
    # and 8253465 where Excel shows 8.03% and 8,253,465. The formats come from the
    # workbook's FORMAT and XF records and each number's cell record.
    import io

    import xlwt

    book = xlwt.Workbook()
    first = book.add_sheet("Notes")
    first.write(0, 0, "no numbers here")
    sheet = book.add_sheet("Usage")
    percent = xlwt.easyxf(num_format_str="0.00%")
    money = xlwt.easyxf(num_format_str='"$"#,##0.00')
    # The table starts at C3: calamine's rows start at the first used cell.
    for c, title in enumerate(["Region", "Usage", "Revenue", "Units"]):
        sheet.write(2, 2 + c, title)
    for r, (region, usage, revenue, units) in enumerate(
        [("North", 0.0802990325417766, 8253465, 12), ("South", 0.5, -1234.5, 3.25)], start=3
    ):
        sheet.write(r, 2, region)
        sheet.write(r, 3, usage, percent)
        sheet.write(r, 4, revenue, money)
        sheet.write(r, 5, units)
    sheet.write(6, 3, 0.25, percent)  # alone: an RK record (a row's run is a MULRK)
    data = io.BytesIO()
    book.save(data)
    (tmp_path / "usage.xls").write_bytes(data.getvalue())
    text = parse_file(str(tmp_path / "usage.xls"), "usage.xls", ParseOptions()).text
    assert "| North | 8.03% | $8,253,465.00 | 12 |" in text
    assert "| South | 50.00% | -$1,234.50 | 3.25 |" in text
    assert "|  | 25.00% |  |  |" in text


def test_an_xls_number_run_record_gives_each_cell_its_format(tmp_path: Path) -> None:
    # Excel writes a row's run of numbers as one MULRK record, an XF index each.
    import struct

    from rag_ingest.parsers.biff import xls_number_formats
    from tests import docs

    def record(kind: int, data: bytes) -> bytes:
        return struct.pack("<HH", kind, len(data)) + data

    fmt = b"0.0%"
    xf = [record(0x00E0, struct.pack("<HH", 0, number) + bytes(16)) for number in (0, 10, 3)]
    head = record(0x0809, bytes(16)) + record(0x041E, struct.pack("<HHB", 200, len(fmt), 0) + fmt)
    head += b"".join(xf) + record(0x00E0, struct.pack("<HH", 0, 200) + bytes(16))
    sheet_at = len(head) + len(record(0x0085, bytes(6) + b"\x01\x00S")) + len(record(0x000A, b""))
    head += record(0x0085, struct.pack("<I", sheet_at) + b"\x00\x00\x01\x00S")
    head += record(0x000A, b"")
    runs = struct.pack("<HH", 4, 1) + b"".join(struct.pack("<HI", xf, 0) for xf in (1, 0, 3, 2))
    sheet = (
        record(0x0809, bytes(16))
        + record(0x00BD, runs + struct.pack("<H", 4))
        + record(0x000A, b"")
    )
    path = tmp_path / "run.xls"
    path.write_bytes(docs.cfb_bytes({"Workbook": head + sheet}))
    assert xls_number_formats(str(path)) == {1: {4: {1: "0.00%", 3: "0.0%", 4: "#,##0"}}}


def test_a_large_xlsx_workbooks_numbers_are_read_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past parse.xlsx_stream_size an XLSX is read by calamine, values alone: its
    # numbers had read bare where docling's reading of a smaller one showed them.
    import openpyxl

    from rag_ingest.parsers.office import parse_office
    from rag_ingest.parsers.workbook import xlsx_number_formats

    book = openpyxl.Workbook()
    book.create_chartsheet("Chart")  # numbered among the sheets, no cells
    sheet = book.create_sheet("Usage")
    sheet["C3"], sheet["D3"] = "Region", "Usage"
    for r, usage in enumerate([0.0802990325417766, 0.5, 0.25], start=4):
        sheet.cell(r, 3).value = f"R{r}"
        sheet.cell(r, 4).value = usage
        sheet.cell(r, 4).number_format = "0.00%"
        sheet.cell(r, 5).value = 1234.5 * r
        sheet.cell(r, 5).number_format = '"$"#,##0.00'
    book.save(tmp_path / "big.xlsx")
    formats = xlsx_number_formats(str(tmp_path / "big.xlsx"))
    assert formats[3][3] == {3: "0.00%", 4: '"$"#,##0.00'}
    # Read in parts, a cell's tag cut between two is still found.
    from rag_ingest.parsers import workbook

    for size in (7, 64, 333):
        monkeypatch.setattr(workbook, "_XML_READ", size)
        assert xlsx_number_formats(str(tmp_path / "big.xlsx")) == formats
    monkeypatch.undo()
    parsed = parse_office(
        str(tmp_path / "big.xlsx"),
        "big.xlsx",
        "xlsx",
        max_unzipped_size=1 << 30,
        max_zip_ratio=1000,
        xlsx_stream_size=1,  # read by calamine
    )
    assert parsed.parser == "calamine-rows"
    assert "| R4 | 8.03% | $4,938.00 |" in parsed.text
    assert "| R6 | 25.00% | $7,407.00 |" in parsed.text


def test_an_xlsx_sheets_cells_without_their_place_are_placed_in_turn(tmp_path: Path) -> None:
    # A writer may leave out a cell's place (<c s="3">: the column after the last), and a
    # row's (the row after the last): Apache POI's 54288.xlsx has 94 places for 2,048
    # cells, whose formats had been missed.
    import io
    import re

    import openpyxl

    from rag_ingest.parsers.workbook import xlsx_number_formats
    from tests import docs

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B2"] = "Usage"
    sheet["B3"], sheet["C3"], sheet["D3"] = "North", 0.0803, 1234.5
    sheet["B4"], sheet["C4"], sheet["D4"] = "South", 0.5, 99
    for row in (3, 4):
        sheet.cell(row, 3).number_format = "0.00%"
        sheet.cell(row, 4).number_format = "#,##0.00"
    book.save(out := io.BytesIO())

    def unplaced(xml: str) -> str:
        xml = re.sub(r'<c r="[C-D]\d+"', "<c", xml)  # a row's later cells
        return xml.replace('<row r="4"', "<row")  # the row after the last

    package = docs._repacked(out.getvalue(), {"xl/worksheets/sheet1.xml": unplaced}, {})
    (tmp_path / "unplaced.xlsx").write_bytes(package)
    formats = xlsx_number_formats(str(tmp_path / "unplaced.xlsx"))
    assert formats == {1: {2: {2: "0.00%", 3: "#,##0.00"}, 3: {2: "0.00%", 3: "#,##0.00"}}}


def test_an_ods_percentages_and_amounts_are_read_as_shown(tmp_path: Path) -> None:
    # calamine gives an ODS's values alone: 0.0803 for the "8.03%" LibreOffice shows,
    # 1234.5 for "1.234,50 €". The cell's own text says how it is shown.
    from rag_ingest.parsers.opendoc import ods_shown_numbers
    from tests import docs

    def cell(kind: str, value: str, text: str, attributes: str = "") -> str:
        number = f' office:value="{value}"' if value else ""
        return (
            f'<table:table-cell office:value-type="{kind}"{number}{attributes}>'
            f"<text:p>{text}</text:p></table:table-cell>"
        )

    def row(*cells: str, attributes: str = "") -> str:
        return f"<table:table-row{attributes}>{''.join(cells)}</table:table-row>"

    blank = '<table:table-cell table:number-columns-repeated="2"/>'
    body = (
        '<table:table table:name="Rate"><table:table-row>'
        + cell("percentage", "0.05", "5%")
        + "</table:table-row></table:table>"
        '<table:table table:name="Usage">'
        '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        + row(
            blank,
            cell("string", "", "Region"),
            cell("string", "", "Usage"),
            cell("string", "", "Price"),
        )
        + row(
            blank,
            cell("string", "", "North"),
            cell("percentage", "0.0802990325417766", "8.03%"),
            cell("currency", "1234.5", "1.234,50 €", ' office:currency="EUR"'),
        )
        + row(
            blank,
            cell("string", "", "Same"),
            cell("percentage", "0.5", "50%"),
            cell("float", "3.25", "3.25"),
            attributes=' table:number-rows-repeated="2"',
        )
        + "</table:table>"
    )
    (tmp_path / "usage.ods").write_bytes(docs.odf_bytes("spreadsheet", body))
    assert ods_shown_numbers(str(tmp_path / "usage.ods")) == {
        1: {0: {0: "5%"}},
        2: {3: {3: "8.03%", 4: "1.234,50 €"}, 4: {3: "50%"}, 5: {3: "50%"}},
    }
    text = parse_file(str(tmp_path / "usage.ods"), "usage.ods", ParseOptions()).text
    assert text.startswith("# Sheet: Rate\n\n5%\n")
    assert "| North | 8.03% | 1.234,50 € |" in text
    assert text.count("| Same | 50% | 3.25 |") == 2  # a float's value as it is
