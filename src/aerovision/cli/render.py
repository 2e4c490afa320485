"""Text output for people: values, tables, a task's fields and result, one-line summaries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from aerovision import client as avc
from aerovision.tools import TOOLS

SUMMARY_WIDTH = 80
"""Longest error text shown on one line of a list."""


def fmt(value: Any) -> str:
    """A value in a table cell or a ``key=value`` pair."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return f"[{len(value)} items]" if isinstance(value, list) else "{…}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A compact text table: numbers right-aligned, the rest left-aligned."""
    cells = [[fmt(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def inline(values: Mapping[str, Any]) -> str:
    """``key=value key=value`` of ``values``."""
    return " ".join(f"{k}={fmt(v)}" for k, v in values.items())


def scalars(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` that are not lists or objects."""
    return {k: v for k, v in data.items() if not isinstance(v, (list, dict))}


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else None


def summary(task: avc.Task) -> str:
    """One line about a task's outcome, for lists: its tool's result line when done
    (the registry's), its error text when it failed, nothing while it runs."""
    if task.status == "error":
        return (task.error or "error")[:SUMMARY_WIDTH]
    if task.status != "done":
        return ""
    tool = TOOLS.get(task.tool)
    if tool is None:  # a tool of a newer server than this command
        return inline(scalars(task.result_data))
    return tool.result_line.render(task.result_data)


def batch_summary(result: avc.BatchResult) -> str:
    """:func:`summary` of one input of a batch, or why it failed."""
    if result.error is not None or result.task is None:
        return (result.error or "error")[:SUMMARY_WIDTH]
    return summary(result.task)


def render_task(task: avc.Task, downloaded: Sequence[Path] = ()) -> str:
    """A task for people: fields, then the result's tables (matches, pose, chain steps)."""
    rows = [
        ("uid", task.uid), ("status", task.status), ("tool", task.tool),
        ("created", when(task.created_at)), ("params", inline(task.params)),
    ]
    if task.error:
        rows.append(("error", task.error))
    if scalars(task.result_data):
        rows.append(("result", inline(scalars(task.result_data))))
    rows += [("file", f) for f in task.result_files]
    rows += [("saved", str(p)) for p in downloaded]
    text = "\n".join(f"{k:<8} {v}" for k, v in rows)
    data = task.result_data
    if data.get("matches"):
        matches = [
            [i, m.get("x"), m.get("y"), m.get("w"), m.get("h"), m.get("score")]
            for i, m in enumerate(data["matches"], 1)
        ]
        text += "\n\n" + table(["#", "x", "y", "w", "h", "score"], matches)
    if data.get("pose"):
        text += "\n\npose (model → scene)\n" + table(
            ["", "", "", ""], [[float(v) for v in row] for row in data["pose"]]
        ).split("\n", 1)[1]
    if data.get("steps"):
        steps = [
            [s.get("step"), s.get("tool"), s.get("status"), s.get("found"),
             s.get("error") or inline(scalars(s.get("result_data") or {}))]
            for s in data["steps"]
        ]
        text += "\n\n" + table(["step", "tool", "status", "found", "result"], steps)
    return text


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))
