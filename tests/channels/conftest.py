from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.channels.guard import guarded_client
from tidings.providers.client import HttpClient


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """The pooled client a channel sends through, as the server makes it with private networks allowed (the
    receivers are on loopback): it follows no redirect."""
    client = guarded_client(timeout=2.0, allow_private=True)
    yield client
    await client.close()
