"""The async S3 client (tier 1): head, list, read and download over httpx.

All httpx and botocore errors are translated to :mod:`rag_ingest.errors` here,
at one boundary. Every request is retried under one :class:`RetryPolicy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import http.cookiejar
import logging
import os
import re
import ssl
import tempfile
import time
import xml.etree.ElementTree as ET
import xml.sax.saxutils
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import httpx

from rag_ingest._redact import install_log_redaction, redact
from rag_ingest.errors import (
    ConfigurationError,
    RagIngestError,
    S3ArchivedObjectError,
    S3AuthError,
    S3Error,
    S3IntegrityError,
    S3NotFoundError,
    S3ObjectChangedError,
    S3PresignedExpiredError,
    S3RateLimitError,
    S3TimeoutError,
    UnsafeSourceError,
    disk_full,
)
from rag_ingest.progress import ByteProgress, ProgressCallback
from rag_ingest.s3._transport import make_transport
from rag_ingest.s3.auth import Signer
from rag_ingest.s3.aws_config import configured_endpoint
from rag_ingest.s3.objects import DownloadResult, ObjectInfo
from rag_ingest.s3.proxy import ProxyRoutes
from rag_ingest.s3.retry import (
    RETRYABLE_STATUS,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    RetryPolicy,
    RetryStats,
    http_date,
    parse_retry_after,
)
from rag_ingest.s3.safety import HostGuard, Resolver, TrustedHosts
from rag_ingest.s3.tls import tls_verification
from rag_ingest.s3.uri import (
    DirectURL,
    S3Location,
    Target,
    parse_address,
    quote_key,
    quote_query,
    where,
)
from rag_ingest.settings import Settings

__all__ = ["AsyncS3Client", "selected_by_globs"]

logger = logging.getLogger("rag_ingest.s3")

_ERROR_BODY_LIMIT = 64 * 1024
_MAX_HOPS = 3
# What S3 and its clones answer a request dated too far from their clock (a HEAD's
# refusal has no body to say it: its Date header is then what tells).
_CLOCK_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"})
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _disposition_filename(value: str | None) -> str | None:
    """The file name a Content-Disposition header gives (``filename*`` first), no path."""
    if not value:
        return None
    from email.message import Message

    message = Message()
    message["content-disposition"] = value
    name = message.get_filename()
    if not name:
        return None
    name = PurePosixPath(name.replace("\\", "/")).name
    return name if name not in ("", ".", "..") else None


def _xml_text(body: bytes, tag: str) -> str | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag:
            return element.text
    return None


_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")


def _peek_token(body: bytes) -> str | None:
    """The continuation token of a truncated listing page, found without parsing it all."""
    if not _TRUNCATED.search(body):
        return None
    match = _NEXT_TOKEN.search(body)
    if not match:
        return None
    return _unescape(match.group(1))


@dataclass
class Listing:
    """One ListObjectsV2 page: (key, size, ETag, LastModified) per object, and the next token."""

    items: list[tuple[str, int, str | None, str | None]]
    token: str | None


_KEYS = re.compile(rb"<Key>([^<]*)</Key>")
_SIZES = re.compile(rb"<Size>([0-9]+)</Size>")
_ETAGS = re.compile(rb"<ETag>([^<]*)</ETag>")
_MODIFIED = re.compile(rb"<LastModified>([^<]*)</LastModified>")
_URL_ENCODED = re.compile(rb"<EncodingType>\s*url\s*</EncodingType>", re.I)
_CHAR_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")
_ENTITIES = {"&quot;": '"', "&apos;": "'"}


def _unescape(raw: bytes) -> str:
    """XML character data: numeric references (Go servers write ``&#34;``) and entities."""
    text = raw.decode()
    if "&" not in text:
        return text
    text = _CHAR_REF.sub(lambda m: chr(int(m[1][1:], 16) if m[1][0] == "x" else int(m[1])), text)
    return xml.sax.saxutils.unescape(text, _ENTITIES)


def _fast_listing(body: bytes) -> Listing | None:
    """The page read by pattern, or None when it is not in the plain shape S3 sends.

    ElementTree took 5.9 ms per 1000-object page here (most of a listing's time), this
    2.4 ms.
    Each field is found once per object, in document order: only when every
    ``Contents`` element has exactly one Key, Size, ETag and LastModified is the page
    read this way, else it goes to the XML parser. Nothing is skipped silently.
    """
    count = body.count(b"<Contents>")
    if body.count(b"Contents") != 2 * count:  # attributes, prefixes, or the word in a key
        return None
    keys, sizes = _KEYS.findall(body), _SIZES.findall(body)
    etags, modified = _ETAGS.findall(body), _MODIFIED.findall(body)
    if not len(keys) == len(sizes) == len(etags) == len(modified) == count:
        return None
    decode = unquote_plus if _URL_ENCODED.search(body) else str
    items: list[tuple[str, int, str | None, str | None]] = []
    for key, size, etag, stamp in zip(keys, sizes, etags, modified, strict=True):
        # Nearly every ETag is hex between two escaped quotes: the general unescape would
        # add 2.3 ms per 1000-object page (measured).
        if etag.startswith(b"&#34;") and etag.endswith(b"&#34;") and b"&" not in etag[5:-5]:
            text = '"' + etag[5:-5].decode() + '"'
        elif etag.startswith(b"&quot;") and etag.endswith(b"&quot;") and b"&" not in etag[6:-6]:
            text = '"' + etag[6:-6].decode() + '"'
        else:
            text = _unescape(etag)
        name = _unescape(key) if b"&" in key else key.decode()
        items.append((decode(name), int(size), text, stamp.decode()))
    return Listing(items, _peek_token(body))


def parse_listing(body: bytes) -> Listing:
    """A ListObjectsV2 page: by pattern when it has the usual shape, else by XML parser."""
    return _fast_listing(body) or _xml_listing(body)


def _xml_listing(body: bytes) -> Listing:
    root = ET.fromstring(body)
    url_encoded = (root.findtext(f"{_S3_NS}EncodingType") or "").lower() == "url"
    items: list[tuple[str, int, str | None, str | None]] = []
    for item in root.iter(f"{_S3_NS}Contents"):
        key = item.findtext(f"{_S3_NS}Key") or ""
        items.append(
            (
                unquote_plus(key) if url_encoded else key,
                int(item.findtext(f"{_S3_NS}Size") or 0),
                item.findtext(f"{_S3_NS}ETag"),
                item.findtext(f"{_S3_NS}LastModified"),
            )
        )
    truncated = (root.findtext(f"{_S3_NS}IsTruncated") or "").lower() == "true"
    token = root.findtext(f"{_S3_NS}NextContinuationToken") if truncated else None
    return Listing(items, token)


def _sent_tracer(sent: asyncio.Event) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """A trace hook (httpcore's, or our aiohttp transport's): sets ``sent`` once it is sent."""

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_body.complete"):
            sent.set()

    return trace


async def _until_sent(sent: asyncio.Event, request: asyncio.Future[Any]) -> None:
    """Wait until a request is written (or has already finished, perhaps failing)."""
    waiter = asyncio.ensure_future(sent.wait())
    try:
        await asyncio.wait([waiter, request], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def _iso_date(value: str | None) -> datetime | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class _NoCookies(http.cookiejar.CookieJar):
    """S3 sets no cookies; scanning every answer's headers for them cost ~10% of a small GET."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def _renewal_of(fresh: DirectURL, old: DirectURL) -> bool:
    """Whether ``fresh`` can stand for an expired ``old``: another presigned URL that
    expires no sooner (where both say when). Not judged by this machine's clock, which
    may be what is off: the server judges the URL sent."""
    if not fresh.presigned or fresh.url == old.url:
        return False
    return fresh.expires_at is None or old.expires_at is None or fresh.expires_at >= old.expires_at


def _untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        # aiohttp's error is an SSLCertVerificationError itself, keeping ssl's inside
        found = getattr(seen, "certificate_error", seen)
        if isinstance(found, ssl.SSLCertVerificationError):
            return found
        seen = seen.__cause__ or seen.__context__
    return None


def transport_error(exc: httpx.HTTPError, target: Target) -> S3Error:
    """Translate an httpx transport failure; each may be retried but an untrusted
    certificate, which no retry changes."""
    kind = type(exc).__name__
    untrusted = _untrusted_certificate(exc)
    if untrusted is not None:
        why = untrusted.verify_message or untrusted
        return S3Error(
            f"TLS certificate not trusted ({why}): a proxy that inspects TLS needs its CA "
            "in s3.ca_bundle or AWS_CA_BUNDLE",
            **where(target),
        )
    if isinstance(exc, httpx.TimeoutException):
        return S3TimeoutError(f"{kind} talking to S3", **where(target))
    return S3Error(f"{kind}: connection failed or broke", retryable=True, **where(target))


def error_from_response(response: httpx.Response, body: bytes, target: Target) -> S3Error:
    """Classify a non-2xx answer into the error tree (retryable or not)."""
    status = response.status_code
    code = _xml_text(body, "Code") if body else None
    message = _xml_text(body, "Message") if body else None
    request_id = response.headers.get("x-amz-request-id")
    kwargs: dict[str, Any] = dict(where(target), status=status, code=code, request_id=request_id)
    text = message or response.reason_phrase or "S3 request failed"
    retry_after = parse_retry_after(response.headers)
    expired = (message and "expired" in message.lower()) or code == "ExpiredToken"
    if isinstance(target, DirectURL) and target.presigned and status in (400, 403) and expired:
        return S3PresignedExpiredError(f"presigned URL expired: {text}", **kwargs)
    if status == 429 or code in THROTTLING_CODES:
        return S3RateLimitError(f"throttled: {text}", retry_after=retry_after, **kwargs)
    if code in TRANSIENT_CODES:
        return S3TimeoutError(text, retry_after=retry_after, **kwargs)
    if status in RETRYABLE_STATUS:
        return S3Error(text, retryable=True, retry_after=retry_after, **kwargs)
    if code == "InvalidObjectState":
        return S3ArchivedObjectError(
            f"archived (Glacier or Deep Archive): restore the object before ingesting it: {text}",
            **kwargs,
        )
    if status in (401, 403):
        if code in _CLOCK_CODES:  # and its Date header did not tell how far off
            text += " (this machine's clock is off from S3's: set it right, NTP)"
        return S3AuthError(f"access denied: {text}", **kwargs)
    if status == 404:
        return S3NotFoundError(f"not found: {text}", **kwargs)
    if status == 412:
        return S3ObjectChangedError(f"object changed (If-Match failed): {text}", **kwargs)
    return S3Error(text, **kwargs)


class AsyncS3Client:
    """Async S3 operations. Use as ``async with AsyncS3Client(settings) as s3: ...``.

    ``transport`` and ``resolver`` are injectable for tests; by default the
    transport reads the socket ``settings.transfer.read_size`` bytes at a time.
    ``renew_url(url) -> url``: a fresh presigned URL for one that has expired (before
    a request, or by the server's clock), called in a thread, once for all requests
    that need it. The sync twin is :class:`rag_ingest.s3.S3Client`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        renew_url: Callable[[str], str] | None = None,
    ) -> None:
        install_log_redaction()
        self.settings = settings or Settings()
        self.endpoint_url = self.settings.s3.endpoint_url or configured_endpoint(
            self.settings.s3.profile
        )
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"bad endpoint URL {self.endpoint_url!r}")
        if self.endpoint_url:
            self.endpoint_url = self.endpoint_url.rstrip("/")
        t = self.settings.transfer
        self.policy = RetryPolicy(self.settings.retry)
        self._signer = Signer(self.settings.s3)
        self._trusted = TrustedHosts(self.settings.s3.trusted_hosts)
        proxy = self.settings.s3.proxy
        self._proxies = ProxyRoutes(
            None if proxy is None else proxy.get_secret_value(),
            from_env=self.settings.s3.proxy_from_env,
        )
        self._tls = tls_verification(self.settings.s3)
        self._guard = HostGuard(
            self.endpoint_url,
            resolver,
            self._trusted,
            proxies=[(p.host, p.port) for p in self._proxies.proxies],
        )
        self._resolver = resolver
        self._bucket_regions: dict[str, str] = {}
        self._renew_url = renew_url
        self._renewals: dict[str, DirectURL] = {}  # a presigned URL -> its newest renewal
        self._renewing = asyncio.Lock()
        self._temp_dir_made = False
        self._slots = asyncio.Semaphore(t.max_connections)
        self._closed = False
        self._http = httpx.AsyncClient(
            transport=transport or self._make_transport(),
            timeout=httpx.Timeout(
                connect=t.connect_timeout,
                read=t.read_timeout,
                write=t.read_timeout,
                pool=t.read_timeout,
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=_NoCookies(),
        )

    def _make_transport(self) -> httpx.AsyncBaseTransport:
        t = self.settings.transfer
        # Either engine checks host safety again at connect time, on the addresses used.
        if t.engine == "aiohttp":
            from rag_ingest.s3._aiohttp import AiohttpTransport

            return AiohttpTransport(
                max_connections=t.max_connections,
                read_size=t.read_size,
                verify=self._tls,
                vet=self._guard.vet_addresses,
                lookup=self._resolver,
                proxies=self._proxies,
            )
        return make_transport(
            max_connections=t.max_connections,
            read_size=t.read_size,
            verify=self._tls,
            vet=self._guard.vet_addresses,
            lookup=self._resolver,
            proxies=self._proxies,
        )

    def __repr__(self) -> str:
        return (
            f"AsyncS3Client(endpoint_url={self.endpoint_url!r}, anonymous={self._signer.anonymous})"
        )

    async def __aenter__(self) -> AsyncS3Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()

    # -- addressing -------------------------------------------------------------

    def parse(self, address: str | Target) -> Target:
        """Turn an address string into a target (already-parsed targets pass through)."""
        if isinstance(address, (S3Location, DirectURL)):
            return address
        return parse_address(
            address, endpoint_url=self.endpoint_url, http_allowed=self._trusted.named
        )

    def _region_for(self, loc: S3Location) -> str:
        return (
            loc.region
            or self._bucket_regions.get(loc.bucket)
            or self._signer.default_region
            or "us-east-1"
        )

    def _url_for(self, loc: S3Location, query: Mapping[str, str] | None) -> tuple[str, str]:
        region = self._region_for(loc)
        style = self.settings.s3.addressing_style
        key = quote_key(loc.key)
        if self.endpoint_url:
            if style == "virtual":
                parts = urlsplit(self.endpoint_url)
                url = f"{parts.scheme}://{loc.bucket}.{parts.netloc}/{key}"
            else:
                url = f"{self.endpoint_url}/{quote_key(loc.bucket)}/{key}"
        else:
            virtual = style == "virtual" or (
                style == "auto" and "." not in loc.bucket and loc.bucket == loc.bucket.lower()
            )
            host = f"s3.{region}.amazonaws.com"
            url = (
                f"https://{loc.bucket}.{host}/{key}"
                if virtual
                else f"https://{host}/{quote_key(loc.bucket)}/{key}"
            )
        params = dict(query or {})
        if loc.version_id and "versionId" not in params:
            params["versionId"] = loc.version_id
        if params:
            url = f"{url}?{quote_query(params)}"
        return url, region

    # -- one request --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        target: Target,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        sent: asyncio.Event | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """``async with s3.request(...) as response``: one streaming 2xx response, closed on exit.

        Holds one of ``max_connections`` slots meanwhile: queueing here is cheap,
        queueing inside httpcore's pool costs O(waiters) per request. ``sent`` is set
        once the request has been written, so a caller can overlap its own work.
        """
        async with self._slots:
            response = await self._open(method, target, query=query, headers=headers, sent=sent)
            try:
                yield response
            finally:
                await response.aclose()

    async def _open(
        self,
        method: str,
        target: Target,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        sent: asyncio.Event | None = None,
    ) -> httpx.Response:
        """Send one request and return the streaming 2xx response (the caller closes it).

        Signs S3 targets (fresh signature per call), checks the host, discovers a
        bucket's region once, follows redirects (a signed request's to its own host
        only), and raises a
        classified :class:`S3Error` for any other answer. Not retried here.
        """
        if self._closed:
            raise RuntimeError("this client is closed")
        base_headers = {"accept-encoding": "identity", **(headers or {})}
        renewed = reclocked = looks_expired = False
        dated_off = timedelta(0)
        for _hop in range(_MAX_HOPS + 1):
            if isinstance(target, DirectURL):
                target = self._renewals.get(target.url, target)
                looks_expired = target.expired(self._signer.now())
                if looks_expired and self._renew_url is not None and not renewed:
                    target = await self._renew(target, "expired before the request was sent")
                    renewed = True
                    looks_expired = target.expired(self._signer.now())
                # Without a renewal, a URL our clock calls expired is still sent: the
                # server's clock decides, and this machine's may be the one that is off.
                url, send_headers = target.url, dict(base_headers)
            else:
                url, region = self._url_for(target, query)
                await self._signer.resolve()
                await self._signer.refresh_if_due()
                dated_off = self._signer.clock_offset
                send_headers = self._signer.sign(method, url, base_headers, region)
            await self._guard.check(url)
            try:
                extensions = {"trace": _sent_tracer(sent)} if sent is not None else None
                request = self._http.build_request(
                    method, url, headers=send_headers, extensions=extensions
                )
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise transport_error(exc, target) from exc
            if response.status_code < 300:
                if looks_expired:
                    # Taken though our clock called it expired: go by the server's
                    # clock if its Date shows this machine's to be off.
                    self._adopt_server_clock(response)
                return response
            body = b""
            try:
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) >= _ERROR_BODY_LIMIT:
                        break
            except httpx.HTTPError:
                pass  # the status is what matters; a broken error body changes nothing
            finally:
                await response.aclose()
            new_target = self._after_error(target, response)
            if new_target is not None:
                target = new_target
                continue
            error = error_from_response(response, body, target)
            if not reclocked and self._clock_was_off(target, response, error.code, dated_off):
                reclocked = True  # once: a refusal that stays is not the clock's
                continue
            if (
                isinstance(error, S3PresignedExpiredError)
                and isinstance(target, DirectURL)
                and self._renew_url is not None
                and not renewed
            ):
                # The server's clock says expired, ours not yet: renewed once.
                target, renewed = await self._renew(target, "expired"), True
                continue
            raise error
        raise S3Error("too many redirects", **where(target))

    async def _renew(self, target: DirectURL, why: str) -> DirectURL:
        """A fresh URL for an expired presigned one, from the ``renew_url`` function
        (run in a thread; once for all requests that need it), or
        :class:`S3PresignedExpiredError` without one. The new URL must be presigned,
        not expired, and name the same bucket and key where both say."""
        if self._renew_url is None:
            raise S3PresignedExpiredError(f"presigned URL {why}", **where(target))
        async with self._renewing:
            latest = self._renewals.get(target.url, target)
            if latest is not target:
                # Renewed while this request waited: the server judges that one (this
                # machine's clock may call it expired too, if it is what is off).
                return latest
            try:
                address = await asyncio.to_thread(self._renew_url, target.url)
                fresh = self.parse(address)
            except RagIngestError:
                raise
            except Exception as exc:
                raise S3PresignedExpiredError(
                    f"presigned URL {why}, and renew_url failed: {type(exc).__name__}: "
                    f"{redact(str(exc))}",
                    **where(target),
                ) from exc
            if not isinstance(fresh, DirectURL) or not _renewal_of(fresh, target):
                raise S3PresignedExpiredError(
                    f"presigned URL {why}, and renew_url gave no fresh presigned URL "
                    f"({redact(str(address))})",
                    **where(target),
                )
            if None not in (target.key, fresh.key) and (target.bucket, target.key) != (
                fresh.bucket,
                fresh.key,
            ):
                raise UnsafeSourceError(
                    f"renew_url gave a URL of another object ({fresh.bucket}/{fresh.key}) "
                    f"for {target.bucket}/{target.key}"
                )
            for given, renewal in list(self._renewals.items()):
                if renewal.url == target.url:
                    self._renewals[given] = fresh
            self._renewals[target.url] = fresh
            logger.info("renewed the expired presigned URL of %s", where(target)["key"])
            return fresh

    def _adopt_server_clock(
        self, response: httpx.Response, signed_with: timedelta | None = None
    ) -> bool:
        """Go by the clock of ``response``'s Date header where it shows this machine's
        off (see :meth:`Signer.adopt_clock`, which says what the answer means)."""
        server_time = http_date(response.headers.get("date"))
        return server_time is not None and self._signer.adopt_clock(server_time, signed_with)

    def _clock_was_off(
        self, target: Target, response: httpx.Response, code: str | None, dated_off: timedelta
    ) -> bool:
        """Whether a signed request's refusal came of this machine's clock (its Date
        header is minutes from when the request said it was sent), now set right."""
        status = response.status_code
        if (
            not isinstance(target, S3Location)
            or self._signer.anonymous
            or status not in (400, 401, 403)
        ):
            return False
        if status == 400 and code not in _CLOCK_CODES:
            return False
        return self._adopt_server_clock(response, dated_off)

    def _after_error(self, target: Target, response: httpx.Response) -> Target | None:
        """A target to try again after a region hint or a redirect, else None."""
        if isinstance(target, S3Location) and not self.endpoint_url:
            region = response.headers.get("x-amz-bucket-region")
            if region and region != self._region_for(target):
                logger.debug("bucket %s is in region %s", target.bucket, region)
                self._bucket_regions[target.bucket] = region
                return target
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("location")
            if not location:
                return None
            old = urlsplit(str(response.request.url))
            new = urlsplit(str(response.request.url.join(location)))
            # A URL fetched as given carries no credentials of ours (a presigned one's
            # are in the URL the server redirects from), so it may go to another host;
            # each hop passes the host guard (https, no private address) before sending.
            # A signed request never leaves its host.
            if isinstance(target, DirectURL):
                return DirectURL(
                    url=new.geturl(),
                    presigned=target.presigned,
                    expires_at=target.expires_at,
                    bucket=target.bucket,
                    key=target.key,
                )
            raise UnsafeSourceError(
                f"refusing redirect from {old.hostname} to another host ({new.hostname})"
            )
        return None

    # -- head / read / list -------------------------------------------------------

    def _info_from(self, response: httpx.Response, target: Target, size: int) -> ObjectInfo:
        headers = response.headers
        return ObjectInfo(
            **where(target),
            size=size,
            etag=headers.get("etag"),
            last_modified=http_date(headers.get("last-modified")),
            content_type=headers.get("content-type"),
            version_id=headers.get("x-amz-version-id"),
            checksums={
                k.lower()[len("x-amz-checksum-") :]: v
                for k, v in headers.items()
                if k.lower().startswith("x-amz-checksum-") and k.lower() != "x-amz-checksum-type"
            },
            source=str(target),
            filename=_disposition_filename(headers.get("content-disposition")),
        )

    async def head(self, address: str | Target, *, stats: RetryStats | None = None) -> ObjectInfo:
        """Size, ETag, dates and checksums of one object.

        For a direct URL (a presigned GET cannot be used for HEAD) this is a
        one-byte ranged GET.
        """
        target = self.parse(address)

        async def attempt() -> ObjectInfo:
            if isinstance(target, DirectURL):
                async with self.request("GET", target, headers={"range": "bytes=0-0"}) as response:
                    pass
                from rag_ingest.s3.download import parse_content_range

                if response.status_code == 206:
                    _, _, total = parse_content_range(response, target)
                else:
                    total = int(response.headers.get("content-length", "-1"))
                return self._info_from(response, target, total)
            headers = {"x-amz-checksum-mode": "ENABLED"}
            async with self.request("HEAD", target, headers=headers) as response:
                pass
            length = response.headers.get("content-length")
            if length is None:
                raise S3IntegrityError(
                    "HEAD without Content-Length", bucket=target.bucket, key=target.key
                )
            return self._info_from(response, target, int(length))

        return await self.policy.run(attempt, stats=stats)

    async def part_size(
        self, target: S3Location, part_number: int, *, stats: RetryStats | None = None
    ) -> tuple[int, int | None, str | None]:
        """(size, parts count, ETag) of one part of a multipart upload (HEAD ?partNumber).

        S3 answers with the part's own Content-Length and ``x-amz-mp-parts-count``;
        a server that ignores the parameter answers with the whole object.
        """

        async def attempt() -> tuple[int, int | None, str | None]:
            query = {"partNumber": str(part_number)}
            async with self.request("HEAD", target, query=query) as response:
                pass
            headers = response.headers
            length = headers.get("content-length")
            if length is None:
                raise S3IntegrityError(
                    "HEAD without Content-Length", bucket=target.bucket, key=target.key
                )
            count = headers.get("x-amz-mp-parts-count")
            return (
                int(length),
                int(count) if count and count.isdigit() else None,
                headers.get("etag"),
            )

        return await self.policy.run(attempt, stats=stats)

    async def list(
        self,
        prefix: str | Target,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_count: int | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[ObjectInfo]:
        """Yield the objects under a prefix, page by page, as they arrive.

        ``include``/``exclude`` are shell globs (``*`` also matches ``/``), matched
        against the key under the prefix's folder, as ``aws s3 cp --recursive``
        filters are, and against the whole key. ``max_count`` stops after that many
        yields.
        """
        target = self.parse(prefix)
        if not isinstance(target, S3Location):
            raise ConfigurationError("listing needs an s3:// address or an S3 endpoint URL")
        if max_count is not None and max_count <= 0:
            return
        base = S3Location(bucket=target.bucket, key="", region=target.region)
        folder = target.key[: target.key.rfind("/") + 1]

        async def page(token: str | None, sent: asyncio.Event | None = None) -> bytes:
            query = {
                "list-type": "2",
                "prefix": target.key,
                "max-keys": str(page_size),
                "encoding-type": "url",
            }
            if token:
                query["continuation-token"] = token

            async def attempt() -> bytes:
                async with self.request("GET", base, query=query, sent=sent) as response:
                    try:
                        return await response.aread()
                    except httpx.HTTPError as exc:
                        raise transport_error(exc, base) from exc

            return await self.policy.run(attempt)

        yielded = 0
        pending: asyncio.Future[bytes] | None = asyncio.ensure_future(page(None))
        try:
            while pending is not None:
                body = await pending
                # Ask for the next page before parsing this one: the server works on
                # page n+1 while we parse page n (at most two pages held).
                peeked = _peek_token(body)
                sent = asyncio.Event()
                pending = asyncio.ensure_future(page(peeked, sent)) if peeked else None
                if pending is not None:
                    await _until_sent(sent, pending)
                try:
                    listing = parse_listing(body)
                except ET.ParseError as exc:
                    raise S3Error("unreadable listing", **where(target)) from exc
                for key, size, etag, modified in listing.items:
                    if not selected_by_globs(
                        key, include, exclude, relative=key.removeprefix(folder)
                    ):
                        continue
                    yield ObjectInfo(
                        bucket=target.bucket,
                        key=key,
                        size=size,
                        etag=etag,
                        last_modified=_iso_date(modified),
                        source=f"s3://{target.bucket}/{key}",
                    )
                    yielded += 1
                    if max_count is not None and yielded >= max_count:
                        return
                token = listing.token
                if token != peeked:  # the quick peek misread the page: trust the parser
                    if pending is not None:
                        pending.cancel()
                    pending = asyncio.ensure_future(page(token)) if token else None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, S3Error):
                    await pending

    async def read(self, address: str | Target) -> bytes:
        """The whole object in memory, up to ``limits.max_read_size`` bytes."""
        result = await self.download_to_temp(address, max_size=self.settings.limits.max_read_size)
        try:
            return result.path.read_bytes()
        finally:
            result.path.unlink(missing_ok=True)

    # -- downloads ----------------------------------------------------------------

    async def download(
        self,
        address: str | Target,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
    ) -> DownloadResult:
        """Download to ``dest`` atomically (a temp file beside it, renamed on success)."""
        dest_path = Path(dest)
        result = await self._download(
            address, dest_path.parent, progress=progress, show_progress=show_progress
        )
        os.replace(result.path, dest_path)
        result.path = dest_path
        return result

    async def download_to_temp(
        self,
        address: str | Target,
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool | None = None,
        max_size: int | None = None,
    ) -> DownloadResult:
        """Download to a fresh 0600 temp file; the caller owns (and removes) ``result.path``."""
        directory = self.settings.staging_dir
        if not self._temp_dir_made and self.settings.temp_dir is not None:
            directory.mkdir(parents=True, exist_ok=True)  # a configured one may not exist yet
            self._temp_dir_made = True
        return await self._download(
            address, directory, progress=progress, show_progress=show_progress, max_size=max_size
        )

    @contextlib.asynccontextmanager
    async def fetch(
        self, address: str | Target, *, progress: ProgressCallback | None = None
    ) -> AsyncIterator[DownloadResult]:
        """``async with s3.fetch(uri) as result:`` a temp download removed on exit."""
        result = await self.download_to_temp(address, progress=progress, show_progress=False)
        try:
            yield result
        finally:
            result.path.unlink(missing_ok=True)

    async def _download(
        self,
        address: str | Target,
        directory: Path,
        *,
        progress: ProgressCallback | None,
        show_progress: bool | None,
        max_size: int | None = None,
    ) -> DownloadResult:
        from rag_ingest.s3.download import ObjectDownload

        target = self.parse(address)
        bar = self.settings.progress if show_progress is None else show_progress
        meter = ByteProgress(callback=progress, bar=bar, description=str(target))
        # mkstemp: an unpredictable name (never derived from the key), mode 0600.
        fd, name = tempfile.mkstemp(prefix="rag-ingest-", suffix=".part", dir=directory)
        path = Path(name)
        started = time.perf_counter()
        stats = RetryStats()
        try:
            job = ObjectDownload(
                self,
                target,
                fd,
                progress=meter,
                stats=stats,
                max_size=min(
                    max_size or self.settings.limits.max_object_size,
                    self.settings.limits.max_object_size,
                ),
            )
            info, checksum, parts = await job.run()
        except BaseException as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            if directory == self.settings.staging_dir:
                full = disk_full(exc, directory, str(target))
            else:  # the caller's destination
                full = disk_full(exc, directory, str(target), "free some space there")
            if full is not None:
                raise full from exc
            raise
        finally:
            meter.close()
        os.close(fd)
        return DownloadResult(
            path=path,
            info=info,
            bytes=info.size,
            parts=parts,
            attempts=stats.attempts,
            retries=stats.retries,
            seconds=time.perf_counter() - started,
            checksum=checksum,
        )


def selected_by_globs(
    key: str, include: Iterable[str], exclude: Iterable[str], *, relative: str | None = None
) -> bool:
    """True when ``key`` matches one of ``include`` (if any) and none of ``exclude``.

    A pattern matches the whole key or its ``relative`` form (the key under the listed
    prefix's folder, a path under the walked directory): ``sub/*.md`` selects
    ``docs/sub/a.md`` listed from ``docs/``, as the user sees the tree they named.
    """
    forms = [key] if relative is None else [key, relative]

    def matched(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(form, p) for p in patterns for form in forms)

    include = list(include)
    return (not include or matched(include)) and not matched(exclude)
