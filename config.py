"""rag_ingest deployment configuration (read by the ``rag-ingest`` CLI, like gunicorn.conf.py).

The CLI reads ``./config.py`` when present, or the file given with ``--config``.
Priority, lowest first: built-in defaults, this file, ``RAG_INGEST_*`` environment
variables (``RAG_INGEST_TRANSFER__PART_SIZE=16777216``), command-line flags.
Every value below is the built-in default; a test keeps the two equal.
Secrets do not belong here: use the AWS credential chain or environment variables.
"""

_MiB = 1024 * 1024  # names starting with "_" are helpers, not settings

s3 = {
    # Custom S3-compatible endpoint (MinIO, SeaweedFS); None = AWS, or AWS_ENDPOINT_URL_S3.
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
    # Connection budget of one client, all objects together.
    "max_connections": 64,
    # Socket read size; httpcore's 64 KiB halves throughput, 1 MiB doubles it back.
    "read_size": 1 * _MiB,
    # Seconds to connect: a dead endpoint fails fast.
    "connect_timeout": 10.0,
    # Seconds without a byte before a read fails (then resumes).
    "read_timeout": 30.0,
    # Bytes/s below which a transfer is cut and resumed: a 1 B/s drip cannot hang us.
    "min_rate": 32 * 1024,
    # Window (s) over which min_rate is measured, so short hiccups are tolerated.
    "rate_window": 10.0,
    # Verify x-amz-checksum-* or a single-part MD5 ETag whenever S3 offers one.
    "verify_checksum": True,
}

limits = {
    # Refuse larger objects before downloading a byte.
    "max_object_size": 5 * 1024 * _MiB,
    # Largest object read() will hold in memory.
    "max_read_size": 64 * _MiB,
}

# Staging directory for downloads (files are 0600 and removed after use); None = system temp.
temp_dir = None

# tqdm progress bars on a terminal or in a notebook.
progress = True
