"""Which hosts we agree to talk to.

Loopback, link-local (169.254.169.254 and friends), private, reserved and
metadata addresses are refused unless they are the configured endpoint or a
trusted host (``s3.trusted_hosts``: an intranet document server), so a URL
handed in by a user cannot reach the instance metadata service or the private
network. Plain http is refused on the same terms. AWS S3 host names are trusted
by name. Both transfer engines vet the addresses they connect to as well
(:meth:`HostGuard.vet_addresses`), so a name that resolves differently between
the check and the connection (DNS rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from rag_ingest._redact import redact
from rag_ingest.errors import UnsafeSourceError

__all__ = ["HostGuard", "Resolver", "TrustedHosts"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
Vet = Callable[[str, int, list[str]], None]  # host, port, addresses -> raise to refuse
_METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives ``host`` (in its order)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _forbidden(address: str) -> bool:
    ip = _ip(address)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrustedHosts:
    """Hosts a deployment vouches for: names (``wiki.corp``, ``wiki.corp:8080``) and
    networks (``10.0.0.0/8``, a bare IP). Their URLs may use plain http and reach
    private addresses; they are fetched as plain URLs, never signed."""

    def __init__(self, entries: Sequence[str] = ()) -> None:
        self._names: dict[str, int | None] = {}
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            text = entry.strip().lower().rstrip(".")
            try:
                self._networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            parts = urlsplit(f"//{text}")
            try:
                port = parts.port
            except ValueError as exc:
                raise ValueError(f"bad trusted host {entry!r}: {exc}") from None
            if not parts.hostname or parts.path or parts.username:
                raise ValueError(
                    f"bad trusted host {entry!r}: give a host name, host:port, or an IP network"
                )
            self._names[parts.hostname] = port

    def named(self, host: str, port: int) -> bool:
        """True if ``host`` (a name or an IP literal) is trusted on ``port``."""
        host = host.lower().rstrip(".").strip("[]")
        if host in self._names:
            wanted = self._names[host]
            return wanted is None or wanted == port
        try:
            return self.holds(host)
        except ValueError:
            return False

    def holds(self, address: str) -> bool:
        """True if the IP ``address`` is in a trusted network."""
        ip = _ip(address)
        return any(ip.version == net.version and ip in net for net in self._networks)


class HostGuard:
    """Checks a URL before any byte is sent to it."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        resolver: Resolver | None = None,
        trusted: TrustedHosts | None = None,
        proxies: Sequence[tuple[str, int]] = (),
    ) -> None:
        self._endpoint = urlsplit(endpoint_url) if endpoint_url else None
        self._resolver = resolver or system_resolver
        self._trusted = trusted or TrustedHosts()
        # The deployment's proxies: connected to wherever they are (a proxy is usually
        # on the private network), never fetched from as sources.
        self._proxies = {(host.lower().rstrip("."), port) for host, port in proxies}
        self._verdicts: dict[tuple[str, int], bool] = {}

    def _refused(self, address: str) -> bool:
        return _forbidden(address) and not self._trusted.holds(address)

    def vet_addresses(self, host: str, port: int, addresses: Sequence[str]) -> None:
        """Raise :class:`UnsafeSourceError` if connecting to ``host`` reaches a refused address.

        Called with the addresses a connection is about to use (the engine's own DNS
        answer), so an answer that changed since :meth:`check` (DNS rebinding) is caught.
        """
        host = host.lower().rstrip(".")
        endpoint = self._endpoint
        if endpoint is not None and host == (endpoint.hostname or "").lower().rstrip("."):
            default = 443 if endpoint.scheme == "https" else 80
            if port == (endpoint.port or default):
                return
        if host.endswith(_AWS_SUFFIXES) or self._trusted.named(host, port):
            return
        if (host, port) in self._proxies:
            return
        if not addresses or any(self._refused(a) for a in addresses):
            raise UnsafeSourceError(
                f"refusing {host}: at connect time it resolved to a loopback, private, "
                "link-local or reserved address"
            )

    def is_endpoint(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            self._endpoint is not None
            and parts.scheme == self._endpoint.scheme
            and parts.netloc.lower() == self._endpoint.netloc.lower()
        )

    async def check(self, url: str) -> None:
        """Raise :class:`UnsafeSourceError` unless ``url`` may be fetched."""
        if self.is_endpoint(url):
            return
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme in ("http", "https") and self._trusted.named(host, port):
            return
        if parts.scheme != "https":
            raise UnsafeSourceError(
                f"only https is allowed here: {redact(url)} (add the host to "
                "s3.trusted_hosts to allow plain http)"
            )
        if host in _METADATA_NAMES:
            raise UnsafeSourceError(f"refusing metadata host {host}")
        try:
            ipaddress.ip_address(host)
            literal = True
        except ValueError:
            literal = False
        if not literal and host.endswith(_AWS_SUFFIXES):
            return
        verdict = self._verdicts.get((host, port))
        if verdict is None:
            if literal:
                addresses = [host]
            else:
                try:
                    addresses = await self._resolver(host, port)
                except OSError as exc:
                    raise UnsafeSourceError(f"cannot resolve {host}: {exc}") from exc
            verdict = bool(addresses) and not any(self._refused(a) for a in addresses)
            self._verdicts[(host, port)] = verdict
        if not verdict:
            raise UnsafeSourceError(
                f"refusing {host}: it resolves to a loopback, private, link-local or "
                "reserved address (add it to s3.trusted_hosts, or make it the endpoint, "
                "to allow it)"
            )
