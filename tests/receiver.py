"""Real HTTP receivers on 127.0.0.1 for webhook tests: a well-behaved one, and one
that trickles its answer a byte at a time."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.server import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    wall: float = 0.0
    """time.time() of the arrival (compare with X-Webhook-Timestamp)."""


@dataclass
class Receiver:
    """Records every POST. ``behaviour`` decides the answer: "ok", "hang", or a list of
    status codes answered in turn (the last one repeats)."""

    behaviour: Any = "ok"
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    """Serve HTTPS with this server context."""
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/callback"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(
                        self.path, {k: v for k, v in self.headers.items()}, body,
                        time.monotonic(), time.time(),
                    )
                )
                if receiver.behaviour == "hang":
                    receiver._release.wait(60)
                    return
                if isinstance(receiver.behaviour, list):
                    index = min(len(receiver.received), len(receiver.behaviour)) - 1
                    code = receiver.behaviour[index]
                else:
                    code = 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} deliveries in {timeout} s")
            time.sleep(0.02)
        return self.received


@dataclass
class Connection:
    """One request the trickling receiver got: which delivery, and how long the
    sender kept the connection open."""

    delivery_id: str
    headers: dict[str, str]
    opened: float
    closed: float | None = None


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@dataclass
class TricklingReceiver:
    """A raw-socket receiver that reads the whole request, then answers one byte every
    ``interval`` seconds (a full answer takes minutes), as long as the sender stays.

    Each read or write on its own is quick, so only a timeout on the whole exchange
    ends such an attempt. It notices at once when the sender closes the connection,
    and keeps count of the connections open per delivery id (``X-Webhook-Delivery``).
    """

    interval: float = 3.0
    port: int = field(default_factory=free_port)
    connections: list[Connection] = field(default_factory=list)
    max_open: int = 0
    max_open_per_delivery: dict[str, int] = field(default_factory=dict)
    _open: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slow"

    def start(self) -> TricklingReceiver:
        listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()

    def max_overlap(self, lag: float = 0.25) -> int:
        """Most connections open at once, counted at each opening, where a connection
        this receiver saw closing less than ``lag`` seconds after another one opened
        counts as closed before it: on a loaded machine the thread that notices a
        close can run after the one that accepts the sender's next connection."""
        with self._lock:
            spans = [(c.opened, c.closed) for c in self.connections]
        return max(
            (
                sum(1 for o, c in spans if o <= start and (c is None or c > start + lag))
                for start, _ in spans
            ),
            default=0,
        )

    def open_now(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            headers = _read_request(sock)
            if headers is None:
                return
            delivery = headers.get("x-webhook-delivery", "")
            connection = Connection(delivery, headers, time.monotonic())
            with self._lock:
                self.connections.append(connection)
                self._open[delivery] = self._open.get(delivery, 0) + 1
                self.max_open = max(self.max_open, sum(self._open.values()))
                self.max_open_per_delivery[delivery] = max(
                    self.max_open_per_delivery.get(delivery, 0), self._open[delivery]
                )
            try:
                self._trickle(sock)
            finally:
                with self._lock:
                    connection.closed = time.monotonic()
                    self._open[delivery] -= 1

    def _trickle(self, sock: socket.socket) -> None:
        for byte in ANSWER:
            # wait one interval, but notice at once when the sender goes away
            readable, _, _ = select.select([sock], [], [], self.interval)
            if self._stopping.is_set():
                return
            if readable:
                try:
                    if not sock.recv(1024):
                        return  # the sender closed the connection
                except OSError:
                    return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return


def _read_request(sock: socket.socket) -> dict[str, str] | None:
    """The request's headers (names lower-cased), after its whole body was read."""
    sock.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
    except OSError:
        return None
    sock.settimeout(None)
    return headers
