"""`aerovision ply normals` and `client.ply_normals`: scans without normals, made usable.

The Done-when of the feature: a model and a single-view scan, both written without
normals, go through the command and then through surface matching (API and worker),
which finds the ground-truth pose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aerovision import cli
from aerovision import client as avc
from aerovision.engine.ply import read_ply
from tests.inprocess import InProcessService
from tests.shapes import OBJECT, clutter, pose_errors, random_rotation, sample_union

DIAMETER = 1.4  # of tests.shapes.OBJECT, roughly


def _points_ply(points: np.ndarray, extra: str = "") -> bytes:
    """An ASCII PLY of x y z only (what a scanner or a mesh export often gives)."""
    header = (
        f"ply\nformat ascii 1.0\ncomment {extra}\nelement vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    return header.encode() + "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in points).encode()


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """model.ply (the object, all round) and scene.ply (the object moved, seen from one
    viewpoint, with clutter and noise), neither with normals; and the truth."""
    folder = tmp_path_factory.mktemp("normal-free")
    rng = np.random.default_rng(42)
    model, _ = sample_union(OBJECT, 3000, rng)
    rotation, translation = random_rotation(rng), rng.uniform(-2.0, 2.0, 3)
    points, normals = sample_union(OBJECT, 5000, rng)
    points, normals = points @ rotation.T + translation, normals @ rotation.T
    viewpoint = translation + np.array([2.0, -3.0, 4.0])
    seen = np.einsum("ij,ij->i", normals, viewpoint - points) > 0
    others, other_normals = clutter(rng, translation, 0.9, 4)
    others = others[np.einsum("ij,ij->i", other_normals, viewpoint - others) > 0]
    scene = np.concatenate([points[seen], others])
    scene += rng.normal(0.0, 0.002 * DIAMETER, scene.shape)
    (folder / "model.ply").write_bytes(_points_ply(model))
    (folder / "scene.ply").write_bytes(_points_ply(scene))
    return {
        "folder": folder, "rotation": rotation, "translation": translation,
        "viewpoint": viewpoint, "scene_points": len(scene),
    }


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["ply", "normals", *args])
    return result.exit_code, result.stdout, result.stderr


def test_normal_free_scan_is_matched_with_the_true_pose(
    scan: dict[str, object], inprocess: InProcessService
) -> None:
    folder = Path(str(scan["folder"]))
    raw_model, raw_scene = (folder / "model.ply").read_bytes(), (folder / "scene.ply").read_bytes()

    # as they are, the server refuses them and names the command that helps
    response = inprocess.client.post(
        "/api/v1/match/surface",
        files={"model_file": ("model.ply", raw_model), "scene_file": ("scene.ply", raw_scene)},
    )
    assert response.status_code == 422
    messages = [e["msg"] for e in response.json()["detail"]]
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "model_file"], ["body", "scene_file"]]
    assert all("aerovision ply normals IN.ply OUT.ply" in m for m in messages), messages

    view = ",".join(f"{v:.6f}" for v in np.asarray(scan["viewpoint"]))
    code, out, err = _run(str(folder / "model.ply"), str(folder / "model-n.ply"))
    assert (code, err) == (0, ""), err
    assert out == f"{folder / 'model-n.ply'}: 3,000 points with normals from 20 neighbours, oriented consistently (outward)\n"
    code, out, err = _run(str(folder / "scene.ply"), str(folder / "scene-n.ply"), "--viewpoint", view)
    assert code == 0, err
    assert f"{scan['scene_points']:,} points" in out and "facing" in out

    task = inprocess.submit("surface", {
        "model_file": ("model.ply", (folder / "model-n.ply").read_bytes()),
        "scene_file": ("scene.ply", (folder / "scene-n.ply").read_bytes()),
    })
    inprocess.drive()
    done = inprocess.task(task["uid"])
    assert done["status"] == "done", done["error"]
    assert done["result_data"]["poses_found"] >= 1
    angle, shift = pose_errors(
        np.array(done["result_data"]["pose"]), np.asarray(scan["rotation"]),
        np.asarray(scan["translation"]), DIAMETER,
    )
    assert angle < 2.0 and shift < 0.01, (angle, shift)


def test_client_helper_writes_the_same_file(scan: dict[str, object], tmp_path: Path) -> None:
    folder = Path(str(scan["folder"]))
    count = avc.ply_normals(folder / "model.ply", tmp_path / "a.ply")
    assert count == 3000
    code, _, _ = _run(str(folder / "model.ply"), str(tmp_path / "b.ply"))
    assert code == 0
    assert (tmp_path / "a.ply").read_bytes() == (tmp_path / "b.ply").read_bytes()
    viewed = avc.ply_normals(folder / "model.ply", tmp_path / "c.ply", k=8, viewpoint=(0, 0, 9))
    cloud = read_ply((tmp_path / "c.ply").read_bytes(), max_points=10_000)
    assert viewed == 3000 and np.all(np.einsum("ij,ij->i", cloud.normals, (0, 0, 9) - cloud.points) >= 0)


def test_output_may_replace_the_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "scan.ply"
    path.write_bytes(_points_ply(sample_union(OBJECT, 500, rng)[0]))
    assert _run(str(path), str(path))[0] == 0
    assert read_ply(path.read_bytes(), max_points=1000).num_points == 500
    assert [p.name for p in tmp_path.iterdir()] == ["scan.ply"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--viewpoint", "1,2"], 2, "must be three numbers x,y,z"),
        (["--viewpoint", "a,b,c"], 2, "must be three numbers x,y,z"),
        (["--k", "2"], 2, "--k"),
        (["--k", "500"], 2, "--k"),
        (["--max-points", "10"], 1, "over the limit of 10 points"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    source = tmp_path / "in.ply"
    source.write_bytes(_points_ply(np.random.default_rng(0).normal(size=(50, 3))))
    got, out, err = _run(str(source), str(tmp_path / "out.ply"), *args)
    assert got == code and message in err, (got, out, err)
    assert not (tmp_path / "out.ply").exists()


def test_bad_files(tmp_path: Path) -> None:
    not_ply = tmp_path / "photo.png"
    not_ply.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    code, _, err = _run(str(not_ply), str(tmp_path / "out.ply"))
    assert code == 1 and err == f"error: {not_ply}: not a PLY file (it must start with the line 'ply')\n"
    code, _, err = _run(str(tmp_path / "missing.ply"), str(tmp_path / "out.ply"))
    assert code == 2 and "does not exist" in err
    source = tmp_path / "in.ply"
    source.write_bytes(_points_ply(np.random.default_rng(0).normal(size=(50, 3))))
    code, _, err = _run(str(source), str(tmp_path / "no" / "such" / "dir.ply"))
    assert code == 1 and err == f"error: {tmp_path / 'no' / 'such' / 'dir.ply'}: No such file or directory\n"
    with pytest.raises(ValueError, match="not a PLY file"):
        avc.ply_normals(not_ply, tmp_path / "x.ply")
