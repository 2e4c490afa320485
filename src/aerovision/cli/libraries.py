"""``aerovision library``: image libraries — create, list, add a folder, search, list and
remove images, delete, snapshot.

``library add`` is resumable: before uploading, it computes each local file's content
signature as the server does (:func:`local_contsign`) and skips the files whose
signature is in the library already, so running it again after an interruption or a
failure uploads only what is missing. LIBRARY is a library's name or its id.
"""

from __future__ import annotations

import os
import queue
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import click

from aerovision import client as avc
from aerovision.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_OK
from aerovision.cli.progress import ProgressBar, stderr_is_terminal
from aerovision.cli.remote import Remote, print_error, remote_command
from aerovision.cli.render import echo_json, fmt, table, when
from aerovision.config import Settings
from aerovision.engine import imageio, retrieval

EXIT_CODES_HELP = """\b
Exit codes of library:
  0  done
  1  add: a file was refused for another reason than being in the library already
  2  bad command line (no image files, a malformed --contsign, delete without --yes)
  3  the server refused the request: 401/403 credentials or permission, 409 name taken,
     422 invalid value or query image, 413 too large
  4  not found (unknown library or image)
  5  cannot reach the server, or it failed (5xx)
  130  interrupted by Ctrl-C (run add again: it skips what was added)"""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""The files ``library add`` takes from a directory (the server reads PNG, JPEG, BMP and
TIFF)."""

REQUEST_TIMEOUT_S = 300.0
"""Timeout of one request of these commands: the server describes a batch of images, or
searches, before it answers."""

BRIEF_WIDTH = 40
"""Longest brief shown in a table."""

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

DEDUP: tuple[str, ...] = get_args(avc.Dedup)
MODES: tuple[str, ...] = get_args(avc.SearchMode)


@click.group(epilog=EXIT_CODES_HELP)
def library() -> None:
    """Image libraries: add reference images, then search them with a picture.

    LIBRARY is a library's name or its id.
    """


def _client(remote: Remote) -> avc.Client:
    return avc.Client(
        remote.server, api_key=remote.api_key, token=remote.token, login=remote.login,
        password=remote.password, timeout=REQUEST_TIMEOUT_S,
    )


def resolve(client: avc.Client, name_or_id: str) -> avc.Library:
    """The library with this id, else the one with this name; NotFound otherwise."""
    if _UUID.match(name_or_id):
        try:
            return client.get_library(name_or_id)
        except avc.NotFound:
            pass  # a name may look like an id
        try:
            return client.library_by_name(name_or_id)
        except avc.NotFound:
            raise avc.NotFound(
                404, f"Library not found: no library has the id or the name {name_or_id!r}"
            ) from None
    return client.library_by_name(name_or_id)


def _one_line(text: str, width: int = BRIEF_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} kB"


def _shown(offset: int, count: int, total: int, what: str) -> str:
    shown = f"{offset + 1}-{offset + count}" if count else "none"
    return f"{shown} of {total} {what}"


# -- create, list, snapshot, delete


@library.command("create")
@click.argument("name")
@click.option("--description", default="", help="Free text (at most 4096 characters).")
@remote_command
def library_create(remote: Remote, as_json: bool, name: str, description: str) -> int:
    """Create an empty library NAME.

    NAME: 1-64 characters of A-Z a-z 0-9 _ . -, unique in the account (409 otherwise).
    """
    with _client(remote) as client:
        made = client.create_library(name, description)
    if as_json:
        echo_json(made.raw)
    else:
        click.echo(f"{made.library_id}  {made.name}")
    return EXIT_OK


@library.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@remote_command
def library_list(remote: Remote, as_json: bool, limit: int, offset: int) -> int:
    """The account's libraries, oldest first."""
    with _client(remote) as client:
        page = client.list_libraries(offset, limit)
    if as_json:
        echo_json({"total": page.total, "libraries": [x.raw for x in page.libraries]})
        return EXIT_OK
    rows = [
        [x.library_id, x.name, x.image_count, _one_line(x.description), when(x.created_at)]
        for x in page.libraries
    ]
    if rows:
        click.echo(table(["id", "name", "images", "description", "created"], rows))
    click.echo(_shown(offset, len(rows), page.total, "libraries"))
    return EXIT_OK


@library.command("snapshot")
@click.argument("name_or_id", metavar="LIBRARY")
@remote_command
def library_snapshot(remote: Remote, as_json: bool, name_or_id: str) -> int:
    """A library's image count and index state.

    The index is the one of the API process that answered: "ready" when it holds it in
    memory, "not loaded" before its first search there.
    """
    with _client(remote) as client:
        found = resolve(client, name_or_id)
        if found.index is None:  # found by name: its list entry has no index state
            found = client.get_library(found.library_id)
    if as_json:
        echo_json(found.raw)
        return EXIT_OK
    index = found.index
    index_text = "-" if index is None else (
        f"{index.state}, {index.entries} entries, {_megabytes(index.size_bytes)}"
    )
    rows = [
        ("id", found.library_id), ("name", found.name), ("description", found.description),
        ("images", found.image_count), ("index", index_text),
        ("created", when(found.created_at)),
    ]
    click.echo("\n".join(f"{k:<12} {v}" for k, v in rows))
    return EXIT_OK


@library.command("delete")
@click.argument("name_or_id", metavar="LIBRARY")
@click.option("--yes", "-y", is_flag=True, help="Yes, delete it and all its images.")
@remote_command
def library_delete(remote: Remote, as_json: bool, name_or_id: str, yes: bool) -> int:
    """Delete a library and all its images (needs --yes).

    Its images, their files and its index go with it. Nothing is asked: without --yes it
    refuses (exit 2).
    """
    if not yes:
        raise click.UsageError(
            f"deleting {name_or_id!r} removes all its images: give --yes to do it"
        )
    with _client(remote) as client:
        found = resolve(client, name_or_id)
        client.delete_library(found.library_id)
    if as_json:
        echo_json({"deleted": found.library_id, "name": found.name,
                   "image_count": found.image_count})
    else:
        click.echo(f"deleted library {found.name} ({found.library_id}) and its "
                   f"{found.image_count} images")
    return EXIT_OK


# -- images and remove


@library.command("images")
@click.argument("name_or_id", metavar="LIBRARY")
@click.option("--tag", help="Only the images with this tag.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@remote_command
def library_images(
    remote: Remote, as_json: bool, name_or_id: str, tag: str | None, limit: int, offset: int
) -> int:
    """A library's images, oldest first."""
    with _client(remote) as client:
        found = resolve(client, name_or_id)
        page = client.list_images(found.library_id, offset, limit, tag)
    if as_json:
        echo_json({"total": page.total, "images": [x.raw for x in page.images]})
        return EXIT_OK
    rows = [
        [x.image_id, str(x.contsign), f"{x.width}×{x.height}", ",".join(x.tags) or "-",
         _one_line(x.brief) or "-", when(x.created_at)]
        for x in page.images
    ]
    if rows:
        click.echo(table(["id", "contsign", "size", "tags", "brief", "added"], rows))
    click.echo(_shown(offset, len(rows), page.total, "images"))
    return EXIT_OK


def _check_contsigns(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[avc.ContSign]:
    try:
        return [avc.ContSign.of(v) for v in value]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@library.command("remove")
@click.argument("name_or_id", metavar="LIBRARY")
@click.argument("image_ids", nargs=-1, metavar="[IMAGE_ID...]")
@click.option(
    "--contsign", "contsigns", multiple=True, metavar="SIGN1,SIGN2", callback=_check_contsigns,
    help="Remove every image with this content signature (as `library images` shows it); "
    "repeat it for more.",
)
@remote_command
def library_remove(
    remote: Remote, as_json: bool, name_or_id: str, image_ids: tuple[str, ...],
    contsigns: list[avc.ContSign],
) -> int:
    """Remove images, by id or by content signature.

    Exit 4 if one is not there (the others are still removed).
    """
    if not image_ids and not contsigns:
        raise click.UsageError("name the images to remove: IMAGE_ID... or --contsign S1,S2")
    missing = False
    removed: list[str] = []
    with _client(remote) as client:
        library_id = resolve(client, name_or_id).library_id
        targets = [("image", i) for i in image_ids] + [("contsign", str(c)) for c in contsigns]
        for kind, target in targets:
            try:
                if kind == "image":
                    client.delete_image(library_id, target)
                else:
                    client.delete_images(library_id, target)
            except avc.NotFound as exc:
                missing = True
                print_error(exc, as_json)
                continue
            removed.append(target)
            if not as_json:
                click.echo(f"removed {target}" if kind == "image" else f"removed contsign {target}")
    if as_json:
        echo_json({"removed": removed})
    return EXIT_NOT_FOUND if missing else EXIT_OK


# -- search


@library.command("search")
@click.argument("name_or_id", metavar="LIBRARY")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mode", type=click.Choice(MODES), default="auto", show_default=True,
    help="auto: duplicates, then verified objects, then similar images; or only one kind.",
)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Hits per page.")
@click.option("--offset", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Hits to skip.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Only hits scoring at least this.")
@click.option("--tag", help="Only images with this tag.")
@remote_command
def library_search(
    remote: Remote, as_json: bool, name_or_id: str, image: Path, mode: avc.SearchMode,
    limit: int, offset: int, min_score: float, tag: str | None,
) -> int:
    """Search LIBRARY with the picture IMAGE.

    Prints its hits best first (rank, why it matched: duplicate, object or similar,
    score 0-1, brief, image id, keypoint inliers); --json prints the server's answer.
    """
    with _client(remote) as client:
        library_id = resolve(client, name_or_id).library_id
        found = client.search(library_id, image, mode=mode, limit=limit, offset=offset,
                              min_score=min_score, tag=tag)
    if as_json:
        echo_json(found.raw)
        return EXIT_OK
    click.echo(render_hits(found, offset))
    return EXIT_OK


def render_hits(found: avc.SearchResult, offset: int = 0) -> str:
    """The hits as a table (rank, match type, score, brief, image id, inliers), and a
    line saying how many, how long it took and whether there are more."""
    lines = []
    if found.results:
        rows = [
            [offset + rank, hit.match_type, round(hit.score, 4), _one_line(hit.brief) or "-",
             hit.image_id, hit.inliers]
            for rank, hit in enumerate(found.results, 1)
        ]
        lines.append(table(["#", "match", "score", "brief", "image_id", "inliers"], rows))
    count = len(found.results)
    about = f"{count} hit{'s' if count != 1 else ''}" if count else "no hits"
    about += f" (mode {found.mode}"
    if "total_ms" in found.timings:
        about += f", {fmt(found.timings['total_ms'])} ms"
    about += ")"
    if found.has_more:
        about += f"; more with --offset {offset + count}"
    lines.append(about)
    return "\n".join(lines)


# -- add


def image_files(paths: Iterable[Path]) -> list[Path]:
    """The files to add: each file given, and the image files (by suffix, not hidden) in
    each directory given and its subdirectories, in name order; each once."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [
                Path(root, name) for name in sorted(names)
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
            ]
    return list(dict.fromkeys(found))


def local_max_pixels() -> int:
    """The decode limit for local signatures: AEROVISION_MAX_IMAGE_PIXELS, else the
    server's default (a file over the server's own limit is sent, and it says so)."""
    default = int(Settings.model_fields["max_image_pixels"].default)
    try:
        return max(1, int(os.environ.get("AEROVISION_MAX_IMAGE_PIXELS", default)))
    except ValueError:
        return default


def local_contsign(data: bytes, max_pixels: int) -> avc.ContSign | None:
    """The content signature the server computes for this file — of the decoded pixels,
    BGRA flattened over white first, as :func:`aerovision.libraries.pool.describe_file`
    describes an image — or None when it cannot be computed here (the server decides)."""
    try:
        image = imageio.decode_image(data, max_pixels=max_pixels)
        if image.ndim == 3 and image.shape[2] == 4:
            image = imageio.flatten_alpha(image)
        return avc.ContSign.of(retrieval.contsign(image))
    except Exception:  # not decodable here: whatever it is, the server says why
        return None


Outcome = Literal["added", "present", "duplicate", "refused"]


@dataclass
class FileResult:
    """What became of one local file: ``added``; ``present`` (its content was in the
    library already: not sent); ``duplicate`` (the server found it in the library —
    ``image_id`` is the image there — or it has the content of an earlier file of this
    run: not sent); ``refused`` (why: ``status``, ``detail``)."""

    path: Path
    outcome: Outcome
    image_id: str | None = None
    contsign: avc.ContSign | None = None
    status: int | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path), "outcome": self.outcome, "image_id": self.image_id,
            "contsign": None if self.contsign is None else {
                "sign1": self.contsign.sign1, "sign2": self.contsign.sign2},
            "status": self.status, "detail": self.detail,
        }


def _signatures(
    files: Sequence[Path], concurrency: int, bar: ProgressBar
) -> Iterator[tuple[Path, avc.ContSign | None, OSError | None]]:
    """Each file's local signature (threads: decoding releases the GIL), in order."""
    max_pixels = local_max_pixels()

    def sign(path: Path) -> tuple[Path, avc.ContSign | None, OSError | None]:
        try:
            return path, local_contsign(path.read_bytes(), max_pixels), None
        except OSError as exc:
            return path, None, exc

    pool = ThreadPoolExecutor(concurrency)
    try:
        for item in pool.map(sign, files):
            bar.add(item[2] is None)
            bar.draw()
            yield item
    finally:  # on Ctrl-C, the files not yet read are not waited for
        pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def _clients(remote: Remote, count: int) -> Iterator[queue.Queue[avc.Client]]:
    """``count`` clients, one for each thread at a time."""
    made = [_client(remote) for _ in range(count)]
    free: queue.Queue[avc.Client] = queue.Queue()
    for one in made:
        free.put(one)
    try:
        yield free
    finally:
        for one in made:
            one.close()


def _upload(
    free: queue.Queue[avc.Client], library_id: str, batch: Sequence[Path],
    signs: dict[Path, avc.ContSign | None], brief: str | None, tags: str | None,
    dedup: avc.Dedup,
) -> list[FileResult]:
    """One request adding ``batch`` (files that cannot be read are refused here); a
    request-level refusal of the server (4xx) is raised, anything else fails the batch."""
    results: list[FileResult] = []
    uploads: list[tuple[Path, tuple[str, bytes]]] = []
    for path in batch:
        try:
            uploads.append((path, (path.name, path.read_bytes())))
        except OSError as exc:
            results.append(FileResult(path, "refused", detail=f"cannot read it: {exc}"))
    if not uploads:
        return results
    client = free.get()
    try:
        answers = client.add_images(library_id, [u for _, u in uploads], brief=brief,
                                    tags=tags, dedup=dedup)
    except avc.APIError as exc:
        if exc.status_code < 500 and exc.status_code not in (408, 429):
            raise  # about the request, not its files: every other batch would get it too
        return results + [FileResult(p, "refused", status=exc.status_code, detail=exc.message)
                          for p, _ in uploads]
    except avc.AeroVisionError as exc:
        return results + [FileResult(p, "refused", detail=str(exc)) for p, _ in uploads]
    finally:
        free.put(client)
    for (path, _), answer in zip(uploads, answers, strict=True):
        if answer.image is not None:
            results.append(FileResult(path, "added", answer.image.image_id,
                                      answer.image.contsign))
        elif answer.error is not None and answer.error.duplicate:
            existing = answer.error.existing
            assert existing is not None
            results.append(FileResult(path, "duplicate", existing.image_id, existing.contsign,
                                      answer.error.status, answer.error.detail))
        else:
            error = answer.error
            results.append(FileResult(path, "refused", contsign=signs.get(path),
                                      status=None if error is None else error.status,
                                      detail=None if error is None else error.detail))
    return results


def _batches(files: Sequence[Path], size: int) -> list[Sequence[Path]]:
    return [files[i: i + size] for i in range(0, len(files), size)]


@library.command("add")
@click.argument("name_or_id", metavar="LIBRARY")
@click.argument(
    "paths", nargs=-1, required=True, metavar="DIR_OR_FILES...",
    type=click.Path(exists=True, path_type=Path),
)
@click.option("--brief", help="Given to every image; searches return it verbatim "
              "(at most 4096 characters).")
@click.option("--tags", help="Comma-separated, at most 16, given to every image.")
@click.option(
    "--dedup", type=click.Choice(DEDUP), default="exact", show_default=True,
    help="exact: skip files whose content is in the library; near: also refuse pictures a "
    "search finds as duplicates; off: add every file, even those already there (no "
    "resuming).",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Requests (and local signatures) at once.")
@click.option("--batch", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Files per request.")
@remote_command
def library_add(
    remote: Remote, as_json: bool, name_or_id: str, paths: tuple[Path, ...], brief: str | None,
    tags: str | None, dedup: avc.Dedup, concurrency: int, batch: int,
) -> int:
    """Add images to a library; resumable.

    Takes each file given, and the PNG, JPEG, BMP and TIFF files of each directory given
    and its subdirectories (hidden ones skipped).

    Resumable: each file's content signature is computed here as the server computes it,
    and files already in the library are skipped (not sent), so running the same command
    again uploads only what is missing. A progress bar runs on stderr on a terminal; at
    the end, the files refused and a summary are printed. Exit 1 if a file was refused
    for another reason than being in the library already.
    """
    files = image_files(paths)
    if not files:
        raise click.UsageError(
            f"no image files ({' '.join(IMAGE_SUFFIXES)}) in {' '.join(map(str, paths))}"
        )
    started = time.monotonic()
    results: dict[Path, FileResult] = {}
    with _client(remote) as client:
        found = resolve(client, name_or_id)
        there: dict[avc.ContSign, str] = {}  # signature → an image of the library with it
        known = 0
        for image in [] if dedup == "off" else client.iter_images(found.library_id):
            there.setdefault(image.contsign, image.image_id)
            known += 1
    terminal = stderr_is_terminal()
    try:
        signs: dict[Path, avc.ContSign | None] = {}
        to_send: list[Path] = []
        if dedup == "off":
            to_send = list(files)
        else:
            if terminal:
                click.echo(f"checking {len(files)} files against the library's "
                           f"{known} images", err=True)
            checking = ProgressBar(len(files), enabled=terminal)
            checking.draw()
            sending: dict[avc.ContSign, Path] = {}
            for path, sign, error in _signatures(files, concurrency, checking):
                signs[path] = sign
                if error is not None:
                    results[path] = FileResult(path, "refused", detail=f"cannot read it: {error}")
                elif sign is not None and sign in there:
                    results[path] = FileResult(path, "present", there[sign], sign)
                elif sign is not None and sign in sending:
                    results[path] = FileResult(path, "duplicate", contsign=sign,
                                               detail=f"the same content as {sending[sign]}")
                else:
                    if sign is not None:
                        sending[sign] = path
                    to_send.append(path)
            checking.clear()
        _send(remote, found.library_id, to_send, signs, results, brief=brief, tags=tags,
              dedup=dedup, concurrency=concurrency, batch=batch, terminal=terminal)
    except KeyboardInterrupt:
        added = sum(r.outcome == "added" for r in results.values())
        click.echo(f"\ninterrupted after adding {added} files: run the same command again "
                   "to add the others", err=True)
        return EXIT_INTERRUPTED
    ordered = [results[p] for p in files if p in results]
    return _report(found, ordered, time.monotonic() - started, as_json)


def _send(
    remote: Remote, library_id: str, to_send: Sequence[Path],
    signs: dict[Path, avc.ContSign | None], results: dict[Path, FileResult], *,
    brief: str | None, tags: str | None, dedup: avc.Dedup, concurrency: int, batch: int,
    terminal: bool,
) -> None:
    """Upload ``to_send`` in batches, ``concurrency`` requests at once; each file's outcome
    into ``results``. A request-level refusal (4xx) stops the rest and is raised."""
    if not to_send:
        return
    if terminal:
        click.echo(f"uploading {len(to_send)} files", err=True)
    bar = ProgressBar(len(to_send), enabled=terminal)
    bar.draw()
    with _clients(remote, concurrency) as free:
        pool = ThreadPoolExecutor(concurrency)
        futures = [
            pool.submit(_upload, free, library_id, part, signs, brief, tags, dedup)
            for part in _batches(to_send, batch)
        ]
        seen: set[Future[list[FileResult]]] = set()

        def record(done: Iterable[Future[list[FileResult]]]) -> BaseException | None:
            """Each finished batch's outcomes into ``results``; the first failure."""
            failure: BaseException | None = None
            for future in done:
                if future in seen or not future.done() or future.cancelled():
                    continue
                seen.add(future)
                failure = failure or future.exception()
                for result in [] if future.exception() else future.result():
                    results[result.path] = result
                    bar.add(result.outcome != "refused")
            return failure

        stopped = False
        try:
            running = set(futures)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                failure = record(done)
                bar.draw()
                if failure is not None:
                    for other in running:
                        other.cancel()
                    raise failure
        except KeyboardInterrupt:
            stopped = True  # the requests under way end on their own
            record(futures)  # count what was added before
            raise
        finally:
            bar.clear()
            pool.shutdown(wait=not stopped, cancel_futures=True)


def _report(
    found: avc.Library, ordered: Sequence[FileResult], seconds: float, as_json: bool
) -> int:
    counts = {kind: sum(r.outcome == kind for r in ordered) for kind in get_args(Outcome)}
    if as_json:
        echo_json({
            "library_id": found.library_id, "name": found.name, "files": len(ordered),
            **counts, "seconds": round(seconds, 2), "results": [r.to_json() for r in ordered],
        })
    else:
        for r in ordered:
            if r.outcome == "refused":
                status = f"{r.status} " if r.status is not None else ""
                click.echo(f"refused    {r.path}  {status}{r.detail}")
            elif r.outcome == "duplicate" and r.image_id is not None:
                click.echo(f"duplicate  {r.path}  {r.status} {r.detail} (image {r.image_id})")
            elif r.outcome == "duplicate":
                click.echo(f"duplicate  {r.path}  {r.detail}")
        click.echo(
            f"{len(ordered)} files: {counts['added']} added, {counts['present']} already in "
            f"the library, {counts['duplicate']} duplicates, {counts['refused']} refused "
            f"({seconds:.1f} s)"
        )
    return EXIT_FAILED if counts["refused"] else EXIT_OK
