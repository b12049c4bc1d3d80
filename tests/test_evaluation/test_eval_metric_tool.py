# Copyright (c) OpenMMLab. All rights reserved.
"""mmdet's tools/analysis_tools/eval_metric.py on a ``tools/test.py --out``
pickle (written by mmdet's DumpDetResults, as tools/test.py does)."""
import ast
import os
import os.path as osp
import subprocess
import sys
import textwrap

import mmdet
import numpy as np
import pytest
import torch
from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation import DumpDetResults

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EVAL_METRIC = osp.join(
    osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
    'eval_metric.py')
CLASSES = ('circle', 'square', 'triangle')


def perfect_predictions(ann_file):
    """One data sample per val image whose predictions are its gt."""
    coco = COCO(ann_file)
    names = {c['id']: c['name'] for c in coco.load_cats(coco.get_cat_ids())}
    samples = []
    for img_id in coco.get_img_ids():
        info = coco.load_imgs([img_id])[0]
        anns = coco.load_anns(coco.get_ann_ids(img_ids=[img_id]))
        masks = np.stack([coco.annToMask(a) for a in anns]).astype(bool)
        boxes = [[x, y, x + w, y + h] for x, y, w, h in
                 (a['bbox'] for a in anns)]
        samples.append(dict(
            img_id=img_id, ori_shape=(info['height'], info['width']),
            pred_instances=dict(
                bboxes=torch.tensor(boxes, dtype=torch.float32),
                scores=torch.linspace(1., 0.5, len(anns)),
                labels=torch.tensor(
                    [CLASSES.index(names[a['category_id']]) for a in anns]),
                masks=torch.from_numpy(masks))))
    return samples


@pytest.mark.skipif(not osp.isfile(EVAL_METRIC),
                    reason='mmdet was installed without its .mim tools')
def test_eval_metric_on_an_out_pickle(shapes_root, tmp_path):
    ann = osp.join(shapes_root, 'annotations', 'instances_val.json')
    out = str(tmp_path / 'results.pkl')
    dump = DumpDetResults(out_file_path=out)
    dump.process({}, perfect_predictions(ann))
    dump.compute_metrics(dump.results)

    config = tmp_path / 'cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{osp.join(REPO, 'configs', 'demo',
                            'fcis_r18-tiny_shapes.py')!r}]
        data_root = {shapes_root + os.sep!r}
        val_dataloader = dict(dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = [
            dict(type='CocoMetric', ann_file={ann!r}, metric=['segm']),
            dict(type='VOCMaskAPMetric', ann_file={ann!r})]
        '''))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, EVAL_METRIC, str(config), out],
                         env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = ast.literal_eval(res.stdout.strip().splitlines()[-1])
    assert metrics['coco/segm_mAP'] == pytest.approx(1.)
    assert metrics['voc_mask/mAP_r@0.5'] == pytest.approx(1.)
    assert metrics['voc_mask/mAP_r@0.7'] == pytest.approx(1.)
