# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The OpenMMLab tools a user reaches for, on our configs (tiny data, CPU):

* ``tools/test.py --show-dir`` draws every test image into the work dir
  (mmseg: one in 50 otherwise, into ``./show``; mmpretrain likewise);
* ``SegOverlayVisualizer`` tints only class pixels, as mmseg's draws them,
  and takes a transposed image (mmseg's ``browse_dataset``);
* ``mim run mmseg browse_dataset`` and ``mim run mmseg confusion_matrix`` on
  the quick-start segmentation config;
* TensorBoard through the README's ``--cfg-options`` line, and ``mim run
  mmdet analyze_logs plot_curve`` on a training log of ours.
"""

import json
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import projects.van_lska  # noqa: F401  (registers our modules)
from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import drop_pretrained, sync_bn_to_bn
from projects.van_lska.testing.checkpoints import save_initialised_checkpoint
from projects.van_lska.testing.tiny_data import (
    IMAGENET_CLASSES,
    cli_options,
    tiny_data_options,
)

QUICKSTART_SEG = REPO / 'configs' / 'quickstart' / 'fpn_van_lska_b0_shapes.py'
#: The README's one line that turns TensorBoard on.
TENSORBOARD = 'visualizer.vis_backends.0.type=TensorboardVisBackend'


def _tiny(config: Path, tmp_path: Path, loaders, **roots) -> Path:
    """``config`` without ImageNet weights or SyncBN, its ``loaders`` on
    one process without workers, dumped to ``tmp_path``."""
    cfg = Config.fromfile(str(config))
    drop_pretrained(cfg.model)
    sync_bn_to_bn(cfg)
    for loader in loaders:
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        for key, value in roots.items():
            cfg[loader].dataset[key] = value
    out = tmp_path / Path(config).name
    cfg.dump(str(out))
    return out


# ------------------------------------------------------------ --show-dir
@pytest.mark.slow
def test_mmseg_show_dir_draws_every_image_in_the_work_dir(
    tiny_ade20k, tmp_path, monkeypatch
):
    from projects.van_lska.apis.test import run_test

    monkeypatch.chdir(tmp_path)  # a stray ./show would land here
    config = _tiny(
        REPO / 'configs' / 'fpn_van_lska_b0.py',
        tmp_path,
        ('test_dataloader',),
        data_root=str(tiny_ade20k),
    )
    cfg = Config.fromfile(str(config))
    ckpt = save_initialised_checkpoint(cfg, tmp_path / 'model.pth')
    work = tmp_path / 'work'
    run_test(
        str(config),
        ckpt,
        work_dir=str(work),
        show_dir='show',
        # the configs name their visualizer 'visualizer': in one process
        # a second runner would reuse an earlier runner's (its save_dir)
        cfg_options={
            'experiment_name': 'show_dir_seg',
            'visualizer.name': 'show_dir_seg',
        },
    )
    pictures = sorted((work / 'show' / 'vis_data' / 'vis_image').glob('*'))
    assert len(pictures) == 2  # both validation images, not 1 in 50
    assert not (tmp_path / 'show').exists()
    h, w = np.asarray(Image.open(pictures[0])).shape[:2]
    assert w == 2 * 96 and h in (72, 80)  # ground truth | prediction


@pytest.mark.slow
def test_mmpretrain_show_dir_draws_every_image(
    tiny_imagenet, tmp_path, monkeypatch
):
    from projects.van_lska.apis.test import run_test

    monkeypatch.chdir(tmp_path)
    config = _tiny(
        REPO / 'configs' / 'van_lka_b0_in1k.py',
        tmp_path,
        ('test_dataloader',),
        data_root=str(tiny_imagenet),
        metainfo=dict(classes=list(IMAGENET_CLASSES)),
    )
    cfg = Config.fromfile(str(config))  # a 3-class classifier
    cfg.model.head.num_classes = cfg.data_preprocessor.num_classes = 3
    cfg.test_evaluator = dict(type='Accuracy', topk=(1,))
    cfg.dump(str(config))
    ckpt = save_initialised_checkpoint(cfg, tmp_path / 'model.pth')
    run_test(
        str(config),
        ckpt,
        work_dir=str(tmp_path / 'work'),
        show_dir='show',
        cfg_options={
            'experiment_name': 'show_dir_cls',
            'visualizer.name': 'show_dir_cls',
            'test_dataloader.batch_size': 2,
        },
    )
    assert len(list((tmp_path / 'work' / 'show').glob('*.png'))) == 6


# ----------------------------------------------------- the seg visualizer
def test_seg_visualizer_tints_only_class_pixels():
    from mmseg.structures import SegDataSample
    from mmseg.visualization import SegLocalVisualizer

    from projects.van_lska.engine.seg_visualizer import SegOverlayVisualizer

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    seg = np.zeros((40, 60), np.int64)  # background
    seg[5:20, 5:30] = 1
    seg[25:35, 30:55] = 2
    seg[0:2] = 255  # ignored
    sample = SegDataSample()
    from mmengine.structures import PixelData

    sample.gt_sem_seg = PixelData(data=torch.from_numpy(seg)[None])
    meta = dict(
        classes=('background', 'circle', 'star'),
        palette=[[0, 0, 0], [230, 25, 75], [255, 225, 25]],
    )
    drawn = {}
    for cls in (SegOverlayVisualizer, SegLocalVisualizer):
        vis = cls(name=f'vis_{cls.__name__}', alpha=0.5)
        vis.dataset_meta = meta
        # a transposed view, as mmseg's browse_dataset passes it
        view = np.ascontiguousarray(image.transpose(1, 0, 2)).transpose(
            1, 0, 2
        )
        assert not view.flags['C_CONTIGUOUS']
        vis.add_datasample(
            'x', view, sample, draw_pred=False, with_labels=False
        )
        drawn[cls] = vis.get_image()
    ours, mmseg = drawn[SegOverlayVisualizer], drawn[SegLocalVisualizer]
    classes = seg == 1
    classes |= seg == 2
    # class pixels as mmseg draws them; the rest untouched (mmseg: darker)
    assert np.abs(ours[classes].astype(int) - mmseg[classes]).max() <= 1
    assert (ours[~classes] == image[~classes]).all()
    assert (mmseg[~classes] < image[~classes]).mean() > 0.9


def _run_tool_ok(run_tool, cmd: List, cwd: Path):
    proc = run_tool(cmd, cwd=cwd)
    assert proc.returncode == 0, proc.output[-3000:]
    assert 'Traceback' not in proc.output
    return proc


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> Path:
    """A small synthetic shapes dataset (4 train, 3 val images)."""
    from projects.van_lska.datasets import generate_dataset

    root = tmp_path_factory.mktemp('shapes') / 'data'
    generate_dataset(str(root), seed=0, num_train=4, num_val=3)
    return root


@pytest.mark.slow
def test_mim_mmseg_browse_dataset(shapes, tmp_path, run_tool):
    out = tmp_path / 'browse'
    _run_tool_ok(
        run_tool,
        ['mim', 'run', 'mmseg', 'browse_dataset', QUICKSTART_SEG]
        + ['--output-dir', out, '--not-show', '--cfg-options']
        + [f'train_dataloader.dataset.data_root={shapes / "ade"}'],
        tmp_path,
    )
    assert len(list(out.glob('*.jpg'))) == 4


@pytest.mark.slow
def test_mim_mmseg_confusion_matrix(shapes, tmp_path, run_tool):
    """``tools/test.py --out`` writes the predicted maps; mmseg's
    confusion_matrix reads the class names of the quick-start config."""
    ckpt = save_initialised_checkpoint(
        Config.fromfile(str(QUICKSTART_SEG)), tmp_path / 'm'
    )
    root = f'test_dataloader.dataset.data_root={shapes / "ade"}'
    _run_tool_ok(
        run_tool,
        ['tools/test.py', QUICKSTART_SEG, ckpt, '--out', tmp_path / 'preds']
        + ['--work-dir', tmp_path / 'work', '--cfg-options', root]
        + ['test_dataloader.num_workers=0']
        + ['test_dataloader.persistent_workers=False'],
        tmp_path,
    )
    assert len(list((tmp_path / 'preds').glob('*.png'))) == 3
    _run_tool_ok(
        run_tool,
        ['mim', 'run', 'mmseg', 'confusion_matrix', QUICKSTART_SEG]
        + [tmp_path / 'preds', tmp_path / 'cm', '--cfg-options', root],
        tmp_path,
    )
    picture = Image.open(tmp_path / 'cm' / 'confusion_matrix.png')
    assert picture.width >= 1000


# ------------------------------------------------- logs and TensorBoard
def _train_tiny_retinanet(run_tool, data: Path, work: Path, extra=()):
    config = REPO / 'configs' / 'retinanet_van_lska_b0.py'
    cfg = Config.fromfile(str(config))
    options = cli_options(tiny_data_options(data))
    options += [
        'train_dataloader.dataset.pipeline.2.scale=(128,96)',
        'val_dataloader.dataset.pipeline.1.scale=(128,96)',
        'test_dataloader.dataset.pipeline.1.scale=(128,96)',
        'model.backbone.init_cfg=None',
        # an untrained head scores below 0.05: keep boxes, log COCO metrics
        'model.test_cfg.score_thr=0.0',
        'train_cfg.max_epochs=2',
        'train_cfg.val_interval=1',
        'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1',
    ]
    assert cfg.train_dataloader.dataset.pipeline[2].type == 'Resize'
    return _run_tool_ok(
        run_tool,
        ['tools/train.py', config, '--work-dir', work, '--cfg-options']
        + options
        + list(extra),
        work.parent,
    )


@pytest.mark.slow
def test_analyze_logs_plot_curve_on_our_log(tiny_coco, tmp_path, run_tool):
    work = tmp_path / 'work'
    _train_tiny_retinanet(run_tool, tiny_coco, work)
    (log,) = work.glob('*/vis_data/2*.json')
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sum('loss' in x for x in lines) == 4  # 2 epochs x 2 iterations
    out = tmp_path / 'curve.png'
    proc = _run_tool_ok(
        run_tool,
        ['mim', 'run', 'mmdet', 'analyze_logs', 'plot_curve', log]
        + ['--keys', 'loss', 'loss_cls', 'bbox_mAP', '--out', out],
        tmp_path,
    )
    assert 'save curve to' in proc.output
    assert Image.open(out).width > 500
    _run_tool_ok(
        run_tool,
        ['mim', 'run', 'mmdet', 'analyze_logs', 'cal_train_time', log],
        tmp_path,
    )


@pytest.mark.slow
def test_tensorboard_one_line(tiny_coco, tmp_path, run_tool):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    work = tmp_path / 'work'
    _train_tiny_retinanet(run_tool, tiny_coco, work, [TENSORBOARD])
    (events,) = work.glob('*/vis_data/events.out.tfevents.*')
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'loss', 'lr', 'coco/bbox_mAP'} <= set(tags)
    assert [e.step for e in acc.Scalars('loss')] == [1, 2, 3, 4]
