"""PLY point clouds with normals: header sniffing and a parser that never misreads.

:func:`sniff_ply` reads only the header, in pure Python, so the API process can
refuse a bad upload cheaply (not a PLY, no normals, too many vertices, a vertex
count the file cannot hold). :func:`read_ply` parses the vertex element of an
ASCII or binary (little or big endian) file into a :class:`PointCloud`.

What is read: the ``vertex`` element's ``x y z`` and ``nx ny nz`` properties
(``normal_x normal_y normal_z`` are accepted as aliases), whatever their numeric
types (``char``/``int8`` ... ``double``/``float64``), wherever they sit among
other vertex properties (colours, confidence, intensity, ...). Elements declared
before the vertex element are skipped by size, not parsed: a binary element of
fixed-size rows in one step, a binary element with list properties (faces
before the vertices) with numpy over the raw bytes, ASCII elements by counting
their lines in large chunks. Elements after the vertices (faces, edges) are
never read. Vertices whose normal
has zero length are dropped (meshes often carry unreferenced vertices with zero
normals); the rest are normalised to unit length.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from aerovision.engine.errors import InputError

FORMATS: tuple[str, ...] = ("ascii", "binary_little_endian", "binary_big_endian")

_TYPES: Final = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_ENDIAN: Final = {"ascii": "<", "binary_little_endian": "<", "binary_big_endian": ">"}
_STRUCT: Final = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I"}

_MAX_HEADER_BYTES: Final = 1 << 20
"""A header must end (``end_header``) within this many bytes."""

_LINE_CHUNK: Final = 1 << 20
"""Bytes of an ASCII body scanned at once when counting lines."""

_FIRST_LINE: Final = re.compile(rb"ply[ \t]*(\r\n|\n|\r)")
_END_HEADER: Final = re.compile(rb"(?:\r\n|\n)end_header[ \t]*(?:\r\n|\n|$)")
_END_HEADER_CR: Final = re.compile(rb"\rend_header[ \t]*(?:\r|$)")  # old Mac line ends

_POSITION: Final = ("x", "y", "z")
_NORMAL: Final = ("nx", "ny", "nz")
_NORMAL_ALIAS: Final = ("normal_x", "normal_y", "normal_z")

_ZERO_NORMAL: Final = 1e-6
"""Normals shorter than this carry no direction: such vertices are dropped by read_ply."""

Buffer = bytes | bytearray | memoryview
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class PointCloud:
    """Points with unit normals.

    Attributes
    ----------
    points : (N, 3) float64 array
        Coordinates, finite; read-only.
    normals : (N, 3) float64 array
        Unit normals (normalised on construction); read-only.

    Raises
    ------
    InputError
        On construction: shapes other than (N, 3) with N >= 1, different lengths,
        NaN/Inf, or a zero-length normal.

    Examples
    --------
    >>> cloud = PointCloud(np.zeros((1, 3)), np.array([[0.0, 0.0, 2.0]]))
    >>> cloud.normals.tolist()
    [[0.0, 0.0, 1.0]]
    """

    points: FloatArray
    normals: FloatArray

    def __post_init__(self) -> None:
        points = _as_xyz("points", self.points)
        normals = _as_xyz("normals", self.normals)
        if points.shape[0] != normals.shape[0]:
            raise InputError(
                f"points and normals must have the same length, got {points.shape[0]} "
                f"and {normals.shape[0]}"
            )
        length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
        if not np.all(length >= _ZERO_NORMAL):
            bad = int(np.count_nonzero(~(length >= _ZERO_NORMAL)))
            raise InputError(f"{bad} normals have zero length: every point needs a direction")
        normals = normals / length[:, None]
        points = points.copy() if points is self.points else points
        points.flags.writeable = False
        normals.flags.writeable = False
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "normals", normals)

    @property
    def num_points(self) -> int:
        """Number of points N."""
        return int(self.points.shape[0])


def _as_xyz(name: str, a: object) -> FloatArray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an (N, 3) array of numbers") from exc
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise InputError(f"{name} must be an (N, 3) array with N >= 1, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or infinite values")
    return arr


@dataclass(frozen=True)
class PlyInfo:
    """What a PLY header says about its vertices.

    ``format`` is one of :data:`FORMATS`; ``properties`` are the vertex
    element's property names in file order.
    """

    format: str
    vertex_count: int
    properties: tuple[str, ...]


@dataclass(frozen=True)
class _Property:
    name: str
    code: str  # numpy type code of the value (the items, for a list)
    count_code: str | None = None  # numpy type code of a list's length; None for a scalar


@dataclass(frozen=True)
class _Element:
    name: str
    count: int
    properties: tuple[_Property, ...]

    def min_binary_size(self) -> int:
        """Smallest byte size of one row (lists empty)."""
        return sum(int(np.dtype(p.count_code or p.code).itemsize) for p in self.properties)


@dataclass(frozen=True)
class _Header:
    format: str
    elements: tuple[_Element, ...]
    vertex_index: int
    body_offset: int
    columns: tuple[str, ...]  # names of x, y, z (then nx, ny, nz when read) in the file


def sniff_ply(data: Buffer, *, max_points: int) -> PlyInfo:
    """Check a PLY file's header, without reading its body.

    Parameters
    ----------
    data : bytes
        The whole file (bytes, bytearray or memoryview); its length is used to
        check that the declared vertices can fit.
    max_points : int
        Largest vertex count accepted.

    Returns
    -------
    PlyInfo
        Format, vertex count and vertex property names.

    Raises
    ------
    InputError
        Empty data, not a PLY file, a malformed header, no vertex element, no
        ``x y z`` or no ``nx ny nz`` vertex properties, zero vertices, more
        than `max_points` vertices, or more vertices than the file's size can
        hold. Nothing else is raised, whatever the bytes.

    Examples
    --------
    >>> header = b"ply\\nformat ascii 1.0\\nelement vertex 1\\n"
    >>> names = (b"x", b"y", b"z", b"nx", b"ny", b"nz")
    >>> header += b"".join(b"property float %s\\n" % n for n in names)
    >>> sniff_ply(header + b"end_header\\n0 0 0 0 0 1\\n", max_points=10)
    PlyInfo(format='ascii', vertex_count=1, properties=('x', 'y', 'z', 'nx', 'ny', 'nz'))
    """
    header = _parse_header(data, max_points)
    vertex = header.elements[header.vertex_index]
    return PlyInfo(header.format, vertex.count, tuple(p.name for p in vertex.properties))


def read_ply(data: Buffer, *, max_points: int) -> PointCloud:
    """Parse a PLY file's vertices into points with unit normals.

    Parameters
    ----------
    data : bytes
        The whole file (bytes, bytearray or memoryview), ASCII or binary.
    max_points : int
        Largest vertex count accepted; checked against the header before any
        array is allocated.

    Returns
    -------
    PointCloud
        One point per vertex, in file order, minus the vertices whose normal
        has zero length (dropped; see Notes).

    Raises
    ------
    InputError
        Anything :func:`sniff_ply` raises; a truncated body; an ASCII vertex
        row with the wrong number of values or a value that is not a number;
        NaN or infinite coordinates or normals; every normal of zero length.
        Nothing else is raised, whatever the bytes.

    Notes
    -----
    ASCII rows are lines (blank lines are ignored); binary rows are packed
    with no padding, as the PLY format says. Integer-typed coordinates are
    converted to float64. A vertex whose normal is shorter than 1e-6 has no
    direction and is dropped, as meshes written by some tools carry
    unreferenced vertices with zero normals; if no vertex is left, that is an
    error. The other normals are scaled to unit length.

    Examples
    --------
    >>> header = b"ply\\nformat ascii 1.0\\nelement vertex 1\\n"
    >>> names = (b"x", b"y", b"z", b"nx", b"ny", b"nz")
    >>> header += b"".join(b"property float %s\\n" % n for n in names)
    >>> cloud = read_ply(header + b"end_header\\n1 2 3 0 0 2\\n", max_points=10)
    >>> cloud.points.tolist(), cloud.normals.tolist()
    ([[1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0]])
    """
    header = _parse_header(data, max_points)
    raw = data if isinstance(data, bytes) else bytes(data)
    values = _read_ascii(raw, header) if header.format == "ascii" else _read_binary(raw, header)

    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{bad.size} vertices have NaN or infinite coordinates or normals "
            f"(the first is vertex {int(bad[0])})"
        )
    normals = values[:, 3:]
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    keep = length >= _ZERO_NORMAL
    if not keep.any():
        raise InputError(
            f"all {values.shape[0]} vertices have zero-length normals (nx ny nz): "
            "compute normals before uploading"
        )
    if not keep.all():
        values = values[keep]
        length = length[keep]
    points = np.ascontiguousarray(values[:, :3])
    unit = values[:, 3:] / length[:, None]
    return PointCloud(points, unit)


def read_points(data: Buffer, *, max_points: int) -> FloatArray:
    """Parse a PLY file's vertex positions only, whether it has normals or not.

    Parameters
    ----------
    data : bytes
        The whole file (bytes, bytearray or memoryview), ASCII or binary.
    max_points : int
        Largest vertex count accepted.

    Returns
    -------
    (N, 3) float64 array
        ``x y z`` of every vertex, in file order (normals and other properties
        are ignored).

    Raises
    ------
    InputError
        What :func:`read_ply` raises, except for missing or zero normals; NaN or
        infinite coordinates.

    Examples
    --------
    >>> header = b"ply\\nformat ascii 1.0\\nelement vertex 1\\n"
    >>> header += b"".join(b"property float %s\\n" % n for n in (b"x", b"y", b"z"))
    >>> read_points(header + b"end_header\\n1 2 3\\n", max_points=10).tolist()
    [[1.0, 2.0, 3.0]]
    """
    header = _parse_header(data, max_points, normals=False)
    raw = data if isinstance(data, bytes) else bytes(data)
    values = _read_ascii(raw, header) if header.format == "ascii" else _read_binary(raw, header)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{bad.size} vertices have NaN or infinite coordinates "
            f"(the first is vertex {int(bad[0])})"
        )
    return np.ascontiguousarray(values)


def write_ply(cloud: PointCloud, *, comment: str | None = None) -> bytes:
    """``cloud`` as a binary little-endian PLY file: ``double x y z``, ``float nx ny nz``.

    Positions are written in double precision (scans in millimetres with large
    offsets keep their digits), unit normals in single precision.

    Examples
    --------
    >>> cloud = PointCloud(np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 0.0, 1.0]]))
    >>> back = read_ply(write_ply(cloud), max_points=10)
    >>> back.points.tolist(), back.normals.tolist()
    ([[1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0]])
    """
    columns = [(n, "<f8") for n in _POSITION] + [(n, "<f4") for n in _NORMAL]
    rows = np.empty(cloud.num_points, dtype=columns)
    for i, name in enumerate(_POSITION):
        rows[name] = cloud.points[:, i]
    for i, name in enumerate(_NORMAL):
        rows[name] = cloud.normals[:, i]
    lines = ["ply", "format binary_little_endian 1.0"]
    if comment:
        lines += [f"comment {line}" for line in comment.splitlines() if line.strip()]
    lines.append(f"element vertex {cloud.num_points}")
    lines += [f"property double {n}" for n in _POSITION]
    lines += [f"property float {n}" for n in _NORMAL]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii", "replace") + rows.tobytes()


# --- header ------------------------------------------------------------------------------


def _parse_header(data: Buffer, max_points: int, *, normals: bool = True) -> _Header:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)):
        raise InputError(f"max_points must be an integer >= 1, got {max_points!r}")
    if max_points < 1:
        raise InputError(f"max_points must be >= 1, got {max_points}")
    size = len(data)
    if size == 0:
        raise InputError("file is empty")
    head = bytes(data[:_MAX_HEADER_BYTES])
    first = _FIRST_LINE.match(head)
    if first is None:
        if size <= 4 and b"ply".startswith(head.rstrip()):
            raise InputError("not a PLY file: the file is truncated after its first line")
        raise InputError("not a PLY file (it must start with the line 'ply')")
    end = _END_HEADER_CR if first.group(1) == b"\r" else _END_HEADER
    match = end.search(head)
    if match is None:
        if size > _MAX_HEADER_BYTES:
            raise InputError(
                f"corrupt PLY header: no 'end_header' line in the first {_MAX_HEADER_BYTES:,} bytes"
            )
        raise InputError("corrupt PLY header: no 'end_header' line (the file is truncated)")
    text = head[: match.start()].decode("latin-1")
    fmt, elements = _parse_header_lines(text.splitlines()[1:])
    vertex_index = _vertex_index(elements)
    vertex = elements[vertex_index]
    columns = _columns(vertex, normals=normals)
    if vertex.count == 0:
        raise InputError("the PLY file has no vertices ('element vertex 0')")
    if vertex.count > max_points:
        raise InputError(
            f"the PLY file has {vertex.count:,} vertices, over the limit of {max_points:,} points"
        )
    body = size - match.end()
    _check_fits(fmt, elements[: vertex_index + 1], body)
    return _Header(fmt, elements, vertex_index, match.end(), columns)


def _parse_header_lines(lines: list[str]) -> tuple[str, tuple[_Element, ...]]:
    fmt: str | None = None
    elements: list[_Element] = []
    props: list[_Property] = []
    current: tuple[str, int] | None = None

    def close() -> None:
        if current is not None:
            elements.append(_Element(current[0], current[1], tuple(props)))

    for number, line in enumerate(lines, start=2):
        tokens = line.split()
        if not tokens:
            continue
        keyword = tokens[0]
        where = f"header line {number} ({line.strip()[:60]!r})"
        if keyword in ("comment", "obj_info"):
            continue
        if keyword == "format":
            if fmt is not None:
                raise InputError(f"corrupt PLY header: a second 'format' line at {where}")
            if len(tokens) != 3 or tokens[1] not in FORMATS:
                raise InputError(
                    f"corrupt PLY header: {where} must be 'format <{'|'.join(FORMATS)}> 1.0'"
                )
            fmt = tokens[1]
        elif keyword == "element":
            if len(tokens) != 3 or not tokens[2].isdigit() or not tokens[2].isascii():
                raise InputError(f"corrupt PLY header: {where} must be 'element <name> <count>'")
            if any(e.name == tokens[1] for e in elements) or (current and current[0] == tokens[1]):
                raise InputError(f"corrupt PLY header: element {tokens[1]!r} is declared twice")
            close()
            current, props = (tokens[1], int(tokens[2])), []
        elif keyword == "property":
            if current is None:
                raise InputError(f"corrupt PLY header: {where} comes before any 'element' line")
            prop = _parse_property(tokens, where)
            if any(p.name == prop.name for p in props):
                raise InputError(
                    f"corrupt PLY header: element {current[0]!r} has two properties "
                    f"named {prop.name!r}"
                )
            props.append(prop)
        else:
            raise InputError(f"corrupt PLY header: unexpected {where}")
    close()
    if fmt is None:
        raise InputError("corrupt PLY header: no 'format' line")
    return fmt, tuple(elements)


def _parse_property(tokens: list[str], where: str) -> _Property:
    if len(tokens) == 5 and tokens[1] == "list":
        count_code, code = _TYPES.get(tokens[2]), _TYPES.get(tokens[3])
        if count_code is None or code is None:
            bad = tokens[2] if count_code is None else tokens[3]
            raise InputError(f"corrupt PLY header: unknown type {bad!r} at {where}")
        if count_code.startswith("f"):
            raise InputError(f"corrupt PLY header: a list length cannot be {tokens[2]} at {where}")
        return _Property(tokens[4], code, count_code)
    if len(tokens) == 3:
        code = _TYPES.get(tokens[1])
        if code is None:
            raise InputError(f"corrupt PLY header: unknown type {tokens[1]!r} at {where}")
        return _Property(tokens[2], code)
    raise InputError(
        f"corrupt PLY header: {where} must be 'property <type> <name>' or "
        "'property list <count type> <type> <name>'"
    )


def _vertex_index(elements: tuple[_Element, ...]) -> int:
    for i, element in enumerate(elements):
        if element.name == "vertex":
            return i
    raise InputError("the PLY header has no 'element vertex': the file holds no points")


NORMALS_COMMAND: Final = "aerovision ply normals IN.ply OUT.ply"
"""The command that adds normals to a PLY file (named by the error for a file without them)."""


def _columns(vertex: _Element, *, normals: bool) -> tuple[str, ...]:
    names = {p.name: p for p in vertex.properties}
    found = ", ".join(names) or "none"
    missing = [n for n in _POSITION if n not in names]
    if missing:
        raise InputError(
            f"the PLY vertices have no {' '.join(missing)} "
            f"(x, y, z are required; vertex properties found: {found})"
        )
    for prop in vertex.properties:
        if prop.count_code is not None:
            raise InputError(
                f"the PLY vertex element has a list property {prop.name!r}, which is not supported"
            )
    if not normals:
        return _POSITION
    normal = _NORMAL
    if not all(n in names for n in _NORMAL) and all(n in names for n in _NORMAL_ALIAS):
        normal = _NORMAL_ALIAS
    missing = [n for n in normal if n not in names]
    if missing:
        raise InputError(
            f"the PLY vertices have no normals: properties nx, ny, nz are required "
            f"(missing: {', '.join(missing)}; vertex properties found: {found}); "
            f"estimate them with `{NORMALS_COMMAND}`"
        )
    return (*_POSITION, *normal)


def _check_fits(fmt: str, elements: tuple[_Element, ...], body: int) -> None:
    """Refuse counts that the body cannot hold, before anything is allocated."""
    if fmt == "ascii":  # at least one character and one separator per value (lists: "0 ")
        need = sum(e.count * 2 * max(len(e.properties), 1) for e in elements) - 1
    else:
        need = sum(e.count * e.min_binary_size() for e in elements)
    if need > body:
        vertex = elements[-1]
        raise InputError(
            f"the PLY header declares {vertex.count:,} vertices, but the file holds only "
            f"{body:,} bytes after its header (at least {need:,} are needed): "
            "the file is truncated or its vertex count is wrong"
        )


# --- body --------------------------------------------------------------------------------


def _read_binary(data: bytes, header: _Header) -> FloatArray:
    endian = _ENDIAN[header.format]
    offset = header.body_offset
    for element in header.elements[: header.vertex_index]:
        offset = _skip_binary(data, offset, element, endian)
    vertex = header.elements[header.vertex_index]
    dtype = np.dtype([(p.name, endian + p.code) for p in vertex.properties])
    need = vertex.count * dtype.itemsize
    if offset + need > len(data):
        have = (len(data) - offset) // dtype.itemsize
        raise InputError(
            f"the PLY file is truncated: the header declares {vertex.count:,} vertices "
            f"but the file holds only {have:,}"
        )
    rows = np.frombuffer(data, dtype=dtype, count=vertex.count, offset=offset)
    out = np.empty((vertex.count, len(header.columns)), dtype=np.float64)
    for i, name in enumerate(header.columns):
        out[:, i] = rows[name]
    return out


_RUN_FIRST_ROWS: Final = 256
"""Rows checked by the first step of a run (rows whose lists have the first row's lengths)."""

_RUN_MAX_ROWS: Final = 1 << 20
"""Most rows checked by one step of a run (the check grows ×4 per step up to this)."""

_EXIT_WINDOW: Final = 256
"""Bytes per window of the exit tables used where list lengths vary from row to row."""

_EXIT_GROUP: Final = 1 << 17
"""Bytes whose exit tables are built at once (bounds the memory: ~50 bytes per byte)."""

_RUN_MIN_BYTES: Final = 1024
"""A run covering fewer bytes than this is short: its fixed cost per byte exceeds the
exit tables'."""

_SHORT_RUNS: Final = 3
"""After this many short runs in a row, a group of bytes is walked with exit tables."""

IntArray = npt.NDArray[np.int64]


def _truncated_inside(element: _Element) -> InputError:
    return InputError(
        f"the PLY file is truncated inside element {element.name!r}, before the vertices"
    )


def _row(
    data: bytes, offset: int, element: _Element, endian: str
) -> tuple[int, list[int], list[int]]:
    """One row of a binary element from ``offset``: ``(end, lengths, length offsets)`` —
    where the row ends, each list's length and where in the row that length is stored."""
    lengths: list[int] = []
    where: list[int] = []
    start = offset
    try:
        for p in element.properties:
            if p.count_code is None:
                offset += np.dtype(p.code).itemsize
                continue
            (n,) = struct.unpack_from(endian + _STRUCT[p.count_code], data, offset)
            if n < 0:
                raise InputError(
                    f"corrupt PLY file: a negative list length in element {element.name!r}"
                )
            lengths.append(n)
            where.append(offset - start)
            offset += np.dtype(p.count_code).itemsize + n * np.dtype(p.code).itemsize
    except struct.error:
        raise _truncated_inside(element) from None
    if offset > len(data):
        raise _truncated_inside(element)
    return offset, lengths, where


def _skip_binary(data: bytes, offset: int, element: _Element, endian: str) -> int:
    """Offset just after `element`'s rows, found by size rather than row by row.

    Rows of fixed size: one multiplication. Rows with lists: first as runs of rows
    whose lists have the same lengths as the run's first row (a mesh's triangles),
    each run checked with strided numpy views; where lengths vary from row to row,
    with exit tables over groups of bytes (:func:`_hop`). Either way the cost is a
    few numpy passes over the bytes, never a Python step per row, and the memory is
    bounded by the group, whatever the row count.
    """
    if all(p.count_code is None for p in element.properties):
        end = offset + element.count * element.min_binary_size()
        if end > len(data):
            raise _truncated_inside(element)
        return end
    remaining, short = element.count, 0
    while remaining > 0:
        start = offset
        rows, offset = _run(data, offset, remaining, element, endian)
        remaining -= rows
        short = short + 1 if offset - start < _RUN_MIN_BYTES else 0
        if remaining > 0 and short >= _SHORT_RUNS:  # lengths vary from row to row
            rows, offset = _hop(data, offset, remaining, element, endian)
            remaining -= rows
            short = 0
    return offset


def _run(
    data: bytes, offset: int, remaining: int, element: _Element, endian: str
) -> tuple[int, int]:
    """``(rows, end)``: the rows from ``offset`` (at least one) whose lists have the
    lengths of the first one, up to ``remaining``; raises on a bad first row."""
    first_end, lengths, where = _row(data, offset, element, endian)
    size = first_end - offset
    codes = [endian + p.count_code for p in element.properties if p.count_code is not None]
    rows, pos, step = 0, offset, _RUN_FIRST_ROWS
    while rows < remaining:
        k = min(remaining - rows, (len(data) - pos) // size, step)
        if k == 0:  # the next row does not fit: the next step reports it
            break
        same = k
        for code, length, at in zip(codes, lengths, where, strict=True):
            column: npt.NDArray[np.int64] = np.ndarray(
                (k,), dtype=code, buffer=data, offset=pos + at, strides=(size,)
            )
            differs = np.flatnonzero(column != length)
            if differs.size:
                same = min(same, int(differs[0]))
        rows += same
        pos += same * size
        if same < k:
            break
        step = min(4 * step, _RUN_MAX_ROWS)
    return rows, pos


def _lengths_at(buf: npt.NDArray[np.uint8], at: IntArray, code: str) -> IntArray:
    """The list length of type ``code`` stored at each byte offset ``at``."""
    width = np.dtype(code).itemsize
    raw = buf[at[:, None] + np.arange(width)]
    lengths: IntArray = raw.view(code).reshape(-1).astype(np.int64)
    return lengths


@dataclass(frozen=True)
class _Exits:
    """Where rows go from each byte of a group of bytes (offsets relative to its start).

    The group is cut into windows of :data:`_EXIT_WINDOW` bytes; every table is kept
    column by column (byte ``o`` of every window side by side), see :meth:`at`.
    ``ends``: where a row starting at that byte would end; ``bad``: no row can start
    there (it would run past the data, or has a negative list length); ``exits`` and
    ``rows``: where the rows starting there first leave the window, and how many rows
    that is (the byte itself and 0 when bad).
    """

    ends: IntArray
    bad: npt.NDArray[np.bool_]
    exits: IntArray
    rows: IntArray
    windows: int

    def at(self, x: int) -> int:
        """Index of byte ``x`` (relative to the group) in the tables."""
        return (x % _EXIT_WINDOW) * self.windows + x // _EXIT_WINDOW


def _row_sizes(
    data: bytes, start: int, windows: int, element: _Element, endian: str
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Size of a row of ``element`` starting at each byte of the ``windows`` windows
    from ``start`` (``[column, window]``), and which of those starts are impossible."""
    width = _EXIT_WINDOW
    buf = np.frombuffer(data, dtype=np.uint8)
    last = len(data)
    column = np.arange(width, dtype=np.int64)[:, None]
    starts = start + np.arange(windows, dtype=np.int64)[None, :] * width + column
    sizes = np.zeros((width, windows), dtype=np.int64)
    bad = np.zeros((width, windows), dtype=bool)
    fixed, first = 0, True  # scalar bytes since the previous list; no list seen yet
    for p in element.properties:
        if p.count_code is None:
            fixed += np.dtype(p.code).itemsize
            continue
        code = endian + p.count_code
        step = np.dtype(code).itemsize
        if fixed:
            sizes += fixed
        if first and start + fixed + windows * width - 1 + step <= last:
            # every start's first length sits the same distance after it: a strided view
            lengths = np.ndarray(
                (width, windows),
                dtype=code,
                buffer=data,
                offset=start + fixed,
                strides=(1, width),
            ).astype(np.int64, order="C")
        else:
            at = starts + sizes
            bad |= at + step > last
            lengths = _lengths_at(buf, np.minimum(at, last - step).reshape(-1), code)
            lengths = lengths.reshape(width, windows)
        fixed, first = 0, False
        if p.count_code.startswith("i"):
            negative = lengths < 0
            bad |= negative
            lengths[negative] = 0
        lengths *= np.dtype(p.code).itemsize
        sizes += lengths
        sizes += step
    if fixed:
        sizes += fixed
    bad |= starts + sizes > last
    return sizes, bad


def _exits(data: bytes, start: int, element: _Element, endian: str) -> _Exits:
    """The :class:`_Exits` of the :data:`_EXIT_GROUP` bytes from ``start``.

    Every byte is taken as a possible row start and sized at once (numpy over all of
    them). A row that leaves its window is its own exit; one that stays leads to the
    next row's exit: one numpy step fills a column of every window, from the
    windows' last byte backwards.
    """
    width = _EXIT_WINDOW
    windows = -(-min(_EXIT_GROUP, len(data) - start) // width)
    sizes, bad = _row_sizes(data, start, windows, element, endian)
    column = np.arange(width, dtype=np.int64)[:, None]
    window = np.arange(windows, dtype=np.int64)[None, :]
    here = window * width + column
    stays = ~bad & (column + sizes < width)
    link = (column + np.where(stays, sizes, 0)) * windows + window
    ends = here + sizes
    exits = np.where(bad, here, ends)
    rows = (~bad).astype(np.int64)
    step = stays.astype(np.int64)
    flat_exits, flat_rows = exits.reshape(-1), rows.reshape(-1)
    for o in range(width - 2, -1, -1):  # a row starting in a window's last byte leaves it
        exits[o] = flat_exits[link[o]]
        rows[o] = flat_rows[link[o]] + step[o]
    return _Exits(ends.reshape(-1), bad.reshape(-1), flat_exits, flat_rows, windows)


def _hop(
    data: bytes, offset: int, remaining: int, element: _Element, endian: str
) -> tuple[int, int]:
    """``(rows, end)``: up to ``remaining`` rows from ``offset``, where list lengths vary:
    window by window with the exit tables of :func:`_exits`, then row by row inside
    the last window. Stops early (even at 0 rows) before a bad row; the caller's next
    :func:`_run` reports it."""
    table = _exits(data, offset, element, endian)
    size = table.ends.size
    pos, walked = 0, 0
    while pos < size and walked < remaining:
        i = table.at(pos)
        rows = int(table.rows[i])
        if rows == 0:
            break
        if rows > remaining - walked:  # the element ends inside this window
            while walked < remaining and pos < size and not table.bad[table.at(pos)]:
                pos = int(table.ends[table.at(pos)])
                walked += 1
            break
        walked += rows
        pos = int(table.exits[i])
    return walked, offset + pos


def _skip_lines(data: bytes, offset: int, lines: int) -> tuple[int, int]:
    """``(end, found)``: the offset just after the ``lines``-th non-blank line from
    ``offset``, or the end of the data and how many lines it holds when fewer.

    Lines end at ``\\n``, ``\\r`` or ``\\r\\n``, as ``bytes.splitlines`` says; a line of
    whitespace only is blank. Scanned in chunks with numpy, not split.
    """
    if lines <= 0:
        return offset, 0
    found = 0
    open_line = False  # the line running into this chunk has a non-blank character
    pos, size = offset, len(data)
    while pos < size:
        end = min(pos + _LINE_CHUNK, size)
        buf = np.frombuffer(data, dtype=np.uint8, count=end - pos, offset=pos)
        breaks = (buf == 10) | (buf == 13)
        blank = breaks | (buf == 32) | ((buf >= 9) & (buf <= 12))
        kept = np.flatnonzero(breaks | ~blank)  # line breaks and non-blank characters
        if kept.size:
            is_break = breaks[kept]
            after_text = np.empty_like(is_break)
            after_text[0] = open_line
            after_text[1:] = ~is_break[:-1]
            line_ends = kept[is_break & after_text]
            if line_ends.size >= lines - found:
                return pos + int(line_ends[lines - found - 1]) + 1, lines
            found += int(line_ends.size)
            open_line = not bool(is_break[-1])
        pos = end
    if open_line:  # the last line has no line break
        found += 1
    return size, found


def _read_ascii(data: bytes, header: _Header) -> FloatArray:
    before = sum(e.count for e in header.elements[: header.vertex_index])
    vertex = header.elements[header.vertex_index]
    start, skipped = _skip_lines(data, header.body_offset, before)
    end, found = _skip_lines(data, start, vertex.count) if skipped == before else (start, 0)
    if found < vertex.count:
        raise InputError(
            f"the PLY file is truncated: the header declares {vertex.count:,} vertices "
            f"but the file holds only {found:,} vertex lines"
        )
    rows = [line for line in data[start:end].splitlines() if line.strip()]
    width = len(vertex.properties)
    block = b"\n".join(rows)
    counts = _tokens_per_line(block, vertex.count)
    bad = np.flatnonzero(counts != width)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"corrupt PLY file: vertex {i} has {int(counts[i])} values, "
            f"but the header declares {width} vertex properties"
        )
    try:
        values = np.fromstring(block, dtype=np.float64, sep=" ")  # C parser, whitespace-separated
    except ValueError as exc:
        raise InputError("corrupt PLY file: a vertex value is not a number") from exc
    if values.size != vertex.count * width:  # a token such as "1.5.3" read as two numbers
        raise InputError("corrupt PLY file: a vertex value is not a number")
    names = [p.name for p in vertex.properties]
    columns = [names.index(c) for c in header.columns]
    return np.ascontiguousarray(values.reshape(vertex.count, width)[:, columns])


def _tokens_per_line(block: bytes, lines: int) -> npt.NDArray[np.int64]:
    """Number of whitespace-separated tokens on each of the `lines` lines of `block`."""
    buf = np.frombuffer(block, dtype=np.uint8)
    space = (buf == 32) | ((buf >= 9) & (buf <= 13))  # " \t\n\v\f\r"
    starts = ~space
    starts[1:] &= space[:-1]
    line = np.searchsorted(np.flatnonzero(buf == 10), np.flatnonzero(starts))
    counts: npt.NDArray[np.int64] = np.bincount(line, minlength=lines)
    return counts
