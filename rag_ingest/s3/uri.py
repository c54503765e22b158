"""Addresses: turn what a user typed into an S3 location or a direct URL.

Accepted forms::

    s3://bucket/key                                 (key taken literally)
    https://bucket.s3.amazonaws.com/key             virtual-hosted, us-east-1
    https://bucket.s3.REGION.amazonaws.com/key      virtual-hosted
    https://bucket.s3-REGION.amazonaws.com/key      legacy dash form
    https://s3.REGION.amazonaws.com/bucket/key      path-style
    ENDPOINT/bucket/key                             a configured custom endpoint (path-style)
    https://...?X-Amz-Signature=...                 presigned: used as given, never re-signed
    https://any.host/path                           a plain https download
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from rag_ingest._redact import redact
from rag_ingest.errors import ConfigurationError, UnsafeSourceError

__all__ = [
    "DirectURL",
    "S3Location",
    "Target",
    "Where",
    "parse_address",
    "quote_key",
    "quote_query",
    "where",
]

_AWS_HOST = re.compile(
    r"^(?:(?P<bucket>.+)\.)?s3(?:[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?"
    r"\.amazonaws\.com(?:\.cn)?$"
)
# S3 (SigV4, SigV2), GCS signed URLs and Azure SAS: fetched as given, expiry read when known.
_PRESIGN_KEYS = {"x-amz-signature", "signature", "x-goog-signature", "sig"}


def quote_key(key: str) -> str:
    """Percent-encode a key the way SigV4 canonicalises S3 paths (we sign what we send)."""
    return quote(key, safe="/-_.~")


def quote_query(params: dict[str, str]) -> str:
    """A sorted, SigV4-encoded query string (``%20`` for spaces, not ``+``)."""
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )


@dataclass(frozen=True)
class S3Location:
    """A bucket and key (or prefix) to be reached with signed requests."""

    bucket: str
    key: str
    region: str | None = None
    version_id: str | None = None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class DirectURL:
    """An https URL fetched as given: a presigned S3 URL or any https download."""

    url: str = field(repr=False)
    presigned: bool = False
    expires_at: datetime | None = None
    bucket: str | None = None
    key: str | None = None

    def __repr__(self) -> str:
        return f"DirectURL({redact(self.url)!r}, presigned={self.presigned})"

    def __str__(self) -> str:
        return redact(self.url)

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at


Target = S3Location | DirectURL


class Where(TypedDict):
    """The bucket and key an error names (``**where(target)`` into an S3Error)."""

    bucket: str | None
    key: str | None


def where(target: Target) -> Where:
    """Bucket and key of a target; a direct URL without them is named by its redacted URL."""
    if isinstance(target, S3Location):
        return {"bucket": target.bucket, "key": target.key}
    return {"bucket": target.bucket, "key": target.key if target.key is not None else str(target)}


def _presign_expiry(query: dict[str, str]) -> datetime | None:
    lowered = {k.lower(): v for k, v in query.items()}
    if "x-amz-date" in lowered and "x-amz-expires" in lowered:
        try:
            start = datetime.strptime(lowered["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return start + timedelta(seconds=int(lowered["x-amz-expires"]))
        except ValueError:
            return None
    if "expires" in lowered:  # SigV2: an epoch timestamp
        try:
            return datetime.fromtimestamp(int(lowered["expires"]), tz=UTC)
        except (ValueError, OverflowError):
            return None
    return None


def _split_bucket_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def parse_address(
    address: str,
    *,
    endpoint_url: str | None = None,
    http_allowed: Callable[[str, int], bool] | None = None,
) -> Target:
    """Parse an ``s3://`` or ``https://`` address; ``endpoint_url`` is the trusted custom endpoint.

    Plain ``http://`` is accepted only under the configured endpoint, or for a host
    (and port) that ``http_allowed`` accepts.
    """
    if address.startswith("s3://"):
        s3_bucket, _, s3_key = address[5:].partition("/")
        if not s3_bucket:
            raise ConfigurationError(f"no bucket in {address!r}")
        return S3Location(bucket=s3_bucket, key=s3_key)

    parts = urlsplit(address)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeSourceError(f"unsupported scheme {scheme!r} in {redact(address)!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ConfigurationError(f"no host in {redact(address)!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    presigned = any(k.lower() in _PRESIGN_KEYS for k in query)

    endpoint = urlsplit(endpoint_url) if endpoint_url else None
    under_endpoint = (
        endpoint is not None
        and scheme == endpoint.scheme
        and parts.netloc.lower() == endpoint.netloc.lower()
    )
    if (
        scheme == "http"
        and not under_endpoint
        and not (http_allowed is not None and http_allowed(host, parts.port or 80))
    ):
        raise UnsafeSourceError(
            "plain http is only allowed for the configured endpoint or a host in "
            f"s3.trusted_hosts: {redact(address)!r}"
        )

    bucket: str | None = None
    key: str | None = None
    region: str | None = None
    match = _AWS_HOST.match(host)
    if under_endpoint:
        bucket, key = _split_bucket_key(parts.path)
    elif match:
        region = match.group("region")
        if match.group("bucket"):
            bucket, key = match.group("bucket"), unquote(parts.path.lstrip("/"))
        else:
            bucket, key = _split_bucket_key(parts.path)

    if presigned or bucket is None:
        return DirectURL(
            url=address,
            presigned=presigned,
            expires_at=_presign_expiry(query) if presigned else None,
            bucket=bucket or None,
            key=key,
        )
    if not bucket:
        raise ConfigurationError(f"no bucket in {redact(address)!r}")
    return S3Location(
        bucket=bucket, key=key or "", region=region, version_id=query.get("versionId")
    )
