"""Apache Parquet, Arrow, ORC and Avro files (a Hugging Face dataset's shards and its
saved ``.arrow`` files, a data lake's exports, Feather files, Hive's ORC tables, a Kafka
Connect sink's Avro objects) as a table: their rows as CSV under their column names,
chunked as a CSV is (every chunk under the header). Refused before, by name as data
files with no text or as binary, though a dataset of documents is nothing but text.
Read by pyarrow (Apache-2.0) and fastavro (MIT), extra ``data``, a batch of rows at a
time; a long one in parts of its rows on every worker (:func:`table_plan`), each part
chunked where it is read.
"""

from __future__ import annotations

import csv
import datetime
import importlib
import io
import itertools
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rag_ingest.errors import CorruptDocumentError, EmptyDocumentError, MissingExtraError
from rag_ingest.parsers.base import CsvForm, ParsedDocument, Segment

__all__ = ["TablePlan", "parse_table", "read_rows", "table_plan"]

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
_WHAT = {"parquet": "Parquet", "arrow": "Arrow", "avro": "Avro", "orc": "ORC"}

T = TypeVar("T")


@dataclass
class TablePlan:
    """A long data file to be read in parts of its rows at once, each part
    chunked by the worker that reads it: the whole file's text is never in one process
    (a 153 MB Parquet shard, 231 million characters as CSV, had gone past
    ``parse.memory_limit`` read whole)."""

    path: str
    kind: str  # "parquet", "arrow", "orc" or "avro"
    parts: list[tuple[int, int]]  # rows [start, stop) of each part, in order
    warnings: list[str] = field(default_factory=list)


def parse_table(path: str, name: str, kind: str) -> ParsedDocument:
    """A Parquet, ORC or Avro file, or an Arrow IPC file (Feather v2, ``.arrow``) or
    stream (a dataset's ``save_to_disk``), whole: ``kind`` as :func:`detect` names it."""
    return _read(path, name, kind, lambda names: _as_table(name, names, kind, _rows(path, kind)))


def table_plan(path: str, name: str, kind: str, chars: int) -> TablePlan | None:
    """The :class:`TablePlan` of a Parquet, Arrow, ORC or Avro file whose data (its size
    uncompressed, about its text's as CSV; an ORC or Avro file's, its first stripe's or
    block's times) is over ``chars``, in parts of about that many, else None."""

    def plan(_: list[str]) -> TablePlan | None:
        if kind == "parquet":
            meta = _parquet(path).metadata
            rows = meta.num_rows
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        elif kind == "avro":
            rows, size = _avro_size(path)
        elif kind == "orc":
            table = _orc(path)
            rows, first = table.nrows, table.read_stripe(0) if table.nstripes else None
            size = first.nbytes * rows // max(first.num_rows, 1) if first is not None else 0
        else:
            batches = list(_arrow_batches(path))
            rows = sum(batch.num_rows for batch in batches)
            size = sum(batch.nbytes for batch in batches)
        count = min(rows, -(-size // chars))
        if count < 2:
            return None
        bounds = [rows * n // count for n in range(count + 1)]
        return TablePlan(path, kind, list(itertools.pairwise(bounds)))

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
    """``then(column names)``, the reader's failures as a corrupt document."""
    what = _WHAT[kind]
    failures: tuple[type[BaseException], ...]
    if kind == "avro":
        _module(name, what, "fastavro")
        # A file cut short or damaged: fastavro raises these, not one error of its own.
        failures = (ValueError, EOFError, KeyError, IndexError, OSError, zlib.error)
    else:
        failures = (_module(name, what, "pyarrow").ArrowException, OSError)
    try:
        if kind == "avro":
            fields = _avro_fields(path)
            names = ["value"] if fields is None else fields
        elif kind == "parquet":
            names = _parquet(path).schema_arrow.names
        elif kind == "orc":
            names = _orc(path).schema.names
        else:
            names = _arrow_reader(path).schema.names
        return then(list(names))
    except failures as exc:
        raise CorruptDocumentError(f"{name}: not a readable {what} file: {exc}") from None


def _module(name: str, what: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"reading {what} ({name})", "data") from exc


def _parquet(path: str) -> Any:
    import pyarrow.parquet as parquet

    return parquet.ParquetFile(path, memory_map=True)


def _orc(path: str) -> Any:
    import pyarrow.orc as orc

    return orc.ORCFile(path)


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


def _avro_fields(path: str) -> list[str] | None:
    """An Avro file's records' field names; None for records of another type, written
    as one column, ``value``."""
    import fastavro

    with open(path, "rb") as f:
        schema = fastavro.reader(f).writer_schema
    if isinstance(schema, dict) and schema.get("type") == "record":
        return [field["name"] for field in schema["fields"]]
    return None


def _avro_size(path: str) -> tuple[int, int]:
    """An Avro file's rows, and its text's size as CSV: its first block's, times."""
    import fastavro

    fields = _avro_fields(path)
    rows = sample = sampled = 0
    with open(path, "rb") as f:
        for block in fastavro.block_reader(f):
            if not sampled:
                records = [_avro_row(record, fields) for record in block]
                sample = sum(len(_cell(value)) + 1 for row in records for value in row)
                sampled = len(records)
            rows += block.num_records
    return rows, sample * rows // max(sampled, 1)


def _avro_row(record: Any, fields: list[str] | None) -> tuple[Any, ...]:
    return (record,) if fields is None else tuple(record.get(n) for n in fields)


def _rows(path: str, kind: str, start: int = 0, stop: int | None = None) -> Iterator[list[Any]]:
    """The rows [start, stop) (to the end: None), in batches; of a Parquet file, only
    the row groups holding them are read, of an Avro file, only its blocks holding them."""
    if kind == "avro":
        yield from _avro_rows(path, start, stop)
        return
    for batch in _batches(path, kind, start, stop):
        yield list(zip(*(column.to_pylist() for column in batch.columns), strict=True))


def _avro_rows(path: str, start: int, stop: int | None) -> Iterator[list[Any]]:
    import fastavro

    fields = _avro_fields(path)
    at = 0
    with open(path, "rb") as f:
        for block in fastavro.block_reader(f):
            rows = block.num_records
            if at + rows > start and (stop is None or at < stop):
                low, high = max(start - at, 0), rows if stop is None else min(stop - at, rows)
                records = itertools.islice(block, low, high)
                yield [_avro_row(record, fields) for record in records]
            at += rows
            if stop is not None and at >= stop:
                return


def _batches(path: str, kind: str, start: int, stop: int | None) -> Iterator[Any]:
    """A Parquet, ORC or Arrow file's record batches of rows [start, stop)."""
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
    elif kind == "orc":
        table = _orc(path)
        batches = (table.read_stripe(i) for i in range(table.nstripes))
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
    batches: Iterable[list[Any]],
    header: bool = True,
) -> ParsedDocument:
    """Batches of rows as CSV text under the column names, told to the chunker;
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
        for row in batch:
            writer.writerow([_cell(value) for value in row])
        pieces.append(out.getvalue())
        rows += len(batch)
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
