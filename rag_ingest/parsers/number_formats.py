"""A number as a spreadsheet shows it, by its cell's number format (ECMA-376 18.8.31).

A workbook keeps a cell's value and, apart, how it is shown: the value 0.0803 in a cell
Excel shows as "8.03%", 1234.5 as "$1,234.50". Read as the bare value, a percentage
loses its meaning ("usage 0.5" for "usage 50%"), and an amount its currency. The
formats read here are those of numbers: digits (``0``, ``#``, ``?``), a decimal point,
thousands separators and scaling commas, percent signs, currency symbols (``[$€-407]``),
quoted and escaped text, and up to three sections (positive; negative; zero). Dates and
times (their readers give dates already), fractions, scientific notation, conditions
(``[>100]``) and anything else are left to the bare value.
"""

from __future__ import annotations

import decimal
import functools
import re

__all__ = ["BUILTIN", "reformats", "shown"]

# The formats Excel numbers without writing them (ECMA-376 18.8.30), those of numbers:
# openpyxl's table lacks the accounting formats' semicolons (41-44), and an .xls's FORMAT
# records may leave any of these out. 5-8 and 41-44 are the US locale's.
BUILTIN = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
    5: '"$"#,##0_);("$"#,##0)', 6: '"$"#,##0_);[Red]("$"#,##0)',
    7: '"$"#,##0.00_);("$"#,##0.00)', 8: '"$"#,##0.00_);[Red]("$"#,##0.00)',
    9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??",
    37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)",
    39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)",
    41: '_(* #,##0_);_(* \\(#,##0\\);_(* "-"_);_(@_)',
    42: '_("$"* #,##0_);_("$"* \\(#,##0\\);_("$"* "-"_);_(@_)',
    43: '_(* #,##0.00_);_(* \\(#,##0.00\\);_(* "-"??_);_(@_)',
    44: '_("$"* #,##0.00_);_("$"* \\(#,##0.00\\);_("$"* "-"??_);_(@_)',
    48: "##0.0E+0", 49: "@",
}  # fmt: skip

# A section's tokens: quoted text, an escaped character, a padding or fill character
# (``_)`` leaves a space the width of ")", ``*-`` repeats "-" to the cell's width: both
# shown as nothing), a bracketed code, or one character.
_TOKEN = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]|.', re.DOTALL)
_CURRENCY = re.compile(r"\[\$([^\]-]*)(?:-[0-9A-Fa-f]+)?\]")
_COLOUR = re.compile(r"\[(?:Black|Blue|Cyan|Green|Magenta|Red|White|Yellow|Color\s*\d+)\]", re.I)
# Letters that make a section a date or time, a fraction or scientific notation.
_NOT_A_NUMBER = set("dDmMyYhHsSeEbBgG/@")
_DIGITS = set("0#?")
# Room for a double's 309 digits before the point and a format's decimals after it (the
# default context's 28 digits failed 1e20 in "0.00000000000000").
_DIGITS_SHOWN = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_UP)


@functools.lru_cache(maxsize=256)
def _sections(fmt: str) -> tuple[str, ...]:
    """The format's sections, split at semicolons outside quoted text."""
    sections: list[str] = []
    current: list[str] = []
    for token in _TOKEN.findall(fmt):
        if token == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(token)
    return (*sections, "".join(current))


def reformats(fmt: str) -> bool:
    """Whether a cell style's format ``fmt`` is one to look for cells of: neither General
    nor text ("@"), which show a number as its value (:func:`shown` decides the rest)."""
    return fmt not in ("General", "@")


def shown(value: float, fmt: str) -> str | None:
    """``value`` as a cell of format ``fmt`` shows it; None for a format left to the bare
    value (General, text, dates, fractions, scientific notation, conditions, or one not
    understood)."""
    if (
        not fmt
        or fmt.lower() == "general"
        or value != value
        or value in (float("inf"), -float("inf"))
    ):
        return None
    sections = _sections(fmt)
    sign = ""
    if value < 0 and len(sections) > 1:
        section, value = sections[1], -value  # its own sign, as "(1,234)"
        layout = _layout(section)
        if layout is not None and not any(c in layout[0] + layout[1] for c in "-(\u2212"):
            sign = "-"  # shown in red alone: its text would read as a positive number
    elif value == 0 and len(sections) > 2:
        section = sections[2]
    else:
        section = sections[0]
        if value < 0:
            sign, value = "-", -value
    return _shown(value, section, sign)


@functools.lru_cache(maxsize=256)
def _layout(section: str) -> tuple[str, str, str, int] | None:
    """A section's literal text before and after its digits, its digits' placeholders
    (point and commas too) and how many percent signs it has; None for one not of a
    number. Cached: a sheet's cells share a few formats."""
    before: list[str] = []
    after: list[str] = []
    pattern: list[str] = []
    percents = 0
    for token in _TOKEN.findall(section):
        literal: str | None = None
        if token.startswith('"'):
            literal = token[1:-1]
        elif token.startswith("\\"):
            literal = token[1:]
        elif token[0] in "_*":
            continue
        elif token.startswith("["):
            if currency := _CURRENCY.fullmatch(token):
                literal = currency.group(1)
            elif _COLOUR.fullmatch(token):
                continue
            else:
                return None  # a condition, an elapsed time, a locale's calendar
        elif token in _DIGITS or token == "." or (token == "," and pattern):
            if after and any(c in _DIGITS for c in pattern):
                return None  # digits in two places: "000-00-0000", "0 0/0"
            pattern.append(token)
            continue
        elif token in _NOT_A_NUMBER:
            return None
        else:
            literal = token
            if token == "%":
                percents += 1
        (after if pattern else before).append(literal)
    digits = "".join(pattern)
    if not any(c in _DIGITS for c in digits):
        return None  # text alone ("-" for a zero): the bare value says more
    return "".join(before), "".join(after), digits, percents


def _shown(value: float, section: str, sign: str) -> str | None:
    layout = _layout(section)
    if layout is None:
        return None
    before, after, digits, percents = layout
    scaled = digits.rstrip(",")
    # abs(): the section says the sign, and -0.0 is no negative number
    value = abs(value) * 100**percents / 1000 ** (len(digits) - len(scaled))
    whole, point, decimals = scaled.partition(".")
    grouped = "," in whole
    whole, decimals = whole.replace(",", ""), decimals.replace(",", "")
    # Excel shows 15 significant digits: 13.684999999999997 is 13.685, so "13.69".
    try:
        amount = decimal.Decimal(f"{value:.15g}").quantize(
            decimal.Decimal(1).scaleb(-len(decimals)), context=_DIGITS_SHOWN
        )
    except decimal.InvalidOperation:  # past even that many digits: a format of 100 decimals
        return None
    text = f"{amount:,f}" if grouped else f"{amount:f}"
    integer, _, fraction = text.partition(".")
    # Optional decimals ("#") are shown only when not zero; a "?" holds a place.
    kept = len(decimals.rstrip("#"))
    fraction = fraction[:kept] + fraction[kept:].rstrip("0")
    width = whole.count("0")
    if integer == "0" and width == 0:
        integer = ""  # "#.##" shows 0.5 as ".5"
    elif len(integer.replace(",", "")) < width:
        integer = integer.zfill(width + integer.count(","))
    # A zero with no "0" to hold its place shows no digit ("#,###"; an accounting "-"??).
    number = integer + (point if point and (fraction or not decimals.strip("#")) else "")
    return sign + before + number + fraction + after
