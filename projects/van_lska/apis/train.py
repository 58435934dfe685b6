# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Training of any of the suite's configs (``tools/train.py``).

The options are mmdet 3.3.0's ``tools/train.py`` options; the codebase
(mmdet, mmseg or mmpretrain) is the config's ``default_scope``.
"""

from typing import Dict, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from projects.van_lska.apis.config import codebase_of
from projects.van_lska.apis.runner import (
    build_runner,
    check_checkpoint,
    check_data,
    check_pretrained,
    load_config,
    prepare_runtime,
)


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
    """
    if amp:
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

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
) -> None:
    """Train ``config``; missing data, pretrained weights or a missing
    ``resume`` checkpoint end the process with a short message (exit 1)
    before anything is built.

    Args:
        config: config file.
        work_dir: output folder (default: the config's, else
            ``./work_dirs/CONFIG_NAME``).
        amp, auto_scale_lr, resume: see :func:`apply_train_options`.
        cfg_options: ``--cfg-options`` (merged first).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    cfg = load_config(config, cfg_options, launcher, work_dir)
    apply_train_options(cfg, amp, auto_scale_lr, resume)
    scope = codebase_of(cfg)

    # Fail early and readably on missing data / weights.
    check_data(cfg, ('train', 'val'))
    check_pretrained(cfg)
    check_checkpoint(cfg.get('load_from'))

    prepare_runtime(cfg, scope)
    build_runner(cfg).train()
