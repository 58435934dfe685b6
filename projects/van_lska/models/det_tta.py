# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Test-time augmentation for instance segmentation (Mask R-CNN, Cascade
Mask R-CNN): boxes and masks of flipped / rescaled views merged into one
prediction.

mmdet 3.3's ``DetTTAModel`` merges boxes only and stops on masks ("TTA of
instance segmentation does not support now"). :class:`InstanceSegTTAModel`
merges the boxes exactly as ``DetTTAModel`` does and adds the masks:

1. every view's boxes and masks are mapped back to the original image
   (the detector already rescales them to ``ori_shape``; flipped views are
   flipped back, ``bbox_flip`` for boxes, ``torch.flip`` for masks);
2. all views' detections go through one class-aware NMS
   (``tta_cfg.nms``) and the ``tta_cfg.max_per_img`` best are kept: the
   boxes, scores and labels of ``DetTTAModel``;
3. the mask of a kept detection is a score-weighted vote of the masks of
   every detection it stands for: itself and the same-class detections of
   all views whose boxes overlap it by more than the NMS IoU threshold
   (those NMS suppressed in its favour); a pixel is foreground when the
   weighted fraction is at least ``mask_thr`` (0.5).

With a single view and the detector's own NMS threshold no other detection
overlaps a kept one that much, so the result is the detector's own.
Boxes-only predictions (no ``masks``) give ``DetTTAModel``'s result.
"""

from typing import Dict, List, Optional

import torch
from mmengine.model import BaseTTAModel
from torch import Tensor


class InstanceSegTTAModel(BaseTTAModel):
    """Merge the augmented views' boxes (as mmdet's ``DetTTAModel``) and
    masks (score-weighted vote) of an instance segmentation model.

    Args:
        module: the detector config (or module), as ``BaseTTAModel``.
        tta_cfg: ``dict(nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)`` as ``DetTTAModel``'s; ``mask_thr`` (default
            0.5): the vote a pixel needs to be foreground.

    Example::

        tta_model = dict(
            type='InstanceSegTTAModel',
            tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                         max_per_img=100))
    """

    def __init__(self, tta_cfg: Optional[Dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tta_cfg = tta_cfg

    # ------------------------------------------------------------------
    def test_step(self, data: Dict) -> List:
        """Predict every view with the detector, then merge (as
        ``BaseTTAModel.test_step``), with the views' ``flip`` hidden from
        the detector: mmdet's ``CascadeRoIHead`` merges its three stages'
        masks with ``merge_aug_masks``, which also flips them when the image
        meta says ``flip`` (left over from mmdet 2's TTA) and fails on
        tensors. Detectors predict in the (flipped) view's frame either
        way; :meth:`_merge_single_sample` flips back.

        Args:
            data: ``inputs`` and ``data_samples``, each a list over views
                of per-image lists (what ``TestTimeAug`` + the dataloader
                give).

        Returns:
            list: one merged ``DetDataSample`` per image.
        """
        num_views = len(data['data_samples'])
        views = [{k: v[i] for k, v in data.items()} for i in range(num_views)]
        predictions = []
        for view in views:
            flips = [
                s.metainfo.get('flip', False) for s in view['data_samples']
            ]
            for sample in view['data_samples']:
                sample.set_metainfo(dict(flip=False))
            preds = self.module.test_step(view)
            for pred, flip in zip(preds, flips):
                pred.set_metainfo(dict(flip=flip))
            predictions.append(preds)
        return self.merge_preds(list(zip(*predictions)))

    def merge_preds(self, data_samples_list: List[List]) -> List:
        """Merge each image's views (outer list: images, inner: views of
        one image, each a ``DetDataSample``) into one ``DetDataSample``."""
        return [
            self._merge_single_sample(views) for views in data_samples_list
        ]

    @staticmethod
    def _flip_back(
        bboxes: Tensor, masks: Optional[Tensor], meta: Dict
    ) -> tuple:
        """Boxes ``(N, 4)`` and masks ``(N, H, W)`` of a flipped view in
        the original orientation (unchanged for an unflipped view)."""
        from mmdet.structures.bbox import bbox_flip

        if not meta.get('flip', False):
            return bboxes, masks
        direction = meta['flip_direction']
        bboxes = bbox_flip(
            bboxes=bboxes, img_shape=meta['ori_shape'], direction=direction
        )
        if masks is not None:
            dims = {
                'horizontal': [-1],
                'vertical': [-2],
                'diagonal': [-2, -1],
            }[direction]
            masks = masks.flip(dims)
        return bboxes, masks

    def _merge_single_sample(self, data_samples: List):
        """One image: see the module docstring.

        Args:
            data_samples: the views' ``DetDataSample`` s; each
                ``pred_instances`` has ``bboxes (N, 4)``, ``scores (N,)``,
                ``labels (N,)`` and, for instance segmentation, ``masks
                (N, H, W)`` (bool, ``(H, W)`` = ``ori_shape``).

        Returns:
            DetDataSample: the first view's sample with the merged
            ``pred_instances``.
        """
        from mmcv.ops import batched_nms
        from mmengine.structures import InstanceData

        with_masks = data_samples[0].pred_instances.get('masks') is not None
        bboxes, scores, labels, masks = [], [], [], []
        for sample in data_samples:
            pred = sample.pred_instances
            view_masks = pred.masks if with_masks else None
            if with_masks and not isinstance(view_masks, Tensor):
                view_masks = torch.as_tensor(view_masks)  # BitmapMasks/ndarray
            b, m = self._flip_back(pred.bboxes, view_masks, sample.metainfo)
            bboxes.append(b)
            scores.append(pred.scores)
            labels.append(pred.labels)
            if with_masks:
                masks.append(m)
        bboxes = torch.cat(bboxes)
        scores = torch.cat(scores)
        labels = torch.cat(labels)
        if bboxes.numel() == 0:
            return data_samples[0]

        nms_cfg = self.tta_cfg['nms']
        det_bboxes, keep = batched_nms(bboxes, scores, labels, nms_cfg)
        max_per_img = self.tta_cfg['max_per_img']
        det_bboxes = det_bboxes[:max_per_img]
        keep = keep[:max_per_img]

        results = InstanceData()
        results.bboxes = det_bboxes[:, :-1].clone()
        results.scores = det_bboxes[:, -1].clone()
        results.labels = labels[keep]
        if with_masks:
            results.masks = self._vote_masks(
                bboxes,
                scores,
                labels,
                torch.cat(masks),
                keep,
                float(nms_cfg['iou_threshold']),
                float(self.tta_cfg.get('mask_thr', 0.5)),
            )
        merged = data_samples[0]
        merged.pred_instances = results
        return merged

    @staticmethod
    def _vote_masks(
        bboxes: Tensor,
        scores: Tensor,
        labels: Tensor,
        masks: Tensor,
        keep: Tensor,
        iou_thr: float,
        mask_thr: float,
    ) -> Tensor:
        """The masks ``(K, H, W)`` (bool) of the kept detections ``keep``
        ``(K,)`` from all ``N`` detections' boxes ``(N, 4)``, scores, labels
        and masks ``(N, H, W)``: the score-weighted fraction of the
        same-class detections overlapping a kept box by IoU > ``iou_thr``
        (the kept one included) that cover a pixel, ``>= mask_thr``."""
        from mmdet.structures.bbox import bbox_overlaps

        ious = bbox_overlaps(bboxes[keep], bboxes)  # (K, N)
        members = (ious > iou_thr) & (labels[keep][:, None] == labels[None])
        members[torch.arange(len(keep)), keep] = True
        out = masks.new_zeros((len(keep), *masks.shape[1:]), dtype=torch.bool)
        for i in range(len(keep)):
            idx = members[i].nonzero()[:, 0]
            if len(idx) == 1:
                out[i] = masks[idx[0]].bool()
                continue
            weights = scores[idx].float()
            if not weights.sum() > 0:  # all scores 0: a plain majority
                weights = torch.ones_like(weights)
            vote = torch.einsum('n,nhw->hw', weights, masks[idx].float())
            out[i] = vote >= mask_thr * weights.sum()
        return out
