# Copyright (c) OpenMMLab. All rights reserved.
# mmdet's runtime defaults, plus the import that registers mnc_mm's modules.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mnc_mm'], allow_failed_imports=False)
