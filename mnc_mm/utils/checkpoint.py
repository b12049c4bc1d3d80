# Copyright (c) OpenMMLab. All rights reserved.
"""Safe checkpoint loading for mmengine under torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True``. A checkpoint written by
mmengine's Runner also holds its message hub (``HistoryBuffer``), numpy
arrays and numpy dtypes, so a plain ``torch.load`` refuses it and ``--resume``,
``load_from`` and ``tools/test.py`` all fail. Instead of turning safe loading
off, we allow-list exactly the globals such checkpoints contain and keep
``weights_only=True``; anything else (a callable, an arbitrary class) is
refused with an error that names the global and the file.

:func:`register_safe_checkpoint_loaders` routes mmengine's local-path and
http(s) checkpoint schemes through :func:`safe_torch_load`. It is not called
on ``import mnc_mm``: our tools enter :func:`mnc_mm.utils.checkpoint_io`,
which registers it for the length of their run and restores mmengine's own
loaders afterwards. URLs are downloaded into torch's hub cache
(``$TORCH_HOME/hub/checkpoints``) atomically, and a ``-<sha256 prefix>`` in
the file name is checked, as mmdet's model-zoo names carry one.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Dict, List, Optional
from urllib.parse import urlparse

import numpy as np
import torch

# ``name-<hex>.pth``: the hex run is a sha256 prefix (torch.hub's rule).
HASH_REGEX = re.compile(r'-([a-f0-9]{8,64})\.')
_UNSUPPORTED_GLOBAL = re.compile(r'Unsupported global: GLOBAL ([\w.]+)')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle holds a global outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated, corrupt or not a torch file."""


def _history_buffer_getattr(obj: object, name: str) -> object:
    """Stands in for ``builtins.getattr`` while unpickling.

    A pickled HistoryBuffer stores its statistics methods (``min``,
    ``mean``, ...), which pickle writes as ``getattr(HistoryBuffer,
    'min')``. Allowing the real getattr would let a file fetch any attribute
    of any allowed object; this one only returns public methods of
    HistoryBuffer.
    """
    from mmengine.logging import HistoryBuffer
    # The registry ``HistoryBuffer._statistics_methods`` is filled only when
    # a first buffer is built, so check for a public method of the class.
    if not (obj is HistoryBuffer and isinstance(name, str)
            and not name.startswith('_')
            and callable(getattr(HistoryBuffer, name, None))):
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL builtins.getattr on '
            f'{type(obj).__name__}.{name}: only the statistics methods of '
            f'HistoryBuffer may be rebuilt')
    return getattr(obj, name)


def checkpoint_safe_globals() -> List[object]:
    """The globals an mmengine/mmdet checkpoint may contain, beyond torch's.

    Runner checkpoints hold ``message_hub`` (:class:`HistoryBuffer` of numpy
    arrays and scalars, whose statistics methods pickle as ``getattr``) and
    ``meta`` (numpy scalars such as the seed); the optimizer and scheduler
    states are plain dicts, tensors and numbers, which torch allows already.
    Entries are objects, or ``(object, 'module.name')`` for a stand-in.
    """
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray
    dtype_classes = sorted({type(np.dtype(code))
                            for code in np.typecodes['All']
                            if code not in 'OMmV'},
                           key=lambda cls: cls.__name__)
    return [
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def _global_name(entry) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


def _offending_globals(filename: str, err: Exception) -> List[str]:
    allowed = {_global_name(g) for g in checkpoint_safe_globals()}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a zip checkpoint: fall back to torch's message
        found = _UNSUPPORTED_GLOBAL.findall(str(err))
    return [name for name in found if name not in allowed] or \
        _UNSUPPORTED_GLOBAL.findall(str(err))


def safe_torch_load(filename: str, map_location=None) -> Dict:
    """``torch.load`` with ``weights_only=True`` and the mmengine allow-list.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the pickle holds a global that is not allowed;
            the message names it and the file.
        CorruptCheckpointError: the file is truncated or not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        offending = _offending_globals(filename, err)
        if not offending:  # a broken pickle stream, not a forbidden global
            raise CorruptCheckpointError(
                f'checkpoint {filename} is corrupt: {err}') from err
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: its pickle references '
            f'{", ".join(offending)}, which is not on mnc_mm\'s allow-list of '
            f'checkpoint contents (tensors, numpy arrays and mmengine '
            f'HistoryBuffer). Loading it would run code from the file; '
            f'convert it with a trusted tool instead.') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CorruptCheckpointError(
            f'checkpoint {filename} is truncated or not a torch checkpoint '
            f'({type(err).__name__}: {err})') from err


def sha256_of(filename: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def download_checkpoint(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` into the hub cache once; return the cached path.

    The download goes to a temporary file that is renamed into place only
    when complete and, if the name carries ``-<sha256 prefix>.``, only when
    the digest matches; a failed download leaves nothing in the cache.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'checkpoint URL has no file name: {url}')
    cached = osp.join(model_dir, name)
    match = HASH_REGEX.search(name)
    prefix = match.group(1) if match else None
    if osp.exists(cached):
        if prefix and not sha256_of(cached).startswith(prefix):
            raise CorruptCheckpointError(
                f'cached checkpoint {cached} does not match the sha256 '
                f'prefix {prefix} in its name; delete it to download again')
        return cached
    try:
        torch.hub.download_url_to_file(url, cached, hash_prefix=prefix)
    except RuntimeError as err:
        if 'invalid hash value' in str(err):
            raise CorruptCheckpointError(
                f'download of {url} failed the sha256 check: the file does '
                f'not start with the prefix {prefix} given in its name '
                f'(corrupt or truncated download); nothing was cached') \
                from None
        raise
    return cached


def load_from_url(filename: str, map_location=None,
                  model_dir: Optional[str] = None) -> Dict:
    """mmengine ``http(s)://`` scheme: rank 0 downloads, then all load."""
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = download_checkpoint(filename, model_dir)
    if world_size > 1:
        barrier()
        if rank > 0:
            cached = download_checkpoint(filename, model_dir)
    return safe_torch_load(cached, map_location)


def register_safe_checkpoint_loaders() -> None:
    """Route mmengine's local and http(s) checkpoint loading through here."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', force=True)(
        lambda filename, map_location=None: safe_torch_load(
            filename, map_location))
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(
            lambda filename, map_location=None: load_from_url(
                filename, map_location))
