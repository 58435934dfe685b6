# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""``tools/analysis_tools/get_flops.py`` on a detection, a segmentation and
a classification config, and 2-process CPU ``tools/dist_train.sh`` runs of
a segmentation and a classification config on tiny data."""

import importlib
import json
from pathlib import Path
from typing import Dict, List

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.testing.tiny_data import (
    IMAGENET_CLASSES,
    make_tiny_ade20k,
    make_tiny_imagenet,
)

GET_FLOPS = 'tools/analysis_tools/get_flops.py'


def get_flops(run_tool, config: str, *args: str) -> Dict:
    """Run the tool with ``--json`` and parse its stdout."""
    proc = run_tool([GET_FLOPS, config, '--json', *args])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def direct_parameter_count(config: str, options: Dict = None) -> int:
    """Build the config's model in this process and count its parameters."""
    cfg = Config.fromfile(str(REPO / config))
    if options:
        cfg.merge_from_dict(options)
    scope = cfg.default_scope
    init_default_scope(scope)
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model = registry.build(cfg.model)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    'config, args, codebase, shape',
    [
        # classification at its default 224x224
        ('configs/van_lka_b0_in1k.py', [], 'mmpretrain', [224, 224]),
        # segmentation and detection at small shapes to keep the CPU time low
        ('configs/upernet_van_lska_b0.py', ['--shape', '128'], 'mmseg', None),
        (
            'configs/maskrcnn_van_lka_b0.py',
            ['--shape', '160', '224'],
            'mmdet',
            [160, 224],
        ),
    ],
)
def test_get_flops_counts_all_parameters(
    config, args, codebase, shape, run_tool
):
    result = get_flops(run_tool, config, *args)
    assert result['codebase'] == codebase
    assert result['input_shape'] == (shape or [128, 128])
    assert result['params'] == direct_parameter_count(config)
    assert result['flops'] > 0
    assert sum(result['flops_by_part'].values()) == result['flops']
    assert result['flops_by_part']['backbone'] > 0


def test_get_flops_matches_paper_and_scales(run_tool):
    """VAN-B0: 0.9 GFLOPs at 224 (paper); a conv net's FLOPs grow with the
    pixel count."""
    config = 'configs/van_lka_b0_in1k.py'
    small = get_flops(run_tool, config)
    assert abs(small['gflops'] - 0.9) < 0.05
    big = get_flops(run_tool, config, '--shape', '448')
    assert big['input_shape'] == [448, 448]
    assert 3.9 < big['flops'] / small['flops'] < 4.1


def test_get_flops_cfg_options_and_text_output(tmp_path, run_tool):
    """--cfg-options changes the model; the text report and a --json file
    come out together."""
    config = 'configs/van_lska_b0_in1k.py'
    out = tmp_path / 'flops.json'
    option = 'model.backbone.kernel_size=35'
    proc = run_tool(
        [GET_FLOPS, config, '--shape', '64']
        + ['--cfg-options', option, '--json', out]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Params:' in proc.stdout and 'FLOPs:' in proc.stdout
    assert 'backbone' in proc.stdout
    result = json.loads(out.read_text())
    assert result['params'] == direct_parameter_count(
        config, {'model.backbone.kernel_size': 35}
    )
    assert result['params'] != direct_parameter_count(config)


def test_get_flops_rejects_bad_shape(run_tool):
    proc = run_tool(
        [GET_FLOPS, 'configs/van_lka_b0_in1k.py', '--shape', '1', '2', '3']
    )
    assert proc.returncode != 0
    assert '--shape takes H W' in proc.stderr
    assert 'Traceback' not in proc.stderr


# ---------------------------------------------------------- dist_train.sh
def dist_train(
    run_tool, config: str, work_dir: Path, options: List[str]
) -> str:
    """``tools/dist_train.sh CONFIG 2`` on the CPU; returns its log."""
    proc = run_tool(
        ['tools/dist_train.sh', config, '2', '--work-dir', work_dir]
        + ['--cfg-options', *options],
        timeout=900,
    )
    assert proc.returncode == 0, proc.output[-5000:]
    return proc.output


SMALL = 32  # crop size of the runs below


@pytest.mark.slow
def test_dist_train_segmentation(tmp_path, run_tool):
    root = make_tiny_ade20k(tmp_path / 'ADEChallengeData2016', n_train=4)
    scale = f'({2 * SMALL},{SMALL})'
    pipeline = 'train_dataloader.dataset.pipeline'
    val_pipeline = 'val_dataloader.dataset.pipeline'
    options = [
        'model.backbone.init_cfg=None',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'{pipeline}.2.scale={scale}',
        f'{pipeline}.3.crop_size=({SMALL},{SMALL})',
        f'{val_pipeline}.1.scale={scale}',
        f'model.data_preprocessor.size=({SMALL},{SMALL})',
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
    ]
    log = dist_train(
        run_tool, 'configs/fpn_van_lska_b0.py', tmp_path / 'work', options
    )
    assert 'Iter(train) [2/2]' in log
    assert 'mIoU' in log
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


@pytest.mark.slow
def test_dist_train_classification(tmp_path, run_tool):
    root = make_tiny_imagenet(tmp_path / 'imagenet', per_class=4)
    classes = '[' + ','.join(f"'{c}'" for c in IMAGENET_CLASSES) + ']'
    pipeline = 'train_dataloader.dataset.pipeline'
    val_pipeline = 'val_dataloader.dataset.pipeline'
    options = [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'train_dataloader.dataset.metainfo.classes={classes}',
        f'val_dataloader.dataset.metainfo.classes={classes}',
        f'test_dataloader.dataset.metainfo.classes={classes}',
        'train_dataloader.batch_size=3',  # 12 images / 2 ranks / 3 = 2 iters
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'{pipeline}.1.scale={SMALL}',
        f'{val_pipeline}.1.scale={SMALL + 8}',
        f'{val_pipeline}.2.crop_size={SMALL}',
        'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1',
    ]
    log = dist_train(
        run_tool, 'configs/van_lska_b0_in1k.py', tmp_path / 'work', options
    )
    assert 'Epoch(train) [1][2/2]' in log
    assert 'accuracy/top1' in log
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


# ------------------------------------------ missing dataset / weights
def train_py(run_tool, config: str, cwd: Path, options: List[str]):
    return run_tool(
        ['tools/train.py', REPO / config, '--work-dir', cwd / 'work']
        + (['--cfg-options', *options] if options else []),
        cwd=cwd,
    )


@pytest.mark.parametrize(
    'config, folder',
    [
        ('configs/upernet_van_lka_b1.py', 'ADEChallengeData2016'),
        ('configs/van_lska_b2_in1k.py', 'imagenet'),
    ],
)
def test_train_without_dataset_says_where_to_put_it(
    config, folder, tmp_path, run_tool
):
    proc = train_py(run_tool, config, tmp_path, [])
    assert proc.returncode != 0
    assert 'Dataset not found' in proc.stderr
    assert folder in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_lska_segmentor_without_weights_explains(
    tmp_path, tiny_ade20k, run_tool
):
    """The local LSKA checkpoint is missing (cwd has no data/pretrained)."""
    options = [
        f'train_dataloader.dataset.data_root={tiny_ade20k}',
        f'val_dataloader.dataset.data_root={tiny_ade20k}',
    ]
    proc = train_py(run_tool, 'configs/fpn_van_lska_b1.py', tmp_path, options)
    assert proc.returncode != 0
    assert 'data/pretrained/van_lska_b1_k23.pth' in proc.stderr
    assert 'van_convert.py' in proc.stderr
    assert 'model.backbone.init_cfg=None' in proc.stderr


def test_codebase_and_sync_bn_rules(tmp_path):
    """The two config rules every tool shares (apis/config.py)."""
    from projects.van_lska.apis.config import codebase_of, sync_bn_to_bn

    assert codebase_of(Config(dict(default_scope='mmseg'))) == 'mmseg'
    (tmp_path / 'x.py').write_text("default_scope = 'mmyolo'\n")
    bad = Config.fromfile(str(tmp_path / 'x.py'))
    with pytest.raises(
        ValueError,
        match=r'x\.py: default_scope must be one of mmdet, mmseg, '
        r"mmpretrain; got 'mmyolo'",
    ):
        codebase_of(bad)
    with pytest.raises(ValueError, match='mmdet, mmseg; got .mmpretrain'):
        codebase_of(dict(default_scope='mmpretrain'), ('mmdet', 'mmseg'))
    node = dict(
        a=dict(type='SyncBN', requires_grad=True),
        b=[dict(type='MMSyncBN'), (dict(type='TorchSyncBN'),)],
        c=dict(type='BN'),
        d=dict(type='LN'),
    )
    assert sync_bn_to_bn(node) == 3
    assert node['a'] == dict(type='BN', requires_grad=True)
    assert [n['type'] for n in (node['b'][0], node['b'][1][0])] == ['BN'] * 2
    assert node['c']['type'] == 'BN' and node['d']['type'] == 'LN'


def test_write_text_atomic_keeps_the_old_file_on_failure(tmp_path):
    from projects.van_lska.apis.files import write_text_atomic

    path = tmp_path / 'sub' / 'model-index.yml'
    write_text_atomic(path, 'one\n')
    assert path.read_text() == 'one\n'
    path.chmod(0o640)
    write_text_atomic(path, 'two\n')
    assert path.read_text() == 'two\n'
    assert path.stat().st_mode & 0o777 == 0o640  # the old file's mode
    with pytest.raises(TypeError):
        write_text_atomic(path, b'not text')
    assert path.read_text() == 'two\n'
    assert [p.name for p in path.parent.iterdir()] == ['model-index.yml']
