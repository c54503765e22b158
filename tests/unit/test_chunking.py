from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

from rag_ingest.chunking import (
    ChunkPlan,
    chunk_document,
    chunk_id,
    chunk_ids,
    fit_to_window,
    token_offset,
)
from rag_ingest.errors import TokenizerUnavailableError
from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.settings import ChunkSettings, FileConfig
from rag_ingest.tokens import count_tokens, get_encoding
from tests import docs

SETTINGS = ChunkSettings(chunk_tokens=128, overlap_tokens=16, whole_document_tokens=64)
BASE = {"source": "s3://b/k", "session_id": "s1"}


def _chunks(tmp_path: Path, name: str, settings: ChunkSettings = SETTINGS):
    path = tmp_path / Path(name).name
    path.write_bytes(docs.corpus()[name])
    return chunk_document(parse_file(str(path), name, ParseOptions()), settings, BASE)


def test_long_pdf_chunks_respect_the_limit_and_know_their_pages(tmp_path: Path) -> None:
    plan = _chunks(tmp_path, "reports/long.pdf")
    assert plan.chunked and len(plan.chunks) > 4
    for chunk in plan.chunks:
        meta = chunk.metadata
        assert chunk.text.strip()
        assert count_tokens(chunk.text) <= 128 and meta["token_count"] <= 128
        assert 1 <= meta["page_start"] <= meta["page_end"] <= 4
        assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert plan.chunks[-1].metadata["page_end"] == 4
    assert [c.metadata["chunk_index"] for c in plan.chunks] == list(range(len(plan.chunks)))
    assert {c.metadata["chunk_count"] for c in plan.chunks} == {len(plan.chunks)}


def test_a_sentence_across_a_pdf_page_break_stays_one(tmp_path: Path) -> None:
    filler = " ".join(
        f"Clause {n} sets out the terms in plain words for everyone." for n in range(6)
    )
    pages = [
        f"Terms\n{filler} If costs rise, the CANARY-COMMITTEE shall",
        f"review the budget every quarter. {filler}",
        f"{filler} The year ends in March.",
        f"{filler} Its figures go to the pay-",
        "ment office and the CANARY-ANNEX-",
        f"Annex\n{filler}",
    ]
    path = tmp_path / "terms.pdf"
    path.write_bytes(docs.pdf_bytes(pages))
    parsed = parse_file(str(path), "terms.pdf", ParseOptions())
    settings = ChunkSettings(chunk_tokens=80, overlap_tokens=0, whole_document_tokens=0)
    plan = chunk_document(parsed, settings, BASE)
    crossing = [c for c in plan.chunks if "CANARY-COMMITTEE" in c.text]
    assert len(crossing) == 1, [c.text for c in crossing]
    assert "CANARY-COMMITTEE shall review the budget" in crossing[0].text
    assert (crossing[0].metadata["page_start"], crossing[0].metadata["page_end"]) == (1, 2)
    # A page that ends its sentence keeps its paragraph break, and every page its number.
    assert "March.\n\n" in "".join(c.text + "\n\n" for c in plan.chunks)
    # A word hyphenated across a page break is one word; a hyphen before a capital stays.
    text = " ".join(c.text for c in plan.chunks)
    assert "the payment office" in text and "CANARY-ANNEX-" in text
    annex = next(c for c in plan.chunks if c.text.startswith("Annex"))
    assert annex.metadata["page_start"] == 6


def test_small_document_stays_whole_and_says_so(tmp_path: Path) -> None:
    plan = _chunks(tmp_path, "docs/readme.md")
    assert not plan.chunked and len(plan.chunks) == 1
    assert plan.chunks[0].metadata["chunked"] is False


def test_markdown_heading_path(tmp_path: Path) -> None:
    text = (
        "# Guide\n\n"
        + "## Install\n\n"
        + ("install words " * 120)
        + "\n\n## Use\n\n"
        + ("use words " * 120)
    )
    parsed = ParsedDocument("markdown", [Segment(text)], parser="t")
    plan = chunk_document(parsed, SETTINGS, BASE)
    paths = [c.metadata.get("heading_path") for c in plan.chunks]
    assert "Guide > Install" in paths and "Guide > Use" in paths


def test_heading_paths_are_those_of_the_headings_before_in_their_scope() -> None:
    import random

    from rag_ingest.chunking import _HeadingPaths

    def walked(headings: list[tuple[int, int, str]], offset: int, scope: int) -> str:
        stack: list[tuple[int, str]] = []
        for start, level, title in headings:
            if start > offset:
                break
            if start < scope:
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        return " > ".join(title for _, title in stack)

    rng = random.Random(7)
    for _ in range(200):
        starts = sorted(rng.sample(range(1000), rng.randint(1, 30)))
        headings = [(s, rng.randint(1, 4), f"h{s}") for s in starts]
        paths = _HeadingPaths(headings)
        for _ in range(20):
            offset, scope = rng.randint(0, 1000), rng.choice([0, rng.randint(0, 1000)])
            assert paths.at(offset, scope) == walked(headings, offset, scope)
    # Between slides: the second slide's path does not start from the first's.
    paths = _HeadingPaths([(0, 1, "Deck"), (10, 2, "Slide 1"), (50, 2, "Slide 2")])
    assert paths.at(60) == "Deck > Slide 2" and paths.at(60, scope=50) == "Slide 2"
    assert paths.at(40, scope=20) == ""


def test_heading_paths_are_found_without_walking_the_headings_for_every_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 10 MB JSON Lines file (40,000 records, a heading each) spent 65 s of 72 walking
    # its headings from the top for each of its 8,264 chunks.
    import rag_ingest.chunking as chunking

    walked = 0

    class Counted(list):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            nonlocal walked
            for item in super().__iter__():
                walked += 1
                yield item

    found = chunking._headings
    monkeypatch.setattr(chunking, "_headings", lambda *a: Counted(found(*a)))
    text = "".join(f"## Record {i}\n\n{SENTENCE * 3}\n\n" for i in range(400))
    plan = _plan("markdown", text)
    assert len(plan.chunks) > 100
    assert plan.chunks[-1].metadata["heading_path"] == "Record 399"
    assert walked <= 2 * 400


def test_a_heading_path_is_the_headings_words() -> None:
    # pymupdf4llm writes a PDF's bold headings in ** and its contents page's lines as
    # headings with their dot leaders; a name's underscores are its own.
    text = (
        "# **Libtasn1**\n\n## Contents\n\n### 4 Function reference . . . . . . . . . 8\n\n"
        + SENTENCE * 6
        + "\n\n### 5 Index … 9\n\n"
        + SENTENCE * 6
        + "\n\n## **2 ASN.1 structure** handling\n\n"
        + SENTENCE * 6
        + "\n\n### The *__init__* method\n\n"
        + SENTENCE * 6
    )
    plan = _plan("markdown", text)
    paths = {c.metadata.get("heading_path") for c in plan.chunks}
    assert "Libtasn1 > Contents > 4 Function reference" in paths
    assert "Libtasn1 > Contents > 5 Index" in paths  # as the PDF parser writes leaders
    assert "Libtasn1 > 2 ASN.1 structure handling > The __init__ method" in paths


def test_code_is_split_by_language(tmp_path: Path) -> None:
    functions = "\n\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(80))
    parsed = ParsedDocument("code", [Segment(functions)], parser="t", language="python")
    plan = chunk_document(parsed, SETTINGS, BASE)
    assert plan.chunked and all(c.metadata["language"] == "python" for c in plan.chunks)
    assert all(c.text.lstrip().startswith("def ") for c in plan.chunks)


def test_code_and_text_chunks_say_their_lines_and_code_its_definition(tmp_path: Path) -> None:
    source = "import os\n\n\n" + "".join(
        f"class Shape{i}:\n    def area(self):\n        return {i} * self.side ** 2\n\n\n"
        for i in range(40)
    )
    # Written with CRLF and classic Mac line ends: the numbers are still the file's lines.
    for newline in ("\n", "\r\n", "\r"):
        path = tmp_path / "shapes.py"
        path.write_bytes(source.replace("\n", newline).encode())
        plan = chunk_document(parse_file(str(path), "shapes.py", ParseOptions()), SETTINGS, BASE)
        assert plan.chunked
        lines = source.split("\n")
        for chunk in plan.chunks:
            meta = chunk.metadata
            span = "\n".join(lines[meta["line_start"] - 1 : meta["line_end"]])
            assert chunk.text.strip() in span and chunk.text.split("\n")[0] in span, meta
            first = next(line for line in chunk.text.split("\n") if line.strip())
            if first.startswith("class Shape"):
                assert meta["symbol"] == first.split()[1].rstrip(":")
            elif first.strip().startswith("def area"):
                assert meta["symbol"].endswith(".area")
        assert plan.chunks[-1].metadata["line_end"] == source.rstrip("\n").count("\n") + 1
    text = "\n".join(
        f"line {n} of the log, with words enough to fill a chunk." for n in range(1, 201)
    )
    plan = _plan("text", text)
    assert all(
        c.text.startswith(f"line {c.metadata['line_start']} ")
        and f"line {c.metadata['line_end']} " in c.text.split("\n")[-1]
        and "symbol" not in c.metadata
        for c in plan.chunks
    )
    # Other types' text is the parser's, not the file's: no line numbers.
    assert all("line_start" not in c.metadata for c in _plan("markdown", text).chunks)


def test_duplicates_and_blank_chunks_are_dropped() -> None:
    block = "Repeated paragraph with the same words every time. " * 12
    parsed = ParsedDocument("text", [Segment("\n\n".join([block] * 6))], parser="t")
    plan = chunk_document(
        parsed, ChunkSettings(chunk_tokens=128, overlap_tokens=0, whole_document_tokens=0), BASE
    )
    hashes = [c.metadata["content_hash"] for c in plan.chunks]
    assert len(hashes) == len(set(hashes)) and plan.dropped_duplicates > 0


def test_unbreakable_text_is_hard_split_under_the_limit() -> None:
    parsed = ParsedDocument("text", [Segment("x" * 20000)], parser="t")
    plan = chunk_document(parsed, SETTINGS, BASE)
    assert all(c.metadata["token_count"] <= 128 for c in plan.chunks)


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ValueError):
        ChunkSettings(chunk_tokens=64, overlap_tokens=64)


def test_tokenizer_offline_from_bundled_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest import tokens

    tokens.get_encoding.cache_clear()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    import tiktoken.load

    def no_network(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    try:
        assert tokens.count_tokens("hello world") == 2
        assert len(list((tmp_path / "cache").iterdir())) == 1
    finally:
        tokens.get_encoding.cache_clear()


def test_tokenizer_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest import tokens

    tokens.get_encoding.cache_clear()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(tokens, "_bundled", lambda name: None)
    try:
        with pytest.raises(TokenizerUnavailableError, match="bpe-openai"):
            tokens.get_encoding("o200k_base")
    finally:
        tokens.get_encoding.cache_clear()


def test_a_home_cache_that_cannot_be_written_gives_way_to_a_private_temp_one(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only home (AWS Lambda, a hardened container): every document had failed
    # with "PermissionError: '/nonexistent'", and in worker processes as a broken pool.
    from rag_ingest import tokens

    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    temp = tmp_path / "temp"
    temp.mkdir()
    cache = tokens.vocabulary_dir("cl100k_base", temp)
    assert cache == temp / f"rag-ingest-{os.getuid()}" / "tiktoken"
    assert [p.name for p in cache.iterdir()] == ["9b5ad71b2ce5302211f9c61530b329a4922fc6a4"]
    assert (cache.parent.stat().st_mode & 0o777) == 0o700
    assert tokens.vocabulary_dir("cl100k_base", temp) == cache  # found there the next time

    # Another user's (or a shared) directory there is not trusted with the vocabulary.
    shared = tmp_path / "shared"
    (shared / f"rag-ingest-{os.getuid()}").mkdir(parents=True, mode=0o777)
    os.chmod(shared / f"rag-ingest-{os.getuid()}", 0o777)
    with pytest.raises(TokenizerUnavailableError, match="not this user's alone"):
        tokens.vocabulary_dir("cl100k_base", shared)


def test_a_tiktoken_cache_dir_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest import tokens

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(blocked / "cache"))
    with pytest.raises(
        TokenizerUnavailableError,
        match="cannot write the vocabulary of "
        r"'cl100k_base' to TIKTOKEN_CACHE_DIR",
    ):
        tokens.vocabulary_dir("cl100k_base", tmp_path)
    assert not list(tmp_path.glob("rag-ingest-*"))  # the caller's choice is not overridden


def test_sizes_are_fitted_to_an_embedders_window(tmp_path: Path) -> None:
    """A 256-token window caps every size (global, per type, kept-whole) at 190 tokens,
    overlaps in proportion."""
    settings = ChunkSettings()  # the defaults: 512 / 64, whole up to 256, code 384 / 32
    fitted = fit_to_window(settings, 256)
    assert fitted.chunk_tokens == 190 and fitted.overlap_tokens == 24
    assert fitted.whole_document_tokens == 190
    assert fitted.file_configs["code"].chunk_tokens == 190
    assert fitted.file_configs["code"].overlap_tokens == 16
    assert fitted.file_configs["xlsx"].overlap_tokens == 0
    assert fitted.file_configs["pdf"].chunk_tokens is None  # inherits the fitted 190
    assert fit_to_window(settings, 2048) == settings  # a wide window changes nothing
    plan = _chunks(tmp_path, "reports/long.pdf", fitted)
    assert plan.chunked and max(c.metadata["token_count"] for c in plan.chunks) <= 190


def test_table_rows_are_chunked_under_their_header(tmp_path: Path) -> None:
    rows = [f"|   {i:>5} | item-{i:<6} |   {i * 3:>7} |" for i in range(200)]
    markdown = (
        "# Inventory\n\nCANARY-BEFORE the table, some prose.\n\n"
        "|   id | name        |   count |\n|------|-------------|---------|\n"
        + "\n".join(rows)
        + "\n\nCANARY-AFTER the table.\n"
    )
    parsed = ParsedDocument(file_type="markdown", segments=[Segment(markdown)], parser="t")
    plan = chunk_document(parsed, SETTINGS, BASE)
    table = [c for c in plan.chunks if "item-" in c.text]
    assert len(table) > 5
    for chunk in table:
        assert chunk.text.startswith("| id | name | count |\n|---|---|---|\n| ")
        assert chunk.metadata["token_count"] <= 128
        assert chunk.metadata["heading_path"] == "Inventory"
    found = [line for c in table for line in c.text.splitlines()[2:]]
    assert found == [f"| {i} | item-{i} | {i * 3} |" for i in range(200)]  # each row once
    assert "CANARY-BEFORE" in plan.chunks[0].text and "CANARY-AFTER" in plan.chunks[-1].text

    lines = ["order,customer,note"] + [f"{i},cust{i},plain" for i in range(300)]
    lines[5] = '4,cust4,"a note\nover two lines"'
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    parsed = parse_file(str(path), "orders.csv", ParseOptions())
    assert parsed.file_type == "csv"
    plan = chunk_document(parsed, SETTINGS, BASE)
    assert len(plan.chunks) > 5 and plan.strategy == "table"
    assert all(c.text.startswith("order,customer,note\n") for c in plan.chunks)
    import csv
    import io

    records = [r for c in plan.chunks for r in list(csv.reader(io.StringIO(c.text)))[1:]]
    expected = [[str(i), f"cust{i}", "plain"] for i in range(300)]
    expected[4] = ["4", "cust4", "a note\nover two lines"]  # one record, not cut in two
    assert records == expected

    # A TSV with quotes inside its fields past the sniffer's 8 KiB sample (a PyPI listing):
    # the sniffer says doublequote=False, and the writer had failed the whole file at its
    # first such row ("need to escape, but no escapechar set").
    rows = [f"pkg{i}\t1.{i}\tA plain summary of package number {i}" for i in range(300)]
    rows += [f'pkg{i}\t1.{i}\tWrites "{i}" or "{i + 1}" to stdout' for i in range(300, 400)]
    path = tmp_path / "packages.tsv"
    path.write_text("name\tversion\tsummary\n" + "\n".join(rows) + "\n")
    plan = chunk_document(parse_file(str(path), "packages.tsv", ParseOptions()), SETTINGS, BASE)
    assert len(plan.chunks) > 5
    records = [
        r for c in plan.chunks for r in list(csv.reader(io.StringIO(c.text), "excel-tab"))[1:]
    ]
    assert records == [r.split("\t") for r in rows]  # each row once, its quotes as written


def test_a_long_text_is_counted_exactly_in_bounded_memory() -> None:
    """Counted whole, a 75 MB CSV's tokens took 820 MB (a Python int each); in slices
    the count is the same, to the token, for every kind of line start."""
    import random
    import tracemalloc

    from rag_ingest.tokens import count_with, get_encoding

    rng = random.Random(7)
    starts = ["", " ", "  ", "\t", "/", ".", "-", "'s", "é", "7", "Zebra", "\r", "\n", "日本"]
    words = ["alpha", "Beta,", "42", "3.14", "x=1;", "  ", "naïve", "(paren)", "!!", "/path"]
    lines = [
        rng.choice(starts) + " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        for _ in range(60_000)
    ]
    text = "\n".join(lines)
    assert len(text) > 4 * (1 << 18)  # several slices
    for name in ("cl100k_base", "o200k_base"):
        encoding = get_encoding(name)
        whole = len(encoding.encode(text, disallowed_special=()))
        tracemalloc.start()
        try:
            assert count_with(encoding, text) == whole
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 40 * (1 << 18)  # a slice's tokens, not the text's (~36 B a token)


def test_a_text_is_tokenized_twice_not_four_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once whole (its token count), once a piece at a time: LangChain's splitter counts
    each piece three times (to size it, to merge it, to drop it from the overlap)."""
    from rag_ingest import chunking

    lines = [
        f"2026-12-03T10:00:{i % 60:02d} worker {i % 7} request {i * 7919} ok" for i in range(3000)
    ]
    parsed = ParsedDocument("text", [Segment("\n".join(lines))], parser="text")
    counted: list[int] = []
    real = chunking.count_with

    def count_with(encoding: object, text: str) -> int:
        counted.append(len(text))
        return real(encoding, text)

    monkeypatch.setattr(chunking, "count_with", count_with)
    plan = chunk_document(parsed, ChunkSettings(), {})
    assert len(plan.chunks) > 10 and plan.chunks[1].metadata["start_index"] > 0
    assert sum(counted) <= 2 * len(parsed.text) + len(plan.chunks) * 600  # overlap's seams


def test_a_comment_in_fenced_code_is_no_heading() -> None:
    prose = "More prose about the install and what it needs. " * 30
    md = (
        "# Install\n\nRun the steps.\n\n```bash\n# install deps\npip install x\n"
        "```` not a closing fence\n# run it\n```\n\n"
        f"{prose}\n\n~~~~python\n# still code\n`````\n# after backticks\n~~~\n# and more\n~~~~\n\n"
        f"{prose}\n\n## Usage\n\nUse it.\n\n```\n# never closed\n"
        + " ".join(f"Line {i} of a fence left open to the end." for i in range(40))
    )
    plan = _plan("markdown", md)
    paths = [c.metadata.get("heading_path") for c in plan.chunks]
    assert len(paths) > 6
    assert set(paths) == {"Install", "Install > Usage"}, paths


def test_a_large_csv_is_chunked_without_holding_every_record() -> None:
    import random
    import tracemalloc

    rng = random.Random(1)
    rows = [
        f'{i},Customer {i},City{rng.randint(0, 999)},{rng.random() * 1000:.2f},"n {i}, c"'
        for i in range(50_000)
    ]
    text = "id,name,city,amount,notes\n" + "\n".join(rows)
    parsed = ParsedDocument(file_type="csv", segments=[Segment(text)], parser="t")
    chunk_document(parsed, SETTINGS, BASE)  # imports and caches outside the measure
    tracemalloc.start()
    try:
        plan = chunk_document(parsed, SETTINGS, BASE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(len(c.text.splitlines()) - 1 for c in plan.chunks) == 50_000  # rows, once
    # The chunks themselves are ~2x the text; a list of every record added ~10x.
    assert peak < 8 * len(text), (peak, len(text))


SMALL = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank today. "


def _plan(file_type: str, text: str, settings: ChunkSettings = SMALL):
    return chunk_document(ParsedDocument(file_type, [Segment(text)], parser="t"), settings, BASE)


def test_a_heading_joins_the_text_it_introduces() -> None:
    # The splitter left '# Setup' alone: the paragraph after it was too big to share a chunk.
    plan = _plan("markdown", "# Setup\n\n" + SENTENCE * 8 + "\n\n## Usage\n\n" + SENTENCE * 8)
    texts = [c.text for c in plan.chunks]
    assert texts[0].startswith("# Setup\n\nThe quick brown fox")
    assert any(t.startswith("## Usage\n\nThe quick brown fox") for t in texts)
    assert all(c.metadata["token_count"] <= 64 for c in plan.chunks)
    assert plan.chunks[0].metadata["heading_path"] == "Setup"
    assert plan.joined_small == 2


def test_a_scrap_joins_the_chunk_before_it_and_the_pair_is_split_evenly() -> None:
    plan = _plan("text", SENTENCE * 4 + "\n\nSee also the appendix.")
    tokens = [c.metadata["token_count"] for c in plan.chunks]
    assert len(tokens) == 2 and min(tokens) >= 24 and max(tokens) <= 64, tokens
    assert plan.chunks[-1].text.endswith("today. \n\nSee also the appendix.")
    # Cut after a sentence, not inside one.
    assert plan.chunks[0].text.endswith("today.")
    # 0 turns it off for everything but headings.
    off = _plan(
        "text",
        SENTENCE * 4 + "\n\nSee also the appendix.",
        SMALL.model_copy(update={"min_chunk_tokens": 0}),
    )
    assert off.chunks[-1].text == "See also the appendix."


def test_a_heading_goes_atop_the_table_it_names() -> None:
    rows = "\n".join(f"| item {i} | {i * 3} |" for i in range(40))
    plan = _plan("markdown", SENTENCE * 6 + "\n\n## Prices\n\n| item | cost |\n|---|---|\n" + rows)
    first_rows = next(c for c in plan.chunks if "| item 0 |" in c.text)
    assert first_rows.text.startswith("## Prices\n\n| item | cost |\n|---|---|\n| item 0 |")
    assert not any(c.text.strip() == "## Prices" for c in plan.chunks)
    assert all(c.metadata["token_count"] <= 64 for c in plan.chunks)


def test_a_table_of_one_row_is_kept() -> None:
    # docling writes a one-row table as a header with no rows under it: it was dropped
    # from a document long enough to be split (a total, a page's Prev/Next bar).
    text = SENTENCE * 6 + "\n\n| CANARY-TOTAL | 42 |\n|---|---|\n\n" + SENTENCE * 6
    plan = _plan("markdown", text)
    assert len(plan.chunks) > 1
    assert sum("| CANARY-TOTAL | 42 |" in c.text for c in plan.chunks) == 1


def test_a_code_block_s_closing_fence_stays_with_it() -> None:
    # LangChain's Markdown separators split before every fence line: the closing ``` of
    # the first block began the next chunk, whose fences then paired the wrong way.
    code = "```python\n" + "".join(f"x{i} = compute({i})\n" for i in range(8)) + "```"
    text = SENTENCE * 2 + "\n\n" + code + "\n\n```python\nprint('CANARY-NEXT')\n```\n\n"
    text += SENTENCE * 3
    plan = _plan("markdown", text)
    block = next(c for c in plan.chunks if "x7 = compute(7)" in c.text)
    assert block.text.endswith("x7 = compute(7)\n```")
    after = next(c for c in plan.chunks if "CANARY-NEXT" in c.text)
    assert after.text.startswith("```python\nprint('CANARY-NEXT')")
    for chunk in plan.chunks:
        assert chunk.text.count("```") % 2 == 0, chunk.text
        assert chunk.text == text[chunk.metadata["start_index"] : chunk.metadata["end_index"]]


def test_a_code_block_cut_between_chunks_goes_whole_into_the_second() -> None:
    # With no blank line between prose and a fence, the splitter cut at a line inside the
    # block: one chunk ended with its first lines under an open fence, the next began
    # with code and no fence.
    code = "```python\n" + "".join(f"total = add(total, {i})\n" for i in range(6)) + "```"
    text = (SENTENCE + "\n") * 3 + code + "\n\n" + SENTENCE * 3
    plan = _plan("markdown", text)
    assert [c.text.count("```") for c in plan.chunks] == [0, 2, 0], plan.chunks
    assert plan.chunks[1].text.startswith(code)
    for chunk in plan.chunks:
        assert chunk.text == text[chunk.metadata["start_index"] : chunk.metadata["end_index"]]
    # Not when the block and the rest of the second piece would pass the limit.
    from rag_ingest.chunking import _code_blocks, _code_blocks_forward

    blocks = _code_blocks(text)
    cut = text.index("total = add(total, 3)")
    pieces = [(text[:cut].rstrip(), 0), (text[cut : cut + 200], cut)]
    moved = _code_blocks_forward(pieces, text, blocks, 10_000, len)
    assert moved[1][0].startswith(code) and moved[0][0] == text[: text.index("```")].rstrip()
    assert _code_blocks_forward(pieces, text, blocks, 200, len) == pieces
    # Nor when the block does not end in the second piece either.
    short = [pieces[0], (text[cut : cut + 30], cut)]
    assert _code_blocks_forward(short, text, blocks, 10_000, len) == short


@pytest.mark.parametrize("fence", ["```", "~~~~"])
def test_a_code_block_longer_than_a_chunk_is_fenced_in_every_chunk(fence: str) -> None:
    # Cut inside a block, a chunk began with code and no fence, or ended under an open
    # one: read alone its code was prose, and pasted into a prompt its lone fence turned
    # what came after it into code.
    body = "".join(f"    total = add(total, {i})\n" for i in range(40))
    text = SENTENCE * 2 + f"\n\n{fence}python title='sum.py'\ndef run():\n{body}{fence}\n\n"
    text += "The sum is printed. " + SENTENCE
    plan = _plan("markdown", text)
    inside = [c for c in plan.chunks if "total = add" in c.text]
    assert len(inside) >= 3 and len(plan.chunks) == len(inside) + 2
    for chunk in plan.chunks:
        lines = chunk.text.splitlines()
        fences = [line for line in lines if line.startswith(fence[:3])]
        assert len(fences) % 2 == 0, chunk.text
        assert chunk.metadata["token_count"] == count_tokens(chunk.text) <= 64
        if chunk in inside[1:]:  # opened again, with the block's own opening line
            assert lines[0] == f"{fence}python title='sum.py'"
            assert lines[1].startswith("    total = add")  # its indent kept
        if chunk in inside[:-1]:
            assert lines[-1] == fence
        if chunk in inside:
            assert "start_index" not in chunk.metadata  # not the text as it stands
        else:
            meta = chunk.metadata
            assert text[meta["start_index"] : meta["end_index"]] == chunk.text
    for i in range(40):
        assert any(f"    total = add(total, {i})\n" in c.text + "\n" for c in inside), i


def test_fences_that_would_pass_the_limit_cut_the_chunk_in_two() -> None:
    from rag_ingest.chunking import _code_blocks, _Fences, _Piece
    from rag_ingest.tokens import get_encoding

    encoding = get_encoding("cl100k_base")
    code = "".join(f"total = add(total, {i})\n" for i in range(30))
    text = f"```python\n{code}```\n"
    fences = _Fences(text, _code_blocks(text), count_tokens)
    start = text.index("total = add(total, 2)")
    end = text.index("total = add(total, 20)") - 1
    piece = _Piece(text[start:end], start, count_tokens(text[start:end]), True)
    roomy = fences.balance(piece, piece.tokens + fences.room, encoding)
    assert [p.text for p in roomy] == [f"```python\n{piece.text}\n```"]
    assert roomy[0].end == end and not roomy[0].raw
    tight = fences.balance(piece, piece.tokens, encoding)
    assert len(tight) == 2
    assert all(p.text.startswith("```python\n") and p.text.endswith("\n```") for p in tight)
    assert all(p.tokens == count_tokens(p.text) <= piece.tokens for p in tight)
    assert "".join(p.text[10:-4] + "\n" for p in tight) == text[start:end] + "\n"
    # A long opening line is opened again by its fence and first word only.
    long = '```python {linenums="1" hl_lines="2-4" title="a very long title for it"}\n'
    assert _Fences(long + text[10:], _code_blocks(long + text[10:]), count_tokens).openers == [
        "```python"
    ]


def test_a_rst_title_stays_with_its_underline_and_names_its_chunks() -> None:
    # LangChain's RST separators split before an underline: a chunk ended with a
    # section's title, and the next began with its '======' (210 of 1,517 chunks of
    # 300 RST files here). Titles are levelled by their style, as docutils does.
    text = (
        "=====\nGuide\n=====\n\n"
        + SENTENCE * 3
        + "\n\nInstall\n=======\n\n"
        + SENTENCE * 5
        + "\n\nLinux\n-----\n\n"
        + SENTENCE * 5
        + "\n\nmacOS\n-----\n\n"
        + SENTENCE * 5
        + "\n\nUsage\n=======\n\n"
        + SENTENCE * 5
    )
    parsed = ParsedDocument("code", [Segment(text)], parser="t", language="rst")
    small_code = SMALL.model_copy(
        update={"file_configs": {"code": FileConfig(strategy="code", overlap_tokens=0)}}
    )
    plan = chunk_document(parsed, small_code, BASE)
    assert len(plan.chunks) > 4
    for chunk in plan.chunks:
        lines = chunk.text.split("\n")
        if set(lines[0]) <= set("=-"):  # only as an overline, its title under it
            assert lines[2] == lines[0], chunk.text
    path = {c.text.split("\n")[0]: c.metadata.get("heading_path") for c in plan.chunks}
    assert path["Linux"] == "Guide > Install > Linux"
    assert path["macOS"] == "Guide > Install > macOS"
    assert path["Usage"] == "Guide > Usage"
    # A title left alone by the splitter joins what follows it, not what precedes it.
    assert not any(set(c.text.rstrip().split("\n")[-1]) <= set("=-") for c in plan.chunks)


def test_latex_sections_name_their_chunks(tmp_path: Path) -> None:
    # A .tex file's chunks had no heading_path: a paper's 'Results' read like its
    # 'Method'.
    tex = (
        "\\documentclass{article}\n% \\section{Commented out}\n\\begin{document}\n"
        "\\chapter{The \\module{httplib2} Library \\label{lib}}\n" + SENTENCE * 3 + "\n"
        "\\section*[Setup]{Setting \\emph{it} up}\n" + SENTENCE * 4 + "\n"
        "\\begin{verbatim}\n\\section{Shown, not made}\n\\end{verbatim}\n" + SENTENCE * 4 + "\n"
        "\\subsection{Linux~and \\textbf{macOS}}\n" + SENTENCE * 4 + "\n"
        "\\section{Usage}\n" + SENTENCE * 4 + "\n\\end{document}\n"
    )
    path = tmp_path / "guide.tex"
    path.write_text(tex)
    parsed = parse_file(str(path), "guide.tex", ParseOptions())
    assert parsed.language == "latex"
    small_code = SMALL.model_copy(
        update={"file_configs": {"code": FileConfig(strategy="code", overlap_tokens=0)}}
    )
    plan = chunk_document(parsed, small_code, BASE)
    paths = [c.metadata.get("heading_path") for c in plan.chunks]
    assert paths[0] is None  # the preamble
    assert "The httplib2 Library > Setting it up" in paths
    assert "The httplib2 Library > Setting it up > Linux and macOS" in paths
    assert paths[-1] == "The httplib2 Library > Usage"
    assert not any("Shown" in (p or "") or "Commented" in (p or "") for p in paths)


def test_asciidoc_and_org_sections_name_their_chunks(tmp_path: Path) -> None:
    # Both were read as plain text: no heading_path, split at any blank line.
    small_code = SMALL.model_copy(
        update={"file_configs": {"code": FileConfig(strategy="code", overlap_tokens=0)}}
    )
    adoc = (
        "= User Guide\n:toc:\n\n" + SENTENCE * 3 + "\n\n[[install]]\n== Install `pkg`\n\n"
        + SENTENCE * 4 + "\n\n=== Linux ===\n\n" + SENTENCE * 3 + "\n[source,bash]\n----\n"
        "== Shown, not a title\n----\n" + SENTENCE * 3 + "\n\n////\n== Commented\n////\n\n"
        "== Usage\n\n" + SENTENCE * 4 + "\n"
    )  # fmt: skip
    org = (
        "#+TITLE: Notes\n* TODO [#A] Project plan    :work:urgent:\n" + SENTENCE * 3 + "\n"
        "** Read [[https://example.com][the spec]]\n" + SENTENCE * 4 + "\n#+BEGIN_SRC python\n"
        "* not a heading\n#+END_SRC\n" + SENTENCE * 3 + "\n** DONE Ship it\n"
        + SENTENCE * 4 + "\n* Archive\n" + SENTENCE * 4 + "\n"
    )  # fmt: skip
    for name, text, first, wanted, hidden in (
        ("guide.adoc", adoc, "User Guide",
         ["User Guide > Install pkg", "User Guide > Install pkg > Linux", "User Guide > Usage"],
         ("Shown", "Commented")),
        ("notes.org", org, "Notes",
         ["Notes > Project plan > Read the spec", "Notes > Project plan > Ship it",
          "Notes > Archive"], ("not a",)),
    ):  # fmt: skip
        path = tmp_path / name
        path.write_text(text)
        parsed = parse_file(str(path), name, ParseOptions())
        assert parsed.language == {".adoc": "asciidoc", ".org": "org"}[path.suffix]
        plan = chunk_document(parsed, small_code, BASE)
        paths = [c.metadata.get("heading_path") for c in plan.chunks]
        assert paths[-1] == wanted[-1] and paths[0] in (None, first), name
        assert all(p in paths for p in wanted), paths
        assert not any(h in (p or "") for p in paths for h in hidden)
        for chunk in plan.chunks:
            last = chunk.text.rstrip().split("\n")[-1]
            # A title, and an anchor above one, start a chunk, never end one.
            assert not last.startswith(("=", "[[", "* ", "** ")), chunk.text
            if "== Install" in chunk.text:
                assert chunk.text.startswith("[[install]]\n== Install"), chunk.text
                assert chunk.metadata["heading_path"] == "User Guide > Install pkg"


CODE = SMALL.model_copy(
    update={"file_configs": {"code": FileConfig(strategy="code", overlap_tokens=0)}}
)


def _code(language: str, text: str, settings: ChunkSettings = CODE):
    parsed = ParsedDocument("code", [Segment(text)], parser="t", language=language)
    plan = chunk_document(parsed, settings, BASE)
    for chunk in plan.chunks:
        assert chunk.text == text[chunk.metadata["start_index"] : chunk.metadata["end_index"]]
        assert chunk.metadata["token_count"] <= 64
    return plan


def _body(n: int) -> str:
    return "".join(f"    total = total + compute_value({i}, factor)\n" for i in range(n))


@pytest.mark.parametrize("long_function", [False, True])
def test_a_function_keeps_its_decorators_and_comment(long_function: bool) -> None:
    # Split at "\ndef ", a function's chunk began at its def, and its decorators ended
    # the chunk before; a function too long for one chunk lost them the same way.
    target = "@cache\n@route('/CANARY')\ndef target(factor):\n" + _body(12 if long_function else 3)
    text = "\n\n".join([f"def f{i}(factor):\n{_body(3)}" for i in range(3)] + [target])
    plan = _code("python", text)
    head = next(c for c in plan.chunks if "def target" in c.text)
    assert head.text.startswith("@cache\n@route('/CANARY')\ndef target"), head.text
    assert head.metadata["symbol"] == "target"
    assert not any(c.text.rstrip().endswith(("@cache", "')")) for c in plan.chunks)
    # A doc comment in C, a JSDoc in JavaScript: above the code they describe.
    comment = "/* CANARY: adds the values up.\n * Returns the total. */\n"
    c_source = "\n\n".join(
        [f"int f{i}(int factor) {{\n{_body(3)}}}" for i in range(3)]
        + [comment + f"int target(int factor) {{\n{_body(3)}}}"]
    )
    head = next(c for c in _code("c", c_source).chunks if "int target" in c.text)
    assert head.text.startswith(comment), head.text
    # Only from its first line: a comment is not cut where a line lacks its "*".
    unstarred = c_source.replace(" * Returns", "   and more.\n * Returns")
    assert not any(c.text.startswith("*") for c in _code("c", unstarred).chunks)
    js = "\n".join(
        [f"function f{i}(factor) {{\n{_body(3)}}}" for i in range(3)]
        + [
            "/**\n * CANARY: adds the values up.\n */\n"
            + f"function target(factor) {{\n{_body(3)}}}"
        ]
    )
    head = next(c for c in _code("js", js).chunks if "function target" in c.text)
    assert head.text.startswith("/**\n * CANARY"), head.text


@pytest.mark.parametrize(
    ("language", "head", "method", "tail"),
    [
        (
            "python",
            "class Totals:\n",
            "    def step_{i}(self, factor):\n        total = add(self.total, factor)\n\n"
            "        self.total = scale(total, {i})\n        return self.total\n",
            "",
        ),
        (
            "js",
            "class Totals {\n",
            "  step_{i}(factor) {{\n    const total = add(this.total, factor);\n\n"
            "    this.total = scale(total, {i});\n    return this.total;\n  }}\n",
            "}\n",
        ),
        (  # shell: a language LangChain's splitter does not know, generic separators
            "shell",
            "#!/bin/sh\n",
            'step_{i}() {{\n  total=$(add "$total" {i})\n\n  echo "$total"\n}}\n',
            "",
        ),
        (
            "php",
            "<?php\nclass Totals {\n",
            "    public function step_{i}($f) {{\n        $t = add($this->t, $f);\n\n"
            "        return $t;\n    }}\n",
            "}\n",
        ),
    ],
)
def test_a_class_is_split_between_its_methods(
    language: str, head: str, method: str, tail: str
) -> None:
    # LangChain's separators find a definition only at a line's start ("\ndef ",
    # "\nfunction "): a class too big for a chunk was split at any blank line, inside a
    # method as readily as between two.
    source = head + "\n".join(method.format(i=i) for i in range(10)) + tail
    plan = _code(language, source)
    assert len(plan.chunks) > 3
    header = (method.split("step_")[0].strip() + " step_").lstrip()  # "def step_", ...
    for chunk in plan.chunks[1:]:
        assert chunk.text.startswith(header), chunk.text
        name = "step_" + chunk.text.split("step_")[1].split("(")[0]
        assert chunk.metadata["symbol"] == (f"Totals.{name}" if "Totals" in head else name)


def test_a_closing_bracket_stays_with_its_block() -> None:
    # Indented methods match none of LangChain's keyword separators (they start a
    # line): cut at a line, a chunk began with the "}" closing the block before.
    methods = "".join(
        f"  method{i}(factor) {{\n    if (factor) {{\n"
        + "".join(
            f"      total = add(factor, {'x' * ((i * 7 + j) % 7)});\n" for j in range(i % 4 + 1)
        )
        + "    }\n  }\n"
        for i in range(10)
    )
    plan = _code("js", "class Totals {\n" + methods + "}\n")
    assert len(plan.chunks) > 3
    for chunk in plan.chunks:
        assert not chunk.text.startswith("}"), chunk.text


def test_a_line_of_spaces_parts_paragraphs() -> None:
    # An editor's indent left on an empty line: split only at "\n", a chunk ran from
    # the end of one paragraph into the next.
    text = "  \n".join(f"P{i} " + SENTENCE + "\n" + SENTENCE + "\n" for i in range(6))
    plan = _plan("text", text)
    assert len(plan.chunks) == 6
    for i, chunk in enumerate(plan.chunks):
        assert chunk.text == f"P{i} " + (SENTENCE + "\n" + SENTENCE).rstrip(), chunk.text


def test_a_json_yaml_or_xml_file_is_split_at_its_keys_and_says_their_path(tmp_path: Path) -> None:
    import json

    # A spec or a config, not records: split as prose, at any line, chunks began with a
    # closing "}," and held the ends of two entries, and said nothing of where they were.
    spec = {
        "openapi": "3.0.0",
        "paths": {
            f"/items/{i}.json": {
                "get": {"summary": SENTENCE * 2, "responses": {"200": {"description": "ok"}}}
            }
            for i in range(12)
        },
        "components": {"schemas": {"CanaryWidget": {"type": "object", "required": ["id"]}}},
    }
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(spec, indent=2))
    parsed = parse_file(str(path), "openapi.json", ParseOptions())
    assert (parsed.file_type, parsed.language) == ("text", "json")
    settings = SMALL.model_copy(update={"chunk_tokens": 128})
    plan = chunk_document(parsed, settings, BASE)
    assert len(plan.chunks) > 4
    for chunk in plan.chunks:
        assert not chunk.text.lstrip().startswith(("}", "]")), chunk.text
        assert chunk.text.lstrip().startswith(('"/items/', '"components"', "{")), chunk.text
    symbols = {c.metadata.get("symbol") for c in plan.chunks}
    assert "paths./items/3.json" in symbols
    canary = next(c for c in plan.chunks if "CanaryWidget" in c.text)
    assert canary.metadata["symbol"] == "components"

    tasks = "".join(
        f"{f'step_{i}' if i % 2 else repr(f'step_{i}')}:\n  run:\n"
        f"    command: make target{i}\n    help: |\n      {SENTENCE}\n"
        for i in range(12)
    )
    path = tmp_path / "pipeline.yaml"
    path.write_text(tasks)
    parsed = parse_file(str(path), "pipeline.yaml", ParseOptions())
    assert (parsed.file_type, parsed.language) == ("text", "yaml")
    plan = chunk_document(parsed, settings, BASE)
    assert len(plan.chunks) > 2
    lines = tasks.split("\n")
    for chunk in plan.chunks:
        first = chunk.text.split("\n")[0]
        assert first.strip("'").startswith("step_"), chunk.text
        assert chunk.metadata["symbol"] == first.strip("':")  # a quoted key, unquoted
        assert lines[chunk.metadata["line_start"] - 1] == first

    # A comment explains it: not read as records (parsers.records), which lose comments.
    xml = "<types>\n  <!-- Known types; each names its patterns. -->\n" + "".join(
        # the fifth entry too big for a chunk
        f'  <type name="t{i}">\n'
        + f"    <comment>{SENTENCE}</comment>\n" * (6 if i == 4 else 1)
        + f"    <glob>\n      <pattern>*.t{i}</pattern>\n    </glob>\n  </type>\n"
        for i in range(12)
    )
    path = tmp_path / "types.xml"
    path.write_text(xml + "</types>\n")
    parsed = parse_file(str(path), "types.xml", ParseOptions())
    assert parsed.language == "xml"
    xml_plan = chunk_document(parsed, settings, BASE)
    assert len(xml_plan.chunks) > 2
    assert all(c.text.startswith(("<types>", "<type ", "<comment>")) for c in xml_plan.chunks)


def test_minified_json_and_xml_are_split_between_their_objects_and_elements(
    tmp_path: Path,
) -> None:
    import json

    # On one line, split at spaces alone: every chunk of a keyed export (a Firebase
    # dump) began and ended inside a record's values.
    export = {
        "data": {
            f"u{i}": {"name": f"user {i} " + SENTENCE, "tags": ["a", "b"], "n": i}
            for i in range(60)
        }
    }
    path = tmp_path / "users.json"
    path.write_text(json.dumps(export, separators=(",", ":")))
    parsed = parse_file(str(path), "users.json", ParseOptions())
    plan = chunk_document(parsed, SMALL.model_copy(update={"chunk_tokens": 128}), BASE)
    assert len(plan.chunks) > 10
    for chunk in plan.chunks[1:]:
        assert re.match(r'"u\d+":\{"name":', chunk.text), chunk.text[:60]
        assert chunk.text.endswith(("},", "}}}"))
    # A record too big for a chunk: after its lists, then before its keys.
    big = {"data": {"u0": {"a": ["x"] * 10, "b": {"c": SENTENCE * 3, "d": SENTENCE * 3}}}}
    path.write_text(json.dumps(big, separators=(",", ":")))
    parsed = parse_file(str(path), "users.json", ParseOptions())
    plan = chunk_document(parsed, SMALL.model_copy(update={"chunk_tokens": 64}), BASE)
    starts = [c.text[:4] for c in plan.chunks]
    assert starts[:3] == ['{"da', '"b":', '"d":'], starts
    # A list of lists (a shape's coordinates): between them, never inside a pair.
    shape = {"type": "Polygon", "coordinates": [[i + 0.123456, -i - 0.654321] for i in range(300)]}
    path.write_text(json.dumps(shape, separators=(",", ":")))
    parsed = parse_file(str(path), "users.json", ParseOptions())
    plan = chunk_document(parsed, SMALL.model_copy(update={"chunk_tokens": 64}), BASE)
    assert len(plan.chunks) > 10
    assert all(c.text.endswith("],") for c in plan.chunks[:-1])
    assert all(c.text.startswith("[") for c in plan.chunks[1:])
    # XML on one line: between its tags, never inside a text.
    xml = "<items><!-- one line, as the exporter writes it -->" + "".join(
        f"<item><name>{SENTENCE}</name></item>" for _ in range(30)
    )
    path = tmp_path / "items.xml"
    path.write_text(xml + "</items>")
    parsed = parse_file(str(path), "items.xml", ParseOptions())
    plan = chunk_document(parsed, SMALL.model_copy(update={"chunk_tokens": 128}), BASE)
    assert len(plan.chunks) > 3
    assert all(c.text.startswith("<") and c.text.endswith(">") for c in plan.chunks)


def test_a_line_with_no_spaces_is_cut_in_fewest_parts() -> None:
    # Minified code, a JSON string in a document: LangChain's last separator, "", cut it
    # into characters and merged them back, overlaps and all: a 5.7 MB search index took
    # 17-28 s to chunk into 13,763 chunks; now 4 s into 6,182 (its tokens / 384 = 6,088).
    line = "".join(f"k{i}=v{i};" for i in range(3000))
    settings = SMALL.model_copy(update={"overlap_tokens": 16})
    for file_type in ("text", "markdown"):
        plan = _plan(file_type, "Intro.\n\n" + line, settings)
        tokens = count_tokens(line)
        assert len(plan.chunks) <= -(-tokens // 64) + 2, len(plan.chunks)
        assert all(c.metadata["token_count"] <= 64 for c in plan.chunks)
        assert "".join(c.text for c in plan.chunks[1:]).endswith(line[-200:])


def test_an_overlong_piece_is_split_evenly_between_words() -> None:
    import random
    import string

    # Words of random letters: the splitter's token estimate runs a few tokens over, and
    # a cut at exactly the limit left the last letters of a word as a chunk of their own.
    rng = random.Random(4465)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(2000)]
    text = " ".join(words)
    plan = _plan("text", text, ChunkSettings(chunk_tokens=512, overlap_tokens=64))
    vocabulary = set(words)
    for chunk in plan.chunks:
        assert chunk.metadata["token_count"] <= 512
        assert chunk.metadata["token_count"] >= 32, chunk.text
        assert set(chunk.text.split()) <= vocabulary  # no word cut in two
    covered = " ".join(c.text for c in plan.chunks)
    assert all(word in covered for word in words)


def test_a_repeated_heading_is_placed_where_it_stands() -> None:
    # The second '### Commits' was looked up from the start of the chunk before, found
    # inside it, and got the first release's heading path (and was left alone).
    text = (
        "# Log\n\n## v2\n\n### Commits\n\n- fix a\n\n## v1\n\n### Commits\n\n- fix b: "
        + SENTENCE * 5
    )
    plan = _plan("markdown", text)
    second = next(c for c in plan.chunks if "fix b" in c.text)
    assert second.text.startswith("### Commits\n\n- fix b")
    assert second.metadata["heading_path"] == "Log > v1 > Commits"


def test_each_chunk_says_where_it_stands_in_the_document_text(tmp_path: Path) -> None:
    # start_index/end_index (LangChain's add_start_index name) slice the chunk out of the
    # document's text, the loader's mode="document" page: across PDF page breaks joined
    # mid-sentence or mid-word, in each file of an archive, for every type of the corpus.
    filler = " ".join(f"Clause {n} sets out the terms in plain words." for n in range(8))
    files = {k: v for k, v in docs.corpus().items() if not k.startswith("scans/")}  # no OCR
    files["terms.pdf"] = docs.pdf_bytes(
        [f"{filler} the CANARY-COMMITTEE shall", f"review it. {filler} the pay-", f"ment. {filler}"]
    )
    small = ChunkSettings(chunk_tokens=48, overlap_tokens=8, whole_document_tokens=0)
    placed, unplaced = 0, []
    for name, data in files.items():
        path = tmp_path / Path(name).name
        path.write_bytes(data)
        parsed = parse_file(str(path), name, ParseOptions())
        text = parsed.text
        plan = chunk_document(parsed, small, BASE)
        for chunk in plan.chunks:
            meta = chunk.metadata
            if "start_index" not in meta:
                # Only a chunk that is not the text as it stands: a table's rows under
                # its header repeated (or rewritten, as a CSV's).
                rows = plan.strategy == "table" or chunk.text.split("\n\n")[-1].startswith("|")
                assert rows, (name, chunk.text[:80])
                continue
            assert text[meta["start_index"] : meta["end_index"]] == chunk.text, name
            placed += 1
        if not any("start_index" in c.metadata for c in plan.chunks):
            unplaced.append(name)
    assert placed > 100 and unplaced == ["docs/sheet.xlsx"]  # one table, padded by docling
    # Across the page breaks of the PDF, the joined sentence and word are in the text.
    pdf = tmp_path / "terms.pdf"
    text = parse_file(str(pdf), "terms.pdf", ParseOptions()).text
    assert "CANARY-COMMITTEE shall review it." in text and "the payment." in text


@pytest.mark.parametrize(("file_type", "inherited"), [("pdf", True), ("pptx", False)])
def test_a_page_without_a_heading_is_under_the_last_one_unless_it_is_a_slide(
    file_type: str, inherited: bool
) -> None:
    """A PDF's section runs on over its pages; a slide's title heads that slide only."""
    words = " ".join(f"word{i}" for i in range(60))
    parsed = ParsedDocument(
        file_type,
        [Segment(f"# Section A\n\n{words}", page=1), Segment(f"Untitled {words}", page=2)],
        parser="test",
    )
    settings = ChunkSettings(
        whole_document_tokens=0,
        chunk_tokens=64,
        overlap_tokens=0,
        file_configs={file_type: FileConfig(strategy="markdown")},
    )
    second = [
        c for c in chunk_document(parsed, settings, {}).chunks if c.text.startswith("Untitled")
    ]
    assert second and second[0].metadata["page_start"] == 2
    assert second[0].metadata.get("heading_path") == ("Section A" if inherited else None)


def _chunked_in_runs(
    settings: ChunkSettings, runs: list[tuple[ParsedDocument, int, int]]
) -> tuple[list[ChunkPlan], ChunkPlan]:
    """Each run chunked as its own document, and the plans joined as the pool joins them."""
    from rag_ingest.chunking import join_plans

    plans = [chunk_document(run, settings, {}) for run, _, _ in runs]
    return plans, join_plans(plans, [(offset, lines) for _, offset, lines in runs])


def test_a_long_text_is_cut_in_runs_of_whole_lines_and_joined_whole() -> None:
    import dataclasses

    from rag_ingest.chunking import line_runs

    block = "".join(f"line {i} of the service log, all well\n" for i in range(12))
    text = block + block + block.replace("well", "done")
    parsed = ParsedDocument("text", [Segment(text)], parser="text")
    settings = ChunkSettings(
        chunk_tokens=24, overlap_tokens=0, whole_document_tokens=0, min_chunk_tokens=0
    )
    runs = line_runs(parsed, settings, len(block))
    # Cut at the first line start at or past each share of the text: whole lines.
    assert [run.text for run, _, _ in runs] == [block, block, block.replace("well", "done")]
    size = len(block)
    assert [(offset, lines) for _, offset, lines in runs] == [(0, 0), (size, 12), (2 * size, 24)]
    plans, plan = _chunked_in_runs(settings, runs)
    # The second block's chunks are the first's twins: dropped, as one chunking drops them.
    one = chunk_document(parsed, settings, {})
    assert [(c.text, c.metadata) for c in plan.chunks] == [(c.text, c.metadata) for c in one.chunks]
    assert plan.dropped_duplicates == one.dropped_duplicates == len(plans[1].chunks) > 0
    last = plan.chunks[-1].metadata
    assert (last["end_index"], last["line_end"]) == (len(text) - 1, 36)
    assert plan.text_length == len(text) and plan.token_count == one.token_count
    # Only a text file chunked as prose, longer than the run: not Markdown, markup, a
    # document of pages, a text with no line break to cut at, or a short one.
    for other in (
        dataclasses.replace(parsed, file_type="markdown"),
        dataclasses.replace(parsed, file_type="code", language="rst"),
        dataclasses.replace(parsed, segments=[Segment(block, page=1), Segment(block, page=2)]),
        dataclasses.replace(parsed, segments=[Segment("x" * 1000)]),
    ):
        assert line_runs(other, settings, len(block)) == []
    assert line_runs(parsed, settings, len(text)) == []
    prose = ChunkSettings(file_configs={"text": FileConfig(strategy="markdown")})
    assert line_runs(parsed, prose, len(block)) == []  # chunked as set, in one


def test_a_long_text_of_few_line_breaks_is_cut_in_runs_at_spaces_or_commas() -> None:
    """One line of 55 MB (a text with no line breaks, minified JSON read as text) was
    chunked in one task, 57.8 s: its runs are cut past a space, or a comma, instead."""
    import json

    from rag_ingest.chunking import line_runs

    settings = ChunkSettings(chunk_tokens=24, overlap_tokens=0, whole_document_tokens=0)
    words = " ".join(f"word{i}" for i in range(600))
    minified = json.dumps([{"id": i, "tag": f"t{i}"} for i in range(200)], separators=(",", ":"))
    # A line break past a run is not waited for: the runs before the last end at spaces.
    for text, mark, count in ((words, " ", 4), (minified, ",", 4), (words * 3 + "\n", " ", 3)):
        parsed = ParsedDocument("text", [Segment(text)], parser="text")
        runs = line_runs(parsed, settings, -(-len(text) // 4))
        assert len(runs) == count, text[:40]
        assert "".join(run.text for run, _, _ in runs) == text
        assert all(run.text.endswith(mark) for run, _, _ in runs[:-1])
        assert [offset for _, offset, _ in runs] == [0, *itertools.accumulate(
            len(run.text) for run, _, _ in runs[:-1]
        )]  # fmt: skip
        plan = _chunked_in_runs(settings, runs)[1]
        for chunk in plan.chunks:
            start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
            assert text[start:end] == chunk.text
    # A line break near the share is still where a run ends.
    text = words[:1500] + "\n" + words[1500:]
    runs = line_runs(ParsedDocument("text", [Segment(text)], parser="text"), settings, 1000)
    assert runs[0][0].text == words[:1500] + "\n"


def test_long_source_code_is_cut_in_runs_between_top_level_definitions() -> None:
    """A source file of a few hundred MB outlasted parse.timeout in one task (18.7 MB of
    Python: 10.7 s, now 6.9 s on 2 workers): runs cut at a blank line before a line at
    the margin, so none begins inside a class or function."""
    from rag_ingest.chunking import line_runs

    text = "".join(
        f"class Thing{i}:\n    def run(self):\n        x = {i}\n\n        return x\n\n\n"
        f"# helper {i}\n@cached\ndef helper_{i}():\n    return {{\n        'a': {i},\n\n    }}\n\n"
        for i in range(40)
    )
    parsed = ParsedDocument("code", [Segment(text)], parser="text", language="python")
    code = ChunkSettings(
        file_configs={"code": FileConfig(strategy="code", chunk_tokens=40, overlap_tokens=0)},
        whole_document_tokens=0,
    )
    runs = line_runs(parsed, code, -(-len(text) // 6))
    assert len(runs) == 6
    assert "".join(run.text for run, _, _ in runs) == text
    for run, offset, lines in runs[1:]:
        assert re.match(r"(class Thing|# helper )\d+", run.text), run.text[:40]
        assert (offset, lines) == (text.index(run.text), text.count("\n", 0, offset))
    _, plan = _chunked_in_runs(code, runs)
    for chunk in plan.chunks:
        start = chunk.metadata["start_index"]
        assert text[start : chunk.metadata["end_index"]] == chunk.text
        assert chunk.metadata["line_start"] == text.count("\n", 0, start) + 1
        # Its symbol is the whole file's: no run began inside one.
        head = re.match(r"class (Thing\d+)|# helper (\d+)", chunk.text)
        if head:
            name = head[1] or f"helper_{head[2]}"
            assert chunk.metadata["symbol"].startswith(name), (chunk.text[:40], chunk.metadata)
    # With no such line within a run, at a line's start; markup is not cut.
    flat = "x = 1\n" * 3000
    runs = line_runs(
        ParsedDocument("code", [Segment(flat)], parser="t", language="python"), code, 4000
    )
    assert len(runs) > 3 and all(run.text.startswith("x = 1\n") for run, _, _ in runs)
    # One line but its last (minified code): past a space or comma.
    minified = ";".join(f"function f{i}(a,b){{return a+b*{i}}}" for i in range(400)) + "\n"
    runs = line_runs(
        ParsedDocument("code", [Segment(minified)], parser="t", language="js"), code, 4000
    )
    assert len(runs) >= 3 and all(run.text.endswith((" ", ",")) for run, _, _ in runs[:-1])
    # A markup is cut as one, at its titles (see the test below), not as code.
    page = ParsedDocument("code", [Segment(text)], parser="text", language="latex")
    assert all(run.titles == [] for run, _, _ in line_runs(page, code, len(text) // 6))


def test_json_lines_records_are_cut_in_runs_of_whole_records() -> None:
    import dataclasses

    from rag_ingest.chunking import line_runs

    # As parse_records writes them: a level-2 heading a record; a value's own lines
    # indented, so its "## Steps" is no record's start.
    def records(first: int) -> str:
        return "".join(
            f"## [{i:02d}]\nid: {i:02d}\nbody: step one\n  \n  ## Steps\n  run it, all well\n\n"
            for i in range(first, first + 6)
        )

    block = records(0)
    text = (block + records(6) + records(12)).rstrip("\n")
    parsed = ParsedDocument("json", [Segment(text)], parser="json-records[utf-8]")
    settings = ChunkSettings(
        file_configs={"json": FileConfig(strategy="markdown", chunk_tokens=40, overlap_tokens=0)},
        whole_document_tokens=0,
        min_chunk_tokens=0,
    )
    runs = line_runs(parsed, settings, len(block))
    assert [run.text for run, _, _ in runs] == [block, records(6), records(12).rstrip("\n")]
    assert [offset for _, offset, _ in runs] == [0, len(block), 2 * len(block)]
    _, plan = _chunked_in_runs(settings, runs)
    one = chunk_document(parsed, settings, {})
    assert [(c.text, c.metadata) for c in plan.chunks] == [(c.text, c.metadata) for c in one.chunks]
    assert {c.metadata["heading_path"] for c in plan.chunks} == {f"[{i:02d}]" for i in range(18)}
    # Not JSON split at its keys, nor records chunked otherwise.
    assert line_runs(dataclasses.replace(parsed, parser="json-keys"), settings, len(block)) == []
    prose = ChunkSettings(file_configs={"json": FileConfig(strategy="prose")})
    assert line_runs(parsed, prose, len(block)) == []


def _csv_settings(tokens: int = 60) -> ChunkSettings:
    table = FileConfig(strategy="table", chunk_tokens=tokens, overlap_tokens=0)
    return ChunkSettings(file_configs={"csv": table}, whole_document_tokens=0, min_chunk_tokens=0)


def test_a_long_csv_is_cut_in_runs_of_whole_records_that_share_its_header() -> None:
    import csv
    import dataclasses
    import io
    import re

    from rag_ingest.chunking import line_runs

    # Semicolons, notes full of commas, and bodies whose quoted fields hold line breaks:
    # a run cut at a line break would begin inside a body.
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["id", "note", "body"])
    for i in range(60):
        body = f"line one\nCANARY-{i} line two" if i % 2 else f"CANARY-{i}"
        writer.writerow([i, f"note {i}, with commas, a, b, c", body])
    # A blank line before the header, and a blank line and record among the rows.
    text = "\n" + out.getvalue().replace("\n10;", "\n\n;;\n10;")
    parsed = ParsedDocument("csv", [Segment(text)], parser="text[utf-8]")
    settings = _csv_settings()
    runs = line_runs(parsed, settings, len(text) // 4)
    assert len(runs) == 4
    assert "".join(run.text for run, _, _ in runs) == text

    def records(part: str) -> list[list[str]]:
        return [r for r in csv.reader(io.StringIO(part), delimiter=";") if r]

    # Each run is whole records: read apart, they are the whole's, in order.
    assert [r for run, _, _ in runs for r in records(run.text)] == records(text)
    assert [(offset, lines) for _, offset, lines in runs] == [
        (offset, text.count("\n", 0, offset))
        for offset in itertools.accumulate([0] + [len(run.text) for run, _, _ in runs[:-1]])
    ]
    # The first run reads its header; the others are told it, and the dialect.
    forms = [run.csv_form for run, _, _ in runs]
    assert all(f is not None and f.header == ["id", "note", "body"] for f in forms)
    assert all(f is not None and f.dialect["delimiter"] == ";" for f in forms)
    assert [f.body for f in forms if f] == [len("\nid;note;body\n"), 0, 0, 0]
    assert [f.line for f in forms if f] == [0] + [lines for _, _, lines in runs[1:]]
    _, plan = _chunked_in_runs(settings, runs)
    one = chunk_document(parsed, settings, {})
    for chunks in (plan.chunks, one.chunks):
        assert all(c.text.startswith("id;note;body\n") for c in chunks)
        assert all(c.metadata["token_count"] <= 60 for c in chunks)
        assert not any("\n\n" in c.text or "\n;;" in c.text for c in chunks)
        found = [int(n) for c in chunks for n in re.findall(r"CANARY-(\d+)", c.text)]
        assert found == list(range(60))
    assert [c.metadata["chunk_index"] for c in plan.chunks] == list(range(len(plan.chunks)))
    assert plan.token_count == one.token_count
    # Without the form, a run's first row passed for its header.
    later = dataclasses.replace(runs[1][0], csv_form=None)
    assert not chunk_document(later, settings, {}).chunks[0].text.startswith("id;")
    # A CSV read as text, or one short of the run, stays in one piece.
    prose = ChunkSettings(file_configs={"csv": FileConfig(strategy="prose")})
    assert line_runs(parsed, prose, len(text) // 4) == []
    assert line_runs(parsed, settings, len(text)) == []


def test_lines_csv_cannot_read_are_kept_as_rows_and_said() -> None:
    import re

    from rag_ingest.chunking import line_runs

    settings = _csv_settings(400)
    # A field past csv's limit (131,072 characters) failed the whole file; after it,
    # the reading goes on.
    words = " ".join(f"w{i}" for i in range(25_000))
    field = f"5000,{words}\n"
    text = "a,b\n" + "".join(f"{i},row CANARY-{i}\n" for i in range(1, 6001)).replace(
        "5000,row CANARY-5000\n", field
    )
    said = [  # in a run after the first too: its lines counted from the file's start
        "1 record(s) csv could not read, from line 5,001, kept as lines:"
        " field larger than field limit (131072)"
    ]
    parsed = ParsedDocument("csv", [Segment(text)], parser="text")
    plan = chunk_document(parsed, settings, {})
    runs = line_runs(parsed, settings, len(text) // 4)
    _, joined_plan = _chunked_in_runs(settings, runs)
    for chunks, warnings in (
        (plan.chunks, plan.warnings),
        (joined_plan.chunks, joined_plan.warnings),
    ):
        joined = " ".join(c.text for c in chunks)
        assert set(re.findall(r"w\d+", joined)) == {f"w{i}" for i in range(25_000)}
        found = [int(n) for n in re.findall(r"CANARY-(\d+)", joined)]
        assert found == [i for i in range(1, 6001) if i != 5000]
        assert all(c.text.startswith("a,b\n") and c.metadata["token_count"] <= 400 for c in chunks)
        assert warnings == said
    # Runs are cut around it: one holds it from its first line to its last.
    field_start = text.index(field)
    field_end = field_start + len(field)
    assert "".join(run.text for run, _, _ in runs) == text
    assert runs[1][1] < field_start and field_end in [offset for _, offset, _ in runs]
    # A quote never closed took the rest of the file as one field: its lines are rows.
    rows = "".join(f"{i},row {i}\n" for i in range(3, 40))
    text = f'a,b\n1,one\n2,"opened\n\n{rows}'
    plan = chunk_document(ParsedDocument("csv", [Segment(text)], parser="text"), settings, {})
    assert plan.chunks[-1].text.endswith("\n38,row 38\n39,row 39")
    assert not any("\n\n" in c.text for c in plan.chunks)
    assert plan.warnings == [
        "1 record(s) csv could not read, from line 3, kept as lines: a quoted field is never closed"
    ]
    # A last quoted field that holds lines and closes is a record, and so is a last line
    # csv reads leniently (a closing quote not at the field's end).
    lenient = 'a,b\n1,"say ""hi"""\n2,"two" lines\n'
    for closed in ('a,b\n1,one\n2,"two\nlines"\n', lenient):
        parsed = ParsedDocument("csv", [Segment(closed)], parser="text")
        assert chunk_document(parsed, settings, {}).warnings == []


def test_a_csv_s_stray_quote_takes_no_row_with_it() -> None:
    """A field opened by a quote and not closed on its line took the lines after it into
    itself, up to the next quote: row 11 was lost into row 10's field. A record over
    several lines without the header's number of fields is read line by line."""
    import re

    settings = _csv_settings(400)
    rows = [f'{i},item {i},{i * 3},"CANARY-{i}, fine"' for i in range(1, 300)]
    rows[9] = '10,"item 10 with a stray quote,30,CANARY-10'
    text = "id,name,qty,note\n" + "\n".join(rows) + "\n"
    plan = chunk_document(ParsedDocument("csv", [Segment(text)], parser="text"), settings, {})
    lines = [line for c in plan.chunks for line in c.text.split("\n")[1:]]
    assert [int(re.findall(r"CANARY-(\d+)", line)[0]) for line in lines] == list(range(1, 300))
    assert lines[9] == '10,"item 10 with a stray quote,30,CANARY-10"'
    assert lines[10] == '11,item 11,33,"CANARY-11, fine"'
    assert all(c.text.startswith("id,name,qty,note\n") for c in plan.chunks)
    assert plan.warnings == [
        "1 record(s) over several lines without the header's 4 fields (a stray quote),"
        " read line by line"
    ]
    # A quoted field over lines in a record of the header's width is one record, though
    # a line of it would be a row by itself.
    closed = 'id,name,qty,note\n1,"two\na,b",3,x\n'
    plan = chunk_document(ParsedDocument("csv", [Segment(closed)], parser="text"), settings, {})
    assert plan.warnings == [] and '1,"two\na,b",3,x' in plan.chunks[0].text


def test_a_csv_s_sep_line_names_its_delimiter_and_doubled_quotes_are_one() -> None:
    import csv
    import io

    # Excel's first line names the delimiter; the notes' commas would have the sniffer
    # take a comma, and 'sep=;' would head every chunk.
    rows = "".join(f"{i};note {i}, a, b;x\n" for i in range(200))
    # Ragged rows too, a quoted field holding a line break past the sniffer's 8 KB
    # sample: it finds no delimiter in them, and would take csv's comma.
    ragged = "".join(f"{i};note {i}, a, b" + ";x" * (i % 3) + "\n" for i in range(800))
    ragged = ragged.replace("699;note 699, a, b\n", '699;"note 699, a, b\nits next; line"\n')
    for text, count in (
        (f"sep=;\nid;note;flag\n{rows}", 200),
        (f"SEP=;\nid;note;flag\n{ragged}", 800),
    ):
        parsed = ParsedDocument("csv", [Segment(text)], parser="text")
        plan = chunk_document(parsed, _csv_settings(), {})
        assert len(plan.chunks) > 2
        for chunk in plan.chunks:
            header, *records = csv.reader(io.StringIO(chunk.text), delimiter=";")
            assert header == ["id", "note", "flag"]
            assert all(r[1].startswith("note ") for r in records)
            count -= len(records)
        assert count == 0
    # A quote doubled inside a quoted field, first met past the sniffer's 8 KB sample.
    late = "id,quote\n" + "".join(f"{i},plain {i}\n" for i in range(800))
    late += '800,"she said ""hi"" there"\n'
    assert len(late) > 8192
    parsed = ParsedDocument("csv", [Segment(late)], parser="text")
    last = chunk_document(parsed, _csv_settings(), {}).chunks[-1].text
    assert list(csv.reader(io.StringIO(last)))[-1] == ["800", 'she said "hi" there']


def test_a_csv_s_preamble_is_chunked_as_text_and_its_header_heads_the_rows() -> None:
    import csv
    import io

    rows = "".join(f"2024-01-{i % 28 + 1:02d};Payment {i};{i * 3}.50\n" for i in range(300))
    for preamble in (
        "Account statement CANARY-PRE\nPeriod: 2024-01-01 to 2024-03-31\n\n",
        "# ----\n# Analytics export CANARY-PRE\n# ----\n\n",
    ):
        text = f"{preamble}Date;Description;Amount\n{rows}"
        parsed = ParsedDocument("csv", [Segment(text)], parser="text")
        chunks = chunk_document(parsed, _csv_settings(), {}).chunks
        assert "CANARY-PRE" in chunks[0].text
        assert not any("CANARY-PRE" in c.text for c in chunks[1:])
        records = []
        for chunk in chunks[1:]:
            header, *got = csv.reader(io.StringIO(chunk.text), delimiter=";")
            assert header == ["Date", "Description", "Amount"]
            records += got
        assert [r[1] for r in records] == [f"Payment {i}" for i in range(300)]
    # A header of fewer fields than rows that end in a delimiter is the header still,
    # and a CSV of one column has one.
    for text, header in (
        ("a,b\n" + "".join(f"{i},x{i},\n" for i in range(300)), "a,b\n"),
        (
            "name\n" + "".join(f"person {i}" + ", jr" * (i % 5 == 1) + "\n" for i in range(300)),
            "name\n",
        ),
    ):
        parsed = ParsedDocument("csv", [Segment(text)], parser="text")
        chunks = chunk_document(parsed, _csv_settings(), {}).chunks
        assert len(chunks) > 2 and all(c.text.startswith(header) for c in chunks)


def test_a_csv_whose_first_record_is_data_has_no_header_to_repeat() -> None:
    # A sensor's export: times and readings from the first line. Taken for the header,
    # its first reading headed every chunk, a false row in each.
    rows = [
        f"2026-01-{i % 28 + 1:02d} 10:{i % 60:02d}:00,{20 + i / 10:.1f},{i * 3}" for i in range(300)
    ]
    ledger = [f"{i};$1{i:03d}.50;-12.5%;CANARY-{i}" for i in range(300)]
    for text, first in (("\n".join(rows) + "\n", rows[0]), ("\n".join(ledger) + "\n", ledger[0])):
        parsed = ParsedDocument("csv", [Segment(text)], parser="text")
        chunks = chunk_document(parsed, _csv_settings(), {}).chunks
        assert len(chunks) > 2 and chunks[0].text.startswith(first + "\n")
        lines = [line for c in chunks for line in c.text.split("\n")]
        assert lines == text.splitlines()  # each record once, in order, under no header
    # A header of years over numbers is a header; so is one with any text in it, and
    # a header over text.
    for text, header in (
        ("2024,2025\n" + "".join(f"{i},{i * 2}\n" for i in range(300)), "2024,2025\n"),
        ("Region,2024\n" + "".join(f"r{i},{i}\n" for i in range(300)), "Region,2024\n"),
        ("id,1\n" + "".join(f"{i},{i}\n" for i in range(300)), "id,1\n"),
        ("1,2\n" + "".join(f"a{i},b{i}\n" for i in range(300)), "1,2\n"),
        ("7,1\n" + "".join(f"a{i},{i}\n" for i in range(300)), "7,1\n"),
    ):
        parsed = ParsedDocument("csv", [Segment(text)], parser="text")
        chunks = chunk_document(parsed, _csv_settings(), {}).chunks
        assert len(chunks) > 2 and all(c.text.startswith(header) for c in chunks), header


def _long_markdown() -> str:
    """Chapters of sections, code blocks with '# comment' lines and blank lines in them,
    and a long section of paragraphs under no heading for a while."""
    parts = []
    for n in range(12):
        parts.append(f"# Chapter {n}\n\nIntro of chapter {n}.\n")
        for k in range(4):
            parts.append(f"## Section {n}.{k}\n\nCANARY-{n}-{k} " + "text " * 60 + "\n")
            if k == 1:
                parts.append("```bash\n# run it\n\n# Not a heading\nmake all\n```\n")
        if n == 5:
            # Code blocks with blank lines in them between the paragraphs: no cut there.
            block = "```python\n" + "".join(f"x{i} = {i}\n\n" for i in range(30)) + "```\n\n"
            parts.append(
                "".join(f"Paragraph {i} of the long part. " * 8 + "\n\n" + block for i in range(40))
            )
    return "\n".join(parts)


def test_a_long_markdown_text_is_cut_in_runs_at_headings_each_told_the_headings_above() -> None:
    from rag_ingest.chunking import _code_blocks, _HeadingPaths, _headings, line_runs

    text = _long_markdown()
    parsed = ParsedDocument("markdown", [Segment(text)], parser="markdown-source[utf-8]")
    settings = ChunkSettings(chunk_tokens=96, overlap_tokens=0, whole_document_tokens=0)
    chars = len(text) // 8 + 1
    runs = line_runs(parsed, settings, chars)
    assert len(runs) == 8
    assert "".join(run.text for run, _, _ in runs) == text
    blocks = _code_blocks(text)
    paths = _HeadingPaths(_headings(text, blocks))
    cut_at = []
    for run, offset, lines in runs[1:]:
        assert lines == text.count("\n", 0, offset)
        assert not any(start < offset < end for start, _, end in blocks)  # no block cut
        # At a heading, or at a paragraph where none is near (the long part).
        cut_at.append(run.text.split(" ")[0].split("\n")[0])
        assert text[offset - 2 : offset] == "\n\n"
        assert run.headings_above == paths.stack(offset - 1)
    # In the long part, at a paragraph's start: a code block's, not a line inside one.
    assert cut_at == ["##", "```python", "```python", "```python", "Paragraph", "#", "##"], cut_at
    _, joined = _chunked_in_runs(settings, runs)
    one = chunk_document(parsed, settings, {})
    # The same chunks as one task, paths included, but where a run's end kept two
    # pieces apart that one task joins; a run's first chunks are under the headings
    # above it.
    got = {(c.text, c.metadata.get("heading_path")) for c in joined.chunks}
    alike = {(c.text, c.metadata.get("heading_path")) for c in one.chunks}
    assert len(got ^ alike) <= 3 * len(cut_at) and len(got & alike) > 60
    found = [m for c in joined.chunks for m in re.findall(r"CANARY-\d+-\d+", c.text)]
    assert found == [f"CANARY-{n}-{k}" for n in range(12) for k in range(4)]
    for chunk in joined.chunks:
        if "start_index" not in chunk.metadata:
            assert chunk.text.endswith("\n```")  # a long block's part, fenced again
            continue
        start = chunk.metadata["start_index"]
        assert text[start : chunk.metadata["end_index"]] == chunk.text
        assert chunk.metadata.get("heading_path", "") == paths.at(start)
    assert not any("Not a heading" in c.metadata.get("heading_path", "") for c in joined.chunks)
    # Without what is above it, a run's first chunks would be under no heading.
    later = dataclasses_replace(runs[5][0], headings_above=None)
    assert "heading_path" not in chunk_document(later, settings, {}).chunks[0].metadata
    # Slides, and JSON split at its keys, are not cut so.
    for kind in ("pptx", "json"):
        assert line_runs(ParsedDocument(kind, [Segment(text)], parser="x"), settings, chars) == []


def _long_markup(language: str, n: int) -> str:
    """A book of ``n`` chapters, each of sections of paragraphs with a canary each, in
    ``language``'s markup."""
    chapter, section = {
        "rst": ("{t}\n" + "=" * 40 + "\n", "{t}\n" + "-" * 40 + "\n"),
        "latex": ("\\chapter{{{t}}}\n", "\\section{{{t}}}\n"),
        "asciidoc": ("== {t}\n", "=== {t}\n"),
        "org": ("* {t}\n", "** {t}\n"),
    }[language]
    # reStructuredText levels its titles by the order their styles first appear: an
    # overlined document title first, so a chapter's style is level 2.
    top = "=" * 20 + "\nThe Manual\n" + "=" * 20 + "\n\n" if language == "rst" else ""
    return top + "".join(
        chapter.format(t=f"Chapter {c}")
        + "\n"
        + "".join(
            section.format(t=f"Section {c}.{k}")
            + "\n"
            + "".join(
                f"CANARY-{c}-{k}-{p} " + "word " * (20 + (c * 7 + k * 5 + p) % 30) + "\n\n"
                for p in range(3)
            )
            for k in range(5)
        )
        for c in range(n)
    )


@pytest.mark.parametrize("language", ["rst", "latex", "asciidoc", "org"])
def test_a_long_markup_text_is_cut_in_runs_at_its_titles_with_the_whole_s_paths(
    language: str,
) -> None:
    """A 12 MB reStructuredText file was chunked in one task (5.7 s; one of a few hundred
    MB failed parse.timeout): runs cut at its section titles, each told the titles
    above it and its own as the whole levels them."""
    from rag_ingest.chunking import _HeadingPaths, line_runs
    from rag_ingest.markup import MARKUPS

    text = _long_markup(language, 12)
    parsed = ParsedDocument("code", [Segment(text)], parser="text[utf-8]", language=language)
    settings = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    chars = len(text) // 6 + 1
    runs = line_runs(parsed, settings, chars)
    assert len(runs) == 6 and "".join(run.text for run, _, _ in runs) == text
    for run, offset, lines in runs[1:]:
        assert lines == text.count("\n", 0, offset)
        assert run.titles and run.titles[0][0] == 0, run.text[:40]  # cut at a title
    _, joined = _chunked_in_runs(settings, runs)
    whole = chunk_document(parsed, settings, {})
    at = {c.metadata["start_index"]: c.metadata["heading_path"] for c in whole.chunks}
    # Each chunk under the path the whole gives at its start (where a run's end kept two
    # pieces apart that one task joins, the chunks after differ).
    paths = _HeadingPaths(MARKUPS[language].headings(text))
    for chunk in joined.chunks:
        start = chunk.metadata["start_index"]
        assert text[start : chunk.metadata["end_index"]] == chunk.text
        assert chunk.metadata["heading_path"] == paths.at(start) == at.get(start, paths.at(start))
    found = [m for c in joined.chunks for m in re.findall(r"CANARY-\d+-\d+-\d+", c.text)]
    assert found == [f"CANARY-{c}-{k}-{p}" for c in range(12) for k in range(5) for p in range(3)]
    book = "The Manual > " if language == "rst" else ""
    assert paths.at(len(text)) == f"{book}Chapter 11 > Section 11.4"
    if language == "rst":
        # Its titles levelled by the run alone, a chapter's sections would be chapters.
        later = dataclasses_replace(runs[3][0], titles=None)
        assert (
            chunk_document(later, settings, {}).chunks[0].metadata["heading_path"].count(" > ") < 2
        )


def dataclasses_replace(item: ParsedDocument, **changes: object) -> ParsedDocument:
    import dataclasses

    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


def test_an_archive_s_groups_of_files_carry_only_their_own_files_types() -> None:
    """Each group of an archive's files sent to a worker to chunk had carried the whole
    archive's file types: a 210 MB mailbox's 111,905 names in each of 25 groups (parent
    1.50 GB; 1.18 GB without)."""
    from rag_ingest.chunking import chunk_units

    names = [f"dir/file{i}.py" for i in range(12)]
    segments = [
        Segment(f"def f{i}():\n    return {i}\n" * 40, member=n) for i, n in enumerate(names)
    ]
    parsed = ParsedDocument(
        "archive",
        [Segment("The archive's own note.\n" * 10), *segments],
        parser="zip",
        members={name: ("code", "python") for name in names},
    )
    units = chunk_units(parsed, ChunkSettings(), {"k": "v"}, 2000, 2)
    parts = [part for unit in units for part in unit.parts]
    assert len(parts) > 3
    assert [s.member for part in parts for s in part.segments] == [None, *names]
    for part in parts:
        mine = {s.member for s in part.segments} - {None}
        assert part.members == {name: ("code", "python") for name in mine}


def test_chunk_ids_name_a_text_and_its_copy_not_its_place() -> None:
    a, b, c = ("a" * 64, "b" * 64, "c" * 64)
    ids = chunk_ids("s", "s3://docs/a.md", [a, b, a])
    assert len(set(ids)) == 3  # a text twice in a source: two chunks
    # Moved, with a new text before it: the same IDs.
    again = chunk_ids("s", "s3://docs/a.md", [c, b, a, a])
    assert again[1:] == [ids[1], ids[0], ids[2]] and again[0] not in ids
    assert set(ids).isdisjoint(chunk_ids("t", "s3://docs/a.md", [a, b, a]))
    assert set(ids).isdisjoint(chunk_ids("s", "s3://docs/b.md", [a, b, a]))
    assert set(ids).isdisjoint(chunk_ids("s", "s3://docs/a.md", [a, b, a], "collection"))
    # The loader's IDs as earlier releases made them (their version field left empty).
    assert chunk_id("", "s3://docs/a.md", "ab" * 32, copy=1) == (
        "66abd08b-d0f1-8d66-973c-46cdb96dd92c"
    )


def test_token_offset_is_tiktoken_s_offset_for_every_token() -> None:
    encoding = get_encoding("cl100k_base")
    texts = [
        "plain words, and more plain words.",
        "naïve café — “quoted” text; emoji 🙂🚀 and 中文字符在这里 mixed in.",
        "🙂" * 7 + "x" + "é" * 5,
        docs.LONG_PROSE[:3000],
    ]
    for text in texts:
        tokens = encoding.encode(text, disallowed_special=())
        _, offsets = encoding.decode_with_offsets(tokens)
        assert [token_offset(encoding, tokens, i) for i in range(len(tokens))] == offsets


def test_nuls_and_c1_controls_are_not_stored() -> None:
    # A NUL is refused by PostgreSQL's text (so by PGVector): Apache POI's damaged
    # unknown_properties.msg and calamine's reading of ex41187-19267.xls had put NULs
    # in chunks. C1 controls are cp1252's characters read as Latin-1: Outlook 2003's
    # welcome message says "SharePoint\x99 Services". One for one: pages keep their place.
    text = "Hi\x00 Excel! SharePoint\x99 Services \x93quoted\x94\x81\nmap * 1G\x16\x1b"
    plan = chunk_document(ParsedDocument("txt", [Segment(text)], parser="t"), SETTINGS, BASE)
    # Other C0 controls are kept: a vim macro's keystrokes.
    read_as = "Hi  Excel! SharePoint\u2122 Services \u201cquoted\u201d \nmap * 1G\x16\x1b"
    assert [c.text for c in plan.chunks] == [read_as]
    # Each kind alone is found.
    for alone, read in (("a\x00b", "a b"), ("a\x99", "a\u2122")):
        plan = chunk_document(ParsedDocument("txt", [Segment(alone)], parser="t"), SETTINGS, BASE)
        assert [c.text for c in plan.chunks] == [read]
    pages = [Segment("one\x00", page=1), Segment("two\x85", page=2)]
    plan = chunk_document(ParsedDocument("pdf", pages, parser="t"), SETTINGS, BASE)
    assert [c.metadata["page_start"] for c in plan.chunks] == [1]
    assert [c.metadata["page_end"] for c in plan.chunks] == [2]
    assert plan.chunks[0].text == "one \n\ntwo\u2026"
    # The text the chunks' offsets point into (ParsedDocument.text) is the same.
    assert ParsedDocument("txt", [Segment(text)], parser="t").text == read_as
