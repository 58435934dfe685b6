# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Write the synthetic shapes dataset (COCO instances + ADE20K semantic).

Example::

    python tools/misc/make_synthetic_data.py --out data/shapes --seed 0 \
        --num-train 600 --num-val 100 --size 128 128
"""

import argparse

from projects.van_lska.apis.quickstart import (
    add_generation_args,
    make_synthetic_data,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic shapes dataset (no download).'
    )
    parser.add_argument('--out', default='data/shapes', help='output root')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    add_generation_args(parser)
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace a synthetic shapes dataset already in --out (a folder '
        'holding other files is never replaced)',
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    make_synthetic_data(
        args.out,
        args.seed,
        args.num_train,
        args.num_val,
        args.size,
        args.force,
    )


if __name__ == '__main__':
    main()
