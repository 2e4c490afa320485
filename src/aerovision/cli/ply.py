"""``aerovision ply``: local tools for PLY files (no server needed)."""

from __future__ import annotations

from pathlib import Path

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_FAILED
from aerovision.engine.errors import InputError
from aerovision.engine.normals import K_DEFAULT, K_MAX, K_MIN, MAX_POINTS


def parse_viewpoint(value: str | None) -> tuple[float, float, float] | None:
    """``"x,y,z"`` as three floats; None stays None."""
    if value is None:
        return None
    try:
        x, y, z = (float(p) for p in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"must be three numbers x,y,z (e.g. 0,0,0), got {value!r}", param_hint="--viewpoint"
        ) from None
    return x, y, z


@click.group()
def ply() -> None:
    """Work on PLY point clouds locally (no server needed)."""


@ply.command()
@click.argument(
    "source", metavar="IN.ply", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.argument("target", metavar="OUT.ply", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--k", "k", type=click.IntRange(K_MIN, K_MAX), default=K_DEFAULT, show_default=True,
    help="Neighbours per point used to fit its plane (more: smoother; fewer: more detail).",
)
@click.option(
    "--viewpoint", metavar="X,Y,Z",
    help="Where the sensor was: normals face it (use it for single-view scans; "
    "a depth camera at its own origin is 0,0,0). Without it, normals are oriented "
    "consistently over the surface, outward for a closed object.",
)
@click.option(
    "--max-points", type=click.IntRange(1), default=MAX_POINTS, show_default=True,
    help="Refuse files with more vertices than this.",
)
def normals(source: Path, target: Path, k: int, viewpoint: str | None, max_points: int) -> None:
    """Estimate and orient a normal per point of IN.ply and write OUT.ply.

    OUT.ply holds x y z nx ny nz per vertex (binary), ready for `aerovision match
    surface`; normals already in IN.ply are replaced, colours and faces are not
    carried over. OUT.ply may be IN.ply. Exit code 1 when IN.ply is not a usable
    PLY file or OUT.ply cannot be written, 2 for a bad command line.

    \b
    Examples:
      aerovision ply normals bunny.ply bunny-normals.ply
      aerovision ply normals scan.ply scan-normals.ply --viewpoint 0,0,0
    """
    view = parse_viewpoint(viewpoint)
    try:
        count = avc.ply_normals(source, target, k=k, viewpoint=view, max_points=max_points)
    except InputError as exc:
        click.echo(f"error: {source}: {exc}", err=True)
        click.get_current_context().exit(EXIT_FAILED)
    except OSError as exc:
        click.echo(f"error: {exc.filename or target}: {exc.strerror or exc}", err=True)
        click.get_current_context().exit(EXIT_FAILED)
    how = "oriented consistently (outward)"
    if view is not None:
        how = f"facing {','.join(f'{v:g}' for v in view)}"
    click.echo(f"{target}: {count:,} points with normals from {k} neighbours, {how}")
