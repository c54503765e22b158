"""The parser pool's scheduling and start-up: a spare document waits without losing time;
workers start warm, and without re-running the caller's script."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    DocumentError,
    MissingExtraError,
    ParserCrashedError,
    ParserTimeoutError,
)
from rag_ingest.parsers import pool as pool_module
from rag_ingest.parsers.base import ParsedDocument, ParseOptions
from rag_ingest.parsers.pool import ParserPool
from rag_ingest.settings import ChunkSettings, ParseSettings
from tests import docs, hostile_parsers
from tests.conftest import process_alive
from tests.hostile_parsers import (
    import_version,
    loaded_encodings,
    loaded_modules,
    nap,
    noisy,
    raise_missing_extra,
    raise_two_part,
    rect_equality,
    return_two_part,
    warm_state,
)


def _unwarmed(**fields: Any) -> ParseSettings:
    """Settings for a process pool whose warm-up is not the test's subject: without it
    (1.6-1.8 s of CPU a worker), as the rest of the suite runs (tests/conftest.py)."""
    return ParseSettings(**{"warm_up": False, **fields})


def test_threads_get_no_spare_document() -> None:
    # A thread-mode timeout runs from submission, so a queued document would lose time.
    assert ParserPool(ParseSettings(mode="thread", workers=3), ParseOptions()).slots == 3


@pytest.fixture
def scratch_pool(tmp_path: Path) -> Iterator[tuple[ParserPool, Path, Path]]:
    """A one-thread pool whose documents' scratch directories go under ``scratch``, and a
    short note for it to parse: ``(pool, note, scratch)``; closed after the test."""
    note = tmp_path / "note.txt"
    note.write_text("A short note.\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pool = ParserPool(ParseSettings(mode="thread", workers=1), ParseOptions(temp_dir=str(scratch)))
    try:
        yield pool, note, scratch
    finally:
        pool.close()


async def test_a_document_s_scratch_directory_is_removed_off_the_event_loop(
    scratch_pool: tuple[ParserPool, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed on the loop, with what a parse wrote in it, it stalled the loop."""
    pool, note, scratch = scratch_pool
    removed: list[tuple[str, int]] = []
    rmtree = shutil.rmtree

    def recorded(path: str, *args: Any, **kwargs: Any) -> None:
        removed.append((os.path.basename(path), threading.get_ident()))
        rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", recorded)
    await pool.parse(str(note), note.name)
    await pool.parse_and_chunk(str(note), note.name, ChunkSettings(), {})
    ours = [ident for name, ident in removed if name.startswith("rag-ingest-parse-")]
    assert len(ours) == 2
    assert threading.get_ident() not in ours
    assert list(scratch.iterdir()) == []


async def test_a_scratch_directory_is_removed_when_its_removal_is_cancelled(
    scratch_pool: tuple[ParserPool, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller cancelled while a thread removes it: removed at once all the same."""
    pool, note, scratch = scratch_pool
    entered, release = threading.Event(), threading.Event()
    loop_thread, rmtree = threading.get_ident(), shutil.rmtree

    def stuck_off_the_loop(path: str, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() != loop_thread:
            entered.set()
            release.wait(10)
        rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", stuck_off_the_loop)
    try:
        task = asyncio.ensure_future(pool.parse(str(note), note.name))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert list(scratch.iterdir()) == []
    finally:
        release.set()


async def test_a_scratch_directory_is_removed_when_its_coroutine_is_closed(
    scratch_pool: tuple[ParserPool, Path, Path],
) -> None:
    """A coroutine closed unfinished (its loop gone) can await nothing more."""
    pool, note, scratch = scratch_pool
    parse = pool.parse(str(note), note.name)
    parse.send(None)  # to its first wait, inside the scratch directory
    assert len(list(scratch.iterdir())) == 1
    parse.close()
    assert list(scratch.iterdir()) == []


async def test_a_queued_document_keeps_its_whole_timeout() -> None:
    pool = ParserPool(ParseSettings(mode="process", workers=1, timeout=3.5), ParseOptions())
    try:
        await pool.warm()  # spawn, imports and samples outside the timing
        assert pool.slots == 2
        started = time.monotonic()
        naps = await asyncio.gather(*(pool.run(f"doc{i}", nap, 2.0) for i in range(pool.slots)))
        elapsed = time.monotonic() - started
    finally:
        pool.close()
    # One worker ran both, one after the other; the second waited 2 s in the pool's queue
    # and still had its whole 3.5 s once a worker picked it up.
    assert naps == [2.0, 2.0]
    assert elapsed >= 4.0


async def test_an_error_the_parent_cannot_rebuild_fails_only_its_document() -> None:
    # pebble pickles a task's exception back, and one that cannot be rebuilt from its
    # message had broken the whole pool: the documents beside it and every later one
    # failed ("BrokenProcessPool: Unpicklable object from worker").
    pool = ParserPool(_unwarmed(mode="process", workers=2), ParseOptions())
    try:
        await pool.warm()
        bad, *good = await asyncio.gather(
            pool.run("bad.pdf", raise_two_part, 0.3),
            pool.run("a.md", nap, 0.8),
            pool.run("b.md", nap, 0.8),
            return_exceptions=True,
        )
        assert type(bad) is DocumentError, bad
        assert str(bad) == "bad.pdf: parser failed: TwoPartError: page 3: xref table damaged"
        assert good == [0.8, 0.8]
        assert await pool.run("later.md", nap, 0.0) == 0.0
    finally:
        pool.close()


async def test_a_missing_extra_in_a_worker_reaches_the_caller_as_itself() -> None:
    # MissingExtraError(what, extra) was rebuilt from its message alone in the parent: a
    # PDF in an install without the pdf extra broke the pool instead of naming the extra.
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions())
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'rag-ingest\[pdf\]'") as got:
            await pool.run("report.pdf", raise_missing_extra)
        assert got.value.extra == "pdf"
        assert await pool.run("later.md", nap, 0.0) == 0.0
    finally:
        pool.close()


async def test_a_worker_killed_between_documents_leaves_a_working_pool() -> None:
    # pebble gives up on a pool whose worker dies while no task runs (the OOM killer, a
    # kill): every later document had failed with "Unexpected error within the Pool".
    pool = ParserPool(_unwarmed(mode="process", workers=2), ParseOptions())
    try:
        victim, other = sorted(await pool.warm())
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(1.0)  # pebble looks at its workers every 0.1 s
        assert await pool.run("later.md", nap, 0.0) == 0.0
        # The broken pool's other worker is stopped, not left behind.
        deadline = time.monotonic() + 15
        while process_alive(other) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not process_alive(other)
    finally:
        pool.close()


async def test_a_result_the_parent_cannot_rebuild_fails_its_document_typed() -> None:
    # Such a result breaks pebble's pool as it arrives, whatever the worker does: the
    # document fails typed (tried on a new pool too), and the next one is parsed.
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions())
    try:
        with pytest.raises(ParserCrashedError, match="pool broke twice"):
            await pool.run("odd.bin", return_two_part)
        assert await pool.run("later.md", nap, 0.0) == 0.0
    finally:
        pool.close()


async def test_workers_load_the_tokenizer_before_the_first_document() -> None:
    # Each worker parses a bundled sample of each type and loads the configured
    # vocabulary as it starts, so its first real document pays no lazy set-up.
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions(), "o200k_base")
    try:
        assert "o200k_base" in await pool.run("probe", loaded_encodings)
    finally:
        pool.close()


async def test_workers_keep_libraries_warnings_off_the_terminal(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """docling's "Warning: image cannot be found" and openpyxl's "Unknown extension"
    came between the CLI's lines, naming no document."""
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions())
    try:
        assert await pool.run("probe", noisy) == "done"
    finally:
        pool.close()
    printed = capfd.readouterr()
    assert "image cannot be found" not in printed.err + printed.out
    assert "Unknown extension" not in printed.err + printed.out


async def test_workers_compare_pymupdf_rects_faster_and_the_caller_is_left_alone(
    tmp_path: Path,
) -> None:
    # pymupdf4llm's column detection spent most of a page of many small blocks making
    # Rects to compare two (texlive's hyperref.pdf): replaced in workers only.
    import pymupdf

    path = tmp_path / "p.pdf"
    path.write_bytes(docs.pdf_bytes(["CANARY one"]))
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions())
    try:
        assert await pool.run("probe", rect_equality, str(path)) == ("rag_ingest.parsers.pdf", True)
    finally:
        pool.close()
    threads = ParserPool(ParseSettings(mode="thread", workers=1), ParseOptions())
    try:
        assert (await threads.run("probe", rect_equality, str(path)))[0] == "pymupdf"
    finally:
        threads.close()
    assert pymupdf.Rect.__eq__.__module__ == "pymupdf"


async def test_a_fresh_worker_takes_a_document_before_its_parsers_are_imported() -> None:
    # A load of three code files had waited 2.3 s for each worker to import docling and
    # PyMuPDF and read a sample of each type; they are warmed between documents instead.
    pool = ParserPool(ParseSettings(mode="process", workers=1), ParseOptions())
    try:
        # The document queued at start comes before any step (PyMuPDF's import, then
        # docling's) but for one taken in a stall of its worker.
        assert await pool.run("probe", warm_state) == (False, False)
        assert len(await pool.warm()) == 1  # waits for the whole start-up
        assert await pool.run("probe", warm_state) == (True, True)
    finally:
        pool.close()


async def test_workers_without_warm_up_import_a_parser_for_its_first_document_only(
    tmp_path: Path,
) -> None:
    # parse.warm_up=False: no parser is imported, and no sample read, while a worker idles.
    pool = ParserPool(ParseSettings(mode="process", workers=1, warm_up=False), ParseOptions())
    try:
        assert len(await pool.warm()) == 1  # started: its tokenizer loaded, nothing more
        await asyncio.sleep(1.0)  # idle: a warm-up's first step comes 0.05 s in
        assert await pool.run("probe", warm_state) == (True, False)
        path = tmp_path / "first.docx"
        path.write_bytes(docs.docx_bytes("First", {"Body": "CANARY first document."}))
        assert "CANARY first document." in (await pool.parse(str(path), path.name)).text
        assert await pool.run("probe", warm_state) == (True, True)
        loaded = await pool.run("probe", loaded_modules, "pymupdf4llm", "pymupdf")
        assert loaded == {"pymupdf4llm": False, "pymupdf": False}
    finally:
        pool.close()


async def test_workers_that_never_finish_starting_fail_warm_with_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # warm() waits at least _START_UP_TIMEOUT (120 s), not a document's parse.timeout:
    # a 3 s one had killed workers still importing their parsers.
    monkeypatch.setattr(pool_module, "_START_UP_TIMEOUT", 1.0)
    monkeypatch.setattr(pool_module, "_warmed_pid", hostile_parsers.stall)
    pool = ParserPool(_unwarmed(mode="process", workers=1, timeout=0.2), ParseOptions())
    try:
        with pytest.raises(ParserTimeoutError, match="did not start within 1s"):
            await pool.warm()
    finally:
        pool.close()


@pytest.mark.parametrize("warm_first", [False, True])
async def test_workers_start_without_torch_and_transformers(
    tmp_path: Path, warm_first: bool
) -> None:
    # docling's backends import both when installed, for an Apple GPU probe and a type
    # name: 1.6 s and ~200 MB of each worker's start (measured). Parsing runs no model.
    # Hidden whether the warm-up imports a backend or a document's task does first.
    torch = pytest.importorskip("torch")
    pool = ParserPool(ParseSettings(mode="process", workers=1), ParseOptions())
    try:
        if warm_first:
            await pool.warm()
        else:
            path = tmp_path / "first.docx"
            path.write_bytes(docs.docx_bytes("First", {"Body": "CANARY first document."}))
            parsed = await pool.parse(str(path), path.name)
            assert "CANARY first document." in parsed.text
        loaded = await pool.run(
            "probe", loaded_modules, "docling.backend.msword_backend", "torch", "transformers"
        )
        assert loaded == {
            "docling.backend.msword_backend": True,
            "torch": False,
            "transformers": False,
        }
        # Hidden during the parser imports only: a plugin can still use them.
        assert await pool.run("probe", import_version, "torch") == torch.__version__
    finally:
        pool.close()


@pytest.mark.parametrize("pdf_mode", ["tables", "layout"])
async def test_workers_import_pymupdf_s_layout_package_in_layout_mode_only(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], pdf_mode: str
) -> None:
    # PyMuPDF imports it whenever it is installed (the ONNX runtime's bindings among its
    # modules): 0.4 s and 36 MB of each worker's start-up, for the one mode that uses it.
    pytest.importorskip("pymupdf.layout")
    settings = ParseSettings(mode="process", workers=1, pdf_mode=pdf_mode)
    pool = ParserPool(settings, ParseOptions.of(settings))
    try:
        await pool.warm()
        path = tmp_path / "table.pdf"
        path.write_bytes(docs.pdf_with_table())
        parsed = await pool.parse(str(path), path.name)
        assert "r3c2" in parsed.text and "CANARY-PLAIN page two" in parsed.text
        loaded = await pool.run("probe", loaded_modules, "pymupdf", "pymupdf.layout")
        assert loaded == {"pymupdf": True, "pymupdf.layout": pdf_mode == "layout"}
    finally:
        pool.close()
    # Without it, PyMuPDF's table finder printed advice to install it.
    assert "pymupdf_layout" not in capfd.readouterr().out


def test_warming_reads_the_bundled_samples_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker stopped mid warm-up (closing a pool stops its workers) cannot leave a copy
    # behind when there is none: each CI run had left several rag-ingest-warm-* dirs.
    from rag_ingest.parsers import pool as pool_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[str] = []
    real = pool_module.parse_file

    def recording(path: str, name: str, options: ParseOptions) -> ParsedDocument:
        seen.append(path)
        return real(path, name, options)

    monkeypatch.setattr(pool_module, "parse_file", recording)
    for _ in pool_module._samples(ParseOptions(), "cl100k_base"):
        pass
    corpus = Path(str(resources.files("rag_ingest"))) / "demo_corpus"
    assert len(seen) == len(pool_module._SAMPLES)
    assert all(Path(path).is_relative_to(corpus) for path in seen), seen
    assert list(tmp_path.iterdir()) == []


_task_running = threading.Event()
_task_may_end = threading.Event()


def _held_task() -> str:
    _task_running.set()
    _task_may_end.wait(10)
    return "done"


def test_a_warm_up_step_waits_for_tasks_and_then_for_the_worker_to_be_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's start-up runs in steps only while it is idle, and a step starts only
    after _IDLE_BEFORE_STEP without a task: the next task of a stream comes first."""
    steps: list[float] = []

    def recorded() -> Iterator[None]:
        for _ in range(3):
            steps.append(time.monotonic())
            yield

    monkeypatch.setattr(pool_module, "_imports", recorded)
    monkeypatch.setattr(pool_module, "_samples", lambda options, encoding: iter(()))
    monkeypatch.setattr(pool_module, "_warmed", threading.Event())
    monkeypatch.setattr(pool_module, "_last_task", 0.0)
    _task_running.clear()
    _task_may_end.clear()
    task = threading.Thread(
        target=pool_module._call_in_worker, args=("held", pickle.dumps((_held_task, ())))
    )
    task.start()
    assert _task_running.wait(10)
    warm = threading.Thread(target=pool_module._warm_in_background, args=(ParseOptions(), ""))
    warm.start()
    time.sleep(0.3)
    assert steps == []  # not while a task runs
    ended = time.monotonic()
    _task_may_end.set()
    task.join(10)
    warm.join(10)
    assert pool_module._warmed.is_set()
    assert len(steps) == 3
    assert steps[0] - ended >= pool_module._IDLE_BEFORE_STEP


_order: list[str] = []


def _ordered_task() -> None:
    _order.append("task")


def test_a_task_that_arrives_during_a_warm_up_step_runs_before_the_next_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step holds the worker; a task that queues meanwhile must not be starved by the
    next step taking the lock straight back."""
    step_may_end = threading.Event()
    order = _order
    order.clear()

    def steps() -> Iterator[None]:
        order.append("step")
        step_may_end.wait(10)
        yield
        for _ in range(2):
            order.append("step")
            yield

    monkeypatch.setattr(pool_module, "_imports", steps)
    monkeypatch.setattr(pool_module, "_samples", lambda options, encoding: iter(()))
    monkeypatch.setattr(pool_module, "_warmed", threading.Event())
    monkeypatch.setattr(pool_module, "_last_task", 0.0)
    warm = threading.Thread(target=pool_module._warm_in_background, args=(ParseOptions(), ""))
    warm.start()
    deadline = time.monotonic() + 10
    while order != ["step"] and time.monotonic() < deadline:
        time.sleep(0.001)
    waiting = threading.Thread(
        target=pool_module._call_in_worker,
        args=("task", pickle.dumps((_ordered_task, ()))),
    )
    waiting.start()
    while pool_module._tasks_waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    step_may_end.set()
    waiting.join(10)
    warm.join(10)
    assert order == ["step", "task", "step", "step"]


def _run_script(tmp_path: Path, source: str) -> list[str]:
    script = tmp_path / "user_script.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_a_worker_leaves_without_the_c_librarys_exit_handlers(tmp_path: Path) -> None:
    # A worker whose pool closed had left by a normal exit, now and then while its
    # warm-up or onnxruntime's threads still ran: a C++ destructor then aborted it
    # ("terminate called without an active exception" under the CLI's report). Here a
    # C exit handler would delete a marker file, as a destructor would run.
    marker = tmp_path / "marker"
    marker.write_text("still here")
    script = (
        "import ctypes, sys\n"
        "from rag_ingest.parsers.base import ParseOptions\n"
        "from rag_ingest.parsers.pool import _worker_init\n"
        "_worker_init(8 << 30, 0, ParseOptions(), 'cl100k_base', True)\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.strdup.restype = ctypes.c_void_p  # outlives the interpreter's objects\n"
        f"path = ctypes.c_void_p(libc.strdup({str(marker).encode()!r}))\n"
        "assert libc.__cxa_atexit(libc.unlink, path, None) == 0\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    # The README's loader lines, at the top level of a script, as most scripts are
    # written. Plain spawn re-ran the script in each worker: it loaded everything again
    # there, and every document those nested loads tried failed.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"note{i}.md").write_text(f"# Note {i}\n\nCanary line {i}.\n")
    lines = _run_script(
        tmp_path,
        "import os\n"
        "print('script body', os.getpid(), flush=True)\n"
        "from rag_ingest import RagIngestLoader\n"
        "loader = RagIngestLoader('corpus/', mode='chunks')\n"
        "docs = loader.load()\n"
        "print('loaded', len(docs), 'errors', len(loader.errors), flush=True)\n",
    )
    assert len([line for line in lines if line.startswith("script body")]) == 1
    assert lines[-1] == "loaded 3 errors 0"


def test_a_parser_defined_in_the_main_script_loads_in_workers(tmp_path: Path) -> None:
    # "__main__:function" lives in the script, so its workers import the script as plain
    # spawn does (behind the script's main guard).
    (tmp_path / "a.up").write_text("shout this")
    lines = _run_script(
        tmp_path,
        "import asyncio\n"
        "from rag_ingest.parsers.base import ParsedDocument, ParseOptions, Segment\n"
        "from rag_ingest.parsers.pool import ParserPool\n"
        "from rag_ingest.settings import ParseSettings\n\n"
        "def shout(path, name, options):\n"
        "    text = open(path).read().upper()\n"
        "    return ParsedDocument(file_type='text', segments=[Segment(text)], parser='shout')\n\n"
        "if __name__ == '__main__':\n"
        "    pool = ParserPool(ParseSettings(mode='process', workers=1),\n"
        "                      ParseOptions(plugins=(('.up', '__main__:shout'),)))\n"
        "    try:\n"
        "        parsed = asyncio.run(pool.parse('a.up', 'a.up'))\n"
        "    finally:\n"
        "        pool.close()\n"
        "    print(parsed.parser, parsed.segments[0].text)\n",
    )
    assert lines[-1] == "shout SHOUT THIS"


def test_a_worker_still_starting_outlives_a_terminal_ctrl_c() -> None:
    """Ctrl-C in a terminal signals the whole process group. Pebble ignores SIGINT
    once its worker runs; one still starting (a recycled worker, at 12 s into a
    3,000-file CLI run) died printing a KeyboardInterrupt traceback."""
    import os
    import signal

    from rag_ingest.parsers.pool import worker_context

    process = worker_context().Process(target=time.sleep, args=(0.5,))
    process.start()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGINT)  # long before its interpreter is up
    process.join(30)
    assert process.exitcode == 0


def _long_pdf(path: Path) -> Path:
    """Sixteen pages: headings in a larger font, a ruled table, the same logo on two
    pages and another image, so that ranges must agree on headings, tables and images;
    and two files attached."""
    import os

    import pymupdf

    doc = pymupdf.open()
    logo = pymupdf.Pixmap(pymupdf.csRGB, 64, 64, os.urandom(64 * 64 * 3), False).tobytes("png")
    for number in range(12):
        page = doc.new_page()
        page.insert_text((72, 60), f"Chapter {number}", fontsize=20)
        # The first range alone holds more 14 pt text than body text: judged by its own
        # pages, 14 pt would be the body size and its sections no headings.
        sections = 3 if number < 4 else 0
        for line in range(sections):
            page.insert_text((72, 90 + 20 * line), f"Section {number}.{line} " * 3, fontsize=14)
        for line in range(1 if number < 4 else 20):
            page.insert_text((72, 160 + 14 * line), f"CANARY-{number}-{line} body text " * 3)
        # A running footer: dropped only when judged over every page, not per range.
        page.insert_text((72, 800), f"Handbook - page {number + 1}", fontsize=8)
        if number in (2, 9):
            page.insert_image(pymupdf.Rect(300, 500, 364, 564), stream=logo)
    doc.insert_pdf(pymupdf.open("pdf", docs.pdf_with_table()))
    doc.insert_pdf(pymupdf.open("pdf", docs.pdf_with_image("Figure page")))
    # Attached files, read once, after the last page: one on page 5, in another range.
    doc.embfile_add("appendix.md", b"# Appendix\n\nCANARY-APPENDIX", filename="appendix.md")
    doc[4].add_file_annot((500, 60), b"CANARY-ERRATA page 2 is wrong", "errata.txt")
    doc.save(path)
    return path


async def _parse_and_chunk(path: Path, split_pages: int) -> tuple[Any, Any, list[str]]:
    from rag_ingest.settings import ChunkSettings

    settings = _unwarmed(mode="process", workers=2, pdf_split_pages=split_pages)
    options = ParseOptions(max_images=5, min_image_bytes=100)
    return await _recorded(path, settings, options, ChunkSettings())


def _recording(pool: ParserPool) -> list[str]:
    """The name of every function ``pool`` runs from now on, in order."""
    calls: list[str] = []
    run = pool.run

    async def recorded(name: str, fn: Any, *args: Any) -> Any:
        calls.append(fn.__name__)
        return await run(name, fn, *args)

    pool.run = recorded  # type: ignore[method-assign]
    return calls


def _recording_unpack(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every compressed file the pool's planning decompresses from now on
    (in this process: call its planners directly)."""
    from rag_ingest.parsers import pool as pool_module

    unpacked: list[str] = []
    real_unpack = pool_module.unpack

    def unpack(*args: Any) -> str:
        unpacked.append(args[1])
        return real_unpack(*args)

    monkeypatch.setattr(pool_module, "unpack", unpack)
    return unpacked


def _numbered_as_one(plan: Any) -> None:
    """A plan chunked in parts is numbered as one chunking's: each chunk's index in
    order, the count of them all, and chunked."""
    count = len(plan.chunks)
    assert [c.metadata["chunk_index"] for c in plan.chunks] == list(range(count))
    assert {(c.metadata["chunk_count"], c.metadata["chunked"]) for c in plan.chunks} == {
        (count, True)
    }


async def _recorded(
    path: Path, settings: ParseSettings, options: ParseOptions, chunking: Any
) -> tuple[Any, Any, list[str]]:
    """A pool's parse, then its parse and chunk, of ``path``; with the name of every
    function the pool ran, in order."""
    pool = ParserPool(settings, options)
    calls = _recording(pool)
    try:
        parsed = await pool.parse(str(path), path.name)
        _, plan = await pool.parse_and_chunk(str(path), path.name, chunking, {"k": "v"})
    finally:
        pool.close()
    return parsed, plan, calls


async def test_a_long_pdf_is_parsed_in_page_ranges_with_the_same_result(tmp_path: Path) -> None:
    path = _long_pdf(tmp_path / "long.pdf")
    whole, whole_plan, whole_calls = await _parse_and_chunk(path, 0)
    split, split_plan, split_calls = await _parse_and_chunk(path, 2)
    assert whole_calls == ["parse_or_plan", "parse_and_chunk"]
    # 16 pages, ranges of at least 2 pages, at most 2 per worker: 4 ranges, twice.
    ranges = ["parse_range"] * 4
    assert split_calls == ["parse_or_plan", *ranges, "parse_and_chunk", *ranges, "chunk_parsed"]
    assert split.pages == whole.pages == 16
    assert [(s.page, s.text) for s in split.segments] == [(s.page, s.text) for s in whole.segments]
    assert "# Chapter 3" in split.text and "|r1c0|r1c1|r1c2|" in split.text.replace(" ", "")
    assert "## Section 1.0" in split.segments[1].text  # headings judged over all 16 pages
    assert "Handbook - page" not in split.text
    assert [(c.text, c.metadata) for c in split_plan.chunks] == [
        (c.text, c.metadata) for c in whole_plan.chunks
    ]
    # The logo on pages 3 and 10 (two ranges) is one image, as in the whole parse.
    assert [(i.page, i.data) for i in split.images] == [(i.page, i.data) for i in whole.images]
    assert [i.page for i in split.images] == [3, 16]
    assert [s.member for s in split.segments][-3:] == [None, "appendix.md", "errata.txt"]
    assert split.text.count("CANARY-APPENDIX") == split.text.count("CANARY-ERRATA") == 1
    assert split.members == {"appendix.md": ("markdown", None), "errata.txt": ("text", None)}
    assert [c.metadata.get("attachment") for c in split_plan.chunks][-2:] == [
        "appendix.md",
        "errata.txt",
    ]


async def test_a_failing_range_fails_the_pdf_and_stops_the_other_ranges(tmp_path: Path) -> None:
    from rag_ingest.errors import ParserCrashedError

    path = _long_pdf(tmp_path / "long.pdf")
    pool = ParserPool(_unwarmed(mode="process", workers=2, pdf_split_pages=2), ParseOptions())
    run = pool.run
    started: list[asyncio.Task[Any]] = []

    async def second_range_crashes(name: str, fn: Any, *args: Any) -> Any:
        if fn.__name__ == "parse_range":
            started.append(asyncio.current_task())  # type: ignore[arg-type]
            if len(started) == 2:
                raise ParserCrashedError(f"{name}: the parser's worker died (exit code -11)")
            await asyncio.sleep(30)  # the other ranges are still parsing
        return await run(name, fn, *args)

    pool.run = second_range_crashes  # type: ignore[method-assign]
    try:
        with pytest.raises(ParserCrashedError, match=r"long\.pdf"):
            await asyncio.wait_for(pool.parse(str(path), "long.pdf"), 10)
    finally:
        pool.close()
    assert len(started) == 4 and all(task.done() for task in started)
    assert sum(task.cancelled() for task in started) == 3


async def test_a_split_pdf_with_no_text_says_whether_ocr_was_on(tmp_path: Path) -> None:
    """Its ranges' error is the whole parse's: with OCR on, not 'OCR is off'."""
    from rag_ingest.errors import EmptyDocumentError
    from rag_ingest.parsers.base import UNREAD_SCANS

    path = tmp_path / "blank.pdf"
    path.write_bytes(docs.pdf_bytes([""] * 8))
    settings = _unwarmed(mode="process", workers=2, pdf_split_pages=2)
    for ocr, said in (("on", "no page looks scanned"), ("off", UNREAD_SCANS)):
        pool = ParserPool(settings, ParseOptions.of(ParseSettings(ocr=ocr)))
        try:
            with pytest.raises(EmptyDocumentError, match=re.escape(said)):
                await pool.parse(str(path), "blank.pdf")
            assert pool.split_pages == 2
        finally:
            pool.close()


def test_threads_never_split_a_pdf() -> None:
    # PyMuPDF is not thread-safe: in threads PDFs parse one at a time, ranges gain nothing.
    assert ParserPool(ParseSettings(mode="thread", workers=2), ParseOptions()).split_pages == 0
    assert ParserPool(_unwarmed(mode="process", workers=1), ParseOptions()).split_pages == 0
    assert ParserPool(_unwarmed(mode="process", workers=2), ParseOptions()).split_pages == 32


@pytest.mark.parametrize(("split_pages", "ranges"), [(2, 4), (5, 2), (8, 2), (9, 0)])
async def test_a_long_pdf_gets_as_many_ranges_as_the_workers_divide(
    tmp_path: Path, split_pages: int, ranges: int
) -> None:
    # 16 pages on 2 workers. Three ranges would take two rounds on two workers (measured:
    # a 100-page PDF 1.29x faster split than whole, against 1.61x in two ranges).
    path = _long_pdf(tmp_path / "long.pdf")
    parsed, _, calls = await _parse_and_chunk(path, split_pages)
    assert calls.count("parse_range") == 2 * ranges  # parse, then parse_and_chunk
    assert parsed.pages == 16 and "CANARY-11-0" in parsed.text and "CANARY-PLAIN" in parsed.text


async def test_an_archive_s_files_are_read_in_parts_with_the_same_result(tmp_path: Path) -> None:
    import gzip

    from rag_ingest.parsers import parse_file
    from rag_ingest.settings import ChunkSettings

    files = {f"docs/page{i:02d}.md": f"# Page {i}\n\nCANARY-PART-{i} text.\n".encode()
             for i in range(40)}  # fmt: skip
    files["docs/logo.png"] = b"\x89PNG\r\n\x1a\n" + bytes(64)
    files["docs/more.zip"] = docs.zip_bytes({"inner.md": b"# Inner\n\nCANARY-INNER\n"})
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    options = ParseOptions(temp_dir=str(unpack))
    settings = _unwarmed(mode="process", workers=2)
    for name, data in (
        ("docs.zip", docs.zip_bytes(files)),
        ("docs.tgz", gzip.compress(docs.tar_bytes(files))),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        whole = parse_file(str(path), name, options)
        parsed, plan, calls = await _recorded(path, settings, options, ChunkSettings())
        # 41 files on 2 workers: 3 parts of at most 16 files, then the zip inside, twice.
        parts = ["read_part"] * 3 + ["parse_or_plan"]
        assert calls == ["parse_or_plan", *parts, "parse_and_chunk", *parts, "chunk_parsed"]
        assert [s.text for s in parsed.segments] == [s.text for s in whole.segments]
        assert parsed.warnings == whole.warnings and parsed.parser == whole.parser
        assert parsed.warnings[1] == "1 of 42 files with no text skipped: docs/logo.png"
        assert "CANARY-PART-39" in parsed.text and "CANARY-INNER" in parsed.text
        assert parsed.members["docs/more.zip/inner.md"] == ("markdown", None)
        assert [c.text for c in plan.chunks] == [
            c.text for c in chunk_document(whole, ChunkSettings(), {}).chunks
        ]
        assert list(unpack.iterdir()) == []  # the decompressed tar removed


async def test_an_archive_s_long_text_is_chunked_in_runs_with_the_same_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one task, the chunking of a 213 MB source archive outlasted parse.timeout: past
    a size, runs of whole files are chunked on every worker, and joined as one."""
    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    def module(i: int) -> bytes:
        body = (f'def f{i}_{j}(x):\n    """CANARY-RUN-{i}-{j}"""\n    return x + {j}\n\n\n'
                for j in range(30))  # fmt: skip
        return "".join(body).encode()

    files = {f"src/mod{i:02d}.py": module(i) for i in range(12)}
    files["src/notes.md"] = b"# Notes\n\n" + b"A line of notes. " * 400
    path = tmp_path / "src.zip"
    path.write_bytes(docs.zip_bytes(files))
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=8, whole_document_tokens=0)
    parsed = parse_file(str(path), path.name, ParseOptions())
    whole = chunk_document(parsed, chunking, {"k": "v"})
    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 4000)
    settings = _unwarmed(mode="process", workers=2)
    _, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
    runs = calls[calls.index("parse_and_chunk") :].count("chunk_parsed")
    assert runs >= 4, calls  # ~25,000 characters in runs of about 4,000
    assert [(c.text, c.metadata) for c in plan.chunks] == [
        (c.text, c.metadata) for c in whole.chunks
    ]
    # Offsets point into the whole archive's text, as one chunking's do.
    text = parsed.text
    assert all(text[c.metadata["start_index"] : c.metadata["end_index"]] == c.text
               for c in plan.chunks if "start_index" in c.metadata)  # fmt: skip
    assert len({c.metadata["archive_member"] for c in plan.chunks}) == 13
    _numbered_as_one(plan)


async def test_an_archive_s_long_log_is_chunked_in_runs_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip of one 150 MB log was chunked in one task (60.7 s; one of 300 MB would have
    outlasted parse.timeout): an archive's long file is cut in runs of its own, as the
    file alone is, between groups of its other files, all chunked on every worker."""
    from rag_ingest.chunking import document_text
    from rag_ingest.settings import ChunkSettings

    log = "".join(f"2026-12-03T09:{i // 60:02d}:{i % 60:02d} worker {i % 7} CANARY-ZLOG-{i}\n"
                  for i in range(800))  # fmt: skip
    files = {
        "a.py": b"".join(b"def f%d(x):\n    return x + %d\n\n\n" % (i, i) for i in range(60)),
        "logs/app.log": log.encode(),
        "z.md": b"# Notes\n\n" + b"A line of notes. " * 300,
    }
    path = tmp_path / "logs.zip"
    path.write_bytes(docs.zip_bytes(files))
    alone = tmp_path / "app.log"
    alone.write_text(log)
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    # The files before it, the log's runs, the file after it.
    parts = 2 + -(-len(log) // 4000)
    parsed, plan = await _in_runs_alike(path, chunking, monkeypatch, parts)
    # The log's chunks are the file's alone, in runs, with its own lines.
    _, own, _ = await _recorded(alone, ParseSettings(mode="thread"), ParseOptions(), chunking)
    mine = [c for c in plan.chunks if c.metadata.get("archive_member") == "logs/app.log"]
    assert [(c.text, c.metadata["line_start"]) for c in mine] == [
        (c.text, c.metadata["line_start"]) for c in own.chunks
    ]
    # Offsets are the whole archive's text's; the other files are there, each named.
    text = document_text(parsed)
    assert plan.text_length == len(text)
    assert all(text[c.metadata["start_index"] : c.metadata["end_index"]] == c.text
               for c in plan.chunks)  # fmt: skip
    members = [c.metadata["archive_member"] for c in plan.chunks]
    assert members == sorted(members) and set(members) == set(files)
    assert {c.metadata["file_type"] for c in mine} == {"text"}
    _numbered_as_one(plan)


async def test_an_archive_s_long_json_lines_file_is_chunked_in_runs_under_its_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zipped 60 MB JSON Lines file was chunked in one task (26.3 s; 15.0 s alone): its
    records are under its title, their headings a level down, so it is cut at its
    headings, each run told the title above it: heading paths are the whole's."""
    import json
    import re

    from rag_ingest.chunking import document_text
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    records = "".join(json.dumps({"id": i, "note": f"CANARY-REC-{i} the user clicked"}) + "\n"
                      for i in range(400))  # fmt: skip
    files = {
        "a.md": b"# A\n\nSome notes.\n",
        "logs/events.jsonl": records.encode(),
        "z.txt": b"End.",
    }
    path = tmp_path / "events.zip"
    path.write_bytes(docs.zip_bytes(files))
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 8000)
    plans = []
    for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
        parsed, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
        assert calls[calls.index("parse_and_chunk") :].count("chunk_parsed") > 6, calls
        plans.append(plan)
    plan = plans[0]
    assert [(c.text, c.metadata) for c in plan.chunks] == [
        (c.text, c.metadata) for c in plans[1].chunks
    ]
    mine = [c for c in plan.chunks if c.metadata["archive_member"] == "logs/events.jsonl"]
    assert mine[0].text.startswith("# logs/events.jsonl\n\n### [0]\n")
    for chunk in mine[1:]:
        first = re.match(r"### \[(\d+)\]\n", chunk.text)
        assert first is not None, chunk.text  # cut before a record
        assert chunk.metadata["heading_path"] == f"logs/events.jsonl > [{first[1]}]"
    found = [int(n) for c in mine for n in re.findall(r"CANARY-REC-(\d+) ", c.text)]
    assert found == list(range(400))  # each record once, in order
    text = document_text(parsed)
    assert all(text[c.metadata["start_index"] : c.metadata["end_index"]] == c.text
               for c in plan.chunks)  # fmt: skip
    _numbered_as_one(plan)


def _mailbox(path: Path) -> Path:
    """A mailbox of 40 messages of growing length at ``path``: one with no text, four
    with a text file attached, two with an image."""
    import mailbox
    from email.message import EmailMessage

    box = mailbox.mbox(str(path))
    for i in range(40):
        message = EmailMessage()
        message["Subject"] = f"Update {i}"
        message["From"] = f"sender{i % 3}@example.com"
        body = f"CANARY-MBOX-{i} the weekly update. " + "More words here. " * (i * 5)
        message.set_content("" if i == 7 else body)  # one with no text: passed over
        if i % 10 == 3:
            message.add_attachment(f"CANARY-ATTACHED-{i}\n".encode(), maintype="text",
                                   subtype="plain", filename=f"notes{i}.txt")  # fmt: skip
        if i in (2, 25):  # in two parts: the images kept are the whole's first
            message.add_attachment(docs.scan_image([f"Scan {i}"]), maintype="image",
                                   subtype="png", filename="scan.png")  # fmt: skip
        box.add(message)
    box.close()
    return path


async def test_a_long_mailbox_is_read_in_parts_of_its_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 messages (42 MB) took 27.1 s in one task: a Takeout export of a few
    hundred MB outlasted parse.timeout. Past a size, a mailbox is read in parts of its
    messages on every worker, as one read would read it, and chunked as one."""
    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.parsers.base import UNREAD_SCANS
    from rag_ingest.settings import ChunkSettings

    path = _mailbox(tmp_path / "Takeout.txt")  # named as it is not: said, as read whole
    options = ParseOptions(max_images=1)
    whole = parse_file(str(path), path.name, options)
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    expected = chunk_document(whole, chunking, {"k": "v"})
    monkeypatch.setattr(pool_module, "_SPLIT_MAILBOX_BYTES", 10_000)
    monkeypatch.setattr(pool_module, "_MAILBOX_PART_BYTES", 20_000)
    size = path.stat().st_size
    parts = ["parse_messages"] * -(-size // 20_000)
    assert len(parts) >= 3
    # Threads read it whole, as they read archives: a thread's time limit cannot stop it.
    for settings, read in (
        (_unwarmed(mode="process", workers=2), parts),
        (ParseSettings(mode="thread"), []),
    ):
        parsed, plan, calls = await _recorded(path, settings, options, chunking)
        assert calls[: len(read) + 2] == ["parse_or_plan", *read, "parse_and_chunk"], calls
        assert (parsed.text, parsed.members) == (whole.text, whole.members)
        assert parsed.warnings == whole.warnings
        assert parsed.images == whole.images and len(whole.images) == 1
        assert parsed.warnings == [
            f"scans or images in 2 message(s) {UNREAD_SCANS}",
            "named .txt but is mbox",
        ]
        assert [(c.text, c.metadata) for c in plan.chunks] == [
            (c.text, c.metadata) for c in expected.chunks
        ]
    members = list(whole.members)
    assert "message 8: Update 7" not in members and len(members) == 39 + 4
    assert members[:2] == ["message 1: Update 0", "message 2: Update 1"]
    assert "message 34: Update 33/notes33.txt" in members


@pytest.mark.parametrize(("suffix", "packed"), [(".txt.gz", "gzip"), (".mbox.xz", "xz")])
async def test_a_long_compressed_mailbox_is_read_in_parts_of_its_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, packed: str
) -> None:
    """A mailing list's archive comes a month a file, gzipped (Mailman's
    2026-November.txt.gz): read whole in one task, one of a few hundred MB outlasted
    parse.timeout. It is decompressed into the document's scratch directory and read in
    parts from there, then removed."""
    import gzip
    import lzma

    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    box = _mailbox(tmp_path / "box").read_bytes()
    path = tmp_path / f"2026-November{suffix}"
    path.write_bytes(gzip.compress(box) if packed == "gzip" else lzma.compress(box))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = ParseOptions(temp_dir=str(scratch))
    whole = parse_file(str(path), path.name, options)
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    expected = chunk_document(whole, chunking, {"k": "v"})
    monkeypatch.setattr(pool_module, "_SPLIT_MAILBOX_BYTES", 10_000)
    monkeypatch.setattr(pool_module, "_MAILBOX_PART_BYTES", 20_000)
    settings = _unwarmed(mode="process", workers=2)
    parsed, plan, calls = await _recorded(path, settings, options, chunking)
    parts = ["parse_messages"] * -(-len(box) // 20_000)
    assert len(parts) >= 3
    assert calls[: len(parts) + 2] == ["parse_or_plan", *parts, "parse_and_chunk"], calls
    assert (parsed.text, parsed.members) == (whole.text, whole.members)
    assert f"decompressed from {packed}" in parsed.warnings
    assert sorted(parsed.warnings) == sorted(whole.warnings)
    assert [(c.text, c.metadata) for c in plan.chunks] == [
        (c.text, c.metadata) for c in expected.chunks
    ]
    assert list(scratch.iterdir()) == []  # the decompressed copy went with its document
    # Not a mailbox: read whole, as before. A compressed log is not decompressed to be
    # looked at; one that opens with "From " is, and its copy removed at once.
    log = tmp_path / "app.log.gz"
    log.write_bytes(gzip.compress(b"2026-12-03 a log line\n" * 2000))
    parsed, _, calls = await _recorded(log, settings, options, chunking)
    assert calls[:2] == ["parse_or_plan", "parse_and_chunk"] and "log line" in parsed.text
    unpacked = _recording_unpack(monkeypatch)
    assert pool_module._long_mailbox(str(log), log.name, options, 10) is None
    assert unpacked == []
    from_line = tmp_path / "notes.txt.gz"
    from_line.write_bytes(gzip.compress(b"From the start, notes\n" * 2000))
    assert pool_module._long_mailbox(str(from_line), from_line.name, options, 10) is None
    assert unpacked == ["notes.txt.gz"] and list(scratch.iterdir()) == []


async def test_a_long_mailbox_in_an_archive_is_read_in_parts_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Takeout delivers its mailbox in a zip: read with the zip's other files, a mailbox
    of a few hundred MB outlasted parse.timeout in that one task. It is read apart, in
    parts of its messages on every worker, with the text and chunks of a whole read."""
    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    box = _mailbox(tmp_path / "All mail.mbox")
    files = {"Takeout/Mail/All mail.mbox": box.read_bytes(), "Takeout/index.html": b"<p>Hi</p>"}
    path = tmp_path / "takeout.zip"
    path.write_bytes(docs.zip_bytes(files))
    whole = parse_file(str(path), path.name, ParseOptions())
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    expected = chunk_document(whole, chunking, {"k": "v"})
    monkeypatch.setattr(pool_module, "_SPLIT_MAILBOX_BYTES", 10_000)
    monkeypatch.setattr(pool_module, "_MAILBOX_PART_BYTES", 20_000)
    settings = _unwarmed(mode="process", workers=2)
    parsed, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
    parts = ["parse_messages"] * -(-box.stat().st_size // 20_000)
    assert len(parts) >= 3
    # The zip's two files in two parts, the mailbox left to be read apart, in parts.
    read = ["parse_or_plan", "read_part", "read_part", "parse_or_plan", *parts]
    assert calls[: calls.index("parse_and_chunk")] == read
    assert (parsed.text, parsed.members) == (whole.text, whole.members)
    assert "Takeout/Mail/All mail.mbox/message 34: Update 33/notes33.txt" in parsed.members
    assert [(c.text, c.metadata) for c in plan.chunks] == [
        (c.text, c.metadata) for c in expected.chunks
    ]


async def test_a_long_text_file_is_read_and_chunked_in_parts_of_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log of 1.2 GB read whole went past parse.memory_limit in its worker. Past four
    parts' bytes, a UTF-8 text is read and chunked in parts of its lines on every
    worker, its text as a whole read gives it: BOM, CRLF, NUL padding, base64 and hex
    left out (a PEM block never cut between parts), the same warnings; each chunk where
    it is in that text, numbered as one chunking."""
    import base64

    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    pem = base64.encodebytes(bytes(range(256)) * 6).replace(b"\n", b"\r\n")
    lines = []
    for i in range(3000):
        lines.append(f"2026-12-03T10:{i // 60 % 60:02d}:{i % 60:02d} worker {i % 7} CANARY-{i} ok")
        if i % 500 == 250:  # blocks of base64 where parts may be cut
            lines.append(
                "-----BEGIN CERTIFICATE-----\r\n" + pem.decode() + "-----END CERTIFICATE-----"
            )
        if i == 1200:
            lines.append("blob 0x" + "ab" * 200 + " naïve café 日本")
        if i == 2000:  # a line past the 64 KiB first looked through for a line's end
            lines.append("words " * 14_000)
    data = b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\x00" * 64 + b"\r\ntail line\r\n"
    path = tmp_path / "app.log"
    path.write_bytes(data)
    whole = parse_file(str(path), path.name, ParseOptions())
    assert "encoded (base64 or hex) data left out" in whole.warnings[-1]
    monkeypatch.setattr(pool_module, "_TEXT_PART_BYTES", 20_000)
    # Parts of whole lines, one past the long line: found past the first 64 KiB looked at.
    planned = pool_module.text_plan(str(path), path.name, "text", None, len(data), 20_000)
    assert planned is not None and len(planned.parts) >= 5
    after_long = data.index(b"\r\n", data.index(b"words \r\n") + 8) + 2  # a whole line on
    assert after_long in [start for start, _ in planned.parts]
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=8)
    results = []
    for workers in (2, 1):
        settings = _unwarmed(mode="process", workers=workers)
        parsed, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
        read = [c for c in calls if c == "read_text_part"]
        assert calls[: len(read) + 1] == ["parse_or_plan", *read]
        assert len(read) == len(planned.parts)
        assert calls[len(read) + 1 :] == ["parse_and_chunk", *(["chunk_text"] * len(read))]
        assert (parsed.text, parsed.warnings, parsed.parser) == (
            whole.text,
            whole.warnings,
            whole.parser,
        )
        _numbered_as_one(plan)
        text = whole.text
        for chunk in plan.chunks:
            start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
            assert text[start:end] == chunk.text
            assert chunk.metadata["line_start"] == text.count("\n", 0, start) + 1
        chunked = "\n".join(c.text for c in plan.chunks)
        assert all(re.search(rf"CANARY-{i}\b", chunked) for i in range(3000))
        assert plan.text_length == len(text)
        results.append([(c.text, c.metadata) for c in plan.chunks])
    assert results[0] == results[1]  # cut where the file says, whatever the workers
    # Compressed (a rotated app.log.2.gz): decompressed into the scratch directory, read
    # in parts from there, as a whole read gives it; a small one is read whole.
    import gzip
    import random

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = ParseOptions(temp_dir=str(scratch))
    packed = tmp_path / "app.log.2.gz"
    packed.write_bytes(gzip.compress(data))
    whole_packed = parse_file(str(packed), packed.name, options)
    assert whole_packed.warnings[-1] == "decompressed from gzip"
    settings = _unwarmed(mode="process", workers=2)
    parsed, plan, calls = await _recorded(packed, settings, options, chunking)
    assert "read_text_part" in calls and "chunk_text" in calls
    assert (parsed.text, parsed.warnings) == (whole_packed.text, whole_packed.warnings)
    assert [c.text for c in plan.chunks] == [text for text, _ in results[0]]
    assert list(scratch.iterdir()) == []
    small = tmp_path / "small.log.gz"
    small.write_bytes(gzip.compress(b"CANARY-SMALL line\n" * 100))
    _, _, calls = await _recorded(small, settings, options, chunking)
    assert calls == ["parse_or_plan", "parse_and_chunk"]
    # Neither a small one nor one not of text is decompressed to be looked at.
    unpacked = _recording_unpack(monkeypatch)
    binary = tmp_path / "dump.bin.gz"
    binary.write_bytes(gzip.compress(b"\x00" + random.Random(1).randbytes(30_000)))
    assert len(small.read_bytes()) < 20_000 // 8 < len(binary.read_bytes())
    for looked in (small, binary):
        assert pool_module._long_text(str(looked), looked.name, options, 20_000) is None
    assert unpacked == []
    assert pool_module._long_text(str(packed), packed.name, options, 20_000) is not None
    assert unpacked == ["app.log.2.gz"]
    # Read whole, as it begins without text, and skipped as blank: blank lines and NUL
    # padding (space allocated, never written), blank lines alone.
    hole, blank = tmp_path / "hole.log", tmp_path / "blank.log"
    hole.write_bytes(b"\n" * 200 + (b"\x00" * 5000 + b"\n") * 30)
    blank.write_bytes(b"\n" * 20_000 + b" \t\n" * 30_000 + b"\n")
    for empty in (hole, blank):
        for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
            pool = ParserPool(settings, ParseOptions())
            try:
                with pytest.raises(BlankDocumentError):
                    await pool.parse_and_chunk(str(empty), empty.name, chunking, {})
                with pytest.raises(BlankDocumentError):
                    await pool.parse(str(empty), empty.name)
            finally:
                pool.close()
    # Threads read it whole; a text in a code page, JSON Lines and a table of
    # tab-separated values are read whole too.
    _, _, calls = await _recorded(path, ParseSettings(mode="thread"), ParseOptions(), chunking)
    assert "read_text_part" not in calls
    for name, body in (
        (
            "latin.log",
            "\n".join(x for x in lines if "blob" not in x)
            .replace("ok", "d\u00e9j\u00e0")
            .encode("cp1252"),
        ),
        ("events.jsonl", b"".join(b'{"n": %d, "ok": true}\n' % i for i in range(6000))),
        (
            "export.txt",
            b"sku\tname\tqty\n" + b"".join(b"A-%d\tbolt\t%d\n" % (i, i) for i in range(8000)),
        ),
    ):
        (tmp_path / name).write_bytes(body)
        assert len(body) > 4 * 20_000  # past four parts: read in parts, were it UTF-8 text
        settings = _unwarmed(mode="process", workers=2)
        _, _, calls = await _recorded(tmp_path / name, settings, ParseOptions(), chunking)
        assert "read_text_part" not in calls and "chunk_text" not in calls, name
    # The same fields in a .log are a log (a .txt alone is read as a table): in parts.
    fields = tmp_path / "fields.log"
    fields.write_bytes((tmp_path / "export.txt").read_bytes())
    parsed, _, calls = await _recorded(fields, settings, ParseOptions(), chunking)
    assert "read_text_part" in calls and parsed.file_type == "text"


async def test_a_long_log_is_chunked_in_runs_of_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log of a few hundred MB outlasted parse.timeout chunked in one task (3 MB of
    text a second, measured): past a size, runs of whole lines on every worker, cut
    where the text alone says, so any number of workers gives the same chunks."""
    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    lines = [f"2026-12-02T10:{i // 60:02d}:{i % 60:02d} worker {i % 7} CANARY-LOG-{i} done"
             for i in range(600)]  # fmt: skip
    lines[300:310] = ["the same line, over and over"] * 10
    path = tmp_path / "app.log"
    path.write_text("\n".join(lines) + "\n")
    text = path.read_text()
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 8000)
    plans = []
    for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
        _, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
        runs = calls[calls.index("parse_and_chunk") :].count("chunk_parsed")
        assert runs == -(-len(text) // 4000), calls  # ~34,000 characters, runs of 4,000
        plans.append(plan)
    plan = plans[0]
    assert [(c.text, c.metadata) for c in plan.chunks] == [
        (c.text, c.metadata) for c in plans[1].chunks
    ]
    # Offsets and line numbers are the whole file's; every line is in one chunk (no
    # overlap asked), the ten same lines too.
    for chunk in plan.chunks:
        start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
        assert text[start:end] == chunk.text
        assert chunk.metadata["line_start"] == text.count("\n", 0, start) + 1
        assert chunk.metadata["line_end"] == text.count("\n", 0, end - 1) + 1
    spans = [(c.metadata["line_start"], c.metadata["line_end"]) for c in plan.chunks]
    covered = sorted(n for first, last in spans for n in range(first, last + 1))
    assert covered == list(range(1, 601))
    _numbered_as_one(plan)
    assert plan.text_length == len(text)
    # The chunks are not one chunking's: past a run's start, lines pair up anew.
    whole = chunk_document(parse_file(str(path), path.name, ParseOptions()), chunking, {"k": "v"})
    assert plan.token_count == whole.token_count  # runs cut after a line break


async def _in_runs_alike(
    path: Path, chunking: Any, monkeypatch: pytest.MonkeyPatch, runs: int | None = None
) -> tuple[Any, Any]:
    """``path`` parsed, and chunked in runs of 4,000 characters (three or more; or
    ``runs`` parts) by two worker processes and by threads, with the same chunks: the
    parse and the plan."""
    from rag_ingest.parsers import pool as pool_module

    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 8000)
    plans = []
    for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
        parsed, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
        parts = calls[calls.index("parse_and_chunk") :].count("chunk_parsed")
        assert parts == (runs or -(-len(parsed.text) // 4000)) > 2, calls
        plans.append(plan)
    assert [(c.text, c.metadata) for c in plans[0].chunks] == [
        (c.text, c.metadata) for c in plans[1].chunks
    ]
    return parsed, plans[0]


async def test_json_lines_past_a_size_are_chunked_in_runs_of_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 107 MB JSON Lines export took 45 s to parse and chunk in one task: past a size,
    its records are chunked in runs on every worker (28 s), each run whole records."""
    import json

    from rag_ingest.settings import ChunkSettings

    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": i, "user": {"name": f"u{i % 9}"}, "text": f"CANARY-REC-{i} done"})
            + "\n"
            for i in range(400)
        )
    )
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    parsed, plan = await _in_runs_alike(path, chunking, monkeypatch)
    # Every record whole in one chunk, under its own heading; offsets the whole text's.
    text = parsed.text
    seen = []
    for chunk in plan.chunks:
        start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
        assert text[start:end] == chunk.text
        for n in re.findall(r"CANARY-REC-(\d+) ", chunk.text):
            assert f"## [{n}]\nid: {n}\n" in chunk.text
            seen.append(int(n))
        assert chunk.metadata["heading_path"] in chunk.text.split("\n")[0]
    assert sorted(seen) == list(range(400))
    _numbered_as_one(plan)


async def test_a_long_csv_is_chunked_in_runs_of_whole_records_under_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV of a few hundred MB outlasted parse.timeout in one task: past a size, runs
    of its rows on every worker, cut where csv reads a record's end (a quoted note holds
    line breaks), each run read with the file's dialect and under its header."""
    import csv

    from rag_ingest.settings import ChunkSettings, FileConfig

    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["order", "customer", "note"])
        for i in range(400):
            note = f"left at the door,\nCANARY-ROW-{i}" if i % 3 else f"CANARY-ROW-{i}"
            writer.writerow([i, f"c{i % 17}, Berlin", note])
    table = FileConfig(strategy="table", chunk_tokens=64, overlap_tokens=0)
    chunking = ChunkSettings(file_configs={"csv": table}, whole_document_tokens=0)
    _, plan = await _in_runs_alike(path, chunking, monkeypatch)
    seen = []
    for chunk in plan.chunks:
        header, *rows = list(csv.reader(chunk.text.splitlines(keepends=True), delimiter=";"))
        assert header == ["order", "customer", "note"]
        for order, customer, note in rows:  # whole records, three fields each
            assert note.endswith(f"CANARY-ROW-{order}") and customer.endswith(", Berlin")
            seen.append(int(order))
    assert seen == list(range(400)) and plan.warnings == []
    _numbered_as_one(plan)


async def test_a_long_sql_dump_is_chunked_in_runs_each_under_its_statement_s_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 65 MB mysqldump took 47.6 s in one task (past ~160 MB, parse.timeout): past a
    size, runs on every worker, a run cut among a statement's rows begun with its
    header, columns named from the CREATE TABLE."""
    from rag_ingest.settings import ChunkSettings, FileConfig

    rows = ",\n".join(f"({i}, 'c{i % 7}', 'CANARY-ROW-{i} (it''s; done)')" for i in range(400))
    path = tmp_path / "shop.sql"
    path.write_text(
        "CREATE TABLE `orders` (\n  `id` int NOT NULL,\n  `customer` text,\n  `note` text,\n"
        f"  PRIMARY KEY (`id`)\n);\nINSERT INTO `orders` VALUES\n{rows};\n"
    )
    code = FileConfig(strategy="code", chunk_tokens=64, overlap_tokens=0)
    chunking = ChunkSettings(file_configs={"code": code}, whole_document_tokens=0)
    _, plan = await _in_runs_alike(path, chunking, monkeypatch)
    seen = []
    for chunk in plan.chunks[1:]:
        header, *lines = chunk.text.split("\n")
        assert header == "INSERT INTO `orders` (`id`, `customer`, `note`) VALUES"
        for line in lines:
            found = re.fullmatch(r"\((\d+), 'c\d', 'CANARY-ROW-(\d+) \(it''s; done\)'\)[,;]", line)
            assert found and found[1] == found[2], line
            seen.append(int(found[1]))
    assert seen == list(range(400)) and plan.chunks[0].metadata["symbol"] == "orders"


async def test_a_long_markdown_file_is_chunked_in_runs_under_the_headings_above_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100 MB Markdown file took 28.3 s in one task (past ~400 MB, parse.timeout):
    past a size, runs cut at headings on every worker, each told the headings above
    its start, so its chunks' heading paths are the whole's."""
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings

    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 8000)
    path = tmp_path / "guide.md"
    path.write_text(
        "".join(
            f"# Part {n}\n\n"
            + "".join(
                f"## Topic {n}.{k}\n\nCANARY-{n}-{k} "
                + "word " * (30 + (n * 7 + k * 13) % 50)
                + "\n\n"
                for k in range(6)
            )
            for n in range(10)
        )
    )
    chunking = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    options = ParseOptions(markup_fast_size=1024)  # read as its source, not by docling
    plans = []
    for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
        parsed, plan, calls = await _recorded(path, settings, options, chunking)
        runs = calls[calls.index("parse_and_chunk") :].count("chunk_parsed")
        assert runs == -(-len(parsed.text) // 4000) > 2, calls
        plans.append(plan)
    assert [(c.text, c.metadata) for c in plans[0].chunks] == [
        (c.text, c.metadata) for c in plans[1].chunks
    ]
    seen = []
    for chunk in plans[0].chunks:
        for n, k in re.findall(r"CANARY-(\d+)-(\d+) ", chunk.text):
            assert chunk.metadata["heading_path"].startswith(f"Part {n}")
            seen.append((int(n), int(k)))
        assert (
            parsed.text[chunk.metadata["start_index"] : chunk.metadata["end_index"]] == chunk.text
        )
    assert seen == [(n, k) for n in range(10) for k in range(6)]


@pytest.mark.parametrize("kind", ["parquet", "one row group", "arrow stream", "avro"])
async def test_a_long_data_file_is_read_and_chunked_in_parts_of_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A 153 MB Parquet shard (231 million characters as CSV) went past
    parse.memory_limit read whole in one worker: past a size, parts of its rows are read
    and chunked on every worker, the whole text never in one process (91 s); read for its
    text alone, its parts are joined in the parent."""
    import csv
    import io

    import pyarrow
    import pyarrow.ipc as ipc
    import pyarrow.parquet as parquet

    from rag_ingest.errors import ParserCrashedError
    from rag_ingest.parsers import parse_file
    from rag_ingest.parsers import pool as pool_module
    from rag_ingest.settings import ChunkSettings, FileConfig

    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 8000)
    table = pyarrow.table(
        {
            "id": list(range(400)),
            "text": [f"CANARY-ROW-{i}, " + "word " * (5 + i % 11) for i in range(400)],
        }
    )
    name = {"arrow stream": "data-00000-of-00001.arrow", "avro": "events.avro"}
    path = tmp_path / name.get(kind, "shard.parquet")
    if kind == "avro":
        import fastavro

        fields = [{"name": "id", "type": "long"}, {"name": "text", "type": "string"}]
        schema = fastavro.parse_schema({"type": "record", "name": "R", "fields": fields})
        with path.open("wb") as f:
            fastavro.writer(f, schema, table.to_pylist(), codec="deflate", sync_interval=2000)
    elif kind == "arrow stream":
        with ipc.new_stream(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=64)
    else:
        parquet.write_table(table, path, row_group_size=1000 if kind == "one row group" else 64)
    table_config = FileConfig(strategy="table", chunk_tokens=64, overlap_tokens=0)
    chunking = ChunkSettings(file_configs={"csv": table_config}, whole_document_tokens=0)
    plans = []
    for settings in (_unwarmed(mode="process", workers=2), ParseSettings(mode="thread")):
        parsed, plan, calls = await _recorded(path, settings, ParseOptions(), chunking)
        parts = calls[calls.index("parse_and_chunk") + 1 :]
        # ~29,000 characters as CSV, ~33,000 bytes of data: parts of ~4,000.
        assert parts == ["chunk_rows"] * len(parts) and len(parts) >= len(parsed.text) // 4000
        # Its text alone (a loader's document mode): read in the same parts, joined.
        assert calls[: calls.index("parse_and_chunk")] == ["parse_or_plan"] + ["read_rows"] * len(
            parts
        )
        assert parsed.text == parse_file(str(path), path.name, ParseOptions()).text
        plans.append(plan)
    assert [(c.text, c.metadata) for c in plans[0].chunks] == [
        (c.text, c.metadata) for c in plans[1].chunks
    ]
    # Every row once, under the header.
    seen = []
    for chunk in plans[0].chunks:
        header, *rows = csv.reader(io.StringIO(chunk.text))
        assert header == ["id", "text"]
        seen += [int(row[0]) for row in rows if row[1].startswith(f"CANARY-ROW-{row[0]}, ")]
    assert seen == list(range(400))
    count = len(plans[0].chunks)
    assert [c.metadata["chunk_index"] for c in plans[0].chunks] == list(range(count))
    assert {(c.metadata["chunk_count"], c.metadata["k"]) for c in plans[0].chunks} == {(count, "v")}
    # Its tokens are the whole text's, which the pool's parse (not split) reads.
    assert plans[0].token_count == chunk_document(parsed, chunking, {}).token_count
    assert plans[0].text_length == len(parsed.text)
    if kind == "arrow stream":
        return  # known by its name only
    # Named as something else, it is still read by its bytes, in parts, and said so.
    renamed = tmp_path / "export.csv"
    renamed.write_bytes(path.read_bytes())
    pool = ParserPool(ParseSettings(mode="thread"), ParseOptions())
    try:
        calls = _recording(pool)
        got, plan = await pool.parse_and_chunk(str(renamed), renamed.name, chunking, {})
        text = await pool.parse(str(renamed), renamed.name)
    finally:
        pool.close()
    assert calls.count("chunk_rows") > 2 and len(plan.chunks) == len(plans[0].chunks)
    for said in (got.warnings, text.warnings):
        assert any(w.startswith("named .csv but is") for w in said), said
    assert calls.count("read_rows") > 2 and text.text == parsed.text
    # A plugin that claims its extension reads it, whatever its length.
    claimed = ParseOptions(plugins=((path.suffix, "tests.hostile_parsers:crash"),))
    pool = ParserPool(_unwarmed(mode="process", workers=1), claimed)
    try:
        with pytest.raises(ParserCrashedError):
            await pool.parse_and_chunk(str(path), path.name, chunking, {})
    finally:
        pool.close()


async def test_an_archive_inside_is_read_in_parts_of_its_own(tmp_path: Path) -> None:
    import gzip

    from rag_ingest.parsers import parse_file
    from rag_ingest.settings import ChunkSettings

    pages = {f"p{i}.md": f"# Page {i}\n\nCANARY-BIG-{i}\n".encode() for i in range(6)}
    outer = {
        "notes.md": b"# Notes\n\nCANARY-NOTES\n",
        "big.zip": docs.zip_bytes(pages),
        "tool.tar.gz": gzip.compress(docs.tar_bytes({"t.py": b"x = 'CANARY-TAR'\n"})),
        "broken.zip": (outer_broken := b"PK\x03\x04" + bytes(200)),
        "pictures.zip": docs.zip_bytes({"a.png": b"\x89PNG\r\n\x1a\n" + bytes(64)}),
        "after.md": b"# After\n\nCANARY-AFTER\n",
        "late.pdf": b"%PDF-1.7\n garbage",
        "report.zip": docs.docx_bytes("Report", {"Sales": "CANARY-DOCX sold well."}),
    }
    path = tmp_path / "bundle.zip"
    path.write_bytes(docs.zip_bytes(outer))
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    options = ParseOptions(temp_dir=str(unpack))
    whole = parse_file(str(path), path.name, options)
    parsed, _, calls = await _recorded(
        path, _unwarmed(mode="process", workers=2), options, ChunkSettings()
    )
    # Eight files, four archives inside by name and by content: planned, and the 6
    # files of big.zip read in 2 parts of their own, after the outer parts and beside
    # the other archives inside. report.zip is a DOCX: read in its part, as one.
    outer = ["read_part"] * (calls.index("parse_or_plan", 1) - 1)  # by the files' sizes
    inside = ["parse_or_plan"] * 4 + ["read_part"] * 2
    assert calls == [
        "parse_or_plan",
        *outer,
        *inside,
        "parse_and_chunk",
        *outer,
        *inside,
        "chunk_parsed",
    ]
    assert [s.text for s in parsed.segments] == [s.text for s in whole.segments]
    assert [s.member for s in parsed.segments] == [s.member for s in whole.segments]
    assert parsed.members == whole.members and parsed.members["big.zip/p5.md"][0] == "markdown"
    assert parsed.members["report.zip"][0] == "docx" and "CANARY-DOCX" in parsed.text
    assert parsed.warnings == whole.warnings
    assert [w.split(":")[:2] for w in parsed.warnings] == [
        ["broken.zip", " CorruptDocumentError"],
        ["late.pdf", " CorruptDocumentError"],
        ["1 of 8 files with no text skipped", " pictures.zip"],
        ["tool.tar.gz", " decompressed from gzip"],  # how it was read: after what went wrong
    ]
    order = ["CANARY-NOTES", "CANARY-BIG-0", "CANARY-BIG-5", "CANARY-TAR", "CANARY-AFTER"]
    assert [parsed.text.index(c) for c in order] == sorted(parsed.text.index(c) for c in order)
    assert list(unpack.iterdir()) == []  # every archive inside removed
    # The member cache keeps each archive inside, read apart, as one entry.
    cache = tmp_path / "cache" / "bundle.json"
    pool = ParserPool(_unwarmed(mode="process", workers=2), options)
    calls = _recording(pool)
    try:
        _, first = await pool.parse_and_chunk(str(path), path.name, ChunkSettings(), {}, str(cache))
        calls.clear()
        again, plan = await pool.parse_and_chunk(
            str(path), path.name, ChunkSettings(), {}, str(cache)
        )
    finally:
        pool.close()
    # Only broken.zip is tried again, as a file that failed is.
    assert calls == ["parse_and_chunk", *outer, "parse_or_plan", "chunk_parsed"]
    assert again.unchanged_members == 6  # all but the two that cannot be read
    assert [c.text for c in plan.chunks] == [c.text for c in first.chunks]
    # An archive inside that times out is a warning: the rest of the archive is read.
    slow = {"slow.zip": docs.zip_bytes({"a.note": b"CANARY-SLOW"}), "ok.md": b"CANARY-OK"}
    path.write_bytes(docs.zip_bytes(slow))
    hangs = ParseOptions(temp_dir=str(unpack), plugins=((".note", "tests.hostile_parsers:hang"),))
    # Its parsers imported at start (warm_up): ok.md's part, importing docling in a cold
    # worker, had passed a 3 s limit on a loaded machine. By CPU time: beside a busy loop
    # per core, the archive's own task passed 3 s by the wall clock (without bytecode).
    pool = ParserPool(ParseSettings(mode="process", workers=2, cpu_timeout=3), hangs)
    try:
        await pool.warm()
        got = await pool.parse(str(path), path.name)
    finally:
        pool.close()
    assert "CANARY-OK" in got.text and "CANARY-SLOW" not in got.text
    assert any(w.startswith("slow.zip: ParserTimeoutError") for w in got.warnings)
    # With nothing else read, the archive inside that failed fails the archive: not a
    # format with no text ("none with text"), skipped unread when listed.
    path.write_bytes(docs.zip_bytes({"broken.zip": outer_broken, "logo.png": b"\x89PNG"}))
    pool = ParserPool(_unwarmed(mode="process", workers=2), options)
    try:
        with pytest.raises(CorruptDocumentError, match=r"none read: 1 could not be \(broken"):
            await pool.parse(str(path), path.name)
    finally:
        pool.close()


async def test_each_part_of_an_archive_has_the_whole_time_limit(tmp_path: Path) -> None:
    from rag_ingest.errors import ParserTimeoutError

    # 8 files of 0.6 s each: 4.8 s whole, past the 3 s limit; 2.4 s a part on 2 workers.
    notes = {f"n{i}.note": f"CANARY-SLOW-{i}".encode() for i in range(8)}
    path = tmp_path / "notes.zip"
    path.write_bytes(docs.zip_bytes(notes))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = ParseOptions(
        plugins=((".note", "tests.hostile_parsers:slow_note"),), temp_dir=str(scratch)
    )
    pool = ParserPool(_unwarmed(mode="process", workers=2, timeout=3), options)
    try:
        # Started first: a warm-up step (0.6 s at most) could delay a part past 3 s.
        await pool.warm()
        parsed = await pool.parse(str(path), "notes.zip")
        assert all(f"CANARY-SLOW-{i}" in parsed.text for i in range(8))
        pool.split_archives = False  # one task, as before
        with pytest.raises(ParserTimeoutError):
            await pool.parse(str(path), "notes.zip")
        # The worker killed mid-task left its scratch files: removed with the document's.
        assert list(scratch.iterdir()) == []
    finally:
        pool.close()


@contextlib.asynccontextmanager
async def _warmed(**limits: float) -> AsyncIterator[ParserPool]:
    """A started pool of one worker under ``limits`` (parse.cpu_timeout, parse.timeout)."""
    pool = ParserPool(_unwarmed(mode="process", workers=1, **limits), ParseOptions())
    try:
        await pool.warm()
        yield pool
    finally:
        pool.close()


async def _stopped(pool: ParserPool, name: str, fn: Any, arg: float, how: str) -> float:
    """Seconds until ``fn(arg)`` was stopped, with a message saying ``how``."""
    start = time.monotonic()
    with pytest.raises(ParserTimeoutError) as stopped:
        await pool.run(name, fn, arg)
    assert str(stopped.value) == f"{name}: parsing {how}; its worker was killed"
    return time.monotonic() - start


async def test_a_task_is_stopped_for_the_cpu_it_uses_not_for_waiting() -> None:
    # Workers run at niceness 15: kept from a CPU by other work, a sound parse took many
    # times its CPU time by the wall clock. To the parent, such a task uses a little CPU
    # now and then, as this one does.
    async with _warmed(cpu_timeout=1.0, timeout=60.0) as pool:
        assert await pool.run("starved.txt", hostile_parsers.trickle, 2.5) < 1.0
        # A spinning hang is stopped for its CPU time, long before the wall clock's 60 s
        # (the message says which limit: on a loaded machine, past 1 s by the wall clock).
        how = "used over 1s of CPU time (parse.cpu_timeout)"
        assert 1.0 <= await _stopped(pool, "spin.txt", hostile_parsers.spin, 600, how) < 55
        # The pool carries on, with a new worker; the caller's cancel is a cancel.
        assert await pool.run("after.txt", hostile_parsers.spin, 0.05) > 0
        task = asyncio.ensure_future(pool.run("long.txt", time.sleep, 60))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_task_asleep_is_stopped_when_its_cpu_time_stands_still() -> None:
    # A deadlock uses no CPU at all, where a starved worker gets a share of a core.
    async with _warmed(cpu_timeout=1.0, timeout=60.0) as pool:
        how = "used no CPU time for 1s (parse.cpu_timeout): hung"
        assert 1.0 <= await _stopped(pool, "hung.txt", time.sleep, 60, how) < 30


async def test_a_task_is_stopped_by_the_wall_clock_in_the_end() -> None:
    # Using a little CPU now and then, it neither uses 2 s of it nor stands still before
    # the wall clock's 4 s.
    async with _warmed(cpu_timeout=2.0, timeout=4.0) as pool:
        how = "took over 4s (parse.timeout)"
        assert 4.0 <= await _stopped(pool, "slow.txt", hostile_parsers.trickle, 60, how) < 30


@pytest.mark.parametrize(
    ("readings", "asleep"),
    [
        # Queued first; then two threads busy (an OCR batch): the CPU limit is reached
        # before the wall clock's, and the task waits for that too.
        ([None, (0.05, 0.15), (0.1, 0.3)], False),
        # Kept from a CPU: a little CPU at each reading, stopped once it used the limit.
        ([(0.3, 0.02), (0.5, 0.04), (0.7, 0.1)], False),
        # Asleep: its CPU time stands still for the limit.
        ([(0.1, 0.01), (0.15, 0.01), (0.2, 0.01)], True),
    ],
)
async def test_the_rule_on_given_clock_readings(
    monkeypatch: pytest.MonkeyPatch, readings: list[tuple[float, float] | None], asleep: bool
) -> None:
    seen: list[tuple[float, float] | None] = []

    def used(table: Any, token: float) -> tuple[float, float] | None:
        seen.append(readings[min(len(seen), len(readings) - 1)])  # then the last again
        return seen[-1]

    monkeypatch.setattr(pool_module.task_clock, "used", used)
    future: Any = pool_module.concurrent.futures.Future()
    with pytest.raises(pool_module._CpuLimitReached) as stopped:
        await asyncio.wait_for(pool_module._within(future, None, 1.0, 0.1), 5)
    assert seen == readings and future.cancelled() and stopped.value.asleep is asleep


async def test_a_check_the_process_was_stopped_for_does_not_count_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-Z or a laptop asleep stops the workers too: their CPU time stands still then,
    # and a check that comes that late must not take them for hung.
    readings = [(0.1, 0.01), (1.5, 0.01), (1.55, 0.01), (1.6, 0.01)]
    seen: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()

    def used(table: Any, token: float) -> tuple[float, float]:
        seen.append(readings[min(len(seen), len(readings) - 1)])
        if len(seen) == 1:  # the loop stopped before the next check (due in 0.1 s)
            loop.call_later(0.01, time.sleep, 1.5)  # late by over a second
        return seen[-1]

    monkeypatch.setattr(pool_module.task_clock, "used", used)
    future: Any = pool_module.concurrent.futures.Future()
    with pytest.raises(pool_module._CpuLimitReached) as stopped:
        await asyncio.wait_for(pool_module._within(future, None, 1.0, 0.1), 5)
    # Without it, the second reading (1.4 s since the CPU time moved) was taken for hung.
    assert seen == readings and stopped.value.asleep


async def test_a_task_that_ends_leaves_no_check_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(pool_module.task_clock, "used", lambda table, token: calls.append(1))
    future: Any = pool_module.concurrent.futures.Future()
    asyncio.get_running_loop().call_later(0.25, future.set_result, "parsed")
    assert await pool_module._within(future, None, 1.0, 0.1) == "parsed"
    checks = len(calls)
    await asyncio.sleep(0.3)
    assert 1 <= checks == len(calls)


def test_thread_mode_waits_the_lower_limit_by_the_wall_clock() -> None:
    pool = ParserPool(ParseSettings(mode="thread", workers=1, cpu_timeout=0.5), ParseOptions())
    try:
        start = time.monotonic()
        with pytest.raises(ParserTimeoutError, match=r"over 0.5s \(parse.cpu_timeout\)$"):
            asyncio.run(pool.run("slow.txt", time.sleep, 2))
        assert time.monotonic() - start < 1.9
    finally:
        pool.close()


async def test_scanned_pages_are_read_in_batches_on_every_worker(tmp_path: Path) -> None:
    import pymupdf

    from rag_ingest.settings import ChunkSettings

    # 12 typed pages, then 10 scanned ones whose image carries a running header; each
    # page's body its own (pages alike but for digits would be running lines too).
    words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ]  # fmt: skip
    typed = [f"Typed page {w} CANARY-TEXT." for w in words]
    scans = [f"ACME scan archive\n\nScanned page {w} CANARY-SCAN." for w in words[:10]]
    doc = pymupdf.open("pdf", docs.pdf_bytes(typed))
    doc.insert_pdf(pymupdf.open("pdf", docs.scanned_pdf(scans)))
    path = tmp_path / "mixed.pdf"
    doc.save(path)
    settings = _unwarmed(mode="process", workers=2, pdf_split_pages=4, ocr="on")
    small = ChunkSettings(
        chunk_tokens=16, overlap_tokens=0, whole_document_tokens=0, min_chunk_tokens=0
    )
    parsed, plan, calls = await _recorded(path, settings, ParseOptions.of(settings), small)
    # Ranges parsed, then 10 scanned pages read in 2 batches on the 2 workers at once.
    ranges, batches = ["parse_range"] * 4, ["read_scans"] * 2
    assert calls == [
        *["parse_or_plan", *ranges, *batches],
        *["parse_and_chunk", *ranges, *batches, "chunk_parsed"],
    ]
    assert [(s.page, s.ocr) for s in parsed.segments] == [(n, n > 12) for n in range(1, 23)]
    assert parsed.parser.endswith("+ocr")
    assert "10 scanned page(s) read by OCR: 13-22" in parsed.warnings
    for word, segment in zip(words, parsed.segments[12:], strict=False):
        assert segment.text == f"Scanned page {word} CANARY-SCAN."  # the header dropped
    scanned = [c for c in plan.chunks if "CANARY-SCAN" in c.text]
    assert scanned and all(c.metadata["ocr"] and c.metadata["page_start"] > 12 for c in scanned)
    assert not any("ocr" in c.metadata for c in plan.chunks if "CANARY-SCAN" not in c.text)


async def test_a_document_s_pictures_are_read_in_batches_on_every_worker(tmp_path: Path) -> None:
    from rag_ingest.settings import ChunkSettings

    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    parts: list[str | bytes] = []
    for word in words:
        parts += [f"Typed paragraph {word}.", docs.scan_image([f"Pasted scan {word} CANARY-PIC"])]
    path = tmp_path / "pasted.docx"
    path.write_bytes(docs.docx_with_pictures(parts))
    settings = _unwarmed(mode="process", workers=2, ocr="on")
    parsed, plan, calls = await _recorded(
        path, settings, ParseOptions.of(settings), ChunkSettings()
    )
    # 6 pictures in 2 batches of 3 on the 2 workers at once; each picture's bytes
    # travel with its batch, and its text comes back to where it sits.
    batches = ["read_scans"] * 2
    assert calls == ["parse_or_plan", *batches, "parse_and_chunk", *batches, "chunk_parsed"]
    expected = []
    for word in words:
        expected += [(f"Typed paragraph {word}.", False), (f"Pasted scan {word} CANARY-PIC", True)]
    assert [(s.text, s.ocr) for s in parsed.segments] == expected
    assert "6 picture(s) read by OCR" in parsed.warnings
    assert "\U000f0000" not in "".join(c.text for c in plan.chunks)
    assert sum("CANARY-PIC" in c.text for c in plan.chunks) >= 1


@pytest.mark.parametrize("preload", [True, False])
async def test_preload_starts_the_workers_and_loads_the_model_before_start_returns(
    tmp_path: Path, preload: bool
) -> None:
    # A web backend's first document waited ~8 s for worker start-up and MiniLM's load
    # (measured); with pipeline.preload, start() pays both.
    from rag_ingest.models import HashEmbeddings
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.settings import Settings

    class Loading(HashEmbeddings):
        loads = 0

        def load(self) -> None:
            type(self).loads += 1

    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "parse": {"mode": "process", "workers": 2},
            "pipeline": {"preload": preload},
        }
    )
    async with DocumentProcessor(settings, embeddings=Loading()) as p:
        assert Loading.loads == int(preload)
        assert (p._pool._process_pool is not None) is preload
        if preload:
            # Each worker has finished its start-up (a task reaches a worker only then).
            workers = await p._pool.warm()
            assert len(workers) == 2 and os.getpid() not in workers
            # Niced below this process: its event loop and the store are scheduled first.
            nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + settings.parse.worker_nice)
            assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] == [nice, nice]
            note = tmp_path / "note.md"
            note.write_text("# Note\n\nCANARY preload.\n")
            result = await p.process_document(str(note), session_id="s")
            assert result.status == "ingested" and Loading.loads == 1


async def test_an_archive_cache_that_cannot_be_written_fails_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag_ingest.settings import ChunkSettings

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache's directory would go")
    path = tmp_path / "notes.zip"
    path.write_bytes(
        docs.zip_bytes({f"n{i}.md": f"# N{i}\n\nCANARY-{i}.\n".encode() for i in range(3)})
    )
    pool = ParserPool(ParseSettings(mode="thread", workers=1), ParseOptions())
    try:
        parsed, plan = await pool.parse_and_chunk(
            str(path), "notes.zip", ChunkSettings(), {}, member_cache=str(blocker / "c.json")
        )
    finally:
        pool.close()
    assert parsed.file_type == "archive" and len(plan.chunks) == 3
    assert "its archive cache was not written" in caplog.text


async def test_workers_write_their_scratch_files_under_temp_dir(tmp_path: Path) -> None:
    # docling's and PyMuPDF's own temporary files, in a worker, go where the caller said.
    pool = ParserPool(_unwarmed(mode="process", workers=1), ParseOptions(temp_dir=str(tmp_path)))
    try:
        assert await pool.run("probe", tempfile.gettempdir) == str(tmp_path)
    finally:
        pool.close()


def _notes(
    count: int,
    changed: int | None = None,
    inner: int = 0,
    log: int = 0,
    inner_changed: int | None = None,
) -> bytes:
    """A wiki export: ``count`` notes of a few chunks each, note ``changed`` reworded,
    with ``inner``, a zip of that many notes inside (its note ``inner_changed``
    reworded), and with ``log``, a log of that many lines."""
    files = {}
    for i in range(count):
        word = "latter" if i == changed else "former"
        lines = (f"Line {j} of note {i}, its {word} account of topic {j}." for j in range(40))
        body = " ".join(lines)
        files[f"wiki/n{i}.md"] = f"# Note {i}\n\n## Part\n\n{body}\n".encode()
    if inner:
        files["old/inner.zip"] = _notes(inner, inner_changed)
    if log:
        files["wiki/build.log"] = "".join(f"step {i} done\n" for i in range(log)).encode()
    return docs.zip_bytes(files)


def _recording_kept(pool: ParserPool, reader: str) -> tuple[list[dict[str, Any]], list[int]]:
    """From now on, the member-cache entries each ``reader`` task of ``pool`` is sent
    (its last argument), and how many kept chunk plans each group chunked is sent (none
    sent back)."""
    given: list[dict[str, Any]] = []
    chunked: list[int] = []
    run = pool.run

    async def recorded(name: str, fn: Any, *args: Any) -> Any:
        if fn.__name__ == reader:
            given.append(args[-1])
        if fn.__name__ != "chunk_parsed":
            return await run(name, fn, *args)
        chunked.append(len(args[0].plans or {}))
        parsed, plan = await run(name, fn, *args)
        assert parsed.plans is None  # not sent back
        return parsed, plan

    pool.run = recorded  # type: ignore[method-assign]
    return given, chunked


def _plan_fields(plan: Any) -> tuple[Any, ...]:
    return (
        [(c.text, c.metadata) for c in plan.chunks],
        plan.token_count,
        plan.chunked,
        (plan.dropped_duplicates, plan.dropped_empty, plan.joined_small),
        (plan.strategy, plan.warnings, plan.text_length, plan.masked),
    )


async def test_an_archive_s_unchanged_files_are_not_chunked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from rag_ingest import chunking
    from rag_ingest.settings import ChunkSettings

    chunked: list[str | None] = []
    real = chunking.chunk_document

    def recording(parsed: ParsedDocument, settings: Any, base: dict[str, Any]) -> Any:
        if parsed.file_type != "archive":
            chunked.append(parsed.segments[0].member)
        return real(parsed, settings, base)

    monkeypatch.setattr(chunking, "chunk_document", recording)
    path = tmp_path / "wiki.zip"
    cache = tmp_path / "cache" / "wiki.json"
    # The caller's metadata under the chunks' own keys, as chunk_document puts them.
    base = {"source": "s3://b/wiki.zip", "file_type": "caller's", "version": "2"}
    small = ChunkSettings(chunk_tokens=128)
    pool = ParserPool(ParseSettings(mode="thread", workers=1), ParseOptions())

    async def chunk(data: bytes, kept: Path | None, settings: ChunkSettings = small) -> Any:
        path.write_bytes(data)
        chunked.clear()
        member_cache = str(kept) if kept else None
        return (await pool.parse_and_chunk(str(path), path.name, settings, base, member_cache))[1]

    try:
        first = await chunk(_notes(3), cache)
        assert chunked == ["wiki/n0.md", "wiki/n1.md", "wiki/n2.md"] and len(first.chunks) > 6
        kept = json.loads(cache.read_text())["members"]
        # Each chunk kept as an offset into its file's text, not written out again.
        assert {text for entry in kept.values() for text, _ in entry["chunks"]["chunks"]} == {None}
        plan = await chunk(_notes(3, changed=1), cache)
        assert chunked == ["wiki/n1.md"]
        again = json.loads(cache.read_text())["members"]  # kept as they were
        assert {text for entry in again.values() for text, _ in entry["chunks"]["chunks"]} == {None}
        fresh = await chunk(_notes(3, changed=1), None)
        assert len(chunked) == 3 and _plan_fields(plan) == _plan_fields(fresh)
        assert plan.chunks[0].metadata["file_type"] == "markdown"
        # Under other chunk settings, every file is chunked again, and kept so.
        other = ChunkSettings(chunk_tokens=96)
        plan = await chunk(_notes(3, changed=1), cache, other)
        assert len(chunked) == 3
        assert _plan_fields(plan) == _plan_fields(await chunk(_notes(3, changed=1), None, other))
        assert len(plan.chunks) > len(fresh.chunks)
        # A kept plan not in the shape written: that file is chunked again.
        kept = json.loads(cache.read_text())
        kept["members"]["wiki/n0.md"]["chunks"]["chunks"] = "damaged"
        cache.write_text(json.dumps(kept))
        again = await chunk(_notes(3, changed=1), cache, other)
        assert chunked == ["wiki/n0.md"] and _plan_fields(again) == _plan_fields(plan)
        # A chunk whose text is not its file's (a key masked in it): kept written out.
        secret = {
            "key.md": b"# Keys\n\nThe key AKIAQ3EGUYZBK7P4XWMN opens it.\n",
            "o.md": b"# O\n\nok",
        }
        await chunk(docs.zip_bytes(secret), cache)
        kept = json.loads(cache.read_text())["members"]
        assert kept["key.md"]["chunks"]["chunks"][0][0].endswith("AKIA**************** opens it.")
        secret["o.md"] = b"# O\n\nchanged"
        plan = await chunk(docs.zip_bytes(secret), cache)
        assert chunked == ["o.md"]
        assert _plan_fields(plan) == _plan_fields(await chunk(docs.zip_bytes(secret), None))
        # An archive inside keeps its files' chunks in its entry.
        await chunk(_notes(2, inner=2), cache)
        assert chunked == [f"{d}wiki/n{i}.md" for d in ("", "old/inner.zip/") for i in (0, 1)]
        plan = await chunk(_notes(2, changed=0, inner=2), cache)
        assert chunked == ["wiki/n0.md"]
        assert _plan_fields(plan) == _plan_fields(await chunk(_notes(2, 0, inner=2), None))
        # A note saved again with Windows line ends, its text the same: not chunked.
        crlf = docs.zip_bytes({"a.md": b"# A\n\nOne note.\n", "b.md": b"# B\n\nAnother.\n"})
        await chunk(crlf, cache)
        again = docs.zip_bytes({"a.md": b"# A\r\n\r\nOne note.\r\n", "b.md": b"# B\n\nMore.\n"})
        plan = await chunk(again, cache)
        assert chunked == ["b.md"] and _plan_fields(plan) == _plan_fields(await chunk(again, None))
        # One that changed carries its files' chunks on: only its changed file's made.
        await chunk(_notes(2, changed=0, inner=2), cache)
        plan = await chunk(_notes(2, changed=0, inner=2, inner_changed=1), cache)
        assert chunked == ["old/inner.zip/wiki/n1.md"]
        fresh = await chunk(_notes(2, changed=0, inner=2, inner_changed=1), None)
        assert _plan_fields(plan) == _plan_fields(fresh)
        # And a mailbox inside, grown: only its new messages are parsed and chunked,
        # its others taken from its entry. It reads no cache file of its own (it had
        # read the whole of the zip's, for nothing).
        from rag_ingest.parsers import mail

        loaded: list[str | None] = []
        read: list[str] = []
        real_load, real_read = mail.load_member_cache, mail.parse_email
        monkeypatch.setattr(
            mail, "load_member_cache", lambda o: loaded.append(o.member_cache) or real_load(o)
        )
        monkeypatch.setattr(
            mail, "parse_email", lambda p, n, **k: read.append(n) or real_read(p, n, **k)
        )
        blank = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: Empty\n\n\n"
        await chunk(docs.zip_bytes({"Mail/All.mbox": blank + _letters(3)}), cache)
        read.clear()
        plan = await chunk(docs.zip_bytes({"Mail/All.mbox": blank + _letters(5)}), cache)
        assert loaded == [] and read == [f"All.mbox message {i}.eml" for i in (5, 6)]
        assert chunked == ["Mail/All.mbox/message 5: Letter 3", "Mail/All.mbox/message 6: Letter 4"]
        fresh = await chunk(docs.zip_bytes({"Mail/All.mbox": blank + _letters(5)}), None)
        assert _plan_fields(plan) == _plan_fields(fresh)
        read.clear()
        plan = await chunk(docs.zip_bytes({"Mail/All.mbox": blank + _letters(5)}), cache)
        assert (read, chunked) == ([], []) and _plan_fields(plan) == _plan_fields(fresh)
        # Two files of one name and length, apart: each its own chunks, though the cache
        # keeps one entry (the last's) for both.
        twice = io.BytesIO()
        with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
            for name, word in (("n.md", "former"), ("m.md", "middle"), ("n.md", "latter")):
                archive.writestr(name, f"# Note\n\nThe {word} text of a note named twice.\n")
        await chunk(twice.getvalue(), cache)
        plan = await chunk(twice.getvalue(), cache)
        assert chunked == ["n.md"]  # the first, whose bytes are not the entry's
        assert _plan_fields(plan) == _plan_fields(await chunk(twice.getvalue(), None))
        assert ["former" in plan.chunks[0].text, "latter" in plan.chunks[2].text] == [True] * 2
    finally:
        pool.close()


async def test_an_archive_read_in_parts_takes_its_files_kept_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from rag_ingest.settings import ChunkSettings

    # Chunked in groups of its files too, on both workers, as past 8 million characters.
    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 6000)

    path = tmp_path / "wiki.zip"
    cache = tmp_path / "cache" / "wiki.json"
    small = ChunkSettings(chunk_tokens=128)
    pool = ParserPool(_unwarmed(mode="process", workers=2), ParseOptions())
    given, chunked = _recording_kept(pool, "read_part")

    async def chunk(data: bytes, kept: Path | None) -> Any:
        path.write_bytes(data)
        given.clear()
        chunked.clear()
        member_cache = str(kept) if kept else None
        return (await pool.parse_and_chunk(str(path), path.name, small, {}, member_cache))[1]

    try:
        await chunk(_notes(8), cache)
        assert len(given) >= 2 and given == [{}] * len(given)  # no cache yet
        plan = await chunk(_notes(8, changed=5), cache)
        # Each part was sent its own files' entries, read once here.
        names = [name for entries in given for name in entries]
        assert sorted(names) == [f"wiki/n{i}.md" for i in range(8)] and len(given) >= 2
        # And each group its own files' kept plans (the changed file's too, carried on
        # to its new entry, though not made from its new text).
        assert len(chunked) >= 2 and sum(chunked) == 8
        fresh = await chunk(_notes(8, changed=5), None)
        assert given == [{}] * len(given)
        assert _plan_fields(plan) == _plan_fields(fresh)
        # What the cache keeps is what comes out: n2's kept chunk, altered, is taken.
        kept = json.loads(cache.read_text())
        kept["members"]["wiki/n2.md"]["chunks"]["chunks"][0][0] = "KEPT-PLAN"
        cache.write_text(json.dumps(kept))
        taken = await chunk(_notes(8, changed=5), cache)
        n2 = next(c for c in taken.chunks if c.metadata["archive_member"] == "wiki/n2.md")
        assert n2.text == "KEPT-PLAN"
        # An archive inside (read apart, in parts of its own): its files' kept chunks too.
        await chunk(_notes(8, inner=4), cache)
        kept = json.loads(cache.read_text())
        inner = kept["members"]["old/inner.zip"]["chunks"]
        assert sorted(inner) == [f"old/inner.zip/wiki/n{i}.md" for i in range(4)]
        inner["old/inner.zip/wiki/n1.md"]["chunks"][0][0] = "KEPT-INNER"
        cache.write_text(json.dumps(kept))
        taken = await chunk(_notes(8, changed=3, inner=4), cache)
        texts = [c.text for c in taken.chunks]
        assert "KEPT-INNER" in texts and sum(chunked) == 8 + 4  # n3's, carried on, too
        fresh = await chunk(_notes(8, changed=3, inner=4), None)
        assert len(texts) == len(fresh.chunks) and texts.count("KEPT-INNER") == 1
        # The archive inside changed: its files' plans carried on, its n1 chunked again.
        clean = cache.with_name("inner.json")  # none of the plans altered above
        await chunk(_notes(8, inner=4), clean)
        taken = await chunk(_notes(8, inner=4, inner_changed=1), clean)
        assert sum(chunked) == 8 + 4  # n1's carried on, as its new text did not make it
        fresh = await chunk(_notes(8, inner=4, inner_changed=1), None)
        assert _plan_fields(taken) == _plan_fields(fresh)
        # A file long enough to be chunked in runs of its own: its runs carry no plans.
        logged = cache.with_name("logged.json")  # none of the plans altered above
        await chunk(_notes(8, log=1000), logged)
        plan = await chunk(_notes(8, changed=3, log=1000), logged)
        assert len(chunked) > 4 and sum(chunked) == 8  # the groups' plans alone
        assert _plan_fields(plan) == _plan_fields(await chunk(_notes(8, 3, log=1000), None))
    finally:
        pool.close()


def _letters(count: int, changed: int | None = None, first: int = 0, tail: bytes = b"") -> bytes:
    """A mailbox of letters ``first`` to ``count - 1`` of a few chunks each, letter
    ``changed`` reworded, then ``tail``."""
    out = []
    for i in range(first, count):
        word = "latter" if i == changed else "former"
        lines = (f"Line {j} of letter {i}, its {word} account of topic {j}." for j in range(40))
        body = " ".join(lines)
        head = f"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: Letter {i}\n"
        out.append(f"{head}From: a@example.com\n\n{body}\n\n".encode())
    return b"".join(out) + tail


async def test_a_mailbox_s_unchanged_messages_are_not_read_or_chunked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mailbox grows (a mailing list's archive, a folder synced each night): with the
    member cache, only its new and changed messages are parsed and chunked again (3,000
    messages and 10 more had been read whole: 1.55 of 2.91 s)."""
    import hashlib
    import json

    from rag_ingest import chunking
    from rag_ingest.parsers import mail
    from rag_ingest.parsers.base import UNREAD_SCANS
    from rag_ingest.settings import ChunkSettings

    read: list[str] = []
    chunked: list[str | None] = []
    real_read, real_chunk = mail.parse_email, chunking.chunk_document

    def reading(path: str, name: str, **kwargs: Any) -> Any:
        read.append(name.rsplit(" message ", 1)[1].removesuffix(".eml"))
        return real_read(path, name, **kwargs)

    def recording(parsed: ParsedDocument, settings: Any, base: dict[str, Any]) -> Any:
        if parsed.file_type != "mbox":
            chunked.append(parsed.segments[0].member)
        return real_chunk(parsed, settings, base)

    monkeypatch.setattr(mail, "parse_email", reading)
    monkeypatch.setattr(chunking, "chunk_document", recording)
    path = tmp_path / "list.mbox"
    cache = tmp_path / "cache" / "list.json"
    base = {"source": "s3://b/list.mbox", "version": "2"}
    small = ChunkSettings(chunk_tokens=128)

    async def chunk(data: bytes, kept: Path | None, options: ParseOptions | None = None) -> Any:
        path.write_bytes(data)
        read.clear()
        chunked.clear()
        pool = ParserPool(ParseSettings(mode="thread", workers=1), options or ParseOptions())
        try:
            member_cache = str(kept) if kept else None
            got = await pool.parse_and_chunk(str(path), path.name, small, base, member_cache)
        finally:
            pool.close()
        return got[1]

    def fresh(data: bytes, options: ParseOptions | None = None) -> Any:
        return chunk(data, None, options)

    first = await chunk(_letters(4), cache)
    assert read == ["1", "2", "3", "4"] and len(chunked) == 4 and len(first.chunks) > 8
    kept = json.loads(cache.read_text())["members"]
    message = _letters(2, first=1)[_letters(2, first=1).index(b"\n") + 1 :]
    assert hashlib.sha256(message[:-1]).hexdigest() in kept  # by its bytes, as mailbox reads it
    # Two letters more: only they are read and chunked.
    plan = await chunk(_letters(6), cache)
    assert read == ["5", "6"] and chunked == ["message 5: Letter 4", "message 6: Letter 5"]
    assert _plan_fields(plan) == _plan_fields(await fresh(_letters(6)))
    assert plan.chunks[0].metadata["archive_member"] == "message 1: Letter 0"
    # One reworded.
    plan = await chunk(_letters(6, changed=2), cache)
    assert read == ["3"] and chunked == ["message 3: Letter 2"]
    assert _plan_fields(plan) == _plan_fields(await fresh(_letters(6, changed=2)))
    # The first deleted: the others renumbered, not read again, chunked under their names.
    plan = await chunk(_letters(6, changed=2, first=1), cache)
    assert read == [] and len(chunked) == 5
    assert _plan_fields(plan) == _plan_fields(await fresh(_letters(6, changed=2, first=1)))
    await chunk(_letters(6, changed=2, first=1), cache)
    assert (read, chunked) == ([], [])
    # A damaged entry, or one naming a part it does not list: that message is read again.
    for damage in ("segments", "member"):
        kept = json.loads(cache.read_text())
        entry = next(e for e in kept["members"].values() if e["message"].endswith("Letter 3"))
        if damage == "segments":
            entry["segments"] = "damaged"
        else:
            entry["segments"][0][3] = "message 3: Letter 3/elsewhere.txt"
        cache.write_text(json.dumps(kept))
        plan = await chunk(_letters(6, changed=2, first=1), cache)
        assert read == ["3"] and chunked == ["message 3: Letter 3"]
        assert _plan_fields(plan) == _plan_fields(await fresh(_letters(6, changed=2, first=1)))
    # A blank message is kept as blank; one that cannot be read, and one whose pictures
    # go to the describer (not kept), are read each time.
    picture = EmailMessage()
    picture["Subject"] = "Photo"
    picture.set_content("A photo of the whiteboard.")
    picture.add_attachment(os.urandom(4000), maintype="image", subtype="png", filename="b.png")
    tail = (
        b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: Empty\n\n\n"
        b"From a@example.com Mon Jan  1 00:00:00 2024\n\nno headers at all\n\n"
        b"From a@example.com Mon Jan  1 00:00:00 2024\n" + picture.as_bytes() + b"\n"
    )
    images = ParseOptions(max_images=1)
    described = cache.with_name("described.json")
    for _ in range(2):
        plan = await chunk(_letters(2, tail=tail), described, images)
    assert read == ["4", "5"], read
    assert chunked == ["message 5: Photo"]
    expected = await fresh(_letters(2, tail=tail), images)
    assert _plan_fields(plan) == _plan_fields(expected)
    for options, where in ((images, described), (ParseOptions(), cache.with_name("plain.json"))):
        for _ in range(2):
            pool = ParserPool(ParseSettings(mode="thread"), options)
            parsed, _ = await pool.parse_and_chunk(str(path), path.name, small, base, str(where))
            pool.close()
            assert any(w.startswith("message 4: CorruptDocumentError") for w in parsed.warnings)
            # Its picture, still there for the describer; and, unread by OCR, said so
            # (the pipeline reads such a mailbox again once OCR is on).
            assert len(parsed.images) == (options is images)
            assert parsed.warnings[0] == f"scans or images in 1 message(s) {UNREAD_SCANS}"


async def test_a_mailbox_read_in_parts_takes_its_messages_kept_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from rag_ingest.settings import ChunkSettings

    monkeypatch.setattr(pool_module, "_SPLIT_MAILBOX_BYTES", 10_000)
    monkeypatch.setattr(pool_module, "_MAILBOX_PART_BYTES", 12_000)
    monkeypatch.setattr(pool_module, "_CHUNK_RUN_CHARS", 12_000)
    path = tmp_path / "list.mbox"
    cache = tmp_path / "cache" / "list.json"
    small = ChunkSettings(chunk_tokens=128)
    pool = ParserPool(_unwarmed(mode="process", workers=2), ParseOptions())
    given, chunked = _recording_kept(pool, "parse_messages")

    async def chunk(data: bytes, kept: Path | None, name: str = "list.mbox") -> Any:
        where = path.with_name(name)
        where.write_bytes(data)
        given.clear()
        chunked.clear()
        member_cache = str(kept) if kept else None
        return (await pool.parse_and_chunk(str(where), name, small, {}, member_cache))[1]

    try:
        await chunk(_letters(12), cache)
        assert len(given) >= 3 and given == [{}] * len(given)  # no cache yet
        plan = await chunk(_letters(12, changed=5), cache)
        # Each part was sent its own messages' entries, all but the changed one's.
        subjects = [e["message"] for entries in given for e in entries.values()]
        assert subjects == [f"message {i + 1}: Letter {i}" for i in range(12) if i != 5]
        assert [len(entries) for entries in given] != [11]  # in parts
        assert len(chunked) >= 2 and sum(chunked) == 11
        assert _plan_fields(plan) == _plan_fields(await chunk(_letters(12, changed=5), None))
        # What the cache keeps is what comes out: an altered kept chunk and parse.
        kept = json.loads(cache.read_text())
        entries = {e["message"]: e for e in kept["members"].values()}
        entries["message 3: Letter 2"]["chunks"]["message 3: Letter 2"]["chunks"][0][0] = "KEPT"
        segment = entries["message 9: Letter 8"]["segments"][0]
        segment[0] = segment[0].replace("Line 0 of letter 8", "KEPT-PARSE of letter 8")
        cache.write_text(json.dumps(kept))
        taken = await chunk(_letters(12, changed=5), cache)
        texts = [c.text for c in taken.chunks]
        assert "KEPT" in texts and any("KEPT-PARSE" in t for t in texts)

        # In a zip (read apart, in parts of its own): its messages from the zip's entry.
        def takeout(count: int) -> bytes:
            return docs.zip_bytes({"Mail/All.mbox": _letters(count), "index.md": b"# Hi"})

        zipped = cache.with_name("zipped.json")
        await chunk(takeout(12), zipped, "takeout.zip")
        assert len(given) >= 3 and given == [{}] * len(given)
        plan = await chunk(takeout(13), zipped, "takeout.zip")
        subjects = [e["message"] for entries in given for e in entries.values()]
        assert subjects == [f"message {i + 1}: Letter {i}" for i in range(12)]
        assert sum(chunked) == 1 + 12  # index.md's plan and the 12 messages'
        assert _plan_fields(plan) == _plan_fields(await chunk(takeout(13), None, "takeout.zip"))
        # What the entry keeps is what comes out: message 3's text, altered, is taken.
        kept = json.loads(zipped.read_text())
        for segment in kept["members"]["Mail/All.mbox"]["segments"]:
            segment[0] = segment[0].replace("Line 0 of letter 2,", "KEPT-IN-ZIP")
        zipped.write_text(json.dumps(kept))
        taken = await chunk(takeout(14), zipped, "takeout.zip")
        assert sum("KEPT-IN-ZIP" in c.text for c in taken.chunks) == 1
    finally:
        pool.close()


async def test_a_mailbox_or_archive_is_chunked_in_groups_of_its_files_on_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5.4-million-character mailbox in a zip, read in parts, was chunked in one task (1.5 s,
    the other worker idle): past a size, an archive's or mailbox's files are chunked in
    groups on every worker, whichever way they were read, the chunks as one task's."""
    from rag_ingest.parsers import parse_file
    from rag_ingest.settings import ChunkSettings

    monkeypatch.setattr(pool_module, "_MEMBER_RUN_CHARS", 5_000)
    chunking = ChunkSettings(chunk_tokens=128)
    box = tmp_path / "list.mbox"
    box.write_bytes(_letters(6))  # read whole: chunked in one worker before
    notes = tmp_path / "notes.zip"
    notes.write_bytes(_notes(6))  # read in parts
    for path in (box, notes):
        whole = parse_file(str(path), path.name, ParseOptions())
        assert 5_000 < len(whole.text) < 20_000
        expected = chunk_document(whole, chunking, {"k": "v"})
        # One worker: in one task, the mailbox's where it was read, the zip's after.
        for workers, groups in ((2, 2), (1, int(path == notes))):
            pool = ParserPool(_unwarmed(mode="process", workers=workers), ParseOptions())
            calls = _recording(pool)
            try:
                _, plan = await pool.parse_and_chunk(str(path), path.name, chunking, {"k": "v"})
            finally:
                pool.close()
            assert calls.count("chunk_parsed") == groups, (path.name, calls)
            assert _plan_fields(plan) == _plan_fields(expected)


async def test_a_workers_library_temp_files_go_in_its_documents_scratch(tmp_path: Path) -> None:
    # A library's own temp files (docling's, PyMuPDF's) went to the worker's temp dir,
    # where one a killed worker left stayed; and a loader's kept workers, outliving the
    # load that staged them, had them in the temp dir itself.
    home, load = tmp_path / "home", tmp_path / "load"
    home.mkdir()
    load.mkdir()
    note = tmp_path / "a.note"
    note.write_text("text")
    options = ParseOptions(
        temp_dir=str(home), plugins=((".note", "tests.hostile_parsers:temp_home"),)
    )
    pool = ParserPool(_unwarmed(mode="process", workers=1), options)
    try:
        in_load = await pool.parse(str(note), note.name, scratch_under=str(load))
        in_home = await pool.parse(str(note), note.name)
    finally:
        pool.close()
    said = Path(in_load.text.strip())
    assert said.parent == load and said.name.startswith("rag-ingest-parse-")
    said = Path(in_home.text.strip())
    assert said.parent == home and said.name.startswith("rag-ingest-parse-")
    assert list(load.iterdir()) == [] and list(home.iterdir()) == []
