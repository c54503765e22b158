"""Zip and tar archives read as one document: each file inside under its path."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
import zlib
from pathlib import Path

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import (
    CorruptDocumentError,
    EncryptedDocumentError,
    NoTextFormatError,
    UnsupportedFileTypeError,
    ZipBombError,
)
from rag_ingest.parsers import parse_file
from rag_ingest.parsers.base import UNREAD_SCANS, ParseOptions, split_notes
from rag_ingest.settings import ChunkSettings
from tests import docs

SMALL = ChunkSettings(chunk_tokens=48, overlap_tokens=0, whole_document_tokens=0)


def _parse(tmp_path: Path, name: str, data: bytes, **options: object):
    path = tmp_path / name
    path.write_bytes(data)
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    parsed = parse_file(str(path), name, ParseOptions(temp_dir=str(scratch), **options))  # type: ignore[arg-type]
    return parsed


def test_a_zip_s_files_are_read_in_order_each_under_its_path(tmp_path: Path) -> None:
    export = docs.zip_bytes(
        {
            "wiki/Onboarding.md": b"# Onboarding\n\nCANARY-MD badges wait at reception.\n\n"
            b"## Laptops\n\n" + b"IT hands them out on the first day, set up. " * 12 + b"\n",
            "wiki/policy.pdf": docs.pdf_bytes(
                ["Travel policy\nCANARY-PDF book trains early.", "Hotels\nCANARY-PDF2 page two."]
            ),
            "wiki/tool.py": b"import os\n\n\ndef run():\n    # CANARY-PY a comment\n    return 1\n",
            "wiki/__init__.py": b"\n",
            "wiki/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
            "wiki/setup.exe": b"MZ" + bytes(64),
            "__MACOSX/wiki/._Onboarding.md": b"\x00\x05\x16\x07",
            "wiki/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "wiki/empty/": b"",
        }
    )
    parsed = _parse(tmp_path, "export.zip", export)
    assert (parsed.file_type, parsed.parser) == ("archive", "zip")
    text = parsed.text
    order = ["# wiki/Onboarding.md", "## Onboarding", "### Laptops", "# wiki/policy.pdf",
             "CANARY-PDF", "import os\n\n\ndef run():"]  # fmt: skip
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    # A code file's text is its own, line for line: no heading put in, none demoted.
    assert "# wiki/tool.py" not in text and "    # CANARY-PY a comment\n" in text
    # The files with no text are named; what macOS and Finder leave is not. The image is
    # read once OCR is on: said.
    assert parsed.warnings == [
        f"1 image(s) {UNREAD_SCANS}",
        "3 of 6 files with no text skipped: wiki/logo.png, wiki/setup.exe, wiki/__init__.py",
    ]
    assert parsed.members == {
        "wiki/Onboarding.md": ("markdown", None),
        "wiki/policy.pdf": ("pdf", None),
        "wiki/tool.py": ("code", "python"),
    }
    assert list((tmp_path / "scratch").iterdir()) == []

    plan = chunk_document(parsed, SMALL, {})
    paths = {c.metadata.get("heading_path") for c in plan.chunks}
    assert "wiki/Onboarding.md > Onboarding > Laptops" in paths
    pdf = next(c for c in plan.chunks if "CANARY-PDF" in c.text)
    assert pdf.metadata["heading_path"].startswith("wiki/policy.pdf")
    # Each file is chunked as a file of its type: the PDF's own pages, the code's lines.
    page_two = next(c for c in plan.chunks if "CANARY-PDF2" in c.text)
    assert (pdf.metadata["file_type"], page_two.metadata["page_end"]) == ("pdf", 2)
    code = next(c for c in plan.chunks if "CANARY-PY" in c.text)
    assert {k: code.metadata.get(k) for k in ("file_type", "language", "line_start")} == {
        "file_type": "code", "language": "python", "line_start": 1
    }  # fmt: skip
    assert code.metadata["line_end"] == 6 and code.metadata["symbol"] == "run"
    # Each chunk is of one file, and says which; small files stay whole, one chunk each.
    members = [c.metadata["archive_member"] for c in plan.chunks]
    assert members == sorted(members, key=["wiki/Onboarding.md", "wiki/policy.pdf",
                                           "wiki/tool.py"].index)  # fmt: skip
    assert members.count("wiki/policy.pdf") == members.count("wiki/tool.py") == 1
    assert all(c.text.count("\n# wiki/") == 0 for c in plan.chunks)  # no chunk holds two
    assert [c.metadata["chunk_index"] for c in plan.chunks] == list(range(len(plan.chunks)))
    assert {c.metadata["chunk_count"] for c in plan.chunks} == {len(plan.chunks)}

    # Two copies of a file are two files, each whole under its own path.
    long = b"# X\n\n" + b"".join(b"Line %d of CANARY-TWICE. " % i for i in range(60))
    twice = docs.zip_bytes({"a/x.md": long, "b/y.md": b"# Y\n\nother\n", "c/x.md": long})
    plan = chunk_document(_parse(tmp_path, "twice.zip", twice), SMALL, {})
    per_member = [c.metadata["archive_member"] for c in plan.chunks]
    assert per_member.count("a/x.md") == per_member.count("c/x.md") > 1


def test_tar_archives_plain_or_compressed_and_what_they_must_not_do(tmp_path: Path) -> None:
    site = {
        "site/index.html": b"<html><body><h1>Home</h1><p>CANARY-TAR here.</p></body></html>",
        "site/inner.zip": docs.zip_bytes({"deep.md": b"# Deep\n\nCANARY-NESTED\n"}),
        "../../outside.md": b"# Outside\n\nCANARY-TRAVERSAL stays a heading.\n",
        "site/\nfake heading.md": b"CANARY-NEWLINE in the name\n",
    }
    tar = docs.tar_bytes(site, links={"site/passwd": "/etc/passwd"})
    for name, data in (
        ("site.tar", tar),
        ("site.tar.gz", gzip.compress(tar)),
        ("site.tgz", gzip.compress(tar)),
        ("bundle.gz", gzip.compress(tar)),  # the bytes say it is a tar
    ):
        parsed = _parse(tmp_path, name, data)
        assert (parsed.file_type, parsed.parser) == ("archive", "tar"), name
        text = parsed.text
        assert "# site/index.html\n\n## Home\n\nCANARY-TAR here." in text
        # A path is a heading's text only: no file is written where a name points.
        assert "# ../../outside.md\n\n## Outside" in text
        assert not (tmp_path.parent / "outside.md").exists()
        assert "# site/ fake heading.md\n\nCANARY-NEWLINE" in text
        # An archive inside is read, its files under its path; a link is not followed.
        assert "# site/inner.zip/deep.md\n\n## Deep\n\nCANARY-NESTED" in text
        assert "root:" not in text
        assert list((tmp_path / "scratch").iterdir()) == []


def test_an_archive_inside_an_archive_is_read_one_level_down(tmp_path: Path) -> None:
    deeper = docs.zip_bytes({"deepest.md": b"# Deepest\n\nCANARY-DEEPEST\n"})
    inner = docs.zip_bytes(
        {
            "guide.md": b"# Guide\n\nCANARY-GUIDE read the guide.\n",
            "tool.py": b"def tool():\n    return 'CANARY-TOOL'\n",
            "logo.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
            "broken.pdf": b"%PDF-1.7\n garbage",
            "deeper.zip": deeper,
        }
    )
    src = gzip.compress(docs.tar_bytes({"cmd/main.go": b"package main\n\n// CANARY-GO\n"}))
    outer = {"notes.md": b"# Notes\n\nCANARY-TOP\n", "docs.zip": inner, "src.tar.gz": src}
    parsed = _parse(tmp_path, "bundle.zip", docs.zip_bytes(outer))
    text = parsed.text
    assert "# docs.zip/guide.md\n\n## Guide\n\nCANARY-GUIDE" in text
    assert "CANARY-TOP" in text and "CANARY-GO" in text and "CANARY-DEEPEST" not in text
    assert parsed.members == {
        "notes.md": ("markdown", None),
        "docs.zip/guide.md": ("markdown", None),
        "docs.zip/tool.py": ("code", "python"),
        "src.tar.gz/cmd/main.go": ("code", "go"),
    }
    # What the archive inside could not give is said, under its path.
    warnings = "\n".join(parsed.warnings)
    assert "docs.zip/broken.pdf: CorruptDocumentError" in warnings
    assert (
        "Failed to open the file" in warnings and str(tmp_path) not in warnings
    )  # no scratch path
    assert "docs.zip/deeper.zip: UnsupportedFileTypeError" in warnings
    assert "1 of 5 files with no text skipped: docs.zip/logo.png" in warnings
    assert "src.tar.gz: decompressed from gzip" in warnings
    plan = chunk_document(parsed, SMALL, {})
    where = {c.metadata["archive_member"]: c.metadata for c in plan.chunks}
    assert where["docs.zip/tool.py"]["language"] == "python"
    assert where["src.tar.gz/cmd/main.go"]["language"] == "go"
    assert list((tmp_path / "scratch").iterdir()) == []
    # The member cache keeps an archive inside as one entry: its files, their kinds, its
    # warnings; an entry not in that shape is read again.
    from rag_ingest.parsers.archive import write_member_cache

    cache = tmp_path / "cache.json"
    options = ParseOptions(temp_dir=str(tmp_path / "scratch"), member_cache=str(cache))
    first = _parse(tmp_path, "bundle.zip", docs.zip_bytes(outer), member_cache=str(cache))
    write_member_cache(str(cache), options, first.cache)
    again = _parse(tmp_path, "bundle.zip", docs.zip_bytes(outer), member_cache=str(cache))
    assert again.unchanged_members == 3 and again.text == text
    assert again.members == parsed.members
    assert [w.split(":")[:2] for w in again.warnings] == [w.split(":")[:2] for w in parsed.warnings]
    shaped = json.loads(cache.read_text())
    shaped["members"]["docs.zip"]["segments"][0][3] = "elsewhere.md"
    cache.write_text(json.dumps(shaped))
    mended = _parse(tmp_path, "bundle.zip", docs.zip_bytes(outer), member_cache=str(cache))
    assert mended.unchanged_members == 2 and mended.members == parsed.members
    # Each archive inside is held to the size limit on its own, as a DOCX inside is.
    big = docs.zip_bytes({"a.txt": b"a" * 3000, "b.txt": b"CANARY-BIG " * 300})
    capped = _parse(tmp_path, "c.zip", docs.zip_bytes({"big.zip": big, "ok.md": b"CANARY-OK"}),
                    max_unzipped_size=5000)  # fmt: skip
    assert "CANARY-OK" in capped.text and "CANARY-BIG" not in capped.text
    assert any(w.startswith("big.zip: ZipBombError") for w in capped.warnings)


def test_archive_limits_hold_before_anything_is_unpacked(tmp_path: Path) -> None:
    # Past the size limit, counted over the files that would be read.
    big = docs.zip_bytes({"a.txt": b"a" * 3000, "b.txt": b"b" * 3000})
    with pytest.raises(ZipBombError, match="files to read expand to 6000 bytes"):
        _parse(tmp_path, "big.zip", big, max_unzipped_size=5000)
    # Files never read do not count: a logo over the limit is only named.
    logo = docs.zip_bytes({"logo.png": b"\x89PNG" + bytes(6000), "a.txt": b"CANARY-SMALL"})
    assert "CANARY-SMALL" in _parse(tmp_path, "l.zip", logo, max_unzipped_size=5000).text
    # A member compressed past the ratio.
    bomb = docs.zip_bytes({"zeros.txt": bytes(4 * 1024 * 1024)})
    with pytest.raises(ZipBombError, match=r"compressed \d+:1"):
        _parse(tmp_path, "bomb.zip", bomb)
    # A tar whose header says more than the limit.
    with pytest.raises(ZipBombError):
        _parse(tmp_path, "big.tar", docs.tar_bytes({"a.txt": b"a" * 6000}), max_unzipped_size=5000)
    with pytest.raises(CorruptDocumentError, match="not a readable archive"):
        _parse(tmp_path, "cut.zip", big[: len(big) // 2])
    # An old-style tar whose header does not read (CPython's recursion.tar): not a file
    # misnamed ("content does not match its .tar extension").
    v7 = b"notes.txt".ljust(512, b"\x00") + bytes(1024)
    with pytest.raises(CorruptDocumentError, match=r"a damaged \.tar file"):
        _parse(tmp_path, "damaged.tar", v7)
    with pytest.raises(NoTextFormatError, match="none with text"):
        _parse(tmp_path, "bins.zip", docs.zip_bytes({"x.exe": b"MZ", "y.dll": b"MZ"}))
    # Files of binary content under names that say nothing (Java's public_suffix_list.dat)
    # are not damage either; one that is damaged fails it.
    trie = {"news": b"\x00news\x00\x01\x02\x00" * 40, "aaa": b"\x00aaa\n"}
    with pytest.raises(NoTextFormatError, match="none with text"):
        _parse(tmp_path, "suffixes.dat", docs.zip_bytes(trie))
    damaged = docs.zip_bytes({**trie, "a.docx": b"PK\x03\x04 cut"})
    with pytest.raises(CorruptDocumentError, match="none read"):
        _parse(tmp_path, "damaged.zip", damaged)
    # A .docx that is a plain zip is a broken document, not a bundle to read.
    with pytest.raises(UnsupportedFileTypeError, match=r"not a \.docx file"):
        _parse(tmp_path, "broken.docx", docs.zip_bytes({"word.txt": b"CANARY"}))
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_file_that_cannot_be_read_is_a_warning_not_a_failed_archive(tmp_path: Path) -> None:
    archive = docs.zip_bytes(
        {
            "ok.md": b"# Fine\n\nCANARY-OK read.\n",
            "secret.txt": b"CANARY-SECRET must not be read\n",
            "broken.pdf": b"%PDF-1.7\n garbage",
            "long.txt": b"CANARY-LONG runs past what its archive declares. " * 200,
        }
    )

    # zipfile writes no encryption: set the flag in the central directory, as a
    # password-protected member has it.
    def entry(name: bytes) -> int:
        at = archive.index(b"PK\x01\x02")
        while archive[at + 46 : at + 46 + len(name)] != name:
            at = archive.index(b"PK\x01\x02", at + 1)
        return at

    at = entry(b"secret.txt") + 8
    flags = int.from_bytes(archive[at : at + 2], "little") | 0x1
    archive = archive[:at] + flags.to_bytes(2, "little") + archive[at + 2 :]
    # A member that runs on past the size the directory declares (the size the limit
    # counted): zipfile stops there, and the CRC check fails it.
    at = entry(b"long.txt") + 24
    archive = archive[:at] + (100).to_bytes(4, "little") + archive[at + 4 :]
    with zipfile.ZipFile(io.BytesIO(archive)) as check:
        assert check.getinfo("secret.txt").flag_bits & 0x1
        assert check.getinfo("long.txt").file_size == 100

    parsed = _parse(tmp_path, "mixed.zip", archive)
    assert "CANARY-OK" in parsed.text and "CANARY-SECRET" not in parsed.text
    assert "CANARY-LONG" not in parsed.text
    assert [w.split(":")[:2] for w in parsed.warnings] == [
        ["secret.txt", " EncryptedDocumentError"],
        ["broken.pdf", " CorruptDocumentError"],
        ["long.txt", " CorruptDocumentError"],
    ]
    # With no file read, it fails, and says why; it is not "none with text" (a format
    # with no text, skipped unread when listed): every file locked is a locked archive.
    archive = docs.zip_bytes({"a.txt": b"CANARY-A", "b.txt": b"CANARY-B"})
    for name in (b"a.txt", b"b.txt"):
        at = entry(name) + 8
        flags = int.from_bytes(archive[at : at + 2], "little") | 0x1
        archive = archive[:at] + flags.to_bytes(2, "little") + archive[at + 2 :]
    with pytest.raises(EncryptedDocumentError, match=r"none read: 2 could not be"):
        _parse(tmp_path, "locked.zip", archive)


def test_an_archive_s_parts_are_contiguous_balanced_and_few() -> None:
    from rag_ingest.parsers.archive import MAX_PARTS, PART_FILES, ArchivePlan

    def plan(sizes: list[int]) -> ArchivePlan:
        wanted = list(range(0, 2 * len(sizes), 2))  # indexes skip the textless files
        return ArchivePlan("a.zip", False, "zip", 2 * len(sizes), wanted, sizes, [])

    for sizes, workers, expected in (
        ([100] * 8, 2, [4, 4]),  # a part per worker
        ([100] * 40, 2, [14, 13, 13]),  # at most 16 files a part
        ([100] * 3, 4, [1, 1, 1]),  # no empty part
        ([10_000] + [100] * 9, 2, [1, 9]),  # by size: the big file alone
    ):
        parts = plan(sizes).parts(workers)
        assert [len(p) for p in parts] == expected, sizes
        assert [i for p in parts for i in p] == plan(sizes).wanted  # each once, in order
    many = plan([100] * 3000).parts(2)
    assert len(many) == MAX_PARTS and max(len(p) for p in many) > PART_FILES
    assert [i for p in many for i in p] == plan([100] * 3000).wanted


def test_an_archive_of_one_file_is_chunked_as_that_file(tmp_path: Path) -> None:
    code = b"import os\n\n\ndef main():\n    return os.getcwd()  # CANARY-ONE\n"
    parsed = _parse(tmp_path, "tool.zip", docs.zip_bytes({"bin/tool.py": code}))
    (chunk,) = chunk_document(parsed, SMALL, {}).chunks
    assert chunk.text == code.decode().strip()
    assert (chunk.metadata["file_type"], chunk.metadata["language"]) == ("code", "python")
    assert (chunk.metadata["archive_member"], chunk.metadata["symbol"]) == ("bin/tool.py", "main")


def test_a_member_cache_serves_unchanged_files_under_its_own_settings_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from rag_ingest.parsers.archive import write_member_cache

    log = tmp_path / "parsed.log"
    monkeypatch.setenv("RAG_INGEST_TEST_PARSE_LOG", str(log))

    def parsed_names() -> list[str]:
        names = sorted(log.read_text().split()) if log.exists() else []
        log.unlink(missing_ok=True)
        return names

    files = {f"{c}.note": f"CANARY-{c} note.\n".encode() for c in "abc"}
    files["bad.note"] = b"\x00\x01\x02" * 40  # binary: a warning, parsed each time
    cache = tmp_path / "cache" / "export.json"
    options = {
        "plugins": ((".note", "tests.hostile_parsers:logged_note"),),
        "member_cache": str(cache),
    }
    first = _parse(tmp_path, "export.zip", docs.zip_bytes(files), **options)
    assert parsed_names() == ["a.note", "b.note", "bad.note", "c.note"]
    assert first.unchanged_members == 0 and set(first.cache) == set(files) - {"bad.note"}
    write_member_cache(
        str(cache), ParseOptions(temp_dir=str(tmp_path / "scratch"), **options), first.cache
    )  # type: ignore[arg-type]

    files["b.note"] = b"CANARY-B changed.\n"
    again = _parse(tmp_path, "export.zip", docs.zip_bytes(files), **options)
    assert parsed_names() == ["b.note", "bad.note"] and again.unchanged_members == 2
    assert again.text == _parse(tmp_path, "plain.zip", docs.zip_bytes(files)).text
    assert again.warnings == first.warnings and again.members == first.members
    parsed_names()
    # Made under other settings (or unreadable), the cache is not used.
    other = _parse(tmp_path, "export.zip", docs.zip_bytes(files), pdf_mode="fast", **options)
    assert len(parsed_names()) == 4 and other.unchanged_members == 0
    # An entry not in the shape we write (valid settings) is parsed again.
    write_member_cache(
        str(cache), ParseOptions(temp_dir=str(tmp_path / "scratch"), **options), again.cache
    )  # type: ignore[arg-type]
    shaped = json.loads(cache.read_text())
    del shaped["members"]["a.note"]["segments"]
    cache.write_text(json.dumps(shaped))
    mended = _parse(tmp_path, "export.zip", docs.zip_bytes(files), **options)
    assert parsed_names() == ["a.note", "bad.note"] and mended.text == again.text
    cache.write_text("{not json")
    broken = _parse(tmp_path, "export.zip", docs.zip_bytes(files), **options)
    assert len(parsed_names()) == 4 and broken.text == again.text
    assert dataclasses.replace(ParseOptions(), member_cache=None) == ParseOptions()


def test_a_transcript_in_an_archive_keeps_its_times_through_the_member_cache(
    tmp_path: Path,
) -> None:
    """An archive's files travel as member-cache entries: a transcript's times had
    been left behind there."""
    from rag_ingest.parsers.archive import write_member_cache

    vtt = docs.corpus()["media/standup.vtt"]
    inner = docs.zip_bytes({"standup.vtt": vtt})
    files = {"calls/standup.vtt": vtt, "calls/older.zip": inner, "readme.md": b"# Calls"}
    cache = tmp_path / "cache.json"
    options = ParseOptions(temp_dir=str(tmp_path / "scratch"), member_cache=str(cache))
    first = _parse(tmp_path, "calls.zip", docs.zip_bytes(files), member_cache=str(cache))
    write_member_cache(str(cache), options, first.cache)
    again = _parse(tmp_path, "calls.zip", docs.zip_bytes(files), member_cache=str(cache))
    assert again.unchanged_members == 3
    for parsed in (first, again):
        times = {s.member: s.time for s in parsed.segments if s.time is not None}
        assert times == {"calls/standup.vtt": (7.0, 9.0), "calls/older.zip/standup.vtt": (7.0, 9.0)}
        chunks = chunk_document(parsed, ChunkSettings(), {}).chunks
        said = [c.metadata for c in chunks if "time_start" in c.metadata]
        assert [(m["archive_member"], m["time_start"], m["time_end"]) for m in said] == [
            ("calls/standup.vtt", 1.0, 9.0),
            ("calls/older.zip/standup.vtt", 1.0, 9.0),
        ]
    # A cached time not in the shape we write: that file is read again.
    shaped = json.loads(cache.read_text())
    shaped["members"]["calls/standup.vtt"]["segments"][0][3] = ["x", 1]
    cache.write_text(json.dumps(shaped))
    mended = _parse(tmp_path, "calls.zip", docs.zip_bytes(files), member_cache=str(cache))
    assert mended.unchanged_members == 2 and mended.text == first.text


def test_a_mailbox_or_mail_in_an_archive_keeps_its_messages_and_attachments_apart(
    tmp_path: Path,
) -> None:
    """A Takeout zip's mailbox was chunked as one text, its messages run together and
    none named, and a zipped mail's attached CSV as the mail's prose: each message and
    attachment is now a file of its own under the file's name, chunked as when alone."""
    import mailbox
    from email.message import EmailMessage

    from rag_ingest.parsers.archive import write_member_cache

    def mail(subject: str, body: str, csv: bytes | None = None) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = "ops@example.com"
        message.set_content(body)
        if csv is not None:
            message.add_attachment(csv, maintype="text", subtype="csv", filename="hosts.csv")
        return message

    rows = b"host,status\n" + b"".join(b"CANARY-HOST-%d,down\n" % i for i in range(80))
    box_path = tmp_path / "All mail.mbox"
    box = mailbox.mbox(str(box_path))
    box.add(mail("Outage", "CANARY-OUTAGE the build hosts are down. " * 30, rows))
    box.add(mail("Fixed", "CANARY-FIXED all hosts are back."))
    box.close()
    alone = parse_file(str(box_path), "All mail.mbox", ParseOptions())
    files = {
        "Takeout/Mail/All mail.mbox": box_path.read_bytes(),
        "saved/outage.eml": bytes(mail("Saved", "CANARY-SAVED see attached.", rows)),
    }
    data = docs.zip_bytes(files)
    parsed = _parse(tmp_path, "takeout.zip", data)
    box_name = "Takeout/Mail/All mail.mbox"
    assert parsed.members == {
        f"{box_name}/message 1: Outage": ("email", None),
        f"{box_name}/message 1: Outage/hosts.csv": ("csv", None),
        f"{box_name}/message 2: Fixed": ("email", None),
        "saved/outage.eml": ("email", None),
        "saved/outage.eml/hosts.csv": ("csv", None),
    }
    plan = chunk_document(parsed, SMALL, {})
    by_member: dict[str, list[str]] = {}
    for chunk in plan.chunks:
        by_member.setdefault(chunk.metadata["archive_member"], []).append(chunk.text)
        assert chunk.metadata["file_type"] in ("email", "csv")
    # Each message's chunks are its own (none runs into the next), as when alone.
    own = {c.metadata["archive_member"]: c.text for c in chunk_document(alone, SMALL, {}).chunks}
    # (its headings a level down, under the file's name, as any file's in an archive)
    assert by_member[f"{box_name}/message 2: Fixed"] == ["#" + own["message 2: Fixed"]]
    assert "CANARY-FIXED" not in "".join(by_member[f"{box_name}/message 1: Outage"])
    tables = by_member["saved/outage.eml/hosts.csv"]
    assert len(tables) > 1 and all(t.startswith("host,status\n") for t in tables)
    # The member cache keeps such a file as one entry, its messages and their kinds.
    cache = tmp_path / "cache.json"
    options = ParseOptions(temp_dir=str(tmp_path / "scratch"), member_cache=str(cache))
    first = _parse(tmp_path, "takeout.zip", data, member_cache=str(cache))
    write_member_cache(str(cache), options, first.cache)
    again = _parse(tmp_path, "takeout.zip", data, member_cache=str(cache))
    assert again.unchanged_members == 2
    assert (again.text, again.members) == (parsed.text, parsed.members)


def test_a_zipped_repository_s_secrets_are_never_read(tmp_path: Path) -> None:
    # A repository exported as a zip keeps its .env and credentials: read as text, the
    # keys had gone into the index with the rest.
    repo = docs.zip_bytes(
        {
            "app/.env": b"API_KEY=CANARY-SECRET\n",
            "app/deploy/db.env": b"PASSWORD=CANARY-PW\n",
            "app/.aws/credentials": b"[default]\naws_secret_access_key=CANARY-AWS\n",
            "app/README.md": b"# App\n\nCANARY-README runs.\n",
            "app/.env.example": b"API_KEY=CANARY-TEMPLATE\n",
            "app/tls/server.pem": b"-----BEGIN PRIVATE KEY-----\nCANARY-KEY\n",
            "app/static/icons.woff2": b"wOF2\x00\x01",
            "app/__init__.py": b"",
        }
    )
    parsed = _parse(tmp_path, "repo.zip", repo)
    assert re.findall(r"CANARY-\w+", parsed.text) == ["CANARY-README", "CANARY-TEMPLATE"]
    # The secrets are worth a look; a font and an empty file are skipped as a walk skips
    # them, a note (Django's sdist had been "with warnings" for 2,017 such files).
    secrets = "app/.env, app/deploy/db.env, app/.aws/credentials, app/tls/server.pem"
    skipped = "2 of 8 files with no text skipped: app/static/icons.woff2, app/__init__.py"
    assert parsed.warnings == [f"4 file(s) of secrets not read: {secrets}", skipped]
    assert split_notes(parsed.warnings) == ([parsed.warnings[0]], [skipped])
    # Inside an archive inside, the note is still one, under the inner archive's name.
    outer = _parse(tmp_path, "outer.zip", docs.zip_bytes({"repo.zip": repo, "a.md": b"# A"}))
    assert split_notes(outer.warnings)[1] == [
        f"repo.zip: {skipped.replace('app/', 'repo.zip/app/')}"
    ]


def test_a_files_own_warnings_are_its_archives_and_its_unread_scans_said(
    tmp_path: Path,
) -> None:
    """A scanned PDF in a zip had its unread pages unsaid, so the zip was never read
    again once OCR was on (the pipeline goes by the warning); a mailbox's failed
    attachments went unsaid too."""
    from email.message import EmailMessage

    import pymupdf

    from rag_ingest.parsers.archive import write_member_cache

    contract = pymupdf.open("pdf", docs.pdf_bytes(["Typed cover page CANARY-COVER."]))
    contract.insert_pdf(pymupdf.open("pdf", docs.scanned_pdf(["Signed annex"], dpi=60)))
    box = b""
    for i in range(7):  # a warning each: the first 4 carried, the rest counted
        mail = EmailMessage()
        mail["Subject"] = f"Invoice {i}"
        mail.set_content(f"CANARY-MAIL-{i} body")
        mail.add_attachment(b"%PDF-1.4 cut", maintype="application", subtype="pdf",
                            filename=f"bad{i}.pdf")  # fmt: skip
        box += b"From a@b Mon Jan  1 00:00:00 2024\n" + bytes(mail) + b"\n"
    files = {
        "scan.pdf": contract.tobytes(),  # a page typed, a page scanned
        "mail/box.mbox": box,
        "config.example": b"CANARY-CONFIG text",  # a type guessed: no warning of it
        "log.txt": b"CANARY-LOG started\n" + bytes(64) + b"CANARY-LOG resumed\n",
    }
    data = docs.zip_bytes(files)
    parsed = _parse(tmp_path, "bundle.zip", data)
    assert parsed.warnings[0] == f"scans or pictures in 1 file(s) (scan.pdf) {UNREAD_SCANS}"
    # Each under its message, named as the mailbox names it.
    mailed = [w for w in parsed.warnings if w.startswith("mail/box.mbox: message ")]
    assert mailed[0].startswith("mail/box.mbox: message 1: Invoice 0: attachment bad0.pdf: ")
    assert len(mailed) == 4 and "CorruptDocumentError" in mailed[0]
    assert "mail/box.mbox: and 3 more warnings" in parsed.warnings
    assert "log.txt: 64 NUL bytes of padding left out" in parsed.warnings
    assert not any("config.example" in w for w in parsed.warnings)
    # Taken from the member cache, the files say the same; an entry written before
    # files kept their warnings (none) is still taken.
    cache = tmp_path / "cache.json"
    options = ParseOptions(temp_dir=str(tmp_path / "scratch"), member_cache=str(cache))
    first = _parse(tmp_path, "bundle.zip", data, member_cache=str(cache))
    write_member_cache(str(cache), options, first.cache)
    again = _parse(tmp_path, "bundle.zip", data, member_cache=str(cache))
    assert again.unchanged_members == 4 and again.warnings == parsed.warnings
    shaped = json.loads(cache.read_text())
    del shaped["members"]["log.txt"]["warnings"]
    shaped["members"]["scan.pdf"]["warnings"] = "not a list"
    cache.write_text(json.dumps(shaped))
    older = _parse(tmp_path, "bundle.zip", data, member_cache=str(cache))
    assert older.unchanged_members == 3 and older.warnings[0] == parsed.warnings[0]
    # A zip of many files, each with a warning: 50 said, the rest counted.
    padded = b"CANARY\n" + bytes(40) + b"x\n"
    many = docs.zip_bytes({f"f{i:02}.txt": padded for i in range(60)})
    said = _parse(tmp_path, "many.zip", many).warnings
    assert len(said) == 50 and said[-1] == "and 11 more warnings"
    # Notes of how a file was read are the ones counted: 60 gzipped logs and one padded.
    noted = {f"f{i:02}.log.gz": gzip.compress(b"CANARY\n") for i in range(60)}
    said = _parse(tmp_path, "gz.zip", docs.zip_bytes({**noted, "z.txt": padded})).warnings
    assert said[0] == "z.txt: 40 NUL bytes of padding left out"
    assert said[1:3] == ["f00.log.gz: decompressed from gzip", "f01.log.gz: decompressed from gzip"]
    assert len(said) == 50 and said[-1] == "and 12 more warnings"


def test_a_part_given_its_cache_entries_reads_no_cache_file(tmp_path: Path) -> None:
    from rag_ingest.parsers.archive import plan_archive, read_part

    files = {f"{c}.md": f"# {c}\n\nCANARY-{c} note.\n".encode() for c in "abcd"}
    path = tmp_path / "notes.zip"
    path.write_bytes(docs.zip_bytes(files))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # The cache file named does not exist: only the entries given can serve.
    options = ParseOptions(temp_dir=str(scratch), member_cache=str(tmp_path / "none.json"))
    plan = plan_archive(str(path), "notes.zip", options)
    assert plan.names == list(files)
    first = read_part(str(path), "notes.zip", plan.wanted, options)
    assert first.unchanged == 0 and set(first.cached) == set(files)
    part = plan.wanted[1:3]
    given = plan.cached(part, first.cached)
    assert list(given) == ["b.md", "c.md"]
    again = read_part(str(path), "notes.zip", part, options, cached=given)
    assert again.unchanged == 2 and again.segments == [
        s for s in first.segments if s.member in given
    ]


def test_the_member_cache_keeps_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A tar made where file names are Latin-1: tarfile gives the name's bytes as lone
    surrogates, which Chroma refused to store in a chunk's ``archive_member`` (and orjson
    to write in the cache): the name is read as windows-1252, as a file's on disk is."""
    import tarfile

    from rag_ingest.parsers.archive import write_member_cache

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, text in ((b"caf\xe9.md", b"# Caf\n\nCANARY-LATIN"), (b"ok.md", b"# OK")):
            info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    cache = tmp_path / "cache.json"
    options = ParseOptions(temp_dir=str(tmp_path / "scratch"), member_cache=str(cache))
    first = _parse(tmp_path, "names.tar", data.getvalue(), member_cache=str(cache))
    assert "caf\u00e9.md" in first.cache and "# caf\u00e9.md" in first.text
    assert {s.member for s in first.segments} == {"caf\u00e9.md", "ok.md"}
    write_member_cache(str(cache), options, first.cache)
    again = _parse(tmp_path, "names.tar", data.getvalue(), member_cache=str(cache))
    assert again.unchanged_members == 2 and again.text == first.text
    assert "CANARY-LATIN" in again.text


def _legacy_zip(
    files: dict[str, bytes], codec: str, extra: dict[str, bytes] | None = None
) -> bytes:
    """A zip whose names are bytes in ``codec`` without the UTF-8 flag, as Windows'
    Explorer writes them in its locale's code page (zipfile writes UTF-8 and its flag:
    each name goes in as a stand-in of its length, then is put in its place)."""
    buf, swaps = io.BytesIO(), []
    with zipfile.ZipFile(buf, "w") as archive:
        for i, (name, body) in enumerate(files.items()):
            raw = name.encode(codec)
            stand_in = f"{i:02d}{'q' * len(raw)}"[: len(raw)].encode()
            info = zipfile.ZipInfo(stand_in.decode())
            info.extra = (extra or {}).get(name, b"")
            archive.writestr(info, body)
            swaps.append((stand_in, raw))
    data = buf.getvalue()
    for stand_in, raw in swaps:
        assert data.count(stand_in) == 2  # its local header's and its directory entry's
        data = data.replace(stand_in, raw)
    return data


@pytest.mark.parametrize(
    ("codec", "names"),
    [
        ("cp932", ["議事録.md", "資料/メモ.md"]),  # Japanese Windows
        ("gbk", ["会议纪要.md", "资料/备忘录.md"]),  # Chinese
        ("big5", ["會議紀錄.md", "資料/備忘錄.md"]),
        ("cp949", ["회의록.md", "자료/메모.md"]),  # Korean
        ("cp866", ["Отчёт.md", "Документы/План.md"]),  # Russian
        ("cp437", ["Protokoll_Müller.md", "Übersicht/Größe.md"]),  # the format's own
        ("utf-8", ["議事録.md", "Größe.md"]),  # UTF-8 without its flag
        ("cp932", ["メモ.md"]),  # one short name
        ("gbk", ["报告.md"]),
    ],
)
def test_a_zip_s_names_without_the_utf8_flag_are_read_in_their_code_page(
    tmp_path: Path, codec: str, names: list[str]
) -> None:
    # zipfile reads such a name as cp437: a zip made on a Japanese Windows had its files
    # as "ïcÄûÿ^.md" for 議事録.md, in headings and in `archive_member`.
    files = {name: f"# Notes\n\nCANARY-{i} text.\n".encode() for i, name in enumerate(names)}
    parsed = _parse(tmp_path, "export.zip", _legacy_zip(files, codec))
    assert list(parsed.members) == names
    assert all(f"CANARY-{i} text." in parsed.text for i in range(len(names)))


def test_a_zip_s_unicode_path_field_names_its_file(tmp_path: Path) -> None:
    # Info-ZIP's extra field of a name in UTF-8 (WinZip writes it) names the file, when
    # it is of the name beside it (its CRC); an old one, of another name, does not.
    raw = "Gr\u00f6\u00dfe.md".encode("cp1252")  # read as cp437 alone: "Gr÷▀e.md"
    field = b"\x01" + zlib.crc32(raw).to_bytes(4, "little") + "Größe.md".encode()
    stale = b"\x01" + zlib.crc32(b"other").to_bytes(4, "little") + b"Wrong.md"
    files = {"Gr\u00f6\u00dfe.md": b"CANARY-A text.\n", "B\u00e4r.md": b"CANARY-B text.\n"}
    extra = {
        "Gr\u00f6\u00dfe.md": (0x7075).to_bytes(2, "little")
        + len(field).to_bytes(2, "little")
        + field,
        "B\u00e4r.md": (0x7075).to_bytes(2, "little") + len(stale).to_bytes(2, "little") + stale,
    }
    parsed = _parse(tmp_path, "export.zip", _legacy_zip(files, "cp1252", extra))
    names = list(parsed.members)
    assert names[0] == "Größe.md" and names[1] != "Wrong.md"
    # A name its maker's code page lacks, written "??.md" beside its field.
    field = b"\x01" + zlib.crc32(b"??.md").to_bytes(4, "little") + "議事.md".encode()
    tag = (0x7075).to_bytes(2, "little") + len(field).to_bytes(2, "little")
    archive = _legacy_zip({"??.md": b"CANARY-Q text.\n"}, "ascii", {"??.md": tag + field})
    assert list(_parse(tmp_path, "q.zip", archive).members) == ["議事.md"]
