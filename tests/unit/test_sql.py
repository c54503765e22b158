"""SQL dumps: INSERT rows and COPY blocks chunked as tables under a header naming the
table and its columns, and a long dump cut in runs among a statement's rows."""

from __future__ import annotations

import random
import re

import pytest

from rag_ingest import sql
from rag_ingest.chunking import ChunkPlan, chunk_document, join_plans, line_runs
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.settings import ChunkSettings, FileConfig
from rag_ingest.tokens import count_tokens

SETTINGS = ChunkSettings(
    file_configs={"code": FileConfig(strategy="code", chunk_tokens=96, overlap_tokens=0)},
    whole_document_tokens=0,
)
HEADER = "INSERT INTO `orders` (`id`, `customer`, `note`) VALUES"

SCHEMA = """\
-- MySQL dump
DROP TABLE IF EXISTS `orders`;
CREATE TABLE `orders` (
  `id` int NOT NULL AUTO_INCREMENT,
  `customer` varchar(64) NOT NULL DEFAULT 'a, b)',
  `note` text,
  PRIMARY KEY (`id`),
  KEY `by_customer` (`customer`, `id` DESC),
  CONSTRAINT `fk` FOREIGN KEY (`customer`) REFERENCES `c` (`name`)
) ENGINE=InnoDB;

LOCK TABLES `orders` WRITE;
"""


def _dump(rows: int, per_line: int = 40, seed: int = 3) -> str:
    """A mysqldump: extended INSERT lines of ``per_line`` rows, values with quotes,
    escapes, commas, semicolons and parentheses in them."""
    rng = random.Random(seed)
    words = ["it''s", "a\\'b", "x;y", "(p, q)", "done", "left", "paid"]
    lines = []
    for first in range(0, rows, per_line):
        values = ",".join(
            f"({i},'c{i % 7}','CANARY-{i} {' '.join(rng.choices(words, k=4))}')"
            for i in range(first, min(rows, first + per_line))
        )
        lines.append(f"INSERT INTO `orders` VALUES {values};\n")
    return SCHEMA + "".join(lines) + "UNLOCK TABLES;\n"


def _parsed(text: str) -> ParsedDocument:
    return ParsedDocument("code", [Segment(text)], parser="text[utf-8]", language="sql")


def _canaries(plan: ChunkPlan) -> list[int]:
    return [int(n) for c in plan.chunks for n in re.findall(r"CANARY-(\d+) ", c.text)]


def test_a_create_tables_columns_are_read_without_its_keys_and_constraints() -> None:
    text = SCHEMA + (
        'CREATE TABLE IF NOT EXISTS "public"."Events" (id serial, "kind" text, body jsonb '
        "DEFAULT '{}', CHECK (id > 0));\n"
        "CREATE TEMPORARY TABLE scratch(a int);\n"
    )
    assert sql.columns(text) == {
        "orders": "(`id`, `customer`, `note`)",
        "events": '(id, "kind", body)',
        "scratch": "(a)",
    }
    assert sql.table_key('"public"."Events"') == sql.table_key("events") == "events"


def test_insert_rows_and_copy_lines_are_read_whole() -> None:
    text = (
        "COPY public.events (id, body) FROM stdin;\n1\tone\n\n2\ttwo; (x)\n\\.\n"
        "INSERT INTO t VALUES (1, 'it''s', ST_GeomFromText('POINT(1 2)')),\n"
        "  (2, 'a\\'b;c', ST_MakePoint(1, 2));\n"
        'insert ignore into `s`.`t`(a,b) values (1,"q"),(2,3) ON DUPLICATE KEY UPDATE a=a;\n'
        "INSERT INTO t SELECT * FROM u;\n"
        "COPY orders FROM stdin;\n7\tlast\n"
    )
    found = list(sql.statements(text, {"orders": "(id, note)"}))
    assert [(s.header, [row for _, row in s.rows]) for s in found] == [
        ("COPY public.events (id, body) FROM stdin;", ["1\tone", "2\ttwo; (x)"]),
        (
            "INSERT INTO t VALUES",
            ["(1, 'it''s', ST_GeomFromText('POINT(1 2)')),", "(2, 'a\\'b;c', ST_MakePoint(1, 2));"],
        ),
        ("insert ignore into `s`.`t`(a,b) values", ['(1,"q"),', "(2,3)"]),
        ("COPY orders (id, note) FROM stdin;", ["7\tlast"]),  # its end cut off: to the text's
    ]
    assert all(text.startswith(row, at) for s in found for at, row in s.rows)
    # A statement ends after its last row: what follows is not a row.
    assert text[found[2].end :].startswith("ON DUPLICATE KEY")


def test_a_string_ending_in_a_backslash_is_read_as_postgresql_writes_it() -> None:
    # Standard SQL (PostgreSQL's pg_dump): a backslash is a character, and 'C:\' a
    # whole string; read as MySQL's escape, it took the quote, and the rows ended there.
    rows = ",\n".join(
        f"({i}, '{'C:' + chr(92) if i % 50 == 7 else 'path'}', 'CANARY-{i} ')" for i in range(300)
    )
    text = f"INSERT INTO t (a, b, c) VALUES\n{rows};\nSELECT 1;\n"
    (found,) = sql.statements(text, {})
    assert len(found.rows) == 300 and found.rows[7][1] == "(7, 'C:\\', 'CANARY-7 '),"
    plan = chunk_document(_parsed(text), SETTINGS, {})
    assert all(c.text.startswith("INSERT INTO t (a, b, c) VALUES\n(") for c in plan.chunks[:-1])
    assert _canaries(plan) == list(range(300))


def test_a_long_insert_is_chunked_in_rows_each_chunk_under_the_table_and_its_columns() -> None:
    text = _dump(120)
    plan = chunk_document(_parsed(text), SETTINGS, {})
    rows = [c for c in plan.chunks if "CANARY-" in c.text]
    assert len(rows) > 10
    for chunk in rows:
        header, *lines = chunk.text.split("\n")
        assert header == HEADER
        assert all(re.fullmatch(r"\((\d+),'c\d'.*\)[,;]", line) for line in lines), lines
        assert chunk.metadata["token_count"] == count_tokens(chunk.text) <= 96
    # Every row once, in order; the schema and the statements around them stay code.
    assert _canaries(plan) == list(range(120))
    assert plan.chunks[0].text.startswith("-- MySQL dump")
    assert plan.chunks[0].metadata["symbol"] == "orders"  # its CREATE TABLE
    assert plan.chunks[-1].text == "UNLOCK TABLES;"
    # A short INSERT (not past a chunk) stays with the statements around it.
    short = chunk_document(_parsed(_dump(2)), SETTINGS, {})
    assert not any(HEADER in c.text for c in short.chunks)
    assert _canaries(short) == [0, 1]


def test_every_chunk_of_rows_fits_though_its_last_row_costs_more_without_a_line_break() -> None:
    # "'),\n" is one token and "')," two: summed with their line breaks, some groups
    # of rows came out a token over the size, and the limit cut them in two, the
    # second part without the header.
    table = FileConfig(strategy="code", chunk_tokens=64, overlap_tokens=0)
    settings = ChunkSettings(file_configs={"code": table}, whole_document_tokens=0)
    rows = ",\n".join(f"({i}, 'note {i} done.')" for i in range(400))
    text = f"INSERT INTO t (id, note) VALUES\n{rows};\n"
    plan = chunk_document(_parsed(text), settings, {})
    assert all(c.text.startswith("INSERT INTO t (id, note) VALUES\n(") for c in plan.chunks)
    assert all(c.metadata["token_count"] <= 64 for c in plan.chunks)
    found = [int(n) for c in plan.chunks for n in re.findall(r"\((\d+), 'note", c.text)]
    assert found == list(range(400))


def test_a_long_dump_is_cut_in_runs_among_a_statement_s_rows_each_under_its_header() -> None:
    # Rows a line each, as phpMyAdmin writes them, in one statement that spans the
    # runs; then a COPY block that spans them too.
    rows = ",\n".join(f"({i}, 'c{i % 5}', 'CANARY-{i} x')" for i in range(300))
    copy = "".join(f"{i}\tc{i % 5}\tCANARY-{i} y\n" for i in range(300, 600))
    text = (
        f"{SCHEMA}INSERT INTO `orders` VALUES\n{rows};\n\n"
        f"CREATE TABLE notes (id int, who text, note text);\n"
        f"COPY notes FROM stdin;\n{copy}\\.\n\n"
        + "".join(f"ALTER TABLE notes ADD COLUMN extra_{i} text;\n" for i in range(120))
        + "SELECT 1;\n"
    )
    parsed = _parsed(text)
    runs = line_runs(parsed, SETTINGS, len(text) // 6 + 1)
    assert len(runs) == 6
    copy_header = "COPY notes (id, who, note) FROM stdin;\n"
    firsts = [run.text[: run.text.index("\n") + 1] for run, _, _ in runs[1:]]
    assert firsts[:-1] == [HEADER + "\n"] * 2 + [copy_header] * 2, firsts
    assert firsts[-1].startswith("ALTER TABLE")  # past the block's end: no header
    heads = [*firsts[:-1], ""]
    # Each run is its header and the whole's text from where the run before ends; its
    # offset and lines count the header in.
    assert (
        "".join(run.text[len(head) :] for (run, _, _), head in zip(runs, ["", *heads], strict=True))
        == text
    )
    for (run, offset, lines), head in zip(runs[1:], heads, strict=True):
        assert text[offset + len(head) :].startswith(run.text[len(head) :])
        assert lines == text.count("\n", 0, offset + len(head)) - head.count("\n")
        assert run.sql_columns == sql.columns(text)
    _, joined = _chunked_in_runs(runs)
    one = chunk_document(parsed, SETTINGS, {})
    for plan in (joined, one):
        assert _canaries(plan) == list(range(600))
        for chunk in plan.chunks:
            if "CANARY-" in chunk.text:
                assert chunk.text.startswith((HEADER + "\n(", copy_header)), chunk.text[:80]
            else:  # the document's own text there
                start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
                assert text[start:end] == chunk.text
                assert chunk.metadata["line_start"] == text.count("\n", 0, start) + 1
    assert joined.chunks[-1].text.endswith("SELECT 1;")
    assert [c.metadata["chunk_index"] for c in joined.chunks] == list(range(len(joined.chunks)))
    # Without the runs' columns, a run's INSERTs would name none.
    later = _parsed(runs[-2][0].text.replace(copy_header, "COPY notes FROM stdin;\n"))
    assert chunk_document(later, SETTINGS, {}).chunks[0].text.startswith("COPY notes FROM")


def test_a_dump_s_runs_cut_between_one_line_statements_take_no_header() -> None:
    text = _dump(600)
    runs = line_runs(_parsed(text), SETTINGS, len(text) // 4 + 1)
    assert len(runs) == 4
    assert "".join(run.text for run, _, _ in runs) == text
    assert all(run.text.startswith("INSERT INTO `orders` VALUES (") for run, _, _ in runs[1:])
    _, joined = _chunked_in_runs(runs)
    assert _canaries(joined) == list(range(600))
    rows = [c for c in joined.chunks if "CANARY-" in c.text]
    assert all(c.text.startswith(HEADER + "\n(") for c in rows)
    # Prose settings (SQL read as prose) or a short dump: in one piece.
    assert line_runs(_parsed(text), SETTINGS, len(text)) == []
    prose = ChunkSettings(file_configs={"code": FileConfig(strategy="prose")})
    assert line_runs(_parsed(text), prose, len(text) // 4) == []


def _chunked_in_runs(runs: list[tuple[ParsedDocument, int, int]]) -> tuple[object, ChunkPlan]:
    plans = [chunk_document(run, SETTINGS, {}) for run, _, _ in runs]
    return plans, join_plans(plans, [(offset, lines) for _, offset, lines in runs])


def test_row_cuts_read_a_statement_spanning_many_cuts_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = ",\n".join(f"({i})" for i in range(1000))
    text = f"INSERT INTO t VALUES\n{rows};\nSELECT 1;\n"
    cuts = [text.index(f"\n({i})") + 1 for i in range(100, 1000, 100)]
    cuts.append(text.index("SELECT"))
    read: list[int] = []
    original = sql._ROWS

    class Counting:
        def match(self, where: str, at: int) -> re.Match[str] | None:
            read.append(at)
            return original[0].match(where, at)

    monkeypatch.setattr(sql, "_ROWS", (Counting(), original[1]))
    found = sql.row_cuts(text, cuts, {})
    assert found[:-1] == [(cut, "INSERT INTO t VALUES") for cut in cuts[:-1]]
    assert found[-1] is None  # past the statement's end
    # Read forward once (each cut's row again), not from the statement's head each time.
    assert read == sorted(read) and len(read) <= 1001 + len(cuts)


def test_insert_statements_a_row_each_are_chunked_as_one_table() -> None:
    # SQLite's .dump: a statement a row, columns without types, values built by calls.
    rows = "".join(
        f"INSERT INTO notes VALUES({i},'Note {i}',replace('CANARY-{i} it''s\\nok','\\n',"
        "char(10)),NULL);\n"
        for i in range(200)
    )
    text = (
        'CREATE TABLE notes(id INTEGER PRIMARY KEY, title, body TEXT NOT NULL, "created at");\n'
        f"{rows}-- between\n"
        "INSERT INTO notes VALUES(200,'Note 200','CANARY-200 ',NULL);\n"
        "INSERT INTO other VALUES(201,'CANARY-201 ');\n"
    )
    header = 'INSERT INTO notes (id, title, body, "created at") VALUES'
    found = list(sql.statements(text, sql.columns(text)))
    assert [(s.header, len(s.rows)) for s in found] == [
        (header, 200),  # a comment between ends it, as another table does
        (header, 1),
        ("INSERT INTO other VALUES", 1),
    ]
    plan = chunk_document(_parsed(text), SETTINGS, {})
    tables = [c for c in plan.chunks if c.text.startswith(header + "\n(")]
    assert len(tables) > 10
    assert all(line.endswith("NULL);") for c in tables for line in c.text.split("\n")[1:])
    assert _canaries(plan) == list(range(202))
