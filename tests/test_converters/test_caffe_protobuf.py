# Copyright (c) OpenMMLab. All rights reserved.
"""The minimal Caffe protobuf reader against bytes encoded by hand (the
protobuf encoding rules) and, where installed, by the ``protobuf`` package
itself with the caffe.proto subset built at run time."""
import struct

import numpy as np
import pytest

from mnc_mm.converters import WeightFileError, decode_caffemodel
from mnc_mm.converters.caffe_protobuf import load_caffemodel
from mnc_mm.converters.mxnet_ndarray import encode_ndarray_list
from protobuf_wire import (blob, key, layer, ld, net, packed, text,
                           unpacked_floats, varint, vint)


def test_test_encoder_matches_the_protobuf_docs():
    assert varint(1) == b'\x01'
    assert varint(150) == bytes.fromhex('9601')
    assert varint(300) == bytes.fromhex('ac02')
    assert varint(-1) == b'\xff' * 9 + b'\x01'
    assert key(100, 2) == bytes.fromhex('a206')


def test_hand_written_bytes():
    values = np.arange(150, dtype=np.float32) / 7
    # BlobProto { shape (7) { dim (1, packed): [150] }, data (5, packed):
    # 600 bytes }: 150 = varint 96 01, 600 = varint d8 04.
    blob_bytes = (bytes.fromhex('3a040a029601') + bytes.fromhex('2ad804') +
                  values.tobytes())
    layer_bytes = bytes.fromhex('0a026970') + bytes.fromhex('3a') + \
        varint(len(blob_bytes)) + blob_bytes
    data = bytes.fromhex('a206') + varint(len(layer_bytes)) + layer_bytes
    caffe_net = decode_caffemodel(data)
    assert caffe_net.format == 'protobuf' and caffe_net.name == ''
    [ip] = caffe_net.layers
    assert ip.name == 'ip' and ip.type == ''
    [weight] = ip.blobs
    assert weight.dtype == np.float32 and weight.shape == (150, )
    np.testing.assert_array_equal(weight, values)


def test_layer_format_skips_unknown_fields():
    weight = np.arange(6, dtype=np.float32).reshape(2, 3, 1, 1) - 2
    bias = np.array([0.5, -0.25], np.float32)
    conv = layer(
        'conv1', 'Convolution',
        [blob(weight.ravel(), shape=weight.shape) +
         packed(6, [9.0] * 6) + packed(9, [9.0] * 6, 'd'),
         blob(bias, shape=(2, ))],
        extra=(text(3, 'data') + text(4, 'conv1') +
               ld(6, text(1, 'shared_w')) + vint(10, 1) +
               key(99, 1) + bytes(8) + key(98, 5) + bytes(4)))
    relu = layer('relu1', 'ReLU', extra=text(3, 'conv1'))
    data = (text(3, 'data') + vint(4, 1) + vint(4, 3) + vint(5, 1) +
            ld(6, vint(1, 1)) + net(conv, relu, name='VGG_ILSVRC_16'))
    caffe_net = decode_caffemodel(data, 'x.caffemodel')
    assert caffe_net.name == 'VGG_ILSVRC_16'
    assert caffe_net.source == 'x.caffemodel'
    assert [(x.name, x.type, len(x.blobs)) for x in caffe_net.layers] == [
        ('conv1', 'Convolution', 2), ('relu1', 'ReLU', 0)]
    params = caffe_net.params()
    assert list(params) == ['conv1']
    np.testing.assert_array_equal(params['conv1'][0], weight)
    np.testing.assert_array_equal(params['conv1'][1], bias)


def test_v1_layers_with_legacy_dims_and_unpacked_values():
    weight = np.arange(12, dtype=np.float32) * 0.5
    bias = np.array([1.5, -2.5, 3.0, 4.25])
    ip = (text(2, 'fc6') + text(3, 'fc7') + text(4, 'fc7') + vint(5, 14) +
          ld(6, blob(None, legacy=(1, 1, 4, 3),
                     data=unpacked_floats(5, weight))) +
          ld(6, blob(None, legacy=(1, 1, 1, 4), data=packed(8, bias, 'd'))) +
          key(7, 5) + struct.pack('<f', 1.0) + text(1001, 'fc7_w'))
    relu = text(4, 'relu7') + vint(5, 18)
    data = text(1, 'old') + ld(2, ip) + ld(2, relu)
    caffe_net = decode_caffemodel(data)
    assert caffe_net.format == 'protobuf-v1'
    assert [(x.name, x.type) for x in caffe_net.layers] == [
        ('fc7', 'InnerProduct'), ('relu7', 'ReLU')]
    w, b = caffe_net.layers[0].blobs
    assert w.shape == (1, 1, 4, 3) and w.dtype == np.float32
    np.testing.assert_array_equal(w.ravel(), weight)
    assert b.shape == (1, 1, 1, 4) and b.dtype == np.float64
    np.testing.assert_array_equal(b.ravel(), bias)


def test_packed_and_unpacked_chunks_concatenate_in_order():
    data = (packed(5, [1, 2]) + unpacked_floats(5, [3]) + packed(5, [4, 5]) +
            unpacked_floats(5, [6, 7]))
    dims = key(1, 0) + varint(7)  # an unpacked dim
    blob_bytes = ld(7, dims) + data
    [x] = decode_caffemodel(net(layer('x', 'Scale', [blob_bytes]))).layers
    np.testing.assert_array_equal(x.blobs[0], np.arange(1, 8))


def test_params_refuses_two_layers_with_one_name():
    dup = layer('fc', 'InnerProduct', [blob([1.0], shape=(1, ))])
    with pytest.raises(ValueError, match="two named 'fc'"):
        decode_caffemodel(net(dup, dup), 'a.caffemodel').params()


def _error(data, source='m.caffemodel'):
    with pytest.raises(WeightFileError) as info:
        decode_caffemodel(data, source)
    assert str(info.value).startswith(f'{source}: at byte offset '
                                      f'{info.value.offset}: expected ')
    return info.value


def test_other_formats_are_named():
    err = _error(b'\x89HDF\r\n\x1a\n' + bytes(100))
    assert err.offset == 0 and 'HDF5' in err.found
    _error(encode_ndarray_list([np.zeros(2, np.float32)], ['arg:w']))
    err = _error(b'')
    assert 'no layers' in err.found
    err = _error(text(1, 'only a name'))
    assert 'no layers' in err.found


def test_truncation_inside_a_layer_is_reported():
    conv = layer('conv1', 'Convolution', [blob(np.ones(8), shape=(2, 4))])
    relu = layer('relu1', 'ReLU')
    data = net(conv, relu)
    name_end, conv_end = len(text(1, 'toy')), len(net(conv))
    for cut in range(1, len(data)):
        if cut == conv_end:  # a shorter but valid net
            assert len(decode_caffemodel(data[:cut]).layers) == 1
            continue
        err = _error(data[:cut])
        if cut == name_end:
            assert 'no layers' in err.found
        else:
            assert 'truncated' in err.found and err.offset <= cut


@pytest.mark.parametrize('payload, offset, found', [
    (net(layer('a', 'X', extra=key(7, 3))), 14, 'wire type 3 (start-group)'),
    (net(layer('a', 'X', extra=vint(1, 5))), 14, 'wire type 0 (varint)'),
    (net(layer('a', 'X', [blob([1.0, 2.0], shape=(3, ))])), 16,
     '2 values'),
    (net(layer('a', 'X', [blob([1.0], shape=(-1, ))])), 16, '1 values'),
    (net(layer('a', 'X', [blob([1.0], shape=(1, 1, 1, 1),
                               legacy=(1, 1, 1, 2))])), 16,
     '(1, 1, 1, 1) and (1, 1, 1, 2)'),
    (net(layer('a', 'X', [ld(5, bytes(6))])), 18, '6 bytes'),
    (ld(2, ld(1, text(1, 'v0'))), 2, 'V0LayerParameter'),
    (net(layer('a', 'X')) + ld(2, text(4, 'b')), 0, 'both'),
    (ld(100, b'\x00'), 3, '0 (key byte 0x00'),
    (ld(100, b'\x80' * 11), 3, 'a longer one'),
    (ld(100, text(1, '') + ld(1, b'\xff')), 7, 'undecodable'),
])
def test_corrupt_messages(payload, offset, found):
    err = _error(payload)
    assert err.offset == offset
    assert found in err.found


def test_load_names_the_file(tmp_path):
    path = tmp_path / 'VGG16.mask.caffemodel'
    path.write_bytes(net(layer('a', 'X', [blob([2.0], shape=(1, ))])))
    assert load_caffemodel(str(path)).params()['a'][0] == 2.0
    path.write_bytes(b'\x89HDF\r\n\x1a\n')
    with pytest.raises(WeightFileError, match=str(path)):
        load_caffemodel(str(path))


def _caffe_subset_classes():
    """NetParameter of a caffe.proto subset built at run time: the V1
    blobs' data is declared unpacked, the others packed."""
    pytest.importorskip(
        'google.protobuf',
        reason='the protobuf package is not installed in this environment; '
        'the hand-encoded tests above cover the wire format')
    from google.protobuf import descriptor_pb2, descriptor_pool
    fdp = descriptor_pb2.FileDescriptorProto(
        name='caffe_subset.proto', package='caffe', syntax='proto2')
    F = descriptor_pb2.FieldDescriptorProto

    def message(name, *fields):
        msg = fdp.message_type.add(name=name)
        for field_name, number, field_type, repeated, type_name, pack in \
                fields:
            field = msg.field.add(
                name=field_name, number=number, type=field_type,
                label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name
            if pack is not None:
                field.options.packed = pack
        return msg

    message('BlobShape', ('dim', 1, F.TYPE_INT64, True, None, True))
    for name, pack in (('BlobProto', True), ('V1BlobProto', False)):
        message(name, ('num', 1, F.TYPE_INT32, False, None, None),
                ('channels', 2, F.TYPE_INT32, False, None, None),
                ('height', 3, F.TYPE_INT32, False, None, None),
                ('width', 4, F.TYPE_INT32, False, None, None),
                ('data', 5, F.TYPE_FLOAT, True, None, pack),
                ('shape', 7, F.TYPE_MESSAGE, False, '.caffe.BlobShape', None),
                ('double_data', 8, F.TYPE_DOUBLE, True, None, pack))
    message('ParamSpec', ('name', 1, F.TYPE_STRING, False, None, None))
    message('LayerParameter',
            ('name', 1, F.TYPE_STRING, False, None, None),
            ('type', 2, F.TYPE_STRING, False, None, None),
            ('bottom', 3, F.TYPE_STRING, True, None, None),
            ('param', 6, F.TYPE_MESSAGE, True, '.caffe.ParamSpec', None),
            ('blobs', 7, F.TYPE_MESSAGE, True, '.caffe.BlobProto', None))
    v1 = message(
        'V1LayerParameter', ('bottom', 2, F.TYPE_STRING, True, None, None),
        ('name', 4, F.TYPE_STRING, False, None, None),
        ('type', 5, F.TYPE_ENUM, False,
         '.caffe.V1LayerParameter.LayerType', None),
        ('blobs', 6, F.TYPE_MESSAGE, True, '.caffe.V1BlobProto', None),
        ('param', 1001, F.TYPE_STRING, True, None, None))
    enum = v1.enum_type.add(name='LayerType')
    for name, number in (('NONE', 0), ('CONVOLUTION', 4),
                         ('INNER_PRODUCT', 14), ('RELU', 18)):
        enum.value.add(name=name, number=number)
    message('NetParameter', ('name', 1, F.TYPE_STRING, False, None, None),
            ('layers', 2, F.TYPE_MESSAGE, True, '.caffe.V1LayerParameter',
             None),
            ('layer', 100, F.TYPE_MESSAGE, True, '.caffe.LayerParameter',
             None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    descriptor = pool.FindMessageTypeByName('caffe.NetParameter')
    try:
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:  # protobuf 3.x
        from google.protobuf.message_factory import MessageFactory
        return MessageFactory(pool).GetPrototype(descriptor)
    return GetMessageClass(descriptor)


def test_cross_check_with_the_protobuf_package():
    NetParameter = _caffe_subset_classes()
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    fc = rng.standard_normal(20).astype(np.float32)

    written = NetParameter(name='cross')
    conv = written.layer.add(name='conv1', type='Convolution')
    conv.bottom.append('data')
    conv.param.add(name='w')
    conv.blobs.add().shape.dim.extend(weight.shape)
    conv.blobs[0].data.extend(weight.ravel().tolist())
    conv.blobs.add(double_data=[0.5, -1.5, 2.0]).shape.dim.append(3)
    written.layer.add(name='relu1', type='ReLU')
    ours = decode_caffemodel(written.SerializeToString())
    assert [(x.name, x.type) for x in ours.layers] == [
        ('conv1', 'Convolution'), ('relu1', 'ReLU')]
    np.testing.assert_array_equal(ours.layers[0].blobs[0], weight)
    np.testing.assert_array_equal(ours.layers[0].blobs[1], [0.5, -1.5, 2])

    old = NetParameter(name='old')
    ip = old.layers.add(name='fc7', type=14)  # INNER_PRODUCT
    ip.param.append('fc7_w')
    ip.blobs.add(num=1, channels=1, height=4, width=5,
                 data=fc.tolist())
    old.layers.add(name='relu7', type=18)
    data = old.SerializeToString()
    assert data.count(key(5, 5)) >= 20  # the floats really are unpacked
    ours = decode_caffemodel(data)
    assert ours.format == 'protobuf-v1'
    assert [(x.name, x.type) for x in ours.layers] == [
        ('fc7', 'InnerProduct'), ('relu7', 'ReLU')]
    np.testing.assert_array_equal(ours.layers[0].blobs[0],
                                  fc.reshape(1, 1, 4, 5))

    # And the other way round: the library reads the hand encoder's bytes.
    parsed = NetParameter.FromString(
        net(layer('conv1', 'Convolution', [blob(fc, shape=(4, 5))])))
    assert parsed.name == 'toy' and parsed.layer[0].type == 'Convolution'
    assert list(parsed.layer[0].blobs[0].shape.dim) == [4, 5]
    np.testing.assert_array_equal(parsed.layer[0].blobs[0].data, fc)
