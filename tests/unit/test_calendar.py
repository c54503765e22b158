"""Calendars and contacts (iCalendar, vCard): an event, a task or a contact a section."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from rag_ingest.chunking import chunk_document
from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers import ParseOptions, detect, parse_file
from rag_ingest.settings import ChunkSettings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "calendar"
OPTIONS = ParseOptions()


def _parse(tmp_path: Path, name: str, data: bytes) -> object:
    path = tmp_path / name
    path.write_bytes(data)
    return parse_file(str(path), name, OPTIONS)


def test_an_invitation_says_when_where_who_and_what_in_words(tmp_path: Path) -> None:
    """Read as text, it was BEGIN:VEVENT, DTSTART;TZID=...:20261201T100000, ATTENDEE;CN=
    ...:mailto: lines, and a description with \\n for its line breaks, folded mid-word."""
    parsed = _parse(tmp_path, "invite.ics", (FIXTURES / "invite.ics").read_bytes())
    assert parsed.file_type == "calendar"  # type: ignore[attr-defined]
    assert parsed.text == (  # type: ignore[attr-defined]
        "# Team calendar\n\n"
        "## Budget review, Q1\n"
        "When: 2026-12-01 10:00 (Europe/Berlin) to 2026-12-01 11:00 (Europe/Berlin)\n"
        "Repeats: weekly on Monday\n"
        "Where: Room 4\n"
        "Organizer: Alice Smith <alice@example.com>\n"
        "Attendees: Bob <bob@example.com>, carol@example.com\n\n"
        "Agenda:\n1. CANARY-ICS numbers\n2. hiring plan that is a very long line folded here"
        "\n\n## To do: Send slides\nDue: 2026-11-30\nStatus: NEEDS-ACTION"
    )
    settings = ChunkSettings(chunk_tokens=64, overlap_tokens=0, whole_document_tokens=0)
    chunks = chunk_document(parsed, settings, {}).chunks  # type: ignore[arg-type]
    assert [c.metadata["heading_path"] for c in chunks] == [
        "Team calendar",  # the chunk opens with the calendar's name
        "Team calendar > Budget review, Q1",
        "Team calendar > Budget review, Q1",
        "Team calendar > To do: Send slides",
    ]


def test_contacts_are_a_section_each(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, "team.vcf", (FIXTURES / "contacts.vcf").read_bytes())
    assert parsed.file_type == "contacts"  # type: ignore[attr-defined]
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Bob Jones\nOrganization: ACME, R&D\nTitle: Engineer\n"
        "E-mail: bob@acme.test, bob@home.test\nTelephone: +1 555 0100\n"
        "Address: 1 Main St, Springfield, IL, 62701, USA\n\nMet at CANARY-VCF conf, 2025"
        "\n\n## Carol"
    )


def test_contacts_as_outlook_android_and_apple_export_them_are_read(tmp_path: Path) -> None:
    """icalendar refused a whole file for one contact's N of 2 fields (Outlook's), an
    ADR of 5, a GEO URI or vCard 2.1's bare types (TEL;WORK;VOICE: Outlook's and
    Android's exports), left 2.1's quoted-printable encoded, and kept Apple's grouped
    properties (item1.ADR) under names no contact's address is read by."""
    outlook = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nN;LANGUAGE=de:Müller;Hans\r\nFN:Hans Müller\r\n"
        "ORG:Bäckerei Größe GmbH;Vertrieb\r\nTEL;WORK;VOICE:+49 30 1234\r\n"
        "ADR;WORK;PREF:;;Hauptstraße 1;Berlin;;10115\r\nEMAIL;PREF;INTERNET:hans@example.de\r\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE:CANARY-QP Kunde seit 2019=0D=0AZweite Zeile, um=\r\n"
        "brochen\r\nEND:VCARD\r\n"
    ).encode("cp1252")
    android = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:"
        b"=C3=98ster;=C3=85se;;;\r\nFN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=85se "
        b"=C3=98ster\r\nTEL;CELL:+47 1234\r\nEND:VCARD\r\n"
    )
    apple = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Appleseed;Johnny;;;\r\nFN:Johnny Appleseed\r\n"
        b"item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
        b"item2.ADR;type=HOME:;;Elm St 5;Springfield;IL;62701;USA;Earth\r\n"
        b"item2.X-ABLabel:home\r\nGEO:geo:37.386013,-122.082932\r\n"
        b"N:A;B;C;D;E;F\r\nEND:VCARD\r\n"
    )
    parsed = _parse(tmp_path, "outlook.vcf", outlook)
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Hans Müller\nOrganization: Bäckerei Größe GmbH, Vertrieb\n"
        "E-mail: hans@example.de\nTelephone: +49 30 1234\n"
        "Address: Hauptstraße 1, Berlin, 10115\n\n"
        "CANARY-QP Kunde seit 2019\nZweite Zeile, umbrochen"
    )
    parsed = _parse(tmp_path, "android.vcf", android)
    assert parsed.text == "## Åse Øster\nTelephone: +47 1234"  # type: ignore[attr-defined]
    parsed = _parse(tmp_path, "apple.vcf", apple)
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Johnny Appleseed\nE-mail: johnny@example.com\n"
        "Address: Elm St 5, Springfield, IL, 62701, USA Earth"
    )
    # An old phone's photo, its base64 written unfolded: its lines joined to the photo's.
    nokia = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Old Nokia\r\nPHOTO;ENCODING=BASE64;TYPE=JPEG:"
        b"/9j/4AAQSkZJRgABAQEASABIAAD\r\n/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQ\r\n"
        b"FhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj\r\n\r\nTEL;CELL:+358 40 1\r\nEND:VCARD\r\n"
    )
    # All in one file, as an export of many: each read, none failing the rest.
    parsed = _parse(tmp_path, "all.vcf", outlook + android + nokia + apple)
    assert parsed.text.count("## ") == 4  # type: ignore[attr-defined]
    assert "## Old Nokia\nTelephone: +358 40 1" in parsed.text  # type: ignore[attr-defined]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "2 line(s) not in iCalendar's form joined to the line before"
    ]


def test_a_calendar_with_lines_out_of_form_is_read_without_them(tmp_path: Path) -> None:
    """icalendar refuses a whole file for one line it cannot parse: an exporter that
    wrote a description's line breaks raw, a stray line between events."""
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        b"DTSTART:20261201T100000Z\r\nSUMMARY:Planning\r\nDESCRIPTION:Agenda:\r\n"
        b"1. CANARY-RAW budget\r\n2. hiring\r\nEND:VEVENT\r\n@@@ stray\r\n"
        b"BEGIN:VEVENT\r\nUID:2\r\nDTSTART:20261202T100000Z\r\nSUMMARY:Review\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "raw.ics", data)
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Planning\nWhen: 2026-12-01 10:00 (UTC)\n\nAgenda:\n1. CANARY-RAW budget\n2. hiring"
        "\n\n## Review\nWhen: 2026-12-02 10:00 (UTC)"
    )
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "2 line(s) not in iCalendar's form joined to the line before",
        "1 line(s) not readable, left out",
    ]
    # Inside an event icalendar passes over such a line without a word: caught there too.
    quiet = data.replace(b"@@@ stray\r\n", b"")
    parsed = _parse(tmp_path, "quiet.ics", quiet)
    assert "Agenda:\n1. CANARY-RAW budget\n2. hiring" in parsed.text  # type: ignore[attr-defined]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "2 line(s) not in iCalendar's form joined to the line before"
    ]
    # Were nothing to mend found, the event is kept as icalendar read it, the loss said.
    from rag_ingest.parsers import calendar

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calendar, "_mended_lines", lambda text: (text, 0, 0))
        kept = _parse(tmp_path, "kept.ics", quiet)
    assert "Agenda:\n\n## Review" in kept.text  # type: ignore[attr-defined]
    assert kept.warnings == ["2 line(s) not readable, left out"]  # type: ignore[attr-defined]
    # A broken property is left out, not run on into the line before.
    typo = quiet.replace(b"SUMMARY:Review\r\n", b"SUMMARY:Review\r\nLOCATION=Room 4\r\n")
    parsed = _parse(tmp_path, "typo.ics", typo)
    assert "## Review\nWhen: 2026-12-02 10:00 (UTC)" in parsed.text  # type: ignore[attr-defined]
    assert "Room 4" not in parsed.text  # type: ignore[attr-defined]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "2 line(s) not in iCalendar's form joined to the line before",
        "1 line(s) not readable, left out",
    ]
    # A file icalendar reads whole is not mended: nothing said.
    whole = data.replace(b"1. CANARY-RAW budget\r\n2. hiring\r\n", b"").replace(
        b"@@@ stray\r\n", b""
    )
    assert _parse(tmp_path, "ok.ics", whole).warnings == []  # type: ignore[attr-defined]


def test_a_raw_line_break_before_words_and_a_colon_keeps_its_text(tmp_path: Path) -> None:
    """icalendar read a description's raw next line "Note: bring laptops" as a property
    NOTE, which no event has: its text was lost, and nothing said."""
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        b"DTSTART:20261201T100000Z\r\nSUMMARY:Planning\r\nDESCRIPTION:Agenda for the week\r\n"
        b"Note: bring CANARY-LAPTOPS\r\nSnacks; bring them too\r\nLocation:Room 2\r\n"
        b"X-Custom-Flag:yes\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "prose.ics", data)
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Planning\nWhen: 2026-12-01 10:00 (UTC)\nWhere: Room 2\n\n"
        "Agenda for the week\nNote: bring CANARY-LAPTOPS\nSnacks; bring them too"
    )
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "2 line(s) not in iCalendar's form joined to the line before"
    ]
    # icalendar reads every line of it: it is mended all the same.
    readable = data.replace(b"Snacks; bring them too\r\n", b"")
    parsed = _parse(tmp_path, "readable.ics", readable)
    assert "Agenda for the week\nNote: bring CANARY-LAPTOPS" in parsed.text  # type: ignore[attr-defined]
    assert parsed.warnings == [  # type: ignore[attr-defined]
        "1 line(s) not in iCalendar's form joined to the line before"
    ]
    # A property's name in small letters is still that property, and an X- one too;
    # after a property that is not text, or outside an event (an alarm's), such a line
    # is left as icalendar reads it.
    cased = data.replace(b"Note: bring CANARY-LAPTOPS\r\nSnacks; bring them too\r\n", b"")
    assert _parse(tmp_path, "cased.ics", cased).warnings == []  # type: ignore[attr-defined]
    after_uid = cased.replace(b"UID:1\r\n", b"UID:1\r\nNote: bring laptops\r\n")
    assert _parse(tmp_path, "uid.ics", after_uid).warnings == []  # type: ignore[attr-defined]
    alarm = cased.replace(
        b"END:VEVENT",
        b"BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Soon\r\n"
        b"Note: bring laptops\r\nEND:VALARM\r\nCOMMENT:Later\r\nTodo: CANARY\r\nEND:VEVENT",
    )
    assert _parse(tmp_path, "alarm.ics", alarm).warnings == [  # type: ignore[attr-defined]
        "1 line(s) not in iCalendar's form joined to the line before"  # the event's, after
    ]
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nNote:Likes tea\r\nEND:VCARD\r\n"
    parsed = _parse(tmp_path, "ann.vcf", card)
    assert "Likes tea" in parsed.text and parsed.warnings == []  # type: ignore[attr-defined]


def test_calendars_are_known_by_content_and_times_in_utc_say_so(tmp_path: Path) -> None:
    data = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261201T090000Z\r\n"
        b"SUMMARY:CANARY-UTC call\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Holiday\r\nEND:VEVENT\r\n"
        # Given twice (a writer's slip): both said; two rules and two organizers too (a
        # list of two had failed the file with an AttributeError).
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261228\r\nDTSTART;VALUE=DATE:20261229\r\n"
        b"RRULE:FREQ=WEEKLY\r\nRRULE:FREQ=MONTHLY\r\nORGANIZER:mailto:a@x.test\r\n"
        b"ORGANIZER;CN=B:mailto:b@x.test\r\nSUMMARY:Twice\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    path = tmp_path / "invite"
    path.write_bytes(data)
    assert detect(str(path), "invite").kind == "calendar"
    assert detect(str(path), "invite.txt").note == "named .txt but is calendar"
    parsed = parse_file(str(path), "invite", OPTIONS)
    assert "## CANARY-UTC call\nWhen: 2026-12-01 09:00 (UTC)" in parsed.text
    assert "## Holiday\nWhen: 2026-12-24" in parsed.text
    assert (
        "## Twice\nWhen: 2026-12-28, 2026-12-29\nRepeats: weekly; monthly\n"
        "Organizer: a@x.test, B <b@x.test>"
    ) in parsed.text


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270331T000000Z",
            "weekly on Monday and Wednesday, until 2027-03-31",
        ),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;WKST=SU", "every 2 weeks on Friday"),
        (
            "FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO,-1FR",
            "every 2 months on the first Monday and the last Friday",
        ),
        ("FREQ=MONTHLY;BYDAY=-2TH", "monthly on the second from last Thursday"),
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "monthly on the last weekday"),
        (
            "FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1",
            "monthly on Saturday and Sunday (the first of them)",
        ),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15,22", "monthly on the 1st, 15th and 22nd"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "monthly on the last day"),
        ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15;COUNT=5", "yearly in March on the 15th, 5 times"),
        ("FREQ=YEARLY;BYDAY=4TH;BYMONTH=11", "yearly on the fourth Thursday in November"),
        ("FREQ=DAILY;INTERVAL=1;BYHOUR=9,17", "daily at 09:00 and 17:00"),
        ("FREQ=HOURLY;INTERVAL=3;BYWEEKNO=20", "every 3 hours (BYWEEKNO=20)"),  # as written
        ("FREQ=YEARLY;RSCALE=HEBREW;SKIP=FORWARD", "yearly (RSCALE=HEBREW;SKIP=FORWARD)"),
    ],
)
def test_a_rule_of_repetition_is_said_in_words(tmp_path: Path, rule: str, words: str) -> None:
    """FREQ=WEEKLY;BYDAY=MO met no question's words ("when is the Monday stand-up?")."""
    data = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Stand-up\r\nDTSTART:20261201T090000Z\r\n"
        f"RRULE:{rule}\r\nEXDATE:20261225T090000Z,20270101T090000Z\r\n"
        "EXDATE;VALUE=DATE:\r\nEND:VEVENT\r\n"  # an empty one, as icalendar's tests have
        "END:VCALENDAR\r\n"
    )
    text = _parse(tmp_path, "standup.ics", data.encode()).text  # type: ignore[attr-defined]
    assert text.endswith(f"\nRepeats: {words}\nExcept: 2026-12-25 09:00, 2027-01-01 09:00")


def test_a_mailed_invitation_is_read_with_the_mail(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["Subject"] = "Invitation: Budget review"
    mail.set_content("Please join.")
    invite = (FIXTURES / "invite.ics").read_bytes()
    mail.add_attachment(invite, maintype="text", subtype="calendar", filename="invite.ics")
    parsed = _parse(tmp_path, "mail.eml", bytes(mail))
    assert "## Attachment: invite.ics" in parsed.text  # type: ignore[attr-defined]
    assert "Organizer: Alice Smith <alice@example.com>" in parsed.text  # type: ignore[attr-defined]
    assert parsed.members == {"invite.ics": ("calendar", None)}  # type: ignore[attr-defined]


def test_an_invitation_s_calendar_alternative_is_read_once(tmp_path: Path) -> None:
    """Outlook sends an invitation as alternatives: its plain body the agenda alone, the
    when and where in the text/calendar one, which had not been read."""
    invite = (FIXTURES / "invite.ics").read_text()

    def outlook() -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = "Budget review, Q1"
        mail.set_content("Agenda: CANARY-AGENDA numbers and hiring.")
        mail.add_alternative("<p>Agenda: numbers and hiring.</p>", subtype="html")
        mail.add_alternative(invite, subtype="calendar", params={"method": "REQUEST"})
        return mail

    parsed = _parse(tmp_path, "invite.eml", bytes(outlook()))
    text = parsed.text  # type: ignore[attr-defined]
    assert text.index("CANARY-AGENDA") < text.index("## Invitation\n\n")
    assert "When: 2026-12-01 10:00 (Europe/Berlin) to 2026-12-01 11:00" in text
    assert parsed.members == {"invitation.ics": ("calendar", None)}  # type: ignore[attr-defined]
    # Google's way, the same calendar attached as invite.ics too: read once, attached.
    google = outlook()
    google.make_mixed()
    google.add_attachment(invite.encode(), maintype="application", subtype="ics",
                          filename="invite.ics")  # fmt: skip
    text = _parse(tmp_path, "google.eml", bytes(google)).text  # type: ignore[attr-defined]
    assert text.count("Where: Room 4") == 1 and "## Attachment: invite.ics" in text
    # An invitation with nothing but its calendar is no blank mail.
    bare = EmailMessage()
    bare["Subject"] = "Stand-up"
    bare.set_content(invite, subtype="calendar")
    assert "Where: Room 4" in _parse(tmp_path, "bare.eml", bytes(bare)).text  # type: ignore[attr-defined]
    # Forwarded, it is read with the forwarded message, once.
    forward = EmailMessage()
    forward["Subject"] = "Fwd: Budget review"
    forward.set_content("See below.")
    forward.add_attachment(outlook())
    text = _parse(tmp_path, "fwd.eml", bytes(forward)).text  # type: ignore[attr-defined]
    assert text.count("Where: Room 4") == 1


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
            CorruptDocumentError,
            "cut short",
        ),
        (b"BEGIN:VCARD\r\n;;broken\r\nEND:VCARD\r\n", CorruptDocumentError, "not a readable"),
        (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", BlankDocumentError, "no event, task"),
    ],
)
def test_broken_or_empty_calendars_fail_typed(
    tmp_path: Path, data: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        _parse(tmp_path, "c.ics", data)


def test_a_value_not_of_its_type_is_shown_as_written(tmp_path: Path) -> None:
    """Found by mutating files at random: a date icalendar could not read had escaped as
    its BrokenCalendarProperty."""
    data = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:CANARY-BROKEN\r\n"
        b"DTSTART:2026-12-0x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "b.ics", data)
    assert "## CANARY-BROKEN\nWhen: 2026-12-0x" in parsed.text  # type: ignore[attr-defined]


def test_an_event_alone_and_a_vendor_time_zone_are_read(tmp_path: Path) -> None:
    """RFC 5545's examples show events and tasks without a calendar around them; Mozilla
    and Evolution name time zones with a vendor prefix, which icalendar resolves with a
    warning (one, under pytest, that had failed the parse)."""
    data = (
        b"BEGIN:VTODO\r\nSUMMARY:CANARY-TODO file the taxes\r\nDUE;VALUE=DATE:20070501\r\n"
        b"END:VTODO\r\nBEGIN:VEVENT\r\nSUMMARY:Market\r\n"
        b"DTSTART;TZID=/mozilla.org/20070129_1/America/New_York:20130907T120000\r\n"
        b"END:VEVENT\r\n"
    )
    path = tmp_path / "loose"
    path.write_bytes(data)
    assert detect(str(path), "loose").kind == "calendar"
    parsed = parse_file(str(path), "loose", OPTIONS)
    assert parsed.text == (
        "## To do: CANARY-TODO file the taxes\nDue: 2007-05-01\n\n"
        "## Market\nWhen: 2013-09-07 12:00 (America/New_York)"
    )


def test_a_calendar_s_name_description_and_availability_are_read(tmp_path: Path) -> None:
    """icalendar's own test calendars: one of RFC 7986's name and description alone, and
    RFC 7953's availability, had failed as having no event."""
    described = (
        b"BEGIN:VCALENDAR\r\nNAME:CANARY-CAL Releases\r\n"
        b"DESCRIPTION:When each version ships.\r\nCOLOR:black\r\nEND:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "c.ics", described)
    assert parsed.text == "# CANARY-CAL Releases\n\nWhen each version ships."  # type: ignore[attr-defined]
    apple = (
        b"BEGIN:VCALENDAR\r\nX-WR-CALNAME:Team\r\nX-WR-CALDESC:CANARY-DESC shared\r\n"
        b"BEGIN:VEVENT\r\nSUMMARY:Standup\r\nDTSTART:20261201T090000Z\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "a.ics", apple)
    assert parsed.text == (  # type: ignore[attr-defined]
        "# Team\n\nCANARY-DESC shared\n\n## Standup\nWhen: 2026-12-01 09:00 (UTC)"
    )
    available = (
        b"BEGIN:VAVAILABILITY\r\nORGANIZER:mailto:bernard@example.com\r\n"
        b"BEGIN:AVAILABLE\r\nSUMMARY:CANARY-AVAIL Monday to Friday\r\n"
        b"DTSTART;TZID=America/Montreal:20111002T090000\r\n"
        b"DTEND;TZID=America/Montreal:20111002T170000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\n"
        b"LOCATION:Montreal\r\nEND:AVAILABLE\r\nEND:VAVAILABILITY\r\n"
    )
    parsed = _parse(tmp_path, "v.ics", available)
    assert parsed.text == (  # type: ignore[attr-defined]
        "## Available: CANARY-AVAIL Monday to Friday\n"
        "When: 2011-10-02 09:00 (America/Montreal) to 2011-10-02 17:00 (America/Montreal)\n"
        "Repeats: weekly on Monday\nWhere: Montreal"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"BEGIN:VTIMEZONE\r\nTZID:Pacific/Fiji\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000"
        b"\r\nTZOFFSETFROM:+1300\r\nTZOFFSETTO:+1200\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
        b"BEGIN:VFREEBUSY\r\nORGANIZER:jsmith@example.com\r\n"
        b"FREEBUSY:19980314T233000Z/19980315T003000Z\r\nEND:VFREEBUSY\r\n",
    ],
)
def test_a_calendar_of_time_zones_or_free_busy_times_only_is_blank(
    tmp_path: Path, body: bytes
) -> None:
    """Skipped as an empty file is, not failed: nothing is written in it."""
    data = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + body + b"END:VCALENDAR\r\n"
    with pytest.raises(BlankDocumentError, match="nothing to index"):
        _parse(tmp_path, "tz.ics", data)


def test_a_calendar_cut_short_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    """icalendar gives nothing for a component never closed: its test calendar of two
    whole events without END:VCALENDAR had failed; events with nothing in them (its
    "big bad calendar") are no sections."""
    data = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:CANARY-ONE: a colon\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:CANARY-TWO cut\r\nDTSTA"
    )
    parsed = _parse(tmp_path, "cut.ics", data)
    assert parsed.text == "## CANARY-ONE: a colon\n\n## CANARY-TWO cut"  # type: ignore[attr-defined]
    assert parsed.warnings == ["cut short: 2 END line(s) missing, put back"]  # type: ignore[attr-defined]
    # Told by what it holds, not by how its section ends: a description that ends in
    # "(no title)" is kept.
    untitled = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDESCRIPTION:CANARY-NOTE (no title)\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = _parse(tmp_path, "untitled.ics", untitled)
    assert parsed.text == "## (no title)\n\nCANARY-NOTE (no title)"  # type: ignore[attr-defined]
    empty = b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\nEND:VEVENT\r\n" * 3
    with pytest.raises(BlankDocumentError, match="says anything"):
        _parse(tmp_path, "empty.ics", empty)


def test_an_event_s_conference_links_are_read(tmp_path: Path) -> None:
    """RFC 7986's CONFERENCE: its dial-ins and video link had been left out, the event
    a heading alone."""
    data = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:CANARY-CALL\r\n"
        b"CONFERENCE;VALUE=URI;FEATURE=PHONE;\r\n LABEL=Attendee dial-in:tel:+1-412-555-0123\r\n"
        b"CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example.com/abc\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert _parse(tmp_path, "call.ics", data).text == (  # type: ignore[attr-defined]
        "## CANARY-CALL\nJoin: Attendee dial-in: tel:+1-412-555-0123\n"
        "Join: https://meet.example.com/abc"
    )
