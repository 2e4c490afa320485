"""A real `aerovision serve` process for tests that talk HTTP to the service."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """Starts, stops and restarts `python -m aerovision serve` on a free port.

    ``module``: another module to run with ``-m`` that takes the same command line
    (e.g. a test launcher that changes the tool registry before serving).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        env: dict[str, str] | None = None,
        module: str = "aerovision",
    ):
        self.data_dir = data_dir
        self.module = module
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "AEROVISION_LEASE_S": "5", **(env or {})}
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", self.module, "serve",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--workers", str(self.workers),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                health = requests.get(f"{self.base_url}/health", timeout=2).json()
                if self.workers == 0 or health.get("workers", 0) >= self.workers:
                    return
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass  # refused, or bound but not answering yet (serve binds before it starts)
            time.sleep(0.1)
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # never leave a half-started tree behind
        self.proc.wait(10)
        raise RuntimeError(f"serve did not become ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                raise
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return children_of(self.proc.pid)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def wait_task(self, uid: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the task is done or error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task: dict[str, Any] = requests.get(self.url(f"/api/v1/tasks/{uid}"), timeout=5).json()
            if task["status"] in ("done", "error"):
                return task
            time.sleep(0.05)
        raise AssertionError(f"task {uid} did not finish in {timeout} s: {task}")


def children_of(pid: int, *, busy: bool = False) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc); ``busy``: only those running
    or in I/O (a worker's task process waiting for its next task is sleeping)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and (not busy or state in ("R", "D")):
            found.append(int(entry.name))
    return found
