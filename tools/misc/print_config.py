# Copyright (c) OpenMMLab. All rights reserved.
"""mmdet's tools/misc/print_config.py with mnc_mm imported.

Same flags. Only added: a ``--save-path`` with another suffix stops with a
message (mmdet's asserts).
"""
import argparse
import os.path as osp
import sys

from mnc_mm.utils.mmdet_tools import run_mmdet_tool

SUFFIXES = ('.py', '.json', '.yml')  # what mmdet's tool accepts


def check_save_path(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--save-path')
    save_path = parser.parse_known_args(argv)[0].save_path
    if save_path is not None and osp.splitext(save_path)[1] not in SUFFIXES:
        raise SystemExit(f'--save-path must end with one of {SUFFIXES}, '
                         f'got {save_path!r}')


if __name__ == '__main__':
    check_save_path(sys.argv[1:])
    run_mmdet_tool('misc/print_config.py')
