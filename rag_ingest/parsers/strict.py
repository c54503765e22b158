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

import re
import zipfile
from contextlib import AbstractContextManager as ContextManager

from rag_ingest.parsers.base import ZIP_ERRORS
from rag_ingest.parsers.flat import rewritten_package

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
    except (KeyError, OSError, ValueError, *ZIP_ERRORS):  # a part's data broken too
        return False  # its reader says what is wrong with it


def transitional_bytes(data: bytes) -> bytes:
    """An XML part's text with its Strict names made transitional."""
    return _STRICT.sub(rb"http://schemas.openxmlformats.org/\1/2006/\2", data)


def transitional(path: str, name: str, temp_dir: str | None) -> ContextManager[str]:
    """The path of a transitional copy of the Strict package at ``path`` (its size
    checked already: ``check_zip``), removed after."""

    def rewrite(member: str, data: bytes) -> bytes:
        return transitional_bytes(data) if member.endswith((".xml", ".rels")) else data

    return rewritten_package(path, name, temp_dir, rewrite)
