# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Fixtures shared by the tests.

* ``repo``: the checkout (``configs/``, ``tools/``, ``model-index.yml``);
* ``tiny_coco``, ``tiny_ade20k``, ``tiny_imagenet``: tiny datasets made once
  per session in a temporary folder (read-only for the tests; a test that
  needs other sizes calls the builders of
  :mod:`projects.van_lska.testing.tiny_data` itself);
* ``random_backbone``: a backbone with seeded, non-trivial weights
  (:func:`projects.van_lska.testing.randomize.randomize_`);
* ``one_thread``: one intra-op thread for a module (small convolutions on
  a shared CPU are much faster that way);
* ``run_tool``: runs a script of ``tools/`` (or any command) in a
  subprocess, as a user would.

A fast inner loop skips the end-to-end runs: ``python -m pytest -m "not
slow" tests``; CI runs everything, two files at a time (``-n 2 --dist
loadfile``: module-scoped fixtures such as a trained model are built once).
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Union

import pytest
import torch

from projects.van_lska.apis.config import REPO_ROOT
from projects.van_lska.apis.runner import free_port
from projects.van_lska.testing.randomize import randomize_
from projects.van_lska.testing.tiny_data import (
    make_tiny_ade20k,
    make_tiny_coco,
    make_tiny_imagenet,
)

# The README's test command runs two pytest-xdist workers (`-n 2`), one per
# core of a small machine: each worker, and the tools it starts, then use one
# intra-op thread instead of fighting over the cores.
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def repo() -> Path:
    """The checkout the package is installed from (editable)."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> Path:
    """:func:`make_tiny_coco`: 4 train and 2 val images, COCO format."""
    return make_tiny_coco(tmp_path_factory.mktemp('coco'))


@pytest.fixture(scope='session')
def tiny_ade20k(tmp_path_factory) -> Path:
    """:func:`make_tiny_ade20k`: 2 training and 2 validation images."""
    root = tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016'
    return make_tiny_ade20k(root)


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory) -> Path:
    """:func:`make_tiny_imagenet`: 3 classes x 2 images, train and val."""
    return make_tiny_imagenet(tmp_path_factory.mktemp('imagenet'))


@pytest.fixture
def random_backbone() -> Callable[..., torch.nn.Module]:
    """``random_backbone(cls, seed=0, everything=True, **kwargs)``: ``cls(
    **kwargs)`` (default ``arch='b0'``) built under ``seed``, weights from
    :func:`randomize_`, in eval mode."""

    def build(cls, seed: int = 0, everything: bool = True, **kwargs):
        kwargs.setdefault('arch', 'b0')
        torch.manual_seed(seed)
        model = cls(**kwargs)
        return randomize_(model, seed, everything=everything).eval()

    return build


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for the module: on a small shared CPU, OpenMP
    threads that spin while descheduled make small ops up to 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run_tool(
    cmd: Sequence[Union[str, Path]],
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    if cmd[0].endswith(('.py', '.sh')):
        script = Path(cmd[0])
        if not script.is_absolute():
            script = REPO_ROOT / script
        runner = sys.executable if cmd[0].endswith('.py') else 'bash'
        cmd = [runner, str(script), *cmd[1:]]
    full_env = {
        **os.environ,
        'OMP_NUM_THREADS': '1',  # as torch.distributed.run does
        'PYTHON': sys.executable,  # for tools/dist_*.sh
        'PORT': str(free_port()),  # for tools/dist_*.sh
        **(env or {}),
    }
    full_env.pop('CUDA_VISIBLE_DEVICES', None)
    proc = subprocess.run(
        cmd,
        cwd=str(cwd or REPO_ROOT),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    proc.output = proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope='session')
def run_tool() -> Callable[..., subprocess.CompletedProcess]:
    """``run_tool(cmd, cwd=REPO, env=None, timeout=600)``: run ``cmd``
    (a ``.py`` script with this Python, a ``.sh`` script with bash; relative
    script paths are from the checkout) with ``OMP_NUM_THREADS=1`` and a
    free ``PORT``; returns the ``CompletedProcess`` with ``.output`` =
    stdout + stderr."""
    return _run_tool
