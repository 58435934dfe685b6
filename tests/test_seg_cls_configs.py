# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The 16 ADE20K segmentation and 8 ImageNet classification configs: recipe
values, one training iteration and evaluation of each on tiny data made
here, and loading of mmseg ``projects/van`` full-model checkpoints."""

import copy
import math
import re
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import sync_bn_to_bn
from projects.van_lska.testing.randomize import randomize_
from projects.van_lska.testing.tiny_data import IMAGENET_CLASSES
from projects.van_lska.weights import to_official

pytestmark = pytest.mark.usefixtures('one_thread')
ARCHS = ('b0', 'b1', 'b2', 'b3')
ATTENTIONS = ('lka', 'lska')
SEG_CONFIGS = [
    f'{head}_van_{att}_{arch}'
    for head in ('fpn', 'upernet')
    for att in ATTENTIONS
    for arch in ARCHS
]
CLS_CONFIGS = [
    f'van_{att}_{arch}_in1k' for att in ATTENTIONS for arch in ARCHS
]
C4 = {'b0': 256, 'b1': 512, 'b2': 512, 'b3': 512}
STAGE_CHANNELS = {
    'b0': [32, 64, 160, 256],
    **{a: [64, 128, 320, 512] for a in ('b1', 'b2', 'b3')},
}
LKA_URL = re.compile(
    r'^https://download\.openmmlab\.com/mmclassification/v0/van/'
    r'van-(tiny|small|base|large)_8xb128_in1k_20220501-[0-9a-f]{8}\.pth$'
)
MMPRETRAIN_NAMES = dict(b0='tiny', b1='small', b2='base', b3='large')
CROP = 32  # every crop / resize of the configs is shrunk to this in tests


def load(name: str) -> Config:
    return Config.fromfile(str(REPO / 'configs' / f'{name}.py'))


def parse(name: str):
    """'fpn_van_lska_b2' / 'van_lka_b0_in1k' -> (head, attention, arch)."""
    parts = name.split('_')
    if name.endswith('_in1k'):
        return 'cls', parts[1], parts[2]
    return parts[0], parts[2], parts[3]


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize('name', SEG_CONFIGS)
def test_seg_recipe(name):
    head, att, arch = parse(name)
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports['imports'][0] == 'projects.van_lska'
    backbone = cfg.model.backbone
    assert backbone.type == f'VAN_{att.upper()}'
    assert backbone.arch == arch
    assert backbone.norm_cfg['type'] == 'SyncBN'
    assert backbone.stage_norm_cfg == dict(type='LN', eps=1e-5)
    assert backbone.out_indices == (0, 1, 2, 3)
    if att == 'lska':
        assert backbone.kernel_size == 23
        assert backbone.init_cfg == dict(
            type='Pretrained',
            checkpoint=f'data/pretrained/van_lska_{arch}_k23.pth',
        )
    else:
        assert backbone.get('kernel_size') in (None, 21)
        url = backbone.init_cfg['checkpoint']
        assert LKA_URL.match(url) and MMPRETRAIN_NAMES[arch] in url
    data = cfg.train_dataloader.dataset
    assert data.type == 'ADE20KDataset'
    assert data.data_root == 'data/ade/ADEChallengeData2016'
    assert cfg.model.data_preprocessor['size'] == (512, 512)
    assert cfg.val_evaluator['type'] == 'IoUMetric'
    optim = cfg.optim_wrapper.optimizer
    assert optim.type == 'AdamW'
    poly = cfg.param_scheduler[-1]
    assert poly.type == 'PolyLR' and poly.eta_min == 0.0
    assert poly.end == cfg.train_cfg.max_iters
    if head == 'fpn':
        assert backbone.drop_path_rate == (0.3 if arch == 'b3' else 0.2)
        assert cfg.model.neck.in_channels == STAGE_CHANNELS[arch]
        assert cfg.model.neck.out_channels == 256
        assert cfg.model.decode_head.type == 'FPNHead'
        assert cfg.model.decode_head.channels == 128
        assert cfg.train_cfg.max_iters == 40000
        assert cfg.train_dataloader.batch_size == 4  # x 8 GPUs = 32
        assert (optim.lr, optim.weight_decay) == (2e-4, 1e-4)
        assert poly.power == 0.9 and len(cfg.param_scheduler) == 1
    else:
        assert backbone.drop_path_rate == (0.3 if arch == 'b3' else 0.1)
        assert cfg.model.decode_head.type == 'UPerHead'
        assert cfg.model.decode_head.in_channels == STAGE_CHANNELS[arch]
        assert cfg.model.decode_head.channels == 512
        assert cfg.model.decode_head.pool_scales == (1, 2, 3, 6)
        aux = cfg.model.auxiliary_head
        assert aux.type == 'FCNHead' and aux.in_index == 2
        assert aux.in_channels == STAGE_CHANNELS[arch][2]
        assert aux.channels == 256 and aux.loss_decode.loss_weight == 0.4
        assert cfg.train_cfg.max_iters == 160000
        assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
        assert (optim.lr, optim.weight_decay) == (6e-5, 0.01)
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert keys['norm'] == dict(decay_mult=0.0)
        warmup = cfg.param_scheduler[0]
        assert warmup.type == 'LinearLR' and warmup.end == 1500
        assert warmup.start_factor == 1e-6 and poly.power == 1.0


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_recipe(name):
    _, att, arch = parse(name)
    cfg = load(name)
    assert cfg.default_scope == 'mmpretrain'
    backbone = cfg.model.backbone
    assert backbone.type == f'VAN_{att.upper()}' and backbone.arch == arch
    assert backbone.out_indices == (3,)
    assert backbone.stage_norm_cfg == dict(type='LN', eps=1e-6)
    assert backbone.drop_path_rate == (0.2 if arch == 'b3' else 0.1)
    assert 'init_cfg' not in backbone  # trained from scratch
    if att == 'lska':
        assert backbone.kernel_size == 23
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    assert cfg.model.head.type == 'LinearClsHead'
    assert cfg.model.head.num_classes == 1000
    assert cfg.model.head.in_channels == C4[arch]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert cfg.model.train_cfg.augments == [
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]
    assert cfg.train_dataloader.batch_size == 128  # x 8 GPUs = 1024
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    optim = cfg.optim_wrapper.optimizer
    assert optim.type == 'AdamW'
    assert math.isclose(optim.lr, 1e-3) and optim.weight_decay == 0.05
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 5
    assert cosine.type == 'CosineAnnealingLR' and cosine.end == 300
    assert cfg.train_cfg.max_epochs == 300
    pipeline = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    rand = pipeline['RandAugment']
    assert (rand.magnitude_level, rand.magnitude_std) == (9, 0.5)
    assert rand.policies == 'timm_increasing' and rand.num_policies == 2
    assert pipeline['RandomErasing'].erase_prob == 0.25
    assert not any(
        'EMA' in h.get('type', '') for h in cfg.get('custom_hooks', [])
    )


def test_lska_kernel_size_override():
    """The README's --cfg-options recipe builds LSKA-35."""
    cfg = load('van_lska_b0_in1k')
    cfg.merge_from_dict({'model.backbone.kernel_size': 35})
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS

    model = MODELS.build(cfg.model)
    assert model.backbone.kernels.kernel_size == 35
    unit = model.backbone.blocks1[0].attn.spatial_gating_unit
    assert unit.DW_D_conv_h.kernel_size == (1, 11)
    assert unit.DW_D_conv_h.dilation[1] == 3


# ------------------------------------------------- config shrinking helpers
def shrink_pipeline(pipeline: List[Dict]) -> None:
    for t in pipeline:
        kind = t['type']
        if kind in ('RandomResize', 'Resize') and 'scale' in t:
            t['scale'] = (2 * CROP, CROP)
        elif kind == 'RandomCrop':
            t['crop_size'] = (CROP, CROP)
        elif kind in ('RandomResizedCrop', 'CenterCrop'):
            t['scale' if 'scale' in t else 'crop_size'] = CROP
        elif kind == 'ResizeEdge':
            t['scale'] = CROP + 8


def tiny_cfg(name: str, data_root: Path, work_dir: Path) -> Config:
    """The config on tiny data, CPU, one iteration, no checkpoints."""
    cfg = load(name)
    sync_bn_to_bn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{name}_{work_dir.name}'
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.cudnn_benchmark = False
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = str(data_root)
        shrink_pipeline(loader.dataset.pipeline)
    if cfg.default_scope == 'mmseg':
        cfg.model.data_preprocessor.size = (CROP, CROP)
        cfg.train_cfg.max_iters = 1
        cfg.val_dataloader.batch_size = 1
    else:
        for split in ('train', 'val', 'test'):
            dataset = cfg[f'{split}_dataloader'].dataset
            dataset.metainfo = dict(classes=IMAGENET_CLASSES)
        # one iteration (2 images per class)
        cfg.train_dataloader.batch_size = len(IMAGENET_CLASSES) * 2
        cfg.train_cfg.max_epochs = 1
    return cfg


class Recorder(Hook):
    """Keeps the training losses and the validation metrics."""

    def __init__(self):
        self.losses = []
        self.metrics = None

    def after_train_iter(self, runner, batch_idx, data_batch, outputs=None):
        self.losses.append(float(outputs['loss']))

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = metrics


def train_and_evaluate(cfg: Config) -> Dict[str, float]:
    """One training iteration, then the validation the loop runs after its
    last iteration (dataset, pipeline, model and evaluator of the config)."""
    runner = Runner.from_cfg(cfg)
    recorder = Recorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    assert len(recorder.losses) == 1
    loss = recorder.losses[0]
    assert math.isfinite(loss) and loss > 0
    assert recorder.metrics is not None
    return recorder.metrics


@pytest.mark.parametrize('name', SEG_CONFIGS)
def test_seg_config_trains_and_evaluates(name, tiny_ade20k, tmp_path):
    cfg = tiny_cfg(name, tiny_ade20k, tmp_path)
    metrics = train_and_evaluate(cfg)
    assert 0.0 <= metrics['mIoU'] <= 100.0


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_config_trains_and_evaluates(name, tiny_imagenet, tmp_path):
    cfg = tiny_cfg(name, tiny_imagenet, tmp_path)
    metrics = train_and_evaluate(cfg)
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0


# ------------------------------------ mmseg projects/van full checkpoints
def official_full_state(state: Dict, mmseg_mlp: bool) -> Dict:
    """A segmentor state dict with the backbone in the official names.

    ``mmseg_mlp``: the MLP's depthwise conv as mmseg ``projects/van`` names
    it (``mlp.dwconv``, its MSCAN ``Mlp``) instead of VAN-Segmentation's
    ``mlp.dwconv.dwconv``.
    """
    backbone = {
        k[len('backbone.') :]: v
        for k, v in state.items()
        if k.startswith('backbone.')
    }
    official = to_official(backbone)
    if mmseg_mlp:
        official = {
            k.replace('.mlp.dwconv.dwconv.', '.mlp.dwconv.'): v
            for k, v in official.items()
        }
    out = {'backbone.' + k: v for k, v in official.items()}
    out.update(
        (k, v) for k, v in state.items() if not k.startswith('backbone.')
    )
    return out


def build_segmentor(name: str):
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    cfg = load(name)
    sync_bn_to_bn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('mmseg_mlp', [True, False])
@pytest.mark.parametrize('name', ['fpn_van_lka_b0', 'upernet_van_lka_b0'])
def test_load_official_full_segmentor(name, mmseg_mlp, tmp_path):
    torch.manual_seed(0)
    src = build_segmentor(name)
    randomize_(src)  # distinct BN statistics, so a miss would show
    state = official_full_state(src.state_dict(), mmseg_mlp)
    assert 'backbone.block1.0.attn.spatial_gating_unit.conv0.weight' in state
    assert 'backbone.patch_embed1.proj.weight' in state
    assert any(k.startswith('decode_head.') for k in state)
    dwconv = 'backbone.block1.0.mlp.dwconv.' + (
        'weight' if mmseg_mlp else 'dwconv.weight'
    )
    assert dwconv in state
    path = tmp_path / 'official.pth'
    torch.save({'meta': {}, 'state_dict': state}, path)

    dst = build_segmentor(name)
    x = torch.randn(1, 3, CROP, CROP)
    src.eval(), dst.eval()
    with torch.no_grad():
        before = dst(x, mode='tensor')
        load_checkpoint(dst, str(path), map_location='cpu', strict=True)
        expected, got = src(x, mode='tensor'), dst(x, mode='tensor')
    assert not torch.allclose(before, expected)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for key, value in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[key], value)


def test_official_checkpoint_into_lska_segmentor_fails(tmp_path):
    """An LKA checkpoint must not load silently into an LSKA segmentor."""
    src = build_segmentor('fpn_van_lka_b0')
    path = tmp_path / 'official.pth'
    state = official_full_state(src.state_dict(), mmseg_mlp=True)
    torch.save({'state_dict': copy.deepcopy(state)}, path)
    dst = build_segmentor('fpn_van_lska_b0')
    with pytest.raises(ValueError, match='LKA'):
        load_checkpoint(dst, str(path), map_location='cpu', strict=False)
