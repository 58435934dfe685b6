# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Every COCO detection config builds, trains one iteration with a finite
loss and predicts well-formed results on a tiny COCO dataset (CPU)."""

import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import projects.van_lska  # noqa: F401  (registers VAN_LKA / VAN_LSKA)
from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import sync_bn_to_bn
from projects.van_lska.testing.tiny_data import (
    HEIGHT,
    WIDTH,
    tiny_data_options,
)

pytestmark = pytest.mark.usefixtures('one_thread')
FRAMEWORKS = (
    'retinanet',
    'maskrcnn',
    'cascade_maskrcnn',
    'sparse_rcnn',
    'atss',
    'gfl',
)
CONFIGS = [
    f'{fw}_van_{att}_{arch}'
    for fw in FRAMEWORKS
    for att in ('lka', 'lska')
    for arch in ('b0', 'b1', 'b2', 'b3')
]
WITH_MASKS = ('maskrcnn', 'cascade_maskrcnn')


def _load(name: str, data_root: Path) -> Config:
    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    cfg.merge_from_dict(tiny_data_options(data_root, cfg))
    cfg.model.backbone.init_cfg = None  # no ImageNet download / file
    sync_bn_to_bn(cfg.model)
    # An untrained head scores below 0.05: keep every box for the checks.
    model = cfg.model
    for sub in (model.test_cfg, model.test_cfg.get('rcnn') or {}):
        if 'score_thr' in sub:
            sub.score_thr = 0.0
    # CPU time only (same modules, fewer boxes): fewer proposals and
    # detections, and a vectorised AdamW step.
    if model.get('rpn_head', {}).get('type') == 'RPNHead':
        model.train_cfg.rpn_proposal.max_per_img = 32
        model.test_cfg.rpn.max_per_img = 32
        model.test_cfg.rcnn.max_per_img = 10
    elif model.type == 'SparseRCNN':
        model.rpn_head.num_proposals = 20
        model.test_cfg.rcnn.max_per_img = 10
    else:
        model.test_cfg.nms_pre = 100
        model.test_cfg.max_per_img = 10
    cfg.optim_wrapper.optimizer.foreach = True
    return cfg


def test_config_names_and_recipes():
    for name in CONFIGS:
        assert (REPO / 'configs' / f'{name}.py').is_file(), name
    cfg = Config.fromfile(str(REPO / 'configs' / 'maskrcnn_van_lska_b1.py'))
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch, backbone.kernel_size) == (
        'VAN_LSKA',
        'b1',
        23,
    )
    assert backbone.stage_norm_cfg == dict(type='LN', eps=1e-5)
    assert backbone.drop_path_rate == 0.1
    assert backbone.init_cfg.checkpoint == (
        'data/pretrained/van_lska_b1_k23.pth'
    )
    assert cfg.model.neck.in_channels == [64, 128, 320, 512]
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.default_scope == 'mmdet'
    lka = Config.fromfile(str(REPO / 'configs' / 'retinanet_van_lka_b0.py'))
    assert lka.model.backbone.init_cfg.checkpoint.startswith(
        'https://download.openmmlab.com/mmclassification/v0/van/van-tiny'
    )
    assert lka.model.neck.in_channels == [32, 64, 160, 256]
    sparse = Config.fromfile(
        str(REPO / 'configs' / 'sparse_rcnn_van_lska_b2.py')
    )
    assert sparse.model.rpn_head.num_proposals == 100
    assert sparse.optim_wrapper.optimizer.lr == 2.5e-5
    assert sparse.train_cfg.max_epochs == 36
    cascade = Config.fromfile(
        str(REPO / 'configs' / 'cascade_maskrcnn_van_lka_b3.py')
    )
    assert cascade.train_cfg.max_epochs == 36
    head = cascade.model.roi_head.bbox_head[0]
    assert head.num_shared_convs == 4 and head.num_shared_fcs == 1
    assert head.loss_bbox.type == 'GIoULoss'


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_predicts(name: str, tiny_coco: Path):
    from mmdet.registry import DATASETS, MODELS
    from mmdet.structures import DetDataSample

    torch.manual_seed(0)
    cfg = _load(name, tiny_coco)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()

    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(train_set) == 4
    batch = pseudo_collate([train_set[0]])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    assert 'loss' in log_vars
    for key, value in log_vars.items():
        assert math.isfinite(float(value)), (key, value)
    assert float(log_vars['loss']) > 0

    test_set = DATASETS.build(cfg.test_dataloader.dataset)
    model.eval()
    with torch.no_grad():
        (result,) = model.test_step(pseudo_collate([test_set[0]]))
    assert isinstance(result, DetDataSample)
    pred = result.pred_instances
    num = len(pred)
    assert 0 < num <= 10
    assert pred.bboxes.shape == (num, 4)
    assert pred.scores.shape == (num,) and pred.labels.shape == (num,)
    assert torch.isfinite(pred.bboxes).all()
    assert ((pred.labels >= 0) & (pred.labels < 80)).all()
    # boxes are rescaled back to the original image
    assert result.ori_shape == (HEIGHT, WIDTH)
    if name.startswith(WITH_MASKS):
        assert pred.masks.shape == (num, HEIGHT, WIDTH)
        assert pred.masks.dtype == torch.bool
    else:
        assert 'masks' not in pred
