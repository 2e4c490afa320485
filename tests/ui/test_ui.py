"""The web UI in a real browser (Debian's Chromium, headless) against a real `aerovision serve`.

Each test drives the page the way a person would (labels, buttons, keyboard) and checks the
outcome both on the page and through the API. Screenshots: test-artifacts/ui/.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import requests
from playwright.sync_api import expect

from aerovision.tools import TOOLS
from tests.images import encode, photo, scene_with_degraded_patch, scene_with_patch
from tests.server import ServeProcess
from tests.ui.conftest import PHONE

TASK_DONE_TIMEOUT_MS = 30_000
TASK_URL = re.compile(r".*#/tasks/[0-9a-f-]{36}$")


def png_file(name: str, image: np.ndarray) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": encode(image)}


@pytest.fixture(scope="module")
def template_files() -> tuple[dict[str, Any], dict[str, Any]]:
    scene, icon, _ = scene_with_patch(3, seed=7)
    return png_file("screenshot.png", scene), png_file("icon.png", icon)


@pytest.fixture(scope="module")
def done_template_task(
    ui_server: ServeProcess, template_files: tuple[dict[str, Any], dict[str, Any]]
) -> dict[str, Any]:
    """A finished template task submitted through the API (for the pages that only show one)."""
    image, template = template_files
    files = {
        "image": (image["name"], image["buffer"], "image/png"),
        "template": (template["name"], template["buffer"], "image/png"),
    }
    task = requests.post(
        ui_server.url("/api/v1/match/template"), files=files, data={"threshold": "0.9"}, timeout=10
    ).json()
    done = ui_server.wait_task(task["uid"])
    assert done["status"] == "done", done
    return done


def api_task(server: ServeProcess, page: Any) -> dict[str, Any]:
    uid = page.url.rsplit("/", 1)[1]
    task: dict[str, Any] = requests.get(server.url(f"/api/v1/tasks/{uid}"), timeout=10).json()
    return task


def wait_done(page: Any) -> None:
    """Wait until the task view shows the end; fail with the page's message if it is error."""
    badge = page.locator(".status-line .badge")
    expect(badge).to_have_text(re.compile("^(done|error)$"), timeout=TASK_DONE_TIMEOUT_MS)
    if badge.inner_text() == "error":
        pytest.fail(f"the task failed: {page.get_by_role('alert').first.inner_text()}")


def image_loaded(locator: Any) -> bool:
    return bool(locator.evaluate("img => img.complete && img.naturalWidth > 0"))


def expect_image_loaded(locator: Any) -> None:
    expect(locator).to_be_visible()
    locator.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=locator.element_handle()
    )


# ---------------------------------------------------------------- template


def test_template_task_from_upload_to_result(
    page: Any,
    ui_server: ServeProcess,
    template_files: tuple[dict[str, Any], dict[str, Any]],
    screenshot: Any,
) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"#/new/template$"))
    expect(page.get_by_role("radio", name=re.compile("^Template matching"))).to_be_checked()

    image, template = template_files
    page.get_by_label("Image", exact=True).set_input_files(image)
    page.get_by_label("Template", exact=True).set_input_files(template)
    expect(page.get_by_alt_text("Preview of screenshot.png")).to_be_visible()

    # the form shows the settings' values and ranges; a preset is one click away
    threshold = page.get_by_label("Threshold", exact=True)
    expect(threshold).to_have_value("0.8")
    expect(threshold).to_have_attribute("min", "0.1")
    expect(threshold).to_have_attribute("max", "1")
    page.get_by_role("button", name=re.compile("^Multi-detection")).click()
    expect(threshold).to_have_value("0.8")
    expect(page.get_by_label("Max results", exact=True)).to_have_value("50")
    page.get_by_role("button", name=re.compile("^Icon on a screenshot")).click()
    expect(threshold).to_have_value("0.9")
    expect(page.get_by_label("Max results", exact=True)).to_have_value("20")
    expect(page.get_by_label("Method", exact=True)).to_have_value("TM_CCOEFF_NORMED")
    screenshot(page, "01-new-task-template")

    page.get_by_role("button", name="Run template matching").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)

    task = api_task(ui_server, page)
    assert task["status"] == "done" and task["params"]["threshold"] == 0.9
    matches = task["result_data"]["matches"]
    assert len(matches) == 3

    picture = page.get_by_alt_text("Matches drawn on screenshot.png")
    expect_image_loaded(picture)
    assert picture.get_attribute("src").endswith("matches.png")
    rows = page.locator("table.matches tbody tr")
    expect(rows).to_have_count(3)
    first = rows.nth(0).locator("td")
    assert [first.nth(i).inner_text() for i in range(1, 5)] == [
        str(matches[0][k]) for k in ("x", "y", "w", "h")
    ]
    expect(page.get_by_alt_text("Thumbnail of screenshot.png")).to_be_visible()
    expect(page.get_by_alt_text("Thumbnail of icon.png")).to_be_visible()
    screenshot(page, "02-task-template-done")

    # sortable: by x, ascending
    page.locator("table.matches th").filter(has_text=re.compile(r"^x")).get_by_role(
        "button"
    ).click()
    xs = [int(t) for t in rows.locator("td:nth-child(2)").all_inner_texts()]
    assert xs == sorted(m["x"] for m in matches)
    expect(page.locator("table.matches th[aria-sort=ascending]")).to_have_count(1)

    # the heat map over the input image, with its opacity
    page.get_by_label("Heat map over the image").check()
    overlay = page.get_by_alt_text("Heat map of the match score")
    expect_image_loaded(overlay)
    assert overlay.get_attribute("src").endswith("heatmap.png")
    assert (
        page.get_by_alt_text("The input image screenshot.png")
        .get_attribute("src")
        .startswith("uploads/")
    )
    page.get_by_label("Heat map opacity").fill("80")
    expect(overlay).to_have_css("opacity", "0.8")
    screenshot(page, "03-task-template-heatmap")

    # raw JSON and curl one click away
    page.get_by_text("Raw JSON").click()
    raw = json.loads(page.locator("pre.json").inner_text())
    assert raw["uid"] == task["uid"] and raw["result_data"] == task["result_data"]
    page.get_by_role("button", name="Copy as curl").click()
    expect(page.locator(".copy-status")).not_to_be_empty()
    curl = page.locator("pre.curl").text_content()
    assert f"{ui_server.base_url}/api/v1/match/template" in curl
    assert "-F image=@screenshot.png" in curl and "-F template=@icon.png" in curl
    assert "-F threshold=0.9" in curl and "-F method=TM_CCOEFF_NORMED" in curl


# ---------------------------------------------------------------- feature


def test_feature_task_shows_matches_and_homography(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    paths = requests.get(ui_server.url("/openapi.json"), timeout=10).json()["paths"]
    if "/api/v1/match/feature" not in paths:
        pytest.skip("POST /api/v1/match/feature is not on this server yet (not in /openapi.json)")
    train = photo("astronaut")
    query = train[60:300, 120:360].copy()
    page.goto("/#/new/feature")
    expect(page.get_by_role("radio", name=re.compile("^Feature matching"))).to_be_checked()
    page.get_by_label("Query image", exact=True).set_input_files(png_file("query.png", query))
    page.get_by_label("Train image", exact=True).set_input_files(png_file("train.png", train))
    page.get_by_role("button", name=re.compile("^Panorama stitching")).click()
    expect(page.get_by_label("Detector", exact=True)).to_have_value("SIFT")
    expect(page.get_by_label("Ratio threshold", exact=True)).to_have_value("0.7")
    screenshot(page, "04-new-task-feature")
    page.get_by_role("button", name="Run feature matching").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)

    task = api_task(ui_server, page)
    data = task["result_data"]
    assert data["good_matches"] > 0 and data["detector"] == "SIFT"
    expect_image_loaded(page.get_by_alt_text(re.compile("^Keypoint matches")))
    expect(page.locator(".stats")).to_contain_text(str(data["good_matches"]))
    if data.get("homography"):
        expect(page.locator("table.matrix tbody tr")).to_have_count(3)
        expect(page.locator("table.matrix tbody td")).to_have_count(9)
    if data.get("corners"):
        expect(page.locator(".stage-svg polygon.outline")).to_have_count(1)
        expect_image_loaded(page.get_by_alt_text(re.compile("^The train image train.png")))
    screenshot(page, "05-task-feature-done")


# ---------------------------------------------------------------- surface


def test_surface_form_takes_ply_and_offers_the_presets(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    paths = requests.get(ui_server.url("/openapi.json"), timeout=10).json()["paths"]
    if "/api/v1/match/surface" not in paths:
        pytest.skip("POST /api/v1/match/surface is not on this server yet (not in /openapi.json)")
    page.goto("/#/new/surface")
    expect(page.get_by_label("Model file", exact=True)).to_have_attribute("accept", ".ply")
    expect(page.get_by_label("Scene file", exact=True)).to_have_attribute("accept", ".ply")
    page.get_by_role("button", name=re.compile("^Fast pose")).click()
    expect(page.get_by_label("Relative sampling step", exact=True)).to_have_value("0.1")
    expect(page.get_by_label("Use ICP", exact=True)).not_to_be_checked()
    page.get_by_role("button", name=re.compile("^Precise parts")).click()
    expect(page.get_by_label("Relative sampling step", exact=True)).to_have_value("0.025")
    expect(page.get_by_label("Use ICP", exact=True)).to_be_checked()
    expect(page.get_by_label("ICP iterations", exact=True)).to_have_value("200")
    # the range comes from the schema: (0, 1] for the ICP tolerance
    page.get_by_label("ICP tolerance", exact=True).fill("0")
    page.get_by_role("button", name="Run surface matching").click()
    expect(page.get_by_text("Must be greater than 0.")).to_be_visible()
    screenshot(page, "16-new-task-surface")


# ---------------------------------------------------------------- chain


def test_chain_builder_and_result(page: Any, ui_server: ServeProcess, screenshot: Any) -> None:
    scene, patch, (x, y) = scene_with_degraded_patch()
    page.goto("/#/new")
    page.get_by_role("radio", name=re.compile("^Chain")).check()
    expect(page).to_have_url(re.compile(r"#/new/chain$"))
    page.get_by_label("Image", exact=True).set_input_files(png_file("photo.png", scene))
    page.get_by_label("Template", exact=True).set_input_files(png_file("icon.png", patch))

    steps = page.locator("ol.steps > li")
    expect(steps).to_have_count(1)
    steps.nth(0).get_by_role("button", name=re.compile("^Visual QC")).click()
    expect(steps.nth(0).get_by_label("Threshold", exact=True)).to_have_value("0.95")

    add = page.get_by_role("button", name="+ Add step")
    add.click()
    add.click()
    expect(steps).to_have_count(3)
    # step 3 gets a looser threshold, moves up to 2; step 3 (the old 2) is removed
    steps.nth(2).get_by_label("Threshold", exact=True).fill("0.7")
    page.get_by_role("button", name="Move step 3 up").click()
    expect(steps.nth(1).get_by_label("Threshold", exact=True)).to_have_value("0.7")
    page.get_by_role("button", name="Remove step 3").click()
    expect(steps).to_have_count(2)
    expect(page.get_by_role("button", name="Move step 1 up")).to_be_disabled()
    expect(page.get_by_role("button", name="Move step 2 down")).to_be_disabled()
    screenshot(page, "06-new-task-chain")

    page.get_by_role("button", name="Run chain").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)
    task = api_task(ui_server, page)
    assert [s["params"]["threshold"] for s in task["params"]["steps"]] == [0.95, 0.7]
    data = task["result_data"]
    assert data["chain_result"] == "found" and data["completed_step"] == 2, data

    expect(page.locator(".chain-summary")).to_have_text("Found at step 2 of 2.")
    found = page.locator("details.step-found")
    expect(found).to_have_count(1)
    expect(found.locator("summary")).to_contain_text("Step 2")
    picture = found.get_by_alt_text("Matches drawn on photo.png")
    expect_image_loaded(picture)
    assert "/step2/matches.png" in picture.get_attribute("src")
    rows = found.locator("table.matches tbody tr")
    expect(rows).to_have_count(len(data["steps"][1]["result_data"]["matches"]))
    expect(rows.nth(0).locator("td").nth(1)).to_have_text(str(x))
    expect(rows.nth(0).locator("td").nth(2)).to_have_text(str(y))
    expect(page.locator("details.chain-step").nth(0).locator("summary")).to_contain_text(
        "not found"
    )
    screenshot(page, "07-task-chain-done")
    curl = page.locator("pre.curl").text_content()
    assert "-F 'steps=[{" in curl and '"threshold":0.7' in curl


# ---------------------------------------------------------------- inspect (no UI code of its own)


def test_inspect_runs_from_its_registry_entry_and_shows_the_generic_result(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    """inspect has no code in web/: its choice, form, presets and result all come from
    GET /api/v1/tools and the generic renderer."""
    inspect = TOOLS["inspect"]
    page.goto("/#/new")
    page.get_by_role("radio", name=re.compile(f"^{re.escape(inspect.title)}")).check()
    expect(page).to_have_url(re.compile(r"#/new/inspect$"))
    expect(page.locator(".drop")).to_have_count(1)  # one input
    image = page.get_by_label("Image", exact=True)
    expect(image).to_have_attribute("accept", ".png,.jpg,.jpeg,.bmp,.tif,.tiff")
    image.set_input_files(png_file("sample.png", photo("astronaut")[:200, :300]))
    bins = page.get_by_label("Bins", exact=True)
    expect(bins).to_have_value("32")
    expect(bins).to_have_attribute("min", "2")
    expect(bins).to_have_attribute("max", "256")
    page.get_by_role("button", name=re.compile("^Fine histogram")).click()
    expect(bins).to_have_value("256")
    page.get_by_role("button", name=re.compile("^Coarse histogram")).click()
    expect(bins).to_have_value("16")
    page.get_by_role("button", name="Run inspect an image").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)

    task = api_task(ui_server, page)
    data = task["result_data"]
    assert task["params"] == {"bins": 16}
    assert (data["width"], data["height"], data["channels"]) == (300, 200, 3)
    expect(page.get_by_role("heading", level=1)).to_contain_text(inspect.title)
    expect(page.locator(".result-line")).to_have_text(inspect.result_line.render(data))
    figures = page.locator(".result-generic .stats > div")
    expect(figures.filter(has_text="Width").locator("dd")).to_have_text("300")
    expect(figures.filter(has_text="Height").locator("dd")).to_have_text("200")
    expect(figures.filter(has_text="Channels").locator("dd")).to_have_text("3")
    shown = float(figures.filter(has_text="Sharpness").locator("dd").inner_text())
    assert shown == pytest.approx(data["sharpness"], rel=1e-3)
    picture = page.get_by_alt_text("Result picture histogram.png")
    expect_image_loaded(picture)
    assert picture.get_attribute("src").endswith("/histogram.png")
    # channel_stats, a list of objects: a table, each histogram as bars with its numbers
    rows = page.locator("table.result-table tbody tr")
    expect(rows).to_have_count(3)
    names = [row.locator("td").nth(0).inner_text() for row in rows.all()]
    assert names == [c["name"] for c in data["channel_stats"]]
    expect(page.locator("table.result-table svg.spark")).to_have_count(3)
    expect(rows.nth(0).locator("details summary")).to_contain_text("16 values")
    assert page.evaluate(A11Y_PROBLEMS) == [], "inspect task view"
    screenshot(page, "17-task-inspect-done")
    page.set_viewport_size(PHONE)
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0, "inspect task view at a phone's width"

    # its one-line result in the list, as the server words it; its settings in Settings
    page.goto("/#/tasks")
    row = page.locator("table.tasks tbody tr").filter(has_text=task["uid"][:8])
    expect(row.locator("td.summary")).to_have_text(inspect.result_line.render(data))
    expect(row).to_contain_text(inspect.title)
    page.goto("/#/settings")
    form = page.locator("form.settings").filter(
        has=page.get_by_role("heading", name=inspect.title)
    )
    expect(form.get_by_label("Bins", exact=True)).to_have_value("32")


# ---------------------------------------------------------------- errors


def test_bad_file_and_bad_values_show_the_reason(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    text = b"just some text, not an image\n" * 3
    expected = requests.post(
        ui_server.url("/api/v1/match/template"),
        files={"image": ("notes.png", text), "template": ("icon.png", encode(photo()[:32, :32]))},
        timeout=10,
    )
    assert expected.status_code == 422
    message = expected.json()["detail"][0]["msg"]

    page.goto("/#/new/template")
    # nothing chosen: the page says so without asking the server
    page.get_by_role("button", name="Run template matching").click()
    expect(page.locator(".drop .field-error").first).to_have_text("Choose a file.")

    page.get_by_label("Image", exact=True).set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": text}
    )
    page.get_by_label("Template", exact=True).set_input_files(
        png_file("icon.png", photo()[:32, :32])
    )
    # a value out of the schema's range is refused in the page
    page.get_by_label("Threshold", exact=True).fill("1.5")
    page.get_by_role("button", name="Run template matching").click()
    expect(page.get_by_text("Must be at most 1.")).to_be_visible()
    expect(page.get_by_label("Threshold", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Threshold", exact=True).fill("0.8")

    with page.expect_response(lambda r: r.url.endswith("/api/v1/match/template")) as answer:
        page.get_by_role("button", name="Run template matching").click()
    assert answer.value.status == 422
    alert = page.locator(".form-errors")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(message)
    expect(alert).to_contain_text("422")
    expect(page.locator(".drop.invalid .field-error")).to_have_text(message)
    expect(page).to_have_url(re.compile(r"#/new/template$"))
    screenshot(page, "08-error-bad-file")

    # a task the worker cannot run ends as error, and the page shows why
    small = photo("coffee")[:40, :40]
    page.get_by_label("Image", exact=True).set_input_files(png_file("small.png", small))
    page.get_by_label("Template", exact=True).set_input_files(
        png_file("big.png", photo()[:120, :120])
    )
    page.get_by_role("button", name="Run template matching").click()
    expect(page).to_have_url(TASK_URL)
    expect(page.locator(".status-line .badge")).to_have_text("error", timeout=TASK_DONE_TIMEOUT_MS)
    task = api_task(ui_server, page)
    assert task["status"] == "error" and task["error"]
    expect(page.get_by_role("alert")).to_contain_text(task["error"])
    screenshot(page, "09-task-error")


# ---------------------------------------------------------------- tasks list


def test_tasks_list_pages_newest_first(
    page: Any, ui_server: ServeProcess, done_template_task: dict[str, Any], screenshot: Any
) -> None:
    tiny = encode(photo("coffee")[:60, :80])
    files = {"image": ("a.png", tiny), "template": ("b.png", tiny[:])}
    for _ in range(21):
        response = requests.post(ui_server.url("/api/v1/match/template"), files=files, timeout=10)
        assert response.status_code == 201
    listing = requests.get(ui_server.url("/api/v1/tasks?limit=20"), timeout=10).json()
    total = listing["total"]
    assert total > 20

    page.goto("/#/tasks")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator(".pager")).to_contain_text(f"1–20 of {total}")
    first_uid = listing["tasks"][0]["uid"]
    expect(rows.nth(0).locator("a.task-link")).to_have_text(first_uid[:8])
    expect(rows.nth(0)).to_contain_text("Template")
    expect(rows.nth(0).locator(".badge")).to_have_text(re.compile("queued|processing|done"))
    screenshot(page, "10-tasks-list")

    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"#/tasks\?page=2$"))
    expect(page.locator(".pager")).to_contain_text(f"21–{min(total, 40)} of {total}")
    expect(page.get_by_role("link", name="← Newer")).to_be_visible()

    # statuses update without reloading; a click opens the task
    page.goto("/#/tasks")
    expect(rows.nth(0).locator(".badge")).to_have_text("done", timeout=TASK_DONE_TIMEOUT_MS)
    rows.nth(0).locator("td").nth(3).click()
    expect(page).to_have_url(re.compile(f"#/tasks/{first_uid}$"))
    wait_done(page)


# ---------------------------------------------------------------- settings


def test_settings_edit_save_and_validate(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    before = requests.get(ui_server.url("/api/v1/settings/template"), timeout=10).json()["params"]
    try:
        page.goto("/#/settings")
        form = page.locator("form.settings").filter(
            has=page.get_by_role("heading", name="Template matching")
        )
        expect(form.get_by_label("Threshold", exact=True)).to_have_value(str(before["threshold"]))
        form.get_by_label("Threshold", exact=True).fill("0.85")
        form.get_by_label("Max results", exact=True).fill("30")
        form.get_by_label("Method", exact=True).select_option("TM_SQDIFF_NORMED")
        form.get_by_label("Use grayscale", exact=True).uncheck()
        form.get_by_role("button", name="Save template settings").click()
        expect(form.locator(".save-status")).to_contain_text("Saved")
        params = requests.get(ui_server.url("/api/v1/settings/template"), timeout=10).json()[
            "params"
        ]
        assert params == {
            "method": "TM_SQDIFF_NORMED",
            "threshold": 0.85,
            "max_results": 30,
            "use_grayscale": False,
        }

        # out of range: refused in the page, nothing sent
        feature = page.locator("form.settings").nth(1)
        ratio = feature.get_by_label("Ratio threshold", exact=True)
        old_ratio = ratio.input_value()
        ratio.fill("0")
        feature.get_by_role("button", name=re.compile("^Save")).click()
        expect(feature.get_by_text("Must be at least 0.1.")).to_be_visible()
        expect(ratio).to_be_focused()
        feature_now = requests.get(ui_server.url("/api/v1/settings/feature"), timeout=10).json()
        assert str(feature_now["params"]["ratio_threshold"]) == old_ratio
        screenshot(page, "11-settings")

        # a new task's form starts from the saved settings
        page.goto("/#/new/template")
        expect(page.get_by_label("Threshold", exact=True)).to_have_value("0.85")
        expect(page.get_by_label("Use grayscale", exact=True)).not_to_be_checked()
    finally:
        requests.put(ui_server.url("/api/v1/settings/template"), json=before, timeout=10)


# ---------------------------------------------------------------- webhooks


def test_webhooks_add_deliveries_delete(
    page: Any,
    ui_server: ServeProcess,
    template_files: tuple[dict[str, Any], dict[str, Any]],
    screenshot: Any,
) -> None:
    page.goto("/#/webhooks")
    expect(page.get_by_text("No webhooks registered.")).to_be_visible()
    page.get_by_label("URL").fill("not a url")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_text("Enter an http:// or https:// URL.")).to_be_visible()

    receiver = "http://127.0.0.1:9/aerovision-hook"  # nobody listens: deliveries stay pending
    page.get_by_label("URL").fill(receiver)
    page.get_by_label("Secret (optional)").fill("s3cret")
    page.get_by_role("button", name="Add webhook").click()
    row = page.locator("table.hooks tbody tr").filter(has_text=receiver)
    expect(row).to_have_count(1)
    hooks = requests.get(ui_server.url("/api/v1/webhooks"), timeout=10).json()
    assert [h["url"] for h in hooks] == [receiver]
    hook_id = hooks[0]["id"]
    expect(row).to_contain_text(hook_id)
    assert "s3cret" not in page.content()

    # a task ends: its delivery shows up
    image, template = template_files
    task = requests.post(
        ui_server.url("/api/v1/match/template"),
        files={"image": ("s.png", image["buffer"]), "template": ("i.png", template["buffer"])},
        timeout=10,
    ).json()
    ui_server.wait_task(task["uid"])
    page.get_by_role("button", name=f"Deliveries of {receiver}").click()
    deliveries = page.locator(".deliveries-table tbody tr")
    for _ in range(50):
        if deliveries.count():
            break
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(100)
    expect(deliveries.filter(has_text=task["uid"][:8])).to_have_count(1)
    expect(deliveries.first).to_contain_text("task.done")
    screenshot(page, "12-webhooks")

    page.get_by_role("button", name=f"Delete {receiver}").click()
    page.get_by_role("button", name=f"Yes, delete {receiver}").click()
    expect(page.get_by_text("No webhooks registered.")).to_be_visible()
    assert requests.get(ui_server.url("/api/v1/webhooks"), timeout=10).json() == []


# ---------------------------------------------------------------- accessibility


A11Y_PROBLEMS = """() => {
  const problems = [];
  const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    if (!named(el)) problems.push(`no label: ${el.outerHTML.slice(0, 120)}`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
    if (!name) problems.push(`no name: ${el.outerHTML.slice(0, 120)}`);
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push(`no alt: ${img.outerHTML.slice(0, 120)}`);
    else if (!img.alt.trim() && !img.hidden) problems.push(`empty alt, shown: ${img.src}`);
  }
  const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
  const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dupes.length) problems.push(`duplicate ids: ${dupes}`);
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const sel of ['header', 'nav', 'main']) {
    if (!document.querySelector(sel)) problems.push(`no <${sel}>`);
  }
  if (!document.documentElement.lang) problems.push('no lang');
  return problems;
}"""


def test_pages_are_labelled_and_keyboard_usable(
    page: Any,
    ui_server: ServeProcess,
    done_template_task: dict[str, Any],
    template_files: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    for hash_, ready in [
        ("#/new/template", "Run template matching"),
        ("#/new/chain", "Run chain"),
        ("#/settings", "Save template settings"),
        ("#/webhooks", "Add webhook"),
    ]:
        page.goto(f"/{hash_}")
        expect(page.get_by_role("button", name=ready)).to_be_visible()
        assert page.evaluate(A11Y_PROBLEMS) == [], hash_
    page.goto(f"/#/tasks/{done_template_task['uid']}")
    wait_done(page)
    expect_image_loaded(page.get_by_alt_text("Matches drawn on screenshot.png"))
    page.get_by_label("Heat map over the image").check()
    assert page.evaluate(A11Y_PROBLEMS) == [], "task view"
    page.goto("/#/tasks")
    expect(page.locator("table.tasks tbody tr").first).to_be_visible()
    assert page.evaluate(A11Y_PROBLEMS) == [], "tasks"

    # keyboard: the skip link comes first and lands in <main> (a fresh load, not a hash change)
    page.goto("about:blank")
    page.goto("/#/new/template")
    expect(page.get_by_role("button", name="Run template matching")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/new/template$"))

    # arrows pick the tool; Tab goes through the form to Run; Enter submits
    image, template = template_files
    page.get_by_label("Image", exact=True).set_input_files(image)
    page.get_by_label("Template", exact=True).set_input_files(template)
    template_radio = page.get_by_role("radio", name=re.compile("^Template matching"))
    template_radio.focus()
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(r"#/new/(?!template)\w+$"))
    page.keyboard.press("ArrowLeft")
    expect(template_radio).to_be_checked()
    expect(page).to_have_url(re.compile(r"#/new/template$"))
    run = page.get_by_role("button", name="Run template matching")
    for _ in range(80):
        page.keyboard.press("Tab")
        if run.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Run button")
    page.keyboard.press("Enter")
    expect(page).to_have_url(TASK_URL)
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    wait_done(page)


# ---------------------------------------------------------------- phone width


def test_phone_width_has_no_sideways_scroll(
    phone_page: Any, done_template_task: dict[str, Any], screenshot: Any
) -> None:
    page = phone_page
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    page.goto("/#/new/template")
    expect(page.get_by_role("button", name="Run template matching")).to_be_visible()
    assert page.evaluate(overflow) <= 0
    screenshot(page, "13-phone-new-task")
    page.goto(f"/#/tasks/{done_template_task['uid']}")
    wait_done(page)
    expect_image_loaded(page.get_by_alt_text("Matches drawn on screenshot.png"))
    box = page.get_by_alt_text("Matches drawn on screenshot.png").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    assert page.evaluate(overflow) <= 0
    screenshot(page, "14-phone-task")
    for hash_ in ("#/tasks", "#/settings", "#/webhooks"):
        page.goto(f"/{hash_}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(overflow) <= 0, hash_
    screenshot(page, "15-phone-webhooks")


def test_a_chain_step_chooses_its_found_rule_and_swaps_its_inputs(
    page: Any, ui_server: ServeProcess, screenshot: Any
) -> None:
    """The feature step looks for the turned icon in the photo ("Inputs" swapped) and
    counts only a consistent homography ("Found when"); the page agrees with the server."""
    import cv2
    import numpy as np

    image = photo("astronaut")
    turn = cv2.getRotationMatrix2D((100, 100), 25, 1.0)
    icon = cv2.warpAffine(image[60:260, 140:340], turn, (200, 200),
                          borderMode=cv2.BORDER_REFLECT)[30:170, 30:170].copy()
    page.goto("/#/new/chain")
    page.get_by_label("Image", exact=True).set_input_files(png_file("photo.png", image))
    page.get_by_label("Template", exact=True).set_input_files(png_file("icon.png", icon))
    steps = page.locator("ol.steps > li")
    step = steps.nth(0)
    expect(step.get_by_label("Found when")).to_have_count(0)  # template has one rule
    step.get_by_label("Tool").select_option("feature")
    found_when = step.get_by_label("Found when")
    expect(found_when.locator("option")).to_have_text(["good_matches (default)", "homography"])
    found_when.select_option("homography")
    inputs = step.get_by_label("Inputs")
    expect(inputs.locator("option")).to_have_text([
        "query_image ← image, train_image ← template (default)",
        "query_image ← template, train_image ← image",
    ])
    inputs.select_option("swapped")
    screenshot(page, "06b-new-task-chain-choices")
    page.get_by_role("button", name="Run chain").click()
    expect(page).to_have_url(TASK_URL)
    wait_done(page)
    task = api_task(ui_server, page)
    (sent,) = task["params"]["steps"]
    assert sent["found_when"] == "homography"
    assert sent["inputs"] == {"query_image": "template", "train_image": "image"}
    result = task["result_data"]
    assert result["chain_result"] == "found" and result["steps"][0]["found"] is True
    corners = np.array(result["steps"][0]["result_data"]["corners"])
    assert corners.min() > 50 and corners.max() < 360  # inside the photo, around the piece
    expect(page.locator(".chain-summary")).to_have_text("Found at step 1 of 1.")
    summary = page.locator("details.chain-step").nth(0)
    expect(summary.locator("summary .badge")).to_have_text("found")
    expect(summary.locator("ul.step-choices li")).to_have_text([
        "found when: homography", "query_image ← template", "train_image ← image",
    ])
    screenshot(page, "07b-task-chain-choices")
