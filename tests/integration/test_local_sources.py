"""Local directories: what a walk takes, and what it leaves alone."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.errors import ConfigurationError
from rag_ingest.pipeline import IngestReport, SyncDocumentProcessor
from rag_ingest.settings import Settings
from rag_ingest.sources import listed_by, walk_files
from tests import docs as tests_docs
from tests.conftest import IN_PROCESS_STORE

pytestmark = pytest.mark.integration


def tree(root: Path) -> None:
    for name in ("a.txt", "docs/b.md", "docs/deep/c.py", ".env", ".git/HEAD", "docs/.cache/x.txt"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {name}\n" * 5)


def local_settings(persist_dir: str, **extra: Any) -> Settings:
    """Hash embeddings and parsing in a thread: local files, no S3, fast."""
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": persist_dir, **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
            **extra,
        }
    )


def test_a_walk_is_sorted_skips_hidden_entries_and_named_directories(tmp_path: Path) -> None:
    tree(tmp_path)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "db.sqlite3").write_text("x")
    (tmp_path / "docs" / "deep" / "__pycache__").mkdir()
    (tmp_path / "docs" / "deep" / "__pycache__" / "c.cpython-311.pyc").write_bytes(b"\xa7\r\r\n")
    found = [
        p.relative_to(tmp_path).as_posix() for p in walk_files(tmp_path, skip=[tmp_path / "store"])
    ]
    assert found == ["a.txt", "docs/b.md", "docs/deep/c.py"]
    assert [p.name for p in walk_files(tmp_path, include=["*.md"])] == ["b.md"]


def test_globs_match_paths_under_the_walked_directory(tmp_path: Path) -> None:
    # `rag-ingest ingest ~/project --exclude 'docs/deep/*'` must mean that folder of the
    # tree named, whatever the path it was named by; before, only "." did.
    tree(tmp_path)

    def names_under(root: Path, **globs: list[str]) -> list[str]:
        return [p.relative_to(root).as_posix() for p in walk_files(root, **globs)]

    for root in (tmp_path, Path(os.path.relpath(tmp_path))):
        names = functools.partial(names_under, root)
        assert names(exclude=["docs/deep/*"]) == ["a.txt", "docs/b.md"]
        assert names(include=["docs/*.md"]) == ["docs/b.md"]
        assert names(include=["a.txt"]) == ["a.txt"]
        assert names(include=[f"{root.as_posix()}/docs/*"]) == ["docs/b.md", "docs/deep/c.py"]
        # Pruning agrees with the walk about what the globs select.
        listed = listed_by(root, exclude=["docs/deep/*"])
        assert listed((tmp_path / "docs/b.md").as_uri())
        assert not listed((tmp_path / "docs/deep/c.py").as_uri())


def test_a_walk_follows_gitignore_files_as_git_does(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".gitignore").write_text("secret.txt\n")  # above the walked directory
    root = repo / "project"
    files = [
        "a.md",
        "secret.txt",
        "debug.log",
        "keep.log",
        "build/out.md",
        "docs/draft-1.md",
        "docs/final.md",
        "docs/sub/draft-2.md",
        "node_modules/pkg/readme.md",
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\nnode_modules\n")
    (root / "docs" / ".gitignore").write_text("draft-*.md\n")
    found = [p.relative_to(root).as_posix() for p in walk_files(root)]
    assert found == ["a.md", "keep.log", "docs/final.md"]
    # Pruning's test of "would a walk list it" agrees with the walk, file by file.
    listed = listed_by(root)
    for name in files:
        assert listed((root / name).resolve().as_uri()) == (name in found), name
    # A directory the repository ignores, named to walk (generated docs in build/): its
    # files, where the walk had listed none; the other patterns, and its own, still apply.
    build = root / "build"
    for name, text in (("site.log", "log"), ("secret.txt", "key"), ("draft.md", "draft")):
        (build / name).write_text(text)
    (build / ".gitignore").write_text("draft.md\n")
    assert [p.relative_to(build).as_posix() for p in walk_files(build)] == ["out.md"]
    listed = listed_by(build)
    for name in ("out.md", "site.log", "secret.txt", "draft.md"):
        assert listed((build / name).resolve().as_uri()) == (name == "out.md"), name


def test_ingesting_the_directory_that_holds_the_store_leaves_the_store_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `rag-ingest ingest .` does with the default ./rag_ingest_data.
    tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = local_settings("rag_ingest_data", temp_dir="staging")
    os.makedirs("staging")
    with SyncDocumentProcessor(settings) as p:
        first = p.process_many(".", session_id="s")
        again = p.process_many(".", session_id="s")
    assert sorted(r.filename for r in first.results) == ["a.txt", "b.md", "c.py"]
    assert first.totals["failed"] == 0
    assert again.listed == 3 and again.totals["skipped"] == 3


def test_prune_removes_what_a_directory_no_longer_has_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(settings) as p:
        store, ledger = p.processor.store, p.processor.ledger
        assert store is not None and ledger is not None
        # A walk of docs/, plus files named directly (one outside, one hidden inside).
        p.process_many(["docs", "a.txt", "docs/.cache/x.txt"], session_id="s")
        p.process_many(["docs"], session_id="other")
        before = store.ids_for("s")
        gone = (tmp_path / "docs" / "deep" / "c.py").as_uri()
        gone_ids = store.ids_for("s", gone)
        assert before and gone_ids
        (tmp_path / "docs" / "deep" / "c.py").unlink()

        kept = p.process_many("docs", session_id="s")  # no prune: nothing removed
        assert kept.pruned == [] and store.ids_for("s") == before

        pruned = p.process_many("docs", session_id="s", prune=True)
        assert pruned.pruned == [gone] and pruned.totals["pruned"] == 1
        assert store.ids_for("s") == before - gone_ids
        assert ledger.get("s", gone) is None
        # Named directly or in another session: untouched.
        assert {r.source.rsplit("/", 1)[-1] for r in ledger.session_rows("s")} == {
            "a.txt",
            "b.md",
            "x.txt",
        }
        assert store.ids_for("other", gone)


def test_a_report_keeping_only_the_failed_still_counts_and_prunes_every_source(
    tmp_path: Path,
) -> None:
    """Each result a report holds is 1-2 KB: a run of a million sources held them all.
    Kept or not, every result counts in the totals and model use, and every source done
    is kept from the pruning."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\nThe text of note {i}.\n")
    (docs / "bad.md").write_bytes(b"\x00\x01 not text")
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        came: list[Any] = []
        report = p.process_many(docs, session_id="s", keep_results="failed", on_result=came.append)
        assert [r.status for r in report.results] == ["failed"] and len(came) == 7
        every = IngestReport(session_id="s", started_at="", listed=7)
        for result in came:
            every.add(result)
        assert every.results == came  # keeps all, as by default
        assert report.totals == every.totals and report.usage == every.usage
        assert report.count("ingested") == 6 and report.usage["embedded_chunks"] >= 6

        (docs / "n0.md").unlink()
        again = p.process_many(docs, session_id="s", keep_results="none", prune=True)
        assert again.results == [] and again.pruned == [(docs / "n0.md").as_uri()]
        assert again.count("skipped") == 5 and again.count("failed") == 1
        with pytest.raises(ConfigurationError, match="keep_results='some'"):
            p.process_many(docs, session_id="s", keep_results="some")  # type: ignore[arg-type]


def test_binaries_a_walk_meets_by_content_are_skipped_and_named_ones_fail(
    tmp_path: Path,
) -> None:
    """Names that say nothing (a SQLite WAL, a shared library, a bare blob), bytes that
    are binary: in a walked tree they are passed over, not failed (a repository's
    ``ingest`` exited 1 for them); a text name with binary bytes still fails."""
    from rag_ingest import RagIngestLoader

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe canary is HERON.\n")
    binaries = {
        "store.sqlite3-wal": b"7\x7f\x06\x82" + bytes(300),
        "libfoo.so.1": b"\x7fELF" + bytes(300),
        "blob": bytes(range(256)) * 4,
    }
    for name, data in binaries.items():
        (docs / name).write_bytes(data)
    (docs / "broken.txt").write_bytes(bytes(range(256)) * 4)
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        report = p.process_many(docs, session_id="s")
        outcome = {Path(r.source).name: (r.status, r.message) for r in report.results}
        assert outcome["guide.md"][0] == "ingested"
        assert outcome["broken.txt"][0] == "failed"
        assert outcome["blob"] == ("skipped", "binary data (no extension): no text to index")
        assert outcome["libfoo.so.1"][0] == "skipped" and "(ELF)" in outcome["libfoo.so.1"][1]
        assert {n for n, (status, _) in outcome.items() if status == "skipped"} == set(binaries)
        again = p.process_many(docs, session_id="s")
        skipped = {Path(r.source).name: r.message for r in again.results if r.status == "skipped"}
        assert {skipped[n] for n in binaries} == {"unchanged since the last ingest"}
        named = p.process_document(docs / "blob", session_id="other")
        assert named.status == "failed" and named.error_type == "NoTextFormatError"
    loader = RagIngestLoader(docs, settings=local_settings(str(tmp_path / "s2")))
    assert [Path(d.metadata["source"]).name for d in loader.load()] == ["guide.md"]
    assert [Path(e.source).name for e in loader.errors] == ["broken.txt"]


def test_an_empty_file_is_skipped_and_takes_its_old_chunks_with_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    empty = tmp_path / "docs" / "__init__.py"
    empty.write_text("")
    emptied = tmp_path / "docs" / "notes.txt"
    emptied.write_text("Notes worth keeping. " * 40)
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        store = p.processor.store
        assert store is not None
        first = p.process_many(tmp_path / "docs", session_id="s")
        status = {r.filename: (r.status, r.message) for r in first.results}
        assert status["__init__.py"] == ("skipped", "empty (0 bytes): nothing to index")
        assert status["notes.txt"][0] == "ingested" and first.totals["failed"] == 0
        assert store.ids_for("s", emptied.as_uri())

        emptied.write_text("")
        second = p.process_many(tmp_path / "docs", session_id="s")
        assert {r.filename: r.status for r in second.results} == {
            "__init__.py": "skipped",
            "notes.txt": "skipped",
        }
        assert store.ids_for("s", emptied.as_uri()) == set()  # the old chunks went
        third = p.process_many(tmp_path / "docs", session_id="s")
        assert {r.message for r in third.results} == {"unchanged since the last ingest"}

        # Blank is empty too: an __init__.py of one newline, a README of blank lines.
        emptied.write_text("Notes worth keeping. " * 40)
        assert p.process_many(tmp_path / "docs", session_id="s").totals["ingested"] == 1
        empty.write_text("\n")
        emptied.write_text("\ufeff\n  \n\t\n", encoding="utf-8")
        blank = p.process_many(tmp_path / "docs", session_id="s")
        assert {(r.status, r.message) for r in blank.results} == {
            ("skipped", "blank (whitespace only): nothing to index")
        }
        assert blank.totals["failed"] == 0 and store.ids_for("s", emptied.as_uri()) == set()
        named = p.process_document(empty, session_id="named")
        assert (named.status, named.success) == ("skipped", True)


def test_a_document_with_nothing_written_in_it_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "template.docx").write_bytes(tests_docs.empty_office("docx"))
    (tmp_path / "docs" / "deck.pptx").write_bytes(tests_docs.empty_office("pptx"))
    (tmp_path / "docs" / "scan.docx").write_bytes(
        tests_docs.docx_with_pictures([tests_docs.photo()])
    )
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        report = p.process_many(tmp_path / "docs", session_id="s")
        outcome = {r.filename: (r.status, r.message) for r in report.results}
        assert outcome["template.docx"] == ("skipped", "no text and no pictures: nothing to index")
        assert outcome["deck.pptx"] == ("skipped", "no slides: nothing to index")
        # Pictures may hold its text: a failure, not a skip (this photo has none).
        assert outcome["scan.docx"] == (
            "failed",
            "scan.docx: no text, and OCR found none in its pictures",
        )
        again = p.process_many(tmp_path / "docs", session_id="s")
        assert {r.filename: r.message for r in again.results if r.status == "skipped"} == {
            "template.docx": "unchanged since the last ingest",
            "deck.pptx": "unchanged since the last ingest",
        }


async def test_a_source_named_twice_is_ingested_once(tmp_path: Path) -> None:
    from rag_ingest import DocumentProcessor
    from tests.integration.test_pipeline import CountingEmbeddings

    tree(tmp_path / "docs")
    a = tmp_path / "docs" / "a.txt"
    embeddings = CountingEmbeddings()
    settings = local_settings(str(tmp_path / "store"))
    async with DocumentProcessor(settings, embeddings=embeddings) as p:
        # Named, named again by another spelling, and under a named directory.
        report = await p.process_many(
            [a, str(a), tmp_path / "docs" / "." / "a.txt", tmp_path / "docs"], session_id="s"
        )
        assert sorted(Path(r.source).name for r in report.results) == ["a.txt", "b.md", "c.py"]
        assert report.listed == 3 and report.totals["ingested"] == 3
        once = embeddings.texts
        assert once == report.totals["chunks"]
        # Submitted again while the first is in flight: it waits, then finds it done.
        b = tmp_path / "docs" / "docs" / "b.md"
        b.write_text("changed text of b\n" * 5)
        results = await asyncio.gather(*(p.process_document(b, session_id="s") for _ in range(3)))
        assert sorted(r.status for r in results) == ["ingested", "skipped", "skipped"]
        ingested = next(r for r in results if r.status == "ingested")
        assert embeddings.texts == once + ingested.total_chunks


async def test_one_prefix_or_directory_named_is_listed_without_remembering_its_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source's name was remembered to ingest it once (about 110 bytes each, to
    the end of the run); one prefix's or directory's listing names each once."""
    import tracemalloc

    from rag_ingest.sources import one_named, unique_sources

    async def listing(n: int) -> Any:
        for i in range(n):
            yield str(tmp_path / f"d{i // 1000:03d}" / f"note{i:06d}.md")

    async def growth(single: bool) -> int:
        """Memory held at the 5,000th source more than at the 500th, by allocations made
        in sources.py (another test's threads allocate meanwhile under xdist)."""
        import rag_ingest.sources

        ours = [tracemalloc.Filter(True, rag_ingest.sources.__file__, all_frames=True)]
        sizes = []
        tracemalloc.start(25)
        try:
            async for i, _ in _numbered(unique_sources(None, listing(5000), single=single)):
                if i in (500, 4999):
                    snapshot = tracemalloc.take_snapshot().filter_traces(ours)
                    sizes.append(sum(stat.size for stat in snapshot.statistics("filename")))
        finally:
            tracemalloc.stop()
        return sizes[1] - sizes[0]

    assert await growth(single=False) > 300_000  # what the test can see: 4,500 names
    assert await growth(single=True) < 30_000
    assert one_named("s3://b/p/") and one_named(tmp_path) and one_named([tmp_path])
    assert not one_named([tmp_path, tmp_path]) and not one_named(iter([tmp_path]))

    from rag_ingest import DocumentProcessor, pipeline

    told: list[bool] = []

    def spy(s3: Any, items: Any, *, single: bool = False) -> Any:
        told.append(single)
        return unique_sources(s3, items, single=single)

    monkeypatch.setattr(pipeline, "unique_sources", spy)
    tree(tmp_path / "docs")
    async with DocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        once = await p.process_many(tmp_path / "docs", session_id="s")
        both = await p.process_many([tmp_path / "docs", tmp_path / "docs"], session_id="t")
    assert told == [True, False] and once.listed == both.listed == 3


async def _numbered(items: Any) -> Any:
    i = 0
    async for item in items:
        yield i, item
        i += 1


def test_file_uris_name_the_same_sources_and_odd_names_fail_clearly(tmp_path: Path) -> None:
    tree(tmp_path / "docs")
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        first = p.process_many([tmp_path / "docs"], session_id="s")
        assert first.totals["ingested"] == 3
        # The `source` of a local file's chunks is a file:// URI: handing it back (or its
        # directory's) names the same sources, so they are skipped as unchanged.
        again = p.process_many([(tmp_path / "docs").as_uri()], session_id="s")
        assert again.totals == {**again.totals, "listed": 3, "skipped": 3}
        one = p.process_document(first.results[0].source, session_id="s")
        assert one.status == "skipped" and one.source == first.results[0].source
        odd = {
            str(tmp_path / "docs"): ("DocumentError", "a directory (process_many walks"),
            "ftp://host/file.pdf": ("UnsafeSourceError", "unsupported scheme 'ftp'"),
            "": ("ConfigurationError", "an empty source"),
            "file://otherhost/x.txt": ("ConfigurationError", "file:// URI of another host"),
        }
        for source, (error, words) in odd.items():
            result = p.process_document(source, session_id="s")
            assert result.error_type == error and words in (result.message or ""), source


def test_a_pipe_a_device_or_a_broken_link_named_fails_saying_which(tmp_path: Path) -> None:
    """None is a file to read (a pipe or a device would block or never end), and a walk
    leaves them all out. Named, each had failed as "no such file", a link by its target."""
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nCANARY a\n")
    os.mkfifo(folder / "pipe.txt")
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / "gone.md").symlink_to(tmp_path / "nowhere.md")
    (folder / "loop").symlink_to(folder)
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        walked = p.process_many([folder], session_id="s")
        assert [(r.filename, r.status) for r in walked.results] == [("a.md", "ingested")]
        expected = {
            "pipe.txt": f"{folder}/pipe.txt: a named pipe, not a file to read",
            "zero.txt": f"{folder}/zero.txt (a link to /dev/zero): a character device,",
            "gone.md": f"{folder}/gone.md (a link to {tmp_path}/nowhere.md): no such file",
            "nope.md": f"{folder}/nope.md: no such file",
        }
        for name, words in expected.items():
            result = p.process_document(folder / name, session_id="s")
            assert result.error_type == "DocumentError", name
            assert (result.message or "").startswith(words), result.message


def test_broken_progress_and_result_callbacks_do_not_fail_documents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree(tmp_path / "docs")
    seen: list[str] = []

    def broken(event: object) -> None:
        raise ValueError("a bug in the caller's progress code")

    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(settings, on_event=broken) as p:
        p.processor.events.add_callback(lambda event: seen.append(event.stage))
        report = p.process_many([tmp_path / "docs"], session_id="s", on_result=broken)
        assert report.totals["ingested"] == 3 and report.totals["failed"] == 0
        assert p.processor.events.callback_errors > 3 and report.callback_errors == 3
    assert seen.count("done") == 3  # the other callbacks still hear every event
    for words in ("on_event callback raised", "on_result raised"):
        logged = [r for r in caplog.records if words in r.getMessage()]
        assert len(logged) == 1  # logged once, with its traceback


def _no_ocr(persist_dir: str) -> Settings:
    settings = local_settings(persist_dir)
    return settings.model_copy(update={"parse": settings.parse.model_copy(update={"ocr": "off"})})


def test_images_and_archives_in_a_walk_are_skipped_unread_and_named_ones_fail(
    tmp_path: Path,
) -> None:
    from rag_ingest import RagIngestLoader

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe canary is HERON.\n")
    for name in ("logo.png", "screen.JPG", "demo.mp4", "release.7z", "font.woff2"):
        (docs / name).write_bytes(b"\x00\x01 not read \x02" * 100)
    (docs / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0"/></svg>')
    # A drawing's words are read; one with none (an icon) is skipped, read.
    (docs / "flow.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><text>Parse</text><text>CANARY-EGRET</text></svg>'
    )
    with SyncDocumentProcessor(_no_ocr(str(tmp_path / "store"))) as p:
        report = p.process_many(docs, session_id="s")
        assert report.totals["ingested"] == 2 and report.totals["failed"] == 0
        skipped = {Path(r.source).name: r.message for r in report.results if r.status == "skipped"}
        assert set(skipped) == {
            "logo.png",
            "screen.JPG",
            "demo.mp4",
            "release.7z",
            "font.woff2",
            "icon.svg",
        }
        assert skipped["demo.mp4"] == "a video (.mp4): no text to index"
        assert skipped["icon.svg"] == "no words in the drawing: nothing to index"
        unread = [r for r in report.results if r.status == "skipped" and r.filename != "icon.svg"]
        assert len(unread) == 5 and all(r.bytes == 0 for r in unread)
        named = p.process_document(docs / "logo.png", session_id="s")
        assert named.status == "failed" and named.error_type == "NoTextFormatError"
        named = p.process_document(docs / "icon.svg", session_id="s")
        assert named.status == "skipped"
        (hit, _), *_ = p.query("CANARY-EGRET", session_id="s")
        assert hit.page_content == "Parse\nCANARY-EGRET" and hit.metadata["file_type"] == "svg"
        assert p.session_usage("s") == report.usage  # the sync twin too
    loaded = RagIngestLoader(docs, settings=_no_ocr(str(tmp_path / "s2")), on_error="raise")
    assert sorted(Path(d.metadata["source"]).name for d in loaded.load()) == [
        "flow.svg",
        "guide.md",
    ]


def test_with_ocr_a_walk_reads_images_and_skips_those_without_text(tmp_path: Path) -> None:
    from PIL import Image

    from rag_ingest import RagIngestLoader

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "receipt.png").write_bytes(tests_docs.scan_image(["Receipt", "The canary is EGRET."]))
    Image.new("RGB", (320, 240), (90, 160, 60)).save(docs / "meadow.jpg")
    (docs / "logo.png").write_bytes(b"\x00\x01 not an image \x02" * 100)
    (docs / "demo.mp4").write_bytes(b"\x00\x01 not read \x02" * 100)
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        report = p.process_many(docs, session_id="s")
        results = {Path(r.source).name: r for r in report.results}
        assert report.totals["failed"] == 0, report.results
        assert results["receipt.png"].status == "ingested"
        assert results["receipt.png"].file_type == "image"
        assert {name for name, r in results.items() if r.status == "skipped"} == {
            "meadow.jpg",
            "logo.png",
            "demo.mp4",
        }
        assert results["meadow.jpg"].message == "an image in which OCR found no text"
        hit = p.query("The canary is EGRET", session_id="s", k=1)[0][0]
        assert hit.metadata["filename"] == "receipt.png" and hit.metadata["ocr"] is True
        # Named on its own, a file with no text fails, saying why.
        (tmp_path / "badge.gif").write_bytes(b"\x00\x01 not an image \x02" * 100)
        named = p.process_document(tmp_path / "badge.gif", session_id="s")
        assert named.status == "failed" and named.error_type == "NoTextFormatError"
        assert named.message == "badge.gif: named .gif but not an image: no text to index"
    loaded = RagIngestLoader(docs, settings=local_settings(str(tmp_path / "s2")), on_error="raise")
    assert [Path(d.metadata["source"]).name for d in loaded.load()] == ["receipt.png"]


def test_scans_left_unread_without_ocr_are_read_once_it_is_on(tmp_path: Path) -> None:
    """A PDF whose scanned annex OCR could not read, a zip holding a scanned receipt, a
    report with a scan pasted in: skipped while OCR stays off, read again (and only they)
    once it is on."""
    import pymupdf

    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = pymupdf.open("pdf", tests_docs.pdf_bytes(["Typed cover page: the canary is TERN."]))
    pdf.insert_pdf(pymupdf.open("pdf", tests_docs.scanned_pdf(["Signed annex CANARY-IBIS."])))
    (docs / "contract.pdf").write_bytes(pdf.tobytes())
    receipt = tests_docs.scan_image(["Receipt 0042", "CANARY-KITE paid by card"])
    (docs / "expenses.zip").write_bytes(
        tests_docs.zip_bytes({"notes.txt": b"Expenses of March.", "receipt.png": receipt})
    )
    # A PDF with a scanned page inside a zip: its unread page had been unsaid, and the
    # zip never read again.
    zipped = pymupdf.open("pdf", tests_docs.pdf_bytes(["Typed cover of the lease."]))
    annex = tests_docs.scan_image(["Lease annex", "CANARY-LARK signed"])
    zipped.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), stream=annex)
    (docs / "leases.zip").write_bytes(
        tests_docs.zip_bytes(
            {"notes.txt": b"Leases of 2026.", "lease.pdf": zipped.tobytes(deflate=True)}
        )
    )
    (docs / "guide.md").write_text("# Guide\n\nNo scans here.\n")
    pasted = tests_docs.scan_image(["Delivery note", "CANARY-WREN received in full"])
    report = ["The report sets out the terms of the delivery in detail.", pasted]
    (docs / "report.docx").write_bytes(tests_docs.docx_with_pictures(report))
    # A scanned PDF attached to a mail: its unread page had been unsaid, and the mail
    # never read again.
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = "Signed invoice"
    mail.set_content("The signed invoice is attached.")
    invoice = tests_docs.scanned_pdf(["Invoice 77 CANARY-HERON signed"])
    mail.add_attachment(invoice, maintype="application", subtype="pdf", filename="invoice.pdf")
    (docs / "invoice.eml").write_bytes(bytes(mail))
    store = str(tmp_path / "store")
    with SyncDocumentProcessor(_no_ocr(store)) as p:
        first = {Path(r.source).name: r for r in p.process_many(docs, session_id="s").results}
        assert {r.status for r in first.values()} == {"ingested"}
        assert "1 scanned page(s) (2) not read: OCR is off" in first["contract.pdf"].warnings[0]
        assert first["expenses.zip"].warnings[-1].startswith("1 image(s) not read: OCR is off")
        assert first["report.docx"].warnings[-1].startswith("1 picture(s) not read: OCR is off")
        assert first["leases.zip"].warnings == [
            "scans or pictures in 1 file(s) (lease.pdf) not read: OCR is off, or its extra is "
            "not installed"
        ]
        assert first["invoice.eml"].warnings == [
            "attachment invoice.pdf: EmptyDocumentError: invoice.pdf: no extractable text: its "
            "pages, scans maybe, not read: OCR is off, or its extra is not installed (pip "
            "install 'rag-ingest[ocr]')"
        ]
        again = p.process_many(docs, session_id="s", dry_run=True).results
        assert {r.status for r in again} == {"skipped"}  # OCR still off: nothing new to read
    with SyncDocumentProcessor(local_settings(store)) as p:
        plan = {
            Path(r.source).name: r
            for r in p.process_many(docs, session_id="s", dry_run=True).results
        }
        assert plan["contract.pdf"].message == (
            "would be ingested: OCR now reads the scans or pictures it had left unread"
        )
        assert plan["guide.md"].status == "skipped"
        report = {Path(r.source).name: r for r in p.process_many(docs, session_id="s").results}
        assert {n: r.status for n, r in report.items()} == {
            "contract.pdf": "ingested",
            "expenses.zip": "ingested",
            "report.docx": "ingested",
            "invoice.eml": "ingested",
            "leases.zip": "ingested",
            "guide.md": "skipped",
        }
        for words, name in (
            ("Signed annex CANARY-IBIS", "contract.pdf"),
            ("CANARY-KITE", "expenses.zip"),
            ("CANARY-WREN received in full", "report.docx"),
            ("Invoice 77 CANARY-HERON signed", "invoice.eml"),
            ("Lease annex CANARY-LARK", "leases.zip"),
        ):
            hit = p.query(words, session_id="s", k=1)[0][0]
            assert hit.metadata["filename"] == name and hit.metadata["ocr"] is True
        assert {r.status for r in p.process_many(docs, session_id="s").results} == {"skipped"}


async def test_a_parser_registered_for_a_skipped_type_gets_those_files(tmp_path: Path) -> None:
    from rag_ingest.pipeline import DocumentProcessor

    docs = tmp_path / "docs"
    docs.mkdir()
    # PostScript, skipped by name: a caller's parser reads what it draws.
    (docs / "diagram.ps").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><text x="0">canary OSPREY</text></svg>'
    )
    processor = DocumentProcessor(local_settings(str(tmp_path / "store")))
    processor.register_parser(".ps", "tests.hostile_parsers:svg_text")
    async with processor as p:
        report = await p.process_many(docs, session_id="s")
        assert report.totals["ingested"] == 1, report.results
        (hit, _), *_ = await p.query("OSPREY", session_id="s")
        assert "OSPREY" in hit.page_content
    # Without that parser, the walk skips the file, and what it left is removed.
    async with DocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        report = await p.process_many(docs, session_id="s")
        assert report.totals["skipped"] == 1
        assert await p.query("OSPREY", session_id="s") == []
        assert (await p.verify_session("s")).consistent


def test_a_lone_surrogate_in_a_parse_does_not_fail_the_store_write(tmp_path: Path) -> None:
    """texlive's encguide.pdf: PyMuPDF read U+D80C from a font map, and Chroma refused the
    document's write ("str is not valid UTF-8: surrogates not allowed")."""
    (tmp_path / "table.glyphs").write_text("Glyph table CANARY-GLYPH: | @ | x |\n")
    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(
        settings, parsers={".glyphs": "tests.hostile_parsers:broken_font_map"}
    ) as p:
        result = p.process_document(tmp_path / "table.glyphs", session_id="s")
        assert result.status == "ingested", result.message
        assert any("1 lone surrogate(s)" in w for w in result.warnings)
        (hit, _), *_ = p.query("CANARY-GLYPH", session_id="s")
        assert "| \ufffd | x |" in hit.page_content


def test_copies_of_a_file_are_parsed_once_and_each_is_stored_as_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A localized docs tree holds each screenshot once per language: each copy was
    parsed (read by OCR) again (Debian's handbook and manuals: 1,083 of 1,462 images)."""
    log = tmp_path / "parses.log"
    monkeypatch.setenv("RAG_INGEST_TEST_PARSES", str(log))
    root = tmp_path / "docs"
    shot = "CANARY-SHOT the wireshark window\n" * 3
    files = {
        "en/shot.count": shot,
        "fr/shot.count": shot,
        "de/shot.count": shot,
        "it/shot.count": shot.replace("window", "fenestra"),  # other bytes
        "en/copy.count": shot,  # the same bytes under another name
        "en/bad.count": "FAIL here\n",
        "fr/bad.count": "FAIL here\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    settings = local_settings(str(tmp_path / "store"), parse={"mode": "thread", "workers": 2})
    with SyncDocumentProcessor(
        settings, parsers={".count": "tests.hostile_parsers:counted_text"}
    ) as p:
        report = p.process_many(root, session_id="s", metadata={"team": "docs"})
        results = {r.source.rsplit("/docs/", 1)[1]: r for r in report.results}
        assert sorted(log.read_text().splitlines()) == [
            "bad.count FAIL",
            "copy.count CANARY-SHOT",
            "shot.count CANARY-SHOT",
            "shot.count CANARY-SHOT",
        ]
        assert {n for n, r in results.items() if r.status == "ingested"} == {
            "en/shot.count", "fr/shot.count", "de/shot.count", "it/shot.count", "en/copy.count"
        }  # fmt: skip
        for name in ("en/bad.count", "fr/bad.count"):
            assert results[name].status == "failed"
            assert results[name].message == "bad.count: damaged on purpose"
        copies = [n for n, r in results.items() if any("parsed once" in x for x in r.notes)]
        assert len(copies) == 2 and all(n.endswith("/shot.count") for n in copies), copies
        # Each copy is stored as its own source, with its own metadata.
        hits = p.query("CANARY-SHOT wireshark window", session_id="s", k=10)
        found = {
            (h.metadata["source"].rsplit("/docs/", 1)[1], h.metadata["filename"]) for h, _ in hits
        }
        assert {s for s, _ in found} == {
            "en/shot.count", "fr/shot.count", "de/shot.count", "it/shot.count", "en/copy.count"
        }  # fmt: skip
        assert all(f == s.rsplit("/", 1)[1] for s, f in found)
        assert all(
            h.metadata["team"] == "docs" and h.metadata["session_id"] == "s" for h, _ in hits
        )
        assert p.verify_session("s").consistent
        # Another session's copy is not parsed again, and is tagged with its session;
        # with other metadata of the caller's, it is parsed again.
        again = p.process_document(
            root / "de/shot.count", session_id="t", metadata={"team": "docs"}
        )
        assert again.status == "ingested" and any("parsed once" in x for x in again.notes)
        (hit, _), *_ = p.query("CANARY-SHOT", session_id="t")
        assert hit.metadata["session_id"] == "t" and hit.metadata["team"] == "docs"
        assert len(log.read_text().splitlines()) == 4
        other = p.process_document(root / "de/shot.count", session_id="u", metadata={"team": "x"})
        assert other.status == "ingested" and not other.notes
        # A re-ingest asks for a fresh parse (new parsers, new masking).
        fresh = p.process_document(
            root / "fr/shot.count", session_id="s", metadata={"team": "docs"}, reingest=True
        )
        assert fresh.status == "ingested" and not fresh.notes
    assert len(log.read_text().splitlines()) == 6


def test_parsers_can_be_given_to_the_sync_processor(tmp_path: Path) -> None:
    (tmp_path / "d.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><text>canary WREN</text></svg>'
    )
    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(settings, parsers={"SVG": "tests.hostile_parsers:svg_text"}) as p:
        result = p.process_document(tmp_path / "d.svg", session_id="s")
        assert result.status == "ingested" and result.file_type == "svg"
        with pytest.raises(RuntimeError, match="before the processor starts"):
            p.processor.register_parser(".x", "m:f")
    with pytest.raises(ConfigurationError, match="module:function"):
        SyncDocumentProcessor(settings, parsers={".svg": "not-a-spec"})


def test_a_workbook_past_xlsx_stream_size_is_read_as_rows_and_says_so(tmp_path: Path) -> None:
    from rag_ingest import RagIngestLoader
    from tests import docs

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "orders.xlsx").write_bytes(docs.orders_xlsx_bytes())
    row = "| A-1 | 2024-01-02 | 3 | 1.5 | fragile \\| glass |"
    for size, streamed in ((4 * 1024 * 1024, False), (1000, True)):
        settings = local_settings(str(tmp_path / f"store{size}"), parse={"xlsx_stream_size": size})
        with SyncDocumentProcessor(settings) as p:
            result = p.process_document(tmp_path / "in" / "orders.xlsx", session_id="s")
        assert result.status == "ingested"
        said = [w for w in result.warnings if "read as rows by calamine" in w]
        assert len(said) == streamed and len(result.warnings) == streamed
        [doc] = RagIngestLoader(tmp_path / "in", mode="document", settings=settings).load()
        assert (row in doc.page_content) == streamed


def test_a_file_name_that_is_not_utf8_is_ingested_and_named_as_text(tmp_path: Path) -> None:
    import os

    docs = tmp_path / "share"
    docs.mkdir()
    with open(os.path.join(os.fsencode(docs), b"caf\xe9 menu.md"), "wb") as f:  # latin-1
        f.write(b"# Menu\n\nThe canary is PUFFIN.\n")
    # A tar made where names are Latin-1 (CPython's own testtar.tar has such): failed
    # as "StoreError: ... surrogates not allowed (may pass: run again later)".
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        text = b"# Notes\n\nThe canary is GANNET.\n"
        info = tarfile.TarInfo(b"r\xe9sum\xe9.md".decode("utf-8", "surrogateescape"))
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    (tmp_path / "old.tar").write_bytes(packed.getvalue())
    with SyncDocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        tarred = p.process_document(tmp_path / "old.tar", session_id="s")
        assert tarred.status == "ingested", tarred.message
        (hit, _), *_ = p.query("GANNET", session_id="s")
        assert hit.metadata["archive_member"] == "r\u00e9sum\u00e9.md"
        report = p.process_many(docs, session_id="s")
        (result,) = report.results
        assert result.status == "ingested", result.message  # Chroma refused the name
        assert result.filename == "caf\u00e9 menu.md"
        assert result.source.endswith("/caf%E9%20menu.md")  # the bytes, as a URI
        (hit, _), *_ = p.query("PUFFIN", session_id="s")
        assert hit.metadata["filename"] == "caf\u00e9 menu.md"
        # The source as a chunk names it finds the same file again.
        again = p.process_document(hit.metadata["source"], session_id="s")
        assert again.status == "skipped", again.message
        assert p.process_many(docs, session_id="s", prune=True).pruned == []


async def test_events_and_results_name_their_session_and_a_subscriber_can_keep_to_one(
    tmp_path: Path,
) -> None:
    # A backend streams each chat its own uploads' progress; the same file may be in
    # flight for two sessions at once, so the source alone cannot tell them apart.
    from rag_ingest.pipeline import DocumentProcessor

    tree(tmp_path / "docs")
    seen: list[Any] = []
    async with DocumentProcessor(
        local_settings(str(tmp_path / "store")), on_event=seen.append
    ) as p:
        only_a = p.events.subscribe(session_id="a")
        everyone = p.events.subscribe()
        reports = await asyncio.gather(
            p.process_many(tmp_path / "docs", session_id="a"),
            p.process_many(tmp_path / "docs", session_id="b"),
        )
        bad = await p.process_document("ftp://x/y", session_id="b")
    a_events = [e async for e in only_a]
    all_events = [e async for e in everyone]
    assert {r.session_id for r in reports[0].results} == {"a"}
    assert {r.session_id for r in reports[1].results} == {"b"}
    assert bad.status == "failed" and bad.session_id == "b"
    assert a_events and {e.session_id for e in a_events} == {"a"}
    assert a_events == [e for e in all_events if e.session_id == "a"]
    assert {e.session_id for e in seen} == {"a", "b"} and seen == all_events
    assert sum(e.stage == "done" for e in a_events) == 3


async def test_allowed_sources_keep_a_backend_to_what_it_serves(tmp_path: Path) -> None:
    # The README's backend takes a URI from its users: without a limit, "/app/.env" or
    # another tenant's bucket is read with the server's rights and becomes searchable.
    from rag_ingest import Upload
    from rag_ingest.pipeline import DocumentProcessor

    served = tmp_path / "served"
    tree(served)
    (tmp_path / "secret.env").write_text("API_KEY=hunter2\n")
    (served / "link.txt").symlink_to(tmp_path / "secret.env")
    (tmp_path / "served-private").mkdir()
    (tmp_path / "served-private" / "x.txt").write_text("private\n")
    settings = local_settings(
        str(tmp_path / "store"),
        pipeline={
            "allowed_sources": [str(served), "s3://tenant-a/docs/", "https://wiki.example.com/"]
        },
    )
    async with DocumentProcessor(settings) as p:
        ok = await p.process_document(served / "a.txt", session_id="s")
        refused = [
            await p.process_document(source, session_id="s")
            for source in (
                tmp_path / "secret.env",
                served / ".." / "secret.env",
                served / "link.txt",  # a symlink out of the allowed directory
                tmp_path / "served-private" / "x.txt",  # a sibling sharing the prefix
                "s3://tenant-b/docs/a.pdf",
                "s3://tenant-a/docs-old/a.pdf",
                "https://wiki.example.com.evil.net/page",
                "https://evil.example.net/?u=https://wiki.example.com/",
            )
        ]
        # A prefix or directory outside is not listed: one refusal, no names of its files.
        listed = await p.process_many(
            [tmp_path / "served-private", "s3://tenant-b/"], session_id="s"
        )
        walked = await p.process_many(served, session_id="s")
        upload = await p.process_document(Upload(b"# note\n", "note.md"), session_id="s")
        hits = await p.query("hunter2 API_KEY private", session_id="s", k=10)
    assert ok.status == "ingested"
    assert {(r.status, r.error_type) for r in refused} == {("failed", "UnsafeSourceError")}
    assert all("allowed_sources" in (r.message or "") for r in refused)
    assert sorted(r.source for r in listed.results) == sorted(
        [(tmp_path / "served-private").as_uri(), "s3://tenant-b/"]
    )
    assert {r.error_type for r in listed.results} == {"UnsafeSourceError"}
    by_source = {r.source: r.status for r in walked.results}
    assert by_source.pop((tmp_path / "secret.env").as_uri()) == "failed"  # the symlink
    assert set(by_source.values()) <= {"ingested", "skipped"} and len(by_source) == 3
    assert upload.status == "ingested"
    assert not [d for d, _ in hits if "hunter2" in d.page_content or "private" in d.page_content]
    from rag_ingest import RagIngestLoader

    loader = RagIngestLoader([served / "a.txt", tmp_path / "secret.env"], settings=settings)
    assert {d.metadata["filename"] for d in loader.load()} == {"a.txt"}
    assert [e.error_type for e in loader.errors] == ["UnsafeSourceError"]


async def test_a_refused_directory_is_not_pruned_as_if_found_empty(tmp_path: Path) -> None:
    from rag_ingest.pipeline import DocumentProcessor

    docs_dir = tmp_path / "docs"
    tree(docs_dir)
    async with DocumentProcessor(local_settings(str(tmp_path / "store"))) as p:
        first = await p.process_many(docs_dir, session_id="s")
    assert first.totals["ingested"] == 3
    narrowed = local_settings(
        str(tmp_path / "store"), pipeline={"allowed_sources": [str(tmp_path / "elsewhere")]}
    )
    async with DocumentProcessor(narrowed) as p:
        refused = await p.process_many(docs_dir, session_id="s", prune=True)
        hits = await p.query("text", session_id="s", k=10)
    assert [r.error_type for r in refused.results] == ["UnsafeSourceError"]
    assert refused.pruned == [] and len(hits) == 3


async def test_a_call_narrows_allowed_sources_to_one_tenant_and_never_widens_them(
    tmp_path: Path,
) -> None:
    from rag_ingest.pipeline import DocumentProcessor
    from rag_ingest.sources import narrowed

    served = tmp_path / "served"
    tree(served)
    app = [str(served), "s3://bucket/"]
    settings = local_settings(str(tmp_path / "store"), pipeline={"allowed_sources": app})
    tenant = [str(served / "docs"), "s3://bucket/tenant-a/"]
    async with DocumentProcessor(settings) as p:
        mine = await p.process_document(
            served / "docs" / "b.md", session_id="a", allowed_sources=tenant
        )
        theirs = [
            await p.process_document(source, session_id="a", allowed_sources=tenant)
            for source in (served / "a.txt", "s3://bucket/tenant-b/x.pdf")
        ]
        queued = await p.submit(served / "a.txt", session_id="a", allowed_sources=tenant)
        walked = await p.process_many(served, session_id="a", allowed_sources=tenant)
        # A call cannot allow what the settings do not.
        wider = await p.process_document(
            tmp_path / "store", session_id="a", allowed_sources=[str(tmp_path)]
        )
    assert mine.status == "ingested"
    assert {r.error_type for r in [*theirs, queued, wider]} == {"UnsafeSourceError"}
    assert [r.error_type for r in walked.results] == ["UnsafeSourceError"]  # not listed
    assert narrowed(None, None) is None and narrowed(["s3://b/"], None) == ["s3://b/"]
    assert narrowed(["s3://b/x/"], ["s3://b/"]) == ["s3://b/x"]
    assert narrowed(["s3://a/"], ["s3://b/"]) == []
    with pytest.raises(ConfigurationError):
        narrowed(None, ["s3://b/*.pdf"])


def test_a_dry_run_says_what_a_run_would_do_and_does_none_of_it(tmp_path: Path) -> None:
    tree(tmp_path)
    docs = tmp_path / "docs"
    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(settings) as p:
        store, ledger = p.processor.store, p.processor.ledger
        assert store is not None and ledger is not None
        p.process_many(docs, session_id="s")
        # Then: one file changed, one added, one emptied, one deleted.
        (docs / "b.md").write_text("# B\n\nRewritten.\n")
        (docs / "new.txt").write_text("A new note.\n" * 4)
        (docs / "deep" / "empty.txt").write_text("")
        (docs / "deep" / "c.py").unlink()
        before = (store.ids_for("s"), ledger.session_rows("s"), ledger.session_pending("s"))
        calls = p.processor._runner.calls

        plan = p.process_many(docs, session_id="s", prune=True, dry_run=True)
        by_name = {Path(r.source).name: r for r in plan.results}
        assert plan.dry_run and plan.totals["planned"] == 2
        assert by_name["b.md"].message == "would be ingested: changed since its last ingest"
        assert by_name["new.txt"].message == "would be ingested: new"
        assert by_name["new.txt"].bytes == (docs / "new.txt").stat().st_size
        assert by_name["empty.txt"].status == "skipped"
        assert plan.pruned == [(docs / "deep" / "c.py").as_uri()]
        # Nothing done: the store, the ledger and the embedder as they were.
        assert (store.ids_for("s"), ledger.session_rows("s"), ledger.session_pending("s")) == before
        assert p.processor._runner.calls == calls

        # A failure (a file gone between listing and reading) leaves no ledger row.
        missing = p.process_many([docs / "nowhere.md"], session_id="s", dry_run=True)
        assert missing.results[0].status == "failed"
        assert ledger.get("s", (docs / "nowhere.md").as_uri()) is None

        # The run itself does what the plan said.
        run = p.process_many(docs, session_id="s", prune=True)
        done = {Path(r.source).name: r.status for r in run.results}
        assert done["b.md"] == done["new.txt"] == "ingested" and run.pruned == plan.pruned

    # Other settings: every source is planned again, and says why.
    other = local_settings(str(tmp_path / "store"), chunk={"chunk_tokens": 300})
    with SyncDocumentProcessor(other) as p:
        plan = p.process_many(docs, session_id="s", dry_run=True)
        assert {r.message for r in plan.results if r.status == "planned"} == {
            "would be ingested: ingested under other settings, metadata or user id"
        }


def test_a_documents_credentials_are_masked_in_the_store_and_the_loader(tmp_path: Path) -> None:
    from rag_ingest import RagIngestLoader

    aws_id, token = "AKIA2E0A8F3B244C9986", "ghp_" + "a1B2" * 9
    (tmp_path / "in").mkdir()
    note = tmp_path / "in" / "runbook.md"
    note.write_text(f"# Runbook\n\nCANARY-RUNBOOK: deploy with {aws_id} and {token}.\n")
    settings = local_settings(str(tmp_path / "store"))
    with SyncDocumentProcessor(settings) as p:
        result = p.process_document(note, session_id="s")
        default = p.processor.fingerprint
        assert result.status == "ingested"
        assert any("AWS access key ID (1), GitHub token (1)" in w for w in result.warnings)
        [(doc, _)] = p.query("CANARY-RUNBOOK deploy", session_id="s", k=1)
        stored = p.processor.store.vectorstore._collection.get(where={"session_id": "s"})[
            "documents"
        ]
    assert "CANARY-RUNBOOK" in doc.page_content and "AKIA****************" in doc.page_content
    assert not any(aws_id in t or token in t for t in stored)
    for mode in ("document", "pages", "chunks"):
        loader = RagIngestLoader(note, mode=mode, settings=settings)
        [got] = loader.load()
        assert "CANARY-RUNBOOK" in got.page_content and aws_id not in got.page_content, mode
        assert "AWS access key ID (1)" in loader.warnings[got.metadata["source"]][-1], mode
    # Turned off, a source is no longer "unchanged": its chunks hold the text as written.
    off = local_settings(str(tmp_path / "store"), chunk={"mask_credentials": False})
    with SyncDocumentProcessor(off) as p:
        assert p.processor.fingerprint != default
        assert p.process_document(note, session_id="s").status == "ingested"
        stored = p.processor.store.vectorstore._collection.get(where={"session_id": "s"})[
            "documents"
        ]
    assert any(aws_id in t for t in stored)


def test_reingest_reads_unchanged_sources_again_and_replaces_their_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an upgrade that masks more (or parses better), ``reingest`` reads unchanged
    sources again: each one's chunks replaced, nothing stale left, the vectors of chunks
    whose text is the same reused, not embedded again."""
    from rag_ingest import credentials
    from tests.integration.test_pipeline import CountingEmbeddings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "setup.md").write_text(
        '# Setup\n\nConnect with `password = "hunter22"` to the CANARY-DB database.\n'
    )
    (docs / "notes.md").write_text("# Notes\n\nCANARY-NOTES: nothing secret here.\n")
    settings = local_settings(str(tmp_path / "store"))
    embeddings = CountingEmbeddings()
    # The build before settings' values were masked.
    older = tuple(k for k in credentials._KINDS if k[0] not in ("password", "secret", "token"))
    monkeypatch.setattr(credentials, "_KINDS", older)
    with SyncDocumentProcessor(settings, embeddings=embeddings) as p:
        store = p.processor.store
        assert store is not None
        first = p.process_many(docs, session_id="s")
        assert first.totals["ingested"] == 2
        notes_ids = store.ids_for("s", str(docs / "notes.md"))
        leaked = p.query("CANARY-DB database password", session_id="s", k=1)[0][0]
        assert "hunter22" in leaked.page_content
        monkeypatch.undo()
        again = p.process_many(docs, session_id="s")
        assert again.totals["skipped"] == 2  # unchanged bytes, settings and fingerprint
        planned = p.process_many(docs, session_id="s", dry_run=True, reingest=True).results
        assert {r.message for r in planned} == {
            "would be ingested: a re-ingest was asked for (reingest)"
        }
        embedded = embeddings.texts
        redone = {Path(r.source).name: r for r in p.process_many(
            docs, session_id="s", reingest=True).results}  # fmt: skip
        assert {r.status for r in redone.values()} == {"ingested"}
        assert "password (1)" in redone["setup.md"].warnings[-1]
        # setup.md's chunk was embedded again; notes.md's, the same text, was not.
        assert embeddings.texts == embedded + redone["setup.md"].total_chunks
        assert store.ids_for("s", str(docs / "notes.md")) == notes_ids
        masked = p.query("CANARY-DB database password", session_id="s", k=5)
        assert all("hunter22" not in d.page_content for d, _ in masked)
        assert len(store.ids_for("s")) == sum(r.total_chunks for r in redone.values())
        # One source at a time, and queued as a web backend does, the same.
        notes = docs / "notes.md"
        assert p.process_document(notes, session_id="s").status == "skipped"
        assert p.process_document(notes, session_id="s", reingest=True).status == "ingested"

        async def queued(reingest: bool) -> str:
            return (await p.processor.submit(notes, session_id="s", reingest=reingest)).status

        assert [p._loop.run(queued(again)) for again in (False, True)] == ["skipped", "ingested"]
        assert store.ids_for("s", str(notes)) == notes_ids
