"""Image libraries over HTTP (SPEC-libraries.md): CRUD, adds with per-file outcomes and
dedup, images, downloads, and search with ground truth from real photographs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from tests import library_truth as truth
from tests.api.conftest import serve_for_module
from tests.server import ServeProcess

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    with serve_for_module(request, backend, "libraries", workers=0) as proc:
        yield proc


def _create(api: ServeProcess, name: str, description: str = "") -> dict[str, Any]:
    answer = requests.post(api.url("/api/v1/libraries"),
                           json={"name": name, "description": description}, timeout=30)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _add(api: ServeProcess, library_id: str, files: list[tuple[str, bytes]],
         **fields: str) -> list[dict[str, Any]]:
    answer = requests.post(
        api.url(f"/api/v1/libraries/{library_id}/images"),
        files=[("image", (name, data)) for name, data in files], data=fields, timeout=300,
    )
    assert answer.status_code == 201, answer.text
    images: list[dict[str, Any]] = answer.json()["images"]
    return images


def _search(api: ServeProcess, library_id: str, image: bytes, **fields: Any) -> dict[str, Any]:
    answer = requests.post(api.url(f"/api/v1/libraries/{library_id}/search"),
                           files={"image": ("q.png", image)}, data=fields, timeout=120)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_library_is_created_listed_changed_and_deleted(api: ServeProcess) -> None:
    created = _create(api, "parts-a", "line 3")
    assert set(created) == {"library_id", "name", "description", "image_count", "created_at",
                            "index"}
    assert created["name"] == "parts-a" and created["image_count"] == 0
    library_id = created["library_id"]
    again = requests.post(api.url("/api/v1/libraries"), json={"name": "parts-a"}, timeout=10)
    assert again.status_code == 409 and "parts-a" in again.json()["detail"]
    for bad in ("", "a b", "x" * 65, "naïve", "a/b"):
        refused = requests.post(api.url("/api/v1/libraries"), json={"name": bad}, timeout=10)
        assert refused.status_code == 422, bad
        assert refused.json()["detail"][0]["loc"] == ["body", "name"]
    listed = requests.get(api.url("/api/v1/libraries"), timeout=10).json()
    assert listed["total"] >= 1
    named = requests.get(api.url("/api/v1/libraries"), params={"name": "parts-a"},
                         timeout=10).json()
    assert named["total"] == 1 and named["libraries"][0]["library_id"] == created["library_id"]
    assert requests.get(api.url("/api/v1/libraries"), params={"name": "nope"},
                        timeout=10).json() == {"total": 0, "libraries": []}
    assert library_id in [lib["library_id"] for lib in listed["libraries"]]
    shown = requests.get(api.url(f"/api/v1/libraries/{library_id}"), timeout=10).json()
    assert shown["index"]["entries"] == 0
    patched = requests.patch(api.url(f"/api/v1/libraries/{library_id}"),
                             json={"description": "line 4"}, timeout=10)
    assert patched.status_code == 200 and patched.json()["description"] == "line 4"
    assert requests.delete(api.url(f"/api/v1/libraries/{library_id}"), timeout=10).status_code \
        == 204
    for method in ("get", "delete"):
        gone = getattr(requests, method)(api.url(f"/api/v1/libraries/{library_id}"), timeout=10)
        assert gone.status_code == 404 and gone.json() == {"detail": "Library not found"}
    assert requests.get(api.url("/api/v1/libraries/not-a-uuid"), timeout=10).status_code == 404


def test_a_batch_keeps_its_good_files_and_says_why_others_were_refused(
    api: ServeProcess,
) -> None:
    library_id = _create(api, "batch")["library_id"]
    photos = truth.library_images()[:3]
    files = [(f"{name}.png", truth.encode(image)) for name, image in photos]
    files.insert(1, ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40))
    files.append(("empty.jpg", b""))
    images = _add(api, library_id, files, brief="catalogue 7", tags="steel, bolts,steel")
    assert len(images) == 5
    assert images[1]["error"]["status"] == 422 and images[1]["error"]["filename"] == "broken.png"
    assert images[4]["error"] == {"status": 422, "detail": "the file is empty",
                                  "filename": "empty.jpg"}
    added = [images[0], images[2], images[3]]
    for entry, (_, image) in zip(added, photos, strict=True):
        assert set(entry) == {"image_id", "contsign", "width", "height", "brief", "tags",
                              "external_id", "image", "thumbnail", "created_at"}
        assert (entry["height"], entry["width"]) == image.shape[:2]
        assert entry["brief"] == "catalogue 7" and entry["tags"] == ["steel", "bolts"]
        assert 0 <= entry["contsign"]["sign1"] < 2**32 and 0 <= entry["contsign"]["sign2"] < 2**32
        download = requests.get(api.url("/" + entry["image"]), timeout=10)
        assert download.status_code == 200 and download.headers["content-type"] == "image/png"
        thumb = requests.get(api.url("/" + entry["thumbnail"]), timeout=10)
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    shown = requests.get(api.url(f"/api/v1/libraries/{library_id}"), timeout=10).json()
    assert shown["image_count"] == 3

    # the same content again: refused with the image already there (exact, the default)
    name, image = photos[0]
    same = _add(api, library_id, [("again.png", truth.encode(image))])[0]
    assert same["error"]["status"] == 409 and same["error"]["detail"] == "duplicated add"
    assert same["error"]["image"]["image_id"] == added[0]["image_id"]
    # the same picture re-encoded: only near refuses it
    jpeg = truth.encode(image, ".jpg")
    near = _add(api, library_id, [("again.jpg", jpeg)], dedup="near")[0]
    assert near["error"]["status"] == 409
    assert near["error"]["image"]["image_id"] == added[0]["image_id"]
    kept = _add(api, library_id, [("again.jpg", jpeg)], dedup="exact")[0]
    assert "error" not in kept
    twice = _add(api, library_id, [("again.png", truth.encode(image))], dedup="off")[0]
    assert "error" not in twice and twice["contsign"] == added[0]["contsign"]


def test_images_are_listed_by_tag_changed_and_removed(api: ServeProcess) -> None:
    library_id = _create(api, "images")["library_id"]
    photos = truth.library_images()[3:6]
    first = _add(api, library_id, [("a.png", truth.encode(photos[0][1]))], tags="red",
                 external_id="sku-1")[0]
    assert first["external_id"] == "sku-1"
    taken = _add(api, library_id, [("b.png", truth.encode(photos[1][1]))], external_id="sku-1")
    assert taken[0]["error"]["status"] == 409 and "sku-1" in taken[0]["error"]["detail"]
    rest = _add(api, library_id, [(f"{n}.png", truth.encode(i)) for n, i in photos[1:]],
                tags="blue")
    base = f"/api/v1/libraries/{library_id}/images"
    listed = requests.get(api.url(base), timeout=10).json()
    assert listed["total"] == 3
    assert [i["image_id"] for i in listed["images"]] == [first["image_id"]] + [
        i["image_id"] for i in rest]
    blue = requests.get(api.url(base), params={"tag": "blue"}, timeout=10).json()
    assert blue["total"] == 2
    page = requests.get(api.url(base), params={"offset": 1, "limit": 1}, timeout=10).json()
    assert page["total"] == 3 and page["images"][0]["image_id"] == rest[0]["image_id"]

    patched = requests.patch(api.url(f"{base}/{first['image_id']}"),
                             json={"brief": "new", "tags": ["blue"]}, timeout=10)
    assert patched.status_code == 200, patched.text
    assert patched.json()["brief"] == "new" and patched.json()["tags"] == ["blue"]
    only_blue = _search(api, library_id, truth.encode(photos[0][1]), tag="blue")
    assert only_blue["results"][0]["image_id"] == first["image_id"]
    assert only_blue["results"][0]["brief"] == "new"
    red = _search(api, library_id, truth.encode(photos[0][1]), tag="red")
    assert red["results"] == []

    assert requests.delete(api.url(f"{base}/{first['image_id']}"), timeout=10).status_code == 204
    assert requests.get(api.url(f"{base}/{first['image_id']}"), timeout=10).status_code == 404
    assert requests.get(api.url("/" + first["image"]), timeout=10).status_code == 404
    found = _search(api, library_id, truth.encode(photos[0][1]), mode="duplicate")
    assert found["results"] == []
    sign = rest[0]["contsign"]
    by_sign = requests.delete(api.url(base), params={"contsign": f"{sign['sign1']},"
                                                     f"{sign['sign2']}"}, timeout=10)
    assert by_sign.status_code == 204
    assert requests.get(api.url(base), timeout=10).json()["total"] == 1
    again = requests.delete(api.url(base), params={"contsign": f"{sign['sign1']},"
                                                   f"{sign['sign2']}"}, timeout=10)
    assert again.status_code == 404
    bad = requests.delete(api.url(base), params={"contsign": "x"}, timeout=10)
    assert bad.status_code == 422


def test_an_empty_library_answers_with_no_results(api: ServeProcess) -> None:
    library_id = _create(api, "empty")["library_id"]
    for mode in ("auto", "duplicate", "object", "similar"):
        found = _search(api, library_id, truth.encode(truth.library_images()[0][1]), mode=mode)
        assert found["mode"] == mode and found["results"] == [] and found["has_more"] is False
    not_image = requests.post(api.url(f"/api/v1/libraries/{library_id}/search"),
                              files={"image": ("q.png", b"hello")}, timeout=30)
    assert not_image.status_code == 422
    assert not_image.json()["detail"][0]["loc"] == ["body", "image"]
    bad_mode = requests.post(api.url(f"/api/v1/libraries/{library_id}/search"),
                             files={"image": ("q.png", b"x")}, data={"mode": "fuzzy"},
                             timeout=30)
    assert bad_mode.status_code == 422


@pytest.fixture(scope="module")
def catalogue(api: ServeProcess) -> tuple[str, dict[str, str]]:
    """A library of every ground-truth image: its id and each name's image_id."""
    library_id = _create(api, "catalogue")["library_id"]
    photos = truth.library_images()
    images = _add(api, library_id, [(f"{n}.png", truth.encode(i)) for n, i in photos])
    assert all("error" not in i for i in images)
    for (name, _), image in zip(photos, images, strict=True):
        requests.patch(api.url(f"/api/v1/libraries/{library_id}/images/{image['image_id']}"),
                       json={"brief": name}, timeout=10)
    return library_id, {n: i["image_id"] for (n, _), i in zip(photos, images, strict=True)}


def test_near_duplicates_are_found_as_duplicates(
    api: ServeProcess, catalogue: tuple[str, dict[str, str]]
) -> None:
    library_id, ids = catalogue
    rng = np.random.default_rng(11)
    misses = []
    queries = 0
    for name, image in truth.library_images():
        for _ in range(2):
            note, query = truth.near_duplicate(image, rng)
            found = _search(api, library_id, truth.encode(query, ".jpg"), mode="duplicate")
            queries += 1
            top = found["results"][:1]
            if not top or top[0]["image_id"] != ids[name] or top[0]["match_type"] != "duplicate":
                misses.append((name, note, top))
    assert 1 - len(misses) / queries >= 0.98, misses


def test_objects_are_found_with_their_outline(
    api: ServeProcess, catalogue: tuple[str, dict[str, str]]
) -> None:
    library_id, ids = catalogue
    rng = np.random.default_rng(5)
    misses, errors = [], []
    photos = truth.library_images()
    for i, (name, image) in enumerate(photos):
        case = truth.object_query(image, rng, i)
        found = _search(api, library_id, truth.encode(case.query), mode="object", limit=3)
        top = found["results"][:1]
        if not top or top[0]["image_id"] != ids[name]:
            misses.append((name, case.note))
            continue
        hit = top[0]
        assert found["query"] == {"width": case.query.shape[1], "height": case.query.shape[0]}
        assert set(hit) == {"image_id", "score", "match_type", "brief", "tags", "contsign",
                            "external_id", "image", "thumbnail", "width", "height", "inliers",
                            "homography", "polygon"}
        assert (hit["height"], hit["width"]) == image.shape[:2] and hit["external_id"] is None
        assert hit["match_type"] == "object" and hit["inliers"] >= 12
        assert len(hit["homography"]) == 3 and len(hit["polygon"]) == 4
        errors.append(float(np.median(np.linalg.norm(
            np.array(hit["polygon"]) - case.polygon, axis=1))))
        # the homography maps the library image's corners onto the polygon
        h, w = image.shape[:2]
        corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], float)
        mapped = corners @ np.array(hit["homography"]).T
        assert np.allclose(mapped[:, :2] / mapped[:, 2:], hit["polygon"], atol=0.05)
    # the scales at which SIFT finds too few keypoints on a small, plain object are the
    # known gap (the note): at least 3 in 4 of these random cases are found
    assert len(misses) <= len(photos) // 4, misses
    assert float(np.median(errors)) <= 5.0, errors


def test_distractors_get_no_duplicate_or_object_hit(
    api: ServeProcess, catalogue: tuple[str, dict[str, str]]
) -> None:
    library_id, _ = catalogue
    for image in truth.distractors():
        found = _search(api, library_id, truth.encode(image), mode="auto", limit=20)
        kinds = {hit["match_type"] for hit in found["results"]}
        assert kinds <= {"similar"}, found["results"][:3]
        assert all("polygon" not in hit and "inliers" not in hit for hit in found["results"])
        assert len(found["results"]) == 16 and found["has_more"] is False
        scores = [hit["score"] for hit in found["results"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_auto_mode_ranks_duplicates_then_objects_then_similar(
    api: ServeProcess, catalogue: tuple[str, dict[str, str]]
) -> None:
    library_id, ids = catalogue
    photos = dict(truth.library_images())
    # coffee as a whole picture, with chelsea pasted into its corner as an object
    coffee = photos["coffee"].copy()
    cat = truth.colour(photos["chelsea"])
    small = np.ascontiguousarray(cat[::2, ::2])
    coffee[: small.shape[0], : small.shape[1]] = small
    found = _search(api, library_id, truth.encode(coffee), limit=5)
    assert found["mode"] == "auto"
    kinds = [(hit["image_id"], hit["match_type"]) for hit in found["results"]]
    assert kinds[0] == (ids["coffee"], "duplicate"), kinds
    assert kinds[1] == (ids["chelsea"], "object"), kinds
    assert all(kind == "similar" for _, kind in kinds[2:]), kinds
    assert found["has_more"] is True
    assert found["results"][0]["brief"] == "coffee"
    paged = _search(api, library_id, truth.encode(coffee), limit=2, offset=1)
    assert [h["image_id"] for h in paged["results"]] == [k for k, _ in kinds[1:3]]
    picky = _search(api, library_id, truth.encode(coffee), min_score=0.99)
    assert all(hit["score"] >= 0.99 for hit in picky["results"])


@pytest.fixture(scope="module")
def worker_api(request: pytest.FixtureRequest, backend: str) -> Iterator[ServeProcess]:
    """A server with a worker: the search tool runs as a task."""
    with serve_for_module(request, backend, "search-tool", workers=1) as proc:
        yield proc


def test_search_is_a_tool_a_task_and_a_chain_step(worker_api: ServeProcess) -> None:
    api = worker_api
    library_id = _create(api, "tool")["library_id"]
    photos = truth.library_images()[:4]
    _add(api, library_id, [(f"{n}.png", truth.encode(i)) for n, i in photos])
    case = truth.object_query(photos[1][1], np.random.default_rng(3), 1)
    submitted = requests.post(
        api.url("/api/v1/match/search"), files={"image": ("scene.png", truth.encode(case.query))},
        data={"library_id": library_id, "mode": "object", "limit": 3}, timeout=60,
    )
    assert submitted.status_code == 201, submitted.text
    task = api.wait_task(submitted.json()["uid"], timeout=120)
    assert task["status"] == "done", task
    data = task["result_data"]
    assert data["library_id"] == library_id and data["mode"] == "object"
    assert data["hits"] == len(data["results"]) >= 1 and data["found"] >= 1
    assert data["best_match_type"] == "object"
    top = data["results"][0]
    direct = _search(api, library_id, truth.encode(case.query), mode="object", limit=3)
    assert top["image_id"] == direct["results"][0]["image_id"]
    assert top["polygon"] == direct["results"][0]["polygon"]
    thumb = requests.get(api.url("/" + task["thumbnails"][0]), timeout=60)
    assert thumb.status_code == 200

    # a chain: a template match that finds nothing, then the library search
    steps = [
        {"tool": "template", "params": {"threshold": 0.99}},
        {"tool": "search", "params": {"library_id": library_id, "mode": "object"},
         "found_when": "verified"},
    ]
    chained = requests.post(
        api.url("/api/v1/match/chain"),
        files={"image": ("scene.png", truth.encode(case.query)),
               "template": ("t.png", truth.encode(truth.colour(photos[3][1])[:40, :40]))},
        data={"steps": json.dumps(steps)}, timeout=60,
    )
    assert chained.status_code == 201, chained.text
    chain = api.wait_task(chained.json()["uid"], timeout=180)
    assert chain["status"] == "done", chain
    assert chain["result_data"]["chain_result"] == "found", chain["result_data"]
    assert chain["result_data"]["completed_step"] == 2, chain["result_data"]
    assert chain["result_data"]["steps"][1]["result_data"]["results"][0]["image_id"] == \
        top["image_id"]

    # a library that is not the account's: the task's error, saying so
    unknown = requests.post(
        api.url("/api/v1/match/search"), files={"image": ("q.png", truth.encode(case.query))},
        data={"library_id": "00000000-0000-4000-8000-000000000000"}, timeout=60,
    )
    failed = api.wait_task(unknown.json()["uid"], timeout=120)
    assert failed["status"] == "error"
    assert "no library 00000000-0000-4000-8000-000000000000" in failed["error"]
