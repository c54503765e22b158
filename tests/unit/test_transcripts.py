"""Subtitles and transcripts (WebVTT, SubRip): speakers' paragraphs with their times."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import EmptyDocumentError
from rag_ingest.parsers import ParseOptions, detect, parse_file
from rag_ingest.settings import ChunkSettings

OPTIONS = ParseOptions()

# As Teams writes a meeting's transcript: a header, notes, voices, cue settings.
TEAMS = """WEBVTT
Kind: captions
Language: en

NOTE
This transcript was made by a machine.

STYLE
::cue { color: yellow }

0f1e-1
00:00:00.000 --> 00:00:03.500 align:start position:10%
<v Alice Smith>Good morning everyone, let&apos;s start
with the budget.</v>

0f1e-2
00:00:03.600 --> 00:00:06.000
<v Alice Smith>The CANARY-VTT figure is 42 million &amp; rising.</v>

0f1e-3
00:00:06.500 --> 00:00:09.250
<v.loud Bob Jones>Thanks, Alice.</v>

0f1e-4
01:00:09.250 --> 01:00:12.000
<v Alice Smith>One hour later: <b>still</b> here.</v>
"""


def _parse(tmp_path: Path, name: str, data: bytes) -> tuple[list[tuple[str, object]], object]:
    path = tmp_path / name
    path.write_bytes(data)
    parsed = parse_file(str(path), name, OPTIONS)
    return [(s.text, s.time) for s in parsed.segments], parsed


def test_a_meeting_transcript_is_its_speakers_paragraphs_with_their_times(
    tmp_path: Path,
) -> None:
    """Read as text, a transcript was cue IDs, timing lines and <v> tags, each sentence
    cut in two-second pieces."""
    segments, parsed = _parse(tmp_path, "standup.vtt", TEAMS.encode())
    assert segments == [
        (
            "Alice Smith: Good morning everyone, let's start with the budget. "
            "The CANARY-VTT figure is 42 million & rising.",
            (0.0, 6.0),
        ),
        ("Bob Jones: Thanks, Alice.", (6.5, 9.25)),
        ("Alice Smith: One hour later: still here.", (3609.25, 3612.0)),
    ]
    assert parsed.file_type == "transcript"  # type: ignore[attr-defined]
    (chunk,) = chunk_document(parsed, ChunkSettings(), {}).chunks  # type: ignore[arg-type]
    assert (chunk.metadata["time_start"], chunk.metadata["time_end"]) == (0.0, 3612.0)
    assert "-->" not in chunk.text and "<v" not in chunk.text


def test_long_talk_is_cut_into_paragraphs_and_chunks_say_their_times(tmp_path: Path) -> None:
    # SubRip, no speakers: a paragraph closes past 30 s or at a pause of 5 s.
    cues = []
    for i in range(40):  # a cue every 2 s, a pause of 10 s after the 20th
        start = 2 * i + (10 if i >= 20 else 0)
        words = f"CANARY-{i:02d} " + "lorem ipsum dolor sit amet " * 8
        cues.append(
            f"{i + 1}\n00:{start // 60:02d}:{start % 60:02d},000 --> "
            f"00:{(start + 2) // 60:02d}:{(start + 2) % 60:02d},000\n<i>{words}</i>\n"
        )
    segments, parsed = _parse(tmp_path, "talk.srt", "\n".join(cues).encode())
    assert [time for _, time in segments] == [(0.0, 30.0), (30.0, 40.0), (50.0, 80.0), (80.0, 90.0)]
    assert segments[0][0].startswith("CANARY-00 lorem") and "<i>" not in segments[0][0]
    settings = ChunkSettings(chunk_tokens=128, overlap_tokens=0)
    chunks = chunk_document(parsed, settings, {}).chunks  # type: ignore[arg-type]
    assert len(chunks) > 6
    for chunk in chunks:
        first = int(chunk.text.split("CANARY-")[1][:2]) if "CANARY-" in chunk.text else None
        assert chunk.metadata["time_end"] - chunk.metadata["time_start"] <= 30
        if first is not None:  # its first cue's time is within the chunk's
            start = 2 * first + (10 if first >= 20 else 0)
            assert chunk.metadata["time_start"] <= start < chunk.metadata["time_end"]


def test_scrolling_captions_say_each_line_once(tmp_path: Path) -> None:
    """YouTube's captions show the line before under each new one, and word timings."""
    data = b"""WEBVTT
Kind: captions

00:00:00.000 --> 00:00:02.000 align:start position:0%
so<00:00:00.500><c> the</c><00:00:01.000><c> CANARY-YT</c>

00:00:02.000 --> 00:00:02.010 align:start position:0%
so the CANARY-YT

00:00:02.010 --> 00:00:04.000 align:start position:0%
so the CANARY-YT
pipeline<00:00:02.500><c> reads</c><00:00:03.000><c> captions</c>

00:00:04.000 --> 00:00:04.010
pipeline reads captions
"""
    segments, _ = _parse(tmp_path, "video.vtt", data)
    assert segments == [("so the CANARY-YT pipeline reads captions", (0.0, 4.0))]


def test_zoom_speakers_are_read_from_their_cues_and_a_colon_alone_is_no_speaker(
    tmp_path: Path,
) -> None:
    zoom = b"""WEBVTT

1
00:00:01.000 --> 00:00:03.000
Dana Lee: Can everyone see my screen?

2
00:00:03.500 --> 00:00:05.000
Dana Lee: This is the CANARY-ZOOM roadmap.

3
00:00:05.500 --> 00:00:07.000
Sam: Yes: all of it.
"""
    segments, _ = _parse(tmp_path, "GMT20261201-zoom.vtt", zoom)
    assert [text for text, _ in segments] == [
        "Dana Lee: Can everyone see my screen? This is the CANARY-ZOOM roadmap.",
        "Sam: Yes: all of it.",
    ]
    # A line that happens to hold a colon, in a file whose cues do not open with names.
    plain = b"""1
00:00:01,000 --> 00:00:03,000
We meet on Friday.

2
00:00:03,000 --> 00:00:05,000
Note: the meeting moved.

3
00:00:05,000 --> 00:00:07,000
Bring the CANARY-SRT slides.
"""
    segments, _ = _parse(tmp_path, "plain.srt", plain)
    assert segments == [
        ("We meet on Friday. Note: the meeting moved. Bring the CANARY-SRT slides.", (1.0, 7.0))
    ]


def test_transcripts_are_known_by_content_and_decoded(tmp_path: Path) -> None:
    srt = "1\r\n00:00:01,000 --> 00:00:02,500\r\n{\\an8}Grüße aus München, CANARY-CP1252\r\n"
    path = tmp_path / "subs"
    path.write_bytes(srt.encode("cp1252"))
    assert detect(str(path), "subs").kind == "transcript"
    kind = detect(str(path), "subs.txt")
    assert kind.kind == "transcript" and kind.note == "named .txt but is transcript"
    segments, parsed = _parse(tmp_path, "subs.srt", srt.encode("cp1252"))
    assert segments == [("Grüße aus München, CANARY-CP1252", (1.0, 2.5))]
    assert parsed.parser.startswith("transcript[cp125")  # type: ignore[attr-defined]
    # UTF-16, as Windows tools save SubRip, known by content too.
    for encoding in ("utf-16-le", "utf-16-be"):
        path.write_bytes(("\ufeff" + srt).encode(encoding))
        assert detect(str(path), "subs").kind == "transcript"
        assert parse_file(str(path), "subs", OPTIONS).text == "Grüße aus München, CANARY-CP1252"
    # Minutes and seconds only, as WebVTT allows.
    segments, _ = _parse(tmp_path, "short.vtt", b"WEBVTT\n\n01:02.5 --> 01:04.250\nHi\n")
    assert segments == [("Hi", (62.5, 64.25))]


@pytest.mark.parametrize(
    "data", [b"WEBVTT\n\nNOTE nothing said\n", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n"]
)
def test_a_transcript_without_cues_is_empty(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "empty.vtt"
    path.write_bytes(data)
    with pytest.raises(EmptyDocumentError, match="without cues"):
        parse_file(str(path), "empty.vtt", OPTIONS)


def test_voices_name_the_speakers_when_the_file_has_them(tmp_path: Path) -> None:
    # An interview whose lines open with "Q:" and "A:": its voices say who speaks.
    data = b"""WEBVTT

00:00:01.000 --> 00:00:03.000
<v Reporter>Q: What did the CANARY-QA audit find?

00:00:03.000 --> 00:00:05.000
<v Mayor>A: Nothing we did not know.
"""
    segments, _ = _parse(tmp_path, "interview.vtt", data)
    assert [text for text, _ in segments] == [
        "Reporter: Q: What did the CANARY-QA audit find?",
        "Mayor: A: Nothing we did not know.",
    ]


def test_words_said_again_by_named_speakers_are_kept(tmp_path: Path) -> None:
    """Only captions without speakers scroll: "Okay." said by Alice, then twice by Bob,
    had been said once."""
    data = b"""WEBVTT

00:00:01.000 --> 00:00:02.000
<v Alice>Okay.

00:00:02.000 --> 00:00:03.000
<v Bob>Okay.

00:00:03.000 --> 00:00:04.000
<v Bob>Okay.
"""
    segments, _ = _parse(tmp_path, "call.vtt", data)
    assert [text for text, _ in segments] == ["Alice: Okay.", "Bob: Okay. Okay."]


SBV = b"""0:00:00.599,0:00:04.160
Welcome to the launch review CANARY-SBV.

0:00:04.160,0:00:07.200
Today we decide the date.

0:00:20.000,0:00:22.000
After a pause.
"""

ASS = (
    b"[Script Info]\r\nTitle: Demo\r\nScriptType: v4.00+\r\n\r\n"
    b"[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize\r\nStyle: Default,Arial,20\r\n\r\n"
    b"[Events]\r\n"
    b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n"
    # Out of order, as an editor may keep them; a comma in the text; a line break.
    b"Dialogue: 0,0:00:05.00,0:00:08.00,Default,Bob,0,0,0,,{\\i1}Second{\\i0} line, with a "
    b"comma\\Nand a break\r\n"
    b"Dialogue: 0,0:00:01.00,0:00:04.50,Default,Alice,0,0,0,,First line CANARY-ASS\r\n"
    b"Comment: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,a translator's note\r\n"
    b"Dialogue: 0,0:00:09.00,0:00:10.00,Default,,0,0,0,,{\\p1}m 0 0 l 100 0 100 100{\\p0}\r\n"
)

# As a broadcaster's TTML: speakers as agents, times in ticks and seconds, offset by
# their division's begin.
TTML = b"""<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttm="http://www.w3.org/ns/ttml#metadata"
    xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:tickRate="10000000" xml:lang="en">
  <head><metadata>
    <ttm:agent type="person" xml:id="a1"><ttm:name type="full">Alice Smith</ttm:name></ttm:agent>
    <ttm:agent type="person" xml:id="b1"><ttm:name type="full">Bob Jones</ttm:name></ttm:agent>
  </metadata></head>
  <body><div begin="00:01:00.000">
    <p begin="10000000t" end="35000000t" ttm:agent="a1">The budget CANARY-TTML<br/>grows.</p>
    <p begin="4s" end="6.5s" ttm:agent="b1"><span>Agreed, <span>let us</span></span> ship.</p>
  </div></body>
</tt>
"""

# DFXP, TTML's draft (Netflix, Amazon): times in frames at its frame rate, a duration.
DFXP = b"""<?xml version="1.0" encoding="utf-8"?>
<tt xmlns="http://www.w3.org/2006/10/ttaf1"
    xmlns:ttp="http://www.w3.org/2006/10/ttaf1#parameter" ttp:frameRate="25">
<body><div>
<p begin="00:00:01:00" end="00:00:02:12">Frame-timed CANARY-DFXP line.</p>
<p begin="00:00:10.000" dur="2s">Second <br/> caption.</p>
<p begin="00:00:30.000" end="00:00:31.000"><metadata>not said</metadata>Later.</p>
</div></body></tt>
"""


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "talk.sbv",
            SBV,
            [
                (
                    "Welcome to the launch review CANARY-SBV. Today we decide the date.",
                    (0.599, 7.2),
                ),
                ("After a pause.", (20.0, 22.0)),
            ],
        ),
        (
            "ep1.ass",
            ASS,
            [
                ("Alice: First line CANARY-ASS", (1.0, 4.5)),
                ("Bob: Second line, with a comma and a break", (5.0, 8.0)),
            ],
        ),
        (
            "talk.ttml",
            TTML,
            [
                ("Alice Smith: The budget CANARY-TTML grows.", (61.0, 63.5)),
                ("Bob Jones: Agreed, let us ship.", (64.0, 66.5)),
            ],
        ),
        (
            "old.dfxp",
            DFXP,
            [
                ("Frame-timed CANARY-DFXP line.", (1.0, 2.48)),  # 12 frames of 25 a second
                ("Second caption.", (10.0, 12.0)),
                ("Later.", (30.0, 31.0)),
            ],
        ),
    ],
)
def test_sbv_ass_ttml_and_dfxp_are_read_as_webvtt_is(
    tmp_path: Path, name: str, data: bytes, expected: list[tuple[str, object]]
) -> None:
    """Read as text, they were time codes, style tables and XML tags between the words."""
    segments, parsed = _parse(tmp_path, name, data)
    assert segments == expected
    assert parsed.file_type == "transcript"  # type: ignore[attr-defined]
    # Known by content: with no name, or under a name that says nothing (a TTML as .xml).
    path = tmp_path / "unnamed"
    path.write_bytes(data)
    assert detect(str(path), "unnamed").kind == "transcript"
    assert detect(str(path), "captions.xml").kind == "transcript"


def test_a_broken_ttml_is_corrupt_and_a_plain_xml_stays_xml(tmp_path: Path) -> None:
    from rag_ingest.errors import CorruptDocumentError

    path = tmp_path / "cut.ttml"
    path.write_bytes(TTML[: TTML.index(b"<body>") + 20])
    with pytest.raises(CorruptDocumentError, match="not a readable TTML"):
        parse_file(str(path), "cut.ttml", OPTIONS)
    # Entities that expand a billion-fold: expat's limit refuses them.
    laughs = b'<?xml version="1.0"?><!DOCTYPE tt [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    laughs += b'<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="1s">&j;</p></body></tt>'
    path.write_bytes(laughs)
    with pytest.raises(CorruptDocumentError, match="not a readable TTML"):
        parse_file(str(path), "cut.ttml", OPTIONS)
    # Nested thousands deep (no captions are): refused, not a RecursionError.
    deep = b'<tt xmlns="http://www.w3.org/ns/ttml"><body>' + b"<div>" * 5000
    path.write_bytes(deep + b'<p begin="1s">x</p>' + b"</div>" * 5000 + b"</body></tt>")
    with pytest.raises(CorruptDocumentError, match="nested too deep"):
        parse_file(str(path), "cut.ttml", OPTIONS)
    # Its declaration's encoding is not applied to text decoded already; a rate of 0 or of
    # no number is the default's.
    odd = TTML.replace(b'encoding="UTF-8"', b'encoding="UTF-16"')
    odd = odd.replace(b'ttp:tickRate="10000000"', b'ttp:tickRate="0"')  # 1 tick a second
    segments, _ = _parse(tmp_path, "odd.ttml", odd)
    assert segments[-1] == ("Alice Smith: The budget CANARY-TTML grows.", (10000060.0, 35000060.0))
    odd = DFXP.replace(b'ttp:frameRate="25"', b'ttp:frameRate="x"')  # 30 frames a second
    segments, _ = _parse(tmp_path, "odd.dfxp", odd)
    assert segments[0] == ("Frame-timed CANARY-DFXP line.", (1.0, 2.4))
    plain = tmp_path / "config.xml"
    plain.write_bytes(b'<?xml version="1.0"?>\n<tt><p begin="1s">not TTML</p></tt>\n')
    assert detect(str(plain), "config.xml").kind != "transcript"


def test_text_whose_timing_is_damaged_is_kept_with_the_cue_before(tmp_path: Path) -> None:
    # A cue's arrow lost a dash, a cue's second paragraph past a blank line, a number
    # damaged in a time: their text was dropped without a word.
    srt = (
        "1\n00:00:01,000 --> 00:00:02,000\nHello there.\n\n"
        "2\n00:00:03,000 -> 00:00:04,000\nCANARY-ARROW line.\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\nGoodbye.\n\nCANARY-PARAGRAPH of cue three.\n\n"
        "4\n00:00:0x,000 --> 00:00:08,000\nCANARY-DIGIT line.\n\n"
        "5\n00:00:09,0"  # cut short: no text
    )
    segments, parsed = _parse(tmp_path, "talk.srt", srt.encode())
    assert segments == [
        (
            "Hello there. CANARY-ARROW line. Goodbye. CANARY-PARAGRAPH of cue three. "
            "CANARY-DIGIT line.",
            (1.0, 6.0),
        )
    ]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "3 block(s) of text without a readable timing, kept with the cue before them"
    ]
    # Before the first cue: kept with it. WebVTT's header, notes and styles are not text.
    vtt = (
        "WEBVTT\n\nNOTE made by a machine\n\nSTYLE\n::cue { color: red }\n\n"
        "intro\n00:00:00.000 => 00:00:01.000\nCANARY-FIRST words.\n\n"
        "00:00:01.000 --> 00:00:02.000\nThen more.\n"
    )
    segments, parsed = _parse(tmp_path, "talk.vtt", vtt.encode())
    assert segments == [("CANARY-FIRST words. Then more.", (1.0, 2.0))]
    assert len(parsed.warnings) == 1  # type: ignore[attr-defined]


def test_a_transcript_with_no_readable_timing_is_read_without_times(tmp_path: Path) -> None:
    srt = (
        "1\n00:00:01,000 -> 00:00:02,000\nCANARY-ONE said.\n\n"
        "2\n00:00:03,000 -> 00:00:04,000\n<i>CANARY-TWO</i> said.\n"
    )
    segments, parsed = _parse(tmp_path, "broken.srt", srt.encode())
    assert segments == [("CANARY-ONE said.\nCANARY-TWO said.", None)]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "no cue has a readable timing: its text read without times"
    ]
    (chunk,) = chunk_document(parsed, ChunkSettings(), {}).chunks  # type: ignore[arg-type]
    assert "CANARY-TWO" in chunk.text and "time_start" not in chunk.metadata
