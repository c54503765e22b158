"""A caller's metadata: carried on every chunk, never over our provenance, never lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest.errors import ConfigurationError
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings

pytestmark = pytest.mark.integration


async def test_caller_metadata_lands_on_every_chunk_and_bad_values_are_refused(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\n" + "The budget grows next year. " * 200)
    settings = Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store")},
            "parse": {"mode": "thread", "workers": 1},
            "chunk": {"chunk_tokens": 128, "overlap_tokens": 0},
        }
    )
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    extra = {"team": "finance", "year": 2026, "draft": False, "note": None, "session_id": "x"}
    async with DocumentProcessor(settings, vectorstore=store) as p:
        result = await p.process_document(doc, session_id="s", metadata=extra)
        assert result.status == "ingested" and result.total_chunks > 1
        for row in store.store.values():
            meta = row["metadata"]
            assert (meta["team"], meta["year"], meta["draft"]) == ("finance", 2026, False)
            assert "note" not in meta and meta["session_id"] == "s"
        refused = "must be str, int, float or bool"
        with pytest.raises(ConfigurationError, match=refused):
            await p.process_document(doc, session_id="s", metadata={"tags": ["a", "b"]})
        with pytest.raises(ConfigurationError, match=refused):
            await p.process_many([doc], session_id="s", metadata={"owner": {"id": 1}})
        with pytest.raises(ConfigurationError, match="tags"):
            p.submit(doc, session_id="s", metadata={"tags": ["a"]})
