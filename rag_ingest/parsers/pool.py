"""Where parsing runs: isolated worker processes (default) or threads.

PyMuPDF and docling have known hangs, segfaults and multi-GB blow-ups on
hostile files, so by default each parse runs in a ``spawn``-started worker
process (pebble) with a CPU-time limit, a wall-clock one and an address-space
limit. A hang or crash kills that worker only; the document fails with a typed
error and the pool starts a fresh worker. Thread mode is for small trusted
inputs and tests.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import importlib
import io
import itertools
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from importlib import resources
from multiprocessing import context as mp_context
from multiprocessing import popen_spawn_posix, reduction, spawn, util
from pathlib import PurePosixPath
from typing import Any, TypeVar

from rag_ingest._memory import Trimmer
from rag_ingest._tasks import gather_or_cancel
from rag_ingest.chunking import ChunkPlan, chunk_units, in_runs, join_plans, join_units
from rag_ingest.errors import (
    CorruptDocumentError,
    DocumentError,
    MissingExtraError,
    ParserCrashedError,
    ParserMemoryError,
    ParserTimeoutError,
    TokenizerUnavailableError,
)
from rag_ingest.parsers import (
    attachment_reader,
    detect,
    parse_file,
    parse_messages,
    records_first,
    task_clock,
)
from rag_ingest.parsers.archive import (
    ArchivePlan,
    Nested,
    archive_inside,
    keep_plans,
    load_member_cache,
    merge_parts,
    message_entries,
    nested_options,
    plan_archive,
    read_part,
    take_nested,
    write_member_cache,
)
from rag_ingest.parsers.base import ParsedDocument, ParseOptions, Segment, decompressed
from rag_ingest.parsers.compressed import compression, head_inside, inner_name, unpack
from rag_ingest.parsers.data import TablePlan, read_rows, table_plan
from rag_ingest.parsers.mail import (
    MailboxPlan,
    mailbox_document,
    message_digests,
    message_spans,
)
from rag_ingest.parsers.pdf import SplitPlan, merge_ranges, page_ranges, parse_pdf, split_plan
from rag_ingest.parsers.scans import batches, finish, read_scans
from rag_ingest.parsers.sniff import TABLE_KINDS, is_pdf, mailbox_kind
from rag_ingest.parsers.text import (
    TextPart,
    TextPlan,
    read_text_part,
    text_parser,
    text_plan,
    text_warnings,
)
from rag_ingest.settings import ChunkSettings, ParseSettings

__all__ = ["KeptPool", "ParserPool", "kept_pool", "parse_and_chunk"]

logger = logging.getLogger("rag_ingest.pipeline")

T = TypeVar("T")
A = TypeVar("A")
# A worker's parse, or the plan of a long document to read in parts.
Planned = ParsedDocument | SplitPlan | ArchivePlan | TablePlan | MailboxPlan | TextPlan

# An archive of this many files to read or more is read in parts on every worker, each
# part a task under parse.timeout (parsers/archive.py); fewer, in one task.
_SPLIT_FILES = 4
# An archive's text past this many characters is chunked in runs of whole files on every
# worker, each a task under parse.timeout: ~5 s of chunking each (1.7 million characters
# of Java a second on one core here, measured).
_CHUNK_RUN_CHARS = 8_000_000
# Past this many, an archive's or a mailbox's text is chunked in groups of its files on
# every worker (with two or more): a 5.4-million-character mailbox in a zip was chunked in
# one task, 1.5 s, the other worker idle.
_MEMBER_RUN_CHARS = 1_000_000
# A mailbox past this many bytes is read in parts of its messages on every worker, each
# part of about _MAILBOX_PART_BYTES (20,000 plain messages, 42 MB, parsed in 27.1 s in one
# task: a Takeout export of a few hundred MB outlasted parse.timeout).
_SPLIT_MAILBOX_BYTES = 4 * 1024 * 1024
_MAILBOX_PART_BYTES = 16 * 1024 * 1024
# A UTF-8 text file of more than four parts of this many bytes is read and chunked in
# parts of its lines of about this size on every worker, each part a task: read whole,
# one of 1.2 GB went past parse.memory_limit in its worker, and the ingesting process
# held its text.
_TEXT_PART_BYTES = 8 * 1024 * 1024


# One small bundled file of each parsed type (the demo corpus), parsed by each worker as
# it starts: a cold worker's first PDF, HTML or PPTX paid 0.02-0.15 s of lazy set-up
# (fonts, parser tables, the tokenizer's vocabulary; measured), a second worker paid it
# again inside a timed run.
_SAMPLES = (
    "reports/security-policy.pdf",
    "handbook/onboarding.docx",
    "slides/roadmap.pptx",
    "data/pricing.xlsx",
    "web/faq.html",
    "docs/architecture.md",
)


def _samples(options: ParseOptions, encoding: str) -> Iterator[None]:
    """Parse the bundled samples (see :data:`_SAMPLES`), one a step."""
    from rag_ingest.tokens import count_tokens

    # Built-in parsers only: a user's plugin for .pdf must not run (or crash) at start-up.
    options = dataclasses.replace(options, plugins=(), max_images=0)
    root = resources.files("rag_ingest") / "demo_corpus"
    for sample in _SAMPLES:
        # Read in place (as_file copies only from a zipped install): a worker stopped
        # while warming, as closing a pool does, must leave no temp copy behind.
        try:
            with resources.as_file(root / sample) as path:
                parsed = parse_file(str(path), path.name, options)
            count_tokens(" ".join(s.text for s in parsed.segments), encoding)
        except Exception:  # a missing extra fails its documents later
            pass
        yield


def _imports() -> Iterator[None]:
    from rag_ingest.errors import MissingExtraError
    from rag_ingest.parsers.office import _backend

    try:
        importlib.import_module("pymupdf4llm")
    except ImportError:
        pass  # a missing extra fails its documents with MissingExtraError later
    yield
    for kind in ("docx", "pptx", "xlsx", "html", "markdown"):
        with contextlib.suppress(MissingExtraError):
            _backend(kind)  # docling's, with torch hidden (without_model_packages)
        yield


# A worker's start-up beyond its tokenizer runs in a thread of its own, a step at a time
# (a parser's import, a sample read), only while no task runs or waits: a load of three
# code files had waited 2.3 s for every worker to import docling and PyMuPDF and read a
# sample of each type (measured). A task waits for one step at most (0.6 s, docling's
# Word backend), and the first document of a type not yet warmed imports its parser
# within its own time limit. ``ParserPool.warm`` waits for the whole start-up.
_task_lock = threading.Lock()
_tasks_waiting = 0
_last_task = 0.0  # when the last task ended (monotonic)
_warmed = threading.Event()
# A step starts only after the worker has been idle this long: a task queued at start, or
# the next of a stream (a result sent, the next fetched), comes first.
_IDLE_BEFORE_STEP = 0.05
# A worker idle this long hands back what its documents freed (parse.trim_memory).
_IDLE_BEFORE_TRIM = 1.0
_trimmer: Trimmer | None = None
# How long ParserPool.warm waits for a worker's start-up, at least.
_START_UP_TIMEOUT = 120.0


def _warm_in_background(options: ParseOptions, encoding: str) -> None:
    steps, done = itertools.chain(_imports(), _samples(options, encoding)), object()
    try:
        while True:
            while (
                _tasks_waiting
                or _task_lock.locked()
                or time.monotonic() - _last_task < _IDLE_BEFORE_STEP
            ):
                time.sleep(0.005)
            with _task_lock:
                if next(steps, done) is done:
                    return
    finally:
        _warmed.set()


def _warmed_pid() -> int:
    _warmed.wait()
    # Long enough that a task goes to each worker that is ready, not two to one.
    time.sleep(0.05)
    return os.getpid()


def _worker_init(
    memory_limit: int,
    nice: int,
    options: ParseOptions,
    encoding: str,
    warm_up: bool,
    trim_memory: bool = False,
    clock: tuple[Any, Any] | None = None,
) -> None:
    import resource

    from rag_ingest.ocr import no_onnxruntime_telemetry
    from rag_ingest.parsers import base, pdf
    from rag_ingest.tokens import count_tokens

    no_onnxruntime_telemetry()  # before anything a worker imports can start onnxruntime
    if clock is not None:
        task_clock.claim(*clock)
    if nice:
        # Parsing is batch work; the parent's event loop is latency work. On a busy box
        # the scheduler should run the loop first (measured: 80-90 ms loop stalls at
        # nice 0 on 2 cores with 2 workers).
        os.nice(nice)

    if options.temp_dir:
        # The worker is ours alone: docling's and PyMuPDF's own scratch files go where
        # the caller said too (a host whose system temp is small or read-only).
        tempfile.tempdir = options.temp_dir
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    base.hide_model_packages = True
    pdf.in_worker = True
    if options.pdf_mode != "layout":
        # PyMuPDF imports its layout package whenever it is installed: its modules (the
        # ONNX runtime's bindings among them) and their threads cost each worker's
        # start-up 0.4 s and 36 MB (measured) for a mode this pool's workers never run.
        # Blocked, PyMuPDF and pymupdf4llm go without it, and its table finder would
        # print advice to install it.
        sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
        os.environ["PYMUPDF_SUGGEST_LAYOUT_ANALYZER"] = "0"
    # A library's warning in a worker names no document, and came between the CLI's lines
    # ("Warning: image cannot be found", "Unknown extension is not supported"): what a
    # document lost its parser says in its result. Errors still print.
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    # Every document is chunked and counted: the splitters and the vocabulary now.
    importlib.import_module("langchain_text_splitters")
    with contextlib.suppress(TokenizerUnavailableError):
        # Each document then says why in its result: a failing initializer breaks the
        # whole pool, and every document failed as "the pool broke twice".
        count_tokens("warm", encoding)
    global _last_task
    _last_task = time.monotonic()  # a task queued before the worker started comes first
    if warm_up:
        threading.Thread(
            target=_warm_in_background, args=(options, encoding), name="warm-up", daemon=True
        ).start()
    else:
        _warmed.set()
    if trim_memory:
        global _trimmer
        _trimmer = Trimmer()
        threading.Thread(target=_trim_when_idle, name="trim", daemon=True).start()
    atexit.register(_leave)


def _trim_when_idle() -> None:
    """Hand back what the last documents freed once the worker has been idle a while:
    a worker kept the peak of its largest document (922 MiB after /usr/share/doc)."""
    trimmer = _trimmer
    assert trimmer is not None
    _warmed.wait()  # the warm-up's imports are not worth trimming after each
    while True:
        time.sleep(_IDLE_BEFORE_TRIM)
        if (
            _tasks_waiting
            or time.monotonic() - _last_task < _IDLE_BEFORE_TRIM
            or not trimmer.due(idle=True)
            or not _task_lock.acquire(blocking=False)
        ):
            continue
        try:
            trimmer.trim(idle=True)
        finally:
            _task_lock.release()


def _leave() -> None:
    """A worker's exit: the process ends here, as pebble ends one it stops (its SIGTERM
    handler), without the C library's exit handlers. A worker whose pool closed had left
    by a normal exit now and then while its warm-up or onnxruntime's threads (PyMuPDF's
    layout model) still ran, and a C++ destructor aborted it: "terminate called without
    an active exception" on the caller's terminal, a core file where they are kept.
    pebble's worker returns only when its pool closes (status 0), and leaves by
    ``os._exit`` itself when it fails; an exception escaping it would lose its status 1."""
    util._exit_function()  # type: ignore[attr-defined]  # as pebble's handler runs it
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


_EXIT_OUT_OF_MEMORY = 75


class _CpuLimitReached(TimeoutError):
    """A task stopped for parse.cpu_timeout (pebble's own is parse.timeout's): ``asleep``
    when its worker's CPU time stood still that long, else for using that much."""

    def __init__(self, limit: float, asleep: bool) -> None:
        super().__init__(limit)
        self.asleep = asleep


async def _within(future: Any, clock: Any, token: float, limit: float) -> Any:
    """The result of a pool's task, its worker stopped (``_CpuLimitReached``) once the task
    has used ``limit`` seconds of its worker's CPU time and run as long by the wall clock,
    or once that CPU time has stood still for ``limit`` seconds (a deadlock). A worker
    kept waiting for a CPU is neither: the scheduler gives a niced worker a share of a
    core, not none. A parse's own threads (OCR's) give it no less time than the wall
    clock would."""
    loop = asyncio.get_running_loop()
    stopped: bool | None = None  # asleep, once stopped
    handle: asyncio.TimerHandle | None = None
    cpu_seen, still_since = 0.0, 0.0  # the task's CPU time, and since when it stood still

    def check() -> None:
        nonlocal handle, stopped, cpu_seen, still_since
        late = 0.0 if handle is None else loop.time() - handle.when()
        used = task_clock.used(clock, token)
        if used is None:  # queued, or ended as it was read
            handle = loop.call_later(limit, check)
            return
        wall, cpu = used
        if cpu > cpu_seen or late > max(limit / 2, 1.0):
            # A check this late was not watching: the whole process group stopped
            # (Ctrl-Z, a laptop asleep) and resumed, its workers' CPU time with it.
            cpu_seen, still_since = cpu, wall
        if min(wall, cpu) >= limit or wall - still_since >= limit:
            stopped = min(wall, cpu) < limit
            future.cancel()  # pebble stops the worker running a cancelled task
            return
        # A thread's CPU time grows no faster than the wall clock: not sooner than this.
        wait = min(limit - min(wall, cpu), still_since + limit - wall)
        handle = loop.call_later(max(wait, 0.05), check)

    handle = loop.call_later(limit, check)  # it cannot have run longer than scheduled
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if stopped is not None and not (task is not None and task.cancelling()):
            raise _CpuLimitReached(limit, stopped) from None
        raise  # the caller's cancel, even one that came with the limit
    finally:
        if handle is not None:
            handle.cancel()


# Why a worker a signal ended may have died: what a user can act on.
_SIGNAL_CAUSES = {
    "SIGABRT": "a native library aborted: an allocation refused under parse.memory_limit "
    "(Rust and C++ abort then), or a failed check",
    "SIGSEGV": "a native library crashed",
    "SIGBUS": "a native library crashed",
    "SIGKILL": "killed from outside: the system's out-of-memory killer, or a user",
}


def _death(exitcode: int | None) -> str:
    """A dead worker's exit code as a user reads it: the signal that ended it, and why."""
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        return f"exit code {exitcode}"
    cause = _SIGNAL_CAUSES.get(name)
    return f"{name}: {cause}" if cause else name


def _crosses(exc: BaseException) -> bool:
    """Whether ``exc`` survives the pickling that takes it back to the parent."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def _parser_failed(name: str, exc: BaseException) -> DocumentError:
    """A parser's own error, as the document's outcome."""
    return DocumentError(f"{name}: parser failed: {type(exc).__name__}: {exc}")


def _call_in_worker(name: str, task: bytes, token: float = 0.0) -> Any:
    with task_clock.started(token):
        return _call(name, task)


def _call(name: str, task: bytes) -> Any:
    global _tasks_waiting, _last_task
    _tasks_waiting += 1  # only this thread writes them: the warm-up thread reads
    _task_lock.acquire()
    _tasks_waiting -= 1
    home = tempfile.tempdir  # the worker's between tasks (its pool's temp_dir)
    try:
        if _trimmer is not None and _trimmer.due(idle=False):
            _trimmer.trim(idle=False)  # a worker never idle: every so often
        # Unpickled here, not by pebble as it fetched the task: unpickling imports the
        # function's module, and an import racing the warm-up's had failed in importlib
        # (KeyError: 'pymupdf4llm'), killing the worker with its task.
        fn, args = pickle.loads(task)
        # Library temp files (docling's, PyMuPDF's) go in the document's scratch
        # directory, with what the task writes itself: a worker killed mid-task (a
        # timeout) leaves them where its document's clean-up removes them, and a kept
        # pool outliving its loads (or its process) holds no directory of its own.
        scratch = next((a.temp_dir for a in args if isinstance(a, ParseOptions)), None)
        if scratch:
            tempfile.tempdir = scratch
        return fn(*args)
    except MemoryError:
        # A parser that hit the limit may have left native state broken: never reuse
        # this worker. The exit code tells the parent why (ParserMemoryError).
        os._exit(_EXIT_OUT_OF_MEMORY)
    except Exception as exc:
        if _crosses(exc):
            raise
        # pebble pickles the exception back to the parent, and one the parent cannot
        # rebuild (an __init__ with arguments of its own) broke the whole pool there:
        # every document in flight and every later one failed. Its text goes instead.
        raise _parser_failed(name, exc) from exc
    finally:
        tempfile.tempdir = home
        _last_task = time.monotonic()
        _task_lock.release()


def parse_and_chunk(
    path: str,
    name: str,
    options: ParseOptions,
    chunk_settings: ChunkSettings,
    base_metadata: dict[str, Any],
    split_pages: int = 0,
    split_archives: bool = False,
    run_chars: int = 0,
    split_mail: int = 0,
    split_text: int = 0,
    member_chars: int = 0,
) -> Planned | tuple[ParsedDocument, ChunkPlan]:
    """The CPU tier's unit of work: parse, then chunk, in the same worker.

    The parsed text is dropped from the returned document (segments emptied):
    only the chunks travel back to the parent. A PDF long enough to split (see
    :func:`_long_pdf`) comes back as its :class:`SplitPlan` instead, unparsed, an
    archive of many files as its :class:`ArchivePlan`, a long mailbox as its
    :class:`MailboxPlan`, a data file (Parquet, ORC...) of more
    than ``run_chars`` (0: none) as its :class:`TablePlan`, and a document with scans to
    read, or a text file or records of more than ``run_chars`` characters (an archive's
    or a mailbox's files of more than ``member_chars``, when given), comes back parsed
    but not chunked.
    """
    got = parse_or_plan(
        path, name, options, split_pages, split_archives, run_chars // 2, split_mail, split_text
    )
    if isinstance(got, (SplitPlan, ArchivePlan, TablePlan, MailboxPlan, TextPlan)) or got.scans:
        return got
    if run_chars and in_runs(got, chunk_settings, run_chars, member_chars):
        return got  # a long log, JSON Lines or archive: chunked in parts on every worker
    return chunk_parsed(got, chunk_settings, base_metadata)


def parse_or_plan(
    path: str,
    name: str,
    options: ParseOptions,
    split_pages: int = 0,
    split_archives: bool = False,
    split_rows: int = 0,
    split_mail: int = 0,
    split_text: int = 0,
) -> Planned:
    """:func:`parse_file` with its scans left to read (``scans``), or a long PDF's
    :class:`SplitPlan`, or (``split_archives``) an archive's :class:`ArchivePlan`, or
    (``split_rows``: characters a part) a long data file's :class:`TablePlan`, or
    (``split_mail``: bytes) a longer mailbox's :class:`MailboxPlan`, or (``split_text``:
    bytes a part) a text file's of more than four parts :class:`TextPlan`."""
    return (
        _long_pdf(path, name, options, split_pages)
        or (_many_files(path, name, options) if split_archives else None)
        or (_long_mailbox(path, name, options, split_mail) if split_mail else None)
        or (_long_table(path, name, options, split_rows) if split_rows else None)
        or (_long_text(path, name, options, split_text) if split_text else None)
        or parse_file(path, name, options, defer_scans=True)
    )


def chunk_text(
    plan: TextPlan,
    name: str,
    part: int,
    chunk_settings: ChunkSettings,
    base_metadata: dict[str, Any],
) -> tuple[ChunkPlan, TextPart, int]:
    """One part of a long text read and chunked: its chunks, what was left out of it (its
    text not sent back) and its text's length."""
    got = read_text_part(plan, name, part)
    size = len(got.text)
    parsed = ParsedDocument(plan.kind, [Segment(got.text)], parser="text", language=plan.language)
    got.text = ""
    return chunk_parsed(parsed, chunk_settings, base_metadata)[1], got, size


def chunk_rows(
    plan: TablePlan,
    name: str,
    part: int,
    chunk_settings: ChunkSettings,
    base_metadata: dict[str, Any],
) -> tuple[ParsedDocument, ChunkPlan, int]:
    """One part of a long table read and chunked, with its text's length: where the next
    part's text starts in the whole (:func:`join_plans`)."""
    parsed = read_rows(plan, name, part)
    size = len(parsed.segments[0].text)
    return (*chunk_parsed(parsed, chunk_settings, base_metadata), size)


def chunk_parsed(
    parsed: ParsedDocument, chunk_settings: ChunkSettings, base_metadata: dict[str, Any]
) -> tuple[ParsedDocument, ChunkPlan]:
    """Chunk a parse; its text is dropped from the document returned."""
    from rag_ingest.chunking import chunk_document

    plan = chunk_document(parsed, chunk_settings, base_metadata)
    parsed.segments = []
    parsed.plans = None
    return parsed, plan


def parse_range(
    path: str, name: str, options: ParseOptions, pages: range, headers: Any
) -> ParsedDocument:
    """One page range of a split PDF."""
    return parse_pdf(
        path,
        name,
        options.pdf_mode,
        options.max_images,
        options.min_image_bytes,
        pages,
        headers,
        ocr=options.ocr,
        read_attached=attachment_reader(options),
        max_attached=options.max_unzipped_size,
    )


def _long_pdf(path: str, name: str, options: ParseOptions, min_pages: int) -> SplitPlan | None:
    """The :class:`SplitPlan` of a PDF of ``2 * min_pages`` pages or more that no plugin
    claims, else None (parsed whole)."""
    suffix = PurePosixPath(name).suffix.lower()
    if not min_pages or any(extension == suffix for extension, _ in options.plugins):
        return None
    with open(path, "rb") as f:
        if not is_pdf(f.read(1024)):  # anything else skips detect()'s checks here
            return None
    try:
        kind = detect(path, name)
    except DocumentError:
        return None  # parse_file raises it again, with the same words
    if kind.kind != "pdf":
        return None
    plan = split_plan(path, name, options.pdf_mode, min_pages)
    if plan is not None and kind.note:
        plan.warnings.append(kind.note)
    return plan


def _long_table(path: str, name: str, options: ParseOptions, chars: int) -> TablePlan | None:
    """The :class:`TablePlan` of a Parquet, Arrow, ORC or Avro file of more than ``chars`` that no
    plugin claims, else None (parsed whole)."""
    suffix = PurePosixPath(name).suffix.lower()
    if any(extension == suffix for extension, _ in options.plugins):
        return None
    with open(path, "rb") as f:
        if not f.read(6).startswith((b"PAR1", b"ARROW1", b"\xff\xff\xff\xff", b"Obj\x01", b"ORC")):
            return None  # anything else skips detect()'s checks here
    try:
        kind = detect(path, name)
        if kind.kind not in TABLE_KINDS:
            return None
        plan = table_plan(path, name, kind.kind, chars)
    except DocumentError:
        return None  # parse_file raises it again, with the same words
    if plan is not None and kind.note:
        plan.warnings.append(kind.note)
    return plan


def _long_mailbox(path: str, name: str, options: ParseOptions, size: int) -> MailboxPlan | None:
    """The :class:`MailboxPlan` of a mailbox of more than ``size`` bytes that no plugin
    claims, else None (parsed whole)."""
    suffix = PurePosixPath(name).suffix.lower()
    if any(extension == suffix for extension, _ in options.plugins):
        return None
    packed = compression(path)
    if packed is not None:
        return _packed_mailbox(path, name, options, size, packed)
    if os.path.getsize(path) <= size or (kind := mailbox_kind(path, name)) is None:
        return None
    try:
        spans = message_spans(path, name)
    except DocumentError:
        return None  # parse_file raises it again, with the same words
    return MailboxPlan(spans, [kind.note] if kind.note else [])


def _packed_mailbox(
    path: str, name: str, options: ParseOptions, size: int, packed: str
) -> MailboxPlan | None:
    """:func:`_long_mailbox` of a compressed file (a mailing list's monthly
    ``.txt.gz``, an ``.mbox.xz``): its mailbox decompressed into ``options.temp_dir``
    and read in parts from there. One that does not open with a ``From`` line is not
    decompressed here."""
    if not head_inside(path, packed, 5).startswith(b"From "):
        return None
    got = _unpacked(path, name, options, packed, lambda p, n: _long_mailbox(p, n, options, size))
    if got is None:
        return None
    plan, copy = got
    plan.path = copy
    plan.warnings.append(decompressed(packed))
    return plan


_P = TypeVar("_P", MailboxPlan, TextPlan)


def _unpacked(
    path: str,
    name: str,
    options: ParseOptions,
    packed: str,
    plan_of: Callable[[str, str], _P | None],
) -> tuple[_P, str] | None:
    """``plan_of`` a compressed file's decompressed copy (path, name), and the copy's
    path: it is in ``options.temp_dir``, the document's scratch directory, removed with
    it. None, the copy removed at once, when ``plan_of`` gives None."""
    try:
        unpacked = unpack(path, name, packed, options.max_unzipped_size, options.temp_dir)
    except DocumentError:
        return None  # parse_file raises it again, with the same words
    plan = None
    try:
        plan = plan_of(unpacked, inner_name(name))
    finally:
        if plan is None:
            os.unlink(unpacked)
    return None if plan is None else (plan, unpacked)


def _long_text(path: str, name: str, options: ParseOptions, part: int) -> TextPlan | None:
    """The :class:`TextPlan` of a plain text file (a log) of more than four ``part``
    bytes that no plugin claims, else None (parsed whole): not one read for records. A
    compressed one (a rotated ``app.log.2.gz``) of more than an eighth of ``part`` is
    decompressed into ``options.temp_dir`` to be read from there."""
    suffix = PurePosixPath(name).suffix.lower()
    if any(extension == suffix for extension, _ in options.plugins):
        return None
    total = os.path.getsize(path)
    packed = compression(path)
    if packed is not None:
        if total <= part // 8:
            return None  # small: parse_file decompresses it once
        head = head_inside(path, packed, 4096)
        if not head or b"\x00" in head:
            return None  # not text
        got = _unpacked(path, name, options, packed, lambda p, n: _long_text(p, n, options, part))
        if got is None:
            return None
        got[0].warnings.append(decompressed(packed))
        return got[0]
    if total <= 4 * part:
        return None
    try:
        kind = detect(path, name)
    except DocumentError:
        return None  # parse_file raises it again, with the same words
    if kind.kind != "text" or kind.language is not None or records_first(path, name, kind):
        return None
    plan = text_plan(path, name, kind.kind, kind.language, total, part)
    if plan is not None and kind.note:
        plan.warnings.append(kind.note)
    return plan


def _part_starts(sizes: list[int], lines: list[int] | None = None) -> list[tuple[int, int]]:
    """Where each of a text's consecutive parts starts in the whole, as :func:`join_plans`
    takes it: its offset, and the lines before it (0 without ``lines``, each part's)."""
    offsets = itertools.accumulate(sizes[:-1], initial=0)
    before = itertools.accumulate((lines or [0] * len(sizes))[:-1], initial=0)
    return list(zip(offsets, before, strict=True))


def _mailbox_parts(
    spans: list[tuple[int, int]], workers: int
) -> list[tuple[int, list[tuple[int, int]]]]:
    """A mailbox's messages in runs of about equal bytes, at least one per worker, each
    with the index of its first message."""
    size = sum(stop - start for start, stop in spans)
    share = -(-size // max(workers, -(-size // _MAILBOX_PART_BYTES)))
    parts: list[tuple[int, list[tuple[int, int]]]] = []
    taken = share  # bytes in the last part: a new one first
    for i, span in enumerate(spans):
        if taken >= share:
            parts.append((i, []))
            taken = 0
        parts[-1][1].append(span)
        taken += span[1] - span[0]
    return parts


def _many_files(path: str, name: str, options: ParseOptions) -> ArchivePlan | None:
    """The :class:`ArchivePlan` of a zip or tar archive (a compressed tar decompressed
    first, into ``options.temp_dir``) of at least :data:`_SPLIT_FILES` files to read, or
    with an archive inside, that no plugin claims, else None (parsed whole)."""
    suffix = PurePosixPath(name).suffix.lower()
    if any(extension == suffix for extension, _ in options.plugins):
        return None
    packed = archive_inside(path, name)
    if packed is None:
        return None  # anything else (a DOCX among them) skips detect()'s checks here
    unpacked = None
    if packed:
        unpacked = unpack(path, name, packed, options.max_unzipped_size, options.temp_dir)
    try:
        target = unpacked or path
        try:
            kind = detect(target, inner_name(name) if unpacked else name)
        except DocumentError:
            return None  # parse_file raises it again, with the same words
        if kind.kind != "archive":
            return None
        plan = plan_archive(target, name, options)
        if len(plan.wanted) < _SPLIT_FILES and not plan.nested:
            return None
        plan.temporary = unpacked is not None
        plan.warnings += [kind.note] if kind.note else []
        plan.warnings += [decompressed(packed)] if packed else []
        unpacked = None  # the plan's now: removed once its parts are read
        return plan
    finally:
        if unpacked is not None:
            os.unlink(unpacked)


class _SpawnWithoutMainPopen(popen_spawn_posix.Popen):
    """A spawn start that does not run the parent's ``__main__`` script in the child.

    Plain spawn re-runs the parent's script in every worker (as ``__mp_main__``):
    a script that ingests at top level, without an ``if __name__ == "__main__":``
    guard, ingested again in each worker, and with a fixed store every document
    failed (the workers' copies could not open it). Workers only run rag_ingest
    code, imported by name, so they need none of it. This is CPython's
    ``popen_spawn_posix.Popen._launch`` (the same in 3.10-3.13) minus the main
    module in the preparation data, as loky's start method does.
    """

    _fds: list[int]

    def _launch(self, process_obj: Any) -> None:
        from multiprocessing import resource_tracker

        tracker_fd = resource_tracker.getfd()
        assert tracker_fd is not None  # getfd() starts the tracker
        self._fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        fp = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            mp_context.set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            executable = os.fsencode(spawn.get_executable())  # str or bytes, by version
            # A terminal's Ctrl-C reaches the whole process group: a worker still
            # starting (pebble ignores SIGINT only once it runs) died printing a
            # KeyboardInterrupt traceback. A blocked mask survives fork and exec.
            unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                self.pid = util.spawnv_passfds(executable, cmd, self._fds)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as f:
                f.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(
                self,
                util.close_fds,  # type: ignore[attr-defined]  # in CPython, not in typeshed
                [fd for fd in (parent_r, parent_w) if fd is not None],
            )
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


class _SpawnWithoutMainProcess(mp_context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _SpawnWithoutMainPopen(process_obj)


class _SpawnWithoutMainContext(mp_context.SpawnContext):
    Process = _SpawnWithoutMainProcess  # type: ignore[assignment]


def worker_context(plugins: Iterable[tuple[str, str]] = ()) -> mp_context.BaseContext:
    """The start method for parser workers: spawn, without the parent's script.

    A parser plugin registered as ``"__main__:function"`` lives in that script,
    so then the workers load it as plain spawn does (and the script needs its
    ``if __name__ == "__main__":`` guard, as any multiprocessing script).
    """
    if any(spec.partition(":")[0] == "__main__" for _, spec in plugins):
        return multiprocessing.get_context("spawn")
    return _SpawnWithoutMainContext()


class _PoolBroke(Exception):
    """pebble's pool broke under a task: a new pool may run it."""


def _discard(pool: Any) -> None:
    """Stop a broken pebble pool's workers and threads."""
    try:
        pool.stop()
        pool.join(timeout=10)
    except Exception as exc:  # its workers are gone with this process at the latest
        logger.warning("a broken parser pool did not stop cleanly: %s", exc)


@contextlib.asynccontextmanager
async def _temp_dir(prefix: str, parent: str | None) -> AsyncIterator[str]:
    """A temp directory for a document's tasks, removed off the event loop: removing one
    on it (what a parse wrote inside included) was where the loop thread was found in
    stalls of over 25 ms (sampled during the benchmark's runs). Made on the loop, one
    mkdir, so a cancelled caller never leaves one no one removes."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield path
    except GeneratorExit:
        # The caller's coroutine is being closed, never to run again: nothing may be
        # awaited now.
        shutil.rmtree(path, ignore_errors=True)
        raise
    except BaseException:
        await _removed(path)
        raise
    await _removed(path)


async def _removed(path: str) -> None:
    try:
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
    except asyncio.CancelledError:
        shutil.rmtree(path, ignore_errors=True)  # cancelled while removing: still gone
        raise


class ParserPool:
    """Parses files off the event loop, one typed outcome per file."""

    def __init__(
        self, settings: ParseSettings, options: ParseOptions, encoding: str = "cl100k_base"
    ) -> None:
        self.settings = settings
        self.options = options
        self.encoding = encoding  # the tokenizer each worker loads as it starts
        self.workers = settings.workers or os.cpu_count() or 1
        # Documents handed to the pool at once. Worker processes take tasks from a queue,
        # so one waiting there starts the moment a worker frees up instead of after a
        # round trip through the event loop (measured: a lone worker was idle 7% of the
        # time between documents; 10% more documents/s with the spare). A task's timeout
        # starts when a worker picks it up. Threads time out from submission, so no spare.
        self.slots = self.workers + 1 if settings.mode == "process" else self.workers
        # A PDF of twice this many pages or more is parsed in page ranges on every worker
        # at once: one long PDF no longer leaves the other workers idle. Threads parse
        # PDFs one at a time (PyMuPDF is not thread-safe), so only processes split.
        split = self.settings.mode == "process" and self.workers > 1
        self.split_pages = settings.pdf_split_pages if split else 0
        # An archive's files are read in parts in processes, even on one worker: each
        # part has a time limit of its own. A thread's limit cannot stop it.
        self.split_archives = self.settings.mode == "process"
        self._process_pool: Any = None
        # Each process pool's task_clock table: a pool another thread's load replaced
        # (broken) keeps its own for the tasks it still runs.
        self._clocks: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._thread_pool: concurrent.futures.ThreadPoolExecutor | None = None
        # Two loads on two threads (each loader's own loop) may share a kept pool: its
        # workers must start once, not once each (the second set would never be closed).
        self._starting = threading.Lock()

    @property
    def split_mail(self) -> int:
        """Past how many bytes a mailbox is read in parts (0: never): as archives are."""
        return _SPLIT_MAILBOX_BYTES if self.split_archives else 0

    @property
    def _member_chars(self) -> int:
        """Past how many characters an archive's or mailbox's files are chunked in groups
        on every worker (0: past _CHUNK_RUN_CHARS only): as archives are read."""
        return _MEMBER_RUN_CHARS if self.split_archives and self.workers > 1 else 0

    @property
    def split_text(self) -> int:
        """The bytes of a part of a long text file (0: read whole): as archives are."""
        return _TEXT_PART_BYTES if self.split_archives else 0

    def _pool(self) -> Any:
        with self._starting:
            if self.settings.mode == "thread":
                if self._thread_pool is None:
                    self._thread_pool = concurrent.futures.ThreadPoolExecutor(
                        self.workers, thread_name_prefix="rag-ingest-parse"
                    )
                return self._thread_pool
            if self._process_pool is not None and not self._process_pool.active:
                # pebble gives up on a pool for good when a worker dies between tasks
                # (killed, out of memory): every later task failed with "Unexpected error
                # within the Pool". A new pool takes its place; the old one's workers are
                # stopped off this thread, the event loop's.
                logger.warning("the parser workers' pool broke; starting a new one")
                broken, self._process_pool = self._process_pool, None
                threading.Thread(target=_discard, args=(broken,), daemon=True).start()
            if self._process_pool is None:
                from pebble import ProcessPool

                # spawn, never fork: the parent runs threads and an event loop.
                context = worker_context(self.options.plugins)
                clock = task_clock.new_table(context, self.workers)
                self._process_pool = ProcessPool(
                    max_workers=self.workers,
                    max_tasks=self.settings.max_tasks_per_worker,
                    initializer=_worker_init,
                    initargs=(
                        self.settings.memory_limit,
                        self.settings.worker_nice,
                        self.options,
                        self.encoding,
                        self.settings.warm_up,
                        self.settings.trim_memory,
                        clock,
                    ),
                    context=context,
                )
                self._clocks[self._process_pool] = clock[0]
            return self._process_pool

    def _scratch(self, under: str | None) -> contextlib.AbstractAsyncContextManager[str]:
        """A document's scratch directory, made and removed here: its tasks write under
        it (``ParseOptions.temp_dir``), so what a worker killed mid-task (a timeout)
        left behind goes with it. ``under``: where, if not the pool's ``temp_dir`` (a
        kept pool's load: in that load's staging directory)."""
        return _temp_dir("rag-ingest-parse-", under or self.options.temp_dir)

    async def parse(self, path: str, name: str, scratch_under: str | None = None) -> ParsedDocument:
        """Parse one file; raise a :class:`DocumentError` subclass on any failure."""
        async with self._scratch(scratch_under) as scratch:
            options = dataclasses.replace(self.options, temp_dir=scratch)
            got = await self.run(
                name,
                parse_or_plan,
                path,
                name,
                options,
                self.split_pages,
                self.split_archives,
                _CHUNK_RUN_CHARS // 2,
                self.split_mail,
                self.split_text,
            )
            parsed = await self._parsed(path, name, got, options)
            if parsed.scans:
                parsed = await self._read_scans(path, name, parsed, options)
            return parsed

    async def parse_and_chunk(
        self,
        path: str,
        name: str,
        chunk_settings: ChunkSettings,
        base_metadata: dict[str, Any],
        member_cache: str | None = None,
        scratch_under: str | None = None,
    ) -> tuple[ParsedDocument, ChunkPlan]:
        """Parse and chunk one file. ``member_cache``: where this source's archive files
        or mailbox messages are remembered as parsed (read, and replaced after), if it is
        an archive or a mailbox; ``scratch_under``: as for :meth:`parse`."""
        async with self._scratch(scratch_under) as scratch:
            options = dataclasses.replace(self.options, member_cache=member_cache, temp_dir=scratch)
            got = await self.run(
                name,
                parse_and_chunk,
                path,
                name,
                options,
                chunk_settings,
                base_metadata,
                self.split_pages,
                self.split_archives,
                _CHUNK_RUN_CHARS,
                self.split_mail,
                self.split_text,
                self._member_chars,
            )
            if isinstance(got, tuple):
                parsed, plan = got
            elif isinstance(got, TablePlan):
                parsed, plan = await self._chunk_rows(name, got, chunk_settings, base_metadata)
            elif isinstance(got, TextPlan):
                parsed, plan = await self._chunk_text(name, got, chunk_settings, base_metadata)
            else:
                parsed = await self._parsed(path, name, got, options)
                if parsed.scans:
                    parsed = await self._read_scans(path, name, parsed, options)
                cache, parsed.cache = parsed.cache, {}  # not sent to be chunked and back
                parsed, plan = await self._chunk(name, parsed, chunk_settings, base_metadata)
                parsed.cache = cache
        if member_cache is not None and parsed.cache:
            keep_plans(parsed.cache, plan.member_plans)
            try:
                await asyncio.to_thread(write_member_cache, member_cache, options, parsed.cache)
            except OSError as exc:  # a full disk: the next run parses every file again
                logger.warning("%s: its archive cache was not written: %s", name, exc)
        parsed.cache, parsed.plans, plan.member_plans = {}, None, {}
        return parsed, plan

    async def _chunk(
        self,
        name: str,
        parsed: ParsedDocument,
        chunk_settings: ChunkSettings,
        base_metadata: dict[str, Any],
    ) -> tuple[ParsedDocument, ChunkPlan]:
        """Chunk a document past :data:`_CHUNK_RUN_CHARS` in runs, each a task under the
        time limit, on every worker at once: an archive (or mail) in groups of whole files
        (a long log or CSV of theirs in runs of its own: a zipped 150 MB log took 60.7 s in
        one task, 37.9 s in runs), a long log, JSON Lines, CSV, SQL dump, Markdown text or
        source file in runs of whole lines, records, rows or sections. In one task, a
        source archive of 213 MB of Java (15,224 files, 195,149 chunks) took longer than
        parse.timeout's 120 s, and failed; a 300 MB log took 121.5 s, at the edge of it
        (70.5 s in runs)."""
        units = await asyncio.to_thread(
            chunk_units,
            parsed,
            chunk_settings,
            base_metadata,
            _CHUNK_RUN_CHARS,
            self.workers,
            self._member_chars,
        )
        parts = [(part, unit.metadata) for unit in units for part in unit.parts]
        if len(parts) < 2:
            return await self.run(name, chunk_parsed, parsed, chunk_settings, base_metadata)

        def chunk(
            part: tuple[ParsedDocument, dict[str, Any]],
        ) -> Awaitable[tuple[ParsedDocument, ChunkPlan]]:
            return self.run(name, chunk_parsed, part[0], chunk_settings, part[1])

        done = await self._each(chunk, parts)
        parsed.segments = []
        return parsed, join_units(units, [plan for _, plan in done])

    async def _chunk_rows(
        self,
        name: str,
        table: TablePlan,
        chunk_settings: ChunkSettings,
        base_metadata: dict[str, Any],
    ) -> tuple[ParsedDocument, ChunkPlan]:
        """A long table read and chunked in parts of its rows, each a task under the time
        limit, on every worker at once; the first part that fails fails the document."""

        def part(i: int) -> Awaitable[tuple[ParsedDocument, ChunkPlan, int]]:
            return self.run(name, chunk_rows, table, name, i, chunk_settings, base_metadata)

        done = await self._each(part, list(range(len(table.parts))))
        at = _part_starts([size for _, _, size in done])  # a table's chunks name no lines
        parsed = done[0][0]
        parsed.warnings[:0] = table.warnings
        return parsed, join_plans([plan for _, plan, _ in done], at)

    async def _chunk_text(
        self,
        name: str,
        text: TextPlan,
        chunk_settings: ChunkSettings,
        base_metadata: dict[str, Any],
    ) -> tuple[ParsedDocument, ChunkPlan]:
        """A long text read and chunked in parts of its lines, each a task under the time
        limit, on every worker at once; the first part that fails fails the document."""

        def part(i: int) -> Awaitable[tuple[ChunkPlan, TextPart, int]]:
            return self.run(name, chunk_text, text, name, i, chunk_settings, base_metadata)

        done = await self._each(part, list(range(len(text.parts))))
        parts = [got for _, got, _ in done]
        at = _part_starts([size for _, _, size in done], [got.lines for got in parts])
        parsed = ParsedDocument(
            text.kind,
            [],
            parser=text_parser(text, parts),
            language=text.language,
            warnings=text_warnings(text, parts),
        )
        return parsed, join_plans([plan for plan, _, _ in done], at)

    async def _read_text(self, name: str, text: TextPlan) -> ParsedDocument:
        """A long text read in parts of its lines on every worker, joined here."""

        def part(i: int) -> Awaitable[TextPart]:
            return self.run(name, read_text_part, text, name, i)

        parts = await self._each(part, list(range(len(text.parts))))
        return ParsedDocument(
            text.kind,
            [Segment("".join(p.text for p in parts))],
            parser=text_parser(text, parts),
            language=text.language,
            warnings=text_warnings(text, parts),
        )

    async def _each(self, task: Callable[[A], Awaitable[T]], items: list[A]) -> list[T]:
        """``task(item)`` for every item: at once in processes, the first to fail stopping
        the others; in threads one after another, as a thread's time limit runs from
        submission (queued tasks would time out)."""
        if self.settings.mode == "process":
            return await gather_or_cancel(*(task(item) for item in items))
        return [await task(item) for item in items]

    async def _read_scans(
        self, path: str, name: str, parsed: ParsedDocument, options: ParseOptions
    ) -> ParsedDocument:
        """``parsed`` with its scanned pages read by OCR: in batches, each a task under
        the time limit, on every worker at once. Threads run them one after another: a
        thread's time limit runs from submission, so queued batches would time out."""

        def read(batch: list[int]) -> Awaitable[list[Segment]]:
            # A document's pictures travel with their batch; a PDF's pages are read from
            # its file.
            pictures = [parsed.pictures[n - 1] for n in batch] if parsed.pictures else None
            return self.run(
                name, read_scans, path, name, parsed.file_type, batch, options, pictures
            )

        todo = batches(parsed.scans, self.workers)
        parts = await self._each(read, todo)
        return finish(name, parsed, [s for part in parts for s in part], options)

    async def _parsed(
        self,
        path: str,
        name: str,
        got: Planned,
        options: ParseOptions | None = None,
    ) -> ParsedDocument:
        """The document a plan stands for, its parts parsed on every worker at once."""
        if isinstance(got, SplitPlan):
            return await self._parse_ranges(path, name, got)
        if isinstance(got, ArchivePlan):
            return await self._read_archive(name, got, options or self.options)
        if isinstance(got, TablePlan):
            return await self._read_rows(name, got)
        if isinstance(got, MailboxPlan):
            return await self._read_mailbox(path, name, got, options or self.options)
        if isinstance(got, TextPlan):
            return await self._read_text(name, got)
        return got

    async def _read_mailbox(
        self, path: str, name: str, plan: MailboxPlan, options: ParseOptions
    ) -> ParsedDocument:
        """A long mailbox read in parts of its messages at once, each part under the time
        limit; the first part that fails fails the document."""

        source = plan.path or path
        # Read here once, each part sent its messages' entries (as an archive's parts).
        if options.messages is not None:  # inside an archive, from the archive's entry
            cache, options = options.messages, dataclasses.replace(options, messages={})
        elif options.member_cache:
            cache = await asyncio.to_thread(load_member_cache, options)
        else:
            cache = {}
        digests = await asyncio.to_thread(message_digests, source, plan.spans) if cache else []

        def read(part: tuple[int, list[tuple[int, int]]]) -> Awaitable[Any]:
            first, spans = part
            mine = digests[first : first + len(spans)]
            entries = {d: cache[d] for d in mine if d in cache}
            return self.run(name, parse_messages, source, name, options, spans, first + 1, entries)

        parts = await self._each(read, _mailbox_parts(plan.spans, self.workers))
        parsed = mailbox_document(name, parts, options.max_images)
        parsed.warnings += plan.warnings
        return parsed

    async def _read_rows(self, name: str, table: TablePlan) -> ParsedDocument:
        """A long table's text, read in parts of its rows on every worker, joined here:
        no worker holds it whole (a 231-million-character Parquet shard read in one had
        gone past parse.memory_limit)."""

        def part(i: int) -> Awaitable[ParsedDocument]:
            return self.run(name, read_rows, table, name, i)

        parts = await self._each(part, list(range(len(table.parts))))
        text = "".join(part.segments[0].text for part in parts)
        whole = dataclasses.replace(parts[0], segments=[Segment(text)])
        whole.warnings[:0] = table.warnings
        return whole

    async def _read_archive(
        self, name: str, plan: ArchivePlan, options: ParseOptions
    ) -> ParsedDocument:
        """An archive's files read in parts at once, each part under the time limit; the
        first part that fails fails the document and stops the others. An archive inside
        is read after, in parts of its own: one that fails is a warning."""
        # Read here once, each part sent its files' entries: every part had read the whole
        # cache (a zip of 600 notes, 38 parts, each reading a 3.8 MB file).
        cache = await asyncio.to_thread(load_member_cache, options) if options.member_cache else {}
        async with _temp_dir("rag-ingest-nested-", options.temp_dir) as keep:
            try:
                parts = await gather_or_cancel(
                    *(
                        self.run(
                            name,
                            read_part,
                            plan.path,
                            name,
                            indexes,
                            options,
                            keep if plan.nested else None,
                            plan.cached(indexes, cache),
                        )
                        for indexes in plan.parts(self.workers)
                    )
                )
            finally:
                if plan.temporary:
                    with contextlib.suppress(OSError):
                        os.unlink(plan.path)
            got = await gather_or_cancel(
                *(self._nested(nested, options, cache) for part in parts for nested in part.nested)
            )
        remember = options.member_cache is not None
        for part in parts:
            mine, got = got[: len(part.nested)], got[len(part.nested) :]
            take_nested(part, mine, remember, cache)
        return merge_parts(name, plan, parts)

    async def _nested(
        self, nested: Nested, options: ParseOptions, cached: dict[str, Any]
    ) -> ParsedDocument | DocumentError:
        """An archive (or a mailbox) inside an archive, read as an archive is (in parts,
        when it has enough files), or why it could not be. ``cached``: the archive's
        member cache, whose entry of a mailbox gives its messages."""
        inner = nested_options(options, nested.shown)
        if options.member_cache is not None:
            inner = dataclasses.replace(
                inner, messages=message_entries(cached.get(nested.shown), nested.shown)
            )
        try:
            got = await self.run(
                nested.name,
                parse_or_plan,
                nested.path,
                nested.name,
                inner,
                0,
                True,
                0,
                _SPLIT_MAILBOX_BYTES,
            )
            return await self._parsed(nested.path, nested.name, got, inner)
        except DocumentError as exc:
            return exc

    async def _parse_ranges(self, path: str, name: str, plan: SplitPlan) -> ParsedDocument:
        """A long PDF parsed in page ranges at once, each under the time limit; the
        first range that fails fails the document and stops the others."""
        # A range per worker, or two when that leaves each range pdf_split_pages or more
        # (for balance: pages with tables take ~5x longer). Never a count the workers
        # do not divide: 3 ranges on 2 workers took two rounds, 1.29x instead of 1.8x.
        long = plan.pages >= 2 * self.workers * self.split_pages
        parts = self.workers * (2 if long else 1)
        parsed = await gather_or_cancel(
            *(
                self.run(name, parse_range, path, name, self.options, pages, plan.headers)
                for pages in page_ranges(plan.pages, parts)
            )
        )
        options = self.options
        merged = merge_ranges(
            name, parsed, options.max_images, options.pdf_drop_running_lines, options.ocr
        )
        merged.warnings[:0] = plan.warnings
        return merged

    async def warm(self) -> set[int]:
        """Start the worker processes and wait until each has run its start-up (parser
        imports and the samples, with ``parse.warm_up``): returns their process IDs (none
        in thread mode)."""
        if self.settings.mode != "process":
            return set()
        pool = self._pool()
        seen: set[int] = set()
        # Not parse.timeout, a document's: a worker's whole start-up (1.9 s here) had
        # outlasted a 3 s one on a busy machine.
        limit = max(self.settings.timeout, _START_UP_TIMEOUT)
        deadline = time.monotonic() + limit
        while len(seen) < self.workers and time.monotonic() < deadline:
            # Not through run(): a task holds the lock the warm-up's steps need.
            futures = [pool.schedule(_warmed_pid, timeout=limit) for _ in range(self.workers)]
            try:
                seen.update(await asyncio.gather(*map(asyncio.wrap_future, futures)))
            except concurrent.futures.TimeoutError as exc:
                raise ParserTimeoutError(
                    f"the parser workers did not start within {limit:.0f}s"
                ) from exc
        return seen

    async def run(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` for document ``name`` in the pool, under its time limit."""
        try:
            return await self._run_once(name, fn, *args)
        except _PoolBroke:
            # The pool broke while this document waited or ran, most often for another
            # worker's death between tasks (a death on this document is ProcessExpired,
            # below). Once more, on a new pool.
            try:
                return await self._run_once(name, fn, *args)
            except _PoolBroke as exc:
                raise ParserCrashedError(
                    f"{name}: the parser workers' pool broke twice while it was parsed"
                ) from exc

    async def _run_once(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        from pebble import ProcessExpired

        pool = self._pool()
        timeout, cpu_timeout = self.settings.timeout, self.settings.cpu_timeout
        in_process = self.settings.mode == "process"
        # A thread's CPU time is not the pool's to read: the wall clock, the lower limit.
        limit = timeout if in_process else min(timeout, cpu_timeout)
        future: Any = None
        try:
            if in_process:
                task = bytes(reduction.ForkingPickler.dumps((fn, args)))
                # 0: no CPU clock, the wall clock's limit coming first.
                token = task_clock.next_token() if cpu_timeout < timeout else 0.0
                future = pool.schedule(_call_in_worker, args=(name, task, token), timeout=limit)
                if not token:
                    return await asyncio.wrap_future(future)
                result: T = await _within(future, self._clocks[pool], token, cpu_timeout)
                return result
            return await asyncio.wait_for(asyncio.wrap_future(pool.submit(fn, *args)), limit)
        except _CpuLimitReached as exc:
            how = (
                f"used no CPU time for {cpu_timeout:g}s (parse.cpu_timeout): hung"
                if exc.asleep
                else f"used over {cpu_timeout:g}s of CPU time (parse.cpu_timeout)"
            )
            raise ParserTimeoutError(f"{name}: parsing {how}; its worker was killed") from exc
        except (TimeoutError, concurrent.futures.TimeoutError) as exc:
            # A thread cannot be killed: it finishes in the background. Use processes for
            # untrusted input.
            setting = "parse.timeout" if limit == timeout else "parse.cpu_timeout"
            killed = "; its worker was killed" if in_process else ""
            raise ParserTimeoutError(
                f"{name}: parsing took over {limit:g}s ({setting}){killed}"
            ) from exc
        except ProcessExpired as exc:
            if exc.exitcode == _EXIT_OUT_OF_MEMORY:
                raise ParserMemoryError(
                    f"{name}: the parser went past the {self.settings.memory_limit}-byte "
                    "memory limit; its worker was replaced"
                ) from exc
            raise ParserCrashedError(
                f"{name}: the parser's worker died ({_death(exc.exitcode)})"
            ) from exc
        except (DocumentError, MissingExtraError):
            raise  # typed already: a missing extra names the extra to install
        except MemoryError as exc:
            raise ParserMemoryError(f"{name}: the parser ran out of memory") from exc
        except RecursionError as exc:  # a reader walking a hostile nesting; not its bug
            raise CorruptDocumentError(f"{name}: it nests too deeply to read ({exc})") from exc
        except asyncio.CancelledError:
            if future is not None:
                future.cancel()  # pebble stops the worker running a cancelled task
            raise
        except Exception as exc:  # a parser bug: this document fails, the batch goes on
            # Unless pebble's own: a broken pool fails its tasks in flight
            # (BrokenProcessPool) and refuses new ones ("Unexpected error within the Pool").
            if in_process and (
                isinstance(exc, BrokenProcessPool)
                or (isinstance(exc, RuntimeError) and not pool.active)
            ):
                raise _PoolBroke(str(exc)) from exc
            raise _parser_failed(name, exc) from exc

    def close(self) -> None:
        if self._process_pool is not None:
            self._process_pool.stop()
            self._process_pool.join(timeout=10)
            self._process_pool = None
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)
            self._thread_pool = None


class KeptPool:
    """A loader's parser pool, kept idle for ``parse.keep_workers`` seconds after its
    load: the next load with the same settings leases it, warm, instead of starting one.

    Loads at once with the same settings share it; one with other settings while it is
    in use gets a pool of its own, closed when it ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ParserPool | None = None
        self._key: Any = None
        self._users = 0
        self._keep = 0.0  # seconds: the last lease's parse.keep_workers
        self._timer: threading.Timer | None = None

    @staticmethod
    def _key_of(settings: ParseSettings, options: ParseOptions, encoding: str) -> Any:
        return settings.model_copy(update={"keep_workers": 0.0}), options, encoding

    def lease(
        self, settings: ParseSettings, options: ParseOptions, encoding: str
    ) -> tuple[ParserPool, ParserPool | None]:
        """A pool for one load, and an idle kept one it replaces (the caller closes it)."""
        key = self._key_of(settings, options, encoding)
        with self._lock:
            if self._pool is not None and self._key == key:
                self._cancel_timer()
                self._users += 1
                self._keep = settings.keep_workers
                return self._pool, None
            pool = ParserPool(settings, options, encoding)
            if settings.keep_workers <= 0 or self._users:
                return pool, None
            self._cancel_timer()
            stale, self._pool, self._key, self._users = self._pool, pool, key, 1
            self._keep = settings.keep_workers
            return pool, stale

    def release(self, pool: ParserPool) -> None:
        """End a load's lease: the kept pool waits ``parse.keep_workers`` seconds for the
        next (closed then unless leased again); any other is closed now. Blocks."""
        with self._lock:
            if pool is self._pool:
                self._users -= 1
                if not self._users:
                    self._timer = threading.Timer(self._keep, self._expire, args=(pool,))
                    self._timer.daemon = True
                    self._timer.start()
                return
        pool.close()

    def _expire(self, pool: ParserPool) -> None:
        with self._lock:
            if pool is not self._pool or self._users:
                return
            self._pool = self._key = self._timer = None
        pool.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def pool(self) -> ParserPool | None:
        """The kept pool, in use or idle; None when there is none."""
        return self._pool

    def close(self) -> None:
        """Close the kept pool now (at exit; a load holding it sees its tasks fail)."""
        with self._lock:
            self._cancel_timer()
            pool, self._pool, self._key, self._users = self._pool, None, None, 0
        if pool is not None:
            pool.close()


kept_pool = KeptPool()
atexit.register(kept_pool.close)
