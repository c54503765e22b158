"""Subtitles and transcripts (WebVTT ``.vtt``, SubRip ``.srt``, YouTube's ``.sbv``, TTML
and DFXP ``.ttml``/``.dfxp``, Advanced SubStation ``.ass``/``.ssa``): what is said, by
whom, and when. A meeting's transcript (Teams, Zoom) or a video's captions read as text were
mostly cue numbers, ``00:01:02.000 --> 00:01:05.000`` lines and ``<v Alice>`` tags, a
sentence cut into two-second cues; YouTube's captions say each line twice (a cue repeats
the line before it as it scrolls up).

Here the cues of one speaker are joined into paragraphs of at most
:data:`_PARAGRAPH_SECONDS`, each opening with its speaker (``Alice: ...``) when the file
names one (``<v Alice>``, or ``Alice:`` opening most cues as Zoom writes them), a
segment each with its time (``Segment.time``), so that a chunk says where in the
recording it is (``time_start``, ``time_end``: seconds).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import XML_ERRORS, ParsedDocument, Segment, local_name
from rag_ingest.parsers.text import decode_text, wide_text

__all__ = ["is_transcript", "parse_transcript"]

# A paragraph closes at a new speaker, a pause this long, or when it spans this long:
# a chunk's times then place it within about this much of the recording.
_PARAGRAPH_SECONDS = 30.0
_PAUSE_SECONDS = 5.0
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
# WebVTT's and SubRip's "start --> end"; YouTube's SBV "start,end" alone on its line.
_TIMING = re.compile(rf"^\s*{_TIME}\s*(?:-->\s*{_TIME}|,\s*{_TIME}\s*$)")
_SRT_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\d+\r?\n\s*" + _TIME.encode() + rb"\s*-->")
_SBV_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*" + _TIME.encode() + rb"," + _TIME.encode() + rb"\r?\n"
)
# A timing line damaged past reading: an arrow with something wrong around it, or two
# times joined by something other than "-->" (cue settings may follow).
_LOOSE_TIME = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,:]\d*)?"
_DAMAGED_TIMING = re.compile(
    rf"^.*-->|^\s*{_LOOSE_TIME}\s*(?:-+>?|=+>|>|,|\s)\s*{_LOOSE_TIME}(?:\s+[\w-]+:\S+)*\s*$"
)
_TIME_SHARD = re.compile(r"^(?=.*\d:)[\d:.,\s>-]+$")
_ASS_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\[Script Info\]", re.IGNORECASE)
# TTML's root, in its namespace (or DFXP's, TTML's draft: Netflix, Amazon, old Flash).
_TTML = re.compile(
    r"<(?:\w+:)?tt\b[^>]*\bxmlns(?::\w+)?=[\"']http://www\.w3\.org/(?:ns/ttml|2006/\d\d/ttaf1)[\"']"
)
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # markup, and SubRip's ASS overrides ({\an8})
# Zoom's "Alice Smith: text"; a name is short and has no sentence punctuation in it.
_NAMED = re.compile(r"^([^\s:.!?][^:.!?]{0,39}):\s+(?=\S)")


@dataclass
class _Cue:
    start: float
    end: float
    lines: list[str]
    speaker: str | None


def is_transcript(head: bytes) -> bool:
    """Whether a file's first bytes are a subtitle or transcript file's (UTF-16 too, as
    Windows tools save SubRip)."""
    if (wide := wide_text(head)) is not None:
        head = wide.encode("utf-8")
    bare = head.removeprefix(b"\xef\xbb\xbf")
    if bare.startswith(b"WEBVTT") and bare[6:7] in (b"", b" ", b"\t", b"\n", b"\r"):
        return True
    if any(start.match(head) for start in (_SRT_START, _SBV_START, _ASS_START)):
        return True
    return _TTML.search(head[:4096].decode("utf-8", "replace")) is not None


def _seconds(groups: tuple[str | None, ...]) -> float:
    hours, minutes, seconds, fraction = groups
    return (
        int(hours or 0) * 3600
        + int(minutes or 0) * 60
        + int(seconds or 0)
        + int((fraction or "0").ljust(3, "0")) / 1000
    )


def _cue_lines(lines: list[str]) -> tuple[str | None, list[str]]:
    """A cue's speaker (its last ``<v Name>``) and its lines of text, markup removed."""
    speaker = None
    payload = []
    for line in lines:
        voice = _VOICE.search(line)
        if voice and voice[1].strip():
            speaker = html.unescape(voice[1].strip())
        line = " ".join(html.unescape(_TAG.sub("", line)).split())
        if line:
            payload.append(line)
    return speaker, payload


def _untimed(lines: list[str]) -> list[str]:
    """The text of a block with no timing a cue's: a cue whose timing line is damaged
    (``00:00:03,000 -> 00:00:04,000``), or a cue's text past a blank line; none of
    WebVTT's header, notes, styles and regions."""
    first = lines[0].strip()
    if first.startswith("WEBVTT") or first.split(" ")[0] in ("NOTE", "STYLE", "REGION"):
        return []
    damaged = next((i for i, line in enumerate(lines[:3]) if _DAMAGED_TIMING.match(line)), None)
    if damaged is not None:
        lines = lines[damaged + 1 :]  # and the cue's number or identifier before it
    elif first.isdigit():
        lines = lines[1:]  # a cue's number
    # and a time cut short (a file ending in "00:00:01,0"): no text
    return [line for line in _cue_lines(lines)[1] if not _TIME_SHARD.match(line)]


def _cues(text: str) -> tuple[list[_Cue], int, list[str]]:
    """The cues of a WebVTT, SubRip or SBV file; how many blocks of text had no readable
    timing, each kept with the cue before it (the first cue's, before any); and, when no
    cue has one, the lines of that text."""
    cues: list[_Cue] = []
    untimed: list[str] = []  # text before the first cue
    blocks = 0
    for block in re.split(r"\n[ \t]*\n", text):
        lines = block.strip("\n").split("\n")
        at = next((i for i, line in enumerate(lines[:3]) if _TIMING.match(line)), None)
        if at is None:
            if orphan := _untimed(lines):
                blocks += 1
                (cues[-1].lines if cues else untimed).extend(orphan)
            continue
        timing = _TIMING.match(lines[at])
        assert timing is not None
        speaker, payload = _cue_lines(lines[at + 1 :])
        if payload or untimed:  # untimed text before the first cue goes with it
            groups = timing.groups()
            end = groups[4:8] if groups[5] is not None else groups[8:]
            cues.append(_Cue(_seconds(groups[:4]), _seconds(end), untimed + payload, speaker))
            untimed = []
    return cues, blocks, untimed


# An ASS line break (\N, \n), a hard space (\h); a drawing ({\p1} m 0 0 l ...) to its end.
_ASS_BREAK = re.compile(r"\\[Nn]")
_ASS_DRAWING = re.compile(r"\{[^}]*\\p[1-9][^}]*\}.*?(?=\{[^}]*\\p0[^}]*\}|$)")


def _ass_cues(text: str) -> list[_Cue]:
    """An Advanced SubStation file's Dialogue lines, by its [Events] Format line (Name is
    the speaker); Comment lines, drawings and override tags left out."""
    fields: list[str] = []
    cues = []
    section = ""
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line.lower()
        elif section == "[events]" and line.lower().startswith("format:"):
            fields = [f.strip().lower() for f in line.split(":", 1)[1].split(",")]
        elif section == "[events]" and line.lower().startswith("dialogue:") and fields:
            values = line.split(":", 1)[1].split(",", len(fields) - 1)
            row = dict(zip(fields, (v.strip() for v in values), strict=False))
            start, end = (_TIMING_ASS.match(row.get(k, "")) for k in ("start", "end"))
            if start is None or end is None:
                continue
            said = _ASS_DRAWING.sub("", row.get("text", ""))
            said = _ASS_BREAK.sub("\n", said).replace("\\h", " ")
            lines = [" ".join(html.unescape(_TAG.sub("", x)).split()) for x in said.split("\n")]
            lines = [x for x in lines if x]
            if lines:
                speaker = row.get("name") or row.get("actor") or None
                cues.append(_Cue(_seconds(start.groups()), _seconds(end.groups()), lines, speaker))
    return sorted(cues, key=lambda cue: cue.start)  # an editor may keep them out of order


_TIMING_ASS = re.compile(rf"^{_TIME}$")
_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|ms|m|s|f|t)$")


def _attributes(element: Any) -> dict[str, str]:
    """An element's attributes by local name (TTML's and DFXP's namespaces differ)."""
    return {local_name(k): v for k, v in element.attrib.items()}


def _ttml_cues(text: str, name: str) -> list[_Cue]:
    """A TTML or DFXP document's paragraphs (``<p begin end>``), their times offset by
    their parents' (``begin`` on a ``<div>``), in frames or ticks where it counts so, a
    ``<br/>`` a line break, ``ttm:agent`` the speaker (by its ``ttm:name``)."""
    from xml.etree import ElementTree

    try:
        # Decoded already: the declaration's encoding would be applied again.
        root = ElementTree.fromstring(_DECLARATION.sub("", text, count=1).encode("utf-8"))
    except XML_ERRORS as exc:
        raise CorruptDocumentError(f"{name}: not a readable TTML document ({exc})") from exc
    top = _attributes(root)
    frame_rate = _rate(top.get("frameRate"), 30.0) * _ratio(top.get("frameRateMultiplier"))
    tick_rate = _rate(top.get("tickRate"), frame_rate if "frameRate" in top else 1.0)

    def seconds(value: str | None) -> float | None:
        value = (value or "").strip()
        if clock := _CLOCK.match(value):
            hours, minutes, secs, frames = clock.groups()
            extra = float(frames) / frame_rate if frames else 0.0
            return int(hours) * 3600 + int(minutes) * 60 + float(secs) + extra
        if offset := _OFFSET.match(value):
            number, unit = float(offset[1]), offset[2]
            per = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
            if unit in per:
                return number * per[unit]
            return number / (frame_rate if unit == "f" else tick_rate)
        return None

    agents = {}
    for element in root.iter():
        if local_name(element.tag) == "agent":
            key = _attributes(element).get("id")
            names = [x.text for x in element if local_name(x.tag) == "name" and x.text]
            if key:
                agents[key] = (names[0] if names else key).strip()

    cues: list[_Cue] = []

    def walk(element: Any, offset: float, speaker: str | None) -> None:
        attributes = _attributes(element)
        begin = seconds(attributes.get("begin"))
        start = offset + (begin or 0.0)
        agent = attributes.get("agent")
        if agent:
            speaker = agents.get(agent.split()[0], agent.split()[0])
        if local_name(element.tag) != "p":
            for child in element:
                walk(child, start, speaker)
            return
        end = seconds(attributes.get("end"))
        duration = seconds(attributes.get("dur"))
        stop = offset + end if end is not None else start + (duration or 0.0)
        lines = [" ".join(x.split()) for x in _said(element).split("\n")]
        lines = [x for x in lines if x]
        if lines:
            cues.append(_Cue(start, max(stop, start), lines, speaker))

    for child in root:
        if local_name(child.tag) == "body":
            walk(child, 0.0, None)
    return sorted(cues, key=lambda cue: cue.start)


_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")


def _rate(value: str | None, default: float) -> float:
    """A frame or tick rate as written, or ``default`` when it is none (or not positive)."""
    try:
        rate = float(value) if value else default
    except ValueError:
        return default
    return rate if rate > 0 else default


def _ratio(multiplier: str | None) -> float:
    """TTML's ``frameRateMultiplier`` ("1000 1001": NTSC's 29.97 frames a second)."""
    try:
        numerator, denominator = (float(x) for x in (multiplier or "1 1").split())
        return numerator / denominator if numerator > 0 and denominator > 0 else 1.0
    except ValueError:
        return 1.0


def _said(element: Any) -> str:
    """An element's text, a ``<br/>`` a line break, metadata left out."""
    parts = [element.text or ""]
    for child in element:
        tag = local_name(child.tag)
        if tag == "br":
            parts.append("\n")
        elif tag != "metadata":
            parts.append(_said(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _without_repeats(cues: list[_Cue]) -> list[_Cue]:
    """Each cue without the lines it repeats from the one before (captions that scroll
    up show the last line again under the next), and without cues left empty. Cues that
    name their speaker do not scroll: a speaker who says "Okay." twice is kept saying it."""
    kept: list[_Cue] = []
    last: list[str] = []
    for cue in cues:
        lines = cue.lines
        scrolling = cue.speaker is None and bool(kept) and kept[-1].speaker is None
        while scrolling and lines and last and lines[0] == last[-1]:
            lines = lines[1:]
        if lines:
            kept.append(_Cue(cue.start, cue.end, lines, cue.speaker))
            last = lines
    return kept


def _named(cues: list[_Cue]) -> list[_Cue]:
    """Speakers written as ``Name: text`` (Zoom), taken as such when most cues open so."""
    if any(cue.speaker for cue in cues):
        return cues
    found = [_NAMED.match(cue.lines[0]) for cue in cues]
    if sum(m is not None for m in found) < max(2, 0.6 * len(cues)):
        return cues
    out = []
    speaker = None
    for cue, match in zip(cues, found, strict=True):
        lines = cue.lines
        if match is not None:
            speaker = match[1]
            lines = [lines[0][match.end() :], *lines[1:]]
        out.append(_Cue(cue.start, cue.end, lines, speaker))
    return out


def _paragraphs(cues: list[_Cue]) -> list[Segment]:
    segments: list[Segment] = []
    words: list[str] = []
    start = end = 0.0
    speaker: str | None = None

    def close() -> None:
        if words:
            text = " ".join(words)
            segments.append(Segment(f"{speaker}: {text}" if speaker else text, time=(start, end)))

    for cue in cues:
        new = (
            not words
            or cue.speaker != speaker
            or cue.start - end >= _PAUSE_SECONDS
            or cue.end - start > _PARAGRAPH_SECONDS
        )
        if new:
            close()
            words, start, speaker = [], cue.start, cue.speaker
        words.extend(cue.lines)
        end = max(end, cue.end) if not new else cue.end
    close()
    return segments


def parse_transcript(path: str, name: str) -> ParsedDocument:
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise BlankDocumentError(f"{name}: blank: nothing to index")
    untimed: list[str] = []  # no cue's: read without times
    if _TTML.search(text[:4096]):
        try:
            found = _ttml_cues(text, name)
        except RecursionError:  # elements nested thousands deep: no captions do that
            raise CorruptDocumentError(f"{name}: a TTML document nested too deep") from None
    elif _ASS_START.match(text.lstrip()[:64].encode()):
        found = _ass_cues(text)
    else:
        found, orphans, untimed = _cues(text)
        if orphans:
            warnings.append(
                f"{orphans} block(s) of text without a readable timing, kept with the cue "
                "before them"
                if found
                else "no cue has a readable timing: its text read without times"
            )
    if untimed:
        segments = [Segment("\n".join(untimed))]
    else:
        cues = _named(_without_repeats(found))
        if not cues:
            raise EmptyDocumentError(f"{name}: a subtitle or transcript file without cues")
        segments = _paragraphs(cues)
    return ParsedDocument(
        file_type="transcript",
        segments=segments,
        parser=f"transcript[{encoding}]",
        warnings=warnings,
    )
