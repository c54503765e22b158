"""Text in a symbol font (Symbol, Wingdings, Wingdings 2) as the characters it shows.

Word and PowerPoint keep a symbol font's characters as the font's codes: "m" in a run
set in Symbol is shown as μ, a ``w:sym`` names a character by its code (``F0B1``, ±),
and text pasted from one is often in the private-use range (U+F070 for π). Read as
written, "5 μm" came out "5 mm", π as a private-use character, and a ☑ or ±
inserted as a symbol not at all. A run's codes are read here through its font's table.
"""

from __future__ import annotations

import re
from typing import Any

from rag_ingest.parsers.xml_parts import tree, written

__all__ = [
    "font_table",
    "run_text",
    "slide_symbols",
    "sym_text",
    "symbol_text",
    "word_slots",
    "word_symbols",
]

_UNDEFINED = "\0"

# Adobe's Symbol encoding, codes 0x20-0xFF (the character names Symbol.afm gives each
# code, as the Adobe Glyph List reads them), Word's Symbol font's euro at 0xA0, and
# Unicode's own characters where Adobe's list gives private-use ones (bracket pieces,
# sans-serif ®, © and ™); Δ and Ω as the Greek letters they are written for.
_SYMBOL_CODES = "".join(
    (
        " !∀#∃%&∋()∗+,−./0123456789:;<=>?",  # noqa: RUF001
        "≅ΑΒΧΔΕΦΓΗΙϑΚΛΜΝΟΠΘΡΣΤΥςΩΞΨΖ[∴]⊥_",
        "\0αβχδεφγηιϕκλμνοπθρστυϖωξψζ{|}∼\0",  # noqa: RUF001
        _UNDEFINED * 32,
        "€ϒ′≤⁄∞ƒ♣♦♥♠↔←↑→↓°±″≥×∝∂•÷≠≡≈…⏐⎯↵",  # noqa: RUF001
        "ℵℑℜ℘⊗⊕∅∩∪⊃⊇⊄⊂⊆∈∉∠∇®©™∏√⋅¬∧∨⇔⇐⇑⇒⇓",  # noqa: RUF001
        "◊〈®©™∑⎛⎜⎝⎡⎢⎣⎧⎨⎩⎪\0〉∫⌠⎮⌡⎞⎟⎠⎤⎥⎦⎫⎬⎭\0",
    )
)
SYMBOL = {0x20 + i: c for i, c in enumerate(_SYMBOL_CODES) if c != _UNDEFINED}

# Wingdings' characters that say something in a text (a form's ticked and empty boxes,
# marks, bullets, arrows, numbers, a telephone or an envelope before a contact), with
# the characters Unicode gives them; its other pictures (zodiac signs, clocks, leaves,
# hands) are left out, as a picture is.
WINGDINGS = {
    0x20: " ",
    0x28: "☎",
    0x29: "✆",
    0x2A: "✉",
    0x3E: "✇",
    0x3F: "✍",
    0x46: "☞",
    0x45: "☜",
    0x4A: "☺",
    0x4C: "☹",
    0x6C: "●",
    0x6E: "■",
    0x6F: "□",
    0x71: "❑",
    0x72: "❒",
    0x75: "◆",
    0x76: "❖",
    0x77: "⬥",
    0x78: "⌧",
    0x9E: "·",
    0x9F: "•",
    0xA0: "▪",
    0xA1: "○",
    0xA4: "◉",
    0xA5: "◎",
    0xA7: "▪",
    0xA8: "◻",
    0xAB: "★",
    0xD8: "➢",
    0xDC: "➲",
    0xE8: "➔",
    0xEF: "⇦",
    0xF0: "⇨",
    0xF1: "⇧",
    0xF2: "⇩",
    0xFB: "✗",
    0xFC: "✓",
    0xFD: "☒",
    0xFE: "☑",
    **{0x80 + n: chr(0x24EA if n == 0 else 0x245F + n) for n in range(11)},  # ⓪ ① ... ⑩
    **{0x8B + n: chr(0x24FF if n == 0 else 0x2775 + n) for n in range(11)},  # ⓿ ❶ ... ❿
}

# Wingdings 2's that say something: its marks and ballot boxes (a Word form's ☐, ☑ and
# ☒ are most often these: "£", "R", "T"), circled numbers, bullets, squares and the
# reference mark, with the characters Unicode 7.0 gives them.
WINGDINGS_2 = {
    0x20: " ", 0x4F: "\U0001f5f4", 0x50: "\U0001f5f8", 0x51: "\U0001f5f5", 0x52: "☑",
    0x53: "⮽", 0x54: "☒", 0x55: "⮾", 0x56: "⮿", 0x95: "⋅", 0x96: "\U0001f784", 0x97: "⦁",
    0x98: "●", 0x99: "○", 0x9D: "⊙", 0x9E: "⦿", 0xA1: "◾", 0xA2: "■", 0xA3: "□", 0xF8: "※",
    **{0x69 + n: chr(0x24EA if n == 0 else 0x245F + n) for n in range(11)},  # ⓪ ① ... ⑩
    **{0x74 + n: chr(0x24FF if n == 0 else 0x2775 + n) for n in range(11)},  # ⓿ ❶ ... ❿
}  # fmt: skip

_TABLES = {"symbol": SYMBOL, "wingdings": WINGDINGS, "wingdings 2": WINGDINGS_2}
# The names a part's runs would give these fonts: a cheap test before it is parsed.
_NAMED = re.compile(rb'"(?:symbol|wingdings(?: 2)?)"', re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def font_table(font: str | None) -> dict[int, str] | None:
    """The table of a symbol font we read, by its name; None for any other font."""
    return None if font is None else _TABLES.get(font.strip().lower())


def symbol_text(text: str, table: dict[int, str]) -> str:
    """``text`` written in a symbol font as the characters it shows: each printable ASCII
    code, and each private-use character U+F020-U+F0FF Office writes for a code, through
    ``table``; a code the table lacks (a picture) left out. Other characters are taken
    as the Unicode characters they are."""
    shown = []
    for char in text:
        code = ord(char)
        if 0xF020 <= code <= 0xF0FF:
            shown.append(table.get(code - 0xF000, ""))
        elif 0x20 <= code < 0x7F:
            shown.append(table.get(code, ""))
        else:
            shown.append(char)
    return "".join(shown)


Slots = tuple[dict[int, str] | None, dict[int, str] | None]


def word_slots(run: Any, w: str = _W, high: str = "hAnsi") -> Slots:
    """The tables of a Word run's fonts for characters below U+0080 (``w:ascii``) and for
    the rest (``w:hAnsi``; Word 2003 XML's ``w:h-ansi``, in namespace ``w``); None for
    a theme's font or one that is not a symbol font."""
    fonts = run.find(f"{w}rPr/{w}rFonts")
    if fonts is None:
        return None, None
    slots = []
    for slot in ("ascii", high):
        themed = fonts.get(f"{w}{slot}Theme") is not None
        slots.append(None if themed else font_table(fonts.get(f"{w}{slot}")))
    return slots[0], slots[1]


def run_text(text: str, slots: Slots) -> str:
    """A Word run's text in the fonts of its ``slots`` (see :func:`word_slots`)."""
    low, high = slots
    if not (low or high):
        return text
    return "".join(
        symbol_text(char, table) if (table := low if ord(char) < 0x80 else high or low) else char
        for char in text
    )


def sym_text(font: str | None, char: str | None) -> str:
    """What a Word ``w:sym`` shows: its font's character for its code (``char``, hex: a
    code of the font's, or the private-use character Word writes for it); "" for a
    picture, a font not read here (Marlett, Webdings) or a code that is no number."""
    table = font_table(font)
    try:
        code = int(char or "", 16)
    except ValueError:
        return ""
    if table is None:
        return ""
    return table.get(code - 0xF000 if 0xF000 <= code <= 0xF0FF else code, "")


def word_symbols(part: bytes) -> bytes:
    """A WordprocessingML part (a document, header, footer or notes part) with its
    runs set in Symbol or Wingdings, and its ``w:sym`` characters, written as the
    characters they show; the part as it was when it has none."""
    if not _NAMED.search(part):
        return part
    root = tree(part)
    changed = False
    for run in () if root is None else root.iter(f"{_W}r"):
        slots = word_slots(run)
        for child in run:
            if child.tag == f"{_W}t" and child.text:
                shown = run_text(child.text, slots)
            elif child.tag == f"{_W}sym":
                shown = sym_text(child.get(f"{_W}font"), child.get(f"{_W}char"))
                child.tag = f"{_W}t"
                child.attrib.clear()
            else:
                continue
            changed = changed or shown != child.text
            child.text = shown
    return written(root) if changed else part


def slide_symbols(part: bytes) -> bytes:
    """A DrawingML part (a slide, its notes) with its runs set in Symbol or Wingdings
    written as the characters they show: a run's private-use characters in the font of
    its ``a:sym``, else of its ``a:latin``, and its other characters in its ``a:latin``."""
    if not _NAMED.search(part):
        return part
    root = tree(part)
    changed = False
    for run in () if root is None else root.iter(f"{_A}r"):
        latin = font_table(_typeface(run, "latin"))
        symbol = font_table(_typeface(run, "sym")) or latin
        text = run.find(f"{_A}t")
        if (latin or symbol) and text is not None and text.text:
            shown = "".join(
                symbol_text(char, table)
                if (table := symbol if 0xF020 <= ord(char) <= 0xF0FF else latin)
                else char
                for char in text.text
            )
            changed = changed or shown != text.text
            text.text = shown
    return written(root) if changed else part


def _typeface(run: Any, kind: str) -> str | None:
    font = run.find(f"{_A}rPr/{_A}{kind}")
    return None if font is None else font.get("typeface")
