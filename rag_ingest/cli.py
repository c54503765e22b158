"""The ``rag-ingest`` command.

Exit status: 0 when everything worked, 1 when an object failed, 2 for a usage or
configuration error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="settings file (default: ./config.py if present)"
    )
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, SeaweedFS)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rag-ingest", description="Fast, verified S3 ingestion for RAG.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="run against a throwaway local S3 server (no network)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    ls = sub.add_parser("ls", help="list objects under an s3:// prefix")
    ls.add_argument("prefix")
    ls.add_argument("--include", action="append", default=[], metavar="GLOB")
    ls.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    ls.add_argument("--max-count", type=int)
    _common(ls)

    get = sub.add_parser("download", help="download one object (s3://, presigned or https URL)")
    get.add_argument("source")
    get.add_argument("dest", type=Path)
    _common(get)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from rag_ingest.settings import load_settings

    config = args.config
    if config is None and Path("config.py").is_file():
        config = Path("config.py")
    overrides: dict[str, Any] = {}
    if getattr(args, "endpoint_url", None):
        overrides["s3"] = {"endpoint_url": args.endpoint_url}
    if args.no_progress or not sys.stderr.isatty():
        overrides["progress"] = False
    return load_settings(config, overrides)


async def _ls(args: argparse.Namespace) -> int:
    from rag_ingest.s3 import AsyncS3Client

    count = 0
    async with AsyncS3Client(_settings(args)) as s3:
        async for info in s3.list(
            args.prefix, include=args.include, exclude=args.exclude, max_count=args.max_count
        ):
            modified = info.last_modified.isoformat() if info.last_modified else "-"
            print(f"{info.size:>14}  {modified}  {info.key}")
            count += 1
    print(f"{count} objects", file=sys.stderr)
    return 0


async def _download(args: argparse.Namespace) -> int:
    from rag_ingest.s3 import AsyncS3Client

    async with AsyncS3Client(_settings(args)) as s3:
        result = await s3.download(args.source, args.dest)
    rate = result.bytes / max(result.seconds, 1e-9) / 1e6
    print(
        f"{result.path}: {result.bytes} bytes in {result.seconds:.2f}s ({rate:.0f} MB/s), "
        f"{result.parts} parts, {result.retries} retries, "
        f"checksum {result.checksum or 'none offered'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from rag_ingest.errors import ConfigurationError, RagIngestError

    started = time.perf_counter()
    try:
        if args.command == "demo":
            from rag_ingest.demo import run_demo

            return run_demo(progress=not args.no_progress and sys.stderr.isatty())
        runner = {"ls": _ls, "download": _download}[args.command]
        return asyncio.run(runner(args))
    except ConfigurationError as exc:
        print(f"rag-ingest: configuration error: {exc}", file=sys.stderr)
        return 2
    except RagIngestError as exc:
        print(f"rag-ingest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"rag-ingest: interrupted after {time.perf_counter() - started:.1f}s", file=sys.stderr
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
