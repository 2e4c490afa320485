"""`make bench`: print every benchmark as a table of ratios against bare OpenCV."""

from __future__ import annotations

import argparse
import platform

import cv2

from bench.bench_template import bench_engine
from bench.service import bench_service


def _table(rows: list[dict[str, object]]) -> str:
    lines = [f"{'benchmark':<62} {'baseline ms':>12} {'aerovision ms':>14} {'ratio':>7}  note"]
    for row in rows:
        lines.append(
            f"{row['name']!s:<62} {float(row['baseline_ms']):>12.2f} "  # type: ignore[arg-type]
            f"{float(row['aerovision_ms']):>14.2f} {float(row['ratio']):>7.2f}  "  # type: ignore[arg-type]
            f"{row.get('note', '')}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per row (median)")
    parser.add_argument("--skip-service", action="store_true", help="engine rows only")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads, Python {platform.python_version()}")
    rows = bench_engine(repeats=args.repeats)
    if not args.skip_service:
        rows += bench_service(repeats=args.repeats)
    print(_table(rows))


if __name__ == "__main__":
    main()
