"""Which certificates TLS is verified against.

``s3.ca_bundle``, else ``AWS_CA_BUNDLE``, else the AWS profile's ``ca_bundle`` (as
boto3 takes them), else what httpx does by itself (``SSL_CERT_FILE`` /
``SSL_CERT_DIR``, else certifi's bundle). A proxy that inspects TLS signs with its own
CA: without its certificate every https request fails.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from rag_ingest.errors import ConfigurationError
from rag_ingest.s3.aws_config import profile_ca_bundle
from rag_ingest.settings import S3Settings

__all__ = ["tls_verification"]


def tls_verification(settings: S3Settings) -> bool | ssl.SSLContext:
    """What both engines are given to verify with: False (``verify_tls`` off), True
    (httpx's own choice), or a context trusting the named bundle."""
    if not settings.verify_tls:
        return False
    if settings.ca_bundle is not None:
        where, name = settings.ca_bundle, "s3.ca_bundle"
    elif os.environ.get("AWS_CA_BUNDLE"):
        where, name = Path(os.environ["AWS_CA_BUNDLE"]), "AWS_CA_BUNDLE"
    else:
        found = profile_ca_bundle(settings.profile)
        if found is None:
            return True
        where, name = found
    try:
        if where.is_dir():
            return ssl.create_default_context(capath=str(where))
        return ssl.create_default_context(cafile=str(where))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"{name}: cannot load CA certificates from {where}: {exc}"
        ) from exc
