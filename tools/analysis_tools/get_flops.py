# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Parameters and FLOPs of a detection, segmentation or classification
config, on one random image; no dataset is read, runs on the CPU.

What is measured for each codebase: :mod:`projects.van_lska.analysis.
complexity`.

Example::

    python tools/analysis_tools/get_flops.py configs/van_lska_b0_in1k.py
    python tools/analysis_tools/get_flops.py CONFIG --shape 512 --json
"""

import argparse
from typing import Dict, List, Optional

from mmengine.config import DictAction

from projects.van_lska.analysis.complexity import run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of a config (random input, CPU)'
    )
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        metavar='N',
        help='input size: H W, or one value for a square image; defaults: '
        '800 1280 (H W, the "1280x800" image) for detection, 512 512 for '
        'segmentation, 224 224 for classification',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, xxx=yyy format',
    )
    parser.add_argument(
        '--json',
        nargs='?',
        const='-',
        default=None,
        metavar='PATH',
        help='write the result as JSON to PATH; without PATH print only the '
        'JSON on stdout',
    )
    args = parser.parse_args(argv)
    if args.shape is not None and (
        len(args.shape) > 2 or min(args.shape) <= 0
    ):
        parser.error(f'--shape takes H W or one size; got {args.shape}')
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    return run(args.config, args.shape, args.cfg_options, args.json)


if __name__ == '__main__':
    main()
