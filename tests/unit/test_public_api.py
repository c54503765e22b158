from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import rag_ingest


def test_all_is_sorted_and_complete() -> None:
    assert rag_ingest.__all__ == sorted(rag_ingest.__all__)
    assert set(rag_ingest.__all__) == set(rag_ingest._EXPORTS)
    for name in rag_ingest.__all__:
        assert getattr(rag_ingest, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, rag_ingest\n"
        "heavy = [m for m in ('httpx', 'aiohttp', 'botocore', 'tqdm', 'chromadb', 'docling',"
        " 'pymupdf')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_loader_never_imports_the_store(tmp_path: Path) -> None:
    # Chunk IDs came from rag_ingest.store, whose import (langchain's retrievers and
    # tracers) took 0.55 s of a fresh script's first load() before any worker started.
    note = tmp_path / "a.py"
    note.write_text("def a():\n    return 1\n")
    code = (
        "import sys\n"
        "from rag_ingest import RagIngestLoader, Settings\n"
        "settings = Settings(progress=False, parse={'mode': 'thread'})\n"
        f"docs = RagIngestLoader([{str(note)!r}], settings=settings).load()\n"
        "print(len(docs), [m for m in ('rag_ingest.store', 'langchain_core.retrievers',"
        " 'chromadb') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1 []", out.stderr


def test_status_reads_the_ledger_without_the_store(tmp_path: Path) -> None:
    # The ledger lived in rag_ingest.store: `rag-ingest status` took 2.2 s, nearly all of
    # it importing LangChain's retrievers and tracers for a SQLite read (0.55 s without).
    from rag_ingest.ledger import Ledger, ledger_path
    from rag_ingest.settings import StoreSettings

    ledger = Ledger(ledger_path(StoreSettings(persist_dir=tmp_path)))
    ledger.record(
        session_id="s",
        source="s3://b/a.md",
        version="v1",
        size=3,
        status="ingested",
        chunk_ids=["id-1"],
        fingerprint=None,
    )
    ledger.close()
    code = (
        "import sys\n"
        "from rag_ingest.cli import main\n"
        f"status = main(['status', '--persist-dir', {str(tmp_path)!r}])\n"
        "print(status, [m for m in ('rag_ingest.store', 'langchain_core', 'chromadb')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert " s\n" in out.stdout and out.stdout.endswith("0 []\n"), out.stdout + out.stderr


def test_error_tree_has_one_root() -> None:
    from rag_ingest import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RagIngestError)
    assert issubclass(errors.S3NotFoundError, FileNotFoundError)
    assert issubclass(errors.S3TimeoutError, TimeoutError)
    assert issubclass(errors.S3PresignedExpiredError, errors.S3AuthError)
    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), f"{name} missing from the drawn tree"


def test_every_error_comes_back_from_a_worker_process_as_itself() -> None:
    # A parser worker's exception is pickled to the parent; one rebuilt from its message
    # alone (MissingExtraError wanted two arguments) had broken the whole pool there.
    import pickle

    from rag_ingest import errors

    built = {
        errors.MissingExtraError: errors.MissingExtraError("PDF parsing", "pdf"),
        errors.ModelError: errors.ModelError("rate limited", retryable=True),
    }
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, errors.S3Error):
            exc = cls("gone", bucket="b", key="k", status=503, retryable=True, retry_after=2.0)
        else:
            exc = built.get(cls) or cls("it failed")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc), name
        assert vars(back) == vars(exc), name


def test_the_package_is_typed_for_its_users(tmp_path: Path) -> None:
    # Without py.typed, a user's mypy skipped rag_ingest ("missing library stubs or
    # py.typed marker") and every name from it was Any.
    user = tmp_path / "user.py"
    user.write_text(
        "from rag_ingest import DocumentProcessor, Settings\n"
        "p = DocumentProcessor(Settings())\n"
        "reveal_type(p.settings)\n"
    )
    # torch and transformers (behind the minilm extra, imported on first use) are
    # skipped: checking them took most of this test's ~40 s, and says nothing of ours.
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n"
        "[mypy-torch.*,transformers.*,sentence_transformers.*,huggingface_hub.*]\n"
        "follow_imports = skip\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", "c", str(user)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout
    assert 'Revealed type is "rag_ingest.settings.Settings"' in out.stdout


def test_every_public_coroutine_of_the_processor_has_a_sync_twin() -> None:
    """Scripts and notebooks call the same API without an event loop."""
    import inspect

    from rag_ingest.pipeline import DocumentProcessor, SyncDocumentProcessor

    coroutines = {
        name
        for name, method in inspect.getmembers(DocumentProcessor, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    # Starting and closing are the context manager's (``with SyncDocumentProcessor()``).
    assert coroutines - {"start", "aclose"} <= set(dir(SyncDocumentProcessor))
    assert {"session_usage", "sessions", "process_many", "query"} <= coroutines
