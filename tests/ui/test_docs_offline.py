"""/docs and /redoc work in Chromium with no way out of the machine.

The browser is started with a proxy that refuses every connection (Chromium goes
direct only to loopback), and each context aborts and records any request whose host
is not 127.0.0.1. The pages must render the API's operations from the files the
server itself serves, with no Content-Security-Policy violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.server import ServeProcess, free_port
from tests.ui.conftest import CHROMIUM_ARGS, DESKTOP, _chromium


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The docs need no worker: the API alone."""
    proc = ServeProcess(tmp_path_factory.mktemp("docs") / "data", workers=0).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    """Chromium whose every non-loopback connection goes to a port nobody listens on."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    refused = f"--proxy-server=http://127.0.0.1:{free_port()}"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable,
                                              args=[*CHROMIUM_ARGS, refused])
        yield launched
        launched.close()


@dataclass
class Offline:
    """A page whose requests off 127.0.0.1 are aborted, and what it tried and logged."""

    page: Any
    requested: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, route: Any) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.left.append(url)
            route.abort("internetdisconnected")

    def console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def offline(offline_browser: Any, ui_server: ServeProcess) -> Iterator[Offline]:
    context = offline_browser.new_context(base_url=ui_server.base_url, viewport=DESKTOP,
                                          locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    state = Offline(page)
    context.route("**/*", state.route)
    page.on("console", state.console)
    page.on("pageerror", lambda error: state.errors.append(str(error)))
    yield state
    context.close()


def _operations(server: ServeProcess) -> list[tuple[str, str]]:
    spec = requests.get(server.url("/openapi.json"), timeout=10).json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def _assert_stayed_home(state: Offline, server: ServeProcess) -> None:
    assert state.left == [], f"requests that tried to leave the machine: {state.left}"
    assert state.violations == [], state.violations
    assert state.errors == [], state.errors
    assert state.requested, "the page made no request at all"
    assert all(url.startswith(server.base_url + "/") for url in state.requested), state.requested


def test_swagger_ui_lists_and_expands_the_operations_offline(
    offline: Offline, ui_server: ServeProcess, screenshot: Any
) -> None:
    page = offline.page
    page.goto("/docs")
    template = page.locator(".opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/v1/match/template"]'))
    template.wait_for(state="visible")
    assert template.locator(".opblock-summary-method").inner_text() == "POST"
    assert page.locator(".opblock").count() == len(_operations(ui_server))

    template.locator(".opblock-summary").first.click()
    body = template.locator(".opblock-body")
    body.wait_for(state="visible")
    body.get_by_role("button", name="Try it out").wait_for(state="visible")
    assert "template" in body.inner_text()  # its request body's file field
    page.wait_for_load_state("networkidle")
    screenshot(page, "docs-offline")
    requested = {urlsplit(url).path for url in offline.requested}
    assert {"/docs", "/docs/swagger-ui-init.js", "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/swagger-ui.css", "/openapi.json"} <= requested
    _assert_stayed_home(offline, ui_server)


def test_redoc_lists_the_operations_offline(
    offline: Offline, ui_server: ServeProcess, screenshot: Any
) -> None:
    page = offline.page
    page.goto("/redoc")
    menu = page.locator("li[data-item-id]").filter(has_text="Template matching")
    menu.first.wait_for(state="attached")
    operations = _operations(ui_server)
    assert page.locator("label span.operation-type").count() == len(operations)
    assert page.locator("label span.operation-type.post").count() == sum(
        method == "POST" for method, _ in operations)
    page.get_by_text(re.compile(r"^/api/v1/match/template$")).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)  # ReDoc mounts its sidebar's attribution after the first render
    screenshot(page, "redoc-offline")
    requested = {urlsplit(url).path for url in offline.requested}
    assert {"/redoc", "/docs/assets/redoc.standalone.js", "/openapi.json"} <= requested
    _assert_stayed_home(offline, ui_server)


def test_the_oauth2_redirect_page_runs_its_script_under_its_hash(
    offline: Offline, ui_server: ServeProcess
) -> None:
    offline.page.goto("/docs/oauth2-redirect")
    offline.page.wait_for_load_state("networkidle")
    # opened without Swagger UI as its opener, the script stops at once: proof that it ran
    assert any("swaggerUIRedirectOauth2" in error for error in offline.errors), offline.errors
    assert offline.violations == [] and offline.left == []


def test_a_request_off_the_machine_is_caught(offline: Offline) -> None:
    """The check above can fail: a page that does reach out is seen and stopped."""
    offline.page.goto("about:blank")
    outcome = offline.page.evaluate(
        "fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css')"
        ".then(() => 'reached', () => 'refused')")
    assert outcome == "refused"
    assert offline.left == ["https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"]
