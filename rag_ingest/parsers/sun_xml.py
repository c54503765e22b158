"""OpenOffice.org 1.x documents (StarOffice 6 and 7: ``.sxw``, ``.sxc``, ``.sxi``,
``.sxd`` and their templates) read as the OpenDocument files they became.

OpenDocument 1.0 grew out of this format: the same zip, the same parts and, mostly, the
same elements, under namespaces of its own (``http://openoffice.org/2000/text``) and a
few names since changed. Not known, such a file had been read as a zip archive, part by
part: its settings and styles indexed, its text as XML records. Its parts are copied
with their namespaces renamed, and those names changed:

- a document's body holds its content directly (ODF wraps it in ``office:text``,
  ``office:spreadsheet``, ``office:presentation`` or ``office:drawing``);
- a heading's level is ``text:level`` (``text:outline-level``);
- lists are ``text:ordered-list`` and ``text:unordered-list`` (``text:list``);
- a cell's value and type are in the table namespace (ODF's office namespace);
- a comment's author is an attribute (``dc:creator``).
"""

from __future__ import annotations

import zipfile
from contextlib import AbstractContextManager as ContextManager
from typing import Any

from rag_ingest.parsers.flat import rewritten_package

__all__ = ["SUN_KINDS", "SUN_MIMETYPES", "SUN_NOTE", "opendocument"]

SUN_NOTE = "OpenOffice.org 1.x: read as the OpenDocument file it became"
# Each kind: the OpenDocument kind, its mimetype, and the element its body's content
# goes into.
SUN_KINDS = {
    "sxw": ("odt", b"application/vnd.oasis.opendocument.text", "text"),
    "sxc": ("ods", b"application/vnd.oasis.opendocument.spreadsheet", "spreadsheet"),
    "sxi": ("odp", b"application/vnd.oasis.opendocument.presentation", "presentation"),
    "sxd": ("odg", b"application/vnd.oasis.opendocument.graphics", "drawing"),
}
SUN_MIMETYPES = {
    b"application/vnd.sun.xml.writer": "sxw",
    b"application/vnd.sun.xml.writer.template": "sxw",
    b"application/vnd.sun.xml.writer.global": "sxw",
    b"application/vnd.sun.xml.calc": "sxc",
    b"application/vnd.sun.xml.calc.template": "sxc",
    b"application/vnd.sun.xml.impress": "sxi",
    b"application/vnd.sun.xml.impress.template": "sxi",
    b"application/vnd.sun.xml.draw": "sxd",
    b"application/vnd.sun.xml.draw.template": "sxd",
}
_ODF = "urn:oasis:names:tc:opendocument:xmlns:"
_NAMESPACES = {
    b"http://openoffice.org/2000/office": f"{_ODF}office:1.0",
    b"http://openoffice.org/2000/style": f"{_ODF}style:1.0",
    b"http://openoffice.org/2000/text": f"{_ODF}text:1.0",
    b"http://openoffice.org/2000/table": f"{_ODF}table:1.0",
    b"http://openoffice.org/2000/drawing": f"{_ODF}drawing:1.0",
    b"http://openoffice.org/2000/datastyle": f"{_ODF}datastyle:1.0",
    b"http://openoffice.org/2000/presentation": f"{_ODF}presentation:1.0",
    b"http://openoffice.org/2000/chart": f"{_ODF}chart:1.0",
    b"http://openoffice.org/2000/dr3d": f"{_ODF}dr3d:1.0",
    b"http://openoffice.org/2000/form": f"{_ODF}form:1.0",
    b"http://openoffice.org/2000/script": f"{_ODF}script:1.0",
    b"http://openoffice.org/2000/meta": f"{_ODF}meta:1.0",
    b"http://www.w3.org/1999/XSL/Format": f"{_ODF}xsl-fo-compatible:1.0",
    b"http://www.w3.org/2000/svg": f"{_ODF}svg-compatible:1.0",
    b"http://openoffice.org/2001/manifest": f"{_ODF}manifest:1.0",
}
# calamine knows an OpenDocument spreadsheet by its manifest too.
_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
    f'"{_ODF}manifest:1.0"><manifest:file-entry manifest:media-type="{{}}" '
    'manifest:full-path="/"/></manifest:manifest>'
)
_OFFICE, _TEXT, _TABLE = (f"{{{_ODF}{n}:1.0}}" for n in ("office", "text", "table"))
_DC = "{http://purl.org/dc/elements/1.1/}"
_LISTS = {f"{_TEXT}ordered-list", f"{_TEXT}unordered-list"}
# A document's office:class, and the element its body's content goes into.
_CLASSES = {"text": "text", "spreadsheet": "spreadsheet", "presentation": "presentation",
            "drawing": "drawing", "chart": "chart"}  # fmt: skip
# A cell's value attributes, moved from the table namespace to the office one.
_VALUES = ("value-type", "value", "date-value", "time-value", "boolean-value",
           "string-value", "currency")  # fmt: skip


def opendocument(data: bytes) -> bytes:
    """An OpenOffice.org 1.x XML part as its OpenDocument 1.0 form."""
    for old, new in _NAMESPACES.items():
        data = data.replace(b'"' + old + b'"', b'"' + new.encode() + b'"')
    return data


def _content(data: bytes, body_kind: str) -> bytes:
    """``content.xml`` (the document's, or an object's in it) in its OpenDocument form
    (see the module's list); its body's kind by its ``office:class``, else ``body_kind``."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(opendocument(data), parser)
    body_kind = _CLASSES.get(root.get(f"{_OFFICE}class", ""), body_kind)
    body = root.find(f"{_OFFICE}body")
    if body is not None and body.find(f"{_OFFICE}{body_kind}") is None:
        content = etree.Element(f"{_OFFICE}{body_kind}")
        content.extend(list(body))
        body.append(content)
    for element in root.iter(f"{_TEXT}h", *_LISTS, f"{_TABLE}table-cell", f"{_OFFICE}annotation"):
        _renamed(element)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _renamed(element: Any) -> None:
    from lxml import etree

    if element.tag in _LISTS:
        element.tag = f"{_TEXT}list"
    elif element.tag == f"{_TEXT}h":
        if (level := element.attrib.pop(f"{_TEXT}level", None)) is not None:
            element.set(f"{_TEXT}outline-level", level)
    elif element.tag == f"{_TABLE}table-cell":
        for name in _VALUES:
            if (value := element.attrib.pop(f"{_TABLE}{name}", None)) is not None:
                element.set(f"{_OFFICE}{name}", value)
    elif (author := element.attrib.pop(f"{_OFFICE}author", None)) is not None:
        creator = etree.Element(f"{_DC}creator")
        creator.text = author
        element.insert(0, creator)


def converted(path: str, name: str, kind: str, temp_dir: str | None) -> ContextManager[str]:
    """The path of the OpenDocument package the OpenOffice.org 1.x file at ``path`` (of
    ``kind``, its size checked already: ``check_zip``) became, removed after."""
    from lxml import etree

    _, mimetype, body_kind = SUN_KINDS[kind]
    first = {"mimetype": mimetype}  # first, stored, as the format requires
    with zipfile.ZipFile(path) as archive:
        if "META-INF/manifest.xml" not in archive.namelist():
            first["META-INF/manifest.xml"] = _MANIFEST.format(mimetype.decode()).encode()

    def rewrite(member: str, data: bytes) -> bytes | None:
        if member == "mimetype":
            return None
        if member == "content.xml" or member.endswith("/content.xml"):
            try:
                return _content(data, body_kind)
            except etree.XMLSyntaxError:
                return opendocument(data)  # its reader mends it, said
        return opendocument(data) if member.endswith(".xml") else data

    return rewritten_package(path, name, temp_dir, rewrite, first)
