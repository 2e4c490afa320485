"""Webhook deliveries: payload, HMAC signature, and the outbox sender with backoff.

When a task ends, ``store.tasks.finish_task`` writes one pending delivery per
webhook in the same transaction. The :class:`Notifier` takes due deliveries
from that outbox, posts each one on its own (so a slow or dead receiver never
holds up another), and records the outcome: 2xx is delivered; anything else,
a timeout or a refused connection is retried with exponential backoff and
jitter, then marked failed. Sending is at least once: a delivery whose
outcome was not recorded (crash, restart) is sent again, with the same
``X-Webhook-Delivery`` id and the same body bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx

from aerovision import __version__
from aerovision.config import Settings
from aerovision.store import tasks as task_store
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database
from aerovision.store.models import utcnow
from aerovision.store.tasks import Task

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
"""How often the notifier looks for due deliveries."""

LEASE_MARGIN_S = 30.0
"""A claimed delivery stays locked for the receiver timeout plus this."""

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"


def build_body(task: Task) -> str:
    """The JSON body of a task's webhook: SPEC's fields first, then the rest."""
    payload: dict[str, Any] = {
        "uid": task.uid,
        "status": task.status.value,
        "tool": task.tool,
        "result_files": task.result_files,
        "result_data": task.result_data,
        "error": task.error,
        "params": task.params,
        "created_at": task.created_at.strftime(TIMESTAMP_FORMAT),
        "updated_at": task.updated_at.strftime(TIMESTAMP_FORMAT),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def sign(body: bytes, secret: str) -> str:
    """``X-Webhook-Signature`` value: ``sha256=<hex HMAC-SHA256 of the exact body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempt: int, base_s: float, rng: random.Random) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): base·2^(n−1), ±25 %."""
    return base_s * 2 ** (attempt - 1) * rng.uniform(0.75, 1.25)


class Notifier:
    """Sends due deliveries until stopped; run it in a thread or its own process."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._stop = threading.Event()
        self._rng = random.Random()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread (inside `serve`)."""
        self._thread = threading.Thread(target=self.run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.settings.webhook_concurrency)
        headers = {"User-Agent": f"AeroVision/{__version__}"}
        in_flight: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(limits=limits, headers=headers) as client:
            while not self._stop.is_set():
                free = self.settings.webhook_concurrency - len(in_flight)
                try:
                    due = await asyncio.to_thread(
                        webhook_store.claim_due,
                        self.db,
                        free,
                        self.settings.webhook_timeout_s + LEASE_MARGIN_S,
                    )
                except Exception:
                    log.exception("notifier: could not read the outbox; trying again")
                    due = []
                for delivery in due:
                    job = asyncio.create_task(self._deliver(client, delivery))
                    in_flight.add(job)
                    job.add_done_callback(in_flight.discard)
                await asyncio.sleep(POLL_INTERVAL_S)
            if in_flight:  # let sends under way finish (bounded by the receiver timeout)
                await asyncio.wait(in_flight, timeout=self.settings.webhook_timeout_s + 1)

    async def _deliver(self, client: httpx.AsyncClient, delivery: webhook_store.Delivery) -> None:
        try:
            await self._send(client, delivery)
        except Exception:  # the one place that swallows: a webhook never fails anything
            log.exception("notifier: delivery %s failed unexpectedly", delivery.id)

    async def _send(self, client: httpx.AsyncClient, delivery: webhook_store.Delivery) -> None:
        webhook = await asyncio.to_thread(webhook_store.get_webhook, self.db, delivery.webhook_id)
        if webhook is None:  # deleted meanwhile: its deliveries went with it
            return
        body = delivery.body
        if body is None:
            task = await asyncio.to_thread(task_store.get_task, self.db, delivery.task_uid)
            if task is None:
                await self._record(delivery, False, None, "the task no longer exists", final=True)
                return
            body = build_body(task)
            await asyncio.to_thread(webhook_store.set_body, self.db, delivery.id, body)
        content = body.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Id": webhook.id,
            "X-Webhook-Delivery": delivery.id,
            "X-Webhook-Event": delivery.event,
            "X-Webhook-Timestamp": delivery.event_at.strftime(TIMESTAMP_FORMAT),
        }
        if webhook.secret:
            headers["X-Webhook-Signature"] = sign(content, webhook.secret)
        code: int | None = None
        try:
            response = await client.post(
                webhook.url,
                content=content,
                headers=headers,
                timeout=self.settings.webhook_timeout_s,
                follow_redirects=False,
            )
            code = response.status_code
            ok = 200 <= code < 300
            error = None if ok else f"receiver answered HTTP {code}"
        except httpx.TimeoutException:
            ok, error = False, f"no answer within {self.settings.webhook_timeout_s:g} s"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._record(delivery, ok, code, error)

    async def _record(
        self,
        delivery: webhook_store.Delivery,
        ok: bool,
        code: int | None,
        error: str | None,
        *,
        final: bool = False,
    ) -> None:
        attempt = delivery.attempts + 1
        retry_at: datetime | None = None
        if not ok and not final and attempt < self.settings.webhook_max_attempts:
            delay = retry_delay(attempt, self.settings.webhook_retry_base_s, self._rng)
            retry_at = utcnow() + timedelta(seconds=delay)
        await asyncio.to_thread(
            webhook_store.record_attempt,
            self.db,
            delivery.id,
            ok=ok,
            response_code=code,
            error=error,
            retry_at=retry_at,
        )
        if ok:
            log.info("webhook %s: delivery %s done (HTTP %s)", delivery.webhook_id, delivery.id, code)
        else:
            when = f"retry at {retry_at:%H:%M:%S}" if retry_at else "failed for good"
            log.warning(
                "webhook %s: delivery %s attempt %d: %s; %s",
                delivery.webhook_id, delivery.id, attempt, error, when,
            )
