"""No secret in any log line (every logger at DEBUG), exception text or repr."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag_ingest.errors import S3Error
from rag_ingest.s3 import AsyncS3Client
from rag_ingest.settings import Settings
from rag_ingest.testing import SeaweedS3

pytestmark = pytest.mark.integration


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_no_secret_in_logs_errors_or_reprs(seaweed: SeaweedS3, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="secrets")
    client.put_object(Bucket="secrets", Key="doc.txt", Body=b"hello")
    presigned = client.generate_presigned_url(
        "get_object", Params={"Bucket": "secrets", "Key": "doc.txt"}, ExpiresIn=600
    )
    signature = presigned.split("X-Amz-Signature=")[1].split("&")[0]
    token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789abcdef"

    handler = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    names = list(logging.root.manager.loggerDict)
    old_levels = {n: logging.getLogger(n).level for n in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts: list[str] = []
    seen_authorization: list[str] = []
    try:
        good = Settings(s3=seaweed.settings_dict(), progress=False, retry={"base_delay": 0})
        async with AsyncS3Client(good) as s3:
            texts.append(repr(s3))
            texts.append(repr(good))
            assert await s3.read("s3://secrets/doc.txt") == b"hello"
            assert await s3.read(presigned) == b"hello"
            texts.append(repr(s3.parse(presigned)))
            texts.append(str(s3.parse(presigned)))
            async with s3.request("GET", s3.parse("s3://secrets/doc.txt")) as response:
                seen_authorization.append(response.request.headers["authorization"])
            with pytest.raises(S3Error) as info:
                await s3.read(presigned.replace("doc.txt", "missing.txt"))
            texts.append(str(info.value))
            texts.append(repr(info.value))
        wrong = dict(
            seaweed.settings_dict(), secret_access_key="wrong-secret-value-xyz", session_token=token
        )
        async with AsyncS3Client(Settings(s3=wrong, progress=False)) as s3:
            with pytest.raises(S3Error) as info:
                await s3.read("s3://secrets/doc.txt")
            texts.append(str(info.value))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in old_levels.items():
            logging.getLogger(name).setLevel(level)

    everything = "\n".join(handler.lines + texts)
    assert handler.lines, "expected DEBUG output from httpx/botocore"
    assert any("HTTP Request" in line for line in handler.lines)  # httpx's INFO line is there...
    assert "X-Amz-Signature=***" in everything  # ...with the signature redacted
    secrets = [
        seaweed.secret_key,
        "wrong-secret-value-xyz",
        token,
        signature,
        seen_authorization[0],
        seen_authorization[0].split("Signature=")[1],
    ]
    for secret in secrets:
        assert secret not in everything, f"secret leaked: {secret[:6]}..."
