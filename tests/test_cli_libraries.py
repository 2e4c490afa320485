"""`aerovision library` (CliRunner) against a real `aerovision serve`: create, list, add a
folder of photographs (resumable), search, images, remove, delete, snapshot, errors."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from click.testing import CliRunner, Result

from aerovision import cli
from aerovision import client as avc
from aerovision.cli import libraries
from aerovision.cli.exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from tests import library_truth as truth
from tests.server import ServeProcess

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

PHOTOS = {  # file name in the folder → the library photo, each format the server reads
    "astronaut.png": "astronaut", "coffee.jpg": "coffee", "chelsea.bmp": "chelsea",
    "rocket.tif": "rocket", "camera.png": "camera", "page.png": "page",
    "coins.png": "coins", "more/moon.png": "moon",
}
ALPHA = "more/logo-alpha.png"
"""A BGRA PNG with transparent pixels: the server flattens it before signing."""


def _with_alpha(image: np.ndarray) -> np.ndarray:
    bgr = truth.colour(image)
    h, w = bgr.shape[:2]
    alpha = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    return np.dstack([bgr, alpha])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("cli-libraries") / "data", workers=0).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real photographs (scikit-image's), in a subfolder too, with files that
    are not taken: a text file, a hidden file and a hidden folder."""
    folder = tmp_path_factory.mktemp("cli-library-photos")
    images = dict(truth.library_images())
    (folder / "more").mkdir()
    for name, photo in PHOTOS.items():
        (folder / name).write_bytes(truth.encode(images[photo], Path(name).suffix))
    (folder / ALPHA).write_bytes(truth.encode(_with_alpha(images["logo"])))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(truth.encode(images["gravel"]))
    (folder / ".cache").mkdir()
    (folder / ".cache" / "brick.png").write_bytes(truth.encode(images["brick"]))
    return folder


IN_FOLDER = len(PHOTOS) + 1


@pytest.fixture
def av(server: ServeProcess) -> Any:
    """Run `aerovision ARGS...` against the module's server (AEROVISION_URL)."""
    runner = CliRunner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(cli.main, [str(a) for a in args],
                             env={"AEROVISION_URL": server.base_url}, catch_exceptions=False)

    return invoke


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of files of each add request the command sends."""
    sent: list[int] = []
    lock = threading.Lock()
    add_images = avc.Client.add_images

    def counting(self: avc.Client, library_id: str, files: Any, **kwargs: Any) -> Any:
        with lock:
            sent.append(len(files))
        return add_images(self, library_id, files, **kwargs)

    monkeypatch.setattr(avc.Client, "add_images", counting)
    return sent


def _new_library(av: Any, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    made = av("library", "create", name, "--description", "cli test")
    assert made.exit_code == EXIT_OK, made.output
    assert re.fullmatch(rf"{UUID}  {name}\n", made.stdout)
    return name


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _library(server: ServeProcess, name: str) -> dict[str, Any]:
    listed = requests.get(server.url("/api/v1/libraries"), params={"limit": 1000},
                          timeout=10).json()
    found: dict[str, Any] = next(x for x in listed["libraries"] if x["name"] == name)
    return found


def test_create_list_and_snapshot(av: Any, server: ServeProcess) -> None:
    name = _new_library(av, "made")
    taken = av("library", "create", name)
    assert taken.exit_code == EXIT_REFUSED
    assert f"the account has a library named {name!r} (409)" in taken.stderr
    bad = av("library", "create", "a b")
    assert bad.exit_code == EXIT_REFUSED and "name" in bad.stderr

    listed = av("library", "list")
    assert listed.exit_code == EXIT_OK
    assert listed.stdout.splitlines()[0].split() == ["id", "name", "images", "description",
                                                     "created"]
    assert re.search(rf"^{UUID}  {name}\s+0  cli test ", listed.stdout, re.M)
    assert re.search(r"^1-\d+ of \d+ libraries$", listed.stdout, re.M)
    page = _json(av("library", "list", "--json", "--limit", "1000"))
    assert page["total"] == len(page["libraries"])
    mine = next(x for x in page["libraries"] if x["name"] == name)
    assert set(mine) >= {"library_id", "name", "description", "image_count", "created_at"}

    shown = av("library", "snapshot", name)
    assert shown.exit_code == EXIT_OK
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["name"] == name and fields["images"] == "0"
    assert fields["id"] == mine["library_id"]
    assert fields["index"].startswith(("ready, 0 entries", "not loaded, 0 entries"))
    by_id = _json(av("library", "snapshot", mine["library_id"], "--json"))
    assert by_id["library_id"] == mine["library_id"] and by_id["image_count"] == 0
    assert set(by_id["index"]) == {"state", "entries", "size_bytes"}


def test_add_a_folder_then_again_uploads_nothing(
    av: Any, server: ServeProcess, photos: Path, uploads: list[int]
) -> None:
    name = _new_library(av, "twice")
    first = av("library", "add", name, photos, "--brief", "scikit-image", "--tags", "demo,set1")
    assert first.exit_code == EXIT_OK, first.output
    assert first.stdout.startswith(
        f"{IN_FOLDER} files: {IN_FOLDER} added, 0 already in the library, 0 duplicates, "
        "0 refused ("
    ), first.stdout
    assert first.stderr == ""  # not a terminal: no progress bar
    assert sum(uploads) == IN_FOLDER and max(uploads) <= 10
    assert _library(server, name)["image_count"] == IN_FOLDER
    images = _json(av("library", "images", name, "--json"))["images"]
    assert {(i["brief"], tuple(i["tags"])) for i in images} == {("scikit-image",
                                                                 ("demo", "set1"))}

    uploads.clear()
    again = av("library", "add", name, photos, "--json")
    assert again.exit_code == EXIT_OK, again.output
    summary = _json(again)
    assert {k: summary[k] for k in ("files", "added", "present", "duplicate", "refused")} == {
        "files": IN_FOLDER, "added": 0, "present": IN_FOLDER, "duplicate": 0, "refused": 0}
    assert uploads == []  # every signature computed here was found in the library
    by_file = {Path(r["file"]).relative_to(photos).as_posix(): r for r in summary["results"]}
    assert set(by_file) == {*PHOTOS, ALPHA}  # the text file and hidden ones are not taken
    ids = {i["image_id"]: i["contsign"] for i in images}
    for entry in by_file.values():
        assert ids[entry["image_id"]] == entry["contsign"]
    assert _library(server, name)["image_count"] == IN_FOLDER

    text = av("library", "add", name, photos)
    assert text.stdout.startswith(f"{IN_FOLDER} files: 0 added, {IN_FOLDER} already in the "
                                  "library, 0 duplicates, 0 refused (")


def test_an_interrupted_add_resumes_with_the_missing_files_only(
    av: Any, server: ServeProcess, photos: Path, uploads: list[int]
) -> None:
    name = _new_library(av, "resume")
    files = sorted(p for p in photos.rglob("*") if p.relative_to(photos).as_posix() in PHOTOS)
    half, rest = files[: len(files) // 2], files[len(files) // 2:]
    first = av("library", "add", name, *half, "--json", "--batch", "2")
    assert first.exit_code == EXIT_OK and _json(first)["added"] == len(half)
    assert uploads == [2] * (len(half) // 2) + [1] * (len(half) % 2)

    uploads.clear()
    whole = av("library", "add", name, photos, "--json", "--batch", "3", "--concurrency", "2")
    assert whole.exit_code == EXIT_OK, whole.output
    summary = _json(whole)
    outcome = {Path(r["file"]): r["outcome"] for r in summary["results"]}
    assert {p for p, o in outcome.items() if o == "present"} == set(half)
    assert {p for p, o in outcome.items() if o == "added"} == {*rest, photos / ALPHA}
    assert sum(uploads) == len(rest) + 1 and max(uploads) <= 3
    assert _library(server, name)["image_count"] == IN_FOLDER


def test_a_broken_file_is_refused_and_the_others_added(
    av: Any, server: ServeProcess, tmp_path: Path
) -> None:
    name = _new_library(av, "broken")
    images = truth.library_images()
    for stem, image in images[:3]:
        (tmp_path / f"{stem}.png").write_bytes(truth.encode(image))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "copy.png").write_bytes(truth.encode(images[0][1]))  # astronaut's content
    result = av("library", "add", name, tmp_path)
    assert result.exit_code == EXIT_FAILED, result.output
    lines = result.stdout.splitlines()  # in the files' order
    assert re.fullmatch(rf"refused    {re.escape(str(tmp_path / 'broken.png'))}  422 .+",
                        lines[0]), lines
    assert lines[1] == (f"duplicate  {tmp_path / 'copy.png'}  the same content as "
                        f"{tmp_path / 'astronaut.png'}")  # not sent
    assert lines[-1].startswith("5 files: 3 added, 0 already in the library, 1 duplicates, "
                                "1 refused (")
    assert _library(server, name)["image_count"] == 3

    # a duplicate the server finds is no failure either: a re-encoded picture has another
    # signature, so it is sent, and near refuses it
    (tmp_path / "broken.png").unlink()
    jpeg = tmp_path / "again.jpg"
    jpeg.write_bytes(truth.encode(images[1][1], ".jpg"))
    near = av("library", "add", name, jpeg, "--dedup", "near", "--json")
    assert near.exit_code == EXIT_OK, near.output
    entry = _json(near)["results"][0]
    assert entry["outcome"] == "duplicate" and entry["status"] == 409
    assert entry["image_id"] is not None
    assert _library(server, name)["image_count"] == 3


def test_search_prints_the_right_top_hit(av: Any, server: ServeProcess, photos: Path,
                                         tmp_path: Path) -> None:
    name = _new_library(av, "search")
    added = _json(av("library", "add", name, photos, "--brief", "a photo\nof two lines",
                     "--json"))
    image_id = {Path(r["file"]).name: r["image_id"] for r in added["results"]}
    coffee = dict(truth.library_images())["coffee"]
    query = tmp_path / "coffee-again.jpg"
    query.write_bytes(cv2.imencode(".jpg", coffee, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes())

    shown = av("library", "search", name, query, "--limit", "3")
    assert shown.exit_code == EXIT_OK, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["#", "match", "score", "brief", "image_id", "inliers"]
    top = lines[1].split()
    assert top[:2] == ["1", "duplicate"] and top[-2] == image_id["coffee.jpg"]
    assert 0.9 <= float(top[2]) <= 1 and (top[-1] == "-" or int(top[-1]) > 10)  # a sure hash match has no geometry
    assert "a photo of two lines" in lines[1]  # the brief on one line
    assert len(lines) == 5 and re.fullmatch(
        r"3 hits \(mode auto, [\d.]+ ms\); more with --offset 3", lines[-1]
    )

    raw = av("library", "search", name, query, "--json", "--mode", "duplicate")
    assert raw.exit_code == EXIT_OK
    answer = _json(raw)
    assert set(answer) == {"mode", "has_more", "query", "results", "timings"}
    assert answer["mode"] == "duplicate" and answer["has_more"] is False
    assert [h["image_id"] for h in answer["results"]] == [image_id["coffee.jpg"]]
    hit = answer["results"][0]
    assert set(hit) >= {"image_id", "score", "match_type", "brief", "tags", "contsign",
                        "thumbnail"}
    assert hit["brief"] == "a photo\nof two lines"

    second = av("library", "search", name, query, "--limit", "2", "--offset", "2",
                "--min-score", "0.99")
    assert second.exit_code == EXIT_OK and second.stdout == "no hits (mode auto, " + \
        second.stdout.split("(mode auto, ", 1)[1]
    unusable = tmp_path / "not-an-image.png"
    unusable.write_bytes(b"hello")
    refused = av("library", "search", name, unusable)
    assert refused.exit_code == EXIT_REFUSED and "image:" in refused.stderr


def test_images_and_remove_by_id_and_by_contsign(av: Any, server: ServeProcess,
                                                 tmp_path: Path) -> None:
    name = _new_library(av, "remove")
    images = truth.library_images()[:4]
    for stem, image in images[:2]:
        (tmp_path / f"{stem}.png").write_bytes(truth.encode(image))
    assert av("library", "add", name, tmp_path, "--tags", "first").exit_code == EXIT_OK
    for stem, image in images[2:]:
        (tmp_path / f"{stem}.png").write_bytes(truth.encode(image))
    assert av("library", "add", name, tmp_path, "--tags", "second").exit_code == EXIT_OK

    listed = av("library", "images", name)
    assert listed.exit_code == EXIT_OK
    assert listed.stdout.splitlines()[0].split() == ["id", "contsign", "size", "tags",
                                                     "brief", "added"]
    assert listed.stdout.splitlines()[-1] == "1-4 of 4 images"
    tagged = _json(av("library", "images", name, "--tag", "second", "--json"))
    assert tagged["total"] == 2 and {i["tags"][0] for i in tagged["images"]} == {"second"}
    assert av("library", "images", name, "--tag", "first").stdout.splitlines()[-1] == \
        "1-2 of 2 images"

    first, second = tagged["images"]
    by_id = av("library", "remove", name, first["image_id"])
    assert by_id.exit_code == EXIT_OK and by_id.stdout == f"removed {first['image_id']}\n"
    sign = f"{second['contsign']['sign1']},{second['contsign']['sign2']}"
    by_sign = av("library", "remove", name, "--contsign", sign)
    assert by_sign.exit_code == EXIT_OK and by_sign.stdout == f"removed contsign {sign}\n"
    assert _library(server, name)["image_count"] == 2

    again = av("library", "remove", name, first["image_id"], "--contsign", sign)
    assert again.exit_code == EXIT_NOT_FOUND
    assert "Image not found (404)" in again.stderr
    assert "No image has this content signature (404)" in again.stderr
    assert av("library", "remove", name).exit_code == EXIT_USAGE
    assert av("library", "remove", name, "--contsign", "1,x").exit_code == EXIT_USAGE


def test_delete_needs_yes(av: Any, server: ServeProcess, tmp_path: Path) -> None:
    name = _new_library(av, "delete")
    (tmp_path / "a.png").write_bytes(truth.encode(truth.library_images()[0][1]))
    assert av("library", "add", name, tmp_path).exit_code == EXIT_OK
    refused = av("library", "delete", name)
    assert refused.exit_code == EXIT_USAGE and "--yes" in refused.stderr
    assert _library(server, name)["image_count"] == 1
    deleted = av("library", "delete", name, "--yes")
    assert deleted.exit_code == EXIT_OK
    assert re.fullmatch(rf"deleted library {name} \({UUID}\) and its 1 images\n",
                        deleted.stdout)
    gone = av("library", "snapshot", name)
    assert gone.exit_code == EXIT_NOT_FOUND
    assert gone.stderr == f"error: Library not found: there is no library named {name!r} (404)\n"


@pytest.mark.parametrize("args", [
    ("search", "{library}", "{photo}"), ("images", "{library}"), ("snapshot", "{library}"),
    ("add", "{library}", "{photo}"), ("remove", "{library}", "--contsign", "1,2"),
    ("delete", "{library}", "--yes"),
])
def test_an_unknown_library_is_not_found(av: Any, photos: Path, args: tuple[str, ...]) -> None:
    for library in ("no-such-library", str(uuid.uuid4())):
        filled = [a.format(library=library, photo=photos / "astronaut.png") for a in args]
        result = av("library", *filled)
        assert result.exit_code == EXIT_NOT_FOUND, result.output
        assert result.stderr.startswith("error: Library not found: ")
        assert repr(library) in result.stderr


def test_a_library_is_named_by_id_too(av: Any, server: ServeProcess, photos: Path) -> None:
    name = _new_library(av, "by-id")
    library_id = _library(server, name)["library_id"]
    added = av("library", "add", library_id, photos / "astronaut.png")
    assert added.exit_code == EXIT_OK
    assert _json(av("library", "images", library_id, "--json"))["total"] == 1


def test_command_line_and_request_errors(av: Any, photos: Path, tmp_path: Path) -> None:
    name = _new_library(av, "errors")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    nothing = av("library", "add", name, empty)
    assert nothing.exit_code == EXIT_USAGE and "no image files" in nothing.stderr
    assert av("library", "add", name, tmp_path / "missing").exit_code == EXIT_USAGE
    assert av("library", "add", name, photos, "--batch", "101").exit_code == EXIT_USAGE
    # refused for the request, not a file: it stops at once (exit 3), nothing added
    tags = ",".join(f"t{i}" for i in range(17))
    too_many = av("library", "add", name, photos, "--tags", tags)
    assert too_many.exit_code == EXIT_REFUSED, too_many.output
    assert "tags: at most 16" in too_many.stderr
    unreachable = CliRunner().invoke(
        cli.main, ["library", "list", "--server", "http://127.0.0.1:9"], catch_exceptions=False
    )
    assert unreachable.exit_code == EXIT_UNREACHABLE
    assert unreachable.stderr.startswith("error: could not talk to http://127.0.0.1:9")


def test_a_progress_bar_on_a_terminal(av: Any, photos: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libraries, "stderr_is_terminal", lambda: True)
    name = _new_library(av, "bar")
    result = av("library", "add", name, photos)
    assert result.exit_code == EXIT_OK
    assert f"checking {IN_FOLDER} files against the library's 0 images" in result.stderr
    assert f"uploading {IN_FOLDER} files" in result.stderr
    done = f"] {IN_FOLDER}/{IN_FOLDER}  done {IN_FOLDER}  error 0"
    assert result.stderr.count(done) == 2  # checked, then uploaded
    assert result.stdout.startswith(f"{IN_FOLDER} files: {IN_FOLDER} added")


def test_the_local_signature_is_the_servers(server: ServeProcess, photos: Path) -> None:
    """For every format of the folder (PNG grey and colour, JPEG, BMP, TIFF, BGRA PNG)."""
    with avc.Client(server.base_url) as client:
        library = client.create_library(f"signs-{uuid.uuid4().hex[:6]}")
        files = [photos / name for name in (*PHOTOS, ALPHA)]
        added = client.add_images(library.library_id, files)
    max_pixels = libraries.local_max_pixels()
    for path, result in zip(files, added, strict=True):
        assert result.image is not None, result.error
        assert libraries.local_contsign(path.read_bytes(), max_pixels) == result.image.contsign
    assert libraries.local_contsign(b"not an image", max_pixels) is None


def test_ctrl_c_during_an_add_exits_130_and_the_add_resumes(
    av: Any, server: ServeProcess, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _new_library(av, "ctrl-c")
    calls: list[int] = []
    add_images = avc.Client.add_images

    def interrupted(self: avc.Client, library_id: str, files: Any, **kwargs: Any) -> Any:
        calls.append(len(files))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return add_images(self, library_id, files, **kwargs)

    monkeypatch.setattr(avc.Client, "add_images", interrupted)
    stopped = av("library", "add", name, photos, "--batch", "2", "--concurrency", "1")
    assert stopped.exit_code == EXIT_INTERRUPTED, stopped.output
    assert "interrupted after adding 2 files: run the same command again" in stopped.stderr
    assert _library(server, name)["image_count"] == 2

    monkeypatch.setattr(avc.Client, "add_images", add_images)
    resumed = av("library", "add", name, photos, "--json")
    assert resumed.exit_code == EXIT_OK
    assert (_json(resumed)["present"], _json(resumed)["added"]) == (2, IN_FOLDER - 2)
    assert _library(server, name)["image_count"] == IN_FOLDER
