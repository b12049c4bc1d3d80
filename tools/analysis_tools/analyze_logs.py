# Copyright (c) OpenMMLab. All rights reserved.
"""Plot curves from, or time, mmengine scalar logs.

Reads ``<work_dir>/<timestamp>/vis_data/<timestamp>.json`` (one JSON dict a
line: train lines carry ``step``, ``iter`` (and ``epoch``), losses and
``time``; val/test lines carry metrics such as ``coco/segm_mAP``)::

    analyze_logs.py plot_curve LOG.json [LOG2.json ...] --keys loss \
        [loss_cls ...] [--legend ...] [--title T] [--out x.png]
    analyze_logs.py cal_train_time LOG.json [--include-outliers]

A key is matched exactly, else by its last ``/`` part as mmdet does
(``segm_mAP`` finds ``coco/segm_mAP``). Plots are drawn with matplotlib's
Agg backend unless ``--backend`` says otherwise.

Hand-written because mmdet's tool groups records by ``epoch`` and so does
not read the iteration-based logs of the MNC and demo schedules.
"""
import argparse
import json
from collections import defaultdict

import numpy as np


def load_json_log(path):
    """The dict records of a scalar log, skipping blank lines."""
    records = []
    with open(path) as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f'{path}:{num} is not a JSON line ({e}); '
                                 'pass vis_data/<timestamp>.json')
    return records


def is_train(record):
    return 'iter' in record  # val/test lines have no iter


def resolve_key(path, records, key):
    """The log's name for ``key``; exits listing the keys if none fits."""
    keys = sorted({k for r in records for k in r})
    if key in keys:
        return key
    suffix = [k for k in keys if k.split('/')[-1] == key]
    if len(suffix) == 1:
        return suffix[0]
    raise SystemExit(
        f'{path} has no key {key!r}' +
        (f' (ambiguous: {suffix})' if suffix else '') +
        f'; keys in this log: {", ".join(keys)}. A metric is only logged '
        'if validation ran during training.')


def curve(records, key):
    """(x, y) of ``key``: train keys by iteration, metrics by step.

    Keys that train lines carry (``time``, ``data_time``) also appear in
    val lines; those are left out of a train curve.
    """
    if any(key in r for r in records if is_train(r)):
        records = [r for r in records if is_train(r)]
    points = [(r['step'], r[key]) for r in records
              if key in r and 'step' in r]
    xs, ys = zip(*points)
    return np.asarray(xs), np.asarray(ys, dtype=float)


def plot_curve(logs, args):
    import matplotlib
    matplotlib.use(args.backend or 'Agg')
    import matplotlib.pyplot as plt

    legend = args.legend or [f'{path}_{key}' for path in args.json_logs
                             for key in args.keys]
    if len(legend) != len(args.json_logs) * len(args.keys):
        raise SystemExit(f'--legend needs {len(args.json_logs)} x '
                         f'{len(args.keys)} labels, got {len(legend)}')
    plt.figure()
    xlabel = 'iter'
    for i, (path, records) in enumerate(zip(args.json_logs, logs)):
        for j, key in enumerate(args.keys):
            name = resolve_key(path, records, key)
            xs, ys = curve(records, name)
            metric = not any(is_train(r) for r in records if name in r)
            if metric:
                xlabel = 'step'
            print(f'plot curve of {path}, metric is {name}')
            label = legend[i * len(args.keys) + j]
            if metric:
                plt.plot(xs, ys, label=label, marker='o')
            else:
                plt.plot(xs, ys, label=label, linewidth=0.5)
    plt.xlabel(xlabel)
    plt.legend()
    if args.title is not None:
        plt.title(args.title)
    if args.out is None:
        plt.show()
    else:
        print(f'save curve to: {args.out}')
        plt.savefig(args.out)
    plt.close()


def cal_train_time(logs, args):
    for path, records in zip(args.json_logs, logs):
        print(f'{"-" * 5}Analyze train time of {path}{"-" * 5}')
        by_epoch = defaultdict(list)
        for r in records:
            if is_train(r) and 'time' in r:
                by_epoch[r.get('epoch', 1)].append(r['time'])
        if not args.include_outliers:  # the first iter of an epoch is slow
            by_epoch = {e: t[1:] for e, t in by_epoch.items() if t[1:]}
        if not by_epoch:
            raise SystemExit(
                f'{path} has too few train lines with "time" to time '
                'training; lower the logger interval or pass '
                '--include-outliers.')
        epochs = sorted(by_epoch)
        means = np.array([np.mean(by_epoch[e]) for e in epochs])
        slow, fast = means.argmax(), means.argmin()
        print(f'slowest epoch {epochs[slow]}, '
              f'average time is {means[slow]:.4f} s/iter')
        print(f'fastest epoch {epochs[fast]}, '
              f'average time is {means[fast]:.4f} s/iter')
        print(f'time std over epochs is {means.std():.4f}')
        print(f'average iter time: {means.mean():.4f} s/iter\n')


def parse_args():
    parser = argparse.ArgumentParser(description='Analyze Json Log')
    subparsers = parser.add_subparsers(dest='task', required=True)
    plot = subparsers.add_parser('plot_curve', help='plot scalar curves')
    plot.add_argument('json_logs', nargs='+', help='vis_data json logs')
    plot.add_argument('--keys', nargs='+', default=['bbox_mAP'],
                      help='the scalars to plot')
    plot.add_argument('--title', help='title of figure')
    plot.add_argument('--legend', nargs='+', help='legend of each plot')
    plot.add_argument('--backend', help='matplotlib backend (Agg)')
    plot.add_argument('--style', help='ignored; kept for mmdet')
    plot.add_argument('--out', help='image file to save the figure to')
    timing = subparsers.add_parser(
        'cal_train_time', help='average time per training iteration')
    timing.add_argument('json_logs', nargs='+', help='vis_data json logs')
    timing.add_argument(
        '--include-outliers', action='store_true',
        help='include the first iteration of every epoch')
    return parser.parse_args()


def main():
    args = parse_args()
    for path in args.json_logs:
        if not path.endswith('.json'):
            raise SystemExit(f'{path} is not a .json log; pass '
                             'vis_data/<timestamp>.json')
    logs = [load_json_log(path) for path in args.json_logs]
    {'plot_curve': plot_curve, 'cal_train_time': cal_train_time}[args.task](
        logs, args)


if __name__ == '__main__':
    main()
