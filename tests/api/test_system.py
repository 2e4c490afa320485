"""/health, /api/v1/version, /docs and /openapi.json."""

from __future__ import annotations

from typing import Any

import requests

from aerovision import __version__
from tests.server import ServeProcess


def test_health_ok_with_workers(server: ServeProcess) -> None:
    response = requests.get(server.url("/health"), timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok" and body["queue"] == "ok"
    assert body["workers"] == 2
    assert isinstance(body["queue_depth"], int)
    assert set(body["tasks"]) == {"queued", "processing", "done", "error"}


def test_version(server: ServeProcess) -> None:
    body = requests.get(server.url("/api/v1/version"), timeout=10).json()
    assert body["name"] == "aerovision"
    assert body["version"] == __version__
    assert body["api_version"] == "v1"
    assert body["opencv"][0].isdigit()


def test_docs_page(server: ServeProcess) -> None:
    response = requests.get(server.url("/docs"), timeout=10)
    assert response.status_code == 200 and "swagger" in response.text.lower()


def _undescribed(schema: dict[str, Any], where: str) -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            missing.append(f"{where}.{name}")
    return missing


def test_openapi_describes_every_field(server: ServeProcess) -> None:
    spec = requests.get(server.url("/openapi.json"), timeout=10).json()
    missing: list[str] = []
    ours = {
        name: schema
        for name, schema in spec["components"]["schemas"].items()
        if name not in {"HTTPValidationError", "ValidationError"}
        and not name.startswith("Body_")
    }
    for name, schema in ours.items():
        missing += _undescribed(schema, name)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["in"] != "path" and not param.get("description"):
                    missing.append(f"{method.upper()} {path} ?{param['name']}")
    assert missing == []
    assert "/api/v1/match/template" in spec["paths"]
    form = spec["paths"]["/api/v1/match/template"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in form
