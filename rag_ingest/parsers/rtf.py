"""Rich Text Format as plain text (striprtf): read as text, an RTF file is its control
words, font tables and escapes (``{\\rtf1\\ansi{\\fonttbl...}\\f0\\fs24 ...}``).

Two things striprtf passes over are read here first. A text box (a shape's
``\\shptxt``, inside an ignorable ``\\*\\shpinst``) becomes a paragraph where the shape
is anchored: Word and LibreOffice write frames and text boxes so, and a business card
LibreOffice saved as RTF had been read as no text at all. A PNG or JPEG picture
(``\\pict`` with ``\\pngblip`` or ``\\jpegblip``; its WMF copy for old readers,
``\\nonshppict``, left out) is read by OCR where it sits, as an office document's are.

Comments (``\\annotation``, another ignorable destination) are listed after the text,
``Comments:`` then ``- Comment (Ann) on "the passage it marks": text``, as a DOCX's are;
footnotes and endnotes are read where they are cited, ``(note: ...)``; tables are
Markdown tables; an equation (``\\mmath``) is its runs' text, a space between two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rag_ingest.errors import BlankDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import (
    ParsedDocument,
    ParseOptions,
    Segment,
    after_text,
    comment_line,
    markdown_table,
)
from rag_ingest.parsers.symbol_fonts import font_table
from rag_ingest.parsers.text import wide_text

if TYPE_CHECKING:
    from rag_ingest.parsers.pictures import HeldPictures

__all__ = ["object_data", "parse_rtf"]

_SPECIAL = re.compile(r"[{}\\]")
_GROUP = re.compile(r"\{")
_BIN = re.compile(r"\\bin(\d+) ?")
_FALLBACK = re.compile(r"\{\\nonshppict(?![a-z])")
_PICTURE = re.compile(r"\{\\pict(?![a-z])")
_SHAPE = re.compile(r"\{\\shp(?:grp)?(?![a-z])")
_SHAPE_TEXT = re.compile(r"\{\\shptxt(?![a-z])")
_SHAPE_PICTURE = re.compile(r"\{\\\*\\shppict(?![a-z])")
_BLIP = re.compile(r"\\(png|jpeg)blip(?![a-z])")
_OBJECT_DATA = re.compile(r"\{\\\*\\objdata(?![a-z])")
# An equation (Word's: {\mmath{\*\moMathPara{\*\moMath ...{\mr x}...}}}) and its runs
# of text; the rest of it is its layout, in ignorable destinations striprtf passes over.
_MATH = re.compile(r"\{\\mmath(?![a-zA-Z])")
# A run, a group's edge, a font's choice (\f635) and an escape, in an equation.
_MATH_SCAN = re.compile(r"\{\\mr(?![a-zA-Z])|[{}]|\\f(?P<font>\d+)|\\\\|\\[{}]")
# Other formats a picture may be in, by their control word.
_OTHER = {"emfblip": "EMF", "wmetafile": "WMF", "macpict": "PICT", "dibitmap": "bitmap",
          "wbitmap": "bitmap", "pmmetafile": "OS/2 metafile"}  # fmt: skip
_CONTROL_WORD = re.compile(r"\\[a-z]+-?\d* ?|\\[^a-z]")
# What stands for a picture in the text striprtf gives: plain letters it passes through.
_TOKEN = re.compile(r"RAGINGESTPICTURE(\d+)X")
# A comment, its author's name and its text (Word: {\*\atnid AL}{\*\atnauthor Ann Lee}
# \chatn{\*\annotation{\*\atnref 1}...text}), and the passage it marks ({\*\atrfstart 1}
# ... {\*\atrfend 1}); in the text striprtf gives, as plain letters too.
_COMMENT_PART = re.compile(r"\{\\\*\\(atnid|atnauthor|annotation|atrfstart|atrfend)(?![a-z]) ?")
_COMMENT_REF = re.compile(r"\{\\\*\\atnref ?([^{}]*)\}")
_NOTE = re.compile(r"RAGINGESTNOTE(\d+)X(.*?)RAGINGESTSAIDX(.*?)RAGINGESTENDX", re.DOTALL)
# A footnote or an endnote ({\footnote ...}, {\*\footnote\ftnalt ...}), a destination
# striprtf passes over: read where it is cited, "(note: ...)", as a DOCX's is.
_FOOTNOTE = re.compile(r"\{\\(?:\*\\)?footnote(?![a-z]) ?")
_FOOTNOTE_TEXT = re.compile(r"RAGINGESTFOOTX(.*?)RAGINGESTFOOTENDX", re.DOTALL)
# A table's rows (\trowd ... \cell ... \row; Word writes \trowd again before \row):
# striprtf wrote each as "a|b|", a cell of two paragraphs split across lines. Read as a
# Markdown table, as a DOCX's is.
_ROW_START, _CELL_END = re.compile(r"\\trowd(?![a-z])"), re.compile(r"\\cell(?![a-z]) ?")
_ROW_END = re.compile(r"\\row(?![a-z]) ?")
_TABLE_TOKEN = re.compile(r"RAGINGEST(?:TROW|CELL|ROW)X")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")
# A font's entry in the font table: its number and what comes before its name's ";".
_FONT_ENTRY = re.compile(r"\\f(\d+)(?!\d)([^;]*);")
_FONT_NAME_NOISE = re.compile(r"\{[^{}]*\}|\\[a-zA-Z]+-?\d* ?|\\'[0-9a-fA-F]{2}|[{}]")
# What a run's characters are made of, for reading them in its font: a group's edges, a
# font's choice, \plain (the default font again), \ucN (the fallback characters after a
# \uN), \uN, \'hh, \binN (raw bytes), other control words and symbols, and text.
_RUN_TOKEN = re.compile(
    r"(?P<edge>[{}])|\\f(?P<font>\d+) ?|\\plain(?![a-zA-Z]) ?"
    r"|\\uc(?P<uc>\d+) ?|\\u(?P<unicode>-?\d+) ?|\\'(?P<hex>[0-9a-fA-F]{2})"
    r"|\\bin(?P<bin>\d+) ?|\\[a-zA-Z]+-?\d* ?|\\[^a-zA-Z]|(?P<text>[^\\{}\r\n]+)|[\r\n]+"
)
_DEFAULT_FONT = re.compile(r"\\deff(\d+)")
_MARK = re.compile(r"RAGINGEST(FROM|TO)(\d+)X")


def parse_rtf(path: str, name: str, options: ParseOptions | None = None) -> ParsedDocument:
    """An RTF file's text, its pictures read as ``options`` say (by OCR where they sit,
    kept to describe, or said unread)."""
    from striprtf.striprtf import rtf_to_text

    from rag_ingest.parsers.pictures import HeldPictures, none_to_read, picture_size

    markup = _markup(path)
    pictures = HeldPictures(options or ParseOptions())
    unreadable: list[str] = []
    markup = _with_shape_text(_with_tokens(markup, pictures, unreadable))
    markup = _replaced(markup, _MATH, _math_text) if "\\mmath" in markup else markup
    markup = _with_symbols(markup)
    markup = _replaced(_with_comment_tokens(markup), _FOOTNOTE, _footnote_tokens)
    markup = _ROW_START.sub("{RAGINGESTTROWX}", _CELL_END.sub("{RAGINGESTCELLX}", markup))
    markup = _ROW_END.sub("{RAGINGESTROWX}", markup)
    converted: str = rtf_to_text(markup, errors="replace")  # type: ignore[no-untyped-call]

    def marked(found: re.Match[str]) -> str:
        marker = pictures.marker(int(found[1]))
        return f"\n\n{marker}\n\n" if marker else ""

    converted = _FOOTNOTE_TEXT.sub(_cited, converted.replace("\r\n", "\n"))
    # What is left of a row that is not whole: a cell's end still parts two words.
    converted = _TABLE_TOKEN.sub(" ", _tables(converted))
    # Blank paragraphs in a run, and those around a table, as one blank line.
    converted, comments = _comments(_BLANK_LINES.sub("\n\n", converted))
    text = after_text(_TOKEN.sub(marked, converted).strip(), comments)
    if not text and not pictures.images:
        if unreadable or not none_to_read(map(picture_size, pictures.held)):
            what = f" ({', '.join(sorted(set(unreadable)))}: not read by OCR)" if unreadable else ""
            raise EmptyDocumentError(f"{name}: an RTF file without text besides its pictures{what}")
        what = "pictures too small to hold text" if pictures.held else "text"
        raise BlankDocumentError(f"{name}: an RTF file without {what}: nothing to index")
    return pictures.into(ParsedDocument("rtf", [Segment(text)] if text else [], "striprtf"))


def _group_end(markup: str, start: int) -> int:
    """Where the group opening at ``start`` ends (past its closing brace), braces in
    escapes (``\\{``) and binary data (``\\binN``) passed over."""
    depth, at = 0, start
    while (found := _SPECIAL.search(markup, at)) is not None:
        at = found.end()
        if found[0] == "\\":
            binary = _BIN.match(markup, found.start())
            at = binary.end() + int(binary[1]) if binary else at + 1
        elif found[0] == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return at
    return len(markup)


def _replaced(markup: str, opening: re.Pattern[str], by: Callable[[str], str]) -> str:
    """``markup`` with each group ``opening`` starts (not one inside another) put
    through ``by``."""
    out, at = [], 0
    while (found := opening.search(markup, at)) is not None:
        end = _group_end(markup, found.start())
        out += [markup[at : found.start()], by(markup[found.start() : end])]
        at = end
    return "".join([*out, markup[at:]])


def _with_tokens(markup: str, pictures: HeldPictures, unreadable: list[str]) -> str:
    """``markup`` with its PNG and JPEG pictures (kept in ``pictures``) as tokens where
    they sit; its other pictures left out, their formats in ``unreadable``, and its
    pictures' WMF copies for old readers left out unsaid."""

    def token(group: str) -> str:
        blip = _BLIP.search(group)
        if blip is None:  # a metafile or a bitmap OCR does not read
            kind = next((v for k, v in _OTHER.items() if f"\\{k}" in group), "of no known kind")
            unreadable.append(kind)
            return ""
        data = _picture_data(group)
        if not data:
            return ""
        return f"{{RAGINGESTPICTURE{pictures.keep(data, f'image/{blip[1]}')}X}}"

    markup = _replaced(_replaced(markup, _FALLBACK, lambda group: ""), _PICTURE, token)
    # A picture's own destination ({\*\shppict ...}) striprtf passes over, tokens and all.
    return _replaced(markup, _SHAPE_PICTURE, _tokens_in)


def _tokens_in(group: str) -> str:
    """The picture tokens in ``group``, each a group of its own."""
    return "".join(f"{{{token[0]}}}" for token in _TOKEN.finditer(group))


def _markup(path: str) -> str:
    """An RTF file's markup. RTF is 7-bit: anything else arrives as \\'hh and \\uN
    escapes, which rtf_to_text decodes in the document's own code page. A UTF-8 BOM
    some generators write before it is no text (it had opened the document as "ï»¿"),
    and a file saved as UTF-16 (PowerShell's redirect) is read as its characters (it
    had been read as bytes: no word of it whole)."""
    with open(path, "rb") as f:
        data = f.read()
    if (wide := wide_text(data)) is not None:
        return wide
    return data.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


def object_data(path: str) -> Iterator[bytes]:
    """The data of each object embedded in an RTF file (``{\\*\\objdata ...}``, an OLE 1
    object in hex), in the order they sit."""
    markup = _markup(path)
    at = 0
    while (found := _OBJECT_DATA.search(markup, at)) is not None:
        at = _group_end(markup, found.start())
        data = _picture_data(markup[found.start() : at])
        if data:
            yield data


def _picture_data(group: str) -> bytes:
    """A ``\\pict`` (or ``\\objdata``) group's bytes: ``\\binN`` raw bytes, or the hex
    after its control words and its nested groups (its properties, its id)."""
    binary = _BIN.search(group)
    if binary is not None:
        return group[binary.end() : binary.end() + int(binary[1])].encode("latin-1")
    inner = _replaced(group[1:-1], _GROUP, lambda nested: "")
    digits = "".join(_CONTROL_WORD.sub(" ", inner).split())
    try:
        return bytes.fromhex(digits[: len(digits) // 2 * 2])
    except ValueError:
        return b""


def _with_shape_text(markup: str) -> str:
    """``markup`` with each shape (``\\shp``, a group of them ``\\shpgrp``) replaced by
    its text boxes' paragraphs and the pictures in it."""

    def text(shape: str) -> str:
        boxes: list[str] = []

        def box(group: str) -> str:
            boxes.append(group[len("{\\shptxt") : -1])
            return ""

        pictures = _tokens_in(_replaced(shape, _SHAPE_TEXT, box))
        # A box's text ends with its own paragraph mark.
        return "".join(f"{{{part}}}" for part in boxes) + pictures

    return _replaced(markup, _SHAPE, text)


def _math_text(equation: str) -> str:
    """An equation's group as a group of its runs' text, a space between two: "x 2"
    for x squared, not its layout (a fraction's bar, a root's sign). Each run keeps the
    font its group gives it: its ``\\'hh`` bytes are in that font's charset (Word puts
    a π in "Cambria Math Greek", ``\\'f0``, read as ð in the document's code page)."""
    runs: list[str] = []
    fonts: list[str | None] = [None]  # the font in effect, by group
    at = 0
    while (found := _MATH_SCAN.search(equation, at)) is not None:
        at = found.end()
        if found[0] == "{":
            fonts.append(fonts[-1])
        elif found[0] == "}":
            if len(fonts) > 1:
                fonts.pop()
        elif found["font"] is not None:
            fonts[-1] = found["font"]
        elif found[0].startswith("{\\mr"):
            at = _group_end(equation, found.start())
            inner = equation[found.end() : at - 1].removeprefix(" ")  # the space ending \mr
            font = f"\\f{fonts[-1]} " if fonts[-1] is not None else ""
            runs.append("{" + font + inner + "}")
    return "{" + " ".join(runs) + "}"


def _with_symbols(markup: str) -> str:
    """``markup`` with its runs set in Symbol or Wingdings written as the characters they
    show (see parsers/symbol_fonts.py): striprtf read ``{\\f3 m}`` as m, not μ, and
    ``\\u61552`` as a private-use character, not π."""
    start = markup.find("{\\fonttbl")
    if start < 0:
        return markup
    end = _group_end(markup, start)
    symbolic: dict[str, dict[int, str]] = {}
    for number, before in _FONT_ENTRY.findall(markup, start, end):
        table = font_table(_FONT_NAME_NOISE.sub("", before))
        if table is not None:
            symbolic[number] = table
    default = _DEFAULT_FONT.search(markup, 0, start)
    plain = default[1] if default else None
    chosen = re.compile(r"\\f(?:{})(?!\d)".format("|".join(symbolic)))
    if not symbolic or (plain not in symbolic and not chosen.search(markup, end)):
        return markup  # Word lists Symbol in every font table
    states = [(plain, 1)]  # each open group's font and \ucN
    out = [markup[:end]]
    skip = 0  # fallback characters of a \uN still to pass over as they are
    at = end
    while at < len(markup) and (found := _RUN_TOKEN.match(markup, at)) is not None:
        at = found.end()
        token, kind = found[0], found.lastgroup
        font, uc = states[-1]
        table = symbolic.get(font) if font is not None else None
        if kind == "edge":
            skip = 0  # a \uN's fallback is within its group
            if token == "{":
                states.append(states[-1])
            elif len(states) > 1:
                states.pop()
        elif kind == "font":
            states[-1] = (found["font"], uc)
        elif token.startswith("\\plain"):
            states[-1] = (plain, uc)
        elif kind == "uc":
            states[-1] = (font, int(found["uc"]))
        elif kind == "bin":
            out.append(token + markup[at : at + int(found["bin"])])
            at += int(found["bin"])
            continue
        elif table is not None and kind in ("unicode", "hex", "text"):
            token, skip = _shown(found, table, skip, uc)
        out.append(token)
    out.append(markup[at:])
    return "".join(out)


def _shown(found: re.Match[str], table: dict[int, str], skip: int, uc: int) -> tuple[str, int]:
    """A ``\\uN``, ``\\'hh`` or text token of a run in a symbol font as the characters
    it shows, and the fallback characters then still to pass over (a mapped ``\\uN``'s
    are dropped with it: what stood for it is written in its place)."""
    kind = found.lastgroup
    if kind == "unicode":
        code = int(found["unicode"]) % 0x10000
        if 0xF020 <= code <= 0xF0FF:
            return _escaped(table.get(code - 0xF000, "")), -uc
        return found[0], uc
    codes = [int(found["hex"], 16)] if kind == "hex" else [ord(c) for c in found[0]]
    shown = []
    for code in codes:
        if skip > 0:  # a \uN's fallback, as written
            skip -= 1
            shown.append(chr(code) if kind == "text" else found[0])
        elif skip < 0:  # a mapped \uN's fallback: dropped
            skip += 1
        else:
            shown.append(_escaped(table.get(code, "")) if 0x20 <= code <= 0xFF else chr(code))
    return "".join(shown), skip


def _escaped(text: str) -> str:
    return text.replace("{", "\\{").replace("}", "\\}")


def _with_comment_tokens(markup: str) -> str:
    """``markup`` with each comment a plain group striprtf reads in the document's code
    page, its author and text between tokens, and its passage's ends as tokens; each
    token numbered by the comment's ``\\atnref`` among the ids (0 for none)."""
    ids: dict[str, int] = {}
    author = ""

    def number(ref: str) -> int:
        return ids.setdefault(ref.strip(), len(ids) + 1)

    def token(group: str) -> str:
        nonlocal author
        found = _COMMENT_PART.match(group)
        word, inner = (found[1], group[found.end() : -1]) if found else ("", "")
        if word in ("atnid", "atnauthor"):
            if inner.strip() and (word == "atnauthor" or not author):  # name over initials
                author = inner
            return ""
        if word == "annotation":
            ref = _COMMENT_REF.search(inner)
            said = f"{{RAGINGESTNOTE{number(ref[1]) if ref else 0}X{author}RAGINGESTSAIDX"
            author = ""
            return f"{said}{{{inner}}}RAGINGESTENDX}}"
        end = "FROM" if word == "atrfstart" else "TO"
        return f"{{RAGINGEST{end}{number(inner)}X}}"

    return _replaced(markup, _COMMENT_PART, token)


def _comments(converted: str) -> tuple[str, list[str]]:
    """The text striprtf gave without its comments, and their lines (see
    :func:`_with_comment_tokens`)."""
    notes = [
        (int(n), who, " ".join(_TOKEN.sub("", said).split()))
        for n, who, said in _NOTE.findall(converted)
    ]
    text = _NOTE.sub("", converted)
    if not notes:
        return _MARK.sub("", text), []
    starts: dict[int, int] = {}
    passages: dict[int, str] = {}
    for found in _MARK.finditer(text):
        if found[1] == "FROM":
            starts[int(found[2])] = found.end()
        elif int(found[2]) in starts:
            between = text[starts.pop(int(found[2])) : found.start()]
            passages[int(found[2])] = _TOKEN.sub("", _MARK.sub("", between))
    lines = [
        comment_line("Comment", who, passages.get(n, "") if n else "", said)
        for n, who, said in notes
        if said
    ]
    return _MARK.sub("", text), lines


def _footnote_tokens(group: str) -> str:
    """A footnote's group as a plain one striprtf reads, its text between tokens."""
    found = _FOOTNOTE.match(group)
    inner = group[found.end() if found else 1 : -1]
    return f"{{RAGINGESTFOOTX{{{inner}}}RAGINGESTFOOTENDX}}"


def _cited(found: re.Match[str]) -> str:
    text = " ".join(_TOKEN.sub("", found[1]).split())
    return f" (note: {text})" if text else ""


def _tables(converted: str) -> str:
    """The text striprtf gave with its rows (a row start, cells, a row end: see
    :data:`_ROW_START`) as Markdown tables, a row's first cell the header, a cell's
    paragraphs on one line. A paragraph between two rows, even an empty one, parts two
    tables. One pass: a row start with no end is left for :data:`_TABLE_TOKEN`."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            out.append(f"\n\n{markdown_table(rows)}\n\n")
            rows.clear()

    *ended, rest = converted.split("RAGINGESTROWX")
    for piece in ended:
        before, start, row = piece.partition("RAGINGESTTROWX")
        if before or not start:
            flush()
            out.append(before)
        cells = row.split("RAGINGESTCELLX")[:-1]  # the last, Word's row properties again
        if cells:
            rows.append([" ".join(c.split()).replace("|", "\\|") for c in cells])
    flush()
    return "".join([*out, rest])
