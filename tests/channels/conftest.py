from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.providers.client import HttpClient


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """The pooled client a channel sends through, as the server makes it (no SSRF guard: receivers are local)."""
    client = HttpClient(timeout=2.0)
    yield client
    await client.close()
