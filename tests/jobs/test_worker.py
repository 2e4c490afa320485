"""The worker loop, in process: submit over HTTP, ``work(burst=True)``, read the task.

Every test but the last runs tasks in the test's own process (``in_process=True``)
through the same claim, attempt, outcome, outbox and ack code as ``serve``'s
workers; the last one checks that the default still runs them in a child.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from aerovision.api.services import Services
from aerovision.jobs.queue import RedisQueue
from aerovision.jobs.worker import Worker
from aerovision.store import tasks as task_store
from aerovision.store import webhooks as webhook_store
from aerovision.store import workers as worker_store
from aerovision.store.files import LocalFileStore
from aerovision.store.models import FilesPending, TaskStatus
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from tests.images import encode, scene_with_patch
from tests.inprocess import InProcessService
from tests.server import free_port


def _template_files() -> tuple[dict[str, tuple[str, bytes]], tuple[int, int]]:
    scene, template, [(x, y)] = scene_with_patch(1)
    files = {"image": ("scene.png", encode(scene)), "template": ("patch.png", encode(template))}
    return files, (x, y)


def _refuse_result_writes(store: LocalFileStore) -> Path:
    """The store's results/ folder replaced by a file: every result write (and the
    store's write probe) fails with ENOTDIR, as on a broken disk. Returns the folder,
    moved aside, for :func:`_mend`."""
    folder = store.root / "results"
    aside = store.root / "results.aside"
    folder.rename(aside)
    folder.write_bytes(b"not a folder")
    return aside


def _mend(store: LocalFileStore, aside: Path) -> None:
    (store.root / "results").unlink()
    aside.rename(store.root / "results")


def _decoded(png: bytes) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None, "not a picture"
    return picture


def _local_store(services: Services) -> LocalFileStore:
    assert isinstance(services.store, LocalFileStore)
    return services.store


def test_a_submitted_task_is_done_with_the_patch_where_it_was_pasted(
    inprocess: InProcessService,
) -> None:
    files, (x, y) = _template_files()
    queued = inprocess.submit("template", files)
    assert queued["status"] == "queued"

    assert inprocess.drive() == 1

    task = inprocess.task(queued["uid"])
    assert task["status"] == "done" and task["error"] is None
    [match] = task["result_data"]["matches"]
    assert (match["x"], match["y"], match["w"], match["h"]) == (x, y, 48, 48)
    assert match["score"] > 0.95
    uid = queued["uid"]
    assert task["result_files"] == [f"results/{uid}/matches.png", f"results/{uid}/heatmap.png"]
    for key in task["result_files"]:
        answer = inprocess.download(key)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert _decoded(answer.content).shape == (480, 640, 3)
    thumbnail = inprocess.download(task["thumbnails"][0])
    assert thumbnail.status_code == 200
    assert _decoded(thumbnail.content).shape == (192, 256, 3)  # long side 256
    # the uid has left the queue, the attempt was counted once, the worker signed off
    assert inprocess.services.queue.holds([uid]) == set()
    stored = task_store.get_task(inprocess.services.db, uid, None)
    assert stored is not None and stored.attempts == 1
    assert worker_store.alive_count(inprocess.services.db, 60) == 0


def test_an_input_the_tool_cannot_use_ends_the_task_in_error(inprocess: InProcessService) -> None:
    files, _ = _template_files()
    swapped = {"image": files["template"], "template": files["image"]}
    uid = inprocess.submit("template", swapped)["uid"]

    assert inprocess.drive() == 1

    task = inprocess.task(uid)
    assert task["status"] == "error"
    assert task["error"] == "template (640×480) is larger than the image (48×48)"
    assert task["result_files"] == [] and task["result_data"] == {}
    assert inprocess.services.queue.holds([uid]) == set()
    assert inprocess.drive() == 0  # not retried: the input is at fault, not the service


def test_params_the_tool_refuses_and_a_retired_tool_end_the_task_in_error(
    inprocess: InProcessService,
) -> None:
    """Rows written before a rule changed (or by hand) are checked again by the worker."""
    services = inprocess.services
    services.store.write("uploads/u1/a.png", encode(scene_with_patch(1)[0]))
    for uid, tool, params in (
        ("bad-params", "template", {"threshold": 5.0}),
        ("retired", "phase_correlation", {}),
    ):
        task_store.create_task(services.db, uid=uid, tool=tool, params=params,
                               input_files=["uploads/u1/a.png"], thumbnails=[])
        services.queue.enqueue(uid)

    assert inprocess.drive() == 2

    bad = inprocess.task("bad-params")
    assert bad["status"] == "error"
    assert bad["error"].startswith("the task's params are not valid for template: ")
    assert "threshold" in bad["error"] and "less than or equal to 1" in bad["error"]
    retired = inprocess.task("retired")
    assert retired["status"] == "error"
    assert retired["error"] == "the phase_correlation tool is not available on this server"


def test_each_end_of_a_task_is_in_the_webhook_outbox(inprocess: InProcessService) -> None:
    registered = inprocess.client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example/aerovision", "secret": "s"}
    )
    assert registered.status_code == 201, registered.text
    hook = registered.json()["id"]
    files, _ = _template_files()
    done = inprocess.submit("template", files)["uid"]
    failed = inprocess.submit("template", {"image": files["template"],
                                           "template": files["image"]})["uid"]

    assert inprocess.drive() == 2

    answer = inprocess.client.get(f"/api/v1/webhooks/{hook}/deliveries")
    assert answer.status_code == 200
    events = {d["task_uid"]: (d["event"], d["status"], d["attempts"]) for d in answer.json()}
    assert events == {done: ("task.done", "pending", 0), failed: ("task.error", "pending", 0)}


def _ask_for_pictures(services: Services, uid: str) -> None:
    """What the first download of a picture made on request does."""
    assert task_store.ask_for_files(services.db, uid)
    services.queue.enqueue(uid, first=True)


def test_pictures_are_made_once_asked_for_and_a_refusing_store_delays_them(
    inprocess: InProcessService,
) -> None:
    """The verdict needs no write: the task is done at once; its pictures wait for the store."""
    services = inprocess.services
    store = _local_store(services)
    files, (x, y) = _template_files()
    uid = inprocess.submit("template", files)["uid"]
    assert inprocess.drive() == 1

    task = inprocess.task(uid)
    assert task["status"] == "done" and task["error"] is None
    assert (task["result_data"]["matches"][0]["x"], task["result_data"]["matches"][0]["y"]) == (
        x, y)
    assert task["result_files"] == [f"results/{uid}/matches.png", f"results/{uid}/heatmap.png"]
    stored = task_store.get_task(services.db, uid, None)
    assert stored is not None and stored.files_pending is FilesPending.ON_REQUEST
    assert all(store.exists(key) for key in task["thumbnails"])  # written after the verdict
    assert not any(store.exists(key) for key in task["result_files"])  # not asked for yet
    assert services.queue.holds([uid]) == set()

    aside = _refuse_result_writes(store)
    _ask_for_pictures(services, uid)
    assert inprocess.drive() == 1  # the store refuses: the uid stays, for later
    stored = task_store.get_task(services.db, uid, None)
    assert stored is not None and stored.files_pending is FilesPending.WRITING
    assert services.queue.holds([uid]) == {uid}
    # while the store still refuses, the worker takes nothing, even a uid that is due:
    # the outage does not use up the attempts
    services.queue.release(uid)
    assert inprocess.drive() == 0
    stored = task_store.get_task(services.db, uid, None)
    assert stored is not None and stored.files_attempts == 1 and stored.attempts == 1

    _mend(store, aside)
    services.queue.release(uid)
    assert inprocess.drive() == 1

    stored = task_store.get_task(services.db, uid, None)
    assert stored is not None and stored.files_pending is None and stored.attempts == 1
    assert stored.result_data == task["result_data"]  # a done task's result never changes
    assert set(stored.result_data["timings"]) == {"read_ms", "decode_ms", "match_ms"}
    for key in task["result_files"] + task["thumbnails"]:
        answer = inprocess.client.get(f"/{key}")  # written: no wait
        assert answer.status_code == 200, key
        assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert services.queue.holds([uid]) == set()


def test_pictures_the_store_never_takes_are_given_up_and_the_result_says_why(
    inprocess: InProcessService,
) -> None:
    services = inprocess.services
    store = _local_store(services)
    files, _ = _template_files()
    uid = inprocess.submit("template", files)["uid"]
    assert inprocess.drive() == 1
    aside = _refuse_result_writes(store)
    _ask_for_pictures(services, uid)
    two_tries = services.settings.model_copy(update={"max_attempts": 2})
    worker = Worker(two_tries, services.db, services.queue, store, in_process=True)
    try:
        assert worker.work(burst=True) == 1
    finally:
        _mend(store, aside)

    task = inprocess.task(uid)
    assert task["status"] == "done" and task["error"] is None
    assert task["result_data"]["files_error"] == (
        "the file store refused a write (not a directory); gave up after 2 attempts"
    )
    assert str(store.root) not in task["result_data"]["files_error"]
    assert services.queue.holds([uid]) == set()
    stored = task_store.get_task(services.db, uid, None)
    assert stored is not None and stored.files_pending is None
    answer = inprocess.client.get(f"/results/{uid}/matches.png")  # not owed any more: no wait
    assert answer.status_code == 404


def test_burst_returns_once_the_queue_is_empty(inprocess: InProcessService) -> None:
    assert inprocess.drive() == 0  # nothing queued: back at once
    files, (x, y) = _template_files()
    uids = [inprocess.submit("template", files)["uid"] for _ in range(3)]

    assert inprocess.drive(max_jobs=2) == 2
    assert [inprocess.task(u)["status"] for u in uids] == ["done", "done", "queued"]
    assert inprocess.services.queue.depth() == 1

    assert inprocess.drive() == 1
    assert inprocess.drive() == 0
    for uid in uids:
        task = inprocess.task(uid)
        assert task["status"] == "done"
        assert (task["result_data"]["matches"][0]["x"],
                task["result_data"]["matches"][0]["y"]) == (x, y)
    assert inprocess.services.queue.depth() == 0


def test_a_duplicate_delivery_of_a_finished_task_is_acked_and_ignored(
    inprocess: InProcessService,
) -> None:
    services = inprocess.services
    hook = webhook_store.create_webhook(services.db, DEFAULT_OWNER, "https://hooks.example/x", None)
    files, _ = _template_files()
    uid = inprocess.submit("template", files)["uid"]
    assert inprocess.drive() == 1
    finished = inprocess.task(uid)
    stored = task_store.get_task(services.db, uid, None)
    assert finished["status"] == "done" and stored is not None

    services.queue.enqueue(uid)  # delivered again (the queue is at-least-once)
    services.queue.enqueue("never-submitted")  # a uid without a row
    assert inprocess.drive() == 2

    assert inprocess.task(uid) == finished  # same result, same updated_at
    again = task_store.get_task(services.db, uid, None)
    assert again is not None and again.attempts == stored.attempts == 1
    assert services.queue.holds([uid, "never-submitted"]) == set()
    assert [d.task_uid for d in webhook_store.list_deliveries(services.db, hook.id)] == [uid]
    assert task_store.get_task(services.db, "never-submitted", None) is None


def test_a_worker_asked_to_stop_takes_nothing(inprocess: InProcessService) -> None:
    files, _ = _template_files()
    uid = inprocess.submit("template", files)["uid"]
    inprocess.worker.request_stop()
    assert inprocess.drive() == 0
    assert inprocess.task(uid)["status"] == "queued"
    assert inprocess.services.queue.holds([uid]) == {uid}


def test_burst_raises_a_queue_that_cannot_be_reached(services: Services) -> None:
    """A burst has nothing to wait for: the caller sees the failure (``serve``'s workers
    log it and try again)."""
    import redis

    unreachable = RedisQueue(f"redis://127.0.0.1:{free_port()}/0")
    worker = Worker(services.settings, services.db, unreachable, services.store,
                    in_process=True)
    try:
        with pytest.raises(redis.ConnectionError):
            worker.work(burst=True)
    finally:
        unreachable.close()
    assert worker_store.alive_count(services.db, 60) == 0  # signed off all the same


_DONE = re.compile(r"task (\S+): files written after [\d.]+ s.*, process (\d+)$")


@pytest.mark.parametrize("in_process", [False, True], ids=["child", "in-process"])
def test_the_default_worker_runs_each_task_in_a_child_process(
    services: Services, caplog: pytest.LogCaptureFixture, in_process: bool
) -> None:
    scene, template, [(x, y)] = scene_with_patch(1)
    services.store.write("uploads/t/scene.png", encode(scene))
    services.store.write("uploads/t/patch.png", encode(template))
    task_store.create_task(
        services.db, uid="t", tool="template", params={},
        input_files=["uploads/t/scene.png", "uploads/t/patch.png"],
        thumbnails=["thumbnails/t/scene.png", "thumbnails/t/patch.png"],
    )
    services.queue.enqueue("t")
    worker = Worker(services.settings, services.db, services.queue, services.store,
                    in_process=in_process)

    with caplog.at_level(logging.INFO, logger="aerovision.jobs.worker"):
        assert worker.work(burst=True) == 1

    task = task_store.get_task(services.db, "t", None)
    assert task is not None and task.status is TaskStatus.DONE, task
    assert (task.result_data["matches"][0]["x"], task.result_data["matches"][0]["y"]) == (x, y)
    [done] = [m for r in caplog.records if (m := _DONE.search(r.getMessage()))]
    assert done.group(1) == "t"
    assert (int(done.group(2)) == os.getpid()) is in_process
