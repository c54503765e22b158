"""Nothing reports home: onnxruntime (RapidOCR's OCR models) keeps a device ID and a
queue of usage events under the home and uploads them to Microsoft unless told not to
before it starts. An ingest that reads a scan by OCR leaves nothing of it, in worker
processes or in the caller's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import docs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_reading_a_scan_by_ocr_leaves_no_telemetry_behind(tmp_path: Path, mode: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    scan = tmp_path / "scan.png"
    scan.write_bytes(docs.scan_image(["Scanned memo CANARY-OCR"]))
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env |= {"HOME": str(home), "RAG_INGEST_MODELS__EMBEDDER": "hash"}
    env |= {"RAG_INGEST_PARSE__MODE": mode, "RAG_INGEST_PARSE__OCR": "on"}
    env.pop("XDG_CACHE_HOME", None)
    store = str(tmp_path / "store")
    command = ["ingest", str(scan), "--session", "s", "--persist-dir", store, "--no-progress"]
    run = subprocess.run(
        [sys.executable, "-m", "rag_ingest.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "1 ingested" in run.stdout and "1 chunks" in run.stdout  # its text, by OCR
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    # the tokenizer's vocabulary alone (tokens.py), no .cache/Microsoft/...
    assert [Path(p).parent for p in written] == [Path(".cache/rag-ingest/tiktoken")]
