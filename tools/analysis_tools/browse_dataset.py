# Copyright (c) OpenMMLab. All rights reserved.
"""Draw the ground truth of the train pipeline's output, as mmdet's tool.

    browse_dataset.py CONFIG [--output-dir DIR] [--not-show]
        [--show-interval 2] [--cfg-options ...]

Each sample of ``train_dataloader.dataset``, after its pipeline (resize,
flip, ...), is drawn with its gt boxes, labels and masks; with
``--output-dir`` it is saved as ``DIR/<image file name>``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmdet.models.utils import mask2ndarray
from mmdet.registry import DATASETS, VISUALIZERS
from mmdet.structures.bbox import BaseBoxes

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils.runtime import add_cfg_options_argument


def parse_args():
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--output-dir',
        default=None,
        type=str,
        help='If there is no display interface, you can save it')
    parser.add_argument('--not-show', default=False, action='store_true')
    parser.add_argument(
        '--show-interval',
        type=float,
        default=2,
        help='the interval of show (s)')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.not_show and args.output_dir is None:
        raise SystemExit('--not-show without --output-dir would draw '
                         'nothing; pass --output-dir DIR')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    vis_cfg = cfg.get('visualizer', dict(type='DetLocalVisualizer'))
    visualizer = VISUALIZERS.build(
        dict(vis_cfg, name='browse_dataset', vis_backends=None))
    visualizer.dataset_meta = dataset.metainfo
    if args.output_dir is not None:
        os.makedirs(args.output_dir, exist_ok=True)

    progress_bar = ProgressBar(len(dataset))
    for item in dataset:
        img = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # to RGB
        data_sample = item['data_samples'].numpy()
        gt_instances = data_sample.gt_instances
        name = osp.basename(data_sample.img_path)
        if isinstance(gt_instances.get('bboxes', None), BaseBoxes):
            gt_instances.bboxes = gt_instances.bboxes.tensor
        if gt_instances.get('masks', None) is not None:
            gt_instances.masks = mask2ndarray(gt_instances.masks).astype(bool)
        data_sample.gt_instances = gt_instances

        visualizer.add_datasample(
            name,
            img,
            data_sample,
            draw_pred=False,
            show=not args.not_show,
            wait_time=args.show_interval,
            out_file=None if args.output_dir is None else osp.join(
                args.output_dir, name))
        progress_bar.update()


if __name__ == '__main__':
    main()
