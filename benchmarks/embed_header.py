"""Retrieval with chunks embedded under their file and section (``chunk.embed_header``)
vs their text alone (what LangChain's loaders and splitters embed).

The corpus is real and on every machine that installs rag_ingest: the READMEs
(Markdown long descriptions) of the Python packages installed beside it, one file
per package, chunked by rag_ingest with its MiniLM sizes. Many share their section
names ('Installation', 'License', 'Usage') and much of their wording. Three kinds of
question, each with one right chunk (a chunk whose text equals it counts as a hit):

- ``quote``: a sentence of the chunk, as it stands;
- ``named``: the package's name, then that sentence ('httpx: ...');
- ``section``: the package's name and the chunk's section ('httpx Installation'),
  any chunk of that section a hit.

Printed: hit@1, hit@5 and MRR for each, with and without headers, and their ratio.
The embedder is all-MiniLM-L6-v2 (the default ``minilm``; needs the extra).

    python benchmarks/embed_header.py [--packages 150] [--questions 400]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import random
import re
import tempfile
import time
from pathlib import Path

SENTENCE = re.compile(r"[A-Z][^.!?\n`|#*\[\]<>]{40,200}[.!?](?=\s)")


def readmes(limit: int) -> dict[str, str]:
    """Package name -> its Markdown README, for the installed packages that have one
    of some length, in name order."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        meta = dist.metadata
        name = (meta.get("Name") or "").lower()
        kind = (meta.get("Description-Content-Type") or "").lower()
        body = meta.get_payload() or meta.get("Description") or ""  # type: ignore[attr-defined]
        if name and "markdown" in kind and len(body) > 3000 and body.count("\n#") >= 3:
            found.setdefault(name, body)
    return dict(sorted(found.items())[:limit])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import numpy as np

    from rag_ingest.chunking import chunk_document, embed_text, fit_to_window
    from rag_ingest.models import MiniLMEmbeddings
    from rag_ingest.parsers import ParseOptions, parse_file
    from rag_ingest.settings import ChunkSettings

    embedder = MiniLMEmbeddings()
    settings = fit_to_window(ChunkSettings(), embedder.max_input_tokens)
    chunks: list[tuple[str, str, dict[str, str]]] = []  # (package, text, metadata)
    docs = readmes(args.packages)
    with tempfile.TemporaryDirectory() as folder:
        for name, body in docs.items():
            path = Path(folder) / f"{name}.md"
            path.write_text(body)
            parsed = parse_file(str(path), path.name, ParseOptions())
            base = {"filename": path.name}
            for chunk in chunk_document(parsed, settings, base).chunks:
                chunks.append((name, chunk.text, chunk.metadata))

    rng = random.Random(args.seed)
    quoted = []
    for i, (name, text, _) in enumerate(chunks):
        sentences = SENTENCE.findall(text)
        if sentences:
            quoted.append((i, rng.choice(sentences), name))
    quoted = rng.sample(quoted, min(args.questions, len(quoted)))
    sections: dict[tuple[str, str], set[int]] = {}
    for i, (name, _, meta) in enumerate(chunks):
        last = (meta.get("heading_path") or "").split(" > ")[-1]
        if last:
            sections.setdefault((name, last), set()).add(i)
    section_keys = rng.sample(sorted(sections), min(args.questions, len(sections)))

    start = time.perf_counter()
    plain = np.array(embedder.embed_documents([text for _, text, _ in chunks]))
    headed = np.array(embedder.embed_documents([embed_text(t, m) for _, t, m in chunks]))
    seconds = time.perf_counter() - start
    print(
        f"{len(docs)} package READMEs, {len(chunks)} chunks ({settings.chunk_tokens} tokens "
        f"at most), embedded twice by all-MiniLM-L6-v2 in {seconds:.0f} s"
    )

    texts = [text for _, text, _ in chunks]
    kinds = {
        "quote": ([q for _, q, _ in quoted], [{i} for i, _, _ in quoted]),
        "named": ([f"{n}: {q}" for _, q, n in quoted], [{i} for i, _, _ in quoted]),
        "section": ([f"{n} {s}" for n, s in section_keys], [sections[k] for k in section_keys]),
    }
    print("\n| questions | n | embedded | hit@1 | hit@5 | MRR |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for kind, (questions, answers) in kinds.items():
        vectors = np.array(embedder.embed_documents(questions))
        scores = {}
        for label, matrix in (("text alone", plain), ("under header", headed)):
            sims = vectors @ matrix.T
            ranks = []
            for row, right in enumerate(answers):
                # Chunks equal in text to a right one are right too.
                good = {j for j, t in enumerate(texts) if t in {texts[i] for i in right}}
                best = max(sims[row, j] for j in good)
                ranks.append(int((sims[row] > best + 1e-6).sum()))
            r = np.array(ranks)
            hit1, hit5, mrr = np.mean(r < 1), np.mean(r < 5), np.mean(1 / (r + 1))
            scores[label] = mrr
            print(f"| {kind} | {len(questions)} | {label} | {hit1:.3f} | {hit5:.3f} | {mrr:.3f} |")
        ratios.append(f"{kind} {scores['under header'] / scores['text alone']:.2f}x")
    print("\nMRR under header vs text alone: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
