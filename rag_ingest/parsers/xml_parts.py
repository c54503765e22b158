"""An Office package's XML part as an lxml tree, and written back as Office writes it."""

from __future__ import annotations

from typing import Any

__all__ = ["tree", "written"]


def tree(part: bytes) -> Any:
    """The part's tree; None when it is not well formed (left for its reader to refuse
    or to mend, as it would have been)."""
    from lxml import etree

    try:
        return etree.fromstring(part, etree.XMLParser(resolve_entities=False, huge_tree=True))
    except etree.XMLSyntaxError:
        return None


def written(root: Any) -> bytes:
    """A DOCX or PPTX part's tree written out, with the declaration Office writes."""
    from lxml import etree

    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))
