# Copyright (c) OpenMMLab. All rights reserved.
"""Lazy access to the compiled extension ``mnc_mm._ext``.

Importing :mod:`mnc_mm.ops` never fails because the extension is missing;
the first call into an op does, with an error that says how to build it.
"""
import importlib
from types import ModuleType
from typing import Optional

_EXT: Optional[ModuleType] = None

BUILD_HINT = ('build it from the repository root with '
              '`pip install --no-build-isolation -e .` (or `make install`); '
              'torch must be installed first')


def load_ext() -> ModuleType:
    """Return ``mnc_mm._ext``, importing it on first use."""
    global _EXT
    if _EXT is None:
        try:
            _EXT = importlib.import_module('mnc_mm._ext')
        except ImportError as err:
            raise ImportError(
                f'mnc_mm._ext (the compiled ops) could not be imported '
                f'({err}); {BUILD_HINT}.') from err
    return _EXT


def get_op(name: str):
    """Return the extension function ``name`` with a clear error if absent."""
    ext = load_ext()
    try:
        return getattr(ext, name)
    except AttributeError:
        raise ImportError(
            f'mnc_mm._ext has no function {name!r}: the extension is older '
            f'than the Python sources; rebuild it: {BUILD_HINT}.') from None


def ext_available() -> bool:
    """Whether ``mnc_mm._ext`` can be imported."""
    try:
        load_ext()
    except ImportError:
        return False
    return True
