# Copyright (c) OpenMMLab. All rights reserved.
"""MXNetOptimWrapperConstructor: torch's SGD under DDP makes the official
FCIS update (MXNet SGD on the gradient summed over the images) on any
number of GPUs, with MXNet's decay rules (weights and gammas only, lr_mult
scaling the decay term)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mnc_mm  # noqa: F401  registers the constructor
from mmdet.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FCIS_PAPER_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'fcis', 'fcis_*.py')))
OFFICIAL = dict(lr=5e-4, weight_decay=5e-4, momentum=0.9)
LR_MULT = dict(neck=3.0)  # conv_new_1, TRAIN.CONVNEW3


def mxnet_mults(name):
    """(lr_mult, wd_mult) of a parameter as MXNet's Optimizer sets them:
    wd_mult 0 unless the MXNet name ends in _weight/_gamma (our 'weight'
    of convs and norms), lr_mult from the symbol attribute."""
    lr_mult = LR_MULT.get(name.split('.')[0], 1.0)
    return lr_mult, float(name.endswith('.weight'))


class Tiny(nn.Module):
    """Parameter names as in the FCIS model: backbone conv + BN, the neck
    (conv_new_1) and a head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3))
        self.neck = nn.Conv2d(3, 4, 1)
        self.rpn_head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.rpn_head(self.neck(self.backbone(x)))


def built_cfg(path, world_size, images_per_gpu=1):
    """The config's optim_wrapper after --auto-scale-lr on world_size GPUs
    (mmengine Runner.scale_lr: lr x real batch / base batch)."""
    cfg = Config.fromfile(path)
    wrapper = cfg.optim_wrapper.to_dict()
    ratio = world_size * images_per_gpu / cfg.auto_scale_lr.base_batch_size
    wrapper['optimizer']['lr'] *= ratio
    return wrapper


@pytest.mark.parametrize('world_size', [1, 2, 8])
@pytest.mark.parametrize('path', FCIS_PAPER_CONFIGS, ids=osp.basename)
def test_ddp_update_is_the_summed_mxnet_update(path, world_size):
    """Two momentum-SGD steps of torch on DDP's averaged gradient equal
    MXNet's on the summed gradient, parameter by parameter."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = Tiny()
    # an MXNet-rule reference: mom = m * mom - lr * lr_mult * (g + wd *
    # wd_mult * w); w += mom
    reference = {n: p.detach().double().clone()
                 for n, p in model.named_parameters()}
    momentum = {n: torch.zeros_like(p) for n, p in reference.items()}
    optim = build_optim_wrapper(model, built_cfg(path, world_size))
    for _ in range(2):
        images = torch.randn(world_size, 2, 3, 3)
        per_image = []
        for image in images:  # the per-GPU gradient of one image each
            model.zero_grad()
            model(image[None]).square().sum().backward()
            per_image.append({n: p.grad.double().clone()
                              for n, p in model.named_parameters()})
        for name, param in model.named_parameters():  # DDP's all-reduce
            param.grad = sum(g[name] for g in per_image).float() / world_size
        optim.step()
        for name, w in reference.items():
            lr_mult, wd_mult = mxnet_mults(name)
            summed = sum(g[name] for g in per_image)
            momentum[name] = OFFICIAL['momentum'] * momentum[name] - \
                OFFICIAL['lr'] * lr_mult * (
                    summed + OFFICIAL['weight_decay'] * wd_mult * w)
            reference[name] = w + momentum[name]
    for name, param in model.named_parameters():
        torch.testing.assert_close(
            param.detach().double(), reference[name], rtol=1e-5, atol=1e-7,
            msg=name)


@pytest.mark.parametrize('path', FCIS_PAPER_CONFIGS, ids=osp.basename)
def test_fcis_param_groups(path):
    """On the config's own model: conv_new_1 3x lr with the base decay,
    no decay on any bias or BN beta, BN gammas decayed."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(path)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lr, wd = cfg.optim_wrapper.optimizer.lr, OFFICIAL['weight_decay']
    names = {p: n for n, p in model.named_parameters()}
    seen = set()
    for group in optim.optimizer.param_groups:
        (param, ) = group['params']
        name = names[param]
        if not param.requires_grad:
            continue
        lr_mult, wd_mult = mxnet_mults(name)
        assert group['lr'] == pytest.approx(lr * lr_mult), name
        # the decay step lr x wd of MXNet: lr * lr_mult * wd * wd_mult
        assert group['lr'] * group['weight_decay'] == pytest.approx(
            OFFICIAL['lr'] * lr_mult * wd * wd_mult), name
        seen.add(name)
    assert {'neck.convs.0.conv.weight', 'neck.convs.0.conv.bias'} <= seen
    norms = [n for n, m in model.named_modules()
             if isinstance(m, nn.BatchNorm2d) and m.weight.requires_grad]
    assert norms and {f'{norms[0]}.weight', f'{norms[0]}.bias'} <= seen


def test_bad_configs_fail_clearly():
    init_default_scope('mmdet')
    model = Tiny()
    base = dict(type='OptimWrapper', constructor='MXNetOptimWrapperConstructor',
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    with pytest.raises(ValueError, match='expected optim_wrapper.summed_grad'):
        build_optim_wrapper(model, base)
    with pytest.raises(ValueError, match='expected no optimizer.weight_decay'
                       ', found 0.0001'):
        build_optim_wrapper(model, dict(
            base, summed_grad=dict(lr=0.1, weight_decay=1e-4),
            optimizer=dict(base['optimizer'], weight_decay=1e-4)))
