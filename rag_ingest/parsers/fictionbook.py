"""FictionBook 2 (``.fb2``; ``.fb2.zip`` is a zip of one), the XML e-book format of
Russian-language libraries, as Markdown: the book's title and authors, its annotation,
its sections' titles as headings by depth, paragraphs, poems a line a verse (a stanza's
title and a poem's date too), epigraphs
and citations quoted, then its notes. Its pictures are base64 in ``<binary>``: no text.
Read as plain XML, its tags and pictures had been most of its chunks."""

from __future__ import annotations

from xml.etree import ElementTree

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import (
    ParsedDocument,
    Segment,
    local_name,
    lost_in_mending,
    xml_file_root,
)

__all__ = ["parse_fictionbook"]


def _text(element: ElementTree.Element) -> str:
    """An element's words on one line (its emphasis, links and styles are text)."""
    return " ".join("".join(element.itertext()).split())


def _children(element: ElementTree.Element, *names: str) -> list[ElementTree.Element]:
    return [child for child in element if local_name(child.tag) in names]


class _Writer:
    def __init__(self) -> None:
        self.blocks: list[str] = []

    def add(self, text: str, prefix: str = "") -> None:
        if text:
            self.blocks.append(prefix + text)

    def title(self, element: ElementTree.Element, depth: int) -> None:
        lines = [_text(p) for p in _children(element, "p")]
        self.add(" — ".join(line for line in lines if line), "#" * min(depth, 6) + " ")

    def flow(self, element: ElementTree.Element, depth: int, quote: str = "") -> None:
        """A section's or a body's content, in order; sections nest a heading deeper."""
        for child in element:
            kind = local_name(child.tag)
            if kind == "title":
                self.title(child, depth)
            elif kind == "section":
                self.flow(child, depth + 1, quote)
            elif kind in ("p", "text-author"):
                self.add(_text(child), quote)
            elif kind == "subtitle" and (text := _text(child)):
                self.add(f"**{text}**", quote)
            elif kind in ("epigraph", "cite", "annotation"):
                self.flow(child, depth, quote + "> ")
            elif kind == "poem":
                self.poem(child, quote)
            elif kind == "table":
                rows = [[_text(cell) for cell in row] for row in _children(child, "tr")]
                self.add("\n".join(" | ".join(row) for row in rows if any(row)), quote)

    def poem(self, poem: ElementTree.Element, quote: str) -> None:
        for part in poem:
            kind = local_name(part.tag)
            if kind == "stanza":
                for head in _children(part, "title", "subtitle"):
                    self.add(_text(head), quote)
                verses = [_text(v) for v in _children(part, "v")]
                self.add("\n".join(quote + v for v in verses if v))
            elif kind in ("title", "subtitle", "text-author", "epigraph", "date"):
                self.add(_text(part), quote)


def _authors(info: ElementTree.Element) -> list[str]:
    names = []
    for author in _children(info, "author"):
        parts = _children(author, "first-name", "middle-name", "last-name") or _children(
            author, "nickname"
        )
        name = " ".join(filter(None, map(_text, parts)))
        if name:
            names.append(name)
    return names


def parse_fictionbook(path: str, name: str) -> ParsedDocument:
    warnings: list[str] = []
    root = xml_file_root(path, name, warnings)
    if local_name(root.tag) != "FictionBook":
        raise CorruptDocumentError(
            f"{name}: not a FictionBook (its root is <{local_name(root.tag)}>)"
        )
    writer = _Writer()
    for description in _children(root, "description"):
        for info in _children(description, "title-info"):
            title = next((_text(t) for t in _children(info, "book-title")), "")
            writer.add(title, "# ")
            authors = _authors(info)
            writer.add(", ".join(authors), "By ")
            writer.add(next((_text(d) for d in _children(info, "date")), ""), "Date: ")
            for annotation in _children(info, "annotation"):
                writer.flow(annotation, 2)
    heads = len(writer.blocks)
    for body in _children(root, "body"):
        if body.get("name") in ("notes", "comments"):
            writer.add("Notes", "## ")
            writer.flow(body, 2)
        else:
            writer.flow(body, 1)
    if len(writer.blocks) == heads:
        raise lost_in_mending(name, warnings) or BlankDocumentError(
            f"{name}: a FictionBook with no text in its body: nothing to index"
        )
    text = "\n\n".join(writer.blocks)
    return ParsedDocument("fb2", [Segment(text)], parser="fictionbook", warnings=warnings)
