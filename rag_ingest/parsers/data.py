"""Apache Parquet and Arrow files (a Hugging Face dataset's shards and its saved
``.arrow`` files, a data lake's exports, Feather files) as a table: their rows as CSV
under their column names, chunked as a CSV is (every chunk under the header; past 8
million characters in runs on every worker). Refused by name before, as data files with
no text, though a dataset of documents is nothing but text. Read by pyarrow
(Apache-2.0, extra ``data``) a batch of rows at a time.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Iterable
from typing import Any

from rag_ingest.errors import CorruptDocumentError, EmptyDocumentError, MissingExtraError
from rag_ingest.parsers.base import CsvForm, ParsedDocument, Segment

__all__ = ["parse_arrow", "parse_parquet"]

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


def parse_parquet(path: str, name: str) -> ParsedDocument:
    pyarrow = _pyarrow(name, "Parquet")
    import pyarrow.parquet as parquet

    try:
        table = parquet.ParquetFile(path)
        batches = table.iter_batches(batch_size=8192)
        return _as_table(name, table.schema_arrow.names, batches, "parquet")
    except (pyarrow.ArrowException, OSError) as exc:
        raise CorruptDocumentError(f"{name}: not a readable Parquet file: {exc}") from None


def parse_arrow(path: str, name: str) -> ParsedDocument:
    """An Arrow IPC file (Feather v2, ``.arrow``) or stream (a dataset's ``save_to_disk``)."""
    pyarrow = _pyarrow(name, "Arrow")
    import pyarrow.ipc as ipc

    try:
        with open(path, "rb") as f:
            stream = f.read(6) != b"ARROW1"
        reader = ipc.open_stream(path) if stream else ipc.open_file(path)
        batches = (
            reader if stream else (reader.get_batch(i) for i in range(reader.num_record_batches))
        )
        return _as_table(name, reader.schema.names, batches, "arrow")
    except (pyarrow.ArrowException, OSError) as exc:
        raise CorruptDocumentError(f"{name}: not a readable Arrow file: {exc}") from None


def _pyarrow(name: str, what: str) -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise MissingExtraError(f"reading {what} ({name})", "data") from exc
    return pyarrow


def _as_table(name: str, names: list[str], batches: Iterable[Any], parser: str) -> ParsedDocument:
    """Record batches as CSV text under the column names, told to the chunker."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    body = len(out.getvalue())
    rows = 0
    for batch in batches:
        columns = [column.to_pylist() for column in batch.columns]
        for row in zip(*columns, strict=True):
            writer.writerow([_cell(value) for value in row])
        rows += batch.num_rows
    if not rows:
        raise EmptyDocumentError(f"{name}: no rows")
    return ParsedDocument(
        "csv",
        [Segment(out.getvalue())],
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
