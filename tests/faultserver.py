"""A tiny raw-socket HTTP/1.1 server for byte-level faults (resets, stalls, drips, short bodies).

Each request is answered by a scenario function ``(request, n) -> Reply`` where
``n`` counts requests from 0; the server records every request it saw.
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    send_length: bool = True
    cut_after: int | None = None  # send this many body bytes, then `cut`
    cut: str = "reset"  # reset | close | stall
    stall_seconds: float = 5.0
    drip_seconds: float | None = None  # one byte per this many seconds
    chunk_size: int | None = None  # send the body with Transfer-Encoding: chunked


Scenario = Callable[[Request, int], Reply]
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def etag_of(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def ranged(data: bytes, request: Request, etag: str | None = None) -> Reply:
    """A correct S3-like answer for ``data``: 206 for a Range, 412 on a wrong If-Match."""
    etag = etag or etag_of(data)
    if_match = request.headers.get("if-match")
    if if_match and if_match != etag:
        return Reply(
            412,
            {"content-type": "application/xml"},
            b"<Error><Code>PreconditionFailed</Code><Message>At least one of the "
            b"pre-conditions you specified did not hold</Message></Error>",
        )
    headers = {"etag": etag, "content-type": "application/octet-stream", "accept-ranges": "bytes"}
    match = _RANGE.match(request.headers.get("range", ""))
    if not match:
        return Reply(200, headers, data)
    start = int(match.group(1))
    end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
    headers["content-range"] = f"bytes {start}-{end}/{len(data)}"
    return Reply(206, headers, data[start : end + 1])


class FaultServer:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.requests: list[Request] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                request = Request(method, path, headers)
                with self._lock:
                    n = len(self.requests)
                    self.requests.append(request)
                reply = self.scenario(request, n)
                if not self._send(conn, request, reply):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn: socket.socket, request: Request, reply: Reply) -> bool:
        """Write a reply; False when the connection must end afterwards."""
        body = b"" if request.method == "HEAD" else reply.body
        lines = [f"HTTP/1.1 {reply.status} X"]
        headers = dict(reply.headers)
        if reply.chunk_size:
            headers["transfer-encoding"] = "chunked"
            size = reply.chunk_size
            body = b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
                for i in range(0, len(body), size)
            )
            body += b"0\r\n\r\n"
        elif reply.send_length:
            headers["content-length"] = str(len(reply.body))
        else:
            headers["connection"] = "close"
        lines += [f"{k}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if reply.drip_seconds is not None:
            for i in range(len(body)):
                if self._stop.is_set():
                    return False
                conn.sendall(body[i : i + 1])
                time.sleep(reply.drip_seconds)
            return reply.send_length
        if reply.cut_after is None:
            conn.sendall(body)
            return reply.send_length
        conn.sendall(body[: reply.cut_after])
        if reply.cut == "reset":
            time.sleep(0.2)  # let the client read what was sent: an RST discards unread bytes
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif reply.cut == "stall":
            self._stop.wait(reply.stall_seconds)
        return False
