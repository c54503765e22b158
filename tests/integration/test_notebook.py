"""The quick-start notebook runs top to bottom (nbclient, a real kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RAG_INGEST_NOTEBOOK_EMBEDDER", "hash")
    monkeypatch.delenv("RAG_INGEST_PARSE__WARM_UP")  # a user's kernel warms its workers
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    scratch = tmp_path / "tmp"  # the kernel's temp dir: the notebook cleans up after itself
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = str(outputs)
    assert "'ingested': 12" in text and "onboarding.docx" in text
    assert os.environ.get("RAG_INGEST_NOTEBOOK_EMBEDDER") == "hash"
    assert [p.name for p in scratch.iterdir() if p.name.startswith("rag-ingest")] == []
