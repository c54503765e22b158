"""Chunking by type (prose, Markdown, code by language, tables by rows), sized in
tokens, validated.

Provenance survives: each chunk knows its page range (PDF pages, slides), its
Markdown heading path, its code language and lines, and its offsets in the
document's text (:func:`document_text`), as flat scalar metadata that Chroma
accepts.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import hashlib
import io
import itertools
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rag_ingest import sql
from rag_ingest.credentials import MASKED, mask_credentials, masked_warning
from rag_ingest.markup import MARKUPS, Markup
from rag_ingest.parsers.base import (
    MARKDOWN_HEADING,
    MUPDF_KINDS,
    CsvForm,
    ParsedDocument,
    Segment,
    package_versions,
)
from rag_ingest.parsers.markdown_tables import TABLE_RULE
from rag_ingest.settings import ChunkSettings, FileConfig
from rag_ingest.symbols import header_pattern, outline
from rag_ingest.tokens import count_with, get_encoding

__all__ = [
    "Chunk",
    "ChunkPlan",
    "chunk_document",
    "chunk_id",
    "chunk_ids",
    "content_hash",
    "document_text",
    "fit_to_window",
]

# Chunk-encoding tokens per embedder token to aim for. Word pieces (MiniLM's BERT
# vocabulary) per cl100k token, measured: 0.96 Markdown tables, 1.14 English prose,
# 1.15 German, 1.25 Python; 1 / 1.25 = 0.8, less a margin. Chunks that still overflow
# are flagged after chunking (``embed_truncated``), never silently cut.
TOKENS_PER_WINDOW_TOKEN = 0.75

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s")
# A line of closing brackets alone: "}", "});", "],", ")".
_CLOSER_LINE = re.compile(r"[ \t]*[)\]}][)\]};,]*[ \t]*(?:\n|$)")
_SEPARATORS = {
    # A line of spaces parts paragraphs as an empty line does (an editor's indent left
    # on it): split only at "\n", code and text ran across such breaks.
    **{(strategy, "\n\n"): r"\n[ \t]*\n" for strategy in ("prose", "markdown", "code")},
    # Code is never cut before a line of closing brackets: a chunk began with "}", and
    # the block it closed ended the chunk before.
    ("code", "\n"): rf"\n(?!{_CLOSER_LINE.pattern})",
}

# JSON, YAML and XML are split at their shallowest keys or elements first (a line
# indented at most 0, 2, 4, ... spaces, not closing one), and deeper only inside an
# entry too big for a chunk: split as prose, at any line, half of a config's chunks
# began with a closing "}," (134 of 276 in the JSON files sampled here) and held the
# ends of two entries; 38 of 1,867 XML chunks began with a closing tag.
# A line too long for a chunk (minified JSON, XML on one line) is split after an object
# and its comma, then a list, then between tags, then before a key or string: split at
# spaces alone, a minified export's chunks began and ended inside its values.
_NESTED = ("json", "yaml", "xml")
_NESTED_SEPARATORS = [
    *(rf"\n(?=[ \t]{{0,{indent}}}(?!</)[^\s)\]}}])" for indent in range(0, 13, 2)),
    "\n",
    r"(?<=\},)",
    r"(?<=\],)",
    r"(?<=>)(?=<)",
    r"(?<=,)(?=\")",
    " ",
]


@dataclass
class _Table:
    """A table in the text: its header (repeated atop every chunk of its rows) and its
    rows, each with its offset in the text."""

    start: int
    end: int
    header: str
    rows: Iterable[tuple[int, str]]


def _compact_row(line: str) -> str:
    """A Markdown table row without its column padding (docling pads every cell to the
    column's width: ~half the tokens of a spreadsheet row were spaces)."""
    line = re.sub(r" {2,}", " ", line.strip())
    return re.sub(r"-{4,}", "---", line) if TABLE_RULE.match(line) else line


def _markdown_tables(text: str) -> list[_Table]:
    tables: list[_Table] = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and TABLE_RULE.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            header = _compact_row(lines[i]) + "\n" + _compact_row(lines[i + 1])
            rows = [(offsets[k], _compact_row(lines[k])) for k in range(i + 2, j)]
            tables.append(_Table(offsets[i], offsets[j], header, rows))
            i = j
        else:
            i += 1
    return tables


# The first line Excel reads for a CSV's delimiter, and writes in some exports: sep=;
_SEP_LINE = re.compile(r"sep=([^\w\r\n \"'])[ \t]*\n", re.IGNORECASE)


# The records read to tell a CSV's preamble from its header.
_PREAMBLE_SAMPLE = 64


class _Lines:
    """A text's lines from ``at`` on, for :func:`csv.reader`, which takes no line past
    the record it reads: after a record, ``at`` is where the next one starts. (A
    StringIO of the text held 2x its size more, a list of its lines more still.)"""

    __slots__ = ("at", "text")

    def __init__(self, text: str, at: int = 0) -> None:
        self.text, self.at = text, at

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        start = self.at
        if start >= len(self.text):
            raise StopIteration
        self.at = self.text.find("\n", start) + 1 or len(self.text)
        return self.text[start : self.at]


def _has_value(record: list[str]) -> bool:
    return any(c.strip() for c in record)


def csv_form(text: str) -> CsvForm | None:
    """How a CSV's records are read: its dialect sniffed from its start (its delimiter
    the one Excel's ``sep=;`` line names, if it has one), and its header: the first
    record with a value, past lines of one field above records of more (an export's
    title, a report's period, ``# comment`` lines: its preamble, chunked as text). None:
    no such record."""
    hint = _SEP_LINE.match(text)
    start = hint.end() if hint else 0
    delimiters = hint.group(1) if hint else ",;\t|"
    try:
        sniffed: Any = csv.Sniffer().sniff(text[start : start + 8192], delimiters=delimiters)
    except csv.Error:
        sniffed = csv.excel
    keys = ("delimiter", "doublequote", "escapechar", "quotechar", "quoting", "skipinitialspace")
    dialect = {key: getattr(sniffed, key) for key in keys}
    if hint:
        dialect["delimiter"] = hint.group(1)
    # A quote doubled inside a quoted field is one quote (RFC 4180): the sniffer says
    # so only when its sample has one, and a row past it read 'say "hi"" there"'.
    dialect["doublequote"] = dialect["doublequote"] or not dialect["escapechar"]
    first: list[tuple[int, int, list[str]]] = []
    for begin, end, record, _ in _csv_records(text, start, dialect):
        if record is not None and _has_value(record):
            first.append((begin, end, record))
            if len(first) == _PREAMBLE_SAMPLE:
                break
    if not first:
        return None
    widths = Counter(len(record) for _, _, record in first)
    if widths.most_common(1)[0][0] > 1:
        first = [item for item in first if len(item[2]) > 1] or first
    head, body, header = first[0]
    if _headerless(header, [record for _, _, record in first[1:]]):
        return CsvForm(dialect, [], head, head, 0)
    return CsvForm(dialect, header, head, body, 0)


# A cell a header would not hold: a number (an amount, a percentage) or a date or time.
_VALUE = re.compile(
    r"[-+]?[$€£¥]?[-+]?(?:\d[\d,.' ]*)?\d(?:[eE][-+]?\d+)?%?"
    r"|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\S*)?"
    r"|\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
)
_YEAR = re.compile(r"(?:19|20)\d\d")


def _headerless(first: list[str], rows: list[list[str]]) -> bool:
    """Whether a CSV's first record is data, not a header: a number, a date or a time
    over a column of them (a sensor's or a ledger's export without column names), and
    no name over such a column, nor a number over names (the sniffer's test). A year
    (2024) over numbers is a column's name; text over text tells nothing."""
    votes = 0
    for i, cell in enumerate(cell.strip() for cell in first):
        column = [row[i].strip() for row in rows if i < len(row) and row[i].strip()]
        if not cell or not column:
            continue
        values = sum(bool(_VALUE.fullmatch(value)) for value in column) >= 0.9 * len(column)
        if values != bool(_VALUE.fullmatch(cell)):
            return False
        votes += values and not _YEAR.fullmatch(cell)
    return votes > 0


def _unclosed(text: str, begin: int, dialect: dict[str, Any]) -> bool:
    """Whether the text's last record, from ``begin``, opens a quoted field it never
    closes (csv then reads the rest of the file as that one field)."""
    if text.find("\n", begin, len(text) - 1) < 0:
        return False  # one line: nothing swallowed
    try:
        for _ in csv.reader(_Lines(text, begin), strict=True, **dialect):
            pass
    except csv.Error:
        return True
    return False


def _csv_records(
    text: str, start: int, dialect: dict[str, Any]
) -> Iterator[tuple[int, int, list[str] | None, str]]:
    """A CSV's records from ``start``, each with where it starts and ends; the record
    None (and why) for lines csv could not read: a field past its size limit, or a
    quoted field never closed, which took the rest of the file. After such lines the
    reading goes on from the next, anew."""
    lines = _Lines(text, start)
    reader = csv.reader(lines, **dialect)
    while True:
        begin = lines.at
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # raised on a line read: lines.at is past it
            yield begin, lines.at, None, str(exc)
            reader = csv.reader(lines, **dialect)
            continue
        if lines.at == len(text) and _unclosed(text, begin, dialect):
            yield begin, lines.at, None, "a quoted field is never closed"
            return
        yield begin, lines.at, record, ""


def _swallowed(span: str, form: CsvForm) -> list[list[str]] | None:
    """A record's lines read one by one, if one after its first is a whole row by itself
    (the header's number of fields): rows a stray quote took into a field. None for a
    field that holds line breaks of its own."""
    records = [
        next(csv.reader([raw.rstrip("\r\n")], **form.dialect))
        for raw in _Lines(span)
        if raw.strip()
    ]
    whole = any(len(record) == len(form.header) for record in records[1:])
    return records if whole else None


def _csv_table(text: str, form: CsvForm, warnings: list[str]) -> _Table | None:
    """A CSV/TSV file (or a run of its rows) as one table under its header, its rows
    read as they are grouped: a list of every record took ~6x the file's size. Lines
    csv cannot read (:func:`_csv_records`) are rows as they are, said in ``warnings``.
    None: no row."""
    out = io.StringIO()
    dialect = form.dialect
    # The writer quotes a field holding a character of its line terminator, and a quote
    # inside a field is doubled (see csv_form): with the sniffer's doublequote=False, from
    # a sample without "" in it, the writer failed on the first row with a quote (a PyPI
    # listing's 'Writes "2" or "3"': the whole 76 MB file failed).
    writer = csv.writer(
        out,
        delimiter=dialect["delimiter"],
        escapechar=dialect["escapechar"],
        skipinitialspace=dialect["skipinitialspace"],
        lineterminator="\r\n",
        quoting=csv.QUOTE_MINIMAL,
        quotechar=dialect["quotechar"] or '"',
        doublequote=dialect["doublequote"],
    )

    def line(record: list[str]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(record)
        return out.getvalue()[:-2]

    width = len(form.header)

    def rows() -> Iterator[tuple[int, str]]:
        # Offsets are not kept (a CSV has no pages or headings to map them to).
        unread: list[tuple[int, str]] = []
        strays = 0
        for begin, end, record, reason in _csv_records(text, form.body, dialect):
            if record is None:
                unread.append((begin, reason))
                for raw in _Lines(text[begin:end]):
                    if raw.strip():
                        yield 0, raw.rstrip("\n")
            elif (
                len(record) != width > 1
                and text.find("\n", begin, end - 1) >= 0  # over lines: a ragged row is not
                and (lines := _swallowed(text[begin:end], form))
            ):
                # A stray quote took the lines after it into its field, up to the next
                # quote: rows lost into one ('10,"item,30' swallowed row 11). Each line
                # is read as a record of its own.
                strays += 1
                yield from ((0, line(record)) for record in lines)
            elif _has_value(record):
                yield 0, line(record)
        if strays:
            warnings.append(
                f"{strays:,} record(s) over several lines without the header's {width} fields"
                " (a stray quote), read line by line"
            )
        if unread:
            number = form.line + text.count("\n", 0, unread[0][0]) + 1
            reasons = "; ".join(sorted({reason for _, reason in unread}))
            warnings.append(
                f"{len(unread):,} record(s) csv could not read, from line {number:,}, kept as"
                f" lines: {reasons}"
            )

    body = rows()
    first = next(body, None)
    if first is None:
        return None
    header = line(form.header) if form.header else ""  # "": none, its first record data
    return _Table(form.head, len(text), header, itertools.chain([first], body))


def _sql_tables(text: str, known: dict[str, str] | None, size: int, count: Any) -> list[_Table]:
    """A SQL dump's INSERT statements and COPY blocks longer than a chunk, as tables
    (:mod:`rag_ingest.sql`); ``known``: the column lists of the whole file's tables, for
    a run of it (else read from ``text``)."""
    if not sql.HEADS.search(text):
        return []
    known = sql.columns(text) if known is None else known
    return [
        _Table(found.start, found.end, found.header, found.rows)
        for found in sql.statements(text, known)
        # A short one stays with the statements around it. Counted on a bounded start:
        # SQLite's statements of one table are one, a whole dump long.
        if found.end - found.start > size
        and count(text[found.start : min(found.end, found.start + 16 * size)]) > size
    ]


_END_SLACK = 4  # tokens: a group's count may be off by this much at its end


def _table_pieces(
    table: _Table, size: int, encoding: Any, count: Any
) -> list[tuple[str, int]] | None:
    """The table's rows grouped into chunks of at most ``size`` tokens, each under the
    header, if it has one (a row too long for one, a CSV's long text field, in parts,
    each under it); None when the header alone leaves no room, or the table is its
    header alone (a one-row table: split it as text instead, or nothing would keep it)."""
    if not table.rows:
        return None
    top = table.header + "\n" if table.header else ""
    budget = size - count(top)
    if budget < size // 4:
        return None
    pieces: list[tuple[str, int]] = []
    group: list[tuple[int, str, int]] = []  # offset, row, tokens
    used = 0

    def close() -> None:
        # Each row is counted with its line break, but the last is without one: a row
        # ending "')," is a token more so (a SQL dump's: 1 in ~80 chunks over the size,
        # cut in two by the limit, the second part without the header). Counted again
        # only near the budget: counting every piece took CSVs 28% longer.
        nonlocal group, used
        carried: list[tuple[int, str, int]] = []
        piece = top + "\n".join(row for _, row, _ in group)
        while len(group) > 1 and used > budget - _END_SLACK and count(piece) > size:
            used -= group[-1][2]
            carried.insert(0, group.pop())
            piece = top + "\n".join(row for _, row, _ in group)
        pieces.append((piece, group[0][0]))
        group, used = carried, sum(cost for _, _, cost in carried)

    for offset, row in table.rows:
        cost = count(row + "\n")
        if group and used + cost > budget:
            close()
        if group and used + cost > budget:
            close()  # what was carried
        if cost > budget:
            # Less a margin: tokens may merge where the header's line break meets a part.
            for part, _, _ in _enforce_limit(row, budget - 2, encoding, count):
                pieces.append((top + part, offset))
            continue
        group.append((offset, row, cost))
        used += cost
    while group:
        close()
    return pieces


@dataclass
class Chunk:
    text: str
    metadata: dict[str, Any]


@dataclass
class ChunkPlan:
    """The chunks of one document and the decisions behind them."""

    chunks: list[Chunk]
    token_count: int
    chunked: bool  # False: small enough to stay whole
    dropped_duplicates: int = 0
    dropped_empty: int = 0
    joined_small: int = 0  # tiny pieces and lone headings joined to a neighbour
    strategy: str = "prose"
    warnings: list[str] = field(default_factory=list)
    text_length: int = 0  # of the text chunked (its chunks' offsets run within it)
    masked: Counter[str] = field(default_factory=Counter)  # credentials, by kind
    # An archive's files' plans for its member cache (name -> plan, see member_plan),
    # when the document came with ``ParsedDocument.plans``.
    member_plans: dict[str, Any] = field(default_factory=dict)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def chunk_id(
    session_id: str, source: str, digest: str, *, copy: int = 0, namespace: str = ""
) -> str:
    """Deterministic: the same text of the same source in the same session, the same ID.

    ``copy`` numbers the repeats of one text within a source (0 for the first). The ID
    names neither the source's version nor the chunk's place in it, so a changed
    source's unchanged chunks keep their IDs wherever they move: a new version writes
    its new text and deletes its old, and the rest have their metadata updated.
    A UUID (version 8, RFC 9562: 122 bits of SHA-256), as Qdrant and Weaviate take no
    other string as an ID, and every other store takes any. (The IDs of earlier
    releases stay valid where they were written: the ledger keeps each ID.)
    ``namespace`` sets apart the IDs of a store whose IDs are keys across collections
    (:attr:`ChunkStore.id_namespace`)."""
    # The empty field once held the source's version; kept so the loader's IDs, which
    # never named it, stay as they were.
    parts = (session_id, source, "", str(copy), digest)
    key = "\x1f".join((namespace, *parts) if namespace else parts)
    raw = bytearray(hashlib.sha256(key.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def chunk_ids(
    session_id: str, source: str, digests: Iterable[str], namespace: str = ""
) -> list[str]:
    """:func:`chunk_id` for each of a source's chunks, by their content hashes in order."""
    copies: Counter[str] = Counter()
    ids = []
    for digest in digests:
        ids.append(chunk_id(session_id, source, digest, copy=copies[digest], namespace=namespace))
        copies[digest] += 1
    return ids


_HEADER_CHARS = 160  # a header longer than this is cut at a word: the chunk is the point


def embed_text(text: str, metadata: dict[str, Any]) -> str:
    """What the embedder reads of a chunk under ``chunk.embed_header``: a line naming its
    file and section (``guide.md > Install > Linux``; code: ``client.py > Client.fetch``),
    a blank line, then its text."""
    name = metadata.get("archive_member") or metadata.get("attachment") or metadata.get("filename")
    where = metadata.get("heading_path") or metadata.get("symbol")
    header = " > ".join(str(part) for part in (name, where) if part)
    if not header:
        return text
    if len(header) > _HEADER_CHARS:
        header = header[:_HEADER_CHARS].rsplit(" ", 1)[0] + " ..."
    return f"{header}\n\n{text}"


def _by_member(
    parsed: ParsedDocument, settings: ChunkSettings, base_metadata: dict[str, Any]
) -> ChunkPlan:
    """An archive's files, or an e-mail's attachments, chunked one by one: no chunk
    holds the end of one and the start of the next, and each says which it is from
    (``archive_member``, ``attachment``); an archive's file as a file of its own type
    (its chunks' ``file_type``). Two copies of a file are two files: each chunk of each
    is kept, under its own name."""
    parts = []
    kept = parsed.plans
    made: dict[str, Any] = {}
    fingerprint = _plan_fingerprint(settings) if kept is not None else ""
    for member, kind, language, group in _members(parsed):
        sub = _member_document(parsed, group, kind, language)
        metadata = _member_metadata(parsed, member, base_metadata)
        if kept is None or member is None:
            parts.append(chunk_document(sub, settings, metadata))
            continue
        # A file of a changed archive that did not change: its chunks as the member
        # cache keeps them, made from the same text under the same settings (the 600
        # notes of a wiki export were all chunked again for one that changed).
        key = _plan_key(sub, fingerprint)
        plan = _restored(kept.get(member), key, sub)
        if plan is None:
            plan = chunk_document(sub, settings, {})
            made[member] = member_plan(plan, key, _joined(sub.segments, sub.file_type)[0])
        else:
            made[member] = kept[member]
        for chunk in plan.chunks:
            # As chunk_document composes them: its own keys over the caller's.
            chunk.metadata = {**metadata, **chunk.metadata}
        parts.append(plan)
    joined = join_plans(parts)
    joined.member_plans.update(made)
    return joined


_PLAN_FORMAT = "2"  # of member_plan's record: a new one ignores those kept before


def _plan_fingerprint(settings: ChunkSettings) -> str:
    """What, besides a file's parse, decides its chunks: the chunk settings and the
    versions of the code that chunks."""
    versions = package_versions(("rag-ingest", "tiktoken", "langchain-text-splitters"))
    return _PLAN_FORMAT + versions + "|" + settings.model_dump_json()


def _plan_key(sub: ParsedDocument, fingerprint: str) -> str:
    """A file's chunk plan's key: a hash of everything chunk_document reads of it."""
    digest = hashlib.sha256(fingerprint.encode())
    fields = (sub.file_type, sub.language, sub.parser, sub.csv_form, sub.sql_columns)
    digest.update(repr((fields, sub.headings_above, sub.titles)).encode())
    for segment in sub.segments:
        digest.update(repr((segment.page, segment.ocr, segment.member, segment.time)).encode())
        digest.update(repr(len(segment.text)).encode())
        digest.update(segment.text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def member_plan(plan: ChunkPlan, key: str, text: str) -> dict[str, Any]:
    """A file's chunk plan (made with no caller's metadata) as the member cache keeps it
    (JSON), under ``key``; ``text``: the file's text as chunked, a chunk that is its
    text at its offsets kept as None (the cache had held each file's text twice: a zip
    of 3,000 Markdown files' cache took 61 MB)."""
    return {
        "key": key,
        "chunks": [[_unless_at(chunk, text), chunk.metadata] for chunk in plan.chunks],
        "token_count": plan.token_count,
        "chunked": plan.chunked,
        "dropped_duplicates": plan.dropped_duplicates,
        "dropped_empty": plan.dropped_empty,
        "joined_small": plan.joined_small,
        "strategy": plan.strategy,
        "warnings": plan.warnings,
        "text_length": plan.text_length,
        "masked": dict(plan.masked),
    }


def _unless_at(chunk: Chunk, text: str) -> str | None:
    """A chunk's text, or None when it is ``text`` at its offsets."""
    start, end = chunk.metadata.get("start_index"), chunk.metadata.get("end_index")
    if isinstance(start, int) and isinstance(end, int) and text[start:end] == chunk.text:
        return None
    return chunk.text


def _restored(kept: Any, key: str, sub: ParsedDocument) -> ChunkPlan | None:
    """The plan a :func:`member_plan` record holds when it was made under ``key`` (from
    ``sub``, the file), or None (another key, or a record not in the shape written:
    chunk the file again)."""
    if not isinstance(kept, dict) or kept.get("key") != key:
        return None
    text = ""

    def chunk(kept_text: Any, metadata: Any) -> Chunk:
        nonlocal text
        if kept_text is None:  # the file's text at its offsets
            text = text or _joined(sub.segments, sub.file_type)[0]
            kept_text = text[metadata["start_index"] : metadata["end_index"]]
        return Chunk(kept_text, dict(metadata))

    try:
        chunks = [chunk(given, metadata) for given, metadata in kept["chunks"]]
        plan = ChunkPlan(
            chunks=chunks,
            token_count=int(kept["token_count"]),
            chunked=bool(kept["chunked"]),
            dropped_duplicates=int(kept["dropped_duplicates"]),
            dropped_empty=int(kept["dropped_empty"]),
            joined_small=int(kept["joined_small"]),
            strategy=str(kept["strategy"]),
            warnings=[str(w) for w in kept["warnings"]],
            text_length=int(kept["text_length"]),
            masked=Counter({str(k): int(v) for k, v in kept["masked"].items()}),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not all(isinstance(c.text, str) and "content_hash" in c.metadata for c in chunks):
        return None
    return plan


def _member_document(
    parsed: ParsedDocument, group: list[Segment], kind: str, language: str | None
) -> ParsedDocument:
    # An archive's file chunked as a file of its type: code by its language, with its
    # lines and definitions; a CSV by rows; a PDF with its own page numbers. A JSON, YAML
    # or XML file is only ever the records parser's (parsers.records): named so, a long
    # one is cut in runs of whole records (a zipped 60 MB JSON Lines file took 26.3 s in
    # one task, 15.0 s alone).
    parser = f"{kind}-records" if kind in ("json", "yaml", "xml") else parsed.parser
    return dataclasses.replace(  # the archive's chunk plans stay with it (_by_member)
        parsed,
        segments=group,
        file_type=kind,
        language=language,
        members={},
        parser=parser,
        plans=None,
    )


def _member_metadata(
    parsed: ParsedDocument, member: str | None, base_metadata: dict[str, Any]
) -> dict[str, Any]:
    key = "archive_member" if parsed.file_type in ("archive", "mbox") else "attachment"
    return {**base_metadata, key: member} if member else base_metadata


@dataclass
class ChunkUnit:
    """Parts of a long document chunked apart (each with ``metadata``), then joined: runs
    of one text, each at ``at``'s offset after its lines (:func:`line_runs`), or (``at``
    None) one document, or a group of an archive's whole files."""

    parts: list[ParsedDocument]
    metadata: dict[str, Any]
    at: list[tuple[int, int]] | None = None

    @classmethod
    def of_runs(
        cls, runs: list[tuple[ParsedDocument, int, int]], metadata: dict[str, Any]
    ) -> ChunkUnit:
        return cls([part for part, _, _ in runs], metadata, [(at, lines) for _, at, lines in runs])


def chunk_units(
    parsed: ParsedDocument,
    settings: ChunkSettings,
    base_metadata: dict[str, Any],
    chars: int,
    count: int,
    member_chars: int = 0,
) -> list[ChunkUnit]:
    """A document of more than ``chars`` characters in parts to chunk apart and join
    (:func:`join_units`): a long log, records, CSV, SQL dump, Markdown text or source
    file in runs of about ``chars / 2`` (:func:`line_runs`); an archive's (or a mail's)
    files, past ``member_chars`` when fewer, in at least ``count`` groups of whole files,
    a file of more than ``chars`` that runs in runs of its own. One unit of one part for
    any other document."""
    whole = [ChunkUnit([parsed], base_metadata)]
    total = sum(len(s.text) for s in parsed.segments)
    members = _by_members(parsed)
    if total <= (min(chars, member_chars or chars) if members else chars):
        return whole
    if not members:
        runs = line_runs(parsed, settings, chars // 2)
        return [ChunkUnit.of_runs(runs, base_metadata)] if runs else whole
    share = -(-total // max(count, -(-total // chars)))
    units: list[ChunkUnit] = []
    group: list[Segment] = []
    size = 0

    def close() -> None:
        nonlocal group, size
        if group:
            # Its own files' types only: each group sent to a worker had carried the
            # whole's (a 210 MB mailbox's 111,905 names, in each of its 25 groups).
            names = dict.fromkeys(s.member for s in group if s.member in parsed.members)
            members = {m: parsed.members[m] for m in names if m is not None}
            kept = parsed.plans
            plans = None if kept is None else {m: kept[m] for m in members if m in kept}
            part = dataclasses.replace(parsed, segments=group, members=members, plans=plans)
            units.append(ChunkUnit([part], base_metadata))
        group, size = [], 0

    for member, kind, language, segments in _members(parsed):
        length = sum(len(s.text) for s in segments)
        if length > chars:
            # A zipped 150 MB log was chunked in one task: 60.7 s, and one of 300 MB
            # would have outlasted parse.timeout.
            sub = _member_document(parsed, segments, kind, language)
            runs = line_runs(sub, settings, chars // 2)
            if runs:
                close()
                metadata = _member_metadata(parsed, member, base_metadata)
                units.append(ChunkUnit.of_runs(runs, metadata))
                continue
        if size >= share:
            close()
        group += segments
        size += length
    close()
    return units


def join_units(units: list[ChunkUnit], plans: list[ChunkPlan]) -> ChunkPlan:
    """The plans of the units' parts, in order, as the whole document's."""
    done = iter(plans)
    return join_plans([join_plans([next(done) for _ in unit.parts], unit.at) for unit in units])


def _file_config(settings: ChunkSettings, file_type: str) -> FileConfig | None:
    if file_type == "xml" and "xml" not in settings.file_configs:
        # XML's records (parsers.records) are chunked as JSON's: a default entry of their
        # own would change every ledger's settings fingerprint, and re-ingest it all.
        file_type = "json"
    return settings.file_configs.get(file_type) or settings.file_configs.get("text")


def _run_break(parsed: ParsedDocument, settings: ChunkSettings) -> tuple[str, int] | None:
    """Where a long document may be cut into runs chunked apart: before what, and how
    far into it (a line break's end, a record's heading; ("", 0): a CSV's record's end,
    as csv reads it; ("\n#", 1): a Markdown heading or paragraph outside code blocks, or
    a markup's section title, as :func:`_section_cuts` finds them). None: in one piece."""
    config = _file_config(settings, parsed.file_type)
    strategy = config.strategy if config else "prose"
    if parsed.file_type == "text" and strategy == "prose":
        return "\n", 1  # a log: whole lines
    if (
        parsed.file_type in ("json", "yaml", "xml")
        and parsed.parser.startswith(f"{parsed.file_type}-records")
        and strategy == "markdown"
    ):
        # JSON Lines and other records: whole records, each under its own level-2
        # heading, so a run's heading paths are the whole's (a value's lines are
        # indented: no "## " of theirs starts a line). An archive's or a mail's file is
        # under its title, its records' headings levels down: cut at its headings, each
        # run told the title above it.
        member = bool(parsed.segments) and parsed.segments[0].member is not None
        return ("\n#", 1) if member else ("\n\n## ", 2)
    if parsed.file_type == "csv" and strategy == "table":
        return "", 0  # rows, every chunk under the header the runs share
    if strategy == "markdown" and parsed.file_type not in (*_SLIDES, "json", "yaml", "xml"):
        # Before a heading, or a paragraph, outside code blocks (see _section_cuts),
        # each run told the headings above it.
        return "\n#", 1
    if parsed.file_type == "code" and parsed.language == "sql" and strategy == "code":
        # A dump: whole lines, or among a statement's rows, whole rows under its header.
        return "\n", 1
    if parsed.file_type == "code" and parsed.language in MARKUPS and strategy == "code":
        # reStructuredText, LaTeX, AsciiDoc, Org: before a section title, or a paragraph,
        # each run told the titles above it (see _section_cuts).
        return "\n#", 1
    if parsed.file_type == "code" and strategy == "code":
        # Source code: after a blank line, before a line at the margin (see _code_cuts).
        return "\n\n", 2
    return None


def in_line_runs(parsed: ParsedDocument, settings: ChunkSettings, chars: int) -> bool:
    """Whether ``parsed`` is a text file chunked as prose (a log), a file of JSON or
    YAML records, a CSV chunked as a table, a SQL dump, a Markdown text or source code, of more than
    ``chars`` characters, to be chunked in runs of whole lines, records, rows or
    sections (:func:`line_runs`)."""
    return (
        _run_break(parsed, settings) is not None
        and len(parsed.segments) == 1
        and len(parsed.segments[0].text) > chars
    )


def in_runs(
    parsed: ParsedDocument, settings: ChunkSettings, chars: int, member_chars: int = 0
) -> bool:
    """Whether ``parsed`` is chunked in parts (:func:`chunk_units`): a text in runs
    (:func:`in_line_runs`), or an archive's or a mail's files of more than ``chars``
    characters, or ``member_chars`` when fewer."""
    return in_line_runs(parsed, settings, chars) or (
        _by_members(parsed)
        and sum(len(s.text) for s in parsed.segments) > min(chars, member_chars or chars)
    )


def _csv_cuts(text: str, form: CsvForm, shares: list[int]) -> list[int]:
    """The first record end at or past each share of a CSV's text, as csv reads its
    records (a quoted field may hold line breaks)."""
    cuts: list[int] = []
    targets = iter(shares)
    target = next(targets, None)
    for _, end, _, _ in _csv_records(text, form.body, form.dialect):
        if target is None:
            break
        if end >= target:
            cuts.append(end)
            target = next((t for t in targets if t > end), None)
    return cuts


def line_runs(
    parsed: ParsedDocument, settings: ChunkSettings, chars: int
) -> list[tuple[ParsedDocument, int, int]]:
    """A long text file (a log), records (JSON Lines), a CSV's rows, a SQL dump, source
    code, a Markdown text or a markup's (reStructuredText, LaTeX, AsciiDoc, Org), in runs
    of whole lines, records, rows or sections of about ``chars`` characters, to be
    chunked apart and joined (:func:`join_plans` with ``at``): each run as a document of
    its own, its offset in the whole text and the lines before it (a CSV's runs share
    its dialect and header, ``csv_form``; a dump's its tables' columns, ``sql_columns``,
    and a run cut among a statement's rows begins with its header, the offset and lines
    counting it; a Markdown or markup run is told the headings above it,
    ``headings_above``, and a markup run its own as the whole levels them, ``titles``).
    Cut where they fall in the text alone, whatever the workers: the same file gives the
    same chunks. [] for any other document (see :func:`in_line_runs`)."""
    run_break = _run_break(parsed, settings)
    if run_break is None or not in_line_runs(parsed, settings, chars):
        return []
    cut_before, into = run_break
    text = parsed.segments[0].text
    count = -(-len(text) // chars)
    shares = [len(text) * n // count for n in range(1, count)]
    form = (parsed.csv_form or csv_form(text)) if parsed.file_type == "csv" else None
    paths: _HeadingPaths | None = None
    markup = None
    headings: list[tuple[int, int, str]] = []
    if form is not None:
        cuts = _csv_cuts(text, form, shares)
    elif cut_before == "\n#":
        markup = MARKUPS.get(parsed.language or "") if parsed.file_type == "code" else None
        cuts, headings = _section_cuts(text, shares, chars, markup)
        paths = _HeadingPaths(headings)
    elif cut_before == "\n\n":
        cuts = _code_cuts(text, shares, chars)
    elif cut_before:
        # The first break at or past each share of the text (0: none left).
        cuts = [text.find(cut_before, share - into) + into for share in shares]
        cuts = [cut if cut >= into else 0 for cut in cuts]
        if parsed.file_type == "text":
            # A text of few line breaks (one line of 55 MB took 57.8 s in one task;
            # minified JSON, XML): at a space or comma past the share, with no line
            # break within a run.
            cuts = [
                cut if cut and cut - share <= chars else _word_end(text, share, chars)
                for cut, share in zip(cuts, shares, strict=True)
            ]
    else:
        return []  # a CSV without a record to head it
    known: dict[str, str] | None = None
    heads: dict[int, str] = {}  # a cut among a statement's rows: its header
    if parsed.language == "sql":
        known = sql.columns(text)
        for i, among in enumerate(sql.row_cuts(text, cuts, known)):
            if among is not None:
                cuts[i], heads[among[0]] = among
    bounds = [0]
    for cut in cuts:
        if cut > bounds[-1]:
            bounds.append(cut)
    if bounds[-1] < len(text):
        bounds.append(len(text))
    runs: list[tuple[ParsedDocument, int, int]] = []
    lines = 0
    for start, end in itertools.pairwise(bounds):
        head = heads[start] + "\n" if start in heads else ""
        part = dataclasses.replace(
            parsed,
            segments=[dataclasses.replace(parsed.segments[0], text=head + text[start:end])],
            sql_columns=known,
            headings_above=paths.stack(start - 1) if paths is not None and start else None,
            titles=_titles_within(headings, start, end) if markup is not None else None,
        )
        if form is not None:
            # The first run reads its header, the others take it.
            part.csv_form = dataclasses.replace(form, head=0, body=0, line=lines) if start else form
        runs.append((part, start - len(head), lines - head.count("\n")))
        lines += text.count("\n", start, end)
    return runs if len(runs) > 1 else []


# A blank line, then a line at the margin that does not close a block: between two
# top-level definitions, in most code.
_TOP_LEVEL = re.compile(r"\n[ \t]*\n(?=[^\s)\]}])")


def _code_cuts(text: str, shares: list[int], chars: int) -> list[int]:
    """Where to cut a long source file near each share: before the first line at the
    margin after a blank line (a top-level definition, its comment or decorators), so a
    run does not begin inside a class or function; with none within a run, at the next
    line, and with no line break, past a space or comma (minified code; 0: none)."""
    cuts = []
    for share in shares:
        found = _TOP_LEVEL.search(text, share, share + chars)
        if found is None:
            line = text.find("\n", share, share + chars)
            cuts.append(line + 1 if line >= 0 else _word_end(text, share, chars))
        else:
            cuts.append(found.end())
    return cuts


def _word_end(text: str, share: int, chars: int) -> int:
    """Just past the first space, else comma, within ``chars`` of ``share`` (0: none)."""
    for mark in (" ", ","):
        found = text.find(mark, share, share + chars)
        if found >= 0:
            return found + 1
    return 0


def _section_cuts(
    text: str, shares: list[int], chars: int, markup: Markup | None = None
) -> tuple[list[int], list[tuple[int, int, str]]]:
    """Where to cut a long Markdown text (or ``markup``'s) near each share: at the first
    heading past it, or, with none within half a run, at the first paragraph's start;
    never in a Markdown code block. With the headings, to tell each run those above it."""
    if markup is None:
        blocks = _code_blocks(text)
        headings = _headings(text, blocks)
        fenced = in_code_fence(text, blocks)
    else:
        headings = markup.headings(text)

        def fenced(at: int) -> bool:
            return False  # the run's titles are the whole's: a cut in a verbatim block is harmless

    starts = [start for start, _, _ in headings]
    cuts = []
    for share in shares:
        i = bisect.bisect_left(starts, share)
        if i < len(starts) and starts[i] - share <= chars // 2:
            cuts.append(starts[i])
            continue
        cut = text.find("\n\n", share)
        while cut >= 0 and fenced(cut):
            cut = text.find("\n\n", cut + 2)
        cuts.append(cut + 2 if cut >= 0 else 0)
    return cuts, headings


def _titles_within(
    headings: list[tuple[int, int, str]], start: int, end: int
) -> list[tuple[int, int, str]]:
    """The headings from ``start`` to ``end``, their offsets from ``start``."""
    first = bisect.bisect_left(headings, start, key=lambda heading: heading[0])
    last = bisect.bisect_left(headings, end, key=lambda heading: heading[0])
    return [(at - start, level, title) for at, level, title in headings[first:last]]


def join_plans(parts: list[ChunkPlan], at: list[tuple[int, int]] | None = None) -> ChunkPlan:
    """The plans of consecutive files (or runs of them) as one document's: chunks
    renumbered, their offsets moved to where each part's text starts in the whole
    (parts joined by a blank line, as :func:`document_text` joins them). ``at``: the
    parts are runs of one text (:func:`line_runs`), each at that offset after that many
    lines; a chunk met in an earlier run is dropped, as within one."""
    plan = dataclasses.replace(
        parts[0],
        chunks=[],
        warnings=list(parts[0].warnings),
        masked=Counter(parts[0].masked),
        member_plans=dict(parts[0].member_plans),
    )
    offset = 0
    seen: set[str] = set()
    for i, part in enumerate(parts):
        if i:
            plan.token_count += part.token_count
            plan.chunked = True
            plan.dropped_empty += part.dropped_empty
            plan.joined_small += part.joined_small
            plan.dropped_duplicates += part.dropped_duplicates
            plan.warnings += part.warnings
            plan.masked.update(part.masked)
            plan.member_plans.update(part.member_plans)
        lines = 0
        if at is not None:
            offset, lines = at[i]
        for chunk in part.chunks:
            if at is not None:
                if chunk.metadata["content_hash"] in seen:
                    plan.dropped_duplicates += 1
                    continue
                seen.add(chunk.metadata["content_hash"])
            chunk.metadata["chunk_index"] = len(plan.chunks)
            if offset and "start_index" in chunk.metadata:
                chunk.metadata["start_index"] += offset
                chunk.metadata["end_index"] += offset
            if lines and "line_start" in chunk.metadata:
                chunk.metadata["line_start"] += lines
                chunk.metadata["line_end"] += lines
            plan.chunks.append(chunk)
        offset += part.text_length + len("\n\n")
    plan.text_length = offset - len("\n\n")
    for chunk in plan.chunks:
        chunk.metadata["chunk_count"] = len(plan.chunks)
        chunk.metadata["chunked"] = plan.chunked
    if plan.masked:  # one warning for the whole, not one a part
        plan.warnings = [w for w in plan.warnings if not w.startswith(MASKED)]
        plan.warnings.append(masked_warning(plan.masked))
    return plan


def _splitter(strategy: str, language: str | None, size: int, overlap: int, count: Any) -> Any:
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    markup = MARKUPS.get(language or "") if strategy == "code" else None
    if markup is not None and markup.separators is not None:
        return RecursiveCharacterTextSplitter(
            separators=markup.separators,
            is_separator_regex=True,
            keep_separator="start",
            chunk_size=size,
            chunk_overlap=overlap,
            length_function=count,
        )
    separators = ["\n\n", "\n", " "]
    if strategy == "prose" and language in _NESTED:
        separators = _NESTED_SEPARATORS
    elif strategy == "code" and language:
        try:
            separators = RecursiveCharacterTextSplitter.get_separators_for_language(
                Language(language)
            )
        except ValueError:
            pass  # a language the splitter does not know: generic separators
        headers = header_pattern(language)
        if headers:
            # Before blank lines, a split at any line that starts a definition, nested
            # ones too: LangChain's keyword separators match only at a line's start
            # ("\ndef ", "\nfunction "), so a class too big for a chunk was split at
            # any blank line, inside a method as readily as between two.
            at = separators.index("\n\n")
            separators = [*separators[:at], rf"\n(?={headers})", *separators[at:]]
    elif strategy == "markdown":
        separators = RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN)
    return RecursiveCharacterTextSplitter(
        # LangChain's last separator, "", is left out: it cut a line with no space (a
        # minified script) into characters and merged them back with the tokenizer, ~7x
        # slower than cutting the piece by tokens (_enforce_limit) and in twice the chunks.
        separators=[_SEPARATORS.get((strategy, s), s) for s in separators if s],
        is_separator_regex=True,
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=count,
    )


def fit_to_window(settings: ChunkSettings, window: int) -> ChunkSettings:
    """``settings`` with every size capped so a chunk fits an embedder's ``window``
    tokens (its own tokenizer, special tokens included); unchanged when they already do."""
    cap = max(16, int((window - 2) * TOKENS_PER_WINDOW_TOKEN))

    def fit(size: int | None, overlap: int | None) -> tuple[int | None, int | None]:
        if size is None or size <= cap:
            return size, overlap
        # The overlap shrinks in proportion: the same share of each chunk repeated.
        return cap, None if overlap is None else round(overlap * cap / size)

    size, overlap = fit(settings.chunk_tokens, settings.overlap_tokens)
    configs = {}
    for file_type, config in settings.file_configs.items():
        file_size, file_overlap = fit(config.chunk_tokens, config.overlap_tokens)
        configs[file_type] = config.model_copy(
            update={"chunk_tokens": file_size, "overlap_tokens": file_overlap}
        )
    return settings.model_copy(
        update={
            "chunk_tokens": size,
            "overlap_tokens": overlap,
            "whole_document_tokens": min(settings.whole_document_tokens, cap),
            "file_configs": configs,
        }
    )


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def _code_blocks(text: str) -> list[tuple[int, int, int]]:
    """Each fenced code block (CommonMark: closed by a fence of the same character at
    least as long, with no info string; one never closed runs to the end): where it
    starts, where its closing fence's first backtick or tilde is (the text's end for
    none), and where that fence's line ends (newline not included)."""
    blocks: list[tuple[int, int, int]] = []
    opening: re.Match[str] | None = None
    for m in _FENCE.finditer(text):
        if opening is None:
            opening = m
            continue
        line_end = text.find("\n", m.end())
        line_end = len(text) if line_end < 0 else line_end
        closes = m[1][0] == opening[1][0] and len(m[1]) >= len(opening[1])
        if closes and not text[m.end() : line_end].strip():
            blocks.append((opening.start(), m.start(1), line_end))
            opening = None
    if opening is not None:
        blocks.append((opening.start(), len(text), len(text)))
    return blocks


def in_code_fence(
    text: str, blocks: list[tuple[int, int, int]] | None = None
) -> Callable[[int], bool]:
    """Whether an offset of ``text`` lies in a fenced code block (``blocks``: its
    :func:`_code_blocks`, when already read)."""
    ranges = [(start, end) for start, _, end in (_code_blocks(text) if blocks is None else blocks)]
    starts = [start for start, _ in ranges]

    def inside(offset: int) -> bool:
        i = bisect.bisect_right(starts, offset) - 1
        return i >= 0 and offset < ranges[i][1]

    return inside


def _headings(text: str, blocks: list[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    """Markdown headings, not the '# comment' lines of fenced code (a shell snippet's
    '# run it' had become the heading of every chunk after it)."""
    fenced = in_code_fence(text, blocks)
    found = []
    for m in MARKDOWN_HEADING.finditer(text):
        title = _plain_title(m.group(2))
        if title and not fenced(m.start()):
            found.append((m.start(), len(m.group(1)), title))
    return found


# Emphasis around a heading's words (asterisks only: '__init__' is a name), and a
# contents page's dot leaders and page number.
_EMPHASIS = re.compile(r"\*\*|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])")
_LEADERS = re.compile(r"(?:(?:\s*\.){4,}|\s*…)\s*\d*\s*$")


def _plain_title(title: str) -> str:
    """A heading's words for ``heading_path``: pymupdf4llm writes a PDF's bold headings
    as '## **1 Introduction**', and its contents page's lines as headings with their
    dot leaders ('4 Function reference . . . . 8')."""
    return " ".join(_EMPHASIS.sub("", _LEADERS.sub("", title)).split())


_HYPHENATED = re.compile(r"[^\W\d_]-$")


def _hyphenated(before: str, after: str) -> bool:
    """Whether a page break cut a word: a letter and a hyphen end the page, a lower-case
    letter starts the next ('inges-' 'tion' is 'ingestion')."""
    head = after.lstrip()
    return bool(head[:1].islower() and _HYPHENATED.search(before.rstrip()))


def _runs_on(before: str, after: str) -> bool:
    """Whether a page break cut a sentence: no closing mark before it (a word or a comma
    ends the page, not a heading, a table or a fence) and a lower-case word after it."""
    tail, head = before.rstrip(), after.lstrip()
    if not tail or not head or not head[0].islower():
        return False
    last_line = tail.rsplit("\n", 1)[-1].lstrip()
    return (tail[-1].isalnum() or tail[-1] in ",;") and not last_line.startswith(("#", "|"))


def _joined(segments: list[Segment], file_type: str) -> tuple[str, list[int]]:
    """One text with segment boundaries (each segment's start in it), so a chunk can
    span pages and still know them. A PDF sentence that runs on to the next page is
    joined with a space: a paragraph break there gave the splitter a place to cut it in
    two. A word hyphenated across the break is joined whole: 'inges- tion' is found by
    no search for 'ingestion'."""
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for segment in segments:
        body = segment.text
        if parts:
            separator = "\n\n"
            if file_type in MUPDF_KINDS and _hyphenated(parts[-1], body):
                kept = parts[-1].rstrip()[:-1]
                length -= len(parts[-1]) - len(kept)
                parts[-1], body, separator = kept, body.lstrip(), ""
            elif file_type in MUPDF_KINDS and _runs_on(parts[-1], body):
                kept = parts[-1].rstrip()
                length -= len(parts[-1]) - len(kept)
                parts[-1], body, separator = kept, body.lstrip(), " "
            parts.append(separator)
            length += len(separator)
        starts.append(length)
        parts.append(body)
        length += len(body)
    text = "".join(parts)
    if _CONTROL.search(text):  # beyond Latin-1, 6.4 M characters: 25 ms, a translate 0.4 s
        text = text.translate(_CONTROLS)
    return text, starts


def _members(parsed: ParsedDocument) -> Iterator[tuple[str | None, str, str | None, list[Segment]]]:
    """An archive's files, or an e-mail's body and attachments: (name, file type,
    language, segments) each."""
    for member, group in itertools.groupby(parsed.segments, key=lambda s: s.member):
        kind, language = parsed.members.get(member or "", (parsed.file_type, parsed.language))
        yield member, kind, language, list(group)


def _by_members(parsed: ParsedDocument) -> bool:
    return bool(parsed.members) or len({s.member for s in parsed.segments}) > 1


def document_text(parsed: ParsedDocument) -> str:
    """The document's text as the chunker reads it: its chunks' ``start_index`` and
    ``end_index`` are offsets in it (an archive's files, each joined as a file of its
    type, one after another)."""
    if not _by_members(parsed):
        return _joined(parsed.segments, parsed.file_type)[0]
    return "\n\n".join(_joined(group, kind)[0] for _, kind, _, group in _members(parsed))


# Documents of pages that stand alone: slides, and drawings' pages.
_SLIDES = frozenset({"pptx", "ppt", "odp", "odg"})


class _HeadingPaths:
    """The heading path at any offset of a text, from its headings ``(start, level,
    title)`` in order: each heading's path worked out once, then found by bisection.
    Walking the headings from the top for every chunk was quadratic: a 10 MB JSON Lines
    file (40,000 records, each under its heading) spent 65 s of its 72 there, and one
    of 107 MB failed parse.timeout."""

    def __init__(
        self, headings: list[tuple[int, int, str]], above: list[tuple[int, str]] | None = None
    ) -> None:
        """``above``: the headings (level, title) over the text's start, for a run of a
        longer one (:func:`line_runs`)."""
        self.starts: list[int] = [-1] if above else []
        self.paths: list[list[tuple[int, str]]] = [list(above)] if above else []
        stack: list[tuple[int, str]] = list(above or [])
        for start, level, title in headings:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            self.starts.append(start)
            self.paths.append(list(stack))

    def at(self, offset: int, scope: int = 0) -> str:
        """The path of the headings at or before ``offset``; with ``scope``, of those at
        or after ``scope`` only (a slide's title heads that slide alone)."""
        last = bisect.bisect_right(self.starts, offset)
        first = bisect.bisect_left(self.starts, scope, 0, last) if scope > 0 else 0
        if first == last:
            return ""
        if first == 0:
            return " > ".join(title for _, title in self.paths[last - 1])
        # The stack as it would be with no heading before ``scope``.
        stack: list[tuple[int, str]] = []
        for path in self.paths[first:last]:
            level, title = path[-1]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        return " > ".join(title for _, title in stack)

    def stack(self, offset: int) -> list[tuple[int, str]]:
        """The headings (level, title) over ``offset``."""
        last = bisect.bisect_right(self.starts, offset)
        return list(self.paths[last - 1]) if last else []


# Half a UTF-16 pair with no other half: a PDF's broken font map gave one (U+D80C in a
# table cell), and the store refused the whole document ("surrogates not allowed").
_SURROGATE = re.compile("[\ud800-\udfff]")
# NULs and C1 control characters in the text the chunker reads (its chunks,
# ParsedDocument.text), one for one (every offset stays the document's). A NUL shows
# nothing and PostgreSQL's text refuses it, so PGVector does (Apache POI's damaged
# unknown_properties.msg, calamine's reading of ex41187-19267.xls): read as a space. C1's
# are cp1252's characters read as Latin-1 ("SharePoint\x99 Services" in Outlook 2003's
# own welcome message): read as cp1252 where it has one. Other C0 controls are kept: a
# vim macro's keystrokes (^V, Esc) are its code.
_CONTROL = re.compile("[\x00\x80-\x9f]")
_CONTROLS = str.maketrans(
    {
        0: " ",
        **{
            c: bytes([c]).decode("cp1252", "replace").replace("\ufffd", " ")
            for c in range(0x80, 0xA0)
        },
    }
)


def chunk_document(
    parsed: ParsedDocument, settings: ChunkSettings, base_metadata: dict[str, Any]
) -> ChunkPlan:
    """Split a parsed document into validated, provenance-tagged chunks."""
    if _by_members(parsed):
        return _by_member(parsed, settings, base_metadata)
    encoding = get_encoding(settings.encoding)

    def count(text: str) -> int:
        return count_with(encoding, text)

    config = _file_config(settings, parsed.file_type)
    strategy = config.strategy if config else "prose"
    size = (config.chunk_tokens if config else None) or settings.chunk_tokens
    overlap = config.overlap_tokens if config else None
    overlap = settings.overlap_tokens if overlap is None else overlap
    overlap = min(overlap, size // 2)

    text, starts = _joined(parsed.segments, parsed.file_type)
    plan_warnings: list[str] = []
    odd = len(_SURROGATE.findall(text))
    if odd:
        # One for one, so every offset stays the document's.
        text = _SURROGATE.sub("\ufffd", text)
        plan_warnings.append(
            f"{odd} lone surrogate(s) (half a UTF-16 pair, no character) replaced by U+FFFD"
        )
    found: Counter[str] = Counter()
    if settings.mask_credentials:
        # The whole text, before it is split: a private key spans chunks. Masked in
        # place, so every offset stays the document's.
        text, found = mask_credentials(text)
    pages = [s.page for s in parsed.segments]
    times = [s.time for s in parsed.segments]
    scanned = [s.ocr for s in parsed.segments]
    total_tokens = count(text)
    blocks = _code_blocks(text) if strategy == "markdown" else []
    if strategy == "markdown":
        headings = _headings(text, blocks)
    elif strategy == "code" and parsed.language in MARKUPS:
        headings = (
            MARKUPS[parsed.language].headings(text) if parsed.titles is None else parsed.titles
        )
    else:
        headings = []

    whole = total_tokens <= min(settings.whole_document_tokens, size)
    if whole:
        pieces = [(text, 0)]
    else:
        known: dict[str, int] = {}

        def counted(piece: str) -> int:
            # LangChain counts each piece three times (to size it, to merge it, to drop
            # it from the overlap): three of the four passes of the tokenizer over a log.
            tokens = known.get(piece)
            if tokens is None:
                tokens = known[piece] = count(piece)
            return tokens

        splitter = _splitter(strategy, parsed.language, size, overlap, counted)

        def split(start: int, end: int) -> list[tuple[str, int]]:
            span = text[start:end]
            found_pieces = []
            prev_start, prev_end = -1, 0
            got = splitter.split_text(span)
            known.clear()  # the span's pieces: not kept for the next span
            for piece in got:
                # A piece may overlap the one before but always ends past it: searching
                # from its start alone placed a repeated heading ('### Commits') at its
                # first occurrence, inside the piece before.
                lo = max(prev_start + 1, prev_end - len(piece) + 1)
                found = span.find(piece, lo)
                at = found if found >= 0 else lo
                found_pieces.append((piece, start + at))
                prev_start, prev_end = at, at + len(piece)
            return found_pieces

        # Tables go row-wise, every chunk under the table's header (split as text, a
        # spreadsheet's later chunks were rows of values with no column names).
        tables: list[_Table] = []
        cursor = 0
        if strategy == "table":
            form = parsed.csv_form or csv_form(text)
            table = _csv_table(text, form, plan_warnings) if form else None
            tables = [table] if table is not None else []
            hint = _SEP_LINE.match(text)
            cursor = hint.end() if hint else 0  # Excel's, not the file's text
        elif strategy == "markdown":
            tables = _markdown_tables(text)
        elif strategy == "code" and parsed.language == "sql":
            tables = _sql_tables(text, parsed.sql_columns, size, count)
        pieces = []
        for table in tables:
            grouped = _table_pieces(table, size, encoding, count)
            if grouped is None:
                continue  # stays in the text around it
            pieces.extend(split(cursor, table.start))
            pieces.extend(grouped)
            cursor = table.end
        pieces.extend(split(cursor, len(text)))

    plan = ChunkPlan(
        chunks=[],
        token_count=total_tokens,
        chunked=not whole,
        strategy=strategy,
        text_length=len(text),
        warnings=plan_warnings,
    )
    if strategy == "markdown":
        pieces = _closing_fences_back(pieces, text, blocks)
        pieces = _code_blocks_forward(pieces, text, blocks, size, count)
    elif strategy == "code" and not whole:
        pieces = _comments_forward(pieces, text, parsed.language)
    bounded: list[_Piece] = []
    for piece, start in pieces:
        for part, at, tokens in _enforce_limit(piece, size, encoding, count):
            if not part.strip():
                plan.dropped_empty += 1
                continue
            raw = text.startswith(part, start + at)
            bounded.append(_Piece(part, start + at, tokens, raw))
    if not whole:
        floor = min(settings.min_chunk_tokens, size // 4)
        bounded, plan.joined_small = _join_small(
            bounded, text, floor, _titles_only(strategy, parsed.language), size, encoding, count
        )
    fences = _Fences(text, blocks, count) if blocks and not whole else None
    if fences is not None and fences.room <= size // 4:  # else too small to spare it
        bounded = [part for item in bounded for part in fences.balance(item, size, encoding)]
    # A text or code file's text is the file's own (decoded, CRLF as LF): its chunks can
    # say their lines, and code the definition each belongs to.
    lines = outline(text, parsed.language) if parsed.file_type in ("code", "text") else None
    above = parsed.headings_above
    heading_paths = _HeadingPaths(headings, above) if headings or above else None
    seen: set[str] = set()
    for item in bounded:
        digest = content_hash(item.text)
        if digest in seen:
            plan.dropped_duplicates += 1
            continue
        seen.add(digest)
        start, end = item.start, item.end
        first = max(0, bisect.bisect_right(starts, start) - 1)
        last = max(0, bisect.bisect_right(starts, max(start, end - 1)) - 1)
        metadata = dict(base_metadata)
        metadata.update(
            file_type=parsed.file_type,
            chunk_index=len(plan.chunks),
            token_count=item.tokens,
            content_hash=digest,
            chunk_strategy=strategy,
            chunked=not whole,
        )
        page_values = [p for p in pages[first : last + 1] if p is not None]
        if page_values:
            metadata["page_start"] = min(page_values)
            metadata["page_end"] = max(page_values)
        spans = [t for t in times[first : last + 1] if t is not None]
        if spans:  # where in the recording: seconds
            metadata["time_start"] = spans[0][0]
            metadata["time_end"] = max(b for _, b in spans)
        if any(scanned[first : last + 1]):
            metadata["ocr"] = True  # read from an image: expect recognition errors
        if heading_paths is not None:
            # A slide's title heads that slide only: a slide without one is under none.
            scope = starts[first] if parsed.file_type in _SLIDES else 0
            path = heading_paths.at(start, scope)
            if path:
                metadata["heading_path"] = path
        if parsed.language:
            metadata["language"] = parsed.language
        if item.raw:
            # The chunk is the document's own text there: document_text()[start:end].
            metadata["start_index"] = start
            metadata["end_index"] = end
        if lines is not None and item.raw:
            metadata["line_start"] = lines.line(start) + 1
            metadata["line_end"] = lines.line(max(start, end - 1)) + 1
            symbol = lines.symbol(start, end)
            if symbol:
                metadata["symbol"] = symbol
        plan.chunks.append(Chunk(item.text, metadata))
    for chunk in plan.chunks:
        chunk.metadata["chunk_count"] = len(plan.chunks)
    if found:
        plan.masked = found
        plan.warnings.append(masked_warning(found))
    return plan


@dataclass
class _Piece:
    text: str
    start: int  # offset in the document's text
    tokens: int
    raw: bool  # the text is the document's own, at ``start`` (a table's rows are not)
    source_end: int | None = None  # where the text it stands for ends, when not raw

    @property
    def end(self) -> int:
        return self.source_end if self.source_end is not None else self.start + len(self.text)


_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8's continuation bytes


def token_offset(encoding: Any, tokens: list[int], index: int) -> int:
    """Where ``tokens[index]`` starts in their text, in characters: tiktoken's
    ``decode_with_offsets(tokens)[1][index]`` (a token that starts inside a character
    counts from that character), for one token. That function walks every byte of every
    token in Python, and took a quarter of the time to chunk a zip of short notes."""
    before = len(encoding.decode_bytes(tokens[:index]).translate(None, _CONTINUATION))
    inside = encoding.decode_single_token_bytes(tokens[index])[0] in _CONTINUATION
    return max(0, before - inside)


def _enforce_limit(text: str, limit: int, encoding: Any, count: Any) -> list[tuple[str, int, int]]:
    """``(part, offset in text, tokens)``: the text itself when within ``limit`` tokens,
    else the fewest parts of about equal size, each cut at a line break or a space near
    its even point (a cut at exactly ``limit`` tokens left a word's last letters as a
    chunk of their own, 'ow', whenever the splitter's estimate ran a few tokens over)."""
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return [(text, 0, len(tokens))]
    if encoding.decode_bytes(tokens).decode("utf-8", errors="replace") != text:
        # Does not round-trip (lone surrogates): cut by tokens.
        parts = [encoding.decode(tokens[i : i + limit]) for i in range(0, len(tokens), limit)]
        return [(part, 0, count(part)) for part in parts]
    n = -(-len(tokens) // limit)
    slack = max(1, limit // 8)  # how far back a cut may move to find a break
    cuts = [0]
    for k in range(1, n):
        even = round(k * len(tokens) / n)
        hi = max(token_offset(encoding, tokens, even), cuts[-1] + 1)
        lo = max(token_offset(encoding, tokens, max(even - slack, 0)), cuts[-1] + 1)
        window = text[lo:hi]
        brk = window.rfind("\n")
        if brk < 0:  # else after a sentence, else at any space
            brk = max((m.start() for m in _SENTENCE_END.finditer(window)), default=-1)
        if brk < 0:
            brk = max(window.rfind(" "), window.rfind("\t"))
        cuts.append(lo + brk + 1 if brk >= 0 else hi)
    cuts.append(len(text))
    out: list[tuple[str, int, int]] = []
    for a, b in itertools.pairwise(cuts):
        part = text[a:b].strip()
        if not part:
            continue
        at = a + text[a:b].index(part[0])
        tokens_in = count(part)
        if tokens_in <= limit:
            out.append((part, at, tokens_in))
        else:  # the cut moved back, so this part grew past the limit: split it again
            again = _enforce_limit(part, limit, encoding, count)
            out.extend((sub, at + off, sub_tokens) for sub, off, sub_tokens in again)
    return out


def _closing_fences_back(
    pieces: list[tuple[str, int]], text: str, blocks: list[tuple[int, int, int]]
) -> list[tuple[str, int]]:
    """A piece that begins with a code block's closing fence gives it back to the piece
    before it. LangChain's Markdown separators split before every fence line, closing
    ones too: the piece after a code block began with a lone ```, and read alone its
    fences paired the wrong way, prose as code (61 of 2,448 chunks of the HTML and
    Markdown files sampled here)."""
    # closing fence -> the end of its line, newline included
    closings = {fence: min(len(text), end + 1) for _, fence, end in blocks}
    out: list[tuple[str, int]] = []
    for piece, start in pieces:
        fence_end = closings.get(start)
        if fence_end is not None and text.startswith(piece, start):
            if out and text.startswith(out[-1][0], out[-1][1]):
                before, at = out[-1]
                if at + len(before) < fence_end:
                    out[-1] = (text[at:fence_end].rstrip("\n"), at)
            end = start + len(piece)
            rest = text[fence_end:end]
            start = end - len(rest.lstrip())
            piece = text[start:end]
            if not piece.strip():
                continue
        out.append((piece, start))
    return out


class _Fences:
    """Closes the fences of a Markdown code block cut between chunks: a chunk that
    begins inside a block opens it again with the block's opening line, one that ends
    inside closes it. Unbalanced, a chunk's code read as prose and, pasted into a
    prompt, its lone fence turned the prose after it into code: of 2,804 chunks of the
    HTML and Markdown files sampled here, 157 began inside a block and 74 were left
    with an open fence; 206 are fenced now, at a cost of 2 more chunks (a piece the
    fences would take past the limit is cut in two). Such a chunk is no longer the
    document's text as it stands, so it has no ``start_index``."""

    _LONGEST_OPENER = 12  # tokens: a longer opening line is cut to its fence and first word

    def __init__(self, text: str, blocks: list[tuple[int, int, int]], count: Any) -> None:
        self.text = text
        self.count = count
        self.blocks = blocks
        self.opens = [start for start, _, _ in blocks]
        self.openers: list[str] = []
        self.closers: list[str] = []
        self.bodies: list[int] = []  # where each block's code starts, after its opening line
        room = 0
        for start, _, _ in blocks:
            line_end = text.find("\n", start)
            line_end = len(text) if line_end < 0 else line_end
            self.bodies.append(min(line_end + 1, len(text)))
            line = text[start:line_end].strip()
            fence = _FENCE.match(line)
            assert fence is not None
            if count(line) > self._LONGEST_OPENER:
                line = fence[1] + " ".join(line[fence.end() :].split()[:1])
            self.openers.append(line)
            self.closers.append(fence[1])
            room = max(room, count(f"{line}\n") + count(f"\n{fence[1]}"))
        self.room = room  # the most tokens a piece's fences take

    def _block(self, offset: int, *, end: bool) -> int | None:
        """The block a piece starting (or ending, ``end``) at ``offset`` is cut inside:
        it starts in the block's body, or ends past its opening fence and before its
        closing one."""
        i = bisect.bisect_right(self.opens, offset - end) - 1
        if i < 0:
            return None
        closing = self.blocks[i][1]
        if end:
            return i if offset <= closing else None
        return i if self.bodies[i] <= offset < closing else None

    def balance(self, piece: _Piece, size: int, encoding: Any) -> list[_Piece]:
        """The piece with its fences, split in about equal parts first if they would take
        it past ``size`` tokens."""
        if not piece.raw:
            return [piece]
        head = tail = ""
        opened = self._block(piece.start, end=False)
        if opened is not None:
            head = self.openers[opened] + "\n"
        closed = self._block(piece.end, end=True)
        if closed is not None:
            tail = "\n" + self.closers[closed]
        if not head and not tail:
            return [piece]
        # The first line's indent, which the cut had stripped, if it has room.
        line = self.text.rfind("\n", 0, piece.start) + 1
        indent = self.text[line : piece.start] if head else ""
        for lead in dict.fromkeys(("" if indent.strip() else indent, "")):
            text = f"{head}{lead}{piece.text}{tail}"
            tokens = self.count(text)
            if tokens <= size:
                return [_Piece(text, piece.start, tokens, False, piece.end)]
        parts = _enforce_limit(piece.text, size - self.room, encoding, self.count)
        if len(parts) == 1:  # cannot be cut
            return [piece]
        return [
            fenced
            for part, at, part_tokens in parts
            for fenced in self.balance(
                _Piece(part, piece.start + at, part_tokens, True), size, encoding
            )
        ]


def _code_blocks_forward(
    pieces: list[tuple[str, int]],
    text: str,
    blocks: list[tuple[int, int, int]],
    size: int,
    count: Any,
) -> list[tuple[str, int]]:
    """A code block cut between two pieces goes whole into the second, from its opening
    fence, when it ends there and the piece stays within ``size`` tokens: the first
    piece ended with the block's first lines and an open fence, the second began with
    code and no fence. Of 2,803 chunks of the HTML and Markdown files sampled here, 179
    began inside a block, 157 now: most of the rest are blocks longer than a chunk."""
    opens = [start for start, _, _ in blocks]
    out: list[tuple[str, int]] = []
    for piece, start in pieces:
        end = start + len(piece)
        if out and text.startswith(piece, start) and text.startswith(*out[-1]):
            before, at = out[-1]
            i = bisect.bisect_right(opens, at + len(before)) - 1
            if i >= 0:
                opened, _, closed = blocks[i]
                if at < opened < start <= closed <= end and count(text[opened:end]) <= size:
                    out[-1] = (text[at:opened].rstrip(), at)
                    piece, start = text[opened:end], opened
        out.append((piece, start))
    return out


# Lines that lead the code under them (comments, doc comments, decorators), by the
# language's comment marks. A "*" line continues a block comment: it may be moved with
# the comment's first line, never lead a move alone. C's "#" is the preprocessor.
_SLASH = r"//|/\*|\*"
_LEAD_MARKS = {
    **dict.fromkeys(("python", "julia", "elixir"), r"@|#"),
    **dict.fromkeys(("shell", "ruby", "perl", "r", "make", "dockerfile", "hcl"), r"#"),
    **dict.fromkeys(("c", "cpp", "go", "proto", "sol", "zig", "fsharp"), _SLASH),
    **dict.fromkeys(
        ("js", "ts", "vue", "svelte", "java", "kotlin", "scala", "swift", "groovy", "dart"),
        _SLASH + r"|@",
    ),
    "csharp": _SLASH,
    "rust": _SLASH + r"|#\[",
    "php": _SLASH + r"|#",
    **dict.fromkeys(("sql", "lua", "haskell"), r"--"),
    "latex": r"%",
}
_LEAD_LINE = {
    language: re.compile(rf"[ \t]*(?:{marks})(?!!)") for language, marks in _LEAD_MARKS.items()
}
_MOVABLE_LINES = 40  # the most comment lines moved at once
_LONGEST_LEAD = 1000  # characters: a longer line is not moved with the code under it


def _comments_forward(
    pieces: list[tuple[str, int]], text: str, language: str | None
) -> list[tuple[str, int]]:
    """A piece that ends with a comment, a doc comment or decorators hands them to the
    code under them, at the start of the piece after. Split at LangChain's ``"\\ndef "``
    or ``"\\nvoid "``, a function's chunk began at its ``def`` and its decorators, or
    its doc comment, ended the chunk before (120 of 4,006 cuts in the C, C++, JS, PHP,
    proto and Python files sampled here; 30 are left: comments over 40 lines, and
    pieces grown past the limit, which are split evenly later, at a line near the
    middle, sometimes the same one)."""
    lead = _LEAD_LINE.get(language or "")
    if lead is None:
        return pieces
    out: list[tuple[str, int]] = []
    for piece, start in pieces:
        if out and text.startswith(piece, start) and text.startswith(*out[-1]):
            before, at = out[-1]
            led = _leading_lines_start(text, start, lead)
            if led < start and at + len(before) > led:
                if led <= at:  # the piece before is all comment: it joins the code under it
                    out.pop()
                    led = at
                elif at + len(before) <= start:  # no overlap: it ends before them now
                    out[-1] = (text[at:led].rstrip(), at)
                piece, start = text[led : start + len(piece)], led
        out.append((piece, start))
    return out


def _leading_lines_start(text: str, start: int, lead: re.Pattern[str]) -> int:
    """Where the comment and decorator lines right above the line at ``start`` begin,
    with no blank line between (``start`` if none, or if they begin inside a block
    comment: only the block's first line may start a move)."""
    line = start
    while line > 0 and text[line - 1] in " \t":
        line -= 1
    if line > 0 and text[line - 1] != "\n":
        return start  # the piece begins mid-line
    top = start
    for _ in range(_MOVABLE_LINES):
        if line == 0:
            break
        # Looked for within a bound: on a file of long lines (minified), searching back
        # to the line's start for every piece took seconds.
        above = text.rfind("\n", max(0, line - 1 - _LONGEST_LEAD), line - 1) + 1
        if (above == 0 and line - 1 > _LONGEST_LEAD) or not lead.match(text, above, line - 1):
            break
        top = line = above
    while top < start and text[top:start].lstrip().startswith("*"):
        top = text.find("\n", top, start) + 1 or start  # a block comment's inside
    return top + len(text[top:start]) - len(text[top:start].lstrip()) if top < start else start


def _only_headings(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(MARKDOWN_HEADING.fullmatch(line) for line in lines)


def _titles_only(strategy: str, language: str | None) -> Callable[[str], bool] | None:
    """How to tell a piece that is section titles alone, for the text's markup."""
    if strategy == "markdown":
        return _only_headings
    if strategy == "code" and language in MARKUPS:
        return MARKUPS[language].titles_only
    return None


def _join_small(
    pieces: list[_Piece],
    text: str,
    floor: int,
    titles_only: Callable[[str], bool] | None,
    size: int,
    encoding: Any,
    count: Any,
) -> tuple[list[_Piece], int]:
    """Join each piece under ``floor`` tokens, and each piece of section titles alone
    (``titles_only``: Markdown headings, reStructuredText titles), to a neighbour: a
    heading to what follows it, anything else to what precedes it. A pair
    over ``size`` is split evenly instead. The splitter leaves such scraps where a
    section's next part is too big to share a chunk with them ('# Intro' before a long
    paragraph, a closing '```', 'Output::'); alone they are noise in retrieval. Returns
    the pieces and how many small ones no longer stand alone."""

    def small(piece: _Piece) -> bool:
        return piece.raw and (piece.tokens < floor or leads(piece))

    def leads(piece: _Piece) -> bool:
        return titles_only is not None and titles_only(piece.text)

    def joinable(a: _Piece, b: _Piece) -> bool:
        return a.raw and b.raw and a.start <= b.start and not text[a.end : b.start].strip()

    def join(a: _Piece, b: _Piece) -> list[_Piece]:
        if not b.raw:  # atop a table's first rows, when they have room for it
            joined = f"{a.text}\n\n{b.text}"
            tokens = count(joined)
            if tokens > size:
                return [a, b]
            return [_Piece(joined, a.start, tokens, text.startswith(joined, a.start))]
        start = a.start
        span = text[start : max(a.end, b.end)]
        return [
            _Piece(part, start + at, tokens, text.startswith(part, start + at))
            for part, at, tokens in _enforce_limit(span, size, encoding, count)
        ]

    out: list[_Piece] = []
    carry: _Piece | None = None  # a heading (or a first scrap) waiting for what follows
    for piece in pieces:
        if carry is not None:
            if joinable(carry, piece) or (not piece.raw and carry.start <= piece.start):
                *done, piece = join(carry, piece)
                out.extend(done)
            else:
                out.append(carry)
            carry = None
        if small(piece):
            if leads(piece) or not out or not joinable(out[-1], piece):
                carry = piece
                continue
            out.extend(join(out.pop(), piece))
            continue
        out.append(piece)
    if carry is not None:
        if out and joinable(out[-1], carry):
            out.extend(join(out.pop(), carry))
        else:
            out.append(carry)
    alone = {(piece.start, piece.text) for piece in out}
    return out, sum(1 for p in pieces if small(p) and (p.start, p.text) not in alone)
