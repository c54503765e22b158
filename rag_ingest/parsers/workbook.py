"""Workbooks read as rows (python-calamine), one table per sheet: large XLSX, and the
formats docling does not read (XLS, XLSB, ODS).

docling builds an object per cell and a padded Markdown table per sheet: measured on 2
cores, a 50,000-row, 10-column sheet (34 MB of sheet XML) took 31 s and 1.9 GB, and
docling refuses a sheet past 128 MiB of XML outright. calamine (Rust, what pandas'
``engine="calamine"`` uses) reads the same sheet's values in 0.3 s and 60 MB, and a
200,000-row one (138 MB of XML) in 1.3 s. What is lost: docling's search for separate
tables within a sheet (each sheet is one table here, its first row of several values
the header).
"""

from __future__ import annotations

import datetime
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    DocumentTooLargeError,
    EncryptedDocumentError,
    MissingExtraError,
)
from rag_ingest.parsers.base import ZIP_ERRORS, ParsedDocument, Segment
from rag_ingest.parsers.decrypt import office_encrypted

__all__ = [
    "MAX_COLUMNS",
    "column_letters",
    "empty_sheets",
    "measure_sheets",
    "parse_rows",
    "sheet_lines",
    "sheet_segment",
]

# Excel's last column (XFD): a cell placed past it (a hostile index) is not padded to.
MAX_COLUMNS = 16_384


# Both readers hold a sheet's whole used range (calamine ~32 bytes a cell, even empty):
# past this many cells it cannot be read within parse.memory_limit. A real table that
# large (1,000,000 rows of 30 columns) passes the unzipped-size limit first.
MAX_SHEET_CELLS = 30_000_000
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_CELL_REF = re.compile(rb'<(?:\w+:)?c\s[^>]*?\br="([A-Z]{1,3})(\d{1,7})"')


def _column(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _area(first_col: int, first_row: int, last_col: int, last_row: int) -> int:
    return (last_row - first_row + 1) * (last_col - first_col + 1)


def _xml_parts(member: IO[bytes], size: int) -> Iterator[bytes]:
    """XML read ``size`` bytes at a time, in parts each ending before a tag's start:
    none is cut between two reads."""
    tail = b""
    while chunk := member.read(size):
        data = tail + chunk
        cut = max(data.rfind(b"<"), 0)
        yield data[:cut]
        tail = data[cut:]
    if tail:
        yield tail  # the root's closing tag, or what a file cut short ends in


def _cells_span(member: IO[bytes]) -> tuple[str, int]:
    """The range a sheet's cells (``<c r="B7">``) span, and its area in cells; streamed,
    its XML never whole."""
    top = left = sys.maxsize
    bottom = right = 0
    for data in _xml_parts(member, 1 << 20):
        for found in _CELL_REF.finditer(data):
            column, row = _column(found[1]), int(found[2])
            top, bottom = min(top, row), max(bottom, row)
            left, right = min(left, column), max(right, column)
    if not bottom:
        return "", 0
    span = f"{column_letters(left)}{top}:{column_letters(right)}{bottom}"
    return span, _area(left, top, right, bottom)


def column_letters(column: int) -> str:
    """A column's letters: 1 -> A, 28 -> AB."""
    letters = ""
    while column:
        column, remainder = divmod(column - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def measure_sheets(path: str, name: str) -> int:
    """The decompressed size of an XLSX workbook's sheets and shared strings, from the
    archive's directory. :class:`DocumentTooLargeError` first for a sheet whose used
    range (its ``<dimension>``, near the start of its XML) holds over
    :data:`MAX_SHEET_CELLS`: typically one stray value far from the data, which made
    docling take 22 s and 2.4 GB before failing, and calamine abort on a 512 GB
    allocation."""
    try:
        with zipfile.ZipFile(path) as archive:
            size = 0
            for info in archive.infolist():
                if info.filename == "xl/sharedStrings.xml":
                    size += info.file_size
                if not info.filename.startswith("xl/worksheets/"):
                    continue
                size += info.file_size
                if not info.filename.endswith(".xml"):
                    continue  # a sheet's relationships, under _rels/
                with archive.open(info) as member:
                    found = _DIMENSION.search(member.read(4096))
                if found is None or found.group(3) is None:
                    continue
                first_col, first_row, last_col, last_row = found.groups()
                span = (b"%s%s:%s%s" % (first_col, first_row, last_col, last_row)).decode()
                cells = _area(_column(first_col), int(first_row), _column(last_col), int(last_row))
                if cells > MAX_SHEET_CELLS:
                    # The dimension a writer gives may span more than the cells it wrote
                    # (libxlsxwriter's takes in a comment's cell): the cells decide.
                    with archive.open(info) as member:
                        span, cells = _cells_span(member)
                if cells > MAX_SHEET_CELLS:
                    raise DocumentTooLargeError(
                        f"{name}: a sheet ({info.filename}) spans {span}, {cells:,} cells, "
                        "too many to read: is there a stray value far from the data? "
                        "(Ctrl+End in Excel goes to it.) Delete it and save again"
                    )
            return size
    except (RuntimeError, *ZIP_ERRORS) as exc:  # a broken sheet too
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc


def _cell(value: Any) -> str:
    if value is None or value == "":  # most cells of a sheet's used range
        return ""
    if type(value) is str:
        text = value
        if not len(value) % 2 and not value[1::2].strip("\0"):
            # A 16-bit string read as 8-bit (calamine, POI's ex41187-19267.xls: "H\0i\0").
            text = value[::2]
    elif isinstance(value, datetime.datetime):
        text = value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    elif isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = str(value)
    # One Markdown table row per sheet row: a pipe or line break in a cell would end it.
    return " ".join(text.replace("|", "\\|").split())


_XML_READ = 1 << 22  # a sheet's XML is read this many bytes at a time


def xlsx_number_formats(path: str) -> dict[int, dict[int, dict[int, str]]]:
    """An XLSX's number cells' formats, as :func:`biff.xls_number_formats` gives an
    .xls's: by sheet position, row and column (0-based), those not General. Its styles
    part names each cell style's format; a sheet's cells (``<c r="B7" s="3">``, as Excel,
    LibreOffice and openpyxl write them) are found in its XML read in parts, by a pattern
    of the styles whose format is not General (a sheet of none is not read). A part
    that cannot be read leaves its cells to their values."""
    from rag_ingest.parsers.base import XML_ERRORS, local_name
    from rag_ingest.parsers.embedded import relationships
    from rag_ingest.parsers.number_formats import BUILTIN, reformats
    from rag_ingest.parsers.ooxml_comments import _elements, _listed, _main_part, _targets

    found: dict[int, dict[int, dict[int, str]]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = _main_part(archive)
            if workbook is None:
                return found
            styles = _targets(workbook, relationships(archive, workbook), b"/styles")
            if not styles:
                return found
            codes: dict[int, str] = dict(BUILTIN)
            kept: dict[int, str] = {}
            for element in _elements(archive, styles[0], "numFmt", "cellXfs"):
                if local_name(element.tag) == "numFmt":
                    codes[int(element.get("numFmtId", "0"))] = element.get("formatCode", "")
                    continue
                for style, xf in enumerate(e for e in element if local_name(e.tag) == "xf"):
                    code = codes.get(int(xf.get("numFmtId", "0")), "General")
                    if reformats(code):
                        kept[style] = code
            if not kept:
                return found
            styled = re.compile(
                rb'<(?:\w+:)?c r="([A-Z]{1,3})(\d{1,7})"(?: t="\w+")? s="('
                + b"|".join(str(style).encode() for style in kept)
                + rb')"'
            )
            for position, (_, part) in enumerate(_listed(archive, workbook, "sheet"), 1):
                if "/worksheets/" not in f"/{part}":
                    continue  # a chart sheet
                try:
                    cells = _styled_cells(archive, part, styled, kept)
                except _Unplaced:
                    cells = _placed_cells(archive, part, kept)
                if cells:
                    found[position] = cells
    except (KeyError, ValueError, *ZIP_ERRORS, *XML_ERRORS):
        return found
    return found


class _Unplaced(Exception):
    """A sheet writes cells without their place (``<c s="3">``, the column after the
    last): they are placed by the rows and cells before them."""


def _sheet_parts(archive: zipfile.ZipFile, part: str) -> Iterator[bytes]:
    """A sheet's XML in parts of :data:`_XML_READ` bytes (:func:`_xml_parts`)."""
    with archive.open(part) as member:
        yield from _xml_parts(member, _XML_READ)


def _styled_cells(
    archive: zipfile.ZipFile, part: str, styled: re.Pattern[bytes], kept: dict[int, str]
) -> dict[int, dict[int, str]]:
    """The cells of ``kept`` styles, by a pattern of them: no tag but theirs is made a
    Python object. Raises :class:`_Unplaced` for a sheet with cells not placed."""
    cells: dict[int, dict[int, str]] = {}
    for data in _sheet_parts(archive, part):
        if data.count(b"<c ") + data.count(b"<c>") != data.count(b'<c r="'):
            raise _Unplaced
        for match in styled.finditer(data):
            cells.setdefault(int(match[2]) - 1, {})[_column(match[1]) - 1] = kept[int(match[3])]
    return cells


_ROW_OR_CELL = re.compile(rb"<(?:\w+:)?(row|c)\b([^>]*)>")
_PLACE = re.compile(rb'\br="([A-Z]{0,3})(\d+)"')
_STYLE = re.compile(rb'\bs="(\d+)"')


def _placed_cells(
    archive: zipfile.ZipFile, part: str, kept: dict[int, str]
) -> dict[int, dict[int, str]]:
    """The cells of ``kept`` styles, each row and cell tag read in turn: one without its
    place is in the row after the last, or the column after the last."""
    cells: dict[int, dict[int, str]] = {}
    row = column = -1
    for data in _sheet_parts(archive, part):
        for tag, attributes in _ROW_OR_CELL.findall(data):
            place = _PLACE.search(attributes)
            if tag == b"row":
                row, column = int(place[2]) - 1 if place else row + 1, -1
                continue
            column = _column(place[1]) - 1 if place and place[1] else column + 1
            style = _STYLE.search(attributes)
            if style and int(style[1]) in kept:
                cells.setdefault(row, {})[column] = kept[int(style[1])]
    return cells


def _as_shown(
    rows: Iterable[Sequence[Any]],
    formats: dict[int, dict[int, str]],
    left: int,
    given: bool = False,
) -> Iterator[Sequence[Any]]:
    """calamine's rows, each number as its cell's format shows it (``formats``, by row,
    then column: parsers/biff.py), or as the text ``given`` for it (an ODS's). python-
    calamine's rows start at the sheet's first row but at its first used column,
    ``left`` (its issue #177; the tests hold it to that)."""
    from rag_ingest.parsers.number_formats import shown

    for r, row in enumerate(rows):
        if (formatted := formats.get(r)) is None:
            yield row
            continue
        cells = list(row)
        for column, fmt in formatted.items():
            c = column - left
            if 0 <= c < len(cells) and type(cells[c]) in (int, float):
                text = fmt if given else shown(cells[c], fmt)
                cells[c] = cells[c] if text is None else text
        yield cells


def sheet_segment(title: str, lines: list[str], page: int) -> Segment:
    """A sheet's lines (:func:`sheet_lines`) under ``# Sheet: title``, its position its page."""
    return Segment(f"# Sheet: {title}\n\n" + "\n".join(lines), page=page)


def empty_sheets(name: str) -> BlankDocumentError:
    """The error of a workbook whose every sheet is empty."""
    return BlankDocumentError(f"{name}: every sheet is empty: nothing to index")


def sheet_lines(rows: Iterable[Sequence[Any]]) -> list[str]:
    """A sheet as Markdown: lines of one value above the table (titles, notes), then the
    first row of several values as the header, then every non-empty row."""
    lines: list[str] = []
    width = 0
    for row in rows:
        cells = [_cell(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if not width:
            if sum(1 for c in cells if c) < 2:
                lines.append(next(c for c in cells if c))
                continue
            width = len(cells)
            if lines:
                lines.append("")
            lines.append("| " + " | ".join(cells) + " |")
            lines.append("|" + "---|" * width)
            continue
        cells.extend([""] * (width - len(cells)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# Whitespace between a spreadsheet's table elements (rows, cells): calamine takes it for a
# cell's content and fails ("Expecting 'table-cell', found Text"), so an ODS written
# pretty-printed (by KOffice, odfpy's examples, a script) could not be opened.
_BEFORE_TABLE_TAGS = re.compile(rb">\s+(?=</?table:)")
_ENCRYPTION_DATA = re.compile(
    rb"<manifest:encryption-data\b[^>]*/>|<manifest:encryption-data\b.*?</manifest:encryption-data>",
    re.DOTALL,
)


def _ods_encrypted(path: str) -> bool:
    from rag_ingest.parsers.opendoc import content_encrypted

    try:
        with zipfile.ZipFile(path) as archive:
            return content_encrypted(archive.read("META-INF/manifest.xml"))
    except (KeyError, OSError, *ZIP_ERRORS):
        return False


def _compacted_ods(path: str, reader: Any) -> Any:
    """The workbook at ``path`` opened by ``reader`` with the whitespace between its table
    elements taken out and its manifest without encryption data (calamine refuses one
    whose macro library is password-protected, its content not: LibreOffice's
    tdf131296_new.ods), or None when it has neither or still cannot be opened."""
    from io import BytesIO

    out = BytesIO()
    try:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as copy:
            content = source.read("content.xml")
            compact = _BEFORE_TABLE_TAGS.sub(b">", content)
            manifest = source.read("META-INF/manifest.xml")
            plain = _ENCRYPTION_DATA.sub(b"", manifest)
            if compact == content and plain == manifest:
                return None
            changed = {"content.xml": compact, "META-INF/manifest.xml": plain}
            for info in source.infolist():
                member = changed.get(info.filename) or source.read(info)
                copy.writestr(info, member)
        out.seek(0)
        return reader.from_filelike(out)
    except MemoryError:
        raise
    except Exception:  # not a zip, no content part, or calamine's reason is another
        return None


def parse_rows(
    path: str, name: str, file_type: str = "xlsx", why: str | None = None
) -> ParsedDocument:
    """Each worksheet as ``# Sheet: name`` and its rows, numbered as docling numbers
    them (the sheet's position, as a page). Chart sheets have no rows. ``file_type``:
    xlsx, xlsb, xls or ods. ``why`` docling did not read an xlsx, for a warning."""
    try:
        from python_calamine import CalamineWorkbook, PasswordError, SheetTypeEnum
    except ImportError as exc:
        raise MissingExtraError(f"{file_type} parsing (python-calamine)", "office") from exc
    try:
        # By content: from a path, calamine picks its reader by the name's extension, so
        # an .xls saved as "report.xlsx" would fail as a broken zip.
        with open(path, "rb") as f:
            workbook = CalamineWorkbook.from_filelike(f)
    except MemoryError:
        raise  # the worker's memory limit (ParserMemoryError), not a corrupt file
    except Exception as exc:  # calamine raises its own errors on a bad archive
        # An encrypted .xls: calamine "cannot detect" its format, not a PasswordError.
        if isinstance(exc, PasswordError) or office_encrypted(path):
            raise EncryptedDocumentError(
                f"{name}: password-protected: remove the password, or save a copy without one"
            ) from exc
        if file_type == "ods" and _ods_encrypted(path):
            raise EncryptedDocumentError(
                f"{name}: password-protected (an encrypted OpenDocument file): save a "
                "copy without a password"
            ) from exc
        reopened = _compacted_ods(path, CalamineWorkbook) if file_type == "ods" else None
        if reopened is None:
            raise CorruptDocumentError(f"{name}: {file_type} could not be opened ({exc})") from exc
        workbook = reopened
    segments: list[Segment] = []
    formats: dict[int, dict[int, dict[int, str]]] = {}
    if file_type == "xls":
        from rag_ingest.parsers.biff import xls_number_formats

        formats = xls_number_formats(path)
    elif file_type == "xlsx":
        formats = xlsx_number_formats(path)
    elif file_type == "ods":
        from rag_ingest.parsers.opendoc import ods_shown_numbers

        formats = ods_shown_numbers(path)
    try:
        for number, sheet in enumerate(workbook.sheets_metadata, start=1):
            if sheet.typ != SheetTypeEnum.WorkSheet:
                continue
            try:
                read = workbook.get_sheet_by_index(number - 1)
                rows: Iterable[Sequence[Any]] = read.iter_rows()
                if number in formats and read.start is not None:
                    rows = _as_shown(rows, formats[number], read.start[1], file_type == "ods")
                lines = sheet_lines(rows)
            except MemoryError:
                raise
            except Exception as exc:
                raise CorruptDocumentError(
                    f"{name}: sheet {sheet.name!r} could not be read ({exc})"
                ) from exc
            if lines:
                segments.append(sheet_segment(sheet.name, lines, number))
    finally:
        workbook.close()
    if not segments:
        raise empty_sheets(name)
    warnings = []
    if why:
        warnings.append(
            f"{name}: {why}; read as rows by calamine, each sheet one table under its "
            "first row of several values"
        )
    return ParsedDocument(
        file_type,
        segments,
        parser="calamine-rows",
        pages=len(workbook.sheets_metadata),
        warnings=warnings,
    )
