from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import backend_env
from tests.server import ServeProcess


@contextmanager
def serve_for_module(
    request: pytest.FixtureRequest,
    backend: str,
    name: str,
    *,
    workers: int,
    env: dict[str, str] | None = None,
) -> Iterator[ServeProcess]:
    """A real `aerovision serve` on fresh storage of ``backend``, with ``env`` on top;
    stopped afterwards. (Fixtures take ``backend`` themselves, so pytest runs their
    tests once per backend.)"""
    tmp_path_factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    with backend_env(backend, request) as base:
        proc = ServeProcess(
            tmp_path_factory.mktemp(name) / "data", workers=workers, env={**base, **(env or {})}
        ).start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    """One real `aerovision serve` (2 workers) shared by the API tests, per backend
    (its webhooks reach receivers on 127.0.0.1)."""
    env = {"AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1"}
    with serve_for_module(request, backend, "serve", workers=2, env=env) as proc:
        yield proc
