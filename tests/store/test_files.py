from pathlib import Path

import pytest

from aerovision.store.files import (
    BadKey,
    FileStore,
    LocalFileStore,
    open_store,
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


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "local":
        return open_store(None, tmp_path)
    moto = request.getfixturevalue("moto_server")
    return open_store(
        f"s3://{moto.new_bucket()}/some/prefix", tmp_path, endpoint_url=moto.url,
        access_key_id="test", secret_access_key="test",
    )


def test_store_contract(any_store: FileStore) -> None:
    data = bytes(range(256)) * 5000  # > one stream chunk
    any_store.write("results/u/matches.png", data)
    assert any_store.read("results/u/matches.png") == data
    assert any_store.exists("results/u/matches.png")
    assert any_store.size("results/u/matches.png") == len(data)
    assert b"".join(any_store.stream("results/u/matches.png")) == data
    any_store.write("results/u/matches.png", b"new")  # overwrite
    assert any_store.read("results/u/matches.png") == b"new"
    assert not any_store.exists("results/u/other.png")
    for call in (any_store.read, any_store.size, any_store.stream, any_store.local_path):
        with pytest.raises(FileNotFoundError):
            call("results/u/other.png")
    for bad in ("../x", "uploads/../../x", "elsewhere/x"):
        with pytest.raises(BadKey):
            any_store.write(bad, b"x")
        assert not any_store.exists(bad)


def test_unknown_storage_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_store("ftp://x", tmp_path)
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store("s3://", tmp_path)
