# Copyright (c) OpenMMLab. All rights reserved.
"""Safe checkpoint loading: allow-list, refusals, URLs, Runner round trip."""
import hashlib
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner

import mnc_mm  # noqa: F401
from mnc_mm.utils import checkpoint_io
from mnc_mm.utils.checkpoint import (CorruptCheckpointError,
                                     UnsafeCheckpointError, safe_torch_load)


@pytest.fixture(autouse=True)
def _in_checkpoint_io():
    """These tests exercise mmengine inside our tools' scope."""
    with checkpoint_io():
        yield


class Payload:
    """An arbitrary class: pickled by reference, never allowed."""


def test_runner_checkpoint_needs_the_allow_list(tmp_path):
    ckpt = {
        'state_dict': {'w': torch.ones(2)},
        'message_hub': {
            'log_scalars': {'loss': HistoryBuffer([1.0, 0.5], [1, 1])}
        },
        'meta': {'seed': __import__('numpy').int64(7)},
    }
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    # Plain safe loading refuses it: the allow-list is what makes it work.
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path, weights_only=True)
    loaded = safe_torch_load(path)
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    buffer = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == 0.5
    assert int(loaded['meta']['seed']) == 7
    # A fresh process has built no HistoryBuffer yet (mmengine fills its
    # statistics registry lazily): loading must not depend on that.
    code = ('from mnc_mm.utils.checkpoint import safe_torch_load; '
            f'b = safe_torch_load({path!r})["message_hub"]["log_scalars"]; '
            'assert b["loss"].mean() == 0.75')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize('evil', [os.system, print, Payload],
                         ids=['os.system', 'builtins.print', 'class'])
def test_malicious_checkpoint_is_refused(tmp_path, evil):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'hook': evil}, path)
    name = f'{evil.__module__}.{evil.__qualname__}'
    with pytest.raises(UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(path)  # mmengine's entry point
    message = str(info.value)
    assert name.split('.')[-1] in message and path in message


def test_reduce_payload_is_refused_and_not_run(tmp_path):
    marker = tmp_path / 'ran'

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = str(tmp_path / 'exploit.pth')
    torch.save({'state_dict': {}, 'x': Exploit()}, path)
    with pytest.raises(UnsafeCheckpointError, match='open'):
        safe_torch_load(path)
    assert not marker.exists()


def test_getattr_only_rebuilds_history_buffer_statistics(tmp_path):
    """Real checkpoints pickle ``getattr(HistoryBuffer, 'min')``; nothing
    else may go through getattr."""

    class Fetch:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = str(tmp_path / 'fetch.pth')
    torch.save({'state_dict': {}, 'x': Fetch()}, path)
    with pytest.raises(UnsafeCheckpointError, match='builtins.getattr'):
        safe_torch_load(path)


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nowhere.pth'))
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='model.pth'):
        CheckpointLoader.load_checkpoint(str(path))
    path.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CorruptCheckpointError, match='model.pth'):
        safe_torch_load(str(path))


def test_url_checkpoint_hash_checked_and_cached(http_server, tmp_path,
                                                monkeypatch):
    root, base = http_server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    src = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.arange(3.)}}, str(src))
    data = src.read_bytes()
    sha = hashlib.sha256(data).hexdigest()[:8]

    good = f'model-{sha}.pth'
    (root / good).write_bytes(data)
    ckpt = CheckpointLoader.load_checkpoint(f'{base}/{good}')
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.))
    assert (cache / good).read_bytes() == data

    # A name whose hash does not match the content: refused, nothing cached.
    wrong = 'model-00000000.pth'
    (root / wrong).write_bytes(data)
    with pytest.raises(CorruptCheckpointError, match='sha256'):
        CheckpointLoader.load_checkpoint(f'{base}/{wrong}')
    # A truncated upload of a correctly named file: likewise.
    truncated = f'trunc-{sha}.pth'
    (root / truncated).write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='sha256'):
        CheckpointLoader.load_checkpoint(f'{base}/{truncated}')
    assert sorted(os.listdir(cache)) == [good]


def test_runner_train_resume_test_with_safe_loading(shapes_root, tmp_path,
                                                    tiny_config):
    work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(tiny_config(shapes_root, work_dir, max_iters=2))
    runner.train()
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    with pytest.raises(pickle.UnpicklingError):  # really needs the list
        torch.load(ckpt, weights_only=True)

    cfg = tiny_config(shapes_root, work_dir, max_iters=3)
    cfg.resume, cfg.load_from = True, ckpt
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    weights = safe_torch_load(osp.join(work_dir, 'iter_3.pth'))['state_dict']

    cfg = tiny_config(shapes_root, str(tmp_path / 'test'))
    cfg.load_from = osp.join(work_dir, 'iter_3.pth')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 'coco/segm_mAP' in metrics and 'coco/bbox_mAP' in metrics
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
