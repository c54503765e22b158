"""One validated settings object, made of small documented parts.

Environment variables use the prefix ``RAG_INGEST_`` and ``__`` between a
part and its field: ``RAG_INGEST_TRANSFER__PART_SIZE=16777216``,
``RAG_INGEST_S3__ENDPOINT_URL=http://127.0.0.1:8333``.

Peak download memory per object is about
``read_size x min(concurrency, parts)`` plus a small constant: parts stream
straight to their offsets in the file and are never buffered whole.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_ingest._redact import register_secret

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PART_SIZE",
    "ChunkSettings",
    "FileConfig",
    "KiB",
    "LimitSettings",
    "MiB",
    "ModelSettings",
    "ParseSettings",
    "PipelineSettings",
    "RetrySettings",
    "S3Settings",
    "Settings",
    "StoreSettings",
    "TransferSettings",
    "load_config_file",
    "load_settings",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_MAX_ATTEMPTS = 5
# Chosen by benchmarks/s3_download.py on SeaweedFS (see README): 8 MiB parts
# x 8 in flight saturated loopback; larger parts only delay the first byte.
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_CONCURRENCY = 8
DEFAULT_READ_SIZE = 1 * MiB


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class S3Settings(_Part):
    """Where S3 is and who we are to it."""

    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO, SeaweedFS). None: AWS, or "
        "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / the AWS profile's endpoint_url when set, "
        "as boto3 takes them. Uses path-style addressing.",
    )
    region: str | None = Field(
        default=None,
        description="Region when the URL does not say. None: AWS_REGION, the profile, "
        "else discovered from the bucket (x-amz-bucket-region).",
    )
    profile: str | None = Field(default=None, description="AWS shared-config profile name.")
    anonymous: bool = Field(default=False, description="Send unsigned requests (public buckets).")
    access_key_id: str | None = Field(
        default=None, description="Explicit access key; None uses the standard AWS chain."
    )
    secret_access_key: SecretStr | None = Field(default=None, description="Explicit secret key.")
    session_token: SecretStr | None = Field(default=None, description="Explicit session token.")
    addressing_style: Literal["auto", "virtual", "path"] = Field(
        default="auto",
        description="auto: virtual-hosted on AWS (path-style for dotted buckets), path-style "
        "on a custom endpoint.",
    )
    verify_tls: bool = Field(default=True, description="Verify TLS certificates.")
    ca_bundle: Path | None = Field(
        default=None,
        description="CA certificates to verify TLS with (a PEM file, or a directory of "
        "them), as a proxy that inspects TLS needs. None: AWS_CA_BUNDLE, else the AWS "
        "profile's ca_bundle, as boto3 takes them, else SSL_CERT_FILE / SSL_CERT_DIR, "
        "else certifi's bundle.",
    )
    trusted_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts whose URLs may use plain http and private addresses (an "
        "intranet document server): names, name:port, or IP networks such as 10.0.0.0/8. "
        "Fetched unsigned, as plain URLs. Other loopback, private and link-local "
        "addresses are refused.",
    )

    proxy: SecretStr | None = Field(
        default=None,
        description="An HTTP proxy for S3 and web downloads: http://[user:password@]host:port "
        "(secret: never logged). None: the environment's (HTTPS_PROXY, HTTP_PROXY, "
        "ALL_PROXY), as boto3 takes them. NO_PROXY's hosts and loopback are reached "
        "directly either way.",
    )
    proxy_from_env: bool = Field(
        default=True,
        description="Take a proxy from the environment when proxy is None; false: connect "
        "directly.",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.rstrip("/")
            if not value.startswith(("http://", "https://")):
                raise ValueError("endpoint_url must start with http:// or https://")
        return value

    @field_validator("trusted_hosts")
    @classmethod
    def _trusted_hosts(cls, value: list[str]) -> list[str]:
        from rag_ingest.s3.safety import TrustedHosts

        TrustedHosts(value)  # raises ValueError naming a bad entry
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from rag_ingest.s3.proxy import Proxy

            Proxy.parse(value.get_secret_value(), "s3.proxy")  # raises naming the problem
        return value

    @model_validator(mode="after")
    def _remember_secrets(self) -> S3Settings:
        for secret in (self.secret_access_key, self.session_token):
            if secret is not None:
                register_secret(secret.get_secret_value())
        return self


class RetrySettings(_Part):
    """One retry policy for every S3 call: full-jitter exponential backoff, capped twice."""

    max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS, ge=1, description="Attempts per request, the first included."
    )
    base_delay: float = Field(
        default=0.1, ge=0, description="First backoff ceiling in seconds; doubles per attempt."
    )
    max_delay: float = Field(
        default=20.0, ge=0, description="Longest single wait, Retry-After included."
    )
    deadline: float = Field(
        default=300.0, gt=0, description="Total seconds one request may spend retrying."
    )


class TransferSettings(_Part):
    """How bytes move: part sizes, parallelism, timeouts, minimum rate."""

    multipart_threshold: int = Field(
        default=DEFAULT_PART_SIZE,
        ge=64 * KiB,
        description="Objects up to this size are one GET; larger ones are ranged parts.",
    )
    part_size: int = Field(
        default=DEFAULT_PART_SIZE, ge=64 * KiB, description="Bytes per ranged GET."
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY, ge=1, description="Ranged GETs in flight per object."
    )
    engine: Literal["aiohttp", "httpcore"] = Field(
        default="aiohttp",
        description="What moves httpx's bytes: aiohttp (1.7-2.1x the small GETs/s, measured) "
        "or httpx's own httpcore.",
    )
    max_connections: int = Field(
        default=64, ge=1, description="Connection budget of one client, all objects together."
    )
    read_size: int = Field(
        default=DEFAULT_READ_SIZE,
        ge=4 * KiB,
        description="Bytes buffered per connection read (httpcore's 64 KiB default halves "
        "throughput).",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(
        default=30.0, gt=0, description="Seconds with no byte received before a read fails."
    )
    min_rate: int = Field(
        default=32 * KiB,
        ge=0,
        description="Bytes/s below which a transfer is failed (and resumed); 0 disables.",
    )
    rate_window: float = Field(
        default=10.0, gt=0, description="Seconds over which the minimum rate is measured."
    )
    verify_checksum: bool = Field(
        default=True,
        description="Check x-amz-checksum-* or the MD5 ETag when S3 offers one (a multipart "
        "upload's composite checksum or ETag part by part).",
    )


class LimitSettings(_Part):
    """Hard limits that protect the process."""

    max_object_size: int = Field(
        default=5 * GiB,
        ge=1,
        description="Refuse larger objects and uploads (an object's size is checked first).",
    )
    max_read_size: int = Field(
        default=64 * MiB, ge=1, description="Largest object read() will hold in memory."
    )


class ParseSettings(_Part):
    """Tier 2: how documents are parsed, and the limits each parse runs under."""

    mode: Literal["process", "thread"] = Field(
        default="process",
        description="process: isolated spawn workers (a crash or hang kills one worker, not "
        "us); thread: in-process, for small trusted inputs and tests.",
    )
    workers: int | None = Field(default=None, ge=1, description="Parser workers; None = CPUs.")
    timeout: float = Field(
        default=600.0,
        gt=0,
        description="Wall-clock seconds per document (a part of one), whatever its worker "
        "did: one kept from a CPU that long is killed too.",
    )
    cpu_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds of its worker's CPU time per document (a part of one), and as "
        "many by the wall clock, before the worker is killed (a spinning hang); or seconds "
        "that CPU time stands still (a deadlock). Workers run at worker_nice: kept from a "
        "CPU by other work, a sound parse is not stopped for the wait. Thread mode: the "
        "wall clock, at the lower of the two.",
    )
    memory_limit: int = Field(
        default=3 * GiB,
        ge=64 * MiB,
        description="Address-space limit of a parser worker (all parsers loaded: ~1.2 GiB).",
    )
    worker_nice: int = Field(
        default=15,
        ge=0,
        le=19,
        description="Niceness of workers: the event loop and the store run first.",
    )
    max_tasks_per_worker: int = Field(
        default=1000,
        ge=1,
        description="Recycle a worker after this many documents (parsers leak ~0.1 MiB per "
        "document; a recycle costs ~5 s of imports).",
    )
    trim_memory: bool = Field(
        default=True,
        description="Hand memory freed after documents back to the system (glibc's "
        "malloc_trim), in each parser worker and a DocumentProcessor's own process: when "
        "it falls idle, and every 30 s while documents keep coming. Without it a "
        "long-lived processor kept each pass's peak (measured). No effect without glibc.",
    )
    keep_workers: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a RagIngestLoader's workers are kept idle after a load, for "
        "the next load with the same parse settings (a notebook's next cell): it then skips "
        "their start (~0.5 s) and the imports they finished while idle. 0: closed after "
        "each load. A DocumentProcessor keeps its own until it is closed.",
    )
    warm_up: bool = Field(
        default=True,
        description="Each worker, while idle, imports every parser and reads a bundled sample "
        "of each type, so a type's first document does not pay it (0.02-0.6 s). False: a "
        "type's first document in a worker imports its parser; a short run on a busy "
        "machine saves the CPU (1.6-1.8 s a worker, measured).",
    )
    pdf_mode: Literal["fast", "tables", "layout"] = Field(
        default="tables",
        description="tables: pymupdf4llm legacy Markdown, tables searched on pages with "
        "vector drawings (same output as PyMuPDF4LLMLoader; 15 ms/page on text pages, ~71 "
        "with drawings); fast: never search tables; layout: its layout model (~17x slower).",
    )
    pdf_split_pages: int = Field(
        default=32,
        ge=0,
        description="A PDF of twice this many pages or more is parsed in page ranges on "
        "every worker at once (process mode, 2+ workers); 0: never split.",
    )
    pdf_drop_running_lines: bool = Field(
        default=True,
        description="Drop a PDF's running headers and footers: a short line at the top or "
        "bottom of at least 3 pages and 40% of them, digits aside ('Page 7 of 90'). "
        "Headings and table rows are always kept.",
    )
    attachments: bool = Field(
        default=True,
        description="Read the files attached to a PDF (embedded files, a portfolio's, file "
        "attachment annotations) and the objects embedded in a DOCX, PPTX or XLSX (an Excel "
        "table in a report, a PDF in a slide) after the document's own text, each as a file "
        "of its type (its chunks' 'attachment' names it; one level: their own are not "
        "read). An e-invoice's XML (ZUGFeRD, Factur-X, XRechnung) is left out: the PDF "
        "shows it.",
    )
    ocr: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Read scanned pages (a PDF page with next to no text over a large image, "
        "or text in unmapped fonts) and image files by OCR (RapidOCR, extra 'ocr'; 2.8 s for "
        "a dense page on one core, measured), 8 pages a task. auto: when the extra is "
        "installed; on: required (the processor refuses to start without it); off: never. "
        "Scans left unread without OCR are named in a warning, and their documents read "
        "again once it is on.",
    )
    ocr_dpi: int = Field(
        default=150,
        ge=50,
        le=600,
        description="Resolution pages are rendered at for OCR (10-12 pt text read the same "
        "from 72 to 200 dpi, measured; time grows with it).",
    )
    ocr_images: bool = Field(
        default=True,
        description="With OCR on, read PNG, JPEG, TIFF (each frame a page), GIF, BMP and "
        "WebP files as scans; an image with no text is skipped when a walk or listing found "
        "it. False: images are skipped unread, as without OCR.",
    )
    ocr_pictures: bool = Field(
        default=True,
        description="With OCR on, read the pictures inside DOCX, PPTX, XLSX, ODT, ODP, EPUB, "
        ".doc and .ppt files, and an HTML, MHTML or Markdown file's data: URI pictures (a "
        "scan pasted into a report, a slide's screenshot): their text, where it has 16 "
        "letters or more, goes where the picture sits, its chunks marked ocr. A picture "
        "under 100x100 pixels is passed over; at most 200 a document are read. False: "
        "pictures are not read.",
    )
    archive_cache: bool = Field(
        default=True,
        description="Remember each zip or tar file's, and each mailbox message's, parse and "
        "chunks by the SHA-256 of its bytes, per session and source, next to the ledger: a "
        "changed archive parses and chunks only its changed files again, a mailbox its new "
        "and changed messages. Removed with its session or when pruned.",
    )
    xlsx_stream_size: int = Field(
        default=4 * MiB,
        ge=0,
        description="A workbook whose sheets expand past this many bytes of XML is read as "
        "rows by python-calamine, one table per sheet, not by docling (measured: docling "
        "~0.95 s and ~50 MB per MB of sheet XML, refusing a sheet past 128 MiB; calamine "
        "~0.016 s). docling also finds separate tables within a sheet. 0: always calamine.",
    )
    markup_fast_size: int = Field(
        default=4 * MiB,
        ge=0,
        description="An HTML page or Markdown file past this many bytes is read without "
        "docling: a page converted by html-to-markdown (Rust), Markdown read as its source "
        "(measured: docling ~3.1 s per MB of HTML of headings and paragraphs, 4-9 s of "
        "/usr/share/doc's pages, so a page of 13-38 MB outlasts parse.timeout; "
        "html-to-markdown ~0.05 s; Markdown: see parse.markdown_fast_size). docling's path "
        "also reads their pictures and drops more of a page's chrome. 0: always without.",
    )
    markdown_fast_size: int = Field(
        default=256 * KiB,
        ge=0,
        description="A Markdown file past this many bytes (or parse.markup_fast_size, the "
        "smaller) is read as its source, its HTML comments left out, not by docling "
        "(measured on /usr/share/doc's Markdown: docling 8-36 s per MB of it, so 4 MB "
        "outlasted parse.timeout; the source 0.01-0.08 s a file). docling's path also "
        "joins wrapped lines and reads links and pictures. 0: always its source.",
    )
    html_chrome: Literal["markup", "guess"] = Field(
        default="markup",
        description="What of a web page's chrome (menus, related posts, share buttons, "
        "comment forms, footers) is left out. 'markup': what its markup marks (all but its "
        "one <main>, <nav>, landmark roles, documentation generators' navigation). 'guess': "
        "what trafilatura (extra 'web') judges boilerplate, too, on pages docling reads "
        "(up to parse.markup_fast_size); for news, blogs and forums: on documentation pages "
        "it drops reference tables and code not in <pre>.",
    )
    max_unzipped_size: int = Field(
        default=512 * MiB,
        ge=1,
        description="Office/EPUB archives or gzip/bzip2/xz files expanding past this are refused.",
    )
    max_zip_ratio: float = Field(
        default=200.0, gt=1, description="OOXML members compressed more than this are refused."
    )


class FileConfig(_Part):
    """How one file type is chunked."""

    strategy: Literal["prose", "markdown", "code", "table"] = "prose"
    chunk_tokens: int | None = Field(default=None, ge=16)
    overlap_tokens: int | None = Field(default=None, ge=0)


def _default_file_configs() -> dict[str, FileConfig]:
    return {
        "pdf": FileConfig(strategy="markdown"),
        "xps": FileConfig(strategy="markdown"),
        "mobi": FileConfig(strategy="markdown"),
        "fb2": FileConfig(strategy="markdown"),
        "docx": FileConfig(strategy="markdown"),
        "pptx": FileConfig(strategy="markdown", chunk_tokens=256),
        "doc": FileConfig(strategy="markdown"),
        "ppt": FileConfig(strategy="markdown", chunk_tokens=256),
        "vsdx": FileConfig(strategy="markdown", chunk_tokens=256),
        "svg": FileConfig(strategy="markdown", chunk_tokens=256),
        "odt": FileConfig(strategy="markdown"),
        "odp": FileConfig(strategy="markdown", chunk_tokens=256),
        "odg": FileConfig(strategy="markdown", chunk_tokens=256),
        "epub": FileConfig(strategy="markdown"),
        **{
            sheets: FileConfig(strategy="markdown", chunk_tokens=384, overlap_tokens=0)
            for sheets in ("xlsx", "xls", "xlsb", "ods", "uos")
        },
        "uot": FileConfig(strategy="markdown"),
        "uop": FileConfig(strategy="markdown", chunk_tokens=256),
        "html": FileConfig(strategy="markdown"),
        "mhtml": FileConfig(strategy="markdown"),
        "markdown": FileConfig(strategy="markdown"),
        "notebook": FileConfig(strategy="markdown"),
        "email": FileConfig(strategy="markdown"),
        "csv": FileConfig(strategy="table", chunk_tokens=384, overlap_tokens=0),
        "json": FileConfig(strategy="markdown", chunk_tokens=384, overlap_tokens=0),
        "yaml": FileConfig(strategy="markdown", chunk_tokens=384, overlap_tokens=0),
        "rtf": FileConfig(strategy="markdown"),
        "transcript": FileConfig(strategy="prose"),
        "calendar": FileConfig(strategy="markdown"),
        "man": FileConfig(strategy="markdown"),
        "contacts": FileConfig(strategy="markdown"),
        "image": FileConfig(strategy="markdown"),
        "text": FileConfig(strategy="prose"),
        "code": FileConfig(strategy="code", chunk_tokens=384, overlap_tokens=32),
    }


class ChunkSettings(_Part):
    """Chunk sizes in tokens (tiktoken, loaded from a local cache only)."""

    encoding: str = Field(default="cl100k_base", description="tiktoken encoding name.")
    chunk_tokens: int = Field(default=512, ge=16, description="Target tokens per chunk.")
    overlap_tokens: int = Field(default=64, ge=0, description="Tokens shared by neighbours.")
    whole_document_tokens: int = Field(
        default=256, ge=0, description="Documents up to this many tokens stay one chunk."
    )
    min_chunk_tokens: int = Field(
        default=32,
        ge=0,
        description="A piece under this many tokens (at most a quarter of the chunk size), "
        "or a Markdown heading alone, is joined to its neighbour (the pair split evenly "
        "when too big) in a document of several chunks. 0: only lone headings are joined.",
    )
    file_configs: dict[str, FileConfig] = Field(
        default_factory=_default_file_configs,
        description="Per file type: strategy, chunk size and overlap (None = the defaults).",
    )
    fit_embedder: bool = Field(
        default=True,
        description="Shrink the sizes above so a chunk fits the embedder's input window, "
        "when the embedder declares one (MiniLM: 256 word pieces): a model truncates "
        "longer input, and the rest of the chunk could never be found.",
    )
    mask_credentials: bool = Field(
        default=True,
        description="Mask the credentials a document's text holds (API keys and tokens of "
        "known forms, AWS and Azure keys, private keys, a URL's password, a value given to a "
        "setting named for a password, secret, token or API key) in its chunks, '*' for "
        "each character, and warn: a store an agent searches must not hand them out.",
    )
    embed_header: bool = Field(
        default=False,
        description="Embed each chunk under a line naming its file and section "
        "('guide.md > Install > Linux'; code: 'client.py > Client.fetch'); the stored "
        "text stays the chunk's own. Helps questions that name the document or section "
        "among many alike, costs some on questions that quote a chunk's words "
        "(benchmarks/embed_header.py).",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


# What the minilm embedder computes in (models.MiniLMEmbeddings checks its argument by it).
MiniLMPrecision = Literal["auto", "float32", "bfloat16"]


class ModelSettings(_Part):
    """Tier 3: embeddings and summaries, each call timed and retried."""

    embedder: str = Field(
        default="minilm",
        description="minilm: all-MiniLM-L6-v2, local and offline (extra 'minilm'); "
        "hash: fast deterministic, for tests and benchmarks; or 'package.module:attribute', "
        "a LangChain Embeddings or a factory of one.",
    )
    summarizer: str | None = Field(
        default=None,
        description="'package.module:attribute': a LangChain chat model or Runnable (or a "
        "factory of one) that summarizes each document; None: no summaries.",
    )
    image_describer: str | None = Field(
        default=None,
        description="'package.module:attribute': a multimodal chat model (or a factory of "
        "one) that describes the images in documents; None: images are not described.",
    )
    minilm_precision: MiniLMPrecision = Field(
        default="auto",
        description="What the minilm embedder computes in: auto, bfloat16 on a CPU that "
        "does so natively (AMX or AVX512-BF16; 2.5-2.8x float32's texts/s here, the vectors' "
        "cosine to float32's at least 0.99997), else float32.",
    )
    batch_size: int = Field(default=64, ge=1, description="Texts per embedding call.")
    reuse_vectors: bool = Field(
        default=True,
        description="A chunk whose text the store already holds, for an earlier version "
        "of its source or for a twin (the same version in another session, or the same "
        "bytes under another name), keeps that stored vector (Chroma); only the rest are "
        "embedded, and an embedding that fails midway keeps the batches done for the "
        "next attempt. False: every chunk is embedded.",
    )
    reuse_answers: bool = Field(
        default=True,
        description="A summary or image description is kept in the ledger with its "
        "source, and one asked for again (the same model, prompt and text or picture: a "
        "re-ingest, a changed document's unchanged pictures, a logo in every deck, a "
        "twin in another session) is taken from there instead of the model. False: "
        "every one is asked for.",
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds per embedding call.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts per model call.")
    summary_timeout: float = Field(default=120.0, gt=0, description="Seconds per summary call.")
    summary_context_tokens: int = Field(
        default=6000, ge=256, description="Tokens per summary call; longer texts map-reduce."
    )
    summary_max_windows: int | None = Field(
        default=16,
        ge=1,
        description="A text of more windows than this is summarized from this many, spread "
        "evenly over it (the first and the last among them); None: from every window.",
    )
    max_images: int = Field(
        default=20, ge=0, description="Images described per document (with an image model)."
    )


class StoreSettings(_Part):
    """Where chunks and the ledger live."""

    persist_dir: Path = Field(
        default=Path("rag_ingest_data"), description="Embedded Chroma and the ledger live here."
    )
    vectorstore: str | None = Field(
        default=None,
        description="Your own LangChain VectorStore instead of Chroma, as "
        "'package.module:attribute' (the store, or a class or function called with no "
        "arguments to make one); it embeds with its own embeddings. The ledger stays in "
        "persist_dir.",
    )
    chroma_url: str | None = Field(
        default=None, description="A Chroma server (http://host:8000) instead of embedded."
    )
    chroma_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="HTTP headers for the server at chroma_url: its token "
        "({'X-Chroma-Token': ...} or {'Authorization': 'Bearer ...'}) or what a proxy in "
        "front of it asks for. Secret: never logged; set them by environment.",
    )
    chroma_tenant: str = Field(default="default_tenant", description="Chroma server tenant.")
    chroma_database: str = Field(default="default_database", description="Chroma server database.")
    collection: str = Field(default="rag_ingest", description="Chroma collection name.")
    embedded_mode: Literal["server", "in-process"] = Field(
        default="server",
        description="server: the embedded store is served by a private 'chroma run' child "
        "(its writes hold that process's GIL, not ours: measured 100 ms loop stalls "
        "in-process), which other processes on the same persist_dir join, with its "
        "ledger; in-process: chromadb.PersistentClient in this interpreter (a directory "
        "another process serves is joined).",
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one request to a Chroma server may take (chromadb's HttpClient "
        "sets none: a server that goes quiet would hang every write).",
    )
    min_free_mb: int = Field(
        default=64,
        ge=0,
        description="Writes stop (StoreError) while persist_dir's disk has less free: a "
        "Chroma that runs out mid-write stops answering, and the ledger cannot record. "
        "0: no check.",
    )
    max_attempts: int = Field(
        default=4,
        ge=1,
        description="Attempts per store call on a transient failure (connection lost, "
        "timeout, 429/5xx); safe, since writes are upserts and deletes by ID. Our own "
        "Chroma server, if it exited or hangs, is restarted before the next attempt (and "
        "by its owner's watchdog while no call is made).",
    )

    @model_validator(mode="after")
    def _one_store(self) -> StoreSettings:
        if self.vectorstore and self.chroma_url:
            raise ValueError("give vectorstore or chroma_url, not both")
        return self


def check_source_prefix(entry: object) -> None:
    """ValueError unless ``entry`` is an ``allowed_sources`` prefix: "" would mean the
    current directory and "*" nothing, neither what was meant."""
    if not isinstance(entry, str) or not entry.strip() or any(c in entry for c in "*?["):
        raise ValueError(
            f"allowed_sources entry {entry!r}: give a prefix such as "
            "'s3://bucket/uploads/', 'https://host/' or a directory (no globs)"
        )


class PipelineSettings(_Part):
    """Concurrency of each stage, and backpressure."""

    downloads: int = Field(default=8, ge=1, description="Documents downloading at once.")
    parses: int | None = Field(
        default=None,
        ge=1,
        description="Documents handed to the parser pool at once; None = workers, plus one "
        "waiting in process mode so a worker never idles between documents.",
    )
    embeddings: int = Field(default=2, ge=1, description="Embedding calls at once.")
    summaries: int = Field(default=2, ge=1, description="Summary calls at once.")
    images: int = Field(default=2, ge=1, description="Image-description calls at once.")
    io_threads: int = Field(default=8, ge=1, description="Thread pool for blocking I/O.")
    store_writers: int = Field(
        default=4,
        ge=1,
        description="Threads for store and ledger calls when Chroma runs as a server "
        "(1 in-process).",
    )
    store_batch_docs: int = Field(
        default=32,
        ge=1,
        description="Most documents per store write (at most in_flight / 2, so a filling "
        "batch never stops the pipeline): one upsert for many documents costs Chroma a "
        "fifth of one per document (measured).",
    )
    store_linger: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a store write may wait for documents still on their way; "
        "a document with nothing behind it is written at once.",
    )
    queue_size: int = Field(
        default=1000, ge=1, description="Pending submissions before QueueFullError."
    )
    in_flight: int = Field(
        default=32, ge=1, description="Documents in the pipeline at once (memory stays flat)."
    )
    preload: bool = Field(
        default=False,
        description="start() returns once the parser workers have started (imported the "
        "parsers, parsed their samples) and the embedder's model is loaded, so a server's "
        "first document waits for neither. False: on the first document that needs them.",
    )
    s3_thread: bool = Field(
        default=True,
        description="Run the processor's own S3 client on a private event-loop thread: "
        "transfers (sends, file writes, hashing) then never stall the caller's loop.",
    )
    freeze_gc: bool = Field(
        default=True,
        description="gc.freeze() after start-up: full collections of import-time objects "
        "stalled the event loop 60-97 ms (measured).",
    )
    allowed_sources: list[str] | None = Field(
        default=None,
        description="The sources the processor and loader take, as prefixes of a source's "
        "identity ('s3://bucket/uploads/', 'https://docs.example.com/', a directory such as "
        "'/srv/docs'); None takes any. Uploads are always taken. Set it when users name "
        "the sources: a web backend must not index its own files or other buckets.",
    )

    session_max_documents: int | None = Field(
        default=None,
        ge=1,
        description="Most documents (sources with chunks) a session may hold; a document "
        "that would pass it fails with QuotaExceededError before it is embedded. None: no "
        "limit. A new version of a source the session holds replaces it, not adds to it.",
    )
    session_max_chunks: int | None = Field(
        default=None,
        ge=1,
        description="Most chunks a session may hold, documents in flight counted; as "
        "session_max_documents.",
    )
    session_max_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Most bytes of documents (each source's size: an object's, a file's, "
        "an upload's) a session may hold, documents in flight counted; one that would "
        "pass it fails with QuotaExceededError before it is downloaded. As "
        "session_max_documents.",
    )

    @field_validator("allowed_sources")
    @classmethod
    def _allowed_sources(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            check_source_prefix(entry)
        return value


class Settings(BaseSettings):
    """Everything rag_ingest can be told. Build from defaults, a dict or the environment."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_INGEST_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
        # A refused value is not echoed: a proxy URL or a key may carry a password.
        hide_input_in_errors=True,
    )

    s3: S3Settings = Field(default_factory=S3Settings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    transfer: TransferSettings = Field(default_factory=TransferSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    parse: ParseSettings = Field(default_factory=ParseSettings)
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    temp_dir: Path | None = Field(
        default=None, description="Where downloads are staged; None: the system temp dir."
    )
    progress: bool = Field(default=True, description="Show tqdm progress bars.")

    @property
    def staging_dir(self) -> Path:
        """Where downloads and uploads are staged: ``temp_dir``, else the system's."""
        return self.temp_dir or Path(tempfile.gettempdir())


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The settings a ``config.py``-style file defines (like gunicorn.conf.py).

    The file is executed as Python; its top-level names that match settings
    parts (``s3``, ``retry``, ...) are returned. Other public, non-module names
    are an error, so a typo does not pass silently.
    """
    import runpy
    import types

    from rag_ingest.errors import ConfigurationError

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"config file not found: {file}")
    try:
        namespace = runpy.run_path(str(file))
    except Exception as exc:
        raise ConfigurationError(f"config file {file} failed: {type(exc).__name__}: {exc}") from exc
    known = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        if name not in known:
            raise ConfigurationError(f"{file}: unknown setting {name!r} (known: {sorted(known)})")
        values[name] = value
    return values


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def load_settings(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Settings by increasing priority: defaults, the config file, ``RAG_INGEST_*``, overrides."""
    from pydantic import ValidationError
    from pydantic_settings import EnvSettingsSource

    from rag_ingest.errors import ConfigurationError

    data = load_config_file(config_file) if config_file else {}
    data = _deep_merge(data, EnvSettingsSource(Settings)())
    data = _deep_merge(data, overrides or {})
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']} (got {error.get('input')!r})"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
