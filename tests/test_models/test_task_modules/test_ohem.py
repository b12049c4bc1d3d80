# Copyright (c) OpenMMLab. All rights reserved.
"""ohem_select: FCIS's per-image top-k of the per-RoI losses."""
import pytest
import torch

from mnc_mm.models.task_modules import ohem_select


def test_keeps_the_top_k_of_each_image():
    # weighted per-RoI losses as the official (1 cls, 10 mask, 1 bbox)
    cls = torch.tensor([.1, 3., .2, .3, 1., 0., .5, 2.])
    mask = 10 * torch.tensor([0., 0., .1, 0., 0., .3, 0., 0.])
    bbox = torch.tensor([0., 0., 0., 0., 0., 0., 2., 0.])
    image = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    # image 0 ranks [.1 3 1.2 .3], image 1 [1 3 2.5 2]
    assert ohem_select(cls + mask + bbox, image, 2, 5).all()
    keep = ohem_select(cls + mask + bbox, image, 2, 2)
    assert keep.tolist() == [False, True, True, False,
                             False, True, True, False]
    # the demo's 3x class weight: image 1 ranks [3 3 3.5 6]
    keep = ohem_select(3 * cls + mask + bbox, image, 2, 2)
    assert keep.tolist() == [False, True, True, False,
                             False, False, True, True]


def test_an_image_without_rois_and_shape_errors():
    keep = ohem_select(torch.tensor([1., 2.]), torch.tensor([1, 1]), 2, 1)
    assert keep.tolist() == [False, True]
    with pytest.raises(ValueError, match=r'\(R,\).*\(2,\) and \(3,\)'):
        ohem_select(torch.zeros(2), torch.zeros(3, dtype=torch.long), 1, 1)
