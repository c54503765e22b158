"""Where the process cannot write: a read-only home (AWS Lambda, a hardened container)
and a read-only working directory, where the default store directory goes.

Run as a user without rights there, every document had failed: the tokenizer's
vocabulary could not be cached in the home, which in worker processes broke the pool
at start-up ("the parser workers' pool broke twice"), and the CLI ended in a
PermissionError traceback for ``rag_ingest_data``. The tests run as root, which may
write anywhere, so an unwritable place is a path under a plain file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest import DocumentProcessor
from rag_ingest.errors import ConfigurationError, DocumentError, TokenizerUnavailableError
from rag_ingest.models import HashEmbeddings
from rag_ingest.parsers.base import ParseOptions
from rag_ingest.parsers.pool import ParserPool
from rag_ingest.settings import ParseSettings, Settings
from rag_ingest.tokens import count_tokens
from tests.conftest import IN_PROCESS_STORE

pytestmark = pytest.mark.integration


def settings(tmp_path: Path, store: dict[str, Any], **parse: Any) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": store,
            "models": {"embedder": "hash"},
            "parse": {"workers": 1, **parse},
            "temp_dir": str(tmp_path / "temp"),
        }
    )


async def test_a_read_only_home_still_ingests_on_worker_processes(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the workers inherit it
    (tmp_path / "temp").mkdir()
    doc = tmp_path / "note.md"
    doc.write_text("# Note\n\nThe canary is CANARY-RO.\n")
    store = {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE}
    async with DocumentProcessor(settings(tmp_path, store, mode="process")) as p:
        result = await p.process_document(doc, session_id="s")
        assert result.status == "ingested", result.message
        assert result.token_count > 0
    uid = os.getuid()
    assert list((tmp_path / "temp" / f"rag-ingest-{uid}" / "tiktoken").iterdir())


async def test_a_vocabulary_that_cannot_be_had_fails_the_start(
    tmp_path: Path, blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(blocked / "cache"))
    store = {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE}
    with pytest.raises(TokenizerUnavailableError, match="TIKTOKEN_CACHE_DIR"):
        async with DocumentProcessor(settings(tmp_path, store, mode="thread")):
            pass


async def test_a_worker_without_its_vocabulary_fails_documents_not_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # p50k_base is not among bpe-openai's files: every worker's start-up warm-up fails.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    pool = ParserPool(ParseSettings(mode="process", workers=1), ParseOptions(), "p50k_base")
    try:
        for name in ("a.md", "b.md"):
            with pytest.raises(DocumentError, match="TokenizerUnavailableError: no local voc"):
                await pool.run(name, count_tokens, "hello", "p50k_base")
        assert await pool.run("c.md", count_tokens, "hello world") == 2
    finally:
        pool.close()


@pytest.mark.parametrize("kind", ["in-process", "server", "own store"])
async def test_a_store_directory_that_cannot_be_written_names_the_setting(
    tmp_path: Path, blocked: Path, kind: str
) -> None:
    store = IN_PROCESS_STORE if kind == "in-process" else {}
    cfg = settings(tmp_path, {"persist_dir": str(blocked / "store"), **store}, mode="thread")
    # A caller's store (or a chroma_url) leaves only the ledger in the directory.
    own = InMemoryVectorStore(HashEmbeddings()) if kind == "own store" else None
    with pytest.raises(ConfigurationError, match=r"set store\.persist_dir") as caught:
        async with DocumentProcessor(cfg, vectorstore=own):
            pass
    assert str(blocked / "store") in str(caught.value)


def test_the_cli_in_a_read_only_working_directory_says_what_to_set(
    tmp_path: Path, blocked: Path
) -> None:
    doc = tmp_path / "note.md"
    doc.write_text("# Note\n\nText.\n")
    env = {**os.environ, "RAG_INGEST_MODELS__EMBEDDER": "hash"}
    # the default store directory, rag_ingest_data, made in a place that refuses it
    run = subprocess.run(
        [sys.executable, "-m", "rag_ingest.cli", "ingest", str(doc), "--session", "s"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "RAG_INGEST_STORE__PERSIST_DIR": str(blocked / "rag_ingest_data")},
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("rag-ingest: configuration error: cannot write the store")
    assert "--persist-dir" in run.stderr
