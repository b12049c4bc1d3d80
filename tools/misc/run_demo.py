# Copyright (c) OpenMMLab. All rights reserved.
"""The main job behind ``make demo``: data, training, evaluation, summary.

1. generates the synthetic shapes set under ``--data-root`` if it is missing;
2. trains the chosen model with ``tools/train.py`` (CPU is fine);
3. evaluates the last checkpoint with ``tools/test.py`` (COCO bbox/segm
   mAP with pycocotools, and the papers' mAP^r at mask IoU 0.5/0.7);
4. draws the training loss curve (``loss_curve.png``) and the predictions
   on a few val images (``predictions/*.png``);
5. prints a summary table of the metrics and the time taken.

Everything goes to ``--work-dir`` (default ``work_dirs/demo``).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The demo config of each model available in the library.
DEMO_CONFIGS = {
    'fcis': 'configs/demo/fcis_r18-tiny_shapes.py',
    'mask-rcnn': 'configs/demo/mask-rcnn_r18-tiny_shapes.py',
    'mnc': 'configs/demo/mnc_r18-tiny_shapes.py',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--model',
        default='fcis',
        help=f'which demo model to train: {sorted(DEMO_CONFIGS)}')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--num-shown', type=int, default=4,
        help='val images drawn with their predictions')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides passed to train.py and test.py')
    return parser.parse_args()


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def ensure_dataset(data_root, num_train, num_val, seed):
    ann = osp.join(data_root, 'annotations', 'instances_val.json')
    if osp.exists(ann):
        print(f'using the shapes data set in {data_root}')
        return
    from mnc_mm.datasets.synthetic_shapes import make_shapes_dataset
    print(f'generating the shapes data set in {data_root} '
          f'({num_train} train / {num_val} val images)')
    make_shapes_dataset(data_root, num_train, num_val, seed=seed)


def last_metrics(work_dir):
    """Metrics of the newest ``<timestamp>/<timestamp>.json`` test log."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                  key=osp.getmtime)
    for log in reversed(logs):
        with open(log) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        for record in reversed(lines):
            if any(k.startswith('coco/') for k in record):
                return record
    raise RuntimeError(f'no evaluation results found under {work_dir}')


def train_log(work_dir):
    """The scalar log of the training run (the oldest ``vis_data`` log)."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', '*.json')))
    if not logs:
        raise RuntimeError(f'no training log found under {work_dir}')
    return logs[0]


def mask_loss_key(log):
    """The logged mask loss: ``loss_mask`` (FCIS, Mask R-CNN) or the first
    stage's ``s0.loss_mask`` (MNC)."""
    with open(log) as f:
        for line in f:
            for key in json.loads(line):
                if key.endswith('loss_mask'):
                    return key
    raise RuntimeError(f'{log} logs no mask loss')


def draw_results(python, config, checkpoint, work_dir, data_root, num_shown):
    """Loss curve and predictions on the first ``num_shown`` val images."""
    log = train_log(work_dir)
    mask_loss = mask_loss_key(log)
    run([python, 'tools/analysis_tools/analyze_logs.py', 'plot_curve', log,
         '--keys', 'loss', mask_loss, '--legend', 'loss', mask_loss,
         '--title', 'demo training', '--out',
         osp.join(work_dir, 'loss_curve.png')])
    inputs = osp.join(work_dir, 'demo_inputs')
    os.makedirs(inputs, exist_ok=True)
    for name in sorted(os.listdir(osp.join(data_root, 'val')))[:num_shown]:
        shutil.copy(osp.join(data_root, 'val', name), inputs)
    run([python, 'tools/image_demo.py', inputs, config, checkpoint,
         '--out-dir', osp.join(work_dir, 'predictions'), '--score-thr',
         '0.5', '--device', 'cpu'])


def main():
    args = parse_args()
    if args.model not in DEMO_CONFIGS:
        sys.exit(f'--model must be one of {sorted(DEMO_CONFIGS)}, '
                 f'found {args.model!r}')
    config = DEMO_CONFIGS[args.model]
    data_root = osp.abspath(args.data_root)
    work_dir = osp.abspath(args.work_dir)
    start = time.time()
    ensure_dataset(data_root, args.num_train, args.num_val, args.seed)
    ann = f'{data_root}/annotations/instances_val.json'
    options = [
        f'{split}_dataloader.dataset.data_root={data_root}/'
        for split in ('train', 'val', 'test')
    ] + [
        # one CocoVOCMaskAPMetric: COCO AP and mAP^r
        f'{split}_evaluator.ann_file={ann}' for split in ('val', 'test')
    ] + args.cfg_options
    python = sys.executable
    # test.py evaluates the last checkpoint below: no second evaluation at
    # the end of training
    run([python, 'tools/train.py', config, '--work-dir', work_dir,
         '--cfg-options', *options, f'train_cfg.val_begin={2**31}'])
    train_time = time.time() - start
    # evaluation and drawing use the config train.py saved, options applied
    trained_config = osp.join(work_dir, osp.basename(config))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    run([python, 'tools/test.py', trained_config, checkpoint, '--work-dir',
         work_dir])
    metrics = last_metrics(work_dir)
    draw_results(python, trained_config, checkpoint, work_dir, data_root,
                 args.num_shown)
    total = time.time() - start
    print('\n| metric | value |\n| --- | --- |')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                'coco/segm_mAP_50', 'coco/segm_mAP_75', 'voc_mask/mAP_r@0.5',
                'voc_mask/mAP_r@0.7'):
        if key in metrics:
            print(f'| {key} | {metrics[key]:.3f} |')
    print(f'| train time (s) | {train_time:.0f} |')
    print(f'| total time (s) | {total:.0f} |')
    print(f'| checkpoint | {osp.relpath(checkpoint, REPO)} |')
    print(f'| loss curve | {osp.relpath(work_dir, REPO)}/loss_curve.png |')
    print(f'| predictions | {osp.relpath(work_dir, REPO)}/predictions/ |')


if __name__ == '__main__':
    main()
