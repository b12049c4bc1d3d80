# Copyright (c) OpenMMLab. All rights reserved.
"""Convert the official FCIS release (MXNet ``.params``) to a checkpoint.

    python tools/model_converters/fcis_mxnet_to_mmdet.py \\
        model/fcis_coco-0000.params checkpoints/fcis_r101-c4_official-coco.pth

Reads IN with numpy only (any MXNet record variant), renames and re-lays the
arrays (table in ``mnc_mm/converters/fcis_official.py``), checks every key
and shape against the model built from ``--config`` and writes
``OUT-<sha256[:8]>.pth`` (``meta`` + ``state_dict``) atomically. Evaluate it
with ``tools/test.py CONFIG OUT-<sha8>.pth``. With ``--backbone-only``, IN is
the official ImageNet init ``resnet_v1_101-0000.params`` and OUT the
backbone's weights, so that the paper configs start from them.
"""
import argparse
import os.path as osp

from mmengine.config import Config
from publish_model import publish_checkpoint

from mnc_mm.converters.fcis_official import (BBOX_TARGET_STDS,
                                             convert_fcis_arrays,
                                             convert_resnet_v1_101_arrays)
from mnc_mm.converters.meta import conversion_meta
from mnc_mm.converters.model_check import (check_state_dict, dataset_classes,
                                           model_state_shapes)
from mnc_mm.converters.mxnet_ndarray import load_ndarray_list
from mnc_mm.utils.runtime import add_cfg_options_argument

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'fcis',
                          'fcis_r101-c4_official-coco.py')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert the official FCIS MXNet weights')
    parser.add_argument('in_file', help='official .params file')
    parser.add_argument('out_file', help='output checkpoint (.pth); the '
                        'written file is OUT-<sha256[:8]>.pth')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the config the weights are checked against')
    parser.add_argument(
        '--bbox-weights', choices=tuple(BBOX_TARGET_STDS),
        default='normalised',
        help='normalised: fcis_bbox_* with box coder stds (0.2, 0.2, 0.5, '
        '0.5), as the official evaluation; test: the de-normalised '
        'fcis_bbox_*_test copies with stds 1 (the config must agree)')
    parser.add_argument(
        '--backbone-only', action='store_true',
        help='IN is the ImageNet init resnet_v1_101-0000.params: write the '
        "backbone's weights (no prefix) for the backbone's init_cfg "
        "dict(type='Pretrained', checkpoint=OUT-<sha8>.pth)")
    add_cfg_options_argument(parser)
    return parser.parse_args()


def convert_detector(arrays: dict, cfg, bbox_weights: str,
                     source: str):
    """The FCIS state dict, checked against ``cfg``; returns it and the
    meta entries of the conversion."""
    state_dict, report = convert_fcis_arrays(arrays, bbox_weights, source)
    stds = tuple(cfg.model.roi_head.mask_head.bbox_coder.target_stds)
    if stds != report['bbox_target_stds']:
        raise ValueError(
            f'{cfg.filename}: roi_head.mask_head.bbox_coder.target_stds is '
            f'{stds}, but the {bbox_weights} box weights need '
            f'{report["bbox_target_stds"]}; pass --cfg-options '
            f'model.roi_head.mask_head.bbox_coder.target_stds='
            f'"{report["bbox_target_stds"]}" here and to tools/test.py')
    check_state_dict(state_dict, model_state_shapes(cfg), source)
    classes = dataset_classes(cfg)
    if len(classes) != cfg.model.roi_head.mask_head.num_classes:
        raise ValueError(f'{cfg.filename}: the test data set has '
                         f'{len(classes)} classes, '
                         'roi_head.mask_head.num_classes is '
                         f'{cfg.model.roi_head.mask_head.num_classes}')
    return state_dict, dict(dataset_meta=dict(classes=classes), **report)


def convert(in_file: str, out_file: str, config: str,
            bbox_weights: str = 'normalised', cfg_options=None,
            backbone_only: bool = False):
    """Convert ``in_file``; returns (written path, meta)."""
    arrays = load_ndarray_list(in_file)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if backbone_only:
        state_dict, report = convert_resnet_v1_101_arrays(
            arrays.as_dict(in_file), in_file)
        check_state_dict(state_dict, model_state_shapes(cfg, 'backbone'),
                         in_file)
    else:
        state_dict, report = convert_detector(
            arrays.as_dict(in_file), cfg, bbox_weights, in_file)
    meta = conversion_meta(
        in_file,
        dict(
            format='mxnet-ndarray-list',
            variant=arrays.variant,
            num_arrays=len(arrays.arrays)),
        'tools/model_converters/fcis_mxnet_to_mmdet.py', config, report)
    return publish_checkpoint(dict(meta=meta, state_dict=state_dict),
                              out_file), meta


def main():
    args = parse_args()
    path, meta = convert(args.in_file, args.out_file, args.config,
                         args.bbox_weights, args.cfg_options,
                         args.backbone_only)
    source = meta['converted_from']
    print(f'read {source["num_arrays"]} arrays ({source["variant"]} MXNet '
          f'records) from {args.in_file}')
    if args.backbone_only:
        found = meta['classifier_keys_found']
        print(f'ImageNet classifier fc1000: '
              f'{"present, not converted" if found else "absent"}')
    else:
        print(f'fcis_bbox_*_test arrays: '
              f'{"present" if meta["test_bbox_keys_found"] else "absent"}; '
              f'converted the {meta["bbox_weights"]} box weights (box coder '
              f'stds {meta["bbox_target_stds"]})')
    print(path)


if __name__ == '__main__':
    main()
