# Copyright (c) OpenMMLab. All rights reserved.
"""The ``meta`` every converted checkpoint carries."""
import os.path as osp

from mnc_mm.utils.checkpoint import sha256_of


def conversion_meta(in_file: str, source: dict, converter: str,
                    config: str, report: dict) -> dict:
    """Provenance of a converted checkpoint.

    Args:
        in_file (str): the official file that was read.
        source (dict): what the reader found (format, variant, counts).
        converter (str): the tool's path in the repository.
        config (str): the config the weights were checked against.
        report (dict): the converter's choices (e.g. box weights used).

    Returns:
        dict: ``converted_from`` (file name, sha256 and ``source``),
        ``converter``, ``config``, ``mnc_mm_version`` and ``report``'s keys.
    """
    from mnc_mm import __version__
    return dict(
        converted_from=dict(
            file=osp.basename(in_file), sha256=sha256_of(in_file), **source),
        converter=converter,
        config=osp.basename(config),
        mnc_mm_version=__version__,
        **report)
