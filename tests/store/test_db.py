"""The schema: migrations create exactly what the models describe."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from aerovision.config import Settings
from aerovision.store import tasks as task_store
from aerovision.store.db import Database, migrate
from aerovision.store.models import DEFAULT_ACCOUNT_ID, Base
from aerovision.store.scope import DEFAULT, Owner
from aerovision.store.settings import get_tool_settings
from tests.backends import postgres_database


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate(url)
    migrate(url)  # idempotent
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate(url)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()


def _upgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from aerovision.store.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        db.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_rows_from_before_accounts_move_to_the_default_account(
    kind: str, tmp_path: Path
) -> None:
    """Migration 0005 on a database holding a task, a webhook and a setting."""
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'old.db'}"
        else:
            raw = stack.enter_context(postgres_database())
            url = Settings(database_url=raw, queue_url="redis://unused").db_url
        _upgrade(url, "0004")
        db = Database(url)
        stack.callback(db.dispose)
        now = "2026-01-02 03:04:05"
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO tasks (uid, status, tool, params, created_at, updated_at, "
                "input_files, thumbnails, result_files, result_data, attempts, files_attempts) "
                f"VALUES ('old-task', 'done', 'template', '{{}}', '{now}', '{now}', '[]', '[]', "
                "'[]', '{}', 1, 0)"
            ))
            conn.execute(text(
                "INSERT INTO webhooks (id, url, created_at) "
                f"VALUES ('wh_0123456789abcdef', 'https://hooks.example/x', '{now}')"
            ))
            conn.execute(text(
                "INSERT INTO tool_settings (tool, params, updated_at) "
                f"VALUES ('template', '{{\"threshold\": 0.6}}', '{now}')"
            ))
        db.dispose()
        migrate(url)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT account_id FROM tasks")).scalar() == DEFAULT_ACCOUNT_ID
            assert conn.execute(text("SELECT account_id FROM webhooks")).scalar() == (
                DEFAULT_ACCOUNT_ID)
            assert conn.execute(text("SELECT login FROM accounts")).scalar() == "default"
        assert get_tool_settings(db, "template")["threshold"] == 0.6
        assert task_store.get_task(db, "old-task", DEFAULT) is not None
        assert task_store.get_task(db, "old-task", Owner("someone-else")) is None
