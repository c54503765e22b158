"""Status-level behaviour of the S3 client, with responses injected by respx."""

from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import respx

from rag_ingest.errors import (
    S3ArchivedObjectError,
    S3AuthError,
    S3NotFoundError,
    S3ObjectTooLargeError,
    S3PresignedExpiredError,
    S3RateLimitError,
    UnsafeSourceError,
)
from rag_ingest.s3 import AsyncS3Client
from rag_ingest.s3.safety import HostGuard, TrustedHosts
from rag_ingest.sources import listed_by
from tests.conftest import make_settings

HOST = "https://docs.s3.us-east-1.amazonaws.com"
ETAG = '"5d41402abc4b2a76b9719d911017c592"'  # md5(b"hello")


def ok(body: bytes = b"hello", etag: str = ETAG) -> httpx.Response:
    return httpx.Response(
        206,
        headers={
            "etag": etag,
            "content-range": f"bytes 0-{len(body) - 1}/{len(body)}",
            "content-length": str(len(body)),
        },
        content=body,
    )


class _Body(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data


def replay(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect answering a fresh copy of each response in turn (the last repeats).

    respx's httpx-level mocker hands the same object back on every call and pre-reads
    a ``ByteStream``; the client streams raw bodies, which can happen once per object.
    """
    calls = iter(range(len(responses) - 1))

    def answer(request: httpx.Request) -> httpx.Response:
        r = responses[next(calls, len(responses) - 1)]
        assert isinstance(r.stream, httpx.ByteStream)
        raw = b"".join(r.stream)  # the wire bytes (r.content would be decoded)
        return httpx.Response(r.status_code, headers=r.headers, stream=_Body(raw))

    return answer


def s3_error(status: int, code: str, message: str = "", **headers: str) -> httpx.Response:
    xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>R1</RequestId></Error>"
    return httpx.Response(status, headers=headers, content=xml.encode())


async def test_slowdown_three_times_then_success() -> None:
    with respx.mock(using="httpx", assert_all_called=True) as mock:
        route = mock.get(f"{HOST}/a.txt").mock(
            side_effect=replay(
                *[s3_error(503, "SlowDown", "Please reduce your request rate.")] * 3, ok()
            )
        )
        async with AsyncS3Client(make_settings()) as s3:
            result = await s3.download_to_temp("s3://docs/a.txt")
        try:
            assert result.path.read_bytes() == b"hello"
            assert result.attempts == 4 and result.retries == 3
            assert result.checksum == "md5-etag"
        finally:
            result.path.unlink()
        assert route.call_count == 4


async def test_throttled_past_the_budget_is_rate_limit_error() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(
            side_effect=replay(s3_error(429, "TooManyRequests", "slow", **{"retry-after": "0"}))
        )
        async with AsyncS3Client(make_settings(retry={"max_attempts": 3})) as s3:
            with pytest.raises(S3RateLimitError) as info:
                await s3.read("s3://docs/a.txt")
        assert route.call_count == 3
        assert info.value.bucket == "docs" and info.value.key == "a.txt"
        assert "s3://docs/a.txt" in str(info.value)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (404, "NoSuchKey", S3NotFoundError),
        (404, "NoSuchBucket", S3NotFoundError),
        (403, "SignatureDoesNotMatch", S3AuthError),
        (403, "AccessDenied", S3AuthError),
        # A Glacier object: not a credentials problem, and the remedy is a restore.
        (403, "InvalidObjectState", S3ArchivedObjectError),
    ],
)
async def test_not_retried(status: int, code: str, error: type[Exception]) -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(s3_error(status, code)))
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(error) as info:
                await s3.read("s3://docs/a.txt")
        assert route.call_count == 1
        assert code in str(info.value)


async def test_not_found_is_a_file_not_found_error() -> None:
    with respx.mock(using="httpx") as mock:
        mock.head(f"{HOST}/a.txt").mock(side_effect=replay(httpx.Response(404)))
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(FileNotFoundError):
                await s3.head("s3://docs/a.txt")


async def test_requests_are_sigv4_signed_with_unsigned_payload() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings()) as s3:
            await s3.read("s3://docs/a b+c=(d)/é.txt")
        request = route.calls.last.request
        assert request.url.raw_path == b"/a%20b%2Bc%3D%28d%29/%C3%A9.txt"
        assert request.headers["authorization"].startswith(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
        )
        assert request.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert request.headers["accept-encoding"] == "identity"


async def test_anonymous_mode_sends_no_authorization() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings(s3={"anonymous": True})) as s3:
            assert await s3.read("s3://docs/a.txt") == b"hello"
        assert "authorization" not in route.calls.last.request.headers


async def test_no_credentials_says_what_to_do() -> None:
    settings = make_settings(s3={"access_key_id": None, "secret_access_key": None})
    async with AsyncS3Client(settings) as s3:
        with pytest.raises(S3AuthError, match="AWS_ACCESS_KEY_ID"):
            await s3.read("s3://docs/a.txt")


async def test_bucket_region_is_discovered_once() -> None:
    with respx.mock(using="httpx") as mock:
        wrong = mock.get(f"{HOST}/a.txt").mock(
            side_effect=replay(
                s3_error(301, "PermanentRedirect", **{"x-amz-bucket-region": "eu-west-1"})
            )
        )
        right = mock.get("https://docs.s3.eu-west-1.amazonaws.com/a.txt").mock(
            side_effect=replay(ok())
        )
        async with AsyncS3Client(make_settings(s3={"region": None})) as s3:
            assert await s3.read("s3://docs/a.txt") == b"hello"
            assert await s3.read("s3://docs/a.txt") == b"hello"
        assert wrong.call_count == 1 and right.call_count == 2
        assert "/eu-west-1/s3/" in right.calls.last.request.headers["authorization"]


async def test_cross_host_redirect_is_refused() -> None:
    with respx.mock(using="httpx") as mock:
        mock.get(f"{HOST}/a.txt").mock(
            side_effect=replay(
                httpx.Response(307, headers={"location": "https://evil.example/steal"})
            )
        )
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(UnsafeSourceError, match="redirect"):
                await s3.read("s3://docs/a.txt")


def presigned_for(
    key: str, signature: str, signed: str | datetime = "20991231T000000Z", seconds: int = 604800
) -> str:
    """A URL of ``key`` presigned at ``signed`` (by its issuer's clock) for ``seconds``."""
    stamp = signed if isinstance(signed, str) else f"{signed:%Y%m%dT%H%M%SZ}"
    return (
        f"{HOST}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}"
        f"&X-Amz-Expires={seconds}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )


def _presigned(signed: str = "20260101T000000Z", seconds: int = 60) -> str:
    return presigned_for("a.txt", "c" * 64, signed, seconds)


async def test_a_presigned_url_our_clock_calls_expired_is_left_to_the_server() -> None:
    # This machine's clock may be the one that is off; without renew_url the server
    # judges, once, and its refusal is the typed error.
    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(
            side_effect=replay(s3_error(403, "AccessDenied", "Request has expired"))
        )
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(S3PresignedExpiredError):
                await s3.read(_presigned("20200101T000000Z"))
        assert route.call_count == 1


async def test_presigned_expired_answer_is_not_retried() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(
            side_effect=replay(s3_error(403, "AccessDenied", "Request has expired"))
        )
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(S3PresignedExpiredError) as info:
                await s3.read(_presigned("20991231T000000Z", 604800))
        assert route.call_count == 1
        assert "c" * 64 not in str(info.value)


async def test_an_expired_presigned_url_is_renewed_once_for_every_request() -> None:
    old = _presigned("20200101T000000Z")
    fresh = presigned_for("a.txt", "d" * 64)
    asked: list[str] = []

    def renew(url: str) -> str:
        asked.append(url)
        return fresh

    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings(), renew_url=renew) as s3:
            assert await s3.read(old) == b"hello"
            assert await s3.read(old) == b"hello"  # the renewal is remembered
        assert asked == [old]
        assert route.call_count == 2
        assert all("d" * 64 in str(c.request.url) for c in route.calls)


async def test_a_url_the_server_calls_expired_is_renewed_and_sent_again() -> None:
    # Our clock says valid, the server's says expired: renewed once, not in a loop.
    given = _presigned("20991231T000000Z", 604800)
    fresh = presigned_for("a.txt", "e" * 64)
    with respx.mock(using="httpx") as mock:
        first = mock.get(url__regex=r".*X-Amz-Signature=c+$").mock(
            side_effect=replay(s3_error(403, "AccessDenied", "Request has expired"))
        )
        second = mock.get(url__regex=r".*X-Amz-Signature=e+$").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings(), renew_url=lambda url: fresh) as s3:
            assert await s3.read(given) == b"hello"
            assert await s3.read(given) == b"hello"  # straight to the renewal
        assert first.call_count == 1 and second.call_count == 2

        # A renewal the server also calls expired fails, after one renewal.
        second.mock(side_effect=replay(s3_error(403, "AccessDenied", "Request has expired")))
        async with AsyncS3Client(make_settings(), renew_url=lambda url: fresh) as s3:
            with pytest.raises(S3PresignedExpiredError):
                await s3.read(given)
        assert first.call_count == 2 and second.call_count == 3


def _always(url: str) -> Callable[[str], str]:
    """A ``renew_url`` that gives ``url`` whatever it is asked to renew."""
    return lambda _: url


async def test_a_renewal_that_fails_or_names_another_object_is_refused() -> None:
    old = _presigned("20200101T000000Z")
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        route = mock.get(url__regex=r".*").mock(side_effect=replay(ok()))

        def broken(url: str) -> str:
            raise RuntimeError(f"signing service down for {url}")

        async with AsyncS3Client(make_settings(), renew_url=broken) as s3:
            with pytest.raises(S3PresignedExpiredError, match="renew_url failed") as info:
                await s3.read(old)
            assert "c" * 64 not in str(info.value)  # the old URL's signature redacted
        other = presigned_for("b.txt", "f" * 64)
        async with AsyncS3Client(make_settings(), renew_url=lambda url: other) as s3:
            with pytest.raises(UnsafeSourceError, match="another object"):
                await s3.read(old)
        sooner = presigned_for("a.txt", "9" * 64, signed="20190101T000000Z")
        for renewal in (old, sooner):  # the same URL, or one expiring before it
            async with AsyncS3Client(make_settings(), renew_url=_always(renewal)) as s3:
                with pytest.raises(S3PresignedExpiredError, match="no fresh presigned URL"):
                    await s3.read(old)
        assert route.call_count == 0


async def test_presigned_url_is_sent_exactly_as_given_and_unsigned() -> None:
    url = _presigned("20991231T000000Z", 604800)
    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings()) as s3:
            assert await s3.read(url) == b"hello"
        request = route.calls.last.request
        assert str(request.url) == url
        assert "authorization" not in request.headers


async def test_wire_bytes_are_not_decompressed() -> None:
    raw = gzip.compress(b"x" * 100_000)
    with respx.mock(using="httpx") as mock:
        mock.get(f"{HOST}/a.gz").mock(
            side_effect=replay(
                httpx.Response(
                    206,
                    headers={
                        "content-encoding": "gzip",
                        "content-range": f"bytes 0-{len(raw) - 1}/{len(raw)}",
                        "etag": '"-"',
                    },
                    content=raw,
                )
            )
        )
        async with AsyncS3Client(make_settings()) as s3:
            assert await s3.read("s3://docs/a.gz") == raw


async def test_too_large_is_refused_before_writing(tmp_path: Path) -> None:
    with respx.mock(using="httpx") as mock:
        mock.get(f"{HOST}/big").mock(
            side_effect=replay(
                httpx.Response(
                    206,
                    headers={"content-range": "bytes 0-4/999999999999", "etag": ETAG},
                    content=b"hello",
                )
            )
        )
        async with AsyncS3Client(make_settings(temp_dir=tmp_path)) as s3:
            with pytest.raises(S3ObjectTooLargeError):
                await s3.download_to_temp("s3://docs/big")
    assert os.listdir(tmp_path) == []


async def test_private_and_metadata_hosts_are_refused() -> None:
    async def resolve_to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with AsyncS3Client(make_settings(), resolver=resolve_to_loopback) as s3:
        for url in (
            "https://169.254.169.254/latest/meta-data/",
            "https://10.1.2.3/file.pdf",
            "https://[::1]/file.pdf",
            "https://metadata.google.internal/x",
            "https://innocent.example/file.pdf",  # resolves to loopback
        ):
            with pytest.raises(UnsafeSourceError):
                await s3.read(url)


async def test_trusted_hosts_and_networks_open_only_themselves() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return {"wiki.corp": ["10.1.2.3"], "files.corp": ["10.9.9.9"]}.get(host, ["127.0.0.1"])

    settings = make_settings(s3={"trusted_hosts": ["wiki.corp", "10.9.0.0/16", "docs.corp:8080"]})
    with respx.mock(using="httpx", assert_all_called=False) as mock:
        route = mock.get(url__regex=r".*").mock(
            side_effect=replay(httpx.Response(200, headers={"content-length": "2"}, content=b"ok"))
        )
        async with AsyncS3Client(settings, resolver=resolve) as s3:
            # Named: plain http and a private address. A network: names resolving into it
            # over https, and its IP literals over http.
            assert await s3.read("http://wiki.corp/page") == b"ok"
            assert await s3.read("https://files.corp/a.pdf") == b"ok"
            assert await s3.read("http://10.9.1.1/a.pdf") == b"ok"
            assert await s3.read("http://docs.corp:8080/a.pdf") == b"ok"
            allowed = route.call_count
            for url in (
                "http://files.corp/a.pdf",  # in a trusted network, but plain http by name
                "http://docs.corp/a.pdf",  # trusted on port 8080 only
                "https://10.1.2.4/x",  # private, not trusted
                "https://169.254.169.254/latest/meta-data/",
                "https://elsewhere.example/x",  # resolves to loopback
            ):
                with pytest.raises(UnsafeSourceError):
                    await s3.read(url)
            assert route.call_count == allowed
        # At connect time (DNS rebinding) a trusted network is still only itself.
        guard = HostGuard(None, resolve, TrustedHosts(["10.9.0.0/16"]))
        guard.vet_addresses("any.example", 443, ["10.9.3.3"])
        with pytest.raises(UnsafeSourceError):
            guard.vet_addresses("any.example", 443, ["10.9.3.3", "10.8.0.1"])


async def test_a_plain_url_follows_a_redirect_to_another_public_host() -> None:
    async def resolve_public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"] if host != "internal.example" else ["192.168.1.5"]

    with respx.mock(using="httpx") as mock:
        mock.get("https://files.example/latest").mock(
            side_effect=replay(
                httpx.Response(302, headers={"location": "https://cdn.example/v2/report.pdf"})
            )
        )
        mock.get("https://cdn.example/v2/report.pdf").mock(
            side_effect=replay(
                httpx.Response(200, headers={"content-length": "5"}, content=b"hello")
            )
        )
        mock.get("https://files.example/sneaky").mock(
            side_effect=replay(
                httpx.Response(302, headers={"location": "https://internal.example/admin"})
            )
        )
        mock.get("https://files.example/downgrade").mock(
            side_effect=replay(
                httpx.Response(302, headers={"location": "http://cdn.example/report.pdf"})
            )
        )
        async with AsyncS3Client(make_settings(), resolver=resolve_public) as s3:
            assert await s3.read("https://files.example/latest") == b"hello"
            for url in ("https://files.example/sneaky", "https://files.example/downgrade"):
                with pytest.raises(UnsafeSourceError):
                    await s3.read(url)


async def test_public_https_download_works() -> None:
    async def resolve_public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    with respx.mock(using="httpx") as mock:
        mock.get("https://files.example/report.pdf").mock(
            side_effect=replay(
                httpx.Response(200, headers={"content-length": "5"}, content=b"hello")
            )
        )
        async with AsyncS3Client(make_settings(), resolver=resolve_public) as s3:
            assert await s3.read("https://files.example/report.pdf") == b"hello"


LIST_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>docs</Name><Prefix>p/</Prefix><EncodingType>url</EncodingType>
<IsTruncated>{truncated}</IsTruncated>{token}
{contents}
</ListBucketResult>"""


def _page(keys: list[str], token: str | None) -> httpx.Response:
    contents = "".join(
        f"<Contents><Key>{k}</Key><Size>{i}</Size><ETag>&quot;e{i}&quot;</ETag>"
        f"<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
        for i, k in enumerate(keys)
    )
    body = LIST_PAGE.format(
        truncated="true" if token else "false",
        token=f"<NextContinuationToken>{token}</NextContinuationToken>" if token else "",
        contents=contents,
    )
    return httpx.Response(200, content=body.encode())


async def test_list_pages_filters_and_stops() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(url__startswith=f"{HOST}/").mock(
            side_effect=[
                _page(["p/a.pdf", "p/b.txt", "p/c%20d.pdf"], "tok+1/="),
                _page(["p/e.pdf", "p/f.pdf"], None),
            ]
        )
        async with AsyncS3Client(make_settings()) as s3:
            keys = [o.key async for o in s3.list("s3://docs/p/", include=["*.pdf"])]
        assert keys == ["p/a.pdf", "p/c d.pdf", "p/e.pdf", "p/f.pdf"]
        second = route.calls[1].request.url
        assert second.params["continuation-token"] == "tok+1/="
        assert second.params["prefix"] == "p/"

    with respx.mock(using="httpx") as mock:
        mock.get(url__startswith=f"{HOST}/").mock(
            side_effect=[_page(["p/a.pdf", "p/b.txt", "p/c.pdf"], "t"), _page(["p/e.pdf"], None)]
        )
        async with AsyncS3Client(make_settings()) as s3:
            infos = [o async for o in s3.list("s3://docs/p/", exclude=["*.txt"], max_count=2)]
        assert [o.key for o in infos] == ["p/a.pdf", "p/c.pdf"]
        assert infos[0].etag == '"e0"' and infos[1].size == 2
        assert infos[0].last_modified is not None


@pytest.mark.parametrize(
    ("prefix", "globs", "expected"),
    [
        # Relative to the prefix's folder, as `aws s3 cp --recursive` filters are.
        ("s3://docs/p/", {"include": ["sub/*"]}, ["p/sub/b.md", "p/sub/c.pdf"]),
        ("s3://docs/p/", {"exclude": ["sub/*"]}, ["p/a.md"]),
        ("s3://docs/p/s", {"include": ["sub/*.pdf"]}, ["p/sub/c.pdf"]),
        ("s3://docs/p/", {"include": ["a.md"]}, ["p/a.md"]),
        # The whole key still matches.
        ("s3://docs/p/", {"include": ["p/sub/*.md"]}, ["p/sub/b.md"]),
    ],
)
async def test_list_globs_match_keys_under_the_listed_folder(
    prefix: str, globs: dict[str, list[str]], expected: list[str]
) -> None:
    keys = ["p/a.md", "p/sub/b.md", "p/sub/c.pdf"]
    if prefix.endswith("/s"):
        keys = keys[1:]
    with respx.mock(using="httpx") as mock:
        mock.get(url__startswith=f"{HOST}/").mock(return_value=_page(keys, None))
        async with AsyncS3Client(make_settings()) as s3:
            assert [o.key async for o in s3.list(prefix, **globs)] == expected
    if prefix.endswith("/"):  # a prefix source (pruning's "would a listing take it") agrees
        listed = listed_by(prefix, **globs)
        assert [k for k in keys if listed(f"s3://docs/{k}")] == expected


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_engine_setting_picks_the_transport(engine: str) -> None:
    from rag_ingest.s3._aiohttp import AiohttpTransport

    async with AsyncS3Client(make_settings(transfer={"engine": engine})) as s3:
        transport = s3._http._transport
        assert isinstance(transport, AiohttpTransport) == (engine == "aiohttp")
        assert isinstance(transport, httpx.AsyncBaseTransport)


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused(engine: str) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # the check, then the connection

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    settings = make_settings(transfer={"engine": engine})
    async with AsyncS3Client(settings, resolver=rebinding) as s3:
        with pytest.raises(UnsafeSourceError, match="at connect time"):
            await s3.read("https://rebind.example/file.pdf")
    assert next(answers, None) is None  # both lookups happened: nothing was connected


async def test_the_configured_endpoint_may_resolve_to_loopback_at_connect_time() -> None:
    from rag_ingest.s3.safety import HostGuard

    guard = HostGuard("http://localhost:8333")
    guard.vet_addresses("localhost", 8333, ["127.0.0.1", "::1"])
    guard.vet_addresses("bucket.s3.us-east-1.amazonaws.com", 443, ["127.0.0.1"])  # by name
    with pytest.raises(UnsafeSourceError):
        guard.vet_addresses("localhost", 9000, ["127.0.0.1"])  # not the endpoint's port
    with pytest.raises(UnsafeSourceError):
        guard.vet_addresses("files.example", 443, ["93.184.216.34", "10.0.0.8"])
    with pytest.raises(UnsafeSourceError):
        guard.vet_addresses("files.example", 443, [])


MULTIPART_ETAG = '"' + "a" * 32 + '-2"'


@pytest.mark.parametrize(
    "part_answer",
    [
        httpx.Response(200, headers={"content-length": "5", "etag": MULTIPART_ETAG}),  # ignored
        httpx.Response(501, content=b"<Error><Code>NotImplemented</Code></Error>"),
    ],
)
async def test_multipart_check_is_skipped_where_part_sizes_are_unknown(
    part_answer: httpx.Response,
) -> None:
    # A server that ignores or refuses ?partNumber still delivers the object: unverified
    # (size checked), never failed for want of part sizes.
    with respx.mock(using="httpx") as mock:
        mock.get(f"{HOST}/obj").mock(side_effect=replay(ok(etag=MULTIPART_ETAG)))
        head = mock.head(f"{HOST}/obj", params={"partNumber": "1"}).mock(
            side_effect=replay(part_answer)
        )
        async with AsyncS3Client(make_settings()) as s3:
            result = await s3.download_to_temp("s3://docs/obj")
        assert head.called
    assert result.path.read_bytes() == b"hello" and result.checksum is None
    result.path.unlink()


async def test_expiring_credentials_are_refreshed_off_the_event_loop() -> None:
    # botocore refreshes role credentials inside signing (an STS or metadata call); here
    # that call must run in a thread, not on the loop that carries every transfer.
    import datetime
    import threading

    from botocore.credentials import RefreshableCredentials

    from rag_ingest._redact import redact
    from rag_ingest.s3.auth import _unsigned_payload_auth

    calls: list[str] = []

    def refresh() -> dict[str, str]:
        calls.append(threading.current_thread().name)
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        return {
            "access_key": "AKIDREFRESHED",
            "secret_key": "refreshed-secret-value-1234",
            "token": "refreshed-session-token-5678",
            "expiry_time": later.isoformat(),
        }

    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    creds = RefreshableCredentials.create_from_metadata(
        {
            "access_key": "AKIDOLD",
            "secret_key": "old-secret-value-1234",
            "token": "old-session-token-5678",
            "expiry_time": soon.isoformat(),
        },
        refresh,
        "test",
    )
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(ok()))
        async with AsyncS3Client(make_settings()) as s3:
            await s3._signer.resolve()
            s3._signer._credentials = creds
            s3._signer._auth_cls = _unsigned_payload_auth()
            assert await s3.read("s3://docs/a.txt") == b"hello"
            assert await s3.read("s3://docs/a.txt") == b"hello"
    assert len(calls) == 1 and calls[0] != threading.current_thread().name
    sent = route.calls.last.request.headers
    assert "AKIDREFRESHED" in sent["authorization"]
    assert sent["x-amz-security-token"] == "refreshed-session-token-5678"
    assert "refreshed-secret-value-1234" not in redact("key refreshed-secret-value-1234")
