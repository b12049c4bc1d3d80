# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the synthetic shapes set (COCO layout) used by default configs.

Example::

    python tools/misc/make_shapes_dataset.py data/shapes --train 200 --val 50
"""
import argparse

from mnc_mm.datasets.synthetic_shapes import make_shapes_dataset


def parse_args():
    parser = argparse.ArgumentParser(
        description='Generate the synthetic circle/square/triangle set')
    parser.add_argument('out', help='output folder, e.g. data/shapes')
    parser.add_argument('--train', type=int, default=200, help='#train')
    parser.add_argument('--val', type=int, default=50, help='#val images')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=(256, 384),
        metavar=('MIN', 'MAX'),
        help='range of image side lengths in px')
    return parser.parse_args()


def main():
    args = parse_args()
    paths = make_shapes_dataset(args.out, args.train, args.val, args.seed,
                                tuple(args.img_size))
    for key, path in paths.items():
        print(f'{key}: {path}')


if __name__ == '__main__':
    main()
