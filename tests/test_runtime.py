"""`aerovision serve` as a whole: restarts, crashes, hostile sizes. Nothing is lost."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.images import encode, png_bomb, scene_with_patch
from tests.server import ServeProcess, children_of


def _submit(server: ServeProcess, image: bytes, template: bytes, **fields: str) -> str:
    response = requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("scene.png", image), "template": ("part.png", template)},
        data=fields,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["uid"])


def _slow_inputs() -> tuple[bytes, bytes]:
    """A task that takes a few seconds: masked colour matching on a large image."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (2400, 2400, 3), dtype=np.uint8)
    template = np.dstack([image[100:400, 100:400], np.full((300, 300), 255, np.uint8)])
    template[:50, :50, 3] = 0  # a transparent corner makes it a masked match
    return encode(image), encode(template)


def test_tasks_queued_at_stop_finish_after_restart(tmp_path: Path, fresh_backend: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    scene, icon, _ = scene_with_patch(2, seed=1)
    first = ServeProcess(data_dir, workers=0, env=fresh_backend).start()
    uids = [_submit(first, encode(scene), encode(icon)) for _ in range(6)]
    put = requests.put(first.url("/api/v1/settings/template"), json={"max_results": 7}, timeout=10)
    assert put.status_code == 200
    assert first.stop(signal.SIGINT) == 0

    second = ServeProcess(data_dir, workers=2, env=fresh_backend).start()
    try:
        for uid in uids:
            task = second.wait_task(uid)
            assert task["status"] == "done", task
            assert task["result_data"]["filtered_matches"] == 2
        settings = requests.get(second.url("/api/v1/settings/template"), timeout=10).json()
        assert settings["params"]["max_results"] == 7
    finally:
        assert second.stop(signal.SIGTERM) == 0


def test_stop_during_a_task_gives_it_back_and_it_finishes_later(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    env = {**fresh_backend, "AEROVISION_SHUTDOWN_GRACE_S": "0"}
    first = ServeProcess(data_dir, workers=1, env=env).start()
    uid = _submit(first, *_slow_inputs())
    deadline = time.monotonic() + 30
    while requests.get(first.url(f"/api/v1/tasks/{uid}"), timeout=5).json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop(signal.SIGTERM)
    assert requests.get is not None
    second = ServeProcess(data_dir, workers=1, env=fresh_backend).start()
    try:
        task = second.wait_task(uid, timeout=120)
        assert task["status"] == "done", task
    finally:
        second.stop()


def _grandchildren(server: ServeProcess) -> list[int]:
    return [pid for worker in server.worker_pids() for pid in children_of(worker)]


def _running(server: ServeProcess, uid: str, timeout: float = 30.0) -> list[int]:
    """The task processes once task ``uid`` is processing and its process is busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=5).json()["status"]
        busy = [pid for worker in server.worker_pids() for pid in children_of(worker, busy=True)]
        if status == "processing" and busy:
            return busy
        time.sleep(0.02)
    raise AssertionError(f"task {uid} did not start running in {timeout} s")


def test_task_process_killed_mid_task_is_retried(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    server = ServeProcess(tmp_path / "data", workers=1, env=fresh_backend).start()
    try:
        uid = _submit(server, *_slow_inputs())
        os.kill(_running(server, uid)[0], signal.SIGKILL)
        started = time.monotonic()
        task = server.wait_task(uid, timeout=120)
        assert task["status"] == "done", task
        assert "retrying (attempt 1 of 3)" in server.log()
        assert time.monotonic() - started < 60
    finally:
        server.stop()


def test_worker_killed_mid_task_is_recovered_by_the_reaper(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    lease = 3.0
    server = ServeProcess(
        tmp_path / "data", workers=1,
        env={**fresh_backend, "AEROVISION_LEASE_S": str(lease), "AEROVISION_REAPER_INTERVAL_S": "0.5"},
    ).start()
    try:
        uid = _submit(server, *_slow_inputs())
        _running(server, uid)
        for victim in _grandchildren(server) + server.worker_pids():
            os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        task = server.wait_task(uid, timeout=120)
        assert task["status"] == "done", task
        assert "lease expired; back in the queue" in server.log()
        assert "starting it again" in server.log()
        assert time.monotonic() - killed_at < 60
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has stopped running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_worker_killed_mid_task_takes_its_task_process_with_it(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    """SIGKILL of the worker (not its child): the busy child dies with it instead of
    running on past the time limit, and the task is completed once, by the retry."""
    server = ServeProcess(
        tmp_path / "data", workers=1,
        env={**fresh_backend, "AEROVISION_LEASE_S": "3", "AEROVISION_REAPER_INTERVAL_S": "0.5"},
    ).start()
    try:
        uid = _submit(server, *_slow_inputs(), use_grayscale="false")  # several seconds
        [child] = _running(server, uid)
        worker = _parent(child)
        assert worker in server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        while _alive(child) and time.monotonic() - killed < 2.0:
            time.sleep(0.01)
        print(f"task process gone {time.monotonic() - killed:.3f} s after its worker's SIGKILL")
        assert not _alive(child), "the task process outlived its worker"
        task = server.wait_task(uid, timeout=120)
        assert task["status"] == "done", task
        log = server.log()
        assert "lease expired; back in the queue" in log
        assert f"task {uid} (template) started, attempt 2" in log
        assert len(re.findall(rf"task {uid} done", log)) == 1
    finally:
        server.stop()


def test_a_task_whose_input_was_deleted_names_the_key_not_a_server_path(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    first = ServeProcess(data_dir, workers=0, env=fresh_backend).start()
    scene, icon, _ = scene_with_patch(1)
    try:
        uid = _submit(first, encode(scene), encode(icon))
        key = requests.get(first.url(f"/api/v1/tasks/{uid}"), timeout=5).json()["input_files"][0]
    finally:
        first.stop()
    storage = fresh_backend.get("AEROVISION_STORAGE_URL")
    if storage is None:
        (data_dir / key).unlink()
    else:
        import boto3

        bucket, _, prefix = storage.removeprefix("s3://").partition("/")
        boto3.client(
            "s3", endpoint_url=fresh_backend["AEROVISION_S3_ENDPOINT_URL"],
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1",
        ).delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
    second = ServeProcess(data_dir, workers=1, env=fresh_backend).start()
    try:
        task = second.wait_task(uid)
        assert task["status"] == "error"
        assert task["error"] == f"image: input file {key} is missing from the file store"
        assert str(data_dir) not in task["error"]
    finally:
        second.stop()


def test_huge_png_is_a_task_error_and_the_worker_keeps_serving(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 1_000_000  # a few hundred KB
    server = ServeProcess(tmp_path / "data", workers=1, env=fresh_backend).start()
    try:
        worker_before = server.worker_pids()
        small = encode(np.zeros((10, 10), np.uint8))
        task = server.wait_task(_submit(server, bomb, small))
        assert task["status"] == "error"
        assert "20000×20000" in task["error"] and "AEROVISION_MAX_IMAGE_PIXELS" in task["error"]
        [line] = [x for x in server.log().splitlines() if f"task {task['uid']} error" in x]
        peak_mb = float(re.search(r"peak memory (\d+) MB", line).group(1))  # type: ignore[union-attr]
        assert peak_mb < 400  # the 400-megapixel image was never allocated
        scene, icon, _ = scene_with_patch(1)
        after = server.wait_task(_submit(server, encode(scene), encode(icon)))
        assert after["status"] == "done"
        assert server.worker_pids() == worker_before
    finally:
        server.stop()


def _task_processes(server: ServeProcess, uids: list[str]) -> list[int]:
    """The process that ran each task, from the worker's log line for it."""
    lines = server.log().splitlines()
    pids = []
    for uid in uids:
        [line] = [x for x in lines if f"task {uid} done" in x]
        pids.append(int(re.search(r"process (\d+)", line).group(1)))  # type: ignore[union-attr]
    return pids


@pytest.mark.parametrize(("per_process", "distinct"), [("2", 3), ("1", 5), (None, 1)])
def test_tasks_per_process_decides_when_a_fresh_process_is_forked(
    tmp_path: Path, per_process: str | None, distinct: int
) -> None:
    env = {"AEROVISION_TASKS_PER_PROCESS": per_process} if per_process else {}
    server = ServeProcess(tmp_path / "data", workers=1, env=env).start()
    try:
        scene, icon, _ = scene_with_patch(1)
        uids = []
        for _ in range(5):
            task = server.wait_task(_submit(server, encode(scene), encode(icon)))
            assert task["status"] == "done"
            uids.append(task["uid"])
        pids = _task_processes(server, uids)
        assert len(set(pids)) == distinct
        assert not set(pids) & set(server.worker_pids())  # never the worker itself
    finally:
        server.stop()


def test_a_task_after_a_crashed_one_runs_in_a_fresh_process(
    tmp_path: Path, fresh_backend: dict[str, str]
) -> None:
    server = ServeProcess(tmp_path / "data", workers=1, env=fresh_backend).start()
    try:
        scene, icon, _ = scene_with_patch(1)
        first = server.wait_task(_submit(server, encode(scene), encode(icon)))
        slow = _submit(server, *_slow_inputs())
        os.kill(_running(server, slow)[0], signal.SIGKILL)
        assert server.wait_task(slow, timeout=120)["status"] == "done"
        last = server.wait_task(_submit(server, encode(scene), encode(icon)))
        before, after = _task_processes(server, [first["uid"], last["uid"]])
        assert before != after
    finally:
        server.stop()
