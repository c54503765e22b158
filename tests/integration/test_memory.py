"""A 1 GiB download's peak memory stays within part size x concurrency plus a constant."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag_ingest.settings import DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE
from rag_ingest.testing import SeaweedS3

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
SIZE = 1024 * MiB

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from rag_ingest.s3 import AsyncS3Client
    from rag_ingest.settings import Settings

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    async def main():
        s3_settings, uri, small, dest = json.loads(sys.argv[1])
        async with AsyncS3Client(Settings(s3=s3_settings, progress=False)) as s3:
            await s3.read(small)  # warm up: imports, credentials, a connection
            before = hwm()
            result = await s3.download(uri, dest)
            print(json.dumps({"before": before, "after": hwm(), "bytes": result.bytes}))

    asyncio.run(main())
    """
)


def test_one_gib_download_memory_is_bounded(seaweed: SeaweedS3, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="memory")
    client.put_object(Bucket="memory", Key="small", Body=b"warm")
    source = tmp_path / "source.bin"
    with source.open("wb") as f:
        block = bytes(range(256)) * (4 * 4096)  # 4 MiB pattern
        for _ in range(SIZE // len(block)):
            f.write(block)
    import boto3
    from boto3.s3.transfer import TransferConfig

    boto = boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key=seaweed.secret_key,
        region_name="us-east-1",
    )
    boto.upload_file(
        str(source), "memory", "big.bin", Config=TransferConfig(multipart_chunksize=64 * MiB)
    )
    source.unlink()
    dest = tmp_path / "big.bin"
    args = json.dumps(
        [seaweed.settings_dict(), "s3://memory/big.bin", "s3://memory/small", str(dest)]
    )
    out = subprocess.run(
        [sys.executable, "-c", CHILD, args], capture_output=True, text=True, timeout=300, check=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["bytes"] == SIZE and dest.stat().st_size == SIZE
    dest.unlink()  # pytest keeps the last three runs' files: 1 GiB each on a tight disk
    client.delete_object(Bucket="memory", Key="big.bin")
    growth = figures["after"] - figures["before"]
    print(f"peak RSS growth during a 1 GiB download: {growth / MiB:.1f} MiB")
    assert growth <= DEFAULT_PART_SIZE * DEFAULT_CONCURRENCY + 16 * MiB
