# Copyright (c) OpenMMLab. All rights reserved.
"""Checks of the runtime environment used by the tools."""
import torch


def check_amp_available() -> None:
    """Stop ``--amp`` early and clearly where mixed precision cannot run.

    mmengine's AmpOptimWrapper asserts that CUDA (or NPU/MLU) is available;
    on a CPU-only machine that is an AssertionError deep in the Runner.
    """
    if not torch.cuda.is_available():
        raise SystemExit(
            '--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper runs fp16 '
            'on CUDA only), but torch.cuda.is_available() is False on this '
            'machine; train without --amp.')
