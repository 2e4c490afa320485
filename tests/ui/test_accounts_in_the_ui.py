"""The web UI on a server with accounts (AEROVISION_AUTH=accounts), in a real browser.

Sign-in makes a session token (POST /api/v1/tokens with the password as Basic auth);
only that token is kept, in sessionStorage, and every request and file download sends
it as ``Authorization: Bearer``: pictures come through blob: URLs. The account page
makes and revokes tokens; the accounts page (admins) makes and deletes accounts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.images import photo, scene_with_patch
from tests.server import ServeProcess
from tests.ui.conftest import DESKTOP, PHONE, open_page
from tests.ui.test_ui import A11Y_PROBLEMS, TASK_URL, expect_image_loaded, png_file, wait_done

ADMIN = ("admin@example.com", "admin-password-1")
SESSION_KEY = "aerovision.session"


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("ui-accounts") / "data", workers=2, env={
        "AEROVISION_AUTH": "accounts",
        "AEROVISION_ADMIN_LOGIN": ADMIN[0],
        "AEROVISION_ADMIN_PASSWORD": ADMIN[1],
    }).start()
    yield proc
    proc.stop()


class Watched:
    """A page and what it did: uncaught errors, every URL it requested, CSP violations."""

    def __init__(self, browser: Any, server: ServeProcess, viewport: dict[str, int]) -> None:
        self.context, self.page, self.errors = open_page(browser, server, viewport)
        self.urls: list[str] = []
        self.violations: list[str] = []
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on("console", lambda m: self.violations.append(m.text)
                     if "Content Security Policy" in m.text else None)

    def close(self) -> None:
        self.context.close()
        assert not self.errors.errors, f"uncaught errors in the page: {self.errors.errors}"
        assert self.violations == [], self.violations


@pytest.fixture
def watched(browser: Any, accounts_server: ServeProcess) -> Iterator[Any]:
    """watched(): a fresh page (its own browser context: its own session storage)."""
    opened: list[Watched] = []

    def new(viewport: dict[str, int] = DESKTOP) -> Watched:
        opened.append(Watched(browser, accounts_server, viewport))
        return opened[-1]

    yield new
    for w in opened:
        w.close()


def session_of(page: Any) -> dict[str, Any] | None:
    stored = page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
    return None if stored is None else json.loads(stored)


def sign_in(page: Any, login: str, password: str) -> dict[str, Any]:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".site-header .sign-out")).to_be_visible()
    stored = session_of(page)
    assert stored is not None and stored["kind"] == "token"
    return stored


def make_account(server: ServeProcess, login: str, account_type: str = "user") -> tuple[str, str]:
    password = f"{login.split('@')[0]}-password"
    answer = requests.post(server.url("/api/v1/accounts"), auth=ADMIN, timeout=10, json={
        "login": login, "password": password, "account_type": account_type})
    assert answer.status_code == 201, answer.text
    return login, password


TABLE = {
    "tasks": ["view", "creation", "deletion"],
    "settings": ["view", "modification"],
    "webhooks": ["view", "creation", "deletion"],
    "libraries": ["view", "creation", "modification", "deletion"],
    "recipes": ["view", "creation", "modification", "deletion"],
    "analyze": ["creation"],
    "events": ["view", "deletion"],
    "tokens": ["view", "creation", "modification", "deletion"],
}
"""SPEC-accounts.md's resources and actions."""


def as_sets(permissions: dict[str, list[str]]) -> dict[str, set[str]]:
    return {r: set(a) for r, a in permissions.items() if a}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# ---------------------------------------------------------------- sign in, a task, sign out


def test_sign_in_run_a_task_see_its_pictures_and_sign_out(
    watched: Any, accounts_server: ServeProcess, screenshot: Any
) -> None:
    w = watched()
    page = w.page
    page.goto("/#/new/template")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Login")).to_be_focused()
    expect(page.get_by_role("link", name="New task", exact=True)).to_be_hidden()
    assert page.evaluate(A11Y_PROBLEMS) == [], "sign-in page"
    screenshot(page, "20-accounts-sign-in")

    # a wrong password: the server's reason, and still signed out
    wrong = requests.get(accounts_server.url("/api/v1/account"), auth=(ADMIN[0], "nope-nope"),
                         timeout=10)
    assert wrong.status_code == 401
    page.get_by_label("Login").fill(ADMIN[0])
    page.get_by_label("Password").fill("nope-nope")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(wrong.json()["detail"])
    expect(page.get_by_label("Password")).to_be_focused()
    assert session_of(page) is None
    screenshot(page, "21-accounts-wrong-password")

    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Run template matching")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/new/template$"))  # where it was going
    expect(page.locator(".site-header .session")).to_contain_text(ADMIN[0])
    stored = session_of(page)
    assert stored is not None and stored["kind"] == "token"
    token = stored["secret"]
    assert ADMIN[1] not in page.evaluate("JSON.stringify(sessionStorage)")
    assert page.evaluate("localStorage.length") == 0

    # the session token: every permission, about 12 h, this account's data
    tokens = requests.get(accounts_server.url("/api/v1/tokens"), headers=bearer(token),
                          timeout=10).json()
    (mine,) = [t for t in tokens if t["token_id"] == stored["token_id"]]
    assert mine["description"].startswith("web UI sign-in ")
    assert mine["visibility_area"] == "account"
    held = requests.get(accounts_server.url("/api/v1/account"), auth=ADMIN, timeout=10).json()
    every = held.get("permissions") or TABLE  # what the account holds, when the server says
    assert as_sets(mine["permissions"]) == as_sets(every)
    expires = datetime.fromisoformat(mine["expiration_time"])
    created = datetime.fromisoformat(mine["created_at"])
    assert timedelta(hours=11) < expires - created <= timedelta(hours=12, minutes=1)

    # a template task through the form; its pictures come with the token
    scene, icon, _ = scene_with_patch(3, seed=11)
    page.get_by_label("Image", exact=True).set_input_files(png_file("screenshot.png", scene))
    page.get_by_label("Template", exact=True).set_input_files(png_file("icon.png", icon))
    page.get_by_role("button", name="Run template matching").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)
    uid = page.url.rsplit("/", 1)[1]
    task = requests.get(accounts_server.url(f"/api/v1/tasks/{uid}"), headers=bearer(token),
                        timeout=10).json()
    assert task["status"] == "done" and len(task["result_data"]["matches"]) == 3
    picture = page.get_by_alt_text("Matches drawn on screenshot.png")
    expect_image_loaded(picture)
    assert picture.get_attribute("src").startswith("blob:")
    assert picture.get_attribute("data-file").endswith("/matches.png")
    for name in ("screenshot.png", "icon.png"):
        expect_image_loaded(page.get_by_alt_text(f"Thumbnail of {name}"))
    page.get_by_label("Heat map over the image").check()
    expect_image_loaded(page.get_by_alt_text("Heat map of the match score"))
    expect_image_loaded(page.get_by_alt_text("The input image screenshot.png"))
    curl = page.locator("pre.curl").text_content()
    assert '-H "Authorization: Bearer $AEROVISION_TOKEN"' in curl and token not in curl
    screenshot(page, "22-accounts-task-done")

    # a download link saves the file itself
    heatmap = next(f for f in task["result_files"] if f.endswith("heatmap.png"))
    with page.expect_download() as download:
        page.locator(".downloads").get_by_role("link", name="heatmap.png").click()
    saved = download.value.path()
    expected = requests.get(accounts_server.url(f"/{heatmap}"), headers=bearer(token), timeout=10)
    assert expected.status_code == 200 and saved is not None
    assert open(saved, "rb").read() == expected.content
    assert download.value.suggested_filename == "heatmap.png"

    # neither the token nor the password ever went into a URL
    assert w.urls and not [u for u in w.urls if token in u or ADMIN[1] in u]
    unauthenticated = requests.get(accounts_server.url(f"/{heatmap}"), timeout=10)
    assert unauthenticated.status_code == 401

    # sign out: the token is revoked and forgotten
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Signed out.")).to_be_visible()
    assert session_of(page) is None
    gone = requests.get(accounts_server.url("/api/v1/account"), headers=bearer(token), timeout=10)
    assert gone.status_code == 401


def test_a_refused_session_brings_back_the_sign_in_page(
    watched: Any, accounts_server: ServeProcess
) -> None:
    page = watched().page
    stored = sign_in(page, *ADMIN)
    page.goto("/#/tasks")
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    # the token is revoked elsewhere (another tab, a script): the next request is refused
    answer = requests.delete(accounts_server.url(f"/api/v1/tokens/{stored['token_id']}"),
                             auth=ADMIN, timeout=10)
    assert answer.status_code == 204
    refused = requests.get(accounts_server.url("/api/v1/tasks"),
                           headers=bearer(stored["secret"]), timeout=10)
    assert refused.status_code == 401
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(refused.json()["detail"])
    expect(page.get_by_label("Login")).to_be_focused()
    assert session_of(page) is None
    # signing in again lands on the page it was going to
    page.get_by_label("Login").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"#/settings$"))
    expect(page.get_by_role("button", name="Save template settings")).to_be_visible()

    # a reload keeps the session (sessionStorage); a new tab starts signed out
    page.reload()
    expect(page.get_by_role("button", name="Save template settings")).to_be_visible()
    other = page.context.new_page()
    other.goto("/#/settings")
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()


# ---------------------------------------------------------------- tokens


def test_create_a_token_with_picked_permissions_copy_it_once_and_revoke_it(
    watched: Any, accounts_server: ServeProcess, screenshot: Any
) -> None:
    login, password = make_account(accounts_server, "camera-owner@example.com")
    page = watched().page
    sign_in(page, login, password)
    page.get_by_role("link", name="Account").click()
    expect(page).to_have_url(re.compile(r"#/account$"))
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    expect(page.locator(".stats")).to_contain_text(login)
    expect(page.locator(".stats")).to_contain_text("User")
    expect(page.locator("table.tokens tbody tr")).to_have_count(1)  # this sign-in
    expect(page.locator("table.tokens")).to_contain_text("this sign-in")
    expect(page.get_by_label("Visibility")).to_have_count(0)  # a user's tokens see its own data
    assert page.evaluate(A11Y_PROBLEMS) == [], "account page"

    # the shortcuts: everything, then nothing; a row; a column
    boxes = page.locator("table.permissions tbody input[data-action]")
    page.get_by_label("Every permission").check()
    assert all(b.is_checked() for b in boxes.all())
    page.get_by_label("Every permission").uncheck()
    assert not any(b.is_checked() for b in boxes.all())
    page.get_by_label("view: every resource").check()
    for resource in ("tasks", "settings", "webhooks", "events", "tokens"):
        expect(page.get_by_label(f"{resource}: view", exact=True)).to_be_checked()
    page.get_by_label("view: every resource").uncheck()

    page.get_by_label("Description").fill("line 3 camera")
    page.get_by_label("tasks: every action").check()
    page.get_by_label("tasks: deletion", exact=True).uncheck()
    page.get_by_label("settings: view", exact=True).check()
    page.get_by_label("analyze: creation", exact=True).check()
    expect(page.get_by_label("tasks: every action")).not_to_be_checked()
    page.get_by_label("Expires (optional)").fill("2031-05-06T07:08")
    page.get_by_role("button", name="Create token").click()

    box = page.locator(".secret-box")
    expect(box).to_be_visible()
    expect(box).to_contain_text("will not be shown again")
    secret = page.get_by_label("Secret").input_value()
    assert secret
    expect(page.get_by_label("Secret")).to_be_focused()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    box.get_by_role("button", name="Copy").click()
    expect(box.locator(".copy-status")).not_to_be_empty()
    screenshot(page, "23-accounts-new-token")

    # exactly the picked permissions, the expiry given (the browser runs in UTC)
    tokens = requests.get(accounts_server.url("/api/v1/tokens"), auth=(login, password),
                          timeout=10).json()
    (made,) = [t for t in tokens if t["description"] == "line 3 camera"]
    assert made["permissions"] == {"tasks": ["creation", "view"], "settings": ["view"],
                                   "analyze": ["creation"]}
    assert made["expiration_time"] == "2031-05-06T07:08:00"
    assert made["visibility_area"] == "account"
    assert requests.get(accounts_server.url("/api/v1/tasks"), headers=bearer(secret),
                        timeout=10).status_code == 200
    lacking = requests.get(accounts_server.url("/api/v1/webhooks"), headers=bearer(secret),
                           timeout=10)
    assert lacking.status_code == 403
    assert lacking.json()["detail"] == "token lacks permission webhooks:view"
    row = page.locator("table.tokens tbody tr").filter(has_text="line 3 camera")
    expect(row).to_contain_text("tasks: view, creation · settings: view · analyze: creation")

    # shown once: gone with "Done", and not on the page again
    box.get_by_role("button", name="Done").click()
    expect(box).to_have_count(0)
    assert secret not in page.content()
    page.reload()
    expect(row).to_be_visible()
    assert secret not in page.content()
    assert secret not in page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")

    # revoke, confirmed
    page.get_by_role("button", name="Revoke line 3 camera").click()
    page.get_by_role("button", name="Yes, revoke line 3 camera").click()
    expect(row).to_have_count(0)
    tokens = requests.get(accounts_server.url("/api/v1/tokens"), auth=(login, password),
                          timeout=10).json()
    assert [t for t in tokens if t["description"] == "line 3 camera"] == []
    assert requests.get(accounts_server.url("/api/v1/tasks"), headers=bearer(secret),
                        timeout=10).status_code == 401


def test_a_token_that_sees_every_account_needs_the_password(
    watched: Any, accounts_server: ServeProcess
) -> None:
    login, password = make_account(accounts_server, "auditor@example.com", "advanced_user")
    page = watched().page
    sign_in(page, login, password)
    page.goto("/#/account")
    page.get_by_label("Description").fill("audit reader")
    page.get_by_label("tasks: view", exact=True).check()
    page.get_by_label("Visibility").select_option("all")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".token-form .alert.error")).to_contain_text("Enter your password")
    page.get_by_label("Your password").fill(password)
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".secret-box")).to_be_visible()
    tokens = requests.get(accounts_server.url("/api/v1/tokens"), auth=(login, password),
                          timeout=10).json()
    (made,) = [t for t in tokens if t["description"] == "audit reader"]
    assert made["visibility_area"] == "all" and made["permissions"] == {"tasks": ["view"]}
    assert password not in page.evaluate("JSON.stringify(sessionStorage)")


# ---------------------------------------------------------------- accounts (admins)


def test_admin_creates_and_deletes_an_account_and_a_user_sees_no_accounts_page(
    watched: Any, accounts_server: ServeProcess, screenshot: Any
) -> None:
    admin = watched().page
    sign_in(admin, *ADMIN)
    admin.get_by_role("link", name="Accounts").click()
    expect(admin).to_have_url(re.compile(r"#/accounts$"))
    expect(admin.get_by_role("heading", name="Accounts", level=1)).to_be_visible()
    rows = admin.locator("table.accounts tbody tr")
    expect(rows.filter(has_text=ADMIN[0])).to_contain_text("your account")
    expect(rows.filter(has_text="default")).not_to_contain_text("Delete")
    assert admin.evaluate(A11Y_PROBLEMS) == [], "accounts page"

    admin.get_by_label("Login").fill("line4@example.com")
    admin.get_by_label("Password").fill("short")
    admin.get_by_role("button", name="Create account").click()
    expect(admin.get_by_text("The password needs 8 characters or more.")).to_be_visible()
    admin.get_by_label("Password").fill("line4-password")
    admin.get_by_label("Type").select_option("user")
    admin.get_by_label("Description (optional)").fill("line 4 operator")
    admin.get_by_role("button", name="Create account").click()
    row = rows.filter(has_text="line4@example.com")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("line 4 operator")
    listed = requests.get(accounts_server.url("/api/v1/accounts?limit=200"), auth=ADMIN,
                          timeout=10).json()["accounts"]
    (made,) = [a for a in listed if a["login"] == "line4@example.com"]
    assert made["account_type"] == "user" and made["description"] == "line 4 operator"
    screenshot(admin, "24-accounts-admin")

    # a taken login: the server's message
    admin.get_by_label("Login").fill("line4@example.com")
    admin.get_by_label("Password").fill("another-password")
    admin.get_by_role("button", name="Create account").click()
    expect(admin.locator(".account-form .alert.error")).to_contain_text("is taken")

    # the new user signs in: no Accounts page for a user
    user = watched().page
    sign_in(user, "line4@example.com", "line4-password")
    expect(user.get_by_role("link", name="Account", exact=True)).to_be_visible()
    expect(user.get_by_role("link", name="Accounts")).to_be_hidden()
    user.goto("/#/accounts")
    expect(user.get_by_role("alert")).to_contain_text("Only an admin account may manage accounts")
    assert user.locator("table.accounts").count() == 0
    user.goto("/#/tasks")
    expect(user.get_by_text("No tasks yet.")).to_be_visible()  # the admin's tasks are not here

    # the admin deletes it, confirmed; the user's next request goes back to sign-in
    admin.get_by_role("button", name="Delete line4@example.com").click()
    admin.get_by_role("button", name="Yes, delete line4@example.com").click()
    expect(row).to_have_count(0)
    listed = requests.get(accounts_server.url("/api/v1/accounts?limit=200"), auth=ADMIN,
                          timeout=10).json()["accounts"]
    assert "line4@example.com" not in [a["login"] for a in listed]
    user.get_by_role("link", name="Webhooks").click()
    expect(user.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(user.get_by_role("alert")).to_be_visible()


def test_the_accounts_pages_fit_a_phone(watched: Any, accounts_server: ServeProcess) -> None:
    page = watched(PHONE).page
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    page.goto("/")
    expect(page.get_by_label("Login")).to_be_focused()
    assert page.evaluate(overflow) <= 0, "sign-in"
    sign_in(page, *ADMIN)
    for hash_ in ("#/account", "#/accounts"):
        page.goto(f"/{hash_}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(overflow) <= 0, hash_


def test_inspect_pictures_load_through_the_token(
    watched: Any, accounts_server: ServeProcess
) -> None:
    """The generic renderer's pictures and file links, with credentials."""
    page = watched().page
    sign_in(page, *ADMIN)
    page.goto("/#/new/inspect")
    page.get_by_label("Image", exact=True).set_input_files(
        png_file("sample.png", photo("astronaut")[:120, :160]))
    page.get_by_role("button", name="Run inspect an image").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)
    picture = page.get_by_alt_text("Result picture histogram.png")
    expect_image_loaded(picture)
    assert picture.get_attribute("src").startswith("blob:")
    # its "open full size" link is the picture's own blob
    link = page.get_by_role("link", name="Open histogram.png full size")
    expect(link).to_have_attribute("href", picture.get_attribute("src"))
