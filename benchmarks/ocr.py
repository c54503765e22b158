"""Scanned PDF pages read by OCR: rag_ingest's parser pool vs RapidOCR used the usual way.

A generated N-page scan (each page rendered at 150 dpi to a grey image with no text
layer): dense prose in Helvetica, Times and Courier at 9-12 pt, and every fifth page
two short lines. Read three ways, one after the other on the same machine:

- ``rapidocr-defaults``: what a user writes: each page rendered at 150 dpi and given to
  ``RapidOCR()`` with its default settings, one page after another, its lines joined;
- ``rag_ingest-1`` / ``rag_ingest-2``: ``ParserPool.parse`` in worker processes (1 or
  2), pages 8 to a task, our detection and line-classifier settings and reading order.

With ``--docx``, the same page images are pasted into a DOCX instead (a scan pasted
into a report), with a photo (no text) after every fourth: ``rapidocr-defaults`` takes
the pictures out of the archive (``word/media``) and reads each; ``rag_ingest-N``
parses the DOCX, its pictures read 8 to a task; ``rag_ingest-no-ocr`` is the DOCX as
docling reads it without OCR (as before this was built, and as text-only DOCX loaders
read it).

Printed: seconds, pages/s, and word accuracy (words matched in order against the text
each page was made from, as a share of those words).

    python benchmarks/ocr.py [--pages 40] [--docx]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import os
import platform
import random
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = [
    "invoice", "contract", "supplier", "delivery", "payment", "storage", "network", "latency",
    "region", "budget", "quarter", "revenue", "customer", "policy", "signed", "approved",
    "within", "thirty", "days", "of", "the", "order", "and", "for", "by", "on", "in", "12",
    "2026", "4,100", "percent",
]  # fmt: skip


def make_scan(path: Path, pages: int) -> list[list[str]]:
    """Write the scan; return each page's words in reading order."""
    import pymupdf

    rng = random.Random(11)
    source = pymupdf.open()
    truth: list[list[str]] = []
    for number in range(pages):
        page = source.new_page()
        font = ("helv", "tiro", "cour")[number % 3]
        size = 9 + number % 4
        if number % 5 == 4:
            lines = [f"Page {number + 1} note", "see the attached schedule"]
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(400))
            lines = textwrap.wrap(text, int(1000 / size) if font != "cour" else int(780 / size))
            lines = lines[: int(640 / (size * 1.5))]
        y = 72.0
        for line in lines:
            page.insert_text((60, y), line, fontname=font, fontsize=size)
            y += size * 1.5
        truth.append(" ".join(lines).split())
    scan = pymupdf.open()
    for page in source:
        image = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY).tobytes("png")
        out = scan.new_page(width=page.rect.width, height=page.rect.height)
        out.insert_image(out.rect, stream=image)
    scan.save(path)
    return truth


def make_docx(path: Path, pages: int) -> list[list[str]]:
    """A report of the scan's page images, each under a caption, a photo after every
    fourth; return each page's words."""
    import io

    import docx
    import pymupdf
    from docx.shared import Inches
    from PIL import Image, ImageDraw

    scan = path.with_suffix(".pdf")
    truth = make_scan(scan, pages)
    report = docx.Document()
    for number, page in enumerate(pymupdf.open(scan), start=1):
        report.add_paragraph(f"Figure {number}: the signed page as received.")
        image = page.get_images()[0][0]
        report.add_picture(
            io.BytesIO(pymupdf.Pixmap(page.parent, image).tobytes("png")), width=Inches(6)
        )
        if number % 4 == 0:
            photo = Image.new("RGB", (1600, 1200), (40, 110, 60))
            ImageDraw.Draw(photo).ellipse((300, 200, 1100, 900), (200, 180, 60))
            buffer = io.BytesIO()
            photo.save(buffer, "JPEG")
            report.add_picture(io.BytesIO(buffer.getvalue()), width=Inches(6))
    report.save(str(path))
    return truth


def accuracy(truth: list[list[str]], pages: list[str]) -> float:
    matched = total = 0
    for words, text in zip(truth, pages, strict=True):
        blocks = difflib.SequenceMatcher(None, words, text.split(), autojunk=False)
        matched += sum(b.size for b in blocks.get_matching_blocks())
        total += len(words)
    return matched / total


def run_defaults(path: Path) -> tuple[float, list[str]]:
    import numpy as np
    import pymupdf
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error"})
    engine(np.full((64, 64, 3), 255, np.uint8))  # models loaded outside the timing
    start = time.perf_counter()
    texts = []
    for page in pymupdf.open(path):
        pix = page.get_pixmap(dpi=150)
        pixels = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)
        result = engine(pixels)
        texts.append("\n".join(result.txts or ()))
    return time.perf_counter() - start, texts


def run_defaults_docx(path: Path) -> tuple[float, list[str]]:
    """Each picture in ``word/media`` read by ``RapidOCR()`` with its defaults; the
    page images' texts (PNG; the photos are JPEG), in order."""
    import io
    import re
    import zipfile

    import numpy as np
    from PIL import Image
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error"})
    engine(np.full((64, 64, 3), 255, np.uint8))  # models loaded outside the timing
    start = time.perf_counter()
    texts = []
    with zipfile.ZipFile(path) as archive:
        media = [n for n in archive.namelist() if n.startswith("word/media/")]
        media.sort(key=lambda n: int(re.sub(r"\D", "", n) or 0))
        for member in media:
            pixels = np.asarray(Image.open(io.BytesIO(archive.read(member))).convert("RGB"))
            result = engine(pixels)
            if member.endswith(".png"):
                texts.append("\n".join(result.txts or ()))
    return time.perf_counter() - start, texts


async def run_pool(
    path: Path, workers: int, pages: int, ocr: bool = True
) -> tuple[float, list[str]]:
    from rag_ingest.errors import DocumentError
    from rag_ingest.parsers.base import ParseOptions
    from rag_ingest.parsers.pool import ParserPool
    from rag_ingest.settings import ParseSettings

    settings = ParseSettings(mode="process", workers=workers, ocr="on" if ocr else "off")
    pool = ParserPool(settings, ParseOptions.of(settings))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = Path(tmp) / "warm.pdf"
            make_scan(warm, workers)  # workers started, OCR models loaded, outside the timing
            with contextlib.suppress(DocumentError):  # without OCR a scan has no text
                await pool.parse(str(warm), "warm.pdf")
            await pool.warm()  # the rest of each worker's start-up, not in the timing
        start = time.perf_counter()
        parsed = await pool.parse(str(path), path.name)
        seconds = time.perf_counter() - start
    finally:
        await asyncio.to_thread(pool.close)
    if path.suffix == ".docx":  # each page image's text, found after its caption
        by_figure: dict[int, str] = {}
        figure = 0
        for segment in parsed.segments:
            if segment.ocr:
                by_figure[figure] = by_figure.get(figure, "") + "\n" + segment.text
            for line in segment.text.splitlines():
                if line.startswith("Figure "):
                    figure = int(line.split()[1].rstrip(":"))
        return seconds, [by_figure.get(n, "") for n in range(1, pages + 1)]
    by_page = {s.page: s.text for s in parsed.segments}
    return seconds, [by_page.get(n, "") for n in range(1, pages + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--docx", action="store_true", help="the pages pasted into a DOCX")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.docx:
            path = Path(tmp) / "report.docx"
            truth = make_docx(path, args.pages)
            defaults = run_defaults_docx
        else:
            path = Path(tmp) / "scan.pdf"
            truth = make_scan(path, args.pages)
            defaults = run_defaults
        runs: list[tuple[str, Any]] = [
            ("rapidocr-defaults", lambda: defaults(path)),
            ("rag_ingest-1", lambda: asyncio.run(run_pool(path, 1, args.pages))),
            ("rag_ingest-2", lambda: asyncio.run(run_pool(path, 2, args.pages))),
        ]
        if args.docx:
            no_ocr = (
                "rag_ingest-no-ocr",
                lambda: asyncio.run(run_pool(path, 2, args.pages, False)),
            )
            runs.append(no_ocr)
        for name, run in runs:
            seconds, texts = run()
            rows.append((name, seconds, accuracy(truth, texts)))
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    what = f"a {args.pages}-page scan (150 dpi, grey)"
    if args.docx:
        what += f" pasted into a DOCX with {args.pages // 4} photos"
    print(f"\nMachine: {machine}; {what}, models warmed\n")
    print("| run | seconds | pages/s | word accuracy |")
    print("|---|---|---|---|")
    for name, seconds, share in rows:
        print(f"| {name} | {seconds:.1f} | {args.pages / seconds:.2f} | {share:.1%} |")
    base = rows[0][1]
    for name, seconds, _ in rows[1:3]:
        print(f"{name} vs rapidocr-defaults: {base / seconds:.2f}x")
    print(f"2 workers vs 1: {rows[1][1] / rows[2][1]:.2f}x")


if __name__ == "__main__":
    main()
