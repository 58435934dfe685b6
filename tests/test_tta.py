# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Test-time augmentation (``tools/test.py --tta``) of every config family.

* :class:`InstanceSegTTAModel` merges boxes exactly as mmdet's
  ``DetTTAModel`` and, with one view, returns the Mask R-CNN's own boxes and
  masks; flipped views' masks are flipped back and voted by score.
* The configs' ``tta_pipeline`` s give the views they promise (COCO: 3
  scales x flip; ADE20K: 6 scales x flip, multiples of 32) through the
  codebases' own transforms.
* End to end on tiny COCO / ADE20K data (slow): ``run_test(tta=True)`` of
  each family merges the views of every image and reports the metrics.
"""

import copy
import math
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import projects.van_lska  # noqa: F401  (registers our modules)
from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import drop_pretrained, sync_bn_to_bn
from projects.van_lska.models.det_tta import InstanceSegTTAModel
from projects.van_lska.testing.checkpoints import save_initialised_checkpoint
from projects.van_lska.testing.tiny_data import (
    HEIGHT,
    TINY_SCALE,
    WIDTH,
    tiny_data_options,
)

pytestmark = pytest.mark.usefixtures('one_thread')

TTA_CFG = dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
DET = {
    'retinanet_van_lska_b0': 'DetTTAModel',
    'sparse_rcnn_van_lska_b0': 'DetTTAModel',
    'atss_van_lka_b0': 'DetTTAModel',
    'gfl_van_lska_b0': 'DetTTAModel',
    'maskrcnn_van_lska_b0': 'InstanceSegTTAModel',
    'cascade_maskrcnn_van_lka_b0': 'InstanceSegTTAModel',
}
SEG = ('fpn_van_lska_b0', 'upernet_van_lka_b0')
WITH_MASKS = ('maskrcnn', 'cascade_maskrcnn')


# ------------------------------------------------------------ the merge
class _Merger(torch.nn.Module):
    """The detector slot of a TTA model whose merge alone is tested."""

    def test_step(self, data):
        raise AssertionError('only merge_preds is called in these tests')


def _sample(bboxes, scores, labels, masks=None, flip=False, shape=(20, 30)):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    sample = DetDataSample(
        metainfo=dict(ori_shape=shape, flip=flip, flip_direction='horizontal')
    )
    pred = InstanceData()
    pred.bboxes, pred.scores, pred.labels = bboxes, scores, labels
    if masks is not None:
        pred.masks = masks
    sample.pred_instances = pred
    return sample


def _flip_boxes(bboxes: torch.Tensor, width: int) -> torch.Tensor:
    out = bboxes.clone()
    out[:, 0], out[:, 2] = width - bboxes[:, 2], width - bboxes[:, 0]
    return out


def _random_views(seed: int, shape=(20, 30), per_view=15, views=4):
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    samples = []
    for v in range(views):
        xy = torch.rand(per_view, 2, generator=g) * torch.tensor([w, h]) * 0.7
        wh = torch.rand(per_view, 2, generator=g) * torch.tensor([w, h]) * 0.3
        bboxes = torch.cat([xy, xy + wh + 1], dim=1)
        scores = torch.rand(per_view, generator=g)
        labels = torch.randint(0, 3, (per_view,), generator=g)
        samples.append(_sample(bboxes, scores, labels, flip=v % 2 == 1))
    return samples


def test_box_merge_equals_mmdet_det_tta_model():
    from mmdet.models.test_time_augs import DetTTAModel

    ours = InstanceSegTTAModel(module=_Merger(), tta_cfg=TTA_CFG)
    theirs = DetTTAModel(module=_Merger(), tta_cfg=TTA_CFG)
    theirs.tta_cfg = ConfigDict(TTA_CFG)  # as built from a config
    for seed in range(3):
        views = _random_views(seed)
        a = ours.merge_preds([copy.deepcopy(views)])[0].pred_instances
        b = theirs.merge_preds([copy.deepcopy(views)])[0].pred_instances
        assert len(a) == len(b) > 0
        torch.testing.assert_close(a.bboxes, b.bboxes)
        torch.testing.assert_close(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)
        assert 'masks' not in a


def test_flipped_view_masks_are_flipped_back():
    h, w = 20, 30
    bboxes = torch.tensor([[2.0, 3.0, 12.0, 15.0], [15.0, 2.0, 28.0, 9.0]])
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 3:15, 2:12] = True
    masks[0, 3:8, 2:5] = False  # not symmetric: a flip would show
    masks[1, 2:9, 15:28] = True
    labels = torch.tensor([0, 1])
    plain = _sample(bboxes, torch.tensor([0.9, 0.8]), labels, masks)
    flipped = _sample(
        _flip_boxes(bboxes, w),
        torch.tensor([0.85, 0.75]),
        labels,
        masks.flip(-1),
        flip=True,
    )
    tta = InstanceSegTTAModel(module=_Merger(), tta_cfg=TTA_CFG)
    merged = tta.merge_preds([[flipped, plain]])[0].pred_instances
    # each object: its plain and its flipped-back detection agree
    assert len(merged) == 2
    torch.testing.assert_close(merged.bboxes, bboxes)
    assert torch.equal(merged.masks, masks)
    assert merged.masks.shape == (2, h, w)


def test_masks_are_a_score_weighted_vote():
    h, w = 10, 10
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = box.repeat(4, 1)
    boxes[3] = torch.tensor([0.0, 0.0, 10.0, 9.0])  # IoU 0.9, other class
    scores = torch.tensor([0.9, 0.5, 0.45, 0.95])
    labels = torch.tensor([0, 0, 0, 1])
    masks = torch.zeros(4, h, w, dtype=torch.bool)
    masks[0, 0] = masks[1, 0] = True  # row 0: 0.9 + 0.5 of 1.85 -> on
    masks[1, 1] = masks[2, 1] = True  # row 1: 0.95 of 1.85 -> on
    masks[0, 2] = True  # row 2: 0.9 of 1.85 -> off
    masks[1, 3] = True  # row 3: 0.5 -> off
    masks[3, 4] = True  # row 4: only the other class -> off
    views = [
        _sample(
            boxes[i : i + 1],
            scores[i : i + 1],
            labels[i : i + 1],
            masks[i : i + 1],
            shape=(h, w),
        )
        for i in range(4)
    ]
    tta = InstanceSegTTAModel(module=_Merger(), tta_cfg=TTA_CFG)
    merged = tta.merge_preds([views])[0].pred_instances
    by_label = {int(lb): i for i, lb in enumerate(merged.labels)}
    assert sorted(by_label) == [0, 1]
    vote = merged.masks[by_label[0]]
    assert vote[0].all() and vote[1].all()
    assert not vote[2:].any()
    assert torch.equal(merged.masks[by_label[1]], masks[3])  # alone
    assert float(merged.scores[by_label[0]]) == pytest.approx(0.9)


def _det_cfg(name: str, data_root: Path) -> Config:
    """A COCO config on the tiny data, without ImageNet weights, keeping
    low-score boxes (an untrained head scores below 0.05), few proposals."""
    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    cfg.merge_from_dict(tiny_data_options(data_root, cfg))
    drop_pretrained(cfg.model)
    sync_bn_to_bn(cfg)
    test_cfg = cfg.model.test_cfg
    if test_cfg.get('rpn'):  # two-stage (Sparse R-CNN: rpn=None)
        test_cfg.rpn.nms_pre = test_cfg.rpn.max_per_img = 32
        cfg.model.train_cfg.rpn_proposal.max_per_img = 32
    rcnn = test_cfg.get('rcnn') or test_cfg
    if 'score_thr' in rcnn:
        rcnn.score_thr = 0.0
    rcnn.max_per_img = 10
    if cfg.model.type == 'SparseRCNN':
        cfg.model.rpn_head.num_proposals = 20
    return cfg


def _views(pipeline: List, scales, flips) -> List:
    """``pipeline`` (a config's ``tta_pipeline``) with other scales/flips."""
    pipeline = copy.deepcopy(pipeline)
    transforms = pipeline[-1]['transforms']
    transforms[0] = [
        dict(type='Resize', scale=s, keep_ratio=True) for s in scales
    ]
    transforms[1] = [dict(type='RandomFlip', prob=p) for p in flips]
    return pipeline


def test_single_view_equals_mask_rcnn(tiny_coco):
    """One view (the test scale, no flip): the detector's own output."""
    from mmdet.registry import DATASETS, MODELS

    cfg = _det_cfg('maskrcnn_van_lska_b0', tiny_coco)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    tta = MODELS.build(dict(cfg.tta_model, module=model))
    assert isinstance(tta, InstanceSegTTAModel)
    plain_set = DATASETS.build(cfg.test_dataloader.dataset)
    tta_set = DATASETS.build(
        dict(
            cfg.test_dataloader.dataset,
            pipeline=_views(cfg.tta_pipeline, [TINY_SCALE], [0.0]),
        )
    )
    for idx in range(len(plain_set)):
        with torch.no_grad():
            (plain,) = model.test_step(pseudo_collate([plain_set[idx]]))
            (merged,) = tta.test_step(pseudo_collate([tta_set[idx]]))
        a, b = plain.pred_instances, merged.pred_instances
        assert len(a) > 0 and len(a) == len(b)
        order_a = torch.argsort(a.scores, descending=True, stable=True)
        order_b = torch.argsort(b.scores, descending=True, stable=True)
        torch.testing.assert_close(b.scores[order_b], a.scores[order_a])
        torch.testing.assert_close(b.bboxes[order_b], a.bboxes[order_a])
        assert torch.equal(b.labels[order_b], a.labels[order_a])
        assert torch.equal(b.masks[order_b], a.masks[order_a])
        assert b.masks.shape[1:] == (HEIGHT, WIDTH)


# ------------------------------------------------- the configs' views
def _fit(h: int, w: int, scale) -> tuple:
    """(h, w) after mmcv's keep-ratio resize to fit ``scale`` (long,
    short)."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


@pytest.mark.parametrize('name', sorted(DET))
def test_coco_tta_views(name, tiny_coco):
    from mmdet.registry import DATASETS

    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    assert cfg.tta_model == dict(type=DET[name], tta_cfg=TTA_CFG)
    opts = tiny_data_options(tiny_coco)
    cfg.merge_from_dict(opts)
    init_default_scope('mmdet')
    dataset = DATASETS.build(
        dict(cfg.test_dataloader.dataset, pipeline=cfg.tta_pipeline)
    )
    item = dataset[0]
    samples = item['data_samples']
    assert len(item['inputs']) == len(samples) == 6
    scales = [(1333, 800), (666, 400), (2000, 1200)]
    expected = [(_fit(HEIGHT, WIDTH, s), f) for s in scales for f in (1, 0)]
    got = [(tuple(s.img_shape), int(s.flip)) for s in samples]
    assert got == expected
    assert all(s.ori_shape == (HEIGHT, WIDTH) for s in samples)
    assert all(
        tuple(x.shape[1:]) == s.img_shape
        for x, s in zip(item['inputs'], samples)
    )


@pytest.mark.parametrize('name', SEG)
def test_ade20k_tta_views(name, tiny_ade20k):
    """VAN-Seg's aug-test: fit 2048r x 512r for r in 0.5..1.75, round up to
    a multiple of 32, plain and flipped."""
    from mmseg.registry import DATASETS

    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    assert cfg.tta_model.type == 'SegTTAModel'
    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(
            cfg.test_dataloader.dataset,
            data_root=str(tiny_ade20k),
            pipeline=cfg.tta_pipeline,
        )
    )
    item = dataset[0]
    samples = item['data_samples']
    assert len(item['inputs']) == 12
    h, w = samples[0].ori_shape
    expected = []
    for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75):
        fh, fw = _fit(h, w, (int(2048 * r), int(512 * r)))
        shape = (math.ceil(fh / 32) * 32, math.ceil(fw / 32) * 32)
        expected += [(shape, False), (shape, True)]
    got = [(tuple(s.img_shape), bool(s.flip)) for s in samples]
    assert got == expected


def test_quickstart_tta_views(tmp_path):
    """The quick-start configs: the same views at their 128x128 scale."""
    cfg = Config.fromfile(
        str(REPO / 'configs/quickstart/maskrcnn_van_lska_b0_shapes.py')
    )
    assert cfg.tta_model.type == 'InstanceSegTTAModel'
    resizes = cfg.tta_pipeline[-1]['transforms'][0]
    assert [r['scale'] for r in resizes] == [(128, 128), (64, 64), (192, 192)]
    cfg = Config.fromfile(
        str(REPO / 'configs/quickstart/fpn_van_lska_b0_shapes.py')
    )
    resizes = cfg.tta_pipeline[-1]['transforms'][0]
    assert [r['scale'][0] for r in resizes] == [64, 96, 128, 160, 192, 224]
    assert len(cfg.tta_pipeline[-1]['transforms'][1]) == 2  # flips


# ------------------------------------------------------- end to end
def _count_merges(monkeypatch, cls, method: str) -> List[int]:
    """Record the number of views of each image ``cls.method`` merges."""
    seen: List[int] = []
    original = getattr(cls, method)

    def wrapper(self, views, *args, **kwargs):
        seen.append(len(views[0]) if method == 'merge_preds' else len(views))
        return original(self, views, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapper)
    return seen


def _tiny_scales(pipeline: List, factor: float) -> List:
    """``pipeline`` with every ``Resize`` scale times ``factor``."""
    pipeline = copy.deepcopy(pipeline)
    for resize in pipeline[-1]['transforms'][0]:
        resize['scale'] = tuple(int(v * factor) for v in resize['scale'])
    return pipeline


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DET))
def test_tools_test_tta_coco(name, tiny_coco, tmp_path, monkeypatch):
    from mmdet.models.test_time_augs import DetTTAModel

    from projects.van_lska.apis.test import run_test

    cfg = _det_cfg(name, tiny_coco)
    # the configs' 3 scales x flip at about 1/8 of their size
    cfg.tta_pipeline = _tiny_scales(cfg.tta_pipeline, 0.12)
    config = tmp_path / f'{name}.py'
    cfg.dump(str(config))
    ckpt = save_initialised_checkpoint(cfg, tmp_path / 'model.pth')
    cls = InstanceSegTTAModel if DET[name] != 'DetTTAModel' else DetTTAModel
    merged = _count_merges(monkeypatch, cls, '_merge_single_sample')
    metrics = run_test(
        str(config),
        ckpt,
        work_dir=str(tmp_path / 'work'),
        tta=True,
        cfg_options={'experiment_name': f'tta_{name}'},
    )
    assert merged == [6, 6]  # two val images, six views each
    assert 'coco/bbox_mAP' in metrics
    if name.startswith(WITH_MASKS):
        assert 'coco/segm_mAP' in metrics


@pytest.mark.slow
@pytest.mark.parametrize('name', SEG)
def test_tools_test_tta_ade20k(name, tiny_ade20k, tmp_path, monkeypatch):
    from mmseg.models import SegTTAModel

    from projects.van_lska.apis.test import run_test

    cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
    drop_pretrained(cfg.model)
    sync_bn_to_bn(cfg)
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tiny_ade20k)
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    # 6 scales x flip at 1/4 of the configs' size (fits 512r x 128r)
    cfg.tta_pipeline = _tiny_scales(cfg.tta_pipeline, 0.25)
    config = tmp_path / f'{name}.py'
    cfg.dump(str(config))
    ckpt = save_initialised_checkpoint(cfg, tmp_path / 'model.pth')
    merged = _count_merges(monkeypatch, SegTTAModel, 'merge_preds')
    metrics: Dict = run_test(
        str(config),
        ckpt,
        work_dir=str(tmp_path / 'work'),
        tta=True,
        cfg_options={'experiment_name': f'tta_{name}'},
    )
    assert merged == [12, 12]  # batch size 1: two images, 12 views each
    assert 'mIoU' in metrics


def test_enable_tta_defaults_and_refusal():
    """Without ``tta_model``: InstanceSegTTAModel for a model with masks,
    DetTTAModel for boxes; DetTTAModel on a model with masks is refused
    with the fix (mmdet would stop in its merge)."""
    from projects.van_lska.apis.errors import UserError
    from projects.van_lska.apis.test import enable_tta

    for name, expected in (
        ('maskrcnn_van_lska_b0', 'InstanceSegTTAModel'),
        ('retinanet_van_lska_b0', 'DetTTAModel'),
    ):
        cfg = Config.fromfile(str(REPO / 'configs' / f'{name}.py'))
        cfg.pop('tta_model'), cfg.pop('tta_pipeline')
        with pytest.warns(UserWarning, match='tta_model'):
            enable_tta(cfg, 'mmdet')
        assert cfg.model.type == expected
        assert cfg.model.module.type in ('MaskRCNN', 'RetinaNet')
    cfg = Config.fromfile(str(REPO / 'configs' / 'maskrcnn_van_lska_b0.py'))
    cfg.tta_model.type = 'DetTTAModel'
    with pytest.raises(UserError, match='tta_model.type=InstanceSegTTAModel'):
        enable_tta(cfg, 'mmdet')
