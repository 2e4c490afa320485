"""Property-based fuzzing of every operation in the service's own /openapi.json.

Schemathesis runs against a live server of its own (it changes settings),
bounded so CI stays fast: about 20 generated requests per operation and phase,
with a fixed seed. Every answer must be documented, match its schema and never
be a 5xx.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import serve_for_module
from tests.server import ServeProcess

EXCLUDED_CHECKS = ["positive_data_acceptance"]
"""A schema cannot say "these bytes must be a PNG": schema-valid uploads that are
not images are, rightly, refused with a documented 422."""

EXCLUDED_OPERATIONS = ["POST /api/v1/webhooks"]
"""Generated webhook URLs would make the notifier post to arbitrary addresses;
webhook registration is tested with real local receivers instead."""


@pytest.fixture(scope="module")
def fuzz_server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "fuzz", workers=1) as proc:
        yield proc


def test_no_operation_fails_or_breaks_its_contract(fuzz_server: ServeProcess, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", fuzz_server.url("/openapi.json"),
        "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--max-examples", "20", "--seed", "1", "--no-color", "--request-timeout", "30",
    ]
    for name in EXCLUDED_OPERATIONS:
        command += ["--exclude-name", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "POST /api/v1/match/template" in result.stdout or "20/" in result.stdout
