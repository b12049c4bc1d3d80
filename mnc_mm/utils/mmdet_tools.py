# Copyright (c) OpenMMLab. All rights reserved.
"""Run one of mmdet's own tools (installed under ``mmdet/.mim/tools``)
with mnc_mm imported, so our tools/ need not copy them."""
import os.path as osp
import runpy
import sys


def mmdet_tool_path(relative: str) -> str:
    """Path of ``tools/<relative>`` in the installed mmdet.

    Raises:
        SystemExit: mmdet was installed without its ``.mim`` tools.
    """
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', relative)
    if not osp.isfile(path):
        raise SystemExit(f'expected mmdet\'s tools/{relative} at {path}, '
                         f'found nothing: install mmdet from its wheel or '
                         f'sdist (`pip install mmdet`), which ships its tools')
    return path


def run_mmdet_tool(relative: str) -> None:
    """Run mmdet's ``tools/<relative>`` as ``__main__`` with this process's
    arguments; ``import mnc_mm`` (registration, checkpoint allow-list)
    happens first."""
    import mnc_mm  # noqa: F401
    path = mmdet_tool_path(relative)
    sys.argv[0] = path
    runpy.run_path(path, run_name='__main__')
