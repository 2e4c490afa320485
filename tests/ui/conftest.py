"""Browser tests of the web UI: one real `aerovision serve` and one headless Chromium per module.

Chromium is Debian's (`/usr/bin/chromium`, installed by `.ci/run` when missing), driven by
Playwright for Python through ``executable_path``: never a browser that Playwright downloads.
Screenshots of every page go to ``test-artifacts/ui/`` at the repository root (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServeProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium; .ci/run does it)"
        if os.environ.get("AEROVISION_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One real `aerovision serve` with 2 workers for the module's browser tests."""
    proc = ServeProcess(tmp_path_factory.mktemp("ui") / "data", workers=2,
                        env={"AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageErrors:
    """Uncaught exceptions in the page: any is a bug of the UI."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, error: Any) -> None:
        self.errors.append(str(error))


def open_page(
    browser: Any, server: ServeProcess, viewport: dict[str, int]
) -> tuple[Any, Any, PageErrors]:
    context = browser.new_context(
        base_url=server.base_url, viewport=viewport, locale="en-GB", timezone_id="UTC"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", errors)
    return context, page, errors


@pytest.fixture
def page(browser: Any, ui_server: ServeProcess) -> Iterator[Any]:
    """A fresh 1280×800 page on the module's server; fails the test on an uncaught JS error."""
    context, new_page, errors = open_page(browser, ui_server, DESKTOP)
    yield new_page
    context.close()
    assert not errors.errors, f"uncaught errors in the page: {errors.errors}"


@pytest.fixture
def phone_page(browser: Any, ui_server: ServeProcess) -> Iterator[Any]:
    """The same at a phone's width (390×844)."""
    context, new_page, errors = open_page(browser, ui_server, PHONE)
    yield new_page
    context.close()
    assert not errors.errors, f"uncaught errors in the page: {errors.errors}"


@pytest.fixture(scope="session")
def screenshot() -> Any:
    """screenshot(page, name): a full-page PNG in test-artifacts/ui/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
