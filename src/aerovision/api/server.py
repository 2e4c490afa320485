"""The HTTP server: uvicorn with read timeouts on every connection.

uvicorn bounds idle keep-alive connections but not a client that is slow on
purpose: one byte of header every few seconds holds a connection (and its
memory) forever. :class:`TimedHttpProtocol` adds two rules, the same as
Apache's ``mod_reqtimeout``:

- **headers**: a request's headers must be complete within
  ``AEROVISION_HEADER_TIMEOUT_S`` of the connection opening (or, on a
  keep-alive connection, of the request's first byte);
- **body**: after ``AEROVISION_BODY_TIMEOUT_S`` of reading, the body must have
  come at ``AEROVISION_BODY_MIN_RATE`` bytes/s on average. Time during which
  AeroVision itself paused reading (the route is busy with earlier data) does
  not count.

A connection that breaks a rule gets ``408 Request Timeout`` (when no answer
has started yet) and is closed; the route sees the client disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""How often a connection reading a body checks its rate."""

_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def _timeout_answer(detail: str) -> bytes:
    body = b'{"detail": "%s"}' % detail.encode()
    return _408 % (len(body), body)


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read timeouts."""

    header_timeout_s = 10.0
    body_timeout_s = 20.0
    body_min_rate = 500.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_bytes = 0
        self._body_active_s = 0.0

    # headers
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()
        self._body_bytes = 0
        self._body_active_s = 0.0
        self._arm_body_timer()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._give_up(f"the request headers did not arrive within {self.header_timeout_s:g} s")

    # body
    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def _arm_body_timer(self) -> None:
        self._cancel_body_timer()
        self._body_timer = self.loop.call_later(CHECK_EVERY_S, self._check_body_rate)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _check_body_rate(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.cycle is None or not self.cycle.more_body:
            return
        if not self.flow.read_paused:
            self._body_active_s += CHECK_EVERY_S
        if (
            self._body_active_s >= self.body_timeout_s
            and self._body_bytes < self.body_min_rate * self._body_active_s
        ):
            self._give_up(
                f"the request body came at {self._body_bytes / self._body_active_s:.0f} bytes/s; "
                f"at least {self.body_min_rate:g} are needed after {self.body_timeout_s:g} s"
            )
            return
        self._body_timer = self.loop.call_later(CHECK_EVERY_S, self._check_body_rate)

    # both
    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _give_up(self, detail: str) -> None:
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
        log.warning("%s: %s; connection closed", client, detail)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_timeout_answer(detail))
        self.transport.close()


def protocol_class(
    header_timeout_s: float, body_timeout_s: float, body_min_rate: float
) -> type[TimedHttpProtocol]:
    """A :class:`TimedHttpProtocol` with these limits (uvicorn takes a class)."""
    return type(
        "ConfiguredHttpProtocol",
        (TimedHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "body_min_rate": body_min_rate,
        },
    )


def config(app: Any, **kwargs: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` with the timed protocol; ``kwargs`` as for
    :class:`uvicorn.Config` plus ``header_timeout_s``, ``body_timeout_s``, ``body_min_rate``."""
    http = protocol_class(
        kwargs.pop("header_timeout_s"), kwargs.pop("body_timeout_s"), kwargs.pop("body_min_rate")
    )
    return uvicorn.Config(app, http=http, **kwargs)
