"""Image libraries and their images: the only place that queries them.

The database is the truth of a library: each image row holds what its index
entries are made of (perceptual hash, global descriptor, keypoints), so an index
is a cache that can always be rebuilt (:func:`changes_since` from generation 0).
Every add and removal takes the library's next ``generation`` while holding the
library row's lock, so generations are committed in order, and a process whose
index has seen generation *g* catches up with exactly what came after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aerovision.store.db import Database
from aerovision.store.models import (
    LibraryImageRow,
    LibraryRemovalRow,
    LibraryRow,
    utcnow,
)
from aerovision.store.scope import Owner, restrict

Dedup = Literal["exact", "near", "off"]


class NameTaken(Exception):
    """The account has a library of that name already."""


class ExternalIdTaken(Exception):
    """The library has an image with that ``external_id`` already."""


@dataclass(frozen=True)
class Library:
    library_id: str
    account_id: str
    name: str
    description: str
    image_count: int
    generation: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Image:
    """An image of a library, without its descriptors."""

    id: int
    image_id: str
    library_id: str
    contsign: int  # signed 64-bit, as stored
    width: int
    height: int
    brief: str
    tags: list[str]
    external_id: str | None
    file_key: str
    thumbnail_key: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewImage:
    """An image to add: its descriptors, computed before the transaction."""

    contsign: int
    phash: int
    vector: bytes
    features: bytes
    width: int
    height: int
    brief: str
    tags: list[str]
    external_id: str | None
    file_key: str
    thumbnail_key: str
    embedding: bytes | None = None
    embedder: str | None = None
    image_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class Entry:
    """What an index holds of one image."""

    id: int
    phash: int
    vector: bytes
    tags_text: str
    embedding: bytes | None = None
    embedder: str | None = None


@dataclass(frozen=True)
class Changes:
    """A library's changes after some generation: images added (still present),
    index entries removed, and the generation they bring the index to."""

    added: list[Entry]
    removed: list[int]
    generation: int


def _library(row: LibraryRow, count: int) -> Library:
    return Library(
        library_id=row.library_id, account_id=row.account_id, name=row.name,
        description=row.description, image_count=count, generation=row.generation,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _image(row: LibraryImageRow) -> Image:
    return Image(
        id=row.id, image_id=row.image_id, library_id=row.library_id, contsign=row.contsign,
        width=row.width, height=row.height, brief=row.brief, tags=list(row.tags),
        external_id=row.external_id, file_key=row.file_key, thumbnail_key=row.thumbnail_key,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def tags_text(tags: Sequence[str]) -> str:
    return "," + "".join(f"{t}," for t in tags)


def _count(session: Session, library_id: str) -> int:
    return int(session.scalar(
        select(func.count()).select_from(LibraryImageRow)
        .where(LibraryImageRow.library_id == library_id)
    ) or 0)


def create_library(db: Database, owner: Owner, name: str, description: str) -> Library:
    now = utcnow()
    row = LibraryRow(
        library_id=str(uuid.uuid4()), account_id=owner.account_id, name=name,
        description=description, generation=0, created_at=now, updated_at=now,
    )
    try:
        with db.write() as session:
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise NameTaken(name) from exc
    return _library(row, 0)


def list_libraries(
    db: Database, owner: Owner, *, offset: int = 0, limit: int = 100
) -> tuple[int, list[Library]]:
    counts = (
        select(LibraryImageRow.library_id, func.count().label("n"))
        .group_by(LibraryImageRow.library_id).subquery()
    )
    with db.read() as session:
        total = int(session.scalar(restrict(select(func.count()).select_from(LibraryRow), owner))
                    or 0)
        stmt = (
            restrict(select(LibraryRow, func.coalesce(counts.c.n, 0)), owner)
            .outerjoin(counts, counts.c.library_id == LibraryRow.library_id)
            .order_by(LibraryRow.created_at, LibraryRow.library_id)
            .offset(offset).limit(limit)
        )
        return total, [_library(row, int(n)) for row, n in session.execute(stmt).all()]


def get_library(db: Database, library_id: str, owner: Owner | None) -> Library | None:
    """The library if ``owner`` may see it (None: a worker acting for the deployment)."""
    stmt = select(LibraryRow).where(LibraryRow.library_id == library_id)
    with db.read() as session:
        row = session.scalars(stmt if owner is None else restrict(stmt, owner)).first()
        return None if row is None else _library(row, _count(session, library_id))


def library_by_name(db: Database, owner: Owner, name: str) -> Library | None:
    with db.read() as session:
        row = session.scalars(
            restrict(select(LibraryRow).where(LibraryRow.name == name), owner)
        ).first()
        return None if row is None else _library(row, _count(session, row.library_id))


def generation_of(db: Database, library_id: str) -> int | None:
    with db.read() as session:
        value = session.scalar(
            select(LibraryRow.generation).where(LibraryRow.library_id == library_id)
        )
        return None if value is None else int(value)


def update_library(db: Database, owner: Owner, library_id: str, description: str) -> bool:
    with db.write() as session:
        result = session.execute(restrict(
            update(LibraryRow).where(LibraryRow.library_id == library_id)
            .values(description=description, updated_at=utcnow()), owner,
        ))
        return bool(cast("CursorResult[Any]", result).rowcount)


def delete_library(db: Database, owner: Owner, library_id: str) -> list[str] | None:
    """Remove ``owner``'s library with its images; the file keys to delete (None: no
    such library)."""
    with db.write() as session:
        gone = session.execute(restrict(
            delete(LibraryRow).where(LibraryRow.library_id == library_id), owner
        ))
        if not cast("CursorResult[Any]", gone).rowcount:
            return None
        keys = session.execute(
            select(LibraryImageRow.file_key, LibraryImageRow.thumbnail_key)
            .where(LibraryImageRow.library_id == library_id)
        ).all()
        session.execute(delete(LibraryImageRow).where(LibraryImageRow.library_id == library_id))
        session.execute(
            delete(LibraryRemovalRow).where(LibraryRemovalRow.library_id == library_id)
        )
        return [key for pair in keys for key in pair]


def _next_generation(session: Session, library_id: str) -> int | None:
    """Take the library's next generation, locking its row until the commit."""
    value = session.execute(
        update(LibraryRow).where(LibraryRow.library_id == library_id)
        .values(generation=LibraryRow.generation + 1, updated_at=utcnow())
        .returning(LibraryRow.generation)
    ).scalar()
    return None if value is None else int(value)


def images_with_contsign(
    db: Database, library_id: str, contsign: int
) -> list[Image]:
    with db.read() as session:
        rows = session.scalars(
            select(LibraryImageRow).where(
                LibraryImageRow.library_id == library_id, LibraryImageRow.contsign == contsign
            ).order_by(LibraryImageRow.id)
        )
        return [_image(r) for r in rows]


def add_image(
    db: Database, owner: Owner, library_id: str, new: NewImage, *, refuse_same_sign: bool
) -> Image | tuple[Literal["duplicate"], Image] | None:
    """Add ``new`` to ``owner``'s library: the image; ``("duplicate", existing)`` when
    ``refuse_same_sign`` and an image with its content signature is there; None when
    the library is gone. Raises :class:`ExternalIdTaken`."""
    now = utcnow()
    try:
        with db.write() as session:
            owned = session.scalar(restrict(
                select(LibraryRow.library_id).where(LibraryRow.library_id == library_id), owner
            ))
            if owned is None:
                return None
            generation = _next_generation(session, library_id)
            if generation is None:
                return None
            if refuse_same_sign:
                same = session.scalars(select(LibraryImageRow).where(
                    LibraryImageRow.library_id == library_id,
                    LibraryImageRow.contsign == new.contsign,
                ).order_by(LibraryImageRow.id)).first()
                if same is not None:
                    return "duplicate", _image(same)
            row = LibraryImageRow(
                image_id=new.image_id, library_id=library_id, account_id=owner.account_id,
                generation=generation, contsign=new.contsign, phash=new.phash,
                vector=new.vector, features=new.features, width=new.width, height=new.height,
                brief=new.brief, tags=list(new.tags), tags_text=tags_text(new.tags),
                external_id=new.external_id, file_key=new.file_key,
                thumbnail_key=new.thumbnail_key, embedding=new.embedding, embedder=new.embedder,
                created_at=now, updated_at=now,
            )
            session.add(row)
            session.flush()
            return _image(row)
    except IntegrityError as exc:
        raise ExternalIdTaken(new.external_id or "") from exc


def list_images(
    db: Database, owner: Owner, library_id: str, *, offset: int = 0, limit: int = 100,
    tag: str | None = None,
) -> tuple[int, list[Image]]:
    where = [LibraryImageRow.library_id == library_id]
    if tag:
        where.append(LibraryImageRow.tags_text.like(f"%,{_like(tag)},%", escape="\\"))
    with db.read() as session:
        total = int(session.scalar(
            restrict(select(func.count()).select_from(LibraryImageRow).where(*where), owner)
        ) or 0)
        rows = session.scalars(
            restrict(select(LibraryImageRow).where(*where), owner)
            .order_by(LibraryImageRow.id).offset(offset).limit(limit)
        )
        return total, [_image(r) for r in rows]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_image(db: Database, owner: Owner | None, library_id: str, image_id: str) -> Image | None:
    stmt = select(LibraryImageRow).where(
        LibraryImageRow.library_id == library_id, LibraryImageRow.image_id == image_id
    )
    with db.read() as session:
        row = session.scalars(stmt if owner is None else restrict(stmt, owner)).first()
        return None if row is None else _image(row)


def images_by_ids(db: Database, ids: Iterable[int]) -> dict[int, Image]:
    wanted = list(ids)
    if not wanted:
        return {}
    with db.read() as session:
        rows = session.scalars(select(LibraryImageRow).where(LibraryImageRow.id.in_(wanted)))
        return {r.id: _image(r) for r in rows}


def features_by_ids(db: Database, ids: Iterable[int]) -> dict[int, bytes]:
    wanted = list(ids)
    if not wanted:
        return {}
    with db.read() as session:
        rows = session.execute(
            select(LibraryImageRow.id, LibraryImageRow.features)
            .where(LibraryImageRow.id.in_(wanted))
        ).all()
        return {int(i): bytes(f) for i, f in rows}


def update_image(
    db: Database, owner: Owner, library_id: str, image_id: str, *,
    brief: str | None = None, tags: list[str] | None = None,
    by_contsign: int | None = None,
) -> list[Image]:
    """Change the brief and/or tags of ``owner``'s image (or of every image with
    ``by_contsign``); the images changed (none: not there). A tag change takes a new
    generation, so indexes pick up the new tags."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    if brief is not None:
        values["brief"] = brief
    if tags is not None:
        values["tags"] = list(tags)
        values["tags_text"] = tags_text(tags)
    where = [LibraryImageRow.library_id == library_id]
    where.append(
        LibraryImageRow.contsign == by_contsign if by_contsign is not None
        else LibraryImageRow.image_id == image_id
    )
    with db.write() as session:
        ids = list(session.scalars(restrict(select(LibraryImageRow.id).where(*where), owner)))
        if not ids:
            return []
        if tags is not None:  # each old entry goes, then the rows come back with new tags
            for number in ids:
                session.add(LibraryRemovalRow(
                    library_id=library_id, generation=_next_generation(session, library_id),
                    image=number, account_id=owner.account_id,
                ))
                session.flush()
            values["generation"] = _next_generation(session, library_id)
        session.execute(update(LibraryImageRow).where(LibraryImageRow.id.in_(ids)).values(**values))
        rows = session.scalars(select(LibraryImageRow).where(LibraryImageRow.id.in_(ids)))
        return [_image(r) for r in rows]


def delete_images(
    db: Database, owner: Owner, library_id: str, *, image_id: str | None = None,
    contsign: int | None = None,
) -> list[Image]:
    """Remove ``owner``'s image ``image_id``, or every image with ``contsign``; the
    images removed (their files are the caller's to delete)."""
    where = [LibraryImageRow.library_id == library_id]
    where.append(
        LibraryImageRow.image_id == image_id if image_id is not None
        else LibraryImageRow.contsign == contsign
    )
    with db.write() as session:
        rows = list(session.scalars(restrict(select(LibraryImageRow).where(*where), owner)))
        if not rows:
            return []
        for row in rows:
            generation = _next_generation(session, library_id)
            if generation is None:
                return []
            session.add(LibraryRemovalRow(
                library_id=library_id, generation=generation, image=row.id,
                account_id=owner.account_id,
            ))
        session.execute(delete(LibraryImageRow).where(LibraryImageRow.id.in_([r.id for r in rows])))
        return [_image(r) for r in rows]


def changes_since(db: Database, library_id: str, generation: int) -> Changes | None:
    """What changed in a library after ``generation`` (0: everything); None when the
    library is gone. Read in one transaction, so the answer is one consistent view."""
    with db.read() as session, session.begin():
        current = session.scalar(
            select(LibraryRow.generation).where(LibraryRow.library_id == library_id)
        )
        if current is None:
            return None
        added = [
            Entry(int(i), int(p), bytes(v), str(t), None if e is None else bytes(e), m)
            for i, p, v, t, e, m in session.execute(
                select(LibraryImageRow.id, LibraryImageRow.phash, LibraryImageRow.vector,
                       LibraryImageRow.tags_text, LibraryImageRow.embedding,
                       LibraryImageRow.embedder)
                .where(LibraryImageRow.library_id == library_id,
                       LibraryImageRow.generation > generation,
                       LibraryImageRow.generation <= current)
                .order_by(LibraryImageRow.id)
            ).all()
        ]
        removed = [] if generation == 0 else [
            int(i) for i in session.scalars(
                select(LibraryRemovalRow.image).where(
                    LibraryRemovalRow.library_id == library_id,
                    LibraryRemovalRow.generation > generation,
                    LibraryRemovalRow.generation <= current,
                )
            )
        ]
        return Changes(added, removed, int(current))


def set_embedding(
    db: Database, library_id: str, number: int, embedding: bytes, embedder: str
) -> bool:
    """Store the embedding of image ``number`` (made after it was added), taking new
    generations like a tag change, so every index picks it up."""
    with db.write() as session:
        row = session.scalars(select(LibraryImageRow).where(
            LibraryImageRow.id == number, LibraryImageRow.library_id == library_id
        )).first()
        if row is None:
            return False
        session.add(LibraryRemovalRow(
            library_id=library_id, generation=_next_generation(session, library_id),
            image=number, account_id=row.account_id,
        ))
        session.flush()
        row.embedding, row.embedder = embedding, embedder
        row.generation = _next_generation(session, library_id) or row.generation
        return True


def unembedded(db: Database, library_id: str, embedder: str, limit: int) -> list[Image]:
    """Up to ``limit`` images of a library without an embedding by ``embedder``."""
    with db.read() as session:
        rows = session.scalars(select(LibraryImageRow).where(
            LibraryImageRow.library_id == library_id,
            (LibraryImageRow.embedder.is_(None)) | (LibraryImageRow.embedder != embedder),
        ).order_by(LibraryImageRow.id).limit(limit))
        return [_image(r) for r in rows]


def total_images(db: Database, owner: Owner) -> int:
    with db.read() as session:
        return int(session.scalar(
            restrict(select(func.count()).select_from(LibraryImageRow), owner)
        ) or 0)
