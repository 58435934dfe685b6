# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Training of any of the suite's configs (``tools/train.py``).

The options are mmdet 3.3.0's ``tools/train.py`` options; the codebase
(mmdet, mmseg or mmpretrain) is the config's ``default_scope``.
"""

import glob
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from projects.van_lska.apis.config import codebase_of
from projects.van_lska.apis.errors import UserError, build_and_run, user_errors
from projects.van_lska.apis.runner import (
    check_checkpoint,
    check_data,
    check_pretrained,
    load_config,
    prepare_runtime,
)
from projects.van_lska.engine.checkpoint_hook import (
    latest_complete_checkpoint,
)
from projects.van_lska.weights.coverage import add_coverage_hook


def apply_train_options(
    cfg: Config,
    amp: bool = False,
    auto_scale_lr: bool = False,
    resume: Optional[str] = None,
) -> Config:
    """``--amp``, ``--auto-scale-lr`` and ``--resume`` (as mmdet's
    ``tools/train.py``), in place.

    Args:
        cfg: the config.
        amp: use ``AmpOptimWrapper`` (dynamic loss scale).
        auto_scale_lr: enable the config's ``auto_scale_lr``.
        resume: ``'auto'``: resume from the latest checkpoint of the work
            dir; a path: resume from that checkpoint; ``None``: no resume.

    Raises:
        RuntimeError: ``auto_scale_lr`` without ``auto_scale_lr.enable``
            and ``auto_scale_lr.base_batch_size`` in the config.
        UserError: AMP on a machine without an accelerator.
    """
    if amp:
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if (cfg.get('optim_wrapper') or {}).get('type') == 'AmpOptimWrapper':
        from mmengine.device import get_device

        if get_device() == 'cpu':
            raise UserError(
                '--amp (AmpOptimWrapper) needs a GPU (CUDA, NPU, MLU or '
                'MUSA) and this machine has none; train without --amp '
                '(float32 on the CPU).'
            )

    if auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if scale and 'enable' in scale and 'base_batch_size' in scale:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError(
                'Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                '"auto_scale_lr.base_batch_size" in your configuration file.'
            )

    # resume from a given checkpoint > auto resume from the work dir
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def run_train(
    config: str,
    work_dir: Optional[str] = None,
    amp: bool = False,
    auto_scale_lr: bool = False,
    resume: Optional[str] = None,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    force: bool = False,
    allow_partial: bool = False,
) -> None:
    """Train ``config``; missing data, pretrained weights or a missing
    ``resume`` checkpoint end the process with a short message (exit 1)
    before anything is built, and so does a work dir holding another run's
    checkpoints (:func:`check_work_dir`). A ``load_from``/``resume``
    checkpoint that does not cover the model is refused before training
    (:class:`~projects.van_lska.weights.coverage.CheckpointCoverageHook`).
    Ctrl-C or SIGTERM stop the training after any checkpoint save in
    progress and say how to continue (exit 130/143).

    Args:
        config: config file.
        work_dir: output folder (default: the config's, else
            ``./work_dirs/CONFIG_NAME``).
        amp, auto_scale_lr, resume: see :func:`apply_train_options`.
        cfg_options: ``--cfg-options`` (merged first).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        force: train into a work dir that holds checkpoints of another run
            (they are overwritten or mixed with the new ones).
        allow_partial: load a ``load_from``/``resume`` checkpoint that
            covers only part of the model (what is missing is logged).
    """
    with user_errors():
        cfg = load_config(config, cfg_options, launcher, work_dir)
        apply_train_options(cfg, amp, auto_scale_lr, resume)
        scope = codebase_of(cfg)

        # Fail early and readably on missing data / weights.
        check_data(cfg, ('train', 'val'))
        check_pretrained(cfg)
        if resume == 'auto':
            resolve_auto_resume(cfg)
        elif resume is None:
            check_work_dir(cfg.work_dir, force)
        check_checkpoint(cfg.get('load_from'))
        if cfg.get('load_from'):
            add_coverage_hook(
                cfg,
                allow_partial,
                'resume this training'
                if cfg.get('resume')
                else 'start from it (load_from)',
            )

        prepare_runtime(cfg, scope)
        build_and_run(cfg, config, ('train', 'val'), lambda r: r.train())


def work_dir_checkpoints(work_dir: str) -> list:
    """The checkpoints (and ``last_checkpoint``) a work dir holds."""
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    pointer = osp.join(work_dir, 'last_checkpoint')
    return found + ([pointer] if osp.isfile(pointer) else [])


def check_work_dir(work_dir: str, force: bool = False) -> None:
    """Refuse to start a new training in a work dir that holds another
    run's checkpoints (it would overwrite them and mix two runs), unless
    ``force``.

    Raises:
        UserError: checkpoints found and not ``force``.
    """
    found = work_dir_checkpoints(work_dir)
    if not found:
        return
    names = ', '.join(osp.basename(p) for p in found[:4]) + (
        ', ...' if len(found) > 4 else ''
    )
    if force:
        print_log(
            f'--force: training into {work_dir}, which holds checkpoints of '
            f'another run ({names}); they may be overwritten.',
            logger='current',
        )
        return
    raise UserError(
        f'work dir {work_dir} already holds checkpoints of another run '
        f'({names}). Continue that run with --resume, start a new one in '
        'another folder (e.g. --work-dir '
        f'{osp.join(work_dir, "run2")}), or pass --force to train into it '
        'anyway (its checkpoints would be overwritten).'
    )


def resolve_auto_resume(cfg: Config) -> None:
    """``--resume`` without a path: continue from the last complete
    checkpoint of the work dir (``last_checkpoint``, else the newest
    complete ``iter_N``/``epoch_N``: a run killed while saving), in place.
    With none, the training starts from the beginning (as mmengine's)."""
    path, why = latest_complete_checkpoint(cfg.work_dir)
    if path is None:
        print_log(
            f'--resume: nothing to resume ({why}); training from the start.',
            logger='current',
        )
        cfg.load_from = None
        return
    print_log(f'--resume: {why}; resuming from it.', logger='current')
    cfg.load_from = path
