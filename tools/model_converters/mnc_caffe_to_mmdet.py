# Copyright (c) OpenMMLab. All rights reserved.
"""Convert the official MNC release (Caffe weights) to a checkpoint.

    python tools/model_converters/mnc_caffe_to_mmdet.py \\
        data/mnc_model/mnc_model.caffemodel.h5 \\
        checkpoints/mnc_vgg16_official-sbd.pth

Reads IN, Caffe HDF5 (``*.caffemodel.h5``, needs the optional h5py) or a
binary protobuf ``.caffemodel``, told apart by the file's first bytes;
renames and re-lays the blobs (table in
``mnc_mm/converters/mnc_official.py``), checks every key and shape against
the model built from ``--config`` and writes ``OUT-<sha256[:8]>.pth``
(``meta`` + ``state_dict``) atomically. Evaluate it with
``tools/test.py CONFIG OUT-<sha8>.pth``. With ``--init``, IN is the official
ImageNet init ``VGG16.mask.caffemodel`` and OUT (written as named, no
hash: the VGG-16 paper configs' ``load_from`` is
``checkpoints/vgg16_mask_init.pth``) the part of the model it holds.
"""
import argparse
import io
import os.path as osp

import torch

from mmengine.config import Config
from publish_model import publish_checkpoint

from mnc_mm.converters.caffe_weights import load_caffe_weights
from mnc_mm.converters.mnc_official import (BBOX_STDS, caffe_arrays,
                                            convert_mnc_arrays,
                                            convert_vgg16_imagenet_arrays)
from mnc_mm.converters.meta import conversion_meta
from mnc_mm.converters.model_check import (check_state_dict, dataset_classes,
                                           model_state_shapes)
from mnc_mm.utils.fileio import atomic_write_bytes
from mnc_mm.utils.runtime import add_cfg_options_argument

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'mnc', 'mnc_vgg16_official-sbd.py')
# --init: the paper config that loads the converted init
DEFAULT_INIT_CONFIG = osp.join(REPO, 'configs', 'mnc',
                               'mnc_vgg16_5stage_8xb1-40k_sbd.py')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert the official MNC Caffe weights')
    parser.add_argument('in_file',
                        help='official .caffemodel.h5 or .caffemodel file')
    parser.add_argument('out_file', help='output checkpoint (.pth); the '
                        'written file is OUT-<sha256[:8]>.pth')
    parser.add_argument(
        '--config',
        help='the config the weights are checked against (default: '
        'mnc_vgg16_official-sbd.py, with --init '
        'mnc_vgg16_5stage_8xb1-40k_sbd.py)')
    parser.add_argument(
        '--init', action='store_true',
        help='IN is the ImageNet init VGG16.mask.caffemodel: write the '
        'convs and fc6/fc7 (fc6_mask/fc7_mask if present) to OUT itself, '
        'for load_from=OUT')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def convert_detector(arrays: dict, cfg, source: str):
    """The MNC state dict, checked against ``cfg``; returns it and the
    meta entries of the conversion."""
    state_dict, report = convert_mnc_arrays(arrays, source)
    cls_head = cfg.model.roi_head.cls_head
    stds = tuple(cls_head.bbox_coder.target_stds)
    if stds != BBOX_STDS:
        raise ValueError(
            f'{cfg.filename}: roi_head.cls_head.bbox_coder.target_stds is '
            f'{stds}, but the converted bbox_pred is normalised by '
            f'{BBOX_STDS}')
    check_state_dict(state_dict, model_state_shapes(cfg), source)
    classes = dataset_classes(cfg)
    if len(classes) != cls_head.num_classes:
        raise ValueError(f'{cfg.filename}: the test data set has '
                         f'{len(classes)} classes, '
                         f'roi_head.cls_head.num_classes is '
                         f'{cls_head.num_classes}')
    return state_dict, dict(dataset_meta=dict(classes=classes), **report)


def convert(in_file: str, out_file: str, config: str, cfg_options=None,
            init: bool = False):
    """Convert ``in_file``; returns (written path, meta)."""
    net = load_caffe_weights(in_file)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if init:
        state_dict, report = convert_vgg16_imagenet_arrays(
            caffe_arrays(net), in_file)
        check_state_dict(state_dict, model_state_shapes(cfg), in_file,
                         partial=True)
    else:
        state_dict, report = convert_detector(caffe_arrays(net), cfg,
                                              in_file)
    meta = conversion_meta(
        in_file,
        dict(
            format=f'caffe-{net.format}',
            num_layers=len(net.layers),
            num_layers_with_blobs=len(net.params())),
        'tools/model_converters/mnc_caffe_to_mmdet.py', config, report)
    checkpoint = dict(meta=meta, state_dict=state_dict)
    if not init:
        return publish_checkpoint(checkpoint, out_file), meta
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(buffer.getvalue(), out_file)
    return out_file, meta


def main():
    args = parse_args()
    config = args.config or (DEFAULT_INIT_CONFIG if args.init else
                             DEFAULT_CONFIG)
    path, meta = convert(args.in_file, args.out_file, config,
                         args.cfg_options, args.init)
    source = meta['converted_from']
    print(f'read {source["num_layers"]} layers, '
          f'{source["num_layers_with_blobs"]} with parameters '
          f'({source["format"]}) from {args.in_file}')
    if args.init:
        print(f'mask pathway fc6_mask/fc7_mask: '
              f'{"converted" if meta["mask_pathway_converted"] else "absent"}'
              f'; not converted: {", ".join(meta["not_converted"]) or "-"}')
    else:
        print(f'bbox_pred divided by the released stds {BBOX_STDS}')
    print(path)


if __name__ == '__main__':
    main()
