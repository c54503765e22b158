"""Plain text and source code: BOMs, encoding detection, binary refusal."""

from __future__ import annotations

import codecs
import re

from rag_ingest.errors import BinaryContentError, EmptyDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["decode_text", "drop_encoded", "parse_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = bytes(range(0, 32)).replace(b"\t", b"").replace(b"\n", b"").replace(b"\r", b"")
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_CONTROL = _CONTROL.replace(b"\x0c", b"").replace(b"\x1b", b"")
# Encoded data (base64): a run of 256+ characters of its alphabet, or 4+ lines of 60+
# wrapped as PEM and MIME wrap them (64 and 76 per line).
_ENCODED = re.compile(
    r"[A-Za-z0-9+/_-]{256,}={0,2}|(?:^[A-Za-z0-9+/]{60,}={0,2}[ \t]*\n){3,}[A-Za-z0-9+/]+={0,2}$",
    re.MULTILINE,
)


def decode_text(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """``(text, encoding, warnings)``; binary data raises :class:`BinaryContentError`."""
    warnings: list[str] = []
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, errors="replace")
            return text, encoding + "-bom", warnings
    sample = data[:65536]
    if b"\x00" in sample:
        raise BinaryContentError(f"{name}: binary content (NUL bytes), not text")
    if sample:
        controls = sum(sample.count(bytes([c])) for c in _CONTROL)
        if controls / len(sample) > 0.05:
            raise BinaryContentError(f"{name}: binary content ({controls} control bytes)")
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if matches:
        # Short texts tie across code pages; on a tie prefer Western (cp1252), by far
        # the most common legacy encoding, over whichever charset_normalizer lists first.
        best = min(matches, key=lambda m: (m.percent_chaos, -m.percent_coherence))
        tied = [
            m
            for m in matches
            if (m.percent_chaos, m.percent_coherence)
            == (best.percent_chaos, best.percent_coherence)
        ]
        chosen = next((m for m in tied if m.encoding in _WESTERN), best)
        if chosen.encoding:
            return str(chosen), chosen.encoding, warnings
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    warnings.append(f"{bad} undecodable bytes replaced with U+FFFD")
    return text, "utf-8-replace", warnings


def drop_encoded(text: str) -> tuple[str, int]:
    """``text`` with its encoded data left out, and how many characters were: a 1 MB
    base64 blob in a .txt file became 2,232 chunks of noise, each with a vector that
    ranks against real queries."""
    dropped = 0

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

    return _ENCODED.sub(stub, text), dropped


def parse_text(
    path: str, name: str, kind: str = "text", language: str | None = None
) -> ParsedDocument:
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    # Every line break as LF: a bare CR (classic Mac OS) is one too, as Python reads it.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, dropped = drop_encoded(text)
    if dropped:
        warnings.append(f"{dropped:,} characters of encoded (base64) data left out")
    if not text.strip():
        raise EmptyDocumentError(f"{name}: no text")
    return ParsedDocument(
        file_type=kind,
        segments=[Segment(text)],
        parser=f"text[{encoding}]",
        language=language,
        warnings=warnings,
    )
