# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Draw the predictions of any of the suite's models on images.

Detection / instance segmentation configs (``default_scope='mmdet'``) go
through mmdet's ``DetInferencer``, semantic segmentation configs
(``'mmseg'``) through mmseg's ``MMSegInferencer``, classification configs
(``'mmpretrain'``) through mmpretrain's ``ImageClassificationInferencer``;
each image gives one PNG at least 512 px wide: boxes and masks with class
and score, a tinted segmentation with a legend, or the top-k classes.

Example::

    python demo/image_demo.py data/shapes/coco/val/000000.jpg \
        work_dirs/quickstart/det_XXX/maskrcnn_van_lska_b0_shapes.py \
        work_dirs/quickstart/det_XXX/iter_3000.pth --device cpu

The drawings go to ``OUT_DIR/vis/NAME.png`` (and, for detection, the raw
predictions to ``OUT_DIR/preds/*.json``):
:func:`projects.van_lska.apis.inference.image_demo`.
"""

import argparse
from typing import List, Optional

from projects.van_lska.apis.errors import positive_int
from projects.van_lska.apis.inference import image_demo


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw the predictions of a VAN/VAN-LSKA model.'
    )
    parser.add_argument('img', help='image file or folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs', help='output folder')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0'
    )
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='detections below this score are not drawn (mmdet)',
    )
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the drawn segmentation (mmseg)',
    )
    parser.add_argument(
        '--topk',
        type=positive_int,
        default=5,
        help='classes listed with their scores (mmpretrain)',
    )
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='draw even if the checkpoint covers only part of the model '
        '(refused otherwise)',
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Run the demo; returns the written drawings."""
    args = parse_args(argv)
    return image_demo(
        args.img,
        args.config,
        args.checkpoint,
        args.out_dir,
        device=args.device,
        score_thr=args.score_thr,
        opacity=args.opacity,
        allow_partial=args.allow_partial,
        topk=args.topk,
    )


if __name__ == '__main__':
    main()
