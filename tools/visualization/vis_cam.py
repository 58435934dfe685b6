# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Grad-CAM of one or several classifiers on one image or a folder, as one
PNG: the input and each model's CAM side by side, one row per image.

Needs the optional ``grad-cam`` package. What is computed:
:mod:`projects.van_lska.analysis.cam`.

Examples::

    # the quickstart classifier on four val images
    python tools/visualization/vis_cam.py data/shapes_cls/val/star \\
        work_dirs/quickstart/cls/van_lska_b0_shapes_cls.py \\
        work_dirs/quickstart/cls/epoch_12.pth --max-images 4 --out cam.png

    # random-init LKA vs LSKA k=7 and k=53 (checkpoint "none")
    python tools/visualization/vis_cam.py IMG configs/van_lka_b0_in1k.py \\
        none --compare configs/van_lska_b0_in1k.py@7 none \\
        configs/van_lska_b0_in1k.py@53 none --out cam_random.png
"""

import argparse
from typing import List, Optional

from mmengine.config import DictAction

from projects.van_lska.analysis.cam import CAM_METHODS, run


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Grad-CAM of classifiers, side by side, as PNG'
    )
    parser.add_argument('img', help='image file or folder of images')
    parser.add_argument('config', help='classification config file')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file; "none" keeps the random initialisation',
    )
    parser.add_argument(
        '--compare',
        nargs='+',
        metavar='CONFIG CHECKPOINT',
        help='more models as CONFIG CHECKPOINT pairs (CHECKPOINT may be '
        '"none"; CONFIG may end in @K for model.backbone.kernel_size=K)',
    )
    parser.add_argument(
        '--labels', nargs='+', help='column titles, one per model'
    )
    parser.add_argument(
        '--out', default='cam.png', help='output PNG (default: cam.png)'
    )
    parser.add_argument(
        '--force', action='store_true', help='overwrite --out if it exists'
    )
    parser.add_argument(
        '--max-images',
        type=int,
        default=8,
        help='at most this many images of a folder (sorted; default 8)',
    )
    parser.add_argument(
        '--target-layer',
        help='layer to take the CAM at, e.g. backbone.blocks4.1 (default: '
        'the LayerNorm after the last stage, backbone.norm4, for VAN)',
    )
    parser.add_argument(
        '--method',
        default='gradcam',
        choices=CAM_METHODS,
        help='CAM method (default: gradcam)',
    )
    parser.add_argument(
        '--target-category',
        type=int,
        nargs='+',
        help='class index to explain: one for all images or one per image '
        "(default: each model's prediction)",
    )
    parser.add_argument(
        '--eigen-smooth',
        action='store_true',
        help='first principal component of cam_weights * activations',
    )
    parser.add_argument(
        '--aug-smooth',
        action='store_true',
        help='test-time augmentation (flips, scales) to smooth the CAM',
    )
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, xxx=yyy format',
    )
    args = parser.parse_args(argv)
    if args.checkpoint.lower() == 'none':
        args.checkpoint = None
    if args.max_images is not None and args.max_images < 1:
        parser.error(f'--max-images must be >= 1; got {args.max_images}')
    return args


def main(argv: Optional[List[str]] = None):
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
