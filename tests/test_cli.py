"""The client commands of `aerovision` (CliRunner) against a real `aerovision serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from aerovision import cli
from aerovision import client as avc
from aerovision.cli.match import tool_command
from aerovision.tools import TOOLS
from tests.images import encode, photo, scene_with_degraded_patch, scene_with_patch
from tests.server import ServeProcess, free_port
from tests.test_cli_registry import STITCH
from tests.test_client import PNG_SIGNATURE, has_route, surface_pair, truncated_png

STEPS = [
    {"tool": "template", "params": {"threshold": 0.95}},
    {"tool": "template", "params": {"threshold": 0.7}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("cli") / "data", workers=2,
                        env={"AEROVISION_WEBHOOK_ALLOW_PRIVATE": "1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-files")
    scene, icon, _ = scene_with_patch(2, size=(240, 320), patch=32, seed=3)
    faint, patch, _ = scene_with_degraded_patch()
    model, surface_scene = surface_pair()
    (folder / "scene.png").write_bytes(encode(scene))
    (folder / "icon.png").write_bytes(encode(icon))
    (folder / "faint.png").write_bytes(encode(faint))
    (folder / "patch.png").write_bytes(encode(patch))
    (folder / "crop.png").write_bytes(encode(faint[120:320, 200:440]))
    (folder / "broken.png").write_bytes(truncated_png(encode(scene)))
    (folder / "model.ply").write_bytes(model)
    (folder / "scene.ply").write_bytes(surface_scene)
    (folder / "steps.json").write_text(json.dumps(STEPS))
    (folder / "coffee.png").write_bytes(encode(photo("coffee")))
    return folder


@pytest.fixture
def av(server: ServeProcess) -> Any:
    """Run `aerovision ARGS...` against the module's server (AEROVISION_URL)."""
    runner = CliRunner()

    def invoke(*args: str | Path, input: str | None = None) -> Result:
        return runner.invoke(
            cli.main, [str(a) for a in args], env={"AEROVISION_URL": server.base_url},
            input=input, catch_exceptions=False,
        )

    return invoke


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


# -- match, each tool, with --wait/--download, text and --json


def test_match_template_waits_downloads_and_prints_a_table(
    av: Any, files: Path, tmp_path: Path
) -> None:
    result = av("match", "template", files / "scene.png", files / "icon.png",
                "--threshold", "0.9", "--download", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "status   done" and lines[2] == "tool     template"
    assert "threshold=0.9" in result.stdout and "filtered_matches=2" in result.stdout
    header = next(line for line in lines if line.startswith("#"))
    assert header.split() == ["#", "x", "y", "w", "h", "score"]
    assert f"saved    {tmp_path / 'heatmap.png'}" in lines
    assert (tmp_path / "matches.png").read_bytes().startswith(PNG_SIGNATURE)
    assert result.stderr == ""  # not a terminal: no progress indicator


def test_match_template_json(av: Any, files: Path) -> None:
    result = av("match", "template", files / "scene.png", files / "icon.png",
                "--no-use-grayscale", "--method", "TM_CCORR_NORMED", "--wait", "--json")
    assert result.exit_code == 0, result.output
    task = _json(result)
    assert task["status"] == "done"
    assert task["params"]["use_grayscale"] is False
    assert task["params"]["method"] == "TM_CCORR_NORMED"
    assert "downloaded" not in task


def test_match_without_wait_returns_the_queued_task(av: Any, files: Path, tmp_path: Path) -> None:
    submitted = av("match", "template", files / "scene.png", files / "icon.png", "--json")
    assert submitted.exit_code == 0, submitted.output
    uid = _json(submitted)["uid"]
    assert _json(submitted)["status"] in ("queued", "processing")
    shown = av("tasks", "show", uid, "--download", tmp_path, "--json")
    assert shown.exit_code == 0, shown.output
    task = _json(shown)
    assert task["status"] == "done"
    assert task["downloaded"] == [str(tmp_path / "matches.png"), str(tmp_path / "heatmap.png")]


def test_match_chain(av: Any, files: Path, tmp_path: Path) -> None:
    result = av("match", "chain", files / "faint.png", files / "patch.png",
                "--steps", files / "steps.json", "--download", tmp_path)
    assert result.exit_code == 0, result.output
    assert "chain_result=found" in result.stdout
    steps = result.stdout.split("\n\n")[-1].splitlines()
    assert steps[0].split() == ["step", "tool", "status", "found", "result"]
    assert steps[1].split()[:4] == ["1", "template", "done", "false"]
    assert steps[2].split()[:4] == ["2", "template", "done", "true"]
    assert (tmp_path / "step2" / "matches.png").exists()

    piped = av("match", "chain", files / "faint.png", files / "patch.png", "--steps", "-",
               "--wait", "--json", input=json.dumps(STEPS))
    assert piped.exit_code == 0, piped.output
    assert _json(piped)["result_data"]["completed_step"] == 2


def test_match_feature(server: ServeProcess, av: Any, files: Path, tmp_path: Path) -> None:
    if not has_route(server, "/api/v1/match/feature"):
        pytest.skip("this server does not offer /api/v1/match/feature yet")
    result = av("match", "feature", files / "crop.png", files / "faint.png",
                "--detector", "ORB", "--download", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert "good_matches" in _json(result)["result_data"]
    assert (tmp_path / "matches.png").exists()


def test_match_surface(server: ServeProcess, av: Any, files: Path, tmp_path: Path) -> None:
    if not has_route(server, "/api/v1/match/surface"):
        pytest.skip("this server does not offer /api/v1/match/surface yet")
    result = av("match", "surface", files / "model.ply", files / "scene.ply",
                "--num-angles", "12", "--wait", "--timeout", "120")
    assert result.exit_code == 0, result.output
    assert "poses_found=" in result.stdout


def test_match_inspect_waits_and_its_summary_is_listed(
    av: Any, files: Path, tmp_path: Path
) -> None:
    result = av("match", "inspect", files / "coffee.png", "--bins", "16", "--download", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["status   done", "tool     inspect"] and "params   bins=16" in lines
    result_row = next(line for line in lines if line.startswith("result "))
    assert "width=600 height=400 channels=3" in result_row
    assert (tmp_path / "histogram.png").read_bytes().startswith(PNG_SIGNATURE)

    task = _json(av("match", "inspect", files / "coffee.png", "--wait", "--json"))
    assert task["status"] == "done" and task["result_data"]["width"] == 600
    line = TOOLS["inspect"].result_line.render(task["result_data"])
    assert line.startswith("600×400, 3 channels, brightness ")
    listed = av("tasks", "list", "--limit", "5")
    assert listed.exit_code == 0, listed.output
    row = next(r for r in listed.stdout.splitlines() if r.startswith(task["uid"]))
    assert row.split()[1:3] == ["done", "inspect"] and row.endswith(line)


def test_match_inspect_batch_is_a_task_per_file(av: Any, tmp_path: Path) -> None:
    for name in ("coffee", "astronaut", "camera"):
        (tmp_path / f"{name}.jpg").write_bytes(encode(photo(name), ".jpg"))
    (tmp_path / "notes.txt").write_text("not an image: left out of the batch")
    result = av("match", "inspect", "--batch", tmp_path, "--bins", "8")
    assert result.exit_code == 0, result.output
    records = {Path(r["input"]).stem: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"coffee", "astronaut", "camera"}
    for name, record in records.items():
        height, width = photo(name).shape[:2]
        data = record["result_data"]
        assert record["status"] == "done" and (data["width"], data["height"]) == (width, height)
        assert record["summary"] == TOOLS["inspect"].result_line.render(data)
    assert result.stderr.startswith("3 inputs: 3 done, 0 error")


def test_a_tool_the_server_does_not_run_exits_4(server: ServeProcess, tmp_path: Path) -> None:
    base = tmp_path / "base.png"
    base.write_bytes(b"x")
    result = CliRunner().invoke(
        tool_command(STITCH), [str(base)] * 3, env={"AEROVISION_URL": server.base_url},
    )
    assert result.exit_code == cli.EXIT_NOT_FOUND == 4
    assert result.stderr.startswith("error: unknown tool 'stitch': this server runs template, ")


# -- exit codes


def test_422_exits_3_with_the_servers_message(av: Any, files: Path) -> None:
    result = av("match", "template", files / "scene.png", files / "icon.png", "--threshold", "3")
    assert result.exit_code == cli.EXIT_REFUSED == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: the server refused the request (422):",
        "  threshold: Input should be less than or equal to 1 (got '3.0')",
    ]
    as_json = av("match", "template", files / "scene.png", files / "icon.png",
                 "--threshold", "3", "--json")
    assert as_json.exit_code == 3
    error = json.loads(as_json.stderr)["error"]
    assert error["status_code"] == 422 and error["errors"][0]["loc"] == ["body", "threshold"]


def test_404_exits_4_with_the_servers_message(av: Any) -> None:
    result = av("tasks", "show", "no-such-task")
    assert result.exit_code == cli.EXIT_NOT_FOUND == 4
    assert result.stderr == "error: Task not found (404)\n"
    removed = av("webhooks", "rm", "wh_missing")
    assert removed.exit_code == 4 and "Webhook not found" in removed.stderr


def test_task_error_exits_1_with_the_tasks_error(av: Any, files: Path) -> None:
    result = av("match", "template", files / "broken.png", files / "icon.png", "--wait")
    assert result.exit_code == cli.EXIT_FAILED == 1
    assert "status   error" in result.stdout
    assert "could not decode" in result.stderr and result.stderr.startswith("error: task ")


def test_timeout_exits_6(files: Path, tmp_path: Path) -> None:
    idle = ServeProcess(tmp_path / "data", workers=0).start()  # the task stays queued
    try:
        result = CliRunner().invoke(cli.main, [
            "match", "template", str(files / "scene.png"), str(files / "icon.png"),
            "--wait", "--timeout", "0.5", "--server", idle.base_url,
        ])
    finally:
        idle.stop()
    assert result.exit_code == cli.EXIT_TIMEOUT == 6
    assert "it keeps running: aerovision tasks show" in result.stderr


def test_unreachable_server_exits_5(files: Path) -> None:
    result = CliRunner().invoke(cli.main, [
        "tasks", "list", "--server", f"http://127.0.0.1:{free_port()}",
    ])
    assert result.exit_code == cli.EXIT_UNREACHABLE == 5
    assert result.stderr.startswith("error: could not talk to http://127.0.0.1:")


def test_usage_errors_exit_2(av: Any, files: Path, tmp_path: Path) -> None:
    missing = av("match", "template", tmp_path / "nope.png", files / "icon.png")
    assert missing.exit_code == 2 and "is not a file" in missing.stderr
    bad_steps = tmp_path / "bad.json"
    bad_steps.write_text("[{")
    chain = av("match", "chain", files / "faint.png", files / "patch.png", "--steps", bad_steps)
    assert chain.exit_code == 2 and "not valid JSON" in chain.stderr
    pair = av("settings", "set", "template", "threshold")
    assert pair.exit_code == 2 and "is not KEY=VALUE" in pair.stderr
    empty = av("match", "template", "--batch", str(tmp_path / "*.png"), files / "icon.png")
    assert empty.exit_code == 2 and "no files match" in empty.stderr


# -- tasks, settings, webhooks


def test_tasks_list(av: Any, files: Path) -> None:
    av("match", "template", files / "scene.png", files / "icon.png", "--wait")
    table = av("tasks", "list", "--limit", "3")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["uid", "status", "tool", "created", "result"]
    assert "template" in lines[1] and lines[-1].startswith("1-3 of ")
    page = _json(av("tasks", "list", "--limit", "2", "--json"))
    assert len(page["tasks"]) == 2 and page["total"] >= 2


def test_settings_get_and_set(av: Any) -> None:
    before = _json(av("settings", "get", "template", "--json"))["params"]
    try:
        result = av("settings", "set", "template", "threshold=0.85", "use_grayscale=false",
                    "method=TM_CCORR_NORMED")
        assert result.exit_code == 0, result.output
        rows = dict(line.split(None, 1) for line in result.stdout.splitlines()[1:])
        assert rows == {
            "method": "TM_CCORR_NORMED", "threshold": "0.85",
            "max_results": str(before["max_results"]), "use_grayscale": "false",
        }
        shown = _json(av("settings", "get", "template", "--json"))
        assert shown["params"]["threshold"] == 0.85 and shown["params"]["use_grayscale"] is False
        refused = av("settings", "set", "template", "threshold=7")
        assert refused.exit_code == 3 and "threshold" in refused.stderr
    finally:
        pairs = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in before.items()]
        assert av("settings", "set", "template", *pairs).exit_code == 0


def test_webhooks_add_list_rm(av: Any) -> None:
    added = av("webhooks", "add", "http://127.0.0.1:9/cli", "--secret", "s", "--json")
    assert added.exit_code == 0, added.output
    hook = _json(added)
    listed = av("webhooks", "list")
    assert hook["id"] in listed.stdout and "http://127.0.0.1:9/cli" in listed.stdout
    assert av("webhooks", "deliveries", hook["id"]).exit_code == 0
    removed = av("webhooks", "rm", hook["id"])
    assert removed.exit_code == 0 and removed.stdout == f"removed {hook['id']}\n"
    assert hook["id"] not in av("webhooks", "list").stdout
    refused = av("webhooks", "add", "not-a-url")
    assert refused.exit_code == 3 and "url must be an http" in refused.stderr


@pytest.mark.parametrize("args", [
    ("accounts", "list"),
    ("tokens", "list"),
    ("tokens", "create", "--permission", "tasks:view"),
    ("tokens", "revoke", "some-id"),
])
def test_accounts_and_tokens_need_a_server_in_accounts_mode(
    av: Any, args: tuple[str, ...]
) -> None:
    result = av(*args)
    assert result.exit_code == 3, result.output
    assert "accounts are not enabled on this server (AEROVISION_AUTH=off)" in result.stderr
    assert result.stderr.endswith("(409)\n")


# -- batch


def test_batch_of_50_with_2_corrupt_reports_48_done_2_errors(
    av: Any, tmp_path: Path
) -> None:
    """2 corrupt inputs: a truncated PNG (the task ends in error) and random bytes named .png
    (refused with 422 at submission). Both are errors; neither stops the batch."""
    folder = tmp_path / "images"
    folder.mkdir()
    scene, icon, _ = scene_with_patch(1, size=(96, 128), patch=16, seed=1)
    for i in range(48):
        (folder / f"img{i:02d}.png").write_bytes(encode(np.roll(scene, i, axis=1)))
    (folder / "img48-truncated.png").write_bytes(truncated_png(encode(scene)))
    (folder / "img49-random.png").write_bytes(np.random.default_rng(0).bytes(2000))
    (folder / "notes.txt").write_text("not an image: left out of the batch")
    (tmp_path / "icon.png").write_bytes(encode(icon))

    result = av("match", "template", "--batch", folder, tmp_path / "icon.png",
                "--threshold", "0.9", "--concurrency", "4", "--download", tmp_path / "out")
    assert result.exit_code == cli.EXIT_FAILED == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 50
    assert sorted(r["input"] for r in records) == sorted(
        str(p) for p in folder.glob("*.png")
    )
    done = [r for r in records if r["status"] == "done"]
    failed = {Path(r["input"]).name: r for r in records if r["status"] == "error"}
    assert len(done) == 48 and set(failed) == {"img48-truncated.png", "img49-random.png"}
    assert all(r["result_data"]["filtered_matches"] >= 1 for r in done)
    assert "could not decode" in failed["img48-truncated.png"]["error"]
    assert failed["img48-truncated.png"]["uid"]
    assert failed["img49-random.png"]["status_code"] == 422
    assert failed["img49-random.png"]["uid"] is None
    assert result.stderr.startswith("50 inputs: 48 done, 2 error (")
    assert len(list((tmp_path / "out").glob("*/heatmap.png"))) == 48
    assert (tmp_path / "out" / "img07" / "matches.png").exists()


def test_batch_by_glob(av: Any, files: Path) -> None:
    result = av("match", "template", "--batch", str(files / "sc*.png"), files / "icon.png")
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["input"] == str(files / "scene.png") and record["status"] == "done"
    assert record["summary"] == TOOLS["template"].result_line.render(record["result_data"])
    assert record["summary"].startswith("2 matches, best score ")
    assert result.stderr.startswith("1 inputs: 1 done, 0 error")


def test_batch_with_no_server_exits_5(files: Path) -> None:
    result = CliRunner().invoke(cli.main, [
        "match", "template", "--batch", str(files), files.joinpath("icon.png").as_posix(),
        "--server", f"http://127.0.0.1:{free_port()}",
    ])
    assert result.exit_code == 5 and result.stdout == ""


# -- output helpers and the service commands


def test_progress_line() -> None:
    assert cli.progress_line(0, 0, 50, 0.0, width=10) == (
        "[----------] 0/50  done 0  error 0  ETA --:--"
    )
    assert cli.progress_line(20, 5, 50, 10.0, width=10) == (
        "[#####-----] 25/50  done 20  error 5  ETA 00:10"
    )


def test_spinner_and_bar_only_draw_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    task = avc.Task.from_json({"uid": "u1", "status": "processing"})
    cli.Spinner(enabled=False)(task)
    bar = cli.ProgressBar(3, enabled=False)
    bar.add(True)
    bar.draw()
    assert capsys.readouterr().err == ""
    cli.Spinner(enabled=True)(task)
    drawn = cli.ProgressBar(3, enabled=True)
    drawn.add(False)
    drawn.draw()
    err = capsys.readouterr().err
    assert err.startswith("\r| u1 processing ") and "1/3  done 0  error 1" in err


def test_parse_pairs() -> None:
    assert cli.parse_pairs(["threshold=0.9", "max_results=5", "use_grayscale=false",
                            "method=TM_CCORR", "label=a=b"]) == {
        "threshold": 0.9, "max_results": 5, "use_grayscale": False, "method": "TM_CCORR",
        "label": "a=b",
    }


def test_service_commands_still_work(tmp_path: Path) -> None:
    runner = CliRunner()
    migrated = runner.invoke(cli.main, ["migrate", "--data-dir", str(tmp_path / "d")])
    assert migrated.exit_code == 0 and "database schema is up to date" in migrated.stdout
    helped = runner.invoke(cli.main, ["--help"])
    for name in ("serve", "worker", "migrate", "match", "tasks", "settings", "webhooks",
                 "accounts", "tokens"):
        assert f"  {name} " in helped.stdout
    assert "AEROVISION_PORT" in runner.invoke(cli.main, ["serve", "--help"]).stdout
    match_help = runner.invoke(cli.main, ["match", "template", "--help"]).stdout
    assert "Exit codes" in match_help and "--threshold FLOAT" in match_help


def test_ctrl_c_exits_130() -> None:
    @click.command()
    @cli.remote_command
    def interrupted(remote: cli.Remote, as_json: bool) -> int:
        raise KeyboardInterrupt

    result = CliRunner().invoke(interrupted, [])
    assert result.exit_code == cli.EXIT_INTERRUPTED == 130
    assert "submitted tasks keep running" in result.stderr
