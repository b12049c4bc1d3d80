# Copyright (c) OpenMMLab. All rights reserved.
"""The ``mnc_mm`` scope, known to mmengine as mmdet's is.

Our modules register into mmdet's registries. Each registry here is an
empty child of mmdet's, with scope ``mnc_mm``: building with
``default_scope='mnc_mm'`` (``DetInferencer(..., scope='mnc_mm')``, a base
config read as ``mnc_mm::fcis/...``) finds it, and it looks our modules and
mmdet's up through its parent. ``MODULE2PACKAGE`` tells mmengine's config
and inferencer which installed package holds the scope's ``.mim`` folder
(configs, tools, model-index.yml; see setup.py).
"""
import mmdet.registry as mmdet_registry
from mmdet.utils import register_all_modules
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry

MODULE2PACKAGE.setdefault('mnc_mm', 'mnc_mm')
# a child looks up its parent's modules without importing the parent's
# locations, so mmdet's modules must be registered already
register_all_modules(init_default_scope=False)


def _child_registries():
    return {
        # importing mnc_mm registers everything (else mmengine would look
        # for an mnc_mm.utils.register_all_modules)
        name: Registry(parent.name, parent=parent, scope='mnc_mm',
                       locations=['mnc_mm'])
        for name, parent in vars(mmdet_registry).items()
        if isinstance(parent, Registry) and parent.scope == 'mmdet'
    }


globals().update(_child_registries())
__all__ = sorted(name for name, value in globals().items()
                 if isinstance(value, Registry))
