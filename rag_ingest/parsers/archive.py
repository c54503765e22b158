"""Zip and tar archives (a Notion or Confluence export, a folder of PDFs zipped to mail,
a ``docs.tar.gz``) as one document: each file inside a parser reads, in archive order,
under a ``# path/in/archive`` heading, its own headings a level down, so a chunk's
``heading_path`` names the file it came from.

Limits come first, from the archive's directory (zip) or headers (tar), before a byte is
unpacked: the files to read may expand to at most ``max_unzipped_size`` in all, and a
zip member at most ``max_zip_ratio`` to 1. Files whose names say they hold no text
(images unless OCR reads them, binaries, media), links, devices and the metadata macOS
and Windows leave (``__MACOSX/``, ``.DS_Store``) are listed, never unpacked. An archive
inside the archive is not opened; a file that cannot be read is a warning, not a failed
archive. Each file is written to a scratch name (never the path the archive gives it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from rag_ingest.errors import (
    CorruptDocumentError,
    DocumentError,
    EncryptedDocumentError,
    NoTextFormatError,
    ZipBombError,
)
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.sniff import no_text

__all__ = ["parse_archive"]

_SKIPPED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_HEADING = re.compile(r"^#{1,5}\s", re.MULTILINE)
# The files named past this many are listed in the warning by count alone.
_NAMED = 10


@dataclass
class _Member:
    name: str  # as the archive gives it, for headings and warnings only
    size: int
    open: Callable[[], IO[bytes]]


def _shown(name: str) -> str:
    """A member's name fit for a heading: one line, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip() or "(unnamed)"


def _metadata(name: str) -> bool:
    """What an operating system leaves in archives it makes: dropped unmentioned."""
    path = PurePosixPath(name)
    return (
        "__MACOSX" in path.parts
        or path.name.lower() in _SKIPPED_NAMES
        or path.name.startswith("._")  # AppleDouble resource forks
    )


def _zip_members(archive: zipfile.ZipFile, name: str, max_ratio: float) -> Iterator[_Member]:
    for info in archive.infolist():
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > max_ratio:
            raise ZipBombError(f"{name}: member {info.filename!r} is compressed {ratio:.0f}:1")
        yield _Member(info.filename, info.file_size, functools.partial(archive.open, info))


def _extracted(archive: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    member = archive.extractfile(info)
    assert member is not None  # a regular file always has its bytes
    return member


def _tar_members(archive: tarfile.TarFile) -> Iterator[_Member]:
    for info in archive:
        if info.isreg():  # links, devices and directories are not files to read
            yield _Member(info.name, info.size, functools.partial(_extracted, archive, info))


def _demoted(text: str) -> str:
    """``text`` with its Markdown headings a level down (``#`` -> ``##``), fenced code
    left as it is: under its file's ``#`` heading, a file's own title would end it."""
    from rag_ingest.chunking import in_code_fence

    fenced = in_code_fence(text)
    return _HEADING.sub(lambda m: m[0] if fenced(m.start()) else "#" + m[0], text)


def _fenced(parsed: ParsedDocument) -> str:
    """A code file's text in a fence that names its language, longer than any run of
    backticks inside it."""
    text = parsed.text.strip("\n")
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{parsed.language or ''}\n{text}\n{fence}"


def parse_archive(
    path: str,
    name: str,
    read: Callable[[str, str], ParsedDocument],
    *,
    max_size: int,
    max_ratio: float,
    images: bool = False,
    temp_dir: str | None = None,
) -> ParsedDocument:
    """``read(path, name)`` parses one file unpacked from the archive. ``images``: image
    files are read (by OCR) rather than passed over."""
    with open(path, "rb") as f:
        # Not zipfile.is_zipfile: it finds the zip a tar holds, at the tar's end.
        is_zip = f.read(262)[257:262] != b"ustar"
    with contextlib.ExitStack() as stack:
        try:
            if is_zip:
                zipped = stack.enter_context(zipfile.ZipFile(path))
                listed = list(_zip_members(zipped, name, max_ratio))
            else:
                listed = list(_tar_members(stack.enter_context(tarfile.open(path, "r:"))))
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc
        members = [m for m in listed if not _metadata(m.name)]
        textless = {id(m) for m in members if no_text(m.name, images=images) is not None}
        wanted = [m for m in members if id(m) not in textless]
        total = sum(m.size for m in wanted)
        if total > max_size:
            raise ZipBombError(
                f"{name}: its {len(wanted)} files to read expand to {total} bytes, past "
                f"parse.max_unzipped_size ({max_size})"
            )
        scratch = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="rag-ingest-archive-", dir=temp_dir)
        )
        segments, warnings, unread = _read_members(wanted, read, os.path.join(scratch, "file"))
    if not segments:
        raise NoTextFormatError(f"{name}: an archive of {len(members)} files, none with text")
    names = [_shown(m.name) for m in members if id(m) in textless] + unread
    if names:
        named = ", ".join(names[:_NAMED])
        if len(names) > _NAMED:
            named += f" and {len(names) - _NAMED} more"
        warnings.insert(0, f"{len(names)} of {len(members)} files have no text: {named}")
    return ParsedDocument(
        file_type="archive",
        segments=segments,
        parser="zip" if is_zip else "tar",
        warnings=warnings,
    )


def _read_members(
    members: list[_Member], read: Callable[[str, str], ParsedDocument], scratch: str
) -> tuple[list[Segment], list[str], list[str]]:
    """The members' text as segments, the warnings, and the names of those with none."""
    segments: list[Segment] = []
    warnings: list[str] = []
    unread: list[str] = []
    for member in members:
        shown = _shown(member.name)
        try:
            try:
                # zipfile and tarfile stop at the size the archive declares, which
                # the limit counted (a zip member that runs on fails its CRC check).
                with member.open() as source, open(scratch, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            except RuntimeError as exc:  # zipfile's word for an encrypted member
                raise EncryptedDocumentError(f"password-protected ({exc})") from exc
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
                raise CorruptDocumentError(f"a corrupt member ({exc})") from exc
            parsed = read(scratch, PurePosixPath(member.name).name)
        except DocumentError as exc:
            if isinstance(exc, NoTextFormatError):
                unread.append(shown)
            else:
                warnings.append(f"{shown}: {type(exc).__name__}: {exc}")
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        if parsed.file_type == "code":
            parts = [Segment(_fenced(parsed))]
        else:
            parts = [dataclasses.replace(s, text=_demoted(s.text)) for s in parsed.segments]
        for i, segment in enumerate(parts):
            # No page number: page 1 of which file?
            text = f"# {shown}\n\n{segment.text}" if i == 0 else segment.text
            segments.append(Segment(text, ocr=segment.ocr))
    return segments, warnings, unread
