"""Image files (PNG, JPEG, TIFF, GIF, BMP, WebP) read as scanned pages by OCR (extra 'ocr')."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from rag_ingest.errors import CorruptDocumentError, DocumentTooLargeError, MissingExtraError
from rag_ingest.ocr import Lie, OcrOptions
from rag_ingest.parsers.base import ParsedDocument, Segment

__all__ = ["MAX_FRAMES", "parse_image", "read_frames", "read_pictures"]

# A TIFF's frames are its pages; past this many, the rest are left (and said so).
MAX_FRAMES = 500


@contextlib.contextmanager
def _opened(path: str, name: str) -> Iterator[Any]:
    """The image open, its failures typed: too large (Pillow's decompression-bomb limit,
    ~179 million pixels) or unreadable."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingExtraError("reading images (OCR)", "ocr") from exc
    try:
        with warnings.catch_warnings():
            # Past the limit Pillow raises; below it, a large scan is only large.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except Image.DecompressionBombError as exc:
        raise DocumentTooLargeError(f"{name}: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptDocumentError(f"{name}: not a readable image ({exc})") from exc


def parse_image(path: str, name: str) -> ParsedDocument:
    """An image, its frames (a TIFF's pages) listed in ``scans`` for :func:`read_frames`."""
    with _opened(path, name) as image:
        frames = getattr(image, "n_frames", 1)
    notes = [f"{frames} frames: the first {MAX_FRAMES} read"] if frames > MAX_FRAMES else []
    return ParsedDocument(
        "image",
        [],
        parser="rapidocr",
        pages=frames if frames > 1 else None,
        warnings=notes,
        scans=list(range(1, min(frames, MAX_FRAMES) + 1)),
    )


def _text(image: Any, ocr: OcrOptions, headings: bool = True, lie: Lie | None = None) -> str:
    """The text in an open image's current frame (``lie``: how the frame before lay)."""
    import numpy as np

    from rag_ingest.ocr import layout, recognize

    if image.format == "JPEG":
        image.draft("RGB", (ocr.max_side, ocr.max_side))  # decode at a smaller scale
    if image.mode == "P" and isinstance(image.info.get("transparency"), bytes):
        # Straight to RGB, Pillow warns (the same pixels): a warning on the CLI's output.
        image = image.convert("RGBA")
    rgb = image.convert("RGB")
    rgb.thumbnail((ocr.max_side, ocr.max_side))
    return layout(recognize(np.asarray(rgb), ocr.threads, lie), headings)


def read_frames(path: str, name: str, numbers: list[int], ocr: OcrOptions) -> list[Segment]:
    """Frames ``numbers`` (1-based) of an image read by OCR."""
    read = []
    lie = Lie()  # a fax's or a scanner's frames lie alike
    with _opened(path, name) as image:
        several = getattr(image, "n_frames", 1) > 1
        for number in numbers:
            image.seek(number - 1)
            text = _text(image, ocr, lie=lie)
            read.append(Segment(text, page=number if several else None, ocr=True))
    return read


def read_pictures(numbers: list[int], pictures: list[bytes], ocr: OcrOptions) -> list[Segment]:
    """Pictures from inside a document read by OCR, each as a segment whose ``page`` is
    its number. One Pillow cannot read (a WMF drawing, a broken file) reads as no text:
    it costs that picture, not the document."""
    from PIL import Image, UnidentifiedImageError

    read = []
    for number, data in zip(numbers, pictures, strict=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(BytesIO(data)) as image:
                    text = _text(image, ocr, headings=False)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
            text = ""
        read.append(Segment(text, page=number, ocr=True))
    return read
