# Copyright (c) OpenMMLab. All rights reserved.
"""``tools/test.py --tta`` end to end on demo checkpoints trained for a few
iterations by ``tools/train.py``."""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _metrics(work_dir):
    """The metrics of the one test run logged under ``work_dir``."""
    [run] = [d for d in os.listdir(work_dir)
             if osp.isdir(osp.join(work_dir, d))]
    with open(osp.join(work_dir, run, f'{run}.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('method', ['fcis', 'mnc', 'mask-rcnn'])
def test_tta_runs_end_to_end(method, tmp_path, shapes_root,
                             tiny_config_file):
    """FCIS and MNC with their configs' tta_model and tta_pipeline; Mask
    R-CNN's config has neither: tools/test.py's default flip pipeline."""
    base = osp.join(REPO, 'configs', 'demo', f'{method}_r18-tiny_shapes.py')
    config = tiny_config_file(tmp_path / 'tiny.py', shapes_root,
                              max_iters=3, base=base)
    _run(['tools/train.py', config, '--work-dir', str(tmp_path / 'train')],
         tmp_path)
    ckpt = str(tmp_path / 'train' / 'iter_3.pth')
    runs = {}
    for name, extra in (('plain', []),
                        # a final cap of 1 shows the merge ran
                        ('tta', ['--tta', '--cfg-options',
                                 'tta_model.type=InstanceTTAModel',
                                 'tta_model.tta_cfg.max_per_img=1'])):
        work = tmp_path / name
        _run(['tools/test.py', config, ckpt, '--work-dir', str(work),
              '--out', str(work / 'preds.pkl'), *extra], tmp_path)
        metrics = _metrics(work)
        for key in ('coco/segm_mAP', 'coco/segm_mAP_50', 'coco/bbox_mAP'):
            assert -1 <= metrics[key] <= 1, metrics
        with open(work / 'preds.pkl', 'rb') as f:
            runs[name] = pickle.load(f)
    assert len(runs['tta']) == len(runs['plain']) == 4
    assert max(len(p['pred_instances']['labels']) for p in runs['plain']) > 1
    for pred in runs['tta']:
        instances = pred['pred_instances']
        assert len(instances['labels']) <= 1
        # RLE masks at the original image size
        for rle in instances['masks']:
            assert tuple(rle['size']) == tuple(pred['ori_shape'])
