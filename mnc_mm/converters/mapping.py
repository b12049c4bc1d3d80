# Copyright (c) OpenMMLab. All rights reserved.
"""Rename official arrays to our state-dict keys, strictly."""
from typing import Callable, Dict, Iterable, Mapping, Optional

import numpy as np
import torch

Transform = Callable[[np.ndarray], np.ndarray]
LISTED = 20  # names shown per problem before "... and N more"


def name_list(names: Iterable[str]) -> str:
    """``'a', 'b' ... and 3 more`` (sorted) for error messages."""
    names = sorted(names)
    shown = ', '.join(repr(n) for n in names[:LISTED])
    more = len(names) - LISTED
    return shown + (f' ... and {more} more' if more > 0 else '')


def rename_arrays(arrays: Mapping[str, Optional[np.ndarray]],
                  name_map: Mapping[str, str],
                  transforms: Optional[Mapping[str, Transform]] = None,
                  ignored: Iterable[str] = (),
                  source: str = '<weights>') -> Dict[str, torch.Tensor]:
    """``{name_map[k]: transform(arrays[k])}`` as float32 tensors.

    Args:
        arrays: official arrays by official name.
        name_map: official name -> our state-dict key; every entry must be
            present in ``arrays``.
        transforms: official name -> layout change (e.g. the RPN order).
        ignored: official names that may be present and are not converted.
        source: the file name used in error messages.

    Raises:
        KeyError: official arrays are missing, or the file holds arrays the
            map does not know (a file of another model); both are listed.
        ValueError: an array is "none" or not floating point.
    """
    transforms = transforms or {}
    missing = set(name_map) - set(arrays)
    unexpected = set(arrays) - set(name_map) - set(ignored)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f'{len(missing)} missing: {name_list(missing)}')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected: '
                            f'{name_list(unexpected)}')
        raise KeyError(f'{source}: expected the {len(name_map)} arrays of '
                       f'the official model, found {len(arrays)} arrays with '
                       f'{"; ".join(problems)} (a file of another model?)')
    state_dict = {}
    for name, key in name_map.items():
        array = arrays[name]
        if array is None or array.dtype.kind != 'f':
            raise ValueError(f'{source}: expected {name!r} to be a float '
                             f'array, found '
                             f'{"none" if array is None else array.dtype}')
        if name in transforms:
            array = transforms[name](array)
        state_dict[key] = torch.from_numpy(
            np.ascontiguousarray(array, dtype=np.float32))
    return state_dict
