# Copyright (c) OpenMMLab. All rights reserved.
"""Safe checkpoint loading and atomic local writes, in a scope.

``import mnc_mm`` leaves mmengine's local checkpoint loader and file
backends as they are, so any other model in the process (an mmdet Mask
R-CNN, say) saves and loads local files exactly as without mnc_mm; only
``http(s)://`` checkpoints are loaded safely for all
(:func:`~mnc_mm.utils.checkpoint.register_safe_url_loader`). Inside
``with checkpoint_io():`` mmengine loads local and http(s) checkpoints with
:func:`~mnc_mm.utils.checkpoint.safe_torch_load` (``weights_only=True`` plus
the allow-list of mmengine checkpoint contents) and writes local files
atomically (:class:`~mnc_mm.utils.fileio.AtomicLocalBackend`, which also
keeps an old checkpoint until the next one is written); on exit the
previous loaders and backends come back. Our tools (``tools/train.py``,
``tools/test.py``, ``tools/image_demo.py``, the benchmarks) run inside it.
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def checkpoint_io() -> Iterator[None]:
    """Scope of mnc_mm's safe checkpoint loading and atomic local writes.

    Re-entrant: a nested scope restores what the outer one had set.
    """
    from mmengine.fileio.backends import registry_utils
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import register_safe_checkpoint_loaders
    from .fileio import (forget_deferred_removals,
                         register_atomic_local_backend, run_deferred_removals)

    schemes = OrderedDict(CheckpointLoader._schemes)
    backends = dict(registry_utils.backends)
    prefixes = dict(registry_utils.prefix_to_backends)
    register_safe_checkpoint_loaders()
    register_atomic_local_backend()
    try:
        yield
        run_deferred_removals()  # a run that ended well: drop old checkpoints
    finally:
        forget_deferred_removals()  # after an error: keep them
        CheckpointLoader._schemes = schemes
        # other modules hold these dicts: restore them in place
        for table, saved in ((registry_utils.backends, backends),
                             (registry_utils.prefix_to_backends, prefixes)):
            table.clear()
            table.update(saved)
