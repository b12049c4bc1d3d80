# Copyright (c) OpenMMLab. All rights reserved.
"""Fail early, with the fix, when the OpenMMLab stack does not match."""
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

# (package, lowest allowed, first disallowed); mirrors mmdet 3.3.0's guard.
COMPATIBLE = (
    ('mmcv', '2.0.0rc4', '2.2.0'),
    ('mmengine', '0.7.1', '1.0.0'),
    ('mmdet', '3.0.0', '4.0.0'),
)
INSTALL_HINT = ('run `make install` (ranges: requirements/mminstall.txt and '
                'requirements/runtime.txt)')


def check_versions() -> None:
    """Raise ImportError naming the package whose version is out of range."""
    for name, low, high in COMPATIBLE:
        try:
            found = version(name)
        except PackageNotFoundError:
            raise ImportError(f'mnc_mm needs {name}>={low},<{high} but it is '
                              f'not installed; {INSTALL_HINT}') from None
        if not Version(low) <= Version(found) < Version(high):
            raise ImportError(f'mnc_mm needs {name}>={low},<{high} but found '
                              f'{name}=={found}; {INSTALL_HINT}')
