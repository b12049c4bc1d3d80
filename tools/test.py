# Copyright (c) OpenMMLab. All rights reserved.
"""Test (and evaluate) a detector: mmdet's tools/test.py with mnc_mm.

CHECKPOINT is a local path or an http(s) URL; URLs are downloaded into the
torch hub cache, the ``-<sha256 prefix>`` of the file name is checked and
the file is loaded with ``weights_only=True`` (see mnc_mm.utils.checkpoint).
Unlike mmdet's, a checkpoint whose heads or classes do not fit the config
is an error, not a warning (mnc_mm.utils.checkpoint_fit).
"""
import argparse
import os
import warnings
from copy import deepcopy

from mmengine.config import ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.checkpoint_fit import check_checkpoint_fits, dataset_classes
from mnc_mm.utils.dist import LAUNCHERS
from mnc_mm.utils.runtime import add_cfg_options_argument, load_tool_config


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMDet test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; refer to '
            'usage "visualization=dict(type=\'VisualizationHook\')"')
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualization_hook['test_out_dir'] = args.show_dir
    return cfg


def enable_tta(cfg):
    """Wrap the model in the config's ``tta_model``; without one, in
    :class:`mnc_mm.models.test_time_augs.InstanceTTAModel` with flip TTA
    (mmdet's default, DetTTAModel, refuses instance masks)."""
    if 'tta_model' not in cfg:
        warnings.warn('Cannot find ``tta_model`` in config, '
                      'we will set it as default.')
        cfg.tta_model = dict(type='InstanceTTAModel')
    if 'tta_pipeline' not in cfg:
        warnings.warn('Cannot find ``tta_pipeline`` in config, '
                      'we will set it as default.')
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
        flip_tta = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ],
            ])
        cfg.tta_pipeline[-1] = flip_tta
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def main():
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher,
                           args.work_dir)

    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        cfg = enable_tta(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    if args.out is not None:
        assert args.out.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))

    # load here, not in runner.test(), to refuse a checkpoint that misfits
    checkpoint = runner.load_checkpoint(args.checkpoint, map_location='cpu')
    check_checkpoint_fits(runner.model, checkpoint,
                          dataset_classes(cfg.test_dataloader.dataset),
                          args.checkpoint)
    runner.test()


if __name__ == '__main__':
    # safe checkpoint loading and atomic writes for this run
    with checkpoint_io():
        main()
