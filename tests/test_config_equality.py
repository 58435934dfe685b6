# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The configs written as deltas on the upstream ``mmdet::``/``mmseg::``/
``mmpretrain::`` bases resolve to the same values as before.

``tests/snapshots/config_snapshot.json`` holds ``Config.fromfile(p)
.to_dict()`` of the 58 configs (``configs/*.py`` and the two quick-start
configs) as they were at commit 1e633e6, before the rewrite, written by
:mod:`projects.van_lska.testing.config_snapshot`. Every config is resolved
again and compared with it value for value (tuples are not lists, ``1`` is
not ``1.0`` or ``True``); the only differences accepted are listed in
``ALLOWED`` below, each with its reason and limited to the configs and
values where it is expected. A rule that no longer matches anything fails
too, so the list cannot go stale.
"""

import copy
from collections import Counter
from pathlib import Path

import pytest

from projects.van_lska.testing.config_snapshot import (
    REPO_ROOT,
    TUPLE_TAG,
    AllowedDifference,
    compare_to_snapshot,
    diff_values,
    load_snapshot,
    to_jsonable,
)

SNAPSHOT = Path(__file__).parent / 'snapshots' / 'config_snapshot.json'

DET_1X = (
    'configs/maskrcnn_van_*',
    'configs/retinanet_van_*',
    'configs/quickstart/maskrcnn_*',
)
SEG = (
    'configs/fpn_van_*',
    'configs/upernet_van_*',
    'configs/quickstart/fpn_*',
)
SEG_FULL = ('configs/fpn_van_*', 'configs/upernet_van_*')
CLS = ('configs/van_*_in1k.py',)
CASCADE = ('configs/cascade_maskrcnn_van_*',)
# Issue 17: --tta for every config family (configs/_base_/coco_tta.py,
# configs/_base_/ade20k_tta.py and the quick-start configs' own scales).
DET_BOXES = ('configs/retinanet_van_*', 'configs/sparse_rcnn_van_*')
DET_MASKS = (
    'configs/maskrcnn_van_*',
    'configs/cascade_maskrcnn_van_*',
    'configs/quickstart/maskrcnn_*',
)
TTA_CFG = {'max_per_img': 100, 'nms': {'iou_threshold': 0.5, 'type': 'nms'}}
QUICKSTART_SEG = ('configs/quickstart/fpn_*',)
# Issue 18: the check of the loaded checkpoint (configs/_base_/
# checkpoint_check.py) in every ADE20K and COCO config.
SEG_AND_DET = SEG + DET_BOXES + DET_MASKS
# Issue 16: quick starts that finish in minutes - 64-channel necks and heads
# (instead of 128) and the fused training path of the backbone.
QUICKSTART_DET = ('configs/quickstart/maskrcnn_*',)
QUICKSTART_CHANNELS = {
    QUICKSTART_DET: (
        'neck_channels',
        'model.neck.out_channels',
        'model.rpn_head.in_channels',
        'model.rpn_head.feat_channels',
        'model.roi_head.bbox_roi_extractor.out_channels',
        'model.roi_head.bbox_head.in_channels',
        'model.roi_head.mask_roi_extractor.out_channels',
        'model.roi_head.mask_head.in_channels',
        'model.roi_head.mask_head.conv_out_channels',
    ),
    QUICKSTART_SEG: (
        'model.neck.out_channels',
        'model.decode_head.channels',
        'model.decode_head.in_channels[[]*]',  # fnmatch: '[[]' is a '['
    ),
}

ALLOWED = (
    AllowedDifference(
        '*._scope_',
        'added',
        "mmengine tags the dicts with a 'type' of a base loaded through "
        "'mmdet::'/'mmseg::'/'mmpretrain::' with that scope; it equals the "
        "config's default_scope, so every registry lookup stays the same.",
        value=lambda before: before['default_scope'],
    ),
    AllowedDifference(
        'max_epochs',
        'removed',
        'top-level helper of the deleted det_schedule_1x_adamw.py; '
        'train_cfg.max_epochs (12, compared) is what the runner reads.',
        configs=DET_1X,
    ),
    AllowedDifference(
        'ms_scales',
        'removed',
        'top-level helper of the deleted coco_instance_ms_crop.py; the '
        'scales it built are in the compared train pipeline.',
        configs=CASCADE,
    ),
    AllowedDifference(
        'checkpoint_file',
        'added',
        "the ConvNeXt base's top-level backbone URL, set to None: its only "
        'use (model.backbone.init_cfg) is replaced by our backbone.',
        value=None,
        configs=CASCADE,
    ),
    AllowedDifference(
        'img_scale',
        'removed',
        'top-level helper of the deleted ade20k_512.py; the (2048, 512) '
        'resizes it built are in the compared pipelines.',
        configs=SEG,
    ),
    AllowedDifference(
        'interval',
        'removed',
        'top-level helper of the deleted seg schedules; train_cfg.val_interval'
        ' and the checkpoint hook interval it set are compared.',
        configs=SEG,
    ),
    AllowedDifference(
        'max_iters',
        'removed',
        'top-level helper of the deleted seg schedules; train_cfg.max_iters '
        'and the scheduler ends it set are compared.',
        configs=SEG_FULL,
    ),
    AllowedDifference(
        'model.pretrained',
        'added',
        "mmseg's model bases name a ResNet checkpoint there; None is "
        "EncoderDecoder's default (our weights load via backbone.init_cfg).",
        value=None,
        configs=SEG,
    ),
    AllowedDifference(
        'optimizer',
        'added',
        "mmseg's schedules also name their SGD at top level; set to None "
        '(the runner reads only optim_wrapper, which is compared).',
        value=None,
        configs=SEG,
    ),
    AllowedDifference(
        'tta_pipeline',
        'added',
        "VAN-Seg's multi-scale (0.5-1.75) + flip test (configs/_base_/"
        'ade20k_tta.py; quick start at its scale), read only by --tta, '
        'which refused these configs without it (tests/test_tta.py).',
        configs=SEG,
    ),
    AllowedDifference(
        'tta_model',
        'added',
        "--tta: mmdet's DetTTAModel merging the boxes of the views "
        '(configs/_base_/coco_tta.py), read only by --tta.',
        value={'type': 'DetTTAModel', 'tta_cfg': TTA_CFG},
        configs=DET_BOXES,
    ),
    AllowedDifference(
        'tta_model',
        'added',
        '--tta: InstanceSegTTAModel (boxes as DetTTAModel, masks voted; '
        "mmdet's DetTTAModel refuses masks), read only by --tta.",
        value={'type': 'InstanceSegTTAModel', 'tta_cfg': TTA_CFG},
        configs=DET_MASKS,
    ),
    AllowedDifference(
        'tta_pipeline',
        'added',
        "--tta: mmdet's RetinaNet TTA views, 3 scales x flip (configs/"
        '_base_/coco_tta.py; quick start at its scale; tests/test_tta.py).',
        configs=DET_BOXES + DET_MASKS,
    ),
    AllowedDifference(
        '*_dataloader.dataset.type',
        'changed',
        'ShapesSegDataset: BaseSegDataset with the shapes classes as class '
        "METAINFO, which mmseg's confusion_matrix tool reads.",
        value='ShapesSegDataset',
        configs=QUICKSTART_SEG,
    ),
    AllowedDifference(
        'custom_imports.imports[[]1]',  # fnmatch: '[[]' is a '['
        'added',
        'the module that registers ShapesSegDataset.',
        value='projects.van_lska.datasets.shapes_seg',
        configs=QUICKSTART_SEG,
    ),
    AllowedDifference(
        'visualizer.type',
        'changed',
        "SegOverlayVisualizer (registered by projects.van_lska): mmseg's, "
        "drawing browse_dataset's transposed images too and tinting only "
        'class pixels (only pictures change).',
        value='SegOverlayVisualizer',
        configs=SEG,
    ),
    AllowedDifference(
        'img_ratios',
        'added',
        "top-level helper of mmseg's ade20k.py: the scales of tta_pipeline.",
        value=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
        configs=SEG,
    ),
    AllowedDifference(
        'custom_hooks',
        'added',
        "CheckpointCoverageHook on the runner's load_from (configs/_base_/"
        "checkpoint_check.py): mmseg's/mmdet's own test tools and mim test "
        'refuse a model-zoo file that does not match its name or does not '
        'fill the model; without load_from it does nothing (tests/'
        'test_download.py, tests/test_model_zoo_ade20k.py).',
        value=[{'type': 'CheckpointCoverageHook'}],
        configs=SEG_AND_DET,
    ),
    *(
        AllowedDifference(
            path,
            'changed',
            'quick start: 64 channels in the neck and heads (at 128x128 '
            'they cost most of a step); the metrics stay above the targets '
            '(README, quick start).',
            value=64,
            configs=configs,
        )
        for configs, paths in QUICKSTART_CHANNELS.items()
        for path in paths
    ),
    AllowedDifference(
        'channels',
        'added',
        'top-level helper of the quick-start FPN: the 64 channels of its '
        'neck and head (compared there).',
        value=64,
        configs=QUICKSTART_SEG,
    ),
    AllowedDifference(
        'model.backbone.fused',
        'added',
        'quick start: the fused training path (same network and numerics, '
        'tests/test_fused_training.py), faster on CPU.',
        value=True,
        configs=QUICKSTART_DET + QUICKSTART_SEG,
    ),
    AllowedDifference(
        'model.init_cfg',
        'added',
        "mmpretrain's VAN model base inits Linear/LayerNorm model-wide "
        "there; None is ImageClassifier's default (head init_cfg compared).",
        value=None,
        configs=CLS,
    ),
    AllowedDifference(
        'data_root',
        'removed',
        'top-level helper of the deleted imagenet_bs128_randaug.py; the '
        "dataloaders' data_root ('data/imagenet') is compared.",
        configs=CLS,
    ),
)


@pytest.fixture(scope='module')
def snapshot():
    return load_snapshot(SNAPSHOT)


@pytest.fixture(scope='module')
def comparison(snapshot):
    return compare_to_snapshot(snapshot, ALLOWED, root=REPO_ROOT)


def test_snapshot_holds_the_58_configs(snapshot):
    """The 56 COCO/ADE20K/ImageNet configs and the 2 quick-start configs
    of the rewrite (configs added after it are not in it)."""
    archs = ('b0', 'b1', 'b2', 'b3')
    families = (
        'maskrcnn',
        'cascade_maskrcnn',
        'retinanet',
        'sparse_rcnn',
        'fpn',
        'upernet',
    )
    expected = {
        f'configs/{family}_van_{attention}_{arch}.py'
        for family in families
        for attention in ('lka', 'lska')
        for arch in archs
    }
    expected |= {
        f'configs/van_{attention}_{arch}_in1k.py'
        for attention in ('lka', 'lska')
        for arch in archs
    }
    expected |= {
        'configs/quickstart/fpn_van_lska_b0_shapes.py',
        'configs/quickstart/maskrcnn_van_lska_b0_shapes.py',
    }
    assert len(expected) == 58
    assert set(snapshot) == expected


def test_configs_equal_snapshot(comparison):
    unexpected, _ = comparison
    assert not unexpected, '\n'.join(map(str, unexpected))


def test_every_allowed_difference_is_used(comparison):
    _, accepted = comparison
    used = Counter(rule.pattern for _, rule in accepted)
    stale = [rule.pattern for rule in ALLOWED if not used[rule.pattern]]
    assert not stale, f'allowed differences that no longer occur: {stale}'


# ------------------------------------------------- the comparison can fail
def _backbone(cfg):
    return cfg['model']['backbone']


MUTATIONS = {
    'value': lambda c: c['model']['neck'].update(out_channels=255),
    'float ulp': lambda c: c['optim_wrapper']['optimizer'].update(
        lr=1e-4 * (1 + 1e-15)
    ),
    'int -> float': lambda c: c['train_cfg'].update(max_epochs=12.0),
    'bool -> int': lambda c: c.update(resume=0),
    'list item removed': lambda c: c['train_pipeline'].pop(),
    'key removed': lambda c: _backbone(c).pop('kernel_size'),
    'key added': lambda c: c.update(extra=1),
    'tuple -> list': lambda c: _backbone(c).update(
        out_indices=_backbone(c)['out_indices'][TUPLE_TAG]
    ),
}


def _unexpected(before, after, name):
    diffs = diff_values(before, after, name)
    assert diffs, 'the change was not seen'
    return [d for d in diffs if not any(r.matches(d, before) for r in ALLOWED)]


@pytest.mark.parametrize('mutation', sorted(MUTATIONS))
def test_any_other_change_is_reported(snapshot, mutation):
    name = 'configs/maskrcnn_van_lska_b1.py'
    before = snapshot[name]
    after = copy.deepcopy(before)
    MUTATIONS[mutation](after)
    assert _unexpected(before, after, name)


def test_allowed_differences_are_narrow(snapshot):
    """An allowed key with another value, of another kind or in another
    config family is reported."""
    det = 'configs/maskrcnn_van_lska_b1.py'
    before = snapshot[det]
    model = before['model']
    for after in (
        {**before, 'max_epochs': 13},  # changed, not removed
        {**before, 'model': {**model, '_scope_': 'mmseg'}},  # other scope
        {**before, 'optimizer': None},  # a segmentation-only exemption
        {**before, 'custom_hooks': [{'type': 'CheckpointCoverageHook'}] * 2},
        {**before, 'custom_hooks': [{'type': 'EMAHook'}]},
    ):
        assert _unexpected(before, after, det)
    cls = 'configs/van_lka_b0_in1k.py'
    before = snapshot[cls]
    model = {**before['model'], 'init_cfg': [{'type': 'Constant'}]}
    assert _unexpected(before, {**before, 'model': model}, cls)
    hooks = [{'type': 'CheckpointCoverageHook'}]  # not in the ImageNet base
    assert _unexpected(before, {**before, 'custom_hooks': hooks}, cls)


def test_to_jsonable_keeps_types_apart():
    assert to_jsonable((1, [2.0, True], None)) == {
        TUPLE_TAG: [1, [2.0, True], None]
    }
    assert diff_values(to_jsonable((1, 2)), to_jsonable([1, 2]))
    assert diff_values(1, 1.0) and diff_values(1, True)
    assert not diff_values(to_jsonable({'a': (1,)}), to_jsonable({'a': (1,)}))
    with pytest.raises(TypeError, match='model.x'):
        to_jsonable({'model': {'x': object()}})
    with pytest.raises(TypeError, match='str keys'):
        to_jsonable({1: 2})
