"""The delivery outbox's claim: per-receiver caps, order, and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aerovision.config import Settings
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database, migrate
from aerovision.store.models import utcnow
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from tests.backends import postgres_database

LEASE_S = 60.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'claims.db'}"
        migrate(url)
        database = Database(url)
        yield database
        database.dispose()
        return
    with postgres_database() as raw_url:
        url = Settings(database_url=raw_url, queue_url="redis://unused").db_url
        migrate(url)
        database = Database(url)
        yield database
        database.dispose()


def _two_receivers(db: Database) -> tuple[str, str]:
    slow = webhook_store.create_webhook(db, DEFAULT_OWNER, "https://slow.example/hook", None).id
    quick = webhook_store.create_webhook(db, DEFAULT_OWNER, "https://quick.example/hook", None).id
    return slow, quick


def test_a_receiver_at_its_cap_leaves_the_slots_to_the_others(db: Database) -> None:
    slow, quick = _two_receivers(db)
    # add_deliveries writes one delivery per webhook: both get 10, slow's first ones oldest
    with db.transaction() as conn:
        for i in range(10):
            webhook_store.add_deliveries(conn, f"task-{i}", "done",
                                         utcnow() - timedelta(seconds=100 - i))
    claimed = webhook_store.claim_due(db, 64, LEASE_S, per_receiver=4)
    per_hook = Counter(d.webhook_id for d in claimed)
    assert per_hook == {slow: 4, quick: 4}
    # oldest first within each receiver, and overall
    assert [d.task_uid for d in claimed if d.webhook_id == slow] == [f"task-{i}" for i in range(4)]
    assert [d.next_attempt_at for d in claimed] == sorted(d.next_attempt_at for d in claimed)
    # both at their cap: nothing more, however many slots are free
    assert webhook_store.claim_due(db, 64, LEASE_S, per_receiver=4) == []
    # one attempt of the slow receiver ends (to be retried later): it gets one slot back,
    # for its next oldest delivery
    first = next(d for d in claimed if d.webhook_id == slow)
    webhook_store.record_attempt(db, first.id, ok=False, response_code=None, error="x",
                                 retry_at=utcnow() + timedelta(hours=1))
    [next_one] = webhook_store.claim_due(db, 64, LEASE_S, per_receiver=4)
    assert next_one.webhook_id == slow and next_one.task_uid == "task-4"
    # deliveries held back were never counted as attempts
    held = [d for d in webhook_store.list_deliveries(db, slow, 100) if d.task_uid >= "task-5"]
    assert len(held) == 5 and all(d.attempts == 0 and d.status.value == "pending" for d in held)


def test_the_global_limit_takes_the_oldest_within_the_caps(db: Database) -> None:
    slow, quick = _two_receivers(db)
    with db.transaction() as conn:
        for i in range(6):
            webhook_store.add_deliveries(conn, f"task-{i}", "done",
                                         utcnow() - timedelta(seconds=100 - i))
    claimed = webhook_store.claim_due(db, 3, LEASE_S, per_receiver=2)
    assert len(claimed) == 3
    assert Counter(d.webhook_id for d in claimed) in ({slow: 2, quick: 1}, {slow: 1, quick: 2})
    assert {d.task_uid for d in claimed} <= {"task-0", "task-1"}


def test_caps_count_the_claims_of_every_notifier_process(db: Database) -> None:
    """Two notifier processes (two Database objects, as in scale-out) share the cap."""
    slow, _quick = _two_receivers(db)
    other = Database(db.url)
    try:
        with db.transaction() as conn:
            for i in range(8):
                webhook_store.add_deliveries(conn, f"task-{i}", "done",
                                             utcnow() - timedelta(seconds=100 - i))
        mine = webhook_store.claim_due(db, 3, LEASE_S, per_receiver=3)
        theirs = webhook_store.claim_due(other, 64, LEASE_S, per_receiver=3)
        both = Counter(d.webhook_id for d in mine + theirs)
        assert both[slow] == 3
        assert not {d.id for d in mine} & {d.id for d in theirs}  # never the same delivery
    finally:
        other.dispose()


def test_an_expired_lease_frees_the_slot_and_the_delivery(db: Database) -> None:
    slow, _quick = _two_receivers(db)
    with db.transaction() as conn:
        webhook_store.add_deliveries(conn, "task-0", "done", utcnow() - timedelta(seconds=5))
    claimed = webhook_store.claim_due(db, 64, 0.0, per_receiver=1)
    assert {d.webhook_id for d in claimed} == {slow, _quick}
    # a lease of 0 s has expired: the delivery (whose attempt was lost) can be claimed again
    again = webhook_store.claim_due(db, 64, LEASE_S, per_receiver=1)
    assert {d.id for d in again} == {d.id for d in claimed}
    assert webhook_store.claim_due(db, 64, LEASE_S, per_receiver=1) == []
