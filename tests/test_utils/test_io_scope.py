# Copyright (c) OpenMMLab. All rights reserved.
"""``import mnc_mm`` leaves mmengine's local checkpoint I/O alone and makes
its URL loading safe; our scope changes the rest only while it lasts."""
import os.path as osp
import subprocess
import sys
import textwrap

import torch
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader

from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.fileio import AtomicLocalBackend

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MASK_RCNN = osp.join(REPO, 'configs', 'demo', 'mask-rcnn_r18-tiny_shapes.py')


def test_import_leaves_mask_rcnn_save_and_load_unchanged(tmp_path):
    """In a fresh process: the loaders and backends mmengine has before
    ``import mnc_mm`` are the ones it has after, but for the http(s)
    loader, and an mmdet Mask R-CNN saves and loads through them with the
    same weights."""
    code = textwrap.dedent(f'''
        import torch
        from mmengine.config import Config
        from mmengine.fileio.backends import registry_utils
        from mmengine.runner.checkpoint import (CheckpointLoader,
                                                load_checkpoint,
                                                save_checkpoint)
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules

        def io_state():
            schemes = dict(CheckpointLoader._schemes)
            urls = schemes.pop('http://'), schemes.pop('https://')
            assert urls[0] is urls[1], urls
            return (schemes,
                    dict(registry_utils.backends),
                    dict(registry_utils.prefix_to_backends))

        register_all_modules()
        before = io_state()
        mmengine_url_loader = CheckpointLoader._schemes['https://']
        import mnc_mm  # noqa: F401
        assert io_state() == before, 'import mnc_mm changed mmengine I/O'
        url_loader = CheckpointLoader._schemes['https://']
        assert url_loader is not mmengine_url_loader
        assert 'load_from_url' in url_loader.__code__.co_names

        cfg = Config.fromfile({MASK_RCNN!r})
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        path = {str(tmp_path / 'mask_rcnn.pth')!r}
        save_checkpoint({{'state_dict': model.state_dict()}}, path)
        loaded = MODELS.build(cfg.model)
        load_checkpoint(loaded, path, map_location='cpu', strict=True)
        for name, value in model.state_dict().items():
            assert torch.equal(value, loaded.state_dict()[name]), name
        assert io_state() == before
        print('unchanged')
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('unchanged')


def test_the_scope_sets_and_restores_loaders_and_backends(tmp_path):
    local = CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'a.pth'))
    http = CheckpointLoader._get_checkpoint_loader('https://x/a.pth')
    assert type(get_file_backend(str(tmp_path))) is LocalBackend
    with checkpoint_io():
        assert CheckpointLoader._get_checkpoint_loader(
            str(tmp_path / 'a.pth')) is not local
        assert isinstance(get_file_backend(str(tmp_path)),
                          AtomicLocalBackend)
        with checkpoint_io():  # nested: the inner exit keeps the outer
            pass
        assert isinstance(get_file_backend(str(tmp_path)),
                          AtomicLocalBackend)
        path = str(tmp_path / 'w.pth')
        torch.save({'state_dict': {'w': torch.ones(2)}}, path)
        loaded = CheckpointLoader.load_checkpoint(path)
        assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert CheckpointLoader._get_checkpoint_loader(
        str(tmp_path / 'a.pth')) is local
    assert CheckpointLoader._get_checkpoint_loader('https://x/a.pth') is http
    assert type(get_file_backend(str(tmp_path))) is LocalBackend


def test_the_scope_restores_after_an_error(tmp_path):
    local = CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'a.pth'))
    try:
        with checkpoint_io():
            raise KeyError('inside')
    except KeyError:
        pass
    assert CheckpointLoader._get_checkpoint_loader(
        str(tmp_path / 'a.pth')) is local
