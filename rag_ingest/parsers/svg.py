"""SVG drawings (``.svg``): the words a drawing shows, a line each in the order the file
holds them: its ``<text>`` elements (with their ``<tspan>`` and ``<textPath>`` parts)
and the HTML labels draw.io and others put in a ``<foreignObject>``, under the drawing's
own ``<title>``. A gzipped drawing (``.svgz``) is unpacked first (parsers/compressed.py).
Path data, styles, scripts and metadata are never text; a drawing with no words (an
icon, a logo, text drawn as paths) has nothing to index.

Skipped by name before: of 300 SVG files sampled on this machine, 45 (diagrams of Rust's
documentation, most drawn by Graphviz) held their labels as text.
"""

from __future__ import annotations

import html.entities
import re
from xml.etree import ElementTree

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import (
    XML_ERRORS,
    ParsedDocument,
    Segment,
    local_name,
    lost_in_mending,
    recovered_xml,
)

__all__ = ["parse_svg"]

# Elements whose words are read, whole; no other element's text is (a style's, a
# script's, a title inside the drawing: Graphviz names each node there by its ID).
_WORDS = frozenset({"text", "foreignObject"})


# Parts that start a line of their own, so a word is never run into the last line's:
# in a <text>, a <tspan> placed at its own x or y (a label's second line; one moved by
# dx or dy only is a kern or a superscript, within the line; one placed further along
# the same line is the next piece of its words, see _further); in an HTML label, a block
# or a line break.
_BREAKS = frozenset({"br", "div", "p", "li", "tr", "td", "th", "h1", "h2", "h3", "h4"})


def _breaks(element: ElementTree.Element) -> bool:
    tag = local_name(element.tag)
    if tag in ("tspan", "textPath"):
        return "x" in element.attrib or "y" in element.attrib
    return tag in _BREAKS


def _coordinate(value: str | None) -> float | None:
    """The first of an x or y attribute's values (``12.5``, ``"576.4px 603.1px"``), or
    None when absent or not a plain length."""
    first = (value or "").replace(",", " ").split()[:1]
    try:
        return float(first[0].removesuffix("px")) if first else None
    except ValueError:
        return None


def _further(part: ElementTree.Element, at: list[float]) -> bool:
    """Whether a part placed at its own x is further along the line it is on
    (``at``: the last part's x and y, updated): the next run of a word that a drawing
    tool placed by pieces (Illustrator kerns ``Re``, ``qu``, ``ests`` at x 0, 261.9,
    519.5 on y 0), not a line of its own."""
    x, y = _coordinate(part.get("x")), _coordinate(part.get("y"))
    if x is None:
        return False
    further = x > at[0] and (y is None or y == at[1]) and not _coordinate(part.get("dy"))
    at[0], at[1] = x, at[1] if y is None else y
    return further


def _line(element: ElementTree.Element) -> str:
    """An element's words as the drawing shows them: its parts' text run together, as
    SVG renders ``Hel<tspan>lo</tspan>``, with a space where a part starts a line."""
    parts: list[str] = [element.text or ""]
    at = [_coordinate(element.get("x")) or 0.0, _coordinate(element.get("y")) or 0.0]
    # Depth first without recursion: (element, whether its children are done).
    todo: list[tuple[ElementTree.Element, bool]] = [(e, False) for e in reversed(element)]
    while todo:
        part, done = todo.pop()
        if done:
            parts.append(part.tail or "")
            continue
        if _breaks(part) and not _further(part, at):
            parts.append(" ")
        parts.append(part.text or "")
        todo.append((part, True))
        todo.extend((e, False) for e in reversed(part))
    return " ".join("".join(parts).split())


_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_BARE_AMPERSAND = re.compile(rb"&(?![A-Za-z_][\w.-]*;|#[0-9]+;|#x[0-9A-Fa-f]+;)")
_DEFINED = re.compile(rb"<!ENTITY\s+([A-Za-z_][\w.-]*)")


def _entities_mended(data: bytes) -> bytes:
    """``data`` with each HTML entity it uses and does not define (``&nbsp;``,
    ``&copy;``: a label pasted from a web page) as the character it stands for, and a
    bare ``&`` (``R&D``) escaped: the recovering parser would drop both."""
    defined = set(_DEFINED.findall(data))

    def numbered(match: re.Match[bytes]) -> bytes:
        point = html.entities.name2codepoint.get(match[1].decode())
        if point is None or match[1] in defined:
            return match[0]
        return b"&#%d;" % point

    return _ENTITY.sub(numbered, _BARE_AMPERSAND.sub(b"&amp;", data))


def parse_svg(path: str, name: str) -> ParsedDocument:
    """An SVG drawing's words as one segment, under its title. One that is not well
    formed (hand-edited, cut short) is read as far as it can be mended, said."""
    with open(path, "rb") as f:
        data = f.read()
    warnings: list[str] = []
    try:
        root = ElementTree.fromstring(data)  # expat 2.4+ refuses entity bombs
    except XML_ERRORS as exc:
        # A hand-edited label, an export cut short: the words before the damage at
        # least, as Chrome draws them. An entity bomb expat refused is mended without
        # its entities.
        data, warning = recovered_xml(_entities_mended(data), name, exc)
        root = ElementTree.fromstring(data)
        warnings.append(warning)
    if local_name(root.tag) != "svg":
        raise CorruptDocumentError(
            f"{name}: not an SVG drawing (its root is <{local_name(root.tag)}>)"
        )
    lines: list[str] = []
    # Depth first, in the file's order, without recursion (groups nest deeply).
    todo = list(reversed(root))
    while todo:
        element = todo.pop()
        tag = local_name(element.tag)
        if tag in _WORDS:
            line = _line(element)
            # A label drawn twice in a row (draw.io's HTML label and its fallback text).
            if line and (not lines or lines[-1] != line):
                lines.append(line)
        else:
            todo.extend(reversed(element))
    if not lines:
        # Skipped, as images were by name before: a docs tree's icons are not failures.
        blank = BlankDocumentError(f"{name}: no words in the drawing: nothing to index")
        raise lost_in_mending(name, warnings) or blank
    title = next((_line(e) for e in root if local_name(e.tag) == "title"), "")
    text = "\n".join([f"# {title}", "", *lines] if title else lines)
    return ParsedDocument("svg", [Segment(text)], parser="svg-xml", warnings=warnings)
