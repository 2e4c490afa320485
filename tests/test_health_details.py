"""/health is unauthenticated: it says which part failed and a short class of cause,
never a host, port, path or credential (those go to the server log)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.server import free_port


def test_health_names_what_failed_without_hosts_ports_or_credentials(tmp_path: Path) -> None:
    database_port, queue_port = free_port(), free_port()  # nothing listens on them
    port = free_port()
    log_path = tmp_path / "api.log"
    env = {
        **os.environ,
        "AEROVISION_DATABASE_URL": f"postgresql://aerouser:s3cretpass@127.0.0.1:{database_port}/aerodb",
        "AEROVISION_QUEUE_URL": f"redis://:hunter2pass@127.0.0.1:{queue_port}/0",
    }
    with log_path.open("wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "aerovision", "api", "--host", "127.0.0.1", "--port",
             str(port), "--data-dir", str(tmp_path / "data")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, log_path.read_text()
            try:
                response = requests.get(f"http://127.0.0.1:{port}/health", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["database"] == "error: database unreachable (OperationalError)"
        assert body["queue"] == "error: queue unreachable (ConnectionError)"
        assert body["files"] == "ok"
        for secret in (
            "127.0.0.1", "localhost", str(database_port), str(queue_port), "s3cretpass",
            "hunter2pass", "aerouser", "aerodb", str(tmp_path),
        ):
            assert secret not in response.text, secret
        logged = log_path.read_text()
        assert f"port {database_port} failed" in logged  # the details are in the server log
        assert str(queue_port) in logged
    finally:
        api.terminate()
        api.wait(30)
