"""Summaries and image descriptions: what a first ingest and a re-ingest ask of the models.

The corpus: ``--decks`` DOCX decks (default 20), each of five sections with the
company logo after each (the same picture) and a chart of its own, and ``--notes``
Markdown notes (default 20). The models are stand-ins that wait as a paid one would
(``--summary-delay`` 0.5 s a summary call, ``--image-delay`` 1 s a picture) and count
their calls; the embedder is ``hash``.

Each way runs with a fresh store: an ingest, then ``reingest=True`` (as after an
upgrade), both timed:

- ``reuse``: ``models.reuse_answers`` (the default): an answer is kept in the ledger
  and the same question, of the same model, is not asked again; documents in flight
  that show the same picture wait for the first one's answer;
- ``no-reuse``: ``reuse_answers=False``: every document asks for its own (a picture
  shown twice in one document is still described once).

    python benchmarks/answers.py [--decks 20] [--notes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings
from tests import docs


class _Model:
    """A chat model that answers after ``delay`` seconds and counts its calls."""

    def __init__(self, kind: str, delay: float) -> None:
        self.kind, self.delay, self.calls = kind, delay, 0

    async def ainvoke(self, _: Any) -> Any:
        from langchain_core.messages import AIMessage

        self.calls += 1
        await asyncio.sleep(self.delay)
        return AIMessage(content=f"A short {self.kind} {self.calls}.")


def corpus(root: Path, decks: int, notes: int) -> None:
    logo = docs.photo(300, 200)
    for d in range(decks):
        parts: list[str | bytes] = []
        for s in range(5):
            parts += [f"Deck {d}, section {s}: region {s} grew {d + s} percent.", logo]
        parts.append(docs.photo(200 + 4 * d, 150))  # a chart of its own
        (root / f"deck{d:02}.docx").write_bytes(docs.docx_with_pictures(parts))
    for n in range(notes):
        paragraphs = (
            f"Paragraph {i} of note {n}: the team shipped item {i * n}." for i in range(30)
        )
        (root / f"note{n:02}.md").write_text(f"# Note {n}\n\n" + "\n\n".join(paragraphs))


async def run(root: Path, store: Path, reuse: bool, delays: tuple[float, float]) -> list[str]:
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(store)},
            "models": {"embedder": "hash", "reuse_answers": reuse},
        }
    )
    summarizer, vision = _Model("summary", delays[0]), _Model("description", delays[1])
    rows = []
    async with DocumentProcessor(settings, summarizer=summarizer, image_describer=vision) as p:
        for label, again in (("ingest", False), ("reingest", True)):
            summaries, pictures = summarizer.calls, vision.calls
            started = time.perf_counter()
            report = await p.process_many([root], session_id="s", reingest=again)
            took = time.perf_counter() - started
            t = report.totals
            assert t["failed"] == 0, [r.message for r in report.results if not r.success]
            rows.append(
                f"| {'reuse' if reuse else 'no-reuse'} | {label} | {t['ingested']} "
                f"| {summarizer.calls - summaries} | {vision.calls - pictures} "
                f"| {t['reused_answers']} | {took:.1f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decks", type=int, default=20)
    parser.add_argument("--notes", type=int, default=20)
    parser.add_argument("--summary-delay", type=float, default=0.5)
    parser.add_argument("--image-delay", type=float, default=1.0)
    args = parser.parse_args()
    delays = (args.summary_delay, args.image_delay)
    print(
        f"# {args.decks} decks (a logo five times, a chart each), {args.notes} notes; "
        f"stand-in models of {delays[0]} s a summary call, {delays[1]} s a picture; "
        f"embedder hash; Python {platform.python_version()}"
    )
    print("| way | run | ingested | summary calls | picture calls | answers kept | s |")
    print("|---|---|---|---|---|---|---|")
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        corpus(root, args.decks, args.notes)
        for reuse in (False, True):
            rows = asyncio.run(run(root, Path(tmp) / f"store-{reuse}", reuse, delays))
            for row in rows:
                print(row)
            seconds[reuse] = [float(r.rsplit("|", 2)[1]) for r in rows]
    for i, label in enumerate(("ingest", "reingest")):
        print(f"{label}: reuse {seconds[False][i] / seconds[True][i]:.1f}x faster than no-reuse")


if __name__ == "__main__":
    main()
