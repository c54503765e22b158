"""The memo of parses that copies of a file take (rag_ingest/parse_memo.py)."""

from __future__ import annotations

import asyncio
import pickle
import tracemalloc
from typing import Any

import pytest

from rag_ingest.chunking import Chunk, ChunkPlan
from rag_ingest.errors import CorruptDocumentError, ParserTimeoutError
from rag_ingest.parse_memo import ParseMemo
from rag_ingest.parsers.base import ParsedDocument, Segment


def _parse(
    file_type: str = "text", text: str = "CANARY text"
) -> tuple[ParsedDocument, ChunkPlan, dict[str, Any]]:
    """A parse, its plan, and the base metadata it was chunked under."""
    base = {"source": "file:///a/x.txt", "session_id": "s", "user_id": "ann", "team": "ops"}
    plan = ChunkPlan([Chunk(text, {**base, "chunk_index": 0})], token_count=2, chunked=False)
    return ParsedDocument(file_type, [Segment(text)], parser="t"), plan, base


def test_only_a_content_hash_or_an_s3_etag_is_a_key() -> None:
    key = ParseMemo.key
    etag = '"9b2cf535f27731c974343645a3985328"'
    assert key("sha256:ab", None, 3, "x.txt", {}) is not None
    assert key("sha256:ab", None, 3, "x.txt", {}) == key("sha256:ab", etag, 3, "x.txt", {})
    # An S3 object's ETag, whatever its version: in a versioned bucket, its version ID.
    assert key("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", etag, 3, "x.txt", {}) is not None
    assert key(etag, etag, 3, "x.txt", {}) == key(None, etag, 3, "x.txt", {})
    # A web server's ETag may be a counter or a date, and a version ID names no content.
    assert key('W/"42"', None, 3, "x.txt", {}) is None
    assert key("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", None, 3, "x.txt", {}) is None
    assert key(None, None, 3, "x.txt", {}) is None
    # The name (its type, its warnings) and the caller's metadata are part of it.
    one = key("sha256:ab", None, 3, "x.txt", {"team": "ops", "n": 1})
    assert one == key("sha256:ab", None, 3, "x.txt", {"n": 1, "team": "ops"})
    assert one != key("sha256:ab", None, 3, "y.txt", {"team": "ops", "n": 1})
    assert one != key("sha256:ab", None, 3, "x.txt", {"team": "dev", "n": 1})
    assert one != key("sha256:ab", None, 4, "x.txt", {"team": "ops", "n": 1})
    assert one != key("sha256:cd", None, 3, "x.txt", {"team": "ops", "n": 1})


def test_a_copy_gets_its_own_source_metadata_and_its_own_objects() -> None:
    memo = ParseMemo()
    parsed, plan, first_base = _parse()
    memo.put("k", "file:///a/x.txt", parsed, plan, first_base)
    base = {"source": "file:///b/x.txt", "session_id": "t", "team": "ops"}  # no user
    hit = memo.get("k", base)
    assert hit is not None and hit.first == "file:///a/x.txt"
    assert hit.plan.chunks[0].metadata == {
        "source": "file:///b/x.txt",
        "session_id": "t",
        "team": "ops",
        "chunk_index": 0,
    }
    hit.plan.chunks[0].metadata["summary"] = "changed by its pipeline"
    hit.parsed.warnings.append("changed")
    again = memo.get("k", base)
    assert again is not None and "summary" not in again.plan.chunks[0].metadata
    assert again.parsed.warnings == [] and plan.chunks[0].metadata["source"] == "file:///a/x.txt"
    assert memo.get(None, base) is None and memo.get("other", base) is None
    # What the chunker wrote over the first base (a caller's key of its own) stays; a key
    # only this source's base has (an S3 object's bucket) is added.
    first = {"source": "file:///a/x.txt", "file_type": "note"}
    over = ChunkPlan([Chunk("t", {**first, "file_type": "pdf"})], token_count=1, chunked=False)
    memo.put("o", "file:///a/x.txt", parsed, over, first)
    copy = memo.get("o", {"source": "s3://b/x.txt", "file_type": "note", "bucket": "b"})
    assert copy is not None and copy.plan.chunks[0].metadata == {
        "source": "s3://b/x.txt",
        "file_type": "pdf",
        "bucket": "b",
    }


def test_archives_mailboxes_and_transient_failures_are_not_kept() -> None:
    memo = ParseMemo()
    for kind in ("archive", "mbox"):
        memo.put(kind, "file:///a", *_parse(kind))
        assert memo.get(kind, {}) is None
    memo.put_failure("slow", ParserTimeoutError("x.pdf: took too long"))
    assert memo.get("slow", {}) is None
    memo.put_failure("bad", CorruptDocumentError("x.pdf: damaged"))
    with pytest.raises(CorruptDocumentError, match=r"^x\.pdf: damaged$"):
        memo.get("bad", {})


def test_the_memo_keeps_its_last_used_parses_within_its_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = ParseMemo()
    one.put("a", "file:///a", *_parse(text="a" * 300))
    size = one._size
    memo = ParseMemo(max_bytes=3 * size + 10, max_entry=size + 10)
    pickled: list[int] = []
    dumps = pickle.dumps
    monkeypatch.setattr(pickle, "dumps", lambda *a, **k: pickled.append(1) or dumps(*a, **k))
    memo.put("big", "file:///big", *_parse(text="x" * 2_000))  # past one entry's bytes
    assert memo.get("big", {}) is None
    assert pickled == []  # told by its text's length, not pickled on the event loop
    for name in ("a", "b", "c"):
        memo.put(name, f"file:///{name}", *_parse(text=name * 300))
    assert memo.get("a", {}) is not None  # used: now the newest
    memo.put("d", "file:///d", *_parse(text="d" * 300))
    assert memo.get("b", {}) is None  # the least recently used went
    assert all(memo.get(name, {}) is not None for name in ("a", "c", "d"))
    assert memo._size <= memo.max_bytes


async def test_a_copy_waits_for_the_first_parse_and_other_keys_do_not() -> None:
    memo = ParseMemo()
    order: list[str] = []

    async def parse(key: str | None, name: str, seconds: float) -> Any:
        async with memo.turn(key):
            order.append(f"{name} start")
            await asyncio.sleep(seconds)
            order.append(f"{name} end")

    await asyncio.gather(parse("k", "first", 0.1), parse("k", "copy", 0), parse("j", "other", 0))
    assert order.index("copy start") > order.index("first end")
    assert order.index("other start") < order.index("first end")
    await asyncio.gather(parse(None, "a", 0.05), parse(None, "b", 0))  # no key: no wait
    assert order[-2:] == ["b end", "a end"]
    assert not memo._turns  # nothing left behind


def test_the_memo_counts_what_its_small_entries_hold() -> None:
    """Its bound counted the pickles alone: 2,000 of 1.6 KB and their keys held 3.49 MB,
    where 3.18 MB was counted, so a memo of small parses outgrew its bound."""
    memo = ParseMemo()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            key = ParseMemo.key(None, f'"{i:032x}"', 273, f"note{i:06d}.md", {})
            assert key is not None
            memo._keep(key, ("x" * 1500, i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= memo._size <= 1.1 * held
