"""What an ingest stopped short says it got done (``rag_ingest.cli._Finished``)."""

from __future__ import annotations

from pathlib import Path

from rag_ingest.cli import _Finished
from rag_ingest.ledger import Ledger
from rag_ingest.progress import IngestEvent


def _record(ledger: Ledger, source: str, status: str, session: str = "s", chunks: int = 1) -> None:
    ledger.record(
        session_id=session,
        source=source,
        version="v1",
        size=1,
        status=status,
        chunk_ids=[f"{source}#{i}" for i in range(chunks)],
        fingerprint=None,
    )


def test_a_stopped_ingest_counts_what_the_ledger_got_and_its_events_did_not(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    _record(ledger, "file:///old.md", "ingested")  # an earlier run's: not this one's
    finished = _Finished(None)
    finished.ledger = ledger.path
    for source, stage, message in [
        ("file:///a.md", "done", "ingested"),
        ("file:///b.md", "done", "skipped"),
        ("file:///c.md", "failed", "damaged"),
        ("file:///c.md", "done", "ingested"),  # tried again, and ingested
        ("file:///d.md", "failed", "damaged"),
    ]:
        finished(IngestEvent(source=source, stage=stage, message=message))
    _record(ledger, "file:///a.md", "ingested")
    _record(ledger, "file:///c.md", "ingested")
    _record(ledger, "file:///d.md", "failed")
    # A batch written as the stop came: in the ledger, their "done" events never sent.
    _record(ledger, "file:///e.md", "ingested")
    _record(ledger, "file:///f.md", "ingested")
    _record(ledger, "file:///g.md", "failed")
    _record(ledger, "file:///blank.md", "ingested", chunks=0)  # reported as skipped
    _record(ledger, "file:///h.md", "ingested", session="other")
    ledger.close()
    assert finished.tally("s").startswith("stopped with 4 ingested, 2 skipped, 2 failed; ")
    # With no ledger to read (a start that was stopped), the events' word alone.
    alone = _Finished(None)
    alone(IngestEvent(source="file:///a.md", stage="done", message="ingested"))
    assert alone.tally("s").startswith("stopped with 1 ingested, 0 skipped, 0 failed; ")
    # --reingest: the same command again reads it all again, so no "goes on".
    assert alone.tally("s", reingest=True) == "stopped with 1 ingested, 0 skipped, 0 failed"
