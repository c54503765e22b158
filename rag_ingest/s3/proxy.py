"""Which HTTP proxy, if any, a request goes through.

As boto3 does: a proxy given in the settings, else the environment's (``HTTPS_PROXY``
for https, ``HTTP_PROXY`` for http, ``ALL_PROXY`` for either; lower case first), and
``NO_PROXY``'s hosts reached directly. Loopback is always reached directly: a proxy
cannot reach this machine's loopback, and a local S3 server (MinIO, SeaweedFS) must not
break because a proxy is set for the internet. Only ``http://`` proxies are taken (an
https target goes through a CONNECT tunnel, TLS end to end). A proxy's user and password
become a ``Proxy-Authorization`` header and are never shown.

Through a proxy the proxy resolves and connects to the target. The host guard still
checks the target before a request as it would without one (a web host this machine
cannot resolve is refused unless it is a trusted host; AWS names and the endpoint need
no lookup), and at connect time vets the proxy's addresses, which it lets through.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from rag_ingest._redact import register_secret
from rag_ingest.errors import ConfigurationError

__all__ = ["Proxy", "ProxyRoutes", "is_loopback"]


@dataclass(frozen=True)
class Proxy:
    """One proxy: its URL without credentials, and the header that carries them."""

    url: str
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, source: str) -> Proxy:
        """``http://[user:password@]host[:port]`` (no scheme: http); ``source`` names
        where it came from, for the error."""
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        try:
            port = parts.port or 80
        except ValueError:
            port = -1
        if parts.scheme.lower() != "http" or not parts.hostname or port < 0:
            shown = f"{parts.scheme}://{parts.hostname or ''}"
            raise ConfigurationError(
                f"{source}: only an http:// proxy (http://host:port) is supported, not {shown}..."
            )
        authorization = None
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            if password:
                register_secret(password)
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            register_secret(token)
            authorization = f"Basic {token}"
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        return cls(f"http://{netloc}:{port}", host, port, authorization)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1): never proxied."""
    host = host.lower().rstrip(".").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProxyRoutes:
    """The proxy each URL goes through. The environment is read once, when made."""

    def __init__(self, proxy: str | None = None, *, from_env: bool = True) -> None:
        environment = urllib.request.getproxies_environment()
        self._no_proxy = environment.get("no", "")
        self._by_scheme: dict[str, Proxy] = {}
        if proxy is not None:
            chosen = Proxy.parse(proxy, "s3.proxy")
            self._by_scheme = {"http": chosen, "https": chosen}
        elif from_env:
            for scheme in ("http", "https"):
                text = environment.get(scheme) or environment.get("all")
                if text:
                    name = f"{scheme.upper()}_PROXY" if environment.get(scheme) else "ALL_PROXY"
                    self._by_scheme[scheme] = Proxy.parse(
                        text, f"{name} (s3.proxy_from_env = false ignores it)"
                    )

    @property
    def proxies(self) -> list[Proxy]:
        """Every proxy a request may go through."""
        return list(dict.fromkeys(self._by_scheme.values()))

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for ``url``, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self._by_scheme.get(parts.scheme.lower())
        host = parts.hostname or ""
        if proxy is None or is_loopback(host):
            return None
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        if _bypassed(host.lower().rstrip("."), port, self._no_proxy):
            return None
        return proxy


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY names ``host``: ``*``, a name and its subdomains (a leading dot
    or not), with ``:port`` only that port, an IP, or an IP network (10.0.0.0/8)."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry.strip("[]"), strict=False):
                return True
            continue
        except ValueError:
            pass
        name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if wanted and (not wanted.isdigit() or int(wanted) != port):
            continue
        name = name.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False
