"""Zip and tar archives (a Notion or Confluence export, a folder of PDFs zipped to mail,
a ``docs.tar.gz``) as one document: each file inside a parser reads, in archive order,
its segments marked with its path (``Segment.member``) and its own file type kept
(``ParsedDocument.members``), so that chunking takes it as a file of its own. A document
file's text goes under a ``# path/in/archive`` heading, its own headings a level down,
so its chunks' ``heading_path`` names it; a code, text or CSV file's text stays its own,
line for line.

Limits come first, from the archive's directory (zip) or headers (tar), before a byte is
unpacked: the files to read may expand to at most ``max_unzipped_size`` in all, and a
zip member at most ``max_zip_ratio`` to 1. Files whose names say they hold no text
(images unless OCR reads them, binaries, media), links, devices and the metadata macOS
and Windows leave (``__MACOSX/``, ``.DS_Store``) are listed, never unpacked. An archive
inside the archive (a zip of zips, a ``.tar.gz`` in a zip) is read too, its files named
under its path (``inner.zip/a.md``) and checked against the limits on their own, as a
DOCX inside is: by the parser pool after the archive's parts, in parts of its own (see
``read_part``'s ``keep``), else within the part that holds it. An archive inside that
one is not opened. A file that cannot be read is a warning, not a failed archive. Each file is
written to a scratch name (never the path the archive gives it).

A changed archive (a weekly wiki export) mostly holds files that did not change: with a
member cache (``ParseOptions.member_cache``, a JSON file the caller keeps per archive),
each file's parse is remembered by the SHA-256 of its bytes, and a file whose bytes are
the same is taken from there instead of parsed again. The cache names the parse
settings and parser versions it was made with; any other set ignores it. Each file's
chunks are kept there too, and taken for the same text under the same chunk settings
(``chunking.member_plan``). A split archive's cache is read once, by the caller, and
each part is sent its own files' entries (:meth:`ArchivePlan.cached`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import itertools
import json
import os
import re
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from rag_ingest.errors import (
    BinaryContentError,
    BlankDocumentError,
    CorruptDocumentError,
    DocumentError,
    EncryptedDocumentError,
    NoTextFormatError,
    UnsupportedFileTypeError,
    ZipBombError,
)
from rag_ingest.parsers.base import (
    UNREAD_SCANS,
    ZIP_ERRORS,
    ParsedDocument,
    ParseOptions,
    Segment,
    capped,
    package_versions,
    skipped_note,
    text_name,
)
from rag_ingest.parsers.compressed import compression_of, head_inside, inner_name
from rag_ingest.parsers.sniff import (
    detect,
    holds_secrets,
    mailbox_kind,
    maybe_archive,
    needs_ocr,
    no_text,
)
from rag_ingest.parsers.text import _WORD, _script, decode_text, misfit

__all__ = [
    "ArchivePart",
    "ArchivePlan",
    "Nested",
    "archive_inside",
    "attach",
    "nested_options",
    "take_nested",
    "member_kind",
    "member_segments",
    "message_entries",
    "carry_plans",
    "keep_plans",
    "kept_plans",
    "entry_files",
    "files_usable",
    "load_member_cache",
    "write_member_cache",
    "merge_parts",
    "parse_archive",
    "plan_archive",
    "read_attached",
    "read_part",
]

# Files per part at most: each part is a task under parse.timeout.
PART_FILES = 16
# Parts at most: each lists the archive again, and walks a tar up to its files. 3,000
# small files in 188 parts took 4.2 s from a .tgz and 2.7 s from a zip, against 2.5 and
# 2.4 s in one task; in 64 parts, 2.4 and 1.9 s (measured, 2 workers).
MAX_PARTS = 64

_SKIPPED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_HEADING = re.compile(r"^(#{1,6})(?=\s)", re.MULTILINE)
# Files whose text is their own, line for line: no heading is put in (a code file's
# chunks say their lines, a CSV's first line is its header).
_OWN_TEXT = ("code", "text", "csv")
# The files named past this many are listed in the warning by count alone.
_NAMED = 10
# A file's own warnings carried into its archive's, at most (as a mailbox's messages'),
# and an archive's warnings at most, the rest of each counted: a zip of 10,000 files
# each with a replaced byte must not make 10,000.
_MEMBER_WARNINGS = 5
_WARNINGS = 50


@dataclass
class _Member:
    name: str  # as the archive gives it, for headings and warnings only
    size: int
    open: Callable[[], IO[bytes]]


def _shown(name: str) -> str:
    """A member's name fit for a heading: one line, no control characters, and text a
    store keeps (a tar's Latin-1 name came as lone surrogates: Chroma refused the write)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text_name(name)).strip() or "(unnamed)"


def _metadata(name: str) -> bool:
    """What an operating system leaves in archives it makes: dropped unmentioned."""
    path = PurePosixPath(name)
    return (
        "__MACOSX" in path.parts
        or path.name.lower() in _SKIPPED_NAMES
        or path.name.startswith("._")  # AppleDouble resource forks
    )


# What a zip's names are in when its UTF-8 flag is not set: the format's own code page
# first (ties go to it), then those Windows' Explorer writes in its other locales.
_NAME_CODECS = ("cp437", "cp932", "gb18030", "cp949", "big5", "cp866", "cp850", "cp1251")
_NAMES_SAMPLE = 200
_UTF8_NAME = 0x800  # the general-purpose flag bit that says a name is UTF-8
_UNICODE_PATH = 0x7075  # Info-ZIP's extra field of a name in UTF-8 (WinZip writes it)


def _unicode_path(info: zipfile.ZipInfo, raw: bytes) -> str | None:
    """The UTF-8 name Info-ZIP's extra field gives, if it is of this very name."""
    extra = info.extra
    while len(extra) >= 4:
        kind, size = int.from_bytes(extra[:2], "little"), int.from_bytes(extra[2:4], "little")
        data, extra = extra[4 : 4 + size], extra[4 + size :]
        if (
            kind == _UNICODE_PATH
            and len(data) > 5
            and data[0] == 1
            and int.from_bytes(data[1:5], "little") == zlib.crc32(raw)
        ):
            with contextlib.suppress(UnicodeDecodeError):
                return data[5:].decode("utf-8")
    return None


def _names_codec(raw: list[bytes]) -> str:
    """The code page a zip's names without its UTF-8 flag read best in: UTF-8 when they
    all decode as it (tools that write it without the flag), else the one whose reading
    of their stems a language would write (``misfit``), with fewest marks of a wrong
    reading (``_odd_in_names``); of those alike, the one ``decode_text`` would take,
    else the first in ``_NAME_CODECS`` (so a name or two of a few Korean or Big5
    characters may read as GBK)."""
    joined = b"\n".join(raw)
    with contextlib.suppress(UnicodeDecodeError):
        joined.decode("utf-8")
        return "utf-8"
    # Without extensions: "txt" beside a two-letter Japanese name made it a Latin text.
    stems = b"\n".join(_EXTENSION.sub(b"", r) for r in raw)
    scored = []
    for codec in _NAME_CODECS:
        with contextlib.suppress(UnicodeDecodeError):
            text = stems.decode(codec)
            scored.append((misfit(text) + _odd_in_names(text), codec, text))
    if not scored:
        return "cp437"
    least = min(odd for odd, _, _ in scored)
    tied = [(codec, text) for odd, codec, text in scored if odd == least]
    # A few characters are too few to tell languages apart ("报告" read best as Big5).
    if len(tied) > 1 and sum(b > 127 for b in stems) >= 8:
        with contextlib.suppress(DocumentError):
            guess = decode_text(stems, "names")[0]
            return next((codec for codec, text in tied if text == guess), tied[0][0])
    return tied[0][0]


_EXTENSION = re.compile(rb"\.[A-Za-z0-9]{1,5}$")


def _odd_in_names(text: str) -> int:
    """What a reading of file names has that names seldom do: symbols beyond ASCII (box
    drawing: Korean read as cp437), half-width katakana (Chinese read as cp932), and
    words of accented Latin letters only ("âüâé": Japanese read as cp437)."""
    odd = sum(
        not unicodedata.category(c).startswith(("L", "M", "N", "Z")) or "\uff61" <= c <= "\uff9f"
        for c in text
        if ord(c) > 127
    )
    return odd + sum(
        len(word) > 1 and not any(c.isascii() for c in word) and _script(word[0]) == "LATIN"
        for word in _WORD.findall(text)
    )


def _zip_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Each member's name as its maker wrote it. zipfile reads a name without the UTF-8
    flag as cp437, so a zip Windows made in Japanese, Chinese, Korean or Russian had
    names such as "ïcÄûÿ^.txt" for 議事録.txt; zipfile's own (its ``orig_filename``,
    which opening a member checks) are left as they are."""
    raw = [None if i.flag_bits & _UTF8_NAME else i.filename.encode("cp437") for i in infos]
    legacy = [r for r in raw if r is not None and not r.isascii()]
    # A sample decides: 5,000 names took 0.7 s, and each part of an archive read in
    # parts lists them again.
    codec = _names_codec(legacy[:_NAMES_SAMPLE]) if legacy else "cp437"
    return [
        info.filename
        if r is None
        # An ASCII name too: WinZip writes "??.txt" there for a name its code page lacks.
        else _unicode_path(info, r)
        or (info.filename if r.isascii() else r.decode(codec, "replace"))
        for info, r in zip(infos, raw, strict=True)
    ]


def _zip_members(archive: zipfile.ZipFile, name: str, max_ratio: float) -> Iterator[_Member]:
    infos = archive.infolist()
    for info, shown in zip(infos, _zip_names(infos), strict=True):
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > max_ratio:
            raise ZipBombError(f"{name}: member {shown!r} is compressed {ratio:.0f}:1")
        yield _Member(shown, info.file_size, functools.partial(archive.open, info))


def _extracted(archive: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    member = archive.extractfile(info)
    assert member is not None  # a regular file always has its bytes
    return member


def _tar_members(archive: tarfile.TarFile) -> Iterator[_Member]:
    for info in archive:
        if info.isreg():  # links, devices and directories are not files to read
            yield _Member(info.name, info.size, functools.partial(_extracted, archive, info))


def _is_zip(path: str) -> bool:
    # By the first bytes, not zipfile.is_zipfile: that finds the zip a tar holds.
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


@contextlib.contextmanager
def _members(path: str, name: str, max_ratio: float) -> Iterator[Iterator[_Member]]:
    """The files of a zip or (uncompressed) tar in order, OS metadata left out, listed
    lazily (a tar's as it is walked), the archive open meanwhile."""
    try:
        with zipfile.ZipFile(path) if _is_zip(path) else tarfile.open(path, "r:") as archive:
            if isinstance(archive, zipfile.ZipFile):
                listed = _zip_members(archive, name, max_ratio)
            else:
                listed = _tar_members(archive)
            yield (m for m in listed if not _metadata(m.name))
    except (tarfile.TarError, *ZIP_ERRORS) as exc:
        # NotImplementedError: zipfile's word for a version number it does not know
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc


def _demoted(text: str, levels: int) -> str:
    """``text`` with its Markdown headings ``levels`` down (at most ``######``), fenced
    code left as it is: under its file's heading, a file's own title would end it."""
    from rag_ingest.chunking import in_code_fence

    fenced = in_code_fence(text)

    def down(m: re.Match[str]) -> str:
        return m[0] if fenced(m.start()) else "#" * min(6, len(m[1]) + levels)

    return _HEADING.sub(down, text)


def member_segments(
    parsed: ParsedDocument, name: str | None, heading: str, levels: int
) -> list[Segment]:
    """A file's segments as a part of a larger document (an archive's file, an e-mail's
    attachment), marked with ``name`` (``Segment.member``; None: each keeps its own): a
    document's text under ``heading``, its own headings ``levels`` down; a code, text or
    CSV file's text its own, line for line (its chunks say their lines; a CSV's first
    line is its header)."""
    out = []
    for i, segment in enumerate(parsed.segments):
        text = segment.text
        if parsed.file_type not in _OWN_TEXT:
            text = _demoted(text, levels)
            text = f"{heading}\n\n{text}" if i == 0 else text
        member = segment.member if name is None else name
        out.append(dataclasses.replace(segment, text=text, member=member))
    return out


def read_attached(
    data: bytes,
    filename: str,
    read: Callable[[str, str], ParsedDocument],
    warnings: list[str],
    temp_dir: str | None,
    image: bool = False,
    what: str = "attachment",
) -> ParsedDocument | None:
    """A file attached to a document (an e-mail's attachment, a PDF's embedded file)
    written to a scratch name and parsed by ``read(path, filename)``; None when it holds
    no text, or when it fails, noted in ``warnings`` as ``what`` (but a blank file, or an
    ``image`` with no text, a logo or a photo, passed over in silence)."""
    if not data:
        return None
    with tempfile.TemporaryDirectory(prefix="rag-ingest-attached-", dir=temp_dir) as scratch:
        path = os.path.join(scratch, "attachment")  # never a path from the document
        with open(path, "wb") as f:
            f.write(data)
        try:
            parsed = read(path, filename)
        except DocumentError as exc:
            photo = image and isinstance(exc, NoTextFormatError)
            if not (photo or isinstance(exc, BlankDocumentError)):
                warnings.append(f"{what} {filename}: {type(exc).__name__}: {exc}")
            return None
    return parsed if parsed.text.strip() else None


def attach(
    segments: list[Segment],
    members: dict[str, tuple[str, str | None]],
    got: ParsedDocument,
    name: str,
    heading: str,
    warnings: list[str],
) -> None:
    """A file inside a document (an e-mail's attachment, a PDF's, an object embedded in a
    DOCX) put after the document's text: its segments under ``heading``, its own headings
    two levels down, marked with ``name``; its file type kept in ``members``, so that it
    is chunked as a file of that type; its warnings the document's, naming it (a scanned
    PDF attached to a mail had its unread pages unsaid, and was not read again once OCR
    was on)."""
    segments += member_segments(got, name, heading, 2)
    members[name] = member_kind(got)
    warnings += [w if w.startswith(name) else f"{name}: {w}" for w in got.warnings]


def member_kind(parsed: ParsedDocument) -> tuple[str, str | None]:
    """The file type and language a file inside is chunked by: its own, but an archive
    inside an e-mail by its Markdown (a file type of no chunking of its own)."""
    if parsed.file_type == "archive":
        return "markdown", None
    return parsed.file_type, parsed.language


@dataclass
class ArchivePlan:
    """An archive listed and checked, its files to read in parts on several workers."""

    path: str  # the archive to read: the document, or a compressed tar decompressed
    temporary: bool  # ``path`` is a decompressed copy, removed once the parts are read
    parser: str  # "zip" or "tar"
    members: int  # files, OS metadata left out
    wanted: list[int]  # the indexes of the files to read, in archive order
    sizes: list[int]  # and their sizes
    textless: list[str]  # the names of files with no text by name (never unpacked)
    secrets: list[str] = field(default_factory=list)  # those of files of secrets, unread
    warnings: list[str] = field(default_factory=list)
    nested: bool = False  # some file to read is named as an archive or a mailbox (read apart)
    names: list[str] = field(default_factory=list)  # of the files to read, as shown

    def cached(self, indexes: list[int], cache: dict[str, Any]) -> dict[str, Any]:
        """The member cache's entries (``load_member_cache``) of the files at ``indexes``."""
        names = dict(zip(self.wanted, self.names, strict=True))
        return {names[i]: cache[names[i]] for i in indexes if names[i] in cache}

    def parts(self, workers: int) -> list[list[int]]:
        """The files to read in contiguous parts of about equal size, at least one per
        worker, at most :data:`PART_FILES` files each unless that makes more than
        :data:`MAX_PARTS` parts."""
        files = len(self.wanted)
        count = min(MAX_PARTS, max(min(workers, files), -(-files // PART_FILES)))
        most = max(PART_FILES, -(-files // count))
        share = sum(self.sizes) / count
        parts: list[list[int]] = [[]]
        done = 0
        for index, size in zip(self.wanted, self.sizes, strict=True):
            if len(parts[-1]) == most or (parts[-1] and done >= share * len(parts)):
                parts.append([])
            parts[-1].append(index)
            done += size
        return parts


@dataclass
class Nested:
    """An archive inside an archive's part, left to be read in parts of its own."""

    shown: str  # its name
    name: str  # its file name, as the archive gives it
    path: str  # its bytes, kept until then
    sha256: str
    at: tuple[int, int, int]  # where it goes among the part's segments, warnings, unread


@dataclass
class ArchivePart:
    """What a part of an archive's files gave."""

    segments: list[Segment]
    warnings: list[str]
    unread: list[str]  # names of files a parser found no text in
    members: dict[str, tuple[str, str | None]]  # the files read: their type, language
    cached: dict[str, dict[str, Any]] = field(default_factory=dict)  # for the member cache
    unchanged: int = 0  # files taken from the member cache
    nested: list[Nested] = field(default_factory=list)  # archives inside, left unread
    failed: list[type[DocumentError]] = field(default_factory=list)  # why files were not read
    scanned: list[str] = field(default_factory=list)  # files with scans or pictures unread


def cache_fingerprint(options: ParseOptions) -> str:
    """What, besides a file's bytes, decides its parse: the parse settings and the
    versions of the parsers (a cache made under others is ignored)."""
    settings = dataclasses.replace(options, member_cache=None, temp_dir=None)
    packages = ("rag-ingest", "docling-slim", "docling", "pymupdf", "rapidocr", "trafilatura")
    material = repr(settings) + package_versions(packages)
    return hashlib.sha256(material.encode()).hexdigest()


def load_member_cache(options: ParseOptions) -> dict[str, dict[str, Any]]:
    """The member cache's files (name -> entry), or none when it is missing, unreadable
    or made under other settings."""
    if not options.member_cache:
        return {}
    try:
        with open(options.member_cache, "rb") as f:
            cache = _json_loads(f.read())
        if cache.get("fingerprint") != cache_fingerprint(options):
            return {}
        return dict(cache["members"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_member_cache(path: str, options: ParseOptions, members: dict[str, Any]) -> None:
    """Replace the member cache at ``path`` (atomically: a reader sees the old or the new)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    data = _json_dumps({"fingerprint": cache_fingerprint(options), "members": members})
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)


def _json_dumps(value: Any) -> bytes:
    """``value`` as JSON by orjson (json.dump took 31 ms for a 600-note zip's 2.2 MB
    cache, orjson 2.4 ms), or by json for a text orjson refuses (a lone surrogate)."""
    import orjson

    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value).encode()


def _json_loads(data: bytes) -> Any:
    """:func:`_json_dumps`'s JSON read back (by json when orjson refuses an escaped lone
    surrogate)."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def plan_archive(path: str, name: str, options: ParseOptions) -> ArchivePlan:
    """List the archive and check its limits; no file is unpacked."""
    with _members(path, name, options.max_zip_ratio) as listed:
        members = list(listed)
    images = options.reads_images
    textless = [i for i, m in enumerate(members) if no_text(m.name, images=images) is not None]
    prefix = options.member_prefix
    scans = [i for i in textless if options.ocr is None and needs_ocr(members[i].name)]
    skipped = set(textless)
    secrets = [i for i in textless if holds_secrets(members[i].name)]
    wanted = [i for i in range(len(members)) if i not in skipped]
    total = sum(members[i].size for i in wanted)
    if total > options.max_unzipped_size:
        raise ZipBombError(
            f"{name}: its {len(wanted)} files to read expand to {total} bytes, past "
            f"parse.max_unzipped_size ({options.max_unzipped_size})"
        )
    return ArchivePlan(
        path=path,
        temporary=False,
        parser="zip" if _is_zip(path) else "tar",
        members=len(members),
        wanted=wanted,
        sizes=[members[i].size for i in wanted],
        textless=[prefix + _shown(members[i].name) for i in textless if i not in secrets],
        secrets=[prefix + _shown(members[i].name) for i in secrets],
        names=[prefix + _shown(members[i].name) for i in wanted],
        nested=not prefix and any(_nested_name(members[i].name) for i in wanted),
        warnings=[f"{len(scans)} image(s) {UNREAD_SCANS}"] if scans else [],
    )


def _archive_name(name: str) -> bool:
    lower = name.lower()
    return PurePosixPath(inner_name(lower)).suffix in (".zip", ".tar") or lower.endswith(
        (".tgz", ".tbz", ".tbz2", ".txz")
    )


def _nested_name(name: str) -> bool:
    """Whether a file's name says it is read apart: an archive, or a mailbox (read in
    parts of its messages when long: a Takeout zip's one mailbox)."""
    return _archive_name(name) or PurePosixPath(name.lower()).suffix in (".mbox", ".mbx")


def archive_inside(path: str, name: str) -> str | None:
    """How a file is packed when it is a zip or tar archive: "" as it is, or the
    compression of a tar ("gzip", ...); None when it is not one (a zip named as a DOCX
    or an EPUB is that document)."""
    with open(path, "rb") as f:
        head = f.read(512)
    packed = compression_of(head)
    if packed is not None:
        return packed if head_inside(path, packed)[257:262] == b"ustar" else None
    if head[257:262] == b"ustar" or (head[:4] == b"PK\x03\x04" and maybe_archive(name)):
        return ""
    return None


def nested_options(options: ParseOptions, shown: str) -> ParseOptions:
    """The options an archive inside another is read with: its files named under its
    path, archives inside it not opened, no cache of its own (it is one entry of its
    archive's)."""
    return dataclasses.replace(options, max_images=0, member_prefix=f"{shown}/", member_cache=None)


def read_part(
    path: str,
    name: str,
    indexes: list[int],
    options: ParseOptions,
    keep: str | None = None,
    cached: dict[str, Any] | None = None,
) -> ArchivePart:
    """The files at ``indexes`` (from :attr:`ArchivePlan.wanted`) read by the parser
    each calls for; an archive among them read as well, unless this one is inside
    another. ``keep``: a directory to leave such archives (and mailboxes) in instead,
    each listed in :attr:`ArchivePart.nested`, to be read in parts of their own.
    ``cached``: their member cache's entries (:meth:`ArchivePlan.cached`), else the
    cache is read here."""
    from rag_ingest.parsers import parse_file

    # An archive's own mailbox messages are not its files' (``read`` gives a mailbox
    # inside its own, from its entry).
    inside = dataclasses.replace(options, archives=False, max_images=0, messages=None)

    def nested(scratch: str, name: str) -> bool:
        packed = None if options.member_prefix else archive_inside(scratch, name)
        if not packed:  # a zip may still be a DOCX or an EPUB by its content
            try:
                return packed == "" and detect(scratch, name).kind == "archive"
            except DocumentError:
                return False  # the parse says why
        return True

    def apart(scratch: str, name: str) -> bool:
        mailbox = not options.member_prefix and mailbox_kind(scratch, name) is not None
        return nested(scratch, name) or mailbox

    def read(scratch: str, name: str, shown: str, old: Any = None) -> ParsedDocument:
        # With ``keep``, every archive was left there already: nothing to check again.
        if not keep and nested(scratch, name):
            return parse_file(scratch, name, nested_options(options, shown))
        if options.member_cache is None:
            return parse_file(scratch, name, inside)
        # A mailbox's messages kept in its entry (``old``, the one before).
        kept = dataclasses.replace(inside, messages=message_entries(old, shown))
        return parse_file(scratch, name, kept)

    todo = set(indexes)
    with (
        _members(path, name, options.max_zip_ratio) as listed,
        tempfile.TemporaryDirectory(prefix="rag-ingest-archive-", dir=options.temp_dir) as tmp,
    ):
        chosen = (m for i, m in enumerate(listed) if i in todo)
        picked = itertools.islice(chosen, len(todo))  # a tar is walked no further
        return _read_members(
            picked,
            read,
            os.path.join(tmp, "file"),
            load_member_cache(options) if cached is None else cached,
            remember=options.member_cache is not None,
            prefix=options.member_prefix,
            defer=(lambda p, n: keep if apart(p, n) else None) if keep else None,
        )


def merge_parts(name: str, plan: ArchivePlan, parts: list[ArchivePart]) -> ParsedDocument:
    """One document of the parts' text, in archive order."""
    segments = [s for part in parts for s in part.segments]
    failed = [error for part in parts for error in part.failed]
    # Binary content under a text name (or none) is not damage: Java's
    # public_suffix_list.dat, a zip of 1,458 one-line binary files, had failed as corrupt.
    if not segments and failed and not set(failed) <= {BinaryContentError}:
        # Not a format with no text, skipped when listed: files that could not be read (a
        # damaged archive's CRC errors, every file password-protected) fail it, said.
        said = [w for part in parts for w in part.warnings][:3]
        error = EncryptedDocumentError if set(failed) == {EncryptedDocumentError} else None
        raise (error or CorruptDocumentError)(
            f"{name}: an archive of {plan.members} files, none read: {len(failed)} could not "
            f"be ({'; '.join(said)}{' ...' if len(failed) > len(said) else ''})"
        )
    if not segments:
        raise NoTextFormatError(f"{name}: an archive of {plan.members} files, none with text")
    # Files with no text skipped, as a walk skips them, a note: first of the notes. The
    # plan's own (decompressed from gzip) last, where parse_file puts them.
    names = plan.textless + [n for part in parts for n in part.unread]
    skipped = [skipped_note(len(names), plan.members, _named(names))] if names else []
    warnings = capped(
        [*skipped, *(w for part in parts for w in part.warnings), *plan.warnings], _WARNINGS
    )
    if scanned := [n for part in parts for n in part.scanned]:
        warnings.insert(
            0, f"scans or pictures in {len(scanned)} file(s) ({_named(scanned)}) {UNREAD_SCANS}"
        )
    # Files of secrets are worth a look, a font or an empty ``__init__.py`` is not: a
    # source tarball's 2,017 of them had made Django's sdist "with warnings".
    if plan.secrets:
        warnings.insert(
            0, f"{len(plan.secrets)} file(s) of secrets not read: {_named(plan.secrets)}"
        )
    members = {k: v for part in parts for k, v in part.members.items()}
    cache = {k: v for part in parts for k, v in part.cached.items()}
    return ParsedDocument(
        file_type="archive",
        segments=segments,
        parser=plan.parser,
        warnings=warnings,
        members=members,
        cache=cache,
        unchanged_members=sum(part.unchanged for part in parts),
        # The chunk plans the cache kept of its files (remembered: each file's, made now
        # or kept, goes to the next cache with its parse, see keep_plans).
        plans=kept_plans(cache) if cache else None,
    )


def kept_plans(cache: dict[str, Any]) -> dict[str, Any]:
    """The chunk plans a member cache's entries hold, by file: an archive inside keeps
    those of its files (named under its path), each other entry its own."""
    plans: dict[str, Any] = {}
    for name, entry in cache.items():
        kept = entry.get("chunks")
        if kept is None:
            continue
        if "members" not in entry:
            plans[name] = kept
        elif isinstance(kept, dict):
            plans.update(kept)
    return plans


def keep_plans(cache: dict[str, Any], plans: dict[str, Any]) -> None:
    """Put each file's chunk plan (:attr:`ChunkPlan.member_plans`) in its entry of the
    member cache, an archive inside's in its entry, for the next ingest."""
    for name, entry in cache.items():
        if "members" in entry:
            entry["chunks"] = {m: plans[m] for m in entry["members"] if m in plans}
        elif name in plans:
            entry["chunks"] = plans[name]


def _named(names: list[str]) -> str:
    """The first names of a list, and how many more."""
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return ", ".join(names[:_NAMED]) + more


def parse_archive(path: str, name: str, options: ParseOptions) -> ParsedDocument:
    """A zip or (uncompressed) tar archive read whole, in this process."""
    plan = plan_archive(path, name, options)
    return merge_parts(name, plan, [read_part(path, name, plan.wanted, options)])


def _copy(source: IO[bytes], scratch: str) -> str:
    """Write ``source`` to ``scratch``; the SHA-256 of its bytes."""
    digest = hashlib.sha256()
    with open(scratch, "wb") as out:
        while block := source.read(1 << 20):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _read_members(
    members: Iterable[_Member],
    read: Callable[[str, str, str], ParsedDocument],
    scratch: str,
    cached: dict[str, dict[str, Any]] | None = None,
    *,
    remember: bool = False,
    prefix: str = "",
    defer: Callable[[str, str], str | None] | None = None,
) -> ArchivePart:
    """The members' text as segments, the warnings, and the names of those with none.
    ``read(path, file name, shown name)`` parses one. A member whose bytes match its
    ``cached`` entry is taken from there, not parsed; with ``remember``, each member's
    entry is kept for the next cache. ``prefix``: the path of the archive inside an
    archive these are read from, put before each name. ``defer(path, file name)``: a
    directory to move a member to, unread (:attr:`ArchivePart.nested`), or None."""
    cached = cached or {}
    part = ArchivePart([], [], [], {})
    for member in members:
        shown = prefix + _shown(member.name)
        try:
            try:
                # zipfile and tarfile stop at the size the archive declares, which
                # the limit counted (a zip member that runs on fails its CRC check).
                with member.open() as source:
                    digest = _copy(source, scratch)
            except NotImplementedError as exc:  # a compression zipfile lacks (Deflate64)
                # A RuntimeError too: it had been reported as password-protected.
                raise UnsupportedFileTypeError(f"a member zipfile cannot unpack ({exc})") from exc
            except RuntimeError as exc:  # zipfile's word for an encrypted member
                raise EncryptedDocumentError(f"password-protected ({exc})") from exc
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
                raise CorruptDocumentError(f"a corrupt member ({exc})") from exc
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise  # a full disk, not a bad member
                # An offset the archive's directory gives that no file has.
                raise CorruptDocumentError(f"a corrupt member ({exc})") from exc
            old = cached.get(shown)
            entry: dict[str, Any] = old or {}
            file_name = PurePosixPath(member.name).name
            if _usable(entry, digest):
                part.unchanged += 1
            elif defer is not None and (keep_in := defer(scratch, file_name)) is not None:
                fd, path = tempfile.mkstemp(prefix="nested-", dir=keep_in)
                os.close(fd)
                os.replace(scratch, path)
                at = (len(part.segments), len(part.warnings), len(part.unread))
                part.nested.append(Nested(shown, file_name, path, digest, at))
                continue
            else:
                entry = carry_plans(old, _entry(digest, shown, read, scratch, member.name, old))
        except DocumentError as exc:
            part.warnings.append(f"{shown}: {type(exc).__name__}: {exc}")
            part.failed.append(type(exc))
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        if remember:
            part.cached[shown] = entry
        if entry.get("unread"):
            part.unread.append(shown)
            continue
        _take(part, shown, entry, (len(part.segments), len(part.warnings)))
    return part


def _take(part: ArchivePart, shown: str, entry: dict[str, Any], at: tuple[int, int]) -> None:
    """A member's entry (not one with no text) into the part, its segments and warnings
    at ``at``."""
    if "members" in entry:  # an archive inside: its files, each of its own type
        members, segments = entry_files(entry)
        part.members.update(members)
        if "messages" in entry:  # a mailbox's, kept as read: under its name, as parsed
            mailbox = ParsedDocument("mbox", segments, "mbox")
            segments = member_segments(mailbox, None, f"# {shown}", 1)
    else:
        part.members[shown] = (entry["kind"], entry["language"])
        segments = [
            Segment(text, page=page, ocr=ocr, member=shown, time=_time(time))
            for text, page, ocr, time in entry["segments"]
        ]
    # Scans or pictures left unread for want of OCR: the archive is read again once OCR
    # is on (a scanned PDF in a zip had been left unread for good, unsaid).
    warnings = entry.get("warnings", [])
    if any(UNREAD_SCANS in w for w in warnings):
        part.scanned.append(shown)
    part.warnings[at[1] : at[1]] = [w for w in warnings if UNREAD_SCANS not in w]
    part.segments[at[0] : at[0]] = segments


def entry_files(
    entry: dict[str, Any],
) -> tuple[dict[str, tuple[str, str | None]], list[Segment]]:
    """An entry of files of their own (:func:`files_usable`): their kinds, and its
    segments, each under its file's name."""
    members = {k: (v[0], v[1]) for k, v in entry["members"].items()}
    segments = [
        Segment(text, page=page, ocr=ocr, member=inner, time=_time(time))
        for text, page, ocr, inner, time in entry["segments"]
    ]
    return members, segments


def _time(time: Any) -> tuple[float, float] | None:
    """A segment's time as the member cache's JSON keeps it (a list), as a tuple."""
    return (float(time[0]), float(time[1])) if time else None


def _time_ok(time: Any) -> bool:
    return time is None or (
        isinstance(time, list)
        and len(time) == 2
        and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in time)
    )


def take_nested(
    part: ArchivePart,
    got: list[ParsedDocument | DocumentError],
    remember: bool,
    cached: dict[str, Any] | None = None,
) -> None:
    """The part's archives inside, read apart (a parse, or why not), put in their
    places; with ``remember``, kept for the member cache as they would be read here
    (``cached``: the cache's entries, whose chunk plans a changed one carries on)."""
    # From the last, so that the places of those before hold.
    for nested, parsed in reversed(list(zip(part.nested, got, strict=True))):
        segments, warned, unread = nested.at
        if isinstance(parsed, (NoTextFormatError, BlankDocumentError)):
            entry: dict[str, Any] = {"sha256": nested.sha256, "unread": True}
            part.unread.insert(unread, nested.shown)
        elif isinstance(parsed, DocumentError):
            why = f"{nested.shown}: {type(parsed).__name__}: {parsed}"
            part.warnings.insert(warned, why)
            part.failed.append(type(parsed))
            continue
        else:
            entry = _entry_of(nested.sha256, nested.shown, parsed)
            entry = carry_plans((cached or {}).get(nested.shown), entry)
            _take(part, nested.shown, entry, (segments, warned))
        if remember:
            part.cached[nested.shown] = entry
    part.nested = []


def carry_plans(old: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """A changed file's new entry with the chunk plans of its ``old`` one: each is used
    only for the same text under the same settings (``chunking.member_plan``'s key),
    so an archive or mailbox inside that changed chunks only its changed files or
    messages again, and a document saved again with the same text none (a plan of
    another shape than the new entry's is never used: no key matches it)."""
    if isinstance(old, dict) and "chunks" in old:
        entry["chunks"] = old["chunks"]
    return entry


def message_entries(entry: Any, shown: str) -> dict[str, Any]:
    """The messages of a mailbox inside an archive as its member-cache entry keeps them
    (``messages``; their text in its segments, under ``shown``, the mailbox's name), as
    ``mail.read_messages`` takes them: a mailbox that grew parses only its new messages.
    Empty for an entry with none; each is checked where it is used."""
    if not isinstance(entry, dict):
        return {}
    kept, members, segments = entry.get("messages"), entry.get("members"), entry.get("segments")
    if not (isinstance(kept, dict) and isinstance(members, dict) and isinstance(segments, list)):
        return {}
    out: dict[str, Any] = {}
    numbered: dict[str, tuple[str, dict[str, Any]]] = {}  # "message 3" -> its label, entry
    for digest, about in kept.items():
        if not isinstance(about, dict):
            continue
        if about.get("blank") is True:
            out[digest] = {"sha256": digest, "blank": True}
        elif isinstance(label := about.get("message"), str):
            got = {**about, "sha256": digest, "members": {}, "segments": []}
            numbered[label.split(":", 1)[0]] = (label, out.setdefault(digest, got))
    prefix = f"{shown}/"
    for segment in segments:
        if not (isinstance(segment, list) and len(segment) == 5 and isinstance(segment[3], str)):
            return {}
        name = segment[3].removeprefix(prefix)
        label, got = numbered.get(name.split(":", 1)[0], ("", {}))
        if label:  # numbers are a mailbox's own: "message 3" is one message
            got["segments"].append([*segment[:3], name, segment[4]])
            if segment[3] in members:
                got["members"][name] = members[segment[3]]
    return out


def _usable(entry: Any, digest: str) -> bool:
    """Whether a member-cache entry stands for these bytes, in a shape we wrote."""
    if not isinstance(entry, dict) or entry.get("sha256") != digest:
        return False
    if entry.get("unread") is True:
        return True
    segments = entry.get("segments")
    if "members" in entry:  # an archive inside
        return files_usable(entry)
    return (
        isinstance(entry.get("kind"), str)
        and _strings(entry.get("warnings", []))
        and isinstance(segments, list)
        and all(
            isinstance(s, list) and len(s) == 4 and isinstance(s[0], str) and _time_ok(s[3])
            for s in segments
        )
    )


def files_usable(entry: dict[str, Any]) -> bool:
    """Whether a member-cache entry of files of their own (an archive inside, a mail's
    attachments, a mailbox's messages) names their kinds, warnings and segments in the
    shapes written, each segment under one of its files."""
    members, segments = entry.get("members"), entry.get("segments")
    return (
        isinstance(members, dict)
        and all(isinstance(v, list) and len(v) == 2 for v in members.values())
        and _strings(entry.get("warnings"))
        and isinstance(segments, list)
        and all(
            isinstance(s, list)
            and len(s) == 5
            and isinstance(s[0], str)
            and s[3] in members
            and _time_ok(s[4])
            for s in segments
        )
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _entry(
    digest: str,
    shown: str,
    read: Callable[..., ParsedDocument],
    scratch: str,
    name: str,
    old: Any = None,
) -> dict[str, Any]:
    """A member parsed, as its member-cache entry (JSON): its kind, language and
    segments, or that it has no text; an archive inside, its files' kinds, its segments
    each with its file's name, and its warnings. ``old``: its entry before, whose
    messages a mailbox takes (:func:`message_entries`)."""
    try:
        parsed = read(scratch, PurePosixPath(name).name, shown, old)
    except (NoTextFormatError, BlankDocumentError):  # named with the others with no text
        return {"sha256": digest, "unread": True}
    return _entry_of(digest, shown, parsed)


def _entry_of(digest: str, shown: str, parsed: ParsedDocument) -> dict[str, Any]:
    named = [w if w.startswith(shown) else f"{shown}: {w}" for w in parsed.warnings]
    if parsed.file_type == "archive":  # its names already under ``shown``
        return {
            "sha256": digest,
            "members": {k: list(v) for k, v in parsed.members.items()},
            "segments": [[s.text, s.page, s.ocr, s.member, s.time] for s in parsed.segments],
            "warnings": named,
        }
    # A file's own (a page left unread, a replaced byte, an attachment that failed), as
    # a mailbox's messages' are: every one of scans unread, of the rest the first few,
    # and how many more.
    rest = capped((w for w in named if UNREAD_SCANS not in w), _MEMBER_WARNINGS, f"{shown}: ")
    warnings = [w for w in named if UNREAD_SCANS in w][:1] + rest
    kind, language = member_kind(parsed)
    # A mailbox's text kept as read, so that its messages' can be taken from it (see
    # message_entries); put under its name when taken (_take).
    mailbox = parsed.file_type == "mbox" and bool(parsed.cache)
    segments = parsed.segments if mailbox else member_segments(parsed, shown, f"# {shown}", 1)
    if parsed.members:
        # A mailbox's messages, an e-mail's attachments: each chunked apart, as a file of
        # its type, named under the file (a Takeout zip's mailbox had been chunked as one
        # text, its messages run together, none named).
        inner = [shown if s.member is None else f"{shown}/{s.member}" for s in parsed.segments]
        members = {f"{shown}/{k}": list(v) for k, v in parsed.members.items()}
        if shown in inner:
            members[shown] = [kind, language]
        entry = {
            "sha256": digest,
            "members": members,
            "segments": [
                [s.text, s.page, s.ocr, name, s.time]
                for s, name in zip(segments, inner, strict=True)
            ],
            "warnings": warnings,
        }
        if mailbox:
            # Each message's name and warnings by its bytes' SHA-256 (its text is in the
            # segments): a grown mailbox had been parsed again whole.
            entry["messages"] = {
                d: {"blank": True}
                if m.get("blank")
                else {k: m[k] for k in ("message", "warnings", "unread")}
                for d, m in parsed.cache.items()
            }
        return entry
    return {
        "sha256": digest,
        "kind": kind,
        "language": language,
        "segments": [[s.text, s.page, s.ocr, s.time] for s in segments],
        "warnings": warnings,
    }
