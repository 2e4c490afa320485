"""The reaper: nothing stays queued or processing forever, on both backends.

Embedded: SQLite and its queue table. Scaled: PostgreSQL and Redis (real servers;
see tests/backends.py). A lost worker is played by claiming with a short lease
and never renewing it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aerovision.config import Settings
from aerovision.jobs.queue import Queue, RedisQueue, SqliteQueue
from aerovision.jobs.reaper import Reaper, ReapReport, reap_once
from aerovision.store import tasks as task_store
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database, migrate
from aerovision.store.models import TaskStatus
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from tests.backends import REDIS_URL, postgres_database, redis_prefix

LEASE_S = 1.5
"""The settings' lease: rows untouched for twice this are "lost" if no queue holds them
(long enough that "young" still holds on a loaded machine)."""

SHORT_LEASE_S = 0.05
"""The lease a lost worker took."""


@dataclass
class Stack:
    settings: Settings
    db: Database
    queue: Queue

    def reap(self, owner: str = "reaper") -> ReapReport:
        return reap_once(self.settings, self.db, self.queue, owner)

    def new_task(self, uid: str, *, enqueue: bool = True) -> None:
        task_store.create_task(self.db, uid=uid, tool="template", params={},
                               input_files=[], thumbnails=[])
        if enqueue:
            self.queue.enqueue(uid)

    def lose_worker(self, uid: str) -> None:
        """A worker claims ``uid``, starts the attempt and is never heard from again."""
        assert self.queue.claim("lost-worker", SHORT_LEASE_S, 0) == uid
        assert task_store.start_attempt(self.db, uid, "lost-worker") is not None

    def status(self, uid: str) -> tuple[TaskStatus, int, str | None]:
        task = task_store.get_task(self.db, uid, None)
        assert task is not None
        return task.status, task.attempts, task.error


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", lease_s=LEASE_S, max_attempts=2,
                    reaper_interval_s=0.1, **extra)  # type: ignore[arg-type]


@pytest.fixture(params=["embedded", "scaled"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "embedded":
        settings = _settings(tmp_path)
        settings.data_dir.mkdir(parents=True)
        migrate(settings.db_url)
        db = Database(settings.db_url)
        queue: Queue = SqliteQueue(db)
        yield Stack(settings, db, queue)
        queue.close()
        db.dispose()
        return
    with postgres_database() as database_url, redis_prefix() as prefix:
        settings = _settings(tmp_path, database_url=database_url, queue_url=REDIS_URL,
                             queue_prefix=prefix)
        migrate(settings.db_url)
        db = Database(settings.db_url)
        queue = RedisQueue(REDIS_URL, prefix=prefix, orphan_lease_s=SHORT_LEASE_S)
        yield Stack(settings, db, queue)
        queue.close()
        db.dispose()


def _after(seconds: float) -> None:
    """Let leases (or the lost-task age) run out."""
    time.sleep(seconds)


def test_an_expired_lease_goes_back_to_the_queue(stack: Stack) -> None:
    stack.new_task("t1")
    stack.lose_worker("t1")
    assert stack.status("t1") == (TaskStatus.PROCESSING, 1, None)
    _after(2 * SHORT_LEASE_S)

    report = stack.reap()

    assert report == ReapReport(requeued=["t1"])
    assert stack.status("t1") == (TaskStatus.QUEUED, 1, None)  # the attempt still counts
    assert not stack.queue.renew("t1", "lost-worker", 10)  # the lost worker learns it
    assert stack.queue.claim("next-worker", 10, 0) == "t1"
    assert stack.reap() == ReapReport()  # leased again: nothing to do


def test_a_task_out_of_attempts_ends_in_error_with_the_reason(stack: Stack) -> None:
    hook = webhook_store.create_webhook(stack.db, DEFAULT_OWNER, "https://hooks.example/x", None)
    stack.new_task("t1")
    for attempt in (1, 2):
        stack.lose_worker("t1")
        _after(2 * SHORT_LEASE_S)
        report = stack.reap()
        if attempt == 1:
            assert report == ReapReport(requeued=["t1"])

    assert report == ReapReport(failed=["t1"])
    assert stack.status("t1") == (
        TaskStatus.ERROR, 2,
        "the worker running the task stopped responding (lease of 1.5 s expired); "
        "gave up after 2 attempts",
    )
    assert stack.queue.holds(["t1"]) == set()
    [delivery] = webhook_store.list_deliveries(stack.db, hook.id)
    assert (delivery.task_uid, delivery.event) == ("t1", "task.error")


def test_a_task_no_queue_holds_is_enqueued_again_once_it_is_old_enough(stack: Stack) -> None:
    stack.new_task("never-enqueued", enqueue=False)  # the API died between row and enqueue
    stack.new_task("flushed")
    stack.lose_worker("flushed")
    stack.queue.ack("flushed")  # the queue lost it (Redis emptied) while it was processing

    # young rows are left alone: the API enqueues right after writing the row
    assert stack.reap() == ReapReport()
    assert stack.queue.holds(["never-enqueued", "flushed"]) == set()
    _after(2 * LEASE_S + 0.1)

    report = stack.reap()

    assert sorted(report.restored) == ["flushed", "never-enqueued"]
    assert report.requeued == report.failed == []
    assert stack.status("never-enqueued") == (TaskStatus.QUEUED, 0, None)
    assert stack.status("flushed") == (TaskStatus.QUEUED, 1, None)
    claimed = {stack.queue.claim("w", 10, 0), stack.queue.claim("w", 10, 0)}
    assert claimed == {"never-enqueued", "flushed"}
    assert stack.reap() == ReapReport()


def test_the_expired_lease_of_a_task_that_ended_is_dropped(stack: Stack) -> None:
    """The worker recorded the end, then died before its ack."""
    stack.new_task("t1")
    stack.lose_worker("t1")
    assert task_store.finish_task(stack.db, "t1", status=TaskStatus.DONE,
                                  result_files=[], result_data={"x": 1})
    _after(2 * SHORT_LEASE_S)

    assert stack.reap() == ReapReport()

    assert stack.queue.holds(["t1"]) == set()
    assert stack.status("t1") == (TaskStatus.DONE, 1, None)


def test_two_reapers_put_a_task_back_once(stack: Stack) -> None:
    stack.new_task("t1")
    stack.lose_worker("t1")
    _after(2 * SHORT_LEASE_S)

    first, second = stack.reap("reaper-a"), stack.reap("reaper-b")

    assert first == ReapReport(requeued=["t1"]) and second == ReapReport()
    assert stack.queue.claim("w", 10, 0) == "t1"
    assert stack.queue.claim("w", 10, 0) is None  # in the queue once
    if isinstance(stack.queue, RedisQueue):
        # scaled: reaper-a holds the lock, so reaper-b leaves even an expired lease alone
        stack.new_task("t2")
        stack.lose_worker("t2")
        _after(2 * SHORT_LEASE_S)
        assert stack.reap("reaper-b") == ReapReport()
        assert stack.reap("reaper-a") == ReapReport(requeued=["t2"])


def test_the_reaper_thread_reaps_until_stopped(stack: Stack) -> None:
    stack.new_task("t1")
    stack.lose_worker("t1")
    reaper = Reaper(stack.settings, stack.db, stack.queue)
    reaper.start()
    try:
        deadline = time.monotonic() + 10
        while stack.status("t1")[0] is not TaskStatus.QUEUED:
            assert time.monotonic() < deadline, "the reaper did not put the task back"
            time.sleep(0.05)
    finally:
        reaper.stop()
        reaper.join(5)
    assert not reaper.is_alive()
    assert stack.queue.claim("w", 10, 0) == "t1"
