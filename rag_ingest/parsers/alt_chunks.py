"""A DOCX's alternative format chunks (``w:altChunk``): a file of another format (a
DOCX, an HTML page, an RTF file, plain text, a web archive) put in the package and shown
by Word where the element stands, as if its content were typed there. Mail-merge and
report generators build documents this way (the Open XML SDK's usual way to put HTML in
a DOCX).

python-docx, under docling, reads such a part as XML when its type says it is a
document's main part, and fails the whole DOCX (LibreOffice's ``alt-chunk.docx``: "Start
tag expected"); had it opened, the content would have been lost. Here each chunk is
taken out of the package, a marker paragraph left where it stood; once the rest is read,
each marker is replaced by its chunk read as the file it is.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import secrets
import zipfile
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from xml.etree import ElementTree

from rag_ingest.parsers.base import ParsedDocument, part_types, stored_copy
from rag_ingest.parsers.embedded import links_in, relationship_target, source_part, without_links

__all__ = ["AltChunk", "into_cells", "put_back", "read_all", "taken_out"]

# How a chunk is read: (its bytes, a file name, the document's warnings) -> the file read,
# or None when it holds no text or failed (said in the warnings).
ReadPart = Callable[[bytes, str, list[str]], ParsedDocument | None]

_CHUNK_RELATIONSHIP = b"/relationships/aFChunk"
# An alt chunk, with or without its properties (w:altChunkPr, w:matchSrc).
_ALT_CHUNK = re.compile(rb"<w:altChunk\b([^>]*?)(?:/>|>.*?</w:altChunk>)", re.DOTALL)
_ID = re.compile(rb'\br:id="([^"]*)"')
# How deep a chunk's own chunks are read: each level is a whole document read again, and
# a file of chunks nested a hundred deep had ended in Python's recursion limit.
MAX_DEPTH = 5
_DEPTH: ContextVar[int] = ContextVar("alt_chunk_depth", default=0)
# A marker's start: letters and digits only, so that docling's Markdown keeps it as it is.
_MARKER = "RagIngestAltChunk"
# A file name's extension for a chunk's type, where its part's name has none it reads as.
_EXTENSIONS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": ".docx",
    "application/vnd.ms-word.document.macroenabled.main+xml": ".docm",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": ".dotx",
    "text/html": ".html",
    "application/xhtml+xml": ".xhtml",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "text/plain": ".txt",
    "message/rfc822": ".mht",
    "multipart/related": ".mht",
}


@dataclass(frozen=True)
class AltChunk:
    """A chunk taken out: the marker left in its place, its file name and bytes."""

    marker: str
    filename: str
    data: bytes


def taken_out(data: bytes) -> tuple[bytes, list[AltChunk]]:
    """``data`` (a DOCX package) with its body's alt chunks replaced by marker paragraphs,
    and every alt chunk part and link to one left out; the chunks, in document order.
    A package with none is returned as it is."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        rels_parts = [n for n in archive.namelist() if n.endswith(".rels")]
        linked: dict[str, dict[bytes, str]] = {}  # rels part -> chunk Id -> part
        for rels in rels_parts:
            raw = archive.read(rels)
            if _CHUNK_RELATIONSHIP in raw:
                linked[rels] = _chunk_links(raw, rels)
        if not linked:
            return data, []
        names = set(archive.namelist())
        try:
            types = part_types(ElementTree.fromstring(archive.read("[Content_Types].xml")))
        except ElementTree.ParseError:
            types = _untyped
        document_links = linked.get("word/_rels/document.xml.rels", {})
        token = secrets.token_hex(4)
        chunks: list[AltChunk] = []

        def marked(found: re.Match[bytes]) -> bytes:
            link = _ID.search(found.group(1))
            part = document_links.get(link.group(1)) if link else None
            if part is None or part not in names:
                return found.group(0)  # none there: the reader passes over the element
            marker = f"{_MARKER}{token}n{len(chunks)}"
            chunks.append(AltChunk(marker, _filename(part, types), archive.read(part)))
            return f"<w:p><w:r><w:t>{marker}</w:t></w:r></w:p>".encode()

        changed: dict[str, bytes] = {}
        if "word/document.xml" in names:
            changed["word/document.xml"] = _ALT_CHUNK.sub(marked, archive.read("word/document.xml"))
        for rels, links in linked.items():
            changed[rels] = without_links(archive.read(rels), set(links))
        dropped = {part for links in linked.values() for part in links.values()}
        return stored_copy(archive, changed, dropped), chunks


def read_all(chunks: list[AltChunk], read: ReadPart | None, warnings: list[str]) -> dict[str, str]:
    """Each chunk's marker -> the chunk read as its own file, as Markdown ("" when it
    holds no text or failed, said in ``warnings``). A chunk's own chunks are read too,
    :data:`MAX_DEPTH` levels down."""
    bodies = {}
    depth = _DEPTH.get()
    for chunk in chunks:
        if read is None or depth >= MAX_DEPTH:
            why = "not read" if read is None else f"nested past {MAX_DEPTH} alt chunks: not read"
            warnings.append(f"alt chunk {chunk.filename}: {why}")
            bodies[chunk.marker] = ""
            continue
        entered = _DEPTH.set(depth + 1)
        try:
            got = read(chunk.data, chunk.filename, warnings)
        finally:
            _DEPTH.reset(entered)
        for warning in got.warnings if got is not None else ():
            warnings.append(f"alt chunk {chunk.filename}: {warning}")
        bodies[chunk.marker] = got.text.strip() if got is not None else ""
    return bodies


def into_cells(doc: Any, bodies: dict[str, str]) -> set[str]:
    """docling's document with each marker in a table's cell replaced by its chunk's
    text on one line, before the table is laid out for its widths; the markers put."""
    put: set[str] = set()

    def flat(text: str) -> str:
        for marker in bodies if _MARKER in text else ():
            if marker in text:
                text = text.replace(marker, " ".join(bodies[marker].split()))
                put.add(marker)
        return text

    for table in getattr(doc, "tables", ()):
        for cell in table.data.table_cells:
            cell.text = flat(cell.text)
    # A cell of several paragraphs is a "rich" cell: its text is its items'.
    for item in getattr(doc, "texts", ()):
        if _MARKER in item.text and _in_table(item, doc):
            item.text = flat(item.text)
    return put


def _in_table(item: Any, doc: Any) -> bool:
    parent = getattr(item, "parent", None)
    while parent is not None:
        node = parent.resolve(doc)
        if type(node).__name__ == "TableItem":
            return True
        parent = getattr(node, "parent", None)
    return False


def put_back(text: str, bodies: dict[str, str]) -> str:
    """``text`` (the document's Markdown) with each marker paragraph replaced by its
    chunk's Markdown. A chunk whose marker was not read (it stood where the reader does
    not look) is put at the end."""
    for marker, body in bodies.items():
        if marker not in text:
            text = f"{text.rstrip()}\n\n{body}" if body else text
            continue
        lines = [body if line.strip() == marker else line for line in text.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text


def _chunk_links(rels: bytes, name: str) -> dict[bytes, str]:
    """The alt chunk links of a relationships part: Id -> the part linked."""
    source = source_part(name)
    return {
        link.get(b"Id", b""): relationship_target(source, link[b"Target"])
        for link in links_in(rels)
        if link.get(b"Type", b"").endswith(_CHUNK_RELATIONSHIP) and link.get(b"Target")
    }


def _untyped(part: str) -> str | None:
    return None


def _filename(part: str, types: Callable[[str], str | None]) -> str:
    """The chunk's file name: its part's, with the extension its type names when the
    part's own says otherwise (``afchunk.dat`` holding HTML)."""
    name = posixpath.basename(part)
    kind = (types(part) or "").split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(kind)
    if extension is None or name.lower().endswith(extension):
        return name
    return name if mimetypes.guess_type(name)[0] == kind else name + extension
