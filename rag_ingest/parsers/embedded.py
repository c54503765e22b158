"""Files embedded in a DOCX, PPTX or XLSX (an Excel table in a Word report, a PDF put in a
slide with "Insert object"), in a Word, Excel or PowerPoint 97-2003 document, an RTF
file or an OpenDocument file: their readers show such an object as its preview picture,
or not at all, and its content was lost.

An object is found by the relationship its document, slide or sheet has to it: an OOXML
package (``word/embeddings/Microsoft_Excel_Worksheet.xlsx``) as it is; an OLE object
(``oleObject1.bin``) by what it holds: a file put in as a package ("Ole10Native", with
its own name), an OOXML package, or a Word, Excel or PowerPoint 97-2003 document. A
chart's workbook is its chart's data, which docling reads as the chart's table: left
alone. Linked (not embedded) objects are not followed.

In a ``.doc`` an object is a storage under ``ObjectPool``, in an ``.xls`` a top-level
``MBD…`` storage (the same streams an ``oleObject1.bin`` holds); a Word, Excel or
PowerPoint 97-2003 document there is written out as a compound file of its own. In a
``.ppt`` it is a compound file in a record of the deck's stream; in an RTF file, an
OLE 1 object in hex; in an OpenDocument file, a compound file in the package.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator

from rag_ingest.parsers.base import OLE_MAGIC

__all__ = [
    "EMBEDDING_KINDS",
    "embedded_files",
    "links_in",
    "relationship_target",
    "relationships",
    "source_part",
    "without_links",
]

_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]*>")
_ATTRIBUTE = re.compile(rb'(\w+)="([^"]*)"')
_EMBEDDING_TYPES = (b"/package", b"/oleObject")
# The parts whose relationships place an object in the document, by kind.
_OWNERS = {
    "docx": re.compile(r"word/(?:document|header\d*|footer\d*)\.xml"),
    "pptx": re.compile(r"ppt/slides/slide\d+\.xml"),
    "xlsx": re.compile(r"xl/worksheets/sheet\d+\.xml"),
}
_SLIDE_ID = re.compile(rb"<p:sldId\b[^>]*\br:id=\"([^\"]+)\"")
# Where a 97-2003 document keeps its objects: the storages under ObjectPool (Word), the
# top-level storages named MBD and 8 hex digits (Excel).
_OBJECT_STORAGES = {"doc": re.compile(r"ObjectPool/[^/]+"), "xls": re.compile(r"MBD[0-9A-Fa-f]{8}")}
_ODF_KINDS = frozenset({"odt", "odp", "odg", "ods"})
EMBEDDING_KINDS = frozenset(_OWNERS) | frozenset(_OBJECT_STORAGES) | _ODF_KINDS | {"ppt", "rtf"}


def relationships(archive: zipfile.ZipFile, part: str) -> list[dict[bytes, bytes]]:
    """The attributes of each relationship of an OOXML package's ``part`` (none when it
    has no relationships part)."""
    rels = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    try:
        data = archive.read(rels)
    except KeyError:
        return []
    return links_in(data)


def links_in(rels: bytes) -> list[dict[bytes, bytes]]:
    """The attributes of each relationship in a relationships part's bytes."""
    return [dict(_ATTRIBUTE.findall(tag)) for tag in _RELATIONSHIP.findall(rels)]


def without_links(rels: bytes, ids: set[bytes]) -> bytes:
    """A relationships part's bytes without its relationships of ``ids``."""

    def kept(found: re.Match[bytes]) -> bytes:
        return b"" if dict(_ATTRIBUTE.findall(found[0])).get(b"Id") in ids else found[0]

    return _RELATIONSHIP.sub(kept, rels)


def source_part(rels: str) -> str:
    """The part a relationships part is of: word/_rels/document.xml.rels, word/document.xml."""
    folder, _, rels_name = rels.rpartition("_rels/")
    return folder + rels_name.removesuffix(".rels")


def relationship_target(part: str, target: bytes) -> str:
    """The member a relationship of ``part`` points to (relative to its folder, or absolute)."""
    path = target.decode("utf-8", "replace")
    if path.startswith("/"):
        return path.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(part), path))


def _slide_order(archive: zipfile.ZipFile) -> dict[str, int]:
    """Each slide part's number in the deck's order (``ppt/slides/slide7.xml`` may be
    the second slide)."""
    try:
        ids = _SLIDE_ID.findall(archive.read("ppt/presentation.xml"))
    except KeyError:
        return {}
    by_id = {
        r.get(b"Id"): relationship_target("ppt/presentation.xml", r.get(b"Target", b""))
        for r in relationships(archive, "ppt/presentation.xml")
    }
    return {by_id[i]: n for n, i in enumerate(ids, 1) if i in by_id}


def embedded_files(
    path: str, kind: str, max_size: int | None = None
) -> Iterator[tuple[str, bytes, int | None]]:
    """The objects embedded in the document, in part order: ``(name, bytes, slide)``,
    the slide's number for a deck's (else None; a ``.ppt``'s objects say none). ``name``
    is the file's own where the object keeps it, else its part's (no extension when only
    its content says what it is). ``max_size``: a ``.ppt``'s compressed object unpacking
    past it is a ValueError."""
    if kind in _OBJECT_STORAGES:
        yield from _storage_objects(path, _OBJECT_STORAGES[kind])
        return
    if kind == "ppt":
        yield from _slide_show_objects(path, max_size)
        return
    if kind == "rtf":
        yield from _rtf_objects(path)
        return
    if kind in _ODF_KINDS:
        yield from _odf_objects(path)
        return
    owners = _OWNERS.get(kind)
    if owners is None:
        return
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        slides = _slide_order(archive) if kind == "pptx" else {}
        parts = sorted(
            (n for n in names if owners.fullmatch(n)),
            key=lambda n: (slides.get(n, 0), [int(d) for d in re.findall(r"\d+", n)] or [0]),
        )
        seen: set[str] = set()
        for part in parts:
            for relation in relationships(archive, part):
                kind_url = relation.get(b"Type", b"")
                if not kind_url.endswith(_EMBEDDING_TYPES):
                    continue
                member = relationship_target(part, relation.get(b"Target", b""))
                if member in seen or member not in names:  # a linked object's is a URL
                    continue
                seen.add(member)
                data = archive.read(member)
                name = posixpath.basename(member)
                if kind_url.endswith(b"/oleObject"):
                    name, data = _unwrapped(name, data)
                yield name, data, slides.get(part)


def _storage_objects(path: str, storages: re.Pattern[str]) -> Iterator[tuple[str, bytes, None]]:
    """The objects in a compound file's storages whose paths ``storages`` matches."""
    try:
        import olefile
    except ImportError:  # the 'office' extra in part: its text is read, its objects not
        return
    from rag_ingest.parsers.compound import compound_file, storage_tree

    with olefile.OleFileIO(path) as ole:
        found = {
            "/".join(entry[:depth])
            for entry in ole.listdir(streams=True, storages=True)
            for depth in (1, 2)
            if len(entry) > depth and storages.fullmatch("/".join(entry[:depth]))
        }
        for where in sorted(found):
            tree = storage_tree(ole, where.split("/"))
            stem = where.rsplit("/", 1)[-1]
            native, package = tree.get("\x01Ole10Native"), tree.get("Package")
            unpacked = _native(native) if isinstance(native, bytes) else None
            if unpacked is not None:
                yield (*unpacked, None)
            elif isinstance(package, bytes):
                yield stem, package, None
            else:  # a document of its own (or what its reader will say it is not)
                yield stem, compound_file(tree), None


def _slide_show_objects(path: str, max_size: int | None) -> Iterator[tuple[str, bytes, None]]:
    """The objects in a PowerPoint 97-2003 file: each ExOleObjStg record (0x1011) of its
    ``PowerPoint Document`` stream holds one as a compound file, zlib-compressed when its
    instance is 1 ([MS-PPT] 2.10.34). A macro project is one too: left out."""
    try:
        import olefile
    except ImportError:
        return
    with olefile.OleFileIO(path) as ole:
        stream = ole.openstream("PowerPoint Document").read()
    at, number = 0, 0
    while at + 8 <= len(stream):
        version_instance, record_type, length = struct.unpack_from("<HHI", stream, at)
        body = stream[at + 8 : at + 8 + length]
        at += 8 + length
        if record_type != 0x1011:
            continue  # objects sit at the stream's top level, never in a container
        data = body
        if version_instance >> 4 == 1:
            (size,) = struct.unpack_from("<I", body)
            if max_size is not None and size > max_size:
                raise ValueError(f"an object of {size:,} bytes unpacked, past {max_size:,}")
            try:
                data = zlib.decompressobj().decompress(body[4:], size)
            except zlib.error:
                continue  # damaged: the deck's own text is still read
        number += 1
        name, data = _unwrapped(f"oleObject{number}.bin", data)
        if not _macros(data):
            yield name, data, None


def _odf_objects(path: str) -> Iterator[tuple[str, bytes, int | None]]:
    """The OLE objects in an OpenDocument file (``draw:object-ole``: a compound file in
    the package, as Office saves an object into ODF), in document order, with their
    page's number in slides and drawings. Objects of ODF's own (charts, formulas) are
    parsers/opendoc.py's."""
    from rag_ingest.parsers.base import XML_ERRORS
    from rag_ingest.parsers.opendoc import placed_objects

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        seen: set[str] = set()
        found: list[tuple[str, int]] = []
        try:
            with archive.open("content.xml") as content:
                for page, href in placed_objects(content, "draw:object-ole", "draw:page"):
                    member = posixpath.normpath(href)
                    if member in names and member not in seen:  # else linked, or lost
                        seen.add(member)
                        found.append((member, page))
        except XML_ERRORS:
            pass  # its parser says what is wrong with its content; the objects found stay
        for member, on_page in found:
            name, data = _unwrapped(posixpath.basename(member), archive.read(member))
            yield name, data, on_page or None


def _rtf_objects(path: str) -> Iterator[tuple[str, bytes, None]]:
    """The objects embedded in an RTF file: each an OLE 1 object ([MS-OLEDS] 2.2.4:
    version, format 2 for embedded, class, topic and item names, then its native data),
    a file put in as a package (class ``Package``, its data laid out as an Ole10Native
    stream's) or a compound file (a Word or Excel document, or an OLE object's storage)."""
    from rag_ingest.parsers.rtf import object_data

    for number, data in enumerate(object_data(path), start=1):
        try:
            (format_id,) = struct.unpack_from("<I", data, 4)
            class_name, at = _counted(data, 8)
            at = _counted(data, _counted(data, at)[1])[1]  # topic and item names
            (size,) = struct.unpack_from("<I", data, at)
        except (struct.error, ValueError):
            continue  # damaged, or not an OLE 1 object: the document's text is still read
        if format_id != 2:
            continue  # linked, not embedded
        native = data[at : at + 4 + size]
        unpacked = _native(native) if class_name == "Package" else None
        if unpacked is not None:
            yield (*unpacked, None)
        else:
            yield (*_unwrapped(f"object{number}.bin", native[4:]), None)


def _counted(data: bytes, at: int) -> tuple[str, int]:
    """An OLE 1 length-prefixed string (its count takes in its closing NUL) at ``at``,
    and where it ends."""
    (length,) = struct.unpack_from("<I", data, at)
    if at + 4 + length > len(data):
        raise ValueError("a string past the object's end")
    return data[at + 4 : at + 4 + length].rstrip(b"\0").decode("cp1252", "replace"), at + 4 + length


def _macros(data: bytes) -> bool:
    """Whether an object is a macro project (a VBA storage), not a document."""
    return data.startswith(OLE_MAGIC) and "_VBA_PROJECT".encode("utf-16-le") in data


def _unwrapped(name: str, data: bytes) -> tuple[str, bytes]:
    """An OLE object's content: the file put in as a package with its own name, an OOXML
    package, or the compound document itself (a Word, Excel or PowerPoint 97-2003 one),
    named by its part without ``.bin`` (its content says what it is)."""
    stem = name.rsplit(".", 1)[0]
    try:
        import olefile
    except ImportError:  # the 'office' extra in part: the object is tried as it is
        return stem, data
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if ole.exists("\x01Ole10Native"):
                native = _native(ole.openstream("\x01Ole10Native").read())
                if native is not None:
                    return native
            if ole.exists("Package"):
                return stem, ole.openstream("Package").read()
    except (OSError, ValueError, struct.error, IndexError):
        pass  # not a compound file, or a broken one: its reader says so
    return stem, data


def _native(stream: bytes) -> tuple[str, bytes] | None:
    """The file an "Ole10Native" stream holds, with its name (the layout oletools reads:
    size, flags, label, source path, two longs, temporary path, size, data)."""
    try:
        at = 4 + 2
        label, at = _string(stream, at)
        source, at = _string(stream, at)
        at += 8
        _, at = _string(stream, at)
        (size,) = struct.unpack_from("<I", stream, at)
        data = stream[at + 4 : at + 4 + size]
    except (struct.error, ValueError):
        return None
    if len(data) != size:
        return None
    name = label or source.replace("\\", "/").rsplit("/", 1)[-1]
    return name or "embedded", data


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("cp1252", "replace"), end + 1
