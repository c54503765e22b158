"""Visio drawings (``.vsdx``, ``.vsdm``): each page's text, page by page under the page's
name: every shape's text (a box's label, a connector's) and its shape data (``Label:
value``), in the order the page holds its shapes. Read from the package's XML: docling
has no Visio reader, and no other library reads their text.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from xml.etree import ElementTree

from rag_ingest.errors import CorruptDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import XML_ERRORS, ZIP_ERRORS, ParsedDocument, Segment, lost_in_mending
from rag_ingest.parsers.opendoc import read_xml

__all__ = ["parse_visio"]

_V = "{http://schemas.microsoft.com/office/visio/2012/main}"
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PACKAGE_RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_PAGE_NUMBER = re.compile(r"page(\d+)\.xml$")


def parse_visio(path: str, name: str) -> ParsedDocument:
    """A Visio drawing's pages as Markdown, one segment a page."""
    try:
        with zipfile.ZipFile(path) as archive:
            segments: list[Segment] = []
            warnings: list[str] = []
            pages = _pages(archive)
            for number, (title, member) in enumerate(pages, start=1):
                texts = _page_texts(read_xml(archive, member, name, warnings))
                if texts:
                    segments.append(Segment("\n\n".join([f"# {title}", *texts]), page=number))
    except ZIP_ERRORS as exc:  # a member's data broken too
        raise CorruptDocumentError(f"{name}: not a readable archive ({exc})") from exc
    if not segments:
        empty = EmptyDocumentError(f"{name}: no text in its shapes: nothing to index")
        raise lost_in_mending(name, warnings) or empty
    return ParsedDocument("vsdx", segments, parser="visio-xml", pages=len(pages), warnings=warnings)


def _pages(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(name, member) of each page in the drawing's order: ``pages.xml`` lists them, its
    relationships name their parts; without those, the page parts by number."""
    try:
        listing = ElementTree.fromstring(archive.read("visio/pages/pages.xml"))
        links = ElementTree.fromstring(archive.read("visio/pages/_rels/pages.xml.rels"))
    except (KeyError, *XML_ERRORS):
        numbered = sorted(
            (int(found[1]), member)
            for member in archive.namelist()
            if member.startswith("visio/pages/") and (found := _PAGE_NUMBER.search(member))
        )
        return [(f"Page-{n}", member) for n, member in numbered]
    targets = {
        link.get("Id"): posixpath.normpath(posixpath.join("visio/pages", link.get("Target", "")))
        for link in links.iter(f"{_PACKAGE_RELATIONSHIP}Relationship")
    }
    pages = []
    for number, page in enumerate(listing.iter(f"{_V}Page"), start=1):
        rel = page.find(f"{_V}Rel")
        member = targets.get(rel.get(_RELATIONSHIP_ID) if rel is not None else None)
        if member:
            pages.append((page.get("Name") or page.get("NameU") or f"Page-{number}", member))
    return pages


def _page_texts(root: ElementTree.Element) -> list[str]:
    """Each shape's text and shape data, groups' shapes in their place."""
    texts = []
    for shape in root.iter(f"{_V}Shape"):
        lines = []
        text = shape.find(f"{_V}Text")
        if text is not None:
            # On one line (its breaks are CR LF, LF or U+2028); a field's value is its text.
            label = " ".join("".join(text.itertext()).split())
            if label:
                lines.append(label)
        for section in shape.findall(f"{_V}Section"):
            if section.get("N") != "Property":
                continue
            for row in section.findall(f"{_V}Row"):
                cells = {cell.get("N"): cell.get("V") for cell in row.findall(f"{_V}Cell")}
                value = " ".join((cells.get("Value") or "").split())
                if value:
                    lines.append(f"{cells.get('Label') or row.get('N') or 'Value'}: {value}")
        if lines:
            texts.append("\n".join(lines))
    return texts
