"""A real Chromium (Debian's: Playwright's own download is not used) driving ``/dashboard`` on a running tidings.

Each test gets a fresh browser page that fails the test on any error the page logs (a script error, a request the
Content-Security-Policy blocked). Screenshots go to ``tests/dashboard/artifacts/`` (not committed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


@pytest.fixture
async def page() -> AsyncIterator:
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "Chromium is not installed: `apt-get install -y chromium` to run the dashboard's tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = await browser.new_context(viewport=DESKTOP)
        context.set_default_timeout(10_000)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
        page.on("console", lambda message: _logged(message, errors))
        yield page
        await browser.close()
    assert not errors, errors


def _logged(message, errors: list[str]) -> None:
    """An error the page logs, but for the API's own refusals (a wrong key, a missing scope, an unknown id), which
    the browser logs as failed requests and the page shows in its own words."""
    if message.type != "error":
        return
    url = message.location.get("url", "")
    if "/v1/" in url and "the server responded with a status of 4" in message.text:
        return
    errors.append(f"console: {message.text} ({url})")
