"""Section titles of the text markups, other than Markdown, that are chunked as code:
reStructuredText, LaTeX, AsciiDoc and Org. For each: where its titles are and at what
level (a chunk's ``heading_path``), the separators that split before a title first,
and how to tell a piece that is titles alone (joined to what follows it)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MARKUPS", "Markup"]

Headings = list[tuple[int, int, str]]  # (where, level, title), in order


@dataclass(frozen=True)
class Markup:
    headings: Callable[[str], Headings]
    # Regexes, each match kept at the start of the piece after it; None: the splitter's
    # own separators for the language.
    separators: list[str] | None = None
    titles_only: Callable[[str], bool] | None = None


def _outside(text: str, spans: re.Pattern[str]) -> Callable[[int], bool]:
    """Whether an offset is outside every match of ``spans`` (blocks shown as they are,
    whose lines are not markup)."""
    shown = [(m.start(), m.end()) for m in spans.finditer(text)]
    starts = [start for start, _ in shown]

    def outside(at: int) -> bool:
        i = bisect.bisect_right(starts, at) - 1
        return i < 0 or at >= shown[i][1]

    return outside


# A reStructuredText section title: a line over an underline of one punctuation
# character repeated, with an overline of the same character or none.
_RST_MARKS = "=-~^\"'`:#*+_<>."
_RST_MARK = f"[{re.escape(_RST_MARKS)}]"
_RST_TITLE = re.compile(
    rf"^(?:(?P<over>({_RST_MARK})\2{{2,}})[ \t]*\n)?"
    rf"(?P<title>(?!(?:{_RST_MARK}|[ \t])*\n)\S[^\n]*)\n"  # a line not of marks alone
    rf"(?P<under>({_RST_MARK})\5{{2,}})[ \t]*$",
    re.MULTILINE,
)
# Split before a title (its overline or its text), never between it and its underline
# as LangChain's RST separators do ("\n=+\n"): a chunk ended with a section's title
# and the next began with its underline. A pattern per mark, as the splitter's
# re.split would return a group's captures as pieces.
_RST_SEPARATORS = [
    "|".join(
        rf"\n(?={re.escape(c)}{{3,}}[ \t]*\n[^\n]*\S[^\n]*\n{re.escape(c)}{{3,}}[ \t]*\n)"
        rf"|\n(?=[^\s{re.escape(c)}][^\n]*\n{re.escape(c)}{{3,}}[ \t]*\n)"
        for c in _RST_MARKS
    ),
    r"\n\n\.\. *\n\n",
    "\n\n",
    "\n",
    " ",
]


def _rst_headings(text: str) -> Headings:
    """reStructuredText section titles, each at its overline or text, levelled as docutils
    levels them: by the order in which each style (mark, overlined or not) first
    appears."""
    styles: dict[tuple[str, bool], int] = {}
    found = []
    for m in _RST_TITLE.finditer(text):
        over, under = m.group("over"), m.group("under")
        if over is not None and over[0] != under[0]:
            continue
        level = styles.setdefault((under[0], over is not None), len(styles) + 1)
        found.append((m.start(), level, m.group("title").strip()))
    return found


def _only_rst_titles(text: str) -> bool:
    return bool(text.strip()) and not _RST_TITLE.sub("", text).strip()


_LATEX_LEVELS = {
    "part": 0,
    "chapter": 1,
    "section": 2,
    "subsection": 3,
    "subsubsection": 4,
    "paragraph": 5,
    "subparagraph": 6,
}
_LATEX_SECTION = re.compile(
    r"^[ \t]*\\(?P<kind>" + "|".join(_LATEX_LEVELS) + r")\*?[ \t]*(?:\[[^\]\n]*\][ \t]*)?\{",
    re.MULTILINE,
)
# Environments whose text is not LaTeX: a \section inside is shown, not made.
_LATEX_VERBATIM = re.compile(
    r"\\begin\{(verbatim|Verbatim|lstlisting|minted|comment)\*?\}.*?\\end\{\1\*?\}", re.DOTALL
)
_LATEX_DROPPED = re.compile(r"\\(?:label|index|footnote|cite|ref)\*?\{[^{}]*\}")
_LATEX_MARKUP = re.compile(r"\\[A-Za-z]+\*?|[{}~]|\\\\")


def _latex_headings(text: str) -> Headings:
    """LaTeX's sectioning commands (``\\part`` to ``\\subparagraph``, starred too), each
    at its level, titled by its words: ``\\section{The \\module{httplib2} module
    \\label{m}}`` is 'The httplib2 module'. Not in a commented line or a verbatim
    environment."""
    outside = _outside(text, _LATEX_VERBATIM)
    found = []
    for m in _LATEX_SECTION.finditer(text):
        if not outside(m.start()):
            continue
        depth, end = 1, m.end()
        while depth and end < min(len(text), m.end() + 500):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        # Commands and braces out, their words kept: '\\emph{it}' is 'it'.
        title = _LATEX_MARKUP.sub(" ", _LATEX_DROPPED.sub("", text[m.end() : end - 1]))
        title = " ".join(title.replace("\\", "").split())
        if title:
            found.append((m.start(), _LATEX_LEVELS[m["kind"]], title))
    return found


# AsciiDoc: a title is its level's count of "=" and its text ("= Title" the document's,
# "== Title" a section), optionally closed by its marks again; its attribute and anchor
# lines ("[[id]]", "[appendix]") stand above it. Delimited listing, literal,
# passthrough and comment blocks, and fenced code, are shown as they are.
_ADOC_TITLE = re.compile(
    r"^(?:\[[^\n]*\][ \t]*\n)*(?P<marks>={1,6})[ \t]+(?P<title>\S[^\n]*?)(?:[ \t]+=+)?[ \t]*$",
    re.MULTILINE,
)
_ADOC_ATTRIBUTES = re.compile(r"^\[[^\n]*\][ \t]*$", re.MULTILINE)
_ADOC_VERBATIM = re.compile(
    r"^(?P<d>-{4,}|\.{4,}|\+{4,}|/{4,})[ \t]*\n.*?^(?P=d)[ \t]*$|^```[^\n]*\n.*?^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# Before a title of each level in turn, with the attribute lines above it (never between
# them and it: the lookbehind keeps a split off a line that ends one).
_ADOC_SEPARATORS = [
    *(rf"(?<!\])\n(?=(?:\[[^\n]*\][ \t]*\n)*={{{n}}}[ \t]+\S)" for n in range(1, 7)),
    r"\n[ \t]*\n",
    "\n",
    " ",
]


def _adoc_headings(text: str) -> Headings:
    """AsciiDoc titles at their levels (the count of "="), each from its attribute lines,
    those in delimited blocks left out; a title's backticks and asterisks dropped."""
    outside = _outside(text, _ADOC_VERBATIM)
    return [
        (m.start(), len(m["marks"]), re.sub(r"[`*]", "", m["title"]).strip())
        for m in _ADOC_TITLE.finditer(text)
        if outside(m.start())
    ]


def _only_adoc_titles(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    titles = [bool(_ADOC_TITLE.fullmatch(line)) for line in lines]
    return any(titles) and all(
        title or _ADOC_ATTRIBUTES.fullmatch(line) for title, line in zip(titles, lines, strict=True)
    )


# Org: a heading is stars at a line's start, then a space; its TODO keyword, priority
# cookie and tags are not its title, and a link is its description. #+TITLE is the
# document's title, above them all. Lines between #+BEGIN_x and #+END_x (source,
# examples, quotes) are shown as they are.
_ORG_HEADING = re.compile(r"^(?P<stars>\*+)[ \t]+(?P<title>[^\n]*?)[ \t]*$", re.MULTILINE)
_ORG_TITLE = re.compile(
    r"^#\+title:[ \t]*(?P<title>\S[^\n]*?)[ \t]*$", re.MULTILINE | re.IGNORECASE
)
_ORG_VERBATIM = re.compile(
    r"^[ \t]*#\+begin_(\w+)\b.*?^[ \t]*#\+end_\1\b", re.MULTILINE | re.DOTALL | re.IGNORECASE
)
_ORG_NOT_TITLE = re.compile(r"^(?:(?:TODO|DONE)\b[ \t]*)?(?:\[#\w\][ \t]*)?|[ \t]+:[\w@#%:]+:$")
_ORG_LINK = re.compile(r"\[\[([^\]]*)\](?:\[([^\]]*)\])?\]")
_ORG_SEPARATORS = [
    *(rf"\n(?=\*{{{n}}}[ \t]+\S)" for n in range(1, 7)),
    r"\n[ \t]*\n",
    "\n",
    " ",
]


def _org_headings(text: str) -> Headings:
    """Org headings at their depths, under the document's ``#+TITLE``; those in #+BEGIN
    blocks left out."""
    outside = _outside(text, _ORG_VERBATIM)
    document = _ORG_TITLE.search(text)
    found = []
    if document and outside(document.start()):
        found.append((document.start(), 0, document["title"]))
    for m in _ORG_HEADING.finditer(text):
        title = _ORG_LINK.sub(lambda link: link[2] or link[1], _ORG_NOT_TITLE.sub("", m["title"]))
        if title.strip() and outside(m.start()):
            found.append((m.start(), len(m["stars"]), title.strip()))
    return found


def _only_org_titles(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(_ORG_HEADING.fullmatch(line) for line in lines)


MARKUPS = {
    "rst": Markup(_rst_headings, _RST_SEPARATORS, _only_rst_titles),
    "latex": Markup(_latex_headings),
    "asciidoc": Markup(_adoc_headings, _ADOC_SEPARATORS, _only_adoc_titles),
    "org": Markup(_org_headings, _ORG_SEPARATORS, _only_org_titles),
}
