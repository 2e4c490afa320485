"""`make bench`: every benchmark, side by side with its baseline, as one table.

Columns: the baseline's time (the bare OpenCV call, or what the row names), ours,
and their ratio (ours / baseline: below 1 is faster). Run a part with --only.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from typing import Any

import cv2

from bench import end_to_end, libraries
from bench.bench_feature import bench_feature
from bench.bench_surface import bench_surface
from bench.bench_template import bench_engine
from bench.data import MissingBenchData
from bench.service import bench_service
from bench.throughput import bench_throughput

Row = dict[str, Any]


def _table(rows: list[Row]) -> str:
    lines = [f"{'benchmark':<66} {'baseline':>10} {'aerovision':>11} {'ratio':>7}  note"]
    for row in rows:
        lines.append(
            f"{row['name']!s:<66} {float(row['baseline_ms']):>10.2f} "
            f"{float(row['aerovision_ms']):>11.2f} {float(row['ratio']):>7.2f}  "
            f"{row.get('note', '')}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per row (median)")
    parts: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
        "template": lambda a: bench_engine(repeats=a.repeats),
        "feature": lambda a: bench_feature(),
        "surface": lambda a: bench_surface(),
        "service": lambda a: bench_service(repeats=a.repeats),
        "end-to-end": lambda a: end_to_end.bench_end_to_end(repeats=a.repeats),
        "throughput": lambda a: bench_throughput(),
        "libraries": lambda a: libraries.bench_libraries(libraries.sizes_from_env()),
    }
    parser.add_argument("--only", choices=list(parts), action="append", help="run only these parts")
    args = parser.parse_args()
    print(
        f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads, "
        f"Python {platform.python_version()}"
    )
    for name in args.only or list(parts):
        print(f"\n[{name}]", flush=True)
        try:
            rows = parts[name](args)
        except MissingBenchData as missing:  # the part's data is not on this machine
            print(f"skipped: {missing}", flush=True)
            continue
        shown = {"end-to-end": end_to_end.table, "libraries": libraries.table}.get(name, _table)
        print(shown(rows), flush=True)


if __name__ == "__main__":
    main()
