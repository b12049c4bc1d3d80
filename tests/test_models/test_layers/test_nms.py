# Copyright (c) OpenMMLab. All rights reserved.
"""``mnc_mm::masked_nms``: mmcv's NMS of the boxes a mask marks valid, as a
torch op with a data-dependent output size."""
import pytest
import torch
from mmcv.ops import nms

from mnc_mm.models.layers.nms import masked_nms


def _boxes(num, seed):
    """num boxes [x1, y1, x2, y2] in a 64 px square, many overlapping,
    distinct random scores, a random half marked valid."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * 40
    wh = 4 + torch.rand(num, 2, generator=gen) * 20
    scores = torch.rand(num, generator=gen)
    valid = torch.rand(num, generator=gen) < 0.5
    return torch.cat([xy, xy + wh], 1), scores, valid


@pytest.mark.parametrize('offset', [0, 1])
def test_equals_mmcv_nms_of_the_valid_boxes(offset):
    boxes, scores, valid = _boxes(60, seed=offset)
    inds = valid.nonzero().squeeze(1)
    _, keep = nms(boxes[inds], scores[inds], 0.5, offset=offset)
    kept = masked_nms(boxes, scores, valid, 0.5, offset)
    assert 1 < len(kept) < len(inds)  # NMS suppressed some valid boxes
    assert kept.tolist() == inds[keep].tolist()
    assert valid[kept].all()
    assert len(masked_nms(boxes, scores, torch.zeros_like(valid), 0.5,
                          offset)) == 0


def test_opcheck():
    boxes, scores, valid = _boxes(30, seed=2)
    torch.library.opcheck(masked_nms, (boxes, scores, valid, 0.7, 1))


def test_valid_must_be_a_bool_mask_of_the_scores():
    boxes, scores, valid = _boxes(5, seed=3)
    with pytest.raises(ValueError, match=r'valid must be a bool tensor of '
                       r'the shape of scores \(5,\), got torch.int64'):
        masked_nms(boxes, scores, valid.long(), 0.7, 1)
