"""/docs and /redoc name no other host: every file they load is the API's own, with its type.

The browser side (the pages rendering with the network closed) is tests/ui/test_docs_offline.py.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from starlette.exceptions import StarletteDeprecationWarning

from aerovision.api.app import create_app
from aerovision.config import Settings
from tests.server import ServeProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")

REFERENCE = re.compile(r'\b(?:src|href|spec-url|data-[a-z0-9-]*url)="([^"]*)"')
"""The attributes through which a page loads (or points to) something."""

TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The docs depend on no backend and no worker: one real `serve`, API only."""
    proc = ServeProcess(tmp_path_factory.mktemp("docs") / "data", workers=0).start()
    yield proc
    proc.stop()


def _references(server: ServeProcess) -> set[str]:
    found: set[str] = set()
    for path in PAGES:
        page = requests.get(server.url(path), timeout=10)
        found |= set(REFERENCE.findall(page.text))
    return found


@pytest.mark.parametrize("path", PAGES)
def test_the_docs_pages_name_no_other_host(server: ServeProcess, path: str) -> None:
    response = requests.get(server.url(path), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert not re.search(r"(?:https?:)?//[a-z0-9]", response.text, re.IGNORECASE), (
        "an absolute or scheme-relative URL in " + path)
    for reference in REFERENCE.findall(response.text):
        assert reference.startswith("/") and not reference.startswith("//"), reference

    policy = response.headers["Content-Security-Policy"]
    assert not re.search(r"https?:|\*|'unsafe-eval'", policy), policy
    scripts = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in scripts
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_start_up_script_is_the_apis_own_file(server: ServeProcess) -> None:
    page = requests.get(server.url("/docs"), timeout=10).text
    assert "<script>" not in page  # no inline script: each one has a src
    assert 'src="/docs/swagger-ui-init.js"' in page
    script = requests.get(server.url("/docs/swagger-ui-init.js"), timeout=10)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "SwaggerUIBundle(" in script.text
    assert not re.search(r"https?://", script.text)


def test_every_file_the_pages_load_is_served_with_its_type(server: ServeProcess) -> None:
    references = {r for r in _references(server) if r != "/openapi.json" and "oauth2" not in r}
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
            "/docs/assets/redoc.standalone.js", "/docs/assets/favicon.png",
            "/docs/swagger-ui-init.js"} == references
    for reference in references:
        response = requests.get(server.url(reference), timeout=10)
        assert response.status_code == 200, reference
        assert response.headers["Content-Type"].startswith(TYPES[Path(reference).suffix])
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-cache"
        again = requests.get(server.url(reference), timeout=10,
                             headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""
    assert requests.get(server.url("/openapi.json"), timeout=10).status_code == 200


def test_redoc_is_served_without_its_remote_logo(server: ServeProcess) -> None:
    bundle = requests.get(server.url("/docs/assets/redoc.standalone.js"), timeout=10).text
    assert "cdn.redoc.ly" not in bundle
    assert "API docs by Redocly" in bundle  # the attribution stays, as text


def test_only_the_packaged_files_are_served(server: ServeProcess) -> None:
    for name in ("LICENSE", "..%2Fcore.py", "index.html", "oauth2-redirect.html"):
        response = requests.get(server.url(f"/docs/assets/{name}"), timeout=10)
        assert response.status_code == 404, name


def test_behind_api_keys_the_docs_and_their_files_need_none(tmp_path: Path) -> None:
    """The docs describe the API, not anyone's data: a browser opens them, and the UI
    asks for the key, without one (docs/decisions.md, "Accounts")."""
    app = create_app(Settings(data_dir=tmp_path, api_keys="k-docs-0123456789"))
    client = TestClient(app)  # no lifespan: the docs need no services
    for path in (*PAGES, "/docs/swagger-ui-init.js", "/docs/assets/favicon.png"):
        assert client.get(path).status_code == 200, path
