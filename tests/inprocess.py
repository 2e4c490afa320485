"""The fast layer's fixture: the whole service in the test's own process.

``inprocess`` is the API (FastAPI's ``TestClient`` over ``create_app``) on a
temporary data directory (SQLite + local files), plus a worker that runs tasks in
this process (``Worker(..., in_process=True)``, rq's ``SimpleWorker``). A test
submits over HTTP, calls :meth:`InProcessService.drive` (``work(burst=True)``: every
queued task, then back), and reads the result over HTTP: no server, no child
process, no polling.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from aerovision.api.app import create_app
from aerovision.api.services import Services
from aerovision.config import Settings
from aerovision.jobs.worker import Worker

with warnings.catch_warnings():
    # starlette 1.x would rather have the httpx2 package; the httpx the project declares
    # (which its client and notifier use) still drives the TestClient
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@dataclass
class InProcessService:
    """The API client, the services it runs on and an in-process worker."""

    client: TestClient
    services: Services
    worker: Worker

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def drive(self, *, max_jobs: int | None = None) -> int:
        """Run every task the queue holds now (``Worker.work(burst=True)``); returns
        how many uids the worker handled."""
        return self.worker.work(burst=True, max_jobs=max_jobs)

    def submit(
        self,
        tool: str,
        files: Mapping[str, tuple[str, bytes]],
        data: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v1/match/<tool>`` with ``files`` ({field: (filename, bytes)});
        returns the queued task (asserting the 201)."""
        response = self.client.post(
            f"/api/v1/match/{tool}",
            files={name: (filename, body) for name, (filename, body) in files.items()},
            data=dict(data or {}),
        )
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    def download(self, key: str) -> Any:
        """``GET /<key>`` while the worker runs: a picture made on request is asked for
        by the download, which waits for a worker to write it (the worker is driven
        here until the answer comes)."""
        answer: list[Any] = []
        thread = threading.Thread(target=lambda: answer.append(self.client.get(f"/{key}")))
        thread.start()
        while thread.is_alive():
            self.drive()
            thread.join(0.01)
        return answer[0]

    def task(self, uid: str) -> dict[str, Any]:
        """``GET /api/v1/tasks/{uid}`` (asserting the 200)."""
        response = self.client.get(f"/api/v1/tasks/{uid}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task


@pytest.fixture
def inprocess(services: Services) -> Iterator[InProcessService]:
    """The API and an in-process worker over ``services`` (a fresh SQLite data dir)."""
    worker = Worker(
        services.settings, services.db, services.queue, services.store, in_process=True
    )
    with TestClient(create_app(services.settings, services)) as client:
        yield InProcessService(client, services, worker)
