"""Shared by the benchmark scripts: peak memory, CPU by process, the least a Python S3
client can do, and running one measurement in a child."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def hwm() -> int:
    """This process's peak resident set size so far (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _stat(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2 :].split()  # fields from the state on (ppid is [1])


def cpu_split(others: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far (Linux /proc), by role.

    ``ingest``: this process, plus children it has reaped; ``chroma``: a child
    whose command line names chroma; ``workers``: every other child (the parser
    processes); and each of ``others`` (role -> pid), e.g. the S3 server.
    """
    tick = os.sysconf("SC_CLK_TCK")
    me = _stat("self")
    split = {"ingest": sum(int(x) for x in me[11:15]) / tick, "workers": 0.0, "chroma": 0.0}
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(entry)
            if int(fields[1]) != own:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                role = "chroma" if b"chroma" in f.read() else "workers"
        except (OSError, ValueError):
            continue  # exited meanwhile
        split[role] += (int(fields[11]) + int(fields[12])) / tick
    for role, pid in others.items():
        try:
            split[role] = sum(int(x) for x in _stat(pid)[11:13]) / tick
        except OSError:
            pass
    return split


def boto3_client(s3: dict[str, Any], connections: int = 10) -> Any:
    """boto3's S3 client for the benchmark server (``s3``: the settings dict)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        aws_access_key_id=s3["access_key_id"],
        aws_secret_access_key=s3["secret_access_key"],
        region_name=s3.get("region") or "us-east-1",
        config=Config(max_pool_connections=connections),
    )


def run_child(
    script: str, args: list[str], config: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a fresh interpreter; return its last JSON line.

    ``config`` goes on stdin (see :func:`child_config`): it holds the server's secret
    key, and a command line is readable by every user of the machine.
    """
    proc = subprocess.run(
        [sys.executable, script, "--child", *args],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_config() -> dict[str, Any]:
    """The config :func:`run_child` sent."""
    config: dict[str, Any] = json.loads(sys.stdin.read())
    return config


@contextlib.asynccontextmanager
async def floor_fetcher(
    s3: dict[str, Any], concurrency: int
) -> AsyncIterator[Callable[[str, str, Path], Awaitable[int]]]:
    """``fetch(bucket, key, path) -> bytes``: the least a Python client can do per object.

    A SigV4-signed aiohttp GET, then a plain file write. No httpx, retries, size or
    checksum checks, temp file or rename: not a usable client, a measured lower bound
    for one interpreter on this machine.
    """
    import aiohttp
    import yarl

    from rag_ingest.s3.auth import Signer
    from rag_ingest.settings import S3Settings

    settings = S3Settings.model_validate(s3)
    signer = Signer(settings)
    await signer.resolve()
    endpoint = str(settings.endpoint_url).rstrip("/")
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def fetch(bucket: str, key: str, path: Path) -> int:
            async with gate:
                url = f"{endpoint}/{bucket}/{key}"
                headers = signer.sign("GET", url, {}, settings.region or "us-east-1")
                async with session.get(yarl.URL(url, encoded=True), headers=headers) as r:
                    data = await r.read()
                    assert r.status == 200, r.status
                path.write_bytes(data)
                return len(data)

        yield fetch


def baseline_store(store: str, embedder: str) -> tuple[Any, Any]:
    """The LangChain baseline's Chroma (in-process, at ``store``) and its splitter:
    rag_ingest's default chunk size, fitted to the embedder's window as rag_ingest fits
    it, so that both embed the same text (MiniLM: 190 tokens; hash: no window, 512)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag_ingest.chunking import fit_to_window
    from rag_ingest.models import load_embeddings
    from rag_ingest.settings import ChunkSettings
    from rag_ingest.tokens import get_encoding

    get_encoding("cl100k_base")  # the same offline vocabulary for both
    client = chromadb.PersistentClient(
        path=store, settings=ChromaSettings(anonymized_telemetry=False)
    )
    embeddings = load_embeddings(embedder)
    vectorstore = Chroma(client=client, collection_name="baseline", embedding_function=embeddings)
    chunk = ChunkSettings()
    window = getattr(embeddings, "max_input_tokens", None)
    if window:
        chunk = fit_to_window(chunk, window)
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base",
        chunk_size=chunk.chunk_tokens,
        chunk_overlap=chunk.overlap_tokens,
    )
    return vectorstore, splitter
