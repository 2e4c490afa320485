"""Webhook registrations and the delivery outbox: the only place that queries them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Table, delete, func, insert, select, update

from aerovision.store.db import Database
from aerovision.store.models import (
    DEFAULT_ACCOUNT_ID,
    DeliveryRow,
    DeliveryStatus,
    WebhookRow,
    utcnow,
)
from aerovision.store.scope import Owner, restrict


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    secret: str | None
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    task_uid: str
    event: str
    event_at: datetime
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    body: str | None
    response_code: int | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: DeliveryRow) -> Delivery:
        return cls(
            id=row.id,
            webhook_id=row.webhook_id,
            task_uid=row.task_uid,
            event=row.event,
            event_at=row.event_at,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            body=row.body,
            response_code=row.response_code,
            error=row.error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(id=row.id, url=row.url, secret=row.secret, created_at=row.created_at)


def create_webhook(db: Database, owner: Owner, url: str, secret: str | None) -> Webhook:
    row = WebhookRow(
        id=f"wh_{secrets.token_hex(8)}", url=url, secret=secret, created_at=utcnow(),
        account_id=owner.account_id,
    )
    with db.write() as session:
        session.add(row)
        session.flush()
        return _webhook(row)


def list_webhooks(db: Database, owner: Owner) -> list[Webhook]:
    with db.read() as session:
        rows = session.scalars(
            restrict(select(WebhookRow), owner).order_by(WebhookRow.created_at, WebhookRow.id)
        )
        return [_webhook(r) for r in rows]


def get_webhook(db: Database, webhook_id: str, owner: Owner | None) -> Webhook | None:
    """The webhook if ``owner`` may see it (None: the deployment's notifier)."""
    stmt = select(WebhookRow).where(WebhookRow.id == webhook_id)
    with db.read() as session:
        row = session.scalars(stmt if owner is None else restrict(stmt, owner)).first()
        return _webhook(row) if row is not None else None


def delete_webhook(db: Database, owner: Owner, webhook_id: str) -> bool:
    """Remove ``owner``'s webhook and its deliveries (pending ones are not sent)."""
    with db.write() as session:
        result = session.execute(
            restrict(delete(WebhookRow).where(WebhookRow.id == webhook_id), owner)
        )
        gone = cast("CursorResult[Any]", result).rowcount
        if not gone:
            return False
        session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id))
        return bool(gone)


def add_deliveries(
    conn: Connection, task_uid: str, status: str, event_at: datetime,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> int:
    """Write one pending delivery per webhook of the task's account, inside the caller's
    transaction (a webhook hears only of its own account's tasks)."""
    hooks = conn.execute(
        select(WebhookRow.id).where(WebhookRow.account_id == account_id)
    ).scalars().all()
    if hooks:
        conn.execute(
            insert(cast(Table, DeliveryRow.__table__)),
            [
                {
                    "id": f"dl_{secrets.token_hex(10)}",
                    "webhook_id": webhook_id,
                    "task_uid": task_uid,
                    "event": f"task.{status}",
                    "event_at": event_at,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": event_at,
                    "created_at": event_at,
                }
                for webhook_id in hooks
            ],
        )
    return len(hooks)


def claim_due(
    db: Database, limit: int, lease_s: float, per_receiver: int | None = None
) -> list[Delivery]:
    """Lock up to ``limit`` due pending deliveries for ``lease_s`` seconds and return them,
    oldest first.

    With ``per_receiver``, a webhook never has more than that many deliveries locked
    at once, counting those other notifier processes hold: a webhook at its cap
    gets none, the others still get theirs, and the held-back ones keep their
    place (oldest first) for the next claim. Nothing is counted as an attempt here.
    """
    if limit <= 0:
        return []
    now = utcnow()
    d = DeliveryRow
    pending = d.status == DeliveryStatus.PENDING.value
    claimable = (
        pending,
        d.next_attempt_at <= now,
        (d.locked_until.is_(None)) | (d.locked_until < now),
    )
    if per_receiver is None:
        chosen = select(d.id).where(*claimable).order_by(d.next_attempt_at, d.id).limit(limit)
    else:
        busy = (
            select(d.webhook_id, func.count().label("busy"))
            .where(pending, d.locked_until >= now)
            .group_by(d.webhook_id)
            .subquery()
        )
        ranked = (
            select(
                d.id,
                d.webhook_id,
                d.next_attempt_at,
                func.row_number()
                .over(partition_by=d.webhook_id, order_by=(d.next_attempt_at, d.id))
                .label("rank"),
            )
            .where(*claimable)
            .subquery()
        )
        chosen = (
            select(ranked.c.id)
            .select_from(ranked.outerjoin(busy, busy.c.webhook_id == ranked.c.webhook_id))
            .where(ranked.c.rank <= per_receiver - func.coalesce(busy.c.busy, 0))
            .order_by(ranked.c.next_attempt_at, ranked.c.id)
            .limit(limit)
        )
    with db.write() as session:
        rows = session.scalars(
            select(d)
            .where(d.id.in_(chosen), *claimable)  # checked again on the rows it locks
            .order_by(d.next_attempt_at, d.id)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.locked_until = now + timedelta(seconds=lease_s)
        return [Delivery.from_row(r) for r in rows]


def set_body(db: Database, delivery_id: str, body: str) -> None:
    """Keep the exact bytes of the first attempt, so every retry sends the same ones."""
    with db.write() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == delivery_id, DeliveryRow.body.is_(None))
            .values(body=body)
        )


def record_attempt(
    db: Database,
    delivery_id: str,
    *,
    ok: bool,
    response_code: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Count an attempt: delivered, scheduled again at ``retry_at``, or failed for good."""
    now = utcnow()
    values: dict[str, object] = {
        "attempts": DeliveryRow.attempts + 1,
        "response_code": response_code,
        "error": error.replace("\x00", "\ufffd") if error is not None else None,
        "locked_until": None,
    }
    if ok:
        values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
    elif retry_at is not None:
        values.update(next_attempt_at=retry_at)
    else:
        values.update(status=DeliveryStatus.FAILED.value)
    with db.write() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))


def list_deliveries(db: Database, webhook_id: str, limit: int = 50) -> list[Delivery]:
    """The most recent deliveries of a webhook, newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(DeliveryRow)
            .where(DeliveryRow.webhook_id == webhook_id)
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id)
            .limit(limit)
        )
        return [Delivery.from_row(r) for r in rows]


def count_by_status(db: Database, owner: Owner) -> dict[str, int]:
    """Deliveries of ``owner``'s webhooks by status."""
    with db.read() as session:
        rows = session.execute(
            restrict(
                select(DeliveryRow.status, func.count())
                .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
                .group_by(DeliveryRow.status),
                owner,
            )
        )
        counts = {s.value: 0 for s in DeliveryStatus}
        counts.update({str(status): int(n) for status, n in rows.all()})
        return counts
