# Copyright (c) OpenMMLab. All rights reserved.
"""mnc_mm: MNC and FCIS instance segmentation for MMDetection 3.x.

``import mnc_mm`` registers every module of the library into mmdet's
registries (MODELS, TASK_UTILS, DATASETS, METRICS, ...), so configs only need
``custom_imports=dict(imports=['mnc_mm'])``.

On a machine with torch but without mmdet (e.g. a GPU box used only to build
and test the ops) the package still imports, and :mod:`mnc_mm.ops` works;
nothing is registered then.

Importing changes nothing in mmengine's checkpoint loading or file
backends: safe loading and atomic writes are scoped, see
:func:`mnc_mm.utils.checkpoint_io`.
"""
import importlib.util

from .version import __version__

if importlib.util.find_spec('mmdet') is not None:
    from .utils.version_check import check_versions
    check_versions()
    from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402

__all__ = ['__version__']
