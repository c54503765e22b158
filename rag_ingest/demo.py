"""``rag-ingest demo``: the transport end to end on a throwaway local S3 server.

Starts SeaweedFS on loopback (no network, no cloud credentials), uploads a small
generated corpus, lists it, downloads every object concurrently through the
verified ranged client, checks the bytes, prints a summary and stops the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run_demo", "sample_corpus"]

_MiB = 1024 * 1024


def sample_corpus() -> dict[str, bytes]:
    """A small mixed corpus: prose, Markdown, HTML, code, and one multi-part binary."""
    rng = random.Random(42)
    return {
        "docs/guide.md": b"# Guide\n\n## Install\n\nRun the two commands.\n\n## Use\n\nIngest.\n",
        "docs/notes with spaces.txt": "Caf\u00e9 notes \u2014 unicode and spaces.\n".encode(),
        "web/index.html": b"<html><body><h1>Hello</h1><p>From the demo corpus.</p></body></html>",
        "code/app.py": b"def ingest(uri: str) -> None:\n    print(uri)\n",
        "code/main.go": b'package main\n\nfunc main() { println("hi") }\n',
        "data/archive.bin": rng.randbytes(24 * _MiB + 123),
    }


async def _run(endpoint: dict[str, Any], corpus: dict[str, bytes], progress: bool) -> int:
    from rag_ingest.s3 import AsyncS3Client
    from rag_ingest.settings import Settings

    settings = Settings.model_validate({"s3": endpoint, "progress": progress})
    failures = 0
    with tempfile.TemporaryDirectory(prefix="rag-ingest-demo-") as out:
        async with AsyncS3Client(settings) as s3:
            listed = [info async for info in s3.list("s3://demo/")]
            started = time.perf_counter()

            async def one(key: str) -> tuple[str, str]:
                result = await s3.download(
                    f"s3://demo/{key}", Path(out) / hashlib.sha1(key.encode()).hexdigest()
                )
                same = result.path.read_bytes() == corpus[key]
                return key, (
                    f"{result.bytes:>10}  {result.parts:>5}  "
                    f"{(result.checksum or '-'):>9}  {'ok' if same else 'MISMATCH'}"
                )

            rows = await asyncio.gather(*(one(info.key or "") for info in listed))
            seconds = time.perf_counter() - started
    print(f"\n{'key':<32}{'bytes':>10}  {'parts':>5}  {'checksum':>9}  bytes")
    for key, row in sorted(rows):
        print(f"{key:<32}{row}")
        failures += row.endswith("MISMATCH")
    total = sum(len(v) for v in corpus.values())
    print(
        f"\n{len(listed)} objects listed, {len(rows)} downloaded and verified, "
        f"{total / _MiB:.1f} MiB in {seconds:.2f}s, {failures} failed"
    )
    return 1 if failures or len(listed) != len(corpus) else 0


def run_demo(*, progress: bool = True) -> int:
    """Run the demo; returns the process exit status."""
    from rag_ingest.testing import SeaweedS3

    corpus = sample_corpus()
    print("starting a local S3 server (SeaweedFS) on 127.0.0.1 ...", file=sys.stderr)
    with SeaweedS3() as server:
        client = server.client()
        client.create_bucket(Bucket="demo")
        for key, body in corpus.items():
            client.put_object(Bucket="demo", Key=key, Body=body)
        print(
            f"uploaded {len(corpus)} objects to s3://demo/ at {server.endpoint_url}",
            file=sys.stderr,
        )
        status = asyncio.run(_run(server.settings_dict(), corpus, progress))
    print("local S3 server stopped", file=sys.stderr)
    return status
