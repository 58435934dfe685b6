# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Shape bias (Geirhos et al., ICLR 2019) of classifiers on a cue-conflict
folder: a table, a PNG and optionally JSON.

The folder holds ``<shape category>/<shape>N-<texture>M.png`` (Geirhos et
al.'s stimuli, e.g. model-vs-human's ``cue-conflict`` set, for ImageNet
models; or ``data/shapes_cls/cue_conflict`` of the shapes classification
quickstart). What is computed: :mod:`projects.van_lska.analysis.shape_bias`.

Examples::

    python tools/analysis_tools/shape_bias.py CONFIG CHECKPOINT \\
        --data data/cue-conflict --out shape_bias.png --json sb.json

    python tools/analysis_tools/shape_bias.py \\
        work_dirs/quickstart/cls/van_lska_b0_shapes_cls.py \\
        work_dirs/quickstart/cls/epoch_12.pth \\
        --data data/shapes_cls/cue_conflict
"""

import argparse
from typing import List, Optional

from mmengine.config import DictAction

from projects.van_lska.analysis.shape_bias import run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Shape bias on cue-conflict images (Geirhos et al.)'
    )
    parser.add_argument('config', help='classification config file')
    parser.add_argument(
        'checkpoint', help='checkpoint file; "none" for random init'
    )
    parser.add_argument(
        '--data',
        required=True,
        help='cue-conflict folder: <shape>/<shape>N-<texture>M.png',
    )
    parser.add_argument(
        '--compare',
        nargs='+',
        metavar='SPEC',
        help='more models, each CONFIG[:CHECKPOINT][@K]',
    )
    parser.add_argument(
        '--labels', nargs='+', help='legend names, one per model'
    )
    parser.add_argument(
        '--out',
        default='shape_bias.png',
        help='figure PNG (default: shape_bias.png)',
    )
    parser.add_argument('--json', help='also write the numbers as JSON')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing outputs'
    )
    parser.add_argument('--batch-size', type=int, default=16)
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
    if args.checkpoint.lower() == 'none':
        args.checkpoint = None
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1; got {args.batch_size}')
    return args


def main(argv: Optional[List[str]] = None):
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
