"""Apache Parquet and Arrow files (a Hugging Face dataset's shards and its saved
``.arrow`` files, a data lake's exports, Feather files) as a table: their rows as CSV
under their column names, chunked as a CSV is (every chunk under the header). Refused by
name before, as data files with no text, though a dataset of documents is nothing but
text. Read by pyarrow (Apache-2.0, extra ``data``) a batch of rows at a time; a long one
in parts of its rows on every worker (:func:`table_plan`), each part chunked where it is
read.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rag_ingest.errors import CorruptDocumentError, EmptyDocumentError, MissingExtraError
from rag_ingest.parsers.base import CsvForm, ParsedDocument, Segment

__all__ = ["TablePlan", "parse_arrow", "parse_parquet", "read_rows", "table_plan"]

# The CSV the rows are written as, told to the chunker as is, with the header: sniffed,
# columns named by numbers over numbers (pandas' 0, 1, ...) passed for a row of data.
_DIALECT = {
    "delimiter": ",",
    "doublequote": True,
    "escapechar": None,
    "quotechar": '"',
    "quoting": csv.QUOTE_MINIMAL,
    "skipinitialspace": False,
}
_BATCH_ROWS = 8192

T = TypeVar("T")


@dataclass
class TablePlan:
    """A long Parquet or Arrow file to be read in parts of its rows at once, each part
    chunked by the worker that reads it: the whole file's text is never in one process
    (a 153 MB Parquet shard, 231 million characters as CSV, had gone past
    ``parse.memory_limit`` read whole)."""

    path: str
    kind: str  # "parquet" or "arrow"
    names: list[str]
    parts: list[tuple[int, int]]  # rows [start, stop) of each part, in order
    warnings: list[str] = field(default_factory=list)


def parse_parquet(path: str, name: str) -> ParsedDocument:
    return _whole(path, name, "parquet")


def parse_arrow(path: str, name: str) -> ParsedDocument:
    """An Arrow IPC file (Feather v2, ``.arrow``) or stream (a dataset's ``save_to_disk``)."""
    return _whole(path, name, "arrow")


def _whole(path: str, name: str, kind: str) -> ParsedDocument:
    return _read(path, name, kind, lambda names: _as_table(name, names, kind, _rows(path, kind)))


def table_plan(path: str, name: str, kind: str, chars: int) -> TablePlan | None:
    """The :class:`TablePlan` of a Parquet or Arrow file whose data (its size uncompressed,
    about its text's as CSV) is over ``chars``, in parts of about that many, else None."""

    def plan(names: list[str]) -> TablePlan | None:
        if kind == "parquet":
            meta = _parquet(path).metadata
            rows = meta.num_rows
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        else:
            batches = list(_arrow_batches(path))
            rows = sum(batch.num_rows for batch in batches)
            size = sum(batch.nbytes for batch in batches)
        count = min(rows, -(-size // chars))
        if count < 2:
            return None
        bounds = [rows * n // count for n in range(count + 1)]
        return TablePlan(path, kind, names, list(itertools.pairwise(bounds)))

    return _read(path, name, kind, plan)


def read_rows(plan: TablePlan, name: str, part: int) -> ParsedDocument:
    """One part of a :class:`TablePlan`'s rows as a table; the first part's text begins
    with the header, the others' are told it, so the parts' texts joined are the whole's."""
    start, stop = plan.parts[part]
    return _read(
        plan.path,
        name,
        plan.kind,
        lambda names: _as_table(
            name, names, plan.kind, _rows(plan.path, plan.kind, start, stop), header=not part
        ),
    )


def _read(path: str, name: str, kind: str, then: Callable[[list[str]], T]) -> T:
    """``then(column names)``, pyarrow's failures as a corrupt document."""
    pyarrow = _pyarrow(name, "Parquet" if kind == "parquet" else "Arrow")
    try:
        if kind == "parquet":
            names = _parquet(path).schema_arrow.names
        else:
            names = _arrow_reader(path).schema.names
        return then(list(names))
    except (pyarrow.ArrowException, OSError) as exc:
        what = "Parquet" if kind == "parquet" else "Arrow"
        raise CorruptDocumentError(f"{name}: not a readable {what} file: {exc}") from None


def _pyarrow(name: str, what: str) -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise MissingExtraError(f"reading {what} ({name})", "data") from exc
    return pyarrow


def _parquet(path: str) -> Any:
    import pyarrow.parquet as parquet

    return parquet.ParquetFile(path, memory_map=True)


def _arrow_reader(path: str) -> Any:
    import pyarrow
    import pyarrow.ipc as ipc

    with open(path, "rb") as f:
        stream = f.read(6) != b"ARROW1"
    source = pyarrow.memory_map(path)  # batches read in place, not copied in
    return ipc.open_stream(source) if stream else ipc.open_file(source)


def _arrow_batches(path: str) -> Iterator[Any]:
    reader = _arrow_reader(path)
    if hasattr(reader, "num_record_batches"):  # a file: its batches by index
        return (reader.get_batch(i) for i in range(reader.num_record_batches))
    return iter(reader)


def _rows(path: str, kind: str, start: int = 0, stop: int | None = None) -> Iterator[Any]:
    """The record batches of rows [start, stop) (to the end: None); of a Parquet file,
    only the row groups holding them are read."""
    at = 0
    if kind == "parquet":
        table = _parquet(path)
        groups: list[int] = []
        row = 0  # the first row of group i
        for i in range(table.metadata.num_row_groups):
            rows = table.metadata.row_group(i).num_rows
            if row + rows > start and (stop is None or row < stop):
                at = at if groups else row
                groups.append(i)
            row += rows
        batches = table.iter_batches(batch_size=_BATCH_ROWS, row_groups=groups)
    else:
        batches = _arrow_batches(path)
    for batch in batches:
        rows = batch.num_rows
        low, high = max(start - at, 0), rows if stop is None else min(stop - at, rows)
        if low < high:
            yield batch.slice(low, high - low) if (low, high) != (0, rows) else batch
        at += rows
        if stop is not None and at >= stop:
            return


def _as_table(
    name: str,
    names: list[str],
    parser: str,
    batches: Iterable[Any],
    header: bool = True,
) -> ParsedDocument:
    """Record batches as CSV text under the column names, told to the chunker;
    ``header``: whether the text begins with them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(names)
    # A batch's text at a time, joined once: one growing buffer held the text four
    # times over (UCS-4) before its copy out, 2.3 GB of address space for 231 MB.
    pieces = [out.getvalue()]
    body = len(pieces[0])
    rows = 0
    for batch in batches:
        out.seek(0)
        out.truncate()
        columns = [column.to_pylist() for column in batch.columns]
        for row in zip(*columns, strict=True):
            writer.writerow([_cell(value) for value in row])
        pieces.append(out.getvalue())
        rows += batch.num_rows
    if not rows:
        raise EmptyDocumentError(f"{name}: no rows")
    return ParsedDocument(
        "csv",
        [Segment("".join(pieces))],
        parser=parser,
        csv_form=CsvForm(dict(_DIALECT), list(names), 0, body, 0),
    )


def _cell(value: Any) -> str:
    """A value as a CSV cell: nested values as JSON, bytes by their size only."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return f"[binary data, {len(value):,} bytes]"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
