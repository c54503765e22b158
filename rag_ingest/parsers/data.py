"""Apache Parquet files (a Hugging Face dataset's shards, a data lake's exports) as a
table: their rows as CSV under their column names, chunked as a CSV is (every chunk
under the header; past 8 million characters in runs on every worker). Refused by name
before, as a data file with no text, though a dataset of documents is nothing but text.
Read by pyarrow (Apache-2.0, extra ``data``) a row group at a time.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from typing import Any

from rag_ingest.errors import CorruptDocumentError, EmptyDocumentError, MissingExtraError
from rag_ingest.parsers.base import CsvForm, ParsedDocument, Segment

__all__ = ["parse_parquet"]

# The CSV the rows are written as, told to the chunker as is: sniffed, a text column
# full of semicolons could pass for the delimiter.
_DIALECT = {
    "delimiter": ",",
    "doublequote": True,
    "escapechar": None,
    "quotechar": '"',
    "quoting": csv.QUOTE_MINIMAL,
    "skipinitialspace": False,
}


def parse_parquet(path: str, name: str) -> ParsedDocument:
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise MissingExtraError(f"reading Parquet ({name})", "data") from exc
    try:
        table = parquet.ParquetFile(path)
        names = table.schema_arrow.names
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        body = out.tell()
        rows = 0
        for batch in table.iter_batches(batch_size=8192):
            columns = [column.to_pylist() for column in batch.columns]
            for row in zip(*columns, strict=True):
                writer.writerow([_cell(value) for value in row])
            rows += batch.num_rows
    except (pyarrow.ArrowException, OSError) as exc:
        raise CorruptDocumentError(f"{name}: not a readable Parquet file: {exc}") from None
    if not rows:
        raise EmptyDocumentError(f"{name}: no rows")
    return ParsedDocument(
        "csv",
        [Segment(out.getvalue())],
        parser="parquet",
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
