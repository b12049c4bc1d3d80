# Copyright (c) OpenMMLab. All rights reserved.
"""Local writes through mmengine are atomic inside ``checkpoint_io()``."""
import contextlib
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


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_atomic_writes_keep_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        fileio.atomic_write_bytes(b'x', tmp_path / 'a.pth')
        with open(tmp_path / 'b.pth', 'wb') as f:  # what open() gives
            f.write(b'x')
    finally:
        os.umask(old)
    assert (tmp_path / 'a.pth').stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / 'a.pth').stat().st_mode == \
        (tmp_path / 'b.pth').stat().st_mode


def test_stale_temp_files_are_removed(tmp_path):
    stale = ['.epoch_3.pth.k2x_9qzp.tmp', '.last_checkpoint.0a1b2c3d.tmp']
    kept = ['epoch_2.pth', '.hidden.tmp', 'notes.tmp', '.epoch_3.pth.tmp']
    for name in stale + kept:
        (tmp_path / name).write_bytes(b'')
    removed = fileio.remove_stale_temp_files(str(tmp_path))
    assert sorted(removed) == sorted(str(tmp_path / n) for n in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_old_checkpoint_removed_only_once_the_next_is_written(
        tmp_path, monkeypatch):
    """mmengine removes checkpoint N-1 before it writes N (max_keep_ckpts):
    the removal waits for N, so a crash while writing N keeps N-1."""
    backend = get_file_backend(str(tmp_path / 'x.pth'))
    old, new = tmp_path / 'iter_1.pth', tmp_path / 'iter_2.pth'
    backend.put(b'one', old)
    backend.remove(old)
    assert old.exists()

    def killed(fd):
        raise KeyboardInterrupt('killed while writing')

    with monkeypatch.context() as patch:
        patch.setattr(fileio.os, 'fsync', killed)
        with pytest.raises(KeyboardInterrupt):
            backend.put(b'two', new)
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth']
    backend.put(b'two', new)
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth']


def test_deferred_removal_runs_when_the_run_ends_well(tmp_path):
    for name in ('ok', 'error'):
        path = tmp_path / f'{name}.pth'
        path.write_bytes(b'')
        with pytest.raises(RuntimeError) if name == 'error' else \
                contextlib.nullcontext():
            with checkpoint_io():
                get_file_backend(str(path)).remove(path)
                if name == 'error':
                    raise RuntimeError('training failed')
    assert os.listdir(tmp_path) == ['error.pth']
