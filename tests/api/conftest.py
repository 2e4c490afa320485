from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import ServeProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One real `aerovision serve` (2 workers) shared by the API tests."""
    proc = ServeProcess(tmp_path_factory.mktemp("serve") / "data", workers=2).start()
    yield proc
    proc.stop()
