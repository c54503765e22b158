from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag_ingest.testing import SeaweedS3


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """One real S3 server (SigV4 enforced) for the whole session, stopped at the end."""
    with SeaweedS3() as server:
        yield server
