"""S3 and web downloads through an HTTP proxy, as boto3 takes one: from the settings or
the environment, NO_PROXY and loopback reached directly, its password never shown; and
TLS verified against the CA bundle a proxy that inspects TLS needs.

The endpoint is named ``s3.proxied.test``, a name only the proxy resolves: a request
that went around the proxy cannot connect at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rag_ingest.errors import ConfigurationError, RagIngestError, S3Error, UnsafeSourceError
from rag_ingest.s3 import AsyncS3Client
from rag_ingest.s3.tls import tls_verification
from rag_ingest.settings import Settings
from rag_ingest.testing import SeaweedS3
from tests.integration.conftest import SITE, TlsSite
from tests.proxyserver import ForwardProxy

pytestmark = pytest.mark.integration
PROXIED = "s3.proxied.test"
BODY = b"through the proxy and back\n" * 100
PASSWORD = "pa:ss#w0rd-proxy"


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedS3) -> str:
    client = seaweed.client()
    client.create_bucket(Bucket="proxied")
    client.put_object(Bucket="proxied", Key="a/doc.txt", Body=BODY)
    return "proxied"


def settings(seaweed: SeaweedS3, engine: str, *, loopback: bool = False, **s3: Any) -> Settings:
    part = seaweed.settings_dict()
    if not loopback:
        part["endpoint_url"] = part["endpoint_url"].replace("127.0.0.1", PROXIED)
    return Settings(
        s3={**part, **s3},
        retry={"base_delay": 0.0, "max_attempts": 2, "deadline": 10.0},
        transfer={"engine": engine, "connect_timeout": 2.0, "read_timeout": 5.0},
        progress=False,
    )


def with_password(url: str) -> str:
    return url.replace("http://", f"http://me:{quote(PASSWORD, safe='')}@")


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_s3_through_a_proxy_that_wants_a_password(
    seaweed: SeaweedS3, bucket: str, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    with ForwardProxy({PROXIED: "127.0.0.1"}, user="me", password=PASSWORD) as proxy:
        cfg = settings(seaweed, engine, proxy=with_password(proxy.url))
        async with AsyncS3Client(cfg) as s3:
            assert await s3.read(f"s3://{bucket}/a/doc.txt") == BODY
            keys = [info.key async for info in s3.list(f"s3://{bucket}/a/")]
            assert keys == ["a/doc.txt"]
            shown = repr(s3) + repr(cfg) + str(cfg.model_dump()) + caplog.text
    assert {method for method, _, _ in proxy.seen} == {"GET"}
    assert all(target.startswith(f"http://{PROXIED}:") for _, target, _ in proxy.seen)
    assert {auth for _, _, auth in proxy.seen} == {"Basic bWU6cGE6c3MjdzByZC1wcm94eQ=="}
    assert PASSWORD not in shown and "bWU6cGE6c3MjdzByZC1wcm94eQ" not in shown


async def test_a_proxy_that_refuses_the_password_is_an_error_without_it(
    seaweed: SeaweedS3, bucket: str
) -> None:
    with ForwardProxy({PROXIED: "127.0.0.1"}, user="me", password="another") as proxy:
        cfg = settings(seaweed, "aiohttp", proxy=with_password(proxy.url))
        async with AsyncS3Client(cfg) as s3:
            with pytest.raises(RagIngestError, match="407") as caught:
                await s3.read(f"s3://{bucket}/a/doc.txt")
    assert PASSWORD not in str(caught.value)


async def test_the_environments_proxy_is_taken_unless_no_proxy_names_the_host(
    seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy({PROXIED: "127.0.0.1"}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with AsyncS3Client(settings(seaweed, "aiohttp")) as s3:
            assert await s3.read(f"s3://{bucket}/a/doc.txt") == BODY
        taken = len(proxy.seen)
        assert taken >= 1

        # Around the proxy, the name resolves nowhere: the request cannot go out.
        monkeypatch.setenv("NO_PROXY", "localhost,.proxied.test")
        async with AsyncS3Client(settings(seaweed, "httpcore")) as s3:
            with pytest.raises(RagIngestError):
                await s3.read(f"s3://{bucket}/a/doc.txt")
        monkeypatch.delenv("NO_PROXY")
        async with AsyncS3Client(settings(seaweed, "aiohttp", proxy_from_env=False)) as s3:
            with pytest.raises(RagIngestError):
                await s3.read(f"s3://{bucket}/a/doc.txt")
        assert len(proxy.seen) == taken


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_a_local_s3_server_is_reached_directly_whatever_the_proxy(
    seaweed: SeaweedS3, bucket: str, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")  # nothing listens there
    async with AsyncS3Client(settings(seaweed, engine, loopback=True)) as s3:
        assert await s3.read(f"s3://{bucket}/a/doc.txt") == BODY


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_an_https_page_goes_through_a_connect_tunnel(
    seaweed: SeaweedS3, tls_site: TlsSite, engine: str
) -> None:
    with ForwardProxy({SITE: "127.0.0.1"}) as proxy:
        cfg = settings(seaweed, engine, proxy=proxy.url, trusted_hosts=[SITE], verify_tls=False)
        async with AsyncS3Client(cfg) as s3:
            assert await s3.read(f"https://{SITE}:{tls_site.port}/doc.txt") == tls_site.body
    assert [(m, t) for m, t, _ in proxy.seen] == [("CONNECT", f"{SITE}:{tls_site.port}")]


async def test_a_web_host_this_machine_cannot_resolve_must_be_trusted(
    seaweed: SeaweedS3, tls_site: TlsSite
) -> None:
    with ForwardProxy({SITE: "127.0.0.1"}) as proxy:
        cfg = settings(seaweed, "aiohttp", proxy=proxy.url, verify_tls=False)
        async with AsyncS3Client(cfg) as s3:
            with pytest.raises(UnsafeSourceError, match=f"cannot resolve {SITE}"):
                await s3.read(f"https://{SITE}:{tls_site.port}/doc.txt")
    assert proxy.seen == []  # refused before any byte was sent


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_tls_is_verified_against_the_ca_bundle_given(
    seaweed: SeaweedS3,
    tls_site: TlsSite,
    engine: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"https://127.0.0.1:{tls_site.port}/doc.txt"
    trusted = {"trusted_hosts": ["127.0.0.1"]}
    async with AsyncS3Client(settings(seaweed, engine, **trusted)) as s3:
        with pytest.raises(S3Error, match="TLS certificate not trusted") as caught:
            await s3.read(url)  # certifi's roots do not know it
    assert not caught.value.retryable  # no retry makes it trusted
    cfg = settings(seaweed, engine, ca_bundle=tls_site.ca, **trusted)
    async with AsyncS3Client(cfg) as s3:
        assert await s3.read(url) == tls_site.body
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_site.ca))
    async with AsyncS3Client(settings(seaweed, engine, **trusted)) as s3:
        assert await s3.read(url) == tls_site.body
    monkeypatch.delenv("AWS_CA_BUNDLE")
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = us-east-1\n[profile corp]\nca_bundle = {tls_site.ca}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    async with AsyncS3Client(settings(seaweed, engine, **trusted)) as s3:
        with pytest.raises(S3Error, match="TLS certificate not trusted"):
            await s3.read(url)  # the default profile names no bundle
    async with AsyncS3Client(settings(seaweed, engine, profile="corp", **trusted)) as s3:
        assert await s3.read(url) == tls_site.body
    monkeypatch.setenv("AWS_PROFILE", "corp")
    async with AsyncS3Client(settings(seaweed, engine, **trusted)) as s3:
        assert await s3.read(url) == tls_site.body


def test_a_ca_bundle_that_cannot_be_read_is_a_configuration_error(
    seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"s3\.ca_bundle: cannot load"):
        AsyncS3Client(settings(seaweed, "aiohttp", ca_bundle=tmp_path / "missing.pem"))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="AWS_CA_BUNDLE: cannot load"):
        AsyncS3Client(settings(seaweed, "httpcore"))
    monkeypatch.delenv("AWS_CA_BUNDLE")
    config = tmp_path / "aws-config"
    config.write_text("[profile corp]\nca_bundle = ~/missing.pem\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    with pytest.raises(ConfigurationError, match="ca_bundle of AWS profile 'corp'") as caught:
        AsyncS3Client(settings(seaweed, "aiohttp", profile="corp"))
    assert str(Path("~/missing.pem").expanduser()) in str(caught.value)
    # a profile the file does not have holds no bundle: the signer names it if it matters
    assert tls_verification(settings(seaweed, "aiohttp", profile="nowhere").s3) is True


async def test_the_processor_ingests_through_the_environments_proxy(
    seaweed: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_ingest import DocumentProcessor
    from tests.conftest import IN_PROCESS_STORE

    part = seaweed.settings_dict()
    part["endpoint_url"] = part["endpoint_url"].replace("127.0.0.1", PROXIED)
    cfg = Settings.model_validate(
        {
            "s3": part,
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
        }
    )
    with ForwardProxy({PROXIED: "127.0.0.1"}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with DocumentProcessor(cfg) as p:
            report = await p.process_many(f"s3://{bucket}/a/", session_id="s")
            assert report.totals["ingested"] == 1, [r.message for r in report.results]
            hits = await p.query("through the proxy", session_id="s")
            assert hits and hits[0][0].metadata["key"] == "a/doc.txt"
    assert {method for method, _, _ in proxy.seen} == {"GET"}  # the listing and the object
