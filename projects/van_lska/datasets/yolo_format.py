# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The synthetic shapes in the YOLO (Ultralytics) dataset format.

The scenes are those of :mod:`.synthetic_shapes` (same generator, same
random stream per seed and split, so the images are byte-identical to the
COCO/ADE20K ones of the same arguments), written as two Ultralytics
datasets that share their images (hard links where the file system allows,
else copies)::

    OUT/detect/data.yaml
    OUT/detect/images/{train,val}/000000.jpg
    OUT/detect/labels/{train,val}/000000.txt    # "cls cx cy w h"
    OUT/segment/data.yaml
    OUT/segment/images/{train,val}/000000.jpg
    OUT/segment/labels/{train,val}/000000.txt   # "cls x1 y1 x2 y2 ..."
    OUT/meta.json

Coordinates are normalised to ``[0, 1]`` by the image width and height.
Boxes and polygons describe the visible part of each object and are taken
from the COCO annotations of the scene (:func:`.synthetic_shapes.
coco_annotations`): the box is the COCO ``bbox``; an object that occlusion
cut into several pieces is one polygon whose pieces are joined by
zero-width bridges (YOLO labels have one polygon per object). Class ``i``
is :data:`.synthetic_shapes.CLASSES` ``[i]``. ``data.yaml`` has no
``path:``, so Ultralytics resolves ``images/...`` next to it and the
dataset can be moved.

Writing is atomic: everything goes into a temporary folder beside ``OUT``
that is renamed at the end; an existing, non-empty ``OUT`` is refused
unless ``force=True``.
"""

import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Sequence

import numpy as np

from ..apis.files import folder_written_atomically
from .synthetic_shapes import (
    CLASSES,
    SPLITS,
    ShapesConfig,
    _imwrite,
    coco_annotations,
    make_scene,
    split_seed,
)

#: Ultralytics tasks written, each a dataset folder under ``OUT``.
TASKS = ('detect', 'segment')


def merge_polygons(pieces: Sequence[np.ndarray]) -> np.ndarray:
    """Join polygon pieces into one closed path with zero-width bridges.

    Starting from the largest piece, the nearest remaining piece is spliced
    in at its closest pair of vertices (go there, around it, come back), so
    the enclosed area is the union of the pieces (as with Ultralytics' own
    COCO converter, ``merge_multi_segment``; a rasteriser that draws edges,
    such as ``cv2.fillPoly``, also draws the bridges, one pixel wide).

    Args:
        pieces: Polygons, each ``(n_i, 2)`` with ``n_i >= 3``.

    Returns:
        np.ndarray: ``(sum n_i + 2 * (len(pieces) - 1), 2)`` vertices.
    """
    if not pieces:
        raise ValueError('no polygon pieces to merge')
    order = sorted(range(len(pieces)), key=lambda i: -_area(pieces[i]))
    path = np.asarray(pieces[order[0]], np.float64)
    rest = [np.asarray(pieces[i], np.float64) for i in order[1:]]
    while rest:
        best = None
        for r, piece in enumerate(rest):
            dist = ((path[:, None] - piece[None]) ** 2).sum(-1)
            i, j = np.unravel_index(int(dist.argmin()), dist.shape)
            if best is None or dist[i, j] < best[0]:
                best = (dist[i, j], r, i, j)
        _, r, i, j = best
        piece = rest.pop(r)
        loop = np.concatenate([np.roll(piece, -j, axis=0), piece[j : j + 1]])
        path = np.concatenate([path[: i + 1], loop, path[i:]])
    return path


def _area(poly: np.ndarray) -> float:
    x, y = np.asarray(poly, np.float64).T
    return 0.5 * abs(
        float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    )


def _fmt(values) -> str:
    return ' '.join(f'{v:.6f}' for v in values)


def yolo_labels(anns: List[Dict], width: int, height: int) -> Dict[str, str]:
    """The ``detect`` and ``segment`` label files of one image.

    Args:
        anns: COCO annotations of the image (``category_id`` 1-based,
            ``bbox`` ``[x, y, w, h]`` in pixels, ``segmentation`` polygons).
        width, height: Image size in pixels.

    Returns:
        dict: ``{'detect': text, 'segment': text}``, one line per object.
    """
    scale = np.array([width, height], np.float64)
    det, seg = [], []
    for ann in anns:
        cls = ann['category_id'] - 1
        x, y, w, h = ann['bbox']
        det.append(
            f'{cls} '
            + _fmt([(x + w / 2) / width, (y + h / 2) / height])
            + ' '
            + _fmt([w / width, h / height])
        )
        pieces = [np.reshape(p, (-1, 2)) for p in ann['segmentation']]
        poly = (merge_polygons(pieces) / scale).clip(0, 1)
        seg.append(f'{cls} ' + _fmt(poly.reshape(-1)))
    return {
        'detect': ''.join(line + '\n' for line in det),
        'segment': ''.join(line + '\n' for line in seg),
    }


def _data_yaml(task: str, meta: Dict) -> str:
    label = {
        'detect': 'boxes "cls cx cy w h"',
        'segment': 'polygons "cls x1 y1 x2 y2 ..."',
    }[task]
    lines = [
        '# Synthetic shapes (projects/van_lska/datasets/yolo_format.py): '
        f'seed {meta["seed"]}, {meta["num_train"]} train / '
        f'{meta["num_val"]} val images of {meta["size"][1]}x'
        f'{meta["size"][0]} px;',
        f'# labels: {label}, normalised. Paths are relative to this file.',
        'train: images/train',
        'val: images/val',
        f'nc: {len(meta["classes"])}',
        'names:',
    ]
    lines += [f'  {i}: {name}' for i, name in enumerate(meta['classes'])]
    return '\n'.join(lines) + '\n'


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_split(
    root: str, split: str, num_images: int, seed: int, cfg: ShapesConfig
) -> int:
    """Write one split of both tasks; returns the number of objects."""
    rng = np.random.default_rng(split_seed(seed, split))
    dirs = {
        (task, kind): osp.join(root, task, kind, split)
        for task in TASKS
        for kind in ('images', 'labels')
    }
    for d in dirs.values():
        os.makedirs(d)
    objects = 0
    for i in range(num_images):
        scene = make_scene(rng, cfg)
        name = f'{i:06d}'
        anns = coco_annotations(scene, i + 1, 1)
        objects += len(anns)
        image = osp.join(dirs['detect', 'images'], name + '.jpg')
        _imwrite(image, scene.image)
        _link_or_copy(
            image, osp.join(dirs['segment', 'images'], name + '.jpg')
        )
        labels = yolo_labels(anns, cfg.width, cfg.height)
        for task in TASKS:
            path = osp.join(dirs[task, 'labels'], name + '.txt')
            with open(path, 'w') as f:
                f.write(labels[task])
    return objects


def generate_yolo_dataset(
    out_dir: str,
    seed: int = 0,
    num_train: int = 600,
    num_val: int = 100,
    size: Sequence[int] = (128, 128),
    force: bool = False,
) -> Dict:
    """Write the YOLO-format shapes dataset (see the module docstring).

    Args:
        out_dir: Dataset root, e.g. ``data/shapes/yolo``.
        seed: Base seed; the same arguments give identical files, and the
            images of :func:`.synthetic_shapes.generate_dataset` with the
            same arguments.
        num_train, num_val: Images per split.
        size: ``(height, width)`` of the images.
        force: Replace an existing, non-empty ``out_dir``.

    Returns:
        dict: The contents of ``meta.json`` plus ``data_yaml`` (task ->
        path, see :func:`data_yaml_paths`).

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and ``force`` is
            not set.
        ValueError: A negative image count or a bad size.
    """
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f'{name} must be an int >= 0; got {value!r}')
    if len(size) != 2 or min(int(s) for s in size) < 16:
        raise ValueError(f'size must be (height, width) >= 16; got {size!r}')
    cfg = ShapesConfig(height=int(size[0]), width=int(size[1]))
    out_dir = osp.abspath(out_dir)
    meta = dict(
        seed=seed,
        num_train=num_train,
        num_val=num_val,
        size=[cfg.height, cfg.width],
        classes=list(cfg.classes),
        objects={},
    )
    with folder_written_atomically(out_dir, force) as tmp:
        for split, num in (('train', num_train), ('val', num_val)):
            meta['objects'][split] = _write_split(tmp, split, num, seed, cfg)
        for task in TASKS:
            with open(osp.join(tmp, task, 'data.yaml'), 'w') as f:
                f.write(_data_yaml(task, meta))
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
    return dict(meta, data_yaml=data_yaml_paths(out_dir))


def data_yaml_paths(out_dir: str) -> Dict[str, str]:
    """Task -> path of its ``data.yaml`` under ``out_dir``."""
    return {task: osp.join(out_dir, task, 'data.yaml') for task in TASKS}


def yolo_dataset_exists(out_dir: str) -> bool:
    """True if a complete dataset (``meta.json`` is written last) is there."""
    return osp.isfile(osp.join(out_dir, 'meta.json')) and all(
        osp.isfile(osp.join(out_dir, task, 'data.yaml')) for task in TASKS
    )


def load_meta(out_dir: str) -> Dict:
    """``meta.json`` of a dataset written by :func:`generate_yolo_dataset`."""
    path = osp.join(out_dir, 'meta.json')
    if not yolo_dataset_exists(out_dir):
        raise FileNotFoundError(
            f'{out_dir} is not a complete YOLO shapes dataset ({path} or a '
            f'{"/".join(TASKS)} data.yaml is missing); write one with '
            'generate_yolo_dataset'
        )
    with open(path) as f:
        return json.load(f)


__all__ = [
    'CLASSES',
    'SPLITS',
    'TASKS',
    'data_yaml_paths',
    'generate_yolo_dataset',
    'load_meta',
    'merge_polygons',
    'yolo_dataset_exists',
    'yolo_labels',
]
