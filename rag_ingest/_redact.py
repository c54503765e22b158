"""Keep secrets out of messages, log lines and reprs.

Two layers: patterns that catch presigned-URL signatures and Authorization
headers wherever they appear, and a registry of the exact secret values this
process has loaded (secret keys, session tokens), replaced verbatim.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "install_log_redaction",
    "is_secret_param",
    "redact",
    "register_secret",
]

REDACTED = "***"

# Query parameters that carry a credential: presigned S3 (SigV4 and SigV2), GCS
# signed URLs, Azure SAS, and the usual token and key names of plain URLs.
_SECRET_PARAM = (
    r"x-amz-signature|x-amz-credential|x-amz-security-token|signature|awsaccesskeyid"
    r"|x-goog-signature|x-goog-credential|sig|(?:access_|id_|auth_|refresh_)?token"
    r"|api[_-]?key|password|passwd|client_secret|secret"
)
_SECRET_PARAM_NAME = re.compile(rf"(?i)(?:{_SECRET_PARAM})")

_PATTERNS = [
    re.compile(rf"(?i)((?<![\w-])(?:{_SECRET_PARAM})=)[^&\s\"'<>]+"),
    # The password of a user:password@host URL.
    re.compile(r"(://[^/\s:@]+:)[^@/\s]+(?=@)"),
    # An Authorization header value, as a header line or a dict/tuple repr.
    re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?(?:b')?)[^\"'\n]+"),
    # The signature part of a SigV4 Authorization value that slipped through elsewhere.
    re.compile(r"(?i)(Signature\s*[=:]\s*)[0-9a-f]{64}"),
    # Session tokens as headers.
    re.compile(r"(?i)(x-amz-security-token[\"']?\s*[:=,]\s*[\"']?(?:b')?)[^\"'\s\n]+"),
]

_secrets: set[str] = set()
_lock = threading.Lock()


def is_secret_param(name: str) -> bool:
    """True if a URL query parameter of this name carries a credential."""
    return _SECRET_PARAM_NAME.fullmatch(name) is not None


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` removes it wherever it appears."""
    # Very short values would redact innocent text; real secrets are long.
    if value and len(value) >= 8:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with known secrets and signature-like fragments replaced."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    if _secrets:
        with _lock:
            values = sorted(_secrets, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that renders a record once and redacts the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


# Filters on a logger do not apply to its children's records, so every logger
# that may print a URL, a header or a canonical request is named here.
_LOGGERS = (
    "rag_ingest",
    "rag_ingest.s3",
    "rag_ingest.pipeline",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "botocore",
    "botocore.auth",
    "botocore.credentials",
    "botocore.endpoint",
    "botocore.httpsession",
    "botocore.utils",
    "botocore.hooks",
)
_installed = False


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to the loggers that can see secrets (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    flt = RedactingFilter()
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(flt)
