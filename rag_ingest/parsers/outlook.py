"""Outlook ``.msg`` messages (MS-OXMSG: MAPI properties in a compound file) as the e-mail
they stand for, to be read as an ``.eml`` is: subject, sender, recipients, date, the
plain-text body (the HTML body when there is none, else the RTF body's text), and the
attachments, a message attached as one (a forward as attachment) given as an ``.eml``.
olefile (BSD) reads the compound file, compressed-rtf (MIT) the RTF body (extra
``office``).
"""

from __future__ import annotations

import codecs
import datetime
import email.parser
import email.policy
import email.utils
import mimetypes
import re
from email.message import EmailMessage
from typing import Any

from rag_ingest.errors import CorruptDocumentError, MissingExtraError

__all__ = ["is_msg_directory", "msg_to_email", "tnef_to_email"]

# Stream names an Outlook message's compound file holds from its first directory entries.
_MSG_NAMES = ("__substg1.0_", "__properties_version1.0", "__nameid_version1.0")
_UNICODE, _STRING8, _BINARY, _OBJECT = "001F", "001E", "0102", "000D"
_SUBJECT, _BODY, _HTML, _RTF = 0x0037, 0x1000, 0x1013, 0x1009
_SENDER_NAME, _SENDER_ADDRESS, _SENDER_SMTP = 0x0C1A, 0x0C1F, 0x5D01
_DISPLAY_TO, _DISPLAY_CC = 0x0E04, 0x0E03
_RECIPIENT_NAME, _RECIPIENT_ADDRESS, _RECIPIENT_SMTP = 0x3001, 0x3003, 0x39FE
_RECIPIENT_TYPE = 0x0C150003  # PT_LONG in the property stream: 1 To, 2 Cc, 3 Bcc
_LONG_NAME, _SHORT_NAME, _DISPLAY_NAME, _MIME_TAG = 0x3707, 0x3704, 0x3001, 0x370E
_ATTACH_DATA = 0x3701
# The headers a received message came with (PidTagTransportMessageHeaders): the SMTP
# addresses of an Exchange sender's and recipients', whose own are /O=... paths.
_TRANSPORT_HEADERS = 0x007D
# A signed message (IPM.Note.SMIME.MultipartSigned, PGP/MIME or S/MIME) keeps its whole
# MIME form in one attachment of this type: its attachments are only in there.
_SIGNED = "multipart/signed"
# Sent, delivered, created: the first one a message has is its date (PT_SYSTIME).
_TIMES = (0x00390040, 0x0E060040, 0x30070040)
_CODEPAGES = (0x3FDE0003, 0x3FFD0003)  # PidTagInternetCodepage, PidTagMessageCodepage
# A property stream's header: the message's 32 bytes, an embedded message's 24, an
# attachment's or a recipient's 8.
_TOP, _EMBEDDED, _CHILD = 32, 24, 8
_MAX_ATTACHMENTS = 2048  # the format's own limit
_MAIN_TYPES = {"text", "image", "audio", "video", "application", "font", "model"}
_TOKEN = re.compile(r"[\w.+-]+")


def is_msg_directory(directory: bytes) -> bool:
    """Whether a compound file's first directory entries (UTF-16 names) are a message's."""
    return any(name.encode("utf-16-le") in directory for name in _MSG_NAMES)


def msg_to_email(path: str, name: str) -> EmailMessage:
    """The ``.msg`` file at ``path`` as an e-mail message."""
    try:
        import olefile
    except ImportError as exc:
        raise MissingExtraError("reading Outlook .msg files (olefile)", "office") from exc
    try:
        with olefile.OleFileIO(path) as ole:
            return _Message(ole, "", _TOP).email(attached=True)
    except (OSError, ValueError, EOFError, IndexError) as exc:  # olefile's words for a bad file
        raise CorruptDocumentError(f"{name}: not a readable Outlook message ({exc})") from exc
    except RecursionError as exc:  # a damaged directory that leads olefile round in a loop
        why = "its directory loops"
        raise CorruptDocumentError(f"{name}: not a readable Outlook message ({why})") from exc


class _Message:
    """A message's properties under ``storage`` (a path prefix in the compound file)."""

    def __init__(self, ole: Any, storage: str, header: int) -> None:
        self.ole, self.storage = ole, storage
        self.properties = _properties(ole, storage, header)
        codepage = next((self.number(tag) for tag in _CODEPAGES if tag in self.properties), 0)
        self.codec = _codec(codepage)

    def number(self, tag: int) -> int:
        return int.from_bytes(self.properties.get(tag, b"")[:4], "little")

    def data(self, prop: int, kind: str, storage: str | None = None) -> bytes | None:
        stream = f"{self.storage if storage is None else storage}__substg1.0_{prop:04X}{kind}"
        return self.ole.openstream(stream).read() if self.ole.exists(stream) else None

    def text(self, prop: int, storage: str | None = None) -> str:
        if (data := self.data(prop, _UNICODE, storage)) is not None:
            return data.decode("utf-16-le", errors="replace").rstrip("\x00")
        if (data := self.data(prop, _STRING8, storage)) is not None:
            return data.decode(self.codec, errors="replace").rstrip("\x00")
        return ""

    def storages(self, prefix: str) -> list[str]:
        """The names of the storages right under this one that start with ``prefix``."""
        depth = self.storage.count("/")
        found = {
            entry[depth]
            for entry in self.ole.listdir(streams=False, storages=True)
            if len(entry) > depth
            and "/".join(entry[:depth]) + ("/" if depth else "") == self.storage
            and entry[depth].startswith(prefix)
        }
        return sorted(found)

    def email(self, *, attached: bool) -> EmailMessage:
        """The message; ``attached``: a message attached to it given as a
        ``message/rfc822`` part (else left out: one level down only)."""
        message = EmailMessage(policy=email.policy.default)
        message["Subject"] = _line(self.text(_SUBJECT))
        received = _headers(self.text(_TRANSPORT_HEADERS))
        sender = _address(
            self.text(_SENDER_NAME), self.text(_SENDER_SMTP) or self.text(_SENDER_ADDRESS)
        )
        if "@" not in sender and "@" in received.get("From", ""):
            sender = _line(received["From"])
        if sender:
            message["From"] = sender
        to, cc = self.recipients()
        for header, found, display in (("To", to, _DISPLAY_TO), ("Cc", cc, _DISPLAY_CC)):
            value = ", ".join(found) or _line(self.text(display)).replace(";", ",")
            if "@" not in value and "@" in received.get(header, ""):
                value = _line(received[header])
            if value:
                message[header] = value
        when = next((_filetime(self.properties[t]) for t in _TIMES if t in self.properties), None)
        if when is not None:
            message["Date"] = email.utils.format_datetime(when)
        attachments = [
            f"{self.storage}{attachment}/"
            for attachment in self.storages("__attach_version1.0_#")[:_MAX_ATTACHMENTS]
        ]
        signed = next(filter(None, map(self.signed, attachments)), None)
        body = self.text(_BODY).strip()
        html = self.data(_HTML, _BINARY)
        markup = html.decode(self.codec, errors="replace") if html else self.text(_HTML)
        if not body and not markup.strip() and signed is not None:
            text = signed[1].get_body(preferencelist=("plain", "html"))
            body = text.get_content().strip() if text is not None else ""
        if not body and not markup.strip():
            body = _rtf_text(self.data(_RTF, _BINARY))
        if body or not markup.strip():
            message.set_content(body)  # an empty body a part still: no text to read
        else:
            message.set_content(markup, subtype="html")
        for storage in attachments:
            if signed is not None and storage == signed[0]:
                for part in signed[1].iter_attachments():  # the signature is not in there
                    message.make_mixed()
                    message.attach(part)
            else:
                self.attach(message, storage, attached)
        return message

    def signed(self, storage: str) -> tuple[str, EmailMessage] | None:
        """An attachment holding a signed message's MIME form, and the signed content
        in it (its body and its attachments); None for any other attachment."""
        if self.text(_MIME_TAG, storage).strip().lower() != _SIGNED:
            return None
        data = self.data(_ATTACH_DATA, _BINARY, storage)
        if not data:
            return None
        parts = email.message_from_bytes(data, policy=email.policy.default).get_payload()
        content = parts[0] if isinstance(parts, list) and parts else None  # then its signature
        return (storage, content) if isinstance(content, EmailMessage) else None

    def recipients(self) -> tuple[list[str], list[str]]:
        to: list[str] = []
        cc: list[str] = []
        for recipient in self.storages("__recip_version1.0_#"):
            storage = f"{self.storage}{recipient}/"
            kind = int.from_bytes(
                _properties(self.ole, storage, _CHILD).get(_RECIPIENT_TYPE, b"\x01")[:4], "little"
            )
            smtp = self.text(_RECIPIENT_SMTP, storage) or self.text(_RECIPIENT_ADDRESS, storage)
            address = _address(self.text(_RECIPIENT_NAME, storage), smtp)
            if address and kind in (1, 2):
                (to if kind == 1 else cc).append(address)
        return to, cc

    def attach(self, message: EmailMessage, storage: str, attached: bool) -> None:
        filename = _line(
            self.text(_LONG_NAME, storage)
            or self.text(_SHORT_NAME, storage)
            or self.text(_DISPLAY_NAME, storage)
        )
        inner = f"{storage}__substg1.0_{_ATTACH_DATA:04X}{_OBJECT}"
        if self.ole.exists(inner):
            if attached:  # as message/rfc822, which the e-mail reader names by its subject
                forwarded = _Message(self.ole, f"{inner}/", _EMBEDDED).email(attached=False)
                message.add_attachment(forwarded)
            return
        data = self.data(_ATTACH_DATA, _BINARY, storage) or b""
        mime = self.text(_MIME_TAG, storage) or mimetypes.guess_type(filename)[0] or ""
        maintype, _, subtype = mime.partition("/")
        if maintype not in _MAIN_TYPES or not _TOKEN.fullmatch(subtype):
            # A tag the e-mail writer refuses (message/rfc822 for bytes, a line break):
            # the file's name still says what it is to its reader.
            maintype, subtype = "application", "octet-stream"
        if not data:
            return
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=filename or "attachment"
        )


def tnef_to_email(data: bytes, name: str) -> EmailMessage:
    """A TNEF stream (Outlook's ``winmail.dat``, ``application/ms-tnef``: how it sends a
    message's rich body and attachments to other mail programs) as the e-mail it holds:
    its subject, its body (plain, else HTML, else its RTF's text), its attachments."""
    try:
        from tnefparse import TNEF
    except ImportError as exc:
        raise MissingExtraError("reading Outlook's winmail.dat (tnefparse)", "office") from exc
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:  # its ValueErrors, and struct and index errors on a cut stream
        raise CorruptDocumentError(f"{name}: not a readable TNEF stream ({exc})") from exc
    codec = tnef.codepage or "cp1252"
    message = EmailMessage(policy=email.policy.default)
    subject = next((o.data for o in tnef.objects if o.name == TNEF.ATTSUBJECT), b"")
    if subject:
        message["Subject"] = _line(_decoded(subject, codec))
    body = _decoded(tnef.body, codec).strip()
    markup = _decoded(tnef.htmlbody, codec)
    if not body and not markup.strip():
        # Compressed: tnefparse's own "rtfbody" gives the compressed bytes on a failure.
        body = _rtf_text(tnef._rtfbody, padded=True)
    if body or not markup.strip():
        message.set_content(body)
    else:
        message.set_content(markup, subtype="html")
    for attachment in tnef.attachments[:_MAX_ATTACHMENTS]:
        filename = _line(attachment.long_filename() or attachment.name or "")
        content = bytes(attachment.data or b"")
        if content:
            guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            maintype, _, subtype = guessed.partition("/")
            message.add_attachment(
                content, maintype=maintype, subtype=subtype, filename=filename or "attachment"
            )
    return message


def _decoded(value: str | bytes | None, codec: str) -> str:
    if isinstance(value, bytes):
        return value.rstrip(b"\0").decode(codec, errors="replace")
    return (value or "").rstrip("\0")


def _rtf_text(compressed: bytes | None, padded: bool = False) -> str:
    """The text of a compressed RTF body (MS-OXRTFCP); "" for none, or a broken one.
    ``padded``: a TNEF attribute's, one byte short of the size its header gives (a NUL
    restores it, as tnefparse does)."""
    if not compressed:
        return ""
    try:
        from compressed_rtf import decompress
        from striprtf.striprtf import rtf_to_text
    except ImportError as exc:
        raise MissingExtraError("reading Outlook RTF bodies", "office") from exc
    try:
        rtf: bytes = decompress(compressed + b"\0" if padded else compressed)
    except Exception:  # compressed-rtf raises bare Exceptions: a bad CRC, an unknown type
        return ""
    # RTF is 7-bit: its other characters are escapes, decoded in its own code page.
    text: str = rtf_to_text(rtf.decode("latin-1"), errors="replace")  # type: ignore[no-untyped-call]
    return text.strip()


def _properties(ole: Any, storage: str, header: int) -> dict[int, bytes]:
    """The fixed-size properties of a property stream: tag -> its 8 value bytes."""
    stream = f"{storage}__properties_version1.0"
    if not ole.exists(stream):
        return {}
    data = ole.openstream(stream).read()
    return {
        int.from_bytes(data[at : at + 4], "little"): data[at + 8 : at + 16]
        for at in range(header, len(data) - 15, 16)
    }


def _codec(codepage: int) -> str:
    """A Windows code page as a Python codec (cp1252 when it names none)."""
    name = {65001: "utf-8", 20127: "ascii", 28591: "latin-1"}.get(codepage, f"cp{codepage}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"


def _filetime(value: bytes) -> datetime.datetime | None:
    ticks = int.from_bytes(value[:8], "little")  # 100 ns since 1601-01-01 UTC
    if not ticks:
        return None
    epoch = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
    try:
        return epoch + datetime.timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def _headers(text: str) -> EmailMessage:
    """A message's transport headers, parsed (none when it has none)."""
    parser = email.parser.HeaderParser(_class=EmailMessage, policy=email.policy.default)
    return parser.parsestr(text.strip() + "\n\n") if text.strip() else EmailMessage()


def _line(text: str) -> str:
    return " ".join(text.split())


def _address(name: str, address: str) -> str:
    """``Name <a@b>``; the name alone when the address is no SMTP one (an Exchange
    ``/O=...`` path)."""
    name, address = _line(name), _line(address)
    if "@" not in address:
        return name or address
    return email.utils.formataddr((name, address)) if name and name != address else address
