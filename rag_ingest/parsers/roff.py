"""Manual pages (roff: the ``man`` macros, and BSD's ``mdoc``), as ``ls.1`` or, gzipped,
``/usr/share/man/man1/ls.1.gz``: read as text they were their macros (``.TH``, ``.SH``,
``\\fB-a\\fR``), a chunk's words among font changes and escapes. Here a page is
Markdown: its title (``# LS(1)``), its sections and subsections as headings (so a
chunk's ``heading_path`` says ``LS(1) > OPTIONS``), its paragraphs as text, its
no-fill blocks (examples) as they are laid out; font changes, comments, spacing
requests and macro definitions left out, the common escapes and glyphs written as
their characters.
"""

from __future__ import annotations

import re

from rag_ingest.errors import BlankDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.text import decode_text

__all__ = ["is_roff", "parse_roff"]

# A page opens (past comments and blank lines) with a request, and has its title (man's
# .TH, mdoc's .Dd or .Dt) or a section early on: Pod::Man's pages define their macros
# first, an X11 page has its licence in comments; a page that is only a link to another
# (.so man3/other.3) is one too.
_TITLE = re.compile(rb"^[.'][ \t]*(?:TH|Dd|Dt|SH|Sh|so)[ \t]", re.MULTILINE)
_REQUEST = re.compile(rb"^[.']")
_COMMENT = re.compile(rb'^(?:[.\'][ \t]*\\"|\\"|[.\'][ \t]*$)')

_GLYPHS = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "bu": "\u2022", "co": "\u00a9",
    "rg": "\u00ae", "tm": "\u2122", "aq": "'", "dq": '"', "lq": "\u201c",
    "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "rs": "\\", "mu": "\u00d7",
    "->": "\u2192", "<-": "\u2190", "de": "\u00b0", "sc": "\u00a7", "ti": "~",
    "ha": "^", "ga": "`", "Lq": "\u201c", "Rq": "\u201d", "R": "\u00ae",
    "Tm": "\u2122", "ua": "\u2191", "da": "\u2193", "pl": "+", "mi": "\u2212",
    "eq": "=", "<=": "\u2264", ">=": "\u2265", "!=": "\u2260", "+-": "\u00b1",
}  # fmt: skip
# An escape: a named glyph (\(xx, \[name], \*(xx, \*[name], \*x), a font or size
# change, a motion, width or overstrike with its quoted argument, a number register,
# or a one-character escape.
_ESCAPE = re.compile(
    r"\\(?:"
    r"\*?\((?P<two>..)|\*?\[(?P<named>[^\]]*)\]|\*(?P<one>.)"
    r"|f(?:\(..|\[[^\]]*\]|.)|s[-+]?(?:\(\d\d|\[\d+\]|\d)"
    r"|[hvwoNlLbDxXSZ]'[^']*'|n[-+]?(?:\(..|\[[^\]]*\]|.)|k.|[$]\d"
    r"|(?P<char>.))",
    re.DOTALL,
)
_CHAR_ESCAPES = {
    "-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t",
    "'": "'", "`": "`", ".": ".", '"': "",
}  # fmt: skip

# Requests that break a paragraph, and those left out with their arguments.
_BREAKS = {"PP", "P", "LP", "Pp", "sp", "TP", "TQ", "IP", "HP", "Bl", "El", "Bd", "Ed", "Lp"}
_DROPPED = {
    "TH", "Dd", "Dt", "Os", "RS", "RE", "in", "ft", "ne", "na", "ad", "hy", "nh", "ds",
    "so", "ie", "el", "if", "ti", "ll", "ps", "vs", "ta", "ce", "bp", "ns", "rs",
    "UC", "PD", "DT", "nr", "rr", "tr", "cc", "c2", "ec", "eo", "lf", "hw",
    "Sm", "Bk", "Ek", "Ud", "An", "ex", "pc", "mk", "rt", "ev", "fam",
    "YS", "UR", "UE", "MT", "ME", "St", "Lb", "Rs", "Re", "Dx", "Ox", "IX",
    "als", "ss", "mso", "cu", "uf", "ul",
}  # fmt: skip
# Font macros whose arguments alternate fonts: written one against the next.
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
_FONTS = {"B", "I", "SM", "SB", *_ALTERNATING}
# mdoc's words inside a line's arguments, left out or written as what they stand for.
_MDOC_WORDS = {
    "Fl": "-", "Ar": "", "Oo": "[", "Oc": "]", "Pa": "", "Cm": "", "Ic": "",
    "Ev": "", "Va": "", "Dv": "", "Er": "", "Sy": "", "Em": "", "Li": "", "Ql": "",
    "Do": "\u201c", "Dc": "\u201d", "So": "\u2018", "Sc": "\u2019",
    "Po": "(", "Pc": ")", "Ns": "", "No": "", "Nm": "", "Xr": "", "Fn": "",
    "Fa": "", "Fo": "", "Fc": "", "Vt": "", "Ms": "", "Mt": "", "Lk": "", "Ad": "",
    "Tn": "", "Ux": "UNIX", "Bx": "BSD", "At": "AT&T UNIX", "Ao": "<",
    "Ac": ">", "Bo": "[", "Bc": "]", "Qo": '"', "Qc": '"', "It": "",
}  # fmt: skip
# mdoc's enclosing macros: what they open, and close at the line's end.
_MDOC_OPENS = {"Op": ("[", "]"), "Dq": ("\u201c", "\u201d"), "Sq": ("\u2018", "\u2019"),
               "Pq": ("(", ")"), "Aq": ("<", ">"), "Bq": ("[", "]"), "Qq": ('"', '"')}  # fmt: skip
_MDOC = _MDOC_WORDS.keys() | _MDOC_OPENS.keys()
_ARGS = re.compile(r'"((?:[^"]|"")*)"|(\S+)')
# mdoc's closing punctuation, written against the word before it ("destination ,").
_CLOSING = re.compile(r"^[.,:;)\]?!]+$")


def is_roff(head: bytes) -> bool:
    """Whether a file's first bytes are a manual page's: its first request, past
    comments and blank lines, a title (``.TH``, ``.Dd``, ``.Dt``) or a section."""
    head = head.lstrip(b"\xef\xbb\xbf")
    for line in head.splitlines():
        if not line.strip() or _COMMENT.match(line):
            continue
        return _REQUEST.match(line) is not None and _TITLE.search(head) is not None
    return False


def _text(line: str) -> str:
    """A line's escapes as the characters they print."""

    def one(match: re.Match[str]) -> str:
        name = match.group("two") or match.group("named") or match.group("one")
        if name is not None:
            return _GLYPHS.get(name, "")
        char = match.group("char")
        if char is None:
            return ""  # a font, size, motion or register
        return _CHAR_ESCAPES.get(char, "")

    return _ESCAPE.sub(one, line)


def _args(rest: str) -> list[str]:
    """A request's arguments: words, or quoted ("" a quote within)."""
    return [
        m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
        for m in _ARGS.finditer(rest)
    ]


def _mdoc(args: list[str]) -> str:
    """An mdoc line's words, its macros (``Fl``, ``Op``, ``Xr`` ...) as what they print."""
    out: list[str] = []
    closing: list[str] = []
    glue = False  # Fl and Ns join the next word to this one
    i = 0
    while i < len(args):
        word = args[i]
        if word in _MDOC_OPENS:
            opening, close = _MDOC_OPENS[word]
            out.append(opening)
            closing.append(close)
            glue = True
        elif word == "Xr" and i + 1 < len(args):
            page = args[i + 1]
            section = args[i + 2] if i + 2 < len(args) and args[i + 2].isalnum() else ""
            out.append(f"{page}({section})" if section else page)
            i += 2 if section else 1
            glue = False
        elif word in _MDOC_WORDS:
            printed = _MDOC_WORDS[word]
            if printed:
                if word == "Fl" and out and not glue:
                    out.append(" ")
                out.append(printed)
                glue = word in ("Fl", "Oo", "Ao", "Bo", "Po", "Do", "So", "Qo")
            elif word == "Ns":
                glue = True  # no space before the next word
            # Any other (Ar, Pa, Cm ...) only sets a font: the spacing is the words'.
        else:
            if out and not glue and not _CLOSING.match(word):
                out.append(" ")
            out.append(word)
            glue = False
        i += 1
    out.extend(reversed(closing))
    return "".join(out).strip()


def _table(block: list[str]) -> list[str]:
    """A tbl table (the lines between .TS and .TE) as a Markdown table: its options and
    format lines left out, its rules too, a ``T{ ... T}`` cell's lines joined (ascii(7)'s
    came out as its format line, "l l l l | l l l l.", over tab-separated rows)."""
    tab, i = "\t", 0
    if block and block[0].rstrip().endswith(";"):  # the options: tab(:), box, center ...
        given = re.search(r"tab\s*\((.)\)", block[0])
        tab, i = (given.group(1) if given else tab), 1
    while i < len(block):  # the format lines, the last one ending with "."
        i += 1
        if block[i - 1].rstrip().endswith("."):
            break
    rows: list[list[str]] = []
    row: list[str] = []
    text_block: list[str] | None = None  # a T{ cell's lines

    def cells(line: str) -> None:
        nonlocal row, text_block
        parts = line.split(tab)
        if parts[-1].strip() == "T{":
            row += [_text(c).strip() for c in parts[:-1]]
            text_block = []
        else:
            rows.append(row + [_text(c).strip() for c in parts])
            row = []

    for raw in block[i:]:
        if text_block is not None:
            if raw.startswith("T}"):
                row.append(" ".join(text_block).strip())
                text_block = None
                rest = raw[2:]
                if rest.startswith(tab):
                    cells(rest[len(tab) :])
                else:
                    rows.append(row)
                    row = []
            elif raw[:1] not in (".", "'"):
                text_block.append(_text(raw).strip())
            continue
        if raw.strip() in ("_", "=", "") or raw[:1] in (".", "'"):
            continue  # a rule, a blank line, a request within
        cells(raw)
    if not rows:
        return []
    width = max(len(r) for r in rows)
    lines = []
    for n, r in enumerate(rows):
        padded = [c.replace("|", "\\|") for c in r] + [""] * (width - len(r))
        lines.append("| " + " | ".join(padded) + " |")
        if n == 0:
            lines.append("|" + " --- |" * width)
    return lines


def _page(lines: list[str]) -> tuple[list[str], str | None]:
    """A page's requests and text lines as Markdown lines, and its title."""
    out: list[str] = []
    title: str | None = None
    fill = True
    skipping = ""  # a macro definition's end ("..") while one is skipped
    mdoc_name = ""
    pending_tag = False  # .TP: the next line is the item's tag
    pending_heading = ""  # a bare .SH or .SS: the next line is its heading
    table: list[str] | None = None  # a tbl table's lines, .TS to .TE

    def brk() -> None:
        if out and out[-1] != "":
            out.append("")

    for raw in lines:
        if table is not None:
            if re.match(r"[.'][ \t]*TE\b", raw):
                out += [*_table(table), ""]
                table = None
            else:
                table.append(raw)
            continue
        if skipping:
            # Its end: "..", or the name given ("." and spaces before it too: ".  ."); a
            # conditional block's, its closing brace.
            if skipping == "\\}":
                if "\\}" in raw:
                    skipping = ""
            elif raw[:1] in (".", "'") and raw[1:].strip() == skipping[1:]:
                skipping = ""
            continue
        if raw[:1] not in (".", "'"):
            text = _text(raw)
            if fill:
                text = text.strip()
                if not text:
                    brk()
                    continue
            if pending_heading:
                out += [f"{pending_heading} {text.strip()}", ""]
                pending_heading = ""
                continue
            if pending_tag:
                out.append(f"**{text.strip()}**" if text.strip() else text)
                pending_tag = False
                brk()
                continue
            out.append(text)
            continue
        request = raw[1:].lstrip()
        if request.startswith('\\"') or not request:
            continue  # a comment, or an empty request
        name, _, rest = request.partition(" ")
        name = name.strip()
        rest = rest.split('\\"', 1)[0]  # a comment after the request
        if name in ("if", "ie", "el", "while") and "\\{" in rest and "\\}" not in rest:
            skipping = "\\}"  # a conditional block: typesetter set-up, not the page's text
            continue
        if name in ("de", "de1", "am", "ig"):
            # Skipped to its end: ".." or the name given (.ig END; .de NAME END).
            given = rest.split()[0 if name == "ig" else 1 :][:1]
            skipping = "." + (given[0] if given else ".")
            continue
        args = _args(_text(rest))
        if name in ("TH", "Dt") and args:
            section = f"({args[1]})" if len(args) > 1 else ""
            title = f"{args[0]}{section}"
            if name == "Dt":
                title = title.lower()
        elif name in ("SH", "Sh", "SS", "Ss"):
            brk()
            level = "##" if name in ("SH", "Sh") else "###"
            heading = " ".join(args).strip()
            if heading:
                out += [f"{level} {heading}", ""]
            else:
                pending_heading = level
        elif name == "TS":
            brk()
            table = []
        elif name in ("nf", "Bd", "EX"):
            brk()
            fill = name == "Bd" and "-literal" not in rest and "-unfilled" not in rest
        elif name in ("fi", "Ed", "EE"):
            fill = True
            brk()
        elif name == "br":
            out.append("")
        elif name in _BREAKS:
            brk()
            if name in ("TP", "TQ"):
                pending_tag = True
            elif name == "IP" and args and args[0] not in ("\u2022", "-", "*"):
                out.append(f"**{args[0]}**")
                brk()
        elif name in _DROPPED:
            continue
        elif name in _FONTS:
            joiner = "" if name in _ALTERNATING else " "
            text = joiner.join(args)
            if pending_tag:
                out.append(f"**{text}**")
                pending_tag = False
                brk()
            else:
                out.append(text)
        elif name == "Nm" and not mdoc_name and args:
            mdoc_name = args[0]
            out.append(mdoc_name)
        elif name == "Nd":
            out.append(f"\u2014 {_mdoc(args)}")
        elif name == "It":
            brk()
            item = _mdoc(args)
            if item:
                out.append(f"**{item}**")
                brk()
        elif name[:1].isupper():
            # An mdoc macro, or a man macro we do not know: its words kept.
            text = _mdoc([name, *args]) if name in _MDOC else _mdoc(args)
            if name == "Nm" and not args:
                text = mdoc_name
            if text:
                out.append(text)
        # Any other request (lower case: a roff request) is layout: left out.
    return out, title


def parse_roff(path: str, name: str) -> ParsedDocument:
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body, title = _page(lines)
    markdown = "\n".join(body)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip()
    if title:
        markdown = f"# {title}\n\n{markdown}" if markdown else ""
    if not markdown.strip() or not re.sub(r"^#+ .*$", "", markdown, flags=re.M).strip():
        link = re.search(r"^[.'][ \t]*so[ \t]+(\S+)", text, re.MULTILINE)
        what = f"only points to {link.group(1)}" if link else "has no text"
        raise BlankDocumentError(f"{name}: a manual page that {what}: nothing to index")
    return ParsedDocument(
        file_type="man",
        segments=[Segment(markdown)],
        parser=f"roff[{encoding}]",
        warnings=warnings,
    )
