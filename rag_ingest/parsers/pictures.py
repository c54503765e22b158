"""The pictures inside a document: which to read by OCR (each marked where it sits in
the text, its text put there later: parsers/scans.py) and which to keep for the image
describer, as a parser comes to them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from io import BytesIO
from typing import IO

from rag_ingest.parsers.base import UNREAD_SCANS, Image, ParsedDocument, ParseOptions

__all__ = [
    "MARKER",
    "MAX_PICTURES",
    "MAX_PICTURE_BYTES",
    "HeldPictures",
    "PictureSource",
    "Pictures",
    "data_uri",
    "marker",
    "none_to_read",
    "picture_size",
    "unread_count",
    "unread_pictures",
    "unread_said",
    "with_markers",
]


# A picture under this many pixels, or under 16 on a side, is an icon, a bullet or a
# rule: nothing worth a recognition (0.18 s for a 1600x1200 photo with no text, measured).
_MIN_PICTURE_PIXELS = 100 * 100
# Pictures read by OCR in one document, at most (each 0.2-3 s of CPU), and their bytes
# at most: they travel to the ingesting process and back out to the workers, past the
# workers' memory limit (200 photos docling holds as 20 MB PNGs each would be 4 GB).
MAX_PICTURES = 200
MAX_PICTURE_BYTES = 256 * 1024 * 1024


def _worth_reading(width: float, height: float) -> bool:
    return width * height >= _MIN_PICTURE_PIXELS and min(width, height) >= 16


def none_to_read(sizes: Iterable[tuple[float, float] | None]) -> bool:
    """Whether every picture of these sizes is too small to hold text worth reading, or
    not in the file (None: linked): a document of those alone holds nothing to index."""
    return all(size is None or not _worth_reading(*size) for size in sizes)


@dataclass
class Pictures:
    """The pictures inside a document to read by OCR, as its parser finds them."""

    found: list[bytes] = field(default_factory=list)
    left: int = 0  # past MAX_PICTURES or MAX_PICTURE_BYTES
    size: int = 0  # bytes found

    def add(self, width: float, height: float, read: Callable[[], bytes | None]) -> str:
        """The marker to write where a picture of that size sits (its bytes from
        ``read``), or "" for one too small to hold text, past the limit, or unreadable."""
        if not _worth_reading(width, height):
            return ""
        if len(self.found) == MAX_PICTURES:
            self.left += 1
            return ""
        data = read()
        if not data:
            return ""
        if self.size + len(data) > MAX_PICTURE_BYTES:
            self.left += 1
            return ""
        self.size += len(data)
        self.found.append(data)
        return marker(len(self.found))

    def into(self, parsed: ParsedDocument) -> ParsedDocument:
        """``parsed`` with the pictures its text shows listed to read (one in a part the
        parser left out, a page header, is not)."""
        shown = {int(n) for s in parsed.segments for n in MARKER.findall(s.text)}
        parsed.scans = sorted(shown)
        parsed.pictures = self.found if parsed.scans else []
        if self.left:
            parsed.warnings.append(
                f"{self.left} picture(s) past the first {len(self.found)} not read (at most "
                f"{MAX_PICTURES} or {MAX_PICTURE_BYTES >> 20} MiB a document)"
            )
        return parsed


def marker(number: int) -> str:
    """What stands in a document's text for picture ``number`` until OCR has read it:
    characters of a supplementary private-use plane, in no document's own text (docling's
    HTML reader drops U+E000 from the basic plane's)."""
    return f"\U000f0000{number}\U000f0001"


MARKER = re.compile("\U000f0000(\\d+)\U000f0001")


# What a multimodal model is given to describe (a WMF or SVG picture is not).
_DESCRIBED = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class PictureSource:
    """The pictures a document names (an archive's members, an HTML page's data: URIs),
    as its text reaches them: each one's marker for OCR (with ``ocr``), and up to
    ``max_images`` kept to describe (on the slide ``page`` the text is at). ``load``
    gives a name's bytes and type, or empty bytes for none."""

    def __init__(
        self,
        load: Callable[[str], tuple[bytes, str | None]],
        ocr: bool,
        max_images: int,
        min_image_bytes: int,
    ) -> None:
        self.load = load
        self.ocr = ocr
        self.max_images = max_images
        self.min_image_bytes = min_image_bytes
        self.pictures = Pictures()
        self.images: list[Image] = []
        self.page: int | None = None
        self._markers: dict[str, str] = {}

    @property
    def wanted(self) -> bool:
        return self.ocr or self.max_images > 0

    def __call__(self, name: str) -> str:
        """The marker for the picture ``name`` (once for each), "" for none: not found,
        not an image Pillow reads, or OCR off."""
        if name in self._markers:
            return self._markers[name]
        self._markers[name] = ""
        data, mime = self.load(name)
        if not data:
            return ""
        if (
            len(self.images) < self.max_images
            and len(data) >= self.min_image_bytes
            and mime in _DESCRIBED
        ):
            self.images.append(Image(data, mime, page=self.page))
        if self.ocr:
            from PIL import Image as Pil
            from PIL import UnidentifiedImageError

            try:
                with Pil.open(BytesIO(data)) as image:
                    width, height = image.size
            except (UnidentifiedImageError, OSError, ValueError):
                return ""
            self._markers[name] = self.pictures.add(width, height, lambda: data)
        return self._markers[name]

    def into(self, parsed: ParsedDocument) -> ParsedDocument:
        parsed.images = self.images
        return self.pictures.into(parsed)


class HeldPictures(PictureSource):
    """The pictures a document holds in its own text (hex in RTF, base64 in XML), by
    the order its parser finds them, read as ``options`` say (OCR, kept to describe, or
    said unread)."""

    def __init__(self, options: ParseOptions) -> None:
        self.held: list[bytes] = []
        self._mimes: list[str] = []
        super().__init__(
            self._load, options.reads_pictures, options.max_images, options.min_image_bytes
        )
        self.count_unread = options.ocr is None

    def keep(self, data: bytes, mime: str) -> int:
        """Hold a picture; its number, for :meth:`marker`."""
        self.held.append(data)
        self._mimes.append(mime)
        return len(self.held) - 1

    def marker(self, number: int) -> str:
        """The marker for held picture ``number`` where it sits ("" for none)."""
        return self(str(number)) if self.wanted else ""

    def into(self, parsed: ParsedDocument) -> ParsedDocument:
        parsed = super().into(parsed)
        if self.count_unread:
            parsed.warnings += unread_said(unread_count(self.held))
        return parsed

    def _load(self, key: str) -> tuple[bytes, str | None]:
        return self.held[int(key)], self._mimes[int(key)]


# An HTML picture: <img src=...>, or an SVG <image href=...> (a cover, a plate).
_PICTURE = re.compile(
    rb"<(?:img\b[^>]*?\ssrc|image\b[^>]*?\s(?:xlink:)?href)\s*=\s*([\"'])(.*?)\1[^>]*>",
    re.IGNORECASE | re.DOTALL,
)


# A Markdown picture: ![alt](link "title").
_MARKDOWN_PICTURE = re.compile(rb"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?[^)\n]*\)")


def with_markers(text: bytes, picture: Callable[[str], str], markdown: bool = False) -> bytes:
    """An HTML page (or a Markdown file) with each picture followed by the marker
    ``picture`` gives for its link (none for ""). The marker goes in as character
    references: its UTF-8 bytes swayed the guess of an undeclared page's encoding (read
    as windows-1256), and in a paragraph of its own it dropped the picture's alt text."""

    def marked(found: re.Match[bytes]) -> bytes:
        mark = picture(found.group(found.lastindex or 0).decode("utf-8", errors="replace"))
        if not mark:
            return found.group(0)
        wrapped = f" {mark}" if markdown else f"<span>{mark}</span>"
        return found.group(0) + wrapped.encode("ascii", "xmlcharrefreplace")

    return (_MARKDOWN_PICTURE if markdown else _PICTURE).sub(marked, text)


_DATA_URI = re.compile(r"data:(image/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)


def data_uri(link: str) -> tuple[bytes, str | None]:
    """A ``data:image/...;base64,`` link's bytes and type; empty bytes for any other."""
    found = _DATA_URI.match(link.strip())
    if found is None:
        return b"", None
    try:
        payload = re.sub(r"\s+", "", link.strip()[found.end() :])
        return base64.b64decode(payload, validate=True), found.group(1)
    except (binascii.Error, ValueError):
        return b"", None


_RASTER = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def unread_pictures(path: str) -> int:
    """How many raster pictures a DOCX, PPTX, XLSX, ODT, ODP or EPUB package holds that
    OCR would read (100x100 pixels or more, as :meth:`Pictures.add` judges): found from
    the zip and each picture's header (without OCR, the parsers do not look at them)."""
    import zipfile

    def pictures(archive: zipfile.ZipFile) -> Iterator[Callable[[], IO[bytes]]]:
        for info in archive.infolist():
            lower = info.filename.lower()
            # docProps/, Thumbnails/: the package's preview of its first page (OOXML, ODF)
            if lower.endswith(_RASTER) and not lower.startswith(("docprops/", "thumbnails/")):
                yield partial(archive.open, info)

    try:
        with zipfile.ZipFile(path) as archive:
            return _worth_reading_count(pictures(archive))
    except (OSError, zipfile.BadZipFile):
        return 0  # a broken package: its parse says so


def unread_in_page(data: bytes, markdown: bool = False) -> int:
    """How many ``data:`` URI pictures an HTML page (or a Markdown file) shows that OCR
    would read: each link once, judged as :func:`unread_pictures` judges a package's."""
    links = {
        found.group(found.lastindex or 0).decode("utf-8", errors="replace")
        for found in (_MARKDOWN_PICTURE if markdown else _PICTURE).finditer(data)
    }
    return _worth_reading_count(partial(BytesIO, blob) for blob, _ in map(data_uri, links) if blob)


def unread_said(count: int) -> list[str]:
    """The warning for ``count`` pictures left unread for want of OCR (none for 0)."""
    return [f"{count} picture(s) {UNREAD_SCANS}"] if count else []


def unread_count(blobs: Iterable[bytes]) -> int:
    """How many of these pictures' bytes OCR would read (as :func:`unread_pictures`
    judges a package's)."""
    return _worth_reading_count(partial(BytesIO, blob) for blob in blobs)


def picture_size(data: bytes) -> tuple[int, int] | None:
    """A picture's width and height from its header; None for one PIL does not know."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(BytesIO(data)) as picture:
            width, height = picture.size
            return width, height
    except Exception:  # not a picture PIL knows, or broken
        return None


def _worth_reading_count(opened: Iterable[Callable[[], IO[bytes]]]) -> int:
    """How many of the pictures ``opened`` gives (at most MAX_PICTURES) OCR would read,
    judged by their headers alone, nothing decoded."""
    import warnings

    try:
        from PIL import Image
    except ImportError:  # no reader of their sizes: each counted
        return min(sum(1 for _ in opened), MAX_PICTURES)
    count = 0
    # A huge picture's size is read all the same: PIL's bomb warning said nothing here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for open_picture in opened:
            if count == MAX_PICTURES:
                break
            try:
                with open_picture() as f, Image.open(f) as picture:
                    width, height = picture.size
            except Exception:  # not a picture PIL knows, or broken
                continue
            count += _worth_reading(width, height)
    return count
