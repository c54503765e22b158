"""Which checksum S3 offers for an object, and how to check it while bytes stream."""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Checksum", "PartwiseCheck", "feed", "pick_checksum", "pick_partwise"]

_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_MULTIPART_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})-([0-9]+)"?$')
_BLOCK = 1024 * 1024  # read back in small blocks: memory stays flat


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


def feed(hasher: Any, read: Callable[[int, int], bytes], start: int, end: int) -> None:
    """Update ``hasher`` with bytes [start, end), read in 1 MiB blocks by ``read(offset, n)``.

    A short read stops early: the digest then cannot match, which is the error.
    """
    offset = start
    while offset < end:
        block = read(offset, min(_BLOCK, end - offset))
        if not block:
            return
        hasher.update(block)
        offset += len(block)


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _AwsCrt:
    """crc32c / crc64nvme from awscrt, when it is installed."""

    def __init__(self, name: str) -> None:
        from awscrt import checksums

        self._fn: Any = getattr(checksums, name)
        self._bytes = 8 if name == "crc64nvme" else 4
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = self._fn(data, self.value)

    def digest(self) -> bytes:
        return int(self.value).to_bytes(self._bytes, "big")


def _factory(name: str) -> Any:
    if name == "crc32":
        return _Crc32
    if name in ("sha1", "sha256"):
        return lambda: hashlib.new(name)
    if name in ("crc32c", "crc64nvme"):
        try:
            import awscrt.checksums  # noqa: F401
        except ImportError:
            return None
        return lambda: _AwsCrt(name)
    return None


class Checksum:
    """An expected value and a running hash to compare it with."""

    def __init__(self, name: str, expected: str, factory: Any, *, hex_digest: bool = False) -> None:
        self.name = name
        self.expected = expected
        self._factory = factory
        self._hash = factory()
        self._hex = hex_digest

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def actual(self) -> str:
        digest: bytes = self._hash.digest()
        return digest.hex() if self._hex else base64.b64encode(digest).decode()

    def matches(self) -> bool:
        return self.actual().lower() == self.expected.lower()

    def fresh(self) -> Checksum:
        """The same expectation with an empty hash (for a re-read from the start)."""
        return Checksum(self.name, self.expected, self._factory, hex_digest=self._hex)


def _encrypted(lowered: Mapping[str, str]) -> bool:
    # SSE-KMS and SSE-C ETags are not MD5s of the content.
    return lowered.get("x-amz-server-side-encryption", "").startswith("aws:kms") or (
        "x-amz-server-side-encryption-customer-algorithm" in lowered
    )


@dataclass
class PartwiseCheck:
    """A multipart object's check: the hash of its parts' hashes, over ``parts`` parts.

    S3's multipart ETag is ``MD5(MD5(part 1) + ... + MD5(part N))-N``; a composite
    checksum (``x-amz-checksum-crc32: ...-N``) is the same construction with the
    upload's algorithm. Checking either needs the upload's part sizes.
    """

    name: str
    expected: str
    parts: int
    factory: Any
    hex_digest: bool = False

    def part_digest(self, read: Callable[[int, int], bytes], offset: int, size: int) -> bytes:
        """The digest of ``size`` bytes at ``offset``; ``read(offset, n)`` returns bytes."""
        inner = self.factory()
        feed(inner, read, offset, offset + size)
        digest: bytes = inner.digest()
        return digest

    def combine(self, digests: Sequence[bytes]) -> str:
        """The object's value from its parts' digests, as S3 prints it (without ``-N``)."""
        outer = self.factory()
        for digest in digests:
            outer.update(digest)
        value: bytes = outer.digest()
        return value.hex() if self.hex_digest else base64.b64encode(value).decode()

    def compute(self, read: Callable[[int, int], bytes], sizes: Sequence[int]) -> str:
        """The combined digest of consecutive parts of ``sizes`` bytes."""
        digests, offset = [], 0
        for size in sizes:
            digests.append(self.part_digest(read, offset, size))
            offset += size
        return self.combine(digests)

    def matches(self, actual: str) -> bool:
        return actual.lower() == self.expected.lower()


def pick_partwise(headers: Mapping[str, str], etag: str | None) -> PartwiseCheck | None:
    """The cheapest check of a multipart object the headers allow, or None.

    It costs reading every byte back, so the fastest offered wins: a CRC32 or
    CRC32C composite checksum (~4 GB/s here), else the multipart ETag (MD5, ~0.7
    GB/s), else a SHA composite.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("crc32", "crc32c"):
        found = _composite(lowered, name)
        if found is not None:
            return found
    match = _MULTIPART_ETAG.match(etag or "")
    if match and not _encrypted(lowered):
        return PartwiseCheck(
            "md5-etag-multipart", match.group(1), int(match.group(2)), hashlib.md5, True
        )
    for name in ("sha1", "sha256"):
        found = _composite(lowered, name)
        if found is not None:
            return found
    return None


def _composite(lowered: Mapping[str, str], name: str) -> PartwiseCheck | None:
    value = lowered.get(f"x-amz-checksum-{name}", "")
    digest, _, count = value.rpartition("-")
    if not digest or not count.isdigit():
        return None
    factory = _factory(name)
    if factory is None:
        return None
    return PartwiseCheck(f"{name}-composite", digest, int(count), factory)


def pick_checksum(headers: Mapping[str, str], etag: str | None) -> Checksum | None:
    """The strongest full-object check the response headers allow, or None.

    Composite (multipart, ``...-N``) checksums and multipart ETags are checked part
    by part instead (:func:`pick_partwise`); SSE-KMS and SSE-C ETags are not MD5s.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("sha256", "sha1", "crc64nvme", "crc32c", "crc32"):
        value = lowered.get(f"x-amz-checksum-{name}")
        kind = lowered.get("x-amz-checksum-type", "FULL_OBJECT")
        if not value or "-" in value or kind != "FULL_OBJECT":
            continue
        factory = _factory(name)
        if factory is not None:
            return Checksum(name, value, factory)
    match = _MD5_ETAG.match(etag or "")
    if match and not _encrypted(lowered):
        return Checksum("md5-etag", match.group(1), lambda: hashlib.md5(), hex_digest=True)
    return None
