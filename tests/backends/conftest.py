"""Each backend test runs on SQLite and on Redis: both keep the semantics of ``tidings.ports``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.backends import Backend, open_backend


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request, tmp_path) -> AsyncIterator[Backend]:
    url = f"sqlite:///{tmp_path}/backend.db" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    async with open_backend(url, "backend-secret") as opened:
        yield opened
