"""The comments on an XLSX workbook's cells (Excel's notes, and its threaded comments
with their replies), which neither docling nor calamine reads: a reviewer's "figures
from the Q3 audit, not final" on a total was lost, and a sheet holding only comments was
skipped as blank.

Each sheet's comments come after its rows, a line each, as a Gnumeric or ODS sheet's
do: ``Comment on B4 (Ann): text``. A sheet with threaded comments is read for those
alone: Excel writes each again as a note for older versions, under a paragraph saying so.
"""

from __future__ import annotations

import zipfile
from xml.etree import ElementTree

from rag_ingest.parsers.base import XML_ERRORS, ZIP_ERRORS, comment_line, local_name
from rag_ingest.parsers.embedded import relationship_target, relationships

__all__ = ["xlsx_comments"]

_NOTES = b"/comments"
_THREADED = b"/threadedComment"
_PERSON = b"/person"
_WORKBOOK = b"/officeDocument"


def xlsx_comments(path: str) -> list[tuple[int, str, list[str]]]:
    """Each commented sheet's position (1-based, in the workbook's order, as its pages
    are numbered), name and comment lines. A part that cannot be read is passed over:
    the sheets' rows are read without it."""
    found = []
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = _workbook_part(archive)
            if workbook is None:
                return []
            people: dict[str, str] = {}
            for position, (title, part) in enumerate(_sheets(archive, workbook), start=1):
                links = relationships(archive, part)
                threaded = _targets(part, links, _THREADED)
                if threaded and not people:
                    people = _people(archive, workbook)
                lines = [
                    line
                    for member in threaded or _targets(part, links, _NOTES)
                    for line in _read(archive, member, people, threaded=bool(threaded))
                ]
                if lines:
                    found.append((position, title, lines))
    except (*ZIP_ERRORS, *XML_ERRORS):  # a LookupError too: a part its links name is missing
        return found
    return found


def _workbook_part(archive: zipfile.ZipFile) -> str | None:
    for link in relationships(archive, ""):  # the package's own (_rels/.rels)
        if link.get(b"Type", b"").endswith(_WORKBOOK):
            return relationship_target("", link.get(b"Target", b""))
    return None


def _targets(part: str, links: list[dict[bytes, bytes]], kind: bytes) -> list[str]:
    return [
        relationship_target(part, link.get(b"Target", b""))
        for link in links
        if link.get(b"Type", b"").endswith(kind)
    ]


def _sheets(archive: zipfile.ZipFile, workbook: str) -> list[tuple[str, str]]:
    """Each sheet's name and part, in the workbook's order (chart sheets too: they are
    numbered among the sheets)."""
    by_id = {
        link.get(b"Id", b"").decode(): relationship_target(workbook, link.get(b"Target", b""))
        for link in relationships(archive, workbook)
    }
    sheets = []
    for sheet in ElementTree.fromstring(archive.read(workbook)).iter():
        if local_name(sheet.tag) != "sheet":
            continue
        # r:id, in the transitional or the strict namespace.
        rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), "")
        sheets.append((sheet.get("name", ""), by_id.get(rid, "")))
    return sheets


def _people(archive: zipfile.ZipFile, workbook: str) -> dict[str, str]:
    """Threaded comments' authors: person ID -> display name."""
    people = {}
    for member in _targets(workbook, relationships(archive, workbook), _PERSON):
        for person in _elements(archive, member, "person"):
            people[person.get("id", "")] = person.get("displayName", "")
    return people


def _elements(archive: zipfile.ZipFile, member: str, *tags: str) -> list[ElementTree.Element]:
    """A part's elements of ``tags`` (by local name), in order; none when it is missing
    or broken."""
    try:
        root = ElementTree.fromstring(archive.read(member))
    except (KeyError, *XML_ERRORS):
        return []
    return [e for e in root.iter() if local_name(e.tag) in tags]


def _read(
    archive: zipfile.ZipFile, member: str, people: dict[str, str], *, threaded: bool
) -> list[str]:
    lines = []
    authors: list[str] = []
    for element in _elements(archive, member, "author", "comment", "threadedComment"):
        if local_name(element.tag) == "author":
            authors.append(" ".join((element.text or "").split()))
            continue
        text = _text(element)
        if not text:
            continue
        if threaded:
            who = people.get(element.get("personId", ""), "")
            said = "Reply on" if element.get("parentId") else "Comment on"
        else:
            index = element.get("authorId", "")
            who = authors[int(index)] if index.isdigit() and int(index) < len(authors) else ""
            said = "Comment on"
            if who and text.startswith(f"{who}:"):  # Excel starts a note with its author
                text = text[len(who) + 1 :].strip()
        lines.append(comment_line(f"{said} {element.get('ref', '?')}", who, "", text))
    return lines


def _text(comment: ElementTree.Element) -> str:
    """A comment's text on one line: its runs' (a note's) or its own (a threaded one's);
    not a run's phonetic reading (``rPh``)."""
    body = next((c for c in comment if local_name(c.tag) == "text"), None)
    if body is None:
        return ""
    parts = [body.text or ""]
    for child in body:
        if local_name(child.tag) == "t":
            parts.append(child.text or "")
        elif local_name(child.tag) == "r":
            parts += [t.text or "" for t in child if local_name(t.tag) == "t"]
    return " ".join("".join(parts).split())
