# Copyright (c) OpenMMLab. All rights reserved.
"""ONNX symbolic functions of the ops, for the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``), as mmcv exports its RoI ops.

Each op becomes one node of the custom domain ``mnc_mm`` (version 1) on the
module's own inputs, its parameters as attributes:

- ``mnc_mm::PSRoIPool(input, rois[, channel_start])``: ``output_dim``,
  ``pooled_size``, ``group_size`` (ints), ``spatial_scale`` (float);
- ``mnc_mm::PSRoIMaxAvgPool(input, rois)``: ``output_dim``,
  ``channels_per_group``, ``pooled_size``, ``group_size``,
  ``spatial_scale``;
- ``mnc_mm::RoIWarp(input, rois)``: ``output_height``, ``output_width``,
  ``spatial_scale``, ``quantize`` (0/1).

The semantics are those of :mod:`mnc_mm.ops`; a runtime needs a kernel for
each node (none ships with onnxruntime). The backward ops are training-only
and have no symbolic. The torch.export-based exporter (``dynamo=True``)
has no translation for these ops and stops with its own error naming them.
"""
from torch.onnx import register_custom_op_symbolic
from torch.onnx.symbolic_helper import (_get_tensor_dim_size, _is_none,
                                        parse_args)

DOMAIN = 'mnc_mm'
# The first default-domain opset the symbolics are registered for; they use
# nothing of it, so every later opset finds them too.
_MIN_OPSET = 7


def _typed(node, like, *sizes):
    """Give the output ``node`` the dtype of ``like`` and ``sizes`` (None
    where unknown), so ONNX shape inference goes on past the custom node."""
    node.setType(like.type().with_sizes(list(sizes)))
    return node


def _num_rois(rois):
    return _get_tensor_dim_size(rois, 0)


@parse_args('v', 'v', 'v', 'i', 'i', 'i', 'f')
def _ps_roi_pool(g, input, rois, channel_start, output_dim, pooled_size,
                 group_size, spatial_scale):
    inputs = [input, rois]
    if not _is_none(channel_start):
        inputs.append(channel_start)
    node = g.op(f'{DOMAIN}::PSRoIPool', *inputs, output_dim_i=output_dim,
                pooled_size_i=pooled_size, group_size_i=group_size,
                spatial_scale_f=spatial_scale)
    return _typed(node, input, _num_rois(rois), output_dim, pooled_size,
                  pooled_size)


@parse_args('v', 'v', 'i', 'i', 'i', 'i', 'f')
def _ps_roi_max_avg_pool(g, input, rois, output_dim, channels_per_group,
                         pooled_size, group_size, spatial_scale):
    node = g.op(f'{DOMAIN}::PSRoIMaxAvgPool', input, rois,
                output_dim_i=output_dim,
                channels_per_group_i=channels_per_group,
                pooled_size_i=pooled_size, group_size_i=group_size,
                spatial_scale_f=spatial_scale)
    return _typed(node, input, _num_rois(rois), output_dim)


@parse_args('v', 'v', 'i', 'i', 'f', 'b')
def _roi_warp(g, input, rois, out_h, out_w, spatial_scale, quantize):
    node = g.op(f'{DOMAIN}::RoIWarp', input, rois, output_height_i=out_h,
                output_width_i=out_w, spatial_scale_f=spatial_scale,
                quantize_i=int(quantize))
    return _typed(node, input, _num_rois(rois),
                  _get_tensor_dim_size(input, 1), out_h, out_w)


SYMBOLICS = {
    'mnc_mm::ps_roi_pool': _ps_roi_pool,
    'mnc_mm::ps_roi_max_avg_pool': _ps_roi_max_avg_pool,
    'mnc_mm::roi_warp': _roi_warp,
}


def register_onnx_symbolics() -> None:
    """Register the symbolic of every forward op (idempotent)."""
    for name, fn in SYMBOLICS.items():
        register_custom_op_symbolic(name, fn, _MIN_OPSET)
