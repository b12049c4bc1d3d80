# Copyright (c) OpenMMLab. All rights reserved.
"""--resume picks the newest complete checkpoint, whatever a kill left."""
import torch

from mnc_mm.utils.resume import newest_complete_checkpoint


def _save(path):
    torch.save({'state_dict': {'w': torch.zeros(8)}}, str(path))


def test_newest_complete_checkpoint(tmp_path):
    assert newest_complete_checkpoint(str(tmp_path / 'none')) is None
    assert newest_complete_checkpoint(str(tmp_path)) is None
    for step in (2, 10):
        _save(tmp_path / f'iter_{step}.pth')
    (tmp_path / 'last_checkpoint').write_text('')  # truncated by a kill
    assert newest_complete_checkpoint(str(tmp_path)) == \
        str(tmp_path / 'iter_10.pth')  # 10 > 2 as numbers, not strings

    torn = tmp_path / 'iter_11.pth'
    _save(torn)
    torn.write_bytes(torn.read_bytes()[:-100])
    assert newest_complete_checkpoint(str(tmp_path)) == \
        str(tmp_path / 'iter_10.pth')


def test_falls_back_to_last_checkpoint_outside_work_dir(tmp_path):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    _save(out_dir / 'epoch_3.pth')
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(out_dir / 'epoch_3.pth'))
    assert newest_complete_checkpoint(str(work)) == \
        str(out_dir / 'epoch_3.pth')
    (work / 'last_checkpoint').write_text(str(out_dir / 'epoch_4.pth'))
    assert newest_complete_checkpoint(str(work)) is None
