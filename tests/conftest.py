from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rag_ingest.settings import Settings

TEST_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEST_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENvalue0123456789"

# Where the tests' own store is not their subject: Chroma in the test's process. A private
# Chroma server per processor, even started as its Rust binding alone, cost the eight
# files that use this 146 s on two workers (216 s of CPU) against 115 s (166 s) without
# (measured). The server mode, the default, is what the corpus test, the CLI's tests
# and the store's own tests (resilience, locks, clean-up) run.
IN_PROCESS_STORE = {"embedded_mode": "in-process"}


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up the developer's AWS config, endpoint or credentials."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "RAG_INGEST_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never go through the developer's proxy (S3 and web downloads take one from
    the environment, as boto3 does); those of proxies set their own."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def _workers_not_warmed(_no_ambient_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parser workers skip their warm-up (parse.warm_up): 1.6-1.8 s of CPU a worker that
    a test's few documents rarely need, taken from the other pytest worker (without it,
    the suite took 495 s, not 565 s, measured). The warm-up's own tests, the demo's and the
    notebook's run the default; ``ParseSettings()`` made directly reads no environment."""
    monkeypatch.setenv("RAG_INGEST_PARSE__WARM_UP", "false")


@pytest.fixture(autouse=True)
def _no_kept_workers() -> Iterator[None]:
    """A loader's workers kept for its next load (parse.keep_workers) end with their
    test: warming up in the background, they would take the next test's CPU."""
    yield
    pool = sys.modules.get("rag_ingest.parsers.pool")
    if pool is not None:
        pool.kept_pool.close()


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A plain file: nothing can be made under it, even by root (the tests' user, to
    whom a read-only directory is writable)."""
    path = tmp_path / "read-only"
    path.write_text("")
    return path


def long_documents(directory: Path, count: int) -> None:
    """``count`` Markdown files in ``directory``, each long enough to take a while."""
    for i in range(count):
        (directory / f"d{i}.md").write_text(f"# Doc {i}\n\n" + f"Line {i} of words. " * 2000)


def ingest_until_parsing(
    tmp_path: Path, documents: int, **popen: Any
) -> tuple[subprocess.Popen[str], list[str], dict[str, str]]:
    """``rag-ingest ingest`` over ``documents`` Markdown files, in a subprocess staging
    under ``tmp_path/temp``; returned once a document is being parsed (its scratch
    directory made): the process, and its command line and environment to run again."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long_documents(corpus, documents)
    temp = tmp_path / "temp"
    env = {**os.environ, "RAG_INGEST_MODELS__EMBEDDER": "hash", "RAG_INGEST_TEMP_DIR": str(temp)}
    command = [sys.executable, "-m", "rag_ingest.cli", "ingest", str(corpus), "--session", "s"]
    command += ["--persist-dir", str(tmp_path / "store"), "--no-progress"]
    return until_parsing(command, env, temp, **popen), command, env


def until_parsing(
    command: list[str], env: dict[str, str], temp: Path, **popen: Any
) -> subprocess.Popen[str]:
    """``command`` started, returned once a document's parse scratch directory is made
    in a staging directory under ``temp``."""
    process = subprocess.Popen(command, text=True, env=env, **popen)
    try:
        deadline = time.monotonic() + 120
        while not list(temp.glob("rag-ingest-run-*/rag-ingest-parse-*")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but still listed until its (new) parent reaps it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False  # reaped since the signal


def make_settings(endpoint_url: str | None = None, **parts: Any) -> Settings:
    """Settings with explicit test credentials and fast, deterministic retries."""
    s3 = {"region": "us-east-1", "access_key_id": "AKIDEXAMPLE", "secret_access_key": TEST_SECRET}
    if endpoint_url:
        s3["endpoint_url"] = endpoint_url
    s3.update(parts.pop("s3", {}))
    retry = {"base_delay": 0.0, "max_delay": 0.05, "max_attempts": 5, "deadline": 30.0}
    retry.update(parts.pop("retry", {}))
    transfer = {"read_timeout": 5.0, "connect_timeout": 2.0}
    transfer.update(parts.pop("transfer", {}))
    return Settings(s3=s3, retry=retry, transfer=transfer, progress=False, **parts)


T = TypeVar("T")


def run_apart(work: Coroutine[Any, Any, T], timeout: float) -> list[T]:
    """``[work's result]``, run on an event loop in a thread of its own, or ``[]`` if it
    did not end within ``timeout`` seconds. For a bug that spins a loop: no timeout on
    that loop can fire (nor pytest-timeout, in a test's), so the test fails rather than
    hangs; the thread is a daemon, and a spinning one does not hold the exit."""
    results: list[T] = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(work)), daemon=True)
    runner.start()
    runner.join(timeout)
    return results


@pytest.fixture
def tmp_download_dir(tmp_path: Any) -> Iterator[Any]:
    yield tmp_path


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Postgres with pgvector (pgserver's own binaries) on a Unix socket, for
    langchain-postgres's PGVector: its SQLAlchemy URL. Stopped when the session ends."""
    import subprocess

    pgserver = pytest.importorskip("pgserver")
    for attempt in range(3):
        # pg_ctl once died of SIGSEGV starting a fresh data directory, the same start
        # working at once in the next run: a start is tried again, in a new directory.
        try:
            with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset
                warnings.simplefilter("ignore")
                server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
            break
        except subprocess.CalledProcessError as exc:
            if attempt == 2:
                raise
            print(f"Postgres did not start, starting it again: {exc}", file=sys.stderr)
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


@pytest.fixture
def pgvector(postgres: str) -> Iterator[Any]:
    """``pgvector(embeddings=None, *, async_mode=False)``: a PGVector store (JSONB
    metadata) in a collection of its own; each one's connections are closed after."""
    import uuid

    from langchain_postgres import PGVector

    from rag_ingest.models import HashEmbeddings

    made: list[Any] = []

    def make(embeddings: Any = None, *, async_mode: bool = False) -> Any:
        store = PGVector(
            embeddings=embeddings or HashEmbeddings(),
            collection_name=f"c-{uuid.uuid4().hex}",
            connection=postgres,
            use_jsonb=True,
            async_mode=async_mode,
        )
        made.append(store)
        return store

    yield make
    for store in made:
        if store._engine is not None:
            store._engine.dispose()


@pytest.fixture
def pgvectorstore(postgres: str) -> Iterator[Any]:
    """``pgvectorstore(embeddings=None)``: langchain-postgres's newer ``PGVectorStore``,
    a table of its own per store; the engines are closed after the test."""
    import asyncio
    import uuid

    from langchain_postgres import PGEngine, PGVectorStore

    from rag_ingest.models import HashEmbeddings

    engines: list[Any] = []

    def make(embeddings: Any = None) -> Any:
        embeddings = embeddings or HashEmbeddings()
        engine = PGEngine.from_connection_string(url=postgres)
        engines.append(engine)
        table = f"t_{uuid.uuid4().hex}"
        engine.init_vectorstore_table(table, len(HashEmbeddings().embed_query("x")))
        store = PGVectorStore.create_sync(engine, embeddings, table)
        store.test_sql_url = postgres  # for the tests' own SQL
        return store

    yield make
    for engine in engines:
        asyncio.run(engine.close())
