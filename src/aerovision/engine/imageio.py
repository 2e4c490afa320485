"""Image files in and out: header sniffing, guarded decoding, encoding, thumbnails.

:func:`sniff_image` reads only the header, in pure Python, so the API process can
reject a bad or oversized upload cheaply; this module does not import OpenCV until
a function that decodes, encodes or resizes is called.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from aerovision.engine.errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES: Final = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_SIGNATURES: Final = (
    (_PNG_SIGNATURE, "png"),
    (b"\xff\xd8", "jpeg"),
    (b"BM", "bmp"),
    *((sig, "tiff") for sig in _TIFF_SIGNATURES),
)
# SOF0-3, 5-7, 9-11, 13-15; C4 (DHT), C8 (JPG) and CC (DAC) are not frame headers
_JPEG_SOF: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_PNG_DEPTHS: Final = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_BMP_INFO_SIZES: Final = frozenset({16, 40, 52, 56, 64, 108, 124})
_TIFF_TYPE_FORMAT: Final = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: ``format`` is "png", "jpeg", "bmp" or "tiff".

    ``width`` and ``height`` are those of the array :func:`decode_image` returns,
    so for a JPEG whose EXIF orientation turns it by 90° they are swapped with
    respect to the stored frame.
    """

    format: str
    width: int
    height: int


def sniff_image(data: Buffer) -> ImageInfo:
    """Read the format and size from an image file's header, without decoding it.

    Parameters
    ----------
    data : bytes
        The whole file, or at least its header (bytes, bytearray or memoryview).

    Returns
    -------
    ImageInfo
        Format and pixel size.

    Raises
    ------
    InputError
        Empty data, a format other than PNG, JPEG, BMP or TIFF, a corrupt or
        truncated header, or a zero width or height. Nothing else is raised,
        whatever the bytes.

    Notes
    -----
    PNG: signature and IHDR (its CRC is checked). JPEG: the markers are walked to
    the first frame header (SOF0-3, 5-7, 9-11, 13-15), skipping fill bytes and
    standalone markers; the EXIF orientation found on the way swaps the size for
    orientations 5-8. BMP: BITMAPCOREHEADER or BITMAPINFOHEADER and its
    successors (a negative height means top-down). TIFF: classic and BigTIFF,
    tags 256/257 of the first IFD as SHORT, LONG or LONG8.

    Examples
    --------
    >>> header = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000040000000300802000000")
    >>> sniff_image(header + struct.pack(">I", zlib.crc32(header[12:])))
    ImageInfo(format='png', width=64, height=48)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise InputError("file is empty")
    head = bytes(data[:8])
    for signature, fmt in _SIGNATURES:
        if head.startswith(signature):
            break
        if len(head) < len(signature) and signature.startswith(head):
            raise InputError(f"corrupt {fmt.upper()} header: the file is truncated")
    else:
        raise InputError("not a PNG, JPEG, BMP or TIFF image")
    try:
        if fmt == "png":
            width, height = _png_size(data)
        elif fmt == "jpeg":
            width, height = _jpeg_frame(data)[:2]
        elif fmt == "bmp":
            width, height = _bmp_size(data)
        else:
            width, height = _tiff_size(data)
    except InputError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        raise InputError(f"corrupt {fmt.upper()} header: the file is truncated") from exc
    if width <= 0 or height <= 0:
        raise InputError(f"image has a zero size ({width}×{height} pixels)")
    return ImageInfo(fmt, width, height)


def decode_image(
    data: Buffer, *, max_pixels: int, limit_name: str = "max_pixels"
) -> npt.NDArray[np.uint8]:
    """Decode an image file to a uint8 array, refusing oversized ones before decoding.

    Parameters
    ----------
    data : bytes
        A PNG, JPEG, BMP or TIFF file (bytes, bytearray or memoryview).
    max_pixels : int
        Largest width × height accepted; checked against the header, so an
        oversized file costs nothing.
    limit_name : str
        How the error message names that limit, e.g. the setting a user can
        change (``"AEROVISION_MAX_IMAGE_PIXELS"``).

    Returns
    -------
    (H, W[, C]) uint8 array
        Grey (H, W), BGR (H, W, 3) or BGRA (H, W, 4).

    Raises
    ------
    InputError
        Anything :func:`sniff_image` raises, an image over `max_pixels`, a body
        that does not decode (corrupt or truncated), a decoded size that
        disagrees with the header, or an unsupported sample type.

    Notes
    -----
    PNG and TIFF are read unchanged, so alpha is kept; 16-bit samples are scaled
    to 8 bits (``round(v / 257)``), float TIFFs are taken as 0-1 when their
    maximum is at most 1 (else as 0-255), clipped. JPEG and BMP are read as
    grey when stored grey, else BGR; a JPEG's EXIF orientation is applied. A JPEG
    without its end-of-image marker is treated as truncated.

    Examples
    --------
    >>> data = encode_png(np.zeros((4, 6), dtype=np.uint8))
    >>> decode_image(data, max_pixels=1_000_000).shape
    (4, 6)
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise InputError(f"max_pixels must be an integer >= 1, got {max_pixels!r}")
    if max_pixels < 1:
        raise InputError(f"max_pixels must be >= 1, got {max_pixels}")
    info = sniff_image(data)
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise InputError(
            f"image is {info.width}×{info.height} ({pixels:,} pixels), "
            f"over the limit of {max_pixels:,} pixels ({limit_name})"
        )
    name = info.format.upper()
    corrupt = f"could not decode the {name} image: the file is corrupt or truncated"
    if info.format == "jpeg":
        raw = data if isinstance(data, (bytes, bytearray)) else bytes(data)
        if raw.rfind(b"\xff\xd9") < _jpeg_frame(raw)[3]:  # no end-of-image marker
            raise InputError(corrupt)

    import cv2

    flags = cv2.IMREAD_UNCHANGED if info.format in ("png", "tiff") else cv2.IMREAD_ANYCOLOR
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise InputError(corrupt) from exc
    if image is None or image.size == 0:
        raise InputError(corrupt)
    image = _to_uint8(image, name)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 2:
        image = np.dstack([cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1]])
    elif image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (3, 4)):
        raise InputError(f"{name} images with {image.shape[-1]} channels are not supported")

    h, w = image.shape[:2]
    expected = {(info.height, info.width)}
    if info.format == "jpeg":  # tolerate an EXIF orientation read differently from OpenCV
        expected.add((info.width, info.height))
    if (h, w) not in expected:
        raise InputError(
            f"the {name} header says {info.width}×{info.height} pixels "
            f"but the image data is {w}×{h}: the file is corrupt"
        )
    return np.ascontiguousarray(image)


def encode_png(image: npt.NDArray[np.uint8]) -> bytes:
    """Encode a grey, BGR or BGRA uint8 array as PNG (alpha kept).

    Parameters
    ----------
    image : (H, W[, C]) uint8 array
        C = 1, 3 or 4.

    Returns
    -------
    bytes
        The PNG file.

    Examples
    --------
    >>> encode_png(np.zeros((2, 2, 3), dtype=np.uint8))[:4]
    b'\\x89PNG'
    """
    import cv2

    image = _check_uint8_image("image", image)
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes every checked array
        raise InputError("could not encode the image as PNG")
    return bytes(buf.tobytes())


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int = 90) -> bytes:
    """Encode a grey, BGR or BGRA uint8 array as JPEG (alpha composited over white).

    Parameters
    ----------
    image : (H, W[, C]) uint8 array
        C = 1, 3 or 4.
    quality : int
        JPEG quality, 1-100.

    Returns
    -------
    bytes
        The JPEG file.

    Examples
    --------
    >>> encode_jpeg(np.zeros((8, 8), dtype=np.uint8))[:2]
    b'\\xff\\xd8'
    """
    import cv2

    image = _check_uint8_image("image", image)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise InputError(f"quality must be an integer in [1, 100], got {quality!r}")
    if not 1 <= quality <= 100:
        raise InputError(f"quality must be in [1, 100], got {quality}")
    ok, buf = cv2.imencode(".jpg", flatten_alpha(image), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise InputError("could not encode the image as JPEG")
    return bytes(buf.tobytes())


def make_thumbnail(image: npt.NDArray[np.uint8], long_side: int = 256) -> npt.NDArray[np.uint8]:
    """Shrink an image so its longer side is at most `long_side`, keeping its aspect.

    Parameters
    ----------
    image : (H, W[, C]) uint8 array
        Grey, BGR or BGRA; alpha is kept.
    long_side : int
        Longest side of the result, >= 1. Smaller images are returned as a copy,
        never enlarged.

    Returns
    -------
    (h, w[, C]) uint8 array
        Resized with ``INTER_AREA``; each side at least 1 pixel.

    Examples
    --------
    >>> make_thumbnail(np.zeros((1000, 500, 3), dtype=np.uint8)).shape
    (256, 128, 3)
    """
    import cv2

    image = _check_uint8_image("image", image)
    if isinstance(long_side, bool) or not isinstance(long_side, (int, np.integer)):
        raise InputError(f"long_side must be an integer >= 1, got {long_side!r}")
    if long_side < 1:
        raise InputError(f"long_side must be >= 1, got {long_side}")
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image.copy()
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def flatten_alpha(
    image: npt.NDArray[np.uint8], background: tuple[int, int, int] = (255, 255, 255)
) -> npt.NDArray[np.uint8]:
    """Composite a BGRA image over a plain `background` colour; other images pass through.

    Parameters
    ----------
    image : (H, W[, C]) uint8 array
        Grey, BGR or BGRA.
    background : (B, G, R) tuple of int
        Colour shown through transparent pixels.

    Returns
    -------
    (H, W[, 3]) uint8 array
        BGR for a BGRA input, else `image` itself.

    Examples
    --------
    >>> flatten_alpha(np.zeros((1, 1, 4), dtype=np.uint8))[0, 0].tolist()
    [255, 255, 255]
    """
    if image.ndim != 3 or image.shape[2] != 4:
        return image
    alpha = image[:, :, 3:4].astype(np.float32) * np.float32(1 / 255)
    bg = np.asarray(background, dtype=np.float32)
    out = image[:, :, :3].astype(np.float32) * alpha + bg * (1 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _check_uint8_image(name: str, image: Any) -> npt.NDArray[np.uint8]:
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"{name} must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"{name} must be (H, W) or (H, W, C) with C in 1, 3, 4; got {image.shape}")
    if image.size == 0:
        raise InputError(f"{name} is empty ({image.shape[1]}×{image.shape[0]} pixels)")
    return image


def _to_uint8(image: npt.NDArray[Any], name: str) -> npt.NDArray[np.uint8]:
    """8-bit samples from what OpenCV decoded: scale 16-bit and float, refuse the rest."""
    import cv2

    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.asarray(cv2.convertScaleAbs(image, alpha=1 / 257), dtype=np.uint8)
    if image.dtype in (np.float32, np.float64):
        finite = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        scale = 255.0 if finite.size and float(finite.max()) <= 1.0 else 1.0
        return np.asarray(np.clip(finite * scale + 0.5, 0, 255), dtype=np.uint8)
    raise InputError(
        f"{name} images with {image.dtype} samples are not supported: save it with 8- or "
        "16-bit unsigned samples"
    )


def _png_size(data: Buffer) -> tuple[int, int]:
    if len(data) < 33:
        raise InputError("corrupt PNG header: the file ends inside the IHDR chunk")
    length, chunk = struct.unpack_from(">I4s", data, 8)
    if chunk != b"IHDR" or length != 13:
        raise InputError("corrupt PNG header: the first chunk is not a 13-byte IHDR")
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    (crc,) = struct.unpack_from(">I", data, 29)
    if zlib.crc32(bytes(data[12:29])) != crc:
        raise InputError("corrupt PNG header: the IHDR checksum does not match")
    if width > 2**31 - 1 or height > 2**31 - 1:
        raise InputError(f"corrupt PNG header: impossible size {width}×{height}")
    if depth not in _PNG_DEPTHS.get(colour, ()):
        raise InputError(f"corrupt PNG header: bit depth {depth} with colour type {colour}")
    return width, height


def _jpeg_frame(data: Buffer) -> tuple[int, int, int, int]:
    """(width, height, components, offset of the SOF marker), EXIF orientation applied."""
    n = len(data)
    i = 2
    orientation = 1
    while True:
        if i >= n:
            raise InputError("corrupt JPEG header: the file ends before the frame header")
        if data[i] != 0xFF:
            raise InputError(f"corrupt JPEG header: expected a marker at byte {i}")
        while i < n and data[i] == 0xFF:  # the marker's 0xFF and any fill bytes
            i += 1
        if i >= n:
            raise InputError("corrupt JPEG header: the file ends before the frame header")
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            continue
        if marker in (0x00, 0xD8):
            raise InputError(f"corrupt JPEG header: unexpected byte 0x{marker:02X} after 0xFF")
        if marker in (0xD9, 0xDA):
            raise InputError("corrupt JPEG header: no frame header before the image data")
        if i + 2 > n:
            raise InputError("corrupt JPEG header: the file ends inside a marker segment")
        (length,) = struct.unpack_from(">H", data, i)
        if length < 2 or i + length > n:
            raise InputError("corrupt JPEG header: the file ends inside a marker segment")
        if marker in _JPEG_SOF:
            if length < 8:
                raise InputError("corrupt JPEG header: the frame header is too short")
            _, height, width, components = struct.unpack_from(">BHHB", data, i + 2)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            return width, height, components, i - 2
        if marker == 0xE1 and orientation == 1:
            orientation = _exif_orientation(bytes(data[i + 2 : i + length]))
        i += length


def _exif_orientation(payload: bytes) -> int:
    """EXIF orientation (1-8) from an APP1 payload; 1 when absent or unreadable."""
    if not payload.startswith(b"Exif\x00\x00"):
        return 1
    tiff = payload[6:]
    try:
        endian = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack_from(endian + "I", tiff, 4)
        value = _ifd_tags(tiff, endian, False, ifd, (0x0112,)).get(0x0112, 1)
    except (KeyError, struct.error, IndexError, InputError):
        return 1
    return value if 1 <= value <= 8 else 1


def _bmp_size(data: Buffer) -> tuple[int, int]:
    if len(data) < 18:
        raise InputError("corrupt BMP header: the file ends inside the header")
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size != 12 and header_size not in _BMP_INFO_SIZES:
        raise InputError(f"corrupt BMP header: unknown info header size {header_size}")
    if len(data) < 14 + header_size:
        raise InputError("corrupt BMP header: the file ends inside the header")
    if header_size == 12:  # BITMAPCOREHEADER: unsigned 16-bit sizes
        width, height, planes, bits = struct.unpack_from("<HHHH", data, 18)
    else:
        width, height, planes, bits = struct.unpack_from("<iiHH", data, 18)
    if planes != 1 or bits not in (1, 2, 4, 8, 16, 24, 32):
        raise InputError(f"corrupt BMP header: {planes} planes of {bits} bits per pixel")
    if width < 0:
        raise InputError(f"corrupt BMP header: negative width {width}")
    return width, abs(height)  # a negative height means the rows are stored top-down


def _tiff_size(data: Buffer) -> tuple[int, int]:
    endian = "<" if data[:2] == b"II" else ">"
    (magic,) = struct.unpack_from(endian + "H", data, 2)
    big = magic == 43
    if big:
        offset_size, zero, ifd = struct.unpack_from(endian + "HHQ", data, 4)
        if offset_size != 8 or zero != 0:
            raise InputError("corrupt TIFF header: bad BigTIFF offset size")
    else:
        (ifd,) = struct.unpack_from(endian + "I", data, 4)
    tags = _ifd_tags(data, endian, big, ifd, (256, 257))
    if 256 not in tags or 257 not in tags:
        raise InputError("corrupt TIFF header: the first directory has no image width or length")
    return tags[256], tags[257]


def _ifd_tags(
    data: Buffer, endian: str, big: bool, offset: int, wanted: tuple[int, ...]
) -> dict[int, int]:
    """First value of each `wanted` integer tag of the IFD at `offset`."""
    count_format, entry_format, entry_size = ("Q", "HHQ", 20) if big else ("H", "HHI", 12)
    if offset < 8 or offset >= len(data):
        raise InputError(
            "corrupt TIFF header: the first directory lies outside the file (truncated?)"
        )
    (count,) = struct.unpack_from(endian + count_format, data, offset)
    start = offset + struct.calcsize(count_format)
    if count == 0 or start + count * entry_size > len(data):
        raise InputError("corrupt TIFF header: the first directory is truncated")
    field = 8 if big else 4  # size of the count field and of the inline value field
    found: dict[int, int] = {}
    for k in range(int(count)):
        entry = start + k * entry_size
        tag, kind, n = struct.unpack_from(endian + entry_format, data, entry)
        if tag in wanted and n >= 1 and kind in _TIFF_TYPE_FORMAT:
            value_format = endian + _TIFF_TYPE_FORMAT[kind]
            if struct.calcsize(value_format) <= field:  # inline value (LONG8 only in BigTIFF)
                (found[tag],) = struct.unpack_from(value_format, data, entry + 4 + field)
    return found
