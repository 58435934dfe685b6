# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Convert VAN / VAN-LSKA checkpoints between the public formats.

Reads any public format and writes ``--to ours`` (default; ready for
``init_cfg=dict(type='Pretrained', checkpoint=DST)``), ``mmpretrain`` or
``official``: :mod:`projects.van_lska.apis.convert`.

Example::

    python tools/model_converters/van_convert.py \\
        van_lska_tiny_23.pth data/pretrained/van_lska_b0_k23.pth
"""

import argparse

from projects.van_lska.apis.convert import TARGETS, convert_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert VAN/VAN-LSKA checkpoints between formats.'
    )
    parser.add_argument('src', help='source checkpoint (any public format)')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument(
        '--to', choices=TARGETS, default='ours', help='output format'
    )
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst'
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    convert_file(args.src, args.dst, args.to, args.force)


if __name__ == '__main__':
    main()
