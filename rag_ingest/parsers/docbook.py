"""DocBook documents (4.x by their DOCTYPE, 5.x by their namespace; ``.docbook``,
``.dbk`` or ``.xml``): the source of GNOME's and KDE's manuals and of many a project's
documentation. Read as Markdown from their XML: a heading for each titled chapter,
section or entry, by its depth; paragraphs, lists, procedures, tables, program listings
as code blocks, admonitions, footnotes inline. The book's front matter (authors,
copyright, legal notices, revision history), index terms and remarks are left out.
Read as text, one had been its tags.

Mallard pages (``.page``, GNOME's help since 3.0) are read the same way, their elements
first renamed to DocBook's (a ``p`` a ``para``, ``steps`` an ordered list, ``terms`` a
variable list, ``tr``/``td`` a table's rows and entries).

An entity its DTD defines outside the file (KDE's ``&kde;``, ``&kappname;``) is not
fetched: it reads as its name.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import (
    XML_ERRORS,
    ParsedDocument,
    Segment,
    lost_in_mending,
    markdown_table,
    recovered_xml,
)

__all__ = ["parse_docbook"]

_NS = re.compile(r"^\{(?:http://docbook\.org/ns/docbook|http://projectmallard\.org/1\.0/)\}")
_MALLARD = "{http://projectmallard.org/1.0/}"
# A Mallard element -> the DocBook one read the same way ("" for one left out: links to
# other pages, a page's media).
_FROM_MALLARD = {"page": "section", "p": "para", "list": "itemizedlist",
                 "steps": "orderedlist", "tree": "itemizedlist", "item": "listitem",
                 "tr": "row", "td": "entry", "th": "entry", "keyseq": "keycombo",
                 "guiseq": "menuchoice", "code": "screen", "quote": "blockquote",
                 "links": "", "media": "", "synopsis": "sidebar"}  # fmt: skip
_TITLED = {"book", "part", "chapter", "appendix", "preface", "article", "section", "sect1",
           "refsynopsisdiv",
           "sect2", "sect3", "sect4", "sect5", "simplesect", "refentry", "refsection",
           "refsect1", "refsect2", "refsect3", "glossary", "bibliography", "reference",
           "colophon", "partintro", "dedication", "acknowledgements"}  # fmt: skip
# Front matter (an *info element: read for its abstract alone), and what is not text.
_LEFT_OUT = {"indexterm", "remark", "toc", "index", "lot", "titleabbrev", "subtitle",
             "refmeta", "legalnotice", "revhistory", "authorgroup", "copyright",
             "comment"}  # fmt: skip
# Inline groups whose parts have no space between them: a menu path, a key combination.
_JOINED = {"menuchoice": " > ", "keycombo": "+"}
_VERBATIM = {"programlisting", "screen", "literallayout", "synopsis"}
_LISTS = {"itemizedlist", "orderedlist", "procedure", "substeps", "simplelist", "stepalternatives"}
_ADMONITIONS = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important",
                "caution": "Caution"}  # fmt: skip
# The XML's own entities, which its parser knows.
_PREDEFINED = {"lt", "gt", "amp", "quot", "apos"}
_ENTITY = re.compile(r"&([A-Za-z_][\w.-]*);")
_ENTITY_BYTES = re.compile(rb"&([A-Za-z_][\w.-]*);")
_DEFINED = re.compile(rb"<!ENTITY\s+([A-Za-z_][\w.-]*)")


def parse_docbook(path: str, name: str) -> ParsedDocument:
    """One segment of Markdown."""
    with open(path, "rb") as f:
        data = f.read()
    warnings: list[str] = []
    try:
        root = _root(data)
    except XML_ERRORS as exc:
        data, warning = recovered_xml(_undefined_named(data), name, exc)
        root = _root(data)
        warnings.append(warning)
    mallard = root.tag.startswith(_MALLARD)
    blocks: list[str] = []
    try:
        if mallard:
            _as_docbook(root)
        _Writer().block(root, 1, blocks)
    except RecursionError:
        raise CorruptDocumentError(f"{name}: its XML nests too deeply to read") from None
    markdown = "\n\n".join(b for b in blocks if b)
    kind = "mallard" if mallard else "docbook"
    if not markdown:
        blank = BlankDocumentError(f"{name}: a {kind} document without text: nothing to index")
        raise lost_in_mending(name, warnings) or blank
    return ParsedDocument(kind, [Segment(markdown)], parser=kind, warnings=warnings)


def _undefined_named(data: bytes) -> bytes:
    """Each entity the file does not define written as its name, as :func:`_root` reads
    it: lxml's recovering parser drops them."""
    defined = set(_DEFINED.findall(data)) | {e.encode() for e in _PREDEFINED}
    return _ENTITY_BYTES.sub(lambda m: m[0] if m[1] in defined else m[1], data)


def _root(data: bytes) -> ElementTree.Element:
    parser = ElementTree.XMLParser()
    # Consulted only for an entity the file does not define (expat expands its own).
    for entity in set(_ENTITY.findall(data.decode("utf-8", errors="replace"))) - _PREDEFINED:
        parser.entity[entity] = entity
    parser.feed(data)
    root: ElementTree.Element = parser.close()
    return root


def _as_docbook(root: ElementTree.Element) -> None:
    """A Mallard page's elements renamed to DocBook's; a term list's items made
    variable list entries (their titles the terms)."""
    for element in list(root.iter()):  # the tree changes as it is walked
        tag = _tag(element)
        if tag == "terms":
            element.tag = "variablelist"
            for item in list(element):
                item.tag = "varlistentry"
                body = ElementTree.SubElement(item, "listitem")
                for child in [c for c in item if c is not body]:
                    if _tag(child) == "title":
                        child.tag = "term"
                    else:
                        item.remove(child)
                        body.append(child)
        elif tag in _FROM_MALLARD:
            element.tag = _FROM_MALLARD[tag] or "comment"  # "comment": left out


def _tag(element: ElementTree.Element) -> str:
    return _NS.sub("", element.tag) if isinstance(element.tag, str) else ""


def _title(element: ElementTree.Element) -> str:
    """An element's title: its own, or its info's (``<info>``, ``<chapterinfo>``...); a
    manual page's, its name and section (``csv2ods(1)``)."""
    for child in element:
        if _tag(child) == "title":
            return _flat(child)
        if _tag(child) == "refmeta":
            name = next((_flat(c) for c in child if _tag(c) == "refentrytitle"), "")
            section = next((_flat(c) for c in child if _tag(c) == "manvolnum"), "")
            if name:
                return f"{name}({section})" if section else name
    for child in element:
        if _tag(child).endswith("info"):
            found = next((c for c in child if _tag(c) == "title"), None)
            if found is not None:
                return _flat(found)
    return ""


def _flat(element: ElementTree.Element) -> str:
    """An element's text on one line, footnotes inline, left-out parts out."""
    parts = [element.text or ""]
    for child in element:
        tag = _tag(child)
        if tag == "footnote":
            note = " ".join(_flat(p) for p in child)
            parts.append(f" (note: {' '.join(note.split())})")
        elif tag in _JOINED:  # its parts, elements or text ("Ctrl+number")
            keys = [child.text or "", *(p for c in child for p in (_flat(c), c.tail or ""))]
            parts.append(_JOINED[tag].join(k.strip() for k in keys if k.strip()))
        elif tag not in _LEFT_OUT and not tag.endswith("info"):
            parts.append(_flat(child))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


class _Writer:
    def blocks(self, element: ElementTree.Element, depth: int) -> list[str]:
        """The Markdown blocks of ``element``'s children; a titled child's heading at
        ``depth``."""
        out: list[str] = []
        for child in element:
            self.block(child, depth, out)
        return out

    def block(self, element: ElementTree.Element, depth: int, out: list[str]) -> None:
        """Append ``element``'s Markdown blocks to ``out``."""
        tag = _tag(element)
        if not tag or tag in _LEFT_OUT or tag == "title":  # a title: its container's
            return
        if tag.endswith("info"):  # bookinfo, info...: its abstract alone
            for abstract in (c for c in element if _tag(c) == "abstract"):
                out += self.blocks(abstract, depth)
            return
        title = _title(element)
        if tag in _TITLED:
            if title:
                out.append(f"{'#' * min(depth, 6)} {title}")
            out += self.blocks(element, depth + 1)
            return
        if title:  # a table's, an example's, a procedure's
            out.append(f"**{title}**")
        if tag == "refnamediv":  # a manual page's names, then what it is for
            names = ", ".join(_flat(c) for c in element if _tag(c) == "refname")
            purpose = " ".join(_flat(c) for c in element if _tag(c) == "refpurpose")
            out.append(" \u2014 ".join(p for p in (names, purpose) if p))
        elif tag == "cmdsynopsis":  # a command's arguments, on one line
            out.append(f"```\n{_flat(element)}\n```")
        elif tag in _VERBATIM:
            code = "".join(element.itertext()).strip("\n")
            if code.strip():
                out.append(f"```\n{code}\n```")
        elif tag in _LISTS:
            items = [c for c in element if _tag(c) in ("listitem", "step", "member")]
            numbered = tag != "itemizedlist" and tag != "simplelist"
            lines = []
            for number, item in enumerate(items, start=1):
                lead = f"{number}. " if numbered else "- "
                inner = self.blocks(item, depth) or [_flat(item)]
                joined = "\n".join(b for b in inner if b).replace("\n", "\n" + " " * len(lead))
                lines.append(f"{lead}{joined}")
            if lines:
                out.append("\n".join(lines))
        elif tag == "variablelist":
            entries = []
            for entry in element:
                if _tag(entry) != "varlistentry":
                    continue
                terms = ", ".join(_flat(t) for t in entry if _tag(t) == "term")
                body = " ".join(
                    " ".join(self.blocks(i, depth)) for i in entry if _tag(i) == "listitem"
                )
                entries.append(f"- **{terms}**: {' '.join(body.split())}".rstrip(": "))
            if entries:
                out.append("\n".join(entries))
        elif tag in ("table", "informaltable"):
            grid = [
                [_flat(cell).replace("|", "\\|") for cell in row if _tag(cell) == "entry"]
                for row in element.iter()
                if _tag(row) == "row"
            ]
            out.append(markdown_table([cells for cells in grid if any(cells)]))
        elif tag in _ADMONITIONS:
            said = " ".join(self.blocks(element, depth)) or _flat(element)
            out.append(f"{_ADMONITIONS[tag]}: {said}")
        elif tag in ("para", "simpara", "term", "phrase"):
            if any(_tag(c) in _LISTS | _VERBATIM | {"table", "informaltable"} for c in element):
                lead = element.text or ""  # a list inside a paragraph: its own block
                if lead.strip():
                    out.append(" ".join(lead.split()))
                out += self.blocks(element, depth)
            elif text := _flat(element):
                out.append(text)
        elif len(element):
            out += self.blocks(element, depth)  # formalpara, figure, example, qandaset...
        elif text := _flat(element):
            out.append(text)
