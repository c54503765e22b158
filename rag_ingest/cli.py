"""The ``rag-ingest`` command.

Exit status: 0 when nothing failed, 1 when any document or operation failed,
2 for a usage or configuration error (one line on stderr, no traceback).
Settings by increasing priority: defaults, ``config.py`` (``--config`` or
``./config.py``), ``RAG_INGEST_*`` environment variables, flags.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_ingest.progress import tail

if TYPE_CHECKING:
    from rag_ingest.ledger import SessionInfo
    from rag_ingest.settings import Settings

__all__ = ["main", "print_hits", "print_summary", "report_json"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _common(parser: argparse.ArgumentParser, *, store: bool = False) -> None:
    parser.add_argument(
        "--config", type=Path, help="settings file (default: ./config.py if present)"
    )
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, SeaweedFS)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if store:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--persist-dir", type=Path, help="embedded Chroma and ledger directory")
        where.add_argument("--chroma-url", help="a Chroma server, e.g. http://127.0.0.1:8000")
        parser.add_argument("--collection", help="Chroma collection name")
        parser.add_argument(
            "--vectorstore",
            metavar="MODULE:ATTR",
            help="your own LangChain VectorStore (or a factory of one) instead of Chroma; "
            "the ledger stays in --persist-dir",
        )
        parser.add_argument(
            "--embeddings",
            help="embedder: minilm (default), hash, or MODULE:ATTR (an Embeddings or factory)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rag-ingest", description="Fast, verified document ingestion for RAG.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ingest = sub.add_parser("ingest", help="ingest sources into a session")
    ingest.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="s3://bucket/key or prefix/, https URL, local file or directory; "
        "'-' for standard input (with --name)",
    )
    ingest.add_argument("--session", required=True, help="session id the chunks belong to")
    ingest.add_argument(
        "--name",
        help="with SOURCE '-': the file name of what standard input holds, e.g. page.html "
        "(its type is read from it; the source is upload://NAME)",
    )
    ingest.add_argument("--user", help="user id recorded on every chunk")
    ingest.add_argument("--include", action="append", default=[], metavar="GLOB")
    ingest.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    ingest.add_argument("--concurrency", type=int, help="documents in flight (and downloads)")
    ingest.add_argument("--report", type=Path, help="write a JSON report here")
    ingest.add_argument(
        "--summarizer",
        metavar="MODULE:ATTR",
        help="a LangChain chat model (or a factory of one) to summarize each document",
    )
    ingest.add_argument(
        "--image-describer",
        metavar="MODULE:ATTR",
        help="a multimodal chat model (or a factory of one) to describe images",
    )
    ingest.add_argument(
        "--prune",
        action="store_true",
        help="remove this session's sources that the prefixes/directories no longer list",
    )
    ingest.add_argument(
        "--reingest",
        action="store_true",
        help="read every source again, unchanged ones too (after an upgrade that parses or "
        "masks better): their chunks replaced, the vectors of unchanged text reused",
    )
    ingest.add_argument(
        "--dry-run",
        action="store_true",
        help="list and check only: what would be ingested and why, the bytes to download, "
        "what --prune would remove; nothing downloaded, embedded or written",
    )
    _common(ingest, store=True)

    query = sub.add_parser("query", help="top chunks of one session")
    query.add_argument("text")
    query.add_argument("--session", required=True)
    query.add_argument("-k", type=int, default=4, help="how many chunks (default 4)")
    query.add_argument(
        "--where",
        type=json.loads,
        metavar="JSON",
        help='narrow within the session by metadata, e.g. \'{"file_type": "pdf"}\'',
    )
    query.add_argument("--json", action="store_true", help="print JSON")
    _common(query, store=True)

    delete = sub.add_parser("delete", help="remove a session's chunks and ledger rows")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("--session")
    which.add_argument(
        "--older-than",
        type=_duration,
        metavar="AGE",
        help="every session last used (ingested into or searched) longer ago than AGE "
        "(90m, 12h, 30d, 8w); one with documents in flight is kept",
    )
    _common(delete, store=True)

    status = sub.add_parser(
        "status",
        help="each source of a session as the ledger has it; without --session, each session",
    )
    status.add_argument("--session")
    status.add_argument(
        "--failed", action="store_true", help="only sources (or sessions) with failures"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    _common(status, store=True)

    verify = sub.add_parser("verify", help="compare a session's ledger with its store")
    verify.add_argument("--session", required=True)
    verify.add_argument(
        "--repair",
        action="store_true",
        help="delete orphan chunks; mark sources with missing chunks for re-ingest",
    )
    _common(verify, store=True)

    demo = sub.add_parser("demo", help="ingest a sample corpus from a throwaway local S3 server")
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
    # Settings section -> {flag's dest: setting}, for the flags a command has and was given.
    flags = {
        "store": {
            "persist_dir": "persist_dir",
            "chroma_url": "chroma_url",
            "collection": "collection",
            "vectorstore": "vectorstore",
        },
        "models": {
            "embeddings": "embedder",
            "summarizer": "summarizer",
            "image_describer": "image_describer",
        },
    }
    for section, names in flags.items():
        given = {
            key: getattr(args, dest) for dest, key in names.items() if getattr(args, dest, None)
        }
        if given:
            overrides[section] = given
    if getattr(args, "concurrency", None):
        overrides["pipeline"] = {"in_flight": args.concurrency, "downloads": args.concurrency}
    settings = load_settings(config, overrides)
    m = settings.models
    specs = [
        m.embedder,
        m.summarizer or "",
        m.image_describer or "",
        settings.store.vectorstore or "",
    ]
    if any(":" in spec for spec in specs) and "" not in sys.path:
        sys.path.insert(0, "")  # MODULE:ATTR in the working directory, as uvicorn finds apps
    return settings


# -- output ---------------------------------------------------------------------------


_TABLE_ROWS = 50
# Sources whose warnings the summary shows, and each warning's length there.
_WARNED_ROWS = 10
_WARNING_CHARS = 160


class _First:
    """The ``n`` results first by source of those given, and how many were given: the
    summary's tables, in memory bounded however many sources a run lists."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self._held: list[Any] = []

    def add(self, result: Any) -> None:
        self.count += 1
        self._held.append(result)
        if len(self._held) > 2 * self.n:
            self._held = self.first()

    def first(self) -> list[Any]:
        return sorted(self._held, key=lambda r: r.source)[: self.n]


class Digest:
    """What the end-of-run summary shows of the results, gathered as they come (the
    report keeps only the failed: a run of a million sources held each result)."""

    def __init__(self) -> None:
        self.embedders: set[str] = set()
        self.quiet = 0  # skipped with no text to index
        self.rows = _First(_TABLE_ROWS)  # neither unchanged nor quiet
        self.warned = _First(_WARNED_ROWS)  # rows read with warnings, not failed
        self.noted = 0  # rows read with notes of how, not failed
        self.planned = _First(_TABLE_ROWS)  # a dry run's

    @classmethod
    def of(cls, results: Sequence[Any]) -> Digest:
        digest = cls()
        for r in results:
            digest.add(r)
        return digest

    def add(self, r: Any) -> None:
        if r.embedder:
            self.embedders.add(r.embedder)
        if r.status == "planned":
            self.planned.add(r)
        if r.status == "skipped" and r.message and r.message.endswith("no text to index"):
            self.quiet += 1
            return
        if r.status == "skipped" and r.message and "unchanged" in r.message:
            return
        self.rows.add(r)
        if r.status != "failed" and r.warnings:
            self.warned.add(r)
        if r.status != "failed" and r.notes:
            self.noted += 1


def print_summary(report: Any, seconds: float | None = None, digest: Digest | None = None) -> None:
    """The end-of-run table of what changed (unchanged sources, and listed files with no
    text such as images, only counted; at most ``_TABLE_ROWS`` rows), the pruned, each
    failure with its type and reason, and the counts last, where a long run's output
    ends. ``digest``: the run's results as they came (else the report's)."""
    digest = digest or Digest.of(report.results)
    totals = report.totals
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    embedders = sorted(digest.embedders)
    if rows := digest.rows.first():
        width = min(48, max(len(r.source) for r in rows))
        print(f"\n{'status':<9} {'type':<9} {'chunks':>6} {'tokens':>7}  source")
        for r in rows:
            print(
                f"{r.status:<9} {(r.file_type or '-'):<9} {r.total_chunks:>6} {r.token_count:>7}  "
                f"{tail(r.source, width)}"
            )
        if digest.rows.count > len(rows):
            print(
                f"... and {digest.rows.count - len(rows)} more (--report FILE lists every source)"
            )
    if digest.quiet:
        print(f"\n{digest.quiet} skipped with no text to index (images, video, binaries, ...)")
    _print_warned(digest.warned)
    if digest.noted:
        print(
            f"\n{digest.noted} read with notes of how (decompressed, type told by content; "
            "--report FILE lists them)"
        )
    _print_pruned_and_failed(
        report, "pruned (no longer listed; chunks and ledger rows removed)", "failures"
    )
    if report.usage:
        print(f"\nmodel use: {usage_text(report.usage)}")
    print(
        f"\n{totals['listed']} listed: {totals['ingested']} ingested, {totals['skipped']} skipped, "
        f"{totals['failed']} failed; {totals['chunks']} chunks, {totals['tokens']} tokens, "
        f"{totals['bytes'] / 1e6:.1f} MB{took}"
        + (f"; {totals['reused_vectors']} stored vectors kept" if totals["reused_vectors"] else "")
        + (f"; {totals['reused_answers']} model answers kept" if totals["reused_answers"] else "")
        + (f" (embedder: {', '.join(embedders)})" if embedders else "")
    )


def usage_text(usage: dict[str, int]) -> str:
    """``usage`` (see ``IngestResult.usage``) in words: "2 summary calls (1,200 tokens
    in, 80 out; 1 more failed), 3 picture calls, 40 chunks embedded (9,000 tokens)"."""
    parts = []
    for kind, named in (("summary", "summary"), ("image", "picture")):
        calls, failed = usage.get(f"{kind}_calls", 0), usage.get(f"{kind}_failed_calls", 0)
        if not calls and not failed:
            continue
        tokens_in, tokens_out = (
            usage.get(f"{kind}_input_tokens"),
            usage.get(f"{kind}_output_tokens"),
        )
        told = [f"{tokens_in or 0:,} tokens in, {tokens_out or 0:,} out"] * bool(
            tokens_in or tokens_out
        )
        told += [f"{failed:,} more failed"] * bool(failed)
        said = f" ({'; '.join(told)})" if told else ""
        parts.append(f"{calls:,} {named} call{'s' * (calls != 1)}{said}")
    chunks, failed = usage.get("embedded_chunks", 0), usage.get("embedding_failed_calls", 0)
    if chunks or failed:
        told = [f"{usage.get('embedded_tokens', 0):,} tokens"]
        told += [f"{failed:,} embedding call{'s' * (failed != 1)} failed"] * bool(failed)
        parts.append(f"{chunks:,} chunks embedded ({'; '.join(told)})")
    return ", ".join(parts)


def _print_warned(warned: _First) -> None:
    """Sources read with warnings (pages left unread, lines left out, a mail mended), the
    first of each: a run's summary had said nothing of them, nor had ``--report``."""
    if not warned.count:
        return
    print(f"\nwith warnings: {warned.count}")
    for r in warned.first():
        first = r.warnings[0]
        if len(first) > _WARNING_CHARS:
            first = first[: _WARNING_CHARS - 1] + "…"
        more = f" (+{len(r.warnings) - 1} more)" if len(r.warnings) > 1 else ""
        print(f"  {tail(r.source, 48)}: {first}{more}")
    if warned.count > _WARNED_ROWS:
        print(f"  ... and {warned.count - _WARNED_ROWS} more (--report FILE lists every warning)")


def _print_pruned_and_failed(report: Any, pruned_title: str, failed_title: str) -> None:
    """The pruned sources (at most ``_TABLE_ROWS``), then each failure and its reason."""
    if report.pruned:
        print(f"\n{pruned_title}: {len(report.pruned)}")
        for source in report.pruned[:_TABLE_ROWS]:
            print(f"  {source}")
        if len(report.pruned) > _TABLE_ROWS:
            print(f"  ... and {len(report.pruned) - _TABLE_ROWS} more")
    failures = [r for r in report.results if r.status == "failed"]
    if failures:
        print(f"\n{failed_title}:")
        for r in failures:
            later = " (may pass: run again later)" if r.transient else ""
            print(f"  {r.source}: {r.error_type}: {r.message}{later}")


def print_plan(report: Any, seconds: float, digest: Digest | None = None) -> None:
    """A dry run's table: each source a run would ingest, its size and why (at most
    ``_TABLE_ROWS`` rows), what ``--prune`` would remove, the failures, then the counts."""
    digest = digest or Digest.of(report.results)
    totals = report.totals
    if planned := digest.planned.first():
        width = min(48, max(len(r.source) for r in planned))
        print(f"\n{'MB':>8}  {'source':<{width}}  why")
        for r in planned:
            why = (r.message or "").removeprefix("would be ingested: ")
            print(f"{r.bytes / 1e6:>8.2f}  {tail(r.source, width):<{width}}  {why}")
        if digest.planned.count > len(planned):
            print(
                f"... and {digest.planned.count - len(planned)} more "
                "(--report FILE lists every source)"
            )
    _print_pruned_and_failed(report, "--prune would remove (no longer listed)", "would fail")
    print(
        f"\ndry run, nothing downloaded, embedded or written: {totals['listed']} listed: "
        f"{totals['planned']} to ingest ({totals['bytes'] / 1e6:.1f} MB to download), "
        f"{totals['skipped']} skipped, {totals['failed']} failed in {seconds:.1f}s"
    )


def _clock(seconds: float) -> str:
    """Seconds into a recording as h:mm:ss."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def print_hits(hits: list[tuple[Any, float]]) -> None:
    for doc, score in hits:
        meta = doc.metadata
        where = meta.get("source", "?")
        if meta.get("page_start"):
            where += f" p.{meta['page_start']}"
            if meta.get("page_end") != meta.get("page_start"):
                where += f"-{meta['page_end']}"
        if meta.get("time_start") is not None:
            where += f" at {_clock(meta['time_start'])}-{_clock(meta.get('time_end', 0))}"
        if meta.get("line_start"):
            where += f" lines {meta['line_start']}-{meta.get('line_end', meta['line_start'])}"
        if meta.get("symbol"):
            where += f" ({meta['symbol']})"
        if meta.get("ocr"):
            where += " [OCR]"
        text = " ".join(doc.page_content.split())
        print(f"  [distance {score:.3f}] {where}\n      {text[:160]}")


def document_json(r: Any) -> dict[str, Any]:
    """One source's entry in the ``--report`` document."""
    return {
        "source": r.source,
        "filename": r.filename,
        "file_type": r.file_type,
        "status": r.status,
        "error_type": r.error_type,
        "message": r.message,
        "warnings": list(r.warnings),
        "notes": list(r.notes),
        "chunks": r.total_chunks,
        "tokens": r.token_count,
        "bytes": r.bytes,
        "etag": r.etag,
        "reused_vectors": r.reused_vectors,
        "reused_answers": r.reused_answers,
        "usage": r.usage,
        "transient": r.transient,
        "attempts": r.attempts,
        "seconds": round(r.seconds.get("total", 0.0), 4),
    }


def report_json(report: Any, documents: Any = None) -> dict[str, Any]:
    """The ``--report`` document: ``documents`` in its place, else the entries of the
    results the report kept."""
    return {
        "session_id": report.session_id,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "totals": report.totals,
        "documents": [document_json(r) for r in report.results] if documents is None else documents,
        "usage": report.usage,
        "pruned": report.pruned,
        "dry_run": report.dry_run,
    }


class ReportFile:
    """``--report FILE``, written as the results come: each source's entry goes to a
    scratch file beside FILE, and FILE is made of them at the end (the report's own
    results are only the failed). Either the whole FILE is there or none of it."""

    _SLOT = "\x00documents"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Closed by finish() or close(); nameless, so a killed run leaves nothing behind.
        self._entries = tempfile.TemporaryFile("w+", encoding="utf-8", dir=path.parent)  # noqa: SIM115
        self._error: OSError | None = None

    def add(self, result: Any) -> None:
        """One source's entry, a line (an ``on_result`` callback's exception is only
        logged: a disk that filled is raised by :meth:`finish` instead)."""
        if self._error is None:
            try:
                self._entries.write(json.dumps(document_json(result)) + "\n")
            except OSError as exc:
                self._error = exc

    def finish(self, report: Any) -> None:
        if self._error is not None:
            raise self._error
        whole = json.dumps(report_json(report, self._SLOT), indent=2)
        head, end = whole.split(json.dumps(self._SLOT), 1)
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            with partial.open("w", encoding="utf-8") as out:
                out.write(head + "[")
                self._entries.seek(0)
                for i, line in enumerate(self._entries):
                    out.write(("," if i else "") + "\n    " + line.rstrip("\n"))
                out.write("\n  ]" + end)
            partial.replace(self.path)
        finally:
            partial.unlink(missing_ok=True)
            self.close()

    def close(self) -> None:
        self._entries.close()


class _Finished:
    """Each document's outcome, for an ingest stopped short: as its events tell it, and
    its ledger row, written since the start, where no event came (a batch's documents
    stopped between their write and their event)."""

    def __init__(self, then: Callable[[Any], None] | None) -> None:
        self.outcomes: dict[str, str] = {}  # by source: the last attempt's says
        self.ledger: Path | None = None
        self._since = datetime.datetime.now(datetime.UTC)
        self._then = then

    def __call__(self, event: Any) -> None:
        if event.stage == "done":
            self.outcomes[event.source] = event.message or "ingested"
        elif event.stage == "failed":
            self.outcomes[event.source] = "failed"
        if self._then is not None:
            self._then(event)

    def tally(self, session: str, reingest: bool = False) -> str:
        outcomes = dict(self.outcomes)
        if self.ledger is not None and self.ledger.is_file():
            import sqlite3

            from rag_ingest.errors import RagIngestError
            from rag_ingest.ledger import Ledger

            try:
                ledger = Ledger(self.ledger)
                try:
                    rows = ledger.session_rows(session)
                finally:
                    ledger.close()
            except (OSError, sqlite3.Error, RagIngestError):
                rows = []  # the events' word alone, rather than a traceback over the stop
            for row in rows:
                if datetime.datetime.fromisoformat(row.updated_at) >= self._since:
                    # A blank file is written with no chunks, and reported skipped.
                    said = "skipped" if row.status == "ingested" and not row.chunk_ids else None
                    outcomes.setdefault(row.source, said or row.status)
        counts = collections.Counter(outcomes.values())
        done = ", ".join(f"{counts[s]} {s}" for s in ("ingested", "skipped", "failed"))
        if reingest:  # the same command again reads everything again
            return f"stopped with {done}"
        return (
            f"stopped with {done}; the same command again goes on: what was stored is "
            "skipped, the rest read again"
        )


class _FileBars:
    """A tqdm bar per large download, on top of the overall documents bar."""

    THRESHOLD = 8 * 1024 * 1024

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        if event.stage == "downloading" and (event.bytes_total or 0) >= self.THRESHOLD:
            bar = self.bars.get(event.source)
            if bar is None:
                from tqdm.auto import tqdm

                bar = self.bars[event.source] = tqdm(
                    total=event.bytes_total,
                    unit="B",
                    unit_scale=True,
                    leave=False,
                    desc=tail(event.source, 40),
                )
            bar.n = event.bytes_done or 0
            bar.refresh()
        elif event.stage in ("parsing", "done", "failed") and event.source in self.bars:
            self.bars.pop(event.source).close()


# -- commands --------------------------------------------------------------------------


async def _ingest(args: argparse.Namespace) -> int:
    from rag_ingest.pipeline import DocumentProcessor

    settings = _settings(args)
    if args.dry_run:  # it reads the store and writes nothing
        settings = _in_process(settings)
    sources: list[Any] = list(args.sources)
    if "-" in sources:
        from rag_ingest.errors import ConfigurationError
        from rag_ingest.sources import Upload

        if not args.name:
            raise ConfigurationError("SOURCE '-' (standard input) needs --name FILENAME")
        sources = [Upload(sys.stdin.buffer, args.name) if s == "-" else s for s in sources]
    started = time.perf_counter()
    bars = _FileBars() if settings.progress else None
    finished = _Finished(bars)
    scratch = _scratch_store(settings) if args.dry_run else None
    digest = Digest()
    report_file = ReportFile(args.report) if args.report else None

    def on_result(result: Any) -> None:
        digest.add(result)
        if report_file is not None:
            report_file.add(result)

    try:
        async with DocumentProcessor(
            settings if scratch is None else _with_store_dir(settings, scratch),
            on_event=finished,
        ) as processor:
            if processor.ledger is not None:
                finished.ledger = processor.ledger.path
            report = await processor.process_many(
                sources,
                session_id=args.session,
                user_id=args.user,
                include=args.include,
                exclude=args.exclude,
                prune=args.prune,
                dry_run=args.dry_run,
                reingest=args.reingest,
                on_result=on_result,
                keep_results="failed",  # a bucket's million results are not held
            )
    except asyncio.CancelledError:
        if not args.dry_run:  # Ctrl-C or SIGTERM: what a run of hours got done
            print(f"rag-ingest: {finished.tally(args.session, args.reingest)}", file=sys.stderr)
        raise
    except BaseException:
        if report_file is not None:
            report_file.close()
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.dry_run:
        print_plan(report, time.perf_counter() - started, digest)
        if scratch is not None:
            print(
                f"(no store at {settings.store.persist_dir} yet: planned against an empty one, "
                "not made there)"
            )
    else:
        print_summary(report, time.perf_counter() - started, digest)
    if not report.listed:
        # A mistyped prefix or directory, or globs that select nothing, is no success
        # to pass over in silence (the exit status stays 0: an empty prefix is valid).
        globs = " ".join(
            [
                *(f"--include {g!r}" for g in args.include),
                *(f"--exclude {g!r}" for g in args.exclude),
            ]
        )
        print(
            f"rag-ingest: warning: nothing listed under {' '.join(args.sources)}"
            + (f" with {globs}" if globs else ""),
            file=sys.stderr,
        )
    if report_file is not None:
        report_file.finish(report)
    return 1 if report.count("failed") else 0


def _no_local_store_yet(settings: Settings) -> bool:
    """The embedded store is where one would be made, and none is there (no ledger). A
    server's or the caller's store is never that: opening it creates nothing here."""
    from rag_ingest.ledger import ledger_path

    if settings.store.chroma_url or settings.store.vectorstore:
        return False
    return not ledger_path(settings.store).is_file()


def _scratch_store(settings: Settings) -> Path | None:
    """A dry run where nothing was ingested yet plans against an empty store in a temp
    directory, removed after, rather than make an empty store where the user pointed."""
    if not _no_local_store_yet(settings):
        return None
    return Path(tempfile.mkdtemp(prefix="rag-ingest-plan-", dir=settings.temp_dir))


def _with_store_dir(settings: Settings, persist_dir: Path) -> Settings:
    store = settings.store.model_copy(update={"persist_dir": persist_dir})
    return settings.model_copy(update={"store": store})


def _in_process(settings: Settings) -> Settings:
    """For a one-shot command (query, delete, verify, a dry run): an embedded store
    opened in this process. The private Chroma server that ``ingest`` runs keeps store
    writes off the event loop of a long run; here it would only add its start and stop
    (measured: a query took 1.9 s with it, 1.1 s without)."""
    store = settings.store.model_copy(update={"embedded_mode": "in-process"})
    return settings.model_copy(update={"store": store})


def _no_store(settings: Settings) -> bool:
    """A command that reads a local store was pointed where none is: say so, rather than
    create an empty one there and answer from it ("no chunks", "deleted 0")."""
    if not _no_local_store_yet(settings):
        return False
    print(
        f"rag-ingest: no store at {settings.store.persist_dir} (ingest first, or give "
        "--persist-dir or --chroma-url)",
        file=sys.stderr,
    )
    return True


async def _query(args: argparse.Namespace) -> int:
    from rag_ingest.pipeline import DocumentProcessor

    settings = _in_process(_settings(args))
    if _no_store(settings):
        return 1
    async with DocumentProcessor(settings, progress=False) as processor:
        hits = await processor.query(args.text, session_id=args.session, k=args.k, where=args.where)
    if args.json:
        print(
            json.dumps(
                [
                    {"score": score, "text": doc.page_content, "metadata": doc.metadata}
                    for doc, score in hits
                ],
                indent=2,
            )
        )
    else:
        print_hits(hits)
        if not hits:
            print("no chunks in this session", file=sys.stderr)
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> datetime.timedelta:
    """``90m``, ``12h``, ``30d``, ``8w``: a positive age."""
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _UNITS or not number.isdigit() or int(number) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number and s, m, h, d or w")
    return datetime.timedelta(seconds=int(number) * _UNITS[unit])


async def _delete(args: argparse.Namespace) -> int:
    from rag_ingest.pipeline import DocumentProcessor

    settings = _in_process(_settings(args))
    if _no_store(settings):
        return 1
    async with DocumentProcessor(settings, progress=False) as processor:
        if args.older_than is None:
            removed = await processor.delete_session(args.session)
            print(f"deleted {removed} chunks of session {args.session!r}")
            return 0
        expired = await processor.expire_sessions(args.older_than)
    for session, removed in sorted(expired.items()):
        print(f"deleted {removed} chunks of session {session!r}")
    age = int(args.older_than.total_seconds())
    unit = next(u for u in ("w", "d", "h", "m", "s") if age % _UNITS[u] == 0)
    print(
        f"{len(expired)} sessions last used (ingested into or searched) over "
        f"{age // _UNITS[unit]}{unit} ago deleted"
    )
    return 0


async def _status(args: argparse.Namespace) -> int:
    from rag_ingest.ledger import Ledger, ledger_path

    # The ledger alone (SQLite, safe to read while an ingest writes it): no store, no
    # workers started. A caller's store is made, as its ledger is named by its collection.
    settings = _settings(args)
    own = None
    if settings.store.vectorstore:
        from rag_ingest.models import load_object

        own = load_object(settings.store.vectorstore, "vector store")
    path = ledger_path(settings.store, own)
    if not path.is_file():
        print(
            f"rag-ingest: no ledger at {path} (ingest first, or give --persist-dir)",
            file=sys.stderr,
        )
        return 1
    ledger = Ledger(path)
    try:
        if args.session is None:
            sessions = [i for i in ledger.sessions() if i.failed or not args.failed]
            return _print_sessions(sessions, as_json=args.json)
        rows = ledger.session_rows(args.session)
        used = ledger.model_use(args.session)
        pending = len(ledger.session_pending(args.session))
    finally:
        ledger.close()
    counts = collections.Counter(r.status for r in rows)
    if args.failed:
        rows = [r for r in rows if r.status == "failed"]
    rows.sort(key=lambda r: r.source)
    if args.json:
        # Chunk counts, not the IDs: a long document's IDs would bury the rest.
        listing = []
        for r in rows:
            row = dataclasses.asdict(r)
            row["chunks"] = len(row.pop("chunk_ids"))
            listing.append(row)
        print(json.dumps(listing, indent=2))
        return 0
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no sources"
    print(f"session {args.session!r}: {summary}")
    for r in rows:
        line = f"{r.status:<9} {len(r.chunk_ids):>6}  {r.updated_at[:19]}  {r.source}"
        if r.error_type:
            line += f"\n{'':<9} {r.error_type}: {r.message}"
        print(line)
    if spent := usage_text(used):
        print(f"model use: {spent}")
    if pending:
        print(_unfinished(pending))
    return 0


def _unfinished(pending: int) -> str:
    return (
        f"{pending} chunk IDs of unfinished writes (in progress, or cut off before their "
        "row: a re-run of their sources or `verify --repair` removes those)"
    )


def _print_sessions(sessions: list[SessionInfo], *, as_json: bool) -> int:
    if as_json:
        listing = [
            {
                **dataclasses.asdict(info),
                "last_ingested": info.last_ingested.isoformat(),
                "last_queried": info.last_queried and info.last_queried.isoformat(),
            }
            for info in sessions
        ]
        print(json.dumps(listing, indent=2))
        return 0
    print(f"{'sources':>7} {'chunks':>8} {'failed':>6}  {'last ingested (UTC)':<19}  session")
    for info in sessions:
        print(
            f"{info.sources:>7} {info.chunks:>8} {info.failed:>6}  "
            f"{info.last_ingested:%Y-%m-%d %H:%M:%S}  {info.session_id}"
        )
        if info.last_queried is not None:
            print(f"{'':>7} last searched {info.last_queried:%Y-%m-%d %H:%M:%S}")
        if used := usage_text(info.usage):
            print(f"{'':>7} model use: {used}")
        if info.pending:
            print(f"{'':>7} {_unfinished(info.pending)}")
    return 0


async def _verify(args: argparse.Namespace) -> int:
    from rag_ingest.pipeline import DocumentProcessor

    settings = _in_process(_settings(args))
    if _no_store(settings):
        return 1
    async with DocumentProcessor(settings, progress=False) as processor:
        report = await processor.verify_session(args.session, repair=args.repair)
    print(
        f"session {args.session!r}: {report.sources} sources, {report.recorded} chunks "
        f"recorded, {report.stored} stored; {len(report.orphans)} orphan chunks, "
        f"{len(report.missing)} sources with missing chunks"
    )
    for source, lacking in sorted(report.missing.items()):
        print(f"  missing {lacking} chunks: {source}")
    if report.consistent:
        return 0
    if report.repaired:
        print(
            f"repaired: {len(report.orphans)} orphan chunks deleted; "
            f"{len(report.missing)} sources will be ingested again by the next run over them"
        )
        return 0
    print("run with --repair to fix", file=sys.stderr)
    return 1


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


_COMMANDS = {
    "ingest": _ingest,
    "query": _query,
    "delete": _delete,
    "verify": _verify,
    "status": _status,
    "ls": _ls,
    "download": _download,
}


class Terminated(Exception):
    """SIGTERM arrived: the command was cancelled, its clean-up done."""


async def stopped_by_sigterm(command: Awaitable[int]) -> int:
    """Run ``command``, cancelled by SIGTERM as Ctrl-C cancels it.

    ``docker stop``, Kubernetes, systemd and ``timeout`` send SIGTERM, whose default
    ends the process on the spot: no clean-up ran, and each parser worker's scratch
    directory was left in the temporary directory (measured: 3 a run).
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated = False

    def cancel() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, cancel)
    except (ValueError, RuntimeError):  # main() called off the main thread: no handler
        return await command
    try:
        return await command
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from rag_ingest.errors import ConfigurationError, MissingExtraError, RagIngestError

    started = time.perf_counter()
    try:
        if args.command == "demo":
            from rag_ingest.demo import run_demo

            return run_demo(progress=not args.no_progress and sys.stderr.isatty())
        return asyncio.run(stopped_by_sigterm(_COMMANDS[args.command](args)))
    except (ConfigurationError, MissingExtraError) as exc:
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
    except Terminated:
        print(f"rag-ingest: terminated after {time.perf_counter() - started:.1f}s", file=sys.stderr)
        return 128 + signal.SIGTERM


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
