"""A local cluster: one api, two workers and one notifier as separate OS processes
on PostgreSQL + Redis + S3. A worker is killed and Redis is flushed mid-run;
every task still ends `done` with the right answer, exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.backends import REDIS_URL

CLUSTER_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/13"
from tests.conftest import backend_env
from tests.images import encode, scene_with_patch
from tests.receiver import Receiver
from tests.server import children_of, free_port

TASKS = 200


class Role:
    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aerovision", *args], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the role and every process under it (a machine lost)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def cluster_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with backend_env("scaled", request) as env:
        yield {
            **os.environ,
            **env,
            "AEROVISION_DATA_DIR": str(tmp_path / "data"),
            "AEROVISION_LEASE_S": "3",
            "AEROVISION_REAPER_INTERVAL_S": "0.5",
            "AEROVISION_WEBHOOK_RETRY_BASE_S": "1",
            "AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on 127.0.0.1
            # a Redis database of its own: flushing it loses everything this service
            # keeps in Redis, and nothing of the tests running beside it
            "AEROVISION_QUEUE_URL": CLUSTER_REDIS_URL,
        }


def _kill_while_busy(role: Role, timeout: float = 20.0) -> None:
    """SIGKILL ``role`` once one of its worker processes is running a task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(children_of(worker, busy=True) for worker in children_of(role.proc.pid)):
            break
        time.sleep(0.005)
    role.kill()


def _inputs(index: int) -> tuple[str, dict[str, Any], set[tuple[int, int]]]:
    """Task ``index``: a template task or a chain, with the positions it must find."""
    k = 1 + index % 3
    scene, patch, positions = scene_with_patch(k, size=(360, 480), seed=index)
    files = {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(patch))}
    if index % 4 == 3:
        steps = [{"tool": "template", "params": {"threshold": 0.999}},
                 {"tool": "template", "params": {"threshold": 0.8}}]
        return "chain", {"files": files, "data": {"steps": json.dumps(steps)}}, set(positions)
    return "template", {"files": files}, set(positions)


def _found(task: dict[str, Any]) -> set[tuple[int, int]]:
    data = task["result_data"]
    if task["tool"] == "chain":
        assert data["chain_result"] == "found" and data["completed_step"] == 2
        data = data["steps"][1]["result_data"]
    return {(m["x"], m["y"]) for m in data["matches"]}


def test_kill_a_worker_and_flush_redis_mid_run(cluster_env: dict[str, str], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    env = cluster_env
    subprocess.run([sys.executable, "-m", "aerovision", "migrate"], env=env, check=True,
                   capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    roles = [
        Role("api", ["api", "--host", "127.0.0.1", "--port", str(port)], env, logs),
        Role("worker-a", ["worker", "--concurrency", "1"], env, logs),
        Role("worker-b", ["worker", "--concurrency", "1"], env, logs),
        Role("notifier", ["notifier"], env, logs),
    ]
    receiver = Receiver().start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).json().get("workers", 0) >= 2:
                    break
            except (requests.ConnectionError, ValueError):
                pass
            assert time.monotonic() < deadline, roles[0].log()
            time.sleep(0.2)
        requests.post(f"{base}/api/v1/webhooks", json={"url": receiver.url}, timeout=10)

        expected: dict[str, set[tuple[int, int]]] = {}
        for index in range(TASKS):
            tool, request, positions = _inputs(index)
            response = requests.post(f"{base}/api/v1/match/{tool}", timeout=30, **request)
            assert response.status_code == 201, response.text
            expected[response.json()["uid"]] = positions
            if index == TASKS // 4:
                _kill_while_busy(roles[1])  # worker-a, with the task it is running
            if index == TASKS // 2:
                redis.Redis.from_url(CLUSTER_REDIS_URL).flushdb()

        deadline = time.monotonic() + 240
        while True:
            page = requests.get(f"{base}/api/v1/tasks?limit=200", timeout=10).json()
            statuses = [t["status"] for t in page["tasks"]]
            if page["total"] == TASKS and all(s in ("done", "error") for s in statuses):
                break
            assert time.monotonic() < deadline, (
                f"{statuses.count('done')} done, {statuses.count('queued')} queued, "
                f"{statuses.count('processing')} processing\n" + roles[0].log()[-3000:]
            )
            time.sleep(0.5)

        tasks = {t["uid"]: t for t in page["tasks"]}
        assert set(tasks) == set(expected)  # none lost, none invented
        for uid, task in tasks.items():
            assert task["status"] == "done", task
            assert _found(task) == expected[uid], uid
            for path in task["result_files"]:
                assert requests.get(f"{base}/{path}", timeout=60).status_code == 200

        # every end was notified at least once; duplicates carry the same body
        receiver.wait_for(TASKS, 60)
        bodies: dict[str, set[bytes]] = {}
        for item in receiver.received:
            bodies.setdefault(json.loads(item.body)["uid"], set()).add(item.body)
        assert set(bodies) == set(expected)
        assert all(len(b) == 1 for b in bodies.values())
        # worker-a's task in flight (its run, or the files written after its verdict)
        # came back through its expired lease, or, if Redis was flushed first, as a task
        # no queue held; a kill that fell between two tasks left nothing to recover
        killed = roles[1].log()
        in_flight = set(re.findall(r"task (\S+) \(\w+\) started", killed)) - set(
            re.findall(r"task (\S+): files written", killed))
        recovered = roles[0].log() + roles[2].log()
        assert not in_flight or "back in the queue" in recovered or "was in no queue" in recovered
    finally:
        receiver.stop()
        for role in roles:
            role.stop()
