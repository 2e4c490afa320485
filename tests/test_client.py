"""aerovision.client (sync and async) against a real `aerovision serve`."""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aerovision import client as avc
from aerovision.tools import TOOLS
from tests.images import encode, photo, scene_with_degraded_patch, scene_with_patch
from tests.receiver import Receiver
from tests.server import ServeProcess, free_port

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHAIN_STEPS = [
    {"tool": "template", "params": {"threshold": 0.95}},
    {"tool": "template", "params": {"threshold": 0.7}},
]


# -- helpers shared with tests/test_cli.py


def box_cloud(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on the faces of a 2 × 1 × 0.5 box centred at 0, and the faces' normals."""
    rng = np.random.default_rng(seed)
    dims = np.array([2.0, 1.0, 0.5])
    points, normals = [], []
    for axis in range(3):
        for sign in (-1, 1):
            face = (rng.random((n // 6, 3)) - 0.5) * dims
            face[:, axis] = sign * dims[axis] / 2
            normal = np.zeros((n // 6, 3))
            normal[:, axis] = sign
            points.append(face)
            normals.append(normal)
    return np.vstack(points), np.vstack(normals)


def ply_bytes(points: np.ndarray, normals: np.ndarray) -> bytes:
    """An ASCII PLY with x y z nx ny nz per vertex."""
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "end_header\n"
    )
    rows = "".join(
        " ".join(f"{v:.6f}" for v in (*p, *q)) + "\n" for p, q in zip(points, normals, strict=True)
    )
    return (header + rows).encode()


SURFACE_SHIFT = (0.5, -0.3, 0.2)


def surface_pair() -> tuple[bytes, bytes]:
    """A model (a box) and a scene holding it moved by SURFACE_SHIFT.

    Whichever of the box's symmetric poses is found, its translation is SURFACE_SHIFT.
    """
    points, normals = box_cloud()
    return ply_bytes(points, normals), ply_bytes(points + SURFACE_SHIFT, normals)


def truncated_png(data: bytes) -> bytes:
    """A PNG cut after its first chunks: the header check passes, decoding fails."""
    return data[:80]


def has_route(server: ServeProcess, path: str) -> bool:
    with avc.Client(server.base_url) as client:
        response = client._http.get("/openapi.json")
    return path in response.json()["paths"]


def skip_unless_route(server: ServeProcess, tool: str) -> None:
    if not has_route(server, f"/api/v1/match/{tool}"):
        pytest.skip(f"this server does not offer /api/v1/match/{tool} yet")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("client") / "data", workers=2,
                        env={"AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("client-files")
    scene, icon, _ = scene_with_patch(2, size=(240, 320), patch=32, seed=3)
    faint, patch, _ = scene_with_degraded_patch()
    model, surface_scene = surface_pair()
    made = {
        "scene.png": encode(scene), "icon.png": encode(icon),
        "faint.png": encode(faint), "patch.png": encode(patch),
        "crop.png": encode(faint[120:320, 200:440]),
        "broken.png": truncated_png(encode(scene)),
        "model.ply": model, "scene.ply": surface_scene,
        "coffee.png": encode(photo("coffee")),
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return {name.split(".")[0] + ("_ply" if name.endswith(".ply") else ""): folder / name
            for name in made}


ADMIN_LOGIN = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
ACCOUNTS_ENV = {
    "AEROVISION_AUTH": "accounts", "AEROVISION_ADMIN_LOGIN": ADMIN_LOGIN,
    "AEROVISION_ADMIN_PASSWORD": ADMIN_PASSWORD,
}
"""A server in accounts mode, its first admin made at start-up."""


def start_accounts_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> ServeProcess:
    """A real `aerovision serve` in accounts mode (1 worker); the caller stops it."""
    return ServeProcess(tmp_path_factory.mktemp(name) / "data", workers=1,
                        env=ACCOUNTS_ENV).start()


def unique_login(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
def client(server: ServeProcess) -> Iterator[avc.Client]:
    with avc.Client(server.base_url, timeout=10) as c:
        yield c


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _assert_template_done(task: avc.Task) -> None:
    assert task.status == "done", task.error
    assert task.tool == "template"
    assert task.result_data["filtered_matches"] == 2
    assert task.result_files == [
        f"results/{task.uid}/matches.png", f"results/{task.uid}/heatmap.png"
    ]


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_accounts_server(tmp_path_factory, "client-accounts")
    yield proc
    proc.stop()


@pytest.fixture
def admin(accounts_server: ServeProcess) -> Iterator[avc.Client]:
    with avc.Client(accounts_server.base_url, login=ADMIN_LOGIN, password=ADMIN_PASSWORD,
                    timeout=10) as c:
        yield c


# -- templates, sync and async, with downloads


def test_template_round_trip_with_download(
    client: avc.Client, files: dict[str, Path], tmp_path: Path
) -> None:
    task = client.match_template(files["scene"], files["icon"], threshold=0.9, max_results=5)
    assert isinstance(task, avc.Task)
    assert task.status in ("queued", "processing")
    assert task.params == {
        "method": "TM_CCOEFF_NORMED", "threshold": 0.9, "max_results": 5, "use_grayscale": True,
    }
    assert task.input_files == [f"uploads/{task.uid}/scene.png", f"uploads/{task.uid}/icon.png"]
    seen: list[str] = []
    done = client.wait(task.uid, timeout=60, on_update=lambda t: seen.append(t.status))
    _assert_template_done(done)
    assert seen[-1] == "done" and done.finished
    assert done.created_at is not None and done.updated_at >= done.created_at  # type: ignore[operator]

    saved = client.download(done, tmp_path / "out", inputs=True)
    assert saved == [
        tmp_path / "out" / "matches.png", tmp_path / "out" / "heatmap.png",
        tmp_path / "out" / "inputs" / "scene.png", tmp_path / "out" / "inputs" / "icon.png",
    ]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in saved)
    assert saved[2].read_bytes() == files["scene"].read_bytes()
    assert not list((tmp_path / "out").rglob("*.part"))


def test_inputs_as_bytes_file_objects_and_named_pairs(
    client: avc.Client, files: dict[str, Path]
) -> None:
    scene, icon = files["scene"].read_bytes(), files["icon"].read_bytes()
    with files["icon"].open("rb") as icon_file:
        task = client.match_template(scene, icon_file, use_grayscale=False)
    assert task.input_files == [f"uploads/{task.uid}/image.png", f"uploads/{task.uid}/icon.png"]
    assert task.params["use_grayscale"] is False
    named = client.match_template(("shot.png", io.BytesIO(scene)), ("i.png", icon))
    assert named.input_files == [f"uploads/{named.uid}/shot.png", f"uploads/{named.uid}/i.png"]
    for uid in (task.uid, named.uid):
        _assert_template_done(client.wait(uid, timeout=60))
    with pytest.raises(TypeError, match="binary mode"), files["icon"].open("r") as text:
        client.match_template(scene, text)  # type: ignore[arg-type]


def test_template_round_trip_async(server: ServeProcess, files: dict[str, Path],
                                   tmp_path: Path) -> None:
    async def scenario() -> tuple[avc.Task, list[Path]]:
        async with avc.AsyncClient(server.base_url) as client:
            task = await client.match_template(files["scene"], files["icon"], threshold=0.9)
            done = await client.wait(task, timeout=60)
            return done, await client.download(done.uid, tmp_path)

    done, saved = run(scenario())
    _assert_template_done(done)
    assert [p.name for p in saved] == ["matches.png", "heatmap.png"]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in saved)


# -- chains


def _assert_chain_found_at_step_2(task: avc.Task, saved: list[Path], dest: Path) -> None:
    assert task.status == "done", task.error
    assert task.tool == "chain"
    assert task.result_data["chain_result"] == "found"
    assert task.result_data["completed_step"] == 2
    assert dest / "step1" / "matches.png" in saved
    assert dest / "step2" / "heatmap.png" in saved
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in saved)


def test_chain_round_trip(client: avc.Client, files: dict[str, Path], tmp_path: Path) -> None:
    done = client.wait(client.match_chain(files["faint"], files["patch"], CHAIN_STEPS), timeout=60)
    _assert_chain_found_at_step_2(done, client.download(done, tmp_path), tmp_path)


def test_chain_round_trip_async(server: ServeProcess, files: dict[str, Path],
                                tmp_path: Path) -> None:
    async def scenario() -> tuple[avc.Task, list[Path]]:
        async with avc.AsyncClient(server.base_url) as client:
            steps_text = '[{"tool": "template", "params": {"threshold": 0.95}},' \
                         ' {"tool": "template", "params": {"threshold": 0.7}}]'
            task = await client.match_chain(files["faint"], files["patch"], steps_text)
            done = await client.wait(task, timeout=60)
            return done, await client.download(done, tmp_path)

    done, saved = run(scenario())
    _assert_chain_found_at_step_2(done, saved, tmp_path)


# -- feature and surface (run once the server offers them)


def test_feature_round_trip(server: ServeProcess, client: avc.Client, files: dict[str, Path],
                            tmp_path: Path) -> None:
    skip_unless_route(server, "feature")
    task = client.match_feature(files["crop"], files["faint"], detector="ORB", max_matches=50)
    assert task.params["detector"] == "ORB"
    done = client.wait(task, timeout=60)
    assert done.status == "done", done.error
    assert done.result_data["good_matches"] > 10
    saved = client.download(done, tmp_path)
    assert [p.name for p in saved] == ["matches.png"]

    async def scenario() -> avc.Task:
        async with avc.AsyncClient(server.base_url) as ac:
            return await ac.wait(await ac.match_feature(files["crop"], files["faint"]), timeout=60)

    assert run(scenario()).status == "done"


def test_surface_round_trip(server: ServeProcess, client: avc.Client, files: dict[str, Path],
                            tmp_path: Path) -> None:
    skip_unless_route(server, "surface")
    task = client.match_surface(files["model_ply"], files["scene_ply"], num_angles=12)
    assert task.input_files[0].endswith("model.ply")
    done = client.wait(task, timeout=120)
    assert done.status == "done", done.error
    assert done.result_data["poses_found"] >= 1
    translation = [row[3] for row in done.result_data["pose"][:3]]
    np.testing.assert_allclose(translation, SURFACE_SHIFT, atol=0.05)
    client.download(done, tmp_path)

    async def scenario() -> avc.Task:
        async with avc.AsyncClient(server.base_url) as ac:
            model, scene = surface_pair()
            return await ac.wait(await ac.match_surface(model, scene, use_icp=False), timeout=120)

    assert run(scenario()).status == "done"


# -- the generic match: any tool the server runs, by its input names


def test_inspect_round_trip(client: avc.Client, files: dict[str, Path], tmp_path: Path) -> None:
    task = client.match("inspect", image=files["coffee"], bins=16)
    assert task.tool == "inspect" and task.params == {"bins": 16}
    assert task.input_files == [f"uploads/{task.uid}/coffee.png"]
    done = client.wait(task, timeout=60)
    assert done.status == "done", done.error
    height, width = photo("coffee").shape[:2]
    assert (done.result_data["width"], done.result_data["height"]) == (width, height) == (600, 400)
    assert done.result_data["channels"] == 3
    assert [len(c["histogram"]) for c in done.result_data["channel_stats"]] == [16, 16, 16]
    assert [p.name for p in client.download(done, tmp_path)] == ["histogram.png"]

    async def scenario() -> avc.Task:
        async with avc.AsyncClient(client.base_url) as ac:
            return await ac.wait(await ac.match("inspect", files["coffee"].read_bytes()), 60)

    by_position = run(scenario())
    assert by_position.status == "done" and by_position.result_data["width"] == 600
    assert by_position.input_files == [f"uploads/{by_position.uid}/image.png"]


def test_generic_match_of_template_is_match_template(
    client: avc.Client, files: dict[str, Path]
) -> None:
    shortcut = client.match_template(files["scene"], files["icon"], threshold=0.9)
    generic = client.match("template", image=files["scene"], template=files["icon"],
                           threshold=0.9)
    assert (generic.tool, generic.params) == (shortcut.tool, shortcut.params)
    assert [Path(f).name for f in generic.input_files] == [
        Path(f).name for f in shortcut.input_files
    ] == ["scene.png", "icon.png"]
    first, second = client.wait(shortcut, timeout=60), client.wait(generic, timeout=60)
    _assert_template_done(second)
    def untimed(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "timings"}

    assert untimed(second.result_data) == untimed(first.result_data)
    chain = client.match("chain", image=files["faint"], template=files["patch"],
                         steps=CHAIN_STEPS)
    assert client.wait(chain, timeout=60).result_data["completed_step"] == 2


def test_generic_match_refuses_unknown_tools_and_missing_inputs(
    client: avc.Client, files: dict[str, Path]
) -> None:
    with pytest.raises(ValueError, match="unknown tool 'stitch': this server runs template, "
                                         "feature, surface, inspect, search, chain") as caught:
        client.match("stitch", image=files["scene"])
    assert isinstance(caught.value, avc.UnknownTool) and caught.value.known == list(TOOLS)
    assert isinstance(caught.value, avc.AeroVisionError)
    with pytest.raises(ValueError, match="the template tool needs its template input"):
        client.match("template", image=files["scene"], threshold=0.9)
    with pytest.raises(ValueError, match="the inspect tool needs its image input"):
        client.match("inspect", bins=16)

    async def scenario() -> None:
        async with avc.AsyncClient(client.base_url) as ac:
            await ac.match("feature", query_image=files["crop"])

    with pytest.raises(ValueError, match="needs its train_image input"):
        run(scenario())


def test_tools_are_asked_once_per_client(server: ServeProcess, files: dict[str, Path]) -> None:
    asked: list[str] = []
    with avc.Client(server.base_url) as client:
        client._http.event_hooks["request"].append(lambda r: asked.append(r.url.path))
        client.match("inspect", image=files["coffee"])
        client.match_template(files["scene"], files["icon"])
        assert [t.name for t in client.tools()] == list(TOOLS)
    assert asked.count("/api/v1/tools") == 1
    assert asked[-2:] == ["/api/v1/match/inspect", "/api/v1/match/template"]


# -- errors


def test_422_carries_the_servers_details(client: avc.Client, files: dict[str, Path]) -> None:
    with pytest.raises(avc.InvalidRequest) as caught:
        client.match_template(files["scene"], files["icon"], threshold=3)
    exc = caught.value
    assert exc.status_code == 422
    assert exc.errors[0]["loc"] == ["body", "threshold"]
    assert exc.errors[0]["input"] == "3"
    assert exc.message == f"threshold: {exc.errors[0]['msg']}"
    assert "less than or equal to 1" in str(exc)

    with pytest.raises(avc.InvalidRequest, match="image: not a PNG, JPEG, BMP or TIFF image"):
        client.match_template(b"\x00 not an image at all", files["icon"])
    with pytest.raises(avc.InvalidRequest, match="step 1"):
        client.match_chain(files["scene"], files["icon"], [{"tool": "template",
                                                             "params": {"threshold": 9}}])
    with pytest.raises(avc.InvalidRequest, match="bogus"):
        client.match_template(files["scene"], files["icon"], bogus=1)


def test_404_carries_the_servers_message(client: avc.Client, tmp_path: Path) -> None:
    with pytest.raises(avc.NotFound) as caught:
        client.get_task("no-such-task")
    assert caught.value.status_code == 404
    assert caught.value.message == "Task not found"
    with pytest.raises(avc.NotFound, match="Task not found"):
        client.wait("no-such-task")
    with pytest.raises(avc.NotFound, match="Webhook not found"):
        client.delete_webhook("wh_missing")
    with pytest.raises(avc.NotFound, match="Webhook not found"):
        client.webhook_deliveries("wh_missing")


def test_404_async(server: ServeProcess) -> None:
    async def scenario() -> None:
        async with avc.AsyncClient(server.base_url) as client:
            await client.get_task("no-such-task")

    with pytest.raises(avc.NotFound, match="Task not found"):
        run(scenario())


def test_wait_raises_with_the_tasks_error(client: avc.Client, files: dict[str, Path]) -> None:
    task = client.match_template(files["broken"], files["icon"])
    with pytest.raises(avc.TaskFailed) as caught:
        client.wait(task, timeout=60)
    failed = caught.value.task
    assert failed.status == "error"
    assert failed.error and "could not decode" in failed.error
    assert str(caught.value) == failed.error
    assert client.wait(task, timeout=60, raise_on_error=False).status == "error"


def test_wait_raises_with_the_tasks_error_async(server: ServeProcess,
                                                files: dict[str, Path]) -> None:
    async def scenario() -> None:
        async with avc.AsyncClient(server.base_url) as client:
            await client.wait(await client.match_template(files["broken"], files["icon"]), 60)

    with pytest.raises(avc.TaskFailed, match="could not decode"):
        run(scenario())


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """No workers: a task stays queued for as long as a test needs."""
    proc = ServeProcess(tmp_path_factory.mktemp("idle") / "data", workers=0).start()
    yield proc
    proc.stop()


def test_wait_timeout(idle_server: ServeProcess, files: dict[str, Path]) -> None:
    with avc.Client(idle_server.base_url, timeout=10) as client:
        task = client.match_template(files["scene"], files["icon"])
        for timeout in (0, 0.3):
            with pytest.raises(avc.WaitTimeout) as caught:
                client.wait(task, timeout=timeout)
            assert isinstance(caught.value, TimeoutError)
            assert caught.value.task.uid == task.uid
            assert caught.value.task.status == "queued"


def test_unreachable_server_is_a_transport_error() -> None:
    with avc.Client(f"http://127.0.0.1:{free_port()}") as client, pytest.raises(
        avc.TransportError, match="could not talk to"
    ):
        client.list_tasks()


# -- tasks, settings, webhooks


def test_list_tasks(client: avc.Client, files: dict[str, Path]) -> None:
    newest = client.match_template(files["scene"], files["icon"])
    page = client.list_tasks(limit=2)
    assert page.total >= 1 and len(page.tasks) <= 2
    assert page.tasks[0].uid == newest.uid
    with pytest.raises(avc.InvalidRequest, match="limit"):
        client.list_tasks(limit=500)


def test_settings(client: avc.Client) -> None:
    before = client.get_settings("template")
    assert before.tool == "template"
    assert set(before.params) == set(TOOLS["template"].params.model_fields)
    try:
        after = client.update_settings("template", threshold=0.85, use_grayscale=False)
        assert after.params == {**before.params, "threshold": 0.85, "use_grayscale": False}
        assert client.get_settings("template") == after
        with pytest.raises(avc.InvalidRequest, match="threshold"):
            client.update_settings("template", threshold=0)
    finally:
        client.update_settings("template", **before.params)

    async def scenario() -> avc.ToolSettings:
        async with avc.AsyncClient(client.base_url) as ac:
            return await ac.update_settings("feature", **(await ac.get_settings("feature")).params)

    assert run(scenario()).tool == "feature"


def test_webhooks(client: avc.Client) -> None:
    hook = client.add_webhook("http://127.0.0.1:9/hook", secret="s3cret")
    try:
        assert hook.id.startswith("wh_") and hook.url == "http://127.0.0.1:9/hook"
        assert hook in client.list_webhooks()
        assert isinstance(client.webhook_deliveries(hook.id), list)
        with pytest.raises(avc.InvalidRequest, match="url must be an http"):
            client.add_webhook("ftp://example.com")
    finally:
        client.delete_webhook(hook.id)
    assert hook not in client.list_webhooks()

    async def scenario() -> list[avc.Webhook]:
        async with avc.AsyncClient(client.base_url) as ac:
            added = await ac.add_webhook("http://127.0.0.1:9/other")
            listed = await ac.list_webhooks()
            await ac.delete_webhook(added.id)
            return [h for h in listed if h.id == added.id]

    assert len(run(scenario())) == 1


# -- batch (the CLI's --batch builds on it)


def test_match_many_reports_every_input(server: ServeProcess, files: dict[str, Path],
                                        tmp_path: Path) -> None:
    inputs: list[avc.FileInput] = [files["scene"], files["broken"], b"junk", files["scene"]]

    async def scenario() -> list[avc.BatchResult]:
        async with avc.AsyncClient(server.base_url) as client:
            return [r async for r in client.match_many(
                "template", inputs, files["icon"], concurrency=2, download_dir=tmp_path,
                threshold=0.9,
            )]

    results = sorted(run(scenario()), key=lambda r: r.input)
    outcomes = sorted((r.input, r.ok) for r in results)
    assert outcomes == sorted([
        (str(files["scene"]), True), (str(files["scene"]), True),
        (str(files["broken"]), False), ("input[2]", False),
    ])
    junk = next(r for r in results if r.input == "input[2]")
    assert junk.task is None and junk.to_json()["status_code"] == 422
    broken = next(r for r in results if r.input == str(files["broken"]))
    assert broken.task is not None and "could not decode" in (broken.error or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene", "scene-2"]
    assert (tmp_path / "scene-2" / "heatmap.png").exists()


def test_match_many_over_a_one_input_tool(server: ServeProcess, files: dict[str, Path]) -> None:
    inputs: list[avc.FileInput] = [files["coffee"], files["scene"], files["broken"]]

    async def scenario() -> list[avc.BatchResult]:
        async with avc.AsyncClient(server.base_url) as client:
            with pytest.raises(ValueError, match="one input: there is no other"):
                await anext(client.match_many("inspect", inputs, files["icon"]))
            return [r async for r in client.match_many("inspect", inputs, bins=8)]

    results = {Path(r.input).name: r for r in run(scenario())}
    assert {name: r.ok for name, r in results.items()} == {
        "coffee.png": True, "scene.png": True, "broken.png": False,
    }
    coffee = results["coffee.png"].task
    assert coffee is not None and coffee.params == {"bins": 8}
    assert (coffee.result_data["width"], coffee.result_data["height"]) == (600, 400)


# -- the module itself


def test_client_imports_nothing_else_from_aerovision() -> None:
    """At module level: the only import of AeroVision is ply_normals' own, inside it."""
    tree = ast.parse(Path(avc.__file__).read_text())
    top = {
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    } | {node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not [name for name in top if name.startswith("aerovision")]
    inner = [
        (fn.name, node.module) for fn in tree.body if isinstance(fn, ast.FunctionDef)
        for node in ast.walk(fn) if isinstance(node, ast.ImportFrom)
    ]
    assert inner == [("ply_normals", "aerovision.engine.normals")]


def test_client_module_copied_on_its_own_works(tmp_path: Path) -> None:
    (tmp_path / "avclient.py").write_text(Path(avc.__file__).read_text())
    script = f"""
import sys
sys.modules["aerovision"] = None  # as in a project that copied only this file
sys.path.insert(0, {str(tmp_path)!r})
import avclient
with avclient.Client("http://127.0.0.1:9") as av:
    try:
        av.get_task("x")
    except avclient.TransportError:
        print("transport error")
try:
    avclient.ply_normals("in.ply", "out.ply")
except ImportError:
    print("import error")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "transport error\nimport error\n"), out.stderr


def test_tools_are_the_servers_registry(client: avc.Client) -> None:
    tools = client.tools()
    assert [t.name for t in tools] == list(TOOLS)
    for info in tools:
        tool = TOOLS[info.name]
        assert info.input_names == tool.input_names
        assert [(i.kind, i.required, i.many) for i in info.inputs] == [
            (spec.kind, spec.required, spec.many) for spec in tool.inputs
        ]
        assert info.submit == f"/api/v1/match/{tool.name}"
        assert info.result_line == tool.result_line.template
    assert {i.name: i.accept for i in tools[0].inputs}["image"][0] == ".png"


def test_api_key_is_sent_as_bearer_token() -> None:
    receiver = Receiver().start()
    try:
        url = f"http://127.0.0.1:{receiver.port}"
        # the receiver's "ok" is not a webhook: an unexpected answer
        with avc.Client(url, api_key="k-123") as client, pytest.raises(avc.AeroVisionError):
            client.add_webhook("http://example.com/x")
        (request,) = receiver.received
        assert request.headers["Authorization"] == "Bearer k-123"
    finally:
        receiver.stop()


def test_credentials_become_one_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    def sent(**kwargs: Any) -> str | None:
        return avc._headers(kwargs.pop("api_key", None), **kwargs).get("Authorization")

    basic = "Basic " + base64.b64encode(b"alice@example.com:pa:ss").decode()
    assert sent() is None
    assert sent(api_key="k") == sent(token="k") == sent(api_key="k", token="k") == "Bearer k"
    assert sent(login="alice@example.com", password="pa:ss") == basic
    monkeypatch.setenv(avc.TOKEN_ENV, "from-env")
    assert sent() == "Bearer from-env"  # nothing explicit: the environment's token
    assert sent(token="t") == "Bearer t"  # explicit arguments win
    assert sent(api_key="k") == "Bearer k"
    assert sent(login="alice@example.com", password="pa:ss") == basic
    for bad, message in [
        ({"login": "alice@example.com"}, "go together"),
        ({"password": "secret-1"}, "go together"),
        ({"login": "a:b", "password": "secret-1"}, "cannot contain ':'"),
        ({"login": "alice", "password": "secret-1", "token": "t"}, "not both"),
        ({"api_key": "k", "token": "t"}, "give one"),
    ]:
        with pytest.raises(ValueError, match=message):
            sent(**bad)
    with pytest.raises(ValueError, match="go together"):
        avc.AsyncClient("http://127.0.0.1:9", login="alice")


def test_permissions_as_mapping_or_strings() -> None:
    expected = {"tasks": ["view", "creation"], "analyze": ["creation"]}
    assert avc.permissions_json(expected) == expected
    assert avc.permissions_json(
        ["tasks:view", "tasks:creation", "analyze:creation", "tasks:view"]
    ) == expected
    assert avc.permissions_json(["tasks:view,creation", "analyze:creation"]) == expected
    assert avc.permissions_json("tasks:view") == {"tasks": ["view"]}
    assert avc.permissions_json({"tasks": "view"}) == {"tasks": ["view"]}
    for bad in ("tasks", "tasks:", ":view"):
        with pytest.raises(ValueError, match="is not RESOURCE:ACTION"):
            avc.permissions_json([bad])
    call = avc._build_create_token(
        ["tasks:view"], "d", datetime(2030, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), "all"
    )
    assert call.json == {"description": "d", "expiration_time": "2030-01-01T00:00:00",
                         "permissions": {"tasks": ["view"]}, "visibility_area": "all"}
    assert avc._build_revoke_token("a/b").path == "/api/v1/tokens/a%2Fb"


# -- accounts and tokens, against a server in accounts mode


def test_accounts_tokens_and_a_task_submitted_with_a_token(
    accounts_server: ServeProcess, admin: avc.Client, files: dict[str, Path], tmp_path: Path
) -> None:
    me = admin.account()
    assert (me.login, me.account_type) == (ADMIN_LOGIN, "admin")
    login = unique_login("alice")
    alice = admin.create_account(login, "alice-password-1", description="line 3")
    assert isinstance(alice, avc.Account) and alice.created_at is not None
    assert (alice.login, alice.account_type, alice.description) == (login, "user", "line 3")
    page = admin.accounts(limit=200)
    assert alice in page.accounts and page.total >= 3  # default, the admin, alice
    assert admin.get_account(alice.account_id) == alice

    with avc.Client(accounts_server.base_url, login=login, password="alice-password-1") as av:
        assert av.account() == alice
        made = av.create_token(["tasks:view", "tasks:creation"], description="camera")
        assert made.secret and made.secret not in repr(made)
        assert made.permissions == {"tasks": ["creation", "view"]}  # sorted by the server
        assert made.visibility_area == "account" and made.expiration_time is None
        listed = av.tokens()
        assert [t.token_id for t in listed] == [made.token_id]
        assert listed[0].secret is None and listed[0].permission_names == [
            "tasks:creation", "tasks:view"
        ]

    with avc.Client(accounts_server.base_url, token=made.secret, timeout=10) as av:
        assert av.account().login == login
        done = av.wait(av.match_template(files["scene"], files["icon"], threshold=0.9),
                       timeout=60)
        _assert_template_done(done)
        assert len(av.download(done, tmp_path)) == 2
        assert av.list_tasks().tasks[0].uid == done.uid
    with pytest.raises(avc.NotFound):  # another account's task: as if missing
        admin.get_task(done.uid)

    with avc.Client(accounts_server.base_url, login=login, password="alice-password-1") as av:
        av.revoke_token(made.token_id)
        assert av.tokens() == []
        with pytest.raises(avc.NotFound, match="Token not found"):
            av.revoke_token(made.token_id)
    with avc.Client(accounts_server.base_url, token=made.secret) as av, pytest.raises(
        avc.Unauthorized, match="revoked"
    ) as caught:
        av.get_task(done.uid)
    assert caught.value.status_code == 401


def test_a_token_without_the_permission_gets_permission_denied(
    accounts_server: ServeProcess, admin: avc.Client, files: dict[str, Path]
) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    viewer = admin.create_token({"tasks": ["view"]}, expiration_time=expires)
    assert viewer.expiration_time == expires.replace(tzinfo=None, microsecond=0)
    try:
        with avc.Client(accounts_server.base_url, token=viewer.secret) as av:
            assert av.list_tasks().total >= 0  # tasks:view is enough for that
            with pytest.raises(avc.PermissionDenied) as caught:
                av.match_template(files["scene"], files["icon"])
            assert caught.value.status_code == 403
            assert caught.value.message == "token lacks permission tasks:creation"
            with pytest.raises(avc.PermissionDenied, match="tokens:creation"):
                av.create_token(["tasks:view"])
    finally:
        admin.revoke_token(viewer.token_id)
    with pytest.raises(avc.InvalidRequest, match="unknown action"):
        admin.create_token(["tasks:fly"])


def test_the_token_comes_from_the_environment(
    accounts_server: ServeProcess, admin: avc.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = admin.create_token(["tasks:view"], description="from the environment")
    try:
        assert made.secret is not None
        monkeypatch.setenv("AEROVISION_TOKEN", made.secret)
        with avc.Client(accounts_server.base_url) as av:
            assert av.account().login == ADMIN_LOGIN
            with pytest.raises(avc.PermissionDenied, match="lacks permission tokens:view"):
                av.tokens()  # the token's permissions, not the admin's password's
        with avc.Client(accounts_server.base_url, token="av_wrong") as av, pytest.raises(
            avc.Unauthorized
        ):
            av.account()  # an explicit token wins over the environment's
    finally:
        admin.revoke_token(made.token_id)


def test_account_errors(accounts_server: ServeProcess, admin: avc.Client) -> None:
    login = unique_login("bob")
    bob = admin.create_account(login, "bob-password-1", account_type="advanced_user")
    assert bob.account_type == "advanced_user"
    with pytest.raises(avc.Conflict, match="is taken") as taken:
        admin.create_account(login, "bob-password-1")
    assert taken.value.status_code == 409
    with pytest.raises(avc.InvalidRequest, match="password"):
        admin.create_account(unique_login("short"), "short")
    with avc.Client(accounts_server.base_url, login=login, password="bob-password-1") as av:
        with pytest.raises(avc.PermissionDenied, match="only an admin"):
            av.create_account(unique_login("eve"), "eve-password-1")
        assert av.create_token(["tasks:view"], visibility_area="all").visibility_area == "all"
    with avc.Client(accounts_server.base_url, login=login, password="wrong-password") as av, \
            pytest.raises(avc.Unauthorized, match="wrong login or password"):
        av.account()
    with avc.Client(accounts_server.base_url) as av, pytest.raises(
        avc.Unauthorized, match="credentials needed"
    ):
        av.list_tasks()
    with pytest.raises(avc.Conflict, match="cannot be deleted"):
        admin.delete_account(admin.account().account_id)
    admin.delete_account(bob.account_id)
    with pytest.raises(avc.NotFound, match="Account not found"):
        admin.delete_account(bob.account_id)
    with avc.Client(accounts_server.base_url, login=login, password="bob-password-1") as av, \
            pytest.raises(avc.Unauthorized):
        av.account()


def test_accounts_and_tokens_async(accounts_server: ServeProcess) -> None:
    async def scenario() -> tuple[avc.Account, avc.Token, list[str], int]:
        url = accounts_server.base_url
        async with avc.AsyncClient(url, login=ADMIN_LOGIN, password=ADMIN_PASSWORD) as ac:
            made = await ac.create_account(unique_login("carol"), "carol-password-1")
            page = await ac.accounts(limit=1)
            assert (await ac.get_account(made.account_id)) == made
        async with avc.AsyncClient(url, login=made.login, password="carol-password-1") as ac:
            token = await ac.create_token({"tasks": ["view"]}, description="async")
        async with avc.AsyncClient(url, token=token.secret) as ac:
            me = await ac.account()
        async with avc.AsyncClient(url, login=made.login, password="carol-password-1") as ac:
            listed = [t.token_id for t in await ac.tokens()]
            await ac.revoke_token(token.token_id)
        async with avc.AsyncClient(url, login=ADMIN_LOGIN, password=ADMIN_PASSWORD) as ac:
            await ac.delete_account(made.account_id)
        return me, token, listed, len(page.accounts)

    me, token, listed, shown = run(scenario())
    assert me.login.startswith("carol-") and listed == [token.token_id] and shown == 1


def test_accounts_on_a_server_without_them(client: avc.Client) -> None:
    assert client.account().login == "default"
    with pytest.raises(avc.Conflict, match="accounts are not enabled"):
        client.tokens()


def _catalog() -> dict[str, avc.ToolInfo]:
    """The client's view of this checkout's registry, as GET /api/v1/tools would give it."""
    from aerovision.api.routes.tools import describe

    return {n: avc.ToolInfo.from_json(describe(t).model_dump()) for n, t in TOOLS.items()}


def test_form_values_and_file_names() -> None:
    catalog = _catalog()
    call = avc._build_match(catalog, "template", (b"\x89PNG\r\n\x1a\nrest",), {
        "template": b"BMrest", "use_grayscale": True, "threshold": 0.5, "method": None,
    })
    assert call.data == {"use_grayscale": "true", "threshold": "0.5"}
    assert call.files is not None
    assert [(field, f[0]) for field, f in call.files] == [
        ("image", "image.png"), ("template", "template.bmp"),
    ]
    chain = avc._build_match(catalog, "chain", (), {
        "image": b"BM", "template": b"BM", "steps": CHAIN_STEPS,
    })
    assert chain.path == "/api/v1/match/chain" and chain.data is not None
    assert json.loads(chain.data["steps"]) == CHAIN_STEPS
    with pytest.raises(avc.UnknownTool, match="unknown tool 'nope': this server runs template"):
        avc._build_match(catalog, "nope", (b"", b""), {})
    with pytest.raises(ValueError, match="given both by position and by name"):
        avc._build_match(catalog, "inspect", (b"BM",), {"image": b"BM"})
    with pytest.raises(ValueError, match="takes 1 input"):
        avc._build_match(catalog, "inspect", (b"BM", b"BM"), {})
    task = avc.Task.from_json({"uid": "u", "status": "done", "result_files": ["results/x/../a"]})
    with pytest.raises(avc.AeroVisionError, match="unexpected path"):
        avc._download_plan(task, "out", inputs=False)
