"""Flat packages: a package's parts in one XML document. Each is written as the zip
package it stands for, then read by that package's parser.

- Flat OpenDocument files (``.fodt``, ``.fods``, ``.fodp``, ``.fodg``), as LibreOffice
  saves for version control: content, styles and meta, its base64 pictures as files
  (then parsers/opendoc.py, calamine for a sheet).
- Flat OPC (``<pkg:package>``): Word's "Word XML Document" and PowerPoint's "XML
  Presentation", and what Office add-ins and document generators write: each
  ``pkg:part`` a member of the DOCX or PPTX (then docling, as any).
"""

from __future__ import annotations

import binascii
import contextlib
import html
import mimetypes
import os
import posixpath
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from rag_ingest.errors import CorruptDocumentError, disk_full
from rag_ingest.parsers.base import XML_ERRORS, ZIP_ERRORS, local_name, recovered_xml

__all__ = ["FLAT_KINDS", "OPC_KINDS", "packaged"]

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_XLINK = "http://www.w3.org/1999/xlink"
_PKG = "http://schemas.microsoft.com/office/2006/xmlPackage"
# A flat kind -> the kind of package it stands for.
OPC_KINDS = {"docx-xml": "docx", "pptx-xml": "pptx"}
FLAT_KINDS = {"fodt": "odt", "fods": "ods", "fodp": "odp", "fodg": "odg", **OPC_KINDS}
# Each part: its root, and the flat document's children it holds that a reader reads
# (by local name).
_PARTS = {
    "content.xml": ("document-content", ("body",)),
    "styles.xml": ("document-styles", ("styles", "automatic-styles")),
    "meta.xml": ("document-meta", ("meta",)),
}
_PICTURE_TYPES = (
    (b"\x89PNG", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
# A prefix ElementTree makes up itself ("ns0"): not to be registered.
_MADE_UP = re.compile(r"ns\d+$")


@contextlib.contextmanager
def packaged(
    path: str, name: str, kind: str, temp_dir: str | None, warnings: list[str] | None = None
) -> Iterator[str]:
    """The path of the zip package a flat file of ``kind`` (``fodt``, ``docx-xml``...)
    stands for, removed after. Not such a file: CorruptDocumentError. One that is not
    well formed is mended, said in ``warnings``."""
    root = _read(path, name, [] if warnings is None else warnings)
    opc = kind in OPC_KINDS
    if not opc and root.tag != f"{{{_OFFICE}}}document":  # named .fodt, or the like
        raise CorruptDocumentError(
            f"{name}: not a flat OpenDocument file (its root is <{local_name(root.tag)}>)"
        )

    def write(out: IO[bytes]) -> None:
        try:
            (_write_opc if opc else _write)(root, out)
        except RecursionError:  # ElementTree writes a part's elements recursively
            raise CorruptDocumentError(f"{name}: its XML nests too deeply to read") from None

    with written_package(name, temp_dir, write) as out_path:
        yield out_path


@contextlib.contextmanager
def written_package(
    name: str, temp_dir: str | None, write: Callable[[IO[bytes]], None]
) -> Iterator[str]:
    """The path of a temporary zip package ``write`` writes, for ``name``'s reader; removed
    after. A full disk is a :class:`DiskFullError`."""
    fd, out_path = tempfile.mkstemp(prefix=".packaged-", suffix=".zip", dir=temp_dir)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
        except OSError as exc:
            full = disk_full(exc, Path(out_path).parent, f"unpacking {name}")
            if full is not None:
                raise full from exc
            raise
        yield out_path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out_path)


@contextlib.contextmanager
def rewritten_package(
    path: str,
    name: str,
    temp_dir: str | None,
    rewrite: Callable[[str, bytes], bytes | None],
    first: dict[str, bytes] | None = None,
) -> Iterator[str]:
    """The path of a copy of the zip package at ``path`` (its size checked already:
    ``check_zip``), each part through ``rewrite`` (its name and data; None leaves it
    out), ``first`` written before them, stored; removed after. A part whose data is
    damaged is a :class:`CorruptDocumentError`."""

    def write(out: IO[bytes]) -> None:
        with (
            zipfile.ZipFile(path) as archive,
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy,
        ):
            for member, data in (first or {}).items():
                copy.writestr(zipfile.ZipInfo(member), data)
            for info in archive.infolist():
                try:
                    data = archive.read(info)
                except ZIP_ERRORS as exc:
                    raise CorruptDocumentError(
                        f"{name}: its part {info.filename!r} is damaged ({exc})"
                    ) from exc
                if (rewritten := rewrite(info.filename, data)) is not None:
                    copy.writestr(info.filename, rewritten)

    with written_package(name, temp_dir, write) as package:
        yield package


def _read(path: str, name: str, warnings: list[str]) -> ElementTree.Element:
    """The flat document's root, its prefixes registered so the parts keep them: calamine
    knows a sheet's elements by their prefixed names (``table:table-cell``)."""
    try:
        return _rooted(path)
    except XML_ERRORS as exc:
        with open(path, "rb") as f:
            data, warning = recovered_xml(f.read(), name, exc)
    warnings.append(warning)
    return _rooted(BytesIO(data))


def _rooted(source: str | BytesIO) -> ElementTree.Element:
    events = ElementTree.iterparse(source, events=("start-ns",))
    for _, (prefix, uri) in events:
        if prefix and not _MADE_UP.match(prefix):
            ElementTree.register_namespace(prefix, uri)
    root: ElementTree.Element = events.root  # type: ignore[attr-defined]
    return root


def _write_opc(root: ElementTree.Element, out: IO[bytes]) -> None:
    """A Flat OPC package's parts as a zip package, with the [Content_Types].xml that
    names their types; stored, as :func:`_write` says."""
    types: list[tuple[str, str]] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as package:
        for part in root.iter(f"{{{_PKG}}}part"):
            member = posixpath.normpath(part.get(f"{{{_PKG}}}name", "").lstrip("/"))
            if member in ("", ".") or member.startswith("..") or member in package.NameToInfo:
                continue
            xml = part.find(f"{{{_PKG}}}xmlData")
            binary = part.find(f"{{{_PKG}}}binaryData")
            if xml is not None and len(xml):
                data = ElementTree.tostring(xml[0], "utf-8", xml_declaration=True)
            elif binary is not None:
                try:
                    data = binascii.a2b_base64(binary.text or "")
                except (binascii.Error, ValueError):
                    continue
            else:
                continue
            package.writestr(member, data)
            types.append((member, part.get(f"{{{_PKG}}}contentType", "")))
        overrides = "".join(
            f'<Override PartName="/{html.escape(m)}" ContentType="{html.escape(t)}"/>'
            for m, t in types
        )
        package.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="application'
            '/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            f'ContentType="application/xml"/>{overrides}</Types>',
        )


def _write(root: ElementTree.Element, out: IO[bytes]) -> None:
    """``root``'s parts as a package; stored, not deflated: the zip is read once, here,
    and a deflated XML part would look like a zip bomb to ``check_zip``."""
    mimetype = root.get(f"{{{_OFFICE}}}mimetype", "")  # the kind is known: never read
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as package:
        package.writestr("mimetype", mimetype)
        listed = [("/", mimetype)]
        for member, data in _pictures(root):
            package.writestr(member, data)
            listed.append((member, mimetypes.guess_type(member)[0] or ""))
        # Charts and formulas: each a folder of its own, as in a package (read from there).
        documents = [("", root), *_objects(root)]
        for folder, document in documents:
            if folder:
                listed.append((f"{folder}/", document.get(f"{{{_OFFICE}}}mimetype", "")))
            for member, (tag, children) in _PARTS.items():
                part = ElementTree.Element(f"{{{_OFFICE}}}{tag}", document.attrib)
                part.extend(c for c in document if local_name(c.tag) in children)
                xml = ElementTree.tostring(part, "utf-8", xml_declaration=True)
                package.writestr(f"{folder}/{member}".lstrip("/"), xml)
                listed.append((f"{folder}/{member}".lstrip("/"), "text/xml"))
        entries = "".join(
            f'<manifest:file-entry manifest:full-path="{p}" manifest:media-type="{t}"/>'
            for p, t in listed
        )
        package.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
            f'"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">{entries}</manifest:manifest>',
        )


def _objects(root: ElementTree.Element) -> list[tuple[str, ElementTree.Element]]:
    """Each object the document holds whole (a chart, a formula: a ``draw:object``'s own
    ``office:document``), made a link to the folder it is written to, as in a package."""
    found: list[tuple[str, ElementTree.Element]] = []
    for frame in list(root.iter(f"{{{_DRAW}}}object")):
        for child in list(frame):
            if child.tag == f"{{{_OFFICE}}}document":
                frame.remove(child)
                folder = f"Object {len(found) + 1}"
                frame.set(f"{{{_XLINK}}}href", f"./{folder}")
                found.append((folder, child))
    return found


def _pictures(root: ElementTree.Element) -> Iterator[tuple[str, bytes]]:
    """Each picture held in the document as base64 (``office:binary-data``), made a link
    to the member it is written to; an embedded object's data is dropped (never read)."""
    data_tag, href = f"{{{_OFFICE}}}binary-data", f"{{{_XLINK}}}href"
    number = 0
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag != data_tag:
                continue
            parent.remove(child)
            if parent.tag != f"{{{_DRAW}}}image":
                continue
            try:
                data = binascii.a2b_base64(child.text or "")
            except (binascii.Error, ValueError):
                continue
            suffix = next((s for magic, s in _PICTURE_TYPES if data.startswith(magic)), ".bin")
            number += 1
            member = f"Pictures/{number}{suffix}"
            parent.set(href, member)
            yield member, data
