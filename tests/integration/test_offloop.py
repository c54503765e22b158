"""The processor's S3 client on its own loop thread, awaited from the caller's loop."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from pathlib import Path

import pytest

from rag_ingest.errors import S3NotFoundError
from rag_ingest.s3.offloop import OffLoopS3Client
from rag_ingest.testing import SeaweedS3
from tests.conftest import make_settings
from tests.faultserver import FaultServer, Reply, Request, ranged

KiB = 1024
DATA = random.Random(3).randbytes(512 * KiB)


async def test_download_runs_off_the_callers_loop_and_reports_progress_on_it(
    tmp_path: Path,
) -> None:
    def scenario(request: Request, n: int) -> Reply:
        return ranged(DATA, request)

    calls: list[tuple[int, int | None, int]] = []
    with FaultServer(scenario) as server:
        s3 = OffLoopS3Client(make_settings(server.endpoint_url, temp_dir=tmp_path))
        try:
            result = await s3.download_to_temp(
                "s3://bucket/object.bin",
                progress=lambda done, total: calls.append((done, total, threading.get_ident())),
            )
            assert result.path.read_bytes() == DATA
            result.path.unlink()
        finally:
            await s3.aclose()
    assert calls and all(ident == threading.get_ident() for _, _, ident in calls)
    assert calls[-1][:2] == (len(DATA), len(DATA))


async def test_errors_arrive_typed(tmp_path: Path) -> None:
    def scenario(request: Request, n: int) -> Reply:
        return Reply(404, {}, b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>")

    with FaultServer(scenario) as server:
        s3 = OffLoopS3Client(make_settings(server.endpoint_url, temp_dir=tmp_path))
        try:
            with pytest.raises(S3NotFoundError, match="gone"):
                await s3.download_to_temp("s3://bucket/missing.bin")
        finally:
            await s3.aclose()
    assert os.listdir(tmp_path) == []


async def test_cancelling_the_caller_stops_the_transfer_and_removes_its_file(
    tmp_path: Path,
) -> None:
    def scenario(request: Request, n: int) -> Reply:
        reply = ranged(DATA, request)
        reply.cut_after, reply.cut, reply.stall_seconds = 1000, "stall", 30.0
        return reply

    with FaultServer(scenario) as server:
        s3 = OffLoopS3Client(
            make_settings(server.endpoint_url, temp_dir=tmp_path, transfer={"read_timeout": 30})
        )
        try:
            task = asyncio.ensure_future(s3.download_to_temp("s3://bucket/object.bin"))
            for _ in range(100):  # until the temp file exists: the transfer is under way
                await asyncio.sleep(0.02)
                if os.listdir(tmp_path):
                    break
            assert os.listdir(tmp_path)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Returned only after the other loop unwound: the file is already gone.
            assert os.listdir(tmp_path) == []
        finally:
            await s3.aclose()


async def test_listing_pages_across_loops(seaweed: SeaweedS3) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="offloop")
    keys = [f"k/{i:03d}" for i in range(130)]
    for key in keys:
        client.put_object(Bucket="offloop", Key=key, Body=b"x")
    s3 = OffLoopS3Client(make_settings(seaweed.endpoint_url, s3=seaweed.settings_dict()))
    try:
        listed = [o.key async for o in s3.list("s3://offloop/k/", page_size=50)]
        assert listed == keys
        first = None
        async for o in s3.list("s3://offloop/k/", page_size=50):
            first = o.key
            break  # stopping early closes the listing on the other loop
        assert first == keys[0]
    finally:
        await s3.aclose()
