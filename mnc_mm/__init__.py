# Copyright (c) OpenMMLab. All rights reserved.
"""mnc_mm: MNC and FCIS instance segmentation for MMDetection 3.x.

``import mnc_mm`` registers every module of the library into mmdet's
registries (MODELS, TASK_UTILS, DATASETS, METRICS, ...), so configs only need
``custom_imports=dict(imports=['mnc_mm'])``, and makes ``mnc_mm`` a scope
mmengine knows (:mod:`mnc_mm.registry`).

On a machine with torch but without mmdet (e.g. a GPU box used only to build
and test the ops) the package still imports, and :mod:`mnc_mm.ops` works;
nothing is registered then.

It also allow-lists, through torch's ``add_safe_globals``, exactly the
mmengine and numpy types a training checkpoint holds, so mmdet's
``init_detector``/``DetInferencer`` load ``tools/train.py`` checkpoints with
``weights_only=True`` (see :mod:`mnc_mm.utils.checkpoint`), and loads
``http(s)://`` checkpoints with ``weights_only=True`` too (mmengine's own
URL loader unpickles anything). mmengine's other loaders and its file
backends stay as they are; our tools' error messages and atomic writes are
scoped, see :func:`mnc_mm.utils.checkpoint_io`.
"""
import importlib.util

from .version import __version__

if importlib.util.find_spec('mmdet') is not None:
    from .utils.version_check import check_versions
    check_versions()
    from . import datasets, engine, evaluation, models, registry, utils  # noqa
    from .utils.checkpoint import (allow_checkpoint_globals,
                                   register_safe_url_loader)
    allow_checkpoint_globals()
    register_safe_url_loader()

__all__ = ['__version__']
