"""The CLI as a user runs it: a subprocess, exit codes, the JSON report, sessions."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag_ingest.testing import SeaweedS3
from tests import docs

pytestmark = pytest.mark.integration


def rag(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag_ingest.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def cli_env(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    client = seaweed.client()
    client.create_bucket(Bucket="clicorpus")
    corpus = docs.corpus()
    for name in ("reports/annual.pdf", "docs/handbook.docx", "docs/readme.md", "code/app.py"):
        client.put_object(Bucket="clicorpus", Key=name, Body=corpus[name])
    client.put_object(
        Bucket="clicorpus", Key="bad/encrypted.pdf", Body=docs.pdf_bytes(["x"], encrypt=True)
    )
    store = tmp_path_factory.mktemp("clistore")
    return {
        "RAG_INGEST_S3__ENDPOINT_URL": seaweed.endpoint_url,
        "RAG_INGEST_S3__ACCESS_KEY_ID": seaweed.access_key,
        "RAG_INGEST_S3__SECRET_ACCESS_KEY": seaweed.secret_key,
        "RAG_INGEST_S3__REGION": "us-east-1",
        "RAG_INGEST_STORE__PERSIST_DIR": str(store),
        "RAG_INGEST_MODELS__EMBEDDER": "hash",
    }


def test_ingest_report_query_delete(cli_env: dict[str, str], tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    run = rag(
        "ingest",
        "s3://clicorpus/",
        "--session",
        "cli-a",
        "--exclude",
        "bad/*",
        "--report",
        str(report_path),
        "--no-progress",
        env=cli_env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "4 ingested, 0 skipped, 0 failed" in run.stdout
    report = json.loads(report_path.read_text())
    assert set(report) == {
        "session_id",
        "started_at",
        "finished_at",
        "totals",
        "documents",
        "usage",
        "pruned",
        "dry_run",
    }
    assert report["session_id"] == "cli-a"
    # The hash embedder read every chunk: nothing was stored before.
    assert report["usage"] == {
        "embedded_chunks": report["totals"]["chunks"],
        "embedded_tokens": report["totals"]["tokens"],
    }
    assert f"model use: {report['totals']['chunks']} chunks embedded" in run.stdout
    assert report["totals"]["listed"] == 4 and report["totals"]["ingested"] == 4
    assert set(report["totals"]) == {
        "listed",
        "ingested",
        "planned",
        "skipped",
        "failed",
        "chunks",
        "tokens",
        "bytes",
        "reused_vectors",
        "reused_answers",
        "pruned",
    }
    # Every source's entry, written as it came (the run keeps only the failed results).
    assert sorted(d["status"] for d in report["documents"]) == ["ingested"] * 4
    for doc in report["documents"]:
        assert set(doc) == {
            "source",
            "filename",
            "file_type",
            "status",
            "error_type",
            "message",
            "warnings",
            "notes",
            "chunks",
            "tokens",
            "bytes",
            "etag",
            "reused_vectors",
            "reused_answers",
            "usage",
            "transient",
            "attempts",
            "seconds",
        }
        assert doc["status"] == "ingested" and doc["chunks"] >= 1 and doc["etag"]

    other = rag(
        "ingest",
        "s3://clicorpus/docs/readme.md",
        "--session",
        "cli-b",
        "--no-progress",
        env=cli_env,
        cwd=tmp_path,
    )
    assert other.returncode == 0, other.stderr

    # Re-running is idempotent: everything skipped.
    again = rag(
        "ingest",
        "s3://clicorpus/",
        "--session",
        "cli-a",
        "--exclude",
        "bad/*",
        "--no-progress",
        env=cli_env,
        cwd=tmp_path,
    )
    assert "0 ingested, 4 skipped" in again.stdout

    query = rag(
        "query",
        "CANARY-MD run pip install",
        "--session",
        "cli-b",
        "-k",
        "10",
        "--json",
        env=cli_env,
        cwd=tmp_path,
    )
    assert query.returncode == 0, query.stderr
    code = rag(
        "query",
        "CANARY-PY ingest one uri",
        "--session",
        "cli-a",
        "-k",
        "1",
        env=cli_env,
        cwd=tmp_path,
    )
    assert "s3://clicorpus/code/app.py lines 1-3 (ingest)" in code.stdout, code.stdout
    hits = json.loads(query.stdout)
    assert hits and all(h["metadata"]["session_id"] == "cli-b" for h in hits)
    assert {h["metadata"]["source"] for h in hits} == {"s3://clicorpus/docs/readme.md"}
    for where, found in (('{"file_type": "pdf"}', 0), ('{"file_type": "markdown"}', 1)):
        narrowed = rag(
            "query", "CANARY-MD", "--session", "cli-b", "--where", where, "--json",
            env=cli_env, cwd=tmp_path,
        )  # fmt: skip
        assert len(json.loads(narrowed.stdout)) == found, narrowed.stderr

    # Every session, from the ledger alone.
    sessions = rag("status", "--json", env=cli_env, cwd=tmp_path)
    assert sessions.returncode == 0, sessions.stderr
    listed = {info["session_id"]: info for info in json.loads(sessions.stdout)}
    assert {"cli-a", "cli-b"} <= set(listed) and listed["cli-b"]["sources"] == 1
    # Searched above (the ledger notes it, for retention), as a session of none may not be.
    assert listed["cli-b"]["last_queried"] >= listed["cli-b"]["last_ingested"]
    # With what each session's model calls cost.
    embedded = listed["cli-a"]["usage"]["embedded_chunks"]
    assert 0 < embedded <= listed["cli-a"]["chunks"]
    listing = rag("status", env=cli_env, cwd=tmp_path).stdout
    assert "cli-a" in listing and f"model use: {embedded} chunks embedded (" in listing
    failing = rag("status", "--failed", "--json", env=cli_env, cwd=tmp_path)
    # None of these failed (another test's session may have).
    assert not {"cli-a", "cli-b"} & {i["session_id"] for i in json.loads(failing.stdout)}
    # Nothing here is a day old; an age must be one.
    young = rag("delete", "--older-than", "1d", env=cli_env, cwd=tmp_path)
    assert young.returncode == 0
    assert "0 sessions last used (ingested into or searched) over 1d ago deleted" in young.stdout
    bad = rag("delete", "--older-than", "soon", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 2 and "positive number" in bad.stderr

    deleted = rag("delete", "--session", "cli-a", env=cli_env, cwd=tmp_path)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    gone = rag("query", "CANARY", "--session", "cli-a", "--json", env=cli_env, cwd=tmp_path)
    assert json.loads(gone.stdout) == []
    kept = rag("query", "CANARY", "--session", "cli-b", "--json", env=cli_env, cwd=tmp_path)
    assert len(json.loads(kept.stdout)) == 1


def test_prune_removes_sources_no_longer_listed(
    seaweed: SeaweedS3, cli_env: dict[str, str], tmp_path: Path
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="cliprune")
    for key in ("notes/keep.md", "notes/gone.md", "notes/skip.txt"):
        client.put_object(Bucket="cliprune", Key=key, Body=f"# {key}\n\nCANARY {key}\n".encode())
    args = ["ingest", "s3://cliprune/notes/", "--session", "cli-p", "--no-progress"]
    first = rag(*args, env=cli_env, cwd=tmp_path)
    assert "3 ingested" in first.stdout, first.stdout + first.stderr
    client.delete_object(Bucket="cliprune", Key="notes/gone.md")
    # skip.txt is not listed under --include '*.md' below: out of scope, kept.
    planned = rag(*args, "--include", "*.md", "--prune", "--dry-run", env=cli_env, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert "--prune would remove (no longer listed): 1\n  s3://cliprune/notes/gone.md" in (
        planned.stdout
    )
    assert "dry run, nothing downloaded, embedded or written: 1 listed: 0 to ingest" in (
        planned.stdout
    )
    report_path = tmp_path / "pruned.json"
    pruned = rag(
        *args,
        "--include",
        "*.md",
        "--prune",
        "--report",
        str(report_path),
        env=cli_env,
        cwd=tmp_path,
    )
    assert pruned.returncode == 0, pruned.stderr
    assert "0 ingested, 1 skipped" in pruned.stdout
    assert "pruned (no longer listed; chunks and ledger rows removed): 1" in pruned.stdout
    report = json.loads(report_path.read_text())
    assert report["pruned"] == ["s3://cliprune/notes/gone.md"] and report["totals"]["pruned"] == 1
    verified = rag("verify", "--session", "cli-p", env=cli_env)
    assert verified.returncode == 0, verified.stderr
    assert "2 sources" in verified.stdout and "0 orphan chunks" in verified.stdout
    hits = rag("query", "CANARY", "--session", "cli-p", "-k", "10", "--json", env=cli_env)
    assert {h["metadata"]["source"] for h in json.loads(hits.stdout)} == {
        "s3://cliprune/notes/keep.md",
        "s3://cliprune/notes/skip.txt",
    }


def test_a_failing_document_exits_1_with_its_reason(
    cli_env: dict[str, str], seaweed: SeaweedS3, tmp_path: Path
) -> None:
    report_path = tmp_path / "r.json"
    # A text no other test ingests (others leave bad/ out): its vectors are embedded here,
    # whichever test ran first.
    seaweed.client().put_object(
        Bucket="clicorpus", Key="bad/own.md", Body=b"# Own\n\nCANARY-OWN-F words of its own.\n"
    )
    run = rag(
        "ingest",
        "s3://clicorpus/bad/",
        "--session",
        "cli-f",
        "--report",
        str(report_path),
        "--no-progress",
        env=cli_env,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert "EncryptedDocumentError" in run.stdout
    report = json.loads(report_path.read_text())
    assert report["totals"]["failed"] == 1 and report["totals"]["ingested"] == 1
    failed = [d for d in report["documents"] if d["status"] == "failed"]
    assert failed[0]["error_type"] == "EncryptedDocumentError" and failed[0]["message"]

    # The ledger's view, without starting a store: every source, or the failed ones.
    status = rag("status", "--session", "cli-f", env=cli_env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "session 'cli-f': 1 failed, 1 ingested" in status.stdout
    only = rag("status", "--session", "cli-f", "--failed", "--json", env=cli_env, cwd=tmp_path)
    rows = json.loads(only.stdout)
    assert [(r["source"], r["error_type"], r["chunks"]) for r in rows] == [
        ("s3://clicorpus/bad/encrypted.pdf", "EncryptedDocumentError", 0)
    ]
    # Each source with what its model calls cost, as the run's report said.
    listed = json.loads(rag("status", "--session", "cli-f", "--json", env=cli_env).stdout)
    assert {r["source"]: r["usage"] for r in listed} == {
        d["source"]: d["usage"] for d in report["documents"]
    }
    own = {r["source"]: r["usage"] for r in listed}["s3://clicorpus/bad/own.md"]
    assert own["embedded_chunks"] == 1 and own["embedded_tokens"] > 0


def test_usage_and_configuration_errors_exit_2_without_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    for args in (
        ["ingest", "s3://x/"],
        ["--bogus"],
        ["ingest", "s3://x/", "--session", "s", "--concurrency", "many"],
    ):
        run = rag(*args, env=cli_env, cwd=tmp_path)
        assert run.returncode == 2, args
        assert "Traceback" not in run.stderr and run.stderr.strip()
    bad = rag(
        "ingest",
        "s3://x/",
        "--session",
        "s",
        env={**cli_env, "RAG_INGEST_TRANSFER__PART_SIZE": "12"},
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = rag(
        "ingest", "s3://x/", "--session", "s", "--embeddings", "nope", env=cli_env, cwd=tmp_path
    )
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def test_reading_commands_pointed_where_no_store_is_say_so_and_create_none(
    tmp_path: Path,
) -> None:
    # Run from the wrong directory: before, query answered "no chunks" from an empty store
    # it had just created in the current directory, and delete said "deleted 0 chunks".
    env = {"RAG_INGEST_MODELS__EMBEDDER": "hash"}
    for args in (["query", "hello"], ["delete"], ["verify"], ["status"]):
        run = rag(*args, "--session", "s1", env=env, cwd=tmp_path)
        assert run.returncode == 1, args
        assert "rag_ingest_data" in run.stderr and "ingest first" in run.stderr, args
        assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_where_no_store_is_plans_everything_and_makes_none(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nCANARY one.\n")
    (tmp_path / "docs" / "b.py").write_text("def f():\n    return 1\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"RAG_INGEST_MODELS__EMBEDDER": "hash", "RAG_INGEST_TEMP_DIR": str(scratch)}
    args = ["ingest", "docs", "--session", "s", "--no-progress"]
    plan = rag(*args, "--dry-run", env=env, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "2 listed: 2 to ingest" in plan.stdout and "not made there" in plan.stdout
    # Neither the store it was pointed at nor the empty one it planned against is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "tmp"]
    assert list(scratch.iterdir()) == []
    # Once a store is there, a dry run plans against it: the prune test's dry run.


def test_an_ingest_that_lists_nothing_warns(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n")
    env = {"RAG_INGEST_MODELS__EMBEDDER": "hash"}
    run = rag("ingest", "docs", "--session", "s", "--include", "*.pdf", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "nothing listed under docs with --include '*.pdf'" in run.stderr
    found = rag("ingest", "docs", "--session", "s", env=env, cwd=tmp_path)
    assert found.returncode == 0 and "nothing listed" not in found.stderr


def test_config_file_is_read_and_flags_win(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text('models = {"embedder": "no-such-embedder"}\n')
    env = {k: v for k, v in cli_env.items() if k != "RAG_INGEST_MODELS__EMBEDDER"}
    from_file = rag("query", "x", "--session", "s", env=env, cwd=tmp_path)
    assert from_file.returncode == 2 and "no-such-embedder" in from_file.stderr
    flag = rag(
        "query", "x", "--session", "s", "--embeddings", "hash", "--json", env=env, cwd=tmp_path
    )
    assert flag.returncode == 0, flag.stderr


def _marked(mark: str) -> list[str]:
    """Command lines of the live processes whose environment carries ``mark``: a run's
    children inherit it, so what a run left behind is found even after it exited, and
    servers other runs on this machine started are not (a system-wide pgrep counted a
    concurrent test session's SeaweedFS as the demo's)."""
    needle = f"RAG_INGEST_TEST_MARK={mark}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return found


def test_demo_finishes_behind_a_proxy_and_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAG_INGEST_PARSE__WARM_UP")  # the README's job, as it runs
    mark = os.urandom(8).hex()
    # A proxy set for the internet, as on a corporate machine (nothing listens there): the
    # demo's servers are on loopback and must be reached directly, S3 by our client and
    # by botocore's for the uploads, Chroma by its heartbeat and chromadb's client.
    dead = "http://127.0.0.1:9"
    proxies = {name: dead for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy")}
    run = rag("demo", "--no-progress", env={"RAG_INGEST_TEST_MARK": mark, **proxies}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "12 ingested, 0 skipped, 0 failed" in run.stdout
    assert "onboarding.docx" in run.stdout
    # The scanned contract is read by OCR and answers its question.
    assert "s3://demo/contracts/pump-service-scan.pdf p.1 [OCR]" in run.stdout
    # The meeting's transcript answers when the app launches, and says where in the call.
    assert "s3://demo/meetings/launch-planning.vtt at 0:00:02-0:00:29" in run.stdout
    assert _marked(mark) == [], "the demo left a process running"


def test_without_ocr_the_demo_leaves_its_scan_out() -> None:
    from rag_ingest.demo import demo_corpus

    everything = demo_corpus()
    assert "contracts/pump-service-scan.pdf" in everything and len(everything) == 12
    assert demo_corpus(scans=False).keys() == everything.keys() - {
        "contracts/pump-service-scan.pdf"
    }


def test_the_demo_uploads_no_bytecode_an_installer_compiled(tmp_path: Path) -> None:
    import compileall
    import shutil
    from importlib import resources

    from rag_ingest.demo import demo_corpus

    installed = tmp_path / "demo_corpus"
    shutil.copytree(Path(str(resources.files("rag_ingest"))) / "demo_corpus", installed)
    # what `pip install` and `uv pip install --compile-bytecode` do to an installed wheel
    assert compileall.compile_dir(installed, quiet=1)
    assert list(installed.glob("code/__pycache__/retry.*.pyc"))
    assert demo_corpus(root=installed) == demo_corpus()


def test_the_summary_of_a_large_run_shows_what_changed_and_ends_with_the_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rag_ingest.cli import print_summary, usage_text
    from rag_ingest.pipeline import IngestReport, IngestResult

    report = IngestReport(session_id="s", started_at="now")
    for i in range(5000):
        report.results.append(
            IngestResult(
                source=f"s3://b/same/{i:04}.md",
                status="skipped",
                success=True,
                message="unchanged since the last ingest",
                total_chunks=1,
            )
        )
    for i in range(60):
        report.results.append(
            IngestResult(
                source=f"s3://b/new/{i:02}.md",
                status="ingested",
                success=True,
                reused_vectors=2,
                reused_answers=i % 2,
                usage={
                    "summary_calls": 1,
                    "summary_input_tokens": 1000,
                    "summary_output_tokens": 50,
                    "embedded_chunks": 3,
                    "embedded_tokens": 600,
                },
            )
        )
    report.results.append(
        IngestResult(source="s3://b/empty.py", status="skipped", success=True, message="empty")
    )
    report.results.append(
        IngestResult(
            source="s3://b/slow.pdf",
            status="failed",
            success=False,
            error_type="S3TimeoutError",
            message="stalled",
            transient=True,
        )
    )
    report.listed = len(report.results)
    print_summary(report, 1.0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert not any("/same/" in line for line in lines)  # unchanged: counted, not listed
    # 50 rows: the empty file (skipped, but not unchanged) and the first 49 new ones.
    assert any(line.endswith("s3://b/empty.py") for line in lines)
    assert sum("/new/" in line for line in lines) == 49
    assert "... and 12 more (--report FILE lists every source)" in lines
    assert "  s3://b/slow.pdf: S3TimeoutError: stalled (may pass: run again later)" in lines
    assert lines[-1].startswith("5062 listed: 60 ingested, 5001 skipped, 1 failed")
    assert "; 120 stored vectors kept; 30 model answers kept" in lines[-1]
    assert (
        "model use: 60 summary calls (60,000 tokens in, 3,000 out), "
        "180 chunks embedded (36,000 tokens)"
    ) in lines
    # Calls that failed, tried again or given up (a provider may bill them), said too.
    failed = {"summary_failed_calls": 2, "image_failed_calls": 1, "embedding_failed_calls": 3}
    assert usage_text({"summary_calls": 1, "embedded_chunks": 4, **failed}) == (
        "1 summary call (2 more failed), 0 picture calls (1 more failed), "
        "4 chunks embedded (0 tokens; 3 embedding calls failed)"
    )
    assert usage_text({"embedding_failed_calls": 1}) == (
        "0 chunks embedded (0 tokens; 1 embedding call failed)"
    )


def test_the_summary_holds_a_bounded_few_of_a_long_runs_results() -> None:
    """A run of a million sources had its summary made of every result, held to the
    end: the digest keeps the first rows by source as they come, and counts the rest."""
    import random

    from rag_ingest.cli import Digest
    from rag_ingest.pipeline import IngestResult

    results = [
        IngestResult(
            source=f"s3://b/{i:05}.md", status="ingested", success=True, embedder="hash",
            warnings=["w"] * (i % 3 == 0), notes=["n"] * (i % 5 == 0),
        )
        for i in range(5000)
    ]  # fmt: skip
    random.Random(7).shuffle(results)
    digest = Digest()
    for r in results:
        digest.add(r)
        assert len(digest.rows._held) <= 100 and len(digest.warned._held) <= 20
    assert [r.source for r in digest.rows.first()] == [f"s3://b/{i:05}.md" for i in range(50)]
    assert digest.rows.count == 5000 and digest.warned.count == 1667 and digest.noted == 1000
    assert [r.source for r in digest.warned.first()] == [
        f"s3://b/{i:05}.md" for i in range(0, 30, 3)
    ]
    assert digest.embedders == {"hash"}


def test_a_report_file_is_whole_or_not_there(tmp_path: Path) -> None:
    from rag_ingest.cli import ReportFile
    from rag_ingest.pipeline import IngestReport, IngestResult

    report = IngestReport(session_id="s", started_at="now", keep="failed")
    written = ReportFile(tmp_path / "out" / "r.json")
    for i in range(3):
        result = IngestResult(source=f's3://b/{i}.md\n"x"', status="ingested", success=True)
        report.add(result)
        written.add(result)
    written.finish(report)
    document = json.loads((tmp_path / "out" / "r.json").read_text())
    assert [d["source"] for d in document["documents"]] == [f's3://b/{i}.md\n"x"' for i in range(3)]
    assert document["totals"]["ingested"] == 3 and report.results == []
    assert os.listdir(tmp_path / "out") == ["r.json"]

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    failing = ReportFile(tmp_path / "full.json")
    failing._entries.close()
    failing._entries = FullDisk()
    failing.add(result)  # an on_result callback: what it raises is only logged
    with pytest.raises(OSError, match="No space left"):
        failing.finish(report)
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_the_summary_and_the_report_say_what_was_read_with_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pages left unread without OCR, lines left out: on the result, and said nowhere a
    CLI user looked, not even in --report."""
    from rag_ingest.cli import print_summary, report_json
    from rag_ingest.pipeline import IngestReport, IngestResult

    report = IngestReport(session_id="s", started_at="now")
    unread = "1 scanned page(s) (2) not read: OCR is off, or its extra is not installed"
    for i in range(12):
        report.results.append(
            IngestResult(
                source=f"s3://b/scan{i:02}.pdf", status="ingested", success=True,
                warnings=[unread, "another"] if i == 0 else [f"note {i} " + "x" * 200],
            )
        )  # fmt: skip
    report.results.append(IngestResult(source="s3://b/plain.md", status="ingested", success=True))
    report.listed = len(report.results)
    print_summary(report, 1.0)
    lines = capsys.readouterr().out.splitlines()
    assert "with warnings: 12" in lines
    assert f"  s3://b/scan00.pdf: {unread} (+1 more)" in lines
    cut = next(line for line in lines if line.startswith("  s3://b/scan01.pdf: note 1 "))
    assert cut.endswith("x…") and len(cut) == len("  s3://b/scan01.pdf: ") + 160
    assert "  ... and 2 more (--report FILE lists every warning)" in lines
    assert not any("plain.md:" in line for line in lines)
    documents = report_json(report)["documents"]
    assert documents[0]["warnings"] == [unread, "another"] and documents[-1]["warnings"] == []


def test_how_a_file_was_read_is_a_note_not_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/usr/share/doc here: 1,837 of 4,073 sources "with warnings", the ten shown each
    "decompressed from gzip" or "unknown extension ...; treated as text", the one whose
    chunks had a password masked somewhere past them."""
    import gzip

    from rag_ingest import cli

    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    for i in range(12):
        (docs_dir / f"changelog.{i:02}.gz").write_bytes(gzip.compress(b"CANARY fixed %d\n" % i))
    (docs_dir / "adduser.local").write_text("#!/bin/sh\n# CANARY: run after adduser.\n")
    (docs_dir / "setup.md").write_text(
        "# Setup\n\nClone https://deploy:hunter2secret@git.corp.internal/app.git first.\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_INGEST_MODELS__EMBEDDER", "hash")
    monkeypatch.setenv("RAG_INGEST_PARSE__MODE", "thread")
    args = ["ingest", "docs", "--session", "s", "--no-progress", "--report", "report.json"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "with warnings: 1" in lines
    said = "setup.md: credentials masked in its chunks: password in a URL (1)"
    warned = lines.index("with warnings: 1")
    assert said in lines[warned + 1] and lines[warned + 2] == ""
    how = "(decompressed, type told by content; --report FILE lists them)"
    assert f"13 read with notes of how {how}" in lines
    documents = {
        Path(d["source"]).name: d
        for d in json.loads((tmp_path / "report.json").read_text())["documents"]
    }
    assert documents["changelog.03.gz"]["notes"] == ["decompressed from gzip"]
    assert documents["changelog.03.gz"]["warnings"] == []
    assert documents["adduser.local"]["notes"] == ["unknown extension .local; treated as text"]
    assert documents["setup.md"]["notes"] == []
    assert len(documents["setup.md"]["warnings"]) == 1


def test_a_long_source_is_cut_at_its_start_with_a_mark(capsys: pytest.CaptureFixture[str]) -> None:
    from rag_ingest.cli import print_summary
    from rag_ingest.pipeline import IngestReport, IngestResult

    report = IngestReport(session_id="s", started_at="now")
    long = "file:///work/main/rag_ingest/demo_corpus/reports/security-policy.pdf"
    report.results.append(IngestResult(source=long, status="ingested", success=True))
    report.listed = 1
    print_summary(report, 1.0)
    row = next(line for line in capsys.readouterr().out.splitlines() if "security" in line)
    shown = row.split()[-1]
    assert shown == "…" + long[-47:] and len(shown) == 48


def installed(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed script, as a user runs it: the working directory is not on its path."""
    script = str(Path(sys.executable).parent / "rag-ingest")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_models_named_by_module_and_attribute(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(
        "from langchain_core.runnables import RunnableLambda\n"
        "from rag_ingest import HashEmbeddings\n"
        "summarizer = RunnableLambda(lambda prompt: 'SUMMARY-CANARY of the document')\n"
        "def embeddings():\n"
        "    return HashEmbeddings()\n"
    )
    (tmp_path / "doc.md").write_text("# Notes\n\nThe quarterly CANARY-NOTES text.\n")
    common = ["--persist-dir", "store", "--embeddings", "mymodels:embeddings"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return installed(tmp_path, *args)

    ingest = run(
        "ingest", "doc.md", "--session", "m", "--summarizer", "mymodels:summarizer",
        "--no-progress", *common,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "1 ingested" in ingest.stdout
    hits = json.loads(run("query", "CANARY-NOTES", "--session", "m", "--json", *common).stdout)
    assert hits[0]["metadata"]["summary"] == "SUMMARY-CANARY of the document"

    bad = run("ingest", "doc.md", "--session", "m", "--summarizer", "nomodule:x", *common)
    assert bad.returncode == 2
    assert "summarizer 'nomodule:x' cannot be loaded: ModuleNotFoundError" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_vectorstore_named_by_module_and_attribute(tmp_path: Path) -> None:
    # A caller's store from the command line: Qdrant's local mode on disk, made by a
    # factory in the working directory. Ingest, query, status, verify and delete all go
    # to it, with the ledger in --persist-dir and no Chroma made there.
    (tmp_path / "mystores.py").write_text(
        "from langchain_qdrant import QdrantVectorStore\n"
        "from qdrant_client import QdrantClient, models\n"
        "from rag_ingest import HashEmbeddings\n"
        "not_a_store = 'chroma'\n"
        "def notes():\n"
        "    client = QdrantClient(path='qdrant')\n"
        "    if not client.collection_exists('notes'):\n"
        "        params = models.VectorParams(size=384, distance=models.Distance.COSINE)\n"
        "        client.create_collection('notes', vectors_config=params)\n"
        "    return QdrantVectorStore(client=client, collection_name='notes',\n"
        "                             embedding=HashEmbeddings())\n"
    )
    (tmp_path / "doc.md").write_text("# Notes\n\nThe quarterly CANARY-QDRANT text.\n")

    def run(*args: str, store: str = "mystores:notes") -> subprocess.CompletedProcess[str]:
        common = ["--persist-dir", "store", "--vectorstore", store, "--no-progress"]
        return installed(tmp_path, *args, *common)

    ingest = run("ingest", "doc.md", "--session", "q")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "1 ingested" in ingest.stdout and "(embedder: hash)" in ingest.stdout
    hits = json.loads(run("query", "CANARY-QDRANT", "--session", "q", "--json").stdout)
    assert "CANARY-QDRANT" in hits[0]["text"]
    status = run("status", "--session", "q")
    assert status.returncode == 0 and "1 ingested" in status.stdout, status.stderr
    assert run("verify", "--session", "q").returncode == 0
    deleted = run("delete", "--session", "q")
    assert deleted.returncode == 0 and f"deleted {hits[0]['metadata']['chunk_index'] + 1}" in (
        deleted.stdout
    )
    assert sorted(p.name for p in (tmp_path / "store").iterdir() if "chroma" in p.name) == []

    bad = run("ingest", "doc.md", "--session", "q", store="mystores:not_a_store")
    assert bad.returncode == 2 and "is a str, not a LangChain VectorStore" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_standard_input_is_one_named_document(tmp_path: Path) -> None:
    env = {"RAG_INGEST_STORE__PERSIST_DIR": str(tmp_path / "store")}
    page = b"<html><head><title>Piped page</title></head><body><p>canary LYNX</p></body></html>"

    def ingest(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "rag_ingest.cli", "ingest", "-", "--session", "pipe"),
                *("--embeddings", "hash", "--no-progress", *extra),
            ],
            input=page.decode(),
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, **env},
        )

    refused = ingest()
    assert refused.returncode == 2 and "--name" in refused.stderr
    run = ingest("--name", "page.html", "--report", str(tmp_path / "r.json"))
    assert run.returncode == 0, run.stderr
    (result,) = json.loads((tmp_path / "r.json").read_text())["documents"]
    assert result["status"] == "ingested" and result["file_type"] == "html"
    assert result["source"] == "upload://page.html" and result["filename"] == "page.html"
    assert ingest("--name", "page.html").returncode == 0  # the same bytes: skipped
    # Queried with the embedder it was ingested with: any other is refused, by name.
    other = rag("query", "LYNX", "--session", "pipe", "--embeddings", "minilm", env=env)
    assert other.returncode == 2 and "'hash'" in other.stderr and "'minilm'" in other.stderr
    hits = rag("query", "LYNX", "--session", "pipe", "--json", "--embeddings", "hash", env=env)
    (hit,) = json.loads(hits.stdout)
    assert "LYNX" in hit["text"] and hit["metadata"]["filename"] == "page.html"


def test_a_dry_runs_table_shows_each_planned_source_its_size_and_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rag_ingest.cli import print_plan
    from rag_ingest.pipeline import IngestReport, IngestResult

    report = IngestReport(session_id="s", started_at="now", dry_run=True)
    report.results += [
        IngestResult(
            source="s3://b/new.pdf",
            status="planned",
            success=True,
            bytes=2_500_000,
            message="would be ingested: new",
        ),
        IngestResult(source="s3://b/same.md", status="skipped", success=True, message="unchanged"),
    ]
    report.listed = 2
    print_plan(report, 0.5)
    lines = capsys.readouterr().out.strip().splitlines()
    assert "    2.50  s3://b/new.pdf  new" in lines
    assert not any("same.md" in line for line in lines)
    assert lines[-1] == (
        "dry run, nothing downloaded, embedded or written: 2 listed: 1 to ingest "
        "(2.5 MB to download), 1 skipped, 0 failed in 0.5s"
    )


def test_one_shot_commands_open_the_store_without_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag_ingest import cli
    from rag_ingest.chroma_server import LocalChromaServer

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nCANARY one.\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_INGEST_MODELS__EMBEDDER", "hash")
    monkeypatch.setenv("RAG_INGEST_PARSE__MODE", "thread")
    # Set as config.py shows it: ingest keeps its server, the one-shot commands need none.
    monkeypatch.setenv("RAG_INGEST_STORE__EMBEDDED_MODE", "server")
    servers: list[LocalChromaServer] = []
    start = LocalChromaServer.start
    monkeypatch.setattr(
        LocalChromaServer, "start", lambda self: servers.append(self) or start(self)
    )
    assert cli.main(["ingest", "docs", "--session", "s", "--no-progress"]) == 0
    assert len(servers) == 1
    (tmp_path / "docs" / "b.md").write_text("# B\n\nCANARY two.\n")
    assert cli.main(["ingest", "docs", "--session", "s", "--dry-run", "--no-progress"]) == 0
    assert "1 to ingest" in capsys.readouterr().out
    redo = ["ingest", "docs", "--session", "s", "--dry-run", "--reingest", "--no-progress"]
    assert cli.main(redo) == 0
    assert "2 to ingest" in capsys.readouterr().out  # a.md, unchanged, read again too
    assert cli.main(["query", "CANARY", "--session", "s"]) == 0
    assert "CANARY one." in capsys.readouterr().out
    assert cli.main(["verify", "--session", "s"]) == 0
    assert cli.main(["delete", "--session", "s"]) == 0
    assert "deleted 1 chunks of session 's'" in capsys.readouterr().out
    assert len(servers) == 1


def test_status_says_a_session_s_unfinished_writes(capsys: pytest.CaptureFixture[str]) -> None:
    import datetime

    from rag_ingest.cli import _print_sessions
    from rag_ingest.store import SessionInfo

    when = datetime.datetime(2026, 12, 4, 5, 0, tzinfo=datetime.UTC)
    cut = SessionInfo("cut", 0, 0, 0, when, {"summary_calls": 1}, pending=7)
    whole = SessionInfo("whole", 2, 9, 0, when)
    assert _print_sessions([cut, whole], as_json=False) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["0", "0", "0", "2026-12-04", "05:00:00", "cut"]
    assert "model use: 1 summary call" in lines[2]
    assert "7 chunk IDs of unfinished writes" in lines[3] and "verify --repair" in lines[3]
    assert lines[4].split()[-1] == "whole" and len(lines) == 5
    assert _print_sessions([cut], as_json=True) == 0
    assert json.loads(capsys.readouterr().out)[0]["pending"] == 7


def test_status_of_one_session_says_its_model_use_and_unfinished_writes(tmp_path: Path) -> None:
    from rag_ingest.settings import Settings
    from rag_ingest.store import Ledger, ledger_path

    settings = Settings.model_validate({"store": {"persist_dir": str(tmp_path / "store")}})
    ledger = Ledger(ledger_path(settings.store))
    ledger.add_pending("cut", "s3://b/a.md", ["x", "y", "z"])
    ledger.add_model_use(session_id="cut", source="s3://b/a.md", model_use={"summary_calls": 2})
    ledger.close()
    shown = rag("status", "--session", "cut", "--persist-dir", str(tmp_path / "store"))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "session 'cut': no sources"
    assert lines[1] == "model use: 2 summary calls"
    assert lines[2].startswith("3 chunk IDs of unfinished writes") and len(lines) == 3


@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stopped_ingest_cleans_up_after_itself(
    tmp_path: Path, stop: signal.Signals, code: int, said: str
) -> None:
    """SIGTERM (docker stop, Kubernetes, systemd, timeout) stops as Ctrl-C does: the
    work cancelled and cleaned up. By its default it had ended the process on the spot,
    leaving each parser worker's scratch directory behind. Either way it says what it
    got done (before, only that it stopped)."""
    import sqlite3

    import psutil

    from tests.conftest import ingest_until_parsing

    process, _, _ = ingest_until_parsing(
        tmp_path,
        300,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as from a terminal: a background job of a script would ignore SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    ledger = tmp_path / "store" / "ledger.sqlite3"

    def stored() -> int:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
                return int(db.execute("SELECT count(*) FROM sources").fetchone()[0])
        except sqlite3.OperationalError:  # not made yet
            return 0

    try:
        children = psutil.Process(process.pid).children(recursive=True)
        assert children  # the parser workers and the Chroma server
        deadline = time.monotonic() + 120
        while stored() < 3:  # some done, most not
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(stop)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    assert f"rag-ingest: {said} after" in err and "Traceback" not in err
    tally = re.search(r"rag-ingest: stopped with (\d+) ingested, 0 skipped, 0 failed; ", err)
    assert tally, err
    # Exactly what the next run skips: a batch's documents stopped between their write
    # and their "done" event are counted from their ledger rows (by events alone, 16
    # were told of where 32 were stored, by hand).
    assert 3 <= int(tally[1]) == stored() < 300
    assert list((tmp_path / "temp").iterdir()) == []
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == []


def test_main_called_off_the_main_thread_runs_without_a_sigterm_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A signal handler can be set on the main thread only; a caller's thread still runs it.
    import threading

    from rag_ingest.cli import main

    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(main(["status", "--persist-dir", str(tmp_path / "none")]))
    )
    thread.start()
    thread.join()
    assert codes == [1]
    assert "no ledger at" in capsys.readouterr().err
