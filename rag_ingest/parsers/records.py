"""JSON, JSON Lines, YAML and XML that hold records (a list of objects: an API export, a
ticket dump, a log of events, an Ansible task list, a stream of Kubernetes manifests,
an RSS feed's items, a data dump's rows)
as one Markdown block per record: ``key: value`` lines under a heading that says where
it is (``## items[12]``). Split as text, a record's lines ran into the next chunk
without its id; as blocks, a chunk holds whole records, and a record too long for one
keeps its heading in the chunk's ``heading_path``.

Anything else (a config, a schema, YAML with anchors) is left to the text parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rag_ingest.parsers.base import XML_ERRORS, ParsedDocument, Segment, local_name
from rag_ingest.parsers.text import decode_text

__all__ = ["parse_records"]

# Lines of a record, at most: a record holding a huge nested list is cut there (said so).
_MAX_LINES = 2000
# Nested objects are flattened to this depth; deeper ones are written as compact JSON.
_MAX_DEPTH = 6
# YAML past this many characters is left as text: loading it costs ~1.7 s a MB even
# with libyaml (measured, a 3.8 MB task list: 6.4 s; 17.5 s without libyaml).
_MAX_YAML = 4 * 1024 * 1024
# XML past this many characters is read as a stream, for records under its root only
# (_xml_stream): a tree and its objects grow with the document (a 30 MB dump's: +118 MB;
# the stream's stay flat: +14 MB on a 60 MB one).
_MAX_XML = 32 * 1024 * 1024


def parse_records(
    path: str, name: str, yaml: bool = False, xml: bool = False
) -> ParsedDocument | None:
    """The records in a JSON or JSON Lines (or, with ``yaml``, YAML; with ``xml``, XML)
    file, or None when it holds none."""
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    if xml and len(text) > _MAX_XML:
        streamed = _xml_stream(text)
        if streamed is None:
            return None
        blocks, cut = streamed
    else:
        found = _xml_records(text) if xml else _yaml_records(text) if yaml else _records(text)
        if found is None:
            return None
        where, records, rest = found
        blocks = ["\n".join(_lines(rest))] if rest else []
        strays = sum(isinstance(r, _NotJson) for r in records)
        if strays:
            warnings.append(f"{strays} line(s) not a JSON object, kept as written")
        cut = 0
        for index, record in enumerate(records):
            if isinstance(record, _NotJson):
                blocks.append(f"## {where}[{index}]\n{record}")
                continue
            block, was_cut = _block(where, index, record)
            blocks.append(block)
            cut += was_cut
    if cut:
        warnings.append(f"{cut} record(s) cut at {_MAX_LINES} lines")
    kind = "xml" if xml else "yaml" if yaml else "json"
    return ParsedDocument(
        kind,
        [Segment("\n\n".join(blocks))],
        parser=f"{kind}-records[{encoding}]",
        warnings=warnings,
    )


def _block(where: str, index: int, record: Any) -> tuple[str, bool]:
    """A record's block under its heading, and whether it was cut at :data:`_MAX_LINES`."""
    lines = _lines(record)
    return f"## {where}[{index}]\n" + "\n".join(lines[:_MAX_LINES]), len(lines) > _MAX_LINES


def _commented(text: str) -> bool:
    """Whether XML explains itself in comments (a config): they are not in the tree."""
    return sum(len(c) for c in re.findall(r"<!--.*?-->", text, re.DOTALL)) > 0.01 * len(text)


def _records(text: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    """``(where, records, rest)``: the records, where they are (``""`` for a top-level
    list, else the key holding them), and the rest of a top-level object."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nested past the parser's depth: as text
        return _json_lines(text) or _concatenated(text)
    return _found(value)


def _concatenated(text: str) -> tuple[str, list[Any], dict[str, Any]] | None:
    """Objects one after another with nothing between them (``{...}{...}``, as Kinesis
    Firehose delivers records to S3), or None."""
    decode = json.JSONDecoder().raw_decode
    records: list[Any] = []
    at = 0
    try:
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                break
            value, at = decode(text, at)
            if not isinstance(value, dict):
                return None
            records.append(value)
    except (ValueError, RecursionError):
        return None
    return ("", records, {}) if records else None


def _found(
    value: Any, path: bool = True
) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    """:func:`_in` of ``value``, or up to three levels down through its largest value
    when that is most of it (``{"hits": {"total": 9, "hits": [...]}}``, a GraphQL
    answer's ``data.repository.issues.nodes``, an XML root's one child), what is beside
    them on the way in the rest. ``path``: the keys on the way kept, in ``where`` and
    the rest's keys (a config's ``waiters.Ready.acceptors``: the key naming the thing
    the records belong to is data); an XML document's element names on the way (its
    root, an RSS feed's ``channel``) are not."""
    above: dict[str, Any] = {}
    prefix = ""
    for _ in range(4):
        found = _in(value)
        if found is not None:
            where, records, rest = found
            rest = {f"{prefix}{k}": v for k, v in rest.items()}
            return f"{prefix}{where}", records, {**above, **rest}
        if not isinstance(value, dict) or not value:
            return None
        sizes = {k: _size(v) for k, v in value.items()}
        key = max(sizes, key=sizes.__getitem__)
        others = {k: v for k, v in value.items() if k != key}
        if not isinstance(value[key], dict) or sizes[key] < 4 * _size(others):
            return None
        above.update({f"{prefix}{k}": v for k, v in others.items()})
        prefix = f"{prefix}{key}." if path else ""
        value = value[key]
    return None


def _in(value: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    if _is_records(value):
        return "", value, {}
    if isinstance(value, dict):
        # {"total": 120, "items": [...]}: the largest list of objects is the records,
        # when it is most of the document (an OpenAPI spec's short list of tags is not).
        lists = [k for k, v in value.items() if _is_records(v)]
        if lists:
            key = max(lists, key=lambda k: len(value[k]))
            rest = {k: v for k, v in value.items() if k != key}
            if _size(value[key]) >= 4 * _size(rest):
                return key, value[key], rest
    return None


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _yaml_records(text: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    """A stream of two or more mappings (``---`` between them: Kubernetes manifests), or
    one document holding records as JSON would. Past :data:`_MAX_YAML`, or with an
    alias (a few nested ones expand to billions of nodes: "billion laughs"), None."""
    import yaml

    if len(text) > _MAX_YAML:
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~2.5x faster
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=loader)):
            return None
        documents = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    except (yaml.YAMLError, ValueError):
        return None
    if len(documents) >= 2 and all(isinstance(d, dict) for d in documents):
        return "", documents, {}
    return _found(documents[0]) if len(documents) == 1 else None


def _xml_records(text: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    """XML that holds records (a feed's items, a data dump's rows, a wiki export's
    pages): elements of one name that are most of the document, each an object of its
    attributes and child elements, found under the root and up to three levels down
    through its largest element; what is beside them on the way, the rest (XML past
    :data:`_MAX_XML` is read by :func:`_xml_stream`). None for XML that does not parse,
    for XML with comments (not in the tree: a config's explanations), and for a document
    of prose (text between elements: XHTML, DocBook), whose inline markup an object
    would lose."""
    import xml.etree.ElementTree as ElementTree  # expat 2.4+ refuses entity bombs

    if _commented(text):
        return None
    try:
        root = ElementTree.fromstring(text)
    except XML_ERRORS:
        return None
    if any((element.tail or "").strip() for element in root.iter()):
        return None
    try:
        return _found({local_name(root.tag): _xml_value(root)}, path=False)
    except RecursionError:  # nested past any record: read as text
        return None


def _xml_stream(text: str) -> tuple[list[str], int] | None:
    """The blocks of XML past :data:`_MAX_XML` whose root's children are records (a Stack
    Exchange dump's rows, a wiki export's pages), read as a stream, each child let go
    once read, so memory does not grow with the document. The records are the children
    of the name that is most of the document, what is beside them first; with how many
    records were cut at :data:`_MAX_LINES` lines. None as :func:`_xml_records` says."""
    import xml.etree.ElementTree as ElementTree

    if _commented(text):
        return None
    parser: Any = ElementTree.XMLPullParser(events=("start", "end"))
    by_name: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    root: Any = None
    depth = cut = 0
    try:
        for at in range(0, len(text), 1 << 20):
            parser.feed(text[at : at + (1 << 20)])
            for event, element in parser.read_events():
                if event == "start":
                    depth += 1
                    root = element if root is None else root
                    continue
                depth -= 1
                if (element.tail or "").strip():
                    return None  # words between elements: prose
                if depth != 1:
                    continue
                name = local_name(element.tag)
                found = by_name.setdefault(name, [])
                try:
                    block, was_cut = _block(name, len(found), _xml_value(element))
                except RecursionError:  # nested past any record: read as text
                    return None
                found.append(block)
                cut += was_cut
                sizes[name] = sizes.get(name, 0) + len(block)
                root.remove(element)
        parser.close()
    except XML_ERRORS:
        return None
    if not sizes:
        return None
    where = max(sizes, key=lambda k: sizes[k])
    rest = sum(sizes.values()) - sizes[where]
    if len(by_name[where]) < 2 or sizes[where] < 4 * rest:
        return None
    above = [f"{local_name(k)}: {v}" for k, v in root.attrib.items()]
    above += [block.split("\n", 1)[1] for k, v in by_name.items() if k != where for block in v]
    return ([("\n".join(above))] if above else []) + by_name[where], cut


def _xml_value(element: Any) -> Any:
    """An element as JSON would hold it: its text alone, or an object of its attributes,
    its children (a list where a name repeats) and its text (``text``)."""
    value: dict[str, Any] = {}
    for name, item in element.attrib.items():
        value[local_name(name) if local_name(name) not in value else name] = item  # xml:lang, lang
    repeated: set[str] = set()
    for child in element:
        key, item = local_name(child.tag), _xml_value(child)
        if key not in value:
            value[key] = item
        elif key in repeated:
            value[key].append(item)
        else:
            value[key] = [value[key], item]
            repeated.add(key)
    text = (element.text or "").strip()
    if not value:
        return text
    if text:
        value["text" if "text" not in value else "#text"] = text
    return value


class _NotJson(str):
    """A JSON Lines file's line that is not an object (a line cut short), kept as written."""


def _json_lines(text: str) -> tuple[str, list[Any], dict[str, Any]] | None:
    """JSON Lines: an object on every line that is not blank, or on nine in ten of them
    and two or more (an export's last line cut short, a stray line: each kept as written,
    a :class:`_NotJson`; before, one such line made the whole file plain text)."""
    lines = [line for line in text.splitlines() if line.strip()]
    records: list[Any] = []
    strays = 0
    for line in lines:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            strays += 1
            if strays > 0.1 * len(lines):
                return None  # a text of many lines: not read on to its end
            value = _NotJson(line)
        records.append(value)
    return ("", records, {}) if len(records) - strays >= 2 else None


def _is_records(value: Any) -> bool:
    """A list of two or more objects (a scalar or two among them, a stray null, aside)."""
    if not isinstance(value, list) or len(value) < 2:
        return False
    objects = sum(isinstance(v, dict) for v in value)
    return objects >= 2 and objects >= 0.9 * len(value)


def _lines(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return [_scalar(record)]
    lines: list[str] = []
    _flatten(record, "", 0, lines)
    return lines


def _flatten(value: dict[str, Any], prefix: str, depth: int, lines: list[str]) -> None:
    """``key.path: value`` lines; a list of scalars on one line, comma-separated; a list
    of objects item by item (``tags[0].name``)."""
    for key, item in value.items():
        path = f"{prefix}{key}"
        if len(lines) > _MAX_LINES:
            return
        if isinstance(item, dict) and item and depth < _MAX_DEPTH:
            _flatten(item, f"{path}.", depth + 1, lines)
        elif isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
            if depth >= _MAX_DEPTH:
                lines.append(f"{path}: {json.dumps(item, ensure_ascii=False, default=str)}")
                continue
            for n, element in enumerate(item):
                _flatten(element, f"{path}[{n}].", depth + 1, lines)
        elif isinstance(item, list) and not any(isinstance(v, (dict, list)) for v in item):
            lines.append(f"{path}: {', '.join(_scalar(v) for v in item) if item else '[]'}")
        elif isinstance(item, (dict, list)):
            lines.append(f"{path}: {json.dumps(item, ensure_ascii=False, default=str)}")
        else:
            lines.append(f"{path}: {_scalar(item)}")


def _indented(text: str) -> str:
    """A multi-line value's later lines indented under its key: at a line's start, a
    value's '# Steps' (Markdown in an issue's body) became a heading of the document."""
    return re.sub(r"\n(?=.)", "\n  ", text)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _indented(value.strip("\n"))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)  # true, false, null, numbers as JSON writes them
    return str(value)  # YAML's dates and timestamps
