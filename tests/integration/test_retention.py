"""Retention by last use: a session searched lately is kept, however old its ingests."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest.ledger import SessionInfo
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings

pytestmark = pytest.mark.integration


async def listed(p: DocumentProcessor, wanted: set[str]) -> dict[str, SessionInfo]:
    """The sessions, once each of ``wanted`` has its search noted (off the caller)."""
    for _ in range(100):
        sessions = {info.session_id: info for info in await p.sessions()}
        if all(sessions[s].last_queried is not None for s in wanted):
            return sessions
        await asyncio.sleep(0.05)
    raise AssertionError(f"searches of {wanted} not noted")


async def test_sessions_searched_lately_are_kept_when_expiring(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\n" + "The CANARY of retention. " * 60)
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "parse": {"mode": "thread", "workers": 1},
        }
    )
    names = ("queried", "retrieved", "aretrieved", "idle")
    async with DocumentProcessor(
        settings, vectorstore=InMemoryVectorStore(embedding=HashEmbeddings())
    ) as p:
        assert p.ledger is not None
        for session in names:
            assert (await p.process_document(doc, session_id=session)).status == "ingested"
        month_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=40)
        with p.ledger.transaction():
            for table in ("sources", "activity"):
                p.ledger._db.execute(f"UPDATE {table} SET updated_at = ?", (month_ago.isoformat(),))
        assert await p.query("CANARY", session_id="queried")
        assert await asyncio.to_thread(p.as_retriever(session_id="retrieved").invoke, "CANARY")
        assert await p.as_retriever(session_id="aretrieved").ainvoke("CANARY")
        assert await p.query("CANARY", session_id="never ingested") == []

        sessions = await listed(p, {"queried", "retrieved", "aretrieved"})
        assert set(sessions) == set(names)  # a search alone lists no session
        assert sessions["idle"].last_queried is None
        assert sessions["idle"].last_used == sessions["idle"].last_ingested == month_ago
        assert sessions["queried"].last_used == sessions["queried"].last_queried > month_ago

        expired = await p.expire_sessions(datetime.timedelta(days=30))
        assert list(expired) == ["idle"]
        assert [info.session_id for info in await p.sessions()] == sorted(names[:3])


async def test_a_session_searched_often_is_noted_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\n" + "Words to find. " * 40)
    settings = Settings.model_validate(
        {"progress": False, "store": {"persist_dir": str(tmp_path / "store")},
         "parse": {"mode": "thread", "workers": 1}}
    )  # fmt: skip
    async with DocumentProcessor(
        settings, vectorstore=InMemoryVectorStore(embedding=HashEmbeddings())
    ) as p:
        assert p.ledger is not None
        await p.process_document(doc, session_id="s")
        noted: list[str] = []
        note = p.ledger.note_query
        monkeypatch.setattr(p.ledger, "note_query", lambda s: noted.append(s) or note(s))
        for _ in range(20):
            await p.query("words", session_id="s")
        await listed(p, {"s"})
        assert noted == ["s"]
        monkeypatch.setattr(DocumentProcessor, "_search_note_every", 0.0)
        await p.query("words", session_id="s")
        await asyncio.sleep(0.2)
        assert noted == ["s", "s"]
