"""The external data locations of an ONNX graph, read from its protobuf bytes without onnx, and
which of them may be read from an artifact."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tugboat_workloads.sign.onnx_external import (
    OnnxFormatError,
    UnsafeLocation,
    artifact_path,
    external_locations,
)


def external(name: str, location: str) -> TensorProto:
    tensor = numpy_helper.from_array(np.ones((2, 2), np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    tensor.external_data.add(key="offset", value="0")
    return tensor


def model(initializers, nodes=()) -> bytes:
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph(list(nodes), "g", [], [output], list(initializers))
    return helper.make_model(graph).SerializeToString()


def test_locations_are_found_in_the_graph_and_in_subgraphs_and_attributes():
    sub = helper.make_graph([], "then", [], [], [external("s", "sub.data")])
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=sub, else_branch=sub),
             helper.make_node("Constant", [], ["k"], value=external("k", "const.data"))]
    found = external_locations(model([external("w", "w.data"), external("v", "w.data")], nodes))
    assert sorted(found) == ["const.data", "sub.data", "w.data"]
    inline = numpy_helper.from_array(np.ones(3, np.float32), "inline")
    assert external_locations(model([inline])) == []


def test_an_external_tensor_without_a_location_and_malformed_bytes_are_errors():
    tensor = external("w", "x")
    del tensor.external_data[:]
    with pytest.raises(OnnxFormatError, match="names no location"):
        external_locations(model([tensor]))
    good = model([external("w", "w.data")])
    with pytest.raises(OnnxFormatError):
        external_locations(good[:-3])  # truncated inside a field
    with pytest.raises(OnnxFormatError, match="wire type"):
        external_locations(b"\x0b\x00")


def _field(number: int, payload: bytes) -> bytes:
    size, varint = len(payload), b""
    while True:
        varint += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return bytes([number << 3 | 2]) + varint + payload


def test_nesting_beyond_protobufs_own_limit_is_refused():
    graph = _field(5, b"")  # an empty initializer
    for _ in range(40):  # graph -> node -> attribute -> graph ...: 120 messages deep
        graph = _field(1, _field(5, _field(6, graph)))
    with pytest.raises(OnnxFormatError, match="nest deeper"):
        external_locations(_field(7, graph))
    assert external_locations(_field(7, _field(1, _field(5, _field(6, graph[:0]))))) == []


@pytest.mark.parametrize("location", ["../x.data", "/etc/passwd", "a/../../x", "./x.data", "a//b",
                                      "manifest.json", "model.sig", "a\\b"])
def test_only_clean_paths_inside_the_artifact_are_readable(location):
    with pytest.raises(UnsafeLocation, match="not a clean relative path inside the artifact"):
        artifact_path("model.onnx", location)


def test_locations_are_relative_to_their_graph():
    assert artifact_path("model.onnx", "model.onnx.data") == "model.onnx.data"
    assert artifact_path("graphs/fp16.onnx", "w/fp16.data") == "graphs/w/fp16.data"
