# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The LKA/LSKA ablations (``ablation=...`` of the gating and backbones).

Each ablated gating is checked against the formula of the VAN paper's
ablation written out here with ``torch.nn.functional`` on the same weights
(kernel sizes, paddings and dilations spelled out by hand, not read from the
modules), its parameters against the full module's (exactly the removed
convs missing), one training step of a classifier built from our ImageNet
config with ``--cfg-options model.backbone.ablation=...``, how checkpoints of
the full and the ablated models load into each other, and the deploy path.
"""

import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from projects.van_lska.models import VAN_LKA, VAN_LSKA
from projects.van_lska.models.attention import ABLATIONS, LKA, LSKA
from projects.van_lska.models.kernels import lka_kernels, lska_kernels
from projects.van_lska.testing.randomize import randomize_

ALL = [
    'no_dw',
    'no_dw_d',
    'no_attention',
    'add_attention',
    'no_pointwise',
    'sigmoid',
]
#: The convs each ablation removes, written out (not read from the code).
REMOVED = {
    'LKA': {
        'no_dw': {'DW_conv'},
        'no_dw_d': {'DW_D_conv'},
        'no_pointwise': {'conv1'},
    },
    'LSKA': {
        'no_dw': {'DW_conv_h', 'DW_conv_v'},
        'no_dw_d': {'DW_D_conv_h', 'DW_D_conv_v'},
        'no_pointwise': {'conv1'},
    },
}
FULL_CONVS = {
    'LKA': {'DW_conv', 'DW_D_conv', 'conv1'},
    'LSKA': {'DW_conv_h', 'DW_conv_v', 'DW_D_conv_h', 'DW_D_conv_v', 'conv1'},
}
C = 6


def test_the_options_are_the_documented_ones():
    assert sorted(ABLATIONS) == sorted(ALL)


def _gating(kind, ablation=None):
    if kind == 'LKA':
        return LKA(C, lka_kernels(21), ablation)
    return LSKA(C, lska_kernels(23), ablation)


def _dw(x, conv, pad, dilation=1):
    return F.conv2d(
        x, conv.weight, conv.bias, padding=pad, dilation=dilation, groups=C
    )


def local_part(kind, g, x):
    """LKA-21: 5x5, pad 2. LSKA-23: 1x5 then 5x1, pad 2 along the kernel."""
    if kind == 'LKA':
        return _dw(x, g.DW_conv, 2)
    return _dw(_dw(x, g.DW_conv_h, (0, 2)), g.DW_conv_v, (2, 0))


def dilated_part(kind, g, x):
    """LKA-21: 7x7 dilation 3, pad 9. LSKA-23: 1x7 then 7x1, dilation 3,
    pad 9 along the kernel."""
    if kind == 'LKA':
        return _dw(x, g.DW_D_conv, 9, 3)
    x = _dw(x, g.DW_D_conv_h, (0, 9), 3)
    return _dw(x, g.DW_D_conv_v, (9, 0), 3)


def by_hand(kind, ablation, g, u):
    """The VAN paper's formula of each ablation (see ABLATIONS)."""
    a = u
    if ablation != 'no_dw':
        a = local_part(kind, g, a)
    if ablation != 'no_dw_d':
        a = dilated_part(kind, g, a)
    if ablation != 'no_pointwise':
        a = F.conv2d(a, g.conv1.weight, g.conv1.bias)
    if ablation == 'sigmoid':
        a = torch.sigmoid(a)
    if ablation == 'no_attention':
        return a
    if ablation == 'add_attention':
        return u + a
    return u * a


@pytest.mark.parametrize('kind', ['LKA', 'LSKA'])
@pytest.mark.parametrize('ablation', [None, *ALL])
def test_gating_is_the_formula_on_the_same_weights(kind, ablation):
    torch.manual_seed(0)
    full = randomize_(_gating(kind), 0, everything=True)
    ablated = _gating(kind, ablation)
    names = {n for n, _ in ablated.named_children()}
    assert names == FULL_CONVS[kind] - REMOVED[kind].get(ablation, set())
    removed = FULL_CONVS[kind] - names
    for name in removed:
        assert getattr(ablated, name) is None
    own = ablated.state_dict()
    ablated.load_state_dict(
        {k: v for k, v in full.state_dict().items() if k in own}
    )
    u = torch.randn(2, C, 19, 23)
    with torch.no_grad():
        out = ablated(u)
        torch.testing.assert_close(
            out, by_hand(kind, ablation, ablated, u), atol=1e-6, rtol=1e-6
        )
        if ablation is None:  # the default path: exactly the full module
            torch.testing.assert_close(
                out, by_hand(kind, None, full, u), atol=0, rtol=0
            )
        else:  # and each ablation changes the output
            assert (out - full(u)).abs().max() > 1e-3


@pytest.mark.parametrize('kind', ['LKA', 'LSKA'])
def test_trivial_gating_refuses_the_local_and_dilated_ablations(kind):
    kernels = (lka_kernels if kind == 'LKA' else lska_kernels)(7, True)
    cls = LKA if kind == 'LKA' else LSKA
    for ablation in ('no_dw', 'no_dw_d'):
        with pytest.raises(ValueError, match='single depthwise kernel'):
            cls(C, kernels, ablation)
    for ablation in ('no_attention', 'add_attention', 'sigmoid'):
        assert cls(C, kernels, ablation).ablation == ablation


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_unknown_ablation_names_the_allowed_ones(cls):
    with pytest.raises(ValueError, match="'no_dw_d'.*'sigmoid'.*got 'no_1x1'"):
        cls(arch=TINY, ablation='no_1x1')


TINY = dict(
    embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1], mlp_ratios=[2] * 4
)


def _backbone(cls, ablation=None, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = cls(arch=TINY, ablation=ablation, out_indices=(3,), **kwargs)
    return randomize_(model, seed, everything=True).eval()


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
@pytest.mark.parametrize('ablation', ALL)
def test_backbone_parameters_miss_exactly_the_removed_convs(cls, ablation):
    kind = cls.attention_type
    full = dict(_backbone(cls).named_parameters())
    ablated = dict(_backbone(cls, ablation).named_parameters())
    pattern = re.compile(r'\.spatial_gating_unit\.(\w+)\.(weight|bias)$')
    expected = {
        k
        for k in full
        if not (
            (m := pattern.search(k))
            and m.group(1) in REMOVED[kind].get(ablation, set())
        )
    }
    assert set(ablated) == expected
    for k in ablated:  # the rest keeps its name and shape
        assert ablated[k].shape == full[k].shape
    n_blocks = sum(TINY['depths'])
    assert len(full) - len(ablated) == (
        2 * n_blocks * len(REMOVED[kind].get(ablation, ()))
    )


def _classifier_cfg(repo, name, ablation):
    """Our ImageNet config, shrunk, with the override a user types."""
    cfg = Config.fromfile(str(repo / 'configs' / name))
    cfg.merge_from_dict(
        {
            'model.backbone.ablation': ablation,
            'model.head.in_channels': TINY['embed_dims'][-1],
            'model.head.num_classes': 5,
            'model.data_preprocessor': dict(
                type='ClsDataPreprocessor',
                num_classes=5,
                mean=[127.5] * 3,
                std=[127.5] * 3,
                to_rgb=True,
            ),
        }
    )
    cfg.model.backbone.arch = TINY  # a dict replacing the arch name
    return cfg


@pytest.mark.parametrize(
    'config', ['van_lka_b0_in1k.py', 'van_lska_b0_in1k.py']
)
@pytest.mark.parametrize('ablation', ALL)
def test_classifier_trains_a_step(repo, one_thread, config, ablation):
    """One optimiser step of the ImageNet recipe's classifier (Mixup/CutMix
    and label smoothing included) with the ablated backbone: finite loss,
    every parameter of the gating gets a gradient and moves."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    cfg = _classifier_cfg(repo, config, ablation)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.backbone.ablation == ablation
    model.train()
    optim = build_optim_wrapper(
        model, dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
    )
    gen = torch.Generator().manual_seed(0)
    data = dict(
        inputs=[
            torch.randint(
                0, 256, (3, 64, 64), dtype=torch.uint8, generator=gen
            )
            for _ in range(4)
        ],
        data_samples=[DataSample().set_gt_label(i % 5) for i in range(4)],
    )
    gating = {
        k: p.detach().clone()
        for k, p in model.named_parameters()
        if 'spatial_gating_unit' in k
    }
    assert gating
    grads = {}
    for k, p in model.named_parameters():
        if k in gating:
            p.register_hook(lambda g, k=k: grads.__setitem__(k, g.abs().sum()))
    losses = model.train_step(data, optim)
    assert torch.isfinite(losses['loss'])
    assert sorted(grads) == sorted(gating)
    for k, p in model.named_parameters():
        if k in gating:
            assert grads[k] > 0, k
            assert not torch.equal(p.detach(), gating[k]), k


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
@pytest.mark.parametrize('ablation', ['no_dw', 'no_dw_d', 'no_pointwise'])
def test_removed_conv_checkpoints_refuse_both_ways(tmp_path, cls, ablation):
    """A removed conv never loads silently (not even through mmengine's
    non-strict ``load_checkpoint`` that ``init_cfg=Pretrained`` uses)."""
    full, ablated = _backbone(cls), _backbone(cls, ablation)
    full_path, ablated_path = tmp_path / 'full.pth', tmp_path / 'abl.pth'
    torch.save({'state_dict': full.state_dict()}, full_path)
    torch.save({'state_dict': ablated.state_dict()}, ablated_path)
    before = {k: v.clone() for k, v in ablated.state_dict().items()}
    with pytest.raises(ValueError, match='remove convs|gating into'):
        load_checkpoint(_backbone(cls, ablation), str(full_path), strict=False)
    with pytest.raises(ValueError, match='remove convs|gating into'):
        load_checkpoint(_backbone(cls), str(ablated_path), strict=False)
    # an ablated model's own checkpoint loads (strictly) and gives its output
    fresh = _backbone(cls, ablation, seed=1)
    load_checkpoint(fresh, str(ablated_path), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), ablated(x), atol=0, rtol=0)
    for k, v in ablated.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
@pytest.mark.parametrize(
    'ablation', ['no_attention', 'add_attention', 'sigmoid']
)
def test_full_checkpoints_load_into_parameter_keeping_ablations(
    tmp_path, cls, ablation
):
    full = _backbone(cls)
    path = tmp_path / 'full.pth'
    torch.save({'state_dict': full.state_dict()}, path)
    ablated = _backbone(cls, ablation, seed=1)
    load_checkpoint(ablated, str(path), strict=True)
    for k, v in full.state_dict().items():
        assert torch.equal(ablated.state_dict()[k], v)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ablated(x)[0] - full(x)[0]).abs().max() > 1e-4


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_no_dw_d_is_the_trivial_gating_with_the_local_kernel(tmp_path, cls):
    """Without the dilated conv, LKA-21 is LKA-trivial with its 5x5 kernel
    (LSKA-23: the 1x5 + 5x1 pair); checkpoints of one load into the other."""
    ablated = _backbone(cls, 'no_dw_d')
    path = tmp_path / 'no_dw_d.pth'
    torch.save({'state_dict': ablated.state_dict()}, path)
    trivial = _backbone(cls, None, seed=1, kernel_size=5, trivial=True)
    load_checkpoint(trivial, str(path), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(trivial(x), ablated(x), atol=0, rtol=0)


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
@pytest.mark.parametrize('ablation', ALL)
def test_deploy_folds_or_refuses(cls, ablation, one_thread):
    model = _backbone(cls, ablation)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    if ablation in ('no_dw', 'no_dw_d'):
        model.switch_to_deploy()
        assert model.deployed
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, atol=2e-5, rtol=0)
        return
    with pytest.raises(ValueError, match=f'ablation={ablation!r} cannot'):
        model.switch_to_deploy()
    assert not model.deployed  # nothing was changed
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=0, rtol=0)
