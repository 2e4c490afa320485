"""Property-based fuzzing of every operation in the service's own /openapi.json.

Schemathesis runs against a live server of its own (it changes settings and
registers webhooks), with every check, 100 generated requests per operation and
phase and a fixed seed. Every answer must be documented, match its schema and
never be a 5xx; schema-valid data must be accepted, schema-invalid data refused.
The server keeps its default webhook address policy, so generated webhook URLs
that point inside the machine are refused at registration.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.conftest import serve_for_module
from tests.server import ServeProcess

EXAMPLES = 100

CONFIG = """
[[operations]]
include-path-regex = "^/api/v1/match/"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path-regex = "^/api/v1/libraries/[^/]+/(images|search)$"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-name = "POST /api/v1/webhooks"
checks.positive_data_acceptance.enabled = false
"""
"""The two exceptions to "schema-valid data is accepted", each refused with a documented
422 that says why: a schema cannot say "these bytes must be a PNG" (uploads: the tools'
and the libraries' images), nor which
addresses a URL's host resolves to and whether the server lets webhooks reach them."""


@pytest.fixture(scope="module")
def fuzz_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "fuzz", workers=1) as proc:
        yield proc


def test_no_operation_fails_or_breaks_its_contract(fuzz_server: ServeProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        fuzz_server.url("/openapi.json"), "--max-examples", str(EXAMPLES),
        "--seed", "1", "--no-color", "--request-timeout", "30",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    paths = requests.get(fuzz_server.url("/openapi.json"), timeout=10).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    assert f"{operations} selected / {operations} total" in result.stdout, result.stdout[-3000:]
