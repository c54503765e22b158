"""What the AWS shared config (``~/.aws/config``, or ``AWS_CONFIG_FILE``) sets for S3
besides credentials and region, read as boto3 reads it: the endpoint and the CA bundle.

botocore parses the file; it is imported only where there is a file (~0.13 s).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rag_ingest.errors import ConfigurationError

__all__ = ["configured_endpoint", "profile_ca_bundle"]


def _config_file() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()


def _profile(profile: str | None) -> tuple[Any, dict[str, Any], str] | None:
    """The botocore session, the profile's section, and the profile's name; None without
    a config file or that profile (the credential chain says so where it matters)."""
    if not _config_file().is_file():
        return None
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.Session(profile=profile)
    try:
        scoped = session.get_scoped_config()
    except BotoCoreError:
        return None
    return session, scoped, profile or session.profile or "default"


def profile_ca_bundle(profile: str | None) -> tuple[Path, str] | None:
    """The profile's ``ca_bundle``, and where it was set."""
    found = _profile(profile)
    if found is None or not found[1].get("ca_bundle"):
        return None
    _, scoped, name = found
    where = f"ca_bundle of AWS profile {name!r} in {_config_file()}"
    return Path(scoped["ca_bundle"]).expanduser(), where


def configured_endpoint(profile: str | None) -> str | None:
    """The S3 endpoint boto3 would take from the environment: ``AWS_ENDPOINT_URL_S3``,
    ``AWS_ENDPOINT_URL``, the profile's ``services`` section's ``s3`` ``endpoint_url``,
    the profile's ``endpoint_url``; none of them when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``
    (or the profile's ``ignore_configured_endpoint_urls``) is true."""
    found = _profile(profile)
    if found is not None:
        ignore = found[0].get_config_variable("ignore_configured_endpoint_urls")
    else:
        ignore = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
    if ignore:
        return None
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return os.environ[variable]
    if found is None:
        return None
    session, scoped, name = found
    services = scoped.get("services")
    if services:
        section = session.full_config.get("services", {}).get(services)
        if section is None:
            raise ConfigurationError(
                f"AWS profile {name!r} names the services section {services!r}, which "
                f"{_config_file()} does not have"
            )
        s3 = section.get("s3") if isinstance(section, dict) else None
        url = s3.get("endpoint_url") if isinstance(s3, dict) else None
        if url:
            return str(url)
    url = scoped.get("endpoint_url")
    return str(url) if url else None
