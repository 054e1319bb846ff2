from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.providers.client import HttpClient


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(timeout=2.0)
    yield client
    await client.close()
