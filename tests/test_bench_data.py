"""The benchmarks find their data in AEROVISION_BENCH_DATA or ../shared/data, and say
which file is missing and how to get it instead of failing with a bare FileNotFoundError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.data import DEFAULT_DATA_DIR, MissingBenchData, bench_file, data_dir

REPO = Path(__file__).resolve().parents[1]


def test_the_default_folder_is_shared_data_next_to_the_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AEROVISION_BENCH_DATA", raising=False)
    assert REPO.parent / "shared" / "data" == DEFAULT_DATA_DIR
    assert data_dir() == DEFAULT_DATA_DIR


def test_the_variable_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bunny.ply").write_bytes(b"ply\n")
    monkeypatch.setenv("AEROVISION_BENCH_DATA", str(tmp_path))
    assert bench_file("bunny.ply") == tmp_path / "bunny.ply"


def test_a_missing_file_says_which_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AEROVISION_BENCH_DATA", str(tmp_path))
    with pytest.raises(MissingBenchData) as missing:
        bench_file("bunny.ply")
    message = str(missing.value)
    assert f"bunny.ply not found at {tmp_path / 'bunny.ply'}" in message
    assert "Stanford" in message and "graphics.stanford.edu/data/3Dscanrep" in message
    assert str(DEFAULT_DATA_DIR / "bunny.ply") in message and "AEROVISION_BENCH_DATA" in message


def test_a_file_named_directly_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bunny = tmp_path / "elsewhere.ply"
    bunny.write_bytes(b"ply\n")
    monkeypatch.setenv("AEROVISION_BUNNY", str(bunny))
    monkeypatch.setenv("AEROVISION_BENCH_DATA", str(tmp_path / "empty"))
    assert bench_file("bunny.ply", "AEROVISION_BUNNY") == bunny


def test_make_bench_skips_the_surface_part_without_the_bunny(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "surface"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "AEROVISION_BENCH_DATA": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "[surface]\nskipped: bunny.ply not found at" in result.stdout
    assert "Traceback" not in result.stderr
