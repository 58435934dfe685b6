# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""A synthetic shapes dataset that ships with the repository.

Every scene is a textured background with 1-6 filled shapes (circle,
triangle, square, star) of random size, rotation and colour, drawn in
random depth order so that they may overlap. Colour and texture are drawn
independently of the class, so a model can only tell the classes apart by
their outline. The same scenes are written in two formats:

* COCO instances (for mmdet)::

      OUT/coco/{train,val}/000000.jpg
      OUT/coco/annotations/instances_{train,val}.json

  ``bbox``, ``area`` and the polygon ``segmentation`` describe the visible
  part of each object (occluded parts are cut away); ``iscrowd`` is 0.
  Category ids are 1..4 in the order of :data:`CLASSES`.

* ADE20K-style semantic segmentation (for mmseg)::

      OUT/ade/images/{training,validation}/000000.jpg
      OUT/ade/annotations/{training,validation}/000000.png

  Label maps are uint8 PNGs with 0 = background and ``i + 1`` = class
  ``CLASSES[i]`` (use ``reduce_zero_label=False`` with :data:`SEG_CLASSES`).

Generation only needs numpy and OpenCV and is deterministic: the same seed,
split sizes and image size give byte-identical files.
"""

import json
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Object classes, in COCO category-id order (ids 1..4).
CLASSES: Tuple[str, ...] = ('circle', 'triangle', 'square', 'star')
#: Semantic-segmentation classes (label value = index).
SEG_CLASSES: Tuple[str, ...] = ('background',) + CLASSES
#: Drawing colours for visualisation (RGB), one per class.
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (255, 225, 25),
)
SEG_PALETTE: Tuple[Tuple[int, int, int], ...] = ((0, 0, 0),) + PALETTE

#: Split names: COCO-style and ADE20K-style folder names.
SPLITS = {'train': 'training', 'val': 'validation'}

_JPEG_QUALITY = 95


@dataclass
class ShapesConfig:
    """Scene parameters.

    Args:
        height, width: Image size in pixels.
        min_objects, max_objects: Objects per image (inclusive range).
        min_radius, max_radius: Circumradius of a shape as a fraction of
            ``min(height, width)``.
        min_visible: An object is only kept if at least this fraction of it
            stays visible after the later ones are drawn on top.
        min_contrast: Minimum mean absolute RGB difference between an
            object's colour and the background under it.
        min_area: Smallest object area in pixels.
    """

    height: int = 128
    width: int = 128
    min_objects: int = 1
    max_objects: int = 6
    min_radius: float = 0.08
    max_radius: float = 0.22
    min_visible: float = 0.6
    min_contrast: float = 60.0
    min_area: int = 40
    classes: Tuple[str, ...] = field(default=CLASSES)


# --------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour, float32 (3,) in [0, 255]."""
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _smooth_noise(
    rng: np.random.Generator, h: int, w: int, cells: int
) -> np.ndarray:
    """Low-frequency noise in [0, 1], shape (h, w)."""
    small = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background, float32 (h, w, 3) in [0, 255].

    Mixes two random colours through one of several patterns (gradient,
    stripes, checkerboard, blotches) and adds fine noise.
    """
    c1, c2 = _random_colour(rng), _random_colour(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # linear gradient
        angle = rng.uniform(0, np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    elif kind == 1:  # stripes
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 24)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * t / period)
    elif kind == 2:  # checkerboard
        cell = int(rng.integers(6, 20))
        t = ((xx // cell + yy // cell) % 2).astype(np.float32)
        t = cv2.GaussianBlur(t, (0, 0), 0.8)
    else:  # blotches
        t = _smooth_noise(rng, h, w, int(rng.integers(3, 9)))
    # Keep the texture's contrast moderate so the objects stand out.
    t = 0.5 + (t - 0.5) * rng.uniform(0.3, 0.8)
    img = c1[None, None] * (1 - t[..., None]) + c2[None, None] * t[..., None]
    img += rng.normal(0, rng.uniform(2, 10), size=img.shape)
    return img.astype(np.float32)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------
def _regular_polygon(
    n: int, cx: float, cy: float, r: float, theta: float
) -> np.ndarray:
    """Vertices (n, 2) of a regular n-gon with circumradius ``r``."""
    a = theta + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def _star(
    cx: float, cy: float, r: float, theta: float, inner: float
) -> np.ndarray:
    """Vertices (10, 2) of a five-pointed star."""
    a = theta + np.pi * np.arange(10) / 5
    rad = np.where(np.arange(10) % 2 == 0, r, r * inner)
    return np.stack([cx + rad * np.cos(a), cy + rad * np.sin(a)], axis=1)


def shape_mask(
    label: int,
    cx: float,
    cy: float,
    r: float,
    theta: float,
    h: int,
    w: int,
    inner: float = 0.45,
) -> np.ndarray:
    """Binary mask (h, w) uint8 of one shape.

    Args:
        label: Index into :data:`CLASSES` (0 circle, 1 triangle,
            2 square, 3 star).
        cx, cy, r: Centre and circumradius in pixels.
        theta: Rotation in radians.
        inner: Inner/outer radius ratio of the star.
    """
    mask = np.zeros((h, w), np.uint8)
    shift = 4  # sub-pixel precision of cv2 drawing
    scale = 1 << shift
    if label == 0:
        cv2.circle(
            mask,
            (int(round(cx * scale)), int(round(cy * scale))),
            int(round(r * scale)),
            1,
            -1,
            cv2.LINE_8,
            shift,
        )
        return mask
    if label == 1:
        pts = _regular_polygon(3, cx, cy, r, theta)
    elif label == 2:
        pts = _regular_polygon(4, cx, cy, r, theta)
    elif label == 3:
        pts = _star(cx, cy, r, theta, inner)
    else:
        raise ValueError(f'unknown label {label}')
    pts = np.round(pts * scale).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, shift)
    return mask


def _paint(
    img: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    min_contrast: float,
) -> None:
    """Fill ``mask`` in ``img`` (in place) with a shaded random colour that
    contrasts with the background under it."""
    region = mask.astype(bool)
    under = img[region].mean(axis=0)
    for _ in range(20):
        colour = _random_colour(rng)
        if np.abs(colour - under).mean() >= min_contrast:
            break
    h, w = mask.shape
    shade = _smooth_noise(rng, h, w, 3) - 0.5  # soft lighting
    fill = colour[None, None] * (1 + 0.3 * shade[..., None])
    fill += rng.normal(0, 4, size=fill.shape)
    img[region] = fill[region]


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (flat ``[x1, y1, x2, y2, ...]`` lists) of a mask.

    Pieces with fewer than three points are dropped.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polys = []
    for c in contours:
        if len(c) < 3:
            continue
        # Pixel centres -> pixel area covered (0.5 offset), 2 decimals.
        pts = c.reshape(-1, 2).astype(np.float64) + 0.5
        polys.append([round(float(v), 2) for v in pts.reshape(-1)])
    return polys


@dataclass
class Scene:
    """One generated image with its objects.

    Attributes:
        image: (H, W, 3) uint8, RGB.
        labels: (N,) int class indices into :data:`CLASSES`.
        masks: (N, H, W) uint8 visible masks.
        semantic: (H, W) uint8 label map (0 = background, i + 1 = class i).
    """

    image: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    semantic: np.ndarray


def make_scene(
    rng: np.random.Generator, cfg: Optional[ShapesConfig] = None
) -> Scene:
    """Draw one scene.

    Objects are placed one after another; a new object is rejected if it
    would leave an earlier one less than ``cfg.min_visible`` visible.
    """
    cfg = cfg or ShapesConfig()
    h, w = cfg.height, cfg.width
    img = _background(rng, h, w)
    side = min(h, w)
    ids = np.zeros((h, w), np.int32)  # 0 = background, k + 1 = object k
    full_areas: List[int] = []
    labels: List[int] = []
    n_target = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    tries = 0
    while len(labels) < n_target and tries < 50 * n_target:
        tries += 1
        label = int(rng.integers(0, len(cfg.classes)))
        r = rng.uniform(cfg.min_radius, cfg.max_radius) * side
        cx = rng.uniform(r * 0.5, w - r * 0.5)
        cy = rng.uniform(r * 0.5, h - r * 0.5)
        theta = rng.uniform(0, 2 * np.pi)
        inner = rng.uniform(0.38, 0.5)
        mask = shape_mask(label, cx, cy, r, theta, h, w, inner)
        area = int(mask.sum())
        if area < cfg.min_area:
            continue
        new_ids = np.where(mask > 0, len(labels) + 1, ids)
        visible = np.bincount(new_ids.ravel(), minlength=len(labels) + 2)
        if any(
            visible[k + 1] < cfg.min_visible * full_areas[k]
            for k in range(len(labels))
        ):
            continue
        _paint(img, mask, rng, cfg.min_contrast)
        ids = new_ids
        full_areas.append(area)
        labels.append(label)
    # A slight blur softens the jagged edges like a camera would.
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    image = img.clip(0, 255).round().astype(np.uint8)
    n = len(labels)
    masks = (
        np.stack([(ids == k + 1).astype(np.uint8) for k in range(n)])
        if n
        else np.zeros((0, h, w), np.uint8)
    )
    lut = np.array([0] + [lab + 1 for lab in labels], np.uint8)
    semantic = lut[ids]
    return Scene(image, np.array(labels, np.int64), masks, semantic)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _imwrite(path: str, array: np.ndarray, rgb: bool = True) -> None:
    if rgb:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
        ok = cv2.imwrite(
            path, array, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
        )
    else:
        ok = cv2.imwrite(path, array)
    if not ok:
        raise OSError(f'could not write {path}')


def coco_annotations(
    scene: Scene, image_id: int, first_ann_id: int
) -> List[Dict]:
    """COCO ``annotations`` entries for one scene (visible parts only)."""
    anns = []
    for label, mask in zip(scene.labels, scene.masks):
        ys, xs = np.nonzero(mask)
        polys = mask_to_polygons(mask)
        if len(xs) == 0 or not polys:
            continue
        x0, y0 = int(xs.min()), int(ys.min())
        bw, bh = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
        anns.append(
            dict(
                id=first_ann_id + len(anns),
                image_id=image_id,
                category_id=int(label) + 1,
                bbox=[x0, y0, bw, bh],
                area=int(mask.sum()),
                segmentation=polys,
                iscrowd=0,
            )
        )
    return anns


def split_seed(seed: int, split: str) -> np.random.SeedSequence:
    """Independent random stream per (seed, split)."""
    return np.random.SeedSequence([seed, list(SPLITS).index(split)])


def generate_split(
    out_dir: str,
    split: str,
    num_images: int,
    seed: int = 0,
    cfg: Optional[ShapesConfig] = None,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Dict:
    """Write one split in both formats; returns the COCO dict.

    Args:
        out_dir: Dataset root (``coco/`` and ``ade/`` are made inside).
        split: ``'train'`` or ``'val'``.
        num_images: Number of scenes.
        seed: Base seed; each split has its own stream.
        cfg: Scene parameters.
        progress: called as ``progress(split, done, num_images)`` after
            each written image.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {list(SPLITS)}; got {split}')
    cfg = cfg or ShapesConfig()
    rng = np.random.default_rng(split_seed(seed, split))
    coco_img_dir = osp.join(out_dir, 'coco', split)
    ade_img_dir = osp.join(out_dir, 'ade', 'images', SPLITS[split])
    ade_ann_dir = osp.join(out_dir, 'ade', 'annotations', SPLITS[split])
    for d in (coco_img_dir, ade_img_dir, ade_ann_dir):
        os.makedirs(d, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'coco', 'annotations'), exist_ok=True)

    images, annotations = [], []
    for i in range(num_images):
        scene = make_scene(rng, cfg)
        name = f'{i:06d}'
        _imwrite(osp.join(coco_img_dir, name + '.jpg'), scene.image)
        _imwrite(osp.join(ade_img_dir, name + '.jpg'), scene.image)
        _imwrite(
            osp.join(ade_ann_dir, name + '.png'), scene.semantic, rgb=False
        )
        images.append(
            dict(
                id=i + 1,
                file_name=name + '.jpg',
                height=cfg.height,
                width=cfg.width,
            )
        )
        annotations += coco_annotations(scene, i + 1, len(annotations) + 1)
        if progress is not None:
            progress(split, i + 1, num_images)
    coco = dict(
        info=dict(
            description='VAN-LSKA synthetic shapes',
            version='1.0',
            seed=seed,
            split=split,
        ),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(cfg.classes)
        ],
    )
    ann_file = osp.join(
        out_dir, 'coco', 'annotations', f'instances_{split}.json'
    )
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return coco


def check_target(out_dir: str, force: bool = False) -> None:
    """Refuse to generate into a folder that is not empty, unless
    ``force`` and the folder holds a previous shapes dataset (its
    ``meta.json``): a user's other files are never replaced.

    Raises:
        FileExistsError: with a message saying what to do.
    """
    if not osp.exists(out_dir):
        return
    if not osp.isdir(out_dir):
        raise FileExistsError(f'--out {out_dir} is a file, not a folder')
    if not os.listdir(out_dir):
        return
    if not osp.isfile(osp.join(out_dir, 'meta.json')):
        raise FileExistsError(
            f'--out {out_dir} is not empty and holds no synthetic shapes '
            'dataset (no meta.json): refusing to replace those files, even '
            'with --force. Choose a new or empty folder.'
        )
    if not force:
        raise FileExistsError(
            f'--out {out_dir} already holds a synthetic shapes dataset; pass '
            '--force to replace it (the new one is written next to it and '
            'swapped in when complete) or choose another folder.'
        )


def _replace_folder(tmp: str, out_dir: str) -> None:
    """Put the complete folder ``tmp`` in place of ``out_dir``."""
    old = None
    if osp.exists(out_dir):
        old = tempfile.mkdtemp(
            prefix=f'.{osp.basename(out_dir)}.old-', dir=osp.dirname(tmp)
        )
        os.rmdir(old)
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if old:
        shutil.rmtree(old)


def generate_dataset(
    out_dir: str,
    seed: int = 0,
    num_train: int = 600,
    num_val: int = 100,
    size: Sequence[int] = (128, 128),
    force: bool = False,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Dict[str, Dict]:
    """Write the train and val splits (COCO + ADE20K formats).

    The files go to a temporary folder next to ``out_dir`` that takes its
    place once complete: an interrupted run leaves no partial dataset, and
    a smaller re-generation leaves no stale files of the previous one.

    Args:
        out_dir: Dataset root, e.g. ``data/shapes``.
        seed: Base seed; the same arguments give identical files.
        num_train, num_val: Images per split.
        size: ``(height, width)`` of the images.
        force: replace a previous dataset in ``out_dir``
            (:func:`check_target`).
        progress: called as ``progress(split, done, total)`` after each
            written image.

    Returns:
        dict: ``{'train': coco_dict, 'val': coco_dict}``.

    Raises:
        FileExistsError: ``out_dir`` is not empty (see
            :func:`check_target`).
    """
    check_target(out_dir, force)
    final = out_dir
    parent = osp.dirname(osp.abspath(final))
    os.makedirs(parent, exist_ok=True)
    out_dir = tempfile.mkdtemp(
        prefix=f'.{osp.basename(osp.abspath(final))}.part-', dir=parent
    )
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out_dir, 0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        out = _write_dataset(out_dir, seed, num_train, num_val, size, progress)
        _replace_folder(out_dir, final)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out


def _write_dataset(
    out_dir: str,
    seed: int,
    num_train: int,
    num_val: int,
    size: Sequence[int],
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Dict[str, Dict]:
    cfg = ShapesConfig(height=int(size[0]), width=int(size[1]))
    out = {}
    for split, num in (('train', num_train), ('val', num_val)):
        out[split] = generate_split(out_dir, split, num, seed, cfg, progress)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(
            dict(
                seed=seed,
                num_train=num_train,
                num_val=num_val,
                size=[cfg.height, cfg.width],
                classes=list(cfg.classes),
                seg_classes=list(SEG_CLASSES),
            ),
            f,
            indent=2,
        )
    return out


def dataset_exists(out_dir: str) -> bool:
    """True if both formats of both splits are present under ``out_dir``."""
    needed = [osp.join(out_dir, 'meta.json')]
    for split, ade_split in SPLITS.items():
        needed += [
            osp.join(
                out_dir, 'coco', 'annotations', f'instances_{split}.json'
            ),
            osp.join(out_dir, 'ade', 'images', ade_split),
            osp.join(out_dir, 'ade', 'annotations', ade_split),
        ]
    return all(osp.exists(p) for p in needed)
