"""Strict Open XML (ISO/IEC 29500 Strict: Word's, Excel's and PowerPoint's "Strict Open
XML" save option) read as the transitional package it stands for.

A Strict package names its XML namespaces and relationship types under
``http://purl.oclc.org/ooxml/``, where a transitional one has
``http://schemas.openxmlformats.org/<vocabulary>/2006/``. python-docx, python-pptx and
openpyxl, under docling, know only the latter: a Strict deck failed ("no relationship of
type .../officeDocument"), a Strict workbook fell back to calamine, and a Strict
document's diagrams were not read. The names map one to one (ECMA-376 Part 1, annex A),
so each XML part is copied with them renamed.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from typing import IO

from rag_ingest.errors import CorruptDocumentError
from rag_ingest.parsers.base import ZIP_ERRORS
from rag_ingest.parsers.flat import written_package

STRICT_NOTE = "Strict Open XML: read as its transitional form"

_STRICT = re.compile(
    rb"http://purl\.oclc\.org/ooxml/"
    rb"(officeDocument|drawingml|wordprocessingml|spreadsheetml|presentationml)/(\w+)"
)
_MARK = b"http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"


def is_strict(path: str) -> bool:
    """Whether the OOXML package at ``path`` is Strict: its package relationships name
    its main part by the Strict relationship type."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("_rels/.rels")
            if info.file_size > 1 << 20:  # a package's few relationships, not a bomb
                return False
            return _MARK in archive.read(info)
    except (KeyError, OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False  # its reader says what is wrong with it


def transitional_bytes(data: bytes) -> bytes:
    """An XML part's text with its Strict names made transitional."""
    return _STRICT.sub(rb"http://schemas.openxmlformats.org/\1/2006/\2", data)


@contextlib.contextmanager
def transitional(path: str, name: str, temp_dir: str | None) -> Iterator[str]:
    """The path of a transitional copy of the Strict package at ``path`` (its size
    checked already: ``check_zip``), removed after."""

    def write(out: IO[bytes]) -> None:
        with (
            zipfile.ZipFile(path) as archive,
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy,
        ):
            for info in archive.infolist():
                try:
                    data = archive.read(info)
                except ZIP_ERRORS as exc:
                    raise CorruptDocumentError(
                        f"{name}: its part {info.filename!r} is damaged ({exc})"
                    ) from exc
                if info.filename.endswith((".xml", ".rels")):
                    data = transitional_bytes(data)
                copy.writestr(info.filename, data)

    with written_package(name, temp_dir, write) as package:
        yield package
