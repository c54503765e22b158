"""Which proxy a URL goes through (rag_ingest.s3.proxy), as boto3 and curl choose."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from rag_ingest._redact import redact
from rag_ingest.errors import ConfigurationError
from rag_ingest.s3.proxy import Proxy, ProxyRoutes
from rag_ingest.settings import Settings


def test_an_explicit_proxy_takes_every_scheme_but_loopback() -> None:
    routes = ProxyRoutes("proxy.corp:3128", from_env=False)
    (proxy,) = routes.proxies
    assert (proxy.url, proxy.host, proxy.port, proxy.authorization) == (
        "http://proxy.corp:3128",
        "proxy.corp",
        3128,
        None,
    )
    assert routes.for_url("https://bucket.s3.amazonaws.com/key") is proxy
    assert routes.for_url("http://minio.corp:9000/b/k") is proxy
    for local in (
        "http://127.0.0.1:8333/b",
        "http://localhost:9000/",
        "http://[::1]:80/",
        "http://a.localhost/",
    ):
        assert routes.for_url(local) is None


def test_the_environment_gives_a_proxy_per_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.corp:8443")
    monkeypatch.setenv("ALL_PROXY", "http://any.corp:8080")
    routes = ProxyRoutes()
    https, other = routes.for_url("https://x.example/"), routes.for_url("http://x.example/")
    assert https is not None and https.host == "secure.corp"
    assert other is not None and other.host == "any.corp"
    assert ProxyRoutes(from_env=False).for_url("https://x.example/") is None
    assert ProxyRoutes(from_env=False).proxies == []


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("*", "https://anything.example/", True),
        ("example.com", "https://example.com/", True),
        ("example.com", "https://s3.example.com/", True),
        (".example.com", "https://s3.example.com/", True),
        ("example.com", "https://notexample.com/", False),
        ("minio.corp:9000", "http://minio.corp:9000/b", True),
        ("minio.corp:9000", "http://minio.corp:9001/b", False),
        ("minio.corp:443", "https://minio.corp/b", True),
        ("minio.corp:80", "https://minio.corp/b", False),
        ("10.0.0.0/8", "http://10.1.2.3:9000/b", True),
        ("10.0.0.0/8", "http://11.1.2.3:9000/b", False),
        ("192.168.1.5", "http://192.168.1.5/", True),
        (" a.corp , b.corp ", "https://x.b.corp/", True),
    ],
)
def test_no_proxy_names_hosts_reached_directly(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, direct: bool
) -> None:
    monkeypatch.setenv("NO_PROXY", no_proxy)
    routes = ProxyRoutes("http://proxy.corp:3128")
    assert (routes.for_url(url) is None) is direct


def test_a_proxys_password_becomes_a_header_and_is_never_shown() -> None:
    proxy = Proxy.parse("http://me:p%40ssw0rd@proxy.corp:3128", "test")
    assert proxy.url == "http://proxy.corp:3128"
    token = base64.b64encode(b"me:p@ssw0rd").decode()
    assert proxy.authorization == f"Basic {token}"
    assert "p@ssw0rd" not in repr(proxy) and token not in repr(proxy)
    assert redact(f"proxy said p@ssw0rd and {token}") == "proxy said *** and ***"


@pytest.mark.parametrize(
    "url", ["socks5://me:hunter2@proxy.corp:1080", "https://proxy.corp", "http://"]
)
def test_only_http_proxies_are_taken(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="only an http:// proxy") as caught:
        Settings(s3={"proxy": url})
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv("HTTPS_PROXY", url)
    with pytest.raises(ConfigurationError, match=r"HTTPS_PROXY .*proxy_from_env"):
        ProxyRoutes()
