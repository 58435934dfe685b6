# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Stopping a training cleanly: DataLoader workers die with the trainer,
SIGTERM stops it like Ctrl-C, and the user is told how to continue.

**Orphaned workers.** A DataLoader worker whose trainer is killed normally
notices within seconds and exits, but a worker that has batches queued for
the dead trainer (large non-tensor data such as mmdet's bitmap masks) hangs
for good at exit, in multiprocessing's queue feeder thread writing into a
full pipe. :func:`worker_init_fn` asks the kernel to SIGKILL each worker as
soon as its trainer dies (Linux ``PR_SET_PDEATHSIG``), then seeds the
worker exactly as mmengine's default ``worker_init_fn`` does.
:func:`guard_dataloader_workers` puts it into the dataloader configs; the
runner set-up of the tools calls it for every config (a config's own
``worker_init_fn`` is kept).

**SIGTERM.** :func:`sigterm_raises` turns SIGTERM into
:class:`Interrupted` (a ``KeyboardInterrupt``), so that a terminated
training unwinds as after Ctrl-C: DataLoader workers are shut down, a save
in progress is completed first (:class:`~projects.van_lska.engine.
checkpoint_hook.AtomicCheckpointHook`), and :func:`interrupted_message` says
where the last complete checkpoint is.
"""

import ctypes
import os
import random
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.registry import FUNCTIONS

from .checkpoint_hook import latest_complete_checkpoint

_PR_SET_PDEATHSIG = 1
#: The dataloaders :func:`guard_dataloader_workers` looks at.
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies
    (Linux only; a no-op elsewhere).

    Returns:
        bool: whether the request was made.
    """
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request
        os.kill(os.getpid(), sig)
    return True


@FUNCTIONS.register_module(name='van_lska_worker_init_fn')
def worker_init_fn(
    worker_id: int,
    num_workers: int = 1,
    rank: int = 0,
    seed: Optional[int] = None,
    disable_subprocess_warning: bool = False,
) -> None:
    """``DataLoader`` worker start: die with the trainer, then seed.

    Seeding is mmengine's default (``num_workers * rank + worker_id +
    seed`` for numpy, ``random`` and torch). With ``seed=None`` (the config
    fixes none) the worker's torch seed, which the DataLoader derives from
    the trainer's random state, seeds numpy and ``random``.
    """
    die_with_parent()
    if seed is None:
        worker_seed = torch.initial_seed() % 2**32
    else:
        worker_seed = num_workers * rank + worker_id + seed
        torch.manual_seed(worker_seed)
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)
    if disable_subprocess_warning and worker_id != 0:
        import warnings

        warnings.simplefilter('ignore')


def guard_dataloader_workers(cfg) -> int:
    """Give every dataloader config with workers :func:`worker_init_fn`, in
    place (a config's own ``worker_init_fn`` is kept).

    Args:
        cfg (mmengine.Config): the config, before the runner is built.

    Returns:
        int: the number of dataloader configs changed.
    """
    randomness = cfg.get('randomness') or {}
    seed = randomness.get('seed')
    if seed is not None and randomness.get('diff_rank_seed'):
        seed += int(os.environ.get('RANK', 0))
    rank = int(os.environ.get('RANK', 0))
    changed = 0
    for name in DATALOADERS:
        loader = cfg.get(name)
        if not isinstance(loader, dict) or 'worker_init_fn' in loader:
            continue
        workers = loader.get('num_workers') or 0
        if workers <= 0:
            continue
        loader['worker_init_fn'] = dict(
            type='van_lska_worker_init_fn',
            num_workers=workers,
            rank=rank,
            seed=seed,
            disable_subprocess_warning=loader.pop(
                'disable_subprocess_warning', False
            ),
        )
        changed += 1
    return changed


class Interrupted(KeyboardInterrupt):
    """A training stopped by a signal (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` in the main
    thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_message(work_dir: str, signum: Optional[int] = None) -> str:
    """What to tell a user whose training was stopped by ``signum``
    (``None``: Ctrl-C)."""
    name = signal.Signals(signum).name if signum else 'SIGINT (Ctrl-C)'
    path, _ = latest_complete_checkpoint(work_dir)
    where = (
        f'last complete checkpoint: {path}'
        if path
        else f'no checkpoint was saved in {work_dir} yet'
    )
    return (
        f'Training stopped by {name} ({where}). Continue it with the same '
        f'command plus --resume (work dir {work_dir}).'
    )
