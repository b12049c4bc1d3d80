# Copyright (c) OpenMMLab. All rights reserved.
"""Distributed runs on machines without a GPU (gloo backend).

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its Runner wraps
the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA.
:func:`setup_distributed` initialises the process group with gloo itself
when CUDA is absent (the Runner then skips its own ``init_dist``) and makes
the DDP wrapper CPU-friendly through the config.
"""
import os
import subprocess
from typing import Dict

import torch
import torch.distributed as torch_dist

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def _env_from_slurm() -> Dict[str, str]:
    """RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR from SLURM variables.

    mmengine's ``_init_dist_slurm`` parses the same variables but then calls
    ``torch.cuda.set_device``, which fails without a GPU; hence this copy.
    """
    node_list = os.environ['SLURM_NODELIST']
    master = subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1')
    return dict(
        RANK=os.environ['SLURM_PROCID'],
        WORLD_SIZE=os.environ['SLURM_NTASKS'],
        LOCAL_RANK=os.environ['SLURM_LOCALID'],
        MASTER_ADDR=os.environ.get('MASTER_ADDR', master),
        MASTER_PORT=os.environ.get('MASTER_PORT', '29500'))


def _env_from_mpi() -> Dict[str, str]:
    """RANK/WORLD_SIZE/LOCAL_RANK from Open MPI variables (mmengine's
    ``_init_dist_mpi`` calls ``torch.cuda.set_device`` on them)."""
    return dict(
        RANK=os.environ['OMPI_COMM_WORLD_RANK'],
        WORLD_SIZE=os.environ['OMPI_COMM_WORLD_SIZE'],
        LOCAL_RANK=os.environ['OMPI_COMM_WORLD_LOCAL_RANK'],
        MASTER_ADDR=os.environ.get('MASTER_ADDR', '127.0.0.1'),
        MASTER_PORT=os.environ.get('MASTER_PORT', '29500'))


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (an mmengine Config) for a ``launcher`` run.

    With CUDA, nothing changes: mmengine's Runner initialises NCCL as usual.
    Without CUDA and with a launcher other than ``none``, the process group
    is initialised here with gloo, ``env_cfg.dist_cfg.backend`` is set to
    ``gloo`` and the DDP wrapper gets ``device_ids=None``.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, '
                         f'found {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    if launcher == 'slurm':
        os.environ.update(_env_from_slurm())
    elif launcher == 'mpi':
        os.environ.update(_env_from_mpi())
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'launcher {launcher!r} needs the environment variables '
            f'{missing}; start the script with tools/dist_train.sh '
            f'(torchrun) or set them yourself')
    os.environ.setdefault('LOCAL_RANK', os.environ['RANK'])
    torch_dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']))
