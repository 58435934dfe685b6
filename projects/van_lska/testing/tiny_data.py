# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Tiny datasets for CPU tests, written into a folder the caller owns.

* COCO instances (:func:`make_tiny_coco`), with ``--cfg-options`` helpers;
* ADE20K semantic segmentation (:func:`make_tiny_ade20k`);
* ImageNet folders (:func:`make_tiny_imagenet`).

Every builder is deterministic (fixed seed) and returns the root it wrote.

COCO: ``make_tiny_coco(root)`` writes
``root/annotations/instances_{train,val}2017.json`` and
``root/{train,val}2017/*.jpg``: small images (``HEIGHT x WIDTH``)
with 1-3 filled shapes each (rectangles and triangles), boxes and polygon
masks, in three COCO categories; the json lists all 80 COCO categories (so the
configs' 80-class ``CocoDataset`` and ``CocoMetric`` work unchanged).

The ``*_cfg_options`` helpers give ``--cfg-options`` / ``Config`` overrides
that point a COCO config at the tiny data with tiny image scales.
"""

import json
import os.path as osp
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image

HEIGHT, WIDTH = 96, 128
#: (COCO category id, COCO class name)
CATEGORIES = ((1, 'person'), (3, 'car'), (18, 'dog'))
_COCO_ID_GAPS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
TRAIN_IMAGES = 4
VAL_IMAGES = 2
#: keep-ratio scale (long, short) used instead of (1333, 800) in tests
TINY_SCALE = (WIDTH, HEIGHT)


def coco_categories() -> List[Dict]:
    """The 80 COCO categories with their official (gapped) ids, so that the
    80-class heads' labels map to category ids as on real COCO."""
    from mmdet.datasets import CocoDataset

    names = CocoDataset.METAINFO['classes']
    ids = [i for i in range(1, 91) if i not in _COCO_ID_GAPS]
    assert len(ids) == len(names) == 80
    return [
        dict(id=cid, name=name, supercategory='thing')
        for cid, name in zip(ids, names)
    ]


def _shape(
    rng: np.random.Generator, kind: int
) -> Tuple[List[float], np.ndarray]:
    """A random rectangle (``kind == 0``) or triangle as a polygon.

    Returns:
        tuple: flat polygon ``[x0, y0, x1, y1, ...]`` and its ``(K, 2)``
        int32 vertices.
    """
    w = int(rng.integers(40, 64))
    h = int(rng.integers(36, 56))
    x0 = int(rng.integers(0, WIDTH - w))
    y0 = int(rng.integers(0, HEIGHT - h))
    if kind == 0:
        pts = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    else:
        pts = [(x0 + w // 2, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    vertices = np.array(pts, dtype=np.int32)
    return [float(v) for p in pts for v in p], vertices


def _write_split(
    root: Path, split: str, num_images: int, rng: np.random.Generator
) -> Dict:
    img_dir = root / f'{split}2017'
    img_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img_id = len(images) + 1 + (1000 if split == 'val' else 0)
        img = rng.integers(0, 60, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        for j in range(1 + i % 3):
            cat_index = (i + j) % len(CATEGORIES)
            polygon, vertices = _shape(rng, kind=cat_index % 2)
            color = [(220, 60, 60), (60, 220, 60), (60, 60, 220)][cat_index]
            cv2.fillPoly(img, [vertices], color)
            x, y = vertices.min(0)
            x2, y2 = vertices.max(0)
            w, h = float(x2 - x), float(y2 - y)
            area = float(cv2.contourArea(vertices.astype(np.float32)))
            annotations.append(
                dict(
                    id=len(annotations) + 1 + img_id * 10,
                    image_id=img_id,
                    category_id=CATEGORIES[cat_index][0],
                    bbox=[float(x), float(y), w, h],
                    area=area,
                    segmentation=[polygon],
                    iscrowd=0,
                )
            )
        name = f'{img_id:012d}.jpg'
        cv2.imwrite(str(img_dir / name), img)
        images.append(
            dict(id=img_id, file_name=name, height=HEIGHT, width=WIDTH)
        )
    coco = dict(
        images=images, annotations=annotations, categories=coco_categories()
    )
    ann_dir = root / 'annotations'
    ann_dir.mkdir(parents=True, exist_ok=True)
    with open(ann_dir / f'instances_{split}2017.json', 'w') as f:
        json.dump(coco, f)
    return coco


def make_tiny_coco(root: Union[str, Path], seed: int = 0) -> Path:
    """Write the tiny dataset under ``root`` (created); returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    _write_split(root, 'train', TRAIN_IMAGES, rng)
    _write_split(root, 'val', VAL_IMAGES, rng)
    return root


def shrink_scales(obj, scale: Tuple[int, int] = TINY_SCALE):
    """Return a copy of a pipeline (or any nested list/dict) with every
    resize scale set to ``scale`` and crop sizes set to fit in it."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(shrink_scales(o, scale) for o in obj)
    if not isinstance(obj, dict):
        return obj
    out = {k: shrink_scales(v, scale) for k, v in obj.items()}
    kind = out.get('type')
    if kind in ('Resize', 'RandomResize') and 'scale' in out:
        out['scale'] = scale
    if kind == 'RandomResize':
        out['ratio_range'] = None
    if kind == 'RandomChoiceResize':
        out['scales'] = [scale]
    if kind == 'RandomCrop':
        out['crop_type'] = 'absolute'
        out['crop_size'] = (scale[1] * 3 // 4, scale[0] * 3 // 4)
    return out


def tiny_data_options(
    root: Union[str, Path], cfg=None, batch_size: int = 1
) -> Dict:
    """``Config.merge_from_dict`` options pointing the three dataloaders and
    evaluators of a COCO config at the tiny data.

    Args:
        root: folder written by :func:`make_tiny_coco`.
        cfg: the config; when given, its pipelines are shrunk to
            :data:`TINY_SCALE` as well.
        batch_size: train batch size per process.
    """
    root = osp.join(str(root), '')
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    opts = {
        'train_dataloader.batch_size': batch_size,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': ann,
        'test_evaluator.ann_file': ann,
    }
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
        opts[f'{loader}.dataset.data_root'] = root
    if cfg is not None:
        for loader in (
            'train_dataloader',
            'val_dataloader',
            'test_dataloader',
        ):
            pipeline = cfg[loader]['dataset']['pipeline']
            opts[f'{loader}.dataset.pipeline'] = shrink_scales(pipeline)
    return opts


def cli_options(opts: Dict) -> List[str]:
    """``--cfg-options`` items of :func:`tiny_data_options` (no lists)."""
    return [f'{k}={v}' for k, v in opts.items() if not isinstance(v, list)]


def tiny_pipeline_cli_options() -> List[str]:
    """``--cfg-options`` that set the 1x COCO-instance pipelines (plain
    ``Resize``) to :data:`TINY_SCALE`."""
    scale = f'({TINY_SCALE[0]},{TINY_SCALE[1]})'
    return [
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
    ]


# --------------------------------------------------------------- ADE20K
def make_tiny_ade20k(
    root: Union[str, Path], n_train: int = 2, n_val: int = 2
) -> Path:
    """ADEChallengeData2016 layout under ``root``: ``images/{training,
    validation}/*.jpg`` and ``annotations/.../*.png`` label maps with values
    0..150 (0 = 'other', ignored through ``reduce_zero_label``); image ``i``
    is ``(72 + 8 i) x 96``."""
    root = Path(root)
    rng = np.random.default_rng(0)
    for split, n in (('training', n_train), ('validation', n_val)):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(n):
            h, w = 72 + 8 * i, 96
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            label = np.zeros((h, w), np.uint8)
            label[: h // 2] = rng.integers(1, 151)
            label[h // 2 :, : w // 2] = 150
            label[h // 2 :, w // 2 :] = 0
            name = f'ADE_{split}_{i:08d}'
            Image.fromarray(img).save(root / 'images' / split / f'{name}.jpg')
            Image.fromarray(label).save(
                root / 'annotations' / split / f'{name}.png'
            )
    return root


# ------------------------------------------------------------- ImageNet
#: Three ImageNet class folders (wnids) of the tiny ImageNet.
IMAGENET_CLASSES: Tuple[str, ...] = ('n01440764', 'n01443537', 'n01484850')


def make_tiny_imagenet(
    root: Union[str, Path],
    per_class: Union[int, Mapping[str, int]] = 2,
    splits: Sequence[str] = ('train', 'val'),
) -> Path:
    """ImageNet folder layout under ``root``: ``<split>/<class>/*.JPEG``.

    Args:
        root: output folder.
        per_class: images per class of :data:`IMAGENET_CLASSES`, or a
            ``{class folder: count}`` mapping for other classes.
        splits: the split folders to write.

    Image ``i`` of a class is ``80 x (72 + 4 i)`` RGB noise with the class
    index's channel set to 255 (a learnable hint).
    """
    root = Path(root)
    counts = (
        dict(per_class)
        if isinstance(per_class, Mapping)
        else dict.fromkeys(IMAGENET_CLASSES, per_class)
    )
    rng = np.random.default_rng(1)
    for split in splits:
        for c, (name, count) in enumerate(counts.items()):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 256, (80, 72 + 4 * i, 3), np.uint8)
                img[..., c % 3] = 255
                Image.fromarray(img).save(folder / f'{name}_{i}.JPEG')
    return root


__all__: Sequence[str] = (
    'CATEGORIES',
    'HEIGHT',
    'IMAGENET_CLASSES',
    'TINY_SCALE',
    'WIDTH',
    'cli_options',
    'make_tiny_ade20k',
    'make_tiny_coco',
    'make_tiny_imagenet',
    'shrink_scales',
    'tiny_data_options',
    'tiny_pipeline_cli_options',
)
