"""Byte-level faults from a raw-socket server: resets, short bodies, stalls, drips, changes."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_ingest.errors import S3Error, S3IntegrityError, S3ObjectChangedError, S3TimeoutError
from rag_ingest.s3 import AsyncS3Client
from tests.conftest import make_settings, run_apart
from tests.faultserver import FaultServer, Reply, Request, etag_of, ranged

KiB = 1024
DATA = random.Random(7).randbytes(1024 * KiB)
URI = "s3://bucket/object.bin"


ENGINE = {"name": "aiohttp"}


@pytest.fixture(autouse=True, params=["aiohttp", "httpcore"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every fault runs under both transfer engines."""
    ENGINE["name"] = request.param
    yield request.param
    ENGINE["name"] = "aiohttp"


def settings(server: FaultServer, tmp_path: Path, **transfer: object):
    return make_settings(
        server.endpoint_url, transfer={"engine": ENGINE["name"], **transfer}, temp_dir=tmp_path
    )


async def download(server: FaultServer, tmp_path: Path, **transfer: object):
    async with AsyncS3Client(settings(server, tmp_path, **transfer)) as s3:
        return await s3.download(URI, tmp_path / "out.bin")


async def test_reset_at_40_percent_resumes_from_the_last_byte(tmp_path: Path) -> None:
    cut = int(len(DATA) * 0.4)

    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        if n == 0:
            reply.cut_after, reply.cut = cut, "reset"
        return reply

    with FaultServer(scenario) as server:
        result = await download(server, tmp_path)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert server.requests[1].headers["range"] == f"bytes={cut}-{len(DATA) - 1}"
    assert server.requests[1].headers["if-match"] == etag_of(DATA)
    assert result.checksum == "md5-etag"
    assert result.retries == 1


async def test_short_body_without_content_length_is_caught_and_resumed(tmp_path: Path) -> None:
    cut = int(len(DATA) * 0.6)

    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        if n == 0:
            reply.send_length, reply.cut_after, reply.cut = False, cut, "close"
        return reply

    with FaultServer(scenario) as server:
        await download(server, tmp_path)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert server.requests[1].headers["range"].startswith(f"bytes={cut}-")


async def test_short_body_every_time_fails_as_integrity_error(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.send_length, reply.cut_after, reply.cut = False, 10, "close"
        return reply

    with FaultServer(scenario) as server, pytest.raises(S3IntegrityError, match="short"):
        await download(server, tmp_path)
    assert os.listdir(tmp_path) == []  # temp file removed on failure


async def test_200_without_any_length_cannot_be_verified(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        return Reply(200, {"etag": '"x"'}, DATA[:100], send_length=False)

    with FaultServer(scenario) as server:
        with pytest.raises(S3IntegrityError, match="Content-Length"):
            await download(server, tmp_path)


async def test_stall_times_out_then_resumes(tmp_path: Path) -> None:
    cut = int(len(DATA) * 0.3)

    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        if n == 0:
            reply.cut_after, reply.cut, reply.stall_seconds = cut, "stall", 10
        return reply

    with FaultServer(scenario) as server:
        await download(server, tmp_path, read_timeout=0.5)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert server.requests[1].headers["range"].startswith(f"bytes={cut}-")


async def test_drip_fails_by_minimum_rate(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.drip_seconds = 0.2  # 5 bytes/s: every read is "on time", the rate is not
        return reply

    with FaultServer(scenario) as server:
        async with AsyncS3Client(
            make_settings(
                server.endpoint_url,
                transfer={
                    "engine": ENGINE["name"],
                    "read_timeout": 5.0,
                    "min_rate": 1000,
                    "rate_window": 1.0,
                },
                retry={"max_attempts": 2},
                temp_dir=tmp_path,
            )
        ) as s3:
            with pytest.raises(S3TimeoutError, match="minimum rate"):
                await s3.download(URI, tmp_path / "out.bin")
    assert len(server.requests) == 2
    assert os.listdir(tmp_path) == []


async def test_object_changed_between_parts_fails_typed(tmp_path: Path) -> None:
    new = bytes(reversed(DATA))

    def scenario(request: Request, n: int) -> Reply:
        if n == 0:
            return ranged(DATA, request)
        return ranged(new, request)

    with FaultServer(scenario) as server, pytest.raises(S3ObjectChangedError):
        await download(server, tmp_path, multipart_threshold=256 * KiB, part_size=256 * KiB)
    gets = [r for r in server.requests[1:] if r.method == "GET"]
    assert gets and all(r.headers.get("if-match") == etag_of(DATA) for r in gets)
    assert os.listdir(tmp_path) == []


async def test_200_to_a_range_is_never_appended(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        if n == 0:
            return ranged(DATA, request)
        return Reply(200, {"etag": etag_of(DATA)}, DATA)

    with FaultServer(scenario) as server:
        with pytest.raises(S3IntegrityError, match="refusing to append"):
            await download(server, tmp_path, multipart_threshold=256 * KiB, part_size=256 * KiB)


async def test_wrong_content_range_is_refused(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        if n == 1:
            reply.headers["content-range"] = f"bytes 0-{len(reply.body) - 1}/{len(DATA)}"
        return reply

    with FaultServer(scenario) as server:
        with pytest.raises(S3IntegrityError, match="asked for bytes"):
            await download(server, tmp_path, multipart_threshold=256 * KiB, part_size=256 * KiB)


async def test_checksum_mismatch_is_integrity_error(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.headers["x-amz-checksum-crc32"] = "AAAAAA=="
        return reply

    with FaultServer(scenario) as server:
        with pytest.raises(S3IntegrityError, match="crc32 mismatch"):
            await download(server, tmp_path)


async def test_corruption_in_transit_is_fetched_again_with_progress_rewound(
    tmp_path: Path,
) -> None:
    corrupted = bytearray(DATA)
    corrupted[12345] ^= 0xFF

    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)  # the ETag is the MD5 of the real bytes
        if n == 0:
            reply.body = bytes(corrupted)
        return reply

    seen: list[int] = []
    with FaultServer(scenario) as server:
        async with AsyncS3Client(settings(server, tmp_path)) as s3:
            result = await s3.download(
                URI, tmp_path / "out.bin", progress=lambda d, t: seen.append(d)
            )
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert result.checksum == "md5-etag"
    assert len(server.requests) == 2
    assert seen.count(len(DATA)) == 2 and 0 in seen[1:]  # done, rewound to zero, done again


async def test_ranged_parallel_download_with_a_reset_in_one_part(tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        rng = request.headers.get("range", "")
        calls[rng] = calls.get(rng, 0) + 1
        if rng.startswith("bytes=524288-") and calls[rng] == 1:
            reply.cut_after, reply.cut = 1000, "reset"
        return reply

    seen: list[tuple[int, int | None]] = []
    with FaultServer(scenario) as server:
        async with AsyncS3Client(
            make_settings(
                server.endpoint_url,
                transfer={
                    "engine": ENGINE["name"],
                    "multipart_threshold": 128 * KiB,
                    "part_size": 128 * KiB,
                    "concurrency": 4,
                },
                temp_dir=tmp_path,
            )
        ) as s3:
            result = await s3.download(
                URI, tmp_path / "out.bin", progress=lambda d, t: seen.append((d, t))
            )
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert result.parts == 8 and result.retries == 1
    assert f"bytes={524288 + 1000}-{524288 + 128 * KiB - 1}" in calls
    assert seen[-1] == (len(DATA), len(DATA))
    assert all(t == len(DATA) for _, t in seen)


async def test_cancellation_removes_the_temp_file(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.drip_seconds = 0.05
        return reply

    with FaultServer(scenario) as server:
        async with AsyncS3Client(settings(server, tmp_path)) as s3:
            task = asyncio.ensure_future(s3.download_to_temp(URI))
            await asyncio.sleep(0.3)
            assert len(os.listdir(tmp_path)) == 1
            temp = Path(tmp_path, os.listdir(tmp_path)[0])
            assert temp.stat().st_mode & 0o777 == 0o600
            assert "object" not in temp.name  # never named from the key
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert os.listdir(tmp_path) == []


async def test_dead_endpoint_is_a_retryable_connect_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = make_settings(
        f"http://127.0.0.1:{port}",
        transfer={"engine": ENGINE["name"]},
        retry={"max_attempts": 2},
        temp_dir=tmp_path,
    )
    async with AsyncS3Client(s) as s3:
        with pytest.raises(S3Error, match="ConnectError") as caught:
            await s3.download(URI, tmp_path / "out.bin")
    assert caught.value.retryable
    assert os.listdir(tmp_path) == []


async def test_chunked_transfer_encoding_is_reassembled(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.chunk_size = 100 * KiB + 7  # odd sizes: chunk ends never align with reads
        return reply

    with FaultServer(scenario) as server:
        result = await download(server, tmp_path)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert result.checksum == "md5-etag" and result.retries == 0


async def test_a_weak_etag_is_never_sent_as_if_match(tmp_path: Path) -> None:
    # A web server's weak validator (W/"...", as Express sends) never matches If-Match,
    # whose comparison is strong (RFC 9110 13.1.1): sending it failed every ranged part.
    def scenario(request: Request, n: int) -> Reply:
        if request.headers.get("if-match"):
            return Reply(412, {}, b"")
        return ranged(DATA, request, etag='W/"v1"')

    with FaultServer(scenario) as server:
        web = make_settings(
            s3={"trusted_hosts": ["127.0.0.1"]},
            transfer={
                "engine": ENGINE["name"],
                "multipart_threshold": 64 * KiB,
                "part_size": 64 * KiB,
            },
            temp_dir=tmp_path,
        )
        async with AsyncS3Client(web) as s3:
            await s3.download(f"{server.endpoint_url}/files/data.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert len(server.requests) > 2
    assert not any("if-match" in r.headers for r in server.requests)


def test_bodiless_refusals_one_after_another_end(tmp_path: Path) -> None:
    """Each HEAD 404 has a body to read (for its error code) that is not there. Run
    apart: an event loop spinning would leave no timeout to fire."""

    def scenario(request: Request, n: int) -> Reply:
        return Reply(404)

    async def heads(server: FaultServer) -> int:
        refused = 0
        async with AsyncS3Client(settings(server, tmp_path)) as s3:
            for _ in range(3):
                with pytest.raises(S3Error, match="not found"):
                    await s3.head(URI)
                refused += 1
        return refused

    with FaultServer(scenario) as server:
        assert run_apart(heads(server), 20) == [3], "the client spun on an empty body"
        assert [r.method for r in server.requests] == ["HEAD"] * 3
