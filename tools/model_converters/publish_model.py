# Copyright (c) OpenMMLab. All rights reserved.
"""Publish a checkpoint for the model zoo: mmdet's publish_model.py.

Keeps only ``meta`` and ``state_dict`` (drops the optimizer, schedulers and
message hub), writes ``OUT-<first 8 hex of sha256>.pth`` atomically and
prints its path. ``tools/test.py CONFIG https://.../OUT-<sha8>.pth`` checks
that prefix after downloading.

Hand-written because mmdet's saves the legacy non-zip format, whose pickle
torch cannot inspect for unsafe globals, and renames with a background
``mv``; this one writes a zip checkpoint atomically.
"""
import argparse
import hashlib
import io

import torch

from mnc_mm.utils.checkpoint import safe_torch_load
from mnc_mm.utils.fileio import atomic_write_bytes

KEEP_KEYS = ('meta', 'state_dict')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Process a checkpoint to be published')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename')
    parser.add_argument(
        '--save-keys',
        nargs='+',
        type=str,
        default=list(KEEP_KEYS),
        help='keys to keep in the published checkpoint')
    return parser.parse_args()


def publish_checkpoint(published: dict, out_file: str) -> str:
    """``torch.save`` ``published`` to ``<out stem>-<sha8>.pth`` atomically.

    Returns the final path. Nothing is left behind if writing fails.
    """
    buffer = io.BytesIO()
    torch.save(published, buffer)
    data = buffer.getvalue()
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    final = f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    atomic_write_bytes(data, final)
    return final


def publish(in_file: str, out_file: str, save_keys=KEEP_KEYS) -> str:
    """Write the ``save_keys`` of ``in_file`` to ``<out stem>-<sha8>.pth``.

    Returns the final path. Nothing is left behind if writing fails.
    """
    checkpoint = safe_torch_load(in_file, map_location='cpu')
    if 'state_dict' not in checkpoint:
        raise KeyError(f'{in_file} has no state_dict: found keys '
                       f'{sorted(checkpoint)}')
    return publish_checkpoint(
        {k: checkpoint[k] for k in save_keys if k in checkpoint}, out_file)


def main():
    args = parse_args()
    print(publish(args.in_file, args.out_file, tuple(args.save_keys)))


if __name__ == '__main__':
    main()
