# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The synthetic shapes data set's semantic segmentation split as an mmseg
dataset type (``configs/quickstart/fpn_van_lska_b0_shapes.py``).

mmseg's tools read the class names from the dataset *class*
(``confusion_matrix`` uses ``dataset.METAINFO['classes']``), so a plain
``BaseSegDataset`` with a ``metainfo`` argument is not enough: this type
carries :data:`~.synthetic_shapes.SEG_CLASSES` and their palette. Importing
this module registers it into mmseg's ``DATASETS`` (the quick-start config
lists it in ``custom_imports``).
"""

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .synthetic_shapes import SEG_CLASSES, SEG_PALETTE


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """``data/shapes/ade``: ``images/{training,validation}/*.jpg`` and
    ``annotations/.../*.png`` with label 0 = background, 1-4 = circle,
    triangle, square, star (``reduce_zero_label=False``: the background is
    a class of its own)."""

    METAINFO = dict(
        classes=SEG_CLASSES, palette=[list(c) for c in SEG_PALETTE]
    )

    def __init__(
        self,
        img_suffix: str = '.jpg',
        seg_map_suffix: str = '.png',
        reduce_zero_label: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs,
        )
