"""docling's HTML and Word readers made to keep a document's words as written.

Both read a paragraph as runs (a link, bold or italic text, the words between) and
strip each; the Markdown serializer then joins them with a space. A run that began
inside a word came out split: ``<b>W</b>orld`` as "**W** orld", ``<a>link</a>s`` as
"[link](...) s", a heading's ``Head<em>ing</em>s`` as "Head ing s", a drop cap's
"T he", and punctuation after a tag, "Stichworten ." Each run that continues the one
before it with no space between, in the source, is marked here with ``GLUE`` (a
Unicode noncharacter, which documents do not use) at its start; :func:`runs_joined`
then takes the space before a mark out, and the marks with it, once the Markdown is
written. html-to-markdown, which reads pages past ``parse.markup_fast_size``, joins
runs so already.
"""

from __future__ import annotations

import contextvars
import functools
import re
import unicodedata
from typing import Any

__all__ = [
    "GLUE",
    "as_written",
    "glue_html_runs",
    "glue_word_runs",
    "keep_typography",
    "runs_joined",
]

GLUE = "\ufdd0"

# A space, the Markdown a run's text opens with (emphasis, code), then the mark: the
# space goes, the mark too; a link's bracket likewise, when a link follows (a bracket
# of the text's own keeps its space). After emphasis that closes, the same emphasis
# opening again is one run ("**para** **graph**": "**paragraph**"); other emphasis
# keeps the space, as Markdown cannot close one and open another within a word.
_MARKUP = r"(?:\*\*?|__?|~~|`+)*"
_SAME_EMPHASIS = re.compile(rf"(?<![*~])(\*\*\*|\*\*|\*|~~) \1{GLUE}")
_GLUED = re.compile(rf"(?<![*~]) ({_MARKUP}){GLUE}|(?<=[*~]) {GLUE}")
_GLUED_LINK = re.compile(rf" (\[{_MARKUP}){GLUE}(?=[^\]\n]*\]\()")
# A run of punctuation alone, set in emphasis of its own: "*.*" after an italic link.
_MARKED_PUNCTUATION = re.compile(
    rf"(\*{{1,3}}|~~)({GLUE}[.,;:!?)\]}}\u00bb\u203a\u201d\u2019%\u2026\"'\u201c]+)\1"
)


def runs_joined(text: str) -> str:
    """``text`` (docling's Markdown) with each marked run joined to the one before it."""
    if GLUE not in text:
        return text
    text = _MARKED_PUNCTUATION.sub(r"\2", text)
    text = _SAME_EMPHASIS.sub("", text)
    text = _GLUED_LINK.sub(r"\1", text)
    return _GLUED.sub(lambda m: m.group(1) or "", text).replace(GLUE, "")


# Set while our own parse runs docling's HTML backend: its text keeps its typography
# and its glue marks.
as_written: contextvars.ContextVar[bool] = contextvars.ContextVar("as_written", default=False)
# What docling's replacements we keep: invisible characters and no-break spaces.
_INVISIBLE = str.maketrans(
    {
        **{"\u00a0": " ", "\u202f": " ", "\u2010": "-", "\u2011": "-"},
        **dict.fromkeys("\u200b\u00ad\ufeff\u2060"),
    }
)


def keep_typography(backend: Any) -> None:
    """Have docling's HTML backend keep a page's quotes, dashes and ellipses as written.

    Its ``_clean_unicode`` writes every text it reads in ASCII punctuation: a right
    single quote as an apostrophe, an en or em dash as a hyphen, an ellipsis as three
    dots, and of German quotes only the closing one. The same words from a DOCX, an
    HTML page past ``parse.markup_fast_size`` (html-to-markdown) or a Markdown file kept
    them, and a quoted search for a sentence of the page missed it. While our parse
    runs (``as_written``), only no-break spaces become spaces, hyphens (U+2010, U+2011)
    the ASCII hyphen a search is typed with, and zero-width spaces, soft hyphens,
    byte-order marks and word joiners go; zero-width joiners and
    non-joiners stay (they spell Persian words and emoji). A caller's own docling, and a
    docling without the method, keep theirs.
    """
    clean = backend.__dict__.get("_clean_unicode")
    given = getattr(clean, "__func__", None)
    if given is None or getattr(given, "_as_written", False):
        return

    @functools.wraps(given)
    def kept(text: str) -> str:
        return text.translate(_INVISIBLE) if as_written.get() else str(given(text))

    kept._as_written = True  # type: ignore[attr-defined]
    backend._clean_unicode = staticmethod(kept)


# Elements that set words inside a line: the text before and after one is the same line,
# and a word may run across it.
_INLINE = frozenset(
    {
        *("a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del"),
        *("dfn", "em", "font", "i", "ins", "kbd", "mark", "nobr", "q", "s", "samp", "small"),
        *("span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr"),
    }
)


# Closing punctuation, which takes no space before it; an opening bracket or quote, which
# takes none after it.
_CLOSING = frozenset(".,;:!?)]}\u00bb\u203a\u201d\u2019%\u2026")
_OPENING = frozenset("([{\u201e\u201a\u00ab\u2039\u00bf\u00a1")
_QUOTES = frozenset("\"'\u201c\u2018")


def _raised(string: Any) -> bool:
    """Whether ``string`` is set in superscript or subscript (m<sup>3</sup>)."""
    for parent in string.parents:
        if parent.name in ("sup", "sub"):
            return True
        if parent.name not in _INLINE:
            return False
    return False


def _run_on(before: str, after: Any) -> bool:
    """Whether the text ``after`` reads as going on from ``before``, nothing between:
    within a word, or punctuation at its edge. Two links or labels side by side with no
    space (a menu, "Reply" and "Delete", whose style sets them apart) are not: a capital
    after a letter, or a letter after a full stop, keeps its space."""
    last, first = before[-1], after[0]
    if first in _CLOSING or _raised(after) or _raised(before):
        return True
    if last in _OPENING:
        return True
    if last in _QUOTES:  # opening when it follows a space or starts the text
        return len(before) == 1 or before[-2].isspace() or before[-2] in _OPENING
    if first in _QUOTES:  # closing after a word
        return last.isalnum()
    if unicodedata.east_asian_width(first) in "WF" or unicodedata.east_asian_width(last) in "WF":
        return True  # Chinese, Japanese: no spaces between words
    return last.isalnum() and first.islower()


def _continues(string: Any) -> bool:
    """Whether the text node ``string`` continues the text before it with no space:
    between the two only inline elements open or close, and :func:`_run_on` says the
    words go on (never for the private character docling puts in place of a ``<br>``)."""
    from bs4.element import NavigableString, Tag

    if not string or string[0].isspace():
        return False
    enclosing = {id(parent) for parent in string.parents}
    before = string.previous_element
    while before is not None:
        if isinstance(before, Tag):
            if before.name not in _INLINE:
                return False  # a block starts, or a picture or line break stands between
        elif type(before) is NavigableString and before:  # not a comment, script or style
            if before[-1].isspace():
                return False
            for parent in before.parents:
                if id(parent) in enclosing:
                    return _run_on(before, string)
                if parent.name not in _INLINE:
                    return False  # the text before ends a block of its own
        before = before.previous_element
    return False


def glue_html_runs(backend: Any) -> None:
    """Mark, while our parse runs, each text node of an HTML page that continues the one
    before it with no space (a docling without the method is left as it is)."""
    extract = getattr(backend, "_extract_text_and_hyperlink_recursively", None)
    if extract is None or getattr(extract, "_glued", False):
        return
    from bs4.element import NavigableString

    @functools.wraps(extract)
    def glued(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        found = extract(self, item, *args, **kwargs)
        if (
            as_written.get()
            and type(item) is NavigableString
            and len(found) == 1
            and not found[0].text.startswith(GLUE)
            and _continues(item)
        ):
            found[0].text = GLUE + found[0].text
        return found

    glued._glued = True  # type: ignore[attr-defined]
    backend._extract_text_and_hyperlink_recursively = glued


def glue_word_runs(backend: Any) -> None:
    """Mark, while our parse runs, each run of a Word paragraph (docling groups its runs
    by formatting and link) that continues the one before it with no space. A docling
    without the methods is left as it is."""
    elements = getattr(backend, "_get_paragraph_elements", None)
    if elements is None or getattr(elements, "_glued", False):
        return
    if not hasattr(backend, "_get_paragraph_content"):
        return

    @functools.wraps(elements)
    def glued(self: Any, paragraph: Any) -> Any:
        found = elements(self, paragraph)
        if len(found) < 2 or not as_written.get():
            return found
        whole = "".join(text for text, _format, _link in self._get_paragraph_content(paragraph))
        marked, at = [], 0
        for text, *rest in found:
            start = whole.find(text, at) if text else -1
            if start >= 0:
                # Right where the run before ended, and that ended in no space.
                if 0 < start == at and not whole[start - 1].isspace():
                    marked.append((GLUE + text, *rest))
                    at = start + len(text)
                    continue
                at = start + len(text)
            marked.append((text, *rest))
        return marked

    glued._glued = True  # type: ignore[attr-defined]
    backend._get_paragraph_elements = glued
