"""Word 97-2003 (``.doc``) and PowerPoint 97-2003 (``.ppt``) files: converted to DOCX and
PPTX by msdoc2docx and ppt2pptx (MIT, pure Python, extra ``office``), then read as those
are (docling), so a ``.doc`` keeps its headings, lists and tables, and a ``.ppt`` its
slides, tables and speaker notes.
"""

from __future__ import annotations

import importlib
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Iterator

from rag_ingest.errors import (
    CorruptDocumentError,
    EncryptedDocumentError,
    MissingExtraError,
    UnsupportedFileTypeError,
)
from rag_ingest.parsers.base import ParsedDocument, ParseOptions, Segment, after_text, comment_line
from rag_ingest.parsers.pictures import unread_pictures, unread_said
from rag_ingest.parsers.sniff import OLD_WORD, OLD_WORD_MARKS, ole_sectors_ok

__all__ = ["parse_legacy", "ppt_comments"]

# A style reference in WordprocessingML: <w:pStyle w:val="..."/>, <w:basedOn .../>, ...
_STYLE_REFERENCE = re.compile(rb'(w:(?:val|styleId)=")([^"]*)(")')


def parse_legacy(path: str, name: str, kind: str, options: ParseOptions) -> ParsedDocument:
    """A ``doc`` or ``ppt`` file, read through the DOCX or PPTX it converts to."""
    from rag_ingest.parsers.office import parse_office

    modern = "docx" if kind == "doc" else "pptx"
    with tempfile.TemporaryDirectory(prefix="rag-ingest-legacy-", dir=options.temp_dir) as scratch:
        converted = os.path.join(scratch, f"converted.{modern}")
        try:
            converter = _convert(path, converted, name, kind)
        except (UnsupportedFileTypeError, CorruptDocumentError) as exc:
            # Refused by msdoc2docx: a Word 6.0 or 95 file it does not read, or a Word 97
            # one that breaks one of its rules; either's text may still be read alone.
            plain, old = _plain_text(path) if kind == "doc" else ("", False)
            if not plain:
                raise
            why = f"{name}: a Word 6.0 or 95 document" if old else str(exc)
            return ParsedDocument(
                "doc",
                [Segment(plain)],
                parser="word6-text" if old else "word-pieces",
                warnings=[f"{why}: its text read alone, without headings, lists or tables"],
            )
        if kind == "doc":
            _name_styles(converted)
        else:
            _without_running_boxes(converted)
        parsed = parse_office(
            converted,
            name,
            modern,
            max_unzipped_size=options.max_unzipped_size,
            max_zip_ratio=options.max_zip_ratio,
            max_images=options.max_images,
            min_image_bytes=options.min_image_bytes,
            ocr_pictures=options.reads_pictures,
        )
        if options.ocr is None:
            parsed.warnings += unread_said(unread_pictures(converted))
    parsed.file_type = kind
    parsed.parser = f"{converter}+{parsed.parser}"
    if kind == "ppt":
        _titles_as_headings(parsed, path)
    return parsed


def _titles_as_headings(parsed: ParsedDocument, path: str) -> None:
    """Head each slide's text with its title, as a PPTX slide's is: ppt2pptx writes every
    placeholder as a plain text box, so docling sees no title."""
    try:
        titles = _ppt_titles(path)
    except _DECK_ERRORS:
        return  # the slides' text is read all the same; only their headings are lost
    for segment in parsed.segments:
        title = titles[segment.page - 1] if segment.page and segment.page <= len(titles) else None
        first, gap, rest = segment.text.partition("\n\n")
        if title and " ".join(first.split()) == title:
            segment.text = f"# {title}{gap}{rest}"


def _convert(path: str, converted: str, name: str, kind: str) -> str:
    """Write the DOCX or PPTX version of ``path`` to ``converted``; the converter's name."""
    what = "Word 97-2003 .doc" if kind == "doc" else "PowerPoint 97-2003 .ppt"
    package, module = ("msdoc2docx", "doc2docx") if kind == "doc" else ("ppt2pptx", "ppt2pptx")
    try:
        converter = importlib.import_module(module)
        errors = importlib.import_module(f"{module}.errors")
    except ImportError as exc:
        raise MissingExtraError(f"reading {what} files ({package})", "office") from exc
    encrypted = (
        errors.EncryptedDocumentError if kind == "doc" else errors.EncryptedPresentationError
    )
    too_old = () if kind == "doc" else (errors.UnsupportedPptVersionError,)
    try:
        converter.convert(path, converted)
    except encrypted as exc:
        raise EncryptedDocumentError(
            f"{name}: password-protected ({what}): remove the password, or save a copy without one"
        ) from exc
    except too_old as exc:
        raise UnsupportedFileTypeError(f"{name}: {exc}: save it as PPTX") from exc
    except MemoryError:
        raise  # the worker's memory limit (ParserMemoryError), not a corrupt file
    except Exception as exc:  # their own errors, and what a hostile file makes them raise
        if kind == "doc" and _before_word_97(path):
            raise UnsupportedFileTypeError(f"{name}: {OLD_WORD}") from exc
        raise CorruptDocumentError(f"{name}: not a readable {what} file ({exc})") from exc
    return package


# Word 6.0's Far East editions' wIdents (Apache POI's Bug51944.doc had failed as "not a
# readable Word 97-2003 .doc file (WordDocument FIB has wIdent 0xA699 ...)").
_FAR_EAST_WORD_6 = (b"\x97\xa6", b"\x98\xa6", b"\x99\xa6")


def _before_word_97(path: str) -> bool:
    """Whether the ``.doc`` at ``path`` is a Word 6.0 or 95 document in a compound file
    (its WordDocument stream's wIdent, a Far East edition's too, or an nFib under Word
    97's 193)."""
    import olefile

    with open(path, "rb") as f:
        if not ole_sectors_ok(f.read(512)):
            return False  # olefile would try to allocate its sectors
    try:
        with olefile.OleFileIO(path) as ole:
            head = ole.openstream("WordDocument").read(4)
    except _DECK_ERRORS:
        return False
    n_fib = int.from_bytes(head[2:4], "little")
    if head[:2] in OLD_WORD_MARKS or head[:2] in _FAR_EAST_WORD_6:
        return True
    return head[:2] == b"\xec\xa5" and 0 < n_fib < 193


def _plain_text(path: str) -> tuple[str, bool]:
    """A ``.doc`` file's text read alone (parsers/word_pieces.py), and whether it is a
    Word 6.0 or 95 file (read from its ``WordDocument`` stream; a Word 97 one's from its
    piece table); "" when that cannot be read either."""
    import olefile

    from rag_ingest.parsers.sniff import ole_sectors_ok
    from rag_ingest.parsers.word_pieces import old_word_text, table_stream, word_text

    with open(path, "rb") as f:
        if not ole_sectors_ok(f.read(512)):
            return "", False  # olefile would try to allocate its sectors
    try:
        with olefile.OleFileIO(path) as ole:
            word_document = ole.openstream("WordDocument").read()
            if old := old_word_text(word_document):
                return old, True
            table = ole.openstream(table_stream(word_document)).read()
        return word_text(word_document, table), False
    except (OSError, ValueError, IndexError, struct.error):
        return "", False


def _name_styles(path: str) -> None:
    """Give the converted DOCX's styles the IDs Word derives from their names ("Title",
    "Heading1"): msdoc2docx numbers them ("DocStyle60"), and docling knows a document's
    title by its style's ID."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    styles = next((data for info, data in members if info.filename == "word/styles.xml"), b"")
    renamed: dict[bytes, bytes] = {}
    from rag_ingest.parsers.office import STYLE_ID_NAME

    taken = {old for old, _ in STYLE_ID_NAME.findall(styles)}
    for old, style_name in STYLE_ID_NAME.findall(styles):
        new = re.sub(rb"[^0-9A-Za-z]", b"", style_name)
        new = new[:1].upper() + new[1:]
        if new and new != old and new not in taken:
            renamed[old] = new
            taken.add(new)
    if not renamed:
        return

    def rename(match: re.Match[bytes]) -> bytes:
        return match[1] + renamed.get(match[2], match[2]) + match[3]

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if info.filename.startswith("word/") and info.filename.endswith(".xml"):
                data = _STYLE_REFERENCE.sub(rename, data)
            archive.writestr(info, data)


# The text boxes ppt2pptx writes for a slide's header, date, footer and number (a
# placeholder in the .ppt): the same on every slide, and an automatic date is the day of
# the conversion, so a chunk's text changed from day to day.
_RUNNING_BOX = re.compile(
    rb'<p:sp><p:nvSpPr><p:cNvPr id="\d+" name="(?:Header|Date|Footer|Slide Number)"/>'
    rb'<p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>.*?</p:sp>',
    re.S,
)


def _without_running_boxes(path: str) -> None:
    """The converted PPTX without its slides' header, date, footer and number boxes, as
    docling leaves a PPTX's placeholders for them out."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if info.filename.startswith(("ppt/slides/slide", "ppt/notesSlides/notesSlide")):
                data = _RUNNING_BOX.sub(b"", data)
            archive.writestr(info, data)


# PowerPoint 97-2003 records (MS-PPT): a header of version and instance, type, length.
_DOCUMENT, _SLIDE_LIST, _SLIDE_PERSIST = 0x03E8, 0x0FF0, 0x03F3
_TEXT_HEADER, _TEXT_CHARS, _TEXT_BYTES = 0x0F9F, 0x0FA0, 0x0FA8
_TITLE_TYPES = (0, 6)  # Tx_TYPE_TITLE, Tx_TYPE_CENTERTITLE
_MAX_EDITS = 10_000


def _record(stream: bytes, at: int) -> tuple[int, int, bool, int, int]:
    """The record at ``at``: type, instance, whether a container, payload start and end."""
    head, kind, length = struct.unpack_from("<HHI", stream, at)
    return kind, head >> 4, head & 0xF == 0xF, at + 8, min(at + 8 + length, len(stream))


def _records(stream: bytes, start: int, end: int) -> Iterator[tuple[int, int, bool, int, int]]:
    """The records from ``start`` to ``end``, not descending into containers."""
    while start + 8 <= end:
        record = _record(stream, start)
        yield record
        start = record[4]


def _title_in(stream: bytes, start: int, end: int) -> str | None:
    """The first title's text among the records from ``start`` to ``end`` (containers
    searched depth first): a text header of a title type, then its text atom."""
    title = False
    for kind, _, container, at, stop in _records(stream, start, end):
        if container:
            found = _title_in(stream, at, stop)
            if found:
                return found
        elif kind == _TEXT_HEADER and stop - at >= 4:
            title = struct.unpack_from("<I", stream, at)[0] in _TITLE_TYPES
            continue
        elif title and kind in (_TEXT_CHARS, _TEXT_BYTES):
            encoding = "utf-16-le" if kind == _TEXT_CHARS else "cp1252"
            return " ".join(stream[at:stop].decode(encoding, "replace").split()) or None
        title = False
    return None


def _persist_offsets(stream: bytes, edit: int) -> tuple[dict[int, int], int]:
    """Where each persist ID's record is (the latest edit's entry wins), and the
    document's persist ID: from the user edit at ``edit`` back through the earlier ones."""
    offsets: dict[int, int] = {}
    document = None
    for _ in range(_MAX_EDITS):
        last_edit, directory, document_id = struct.unpack_from("<III", stream, edit + 16)
        document = document_id if document is None else document
        _, _, _, position, end = _record(stream, directory)
        while position + 4 <= end:
            entry = struct.unpack_from("<I", stream, position)[0]
            first, count = entry & 0xFFFFF, entry >> 20
            for k, offset in enumerate(struct.unpack_from(f"<{count}I", stream, position + 4)):
                offsets.setdefault(first + k, offset)
            position += 4 + 4 * count
        if not last_edit or last_edit == edit:
            break
        edit = last_edit
    return offsets, document or 0


_Deck = tuple[bytes, dict[int, int], list[tuple[int, int, int]]]
_DECK_ERRORS = (OSError, ValueError, KeyError, IndexError, RecursionError, struct.error)


def _ppt_deck(path: str) -> _Deck:
    """A deck's "PowerPoint Document" stream, where each persist ID's record is, and its
    slides in order (persist ID; the start and end of its outline text in the slide
    list): from the current edit's document, through the "Current User" stream and the
    edits' persist directories."""
    import olefile

    with olefile.OleFileIO(path) as ole:
        stream = ole.openstream("PowerPoint Document").read()
        current = ole.openstream("Current User").read()
    offsets, document = _persist_offsets(stream, struct.unpack_from("<I", current, 16)[0])
    kind, _, _, start, end = _record(stream, offsets[document])
    if kind != _DOCUMENT:
        raise ValueError("the current edit names no document")
    slides: list[tuple[int, int, int]] = []
    for kind, instance, _, at, stop in _records(stream, start, end):
        if kind == _SLIDE_LIST and instance == 0:
            for inner, _, _, begin, finish in _records(stream, at, stop):
                if inner == _SLIDE_PERSIST:
                    if slides:
                        slides[-1] = (slides[-1][0], slides[-1][1], begin - 8)
                    slides.append((struct.unpack_from("<I", stream, begin)[0], finish, stop))
    return stream, offsets, slides


def _ppt_titles(path: str) -> list[str | None]:
    """Each slide's title, in the deck's order: the title in the slide list's outline
    text (where PowerPoint keeps a placeholder's text) or else in the slide's shapes
    (where LibreOffice does)."""
    stream, offsets, slides = _ppt_deck(path)
    titles: list[str | None] = []
    for persist, start, end in slides:
        title = _title_in(stream, start, end)
        if title is None and persist in offsets:
            _, _, _, at, stop = _record(stream, offsets[persist])
            title = _title_in(stream, at, stop)
        titles.append(title)
    return titles


# A slide's comment (PowerPoint 2002 and later; ppt2pptx leaves them out): a container
# in the slide's "___PPT10" tag data, which is not a container record, so it is found by
# its header; its strings are the author (instance 0) and the text (1).
_COMMENT, _COMMENT_ATOM, _CSTRING = 0x2EE0, 0x2EE1, 0x0FBA
_COMMENT_HEADER = struct.pack("<HH", 0x000F, _COMMENT)


def ppt_comments(path: str) -> list[tuple[int, None, list[str]]]:
    """Each commented slide's number (in the deck's order, as its pages are numbered)
    and its comments, listed under ``Comments:``; none for a deck that cannot be read
    so far (its slides are read all the same)."""
    found: list[tuple[int, None, list[str]]] = []
    try:
        _slide_comments(path, found)
    except _DECK_ERRORS:
        return found  # what was read before the damage
    return found


def _slide_comments(path: str, found: list[tuple[int, None, list[str]]]) -> None:
    stream, offsets, slides = _ppt_deck(path)
    for number, (persist, _, _) in enumerate(slides, start=1):
        if persist not in offsets:
            continue
        _, _, _, at, stop = _record(stream, offsets[persist])
        lines = []
        position = stream.find(_COMMENT_HEADER, at, stop)
        while position != -1 and position + 8 <= stop:
            _, _, _, begin, end = _record(stream, position)
            said: dict[int, str] = {}
            atom = False
            for kind, instance, _, start, finish in _records(stream, begin, end):
                atom = atom or kind == _COMMENT_ATOM
                if kind == _CSTRING:
                    said[instance] = " ".join(
                        stream[start:finish].decode("utf-16-le", "replace").split()
                    )
            if atom and said.get(1):  # a comment's, not bytes that look like its header
                lines.append(comment_line("Comment", said.get(0, ""), "", said[1]))
            # Past its header only: bytes that looked like one may claim any length.
            position = stream.find(_COMMENT_HEADER, position + 8, stop)
        if lines:
            found.append((number, None, [after_text("", lines)]))
