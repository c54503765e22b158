from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import AsyncIterator

import pytest

from rag_ingest._redact import RedactingFilter, redact, register_secret
from rag_ingest._sync import LoopThread
from rag_ingest.progress import ByteProgress


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def _count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def test_loop_thread_from_plain_code() -> None:
    loop = LoopThread()
    try:
        assert loop.run(_double(21)) == 42
        assert list(loop.iterate(_count(3))) == [0, 1, 2]
    finally:
        loop.close()


async def test_loop_thread_inside_a_running_loop() -> None:
    # As in Jupyter: this thread already runs a loop; asyncio.run would fail here.
    loop = LoopThread()
    try:
        assert loop.run(_double(2)) == 4
        assert list(loop.iterate(_count(2))) == [0, 1]
    finally:
        loop.close()


def test_loop_thread_propagates_errors_and_refuses_after_close() -> None:
    async def boom() -> None:
        raise ValueError("boom")

    loop = LoopThread()
    with pytest.raises(ValueError, match="boom"):
        loop.run(boom())
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run(_double(1))
    assert not any(t.name == "rag-ingest-loop" and t.is_alive() for t in threading.enumerate())


def test_closing_the_loop_thread_unwinds_what_still_runs_on_it() -> None:
    """A task still running at close is cancelled and unwinds, and the connection it
    closes on the way releases its socket (no ResourceWarning at garbage collection)."""
    server = socket.create_server(("127.0.0.1", 0))
    holding, unwound = threading.Event(), threading.Event()

    async def holds_a_connection() -> None:
        _, writer = await asyncio.open_connection(*server.getsockname())
        holding.set()
        try:
            await asyncio.sleep(3600)  # e.g. a download whose caller went away
        finally:
            writer.close()
            unwound.set()

    loop = LoopThread()
    started = asyncio.run_coroutine_threadsafe(holds_a_connection(), loop.loop)
    accepted, _ = server.accept()
    assert holding.wait(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        del started
        gc.collect()
    accepted.close()
    server.close()
    assert unwound.is_set()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], caught


def test_progress_aggregates_and_rewinds() -> None:
    seen: list[tuple[int, int | None]] = []
    meter = ByteProgress(callback=lambda d, t: seen.append((d, t)))
    meter.set_total(100)
    meter.advance(60)
    meter.rewind(20)
    meter.advance(60)
    assert seen == [(0, 100), (60, 100), (40, 100), (100, 100)]


def test_progress_bar_disabled_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    meter = ByteProgress(bar=False, total=10)
    meter.advance(10)
    meter.close()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_enabled_draws(capsys: pytest.CaptureFixture[str]) -> None:
    meter = ByteProgress(bar=True, total=10, description="s3://b/k")
    meter.advance(10)
    meter.close()
    assert "s3://b/k" in capsys.readouterr().err


def test_redaction_patterns_and_registered_values() -> None:
    register_secret("my-registered-secret-1234")
    text = (
        "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKID%2Fx&X-Amz-Signature=abcdef0123 "
        "Authorization: AWS4-HMAC-SHA256 Credential=AKID/2026, Signature=" + "a" * 64 + "\n"
        "x-amz-security-token:FQoDYXdzEJr "
        "sig2 Signature=zzz&AWSAccessKeyId=AKIAOLD value my-registered-secret-1234"
    )
    cleaned = redact(text)
    for leaked in (
        "abcdef0123",
        "a" * 64,
        "FQoDYXdzEJr",
        "zzz",
        "AKIAOLD",
        "my-registered-secret-1234",
    ):
        assert leaked not in cleaned
    # Signed URLs of other clouds, tokens in plain URLs, and a user:password.
    others = redact(
        "https://a.blob.core.windows.net/c/d.pdf?sv=2024&sig=AZURESIG%3D&se=2026 "
        "https://storage.googleapis.com/b/o?X-Goog-Credential=GCRED&X-Goog-Signature=GSIG "
        "https://wiki.corp/x?id=3&access_token=TOK1&api_key=KEY1&token=TOK2 "
        "https://alice:PASSWORD1@files.corp/a.pdf max_tokens=512 chunk_token=7"
    )
    for leaked in ("AZURESIG", "GCRED", "GSIG", "TOK1", "KEY1", "TOK2", "PASSWORD1"):
        assert leaked not in others
    for kept in ("sv=2024", "id=3", "alice:", "max_tokens=512", "chunk_token=7"):
        assert kept in others
    import logging

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "url %s", ("?X-Amz-Signature=abc",), None
    )
    RedactingFilter().filter(record)
    assert "abc" not in record.getMessage()
