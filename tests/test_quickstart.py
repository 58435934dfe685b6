# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The quick start end to end on tiny data: synthetic dataset generation
(deterministic by seed), a shortened training schedule with evaluation and
drawings for Mask R-CNN and Semantic FPN, and demo/image_demo.py."""

import filecmp
import importlib.util
import json
import math
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from projects.van_lska.datasets import SEG_CLASSES, generate_dataset

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def _load(relpath: str, name: str):
    """Import a script by path (keeps tools/ and demo/ off sys.path)."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO_ROOT, relpath)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quickstart = _load('tools/quickstart.py', 'van_lska_quickstart')
image_demo = _load('demo/image_demo.py', 'van_lska_image_demo')

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
    args = quickstart.parse_args(['--task', 'seg'])
    first = quickstart.make_work_dir(args)
    open(osp.join(first, 'x'), 'w').close()
    second = quickstart.make_work_dir(args)
    assert first != second and osp.isdir(second)
    assert first.startswith(str(tmp_path / 'work_dirs' / 'quickstart'))
    args = quickstart.parse_args(['--work-dir', first])
    with pytest.raises(SystemExit, match='--force'):
        quickstart.make_work_dir(args)
    args = quickstart.parse_args(['--work-dir', first, '--force'])
    assert quickstart.make_work_dir(args) == first


def _run_quickstart(tmp_path, task):
    data = str(tmp_path / 'shapes')
    work_dir = str(tmp_path / f'wd_{task}')
    argv = ['--task', task, '--data-root', data, '--work-dir', work_dir]
    result = quickstart.main(
        argv + SMALL + ['--iters', '2', '--num-vis', '2', '--eval-untrained']
    )
    assert osp.isfile(osp.join(data, 'coco/annotations/instances_val.json'))
    assert osp.isfile(result['checkpoint'])
    with open(osp.join(work_dir, 'metrics.json')) as f:
        written = json.load(f)
    for stage in ('untrained', 'trained'):
        assert written[stage] == result[stage]
        assert all(isinstance(v, float) for v in written[stage].values())
    assert len(result['pictures']) == 2
    for png in result['pictures']:
        img = cv2.imread(png)
        # Ground truth and prediction side by side.
        assert png.endswith('.png') and img.shape[1] == 2 * img.shape[0]
    # A second run into the same work dir is refused.
    with pytest.raises(SystemExit):
        quickstart.main(argv + SMALL + ['--iters', '1'])
    return data, result


def _run_demo(tmp_path, image, result):
    out_dir = str(tmp_path / 'demo_out')
    written = image_demo.main(
        [image, result['config'], result['checkpoint'], '--out-dir', out_dir]
    )
    assert len(written) == 1 and os.path.getsize(written[0]) > 0


@pytest.mark.slow
def test_quickstart_det_and_demo(tmp_path):
    data, result = _run_quickstart(tmp_path, 'det')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        value = result['trained'][key]
        assert isinstance(value, float) and math.isfinite(value)
        assert -1.0 <= value <= 1.0
    _run_demo(tmp_path, osp.join(data, 'coco/val/000000.jpg'), result)


@pytest.mark.slow
def test_quickstart_seg_and_demo(tmp_path):
    data, result = _run_quickstart(tmp_path, 'seg')
    for key in ('mIoU', 'aAcc'):
        value = result['trained'][key]
        assert isinstance(value, float) and 0.0 <= value <= 100.0
    _run_demo(
        tmp_path, osp.join(data, 'ade/images/validation/000001.jpg'), result
    )
