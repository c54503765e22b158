"""One writer per embedded store directory, in either embedded mode, with a message
that says which case it is."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag_ingest.errors import StoreError
from rag_ingest.pipeline import SyncDocumentProcessor
from rag_ingest.settings import Settings

pytestmark = pytest.mark.integration


def settings(persist_dir: Path, mode: str) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(persist_dir), "embedded_mode": mode},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
        }
    )


def loop_threads() -> int:
    return sum(t.name == "rag-ingest-processor" for t in threading.enumerate())


HOLD = """
import sys, time
from rag_ingest.pipeline import SyncDocumentProcessor
from rag_ingest.settings import Settings
s = Settings.model_validate({"progress": False, "models": {"embedder": "hash"},
    "parse": {"mode": "thread", "workers": 1},
    "store": {"persist_dir": sys.argv[1], "embedded_mode": sys.argv[2]}})
try:
    with SyncDocumentProcessor(s) as p:
        print("started", flush=True)
except Exception as exc:
    print(type(exc).__name__, exc, flush=True)
"""


@pytest.mark.parametrize("mode", ["server", "in-process"])
def test_a_second_writer_is_refused_in_this_process_and_in_another(
    tmp_path: Path, mode: str
) -> None:
    """In this process, always; in another, when the first runs Chroma in its own
    process (a served directory is joined: test_joined_server.py)."""
    doc = tmp_path / "a.txt"
    doc.write_text("text to index\n" * 5)
    store = tmp_path / "store"
    first = SyncDocumentProcessor(settings(store, mode))
    assert first.process_many([doc], session_id="s").totals["ingested"] == 1
    try:
        # A notebook cell that made a processor, run again without closing the first.
        loops = loop_threads()
        with pytest.raises(StoreError, match="another DocumentProcessor in this process"):
            SyncDocumentProcessor(settings(store, mode))
        # Counted by name: other libraries' pools (Chroma's in-process one) start and
        # stop threads of their own meanwhile.
        assert loop_threads() == loops  # the failed one left no loop thread
        other = subprocess.run(
            [sys.executable, "-c", HOLD, str(store), mode],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if mode == "in-process":
            said = "StoreBusyError another process is writing to"
            assert other.stdout.startswith(said), other.stderr[-2000:]
            assert "serves no Chroma server this process can join" in other.stdout
        else:
            assert other.stdout.strip() == "started", other.stderr[-2000:]
    finally:
        first.close()
    # Closed: the next one, here or in another process, takes the store.
    with SyncDocumentProcessor(settings(store, mode)) as again:
        assert again.process_many([doc], session_id="s").totals["skipped"] == 1
    after = subprocess.run(
        [sys.executable, "-c", HOLD, str(store), mode], capture_output=True, text=True, timeout=120
    )
    assert after.stdout.strip() == "started", after.stderr[-2000:]


def test_a_store_directory_without_locks_is_a_store_error_that_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS without its lock daemon, some FUSE mounts: a raw OSError had escaped the start,
    # its lock file left open.
    import errno
    import fcntl

    from rag_ingest.chroma_server import StoreLock

    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    with monkeypatch.context() as patched:
        patched.setattr(fcntl, "flock", no_locks)
        with pytest.raises(StoreError, match=r"cannot lock the store directory .*No locks"):
            StoreLock(tmp_path / "chroma")
    # Nothing is held: the directory is not taken for one this process uses.
    StoreLock(tmp_path / "chroma").release()
