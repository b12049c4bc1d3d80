# Copyright (c) OpenMMLab. All rights reserved.
"""A protobuf wire-format encoder for the Caffe tests, written from the
encoding rules (varint keys ``number << 3 | wire type``; checked against the
protobuf docs' examples in test_caffe_protobuf.py)."""
import struct

import numpy as np


def varint(value):
    value &= (1 << 64) - 1  # negative ints: 10-byte two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number, wire):
    return varint(number << 3 | wire)


def ld(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def vint(number, value):
    return key(number, 0) + varint(value)


def text(number, string):
    return ld(number, string.encode('utf-8'))


def packed(number, values, fmt='f'):
    """A packed repeated float (``fmt='f'``) or double (``'d'``) field."""
    return ld(number, np.asarray(values, dtype='<' + fmt).tobytes())


def unpacked_floats(number, values):
    return b''.join(key(number, 5) + struct.pack('<f', v) for v in values)


def blob(values, shape=None, legacy=None, data=None):
    """A BlobProto: shape.dim packed, legacy 4-D dims, data packed."""
    out = b''
    if legacy is not None:
        out += b''.join(vint(i + 1, d) for i, d in enumerate(legacy))
    if shape is not None:
        out += ld(7, ld(1, b''.join(varint(d) for d in shape)))
    return out + (packed(5, values) if data is None else data)


def layer(name, layer_type, blobs=(), extra=b''):
    return (text(1, name) + text(2, layer_type) + extra +
            b''.join(ld(7, b) for b in blobs))


def net(*layers, name='toy'):
    return text(1, name) + b''.join(ld(100, x) for x in layers)
