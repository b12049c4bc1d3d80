# Copyright (c) OpenMMLab. All rights reserved.
"""``--resume`` that survives a kill during a checkpoint write.

mmengine resumes from the path in ``work_dir/last_checkpoint``, which its
CheckpointHook writes with a plain ``open('w')``: a kill can leave it empty
(then ``--resume`` fails with "checkpoint file not found: ") or naming a
file that was never completed. :func:`newest_complete_checkpoint` picks the
newest ``epoch_N.pth``/``iter_N.pth`` that is a complete zip archive.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Optional

CHECKPOINT_NAME = re.compile(r'^(?:epoch|iter)_(\d+)\.pth$')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch zip checkpoint (a torn write lacks
    the zip's central directory at the end of the file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def newest_complete_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should use, or None if there is none.

    The complete ``epoch_N.pth``/``iter_N.pth`` in ``work_dir`` with the
    largest N; else the file ``last_checkpoint`` names, if complete (a
    CheckpointHook ``out_dir`` outside ``work_dir``).
    """
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    steps = sorted(((int(m.group(1)), name) for name in names
                    if (m := CHECKPOINT_NAME.match(name))), reverse=True)
    for _, name in steps:
        path = osp.join(work_dir, name)
        if is_complete_checkpoint(path):
            return path
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
    return None
