# Copyright (c) OpenMMLab. All rights reserved.
"""``import mnc_mm`` registers our modules into mmdet's registries."""
import inspect
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mnc_mm
from mnc_mm.datasets.synthetic_shapes import SHAPES_CLASSES

TINY = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs',
                'demo', 'mask-rcnn_r18-tiny_shapes.py')


def registered_by_mnc_mm():
    """(registry name, module name) of every entry whose class is ours."""
    from mmdet import registry
    found = []
    for attr, reg in vars(registry).items():
        if not attr.isupper() or not hasattr(reg, 'module_dict'):
            continue
        for name, obj in reg.module_dict.items():
            if inspect.getmodule(obj).__name__.startswith('mnc_mm.'):
                found.append((attr, name))
    return found


def test_import_registers_dataset_and_metric():
    found = registered_by_mnc_mm()
    assert ('DATASETS', 'CheckedCocoDataset') in found
    assert ('METRICS', 'VOCMaskAPMetric') in found


def test_names_do_not_shadow_mmdet():
    """Our names are unique: every one resolves to our class in scope mmdet."""
    from mmdet import registry
    for attr, name in registered_by_mnc_mm():
        reg = getattr(registry, attr)
        assert reg.get(name).__module__.startswith('mnc_mm.'), (attr, name)


def test_config_builds_through_custom_imports(tmp_path):
    cfg = Config.fromfile(TINY)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['mnc_mm']
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    assert model.roi_head.bbox_head.num_classes == len(SHAPES_CLASSES)


def test_typo_in_a_module_type_names_it():
    cfg = Config.fromfile(TINY)
    cfg.model.roi_head.mask_head.type = 'FCNMaskHaed'
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    with pytest.raises(KeyError, match='FCNMaskHaed is not in the mmdet::'):
        MODELS.build(cfg.model)


def test_version_is_exposed():
    assert mnc_mm.__version__.count('.') == 2
