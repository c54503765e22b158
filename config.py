"""rag_ingest deployment configuration (read by the ``rag-ingest`` CLI, like gunicorn.conf.py).

The CLI reads ``./config.py`` when present, or the file given with ``--config``.
Priority, lowest first: built-in defaults, this file, ``RAG_INGEST_*`` environment
variables (``RAG_INGEST_TRANSFER__PART_SIZE=16777216``), command-line flags.
Every value below is the built-in default; a test keeps the two equal.
Secrets do not belong here: use the AWS credential chain or environment variables.
"""

_KiB = 1024  # names starting with "_" are helpers, not settings
_MiB = 1024 * _KiB

s3 = {
    # Custom S3-compatible endpoint (MinIO, SeaweedFS); None = AWS, or AWS_ENDPOINT_URL_S3,
    # AWS_ENDPOINT_URL, or the AWS profile's endpoint_url (as boto3 takes them).
    "endpoint_url": None,
    # Region when the URL does not say; None = AWS_REGION/profile, else asked of the bucket.
    "region": None,
    # Shared-config profile; None = AWS_PROFILE or "default".
    "profile": None,
    # Unsigned requests, for public buckets only.
    "anonymous": False,
    # Explicit keys override the AWS credential chain; keep them out of this file.
    "access_key_id": None,
    "secret_access_key": None,
    "session_token": None,
    # "auto": virtual-hosted on AWS (path-style for dotted buckets), path-style elsewhere.
    "addressing_style": "auto",
    # Never turn off outside a lab: it allows a man in the middle.
    "verify_tls": True,
    # CA certificates to verify TLS with (a PEM file or a directory), as a proxy that
    # inspects TLS needs. None: AWS_CA_BUNDLE, else the AWS profile's ca_bundle
    # (~/.aws/config), else SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle.
    "ca_bundle": None,
    # Hosts vouched for (an intranet document server): their URLs may use plain http and
    # private addresses. Names, name:port, or networks ("wiki.corp", "10.0.0.0/8"). Any
    # other URL must be https to a public address, so one handed in by a user cannot
    # reach the metadata service or the private network.
    "trusted_hosts": [],
    # An HTTP proxy for S3 and web downloads, "http://host:port" (a password in it is a
    # secret: set it by environment, RAG_INGEST_S3__PROXY). None: the environment's
    # HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, as boto3 takes them. NO_PROXY's hosts and
    # loopback (a local MinIO or SeaweedFS) are reached directly either way.
    "proxy": None,
    # False: never take a proxy from the environment.
    "proxy_from_env": True,
}

retry = {
    # SDK standard is 3; 5 rides out a typical SlowDown burst.
    "max_attempts": 5,
    # First backoff ceiling (s); doubles per attempt, full jitter spreads clients apart.
    "base_delay": 0.1,
    # Longest single wait (s), Retry-After included, so one hint cannot stall a batch.
    "max_delay": 20.0,
    # Total seconds one request may spend retrying: bounded even under endless 503s.
    "deadline": 300.0,
}

transfer = {
    # Objects up to this size come in one GET; 8 MiB matches AWS's part guidance.
    "multipart_threshold": 8 * _MiB,
    # Ranged GET size; measured on loopback, 8 MiB x 8 saturates the link (see README).
    "part_size": 8 * _MiB,
    # Ranged GETs in flight per object (~85 MB/s per connection on AWS).
    "concurrency": 8,
    # What moves the bytes under httpx: aiohttp did 1.7-2.1x httpcore's small GETs/s here.
    "engine": "aiohttp",
    # Connection budget of one client, all objects together.
    "max_connections": 64,
    # Per-connection read size (httpcore: bytes per socket read, its 64 KiB default halves
    # throughput; aiohttp: bytes buffered before the socket is paused).
    "read_size": 1 * _MiB,
    # Seconds to connect: a dead endpoint fails fast.
    "connect_timeout": 10.0,
    # Seconds without a byte before a read fails (then resumes).
    "read_timeout": 30.0,
    # Bytes/s below which a transfer is cut and resumed: a 1 B/s drip cannot hang us.
    "min_rate": 32 * 1024,
    # Window (s) over which min_rate is measured, so short hiccups are tolerated.
    "rate_window": 10.0,
    # Verify x-amz-checksum-* or the MD5 ETag whenever S3 offers one; a multipart upload's
    # composite checksum or ETag part by part (part sizes from HEAD ?partNumber=). On by
    # default: it costs ~0.4 s per GiB here (CRC32, on 2 busy cores; measured).
    "verify_checksum": True,
}

limits = {
    # Refuse larger objects before downloading a byte, and larger uploads (a web
    # backend's client) as they are written, so none can fill the disk.
    "max_object_size": 5 * 1024 * _MiB,
    # Largest object read() will hold in memory.
    "max_read_size": 64 * _MiB,
}

parse = {
    # "process": spawn workers, so a parser crash, hang or blow-up costs one document only.
    "mode": "process",
    # Parser worker processes; None = one per CPU.
    "workers": None,
    # docling/PyMuPDF can hang: a document's (a part's) worker is killed past either limit.
    # CPU seconds (and as many by the wall clock): a hang that spins; or seconds its CPU
    # time stands still: a deadlock. Not the wall clock alone, since workers run at
    # worker_nice: beside busy loops on both cores, 0.15 s of a worker's work took 4.3 s,
    # and a sound parse failed a 120 s wall-clock limit.
    "cpu_timeout": 120.0,
    # Wall-clock seconds, whatever the worker did (kept from a CPU that long too).
    "timeout": 600.0,
    # Address-space limit per worker (all parsers loaded use ~1.2 GiB of address space).
    "memory_limit": 3 * 1024 * _MiB,
    # Workers run at this niceness so the event loop (downloads, progress, web requests)
    # and the store are scheduled first on a busy machine; parsing is batch work.
    # Measured (200-document benchmark, 7 interleaved pairs, 2 cores): 15 against 5 gave
    # 28.4 against 25.6 docs/s (median; faster in 6 pairs, equal in 1), loop-lag p99
    # 7.0 against 9.0 ms and less CPU for the same work; the max lag was alike. 19
    # against 15 (5 pairs, 2026-12-07): 37.6 against 37.1 docs/s (medians, within the
    # pairs' spread), p99 5.4 against 6.1 ms, max 31-47 against 21-40 ms: no gain.
    "worker_nice": 15,
    # Recycle a worker after this many documents (parsers leak; docling #2829). Measured:
    # a worker grew 0.1 MiB per document (485 -> 549 MiB over 550), while a recycle costs
    # ~5 s of spawn and parser imports; at 100 it halved one worker's throughput.
    "max_tasks_per_worker": 1000,
    # Hand memory freed after documents back to the system (glibc's malloc_trim): in each
    # worker once idle for a second, in a DocumentProcessor's process when its last
    # document is done; every 30 s while documents keep coming. Measured (2026-12-07),
    # one processor ingesting /usr/share/doc/nodejs (303 files) four times, 3 s after
    # each pass: its process 244, 265, 293, 307 MiB against 296, 522, 564, 579 without;
    # its two workers 390-425 MiB against 690-867; each pass as fast (37-41 s either way).
    # The 200-document benchmark alike: 48.6 and 47.1 docs/s on, 48.4 off; loop lag max
    # 24.1 and 24.9 ms on, 26.3 off (2 workers, 3 runs each). One document at a time
    # (60 Node.js API pages, as a backend gets them) with a trim forced after every one:
    # loop lag p99 1.1-1.2 ms, max 7.7-9.1 ms, against 1.2 / 5.9 ms off; 40-41 s either
    # way.
    "trim_memory": True,
    # A RagIngestLoader's workers wait this many seconds after a load for the next one
    # with the same parse settings (a notebook's cells): a load of three .py files took
    # 0.55-0.65 s with the workers' start, a kept pool skips it. 0: closed after each load.
    "keep_workers": 60.0,
    # While idle, each worker imports every parser and reads a bundled sample of each
    # type (1.6-1.8 s of CPU a worker, measured), so a type's first document does not
    # pay it (0.02-0.6 s). False suits short runs on a busy machine (the tests run so).
    "warm_up": True,
    # pymupdf4llm legacy mode, measured here: "tables" finds ruled tables like
    # PyMuPDF4LLMLoader (same Markdown) but only searches pages that have vector drawings:
    # 13.6 ms/page on text pages (16.3 before they skipped the background-colour probe,
    # 50 pages of prose), ~71 ms on pages with drawings; "fast" never searches and ignores drawings
    # (a table's cells as lines of text); "layout" (layout model) is ~17x slower than
    # legacy. Tables as Markdown are worth it; "fast" only saves time on pages with
    # drawings.
    "pdf_mode": "tables",
    # A PDF of twice this many pages or more is parsed in page ranges on every worker at
    # once (headings judged over the whole document, so the Markdown is the same). One
    # 3,000-page PDF, 2 workers: 56 s -> 32 s; 64 pages: 1.14 -> 0.63 s. A batch that
    # already keeps every worker busy gains nothing: 18 PDFs of 32-128 pages took 12.9 s
    # either way at 32, 13.6 s at 16. 0: never split.
    "pdf_split_pages": 32,
    # Running headers and footers ('ACME - Confidential', 'Page 7 of 90') dropped: a line
    # in a block of at most two at the top or bottom of at least 3 pages and 40% of them,
    # digits aside. Left in, they sat inside every paragraph that crossed a page. On
    # Debian's libtasn1 and shared-mime-info manuals it removes exactly their running
    # title and page number lines; headings and table rows are never taken.
    "pdf_drop_running_lines": True,
    # The files attached to a PDF read after its pages, and the objects embedded in a
    # DOCX, PPTX or XLSX after its text, each as a file of its type (a portfolio's cover
    # page may say nothing else; a report's data attached as XLSX; an Excel table in a
    # Word report showed as a picture). One level; an e-invoice's XML (ZUGFeRD,
    # Factur-X) is left out: it is the invoice the pages show, in tags.
    "attachments": True,
    # Scans read by OCR (RapidOCR, PP-OCRv6 models in its wheel; extra 'ocr'): a PDF page
    # with under 100 letters over images covering 30% of it, or drawn as outlines (text
    # converted to paths), or mostly U+FFFD text, and image files. "auto": when the
    # extra is installed; "on": required; "off": never.
    # Measured: a dense 38-line page word for word in 2.8 s on one core; pages are read
    # 8 to a task, each under parse.timeout, on every worker at once. Scans left unread
    # while OCR is off are named in a warning; their documents are read again once it is on.
    "ocr": "auto",
    # Pages are rendered at this resolution for OCR: 6-12 pt text read the same from 72
    # to 200 dpi (measured); 100 dpi was 15% faster than 150 on a dense page.
    "ocr_dpi": 150,
    # With OCR on, PNG, JPEG, TIFF (a frame a page), GIF, BMP and WebP files are read
    # as scans; one with no text (a photo) is skipped when a walk found it. False: images
    # are skipped unread, as without OCR.
    "ocr_images": True,
    # With OCR on, the pictures inside DOCX, PPTX, XLSX, ODT, ODP, EPUB, .doc and .ppt
    # files, and an HTML, MHTML or Markdown file's data: URI pictures, are read (a scan
    # pasted into a report, a slide's screenshot): their text goes where the picture
    # sits, its chunks marked ocr. A picture under 100x100 pixels is passed over, one
    # with under 16 letters (a logo, a photo) leaves nothing, and at most 200 (256 MiB) a
    # document are read, 8 to a task on every worker. Each costs CPU (measured: 0.18 s on
    # one core for a photo with no text; 1.3 s a pasted scanned page on both cores,
    # benchmarks/ocr.py --docx): a manual with 150 screenshots is minutes of it; false
    # turns it off.
    "ocr_pictures": True,
    # A workbook whose sheets (and shared strings) expand past this many bytes of XML is
    # read as rows by python-calamine, one table per sheet, not by docling. Measured on
    # 10-column sheets: docling ~0.95 s and ~50 MB RSS per MB of XML (3,000 rows 1.9 s,
    # 6,000 3.7 s; 50,000 rows, 34 MB: 31 s and 1.9 GB) and it refuses a sheet past
    # 128 MiB; calamine ~0.016 s per MB (50,000 rows 0.3 s, 200,000 rows of 138 MB
    # 1.3 s). 4 MiB (~6,000 rows) keeps docling, which also finds separate tables
    # within a sheet, where it costs a few seconds. 0: always calamine.
    "xlsx_stream_size": 4 * _MiB,
    # An HTML page or Markdown file past this many bytes is read without docling: a page
    # converted by html-to-markdown (Rust), Markdown read as its source. Measured on
    # files of headings, paragraphs, lists and tables: docling ~3.1 s a MB of either
    # (HTML 0.5 MB 4.1 s with its import, 1 MB 3.2 s, 2 MB 6.1 s, 4 MB 12.6 s; Markdown
    # 3.7 MB 13.9 s), so a file past ~38 MB outlasts parse.timeout; html-to-markdown 4 MB
    # in 0.4 s, 40 MB in 3.3 s; Markdown's source 3.7 MB in 0.27 s. docling's path also
    # reads their data: URI pictures, drops all but a page's <main>, and its <header>,
    # and a README's badges. 4 MiB of such a page costs docling ~13 s; one dense with
    # links costs more (a generated 2.6 MB page of 60,000 links: ~54 s). 0: always
    # without.
    "markup_fast_size": 4 * _MiB,
    # A Markdown file past this (or markup_fast_size, the smaller) is read as its source,
    # its HTML comments left out. Measured on /usr/share/doc's Markdown (2026-12-07):
    # docling 8-36 s a MB of it (Node.js's API docs 14-18, its changelogs 22, Rust's
    # release notes 8), the source 0.01-0.08 s a file, so 4 MiB outlasted parse.timeout.
    # Past 256 KiB lie 9.4 of its 14.2 MB, in 17 files (changelogs, API references).
    # docling's path also joins wrapped lines, turns reference links into their text and
    # reads a file's pictures. 0: always its source.
    "markdown_fast_size": 256 * _KiB,
    # What of a web page's chrome is left out. "markup": what its markup marks (all but
    # its one <main>, <nav>, a <header> outside an article, landmark roles, documentation
    # generators' navigation). "guess" (extra web): also what trafilatura judges
    # boilerplate, on pages docling reads; each block of the page is kept when most of
    # its words are in trafilatura's text. On trafilatura 1.1.0's 83 test pages of news
    # and blogs, by markup 197 of the 198 phrases its tests expect are found and 47 of
    # the 193 it expects left out are left out; guessing, 197 and 188 (7.5-8.7 s instead
    # of 12.2-14.2 s). It is made for articles: 30 Rust book chapters kept 96.8% of
    # their words, 20 Node.js API pages 97.3%, odfpy's 303 Doxygen pages 61% (code
    # listings not in <pre>, member tables); so "markup" stays the default.
    "html_chrome": "markup",
    # Remember each zip or tar file's parse and chunks by the SHA-256 of its bytes, per
    # session and archive, next to the ledger: a changed archive parses and chunks only
    # its changed files (the ingest benchmark's 200 files in one zip, one changed:
    # re-ingested in 1.31 s instead of 4.19 s, parsing 0.39 s instead of 3.21 s; 3,000
    # Markdown files, one changed: 6.7 s, against 15.8 s when only parses were kept,
    # measured). A mailbox's messages likewise, in a zip too (3,000 and 10 more: 1.7-1.9 s
    # instead of 3.2-3.3 s). Removed with its session, or when the source is pruned.
    "archive_cache": True,
    # OOXML/OpenDocument/EPUB zip-bomb limits, checked before parsing; the first is also
    # the most a gzip, bzip2 or xz file may decompress to.
    "max_unzipped_size": 512 * _MiB,
    "max_zip_ratio": 200.0,
}

chunk = {
    # tiktoken encoding, loaded from the bundled bpe-openai files (never downloaded).
    "encoding": "cl100k_base",
    # ~512 tokens keeps a chunk on one topic; fit_embedder shrinks it to what the embedder reads.
    "chunk_tokens": 512,
    # Overlap so a sentence cut at a boundary is still found.
    "overlap_tokens": 64,
    # Documents this small stay whole: splitting them only loses context.
    "whole_document_tokens": 256,
    # A scrap the splitter leaves under this many tokens ('```', 'Output::', the last
    # letters of a word) joins its neighbour, and a heading alone joins what follows it
    # (the pair split evenly when too big). Capped at a quarter of the chunk size. Measured
    # on 450 real Markdown/RST/HTML files: 466 of 17,815 chunks were under 16 tokens, 402
    # of them a lone heading; 1 is left (a heading over a table whose rows filled a chunk).
    "min_chunk_tokens": 32,
    # Per file type: strategy (prose | markdown | code | table) and sizes (None = the values
    # above). Tables in Markdown (spreadsheets, and tables in PDF, DOCX, HTML) are chunked
    # by rows, each chunk under the table's header, padding dropped; "table" does the same
    # for a CSV/TSV file (its first record the header).
    "file_configs": {
        "pdf": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "xps": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "mobi": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "fb2": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "docx": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "pptx": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        # Word and PowerPoint 97-2003, read through the DOCX and PPTX they convert to
        # (msdoc2docx, ppt2pptx): as DOCX and PPTX.
        "doc": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "ppt": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        # Visio drawings, page by page: each shape's text and shape data under the page.
        "vsdx": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        # SVG drawings: the words they show (labels of a diagram or chart), a line each.
        "svg": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        # OpenDocument text and slides (read without docling) and EPUB books (their
        # chapters as one HTML page): as DOCX, PPTX and HTML.
        "odt": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "odp": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        # OpenDocument drawings (Draw), page by page, as slides.
        "odg": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        "epub": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "xlsx": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        # Excel 97-2003, binary and OpenDocument workbooks (read by calamine): as XLSX.
        "xls": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        "xlsb": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        "ods": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        # Uniform Office Format 1.0 (China's GB/T 20916): text, slides and sheets, as
        # DOCX, PPTX and XLSX.
        "uot": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "uop": {"strategy": "markdown", "chunk_tokens": 256, "overlap_tokens": None},
        "uos": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        "html": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # A web page saved as one file (MHTML: .mht, .mhtml): its page, as HTML.
        "mhtml": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "markdown": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # Jupyter notebooks, as Markdown: cells in order, code fenced, text outputs kept.
        "notebook": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # E-mail (.eml, and Outlook .msg): subject as heading, sender/recipients/date,
        # attachments by name, then the plain-text body (the HTML body as text when there
        # is none). A mailbox (mbox) is read message by message, each chunked by this entry.
        "email": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # (Zip and tar archives have no entry: each file inside is chunked by its own
        # type's entry, and a chunk's 'archive_member' names it.)
        "csv": {"strategy": "table", "chunk_tokens": 384, "overlap_tokens": 0},
        # JSON and JSON Lines holding records (a list of objects): a block per record,
        # 'key: value' lines under its place ('## items[12]'); other JSON is text. XML
        # holding records (a feed's items, a dump's rows) takes this entry too, unless
        # an "xml" one is given.
        "json": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        # YAML holding records (a list of mappings, or a stream of them: Kubernetes
        # manifests, an Ansible task list), the same way; other YAML is text.
        "yaml": {"strategy": "markdown", "chunk_tokens": 384, "overlap_tokens": 0},
        # Rich Text Format: its text (striprtf), its tables as Markdown tables, chunked by
        # rows under their header.
        "rtf": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # Subtitles and transcripts (WebVTT, SubRip): a speaker's paragraphs of at most 30 s,
        # each chunk with the seconds of the recording it covers (time_start, time_end).
        "transcript": {"strategy": "prose", "chunk_tokens": None, "overlap_tokens": None},
        # Calendars and contacts (iCalendar, vCard): an event, task or contact a section.
        "calendar": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        "contacts": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # Manual pages (roff: ls.1, ls.1.gz): Markdown, a section a heading.
        "man": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # Text at its paragraphs; JSON, YAML and XML that are not records at their
        # shallowest keys or elements first (chunks of JSON and YAML name their key path).
        "text": {"strategy": "prose", "chunk_tokens": None, "overlap_tokens": None},
        # Image files read by OCR: blocks in reading order, a large short line a heading.
        "image": {"strategy": "markdown", "chunk_tokens": None, "overlap_tokens": None},
        # Source code by its language's separators, then between definitions (a class
        # between its methods), never before a line of closing brackets; a function keeps
        # its decorators and doc comment. reStructuredText, AsciiDoc and Org are read as
        # code too: split at their section titles first, which name the chunks.
        "code": {"strategy": "code", "chunk_tokens": 384, "overlap_tokens": 32},
    },
    # Cap every size above at 0.75 x the embedder's input window, when it declares one:
    # MiniLM reads 256 word pieces (1.14-1.25 per cl100k token, measured) and truncates
    # the rest, so 512-token chunks were ~55% unsearchable; with the cap, 190 tokens
    # (overlaps in proportion: 64 -> 24). benchmarks/window_recall.py measures the gain.
    "fit_embedder": True,
    # Mask the credentials a document holds (API keys and tokens of known forms, AWS keys,
    # private keys, a URL's password, a value given to a setting named for a password,
    # secret, token or API key) in its chunks, '*' a character (offsets kept), with
    # a warning: an agent searching the store must not hand them out. Files of secrets
    # (.env, .aws/credentials, keys) are never read at all. Chunks stored before this
    # existed are masked when their source changes, or at `ingest --reingest`.
    "mask_credentials": True,
    # Embed each chunk under 'file > section' (the stored text stays its own). Off: on
    # 81 package READMEs it raised MRR 1.03-1.20x (most for questions naming a package
    # and section), but on 140 npm and Node.js pages quoted sentences fell to 0.95x.
    # benchmarks/embed_header.py. Chroma stores only.
    "embed_header": False,
}

models = {
    # "minilm": real local all-MiniLM-L6-v2 (extra 'minilm'); "hash": fast, for tests; or
    # "package.module:attribute", a LangChain Embeddings there or a factory of one.
    "embedder": "minilm",
    # "package.module:attribute": a chat model or Runnable (or a factory of one) that
    # summarizes each document; None: no summaries.
    "summarizer": None,
    # The same for a multimodal chat model that describes images; None: not described.
    "image_describer": None,
    # What the minilm embedder computes in. "auto": bfloat16 on a CPU that multiplies it
    # natively (AMX or AVX512-BF16, from /proc/cpuinfo's flags), else float32; or
    # "float32" / "bfloat16". Measured here (Xeon with AMX, 2 threads, 400 texts of
    # 60-150 words, three runs): float32 32.1 texts/s, bfloat16 80.6-91.4; each
    # vector's cosine to its float32 twin at least 0.99997, 399 of the 400 texts'
    # nearest neighbours the same, a query's top 5 the same. Without native support
    # torch emulates bfloat16, slower than float32.
    "minilm_precision": "auto",
    # Texts per embedding call (also capped by Chroma's max batch size).
    "batch_size": 64,
    # A chunk whose text the store already holds, for an earlier version of its source
    # or for a twin (the same version in another session, or the same bytes under
    # another name), keeps that stored vector: one changed page of a long PDF, one
    # changed file in an archive, new metadata or a handbook every session uploads
    # costs the embedding of what is new (a paid API, or MiniLM's ~32 texts/s here in
    # float32, 80-91 in bfloat16);
    # an embedding that fails midway keeps the batches done for the next attempt.
    # False: every chunk is embedded.
    "reuse_vectors": True,
    # A summary or image description is kept in the ledger with its source; one asked
    # for again (the same model, prompt and text or picture: a re-ingest, a changed
    # deck's unchanged pictures, a logo in every deck, a twin in another session) is
    # taken from there, not paid for again. A model is told by its class, the model it
    # is set to (`model`, `model_name`, ...), its sampling settings (`temperature`, ...),
    # bound arguments and a chain's prompt templates. False: every one is asked for.
    "reuse_answers": True,
    # Seconds per embedding call; a stuck provider fails and is retried.
    "timeout": 60.0,
    # Attempts per model call (429s, 5xx, timeouts and connection failures retried; bad
    # requests not).
    "max_attempts": 5,
    # Seconds per summary call: LLMs are slow, but not forever.
    "summary_timeout": 120.0,
    # Tokens per summary call; longer documents are summarized map-reduce.
    "summary_context_tokens": 6000,
    # At most this many windows per document are summarized, spread evenly over it: a
    # 3,000-page PDF (1.7M tokens) would otherwise cost ~290 calls. None: every window.
    "summary_max_windows": 16,
    # Images described per document when an image model is given (each call costs money).
    "max_images": 20,
}

store = {
    # Embedded Chroma and the SQLite ledger live here.
    "persist_dir": "rag_ingest_data",
    # A Chroma server (http://host:8000) instead of the embedded client. Processes given
    # it and one persist_dir (a backend's workers) share the ledger: each source is
    # claimed there by the process ingesting it (measured: 300 small files, 1.63-1.65 s
    # with claims, 1.34-1.39 s without), so the others wait and skip it.
    "chroma_url": None,
    # Your own LangChain VectorStore instead of Chroma: "package.module:attribute" (the
    # store, or a class or function that makes one). The ledger stays in persist_dir.
    "vectorstore": None,
    # Headers for that server: its token, or what a proxy in front of it asks for. Keep
    # them out of this file: RAG_INGEST_STORE__CHROMA_HEADERS='{"X-Chroma-Token": "..."}'.
    "chroma_headers": {},
    # The server's tenant and database.
    "chroma_tenant": "default_tenant",
    "chroma_database": "default_database",
    # Chroma collection name.
    "collection": "rag_ingest",
    # "server": a private `chroma run` child serves persist_dir, so Chroma's writes never
    # stall our event loop (in-process upserts held the GIL up to 100 ms, measured).
    # That server, and a chroma_url on loopback, is reached directly, past HTTP_PROXY and
    # ALL_PROXY; a chroma_url on another host goes as your environment says (NO_PROXY).
    # The CLI's query, delete, verify and dry runs open it in-process whatever this says:
    # one-shot, they would only pay the server's start and stop.
    # Other processes on the same persist_dir (a backend's workers, a second notebook,
    # the CLI beside a running backend) join this process's server and share its ledger;
    # if this process exits, one of them serves the directory again on the same port.
    # In-process, the directory is this process's alone: others fail at start.
    "embedded_mode": "server",
    # Seconds one request to a Chroma server may take: chromadb's HttpClient sets no limit,
    # so a server that went quiet would hang every write.
    "timeout": 120.0,
    # Attempts per store call on a lost connection, a timeout or a 429/5xx (upserts and
    # deletes by ID, so a replay is harmless); our own Chroma server, if it exited or
    # stopped answering, is restarted on its port before the next attempt (and by its
    # owner's watchdog thread while no call is made: the processes that joined it wait).
    "max_attempts": 4,
    # Writes stop (StoreError, the next run takes them) while persist_dir's disk has less
    # free: a Chroma that runs out mid-write fails its writes and then stops answering
    # (measured: every later call timed out), and the ledger cannot record. 0 turns it off.
    "min_free_mb": 64,
}

pipeline = {
    # Documents downloading at once (each also runs ranged parts).
    "downloads": 8,
    # Documents handed to the parser pool at once; None = one per worker plus one queued
    # (process mode), so a freed worker starts the next at once: +10% docs/s, 1 worker.
    "parses": None,
    # Embedding calls in flight: a local model gains nothing from more.
    "embeddings": 2,
    # Summary calls in flight, a long document's map calls included: protects the LLM's rate
    # limit.
    "summaries": 2,
    # Image-description calls in flight: multimodal calls are the slowest of all.
    "images": 2,
    # Threads for blocking I/O (hashing local files, loading models).
    "io_threads": 8,
    # Threads for store and ledger calls when Chroma runs as a server (in-process: 1), so
    # skip checks and queries do not queue behind a batch write.
    "store_writers": 4,
    # Most documents per store write: a one-document upsert cost the Chroma server 13.8 ms
    # of CPU, one of ten documents 2.9 ms per document (measured). Capped at in_flight / 2:
    # a batch of every document in flight stalled downloads and parsing until it committed.
    "store_batch_docs": 32,
    # Seconds a store write waits for documents still in the pipeline (none: no wait).
    # 1 s lets a batch fill to its cap at bulk rates (16 documents at ~40 docs/s take
    # ~0.4 s); at 0.25 s batches were ~10 documents (Chroma CPU 0.78 s per 200 documents,
    # 0.58 s with ~30-document batches, measured). A document in a bulk run completes up
    # to 1 s later, a lone one at once.
    "store_linger": 1.0,
    # Pending submissions before QueueFullError (a web backend's 503).
    "queue_size": 1000,
    # Documents in the pipeline at once: memory stays flat as the corpus grows.
    "in_flight": 32,
    # start() waits for the parser workers' whole start-up (every parser imported, which
    # they otherwise do while idle) and the embedder's model, for a web backend's
    # start-up: its first document then took 0.2 s instead of 7.9 s (MiniLM, a small
    # Markdown file; measured). Off by default: a run whose sources are all unchanged,
    # or a delete, would load a model it never uses (~4 s, ~300 MB for MiniLM).
    "preload": False,
    # The processor's own S3 client runs on a private loop thread: loop-lag p99 5.5-5.9 ms
    # instead of 17.8-20.5 ms in the ingest benchmark (sends that wake a local server,
    # file writes and hashing stalled the caller's loop).
    "s3_thread": True,
    # gc.freeze() after start-up: a full collection over import-time objects stalled the
    # event loop 60-97 ms (measured); frozen objects are never scanned again.
    "freeze_gc": True,
    # Sources taken, as prefixes of their identity ("s3://bucket/uploads/",
    # "https://docs.example.com/", "/srv/docs"); None takes any. Set it in a web backend
    # whose users name sources: "/app/.env" or another tenant's bucket would otherwise be
    # read with the server's own rights and become searchable. Uploads are always taken.
    "allowed_sources": None,
    # Per-session quotas for a multi-tenant backend: the most documents (sources with
    # chunks), chunks and bytes (the documents' sizes: an S3 object's, a file's, an
    # upload's) a session may hold. A document that would pass one fails with
    # QuotaExceededError before any model is called for it (before it is downloaded
    # when the session already holds its most documents, or its size would pass the
    # bytes), and is retried on the next run (after a delete, it fits). Documents in
    # flight are counted, so many at once cannot overshoot; a new version of a source
    # replaces its chunks and bytes. None: no limit.
    "session_max_documents": None,
    "session_max_chunks": None,
    "session_max_bytes": None,
}

# Staging directory for downloads (files are 0600 and removed after use; the directory is
# created on first use); None = system temp. When it fills, downloads wait for staged
# files to be parsed and removed; a file that does not fit alone fails with DiskFullError.
# Parsing writes its scratch files here too (unpacked files, archive members, e-mail
# attachments; in process mode docling's and PyMuPDF's own as well). A processor stages
# in a directory of its own here, rag-ingest-run-*, removed when it closes (a loader's
# load in one of its own); one a killed process left is removed by the next processor
# or load to start.
temp_dir = None

# tqdm progress bars on a terminal or in a notebook.
progress = True
