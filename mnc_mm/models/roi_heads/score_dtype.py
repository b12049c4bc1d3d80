# Copyright (c) OpenMMLab. All rights reserved.
"""The dtype the heads turn logits into probabilities in."""
import torch
from torch import Tensor


def at_least_float32(logits: Tensor) -> Tensor:
    """``logits`` in float32 if they are float16 or bfloat16, else as they
    are (float32 and float64 untouched).

    Under autocast MNC's logits come out of bf16 (fp16) linear layers (the
    RoI ops run in float32 there, see
    :func:`mnc_mm.ops.checks.register_float32_autocast`; a model cast to
    bf16 gives bf16 logits in both heads), and torch's CPU autocast runs
    ``softmax`` and ``sigmoid`` in the input dtype. Scores with an 8-bit
    mantissa (bf16: steps of 2**-8 near 1) tie often, and mask voting
    keeps every detection scoring at least the ``max_per_img``-th score,
    ties included
    (:func:`~mnc_mm.models.post_processing.mask_voting.mask_voting`), so
    ties inflate the detections (bf16 scores made the untrained FCIS demo
    model keep 276 detections instead of 101 on a 256 x 384 image). The
    probabilities of the rounded logits are computed in float32 instead,
    at the cost of an (R, C) and an (R, P, P) cast.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits
