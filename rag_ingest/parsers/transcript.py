"""Subtitles and transcripts (WebVTT ``.vtt``, SubRip ``.srt``): what is said, by whom,
and when. A meeting's transcript (Teams, Zoom) or a video's captions read as text were
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

from rag_ingest.errors import BlankDocumentError, EmptyDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.text import decode_text

__all__ = ["is_transcript", "parse_transcript"]

# A paragraph closes at a new speaker, a pause this long, or when it spans this long:
# a chunk's times then place it within about this much of the recording.
_PARAGRAPH_SECONDS = 30.0
_PAUSE_SECONDS = 5.0
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_SRT_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\d+\r?\n\s*" + _TIME.encode() + rb"\s*-->")
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
    """Whether a file's first bytes are a WebVTT file's or a SubRip file's."""
    bare = head.removeprefix(b"\xef\xbb\xbf")
    if bare.startswith(b"WEBVTT") and bare[6:7] in (b"", b" ", b"\t", b"\n", b"\r"):
        return True
    return _SRT_START.match(head) is not None


def _seconds(groups: tuple[str | None, ...]) -> float:
    hours, minutes, seconds, fraction = groups
    return (
        int(hours or 0) * 3600
        + int(minutes or 0) * 60
        + int(seconds or 0)
        + int((fraction or "0").ljust(3, "0")) / 1000
    )


def _cues(text: str) -> list[_Cue]:
    cues = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = block.strip("\n").split("\n")
        at = next((i for i, line in enumerate(lines[:3]) if "-->" in line), None)
        if at is None:
            continue  # the WEBVTT header, a comment, a style or region block
        timing = _TIMING.match(lines[at])
        if timing is None:
            continue
        speaker = None
        payload = []
        for line in lines[at + 1 :]:
            voice = _VOICE.search(line)
            if voice and voice[1].strip():
                speaker = html.unescape(voice[1].strip())
            line = " ".join(html.unescape(_TAG.sub("", line)).split())
            if line:
                payload.append(line)
        if payload:
            groups = timing.groups()
            cues.append(_Cue(_seconds(groups[:4]), _seconds(groups[4:]), payload, speaker))
    return cues


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
    cues = _named(_without_repeats(_cues(text)))
    if not cues:
        raise EmptyDocumentError(f"{name}: a subtitle or transcript file without cues")
    segments = _paragraphs(cues)
    return ParsedDocument(
        file_type="transcript",
        segments=segments,
        parser=f"transcript[{encoding}]",
        warnings=warnings,
    )
