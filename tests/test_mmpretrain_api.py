# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""``VAN_LKA``/``VAN_LSKA`` speak mmpretrain's ``VAN`` API.

``TestMMPretrainVANSuite`` is mmpretrain 1.2's own
``tests/test_models/test_backbones/test_van.py`` with the class name changed
(and our ``ValueError`` where mmpretrain asserts, with messages that contain
mmpretrain's). The other tests check that a backbone dict copied from an
mmpretrain VAN config means the same network here: same outputs as
mmpretrain's ``VAN`` on the same weights.
"""

import math
import os.path as osp
from copy import deepcopy
from itertools import chain

import mmpretrain
import pytest
import torch
from mmengine.config import Config
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from mmpretrain.models.backbones import VAN
from torch import nn

from projects.van_lska import VAN_LKA, VAN_LSKA


def check_norm_state(modules, train_state):
    """Check if norm layer is in correct train state."""
    for mod in modules:
        if isinstance(mod, _BatchNorm):
            if mod.training != train_state:
                return False
    return True


@pytest.fixture(params=[VAN_LKA, VAN_LSKA], ids=['VAN_LKA', 'VAN_LSKA'])
def backbone_cls(request):
    return request.param


class TestMMPretrainVANSuite:
    """mmpretrain's ``TestVAN``; ``AssertionError`` -> ``ValueError``."""

    cfg = dict(arch='t', drop_path_rate=0.1)

    def test_arch(self, backbone_cls):
        with pytest.raises(ValueError, match='not in default archs'):
            cfg = deepcopy(self.cfg)
            cfg['arch'] = 'unknown'
            backbone_cls(**cfg)

        with pytest.raises(ValueError, match='Custom arch needs'):
            cfg = deepcopy(self.cfg)
            cfg['arch'] = {
                'embed_dims': [32, 64, 160, 256],
                'ffn_ratios': [8, 8, 4, 4],
            }
            backbone_cls(**cfg)

        cfg = deepcopy(self.cfg)
        embed_dims = [32, 64, 160, 256]
        depths = [3, 3, 5, 2]
        ffn_ratios = [8, 8, 4, 4]
        cfg['arch'] = {
            'embed_dims': embed_dims,
            'depths': depths,
            'ffn_ratios': ffn_ratios,
        }
        model = backbone_cls(**cfg)
        for i in range(len(depths)):
            stage = getattr(model, f'blocks{i + 1}')
            assert stage[-1].out_channels == embed_dims[i]
            assert len(stage) == depths[i]

    def test_init_weights(self, backbone_cls):
        cfg = deepcopy(self.cfg)
        cfg['init_cfg'] = [
            dict(
                type='Kaiming',
                layer='Conv2d',
                mode='fan_in',
                nonlinearity='linear',
            )
        ]
        model = backbone_cls(**cfg)
        ori_weight = model.patch_embed1.projection.weight.clone().detach()
        model.init_weights()
        initialized_weight = model.patch_embed1.projection.weight
        assert not torch.allclose(ori_weight, initialized_weight)

    def test_forward(self, backbone_cls):
        imgs = torch.randn(3, 3, 224, 224)

        model = backbone_cls(**deepcopy(self.cfg))
        outs = model(imgs)
        assert isinstance(outs, tuple)
        assert len(outs) == 1
        assert outs[-1].shape == (3, 256, 7, 7)

        cfg = deepcopy(self.cfg)
        cfg['patch_sizes'] = [7, 5, 5, 5]
        model = backbone_cls(**cfg)
        outs = model(torch.randn(3, 3, 224, 224))
        assert len(outs) == 1
        assert outs[-1].shape == (3, 256, 3, 3)

        cfg = deepcopy(self.cfg)
        cfg['out_indices'] = (0, 1, 2, 3)
        model = backbone_cls(**cfg)
        outs = model(imgs)
        assert len(outs) == 4
        for emb_size, stride, out in zip(
            [32, 64, 160, 256], [1, 2, 4, 8], outs
        ):
            assert out.shape == (3, emb_size, 56 // stride, 56 // stride)

        model = backbone_cls(**deepcopy(self.cfg))
        for shape in [(224, 224), (256, 256), (256, 309)]:
            outs = model(torch.randn(3, 3, *shape))
            assert len(outs) == 1
            expect = (math.ceil(shape[0] / 32), math.ceil(shape[1] / 32))
            assert outs[-1].shape == (3, 256, *expect)

    def test_structure(self, backbone_cls):
        cfg = deepcopy(self.cfg)
        cfg['drop_path_rate'] = 0.2
        model = backbone_cls(**cfg)
        depths = model.arch_settings['depths']
        stages = [model.blocks1, model.blocks2, model.blocks3, model.blocks4]
        blocks = chain(*[stage for stage in stages])
        dpr = [
            x.item()
            for x in torch.linspace(0, cfg['drop_path_rate'], sum(depths))
        ]
        for block, expect_prob in zip(blocks, dpr):
            if expect_prob == 0:
                assert isinstance(block.drop_path, nn.Identity)
            else:
                assert block.drop_path.drop_prob == pytest.approx(expect_prob)

        cfg = deepcopy(self.cfg)
        cfg['norm_eval'] = True
        cfg['norm_cfg'] = dict(type='BN')
        model = backbone_cls(**cfg)
        model.init_weights()
        model.train()
        assert check_norm_state(model.modules(), False)

        cfg = deepcopy(self.cfg)
        frozen_stages = 0
        cfg['frozen_stages'] = frozen_stages
        cfg['out_indices'] = (0, 1, 2, 3)
        model = backbone_cls(**cfg)
        model.init_weights()
        model.train()
        assert not model.patch_embed1.training
        for i in range(4):
            frozen = i <= frozen_stages
            for name in ('patch_embed', 'blocks', 'norm'):
                for param in getattr(model, f'{name}{i + 1}').parameters():
                    assert param.requires_grad is not frozen


# --------------------------------------------- same meaning as mmpretrain
def _same_outputs(ref: nn.Module, ours: nn.Module, shape=(2, 3, 64, 96)):
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval(), ours.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Perturb every parameter and BatchNorm statistic, so that a wrong
    mapping of any tensor changes the outputs.

    Not :func:`~projects.van_lska.testing.randomize.randomize_`: its
    ``everything=True`` replaces each tensor by ``N(0, std^2)`` instead of
    perturbing the initialisation; that shrinks the outputs and, on
    VAN-tiny at 64x96, the smallest output change made by one swapped or
    transposed tensor from 5e-3 (here) to 4e-5, next to the 1e-5
    tolerance (a larger ``std`` saturates or overflows). Its default
    leaves the conv biases at zero, so swapped biases would go unseen."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    return model


@pytest.mark.parametrize('arch', ['tiny', 't', 'small', 's', 'b', 'l'])
def test_mmpretrain_config_backbone_means_the_same(arch):
    """mmpretrain's own VAN config, only ``type`` changed -> same net."""
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(mmpretrain.__file__),
            '.mim/configs/_base_/models/van/van_tiny.py',
        )
    )
    backbone = dict(cfg.model.backbone, arch=arch, drop_path_rate=0.0)
    kwargs = {k: v for k, v in backbone.items() if k != 'type'}
    ref = _randomize(VAN(**kwargs), seed=0)
    _same_outputs(ref, VAN_LKA(**kwargs))


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(out_indices=(0, 1, 2, 3)),
        dict(out_indices=(1, 3), patch_sizes=[7, 5, 3, 3]),
        dict(block_cfgs=dict(layer_scale_init_value=0.0)),
        dict(norm_cfg=dict(type='LN', eps=1e-6), out_indices=(2, 3)),
        dict(
            arch=dict(embed_dims=[16, 24], depths=[1, 2], ffn_ratios=[2, 4]),
            out_indices=(0, 1),
        ),
    ],
    ids=['all-stages', 'patch-sizes', 'no-layer-scale', 'ln-eps', 'custom'],
)
def test_mmpretrain_arguments_mean_the_same(kwargs):
    kwargs = dict(dict(arch='tiny'), **kwargs)
    ref = _randomize(VAN(**deepcopy(kwargs)), seed=1)
    ours = VAN_LKA(**deepcopy(kwargs))
    _same_outputs(ref, ours)


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_no_layer_scale(cls):
    """``layer_scale_init_value <= 0`` removes the layer scales (both
    names), and the fast inference path folds such a block exactly."""
    for kwargs in (
        dict(layer_scale_init_value=0),
        dict(layer_scale_init=-1.0),
        dict(block_cfgs=dict(layer_scale_init_value=0)),
    ):
        model = cls(arch='b0', **kwargs)
        assert all('layer_scale' not in k for k in model.state_dict())
    # Two shallow stages: without layer scales deep random nets overflow.
    arch = dict(embed_dims=[16, 32], depths=[1, 1], mlp_ratios=[2, 2])
    model = cls(arch=arch, layer_scale_init_value=0, out_indices=(0, 1))
    model = _randomize(model, 3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        got = model.switch_to_deploy()(x)
    for e, g in zip(expected, got):
        assert torch.isfinite(e).all()
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    'kwargs, pattern',
    [
        (dict(layer_scale_init=0.1, layer_scale_init_value=0.1), 'only one'),
        (dict(block_cfgs=dict(act_cfg=dict(type='ReLU'))), 'GELU'),
        (dict(block_cfgs=dict(drop_rate=0.1)), r'allowed: norm_cfg'),
        (dict(norm_cfg=dict(type='GN', num_groups=2)), r'allowed: BN'),
        (dict(stage_norm_cfg=dict(type='BN')), 'not a LayerNorm'),
        (
            dict(norm_cfg=dict(type='LN'), stage_norm_cfg=dict(type='LN')),
            'pass only one',
        ),
        (dict(patch_sizes=[7, 3, 3]), 'patch_sizes must be 4'),
        (
            dict(arch=dict(embed_dims=[32], depths=[-1], mlp_ratios=[4])),
            'depths must be positive',
        ),
        (
            dict(
                arch=dict(
                    embed_dims=[32],
                    depths=[1],
                    mlp_ratios=[4],
                    ffn_ratios=[4],
                )
            ),
            'Custom arch needs',
        ),
    ],
)
def test_bad_mmpretrain_arguments_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        VAN_LSKA(**kwargs)
