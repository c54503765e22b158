"""Single files compressed with gzip, bzip2, xz, LZMA-alone or zstd (a rotated
``app.log.1.gz``, a ``changelog.gz``, a ``data.csv.xz``, a ``dump.jsonl.zst``, a
``notes.tar.lzma``): decompressed within a size limit, then parsed as the file inside.
A compressed tar archive (``.tar.gz``, ``.tgz``) is decompressed here, then read as an
archive (parsers/archive.py).
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import lzma
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from rag_ingest.errors import CorruptDocumentError, NoTextFormatError, ZipBombError, disk_full

__all__ = ["compression", "compression_of", "head_inside", "inner_name", "unpack", "unpacked"]


class _Zstd:
    """A zstd file's bytes, frame after frame. zstandard's own reader ends a stream cut
    short as if it were whole (a truncated file read as an empty one); this one raises
    :class:`EOFError`. Fed 4 KiB at a time, so one read holds at most ~128 MiB however
    the frame was made (zstd encodes 128 KiB of one byte in 4)."""

    def __init__(self, path: str, mode: str = "rb") -> None:
        import zstandard  # langchain-core's langsmith requires it

        self._file = open(path, "rb")  # noqa: SIM115 (closed by __exit__)
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._frame: Any = None
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            raw = self._file.read(4096)
            if not raw:
                if self._frame is not None and not self._frame.eof:
                    raise EOFError("the last zstd frame is cut short")
                break
            while raw:
                if self._frame is None or self._frame.eof:
                    self._frame = self._new()
                self._buffer += self._frame.decompress(raw)
                raw = self._frame.unused_data if self._frame.eof else b""
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def __enter__(self) -> _Zstd:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


# Magic numbers long enough that no text file starts with one by chance ("BZh" alone
# would take a note that starts "BZh..." for bzip2).
_FORMATS: tuple[tuple[re.Pattern[bytes], str, Callable[..., Any]], ...] = (
    (re.compile(rb"\x1f\x8b\x08"), "gzip", gzip.open),
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2", bz2.open),
    (re.compile(rb"\xfd7zXZ\x00"), "xz", lzma.open),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", _Zstd),
    # xz's predecessor, LZMA-alone (``.lzma``, as lzma and 7-Zip still write it): no
    # magic, so its header: the default properties byte, a dictionary size, then its
    # size unknown (all 0xff) or under 2**40 bytes.
    (
        re.compile(rb"\x5d\x00[\x00-\xff]{3}(?:\xff{8}|[\x00-\xff]{5}\x00{3})", re.DOTALL),
        "lzma",
        functools.partial(lzma.open, format=lzma.FORMAT_ALONE),
    ),
)
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd", ".lzma")


def compression(path: str) -> str | None:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``lzma`` when the file's first bytes say
    so."""
    with open(path, "rb") as f:
        return compression_of(f.read(13))


def compression_of(head: bytes) -> str | None:
    """:func:`compression` from a file's first bytes already read."""
    return next((what for magic, what, _ in _FORMATS if magic.match(head)), None)


def head_inside(path: str, what: str, size: int = 512) -> bytes:
    """The first ``size`` bytes of the stream inside (b"" when it cannot be read)."""
    opener = next(open_ for _, format_, open_ in _FORMATS if format_ == what)
    try:
        with opener(path, "rb") as source:
            head: bytes = source.read(size)
            return head
    except (EOFError, lzma.LZMAError, zlib.error, OSError):
        return b""
    except Exception as exc:
        if type(exc).__name__ != "ZstdError":
            raise
        return b""


def inner_name(name: str) -> str:
    """The name of the file inside: ``report.csv.gz`` -> ``report.csv``."""
    path = PurePosixPath(name)
    return str(path.with_suffix("")) if path.suffix.lower() in _SUFFIXES else name


def unpack(path: str, name: str, what: str, limit: int, temp_dir: str | None) -> str:
    """The path of the decompressed file, which the caller removes. Past ``limit``
    bytes it is a :class:`ZipBombError`; a truncated or corrupt stream, a
    :class:`CorruptDocumentError`; a second compression, no text."""
    fd, out_path = tempfile.mkstemp(prefix=".unpacked-", dir=temp_dir)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                _decompress(path, name, what, limit, out)
        except OSError as exc:
            # A full temp disk fails this document with the disk named, not "[Errno 28]";
            # a re-run retries it.
            full = disk_full(exc, Path(out_path).parent, f"decompressing {name}")
            if full is not None:
                raise full from exc
            raise
        with open(out_path, "rb") as f:
            head = f.read(512)
        if compression_of(head) is not None:
            raise NoTextFormatError(f"{name}: compressed twice: not unpacked")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(out_path)
        raise
    return out_path


@contextlib.contextmanager
def unpacked(
    path: str, name: str, what: str, limit: int, temp_dir: str | None
) -> Iterator[tuple[str, str]]:
    """``(path, name)`` of the decompressed file (see :func:`unpack`), removed after."""
    out_path = unpack(path, name, what, limit, temp_dir)
    try:
        yield out_path, inner_name(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out_path)


def _decompress(path: str, name: str, what: str, limit: int, out: IO[bytes]) -> None:
    opener = next(open_ for _, format_, open_ in _FORMATS if format_ == what)
    total = 0
    try:
        with opener(path, "rb") as source:
            while block := source.read(1 << 20):
                total += len(block)
                if total > limit:
                    raise ZipBombError(f"{name}: decompresses past {limit} bytes")
                out.write(block)
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptDocumentError(f"{name}: a truncated or corrupt {what} stream ({exc})") from exc
    except Exception as exc:
        if type(exc).__name__ != "ZstdError":  # zstandard's, imported only if used
            raise
        raise CorruptDocumentError(f"{name}: a corrupt {what} stream ({exc})") from exc
    except OSError as exc:
        if exc.errno is None:  # bz2's "Invalid data stream": the bytes, not the disk
            raise CorruptDocumentError(f"{name}: a corrupt {what} stream ({exc})") from exc
        raise
