"""A zip of many files: rag_ingest's parser pool vs unzipping and loading each file the
usual way.

The archive: N four-page PDFs of prose and N Markdown notes (``--files N``, default
40). Parsed and chunked four ways, one after the other on the same machine:

- ``unzip-and-load``: what a user writes without us: ``extractall`` into a temp dir,
  then each PDF through pymupdf4llm (what PyMuPDF4LLMLoader calls) and each note read
  as text, all split by ``RecursiveCharacterTextSplitter`` (512/64 tokens), one process;
- ``rag_ingest-whole``: ``ParserPool.parse_and_chunk`` with the archive in one task
  (as before parts were built; 2 workers, one of them idle);
- ``rag_ingest-1`` / ``rag_ingest-2``: the archive read in parts (at most 16 files a
  part, each under parse.timeout) on 1 or 2 worker processes.

Printed: the best of ``--repeat`` runs (default 3) in seconds, files/s, chunks, and the
ratios.

    python benchmarks/archive.py [--files 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag_ingest.parsers.base import ParseOptions
from rag_ingest.parsers.pool import ParserPool
from rag_ingest.settings import ChunkSettings, ParseSettings
from tests import docs


def make_archive(path: Path, files: int) -> int:
    members = {}
    for i in range(files):
        pages = [
            f"Report {i}, part {j}.\n" + docs.LONG_PROSE[j * 2500 : (j + 1) * 2500]
            for j in range(4)
        ]
        members[f"reports/r{i:03d}.pdf"] = docs.pdf_bytes(pages)
        note = f"# Note {i}\n\n## Context\n\n{docs.LONG_PROSE[:1500]}\n\n## Next\n\nShip it.\n"
        members[f"notes/n{i:03d}.md"] = note.encode()
    path.write_bytes(docs.zip_bytes(members))
    return len(members)


def unzip_and_load(path: Path) -> int:
    import pymupdf4llm
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag_ingest.tokens import get_encoding

    get_encoding("cl100k_base")  # the same offline vocabulary, loaded where tiktoken looks
    pymupdf4llm.use_layout(False)
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        "cl100k_base", chunk_size=512, chunk_overlap=64
    )
    chunks = 0
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(tmp)
        for root, _, names in os.walk(tmp):
            for name in sorted(names):
                file = os.path.join(root, name)
                if name.endswith(".pdf"):
                    pages = pymupdf4llm.to_markdown(file, page_chunks=True, show_progress=False)
                    texts = [p["text"] for p in pages]
                else:
                    texts = [Path(file).read_text()]
                chunks += sum(len(splitter.split_text(t)) for t in texts)
    return chunks


async def rag_ingest(path: Path, workers: int, parts: bool, repeat: int) -> tuple[float, int]:
    pool = ParserPool(ParseSettings(mode="process", workers=workers), ParseOptions())
    pool.split_archives = parts
    chunking = ChunkSettings()
    try:
        warm = Path(tempfile.mkdtemp()) / "warm.zip"
        warm.write_bytes(docs.zip_bytes({"a.pdf": docs.pdf_bytes(["warm"]), "b.md": b"# B"}))
        await pool.parse_and_chunk(str(warm), "warm.zip", chunking, {})
        await pool.warm()  # the rest of each worker's start-up, not in the timing
        best, chunks = float("inf"), 0
        for _ in range(repeat):
            start = time.perf_counter()
            _, plan = await pool.parse_and_chunk(str(path), path.name, chunking, {})
            best = min(best, time.perf_counter() - start)
            chunks = len(plan.chunks)
        return best, chunks
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=40, help="PDFs (and as many notes)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.zip"
        files = make_archive(path, args.files)
        print(
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; a {path.stat().st_size / 1e6:.1f} MB zip of "
            f"{files} files; best of {args.repeat}\n"
        )
        rows: dict[str, tuple[float, int]] = {}
        unzip_and_load(path)  # imports, outside the timed runs
        best, chunks = float("inf"), 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            chunks = unzip_and_load(path)
            best = min(best, time.perf_counter() - start)
        rows["unzip-and-load"] = (best, chunks)
        for label, workers, parts in (
            ("rag_ingest-whole", 2, False),
            ("rag_ingest-1", 1, True),
            ("rag_ingest-2", 2, True),
        ):
            rows[label] = asyncio.run(rag_ingest(path, workers, parts, args.repeat))
        print("| run | seconds | files/s | chunks |\n|---|---|---|---|")
        for label, (seconds, chunks) in rows.items():
            print(f"| {label} | {seconds:.2f} | {files / seconds:.1f} | {chunks} |")
        base: Any = rows["unzip-and-load"][0]
        print()
        for label in ("rag_ingest-whole", "rag_ingest-1", "rag_ingest-2"):
            print(f"{label} vs unzip-and-load: {base / rows[label][0]:.2f}x")
        whole = rows["rag_ingest-whole"][0]
        print(f"rag_ingest-2 in parts vs one task: {whole / rows['rag_ingest-2'][0]:.2f}x")
        print(
            f"rag_ingest 2 workers vs 1: {rows['rag_ingest-1'][0] / rows['rag_ingest-2'][0]:.2f}x"
        )


if __name__ == "__main__":
    main()
