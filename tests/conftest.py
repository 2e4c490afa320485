"""Shared fixtures: settings on a temporary data directory, opened services."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aerovision.api.services import Services
from aerovision.config import Settings
from aerovision.store.db import migrate


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AEROVISION_* variable of the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AEROVISION_") and name != "AEROVISION_REQUIRE_SERVICES":
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        workers=0,
        lease_s=3.0,
        reaper_interval_s=0.5,
        shutdown_grace_s=2.0,
        task_timeout_s=60.0,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    opened = Services.open(settings)
    yield opened
    opened.close()
