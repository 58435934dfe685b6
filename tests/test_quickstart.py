# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The quick start end to end on tiny data: synthetic dataset generation
(deterministic by seed), a shortened training schedule with evaluation and
drawings for Mask R-CNN and Semantic FPN, and demo/image_demo.py."""

import filecmp
import json
import math
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from projects.van_lska.apis.drawing import PANEL_WIDTH
from projects.van_lska.apis.quickstart import make_work_dir
from projects.van_lska.datasets import SEG_CLASSES, generate_dataset

SMALL = ['--num-train', '6', '--num-val', '2', '--size', '64', '64']


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root)
        for d, _, files in os.walk(root)
        for f in files
    )


def test_generator_deterministic_and_valid(tmp_path):
    kw = dict(num_train=4, num_val=2, size=(64, 80))
    generate_dataset(str(tmp_path / 'a'), seed=3, **kw)
    generate_dataset(str(tmp_path / 'b'), seed=3, **kw)
    generate_dataset(str(tmp_path / 'c'), seed=4, **kw)
    files = _files(tmp_path / 'a')
    assert files == _files(tmp_path / 'b') == _files(tmp_path / 'c')
    assert 'coco/annotations/instances_train.json' in files
    assert 'ade/annotations/validation/000001.png' in files
    _, mismatch, errors = filecmp.cmpfiles(
        tmp_path / 'a', tmp_path / 'b', files, shallow=False
    )
    assert not mismatch and not errors  # same seed: identical bytes
    _, mismatch, _ = filecmp.cmpfiles(
        tmp_path / 'a', tmp_path / 'c', files, shallow=False
    )
    assert 'coco/annotations/instances_train.json' in mismatch
    assert 'coco/train/000000.jpg' in mismatch

    coco = json.load(
        open(tmp_path / 'a' / 'coco/annotations/instances_train.json')
    )
    assert len(coco['images']) == 4
    assert [c['name'] for c in coco['categories']] == list(SEG_CLASSES[1:])
    assert coco['annotations'], 'no objects drawn'
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 80 and y + h <= 64
        assert 0 < ann['area'] <= w * h
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 4
        assert all(len(p) >= 6 for p in ann['segmentation'])
    # The semantic map holds the same objects as the instance masks.
    for img in coco['images']:
        name = img['file_name'].replace('.jpg', '.png')
        sem = cv2.imread(
            str(tmp_path / 'a/ade/annotations/training' / name),
            cv2.IMREAD_UNCHANGED,
        )
        assert sem.shape == (64, 80) and sem.dtype == np.uint8
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        assert int((sem > 0).sum()) == sum(a['area'] for a in anns)
        assert set(np.unique(sem)) <= set(range(len(SEG_CLASSES)))


def test_work_dir_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = make_work_dir(None, 'seg', force=False)
    open(osp.join(first, 'x'), 'w').close()
    second = make_work_dir(None, 'seg', force=False)
    assert first != second and osp.isdir(second)
    assert first.startswith(str(tmp_path / 'work_dirs' / 'quickstart' / 'seg'))
    with pytest.raises(SystemExit, match='--force'):
        make_work_dir(first, 'seg', force=False)
    assert make_work_dir(first, 'seg', force=True) == first


def _run_quickstart(tmp_path, task, run_tool, procs):
    """``tools/quickstart.py`` on a small dataset and 2 iterations in
    ``procs`` training processes; returns the data root and the run's
    ``metrics.json``."""
    data = str(tmp_path / 'shapes')
    work_dir = str(tmp_path / f'wd_{task}')
    argv = ['--task', task, '--data-root', data, '--work-dir', work_dir]
    proc = run_tool(
        ['tools/quickstart.py', *argv, *SMALL, '--procs', str(procs)]
        + ['--iters', '2', '--num-vis', '2', '--eval-untrained'],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.output[-3000:]
    if procs > 1:
        assert f'Training in {procs} processes' in proc.stdout
        log = proc.output
        assert 'Distributed training: True' in log, log[-3000:]
    assert 'Quick start (' in proc.stdout and 'trained model' in proc.stdout
    assert osp.isfile(osp.join(data, 'coco/annotations/instances_val.json'))
    with open(osp.join(work_dir, 'metrics.json')) as f:
        result = json.load(f)
    assert result['work_dir'] == work_dir
    assert result['processes'] == procs
    assert osp.isfile(result['checkpoint'])
    for stage in ('untrained', 'trained'):
        assert result[stage]
        assert all(isinstance(v, float) for v in result[stage].values())
    assert len(result['pictures']) == 2
    for png in result['pictures']:
        img = cv2.imread(png)
        # Ground truth and prediction side by side, each panel >= 512 px
        # wide under a title bar (tests/test_drawing.py checks the panels).
        assert png.endswith('.png') and img.shape[1] >= 2 * PANEL_WIDTH
        assert img.shape[0] > PANEL_WIDTH
    # A second run into the same work dir is refused.
    proc = run_tool(
        ['tools/quickstart.py', *argv, *SMALL, '--iters', '1'], cwd=tmp_path
    )
    assert proc.returncode != 0 and '--force' in proc.stderr
    assert 'Traceback' not in proc.stderr
    return data, result


def _run_demo(tmp_path, image, result, run_tool):
    out_dir = tmp_path / 'demo_out'
    proc = run_tool(
        ['demo/image_demo.py', image, result['config'], result['checkpoint']]
        + ['--out-dir', out_dir]
    )
    assert proc.returncode == 0, proc.output[-3000:]
    written = sorted((out_dir / 'vis').iterdir())
    assert len(written) == 1 and os.path.getsize(written[0]) > 0
    assert str(written[0]) in proc.stdout


@pytest.mark.slow
def test_quickstart_det_and_demo(tmp_path, run_tool):
    # One process here, two (the CPU default) in the seg test.
    data, result = _run_quickstart(tmp_path, 'det', run_tool, procs=1)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        value = result['trained'][key]
        assert isinstance(value, float) and math.isfinite(value)
        assert -1.0 <= value <= 1.0
    _run_demo(
        tmp_path, osp.join(data, 'coco/val/000000.jpg'), result, run_tool
    )


@pytest.mark.slow
def test_quickstart_seg_and_demo(tmp_path, run_tool):
    data, result = _run_quickstart(tmp_path, 'seg', run_tool, procs=2)
    for key in ('mIoU', 'aAcc'):
        value = result['trained'][key]
        assert isinstance(value, float) and 0.0 <= value <= 100.0
    _run_demo(
        tmp_path,
        osp.join(data, 'ade/images/validation/000001.jpg'),
        result,
        run_tool,
    )


def test_batch_split_between_processes():
    from projects.van_lska.apis.quickstart import split_batch

    assert split_batch(8, 2) == 4 and split_batch(8, 1) == 8
    with pytest.raises(SystemExit, match=r'--procs 3: .*batch size 8'):
        split_batch(8, 3)


@pytest.mark.parametrize(
    'cores, cuda, expected',
    [(2, False, (2, 1)), (1, False, (1, 1)), (16, False, (2, 1))]
    + [(2, True, (1, 1))],
)
def test_default_processes(monkeypatch, cores, cuda, expected):
    import torch

    from projects.van_lska.apis import quickstart

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(
        quickstart.os, 'sched_getaffinity', lambda pid: set(range(cores))
    )
    got = (quickstart.default_procs('det'), quickstart.default_procs('seg'))
    assert got == expected


def test_demo_codebases(repo):
    from projects.van_lska.apis.inference import demo_codebase

    assert demo_codebase(str(repo / 'configs' / 'van_lka_b0_in1k.py')) == (
        'mmpretrain'
    )
    assert demo_codebase(str(repo / 'configs' / 'fpn_van_lska_b0.py')) == (
        'mmseg'
    )
