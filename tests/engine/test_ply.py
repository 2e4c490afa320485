"""PLY reading on files built in the tests: every format, type and layout, and every way to
break one."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from aerovision.engine.errors import InputError
from aerovision.engine.ply import PlyInfo, PointCloud, read_ply, sniff_ply

LIMIT = 1_000_000
HEAD = b"ply\nformat ascii 1.0\n"
PROPS = b"".join(b"property float %s\n" % n for n in (b"x", b"y", b"z", b"nx", b"ny", b"nz"))
FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
XYZN = ("x", "y", "z", "nx", "ny", "nz")
_NP = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def _cloud(n: int = 50, seed: int = 0) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-5, 5, (n, 3)).round(3)
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return points, normals.round(4)


def _element_bytes(
    fmt: str, props: Sequence[tuple[str, str]], columns: dict[str, npt.NDArray[np.float64]], n: int
) -> bytes:
    """Rows of a scalar-only element in `fmt`."""
    if fmt == "ascii":
        cells = []
        for t, name in props:
            col = columns[name]
            cells.append([repr(float(v)) if _NP[t][0] == "f" else str(int(v)) for v in col])
        return b"".join((" ".join(row) + "\n").encode() for row in zip(*cells, strict=True))
    endian = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(name, endian + _NP[t]) for t, name in props])
    rows = np.zeros(n, dtype=dtype)
    for _, name in props:
        rows[name] = columns[name]
    return rows.tobytes()


def _faces_bytes(fmt: str, faces: npt.NDArray[np.int64]) -> bytes:
    if fmt == "ascii":
        return b"".join(f"3 {a} {b} {c}\n".encode() for a, b, c in faces.tolist())
    endian = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([("n", "u1"), ("v", endian + "i4", (3,))])
    rows = np.zeros(len(faces), dtype=dtype)
    rows["n"] = 3
    rows["v"] = faces
    return rows.tobytes()


def make_ply(
    fmt: str,
    points: npt.NDArray[np.float64],
    normals: npt.NDArray[np.float64] | None,
    *,
    types: dict[str, str] | None = None,
    extra: Sequence[tuple[str, str, npt.NDArray[np.float64]]] = (),
    order: Sequence[str] | None = None,
    faces: npt.NDArray[np.int64] | None = None,
    before: bool = False,
    comments: bool = True,
    eol: str = "\n",
    normal_names: Sequence[str] = ("nx", "ny", "nz"),
) -> bytes:
    """A PLY file; `extra` are (type, name, values) vertex properties, `order` the property order,
    `before` adds a scalar and a list element ahead of the vertices."""
    n = len(points)
    columns = {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2]}
    props = [(t, name) for name, t in (types or {}).items()]
    base = ["x", "y", "z"]
    if normals is not None:
        for i, name in enumerate(normal_names):
            columns[name] = normals[:, i]
        base += list(normal_names)
    typed = {name: t for t, name in props}
    props = [(typed.get(name, "float"), name) for name in base]
    for t, name, values in extra:
        columns[name] = values
        props.append((t, name))
    if order is not None:
        by_name = {name: (t, name) for t, name in props}
        props = [by_name[name] for name in order]
    lines = ["ply", f"format {fmt} 1.0"]
    if comments:
        lines += ["comment made by the tests", "obj_info generated"]
    body = b""
    if before:
        lines += ["element camera 2", "property float view_x", "property float view_y"]
        lines += ["element tag 2", "property list uchar int ids"]
        cam = {"view_x": np.array([1.0, 2.0]), "view_y": np.array([3.0, 4.0])}
        body += _element_bytes(fmt, [("float", "view_x"), ("float", "view_y")], cam, 2)
        if fmt == "ascii":
            body += b"2 7 8\n0\n"
        else:
            e = "<" if fmt == "binary_little_endian" else ">"
            body += b"\x02" + np.array([7, 8], dtype=e + "i4").tobytes() + b"\x00"
    lines.append(f"element vertex {n}")
    lines += [f"property {t} {name}" for t, name in props]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    header = (eol.join(lines) + eol).encode()
    body += _element_bytes(fmt, props, columns, n)
    if faces is not None:
        body += _faces_bytes(fmt, faces)
    return header + body


def _check(
    cloud: PointCloud, points: npt.NDArray[np.float64], normals: npt.NDArray[np.float64]
) -> None:
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    np.testing.assert_allclose(cloud.points, points, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cloud.normals, unit, rtol=1e-5, atol=1e-6)


# --- reading what is there ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("ftype", ["float", "double", "float32", "float64"])
def test_reads_every_format_and_float_type(fmt: str, ftype: str) -> None:
    points, normals = _cloud()
    data = make_ply(fmt, points, normals, types=dict.fromkeys(XYZN, ftype))
    cloud = read_ply(data, max_points=LIMIT)
    _check(cloud, points, normals)
    assert cloud.points.dtype == np.float64 and cloud.normals.dtype == np.float64
    assert sniff_ply(data, max_points=LIMIT) == PlyInfo(fmt, len(points), XYZN)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("itype", ["char", "uchar", "short", "ushort", "int", "uint", "int16"])
def test_reads_integer_coordinates(fmt: str, itype: str) -> None:
    rng = np.random.default_rng(1)
    points = rng.integers(0, 100, (30, 3)).astype(np.float64)
    normals = np.zeros((30, 3))
    normals[np.arange(30), rng.integers(0, 3, 30)] = 1.0
    types = dict.fromkeys(("x", "y", "z"), itype) | dict.fromkeys(("nx", "ny", "nz"), "char")
    cloud = read_ply(make_ply(fmt, points, normals, types=types), max_points=LIMIT)
    _check(cloud, points, normals)


@pytest.mark.parametrize("fmt", FORMATS)
def test_extra_vertex_properties_anywhere(fmt: str) -> None:
    """Colours between the coordinates, confidence and intensity after: the misread
    that OpenCV's loadPLYSimple makes."""
    points, normals = _cloud(40, seed=2)
    rng = np.random.default_rng(3)
    extra = [
        ("uchar", "red", rng.integers(0, 256, 40).astype(np.float64)),
        ("uchar", "green", rng.integers(0, 256, 40).astype(np.float64)),
        ("uchar", "blue", rng.integers(0, 256, 40).astype(np.float64)),
        ("float", "confidence", rng.uniform(0, 1, 40).round(3)),
        ("double", "intensity", rng.uniform(0, 1, 40).round(3)),
        ("short", "label", rng.integers(-5, 5, 40).astype(np.float64)),
    ]
    order = [
        "x",
        "red",
        "y",
        "green",
        "blue",
        "z",
        "confidence",
        "nx",
        "label",
        "ny",
        "nz",
        "intensity",
    ]
    data = make_ply(fmt, points, normals, extra=extra, order=order)
    _check(read_ply(data, max_points=LIMIT), points, normals)
    assert sniff_ply(data, max_points=LIMIT).properties == tuple(order)


@pytest.mark.parametrize("fmt", FORMATS)
def test_faces_after_and_elements_before_the_vertices(fmt: str) -> None:
    points, normals = _cloud(25, seed=4)
    faces = np.random.default_rng(5).integers(0, 25, (60, 3))
    data = make_ply(fmt, points, normals, faces=faces, before=True)
    _check(read_ply(data, max_points=LIMIT), points, normals)


@pytest.mark.parametrize("fmt", FORMATS)
def test_crlf_line_ends(fmt: str) -> None:
    points, normals = _cloud(10, seed=6)
    data = make_ply(fmt, points, normals, eol="\r\n", faces=np.zeros((2, 3), np.int64))
    _check(read_ply(data, max_points=LIMIT), points, normals)


def test_normal_x_aliases_and_type_names_of_other_writers() -> None:
    points, normals = _cloud(10, seed=7)
    data = make_ply(
        "binary_little_endian", points, normals,
        normal_names=("normal_x", "normal_y", "normal_z"), types={"x": "float32", "y": "float64"},
    )  # fmt: skip
    _check(read_ply(data, max_points=LIMIT), points, normals)


def test_ascii_ignores_blank_lines_and_extra_spaces() -> None:
    data = make_ply("ascii", *_cloud(3, seed=8), comments=False)
    header, body = data.split(b"end_header\n")
    body = b"\n\n" + body.replace(b" ", b"   ").replace(b"\n", b"  \n\n")
    _check(read_ply(header + b"end_header\n" + body, max_points=LIMIT), *_cloud(3, seed=8))


def test_normals_are_normalised_and_zero_normals_dropped() -> None:
    points, normals = _cloud(6, seed=9)
    scaled = normals * np.array([2.0, 0.5, 10.0, 1.0, 3.0, 1.0])[:, None]
    scaled[3] = 0.0
    cloud = read_ply(make_ply("binary_little_endian", points, scaled), max_points=LIMIT)
    keep = [0, 1, 2, 4, 5]
    _check(cloud, points[keep], normals[keep])
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0)


def test_all_zero_normals_is_an_error() -> None:
    points, _ = _cloud(5)
    with pytest.raises(InputError, match="zero-length normals"):
        read_ply(make_ply("ascii", points, np.zeros((5, 3))), max_points=LIMIT)


def test_arrays_are_read_only() -> None:
    cloud = read_ply(make_ply("ascii", *_cloud(4)), max_points=LIMIT)
    with pytest.raises(ValueError):
        cloud.points[0, 0] = 1.0


# --- refusing what is wrong -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_normals_names_them(fmt: str) -> None:
    points, _ = _cloud(5)
    data = make_ply(fmt, points, None, extra=[("float", "confidence", np.ones(5))])
    for call in (sniff_ply, read_ply):
        with pytest.raises(InputError, match="nx, ny, nz") as info:
            call(data, max_points=LIMIT)
        assert "confidence" in str(info.value)


def test_missing_one_normal_component_names_it() -> None:
    points, normals = _cloud(5)
    data = make_ply("ascii", points, normals, order=["x", "y", "z", "nx", "ny"])
    with pytest.raises(InputError, match="missing: nz"):
        sniff_ply(data, max_points=LIMIT)


def test_missing_coordinates() -> None:
    data = HEAD + b"element vertex 1\nproperty float x\nproperty float nx\nend_header\n1 1\n"
    with pytest.raises(InputError, match="no y z"):
        sniff_ply(data, max_points=LIMIT)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("column", [1, 4])
def test_nan_and_inf_are_refused(fmt: str, bad: float, column: int) -> None:
    points, normals = _cloud(8)
    values = np.hstack([points, normals])
    values[5, column] = bad
    data = make_ply(fmt, values[:, :3], values[:, 3:], types=dict.fromkeys(XYZN, "double"))
    with pytest.raises(InputError, match="NaN or infinite.*vertex 5"):
        read_ply(data, max_points=LIMIT)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
def test_truncated_binary(fmt: str) -> None:
    data = make_ply(fmt, *_cloud(20))
    for cut in (1, 24, 24 * 19 + 1):
        with pytest.raises(InputError, match="truncated"):
            read_ply(data[:-cut], max_points=LIMIT)
    with pytest.raises(InputError, match="truncated"):
        sniff_ply(data[: len(data) - 24 * 10], max_points=LIMIT)


def test_truncated_ascii() -> None:
    data = make_ply("ascii", *_cloud(20))
    lines = data.split(b"\n")
    cut = b"\n".join(lines[:-6]) + b"\n"
    with pytest.raises(InputError, match="truncated"):
        read_ply(cut, max_points=LIMIT)


def test_truncated_element_before_the_vertices() -> None:
    data = make_ply("binary_little_endian", *_cloud(3), before=True)
    header, _ = data.split(b"end_header\n")
    with pytest.raises(InputError, match="truncated"):
        read_ply(header + b"end_header\n" + b"\x00" * 16 + b"\xff", max_points=LIMIT)


@pytest.mark.parametrize("fmt", FORMATS)
def test_absurd_vertex_count_is_refused_fast_without_allocating(fmt: str) -> None:
    header = (
        make_ply(fmt, *_cloud(1))
        .split(b"end_header")[0]
        .replace(b"element vertex 1", b"element vertex 1000000000")
    )
    data = header + b"end_header\n" + b"0" * 1000
    for call in (sniff_ply, read_ply):
        tracemalloc.start()
        start = time.perf_counter()
        with pytest.raises(InputError, match="1,000,000,000 vertices"):
            call(data, max_points=10**12)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < 0.1
        assert peak < 1_000_000


def test_max_points() -> None:
    data = make_ply("binary_little_endian", *_cloud(50))
    assert sniff_ply(data, max_points=50).vertex_count == 50
    for call in (sniff_ply, read_ply):
        with pytest.raises(InputError, match="50 vertices, over the limit of 49 points"):
            call(data, max_points=49)


@pytest.mark.parametrize("max_points", [0, -1, 1.5, True, "10"])
def test_bad_max_points(max_points: object) -> None:
    with pytest.raises(InputError, match="max_points"):
        sniff_ply(make_ply("ascii", *_cloud(1)), max_points=max_points)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"pl", "truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a PLY"),
        (b"solid cube\nfacet normal 0 0 1\n", "not a PLY"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\n", "end_header"),
        (b"ply\nformat ascii 1.0\nend_header\n", "no 'element vertex'"),
        (b"ply\nelement vertex 1\nproperty float x\nend_header\n", "no 'format'"),
        (b"ply\nformat ascii 2.0 extra\nend_header\n", "format"),
        (b"ply\nformat text 1.0\nend_header\n", "format"),
        (HEAD + b"format ascii 1.0\nend_header\n", "second 'format'"),
        (HEAD + b"property float x\nend_header\n", "before any 'element'"),
        (HEAD + b"element vertex -1\nend_header\n", "element <name> <count>"),
        (HEAD + b"element vertex 1e3\nend_header\n", "element <name> <count>"),
        (HEAD + b"element vertex 1\nproperty half x\nend_header\n", "unknown type"),
        (HEAD + b"element vertex 1\nproperty float\nend_header\n", "property <type>"),
        (HEAD + b"element v 1\nproperty float x\nproperty float x\nend_header\n", "two properties"),
        (HEAD + b"element vertex 1\nelement vertex 1\nend_header\n", "declared twice"),
        (HEAD + b"bogus line\nend_header\n", "unexpected"),
        (HEAD + b"element vertex 0\n" + PROPS + b"end_header\n", "no vertices"),
        (
            HEAD + b"element vertex 1\nproperty list uchar float w\n" + PROPS + b"end_header\n",
            "list property",
        ),
        (HEAD + b"element f 1\nproperty list float int v\nend_header\n", "list length"),
    ],
)  # fmt: skip
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        sniff_ply(data, max_points=LIMIT)
    with pytest.raises(InputError, match=message):
        read_ply(data, max_points=LIMIT)


def test_header_without_end_in_a_long_file() -> None:
    data = b"ply\nformat ascii 1.0\n" + b"comment " + b"x" * (2 << 20) + b"\n"
    with pytest.raises(InputError, match="no 'end_header' line in the first"):
        sniff_ply(data, max_points=LIMIT)


def test_ascii_row_with_the_wrong_number_of_values() -> None:
    data = make_ply("ascii", *_cloud(4), comments=False)
    lines = data.split(b"\n")
    lines[-3] += b" 7"  # vertex 2 of 4
    with pytest.raises(InputError, match="vertex 2 has 7 values"):
        read_ply(b"\n".join(lines), max_points=LIMIT)


def test_ascii_rows_that_compensate_are_still_refused() -> None:
    """One value too many on a row and one too few on the next: the total is right, the rows
    are not; reading them as a flat list would shift every later value."""
    data = make_ply("ascii", *_cloud(4), comments=False)
    lines = data.split(b"\n")
    lines[-4] += b" 7"  # vertex 1
    lines[-3] = lines[-3].rsplit(b" ", 1)[0]  # vertex 2
    with pytest.raises(InputError, match="vertex 1 has 7 values"):
        read_ply(b"\n".join(lines), max_points=LIMIT)


@pytest.mark.parametrize("token", [b"zz", b"1.5.3", b"0x10", b"1,5", b"--1"])
def test_ascii_value_that_is_not_a_number_variants(token: bytes) -> None:
    data = make_ply("ascii", *_cloud(4))
    lines = data.split(b"\n")
    lines[-3] = b"1 2 " + token + b" 0 0 1"
    with pytest.raises(InputError, match="not a number"):
        read_ply(b"\n".join(lines), max_points=LIMIT)


def test_ascii_value_that_is_not_a_number() -> None:
    data = make_ply("ascii", *_cloud(4))
    lines = data.split(b"\n")
    lines[-3] = b"1 2 zz 0 0 1"
    with pytest.raises(InputError, match="not a number"):
        read_ply(b"\n".join(lines), max_points=LIMIT)


def test_negative_list_length_before_the_vertices() -> None:
    header = (
        b"ply\nformat binary_little_endian 1.0\nelement tag 1\nproperty list char int ids\n"
        b"element vertex 1\n" + b"".join(b"property float %s\n" % n.encode() for n in XYZN)
    )
    data = header + b"end_header\n" + b"\xff" + b"\x00" * 40
    with pytest.raises(InputError, match="negative list length"):
        read_ply(data, max_points=LIMIT)


def test_non_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        sniff_ply("ply\n", max_points=LIMIT)  # type: ignore[arg-type]


def test_memoryview_and_bytearray() -> None:
    points, normals = _cloud(5)
    data = make_ply("binary_big_endian", points, normals)
    _check(read_ply(memoryview(data), max_points=LIMIT), points, normals)
    _check(read_ply(bytearray(data), max_points=LIMIT), points, normals)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_only_input_errors(fmt: str) -> None:
    """Truncations, flipped bytes and random garbage: a cloud or InputError, nothing else."""
    rng = np.random.default_rng(11)
    valid = make_ply(fmt, *_cloud(12), faces=np.zeros((3, 3), np.int64), before=True)
    samples = [valid[:k] for k in range(0, len(valid), 7)]
    for _ in range(300):
        mutated = bytearray(valid)
        for _ in range(int(rng.integers(1, 6))):
            mutated[int(rng.integers(0, len(mutated)))] = int(rng.integers(0, 256))
        samples.append(bytes(mutated))
    samples += [b"ply\n" + rng.bytes(int(rng.integers(0, 400))) for _ in range(100)]
    samples += [rng.bytes(int(rng.integers(0, 400))) for _ in range(50)]
    for data in samples:
        for call in (sniff_ply, read_ply):
            try:
                call(data, max_points=LIMIT)
            except InputError:
                pass


# --- elements before the vertices: skipped by size, not parsed ---------------------------------

VERTEX_HEADER = "element vertex {n}\n" + "".join(f"property float {c}\n" for c in XYZN)


def _vertex_bytes(fmt: str, points: npt.NDArray[np.float64], normals: npt.NDArray[np.float64]) -> bytes:
    columns = {name: values for name, values in zip(XYZN, np.hstack([points, normals]).T, strict=True)}
    return _element_bytes(fmt, [("float", name) for name in XYZN], columns, len(points))


def _list_rows(
    fmt: str, lengths: npt.NDArray[np.int64], count_type: str, item_type: str, seed: int
) -> bytes:
    """Rows of one list property (``lengths`` items each, random values), built with numpy."""
    rng = np.random.default_rng(seed)
    if fmt == "ascii":  # a few random lines per length, picked at random
        lines = {
            n: [(" ".join(map(str, [n, *rng.integers(0, 99, n).tolist()])) + "\n").encode()
                for _ in range(16)]
            for n in set(lengths.tolist())
        }
        picks = rng.integers(0, 16, len(lengths)).tolist()
        return b"".join(lines[n][k] for n, k in zip(lengths.tolist(), picks, strict=True))
    endian = "<" if fmt == "binary_little_endian" else ">"
    count, item = np.dtype(endian + _NP[count_type]), np.dtype(endian + _NP[item_type])
    sizes = count.itemsize + lengths * item.itemsize
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    body = rng.integers(0, 256, int(sizes.sum()), dtype=np.uint8)  # garbage items
    counts = lengths.astype(count).view(np.uint8).reshape(-1, count.itemsize)
    for k in range(count.itemsize):
        body[starts + k] = counts[:, k]
    return body.tobytes()


Lengths = Callable[[np.random.Generator, int], npt.NDArray[np.int64]]

LENGTHS: dict[str, Lengths] = {
    "triangles": lambda rng, n: np.full(n, 3),
    "triangles and a few quads": lambda rng, n: np.where(rng.random(n) < 0.001, 4, 3),
    "triangles and quads": lambda rng, n: rng.integers(3, 5, n),
    "any length": lambda rng, n: rng.integers(0, 7, n),
    "empty": lambda rng, n: np.zeros(n, np.int64),
}


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize(("count_type", "item_type"), [("uchar", "int"), ("int", "uint"), ("ushort", "short")])
def test_a_large_list_element_before_the_vertices(
    fmt: str, lengths: str, count_type: str, item_type: str
) -> None:
    """300,000 faces ahead of the vertices (MBs: several of the skipper's groups, many
    windows) in each layout of lengths; the vertices after them come out exactly."""
    rng = np.random.default_rng(21)
    n = 300_000
    points, normals = _cloud(300, seed=22)
    header = (
        f"ply\nformat {fmt} 1.0\nelement face {n}\n"
        f"property list {count_type} {item_type} vertex_indices\n"
        + VERTEX_HEADER.format(n=len(points)) + "end_header\n"
    ).encode()
    faces = _list_rows(fmt, LENGTHS[lengths](rng, n), count_type, item_type, seed=23)
    data = header + faces + _vertex_bytes(fmt, points, normals)
    _check(read_ply(data, max_points=LIMIT), points, normals)
    with pytest.raises(InputError, match="truncated"):
        read_ply(header + faces[: len(faces) // 2], max_points=LIMIT)


LAYOUTS = [
    ["list uchar int a"],
    ["float w", "list uchar int a", "ushort c"],
    ["list char short a", "list ushort uchar b"],
    ["uchar k", "list uint double a", "double t", "list uchar float b", "short s"],
]


def _row_bytes(endian: str, layout: list[str], rng: np.random.Generator) -> bytes:
    out = b""
    for prop in layout:
        parts = prop.split()
        if parts[0] == "list":
            n = int(rng.integers(0, 5))
            out += np.array([n], endian + _NP[parts[1]]).tobytes()
            out += rng.integers(0, 100, n).astype(endian + _NP[parts[2]]).tobytes()
        else:
            out += np.array([rng.integers(0, 100)], endian + _NP[parts[0]]).tobytes()
    return out


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=[" ".join(x) for x in LAYOUTS])
def test_list_elements_of_any_layout_before_the_vertices(fmt: str, layout: list[str]) -> None:
    """Scalars around lists, two lists a row, signed and wide lengths; two such elements
    and a fixed-size one ahead of the vertices."""
    rng = np.random.default_rng(31)
    endian = "<" if fmt == "binary_little_endian" else ">"
    points, normals = _cloud(40, seed=32)
    props = "".join(f"property {p}\n" for p in layout)
    header = (
        f"ply\nformat {fmt} 1.0\nelement tag 3000\n{props}element camera 7\nproperty double f\n"
        f"element edge 2000\n{props}" + VERTEX_HEADER.format(n=len(points)) + "end_header\n"
    ).encode()
    body = b"".join(_row_bytes(endian, layout, rng) for _ in range(3000)) + b"\x01" * 56
    body += b"".join(_row_bytes(endian, layout, rng) for _ in range(2000))
    _check(read_ply(header + body + _vertex_bytes(fmt, points, normals), max_points=LIMIT), points, normals)


def test_a_negative_length_deep_inside_a_list_element() -> None:
    lengths = np.random.default_rng(41).integers(0, 7, 200_000)
    points, normals = _cloud(5, seed=42)
    header = (
        "ply\nformat binary_little_endian 1.0\nelement face 200000\n"
        "property list char int vertex_indices\n" + VERTEX_HEADER.format(n=5) + "end_header\n"
    ).encode()
    faces = bytearray(_list_rows("binary_little_endian", lengths, "char", "int", seed=43))
    faces[int(np.sum(1 + 4 * lengths[:151_234]))] = 0xFE  # row 151,234's length: -2
    data = header + bytes(faces) + _vertex_bytes("binary_little_endian", points, normals)
    with pytest.raises(InputError, match="negative list length in element 'face'"):
        read_ply(data, max_points=LIMIT)


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_large_ascii_element_before_the_vertices(eol: str) -> None:
    """200,000 face lines, some blank or only spaces, ahead of the vertices: counted, not
    parsed; the vertices come out exactly, and a short file says how many lines it has."""
    rng = np.random.default_rng(51)
    points, normals = _cloud(30, seed=52)
    faces = _list_rows("ascii", LENGTHS["any length"](rng, 200_000), "uchar", "int", seed=53)
    lines = faces.split(b"\n")
    for i in range(0, len(lines) - 1, 997):
        lines[i] += b"\n \t\n"  # blank lines are not rows
    faces = b"\n".join(lines).replace(b"\n", eol.encode())
    header = ("ply\nformat ascii 1.0\nelement face 200000\nproperty list uchar int vertex_indices\n"
              + VERTEX_HEADER.format(n=30) + "end_header\n").replace("\n", eol).encode()
    vertices = _vertex_bytes("ascii", points, normals).replace(b"\n", eol.encode())
    _check(read_ply(header + faces + vertices, max_points=LIMIT), points, normals)
    short = vertices.split(eol.encode())
    with pytest.raises(InputError, match="holds only 20 vertex lines"):
        read_ply(header + faces + eol.encode().join(short[:20]), max_points=LIMIT)
    with pytest.raises(InputError, match="holds only 0 vertex lines"):
        read_ply(header + faces[: len(faces) // 2] + b"1 2 3 " * 40, max_points=LIMIT)


# --- PointCloud ---------------------------------------------------------------------------------


def test_point_cloud_checks_and_normalises() -> None:
    normals = np.array([[0.0, 0.0, 3.0], [1.0, 1.0, 0.0]])
    cloud = PointCloud(np.zeros((2, 3), np.float32), normals)
    assert cloud.points.dtype == np.float64 and cloud.num_points == 2
    np.testing.assert_allclose(cloud.normals[1], [2**-0.5, 2**-0.5, 0.0])
    with pytest.raises(InputError, match="shape"):
        PointCloud(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="N >= 1"):
        PointCloud(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(InputError, match="same length"):
        PointCloud(np.zeros((3, 3)), np.ones((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        PointCloud(np.full((1, 3), np.nan), np.ones((1, 3)))
    with pytest.raises(InputError, match="zero length"):
        PointCloud(np.zeros((1, 3)), np.zeros((1, 3)))


def test_point_cloud_does_not_freeze_the_callers_array() -> None:
    points = np.zeros((2, 3))
    PointCloud(points, np.ones((2, 3)))
    points[0, 0] = 1.0  # still writeable
