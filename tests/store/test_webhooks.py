"""Webhook registrations and the outbox, on SQLite and PostgreSQL: a task's end and its
pending deliveries are written in one transaction. (Claims: test_webhook_claims.py.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from aerovision.store import tasks as task_store
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database
from aerovision.store.models import DeliveryStatus, TaskStatus, utcnow
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER


def _processing(db: Database, uid: str) -> None:
    task_store.create_task(db, uid=uid, tool="template", params={}, input_files=[],
                           thumbnails=[])
    task_store.start_attempt(db, uid, "worker")


def _done(db: Database, uid: str) -> None:
    _processing(db, uid)
    assert task_store.finish_task(db, uid, status=TaskStatus.DONE, result_files=[],
                                  result_data={})


def test_webhooks_are_registered_listed_and_deleted(database: Database) -> None:
    first = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://a.example/hook", "s3cret")
    second = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://b.example/hook", None)

    assert re.fullmatch(r"wh_[0-9a-f]{16}", first.id) and first.id != second.id
    assert (first.url, first.secret) == ("https://a.example/hook", "s3cret")
    assert webhook_store.list_webhooks(database, DEFAULT_OWNER) == [first, second]  # oldest first
    assert webhook_store.get_webhook(database, second.id, None) == second
    assert webhook_store.get_webhook(database, "wh_0000000000000000", None) is None

    assert webhook_store.delete_webhook(database, DEFAULT_OWNER, first.id)
    assert not webhook_store.delete_webhook(database, DEFAULT_OWNER, first.id)
    assert webhook_store.list_webhooks(database, DEFAULT_OWNER) == [second]


def test_a_task_s_end_writes_one_pending_delivery_per_webhook(database: Database) -> None:
    hooks = [webhook_store.create_webhook(database, DEFAULT_OWNER, f"https://{n}.example/h", None).id
             for n in ("a", "b")]
    _processing(database, "ok")
    _processing(database, "bad")

    assert task_store.finish_task(database, "ok", status=TaskStatus.DONE, result_files=[],
                                  result_data={})
    assert task_store.finish_task(database, "bad", status=TaskStatus.ERROR, error="no")

    ended = {uid: task_store.get_task(database, uid, None) for uid in ("ok", "bad")}
    for hook in hooks:
        deliveries = {d.task_uid: d for d in webhook_store.list_deliveries(database, hook)}
        assert set(deliveries) == {"ok", "bad"}
        for uid, event in (("ok", "task.done"), ("bad", "task.error")):
            delivery, task = deliveries[uid], ended[uid]
            assert task is not None
            assert re.fullmatch(r"dl_[0-9a-f]{20}", delivery.id)
            assert (delivery.webhook_id, delivery.event, delivery.status, delivery.attempts) == (
                hook, event, DeliveryStatus.PENDING, 0)
            assert delivery.event_at == delivery.next_attempt_at == task.updated_at
            assert delivery.body is None and delivery.delivered_at is None


def test_a_task_ends_once_so_it_is_notified_once(database: Database) -> None:
    hook = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://a.example/h", None).id
    _done(database, "t1")

    assert not task_store.finish_task(database, "t1", status=TaskStatus.ERROR, error="again")

    assert [d.event for d in webhook_store.list_deliveries(database, hook)] == ["task.done"]


def test_without_webhooks_a_task_ends_with_no_deliveries(database: Database) -> None:
    _done(database, "t1")
    later = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://late.example/h", None).id
    assert webhook_store.list_deliveries(database, later) == []  # no back-filling


def test_the_end_and_the_outbox_are_one_transaction(database: Database) -> None:
    """If the deliveries cannot be written, the task has not ended either (so the worker
    retries and nothing ends without its notifications)."""
    webhook_store.create_webhook(database, DEFAULT_OWNER, "https://a.example/h", None)
    _processing(database, "t1")
    with database.transaction() as conn:  # the outbox table is gone (a broken database)
        conn.execute(text("DROP TABLE webhook_deliveries"))

    with pytest.raises(DBAPIError, match="webhook_deliveries"):
        task_store.finish_task(database, "t1", status=TaskStatus.DONE, result_files=["x"],
                               result_data={"x": 1})

    task = task_store.get_task(database, "t1", None)
    assert task is not None and task.status is TaskStatus.PROCESSING
    assert task.result_files == [] and task.result_data == {}


def test_deleting_a_webhook_drops_its_deliveries_only(database: Database) -> None:
    gone = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://gone.example/h", None).id
    kept = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://kept.example/h", None).id
    _done(database, "t1")

    assert webhook_store.delete_webhook(database, DEFAULT_OWNER, gone)

    assert webhook_store.list_deliveries(database, gone) == []
    assert [d.task_uid for d in webhook_store.list_deliveries(database, kept)] == ["t1"]


def test_deliveries_are_listed_newest_first(database: Database) -> None:
    hook = webhook_store.create_webhook(database, DEFAULT_OWNER, "https://a.example/h", None).id
    for uid in ("t1", "t2", "t3"):
        _done(database, uid)

    assert [d.task_uid for d in webhook_store.list_deliveries(database, hook)] == [
        "t3", "t2", "t1"]
    assert [d.task_uid for d in webhook_store.list_deliveries(database, hook, limit=2)] == [
        "t3", "t2"]


def test_attempts_are_recorded_as_delivered_retried_or_failed(database: Database) -> None:
    hooks = [webhook_store.create_webhook(database, DEFAULT_OWNER, f"https://{n}.example/h", None).id
             for n in ("ok", "retry", "failed")]
    _done(database, "t1")
    ids = {hook: webhook_store.list_deliveries(database, hook)[0].id for hook in hooks}
    ok, retry, failed = (ids[h] for h in hooks)
    retry_at = (utcnow() + timedelta(minutes=5)).replace(microsecond=0)

    webhook_store.set_body(database, ok, '{"uid":"t1"}')
    webhook_store.set_body(database, ok, '{"uid":"other"}')  # the first body stays
    webhook_store.record_attempt(database, ok, ok=True, response_code=204, error=None,
                                 retry_at=None)
    webhook_store.record_attempt(database, retry, ok=False, response_code=503,
                                 error="receiver answered HTTP 503", retry_at=retry_at)
    webhook_store.record_attempt(database, failed, ok=False, response_code=None,
                                 error="bad\x00byte", retry_at=None)

    delivered, later, gave_up = (webhook_store.list_deliveries(database, h)[0] for h in hooks)
    assert (delivered.status, delivered.attempts, delivered.response_code) == (
        DeliveryStatus.DELIVERED, 1, 204)
    assert delivered.body == '{"uid":"t1"}' and delivered.delivered_at is not None
    assert (later.status, later.attempts, later.next_attempt_at, later.error) == (
        DeliveryStatus.PENDING, 1, retry_at, "receiver answered HTTP 503")
    assert (gave_up.status, gave_up.attempts, gave_up.error) == (
        DeliveryStatus.FAILED, 1, "bad\ufffdbyte")


def test_deliveries_are_counted_by_status(database: Database) -> None:
    hooks = [webhook_store.create_webhook(database, DEFAULT_OWNER, f"https://{n}.example/h", None).id
             for n in ("a", "b")]
    _done(database, "t1")
    _done(database, "t2")
    first = webhook_store.list_deliveries(database, hooks[0])[0].id
    webhook_store.record_attempt(database, first, ok=True, response_code=200, error=None,
                                 retry_at=None)
    assert webhook_store.count_by_status(database, DEFAULT_OWNER) == {"pending": 3, "delivered": 1,
                                                        "failed": 0}
