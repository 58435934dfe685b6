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

from projects.van_lska.apis.runner import add_common_args, parse_common
from projects.van_lska.apis.train import run_train


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
    parser.add_argument(
        '--force',
        action='store_true',
        help='train into a work dir that holds checkpoints of another run '
        '(refused otherwise: they would be overwritten)',
    )
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='accept a load_from/--resume checkpoint that covers only part '
        'of the model (refused otherwise)',
    )
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    run_train(
        args.config,
        work_dir=args.work_dir,
        amp=args.amp,
        auto_scale_lr=args.auto_scale_lr,
        resume=args.resume,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        force=args.force,
        allow_partial=args.allow_partial,
    )


if __name__ == '__main__':
    main()
