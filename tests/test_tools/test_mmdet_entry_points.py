# Copyright (c) OpenMMLab. All rights reserved.
"""mmdet's own APIs on checkpoints written by tools/train.py, each in a
fresh process as a user's script or notebook would run them."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = {
    'fcis': osp.join(REPO, 'configs', 'demo', 'fcis_r18-tiny_shapes.py'),
    'mnc': osp.join(REPO, 'configs', 'demo', 'mnc_r18-tiny_shapes.py'),
}


def run_python(code, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module', params=sorted(DEMO))
def trained(request, shapes_root, tiny_config_file, tmp_path_factory):
    """(config, checkpoint) of 2 iterations of ``tools/train.py``."""
    tmp = tmp_path_factory.mktemp(request.param)
    config = tiny_config_file(tmp / 'tiny.py', shapes_root, max_iters=2,
                              base=DEMO[request.param])
    work = tmp / 'work'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(work)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return config, str(work / 'iter_2.pth')


def test_init_detector_and_det_inferencer_load_training_checkpoint(
        trained, shapes_root, tmp_path):
    """No ``import mnc_mm`` in the script: the config's custom_imports
    brings the allow-list, as in a notebook."""
    config, ckpt = trained
    image = osp.join(shapes_root, 'val', sorted(
        os.listdir(osp.join(shapes_root, 'val')))[0])
    out = run_python(f'''
        import torch
        from mmdet.apis import DetInferencer, inference_detector, init_detector
        from mmengine.runner.checkpoint import _load_checkpoint

        model = init_detector({config!r}, {ckpt!r}, device='cpu')
        saved = torch.load({ckpt!r}, weights_only=True)
        assert 'message_hub' in saved  # a full training checkpoint
        for name, value in model.state_dict().items():
            assert torch.equal(value, saved['state_dict'][name]), name
        result = inference_detector(model, {image!r})
        assert result.pred_instances.masks.shape[-2:] == \\
            tuple(result.ori_shape), result.ori_shape

        inferencer = DetInferencer(model={config!r}, weights={ckpt!r},
                                   device='cpu')
        out = inferencer({image!r}, return_datasamples=True)
        pred = out['predictions'][0].pred_instances
        assert torch.equal(pred.scores, result.pred_instances.scores)
        print('OK', len(pred.scores))
        ''', cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-4000:]
    assert 'OK' in out.stdout


EVIL = '''
import builtins, torch

class Exploit:
    def __reduce__(self):
        return (builtins.open, ({marker!r}, 'w'))

torch.save({{'state_dict': {{}}, 'x': Exploit()}}, {path!r})
'''


def test_pickle_calling_a_function_stays_refused(trained, tmp_path):
    config, _ = trained
    marker = str(tmp_path / 'ran')
    path = str(tmp_path / 'evil.pth')
    made = run_python(EVIL.format(marker=marker, path=path), str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    out = run_python(f'''
        import pickle
        import mnc_mm
        from mmdet.apis import init_detector
        try:
            init_detector({config!r}, {path!r}, device='cpu')
        except pickle.UnpicklingError as err:
            assert 'builtins.open' in str(err) or 'open' in str(err), err
            print('REFUSED')
        ''', cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-4000:]
    assert 'REFUSED' in out.stdout
    assert not osp.exists(marker)


def test_image_demo_on_a_one_pixel_high_image(trained, tmp_path):
    """A 1x300 image is drawn, or refused with its size: never a traceback
    from inside the backbone."""
    import mmcv
    import numpy as np
    config, ckpt = trained
    image = str(tmp_path / 'thin.png')
    mmcv.imwrite(np.full((1, 300, 3), 128, np.uint8), image)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, 'tools/image_demo.py', image, config, ckpt,
         '--out-dir', str(tmp_path / 'out'), '--device', 'cpu'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode == 0:
        assert (tmp_path / 'out' / 'thin.png').is_file()
    else:
        assert 'thin.png is 1x300 px (height x width): too small' in \
            out.stderr, out.stderr[-3000:]
        assert 'Traceback' not in out.stderr
