"""A hostile upload opened in a real browser runs nothing on the API's origin.

The upload is a valid PNG with an HTML page in a tEXt chunk; its script would
fetch ``/api/v1/tasks?stolen=<marker>``. Whatever name the client gave it, the
server's access log must never show that request, and the UI itself must load
under its Content-Security-Policy with no violation.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from tests.api.test_files import upload_polyglot
from tests.server import ServeProcess


@pytest.mark.parametrize("name", ["x.html", "x.svg", "x.xhtml", "x.png", "x"])
def test_a_polyglot_upload_runs_no_script(page: Any, ui_server: ServeProcess, name: str) -> None:
    marker = f"m{abs(hash(name))}"
    path, _ = upload_polyglot(ui_server, name, f"fetch('/api/v1/tasks?stolen={marker}')")
    try:
        page.goto(f"/{path}")
        page.wait_for_timeout(500)
    except PlaywrightError as exc:  # an attachment starts a download instead of a page
        assert "Download is starting" in str(exc)
    requests.get(ui_server.url("/api/v1/version"), timeout=5)  # flush the log
    assert f"stolen={marker}" not in ui_server.log()


def test_the_ui_loads_under_its_policy_without_violations(
    page: Any, ui_server: ServeProcess
) -> None:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    routes = ["/", "/#/new/template", "/#/new/inspect", "/#/new/chain", "/#/tasks",
              "/#/settings", "/#/webhooks"]
    for route in routes:
        page.goto(route)
        page.wait_for_load_state("networkidle")
    assert violations == []
