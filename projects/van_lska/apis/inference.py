# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Draw the predictions of any of the suite's models on images
(``demo/image_demo.py``).

The codebase's inferencer predicts (mmdet's ``DetInferencer``, mmseg's
``MMSegInferencer``, mmpretrain's ``ImageClassificationInferencer``, by the
config's ``default_scope``) and :mod:`projects.van_lska.apis.drawing` draws
one PNG per image: boxes/masks with class and score (``--score-thr``; a line
on the picture when nothing passes it), a tinted segmentation with a legend,
or the top-k classes with their scores.
"""

import os
import os.path as osp
from typing import List

import numpy as np

from projects.van_lska.apis.config import codebase_of

#: The codebases :func:`image_demo` draws.
DEMO_CODEBASES = ('mmdet', 'mmseg', 'mmpretrain')
#: Image file extensions read from a folder.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def demo_codebase(config: str) -> str:
    """``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``: the codebase of
    ``config``.

    Raises:
        UserError: (a ``ValueError``) another codebase, or a config that
            cannot be read.
    """
    from projects.van_lska.apis.errors import UserError, read_config

    try:
        return codebase_of(read_config(config), DEMO_CODEBASES)
    except UserError:
        raise
    except ValueError as e:
        raise UserError(str(e)) from None


def image_files(img: str) -> List[str]:
    """``img``, or the images (:data:`IMAGE_SUFFIXES`) of folder ``img``,
    sorted."""
    if not osp.isdir(img):
        return [img]
    return sorted(
        osp.join(img, f)
        for f in os.listdir(img)
        if f.lower().endswith(IMAGE_SUFFIXES)
    )


def image_demo(
    img: str,
    config: str,
    checkpoint: str,
    out_dir: str,
    device: str = 'cpu',
    score_thr: float = 0.3,
    opacity: float = 0.5,
    allow_partial: bool = False,
    topk: int = 5,
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
        out_dir: drawings go to ``out_dir/vis/IMAGE_NAME.png`` (and, for
            detection, the raw predictions to ``out_dir/preds/*.json``).
        device: e.g. ``'cpu'`` or ``'cuda:0'``.
        score_thr: detections below this score are not drawn (mmdet).
        opacity: opacity of the drawn segmentation (mmseg).
        topk: classes listed for a classifier (mmpretrain).
        allow_partial: draw even if the checkpoint covers only part of the
            model.

    Returns:
        list: the written drawings (sorted paths).
    """
    import projects.van_lska  # noqa: F401  (registers VAN_LKA/VAN_LSKA)
    from projects.van_lska.apis.drawing import save_png
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
        images = image_files(img)
        if not images:
            raise UserError(
                f'folder {img} holds no images ({", ".join(IMAGE_SUFFIXES)})'
            )
        os.makedirs(out_dir, exist_ok=True)
        draw = {'mmdet': _draw_det, 'mmseg': _draw_seg}.get(scope, _draw_cls)
        inferencer = _inferencer(scope, config, checkpoint, device)
        check_covers(
            inferencer.model, checkpoint, allow_partial, 'run the demo'
        )
        options = dict(
            score_thr=score_thr, opacity=opacity, topk=topk, out_dir=out_dir
        )
        written = []
        for path in images:
            picture = draw(inferencer, path, **options)
            name = osp.splitext(osp.basename(path))[0] + '.png'
            written.append(save_png(picture, osp.join(out_dir, 'vis', name)))
    print(f'Drawings written to {osp.join(out_dir, "vis")}:')
    for path in written:
        print(f'  {path}')
    return written


def _inferencer(scope: str, config: str, checkpoint: str, device: str):
    """The codebase's inferencer for ``config`` with ``checkpoint``."""
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer

        return DetInferencer(model=config, weights=checkpoint, device=device)
    if scope == 'mmseg':
        from mmseg.apis import MMSegInferencer

        return MMSegInferencer(model=config, weights=checkpoint, device=device)
    from mmpretrain.apis import ImageClassificationInferencer

    return ImageClassificationInferencer(
        model=config, pretrained=checkpoint, device=device
    )


def _rgb(path: str) -> np.ndarray:
    import mmcv

    return mmcv.imread(path, channel_order='rgb')


def _meta(inferencer) -> dict:
    return getattr(inferencer.model, 'dataset_meta', None) or {}


def _draw_det(inferencer, path: str, score_thr: float, out_dir: str, **_):
    """Boxes/masks above ``score_thr``; the raw predictions go to
    ``out_dir/preds/NAME.json`` (mmdet's format)."""
    from projects.van_lska.apis.drawing import detection_panel, instances_of

    (sample,) = inferencer(
        path, return_datasamples=True, no_save_vis=True, no_save_pred=True
    )['predictions']
    inferencer.pred2dict(sample, pred_out_dir=out_dir)
    meta = _meta(inferencer)
    return detection_panel(
        _rgb(path),
        f'prediction (score >= {score_thr:.2f})',
        classes=meta.get('classes'),
        palette=meta.get('palette'),
        score_thr=score_thr,
        **instances_of(sample.pred_instances),
    )


def _draw_seg(inferencer, path: str, opacity: float, **_):
    """The predicted classes tinted, with a legend."""
    from projects.van_lska.apis.drawing import segmentation_sheet

    sample = inferencer(path, return_datasamples=True)
    if isinstance(sample, dict):  # with visualisations (mmseg 1.2: never)
        sample = sample['predictions']
    if isinstance(sample, list):
        (sample,) = sample
    meta = _meta(inferencer)
    return segmentation_sheet(
        _rgb(path),
        None,
        sample.pred_sem_seg.data[0].cpu().numpy(),
        meta.get('classes'),
        meta.get('palette'),
        opacity,
    )


def _draw_cls(inferencer, path: str, topk: int, **_):
    """The image with the ``topk`` classes and their scores."""
    from projects.van_lska.apis.drawing import classification_panel

    (result,) = inferencer(path)
    scores = np.asarray(result['pred_scores'], dtype=np.float64)
    classes = inferencer.classes
    best = np.argsort(-scores)[: max(1, topk)]
    rows = [
        (
            classes[i] if classes is not None else f'class {i}',
            float(scores[i]),
        )
        for i in best
    ]
    return classification_panel(
        _rgb(path), f'prediction (top {len(rows)})', rows
    )
