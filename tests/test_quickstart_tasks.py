# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""``tools/quickstart.py --task cls|yolo``: the command line reaches the
classification and YOLO quick starts with their own defaults, and a tiny
run of each ends with its metrics file."""

import json
import subprocess
import sys

import pytest

from projects.van_lska.apis.config import REPO_ROOT

TOOL = str(REPO_ROOT / 'tools' / 'quickstart.py')
TINY = ['--num-train', '8', '--num-val', '4', '--size', '64', '64']


def _run(args, cwd):
    out = subprocess.run(
        [sys.executable, TOOL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_task_cls_runs_and_writes_metrics(tmp_path):
    work = tmp_path / 'work'
    _run(
        ['--task', 'cls', '--epochs', '1', '--num-vis', '1']
        + ['--data-root', str(tmp_path / 'data'), '--work-dir', str(work)]
        + TINY,
        tmp_path,
    )
    result = json.loads((work / 'metrics.json').read_text())
    assert result['task'] == 'cls'
    assert 0 <= result['trained']['accuracy/top1'] <= 100
    assert 0 <= result['shape_bias'] <= 1


@pytest.mark.slow
def test_task_yolo_runs_offline_and_writes_metrics(tmp_path):
    work = tmp_path / 'work'
    stdout = _run(
        ['--task', 'yolo', '--epochs', '1', '--imgsz', '64', '--batch', '4']
        + ['--yolo-models', 'yolo11n-lska.yaml']
        + ['--data-root', str(tmp_path / 'data'), '--work-dir', str(work)]
        + TINY,
        tmp_path,
    )
    assert 'yolo11n-lska' in stdout
    rows = json.loads((work / 'metrics.json').read_text())
    assert len(rows) == 1
