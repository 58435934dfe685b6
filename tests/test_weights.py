# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Every public checkpoint format loads to identical outputs; checkpoints of
another gating type, kernel size or arch are refused; converter CLI; safe
loading of OpenMMLab training checkpoints."""

import argparse
import logging
import os
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub, MMLogger

from projects.van_lska import VAN_LKA, VAN_LSKA
from projects.van_lska.apis.convert import convert_file

# The official names (facts §5), written out here independently of the
# converter under test: our segment -> official segment.
OFFICIAL_GATING = {
    'DW_conv': 'conv0',
    'DW_D_conv': 'conv_spatial',
    'DW_conv_h': 'conv0h',
    'DW_conv_v': 'conv0v',
    'DW_D_conv_h': 'conv_spatial_h',
    'DW_D_conv_v': 'conv_spatial_v',
}


def official_name(key: str) -> str:
    parts = key.split('.')
    if parts[0].startswith('blocks'):
        parts[0] = 'block' + parts[0][len('blocks') :]
    if parts[0].startswith('patch_embed') and parts[1] == 'projection':
        parts[1] = 'proj'
    if 'spatial_gating_unit' in parts:
        i = parts.index('spatial_gating_unit') + 1
        parts[i] = OFFICIAL_GATING.get(parts[i], parts[i])
    if parts[2:4] == ['mlp', 'dwconv']:
        parts[3] = 'dwconv.dwconv'
    return '.'.join(parts)


def head(prefix):
    return {
        prefix + 'weight': torch.randn(10, 256),
        prefix + 'bias': torch.randn(10),
    }


def write_formats(model, tmp_path):
    """One file per public format, named as that format names things."""
    sd = model.state_dict()
    official = {official_name(k): v for k, v in sd.items()}
    formats = {
        'ours_plain': sd,
        'mmpretrain_classifier': {
            'meta': {'mmpretrain_version': '1.2.0'},
            'state_dict': {
                **{'backbone.' + k: v for k, v in sd.items()},
                **head('head.fc.'),
            },
        },
        # Official VAN / LSKA authors' classification (.pth.tar of timm).
        'official_classification': {
            'epoch': 300,
            'arch': 'van_b0',
            'state_dict': {**official, **head('head.')},
            'args': argparse.Namespace(model='van_b0', lr=1e-3),
        },
        # mmseg projects/van backbone files and full segmentors.
        'official_segmentor': {
            'meta': {},
            'state_dict': {
                **{'backbone.' + k: v for k, v in official.items()},
                'decode_head.conv_seg.weight': torch.randn(150, 128, 1, 1),
            },
        },
        # LSKA authors' det/seg layout == ours; inside a full detector.
        'openmmlab_detector': {
            'meta': {'epoch': 12},
            'state_dict': {
                **{'backbone.' + k: v for k, v in sd.items()},
                'neck.lateral_convs.0.conv.weight': torch.randn(256, 32, 1, 1),
            },
        },
        'ddp_wrapped': {
            'state_dict': {'module.' + k: v for k, v in sd.items()}
        },
    }
    paths = {}
    for name, obj in formats.items():
        paths[name] = tmp_path / f'{name}.pth'
        torch.save(obj, paths[name])
    return paths


def load_pretrained(cls, path, **kwargs):
    model = cls(
        arch='b0',
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **kwargs,
    )
    model.init_weights()
    return model.eval()


FORMATS = [
    'ours_plain',
    'mmpretrain_classifier',
    'official_classification',
    'official_segmentor',
    'openmmlab_detector',
    'ddp_wrapped',
]


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_every_format_gives_identical_outputs(
    cls, fmt, tmp_path, random_backbone
):
    source = random_backbone(cls)
    path = write_formats(source, tmp_path)[fmt]
    loaded = load_pretrained(cls, path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(source(x), loaded(x)):
            torch.testing.assert_close(b, a, atol=0, rtol=0)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f'{k} was modified'


@pytest.mark.parametrize('fmt', ['ours_plain', 'official_classification'])
def test_other_attention_type_is_refused(fmt, tmp_path, random_backbone):
    path = write_formats(random_backbone(VAN_LKA), tmp_path)[fmt]
    target = VAN_LSKA(
        arch='b0', init_cfg=dict(type='Pretrained', checkpoint=str(path))
    )
    before = snapshot(target)
    with pytest.raises(
        ValueError,
        match=r'LKA with kernel_size=21 gating into VAN_LSKA with '
        r'LSKA with kernel_size=23',
    ):
        target.init_weights()
    assert_untouched(target, before)

    path = write_formats(random_backbone(VAN_LSKA), tmp_path)[fmt]
    with pytest.raises(
        ValueError,
        match=r'LSKA with kernel_size=23 gating '
        r'into VAN_LKA',
    ):
        load_pretrained(VAN_LKA, path)


def test_other_kernel_size_and_variant_are_refused(tmp_path, random_backbone):
    path = write_formats(random_backbone(VAN_LSKA), tmp_path)['ours_plain']
    with pytest.raises(
        ValueError,
        match=r'LSKA with kernel_size=23 gating '
        r'into VAN_LSKA with LSKA with kernel_size=35',
    ):
        load_pretrained(VAN_LSKA, path, kernel_size=35)
    with pytest.raises(ValueError, match=r'LSKA-trivial with kernel_size=23'):
        load_pretrained(VAN_LSKA, path, trivial=True)
    trivial = write_formats(
        random_backbone(VAN_LKA, kernel_size=21, trivial=True), tmp_path / '..'
    )['ours_plain']
    with pytest.raises(
        ValueError,
        match=r'LKA-trivial with kernel_size=21 '
        r'gating into VAN_LKA with LKA with kernel_size=21',
    ):
        load_pretrained(VAN_LKA, trivial)


def test_other_arch_is_refused(tmp_path):
    src = VAN_LKA(arch='b1')
    torch.save(src.state_dict(), tmp_path / 'b1.pth')
    target = VAN_LKA(
        arch='b0',
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'b1.pth')),
    )
    before = snapshot(target)
    with pytest.raises(ValueError, match=r'checkpoint of another arch'):
        target.init_weights()
    assert_untouched(target, before)


def test_refused_inside_a_detector(tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import load_checkpoint

    register_all_modules()

    def retinanet(backbone_type):
        return MODELS.build(
            dict(
                type='RetinaNet',
                backbone=dict(type=backbone_type, arch='b0'),
                neck=dict(
                    type='FPN',
                    in_channels=[32, 64, 160, 256],
                    out_channels=16,
                    start_level=1,
                    num_outs=3,
                ),
                bbox_head=dict(
                    type='RetinaHead',
                    num_classes=2,
                    in_channels=16,
                    feat_channels=16,
                    anchor_generator=dict(
                        type='AnchorGenerator',
                        octave_base_scale=4,
                        scales_per_octave=1,
                        ratios=[1.0],
                        strides=[8, 16, 32],
                    ),
                    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                    loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                    loss_bbox=dict(type='L1Loss'),
                ),
            )
        )

    lka = retinanet('VAN_LKA')
    torch.save({'state_dict': lka.state_dict()}, tmp_path / 'det.pth')
    # The same type round-trips.
    load_checkpoint(
        retinanet('VAN_LKA'), str(tmp_path / 'det.pth'), strict=True
    )
    with pytest.raises(ValueError, match=r'into VAN_LSKA'):
        load_checkpoint(retinanet('VAN_LSKA'), str(tmp_path / 'det.pth'))


def test_missing_and_unexpected_keys_are_reported(tmp_path, random_backbone):
    sd = random_backbone(VAN_LSKA).state_dict()
    sd.pop('blocks2.0.mlp.fc1.weight')
    sd['blocks9.0.extra.weight'] = torch.zeros(1)
    torch.save(sd, tmp_path / 'partial.pth')
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        load_pretrained(VAN_LSKA, tmp_path / 'partial.pth')
    finally:
        logger.removeHandler(handler)
    out = '\n'.join(records)
    assert re.search(r'missing keys.*blocks2\.0\.mlp\.fc1\.weight', out, re.S)
    assert re.search(r'unexpected key.*blocks9\.0\.extra\.weight', out, re.S)


def test_missing_local_checkpoint_explains_what_to_do(tmp_path):
    model = VAN_LSKA(
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'none.pth'))
    )
    with pytest.raises(
        FileNotFoundError,
        match=r'(?s)does not exist.*'
        r'SharePoint.*van_convert\.py.*init_cfg=None',
    ):
        model.init_weights()


# ----------------------------------------------------------------- converter
@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_converter_round_trip(cls, tmp_path, capsys, random_backbone):
    # all four stages, stage LayerNorm eps of the official networks
    like_mmpretrain_ref = dict(
        out_indices=(0, 1, 2, 3), stage_norm_cfg=dict(type='LN', eps=1e-6)
    )
    source = random_backbone(cls, **like_mmpretrain_ref)
    paths = write_formats(source, tmp_path)
    ours = tmp_path / 'out' / 'ours.pth'
    convert_file(
        str(paths['official_classification']), str(ours), 'ours', False
    )
    assert 'official format' in capsys.readouterr().out
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = source(x)
        loaded = load_pretrained(cls, ours, **like_mmpretrain_ref)
        for a, b in zip(expected, loaded(x)):
            torch.testing.assert_close(b, a, atol=0, rtol=0)

    mmpre = tmp_path / 'mmpretrain.pth'
    convert_file(str(ours), str(mmpre), 'mmpretrain', False)
    sd = torch.load(mmpre, weights_only=True)['state_dict']
    assert all(k.startswith('backbone.') for k in sd)
    if cls is VAN_LKA:  # mmpretrain's own VAN takes it as it is
        from mmpretrain.models.backbones import VAN

        ref = VAN(
            arch='tiny',
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='LN', eps=1e-6),
        )
        ref.load_state_dict({k[len('backbone.') :]: v for k, v in sd.items()})
        ref.eval()  # mmpretrain's VAN.train() returns None
        with torch.no_grad():
            for a, b in zip(expected, ref(x)):
                torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)

    official = tmp_path / 'official.pth'
    convert_file(str(mmpre), str(official), 'official', False)
    sd = torch.load(official, weights_only=True)['state_dict']
    assert set(sd) == {official_name(k) for k in source.state_dict()}


def test_converter_cli_never_overwrites(tmp_path, run_tool):
    src = tmp_path / 'src.pth'
    torch.save(VAN_LKA().state_dict(), src)
    dst = tmp_path / 'dst.pth'
    dst.write_bytes(b'precious')
    tool = 'tools/model_converters/van_convert.py'
    proc = run_tool([tool, src, dst])
    assert proc.returncode == 1 and 'pass --force' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert dst.read_bytes() == b'precious'
    proc = run_tool([tool, src, dst, '--force'])
    assert proc.returncode == 0, proc.output[-3000:]
    assert 'wrote' in proc.stdout and 'in the ours format' in proc.stdout
    assert dst.read_bytes() != b'precious'


# --------------------------------------------------------------- safe loading
def test_training_checkpoint_loads_weights_only(tmp_path):
    """An mmengine training checkpoint (message hub with numpy history,
    optimizer, schedulers) loads with torch's safe loader."""
    model = VAN_LSKA(
        arch=dict(embed_dims=[8], depths=[1], mlp_ratios=[2]), out_indices=(0,)
    )
    optim = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 3, 32, 32))[0].sum().backward()
    optim.step()
    hub = MessageHub.get_instance('test_safe_load')
    hub.update_scalar('train/loss', np.float64(1.5))
    hub.update_scalar('train/lr', 0.1)
    hub.update_info('iter', 3)
    ckpt = {
        'meta': {
            'epoch': 1,
            'iter': 3,
            'seed': np.int64(0),
            'dataset_meta': {'classes': ('a', 'b')},
        },
        'state_dict': model.state_dict(),
        'message_hub': hub.state_dict(),
        'optimizer': optim.state_dict(),
        'param_schedulers': [{'base_values': [0.1], 'last_step': 3}],
    }
    torch.save(ckpt, tmp_path / 'epoch_1.pth')
    loaded = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    restored = MessageHub.get_instance('test_safe_load_restored')
    restored.load_state_dict(loaded['message_hub'])
    assert restored.get_scalar('train/loss').current() == 1.5
    assert loaded['optimizer']['state'][0]['step'] == 1


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_untrusted_code_is_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {}, 'x': _Exploit()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path, weights_only=True)
