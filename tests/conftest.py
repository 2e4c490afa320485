"""Shared fixtures: settings on a temporary data directory, opened services."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from aerovision.api.services import Services
from aerovision.config import Settings
from aerovision.store.db import Database, migrate
from tests.backends import REDIS_URL, MotoServer, postgres_database, redis_prefix

pytest_plugins = ("tests.inprocess",)
"""The in-process service fixture (``inprocess``): API and worker in the test's process."""


LONGEST_FIRST = (
    "tests/test_library_durability.py",
    "tests/test_runtime.py",
    "tests/api/test_webhooks.py",
    "tests/api/test_fuzz.py",
    "tests/test_cluster.py",
    "tests/test_store_outage.py",
    "tests/engine/test_feature.py",
    "tests/api/test_http_hygiene.py",
    "tests/api/test_libraries.py",
)
"""The files that take longest (1–3 minutes each): started first, so that with
``make test``'s processes side by side none of them is left running alone at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order and stay together


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


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database of each kind: a SQLite file, and PostgreSQL."""
    if request.param == "sqlite":
        with _migrated(f"sqlite:///{tmp_path / 'aerovision.db'}") as db:
            yield db
        return
    with (
        postgres_database() as raw_url,
        _migrated(Settings(database_url=raw_url, queue_url="redis://unused").db_url) as db,
    ):
        yield db


@contextmanager
def _migrated(url: str) -> Iterator[Database]:
    migrate(url)
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3-compatible server, started on first use."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["embedded", "scaled"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every service-level test runs on both: SQLite + local files, and
    PostgreSQL + Redis + S3 (moto)."""
    return str(request.param)


@contextmanager
def backend_env(kind: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment variables pointing a new `serve` at fresh storage of ``kind``."""
    if kind == "embedded":
        yield {}
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    with postgres_database() as database_url, redis_prefix() as prefix:
        yield {
            "AEROVISION_DATABASE_URL": database_url,
            "AEROVISION_QUEUE_URL": REDIS_URL,
            "AEROVISION_QUEUE_PREFIX": prefix,
            "AEROVISION_STORAGE_URL": f"s3://{moto.new_bucket()}/files",
            "AEROVISION_S3_ENDPOINT_URL": moto.url,
            "AEROVISION_S3_ACCESS_KEY_ID": "test",
            "AEROVISION_S3_SECRET_ACCESS_KEY": "test",
        }


@pytest.fixture
def fresh_backend(backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A fresh backend of the session's kind for one test's own servers."""
    with backend_env(backend, request) as env:
        yield env
