"""Honest defaults of `aerovision serve`: where it listens, what it says, when it is ready.

Real `aerovision serve` processes (no workers unless the test needs one), and the
Makefile's venv check through `make -n`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from aerovision import cli
from tests.server import free_port

REPO = Path(__file__).resolve().parents[1]
READY = "AeroVision serving on http://"
OPEN_WARNING = "anyone who can reach this port can use the service"
START_TIMEOUT_S = 60.0


class Serve:
    """`python -m aerovision serve ARGS` with its log read line by line."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "aerovision", "serve", "--port", str(self.port),
                "--data-dir", str(tmp_path / "data"), *args,
            ],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_for(self, text: str) -> str:
        """The first log line containing ``text`` (fails if serve exits first)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited ({self.proc.wait()}):\n{self.log()}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}:\n{self.log()}")

    def stop(self) -> str:
        """Ctrl-C, then everything it logged."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        self.lines.append(out)
        return self.log()

    def log(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Serve:
        started.append(Serve(tmp_path, *args, env=env))
        return started[-1]

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait(10)


def _listening(port: int) -> list[str]:
    """The local addresses listening on ``port``, from `ss -ltn`."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    return [
        fields[3].rsplit(":", 1)[0]
        for fields in (line.split() for line in out.splitlines())
        if len(fields) > 3 and fields[3].rsplit(":", 1)[1] == str(port)
    ]


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _refused(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


# -- where it listens


def test_serve_listens_on_loopback_only_by_default(serve: Any) -> None:
    server = serve("--workers", "0")
    server.wait_for(READY)
    if shutil.which("ss"):
        assert _listening(server.port) == ["127.0.0.1"]
    outward = _outward_address()
    if outward is not None:
        assert _refused(outward, server.port)
    assert requests.get(f"http://127.0.0.1:{server.port}/api/v1/version", timeout=10).ok
    log = server.stop()
    assert f"{READY}127.0.0.1:{server.port};" in log
    assert OPEN_WARNING not in log


def test_every_interface_without_keys_warns_once(serve: Any) -> None:
    server = serve("--workers", "0", env={"AEROVISION_HOST": "0.0.0.0"})
    server.wait_for(READY)
    if shutil.which("ss"):
        assert _listening(server.port) == ["0.0.0.0"]
    outward = _outward_address()
    if outward is not None:
        assert requests.get(f"http://{outward}:{server.port}/api/v1/version", timeout=10).ok
    log = server.stop()
    [warning] = [line for line in log.splitlines() if OPEN_WARNING in line]
    assert " WARNING " in warning and "AEROVISION_API_KEYS" in warning


def test_every_interface_with_keys_does_not_warn(serve: Any) -> None:
    server = serve("--host", "0.0.0.0", "--workers", "0", env={"AEROVISION_API_KEYS": "k1"})
    server.wait_for(READY)
    assert OPEN_WARNING not in server.stop()


def test_api_listens_on_every_interface_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """`aerovision api` (containers, compose) keeps 0.0.0.0; --host and the variable win."""
    import aerovision.runtime

    seen: list[str] = []
    monkeypatch.setattr(aerovision.runtime, "run", lambda settings, **_: seen.append(settings.host))
    runner = CliRunner()
    assert runner.invoke(cli.main, ["api"]).exit_code == 0
    assert runner.invoke(cli.main, ["api"], env={"AEROVISION_HOST": "127.0.0.1"}).exit_code == 0
    assert runner.invoke(cli.main, ["api", "--host", "10.0.0.5"]).exit_code == 0
    assert seen == ["0.0.0.0", "127.0.0.1", "10.0.0.5"]
    compose = (REPO / "deploy" / "compose.yaml").read_text()
    assert "aerovision api --host 0.0.0.0" in compose


# -- when it says it is ready, and when it cannot start


def test_the_ready_line_means_health_answers_200(serve: Any) -> None:
    server = serve("--workers", "1")
    line = server.wait_for(READY)
    health = requests.get(f"http://127.0.0.1:{server.port}/health", timeout=10)
    assert health.status_code == 200, (health.text, server.log())
    assert health.json()["workers"] >= 1
    assert f"http://127.0.0.1:{server.port};" in line
    log = server.stop()
    assert log.count(READY) == 1
    assert "setup plugin" not in log  # alembic's start-up noise is kept to warnings
    assert "Running upgrade" in log  # the migrations still say what they did
    assert log.rstrip().endswith("stopped")


def test_a_port_in_use_ends_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "aerovision", "serve", "--port", str(port),
                "--workers", "1", "--data-dir", str(tmp_path / "data"),
            ],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    [line] = [x for x in (result.stdout + result.stderr).splitlines() if x.strip()]
    assert " ERROR " in line
    assert line.endswith(f"port {port} is already in use (set --port or AEROVISION_PORT)")


# -- what it shows


def test_serve_help_shows_defaults_as_one_writes_them() -> None:
    text = CliRunner().invoke(cli.main, ["serve", "--help"]).stdout
    assert "AEROVISION_DATA_DIR (default ./data)" in text
    assert "AEROVISION_HOST (default 127.0.0.1)" in text
    assert "PosixPath" not in text and "(default None)" not in text
    api_help = CliRunner().invoke(cli.main, ["api", "--help"]).stdout
    assert "AEROVISION_HOST (default 0.0.0.0)" in api_help


# -- the Makefile's venv


def _make_plan(venv: Path) -> str:
    result = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_rebuilds_a_venv_whose_python_is_broken(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.11")
    plan = _make_plan(venv)
    assert f"rm -rf {venv}" in plan
    assert f"-m venv {venv}" in plan
    assert f"{venv}/bin/python -m pip install --quiet -e ." in plan


def _old_python() -> str | None:
    """A working Python older than 3.11: on PATH, or one that pyenv installed."""
    pyenv = sorted((Path.home() / ".pyenv" / "versions").glob("3.[0-9].*/bin/python3"))
    pyenv += sorted((Path.home() / ".pyenv" / "versions").glob("3.10.*/bin/python3"))
    for found in [shutil.which("python3.10"), shutil.which("python3.9"), *map(str, pyenv)]:
        if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
            return found
    return None


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_rebuilds_a_venv_made_by_an_unsupported_python(tmp_path: Path) -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine to make such a venv")
    venv = tmp_path / "venv"
    subprocess.run([old, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    plan = _make_plan(venv)
    assert f"rm -rf {venv}" in plan and f"-m venv {venv}" in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_keeps_a_venv_of_a_supported_python(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / ".runtime-installed").touch()
    plan = _make_plan(venv)
    assert "-m venv" not in plan and "rm -rf" not in plan
