# Copyright (c) OpenMMLab. All rights reserved.
"""Safe checkpoint loading for mmengine under torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True``. A checkpoint written by
mmengine's Runner also holds its message hub (``HistoryBuffer``), numpy
arrays and numpy dtypes, so a plain ``torch.load`` refuses it and
``--resume``, ``load_from``, ``init_detector`` and ``DetInferencer`` all
fail. Instead of turning safe loading off, ``import mnc_mm`` allow-lists
exactly the globals such checkpoints contain with torch's own
``torch.serialization.add_safe_globals`` (:func:`allow_checkpoint_globals`)
and keeps ``weights_only=True``: a pickle that calls anything else (a
function, an arbitrary class) is still refused by torch.

mmengine 0.10.7 loads ``http(s)://`` checkpoints (``load_from``, a
metafile's ``Weights`` in ``DetInferencer(model=NAME)``) with
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to
False: any pickle on a server would run. ``import mnc_mm`` therefore routes
those two schemes through :func:`load_from_url`
(:func:`register_safe_url_loader`), for every model in the process.
:func:`register_safe_checkpoint_loaders` also routes local paths through
:func:`safe_torch_load`, whose errors name the refused global and the file;
our tools enter :func:`mnc_mm.utils.checkpoint_io`, which registers it for
the length of their run and restores the previous loaders afterwards. URLs are
downloaded into torch's hub cache (``$TORCH_HOME/hub/checkpoints``) by
torch.hub, which checks a ``-<sha256 prefix>`` in the file name; the size is
checked against ``Content-Length``, and a file that fails a check or fails
to load is never left in the cache.
"""
import hashlib
import importlib
import os
import os.path as osp
import pickle
import re
import warnings
import zipfile
from types import ModuleType
from typing import Dict, List, Optional, Tuple
from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import numpy as np
import torch

# ``name-<hex>.pth``: the hex run is a sha256 prefix (torch.hub's rule).
HASH_REGEX = re.compile(r'-([a-f0-9]{8,64})\.')
# torch's two refusals: a global off the allow-list, and one from a blocked
# module (``os``, ``posix``, ...), which legacy (non-zip) files report.
_UNSUPPORTED_GLOBAL = re.compile(
    r'(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)')
# Where numpy keeps ``_reconstruct`` and ``scalar``: numpy 2 moved
# ``numpy.core`` to ``numpy._core``; pickles name the one they were saved by.
NUMPY_MULTIARRAY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')


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
    multiarray = numpy_multiarray()
    # a file saved under the other numpy major names the other module
    numpy_rebuilders = [(getattr(multiarray, name), f'{module}.{name}')
                        for module in NUMPY_MULTIARRAY_MODULES
                        for name in ('_reconstruct', 'scalar')]
    dtype_classes = sorted({type(np.dtype(code))
                            for code in np.typecodes['All']
                            if code not in 'OMmV'},
                           key=lambda cls: cls.__name__)
    return [
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        *numpy_rebuilders,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def numpy_multiarray(candidates=NUMPY_MULTIARRAY_MODULES) -> ModuleType:
    """numpy's ``multiarray`` module: the first of ``candidates`` to import.

    ``numpy._core.multiarray`` on numpy 2, ``numpy.core.multiarray`` on
    numpy 1 (where ``numpy._core`` does not exist).
    """
    for name in candidates:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f'none of {list(candidates)} can be imported with '
                      f'numpy {np.__version__}')


def allow_checkpoint_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for every ``torch.load``.

    Called on ``import mnc_mm``, so mmdet's ``init_detector``,
    ``DetInferencer`` and mmengine's loaders read Runner checkpoints with
    ``weights_only=True``. Nothing on the list can run code from a file.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


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


def _torch_reason(err: Exception) -> str:
    """torch's error text without its advice to load with
    ``weights_only=False``, which would run whatever the file holds."""
    lines = str(err).replace(torch.serialization.UNSAFE_MESSAGE, '')
    return ' '.join(
        line.strip() for line in lines.splitlines()
        if line.strip() and 'weights_only' not in line)


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
        # not torch's safe_globals() context: its exit would remove these
        # entries from the process-wide list ``import mnc_mm`` set up
        allow_checkpoint_globals()
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        offending = _offending_globals(filename, err)
        if not offending:  # a broken pickle stream, not a forbidden global
            raise CorruptCheckpointError(
                f'checkpoint {filename} is corrupt: {_torch_reason(err)}') \
                from None
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {filename}: its pickle references '
            f'{", ".join(offending)}, which is not on mnc_mm\'s allow-list of '
            f'checkpoint contents (tensors, numpy arrays and mmengine '
            f'HistoryBuffer). Loading it would run code from the file; '
            f'convert it with a trusted tool instead.') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CorruptCheckpointError(
            f'checkpoint {filename} is truncated or not a torch checkpoint '
            f'({type(err).__name__}: {_torch_reason(err)})') from None


def sha256_of(filename: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def announced_size(url: str, timeout: float = 30.) -> Optional[int]:
    """The ``Content-Length`` the server gives for ``url`` (a HEAD request);
    None where it gives none or HEAD fails."""
    try:
        with urlopen(Request(url, method='HEAD'), timeout=timeout) as resp:
            length = resp.headers.get('Content-Length', '')
    except (URLError, OSError, ValueError):
        return None
    return int(length) if length.isdigit() else None


def _cache_entry(url: str, model_dir: Optional[str]) -> Tuple[str, str]:
    """(cached path, sha256 prefix in the name or None) for ``url``."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'checkpoint URL has no file name: {url}')
    match = HASH_REGEX.search(name)
    return osp.join(model_dir, name), match.group(1) if match else None


def download_and_load(url: str, cached: str, prefix: Optional[str],
                      map_location=None) -> Dict:
    """Download ``url``, check it, load it, and only then cache it.

    torch.hub's ``download_url_to_file`` does the download and the sha256
    ``prefix`` check; the size is compared with the server's
    ``Content-Length`` (a connection cut short ends the body without an
    error) and the file must load with :func:`safe_torch_load`. A file that
    fails any check is deleted: nothing that cannot load enters the cache.
    """
    partial = f'{cached}.{os.getpid()}.partial'
    expected = announced_size(url)
    try:
        try:
            torch.hub.download_url_to_file(url, partial, hash_prefix=prefix)
        except RuntimeError as err:
            if 'invalid hash value' not in str(err):
                raise
            raise CorruptCheckpointError(
                f'download of {url} failed the sha256 check: the file does '
                f'not start with the prefix {prefix} given in its name '
                f'(corrupt or truncated download); nothing was cached') \
                from None
        size = osp.getsize(partial)
        if expected is not None and size != expected:
            raise CorruptCheckpointError(
                f'download of {url} was cut short: {size} of the {expected} '
                f'bytes its Content-Length announced arrived; nothing was '
                f'cached, run again to download it again')
        try:
            checkpoint = safe_torch_load(partial, map_location)
        except (CorruptCheckpointError, UnsafeCheckpointError) as err:
            raise type(err)(f'downloaded from {url}, not cached: {err}') \
                from None
        os.replace(partial, cached)
        return checkpoint
    finally:
        if osp.exists(partial):
            os.remove(partial)


def load_cached(cached: str, prefix: Optional[str], map_location=None):
    """The cached checkpoint, or None (and no file) where it fails to load."""
    if not osp.exists(cached):
        return None
    if prefix and not sha256_of(cached).startswith(prefix):
        raise CorruptCheckpointError(
            f'cached checkpoint {cached} does not match the sha256 '
            f'prefix {prefix} in its name; delete it to download again')
    try:
        return safe_torch_load(cached, map_location)
    except CorruptCheckpointError as err:
        warnings.warn(f'{err}; deleting it and downloading again')
        os.remove(cached)
        return None


def load_from_url(filename: str, map_location=None,
                  model_dir: Optional[str] = None) -> Dict:
    """mmengine ``http(s)://`` scheme: rank 0 downloads, then all load."""
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    cached, prefix = _cache_entry(filename, model_dir)
    checkpoint = None
    if rank == 0:
        checkpoint = load_cached(cached, prefix, map_location)
        if checkpoint is None:
            checkpoint = download_and_load(
                filename, cached, prefix, map_location)
    if world_size > 1:
        barrier()
        if rank > 0:
            checkpoint = load_cached(cached, prefix, map_location)
            if checkpoint is None:  # rank 0 failed and raised
                raise CorruptCheckpointError(
                    f'rank 0 could not download {filename} into {cached}')
    return checkpoint


def register_safe_url_loader() -> None:
    """Route mmengine's ``http(s)://`` checkpoint loading through
    :func:`load_from_url` (``weights_only=True``, size and hash checked)."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(
            lambda filename, map_location=None: load_from_url(
                filename, map_location))


def register_safe_checkpoint_loaders() -> None:
    """Route mmengine's local and http(s) checkpoint loading through here."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', force=True)(
        lambda filename, map_location=None: safe_torch_load(
            filename, map_location))
    register_safe_url_loader()
