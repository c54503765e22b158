"""An HTML page too big for docling, converted by html-to-markdown (Rust) instead.

docling reads HTML at ~0.3 MB/s here (0.5 to 4 MB pages: 4 MB in 12.6 s; at that rate
a page past ~38 MB outlasts ``parse.timeout``'s 120 s); html-to-markdown reads the 4 MB
page in 0.4 s, a 40 MB one in 3.3 s (628 MB peak), its words counted against the page's.
Past ``parse.markup_fast_size`` a page is read this way, as ``parse.xlsx_stream_size``
sends a large workbook to calamine. What docling's path adds is not done here: pictures
are not read (counted, in a warning), and of a page's chrome only its navigation is
dropped: not all but its ``<main>``, its ``<header>``. A page it keeps under half the
words of (nested past ~1,000 levels) is read as its text, its tags dropped.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, MissingExtraError
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["parse_large_html"]

# A Markdown link whose target is no full URL: its text kept, as docling's path keeps it
# (a relative target, "index.html" or "#_Toc123", is meaningless in a chunk).
_RELATIVE_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\((?![a-z][a-z0-9+.-]*://|mailto:)[^)\n]*\)")
_IMG = re.compile(rb"<img\b", re.IGNORECASE)
# What a page shows, read without a tree: its comments and unshown elements out, a line
# break for each block tag, every other tag a space.
_UNSHOWN = re.compile(
    r"<!--.*?-->|<(script|style|noscript|template|head)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|tr|h[1-6]|table|ul|ol|pre|blockquote|section|article|hr|dd|dt)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
# Fewer of the page's words than this share in html-to-markdown's text: it lost some. On
# pages nested thousands deep it does: 200,000 lines each opening a <font> and a <b> kept
# 510 of them, a word inside 300,000 nested <div>s was lost. (It leaves out a page's
# navigation by more than its tag: Node.js's API pages kept 70-80% of their words.)
_KEPT = 0.5


def _shown_text(page: str) -> str:
    """The text a page shows, by its lines, its tags dropped (no tree: no depth to fail)."""
    page = _TAG.sub(" ", _BLOCK_TAG.sub("\n", _UNSHOWN.sub(" ", page)))
    lines = (" ".join(line.split()) for line in html.unescape(page).split("\n"))
    return "\n".join(line for line in lines if line)


def parse_large_html(path: str, name: str, why: str) -> ParsedDocument:
    """``path``'s page as Markdown, its ``<title>`` a heading atop; ``why`` it was not
    read by docling, for a warning."""
    try:
        import html_to_markdown
    except ImportError as exc:
        raise MissingExtraError("large HTML pages (html-to-markdown)", "office") from exc
    from rag_ingest.parsers.office import decoded_html, headed, html_title

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
    shown = _shown_text(text)
    lost = ""
    if len(markdown.split()) < _KEPT * len(shown.split()):
        lost = (
            f"html-to-markdown kept {len(markdown.split()):,} of its {len(shown.split()):,}"
            " words: read as its text, its tags dropped"
        )
        markdown = shown
    markdown = headed(markdown, html_title(data))
    if not markdown.strip():
        raise BlankDocumentError(f"{name}: no text: nothing to index")
    parser = ("html-text" if lost else "html-to-markdown") + (
        "" if charset == "utf-8" else f"[{charset}]"
    )
    parsed = ParsedDocument("html", [Segment(markdown)], parser=parser)
    parsed.warnings.append(f"{why}: read by html-to-markdown, not docling")
    if lost:
        parsed.warnings.append(lost)
    pictures = len(_IMG.findall(data))
    if pictures:
        parsed.warnings.append(f"{pictures} picture(s) not read: the page is read without them")
    return parsed
