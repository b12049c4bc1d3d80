# Copyright (c) OpenMMLab. All rights reserved.
"""Runtime set-up shared by the tools."""
import os.path as osp


def load_tool_config(config: str, cfg_options=None, launcher: str = 'none',
                     work_dir=None):
    """The Config of ``tools/train.py`` and ``tools/test.py``.

    Reads ``config``, merges ``--cfg-options``, prepares the launcher (gloo
    without CUDA, see :func:`mnc_mm.utils.dist.setup_distributed`) and sets
    ``work_dir``: CLI > config > ``./work_dirs/<config stem>``.
    """
    from mmengine.config import Config

    from .dist import setup_distributed
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    setup_distributed(cfg, launcher)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def add_cfg_options_argument(parser) -> None:
    """mmdet's ``--cfg-options key=value ...`` flag, shared by the tools."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
