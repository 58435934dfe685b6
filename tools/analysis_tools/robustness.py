# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Robustness of a classification config + checkpoint: ImageNet-C
corruptions generated on the fly from a validation folder (top-1 per
corruption and severity, mean error, mCE against AlexNet), and the
ImageNet-A/-R/-Sketch/Stylized-ImageNet folders given by path.

What is measured and how: :mod:`projects.van_lska.analysis.robustness`.

Examples::

    # all 15 corruptions x 5 severities on 10 images per class
    python tools/analysis_tools/robustness.py configs/van_lska_b0_in1k.py \\
        van_lska_b0.pth --val-dir data/imagenet/val --max-per-class 10

    # the shifted test sets only, results also as JSON
    python tools/analysis_tools/robustness.py CONFIG CKPT \\
        --imagenet-a data/imagenet-a --imagenet-r data/imagenet-r \\
        --imagenet-sketch data/sketch --stylized-imagenet data/sin/val \\
        --json work_dirs/robustness.json
"""

import argparse
from typing import Dict, List, Optional

from mmengine.config import DictAction

from projects.van_lska.analysis.robustness import (
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SHIFTED_SETS,
    evaluate,
    format_table,
)


def default_device() -> str:
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ImageNet-C (generated on the fly), ImageNet-A/-R/'
        '-Sketch and Stylized-ImageNet top-1 of a classifier'
    )
    parser.add_argument('config', help='classification config file')
    parser.add_argument('checkpoint', help='checkpoint file (strict load)')
    parser.add_argument(
        '--val-dir',
        metavar='DIR',
        help='clean validation set, one sub-folder per class (ImageNet wnids '
        "for 1000-class models, else the model's class names or exactly "
        'num_classes folders in class order); the corruptions are made from '
        'it',
    )
    parser.add_argument(
        '--corruptions',
        nargs='*',
        default=list(CORRUPTIONS),
        metavar='NAME',
        help='corruptions to apply (default: the 15 of ImageNet-C; also '
        f'{", ".join(EXTRA_CORRUPTIONS)}); none: clean top-1 only',
    )
    parser.add_argument(
        '--severities',
        nargs='+',
        type=int,
        default=[1, 2, 3, 4, 5],
        metavar='S',
        help='severities 1-5 (default all; CE and mCE need all five)',
    )
    for key, spec in SHIFTED_SETS.items():
        parser.add_argument(
            '--' + key.replace('_', '-'),
            metavar='DIR',
            help=f'{spec.name} folder (wnid sub-folders)',
        )
    parser.add_argument(
        '--max-per-class',
        type=int,
        default=None,
        metavar='N',
        help='use the first N images (sorted) of each class folder',
    )
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument(
        '--num-workers',
        type=int,
        default=2,
        help='data loading (and corrupting) processes',
    )
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the corruption noise'
    )
    parser.add_argument(
        '--json', metavar='PATH', help='also write the results as JSON'
    )
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace an existing --json file',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, xxx=yyy format',
    )
    parser.add_argument(
        '--device',
        default=None,
        help='cpu, cuda, cuda:1, ... (default: cuda if available)',
    )
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar'
    )
    args = parser.parse_args(argv)
    for name in ('max_per_class', 'batch_size'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.num_workers < 0:
        parser.error('--num-workers must be >= 0')
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    try:
        result = run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise SystemExit(f'robustness.py: error: {exc}') from exc
    print(format_table(result))
    return result


def run(args: argparse.Namespace) -> Dict[str, object]:
    return evaluate(
        args.config,
        args.checkpoint,
        val_dir=args.val_dir,
        corruptions=args.corruptions,
        severities=args.severities,
        shifted={
            key: getattr(args, key)
            for key in SHIFTED_SETS
            if getattr(args, key)
        },
        cfg_options=args.cfg_options,
        device=args.device or default_device(),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        max_per_class=args.max_per_class,
        seed=args.seed,
        show_progress=not args.no_progress,
        json_path=args.json,
        force=args.force,
    )


if __name__ == '__main__':
    main()
