# Copyright (c) OpenMMLab. All rights reserved.
"""Inference speed of a detector on CPU or GPU.

    benchmark.py CONFIG [CHECKPOINT] [--repeat-num 1] [--max-iter 50]
        [--num-warmup 5] [--log-interval 10] [--device cpu|cuda]
        [--fuse-conv-bn] [--cfg-options ...]

Runs ``model.test_step`` (preprocessing, forward and post-processing; data
loading excluded) on the test set, one image a batch, cycling through it
if it is shorter than ``--max-iter``. The first ``--num-warmup`` images are
not timed. mmdet's benchmark needs CUDA; this one synchronises only on CUDA
and so also measures CPU inference. Without CHECKPOINT the weights are
random, which is fine for speed but not for post-processing-heavy models.
"""
import argparse
import itertools
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmdet.registry import MODELS

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.runtime import add_cfg_options_argument


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark inference')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument('--repeat-num', type=int, default=1,
                        help='number of timed runs, each --max-iter images')
    parser.add_argument('--max-iter', type=int, default=50,
                        help='images per run, warm-up included')
    parser.add_argument('--num-warmup', type=int, default=5,
                        help='untimed images at the start of each run')
    parser.add_argument('--log-interval', type=int, default=10,
                        help='print the running speed every N images')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda[:N] (cuda if there is one)')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fuse conv and bn layers first')
    add_cfg_options_argument(parser)
    args = parser.parse_args()
    if args.max_iter <= args.num_warmup or args.num_warmup < 0:
        parser.error('--max-iter must be larger than --num-warmup >= 0')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available')
    return args


def build_model(cfg, args):
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if args.checkpoint is not None:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    if args.fuse_conv_bn:
        from mmcv.cnn import fuse_conv_bn
        model = fuse_conv_bn(model)
    return model.to(args.device).eval()


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def run_once(model, loader, args):
    """Images/s of one run of ``--max-iter`` images after the warm-up."""
    timed, elapsed = 0, 0.
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    for i, data in enumerate(itertools.islice(batches, args.max_iter)):
        sync(args.device)
        start = time.perf_counter()
        with torch.no_grad():
            model.test_step(data)
        sync(args.device)
        if i < args.num_warmup:
            continue
        timed += 1
        elapsed += time.perf_counter() - start
        if timed % args.log_interval == 0:
            print(f'Done image [{timed:<3}/ '
                  f'{args.max_iter - args.num_warmup}], '
                  f'fps: {timed / elapsed:.2f} img / s', flush=True)
    return timed / elapsed


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if args.checkpoint is None:
        print('No checkpoint: timing randomly initialised weights.')
    cfg.model.get('backbone', {}).pop('init_cfg', None)  # no downloads

    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    model = build_model(cfg, args)

    fps = [run_once(model, loader, args) for _ in range(args.repeat_num)]
    mean = float(np.mean(fps))
    print(f'Device: {args.device}, threads: {torch.get_num_threads()}, '
          f'{args.max_iter - args.num_warmup} images x {args.repeat_num} '
          f'run(s) after {args.num_warmup} warm-up images')
    if len(fps) > 1:
        print('Runs: ' + ', '.join(f'{f:.2f}' for f in fps) + ' img / s')
    print(f'Overall fps: {mean:.2f} img / s '
          f'(std {float(np.std(fps)):.2f}), '
          f'latency: {1000 / mean:.1f} ms / img')


if __name__ == '__main__':
    # safe checkpoint loading and atomic writes for this run
    with checkpoint_io():
        main()
