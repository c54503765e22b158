"""A web page's boilerplate as trafilatura judges it (``parse.html_chrome = "guess"``).

Markup marks only part of a page's chrome (``office._drop_page_chrome``): most news and
blog pages have no ``<main>``, and their related posts, share buttons, comment forms and
newsletter sign-ups sit in plain ``<div>``\\ s. trafilatura (Apache-2.0, extra ``web``)
tells a page's text from its boilerplate by the page's structure and the density of its
text and links. What it writes, though, is text or a markup of its own, which would lose
what docling reads of the page (a table's cells, code blocks, pictures, headings'
levels). So its text only guides: the page's words are matched against it, and each
block of the page docling reads (a paragraph, list item, heading, cell) whose words are
mostly not found there is taken out. What has no words of its own (a picture, a
formula's markup, hidden text) and a ``<pre>`` block of code go with the nearest
element around them that has. It runs after the markup's own chrome is dropped: a
page's one ``<main>`` is judged, not what is outside it.

trafilatura is made for articles: on documentation pages it drops reference tables and
code not in ``<pre>`` (measured in the README), hence off by default."""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from rag_ingest.errors import MissingExtraError
from rag_ingest.parsers.pictures import MARKER

__all__ = ["Guess", "drop_guessed_chrome"]

_WORD = re.compile(r"\w+")
# A page's words are found in trafilatura's text by runs of this many: a short word
# alone ("Share", "a") is found anywhere; a run of them, in order, only where it is.
_RUN = 4
# The elements docling makes a paragraph, item, cell or heading of: a text's block is
# the innermost of them around it.
_BLOCKS = frozenset(
    ("address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
     "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
     "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "menu", "nav", "ol",
     "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
     "ul")
)  # fmt: skip
_CELLS = frozenset(("td", "th"))  # emptied, not removed: the table keeps its columns
_TABLE_PARTS = frozenset(("caption", "tbody", "td", "tfoot", "th", "thead", "tr"))
_NOT_SHOWN = frozenset(("script", "style", "noscript", "template", "head", "title"))
# Elements whose text goes with the element around them, not judged by its words:
# docling reads a formula's TeX, which trafilatura does not, and trafilatura drops code
# listings the article around them keeps (all of the Rust book's).
_FOLLOWING = frozenset(("math", "svg", "pre"))
_STANDALONE = frozenset(("img", "picture", "video", "audio", "iframe", "object", "embed"))


@dataclass(frozen=True)
class Guess:
    """What a guess kept of a page: its words that docling reads, counted."""

    kept: int
    total: int


def main_text(page: bytes) -> str | None:
    """trafilatura's text of ``page``: its main text and readers' comments, tables
    included; None when it finds none or fails on the page (the page is then read
    whole, not failed)."""
    try:
        import trafilatura
    except ImportError as exc:
        raise MissingExtraError('parse.html_chrome = "guess" (trafilatura)', "web") from exc
    try:
        text = trafilatura.extract(
            page,
            output_format="txt",
            include_comments=True,
            include_tables=True,
            include_links=False,  # a link's target is not a word the page shows
            include_images=False,
            deduplicate=False,
            # Its precision drops what it doubts: a short FAQ page's questions (its
            # <h2>s), a slide deck's slides (measured: README, "guess"); one more phrase
            # of chrome kept.
            favor_recall=True,
        )
    except MemoryError:
        raise  # the worker's memory limit
    except Exception:  # trafilatura and lxml raise anything on a hostile page
        return None
    return str(text) if text else None


def _normal(text: str) -> str:
    """``text`` as trafilatura writes it: without what is not printable (a soft hyphen,
    a zero-width space: a word split by one is one word there), in NFC."""
    text = MARKER.sub(" ", text)  # a picture's marker (its number is no word)
    if not text.isprintable():
        text = "".join(c for c in text if c.isprintable() or c.isspace())
    return unicodedata.normalize("NFC", text)


def _standing(node: Any, body: Any) -> str | None:
    """How ``node``'s words count, from one walk up to ``body``: None when the text is
    not shown (a script's, a template's), "follows" when its words are not judged (see
    ``_FOLLOWING``; hidden text), else "judged"."""
    standing = "judged"
    for parent in node.parents:
        if parent is body:
            break
        if parent.name in _NOT_SHOWN:
            return None
        style = str(parent.get("style") or "").replace(" ", "").lower()
        if parent.name in _FOLLOWING or "display:none" in style:
            standing = "follows"
    return standing


def _block(node: Any, body: Any) -> Any:
    parent = node.parent
    while parent is not body and parent.name not in _BLOCKS:
        parent = parent.parent
    return parent


def _unit(block: Any) -> Any:
    """What ``block``'s words are judged with: a cell's (or a cell's one paragraph's),
    its table's. trafilatura drops some of a table's columns (Node.js's version
    columns), which left rows of empty cells."""
    cell = block.parent
    if (
        block.name in ("p", "div")
        and cell is not None
        and cell.name in _CELLS
        and len(cell.find_all(_BLOCKS)) == 1
    ):
        block = cell
    if block.name in _TABLE_PARTS:
        table = block.find_parent("table")
        if table is not None:
            return table
    return block


def drop_guessed_chrome(soup: Any, page: bytes) -> Guess | None:
    """Take out of ``soup`` (docling's parsed ``page``) the blocks whose words are mostly
    not in trafilatura's text of ``page``. None, and ``soup`` left as it is, when
    trafilatura finds no text or none of it is the page's."""
    from bs4.element import NavigableString, PreformattedString, Tag

    text = main_text(page)
    if text is None:
        return None
    found = _WORD.findall(_normal(text))
    runs = {tuple(found[i : i + _RUN]) for i in range(max(len(found) - _RUN + 1, 1))}
    body = soup.body or soup

    # The page's shown text as one string, a block's texts run together as they are
    # shown ("W<b>orld</b>" one word), blocks apart; each word is its node's.
    counted: list[Any] = []
    silent: list[Any] = []  # texts with no word that counts: a formula's, a marker, code
    units: list[int] = []  # what each counted text is judged with (see _unit)
    unit_of: dict[int, int] = {}
    starts: list[int] = []
    shown: list[str] = []
    at = 0
    last_block = None
    for node in body.find_all(string=True):
        if isinstance(node, PreformattedString):  # a comment, CDATA, a declaration
            continue
        standing = _standing(node, body)
        if standing is None:
            continue
        normal = _normal(node)
        if not _WORD.search(normal) or standing == "follows":
            if node.strip():
                silent.append(node)
            continue
        block = _block(node, body)
        if block is not last_block:
            shown.append("\n")
            at += 1
            last_block = block
        counted.append(node)
        if id(block) not in unit_of:
            unit_of[id(block)] = id(_unit(block))
        units.append(unit_of[id(block)])
        starts.append(at)
        shown.append(normal)
        at += len(normal)
    words: list[str] = []
    owners: list[int] = []
    for match in _WORD.finditer("".join(shown)):
        words.append(match.group())
        owners.append(bisect.bisect_right(starts, match.start()) - 1)
    hit = [False] * len(words)
    for i in range(len(words) - _RUN + 1):
        if tuple(words[i : i + _RUN]) in runs:
            hit[i : i + _RUN] = [True] * _RUN

    # A block (a table) is kept when most of its words are found.
    tallies: dict[int, list[int]] = {}
    for word_hit, owner in zip(hit, owners, strict=True):
        tally = tallies.setdefault(units[owner], [0, 0])
        tally[0] += word_hit
        tally[1] += 1
    # Every unit has words (a block's texts are set apart from another's); kept if not.
    kept_node = [unit not in tallies or tallies[unit][0] * 2 >= tallies[unit][1] for unit in units]
    node_words = [0] * len(counted)
    for owner in owners:
        node_words[owner] += 1
    kept = sum(count for count, keep in zip(node_words, kept_node, strict=True) if keep)
    if not kept:
        return None  # nothing of trafilatura's text is the page's: a guess gone wrong

    # Each element's words kept and dropped, for the nodes and pictures with none.
    weight: dict[int, list[int]] = {}
    for node, keep, count in zip(counted, kept_node, node_words, strict=True):
        for parent in node.parents:
            tally = weight.setdefault(id(parent), [0, 0])
            tally[0 if keep else 1] += count
            if parent is body:
                break

    def follows(node: Any, code: bool = False) -> bool:
        """Whether the nearest element around ``node`` with words is mostly kept; for
        code, the nearest with words kept below the body, if any: a listing's caption
        and file name, which trafilatura drops with it, do not decide (the Rust
        book's), and code in a page's chrome goes with it."""
        for parent in node.parents:
            if parent is body:
                break
            tally = weight.get(id(parent))
            if tally is not None and (tally[0] if code else tally[0] + tally[1]):
                return tally[0] >= tally[1]
        return follows(node) if code else weight[id(body)][0] >= weight[id(body)][1]

    verdict: dict[int, bool] = {id(n): k for n, k in zip(counted, kept_node, strict=True)}
    for node in silent:
        code = node.find_parent("pre") is not None
        verdict[id(node)] = follows(node, code)
    standalone = body.find_all(_STANDALONE)
    for tag in standalone:
        verdict[id(tag)] = follows(tag)

    # What each element holds: anything kept, anything dropped.
    holds: dict[int, list[bool]] = {}
    for leaf in [*counted, *silent, *standalone]:
        keep = verdict[id(leaf)]
        for parent in leaf.parents:
            state = holds.setdefault(id(parent), [False, False])
            if state[0 if keep else 1]:
                break  # and so do the elements above it
            state[0 if keep else 1] = True
            if parent is body:
                break

    stack = [body]
    while stack:
        element = stack.pop()
        for child in list(element.children):
            if isinstance(child, Tag):
                if id(child) in verdict and not verdict[id(child)]:
                    child.decompose()
                    continue
                held = holds.get(id(child))
                if held is None or not held[1]:
                    continue  # nothing in it is dropped
                if not held[0]:
                    if child.name in _CELLS:
                        child.clear()  # the row keeps its columns
                    else:
                        child.decompose()
                    continue
                stack.append(child)
            elif isinstance(child, NavigableString) and verdict.get(id(child)) is False:
                child.extract()
    return Guess(kept=kept, total=sum(node_words))
