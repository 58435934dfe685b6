# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Train a detector, segmentor or classifier from an mmdet / mmseg /
mmpretrain config (the codebase is the config's ``default_scope``).

Arguments and behaviour follow mmdet 3.3.0's ``tools/train.py``; without a
GPU, SyncBN becomes BN and distributed runs use gloo on CPU processes.

Examples::

    python tools/train.py configs/maskrcnn_van_lska_b1.py
    bash tools/dist_train.sh configs/maskrcnn_van_lska_b1.py 8 --amp
"""

import argparse
import os.path as osp
import sys

# `projects.van_lska` (the configs' custom_imports) without installation.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(1, _REPO)

from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from runner_setup import (  # noqa: E402
    add_common_args,
    build_runner,
    check_checkpoint,
    check_data,
    check_pretrained,
    codebase_of,
    parse_common,
    prepare_runtime,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a detector / segmentor / classifier'
    )
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training',
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.',
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.',
    )
    add_common_args(parser)
    return parse_common(parser, argv)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg`` (as mmdet's train.py does)."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/CONFIG_NAME (runs go into
    # timestamped sub-folders, nothing is overwritten)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )

    if args.amp:
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if scale and 'enable' in scale and 'base_batch_size' in scale:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError(
                'Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                '"auto_scale_lr.base_batch_size" in your configuration file.'
            )

    # resume from a given checkpoint > auto resume from the work dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    scope = codebase_of(cfg)

    # Fail early and readably on missing data / weights.
    check_data(cfg, ('train', 'val'))
    check_pretrained(cfg)
    check_checkpoint(cfg.get('load_from'))

    prepare_runtime(cfg, scope)

    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
