"""The services on a real backend (an SQLite file), as the wiring gives them one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.backends import Backend, open_backend
from tidings.core.sealing import Sealer


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(f"sqlite:///{tmp_path}/services.db", "services-secret") as opened:
        yield opened


@pytest.fixture
def sealer() -> Sealer:
    return Sealer("services-secret", os.urandom)
