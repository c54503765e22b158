"""S3 download benchmark: rag_ingest vs boto3 (s3transfer) vs obstore, same server, same run.

For small objects it also times ``python-floor``: the least any Python client
can do per object (a signed aiohttp GET and a file write), a lower bound.

Starts SeaweedFS on loopback, uploads one 1 GiB object, 1,000 objects of 64 KiB
and 10,000 keys, then times each client in a fresh subprocess (median of
``--repeat`` runs) and prints MB/s, objects/s, peak RSS above the process's
baseline, and rag_ingest's ratio to each peer.

    pip install -e '.[bench]'
    python benchmarks/s3_download.py [--repeat 3] [--large-mib 1024] [--sweep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import MiB, boto3_client, child_config, floor_fetcher, hwm, run_child

SMALL = 64 * 1024
N_SMALL = 1000
N_LIST = 10_000
BUCKET = "bench"


# -- the clients, each run inside a child process -------------------------------------


async def _rag_large(cfg: dict[str, Any], out: Path) -> None:
    from rag_ingest.s3 import AsyncS3Client
    from rag_ingest.settings import Settings

    settings = Settings.model_validate(
        {"s3": cfg["s3"], "progress": False, "transfer": cfg.get("transfer", {})}
    )
    async with AsyncS3Client(settings) as s3:
        await s3.read(f"s3://{BUCKET}/small/00000")
        before, start = hwm(), time.perf_counter()
        result = await s3.download(f"s3://{BUCKET}/large.bin", out / "large.bin")
        _report(start, before, result.bytes, 1, checksum=result.checksum)


async def _rag_large_unverified(cfg: dict[str, Any], out: Path) -> None:
    """The same download with ``transfer.verify_checksum`` off, as the peers do."""
    transfer = dict(cfg.get("transfer", {}), verify_checksum=False)
    await _rag_large(dict(cfg, transfer=transfer), out)


async def _rag_small(cfg: dict[str, Any], out: Path) -> None:
    from rag_ingest.s3 import AsyncS3Client
    from rag_ingest.settings import Settings

    settings = Settings.model_validate({"s3": cfg["s3"], "progress": False})
    async with AsyncS3Client(settings) as s3:
        await s3.read(f"s3://{BUCKET}/small/00000")
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> int:
            async with gate:
                r = await s3.download(f"s3://{BUCKET}/small/{i:05d}", out / f"{i:05d}")
                return r.bytes

        before, start = hwm(), time.perf_counter()
        sizes = await asyncio.gather(*(one(i) for i in range(N_SMALL)))
        _report(start, before, sum(sizes), N_SMALL)


async def _rag_list(cfg: dict[str, Any], out: Path) -> None:
    from rag_ingest.s3 import AsyncS3Client
    from rag_ingest.settings import Settings

    settings = Settings.model_validate({"s3": cfg["s3"], "progress": False})
    async with AsyncS3Client(settings) as s3:
        await s3.read(f"s3://{BUCKET}/small/00000")
        before, start = hwm(), time.perf_counter()
        n = 0
        async for _ in s3.list(f"s3://{BUCKET}/list/"):
            n += 1
        _report(start, before, 0, n)


def _boto(cfg: dict[str, Any]) -> Any:
    return boto3_client(cfg["s3"], connections=64)


def _boto_large(cfg: dict[str, Any], out: Path) -> None:
    client = _boto(cfg)
    client.get_object(Bucket=BUCKET, Key="small/00000")["Body"].read()
    before, start = hwm(), time.perf_counter()
    client.download_file(BUCKET, "large.bin", str(out / "large.bin"))
    _report(start, before, os.path.getsize(out / "large.bin"), 1)


def _boto_small(cfg: dict[str, Any], out: Path) -> None:
    client = _boto(cfg)
    client.get_object(Bucket=BUCKET, Key="small/00000")["Body"].read()

    def one(i: int) -> int:
        client.download_file(BUCKET, f"small/{i:05d}", str(out / f"{i:05d}"))
        return SMALL

    before, start = hwm(), time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        total = sum(pool.map(one, range(N_SMALL)))
    _report(start, before, total, N_SMALL)


def _boto_list(cfg: dict[str, Any], out: Path) -> None:
    client = _boto(cfg)
    client.get_object(Bucket=BUCKET, Key="small/00000")["Body"].read()
    before, start = hwm(), time.perf_counter()
    n = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="list/"):
        n += len(page.get("Contents", []))
    _report(start, before, 0, n)


def _obstore(cfg: dict[str, Any]) -> Any:
    from obstore.store import S3Store

    s3 = cfg["s3"]
    return S3Store(
        BUCKET,
        endpoint=s3["endpoint_url"],
        access_key_id=s3["access_key_id"],
        secret_access_key=s3["secret_access_key"],
        region="us-east-1",
        client_options={"allow_http": True},
    )


async def _obstore_large(cfg: dict[str, Any], out: Path) -> None:
    """obstore's concurrent ranged GETs (8 MiB x 8), each part written at its offset."""
    import obstore

    store = _obstore(cfg)
    await obstore.get_async(store, "small/00000")
    before, start = hwm(), time.perf_counter()
    size = (await obstore.head_async(store, "large.bin"))["size"]
    fd = os.open(out / "large.bin", os.O_CREAT | os.O_WRONLY, 0o600)
    gate = asyncio.Semaphore(8)

    async def part(offset: int) -> None:
        async with gate:
            data = await obstore.get_range_async(
                store, "large.bin", start=offset, end=min(offset + 8 * MiB, size)
            )
            os.pwrite(fd, memoryview(data), offset)

    await asyncio.gather(*(part(o) for o in range(0, size, 8 * MiB)))
    os.close(fd)
    _report(start, before, size, 1)


async def _obstore_small(cfg: dict[str, Any], out: Path) -> None:
    import obstore

    store = _obstore(cfg)
    await obstore.get_async(store, "small/00000")
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> int:
        async with gate:
            result = await obstore.get_async(store, f"small/{i:05d}")
            data = await result.bytes_async()
            (out / f"{i:05d}").write_bytes(memoryview(data))
            return len(data)

    before, start = hwm(), time.perf_counter()
    sizes = await asyncio.gather(*(one(i) for i in range(N_SMALL)))
    _report(start, before, sum(sizes), N_SMALL)


async def _floor_small(cfg: dict[str, Any], out: Path) -> None:
    async with floor_fetcher(cfg["s3"], 64) as fetch:
        await fetch(BUCKET, "small/00000", out / "00000")
        before, start = hwm(), time.perf_counter()
        sizes = await asyncio.gather(
            *(fetch(BUCKET, f"small/{i:05d}", out / f"{i:05d}") for i in range(N_SMALL))
        )
        _report(start, before, sum(sizes), N_SMALL)


def _report(start: float, before: int, nbytes: int, count: int, **extra: Any) -> None:
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "rss": max(0, hwm() - before), "bytes": nbytes, "count": count}
            | extra
        ),
        flush=True,
    )


CASES = {
    ("rag_ingest", "large"): _rag_large,
    ("rag_ingest-unverified", "large"): _rag_large_unverified,
    ("rag_ingest", "small"): _rag_small,
    ("rag_ingest", "list"): _rag_list,
    ("boto3", "large"): _boto_large,
    ("boto3", "small"): _boto_small,
    ("boto3", "list"): _boto_list,
    ("obstore", "large"): _obstore_large,
    ("obstore", "small"): _obstore_small,
    ("python-floor", "small"): _floor_small,
}


def child(client: str, case: str) -> None:
    cfg = child_config()
    fn = CASES[(client, case)]
    with tempfile.TemporaryDirectory(dir=cfg.get("tmp")) as out:
        result = fn(cfg, Path(out))
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    # obstore has aborted at interpreter exit here (s3-transfer.md); results are already out.
    sys.stdout.flush()
    os._exit(0)


# -- the parent: server, data, runs, table ---------------------------------------------


def run_once(client: str, case: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return run_child(__file__, [client, case], cfg, timeout=600)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median time over the runs; the worst peak RSS."""
    median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return median | {"rss": max(r["rss"] for r in runs), "runs": len(runs)}


def upload(server: Any, large_mib: int) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    with tempfile.NamedTemporaryFile() as f:
        block = os.urandom(4 * MiB)
        for _ in range(large_mib // 4):
            f.write(block)
        f.flush()
        client.upload_file(f.name, BUCKET, "large.bin", Config=TransferConfig(max_concurrency=8))
    small = os.urandom(SMALL)
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: client.put_object(Bucket=BUCKET, Key=f"small/{i:05d}", Body=small),
                range(N_SMALL),
            )
        )
        list(
            pool.map(
                lambda i: client.put_object(Bucket=BUCKET, Key=f"list/{i:05d}", Body=b"x"),
                range(N_LIST),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--sweep", action="store_true", help="also try part sizes x concurrency")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from rag_ingest.testing import SeaweedS3

    with SeaweedS3() as server:
        t0 = time.perf_counter()
        upload(server, args.large_mib)
        print(f"uploaded test data in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        cfg: dict[str, Any] = {"s3": server.settings_dict()}
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in CASES}
        # Interleave clients within each repeat so that machine drift hits all alike.
        for _ in range(args.repeat):
            for key in CASES:
                runs[key].append(run_once(*key, cfg))
                print(f"  {key[0]:<10} {key[1]:<5} {runs[key][-1]}", file=sys.stderr)
        results = {key: summarize(value) for key, value in runs.items()}
        sweep = []
        if args.sweep:
            for part in (4, 8, 16):
                for conc in (4, 8, 16):
                    transfer = {
                        "part_size": part * MiB,
                        "multipart_threshold": part * MiB,
                        "concurrency": conc,
                    }
                    c = dict(cfg, transfer=transfer)
                    r = summarize([run_once("rag_ingest", "large", c) for _ in range(args.repeat)])
                    sweep.append((part, conc, r))
    print_table(results, sweep, args)


def print_table(
    results: dict[tuple[str, str], dict[str, float]], sweep: list[Any], args: Any
) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"\nMachine: {machine}, SeaweedFS on 127.0.0.1; "
        f"median of {args.repeat} interleaved runs, each in a fresh process\n"
    )
    print("| case | client | MB/s | objects/s | peak RSS above baseline (MiB) | rag_ingest ratio |")
    print("|---|---|---|---|---|---|")
    labels = {
        "large": f"1 object of {args.large_mib} MiB",
        "small": f"{N_SMALL} x 64 KiB (64 in flight)",
        "list": f"list {N_LIST} keys",
    }
    for case in ("large", "small", "list"):
        ours = results.get(("rag_ingest", case))
        for client in ("rag_ingest", "rag_ingest-unverified", "boto3", "obstore", "python-floor"):
            r = results.get((client, case))
            if not r or not ours:
                continue
            mbs = r["bytes"] / r["seconds"] / 1e6 if r["bytes"] else float("nan")
            ops = f"{r['count'] / r['seconds']:,.0f}" if case != "large" else "-"
            ratio = "-" if client == "rag_ingest" else f"{r['seconds'] / ours['seconds']:.2f}x"
            mb = f"{mbs:.0f}" if r["bytes"] else "-"
            rss = r["rss"] / MiB
            print(f"| {labels[case]} | {client} | {mb} | {ops} | {rss:.1f} | {ratio} |")
    floor, obstore = results.get(("python-floor", "small")), results.get(("obstore", "small"))
    if floor and obstore:
        print(
            "\npython-floor (a signed aiohttp GET and a file write per object, nothing else) "
            f"vs obstore, small objects: {obstore['seconds'] / floor['seconds']:.2f}x"
        )
    large = results.get(("rag_ingest", "large"))
    if large:
        verified = large.get("checksum") or "none offered"
        print(
            f"\nrag_ingest large-object checksum verified: {verified} "
            "(boto3 and obstore verify none)"
        )
    bare, boto = results.get(("rag_ingest-unverified", "large")), results.get(("boto3", "large"))
    if bare and boto:
        print(
            "rag_ingest-unverified (transfer.verify_checksum off) vs boto3, large object: "
            f"{boto['seconds'] / bare['seconds']:.2f}x"
        )
    if sweep:
        print("\n| part MiB | concurrency | MB/s | peak RSS MiB |\n|---|---|---|---|")
        for part, conc, r in sweep:
            mbs = r["bytes"] / r["seconds"] / 1e6
            print(f"| {part} | {conc} | {mbs:.0f} | {r['rss'] / MiB:.1f} |")


if __name__ == "__main__":
    main()
