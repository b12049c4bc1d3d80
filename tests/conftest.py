# Copyright (c) OpenMMLab. All rights reserved.
"""Shared fixtures: a tiny shapes data set, the tiny demo config and a
local HTTP server."""
import functools
import http.server
import os
import os.path as osp
import textwrap
import threading

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = osp.join(REPO, 'configs', 'demo', 'mask-rcnn_r18-tiny_shapes.py')


@pytest.fixture(autouse=True)
def _safe_loading_stays_on(monkeypatch):
    """No test may pass because safe loading was switched off."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A small generated shapes set: 8 train and 4 val images of 96-128 px."""
    from mnc_mm.datasets.synthetic_shapes import make_shapes_dataset
    root = str(tmp_path_factory.mktemp('shapes'))
    make_shapes_dataset(root, num_train=8, num_val=4, seed=0,
                        img_size=(96, 128))
    return root


@pytest.fixture(scope='session')
def tiny_config_file():
    """Factory: write a config file inheriting a demo config (``base``,
    default the Mask R-CNN one), shrunk to ``max_iters`` iterations on
    ``data_root`` (COCO bbox/segm metric)."""
    return _write_tiny_config


def _write_tiny_config(path, data_root, max_iters=3, ckpt_interval=None,
                       val_interval=None, extra='', base=TINY_CONFIG):
    ann = osp.join(data_root, 'annotations', 'instances_val.json')
    text = textwrap.dedent(f'''
        _base_ = [{base!r}]
        data_root = {data_root + os.sep!r}
        train_dataloader = dict(batch_size=2, num_workers=0,
                                persistent_workers=False,
                                dataset=dict(data_root=data_root))
        val_dataloader = dict(batch_size=1, num_workers=0,
                              persistent_workers=False,
                              dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = dict(
            _delete_=True, type='CocoMetric', ann_file={ann!r},
            metric=['bbox', 'segm'])
        test_evaluator = val_evaluator
        train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                         max_iters={max_iters},
                         val_interval={val_interval or 10**6})
        param_scheduler = []
        default_hooks = dict(
            logger=dict(interval=1),
            checkpoint=dict(interval={ckpt_interval or max_iters},
                            by_epoch=False))
        log_processor = dict(by_epoch=False)
        randomness = dict(seed=0)
        ''') + textwrap.dedent(extra)
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


@pytest.fixture(scope='session')
def tiny_config():
    """Factory: a demo config (default: the Mask R-CNN one) shrunk to a few
    iterations on a data root."""
    return _tiny_config


def _tiny_config(data_root, work_dir, max_iters=2, config=TINY_CONFIG):
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    ann_val = osp.join(data_root, 'annotations', 'instances_val.json')
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root + os.sep
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.batch_size = 2
    cfg.val_evaluator.ann_file = ann_val
    cfg.test_evaluator.ann_file = ann_val
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10**6)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yields (root dir, base URL)."""
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()
