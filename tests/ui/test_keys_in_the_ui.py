"""The web UI on a server with static API keys (AEROVISION_API_KEYS): it asks for the key,
keeps it for the tab (sessionStorage), sends it as ``Authorization: Bearer`` on every
request and file download, and asks again when the server refuses it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.images import scene_with_patch
from tests.server import ServeProcess
from tests.ui.conftest import DESKTOP, open_page
from tests.ui.test_ui import A11Y_PROBLEMS, TASK_URL, expect_image_loaded, png_file, wait_done

KEY = "ui-test-key-0123456789"


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("ui-keys") / "data", workers=1,
                        env={"AEROVISION_API_KEYS": f"{KEY},another-key-9876543210"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def keys_page(browser: Any, keys_server: ServeProcess) -> Iterator[tuple[Any, list[str]]]:
    context, page, errors = open_page(browser, keys_server, DESKTOP)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    yield page, urls
    context.close()
    assert not errors.errors, f"uncaught errors in the page: {errors.errors}"


def test_keys_mode_asks_for_the_key_and_then_works(
    keys_page: tuple[Any, list[str]], keys_server: ServeProcess, screenshot: Any
) -> None:
    page, urls = keys_page
    assert requests.get(keys_server.url("/health"), timeout=10).json()["auth"] == "keys"
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    key_field = page.get_by_label("API key")
    expect(key_field).to_be_focused()
    expect(key_field).to_have_attribute("type", "password")
    assert page.evaluate(A11Y_PROBLEMS) == [], "sign-in page (keys)"

    refused = requests.get(keys_server.url("/api/v1/tools"), headers={
        "Authorization": "Bearer not-the-key"}, timeout=10)
    assert refused.status_code == 401
    key_field.fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(refused.json()["detail"])
    key_field.fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Run template matching")).to_be_visible()
    expect(page.locator(".site-header .session")).to_contain_text("API key")
    # no accounts here: no Account or Accounts pages
    expect(page.get_by_role("link", name="Account", exact=True)).to_be_hidden()
    expect(page.get_by_role("link", name="Accounts", exact=True)).to_be_hidden()
    assert KEY in (page.evaluate("sessionStorage.getItem('aerovision.session')") or "")
    assert page.evaluate("localStorage.length") == 0

    scene, icon, _ = scene_with_patch(2, seed=5)
    page.get_by_label("Image", exact=True).set_input_files(png_file("scene.png", scene))
    page.get_by_label("Template", exact=True).set_input_files(png_file("icon.png", icon))
    page.get_by_role("button", name="Run template matching").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)
    picture = page.get_by_alt_text("Matches drawn on scene.png")
    expect_image_loaded(picture)
    assert picture.get_attribute("src").startswith("blob:")
    expect_image_loaded(page.get_by_alt_text("Thumbnail of scene.png"))
    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    screenshot(page, "25-keys-tasks")
    assert not [u for u in urls if KEY in u]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto("/#/settings")
    expect(page.get_by_label("API key")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/settings$"))
