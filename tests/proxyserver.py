"""A forward HTTP proxy on loopback for tests: absolute-form requests (an http target)
and CONNECT tunnels (an https target), with names only it can resolve, an optional
password, and a record of what it was asked."""

from __future__ import annotations

import base64
import http.client
import http.server
import select
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

_HOP = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


class ForwardProxy:
    """``with ForwardProxy(hosts={"s3.proxied.test": "127.0.0.1"}) as proxy:``; point a
    client at ``proxy.url``. ``seen`` holds (method, target, Proxy-Authorization)."""

    def __init__(self, hosts: dict[str, str], user: str | None = None, password: str = "") -> None:
        self.hosts = hosts
        self.seen: list[tuple[str, str, str | None]] = []
        wanted = None
        if user is not None:
            wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _allowed(self) -> bool:
                given = self.headers.get("Proxy-Authorization")
                proxy.seen.append((self.command, self.path, given))
                if wanted is not None and given != wanted:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                return True

            def _where(self, host: str) -> str:
                return proxy.hosts.get(host, host)

            def do_CONNECT(self) -> None:
                if not self._allowed():
                    return
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((self._where(host), int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                sockets = [self.connection, upstream]
                try:
                    while True:
                        ready, _, _ = select.select(sockets, [], [], 10)
                        if not ready:
                            return
                        for sock in ready:
                            data = sock.recv(65536)
                            if not data:
                                return
                            (upstream if sock is self.connection else self.connection).sendall(data)
                finally:
                    upstream.close()
                    self.close_connection = True

            def _forward(self) -> None:
                if not self._allowed():
                    return
                target = urlsplit(self.path)
                if target.scheme != "http" or not target.hostname:
                    self.send_error(400, "absolute http URL expected")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream = http.client.HTTPConnection(
                    self._where(target.hostname), target.port or 80, timeout=30
                )
                try:
                    path = target.path + (f"?{target.query}" if target.query else "")
                    upstream.request(self.command, path or "/", body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in _HOP | {"transfer-encoding", "content-length"}:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(content)
                finally:
                    upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
