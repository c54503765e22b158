"""Parsers by file type (tier 2), and the isolated pool they run in.

``parse_file`` is the one entry point, run in a worker process (or a thread):
it detects the type by content and name, then dispatches to the PDF, office
(docling) or text/code parser, or to a plugin registered by extension.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import importlib
import re
import struct
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from rag_ingest.errors import (
    BinaryContentError,
    BlankDocumentError,
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextFormatError,
    UnsupportedFileTypeError,
)
from rag_ingest.parsers.base import (
    MUPDF_KINDS,
    UNREAD_SCANS,
    ZIP_ERRORS,
    ParsedDocument,
    ParseOptions,
    Segment,
    decompressed,
    lost_in_mending,
)
from rag_ingest.parsers.compressed import compression, unpacked
from rag_ingest.parsers.decrypt import DEFAULT_PASSWORD_NOTE, default_password_copy
from rag_ingest.parsers.flat import FLAT_KINDS, packaged
from rag_ingest.parsers.sniff import (
    CODE_LANGUAGES,
    JSON_SUFFIXES,
    TABLE_KINDS,
    FileKind,
    compressed_name,
    detect,
    needs_ocr,
    no_text,
)
from rag_ingest.parsers.strict import STRICT_NOTE, is_strict, transitional
from rag_ingest.parsers.sun_xml import SUN_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from rag_ingest.parsers.mail import MailboxPart
    from rag_ingest.parsers.pdf import ReadAttached

__all__ = [
    "CODE_LANGUAGES",
    "attachment_reader",
    "FileKind",
    "ParseOptions",
    "ParsedDocument",
    "Segment",
    "detect",
    "parse_file",
]


# NUL too: a file of NUL bytes is space allocated and never written (a log when its
# machine stopped), as text.py takes a long run of them within text for padding.
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c\x00]")


def _blank(path: str) -> str | None:
    """What a file of nothing but whitespace and NUL bytes (after a UTF-8 BOM) holds, as
    its skip says it; None for any other. Stops at the first byte that is neither."""
    nul = False
    with open(path, "rb") as f:
        block = f.read(1 << 16).removeprefix(codecs.BOM_UTF8)
        while block:
            if _NOT_BLANK.search(block):
                return None
            nul = nul or b"\x00" in block
            block = f.read(1 << 20)
    return "NUL bytes only, never written" if nul else "whitespace only"


# Documents whose pictures OCR reads (a scan pasted into a report, a slide's screenshot).
_PICTURED = frozenset({"docx", "pptx", "xlsx", "odt", "odp", "epub"})


# How many messages down an attached message's attachments are read (a mail forwarded
# as an attachment, itself holding one): past it they are listed, and said to be.
_ATTACHED_DEPTH = 3
# Text files read for records first (parsers.records): JSON, JSON Lines, YAML, XML.
_RECORDS = JSON_SUFFIXES | {".jsonl", ".ndjson", ".yaml", ".yml", ".xml", ".rss", ".atom"}


def records_first(path: str, name: str, kind: FileKind) -> bool:
    """Whether a text file is looked at for records (JSON, YAML, XML) before as text."""
    suffix = PurePosixPath(name).suffix.lower()
    return kind.kind == "text" and (suffix in _RECORDS or (kind.guessed and _json_start(path)))


def _json_start(path: str) -> bool:
    """Whether a file's text begins as JSON does (an object or a list)."""
    with open(path, "rb") as f:
        head = f.read(1024).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith((b"{", b"["))


def _plugin(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def attachment_reader(options: ParseOptions) -> ReadAttached | None:
    """How the files attached to a PDF, or embedded in an Office document, are read: each
    as a file of its own type, without pictures to describe, its own attachments not
    read; None when they are not read (``options.attachments``). One whose name says it
    holds no text is not opened."""
    if not options.attachments:
        return None
    inner = dataclasses.replace(options, attachments=False, max_images=0)

    def read(data: bytes, filename: str, warnings: list[str]) -> ParsedDocument | None:
        if (what := no_text(filename, images=options.reads_images)) is not None:
            if options.ocr is None and needs_ocr(filename):
                warnings.append(f"attachment {filename}: an image, {UNREAD_SCANS}")
            else:
                warnings.append(f"attachment {filename}: not read: {what}")
            return None
        from rag_ingest.parsers.archive import read_attached

        image = no_text(filename) is not None  # only OCR reads it: a photo has no text
        return read_attached(
            data, filename, lambda p, n: parse_file(p, n, inner), warnings, options.temp_dir, image
        )

    return read


def part_reader(options: ParseOptions) -> ReadAttached:
    """How a file that is part of a document's text is read (a DOCX's alt chunk: an HTML
    page or another DOCX shown where it stands): as a file of its own type, its pictures
    not described."""
    inner = dataclasses.replace(options, max_images=0)

    def read(data: bytes, filename: str, warnings: list[str]) -> ParsedDocument | None:
        from rag_ingest.parsers.archive import read_attached

        return read_attached(
            data,
            filename,
            lambda p, n: parse_file(p, n, inner),
            warnings,
            options.temp_dir,
            what="alt chunk",
        )

    return read


def _and_embedded(
    parse: Callable[[], ParsedDocument], path: str, name: str, kind: str, options: ParseOptions
) -> ParsedDocument:
    """``parse()``'s document with the objects embedded in it read after its text; one
    of no text of its own read for its objects (a slide holding a spreadsheet)."""
    try:
        parsed = parse()
    except (EmptyDocumentError, BlankDocumentError):
        parsed = _embedded(path, name, kind, options, None)
        if not parsed.segments:
            raise
        return parsed
    return _embedded(path, name, kind, options, parsed)


def _embedded(
    path: str, name: str, kind: str, options: ParseOptions, parsed: ParsedDocument | None
) -> ParsedDocument:
    """``parsed`` (or, None, a document of no text of its own) with the objects embedded
    in it read after its text (see parsers/embedded.py), each under ``## Embedded: name``
    (on a slide: ``## Embedded on slide 3: name``)."""
    from rag_ingest.parsers.embedded import EMBEDDING_KINDS, embedded_files

    parsed = parsed or ParsedDocument(kind, [], parser=f"docling-{kind}")
    read = attachment_reader(options)
    if read is None or kind not in EMBEDDING_KINDS:
        return parsed
    from rag_ingest.parsers.archive import attach

    try:
        for filename, data, slide in embedded_files(path, kind, options.max_unzipped_size):
            got = read(data, filename, parsed.warnings)
            if got is not None:
                where = f" on slide {slide}" if slide else ""
                heading = f"## Embedded{where}: {filename}"
                attach(parsed.segments, parsed.members, got, filename, heading, parsed.warnings)
    except (OSError, KeyError, ValueError, IndexError, struct.error, *ZIP_ERRORS) as exc:
        parsed.warnings.append(f"{name}: its embedded objects could not be read ({exc})")
    return parsed


def message_reader(options: ParseOptions) -> Callable[..., ParsedDocument]:
    """How an e-mail is read, ``read_message(path, name, message=None)`` (``message``:
    already read, instead of ``path``), its attachments read too."""
    from rag_ingest.parsers.mail import parse_email
    from rag_ingest.parsers.outlook import msg_to_email

    def reader(depth: int) -> Callable[[str, str], ParsedDocument]:
        """How a message's attachments are read, ``depth`` messages down: an attached
        e-mail's own attachments too (a forward of a mail with a PDF attached: its
        PDF had been listed, not read), to :data:`_ATTACHED_DEPTH` messages."""

        def read_attachment(path: str, name: str) -> ParsedDocument:
            # A gzipped log or CSV export is parse_file's to unpack: detect() alone took
            # it for a damaged file ("a gzip archive that cannot be read").
            packed = compression(path) is not None
            attached = None if packed else detect(path, name, images=options.reads_images).kind
            if attached not in ("email", "msg"):
                return parse_file(path, name, dataclasses.replace(options, max_images=0))
            deeper = depth < _ATTACHED_DEPTH
            return parse_email(
                path,
                name,
                message=msg_to_email(path, name) if attached == "msg" else None,
                read_attachment=reader(depth + 1) if deeper else None,
                read_images=options.reads_images,
                unread_images=options.ocr is None,
                temp_dir=options.temp_dir,
                unread_said=not deeper,
            )

        return read_attachment

    read_attachment = reader(1)

    def read_message(path: str, name: str, message: Any = None) -> ParsedDocument:
        return parse_email(
            path,
            name,
            message=message,
            max_images=options.max_images,
            min_image_bytes=options.min_image_bytes,
            read_attachment=read_attachment,
            read_images=options.reads_images,
            unread_images=options.ocr is None,
            temp_dir=options.temp_dir,
        )

    return read_message


def parse_messages(
    path: str,
    name: str,
    options: ParseOptions,
    spans: list[tuple[int, int]],
    first: int,
    cached: dict[str, Any] | None = None,
) -> MailboxPart:
    """Some of a mailbox's messages, by where they lie in it (``first``: the first's
    number), read as :func:`parse_file` reads the whole (a long mailbox is read in parts
    on every worker: parsers.pool). ``cached``: their member cache's entries."""
    from rag_ingest.parsers.mail import read_messages

    reader = message_reader(options)
    remember = options.member_cache is not None or options.messages is not None
    return read_messages(path, name, reader, spans, first, options.max_images, cached, remember)


def parse_file(
    path: str, name: str, options: ParseOptions, defer_scans: bool = False
) -> ParsedDocument:
    """Parse one local file; raise a :class:`DocumentError` subclass when it cannot be.

    Scanned pages are read by OCR here, unless ``defer_scans``: then they are left
    listed in ``scans`` for the parser pool to read in batches (see parsers/scans.py)."""
    blank = _blank(path)
    if blank:
        raise BlankDocumentError(f"{name}: blank ({blank}): nothing to index")
    suffix = PurePosixPath(name).suffix.lower()
    for extension, spec in options.plugins:
        if extension == suffix:
            result: ParsedDocument = _plugin(spec)(path, name, options)
            return result
    packed = compression(path)
    if packed is not None:
        with unpacked(path, name, packed, options.max_unzipped_size, options.temp_dir) as inner:
            parsed = parse_file(*inner, options)
        parsed.warnings.append(decompressed(packed))
        return parsed
    try:
        kind = detect(path, name, images=options.reads_images)
        if kind.kind in ("docx", "pptx", "xlsx") and is_strict(path):
            return _strict(path, name, kind, options, defer_scans)
        if kind.kind in SUN_KINDS:
            return _sun(path, name, kind, options, defer_scans)
        if kind.kind in FLAT_KINDS:
            mended: list[str] = []
            with packaged(path, name, kind.kind, options.temp_dir, mended) as package:
                package_kind = FileKind(FLAT_KINDS[kind.kind], note=kind.note)
                try:
                    parsed = _parse_kind(package, name, package_kind, options, defer_scans)
                except (BlankDocumentError, EmptyDocumentError, CorruptDocumentError) as exc:
                    if (lost := lost_in_mending(name, mended)) is None:
                        raise
                    raise lost from exc
            parsed.warnings += mended
            return parsed
        return _parse_kind(path, name, kind, options, defer_scans)
    except EncryptedDocumentError:
        with default_password_copy(path, name, options.temp_dir) as decrypted:
            if decrypted is None:
                raise
            # Its scans read here: the copy is gone once this returns.
            parsed = parse_file(decrypted, name, options)
        parsed.warnings.append(f"{name}: {DEFAULT_PASSWORD_NOTE}")
        return parsed
    except BaseException as exc:
        if not _panicked(exc):
            raise
        # Not chained: a worker could not send it back (it does not pickle).
        why = " ".join(str(exc).split())  # a panic's message runs over lines
        raise CorruptDocumentError(f"{name}: its reader failed on it ({why}): damaged?") from None


def _strict(
    path: str, name: str, kind: FileKind, options: ParseOptions, defer_scans: bool
) -> ParsedDocument:
    """A Strict Open XML package read as its transitional copy (parsers/strict.py)."""
    from rag_ingest.parsers.office import check_zip

    check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
    with transitional(path, name, options.temp_dir) as package:
        parsed = _parse_kind(package, name, kind, options, defer_scans)
    parsed.warnings.append(STRICT_NOTE)
    return parsed


def _sun(
    path: str, name: str, kind: FileKind, options: ParseOptions, defer_scans: bool
) -> ParsedDocument:
    """An OpenOffice.org 1.x document read as the OpenDocument file it became
    (parsers/sun_xml.py)."""
    from rag_ingest.parsers.office import check_zip
    from rag_ingest.parsers.sun_xml import SUN_NOTE, converted

    check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
    with converted(path, name, kind.kind, options.temp_dir) as package:
        opendocument = FileKind(SUN_KINDS[kind.kind][0], note=kind.note)
        parsed = _parse_kind(package, name, opendocument, options, defer_scans)
    parsed.warnings.append(SUN_NOTE)
    return parsed


def _with_comments(
    read: Callable[[], ParsedDocument],
    kind: str,
    comments: Callable[[], Sequence[tuple[int, str | None, list[str]]]],
) -> ParsedDocument:
    """A workbook or a deck ``read``, its ``comments`` after each sheet's rows or slide's
    text; one of comments alone read too, not skipped as blank (its size checked by
    ``read``)."""
    try:
        parsed = read()
    except (BlankDocumentError, EmptyDocumentError):
        found = comments()
        if not found:
            raise
        parsed = ParsedDocument(kind, [], parser=f"{kind}-comments")
    else:
        found = comments()
    _after_sheets(parsed, ((n, "\n".join(lines), title) for n, title, lines in found))
    return parsed


def _after_sheets(parsed: ParsedDocument, blocks: Iterable[tuple[int, str, str | None]]) -> None:
    """Each block (a chart, a sheet's or a slide's comments) after its sheet's rows or its
    slide's text: ``(page, text, title)``, a segment of its own for a page of none, headed
    by its title if given."""
    from rag_ingest.parsers.workbook import sheet_segment

    for sheet, text, title in blocks:
        segment = next((s for s in parsed.segments if s.page == sheet and s.member is None), None)
        if segment is None:
            parsed.segments.append(
                sheet_segment(title, [text], sheet) if title else Segment(text, page=sheet)
            )
        else:
            segment.text = f"{segment.text}\n\n{text}"
    own = sorted((s for s in parsed.segments if s.member is None), key=lambda s: s.page or 0)
    parsed.segments = own + [s for s in parsed.segments if s.member is not None]


def _panicked(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust library's panic (pyo3's PanicException: calamine's on a
    damaged .xls, found by fuzzing). It derives from BaseException, so no ``except
    Exception`` in a parser catches it, and it failed the document untyped."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _parse_kind(
    path: str, name: str, kind: FileKind, options: ParseOptions, defer_scans: bool
) -> ParsedDocument:
    """:func:`parse_file` of a file whose kind is known."""
    suffix = PurePosixPath(name).suffix.lower()
    note = kind.note
    if kind.kind in MUPDF_KINDS:
        from rag_ingest.parsers.pdf import parse_pdf

        if kind.kind == "xps":
            from rag_ingest.parsers.office import check_zip

            check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
        parsed = parse_pdf(
            path,
            name,
            options.pdf_mode,
            options.max_images,
            options.min_image_bytes,
            drop_running=options.pdf_drop_running_lines,
            ocr=options.ocr,
            read_attached=attachment_reader(options),
            max_attached=options.max_unzipped_size,
            file_type=kind.kind,
        )
    elif kind.kind == "image":
        from rag_ingest.parsers.image import parse_image

        parsed = parse_image(path, name)
    elif kind.kind in ("docx", "pptx", "xlsx", "html", "markdown"):
        from rag_ingest.parsers.office import parse_office

        office = functools.partial(
            parse_office,
            path,
            name,
            kind.kind,
            max_unzipped_size=options.max_unzipped_size,
            max_zip_ratio=options.max_zip_ratio,
            xlsx_stream_size=options.xlsx_stream_size,
            markup_fast_size=options.markup_fast_size,
            markdown_fast_size=options.markdown_fast_size,
            html_chrome=options.html_chrome,
            max_images=options.max_images,
            min_image_bytes=options.min_image_bytes,
            ocr_pictures=options.reads_pictures,
            read_part=part_reader(options),
        )
        document = functools.partial(_and_embedded, office, path, name, kind.kind, options)
        if kind.kind in ("xlsx", "pptx"):
            from rag_ingest.parsers.ooxml_comments import pptx_comments, xlsx_comments

            comments = xlsx_comments if kind.kind == "xlsx" else pptx_comments
            parsed = _with_comments(document, kind.kind, functools.partial(comments, path))
        else:
            parsed = document()
    elif kind.kind in ("doc", "ppt"):
        from rag_ingest.parsers.legacy import parse_legacy, ppt_comments

        legacy = functools.partial(parse_legacy, path, name, kind.kind, options)
        document = functools.partial(_and_embedded, legacy, path, name, kind.kind, options)
        if kind.kind == "ppt":
            parsed = _with_comments(document, "ppt", functools.partial(ppt_comments, path))
        else:
            parsed = document()
    elif kind.kind in ("xls", "xlsb", "ods"):
        from rag_ingest.parsers.office import check_zip
        from rag_ingest.parsers.workbook import parse_rows

        if kind.kind != "xls":
            check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
        rows = functools.partial(parse_rows, path, name, kind.kind)
        workbook = functools.partial(_and_embedded, rows, path, name, kind.kind, options)
        if kind.kind == "xls":
            from rag_ingest.parsers.biff import xls_comments

            parsed = _with_comments(workbook, "xls", functools.partial(xls_comments, path))
        elif kind.kind == "xlsb":
            parsed = workbook()
        else:
            from rag_ingest.parsers.opendoc import sheet_charts, sheet_comments

            parsed = _with_comments(workbook, "ods", functools.partial(sheet_comments, path))
            _after_sheets(parsed, ((n, chart, None) for n, chart in sheet_charts(path)))
    elif kind.kind in ("docbook", "mallard"):
        from rag_ingest.parsers.docbook import parse_docbook

        parsed = parse_docbook(path, name)
    elif kind.kind == "wordml":
        from rag_ingest.parsers.wordml import parse_wordml

        parsed = parse_wordml(path, name, options)
    elif kind.kind == "spreadsheetml":
        from rag_ingest.parsers.spreadsheetml import parse_spreadsheetml

        parsed = parse_spreadsheetml(path, name)
    elif kind.kind == "gnumeric":
        from rag_ingest.parsers.gnumeric import parse_gnumeric

        parsed = parse_gnumeric(path, name)
    elif kind.kind == "uof":
        from rag_ingest.parsers.uof import parse_uof

        parsed = parse_uof(path, name)
    elif kind.kind == "fb2":
        from rag_ingest.parsers.fictionbook import parse_fictionbook

        parsed = parse_fictionbook(path, name)
    elif kind.kind == "mhtml":
        from rag_ingest.parsers.webarchive import parse_mhtml

        parsed = parse_mhtml(
            path,
            name,
            options.max_images,
            options.min_image_bytes,
            options.reads_pictures,
            count_unread=options.ocr is None,
            chrome=options.html_chrome,
        )
    elif kind.kind == "vsdx":
        from rag_ingest.parsers.office import check_zip
        from rag_ingest.parsers.visio import parse_visio

        check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
        parsed = parse_visio(path, name)
    elif kind.kind in ("odt", "odp", "odg", "epub"):
        from rag_ingest.parsers.office import check_zip
        from rag_ingest.parsers.opendoc import parse_epub, parse_opendocument

        check_zip(path, name, options.max_unzipped_size, options.max_zip_ratio)
        if kind.kind == "epub":
            parsed = parse_epub(
                path, name, options.max_images, options.min_image_bytes, options.reads_pictures
            )
        else:
            opendoc = functools.partial(
                parse_opendocument,
                path,
                name,
                kind.kind,
                options.reads_pictures,
                options.max_images,
                options.min_image_bytes,
            )
            parsed = _and_embedded(opendoc, path, name, kind.kind, options)
    elif kind.kind == "archive":
        from rag_ingest.parsers.archive import parse_archive

        if not options.archives:
            raise UnsupportedFileTypeError(
                f"{name}: an archive inside an archive inside an archive is not opened"
            )
        parsed = parse_archive(path, name, options)
    elif kind.kind == "notebook":
        from rag_ingest.parsers.notebook import parse_notebook

        parsed = parse_notebook(path, name)
    elif kind.kind == "calendar":
        from rag_ingest.parsers.calendar import parse_calendar

        parsed = parse_calendar(path, name)
    elif kind.kind == "man":
        from rag_ingest.parsers.roff import parse_roff

        parsed = parse_roff(path, name)
    elif kind.kind == "svg":
        from rag_ingest.parsers.svg import parse_svg

        parsed = parse_svg(path, name)
    elif kind.kind == "transcript":
        from rag_ingest.parsers.transcript import parse_transcript

        parsed = parse_transcript(path, name)
    elif kind.kind in TABLE_KINDS:
        from rag_ingest.parsers.data import parse_table

        parsed = parse_table(path, name, kind.kind)
    elif kind.kind == "rtf":
        from rag_ingest.parsers.rtf import parse_rtf

        rtf = functools.partial(parse_rtf, path, name, options)
        parsed = _and_embedded(rtf, path, name, kind.kind, options)
    elif kind.kind in ("email", "mbox", "msg", "tnef", "emlx"):
        from rag_ingest.parsers.mail import emlx_message, parse_mbox
        from rag_ingest.parsers.outlook import msg_to_email, tnef_to_email

        read_message = message_reader(options)
        if kind.kind == "mbox":
            parsed = parse_mbox(
                path, name, read_message, max_images=options.max_images, options=options
            )
        elif kind.kind == "msg":
            parsed = read_message(path, name, msg_to_email(path, name))
            parsed.parser = "outlook-msg"
        elif kind.kind == "emlx":
            parsed = read_message(path, name, emlx_message(path))
            parsed.parser = "emlx"
        elif kind.kind == "tnef":
            with open(path, "rb") as f:
                parsed = read_message(path, name, tnef_to_email(f.read(), name))
            parsed.parser = "tnef"
        else:
            parsed = read_message(path, name)
    else:
        from rag_ingest.parsers.text import parse_text

        try:
            records = None
            if records_first(path, name, kind):
                from rag_ingest.parsers.records import parse_records

                records = parse_records(
                    path, name, yaml=suffix in (".yaml", ".yml"), xml=kind.language == "xml"
                )
                if records is not None and kind.guessed:
                    # Objects under a name that says nothing: a Firehose delivery, a
                    # Hadoop job's part-00000.
                    note = f"unknown extension {suffix or '(none)'}; JSON records"
            parsed = records or parse_text(path, name, kind.kind, kind.language)
        except BinaryContentError:
            if compressed_name(name):
                # Its first bytes no gzip (bzip2, xz, zstd) stream's: a damaged one had
                # been skipped as "binary data (.gz)" when a walk listed it.
                raise CorruptDocumentError(
                    f"{name}: named {suffix} but not a compressed stream, nor text: damaged?"
                ) from None
            if kind.guessed:  # an unknown extension and binary bytes: some binary format
                what = f"binary data ({suffix or 'no extension'})"
                raise NoTextFormatError(f"{name}: {what}: no text to index") from None
            raise
    # Not for a file inside an archive (archives=False): its type is in its chunks, and
    # a repository's LICENSE and Makefile would make a warning each.
    if note and options.archives:
        parsed.warnings.append(note)
    if options.ocr is None and kind.kind in (*_PICTURED, "html", "markdown"):
        from rag_ingest.parsers.pictures import unread_in_page, unread_pictures, unread_said

        if kind.kind in _PICTURED:
            unread = unread_pictures(path)
        else:
            with open(path, "rb") as f:
                unread = unread_in_page(f.read(), markdown=kind.kind == "markdown")
        parsed.warnings += unread_said(unread)
    if parsed.scans and not defer_scans:
        from rag_ingest.parsers.scans import finish, read_scans

        pictures = parsed.pictures and [parsed.pictures[n - 1] for n in parsed.scans]
        read = read_scans(path, name, parsed.file_type, parsed.scans, options, pictures or None)
        parsed = finish(name, parsed, read, options)
    return parsed
