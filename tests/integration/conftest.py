from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag_ingest.errors import free_space
from rag_ingest.testing import SeaweedS3


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """One real S3 server (SigV4 enforced) for the whole session, stopped at the end.

    Its files are in memory where /dev/shm has room: the session stores a 1 GiB object,
    and on a disk that falls under 1% free weed stops taking writes.
    """
    with SeaweedS3(prefer_memory=True) as server:
        yield server


@pytest.fixture
def unlinks(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], list[tuple[Path, int]]]:
    """``unlinks(directory)``: a list that records each ``Path.unlink`` of a file under
    ``directory`` from then on, with the thread that ran it."""

    def watch(directory: Path) -> list[tuple[Path, int]]:
        seen: list[tuple[Path, int]] = []
        unlink = Path.unlink

        def record(self: Path, missing_ok: bool = False) -> None:
            if directory in self.parents:
                seen.append((self, threading.get_ident()))
            unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", record)
        return seen

    return watch


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(size)``: a fresh tmpfs of ``size`` bytes, unmounted after the test
    (skipped where mounting is not permitted). A real full disk: ENOSPC as the kernel
    gives it, and free space as weed and ``shutil.disk_usage`` read it."""
    mounts: list[Path] = []

    def make(size: int) -> Path:
        mount = tmp_path / f"disk{len(mounts)}"
        mount.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
        mounts.append(mount)
        return mount

    try:
        yield make
    finally:
        for mount in mounts:
            subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used the S3 server reports the server's volume counts, its
    disk's free space and the tail of its log.

    The server's files are removed when the session ends, so a 500 from it in CI is
    otherwise undiagnosable.
    """
    report = yield
    server = getattr(item, "funcargs", {}).get("seaweed")
    if report.failed and isinstance(server, SeaweedS3):
        try:
            volumes = str(server.volume_status())
        except Exception as exc:  # the server may be what broke
            volumes = f"unavailable: {exc!r}"
        report.sections.append(("SeaweedFS volumes", volumes))
        disk = f"{server.data_dir}: {free_space(server.data_dir)}"
        report.sections.append(("SeaweedFS disk", disk))
        report.sections.append(("SeaweedFS log (tail)", server.log_tail(6000)))
    return report


SITE = "site.proxied.test"  # a name no resolver knows: only a test proxy maps it


@dataclass(frozen=True)
class TlsSite:
    port: int
    ca: Path  # its self-signed certificate, the CA to trust it by
    body: bytes


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[TlsSite]:
    """An https server on loopback whose self-signed certificate names SITE and
    127.0.0.1; every GET answers ``body``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(SITE), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca = tmp_path / "site-cert.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = tmp_path / "site-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    body = b"an https page\n" * 100

    class Page(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsSite(server.server_address[1], ca, body)
    finally:
        server.shutdown()
        server.server_close()
