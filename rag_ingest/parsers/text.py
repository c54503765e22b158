"""Plain text and source code: BOMs, encoding detection, binary refusal."""

from __future__ import annotations

import codecs
import collections
import contextlib
import dataclasses
import itertools
import re
import string
import unicodedata
from collections.abc import Iterator
from typing import Any, BinaryIO

from rag_ingest.errors import BinaryContentError, EmptyDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["decode_text", "drop_encoded", "misfit", "parse_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = bytes(range(0, 32)).replace(b"\t", b"").replace(b"\n", b"").replace(b"\r", b"")
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
# Legacy code pages (HP, Mac, DOS, EBCDIC, rare ISO parts) charset_normalizer lists
# beside the Windows and ISO pages texts are written in.
_RARE = frozenset({
    "hp_roman8", "cp1006", "mac_iceland", "mac_latin2", "mac_roman", "mac_turkish", "mac_greek",
    "mac_cyrillic", "cp775", "cp1125", "kz1048", "ptcp154", "cp037", "cp500", "cp1140", "cp273",
    "cp424", "cp856", "cp875", "cp737", "cp720", "cp858", "cp860", "cp861", "cp862", "cp863",
    "cp864", "cp865", "cp869", "iso8859_3", "iso8859_4", "iso8859_10", "iso8859_13",
    "iso8859_14", "iso8859_16",
})  # fmt: skip
_CONTROL = _CONTROL.replace(b"\x0c", b"").replace(b"\x1b", b"")
# Encoded data (base64): a run of 256+ characters of its alphabet, or 4+ lines of 60+
# wrapped as PEM and MIME wrap them (64 and 76 per line).
_ENCODED = re.compile(
    r"[A-Za-z0-9+/_-]{256,}={0,2}|(?:^[A-Za-z0-9+/]{60,}={0,2}[ \t]*\n){3,}[A-Za-z0-9+/]+={0,2}$",
    re.MULTILINE,
)
# Binary data written as hex (a SQL dump's BLOB as MySQL's 0x... or X'...', a bytea as
# PostgreSQL's \x...): 256+ digits. A 1 MB bytea in a pg_dump became 3,100 chunks of
# digits (one case only, as base64 is not: MySQL's 0X1F... passed for it already).
_HEX = re.compile(r"(?:0[xX]|\\x)([0-9A-Fa-f]{256,})|(?<![\w'])[xX]'([0-9A-Fa-f]{256,})'")


# A run of NUL bytes this long or longer is padding, not data: a log whose blocks were
# allocated but never written when its machine stopped. Binary formats hold lone NULs
# (in numbers, in UTF-16 text) among their others.
_PADDING = re.compile(rb"\x00{32,}")


# A NUL ending each field, as a program writing its C strings whole leaves one before
# the separator (LibreOffice's tdf57841.csv, an Italian ledger, "LIVELLO\0\tSEGNO\0\t"):
# text, its terminators no part of it. No binary data has every NUL before a separator;
# one or two may be a fuzzed or damaged text's ("BeGIN:\0\n" stays binary).
_TERMINATOR = re.compile(rb"\x00(?=[\t,;|\r\n])")
_NOT_TERMINATOR = re.compile(rb"\x00(?![\t,;|\r\n])")


def _without_padding(data: bytes) -> tuple[bytes, int]:
    """``data`` without its runs of NUL padding, and how many bytes were left out; 0,
    and ``data`` as it is, when any NUL stands outside such a run (not text)."""
    kept = _PADDING.sub(b"", data)
    if b"\x00" in kept or not kept.strip():
        return data, 0
    return kept, len(data) - len(kept)


# Unicode without a BOM, told by its NULs: the encoding, its code unit's width, the
# byte of a unit that is never NUL in text, and those that are NUL in Latin letters.
_UNMARKED = (
    ("utf-32-le", 4, 0, (2, 3)),
    ("utf-32-be", 4, 3, (0, 1)),
    ("utf-16-le", 2, 0, (1,)),
    ("utf-16-be", 2, 1, (0,)),
)


# Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Myanmar,
# Khmer; and Hangul): their prose in UTF-16 has next to no ASCII, so next to no NULs.
_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7a3\uff00-\uffef]"
)


# bytes.translate tables: a NUL byte to 0, any other to 1; the high byte of a Chinese
# character with a NUL low byte that no ASCII letter read the wrong way round makes
# (U+4E00 一 aside, as "N" would: U+8000 to U+9F00, 退 among them) to 0, any other to 1.
_NON_NUL = bytes([0] + [1] * 255)
_NOT_HAN = bytes(0 if b == 0x4E or 0x80 <= b <= 0x9F else 1 for b in range(256))


def _ones(sample: bytes, full: int) -> int:
    """How many "一" (U+4E00), "退" (U+9000) and others of U+8000 to U+9F00 a UTF-16
    ``sample`` holds (``full``: the byte of a unit that is never NUL in text): Chinese
    characters with a NUL byte, 一 the commonest of all, in a month's name (一月) or a
    count on every line of an export: a Chinese CSV of dates, 14% of its characters 一,
    was refused as binary for those NULs."""
    low = sample[full::2].translate(_NON_NUL)  # (``sample``: whole units)
    high = sample[1 - full :: 2].translate(_NOT_HAN)
    # Byte-wise OR through two big integers: 0 where a unit is 一 (no per-unit loop,
    # as the first version had: it took 5x the time of the rest on binary data).
    both = int.from_bytes(low, "big") | int.from_bytes(high, "big")
    return both.to_bytes(len(low), "big").count(0)


def _unmarked_unicode(data: bytes) -> str | None:
    """The UTF-16 or UTF-32 of text written without a BOM (SQL Server's ``bcp -w``,
    .NET's and PowerShell's encoders without a preamble), told by a NUL in the high
    byte(s) of its ASCII, or UTF-16 of a script written without spaces (Chinese,
    Japanese, Thai, ...) by its characters; None for anything else (a file of under 32
    characters stays refused as binary)."""
    for encoding, width, full, empty in _UNMARKED:
        sample = data[: min(len(data), 65536) // width * width]
        units = len(sample) // width
        # (A unit's NUL byte in text: a character at U+xx00, or an emoji's low surrogate.)
        nuls = sample[full::width].count(0)
        if nuls > units * 0.05 and width == 2:
            nuls -= _ones(sample, full)
        if units < 32 or nuls > units * 0.05:
            continue
        # A tenth of Latin letters, digits or tabs is enough: the Chinese or Japanese of
        # a database export has its numbers, separators and line breaks.
        latin = all(sample[lane::width].count(0) >= units * 0.1 for lane in empty)
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start < len(sample) - 4:
                if latin:
                    return None
                continue  # (East Asian text read the wrong way round meets a surrogate.)
            text = sample[: exc.start].decode(encoding)  # a pair cut at the sample's end
        # Audio of 8-bit samples in 16-bit frames passed the NULs (a WAV): its "text"
        # was ~8% controls (DEL, C1), where text has next to none.
        odd = sum(1 for c in text if not c.isprintable() and c not in "\t\n\r\f")
        if latin:
            return encoding if odd <= len(text) * 0.01 else None
        # Prose of 44 characters a line had only its line breaks' NULs (2%): refused as
        # binary. Random 16-bit data would meet a surrogate, or land all over the BMP.
        if not odd and len(_UNSPACED.findall(text)) >= len(text) * 0.6:
            return encoding
    return None


def wide_text(data: bytes) -> str | None:
    """The text of bytes that open with a UTF-16 or UTF-32 BOM (as Windows tools and
    PowerShell's redirect save text), the BOM left out; None for any others. For a reader
    of a format defined on bytes (a mail, RTF, subtitles) to read such a file at all."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return None if encoding == "utf-8" else data[len(bom) :].decode(encoding, "replace")
    return None


def decode_text(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """``(text, encoding, warnings)``; binary data raises :class:`BinaryContentError`."""
    warnings: list[str] = []
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, errors="replace")
            return text, encoding + "-bom", warnings
    if b"\x00" in data:
        unmarked = _unmarked_unicode(data)
        if unmarked:
            return data.decode(unmarked, errors="replace"), unmarked, warnings
        data, padding = _without_padding(data)
        if padding:
            warnings.append(f"{padding:,} NUL bytes of padding left out")
        elif _NOT_TERMINATOR.search(data) is None and data.count(0) >= 4:
            data, ended = _TERMINATOR.subn(b"", data)
            warnings.append(f"{ended:,} NUL bytes ending fields left out")
    sample = data[:65536]
    if b"\x00" in sample:
        raise BinaryContentError(f"{name}: binary content (NUL bytes), not text")
    if b"\x1b$)C" in sample:
        # Korean in ISO-2022-KR (old mail) shifts with SO and SI: refused as binary for
        # its control bytes.
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("iso2022_kr"), "iso2022_kr", warnings
    if sample:
        controls = sum(sample.count(bytes([c])) for c in _CONTROL)
        if _OVERSTRUCK.search(sample):  # a terminal's bold and underline: text
            controls -= sample.count(b"\x08")
        # A few in a small file are keystrokes (vim's urm.vim: 5 of 96 bytes, ^V and ^M
        # in its mappings), unless they are much of it.
        share = controls / len(sample)
        if share > 0.05 and (controls >= _FEW_CONTROLS or share > 0.2):
            raise BinaryContentError(f"{name}: binary content ({controls} control bytes)")
    if _ISO2022_JP.search(sample):
        # Japanese in ISO-2022-JP (as mail and old Unix tools wrote it) is 7-bit: it
        # had passed as UTF-8, its text the escapes' ASCII ("$BBh;0;MH").
        try:
            return data.decode("iso2022_jp_ext"), "iso2022_jp", warnings
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    # First a CJK text with a few sequences its codec lacks, or too short for a guess
    # (CPython's 346-byte cp949 and Johab samples had been UTF-8 with 176 and 150 bytes
    # replaced): loosely, charset_normalizer reads Korean in EUC-KR as nonsense GB18030.
    if not matches and (cjk := _multi_byte(data)) is not None:
        text, encoding, bad = cjk
        if bad:
            warnings.append(f"{bad} undecodable bytes replaced with U+FFFD")
        return text, encoding, warnings
    if not matches and len(data) >= _LONG_ENOUGH:
        # charset_normalizer takes no reading past 20% "chaos": vim's French, Russian
        # (KOI8-R, cp1251) and Italian tutors, 36-39 KB each, scored 33-34% in every
        # page and had been read as cp1252, the Russian ones as mojibake.
        matches = list(from_bytes(data, threshold=_LOOSE_CHAOS))
    if matches:
        # The least chaos first; among those, a code page texts are written in over a
        # rare one, which may win on coherence by a little (German in hp_roman8 read
        # "äöü" as "ð—■", a point above cp1250), but not by much (Russian in Mac
        # Cyrillic is not Greek); then the most coherent, and on a tie Western
        # (cp1252), by far the most common legacy encoding.
        chaos = min(m.percent_chaos for m in matches)
        calm = [m for m in matches if m.percent_chaos == chaos]
        common = [m for m in calm if m.encoding not in _RARE]
        if common and _coherence(common) + _COHERENCE_LEEWAY >= _coherence(calm):
            calm = common
        elif not common:
            calm = _common(matches, chaos) or calm
        best = max(calm, key=lambda m: m.percent_coherence)
        tied = [m for m in calm if m.percent_coherence == best.percent_coherence]
        chosen = next((m for m in tied if m.encoding in _WESTERN), best)
        if chosen.encoding == "cp1250" and not _C1.search(data) and _SZ.search(data):
            # cp1250 keeps its most used letters (š ž ś ź ť, capitals too) at 0x8A-0x9F,
            # where ISO-8859-2 has none: text without those bytes but with ISO-8859-2's
            # š ž Š Ž, which ISO-8859-2 reads nearly as calmly, is ISO-8859-2. Czech in
            # it had read "ą" for "š" and "ľ" for "ž" (chardet's test texts, vim's
            # tutors); German with « » (the same bytes as ť Ť) stays as it was.
            iso = next((m for m in matches if m.encoding == "iso8859_2"), None)
            if iso is not None and iso.percent_chaos <= chosen.percent_chaos + _CHAOS_LEEWAY:
                chosen = iso
        if chosen.encoding == "cp1250" and not _C1.search(data):
            # Polish in ISO-8859-2 without š or ž: its ą ś ź are cp1250's ± ¶ Ľ, and
            # charset_normalizer saw more chaos in "gęślą" than in "gę¶l±".
            iso_text = data.decode("iso8859_2")
            if _symbols_in_words(iso_text) < _symbols_in_words(str(chosen)):
                return iso_text, "iso8859_2", warnings
        if chosen.encoding in _SHIFT_JIS:
            cyrillic = _cyrillic(data, str(chosen))
            if cyrillic is not None:
                return (*cyrillic, warnings)
        if chosen.encoding:
            fitter = _better_fit(data, str(chosen), chosen.encoding)
            if fitter is not None:
                return (*fitter, warnings)
            return str(chosen), chosen.encoding, warnings
    try:
        # Too short for a guess ("TEST \xe4\xf6\xfc"), or no reading calm enough: the
        # most common legacy encoding, rather than a U+FFFD for each of its letters.
        text = data.decode("cp1252")
        why = "too short to tell" if len(data) < _LONG_ENOUGH else "could not tell"
        warnings.append(f"{why} its encoding: read as cp1252")
        return text, "cp1252", warnings
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    warnings.append(f"{bad} undecodable bytes replaced with U+FFFD")
    return text, "utf-8-replace", warnings


# A text this long is told by its bytes, if not within charset_normalizer's usual chaos
# then within this: its own messy lines (rules of tildes, English names at its end) had
# put every page past the usual bar alike.
_LONG_ENOUGH = 4096
_LOOSE_CHAOS = 0.5
# Multi-byte encodings a text may be in with a few sequences its codec lacks (a vendor's
# or Hong Kong's characters in Big5): most used first.
_CJK = ("cp950", "cp932", "euc_jp", "cp949", "gbk", "johab")
_CJK_BAD = 0.01  # at most this share of its characters undecodable
_CJK_DENSITY = 0.25  # at least this share of its bytes beyond ASCII
_CJK_SAMPLE = 1 << 20
_HIGH_BYTES = [bytes([b]) for b in range(0x80, 0x100)]


def _multi_byte(data: bytes) -> tuple[str, str, int] | None:
    """A CJK text charset_normalizer gave no reading of, as (text, encoding, characters
    replaced): the encoding reading it with the fewest undecodable sequences, when few,
    that charset_normalizer finds calm once they are out; for a short text, else the one
    encoding that reads it without a fault. vim's Big5 tutor, 45 sequences Big5 lacks in
    24 KB, had been read as UTF-8 with 7,381 bytes replaced."""
    from charset_normalizer import from_bytes

    # Two bytes a character, nearly every one beyond ASCII: 0.45-0.65 of vim's CJK
    # tutors' bytes, 0.004-0.1 of its Latin ones' (Italian's accents, each with the
    # letter after it, read as Shift JIS with 128 faults in 36 KB).
    sample = data[:_CJK_SAMPLE]  # judged by its first MiB: five readings of it each
    if sum(map(sample.count, _HIGH_BYTES)) < len(sample) * _CJK_DENSITY:
        return None
    tried = []
    for encoding in _CJK:
        text = sample.decode(encoding, errors="replace")
        bad = text.count("\ufffd")
        if bad <= len(text) * _CJK_BAD:
            tried.append((bad, encoding, text))
    # Two at most: GBK reads most byte pairs, as nonsense ideographs.
    for _, encoding, text in sorted(tried)[:2]:
        rest = text.replace("\ufffd", "")
        best = min(from_bytes(rest.encode(encoding)), key=lambda m: m.percent_chaos, default=None)
        if best is not None and _MULTI_BYTE.search(best.encoding) and str(best) == rest:
            if len(sample) < len(data):  # the whole of a text past the sample
                text = data.decode(encoding, errors="replace")
            return text, encoding, text.count("\ufffd")
    # None it finds calm in a short text (symbols among its words): the one encoding that
    # reads it without a fault, if only one does, and not as half-width katakana, which
    # is how Shift JIS reads KOI8's Cyrillic letters one by one.
    flawless = [(encoding, text) for bad, encoding, text in tried if bad == 0]
    if len(flawless) == 1 and len(data) < _LONG_ENOUGH:
        encoding, text = flawless[0]
        wide = sum(ord(c) > 127 for c in text)
        if len(_HALF_KANA.findall(text)) * 2 < wide:
            return text, encoding, 0
    return None


# Text overstruck for a terminal, as nroff prints a manual page to a file: "N\bNA\bAM\bME\bE"
# in bold, "_\bw" underlined; read as shown. Refused as binary before: backspaces are a
# tenth of `man ls`'s bytes so printed.
_OVERSTRUCK = re.compile(rb"(?:[\x21-\x7e]\x08[\x21-\x7e]){4}")
_OVERSTRIKE = re.compile(r"[^\n\x08]\x08(?=[^\n\x08])")
_FEW_CONTROLS = 16


# ISO-2022-JP's shifts into JIS X 0208 (ESC $ @, ESC $ B) and half-width katakana.
_ISO2022_JP = re.compile(rb"\x1b\$[@B]|\x1b\(I")
_SHIFT_JIS = frozenset({"shift_jis", "shift_jis_2004", "shift_jisx0213", "cp932"})
_HALF_KANA = re.compile("[\uff61-\uff9f]")


def _cyrillic(data: bytes, read: str) -> tuple[str, str] | None:
    """A short KOI8 text misread as Shift JIS, as its KOI8 reading and encoding. KOI8's
    small letters are Shift JIS's half-width katakana, and charset_normalizer offered
    no other reading ("Итоги квартала" as "鰆ﾏﾇﾉ ﾋﾗﾁﾒﾔﾁﾌﾁ"). Taken only when
    katakana are most of what Shift JIS reads and every letter KOI8 reads is Cyrillic in
    words cased as words are (small after the first: cp1251 inverts KOI8's cases)."""
    wide = [c for c in read if ord(c) > 127]
    if len(_HALF_KANA.findall(read)) * 2 < len(wide):
        return None
    for encoding in ("koi8_r", "koi8_u"):
        text = data.decode(encoding)
        letters = [c for c in text if ord(c) > 127]
        if not all("\u0400" <= c <= "\u04ff" for c in letters):
            continue
        words = re.findall("[\u0400-\u04ff]{2,}", text)
        if words and all(w[1:].islower() for w in words):
            return text, encoding
    return None


# The letters beyond ASCII each language written in a Latin script uses (small ones).
_ALPHABETS = (
    "àâæçéèêëîïôœùûüÿ",  # French
    "äöüßé",  # German
    "áéíñóúü",  # Spanish, Galician
    "áâãàçéêíóôõú",  # Portuguese
    "àèéìíîòóùú",  # Italian
    "àçèéíïòóúü",  # Catalan
    "áéëïóöüèĳ",  # Dutch
    "æøåé",  # Danish, Norwegian
    "åäöé",  # Swedish
    "áðéíóúýþæö",  # Icelandic
    "äöåšž",  # Finnish
    "ąćęłńóśźż",  # Polish
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "čćđšž",  # Slovene, Croatian, Bosnian, Serbian
    "áéíóöőúüű",  # Hungarian
    "ăâîșțşţ",  # Romanian
    "çğıöşüâîû",  # Turkish
    "ąčęėįšųūž",  # Lithuanian
    "āčēģīķļņšūž",  # Latvian
    "äöõüšž",  # Estonian
    "çë",  # Albanian
)
# Alphabets of few writers: a reading fitting one of them alone is taken over another
# only when it fits better by a letter (Turkish's dotless i and ğ in cp1252 are Icelandic's ý ð).
_RARE_ALPHABETS = frozenset({"áðéíóúýþæö", "çë"})
# The code pages texts are written in, most used first, for :func:`_better_fit`.
_PAGES = (
    "cp1252", "cp1250", "cp1251", "cp1257", "cp1254", "iso8859_2", "iso8859_15",
    "iso8859_13", "iso8859_9", "cp1253", "koi8_r",
)  # fmt: skip
_MULTI_BYTE = re.compile(r"big5|cp9[345]\d|euc|gb|hz|iso2022|johab|shift_jis|utf")
# Pages a common one reading a text as well is taken over: DOS's, Mac's, HP's, Vietnamese.
_LESSER = re.compile(r"cp4\d\d|cp8\d\d|cp1258|mac_|hp_")
# Spacing accents (diaeresis, acute, cedilla, ...), superscripts 1 2 3 and fractions:
# by a letter, a byte another page reads as a letter ("traženja" read as "tra¾enja",
# "più" as "pi¨").
_MARKS = (
    "\u00a8\u00b4\u00b8\u00af\u02d8\u02d9\u02dd\u02db\u02c7\u00b9\u00b2\u00b3\u00bc\u00bd\u00be"
)
_LONE_MARKS = re.compile(rf"(?<=[^\W\d_])[{_MARKS}]|[{_MARKS}](?=[^\W\d_])")


def _script(letter: str) -> str:
    name = unicodedata.name(letter, "")
    if any(word in name for word in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
        return "CJK"
    return name.split(" ", 1)[0]


def misfit(text: str) -> int:
    """How far a reading of a text is from one a language would write: letters of
    another script than the rest of their word's; a letter of a script not the text's
    standing alone, no word of its script beside it (a character table read as
    Cyrillic), or a run of one or two ideographs; the kinds of letter beyond ASCII
    outside the alphabet of the Latin-script language they fit best; a small letter
    before a capital; combining marks on Latin letters; symbols and lone accents inside
    words."""
    # Without combining marks, a word is whole across them (Thai's vowels and tones).
    bare = "".join(c for c in text if c.isascii() or unicodedata.category(c) != "Mn")
    odd = _symbols_in_words(bare) + len(_LONE_MARKS.findall(bare))
    odd += sum(  # a combining mark on a Latin letter: Thai's and Hebrew's are their own
        unicodedata.category(b) == "Mn" and a.isalpha() and _script(a) == "LATIN"
        for a, b in itertools.pairwise(text)
        if ord(b) > 127
    )
    # Letters only: "¾" and "²" are word characters.
    words = [w for w in ("".join(filter(str.isalpha, w)) for w in _WORD.findall(bare)) if w]
    if all(w.isascii() for w in words):
        return odd
    scripts: collections.Counter[str] = collections.Counter()
    latin: set[str] = set()
    of_words: list[str] = []
    for word in words:
        if word.isascii():
            scripts["LATIN"] += len(word)
            of_words.append("LATIN")
            continue
        of = [_script(c) if ord(c) > 127 else "LATIN" for c in word]
        scripts.update(of)
        counted = collections.Counter(of).most_common(1)[0]
        of_words.append(counted[0])
        odd += len(of) - counted[1]  # "h酺"; "Pøesuò" is of one script
        if any(  # a small letter, then a capital: KOI8 read as cp1251, "рЕЮБМШОП"
            a.islower() and b.isupper() and not (a.isascii() and b.isascii())
            for a, b in itertools.pairwise(word)
        ):
            odd += 1
        for c, script in zip(word, of, strict=True):
            small = c.lower()[:1]  # "İ".lower() is an i and a combining dot
            if script == "LATIN" and not small.isascii() and small not in "ªºµ":
                latin.add(small)
    dominant = scripts.most_common(1)[0][0]
    for i, (word, script) in enumerate(zip(words, of_words, strict=True)):
        if script == dominant:
            continue
        if script == "CJK":
            # A Latin text's accents read in pairs as ideographs stand alone or by two.
            odd += len(word) if len(word) < 3 else 0
        elif (
            len(word) == 1
            and not word.isascii()
            and not any(
                of_words[j] == script and len(words[j]) > 1
                for j in (i - 1, i + 1)
                if 0 <= j < len(words)
            )
        ):
            odd += 1  # Russian's one-letter words stand by words of their own
    if latin:
        odd += min(len(latin - set(abc)) + (abc in _RARE_ALPHABETS) for abc in _ALPHABETS)
    return odd


def _script_of(text: str) -> str:
    """The script most of a text's letters beyond ASCII are in ("" for none)."""
    scripts = collections.Counter(_script(c) for c in text if ord(c) > 127 and c.isalpha())
    return scripts.most_common(1)[0][0] if scripts else ""


_WORD = re.compile(r"[^\W\d_]+")


def _better_fit(data: bytes, read: str, encoding: str) -> tuple[str, str] | None:
    """A reading in a common code page that fits a language better than
    charset_normalizer's, and its encoding; None when its own fits as well. On short
    texts its guesses are often another page of the same family: excerpts of vim's
    tutors (one to ten lines) were read wrong 221 times in 839 (Czech's "Přesuň" as
    cp1252's "Pøesuò", Latvian as cp1250, Catalan as Big5's "廥")."""
    sample, read = data[:_FIT_SAMPLE], read[:_FIT_SAMPLE]
    if _MULTI_BYTE.search(encoding):
        read = read[: len(sample)]
    own = misfit(read)
    lesser = bool(_MULTI_BYTE.search(encoding) or _LESSER.match(encoding) or encoding in _RARE)
    if own == 0 and not lesser:
        return None
    best: tuple[int, str] | None = None
    for page in _PAGES:
        if page == encoding:
            continue
        try:
            text = sample.decode(page)
        except UnicodeDecodeError:
            continue
        if _C1_TEXT.search(text):
            continue
        cost = misfit(text)
        if _MULTI_BYTE.search(encoding) and cost:
            # A multi-byte reading is taken back only for one that fits a language as
            # well as can be: a Latin text's accents read in pairs as ideographs.
            continue
        if cost and not lesser:
            continue
        # On a tie, a lesser page gives way to a common one reading a Latin script as
        # it does (Danish in cp852 is Czech-like); not Cyrillic, whose pages differ in
        # their letters' cases (Mac Cyrillic's small letters are KOI8's capitals).
        tie = lesser and cost == own and _script_of(text) == _script_of(read) == "LATIN"
        if (cost < own or tie) and (best is None or cost < best[0]):
            best = (cost, page)
    if best is None:
        return None
    try:
        return data.decode(best[1]), best[1]
    except UnicodeDecodeError:
        return None


_FIT_SAMPLE = 65536
_C1_TEXT = re.compile("[\x80-\x9f]")


_C1 = re.compile(rb"[\x80-\x9f]")
_SZ = re.compile(rb"[\xa9\xae\xb9\xbe]")  # Š Ž š ž in ISO-8859-2; © ® ą ľ in cp1250
# A rare code page's reading is taken over a common one's only when this much more
# coherent: Russian in Mac Cyrillic read as Greek (cp1253) at half its coherence.
_COHERENCE_LEEWAY = 10.0


def _coherence(matches: list[Any]) -> float:
    return float(max(m.percent_coherence for m in matches))


# How much more chaos a common code page may show than a rare one and still be taken.
_CHAOS_LEEWAY = 10.0


def _common(matches: list[Any], chaos: float) -> list[Any]:
    """When only rare code pages read a text calmest: the common ones nearly as calm,
    the one that puts the fewest symbols inside words first. Polish and Czech in
    ISO-8859-2 read calmest as ISO-8859-10 ("Pøíliđ ūluŧoučký", all letters, no
    chaos) where cp1250, a little less calm, put '±' and '¶' inside words."""
    rare = next(m for m in matches if m.percent_chaos == chaos)
    if not _latin(str(rare)):
        return []  # a Cyrillic reading is all letters in any code page: no measure here
    near = [
        m for m in matches if m.encoding not in _RARE and m.percent_chaos <= chaos + _CHAOS_LEEWAY
    ]
    near.sort(key=lambda m: (_symbols_in_words(str(m)), m.percent_chaos))
    return near[:1]


# Apostrophes, dashes, Catalan's middle dot and the soft hyphen stand inside words.
_IN_WORD = re.compile(
    r"(?<=[^\W\d_])[^\w\s\x00-\x7f\u2019\u2018\u2013\u2014\u00b7\u00ad](?=[^\W\d_])"
)


def _latin(text: str) -> bool:
    """Whether most of a text's letters outside ASCII are Latin ones."""
    letters = [c for c in text if ord(c) > 127 and c.isalpha()]
    latin = sum(unicodedata.name(c, "").startswith("LATIN") for c in letters)
    return bool(letters) and latin * 2 >= len(letters)


def _symbols_in_words(text: str) -> int:
    """Characters outside ASCII that are neither letters nor digits nor the punctuation
    that belongs in words, between two letters."""
    return len(_IN_WORD.findall(text))


def drop_encoded(text: str) -> tuple[str, int]:
    """``text`` with its encoded data (base64, and binary data as hex) left out, and how
    many characters were: a 1 MB base64 blob in a .txt file became 2,232 chunks of
    noise, each with a vector that ranks against real queries. The expressions run only
    on the lines that can hold such data (a run of 60 or more of base64's characters):
    over the whole of a 150 MB log they took 9.7 s of its parse's 10.2 s."""
    pieces: list[str] = []
    dropped = at = 0
    for start, end in _run_lines(text):
        piece, count = _dropped(text[start:end])
        pieces += [text[at:start], piece]
        dropped += count
        at = end
    if not pieces:
        return text, 0
    pieces.append(text[at:])
    return "".join(pieces), dropped


# Bytes of base64's alphabets (and so of hex) to b"a", any other to b" ": where a run
# of _RUN lies, _ENCODED or _HEX may match (each needs one: 60 a line, or 256).
_RUNS = bytes(
    ord("a") if chr(b) in string.ascii_letters + string.digits + "+/_-" else ord(" ")
    for b in range(256)
)
_RUN = b"a" * 60
_BLOCK = 8 * 1024 * 1024  # characters looked through at once: a copy or two of each


def _run_lines(text: str) -> Iterator[tuple[int, int]]:
    """The spans of ``text`` where its encoded data may lie: each line holding a run of
    :data:`_RUN`, with the line after it (where a PEM block's last, shorter line is), in
    order, spans that overlap joined. A block of lines that is not ASCII (its bytes'
    offsets not its characters') and holds such a run is one span."""
    span: tuple[int, int] | None = None
    for start, end in _runs(text):
        line_end = text.find("\n", end)
        after = text.find("\n", line_end + 1) if line_end >= 0 else -1
        end = len(text) if after < 0 else after
        if span is not None and start < span[1]:
            span = (span[0], max(span[1], end))
            continue
        if span is not None:
            yield span
        span = (start, end)
    if span is not None:
        yield span


def _runs(text: str) -> Iterator[tuple[int, int]]:
    """Each run of :data:`_RUN` in ``text``: the start of its line and its end, looked
    for a block of whole lines at a time, in their bytes."""
    at = 0
    while at < len(text):
        cut = text.find("\n", at + _BLOCK)
        cut = len(text) if cut < 0 else cut + 1
        block = text[at:cut]
        runs = block.encode("utf-8", "surrogatepass").translate(_RUNS)
        found = runs.find(_RUN)
        if found >= 0 and not block.isascii():
            yield at, cut - 1  # the block whole, to its last line break
            found = -1
        while found >= 0:
            run_end = runs.find(b" ", found)
            run_end = len(runs) if run_end < 0 else run_end
            yield text.rfind("\n", 0, at + found) + 1, at + run_end
            found = runs.find(_RUN, run_end)
        at = cut


def _dropped(text: str) -> tuple[str, int]:
    """:func:`drop_encoded` over all of ``text``."""
    dropped = 0

    def hex_stub(match: re.Match[str]) -> str:
        nonlocal dropped
        dropped += len(match.group(0))
        return f"[binary data, {len(match.group(1) or match.group(2)) // 2:,} bytes]"

    def stub(match: re.Match[str]) -> str:
        nonlocal dropped
        data = match.group(0)
        # Letters, digits and both cases: not a rule of dashes or one long word.
        if not (
            re.search(r"[0-9]", data) and re.search(r"[a-z]", data) and re.search(r"[A-Z]", data)
        ):
            return data
        dropped += len(data)
        # Its line breaks stay, so a chunk's line numbers are still the file's.
        return f"[encoded data, {len(data):,} characters]" + "\n" * data.count("\n")

    return _ENCODED.sub(stub, _HEX.sub(hex_stub, text)), dropped


def _tabbed(kind: str, name: str) -> bool:
    """Whether a text file may be a table of tab-separated values by its name."""
    return kind == "text" and name.lower().endswith((".txt", ".tab"))


def _shape(cell: str) -> str:
    """A cell's shape: its runs of letters as "a", of digits as "9" ("A-12" -> "a-9")."""
    return re.sub(r"[^\W\d_]+", "a", re.sub(r"\d+", "9", cell.strip()))


def _tab_table(text: str) -> bool:
    """Whether a text file is a table of tab-separated values, as Excel saves "Text (Tab
    delimited)" and "Unicode Text" as ``.txt``: its first lines (six or more) with the
    same number of tabs each, the first a header: no cell empty or a number, and in at
    least half the columns a shape unlike the rows' (a log of tab-separated fields has
    no such line; csv's own has_header judged by lengths and said no to an export of
    varying ones)."""
    head = text[:65536]
    lines = [line for line in head.splitlines()[:200] if line.strip()]
    if len(text) > len(head):
        lines = lines[:-1]  # the last may be cut short
    if len(lines) < 6 or len({line.count("\t") for line in lines}) != 1 or "\t" not in lines[0]:
        return False
    header, *rows = (line.split("\t") for line in lines)
    if any(not cell.strip() or _shape(cell) in ("9", "9.9", "-9", "-9.9") for cell in header):
        return False
    unlike = sum(
        _shape(cell) != collections.Counter(_shape(row[n]) for row in rows).most_common(1)[0][0]
        for n, cell in enumerate(header)
    )
    return unlike * 2 >= len(header)


def parse_text(
    path: str, name: str, kind: str = "text", language: str | None = None
) -> ParsedDocument:
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    # Every line break as LF: a bare CR (classic Mac OS) is one too, as Python reads it.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x08" in text:
        text = _OVERSTRIKE.sub("", text)
    text, dropped = drop_encoded(text)
    if dropped:
        warnings.append(f"{dropped:,} characters of encoded (base64 or hex) data left out")
    if not text.strip():
        raise EmptyDocumentError(f"{name}: no text")
    if _tabbed(kind, name) and _tab_table(text):
        kind = "csv"  # chunked as a table: every chunk under its header
    return ParsedDocument(
        file_type=kind,
        segments=[Segment(text)],
        parser=f"text[{encoding}]",
        language=language,
        warnings=warnings,
    )


@dataclasses.dataclass
class TextPlan:
    """A long UTF-8 text file to read and chunk in parts of its lines on several workers
    at once: no worker, nor the ingesting process, holds it whole (one of 1.2 GB read in
    one worker went past ``parse.memory_limit``)."""

    path: str
    kind: str
    language: str | None
    parts: list[tuple[int, int]]  # byte ranges, each of whole lines
    bom: bool  # a UTF-8 BOM before the first part's text
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TextPart:
    """One part's text and what was left out of it, summed over the parts for the
    warnings a whole read gives (:func:`text_warnings`)."""

    text: str
    lines: int  # line breaks in its text: where the next part's lines start
    padding: int = 0
    replaced: int = 0
    dropped: int = 0


# A line that may be part of a PEM block or base64 wrapped at 64 or 76: no part ends
# with one, so a block and its short last line are found whole, as in a whole read.
_WRAPPED = re.compile(rb"[A-Za-z0-9+/]{60,}={0,2}[ \t]*\r?\n")
_FAR = 16 * 1024 * 1024  # bytes looked through for a line's end past a part's target


def text_plan(
    path: str, name: str, kind: str, language: str | None, size: int, part_bytes: int
) -> TextPlan | None:
    """The :class:`TextPlan` of a text file of ``size`` bytes in parts of about
    ``part_bytes``, or None when it is to be read whole: its first 64 KiB not plain
    UTF-8 text, or blank (a legacy code page is told from the whole file; UTF-16, NULs,
    control bytes, ISO-2022 escapes, a ``.txt`` table of tab-separated values, read as
    CSV). The first part holds that text: no part's text is blank but where the whole's
    is."""
    with open(path, "rb") as f:
        head = f.read(65536)
        bom = head.startswith(codecs.BOM_UTF8)
        sample = head[3:] if bom else head
        if any(sample.startswith(b) for b, _ in _BOMS) or b"\x00" in sample:
            return None
        if b"\x1b$)C" in sample or _ISO2022_JP.search(sample):
            return None
        if sum(sample.count(bytes([c])) for c in _CONTROL) > len(sample) * 0.05:
            return None
        try:
            text = sample[: sample.rfind(b"\n") + 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not text.strip() or (_tabbed(kind, name) and _tab_table(text)):
            return None  # blank so far (a whole read says if it is all blank), or a table
        cuts = [0]
        target = part_bytes
        while target < size - part_bytes // 2:
            cut = _line_end(f, target, size)
            if cut is None or cut >= size:
                break
            cuts.append(cut)
            target = cut + part_bytes
    cuts.append(size)
    if len(cuts) < 3:
        return None
    return TextPlan(path, kind, language, list(itertools.pairwise(cuts)), bom)


def _line_end(f: BinaryIO, at: int, size: int) -> int | None:
    """Where the first whole line past byte ``at`` ends that is not a line of base64
    (found within :data:`_FAR` bytes), or None. 64 KiB are read first: lines are short."""
    for span in (1 << 16, _FAR):
        f.seek(at)
        window = f.read(min(span, size - at))
        start = window.find(b"\n") + 1  # the line ``at`` falls in may begin before it
        while start:
            end = window.find(b"\n", start)
            if end < 0:
                break
            if not _WRAPPED.match(window, start):
                return at + end + 1
            start = end + 1
        if len(window) < span:
            return None  # the file's end
    return None


def read_text_part(plan: TextPlan, name: str, part: int) -> TextPart:
    """One part of a :class:`TextPlan`'s text, read as :func:`parse_text` reads a file:
    NUL padding and encoded data left out, every line break as LF; bytes that are not
    UTF-8 replaced (a whole read would have guessed a code page over the whole file)."""
    start, stop = plan.parts[part]
    with open(plan.path, "rb") as f:
        f.seek(start)
        data = f.read(stop - start)
    if part == 0 and plan.bom:
        data = data[len(codecs.BOM_UTF8) :]
    padding = 0
    if b"\x00" in data and not plan.bom:  # as decode_text: after a BOM, text as it is
        # A part may be all padding (a hole a crash left in a log): left out all the same.
        kept = _PADDING.sub(b"", data)
        if b"\x00" in kept:
            raise BinaryContentError(f"{name}: binary content (NUL bytes), not text")
        data, padding = kept, len(data) - len(kept)
    replaced = 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        if not plan.bom:  # with a BOM, replaced as a whole read does, unsaid
            replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    del data
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, dropped = drop_encoded(text)
    return TextPart(text, text.count("\n"), padding, replaced, dropped)


def text_warnings(plan: TextPlan, parts: list[TextPart]) -> list[str]:
    """The warnings of a text read in parts, as :func:`parse_text` words them whole."""
    warnings = []
    if padding := sum(p.padding for p in parts):
        warnings.append(f"{padding:,} NUL bytes of padding left out")
    if replaced := sum(p.replaced for p in parts):
        warnings.append(f"{replaced} undecodable bytes replaced with U+FFFD")
    if dropped := sum(p.dropped for p in parts):
        warnings.append(f"{dropped:,} characters of encoded (base64 or hex) data left out")
    return warnings + plan.warnings


def text_parser(plan: TextPlan, parts: list[TextPart]) -> str:
    """The parser name a whole read gives."""
    if any(p.replaced for p in parts):
        return "text[utf-8-replace]"
    return "text[utf-8-bom]" if plan.bom else "text[utf-8]"
