from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rag_ingest.errors import ConfigurationError, UnsafeSourceError
from rag_ingest.s3.uri import DirectURL, S3Location, parse_address, quote_key, quote_query


@pytest.mark.parametrize(
    ("address", "bucket", "key", "region"),
    [
        ("s3://docs/a/b.pdf", "docs", "a/b.pdf", None),
        ("s3://docs/", "docs", "", None),
        ("s3://docs/a b+c=(d)/é.txt", "docs", "a b+c=(d)/é.txt", None),
        ("https://docs.s3.amazonaws.com/a/b.pdf", "docs", "a/b.pdf", None),
        ("https://docs.s3.eu-west-1.amazonaws.com/a/b.pdf", "docs", "a/b.pdf", "eu-west-1"),
        ("https://docs.s3-eu-west-1.amazonaws.com/a/b.pdf", "docs", "a/b.pdf", "eu-west-1"),
        (
            "https://my.dotted.bucket.s3.us-east-2.amazonaws.com/k",
            "my.dotted.bucket",
            "k",
            "us-east-2",
        ),
        ("https://s3.ap-south-1.amazonaws.com/docs/a/b.pdf", "docs", "a/b.pdf", "ap-south-1"),
        ("https://s3.amazonaws.com/docs/x%20y%2Bz.txt", "docs", "x y+z.txt", None),
        ("https://docs.s3.dualstack.us-west-2.amazonaws.com/k", "docs", "k", "us-west-2"),
    ],
)
def test_s3_forms(address: str, bucket: str, key: str, region: str | None) -> None:
    target = parse_address(address)
    assert target == S3Location(bucket=bucket, key=key, region=region)


def test_custom_endpoint_is_path_style_and_allows_http() -> None:
    target = parse_address(
        "http://127.0.0.1:8333/docs/a%20b.txt", endpoint_url="http://127.0.0.1:8333"
    )
    assert target == S3Location(bucket="docs", key="a b.txt")


def test_plain_http_elsewhere_is_refused() -> None:
    with pytest.raises(UnsafeSourceError):
        parse_address("http://example.com/docs/a.txt")
    with pytest.raises(UnsafeSourceError):
        parse_address("http://127.0.0.1:9999/docs/a", endpoint_url="http://127.0.0.1:8333")


def test_other_schemes_refused() -> None:
    for address in ("file:///etc/passwd", "ftp://x/y", "gopher://x"):
        with pytest.raises(UnsafeSourceError):
            parse_address(address)
    with pytest.raises(ConfigurationError):
        parse_address("s3:///key")


def test_presigned_is_direct_and_knows_its_expiry() -> None:
    signed_at = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    url = (
        "https://docs.s3.us-east-1.amazonaws.com/a.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20260101T120000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + "ab" * 32
    )
    target = parse_address(url)
    assert isinstance(target, DirectURL) and target.presigned
    assert target.url == url  # used as given, never rebuilt
    assert target.bucket == "docs" and target.key == "a.pdf"
    assert target.expires_at == signed_at + timedelta(seconds=600)
    assert target.expired(signed_at + timedelta(seconds=601))
    assert not target.expired(signed_at + timedelta(seconds=599))
    assert "ab" * 32 not in repr(target) and "ab" * 32 not in str(target)


def test_minio_presigned_under_custom_endpoint() -> None:
    url = "http://127.0.0.1:9000/docs/a.pdf?X-Amz-Date=20260101T120000Z&X-Amz-Expires=60&X-Amz-Signature=ff"
    target = parse_address(url, endpoint_url="http://127.0.0.1:9000")
    assert isinstance(target, DirectURL) and target.presigned and target.key == "a.pdf"


def test_plain_https_is_direct() -> None:
    target = parse_address("https://example.com/files/report.pdf")
    assert isinstance(target, DirectURL) and not target.presigned


def test_key_quoting_matches_sigv4() -> None:
    assert quote_key("a b+c=(d)/é~_-.txt") == "a%20b%2Bc%3D%28d%29/%C3%A9~_-.txt"
    assert quote_query({"prefix": "a b/", "list-type": "2"}) == "list-type=2&prefix=a%20b%2F"
