"""The S3 endpoint and CA bundle taken from the AWS shared config, as boto3 takes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_ingest.errors import ConfigurationError
from rag_ingest.s3.aws_config import configured_endpoint, profile_ca_bundle

CONFIG = """\
[default]
region = us-east-1

[profile minio]
endpoint_url = http://minio.local:9000
ca_bundle = ~/corp-ca.pem

[profile r2]
services = r2-services
endpoint_url = http://not-this-one:1

[services r2-services]
s3 =
  endpoint_url = https://account.r2.cloudflarestorage.com

[profile broken]
services = nowhere

[profile off]
endpoint_url = http://minio.local:9000
ignore_configured_endpoint_urls = true
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    return path


def test_a_profile_s_endpoint_and_its_services_section(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert configured_endpoint(None) is None  # the default profile names none
    assert configured_endpoint("minio") == "http://minio.local:9000"
    # the services section's s3 endpoint comes before the profile's own
    assert configured_endpoint("r2") == "https://account.r2.cloudflarestorage.com"
    monkeypatch.setenv("AWS_PROFILE", "minio")
    assert configured_endpoint(None) == "http://minio.local:9000"
    assert configured_endpoint("nowhere") is None  # a profile the file lacks names none


def test_the_environment_comes_first_and_can_turn_them_all_off(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    assert configured_endpoint("minio") == "http://global:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")
    assert configured_endpoint("minio") == "http://s3-only:2"
    assert configured_endpoint("off") is None  # the profile ignores configured endpoints
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert configured_endpoint("minio") is None


def test_without_a_config_file_the_environment_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    assert configured_endpoint("minio") == "http://global:1"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE")
    assert configured_endpoint("minio") is None
    assert profile_ca_bundle("minio") is None


def test_a_missing_services_section_is_a_configuration_error(config: Path) -> None:
    with pytest.raises(ConfigurationError, match="services section 'nowhere'"):
        configured_endpoint("broken")


def test_a_profile_s_ca_bundle_is_expanded_and_says_where_it_is_from(config: Path) -> None:
    found = profile_ca_bundle("minio")
    assert found is not None
    path, where = found
    assert path == Path("~/corp-ca.pem").expanduser()
    assert where == f"ca_bundle of AWS profile 'minio' in {config}"
    assert profile_ca_bundle("r2") is None
