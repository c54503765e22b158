"""Plain web URLs (an intranet document server): trusted hosts, names, identity,
redirects, chunked pages with no length, and re-runs over a server with no ETag."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from rag_ingest import DocumentProcessor, Settings
from tests import docs
from tests.conftest import IN_PROCESS_STORE
from tests.integration.test_pipeline import CountingEmbeddings

pytestmark = pytest.mark.integration


class _Site(http.server.BaseHTTPRequestHandler):
    """A small web server as intranets have them: no ETag, no Range, some pages chunked."""

    protocol_version = "HTTP/1.1"
    pages: ClassVar[dict[str, tuple[bytes, dict[str, str]]]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        path = self.path.replace("&access_token=SECRET-TOKEN", "")  # the server's own business
        if path == "/moved":
            # Another host name for the same server: the redirect crosses hosts.
            port = self.server.server_address[1]
            self._answer(302, b"", {"Location": f"http://localhost:{port}/handbook.pdf"})
        elif path == "/cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"1000\r\n" + b"x" * 4096 + b"\r\n")  # no last chunk
            self.wfile.flush()
            self.close_connection = True
        elif path in self.pages:
            body, headers = self.pages[path]
            if headers.get("Transfer-Encoding") == "chunked":
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for start in range(0, len(body), 1000):
                    piece = body[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self._answer(200, body, headers)
        else:
            self._answer(404, b"not here", {})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[tuple[str, type[_Site]]]:
    corpus = docs.corpus()
    handler = type("Site", (_Site,), {"pages": {}, "seen": []})
    handler.pages = {
        "/handbook.pdf": (corpus["reports/annual.pdf"], {"Content-Type": "application/pdf"}),
        "/get?id=1": (b"CANARY-FIRST document one.\n" * 3, {"Content-Type": "text/plain"}),
        "/get?id=2": (b"CANARY-SECOND document two.\n" * 3, {"Content-Type": "text/plain"}),
        "/export?doc=7": (
            corpus["docs/handbook.docx"],
            {"Content-Disposition": "attachment; filename*=UTF-8''Gu%C3%ADa%202026.docx"},
        ),
        "/wiki/page": (
            b"<html><body><h1>Wiki</h1><p>CANARY-WIKI served in chunks.</p></body></html>",
            {"Content-Type": "text/html", "Transfer-Encoding": "chunked"},
        ),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def web_settings(tmp_path: Path, **s3: Any) -> Settings:
    return Settings.model_validate(
        {
            "progress": False,
            "s3": {"trusted_hosts": ["127.0.0.1", "localhost"], **s3},
            "retry": {"base_delay": 0.0, "max_attempts": 2},
            "store": {"persist_dir": str(tmp_path / "store"), **IN_PROCESS_STORE},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
            "temp_dir": str(tmp_path / "tmp"),
        }
    )


async def test_web_pages_are_named_kept_apart_and_skipped_when_unchanged(
    site: tuple[str, type[_Site]], tmp_path: Path
) -> None:
    base, handler = site
    urls = [
        f"{base}/handbook.pdf",
        f"{base}/get?id=1",
        f"{base}/get?id=2&access_token=SECRET-TOKEN",
        f"{base}/export?doc=7",
        f"{base}/wiki/page",
        f"{base}/moved",
    ]
    embeddings = CountingEmbeddings()
    async with DocumentProcessor(web_settings(tmp_path), embeddings=embeddings) as p:
        report = await p.process_many(urls, session_id="web")
        results = {r.source: r for r in report.results}
        assert all(r.status == "ingested" for r in report.results), [
            (r.source, r.error_type, r.message) for r in report.results
        ]
        # The query is part of a page's identity; a token in it is not.
        assert set(results) == {
            f"{base}/handbook.pdf",
            f"{base}/get?id=1",
            f"{base}/get?id=2",
            f"{base}/export?doc=7",
            f"{base}/wiki/page",
            f"{base}/moved",
        }
        # Names: the URL's last segment, or the server's Content-Disposition.
        assert results[f"{base}/handbook.pdf"].filename == "handbook.pdf"
        assert results[f"{base}/export?doc=7"].filename == "Guía 2026.docx"
        assert results[f"{base}/export?doc=7"].file_type == "docx"
        assert results[f"{base}/moved"].file_type == "pdf"  # followed to another host
        assert "/handbook.pdf" in handler.seen
        # Both ?id= documents are searchable; neither replaced the other.
        for canary in ("CANARY-FIRST", "CANARY-SECOND", "CANARY-WIKI"):
            hits = await p.query(canary, session_id="web", k=1)
            assert canary in hits[0][0].page_content
        stored = p.store.ids_for("web")
        everything = p.store.vectorstore.get(where={"session_id": "web"})
        assert "SECRET-TOKEN" not in repr(everything) + repr([r.as_dict() for r in report.results])

        # No ETag from this server: the content is the version, so nothing is embedded again.
        embedded = embeddings.texts
        again = await p.process_many(urls, session_id="web")
        assert again.totals["skipped"] == len(urls), [
            (r.source, r.status, r.message) for r in again.results
        ]
        assert embeddings.texts == embedded
        assert p.store.ids_for("web") == stored
        assert "same content" in (again.results[0].message or "")

        # Another session's copy of the same pages: their vectors serve it (the content
        # hash found after download is the version a twin is looked up by).
        other = await p.process_many(urls, session_id="web-2")
        assert other.totals["ingested"] == len(urls) and embeddings.texts == embedded
        assert other.totals["reused_vectors"] == other.totals["chunks"]

        # A changed page is ingested again, its old chunks replaced.
        handler.pages["/get?id=1"] = (b"CANARY-NEWER text of one.\n" * 3, {})
        changed = await p.process_many([f"{base}/get?id=1"], session_id="web")
        assert changed.results[0].status == "ingested"
        hits = await p.query("CANARY-FIRST", session_id="web", k=10)
        assert not any("CANARY-FIRST" in d.page_content for d, _ in hits)
    assert not any((tmp_path / "tmp").iterdir())


async def test_a_page_cut_short_fails_and_untrusted_hosts_stay_refused(
    site: tuple[str, type[_Site]], tmp_path: Path
) -> None:
    base, _ = site
    async with DocumentProcessor(web_settings(tmp_path)) as p:
        cut = await p.process_document(f"{base}/cut", session_id="web")
        assert cut.status == "failed" and cut.error_type == "S3Error"
        assert "body broke" in (cut.message or "") and cut.transient  # may pass later
        missing = await p.process_document(f"{base}/nothing.pdf", session_id="web")
        assert missing.error_type == "S3NotFoundError" and not missing.transient
    # Trust is per host and port: another port, or no trust at all, is refused.
    async with DocumentProcessor(web_settings(tmp_path, trusted_hosts=["127.0.0.1:1"])) as p:
        refused = await p.process_document(f"{base}/handbook.pdf", session_id="web")
        assert refused.error_type == "UnsafeSourceError"
    async with DocumentProcessor(web_settings(tmp_path, trusted_hosts=[])) as p:
        refused = await p.process_document(f"{base}/handbook.pdf", session_id="web")
        assert refused.error_type == "UnsafeSourceError"
        assert "trusted_hosts" in (refused.message or "")


async def test_a_redirect_from_a_trusted_host_to_a_private_one_is_refused(
    site: tuple[str, type[_Site]], tmp_path: Path
) -> None:
    base, _ = site
    # localhost is not trusted here: the redirect to it must not be followed.
    async with DocumentProcessor(web_settings(tmp_path, trusted_hosts=["127.0.0.1"])) as p:
        result = await p.process_document(f"{base}/moved", session_id="web")
    assert result.error_type == "UnsafeSourceError", result.message


def test_trusted_hosts_entries_are_checked() -> None:
    Settings(s3={"trusted_hosts": ["wiki.corp", "docs.corp:8080", "10.0.0.0/8", "::1"]})
    for bad in ("http://wiki.corp/", "wiki.corp:port", "a/b/c"):
        with pytest.raises(ValidationError, match="trusted host"):
            Settings(s3={"trusted_hosts": [bad]})


async def test_the_loader_names_web_pages_and_loads_each_source_once(
    site: tuple[str, type[_Site]], tmp_path: Path
) -> None:
    from rag_ingest import RagIngestLoader

    base, handler = site
    export = f"{base}/export?doc=7"
    loader = RagIngestLoader(
        [export, f"{base}/get?id=1", export], mode="document", settings=web_settings(tmp_path)
    )
    docs = [d async for d in loader.alazy_load()]
    assert [d.metadata["source"] for d in docs] == [export, f"{base}/get?id=1"]
    assert docs[0].metadata["filename"] == "Guía 2026.docx"
    assert handler.seen.count("/export?doc=7") == 1
