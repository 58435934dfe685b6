# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Quick start: train, evaluate and look at a small VAN-LSKA model on CPU.

Generates the synthetic shapes dataset if it is missing, trains from scratch
(mmengine Runner, progress in the log), evaluates on the val split (COCO
bbox/segm mAP for ``--task det``, mIoU for ``--task seg``) and writes PNG
pictures with the ground truth (left) next to the predictions (right).

Examples::

    python tools/quickstart.py                # Mask R-CNN, COCO metrics
    python tools/quickstart.py --task seg     # Semantic FPN, mIoU
    python tools/quickstart.py --task cls     # VAN-LSKA classifier, top-1
    python tools/quickstart.py --task yolo    # YOLO11n vs YOLO11n-LSKA
    python tools/quickstart.py --iters 20     # a short smoke run

Every run writes into a new ``work_dirs/quickstart/<task>_<timestamp>``;
an existing ``--work-dir`` that is not empty is refused unless ``--force``
(:mod:`projects.van_lska.apis.quickstart`).
"""

import argparse
from typing import List, Optional

from projects.van_lska.apis import quickstart_cls, quickstart_yolo
from projects.van_lska.apis.errors import non_negative_int, positive_int
from projects.van_lska.apis.quickstart import (
    CONFIGS,
    add_generation_args,
    make_work_dir,
    run,
)

#: Tasks beyond the mmdet/mmseg ones, with their own defaults.
OTHER_TASKS = ('cls', 'yolo')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train, evaluate and draw a small VAN-LSKA model on the '
        'synthetic shapes dataset (CPU friendly).'
    )
    parser.add_argument(
        '--task',
        choices=sorted(CONFIGS) + list(OTHER_TASKS),
        default='det',
        help='det: Mask R-CNN (COCO bbox/segm mAP); seg: Semantic FPN '
        '(mIoU); cls: a VAN-LSKA classifier (top-1, Grad-CAM, shape bias); '
        'yolo: YOLO11n vs YOLO11n-LSKA (needs install.sh --yolo)',
    )
    parser.add_argument(
        '--config', help='config file (default: the quickstart one)'
    )
    parser.add_argument(
        '--data-root',
        default='data/shapes',
        help='dataset root; generated there if missing',
    )
    parser.add_argument(
        '--work-dir',
        help='output folder (default: a new '
        'work_dirs/quickstart/<task>_<timestamp>)',
    )
    parser.add_argument(
        '--force',
        action='store_true',
        help='allow writing into an existing, non-empty --work-dir',
    )
    parser.add_argument(
        '--iters', type=positive_int, help='shorten/lengthen the schedule'
    )
    parser.add_argument(
        '--val-interval',
        type=positive_int,
        help='also evaluate every N iterations (default: only at the end)',
    )
    parser.add_argument(
        '--num-vis',
        type=non_negative_int,
        default=8,
        help='val images to draw',
    )
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.5,
        help='score threshold for drawn detections',
    )
    parser.add_argument(
        '--eval-untrained',
        action='store_true',
        help='also evaluate the freshly initialised model first',
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--procs',
        type=positive_int,
        help='det/seg: training processes, the batch split between them, '
        'the cores between their threads (default on CPU: det 2, seg 1, '
        'at most one per core; 1 with a GPU)',
    )
    gen = parser.add_argument_group(
        'dataset generation (only if --data-root is missing; seed 0)'
    )
    add_generation_args(gen)
    parser.add_argument(
        '--epochs',
        type=positive_int,
        help="--task cls/yolo: training epochs (default: the task's own)",
    )
    quickstart_yolo.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.task in OTHER_TASKS:
        # Options left at the det/seg defaults take the task's own defaults.
        for action in parser._actions:
            if getattr(args, action.dest, None) == action.default:
                setattr(args, action.dest, None)
    return args


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    if args.task == 'cls':
        return quickstart_cls.run_cls(args)
    if args.task == 'yolo':
        work_dir = make_work_dir(args.work_dir, 'yolo', bool(args.force))
        return quickstart_yolo.run(args, work_dir)
    return run(args)


if __name__ == '__main__':
    main()
