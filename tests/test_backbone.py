# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The backbones against mmpretrain's ``VAN``, the papers' parameter counts,
the three registries and argument checking."""

import pytest
import torch
import torch.nn as nn
from mmpretrain.models.backbones import VAN

from projects.van_lska import VAN_LKA, VAN_LSKA
from projects.van_lska.testing.randomize import randomize_

# Facts table: parameters with a 1000-class head, in millions (LKA).
PAPER_PARAMS_M = {
    'b0': 4.11,
    'b1': 13.86,
    'b2': 26.58,
    'b3': 44.77,
    'b4': 60.28,
    'b5': 89.97,
    'b6': 199.8,
}
MMPRETRAIN_ARCH = {'b0': 'tiny', 'b1': 'small', 'b2': 'base', 'b3': 'large'}


def count_with_head(model, num_classes: int = 1000) -> int:
    c4 = model.embed_dims[-1]
    return (
        sum(p.numel() for p in model.parameters())
        + c4 * num_classes
        + (num_classes)
    )


@pytest.mark.parametrize('arch', ['b0', 'b1', 'b2', 'b3'])
def test_lka_equals_mmpretrain_van(arch, tmp_path):
    """mmpretrain weights through our loader -> the same four outputs."""
    ref = VAN(arch=MMPRETRAIN_ARCH[arch], out_indices=(0, 1, 2, 3))
    randomize_(ref, seed=int(arch[1]), everything=True)
    ckpt = tmp_path / 'mmpretrain.pth'
    # An mmpretrain classifier checkpoint: backbone.* plus head.fc.*.
    state = {'backbone.' + k: v for k, v in ref.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, ref.embed_dims[-1])
    state['head.fc.bias'] = torch.zeros(1000)
    torch.save({'meta': {}, 'state_dict': state}, ckpt)
    ours = VAN_LKA(
        arch=arch,
        out_indices=(0, 1, 2, 3),
        stage_norm_cfg=dict(type='LN', eps=1e-5),  # mmpretrain's LN eps
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)),
    )
    ours.init_weights()
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert len(got) == len(expected) == 4
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    # Same number of parameters as the reference, exactly.
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in ref.parameters()
    )


@pytest.mark.parametrize('arch', list(PAPER_PARAMS_M))
def test_param_counts_match_paper(arch):
    model = VAN_LKA(arch=arch)
    got = count_with_head(model) / 1e6
    tol = 0.05 if arch == 'b6' else 0.01  # the table gives b6 to 0.1 M
    assert abs(got - PAPER_PARAMS_M[arch]) <= tol, (arch, got)


@pytest.mark.parametrize('arch', ['b0', 'b2'])
def test_lska_param_count_is_lka_minus_separable_saving(arch):
    """LSKA-23 replaces 5x5 + 7x7 kernels by 2x(1x5) + 2x(1x7)."""
    lka, lska = VAN_LKA(arch=arch), VAN_LSKA(arch=arch)
    saving = sum(
        c * ((25 + 1) + (49 + 1) - 2 * (5 + 1) - 2 * (7 + 1)) * d
        for c, d in zip(lka.embed_dims, lka.depths)
    )
    n_lka = sum(p.numel() for p in lka.parameters())
    n_lska = sum(p.numel() for p in lska.parameters())
    assert n_lka - n_lska == saving


def test_output_shapes_and_strides():
    model = VAN_LSKA(arch='b1', out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.rand(1, 3, 128, 160))
    assert [tuple(o.shape) for o in outs] == [
        (1, 64, 32, 40),
        (1, 128, 16, 20),
        (1, 320, 8, 10),
        (1, 512, 4, 5),
    ]
    # One LayerNorm per stage, BN inside the blocks.
    assert all(
        isinstance(getattr(model, f'norm{i}'), nn.LayerNorm)
        for i in range(1, 5)
    )


def test_arch_aliases_and_custom_dict():
    assert VAN_LSKA(arch='small').depths == VAN_LSKA(arch='b1').depths
    custom = dict(embed_dims=[8, 16], depths=[1, 1], mlp_ratios=[2, 2])
    model = VAN_LKA(arch=custom, out_indices=(0, 1)).eval()
    assert [o.shape[1] for o in model(torch.rand(1, 3, 32, 32))] == [8, 16]


@pytest.mark.parametrize('codebase', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('name', ['VAN_LKA', 'VAN_LSKA'])
def test_build_from_each_registry(codebase, name):
    import importlib

    registry = importlib.import_module(f'{codebase}.registry').MODELS
    model = registry.build(dict(type=name, arch='b0', out_indices=(3,)))
    assert type(model).__name__ == name
    assert model(torch.rand(1, 3, 64, 64))[0].shape == (1, 256, 2, 2)
    # mmpretrain's own VAN is untouched.
    if codebase == 'mmpretrain':
        assert registry.get('VAN') is VAN


def test_classifier_equals_official_head():
    """ImageClassifier: stage-4 LN (eps 1e-6), mean over tokens, Linear."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    # An earlier test in this process may have left mmdet as the default
    # scope (its registry has no ImageClassifier).
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        clf = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(
                    type='VAN_LSKA',
                    arch='b0',
                    out_indices=(3,),
                    stage_norm_cfg=dict(type='LN', eps=1e-6),
                ),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead', num_classes=10, in_channels=256
                ),
            )
        ).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits = clf(x, mode='tensor')
        feat = clf.backbone(x)[-1]
        assert clf.backbone.norm4.eps == 1e-6
        tokens = feat.flatten(2).mean(-1)
        expected = clf.head.fc(tokens)
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize(
    'kwargs, pattern',
    [
        (
            dict(arch='b7'),
            r'Arch b7 is not in default archs: allowed b0, .*b6',
        ),
        (dict(arch=dict(depths=[1])), r'exactly the keys embed_dims'),
        (dict(out_indices=(4,)), r'out_indices must be .* 0\.\.3'),
        (dict(out_indices=()), r'out_indices must be'),
        (dict(out_indices=(1, 1)), r'out_indices must be distinct'),
        (dict(frozen_stages=4), r'frozen_stages must be an int in -1\.\.3'),
        (dict(frozen_stages=-2), r'frozen_stages must be an int in -1\.\.3'),
    ],
)
@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_bad_arguments_raise_value_error(cls, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        cls(**kwargs)


@pytest.mark.parametrize('size', [23, 9, 20, 3, 'x'])
def test_bad_lka_kernel_size(size):
    with pytest.raises(ValueError, match=r'7 \(local 3x3.*14.*21.*28'):
        VAN_LKA(kernel_size=size)


@pytest.mark.parametrize('size', [21, 9, 25, 5, 13])
def test_bad_lska_kernel_size(size):
    with pytest.raises(ValueError, match=r'7, 11, 15, 19.*23, 29, 35, 41'):
        VAN_LSKA(kernel_size=size)


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_bad_trivial_kernel_size(cls):
    with pytest.raises(ValueError, match=r'odd int >= 3'):
        cls(kernel_size=8, trivial=True)


def test_frozen_stages_and_norm_eval():
    model = VAN_LSKA(arch='b0', frozen_stages=1, norm_eval=True)
    model.train()
    for i in (1, 2):
        for m in (
            getattr(model, f'patch_embed{i}'),
            getattr(model, f'blocks{i}'),
            getattr(model, f'norm{i}'),
        ):
            assert not m.training
            assert all(not p.requires_grad for p in m.parameters())
    assert all(p.requires_grad for p in model.blocks3.parameters())
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert model.blocks3[0].attn.training  # non-BN modules still train


def test_with_cp_gives_same_gradients():
    torch.manual_seed(0)
    plain = VAN_LSKA(arch='b0', drop_path_rate=0.0)
    cp = VAN_LSKA(arch='b0', with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    for model in (plain, cp):
        model.train()
        sum(o.sum() for o in model(x)).backward()
    for (name, p), q in zip(plain.named_parameters(), cp.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_drop_path_is_linear_over_blocks():
    model = VAN_LKA(arch='b0', drop_path_rate=0.3)
    rates = [
        getattr(b.drop_path, 'drop_prob', 0.0)
        for i in range(1, 5)
        for b in getattr(model, f'blocks{i}')
    ]
    expected = torch.linspace(0, 0.3, 13).tolist()
    assert rates == pytest.approx(expected)


def test_syncbn_norm_cfg():
    model = VAN_LSKA(arch='b0', norm_cfg=dict(type='SyncBN'))
    assert isinstance(model.blocks1[0].norm1, nn.SyncBatchNorm)
