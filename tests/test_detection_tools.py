# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""End-to-end CPU runs of the train/test tools on a tiny COCO dataset:
2-process ``dist_train.sh`` (gloo), ``--resume``, ``dist_test.sh`` with COCO
bbox/segm mAP, ``mim test mmdet`` and the missing-dataset message."""

import pickle
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List

import pytest
import torch

import projects.van_lska  # noqa: F401  (safe loading of mmengine ckpts)
from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.testing.tiny_data import (
    cli_options,
    tiny_data_options,
)
from projects.van_lska.testing.tiny_data import (
    tiny_pipeline_cli_options as tiny_pipelines,
)

pytestmark = pytest.mark.slow

CONFIG = str(REPO / 'configs' / 'maskrcnn_van_lska_b0.py')
MAP_RE = r'coco/{}_mAP: (-?\d+\.\d+)'


def _options(data: Path) -> List[str]:
    """Tiny data and scales, no ImageNet init, keep low-score boxes."""
    return (
        cli_options(tiny_data_options(data))
        + tiny_pipelines()
        + [
            'model.backbone.init_cfg=None',
            'model.test_cfg.rcnn.score_thr=0.0',
            'default_hooks.logger.interval=1',
        ]
    )


def _load(path: Path) -> dict:
    # torch >= 2.6 default: weights_only=True (safe loader)
    return torch.load(str(path), map_location='cpu')


def _adam_steps(ckpt: dict) -> set:
    return {float(s['step']) for s in ckpt['optimizer']['state'].values()}


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_coco, run_tool) -> SimpleNamespace:
    """Train 1 epoch (2 iters of 2 processes x 1 image), then resume to 2."""
    root = tmp_path_factory.mktemp('tools')
    data = tiny_coco
    work = root / 'work'
    train = ['tools/dist_train.sh', CONFIG, '2', '--work-dir', work]
    first = run_tool(
        train + ['--cfg-options', *_options(data), 'train_cfg.max_epochs=1'],
        cwd=root,
    )
    assert first.returncode == 0, first.output[-3000:]
    resumed = run_tool(
        train
        + ['--resume', '--cfg-options', *_options(data)]
        + ['train_cfg.max_epochs=2'],
        cwd=root,
    )
    assert resumed.returncode == 0, resumed.output[-3000:]
    return SimpleNamespace(
        root=root,
        data=data,
        work=work,
        first=first,
        resumed=resumed,
        run_tool=run_tool,
    )


def test_dist_train_two_cpu_processes(trained):
    out = trained.first.output
    assert 'Distributed training: True' in out
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*eta: .*loss: \d', out)
    assert (trained.work / 'epoch_1.pth').is_file()
    ckpt = _load(trained.work / 'epoch_1.pth')
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2
    # runs go to timestamped sub-folders; nothing is overwritten
    assert len([p for p in trained.work.iterdir() if p.is_dir()]) == 2


def test_resume_restores_iteration_and_optimizer(trained):
    out = trained.resumed.output
    assert 'resumed epoch: 1, iter: 2' in out
    assert 'Epoch(train) [2][1/2]' in out
    assert 'Epoch(train) [1]' not in out  # epoch 1 was not redone
    before = _load(trained.work / 'epoch_1.pth')
    after = _load(trained.work / 'epoch_2.pth')
    assert after['meta']['epoch'] == 2 and after['meta']['iter'] == 4
    assert after['message_hub']['runtime_info']['iter'] == 3
    # AdamW step counts continue (2 -> 4); a fresh optimizer would give 2
    assert _adam_steps(before) == {2.0}
    assert _adam_steps(after) == {4.0}


def test_dist_test_prints_coco_map(trained):
    out_file = trained.root / 'preds.pkl'
    proc = trained.run_tool(
        [
            'tools/dist_test.sh',
            CONFIG,
            trained.work / 'epoch_2.pth',
            '2',
            '--work-dir',
            trained.root / 'test',
            '--out',
            out_file,
            '--cfg-options',
            *_options(trained.data),
        ],
        cwd=trained.root,
    )
    assert proc.returncode == 0, proc.output[-3000:]
    for metric in ('bbox', 'segm'):
        value = float(re.search(MAP_RE.format(metric), proc.output)[1])
        assert 0.0 <= value <= 1.0
    assert out_file.is_file()


def test_mim_test_prints_coco_map(trained):
    proc = trained.run_tool(
        [
            sys.executable,
            '-m',
            'mim',
            'test',
            'mmdet',
            CONFIG,
            '--checkpoint',
            trained.work / 'epoch_2.pth',
            '--work-dir',
            trained.root / 'mim',
            '--cfg-options',
            *_options(trained.data),
        ],
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.output[-3000:]
    for metric in ('bbox', 'segm'):
        assert re.search(MAP_RE.format(metric), proc.output), metric


def test_missing_dataset_prints_layout(tmp_path, run_tool):
    proc = run_tool(
        ['tools/train.py', CONFIG, '--work-dir', tmp_path], cwd=tmp_path
    )
    assert proc.returncode == 1
    assert 'Dataset not found' in proc.stderr
    assert 'data/coco/annotations/instances_train2017.json' in proc.stderr
    assert 'train2017/' in proc.stderr and 'Expected layout' in proc.stderr
    assert 'Traceback' not in proc.output
    assert not any(tmp_path.iterdir())  # nothing written


def _test_tool(trained, name: str, *extra) -> List[dict]:
    """``tools/test.py`` (one process) on the trained checkpoint; returns
    the predictions it dumped with ``--out``."""
    out_file = trained.root / f'{name}.pkl'
    proc = trained.run_tool(
        ['tools/test.py', CONFIG]
        + [trained.work / 'epoch_2.pth', *extra]
        + ['--work-dir', trained.root / name, '--out', out_file]
        + ['--cfg-options', *_options(trained.data)],
        cwd=trained.root,
    )
    assert proc.returncode == 0, proc.output[-3000:]
    proc.preds = pickle.loads(out_file.read_bytes())
    return proc


def test_test_tool_deploy_gives_the_same_predictions(trained):
    """``tools/test.py --deploy``: the folded backbone inside Mask R-CNN
    gives the normal path's boxes, scores and labels."""
    normal = _test_tool(trained, 'normal')
    fast = _test_tool(trained, 'deploy', '--deploy')
    assert 'switched 1 VAN backbone(s) to deploy mode: backbone' in (
        fast.output
    )
    assert 'deploy mode' not in normal.output
    assert len(fast.preds) == len(normal.preds) > 0
    compared = 0
    for a, b in zip(normal.preds, fast.preds):
        pa, pb = a['pred_instances'], b['pred_instances']
        assert torch.equal(pa['labels'], pb['labels'])
        torch.testing.assert_close(
            pa['scores'], pb['scores'], atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            pa['bboxes'], pb['bboxes'], atol=1e-2, rtol=0
        )
        compared += len(pa['labels'])
    assert compared > 0
