"""Sources: what a user names (s3:// object or prefix, https URL, local file or directory),
or hands over (an :class:`Upload`: bytes or an open file under its own name)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import re
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from rag_ingest._redact import is_secret_param, redact
from rag_ingest.errors import (
    ConfigurationError,
    DocumentTooLargeError,
    NoTextFormatError,
    RagIngestError,
    UnsafeSourceError,
    disk_full,
)
from rag_ingest.parsers.base import text_name
from rag_ingest.s3.client import selected_by_globs
from rag_ingest.s3.objects import ObjectInfo
from rag_ingest.s3.uri import DirectURL, S3Location
from rag_ingest.settings import check_source_prefix

__all__ = [
    "Source",
    "Upload",
    "check_allowed",
    "check_not_secret",
    "expand_sources",
    "listed_by",
    "make_source",
    "narrowed",
    "one_named",
    "spool",
    "unique_sources",
    "unlink_off_loop",
    "walk_files",
]


class Upload:
    """A document handed over as bytes or an open binary file (a web upload, an e-mail
    attachment), with no path of its own: ``Upload(file.file, file.filename)``.

    ``filename`` names it (its type is read from the name, then the content; a
    directory part is dropped). ``source_id`` is its identity within a session,
    ``upload://<filename>`` by default: the same upload again is skipped as unchanged,
    and a new version under the same identity replaces the old one's chunks. Give your
    own (``upload://<user>/<id>``) when different files may share a name.

    ``data``: ``bytes``, a binary file object (read from where it stands now; a
    seekable one is read from there again if the upload is processed again, a pipe is
    refused the second time), or an object with an async ``read(n)`` (Starlette's
    ``UploadFile``).
    """

    def __init__(self, data: Any, filename: str, *, source_id: str | None = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)) and not callable(
            getattr(data, "read", None)
        ):
            raise ConfigurationError(
                f"an Upload takes bytes or a binary file object, not {type(data).__name__}"
            )
        given = filename if isinstance(filename, str) else ""
        name = text_name(PureWindowsPath(given.replace("\x00", "")).name.strip())
        if name in ("", ".", ".."):
            raise ConfigurationError(
                f"an Upload needs a file name (its type is read from it), not {filename!r}"
            )
        if source_id is not None and not str(source_id).strip():
            raise ConfigurationError("an Upload's source_id, when given, is a non-empty string")
        if source_id is not None and str(source_id).lower().startswith((*_REMOTE, "file://")):
            # Such identities belong to fetched sources: a prefix or directory run would
            # take this upload for one of its own (and prune it when it does not list it).
            raise ConfigurationError(
                f"an Upload's source_id must not look like a fetched source: {source_id!r} "
                "(use upload://... or your own scheme)"
            )
        self.data = data
        self.filename = name
        self.source_id = str(source_id) if source_id is not None else f"upload://{quote(name)}"
        self._start: int | None = None
        self._read = False  # a stream that cannot go back is read once
        seekable = getattr(data, "seekable", None)
        if callable(seekable) and not inspect.iscoroutinefunction(seekable):
            try:
                self._start = data.tell() if seekable() else None
            except (OSError, ValueError):
                self._start = None

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, source_id={self.source_id!r})"


_SPOOL_BLOCK = 1024 * 1024


class _Sink:
    """The spool file, refusing to grow past ``limit`` bytes."""

    def __init__(self, out: Any, upload: Upload, limit: int | None) -> None:
        self.out, self.upload, self.limit, self.size = out, upload, limit, 0

    def write(self, block: bytes | bytearray | memoryview) -> None:
        self.size += len(block)
        if self.limit is not None and self.size > self.limit:
            raise DocumentTooLargeError(
                f"{self.upload.filename}: the upload is over limits.max_object_size "
                f"({self.limit} bytes); nothing of it was kept"
            )
        self.out.write(block)


def _write_blocks(upload: Upload, out: _Sink) -> None:
    data = upload.data
    if isinstance(data, (bytes, bytearray, memoryview)):
        out.write(data)
        return
    if upload._start is not None:
        data.seek(upload._start)  # processed again: the same bytes, not what is left
    while block := data.read(_SPOOL_BLOCK):
        if not isinstance(block, (bytes, bytearray, memoryview)):
            raise ConfigurationError(
                f"{upload.filename}: the upload's file gave {type(block).__name__}, not "
                "bytes: open it in binary mode ('rb')"
            )
        out.write(block)


async def spool(
    upload: Upload, directory: Path, run: Any = asyncio.to_thread, *, max_size: int | None = None
) -> Path:
    """Write an upload to a fresh 0600 file in ``directory``; the caller removes it.
    Blocking reads and writes go through ``run`` (a thread), async reads on the loop.
    Past ``max_size`` bytes it stops with :class:`DocumentTooLargeError`, so a client
    cannot fill the disk.

    A stream that cannot be read again (a pipe, an async reader without ``seek``) is
    refused the second time: it would give 0 bytes, and an empty source takes the
    chunks of its earlier version with it.
    """
    data = upload.data
    rereadable = (
        isinstance(data, (bytes, bytearray, memoryview))
        or upload._start is not None
        or inspect.iscoroutinefunction(getattr(data, "seek", None))
    )
    if upload._read and not rereadable:
        raise ConfigurationError(
            f"{upload.filename}: this upload's stream was read already and cannot go back; "
            "give a new Upload (or bytes, or a seekable file)"
        )
    upload._read = True
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = await run(tempfile.mkstemp, ".part", "rag-ingest-upload-", str(directory))
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            out = _Sink(file, upload, max_size)
            read = getattr(upload.data, "read", None)
            if read is not None and inspect.iscoroutinefunction(read):
                seek = getattr(upload.data, "seek", None)
                if seek is not None and inspect.iscoroutinefunction(seek):
                    await seek(0)  # UploadFile: processed again, read from the start
                while block := await read(_SPOOL_BLOCK):
                    if isinstance(block, str):
                        raise ConfigurationError(
                            f"{upload.filename}: the upload gave text, not bytes"
                        )
                    await run(out.write, block)
            else:
                await run(_write_blocks, upload, out)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        full = disk_full(exc, directory, f"the upload {upload.filename}")
        if full is not None:
            raise full from exc
        raise
    return path


async def unlink_off_loop(path: Path, executor: Executor | None = None) -> None:
    """Remove a staged file on a thread: an unlink on a busy disk stalled the event loop
    36 ms (measured in the ingest benchmark). Shielded, so a caller cancelled meanwhile
    still removes it; in this thread once ``executor`` is shut down."""
    loop = asyncio.get_running_loop()
    try:
        done = loop.run_in_executor(executor, functools.partial(path.unlink, missing_ok=True))
    except RuntimeError:  # the executor is shut down: closing
        path.unlink(missing_ok=True)
        return
    await asyncio.shield(done)


@dataclass
class Source:
    """A parsed source: an S3/https target, a local path or an upload, with what we
    know of it."""

    uri: str
    target: S3Location | DirectURL | None = None
    path: Path | None = None
    info: ObjectInfo | None = None
    upload: Upload | None = None
    listed: bool = False  # found by a prefix listing or a directory walk, not named
    refused: RagIngestError | None = None  # fails with this when processed
    named: Path | None = None  # a local path as given, where a link leads elsewhere

    @property
    def key(self) -> str:
        """The stable identity of a source: no signature, no expiry, no query."""
        if isinstance(self.target, S3Location):
            return str(self.target)
        if isinstance(self.target, DirectURL):
            if self.target.bucket and self.target.key:
                return f"s3://{self.target.bucket}/{self.target.key}"
            parts = urlsplit(self.target.url)
            netloc = parts.netloc.rpartition("@")[2]  # never a user:password
            identity = f"{parts.scheme}://{netloc}{parts.path}"
            if self.target.presigned:
                return identity
            # ?id=3 and ?id=4 are two documents; a token in the query is no part of either.
            query = [
                (name, value)
                for name, value in parse_qsl(parts.query, keep_blank_values=True)
                if not is_secret_param(name)
            ]
            return f"{identity}?{urlencode(query)}" if query else identity
        return self.uri

    @property
    def name(self) -> str:
        if self.upload is not None:
            return self.upload.filename
        if self.path is not None:
            return text_name(self.path.name)
        if isinstance(self.target, S3Location):
            return PurePosixPath(self.target.key).name or self.target.key
        if self.info is not None and self.info.filename:
            return self.info.filename
        if self.target is not None and self.target.key:
            return PurePosixPath(self.target.key).name
        if self.target is not None:
            segment = unquote(urlsplit(self.target.url).path.rstrip("/").rpartition("/")[2])
            if segment not in ("", ".", ".."):
                return segment
        return "document"

    @property
    def named_under(self) -> str:
        """Its name with the folders above it (a key's, a path's), for what a folder says
        of a file (``.aws/credentials`` holds keys); else its name."""
        if self.path is not None:
            return str(PurePosixPath(text_name(self.path.parent.name)) / self.name)
        if isinstance(self.target, S3Location) and self.target.key:
            return self.target.key
        return self.name


_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_REMOTE = ("s3://", "https://", "http://")


def _local(text: str) -> Path:
    """The local path a source names: a path (``~`` expanded) or a ``file://`` URI, as
    the ``source`` of a local file's chunks reads; refuses other schemes and ''."""
    if not text.strip():
        raise ConfigurationError("an empty source: name a file, directory, s3:// or URL")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return Path(text).expanduser()
    if scheme.group(1).lower() != "file":
        raise UnsafeSourceError(
            f"unsupported scheme {scheme.group(1)!r} in {redact(text)!r}: sources are "
            "local paths, file://, s3://, https:// (http:// for trusted hosts)"
        )
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(f"a file:// URI of another host: {redact(text)!r}")
    return Path(unquote(parts.path, errors="surrogateescape"))  # as as_uri() wrote it


def _prefix(entry: str) -> str:
    """An ``allowed_sources`` entry as an identity prefix (a directory as its file URI)."""
    if _SCHEME.match(entry) is None:
        entry = Path(entry).expanduser().resolve().as_uri()
    return entry.rstrip("/")


def _allowed(identity: str, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        stem = _prefix(entry)
        if identity == stem or identity.startswith(stem + "/"):
            return True
    return False


def narrowed(base: Sequence[str] | None, extra: Sequence[str] | None) -> list[str] | None:
    """What both allow, as one list of prefixes: a call's ``allowed_sources`` (one
    tenant's prefix) within the settings' (the app's). None from both allows any."""
    for entry in extra or ():
        try:
            check_source_prefix(entry)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    if base is None or extra is None:
        chosen = extra if base is None else base
        return None if chosen is None else list(chosen)
    mine, theirs = [_prefix(e) for e in base], [_prefix(e) for e in extra]
    return sorted(
        {p for p in mine if _allowed(p, theirs)} | {p for p in theirs if _allowed(p, mine)}
    )


def check_allowed(source: Source, allowed: Sequence[str] | None) -> None:
    """:class:`UnsafeSourceError` unless ``source`` is an upload or lies under one of
    ``allowed`` (``pipeline.allowed_sources``; None allows any). A local path is
    resolved first, so neither ``..`` nor a symlink leads out of an allowed directory."""
    if allowed is None or source.upload is not None or _allowed(source.key, allowed):
        return
    raise UnsafeSourceError(
        f"{redact(source.uri)}: not under pipeline.allowed_sources; this processor does not take it"
    )


def check_not_secret(source: Source) -> None:
    """:class:`NoTextFormatError` when ``source``'s name, with the folders above it, says
    it holds secrets (``s3://b/home/.aws/credentials``): refused before a download, as
    parsing refuses a ``.env`` by its name."""
    from rag_ingest.parsers.sniff import secret

    if (what := secret(source.named_under)) is not None:
        raise NoTextFormatError(f"{source.name}: {what}: no text to index")


def make_source(s3: Any, source: str | os.PathLike[str] | ObjectInfo | Upload | Source) -> Source:
    """Parse one source (no I/O): an S3 or https target, or a local path. A
    :class:`Source` (as :func:`unique_sources` yields) is already parsed."""
    if isinstance(source, Source):
        if source.refused is not None:
            raise source.refused
        return source
    if isinstance(source, Upload):
        return Source(uri=source.source_id, upload=source)
    if isinstance(source, ObjectInfo):
        return Source(uri=source.uri, target=s3.parse(source.uri), info=source)
    text = os.fspath(source)
    if text.startswith(_REMOTE):
        return Source(uri=text, target=s3.parse(text))
    given = Path(os.path.abspath(_local(text)))  # "..", not links, taken out
    path = given.resolve()
    return Source(uri=path.as_uri(), path=path, named=None if given == path else given)


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(source: Source) -> str:
    """Why a named local source that is not a regular file cannot be read (a pipe or a
    device would block or never end), naming the link it was given by."""
    assert source.path is not None
    name = str(source.path)
    if source.named is not None:
        name = f"{source.named} (a link to {source.path})"
    try:
        mode = source.path.stat().st_mode
    except FileNotFoundError:
        return f"{name}: no such file"
    except OSError as exc:
        return f"{name}: cannot be read: {exc.strerror or exc}"
    what = next((what for special, what in _SPECIAL_FILES if special(mode)), None)
    return f"{name}: {what}, not a file to read" if what else f"{name}: not a file"


def _is_prefix(text: str) -> bool:
    return text.startswith("s3://") and (text.endswith("/") or "/" not in text[5:])


def _is_directory(text: str) -> bool:
    if text.startswith(_REMOTE):
        return False
    try:
        return _local(text).is_dir()
    except RagIngestError:
        return False  # named on its own, it fails with the reason


class _WalkRules:
    """What a walk of ``root`` leaves out: hidden entries, ``__pycache__`` directories,
    the ``skip`` directories, and what ``.gitignore`` files ignore, as git applies them
    (the enclosing repository's files from its root down, the deeper one deciding; a
    file in an ignored directory is ignored). A root the repository ignores was named to
    be walked: generated docs in ``site/`` or ``_build/`` (a walk listed nothing). The
    patterns that ignore it are set aside, the others kept (``*.log`` still leaves its
    logs out)."""

    def __init__(self, root: Path, skip: Sequence[Path] = ()) -> None:
        self.root = root.resolve()
        self._skipped = {p.resolve() for p in skip}
        self._specs: dict[Path, Any] = {}
        chain = [self.root]
        for parent in self.root.parents:
            if (chain[-1] / ".git").exists():
                break
            chain.append(parent)
        else:
            chain = [self.root]  # not in a repository: only the walked tree's own files
        self._above = list(reversed(chain[1:]))

    def _spec(self, directory: Path) -> Any:
        if directory not in self._specs:
            spec = None
            try:
                lines = (directory / ".gitignore").read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            if lines:
                import pathspec

                spec = pathspec.GitIgnoreSpec.from_lines(lines)
                if directory in self._above:
                    root = self.root.relative_to(directory).as_posix() + "/"
                    kept = [p for p in spec.patterns if not (p.include and p.match_file(root))]
                    spec = pathspec.GitIgnoreSpec(kept)
            self._specs[directory] = spec
        return self._specs[directory]

    def _gitignored(self, path: Path, is_dir: bool) -> bool:
        inside = path.relative_to(self.root)
        between = [self.root / p for p in reversed(inside.parents[:-1])]
        decision = None
        for base in [*self._above, self.root, *between]:
            spec = self._spec(base)
            if spec is not None:
                relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                result = spec.check_file(relative).include
                if result is not None:
                    decision = result
        return decision is True

    def excludes(self, path: Path, is_dir: bool) -> bool:
        """``path`` (resolved, under the root) is left out by its own name or pattern."""
        return (
            path.name.startswith(".")
            # Python's bytecode caches: each .pyc was reported skipped as a binary, a line
            # of the report for every module of a tree with no .gitignore.
            or (is_dir and (path.name == "__pycache__" or path in self._skipped))
            or self._gitignored(path, is_dir)
        )

    def takes(self, path: Path) -> bool:
        """A walk reaches the file ``path`` (resolved, under the root)."""
        inside = path.relative_to(self.root)
        above = [self.root / p for p in reversed(inside.parents[:-1])]
        return not any(self.excludes(d, True) for d in above) and not self.excludes(path, False)


def walk_files(
    root: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip: Sequence[Path] = (),
) -> Iterator[Path]:
    """Files under ``root`` in sorted order, lazily.

    Hidden files and directories (``.git``, ``.venv``, ...) and ``__pycache__``
    directories are left out, so are
    files and directories a ``.gitignore`` ignores (``node_modules/``, build
    output), and so are the ``skip`` directories (the processor's own store and
    staging area: ingesting ``.`` must not index its own database and log). A file
    named directly is always taken; this applies to directory walks only.
    """
    rules = _WalkRules(root, skip)
    for directory, dirs, names in os.walk(root):
        here = Path(directory)
        resolved = here.resolve()
        dirs[:] = sorted(d for d in dirs if not rules.excludes(resolved / d, True))
        for name in sorted(names):
            path = here / name
            if (
                not rules.excludes(resolved / name, False)
                and path.is_file()
                and selected_by_globs(
                    path.as_posix(), include, exclude, relative=path.relative_to(root).as_posix()
                )
            ):
                yield path


def listed_by(
    sources: str | os.PathLike[str] | Iterable[Any],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip: Sequence[Path] = (),
    allowed: Sequence[str] | None = None,
) -> Callable[[str], bool]:
    """A test of a source key: would :func:`expand_sources` list it from ``sources``?

    Only ``s3://`` prefixes and directories list anything; for a key under one of
    them, the same globs and walk rules (:class:`_WalkRules`) decide. Used to prune
    sources that were ingested before and are gone now. A prefix or directory outside
    ``allowed`` lists nothing (it was refused, not found empty).
    """
    items: Iterable[Any] = [sources] if isinstance(sources, (str, os.PathLike, Upload)) else sources
    prefixes: list[tuple[str, str]] = []  # ("s3://bucket/", key prefix)
    directories: list[tuple[Path, _WalkRules]] = []  # (as given, its rules)
    for item in items:
        if isinstance(item, (ObjectInfo, Upload)):
            continue
        text = os.fspath(item)
        if _is_prefix(text):
            if allowed is not None and not _allowed(text, allowed):
                continue
            bucket, _, prefix = text[len("s3://") :].partition("/")
            prefixes.append((f"s3://{bucket}/", prefix))
        elif _is_directory(text):
            root = _local(text)
            if allowed is not None and not _allowed(root.resolve().as_uri(), allowed):
                continue
            directories.append((root, _WalkRules(root, skip)))

    def listed(key: str) -> bool:
        for base, prefix in prefixes:
            if (
                key.startswith(base + prefix)
                and not key.endswith("/")
                and selected_by_globs(
                    key[len(base) :],
                    include,
                    exclude,
                    relative=key[len(base) :].removeprefix(prefix[: prefix.rfind("/") + 1]),
                )
            ):
                return True
        if directories and key.startswith("file://"):
            path = Path(unquote(urlsplit(key).path, errors="surrogateescape"))
            for given, rules in directories:
                if (
                    path.is_relative_to(rules.root)
                    and rules.takes(path)
                    and selected_by_globs(
                        (given / path.relative_to(rules.root)).as_posix(),
                        include,
                        exclude,
                        relative=path.relative_to(rules.root).as_posix(),
                    )
                ):
                    return True
        return False

    return listed


def one_named(sources: Any) -> bool:
    """Whether ``sources`` names one source, prefix or directory (alone, or the one item
    of a list): its listing names each source once (see :func:`unique_sources`)."""
    if isinstance(sources, (str, os.PathLike)):
        return True
    return (
        isinstance(sources, Sequence)
        and len(sources) == 1
        and isinstance(sources[0], (str, os.PathLike))
    )


async def unique_sources(
    s3: Any, items: AsyncIterator[Any], *, single: bool = False
) -> AsyncIterator[Any]:
    """``items`` parsed (as :class:`Source`), each source once: a file named twice, or
    named and also under a named directory, is one source (by :attr:`Source.key`). An
    item that does not parse passes as it is, to fail with its own reason. Two
    different uploads under one identity (two files named ``report.pdf`` from two
    folders) are two documents: the second is refused, never dropped in silence.

    ``single``: the items are one source's, or one prefix's or directory's listing,
    which names each once: no name is remembered (about 110 bytes each, held to the
    end of the run)."""
    seen: dict[str, Upload | None] = {}
    async for item in items:
        try:
            source = make_source(s3, item)
        except Exception:
            yield item
            continue
        if single:
            yield source
        elif source.key not in seen:
            seen[source.key] = source.upload
            yield source
        elif source.upload is not None and source.upload is not seen[source.key]:
            source.refused = ConfigurationError(
                f"{source.upload.filename}: another upload in this batch has the same "
                f"identity ({source.key}); give each its own source_id"
            )
            yield source


async def expand_sources(
    s3: Any,
    sources: str | os.PathLike[str] | Iterable[Any],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip: Sequence[Path] = (),
    allowed: Sequence[str] | None = None,
) -> AsyncIterator[Any]:
    """Yield single sources lazily: ``s3://`` prefixes are listed page by page and
    directories walked (see :func:`walk_files`), each found one a :class:`Source` marked
    ``listed``; globs apply to keys and to paths. A prefix or directory outside
    ``allowed`` is not listed at all (its names are nobody's business): it is yielded
    as one refused source."""
    items: Iterable[Any] = [sources] if isinstance(sources, (str, os.PathLike, Upload)) else sources
    for item in items:
        if isinstance(item, (ObjectInfo, Upload)):
            yield item
            continue
        text = os.fspath(item)
        if allowed is not None and (_is_prefix(text) or _is_directory(text)):
            named = make_source(s3, text)
            try:
                check_allowed(named, allowed)
            except RagIngestError as exc:
                yield Source(uri=named.key, refused=exc)
                continue
        if _is_prefix(text):
            async for info in s3.list(text, include=include, exclude=exclude):
                if not (info.key or "").endswith("/"):
                    yield _listed(make_source(s3, info))
        elif _is_directory(text):
            for path in walk_files(_local(text), include, exclude, skip):
                yield _listed(make_source(s3, path))
        else:
            yield item


def _listed(source: Source) -> Source:
    source.listed = True
    return source
