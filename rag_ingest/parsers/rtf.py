"""Rich Text Format as plain text (striprtf): read as text, an RTF file is its control
words, font tables and escapes (``{\\rtf1\\ansi{\\fonttbl...}\\f0\\fs24 ...}``)."""

from __future__ import annotations

from rag_ingest.errors import BlankDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["parse_rtf"]


def parse_rtf(path: str, name: str) -> ParsedDocument:
    from striprtf.striprtf import rtf_to_text

    with open(path, "rb") as f:
        # RTF is 7-bit: anything else arrives as \'hh and \uN escapes, which
        # rtf_to_text decodes in the document's own code page.
        markup = f.read().decode("latin-1")
    converted: str = rtf_to_text(markup, errors="replace")  # type: ignore[no-untyped-call]
    text = converted.replace("\r\n", "\n").strip()
    if not text:
        if "\\pict" in markup:  # its pictures may hold the text (a scan)
            raise EmptyDocumentError(f"{name}: an RTF file without text besides its pictures")
        raise BlankDocumentError(f"{name}: an RTF file without text: nothing to index")
    return ParsedDocument(file_type="rtf", segments=[Segment(text)], parser="striprtf")
