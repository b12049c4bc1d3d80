# Copyright (c) OpenMMLab. All rights reserved.
"""Local writes through mmengine are atomic inside ``checkpoint_io()``."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

import mnc_mm  # noqa: F401
from mnc_mm.utils import checkpoint_io, fileio
from mnc_mm.utils.checkpoint import safe_torch_load


@pytest.fixture(autouse=True)
def _in_checkpoint_io():
    """These tests exercise mmengine inside our tools' scope."""
    with checkpoint_io():
        yield


def test_mmengine_uses_the_atomic_backend(tmp_path):
    backend = get_file_backend(str(tmp_path / 'x.pth'))
    assert isinstance(backend, fileio.AtomicLocalBackend)
    backend.put_text('iter_3.pth', str(tmp_path / 'sub' / 'last_checkpoint'))
    assert (tmp_path / 'sub' / 'last_checkpoint').read_text() == 'iter_3.pth'


def test_a_crash_while_saving_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)

    def killed(fd):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(fileio.os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.ones(1000)}}, path)
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp file left
    assert torch.equal(safe_torch_load(path)['state_dict']['w'],
                       torch.zeros(3))
