"""Where the benchmarks find their data files, and what they say when one is missing.

Files are looked up in ``AEROVISION_BENCH_DATA`` if it is set, else in
``../shared/data`` next to the repository. They are never copied into the
repository. A missing file raises :class:`MissingBenchData`, whose message names
the file, the path it was looked for at, and where to get it; ``make bench``
prints it and skips the part that needs the file.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_ENV = "AEROVISION_BENCH_DATA"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

SOURCES = {
    "bunny.ply": (
        "the Stanford bunny from the Stanford 3D Scanning Repository "
        "(https://graphics.stanford.edu/data/3Dscanrep/): in its bunny.tar.gz, "
        "bunny/reconstruction/bun_zipper.ply (ASCII, 35,947 vertices, 69,451 faces), "
        "saved as bunny.ply"
    ),
}
"""How to get each file a benchmark reads."""


class MissingBenchData(Exception):
    """A benchmark's data file is not there; the message says which and how to get it."""


def data_dir() -> Path:
    """The folder benchmark data is read from."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_DATA_DIR


def bench_file(name: str, override_env: str | None = None) -> Path:
    """The path of data file ``name``, or :class:`MissingBenchData` when it is absent.

    ``override_env``: a variable that, when set, names the file itself.
    """
    override = os.environ.get(override_env) if override_env else None
    path = Path(override).expanduser() if override else data_dir() / name
    if path.is_file():
        return path
    where = f"{override_env}={override}" if override else (
        f"{DATA_ENV}={data_dir()}" if os.environ.get(DATA_ENV) else f"{data_dir()} (the default)"
    )
    source = SOURCES.get(name, name)
    raise MissingBenchData(
        f"{name} not found at {path} (from {where}). Get {source}; put it at "
        f"{DEFAULT_DATA_DIR / name}, or in a folder named by {DATA_ENV}"
    )
