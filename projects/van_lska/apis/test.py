# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Testing (and evaluation) of a checkpoint of any of the suite's configs
(``tools/test.py``).

``--out``, ``--show``, ``--show-dir`` and ``--tta`` do what each codebase's
own test tool does:

* mmdet: ``out`` dumps predictions to a ``.pkl``; ``tta`` uses the
  config's ``tta_model``/``tta_pipeline`` (ours: 3 scales x flip), else
  flip TTA (``DetTTAModel``; ``InstanceSegTTAModel`` for masks).
* mmseg: ``out`` is a folder for the predicted masks; ``tta`` needs the
  config's ``tta_model`` and ``tta_pipeline`` (ours: 6 scales x flip).
* mmpretrain: ``out`` dumps predictions to a ``.pkl``; ``tta`` averages
  the scores of the image and its flip (``AverageClsScoreTTA``).

``deploy`` adds ``VANDeployHook`` to ``custom_hooks``.
"""

import os.path as osp
import warnings
from copy import deepcopy
from types import SimpleNamespace
from typing import Dict, Optional

from mmengine.config import Config, ConfigDict

from projects.van_lska.apis.config import codebase_of
from projects.van_lska.apis.errors import (
    UserError,
    build_and_run,
    user_errors,
)
from projects.van_lska.apis.runner import (
    check_checkpoint,
    check_data,
    load_config,
    prepare_runtime,
)
from projects.van_lska.weights.coverage import add_coverage_hook


def _test_dataset(cfg: Config) -> ConfigDict:
    """The innermost test dataset config (inside dataset wrappers)."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def enable_visualization(
    cfg: Config,
    scope: str,
    show: bool = False,
    show_dir: Optional[str] = None,
    wait_time: float = 2,
) -> None:
    """``--show`` / ``--show-dir`` as in each codebase's test tool, except
    that every test image is drawn (mmseg's hook draws one in 50, none on a
    small set) and a relative ``show_dir`` is inside the work dir, as
    mmdet's ``WORK_DIR/TIMESTAMP/SHOW_DIR``: mmseg
    ``WORK_DIR/SHOW_DIR/vis_data/vis_image/``, mmpretrain
    ``WORK_DIR/SHOW_DIR`` (their tools: from the current folder).

    Raises:
        RuntimeError: the config has no ``default_hooks.visualization``.
    """
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks, e.g. '
            'default_hooks = dict(visualization=dict(type=...))'
        )
    hook = hooks['visualization']
    if scope == 'mmdet':
        from mmdet.engine.hooks.utils import trigger_visualization_hook

        args = SimpleNamespace(
            show=show, show_dir=show_dir, wait_time=wait_time
        )
        trigger_visualization_hook(cfg, args)
    elif scope == 'mmseg':
        hook['draw'] = True
        hook['interval'] = 1
        if show:
            hook['show'] = True
            hook['wait_time'] = wait_time
        if show_dir:
            cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
        # mmseg's hook names each picture by runner.iter, which builds the
        # training loop and its data: a test run needs no training data.
        for key in (
            'train_dataloader',
            'train_cfg',
            'optim_wrapper',
            'param_scheduler',
        ):
            cfg[key] = None
    else:  # mmpretrain (its test tool's --interval defaults to 1)
        hook['enable'] = True
        hook['interval'] = 1
        hook['show'] = show
        hook['wait_time'] = wait_time
        hook['out_dir'] = (
            osp.join(cfg.work_dir, show_dir) if show_dir else None
        )


def _predicts_masks(model: Dict) -> bool:
    """Whether an mmdet model config has a mask head (instance
    segmentation)."""
    return bool((model.get('roi_head') or {}).get('mask_head'))


def enable_tta(cfg: Config, scope: str) -> None:
    """``--tta``: wrap the model in the codebase's TTA model. Without a
    ``tta_model`` in the config: mmdet's ``DetTTAModel`` (boxes), our
    ``InstanceSegTTAModel`` for models with masks, mmpretrain's
    ``AverageClsScoreTTA``.

    Raises:
        RuntimeError: an mmseg config without ``tta_model`` and
            ``tta_pipeline``.
        UserError: an mmdet model with masks and ``DetTTAModel``, which
            merges boxes only.
    """
    if (
        scope == 'mmdet'
        and (cfg.get('tta_model') or {}).get('type') == 'DetTTAModel'
        and _predicts_masks(cfg.model)
    ):
        raise UserError(
            "--tta: the config's tta_model DetTTAModel merges boxes only and "
            'this model predicts masks; use --cfg-options '
            'tta_model.type=InstanceSegTTAModel (boxes merged as '
            'DetTTAModel does, masks voted).'
        )
    if scope == 'mmseg':
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise RuntimeError(
                '--tta for mmseg needs `tta_model` and `tta_pipeline` in '
                'the config'
            )
    if 'tta_model' not in cfg:
        warnings.warn(
            'Cannot find `tta_model` in config, using the default.',
            stacklevel=2,
        )
        if scope == 'mmdet':
            masks = _predicts_masks(cfg.model)
            cfg.tta_model = dict(
                type='InstanceSegTTAModel' if masks else 'DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5), max_per_img=100
                ),
            )
        else:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
    if 'tta_pipeline' not in cfg:
        warnings.warn(
            'Cannot find `tta_pipeline` in config, using flip TTA.',
            stacklevel=2,
        )
        pipeline = deepcopy(_test_dataset(cfg).pipeline)
        pack = (
            dict(
                type='PackDetInputs',
                meta_keys=(
                    'img_id',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                    'flip',
                    'flip_direction',
                ),
            )
            if scope == 'mmdet'
            else pipeline[-1]
        )
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.0),
                    dict(type='RandomFlip', prob=0.0),
                ],
                [pack],
            ],
        )
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    _test_dataset(cfg).pipeline = cfg.tta_pipeline


def apply_test_options(
    cfg: Config,
    checkpoint: str,
    out: Optional[str] = None,
    show: bool = False,
    show_dir: Optional[str] = None,
    wait_time: float = 2,
    tta: bool = False,
    deploy: bool = False,
) -> Config:
    """The test tool's options, in place (see the module docstring).

    Raises:
        UserError: ``out`` of an mmdet/mmpretrain config is not a
            ``.pkl``/``.pickle`` file (a ``ValueError``).
    """
    scope = codebase_of(cfg)
    cfg.load_from = checkpoint
    if show or show_dir:
        enable_visualization(cfg, scope, show, show_dir, wait_time)
    if tta:
        enable_tta(cfg, scope)
    if out is not None:
        if scope == 'mmseg':
            cfg.test_evaluator['output_dir'] = out
            cfg.test_evaluator['keep_results'] = True
        elif not out.endswith(('.pkl', '.pickle')):
            raise UserError(
                f'--out {out}: mmdet and mmpretrain configs dump their '
                'predictions to a pickle file; give a path ending in .pkl '
                'or .pickle'
            )
    if deploy:
        hooks = list(cfg.get('custom_hooks', None) or [])
        hooks.append(dict(type='VANDeployHook'))
        cfg.custom_hooks = hooks
    return cfg


def run_test(
    config: str,
    checkpoint: str,
    work_dir: Optional[str] = None,
    out: Optional[str] = None,
    show: bool = False,
    show_dir: Optional[str] = None,
    wait_time: float = 2,
    tta: bool = False,
    deploy: bool = False,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    allow_partial: bool = False,
) -> Dict[str, float]:
    """Evaluate ``checkpoint`` with ``config``'s test dataloader and
    evaluator; a missing checkpoint or dataset ends the process with a
    short message (exit 1) before anything is built, and so does a
    checkpoint that does not cover the model (a classifier or bare backbone
    file for a detector, another network, another arch) unless
    ``allow_partial`` (:mod:`projects.van_lska.weights.coverage`).

    Returns:
        dict: the metrics (``runner.test()``).
    """
    with user_errors():
        cfg = load_config(config, cfg_options, launcher, work_dir)
        apply_test_options(
            cfg, checkpoint, out, show, show_dir, wait_time, tta, deploy
        )
        scope = codebase_of(cfg)

        check_checkpoint(checkpoint)
        check_data(cfg, ('test',))
        add_coverage_hook(cfg, allow_partial, 'test the model')

        prepare_runtime(cfg, scope)

        def test(runner):
            if out is not None and scope != 'mmseg':
                if scope == 'mmdet':
                    from mmdet.evaluation import DumpDetResults as Dump
                else:
                    from mmengine.evaluator import DumpResults as Dump
                runner.test_evaluator.metrics.append(Dump(out_file_path=out))
            return runner.test()

        return build_and_run(cfg, config, ('test',), test, training=False)
