# Copyright (c) OpenMMLab. All rights reserved.
"""A checkpoint that misfits the config is an error, naming both sides."""
import pytest
from torch import nn

from mnc_mm.utils.checkpoint_fit import (CheckpointMismatchError,
                                         check_checkpoint_fits,
                                         dataset_classes)


def head(num_classes):
    return nn.Sequential(nn.Linear(8, 4), nn.Linear(4, num_classes + 1))


def test_head_shape_mismatch_names_both_shapes():
    checkpoint = dict(state_dict=head(4).state_dict(),
                      meta=dict(dataset_meta=dict(classes=('a', 'b', 'c',
                                                           'd'))))
    check_checkpoint_fits(head(4), checkpoint, ('a', 'b', 'c', 'd'))
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_fits(head(2), checkpoint, source='x.pth')
    message = str(info.value)
    assert message.startswith('x.pth does not fit the config')
    assert '1.weight: checkpoint (5, 4) vs config (3, 4)' in message
    assert '1.bias: checkpoint (5,) vs config (3,)' in message
    # a DDP-style prefix and a wrapped model are looked through
    wrapped = nn.Module()
    wrapped.module = head(4)
    prefixed = {f'module.{k}': v for k, v in head(2).state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match='checkpoint \\(3, 4\\)'):
        check_checkpoint_fits(wrapped, prefixed)


def test_classes_mismatch_names_both_lists():
    checkpoint = dict(state_dict=head(2).state_dict(),
                      meta=dict(dataset_meta=dict(CLASSES=('cat', 'dog'))))
    with pytest.raises(CheckpointMismatchError,
                       match=r"\('cat', 'dog'\) but the config evaluates "
                       r"\('dog', 'cat'\)"):
        check_checkpoint_fits(head(2), checkpoint, ('dog', 'cat'))
    check_checkpoint_fits(head(2), checkpoint, None)  # nothing to compare
    check_checkpoint_fits(head(2), dict(state_dict=head(2).state_dict()),
                          ('dog', 'cat'))  # no dataset_meta saved


def test_dataset_classes_from_metainfo_or_the_dataset_class():
    import mnc_mm  # noqa: F401  (registers CheckedCocoDataset)
    assert dataset_classes(dict(type='CocoDataset', metainfo=dict(
        classes=('a', )))) == ('a', )
    coco = dataset_classes(dict(type='RepeatDataset', dataset=dict(
        type='CheckedCocoDataset')))
    assert len(coco) == 80 and coco[0] == 'person'
    assert dataset_classes(None) is None
