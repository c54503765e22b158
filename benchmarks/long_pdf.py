"""One long PDF, end to end: rag_ingest (split into page ranges, and whole) vs LangChain.

A generated N-page PDF (text, headings, a ruled table every 50 pages) on local disk,
ingested into Chroma with the same embedder three ways, each in a fresh process:

- ``split``: ``DocumentProcessor.process_document`` with the default
  ``parse.pdf_split_pages`` (page ranges on every worker at once);
- ``whole``: the same with ``pdf_split_pages=0`` (one worker parses it all);
- ``baseline``: what PyMuPDF4LLMLoader does (``pymupdf4llm.to_markdown`` with
  ``page_chunks=True``), a token-sized ``RecursiveCharacterTextSplitter``, then
  ``Chroma.add_documents``.

    python benchmarks/long_pdf.py [--pages 1000] [--repeat 3] [--embedder hash|minilm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import MiB, baseline_store, child_config, hwm, run_child


def make_pdf(path: Path, pages: int) -> None:
    import pymupdf

    rng = random.Random(5)
    words = [
        "ingest",
        "vector",
        "bucket",
        "latency",
        "session",
        "parser",
        "chunk",
        "token",
        "report",
        "policy",
    ]
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page()
        page.insert_text((72, 60), f"Chapter {number}", fontsize=18)
        for line in range(38):
            text = " ".join(rng.choice(words) for _ in range(11))
            page.insert_text((72, 90 + 18 * line), text, fontsize=10)
        if number % 50 == 0:
            for r in range(3):
                for c in range(3):
                    rect = pymupdf.Rect(72 + c * 120, 780 - r * 20, 192 + c * 120, 800 - r * 20)
                    page.draw_rect(rect, color=(0, 0, 0))
    doc.save(path)


async def run_rag_ingest(path: str, store: str, embedder: str, split: bool) -> dict[str, Any]:
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.settings import Settings

    parse: dict[str, Any] = {"mode": "process", "workers": os.cpu_count()}
    if not split:
        parse["pdf_split_pages"] = 0
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": store},
            "models": {"embedder": embedder},
            "parse": parse,
            "pipeline": {"preload": True},  # the workers' start-up outside the timing
        }
    )
    async with DocumentProcessor(settings) as p:
        await p.process_document(path, session_id="warm")  # workers and store warmed
        before = hwm()
        start = time.perf_counter()
        result = await p.process_document(path, session_id="bench")
        seconds = time.perf_counter() - start
    assert result.status == "ingested", result.message
    return {
        "seconds": seconds,
        "chunks": result.total_chunks,
        "pages": result.pages,
        "rss": hwm() - before,
        "stages": {k: round(v, 2) for k, v in result.seconds.items()},
    }


def run_baseline(path: str, store: str, embedder: str) -> dict[str, Any]:
    import pymupdf4llm
    from langchain_core.documents import Document

    pymupdf4llm.use_layout(False)
    vectorstore, splitter = baseline_store(store, embedder)
    pymupdf4llm.to_markdown(path, pages=[0], show_progress=False)  # imports warmed
    before = hwm()
    start = time.perf_counter()
    pages = pymupdf4llm.to_markdown(path, page_chunks=True, show_progress=False)
    docs = [Document(p["text"], metadata={"page": i}) for i, p in enumerate(pages)]
    split = splitter.split_documents(docs)
    vectorstore.add_documents(split)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "chunks": len(split), "pages": len(pages), "rss": hwm() - before}


def child(which: str) -> None:
    cfg = child_config()
    with tempfile.TemporaryDirectory() as store:
        if which == "baseline":
            result = run_baseline(cfg["path"], store, cfg["embedder"])
        else:
            result = asyncio.run(
                run_rag_ingest(cfg["path"], store, cfg["embedder"], which == "split")
            )
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; medians")
    parser.add_argument("--embedder", default="hash", choices=["hash", "minilm"])
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    order = ["split", "whole", "baseline"]
    runs: dict[str, list[dict[str, Any]]] = {which: [] for which in order}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "long.pdf"
        make_pdf(path, args.pages)
        cfg = {"path": str(path), "embedder": args.embedder}
        for _ in range(args.repeat):  # interleaved: drift hits every run alike
            for which in order:
                runs[which].append(run_child(__file__, [which], cfg, timeout=3000))
                print(f"  {which}: {runs[which][-1]}", file=sys.stderr)
    median = {w: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for w, rs in runs.items()}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"\nMachine: {machine}; one {args.pages}-page PDF from local disk; embedder: "
        f"{args.embedder}; median of {args.repeat} interleaved runs\n"
    )
    print("| run | seconds | pages/s | chunks | peak RSS growth (MiB) |")
    print("|---|---|---|---|---|")
    for which, r in median.items():
        print(
            f"| {which} | {r['seconds']:.1f} | {r['pages'] / r['seconds']:.1f} | {r['chunks']} "
            f"| {r['rss'] / MiB:.0f} |"
        )
    split, whole, base = median["split"], median["whole"], median["baseline"]
    print(
        f"\nsplit vs whole (page ranges on {os.cpu_count()} workers): "
        f"{whole['seconds'] / split['seconds']:.2f}x"
    )
    print(f"split vs LangChain baseline: {base['seconds'] / split['seconds']:.2f}x")
    print(f"split stages (s): {split['stages']}")


if __name__ == "__main__":
    main()
