"""Claims in the ledger: processes sharing one ledger file ingest a source one at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag_ingest.ledger import SESSION_CLAIM, Ledger, _this_host, claim_owner


def two_ledgers(tmp_path: Path) -> tuple[Ledger, Ledger]:
    """Two connections to one file, as two processes have."""
    path = tmp_path / "ledger.sqlite3"
    return Ledger(path), Ledger(path)


def test_a_claim_is_its_owners_until_released(tmp_path: Path) -> None:
    a, b = two_ledgers(tmp_path)
    me, other = claim_owner(), claim_owner()
    assert me != other
    assert a.claim("s", "doc", me) is None
    assert b.claim("s", "doc", other) == me
    assert b.claim("s", "other-doc", other) is None  # another source is free
    assert b.claim("t", "doc", other) is None  # and the same source in another session
    assert a.claim("s", "doc", me) is None  # its own again: renewed, not refused
    a.release_claim("s", "doc", other)  # not other's to release: no effect
    assert b.claim("s", "doc", other) == me
    a.release_claim("s", "doc", me)
    assert b.claim("s", "doc", other) is None
    assert a.claim("s", "doc", me) == other


def test_a_claim_not_renewed_lapses_and_a_renewed_one_holds(tmp_path: Path) -> None:
    a, b = two_ledgers(tmp_path)
    me, other = claim_owner(), claim_owner()
    assert a.claim("s", "lapses", me, ttl=0.3) is None
    assert a.claim("s", "renewed", me, ttl=0.3) is None
    time.sleep(0.2)
    assert a.renew_claim("s", "renewed", me, ttl=0.3)
    time.sleep(0.2)
    assert b.claim("s", "lapses", other) is None  # 0.4 s after a claim of 0.3 s
    assert b.claim("s", "renewed", other) == me  # renewed 0.2 s ago for 0.3 s
    assert not a.renew_claim("s", "lapses", me)  # taken over: no longer its to renew


def test_a_claim_of_a_process_gone_is_taken_over_at_once(tmp_path: Path) -> None:
    a, b = two_ledgers(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    pid = int(gone.stdout)
    dead = f"{_this_host()}:{pid}:0badc0de"
    elsewhere = f"another-host#1:{pid}:0badc0de"  # its PID means nothing here
    assert a.claim("s", "dead", dead) is None
    assert a.claim("s", "elsewhere", elsewhere) is None
    assert b.claim("s", "dead", claim_owner()) is None  # its 60 s not waited out
    assert b.claim("s", "elsewhere", claim_owner()) == elsewhere


def test_processes_racing_for_sources_each_get_a_source_once(tmp_path: Path) -> None:
    """Two processes claim the same 300 sources at once: each source goes to one of them,
    and neither fails on the other's lock (with a deferred BEGIN, "database is locked":
    a transaction that read, then wrote after the other's commit)."""
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()  # tables made before the race
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import random, sys, time
        from pathlib import Path
        from rag_ingest.ledger import Ledger, claim_owner
        ledger, me = Ledger(Path({str(path)!r})), claim_owner()
        print("ready", flush=True)
        while not Path({str(go)!r}).exists():
            time.sleep(0.001)
        order = list(range(300))
        random.Random(sys.argv[1]).shuffle(order)  # each its own order: they collide
        got = [n for n in order if ledger.claim("s", f"doc{{n}}", me) is None]
        print(" ".join(map(str, got)), flush=True)
        sys.stdin.read()  # alive until both are done: a gone claimant's claims are free
        """
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(2)
    ]  # fmt: skip
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
        go.touch()
        won = []
        for racer in racers:
            assert racer.stdout is not None
            won.append({int(n) for n in racer.stdout.readline().split()})
    finally:
        for racer in racers:
            _, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
    assert won[0] | won[1] == set(range(300))
    assert not won[0] & won[1]


def test_a_claim_on_a_session_holds_its_sources_and_sees_those_in_hand(tmp_path: Path) -> None:
    a, b = two_ledgers(tmp_path)
    deleter, ingester = claim_owner(), claim_owner()
    assert b.claim("s", "in-hand", ingester) is None
    assert a.claim("s", SESSION_CLAIM, deleter) is None  # sources in hand do not stop it
    assert a.claimants("s", deleter) == [ingester]  # ... it waits for them
    assert b.claim("s", "new", ingester) == deleter  # and new ones wait for it
    assert b.claim("t", "new", ingester) is None  # another session's do not
    assert b.claim("s", SESSION_CLAIM, ingester) == deleter  # nor does a second delete
    b.release_claim("s", "in-hand", ingester)
    assert a.claimants("s", deleter) == []
    a.release_claim("s", SESSION_CLAIM, deleter)
    assert b.claim("s", "new", ingester) is None


def test_a_session_quota_counts_what_every_process_holds(tmp_path: Path) -> None:
    a, b = two_ledgers(tmp_path)
    me, other = claim_owner(), claim_owner()
    seen: list[tuple[int, int, int]] = []

    def one_document(documents: int, chunks: int, size: int) -> None:
        seen.append((documents, chunks, size))
        if documents >= 1:
            raise RuntimeError("full")

    assert a.claim("s", "one", me) is None
    a.reserve("s", "one", me, one_document, 5, 100)  # held on its claim
    assert b.claim("s", "two", other) is None
    b.reserve("s", "two", other, lambda *held: seen.append(held), None, 10)  # a check only
    with pytest.raises(RuntimeError):
        b.reserve("s", "two", other, one_document, 3, 10)
    assert seen[-2:] == [(1, 5, 100)] * 2  # the other process's document in flight
    a.record(session_id="s", source="one", version="v", size=100, status="ingested",
             chunk_ids=[f"id{i}" for i in range(5)], fingerprint="f")  # fmt: skip
    with pytest.raises(RuntimeError):
        b.reserve("s", "two", other, one_document, 3, 10)
    assert seen[-1] == (1, 5, 100)  # now in its row, counted once
    assert a.claim("t", "x", me) is None
    a.reserve("t", "x", me, one_document, 2, 20)
    a.release_claim("t", "x", me)  # failed, say: its hold goes with its claim
    b.reserve("t", "y", other, one_document, 3, 30)
    assert seen[-1] == (0, 0, 0)


def test_claims_that_hold_nothing_are_dropped(tmp_path: Path) -> None:
    """A killed process's claims were never read as held, but their rows stayed."""
    a, b = two_ledgers(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    me, dead = claim_owner(), f"{_this_host()}:{int(gone.stdout)}:0badc0de"
    elsewhere = "another-host#1:1:0badc0de"
    assert a.claim("s", "mine", me) is None
    assert a.claim("s", "dead", dead) is None
    assert a.claim("s", "lapsed-long-ago", elsewhere, ttl=-0.5) is None
    assert a.claim("s", "lapsed-just-now", elsewhere, ttl=-0.1) is None
    assert a.claim("s", "held-elsewhere", elsewhere) is None
    assert b.drop_dead_claims(ttl=0.3) == 2
    rows = a._db.execute("SELECT source FROM claims ORDER BY source").fetchall()
    assert [r[0] for r in rows] == ["held-elsewhere", "lapsed-just-now", "mine"]
    assert b.claim("s", "mine", claim_owner()) == me  # a live claim still holds
    assert b.claim("s", "held-elsewhere", claim_owner()) == elsewhere
