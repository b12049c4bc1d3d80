# Copyright (c) OpenMMLab. All rights reserved.
"""Safe checkpoint loading: allow-list, refusals, URLs, Runner round trip."""
import hashlib
import http.server
import os
import os.path as osp
import pickle
import subprocess
import sys
import threading
import zipfile

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner

import mnc_mm  # noqa: F401
from mnc_mm.utils import checkpoint, checkpoint_io
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
    # Without mnc_mm torch refuses it: the allow-list is what makes it work.
    plain = subprocess.run(
        [sys.executable, '-c',
         f'import torch; torch.load({path!r}, weights_only=True)'],
        capture_output=True, text=True)
    assert plain.returncode != 0 and 'HistoryBuffer' in plain.stderr
    loaded = safe_torch_load(path)
    # ``import mnc_mm`` allow-listed it for plain torch.load too, and
    # safe_torch_load left that list as it was
    assert torch.load(path, weights_only=True)['meta']['seed'] == 7
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


@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'legacy'])
def test_refusal_names_the_global_and_never_suggests_unsafe_loading(
        tmp_path, zip_format):
    """A legacy (non-zip) file calling ``os.system`` is refused code, not a
    corrupt file, and no message advises ``weights_only=False``."""
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'hook': os.system}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(path)
    message = str(info.value)
    assert f'{os.system.__module__}.system' in message and path in message
    assert 'weights_only' not in message

    path = tmp_path / 'torn.pth'
    torch.save({'state_dict': {'w': torch.randn(32)}}, str(path),
               _use_new_zipfile_serialization=zip_format)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorruptCheckpointError) as info:
        safe_torch_load(str(path))
    assert 'weights_only' not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


class _Numpy1Pickler(pickle._Pickler):
    """Pickles numpy's rebuild functions under numpy 1's module name
    (``numpy.core.multiarray``), as a checkpoint saved with numpy 1 does."""

    def save_global(self, obj, name=None):
        if getattr(obj, '__module__', None) == 'numpy._core.multiarray':
            self.write(pickle.GLOBAL + b'numpy.core.multiarray\n' +
                       obj.__name__.encode() + b'\n')
            self.memoize(obj)
            return
        super().save_global(obj, name)


@pytest.mark.parametrize('numpy_major', [1, 2])
def test_numpy_arrays_of_either_numpy_major_load(tmp_path, numpy_major):
    """``import mnc_mm`` allow-lists numpy's rebuilders under both names, so
    plain ``torch.load`` (as mmdet's init_detector calls it) reads them."""
    import numpy as np
    ckpt = {'meta': {'seed': np.int64(7)}, 'hist': np.arange(4.)}
    path = str(tmp_path / f'numpy{numpy_major}.pth')
    module = pickle if numpy_major == 2 else type(
        'numpy1_pickle', (), {'Pickler': _Numpy1Pickler})
    torch.save(ckpt, path, pickle_module=module,
               _use_new_zipfile_serialization=True)
    core = 'numpy.core' if numpy_major == 1 else 'numpy._core'
    with zipfile.ZipFile(path) as archive:
        pkl = archive.read(next(name for name in archive.namelist()
                                if name.endswith('data.pkl')))
    assert f'c{core}.multiarray\n_reconstruct\n'.encode() in pkl
    loaded = torch.load(path, weights_only=True)
    assert int(loaded['meta']['seed']) == 7
    assert np.array_equal(loaded['hist'], np.arange(4.))


def test_numpy_multiarray_resolves_the_first_importable_name():
    import numpy as np
    np_core = checkpoint.numpy_multiarray(
        ('numpy._no_such_core.multiarray', 'numpy._core.multiarray'))
    assert np_core.scalar is np._core.multiarray.scalar
    with pytest.raises(ImportError, match='numpy._no_such_core.multiarray'):
        checkpoint.numpy_multiarray(('numpy._no_such_core.multiarray', ))


class _CutShortHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file, sends half of it, closes: a dropped
    connection as the client sees it."""
    payload = b''

    def _headers(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(self.payload)))
        self.end_headers()

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        self._headers()
        self.wfile.write(self.payload[:len(self.payload) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_download_cut_short_is_never_cached(http_server, tmp_path,
                                            monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    src = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.randn(4096)}}, str(src))
    data = src.read_bytes()
    handler = type('Handler', (_CutShortHandler, ), {'payload': data})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/model.pth'
        with pytest.raises(CorruptCheckpointError) as info:
            CheckpointLoader.load_checkpoint(url)
    finally:
        server.shutdown()
        server.server_close()
    assert f'{len(data) // 2} of the {len(data)} bytes' in str(info.value)
    assert os.listdir(cache) == []

    # A file an older version cached truncated is replaced, not trusted.
    (cache / 'model.pth').write_bytes(data[:len(data) // 2])
    root, base = http_server
    (root / 'model.pth').write_bytes(data)
    with pytest.warns(UserWarning, match='downloading again'):
        ckpt = CheckpointLoader.load_checkpoint(f'{base}/model.pth')
    assert torch.equal(ckpt['state_dict']['w'],
                       torch.load(str(src))['state_dict']['w'])
    assert (cache / 'model.pth').read_bytes() == data
