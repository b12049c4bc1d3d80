# Copyright (c) OpenMMLab. All rights reserved.
"""Print the whole config (after inheritance and ``--cfg-options``).

Same flags as mmdet's tools/misc/print_config.py; ``--save-path`` writes
the merged config as ``.py``, ``.json`` or ``.yml``/``.yaml``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config
from mmdet.utils import replace_cfg_vals, update_data_root

import mnc_mm  # noqa: F401  (registers our modules)
from mnc_mm.utils.runtime import add_cfg_options_argument

SUFFIXES = ('.py', '.json', '.yml', '.yaml')


def parse_args():
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--save-path',
        default=None,
        help='save path of whole config, suffixed with .py, .json or .yml')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.save_path is not None and \
            osp.splitext(args.save_path)[1] not in SUFFIXES:
        raise SystemExit(f'--save-path must end with one of {SUFFIXES}, '
                         f'got {args.save_path!r}')

    cfg = Config.fromfile(args.config)
    cfg = replace_cfg_vals(cfg)  # ${key} -> value of cfg.key
    update_data_root(cfg)  # honours $MMDET_DATASETS
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')

    if args.save_path is not None:
        save_dir = osp.dirname(osp.abspath(args.save_path))
        os.makedirs(save_dir, exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Config saving at {args.save_path}')


if __name__ == '__main__':
    main()
