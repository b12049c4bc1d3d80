# Copyright (c) OpenMMLab. All rights reserved.
"""mmdet's tools/analysis_tools/browse_dataset.py with mnc_mm imported.

    browse_dataset.py CONFIG [--output-dir DIR] [--not-show]
        [--show-interval 2] [--cfg-options ...]
"""
from mnc_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/browse_dataset.py')
