# Copyright (c) OpenMMLab. All rights reserved.
"""Test reference: the FCIS channel operators (MXNet
``_contrib_ChannelOperator``, msracver/FCIS
``fcis/operator_cxx/channel_operator-inl.h`` and ``channel_operator.cu``) in
pure torch, for the tests and benchmarks that check the fused ops against
the official chain (the models never assemble all classes).

The input (R, G * cig, h, w) holds G groups of ``cig = channels_in_group``
consecutive channels; in FCIS G is the number of classes and each group is
the (outside, inside) pair of one class. Import it as
``test_ops.fcis_channel_ops`` (``tests/`` is on ``sys.path`` under pytest,
through ``tests/conftest.py``).
"""
import torch
from torch import Tensor

# The official kernels start their scans from -FLT_MAX in every dtype.
_NEG_FLT_MAX = -torch.finfo(torch.float32).max


def _grouped(input: Tensor, group: int) -> Tensor:
    """View (R, G * cig, h, w) as (R, G, cig, h, w)."""
    if not isinstance(input, Tensor) or input.dim() != 4:
        raise ValueError(f'input must be a 4-D tensor (R, C, h, w), got '
                         f'{getattr(input, "shape", type(input).__name__)}')
    if isinstance(group, bool) or not isinstance(group, int) or group <= 0:
        raise ValueError(f'group must be a positive int, got {group!r}')
    if input.size(1) % group:
        raise ValueError(f'input channels ({input.size(1)}) must be a '
                         f'multiple of group ({group})')
    r, c, h, w = input.shape
    return input.view(r, group, c // group, h, w)


def group_max(input: Tensor, group: int) -> Tensor:
    """Group_Max: the maximum over the channels of each group.

    Args:
        input (Tensor): (R, G * cig, h, w).
        group (int): G.

    Returns:
        Tensor: (R, G, h, w). As the official kernel, channels are scanned in
        order with a strict ``>`` from -FLT_MAX: ties go to the lowest channel
        (the FCIS "outside" map), NaN never wins, and a pixel where nothing
        exceeds -FLT_MAX gives -FLT_MAX. The gradient goes to the winning
        channel only (none where nothing won; the official kernel then
        writes to channel index -1).
    """
    values = _grouped(input, group)
    best = values.new_full(values[:, :, 0].shape, _NEG_FLT_MAX)
    for i in range(values.size(2)):
        best = torch.where(values[:, :, i] > best, values[:, :, i], best)
    return best


def _pick(values: Tensor, index: Tensor) -> Tensor:
    """Group ``index[n]`` of RoI n, 0 (and no gradient) where the index is
    outside [0, G). values: (R, G, cig, h, w); index: (R,) int64."""
    num_groups = values.size(1)
    valid = (index >= 0) & (index < num_groups)
    rows = torch.arange(values.size(0), device=values.device)
    picked = values[rows, index.clamp(0, num_groups - 1)]
    return torch.where(valid.view(-1, 1, 1, 1), picked,
                       picked.new_zeros(()))


def label_pick(input: Tensor, group: int, labels: Tensor) -> Tensor:
    """Group_Pick with pick_type Label_Pick (training).

    Args:
        input (Tensor): (R, G * cig, h, w).
        group (int): G.
        labels (Tensor): R labels, (R,) or (R, 1, 1, 1); float labels are
            truncated towards zero as the official ``int g = pick_idx[n]``.

    Returns:
        Tensor: (R, cig, h, w), group ``labels[n]`` of RoI n, zeros for a
        label outside [0, G). Gradient to the picked group only, none to
        ``labels`` (the official kernel writes 0 to a stray index for an
        out-of-range label; here nothing is written).
    """
    values = _grouped(input, group)
    if labels.numel() != values.size(0):
        raise ValueError(f'labels must hold one value per RoI '
                         f'({values.size(0)}), got shape '
                         f'{tuple(labels.shape)}')
    return _pick(values, labels.detach().reshape(-1).to(torch.int64))


def score_pick(input: Tensor, group: int, scores: Tensor) -> Tensor:
    """Group_Pick with pick_type Score_Pick (testing).

    Args:
        input (Tensor): (R, G * cig, h, w).
        group (int): G, the number of classes including background.
        scores (Tensor): (R, G) or (R, G, 1, 1) class scores.

    Returns:
        Tensor: (R, cig, h, w), the group of the best **foreground** class:
        argmax over classes 1..G-1 (background excluded), strict ``>`` from
        -FLT_MAX so ties go to the lowest class and NaN never wins; zeros
        where no class exceeds -FLT_MAX. The official backward is not
        implemented; here the gradient reaches the picked group of
        ``input`` (none to ``scores``).
    """
    values = _grouped(input, group)
    if scores.numel() != values.size(0) * group:
        raise ValueError(f'scores must be ({values.size(0)}, {group}) class '
                         f'scores, got shape {tuple(scores.shape)}')
    return _pick(values,
                 _best_foreground(scores.reshape(values.size(0), group)))


def _best_foreground(scores: Tensor) -> Tensor:
    """Score_Pick's choice: the best **foreground** class of each row.

    Args:
        scores (Tensor): (R, G) class scores, class 0 the background.

    Returns:
        Tensor: (R,) int64 in [1, G), argmax over classes 1..G-1 with a
        strict ``>`` from -FLT_MAX (ties to the lowest class, NaN never
        wins), or -1 where no class exceeds -FLT_MAX.
    """
    fg = scores.detach()[:, 1:]
    fg = torch.where(fg > _NEG_FLT_MAX, fg, fg.new_full((), float('-inf')))
    if fg.size(1) == 0:
        return torch.full((scores.size(0), ), -1, device=scores.device)
    # torch.argmax returns the first maximum, as the strict `>` scan.
    index = fg.argmax(dim=1)
    best = fg.gather(1, index[:, None])[:, 0]
    return torch.where(best > float('-inf'), index + 1, -1)


def group_softmax(input: Tensor, group: int) -> Tensor:
    """Group_Softmax: softmax over the channels of each group.

    Args:
        input (Tensor): (R, G * cig, h, w).
        group (int): G.

    Returns:
        Tensor: (R, G * cig, h, w), an independent cig-way softmax per group
        and pixel (a 2-way inside/outside softmax per class in FCIS). The
        official op is test-only; here autograd gives the softmax gradient.
    """
    return _grouped(input, group).softmax(dim=2).view_as(input)
