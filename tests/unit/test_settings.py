from __future__ import annotations

from pathlib import Path

import pytest

from rag_ingest.errors import ConfigurationError
from rag_ingest.settings import Settings, load_config_file, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_config_py_states_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_INGEST_PARSE__WARM_UP")  # the tests' own (conftest)
    values = load_config_file(ROOT / "config.py")
    defaults = Settings().model_dump()
    assert set(values) == set(Settings.model_fields)
    for part, expected in defaults.items():
        if isinstance(expected, dict):
            assert set(values[part]) == set(expected), part
        assert Settings(**{part: values[part]}).model_dump()[part] == expected, part


def test_environment_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INGEST_TRANSFER__PART_SIZE", str(16 * 1024 * 1024))
    monkeypatch.setenv("RAG_INGEST_S3__ENDPOINT_URL", "http://127.0.0.1:9000/")
    monkeypatch.setenv("RAG_INGEST_PROGRESS", "false")
    settings = Settings()
    assert settings.transfer.part_size == 16 * 1024 * 1024
    assert settings.s3.endpoint_url == "http://127.0.0.1:9000"
    assert settings.progress is False


def test_priority_defaults_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.py"
    config.write_text(
        'retry = {"max_attempts": 2, "base_delay": 0.5}\ntransfer = {"concurrency": 3}\n'
    )
    monkeypatch.setenv("RAG_INGEST_RETRY__MAX_ATTEMPTS", "7")
    settings = load_settings(config, {"transfer": {"concurrency": 4}})
    assert settings.retry.max_attempts == 7  # env beats the file
    assert settings.retry.base_delay == 0.5  # the file beats defaults
    assert settings.transfer.concurrency == 4  # flags beat everything
    assert settings.transfer.part_size == Settings().transfer.part_size


def test_bad_values_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_settings(None, {"transfer": {"part_size": 10}})
    with pytest.raises(ConfigurationError, match="endpoint_url"):
        load_settings(None, {"s3": {"endpoint_url": "ftp://x"}})
    both = {"vectorstore": "app:store", "chroma_url": "http://127.0.0.1:8000"}
    with pytest.raises(ConfigurationError, match="vectorstore or chroma_url, not both"):
        load_settings(None, {"store": both})
    typo = tmp_path / "typo.py"
    typo.write_text("retyr = {}\n")
    with pytest.raises(ConfigurationError, match="retyr"):
        load_config_file(typo)
    with pytest.raises(ConfigurationError, match="not found"):
        load_config_file(tmp_path / "missing.py")


def test_secrets_are_not_in_reprs() -> None:
    settings = Settings(s3={"access_key_id": "AKID", "secret_access_key": "very-secret-value-123"})
    assert "very-secret-value-123" not in repr(settings)
    assert "very-secret-value-123" not in str(settings.model_dump())


def test_allowed_sources_are_prefixes_not_globs_or_blanks() -> None:
    import pydantic

    from rag_ingest.settings import Settings

    for entry in ("", "  ", "s3://bucket/*.pdf", "/srv/docs/[ab]"):
        with pytest.raises(pydantic.ValidationError, match="allowed_sources"):
            Settings(pipeline={"allowed_sources": [entry]})
    assert Settings(pipeline={"allowed_sources": ["/srv"]}).pipeline.allowed_sources == ["/srv"]
