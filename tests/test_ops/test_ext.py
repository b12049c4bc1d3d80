# Copyright (c) OpenMMLab. All rights reserved.
"""The compiled extension loads, and its absence is reported clearly."""
import importlib

import pytest

import mnc_mm.ops as ops
from mnc_mm.ops import ext_loader


def test_extension_loads_and_exposes_functions():
    ext = ops.load_ext()
    assert ext.__name__ == 'mnc_mm._ext'
    compiler = ops.get_op('get_compiler_version')()
    assert compiler.startswith(('GCC', 'clang'))
    cuda = ops.get_op('get_compiling_cuda_version')()
    assert cuda == 'not available' or cuda[0].isdigit()
    assert ops.ext_available()


def test_missing_extension_says_how_to_build(monkeypatch):
    real_import = importlib.import_module

    def no_ext(name, *args, **kwargs):
        if name == 'mnc_mm._ext':
            raise ImportError('No module named mnc_mm._ext')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(ext_loader, '_EXT', None)
    monkeypatch.setattr(ext_loader.importlib, 'import_module', no_ext)
    with pytest.raises(ImportError, match='pip install --no-build-isolation'):
        ops.load_ext()
    assert not ops.ext_available()


def test_unknown_function_is_a_clear_error():
    with pytest.raises(ImportError, match="no function 'not_an_op'.*rebuild"):
        ops.get_op('not_an_op')


def test_ops_need_torch_alone():
    """mnc_mm.ops imports nothing of mmcv/mmdet/mmengine (the GPU machine
    that builds and tests the ops has torch only)."""
    import ast
    import pathlib
    for path in pathlib.Path(ops.__file__).parent.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split('.')[0] not in ('mmcv', 'mmdet',
                                                  'mmengine'), (path, name)
