"""Parser plugins that misbehave, for the worker-isolation tests (imported in workers)."""

from __future__ import annotations

import os
import time
from typing import Any


def crash(path: str, name: str, options: Any) -> Any:
    os.abort()


def hang(path: str, name: str, options: Any) -> Any:
    time.sleep(3600)


def recurse(path: str, name: str, options: Any) -> Any:
    """A reader walking a nesting without end, as one does a hostile file's."""

    def down(depth: int) -> int:
        return down(depth + 1)

    return down(0)


def stall() -> int:
    """A worker's start-up that never ends (in place of the pool's own wait for it)."""
    time.sleep(3600)
    return os.getpid()


def blow_up(path: str, name: str, options: Any) -> Any:
    hog = bytearray(8 * 1024 * 1024 * 1024)  # past the worker's address-space limit
    return hog


def spin(seconds: float) -> float:
    """``seconds`` of this process's CPU time spent; the wall-clock seconds that took."""
    cpu, wall = time.process_time(), time.monotonic()
    while time.process_time() - cpu < seconds:
        pass
    return time.monotonic() - wall


def trickle(seconds: float) -> float:
    """``seconds`` by the wall clock, a little of the CPU in each tenth of a second: a
    task kept waiting for a CPU, as the parent sees it. Returns the CPU seconds used."""
    cpu, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        spin(0.01)
        time.sleep(0.1)
    return time.process_time() - cpu


def nap(seconds: float) -> float:
    """A parse that takes ``seconds`` of wall time (for pool scheduling tests)."""
    time.sleep(seconds)
    return seconds


class TwoPartError(Exception):
    """An error whose ``__init__`` wants two arguments, as many libraries' do: it pickles,
    but cannot be rebuilt from its message alone."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")


def raise_two_part(seconds: float) -> Any:
    time.sleep(seconds)
    raise TwoPartError("page 3", "xref table damaged")


def return_two_part() -> Any:
    return TwoPartError("page 3", "xref table damaged")


def raise_missing_extra() -> Any:
    from rag_ingest.errors import MissingExtraError

    raise MissingExtraError("PDF parsing", "pdf")


def slow_text(path: str, name: str, options: Any) -> Any:
    """Plain text, after 2 s: a document that stays staged a while."""
    from rag_ingest.parsers.text import parse_text

    time.sleep(2)
    return parse_text(path, name)


def slow_note(path: str, name: str, options: Any) -> Any:
    """A '.note' file's text, after 0.6 s (a slow parse, for the archive-parts tests)."""
    from rag_ingest.parsers.text import parse_text

    time.sleep(0.6)
    return parse_text(path, name)


def loaded_encodings() -> list[str]:
    """The tiktoken encodings a worker has loaded so far (for the warm-up test)."""
    import tiktoken.registry

    return sorted(tiktoken.registry.ENCODINGS)


def loaded_modules(*names: str) -> dict[str, bool]:
    """Which of ``names`` a worker has imported so far (not those it blocked)."""
    import sys

    return {name: sys.modules.get(name) is not None for name in names}


def warm_state() -> tuple[bool, bool]:
    """Whether a worker has finished its start-up, and imported docling's Word backend."""
    import sys

    from rag_ingest.parsers import pool

    return pool._warmed.is_set(), "docling.backend.msword_backend" in sys.modules


def import_version(name: str) -> str:
    """Import ``name`` in a worker (as a plugin would) and return its version."""
    import importlib

    return str(importlib.import_module(name).__version__)


def svg_text(path: str, name: str, options: Any) -> Any:
    """A caller's parser for a type we skip: the text inside an SVG's <text> elements."""
    import re

    from rag_ingest.parsers.base import ParsedDocument, Segment

    with open(path, encoding="utf-8") as f:
        words = re.findall(r"<text[^>]*>([^<]*)</text>", f.read())
    return ParsedDocument(file_type="svg", segments=[Segment("\n".join(words))], parser="svg")


def logged_note(path: str, name: str, options: Any) -> Any:
    """A '.note' file's text, its name appended to $RAG_INGEST_TEST_PARSE_LOG (which
    files were parsed, from any worker)."""
    from rag_ingest.parsers.text import parse_text

    with open(os.environ["RAG_INGEST_TEST_PARSE_LOG"], "a") as log:
        log.write(name + "\n")
    return parse_text(path, name)


def broken_font_map(path: str, name: str, options: Any) -> Any:
    """A file's text with a lone surrogate in it, as PyMuPDF read one from a LaTeX PDF's
    font map (texlive's encguide.pdf)."""
    from rag_ingest.parsers.base import ParsedDocument, Segment

    with open(path, encoding="utf-8") as f:
        text = f.read().replace("@", "\ud80c")
    return ParsedDocument(file_type="text", segments=[Segment(text)], parser="glyphs")


def counted_text(path: str, name: str, options: Any) -> Any:
    """A file's text, each call logged to ``$RAG_INGEST_TEST_PARSES`` (its name and
    text); a text that says FAIL fails as damaged."""
    import os
    import time

    from rag_ingest.errors import CorruptDocumentError
    from rag_ingest.parsers.base import ParsedDocument, Segment

    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(os.environ["RAG_INGEST_TEST_PARSES"], "a", encoding="utf-8") as log:
        log.write(f"{name} {text.split()[0]}\n")
    time.sleep(0.2)  # long enough that a copy arriving meanwhile would parse beside it
    if "FAIL" in text:
        raise CorruptDocumentError(f"{name}: damaged on purpose")
    return ParsedDocument(file_type="text", segments=[Segment(text)], parser="counted")


def rect_equality(path: str) -> tuple[str, bool]:
    """In a worker: whose ``Rect.__eq__`` PyMuPDF has once a PDF is parsed there, and
    whether two equal Rects still compare equal."""
    import pymupdf

    from rag_ingest.parsers.pdf import parse_pdf

    parse_pdf(path, "p.pdf")
    return pymupdf.Rect.__eq__.__module__, pymupdf.Rect(1, 2, 3, 4) == pymupdf.Rect(1, 2, 3, 4)


def noisy() -> str:
    """Warnings as libraries give them in a worker: a Python warning (openpyxl's) and a
    log record of their own logger (docling's), neither naming the document."""
    import logging
    import warnings

    warnings.warn("Unknown extension is not supported and will be removed", stacklevel=1)
    logging.getLogger("docling.backend.msword_backend").warning("Warning: image cannot be found")
    return "done"


def temp_home(path: str, name: str, options: Any) -> Any:
    """A parser that leaves a temp file of its own, as a killed library's are left: its
    text names the directory the worker's ``tempfile`` gives."""
    import tempfile

    from rag_ingest.parsers.base import ParsedDocument, Segment

    with tempfile.NamedTemporaryFile(suffix=".scratch", delete=False) as left:
        left.write(b"x")
    return ParsedDocument(
        file_type="text", segments=[Segment(tempfile.gettempdir())], parser="temp_home"
    )
