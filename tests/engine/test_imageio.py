"""Header sniffing, guarded decoding, encoding and thumbnails, on files built in the tests."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.imageio import (
    ImageInfo,
    decode_image,
    encode_jpeg,
    encode_png,
    flatten_alpha,
    make_thumbnail,
    sniff_image,
)
from tests.images import jpeg_with_orientation, png_chunk, png_header

Image = npt.NDArray[np.uint8]
LIMIT = 100_000_000
EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tiff"}


def _encode(image: npt.NDArray[np.integer[Any] | np.floating[Any]], ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return bytes(buf.tobytes())


def _bmp24(image: Image, *, top_down: bool, core: bool = False) -> bytes:
    """A hand-made 24-bit BMP (BITMAPINFOHEADER, or BITMAPCOREHEADER if `core`)."""
    h, w = image.shape[:2]
    stride = (w * 3 + 3) // 4 * 4
    rows = image if top_down else image[::-1]
    pixels = b"".join(row.tobytes() + b"\x00" * (stride - w * 3) for row in rows)
    if core:
        info = struct.pack("<IHHHH", 12, w, h, 1, 24)
    else:
        info = struct.pack(
            "<IiiHHIIiiII", 40, w, -h if top_down else h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0
        )
    offset = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + pixels


def _tiff_header(width: int, height: int, *, big_endian: bool, kind: int) -> bytes:
    """A classic TIFF header whose IFD0 holds only width and length, as SHORT or LONG."""
    e = ">" if big_endian else "<"
    field = e + ("HH" if kind == 3 else "I")  # SHORT values sit left-justified in 4 bytes
    entries = b"".join(
        struct.pack(e + "HHI", tag, kind, 1) + struct.pack(field, v, *([0] if kind == 3 else []))
        for tag, v in ((256, width), (257, height))
    )
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8)
    return head + struct.pack(e + "H", 2) + entries + struct.pack(e + "I", 0)


def _bigtiff_header(width: int, height: int) -> bytes:
    entries = struct.pack("<HHQQ", 256, 16, 1, width) + struct.pack("<HHQQ", 257, 4, 1, height)
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + entries + b"\x00" * 8


@pytest.fixture(scope="module")
def photo(coffee: Image) -> Image:
    return np.ascontiguousarray(coffee[100:160, 200:290])  # 90x60 BGR


# --- sniff_image ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
@pytest.mark.parametrize("grey", [False, True])
def test_sniff_real_files(photo: Image, fmt: str, grey: bool) -> None:
    image = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY) if grey else photo
    assert sniff_image(_encode(image, EXTENSIONS[fmt])) == ImageInfo(fmt, 90, 60)


def test_sniff_accepts_buffers(photo: Image) -> None:
    data = _encode(photo, ".png")
    assert sniff_image(memoryview(data)) == sniff_image(bytearray(data)) == ImageInfo("png", 90, 60)


@pytest.mark.parametrize("depth,colour", [(16, 0), (1, 0), (8, 3), (16, 6), (8, 4)])
def test_sniff_png_variants(depth: int, colour: int) -> None:
    assert sniff_image(png_header(7, 5, depth, colour)) == ImageInfo("png", 7, 5)


def test_sniff_huge_png_header_and_refuse_it_before_decoding() -> None:
    data = png_header(40000, 40000) + png_chunk(b"IEND", b"")
    assert sniff_image(data) == ImageInfo("png", 40000, 40000)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as info:
            decode_image(data, max_pixels=LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "40000×40000" in message and "1,600,000,000 pixels" in message
    assert "limit of 100,000,000 pixels" in message
    assert peak < 1_000_000


def test_sniff_jpeg_exif_orientation_swaps_size(photo: Image) -> None:
    assert sniff_image(jpeg_with_orientation(photo, 6)) == ImageInfo("jpeg", 60, 90)
    assert sniff_image(jpeg_with_orientation(photo, 3)) == ImageInfo("jpeg", 90, 60)


def test_sniff_jpeg_fill_bytes_and_standalone_markers(photo: Image) -> None:
    jpeg = _encode(photo, ".jpg")
    # SOI, then RST0 and TEM (no length), fill bytes before the next marker
    assert sniff_image(jpeg[:2] + b"\xff\xd0\xff\x01\xff\xff\xff" + jpeg[2:]).width == 90


def test_sniff_progressive_jpeg(photo: Image) -> None:
    _, buf = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = bytes(buf.tobytes())
    assert b"\xff\xc2" in data
    assert sniff_image(data) == ImageInfo("jpeg", 90, 60)
    assert decode_image(data, max_pixels=LIMIT).shape == (60, 90, 3)


@pytest.mark.parametrize("top_down", [False, True])
def test_bmp_bottom_up_and_top_down(photo: Image, top_down: bool) -> None:
    data = _bmp24(photo, top_down=top_down)
    assert sniff_image(data) == ImageInfo("bmp", 90, 60)
    np.testing.assert_array_equal(decode_image(data, max_pixels=LIMIT), photo)


def test_bmp_core_header(photo: Image) -> None:
    assert sniff_image(_bmp24(photo, top_down=False, core=True)) == ImageInfo("bmp", 90, 60)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("kind", [3, 4])
def test_sniff_tiff_byte_orders_and_types(big_endian: bool, kind: int) -> None:
    data = _tiff_header(300, 200, big_endian=big_endian, kind=kind)
    assert sniff_image(data) == ImageInfo("tiff", 300, 200)


def test_sniff_bigtiff() -> None:
    assert sniff_image(_bigtiff_header(70000, 3)) == ImageInfo("tiff", 70000, 3)


def test_empty_file() -> None:
    with pytest.raises(InputError, match="file is empty"):
        sniff_image(b"")
    with pytest.raises(InputError, match="file is empty"):
        decode_image(b"", max_pixels=LIMIT)


def test_text_renamed_png() -> None:
    with pytest.raises(InputError, match="not a PNG, JPEG, BMP or TIFF image"):
        decode_image(b"name,score\nalice,3\n", max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (png_header(0, 10), "zero size"),
        (png_header(10, 10)[:-1] + b"\x00", "checksum"),
        (png_header(10, 10)[:20], "corrupt PNG header"),
        (b"\x89PN", "corrupt PNG header"),
        (b"\xff\xd8\xff\xda\x00\x02", "no frame header"),
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 99), "unknown info header size"),
        (b"II*\x00" + struct.pack("<I", 4000), "outside the file"),
        (_tiff_header(0, 5, big_endian=False, kind=3), "zero size"),
    ],
)
def test_corrupt_headers(data: bytes, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        sniff_image(data)


def _fuzz_cases(valid: list[bytes]) -> list[bytes]:
    rng = np.random.default_rng(1234)
    cases: list[bytes] = []
    signatures = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00"]
    for _ in range(200):
        cases.append(rng.bytes(int(rng.integers(0, 80))))
    for sig in signatures:
        for _ in range(50):
            cases.append(sig + rng.bytes(int(rng.integers(0, 120))))
    for data in valid:
        cases.extend(data[:cut] for cut in range(min(len(data), 200)))
        for _ in range(60):
            mutated = bytearray(data)
            for pos in rng.integers(0, min(len(data), 160), size=int(rng.integers(1, 4))):
                mutated[int(pos)] = int(rng.integers(0, 256))
            cases.append(bytes(mutated))
    return cases


def test_fuzz_sniff_only_raises_input_error(photo: Image) -> None:
    valid = [_encode(photo, ext) for ext in EXTENSIONS.values()]
    valid += [jpeg_with_orientation(photo, 6), _bigtiff_header(9, 9), _bmp24(photo, top_down=True)]
    for data in _fuzz_cases(valid):
        try:
            info = sniff_image(data)
        except InputError:
            continue
        assert info.width > 0 and info.height > 0


def test_fuzz_decode_only_raises_input_error(photo: Image) -> None:
    small = photo[:12, :16]
    valid = [_encode(small, ext) for ext in EXTENSIONS.values()]
    for data in _fuzz_cases(valid)[::3]:
        try:
            image = decode_image(data, max_pixels=10_000)
        except InputError:
            continue
        assert image.dtype == np.uint8 and image.ndim in (2, 3)


# --- decode_image -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "bmp", "tiff"])
def test_lossless_round_trip(photo: Image, fmt: str) -> None:
    np.testing.assert_array_equal(
        decode_image(_encode(photo, EXTENSIONS[fmt]), max_pixels=LIMIT), photo
    )


def test_jpeg_round_trip_is_close(photo: Image) -> None:
    image = decode_image(_encode(photo, ".jpg"), max_pixels=LIMIT)
    assert image.shape == photo.shape and image.dtype == np.uint8
    assert np.abs(image.astype(int) - photo).mean() < 6


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_grey_stays_grey(photo: Image, fmt: str) -> None:
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert decode_image(_encode(grey, EXTENSIONS[fmt]), max_pixels=LIMIT).shape == (60, 90)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_sixteen_bit_is_scaled_not_truncated(ext: str) -> None:
    values = np.array([[0, 128, 129, 257, 32896, 65535]], dtype=np.uint16)
    image = decode_image(_encode(values, ext), max_pixels=LIMIT)
    assert image.dtype == np.uint8
    assert image.tolist() == [[0, 0, 1, 1, 128, 255]]


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_alpha_is_kept(photo: Image, ext: str) -> None:
    alpha = np.tile(np.arange(90, dtype=np.uint8), (60, 1))
    bgra = np.dstack([photo, alpha])
    image = decode_image(_encode(bgra, ext), max_pixels=LIMIT)
    np.testing.assert_array_equal(image, bgra)


def test_sixteen_bit_bgra_png(photo: Image) -> None:
    bgra = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)]).astype(np.uint16) * 257
    image = decode_image(_encode(bgra, ".png"), max_pixels=LIMIT)
    np.testing.assert_array_equal(image, (bgra // 257).astype(np.uint8))


def test_float_tiff_is_scaled() -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert decode_image(_encode(values, ".tiff"), max_pixels=LIMIT).tolist() == [[0, 128, 255]]


def test_jpeg_exif_orientation_is_applied(photo: Image) -> None:
    data = jpeg_with_orientation(photo, 6)  # 6: rotate 90° clockwise to display
    image = decode_image(data, max_pixels=LIMIT)
    assert image.shape == (90, 60, 3)
    expected = cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE)
    assert np.abs(image.astype(int) - expected).mean() < 6


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_truncated_files(photo: Image, fmt: str) -> None:
    data = _encode(photo, EXTENSIONS[fmt])
    for cut in (len(data) // 3, len(data) // 2, len(data) - 2):
        with pytest.raises(InputError, match=f"{fmt.upper()}"):
            decode_image(data[:cut], max_pixels=LIMIT)


def test_corrupt_body(photo: Image) -> None:
    data = bytearray(_encode(photo, ".png"))
    data[60:200] = bytes(140)
    with pytest.raises(InputError, match="could not decode the PNG image"):
        decode_image(bytes(data), max_pixels=LIMIT)


def test_header_size_disagreeing_with_data(photo: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: if the decoder ever reads another size than the header says."""
    import aerovision.engine.imageio as module

    monkeypatch.setattr(module, "sniff_image", lambda data: ImageInfo("png", 91, 60))
    with pytest.raises(InputError, match="header says 91×60 pixels but the image data is 90×60"):
        decode_image(_encode(photo, ".png"), max_pixels=LIMIT)


def test_pixel_limit_is_inclusive(photo: Image) -> None:
    data = _encode(photo, ".png")
    assert decode_image(data, max_pixels=90 * 60).shape == (60, 90, 3)
    with pytest.raises(InputError, match=r"90×60 \(5,400 pixels\), over the limit of 5,399 pixels"):
        decode_image(data, max_pixels=90 * 60 - 1)
    with pytest.raises(InputError, match=r"5,399 pixels \(AEROVISION_MAX_IMAGE_PIXELS\)$"):
        decode_image(data, max_pixels=90 * 60 - 1, limit_name="AEROVISION_MAX_IMAGE_PIXELS")
    with pytest.raises(InputError, match="max_pixels"):
        decode_image(data, max_pixels=0)


def test_imageio_imports_without_opencv() -> None:
    """The API process only sniffs headers: that must not load OpenCV."""
    code = (
        "import sys\n"
        "from aerovision.engine.imageio import sniff_image\n"
        f"info = sniff_image({png_header(64, 48)!r})\n"
        "assert (info.width, info.height) == (64, 48), info\n"
        "assert 'cv2' not in sys.modules, 'cv2 was imported'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


# --- encoding and thumbnails ------------------------------------------------------------------


def test_encode_png_round_trip_with_alpha(photo: Image) -> None:
    bgra = np.dstack([photo, np.full(photo.shape[:2], 99, np.uint8)])
    np.testing.assert_array_equal(decode_image(encode_png(bgra), max_pixels=LIMIT), bgra)


def test_encode_jpeg_flattens_alpha_over_white() -> None:
    bgra = np.zeros((16, 16, 4), np.uint8)  # black, fully transparent
    image = decode_image(encode_jpeg(bgra, quality=95), max_pixels=LIMIT)
    assert image.shape == (16, 16, 3) and image.min() >= 250


@pytest.mark.parametrize("quality", [0, 101, 50.5])
def test_encode_jpeg_quality_range(photo: Image, quality: float) -> None:
    with pytest.raises(InputError, match="quality"):
        encode_jpeg(photo, quality=quality)  # type: ignore[arg-type]


def test_encode_refuses_non_uint8() -> None:
    with pytest.raises(InputError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))


def test_flatten_alpha_blends() -> None:
    pixel = np.array([[[0, 0, 200, 128]]], np.uint8)
    assert flatten_alpha(pixel)[0, 0].tolist() == [127, 127, 227]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1000, 500, 3), (256, 128, 3)),
        ((300, 1200), (64, 256)),
        ((100, 80, 4), (100, 80, 4)),
        ((5000, 3), (256, 1)),
    ],
)
def test_thumbnail_keeps_aspect_never_upscales(
    shape: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    thumb = make_thumbnail(image)
    assert thumb.shape == expected and thumb.dtype == np.uint8
    assert thumb is not image


def test_thumbnail_keeps_alpha_and_averages(photo: Image) -> None:
    big = np.dstack([cv2.resize(photo, (900, 600)), np.full((600, 900), 255, np.uint8)])
    thumb = make_thumbnail(big, long_side=90)
    assert thumb.shape == (60, 90, 4)
    assert np.abs(thumb[:, :, :3].astype(int) - photo).mean() < 8
    with pytest.raises(InputError, match="long_side"):
        make_thumbnail(photo, long_side=0)
