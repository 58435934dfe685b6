# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Draw the predictions of any of the suite's models on images.

Detection / instance segmentation configs (``default_scope='mmdet'``) go
through mmdet's ``DetInferencer``; semantic segmentation configs
(``default_scope='mmseg'``) through mmseg's ``MMSegInferencer``.

Example::

    python demo/image_demo.py data/shapes/coco/val/000000.jpg \
        work_dirs/quickstart/det_XXX/maskrcnn_van_lska_b0_shapes.py \
        work_dirs/quickstart/det_XXX/iter_3000.pth --device cpu

The drawings go to ``OUT_DIR/vis/`` (and, for detection, the raw
predictions to ``OUT_DIR/preds/*.json``).
"""

import argparse
import glob
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


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
    return parser.parse_args(argv)


def task_of(config: str) -> str:
    """``'mmdet'`` or ``'mmseg'``, from the config's ``default_scope``."""
    from mmengine.config import Config

    scope = Config.fromfile(config).get('default_scope', None)
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(
            f'{config}: default_scope is {scope!r}; image_demo.py handles '
            "mmdet and mmseg configs (use mmpretrain's ImageClassification"
            'Inferencer for classification)'
        )
    return scope


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Run the demo; returns the written drawings."""
    args = parse_args(argv)
    import projects.van_lska  # noqa: F401  (registers VAN_LKA/VAN_LSKA)

    scope = task_of(args.config)
    os.makedirs(args.out_dir, exist_ok=True)
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer

        inferencer = DetInferencer(
            model=args.config, weights=args.checkpoint, device=args.device
        )
        inferencer(
            args.img,
            out_dir=args.out_dir,
            pred_score_thr=args.score_thr,
            no_save_pred=False,
        )
    else:
        from mmseg.apis import MMSegInferencer

        inferencer = MMSegInferencer(
            model=args.config, weights=args.checkpoint, device=args.device
        )
        inferencer(args.img, out_dir=args.out_dir, opacity=args.opacity)
    written = sorted(glob.glob(osp.join(args.out_dir, 'vis', '*')))
    print(f'Drawings written to {osp.join(args.out_dir, "vis")}:')
    for path in written:
        print(f'  {path}')
    return written


if __name__ == '__main__':
    main()
