# Copyright (c) OpenMMLab. All rights reserved.
"""Atomic local writes for mmengine: no half-written checkpoint after a kill.

mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes,
so a process killed while saving leaves a truncated ``epoch_N.pth`` (or
``last_checkpoint``) behind. :class:`AtomicLocalBackend` writes to a
temporary file in the same folder (created with the umask's mode, like
``open``), flushes it to disk and renames it over the target (``os.replace``
is atomic on POSIX and Windows): readers see the old file or the new one,
never a mix.

mmengine's CheckpointHook removes the oldest checkpoint *before* writing
the next one, so with ``max_keep_ckpts=1`` a kill during the write would
leave none. The backend defers removing a ``.pth`` file until the next
``.pth`` in the same folder is complete (or the scope ends).
:func:`mnc_mm.utils.checkpoint_io` makes it mmengine's backend for local
paths while our tools run.
"""
import os
import os.path as osp
import re
import secrets
from pathlib import Path
from typing import Dict, List, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend

# ``.<target name>.<8 characters>.tmp``: ours, and mkstemp's of earlier
# versions of this module.
TEMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp$')
# folder -> checkpoint files whose removal waits for the next checkpoint
_deferred_removals: Dict[str, List[str]] = {}


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` atomically (creating its folder).

    The file gets the mode ``open`` would give it (0o666 less the umask).
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder,
                   f'.{osp.basename(filepath)}.{secrets.token_hex(4)}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete the temporary files a killed atomic write left in ``folder``.

    Returns the removed paths. Call it before a run writes into ``folder``.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if TEMP_NAME.match(name) and osp.isfile(path):
            try:
                os.remove(path)
            except FileNotFoundError:  # another rank was first
                continue
            removed.append(path)
    return removed


def run_deferred_removals(folder: Optional[str] = None) -> None:
    """Remove the checkpoints whose removal was deferred (in ``folder``, or
    everywhere when None)."""
    folders = list(_deferred_removals) if folder is None else [folder]
    for key in folders:
        for path in _deferred_removals.pop(key, []):
            if osp.isfile(path):
                os.remove(path)


def forget_deferred_removals() -> None:
    """Keep the checkpoints whose removal was deferred (after an error)."""
    _deferred_removals.clear()


class AtomicLocalBackend(LocalBackend):
    """mmengine's LocalBackend whose writes are atomic and whose removal of
    a checkpoint waits until the next checkpoint is on disk."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)
        if str(filepath).endswith('.pth'):
            folder = osp.dirname(osp.abspath(filepath))
            pending = _deferred_removals.get(folder, [])
            if osp.abspath(filepath) in pending:  # rewritten: keep it
                pending.remove(osp.abspath(filepath))
            run_deferred_removals(folder)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)

    def remove(self, filepath: Union[str, Path]) -> None:
        path = osp.abspath(filepath)
        if path.endswith('.pth') and osp.isfile(path):
            _deferred_removals.setdefault(osp.dirname(path), []).append(path)
        else:
            super().remove(filepath)


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` mmengine's backend for local paths."""
    register_backend(
        'local', AtomicLocalBackend, force=True, prefixes='')
