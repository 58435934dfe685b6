# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Effective receptive field of a backbone stage (the RepLKNet measure):
heatmap PNG and the area ratios that hold 20/30/50/99 % of the
contribution.

What is computed: :mod:`projects.van_lska.analysis.erf`.

Examples::

    # random-init VAN-LSKA-B0 (k=23), stage 3, 20 generated shapes scenes
    python tools/analysis_tools/erf.py configs/van_lska_b0_in1k.py \\
        --stage 2 --input-size 512 --num-images 20 --out erf.png

    # LKA k=21 vs LSKA k=7/23/53, random init, one figure
    python tools/analysis_tools/erf.py configs/van_lka_b0_in1k.py \\
        --compare configs/van_lska_b0_in1k.py@7 \\
        configs/van_lska_b0_in1k.py@23 configs/van_lska_b0_in1k.py@53 \\
        --stage 2 --out erf_compare.png --json erf.json

    # a trained model on a folder of images (e.g. ImageNet val)
    python tools/analysis_tools/erf.py CONFIG CHECKPOINT \\
        --images data/imagenet/val --num-images 50 --input-size 1024
"""

import argparse
from typing import List, Optional

from mmengine.config import DictAction

from projects.van_lska.analysis.erf import run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Effective receptive field (RepLKNet measure) as PNG'
    )
    parser.add_argument('config', help='config file (any task)')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint file (default: random initialisation)',
    )
    parser.add_argument(
        '--compare',
        nargs='+',
        metavar='SPEC',
        help='more models, each CONFIG[:CHECKPOINT][@K] (@K sets '
        'model.backbone.kernel_size=K)',
    )
    parser.add_argument(
        '--kernel-sizes',
        type=int,
        nargs='+',
        help='evaluate every model at each of these kernel sizes',
    )
    parser.add_argument(
        '--labels', nargs='+', help='panel titles, one per model'
    )
    parser.add_argument(
        '--stage',
        type=int,
        default=-1,
        help='stage whose central output pixel is used, 0-based like '
        'out_indices (default: -1, the last)',
    )
    parser.add_argument(
        '--images',
        help='image file or folder (default: generated shapes scenes)',
    )
    parser.add_argument(
        '--num-images',
        type=int,
        default=50,
        help='images to accumulate over (default 50, as RepLKNet)',
    )
    parser.add_argument(
        '--input-size',
        type=int,
        default=1024,
        help='square input side in pixels (default 1024, as RepLKNet)',
    )
    parser.add_argument(
        '--out', default='erf.png', help='heatmap PNG (default: erf.png)'
    )
    parser.add_argument('--json', help='also write the numbers as JSON')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing outputs'
    )
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, xxx=yyy format',
    )
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1; got {args.num_images}')
    if args.input_size < 32:
        parser.error(f'--input-size must be >= 32; got {args.input_size}')
    return args


def main(argv: Optional[List[str]] = None):
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
