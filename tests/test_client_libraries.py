"""The libraries methods of aerovision.client (sync and async) against a real
`aerovision serve`: their result types and their errors."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from aerovision import client as avc
from tests import library_truth as truth
from tests.server import ServeProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("client-libraries") / "data", workers=0).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServeProcess) -> Iterator[avc.Client]:
    with avc.Client(server.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return dict(truth.library_images())


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _png(image: np.ndarray) -> bytes:
    return truth.encode(image)


BROKEN = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def test_libraries_are_created_listed_found_changed_and_deleted(client: avc.Client) -> None:
    name = _name("crud")
    made = client.create_library(name, "line 3")
    assert isinstance(made, avc.Library)
    assert (made.name, made.description, made.image_count) == (name, "line 3", 0)
    assert made.created_at is not None and made.raw["library_id"] == made.library_id

    with pytest.raises(avc.Conflict, match=f"library named {name!r}") as taken:
        client.create_library(name)
    assert taken.value.status_code == 409
    with pytest.raises(avc.InvalidRequest) as bad:
        client.create_library("a b")
    assert bad.value.errors[0]["loc"] == ["body", "name"]

    page = client.list_libraries(limit=1000)
    assert isinstance(page, avc.LibraryPage) and page.total == len(page.libraries)
    assert all(isinstance(x, avc.Library) and x.index is None for x in page.libraries)
    assert made.library_id in [x.library_id for x in page.libraries]
    assert client.list_libraries(offset=page.total).libraries == []

    shown = client.get_library(made.library_id)
    assert isinstance(shown.index, avc.LibraryIndex)
    assert shown.index.state in ("ready", "not loaded") and shown.index.entries == 0
    assert client.library_by_name(name).library_id == made.library_id

    changed = client.update_library(made.library_id, "line 4")
    assert isinstance(changed, avc.Library) and changed.description == "line 4"

    client.delete_library(made.library_id)
    for call in (client.get_library, client.delete_library,
                 lambda i: client.update_library(i, "x"), client.list_images):
        with pytest.raises(avc.NotFound, match="Library not found"):
            call(made.library_id)
    with pytest.raises(avc.NotFound, match="no library named") as missing:
        client.library_by_name(name)
    assert missing.value.status_code == 404


def test_library_by_name_pages_through_the_list(
    client: avc.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [_name("paged") for _ in range(3)]
    made = [client.create_library(n) for n in names]
    monkeypatch.setattr(avc, "LIBRARY_PAGE", 1)
    assert client.library_by_name(names[-1]).library_id == made[-1].library_id
    with pytest.raises(avc.NotFound):
        client.library_by_name(_name("absent"))


def test_add_images_says_what_became_of_each_file(
    client: avc.Client, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    library_id = client.create_library(_name("add")).library_id
    path = tmp_path / "astronaut.png"
    path.write_bytes(_png(photos["astronaut"]))
    files: list[avc.FileInput] = [
        path,                                         # a path
        _png(photos["coffee"]),                       # bytes
        io.BytesIO(truth.encode(photos["chelsea"], ".jpg")),  # a file object
        ("broken.png", BROKEN),                       # a (filename, data) pair
        ("again.png", _png(photos["astronaut"])),     # the same content as the first
    ]
    added = client.add_images(library_id, files, brief="catalogue 7", tags=["steel", "m8"])
    assert [type(a) for a in added] == [avc.AddResult] * 5
    assert [a.ok for a in added] == [True, True, True, False, False]
    assert [a.filename for a in added] == ["astronaut.png", "image.png", "image.jpg",
                                           "broken.png", "again.png"]
    first = added[0].image
    assert isinstance(first, avc.LibraryImage)
    assert (first.height, first.width) == photos["astronaut"].shape[:2]
    assert (first.brief, first.tags, first.external_id) == ("catalogue 7", ["steel", "m8"], None)
    assert isinstance(first.contsign, avc.ContSign)
    assert first.image.startswith(f"libraries/{library_id}/images/")
    assert first.thumbnail.startswith(f"libraries/{library_id}/thumbnails/")
    assert first.created_at is not None

    broken = added[3].error
    assert isinstance(broken, avc.AddRefused)
    assert (broken.status, broken.filename, broken.duplicate) == (422, "broken.png", False)
    assert broken.existing is None and broken.detail
    same = added[4].error
    assert same is not None and same.duplicate and same.status == 409
    assert same.detail == "duplicated add"
    assert isinstance(same.existing, avc.LibraryImage)
    assert same.existing.image_id == first.image_id

    # one file alone, tags as text, an external id; near refuses a re-encoding
    one = client.add_images(library_id, ("moon.png", _png(photos["moon"])), tags="a, b",
                            external_id="sku-1")
    assert len(one) == 1 and one[0].image is not None
    assert (one[0].image.tags, one[0].image.external_id) == (["a", "b"], "sku-1")
    jpeg = truth.encode(photos["coffee"], ".jpg")
    near = client.add_images(library_id, [jpeg], dedup="near")[0]
    assert near.error is not None and near.error.duplicate
    assert near.error.existing is not None
    assert near.error.existing.image_id == added[1].image.image_id  # type: ignore[union-attr]
    assert client.add_images(library_id, [jpeg], dedup="exact")[0].ok
    assert client.add_images(library_id, [_png(photos["moon"])], dedup="off")[0].ok
    assert client.get_library(library_id).image_count == 6

    with pytest.raises(avc.InvalidRequest, match="external_id"):
        client.add_images(library_id, [BROKEN, BROKEN], external_id="x")
    with pytest.raises(avc.InvalidRequest, match="at most 100 files"):
        client.add_images(library_id, [BROKEN] * 101)
    with pytest.raises(avc.InvalidRequest, match="tags"):
        client.add_images(library_id, [BROKEN], tags=[f"t{i}" for i in range(17)])
    with pytest.raises(ValueError, match="comma"):
        client.add_images(library_id, [BROKEN], tags=["a,b"])
    with pytest.raises(ValueError, match="at least one file"):
        client.add_images(library_id, [])
    with pytest.raises(avc.NotFound, match="Library not found"):
        client.add_images(str(uuid.uuid4()), [BROKEN])


def test_images_are_listed_changed_and_removed(
    client: avc.Client, photos: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    library_id = client.create_library(_name("images")).library_id
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
    for i, name in enumerate(names):
        client.add_images(library_id, [_png(photos[name])], brief=name,
                          tags="odd" if i % 2 else "even")
    page = client.list_images(library_id, offset=1, limit=2)
    assert isinstance(page, avc.ImagePage) and page.total == 5
    assert [i.brief for i in page.images] == ["coffee", "chelsea"]
    evens = client.list_images(library_id, tag="even")
    assert evens.total == 3 and {i.tags[0] for i in evens.images} == {"even"}
    monkeypatch.setattr(avc, "LIBRARY_PAGE", 2)
    every = list(client.iter_images(library_id))
    assert [i.brief for i in every] == names
    assert [i.brief for i in client.iter_images(library_id, tag="odd")] == ["coffee", "rocket"]

    one = every[0]
    got = client.get_image(library_id, one.image_id)
    assert isinstance(got, avc.LibraryImage) and got == one
    changed = client.update_image(library_id, one.image_id, brief="a new brief")
    assert (changed.brief, changed.tags) == ("a new brief", ["even"])
    changed = client.update_image(library_id, one.image_id, tags="x, y")
    assert (changed.brief, changed.tags) == ("a new brief", ["x", "y"])
    assert client.update_image(library_id, one.image_id, tags=[]).tags == []
    with pytest.raises(avc.InvalidRequest):
        client.update_image(library_id, one.image_id, tags=["t"] * 17)

    client.delete_image(library_id, one.image_id)
    for call in (client.get_image, client.delete_image,
                 lambda lib, i: client.update_image(lib, i, brief="x")):
        with pytest.raises(avc.NotFound, match="Image not found"):
            call(library_id, one.image_id)
    # by content signature: a ContSign, a pair, text
    signs: list[avc.ContSign | tuple[int, int] | str] = [
        every[1].contsign, (every[2].contsign.sign1, every[2].contsign.sign2),
        str(every[3].contsign),
    ]
    for image, sign in zip(every[1:4], signs, strict=True):
        client.delete_images(library_id, sign)
        with pytest.raises(avc.NotFound):
            client.get_image(library_id, image.image_id)
    with pytest.raises(avc.NotFound, match="No image has this content signature"):
        client.delete_images(library_id, every[1].contsign)
    assert [i.image_id for i in client.iter_images(library_id)] == [every[4].image_id]
    with pytest.raises(ValueError):
        client.delete_images(library_id, "1,x")


def test_search_hits_are_typed(client: avc.Client, photos: dict[str, np.ndarray]) -> None:
    library_id = client.create_library(_name("search")).library_id
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "page", "coins"]
    added = {name: client.add_images(library_id, [_png(photos[name])], brief=f"the {name}",
                                     tags=[name])[0].image for name in names}
    coffee = added["coffee"]
    assert coffee is not None
    jpeg = cv2.imencode(".jpg", photos["coffee"], [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()

    found = client.search(library_id, jpeg)
    assert isinstance(found, avc.SearchResult) and found.mode == "auto"
    assert 1 <= len(found.results) <= 10 and isinstance(found.has_more, bool)
    assert "total_ms" in found.timings and all(isinstance(v, float)
                                               for v in found.timings.values())
    top = found.results[0]
    assert isinstance(top, avc.Hit) and top.match_type == "duplicate"
    assert (top.image_id, top.brief, top.tags, top.contsign) == (
        coffee.image_id, "the coffee", ["coffee"], coffee.contsign)
    assert top.external_id is None and top.thumbnail == coffee.thumbnail
    assert 0.9 <= top.score <= 1
    scores = [h.score for h in found.results if h.match_type == "similar"]
    assert scores == sorted(scores, reverse=True)

    paged = client.search(library_id, jpeg, limit=1, offset=1)
    assert len(paged.results) == 1 and paged.results[0].image_id == found.results[1].image_id
    assert client.search(library_id, jpeg, tag="rocket").results[0].image_id == \
        added["rocket"].image_id  # type: ignore[union-attr]
    assert all(h.score >= 0.99 for h in client.search(library_id, jpeg, min_score=0.99).results)

    scene = truth.object_query(photos["astronaut"], np.random.default_rng(3), 0)
    objects = client.search(library_id, ("scene.png", _png(scene.query)), mode="object")
    assert objects.mode == "object" and objects.results
    hit = objects.results[0]
    assert hit.image_id == added["astronaut"].image_id  # type: ignore[union-attr]
    assert hit.match_type == "object" and hit.inliers is not None and hit.inliers > 10
    assert hit.homography is not None and np.array(hit.homography).shape == (3, 3)
    assert hit.polygon is not None and np.array(hit.polygon).shape == (4, 2)
    assert np.abs(np.array(hit.polygon) - scene.polygon).max() < 20

    with pytest.raises(avc.InvalidRequest, match="image"):
        client.search(library_id, b"not an image")
    with pytest.raises(avc.InvalidRequest, match="limit"):
        client.search(library_id, jpeg, limit=0)
    with pytest.raises(avc.NotFound, match="Library not found"):
        client.search(str(uuid.uuid4()), jpeg)
    empty = client.create_library(_name("empty")).library_id
    nothing = client.search(empty, jpeg)
    assert (nothing.results, nothing.has_more) == ([], False)


def test_the_async_client_has_the_same_methods(
    server: ServeProcess, photos: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with avc.AsyncClient(server.base_url, timeout=120) as av:
            name = _name("async")
            made = await av.create_library(name)
            assert isinstance(made, avc.Library)
            with pytest.raises(avc.Conflict):
                await av.create_library(name)
            assert (await av.library_by_name(name)).library_id == made.library_id
            library_id = made.library_id
            added = await av.add_images(library_id, [_png(photos["coffee"]),
                                                     _png(photos["moon"]), BROKEN])
            assert [a.ok for a in added] == [True, True, False]
            monkeypatch.setattr(avc, "LIBRARY_PAGE", 1)
            listed = [i async for i in av.iter_images(library_id)]
            assert [i.image_id for i in listed] == [a.image.image_id for a in added[:2]
                                                    if a.image is not None]
            assert (await av.list_images(library_id)).total == 2
            image = listed[0]
            assert await av.get_image(library_id, image.image_id) == image
            changed = await av.update_image(library_id, image.image_id, brief="cup", tags="c")
            assert (changed.brief, changed.tags) == ("cup", ["c"])
            jpeg = truth.encode(photos["coffee"], ".jpg")
            found = await av.search(library_id, jpeg, mode="duplicate")
            assert [h.image_id for h in found.results] == [image.image_id]
            assert found.results[0].brief == "cup"
            await av.delete_images(library_id, listed[1].contsign)
            await av.delete_image(library_id, image.image_id)
            with pytest.raises(avc.NotFound):
                await av.delete_image(library_id, image.image_id)
            assert (await av.update_library(library_id, "d")).description == "d"
            assert (await av.get_library(library_id)).image_count == 0
            assert (await av.list_libraries(limit=1000)).total >= 1
            await av.delete_library(library_id)
            with pytest.raises(avc.NotFound):
                await av.get_library(library_id)
            with pytest.raises(avc.NotFound):
                await av.library_by_name(name)

    asyncio.run(scenario())


def test_contsign_takes_every_form() -> None:
    sign = avc.ContSign(1, 2)
    assert str(sign) == "1,2" and sign.value == (1 << 32) | 2
    assert avc.ContSign.of(sign) is sign
    assert avc.ContSign.of((1, 2)) == avc.ContSign.of("1,2") == avc.ContSign.of(sign.value)
    assert avc.ContSign.of(" 4294967295, 0") == avc.ContSign(2**32 - 1, 0)
    for bad in ("1", "1,2,3", "a,b", "-1,2", (2**32, 0), (0, -1), -1, 2**64, True):
        with pytest.raises(ValueError):
            avc.ContSign.of(bad)
    assert {sign: 1}[avc.ContSign(1, 2)] == 1  # hashable: a key of what is in a library
