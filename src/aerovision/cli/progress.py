"""What runs on stderr while waiting: a spinner for one task, a progress bar for a batch.

Both draw only when enabled (stderr is a terminal), so piped output stays clean.
"""

from __future__ import annotations

import sys
import time

import click

from aerovision import client as avc


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class Spinner:
    """Shows ``| <uid> processing 3.2s`` on a terminal while waiting; nothing otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.turn = 0

    def __call__(self, task: avc.Task) -> None:
        if self.enabled and not task.finished:
            frame = self.FRAMES[self.turn % len(self.FRAMES)]
            self.turn += 1
            elapsed = time.monotonic() - self.started
            click.echo(f"\r{frame} {task.uid} {task.status} {elapsed:.1f}s ", nl=False, err=True)

    def clear(self) -> None:
        if self.enabled and self.turn:
            click.echo("\r\033[K", nl=False, err=True)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes >= 60:
        return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def progress_line(done: int, failed: int, total: int, elapsed: float, width: int = 24) -> str:
    """``[######------] 12/50  done 11  error 1  ETA 00:07``."""
    finished = done + failed
    filled = width * finished // total if total else width
    eta = elapsed / finished * (total - finished) if finished else None
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {finished}/{total}  done {done}  "
        f"error {failed}  ETA {_clock(eta)}"
    )


class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place; silent when not a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def draw(self) -> None:
        if self.enabled:
            line = progress_line(self.done, self.failed, self.total, self.elapsed)
            click.echo(f"\r{line}", nl=False, err=True)

    def clear(self) -> None:
        if self.enabled:
            click.echo("\r\033[K", nl=False, err=True)

    def add(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
