"""Scanned PDF pages read by OCR: rag_ingest's parser pool vs RapidOCR used the usual way.

A generated N-page scan (each page rendered at 150 dpi to a grey image with no text
layer): dense prose in Helvetica, Times and Courier at 9-12 pt, and every fifth page
two short lines. Read three ways, one after the other on the same machine:

- ``rapidocr-defaults``: what a user writes: each page rendered at 150 dpi and given to
  ``RapidOCR()`` with its default settings, one page after another, its lines joined;
- ``rag_ingest-1`` / ``rag_ingest-2``: ``ParserPool.parse`` in worker processes (1 or
  2), pages 8 to a task, our detection and line-classifier settings and reading order.

Printed: seconds, pages/s, and word accuracy (words matched in order against the text
each page was made from, as a share of those words).

    python benchmarks/ocr.py [--pages 40]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def run_pool(path: Path, workers: int, pages: int) -> tuple[float, list[str]]:
    from rag_ingest.parsers.base import ParseOptions
    from rag_ingest.parsers.pool import ParserPool
    from rag_ingest.settings import ParseSettings

    settings = ParseSettings(mode="process", workers=workers, ocr="on")
    pool = ParserPool(settings, ParseOptions.of(settings))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = Path(tmp) / "warm.pdf"
            make_scan(warm, workers)  # workers started, OCR models loaded, outside the timing
            await pool.parse(str(warm), "warm.pdf")
        start = time.perf_counter()
        parsed = await pool.parse(str(path), "scan.pdf")
        seconds = time.perf_counter() - start
    finally:
        await asyncio.to_thread(pool.close)
    by_page = {s.page: s.text for s in parsed.segments}
    return seconds, [by_page.get(n, "") for n in range(1, pages + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=40)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        truth = make_scan(path, args.pages)
        runs: list[tuple[str, Any]] = [
            ("rapidocr-defaults", lambda: run_defaults(path)),
            ("rag_ingest-1", lambda: asyncio.run(run_pool(path, 1, args.pages))),
            ("rag_ingest-2", lambda: asyncio.run(run_pool(path, 2, args.pages))),
        ]
        for name, run in runs:
            seconds, texts = run()
            rows.append((name, seconds, accuracy(truth, texts)))
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nMachine: {machine}; a {args.pages}-page scan (150 dpi, grey), models warmed\n")
    print("| run | seconds | pages/s | word accuracy |")
    print("|---|---|---|---|")
    for name, seconds, share in rows:
        print(f"| {name} | {seconds:.1f} | {args.pages / seconds:.2f} | {share:.1%} |")
    base = rows[0][1]
    for name, seconds, _ in rows[1:]:
        print(f"{name} vs rapidocr-defaults: {base / seconds:.2f}x")
    print(f"2 workers vs 1: {rows[1][1] / rows[2][1]:.2f}x")


if __name__ == "__main__":
    main()
