# Copyright (c) OpenMMLab. All rights reserved.
"""Convert SBD instance masks of a split to a COCO json.

Example (the papers' VOC 2012 train split, MNC layout)::

    python tools/dataset_converters/sbd_to_coco.py data/VOCdevkitSDS \\
        --split-file data/VOCdevkitSDS/train.txt \\
        --out data/VOCdevkitSDS/annotations/instances_train.json
"""
import argparse
import json
import os
import os.path as osp

from mnc_mm.datasets.sbd import check_split_size, read_split_file, sbd_to_coco


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert SBD (img/, inst/, cls/) to COCO instances')
    parser.add_argument('sbd_root', help='folder with img/, inst/ and cls/')
    parser.add_argument(
        '--split',
        default='train',
        help='split name; the split file defaults to SBD_ROOT/<split>.txt')
    parser.add_argument(
        '--split-file', help='image-name list (overrides --split)')
    parser.add_argument(
        '--out',
        help='output json (default SBD_ROOT/annotations/'
        'instances_<split>.json)')
    return parser.parse_args()


def main():
    args = parse_args()
    split_file = args.split_file or osp.join(args.sbd_root,
                                             f'{args.split}.txt')
    out = args.out or osp.join(args.sbd_root, 'annotations',
                               f'instances_{args.split}.json')
    warning = check_split_size(split_file, args.split,
                               len(read_split_file(split_file)))
    if warning:
        print(f'Warning: {warning}')
    coco = sbd_to_coco(args.sbd_root, split_file)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(coco, f)
    print(f'{len(coco["images"])} images, {len(coco["annotations"])} '
          f'instances -> {out}')


if __name__ == '__main__':
    main()
