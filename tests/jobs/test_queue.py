"""The queue contract; every backend must pass this one suite."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aerovision.api.services import Services
from aerovision.jobs.queue import Queue, RedisQueue, SqliteQueue
from tests.backends import REDIS_URL, redis_prefix


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, services: Services) -> Iterator[Queue]:
    if request.param == "sqlite":
        yield SqliteQueue(services.db)
        return
    with redis_prefix() as prefix:
        redis_queue = RedisQueue(REDIS_URL, prefix=prefix, orphan_lease_s=0.2)
        yield redis_queue
        redis_queue.close()


def test_fifo_claim_and_ack(queue: Queue) -> None:
    for uid in ("a", "b", "c"):
        queue.enqueue(uid)
    queue.enqueue("a")  # duplicate enqueue is a no-op
    assert queue.depth() == 3
    assert queue.claim("w1", 10, 0) == "a"
    assert queue.claim("w2", 10, 0) == "b"
    assert queue.depth() == 1
    queue.ack("a")
    assert queue.holds(["a", "b", "c", "z"]) == {"b", "c"}


def test_claim_waits_up_to_the_timeout(queue: Queue) -> None:
    started = time.monotonic()
    assert queue.claim("w1", 10, 0.2) is None
    assert 0.15 <= time.monotonic() - started < 1.0


def test_a_leased_uid_is_not_claimed_twice(queue: Queue) -> None:
    queue.enqueue("a")
    assert queue.claim("w1", 10, 0) == "a"
    assert queue.claim("w2", 10, 0) is None


def test_renew_only_by_the_owner(queue: Queue) -> None:
    queue.enqueue("a")
    queue.claim("w1", 0.2, 0)
    assert queue.renew("a", "w1", 10)
    assert not queue.renew("a", "w2", 10)
    time.sleep(0.3)
    assert queue.expired() == []  # renewed for 10 s


def test_expired_lease_is_reclaimed(queue: Queue) -> None:
    queue.enqueue("a")
    queue.claim("w1", 0.1, 0)
    time.sleep(0.2)
    assert queue.expired() == ["a"]
    assert queue.reclaim("a")
    assert not queue.reclaim("a")  # already back
    assert not queue.renew("a", "w1", 10)  # the lost worker learns it
    assert queue.claim("w2", 10, 0) == "a"


def test_release_with_delay(queue: Queue) -> None:
    queue.enqueue("a")
    queue.claim("w1", 10, 0)
    queue.release("a", delay_s=0.3)
    assert queue.claim("w1", 10, 0) is None
    assert queue.claim("w1", 10, 1.0) == "a"


def test_release_of_an_acked_uid_puts_it_back(queue: Queue) -> None:
    queue.release("new")
    assert queue.claim("w1", 10, 0) == "new"


def test_lock_is_held_by_one_owner(queue: Queue) -> None:
    assert queue.try_lock("reaper", "a", 0.3)
    assert queue.try_lock("reaper", "a", 0.3)  # re-entrant
    if isinstance(queue, RedisQueue):
        assert not queue.try_lock("reaper", "b", 0.3)
        time.sleep(0.4)
    assert queue.try_lock("reaper", "b", 0.3)


def test_redis_orphan_moved_but_never_leased_expires(services: Services) -> None:
    with redis_prefix() as prefix:
        queue = RedisQueue(REDIS_URL, prefix=prefix, orphan_lease_s=0.2)
        queue.enqueue("a")
        # a worker that died between BLMOVE and recording its lease
        queue.client.lmove(f"{prefix}queue", f"{prefix}processing:dead", "RIGHT", "LEFT")
        assert queue.expired() == []  # adopted: leased now, for 0.2 s
        time.sleep(0.3)
        assert queue.expired() == ["a"]
        assert queue.reclaim("a")
        assert queue.claim("w2", 10, 0) == "a"
        assert queue.client.llen(f"{prefix}processing:dead") == 0
        queue.close()


def test_redis_flushed_holds_nothing(services: Services) -> None:
    with redis_prefix() as prefix:
        queue = RedisQueue(REDIS_URL, prefix=prefix)
        queue.enqueue("a")
        queue.enqueue("b")
        queue.claim("w", 10, 0)
        for key in queue.client.scan_iter(match=f"{prefix}*"):
            queue.client.delete(key)
        assert queue.holds(["a", "b"]) == set()
        assert queue.depth() == 0
        assert not queue.renew("a", "w", 10)
        queue.close()
