# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""mmseg's ``SegLocalVisualizer`` with two fixes, for the segmentation
configs (``visualizer.type='SegOverlayVisualizer'``; importing
``projects.van_lska`` registers it into mmseg's ``VISUALIZERS``).

* Any numpy layout: mmseg's ``browse_dataset`` passes a transposed view of
  the image tensor, and OpenCV 4.x refuses to draw the class labels into
  the mask that ``np.zeros_like`` makes from it ("Layout of the output
  array img is incompatible with cv::Mat"). The image is made contiguous.
* Only class pixels are tinted: mmseg blends every pixel with the class
  colour and pixels without a drawn class (ignored, or a ``background``
  class) with black, which darkens the whole picture. Here pixels of a
  class named ``background`` and of labels outside the class list keep
  their colours.

``tools/test.py --show-dir``, ``browse_dataset`` and the inferencers of
mmseg draw through it; labels are drawn as mmseg draws them.
"""

from typing import List, Optional

import cv2
import numpy as np
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

#: Class names that are not tinted (the absence of an object).
UNTINTED = ('background',)


@VISUALIZERS.register_module()
class SegOverlayVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that tints only the pixels of drawn classes
    and takes images of any memory layout (see the module docstring)."""

    def _draw_sem_seg(
        self,
        image: np.ndarray,
        sem_seg: PixelData,
        classes: Optional[List],
        palette: Optional[List],
        with_labels: Optional[bool] = True,
    ) -> np.ndarray:
        """Draw a label map ``sem_seg`` ``(1, H, W)`` on ``image``
        ``(H, W, 3)`` RGB; returns the drawn RGB image."""
        image = np.ascontiguousarray(image)
        seg = np.asarray(sem_seg.cpu().data)[0]
        labels = [
            int(i)
            for i in np.unique(seg)[::-1]
            if i < len(classes) and classes[int(i)] not in UNTINTED
        ]
        colors = np.zeros_like(image, dtype=np.uint8)
        tinted = np.zeros(seg.shape, dtype=bool)
        for label in labels:
            where = seg == label
            colors[where] = palette[label]
            tinted |= where
        out = image.astype(np.float32)
        out[tinted] = (
            image[tinted] * (1 - self.alpha) + colors[tinted] * self.alpha
        )
        out = out.astype(np.uint8)
        if with_labels:
            out = self._draw_class_names(out, seg, labels, classes, palette)
        self.set_image(out)
        return out

    def _draw_class_names(
        self,
        image: np.ndarray,
        seg: np.ndarray,
        labels: List[int],
        classes: List,
        palette: List,
    ) -> np.ndarray:
        """mmseg's label boxes: each class name in a box of its colour near
        the middle of its pixels."""
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = min(image.shape[:2]) / 500
        thickness = 1 if min(image.shape[:2]) < 300 else 2
        for label in labels:
            x, y = self._get_center_loc((seg == label).astype(np.uint8))
            text = classes[label]
            (w, h), base = cv2.getTextSize(text, font, scale, thickness)
            corner = (int(x) + w + base, int(y) + h + base)
            cv2.rectangle(image, (int(x), int(y)), corner, palette[label], -1)
            cv2.rectangle(image, (int(x), int(y)), corner, (0, 0, 0), 1)
            cv2.putText(
                image,
                text,
                (int(x), int(y) + h),
                font,
                scale,
                (255, 255, 255),
                thickness,
                cv2.LINE_AA,
            )
        return image
