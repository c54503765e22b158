"""The comments in an XLSX workbook and a PPTX deck, which neither docling nor calamine
reads: a reviewer's "figures from the Q3 audit, not final" on a total, or "this chart is
last year's" on a slide, was lost, and a sheet or a deck holding only comments was
skipped as blank.

Each sheet's comments come after its rows, a line each, as a Gnumeric or ODS sheet's
do: ``Comment on B4 (Ann): text``. A sheet with threaded comments is read for those
alone: Excel writes each again as a note for older versions, under a paragraph saying so.
Its text boxes and labelled shapes follow, ``Text box: text`` each: openpyxl and calamine
read none of a sheet's drawing (LibreOffice's tdf140489.xlsx lost a "Tip: enter your
starting amount..." box).

Each slide's comments come after its text and speaker notes, as a PDF page's do:
``Comments:`` then ``- Comment (Ann): text``, a reply ``- Reply (Bob): text``; both
PowerPoint's comments (``p:cmLst``) and its modern ones (Microsoft 365, ``p188:cmLst``).
"""

from __future__ import annotations

import zipfile
from xml.etree import ElementTree

from rag_ingest.parsers.alt_text import drawing_alt
from rag_ingest.parsers.base import (
    XML_ERRORS,
    ZIP_ERRORS,
    after_text,
    comment_line,
    local_name,
    without_author,
)
from rag_ingest.parsers.embedded import relationship_target, relationships

__all__ = ["pptx_comments", "xlsx_comments"]

_NOTES = b"/comments"
_THREADED = b"/threadedComment"
_PERSON = b"/person"
_MAIN = b"/officeDocument"
_AUTHORS = (b"/commentAuthors", b"/authors")  # a deck's: PowerPoint's, and its modern ones
_DRAWING = b"/drawing"  # a sheet's shapes, charts and pictures (not its vmlDrawing)
_SHEET_SHAPES = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"
_DRAWN = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def xlsx_comments(path: str) -> list[tuple[int, str, list[str]]]:
    """Each commented sheet's position (1-based, in the workbook's order, as its pages
    are numbered), name and comment lines, then its text boxes' (which openpyxl, under
    docling, and calamine leave out). A part that cannot be read is passed over: the
    sheets' rows are read without it."""
    found = []
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = _main_part(archive)
            if workbook is None:
                return []
            people: dict[str, str] = {}
            for position, (title, part) in enumerate(_listed(archive, workbook, "sheet"), 1):
                links = relationships(archive, part)
                threaded = _targets(part, links, _THREADED)
                if threaded and not people:
                    people = _people(archive, workbook)
                lines = [
                    line
                    for member in threaded or _targets(part, links, _NOTES)
                    for line in _read(archive, member, people, threaded=bool(threaded))
                ] + [
                    line
                    for member in _targets(part, links, _DRAWING)
                    for line in _text_boxes(archive, member)
                ]
                if lines:
                    found.append((position, title, lines))
    except (*ZIP_ERRORS, *XML_ERRORS):  # a LookupError too: a part its links name is missing
        return found
    return found


def pptx_comments(path: str) -> list[tuple[int, None, list[str]]]:
    """Each commented slide's number (1-based, in the deck's order, as docling numbers
    its pages) and its comments, listed under ``Comments:``. A part that cannot be read
    is passed over: the slides are read without it."""
    found: list[tuple[int, None, list[str]]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            deck = _main_part(archive)
            if deck is None:
                return []
            authors: dict[str, str] | None = None
            for number, (_, part) in enumerate(_listed(archive, deck, "sldId"), start=1):
                members = _targets(part, relationships(archive, part), _NOTES)
                if not members:
                    continue
                if authors is None:
                    authors = _authors(archive, deck)
                lines = [line for member in members for line in _slide(archive, member, authors)]
                if lines:
                    found.append((number, None, [after_text("", lines)]))
    except (*ZIP_ERRORS, *XML_ERRORS):  # a LookupError too: a part its links name is missing
        return found
    return found


def _main_part(archive: zipfile.ZipFile) -> str | None:
    """The workbook's or the presentation's part."""
    for link in relationships(archive, ""):  # the package's own (_rels/.rels)
        if link.get(b"Type", b"").endswith(_MAIN):
            return relationship_target("", link.get(b"Target", b""))
    return None


def _targets(part: str, links: list[dict[bytes, bytes]], kind: bytes) -> list[str]:
    return [
        relationship_target(part, link.get(b"Target", b""))
        for link in links
        if link.get(b"Type", b"").endswith(kind)
    ]


def _listed(archive: zipfile.ZipFile, main: str, tag: str) -> list[tuple[str, str]]:
    """Each sheet's (``sheet``) or slide's (``sldId``) name and part, in the workbook's
    or the deck's order (chart sheets too: they are numbered among the sheets)."""
    by_id = {
        link.get(b"Id", b"").decode(): relationship_target(main, link.get(b"Target", b""))
        for link in relationships(archive, main)
    }
    listed = []
    for entry in ElementTree.fromstring(archive.read(main)).iter():
        if local_name(entry.tag) != tag:
            continue
        # r:id, in the transitional or the strict namespace.
        rid = next((v for k, v in entry.attrib.items() if k.endswith("}id")), "")
        listed.append((entry.get("name", ""), by_id.get(rid, "")))
    return listed


def _people(archive: zipfile.ZipFile, workbook: str) -> dict[str, str]:
    """Threaded comments' authors: person ID -> display name."""
    people = {}
    for member in _targets(workbook, relationships(archive, workbook), _PERSON):
        for person in _elements(archive, member, "person"):
            people[person.get("id", "")] = person.get("displayName", "")
    return people


def _root(archive: zipfile.ZipFile, member: str) -> ElementTree.Element | None:
    """A part's root; None when it is missing or broken."""
    try:
        return ElementTree.fromstring(archive.read(member))
    except (KeyError, *XML_ERRORS):
        return None


def _elements(archive: zipfile.ZipFile, member: str, *tags: str) -> list[ElementTree.Element]:
    """A part's elements of ``tags`` (by local name), in order; none when it is missing
    or broken."""
    root = _root(archive, member)
    return [] if root is None else [e for e in root.iter() if local_name(e.tag) in tags]


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
            text = without_author(text, who)
        lines.append(comment_line(f"{said} {element.get('ref', '?')}", who, "", text))
    return lines


def _text_boxes(archive: zipfile.ZipFile, member: str) -> list[str]:
    """A sheet drawing's text boxes and labelled shapes, a line each (``Text box: ...``),
    and its pictures' alternative text (``Picture: ...``),
    in the drawing's order; what Excel writes again for older versions
    (``mc:Fallback``) not read twice."""
    lines: list[str] = []
    stack = [] if (root := _root(archive, member)) is None else [root]
    while stack:
        element = stack.pop()
        if element.tag == _FALLBACK:
            continue
        body = (
            element.find(f"{_SHEET_SHAPES}txBody") if element.tag == f"{_SHEET_SHAPES}sp" else None
        )
        if body is not None:
            paragraphs = (
                " ".join("".join(t.text or "" for t in p.iter(f"{_DRAWN}t")).split())
                for p in body.iter(f"{_DRAWN}p")
            )
            if text := " ".join(p for p in paragraphs if p):
                lines.append(f"Text box: {text}")
        elif element.tag == f"{_SHEET_SHAPES}pic":
            properties = element.find(f"{_SHEET_SHAPES}nvPicPr/{_SHEET_SHAPES}cNvPr")
            if properties is not None and (text := drawing_alt(properties)):
                lines.append(f"Picture: {text}")
        stack.extend(reversed(element))
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


def _authors(archive: zipfile.ZipFile, deck: str) -> dict[str, str]:
    """A deck's comment authors: ID -> name (a number in PowerPoint's list, a GUID in
    its modern one)."""
    authors = {}
    links = relationships(archive, deck)
    for member in (m for kind in _AUTHORS for m in _targets(deck, links, kind)):
        for author in _elements(archive, member, "cmAuthor", "author"):
            authors[author.get("id", "")] = author.get("name", "")
    return authors


def _slide(archive: zipfile.ZipFile, member: str, authors: dict[str, str]) -> list[str]:
    """A slide's comment part's lines: each comment, then its replies (a modern comment
    holds them; a PowerPoint 2013 reply names its parent in ``threadingInfo``)."""
    lines = []
    for comment in _elements(archive, member, "cm"):
        children = {local_name(c.tag): c for c in comment}
        replies = children.get("replyLst")
        reply = any(local_name(e.tag) == "parentCm" for e in comment.iter())
        thread = [(comment, "Reply" if reply else "Comment")] + [
            (r, "Reply") for r in (replies if replies is not None else ())
        ]
        for said, kind in thread:
            if text := _slide_text(said):
                who = authors.get(said.get("authorId", ""), "")
                lines.append(comment_line(kind, who, "", text))
    return lines


def _slide_text(comment: ElementTree.Element) -> str:
    """A slide comment's text on one line: its ``p:text`` or its ``txBody``'s runs
    (paragraphs apart), not its replies'."""
    for child in comment:
        if local_name(child.tag) == "text":
            return " ".join((child.text or "").split())
        if local_name(child.tag) == "txBody":
            paragraphs = (
                "".join(t.text or "" for t in p.iter() if local_name(t.tag) == "t")
                for p in child
                if local_name(p.tag) == "p"
            )
            return " ".join(" ".join(paragraphs).split())
    return ""
