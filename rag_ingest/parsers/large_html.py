"""An HTML page too big for docling, converted by html-to-markdown (Rust) instead.

docling reads HTML at ~0.3 MB/s here (0.5 to 4 MB pages: 4 MB in 12.6 s; at that rate
a page past ~38 MB outlasts ``parse.timeout``'s 120 s); html-to-markdown reads the 4 MB
page in 0.4 s, a 40 MB one in 3.3 s (628 MB peak), its words counted against the page's.
Past ``parse.markup_fast_size`` a page is read this way, as ``parse.xlsx_stream_size``
sends a large workbook to calamine. Its chrome is left out as docling's path leaves it
(its one ``<main>`` alone, navigation, banners, footers), found without a tree; but its
pictures are not read (counted, in a warning). A page it keeps under half the words of
(nested past ~1,000 levels) is read as its text, its tags dropped.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, MissingExtraError
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.office import GENERATOR_CHROME

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
# A page's chrome, as docling's path drops it (office._drop_page_chrome; docling leaves
# footers out itself). html-to-markdown drops a page's <header> (not an article's).
_CHROME = [
    "nav",
    "footer",
    *(f"[role={r}]" for r in ("navigation", "banner", "contentinfo", "search")),
    *GENERATOR_CHROME,
]
# The element holding a page's main content: <main>, or one whose role says so.
_MAIN = re.compile(
    r"<(main)\b[^>]*>|<([a-z][a-z0-9]*)\b[^>]*?\brole\s*=\s*[\"']?main\b[^>]*>", re.IGNORECASE
)
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


def _main_only(page: str) -> tuple[str, str]:
    """Of a page with one main element, that element alone, as ``office._keep_main``
    keeps it: what lies outside it is chrome (Node.js's one-page manual opened with its
    module list and table of contents, 12,253 words). Found by its tag's opens and
    closes, with no tree; the page as it is when it has none, or several, or when more
    of its text follows the element than is in it (a stray close tag ended it early).
    With the text it shows (:func:`_shown_text`)."""
    found = _MAIN.finditer(page)
    first = next(found, None)
    if first is not None and next(found, None) is None:
        tag = (first[1] or first[2]).lower()
        depth, end = 1, len(page)  # never closed: to the page's end
        for mark in re.finditer(rf"<(/?){tag}\b[^>]*>", page[first.end() :], re.IGNORECASE):
            depth += -1 if mark[1] else 1
            if not depth:
                end = first.end() + mark.end()
                break
        main = page[first.start() : end]
        shown = _shown_text(main)
        if len(_shown_text(page[end:]).split()) <= len(shown.split()):
            return main, shown
    return page, _shown_text(page)


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
    text, shown = _main_only(text)

    def convert(chrome: list[str]) -> str:
        options = html_to_markdown.ConversionOptions(
            extract_metadata=False,  # the title as a heading, not YAML front matter
            skip_images=True,
            exclude_selectors=chrome,
        )
        try:
            markdown = html_to_markdown.convert(text, options).content or ""
        except Exception as exc:  # its errors (ConversionError, PanicError) on bad input
            raise CorruptDocumentError(f"{name}: html could not be converted ({exc})") from exc
        return _RELATIVE_LINK.sub(r"\1", markdown).strip()

    markdown = convert(_CHROME)
    words = len(shown.split())
    lost = ""
    # Words lost (nested past ~1,000 levels), or its chrome left out? Converted with its
    # chrome, a page mostly navigation keeps its words.
    if len(markdown.split()) < _KEPT * words and len(convert([]).split()) < _KEPT * words:
        lost = (
            f"html-to-markdown kept {len(markdown.split()):,} of its {words:,}"
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
