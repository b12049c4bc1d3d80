# Copyright (c) OpenMMLab. All rights reserved.
"""Time whole detectors side by side: inference split into the papers'
rows, one training iteration, peak memory.

Each config is measured in its own child process (so peak memory is the
model's own) on the same random input, with random weights unless
``--checkpoint`` is given. The work is fixed for fairness: exactly
``--num-rois`` RPN proposals (300) for every model, score threshold 0 so
mask heads see up to 100 detections. Example::

    python tools/analysis_tools/benchmark_models.py \\
        configs/fcis/fcis_r50-caffe-c4_ohem_8xb1-16e_coco.py \\
        mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py \\
        mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py \\
        --baseline mask-rcnn_r50-caffe-c4_1x_coco --json work_dirs/bench.json

``--variants fp32 bf16 bf16+cl`` also times each model under bfloat16
autocast (``bf16``; forward under ``torch.autocast``, backward outside it,
as in AMP training), optionally with channels-last images and weights
(``+cl``), and prints each variant's speed-up over the same model's fp32
run of this invocation::

    python tools/analysis_tools/benchmark_models.py \
        configs/fcis/fcis_r50-caffe-c4_ohem_8xb1-16e_coco.py \
        configs/mnc/mnc_r50-caffe-c4_5stage_8xb1-1x_coco.py \
        --variants fp32 bf16 bf16+cl

``--profile N`` also profiles one ``predict`` of each model and variant
with ``torch.profiler`` and prints its N ops (by op and input shapes) with
the most self time. Each record notes the CPU's kernel capability and
whether oneDNN has bfloat16 kernels for it: without them (no AVX-512)
ATen runs bf16 convolutions and matmuls in its reference loops
(``aten::_slow_conv2d_forward``), far slower than fp32, and the tool says
so under the speed-ups.

Rows (ms per image, medians): ``conv`` backbone and neck; ``rpn`` the RPN
head with its proposal NMS; ``head`` per-image head convs (FCIS score
maps); ``per_roi`` per-RoI work (FCIS assembly, MNC stages 2-5, Mask R-CNN
RoI heads); ``post`` NMS of the detections, mask voting and pasting;
``other`` the rest of ``predict``; ``train`` one forward + backward.
Ratios are to the baseline model of the same run.
"""
import argparse
import functools
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROWS = ('conv', 'rpn', 'head', 'per_roi', 'post', 'other', 'predict',
        'train')
#: ``<dtype>[+cl]``: the compute dtype (bf16 = CPU/CUDA bfloat16 autocast)
#: and channels-last memory format.
DTYPES = ('fp32', 'bf16')

# Which callables of each detector type make each row. Paths are attributes
# of the model; a ``module:`` prefix names a module-level function.
VOTE_AND_PASTE = [
    'roi_head.mask_voting.__call__',
    'module:mnc_mm.models.post_processing.instances.paste_masks'
]
STAGES: Dict[str, Dict[str, List[str]]] = {
    'FCIS': {
        'conv': ['backbone.forward', 'neck.forward'],
        'rpn': ['rpn_head.predict'],
        'head': ['roi_head.mask_head.score_maps'],
        'per_roi': ['roi_head.mask_head.assemble'],
        'post': VOTE_AND_PASTE,
    },
    'MNC': {
        'conv': ['backbone.forward', 'neck.forward'],
        'rpn': ['rpn_head.predict'],
        'per_roi': ['roi_head._predict_stages'],
        'post': VOTE_AND_PASTE,
    },
    'MaskRCNN': {
        'conv': ['backbone.forward', 'neck.forward'],
        'rpn': ['rpn_head.predict'],
        'per_roi': ['roi_head.bbox_roi_extractor.forward',
                    'roi_head.shared_head.forward',
                    'roi_head.bbox_head.forward',
                    'roi_head.mask_roi_extractor.forward',
                    'roi_head.mask_head.forward'],
        'post': ['roi_head.bbox_head.predict_by_feat',
                 'roi_head.mask_head.predict_by_feat'],
    },
}


def resolve_config(path: str) -> str:
    """A config path, or ``mmdet::rel/path.py`` inside mmdet's package."""
    if path.startswith('mmdet::'):
        import mmdet
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                        path[len('mmdet::'):])
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    return path


def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def parse_variant(variant: str):
    """``'bf16+cl'`` -> ``('bf16', True)``: dtype and channels-last."""
    dtype, _, layout = variant.partition('+')
    if dtype not in DTYPES or layout not in ('', 'cl'):
        raise ValueError(f'variant must be one of {DTYPES} with an optional '
                         f"'+cl' (channels-last), got {variant!r}")
    return dtype, layout == 'cl'


def record_name(config: str, variant: str) -> str:
    """The model's name, with the variant unless it is plain fp32."""
    name = config_name(config)
    return name if variant == 'fp32' else f'{name}[{variant}]'


def fix_work(cfg, num_rois: int) -> None:
    """Same work for every model: ``num_rois`` proposals, score threshold
    0, at most 100 detections; no pretrained download."""
    model = cfg.model
    model.backbone.init_cfg = None
    test = model.test_cfg
    test.rpn.max_per_img = num_rois
    test.rpn.pop('max_num', None)
    rcnn = test.rcnn
    if 'score_thr' in rcnn:
        rcnn.score_thr = 0.0
    if 'max_per_img' in rcnn:
        rcnn.max_per_img = 100
    if 'mask_voting' in rcnn:
        rcnn.mask_voting.update(max_per_img=100)


class StageTimer:
    """Wraps the callables of :data:`STAGES` to add their wall time (ms) to
    per-row totals; nested calls count once, in the outer row."""

    def __init__(self, model, stages: Dict[str, List[str]], sync: Callable):
        self.totals = {row: 0.0 for row in stages}
        self.sync = sync
        self._depth = 0
        for row, paths in stages.items():
            for path in paths:
                self._wrap(model, path, row)

    def _wrap(self, model, path: str, row: str) -> None:
        if path.startswith('module:'):
            import importlib
            mod_name, attr = path[len('module:'):].rsplit('.', 1)
            owner = importlib.import_module(mod_name)
        else:
            *parents, attr = path.split('.')
            owner = model
            for name in parents:
                owner = getattr(owner, name, None)
                if owner is None:
                    return  # this model has no such part (e.g. no neck)
            if attr == '__call__':
                # instance __call__ is looked up on the type: wrap the
                # attribute that holds the instance instead
                *grand, holder = parents
                parent = functools.reduce(getattr, grand, model)
                setattr(parent, holder, self._timed(owner, row))
                return
        setattr(owner, attr, self._timed(getattr(owner, attr), row))

    def _timed(self, fn: Callable, row: str) -> Callable:

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            self.sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.totals[row] += (time.perf_counter() - start) * 1e3
                self._depth -= 1

        return timed


def fake_batch(model, shape, device, with_gt: bool):
    """One random image (1, 3, H, W) through the model's preprocessor, and
    a data sample with three gt instances."""
    import numpy as np
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
        scale_factor=(1., 1.), batch_input_shape=(h, w)))
    if with_gt:
        boxes = torch.tensor([[50., 60., 300., 400.], [400., 100., 700., 500.],
                              [600., 300., 900., 580.]])
        masks = np.zeros((3, h, w), np.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            m[y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.tensor([0, 1, 2]),
            masks=BitmapMasks(masks, h, w))
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=[sample]), training=with_gt)
    return data['inputs'].to(device), data['data_samples']


def cpu_info() -> dict:
    """The CPU kernels torch picks from: its vector ``capability`` (e.g.
    ``AVX2``, ``AVX512``) and whether oneDNN has bfloat16 kernels for this
    CPU (``bf16_kernels``, AVX-512 and up), the condition under which ATen
    sends bf16 convolutions and matmuls to oneDNN."""
    import torch
    return dict(capability=torch.backends.cpu.get_cpu_capability(),
                bf16_kernels=bool(
                    torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported()))


def _shapes_text(shapes: list) -> str:
    """``[[1, 3, 8, 8], [], [16]]`` -> ``'1x3x8x8, 16'`` (tensor shapes of
    an op's inputs; scalars and None left out)."""
    return ', '.join('x'.join(map(str, s)) for s in shapes
                     if isinstance(s, (list, tuple)) and s)


def top_ops(prof, num: int, cuda: bool = False) -> List[dict]:
    """The ``num`` (op, input shapes) entries of a finished
    ``torch.profiler.profile(record_shapes=True)`` with the most self time
    (device time on CUDA, else CPU time): ``op``, ``shapes``, ``self_ms``
    summed over its ``calls``, and its ``share`` of all self time."""
    attr = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(getattr(e, attr) for e in events) or 1.0
    events = sorted(events, key=lambda e: getattr(e, attr), reverse=True)
    return [dict(op=e.key, shapes=_shapes_text(e.input_shapes),
                 self_ms=getattr(e, attr) / 1e3, calls=e.count,
                 share=getattr(e, attr) / total) for e in events[:num]]


def measure(config: str, args) -> dict:
    """Build one model and time it (runs in the child process)."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    register_all_modules()
    import mnc_mm  # noqa: F401
    from mnc_mm.utils import checkpoint_io

    torch.manual_seed(0)
    cfg = Config.fromfile(resolve_config(config))
    fix_work(cfg, args.num_rois)
    model = MODELS.build(cfg.model).to(args.device)
    model.init_weights()
    if args.checkpoint:
        with checkpoint_io():
            load_checkpoint(model, args.checkpoint,
                            map_location=args.device)
    dtype, channels_last = parse_variant(args.variants[0])
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    autocast = functools.partial(
        torch.autocast, torch.device(args.device).type,
        dtype=torch.bfloat16, enabled=dtype == 'bf16')
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    stages = STAGES.get(type(model).__name__, {})
    timer = StageTimer(model, stages, sync)

    model.eval()
    inputs, samples = fake_batch(model, args.shape, args.device, False)
    inputs = inputs.contiguous(memory_format=layout)
    runs = {row: [] for row in ROWS}
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            timer.totals = dict.fromkeys(timer.totals, 0.0)
            sync()
            start = time.perf_counter()
            with autocast():
                preds = model.predict(inputs, samples)
            sync()
            total = (time.perf_counter() - start) * 1e3
            if i < args.warmup:
                continue
            runs['predict'].append(total)
            for row, ms in timer.totals.items():
                runs[row].append(ms)
            runs['other'].append(total - sum(timer.totals.values()))
    num_dets = len(preds[0].pred_instances)
    profile = None
    if args.profile:
        from torch.profiler import ProfilerActivity
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if cuda else [])
        with torch.no_grad(), torch.profiler.profile(
                activities=activities, record_shapes=True) as prof:
            with autocast():
                model.predict(inputs, samples)
            sync()
        profile = top_ops(prof, args.profile, cuda)

    model.train()
    inputs, samples = fake_batch(model, args.shape, args.device, True)
    inputs = inputs.contiguous(memory_format=layout)
    for i in range(args.warmup + args.repeats):
        sync()
        start = time.perf_counter()
        with autocast():
            loss, _ = model.parse_losses(model.loss(inputs, samples))
        loss.backward()
        model.zero_grad(set_to_none=True)
        sync()
        if i >= args.warmup:
            runs['train'].append((time.perf_counter() - start) * 1e3)

    if cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    medians = {row: statistics.median(v) for row, v in runs.items() if v}
    return dict(name=record_name(config, args.variants[0]), config=config,
                variant=args.variants[0], ms=medians, peak_mb=peak_mb,
                detections=num_dets, device=args.device,
                threads=torch.get_num_threads(), cpu=cpu_info(),
                top_ops=profile)


def run_child(config: str, variant: str, args) -> dict:
    """Measure ``config`` in ``variant`` in a fresh interpreter and return
    its record."""
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'record.json')
        cmd = [sys.executable, osp.abspath(__file__), config, '--child', out,
               '--shape', *map(str, args.shape), '--repeats',
               str(args.repeats), '--warmup', str(args.warmup),
               '--num-rois', str(args.num_rois), '--device', args.device,
               '--variants', variant, '--profile', str(args.profile)]
        if args.checkpoint:
            cmd += ['--checkpoint', args.checkpoint]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'benchmark of {config} failed:\n'
                               f'{proc.stderr[-3000:]}')
        with open(out) as f:
            return json.load(f)


def markdown_table(records: List[dict], baseline: str) -> str:
    """Rows of ms per image per model, plus ratios to ``baseline``."""
    base = next((r for r in records if r['name'] == baseline), None)
    if base is None:
        raise ValueError(f'--baseline {baseline!r} is not one of '
                         f'{[r["name"] for r in records]}')
    head = ['model'] + [f'{row} ms' for row in ROWS] + [
        'peak MB', 'dets', f'predict / {baseline}', f'train / {baseline}']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for rec in records:
        cells = [rec['name']] + [
            f"{rec['ms'][row]:.1f}" if row in rec['ms'] else '-'
            for row in ROWS
        ] + [f"{rec['peak_mb']:.0f}", str(rec['detections']),
             f"{rec['ms']['predict'] / base['ms']['predict']:.2f}",
             f"{rec['ms']['train'] / base['ms']['train']:.2f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def speedup_table(records: List[dict]) -> str:
    """Per model and non-fp32 variant, fp32 time / variant time of predict
    and of the training iteration (> 1: the variant is faster)."""
    fp32 = {r['config']: r for r in records if r['variant'] == 'fp32'}
    head = ['model', 'variant', 'predict ms', 'train ms',
            'predict speed-up vs fp32', 'train speed-up vs fp32']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for rec in records:
        base = fp32.get(rec['config'])
        if rec['variant'] == 'fp32' or base is None:
            continue
        lines.append('| ' + ' | '.join([
            config_name(rec['config']), rec['variant'],
            f"{rec['ms']['predict']:.1f}", f"{rec['ms']['train']:.1f}",
            f"{base['ms']['predict'] / rec['ms']['predict']:.2f}",
            f"{base['ms']['train'] / rec['ms']['train']:.2f}"
        ]) + ' |')
    return '\n'.join(lines)


def profile_table(record: dict) -> str:
    """The profiled predict's top ops of one record."""
    lines = [f"top ops of one predict of {record['name']} (self time)", '',
             '| op | input shapes | self ms | share | calls |',
             '|---|---|---|---|---|']
    lines += [f"| {r['op']} | {r['shapes']} | {r['self_ms']:.1f} | "
              f"{r['share']:.1%} | {r['calls']} |" for r in record['top_ops']]
    return '\n'.join(lines)


def bf16_note(records: List[dict]) -> str:
    """A note when bf16 was timed on a CPU without oneDNN bf16 kernels,
    else ''."""
    slow = [r for r in records if r['variant'].startswith('bf16')
            and r['device'] == 'cpu' and not r['cpu']['bf16_kernels']]
    if not slow:
        return ''
    return (f"note: this CPU ({slow[0]['cpu']['capability']}) has no oneDNN "
            'bfloat16 kernels (they need AVX-512): ATen runs bf16 '
            'convolutions and matmuls in its reference loops '
            '(aten::_slow_conv2d_forward), far slower than the fp32 oneDNN '
            'ones, so bf16 is slower than fp32 here')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+',
                        help='config files or mmdet::path/to/config.py')
    parser.add_argument('--baseline', help='name (file stem) of the model '
                        'the ratios are computed against; default: first')
    parser.add_argument('--shape', type=int, nargs=2, default=[600, 1000],
                        metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--num-rois', type=int, default=300)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--checkpoint', help='weights for every model')
    parser.add_argument(
        '--variants', nargs='+', default=['fp32'],
        help="precisions to time each model in: 'fp32', 'bf16' (bfloat16 "
        "autocast), each with an optional '+cl' (channels-last); the "
        'speed-ups are to fp32')
    parser.add_argument(
        '--profile', type=int, default=0, metavar='N',
        help='also profile one predict per model and variant and print its '
        'N ops (by op and input shapes) with the most self time')
    parser.add_argument('--json', help='also write the records here')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.profile < 0:
        parser.error('--repeats must be >= 1, --warmup and --profile >= 0')
    for variant in args.variants:
        try:
            parse_variant(variant)
        except ValueError as err:
            parser.error(str(err))
    if 'fp32' not in args.variants and not args.child:
        parser.error(f'--variants needs fp32 (the reference of the '
                     f'speed-ups), got {args.variants}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        record = measure(args.configs[0], args)
        with open(args.child, 'w') as f:
            json.dump(record, f)
        return
    for config in args.configs:
        resolve_config(config)  # fail early on a typo
    records = []
    for config in args.configs:
        for variant in args.variants:
            print(f'measuring {config} [{variant}] ...', flush=True)
            records.append(run_child(config, variant, args))
    baseline = args.baseline or records[0]['name']
    print(markdown_table(records, baseline))
    for record in records:
        if record['top_ops']:
            print()
            print(profile_table(record))
    if args.variants != ['fp32']:
        print()
        print(speedup_table(records))
        note = bf16_note(records)
        if note:
            print()
            print(note)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(records=records, baseline=baseline), f, indent=2)


if __name__ == '__main__':
    main()
