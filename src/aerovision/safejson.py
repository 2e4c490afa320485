"""JSON from clients, parsed with a nesting limit.

Python's parser recurses once per level, and so do Pydantic and the code that
renders a 422: a few kilobytes of ``[[[[…`` reach the interpreter's recursion
limit (a 500 and a long traceback). Every JSON text that comes from a client —
request bodies, the chain's ``steps`` field — is measured here first, without
recursion, and refused past :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; AeroVision's own bodies need 4."""

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class TooDeep(ValueError):
    """The JSON nests deeper than allowed."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"JSON nests {depth} levels deep; at most {limit} are accepted")
        self.depth = depth
        self.limit = limit


def depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in ``text`` (0 for a scalar).

    Linear time and no recursion; brackets inside strings do not count. The
    text need not be valid JSON (the parser judges that afterwards).
    """
    data = text.encode() if isinstance(text, str) else text
    if b"[" not in data and b"{" not in data:
        return 0
    bare = _STRINGS.sub(b"", data)
    steps = _OPEN[np.frombuffer(bare, dtype=np.uint8)]
    if not steps.any():
        return 0
    return int(np.cumsum(steps, dtype=np.int64).max())


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when ``text`` nests deeper than ``limit``."""
    found = depth(text)
    if found > limit:
        raise TooDeep(found, limit)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (only finite numbers are)")


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` that first refuses nesting deeper than ``limit`` (:class:`TooDeep`),
    and refuses ``NaN`` and ``Infinity``, which are not JSON (``ValueError``)."""
    check_depth(text, limit)
    return json.loads(text, parse_constant=_no_constant)
