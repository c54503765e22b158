"""Calendars and contacts (iCalendar ``.ics``, vCard ``.vcf``) as Markdown: an event, a
task or a contact a section, under its summary or name, with what it says in words.

Read as text, an invitation was ``BEGIN:VEVENT``, ``DTSTART;TZID=Europe/Berlin:20261201T
100000``, ``ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:...`` and a description with its
line breaks as ``\\n`` and its lines folded mid-word. Here each event says when (its
time zone named), where, who organizes and attends, how it recurs, and its description;
a contact its organization, title, e-mail addresses, telephones, addresses and note.
Parsed by icalendar (BSD-2-Clause), whose line unfolding and value types are RFC 5545's.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import warnings as warnings_module
from typing import Any

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.text import decode_text

__all__ = ["is_calendar", "parse_calendar"]

_BEGIN = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*BEGIN:(VCALENDAR|VCARD|VEVENT|VTODO|VJOURNAL)\s", re.IGNORECASE
)
_ESCAPE = re.compile(r"\\([\\;,nN])")
# The components read, each a section (an availability's AVAILABLE slot, RFC 7953, as
# an event: its summary, times, rule and place).
_TITLES = {"VEVENT": "", "VTODO": "To do: ", "VJOURNAL": "Journal: ", "AVAILABLE": "Available: "}


def is_calendar(head: bytes) -> bool:
    """Whether a file's first bytes open an iCalendar or a vCard file."""
    return _BEGIN.match(head) is not None


def _text(value: Any) -> str:
    """A property's value in words: escapes undone (icalendar leaves them in properties
    it has no type for, as vCard's), lists joined."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(t for t in (_text(v) for v in value) if t)
    fields = _attribute(value, "fields")
    if fields is not None:  # vCard's structured values: N, ADR, ORG
        return ", ".join(str(p) for p in fields if str(p).strip())
    text = str(value)
    return _ESCAPE.sub(lambda m: "\n" if m[1] in "nN" else m[1], text).strip()


def _attribute(value: Any, name: str) -> Any:
    """``value.name``, or None: a value not of its type (icalendar's broken properties)
    raises on every typed attribute."""
    try:
        return getattr(value, name, None)
    except Exception:  # BrokenCalendarProperty
        return None


def _when(value: Any) -> str:
    """A date or date-time as written, with its time zone: '2026-12-01 10:00 (Europe/Berlin)'."""
    if isinstance(value, list):  # the property given more than once
        return ", ".join(_when(v) for v in value)
    moment = _attribute(value, "dt")
    if isinstance(moment, datetime.datetime):
        shown = moment.strftime("%Y-%m-%d %H:%M")
        # The zone icalendar resolved ("/mozilla.org/20070129_1/America/New_York" is
        # America/New_York), else as written, else UTC for a time given in UTC.
        zone = (
            getattr(moment.tzinfo, "key", None)
            or getattr(value, "params", {}).get("TZID")
            or ("UTC" if moment.utcoffset() == datetime.timedelta(0) else None)
        )
        return f"{shown} ({zone})" if zone else shown
    if isinstance(moment, datetime.date):
        return moment.isoformat()
    return _text(value)


def _moment(moment: Any) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime.datetime):
        if moment.time() == datetime.time(0) or moment.time() == datetime.time(23, 59, 59):
            return moment.date().isoformat()  # an UNTIL of a whole day
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.isoformat() if isinstance(moment, datetime.date) else str(moment)


def _dates(dates: Any) -> str:
    """An EXDATE's dates, or, not dates, as written."""
    listed = _attribute(dates, "dts")
    if listed is None:
        return _text(dates)
    return ", ".join(m for m in (_moment(_attribute(d, "dt")) for d in listed) if m)


_FREQUENCY = {
    "SECONDLY": ("every second", "seconds"),
    "MINUTELY": ("every minute", "minutes"),
    "HOURLY": ("hourly", "hours"),
    "DAILY": ("daily", "days"),
    "WEEKLY": ("weekly", "weeks"),
    "MONTHLY": ("monthly", "months"),
    "YEARLY": ("yearly", "years"),
}
_DAYS = dict(
    zip(
        ("MO", "TU", "WE", "TH", "FR", "SA", "SU"),
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
_WEEKDAY_SET = ["MO", "TU", "WE", "TH", "FR"]
# Parts said in words (WKST, the week's first day, the words need not); any other
# (BYWEEKNO, BYYEARDAY, RSCALE, ...) is kept as written after them.
_SAID = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "BYSETPOS",
        "BYHOUR",
        "BYMINUTE",
        "COUNT",
        "UNTIL",
        "WKST",
    }
)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(n: int, words: bool = True) -> str:
    """3 'third' (with ``words``) or '3rd'; -1 'last', -2 'second from last'."""
    if n == -1:
        return "last"
    if n < 0:
        return f"{_ordinal(-n, words)} from last"
    if words and n in _ORDINALS:
        return _ORDINALS[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _day(code: str) -> str:
    """'MO' Monday, '1MO' the first Monday, '-1FR' the last Friday."""
    code = str(code).upper()
    name = _DAYS.get(code[-2:], code[-2:])
    number = code[:-2].lstrip("+")
    return f"the {_ordinal(int(number))} {name}" if number.lstrip("-").isdigit() else name


def _recurrence(rule: Any) -> str:
    """An RRULE in words: 'every 2 weeks on Monday and Wednesday, until 2027-03-31', its
    parts with no words kept as written ('(BYWEEKNO=20)'). Asked "when is the stand-up?",
    these words are what a question's embedding meets; FREQ=WEEKLY;BYDAY=MO was not."""
    parts = {str(k).upper(): v if isinstance(v, list) else [v] for k, v in dict(rule).items()}
    frequency = str((parts.get("FREQ") or ["?"])[0]).upper()
    every, unit = _FREQUENCY.get(frequency, (frequency.lower(), "times"))
    interval = int((parts.get("INTERVAL") or [1])[0] or 1)
    words = [every if interval == 1 else f"every {interval} {unit}"]
    days = [str(d).upper() for d in parts.get("BYDAY", [])]
    positions = [int(p) for p in parts.get("BYSETPOS", [])]
    if days and positions and sorted(days) == sorted(_WEEKDAY_SET):
        words.append("on the " + _and([f"{_ordinal(p)} weekday" for p in positions]))
    elif days:
        named = [_day(d) for d in days]
        if positions:
            named = [f"{_and(named)} (the {_and([_ordinal(p) for p in positions])} of them)"]
        words.append("on " + _and(named))
    if months := parts.get("BYMONTH"):
        words.append("in " + _and([_month(m) for m in months]))
    if month_days := parts.get("BYMONTHDAY"):
        numbered = [_ordinal(int(d), words=False) for d in month_days]
        counted_back = any(int(d) < 0 for d in month_days)
        words.append("on the " + _and(numbered) + (" day" if counted_back else ""))
    if hours := parts.get("BYHOUR"):
        minutes = parts.get("BYMINUTE") or [0]
        words.append("at " + _and([f"{int(h):02d}:{int(m):02d}" for h in hours for m in minutes]))
    said = " ".join(words)
    if count := parts.get("COUNT"):
        said += f", {count[0]} times"
    if until := parts.get("UNTIL"):
        said += f", until {_moment(until[0])}"
    rest = {k: v for k, v in parts.items() if k not in _SAID}
    if rest:
        # An enum's value: SKIP=FORWARD, not vSkip.FORWARD.
        shown = (f"{k}={','.join(str(getattr(x, 'value', x)) for x in v)}" for k, v in rest.items())
        said += " (" + ";".join(shown) + ")"
    return said


def _rule(rule: Any) -> str:
    """:func:`_recurrence`, or the rule as written when its values are not what RFC 5545
    allows (INTERVAL=x)."""
    try:
        return _recurrence(rule)
    except (TypeError, ValueError, AttributeError):  # BrokenCalendarProperty a ValueError
        return _text(rule)


def _month(number: Any) -> str:
    try:
        return datetime.date(2000, int(number), 1).strftime("%B")
    except (TypeError, ValueError):
        return str(number)


def _person(value: Any) -> str:
    """An organizer or attendee: 'Alice Smith <alice@example.com>'."""
    address = str(value).removeprefix("mailto:").removeprefix("MAILTO:")
    name = getattr(value, "params", {}).get("CN")
    return f"{name} <{address}>" if name and name != address else address


def _joined(value: Any) -> str:
    """A conference's way in: 'Moderator dial-in: tel:+1-412-555-0123,,,654321'."""
    label = getattr(value, "params", {}).get("LABEL")
    return f"{label}: {value}" if label else str(value)


def _all(component: Any, key: str) -> list[Any]:
    """A property's values: icalendar gives a list when it is there more than once."""
    value = component.get(key)
    return value if isinstance(value, list) else [value]


def _event(component: Any) -> str:
    """An event, task or availability as a section; "" for one with nothing in it."""
    said = _text(component.get("SUMMARY"))
    lines = [f"## {_TITLES[component.name]}{said or '(no title)'}"]
    start, end, due = component.get("DTSTART"), component.get("DTEND"), component.get("DUE")
    if start is not None:
        lines.append(f"When: {_when(start)}" + (f" to {_when(end)}" if end is not None else ""))
    if due is not None:
        lines.append(f"Due: {_when(due)}")
    if component.get("RRULE") is not None:
        lines.append("Repeats: " + "; ".join(_rule(r) for r in _all(component, "RRULE")))
    if excepted := ", ".join(filter(None, (_dates(d) for d in _all(component, "EXDATE")))):
        lines.append(f"Except: {excepted}")
    for key, label in (("LOCATION", "Where"), ("STATUS", "Status")):
        if text := _text(component.get(key)):
            lines.append(f"{label}: {text}")
    for key, label in (("ORGANIZER", "Organizer"), ("ATTENDEE", "Attendees")):
        if component.get(key) is not None:
            lines.append(f"{label}: " + ", ".join(_person(p) for p in _all(component, key)))
    if component.get("CONFERENCE") is not None:  # RFC 7986's dial-ins and video links
        lines += [f"Join: {_joined(c)}" for c in _all(component, "CONFERENCE")]
    description = _text(component.get("DESCRIPTION"))
    if not said and len(lines) == 1 and not description:
        return ""
    return "\n".join(lines) + (f"\n\n{description}" if description else "")


def _contact(component: Any) -> str:
    name = _text(component.get("FN")) or _text(component.get("N")) or "(no name)"
    lines = [f"## {name}"]
    for key, label in (
        ("ORG", "Organization"),
        ("TITLE", "Title"),
        ("EMAIL", "E-mail"),
        ("TEL", "Telephone"),
        ("ADR", "Address"),
        ("URL", "Web"),
        ("BDAY", "Birthday"),
    ):
        if text := _text(component.get(key)):
            lines.append(f"{label}: {text}")
    note = _text(component.get("NOTE"))
    return "\n".join(lines) + (f"\n\n{note}" if note else "")


_CARD_START = re.compile(r"^BEGIN:VCARD\s*$", re.IGNORECASE | re.MULTILINE)
_UNESCAPED_SEMICOLON = re.compile(r"(?<!\\);")
# Structured vCard values icalendar takes only whole: N's 5 fields, ADR's 7.
_FIELDS = {"N": 5, "ADR": 7}


def _unfolded_lines(text: str) -> list[str]:
    """The content lines of ``text``, each folded line joined again, as icalendar does."""
    return re.sub(r"\r?\n[ \t]", "", text).splitlines()


def _readable_cards(text: str) -> str:
    """``text`` with its vCards as icalendar reads them. It refused a whole file for one
    contact's N of 2 fields (Outlook writes ``N:Müller;Hans``), an ADR of 5, a vCard 4
    ``GEO:geo:...`` URI or vCard 2.1's bare types (``TEL;WORK;VOICE``, as Outlook and
    Android export); and it left 2.1's quoted-printable values (``M=FCller``) encoded.
    Fields are padded or joined, GEO (not read) left out, bare types made ``TYPE=``,
    quoted-printable decoded in its CHARSET, groups dropped; nothing outside a vCard
    changes."""
    if not _CARD_START.search(text):
        return text
    lines = _unfolded_lines(text)
    out: list[str] = []
    inside = False
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        upper = line.strip().upper()
        if upper in ("BEGIN:VCARD", "END:VCARD"):
            inside = upper == "BEGIN:VCARD"
        if not inside or not line.strip():
            out.append(line)
            continue
        head, colon, value = line.partition(":")
        if colon and '"' not in head:
            named, *params = head.split(";")
            # Out of its group (Apple's "item1.ADR", beside its "item1.X-ABLabel"): grouped,
            # icalendar keeps it as "ITEM1.ADR", under no name a contact's address is read by.
            named = named.rpartition(".")[2]
            key = named.upper()
            if any(p.upper() in ("ENCODING=QUOTED-PRINTABLE", "QUOTED-PRINTABLE") for p in params):
                while value.endswith("=") and i < len(lines):  # a soft line break
                    value = value[:-1] + lines[i]
                    i += 1
                value, params = _unquoted(value, params)
            if key == "GEO":
                continue
            # vCard 2.1's bare types (TEL;WORK;VOICE), which icalendar refuses, as 3.0 writes them.
            params = [p if "=" in p else f"TYPE={p}" for p in params]
            if key in _FIELDS:
                fields = _UNESCAPED_SEMICOLON.split(value)
                count = _FIELDS[key]
                if len(fields) > count:  # the rest in the last field
                    fields = [*fields[: count - 1], " ".join(f for f in fields[count - 1 :] if f)]
                value = ";".join(fields + [""] * (count - len(fields)))
            line = ";".join([named, *params]) + ":" + value
        out.append(line)
    return "\r\n".join(out) + "\r\n"


# A line that opens as a property does (``DTSTART;;VALUE=...``, ``SUMMARY=x``).
_PROPERTY_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9-]*[;:=]")


# A line that opens as prose does, a word with a small letter before a colon ("Note:
# bring laptops"): icalendar reads it as a property of that name, which no event's
# reader asks for.
_PROSE = re.compile(r"^([A-Za-z0-9-]*[a-z][A-Za-z0-9-]*)[;:]", re.MULTILINE)
# An event's properties whose value is text a raw line break may have cut.
_TEXT_PROPERTIES = frozenset({"DESCRIPTION", "SUMMARY", "COMMENT", "LOCATION"})


def _mended_lines(text: str) -> tuple[str, int, int]:
    """``text`` without the lines icalendar cannot read, for a file it refused whole: a
    line that reads as the one before's next line (a description's line break an
    exporter wrote raw, an old phone's unfolded photo) joined to it, any other (a broken
    property) left out; and how many were joined and how many left out. In an event,
    a line after a text property that reads as prose, not as a property any calendar
    names, is joined to it too: icalendar had kept "Note: bring laptops" as a property
    NOTE, and its text was lost without a word."""
    from icalendar.parser import Contentline
    from icalendar.prop import TypesFactory

    known = TypesFactory().types_map

    def readable(line: str) -> bool:
        try:
            Contentline(line).parts()  # type: ignore[no-untyped-call]
        except ValueError:
            return False
        return True

    def prose(line: str, before: str) -> bool:
        word = _PROSE.match(line)
        if word is None or not opened or opened[-1] not in _TITLES:
            return False
        name = word.group(1).upper()
        return (
            name not in known
            and not name.startswith("X-")
            and re.split(r"[;:]", before, maxsplit=1)[0].upper() in _TEXT_PROPERTIES
        )

    out: list[str] = []
    opened: list[str] = []  # the components the line is in
    joined = dropped = 0
    for line in _unfolded_lines(text):
        head = line.upper()
        if head.startswith("BEGIN:"):
            opened.append(head[6:].strip())
        elif head.startswith("END:") and opened:
            opened.pop()
        if out and prose(line, out[-1]) and readable(longer := f"{out[-1]}\\n{line}"):
            out[-1] = longer
            joined += 1
        elif not line.strip() or readable(line):
            out.append(line)
        elif (
            out
            and out[-1].strip()
            and not out[-1].upper().startswith(("BEGIN:", "END:"))
            and not _PROPERTY_LIKE.match(line)  # a broken property, no text run on
            and readable(longer := f"{out[-1]}\\n{line}")
        ):
            out[-1] = longer
            joined += 1
        else:
            dropped += 1
    return "\r\n".join(out) + "\r\n", joined, dropped


def _unquoted(value: str, params: list[str]) -> tuple[str, list[str]]:
    """A quoted-printable value decoded in its CHARSET (line breaks escaped, as a vCard
    value's are), and its parameters without those two."""
    import codecs
    import quopri

    charset = next((p.partition("=")[2] for p in params if p.upper().startswith("CHARSET=")), "")
    try:
        charset = codecs.lookup(charset.strip('"') or "utf-8").name
    except LookupError:
        charset = "utf-8"
    decoded = quopri.decodestring(value.encode("utf-8")).decode(charset, errors="replace")
    decoded = decoded.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    kept = [
        p
        for p in params
        if not p.upper().startswith(("ENCODING=", "CHARSET=")) and p.upper() != "QUOTED-PRINTABLE"
    ]
    return decoded, kept


def _components(text: str) -> list[Any]:
    import icalendar

    with warnings_module.catch_warnings():
        # Its guesses (a vendor-prefixed TZID read as the zone it names) are warnings.
        warnings_module.simplefilter("ignore")
        return list(icalendar.Component.from_ical(text, multiple=True))


_BEGIN_END = re.compile(r"^(BEGIN|END):([A-Za-z0-9-]+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _closed(text: str) -> tuple[str, int]:
    """``text`` with the END lines of the components it leaves open, and how many."""
    open_: list[str] = []
    for match in _BEGIN_END.finditer(text):
        what = match.group(2).upper()
        if match.group(1).upper() == "BEGIN":
            open_.append(what)
        elif what in open_:
            del open_[len(open_) - 1 - open_[::-1].index(what) :]
    ends = "".join(f"END:{what}\r\n" for what in reversed(open_))
    return text.rstrip("\r\n") + "\r\n" + ends, len(open_)


def _skipped_lines(component: Any) -> int:
    """How many lines icalendar passed over in ``component``, not able to parse them."""
    return sum(
        error[0] is None for part in component.walk() for error in getattr(part, "errors", [])
    )


def parse_calendar(path: str, name: str) -> ParsedDocument:
    with open(path, "rb") as f:
        data = f.read()
    text, encoding, warnings = decode_text(data, name)
    text = _readable_cards(text)
    joined = dropped = skipped = 0
    components: list[Any] | None = None
    refused: Exception | None = None
    try:
        components = _components(text)
        # In an event, icalendar passes over a line it cannot parse, noting it only in
        # the event's errors: a description's raw line break lost its next line unsaid.
        skipped = sum(_skipped_lines(c) for c in components)
    except Exception as exc:  # icalendar's ValueError on a broken line, and its kin
        refused = exc
    if refused is not None or skipped or _PROSE.search(text):
        mended_text, joined, dropped = _mended_lines(text)
        mended = None
        if joined or dropped:
            with contextlib.suppress(Exception):
                mended = _components(mended_text)
        if mended is not None:
            components = mended
        elif refused is not None:
            why = f"not a readable calendar or vCard ({refused})"
            raise CorruptDocumentError(f"{name}: {why}") from refused
        else:  # read as icalendar read it, the lines it passed over said
            joined, dropped = 0, skipped
    assert components is not None  # read, or refused above
    if not components and _BEGIN.match(data):
        # icalendar gives nothing for a component never closed: a download cut short
        # is read as far as it goes, its missing END lines put back (icalendar's test
        # calendar of two whole events and no END:VCALENDAR had failed).
        closed, missing = _closed(text)
        with contextlib.suppress(Exception):
            components = _components(closed) if missing else []
        if not components:
            raise CorruptDocumentError(f"{name}: a calendar or vCard cut short (an END is missing)")
        warnings.append(f"cut short: {missing} END line(s) missing, put back")
    segments = []
    title = about = None
    for top in components:
        if top.name == "VCARD":
            if set(top) - {"VERSION"}:  # not one of broken lines only
                segments.append(Segment(_contact(top)))
            continue
        if top.name == "VCALENDAR":
            # Its name and description, Apple's X-WR- properties or RFC 7986's.
            title = title or _text(top.get("X-WR-CALNAME") or top.get("NAME")) or None
            about = about or _text(top.get("X-WR-CALDESC") or top.get("DESCRIPTION")) or None
        # A calendar's events, or an event, a task or an availability on its own, as RFC
        # 5545 and 7953 show them.
        events = (_event(c) for c in top.walk() if c.name in _TITLES)
        segments += [Segment(e) for e in events if e]
    if not segments and dropped:
        raise CorruptDocumentError(
            f"{name}: not a readable calendar or vCard ({dropped} broken line(s))"
        )
    head = "\n\n".join(filter(None, (title and f"# {title}", about)))
    if not segments and not head:
        # Time zones, free/busy times, alarms, an empty calendar: nothing written in it,
        # skipped as an empty file is (icalendar's own test calendars had failed).
        raise BlankDocumentError(
            f"{name}: a calendar or vCard file with no event, task or contact that says "
            "anything: nothing to index"
        )
    if joined:
        warnings.append(f"{joined} line(s) not in iCalendar's form joined to the line before")
    if dropped:
        warnings.append(f"{dropped} line(s) not readable, left out")
    if not segments:
        segments = [Segment(head)]
    elif head:
        segments[0].text = f"{head}\n\n{segments[0].text}"
    contacts = all(c.name == "VCARD" for c in components)
    return ParsedDocument(
        file_type="contacts" if contacts else "calendar",
        segments=segments,
        parser=f"icalendar[{encoding}]",
        warnings=warnings,
    )
