"""Process wiring: `serve` runs the API, the workers, the reaper and the notifier together.

Workers are separate processes (spawned, so they share nothing with the API
process); a worker that dies is started again. Ctrl-C or SIGTERM stops the
API, then asks every worker to finish or give back its task, then exits.

The listening socket is bound first, before migrations and workers: a port
already in use ends the command at once with one line naming it (exit code
1). "AeroVision serving on …" is logged only once uvicorn accepts connections
on that socket and at least one of this command's workers has written its
heartbeat (what ``/health`` counts), so a script that waits for that line gets
200 from ``/health``.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

from aerovision.config import Settings

if TYPE_CHECKING:
    import uvicorn

    from aerovision.api.services import Services

log = logging.getLogger(__name__)

WORKER_RESTART_DELAY_S = 1.0
"""Pause before a worker process that died is started again."""

READY_POLL_S = 0.1
"""How often `serve` looks whether the HTTP server is up and a worker reported in."""

READY_WARN_AFTER_S = 60.0
"""After this long without a worker reporting in, `serve` says so (once)."""

QUIET_LOGGERS = ("alembic.runtime.plugins",)
"""Loggers kept to warnings: alembic's seven "setup plugin …" lines on every start."""


def configure_logging(settings: Settings) -> None:
    from aerovision.observability import configure_logging as configure

    configure(settings.log_level, settings.log_format)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


class BindError(Exception):
    """The HTTP port could not be bound; the message is the one line to show."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or :class:`BindError` saying why not.

    It is not listening yet: uvicorn calls ``listen`` when it starts serving, so a
    client that comes during the migrations or the workers' start is refused at
    once rather than left waiting in the backlog. A port another process listens
    on is refused here, at ``bind`` (``SO_REUSEADDR`` only lets a port whose old
    connections linger in TIME_WAIT be taken again).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BindError(
            f"cannot listen on {host}: the address does not resolve ({exc.strerror}; "
            "set --host or AEROVISION_HOST)"
        ) from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = f"port {port} is already in use (set --port or AEROVISION_PORT)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = (
                f"cannot listen on {host}: it is not an address of this machine "
                "(set --host or AEROVISION_HOST)"
            )
        elif exc.errno == errno.EACCES:
            message = f"port {port} needs privileges to listen on (set --port or AEROVISION_PORT)"
        else:
            message = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
        raise BindError(message) from exc
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether ``sock`` is bound to a loopback address (reachable from this machine only)."""
    address = ipaddress.ip_address(sock.getsockname()[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def warn_if_open(settings: Settings, sock: socket.socket) -> None:
    """One WARNING when the API listens beyond this machine with no credentials required."""
    if settings.auth_mode != "off" or is_loopback(sock):
        return
    log.warning(
        "listening on %s port %d with no API keys: anyone who can reach this port can "
        "use the service (submit tasks, read every upload and result, change settings "
        "and webhooks). Set AEROVISION_API_KEYS=key1,key2 to require a key (or "
        "AEROVISION_AUTH=accounts for accounts and tokens), or listen "
        "on 127.0.0.1 (--host / AEROVISION_HOST) to keep it to this machine",
        settings.host,
        settings.port,
    )


def _prepare_opencv_env(settings: Settings) -> None:
    """OpenCV reads these once, when it first decodes: set them before it loads."""
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(settings.max_image_pixels)


def opencv_threads(settings: Settings, workers_here: int) -> int:
    """OpenCV threads per task: as set, or the machine's cores shared by its workers.

    One worker keeps every core for its task (lowest latency); N workers on N
    cores get one thread each, so tasks do not fight over the cores.
    """
    if settings.opencv_threads:
        return settings.opencv_threads
    return max(1, (os.cpu_count() or 1) // max(1, workers_here))


def run_worker(settings: Settings, threads: int = 0) -> None:
    """Run one worker in this process until SIGTERM/SIGINT."""
    configure_logging(settings)
    _prepare_opencv_env(settings)
    import cv2  # loaded once here, so each forked task starts without import cost

    if threads:
        cv2.setNumThreads(threads)

    from aerovision.api.services import Services
    from aerovision.jobs.runners import warm_up
    from aerovision.jobs.worker import Worker

    warm_up()
    services = Services.open(settings)
    worker = Worker(settings, services.db, services.queue, services.store)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.work()
    finally:
        services.close()


class WorkerPool:
    """Keeps ``count`` worker processes running until :meth:`stop`."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="worker-pool", daemon=True)

    def _spawn(self, index: int) -> BaseProcess:
        proc = self._ctx.Process(
            target=run_worker,
            args=(self.settings, opencv_threads(self.settings, self.count)),
            name=f"worker-{index}",
            daemon=False,
        )
        proc.start()
        return proc

    def start(self) -> None:
        self._procs = [self._spawn(i) for i in range(self.count)]
        self._monitor.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _watch(self) -> None:
        while not self._stopping.wait(WORKER_RESTART_DELAY_S):
            for index, proc in enumerate(self._procs):
                if not proc.is_alive() and not self._stopping.is_set():
                    log.warning(
                        "%s exited with code %s; starting it again", proc.name, proc.exitcode
                    )
                    proc.join(0)
                    self._procs[index] = self._spawn(index)

    def stop(self) -> None:
        """Ask every worker to stop, wait for them, kill the ones that do not."""
        self._stopping.set()
        for proc in self._procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace_s + 10
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("%s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join(5)


class _Shutdown(Exception):
    """Raised by the SIGTERM handler to leave the server loop."""


def _raise_shutdown(_signum: int, _frame: FrameType | None) -> None:
    raise _Shutdown


def run_serve(settings: Settings) -> None:
    """API + workers + reaper + notifier in one command (the embedded default)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run(settings, api=True, workers=settings.workers, reaper=True, notifier=True, migrate=True)


def run(
    settings: Settings,
    *,
    api: bool,
    workers: int,
    reaper: bool,
    notifier: bool,
    migrate: bool = False,
) -> None:
    """Run the chosen parts in this process until Ctrl-C or SIGTERM.

    `serve` runs them all; `aerovision api`, `worker` and `notifier` run one
    part each (plus the reaper for api and worker: any number may run it, one
    acts at a time).
    """
    from aerovision.api.services import Services
    from aerovision.jobs.reaper import Reaper
    from aerovision.notifier import Notifier
    from aerovision.store.db import migrate as run_migrations

    configure_logging(settings)
    _prepare_opencv_env(settings)
    listener: socket.socket | None = None
    if api:
        try:
            listener = bind_listener(settings.host, settings.port)
        except BindError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None
        warn_if_open(settings, listener)
    if migrate:
        run_migrations(settings.db_url)
    services = Services.open(settings)
    pool = WorkerPool(settings, workers) if workers else None
    reaper_thread = Reaper(settings, services.db, services.queue) if reaper else None
    sender = Notifier(settings, services.db) if notifier else None
    # uvicorn re-raises the signal that stopped it once it has shut down; this
    # handler turns SIGTERM into an exception, so the parts are stopped below.
    signal.signal(signal.SIGTERM, _raise_shutdown)
    if pool is not None:
        pool.start()
    if reaper_thread is not None:
        reaper_thread.start()
    if sender is not None:
        sender.start()
    try:
        if listener is not None:
            _serve_http(settings, services, listener, pool)
        else:
            log.info(
                "running %s",
                ", ".join(
                    part
                    for part, on in (
                        (f"{workers} worker(s)", workers),
                        ("the reaper", reaper),
                        ("the notifier", notifier),
                    )
                    if on
                ),
            )
            threading.Event().wait()
    except (KeyboardInterrupt, _Shutdown):
        pass
    finally:
        log.info("stopping: waiting for workers to finish or give back their tasks")
        if reaper_thread is not None:
            reaper_thread.stop()
        if pool is not None:
            pool.stop()
        if sender is not None:
            sender.stop()
        services.close()
        log.info("stopped")


def _serve_http(
    settings: Settings, services: Services, listener: socket.socket, pool: WorkerPool | None
) -> None:
    import uvicorn

    from aerovision.api import server as http_server
    from aerovision.api.app import create_app

    app = create_app(settings, services)
    server = uvicorn.Server(
        http_server.config(
            app,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            body_min_rate=settings.body_min_rate,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # keep our logging (request ids, JSON)
            access_log=False,  # the API logs requests itself, with keys redacted
            timeout_graceful_shutdown=5,
        )
    )
    done = threading.Event()
    announcer = threading.Thread(
        target=_announce_when_ready,
        args=(settings, services, server, pool, done),
        name="ready",
        daemon=True,
    )
    announcer.start()
    try:
        server.run(sockets=[listener])
    finally:
        done.set()
        listener.close()


def _announce_when_ready(
    settings: Settings,
    services: Services,
    server: uvicorn.Server,
    pool: WorkerPool | None,
    done: threading.Event,
) -> None:
    """Log "serving on" once the server accepts connections and a worker reported in."""
    started = time.monotonic()
    warned = False
    while not done.wait(READY_POLL_S):
        if server.should_exit:
            return
        if not server.started:
            continue
        if pool is None or _reported_in(services, pool.pids):
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            log.info(
                "AeroVision serving on http://%s:%d; data in %s",
                host,
                settings.port,
                settings.data_dir,
            )
            return
        if not warned and time.monotonic() - started > READY_WARN_AFTER_S:
            warned = True
            log.warning(
                "no worker has reported in after %.0f s; /health answers 503 until one does",
                READY_WARN_AFTER_S,
            )


def _reported_in(services: Services, pids: list[int]) -> bool:
    """Whether one of ``pids`` (this machine's workers) has a heartbeat in the database."""
    from sqlalchemy import func, select

    from aerovision.store.models import WorkerRow

    if not pids:
        return False
    try:
        with services.db.read() as session:
            found = session.scalar(
                select(func.count())
                .select_from(WorkerRow)
                .where(WorkerRow.hostname == socket.gethostname(), WorkerRow.pid.in_(pids))
            )
    except Exception:  # the database is still starting, or briefly away: ask again
        log.debug("readiness: could not read the worker heartbeats", exc_info=True)
        return False
    return bool(found)


def prepare(settings: Settings) -> None:
    """`aerovision migrate`: bring the schema up to date and create the bucket."""
    from aerovision.api.services import Services
    from aerovision.store.db import migrate as run_migrations

    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_migrations(settings.db_url)
    services = Services.open(settings)
    try:
        services.store.ensure_bucket()
    finally:
        services.close()


def check(settings: Settings, what: str) -> tuple[bool, str]:
    """Container health checks: ``database`` (database and queue answer) or
    ``worker`` (a worker on this host reported in during the last 30 s)."""
    import socket

    from aerovision.api.services import Services
    from aerovision.store import workers as worker_store

    services = Services.open(settings)
    try:
        services.db.ping()
        services.queue.ping()
        if what == "database":
            return True, "database and queue answer"
        if what == "worker":
            alive = worker_store.alive_on_host(services.db, socket.gethostname(), within_s=30)
            return alive > 0, f"{alive} worker(s) on this host reported in during the last 30 s"
        return False, f"unknown check {what!r}: use database or worker"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        services.close()
