# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Test (and evaluate) a checkpoint of an mmdet / mmseg / mmpretrain config
(the codebase is the config's ``default_scope``).

Arguments follow mmdet 3.3.0's ``tools/test.py``; ``--out``, ``--show``,
``--show-dir`` and ``--tta`` do what each codebase's own test tool does:

* mmdet: ``--out`` dumps predictions to a ``.pkl``; ``--tta`` adds flip TTA
  (``DetTTAModel``) unless the config has ``tta_model``/``tta_pipeline``.
* mmseg: ``--out`` is a folder for the predicted masks; ``--tta`` needs the
  config's ``tta_model`` and ``tta_pipeline``.
* mmpretrain: ``--out`` dumps predictions to a ``.pkl``; ``--tta`` averages
  the scores of the image and its flip (``AverageClsScoreTTA``).

``--deploy`` adds ``VANDeployHook`` to ``custom_hooks``.

Examples::

    python tools/test.py configs/maskrcnn_van_lska_b1.py CKPT.pth
    bash tools/dist_test.sh configs/maskrcnn_van_lska_b1.py CKPT.pth 8
"""

import argparse
import os.path as osp
import sys
import warnings
from copy import deepcopy

_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(1, _REPO)

from mmengine.config import Config, ConfigDict  # noqa: E402
from runner_setup import (  # noqa: E402
    add_common_args,
    build_runner,
    check_checkpoint,
    check_data,
    codebase_of,
    parse_common,
    prepare_runtime,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and eval) a detector / segmentor / classifier'
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics',
    )
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet/mmpretrain: dump predictions to a pickle file; '
        'mmseg: folder for the predicted segmentation maps',
    )
    parser.add_argument(
        '--show', action='store_true', help='show prediction results'
    )
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir',
    )
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)'
    )
    add_common_args(parser)
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation'
    )
    parser.add_argument(
        '--deploy',
        action='store_true',
        help='add VANDeployHook to custom_hooks (re-parameterised '
        'deploy-mode model)',
    )
    return parse_common(parser, argv)


def _test_dataset(cfg: Config) -> ConfigDict:
    """The innermost test dataset config (inside dataset wrappers)."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def enable_visualization(
    cfg: Config, args: argparse.Namespace, scope: str
) -> None:
    """``--show`` / ``--show-dir`` as in each codebase's test tool."""
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks, e.g. '
            'default_hooks = dict(visualization=dict(type=...))'
        )
    hook = hooks['visualization']
    if scope == 'mmdet':
        from mmdet.engine.hooks.utils import trigger_visualization_hook

        trigger_visualization_hook(cfg, args)
    elif scope == 'mmseg':
        hook['draw'] = True
        if args.show:
            hook['show'] = True
            hook['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    else:  # mmpretrain
        hook['enable'] = True
        hook['show'] = args.show
        hook['wait_time'] = args.wait_time
        hook['out_dir'] = args.show_dir


def enable_tta(cfg: Config, scope: str) -> None:
    """``--tta``: wrap the model in the codebase's TTA model."""
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
            cfg.tta_model = dict(
                type='DetTTAModel',
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


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg``."""
    scope = codebase_of(cfg)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    scope = codebase_of(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.tta:
        enable_tta(cfg, scope)
    if args.out is not None:
        if scope == 'mmseg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        elif not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('The dump file (--out) must be a pkl file.')
    if args.deploy:
        hooks = list(cfg.get('custom_hooks', None) or [])
        hooks.append(dict(type='VANDeployHook'))
        cfg.custom_hooks = hooks
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    scope = codebase_of(cfg)

    check_checkpoint(args.checkpoint)
    check_data(cfg, ('test',))

    prepare_runtime(cfg, scope)

    runner = build_runner(cfg)
    if args.out is not None and scope != 'mmseg':
        if scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
