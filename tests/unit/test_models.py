from __future__ import annotations

import asyncio

import pytest
from langchain_core.embeddings import Embeddings

from rag_ingest.errors import ModelError
from rag_ingest.models import EmbeddingRunner, HashEmbeddings, Summarizer
from rag_ingest.settings import ModelSettings


class _Status(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class Flaky(Embeddings):
    def __init__(self, failures: list[BaseException], delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.delay = delay
        self.calls: list[int] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        if self.failures:
            raise self.failures.pop(0)
        if self.delay:
            import time

            time.sleep(self.delay)
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0]


FAST = ModelSettings(batch_size=3, timeout=1.0, max_attempts=3)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import tenacity

    monkeypatch.setattr(tenacity.wait_random_exponential, "__call__", lambda self, rs: 0.0)


async def test_batches_and_order() -> None:
    model = Flaky([])
    vectors = await EmbeddingRunner(model, FAST).embed(["a", "bb", "ccc", "dddd"])
    assert model.calls == [3, 1]
    assert [v[0] for v in vectors] == [1, 2, 3, 4]
    # float32 rows, not lists of float objects (8x the memory per vector).
    assert vectors.dtype.name == "float32" and vectors.shape == (4, 2)


async def test_vectors_of_unequal_length_are_a_model_error() -> None:
    class Ragged(Flaky):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            self.calls.append(len(texts))
            return [[1.0] * (len(self.calls) + 2) for _ in texts]

    with pytest.raises(ModelError, match="unequal length"):
        await EmbeddingRunner(Ragged([]), FAST).embed(["a", "b", "c", "d"])  # 3 dims, then 4

    class Jagged(Flaky):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] * (i + 1) for i, _ in enumerate(texts)]

    with pytest.raises(ModelError, match="unequal length"):
        await EmbeddingRunner(Jagged([]), FAST).embed(["a", "b"])


async def test_429_and_timeouts_are_retried() -> None:
    model = Flaky([_Status(429), TimeoutError("slow")])
    usage: dict[str, int] = {}
    vectors = await EmbeddingRunner(model, FAST).embed(["a"], usage=usage)
    assert len(model.calls) == 3 and vectors.tolist() == [[1.0, 1.0]]
    assert usage == {"embedding_failed_calls": 2}  # a provider may bill them


async def test_connection_failures_of_clients_and_sdks_are_retried() -> None:
    import httpx
    import requests

    class APIConnectionError(Exception):  # as the OpenAI and Anthropic SDKs name it
        pass

    class APITimeoutError(APIConnectionError):
        pass

    for failure in (
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("reset"),
        requests.exceptions.ConnectionError("reset"),
        APIConnectionError("Connection error."),
        APITimeoutError("Request timed out."),
    ):
        model = Flaky([failure])
        assert (await EmbeddingRunner(model, FAST).embed(["a"])).tolist() == [[1.0, 1.0]], failure
        assert len(model.calls) == 2


async def test_bad_request_is_not_retried() -> None:
    model = Flaky([_Status(400)])
    with pytest.raises(ModelError, match="status 400"):
        await EmbeddingRunner(model, FAST).embed(["a"])
    assert len(model.calls) == 1


async def test_each_call_has_a_timeout() -> None:
    model = Flaky([], delay=2.0)
    settings = ModelSettings(timeout=0.2, max_attempts=2)
    usage: dict[str, int] = {}
    with pytest.raises(ModelError, match="timed out"):
        await EmbeddingRunner(model, settings).embed(["a"], usage=usage)
    assert usage == {"embedding_failed_calls": 2}
    await asyncio.sleep(0)


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    h = HashEmbeddings()
    a, b = h.embed_query("CANARY words here"), h.embed_query("CANARY words here")
    assert a == b and abs(sum(x * x for x in a) - 1.0) < 1e-9 and len(a) == 384


class _Echo:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.prompts: list[str] = []

    async def ainvoke(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self.fail:
            raise _Status(400)
        return f"summary of {len(prompt)} chars"


async def test_long_texts_are_summarized_map_reduce() -> None:
    model = _Echo()
    summarizer = Summarizer(
        model, ModelSettings(summary_context_tokens=256), count_tokens=lambda t: len(t.split())
    )
    text = "\n\n".join("word " * 100 for _ in range(10))
    summary = await summarizer.summarize(text)
    assert summary.startswith("summary of") and len(model.prompts) > 2


async def test_failed_summary_is_a_model_error() -> None:
    summarizer = Summarizer(_Echo(fail=True), FAST, count_tokens=len)
    with pytest.raises(ModelError):
        await summarizer.summarize("text")


async def test_a_long_paragraph_is_summarized_whole_in_concurrent_windows() -> None:
    class Tracking:
        def __init__(self) -> None:
            self.prompts: list[str] = []
            self.running = self.most = 0

        async def ainvoke(self, prompt: str) -> str:
            self.prompts.append(prompt)
            self.running += 1
            self.most = max(self.most, self.running)
            await asyncio.sleep(0.01)
            self.running -= 1
            return "short"

    model = Tracking()
    summarizer = Summarizer(
        model,
        ModelSettings(summary_context_tokens=256),
        count_tokens=lambda t: len(t.split()),
        concurrency=3,
    )
    # One paragraph of 3,000 words (a PDF page run together): every word must be read.
    words = [f"w{i}" for i in range(3000)]
    assert await summarizer.summarize(" ".join(words)) == "short"
    read = " ".join(model.prompts)
    assert all(w in read.split() for w in ("w0", "w1500", "w2999"))
    assert len(model.prompts) == 12 + 1  # 12 windows, then one reduce
    assert model.most == 3  # windows at once, never more than the gate


async def test_a_very_long_text_is_summarized_from_windows_spread_over_it() -> None:
    model = _Echo()
    summarizer = Summarizer(
        model,
        ModelSettings(summary_context_tokens=256, summary_max_windows=4),
        count_tokens=lambda t: len(t.split()),
    )
    words = [f"w{i}" for i in range(3000)]  # 12 windows of 256 words
    notes: list[str] = []
    assert (await summarizer.summarize(" ".join(words), notes)).startswith("summary of")
    assert len(model.prompts) == 4 + 1  # windows 0, 4, 7 and 11, then one reduce
    read = set(" ".join(model.prompts[:4]).split())
    assert {"w0", "w255", "w1024", "w1792", "w2999"} <= read  # first, middle, last
    assert "w256" not in read and "w2815" not in read  # windows 1 and 10 were not sent
    assert notes == [
        "summary from 4 of 12 windows of 256 tokens, spread over the document "
        "(models.summary_max_windows)"
    ]
    everything = Summarizer(
        _Echo(),
        ModelSettings(summary_context_tokens=256, summary_max_windows=None),
        count_tokens=lambda t: len(t.split()),
    )
    notes.clear()
    await everything.summarize(" ".join(words), notes)
    assert len(everything.model.prompts) == 12 + 1 and notes == []


async def test_answers_in_content_blocks_are_text_and_summaries_must_shrink() -> None:
    from langchain_core.messages import AIMessage

    class Blocks:
        async def ainvoke(self, prompt: str) -> AIMessage:
            blocks: list[str | dict[str, str]] = [
                {"type": "text", "text": "Revenue grew"},
                {"type": "reasoning", "reasoning": "hidden"},
                {"type": "text", "text": " 18 percent."},
            ]
            return AIMessage(content=blocks)  # type: ignore[arg-type]

    summarizer = Summarizer(Blocks(), FAST, count_tokens=lambda t: len(t.split()))
    summary = await summarizer.summarize("Revenue grew 18 percent in Q3.")
    assert summary == "Revenue grew 18 percent."

    class Echo:
        async def ainvoke(self, prompt: str) -> str:
            return prompt + " and more"

    summarizer = Summarizer(
        Echo(), ModelSettings(summary_context_tokens=256), count_tokens=lambda t: len(t.split())
    )
    with pytest.raises(ModelError, match="no shorter"):
        await summarizer.summarize("word " * 2000)


class _Hinted(Exception):
    """A provider SDK's 429: the response it carries says when to come back."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("rate limited")
        self.status_code = 429
        self.response = type("Response", (), {"headers": {"retry-after": retry_after}})()


async def test_a_retry_waits_as_long_as_the_provider_asks() -> None:
    import time

    model = Flaky([_Hinted("0.3")])
    started = time.monotonic()
    assert (await EmbeddingRunner(model, FAST).embed(["a"])).tolist() == [[1.0, 1.0]]
    assert time.monotonic() - started >= 0.3  # backoff alone is 0 in these tests


def test_retry_after_hints_are_read_and_capped() -> None:
    from tenacity import RetryCallState

    from rag_ingest.models import model_call_policy, retry_after_of

    class Attribute(Exception):
        retry_after = 2.5

    assert retry_after_of(Attribute()) == 2.5
    assert retry_after_of(_Hinted("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # in the past
    assert retry_after_of(_Hinted("soon")) is None
    assert retry_after_of(ValueError()) is None
    wait = model_call_policy(3)["wait"]
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.set_exception((_Hinted, _Hinted("3600"), None))
    assert wait(state) == 60.0  # an hour's hint is an outage: back off, do not park


def test_a_failure_is_transient_when_it_may_pass_with_time() -> None:
    from rag_ingest import errors as e
    from rag_ingest.pipeline import transient

    class RateLimited(Exception):
        status_code = 429

    def model_error(cause: BaseException) -> e.ModelError:
        try:
            raise e.ModelError("embedding failed") from cause
        except e.ModelError as exc:
            return exc

    def store_error(cause: BaseException) -> e.StoreError:
        try:
            raise e.StoreError("vector store write failed") from cause
        except e.StoreError as exc:
            return exc

    passing = [
        e.S3RateLimitError("throttled"),
        e.S3TimeoutError("stalled"),
        e.S3Error("connection broke", retryable=True),
        e.S3ObjectChangedError("412"),
        e.S3IntegrityError("checksum"),
        e.StoreError("chroma down"),
        store_error(ConnectionError("reset")),
        e.DiskFullError("no room"),
        model_error(TimeoutError()),
        model_error(RateLimited("429")),
    ]
    lasting = [
        e.S3NotFoundError("NoSuchKey"),
        e.S3AuthError("403"),
        e.S3PresignedExpiredError("expired"),
        e.EncryptedDocumentError("locked"),
        e.CorruptDocumentError("truncated"),
        e.ParserTimeoutError("hung"),
        e.QuotaExceededError("full"),
        e.UnsafeSourceError("private address"),
        model_error(ValueError("400 Bad Request")),
        store_error(TypeError("str is not valid UTF-8: surrogates not allowed")),
        RuntimeError("a bug"),
    ]
    assert [transient(x) for x in passing] == [True] * len(passing)
    assert [transient(x) for x in lasting] == [False] * len(lasting)


def _chat(model: str) -> object:
    """A chat model set to ``model``, as ChatOllama or ChatAnthropic are."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Chat(FakeListChatModel):
        model: str

    return Chat(model=model, responses=["ok"])


def test_a_model_is_told_by_the_model_it_is_set_to_wherever_a_chain_holds_it() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda
    from pydantic import Field

    from rag_ingest.models import model_identity

    small, large = _chat("llama3.2:1b"), _chat("llama3.1:70b")
    assert model_identity(small).endswith("Chat:llama3.2:1b")
    assert model_identity(small) != model_identity(large)
    prompt = ChatPromptTemplate.from_messages([("human", "{text}")])
    # A chain, a binding, a retry and fallbacks each name the models they call.
    for wrap in (
        lambda m: prompt | m,
        lambda m: m.bind(stop=["\n"]),
        lambda m: m.with_retry(),
        lambda m: (prompt | m).with_fallbacks([large]),
    ):
        assert "Chat:llama3.2:1b" in model_identity(wrap(small))
        assert model_identity(wrap(small)) != model_identity(wrap(_chat("mistral")))
    assert "Chat:llama3.1:70b" in model_identity((prompt | small).with_fallbacks([large]))

    def brief(text: str) -> str:
        return text[:10]

    def verbose(text: str) -> str:
        return text

    class Odd:
        """A caller's model whose property raises."""

        @property
        def model(self) -> str:
            raise RuntimeError("not configured")

    assert model_identity(Odd()).endswith(".Odd")

    # What changes a model's answers: its sampling settings, arguments bound to it or
    # set on it (but not its key), and the prompt template of a chain.
    class Tuned(FakeListChatModel):
        model: str = "m"
        temperature: float = 0.7
        stop: list[str] | None = None
        model_kwargs: dict[str, object] = Field(default_factory=dict)

    def tuned(**settings: object) -> str:
        return model_identity(Tuned(responses=["ok"], **settings))

    assert tuned() == tuned()
    assert "temperature=0.7" in tuned()
    assert tuned(temperature=0.0) != tuned()
    assert tuned(stop=["\n"]) != tuned()
    assert tuned(model_kwargs={"logprobs": True}) != tuned()
    assert tuned(model_kwargs={"logit_bias": {1: 5, "2": 0}, "tool": object()})
    with_key = tuned(model_kwargs={"api_key": "sk-one", "openai_api_key": "sk-two"})
    assert with_key == tuned() and "sk-" not in with_key
    assert model_identity(small.bind(stop=["\n"])) != model_identity(small.bind(stop=["."]))
    french = ChatPromptTemplate.from_messages([("system", "In French."), ("human", "{text}")])
    assert model_identity(french | small) != model_identity(prompt | small)
    assert model_identity(french | small) == model_identity(
        ChatPromptTemplate.from_messages([("system", "In French."), ("human", "{text}")]) | small
    )

    named = model_identity(RunnableLambda(brief))
    assert "RunnableLambda:" in named and named.endswith("_holds_it.<locals>.brief")
    assert named != model_identity(RunnableLambda(verbose))


def test_an_answer_s_key_is_what_was_asked_of_which_model() -> None:
    from rag_ingest.models import answer_key

    key = answer_key("summary", "m1", "prompt", "text")
    assert key == answer_key("summary", "m1", "prompt", "text")
    assert key != answer_key("image", "m1", "prompt", "text")
    assert key != answer_key("summary", "m2", "prompt", "text")
    assert key != answer_key("summary", "m1", "prompt", "text!")
    assert answer_key("s", "m", "ab", "c") != answer_key("s", "m", "a", "bc")
    assert answer_key("s", "m", b"text") == answer_key("s", "m", "text")


def test_a_summary_s_key_holds_its_windows_and_a_picture_s_its_masking() -> None:
    from rag_ingest.models import ImageDescriber

    model = _chat("m")
    count = len
    one = Summarizer(model, ModelSettings(summary_max_windows=1), count_tokens=count)
    all_ = Summarizer(model, ModelSettings(summary_max_windows=None), count_tokens=count)
    wide = Summarizer(model, ModelSettings(summary_context_tokens=9000), count_tokens=count)
    assert len({s.key("text") for s in (one, all_, wide)}) == 3
    assert one.key("text") != one.key("other text")
    describer = ImageDescriber(model, ModelSettings())
    assert describer.key(b"png", "image/png", True) != describer.key(b"png", "image/png", False)
    assert describer.key(b"png", "image/png", True) != describer.key(b"jpg", "image/png", True)
    other = ImageDescriber(_chat("n"), ModelSettings())
    assert describer.key(b"png", "image/png", True) != other.key(b"png", "image/png", True)


async def test_a_summary_counts_its_calls_and_the_tokens_its_model_reports() -> None:
    from langchain_core.messages import AIMessage

    class Model:
        down = 1  # its first call fails

        async def ainvoke(self, prompt: str) -> AIMessage:
            if self.down:
                self.down -= 1
                raise _Status(503)
            return AIMessage(
                content="short.",
                usage_metadata={"input_tokens": 300, "output_tokens": 5, "total_tokens": 305},
            )

    settings = ModelSettings(summary_context_tokens=256, summary_max_windows=None)
    summarizer = Summarizer(Model(), settings, count_tokens=lambda t: len(t.split()))
    usage: dict[str, int] = {}
    text = "\n\n".join(" ".join(["word"] * 200) for _ in range(3))
    assert await summarizer.summarize(text, usage=usage) == "short."
    # Three windows mapped, then their partial summaries reduced in one call.
    assert usage == {
        "summary_calls": 4,
        "summary_input_tokens": 1200,
        "summary_output_tokens": 20,
        "summary_failed_calls": 1,
    }
