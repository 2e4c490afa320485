"""One webhook attempt against real receivers: the whole-exchange timeout, the address
check on the connection it makes, TLS on the URL's name, and what an error may say."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import random
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aerovision import netpolicy
from aerovision.config import Settings
from aerovision.notifier import (
    MAX_ERROR_CHARS,
    Notifier,
    Outcome,
    Target,
    build_body,
    clean_error,
    retry_delay,
    sign,
)
from aerovision.store import webhooks as webhook_store
from aerovision.store.db import Database, migrate
from aerovision.store.models import TaskStatus, utcnow
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from aerovision.store.tasks import Task
from tests.receiver import Receiver, TricklingReceiver
from tests.server import free_port


def _notifier(tmp_path: Path, **settings: object) -> Notifier:
    return Notifier(Settings(data_dir=tmp_path, **settings), db=None)  # type: ignore[arg-type]


def _send(
    notifier: Notifier,
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    lookup: netpolicy.Lookup = netpolicy.system_lookup,
) -> Outcome:
    async def go() -> Outcome:
        async with notifier.pool(ssl_context=ssl_context, lookup=lookup) as connections:
            return await notifier.send(connections, url, b'{"uid": "u"}',
                                       {"X-Webhook-Delivery": "dl_test"})

    return asyncio.run(go())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def _lookup_to(address: str, calls: list[str] | None = None) -> netpolicy.Lookup:
    """A resolver that answers ``address`` for every name (a DNS answer we choose)."""

    async def lookup(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return [address]

    return lookup


def test_a_trickling_answer_is_cut_off_after_the_timeout(tmp_path: Path) -> None:
    """Each byte comes well within the timeout; the exchange as a whole does not."""
    trickler = TricklingReceiver(interval=0.3).start()
    try:
        notifier = _notifier(tmp_path, webhook_timeout_s=1.0, webhook_allow_private=True)
        started = time.monotonic()
        outcome = _send(notifier, trickler.url)
        took = time.monotonic() - started
        time.sleep(0.3)
    finally:
        trickler.stop()
    assert outcome == Outcome(False, None, "no answer within 1 s")
    assert 0.9 <= took < 1.6
    [connection] = trickler.connections
    assert connection.delivery_id == "dl_test"
    assert connection.closed is not None and connection.closed - connection.opened < 1.5


def test_the_connection_goes_to_the_checked_address(tmp_path: Path, receiver: Receiver) -> None:
    """The name is looked up once, by the check; the connection uses that answer (the
    system resolver does not know the name), and the request still names the host."""
    calls: list[str] = []
    notifier = _notifier(tmp_path, webhook_allow_private=True)
    url = f"http://hooks.invalid:{receiver.port}/cb?x=1"
    outcome = _send(notifier, url, lookup=_lookup_to("127.0.0.1", calls))
    assert outcome == Outcome(True, 200, None)
    assert calls == ["hooks.invalid"]
    [got] = receiver.received
    assert got.path == "/cb?x=1" and got.headers["Host"] == f"hooks.invalid:{receiver.port}"


def test_a_name_that_now_resolves_to_a_private_address_is_refused(
    tmp_path: Path, receiver: Receiver
) -> None:
    """DNS rebinding: whatever the name resolved to at registration, the address of the
    connection is checked, and nothing is sent."""
    notifier = _notifier(tmp_path)
    for address, why in (("127.0.0.1", "a loopback address"), ("10.1.2.3", "a private address"),
                         ("169.254.169.254", "a cloud metadata address")):
        outcome = _send(notifier, f"https://hooks.example:{receiver.port}/",
                        lookup=_lookup_to(address))
        assert outcome == Outcome(
            False, None, f"address refused: hooks.example resolves to {address}, {why}",
            final=True,
        )
    assert receiver.received == []


def test_private_addresses_are_refused_when_sending(tmp_path: Path, receiver: Receiver) -> None:
    notifier = _notifier(tmp_path)
    for url, why in (
        (receiver.url, "127.0.0.1 is a loopback address"),
        (f"http://localhost:{receiver.port}/", "localhost is a loopback name (RFC 6761)"),
        (f"http://0x7f.1:{receiver.port}/", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ):
        assert _send(notifier, url) == Outcome(False, None, f"address refused: {why}", final=True)
    assert receiver.received == []
    allowed = _notifier(tmp_path, webhook_allow_private=True)
    assert _send(allowed, f"http://0x7f.1:{receiver.port}/") == Outcome(True, 200, None)


def test_credentials_go_as_basic_auth_and_never_into_the_error(
    tmp_path: Path, receiver: Receiver
) -> None:
    notifier = _notifier(tmp_path, webhook_allow_private=True)
    url = f"http://hook-user:s3cr%40t@127.0.0.1:{receiver.port}/cb"
    assert _send(notifier, url) == Outcome(True, 200, None)
    [got] = receiver.received
    assert base64.b64decode(got.headers["Authorization"].split()[1]) == b"hook-user:s3cr@t"
    closed = f"http://hook-user:s3cr%40t@127.0.0.1:{free_port()}/cb"
    outcome = _send(notifier, closed)
    assert outcome.error is not None and outcome.error.startswith("ConnectError")
    assert "s3cr" not in outcome.error and not outcome.final


CONTROL = "url must not contain control characters or whitespace: "


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/a\rb", CONTROL + "U+000D at position 20"),
        ("http://127.0.0.1:9/\x00", CONTROL + "U+0000 at position 19"),
        ("ftp://127.0.0.1/x", "url must be an http:// or https:// URL, got 'ftp://127.0.0.1/x'"),
    ],
)
def test_a_stored_url_that_cannot_be_sent_to_is_a_final_failure(
    tmp_path: Path, url: str, reason: str
) -> None:
    """Webhooks registered before the URL rules: one recorded failure, not a retry loop."""
    notifier = _notifier(tmp_path, webhook_allow_private=True)
    error = f"{reason}; the webhook cannot be sent to"
    assert _send(notifier, url) == Outcome(False, None, error, final=True)


def test_a_name_that_does_not_resolve_is_retried(tmp_path: Path) -> None:
    outcome = _send(_notifier(tmp_path), "https://no-such-host.invalid/hook")
    assert outcome.error is not None
    assert outcome.error.startswith("no-such-host.invalid does not resolve (")
    assert not outcome.ok and not outcome.final


def test_a_non_2xx_answer(tmp_path: Path) -> None:
    failing = Receiver(behaviour=[503]).start()
    try:
        outcome = _send(_notifier(tmp_path, webhook_allow_private=True), failing.url)
    finally:
        failing.stop()
    assert outcome == Outcome(False, 503, "receiver answered HTTP 503")


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for the DNS name ``name`` (and its key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path


def test_tls_is_checked_against_the_url_host_not_the_address(tmp_path: Path) -> None:
    """Connecting to the checked address keeps SNI and the certificate check on the
    URL's host name."""
    cert, key = _certificate(tmp_path, "hooks.example")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    receiver = Receiver(tls=server_side).start()
    trusted = ssl.create_default_context(cafile=str(cert))
    notifier = _notifier(tmp_path, webhook_allow_private=True)
    lookup = _lookup_to("127.0.0.1")
    try:
        good = _send(notifier, f"https://hooks.example:{receiver.port}/tls", ssl_context=trusted,
                     lookup=lookup)
        other = _send(notifier, f"https://other.example:{receiver.port}/tls",
                      ssl_context=trusted, lookup=lookup)
        by_address = _send(notifier, f"https://127.0.0.1:{receiver.port}/tls",
                           ssl_context=trusted, lookup=lookup)
    finally:
        receiver.stop()
    assert good == Outcome(True, 200, None)
    assert [r.path for r in receiver.received] == ["/tls"]
    for failed in (other, by_address):
        assert failed.error is not None and "CERTIFICATE_VERIFY_FAILED" in failed.error


class _LeaseExpiresAtOnce(Notifier):
    """A notifier whose claims expire at once, as if its database had stalled past the
    lease: the database offers the delivery again on every poll while it is being sent."""

    @property
    def lease_s(self) -> float:
        return 0.0


def test_a_delivery_in_flight_is_never_attempted_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    migrate(url)
    db = Database(url)
    trickler = TricklingReceiver(interval=0.3).start()
    settings = Settings(data_dir=tmp_path, webhook_timeout_s=2.0, webhook_allow_private=True,
                        webhook_retry_base_s=60.0)
    notifier = _LeaseExpiresAtOnce(settings, db)
    try:
        hook = webhook_store.create_webhook(db, DEFAULT_OWNER, trickler.url, None)
        with db.transaction() as conn:
            webhook_store.add_deliveries(conn, "task-1", "done", utcnow())
        [delivery] = webhook_store.list_deliveries(db, hook.id)
        webhook_store.set_body(db, delivery.id, '{"uid": "task-1"}')
        notifier.start()
        deadline = time.monotonic() + 10
        while webhook_store.list_deliveries(db, hook.id)[0].attempts == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # polls go on; the attempt is recorded and due in a minute
    finally:
        notifier.stop()
        trickler.stop()
        db.dispose()
    assert [c.delivery_id for c in trickler.connections] == [delivery.id]
    [recorded] = webhook_store.list_deliveries(db, hook.id)
    assert recorded.attempts == 1 and recorded.error == "no answer within 2 s"


def test_stopping_waits_for_the_attempt_under_way(tmp_path: Path) -> None:
    """Stopping lets the attempt under way end (it is bounded) and records it."""
    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    migrate(url)
    db = Database(url)
    trickler = TricklingReceiver(interval=0.3).start()
    settings = Settings(data_dir=tmp_path, webhook_timeout_s=1.5, webhook_allow_private=True)
    notifier = Notifier(settings, db)
    try:
        hook = webhook_store.create_webhook(db, DEFAULT_OWNER, trickler.url, None)
        with db.transaction() as conn:
            webhook_store.add_deliveries(conn, "task-1", "done", utcnow())
        [delivery] = webhook_store.list_deliveries(db, hook.id)
        webhook_store.set_body(db, delivery.id, "{}")
        notifier.start()
        deadline = time.monotonic() + 10
        while not trickler.connections:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        started = time.monotonic()
        notifier.stop()
        took = time.monotonic() - started
        [recorded] = webhook_store.list_deliveries(db, hook.id)
    finally:
        trickler.stop()
        db.dispose()
    assert took < 1.5 + 1.0
    assert recorded.attempts == 1 and recorded.error == "no answer within 1.5 s"
    assert recorded.status.value == "pending"


def _task(**changes: object) -> Task:
    values: dict[str, Any] = {
        "uid": "3f2a", "status": TaskStatus.DONE, "tool": "template",
        "params": {"threshold": 0.9, "method": "TM_CCOEFF_NORMED"},
        "created_at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901),
        "updated_at": datetime.datetime(2026, 1, 2, 3, 4, 7, 1),
        "input_files": ["uploads/3f2a/a.png"], "thumbnails": ["thumbnails/3f2a/a.png"],
        "result_files": ["results/3f2a/matches.png"],
        "result_data": {"matches": [{"x": 1, "y": 2}], "label": "café ☕"},
        "error": None, "attempts": 1,
    }
    values.update(changes)
    return Task(**values)


def test_the_body_is_compact_json_with_spec_s_fields_first() -> None:
    """The exact bytes: what a receiver's signature check runs over."""
    assert build_body(_task()).encode() == (
        '{"uid":"3f2a","status":"done","tool":"template",'
        '"result_files":["results/3f2a/matches.png"],'
        '"result_data":{"matches":[{"x":1,"y":2}],"label":"café ☕"},"error":null,'
        '"params":{"threshold":0.9,"method":"TM_CCOEFF_NORMED"},'
        '"created_at":"2026-01-02T03:04:05","updated_at":"2026-01-02T03:04:07"}'
    ).encode()
    failed = json.loads(build_body(_task(status=TaskStatus.ERROR, error="bad input",
                                         result_files=[], result_data={})))
    assert (failed["status"], failed["error"], failed["result_data"]) == ("error", "bad input", {})


def test_the_signature_is_hmac_sha256_of_the_exact_body() -> None:
    # RFC 4231, test case 2
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    body = build_body(_task()).encode()
    assert sign(body, "k") != sign(body + b" ", "k") != sign(body, "k2")


def test_retries_back_off_exponentially_with_a_quarter_of_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(1, 8):
        nominal = 2.0 * 2 ** (attempt - 1)
        delays = [retry_delay(attempt, 2.0, rng) for _ in range(200)]
        assert nominal * 0.75 <= min(delays) < nominal * 0.85
        assert nominal * 1.15 < max(delays) <= nominal * 1.25


def test_a_recorded_error_has_no_credentials_no_control_characters_and_a_bound() -> None:
    url = "https://hook-user:s3cr%40t@hooks.example/cb"
    cleaned = clean_error("refused hook-user:s3cr%40t, then s3cr@t at\r\nline 2\x00", url)
    assert cleaned == "refused ***, then *** at??line 2?"
    long = clean_error("x" * 2000, url)
    assert len(long) == MAX_ERROR_CHARS and long.endswith("…")


@pytest.mark.parametrize(
    ("url", "target", "headers"),
    [
        ("https://hooks.example/cb?a=1", b"/cb?a=1", [(b"Host", b"hooks.example")]),
        ("http://[2001:db8::1]:8080/h", b"/h", [(b"Host", b"[2001:db8::1]:8080")]),
        ("https://u:p%40ss@hooks.example:8443/", b"/",
         [(b"Host", b"hooks.example:8443"), (b"Authorization", b"Basic dTpwQHNz")]),
    ],
    ids=["default-port", "ipv6", "basic-auth"],
)
def test_the_request_line_and_host_come_from_the_url(
    url: str, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    parsed = Target.of(url)
    assert parsed.url.target == target and parsed.headers == headers
