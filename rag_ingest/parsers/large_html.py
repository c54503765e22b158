"""An HTML page too big for docling, converted by html-to-markdown (Rust) instead.

docling reads HTML at ~0.3 MB/s here (0.5 to 4 MB pages: 4 MB in 12.6 s; at that rate
a page past ~38 MB outlasts ``parse.timeout``'s 120 s); html-to-markdown reads the 4 MB
page in 0.4 s, a 40 MB one in 2.1 s (628 MB peak). Past
``parse.markup_fast_size`` a page is read this way, as ``parse.xlsx_stream_size`` sends
a large workbook to calamine. What docling's path adds is not done here: pictures are
not read (counted, in a warning), and of a page's chrome only its ``<nav>`` is
dropped: not all but its ``<main>``, its ``<header>``, its landmark roles.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, MissingExtraError
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["parse_large_html"]

# A Markdown link whose target is no full URL: its text kept, as docling's path keeps it
# (a relative target, "index.html" or "#_Toc123", is meaningless in a chunk).
_RELATIVE_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\((?![a-z][a-z0-9+.-]*://|mailto:)[^)\n]*\)")
_IMG = re.compile(rb"<img\b", re.IGNORECASE)


def parse_large_html(path: str, name: str, why: str) -> ParsedDocument:
    """``path``'s page as Markdown, its ``<title>`` a heading atop; ``why`` it was not
    read by docling, for a warning."""
    try:
        import html_to_markdown
    except ImportError as exc:
        raise MissingExtraError("large HTML pages (html-to-markdown)", "office") from exc
    from rag_ingest.parsers.office import decoded_html, html_title, titled

    data = Path(path).read_bytes()
    text, charset = decoded_html(data)
    options = html_to_markdown.ConversionOptions(
        extract_metadata=False,  # the title as a heading, not YAML front matter
        skip_images=True,  # <nav>, <script>, <style> it leaves out itself
    )
    try:
        markdown = html_to_markdown.convert(text, options).content or ""
    except Exception as exc:  # its errors (ConversionError, PanicError) on bad input
        raise CorruptDocumentError(f"{name}: html could not be converted ({exc})") from exc
    markdown = _RELATIVE_LINK.sub(r"\1", markdown).strip()
    title = html_title(data)
    if title and not titled(markdown, title):
        markdown = f"# {title}\n\n{markdown}"
    if not markdown.strip():
        raise BlankDocumentError(f"{name}: no text: nothing to index")
    parser = "html-to-markdown" + ("" if charset == "utf-8" else f"[{charset}]")
    parsed = ParsedDocument("html", [Segment(markdown)], parser=parser)
    parsed.warnings.append(f"{why}: read by html-to-markdown, not docling")
    pictures = len(_IMG.findall(data))
    if pictures:
        parsed.warnings.append(f"{pictures} picture(s) not read: the page is read without them")
    return parsed
