"""Task rows: create, read, list, and the queued → processing → done | error machine,
on SQLite and PostgreSQL."""

from __future__ import annotations

from aerovision.store import tasks as task_store
from aerovision.store.db import Database
from aerovision.store.models import TaskStatus
from aerovision.store.scope import DEFAULT as DEFAULT_OWNER
from aerovision.store.tasks import Task


def _new(db: Database, uid: str, tool: str = "template") -> Task:
    return task_store.create_task(
        db, uid=uid, tool=tool, params={"threshold": 0.9, "note": "café ☕"},
        input_files=[f"uploads/{uid}/a.png", f"uploads/{uid}/b.png"],
        thumbnails=[f"thumbnails/{uid}/a.png", f"thumbnails/{uid}/b.png"],
        request_id="req-1",
    )


def _get(db: Database, uid: str) -> Task:
    task = task_store.get_task(db, uid, None)
    assert task is not None
    return task


def test_a_new_task_is_queued_and_reads_back_as_written(database: Database) -> None:
    created = _new(database, "t1")

    assert created.status is TaskStatus.QUEUED and created.attempts == 0
    assert created.result_files == [] and created.result_data == {} and created.error is None
    assert _get(database, "t1") == created
    assert task_store.get_task(database, "unknown", None) is None


def test_tasks_are_listed_newest_first_a_page_at_a_time(database: Database) -> None:
    for i in range(5):
        _new(database, f"t{i}")

    assert [t.uid for t in task_store.list_tasks(database, DEFAULT_OWNER, offset=0, limit=2)[1]] == ["t4", "t3"]
    total, last = task_store.list_tasks(database, DEFAULT_OWNER, offset=4, limit=10)
    assert total == 5 and [t.uid for t in last] == ["t0"]
    assert task_store.list_tasks(database, DEFAULT_OWNER, offset=10, limit=10) == (5, [])


def test_a_task_runs_then_ends_once(database: Database) -> None:
    _new(database, "t1")

    started = task_store.start_attempt(database, "t1", "worker-a")
    assert started is not None and started.status is TaskStatus.PROCESSING
    assert started.attempts == 1
    # delivered again while processing (a lease that ran out): another attempt, counted
    again = task_store.start_attempt(database, "t1", "worker-b")
    assert again is not None and again.attempts == 2

    assert task_store.finish_task(database, "t1", status=TaskStatus.DONE,
                                  result_files=["results/t1/matches.png"],
                                  result_data={"matches": [{"x": 1, "y": 2}], "label": "é"})
    done = _get(database, "t1")
    assert (done.status, done.attempts, done.error) == (TaskStatus.DONE, 2, None)
    assert done.result_files == ["results/t1/matches.png"]
    assert done.result_data == {"matches": [{"x": 1, "y": 2}], "label": "é"}
    assert done.updated_at >= started.updated_at

    # ended is ended: no second end, no new attempt, no way back to the queue
    assert not task_store.finish_task(database, "t1", status=TaskStatus.ERROR, error="late")
    assert task_store.start_attempt(database, "t1", "worker-c") is None
    assert not task_store.return_to_queue(database, "t1")
    assert _get(database, "t1") == done
    assert task_store.start_attempt(database, "unknown", "worker-a") is None


def test_an_error_keeps_its_message_and_no_results(database: Database) -> None:
    _new(database, "t1")
    task_store.start_attempt(database, "t1", "worker-a")

    assert task_store.finish_task(database, "t1", status=TaskStatus.ERROR,
                                  error="template (64×64) is larger than the image (32×32)")

    failed = _get(database, "t1")
    assert failed.status is TaskStatus.ERROR
    assert failed.error == "template (64×64) is larger than the image (32×32)"
    assert failed.result_files == [] and failed.result_data == {}


def test_a_task_given_back_keeps_its_attempt_unless_the_worker_was_stopping(
    database: Database,
) -> None:
    _new(database, "t1")
    task_store.start_attempt(database, "t1", "worker-a")

    assert task_store.return_to_queue(database, "t1")
    back = _get(database, "t1")
    assert (back.status, back.attempts) == (TaskStatus.QUEUED, 1)

    task_store.start_attempt(database, "t1", "worker-b")
    assert task_store.return_to_queue(database, "t1", uncount_attempt=True)  # clean shutdown
    assert (_get(database, "t1").status, _get(database, "t1").attempts) == (TaskStatus.QUEUED, 1)

    _new(database, "t2")
    assert task_store.return_to_queue(database, "t2", uncount_attempt=True)
    assert _get(database, "t2").attempts == 0  # never below zero


def test_unfinished_since_lists_the_unfinished_oldest_first(database: Database) -> None:
    for uid in ("queued", "processing", "done"):
        _new(database, uid)
    task_store.start_attempt(database, "processing", "w")
    task_store.start_attempt(database, "done", "w")
    task_store.finish_task(database, "done", status=TaskStatus.DONE, result_files=[],
                           result_data={})

    assert task_store.unfinished_since(database, older_than_s=3600) == []
    assert [t.uid for t in task_store.unfinished_since(database, older_than_s=0)] == [
        "queued", "processing"]
    assert [t.uid for t in task_store.unfinished_since(database, older_than_s=0, limit=1)] == [
        "queued"]


def _three_tasks(database: Database) -> None:
    _new(database, "a")
    _new(database, "b", tool="feature")
    _new(database, "c", tool="feature")
    task_store.start_attempt(database, "b", "w")
    task_store.start_attempt(database, "c", "w")
    task_store.finish_task(database, "c", status=TaskStatus.ERROR, error="x")


def test_counts_by_status(database: Database) -> None:
    _three_tasks(database)
    assert task_store.count_by_status(database) == {
        "queued": 1, "processing": 1, "done": 0, "error": 1}


def test_counts_by_tool_and_status(database: Database) -> None:
    _three_tasks(database)
    assert task_store.count_by_tool_and_status(database, DEFAULT_OWNER) == {
        ("template", "queued"): 1, ("feature", "processing"): 1, ("feature", "error"): 1}


def test_the_duration_histogram_counts_finished_attempts(database: Database) -> None:
    _new(database, "a")
    _new(database, "b")
    task_store.start_attempt(database, "a", "w")
    task_store.finish_task(database, "a", status=TaskStatus.DONE, result_files=[],
                           result_data={})
    task_store.start_attempt(database, "b", "w")  # still running: not counted

    histogram = task_store.duration_histogram(database, DEFAULT_OWNER, (0.0, 3600.0))

    assert set(histogram) == {"template"}
    cumulative, total, seconds = histogram["template"]
    assert cumulative[1] == total == 1  # within the hour
    assert cumulative[0] in (0, 1) and 0.0 <= seconds < 3600.0
