# Copyright (c) OpenMMLab. All rights reserved.
"""ONNX export (TorchScript exporter, ``dynamo=False``) writes our ops as
``mnc_mm`` custom-domain nodes on the module's inputs, never a constant
graph. The exported file is read with a small protobuf wire-format reader
(the ``onnx`` package is not a dependency)."""
import io
import struct
import warnings

import pytest
import torch
from torch import nn

from mnc_mm.ops import (PSRoIPool, RoIWarp, RoIWarpPool, ext_available,
                        ps_roi_max_avg_pool, ps_roi_pool)

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')


# --------------------------------------------------------------------------
# Protobuf wire format (https://protobuf.dev/programming-guides/encoding/)
# and the field numbers of onnx/onnx.proto that the tests read.
# --------------------------------------------------------------------------
def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data):
    """{field number: [values]}: ints for varints, bytes otherwise."""
    out, pos = {}, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f'unexpected wire type {wire}')
        out.setdefault(number, []).append(value)
    return out


def read_model(data):
    """Graph inputs, nodes and custom opsets of a serialized ModelProto."""
    model = fields(data)
    graph = fields(model[7][0])  # ModelProto.graph
    opsets = {}
    for raw in model.get(8, []):  # ModelProto.opset_import
        opset = fields(raw)
        opsets[opset.get(1, [b''])[0].decode()] = opset[2][0]
    nodes = []
    for raw in graph.get(1, []):  # GraphProto.node
        node = fields(raw)
        attrs = {}
        for raw_attr in node.get(5, []):  # NodeProto.attribute
            attr = fields(raw_attr)
            name = attr[1][0].decode()
            if 2 in attr:  # AttributeProto.f
                attrs[name] = struct.unpack('<f', attr[2][0])[0]
            elif 3 in attr:  # AttributeProto.i
                attrs[name] = attr[3][0]
        nodes.append(
            dict(inputs=[v.decode() for v in node.get(1, [])],
                 outputs=[v.decode() for v in node.get(2, [])],
                 op_type=node[4][0].decode(),
                 domain=node.get(7, [b''])[0].decode(), attrs=attrs))
    inputs = [fields(raw)[1][0].decode() for raw in graph.get(11, [])]
    outputs = [fields(raw)[1][0].decode() for raw in graph.get(12, [])]
    shapes = [value_shape(raw) for raw in graph.get(12, [])]
    return dict(inputs=inputs, outputs=outputs, output_shapes=shapes,
                nodes=nodes, opsets=opsets)


def value_shape(raw):
    """Dims of a ValueInfoProto's tensor type (None where symbolic)."""
    tensor = fields(fields(fields(raw)[2][0])[1][0])  # type.tensor_type
    dims = fields(tensor[2][0]).get(1, []) if 2 in tensor else []
    return [fields(dim).get(1, [None])[0] for dim in dims]


@pytest.fixture(autouse=True)
def serialize_without_onnx(monkeypatch):
    """torch 2.13's TorchScript exporter serializes the graph in C++ and then
    needs the ``onnx`` package only to splice onnxscript functions into the
    proto (``onnx_proto_utils._add_onnxscript_fn``); the graph has none, so
    without ``onnx`` that step is skipped and the C++ bytes are read."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils
        monkeypatch.setattr(onnx_proto_utils, '_add_onnxscript_fn',
                            lambda proto, custom_opsets: proto)


def export(module, args, input_names):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(module, args, buffer, dynamo=False,
                          input_names=input_names, opset_version=17)
    return read_model(buffer.getvalue())


class PoolAndWarp(nn.Module):
    """PSRoIPool on score maps and RoIWarpPool on features, same RoIs."""

    def __init__(self):
        super().__init__()
        self.pool = PSRoIPool(2, 3, 2, 1 / 8)
        self.warp = RoIWarpPool(4, 2, 1 / 8, quantize=True)

    def forward(self, maps, feat, rois):
        return self.pool(maps, rois), self.warp(feat, rois)


def inputs():
    maps = torch.randn(2, 8, 6, 7)
    feat = torch.randn(2, 3, 6, 7)
    rois = torch.tensor([[0, 2., 3, 40, 30], [1, -9.5, 4, 20.5, 60]])
    return maps, feat, rois


def only_node(model, op_type):
    found = [n for n in model['nodes'] if n['op_type'] == op_type]
    assert len(found) == 1, [n['op_type'] for n in model['nodes']]
    return found[0]


def test_module_exports_custom_nodes_on_its_inputs():
    model = export(PoolAndWarp(), inputs(), ['maps', 'feat', 'rois'])
    assert model['inputs'] == ['maps', 'feat', 'rois']
    assert model['opsets']['mnc_mm'] == 1
    assert not any(n['op_type'] == 'Constant' for n in model['nodes'])
    pool = only_node(model, 'PSRoIPool')
    assert pool['domain'] == 'mnc_mm'
    assert pool['inputs'] == ['maps', 'rois']
    assert pool['attrs'] == dict(output_dim=2, pooled_size=3, group_size=2,
                                 spatial_scale=pytest.approx(0.125))
    warp = only_node(model, 'RoIWarp')
    assert warp['domain'] == 'mnc_mm'
    assert warp['inputs'] == ['feat', 'rois']
    assert warp['attrs'] == dict(output_height=4, output_width=4, quantize=1,
                                 spatial_scale=pytest.approx(0.125))
    max_pool = only_node(model, 'MaxPool')
    assert max_pool['inputs'] == warp['outputs']
    assert model['outputs'] == pool['outputs'] + max_pool['outputs']
    # The symbolics type their outputs, so shape inference goes through.
    assert model['output_shapes'] == [[2, 2, 3, 3], [2, 3, 2, 2]]


class FCISScores(nn.Module):
    """The FCIS head's two op calls: class scores and one pair per RoI."""

    def forward(self, maps, rois, channel_start):
        scores = ps_roi_max_avg_pool(maps, rois, 2, 2, 3, 2, 1 / 8)
        masks = ps_roi_pool(maps, rois, 2, 3, 2, 1 / 8,
                            channel_start=channel_start)
        return scores, masks


def test_max_avg_pool_and_channel_start_export():
    maps = torch.randn(2, 16, 6, 7)
    rois = inputs()[2]
    model = export(FCISScores(), (maps, rois, torch.tensor([2, 0])),
                   ['maps', 'rois', 'start'])
    scores = only_node(model, 'PSRoIMaxAvgPool')
    assert scores['inputs'] == ['maps', 'rois']
    assert scores['attrs']['output_dim'] == 2
    assert scores['attrs']['channels_per_group'] == 2
    pool = only_node(model, 'PSRoIPool')
    assert pool['inputs'] == ['maps', 'rois', 'start']


def test_roi_cast_is_exported():
    """float64 RoIs with float32 maps: the dtype rule is in the graph."""
    model = export(RoIWarp(2, 1 / 8), (inputs()[1], inputs()[2].double()),
                   ['feat', 'rois'])
    cast = only_node(model, 'Cast')
    assert cast['inputs'] == ['rois']
    assert only_node(model, 'RoIWarp')['inputs'] == ['feat',
                                                     cast['outputs'][0]]
