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
        ValueError: another codebase (names the file and what to use).
    """
    from mmengine.config import Config

    return codebase_of(
        Config.fromfile(config),
        DEMO_CODEBASES,
        hint=' (image_demo.py draws detection and segmentation; use '
        "mmpretrain's ImageClassificationInferencer for classification)",
    )


def image_demo(
    img: str,
    config: str,
    checkpoint: str,
    out_dir: str,
    device: str = 'cpu',
    score_thr: float = 0.3,
    opacity: float = 0.5,
) -> List[str]:
    """Draw the predictions of ``checkpoint`` on ``img``.

    Args:
        img: an image file or a folder of images.
        config: the model's config file.
        checkpoint: its weights.
        out_dir: drawings go to ``out_dir/vis/`` (and, for detection, the
            raw predictions to ``out_dir/preds/*.json``).
        device: e.g. ``'cpu'`` or ``'cuda:0'``.
        score_thr: detections below this score are not drawn (mmdet).
        opacity: opacity of the drawn segmentation (mmseg).

    Returns:
        list: the written drawings (sorted paths).
    """
    import projects.van_lska  # noqa: F401  (registers VAN_LKA/VAN_LSKA)

    scope = demo_codebase(config)
    os.makedirs(out_dir, exist_ok=True)
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer

        inferencer = DetInferencer(
            model=config, weights=checkpoint, device=device
        )
        inferencer(
            img, out_dir=out_dir, pred_score_thr=score_thr, no_save_pred=False
        )
    else:
        from mmseg.apis import MMSegInferencer

        inferencer = MMSegInferencer(
            model=config, weights=checkpoint, device=device
        )
        inferencer(img, out_dir=out_dir, opacity=opacity)
    written = sorted(glob.glob(osp.join(out_dir, 'vis', '*')))
    print(f'Drawings written to {osp.join(out_dir, "vis")}:')
    for path in written:
        print(f'  {path}')
    return written
