from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tidings.core import webhook_secrets
from tidings.outbound.client import HttpClient
from tidings.outbound.guard import guarded_client


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """The pooled client a channel sends through, as the server makes it with private networks allowed (the
    receivers are on loopback): it follows no redirect."""
    client = guarded_client(timeout=2.0, allow_private=True)
    yield client
    await client.close()


def new_secret() -> str:
    """A secret as the subscribers service makes one."""
    return webhook_secrets.encode(os.urandom(webhook_secrets.KEY_BYTES))
