"""S3 and web downloads through an HTTP proxy, as boto3 takes one: from the settings or
the environment, NO_PROXY and loopback reached directly, its password never shown.

The endpoint is named ``s3.proxied.test``, a name only the proxy resolves: a request
that went around the proxy cannot connect at all."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.errors import RagIngestError, UnsafeSourceError
from rag_ingest.s3 import AsyncS3Client
from rag_ingest.settings import Settings
from rag_ingest.testing import SeaweedS3
from tests.proxyserver import ForwardProxy

pytestmark = pytest.mark.integration
PROXIED = "s3.proxied.test"
SITE = "site.proxied.test"
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
    return url.replace("http://", "http://me:pa%3Ass%23w0rd-proxy@")


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


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[int]:
    """An https server on loopback with a self-signed certificate for SITE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Page(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("engine", ["aiohttp", "httpcore"])
async def test_an_https_page_goes_through_a_connect_tunnel(
    seaweed: SeaweedS3, tls_site: int, engine: str
) -> None:
    with ForwardProxy({SITE: "127.0.0.1"}) as proxy:
        cfg = settings(seaweed, engine, proxy=proxy.url, trusted_hosts=[SITE], verify_tls=False)
        async with AsyncS3Client(cfg) as s3:
            assert await s3.read(f"https://{SITE}:{tls_site}/doc.txt") == BODY
    assert [(m, t) for m, t, _ in proxy.seen] == [("CONNECT", f"{SITE}:{tls_site}")]


async def test_a_web_host_this_machine_cannot_resolve_must_be_trusted(
    seaweed: SeaweedS3, tls_site: int
) -> None:
    with ForwardProxy({SITE: "127.0.0.1"}) as proxy:
        cfg = settings(seaweed, "aiohttp", proxy=proxy.url, verify_tls=False)
        async with AsyncS3Client(cfg) as s3:
            with pytest.raises(UnsafeSourceError, match=f"cannot resolve {SITE}"):
                await s3.read(f"https://{SITE}:{tls_site}/doc.txt")
    assert proxy.seen == []  # refused before any byte was sent
