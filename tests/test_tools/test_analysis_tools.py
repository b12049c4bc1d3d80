# Copyright (c) OpenMMLab. All rights reserved.
"""print_config, analyze_logs, image_demo, browse_dataset and benchmark,
run by subprocess as a user would, on a tiny model trained for 2 iters;
and the main job (``run_demo.py``) on a 10-image shapes set."""
import glob
import json
import os
import os.path as osp
import struct
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run(*args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
               MPLBACKEND='Agg')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True,
                          timeout=300)


def ok(out):
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def png_size(path):
    """(width, height) from the IHDR chunk; fails if not a PNG."""
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', f'{path} is not a PNG'
    assert head[12:16] == b'IHDR'
    return struct.unpack('>II', head[16:24])


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shapes_root, tiny_config_file):
    """(config, checkpoint, scalar log) of 2 iterations of the tiny model."""
    tmp = tmp_path_factory.mktemp('tools')
    config = tiny_config_file(tmp / 'tiny.py', shapes_root, max_iters=2,
                              val_interval=2)
    work = tmp / 'work'
    ok(run('tools/train.py', config, '--work-dir', work))
    logs = glob.glob(str(work / '*' / 'vis_data' / '2*.json'))
    assert len(logs) == 1, logs
    return tmp, str(config), str(work / 'iter_2.pth'), logs[0]


def test_print_config(trained, tmp_path):
    _, config, _, _ = trained
    from mmengine.config import Config
    for suffix in ('py', 'yml'):
        path = tmp_path / 'sub' / f'full.{suffix}'
        out = ok(run('tools/misc/print_config.py', config, '--save-path',
                     path, '--cfg-options', 'model.backbone.depth=34'))
        assert out.stdout.startswith('Config:\n')
        assert 'depth=34' in out.stdout
        cfg = Config.fromfile(str(path))
        assert cfg.model.backbone.depth == 34
        assert cfg.train_cfg.max_iters == 2
    bad = run('tools/misc/print_config.py', config, '--save-path',
              tmp_path / 'full.txt')
    assert bad.returncode != 0 and '--save-path must end' in bad.stderr


def test_analyze_logs(trained, tmp_path):
    _, _, _, log = trained
    tool = 'tools/analysis_tools/analyze_logs.py'
    out = tmp_path / 'curve.png'
    ok(run(tool, 'plot_curve', log, log, '--keys', 'loss', 'segm_mAP',
           '--legend', 'a', 'b', 'c', 'd', '--title', 'tiny', '--out', out))
    assert png_size(out) == (640, 480)  # matplotlib's default figure

    missing = run(tool, 'plot_curve', log, '--keys', 'loss_nope', '--out',
                  tmp_path / 'x.png')
    assert missing.returncode != 0
    assert "has no key 'loss_nope'" in missing.stderr
    assert 'loss_cls' in missing.stderr and 'coco/segm_mAP' in missing.stderr
    assert 'Traceback' not in missing.stderr
    assert not (tmp_path / 'x.png').exists()

    timing = ok(run(tool, 'cal_train_time', log, '--include-outliers'))
    seconds = float(timing.stdout.split('average iter time:')[1].split()[0])
    assert seconds > 0


def test_image_demo(trained, shapes_root, tmp_path):
    import mmcv
    _, config, ckpt, _ = trained
    val = osp.join(shapes_root, 'val')
    images = sorted(os.listdir(val))
    one = osp.join(val, images[0])
    ok(run('tools/image_demo.py', one, config, ckpt, '--out-dir',
           tmp_path / 'one', '--score-thr', '0.0', '--device', 'cpu'))
    drawn = mmcv.imread(str(tmp_path / 'one' / images[0]))
    assert drawn.shape == mmcv.imread(one).shape
    assert (drawn != mmcv.imread(one)).any(), 'nothing was drawn'

    out = ok(run('tools/image_demo.py', val, config, ckpt, '--out-dir',
                 tmp_path / 'all'))
    assert f'{len(images)}/{len(images)}' in out.stdout  # progress bar
    assert sorted(os.listdir(tmp_path / 'all')) == \
        [osp.splitext(name)[0] + '.png' for name in images]
    for name in images:
        assert png_size(tmp_path / 'all' / name) == \
            mmcv.imread(osp.join(val, name)).shape[1::-1]

    missing = run('tools/image_demo.py', tmp_path / 'nope.jpg', config, ckpt,
                  '--out-dir', tmp_path / 'x')
    assert missing.returncode != 0
    assert 'is neither a file nor a folder' in missing.stderr
    junk = tmp_path / 'junk'
    junk.mkdir()
    (junk / 'notes.txt').write_text('not an image')
    (junk / 'broken.jpg').write_text('not an image either')
    broken = run('tools/image_demo.py', junk, config, ckpt, '--out-dir',
                 tmp_path / 'x')
    assert broken.returncode != 0
    assert 'broken.jpg could not be read as an image' in broken.stderr
    assert 'Traceback' not in missing.stderr + broken.stderr


def test_browse_dataset(trained, shapes_root, tmp_path):
    _, config, _, _ = trained
    out_dir = tmp_path / 'browse'
    ok(run('tools/analysis_tools/browse_dataset.py', config, '--output-dir',
           out_dir, '--not-show'))
    train = sorted(os.listdir(osp.join(shapes_root, 'train')))
    assert sorted(os.listdir(out_dir)) == train
    for name in train:
        # the train pipeline resizes to a short side of 256 (max 384)
        assert min(png_size(out_dir / name)) == 256


def test_benchmark_on_cpu(trained):
    _, config, ckpt, _ = trained
    out = ok(run('tools/analysis_tools/benchmark.py', config, ckpt,
                 '--device', 'cpu', '--max-iter', '4', '--num-warmup', '1',
                 '--log-interval', '1', '--repeat-num', '2'))
    fps = float(out.stdout.split('Overall fps:')[1].split()[0])
    latency = float(out.stdout.split('latency:')[1].split()[0])
    assert fps > 0 and latency > 0
    assert 'Device: cpu' in out.stdout
    assert out.stdout.count('Done image') == 6  # 3 timed images x 2 runs


def test_run_demo(tmp_path):
    """``make demo``'s job end to end, one epoch of 8 images: it generates
    the data, trains, evaluates once with test.py, draws and summarises,
    every step with the model the options made (here a narrower head)."""
    data, work = tmp_path / 'shapes', tmp_path / 'work'
    out = ok(run('tools/misc/run_demo.py', '--model', 'fcis', '--data-root',
                 data, '--work-dir', work, '--num-train', '8', '--num-val',
                 '2', '--num-shown', '2', '--cfg-options',
                 'train_cfg.max_epochs=1', 'model.neck.out_channels=64',
                 'model.roi_head.mask_head.in_channels=64',
                 'train_dataloader.num_workers=0',
                 'train_dataloader.persistent_workers=False',
                 'val_dataloader.num_workers=0',
                 'test_dataloader.num_workers=0'))
    assert 'generating the shapes data set' in out.stdout
    assert 'do not match exactly' not in out.stdout + out.stderr
    assert len(os.listdir(data / 'train')) == 8
    val = sorted(os.listdir(data / 'val'))
    assert len(val) == 2

    assert (work / 'last_checkpoint').read_text().strip() == \
        str(work / 'epoch_1.pth')
    png_size(work / 'loss_curve.png')
    assert sorted(os.listdir(work / 'predictions')) == \
        [osp.splitext(name)[0] + '.png' for name in val]

    # evaluated once, by test.py: the training log holds no metric
    train_logs = glob.glob(str(work / '*' / 'vis_data' / '2*.json'))
    test_logs = glob.glob(str(work / '*' / '*.json'))
    assert len(train_logs) == 1 and len(test_logs) == 1
    with open(train_logs[0]) as f:
        assert 'coco/' not in f.read()
    with open(test_logs[0]) as f:
        metrics = json.loads(f.read().splitlines()[-1])
    table = dict(
        line.strip('|').split('|')[:2] for line in out.stdout.splitlines()
        if line.startswith('| coco/') or line.startswith('| voc_mask/'))
    assert len(table) == 7, out.stdout[-2000:]
    for key, value in table.items():
        assert float(value) == pytest.approx(metrics[key.strip()], abs=5e-4)

    bad = run('tools/misc/run_demo.py', '--model', 'nope')
    assert bad.returncode != 0
    assert "--model must be one of ['fcis', 'mask-rcnn', 'mnc']" in \
        bad.stderr


@pytest.mark.parametrize('logged,key', [
    ({'loss': 1.0, 'loss_mask': 0.5}, 'loss_mask'),
    ({'loss': 1.0, 's0.loss_mask': 0.5, 's1.loss_mask': 0.4},
     's0.loss_mask'),
])
def test_run_demo_plots_the_model_s_mask_loss(tmp_path, logged, key):
    """MNC logs its stage losses as ``s0.``/``s1.`` (CascadeRoIHead's
    names): the demo's loss curve must find them."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(REPO, 'tools', 'misc', 'run_demo.py'))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    log = tmp_path / 'scalars.json'
    log.write_text(json.dumps({'lr': 0.1}) + '\n' + json.dumps(logged))
    assert run_demo.mask_loss_key(str(log)) == key
    log.write_text(json.dumps({'loss': 1.0}))
    with pytest.raises(RuntimeError, match='no mask loss'):
        run_demo.mask_loss_key(str(log))
