"""Which external data files an ONNX graph reads: the `location` of every tensor stored outside it.

A graph's tensors may live in other files (`data_location: EXTERNAL`, `external_data` entries
with a `location` relative to the graph's directory); ONNX Runtime opens whatever a location
names. Signing and verification must cover those bytes and the loader must hand exactly them to
the runtime, so each needs the list without onnx installed (the operator and serving images have
none): this reads the protobuf wire format of the few messages that can hold a tensor (model,
graph, node, attribute, function, training info, sparse tensor) and skips every other field.

Decides the list and which locations are acceptable (a clean relative path inside the artifact,
naming a file the artifact holds). It reads only the graph files it is pointed at, never the data.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from pathlib import Path

from tugboat_workloads.sign.manifest_file import ManifestFormatError, check_relative_path

# Message kinds and, per kind, the fields (by number) that hold a message worth descending into.
MODEL, GRAPH, NODE, ATTRIBUTE, FUNCTION, TRAINING, SPARSE, TENSOR, ENTRY = range(9)
_CHILDREN = {
    MODEL: {7: GRAPH, 20: TRAINING, 25: FUNCTION},
    TRAINING: {1: GRAPH, 2: GRAPH},
    FUNCTION: {7: NODE, 11: ATTRIBUTE},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    TENSOR: {13: ENTRY},
}
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# Subgraphs nest (If, Loop, Scan); protobuf itself parses no deeper than 100 messages.
MAX_DEPTH = 100


class OnnxFormatError(ValueError):
    """The bytes are not a well-formed ONNX protobuf, or a tensor's external data is malformed."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise OnnxFormatError("truncated or overlong varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: memoryview):
    """(field number, wire type, value): an int for varints, a memoryview for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise OnnxFormatError("length-delimited field runs past its message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise OnnxFormatError("truncated fixed-width field")
            value = None
        else:
            raise OnnxFormatError(f"unsupported wire type {wire}")
        yield number, wire, value


def _text(value, what: str) -> str:
    try:
        return bytes(value).decode("utf-8")
    except (TypeError, UnicodeDecodeError) as exc:
        raise OnnxFormatError(f"{what} is not UTF-8 text") from exc


def _tensor_location(buf: memoryview) -> str | None:
    name, external, entries = "", False, {}
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(value, "a tensor name")
        elif number == _TENSOR_LOCATION and wire == 0:
            external = value == EXTERNAL
        elif number == _TENSOR_EXTERNAL and wire == 2:
            entry = {n: _text(v, "an external_data entry")
                     for n, w, v in _fields(value) if w == 2 and n in (1, 2)}  # key, value
            entries[entry.get(1, "")] = entry.get(2, "")
    if not external and not entries:
        return None
    if "location" not in entries:
        raise OnnxFormatError(f"tensor {name!r} is stored externally but names no location")
    return entries["location"]


def _walk(buf: memoryview, kind: int, depth: int, found: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise OnnxFormatError(f"graphs nest deeper than {MAX_DEPTH} levels")
    if kind == TENSOR:
        location = _tensor_location(buf)
        if location is not None:
            found.append(location)
        return
    children = _CHILDREN[kind]
    for number, wire, value in _fields(buf):
        if wire == 2 and number in children:
            _walk(value, children[number], depth + 1, found)


def external_locations(model: bytes) -> list[str]:
    """The distinct external data locations a serialized ModelProto references, in first-use order."""
    found: list[str] = []
    _walk(memoryview(model), MODEL, 0, found)
    return list(dict.fromkeys(found))


class UnsafeLocation(OnnxFormatError):
    """An external data location that could name a file outside the artifact."""


def artifact_path(graph: str, location: str) -> str:
    """The artifact-relative path of `location` as read next to `graph`; UnsafeLocation if it is
    absolute, climbs with '..', is not a clean path or names the manifest or the signature."""
    try:
        check_relative_path(location)
        return check_relative_path(posixpath.join(posixpath.dirname(graph), location))
    except ManifestFormatError:
        raise UnsafeLocation(f"graph {graph!r} reads external data from {location!r}, which is not a "
                             "clean relative path inside the artifact") from None


class MissingExternalData(OnnxFormatError):
    """A graph reads external data from a file the artifact (or its manifest) does not hold."""


def external_files(root: Path, files: Collection[str], holder: str) -> dict[str, tuple[str, ...]]:
    """{graph: artifact paths of the external data it reads} for each `.onnx` file among `files`.

    A file that does not parse as ONNX is no graph anyone can load (the loader refuses it), so it
    reads none. UnsafeLocation or MissingExternalData (naming `holder`, what should list the file)
    when a graph reaches for bytes outside `files`.
    """
    out: dict[str, tuple[str, ...]] = {}
    for graph in sorted(f for f in files if f.endswith(".onnx")):
        try:
            locations = external_locations((root / graph).read_bytes())
        except OnnxFormatError:
            continue
        paths = tuple(artifact_path(graph, location) for location in locations)
        missing = [p for p in paths if p not in files]
        if missing:
            raise MissingExternalData(f"graph {graph!r} reads external data from {missing[0]!r}, "
                                      f"which {holder} does not list")
        out[graph] = paths
    return out
