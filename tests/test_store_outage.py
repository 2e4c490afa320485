"""A file store that stops taking writes mid-run: /health says so, submissions get a
JSON 503, the task in flight still gets its verdict (it needs no write), and the
files it owes (thumbnails, pictures) are written once the store is back, instead of
being lost or named with a server path.

How the store is made to refuse writes, as root (the tests run as root, so chmod
stops nothing):

- local store (embedded): ``chattr +i`` on the store's area folders (uploads/,
  thumbnails/, results/, cache/): nobody, root included, may add or remove an entry
  in an immutable folder, while the files in it stay readable; ``chattr -i`` mends
  it. Where chattr does not work (tmpfs, some overlay filesystems), each area
  folder is moved aside and a regular file put in its place (writes fail with
  ENOTDIR; reads of inputs fail too, which the task in flight has done already).
- S3 (scaled): the service reaches moto through a TCP proxy of the test's that
  can cut every connection and refuse new ones (an S3 endpoint going away); the
  bucket and its objects are untouched and reachable again once the proxy mends.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aerovision.store.files import AREAS
from tests.backends import MotoServer
from tests.images import encode, scene_with_patch
from tests.server import ServeProcess, children_of, free_port
from tests.test_runtime import _slow_inputs


class FrozenFolders:
    """The local store's area folders refusing new entries (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chattr = self._chattr_works(root.parent)

    @staticmethod
    def _chattr_works(where: Path) -> bool:
        probe = where / "chattr-probe"
        probe.mkdir(exist_ok=True)
        try:
            subprocess.run(["chattr", "+i", str(probe)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return False
        try:
            (probe / "x").write_bytes(b"x")
            return False
        except OSError:
            return True
        finally:
            subprocess.run(["chattr", "-i", str(probe)], check=False, capture_output=True)

    def on(self) -> None:
        for area in AREAS:
            folder = self.root / area
            if self.chattr:
                subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
            else:
                folder.rename(self.root / f"{area}.aside")
                folder.write_bytes(b"not a folder")

    def off(self) -> None:
        for area in AREAS:
            folder = self.root / area
            if self.chattr:
                subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
            elif (self.root / f"{area}.aside").exists():
                folder.unlink(missing_ok=True)
                (self.root / f"{area}.aside").rename(folder)


class CuttableProxy:
    """A TCP proxy to 127.0.0.1:``target`` that can cut every connection and refuse new
    ones, then mend (see the module docstring)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.delivered = 0  # bytes relayed from the store to the service
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink, count in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(source, sink, count), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if count:
                    with self._lock:
                        self.delivered += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for end in self._open:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
            self._open.clear()

    def mend(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """``check()`` until it gives something other than None or False (a 503 response
    is falsy, so truth is not the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None and found is not False:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _submit(server: ServeProcess, image: bytes, template: bytes) -> requests.Response:
    return requests.post(
        server.url("/api/v1/match/template"),
        files={"image": ("scene.png", image), "template": ("part.png", template)},
        timeout=120,
    )


Outage = tuple[dict[str, str], Callable[[], None], Callable[[], None], Callable[[], int] | None]
"""``(env, refuse, mend, relayed)``: the backend's environment, how to make its store
refuse writes and take them again, and how many bytes the store has sent so far (S3
through the proxy; None for the local store, whose reads the outage leaves alone)."""


def _wait_for_matching(server: ServeProcess, relayed: Callable[[], int] | None, inputs: int) -> None:
    """Until the worker's process is busy with the task and has read its ``inputs``
    bytes: what it writes next (after its verdict) is its thumbnails."""
    before = relayed() if relayed else 0
    _wait_for("the task to run", lambda: any(
        children_of(worker, busy=True) for worker in server.worker_pids()))
    if relayed:  # S3: the inputs come through the proxy, however long that takes
        _wait_for("the inputs read", lambda: relayed() - before >= inputs, timeout=120)
    time.sleep(0.3)  # past decoding them


@pytest.fixture
def outage(
    backend: str, fresh_backend: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Outage]:
    """See :data:`Outage`."""
    data_dir = tmp_path / "data"
    if backend == "embedded":
        frozen = FrozenFolders(data_dir)
        try:
            yield fresh_backend, frozen.on, frozen.off, None
        finally:
            frozen.off()
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    proxy = CuttableProxy(moto.port)
    try:
        env = {**fresh_backend, "AEROVISION_S3_ENDPOINT_URL": proxy.url}
        yield env, proxy.cut, proxy.mend, lambda: proxy.delivered
    finally:
        proxy.close()


def test_a_store_that_refuses_writes_is_a_service_fault_and_the_files_come_later(
    tmp_path: Path, backend: str,
    outage: Outage,
) -> None:
    env, refuse, mend, relayed = outage
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir, workers=1, env=env).start()
    try:
        healthy = requests.get(server.url("/health"), timeout=10).json()
        assert healthy["files"] == "ok" and healthy["status"] == "ok"
        inputs = _slow_inputs()
        response = _submit(server, *inputs)
        assert response.status_code == 201, response.text
        uid = response.json()["uid"]
        _wait_for_matching(server, relayed, sum(map(len, inputs)))
        refuse()

        def degraded() -> requests.Response | None:
            answer = requests.get(server.url("/health"), timeout=30)
            return answer if answer.json()["files"] != "ok" else None

        health: requests.Response = _wait_for("/health to notice", degraded)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "degraded"
        assert body["files"].startswith("error: the file store refused a write (")
        assert str(data_dir) not in health.text and "127.0.0.1" not in health.text

        scene, icon, _ = scene_with_patch(1)
        refused = _submit(server, encode(scene), encode(icon))
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/json"
        assert int(refused.headers["retry-after"]) > 0
        detail = refused.json()["detail"]
        assert detail.startswith("the file store refused a write (")
        assert str(data_dir) not in detail and "127.0.0.1" not in detail
        if backend == "scaled":  # S3 gone: reading a file is a 503 too, not a 500
            download = requests.get(server.url("/" + response.json()["input_files"][0]), timeout=120)
            assert download.status_code == 503, download.text
            assert download.json()["detail"].startswith("the file store could not read a file (S3")
            assert "127.0.0.1" not in download.text

        # the verdict needs no write: the task is done; its thumbnails wait for the store
        task = server.wait_task(uid, timeout=120)
        assert task["status"] == "done" and task["error"] is None, task
        retry = re.compile(rf"task {uid}: its files were not written \(the file store refused "
                           r"a write .*\); trying again")
        _wait_for("the files given back", lambda: retry.search(server.log()), timeout=90)
        time.sleep(3)  # the worker waits for the store instead of using up attempts
        assert "writing its files, attempt" not in server.log()

        mend()
        for key in task["thumbnails"] + task["result_files"]:  # each waits for its file
            answer = requests.get(server.url(f"/{key}"), timeout=120)
            assert answer.status_code == 200, (key, answer.text)
            assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(re.findall(rf"task {uid} done", server.log())) == 1
        assert requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=5).json() == task
        _wait_for("/health to recover", lambda: requests.get(
            server.url("/health"), timeout=30
        ).json()["files"] == "ok")
        again = _submit(server, encode(scene), encode(icon))
        assert again.status_code == 201, again.text
        assert server.wait_task(again.json()["uid"])["status"] == "done"
    finally:
        mend()
        server.stop(signal.SIGTERM)


def test_files_never_written_name_the_cause_without_paths(
    tmp_path: Path, outage: Outage
) -> None:
    """With one attempt allowed, a store that refuses the files leaves the task done,
    its result saying why its files are missing, and nothing of the server's layout."""
    env, refuse, mend, relayed = outage
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir, workers=1, env={**env, "AEROVISION_MAX_ATTEMPTS": "1"}).start()
    try:
        inputs = _slow_inputs()
        response = _submit(server, *inputs)
        assert response.status_code == 201, response.text
        uid = response.json()["uid"]
        _wait_for_matching(server, relayed, sum(map(len, inputs)))
        refuse()
        task = server.wait_task(uid, timeout=120)
        if task["status"] == "error":  # the cut came while it still read its inputs (S3)
            assert re.fullmatch(
                r"the file store (refused a write|could not read a file) \(.+\); gave up after "
                r"1 attempts", task["error"]), task["error"]
            assert str(data_dir) not in task["error"] and "/" not in task["error"].split("(")[1]
            return
        assert task["error"] is None

        def given_up() -> str | None:
            data = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=5).json()
            error: str | None = data["result_data"].get("files_error")
            return error

        error = _wait_for("the files given up", given_up, timeout=90)
        assert re.fullmatch(
            r"the file store refused a write \(.+\); gave up after 1 attempts", error
        ), error
        assert str(data_dir) not in error and "/" not in error.split("(")[1]
    finally:
        mend()
        server.stop(signal.SIGTERM)
