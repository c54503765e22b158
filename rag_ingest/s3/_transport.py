"""An httpx transport tuned for bulk reads.

httpcore reads the socket 64 KiB at a time; measured here that halves
throughput on loopback (s3-transfer.md: 470 vs 1006 MB/s). Instead of patching
httpcore globally we wrap its network backend for our own pool only, so every
``read`` asks the socket for up to ``read_size`` bytes. Given a ``vet``, the
backend also resolves each host itself, lets ``vet`` refuse the addresses, and
connects to exactly those: a DNS answer that changed since the request's host
check (rebinding) is refused.
"""

from __future__ import annotations

import socket
import ssl
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable

from rag_ingest.s3.proxy import Proxy, ProxyRoutes
from rag_ingest.s3.safety import Resolver, Vet, system_resolver

__all__ = ["make_transport"]


class _LargeReadStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._read_size), timeout=timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout=timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _LargeReadStream(inner, self._read_size)

    def get_extra_info(self, info: str) -> typing.Any:
        # httpcore asks "is_readable" before every request on a pooled connection; anyio
        # answers by building all its typed attributes (measured ~10% of a small GET).
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        if info == "socket" and self._socket is not None:
            return self._socket
        return self._inner.get_extra_info(info)


class LargeReadBackend(httpcore.AsyncNetworkBackend):
    """Network backend whose streams read ``read_size`` bytes per call."""

    def __init__(
        self,
        read_size: int,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        vet: Vet | None = None,
        lookup: Resolver | None = None,
    ) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self.read_size = read_size
        self._vet = vet
        self._lookup = lookup or system_resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._vet is None:
            stream = await self._inner.connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        else:
            stream = await self._connect_vetted(
                self._vet, host, port, timeout, local_address, socket_options
            )
        return _LargeReadStream(stream, self.read_size)

    async def _connect_vetted(
        self,
        vet: Vet,
        host: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        # TLS still names the host: httpcore passes it to start_tls as server_hostname.
        try:
            addresses = list(dict.fromkeys(await self._lookup(host, port)))
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        vet(host, port, addresses)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _LargeReadStream(stream, self.read_size)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_transport(
    context: ssl.SSLContext,
    max_connections: int,
    read_size: int,
    vet: Vet | None,
    lookup: Resolver | None,
    proxy: Proxy | None = None,
) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(
        verify=context,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        retries=0,
    )
    # httpx builds its pool without a network_backend argument; rebuild it with ours,
    # with the same TLS context and limits.
    options: dict[str, typing.Any] = {
        "ssl_context": context,
        "max_connections": max_connections,
        "max_keepalive_connections": max_connections,
        "keepalive_expiry": 5.0,
        "http1": True,
        "http2": False,
        "retries": 0,
        "network_backend": LargeReadBackend(read_size, vet=vet, lookup=lookup),
    }
    if proxy is None:
        transport._pool = httpcore.AsyncConnectionPool(**options)
    else:
        headers: dict[bytes | str, bytes | str] = {}
        if proxy.authorization is not None:
            headers["Proxy-Authorization"] = proxy.authorization
        transport._pool = httpcore.AsyncHTTPProxy(
            proxy_url=proxy.url, proxy_headers=headers, **options
        )
    return transport


class _Routed(httpx.AsyncBaseTransport):
    """Each request to the pool of the proxy it goes through, or to the direct one."""

    def __init__(
        self, routes: ProxyRoutes, make: typing.Callable[[Proxy | None], httpx.AsyncHTTPTransport]
    ) -> None:
        self._routes = routes
        self._pools = {proxy: make(proxy) for proxy in [None, *routes.proxies]}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pools[self._routes.for_url(str(request.url))]
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


def make_transport(
    *,
    max_connections: int,
    read_size: int,
    verify: bool | ssl.SSLContext = True,
    vet: Vet | None = None,
    lookup: Resolver | None = None,
    proxies: ProxyRoutes | None = None,
) -> httpx.AsyncBaseTransport:
    """An ``AsyncHTTPTransport`` whose connection pool uses :class:`LargeReadBackend`
    (one pool a proxy in ``proxies``, and one for direct connections)."""

    # One TLS context for every pool: each would load the CA bundle again.
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)

    def make(proxy: Proxy | None = None) -> httpx.AsyncHTTPTransport:
        return _pool_transport(context, max_connections, read_size, vet, lookup, proxy)

    if proxies is None or not proxies.proxies:
        return make()
    return _Routed(proxies, make)
