"""SmartArt diagrams in DOCX and PPTX files: their text, as the nested list the diagram
draws (a process's steps, an org chart's people). docling reads none of it: a diagram is
a drawing to it, rendered to a picture through LibreOffice at best.

A diagram's text is in its data part (``diagrams/dataN.xml``): points (``dgm:pt``), the
document's root among them, and ``parOf`` connections (``dgm:cxn``) from each point to
its children in order. Transitions and presentation points carry no text.
"""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree

from rag_ingest.parsers.base import XML_ERRORS

__all__ = ["DIAGRAM_DATA", "diagram_markdown"]

_DGM = "{http://schemas.openxmlformats.org/drawingml/2006/diagram}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
# The relationship from a slide or a document to a diagram's data part.
DIAGRAM_DATA = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/diagramData"


def diagram_markdown(data: bytes) -> str:
    """A diagram's text as a Markdown list, children under their parents; "" if none (or
    the part cannot be read)."""
    try:
        root = ElementTree.fromstring(data)
    except XML_ERRORS:
        return ""
    texts: dict[str, str] = {}  # in the points' order
    tops: list[str] = []
    for point in root.iter(f"{_DGM}pt"):
        key, kind = point.get("modelId", ""), point.get("type", "node")
        if kind == "doc":
            tops.append(key)
        body = point.find(f"{_DGM}t")
        paragraphs = [] if body is None else body.findall(f"{_A}p")
        text = " / ".join(
            line
            for p in paragraphs
            if (line := " ".join("".join(t.text or "" for t in p.iter(f"{_A}t")).split()))
        )
        if text:
            texts[key] = text
    children: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for link in root.iter(f"{_DGM}cxn"):
        if link.get("type", "parOf") == "parOf":
            source, target = link.get("srcId", ""), link.get("destId", "")
            children[source].append((_int(link.get("srcOrd")), target))
    lines: list[str] = []
    placed: set[str] = set()

    def place(key: str, depth: int) -> None:
        if key in placed or depth > 32:
            return
        placed.add(key)
        if key in texts:
            lines.append(f"{'  ' * depth}- {texts[key]}")
            depth += 1
        for _, child in sorted(children.get(key, [])):
            place(child, depth)

    for top in tops:
        place(top, 0)
    for key in texts:  # points no connection reaches from the root
        place(key, 0)
    return "\n".join(lines)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
