"""What a tool declaration is made of.

A tool is one :class:`Tool` value in its own module of this package: its name
and documentation, its inputs, its parameters model, its presets, the rule
that says whether it found something, the one-line summary of a result, and
its runner. The HTTP routes, settings, chain steps, ``GET /api/v1/tools``,
the CLI, the client and the UI are all built from these values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np

    from aerovision.engine.ply import PointCloud

InputKind = Literal["image", "cloud", "any"]
"""What an input file must decode to: an image (PNG, JPEG, BMP, TIFF), a point cloud
(PLY with normals), or ``any`` of them (a chain's inputs: what its steps need)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
ACCEPT: dict[InputKind, tuple[str, ...]] = {
    "image": IMAGE_SUFFIXES,
    "cloud": (".ply",),
    "any": (*IMAGE_SUFFIXES, ".ply"),
}
"""The file name endings each kind of input takes (the UI's and the CLI's file pickers)."""


class ToolParams(BaseModel):
    """Base of the complete, validated parameter sets (unknown fields rejected)."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=ToolParams)


@dataclass(frozen=True)
class InputSpec:
    """One input of a tool: the form field's name, what it must be, and its help text."""

    name: str
    kind: InputKind
    help: str
    required: bool = True
    many: bool = False


@dataclass(frozen=True)
class Preset:
    """A named set of parameter values from the seed documentation's advice."""

    name: str
    note: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Found:
    """The "found" rule: ``result_data[field]`` is above ``above``, or equals ``equals``.

    Declarative, so the UI applies the same rule (``GET /api/v1/tools`` gives it).
    """

    field: str
    above: float | None = 0
    equals: Any = None

    def __call__(self, data: Mapping[str, Any]) -> bool:
        value = data.get(self.field)
        if self.equals is not None:
            return bool(value == self.equals)
        try:
            return value is not None and float(value) > float(self.above or 0)
        except (TypeError, ValueError):
            return False

    def describe(self) -> dict[str, Any]:
        if self.equals is not None:
            return {"field": self.field, "equals": self.equals}
        return {"field": self.field, "above": self.above}


_PLACEHOLDER = re.compile(r"\{(\w+)(?::\.(\d+)([fg])|#([^|{}]*)\|([^{}]*))?\}")


@dataclass(frozen=True)
class Summary:
    """The one-line summary of a result, e.g. ``"{filtered_matches#match|matches}, best
    score {best_score:.3f}"``: field names in braces, optionally with ``:.Nf`` or
    ``:.Ng``, or ``#singular|plural``: the count and its noun (``1 match``, ``3 matches``).

    The format is this small on purpose: the UI renders the same template in
    JavaScript (``GET /api/v1/tools`` gives it).
    """

    template: str

    def render(self, data: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            value = data.get(match.group(1))
            singular, plural = match.group(4), match.group(5)
            if singular is not None:
                shown = "-" if value is None else str(value)
                one = value == 1 and not isinstance(value, bool)
                return f"{shown} {singular if one else plural}"
            if value is None:
                return "-"
            digits, kind = match.group(2), match.group(3)
            if digits is not None and isinstance(value, (int, float)):
                return format(value, f".{digits}{kind}")
            return str(value)

        return _PLACEHOLDER.sub(one, self.template)


class Library(Protocol):
    """An image library of the task's account, as a tool sees it."""

    def search(
        self, image: np.ndarray, *, mode: str, limit: int, offset: int, min_score: float,
        tag: str | None,
    ) -> dict[str, Any]:
        """A search's answer as the libraries' search route gives it (``mode``,
        ``has_more``, ``results``, ``timings``); InputError for an unusable image."""
        ...


class Inputs(Protocol):
    """A task's inputs, decoded by name on first use (a chain's steps share them)."""

    def library(self, library_id: str) -> Library:
        """The task's account's library ``library_id``; InputError when there is none."""
        ...

    def image(self, name: str) -> np.ndarray: ...

    def cloud(self, name: str) -> PointCloud: ...

    def raw(self, name: str) -> bytes: ...

    def renamed(self, names: Mapping[str, str]) -> Inputs:
        """The same inputs seen under other names (``{new: existing}``), sharing decodes."""
        ...


class Outputs(Protocol):
    """Where a runner puts what it makes: result files, and a content-addressed cache."""

    def save(self, name: str, data: bytes) -> str:
        """Store a result file under the task's results folder now; returns its key."""
        ...

    def picture(self, name: str, draw: Callable[[], np.ndarray]) -> str:
        """A result picture under the task's results folder, returned as its key at
        once: ``draw()`` makes it (an image array, written as PNG) after the task's
        verdict, so drawing and encoding never delay ``done``."""
        ...

    def cache_get(self, key: str) -> bytes | None: ...

    def cache_put(self, key: str, data: bytes) -> None: ...

    def within(self, folder: str) -> Outputs:
        """The same, saving result files under ``folder/`` of the results folder."""
        ...


@dataclass(frozen=True)
class RunResult:
    """What a runner returns: the result files' keys and the JSON-ready result data."""

    result_files: list[str]
    result_data: dict[str, Any]


Runner = Callable[[P, Inputs, Outputs], RunResult]


class ParamsError(ValueError):
    """A request's parameters are unusable; ``errors`` are in FastAPI's 422 format."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ResolveContext:
    """What turning a request's fields into effective params may look at."""

    tools: Mapping[str, Tool[Any]]
    params_for: Callable[[Tool[Any], Mapping[str, Any]], dict[str, Any]]
    """A tool's current settings under some given values, validated (pydantic's
    ValidationError when they are not valid)."""
    max_chain_steps: int


Resolver = Callable[[BaseModel, ResolveContext], tuple[dict[str, Any], tuple[InputKind, ...]]]
"""Request fields → (effective params, the kinds the inputs may be); raises ParamsError."""


@dataclass(frozen=True)
class Tool(Generic[P]):
    """One tool, completely described."""

    name: str
    title: str
    summary: str
    docs: str
    inputs: tuple[InputSpec, ...]
    params: type[P]
    run: Runner[P]
    found_when: Mapping[str, Found]
    """The named rules that say whether a result found something; the first is the
    default (the seed's rule), and a chain step may pick another (``found_when``)."""
    result_line: Summary
    presets: tuple[Preset, ...] = ()
    has_settings: bool = True
    """``GET``/``PUT /api/v1/settings/<name>`` exist and requests merge over them."""
    pictures_on_demand: bool = True
    """Its result pictures are drawn when first downloaded (the task run again for
    them), not after every task: drawing and encoding full-size PNGs costs more than
    matching (docs/decisions.md, "Pictures on request"). False for a tool whose run
    costs far more than its pictures (surface): they are written after its verdict."""
    permission: str = "tasks:creation"
    """The ``resource:action`` a token needs to submit it (SPEC-accounts.md)."""
    chainable: bool = True
    """May be a step of a chain (its inputs are the chain's two inputs, in order)."""
    form: type[BaseModel] | None = None
    """Request fields of its own instead of its params' (the chain's ``steps`` text)..."""
    resolve: Resolver | None = None
    """...and how they become effective params (default: the request's values over the
    tool's settings)."""

    @property
    def found(self) -> Found:
        """The default rule: the first of :attr:`found_when`."""
        return next(iter(self.found_when.values()))

    @property
    def found_default(self) -> str:
        return next(iter(self.found_when))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def input_kinds(self) -> tuple[InputKind, ...]:
        return tuple(dict.fromkeys(spec.kind for spec in self.inputs))

    def validate_params(self, values: Mapping[str, Any]) -> P:
        """The complete parameters from ``values`` (raises pydantic's ValidationError)."""
        return self.params.model_validate(dict(values))
