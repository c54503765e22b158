"""A picture's alternative text, read where the picture stands.

The text an author writes for a reader who cannot see a picture ("Sales by region,
2023: the north doubled") is often the only words a chart, a scanned signature or a
diagram has. docling reads none of it in a DOCX or a PPTX, and the ODF reader had left
it out too: a report's figures were silent. Office and LibreOffice also fill it in by
themselves (a file's name or path, "Description automatically generated", "chart"):
that is not the author's and is left out.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from rag_ingest.parsers.xml_parts import tree, written

__all__ = [
    "alt_text",
    "drawing_alt",
    "first_of_running",
    "slide_alt_texts",
    "word_alt_texts",
]

# Word 2003's converter put "Description: " before what the .doc had.
_CONVERTED = re.compile(r"^\s*Description:\s*", re.IGNORECASE)
# Office's own alt text ends in a paragraph saying it made it ("A picture containing
# chart\n\nDescription automatically generated", "...\n\nAutomatisch generierte
# Beschreibung", "...\n\nAutomatikusan generált leírás"): that paragraph is dropped.
_GENERATED_NOTE = re.compile(
    r"\n\s*\n[^\n]{0,80}(?:autom|автомат|自動|自动|자동)[^\n]{0,80}\s*$", re.IGNORECASE
)
# A value that is a file's name, path or link: what Word 2007-2010 wrote for a picture
# inserted from a file, and what many tools still write ("Ian H. 2.JPG"); a sentence
# that ends in one ("The dialog, saved as settings.png") is the author's.
_FILE = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://\S+|[a-z]:\\.*|\\\\.*|(?:\S+ ){0,3}\S*\.(?:png|jpe?g|jfif|gif|"
    r"bmp|dib|tiff?|emf|wmf|svgz?|webp|ico|pcx|pict?|wdp|hdp|heic))",
    re.IGNORECASE | re.DOTALL,
)
# What an editor writes for a picture, chart or object by itself: a type's name
# (LibreOffice's "OLE-object", "chart", "formula"), a placeholder, or a shape's default
# name in a few languages ("Graphic 1", "Grafik 2", "Imagen 3"), a generator's
# "Inserted picture RelID:1".
_GENERIC = re.compile(
    r"(?:chart|descr|description|diagram|diagramm|embedded object: ole object|formula|"
    r"ole[ -]object|ole[ -]objekt|formel|fórmula|picture|image|graphic|grafik|bild|imagen|"
    r"immagine|afbeelding|obraz|рисунок|図|그림|图片|shape|text ?box|object|objekt)\s*\d*|"
    r"inserted (?:picture|image)\b.*",
    re.IGNORECASE,
)


def alt_text(title: str | None, description: str | None, shown: str = "") -> str:
    """A picture's alternative text from its title and description, on one line; "" for
    none, or for what an editor wrote by itself (a file's name, a generic word, Office's
    generated note's paragraph). A part the picture's own ``shown`` text holds (a text
    frame described by its text) is left out too."""
    parts: list[str] = []
    for value in (title, description):
        text = _GENERATED_NOTE.sub("", _CONVERTED.sub("", value or ""))
        text = " ".join(text.split())
        if not text or _GENERIC.fullmatch(text) or _FILE.fullmatch(text) or text in shown:
            continue
        if parts and (text.lower() in parts[0].lower() or parts[0].lower() in text.lower()):
            parts = [max(parts[0], text, key=len)]
        else:
            parts.append(text)
    return ": ".join(parts)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
_PIC = "{http://schemas.openxmlformats.org/drawingml/2006/picture}"
_VML = "{urn:schemas-microsoft-com:vml}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
# Parts worth parsing: those where some element has a description, title or alt.
_ANY_ALT = re.compile(rb'\s(?:descr|title|alt)="[^"]')


def _shown(properties: Any) -> bool:
    """Whether a drawing's properties (``wp:docPr``, ``pic:cNvPr``, ``p:cNvPr``) are of
    a picture a reader sees: not hidden, not marked decorative (Office 365)."""
    if properties.get("hidden") in ("1", "true"):
        return False
    return not any(
        isinstance(element.tag, str)
        and element.tag.endswith("}decorative")
        and element.get("val") in ("1", "true")
        for element in properties.iter()
    )


def drawing_alt(properties: Any) -> str:
    """The alternative text of a DrawingML object's properties (``cNvPr``, ``docPr``);
    "" for a hidden or decorative one's."""
    return alt_text(properties.get("title"), properties.get("descr")) if _shown(properties) else ""


def _added(texts: list[str], text: str) -> None:
    """``texts`` with ``text``, unless one of them holds it (Word writes a picture's
    description on its drawing and again on the picture); one it holds is replaced."""
    for at, held in enumerate(texts):
        if text in held:
            return
        if held in text:
            texts[at] = text
            return
    texts.append(text)


def word_alt_texts(part: bytes) -> bytes:
    """A WordprocessingML part with each picture's (or chart's, or shape's) alternative
    text in a run of its own after the run drawing it; the part as it was with none.
    A drawing's and its VML fallback's (``mc:AlternateContent``) are one text."""
    if not _ANY_ALT.search(part):
        return part
    root = tree(part)
    if root is None:
        return part
    by_run: dict[Any, list[str]] = {}
    for element in root.iter(f"{_WP}docPr", f"{_PIC}cNvPr", f"{_VML}shape"):
        if element.tag == f"{_VML}shape":
            text = alt_text(None, element.get("alt"))
        else:
            drawing = next(element.iterancestors(f"{_WP}inline", f"{_WP}anchor"), None)
            frame = None if drawing is None else drawing.find(f"{_WP}docPr")
            text = drawing_alt(element) if frame is None or _shown(frame) else ""
        run = next(element.iterancestors(f"{_W}r"), None)
        if text and run is not None:
            _added(by_run.setdefault(run, []), text)
    for run, texts in by_run.items():
        added = run.makeelement(f"{_W}r", {})
        shown = added.makeelement(f"{_W}t", {_XML_SPACE: "preserve"})
        shown.text = _spaced(run, " ".join(texts))
        added.append(shown)
        run.addnext(added)
    return written(root) if by_run else part


def _spaced(run: Any, text: str) -> str:
    """``text`` with a space on each side where the words of the run's paragraph around
    it have none: "rose [chart] in March" reads "rose <text> in March"."""
    paragraph = next(run.iterancestors(f"{_W}p"), None)
    if paragraph is None:
        return f" {text} "
    before: list[str] = []
    after: list[str] = []
    side = before
    for element in paragraph.iter(f"{_W}t", f"{_W}r"):
        if element is run:
            side = after
        elif element.tag != f"{_W}t" or not element.text:
            continue
        elif element.getparent() is run:  # the run's own text: the alt text follows it
            before.append(element.text)
        elif run not in element.iterancestors():  # not a text box's in its drawing
            side.append(element.text)
    lead = " " if before and not before[-1][-1:].isspace() else ""
    trail = " " if after and not after[0][:1].isspace() else ""
    return f"{lead}{text}{trail}"


def _slide_pictures(root: Any) -> list[tuple[Any, str]]:
    """A slide's pictures with alternative text, and that text."""
    return [
        (picture, text)
        for picture in root.iter(f"{_P}pic")
        if (properties := picture.find(f"{_P}nvPicPr/{_P}cNvPr")) is not None
        and (text := drawing_alt(properties))
    ]


# An alternative text on this many pages or slides or more is a running one (a logo's).
RUNNING = 3


def first_of_running(texts: list[list[str]]) -> list[list[str]]:
    """Each page's or slide's alternative texts (in order, each once), with a running one
    (on ``RUNNING`` of them or more: a logo's "Company logo") kept on its first only: on
    each, it was a list of its own in every chunk."""
    on = Counter(text for group in texts for text in group)
    said: set[str] = set()
    kept: list[list[str]] = []
    for group in texts:
        kept.append([])
        for text in group:
            if on[text] >= RUNNING:
                if text in said:
                    continue
                said.add(text)
            kept[-1].append(text)
    return kept


def slide_alt_texts(slides: list[bytes]) -> list[bytes]:
    """A deck's slides, in slide order, with each picture's alternative text in a text
    box of its own, placed where the picture is (docling reads a slide's shapes by their
    position); a slide with none as it was. Each text is read once a slide, and a
    running one on its first slide only (:func:`first_of_running`)."""
    roots = [tree(part) if _ANY_ALT.search(part) else None for part in slides]
    pictures: list[list[tuple[Any, str]]] = []
    for root in roots:
        pictures.append([])
        for picture, text in _slide_pictures(root) if root is not None else ():
            if all(text != listed for _, listed in pictures[-1]):  # once a slide
                pictures[-1].append((picture, text))
    kept = first_of_running([[text for _, text in found] for found in pictures])
    return [
        _boxed(root, [(p, t) for p, t in found if t in texts]) if texts else part
        for part, root, found, texts in zip(slides, roots, pictures, kept, strict=True)
    ]


def _boxed(root: Any, pictures: list[tuple[Any, str]]) -> bytes:
    """A slide with a text box of each picture's alternative text after the picture."""
    ids = [int(i) for i in root.xpath("//@id") if str(i).isdigit()]
    next_id = max(ids, default=0) + 1
    for picture, text in pictures:
        box = picture.makeelement(f"{_P}sp", {})
        names = _sub(box, f"{_P}nvSpPr")
        _sub(names, f"{_P}cNvPr", id=str(next_id), name=f"Alt text {next_id}")
        _sub(names, f"{_P}cNvSpPr", txBox="1")
        _sub(names, f"{_P}nvPr")
        shape = _sub(box, f"{_P}spPr")
        place = picture.find(f"{_P}spPr/{_A}xfrm")
        if place is not None:
            shape.append(_copy(place))
        body = _sub(box, f"{_P}txBody")
        _sub(body, f"{_A}bodyPr")
        _sub(_sub(_sub(body, f"{_A}p"), f"{_A}r"), f"{_A}t").text = text
        picture.addnext(box)
        next_id += 1
    return written(root)


def _sub(parent: Any, tag: str, **attributes: str) -> Any:
    child = parent.makeelement(tag, attributes)
    parent.append(child)
    return child


def _copy(element: Any) -> Any:
    from copy import deepcopy

    return deepcopy(element)
