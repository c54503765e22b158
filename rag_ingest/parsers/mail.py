"""E-mail messages (``.eml``, RFC 5322/MIME) as Markdown: the subject as the heading,
the sender, recipients and date, the attachments by name, the body, then the text of
each attachment a parser reads.

Read as plain text, a MIME message is headers, boundaries and base64: an attached
PDF of 1 MB becomes ~1.3 MB of noise chunks. Here the body is the message's
plain-text part (its HTML part, as text, when there is none); attachments are
listed, read by the parser their type calls for (a PDF, a DOCX, a spreadsheet: often
what the mail is about) under ``## Attachment: <name>``, and images among them are
handed to the image describer when one is set. An attachment that cannot be read is
a warning, not a failed message.

A mailbox (:func:`parse_mbox`) is read message by message; with a member cache
(``ParseOptions.member_cache``, as an archive's, see ``parsers.archive``) each message's
parse and chunks are remembered by the SHA-256 of its bytes, so a mailbox that grew
reads only its new and changed messages.
"""

from __future__ import annotations

import dataclasses
import email
import email.headerregistry
import email.policy
import functools
import hashlib
import html.parser
import mmap
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any, BinaryIO

from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    DocumentError,
    MissingExtraError,
)
from rag_ingest.parsers.archive import (
    attach,
    entry_files,
    files_usable,
    kept_plans,
    load_member_cache,
    read_attached,
)
from rag_ingest.parsers.base import (
    UNREAD_SCANS,
    Image,
    ParsedDocument,
    ParseOptions,
    Segment,
    capped,
)
from rag_ingest.parsers.sniff import no_text
from rag_ingest.parsers.text import parse_text, wide_text

__all__ = ["html_text", "mended", "parse_email", "parse_mbox"]

_HEADERS = ("From", "To", "Cc", "Date")
_SKIP_TAGS = {"script", "style", "head", "title"}
_BREAK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BREAK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skipping:
            self._skipping -= 1
        elif tag in _BREAK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML body, a line per block."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _content(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        payload = part.get_payload(decode=True) or b""
        return bytes(payload).decode("utf-8", errors="replace")


class _ParsedOnce(email.headerregistry.HeaderRegistry):
    """The header registry, each header parsed once: the default policy parses a header
    again on every read, and Python's own ``get_body`` and ``iter_attachments`` read a
    part's Content-Type ~15 times (77% of a 2,000-message mailbox's 6.0 s, profiled).
    Header objects are immutable strings: shared safely."""

    @functools.lru_cache(maxsize=1024)  # noqa: B019 (one registry, for the process's life)
    def __call__(self, name: str, value: str) -> email.headerregistry.BaseHeader:
        try:
            return super().__call__(name, value)
        except Exception:
            # Python's header parser fails on some real headers: "To: unlisted-recipients:;
            # (no To-header on input)" raised AttributeError (notmuch's test mails), and
            # failed the whole message. Such a header is kept as its text.
            unstructured = type("_UnstructuredHeader", (self.default_class, self.base_class), {})
            return unstructured(name, value)  # type: ignore[no-any-return]


# What messages are read with: the default policy, its headers parsed once.
POLICY = email.policy.default.clone(header_factory=_ParsedOnce())


# The top-level media types: a Content-Type of none of them is a broken header.
_MEDIA = frozenset(
    {"text", "image", "audio", "video", "application", "multipart", "message", "font", "model"}
)
# A body part's opening boundary line, a header line under it.
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200}?)[ \t]*\r?\n(?=[\w-]+:)", re.MULTILINE)


def mended(message: EmailMessage, warnings: list[str]) -> EmailMessage:
    """``message`` with each multipart whose parts its header no longer finds (a boundary
    broken or misquoted, a mangled ``Content-Type``) split again at the boundary its body
    uses: Python's parser left such a body one undivided string, and the whole mail, text
    and attachments, was read as having no text."""
    if message.is_multipart():
        parts = message.get_payload()
        assert isinstance(parts, list)
        for i, part in enumerate(parts):
            if isinstance(part, EmailMessage):
                parts[i] = mended(part, warnings)
        return message
    kind = message.get_content_maintype()
    payload = message.get_payload()
    if (kind != "multipart" and kind in _MEDIA) or not isinstance(payload, str):
        return message
    found = _BOUNDARY_LINE.search(payload)
    if found is None:
        return message
    subtype = message.get_content_subtype() if kind == "multipart" else "mixed"
    head = f'Content-Type: multipart/{subtype}; boundary="{found[1]}"\n\n'
    split = email.message_from_string(head + payload, policy=POLICY)
    assert isinstance(split, EmailMessage)
    if not split.is_multipart() or not split.get_payload():
        return message
    for header, value in message.items():
        if header.lower() not in ("content-type", "content-transfer-encoding"):
            # As found: ``split[header] = value`` raised ValueError on a second To (a
            # bounce in CPython's own tests has two).
            split.set_raw(header, value)
    warnings.append(f"its parts were found by the boundary its body uses ({found[1]!r})")
    return mended(split, warnings)


def _attached_message(part: Any) -> EmailMessage | None:
    """The message a ``message/rfc822`` part holds (a forward as attachment), else None."""
    if part.get_content_type() != "message/rfc822":
        return None
    content = part.get_content()
    return content if isinstance(content, EmailMessage) else None


def _body_text(message: EmailMessage) -> str:
    """The message's plain-text body, else its HTML body as text; "" for none."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        # A multipart with no boundary, or none its body uses, and no boundary line to
        # mend it by: Python's parser leaves the body one string, text all the same.
        payload = message.get_payload()
        multipart = message.get_content_maintype() == "multipart"
        return payload.strip() if multipart and isinstance(payload, str) else ""
    body = _content(part)
    return (html_text(body) if part.get_content_subtype() == "html" else body).strip()


def _attachments(
    message: EmailMessage, warnings: list[str], bodies: list[str]
) -> Iterator[tuple[Any, bool]]:
    """The message's attachments, each with whether to read it: those Outlook wrapped in
    a ``winmail.dat`` (TNEF) one by one, that attachment's body kept in ``bodies``; a
    winmail.dat that cannot be opened listed, not read (a warning says why)."""
    from rag_ingest.parsers.outlook import tnef_to_email

    single = not message.is_multipart() and message.get_content_maintype() != "multipart"
    if message.get_content_type() == "message/rfc822" or (
        single and (message.get_content_maintype() != "text" or message.is_attachment())
    ):
        # The whole mail one attachment (a scanner's PDF), or a forwarded message (as
        # GroupWise forwards): read as attached, not left out for having no parts.
        yield message, True
        return
    for part in message.iter_attachments():
        name = part.get_filename() or ""
        if part.get_content_type() != "application/ms-tnef" and name.lower() != "winmail.dat":
            yield part, True
            continue
        try:
            inner = tnef_to_email(bytes(part.get_payload(decode=True) or b""), name)
        except (DocumentError, MissingExtraError) as exc:
            warnings.append(f"attachment {name or 'winmail.dat'}: {type(exc).__name__}: {exc}")
            yield part, False
            continue
        body = _body_text(inner)
        if body:
            bodies.append(body)
        yield from ((inner_part, True) for inner_part in inner.iter_attachments())


_INVITATION = "invitation.ics"


def _invitations(part: Any) -> Iterator[bytes]:
    """The message's text/calendar parts (an invitation's alternative, or attached),
    those of a forwarded message left to its own reading."""
    if part.get_content_type() == "message/rfc822":
        return
    if part.get_content_type() == "text/calendar":
        data = part.get_payload(decode=True)
        if data:
            yield bytes(data)
    elif part.is_multipart():
        for inner in part.iter_parts():
            yield from _invitations(inner)


def _sealed(message: email.message.Message) -> str | None:
    """What a message's body is sealed in (PGP/MIME, or S/MIME's encrypted or signed
    data), None when it is not: its text is not there to read, and only a list of
    "application/octet-stream" attachments had said so."""
    kind = message.get_content_type()
    if kind == "multipart/encrypted":
        return f"PGP/MIME encryption ({message.get_param('protocol') or 'no protocol'})"
    if kind in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return f"S/MIME ({message.get_param('smime-type') or 'no smime-type'})"
    parts = message.get_payload() if kind == "multipart/mixed" else None
    if isinstance(parts, list) and parts and isinstance(parts[0], email.message.Message):
        return _sealed(parts[0])  # the body, sealed, with a list's footer beside it
    return None


def parse_email(
    path: str,
    name: str,
    *,
    message: EmailMessage | None = None,
    max_images: int = 0,
    min_image_bytes: int = 0,
    read_attachment: Callable[[str, str], ParsedDocument] | None = None,
    read_images: bool = False,
    unread_images: bool = False,
    temp_dir: str | None = None,
    unread_said: bool = False,
) -> ParsedDocument:
    """``message``: the message already read (an Outlook .msg's), instead of ``path``.
    ``read_attachment(path, name)`` parses an attachment; None lists them only, and
    ``unread_said`` says so in a warning.
    ``read_images``: image attachments are read too (by OCR: a scanned receipt);
    ``unread_images``: they are not for want of OCR, which a warning says.
    ``temp_dir``: where an attachment is written to be read (None: the system's)."""
    from_file = message is None
    if message is None:
        with open(path, "rb") as f:
            message = message_from(f.read())
    if not isinstance(message, EmailMessage) or not message.keys():
        if from_file:
            # A first header line damaged (a byte lost to a bad copy) made every line
            # body: its text is still the mail's, better read than failed.
            read = parse_text(path, name)
            read.warnings.insert(0, f"{name}: no e-mail headers at its start: read as text")
            return read
        raise CorruptDocumentError(f"{name}: not an e-mail message (no headers)")
    # A defect with no words of its own is named by its kind, not left blank ("x.eml: ").
    warnings = [f"{name}: {str(d) or type(d).__name__}" for d in message.defects][:5]
    message = mended(message, warnings)
    if (sealed := _sealed(message)) is not None:
        warnings.append(f"{name}: its body is in {sealed}, which is not read: only its headers are")
    title = f"# {str(message.get('Subject', '')).strip() or '(no subject)'}"
    lines: list[str] = []
    for header in _HEADERS:
        # Each line of a header found twice (a bounce's two To lines), not the first only.
        values = dict.fromkeys(str(value).strip() for value in message.get_all(header, []))
        values.pop("", None)
        if values:
            lines.append(f"{header}: {', '.join(values)}")
    attachments: list[str] = []
    images: list[Image] = []
    attached: list[Segment] = []
    kinds: dict[str, tuple[str, str | None]] = {}
    wrapped: list[str] = []  # the bodies of winmail.dat attachments
    unread = 0  # image attachments left for want of OCR
    listed = 0  # attachments worth reading, listed only (no read_attachment)
    seen: set[bytes] = set()  # what was read, by digest: an invitation attached too is read once
    for part, readable in _attachments(message, warnings, wrapped):
        forwarded = _attached_message(part)
        filename = part.get_filename() or part.get_content_type()
        if forwarded is not None and not part.get_filename():  # named by its subject
            subject = " ".join(str(forwarded.get("Subject", "")).split())[:80]
            filename = f"{subject or 'attached message'}.eml"
        attachments.append(filename)
        image = part.get_content_maintype() == "image"
        unread += image and unread_images and bool(part.get_filename())
        if image and len(images) < max_images:
            data = part.get_payload(decode=True) or b""
            if len(data) >= min_image_bytes:
                images.append(Image(data=bytes(data), mime=part.get_content_type()))
        worth_reading = (
            readable
            and (part.get_filename() or forwarded is not None)
            and not no_text(filename, images=read_images)
            and (read_images or not image)
        )
        listed += bool(worth_reading and read_attachment is None)
        if worth_reading and read_attachment is not None:
            payload = (
                forwarded.as_bytes() if forwarded is not None else part.get_payload(decode=True)
            )
            data = bytes(payload or b"")
            seen.add(hashlib.sha256(data).digest())
            parsed = read_attached(data, filename, read_attachment, warnings, temp_dir, image)
            if parsed is not None:
                # Chunked apart from the mail, as a file of its type; its chunks say so.
                attach(attached, kinds, parsed, filename, f"## Attachment: {filename}", warnings)
    # A meeting invitation's when and where are in its text/calendar alternative (an
    # Outlook invite's plain body is the agenda alone): read as the calendar it is, a
    # forwarded message's too (its body, not an attachment of it).
    for data in _invitations(message):
        if (digest := hashlib.sha256(data).digest()) not in seen:
            from rag_ingest.parsers.calendar import parse_calendar

            seen.add(digest)
            parsed = read_attached(data, _INVITATION, parse_calendar, warnings, temp_dir)
            if parsed is not None:
                attach(attached, kinds, parsed, _INVITATION, "## Invitation", warnings)
    if unread:
        warnings.append(f"{unread} image attachment(s) {UNREAD_SCANS}")
    if listed and unread_said:
        warnings.append(f"{listed} attachment(s) listed, not read: attached too many messages down")
    if attachments:
        lines.append("Attachments: " + ", ".join(attachments))
    body = _body_text(message) or "\n\n".join(wrapped)  # an RTF mail's body may be there alone
    if not body and not attachments and not attached:
        raise BlankDocumentError(f"{name}: an e-mail without text: nothing to index")
    text = "\n\n".join(part for part in (title, "\n".join(lines), body) if part)
    return ParsedDocument(
        file_type="email",
        segments=[Segment(text), *attached],
        members=kinds,
        parser="email",
        warnings=warnings,
        images=images,
    )


# Apple Mail's .emlx: the message's length in bytes on a line of its own, the message,
# then a property list of the mail's flags.
_EMLX_LENGTH = re.compile(rb"(\d{1,12})[ \t]*\r?\n")


def emlx_message(path: str) -> EmailMessage:
    """The message an Apple Mail ``.emlx`` file holds, without its length line and the
    property list after it (read as text before: the plist's XML in its chunks)."""
    with open(path, "rb") as f:
        data = f.read()
    found = _EMLX_LENGTH.match(data)
    if found is not None:
        data = data[found.end() : found.end() + int(found[1])]
    return message_from(data)


_BEFORE_HEADERS = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:[ \t]*\r?\n)*")


def message_from(data: bytes) -> EmailMessage:
    """A message from its bytes, past a UTF-8 BOM and blank lines before its headers
    (as some Windows tools and exports write it): the parser took every header for
    body, and the mail failed as having none. One saved as UTF-16 (PowerShell's
    redirect) is read as its characters, in UTF-8."""
    if (wide := wide_text(data)) is not None:
        data = wide.encode("utf-8", "replace")
    message = email.message_from_bytes(_BEFORE_HEADERS.sub(b"", data, count=1), policy=POLICY)
    assert isinstance(message, EmailMessage)
    return message


# A mailbox's message begins at a line that begins "From " (mbox, as Python's mailbox
# module reads it).
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


def message_spans(path: str, name: str) -> list[tuple[int, int]]:
    """Where each message of a mailbox lies: from its ``From`` line to the next one's."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            starts = [found.start() for found in _FROM_LINE.finditer(data)]
            size = len(data)
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise CorruptDocumentError(f"{name}: not a readable mailbox ({exc})") from exc
    return list(zip(starts, [*starts[1:], size], strict=True))


def message_bytes(f: BinaryIO, span: tuple[int, int]) -> bytes:
    """A mailbox's message at ``span`` (:func:`message_spans`), as Python's mailbox
    module gives it: its From line out, and the blank line before the next one."""
    start, stop = span
    f.seek(start)
    data = f.read(stop - start)
    data = data[data.find(b"\n") + 1 or len(data) :]
    return data[:-1] if data.endswith(b"\n\n") else data


@dataclasses.dataclass
class MailboxPlan:
    """A long mailbox to read in parts of its messages on several workers at once."""

    spans: list[tuple[int, int]]  # where each message lies (:func:`message_spans`)
    warnings: list[str] = dataclasses.field(default_factory=list)
    # A compressed mailbox's decompressed copy, in the document's scratch directory
    # (removed with it), to read the parts from; None: the file itself.
    path: str | None = None


@dataclasses.dataclass
class MailboxPart:
    """Some of a mailbox's messages read (:func:`read_messages`), to be joined in order
    (:func:`mailbox_document`)."""

    segments: list[Segment] = dataclasses.field(default_factory=list)
    members: dict[str, tuple[str, str | None]] = dataclasses.field(default_factory=dict)
    images: list[Image] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    unread: int = 0  # messages with scans or images left unread for want of OCR
    cached: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # its entries
    unchanged: int = 0  # messages taken from the member cache


def message_digests(path: str, spans: list[tuple[int, int]]) -> list[str]:
    """The SHA-256 of each message at ``spans`` (:func:`message_bytes`), the member
    cache's keys for a mailbox's messages."""
    with open(path, "rb") as f:
        return [hashlib.sha256(message_bytes(f, span)).hexdigest() for span in spans]


def read_messages(
    path: str,
    name: str,
    read_message: Callable[..., ParsedDocument],
    spans: list[tuple[int, int]],
    first: int = 1,
    max_images: int = 0,
    cached: dict[str, Any] | None = None,
    remember: bool = False,
) -> MailboxPart:
    """The messages at ``spans`` of a mailbox (see :func:`parse_mbox`), numbered from
    ``first``. A message whose bytes have an entry in ``cached`` (the member cache, by
    SHA-256) is taken from there, not parsed; with ``remember``, each message's entry is
    kept for the next cache (one with pictures to describe is not: they are not kept)."""
    part = MailboxPart()
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; a with block would nest the loop)
    except OSError as exc:
        raise CorruptDocumentError(f"{name}: not a readable mailbox ({exc})") from exc
    with f:
        for number, span in enumerate(spans, first):
            data = message_bytes(f, span)
            digest = hashlib.sha256(data).hexdigest() if remember or cached else ""
            label = f"message {number}"
            entry = _message_entry((cached or {}).get(digest), digest, label)
            if entry is not None:
                part.unchanged += 1
            else:
                # Read from its bytes: a temporary file a message was 18% of the time.
                message = email.message_from_bytes(data, policy=POLICY)
                try:
                    parsed = read_message(path, f"{name} {label}.eml", message)
                except BlankDocumentError:
                    entry = {"sha256": digest, "blank": True}
                except DocumentError as exc:
                    # Not kept: read again next time (an extra installed since may read it).
                    entry, digest = {"failed": f"{type(exc).__name__}: {exc}"}, ""
                else:
                    entry = _entry_of_message(digest, label, parsed)
                    part.images += parsed.images[: max(0, max_images - len(part.images))]
                    if parsed.images:
                        digest = ""  # its pictures are not kept: read again next time
            if remember and digest:
                part.cached.setdefault(digest, entry)
            _take_message(part, label, entry)
    return part


def _entry_of_message(digest: str, label: str, parsed: ParsedDocument) -> dict[str, Any]:
    """A message parsed, as its member-cache entry (JSON), as an archive's file with
    files of its own is kept (``parsers.archive``): its segments each under the name of
    its part (the message's label, an attachment's under it), their kinds, its warnings,
    and whether it has scans or images left unread for want of OCR."""
    subject = parsed.segments[0].text.split("\n", 1)[0].lstrip("# ").strip()
    shown = f"{label}: {' '.join(subject.split())[:100]}"
    names = [shown if s.member is None else f"{shown}/{s.member}" for s in parsed.segments]
    members = {
        name: ["email", None] if s.member is None else list(parsed.members[s.member])
        for s, name in zip(parsed.segments, names, strict=True)
    }
    return {
        "sha256": digest,
        "message": shown,
        "members": members,
        "segments": [
            [s.text, s.page, s.ocr, name, s.time]
            for s, name in zip(parsed.segments, names, strict=True)
        ],
        "warnings": capped((w for w in parsed.warnings if UNREAD_SCANS not in w), 5),
        "unread": any(UNREAD_SCANS in w for w in parsed.warnings),
    }


def _message_entry(entry: Any, digest: str, label: str) -> dict[str, Any] | None:
    """A member-cache entry of a message's bytes, in a shape we wrote, named for the
    message at ``label`` ('message 3'): one kept when the message was another number
    renamed, without its chunk plans (made under the old name); else None."""
    if not isinstance(entry, dict) or not digest or entry.get("sha256") != digest:
        return None
    if entry.get("blank") is True:
        return entry
    shown, members = entry.get("message"), entry.get("members")
    if not (
        isinstance(shown, str)
        and files_usable(entry)
        and isinstance(members, dict)
        and shown in members
        and isinstance(entry.get("unread"), bool)
    ):
        return None
    if shown.startswith(f"{label}: "):
        return entry
    now = label + shown[shown.index(":") :] if ":" in shown else label

    def renamed(member: str) -> str:
        return now + member[len(shown) :]

    return {
        "sha256": digest,
        "message": now,
        "members": {renamed(k): v for k, v in members.items()},
        "segments": [[*s[:3], renamed(s[3]), s[4]] for s in entry["segments"]],
        "warnings": entry["warnings"],
        "unread": entry["unread"],
    }


def _take_message(part: MailboxPart, label: str, entry: dict[str, Any]) -> None:
    """A message's entry (:func:`_entry_of_message`) into the part."""
    if entry.get("blank"):
        return
    if "failed" in entry:
        part.warnings.append(f"{label}: {entry['failed']}")
        return
    members, segments = entry_files(entry)
    part.members.update(members)
    part.segments += segments
    part.unread += entry["unread"]
    # Under the message they are of ("message 3: Invoice: attachment a.pdf: ..."), named
    # as it is now: one numbered anew says its new number.
    part.warnings += [f"{entry['message']}: {warning}" for warning in entry["warnings"]]


def mailbox_document(name: str, parts: list[MailboxPart], max_images: int = 0) -> ParsedDocument:
    """A mailbox's document from its parts, in order, with their member-cache entries
    and the chunk plans those keep."""
    segments = [segment for part in parts for segment in part.segments]
    if not segments:
        raise BlankDocumentError(f"{name}: a mailbox without text: nothing to index")
    warnings = [warning for part in parts for warning in part.warnings]
    unread = sum(part.unread for part in parts)
    if unread:  # first: past the cut below, it would be lost, and the pipeline keys on it
        warnings.insert(0, f"scans or images in {unread} message(s) {UNREAD_SCANS}")
    cache: dict[str, Any] = {}
    for part in parts:
        cache |= {k: v for k, v in part.cached.items() if k not in cache}  # the first copy's
    return ParsedDocument(
        file_type="mbox",
        segments=segments,
        members={member: kind for part in parts for member, kind in part.members.items()},
        parser="mbox",
        warnings=capped(warnings, 20),
        images=[image for part in parts for image in part.images][:max_images],
        cache=cache,
        unchanged_members=sum(part.unchanged for part in parts),
        plans=kept_plans(cache) if cache else None,
    )


def parse_mbox(
    path: str,
    name: str,
    read_message: Callable[..., ParsedDocument],
    *,
    max_images: int = 0,
    options: ParseOptions | None = None,
) -> ParsedDocument:
    """A mailbox (mbox: Thunderbird's folders, Google Takeout's mail, mailing-list
    archives): each message read by ``read_message(path, name, message)`` as an ``.eml``
    is, and chunked apart from the others, its chunks naming it in ``archive_member``
    ('message 3: Re: the build'; an attachment's 'message 3: Re: the build/log.txt').
    A message with no text is passed over; one that cannot be read is a warning.
    ``options``: their ``member_cache``, where messages are remembered as parsed (a
    mailbox that grew is read only for its new messages)."""
    spans = message_spans(path, name)
    cached: dict[str, Any] = {}
    remember = False
    if options is not None:
        kept = options.messages  # a mailbox inside an archive: its entries in the archive's
        cached = kept if kept is not None else load_member_cache(options)
        remember = options.member_cache is not None or kept is not None
    part = read_messages(path, name, read_message, spans, 1, max_images, cached, remember)
    return mailbox_document(name, [part], max_images)
