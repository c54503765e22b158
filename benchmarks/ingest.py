"""Ingestion benchmark: rag_ingest vs the usual LangChain way, same corpus, same server, same run.

A 200-document mixed corpus (PDF, DOCX, PPTX, XLSX, HTML, Markdown, code, text)
on SeaweedFS. The baseline does what a LangChain user writes: boto3
``download_file`` per object, pymupdf4llm (what PyMuPDF4LLMLoader calls) or the
docling backends (what DoclingLoader calls) or a plain read, a token-sized
``RecursiveCharacterTextSplitter``, then ``Chroma.add_documents``, one document
after another. Both use the same embedder. Printed: documents/s, pages/s, peak
RSS, event-loop lag (p99, max; a 5 ms ticker on rag_ingest's loop), ratios, and
rag_ingest with 1 vs 2 parser workers, end to end and for the CPU tier alone.

    python benchmarks/ingest.py [--docs 200] [--embedder hash|minilm] [--skip-baseline]
                                [--repeat 3] [--only rag_ingest-2]
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

from _common import (
    MiB,
    baseline_store,
    boto3_client,
    child_config,
    cpu_split,
    floor_fetcher,
    hwm,
    run_child,
)

BUCKET = "ingestbench"


def make_corpus(n: int) -> dict[str, bytes]:
    from tests import docs

    rng = random.Random(3)
    words = [
        "ingest", "vector", "bucket", "latency", "session", "parser", "chunk", "token",
        "report", "revenue", "policy", "customer", "storage", "network", "model", "query",
    ]  # fmt: skip

    def prose(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k)) + "."

    files: dict[str, bytes] = {}
    kinds = ["pdf", "pdf", "pdf", "docx", "pptx", "xlsx", "html", "md", "py", "txt"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        tag = f"DOC{i:04d}"
        if kind == "pdf":
            pages = [f"{tag} page {p}\n" + "\n".join(prose(60) for _ in range(6)) for p in range(5)]
            files[f"pdf/{tag}.pdf"] = docs.pdf_bytes(pages)
        elif kind == "docx":
            sections = {f"Section {s}": " ".join(prose(40) for _ in range(5)) for s in range(4)}
            files[f"docx/{tag}.docx"] = docs.docx_bytes(tag, sections)
        elif kind == "pptx":
            files[f"pptx/{tag}.pptx"] = docs.pptx_bytes(
                [(f"{tag} {s}", prose(30)) for s in range(5)]
            )
        elif kind == "xlsx":
            rows: list[list[object]] = [["id", "name", "value"]]
            rows += [[r, prose(4), r * 3] for r in range(60)]
            files[f"xlsx/{tag}.xlsx"] = docs.xlsx_bytes(rows)
        elif kind == "html":
            body = "".join(f"<h2>{tag} part {s}</h2><p>{prose(80)}</p>" for s in range(5))
            files[f"html/{tag}.html"] = f"<html><body>{body}</body></html>".encode()
        elif kind == "md":
            body = "\n\n".join(f"## {tag} part {s}\n\n{prose(80)}" for s in range(5))
            files[f"md/{tag}.md"] = f"# {tag}\n\n{body}\n".encode()
        elif kind == "py":
            body = "\n\n".join(
                f"def f_{s}(x):\n    '''{prose(12)}'''\n    return x + {s}\n" for s in range(40)
            )
            files[f"code/{tag}.py"] = body.encode()
        else:
            files[f"text/{tag}.txt"] = "\n\n".join(prose(80) for _ in range(8)).encode()
    return files


# -- rag_ingest ------------------------------------------------------------------------


async def run_rag_ingest(
    cfg: dict[str, Any], workers: int, embedder: str, store: str, pdf_mode: str = "tables"
) -> dict[str, Any]:
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.settings import Settings

    settings = Settings.model_validate(
        {
            "s3": cfg["s3"],
            "progress": False,
            "store": {"persist_dir": store},
            "models": {"embedder": embedder},
            "parse": {"mode": "process", "workers": workers, "pdf_mode": pdf_mode}
            | ({"worker_nice": cfg["worker_nice"]} if cfg.get("worker_nice") is not None else {}),
            # start() waits for the workers' whole start-up, as a server's would.
            "pipeline": {"preload": True},
        }
    )
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        interval = 0.005
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(interval)
            lags.append(time.perf_counter() - before - interval)

    async with DocumentProcessor(settings) as p:
        # Warm the workers (spawn + imports) outside the timed region, as a server would.
        await p.process_document(f"s3://{BUCKET}/warmup/warm.pdf", session_id="warm")
        await p.process_document(f"s3://{BUCKET}/warmup/warm.docx", session_id="warm")
        before = hwm()
        others = {"s3": cfg["s3_pid"]} if cfg.get("s3_pid") else {}
        cpu_before = cpu_split(others)
        tick = asyncio.ensure_future(ticker())
        start = time.perf_counter()
        report = await p.process_many(f"s3://{BUCKET}/corpus/", session_id="bench")
        seconds = time.perf_counter() - start
        embedder = _embedder_ran(p, report)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_split(others).items()}
        rss = hwm() - before
        stop.set()
        await tick
        floor = None
        if workers == 2 and pdf_mode == "tables":
            texts = p.store.vectorstore.get(where={"session_id": "bench"}, include=["documents"])
            floor = await ingest_floor(cfg, settings, texts["documents"])
    lags.sort()
    pages = sum((r.pages or 1) for r in report.results)
    stages: dict[str, float] = {}
    for r in report.results:
        for stage, value in r.seconds.items():
            if stage != "total":
                stages[stage] = stages.get(stage, 0.0) + value
    return {
        "seconds": seconds,
        "docs": report.totals["ingested"],
        "failed": report.totals["failed"],
        "pages": pages,
        "chunks": report.totals["chunks"],
        "rss": rss,
        "rss_total": before + rss,
        "lag_p99": lags[int(len(lags) * 0.99)] if lags else 0.0,
        "lag_max": lags[-1] if lags else 0.0,
        "embedder": embedder,
        "cpu": cpu,
        "floor": floor,
        "stages": stages,
    }


def _embedder_ran(p: Any, report: Any) -> str | None:
    """The embedder's name, and MiniLM's precision (bfloat16 where the CPU computes it)."""
    name = report.results[0].embedder if report.results else None
    precision = getattr(getattr(p._runner, "embeddings", None), "precision", None)
    return f"{name} ({precision})" if name and precision else name


async def run_tier(cfg: dict[str, Any], workers: int) -> dict[str, Any]:
    """The CPU tier alone: the same corpus from local files through the parser pool
    (parse and chunk), ``workers`` + 1 documents handed over at a time, as the pipeline
    does; no S3, no store, no embedding. Says how the pool itself scales."""
    from rag_ingest.parsers.base import ParseOptions
    from rag_ingest.parsers.pool import ParserPool
    from rag_ingest.settings import Settings

    settings = Settings.model_validate({"parse": {"mode": "process", "workers": workers}})
    pool = ParserPool(settings.parse, ParseOptions(pdf_mode="tables"), settings.chunk.encoding)
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for key, body in make_corpus(cfg["docs"]).items():
            path = Path(directory) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            paths.append(path)
        try:
            # Workers started and warmed outside the timed region.
            await asyncio.gather(*(pool.parse(str(p), p.name) for p in paths[: workers * 2]))
            await pool.warm()  # the rest of each worker's start-up, not in the timing
            gate = asyncio.Semaphore(pool.slots)
            chunks = 0

            async def one(path: Path) -> None:
                nonlocal chunks
                async with gate:
                    _, plan = await pool.parse_and_chunk(str(path), path.name, settings.chunk, {})
                chunks += len(plan.chunks)

            start = time.perf_counter()
            await asyncio.gather(*(one(p) for p in paths))
            seconds = time.perf_counter() - start
        finally:
            await asyncio.to_thread(pool.close)
    return {"seconds": seconds, "docs": len(paths), "chunks": chunks}


async def ingest_floor(cfg: dict[str, Any], settings: Any, texts: list[str]) -> dict[str, float]:
    """CPU seconds of the least any ingesting process must do for this corpus: fetch
    every object (``floor_fetcher``: signed GETs and file writes, nothing checked) and
    embed the chunks the run stored. No parsing, ledger, store writes or orchestration."""
    from rag_ingest.models import load_embeddings

    s3 = cfg["s3"]
    pages = (
        boto3_client(s3).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="corpus/")
    )
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    embeddings = load_embeddings(settings.models.embedder)
    with tempfile.TemporaryDirectory() as out:
        async with floor_fetcher(s3, settings.pipeline.downloads) as fetch:
            await fetch(BUCKET, keys[0], Path(out) / "warm")
            start = time.process_time()
            await asyncio.gather(
                *(fetch(BUCKET, k, Path(out) / str(i)) for i, k in enumerate(keys))
            )
            fetched = time.process_time() - start
    start = time.process_time()
    embeddings.embed_documents(texts)
    return {"fetch": fetched, "embed": time.process_time() - start}


# -- the LangChain baseline --------------------------------------------------------------


def run_baseline(cfg: dict[str, Any], embedder: str, store: str) -> dict[str, Any]:
    from langchain_core.documents import Document

    client = boto3_client(cfg["s3"])
    vectorstore, splitter = baseline_store(store, embedder)

    def load(path: str, key: str) -> list[Document]:
        suffix = Path(key).suffix
        if suffix == ".pdf":
            import pymupdf4llm

            pymupdf4llm.use_layout(False)
            pages = pymupdf4llm.to_markdown(path, page_chunks=True, show_progress=False)
            return [
                Document(p["text"], metadata={"source": key, "page": i})
                for i, p in enumerate(pages)
            ]
        if suffix in (".docx", ".pptx", ".xlsx", ".html", ".md"):
            from docling.datamodel.document import InputDocument

            from rag_ingest.parsers.office import _backend

            kind = {
                ".docx": "docx",
                ".pptx": "pptx",
                ".xlsx": "xlsx",
                ".html": "html",
                ".md": "markdown",
            }[suffix]
            backend, fmt = _backend(kind)
            named = path + suffix
            os.replace(path, named)
            doc = InputDocument(
                path_or_stream=Path(named), format=fmt, backend=backend
            )._backend.convert()
            os.replace(named, path)
            return [Document(doc.export_to_markdown(), metadata={"source": key})]
        return [Document(Path(path).read_text(errors="replace"), metadata={"source": key})]

    # Warm the same imports outside the timed region.
    with tempfile.TemporaryDirectory() as tmp:
        for key in ("warmup/warm.pdf", "warmup/warm.docx"):
            local = os.path.join(tmp, "w")
            client.download_file(BUCKET, key, local)
            load(local, key)
    before = hwm()
    start = time.perf_counter()
    docs_done = pages = chunks = 0
    paginator = client.get_paginator("list_objects_v2")
    with tempfile.TemporaryDirectory() as tmp:
        for page in paginator.paginate(Bucket=BUCKET, Prefix="corpus/"):
            for obj in page.get("Contents", []):
                local = os.path.join(tmp, "doc")
                client.download_file(BUCKET, obj["Key"], local)
                loaded = load(local, obj["Key"])
                split = splitter.split_documents(loaded)
                vectorstore.add_documents(split)
                docs_done += 1
                pages += len(loaded) if obj["Key"].endswith(".pdf") else 1
                chunks += len(split)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "docs": docs_done,
        "failed": 0,
        "pages": pages,
        "chunks": chunks,
        "rss": hwm() - before,
        "rss_total": hwm(),
        "lag_p99": None,
        "lag_max": None,
        "embedder": embedder,
    }


def child(which: str) -> None:
    cfg = child_config()
    with tempfile.TemporaryDirectory() as store:
        if which == "baseline":
            result = run_baseline(cfg, cfg["embedder"], store)
        elif which.startswith("tier-"):
            result = asyncio.run(run_tier(cfg, int(which.split("-")[1])))
        else:
            parts = which.split("-")  # rag_ingest-WORKERS[-PDFMODE]
            mode = parts[2] if len(parts) > 2 else "tables"
            result = asyncio.run(run_rag_ingest(cfg, int(parts[1]), cfg["embedder"], store, mode))
    print(json.dumps(result), flush=True)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by time; loop lag as the median p99 and the worst max."""
    median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    if median.get("lag_p99") is None:
        return median
    p99s = sorted(r["lag_p99"] for r in runs)
    return median | {
        "lag_p99": p99s[len(p99s) // 2],
        "lag_p99_all": p99s,
        "lag_max": max(r["lag_max"] for r in runs),
    }


def run(which: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return run_child(__file__, [which], cfg, timeout=3000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--embedder", default="hash", choices=["hash", "minilm"])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; medians")
    parser.add_argument("--only", action="append", help="run only these (e.g. rag_ingest-2)")
    parser.add_argument(
        "--worker-nice", type=int, help="parser workers' niceness (default: the settings')"
    )
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from rag_ingest.testing import SeaweedS3
    from tests import docs

    corpus = make_corpus(args.docs)
    with SeaweedS3() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for key, body in corpus.items():
            client.put_object(Bucket=BUCKET, Key=f"corpus/{key}", Body=body)
        client.put_object(Bucket=BUCKET, Key="warmup/warm.pdf", Body=docs.pdf_bytes(["warm up"]))
        client.put_object(
            Bucket=BUCKET, Key="warmup/warm.docx", Body=docs.docx_bytes("Warm", {"Up": "warm"})
        )
        assert server.process is not None
        cfg = {
            "s3": server.settings_dict(),
            "embedder": args.embedder,
            "s3_pid": server.process.pid,
            "docs": args.docs,
            "worker_nice": args.worker_nice,
        }
        order = ["rag_ingest-2", "rag_ingest-1", "rag_ingest-2-fast"]
        order += [] if args.skip_baseline else ["baseline"]
        order += ["tier-2", "tier-1"]
        if args.only:
            order = [which for which in order if which in args.only]
        runs: dict[str, list[dict[str, Any]]] = {which: [] for which in order}
        # Interleaved, so that drift on this shared 2-core VM hits every configuration alike.
        for _ in range(args.repeat):
            for which in order:
                runs[which].append(run(which, cfg))
                print(f"  {which}: {runs[which][-1]}", file=sys.stderr)
        results = {which: summarize(rs) for which, rs in runs.items()}

    from rag_ingest.settings import ParseSettings

    nice = ParseSettings().worker_nice if args.worker_nice is None else args.worker_nice
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    # As the runs name it: MiniLM with the precision it computed in.
    ran = next((r.get("embedder") for r in results.values() if r.get("embedder")), args.embedder)
    print(
        f"\nMachine: {machine}; {args.docs} documents on SeaweedFS (127.0.0.1); "
        f"embedder: {ran}; workers warmed before timing, at niceness {nice}; "
        f"median of {args.repeat} "
        "interleaved runs (loop lag: median p99, worst max)\n"
    )
    header = "| run | docs/s | pages/s | chunks | failed | peak RSS growth (MiB) | loop lag p99 / max ms |"  # noqa: E501
    print(header)
    print("|---|---|---|---|---|---|---|")
    tiers = {which: results.pop(which) for which in ("tier-2", "tier-1") if which in results}
    for which, r in results.items():
        lag = (
            "-"
            if r["lag_p99"] is None
            else f"{r['lag_p99'] * 1000:.1f} / {r['lag_max'] * 1000:.1f}"
        )
        print(
            f"| {which} | {r['docs'] / r['seconds']:.1f} | {r['pages'] / r['seconds']:.1f} | "
            f"{r['chunks']} | {r['failed']} | {r['rss'] / MiB:.0f} | {lag} |"
        )
    stages = results.get("rag_ingest-2", {}).get("stages", {})
    if stages:
        busy = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(stages.items(), key=lambda kv: -kv[1]))
        print(
            "\nrag_ingest-2 seconds summed over documents (stages overlap; *_wait is time "
            f"queued for a stage's semaphore): {busy}"
        )
    for which, r in results.items():
        if r.get("lag_p99_all"):
            p99s = ", ".join(f"{x * 1000:.1f}" for x in r["lag_p99_all"])
            print(f"{which} loop-lag p99 of each run (ms): {p99s}")
    if len(tiers) == 2:
        t2, t1 = tiers["tier-2"], tiers["tier-1"]
        print(
            f"\nthe CPU tier alone (the parser pool parsing and chunking the corpus from local "
            f"files; no S3, store or embedder): 1 worker {t1['docs'] / t1['seconds']:.1f} "
            f"docs/s, 2 workers {t2['docs'] / t2['seconds']:.1f} docs/s: "
            f"{t1['seconds'] / t2['seconds']:.2f}x"
        )
    if "rag_ingest-1" not in results or "rag_ingest-2" not in results:
        return
    two, one = results["rag_ingest-2"], results["rag_ingest-1"]
    print("\nrag_ingest-N: N parser workers, PDF tables detected (as PyMuPDF4LLMLoader does);")
    print("rag_ingest-2-fast: PDF table detection off (pdf_mode='fast').")
    print(f"rag_ingest 2 workers vs 1: {one['seconds'] / two['seconds']:.2f}x")
    for which in ("rag_ingest-2", "rag_ingest-1"):
        cpu = results[which]["cpu"]
        parts = ", ".join(f"{role} {seconds:.2f}" for role, seconds in cpu.items())
        total = sum(cpu.values())
        print(
            f"{which} CPU seconds during the run: {parts}; {total:.2f} in all = "
            f"{total / results[which]['seconds']:.2f} of {os.cpu_count()} cores busy"
        )
    # The 2-worker run cannot take less than its CPU work spread over every core, so with
    # this much work outside the parsers the 2-vs-1 ratio has a measured ceiling.
    cores = os.cpu_count() or 1
    floor = sum(two["cpu"].values()) / cores
    print(
        f"ceiling of 2 workers vs 1 on {cores} cores with the 2-worker run's CPU "
        f"work: {one['seconds']:.2f} s / {floor:.2f} s = {one['seconds'] / floor:.2f}x"
    )
    least = two.get("floor")
    if least:
        # The same bound if our own process did only what no ingester can skip.
        bare = sum(v for k, v in two["cpu"].items() if k != "ingest") + sum(least.values())
        print(
            f"least CPU any ingesting process needs for this corpus: fetch {least['fetch']:.2f} s "
            f"(signed GETs, nothing checked) + embed {least['embed']:.2f} s; "
            f"with only that instead of ingest {two['cpu']['ingest']:.2f} s, the ceiling is "
            f"{one['seconds']:.2f} s / {bare / cores:.2f} s = {one['seconds'] * cores / bare:.2f}x"
        )
    if "baseline" in results:
        base = results["baseline"]["seconds"]
        print(f"rag_ingest (2 workers) vs LangChain baseline: {base / two['seconds']:.2f}x")
        fast = results["rag_ingest-2-fast"]["seconds"]
        print(f"rag_ingest (2 workers, pdf fast) vs LangChain baseline: {base / fast:.2f}x")


if __name__ == "__main__":
    main()
