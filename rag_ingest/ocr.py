"""Text recognition for scanned pages and images: RapidOCR with the PP-OCRv6 ONNX models
its wheel ships (Apache-2.0; extra 'ocr'), run on CPU, nothing downloaded.

A page comes back as text in reading order: boxes cut into blocks where a wide blank
band runs between them (recursive XY-cut), so two columns of prose are read one after
the other while a table's cells stay in rows; a block's lines are joined top to bottom,
a word hyphenated at a line's end is joined, and a short line set larger than the body
becomes a Markdown heading.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import re
import statistics
import threading
from dataclasses import dataclass
from typing import Any

from rag_ingest.errors import MissingExtraError

__all__ = ["Lie", "OcrOptions", "TextBox", "available", "layout", "letters", "recognize"]


@dataclass(frozen=True)
class OcrOptions:
    """How scans are read (picklable: it goes to worker processes)."""

    dpi: int = 150  # pages are rendered at this resolution for recognition
    threads: int = 1  # onnxruntime threads per recognition
    images: bool = True  # image files (PNG, JPEG, TIFF, ...) are read as scanned pages
    pictures: bool = True  # pictures inside DOCX, PPTX, XLSX and ODF files are read too
    # A page is rendered no larger than this many pixels on its longer side (a 100-inch
    # poster page at 150 dpi would be 675 MB of pixels).
    max_side: int = 4000


@dataclass(frozen=True)
class TextBox:
    """A line (or part of one) the recogniser found, in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def letters(text: str) -> int:
    """How many letters and digits ``text`` has: what tells a page's text from none."""
    return sum(map(str.isalnum, text))


def no_onnxruntime_telemetry() -> None:
    """Keep onnxruntime (RapidOCR's, PyMuPDF's layout models') from reporting usage.

    Its Linux builds (1.32 here) keep a device ID and a queue of usage events in
    ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` and upload them to
    mobile.events.data.microsoft.com, unless ``ORT_DISABLE_TELEMETRY`` is set before it
    starts: with it they write nothing (measured). A caller's own setting is kept.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def available() -> bool:
    """Whether the 'ocr' extra is installed (looked up without importing it)."""
    return importlib.util.find_spec("rapidocr") is not None


_engines: dict[int, Any] = {}
# One recognition at a time per engine: RapidOCR keeps per-call settings on the object.
_LOCK = threading.Lock()


def _engine(threads: int) -> Any:
    engine = _engines.get(threads)
    if engine is None:
        no_onnxruntime_telemetry()
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise MissingExtraError("reading scanned pages (OCR)", "ocr") from exc
        engine = RapidOCR(
            params={
                "Global.log_level": "error",
                # The 0/180 degree line classifier turned upright English lines over and
                # read them as noise (PP-OCRv4 and v6 alike, measured); scans are upright.
                "Global.use_cls": False,
                # Detection on the page scaled to 960 px at most (PaddleOCR's setting for
                # documents): at RapidOCR's default (the page's full size) a page holding
                # one or two short 9 pt lines came back empty at 150 and 200 dpi, while
                # 960 px found them and 6-12 pt paragraphs word for word, in half the time
                # (measured). Lines are still read from the full-size page.
                "Det.limit_type": "max",
                "Det.limit_side_len": 960,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        _engines[threads] = engine
    return engine


# A page read with less confidence than this (per character, on average) may be upside
# down: measured, an upright page of prose read at 0.995, the same page turned over at
# 0.67 and turned sideways at 0.61, all of it noise.
_UPRIGHT_SCORE = 0.85


@dataclass
class Lie:
    """How a document's last page read well turned (quarter turns, as ``numpy.rot90``):
    a scan's pages mostly lie alike (a stack fed upside down), so the next is read that
    way first, rather than upright first and turned second."""

    turns: int = 0


def recognize(pixels: Any, threads: int = 1, lie: Lie | None = None) -> list[TextBox]:
    """The text boxes in an image (an RGB ``numpy`` array, height x width x 3), read
    the right way up: a page scanned upside down or sideways (most lines taller than
    wide, or read with little confidence) is read turned as well, and the turn read
    with the most confidence kept. ``lie``: the turn to try first, and where the turn
    kept is told."""
    import numpy as np

    tried: dict[int, tuple[list[TextBox], float]] = {}

    def read(turns: int) -> tuple[list[TextBox], float]:
        if turns not in tried:
            turned = np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels
            tried[turns] = _read(turned, threads)
        return tried[turns]

    if lie is not None and lie.turns:
        boxes, score = read(lie.turns)
        if boxes and score >= _UPRIGHT_SCORE and not _sideways(boxes):
            return boxes
    boxes, score = read(0)
    sideways = _sideways(boxes)
    kept = 0
    if boxes and (score < _UPRIGHT_SCORE or sideways):
        best = -1.0 if sideways else score
        for turns in (1, 3) if sideways else (2,):
            turned_score = read(turns)[1]
            if turned_score >= _UPRIGHT_SCORE:  # read well: the other way need not be tried
                kept = turns
                break
            if turned_score > best:
                kept, best = turns, turned_score
    if lie is not None:
        lie.turns = kept
    return tried[kept][0]


def _sideways(boxes: list[TextBox]) -> bool:
    """Whether most lines of a few characters or more stand taller than wide: text
    turned sideways (a lone digit's box stands tall on an upright page too)."""
    worded = [b for b in boxes if len(b.text) >= 4]
    return sum(b.height > b.x1 - b.x0 for b in worded) * 2 > len(worded) > 0


def _read(pixels: Any, threads: int) -> tuple[list[TextBox], float]:
    """The text boxes as the image lies, and their confidence per character."""
    with _LOCK:
        result = _engine(threads)(pixels)
    if result.boxes is None or result.txts is None or result.scores is None:
        return [], 0.0
    read = []
    weighted = 0.0
    for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        text = " ".join(str(text).split())
        if text:
            read.append(([(float(p[0]), float(p[1])) for p in quad], text))
            weighted += float(score) * len(text)
    # A page scanned a little askew has each line's box slanted: upright, the boxes of
    # lines 1.5 degrees off overlapped the next line's and were read as one row, out of
    # order (ocrmypdf's skew.pdf). They are read in the page's own frame.
    turn = -_skew([quad for quad, _ in read])
    cos, sin = math.cos(turn), math.sin(turn)
    boxes = []
    for quad, text in read:
        xs = [x * cos - y * sin for x, y in quad]
        ys = [x * sin + y * cos for x, y in quad]
        boxes.append(TextBox(min(xs), min(ys), max(xs), max(ys), text))
    characters = sum(len(b.text) for b in boxes)
    return boxes, weighted / characters if characters else 0.0


# Lines slanted more than this are read askew (measured: lines 1 degree off were still
# read in order, 1.25 degrees off not); past the most, the page is sideways or the lines
# are set at an angle on purpose (a stamp), turned as a whole or not at all.
_SKEW_LEAST = math.radians(0.5)
_SKEW_MOST = math.radians(15)


def _skew(quads: list[list[tuple[float, float]]]) -> float:
    """The page's slant in radians (clockwise positive, as image rows run down): the
    median of its long lines' top edges (the recogniser's corners run clockwise from
    the top left; a short box's edge is slanted by its letters' shapes, up to 2 degrees
    on an upright page); 0 when small, too steep, or there are no long lines."""
    angles = []
    for (x0, y0), (x1, y1), _, (_, y3) in (q for q in quads if len(q) == 4):
        width, height = math.hypot(x1 - x0, y1 - y0), abs(y3 - y0)
        if width >= 8 * height > 0:
            angles.append(math.atan2(y1 - y0, x1 - x0))
    if not angles:
        return 0.0
    angle = statistics.median(angles)
    return angle if _SKEW_LEAST <= abs(angle) <= _SKEW_MOST else 0.0


def layout(boxes: list[TextBox], headings: bool = True) -> str:
    """The boxes as text in reading order: blocks separated by a blank line. Without
    ``headings``, a line set large stays a line (a picture's inside a document, whose
    own headings make the chunks' heading paths)."""
    if not boxes:
        return ""
    height = statistics.median(b.height for b in boxes)
    blocks = _cut(boxes, height)
    return "\n\n".join(_block_text(block, height, headings) for block in blocks)


def _gaps(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The blank stretches between the union of ``spans``, as (start, end)."""
    found: list[tuple[float, float]] = []
    spans = sorted(spans)
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start > reach:
            found.append((reach, start))
        reach = max(reach, end)
    return found


def _prose(boxes: list[TextBox]) -> bool:
    """Lines of running text (long for their height), not a table's short cells."""
    return statistics.median((b.x1 - b.x0) / max(b.height, 1.0) for b in boxes) >= 8


def _cut(boxes: list[TextBox], height: float) -> list[list[TextBox]]:
    """The boxes in blocks, in reading order: each part cut again until none can be
    (a stack, not recursion: a page can hold a thousand boxes)."""
    blocks: list[list[TextBox]] = []
    todo = [boxes]
    while todo:
        part = todo.pop()
        halves = _split(part, height)
        if halves is None:
            blocks.append(part)
        else:
            todo += reversed(halves)  # the first half is taken next
    return blocks


def _split(boxes: list[TextBox], height: float) -> list[list[TextBox]] | None:
    """An XY-cut at the widest blank band: across the page where it is at least a line
    high (a paragraph or section break), down the page where it is a gutter between
    columns of prose on both sides; None where there is no such band."""
    if len(boxes) < 2:
        return None
    best: tuple[float, str, float] | None = None  # width, axis, position
    for start, end in _gaps([(b.y0, b.y1) for b in boxes]):
        if end - start >= height and (best is None or end - start > best[0]):
            best = (end - start, "y", (start + end) / 2)
    for start, end in _gaps([(b.x0, b.x1) for b in boxes]):
        if end - start >= 1.5 * height and (best is None or end - start > best[0]):
            middle = (start + end) / 2
            left = [b for b in boxes if b.x1 <= middle]
            right = [b for b in boxes if b.x0 >= middle]
            if _prose(left) and _prose(right):
                best = (end - start, "x", middle)
    if best is None:
        return None
    _, axis, at = best
    if axis == "y":
        return [[b for b in boxes if b.y1 <= at], [b for b in boxes if b.y0 >= at]]
    return [[b for b in boxes if b.x1 <= at], [b for b in boxes if b.x0 >= at]]


_HYPHENATED = re.compile(r"[^\W\d_]-$")
# Text this many times the page's median line height is set large (a heading).
_LARGE = 1.3


def _block_text(boxes: list[TextBox], height: float, headings: bool = True) -> str:
    """A block's lines top to bottom, each line's boxes left to right (cells far apart
    joined by ' | ')."""
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        middle = (box.y0 + box.y1) / 2
        if rows and rows[-1][0].y0 <= middle <= rows[-1][0].y1:
            rows[-1].append(box)
        else:
            rows.append([box])
    lines: list[str] = []
    for row in rows:
        row.sort(key=lambda b: b.x0)
        line = row[0].text
        for before, box in itertools.pairwise(row):
            # Cells are apart by twice the page's line height, or twice the words' own
            # when both are set large: a heading spaces its words wider ("Chapter | III"
            # had been read as two cells). Body text's boxes vary too much in height for
            # their own to be the measure (two columns were joined line by line).
            smaller = min(before.height, box.height)
            apart = 2 * (smaller if smaller >= _LARGE * height else height)
            line += (" | " if box.x0 - before.x1 > apart else " ") + box.text
        if lines and _HYPHENATED.search(lines[-1]) and line[:1].isalnum():
            # 'inges-' 'tion' is one word; 'CANARY-' 'SCAN' one compound, its hyphen kept.
            word, _, rest = line.partition(" ")
            lines[-1] = (lines[-1][:-1] if line[:1].islower() else lines[-1]) + word
            if not rest:
                continue
            line = rest
        lines.append(line)
    text = "\n".join(lines)
    tall = max(b.height for b in boxes)
    alone = len(rows) == 1 and len(text) <= 80 and " | " not in text
    if headings and alone and tall >= _LARGE * height:
        return "## " + text
    return text
