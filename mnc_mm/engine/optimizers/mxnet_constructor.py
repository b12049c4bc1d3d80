# Copyright (c) OpenMMLab. All rights reserved.
"""MXNet's SGD update, as the official FCIS trains, on torch's SGD under DDP.

MXNet (``python/mxnet/optimizer.py`` ``SGD``) updates each parameter with
``lr * lr_mult * (rescale_grad * grad + wd * wd_mult * w)``, and the
official FCIS (msracver/FCIS ``fcis/train_end2end.py``) sets
``rescale_grad=1`` with a ``device`` kvstore, so ``grad`` is the *sum* of
the per-image gradients of all GPUs. Three differences from torch's SGD
follow:

1. DDP averages the gradients of the N images of an iteration. The same
   update is ``lr_t = lr * N`` and ``weight_decay_t = wd / N``: ``lr_t *
   weight_decay_t`` is the official decay step ``lr * wd`` for any N. This
   constructor derives the decay from the (possibly ``--auto-scale-lr``
   scaled) learning rate it receives, so lr and decay stay consistent on
   any number of GPUs.
2. ``wd_mult`` is 0 for every parameter whose name does not end in
   ``_weight`` or ``_gamma`` (``Optimizer.set_wd_mult``): biases and BN
   betas are not decayed. Here: no decay for any parameter named ``bias``.
3. ``lr_mult`` (e.g. conv_new_1's 3) also scales the decay term; torch's
   ``lr * weight_decay`` does so already with ``decay_mult=1``.
"""
import copy
from typing import List

from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MXNetOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build torch's SGD for the official MXNet update on summed gradients.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            constructor='MXNetOptimWrapperConstructor',
            # torch lr for base_batch_size (8) images, averaged by DDP
            optimizer=dict(type='SGD', lr=5e-4 * 8, momentum=0.9),
            # the official lr and wd, applied to the summed gradient
            summed_grad=dict(lr=5e-4, weight_decay=5e-4),
            paramwise_cfg=dict(custom_keys=dict(neck=dict(lr_mult=3.0))))

    The optimizer's ``weight_decay`` is ``summed_grad.lr *
    summed_grad.weight_decay / optimizer.lr``, then 0 for every ``bias``
    (``paramwise_cfg`` multipliers apply to the weights as usual).

    Args:
        optim_wrapper_cfg (dict): the ``optim_wrapper`` config, with
            ``summed_grad=dict(lr, weight_decay)`` and no
            ``optimizer.weight_decay``.
        paramwise_cfg (dict, optional): as mmengine's.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)
        summed = optim_wrapper_cfg.pop('summed_grad', None)
        if not isinstance(summed, dict) or \
                set(summed) != {'lr', 'weight_decay'}:
            raise ValueError(
                'MXNetOptimWrapperConstructor: expected optim_wrapper.'
                'summed_grad=dict(lr=..., weight_decay=...) (the official '
                f'update on the summed gradient), found {summed!r}')
        optimizer = optim_wrapper_cfg['optimizer']
        if 'weight_decay' in optimizer:
            raise ValueError(
                'MXNetOptimWrapperConstructor derives optimizer.'
                'weight_decay from summed_grad and optimizer.lr: expected '
                'no optimizer.weight_decay, found '
                f'{optimizer["weight_decay"]}')
        optimizer['weight_decay'] = (
            summed['lr'] * summed['weight_decay'] / optimizer['lr'])
        # MXNet's wd_mult 0 for biases; non-empty, so that mmengine builds
        # param groups (add_params) even without other paramwise options
        paramwise_cfg = dict(paramwise_cfg or {})
        paramwise_cfg.setdefault('bias_decay_mult', 0.)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', **kwargs) -> None:
        """mmengine's param groups, then no decay for any ``bias``."""
        first = len(params)
        super().add_params(params, module, prefix, **kwargs)
        if prefix:  # the recursion into a child: the root fixes all
            return
        names = {param: name for name, param in module.named_parameters()}
        for group in params[first:]:
            (param, ) = group['params']
            if names[param].rsplit('.', 1)[-1] == 'bias':
                group['weight_decay'] = 0.
