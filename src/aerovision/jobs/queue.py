"""The task queue: carries task uids only; the database row is the truth.

Every backend implements :class:`Queue`: ``enqueue`` a uid; a worker ``claim``s
one with a lease, ``renew``s the lease while it works and ``ack``s when the
task has ended, or ``release``s it to give it back. The reaper asks for
``expired`` leases and ``reclaim``s them. Delivery is at least once.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aerovision.store.db import Database, sqlite_path
from aerovision.store.models import QueueItem

POLL_INTERVAL_S = 0.01
"""How often an idle worker asks SQLite whether anything was committed."""

FULL_CHECK_EVERY_S = 0.25
"""How often an idle worker looks for work even when nothing was committed
(a released uid becomes available by time passing, not by a commit)."""


class Queue(Protocol):
    def enqueue(self, uid: str) -> None:
        """Add ``uid`` (a no-op if it is already queued or leased)."""

    def claim(self, worker_id: str, lease_s: float, timeout_s: float) -> str | None:
        """Take the oldest available uid with a lease, waiting up to ``timeout_s``."""

    def renew(self, uid: str, worker_id: str, lease_s: float) -> bool:
        """Extend ``worker_id``'s lease on ``uid``; False if the lease was lost."""

    def ack(self, uid: str) -> None:
        """Remove ``uid`` for good: its task has ended."""

    def release(self, uid: str, delay_s: float = 0.0) -> None:
        """Give ``uid`` back: claimable again after ``delay_s`` seconds."""

    def expired(self, limit: int = 100) -> list[str]:
        """Uids whose lease has run out (their worker is presumed lost)."""

    def reclaim(self, uid: str) -> bool:
        """Make an expired lease claimable again; False if it was renewed meanwhile."""

    def holds(self, uids: Iterable[str]) -> set[str]:
        """Which of ``uids`` the queue has, waiting or leased."""

    def depth(self) -> int:
        """How many uids wait to be claimed."""

    def ping(self) -> None:
        """Raise if the queue cannot be reached."""

    def close(self) -> None: ...


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

    def _data_version(self) -> int | None:
        path = sqlite_path(self.db.url)
        if path is None:
            return None
        if self._probe is None or self._probe_pid != os.getpid():
            self._probe = sqlite3.connect(path, check_same_thread=False)
            self._probe_pid = os.getpid()
        return int(self._probe.execute("PRAGMA data_version").fetchone()[0])

    def enqueue(self, uid: str) -> None:
        with self.db.write() as session:
            session.execute(
                sqlite_insert(QueueItem)
                .values(uid=uid, available_at=time.time())
                .on_conflict_do_nothing(index_elements=["uid"])
            )

    def _available(self) -> bool:
        with self.db.read() as session:
            return (
                session.execute(
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
        with self.db.write() as session:
            row = session.execute(
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
            time.sleep(min(POLL_INTERVAL_S, remaining))

    def renew(self, uid: str, worker_id: str, lease_s: float) -> bool:
        with self.db.write() as session:
            result = session.execute(
                update(QueueItem)
                .where(QueueItem.uid == uid, QueueItem.lease_owner == worker_id)
                .values(lease_expires=time.time() + lease_s)
            )
            return bool(result.rowcount)

    def ack(self, uid: str) -> None:
        with self.db.write() as session:
            session.execute(delete(QueueItem).where(QueueItem.uid == uid))

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
            return bool(result.rowcount)

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

    def close(self) -> None:
        if self._probe is not None and self._probe_pid == os.getpid():
            self._probe.close()
        self._probe = None


def open_queue(url: str, db: Database) -> Queue:
    """The queue backend named by ``url`` (chosen by configuration, never by code)."""
    if url.startswith("sqlite"):
        if url != db.url:
            return SqliteQueue(Database(url))
        return SqliteQueue(db)
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported queue URL scheme {scheme!r}: use sqlite:///<path>")
