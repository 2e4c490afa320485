"""The Libraries pages in a real browser against a real `aerovision serve`.

A library is made on the page, real photographs (scikit-image's, made here: no image file is
committed) are dropped on it, picked one by one and as a folder; their thumbnails show; a
search with a scene that holds one of them as an object finds it first and draws its outline
on the query where the API says it is; an image and then the library are deleted. The same
pages work with an API key (thumbnails and hits come through blob: URLs).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from playwright.sync_api import expect

from tests import library_truth as truth
from tests.server import ServeProcess
from tests.ui.conftest import DESKTOP, PHONE, open_page
from tests.ui.test_ui import A11Y_PROBLEMS, expect_image_loaded

LIBRARY_URL = re.compile(r".*#/libraries/[0-9a-f-]{36}$")
KEY = "ui-libraries-key-0123456789"

DROP = """([selector, files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const target = document.querySelector(selector);
  const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
  target.dispatchEvent(new DragEvent("dragover", init));
  target.dispatchEvent(new DragEvent("drop", init));
}"""
"""Drops files on an element as a person's drag and drop does (dragover, then drop)."""


def drop(page: Any, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    page.evaluate(DROP, [selector, [{"name": n, "data": base64.b64encode(b).decode(), "type": t}
                                    for n, b, t in files]])


def png(name: str, image: np.ndarray) -> tuple[str, bytes, str]:
    return name, truth.encode(image), "image/png"


def outcomes(page: Any, state: str) -> Any:
    return page.locator(f"ol.outcomes li[data-outcome='{state}']")


def polygon_on_screen(page: Any) -> dict[str, Any]:
    """The first outline as drawn: its points (query pixels), the SVG's viewBox, and where its
    corners land on the screen next to where the picture's own scale puts them."""
    drawn: dict[str, Any] = page.evaluate("""() => {
      const group = document.querySelector('svg.hit-outlines g.hit-outline[data-rank="1"]');
      const img = document.querySelector('.query-stage img');
      const svg = group.ownerSVGElement;
      const points = JSON.parse(group.querySelector('polygon').dataset.points);
      const box = img.getBoundingClientRect();
      const scale = box.width / img.naturalWidth;
      const m = group.querySelector('polygon').getScreenCTM();
      const onScreen = points.map(([x, y]) => {
        const p = svg.createSVGPoint(); p.x = x; p.y = y;
        const q = p.matrixTransform(m);
        return [q.x, q.y];
      });
      const expected = points.map(([x, y]) => [box.left + x * scale, box.top + y * scale]);
      return { imageId: group.dataset.imageId, matchType: group.dataset.matchType, points,
               viewBox: svg.getAttribute('viewBox'), natural: [img.naturalWidth, img.naturalHeight],
               displayed: [box.width, box.height], onScreen, expected };
    }""")
    return drawn


def test_a_library_is_made_filled_searched_and_deleted(
    page: Any, browser: Any, ui_server: ServeProcess, tmp_path: Path, screenshot: Any
) -> None:
    photos = truth.library_images()[:5]  # astronaut, coffee, chelsea, rocket, camera
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto("/#/new")
    page.get_by_role("link", name="Libraries", exact=True).click()
    expect(page.get_by_role("heading", name="Libraries", level=1)).to_be_visible()
    expect(page.get_by_text("No libraries yet")).to_be_visible()

    # the name is checked as the server checks it; then the library is made and opened
    page.get_by_label("Name").fill("ui parts")
    page.get_by_role("button", name="Create library").click()
    expect(page.locator("#library-name-err")).to_contain_text("no spaces")
    page.get_by_label("Name").fill("ui-parts")
    page.get_by_label("Description").fill("photographs for the UI test")
    page.get_by_role("button", name="Create library").click()
    expect(page).to_have_url(LIBRARY_URL)
    expect(page.get_by_role("heading", name="ui-parts", level=1)).to_be_visible()
    library_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_text("No images yet")).to_be_visible()
    assert page.evaluate(A11Y_PROBLEMS) == [], "an empty library"

    # the same name again: the server's 409, said plainly
    page.get_by_role("link", name="← Libraries").click()
    expect(page.locator("table.libraries tbody tr")).to_have_count(1)
    row = page.locator("table.libraries tbody tr").first
    expect(row).to_contain_text("photographs for the UI test")
    page.get_by_label("Name").fill("ui-parts")
    page.get_by_role("button", name="Create library").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Not created: the account has a library named 'ui-parts'")
    assert page.evaluate(A11Y_PROBLEMS) == [], "libraries"
    screenshot(page, "30-libraries")
    page.get_by_role("link", name="ui-parts").click()
    expect(page.get_by_role("heading", name="ui-parts", level=1)).to_be_visible()

    # four photographs dropped, each named after its file, tagged; one request per file
    page.get_by_label("Each file's name as its brief").check()
    page.get_by_label("Tags").fill("photo, ui")
    drop(page, ".library-drop", [png(f"{name}.png", image) for name, image in photos[:4]])
    expect(page.get_by_text("4 images chosen")).to_be_visible()
    page.get_by_role("button", name="Add 4 images").click()
    expect(outcomes(page, "added")).to_have_count(4)
    expect(page.locator("ol.outcomes")).to_contain_text("as “coffee.png”")
    expect(page.locator(".counts")).to_contain_text("4 added")
    expect(page.locator("progress")).to_have_attribute("value", "4")
    cards = page.locator("ul.image-grid li.image-card")
    expect(cards).to_have_count(4)
    for name, _ in photos[:4]:
        expect_image_loaded(page.get_by_alt_text(f"Thumbnail of {name}.png"))
    expect(page.locator(".library-numbers dd").first).to_have_text("4")

    # a duplicate, a file that is not an image and a broken one, in one batched request
    page.get_by_label("Each file's name as its brief").uncheck()
    page.get_by_label("Tags").fill("")
    page.get_by_label("Brief (optional)", exact=True).fill("second drop")
    drop(page, ".library-drop", [png("coffee-again.png", photos[1][1]),
                                 ("notes.txt", b"not a picture", "text/plain"),
                                 ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")])
    expect(page.locator("ul.skipped")).to_contain_text("notes.txt")
    page.get_by_role("button", name="Add 2 images").click()
    expect(outcomes(page, "duplicate")).to_have_count(1)
    expect(outcomes(page, "duplicate")).to_contain_text("of “coffee.png”")
    expect(outcomes(page, "refused")).to_have_count(1)
    expect(outcomes(page, "refused")).to_contain_text("broken.png")
    expect(page.locator(".counts")).to_contain_text("0 added · 1 duplicate · 1 refused")

    # a folder (with a subfolder and a file that is not an image) through the folder picker
    folder = tmp_path / "more"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / f"{photos[4][0]}.png").write_bytes(truth.encode(photos[4][1]))
    (folder / "readme.txt").write_text("skipped")
    page.get_by_label("Brief (optional)", exact=True).fill("")
    page.get_by_label("A folder of images").set_input_files(folder)
    expect(page.get_by_text("1 image chosen")).to_be_visible()
    expect(page.locator("ul.skipped")).to_contain_text("readme.txt")
    page.get_by_role("button", name="Add 1 image").click()
    expect(outcomes(page, "added")).to_have_count(1)
    expect(page.locator("ol.outcomes")).to_contain_text("more/sub/camera.png")
    expect(cards).to_have_count(5)
    listed = requests.get(ui_server.url(f"/api/v1/libraries/{library_id}/images"),
                          timeout=10).json()
    assert listed["total"] == 5
    ids = {image["brief"]: image["image_id"] for image in listed["images"]}
    assert set(ids) == {f"{n}.png" for n, _ in photos[:4]} | {""}

    # the tag filter
    page.get_by_label("Tag", exact=True).fill("photo")
    page.get_by_role("button", name="Filter").click()
    expect(cards).to_have_count(4)
    expect(page.locator(".images-summary")).to_contain_text("4 images tagged “photo”")
    page.get_by_role("button", name="Show all").click()
    expect(cards).to_have_count(5)

    # search: coffee warped into another scene, found as an object, outlined where it is
    case = truth.object_query(photos[1][1], np.random.default_rng(5), 1)
    query = truth.encode(case.query)
    expected = requests.post(ui_server.url(f"/api/v1/libraries/{library_id}/search"),
                             files={"image": ("scene.png", query)}, data={"mode": "object"},
                             timeout=60).json()["results"]
    assert expected and expected[0]["image_id"] == ids["coffee.png"], expected
    page.get_by_label("Mode").select_option("object")
    drop(page, ".search-drop", [("scene.png", query, "image/png")])
    hits = page.locator("ol.hits li.hit")
    expect(hits.first).to_be_visible(timeout=60_000)
    first = hits.first
    expect(first).to_have_attribute("data-image-id", ids["coffee.png"])
    expect(first).to_have_attribute("data-match-type", "object")
    expect(first).to_contain_text("coffee.png")
    expect(first).to_contain_text(f"score {expected[0]['score']:.3f}")
    expect_image_loaded(first.get_by_alt_text("Thumbnail of coffee.png"))
    expect_image_loaded(page.get_by_alt_text("The query image scene.png"))
    drawn = polygon_on_screen(page)
    assert drawn["imageId"] == ids["coffee.png"] and drawn["matchType"] == "object"
    assert drawn["viewBox"] == f"0 0 {case.query.shape[1]} {case.query.shape[0]}"
    assert drawn["natural"] == [case.query.shape[1], case.query.shape[0]]
    assert drawn["displayed"][0] < drawn["natural"][0]  # scaled down to fit: the outline too
    assert np.allclose(drawn["points"], expected[0]["polygon"], atol=0.01)
    assert float(np.median(np.linalg.norm(np.array(drawn["points"]) - case.polygon, axis=1))) < 10
    assert np.allclose(drawn["onScreen"], drawn["expected"], atol=1.5), drawn

    # a hit and its outline light up together
    outline = page.locator('svg.hit-outlines g.hit-outline[data-rank="1"]')
    first.hover()
    expect(outline).to_have_class(re.compile(r"\bactive\b"))
    page.mouse.move(0, 0)
    expect(outline).not_to_have_class(re.compile(r"\bactive\b"))
    outline.locator("polygon").hover()
    expect(first).to_have_class(re.compile(r"\bactive\b"))
    assert page.evaluate(A11Y_PROBLEMS) == [], "a library with a search"
    screenshot(page, "31-library-search")

    # no sideways scroll at a phone's width
    context, phone, errors = open_page(browser, ui_server, PHONE)
    phone.goto(f"/#/libraries/{library_id}")
    expect(phone.locator("ul.image-grid li.image-card")).to_have_count(5)
    phone.wait_for_load_state("networkidle")
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert phone.evaluate(overflow) <= 0
    screenshot(phone, "32-phone-library")
    context.close()
    assert not errors.errors, errors.errors

    # remove an image, then the library
    page.get_by_role("button", name=re.compile(r"^Remove “chelsea\.png”")).click()
    page.get_by_role("button", name=re.compile(r"^Yes, remove “chelsea\.png”")).click()
    expect(cards).to_have_count(4)
    expect(page.get_by_alt_text("Thumbnail of chelsea.png")).to_have_count(0)
    expect(page.locator(".library-numbers dd").first).to_have_text("4")
    page.get_by_role("button", name="Delete ui-parts").click()
    page.get_by_role("button", name="Yes, delete ui-parts and its images").click()
    expect(page).to_have_url(re.compile(r"#/libraries$"))
    expect(page.get_by_text("No libraries yet")).to_be_visible()
    gone = requests.get(ui_server.url(f"/api/v1/libraries/{library_id}"), timeout=10)
    assert gone.status_code == 404
    assert violations == []


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("ui-libraries-keys") / "data", workers=0,
                        env={"AEROVISION_API_KEYS": KEY}).start()
    yield proc
    proc.stop()


def test_with_an_api_key_thumbnails_and_hits_come_with_the_key(
    browser: Any, keys_server: ServeProcess
) -> None:
    context, page, errors = open_page(browser, keys_server, DESKTOP)
    photos = truth.library_images()[:2]
    page.goto("/#/libraries")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Libraries", level=1)).to_be_visible()
    page.get_by_label("Name").fill("keyed")
    page.get_by_role("button", name="Create library").click()
    expect(page).to_have_url(LIBRARY_URL)
    files = [{"name": f"{n}.png", "mimeType": "image/png", "buffer": truth.encode(i)}
             for n, i in photos]
    page.get_by_label("Image files").set_input_files(files)
    page.get_by_label("Brief (optional)", exact=True).fill("keyed photo")
    page.get_by_role("button", name="Add 2 images").click()
    expect(outcomes(page, "added")).to_have_count(2)
    thumbs = page.locator("ul.image-grid img")
    expect(thumbs).to_have_count(2)
    for i in range(2):
        expect_image_loaded(thumbs.nth(i))
        assert thumbs.nth(i).get_attribute("src").startswith("blob:")

    # the same picture, a little smaller: a duplicate hit, its thumbnail through the key
    h, w = photos[0][1].shape[:2]
    smaller = np.asarray(cv2.resize(photos[0][1], (w * 3 // 4, h * 3 // 4)), np.uint8)
    page.get_by_label("Query image").set_input_files(
        {"name": "smaller.png", "mimeType": "image/png", "buffer": truth.encode(smaller)})
    first = page.locator("ol.hits li.hit").first
    expect(first).to_have_attribute("data-match-type", "duplicate", timeout=60_000)
    thumb = first.locator("img")
    expect_image_loaded(thumb)
    assert thumb.get_attribute("src").startswith("blob:")
    unauthorised = requests.get(keys_server.url("/api/v1/libraries"), timeout=10)
    assert unauthorised.status_code == 401
    page.get_by_role("button", name="Delete keyed").click()
    page.get_by_role("button", name="Yes, delete keyed and its images").click()
    expect(page.get_by_text("No libraries yet")).to_be_visible()
    context.close()
    assert not errors.errors, errors.errors


WALK = """async () => {
  const { droppedFiles } = await import('./static/library/upload.js');
  const base = (path) => path.split('/').pop();
  const file = (path) => ({ isFile: true, isDirectory: false, name: base(path),
    fullPath: `/${path}`, file: (ok) => ok(new File(['x'], base(path), { type: 'image/png' })) });
  const dir = (path, children) => ({ isFile: false, isDirectory: true, name: base(path),
    fullPath: `/${path}`,
    createReader: () => {
      const parts = [children.slice(0, 2), children.slice(2)];  // a folder read in parts, then []
      return { readEntries: (ok) => ok(parts.shift() || []) };
    } });
  const shots = dir('shots', [file('shots/b10.png'), file('shots/b2.png'),
    dir('shots/a', [file('shots/a/x.png')]), file('shots/.DS_Store')]);
  const transfer = { files: [], items: [
    { kind: 'file', webkitGetAsEntry: () => shots },
    { kind: 'file', webkitGetAsEntry: () => file('loose.jpg') },
  ] };
  return (await droppedFiles(transfer)).map((f) => [f.path, f.file.name]);
}"""


def test_a_dropped_folder_is_walked_whole_in_name_order(page: Any) -> None:
    page.goto("/#/libraries")
    expect(page.get_by_role("heading", name="Libraries", level=1)).to_be_visible()
    assert page.evaluate(WALK) == [
        ["shots/.DS_Store", ".DS_Store"],  # skipped later, with the reason, by the form
        ["shots/a/x.png", "x.png"],
        ["shots/b2.png", "b2.png"],
        ["shots/b10.png", "b10.png"],
        ["loose.jpg", "loose.jpg"],
    ]
