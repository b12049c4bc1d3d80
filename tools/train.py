# Copyright (c) OpenMMLab. All rights reserved.
"""Train a detector: mmdet's tools/train.py with mnc_mm registered.

Same flags as mmdet 3.x. Differences: ``mnc_mm`` is imported (so its modules
are registered even without ``custom_imports``), checkpoints load with
``weights_only=True`` and mnc_mm's allow-list and are written atomically,
``--resume`` takes the newest complete checkpoint (a kill mid-write cannot
leave it nothing to resume from), distributed runs work without a GPU
(gloo), and ``--amp`` without CUDA trains under CPU bfloat16 autocast
(mmengine's AmpOptimWrapper needs CUDA).
"""
import argparse
import os

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.dist import LAUNCHERS
from mnc_mm.utils.fileio import remove_stale_temp_files
from mnc_mm.utils.resume import newest_complete_checkpoint
from mnc_mm.utils.runtime import add_cfg_options_argument, load_tool_config


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training: float16 on '
        'CUDA, bfloat16 autocast on the CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg) -> None:
    """``--amp``: mmengine's AmpOptimWrapper (float16, dynamic loss scale)
    with CUDA; without CUDA, whose AmpOptimWrapper refuses, bfloat16 CPU
    autocast (:class:`mnc_mm.engine.CPUAmpOptimWrapper`)."""
    optim_wrapper = cfg.optim_wrapper.type
    if optim_wrapper in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        print('AMP training is already enabled in your config.')
    elif torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
        print('No CUDA: --amp trains under CPU bfloat16 autocast '
              '(CPUAmpOptimWrapper).')


def main():
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher,
                           args.work_dir)

    if args.amp:
        enable_amp(cfg)

    if args.auto_scale_lr:
        if ('auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr
                and 'base_batch_size' in cfg.auto_scale_lr):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    # rank 0 only: another rank must not race a save of a started rank 0
    if os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0':
        for path in remove_stale_temp_files(cfg.work_dir):
            print(f'removed {path}, left by a run killed while saving')
    if args.resume == 'auto':
        # not mmengine's last_checkpoint: a kill can leave it empty or stale
        cfg.load_from = newest_complete_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
        print(f'--resume: from the newest complete checkpoint {cfg.load_from}'
              if cfg.resume else
              f'no complete checkpoint in {cfg.work_dir}: training from the '
              f'start')
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    # safe checkpoint loading and atomic writes for this run
    with checkpoint_io():
        main()
