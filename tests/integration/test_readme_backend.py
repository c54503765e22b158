"""The README's FastAPI backend, run as written: its code block is executed and served
through a TestClient (the lifespan runs, as under uvicorn)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_backend() -> str:
    text = README.read_text()
    section = text.split("### From an async backend (FastAPI)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's backend code block is missing"
    return match.group(1)


def test_the_readme_backend_ingests_uploads_refuses_its_own_files_and_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    # The README's processor takes its store and embedder from the environment here.
    monkeypatch.setenv("RAG_INGEST_STORE__PERSIST_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("RAG_INGEST_MODELS__EMBEDDER", "hash")
    monkeypatch.setenv("RAG_INGEST_PARSE__MODE", "thread")
    monkeypatch.setenv("RAG_INGEST_PROGRESS", "false")
    secret = tmp_path / "app.env"
    secret.write_text("DATABASE_PASSWORD=hunter2\n")
    namespace: dict[str, Any] = {"__name__": "readme_backend"}
    exec(compile(readme_backend(), "README.md", "exec"), namespace)
    app = namespace["app"]
    report = ("My Report.md", b"# Q3\n\nRevenue grew; the canary is PLOVER.\n", "text/markdown")

    for run in range(2):  # a second client runs the lifespan again, on a new loop
        with TestClient(app) as client:
            sent = client.post("/sessions/s1/files", files={"file": report}).json()
            assert sent["status"] == ("ingested" if run == 0 else "skipped")
            assert sent["session_id"] == "s1" and sent["filename"] == "My Report.md"
            stolen = client.post("/sessions/s1/documents", params={"uri": str(secret)}).json()
            assert stolen["status"] == "failed" and stolen["error_type"] == "UnsafeSourceError"
            hits = client.get("/sessions/s1/search", params={"q": "PLOVER hunter2"}).json()
            assert [h["filename"] for h in hits] == ["My Report.md"]
            assert client.get("/sessions/s2/search", params={"q": "PLOVER"}).json() == []
    with TestClient(app) as client:
        # Its one chunk embedded once: the second upload was skipped, unchanged.
        used = client.get("/sessions/s1/usage").json()
        assert used["embedded_chunks"] == 1 and used["embedded_tokens"] > 0
        assert client.delete("/sessions/s1").json() == {"chunks_removed": 1}
        assert client.get("/sessions/s1/search", params={"q": "PLOVER"}).json() == []
        assert client.get("/sessions/s1/usage").json() == {}


def test_the_readme_backend_served_by_uvicorn_on_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``uvicorn app:app`` serves it with uvicorn[standard]: on uvloop, parsing in a
    worker process, the store a private Chroma server."""
    import httpx
    import uvicorn

    monkeypatch.setenv("RAG_INGEST_STORE__PERSIST_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("RAG_INGEST_MODELS__EMBEDDER", "hash")
    monkeypatch.setenv("RAG_INGEST_PARSE__WORKERS", "1")
    monkeypatch.setenv("RAG_INGEST_PROGRESS", "false")
    namespace: dict[str, Any] = {"__name__": "readme_backend"}
    exec(compile(readme_backend(), "README.md", "exec"), namespace)
    app = namespace["app"]

    @app.get("/loop")
    async def loop() -> str:
        return type(asyncio.get_running_loop()).__module__

    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            assert client.get("/loop").json() == "uvloop"
            report = ("notes.md", b"# Notes\n\nThe canary is WAXWING.\n", "text/markdown")
            sent = client.post("/sessions/s1/files", files={"file": report}).json()
            assert sent["status"] == "ingested", sent
            hits = client.get("/sessions/s1/search", params={"q": "WAXWING"}).json()
            assert [h["filename"] for h in hits] == ["notes.md"]
            assert client.delete("/sessions/s1").json() == {"chunks_removed": 1}
    finally:
        server.should_exit = True
        thread.join(60)
    assert not thread.is_alive()
