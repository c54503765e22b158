"""Web pages saved as one file, MHTML (``.mht``, ``.mhtml``: a browser's "save as single
file", Word's "single file web page"): the page's HTML read as an HTML file is, its
pictures (other parts of the MIME message) put in the page as ``data:`` URIs, so that
they are read or described as an HTML page's embedded pictures are.
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.policy
import re
from email.message import EmailMessage
from urllib.parse import urljoin

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import ParsedDocument
from rag_ingest.parsers.pictures import unread_in_page, unread_said

__all__ = ["parse_mhtml"]

_SOURCE = re.compile(rb"""(\bsrc\s*=\s*)(["']?)([^"'\s>]+)\2""", re.IGNORECASE)


def parse_mhtml(
    path: str,
    name: str,
    max_images: int,
    min_image_bytes: int,
    ocr_pictures: bool,
    *,
    count_unread: bool = False,
    chrome: str = "markup",
) -> ParsedDocument:
    """The page an MHTML file holds; with ``count_unread`` (no OCR), the pictures on it
    OCR would read are said unread. ``chrome``: as ``parse.html_chrome``."""
    from bs4.dammit import EncodingDetector

    from rag_ingest.parsers.mail import mended, message_from
    from rag_ingest.parsers.office import parse_html

    with open(path, "rb") as f:
        message = message_from(f.read())
    warnings: list[str] = []
    message = mended(message, warnings)  # a boundary its header lost, as a mail's
    parts = [part for part in message.walk() if not part.is_multipart()]
    root = _root(message, parts)
    if root is None:
        raise CorruptDocumentError(f"{name}: no HTML page among its MIME parts")
    page = root.get_payload(decode=True)
    assert isinstance(page, bytes)
    charset = root.get_content_charset()
    if charset and EncodingDetector.find_declared_encoding(page[:65536], is_html=True) is None:
        # The part's charset, said where the HTML reader looks for it.
        page = f'<meta charset="{charset}">'.encode("ascii", "replace") + page
    inlined = _pictures_inline(page, root, parts) if max_images or ocr_pictures else page
    # A browser writes the closing boundary last: without it, the file was cut short.
    cut = any(
        isinstance(defect, email.errors.CloseBoundaryNotFoundDefect)
        for part in message.walk()
        for defect in part.defects
    )
    try:
        parsed = parse_html(
            inlined,
            name,
            max_images,
            min_image_bytes,
            joined=False,
            ocr_pictures=ocr_pictures,
            chrome=chrome,
        )
    except BlankDocumentError:
        if cut:  # its page lost with its end: damaged, not a page of nothing
            raise CorruptDocumentError(
                f"{name}: cut short (its closing boundary is missing)"
            ) from None
        raise
    if cut:
        warnings.append("cut short (its closing boundary is missing): its end may be lost")
    parsed.file_type, parsed.parser = "mhtml", f"mhtml+{parsed.parser}"
    parsed.warnings = warnings + parsed.warnings
    if count_unread:
        parsed.warnings += unread_said(unread_in_page(_pictures_inline(page, root, parts)))
    return parsed


def _root(message: EmailMessage, parts: list[EmailMessage]) -> EmailMessage | None:
    """The page: the part a multipart/related message names as its ``start``, else its
    first HTML part."""
    start = message.get_param("start") if message.is_multipart() else None
    if isinstance(start, str):
        for part in parts:
            if part.get("Content-ID", "").strip() == start.strip():
                return part
    return next((p for p in parts if p.get_content_type() == "text/html"), None)


def _pictures_inline(page: bytes, root: EmailMessage, parts: list[EmailMessage]) -> bytes:
    """``page`` with each ``src`` that names one of the message's image parts (by its
    Content-Location, relative to the page's, or its Content-ID) made a ``data:`` URI."""
    base = root.get("Content-Location", "")
    images: dict[str, EmailMessage] = {}
    for part in parts:
        if part.get_content_maintype() != "image":
            continue
        if location := part.get("Content-Location"):
            images[urljoin(base, location.strip())] = part
        if content_id := part.get("Content-ID"):
            images[f"cid:{content_id.strip().strip('<>')}"] = part

    def inline(match: re.Match[bytes]) -> bytes:
        source = match[3].decode("ascii", "replace")
        part = images.get(source if source.startswith("cid:") else urljoin(base, source))
        data = part.get_payload(decode=True) if part is not None else None
        if part is None or not isinstance(data, bytes):
            return match[0]
        uri = f"data:{part.get_content_type()};base64,".encode() + base64.b64encode(data)
        return match[1] + b'"' + uri + b'"'

    return _SOURCE.sub(inline, page)
