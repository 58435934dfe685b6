# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Test (and evaluate) a checkpoint of an mmdet / mmseg / mmpretrain config
(the codebase is the config's ``default_scope``).

Arguments follow mmdet 3.3.0's ``tools/test.py``; ``--out``, ``--show``,
``--show-dir`` and ``--tta`` do what each codebase's own test tool does:

* mmdet: ``--out`` dumps predictions to a ``.pkl``; ``--tta`` uses the
  config's ``tta_model``/``tta_pipeline`` (ours: 3 scales x flip; masks
  merged by ``InstanceSegTTAModel``).
* mmseg: ``--out`` is a folder for the predicted masks; ``--tta`` uses the
  config's ``tta_model`` and ``tta_pipeline`` (ours: 6 scales x flip).
* mmpretrain: ``--out`` dumps predictions to a ``.pkl``; ``--tta`` averages
  the scores of the image and its flip (``AverageClsScoreTTA``).

``--deploy`` adds ``VANDeployHook`` to ``custom_hooks``.

Examples::

    python tools/test.py configs/maskrcnn_van_lska_b1.py CKPT.pth
    bash tools/dist_test.sh configs/maskrcnn_van_lska_b1.py CKPT.pth 8
"""

import argparse

from projects.van_lska.apis.runner import add_common_args, parse_common
from projects.van_lska.apis.test import run_test


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and eval) a detector / segmentor / classifier'
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics',
    )
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet/mmpretrain: dump predictions to a pickle file; '
        'mmseg: folder for the predicted segmentation maps',
    )
    parser.add_argument(
        '--show', action='store_true', help='show prediction results'
    )
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (every test '
        'image). A relative path is inside the work dir: mmdet '
        'WORK_DIR/TIMESTAMP/SHOW_DIR, mmseg WORK_DIR/SHOW_DIR/vis_data/'
        'vis_image, mmpretrain WORK_DIR/SHOW_DIR',
    )
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)'
    )
    add_common_args(parser)
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation'
    )
    parser.add_argument(
        '--deploy',
        action='store_true',
        help='add VANDeployHook to custom_hooks (re-parameterised '
        'deploy-mode model)',
    )
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='test even if the checkpoint covers only part of the model '
        '(refused otherwise; what was not loaded is logged)',
    )
    return parse_common(parser, argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    run_test(
        args.config,
        args.checkpoint,
        work_dir=args.work_dir,
        out=args.out,
        show=args.show,
        show_dir=args.show_dir,
        wait_time=args.wait_time,
        tta=args.tta,
        deploy=args.deploy,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        allow_partial=args.allow_partial,
    )


if __name__ == '__main__':
    main()
