"""A machine whose clock is off: S3 refuses requests dated 15 minutes from its own
clock, and botocore signs by the local one whatever S3 answers. The client dates
requests by S3's clock (a refusal's Date header) once a refusal shows them off, and
judges presigned URLs by it once a server accepted one this machine's clock called
expired."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from rag_ingest.errors import S3AuthError, S3PresignedExpiredError
from rag_ingest.s3 import AsyncS3Client
from tests.conftest import make_settings
from tests.unit.test_client_http import HOST, ok, presigned_for, replay, s3_error

HOUR = timedelta(hours=1)


def server_date(off: timedelta) -> str:
    """A Date header of a server whose clock is ``off`` from this machine's."""
    return format_datetime(datetime.now(UTC) + off, usegmt=True)


def refused(off: timedelta, code: str | None = "RequestTimeTooSkewed") -> httpx.Response:
    """S3's refusal of a request dated too far from its clock (a HEAD's has no body)."""
    if code is None:
        return httpx.Response(403, headers={"date": server_date(off)})
    return s3_error(403, code, "The difference is too large.", date=server_date(off))


def dated(request: httpx.Request) -> datetime:
    """When a signed request says it was sent (the X-Amz-Date it is signed with)."""
    stamp = request.headers["x-amz-date"]
    assert f"/{stamp[:8]}/us-east-1/s3/" in request.headers["authorization"]  # its scope
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def near(moment: datetime, expected: datetime) -> bool:
    return abs(moment - expected) < timedelta(seconds=30)


async def requests_to_refuse(
    *answers: httpx.Response, match: str | None = None, **s3: object
) -> int:
    """How many requests one read sends before it fails as :class:`S3AuthError`."""
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(*answers))
        async with AsyncS3Client(make_settings(s3=s3)) as client:
            with pytest.raises(S3AuthError, match=match):
                await client.read("s3://docs/a.txt")
        return route.call_count


@pytest.mark.parametrize("off", [HOUR, -HOUR, timedelta(minutes=20)])
async def test_a_request_refused_for_its_date_is_sent_again_dated_by_s3_s_clock(
    off: timedelta, caplog: pytest.LogCaptureFixture
) -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(refused(off), ok()))
        async with AsyncS3Client(make_settings()) as s3:
            with caplog.at_level(logging.WARNING, logger="rag_ingest.s3"):
                assert await s3.read("s3://docs/a.txt") == b"hello"
            first, second = (call.request for call in route.calls)
            assert near(dated(first), datetime.now(UTC))
            assert near(dated(second), datetime.now(UTC) + off)
            # Later requests are dated by S3's clock from the start: one request each.
            route.side_effect = replay(ok())
            assert await s3.read("s3://docs/a.txt") == b"hello"
            assert route.call_count == 3
            assert near(dated(route.calls.last.request), datetime.now(UTC) + off)
    [warning] = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    span = "1 h 0 min" if abs(off) == HOUR else "20 min"
    side = "behind" if off > timedelta(0) else "ahead of"
    assert f"this machine's clock is {span} {side} S3's" in warning


async def test_a_head_s_bodyless_refusal_is_told_by_its_date_header() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.head(f"{HOST}/a.txt").mock(
            side_effect=replay(
                refused(HOUR, code=None),
                httpx.Response(200, headers={"content-length": "5", "etag": '"e"'}),
            )
        )
        async with AsyncS3Client(make_settings()) as s3:
            info = await s3.head("s3://docs/a.txt")
        assert info.size == 5
        assert route.call_count == 2
        assert near(dated(route.calls.last.request), datetime.now(UTC) + HOUR)


@pytest.mark.parametrize("code", ["AccessDenied", "SignatureDoesNotMatch", None])
async def test_a_refusal_from_a_server_that_agrees_with_our_clock_is_not_sent_again(
    code: str | None,
) -> None:
    assert await requests_to_refuse(refused(timedelta(seconds=40), code=code), ok()) == 1


async def test_a_refusal_that_stays_once_the_clock_is_set_right_is_an_auth_error() -> None:
    denied = refused(HOUR, "AccessDenied")
    assert await requests_to_refuse(denied, denied, match="AccessDenied") == 2


async def test_requests_refused_together_are_all_sent_again_and_the_clock_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()
    answered = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        if abs(dated(request) - datetime.now(UTC)) < timedelta(minutes=1):
            answered += 1
            if answered == 4:
                gate.set()
            await gate.wait()  # all four are refused after all four were sent
            return replay(refused(HOUR))(request)
        return replay(ok())(request)

    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=rf"{HOST}/.*").mock(side_effect=answer)
        async with AsyncS3Client(make_settings()) as s3:
            with caplog.at_level(logging.WARNING, logger="rag_ingest.s3"):
                bodies = await asyncio.gather(*(s3.read(f"s3://docs/{i}.txt") for i in range(4)))
        assert bodies == [b"hello"] * 4
        assert route.call_count == 8
    assert len([r for r in caplog.records if "clock" in r.getMessage()]) == 1


async def test_a_clock_set_right_during_a_run_is_followed_back() -> None:
    with respx.mock(using="httpx") as mock:
        route = mock.get(f"{HOST}/a.txt").mock(side_effect=replay(refused(HOUR), ok()))
        async with AsyncS3Client(make_settings()) as s3:
            await s3.read("s3://docs/a.txt")
            # NTP sets this machine's clock right: S3's now agrees with it, and the
            # hour learnt before dates requests an hour ahead.
            route.side_effect = replay(refused(timedelta(0)), ok())
            await s3.read("s3://docs/a.txt")
            last_two = [call.request for call in route.calls][-2:]
        assert near(dated(last_two[0]), datetime.now(UTC) + HOUR)
        assert near(dated(last_two[1]), datetime.now(UTC))


async def test_anonymous_requests_carry_no_date_to_set_right() -> None:
    assert await requests_to_refuse(refused(HOUR), ok(), anonymous=True) == 1


async def test_a_refusal_for_its_date_with_no_date_header_names_the_clock() -> None:
    no_date = s3_error(403, "RequestTimeTooSkewed", "Too large.")
    assert await requests_to_refuse(no_date, ok(), match="clock is off from S3's") == 1


def accepted(off: timedelta) -> httpx.Response:
    answer = ok()
    answer.headers["date"] = server_date(off)
    return answer


async def test_a_presigned_url_a_clock_ahead_calls_expired_is_sent_and_the_clock_learned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # This machine's clock is an hour ahead: URLs signed a minute ago for 15 minutes by
    # a server whose clock is right look expired here for 45 minutes.
    s3_now = datetime.now(UTC) - HOUR
    given = presigned_for("a.txt", "a" * 64, s3_now - timedelta(minutes=1), 900)
    asked: list[str] = []

    def renew(url: str) -> str:
        asked.append(url)
        return presigned_for("a.txt", "b" * 64, s3_now, 900)

    answer = replay(accepted(-HOUR))

    async def on_the_wire(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # a while, as over a network: other reads go on meanwhile
        return answer(request)

    with respx.mock(using="httpx") as mock:
        route = mock.get(url__regex=r".*").mock(side_effect=on_the_wire)
        async with AsyncS3Client(make_settings()) as s3:
            with caplog.at_level(logging.WARNING, logger="rag_ingest.s3"):
                assert await s3.read(given) == b"hello"
        assert route.call_count == 1
        [warning] = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
        assert "this machine's clock is 1 h 0 min ahead of S3's" in warning
        assert "requests are dated and presigned URLs judged by S3's clock" in warning

        # With renew_url: renewed once, as the clock says, and the renewal sent though
        # it too looks expired here; its answer sets the clock right, so a URL the
        # server still takes is not renewed again.
        async with AsyncS3Client(make_settings(), renew_url=renew) as s3:
            reads = await asyncio.gather(*(s3.read(given) for _ in range(3)))
            assert reads == [b"hello"] * 3
            later = presigned_for("a.txt", "c" * 64, s3_now + timedelta(minutes=2), 900)
            assert await s3.read(later) == b"hello"
        assert asked == [given]  # once for the three reads
        signatures = [call.request.url.params["X-Amz-Signature"] for call in route.calls[1:]]
        assert signatures == ["b" * 64] * 3 + ["c" * 64]


async def test_an_anonymous_client_s_clock_warning_speaks_of_presigned_urls_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Anonymous mode signs no request: the clock it learns judges presigned URLs alone.
    s3_now = datetime.now(UTC) - HOUR
    given = presigned_for("a.txt", "a" * 64, s3_now - timedelta(minutes=1), 900)
    with respx.mock(using="httpx") as mock:
        mock.get(url__regex=r".*").mock(side_effect=replay(accepted(-HOUR)))
        async with AsyncS3Client(make_settings(s3={"anonymous": True})) as s3:
            with caplog.at_level(logging.WARNING, logger="rag_ingest.s3"):
                assert await s3.read(given) == b"hello"
            assert near(s3._signer.now(), s3_now)
    [warning] = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert "1 h 0 min ahead of S3's (the Date of its answer): presigned URLs are judged" in (
        warning
    )
    assert "requests are dated" not in warning


async def test_a_url_the_server_also_calls_expired_stays_refused_and_teaches_nothing() -> None:
    stale = presigned_for("a.txt", "a" * 64, datetime.now(UTC) - 2 * HOUR, 900)
    with respx.mock(using="httpx") as mock:
        expired = s3_error(403, "AccessDenied", "Request has expired", date=server_date(-HOUR))
        route = mock.get(url__regex=r".*").mock(side_effect=replay(expired))
        async with AsyncS3Client(make_settings()) as s3:
            with pytest.raises(S3PresignedExpiredError):
                await s3.read(stale)
            assert abs(s3._signer.now() - datetime.now(UTC)) < timedelta(seconds=1)
        assert route.call_count == 1
