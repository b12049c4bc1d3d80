# Copyright (c) OpenMMLab. All rights reserved.
"""benchmark_models.py on tiny configs: table structure, positive timings
(no thresholds on time)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import types

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_models.py')
CONFIGS = ['configs/demo/fcis_r18-tiny_shapes.py',
           'configs/demo/mask-rcnn_r18-tiny_shapes.py']


def test_table_and_json(tmp_path):
    out_json = tmp_path / 'bench.json'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, SCRIPT, *CONFIGS, '--shape', '96', '128',
         '--repeats', '2', '--warmup', '0', '--num-rois', '50',
         '--baseline', 'mask-rcnn_r18-tiny_shapes', '--json', str(out_json)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith('|')]
    header = [c.strip() for c in table[0].strip('|').split('|')]
    assert header[:9] == ['model', 'conv ms', 'rpn ms', 'head ms',
                          'per_roi ms', 'post ms', 'other ms', 'predict ms',
                          'train ms']
    assert len(table) == 2 + len(CONFIGS)
    rows = {r.split('|')[1].strip(): r for r in table[2:]}
    assert set(rows) == {'fcis_r18-tiny_shapes', 'mask-rcnn_r18-tiny_shapes'}
    # the baseline's own ratios are 1
    base = [c.strip() for c in rows['mask-rcnn_r18-tiny_shapes'].split('|')]
    assert base[-3:-1] == ['1.00', '1.00']

    records = json.loads(out_json.read_text())['records']
    for rec in records:
        timed = ('conv', 'rpn', 'per_roi', 'post', 'predict', 'train')
        assert all(rec['ms'][k] > 0 for k in timed), rec
        assert rec['peak_mb'] > 0
    fcis = next(r for r in records if r['name'] == 'fcis_r18-tiny_shapes')
    assert fcis['ms']['head'] > 0
    # every stage runs inside predict: the remainder is never negative
    assert fcis['ms']['other'] >= 0


def test_unknown_config_and_baseline_fail_clearly(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, SCRIPT, 'configs/nope.py'],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert 'config not found: configs/nope.py' in proc.stderr


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_models', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeProfile:
    """Stands in for a finished profiler: ``key_averages`` returns fixed
    events, so the ranking is checked without timing noise."""

    def __init__(self, events):
        self.events = events
        self.group_by_input_shape = None

    def key_averages(self, group_by_input_shape=False):
        self.group_by_input_shape = group_by_input_shape
        return list(self.events)


def _event(key, shapes, self_us, count, device_us=0.0):
    return types.SimpleNamespace(
        key=key, input_shapes=shapes, self_cpu_time_total=self_us,
        self_device_time_total=device_us, count=count)


def test_top_ops_ranks_ops_by_self_time_and_shapes():
    tool = _load_tool()
    prof = _FakeProfile([
        _event('aten::add', [[4], []], 5.0, 1, device_us=900.0),
        _event('aten::mm', [[256, 256], [256, 256]], 600.0, 3),
        _event('aten::mm', [[256, 256], [256, 64]], 300.0, 1,
               device_us=100.0),
        _event('aten::empty', [], 95.0, 7)])
    rows = tool.top_ops(prof, 2)
    assert prof.group_by_input_shape is True
    assert rows == [
        dict(op='aten::mm', shapes='256x256, 256x256', self_ms=0.6,
             calls=3, share=0.6),
        dict(op='aten::mm', shapes='256x256, 256x64', self_ms=0.3,
             calls=1, share=0.3)]
    # on CUDA the device time ranks, not the host time
    rows = tool.top_ops(prof, 1, cuda=True)
    assert [(r['op'], r['share']) for r in rows] == [('aten::add', 0.9)]


def test_top_ops_of_a_real_profile():
    """The profiler's own events: three 512x512 products outweigh anything
    else recorded, and the shapes come from ``record_shapes``."""
    tool = _load_tool()
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    with torch.profiler.profile(record_shapes=True) as prof:
        for _ in range(3):
            a.mm(b)
    rows = tool.top_ops(prof, 1)
    assert [(r['op'], r['shapes'], r['calls']) for r in rows] == [
        ('aten::mm', '512x512, 512x512', 3)]
    assert rows[0]['self_ms'] > 0 and 0 < rows[0]['share'] <= 1


def test_bf16_variants_of_fcis_and_mnc(tmp_path):
    """fp32, bf16 and bf16 channels-last of both methods in one run; the
    speed-up table has a row per model and non-fp32 variant; ``--profile``
    lists each one's top ops; the note on missing bf16 kernels appears
    exactly on CPUs without them."""
    out_json = tmp_path / 'bench.json'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    configs = ['configs/demo/fcis_r18-tiny_shapes.py',
               'configs/demo/mnc_r18-tiny_shapes.py']
    proc = subprocess.run(
        [sys.executable, SCRIPT, *configs, '--shape', '96', '128',
         '--repeats', '1', '--warmup', '0', '--num-rois', '30',
         '--variants', 'fp32', 'bf16', 'bf16+cl', '--profile', '4', '--json',
         str(out_json)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = proc.stdout.split('\n\n')
    speedup_index = next(i for i, t in enumerate(tables)
                         if t.startswith('| model | variant |'))
    speedups = [ln for ln in tables[speedup_index].splitlines()
                if ln.startswith('|')]
    header = [c.strip() for c in speedups[0].strip('|').split('|')]
    assert header == ['model', 'variant', 'predict ms', 'train ms',
                      'predict speed-up vs fp32', 'train speed-up vs fp32']
    rows = [[c.strip() for c in ln.strip('|').split('|')]
            for ln in speedups[2:]]
    assert [r[:2] for r in rows] == [
        ['fcis_r18-tiny_shapes', 'bf16'], ['fcis_r18-tiny_shapes', 'bf16+cl'],
        ['mnc_r18-tiny_shapes', 'bf16'], ['mnc_r18-tiny_shapes', 'bf16+cl']]
    records = json.loads(out_json.read_text())['records']
    by_name = {r['name']: r for r in records}
    for row in rows:
        rec = by_name[f'{row[0]}[{row[1]}]']
        base = by_name[row[0]]
        assert float(row[4]) == pytest.approx(
            base['ms']['predict'] / rec['ms']['predict'], abs=0.01)
        assert float(row[5]) > 0
    # one profile table per record, 4 rows each, before the speed-ups
    profiles = [t for t in tables if t.startswith('| op | input shapes |')]
    assert len(profiles) == len(records) == 6
    assert tables.index(profiles[-1]) < speedup_index
    for rec in records:
        assert len(rec['top_ops']) == 4
        times = [r['self_ms'] for r in rec['top_ops']]
        assert times == sorted(times, reverse=True) and times[-1] > 0
        assert rec['cpu']['bf16_kernels'] == bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported())
    note = 'has no oneDNN bfloat16 kernels'
    assert (note in proc.stdout) != records[0]['cpu']['bf16_kernels']


def test_unknown_variant_fails_clearly():
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, SCRIPT, 'configs/demo/fcis_r18-tiny_shapes.py',
         '--variants', 'fp32', 'fp16'], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "got 'fp16'" in proc.stderr
