from pathlib import Path

import pytest

from aerovision.store.files import (
    BadKey,
    LocalFileStore,
    check_key,
    sanitize_filename,
    thumbnail_name,
    unique_name,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("screenshot.png", "screenshot.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\icon.PNG", "icon.PNG"),
        ("ünïcødé фото.jpg", "unicde.jpg"),
        ("фото.jpg", "image.jpg"),
        ("a b;c$(rm -rf).png", "a_b_c_rm_-rf.png"),
        (".hidden.png", "hidden.png"),
        ("", "image"),
        (None, "image"),
        ("....", "image"),
        ("name.", "name"),
        (".png", "image.png"),
        ("x" * 300 + ".png", "x" * 96 + ".png"),
    ],
)
def test_sanitize_filename(given: str | None, expected: str) -> None:
    assert sanitize_filename(given, fallback="image") == expected


def test_unique_name_never_overwrites() -> None:
    taken = {"photo.png", "photo_1.png"}
    assert unique_name("photo.png", taken) == "photo_2.png"
    assert unique_name("other.png", taken) == "other.png"
    assert unique_name("noext", {"noext"}) == "noext_1"


def test_thumbnail_names() -> None:
    assert thumbnail_name("photo.jpg") == "photo.jpg"
    assert thumbnail_name("shot.png") == "shot.png"
    assert thumbnail_name("scan.tiff") == "scan.png"
    assert thumbnail_name("plan.bmp") == "plan.png"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "uploads/../aerovision.db",
        "uploads/./a.png",
        "uploads//a.png",
        "uploads",
        "aerovision.db",
        "other/a.png",
        "uploads\\..\\x",
        "uploads/a\x00.png",
    ],
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(BadKey):
        check_key(key)


def test_local_store_round_trip_and_no_escape(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    tmp_path = tmp_path / "store"
    store.write("results/abc/matches.png", b"png")
    assert store.read("results/abc/matches.png") == b"png"
    assert store.exists("results/abc/matches.png")
    assert store.local_path("results/abc/matches.png") == tmp_path / "results/abc/matches.png"
    assert not store.exists("results/abc/none.png")
    (tmp_path.parent / "secret.txt").write_text("x")
    (tmp_path / "uploads" / "link").symlink_to(tmp_path.parent / "secret.txt")
    with pytest.raises(BadKey):
        store.local_path("uploads/link")
    with pytest.raises(FileNotFoundError):
        store.local_path("uploads/missing.png")
