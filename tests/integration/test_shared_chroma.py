"""Two ingesting processes, each with its own ledger, on one Chroma server (a backend
run as several worker processes): same sources, same session, at the same time.

Chunk IDs come from the session, source, version and text, so what one process writes
the other overwrites with the same thing: nothing doubles, a change or a prune by one is
finished by the other, and chunks one deletes the other puts back when it runs again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.chroma_server import LocalChromaServer
from rag_ingest.models import HashEmbeddings
from rag_ingest.settings import StoreSettings
from rag_ingest.store import ChunkStore

pytestmark = pytest.mark.integration

SESSION = "shared"


def write_corpus(root: Path) -> None:
    root.mkdir()
    for i in range(24):
        # every fourth long enough for several chunks
        body = "\n\n".join(
            f"## Part {p}\n\n" + f"Document {i} part {p} says CANARY{i}x{p}. " * 60
            for p in range(6 if i % 4 == 0 else 1)
        )
        (root / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\n{body}\n")


def cli(worker: str, tmp_path: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RAG_INGEST_STORE__PERSIST_DIR": str(tmp_path / f"ledger-{worker}"),
        "RAG_INGEST_MODELS__EMBEDDER": "hash",
        "RAG_INGEST_PARSE__WORKERS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rag_ingest.cli", *args, "--chroma-url", url, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def ingest_both(tmp_path: Path, url: str, corpus: Path, *flags: str) -> list[dict[str, Any]]:
    """``rag-ingest ingest`` in workers a and b at once; their reports."""
    runs = []
    for worker in "ab":
        report = tmp_path / f"report-{worker}.json"
        args = ("ingest", str(corpus), "--session", SESSION, "--report", str(report), *flags)
        runs.append((cli(worker, tmp_path, url, *args), report))
    reports = []
    for process, report in runs:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out
        reports.append(json.loads(report.read_text()))
    return reports


def ingest_one(tmp_path: Path, url: str, worker: str, corpus: Path, *flags: str) -> dict[str, Any]:
    report = tmp_path / f"report-{worker}.json"
    args = ("ingest", str(corpus), "--session", SESSION, "--report", str(report), *flags)
    process = cli(worker, tmp_path, url, *args)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return json.loads(report.read_text())  # type: ignore[no-any-return]


def stored(url: str) -> dict[str, tuple[str, str]]:
    """The session's chunks on the server: ID -> (filename, text)."""
    store = ChunkStore.chroma(StoreSettings(chroma_url=url), HashEmbeddings())
    try:
        got = store._collection.get(
            where={"session_id": SESSION}, include=["metadatas", "documents"]
        )
    finally:
        store.close()
    metadatas, documents = got["metadatas"], got["documents"]
    assert metadatas is not None and documents is not None
    return {
        i: (str(m["filename"]), d) for i, m, d in zip(got["ids"], metadatas, documents, strict=True)
    }


def chunks_reported(report: dict[str, Any]) -> dict[str, int]:
    return {Path(d["filename"]).name: d["chunks"] for d in report["documents"] if d["chunks"]}


def chunks_stored(url: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in stored(url).values():
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_two_processes_with_their_own_ledgers_share_one_chroma_server(tmp_path: Path) -> None:
    server = LocalChromaServer(tmp_path / "chroma")
    server.start()
    try:
        url = server.url
        corpus = tmp_path / "corpus"
        write_corpus(corpus)

        a, b = ingest_both(tmp_path, url, corpus)
        for report in (a, b):
            assert report["totals"]["failed"] == 0
            assert report["totals"]["ingested"] == 24
        expected = chunks_reported(a)
        assert chunks_reported(b) == expected
        assert sum(expected.values()) > 24  # some documents are several chunks
        first = stored(url)
        assert chunks_stored(url) == expected  # written twice, stored once

        # Worker a sees one document changed and one gone; b's ledger still has both.
        (corpus / "doc00.md").write_text("# Doc 0\n\nRewritten: CANARY-NEW.\n")
        (corpus / "doc01.md").unlink()
        a = ingest_one(tmp_path, url, "a", corpus, "--prune")
        assert a["pruned"] == [(corpus / "doc01.md").as_uri()]
        expected = {**expected, "doc00.md": 1}
        del expected["doc01.md"]
        assert chunks_stored(url) == expected
        after_change = stored(url)
        assert [t for n, t in after_change.values() if n == "doc00.md"] == [
            "# Doc 0\n\nRewritten: CANARY-NEW."
        ]

        # b catches up with its stale ledger: the same chunks, nothing old back.
        b = ingest_one(tmp_path, url, "b", corpus, "--prune")
        assert b["pruned"] == [(corpus / "doc01.md").as_uri()]
        statuses = {Path(d["filename"]).name: d["status"] for d in b["documents"]}
        assert statuses["doc00.md"] == "ingested" and statuses["doc02.md"] == "skipped"
        assert stored(url) == after_change

        # b deletes the session; a's ledger still lists it all, and puts it back.
        deleted = cli("b", tmp_path, url, "delete", "--session", SESSION)
        out, _ = deleted.communicate(timeout=300)
        assert deleted.returncode == 0, out
        assert stored(url) == {}
        a = ingest_one(tmp_path, url, "a", corpus)
        assert a["totals"]["failed"] == 0
        assert {w for d in a["documents"] for w in d["warnings"]} == {
            "ingested again: the store had lost its chunks"
        }
        assert stored(url) == after_change
        assert set(after_change) - set(first) == {
            i for i, (n, _) in after_change.items() if n == "doc00.md"
        }
    finally:
        server.stop()


def test_processes_sharing_one_ledger_ingest_each_source_once(tmp_path: Path) -> None:
    """Three processes on one persist_dir (one ledger) and one Chroma server, a backend's
    workers: each source is ingested by one of them, the others wait for its claim and
    skip it. Before claims, each of the three downloaded, parsed and embedded all 24."""
    server = LocalChromaServer(tmp_path / "chroma")
    server.start()
    try:
        corpus = tmp_path / "corpus"
        write_corpus(corpus)
        runs = []
        for worker in "abc":
            report = tmp_path / f"report-{worker}.json"
            args = ("ingest", str(corpus), "--session", SESSION, "--report", str(report))
            # One directory for all three: the ledger they share.
            runs.append((cli("shared", tmp_path, server.url, *args), report))
        ingested: list[set[str]] = []
        embedded = 0
        for process, path in runs:
            out, _ = process.communicate(timeout=300)
            assert process.returncode == 0, out
            report = json.loads(path.read_text())
            assert report["totals"]["failed"] == 0
            ingested.append(
                {d["filename"] for d in report["documents"] if d["status"] == "ingested"}
            )
            embedded += report["usage"].get("embedded_chunks", 0)
        assert sum(len(names) for names in ingested) == 24  # each once, by one of them
        assert set.union(*ingested) == {p.name for p in corpus.iterdir()}
        assert embedded == len(stored(server.url))  # every chunk embedded once
        assert sum(chunks_stored(server.url).values()) == embedded
    finally:
        server.stop()


@pytest.mark.parametrize("given", ["chroma_url", "persist_dir"])
def test_the_readme_backend_under_uvicorn_workers_ingests_each_upload_once(
    tmp_path: Path, given: str
) -> None:
    """The README's FastAPI app as ``uvicorn --workers 2`` runs it, given a Chroma server
    and one persist_dir, or one persist_dir alone (the first worker serves it, the other
    joins), sent the same files at once through both workers: each file is ingested by
    one worker and skipped by the rest (17 ingests of 8 files under 3 workers before
    claims, by hand), and a delete in one worker removes them all."""
    import asyncio
    import socket

    import httpx

    from tests.integration.test_readme_backend import readme_backend

    server = LocalChromaServer(tmp_path / "chroma")
    server.start()
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "readme_app.py").write_text(
        readme_backend()
        + "\n\nimport os\n\n\n@app.middleware('http')\nasync def worker(request, call_next):\n"
        "    response = await call_next(request)\n"
        "    response.headers['x-worker'] = str(os.getpid())\n    return response\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "RAG_INGEST_STORE__PERSIST_DIR": str(tmp_path / "store"),  # one ledger for both
        "RAG_INGEST_MODELS__EMBEDDER": "hash",
        "RAG_INGEST_PARSE__WORKERS": "1",
        "RAG_INGEST_PROGRESS": "false",
    }
    if given == "chroma_url":
        env["RAG_INGEST_STORE__CHROMA_URL"] = server.url
    uvicorn = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "readme_app:app", "--app-dir", str(app_dir),
         "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    files = {
        f"note{i}.md": f"# Note {i}\n\n".encode() + f"Note {i} says CANARY{i}. ".encode() * 150
        for i in range(6)
    }

    async def round_of(client: httpx.AsyncClient) -> tuple[list[dict[str, Any]], set[str]]:
        async def send(name: str) -> httpx.Response:
            part = {"file": (name, files[name], "text/markdown")}
            return await client.post(f"/sessions/{SESSION}/files", files=part)

        sent = await asyncio.gather(*(send(name) for name in list(files) * 4))
        return [r.json() for r in sent], {r.headers["x-worker"] for r in sent}

    async def serve() -> None:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            deadline = asyncio.get_running_loop().time() + 180
            while True:  # both workers started: each answers its share of connections
                try:
                    answered = await asyncio.gather(
                        *(client.get("/sessions/x/usage") for _ in range(20))
                    )
                    if len({r.headers["x-worker"] for r in answered}) == 2:
                        break
                except httpx.TransportError:
                    pass
                assert uvicorn.poll() is None and asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.5)
            for _ in range(3):  # a round answered by one worker alone proves nothing
                answers, workers = await round_of(client)
                if len(workers) == 2:
                    break
                await client.delete(f"/sessions/{SESSION}")
            assert len(workers) == 2, "one worker answered every upload, three times"
            statuses = [a["status"] for a in answers]
            assert statuses.count("ingested") == len(files), answers
            assert statuses.count("skipped") == 3 * len(files)
            chunks = sum(a["total_chunks"] for a in answers if a["status"] == "ingested")
            url = server.url
            if given == "persist_dir":  # the server one of the workers runs
                record = tmp_path / "store" / "chroma" / ".rag-ingest-server"
                url = f"http://127.0.0.1:{record.read_text().split()[1]}"
            assert chunks > len(files) and len(stored(url)) == chunks  # each once
            used = (await client.get(f"/sessions/{SESSION}/usage")).json()
            assert used["embedded_chunks"] == chunks  # embedded once, whichever worker did
            removed = (await client.delete(f"/sessions/{SESSION}")).json()
            assert removed == {"chunks_removed": chunks}
            assert stored(url) == {}

    try:
        asyncio.run(serve())
    finally:
        uvicorn.terminate()
        out, _ = uvicorn.communicate(timeout=60)
        server.stop()
        # Shown with a failure: a CI run's uvicorn had exited at start (code 0) unseen.
        print(out)
    assert "Traceback" not in out, out
