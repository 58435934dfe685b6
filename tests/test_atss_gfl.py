# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""ATSS and GFL with VAN-B0..B3 (LKA and LSKA) on COCO, 3x multi-scale:
the recipe of the VAN paper's 3x detector table and its parameter count.
(Every config builds, trains a step and predicts in
``tests/test_detection_configs.py``; ``--tta`` in ``tests/test_tta.py``.)"""

import pytest
from mmengine.config import Config

import projects.van_lska  # noqa: F401  (registers VAN_LKA / VAN_LSKA)
from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import drop_pretrained, registry

DETECTORS = {'atss': ('ATSS', 'ATSSHead'), 'gfl': ('GFL', 'GFLHead')}


def _cfg(name: str) -> Config:
    return Config.fromfile(str(REPO / 'configs' / f'{name}.py'))


def _without_masks(pipeline):
    """``pipeline`` with ``LoadAnnotations(with_mask=True)`` made box-only."""
    out = []
    for step in pipeline:
        step = dict(step)
        if step['type'] == 'LoadAnnotations':
            step.pop('with_mask', None)
        out.append(step)
    return out


@pytest.mark.parametrize('det', sorted(DETECTORS))
def test_recipe(det):
    model_type, head_type = DETECTORS[det]
    cascade = _cfg('cascade_maskrcnn_van_lka_b2')
    for attention, kernel in (('lka', 21), ('lska', 23)):
        for arch in ('b0', 'b1', 'b2', 'b3'):
            cfg = _cfg(f'{det}_van_{attention}_{arch}')
            backbone = cfg.model.backbone
            assert backbone.type == f'VAN_{attention.upper()}'
            assert (backbone.arch, backbone.kernel_size) == (arch, kernel)
            assert backbone.out_indices == (0, 1, 2, 3)
            assert backbone.drop_path_rate == 0.1
            assert backbone.stage_norm_cfg == dict(type='LN', eps=1e-5)
            width = [32, 64, 160, 256] if arch == 'b0' else [64, 128, 320, 512]
            assert cfg.model.neck.in_channels == width
    cfg = _cfg(f'{det}_van_lska_b1')
    assert cfg.model.type == model_type
    assert cfg.model.bbox_head.type == head_type
    # FPN from stride 8 with extra convs on its output, as mmdet's/PVTv2's
    neck = cfg.model.neck
    assert (neck.start_level, neck.add_extra_convs, neck.num_outs) == (
        1,
        'on_output',
        5,
    )
    # 3x: 36 epochs, lr x0.1 after 27 and 33; AdamW 1e-4, wd 0.05, batch 16
    assert cfg.train_cfg.max_epochs == 36
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert steps[0].milestones == [27, 33] and steps[0].end == 36
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == (
        'AdamW',
        1e-4,
        0.05,
    )
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    # the multi-scale + crop training of the Cascade Mask R-CNN 3x base
    # (mmdet's ConvNeXt/Swin recipe), without masks
    assert cfg.train_dataloader.dataset.pipeline == _without_masks(
        cascade.train_dataloader.dataset.pipeline
    )
    assert cfg.train_pipeline == cfg.train_dataloader.dataset.pipeline
    assert cfg.tta_model.type == 'DetTTAModel'


@pytest.mark.parametrize('det', sorted(DETECTORS))
def test_vanb2_parameters_match_the_paper(det):
    """The VAN paper's 3x table: ATSS and GFL with VAN-B2 have 34 M
    parameters."""
    models = registry('mmdet')
    cfg = _cfg(f'{det}_van_lka_b2')
    drop_pretrained(cfg.model)
    model = models.build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6) == 34, params
