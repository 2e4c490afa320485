"""Webhook deliveries: payload, HMAC signature, and the outbox sender with backoff.

When a task ends, ``store.tasks.finish_task`` writes one pending delivery per
webhook in the same transaction. The :class:`Notifier` takes due deliveries
from that outbox, posts each one on its own (so a slow or dead receiver never
holds up another), and records the outcome: 2xx is delivered; anything else,
a timeout or a refused connection is retried with exponential backoff and
jitter, then marked failed. Sending is at least once: a delivery whose
outcome was not recorded (crash, restart) is sent again, with the same
``X-Webhook-Delivery`` id and the same body bytes.

Bounds, so that no receiver can hold the sender up:

- one attempt is bounded as a whole (``AEROVISION_WEBHOOK_TIMEOUT_S`` covers the
  lookup, connect, sending, and reading the answer), not per read: a receiver
  that answers a byte at a time is cut off like one that never answers;
- a delivery has at most one attempt in flight: its claim (a lease in the
  database, which other notifier processes respect) outlasts the bounded attempt,
  and this process never starts a second attempt of a delivery it is sending;
- a webhook has at most ``AEROVISION_WEBHOOK_PER_RECEIVER`` deliveries in flight,
  so one slow receiver cannot take the ``AEROVISION_WEBHOOK_CONCURRENCY`` slots
  of the others.

Where it connects is checked by :mod:`aerovision.netpolicy` at each connection,
on the addresses it then connects to (see :class:`CheckedBackend`). The URL's
user info is sent as HTTP Basic authentication and never logged; no log line or
recorded error carries a webhook's URL.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
import random
import ssl
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
import httpx

from aerovision import __version__, netpolicy, wire
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
"""A claimed delivery stays locked for the receiver timeout plus this: the attempt
itself is bounded by the timeout, the margin covers reading and recording it."""

MAX_ANSWER_BYTES = 64 * 1024
"""At most this much of a receiver's answer body is read (and thrown away)."""

MAX_ERROR_CHARS = 500
"""A recorded error text is cut to this length."""



def build_body(task: Task) -> str:
    """The JSON body of a task's webhook: SPEC's fields first, then the rest."""
    payload = wire.task_json(task, wire.WEBHOOK_FIELDS)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def sign(body: bytes, secret: str) -> str:
    """``X-Webhook-Signature`` value: ``sha256=<hex HMAC-SHA256 of the exact body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempt: int, base_s: float, rng: random.Random) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): base·2^(n−1), ±25 %."""
    return base_s * 2.0 ** (attempt - 1) * rng.uniform(0.75, 1.25)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    ok: bool
    code: int | None = None
    error: str | None = None
    final: bool = False
    """No retry: the attempt cannot succeed later (a refused address, an invalid URL)."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only where :mod:`aerovision.netpolicy`
    allows: it resolves the host itself, checks every address, and connects to a
    checked address, so no second lookup happens between the check and the
    connection (DNS rebinding). TLS still verifies the certificate against the
    URL's host name, and SNI carries it: httpcore passes that name to ``start_tls``
    whatever address the connection went to."""

    def __init__(
        self, *, allow_private: bool, lookup: netpolicy.Lookup = netpolicy.system_lookup
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._lookup = lookup

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await netpolicy.check_host_async(
            host, port, allow_private=self._allow_private, lookup=self._lookup
        )
        failure: Exception | None = None
        for address in addresses:  # the resolver's order; the next one if one fails
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # check_host_async returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class Target:
    """Where and how a webhook's POST goes: the request line's parts, and headers
    that come from the URL (Host, and Basic authentication from its user info)."""

    url: httpcore.URL
    headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, webhook_url: str) -> Target:
        """Raises :class:`netpolicy.InvalidWebhookURL` for a URL that cannot be sent to
        (webhooks registered before the URL rules were enforced)."""
        netpolicy.validate_url(webhook_url)
        parsed = httpx.URL(webhook_url)
        host = parsed.raw_host
        if b":" in host:
            host = b"[" + host + b"]"
        host_header = host if parsed.port is None else b"%b:%d" % (host, parsed.port)
        headers = [(b"Host", host_header)]
        if parsed.userinfo:
            credentials = f"{parsed.username}:{parsed.password}".encode()
            headers.append((b"Authorization", b"Basic " + base64.b64encode(credentials)))
        url = httpcore.URL(
            scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port,
            target=parsed.raw_path,
        )
        return cls(url, headers)


def clean_error(text: str, url: str) -> str:
    """An error text fit to record and log: no credentials of ``url``, no control
    characters, at most :data:`MAX_ERROR_CHARS` characters."""
    for secret in netpolicy.secrets_of(url):
        text = text.replace(secret, "***")
    text = "".join("?" if unicodedata.category(c) == "Cc" else c for c in text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text


class Notifier:
    """Sends due deliveries until stopped; run it in a thread or its own process."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._stop = threading.Event()
        self._rng = random.Random()
        self._thread: threading.Thread | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        """Delivery id → its attempt under way in this process."""

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

    @property
    def lease_s(self) -> float:
        """How long a claim locks a delivery: longer than its attempt can take."""
        return self.settings.webhook_timeout_s + LEASE_MARGIN_S

    def pool(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        lookup: netpolicy.Lookup = netpolicy.system_lookup,
    ) -> httpcore.AsyncConnectionPool:
        """Connections to receivers, through the address check (``ssl_context``: the
        certificates trusted, by default httpx's: certifi's, or SSL_CERT_FILE/SSL_CERT_DIR;
        ``lookup``: the resolver). No proxy: the address checked must be the one
        connected to."""
        backend = CheckedBackend(allow_private=self.settings.webhook_allow_private, lookup=lookup)
        return httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=self.settings.webhook_concurrency,
            network_backend=backend,
        )

    async def _main(self) -> None:
        # httpx's client logs every request's full URL at INFO; it is not used to send
        # here, but nothing in this process may log a webhook URL that way
        logging.getLogger("httpx").setLevel(logging.WARNING)
        async with self.pool() as pool:
            while not self._stop.is_set():
                await self._claim_and_start(pool)
                await asyncio.sleep(POLL_INTERVAL_S)
            await self._finish_in_flight()

    async def _finish_in_flight(self) -> None:
        """On stop: attempts under way end within the timeout and are recorded; one
        still running after that (its database is slow) is dropped unrecorded, keeps
        its lease, and is sent again later (at least once)."""
        jobs = list(self._in_flight.values())
        if not jobs:
            return
        _, late = await asyncio.wait(jobs, timeout=self.settings.webhook_timeout_s + 1)
        for job in late:
            job.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _claim_and_start(self, pool: httpcore.AsyncConnectionPool) -> None:
        free = self.settings.webhook_concurrency - len(self._in_flight)
        if free <= 0:
            return
        try:
            due = await asyncio.to_thread(
                webhook_store.claim_due,
                self.db,
                free,
                self.lease_s,
                self.settings.webhook_per_receiver,
            )
        except Exception:
            log.exception("notifier: could not read the outbox; trying again")
            return
        for delivery in due:
            if delivery.id in self._in_flight:  # never two attempts of one delivery
                continue
            job = asyncio.create_task(self._deliver(pool, delivery))
            self._in_flight[delivery.id] = job
            job.add_done_callback(functools.partial(self._landed, delivery.id))

    def _landed(self, delivery_id: str, _job: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)

    async def _deliver(
        self, pool: httpcore.AsyncConnectionPool, delivery: webhook_store.Delivery
    ) -> None:
        try:
            await self._attempt(pool, delivery)
        except Exception:  # the one place that swallows: a webhook never fails anything
            # (the database failed: the lease expires and the delivery is tried again)
            log.exception("notifier: delivery %s could not be recorded", delivery.id)

    async def _attempt(
        self, pool: httpcore.AsyncConnectionPool, delivery: webhook_store.Delivery
    ) -> None:
        webhook = await asyncio.to_thread(
            webhook_store.get_webhook, self.db, delivery.webhook_id, None
        )
        if webhook is None:  # deleted meanwhile: its deliveries went with it
            return
        body = delivery.body
        if body is None:
            task = await asyncio.to_thread(task_store.get_task, self.db, delivery.task_uid, None)
            if task is None:
                await self._record(delivery, Outcome(False, error="the task no longer exists",
                                                     final=True))
                return
            body = build_body(task)
            await asyncio.to_thread(webhook_store.set_body, self.db, delivery.id, body)
        content = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"AeroVision/{__version__}",
            "X-Webhook-Id": webhook.id,
            "X-Webhook-Delivery": delivery.id,
            "X-Webhook-Event": delivery.event,
            "X-Webhook-Timestamp": wire.timestamp(delivery.event_at),
        }
        if webhook.secret:
            headers["X-Webhook-Signature"] = sign(content, webhook.secret)
        outcome = await self.send(pool, webhook.url, content, headers)
        if outcome.error is not None:
            outcome = Outcome(outcome.ok, outcome.code, clean_error(outcome.error, webhook.url),
                              outcome.final)
        await self._record(delivery, outcome)

    async def send(
        self,
        pool: httpcore.AsyncConnectionPool,
        url: str,
        content: bytes,
        headers: dict[str, str],
    ) -> Outcome:
        """POST ``content`` to ``url``: one attempt, bounded as a whole by the timeout.

        Never raises for anything the receiver, the network or the URL does: every
        failure is an :class:`Outcome` with its reason.
        """
        timeout = self.settings.webhook_timeout_s
        try:
            target = Target.of(url)
        except netpolicy.InvalidWebhookURL as exc:
            return Outcome(False, error=f"{exc}; the webhook cannot be sent to", final=True)
        request_headers = target.headers + [
            (name.encode(), value.encode()) for name, value in headers.items()
        ]
        request_headers.append((b"Content-Length", str(len(content)).encode()))
        code: int | None = None
        try:
            async with asyncio.timeout(timeout):
                async with pool.stream(
                    "POST",
                    target.url,
                    headers=request_headers,
                    content=content,
                    extensions={
                        "timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)
                    },
                ) as response:
                    code = response.status
                    await _drain(response)
        except TimeoutError:
            if code is None:
                return Outcome(False, error=f"no answer within {timeout:g} s")
        except netpolicy.AddressRefused as exc:
            return Outcome(False, error=f"address refused: {exc}", final=True)
        except netpolicy.Unresolvable as exc:
            return Outcome(False, error=str(exc))
        except httpcore.TimeoutException:
            if code is None:
                return Outcome(False, error=f"no answer within {timeout:g} s")
        except (
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
            OSError,
        ) as exc:
            if code is None:
                return Outcome(False, error=_describe(exc))
        except Exception as exc:  # a bug: recorded, never left unattempted
            log.warning(
                "notifier: unexpected %s while sending",
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return Outcome(False, error=f"unexpected error: {_describe(exc)}")
        assert code is not None
        ok = 200 <= code < 300
        return Outcome(ok, code, None if ok else f"receiver answered HTTP {code}")

    async def _record(self, delivery: webhook_store.Delivery, outcome: Outcome) -> None:
        attempt = delivery.attempts + 1
        retry_at: datetime | None = None
        if not outcome.ok and not outcome.final and attempt < self.settings.webhook_max_attempts:
            delay = retry_delay(attempt, self.settings.webhook_retry_base_s, self._rng)
            retry_at = utcnow() + timedelta(seconds=delay)
        await asyncio.to_thread(
            webhook_store.record_attempt,
            self.db,
            delivery.id,
            ok=outcome.ok,
            response_code=outcome.code,
            error=outcome.error,
            retry_at=retry_at,
        )
        if outcome.ok:
            log.info(
                "webhook %s: delivery %s done (HTTP %s)",
                delivery.webhook_id,
                delivery.id,
                outcome.code,
            )
        else:
            when = f"retry at {retry_at:%H:%M:%S}" if retry_at else "failed for good"
            log.warning(
                "webhook %s: delivery %s attempt %d: %s; %s",
                delivery.webhook_id,
                delivery.id,
                attempt,
                outcome.error,
                when,
            )


async def _drain(response: httpcore.Response) -> None:
    """Read the answer's body, up to :data:`MAX_ANSWER_BYTES` (the rest is dropped
    with the connection), so that the connection can be used again."""
    read = 0
    async for chunk in response.aiter_stream():
        read += len(chunk)
        if read >= MAX_ANSWER_BYTES:
            return


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
