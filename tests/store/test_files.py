import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aerovision.store.files import (
    AREAS,
    BadKey,
    FileStore,
    LocalFileStore,
    StoreUnavailable,
    check_key,
    open_store,
    sanitize_filename,
    thumbnail_name,
    unique_name,
)
from tests.backends import MotoServer
from tests.server import free_port


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
    any_store.delete("results/u/matches.png")
    any_store.delete("results/u/matches.png")  # gone already: fine
    assert not any_store.exists("results/u/matches.png")
    any_store.check_writable()


def test_a_missing_file_names_the_key_not_a_server_path(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    with pytest.raises(FileNotFoundError) as missing:
        store.read("uploads/u/gone.png")
    assert "uploads/u/gone.png" in str(missing.value)
    assert str(tmp_path) not in str(missing.value)


def immutable(path: Path, on: bool) -> None:
    """``chattr +i``/``-i``: not even root may add or remove entries of an immutable
    folder (chmod does not stop root, whom the tests run as)."""
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def immutable_folders_work(tmp_path: Path) -> bool:
    probe = tmp_path / "chattr-probe"
    probe.mkdir()
    try:
        immutable(probe, True)
    except (OSError, subprocess.CalledProcessError):
        return False
    try:
        (probe / "x").write_bytes(b"x")
    except OSError:
        return True
    finally:
        immutable(probe, False)
    return False


@pytest.fixture
def frozen_store(tmp_path: Path) -> Iterator[LocalFileStore]:
    """A local store whose area folders refuse new entries (as a read-only disk would)."""
    if not immutable_folders_work(tmp_path):
        pytest.skip("chattr +i does not work on this filesystem")
    store = LocalFileStore(tmp_path / "store")
    store.write("uploads/u/kept.png", b"png")
    for area in AREAS:
        immutable(store.root / area, True)
    try:
        yield store
    finally:
        for area in AREAS:
            immutable(store.root / area, False)


def test_a_store_that_refuses_writes_says_why_without_paths(frozen_store: LocalFileStore) -> None:
    root = str(frozen_store.root)
    attempts: list[Callable[[], None]] = [
        lambda: frozen_store.write("results/new/matches.png", b"x"),
        frozen_store.check_writable,
    ]
    for attempt in attempts:
        with pytest.raises(StoreUnavailable) as refused:
            attempt()
        assert str(refused.value) == "the file store refused a write (operation not permitted)"
        assert root not in str(refused.value)
        assert isinstance(refused.value.__cause__, PermissionError)  # the details, for the log
    assert frozen_store.read("uploads/u/kept.png") == b"png"  # reading still works


def test_a_store_folder_that_cannot_be_created_does_not_stop_the_service(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "results").write_bytes(b"not a folder")
    store = LocalFileStore(root)  # no exception: /health and the 503s report it
    with pytest.raises(StoreUnavailable, match=r"refused a write \(not a directory\)"):
        store.write("results/u/matches.png", b"x")
    with pytest.raises(StoreUnavailable, match="not a directory"):
        store.check_writable()
    store.write("uploads/u/a.png", b"a")


def test_s3_failures_are_store_unavailable(moto_server: MotoServer, tmp_path: Path) -> None:
    keys = {"access_key_id": "test", "secret_access_key": "test"}
    no_bucket = open_store(
        "s3://no-such-bucket-here/files", tmp_path, endpoint_url=moto_server.url, **keys
    )
    with pytest.raises(StoreUnavailable) as refused:
        no_bucket.write("results/u/matches.png", b"x")
    assert str(refused.value) == "the file store refused a write (S3 NoSuchBucket)"
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        no_bucket.read("uploads/u/a.png")
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        no_bucket.check_writable()
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = open_store("s3://bucket/files", tmp_path, endpoint_url=closed, **keys)
    with pytest.raises(StoreUnavailable) as down:
        unreachable.check_writable()
    assert str(down.value).startswith("the file store refused a write (S3 unreachable (")
    assert "127.0.0.1" not in str(down.value)


def test_unknown_storage_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_store("ftp://x", tmp_path)
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store("s3://", tmp_path)
