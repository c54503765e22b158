"""Credentials and SigV4 from botocore, applied to the exact URL httpx sends.

We never hand-write the credential chain or the signature: botocore resolves
credentials (env, shared files, profiles, web identity, container and instance
metadata) and its ``S3SigV4Auth`` signs. GETs carry ``UNSIGNED-PAYLOAD``. Requests are
dated, and presigned URLs judged, by S3's clock once an answer showed this machine's to
be off (botocore signs by the local clock whatever S3 says, and S3 refuses a request
dated 15 minutes off).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from rag_ingest._redact import register_secret
from rag_ingest.errors import S3AuthError
from rag_ingest.settings import S3Settings

__all__ = ["Signer"]

logger = logging.getLogger("rag_ingest.s3")

# A refusal's Date this far from the clock we sign by is taken for a clock off, not for
# a request's latency or the header's whole seconds (the AWS SDK for Java's threshold;
# S3 itself refuses at 15 minutes).
CLOCK_TOLERANCE = timedelta(minutes=4)

_NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "configure a profile (AWS_PROFILE / ~/.aws/credentials), run where an instance or "
    "container role is available, or use anonymous mode for public buckets"
)


def _unsigned_payload_auth() -> type:
    from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth

    class UnsignedPayloadS3SigV4Auth(S3SigV4Auth):  # type: ignore[misc]
        """S3 SigV4 that never hashes the (empty) body (S3 accepts UNSIGNED-PAYLOAD),
        dated ``clock_offset`` from this machine's clock."""

        clock_offset = timedelta(0)

        def _should_sha256_sign_payload(self, request: Any) -> bool:
            return False

        def _modify_request_before_signing(self, request: Any) -> None:
            # add_auth has just stamped the request by the local clock, and every part
            # of the signature (date header, scope, string to sign) reads the stamp
            # after this call.
            if self.clock_offset:
                stamped = datetime.strptime(request.context["timestamp"], SIGV4_TIMESTAMP)
                dated = stamped + self.clock_offset
                request.context["timestamp"] = dated.strftime(SIGV4_TIMESTAMP)
            super()._modify_request_before_signing(request)

    return UnsignedPayloadS3SigV4Auth


def _local_clock() -> datetime:
    """Now by the clock botocore dates requests by (looked up at each call): its
    ``get_current_datetime`` from 1.40.2, the system clock before (where every URL
    download and every refusal for a request's date had failed with an AttributeError,
    found by a lowest-versions run)."""
    import botocore.auth

    clock = getattr(botocore.auth, "get_current_datetime", None)
    if clock is None:
        return datetime.now(UTC)
    now: datetime = clock()
    return now.replace(tzinfo=UTC)


def _span(delta: timedelta) -> str:
    """A clock's offset to the minute (a Date header is to the second, and late by the
    request's latency)."""
    hours, minutes = divmod(round(abs(delta.total_seconds()) / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class Signer:
    """Resolves credentials once (off the event loop) and signs requests."""

    def __init__(self, settings: S3Settings) -> None:
        self._settings = settings
        self._credentials: Any = None
        self._default_region: str | None = None
        self._resolved = False
        self._lock = asyncio.Lock()
        self._refreshing = asyncio.Lock()
        self._auth_cls: type | None = None
        self._clock_offset = timedelta(0)

    @property
    def anonymous(self) -> bool:
        return self._settings.anonymous

    @property
    def default_region(self) -> str | None:
        return self._settings.region or self._default_region

    def _resolve_blocking(self) -> None:
        import botocore.session
        from botocore.credentials import Credentials

        session = botocore.session.Session(profile=self._settings.profile)
        self._default_region = (
            os.environ.get("AWS_REGION") or session.get_config_variable("region") or None
        )
        if self._settings.anonymous:
            return
        s = self._settings
        if s.access_key_id and s.secret_access_key:
            creds = Credentials(
                s.access_key_id,
                s.secret_access_key.get_secret_value(),
                s.session_token.get_secret_value() if s.session_token else None,
            )
        else:
            try:
                creds = session.get_credentials()
            except Exception as exc:  # botocore raises many kinds here (profile, SSO, IMDS)
                raise S3AuthError(f"could not load AWS credentials: {exc}") from exc
        if creds is None:
            raise S3AuthError(_NO_CREDENTIALS)
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        self._credentials = creds
        self._auth_cls = _unsigned_payload_auth()

    async def resolve(self) -> None:
        """Load credentials in a thread: the chain may call instance metadata."""
        if self._resolved:
            return
        async with self._lock:
            if not self._resolved:
                await asyncio.to_thread(self._resolve_blocking)
                self._resolved = True

    async def refresh_if_due(self) -> None:
        """Refresh expiring credentials (roles, SSO, web identity) in a thread.

        botocore refreshes inside signing when they near expiry, and that is an STS or
        instance-metadata call: on the event loop it would stall every transfer.
        """
        creds = self._credentials
        due = getattr(creds, "refresh_needed", None)  # static credentials never expire
        if due is None or not due():
            return
        async with self._refreshing:
            if creds.refresh_needed():
                try:
                    frozen = await asyncio.to_thread(creds.get_frozen_credentials)
                except Exception as exc:  # botocore raises many kinds (STS, IMDS, SSO)
                    raise S3AuthError(f"could not refresh AWS credentials: {exc}") from exc
                register_secret(frozen.secret_key)
                register_secret(frozen.token)

    @property
    def clock_offset(self) -> timedelta:
        """How far S3's clock is from this machine's, as last measured (0 until then)."""
        return self._clock_offset

    def now(self) -> datetime:
        """Now by S3's clock, as far as this machine knows it (its own until a Date
        header showed it off)."""
        return _local_clock() + self._clock_offset

    def adopt_clock(self, server_time: datetime, signed_with: timedelta | None = None) -> bool:
        """Go by ``server_time``'s clock (an answer's Date header) if the one requests
        are dated and presigned URLs judged by is off from it by more than
        :data:`CLOCK_TOLERANCE`.

        Returns whether a refused request, signed ``signed_with`` from the local clock,
        was dated off by that much: it is then worth sending again (a request refused
        beside it may have set the clock first). Always False for an unsigned request.
        """
        offset = server_time.astimezone(UTC) - _local_clock()
        if abs(offset - self._clock_offset) > CLOCK_TOLERANCE:
            logger.warning(
                "this machine's clock is %s %s S3's (the Date of its answer): %s by "
                "S3's clock from now on; set the clock right (NTP)",
                _span(offset),
                "behind" if offset > timedelta(0) else "ahead of",
                # Anonymous mode signs nothing: only presigned URLs go by a clock there.
                "presigned URLs are judged"
                if self.anonymous
                else "requests are dated and presigned URLs judged",
            )
            self._clock_offset = offset
        if signed_with is None or self.anonymous:
            return False
        return abs(self._clock_offset - signed_with) > CLOCK_TOLERANCE

    def sign(self, method: str, url: str, headers: dict[str, str], region: str) -> dict[str, str]:
        """Return ``headers`` plus the SigV4 headers for ``method url`` in ``region``."""
        if self._settings.anonymous:
            return dict(headers)
        from botocore.awsrequest import AWSRequest

        assert self._auth_cls is not None, "resolve() first"
        request = AWSRequest(method=method, url=url, headers=dict(headers))
        auth = self._auth_cls(self._credentials, "s3", region)
        auth.clock_offset = self._clock_offset
        auth.add_auth(request)
        signed = dict(request.headers.items())
        token = signed.get("X-Amz-Security-Token")
        if token:
            register_secret(token)
        return signed
