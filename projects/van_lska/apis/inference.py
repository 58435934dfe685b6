# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Draw the predictions of any of the suite's detection or segmentation
models on images (``demo/image_demo.py``).

Detection / instance segmentation configs (``default_scope='mmdet'``) go
through mmdet's ``DetInferencer``; semantic segmentation configs
(``default_scope='mmseg'``) through mmseg's ``MMSegInferencer``.
"""

import glob
import os
import os.path as osp
from typing import List

from projects.van_lska.apis.config import codebase_of

#: The codebases :func:`image_demo` draws.
DEMO_CODEBASES = ('mmdet', 'mmseg')


def demo_codebase(config: str) -> str:
    """``'mmdet'`` or ``'mmseg'``: the codebase of ``config``.

    Raises:
        UserError: (a ``ValueError``) another codebase (names the file and
            what to use), or a config that cannot be read.
    """
    from projects.van_lska.apis.errors import UserError, read_config

    try:
        return codebase_of(
            read_config(config),
            DEMO_CODEBASES,
            hint=' (image_demo.py draws detection and segmentation; use '
            "mmpretrain's ImageClassificationInferencer for classification)",
        )
    except UserError:
        raise
    except ValueError as e:
        raise UserError(str(e)) from None


def image_demo(
    img: str,
    config: str,
    checkpoint: str,
    out_dir: str,
    device: str = 'cpu',
    score_thr: float = 0.3,
    opacity: float = 0.5,
    allow_partial: bool = False,
) -> List[str]:
    """Draw the predictions of ``checkpoint`` on ``img``.

    A missing image, an unreadable config or checkpoint, and a checkpoint
    that does not cover the model (a classifier or bare backbone file,
    another network or arch; :func:`~projects.van_lska.weights.coverage.
    check_covers`) end the process with a message (exit 1).

    Args:
        img: an image file or a folder of images.
        config: the model's config file.
        checkpoint: its weights.
        out_dir: drawings go to ``out_dir/vis/`` (and, for detection, the
            raw predictions to ``out_dir/preds/*.json``).
        device: e.g. ``'cpu'`` or ``'cuda:0'``.
        score_thr: detections below this score are not drawn (mmdet).
        opacity: opacity of the drawn segmentation (mmseg).
        allow_partial: draw even if the checkpoint covers only part of the
            model.

    Returns:
        list: the written drawings (sorted paths).
    """
    import projects.van_lska  # noqa: F401  (registers VAN_LKA/VAN_LSKA)
    from projects.van_lska.apis.errors import UserError, user_errors
    from projects.van_lska.weights.coverage import (
        check_covers,
        read_checkpoint,
    )

    with user_errors():
        if not osp.exists(img):
            raise UserError(
                f'image {img} does not exist (give an image file or a '
                'folder of images)'
            )
        scope = demo_codebase(config)
        read_checkpoint(checkpoint)  # clear errors before mmengine's
        os.makedirs(out_dir, exist_ok=True)
        if scope == 'mmdet':
            from mmdet.apis import DetInferencer

            inferencer = DetInferencer(
                model=config, weights=checkpoint, device=device
            )
            check_covers(
                inferencer.model, checkpoint, allow_partial, 'run the demo'
            )
            inferencer(
                img,
                out_dir=out_dir,
                pred_score_thr=score_thr,
                no_save_pred=False,
            )
        else:
            from mmseg.apis import MMSegInferencer

            inferencer = MMSegInferencer(
                model=config, weights=checkpoint, device=device
            )
            check_covers(
                inferencer.model, checkpoint, allow_partial, 'run the demo'
            )
            inferencer(img, out_dir=out_dir, opacity=opacity)
    written = sorted(glob.glob(osp.join(out_dir, 'vis', '*')))
    print(f'Drawings written to {osp.join(out_dir, "vis")}:')
    for path in written:
        print(f'  {path}')
    return written
