from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import backend_env
from tests.server import ServeProcess


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[ServeProcess]:
    """One real `aerovision serve` (2 workers) shared by the API tests, per backend."""
    with backend_env(backend, request) as env:
        proc = ServeProcess(tmp_path_factory.mktemp("serve") / "data", workers=2, env=env).start()
        yield proc
        proc.stop()
