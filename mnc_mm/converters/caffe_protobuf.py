# Copyright (c) OpenMMLab. All rights reserved.
"""Caffe binary ``.caffemodel`` files (a serialised ``NetParameter``),
read with a minimal protobuf wire-format parser: no Caffe, no ``protobuf``
package and no message-size limit (BVLC/caffe src/caffe/proto/caffe.proto).

Only this subset of ``caffe.proto`` is read; every other field is skipped
by its wire type:

* ``NetParameter``: ``name`` 1, ``layers`` 2 (``V1LayerParameter``),
  ``layer`` 100 (``LayerParameter``).
* ``LayerParameter``: ``name`` 1, ``type`` 2 (string), ``blobs`` 7.
* ``V1LayerParameter``: ``name`` 4, ``type`` 5 (enum), ``blobs`` 6; the
  older V0 form (field 1) is refused.
* ``BlobProto``: ``num``/``channels``/``height``/``width`` 1-4 (legacy 4-D
  dims), ``data`` 5 (float), ``shape`` 7 (``BlobShape``: ``dim`` 1, int64),
  ``double_data`` 8. Repeated numbers may be packed or not.

The wire format: every field is a varint key ``number << 3 | wire type``,
then a varint (type 0), 8 bytes (1), a varint length and that many bytes
(2) or 4 bytes (5). Integers are little-endian.
"""
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .binary_reader import WeightFileError
from .caffe_hdf5 import HDF5_SIGNATURE
from .caffe_net import CaffeLayer, CaffeNet

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5
WIRE_NAMES = {VARINT: 'varint', FIXED64: '64-bit', BYTES: 'length-delimited',
              3: 'start-group', 4: 'end-group', FIXED32: '32-bit'}
# V1LayerParameter.LayerType -> the type string Caffe upgrades it to
# (caffe.proto, util/upgrade_proto.cpp ``UpgradeV1LayerType``).
V1_LAYER_TYPES = {
    0: '', 1: 'Accuracy', 2: 'BNLL', 3: 'Concat', 4: 'Convolution',
    5: 'Data', 6: 'Dropout', 7: 'EuclideanLoss', 8: 'Flatten',
    9: 'HDF5Data', 10: 'HDF5Output', 11: 'Im2col', 12: 'ImageData',
    13: 'InfogainLoss', 14: 'InnerProduct', 15: 'LRN',
    16: 'MultinomialLogisticLoss', 17: 'Pooling', 18: 'ReLU', 19: 'Sigmoid',
    20: 'Softmax', 21: 'SoftmaxWithLoss', 22: 'Split', 23: 'TanH',
    24: 'WindowData', 25: 'Eltwise', 26: 'Power',
    27: 'SigmoidCrossEntropyLoss', 28: 'HingeLoss', 29: 'MemoryData',
    30: 'ArgMax', 31: 'Threshold', 32: 'DummyData', 33: 'Slice', 34: 'MVN',
    35: 'AbsVal', 36: 'Silence', 37: 'ContrastiveLoss', 38: 'Exp',
    39: 'Deconvolution'
}
# A parsed field: (number, wire type, value, offset of its key).
Field = Tuple[int, int, object, int]


class WireReader:
    """Fields of protobuf messages inside one in-memory file.

    Offsets are absolute byte offsets into the file, so errors point at the
    exact place.
    """

    def __init__(self, data, source: str):
        self.buf = memoryview(data).cast('B')
        self.source = source

    def error(self, offset: int, expected: str, found: str):
        return WeightFileError(self.source, offset, expected, found)

    def varint(self, pos: int, end: int, what: str) -> Tuple[int, int]:
        """(unsigned value, position after it) of the varint at ``pos``."""
        value = 0
        for i in range(10):
            if pos + i >= end:
                raise self.error(pos, f'{what} (a varint)',
                                 'the end of the message inside it '
                                 '(truncated)')
            byte = self.buf[pos + i]
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                return value, pos + i + 1
        raise self.error(pos, f'{what} (a varint of at most 10 bytes)',
                         'a longer one')

    def fields(self, start: int, end: int, message: str) -> Iterator[Field]:
        """(number, wire type, value, key offset) of each field in
        ``[start, end)``. The value is an int for varints, the value's
        offset for fixed-size fields and ``(begin, end)`` for
        length-delimited ones."""
        pos = start
        while pos < end:
            key_at = pos
            key, pos = self.varint(pos, end, f'a {message} field key')
            number, wire = key >> 3, key & 7
            if number == 0:
                raise self.error(key_at, f'a {message} field number >= 1',
                                 f'0 (key byte 0x{key:02x}; not a Caffe '
                                 f'protobuf file?)')
            if wire == VARINT:
                value, pos = self.varint(pos, end, f'{message} field {number}')
            elif wire in (FIXED64, FIXED32):
                size = 8 if wire == FIXED64 else 4
                if pos + size > end:
                    raise self.error(pos, f'{size} bytes of {message} field '
                                     f'{number}', f'{end - pos} (truncated)')
                value, pos = pos, pos + size
            elif wire == BYTES:
                length, pos = self.varint(pos, end,
                                          f'the length of {message} field '
                                          f'{number}')
                if pos + length > end:
                    raise self.error(
                        pos, f'{length} bytes of {message} field {number}',
                        f'{end - pos} bytes before the end of the enclosing '
                        f'message (truncated or corrupt file)')
                value, pos = (pos, pos + length), pos + length
            else:
                raise self.error(
                    key_at, f'a {message} field of wire type 0, 1, 2 or 5',
                    f'wire type {wire} ({WIRE_NAMES.get(wire, "invalid")}) '
                    f'for field {number}')
            yield number, wire, value, key_at

    def expect_wire(self, field: Field, wire: int, what: str) -> None:
        number, found, _, key_at = field
        if found != wire:
            raise self.error(key_at, f'{what} with wire type {wire} '
                             f'({WIRE_NAMES[wire]})',
                             f'wire type {found} ({WIRE_NAMES.get(found)})')

    def text(self, span: Tuple[int, int], what: str) -> str:
        try:
            return bytes(self.buf[span[0]:span[1]]).decode('utf-8')
        except UnicodeDecodeError as err:
            raise self.error(span[0], f'{what} in UTF-8',
                             f'undecodable bytes ({err.reason})') from None

    def signed(self, value: int) -> int:
        """A varint read as a two's-complement int64."""
        return value - (1 << 64) if value >= 1 << 63 else value


class RepeatedNumbers:
    """A repeated float/double/int64 field, packed or not, in field order."""

    def __init__(self, reader: WireReader, dtype: str, what: str):
        self.reader = reader
        self.dtype = np.dtype(dtype)
        self.what = what
        self.chunks: List[np.ndarray] = []
        # Unpacked values (integers) or their offsets in the file (floats).
        self.unpacked: List[int] = []

    def add(self, field: Field) -> None:
        number, wire, value, key_at = field
        fixed = FIXED32 if self.dtype.itemsize == 4 else FIXED64
        if self.dtype.kind == 'i' and wire == VARINT:
            self.unpacked.append(self.reader.signed(value))
        elif self.dtype.kind == 'f' and wire == fixed:
            self.unpacked.append(value)
        elif wire == BYTES:
            self._flush()
            self.chunks.append(self._packed(*value))
        else:
            raise self.reader.error(
                key_at, f'{self.what} (field {number}) packed or with wire '
                f'type {VARINT if self.dtype.kind == "i" else fixed}',
                f'wire type {wire}')

    def _packed(self, begin: int, end: int) -> np.ndarray:
        buf = self.reader.buf
        if self.dtype.kind == 'f':
            if (end - begin) % self.dtype.itemsize:
                raise self.reader.error(
                    begin, f'packed {self.what}: a multiple of '
                    f'{self.dtype.itemsize} bytes', f'{end - begin} bytes')
            return np.frombuffer(buf[begin:end], self.dtype).copy()
        values = []
        while begin < end:
            value, begin = self.reader.varint(begin, end, self.what)
            values.append(self.reader.signed(value))
        return np.array(values, dtype=self.dtype)

    def _flush(self) -> None:
        if not self.unpacked:
            return
        if self.dtype.kind == 'i':
            self.chunks.append(np.array(self.unpacked, dtype=self.dtype))
        else:
            raw = np.frombuffer(self.reader.buf, np.uint8)
            starts = np.asarray(self.unpacked)[:, None]
            gathered = raw[starts + np.arange(self.dtype.itemsize)]
            self.chunks.append(gathered.view(self.dtype).ravel())
        self.unpacked = []

    def values(self) -> Optional[np.ndarray]:
        """All values in order, or ``None`` if the field never appeared."""
        self._flush()
        if not self.chunks:
            return None
        return np.concatenate(self.chunks)


def _parse_blob(reader: WireReader, span: Tuple[int, int],
                where: str) -> np.ndarray:
    """A ``BlobProto`` as an array of its shape (float32, or float64 for
    ``double_data``)."""
    data = RepeatedNumbers(reader, '<f4', f'{where} data')
    double_data = RepeatedNumbers(reader, '<f8', f'{where} double_data')
    dims = RepeatedNumbers(reader, '<i8', f'{where} shape.dim')
    has_shape = False
    legacy = {}
    for field in reader.fields(*span, 'BlobProto'):
        number, wire, value, _ = field
        if number in (1, 2, 3, 4):
            reader.expect_wire(field, VARINT, f'{where} legacy dim {number}')
            legacy[number] = reader.signed(value)
        elif number == 5:
            data.add(field)
        elif number == 8:
            double_data.add(field)
        elif number == 7:
            reader.expect_wire(field, BYTES, f'{where} shape')
            has_shape = True
            for dim_field in reader.fields(*value, 'BlobShape'):
                if dim_field[0] == 1:
                    dims.add(dim_field)
    shape = None
    if has_shape:
        found = dims.values()
        shape = () if found is None else tuple(int(d) for d in found)
    if legacy:
        legacy_shape = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4))
        if shape is not None and shape != legacy_shape:
            raise reader.error(span[0], f'{where}: shape.dim and the legacy '
                               f'(num, channels, height, width) to agree',
                               f'{shape} and {legacy_shape}')
        shape = legacy_shape
    shape = () if shape is None else shape
    values = double_data.values()
    if values is None:
        values = data.values()
    if values is None:
        values = np.zeros(0, np.float32)
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=object)) != \
            values.size:
        raise reader.error(span[0], f'{where}: as many values as its shape '
                           f'{shape} holds', f'{values.size} values')
    return values.reshape(shape)


def _parse_layer(reader: WireReader, span: Tuple[int, int], index: int,
                 v1: bool) -> CaffeLayer:
    message = 'V1LayerParameter' if v1 else 'LayerParameter'
    name_field, type_field, blobs_field = (4, 5, 6) if v1 else (1, 2, 7)
    name, layer_type, blob_spans = '', '', []
    for field in reader.fields(*span, message):
        number, wire, value, key_at = field
        if number == name_field:
            reader.expect_wire(field, BYTES, f'layer {index} name')
            name = reader.text(value, f'layer {index} name')
        elif number == type_field:
            if v1:
                reader.expect_wire(field, VARINT, f'layer {index} type enum')
                layer_type = V1_LAYER_TYPES.get(value, f'V1 type {value}')
            else:
                reader.expect_wire(field, BYTES, f'layer {index} type')
                layer_type = reader.text(value, f'layer {index} type')
        elif number == blobs_field:
            reader.expect_wire(field, BYTES, f'layer {index} blob')
            blob_spans.append(value)
        elif v1 and number == 1:
            raise reader.error(key_at, f'V1 layer {index} without the V0 '
                               f'layer field 1', 'a V0LayerParameter (Caffe '
                               'models before 2014 are not supported; '
                               'upgrade with upgrade_net_proto_binary)')
    where = f'layer {index} ({name!r})'
    blobs = [_parse_blob(reader, blob_span, f'{where} blob {i}')
             for i, blob_span in enumerate(blob_spans)]
    return CaffeLayer(name, layer_type, blobs)


def decode_caffemodel(data, source: str = '<bytes>') -> CaffeNet:
    """Parse the bytes of a binary ``.caffemodel`` (``NetParameter``).

    Raises:
        WeightFileError: an HDF5 file, a file that is not valid protobuf
            (truncated, bad wire types), a blob whose value count does not
            match its shape, or a file without layers.
    """
    reader = WireReader(data, source)
    head = bytes(reader.buf[:len(HDF5_SIGNATURE)])
    if head == HDF5_SIGNATURE:
        raise reader.error(0, 'a binary protobuf NetParameter',
                           'the HDF5 signature: read *.caffemodel.h5 files '
                           'with mnc_mm.converters.caffe_hdf5')
    name, layers, formats = '', [], set()
    for field in reader.fields(0, len(reader.buf), 'NetParameter'):
        number, wire, value, _ = field
        if number == 1:
            reader.expect_wire(field, BYTES, 'the net name')
            name = reader.text(value, 'the net name')
        elif number in (2, 100):
            v1 = number == 2
            reader.expect_wire(field, BYTES, f'layer {len(layers)}')
            layers.append(_parse_layer(reader, value, len(layers), v1))
            formats.add('protobuf-v1' if v1 else 'protobuf')
    if not layers:
        raise reader.error(0, 'a NetParameter with layers (field 100) or V1 '
                           'layers (field 2)', 'no layers (not a Caffe '
                           'weight file?)')
    if len(formats) > 1:
        raise reader.error(0, 'either layers (field 100) or V1 layers (field '
                           '2)', 'both (Caffe refuses such nets too)')
    return CaffeNet(name, layers, formats.pop(), source)


def load_caffemodel(path: str) -> CaffeNet:
    """Read a binary ``.caffemodel`` (e.g. ``VGG16.mask.caffemodel``)."""
    with open(path, 'rb') as f:
        return decode_caffemodel(f.read(), source=path)


__all__ = ['V1_LAYER_TYPES', 'WireReader', 'decode_caffemodel',
           'load_caffemodel']
