"""What a parser returns: text segments with their provenance."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from xml.etree import ElementTree

from rag_ingest import ocr
from rag_ingest.errors import CorruptDocumentError, MissingExtraError
from rag_ingest.ocr import OcrOptions
from rag_ingest.parsers.markdown_tables import without_empty_rows_and_columns

if TYPE_CHECKING:
    from rag_ingest.settings import ParseSettings

T = TypeVar("T")

__all__ = [
    "CONTENT_TYPES",
    "MARKDOWN_HEADING",
    "UNREAD_SCANS",
    "XML_ERRORS",
    "ZIP_ERRORS",
    "CsvForm",
    "Image",
    "ParseOptions",
    "ParsedDocument",
    "Segment",
    "after_text",
    "comment_line",
    "local_name",
    "part_types",
    "stored_copy",
    "lost_in_mending",
    "ocr_options",
    "package_versions",
    "recovered_xml",
    "spans",
    "streamed_xml",
    "without_model_packages",
    "qualified",
    "without_author",
    "xml_file_root",
]

# A Markdown ATX heading, as the parsers write them: its hashes (1) and its text (2).
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)

# Ends the warning of a parse that left scans, images or pictures unread for want of OCR.
# The pipeline keys on it (a warning survives every path: page ranges, archives, attached
# files, the member cache): such a document is read again once OCR is on.
UNREAD_SCANS = "not read: OCR is off, or its extra is not installed"


def text_name(name: str) -> str:
    """A file name as text a store keeps: a name that is not UTF-8 on disk (a latin-1
    name from an old share or archive) reaches Python as lone surrogates, which Chroma
    refuses at write time; its bytes are read as windows-1252 instead."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are no escaped bytes
        return name.encode("utf-8", "replace").decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


# How a file was read, not something wrong with it: an ingest's result keeps these apart
# from its warnings (``IngestResult.notes``), so that a tree of gzipped changelogs is not
# 1,600 sources "with warnings" burying the one whose chunks had a password masked. An
# archive's or a mail's carry its file's name first ("logs/app.log.gz: decompressed ...").
# A .msg of text is read as a name unknown is: Tcl's message catalogs, 140 of them in
# /usr/share/tcltk, had made as many sources "with warnings".
_NOTE = re.compile(
    r"(?:^|: )(?:(?:decompressed from \w+|(?:unknown extension .+?|no extension); "
    r"(?:treated as text|JSON records|an e-mail message by its headers)"
    r"|named \.msg but not an Outlook message: read as text"
    r"|Strict Open XML: read as its transitional form"
    r"|OpenOffice\.org 1\.x: read as the OpenDocument file it became)$"
    r"|\d+ of \d+ files with no text skipped: )"
)


def decompressed(packed: str) -> str:
    """The note of a file read from inside a gzip, bzip2, xz, zstd or LZMA file."""
    return f"decompressed from {packed}"


def skipped_note(count: int, members: int, named: str) -> str:
    """The note of an archive's files with no text (fonts, images, empty files), left
    out as a walk skips them."""
    return f"{count} of {members} files with no text skipped: {named}"


def is_note(warning: str) -> bool:
    """Whether a parse's warning only says how the file was read (see ``_NOTE``)."""
    return _NOTE.search(warning) is not None


def capped(warnings: Iterable[str], most: int, shown: str = "") -> list[str]:
    """``warnings`` with what went wrong before how a file was read (notes), at most
    ``most``, the last then counting the rest: "``shown``and 12 more warnings"."""
    told = sorted(warnings, key=is_note)
    if len(told) > most:
        told[most - 1 :] = [f"{shown}and {len(told) - most + 1} more warnings"]
    return told


def split_notes(warnings: Iterable[str]) -> tuple[list[str], list[str]]:
    """A parse's warnings as (warnings, notes), each in its order."""
    told: tuple[list[str], list[str]] = ([], [])
    for warning in warnings:
        told[is_note(warning)].append(warning)
    return told


# What expat raises on a damaged XML part: not well-formed, or an encoding its
# declaration names that it cannot use ("UTF-9" in a fuzzed ODG's content.xml had
# failed untyped: LookupError; a multi-byte one is a ValueError).
XML_ERRORS = (ElementTree.ParseError, LookupError, ValueError)


def recovered_xml(data: bytes, name: str, error: Exception, part: str = "") -> tuple[bytes, str]:
    """``data``, XML that is not well formed (``error`` says why), as lxml's recovering
    parser reads it, written out again well formed; and the warning that says so. Word
    and LibreOffice open such a file, mended, and so does a reader of the XML formats
    here: a DocBook page with a raw ``<hr>`` in it, a DOCX a generator wrote ``<w:i/ >``
    into, an export cut short, had failed whole. Raises :class:`CorruptDocumentError`
    (naming ``error``) when nothing of it can be read."""
    from lxml import etree

    # The internal entities a DTD defines are expanded, as expat does; no external one.
    parser = etree.XMLParser(recover=True, resolve_entities="internal", no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.LxmlError:
        root = None
    mended = b""
    if root is not None:
        mended = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
        try:  # as its readers will parse it: a prefix whose declaration was lost is unbound
            ElementTree.fromstring(mended)
        except XML_ERRORS:
            mended = _prefixes_declared(mended)
    if not mended:
        what = f"{part} is not" if part else "not"
        raise CorruptDocumentError(f"{name}: {what} well-formed XML ({error})") from error
    return mended, _mended(part, error)


# The prefixes a document's tags and attributes use, and those it declares.
_USED_PREFIX = re.compile(
    rb"<\/?([A-Za-z_][\w.-]*):[A-Za-z_]|\s([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*\s*="
)
_DECLARED_PREFIX = re.compile(rb"\sxmlns:([A-Za-z_][\w.-]*)\s*=")
_ROOT_TAG = re.compile(rb"^(<\?xml[^>]*\?>\s*<[A-Za-z_][\w.:-]*)")


def _prefixes_declared(mended: bytes) -> bytes:
    """``mended`` with each prefix it uses and never declares declared on its root, in a
    namespace of its own (LibreOffice's hand-written test documents use ``loext:`` so;
    LibreOffice opens them): b"" when expat cannot read it even so."""
    used = {a or b for a, b in _USED_PREFIX.findall(mended)}
    undeclared = sorted(used - set(_DECLARED_PREFIX.findall(mended)) - {b"xml", b"xmlns"})
    if not undeclared:
        return b""
    declared = b"".join(b' xmlns:%s="urn:rag-ingest:undeclared:%s"' % (p, p) for p in undeclared)
    mended = _ROOT_TAG.sub(lambda m: m[1] + declared, mended, count=1)
    try:
        ElementTree.fromstring(mended)
    except XML_ERRORS:
        return b""
    return mended


def streamed_xml(
    path: str, name: str, read: Callable[[Iterator[tuple[str, Any]]], T]
) -> tuple[T, list[str]]:
    """``read`` of the file's start and end events, and the warnings; a file that turns
    out not to be well formed read again, from the start, as lxml's recovering parser
    streams it (see :func:`recovered_xml`), never held whole."""
    events: tuple[Literal["start"], Literal["end"]] = ("start", "end")
    try:
        return read(ElementTree.iterparse(path, events=events)), []
    except XML_ERRORS as exc:
        error = exc
    from lxml import etree

    try:
        mended = etree.iterparse(
            path, events=events, recover=True, resolve_entities="internal", no_network=True
        )
        return read(mended), [_mended("", error)]
    except etree.LxmlError:
        raise CorruptDocumentError(f"{name}: not well-formed XML ({error})") from error


_MENDED = ": read as a recovering parser mends it, what is broken left out"


def _mended(part: str, error: Exception) -> str:
    return f"{part + ' is ' if part else ''}not well-formed XML ({error}){_MENDED}"


def lost_in_mending(name: str, warnings: list[str]) -> CorruptDocumentError | None:
    """The error for a file mended (see :func:`recovered_xml`) into nothing to index: what
    it lacks was lost where it is broken (a file cut short), not left blank; else None."""
    mended = next((w for w in warnings if w.endswith(_MENDED)), None)
    if mended is None:
        return None
    return CorruptDocumentError(f"{name}: {mended.removesuffix(_MENDED)}: nothing left once mended")


def xml_file_root(path: str, name: str, warnings: list[str]) -> ElementTree.Element:
    """A small XML file's root element; one that is not well formed mended (see
    :func:`recovered_xml`), said in ``warnings``."""
    try:
        return ElementTree.parse(path).getroot()
    except XML_ERRORS as exc:
        with open(path, "rb") as f:
            data, warning = recovered_xml(f.read(), name, exc)
    warnings.append(warning)
    return ElementTree.fromstring(data)


# The file types MuPDF reads laid out in pages: each parsed as a PDF is (parsers/pdf.py),
# its pages joined as a PDF's are (a word hyphenated or a sentence run on across them).
MUPDF_KINDS = ("pdf", "xps", "mobi")
# What reading a damaged zip-based document's parts raises: its directory, a part's data
# (zlib, cut short), or a part's compression method damaged into one zipfile lacks
# (NotImplementedError, found by fuzzing an ODT: it had escaped untyped).
# UnicodeDecodeError: a member's name flagged UTF-8 that is not (oss-fuzz's ofz4825-1.docx,
# in LibreOffice's tests, had failed untyped).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, UnicodeDecodeError)
# A compound (OLE) file's first bytes: Office 97-2003 documents, encrypted OOXML, .msg.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


# How much of the text a comment marks is quoted with it.
_QUOTED = 80


def comment_line(said: str, who: str, marked: str, text: str) -> str:
    """A comment's line: ``Comment (Ann) on "the text it marks": text``, the marked text
    on one line and cut at :data:`_QUOTED` characters; no author or marked text, no
    part for it."""
    who, marked = " ".join(who.split()), " ".join(marked.split())
    if len(marked) > _QUOTED:
        marked = marked[: _QUOTED - 1].rstrip() + "\u2026"
    by = f" ({who})" if who else ""
    on = f' on "{marked}"' if marked else ""
    return f"{said}{by}{on}: {text}"


def stored_copy(
    archive: zipfile.ZipFile, changed: dict[str, bytes], left_out: Iterable[str] = ()
) -> bytes:
    """The package ``archive`` holds written again: its parts ``changed`` replaced, those
    ``left_out`` dropped, stored (read once, at once: not worth compressing)."""
    dropped = set(left_out)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for info in archive.infolist():
            if info.filename in dropped:
                continue
            member = changed.get(info.filename)
            member = archive.read(info) if member is None else member
            info.compress_type = zipfile.ZIP_STORED
            copy.writestr(info, member)
    return out.getvalue()


# An OOXML package's [Content_Types].xml namespace.
CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def part_types(root: Any) -> Callable[[str], str | None]:
    """A part's content type (``word/document.xml``) by a package's ``[Content_Types].xml``
    (its parsed root, lxml's or ElementTree's): its own Override, else the Default for its
    extension; None when neither names one."""
    defaults = {
        e.get("Extension", "").lower(): e.get("ContentType", "")
        for e in root.iter(f"{CONTENT_TYPES}Default")
    }
    overrides = {
        e.get("PartName", "").lower(): e.get("ContentType", "")
        for e in root.iter(f"{CONTENT_TYPES}Override")
    }

    def typed(part: str) -> str | None:
        extension = part.rpartition("/")[2].rpartition(".")[2].lower()
        return overrides.get(f"/{part}".lower(), defaults.get(extension))

    return typed


def without_author(text: str, author: str) -> str:
    """An Excel note's text without the author's name Excel starts it with ("Ann:"), as
    an XLSX's and an ``.xls``'s notes are written."""
    if author and text.startswith(f"{author}:"):
        return text[len(author) + 1 :].strip()
    return text


def after_text(text: str, lines: list[str], heading: str = "Comments:") -> str:
    """``text`` with ``lines`` listed after it under ``heading``: a document's comments
    (see :func:`comment_line`; inline, they would break its sentences), a PDF page's
    filled form fields; the list alone for a text of none."""
    if not lines:
        return text
    listed = f"{heading}\n" + "\n".join(f"- {line}" for line in lines)
    return f"{text.rstrip()}\n\n{listed}" if text.strip() else listed


def markdown_table(grid: list[list[str]]) -> str:
    """Rows of cells (escaped already) as a Markdown table, its first row the header,
    short rows padded, empty rows and columns left out; "" for none."""
    if not grid:
        return ""
    width = max(len(cells) for cells in grid)
    lines = []
    for n, cells in enumerate(grid):
        lines.append("| " + " | ".join(cells + [""] * (width - len(cells))) + " |")
        if n == 0:
            lines.append("|" + "---|" * width)
    return without_empty_rows_and_columns("\n".join(lines))


def local_name(tag: str) -> str:
    """An XML tag's or attribute's name without its namespace (``{http://...}entry``)."""
    return tag.rsplit("}", 1)[-1]


def qualified(namespaces: dict[str, str], name: str) -> str:
    """A prefixed name (``text:p``) as ElementTree names it (``{urn:...:text:1.0}p``),
    its prefix looked up in ``namespaces``."""
    prefix, _, local = name.partition(":")
    return f"{{{namespaces[prefix]}}}{local}"


@dataclass
class Segment:
    """A run of text from one place in a document (a page, a slide, a sheet, a file)."""

    text: str
    page: int | None = None  # 1-based page or slide number where the format has pages
    ocr: bool = False  # read from an image of the page by OCR
    member: str | None = None  # the file inside an archive, or the attachment, it is of
    time: tuple[float, float] | None = None  # seconds into a recording (a transcript's)


@dataclass(frozen=True)
class CsvForm:
    """How a CSV's records are read, worked out once from the whole file's start
    (``chunking.csv_form``), so runs of its rows chunked apart read them alike."""

    dialect: dict[str, Any]  # csv.reader's keywords
    header: list[str]  # over every chunk's rows ([]: none, the first record is data)
    head: int  # where the header starts in the text at hand (a preamble before it)
    body: int  # where the rows start in the text at hand
    line: int  # the lines before that text in the file (for warnings' line numbers)


@dataclass
class Image:
    """An image found in a document, to be described by a multimodal model."""

    data: bytes
    mime: str  # image/png, image/jpeg, ...
    page: int | None = None


@dataclass
class ParsedDocument:
    """The parse of one file, ready for chunking."""

    # pdf, docx, pptx, xlsx, xls, xlsb, ods, spreadsheetml, gnumeric, wordml, docbook, mallard,
    # odt, odp, epub, html, markdown, notebook, email, csv, json, yaml, rtf, text, code, image,
    # archive, man
    file_type: str
    segments: list[Segment]
    parser: str
    language: str | None = None  # programming language for code
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    # Pages (or an image's frames, or pictures), 1-based, still to be read by OCR
    # (parsers/scans.py).
    scans: list[int] = field(default_factory=list)
    # A PDF's pages (1-based) that look scanned, read by OCR or not: their own text (a
    # stamp) is never taken for all a page holds (pdf.drop_running_lines).
    scanned: list[int] = field(default_factory=list)
    # The pictures inside an office document to read by OCR (PNG, JPEG, ...), numbered
    # from 1 by ``scans``; the text holds a marker where each sits (parsers/scans.py).
    pictures: list[bytes] = field(default_factory=list)
    # An archive's files (``Segment.member``) -> their own (file type, language), each
    # chunked as a file of its type (parsers/archive.py).
    members: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # An archive's files as parsed, for its member cache (ParseOptions.member_cache), and
    # how many of them were taken from that cache unchanged.
    cache: dict[str, Any] = field(default_factory=dict)
    unchanged_members: int = 0
    # With a member cache, its files' chunk plans as kept there (name -> plan), each
    # reused for a file whose text and chunk settings it was made from
    # (chunking.member_plan); None: no member cache, no plans to keep.
    plans: dict[str, Any] | None = None
    # A run of a long CSV's rows: the whole file's dialect and header (chunking.line_runs).
    csv_form: CsvForm | None = None
    # A run of a long SQL dump: the whole file's tables' column lists (rag_ingest.sql).
    sql_columns: dict[str, str] | None = None
    # A run of a long Markdown text or markup: the headings (level, title) over its start.
    headings_above: list[tuple[int, str]] | None = None
    # A run of a long reStructuredText, LaTeX, AsciiDoc or Org text: its section titles
    # (start, level, title) as the whole text's levels them (a reStructuredText title's
    # level is set by the titles before it, out of the run's sight).
    titles: list[tuple[int, int, str]] | None = None

    @property
    def text(self) -> str:
        """The text the chunker reads (chunks' ``start_index``/``end_index`` point into it)."""
        from rag_ingest.chunking import document_text

        return document_text(self)


@dataclass(frozen=True)
class ParseOptions:
    """Everything a worker process needs to parse (picklable, no settings object)."""

    pdf_mode: str = "tables"
    pdf_drop_running_lines: bool = True
    # Whether the files attached to a PDF, or embedded in an Office document, are read
    # after its own text (False inside one).
    attachments: bool = True
    max_unzipped_size: int = 512 * 1024 * 1024
    max_zip_ratio: float = 200.0
    xlsx_stream_size: int = 4 * 1024 * 1024
    markup_fast_size: int = 4 * 1024 * 1024
    markdown_fast_size: int = 256 * 1024
    # "guess": a web page's boilerplate as trafilatura judges it is left out too.
    html_chrome: str = "markup"
    # Extension (".ext") -> "module:function" parsers, importable in the worker.
    plugins: tuple[tuple[str, str], ...] = ()
    # Images to extract per document for description (0: none); smaller ones are skipped.
    max_images: int = 0
    min_image_bytes: int = 2048
    # Where a compressed file is decompressed to be parsed; None: the system temp dir.
    temp_dir: str | None = None
    # How scans are read; None: they are not (OCR off, or its extra not installed).
    ocr: OcrOptions | None = None
    # Whether a zip or tar archive is opened (False two levels inside one).
    archives: bool = True
    # The path of the archive inside an archive being read (``inner.zip/``): its files
    # are named under it, and archives inside it are not opened. Not in the repr, which
    # the member cache's fingerprint is made from: it is "" wherever that is made.
    member_prefix: str = field(default="", repr=False)
    # A JSON file of this archive's files as last parsed, by content hash (see
    # parsers/archive.py): a file with the same bytes is not parsed again.
    member_cache: str | None = None
    # A mailbox inside an archive read with a member cache: its messages as that cache
    # last kept them (``read_messages``' entries, by SHA-256; empty: none yet), and that
    # they are to be kept again; None: not. Neither in the repr nor compared.
    messages: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def reads_images(self) -> bool:
        """Whether image files are read (by OCR) rather than skipped as having no text."""
        return self.ocr is not None and self.ocr.images

    @property
    def reads_pictures(self) -> bool:
        """Whether the pictures inside office documents are read by OCR."""
        return self.ocr is not None and self.ocr.pictures

    @classmethod
    def of(cls, settings: ParseSettings, **extra: Any) -> ParseOptions:
        """What ``settings.parse`` sets, plus ``extra`` (plugins, images) from the caller."""
        return cls(
            ocr=ocr_options(settings),
            pdf_mode=settings.pdf_mode,
            pdf_drop_running_lines=settings.pdf_drop_running_lines,
            attachments=settings.attachments,
            max_unzipped_size=settings.max_unzipped_size,
            max_zip_ratio=settings.max_zip_ratio,
            xlsx_stream_size=settings.xlsx_stream_size,
            markup_fast_size=settings.markup_fast_size,
            markdown_fast_size=settings.markdown_fast_size,
            html_chrome=_html_chrome(settings),
            **extra,
        )


def _html_chrome(settings: ParseSettings) -> str:
    """``settings.html_chrome``, checked: "guess" needs trafilatura, found here rather
    than in a worker, document by document."""
    import importlib.util

    if settings.html_chrome == "guess" and importlib.util.find_spec("trafilatura") is None:
        raise MissingExtraError('parse.html_chrome="guess" (trafilatura)', "web")
    return settings.html_chrome


def ocr_options(settings: ParseSettings) -> OcrOptions | None:
    """How ``settings`` reads scans here, or None when it does not: OCR "off", or "auto"
    without the extra. "on" without it raises :class:`MissingExtraError`."""
    if settings.ocr == "off":
        return None
    if not ocr.available():
        if settings.ocr == "on":
            raise MissingExtraError("parse.ocr='on' (reading scans)", "ocr")
        return None
    cores = os.cpu_count() or 1
    # Workers share the cores: one recognition thread each unless there are spare cores.
    threads = max(1, cores // (settings.workers or cores))
    return OcrOptions(
        dpi=settings.ocr_dpi,
        threads=threads,
        images=settings.ocr_images,
        pictures=settings.ocr_pictures,
    )


@functools.cache
def package_versions(packages: tuple[str, ...]) -> str:
    """``|name=version`` for each installed package ("" for one not installed), for a
    cache's fingerprint; looked up once a process (each lookup scans ``sys.path``)."""
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return ""

    return "".join(f"|{p}={version(p)}" for p in packages)


def spans(numbers: Iterable[int | None]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    runs: list[list[int]] = []
    for n in (n for n in numbers if n is not None):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


# Parsing runs no model, but docling's format backends import torch and transformers
# when they are installed (as the minilm extra installs them), only to probe for an
# Apple GPU and to name a type, each behind an ImportError fallback. Measured here
# (docling-slim 2.143, torch 2.13): the parser imports took 2.86 s and +413 MB RSS per
# worker with them, 1.25 s and +216 MB without.
_MODEL_PACKAGES = ("torch", "transformers")
# Set in the parser pool's worker processes only, where nothing else runs while a parser
# imports. In the caller's process another thread (an embedder loading) may need them.
hide_model_packages = False


@contextlib.contextmanager
def without_model_packages() -> Iterator[None]:
    """In a parser worker, make ``import torch`` / ``import transformers`` fail inside
    the block only; elsewhere, do nothing."""
    hidden = (
        [name for name in _MODEL_PACKAGES if name not in sys.modules] if hide_model_packages else []
    )
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]  # a plugin may still import them later
