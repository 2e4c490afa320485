"""The task queue: carries task uids only; the database row is the truth.

Every backend implements :class:`Queue`, which is two smaller interfaces, one per
kind of user, so each is typed with only what it may do:

- :class:`WorkQueue`, what a worker needs: it ``claim``s a uid with a lease,
  ``renew``s the lease while it works and ``ack``s when the task has ended, or
  ``release``s it to give it back. Delivery is at least once.
- :class:`AdminQueue`, what administration needs: the API ``enqueue``s; /health
  and /metrics ``ping`` and read the ``depth``; the reaper asks for ``expired``
  leases and ``reclaim``s them, asks which uids the queue ``holds``, ``ack``s the
  uids of tasks that ended meanwhile and takes its ``try_lock``; whoever opened
  the queue ``close``s it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aerovision.store.db import Database, sqlite_path
from aerovision.store.models import QueueItem

POLL_INTERVAL_S = 0.01
"""How often an idle worker asks SQLite whether anything was committed."""

BUSY_POLL_INTERVAL_S = 0.001
"""How often it asks within BUSY_FOR_S of its last task: tasks come in runs (a camera,
a batch), and the next one should not wait for a 10 ms tick (~2.5 % of a core while
it lasts, against ~0.6 % at 10 ms; docs/decisions.md, "Pictures on request")."""

BUSY_FOR_S = 2.0

DELAYED_CHECK_EVERY_S = 0.25
"""How long a blocked Redis claim waits before looking for released uids that came due."""

FULL_CHECK_EVERY_S = 0.25
"""How often an idle worker looks for work even when nothing was committed
(a released uid becomes available by time passing, not by a commit)."""


class WorkQueue(Protocol):
    """What a worker needs: take a uid with a lease, keep it, end it or give it back."""

    def claim(self, worker_id: str, lease_s: float, timeout_s: float) -> str | None:
        """Take the oldest available uid with a lease, waiting up to ``timeout_s``."""

    def renew(self, uid: str, worker_id: str, lease_s: float) -> bool:
        """Extend ``worker_id``'s lease on ``uid``; False if the lease was lost."""

    def ack(self, uid: str) -> None:
        """Remove ``uid`` for good: its task has ended."""

    def release(self, uid: str, delay_s: float = 0.0) -> None:
        """Give ``uid`` back: claimable again after ``delay_s`` seconds."""


class AdminQueue(Protocol):
    """What administration needs: the API, /health, /metrics and the reaper."""

    def enqueue(self, uid: str, *, first: bool = False) -> None:
        """Add ``uid`` (a no-op if it is already queued or leased); ``first`` puts it
        ahead of the waiting uids (a download waits for it)."""

    def depth(self) -> int:
        """How many uids wait to be claimed."""

    def ping(self) -> None:
        """Raise if the queue cannot be reached."""

    def expired(self, limit: int = 100) -> list[str]:
        """Uids whose lease has run out (their worker is presumed lost)."""

    def reclaim(self, uid: str) -> bool:
        """Make an expired lease claimable again; False if it was renewed meanwhile."""

    def holds(self, uids: Iterable[str]) -> set[str]:
        """Which of ``uids`` the queue has, waiting or leased."""

    def ack(self, uid: str) -> None:
        """Remove ``uid`` for good: its task has ended (the reaper finds tasks that ended
        while their lease ran out, and ends those that used up their attempts)."""

    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Hold the lock ``name`` for ``ttl_s`` seconds; False if another owner holds it."""

    def close(self) -> None:
        """Let go of the connection (whoever opened the queue)."""


class Queue(WorkQueue, AdminQueue, Protocol):
    """Both interfaces: what every backend implements and :func:`open_queue` returns."""


_ITEMS: Table = QueueItem.__table__  # type: ignore[assignment]
_ENQUEUE = sqlite_insert(_ITEMS).on_conflict_do_nothing(index_elements=["uid"])
_ACK = delete(_ITEMS).where(_ITEMS.c.uid == bindparam("task_uid"))


class SqliteQueue:
    """The embedded queue: a table in the service's SQLite database.

    A claim is one ``UPDATE … RETURNING`` inside ``BEGIN IMMEDIATE``. Idle
    workers watch ``PRAGMA data_version`` (changes when another connection
    commits; microseconds to read) and query the table only when it moved, so
    waiting costs neither a write lock nor much CPU.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._probe: sqlite3.Connection | None = None
        self._probe_pid = 0
        self._seen_version: int | None = None
        self._busy_until = 0.0  # monotonic: poll fast until then (a task ended recently)

    def _data_version(self) -> int | None:
        path = sqlite_path(self.db.url)
        if path is None:
            return None
        if self._probe is None or self._probe_pid != os.getpid():
            self._probe = sqlite3.connect(path, check_same_thread=False)
            self._probe_pid = os.getpid()
        return int(self._probe.execute("PRAGMA data_version").fetchone()[0])

    def enqueue(self, uid: str, *, first: bool = False) -> None:
        with self.db.transaction() as conn:
            conn.execute(_ENQUEUE, {"uid": uid, "available_at": 0.0 if first else time.time()})

    def _available(self) -> bool:
        with self.db.engine.connect() as conn:
            return (
                conn.execute(
                    text(
                        "SELECT 1 FROM queue_items WHERE lease_owner IS NULL "
                        "AND available_at <= :now LIMIT 1"
                    ),
                    {"now": time.time()},
                ).first()
                is not None
            )

    def _try_claim(self, worker_id: str, lease_s: float) -> str | None:
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute(
                text(
                    "UPDATE queue_items SET lease_owner = :owner, lease_expires = :expires "
                    "WHERE id = (SELECT id FROM queue_items WHERE lease_owner IS NULL "
                    "AND available_at <= :now ORDER BY available_at, id LIMIT 1) RETURNING uid"
                ),
                {"owner": worker_id, "expires": now + lease_s, "now": now},
            ).first()
            return row[0] if row else None

    def claim(self, worker_id: str, lease_s: float, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        last_full_check = 0.0
        while True:
            version = self._data_version()
            now = time.monotonic()
            if version != self._seen_version or version is None or (
                now - last_full_check >= FULL_CHECK_EVERY_S
            ):
                self._seen_version, last_full_check = version, now
                if self._available():
                    uid = self._try_claim(worker_id, lease_s)
                    if uid is not None:
                        return uid
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            busy = time.monotonic() < self._busy_until
            time.sleep(min(BUSY_POLL_INTERVAL_S if busy else POLL_INTERVAL_S, remaining))

    def renew(self, uid: str, worker_id: str, lease_s: float) -> bool:
        with self.db.write() as session:
            result = session.execute(
                update(QueueItem)
                .where(QueueItem.uid == uid, QueueItem.lease_owner == worker_id)
                .values(lease_expires=time.time() + lease_s)
            )
            return bool(cast("CursorResult[Any]", result).rowcount)

    def ack(self, uid: str) -> None:
        self._busy_until = time.monotonic() + BUSY_FOR_S
        with self.db.transaction() as conn:
            conn.execute(_ACK, {"task_uid": uid})

    def release(self, uid: str, delay_s: float = 0.0) -> None:
        with self.db.write() as session:
            session.execute(
                sqlite_insert(QueueItem)
                .values(uid=uid, available_at=time.time() + delay_s)
                .on_conflict_do_update(
                    index_elements=["uid"],
                    set_={
                        "available_at": time.time() + delay_s,
                        "lease_owner": None,
                        "lease_expires": None,
                    },
                )
            )

    def expired(self, limit: int = 100) -> list[str]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(QueueItem.uid)
                    .where(QueueItem.lease_expires < time.time())
                    .order_by(QueueItem.lease_expires)
                    .limit(limit)
                )
            )

    def reclaim(self, uid: str) -> bool:
        with self.db.write() as session:
            result = session.execute(
                update(QueueItem)
                .where(QueueItem.uid == uid, QueueItem.lease_expires < time.time())
                .values(lease_owner=None, lease_expires=None, available_at=time.time())
            )
            return bool(cast("CursorResult[Any]", result).rowcount)

    def holds(self, uids: Iterable[str]) -> set[str]:
        wanted = list(uids)
        if not wanted:
            return set()
        with self.db.read() as session:
            return set(session.scalars(select(QueueItem.uid).where(QueueItem.uid.in_(wanted))))

    def depth(self) -> int:
        with self.db.read() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(QueueItem)
                    .where(QueueItem.lease_owner.is_(None))
                )
                or 0
            )

    def ping(self) -> None:
        self.db.ping()

    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Always True: every reaper action here is a conditional update, so
        reapers in several processes on one SQLite file cannot conflict."""
        return True

    def close(self) -> None:
        if self._probe is not None and self._probe_pid == os.getpid():
            self._probe.close()
        self._probe = None


class RedisQueue:
    """The scale-out queue: Redis lists, a lease per claimed uid.

    Keys (under ``prefix``): ``queue`` (list; producers LPUSH, workers BLMOVE
    from the right), ``processing:<worker>`` (one list per worker: where BLMOVE
    puts a claimed uid — the reliable form of BRPOP), ``leases`` (sorted set:
    uid → lease expiry, Redis server time), ``owners`` (hash: uid → worker),
    ``delayed`` (sorted set: released uids and when they may run again) and
    ``members`` (set of every uid the queue holds, for :meth:`holds`).
    Multi-key changes run as Lua scripts, so they are atomic. If Redis loses
    everything, :meth:`holds` reports nothing and the reaper enqueues the
    unfinished tasks again from the database.
    """

    _NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "
    # ARGV: uid, "1" to be taken next (workers take from the right)
    _ENQUEUE = (
        "if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then "
        "if ARGV[2] == '1' then redis.call('RPUSH', KEYS[1], ARGV[1]) "
        "else redis.call('LPUSH', KEYS[1], ARGV[1]) end end"
    )
    _PROMOTE = (
        _NOW
        + "local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100) "
        "for _, uid in ipairs(due) do redis.call('ZREM', KEYS[2], uid) "
        "redis.call('RPUSH', KEYS[1], uid) end return #due"
    )
    _LEASE = (
        _NOW + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) "
        "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) return 1"
    )
    _RENEW = (
        _NOW + "if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return 0 end "
        "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) return 1"
    )
    # KEYS: leases owners members delayed queue; ARGV: uid prefix mode delay
    # mode "ack": forget the uid; "release": back into the queue (after delay);
    # "reclaim": like release to the front, only if the lease has expired.
    _SETTLE = (
        _NOW
        + "local uid, prefix, mode = ARGV[1], ARGV[2], ARGV[3] "
        "if mode == 'reclaim' then local s = redis.call('ZSCORE', KEYS[1], uid) "
        "if (not s) or tonumber(s) >= now then return 0 end end "
        "local owner = redis.call('HGET', KEYS[2], uid) "
        "if owner then redis.call('LREM', prefix .. 'processing:' .. owner, 0, uid) end "
        "redis.call('HDEL', KEYS[2], uid) redis.call('ZREM', KEYS[1], uid) "
        "redis.call('ZREM', KEYS[4], uid) "
        "if mode == 'ack' then redis.call('SREM', KEYS[3], uid) return 1 end "
        "redis.call('SADD', KEYS[3], uid) redis.call('LREM', KEYS[5], 0, uid) "
        "local delay = tonumber(ARGV[4]) "
        "if delay > 0 then redis.call('ZADD', KEYS[4], now + delay, uid) "
        "elseif mode == 'reclaim' then redis.call('RPUSH', KEYS[5], uid) "
        "else redis.call('LPUSH', KEYS[5], uid) end return 1"
    )
    _EXPIRED = _NOW + (
        "return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, "
        "tonumber(ARGV[1]))"
    )

    def __init__(
        self, url: str, *, prefix: str = "aerovision:", orphan_lease_s: float = 30.0
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        self.prefix = prefix
        self.orphan_lease_s = orphan_lease_s
        self.k = {
            name: prefix + name for name in ("queue", "leases", "owners", "members", "delayed")
        }
        self._scripts = {
            name: self.client.register_script(getattr(self, f"_{name.upper()}"))
            for name in ("enqueue", "promote", "lease", "renew", "settle", "expired")
        }

    def _processing(self, worker_id: str) -> str:
        return f"{self.prefix}processing:{worker_id}"

    def enqueue(self, uid: str, *, first: bool = False) -> None:
        self._scripts["enqueue"](
            keys=[self.k["queue"], self.k["members"]], args=[uid, "1" if first else "0"]
        )

    def claim(self, worker_id: str, lease_s: float, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._scripts["promote"](keys=[self.k["queue"], self.k["delayed"]])
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # BLMOVE's timeout 0 means "forever": take without waiting
                uid = self.client.lmove(
                    self.k["queue"], self._processing(worker_id), "RIGHT", "LEFT"
                )
            else:  # wake up now and then to promote delayed uids that came due
                uid = self.client.blmove(
                    self.k["queue"], self._processing(worker_id),
                    # Redis ≥ 6 takes a fractional timeout; redis-py's hint says int
                    max(0.01, min(remaining, DELAYED_CHECK_EVERY_S)),  # type: ignore[arg-type]
                    "RIGHT", "LEFT",
                )
            if uid is not None:
                self._scripts["lease"](
                    keys=[self.k["leases"], self.k["owners"]], args=[uid, lease_s, worker_id]
                )
                return str(uid)
            if time.monotonic() >= deadline:
                return None

    def renew(self, uid: str, worker_id: str, lease_s: float) -> bool:
        return bool(
            self._scripts["renew"](
                keys=[self.k["leases"], self.k["owners"]], args=[uid, lease_s, worker_id]
            )
        )

    def _settle(self, uid: str, mode: str, delay_s: float = 0.0) -> bool:
        keys = [self.k[n] for n in ("leases", "owners", "members", "delayed", "queue")]
        return bool(self._scripts["settle"](keys=keys, args=[uid, self.prefix, mode, delay_s]))

    def ack(self, uid: str) -> None:
        self._settle(uid, "ack")

    def release(self, uid: str, delay_s: float = 0.0) -> None:
        self._settle(uid, "release", delay_s)

    def reclaim(self, uid: str) -> bool:
        return self._settle(uid, "reclaim")

    def expired(self, limit: int = 100) -> list[str]:
        """Expired leases; a uid a worker moved but died before leasing gets a lease now."""
        self._adopt_orphans()
        return list(self._scripts["expired"](keys=[self.k["leases"]], args=[limit]))

    def _adopt_orphans(self) -> None:
        for key in self.client.scan_iter(match=f"{self.prefix}processing:*", count=100):
            worker_id = key[len(self.prefix) + len("processing:") :]
            for uid in self.client.lrange(key, 0, -1):
                if self.client.zscore(self.k["leases"], uid) is None:
                    self._scripts["lease"](
                        keys=[self.k["leases"], self.k["owners"]],
                        args=[uid, self.orphan_lease_s, worker_id],
                    )

    def holds(self, uids: Iterable[str]) -> set[str]:
        wanted = list(uids)
        if not wanted:
            return set()
        flags = self.client.smismember(self.k["members"], wanted)
        return {uid for uid, held in zip(wanted, flags, strict=True) if held}

    def depth(self) -> int:
        return int(self.client.llen(self.k["queue"])) + int(self.client.zcard(self.k["delayed"]))

    def ping(self) -> None:
        self.client.ping()

    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Hold ``name`` for ``ttl_s`` (re-entrant for ``owner``): one reaper acts at a time."""
        key = f"{self.prefix}lock:{name}"
        if self.client.set(key, owner, nx=True, px=int(ttl_s * 1000)):
            return True
        if self.client.get(key) == owner:
            self.client.pexpire(key, int(ttl_s * 1000))
            return True
        return False

    def close(self) -> None:
        self.client.close()


def open_queue(
    url: str, db: Database, *, prefix: str = "aerovision:", lease_s: float = 30.0
) -> Queue:
    """The queue backend named by ``url`` (chosen by configuration, never by code)."""
    if url.startswith("sqlite"):
        if url != db.url:
            return SqliteQueue(Database(url))
        return SqliteQueue(db)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisQueue(url, prefix=prefix, orphan_lease_s=lease_s)
    scheme = url.split(":", 1)[0]
    raise ValueError(
        f"unsupported queue URL scheme {scheme!r}: use sqlite:///<path> or redis://host:port/db"
    )
