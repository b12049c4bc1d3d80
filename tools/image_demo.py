# Copyright (c) OpenMMLab. All rights reserved.
"""Run a detector on an image or a folder of images and draw the results.

    image_demo.py INPUT CONFIG CHECKPOINT --out-dir DIR [--score-thr 0.3]
        [--device cpu|cuda:0] [--cfg-options ...]

INPUT is an image file or a folder (its images, not sub-folders). Each
result is written as ``DIR/<image name>.png`` with masks, boxes, labels and
scores above ``--score-thr`` drawn by mmdet's DetLocalVisualizer. Models
come from ``mmdet.apis.init_detector`` (the checkpoint loads with
``weights_only=True``; class names come from its ``meta.dataset_meta``).

Hand-written because mmdet's image_demo.py is in its repository's demo/,
not in the installed package.
"""
import argparse
import os
import os.path as osp

import mmcv
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import ProgressBar
from mmdet.apis import inference_detector, init_detector
from mmdet.registry import VISUALIZERS

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.checkpoint_fit import check_checkpoint_fits, dataset_classes
from mnc_mm.utils.runtime import add_cfg_options_argument

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args():
    parser = argparse.ArgumentParser(description='Image demo')
    parser.add_argument('input', help='an image file or a folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument(
        '--out-dir', required=True, help='folder for the drawn images')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='bbox score threshold')
    parser.add_argument(
        '--device',
        default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device used for inference (cuda:0 if there is one, else cpu)')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def list_images(path):
    """The image files of ``path`` (a file or a folder), sorted."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise SystemExit(f'input {path!r} is neither a file nor a folder')
    images = sorted(
        osp.join(path, name) for name in os.listdir(path)
        if name.lower().endswith(IMG_EXTENSIONS)
        and osp.isfile(osp.join(path, name)))
    if not images:
        raise SystemExit(f'folder {path!r} has no images '
                         f'({", ".join(IMG_EXTENSIONS)})')
    return images


# torch's errors when a feature map gets smaller than a kernel
TOO_SMALL = ('Output size is too small',
             "Kernel size can't be greater than actual input size")


def detect(model, img, path):
    """``inference_detector``; an image too small for the backbone's strided
    convolutions and poolings (e.g. 1x300) stops with its size."""
    try:
        return inference_detector(model, img)
    except RuntimeError as err:
        if not any(text in str(err) for text in TOO_SMALL):
            raise
        raise SystemExit(
            f'{path} is {img.shape[0]}x{img.shape[1]} px (height x width): '
            f'too small for this model, whose feature maps shrink below '
            f'its kernels ({err}); pad or enlarge the image') from None


def main():
    args = parse_args()
    images = list_images(args.input)
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist')

    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # no cfg_options here: init_detector then skips the backbone's init_cfg
    # (a pretrained download), as the checkpoint overwrites it anyway
    model = init_detector(cfg, args.checkpoint, device=args.device)
    # init_detector only warns about skipped (misfit) weights: refuse them
    check_checkpoint_fits(
        model, CheckpointLoader.load_checkpoint(args.checkpoint, 'cpu'),
        dataset_classes(cfg.get('test_dataloader', {}).get('dataset')),
        args.checkpoint)
    vis_cfg = cfg.get('visualizer', dict(type='DetLocalVisualizer'))
    vis_cfg = dict(vis_cfg, name='image_demo', vis_backends=None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = model.dataset_meta

    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(images)) if len(images) > 1 else None
    for path in images:
        img = mmcv.imread(path)  # BGR, as the test pipeline expects
        if img is None:
            raise SystemExit(f'{path} could not be read as an image')
        result = detect(model, img, path)
        name = osp.splitext(osp.basename(path))[0] + '.png'
        visualizer.add_datasample(
            name, mmcv.bgr2rgb(img), result, draw_gt=False, show=False,
            pred_score_thr=args.score_thr,
            out_file=osp.join(args.out_dir, name))
        if progress is not None:
            progress.update()
    print(f'\nResults have been saved at {args.out_dir}')


if __name__ == '__main__':
    # safe checkpoint loading and atomic writes for this run
    with checkpoint_io():
        main()
