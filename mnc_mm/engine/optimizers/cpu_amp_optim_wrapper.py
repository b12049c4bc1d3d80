# Copyright (c) OpenMMLab. All rights reserved.
"""bfloat16 mixed precision on the CPU, for ``tools/train.py --amp``.

mmengine 0.10.7's ``AmpOptimWrapper`` cannot run on a CPU-only machine: its
``__init__`` asserts that CUDA, NPU, MLU or MUSA is available, and its loss
scaler is ``torch.cuda.amp.GradScaler``. bfloat16 keeps float32's exponent
range, so it needs no loss scaling (torch's AMP recipe for CPU autocast):
this wrapper only adds ``torch.autocast('cpu', dtype=torch.bfloat16)`` to
mmengine's ``optim_context``, around each training forward.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU bfloat16 autocast.

    Parameters, gradients and the optimizer state stay float32; autocast
    runs the convolutions and matmuls in bfloat16. Backward and the step run
    outside autocast, as with ``AmpOptimWrapper``.

    Args:
        dtype (str): the autocast dtype; only ``'bfloat16'`` (float16 on
            the CPU would need a loss scaler, which this wrapper has not).
        **kwargs: arguments of ``OptimWrapper`` (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f'CPUAmpOptimWrapper: dtype must be '
                             f"'bfloat16', got {dtype!r}")
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """mmengine's context (no gradient sync while accumulating) plus
        CPU bfloat16 autocast."""
        device = next(model.parameters()).device
        if device.type != 'cpu':
            # CPU autocast leaves the ops of another device in float32.
            raise RuntimeError(f'CPUAmpOptimWrapper: the model must be on '
                               f'the CPU, got {device}; use mmengine\'s '
                               f'AmpOptimWrapper there')
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype, cache_enabled=False):
            yield
